"""The tar format of a layer, read from the uncompressed chunks: Longboat's own parser.

Owns exact reads over the chunks without copying file data (:class:`TarStream`), and
turning headers into :class:`TarEntry` values (:class:`TarReader`): ustar with its
prefix field, GNU long names and links, PAX records (``SCHILY.xattr.*``, nanosecond
times), base-256 numbers, header checksums, the end-of-archive marker, and the limits
on an entry's declared size and on metadata. ``tarfile`` is not used: its stream reader
copies data through small buffers. Malformed, truncated or oversized input raises
:class:`LayerError` naming the entry or offset; sparse, multi-volume and volume-header
entries are refused, PAX global headers ignored (as Docker does).
"""

from __future__ import annotations

import os
import sys
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Final

from longboat.image.layer_result import LayerError

#: Largest single entry accepted by default (declared size); beyond is "absurd".
DEFAULT_MAX_ENTRY_SIZE: Final = 64 << 30
#: PAX records and GNU long names are metadata: a few KiB in practice.
MAX_META_SIZE: Final = 1 << 20

BLOCK: Final = 512
_ZERO_BLOCK: Final = bytes(BLOCK)
_FS_ENCODING: Final = sys.getfilesystemencoding()

# Entry types (POSIX ustar, GNU and PAX extensions), named as in ``tarfile``.
REGTYPE, AREGTYPE, CONTTYPE = b"0", b"\0", b"7"
LNKTYPE, SYMTYPE, CHRTYPE, BLKTYPE, DIRTYPE, FIFOTYPE = b"1", b"2", b"3", b"4", b"5", b"6"
_PAX, _GLOBAL_PAX, _GNU_LONGNAME, _GNU_LONGLINK = b"x", b"g", b"L", b"K"
GNUTYPE_DUMPDIR: Final = b"D"
_GNU_SPARSE, _GNU_MULTIVOL, _GNU_VOLHDR = b"S", b"M", b"V"
REGULAR_TYPES: Final = frozenset({REGTYPE, AREGTYPE, CONTTYPE})


class TarStream:
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


@dataclass(slots=True)
class TarEntry:
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


class TarReader:
    """Entries of a tar stream; meta entries (PAX, GNU long names) folded in."""

    def __init__(self, stream: TarStream, max_entry_size: int) -> None:
        self.stream = stream
        self.max_entry_size = max_entry_size
        self.data_left = 0  # unread data (and padding) of the current entry

    def __iter__(self) -> Iterator[TarEntry]:
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
               longlink: bytes | None) -> TarEntry:
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
        elif kind in (SYMTYPE, LNKTYPE):
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
        if kind in REGULAR_TYPES or kind == GNUTYPE_DUMPDIR:
            if size < 0:
                raise LayerError(f"layer entry at offset {offset} has a negative size")
            if size > self.max_entry_size:
                raise LayerError(f"layer entry {_decode(raw_name)!r} declares {size} "
                                 f"bytes, beyond the limit of {self.max_entry_size} bytes")
            self.data_left = size + (-size % BLOCK)
        else:
            # Links, directories, devices and fifos carry no data, whatever size says.
            size = 0
        if kind in (CHRTYPE, BLKTYPE):
            devmajor = _number(hdr[329:337])
            devminor = _number(hdr[337:345])
        else:
            devmajor = devminor = 0
            if kind in (_GNU_SPARSE, _GNU_MULTIVOL, _GNU_VOLHDR):
                raise LayerError(f"layer entry {_decode(raw_name)!r} has tar type "
                                 f"{kind.decode(errors='replace')!r} (sparse, multi-volume "
                                 "or volume header), which layers may not use")
        name = _decode(raw_name)
        if kind == AREGTYPE and name.endswith("/"):
            kind = DIRTYPE  # pre-POSIX archives mark directories by a trailing slash
        return TarEntry(name, kind, mode & 0o7777, uid, gid, size, mtime_ns,
                        _decode(raw_link) if raw_link else "", devmajor, devminor, xattrs,
                        offset)

