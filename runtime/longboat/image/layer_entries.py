"""Writing a layer's entries beneath the layer root: every filesystem effect of one.

Owns creating regular files (their data copied from the tar stream), directories,
symlinks, hardlinks, character and block devices and fifos, and their metadata: owners
(``lchown`` semantics), permission bits with setuid, setgid and sticky (chmod after
chown, which clears them), xattrs (after chown, which drops ``security.capability``;
overlayfs's own are never applied, those the filesystem refuses are skipped and
reported), and mtimes with nanoseconds, directories' set after the whole layer. Each
change is an ``*at`` call on a parent descriptor from :class:`LayerRoot` that never
follows the last component; an existing entry is replaced (unlinked, or removed
recursively), never written through, and only a directory over a directory merges.
"""

from __future__ import annotations

import errno
import logging
import os
import stat
from typing import Final

from longboat.image.layer_paths import LayerRoot, clean_path, fd_path, openat2
from longboat.image.layer_result import LayerError, SkippedXattr
from longboat.image.layer_tar import (
    BLKTYPE,
    CHRTYPE,
    DIRTYPE,
    FIFOTYPE,
    GNUTYPE_DUMPDIR,
    LNKTYPE,
    REGULAR_TYPES,
    SYMTYPE,
    TarEntry,
    TarReader,
)
from longboat.image.layer_whiteouts import OVERLAY_XATTR_PREFIXES
from longboat.linux import libc

# The logger's name from before the extractor was split into modules: log filters use it.
log = logging.getLogger("longboat.image.layer_apply")

_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Extended attributes a layer may not set: overlayfs reads its own (redirects, metacopy,
# opaque) from a lower directory, so a layer carrying them could re-point lookups.
_FORBIDDEN_XATTR_PREFIXES: Final = OVERLAY_XATTR_PREFIXES
# Errors that mean "this filesystem or this kind of inode does not take that xattr".
_XATTR_SKIPPABLE: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


class EntryWriter:
    """Writes entries read by ``reader`` beneath ``root``."""

    def __init__(self, root: LayerRoot, reader: TarReader) -> None:
        self.root = root
        self.reader = reader
        self.stream = reader.stream
        self.dir_times: list[tuple[str, int]] = []
        self.skipped: list[SkippedXattr] = []


    def write(self, e: TarEntry, path: str, parent: str, name: str) -> None:
        """Write entry ``e`` at ``path`` (``name`` in directory ``parent``)."""
        kind = e.type
        if not path:
            if kind != DIRTYPE:
                raise LayerError(f"layer entry {e.name!r} names the root but is not a "
                                 "directory")
            self._root_dir(e)
            return
        pfd = self.root.dir_fd(parent, e.name, create=True)
        assert pfd is not None
        if kind in REGULAR_TYPES:
            self._file(e, pfd, name, path)
        elif kind in (DIRTYPE, GNUTYPE_DUMPDIR):
            self._directory(e, pfd, name, path)
        elif kind == SYMTYPE:
            self._symlink(e, pfd, name, path)
        elif kind == LNKTYPE:
            self._hardlink(e, pfd, name, path)
        elif kind in (CHRTYPE, BLKTYPE, FIFOTYPE):
            self._node(e, pfd, name, path)
        else:
            raise LayerError(f"layer entry {e.name!r} has unsupported tar type "
                             f"{kind.decode(errors='replace')!r}")

    def _file(self, e: TarEntry, pfd: int, name: str, path: str) -> None:
        try:
            fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self.root.remove(pfd, name)
            fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=pfd)
        try:
            if e.size:
                self.stream.copy_to(fd, e.size)
                self.reader.data_left -= e.size
            os.fchown(fd, e.uid, e.gid)
            os.fchmod(fd, e.mode)  # after chown, which clears setuid and setgid
            if e.xattrs:
                self._xattrs(fd, path, e.xattrs)
            os.utime(fd, ns=(e.mtime_ns, e.mtime_ns))
        finally:
            os.close(fd)

    def _directory(self, e: TarEntry, pfd: int, name: str, path: str) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self.root.remove(pfd, name)
                os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        self.root.remember(path, fd)
        os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        if e.xattrs:
            self._xattrs(fd, path, e.xattrs)
        # Writing the directory's content changes its mtime: set it at the end.
        self.dir_times.append((path, e.mtime_ns))

    def _root_dir(self, e: TarEntry) -> None:
        os.fchown(self.root.root_fd, e.uid, e.gid)
        os.fchmod(self.root.root_fd, e.mode)
        if e.xattrs:
            self._xattrs(self.root.root_fd, "", e.xattrs)
        self.dir_times.append(("", e.mtime_ns))

    def _symlink(self, e: TarEntry, pfd: int, name: str, path: str) -> None:
        # The target is stored as-is (absolute ones too): creating a symlink is harmless,
        # following one while writing is what we never do.
        if not e.linkname:
            raise LayerError(f"layer entry {e.name!r} is a symlink with an empty target")
        try:
            os.symlink(e.linkname, name, dir_fd=pfd)
        except FileExistsError:
            self.root.remove(pfd, name)
            os.symlink(e.linkname, name, dir_fd=pfd)
        os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(fd_path(pfd, name), path, e.xattrs)
        os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, e: TarEntry, pfd: int, name: str, path: str) -> None:
        target = clean_path(e.linkname, f"hardlink {e.name!r} target")
        if not target:
            raise LayerError(f"layer entry {e.name!r} is a hardlink to the root directory")
        if target == path:
            raise LayerError(f"layer entry {e.name!r} is a hardlink to itself")
        tparent, _, tname = target.rpartition("/")
        # Resolved beneath dest like any path; not cached (pfd must stay open).
        if tparent:
            try:
                tfd = openat2(self.root.root_fd, tparent, libc.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                raise LayerError(f"layer entry {e.name!r} is a hardlink to {target!r}, "
                                 "which does not exist") from None
            except OSError as exc:
                raise self.root.lookup_error(exc, tparent, e.name) from None
        else:
            tfd = os.dup(self.root.root_fd)
        try:
            try:
                st = os.stat(tname, dir_fd=tfd, follow_symlinks=False)
            except FileNotFoundError:
                raise LayerError(f"layer entry {e.name!r} is a hardlink to {target!r}, "
                                 "which does not exist") from None
            if stat.S_ISDIR(st.st_mode):
                raise LayerError(f"layer entry {e.name!r} is a hardlink to directory "
                                 f"{target!r}")
            try:
                os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
            except FileExistsError:
                existing = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if (existing.st_dev, existing.st_ino) == (st.st_dev, st.st_ino):
                    return
                self.root.remove(pfd, name)
                os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _node(self, e: TarEntry, pfd: int, name: str, path: str) -> None:
        if e.type == FIFOTYPE:
            kind, device = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if e.type == CHRTYPE else stat.S_IFBLK
            device = os.makedev(e.devmajor, e.devminor)
        try:
            os.mknod(name, kind | 0o600, device, dir_fd=pfd)
        except FileExistsError:
            self.root.remove(pfd, name)
            os.mknod(name, kind | 0o600, device, dir_fd=pfd)
        os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        # Just made by us, not a symlink: chmod may follow (fchmodat cannot refuse to).
        os.chmod(name, e.mode, dir_fd=pfd)
        if e.xattrs:
            self._xattrs(fd_path(pfd, name), path, e.xattrs)
        os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _xattrs(self, target: int | str, path: str, xattrs: dict[str, bytes]) -> None:
        for key, value in xattrs.items():
            if key.startswith(_FORBIDDEN_XATTR_PREFIXES):
                self._skip_xattr(path, key, "overlayfs-private attribute, never applied "
                                 "from a layer")
                continue
            try:
                if isinstance(target, int):
                    os.setxattr(target, key, value)
                else:
                    os.setxattr(target, key, value, follow_symlinks=False)
            except OSError as exc:
                if exc.errno in _XATTR_SKIPPABLE:
                    self._skip_xattr(path, key, exc.strerror or str(exc))
                elif exc.errno in (errno.EINVAL, errno.ERANGE, errno.E2BIG):
                    raise LayerError(f"layer entry {path!r}: extended attribute {key!r} is "
                                     f"not valid: {exc.strerror}") from None
                else:
                    raise

    def _skip_xattr(self, path: str, key: str, reason: str) -> None:
        log.warning("layer entry %r: xattr %s not set: %s", path, key, reason)
        self.skipped.append(SkippedXattr(path, key, reason))

    def set_dir_times(self) -> None:
        """Set the mtimes of the directories written, once their content is."""
        for path, ns in self.dir_times:
            if not path:
                os.utime(self.root.root_fd, ns=(ns, ns))
                continue
            parent, _, name = path.rpartition("/")
            try:
                pfd = self.root.dir_fd(parent, path, create=False)
                if pfd is None:
                    continue
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, LayerError):
                continue  # removed or replaced later in the same layer
            if stat.S_ISDIR(st.st_mode):
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            self.root.release_retired()
