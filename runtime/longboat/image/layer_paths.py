"""Paths beneath the layer root: resolving, creating and removing them safely.

Owns the rules that keep every effect inside ``dest`` (docs/layers.md, "Safety rules"):
entry names and hardlink targets are cleaned and refused if absolute or with a ``..``
component (:func:`clean_path`); every parent directory is opened with
``openat2(RESOLVE_BENEATH | RESOLVE_NO_MAGICLINKS)`` from a descriptor of ``dest``, so a
path through a symlink that leads out is refused by the kernel and reported as an
escape; missing parents are created 0755 root:root; removal walks a tree iteratively
and never follows a symlink. :class:`LayerRoot` holds the root descriptor and a cache of
parent directory descriptors, most entries sharing their parent with the previous one.
"""

from __future__ import annotations

import errno
import os
import stat
from typing import Final

from longboat.errors import SystemFault
from longboat.image.layer_result import LayerError
from longboat.linux import libc

_DIR_CACHE_SIZE: Final = 512
#: rmtree moves a directory up when its path gets this long (PATH_MAX is 4096)
_FLATTEN_AT: Final = 1024

BENEATH: Final = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS
REAL_DIRS_ONLY: Final = BENEATH | libc.RESOLVE_NO_SYMLINKS
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def clean_path(raw: str, what: str) -> str:
    """The entry path relative to the root; refuses traversal and absolute paths."""
    if raw.startswith("/"):
        raise LayerError(f"{what} {raw!r} is an absolute path; layer paths are relative to "
                         "the root and absolute ones are refused")
    if "\0" in raw:
        raise LayerError(f"{what} {raw!r} contains a NUL byte")
    parts = raw.split("/")
    if "." in parts or "" in parts or ".." in parts:
        if ".." in parts:
            raise LayerError(f"{what} {raw!r} has a '..' component; path traversal is "
                             "refused")
        parts = [p for p in parts if p and p != "."]
        return "/".join(parts)
    return raw


def openat2(root_fd: int, path: str, flags: int, resolve: int = BENEATH) -> int:
    for _ in range(16):
        try:
            return libc.openat2(root_fd, path, flags, 0, resolve)
        except BlockingIOError:  # EAGAIN: a concurrent rename; the kernel asks to retry
            continue
    return libc.openat2(root_fd, path, flags, 0, resolve)


def list_dir(fd: int) -> list[tuple[str, bool]]:
    """(name, is a directory) of every entry of directory ``fd``; symlinks are not."""
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


def rmtree(top_fd: int, name: str) -> None:
    """Remove directory ``name`` of ``top_fd`` and all below it.

    Iterative (no recursion limit, one descriptor open at a time), and every directory
    is opened beneath ``top_fd`` with no symlink allowed anywhere on its path. A
    directory deeper than :data:`_FLATTEN_AT` characters of path is first moved up under
    ``name`` with a fresh name, so the paths used stay short however deep the tree is
    (a container can make one deeper than PATH_MAX).
    """
    stack = [name]
    token = os.urandom(6).hex()
    moved = 0
    while stack:
        rel = stack[-1]
        fd = openat2(top_fd, rel, os.O_RDONLY | os.O_DIRECTORY, REAL_DIRS_ONLY)
        subdirs: list[str] = []
        try:
            for child, is_dir in list_dir(fd):
                if not is_dir:
                    os.unlink(child, dir_fd=fd)
                elif len(rel) + len(child) < _FLATTEN_AT:
                    subdirs.append(f"{rel}/{child}")
                else:
                    moved += 1
                    short = f".rmtree-{token}-{moved}"
                    top = openat2(top_fd, name, libc.O_PATH | os.O_DIRECTORY, REAL_DIRS_ONLY)
                    try:
                        os.rename(child, short, src_dir_fd=fd, dst_dir_fd=top)
                    finally:
                        os.close(top)
                    subdirs.append(f"{name}/{short}")
        finally:
            os.close(fd)
        if subdirs:
            stack.extend(subdirs)
            continue
        stack.pop()
        parent, _, base = rel.rpartition("/")
        if not parent:
            os.rmdir(base, dir_fd=top_fd)
            continue
        pfd = openat2(top_fd, parent, libc.O_PATH | os.O_DIRECTORY, REAL_DIRS_ONLY)
        try:
            os.rmdir(base, dir_fd=pfd)
        finally:
            os.close(pfd)


def fd_path(dir_fd: int, name: str) -> str:
    # For calls without a dir_fd form (lsetxattr): the directory's magic link, then a
    # name that is not followed.
    return f"/proc/self/fd/{dir_fd}/{name}"



class LayerRoot:
    """``dest`` as a descriptor, and descriptors of directories beneath it by path."""

    def __init__(self, dest: str) -> None:
        self.dest = dest
        try:
            self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SystemFault(f"cannot open layer destination {dest!r}: "
                              f"{exc.strerror}") from exc
        # Parent directory descriptors by path: most entries share their parent with the
        # previous one. Descriptors leaving the cache are closed only between entries
        # (release_retired), so a descriptor in use is never closed (and its number never
        # reused) under us.
        self.dirs: dict[str, int] = {}
        self.retired: list[int] = []

    def close(self) -> None:
        self.release_retired()
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()
        os.close(self.root_fd)

    def release_retired(self) -> None:
        """Close the descriptors that left the cache; only between entries."""
        for fd in self.retired:
            os.close(fd)
        self.retired.clear()

    # --- directory descriptors

    def _cached(self, path: str) -> int | None:
        fd = self.dirs.pop(path, None)
        if fd is not None:
            self.dirs[path] = fd  # most recently used last
        return fd

    def remember(self, path: str, fd: int) -> None:
        """Cache ``fd`` as the descriptor of directory ``path``; the cache owns it now."""
        old = self.dirs.pop(path, None)
        if old is not None:
            self.retired.append(old)
        self.dirs[path] = fd
        if len(self.dirs) > _DIR_CACHE_SIZE:
            oldest = next(iter(self.dirs))
            self.retired.append(self.dirs.pop(oldest))

    def _forget_all(self) -> None:
        """After removing a directory or symlink: any cached path may now be stale."""
        self.retired.extend(self.dirs.values())
        self.dirs.clear()

    def dir_fd(self, path: str, entry: str, *, create: bool) -> int | None:
        """A descriptor of directory ``path`` (inside dest); None if missing and not
        ``create``. Missing directories are created 0755 root:root, as Docker does."""
        if not path:
            return self.root_fd
        fd = self._cached(path)
        if fd is not None:
            return fd
        try:
            fd = openat2(self.root_fd, path, libc.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create:
                return None
            return self._makedirs(path, entry)
        except OSError as exc:
            raise self.lookup_error(exc, path, entry) from None
        self.remember(path, fd)
        return fd

    def _makedirs(self, path: str, entry: str) -> int:
        """Create the missing directories of ``path`` (which is missing), iteratively."""
        parts = path.split("/")
        have = len(parts) - 1  # how many leading components exist
        fd = self.root_fd
        while have > 0:
            ancestor = "/".join(parts[:have])
            cached = self._cached(ancestor)
            if cached is not None:
                fd = cached
                break
            try:
                fd = openat2(self.root_fd, ancestor, libc.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                have -= 1
                continue
            except OSError as exc:
                raise self.lookup_error(exc, ancestor, entry) from None
            self.remember(ancestor, fd)
            break
        for depth in range(have, len(parts)):
            name = parts[depth]
            try:
                os.mkdir(name, 0o755, dir_fd=fd)
            except FileExistsError:
                pass  # a dangling symlink, say: the open below tells
            made = "/".join(parts[:depth + 1])
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=fd)
            except OSError as exc:
                raise self.lookup_error(exc, made, entry) from None
            os.fchmod(fd, 0o755)  # whatever the umask
            self.remember(made, fd)
        return fd

    def lookup_error(self, exc: OSError, path: str, entry: str) -> Exception:
        """The error to raise when resolving ``path`` for layer entry ``entry`` failed."""
        if exc.errno == errno.EXDEV:
            return LayerError(f"layer entry {entry!r}: its path {path!r} goes through a "
                              "symlink that leads outside the layer root; refused")
        if exc.errno == errno.ELOOP:
            return LayerError(f"layer entry {entry!r}: {path!r} is a symlink loop, a "
                              "dangling symlink or too many levels of symlinks")
        if exc.errno == errno.ENOTDIR:
            return LayerError(f"layer entry {entry!r}: {path!r} is not a directory")
        if exc.errno == errno.ENAMETOOLONG:
            return LayerError(f"layer entry {entry!r}: name too long")
        return SystemFault(f"layer entry {entry!r}: opening {path!r} in {self.dest!r}: "
                           f"{exc.strerror}")

    # --- removal

    def remove(self, pfd: int, name: str) -> bool:
        """Remove ``name`` in ``pfd`` whatever it is; False if there was nothing."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            rmtree(pfd, name)
            self._forget_all()
        else:
            os.unlink(name, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self._forget_all()
        return True
