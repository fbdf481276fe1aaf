"""The json-file log driver (longboat.engine.logs): Docker's file format byte for byte,
line splitting, rotation, reading with filters, following, and bad input."""

from __future__ import annotations

import asyncio
import json
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path

import pytest

from longboat.engine import logs
from longboat.engine.logs import LINE_MAX, LogWriter, follow, frame, parse_size, parse_time, read
from longboat.errors import InvalidArgument, SystemFault

pytestmark = pytest.mark.unit

T0 = 1_700_000_000.0  # 2023-11-14T22:13:20Z


def lines_of(path: Path) -> list[dict[str, str]]:
    return [json.loads(line) for line in path.read_bytes().splitlines()]


def entries(path: Path) -> list[tuple[str, str]]:
    return [(e["stream"], e["log"]) for e in lines_of(path)]


@pytest.fixture
def log(tmp_path: Path) -> Path:
    return tmp_path / "c-json.log"


# --- the file format ---------------------------------------------------------------------

def test_entry_bytes_are_dockers(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"hello\n", when=T0 + 0.5)
        w.write("stderr", b"oops\n", when=T0)
        w.write("stdout", b"x\n", when=T0 + 0.152085)
    assert log.read_bytes() == (
        b'{"log":"hello\\n","stream":"stdout","time":"2023-11-14T22:13:20.5Z"}\n'
        b'{"log":"oops\\n","stream":"stderr","time":"2023-11-14T22:13:20Z"}\n'
        b'{"log":"x\\n","stream":"stdout","time":"2023-11-14T22:13:20.152085Z"}\n')
    assert oct(log.stat().st_mode & 0o777) == oct(0o640 & ~_umask())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def test_time_format_trims_zeros_like_go() -> None:
    ns = 1_700_000_000 * 10**9
    assert logs.format_time(ns) == "2023-11-14T22:13:20Z"
    assert logs.format_time(ns + 100) == "2023-11-14T22:13:20.0000001Z"
    assert logs.format_time(ns + 152_085_123) == "2023-11-14T22:13:20.152085123Z"
    assert logs.format_time_fixed(ns + 500_000_000) == "2023-11-14T22:13:20.500000000Z"


# (raw bytes, the JSON string Docker's ffjson writer produces for them)
ESCAPES = [
    (b"plain text", "plain text"),
    (b'quote " backslash \\', 'quote \\" backslash \\\\'),
    (b"<a href='x'>&amp;</a>", "\\u003ca href='x'\\u003e\\u0026amp;\\u003c/a\\u003e"),
    (b"tab\tbell\x07cr\r", "tab\\u0009bell\\u0007cr\\r"),
    (b"del\x7f", "del\x7f"),
    ("é€😀".encode(), "é€😀"),
    ("\u2028\u2029".encode(), "\\u2028\\u2029"),
    ("\ufffd".encode(), "\ufffd"),  # a real U+FFFD stays raw
    (b"\xff", "\\ufffd"),
    (b"\xe2\x82A", "\\ufffd\\ufffdA"),  # truncated sequence: one per byte, as Go
    (b"\xe2\x82", "\\ufffd\\ufffd"),
    (b"\xed\xa0\x80", "\\ufffd\\ufffd\\ufffd"),  # an encoded surrogate
    (b"\xc0\x80", "\\ufffd\\ufffd"),  # overlong
    (b"\xf4\x90\x80\x80", "\\ufffd" * 4),  # past U+10FFFF
    (b"a\x80\x80b", "a\\ufffd\\ufffdb"),
]


@pytest.mark.parametrize(("raw", "escaped"), ESCAPES)
def test_escaping_and_invalid_utf8(log: Path, raw: bytes, escaped: str) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", raw + b"\n", when=T0)
    expected = ('{"log":"' + escaped + '\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n')
    assert log.read_bytes() == expected.encode()
    # What `logs` gives back: the bytes, invalid ones as U+FFFD (EF BF BD).
    [(stream, data)] = list(read(str(log)))
    assert stream == 1
    assert data == json.loads(expected)["log"].encode()


# --- line splitting ----------------------------------------------------------------------

def test_lines_split_across_chunks(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"hel", when=T0 + 1)
        w.write("stdout", b"lo\nwor", when=T0 + 2)
        w.write("stdout", b"ld\n\nlast", when=T0 + 3)
        assert entries(log) == [("stdout", "hello\n"), ("stdout", "world\n"), ("stdout", "\n")]
        # A complete line carries the time its newline arrived.
        assert [e["time"] for e in lines_of(log)] == [
            "2023-11-14T22:13:22Z", "2023-11-14T22:13:23Z", "2023-11-14T22:13:23Z"]
    # close() wrote the partial line, without a newline.
    assert entries(log)[-1] == ("stdout", "last")


def test_streams_keep_their_own_partial_lines(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"a", when=T0)
        w.write("stderr", b"b\n", when=T0)
        w.write("stdout", b"c\n", when=T0)
        w.write("stderr", b"tail")
        w.flush("stderr")
        w.write("stdout", b"more")
        assert entries(log) == [("stderr", "b\n"), ("stdout", "ac\n"), ("stderr", "tail")]
        w.flush()
        assert entries(log)[-1] == ("stdout", "more")
        w.flush()  # nothing left: no empty entry
        assert len(entries(log)) == 4


def test_long_line_is_split_at_16k(log: Path) -> None:
    with LogWriter(str(log)) as w:
        # Arriving in odd chunks changes nothing: pieces of exactly LINE_MAX bytes.
        line = b"x" * (2 * LINE_MAX + 100) + b"\n"
        for i, start in enumerate(range(0, len(line), 5000)):
            w.write("stdout", line[start:start + 5000], when=T0 + i)
        w.write("stdout", b"next\n", when=T0 + 100)
    got = lines_of(log)
    assert [len(e["log"]) for e in got] == [LINE_MAX, LINE_MAX, 101, 5]
    assert not got[0]["log"].endswith("\n") and got[2]["log"].endswith("\n")
    # Every piece of one line carries the time of the first piece.
    assert {e["time"] for e in got[:3]} == {"2023-11-14T22:13:23Z"}  # 4th chunk filled 16 KiB
    assert got[3]["time"] == "2023-11-14T22:15:00Z"
    assert b"".join(d for _, d in read(str(log))) == line + b"next\n"


@pytest.mark.parametrize(("size", "pieces"), [
    (LINE_MAX - 1, [LINE_MAX]),  # fits the buffer with its newline: one entry
    (LINE_MAX, [LINE_MAX, 1]),  # the newline did not fit: a partial, then "\n" alone
    (LINE_MAX + 1, [LINE_MAX, 2]),
])
def test_16k_boundary(log: Path, size: int, pieces: list[int]) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"y" * size + b"\n", when=T0)
    assert [len(e["log"]) for e in lines_of(log)] == pieces


def test_partial_flush_at_16k_without_newline(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stderr", b"z" * (LINE_MAX - 1), when=T0)
        assert log.read_bytes() == b""  # still buffered
        w.write("stderr", b"zz", when=T0 + 1)
        assert [len(e["log"]) for e in lines_of(log)] == [LINE_MAX]
        w.flush()
    assert [e["log"] for e in lines_of(log)][1] == "z"


def test_multibyte_split_across_chunks_is_kept(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", "é".encode()[:1], when=T0)
        w.write("stdout", "é".encode()[1:] + b"\n", when=T0)
    assert entries(log) == [("stdout", "é\n")]


def test_reopen_appends_and_ends_a_torn_line(log: Path) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"one\n", when=T0)
    with log.open("ab") as f:
        f.write(b'{"log":"tor')  # a writer that died mid-entry
    with LogWriter(str(log)) as w:
        w.write("stdout", b"two\n", when=T0 + 1)
    assert [d for _, d in read(str(log))] == [b"one\n", b"two\n"]


# --- rotation ----------------------------------------------------------------------------

def _entry_len(text: str) -> int:
    return len(logs.encode_entry("stdout", text.encode(), int(T0 * 1e9)))


@pytest.mark.parametrize(("slack", "per_file"), [(0, 3), (-1, 3), (1, 4)])
def test_rotation_happens_once_the_file_reached_max_size(
        log: Path, slack: int, per_file: int) -> None:
    # Docker's rule: before each entry, rotate when the file is already >= max-size.
    size = _entry_len("line 00\n")
    with LogWriter(str(log), max_size=3 * size + slack, max_file=2) as w:
        for i in range(per_file + 1):
            w.write("stdout", f"line {i:02d}\n".encode(), when=T0)
    rotated = Path(f"{log}.1")
    assert len(lines_of(rotated)) == per_file
    assert entries(log) == [("stdout", f"line {per_file:02d}\n")]


def test_rotation_keeps_max_file_files_newest_in_dot_one(log: Path) -> None:
    size = _entry_len("line 000\n")
    with LogWriter(str(log), max_size=4 * size, max_file=3) as w:
        for i in range(50):
            w.write("stdout" if i % 2 else "stderr", f"line {i:03d}\n".encode(), when=T0 + i)
    names = sorted(p.name for p in log.parent.iterdir())
    assert names == ["c-json.log", "c-json.log.1", "c-json.log.2"]
    # 50 entries, 4 a file: the current holds 2, .1 and .2 the 8 before, oldest in .2.
    assert [e[1] for e in entries(Path(f"{log}.2"))] == [f"line {i:03d}\n" for i in range(40, 44)]
    assert [e[1] for e in entries(Path(f"{log}.1"))] == [f"line {i:03d}\n" for i in range(44, 48)]
    assert [e[1] for e in entries(log)] == ["line 048\n", "line 049\n"]
    got = list(read(str(log)))
    assert [d for _, d in got] == [f"line {i:03d}\n".encode() for i in range(40, 50)]
    assert [s for s, _ in got] == [2 if i % 2 == 0 else 1 for i in range(40, 50)]


def test_rotation_with_max_file_1_starts_over(log: Path) -> None:
    size = _entry_len("line 000\n")
    with LogWriter(str(log), max_size=4 * size) as w:
        for i in range(10):
            w.write("stdout", f"line {i:03d}\n".encode(), when=T0)
    assert sorted(p.name for p in log.parent.iterdir()) == ["c-json.log"]
    assert [d for _, d in read(str(log))] == [b"line 008\n", b"line 009\n"]


def test_rotation_in_one_big_chunk(log: Path) -> None:
    with LogWriter(str(log), max_size=1000, max_file=100) as w:
        w.write("stdout", b"".join(f"{i}\n".encode() for i in range(500)), when=T0)
    assert [d for _, d in read(str(log))] == [f"{i}\n".encode() for i in range(500)]
    for rotated in log.parent.glob("c-json.log.*"):
        assert 1000 <= rotated.stat().st_size < 1000 + _entry_len("499\n")


def test_a_reopened_writer_rotates_by_the_existing_size(log: Path) -> None:
    with LogWriter(str(log), max_size=100, max_file=2) as w:
        w.write("stdout", b"a" * 80 + b"\n", when=T0)
    with LogWriter(str(log), max_size=100, max_file=2) as w:
        w.write("stdout", b"b\n", when=T0)
    assert entries(log) == [("stdout", "b\n")]


# --- reading -----------------------------------------------------------------------------

@pytest.fixture
def rotated_log(log: Path) -> Path:
    """30 entries at T0+0..29, odd ones on stderr, over the current file and 3 rotated."""
    size = _entry_len("entry 00\n")
    with LogWriter(str(log), max_size=8 * size, max_file=4) as w:
        for i in range(30):
            w.write("stderr" if i % 2 else "stdout", f"entry {i:02d}\n".encode(), when=T0 + i)
    assert Path(f"{log}.3").exists() and not Path(f"{log}.4").exists()
    return log


def texts(items: list[tuple[int, bytes]]) -> list[str]:
    return [d.decode().strip() for _, d in items]


def test_read_everything_in_order(rotated_log: Path) -> None:
    got = list(read(str(rotated_log)))
    assert texts(got) == [f"entry {i:02d}" for i in range(30)]
    assert [s for s, _ in got] == [2 if i % 2 else 1 for i in range(30)]


def test_read_stream_selection(rotated_log: Path) -> None:
    assert texts(list(read(str(rotated_log), stderr=False))) == [
        f"entry {i:02d}" for i in range(0, 30, 2)]
    assert texts(list(read(str(rotated_log), stdout=False))) == [
        f"entry {i:02d}" for i in range(1, 30, 2)]


def test_read_since_until_inclusive(rotated_log: Path) -> None:
    got = list(read(str(rotated_log), since=T0 + 5, until=T0 + 12))
    assert texts(got) == [f"entry {i:02d}" for i in range(5, 13)]
    assert list(read(str(rotated_log), since=T0 + 100)) == []
    assert list(read(str(rotated_log), until=T0 - 1)) == []


def test_read_tail_after_filtering(rotated_log: Path) -> None:
    path = str(rotated_log)
    assert texts(list(read(path, tail=3))) == ["entry 27", "entry 28", "entry 29"]
    assert texts(list(read(path, tail=3, stdout=False))) == ["entry 25", "entry 27", "entry 29"]
    assert texts(list(read(path, tail=2, until=T0 + 10))) == ["entry 09", "entry 10"]
    assert texts(list(read(path, tail=10, since=T0 + 26))) == [
        f"entry {i:02d}" for i in range(26, 30)]
    # Reaching back across all the files:
    assert texts(list(read(path, tail=25))) == [f"entry {i:02d}" for i in range(5, 30)]
    assert len(list(read(path, tail=1000))) == 30
    assert list(read(path, tail=0)) == []
    assert len(list(read(path, tail=-1))) == 30  # negative: all, like Docker's "all"


def test_read_timestamps(rotated_log: Path) -> None:
    got = list(read(str(rotated_log), timestamps=True, tail=2))
    assert got == [(1, b"2023-11-14T22:13:48.000000000Z entry 28\n"),
                   (2, b"2023-11-14T22:13:49.000000000Z entry 29\n")]


# The float nearest each of these times is above it, then below it: a float cannot hold
# nanoseconds at today's times, so read() must widen its bounds by half a float step.
@pytest.mark.parametrize("when", [1_764_282_406.152085, 1_764_282_406.152087])
def test_since_copied_from_a_timestamp_includes_that_entry(log: Path, when: float) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"before\n", when=when - 0.001)
        w.write("stdout", b"it\n", when=when)
        w.write("stdout", b"after\n", when=when + 0.001)
    [(_, stamped)] = list(read(str(log), timestamps=True, tail=1, until=when))
    since = parse_time(stamped.split()[0].decode())
    assert texts(list(read(str(log), since=since))) == ["it", "after"]
    assert texts(list(read(str(log), until=since))) == ["before", "it"]


def test_read_missing_log_is_empty(tmp_path: Path) -> None:
    assert list(read(str(tmp_path / "nothing.log"))) == []


def test_read_skips_malformed_lines(log: Path, caplog: pytest.LogCaptureFixture) -> None:
    with LogWriter(str(log)) as w:
        w.write("stdout", b"good\n", when=T0)
    with log.open("ab") as f:
        f.write(b"not json\n")
        f.write(b'{"log":"no stream\\n","time":"2023-11-14T22:13:20Z"}\n')
        f.write(b'{"log":"bad time\\n","stream":"stdout","time":"yesterday"}\n')
        f.write(b'{"log":"lone \\ud800\\n","stream":"stdout","time":"2023-11-14T22:13:20Z"}\n')
        f.write(b'{"log":"half')  # still being written: not an entry yet
    assert [d for _, d in read(str(log))] == [b"good\n", "lone \ufffd\n".encode()]
    assert [d for _, d in read(str(log), tail=5)] == [b"good\n", "lone \ufffd\n".encode()]
    assert "malformed" in caplog.text


def test_read_accepts_other_writers_times(log: Path) -> None:
    log.write_bytes(b'{"log":"a\\n","stream":"stdout","time":"2023-11-14T23:13:20.5+01:00"}\n'
                    b'{"stream":"stderr","time":"2023-11-14T22:13:21.123456789123Z"}\n')
    got = list(read(str(log), timestamps=True))
    assert got == [(1, b"2023-11-14T22:13:20.500000000Z a\n"),
                   (2, b"2023-11-14T22:13:21.123456789Z ")]


def test_read_needs_a_stream(log: Path) -> None:
    with pytest.raises(InvalidArgument, match="You must choose at least one stream"):
        read(str(log), stdout=False, stderr=False)
    with pytest.raises(InvalidArgument, match="at least one stream"):
        follow(str(log), stdout=False, stderr=False, running=lambda: False)


def test_tail_of_a_50_mb_log_is_fast(log: Path) -> None:
    block = b"".join(
        logs.encode_entry("stderr" if i % 3 == 0 else "stdout", f"line {i:05d} {'x' * 80}\n"
                          .encode(), int((T0 + i) * 1e9)) for i in range(5000))
    with log.open("wb") as f:
        while f.tell() < 50 * 1024 * 1024:
            f.write(block)
    started = time.perf_counter()
    got = list(read(str(log), tail=100, stdout=False))
    elapsed = time.perf_counter() - started
    assert len(got) == 100 and got[-1][1].startswith(b"line 04998")
    assert elapsed < 0.2, f"tail took {elapsed:.3f} s"


# --- parse_time, parse_size, frame -------------------------------------------------------

NOW = 1_700_000_000.75

TIMES = [
    ("1700000000", 1_700_000_000.0),
    ("1700000000.123", 1_700_000_000.123),
    ("1700000000.000000001", 1_700_000_000.000000001),
    ("0", 0.0),
    ("2023-11-14T22:13:20Z", 1_700_000_000.0),
    ("2023-11-14T22:13:20.5Z", 1_700_000_000.5),
    ("2023-11-14T22:13:20.152085123Z", 1_700_000_000.152085123),
    ("2023-11-14T23:13:20+01:00", 1_700_000_000.0),
    ("2023-11-14T20:13:20.25-02:00", 1_700_000_000.25),
    ("2023-11-14T22:13Z", 1_699_999_980.0),
    ("2023-11-14T22Z", 1_699_999_200.0),
    ("2023-11-14Z", 1_699_920_000.0),
    ("2023-11-14+01:00", 1_699_916_400.0),
    ("10m", 1_699_999_400.0),  # relative to NOW, whole seconds as Docker's CLI sends
    ("42s", 1_699_999_958.0),
    ("1h30m", 1_699_994_600.0),
    ("1.5h", 1_699_994_600.0),
    ("500ms", 1_700_000_000.0),
    ("-1m", 1_700_000_060.0),
]


@pytest.mark.parametrize(("text", "expected"), TIMES)
def test_parse_time(text: str, expected: float) -> None:
    assert parse_time(text, now=NOW) == pytest.approx(expected, abs=1e-9)


def test_parse_time_exact_nanoseconds() -> None:
    assert logs.parse_time_ns("1700000000.123456789") == 1_700_000_000_123_456_789
    assert logs.parse_time_ns("2023-11-14T22:13:20.000000001Z") == 1_700_000_000_000_000_001


def test_parse_time_without_zone_is_local(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TZ", "Europe/Paris")
    time.tzset()
    try:
        assert parse_time("2023-11-14T23:13:20") == 1_700_000_000.0
        assert parse_time("2023-11-14") == 1_699_916_400.0
    finally:
        monkeypatch.undo()
        time.tzset()


def test_parse_time_defaults_to_the_clock() -> None:
    assert abs(parse_time("1m") - (time.time() - 60)) < 2


@pytest.mark.parametrize("text", ["", "yesterday", "-", "10x", "1h-5m", "2023-13-01",
                                  "2023-11-14T25:00:00Z", "2023-11-14T22:13:20.Z",
                                  "1700000000.", "1.2.3", "m"])
def test_parse_time_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument):
        parse_time(text, now=NOW)


# Docker's json-file reads max-size with go-units FromHumanSize: decimal, "i" ignored.
@pytest.mark.parametrize(("text", "expected"), [
    ("512", 512), ("1k", 1000), ("1K", 1000), ("10m", 10_000_000), ("2g", 2_000_000_000),
    ("1.5k", 1500), ("10MB", 10_000_000), ("10MiB", 10_000_000), ("3 kb", 3000),
    ("1t", 10**12), ("0.5", 0),
])
def test_parse_size(text: str, expected: int) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "m", "-1m", "10x", "1.5.2k", "ten"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(InvalidArgument, match="invalid size"):
        parse_size(text)


def test_frame() -> None:
    assert frame(1, b"hello\n") == b"\x01\x00\x00\x00\x00\x00\x00\x06hello\n"
    assert frame(2, b"") == b"\x02\x00\x00\x00\x00\x00\x00\x00"
    big = b"a" * 70000
    assert frame(2, big)[:8] == bytes([2, 0, 0, 0, 0, 1, 0x11, 0x70]) and frame(2, big)[8:] == big
    with pytest.raises(ValueError):
        frame(5, b"x")


# --- bad input ---------------------------------------------------------------------------

def test_writer_rejects_bad_options(log: Path) -> None:
    with pytest.raises(InvalidArgument, match="max-size"):
        LogWriter(str(log), max_size=0)
    with pytest.raises(InvalidArgument, match="max-file"):
        LogWriter(str(log), max_size=10, max_file=0)
    assert not log.exists()


def test_writer_rejects_bad_streams_and_closed_use(log: Path) -> None:
    w = LogWriter(str(log))
    with pytest.raises(InvalidArgument, match="no such stream"):
        w.write("stdin", b"x\n")
    w.close()
    w.close()
    with pytest.raises(ValueError, match="closed"):
        w.write("stdout", b"x\n")
    assert log.read_bytes() == b""


def test_writer_reports_an_unwritable_path(tmp_path: Path) -> None:
    with pytest.raises(SystemFault, match="cannot open log file"):
        LogWriter(str(tmp_path / "missing-dir" / "x.log"))


# --- follow ------------------------------------------------------------------------------

DEADLINE = 5.0


class Follower:
    """Runs follow() in the background, collecting what it yields."""

    def __init__(self, path: Path, **kwargs: object) -> None:
        self.alive = True
        self.got: list[tuple[int, bytes]] = []
        self.gen: AsyncIterator[tuple[int, bytes]] = follow(
            str(path), running=lambda: self.alive, poll=0.01, **kwargs)  # type: ignore[arg-type]
        self.task = asyncio.get_running_loop().create_task(self._run())

    async def _run(self) -> None:
        async for item in self.gen:
            self.got.append(item)

    async def until(self, cond: Callable[[], bool]) -> None:
        deadline = time.monotonic() + DEADLINE
        while not cond():
            assert not self.task.done() or self.task.exception() is None
            assert time.monotonic() < deadline, f"timed out; got {self.got[-5:]}"
            await asyncio.sleep(0.005)

    async def count(self, n: int) -> None:
        await self.until(lambda: len(self.got) >= n)

    async def end(self) -> None:
        self.alive = False
        await asyncio.wait_for(self.task, DEADLINE)


def test_follow_sees_later_lines_and_ends(log: Path) -> None:
    async def main() -> None:
        w = LogWriter(str(log))
        w.write("stdout", b"a\n")
        w.write("stderr", b"b\n")
        f = Follower(log)
        await f.count(2)
        w.write("stdout", b"c\nd")
        await f.count(3)
        await asyncio.sleep(0.05)
        assert len(f.got) == 3  # "d" is still a partial line in the writer
        w.close()  # writes "d"; only then does the container count as stopped
        await f.end()
        assert f.got == [(1, b"a\n"), (2, b"b\n"), (1, b"c\n"), (1, b"d")]
    asyncio.run(main())


def test_follow_with_tail_since_and_timestamps(log: Path) -> None:
    async def main() -> None:
        w = LogWriter(str(log))
        for i in range(5):
            w.write("stdout", f"{i}\n".encode(), when=T0 + i)
        f = Follower(log, tail=2, timestamps=True, stderr=False, since=T0 + 1)
        await f.count(2)
        w.write("stderr", b"hidden\n", when=T0 + 10)
        w.write("stdout", b"new\n", when=T0 + 11)
        await f.count(3)
        w.close()
        await f.end()
        assert f.got == [(1, b"2023-11-14T22:13:23.000000000Z 3\n"),
                         (1, b"2023-11-14T22:13:24.000000000Z 4\n"),
                         (1, b"2023-11-14T22:13:31.000000000Z new\n")]
    asyncio.run(main())


def test_follow_across_rotations_loses_nothing(log: Path) -> None:
    async def main() -> None:
        w = LogWriter(str(log), max_size=300, max_file=20)
        f = Follower(log)
        expected = []
        for i in range(60):
            line = f"line {i:03d}\n".encode()
            w.write("stdout", line)
            expected.append(line)
            if i % 10 == 9:  # bursts: several rotations between two polls
                await f.count(len(expected))
        await f.count(60)
        w.close()
        await f.end()
        assert [d for _, d in f.got] == expected
    asyncio.run(main())


@pytest.mark.parametrize("max_file", [1, 2])
def test_follow_survives_rotation_that_deletes_files(log: Path, max_file: int) -> None:
    async def main() -> None:
        w = LogWriter(str(log), max_size=100, max_file=max_file)
        f = Follower(log)
        expected = []
        for i in range(30):  # one line at a time: every rotation seen between two polls
            line = f"line {i:03d} {'.' * 40}\n".encode()
            w.write("stdout", line)
            expected.append(line)
            await f.count(len(expected))
        w.close()
        await f.end()
        assert [d for _, d in f.got] == expected
    asyncio.run(main())


def test_follow_waits_for_the_file_to_appear(log: Path) -> None:
    async def main() -> None:
        f = Follower(log)
        await asyncio.sleep(0.05)
        w = LogWriter(str(log))
        w.write("stdout", b"hello\n")
        await f.count(1)
        w.close()
        await f.end()
        assert f.got == [(1, b"hello\n")]
    asyncio.run(main())


def test_follow_ends_when_until_passes(log: Path) -> None:
    async def main() -> None:
        w = LogWriter(str(log))
        w.write("stdout", b"early\n")
        started = time.monotonic()
        f = Follower(log, until=time.time() + 0.3)
        await f.count(1)
        await asyncio.wait_for(f.task, DEADLINE)  # running() stays True
        assert 0.25 < time.monotonic() - started < 2
        w.write("stdout", b"late\n")
        w.close()
        assert f.got == [(1, b"early\n")]
    asyncio.run(main())


def test_follow_stops_at_an_entry_past_until(log: Path) -> None:
    async def main() -> None:
        w = LogWriter(str(log))
        f = Follower(log, until=T0 + 5)
        w.write("stdout", b"in\n", when=T0 + 5)
        w.write("stdout", b"out\n", when=T0 + 6)
        await asyncio.wait_for(f.task, DEADLINE)
        w.close()
        assert f.got == [(1, b"in\n")]
    asyncio.run(main())


def test_follow_ends_at_once_for_a_stopped_container(rotated_log: Path) -> None:
    async def main() -> list[tuple[int, bytes]]:
        return [item async for item in follow(str(rotated_log), tail=3, running=lambda: False)]
    assert texts(asyncio.run(main())) == ["entry 27", "entry 28", "entry 29"]


def test_follow_closes_its_files_when_abandoned(rotated_log: Path) -> None:
    def open_fds() -> int:
        return len(os.listdir("/proc/self/fd"))

    async def main() -> None:
        before = open_fds()
        gen = follow(str(rotated_log), running=lambda: True)
        await gen.__anext__()
        assert open_fds() > before
        await gen.aclose()  # type: ignore[attr-defined]
        assert open_fds() == before
    asyncio.run(main())


def test_follow_when_the_current_file_is_missing_for_a_moment(log: Path) -> None:
    # A writer that renames and then creates (Docker's own) leaves a moment with only
    # path.1: what was sent from it is not sent again once path is back.
    with LogWriter(str(log), max_size=10, max_file=2) as w:
        w.write("stdout", b"old\n")
        w.write("stdout", b"cur\n")
    aside = log.with_name("aside")
    log.rename(aside)

    async def main() -> None:
        f = Follower(log)
        await f.count(1)
        aside.rename(log)
        await f.count(2)
        await f.end()
        assert f.got == [(1, b"old\n"), (1, b"cur\n")]
    asyncio.run(main())
