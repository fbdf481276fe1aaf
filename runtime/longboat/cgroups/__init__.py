"""Container cgroups on cgroup v1 and v2 behind one interface (:class:`Cgroup`).

This package owns the cgroup directories it creates for containers: making them, moving
processes in, applying OCI ``linux.resources``, reading stats, freezing, signalling and
removing them. It does not own shared parents (``/longboat``) beyond creating them; those
go only when asked (:func:`remove_empty_parents`). docs/cgroups.md has the v1/v2 mapping.

It is on the container start hot path: importing it loads no heavy module, and
:func:`open_cgroup` reads ``/proc/self/mountinfo`` at most once.
"""

from __future__ import annotations

import errno
import os

from longboat.cgroups.base import DEFAULT_ROOT, Cgroup, CgroupStats, normalize_path
from longboat.cgroups.resources import DeviceRule, Resources, parse_resources
from longboat.cgroups.v1 import (
    CgroupV1,
    Hierarchy,
    hybrid_unified,
    parse_mountinfo,
    v1_hierarchies,
)
from longboat.cgroups.v2 import CgroupV2
from longboat.errors import InvalidArgument, SystemFault

__all__ = [
    "Cgroup",
    "CgroupStats",
    "CgroupV1",
    "CgroupV2",
    "DeviceRule",
    "Hierarchy",
    "Resources",
    "host_version",
    "open_cgroup",
    "parse_mountinfo",
    "parse_resources",
    "remove_empty_parents",
    "v1_hierarchies",
]


def host_version(root: str = DEFAULT_ROOT) -> int:
    """2 when ``root`` is a cgroup2 mount (it has ``cgroup.controllers``), else 1."""
    return 2 if os.path.exists(os.path.join(root, "cgroup.controllers")) else 1


def open_cgroup(path: str, *, root: str = DEFAULT_ROOT) -> Cgroup:
    """The cgroup at OCI ``linux.cgroupsPath`` ``path`` (relative paths are taken from the
    root too), for whichever cgroup version the host runs. Touches nothing."""
    if host_version(root) == 2:
        return CgroupV2(path, root)
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        mountinfo = f.read()
    hierarchies = parse_mountinfo(mountinfo, root)
    if not hierarchies:
        raise SystemFault(f"no cgroup hierarchy under {root}: neither cgroup2 "
                          "(cgroup.controllers) nor any cgroup v1 controller is mounted there")
    return CgroupV1(path, hierarchies, hybrid_unified(mountinfo, root))


def remove_empty_parents(path: str, stop_at: str = "/", *, root: str = DEFAULT_ROOT) -> None:
    """Remove the ancestors of ``path`` (not ``path`` itself) that are empty, deepest
    first, up to but not including ``stop_at``; stops at the first one still in use.

    For shared parents such as ``/longboat`` once their last container is gone, and for
    tests. Missing directories are fine.
    """
    path = normalize_path(path)
    stop = "/" if stop_at.strip("/") == "" else normalize_path(stop_at)
    if stop != "/" and not path.startswith(stop + "/"):
        raise InvalidArgument(f"{stop_at!r} is not an ancestor of cgroup {path!r}")
    ancestors = []
    parent = os.path.dirname(path)
    while parent != stop and parent != "/":
        ancestors.append(parent)
        parent = os.path.dirname(parent)
    if host_version(root) == 2:
        bases = [root.rstrip("/")]
    else:
        bases = [h.mountpoint for h in v1_hierarchies(root)]
    for base in bases:
        for ancestor in ancestors:
            try:
                os.rmdir(base + ancestor)
            except FileNotFoundError:
                continue
            except OSError as exc:
                if exc.errno in (errno.EBUSY, errno.ENOTEMPTY):
                    break  # still holds other cgroups (or processes): keep it and above
                raise SystemFault(f"cannot remove cgroup {base + ancestor}: "
                                  f"{exc.strerror}") from exc
