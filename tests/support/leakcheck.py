"""The session-wide leak check, as a pytest plugin (loaded by tests/conftest.py).

It snapshots host state when the session starts (network namespaces, links, mount
points, cgroup directories) and compares at the end; the session also makes itself a
child subreaper, so every process a test leaves behind, however deeply forked, becomes
our child and is counted. Any leak fails the run.
"""

from __future__ import annotations

import os
import time

import pytest

from tests.support import hoststate

_baseline: hoststate.Snapshot | None = None


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
        # only processes may still be on their way out (killed, not yet exited)
        dying = any(leak.startswith("process ") for leak in leaks)
        if not dying or time.monotonic() > deadline:
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
