"""Applying a layer tar onto a directory: Longboat's own extractor.

Owns reading layer blobs (plain, gzip, zstd, bzip2, xz; detected by magic), their digests
(``diff_id`` over the uncompressed tar, ``digest`` over the bytes as given), the tar
format (ustar, GNU long names, PAX records, SCHILY xattrs) and every filesystem effect
of an entry. ``tarfile`` is not used: its filters are unsafe and wrong for layers, and
its stream reader copies data through small buffers.

Invariants (docs/layers.md says why):

* Nothing is written, changed or removed outside ``dest``. Entry names and hardlink
  targets with a ``..`` component or a leading ``/`` are refused. Every parent directory
  is opened with ``openat2(RESOLVE_BENEATH)`` from a descriptor of ``dest``, so a path
  that goes through a symlink leading out of ``dest`` (absolute, or ``..`` above the
  root) is refused by the kernel and reported as an escape; every change is an ``*at``
  call on that parent that never follows the last component.
* An existing entry is replaced (unlinked, or removed recursively), never written
  through; only a directory over a directory is merged.
* Whiteouts: ``.wh.NAME`` and ``.wh..wh..opq`` hide what lower layers put there, never
  what this layer itself writes, wherever the marker sits in the tar. In ``"delete"``
  mode (dest holds the lower layers) they remove; in ``"overlay"`` mode (dest is the
  layer's own empty directory, to be an overlayfs lower) they become a 0:0 character
  device and ``trusted.overlay.opaque=y``. Markers are never written as files.
* Bad input (a malformed, truncated or oversized stream, a refused path) raises
  :class:`LayerError`; a failing host (ENOSPC, EIO) raises ``SystemFault``. Either way
  ``dest`` may hold part of the layer: callers extract into a fresh directory and
  discard it on failure.
"""

from __future__ import annotations

import bz2
import ctypes
import ctypes.util
import errno
import hashlib
import logging
import lzma
import os
import queue
import stat
import sys
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO, Final, Literal, Protocol

from longboat.errors import InvalidArgument, SystemFault
from longboat.linux import libc

log = logging.getLogger(__name__)

Compression = Literal["auto", "none", "gzip", "zstd", "bzip2", "xz"]
WhiteoutMode = Literal["delete", "overlay"]

#: Largest single entry accepted by default (declared size); beyond is "absurd".
DEFAULT_MAX_ENTRY_SIZE: Final = 64 << 30
#: Largest uncompressed layer accepted by default (a decompression bomb stops here).
DEFAULT_MAX_SIZE: Final = 256 << 30
#: PAX records and GNU long names are metadata: a few KiB in practice.
MAX_META_SIZE: Final = 1 << 20

WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR: Final = "trusted.overlay.opaque"

BLOCK: Final = 512
_CHUNK: Final = 1 << 20
_ZERO_BLOCK: Final = bytes(BLOCK)
_DIR_CACHE_SIZE: Final = 512
_FS_ENCODING: Final = sys.getfilesystemencoding()

_BENEATH: Final = libc.RESOLVE_BENEATH | libc.RESOLVE_NO_MAGICLINKS
_REAL_DIRS_ONLY: Final = _BENEATH | libc.RESOLVE_NO_SYMLINKS
_CREATE_FLAGS: Final = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC
_DIR_FLAGS: Final = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC

# Entry types (POSIX ustar, GNU and PAX extensions).
_REG, _AREG, _CONTIG = b"0", b"\0", b"7"
_LNK, _SYM, _CHR, _BLK, _DIR, _FIFO = b"1", b"2", b"3", b"4", b"5", b"6"
_PAX, _GLOBAL_PAX, _GNU_LONGNAME, _GNU_LONGLINK = b"x", b"g", b"L", b"K"
_GNU_DUMPDIR, _GNU_SPARSE, _GNU_MULTIVOL, _GNU_VOLHDR = b"D", b"S", b"M", b"V"
_REGULAR_TYPES: Final = frozenset({_REG, _AREG, _CONTIG})

_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_BZIP2 = b"BZh"
_MAGIC_XZ = b"\xfd7zXZ\x00"

# Extended attributes a layer may not set: overlayfs reads its own (redirects, metacopy,
# opaque) from a lower directory, so a layer carrying them could re-point lookups.
_FORBIDDEN_XATTR_PREFIXES: Final = ("trusted.overlay.", "user.overlay.")
# Errors that mean "this filesystem or this kind of inode does not take that xattr".
_XATTR_SKIPPABLE: Final = frozenset({errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP})


class LayerError(InvalidArgument):
    """A layer blob that cannot be applied: malformed, truncated, oversized or hostile."""


@dataclass(frozen=True)
class SkippedXattr:
    """An extended attribute of an entry that was not set, and why."""

    path: str
    name: str
    reason: str


@dataclass(frozen=True)
class LayerResult:
    """What applying (or producing) a layer measured.

    ``diff_id`` is the sha256 of the uncompressed tar (the image config's ``rootfs``);
    ``digest`` and ``size`` are of the bytes as given (the blob in a manifest), equal to
    ``diff_id`` and ``uncompressed_size`` for a plain tar.
    """

    diff_id: str
    digest: str
    size: int
    compression: str
    uncompressed_size: int
    entries: int
    skipped_xattrs: tuple[SkippedXattr, ...] = field(default=())


# --------------------------------------------------------------------------------------
# Reading the blob: decompression and digests


class _Input:
    """The blob as given, decompressed into chunks, both sides hashed as they pass."""

    def __init__(self, stream: BinaryIO, compression: Compression, max_size: int) -> None:
        self._stream = stream
        self._max_size = max_size
        self.raw_hash = hashlib.sha256()
        self.tar_hash = hashlib.sha256()
        self.raw_size = 0
        self.tar_size = 0
        first = self._read_raw()
        self.compression = _detect(first, compression)
        self._first = first

    def _read_raw(self) -> bytes:
        try:
            data = self._stream.read(_CHUNK)
        except OSError as exc:
            raise SystemFault(f"reading the layer stream: {exc}") from exc
        if data:
            self.raw_hash.update(data)
            self.raw_size += len(data)
        return data

    def _raw_chunks(self) -> Iterator[bytes]:
        data = self._first
        self._first = b""
        while data:
            yield data
            data = self._read_raw()

    def chunks(self) -> Iterator[bytes]:
        """Uncompressed chunks of the tar stream, each hashed into ``tar_hash``."""
        if self.compression == "none":
            source = self._raw_chunks()
        elif self.compression == "gzip":
            source = _gunzip(self._raw_chunks())
        elif self.compression == "zstd":
            source = _unzstd(self._raw_chunks())
        elif self.compression == "bzip2":
            source = _unstream(self._raw_chunks(), bz2.BZ2Decompressor, "bzip2", _MAGIC_BZIP2)
        else:
            source = _unstream(self._raw_chunks(), _xz_decompressor, "xz", _MAGIC_XZ)
        plain = self.compression == "none"
        limit = self._max_size
        for chunk in source:
            if not plain:
                self.tar_hash.update(chunk)
            self.tar_size += len(chunk)
            if self.tar_size > limit:
                raise LayerError(f"layer is larger than the limit of {limit} bytes uncompressed")
            yield chunk

    @property
    def diff_id(self) -> str:
        hashed = self.raw_hash if self.compression == "none" else self.tar_hash
        return "sha256:" + hashed.hexdigest()

    @property
    def digest(self) -> str:
        return "sha256:" + self.raw_hash.hexdigest()


class _Prefetch:
    """Runs a chunk iterator in a thread a few chunks ahead of its consumer.

    Reading, decompressing and hashing release the GIL, so they overlap with the
    extractor's own work (and its writes) on another core, as ``tar -xz`` overlaps with
    gzip. Errors raised by the iterator reach the consumer in order.
    """

    _DONE: Final = object()

    def __init__(self, source: Iterator[bytes], depth: int = 4) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=depth)
        self._stop = threading.Event()
        self._finished = False
        self._thread = threading.Thread(target=self._produce, args=(source,),
                                        name="layer-reader", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> bool:
        while not self._stop.is_set():
            try:
                self._queue.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _produce(self, source: Iterator[bytes]) -> None:
        try:
            for chunk in source:
                if not self._put(chunk):
                    return
        except BaseException as exc:  # handed to the consumer, which raises it
            self._put(exc)
            return
        self._put(self._DONE)

    def __iter__(self) -> Iterator[bytes]:
        return self

    def __next__(self) -> bytes:
        if self._finished:
            raise StopIteration
        item = self._queue.get()
        if item is self._DONE:
            self._finished = True
            raise StopIteration
        if isinstance(item, BaseException):
            self._finished = True
            raise item
        assert isinstance(item, bytes)
        return item

    def close(self) -> None:
        """Stop the thread (it may finish a read in progress first) and wait for it."""
        self._stop.set()
        while self._thread.is_alive():
            try:
                while True:
                    self._queue.get_nowait()
            except queue.Empty:
                pass
            self._thread.join(0.05)


def _detect(first: bytes, wanted: Compression) -> str:
    if first.startswith(_MAGIC_GZIP):
        found = "gzip"
    elif first.startswith(_MAGIC_ZSTD):
        found = "zstd"
    elif first.startswith(_MAGIC_BZIP2):
        found = "bzip2"
    elif first.startswith(_MAGIC_XZ):
        found = "xz"
    else:
        found = "none"
    if not first:
        raise LayerError("layer stream is empty: not a tar archive")
    if wanted != "auto" and wanted != found:
        shown = "a plain tar (or not an archive)" if found == "none" else found
        raise LayerError(f"layer was declared {wanted} but its content is {shown}")
    return found


def _gunzip(raw: Iterator[bytes]) -> Iterator[bytes]:
    # Several gzip members one after another are one stream (pigz, appended layers).
    dec = zlib.decompressobj(31)
    started = False
    for data in raw:
        while data:
            if not started and not data.startswith(_MAGIC_GZIP[: len(data)]):
                raise LayerError("layer has trailing data after its gzip stream")
            started = True
            try:
                out = dec.decompress(data, _CHUNK)
            except zlib.error as exc:
                raise LayerError(f"layer is not valid gzip: {exc}") from exc
            if out:
                yield out
            if dec.eof:
                data = dec.unused_data
                dec = zlib.decompressobj(31)
                started = False
            else:
                data = dec.unconsumed_tail
        # Input exhausted for now; drain what zlib still holds back.
        while started and not dec.eof:
            try:
                out = dec.decompress(b"", _CHUNK)
            except zlib.error as exc:
                raise LayerError(f"layer is not valid gzip: {exc}") from exc
            if not out:
                break
            yield out
    if started and not dec.eof:
        raise LayerError("layer's gzip stream is truncated")


class _Decompressor(Protocol):
    """What bz2.BZ2Decompressor and lzma.LZMADecompressor share."""

    @property
    def eof(self) -> bool: ...
    @property
    def unused_data(self) -> bytes: ...
    @property
    def needs_input(self) -> bool: ...
    def decompress(self, data: bytes, max_length: int = -1) -> bytes: ...


def _xz_decompressor() -> _Decompressor:
    return lzma.LZMADecompressor(format=lzma.FORMAT_XZ)


def _unstream(raw: Iterator[bytes], factory: Callable[[], _Decompressor],
              name: str, magic: bytes) -> Iterator[bytes]:
    """bz2/lzma decompressors (same interface), several streams one after another."""
    dec = factory()
    started = False
    for data in raw:
        while True:
            if data and not started:
                if not data.startswith(magic[: len(data)]):
                    raise LayerError(f"layer has trailing data after its {name} stream")
                started = True
            if not started:
                break
            try:
                out = dec.decompress(data, _CHUNK)
            except (OSError, EOFError, lzma.LZMAError) as exc:
                raise LayerError(f"layer is not valid {name}: {exc}") from exc
            if out:
                yield out
            if dec.eof:
                data = dec.unused_data
                dec = factory()
                started = False
                continue
            if dec.needs_input:
                break
            data = b""
    if started:
        raise LayerError(f"layer's {name} stream is truncated")


class _ZstdBuffer(ctypes.Structure):
    _fields_ = [("ptr", ctypes.c_void_p), ("size", ctypes.c_size_t),
                ("pos", ctypes.c_size_t)]


_zstd_lib: ctypes.CDLL | None = None


def _libzstd() -> ctypes.CDLL:
    """libzstd (Debian's libzstd1, which apt itself needs) through ctypes."""
    global _zstd_lib
    if _zstd_lib is not None:
        return _zstd_lib
    name = ctypes.util.find_library("zstd") or "libzstd.so.1"
    try:
        lib = ctypes.CDLL(name)
    except OSError as exc:
        raise LayerError("layer is zstd-compressed, but libzstd (Debian package libzstd1) "
                         f"cannot be loaded: {exc}") from exc
    lib.ZSTD_createDCtx.restype = ctypes.c_void_p
    lib.ZSTD_createDCtx.argtypes = []
    lib.ZSTD_freeDCtx.argtypes = [ctypes.c_void_p]
    lib.ZSTD_freeDCtx.restype = ctypes.c_size_t
    lib.ZSTD_decompressStream.argtypes = [ctypes.c_void_p, ctypes.POINTER(_ZstdBuffer),
                                          ctypes.POINTER(_ZstdBuffer)]
    lib.ZSTD_decompressStream.restype = ctypes.c_size_t
    lib.ZSTD_isError.argtypes = [ctypes.c_size_t]
    lib.ZSTD_isError.restype = ctypes.c_uint
    lib.ZSTD_getErrorName.argtypes = [ctypes.c_size_t]
    lib.ZSTD_getErrorName.restype = ctypes.c_char_p
    _zstd_lib = lib
    return lib


def _unzstd(raw: Iterator[bytes]) -> Iterator[bytes]:
    lib = _libzstd()
    dctx = lib.ZSTD_createDCtx()
    if not dctx:
        raise SystemFault("zstd: cannot allocate a decompression context")
    out_buf = ctypes.create_string_buffer(_CHUNK)
    pending = 0  # ZSTD_decompressStream's last hint: 0 when a frame is complete
    try:
        for data in raw:
            src = ctypes.create_string_buffer(data, len(data))
            inb = _ZstdBuffer(ctypes.cast(src, ctypes.c_void_p), len(data), 0)
            while True:
                outb = _ZstdBuffer(ctypes.cast(out_buf, ctypes.c_void_p), _CHUNK, 0)
                ret = lib.ZSTD_decompressStream(dctx, ctypes.byref(outb), ctypes.byref(inb))
                if lib.ZSTD_isError(ret):
                    reason = lib.ZSTD_getErrorName(ret).decode(errors="replace")
                    raise LayerError(f"layer is not valid zstd: {reason}")
                pending = ret
                if outb.pos:
                    yield ctypes.string_at(out_buf, outb.pos)
                if inb.pos == inb.size and outb.pos < _CHUNK:
                    break
        if pending != 0:
            raise LayerError("layer's zstd stream is truncated")
    finally:
        lib.ZSTD_freeDCtx(dctx)


# --------------------------------------------------------------------------------------
# Reading the tar stream


class _TarStream:
    """Exact reads over the uncompressed chunks, without copying file data."""

    __slots__ = ("_buf", "_chunks", "_pos", "offset")

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buf = b""
        self._pos = 0
        self.offset = 0  # of the next unread byte, for messages

    def _refill(self) -> bool:
        for chunk in self._chunks:
            if chunk:
                self._buf = chunk
                self._pos = 0
                return True
        return False

    def block(self) -> bytes:
        """The next 512-byte block; shorter (or b"") only at the end of the stream."""
        pos = self._pos
        end = pos + BLOCK
        if end <= len(self._buf):
            self._pos = end
            self.offset += BLOCK
            return self._buf[pos:end]
        return self.read(BLOCK, allow_eof=True)

    def read(self, n: int, *, allow_eof: bool = False) -> bytes:
        parts: list[bytes] = []
        want = n
        while want:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._refill():
                    got = n - want
                    if allow_eof:
                        self.offset += got
                        return b"".join(parts)
                    raise LayerError(f"layer is truncated: stream ends at offset "
                                     f"{self.offset + got}, {want} bytes short")
                continue
            take = min(avail, want)
            parts.append(self._buf[self._pos:self._pos + take])
            self._pos += take
            want -= take
        self.offset += n
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def copy_to(self, fd: int, n: int) -> None:
        """Write the next ``n`` bytes to ``fd``."""
        write = os.write
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._refill():
                    raise LayerError(f"layer is truncated: stream ends at offset "
                                     f"{self.offset}, {n} bytes of file data short")
                continue
            take = avail if avail < n else n
            pos = self._pos
            if take == len(self._buf):
                done = write(fd, self._buf)
            else:
                done = write(fd, memoryview(self._buf)[pos:pos + take])
            self._pos = pos + done
            self.offset += done
            n -= done

    def skip(self, n: int) -> None:
        while n:
            avail = len(self._buf) - self._pos
            if not avail:
                if not self._refill():
                    raise LayerError(f"layer is truncated: stream ends at offset "
                                     f"{self.offset}, {n} bytes short")
                continue
            take = avail if avail < n else n
            self._pos += take
            self.offset += take
            n -= take

    def drain(self) -> None:
        """Consume the rest (the digests cover the whole stream)."""
        self._buf = b""
        self._pos = 0
        for _ in self._chunks:
            pass


def _number(field_: bytes) -> int:
    if field_[:1] and field_[0] & 0x80:
        # GNU base-256: big-endian two's complement with the top bit as the marker.
        value = int.from_bytes(field_, "big") & ~(1 << (8 * len(field_) - 1))
        if field_[0] & 0x40:
            value -= 1 << (8 * len(field_) - 1)
        return value
    end = field_.find(b"\0")
    if end >= 0:
        field_ = field_[:end]
    return int(field_.strip() or b"0", 8)


def _decode(raw: bytes) -> str:
    """A name from the archive as the str that os functions turn back into those bytes."""
    return raw.decode(_FS_ENCODING, "surrogateescape")


def _cstr(field_: bytes) -> bytes:
    end = field_.find(b"\0")
    return field_ if end < 0 else field_[:end]


def _checksum_ok(hdr: bytes) -> bool:
    # The sum of the header's bytes with the checksum field read as spaces. adler32's
    # low half is 1 + that sum modulo 65521: a cheap first test on the usual "%06o"
    # field; anything else gets the exact test.
    field_sum = sum(hdr[148:156])
    try:
        stored = int(hdr[148:154], 8)
        if (zlib.adler32(hdr) & 0xFFFF) == (stored - 8 * 32 + field_sum + 1) % 65521:
            return True
    except ValueError:
        pass
    try:
        stored = _number(hdr[148:156])
    except ValueError:
        return False
    if stored == sum(hdr) - field_sum + 8 * 32:
        return True
    # Some old tars summed signed chars.
    signed = sum(b - 256 if b > 127 else b for b in hdr[:148] + hdr[156:]) + 8 * 32
    return stored == signed


def _parse_pax(data: bytes, where: int) -> dict[str, bytes]:
    records: dict[str, bytes] = {}
    pos = 0
    while pos < len(data):
        if data[pos] == 0:  # NUL padding after the last record
            break
        space = data.find(b" ", pos)
        try:
            length = int(data[pos:space])
        except ValueError:
            raise LayerError(f"layer has a malformed PAX header at offset {where}") from None
        end = pos + length
        if space < 0 or length <= 0 or end > len(data) or data[end - 1:end] != b"\n":
            raise LayerError(f"layer has a malformed PAX header at offset {where}")
        key, sep, value = data[space + 1:end - 1].partition(b"=")
        if not sep:
            raise LayerError(f"layer has a malformed PAX record at offset {where}")
        records[key.decode("utf-8", "surrogateescape")] = value
        pos = end
    return records


def _pax_time_ns(value: bytes) -> int:
    text = value.decode("ascii", "replace")
    sign = -1 if text.startswith("-") else 1
    whole, _, frac = text.lstrip("-").partition(".")
    try:
        ns = int(whole or "0") * 1_000_000_000 + int((frac + "000000000")[:9] or "0")
    except ValueError:
        raise LayerError(f"layer has a malformed PAX time {text!r}") from None
    return sign * ns


def _clean(raw: str, what: str) -> str:
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


@dataclass(slots=True)
class _Entry:
    """One tar entry, after its PAX records and GNU long names are applied."""

    name: str
    type: bytes
    mode: int
    uid: int
    gid: int
    size: int
    mtime_ns: int
    linkname: str
    devmajor: int
    devminor: int
    xattrs: dict[str, bytes] | None
    offset: int


class _TarReader:
    """Entries of a tar stream; meta entries (PAX, GNU long names) folded in."""

    def __init__(self, stream: _TarStream, max_entry_size: int) -> None:
        self.stream = stream
        self.max_entry_size = max_entry_size
        self.data_left = 0  # unread data (and padding) of the current entry

    def __iter__(self) -> Iterator[_Entry]:
        stream = self.stream
        pax: dict[str, bytes] | None = None
        longname: bytes | None = None
        longlink: bytes | None = None
        first = True
        while True:
            if self.data_left:
                stream.skip(self.data_left)
                self.data_left = 0
            offset = stream.offset
            hdr = stream.block()
            if len(hdr) < BLOCK:
                if first:
                    raise LayerError("layer is not a tar archive (shorter than one header)")
                if hdr:
                    raise LayerError(f"layer is truncated: stream ends inside a header at "
                                     f"offset {offset}")
                raise LayerError(f"layer is truncated: no end-of-archive marker (stream "
                                 f"ends at offset {offset})")
            if hdr == _ZERO_BLOCK:
                if pax is not None or longname is not None or longlink is not None:
                    raise LayerError(f"layer ends after an extended header at offset "
                                     f"{offset}")
                second = stream.block()
                if second and second != _ZERO_BLOCK[: len(second)]:
                    raise LayerError(f"layer has a zero block followed by data at offset "
                                     f"{offset}: not a valid tar archive")
                return
            if not _checksum_ok(hdr):
                if first:
                    raise LayerError("layer is not a tar archive (its first header has a bad "
                                     "checksum)")
                raise LayerError(f"layer has a corrupt tar header at offset {offset} (bad "
                                 "checksum)")
            first = False
            try:
                try:
                    size = int(hdr[124:135], 8)
                except ValueError:
                    size = _number(hdr[124:136])
                kind = hdr[156:157]
                if kind in (_PAX, _GLOBAL_PAX, _GNU_LONGNAME, _GNU_LONGLINK):
                    if size > MAX_META_SIZE or size < 0:
                        raise LayerError(f"layer has an extended header of {size} bytes at "
                                         f"offset {offset}, beyond the limit of "
                                         f"{MAX_META_SIZE}")
                    data = stream.read(size)
                    stream.skip(-size % BLOCK)
                    if kind == _PAX:
                        pax = _parse_pax(data, offset)
                    elif kind == _GNU_LONGNAME:
                        longname = _cstr(data)
                    elif kind == _GNU_LONGLINK:
                        longlink = _cstr(data)
                    # Global PAX headers are ignored, as Docker does.
                    continue
                entry = self._entry(hdr, kind, size, offset, pax, longname, longlink)
            except ValueError as exc:
                raise LayerError(f"layer has a malformed tar header at offset {offset}: "
                                 f"{exc}") from None
            pax = longname = longlink = None
            yield entry

    @staticmethod
    def _pax(pax: dict[str, bytes], uid: int, gid: int, mtime_ns: int, size: int,
             raw_name: bytes, raw_link: bytes
             ) -> tuple[int, int, int, int, bytes, bytes, dict[str, bytes] | None]:
        """Header fields overridden by the entry's PAX records, and its xattrs."""
        xattrs: dict[str, bytes] | None = None
        for key, value in pax.items():
            if key == "path":
                raw_name = value
            elif key == "linkpath":
                raw_link = value
            elif key == "size":
                size = int(value)
            elif key == "uid":
                uid = int(value)
            elif key == "gid":
                gid = int(value)
            elif key == "mtime":
                mtime_ns = _pax_time_ns(value)
            elif key.startswith("SCHILY.xattr."):
                if xattrs is None:
                    xattrs = {}
                xattrs[key[len("SCHILY.xattr."):]] = value
            elif key.startswith("GNU.sparse."):
                raise LayerError(f"layer entry {_decode(raw_name)!r} is a sparse file; "
                                 "sparse files are not supported in layers")
        return uid, gid, mtime_ns, size, raw_name, raw_link, xattrs

    def _entry(self, hdr: bytes, kind: bytes, size: int, offset: int,
               pax: dict[str, bytes] | None, longname: bytes | None,
               longlink: bytes | None) -> _Entry:
        if longname is not None:
            raw_name = longname
        else:
            raw_name = hdr[0:100]
            end = raw_name.find(b"\0")
            if end >= 0:
                raw_name = raw_name[:end]
            if hdr[345] and hdr[257:263] == b"ustar\x00":  # POSIX ustar: a prefix field
                raw_name = _cstr(hdr[345:500]) + b"/" + raw_name
        if longlink is not None:
            raw_link = longlink
        elif kind in (_SYM, _LNK):
            raw_link = _cstr(hdr[157:257])
        else:
            raw_link = b""
        try:  # the usual form: zero-padded octal digits and a NUL
            mode = int(hdr[100:107], 8)
            uid = int(hdr[108:115], 8)
            gid = int(hdr[116:123], 8)
            mtime_ns = int(hdr[136:147], 8) * 1_000_000_000
        except ValueError:  # base-256, space-padded or empty fields
            mode = _number(hdr[100:108])
            uid = _number(hdr[108:116])
            gid = _number(hdr[116:124])
            mtime_ns = _number(hdr[136:148]) * 1_000_000_000
        xattrs: dict[str, bytes] | None = None
        if pax:
            uid, gid, mtime_ns, size, raw_name, raw_link, xattrs = self._pax(
                pax, uid, gid, mtime_ns, size, raw_name, raw_link)
        if uid < 0 or gid < 0:
            raise LayerError(f"layer entry {_decode(raw_name)!r} has a negative owner")
        if kind in _REGULAR_TYPES or kind == _GNU_DUMPDIR:
            if size < 0:
                raise LayerError(f"layer entry at offset {offset} has a negative size")
            if size > self.max_entry_size:
                raise LayerError(f"layer entry {_decode(raw_name)!r} declares {size} "
                                 f"bytes, beyond the limit of {self.max_entry_size} bytes")
            self.data_left = size + (-size % BLOCK)
        else:
            # Links, directories, devices and fifos carry no data, whatever size says.
            size = 0
        if kind in (_CHR, _BLK):
            devmajor = _number(hdr[329:337])
            devminor = _number(hdr[337:345])
        else:
            devmajor = devminor = 0
            if kind in (_GNU_SPARSE, _GNU_MULTIVOL, _GNU_VOLHDR):
                raise LayerError(f"layer entry {_decode(raw_name)!r} has tar type "
                                 f"{kind.decode(errors='replace')!r} (sparse, multi-volume "
                                 "or volume header), which layers may not use")
        name = _decode(raw_name)
        if kind == _AREG and name.endswith("/"):
            kind = _DIR  # pre-POSIX archives mark directories by a trailing slash
        return _Entry(name, kind, mode & 0o7777, uid, gid, size, mtime_ns,
                      _decode(raw_link) if raw_link else "", devmajor, devminor, xattrs,
                      offset)


# --------------------------------------------------------------------------------------
# Filesystem effects


def _openat2(root_fd: int, path: str, flags: int, resolve: int = _BENEATH) -> int:
    for _ in range(16):
        try:
            return libc.openat2(root_fd, path, flags, 0, resolve)
        except BlockingIOError:  # EAGAIN: a concurrent rename; the kernel asks to retry
            continue
    return libc.openat2(root_fd, path, flags, 0, resolve)


def _list(fd: int) -> list[tuple[str, bool]]:
    """(name, is a directory) of every entry of directory ``fd``; symlinks are not."""
    with os.scandir(fd) as it:
        return [(e.name, e.is_dir(follow_symlinks=False)) for e in it]


def _rmtree(top_fd: int, name: str) -> None:
    """Remove directory ``name`` of ``top_fd`` and all below it.

    Iterative (no recursion limit, one descriptor open at a time), and every directory
    is opened beneath ``top_fd`` with no symlink allowed anywhere on its path.
    """
    stack = [name]
    while stack:
        rel = stack[-1]
        fd = _openat2(top_fd, rel, os.O_RDONLY | os.O_DIRECTORY, _REAL_DIRS_ONLY)
        subdirs: list[str] = []
        try:
            for child, is_dir in _list(fd):
                if is_dir:
                    subdirs.append(f"{rel}/{child}")
                else:
                    os.unlink(child, dir_fd=fd)
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
        pfd = _openat2(top_fd, parent, libc.O_PATH | os.O_DIRECTORY, _REAL_DIRS_ONLY)
        try:
            os.rmdir(base, dir_fd=pfd)
        finally:
            os.close(pfd)


class _Applier:
    def __init__(self, dest: str, mode: WhiteoutMode, reader: _TarReader) -> None:
        self.dest = dest
        self.mode = mode
        self.reader = reader
        self.stream = reader.stream
        try:
            self.root_fd = os.open(dest, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise SystemFault(f"cannot open layer destination {dest!r}: "
                              f"{exc.strerror}") from exc
        # Parent directory descriptors by path: most entries share their parent with the
        # previous one. Descriptors leaving the cache are closed only between entries,
        # so a descriptor in use is never closed (and its number never reused) under us.
        self.dirs: dict[str, int] = {}
        self.retired: list[int] = []
        # What this layer wrote: names by parent directory, each ancestor of a written
        # path listed in its own parent. Whiteouts never hide these.
        self.children: dict[str, set[str]] = {}
        self.dir_times: list[tuple[str, int]] = []
        self.skipped: list[SkippedXattr] = []
        self.entries = 0

    def close(self) -> None:
        for fd in self.retired:
            os.close(fd)
        self.retired.clear()
        for fd in self.dirs.values():
            os.close(fd)
        self.dirs.clear()
        os.close(self.root_fd)

    # --- directory descriptors

    def _cached(self, path: str) -> int | None:
        fd = self.dirs.pop(path, None)
        if fd is not None:
            self.dirs[path] = fd  # most recently used last
        return fd

    def _remember(self, path: str, fd: int) -> None:
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

    def _dir(self, path: str, entry: str, *, create: bool) -> int | None:
        """A descriptor of directory ``path`` (inside dest); None if missing and not
        ``create``. Missing directories are created 0755 root:root, as Docker does."""
        if not path:
            return self.root_fd
        fd = self._cached(path)
        if fd is not None:
            return fd
        try:
            fd = _openat2(self.root_fd, path, libc.O_PATH | os.O_DIRECTORY)
        except FileNotFoundError:
            if not create:
                return None
            return self._makedirs(path, entry)
        except OSError as exc:
            raise self._lookup_error(exc, path, entry) from None
        self._remember(path, fd)
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
                fd = _openat2(self.root_fd, ancestor, libc.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                have -= 1
                continue
            except OSError as exc:
                raise self._lookup_error(exc, ancestor, entry) from None
            self._remember(ancestor, fd)
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
                raise self._lookup_error(exc, made, entry) from None
            os.fchmod(fd, 0o755)  # whatever the umask
            self._remember(made, fd)
        return fd

    def _lookup_error(self, exc: OSError, path: str, entry: str) -> Exception:
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

    def _remove(self, pfd: int, name: str) -> bool:
        """Remove ``name`` in ``pfd`` whatever it is; False if there was nothing."""
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            _rmtree(pfd, name)
            self._forget_all()
        else:
            os.unlink(name, dir_fd=pfd)
            if stat.S_ISLNK(st.st_mode):
                self._forget_all()
        return True

    # --- entries

    def run(self) -> None:
        for entry in self.reader:
            path = _clean(entry.name, "layer entry")
            parent, _, name = path.rpartition("/")
            try:
                if name.startswith(WHITEOUT_PREFIX):
                    self._whiteout(entry, path, parent, name)
                else:
                    self._apply(entry, path, parent, name)
            except OSError as exc:
                raise self._entry_error(exc, entry.name) from exc
            if self.retired:
                for fd in self.retired:
                    os.close(fd)
                self.retired.clear()
            self.entries += 1
        self._set_dir_times()

    def _entry_error(self, exc: OSError, name: str) -> Exception:
        if exc.errno in (errno.EXDEV, errno.ELOOP, errno.ENOTDIR, errno.ENAMETOOLONG,
                         errno.EISDIR):
            return LayerError(f"layer entry {name!r} cannot be applied: {exc.strerror}")
        return SystemFault(f"applying layer entry {name!r} to {self.dest!r}: {exc.strerror}")

    def _apply(self, e: _Entry, path: str, parent: str, name: str) -> None:
        kind = e.type
        if not path:
            if kind != _DIR:
                raise LayerError(f"layer entry {e.name!r} names the root but is not a "
                                 "directory")
            self._root_dir(e)
            return
        pfd = self._dir(parent, e.name, create=True)
        assert pfd is not None
        self._mark(parent, name)
        if kind in _REGULAR_TYPES:
            self._file(e, pfd, name, path)
        elif kind in (_DIR, _GNU_DUMPDIR):
            self._directory(e, pfd, name, path)
        elif kind == _SYM:
            self._symlink(e, pfd, name, path)
        elif kind == _LNK:
            self._hardlink(e, pfd, name, path)
        elif kind in (_CHR, _BLK, _FIFO):
            self._node(e, pfd, name, path)
        else:
            raise LayerError(f"layer entry {e.name!r} has unsupported tar type "
                             f"{kind.decode(errors='replace')!r}")

    def _mark(self, parent: str, name: str) -> None:
        kids = self.children.get(parent)
        if kids is None:
            kids = self.children[parent] = set()
            up = parent
            while up:  # register the new parent in its own parent, as far as needed
                grand, _, base = up.rpartition("/")
                known = self.children.get(grand)
                if known is not None:
                    known.add(base)
                    break
                self.children[grand] = {base}
                up = grand
        kids.add(name)

    def _file(self, e: _Entry, pfd: int, name: str, path: str) -> None:
        try:
            fd = os.open(name, _CREATE_FLAGS, 0o600, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, name)
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

    def _directory(self, e: _Entry, pfd: int, name: str, path: str) -> None:
        try:
            os.mkdir(name, 0o700, dir_fd=pfd)
        except FileExistsError:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            if not stat.S_ISDIR(st.st_mode):
                self._remove(pfd, name)
                os.mkdir(name, 0o700, dir_fd=pfd)
        fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
        self._remember(path, fd)
        os.fchown(fd, e.uid, e.gid)
        os.fchmod(fd, e.mode)
        if e.xattrs:
            self._xattrs(fd, path, e.xattrs)
        # Writing the directory's content changes its mtime: set it at the end.
        self.dir_times.append((path, e.mtime_ns))

    def _root_dir(self, e: _Entry) -> None:
        os.fchown(self.root_fd, e.uid, e.gid)
        os.fchmod(self.root_fd, e.mode)
        if e.xattrs:
            self._xattrs(self.root_fd, "", e.xattrs)
        self.dir_times.append(("", e.mtime_ns))

    def _symlink(self, e: _Entry, pfd: int, name: str, path: str) -> None:
        # The target is stored as-is (absolute ones too): creating a symlink is harmless,
        # following one while writing is what we never do.
        if not e.linkname:
            raise LayerError(f"layer entry {e.name!r} is a symlink with an empty target")
        try:
            os.symlink(e.linkname, name, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, name)
            os.symlink(e.linkname, name, dir_fd=pfd)
        os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        if e.xattrs:
            self._xattrs(_fd_path(pfd, name), path, e.xattrs)
        os.utime(name, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)

    def _hardlink(self, e: _Entry, pfd: int, name: str, path: str) -> None:
        target = _clean(e.linkname, f"hardlink {e.name!r} target")
        if not target:
            raise LayerError(f"layer entry {e.name!r} is a hardlink to the root directory")
        if target == path:
            raise LayerError(f"layer entry {e.name!r} is a hardlink to itself")
        tparent, _, tname = target.rpartition("/")
        # Resolved beneath dest like any path; not cached (pfd must stay open).
        if tparent:
            try:
                tfd = _openat2(self.root_fd, tparent, libc.O_PATH | os.O_DIRECTORY)
            except FileNotFoundError:
                raise LayerError(f"layer entry {e.name!r} is a hardlink to {target!r}, "
                                 "which does not exist") from None
            except OSError as exc:
                raise self._lookup_error(exc, tparent, e.name) from None
        else:
            tfd = os.dup(self.root_fd)
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
                self._remove(pfd, name)
                os.link(tname, name, src_dir_fd=tfd, dst_dir_fd=pfd, follow_symlinks=False)
        finally:
            os.close(tfd)

    def _node(self, e: _Entry, pfd: int, name: str, path: str) -> None:
        if e.type == _FIFO:
            kind, device = stat.S_IFIFO, 0
        else:
            kind = stat.S_IFCHR if e.type == _CHR else stat.S_IFBLK
            device = os.makedev(e.devmajor, e.devminor)
        try:
            os.mknod(name, kind | 0o600, device, dir_fd=pfd)
        except FileExistsError:
            self._remove(pfd, name)
            os.mknod(name, kind | 0o600, device, dir_fd=pfd)
        os.chown(name, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
        # Just made by us, not a symlink: chmod may follow (fchmodat cannot refuse to).
        os.chmod(name, e.mode, dir_fd=pfd)
        if e.xattrs:
            self._xattrs(_fd_path(pfd, name), path, e.xattrs)
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

    # --- whiteouts

    def _whiteout(self, e: _Entry, path: str, parent: str, name: str) -> None:
        if name == OPAQUE_MARKER:
            if self.mode == "overlay":
                self._opaque_overlay(e, parent)
            else:
                self._opaque_delete(e, parent)
            return
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden.startswith(WHITEOUT_PREFIX):
            return  # AUFS metadata (.wh..wh.plnk and such), meaningless here
        if hidden in ("", ".", ".."):
            raise LayerError(f"layer entry {e.name!r} is a whiteout of {hidden!r}, which "
                             "would hide its own directory or its parent; refused")
        if hidden in self.children.get(parent, ()):
            return  # a whiteout hides lower layers only, never this layer's own entries
        if self.mode == "overlay":
            pfd = self._dir(parent, e.name, create=True)
            assert pfd is not None
            self._remove(pfd, hidden)
            os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            os.chown(hidden, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            # The marker's mtime, so that make_layer gives back the same tar.
            os.utime(hidden, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)
            return
        pfd = self._dir(parent, e.name, create=False)
        if pfd is not None:
            self._remove(pfd, hidden)

    def _opaque_overlay(self, e: _Entry, parent: str) -> None:
        pfd = self._dir(parent, e.name, create=True)
        assert pfd is not None
        # An O_PATH descriptor takes no xattrs: open the directory itself.
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _opaque_delete(self, e: _Entry, parent: str) -> None:
        pfd = self._dir(parent, e.name, create=False)
        if pfd is None:
            return
        # Everything below the directory goes but what this layer wrote (wherever the
        # marker sits in the tar) and the directories leading to it. Iterative, and no
        # symlink is followed below the directory.
        stack = [""]
        while stack:
            rel = stack.pop()
            if rel:
                fd = _openat2(pfd, rel, os.O_RDONLY | os.O_DIRECTORY, _REAL_DIRS_ONLY)
            else:
                fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            try:
                layer_dir = "/".join(p for p in (parent, rel) if p)
                kept = self.children.get(layer_dir, ())
                for child, is_dir in _list(fd):
                    if child not in kept:
                        self._remove(fd, child)
                    elif is_dir:
                        stack.append(f"{rel}/{child}" if rel else child)
            finally:
                os.close(fd)

    # --- end

    def _set_dir_times(self) -> None:
        for path, ns in self.dir_times:
            if not path:
                os.utime(self.root_fd, ns=(ns, ns))
                continue
            parent, _, name = path.rpartition("/")
            try:
                pfd = self._dir(parent, path, create=False)
                if pfd is None:
                    continue
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
            except (FileNotFoundError, LayerError):
                continue  # removed or replaced later in the same layer
            if stat.S_ISDIR(st.st_mode):
                os.utime(name, ns=(ns, ns), dir_fd=pfd, follow_symlinks=False)
            for fd in self.retired:
                os.close(fd)
            self.retired.clear()


def _fd_path(dir_fd: int, name: str) -> str:
    # For calls without a dir_fd form (lsetxattr): the directory's magic link, then a
    # name that is not followed.
    return f"/proc/self/fd/{dir_fd}/{name}"


def apply_layer(stream: BinaryIO, dest: str, *, compression: Compression = "auto",
                whiteouts: WhiteoutMode = "delete",
                max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE,
                max_size: int = DEFAULT_MAX_SIZE) -> LayerResult:
    """Apply the layer blob read from ``stream`` onto the directory ``dest``.

    ``compression`` "auto" detects gzip, zstd, bzip2, xz or a plain tar by magic; any
    other value insists on that one. ``whiteouts`` "delete" removes what whiteouts hide
    (dest holds the lower layers); "overlay" writes overlayfs whiteouts and opaque
    directories (dest is the layer's own directory). ``max_entry_size`` bounds any one
    entry's declared size and ``max_size`` the uncompressed stream.
    """
    if whiteouts not in ("delete", "overlay"):
        raise InvalidArgument(f"whiteouts must be 'delete' or 'overlay', not {whiteouts!r}")
    source = _Input(stream, compression, max_size)
    chunks = _Prefetch(source.chunks())
    try:
        reader = _TarReader(_TarStream(chunks), max_entry_size)
        applier = _Applier(dest, whiteouts, reader)
        try:
            applier.run()
            reader.stream.drain()
        finally:
            applier.close()
    finally:
        chunks.close()
    return LayerResult(
        diff_id=source.diff_id,
        digest=source.digest,
        size=source.raw_size,
        compression=source.compression,
        uncompressed_size=source.tar_size,
        entries=applier.entries,
        skipped_xattrs=tuple(applier.skipped),
    )
