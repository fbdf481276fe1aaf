"""Linux namespaces by their OCI names: clone flags, /proc names, joining and creating."""

from __future__ import annotations

import fcntl
import os
import socket
import struct

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


def loopback_up() -> None:
    """Set ``lo`` up in the current network namespace (a new one starts with it down;
    runc brings it up too). Two ioctls on a throwaway socket: no netlink library in
    the container's first process. (The modules are imported with this one: in a user
    namespace the host's extension modules may not be readable any more.)"""
    siocgifflags, siocsifflags, iff_up = 0x8913, 0x8914, 0x1
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        request = struct.pack("16sH", b"lo", 0)
        flags = struct.unpack("16sH", fcntl.ioctl(s, siocgifflags, request)[:18])[1]
        if not flags & iff_up:
            fcntl.ioctl(s, siocsifflags, struct.pack("16sH", b"lo", flags | iff_up))
