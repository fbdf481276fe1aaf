"""Fuzzing the embedded DNS server's handling of what containers send (a fixed seed,
a few thousand random and mutated packets, a second or two): the wire parser raises
only ``WireError``, the server's answer path raises nothing and returns a reply, a
parsed query to forward, or None; and the worst packets cost bounded work (the server
runs on longboatd's event loop, so a slow parse stalls the whole API)."""

from __future__ import annotations

import logging
import random
import struct
import time
from collections.abc import Iterator

import pytest

from longboat.network import dns_wire as wire
from longboat.network.dns import DnsServer, _Listener

pytestmark = pytest.mark.unit

SEED = 20261128


def _lookup(name: str, qtype: int) -> list[str] | None:
    if qtype == wire.TYPE_PTR:
        return ["c1.lbs"] if name == "10.0.0.2" else None
    if name.endswith(".lbs") or name == "lbs":
        return ["10.0.0.2", "10.0.0.3"] if qtype == wire.TYPE_A else []
    return None


def _server() -> tuple[DnsServer, _Listener]:
    return DnsServer([]), _Listener(None, None, _lookup, [])


def _seeds() -> list[bytes]:
    out = [wire.query(name, qtype, 0x1234, udp_size=size)
           for name in ("c1.lbs", "lbs", "example.org", "a" * 63 + ".lbs",
                        "2.0.0.10.in-addr.arpa", "x." * 100 + "lbs")
           for qtype in (wire.TYPE_A, wire.TYPE_AAAA, wire.TYPE_PTR, wire.TYPE_TXT)
           for size in (None, 4096)]
    # a compressed name and an answer section
    base = wire.query("c1.lbs", wire.TYPE_A, 7)
    out.append(base[:-4] + b"\xc0\x0c" + base[-4:])
    server, listener = _server()
    reply = server._answer(listener, wire.query("c1.lbs", wire.TYPE_A, 9), tcp=False)
    assert isinstance(reply, bytes)
    out.append(reply)
    return out


def _mutate(rng: random.Random, data: bytes) -> bytes:
    buf = bytearray(data)
    for _ in range(rng.randint(1, 6)):
        op = rng.randrange(7)
        if op == 0 and buf:                               # flip bits
            i = rng.randrange(len(buf))
            buf[i] ^= 1 << rng.randrange(8)
        elif op == 1 and buf:                             # a random byte
            buf[rng.randrange(len(buf))] = rng.randrange(256)
        elif op == 2:                                     # truncate
            del buf[rng.randrange(len(buf) + 1):]
        elif op == 3:                                     # insert junk
            i = rng.randrange(len(buf) + 1)
            buf[i:i] = rng.randbytes(rng.randint(1, 40))
        elif op == 4 and len(buf) >= 12:                  # header counts
            field = rng.choice((4, 6, 8, 10))
            struct.pack_into("!H", buf, field, rng.choice((0, 1, 2, 255, 0xFFFF)))
        elif op == 5 and len(buf) > 13:                   # a compression pointer
            i = rng.randrange(12, len(buf) - 1)
            struct.pack_into("!H", buf, i, 0xC000 | rng.randrange(len(buf) + 8))
        elif op == 6 and len(buf) >= 4:                   # flags: QR, opcode, rcode
            struct.pack_into("!H", buf, 2, rng.randrange(0x10000))
    return bytes(buf)


def _check(server: DnsServer, listener: _Listener, data: bytes) -> None:
    try:
        message = wire.parse(data)
    except wire.WireError:
        message = None
    if message is not None and message.is_response:
        try:
            wire.records(data)
        except wire.WireError:
            pass
    for tcp in (False, True):
        reply = server._answer(listener, data, tcp=tcp)   # raises nothing
        assert reply is None or isinstance(reply, (bytes, wire.Message))
        if isinstance(reply, bytes):
            parsed = wire.parse(reply)                    # our replies are well formed
            assert parsed.is_response
            assert parsed.id == struct.unpack_from("!H", data)[0]
            if not tcp:
                assert message is None or len(reply) <= max(message.udp_size, 512)


@pytest.fixture(autouse=True)
def _no_errors_logged(caplog: pytest.LogCaptureFixture) -> Iterator[None]:
    """The server logs (and answers SERVFAIL, or drops) what raised inside it: a fuzz
    case that got there is a bug, even if nothing escaped."""
    yield
    errors = [r.getMessage() for r in caplog.records if r.levelno >= logging.ERROR]
    assert errors == []


def test_random_packets() -> None:
    rng = random.Random(SEED)
    server, listener = _server()
    for _ in range(2000):
        _check(server, listener, rng.randbytes(rng.choice((0, 1, 11, 12, 13, 17, 64, 512,
                                                           rng.randint(0, 1500)))))


def test_mutated_queries_and_replies() -> None:
    rng = random.Random(SEED + 1)
    server, listener = _server()
    seeds = _seeds()
    for _ in range(4000):
        _check(server, listener, _mutate(rng, rng.choice(seeds)))


def _pointer_chain(questions: int) -> bytes:
    """Questions whose names are pointers to the previous question's name, 250 deep
    (past that the walk is refused), then every further question naming the deepest:
    the most name-walking one message can ask for."""
    body = bytearray(wire.encode_name("a.lbs") + struct.pack("!HH", 1, 1))
    names = [12]
    for i in range(1, questions):
        target = names[min(i - 1, 249)]
        names.append(12 + len(body))
        body += struct.pack("!HHH", 0xC000 | target, wire.TYPE_A, wire.CLASS_IN)
    return wire.HEADER.pack(1, 0x0100, questions, 0, 0, 0) + bytes(body)


def test_the_worst_tcp_message_costs_bounded_work() -> None:
    server, listener = _server()
    data = _pointer_chain((65535 - 100) // 6)
    start = time.monotonic()
    for tcp in (False, True):
        reply = server._answer(listener, data, tcp=tcp)
        assert isinstance(reply, bytes) and wire.parse(reply).rcode == wire.FORMERR
    elapsed = time.monotonic() - start
    assert elapsed < 0.2, f"a single hostile message took {elapsed:.2f}s of the event loop"


def test_many_questions_cost_bounded_work() -> None:
    server, listener = _server()
    one = wire.encode_name("x" * 63 + "." + "y" * 63 + "." + "z" * 63 + ".lbs")
    count = 65000 // (len(one) + 4)
    data = wire.HEADER.pack(1, 0x0100, count, 0, 0, 0) + (one + b"\x00\x01\x00\x01") * count
    start = time.monotonic()
    reply = server._answer(listener, data, tcp=True)
    assert isinstance(reply, bytes) and wire.parse(reply).rcode == wire.FORMERR
    assert time.monotonic() - start < 0.2
