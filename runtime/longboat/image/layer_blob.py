"""Reading a layer blob: what arrives before the tar format starts.

Owns detecting the compression by magic (gzip, zstd, bzip2, xz or a plain tar),
decompressing (concatenated streams are one stream; zstd through libzstd with
``ctypes``), the two digests (``digest`` over the bytes as given, ``diff_id`` over the
uncompressed tar), the limit on the uncompressed size (decompression bombs stop there),
and the reader thread that does all of this a few chunks ahead of the extractor.
"""

from __future__ import annotations

import bz2
import ctypes
import ctypes.util
import hashlib
import lzma
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import BinaryIO, Final, Literal, Protocol

from longboat.errors import SystemFault
from longboat.image.layer_result import LayerError

Compression = Literal["auto", "none", "gzip", "zstd", "bzip2", "xz"]

#: Largest uncompressed layer accepted by default (a decompression bomb stops here).
DEFAULT_MAX_SIZE: Final = 256 << 30

_CHUNK: Final = 1 << 20

_MAGIC_GZIP = b"\x1f\x8b"
_MAGIC_ZSTD = b"\x28\xb5\x2f\xfd"
_MAGIC_BZIP2 = b"BZh"
_MAGIC_XZ = b"\xfd7zXZ\x00"


class LayerBlob:
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


class Prefetch:
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
