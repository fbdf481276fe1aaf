"""Snapshots of the host state tests may leak: network namespaces, links, mounts,
cgroup directories and processes (our descendants, as a child subreaper)."""

from __future__ import annotations

import contextlib
import ctypes
import os
from dataclasses import dataclass

PR_SET_CHILD_SUBREAPER = 36
CGROUP_ROOT = "/sys/fs/cgroup"
CGROUP_DEPTH = 3


@dataclass(frozen=True)
class Snapshot:
    netns: frozenset[str]
    links: frozenset[str]
    mounts: frozenset[str]
    cgroups: frozenset[str]


def become_subreaper() -> None:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def _listdir(path: str) -> frozenset[str]:
    try:
        return frozenset(os.listdir(path))
    except FileNotFoundError:
        return frozenset()


def _mounts() -> frozenset[str]:
    with open("/proc/self/mountinfo") as f:
        return frozenset(line.split()[4] for line in f)


def _cgroups() -> frozenset[str]:
    found: set[str] = set()
    base_depth = CGROUP_ROOT.rstrip("/").count("/")
    for top, dirs, _files in os.walk(CGROUP_ROOT):
        depth = top.count("/") - base_depth
        if depth >= CGROUP_DEPTH:
            dirs[:] = []
        if depth >= 2:  # below a controller's own root
            found.add(top)
    return frozenset(found)


def snapshot() -> Snapshot:
    return Snapshot(netns=_listdir("/run/netns"), links=_listdir("/sys/class/net"),
                    mounts=_mounts(), cgroups=_cgroups())


def descendants(root: int | None = None) -> list[tuple[int, str]]:
    """Live (non-zombie) descendants of ``root`` (default: this process)."""
    root = os.getpid() if root is None else root
    parent: dict[int, int] = {}
    info: dict[int, tuple[str, str]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat", "rb") as f:
                data = f.read()
            with open(f"/proc/{name}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        fields = data[data.rindex(b")") + 2:].split()
        parent[int(name)] = int(fields[1])
        info[int(name)] = (fields[0].decode(), cmd)
    out = []
    for pid in parent:
        p = pid
        while p > 1 and p != root:
            p = parent.get(p, 0)
        if p == root and pid != root and info[pid][0] != "Z":
            out.append((pid, info[pid][1]))
    return out


def reap_zombies() -> None:
    with contextlib.suppress(ChildProcessError):
        while True:
            pid, _ = os.waitpid(-1, os.WNOHANG)
            if pid == 0:
                return


def leaks(before: Snapshot, after: Snapshot) -> list[str]:
    found = [f"network namespace {n}" for n in sorted(after.netns - before.netns)]
    found += [f"link {n}" for n in sorted(after.links - before.links)]
    found += [f"mount {m}" for m in sorted(after.mounts - before.mounts)]
    found += [f"cgroup {c}" for c in sorted(after.cgroups - before.cgroups)]
    found += [f"process {pid}: {cmd}" for pid, cmd in descendants()]
    return found
