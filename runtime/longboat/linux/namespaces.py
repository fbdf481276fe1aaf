"""Linux namespaces by their OCI names: clone flags, /proc names, joining and creating."""

from __future__ import annotations

import os

from longboat.linux import libc

# OCI type -> (clone flag, name under /proc/PID/ns)
KINDS: dict[str, tuple[int, str]] = {
    "user": (libc.CLONE_NEWUSER, "user"),
    "pid": (libc.CLONE_NEWPID, "pid"),
    "network": (libc.CLONE_NEWNET, "net"),
    "ipc": (libc.CLONE_NEWIPC, "ipc"),
    "uts": (libc.CLONE_NEWUTS, "uts"),
    "cgroup": (libc.CLONE_NEWCGROUP, "cgroup"),
    "time": (libc.CLONE_NEWTIME, "time"),
    "mount": (libc.CLONE_NEWNS, "mnt"),
}
# setns order: the user namespace first (it grants the rights for the others), the
# mount namespace last (joining it changes how later paths resolve).
JOIN_ORDER = ("user", "ipc", "uts", "network", "pid", "cgroup", "time", "mount")


def proc_path(pid: int | str, kind: str) -> str:
    return f"/proc/{pid}/ns/{KINDS[kind][1]}"


def same_as_ours(pid: int, kind: str) -> bool:
    """True when process ``pid`` is in the same namespace of this kind as we are."""
    try:
        return os.stat(proc_path(pid, kind)).st_ino == os.stat(proc_path("self", kind)).st_ino
    except FileNotFoundError:
        return False


def open_all(paths: dict[str, str]) -> list[tuple[str, int]]:
    """Open namespace files by kind, in join order (all opened before any is joined)."""
    opened: list[tuple[str, int]] = []
    try:
        for kind in JOIN_ORDER:
            if kind in paths:
                opened.append((kind, os.open(paths[kind], os.O_RDONLY | os.O_CLOEXEC)))
    except BaseException:
        for _, fd in opened:
            os.close(fd)
        raise
    return opened


def join(opened: list[tuple[str, int]]) -> None:
    for kind, fd in opened:
        libc.setns(fd, KINDS[kind][0])
        os.close(fd)


def flags_for(kinds: list[str]) -> int:
    flags = 0
    for kind in kinds:
        flags |= KINDS[kind][0]
    return flags
