"""Producing a layer tar from an overlayfs upper directory (a container's changes).

Owns the conversion from overlayfs's on-disk form to the OCI layer form and the tar
headers we write:

* an overlay whiteout (a 0:0 character device, or a file carrying
  ``trusted.overlay.whiteout``) becomes an empty ``.wh.NAME`` file (mode 0600, the
  device's owner and mtime, as Docker writes it);
* an opaque directory (``trusted.overlay.opaque=y``) is followed by an empty
  ``.wh..wh..opq`` entry with the directory's permissions, owner and mtime;
* ``trusted.overlay.*`` and ``user.overlay.*`` attributes are overlayfs's own and are
  dropped; ``security.selinux`` is the host's label, not the image's, and is dropped too;
  every other xattr is kept as a PAX ``SCHILY.xattr.*`` record; a directory renamed with
  ``redirect_dir`` or a metacopy-only file cannot be expressed in a layer and is refused;
* modes (with setuid, setgid, sticky), owners, mtimes (whole seconds, as Docker) are
  kept; uname and gname are left empty (no user database lookups); a file with several
  links inside the tree is stored once and then as hardlinks; device nodes and fifos are
  kept, sockets skipped.

Output is deterministic: entries in directory-walk order with names sorted bytewise,
POSIX ustar headers with PAX records (sorted) only where ustar cannot hold a value, and
gzip output without a timestamp, so the same tree gives the same diff ID and digest.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
import zlib
from collections.abc import Collection
from typing import BinaryIO, Final, Literal

from longboat.errors import InvalidArgument, SystemFault
from longboat.image.layer_paths import REAL_DIRS_ONLY, fd_path
from longboat.image.layer_result import LayerError, LayerResult
from longboat.image.layer_tar import BLOCK
from longboat.image.layer_whiteouts import (
    OPAQUE_MARKER,
    OVERLAY_OPAQUE_XATTR,
    OVERLAY_XATTR_PREFIXES,
    WHITEOUT_PREFIX,
)
from longboat.linux import libc

OutputCompression = Literal["none", "gzip"]

_CHUNK: Final = 1 << 20
_HOST_ONLY_XATTRS: Final = frozenset({"security.selinux"})
_REDIRECT_XATTRS: Final = ("trusted.overlay.redirect", "user.overlay.redirect")
_METACOPY_XATTRS: Final = ("trusted.overlay.metacopy", "user.overlay.metacopy")
_XWHITEOUT_XATTRS: Final = ("trusted.overlay.whiteout", "user.overlay.whiteout")
_OPAQUE_XATTRS: Final = (OVERLAY_OPAQUE_XATTR, "user.overlay.opaque")

_MAX_OCTAL_7: Final = 0o7777777
_MAX_OCTAL_11: Final = 0o77777777777
_PAX_NAME: Final = b"././@PaxHeader"


def _names(dir_fd: int) -> list[bytes]:
    with os.scandir(dir_fd) as it:
        return sorted(os.fsencode(e.name) for e in it)


class _Output:
    """The tar stream: hashed, optionally gzipped, buffered into ``out``."""

    def __init__(self, out: BinaryIO, compression: OutputCompression, level: int) -> None:
        self._out = out
        self.compression = compression
        self._zip = zlib.compressobj(level, zlib.DEFLATED, 31) if compression == "gzip" else None
        self.tar_hash = hashlib.sha256()
        self.raw_hash = hashlib.sha256()
        self.tar_size = 0
        self.raw_size = 0
        self._pending = bytearray()

    def write(self, data: bytes | bytearray | memoryview) -> None:
        self._pending += data
        if len(self._pending) >= _CHUNK:
            self._flush()

    def _flush(self, final: bool = False) -> None:
        data = bytes(self._pending)
        self._pending.clear()
        self.tar_hash.update(data)
        self.tar_size += len(data)
        if self._zip is not None:
            data = self._zip.compress(data)
            if final:
                data += self._zip.flush()
        if data:
            self.raw_hash.update(data)
            self.raw_size += len(data)
            try:
                self._out.write(data)
            except OSError as exc:
                raise SystemFault(f"writing the layer: {exc}") from exc

    def close(self) -> None:
        self.write(bytes(2 * BLOCK))  # end of archive
        self._flush(final=True)


def _pax_records(records: dict[str, bytes]) -> bytes:
    out = bytearray()
    for key in sorted(records):
        body = b" " + key.encode("utf-8", "surrogateescape") + b"=" + records[key] + b"\n"
        length = len(body) + 1
        while len(str(length)) + len(body) != length:  # the length counts its own digits
            length = len(str(length)) + len(body)
        out += str(length).encode() + body
    return bytes(out)


def _octal(value: int, width: int) -> bytes:
    """``width`` bytes: zero-padded octal digits and a NUL (0 when it does not fit)."""
    if value < 0 or value >= 8 ** (width - 1):
        value = 0
    return b"%0*o\0" % (width - 1, value)


def _header(name: bytes, kind: bytes, *, mode: int = 0, uid: int = 0, gid: int = 0,
            size: int = 0, mtime: int = 0, linkname: bytes = b"", devmajor: int = 0,
            devminor: int = 0) -> bytes:
    fields = [
        name[:100].ljust(100, b"\0"),
        _octal(mode, 8),
        _octal(uid, 8),
        _octal(gid, 8),
        _octal(size, 12),
        _octal(mtime, 12),
        b" " * 8,
        kind,
        linkname[:100].ljust(100, b"\0"),
        b"ustar\x0000",
        bytes(32),  # uname: no lookups, as Docker's FileInfoHeaderNoLookups
        bytes(32),  # gname
        _octal(devmajor, 8),
        _octal(devminor, 8),
        bytes(155),  # prefix: long names go in a PAX record instead
    ]
    hdr = b"".join(fields).ljust(BLOCK, b"\0")
    checksum = b"%06o\0 " % sum(hdr)
    return hdr[:148] + checksum + hdr[156:]


class _Walker:
    def __init__(self, upper: str, output: _Output, exclude: frozenset[bytes] = frozenset()
                 ) -> None:
        self.upper = upper
        self.out = output
        self.exclude = exclude
        self.links: dict[tuple[int, int], bytes] = {}
        self.entries = 0

    def entry(self, name: bytes, kind: bytes, st: os.stat_result, *, size: int = 0,
              linkname: bytes = b"", xattrs: dict[str, bytes] | None = None,
              mode: int | None = None) -> None:
        mode = stat.S_IMODE(st.st_mode) if mode is None else mode
        mtime = st.st_mtime_ns // 1_000_000_000
        records: dict[str, bytes] = {}
        if len(name) > 100 or not name.isascii():
            records["path"] = name
        if len(linkname) > 100 or not linkname.isascii():
            records["linkpath"] = linkname
        if st.st_uid > _MAX_OCTAL_7:
            records["uid"] = str(st.st_uid).encode()
        if st.st_gid > _MAX_OCTAL_7:
            records["gid"] = str(st.st_gid).encode()
        if size > _MAX_OCTAL_11:
            records["size"] = str(size).encode()
        if mtime < 0 or mtime > _MAX_OCTAL_11:
            records["mtime"] = str(mtime).encode()
        for key, value in (xattrs or {}).items():
            records["SCHILY.xattr." + key] = value
        if records:
            data = _pax_records(records)
            self.out.write(_header(_PAX_NAME, b"x", mode=0o644, size=len(data)))
            self.out.write(data)
            self.out.write(bytes(-len(data) % BLOCK))
        devmajor = devminor = 0
        if kind in (b"3", b"4"):
            devmajor, devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.out.write(_header(name, kind, mode=mode, uid=st.st_uid, gid=st.st_gid,
                               size=size, mtime=mtime, linkname=linkname,
                               devmajor=devmajor, devminor=devminor))
        self.entries += 1

    def walk(self, root_fd: int) -> None:
        """Every entry below the root, depth first, names sorted bytewise.

        Iterative, with one directory descriptor open at a time: a directory is opened
        again (beneath the root, no symlinks on the way) when the walk comes back to it,
        so neither the tree's depth nor the descriptor limit stops a commit.
        """
        stack: list[tuple[bytes, list[bytes], int]] = [(b"", _names(root_fd), 0)]
        current: tuple[bytes, int] = (b"", os.dup(root_fd))
        try:
            while stack:
                prefix, names, index = stack[-1]
                if index == len(names):
                    stack.pop()
                    continue
                stack[-1] = (prefix, names, index + 1)
                if self.exclude and prefix + names[index] in self.exclude:
                    continue
                if current[0] != prefix:
                    os.close(current[1])
                    current = (prefix, -1)  # closed: not to be closed again on an error
                    current = (prefix, self.open_dir(root_fd, prefix))
                below = self.one(current[1], prefix, names[index])
                if below is not None:
                    stack.append((prefix + names[index] + b"/", below, 0))
        finally:
            if current[1] >= 0:
                os.close(current[1])

    def open_dir(self, root_fd: int, prefix: bytes) -> int:
        path = os.fsdecode(prefix.rstrip(b"/")) or "."
        try:
            return libc.openat2(root_fd, path, os.O_RDONLY | os.O_DIRECTORY, 0, REAL_DIRS_ONLY)
        except OSError as exc:
            if exc.errno == errno.ENAMETOOLONG:
                raise LayerError(f"{self.upper}: {path[:80]!r}... is too deep a path for a "
                                 "layer") from None
            raise

    def one(self, dir_fd: int, prefix: bytes, raw: bytes) -> list[bytes] | None:
        """Write the entry ``raw`` of directory ``dir_fd``; a directory's own entries
        (sorted) are returned for the walk to visit next."""
        name = os.fsdecode(raw)
        path = prefix + raw
        st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            fd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         dir_fd=dir_fd)
            try:
                st = os.fstat(fd)
                xattrs, special = self.xattrs(fd, path)
                if any(k in special for k in _REDIRECT_XATTRS):
                    raise LayerError(
                        f"{self.upper}: directory {os.fsdecode(path)!r} was renamed on an "
                        "overlay mounted with redirect_dir=on, which a layer cannot "
                        "express; mount overlays with redirect_dir=off")
                self.entry(path + b"/", b"5", st, xattrs=xattrs)
                if any(special.get(k) == b"y" for k in _OPAQUE_XATTRS):
                    self.entry(path + b"/" + OPAQUE_MARKER.encode(), b"0", st,
                               mode=stat.S_IMODE(st.st_mode) & 0o777)
                return _names(fd)
            finally:
                os.close(fd)
        if stat.S_ISCHR(mode) and st.st_rdev == 0:
            self.whiteout(prefix, raw, st)
            return None
        if stat.S_ISSOCK(mode):
            return None  # a socket is a running process's, never an image's
        key = (st.st_dev, st.st_ino)
        if st.st_nlink > 1:
            first = self.links.get(key)
            if first is not None:
                self.entry(path, b"1", st, linkname=first)
                return None
        if stat.S_ISREG(mode):
            fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
            try:
                st = os.fstat(fd)
                xattrs, special = self.xattrs(fd, path)
                if any(k in special for k in _XWHITEOUT_XATTRS):
                    self.whiteout(prefix, raw, st)
                    return None
                if any(k in special for k in _METACOPY_XATTRS):
                    raise LayerError(
                        f"{self.upper}: {os.fsdecode(path)!r} is a metacopy-only file (its "
                        "data is in a lower layer); mount overlays with metacopy=off")
                self.entry(path, b"0", st, size=st.st_size, xattrs=xattrs)
                self.copy(fd, st.st_size, path)
            finally:
                os.close(fd)
        else:
            proc = fd_path(dir_fd, name)
            xattrs, _ = self.xattrs(proc, path)
            if stat.S_ISLNK(mode):
                target = os.fsencode(os.readlink(name, dir_fd=dir_fd))
                self.entry(path, b"2", st, linkname=target, xattrs=xattrs)
            elif stat.S_ISCHR(mode):
                self.entry(path, b"3", st, xattrs=xattrs)
            elif stat.S_ISBLK(mode):
                self.entry(path, b"4", st, xattrs=xattrs)
            elif stat.S_ISFIFO(mode):
                self.entry(path, b"6", st, xattrs=xattrs)
            else:
                return None
        if st.st_nlink > 1:
            self.links[key] = path
        return None

    def whiteout(self, prefix: bytes, raw: bytes, st: os.stat_result) -> None:
        self.entry(prefix + WHITEOUT_PREFIX.encode() + raw, b"0", st, mode=0o600)

    def xattrs(self, target: int | str, path: bytes
               ) -> tuple[dict[str, bytes], dict[str, bytes]]:
        """(xattrs to keep, overlayfs's own) of an inode."""
        follow = isinstance(target, int)
        try:
            names = os.listxattr(target, follow_symlinks=follow)
        except OSError as exc:
            if exc.errno in (errno.ENOTSUP, errno.EOPNOTSUPP):
                return {}, {}
            raise
        keep: dict[str, bytes] = {}
        special: dict[str, bytes] = {}
        for key in sorted(names):
            if key in _HOST_ONLY_XATTRS:
                continue
            try:
                value = os.getxattr(target, key, follow_symlinks=follow)
            except OSError as exc:
                if exc.errno == errno.ENODATA:  # removed meanwhile
                    continue
                raise
            if key.startswith(OVERLAY_XATTR_PREFIXES):
                special[key] = value
            else:
                keep[key] = value
        return keep, special

    def copy(self, fd: int, size: int, path: bytes) -> None:
        left = size
        while left:
            data = os.read(fd, min(left, _CHUNK))
            if not data:
                raise LayerError(f"{self.upper}: {os.fsdecode(path)!r} shrank while it was "
                                 "being read; stop or pause the container first")
            self.out.write(data)
            left -= len(data)
        self.out.write(bytes(-size % BLOCK))


def make_layer(upper: str, out: BinaryIO, *, compression: OutputCompression = "none",
               gzip_level: int = 6, exclude: Collection[str] = ()) -> LayerResult:
    """Write the layer tar of the overlayfs upper directory ``upper`` to ``out``;
    ``exclude``: paths relative to it left out, with all that is below them.

    Returns the diff ID (sha256 of the tar), the digest and size of what was written
    (the gzip stream when ``compression`` is "gzip") and the number of entries.
    """
    if compression not in ("none", "gzip"):
        raise InvalidArgument(f"layer compression must be 'none' or 'gzip', not "
                              f"{compression!r}")
    try:
        root_fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError as exc:
        raise SystemFault(f"cannot open upper directory {upper!r}: {exc.strerror}") from exc
    output = _Output(out, compression, gzip_level)
    walker = _Walker(upper, output, frozenset(os.fsencode(p.strip("/")) for p in exclude))
    try:
        walker.walk(root_fd)
    except OSError as exc:
        raise SystemFault(f"reading {upper!r} for a layer: {exc}") from exc
    finally:
        os.close(root_fd)
    output.close()
    return LayerResult(
        diff_id="sha256:" + output.tar_hash.hexdigest(),
        digest="sha256:" + output.raw_hash.hexdigest(),
        size=output.raw_size,
        compression=compression,
        uncompressed_size=output.tar_size,
        entries=walker.entries,
    )
