"""Test-session wiring: tier markers by folder, root checks, and the leak check
(tests/support/leakcheck.py)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

pytest_plugins = ["tests.support.leakcheck"]

TIERS = ("unit", "integration", "e2e", "bench")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        parts = Path(str(item.fspath)).parts
        for tier in TIERS:
            if tier in parts and not any(item.iter_markers(name=t) for t in TIERS):
                item.add_marker(getattr(pytest.mark, tier))
        needs_root = any(item.iter_markers(name=t) for t in ("integration", "e2e", "bench"))
        if needs_root and os.geteuid() != 0:
            item.add_marker(pytest.mark.skip(reason="needs root (namespaces, mounts, cgroups)"))
