"""Docker's copy-up: a new, empty volume mounted where the image has content gets a
copy of that content (owners, modes, extended attributes, times, symlinks, hard links,
device nodes and fifos), once, when the container is created.

The source is a container's root filesystem: untrusted. The mount path is resolved
inside it (openat2 ``RESOLVE_IN_ROOT``: a symlink leads somewhere inside the root, never
out); below it every directory is opened ``O_NOFOLLOW`` from its parent's descriptor
and every file ``O_NOFOLLOW | O_NONBLOCK`` and checked with ``fstat``, so nothing
outside the root is read and a symlink is copied as a symlink, never followed. Writes
go to the volume's own (new, empty) directory through descriptors too.
"""

from __future__ import annotations

import errno
import os
import stat

from longboat.errors import InvalidArgument
from longboat.linux import fs, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_FILE = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DEPTH = 4096      # directories; a path is longer than PATH_MAX well before
_IGNORED_XATTR_ERRORS = (errno.ENOTSUP, errno.EPERM, errno.EACCES, errno.ENODATA,
                         errno.EOPNOTSUPP)


def is_empty(path: str) -> bool:
    fd = os.open(path, _DIR)
    try:
        return not os.listdir(fd)
    finally:
        os.close(fd)


def existing_file(root_fd: int, inside: str) -> bool:
    """True when ``inside`` (resolved in the root) is there and is not a directory
    (moby refuses an anonymous volume over a file)."""
    try:
        fd = fs.open_in_root(root_fd, inside)
    except OSError:
        return False
    try:
        return not stat.S_ISDIR(os.fstat(fd).st_mode)
    finally:
        os.close(fd)


def copy_up(root_fd: int, inside: str, destination: str) -> bool:
    """Copy the directory at ``inside`` (a path in the root of ``root_fd``) into the
    directory ``destination`` if that is empty; the destination directory takes the
    source directory's owner and mode. False when nothing was copied (no such
    directory in the image, or the volume has content)."""
    try:
        source = fs.open_in_root(root_fd, inside, os.O_RDONLY | os.O_DIRECTORY |
                                 os.O_CLOEXEC)
    except (FileNotFoundError, NotADirectoryError):
        return False
    try:
        target = os.open(destination, _DIR)
        try:
            if os.listdir(target):
                return False
            _copy_tree(source, target, target, "", {}, 0)
            _metadata(source, target, os.fstat(source))
        finally:
            os.close(target)
    finally:
        os.close(source)
    return True


def _copy_tree(source_top: int, target_top: int, top: int, relative: str,
               links: dict[tuple[int, int], str], depth: int) -> None:
    """Copy what is below ``source_top`` into ``target_top``. Iterative, one pair of
    descriptors open at a time: a directory below the tops is opened from its top with
    no symlink allowed on the way (the source is the image's, the target this copy's
    own), so any depth costs neither Python frames nor descriptors. A directory's
    metadata is set once everything below it is copied (its times stay the image's)."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY, openat2

    done: list[str] = []
    stack = [relative]
    while stack:
        rel = stack.pop()
        if rel.count("/") + (1 if rel else 0) > MAX_DEPTH:
            raise InvalidArgument(f"copying image content into a volume: more than "
                                  f"{MAX_DEPTH} nested directories")
        try:
            source = openat2(source_top, rel, _DIR, REAL_DIRS_ONLY) if rel else source_top
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise InvalidArgument("copying image content into a volume: a path "
                                      "longer than the kernel takes") from None
            raise
        try:
            target = openat2(target_top, rel, _DIR, REAL_DIRS_ONLY) if rel else target_top
            try:
                subdirs = _copy_entries(source, target, top, rel, links)
            finally:
                if target != target_top:
                    os.close(target)
        finally:
            if source != source_top:
                os.close(source)
        done.extend(subdirs)
        stack.extend(reversed(subdirs))
    for rel in reversed(done):       # children before their parents
        source = openat2(source_top, rel, _DIR, REAL_DIRS_ONLY)
        try:
            target = openat2(target_top, rel, _DIR, REAL_DIRS_ONLY)
            try:
                _metadata(source, target, os.fstat(source))
            finally:
                os.close(target)
        finally:
            os.close(source)


def _copy_entries(source: int, target: int, top: int, relative: str,
                  links: dict[tuple[int, int], str]) -> list[str]:
    """Copy the entries of one directory; the subdirectories made (relative paths),
    whose content is still to be copied."""
    subdirs: list[str] = []
    for name in sorted(os.listdir(source)):
        try:
            st = os.stat(name, dir_fd=source, follow_symlinks=False)
        except FileNotFoundError:
            continue
        path = f"{relative}/{name}" if relative else name
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            os.mkdir(name, 0o700, dir_fd=target)
            subdirs.append(path)
            continue
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1 and key in links:
            _link(top, links[key], target, name)
            continue
        if stat.S_ISREG(mode):
            _copy_file(source, target, name, st)
        elif stat.S_ISLNK(mode):
            os.symlink(os.readlink(name, dir_fd=source), name, dir_fd=target)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=target, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target,
                     follow_symlinks=False)
        elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode) or stat.S_ISFIFO(mode):
            os.mknod(name, stat.S_IFMT(mode) | 0o600, st.st_rdev, dir_fd=target)
            os.chown(name, st.st_uid, st.st_gid, dir_fd=target, follow_symlinks=False)
            os.chmod(name, stat.S_IMODE(mode), dir_fd=target, follow_symlinks=False)
            os.utime(name, ns=(st.st_atime_ns, st.st_mtime_ns), dir_fd=target,
                     follow_symlinks=False)
        else:
            continue        # a socket: nothing to copy
        if st.st_nlink > 1:
            links[key] = path
    return subdirs


def _link(top: int, first: str, target: int, name: str) -> None:
    """Hard link ``name`` to the copy made first, at ``first`` below the volume's top.
    Its directory is opened beneath the top with no symlink on the way: linkat(2)
    follows symlinks in the middle of a path, and a named volume can be in use by a
    running container while this one is created (a directory swapped for a symlink to
    ``/`` would have linked a host file into the volume)."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY, openat2

    parent, _, base = first.rpartition("/")
    pfd = openat2(top, parent, libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC,
                  REAL_DIRS_ONLY) if parent else os.dup(top)
    try:
        os.link(base, name, src_dir_fd=pfd, dst_dir_fd=target, follow_symlinks=False)
    finally:
        os.close(pfd)


def _copy_file(source: int, target: int, name: str, st: os.stat_result) -> None:
    try:
        src = os.open(name, _FILE, dir_fd=source)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.ENOENT):
            return          # replaced by a symlink or gone since the listing
        raise
    try:
        now = os.fstat(src)
        if not stat.S_ISREG(now.st_mode) or now.st_ino != st.st_ino:
            return
        out = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW |
                      os.O_CLOEXEC, 0o600, dir_fd=target)
        try:
            remaining = now.st_size
            offset = 0
            while remaining > 0:
                sent = os.sendfile(out, src, offset, min(remaining, 1 << 30))
                if sent == 0:
                    break
                offset += sent
                remaining -= sent
            _metadata(src, out, now)
        finally:
            os.close(out)
    finally:
        os.close(src)


def _metadata(src: int, dst: int, st: os.stat_result) -> None:
    """Owner, then mode (a chown clears set-id bits), extended attributes (a chown
    clears security.capability), then times."""
    os.fchown(dst, st.st_uid, st.st_gid)
    os.fchmod(dst, stat.S_IMODE(st.st_mode))
    _xattrs(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))


def _xattrs(src: int, dst: int) -> None:
    try:
        names: list[Any] = os.listxattr(src)
    except OSError as exc:
        if exc.errno in _IGNORED_XATTR_ERRORS:
            return
        raise
    for attr in names:
        try:
            os.setxattr(dst, attr, os.getxattr(src, attr))
        except OSError as exc:
            if exc.errno not in _IGNORED_XATTR_ERRORS:
                raise
