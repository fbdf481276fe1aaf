"""Test-session wiring: tier markers by folder, root checks, and the leak check.

The leak check snapshots host state when the session starts (network namespaces, links,
mount points, cgroup directories) and compares at the end; the session also makes itself
a child subreaper, so every process a test leaves behind, however deeply forked, becomes
our child and is counted. Any leak fails the run.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

import pytest

from tests.support import hoststate

TIERS = ("unit", "integration", "e2e", "bench")
_baseline: hoststate.Snapshot | None = None


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts and not any(item.iter_markers(name=t) for t in TIERS):
                item.add_marker(getattr(pytest.mark, tier))
        needs_root = any(item.iter_markers(name=t) for t in ("integration", "e2e", "bench"))
        if needs_root and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)"))


def pytest_sessionstart(session: pytest.Session) -> None:
    global _baseline
    if os.geteuid() == 0:
        hoststate.become_subreaper()
        _baseline = hoststate.snapshot()


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    if _baseline is None:
        return
    deadline = time.monotonic() + 5
    while True:
        hoststate.reap_zombies()
        leaks = hoststate.leaks(_baseline, hoststate.snapshot())
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    if leaks:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        text = "tests leaked host state:\n" + "\n".join(f"  {leak}" for leak in leaks)
        if reporter is not None:
            reporter.write_sep("=", "LEAK CHECK FAILED", red=True)
            reporter.write_line(text)
        else:
            print(text)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
