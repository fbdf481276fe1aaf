"""Named network namespaces: a namespace kept alive by a bind mount of its nsfs file.

``create`` makes a namespace in a short-lived thread (network namespaces are per thread,
so the rest of the process never moves), brings its ``lo`` up and bind-mounts the
thread's ``ns/net`` onto ``path``. ``run_in`` and ``socket_in`` do their work in a fresh
thread that joins the namespace with setns(2); the thread ends with the call, so no
thread of a pool is ever left in a foreign namespace.

Like ``ip netns``, the directory holding the files is a mount point with shared
propagation: a namespace file created or removed here is seen created or removed in
every mount namespace that copied this one (a container's, before it pivots away), and
an unmount here is not held back by a copy elsewhere. A directory that is not a mount
point yet gets a small tmpfs of ours, unmounted again with its last namespace, so
``remove`` leaves nothing behind (files already in such a directory are hidden while the
tmpfs is there; a namespace directory is meant to hold namespaces only). Both run under
an flock of the directory's parent.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import socket
import threading
from collections.abc import Callable, Iterator
from typing import TypeVar

from longboat.errors import Conflict, NotFound, SystemFault
from longboat.linux import libc

T = TypeVar("T")

NS_GET_NSTYPE = 0xB703  # ioctl on an nsfs file: its CLONE_NEW* type
DIR_FS_NAME = "longboat-netns"

def _in_thread(fn: Callable[[], T], name: str) -> T:
    result: list[T] = []
    failure: list[BaseException] = []

    def run() -> None:
        try:
            result.append(fn())
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name=name)
    thread.start()
    thread.join()
    if failure:
        raise failure[0]
    return result[0]


def _mountinfo() -> list[list[str]]:
    with open("/proc/self/mountinfo") as f:
        return [line.split() for line in f]


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def is_namespace(path: str) -> bool:
    """True when ``path`` is a mounted network namespace file."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except OSError:
        return False
    try:
        return _is_nsfs(fd)
    finally:
        os.close(fd)


def _is_nsfs(fd: int) -> bool:
    # NS_GET_NSTYPE answers only for nsfs files (ENOTTY for anything else)
    try:
        return fcntl.ioctl(fd, NS_GET_NSTYPE) == libc.CLONE_NEWNET
    except OSError:
        return False


@contextlib.contextmanager
def _locked(directory: str) -> Iterator[None]:
    # The lock is on the directory's parent: the directory itself may get our tmpfs
    # mounted over it (or lose it) while we hold the lock, and then a second opener would
    # lock a different inode.
    parent = os.path.dirname(directory.rstrip("/")) or "/"
    fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _mounts_at(directory: str) -> list[list[str]]:
    return [m for m in _mountinfo() if _unescape(m[4]) == directory]


def _mounts_below(directory: str) -> list[str]:
    prefix = directory.rstrip("/") + "/"
    return [_unescape(m[4]) for m in _mountinfo() if _unescape(m[4]).startswith(prefix)]


def _is_mount_point(directory: str) -> bool:
    return bool(_mounts_at(directory))


def _ensure_mount_dir(directory: str) -> None:
    """Make ``directory`` a mount point with shared propagation, unless it is one already
    (then whoever mounted it chose its propagation, as ``ip netns`` does for /run/netns).

    An empty directory gets a small tmpfs of ours (named ``longboat-netns``), removed with
    its last namespace; one that already holds namespace mounts is bound onto itself, as
    ``ip netns`` does, and stays."""
    if _is_mount_point(directory):
        return
    try:
        if _mounts_below(directory):
            libc.mount(directory, directory, None, libc.MS_BIND | libc.MS_REC)
        else:
            libc.mount(DIR_FS_NAME, directory, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV
                       | libc.MS_NOEXEC, "mode=0755,size=64k")
        libc.mount("none", directory, None, libc.MS_SHARED | libc.MS_REC)
    except OSError as exc:
        raise SystemFault(f"making {directory} a shared mount point: {exc}") from exc


def _is_our_tmpfs(directory: str) -> bool:
    at = _mounts_at(directory)
    if not at:
        return False
    top = at[-1]
    tail = top[top.index("-") + 1:]
    return tail[:2] == ["tmpfs", DIR_FS_NAME]


def create(path: str) -> None:
    """A new network namespace bind-mounted at ``path``, with ``lo`` up.

    Conflict if a namespace is already mounted there; a stale plain file (left by a
    crash) is reused."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    with _locked(directory):
        if is_namespace(path):
            raise Conflict(f"network namespace {path} already exists")
        _ensure_mount_dir(directory)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o444)
            os.close(fd)
        except OSError as exc:
            raise SystemFault(f"creating {path}: {exc}") from exc
        try:
            _in_thread(lambda: _new_namespace_at(path), "netns-create")
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(path)
            _drop_dir_mount_if_unused(directory)
            raise


def _new_namespace_at(path: str) -> None:
    try:
        libc.unshare(libc.CLONE_NEWNET)
        libc.mount(f"/proc/self/task/{threading.get_native_id()}/ns/net", path, None,
                   libc.MS_BIND)
    except OSError as exc:
        raise SystemFault(f"creating network namespace {path}: {exc}") from exc
    _lo_up()


def _lo_up() -> None:
    from longboat.network import links  # links imports us; a late import breaks the cycle
    links.link_up("lo")


def _drop_dir_mount_if_unused(directory: str) -> None:
    if _mounts_below(directory) or not _is_our_tmpfs(directory):
        return
    with contextlib.suppress(OSError):
        libc.umount2(directory, libc.MNT_DETACH)


def remove(path: str) -> None:
    """Unmount and unlink a namespace file; silent if it is missing."""
    path = os.path.abspath(path)
    directory = os.path.dirname(path)
    if not os.path.isdir(directory):
        return
    with _locked(directory):
        while _mounts_at(path):
            try:
                libc.umount2(path, libc.MNT_DETACH)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    break
                raise SystemFault(f"unmounting network namespace {path}: {exc}") from exc
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        except OSError as exc:
            raise SystemFault(f"removing {path}: {exc}") from exc
        _drop_dir_mount_if_unused(directory)


def _open(path: str) -> int:
    try:
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} not found") from None
    except OSError as exc:
        raise SystemFault(f"opening network namespace {path}: {exc}") from exc
    if not _is_nsfs(fd):
        os.close(fd)
        raise NotFound(f"{path} is not a network namespace")
    return fd


def run_in(path: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a thread that has joined the network namespace at ``path``."""
    fd = _open(path)

    def joined() -> T:
        try:
            libc.setns(fd, libc.CLONE_NEWNET)
        except OSError as exc:
            raise SystemFault(f"joining network namespace {path}: {exc}") from exc
        finally:
            os.close(fd)
        return fn()

    return _in_thread(joined, "netns-run")


def socket_in(path: str, family: int, type: int) -> socket.socket:
    """A socket created inside the namespace at ``path`` (it stays there, whoever uses it)."""
    return run_in(path, lambda: socket.socket(family, type))


def current_inode() -> int:
    """The inode of the calling thread's network namespace."""
    return os.stat(f"/proc/self/task/{threading.get_native_id()}/ns/net").st_ino
