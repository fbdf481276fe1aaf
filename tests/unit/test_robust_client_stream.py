"""The client's JSON stream parser (vendored as is into the collection): linear in the
size of what a hostile engine sends, whatever the chunking, and capped per value with a
clear ``ProtocolError`` (a ``ClientError``)."""

from __future__ import annotations

import json
import time

import pytest

from longboat.client.api import MAX_STREAM_VALUE, ClientError, JSONStream, ProtocolError

pytestmark = pytest.mark.unit

VALUES = [{"a": 'b\\"}{[', "c": [1, {"d": None}], "e": "\u00e9\u4e2d"}, "s", True, 350.0,
          [], {}, {"status": "Downloading", "progressDetail": {"current": 1}}]
STREAM = (json.dumps(VALUES[0]) + "\n" + '"s" true 3.5e2\n[]{}' + json.dumps(VALUES[6])
          + "\n").encode()


@pytest.mark.parametrize("cut", range(len(STREAM)))
def test_any_chunk_boundary_gives_the_same_values(cut: int) -> None:
    parser = JSONStream()
    values = parser.feed(STREAM[:cut]) + parser.feed(STREAM[cut:])
    assert values + parser.close() == VALUES


def test_byte_by_byte() -> None:
    parser = JSONStream()
    values = [v for i in range(len(STREAM)) for v in parser.feed(STREAM[i:i + 1])]
    assert values + parser.close() == VALUES


def test_a_bare_value_at_the_end_is_decoded_at_close() -> None:
    parser = JSONStream()
    assert parser.feed(b"[1] 12") == [[1]]
    assert parser.close() == [12]


@pytest.mark.parametrize("rest", [b'{"a": ', b'"open string', b"[[]", b"<html>"])
def test_a_value_cut_short_or_bad_raises_at_close(rest: bytes) -> None:
    parser = JSONStream()
    assert parser.feed(b'{"ok": 1}\n' + rest) == [{"ok": 1}]
    with pytest.raises(ProtocolError, match="malformed JSON"):
        parser.close()


def test_a_huge_line_is_linear() -> None:
    """16 MiB in one value, in 64 KiB chunks: the old parser re-decoded the whole
    buffer at every chunk (0.8 s here, 3 s for 30 MiB; quadratic); now 0.1 s."""
    line = b'{"x": "' + b"a" * (16 << 20) + b'"}\n'
    parser = JSONStream()
    started = time.perf_counter()
    values = [v for i in range(0, len(line), 1 << 16) for v in parser.feed(line[i:i + (1 << 16)])]
    elapsed = time.perf_counter() - started
    assert values == [{"x": "a" * (16 << 20)}]
    assert elapsed < 2, elapsed


def test_a_value_past_the_cap_is_a_client_error() -> None:
    parser = JSONStream(limit=1 << 20)
    chunk = b'"aaaaaaa",' * 6554
    with pytest.raises(ClientError, match="longer than 1048576 characters"):
        parser.feed(b"[")
        for _ in range(20):
            parser.feed(chunk)
    with pytest.raises(ProtocolError):   # the stream stays broken
        parser.feed(b"]")
    assert MAX_STREAM_VALUE == 32 << 20


def test_nesting_past_the_decoder_is_a_protocol_error() -> None:
    parser = JSONStream()
    parser.feed(b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ProtocolError, match="nested too deeply"):
        parser.close()
