"""Paths taken from untrusted trees (a container's rootfs, an image layer, a build context),
opened and created strictly inside their root.

Every lookup goes through openat2(2) with ``RESOLVE_IN_ROOT``: ``..`` and absolute symlinks
are clamped to the root by the kernel, and magic links (``/proc/self/fd/N``-style) are
refused. Nothing here resolves a path to a string and then opens it again: callers get file
descriptors, and mount onto ``/proc/self/fd/N`` of those descriptors.
"""

from __future__ import annotations

import errno
import os
import stat

from longboat.linux import libc

_RESOLVE = libc.RESOLVE_IN_ROOT | libc.RESOLVE_NO_MAGICLINKS


def open_root(path: str) -> int:
    """An O_PATH descriptor of a root directory (the caller closes it)."""
    return os.open(path, libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)


def open_in_root(root_fd: int, path: str, flags: int = libc.O_PATH, mode: int = 0) -> int:
    """Open ``path`` as seen from inside the root; symlinks are followed within the root."""
    return libc.openat2(root_fd, path.lstrip("/") or ".", flags, mode, _RESOLVE)


def open_nofollow_in_root(root_fd: int, path: str, flags: int = libc.O_PATH) -> int:
    """Open ``path`` inside the root without following a symlink in its last component."""
    parent, name = split(path)
    parent_fd = open_in_root(root_fd, parent, libc.O_PATH | os.O_DIRECTORY)
    try:
        return os.open(name, flags | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)
    finally:
        os.close(parent_fd)


def split(path: str) -> tuple[str, str]:
    """("a/b", "c") for "/a/b/c"; refuses paths whose last part is empty, "." or ".."."""
    parts = [p for p in path.split("/") if p and p != "."]
    if not parts or parts[-1] == "..":
        raise ValueError(f"{path!r} does not name an entry")
    return "/".join(parts[:-1]), parts[-1]


def makedirs_in_root(root_fd: int, path: str, mode: int = 0o755, *, _depth: int = 0) -> int:
    """Create every missing directory of ``path`` inside the root; O_PATH fd of the last.

    A dangling symlink on the way is followed the way the kernel would inside the root:
    its target (clamped to the root) is created instead."""
    if _depth > 40:
        raise OSError(errno.ELOOP, f"too many levels of symbolic links in {path!r}")
    parts = [p for p in path.split("/") if p and p != "."]
    current = open_in_root(root_fd, "", libc.O_PATH | os.O_DIRECTORY)
    walked: list[str] = []
    try:
        for part in parts:
            walked.append(part)
            here = "/".join(walked)
            try:
                nxt = open_in_root(root_fd, here, libc.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                if part == "..":
                    raise
                try:
                    os.mkdir(part, mode, dir_fd=current)
                except FileExistsError:
                    # a dangling symlink: make what it points at, inside the root
                    target = os.readlink(part, dir_fd=current)
                    if not target.startswith("/"):
                        target = "/".join([*walked[:-1], target])
                    os.close(makedirs_in_root(root_fd, target, mode, _depth=_depth + 1))
                nxt = open_in_root(root_fd, here, libc.O_PATH | os.O_DIRECTORY)
            os.close(current)
            current = nxt
        return current
    except BaseException:
        os.close(current)
        raise


def ensure_in_root(root_fd: int, path: str, *, directory: bool, mode: int = 0o755) -> int:
    """O_PATH fd of ``path`` inside the root, creating it (a directory, or an empty file
    and its parent directories) when missing. Used for mount destinations."""
    if directory:
        return makedirs_in_root(root_fd, path, mode)
    try:
        return open_in_root(root_fd, path)
    except FileNotFoundError:
        pass
    parent, name = split(path)
    parent_fd = makedirs_in_root(root_fd, parent)
    try:
        fd = _create_file(parent_fd, name)
        os.close(fd)
    finally:
        os.close(parent_fd)
    return open_in_root(root_fd, path)


def _create_file(parent_fd: int, name: str) -> int:
    # parent_fd is O_PATH, which openat(2) accepts as a dirfd.
    try:
        return os.open(name, os.O_CREAT | os.O_EXCL | os.O_WRONLY | os.O_NOFOLLOW
                       | os.O_CLOEXEC, 0o644, dir_fd=parent_fd)
    except FileExistsError:
        return os.open(name, libc.O_PATH | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=parent_fd)


def fd_path(fd: int) -> str:
    """The magic-link path through which a descriptor can be mounted on or over."""
    return f"/proc/self/fd/{fd}"


def is_symlink_in_root(root_fd: int, path: str) -> bool:
    """True when the last component of ``path`` inside the root is a symlink."""
    try:
        fd = open_nofollow_in_root(root_fd, path)
    except FileNotFoundError:
        return False
    except OSError as exc:
        if exc.errno == errno.ENOTDIR:
            return False
        raise
    try:
        return stat.S_ISLNK(os.fstat(fd).st_mode)
    finally:
        os.close(fd)
