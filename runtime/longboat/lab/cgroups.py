"""A node's cgroups: everything the node runs lives below ``/longboat-lab/<lab>/<node>``
(its own processes in ``system``, its engine's containers in ``longboat/<id>``), so
``down`` finds and kills every process of a node from its cgroup alone."""

from __future__ import annotations

import contextlib
import os
import signal
import time

from longboat.cgroups import CgroupV1, CgroupV2, open_cgroup
from longboat.errors import Conflict
from longboat.lab import plan


def prepare(node: plan.Node) -> None:
    open_cgroup(node.system_cgroup).create()


def join(node: plan.Node) -> None:
    """Move the calling process into the node's ``system`` cgroup (a child between fork
    and exec, before it enters the node's namespaces)."""
    open_cgroup(node.system_cgroup).add_self()


def kill_all(node: plan.Node, timeout: float = 10.0) -> None:
    """SIGKILL every process below the node's cgroup and wait until none is left."""
    cgroup = open_cgroup(node.cgroup)
    if not cgroup.exists():
        return
    deadline = time.monotonic() + timeout
    while True:
        left = cgroup.pids()
        if not left:
            return
        if time.monotonic() > deadline:
            raise Conflict(f"node {node.name}: processes {left} did not die")
        cgroup.signal_all(signal.SIGKILL)
        time.sleep(0.05)


def remove(node: plan.Node) -> None:
    open_cgroup(node.cgroup).destroy(timeout=5.0)


def _directories(path: str) -> list[str]:
    """``path``'s directory in every hierarchy (the v1 ones and, on a hybrid host, the
    controller-less cgroup2 one, which ``remove_empty_parents`` does not cover)."""
    cgroup = open_cgroup(path)
    if isinstance(cgroup, CgroupV1):
        found = list(cgroup.paths.values())
        if cgroup.unified is not None:
            found.append(cgroup.unified)
        return found
    assert isinstance(cgroup, CgroupV2)
    return [cgroup.dir]


def remove_lab(lab: plan.Lab) -> None:
    """The lab's cgroup (its nodes are gone) and the lab root's, while empty."""
    open_cgroup(lab.cgroup).destroy(timeout=5.0)
    for directory in _directories(plan.CGROUP_ROOT):
        with contextlib.suppress(FileNotFoundError, OSError):
            os.rmdir(directory)       # ENOTEMPTY/EBUSY: another lab still uses it
