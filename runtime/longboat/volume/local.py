"""The ``local`` volume driver's options and mounts (moby 20.10's ``volume/local``).

A volume without options is a plain directory. With options (``type``, ``device`` and
``o``, all of them needed, as moby 20.10 asks) its ``_data`` directory is a mount point:
``device`` mounted there with ``type`` and the options of ``o`` (mount(2) flags such as
``ro``, ``bind``, ``nosuid``, the rest passed as data: ``size=64m``, ``mode=1777``)
while at least one running container uses it.
"""

from __future__ import annotations

import errno
import os

from longboat.errors import InvalidArgument, SystemFault
from longboat.linux import libc

VALID_OPTIONS = ("type", "device", "o", "size")
REQUIRED_OPTIONS = ("device", "type")


def validate(options: dict[str, str]) -> None:
    """moby 20.10's ``validateOpts``: known keys only; any option needs device and type;
    ``size`` needs a quota-capable filesystem, which we do not manage."""
    if not options:
        return
    for key in options:
        if key not in VALID_OPTIONS:
            raise InvalidArgument(f'invalid option: "{key}"')
        if key == "size":
            raise InvalidArgument("quota size requested but no quota support")
    for key in REQUIRED_OPTIONS:
        if key not in options:
            raise InvalidArgument(f'missing required option: "{key}"')


def needs_mount(options: dict[str, str] | None) -> bool:
    return bool(options and (options.get("type") or options.get("device")))


def mount(options: dict[str, str], target: str) -> None:
    """Mount the volume's device on ``target`` as moby/sys/mount does: the flags and
    data first, then the propagation, then a read-only remount for a read-only bind."""
    from longboat.oci.mountopts import parse_mount_options

    words = [w for w in (options.get("o") or "").split(",") if w]
    parsed = parse_mount_options(words)
    flags = parsed.flags
    if parsed.bind:
        flags |= libc.MS_BIND | (libc.MS_REC if parsed.recursive else 0)
    device = options.get("device") or ""
    fstype = options.get("type") or None
    data = parsed.data or None
    try:
        libc.mount(device, target, fstype, flags, data)
        if parsed.propagation:
            libc.mount(None, target, None, parsed.propagation)
        if parsed.bind and flags & libc.MS_RDONLY:
            libc.mount(None, target, None, flags | libc.MS_REMOUNT)
    except OSError as exc:
        if is_mounted(target):
            unmount(target)
        text = f", data: {data}" if data else ""
        raise SystemFault(f"error while mounting volume '{target}': failed to mount local "
                          f"volume: mount {device}:{target}, flags: {flags:#x}{text}: "
                          f"{os.strerror(exc.errno or 0).lower()}") from exc


def unmount(target: str) -> None:
    """Unmount ``target``; a busy mount is detached; one that is not there is fine."""
    try:
        libc.umount2(target, 0)
    except OSError as exc:
        if exc.errno == errno.EINVAL:       # not a mount point (any more)
            return
        if exc.errno != errno.EBUSY:
            raise SystemFault(f"unmounting volume {target}: {exc.strerror}") from exc
        libc.umount2(target, libc.MNT_DETACH)


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        code = field[i + 1:i + 4]
        if field[i] == "\\" and len(code) == 3 and code.isdigit():
            out.append(chr(int(code, 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def mounts_under(path: str) -> list[str]:
    """Mount points at or below ``path`` in our mount namespace (a bind of a directory
    of the same filesystem is one too, which ``os.path.ismount`` cannot tell)."""
    path = os.path.abspath(path)
    found = []
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        for line in f:
            point = _unescape(line.split(" ", 5)[4])
            if point == path or point.startswith(path + "/"):
                found.append(point)
    return found


def is_mounted(path: str) -> bool:
    return os.path.abspath(path) in mounts_under(path)
