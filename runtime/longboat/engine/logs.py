"""The json-file log driver: a container's stdout and stderr, kept the way Docker's json-file
driver keeps them, and read back for ``logs`` (one-shot and ``--follow``).

It owns the log file of one container and its rotated siblings (``<path>.1`` newest ...
``<path>.N-1`` oldest) and nothing else: the engine's monitor feeds :class:`LogWriter` the
raw chunks it reads from the container's pipes; the API server calls :func:`read` or
:func:`follow` and frames what they yield with :func:`frame` when there is no TTY.
docs/logs.md has the file format and the invariants.
"""

from __future__ import annotations

import calendar
import json
import logging
import math
import os
import re
import struct
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from fractions import Fraction
from typing import NamedTuple, TypeVar

from longboat.errors import InvalidArgument, SystemFault

log = logging.getLogger("longboat.logs")

STDOUT = 1
STDERR = 2
_STREAM_IDS = {"stdout": STDOUT, "stderr": STDERR}

# Docker's copier buffers at most this much of a line; a longer line is logged in pieces of
# exactly this size (partial entries, no trailing newline) and the rest as a final entry.
LINE_MAX = 16 * 1024

_BLOCK = 64 * 1024
_FILE_MODE = 0o640  # Docker's mode for json-file logs
_NS = 1_000_000_000


# --- sizes and times ---------------------------------------------------------------------

_SIZE_RE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_SIZE_UNITS = {"": 1, "k": 10**3, "m": 10**6, "g": 10**9, "t": 10**12, "p": 10**15}


def parse_size(text: str) -> int:
    """A ``max-size`` value in bytes, as Docker's json-file driver reads it (go-units
    ``FromHumanSize``): decimal units, case-insensitive, an optional ``i``/``b`` that
    changes nothing: "10m" = 10,000,000, "1k" = 1000, "2g", "512", "1.5MB", "10MiB"."""
    m = _SIZE_RE.match(text.strip()) if isinstance(text, str) else None
    if m is None:
        raise InvalidArgument(f"invalid size: {text!r} (expected a number with an optional "
                              "unit k, m, g, t or p, e.g. 10m)")
    return int(float(m.group(1)) * _SIZE_UNITS[(m.group(2) or "").lower()])


_DURATION_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "μs": 1_000, "ms": 1_000_000,
                   "s": _NS, "m": 60 * _NS, "h": 3600 * _NS}
_DURATION_PART = re.compile(r"(\d*)(?:\.(\d*))?(ns|us|µs|μs|ms|s|m|h)")
_DURATION_RE = re.compile(r"[-+]?(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|s|m|h))+")


def _parse_duration_ns(text: str) -> int | None:
    """Go's ``time.ParseDuration`` in nanoseconds, or None when ``text`` is not one."""
    if not _DURATION_RE.fullmatch(text):
        return None
    sign = -1 if text.startswith("-") else 1
    total = Fraction(0)
    for whole, frac, unit in _DURATION_PART.findall(text.lstrip("+-")):
        number = Fraction(int(whole or "0"))
        if frac:
            number += Fraction(int(frac), 10 ** len(frac))
        total += number * _DURATION_UNITS[unit]
    return sign * int(total)


_TIME_RE = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})"
    r"(?:[Tt](\d{2})(?::(\d{2})(?::(\d{2})(?:\.(\d+))?)?)?)?"
    r"([Zz]|[+-]\d{2}:\d{2})?")
_UNIX_RE = re.compile(r"([+-]?\d+)(?:\.(\d+))?")


def parse_time_ns(text: str, now: float | None = None) -> int:
    """Like :func:`parse_time`, in integer nanoseconds (exact for "sec.nanoseconds")."""
    value = text.strip() if isinstance(text, str) else ""
    if not value:
        raise InvalidArgument(f"invalid time value: {text!r}")
    if value != "0":
        duration = _parse_duration_ns(value)
        if duration is not None:
            # Docker's CLI sends reference-minus-duration as whole Unix seconds.
            ref_ns = time.time_ns() if now is None else _seconds_to_ns(now)
            return ((ref_ns - duration) // _NS) * _NS
    m = _TIME_RE.fullmatch(value)
    if m is not None:
        return _rfc3339_ns(m, value)
    m = _UNIX_RE.fullmatch(value)
    if m is not None:
        seconds = int(m.group(1))
        frac = (m.group(2) or "")[:9].ljust(9, "0")
        nanos = int(frac)
        return seconds * _NS + (-nanos if m.group(1).startswith("-") else nanos)
    raise InvalidArgument(f"failed to parse value as time or duration: {text!r} (expected "
                          "Unix seconds, an RFC 3339 date and time, or a duration like 10m)")


def _rfc3339_ns(m: re.Match[str], value: str) -> int:
    year, month, day, hour, minute, second = (int(g or "0") for g in m.group(1, 2, 3, 4, 5, 6))
    nanos = int((m.group(7) or "")[:9].ljust(9, "0"))
    zone = m.group(8)
    try:
        if zone is None:  # no zone: the local time, as Docker's CLI reads it
            naive = datetime(year, month, day, hour, minute, second)
            seconds = math.floor(naive.timestamp())
        else:
            if zone in ("Z", "z"):
                tz = UTC
            else:
                sign = -1 if zone[0] == "-" else 1
                tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
            seconds = calendar.timegm(
                datetime(year, month, day, hour, minute, second, tzinfo=tz)
                .astimezone(UTC).timetuple())
    except (ValueError, OverflowError) as exc:
        raise InvalidArgument(f"invalid time value {value!r}: {exc}") from None
    return seconds * _NS + nanos


def parse_time(text: str, now: float | None = None) -> float:
    """A ``--since``/``--until`` value as Unix seconds: Unix seconds with an optional fraction
    ("1700000000.123"), RFC 3339 with or without fraction and zone (no zone = local time),
    a date ("2024-01-02"), or a Go duration before ``now`` ("10m", "1h30m"; whole seconds,
    as Docker's CLI computes it)."""
    return parse_time_ns(text, now) / _NS


def _seconds_to_ns(seconds: float) -> int:
    return int(Fraction(seconds) * _NS)


def _bound_ns(seconds: float, upper: bool) -> int:
    """A float bound in nanoseconds, widened by half the float's resolution: a float cannot
    carry nanoseconds at today's times (about 0.24 us apart), and a bound copied from an
    entry's timestamp must still include that entry."""
    if isinstance(seconds, int):
        return seconds * _NS
    exact = Fraction(seconds)
    half = Fraction(math.ulp(seconds)) / 2
    if upper:
        return math.floor((exact + half) * _NS)
    return math.ceil((exact - half) * _NS)


_last_second: list[tuple[int, str]] = [(-1, "")]


def _second_text(seconds: int) -> str:
    cached = _last_second[0]
    if cached[0] == seconds:
        return cached[1]
    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    _last_second[0] = (seconds, text)
    return text


def format_time(ns: int) -> str:
    """Go's ``time.RFC3339Nano`` in UTC, as the json-file driver writes ``time``: trailing
    zeros of the fraction dropped, no fraction at all on a whole second."""
    seconds, nanos = divmod(ns, _NS)
    frac = f"{nanos:09d}".rstrip("0")
    return f"{_second_text(seconds)}.{frac}Z" if frac else f"{_second_text(seconds)}Z"


def format_time_fixed(ns: int) -> str:
    """Docker's ``RFC3339NanoFixed`` (always nine digits), the ``logs --timestamps`` prefix."""
    seconds, nanos = divmod(ns, _NS)
    return f"{_second_text(seconds)}.{nanos:09d}Z"


_FILE_TIME_RE = re.compile(
    r"(\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})(?:\.(\d+))?(Z|[+-]\d{2}:\d{2})")
_epoch_cache: list[tuple[str, int]] = [("", 0)]


def _file_time_ns(text: str) -> int:
    m = _FILE_TIME_RE.fullmatch(text)
    if m is None:
        raise ValueError(f"bad time {text!r}")
    head = m.group(1)
    cached = _epoch_cache[0]
    if cached[0] == head:
        seconds = cached[1]
    else:
        seconds = calendar.timegm(time.strptime(head, "%Y-%m-%dT%H:%M:%S"))
        _epoch_cache[0] = (head, seconds)
    zone = m.group(3)
    if zone != "Z":
        offset = int(zone[1:3]) * 3600 + int(zone[4:6]) * 60
        seconds -= offset if zone[0] == "+" else -offset
    return seconds * _NS + int((m.group(2) or "")[:9].ljust(9, "0"))


# --- the entry format --------------------------------------------------------------------

# What Docker's writer (ffjson's string writer) escapes: control characters (\n and \r
# short, the rest \u00XX), quote, backslash, <, > and &, U+2028 and U+2029. Bytes that
# are not UTF-8 arrive here as surrogateescape's U+DC80..U+DCFF, one per byte, exactly
# where Go's utf8.DecodeRune reports RuneError of size 1; each becomes \ufffd.
_ESCAPES: dict[str, str] = {chr(c): f"\\u{c:04x}" for c in range(0x20)}
_ESCAPES.update({"\n": "\\n", "\r": "\\r", '"': '\\"', "\\": "\\\\", "<": "\\u003c",
                 ">": "\\u003e", "&": "\\u0026", "\u2028": "\\u2028", "\u2029": "\\u2029"})
_ESCAPES.update({chr(c): "\\ufffd" for c in range(0xDC80, 0xDD00)})
_ESCAPE_RE = re.compile("[\x00-\x1f\"\\\\<>&\u2028\u2029\udc80-\udcff]")


def _escape(match: re.Match[str]) -> str:
    return _ESCAPES[match.group()]


def encode_entry(stream: str, data: bytes, ns: int) -> bytes:
    """One line of a json-file log, byte for byte as Docker writes it."""
    text = _ESCAPE_RE.sub(_escape, data.decode("utf-8", "surrogateescape"))
    return (b'{"log":"' + text.encode("utf-8") + b'","stream":"' + stream.encode("ascii")
            + b'","time":"' + format_time(ns).encode("ascii") + b'"}\n')


class Entry(NamedTuple):
    stream: int  # STDOUT or STDERR
    ns: int  # Unix time in nanoseconds
    data: bytes


_SURROGATE_RE = re.compile("[\ud800-\udfff]")


def decode_entry(line: bytes) -> Entry:
    """One line of a json-file log; ValueError when it is not one."""
    try:
        obj = json.loads(line)
        text = obj.get("log", "")
        stream = _STREAM_IDS[obj["stream"]]
        ns = _file_time_ns(obj["time"])
        if not isinstance(text, str):
            raise TypeError("log is not a string")
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ValueError(f"not a json-file log entry: {exc}") from None
    try:
        data = text.encode("utf-8")
    except UnicodeEncodeError:  # a lone \udXXX escape: Go's decoder makes it U+FFFD
        data = _SURROGATE_RE.sub("\ufffd", text).encode("utf-8")
    return Entry(stream, ns, data)


def frame(stream: int, data: bytes) -> bytes:
    """Docker's stream framing for attach and logs without a TTY: ``[stream, 0, 0, 0]``, the
    size as a big-endian uint32, then the data (stream 0 stdin, 1 stdout, 2 stderr)."""
    if stream not in (0, 1, 2, 3):
        raise ValueError(f"no such stream: {stream}")
    if len(data) > 0xFFFFFFFF:
        raise ValueError("frame larger than 4 GiB")
    return struct.pack(">BxxxI", stream, len(data)) + data


# --- writing -----------------------------------------------------------------------------

class LogWriter:
    """Writes one container's output as a json-file log, rotating by size.

    ``write`` takes raw chunks as read from the pipes; each stream keeps its own partial
    line. Complete lines are entries timestamped when their newline arrived; a line that
    reaches :data:`LINE_MAX` bytes without a newline is written in partial entries of
    exactly that size, all carrying the time of the first, as Docker's copier does.
    ``flush`` (at EOF) writes what is left as a partial entry. Rotation is checked before
    each entry, as Docker does: when the file has reached ``max_size``, it becomes
    ``<path>.1`` (the older ones move up, the one past ``max_file - 1`` is dropped) and a new
    file takes its place; with ``max_file`` 1 the new file simply replaces it. The current
    file never goes missing during a rotation (a hard link, then an atomic rename), so a
    reader always finds one.
    """

    def __init__(self, path: str, *, max_size: int | None = None, max_file: int = 1) -> None:
        if max_size is not None and (isinstance(max_size, bool) or max_size <= 0):
            raise InvalidArgument("max-size must be a positive number")
        if isinstance(max_file, bool) or not isinstance(max_file, int) or max_file < 1:
            raise InvalidArgument("max-file cannot be less than 1")
        self.path = path
        self.max_size = max_size
        self.max_file = max_file
        self._pending: dict[str, bytearray] = {"stdout": bytearray(), "stderr": bytearray()}
        self._partial_ns: dict[str, int | None] = {"stdout": None, "stderr": None}
        self._out = bytearray()
        self._fd: int | None = None
        fd = self._open_fd(path, os.O_CREAT)
        try:
            st = os.fstat(fd)
            self._size = st.st_size
            # A writer that died mid-line left a torn entry: end it, so that the next entry
            # starts on a line of its own (readers skip the torn one).
            if self._size and os.pread(fd, 1, self._size - 1) != b"\n":
                self._write_all(fd, b"\n")
                self._size += 1
        except OSError as exc:
            os.close(fd)
            raise SystemFault(f"cannot open log file {path}: {exc.strerror}") from None
        self._fd = fd

    @staticmethod
    def _open_fd(path: str, extra: int) -> int:
        try:
            return os.open(path, os.O_RDWR | os.O_APPEND | os.O_CLOEXEC | extra, _FILE_MODE)
        except OSError as exc:
            raise SystemFault(f"cannot open log file {path}: {exc.strerror}") from None

    def __enter__(self) -> LogWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def closed(self) -> bool:
        return self._fd is None

    def write(self, stream: str, data: bytes, when: float | None = None) -> None:
        """Log a chunk of ``stream`` ("stdout" or "stderr") read at ``when`` (Unix seconds;
        now when None)."""
        buf = self._buffer(stream)
        if not data:
            return
        # A float carries about a quarter of a microsecond at today's times: keep microseconds.
        ns = time.time_ns() if when is None else round(when * 1_000_000) * 1000
        buf += data
        start = 0
        while True:
            newline = buf.find(b"\n", start, start + LINE_MAX)
            if newline >= 0:
                first = self._partial_ns[stream]
                self._partial_ns[stream] = None
                self._entry(stream, bytes(buf[start:newline + 1]), ns if first is None else first)
                start = newline + 1
            elif len(buf) - start >= LINE_MAX:
                first = self._partial_ns[stream]
                if first is None:
                    first = self._partial_ns[stream] = ns
                self._entry(stream, bytes(buf[start:start + LINE_MAX]), first)
                start += LINE_MAX
            else:
                break
        del buf[:start]
        self._write_out()

    def flush(self, stream: str | None = None) -> None:
        """Write out the partial line of ``stream`` (of both when None), as at EOF."""
        streams = ["stdout", "stderr"] if stream is None else [stream]
        for name in streams:
            buf = self._buffer(name)
            if buf:
                first = self._partial_ns[name]
                self._entry(name, bytes(buf), time.time_ns() if first is None else first)
                buf.clear()
            self._partial_ns[name] = None
        self._write_out()

    def close(self) -> None:
        """Flush both streams and close the file; closing twice is harmless."""
        if self._fd is None:
            return
        try:
            self.flush()
        finally:
            os.close(self._fd)
            self._fd = None

    def _buffer(self, stream: str) -> bytearray:
        if self._fd is None:
            raise ValueError("write to a closed LogWriter")
        try:
            return self._pending[stream]
        except KeyError:
            raise InvalidArgument(f"no such stream: {stream!r} (stdout or stderr)") from None

    def _entry(self, stream: str, data: bytes, ns: int) -> None:
        if self.max_size is not None and self._size + len(self._out) >= self.max_size:
            self._write_out()
            self._rotate()
        self._out += encode_entry(stream, data, ns)

    def _write_out(self) -> None:
        if not self._out:
            return
        assert self._fd is not None
        out, self._out = self._out, bytearray()
        try:
            self._write_all(self._fd, out)
        except OSError as exc:
            raise SystemFault(f"cannot write log file {self.path}: {exc.strerror}") from None
        self._size += len(out)

    @staticmethod
    def _write_all(fd: int, data: bytes | bytearray) -> None:
        view = memoryview(data)
        while view:
            view = view[os.write(fd, view):]

    def _rotate(self) -> None:
        assert self._fd is not None
        path = self.path
        try:
            for i in range(self.max_file - 1, 1, -1):
                try:
                    os.replace(f"{path}.{i - 1}", f"{path}.{i}")
                except FileNotFoundError:
                    pass
            if self.max_file > 1:
                _replace_by_link(path, f"{path}.1")
            fresh = f"{path}.rotating"
            fd = self._open_fd(fresh, os.O_CREAT | os.O_TRUNC)
            try:
                os.replace(fresh, path)
            except OSError:
                os.close(fd)
                raise
        except OSError as exc:
            raise SystemFault(f"cannot rotate log file {path}: {exc.strerror}") from None
        os.close(self._fd)
        self._fd = fd
        self._size = 0


def _replace_by_link(path: str, target: str) -> None:
    """Make ``target`` name the file at ``path`` while ``path`` keeps naming it."""
    tmp = f"{target}.rotating"
    try:
        os.unlink(tmp)
    except FileNotFoundError:
        pass
    try:
        os.link(path, tmp)
    except OSError:  # no hard links here: rename (path is missing for a moment)
        os.replace(path, target)
        return
    os.replace(tmp, target)


# --- reading -----------------------------------------------------------------------------

@dataclass
class _Source:
    """An open log file. ``end``: the offset after its last complete line when opened."""

    fd: int
    key: tuple[int, int]
    end: int
    current: bool = False

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _open_source(name: str, current: bool = False) -> _Source | None:
    try:
        fd = os.open(name, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise SystemFault(f"cannot read log file {name}: {exc.strerror}") from None
    try:
        st = os.fstat(fd)
        end = _complete_end(fd, st.st_size)
    except OSError as exc:
        os.close(fd)
        raise SystemFault(f"cannot read log file {name}: {exc.strerror}") from None
    return _Source(fd, (st.st_dev, st.st_ino), end, current)


def _complete_end(fd: int, size: int) -> int:
    """The offset after the last newline before ``size`` (a writer may be mid-line)."""
    pos = size
    while pos > 0:
        n = min(_BLOCK, pos)
        chunk = os.pread(fd, n, pos - n)
        newline = chunk.rfind(b"\n")
        if newline >= 0:
            return pos - n + newline + 1
        pos -= n
    return 0


def _top_index(path: str) -> int:
    """The highest N of the ``path.N`` files there are (0 when none)."""
    directory, base = os.path.split(path)
    prefix = base + "."
    top = 0
    try:
        with os.scandir(directory or ".") as it:
            for item in it:
                suffix = item.name[len(prefix):]
                if item.name.startswith(prefix) and suffix.isdigit() and suffix[0] != "0":
                    top = max(top, int(suffix))
    except FileNotFoundError:
        return 0
    return top


_T = TypeVar("_T")


def _walk_rotated(path: str, probe: Callable[[str], _T | None]) -> list[tuple[str, _T]]:
    """``probe`` of ``path.1``, ``path.2``, ... (newest first) where it is not None. Goes on
    past the highest index listed until one is missing: a rotation during the walk moves
    every file up one index, so the oldest may land beyond the listing."""
    top = _top_index(path)
    found: list[tuple[str, _T]] = []
    index = 0
    while True:
        index += 1
        name = f"{path}.{index}"
        value = probe(name)
        if value is None:
            if index > top:
                return found
            continue
        found.append((name, value))


def _open_all(path: str) -> list[_Source]:
    """Every file of the log, oldest first, the current one (if any) last. Opened newest
    first and kept only once per inode, so that a rotation meanwhile loses nothing."""
    sources: list[_Source] = []
    keys: set[tuple[int, int]] = set()
    try:
        current = _open_source(path, current=True)
        if current is not None:
            sources.append(current)
            keys.add(current.key)
        for _, src in _walk_rotated(path, _open_source):
            if src.key in keys:
                src.close()
                continue
            keys.add(src.key)
            sources.append(src)
    except BaseException:
        for src in sources:
            src.close()
        raise
    sources.reverse()
    return sources


def _decode_or_skip(line: bytes) -> Entry | None:
    try:
        return decode_entry(line)
    except ValueError as exc:
        log.warning("skipping a malformed log line: %s", exc)
        return None


def _forward(src: _Source, start: int, end: int) -> Iterator[bytes]:
    pos, rest = start, b""
    while pos < end:
        chunk = os.pread(src.fd, min(_BLOCK, end - pos), pos)
        if not chunk:
            break
        pos += len(chunk)
        lines = (rest + chunk).split(b"\n")
        rest = lines.pop()
        yield from (line for line in lines if line)


def _backward(src: _Source, end: int) -> Iterator[bytes]:
    """The complete lines before ``end`` (a line boundary), newest first."""
    pos, rest = end, b""
    while pos > 0:
        n = min(_BLOCK, pos)
        pos -= n
        lines = (os.pread(src.fd, n, pos) + rest).split(b"\n")
        rest = lines[0]
        for line in reversed(lines[1:]):
            if line:
                yield line
    if rest:
        yield rest


@dataclass(frozen=True)
class _Filter:
    streams: frozenset[int]
    since: int | None
    until: int | None

    def accept(self, entry: Entry) -> bool:
        return (entry.stream in self.streams
                and (self.since is None or entry.ns >= self.since)
                and (self.until is None or entry.ns <= self.until))

    def past(self, entry: Entry) -> bool:
        return self.until is not None and entry.ns > self.until


def _make_filter(stdout: bool, stderr: bool, since: float | None,
                 until: float | None) -> _Filter:
    if not (stdout or stderr):
        raise InvalidArgument("You must choose at least one stream")
    streams = frozenset(s for s, on in ((STDOUT, stdout), (STDERR, stderr)) if on)
    return _Filter(streams,
                   None if since is None else _bound_ns(since, upper=False),
                   None if until is None else _bound_ns(until, upper=True))


def _initial(sources: list[_Source], flt: _Filter, tail: int | None) -> Iterator[Entry]:
    """The entries already written, oldest first: all of them, or the last ``tail`` that
    pass the filter, found reading backwards by blocks from the newest file."""
    if tail is not None and tail >= 0:
        if tail == 0:
            return
        found: list[Entry] = []
        for src in reversed(sources):
            for line in _backward(src, src.end):
                entry = _decode_or_skip(line)
                if entry is not None and flt.accept(entry):
                    found.append(entry)
                    if len(found) == tail:
                        yield from reversed(found)
                        return
        yield from reversed(found)
        return
    for src in sources:
        for line in _forward(src, 0, src.end):
            entry = _decode_or_skip(line)
            if entry is None:
                continue
            if flt.past(entry):  # Docker stops at the first entry past --until
                return
            if flt.accept(entry):
                yield entry


def _output(entry: Entry, timestamps: bool) -> tuple[int, bytes]:
    if timestamps:
        return entry.stream, format_time_fixed(entry.ns).encode("ascii") + b" " + entry.data
    return entry.stream, entry.data


def read(path: str, *, stdout: bool = True, stderr: bool = True, since: float | None = None,
         until: float | None = None, tail: int | None = None,
         timestamps: bool = False) -> Iterator[tuple[int, bytes]]:
    """The log's entries as ``(1 or 2, bytes)``, oldest first across rotated files.

    ``since``/``until``: Unix seconds, both inclusive. ``tail``: the last N entries that pass
    the other filters (None or negative: all). ``timestamps``: each entry prefixed with its
    time (RFC 3339, nine digits) and a space. A missing log is empty. The arguments are
    checked at once; the files are opened at the first ``next``."""
    flt = _make_filter(stdout, stderr, since, until)
    return _read(path, flt, tail, timestamps)


def _read(path: str, flt: _Filter, tail: int | None,
          timestamps: bool) -> Iterator[tuple[int, bytes]]:
    sources = _open_all(path)
    try:
        for entry in _initial(sources, flt, tail):
            yield _output(entry, timestamps)
    finally:
        for src in sources:
            src.close()


def _select(lines: list[bytes], flt: _Filter) -> tuple[list[Entry], bool]:
    """The entries of ``lines`` that pass ``flt``, and whether one was past ``until``."""
    selected: list[Entry] = []
    for line in lines:
        entry = _decode_or_skip(line)
        if entry is None:
            continue
        if flt.past(entry):
            return selected, True
        if flt.accept(entry):
            selected.append(entry)
    return selected, False


class _Cursor:
    """Reads complete lines of a growing file from ``pos``."""

    def __init__(self, src: _Source, pos: int) -> None:
        self.src = src
        self.pos = pos
        self.rest = b""

    def lines(self) -> list[bytes] | None:
        """The complete lines in the next block; None at the end of the file."""
        chunk = os.pread(self.src.fd, _BLOCK, self.pos)
        if not chunk:
            return None
        self.pos += len(chunk)
        lines = (self.rest + chunk).split(b"\n")
        self.rest = lines.pop()
        return [line for line in lines if line]

    def truncated(self) -> bool:
        return os.fstat(self.src.fd).st_size < self.pos


def _stat_key(name: str) -> tuple[int, int] | None:
    try:
        st = os.stat(name)
    except FileNotFoundError:
        return None
    return st.st_dev, st.st_ino


def _next_source(path: str, cur: _Source) -> _Source | None:
    """The file to read after ``cur`` once ``cur`` is no longer the file at ``path``; None
    while it still is (or while there is nothing to switch to)."""
    key = _stat_key(path)
    if key == cur.key:
        return None
    # cur was rotated away: the next file is the one a step newer in path.N ... path.1, path.
    rotated = _walk_rotated(path, _stat_key)
    names = [path, *(name for name, _ in rotated)]  # newest first
    keys: list[tuple[int, int] | None] = [key, *(k for _, k in rotated)]
    if cur.key in keys:
        index = keys.index(cur.key)
        if index == 0:
            return None
        candidates = [index - 1]
    else:
        # cur is gone (rotated out, or replaced with max-file 1): every file written after
        # it is newer; files left from an older configuration are older than it.
        mtime = os.fstat(cur.fd).st_mtime_ns
        candidates = []
        for i in range(len(names) - 1, -1, -1):
            try:
                if i == 0 or os.stat(names[i]).st_mtime_ns >= mtime:
                    candidates.append(i)
            except FileNotFoundError:
                continue
    for i in candidates:
        src = _open_source(names[i], current=(i == 0))
        if src is None:
            continue
        if src.key == keys[i]:
            return src
        src.close()  # it moved on meanwhile: look again at the next poll
        return None
    return None


def follow(path: str, *, stdout: bool = True, stderr: bool = True, since: float | None = None,
           until: float | None = None, tail: int | None = None, timestamps: bool = False,
           running: Callable[[], bool], poll: float = 0.1) -> AsyncIterator[tuple[int, bytes]]:
    """What :func:`read` yields, then the entries written later, through rotations.

    Ends when ``running()`` has returned False and everything written before that was
    sent (so ``running`` should turn False once the writer is closed), or when ``until``
    has passed. Polls every ``poll`` seconds while idle: one read and one stat."""
    flt = _make_filter(stdout, stderr, since, until)
    if poll <= 0:
        raise InvalidArgument("poll interval must be positive")
    return _follow(path, flt, until, tail, timestamps, running, poll)


async def _follow(path: str, flt: _Filter, until: float | None, tail: int | None,
                  timestamps: bool, running: Callable[[], bool],
                  poll: float) -> AsyncIterator[tuple[int, bytes]]:
    import asyncio  # only followers pay for it (the monitor imports this module)

    sources = _open_all(path)
    cursor: _Cursor | None = None
    try:
        for sent, entry in enumerate(_initial(sources, flt, tail), 1):
            yield _output(entry, timestamps)
            if sent % 512 == 0:  # let the event loop breathe during a long backlog
                await asyncio.sleep(0)
        sent_keys = {src.key for src in sources}
        for src in sources:
            if src.current:
                cursor = _Cursor(src, src.end)
            else:
                src.close()
        sources = []

        while True:
            alive = running()
            got = False
            while cursor is not None:
                lines = cursor.lines()
                if lines is None:
                    break
                got = True
                entries, done = _select(lines, flt)
                for entry in entries:
                    yield _output(entry, timestamps)
                if done:
                    return
                await asyncio.sleep(0)
            if got:
                continue  # read until a read finds nothing, then look for a rotation
            if cursor is None:
                # No log when we started: once there is one, all of it, oldest file first
                # (the writer may have rotated a few times already).
                sources = _open_all(path)
                for src in [src for src in sources if src.key in sent_keys]:
                    src.close()  # rotated files the initial read already sent
                    sources.remove(src)
                if sources:
                    cursor = _Cursor(sources.pop(0), 0)
                    continue
            elif sources:  # rotated files found with the log: complete, read them in turn
                cursor.src.close()
                cursor = _Cursor(sources.pop(0), 0)
                continue
            elif (nxt := _next_source(path, cursor.src)) is not None:
                # The old file is complete once it is no longer current, but the writer may
                # have added to it between our last read and the rotation: drain it.
                while (lines := cursor.lines()) is not None:
                    entries, done = _select(lines, flt)
                    for entry in entries:
                        yield _output(entry, timestamps)
                    if done:
                        nxt.close()
                        return
                cursor.src.close()
                cursor = _Cursor(nxt, 0)
                continue
            elif cursor.truncated():  # truncated in place (Docker's own max-file 1)
                cursor.pos, cursor.rest = 0, b""
                continue
            if not alive:
                return
            delay = poll
            if until is not None:
                left = until - time.time()
                if left < 0:
                    return
                delay = min(poll, left + 0.001)
            await asyncio.sleep(delay)
    finally:
        for src in sources:
            src.close()
        if cursor is not None:
            cursor.src.close()
