"""The embedded DNS server (longboat.network.dns): answers from the lookup as Docker's
resolver gives them, forwarding to upstreams (a fake resolver on 127.0.0.1: UDP, TCP after
truncation, timeouts, SERVFAIL), and hostile input that must not bring it down."""

from __future__ import annotations

import asyncio
import socket
import struct
import threading
from collections.abc import Callable, Coroutine, Iterator
from typing import Any, TypeVar

import pytest

from longboat.errors import InvalidArgument
from longboat.network import dns_wire as wire
from longboat.network.dns import DnsServer, upstream_address

pytestmark = pytest.mark.unit
T = TypeVar("T")
UPSTREAM_ADDRESS = "192.0.2.53"      # what the fake upstream answers for every A query


class Loop:
    """An event loop in a thread: the server runs there, the test talks to it through
    plain blocking sockets."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(10)

    def call(self, fn: Callable[[], T]) -> T:
        async def wrapper() -> T:
            return fn()
        return self.run(wrapper())

    def close(self) -> None:
        async def cancel_all() -> None:
            tasks = [t for t in asyncio.all_tasks() if t is not asyncio.current_task()]
            for task in tasks:
                task.cancel()
            await asyncio.gather(*tasks, return_exceptions=True)

        self.run(cancel_all())
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(5)
        self.loop.close()


class FakeUpstream:
    """A resolver on 127.0.0.1 (UDP and TCP on one port): answers every A query with
    UPSTREAM_ADDRESS and NXDOMAIN for the rest; ``truncate`` makes its UDP answers
    truncated, ``silent`` makes it never answer."""

    def __init__(self, loop: Loop, *, truncate: bool = False, silent: bool = False) -> None:
        self.truncate = truncate
        self.silent = silent
        self.udp_queries: list[bytes] = []
        self.tcp_queries: list[bytes] = []
        self.loop = loop
        self.udp, self.tcp = _pair_of_sockets()
        self.port = self.udp.getsockname()[1]
        self.address = f"127.0.0.1:{self.port}"
        self.server: asyncio.Server | None = None
        loop.call(lambda: loop.loop.add_reader(self.udp.fileno(), self._datagram))
        self.server = loop.run(asyncio.start_server(self._stream, sock=self.tcp))

    def reply(self, data: bytes, *, tcp: bool) -> bytes:
        query = wire.parse(data)
        q = query.questions[0]
        if q.qtype == wire.TYPE_A:
            addresses = [f"192.0.2.{i}" for i in range(1, 80)] if self.truncate else \
                [UPSTREAM_ADDRESS]
            reply = wire.answer(query, wire.TYPE_A, addresses,
                                max_size=65535 if tcp else 512, ttl=30)
            return reply
        return wire.error_reply(query, wire.NXDOMAIN)

    def _datagram(self) -> None:
        data, peer = self.udp.recvfrom(65535)
        self.udp_queries.append(data)
        if not self.silent:
            self.udp.sendto(self.reply(data, tcp=False), peer)

    async def _stream(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter
                      ) -> None:
        try:
            (size,) = struct.unpack("!H", await reader.readexactly(2))
            data = await reader.readexactly(size)
            self.tcp_queries.append(data)
            if not self.silent:
                reply = self.reply(data, tcp=True)
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
            else:
                await reader.read()          # until the asker gives up
        finally:
            writer.close()

    def close(self) -> None:
        self.loop.call(lambda: self.loop.loop.remove_reader(self.udp.fileno()))
        self.udp.close()
        if self.server is not None:
            self.server.close()


def _pair_of_sockets() -> tuple[socket.socket, socket.socket]:
    """A UDP and a TCP socket bound to the same free port on 127.0.0.1."""
    for _ in range(50):
        udp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        udp.bind(("127.0.0.1", 0))
        tcp = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            tcp.bind(("127.0.0.1", udp.getsockname()[1]))
        except OSError:
            udp.close()
            tcp.close()
            continue
        udp.setblocking(False)
        tcp.setblocking(False)
        return udp, tcp
    raise RuntimeError("no free port pair on 127.0.0.1")


NAMES = {"web": ["172.18.0.2"], "db": ["172.18.0.3"], "both": ["172.18.0.4"],
         "many": [f"172.18.1.{i}" for i in range(1, 60)]}
V6 = {"both": ["fd00::4"]}
REVERSE = {"172.18.0.2": ["web.mynet"]}


def lookup(name: str, qtype: int) -> list[str] | None:
    if qtype == wire.TYPE_PTR:
        return REVERSE.get(name)
    if name == "boom":
        raise RuntimeError("a bug in the lookup")
    if name not in NAMES:
        return None
    return NAMES[name] if qtype == wire.TYPE_A else V6.get(name, [])


class Harness:
    def __init__(self, loop: Loop, upstreams: list[str], *, timeout: float = 1.0) -> None:
        self.loop = loop
        self.server = DnsServer(upstreams, timeout=timeout)
        self.udp, self.tcp = _pair_of_sockets()
        self.address = self.udp.getsockname()
        loop.call(lambda: self.server.listen("c1", self.udp, self.tcp, lookup))

    def ask(self, name: str, qtype: int = wire.TYPE_A, *, ident: int = 0x1234,
            udp_size: int | None = None) -> bytes:
        return self.udp_exchange(wire.query(name, qtype, ident, udp_size=udp_size))

    def udp_exchange(self, data: bytes, timeout: float = 5.0) -> bytes:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(timeout)
            s.sendto(data, self.address)
            return s.recv(65535)

    def no_reply(self, data: bytes) -> None:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(0.3)
            s.sendto(data, self.address)
            with pytest.raises(TimeoutError):
                s.recv(65535)

    def tcp_exchange(self, *messages: bytes) -> list[bytes]:
        with socket.create_connection(self.address, timeout=5) as s:
            s.sendall(b"".join(struct.pack("!H", len(m)) + m for m in messages))
            replies = []
            for _ in messages:
                (size,) = struct.unpack("!H", _read(s, 2))
                replies.append(_read(s, size))
            return replies

    def close(self) -> None:
        self.loop.call(self.server.close)


def _read(s: socket.socket, size: int) -> bytes:
    data = b""
    while len(data) < size:
        chunk = s.recv(size - len(data))
        if not chunk:
            raise ConnectionError("closed early")
        data += chunk
    return data


@pytest.fixture
def loop() -> Iterator[Loop]:
    running = Loop()
    yield running
    running.close()


@pytest.fixture
def upstream(loop: Loop) -> Iterator[FakeUpstream]:
    fake = FakeUpstream(loop)
    yield fake
    fake.close()


@pytest.fixture
def dns(loop: Loop, upstream: FakeUpstream) -> Iterator[Harness]:
    harness = Harness(loop, [upstream.address])
    yield harness
    harness.close()


def addresses(reply: bytes) -> list[str]:
    import ipaddress

    return [str(ipaddress.ip_address(rdata)) for _, rtype, _, rdata in wire.records(reply)
            if rtype in (wire.TYPE_A, wire.TYPE_AAAA)]


def rcode(reply: bytes) -> int:
    return wire.parse(reply).rcode


# -- our names ------------------------------------------------------------------------------
def test_a_record_for_a_known_name_as_docker_answers(dns: Harness,
                                                     upstream: FakeUpstream) -> None:
    reply = dns.ask("web")
    message = wire.parse(reply)
    assert message.id == 0x1234 and message.is_response and rcode(reply) == wire.NOERROR
    assert message.flags & 0x0080            # recursion available, as Docker sets
    assert message.flags & 0x0100            # RD copied from the query
    assert [(n, t, ttl) for n, t, ttl, _ in wire.records(reply)] == [("web", wire.TYPE_A,
                                                                      600)]
    assert addresses(reply) == ["172.18.0.2"]
    assert not upstream.udp_queries


def test_names_are_case_insensitive_with_or_without_a_final_dot(dns: Harness) -> None:
    for name in ("WEB", "Web.", "web."):
        reply = dns.ask(name)
        assert addresses(reply) == ["172.18.0.2"]
        # the answer carries the name as asked (compressed to the question)
        assert wire.records(reply)[0][0] == name.rstrip(".")


def test_known_name_without_ipv6_is_noerror_and_empty(dns: Harness,
                                                      upstream: FakeUpstream) -> None:
    reply = dns.ask("web", wire.TYPE_AAAA)
    assert rcode(reply) == wire.NOERROR and wire.parse(reply).ancount == 0
    assert addresses(dns.ask("both", wire.TYPE_AAAA)) == ["fd00::4"]
    assert not upstream.udp_queries


def test_several_addresses_and_truncation_to_the_udp_size(dns: Harness) -> None:
    reply = dns.ask("many")
    message = wire.parse(reply)
    assert len(reply) <= 512 and message.truncated
    assert 0 < message.ancount < 59
    big = dns.ask("many", udp_size=4096)
    assert not wire.parse(big).truncated
    assert sorted(addresses(big)) == sorted(NAMES["many"])
    [over_tcp] = dns.tcp_exchange(wire.query("many", wire.TYPE_A, 7))
    assert len(addresses(over_tcp)) == 59 and not wire.parse(over_tcp).truncated


def test_ptr_for_our_address(dns: Harness) -> None:
    reply = dns.ask("2.0.18.172.in-addr.arpa", wire.TYPE_PTR)
    [(name, rtype, ttl, target)] = wire.records(reply)
    assert (name, rtype, ttl, target) == ("2.0.18.172.in-addr.arpa", wire.TYPE_PTR, 600,
                                          b"web.mynet")


def test_reverse_names() -> None:
    assert wire.reverse_address("2.0.18.172.in-addr.arpa") == "172.18.0.2"
    assert wire.reverse_address("1.2.3.in-addr.arpa") is None
    assert wire.reverse_address("999.0.18.172.in-addr.arpa") is None
    v6 = ".".join(reversed("fd000000000000000000000000000004")) + ".ip6.arpa"
    assert wire.reverse_address(v6) == "fd00::4"
    assert wire.reverse_address("x.ip6.arpa") is None


def test_tcp_queries_are_answered_in_order_on_one_connection(dns: Harness) -> None:
    replies = dns.tcp_exchange(wire.query("web", wire.TYPE_A, 1),
                               wire.query("db", wire.TYPE_A, 2),
                               wire.query("elsewhere.example", wire.TYPE_A, 3))
    assert [wire.parse(r).id for r in replies] == [1, 2, 3]
    assert [addresses(r) for r in replies] == [["172.18.0.2"], ["172.18.0.3"],
                                               [UPSTREAM_ADDRESS]]


def test_a_failing_lookup_is_servfail_not_a_dead_server(dns: Harness) -> None:
    assert rcode(dns.ask("boom")) == wire.SERVFAIL
    assert addresses(dns.ask("web")) == ["172.18.0.2"]


# -- forwarding -----------------------------------------------------------------------------
def test_unknown_names_go_upstream_with_their_own_id(dns: Harness,
                                                     upstream: FakeUpstream) -> None:
    reply = dns.ask("example.org", ident=0x4242)
    assert wire.parse(reply).id == 0x4242
    assert addresses(reply) == [UPSTREAM_ADDRESS]
    [sent] = upstream.udp_queries
    assert wire.parse(sent).questions[0].text == "example.org"
    # other types and unknown reverse names too
    assert rcode(dns.ask("web", wire.TYPE_MX)) == wire.NXDOMAIN
    assert rcode(dns.ask("9.9.9.10.in-addr.arpa", wire.TYPE_PTR)) == wire.NXDOMAIN
    assert len(upstream.udp_queries) == 3


def test_a_truncated_upstream_answer_is_asked_again_over_tcp(loop: Loop) -> None:
    fake = FakeUpstream(loop, truncate=True)
    harness = Harness(loop, [fake.address])
    try:
        reply = harness.ask("big.example", udp_size=4096)
        assert len(addresses(reply)) == 79 and not wire.parse(reply).truncated
        assert len(fake.udp_queries) == 1 and len(fake.tcp_queries) == 1
        # a client that takes only 512 bytes gets the truncated answer: it retries
        small = harness.ask("big.example")
        assert wire.parse(small).truncated and len(small) <= 512
    finally:
        harness.close()
        fake.close()


def test_a_silent_upstream_times_out_and_the_next_one_answers(loop: Loop) -> None:
    silent = FakeUpstream(loop, silent=True)
    good = FakeUpstream(loop)
    harness = Harness(loop, [silent.address, good.address], timeout=0.3)
    try:
        assert addresses(harness.ask("example.net")) == [UPSTREAM_ADDRESS]
        assert len(silent.udp_queries) == 1
    finally:
        harness.close()
        silent.close()
        good.close()


def test_servfail_when_no_upstream_answers(loop: Loop) -> None:
    silent = FakeUpstream(loop, silent=True)
    closed = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    closed.bind(("127.0.0.1", 0))       # a port where nobody answers: ICMP refused
    dead = f"127.0.0.1:{closed.getsockname()[1]}"
    closed.close()
    harness = Harness(loop, [dead, silent.address], timeout=0.3)
    try:
        assert rcode(harness.ask("example.net")) == wire.SERVFAIL
        [over_tcp] = harness.tcp_exchange(wire.query("example.net", wire.TYPE_A, 9))
        assert rcode(over_tcp) == wire.SERVFAIL
        assert addresses(harness.ask("web")) == ["172.18.0.2"]   # ours still answered
    finally:
        harness.close()
        silent.close()


def test_no_upstreams_at_all_is_servfail_at_once(loop: Loop) -> None:
    harness = Harness(loop, [])
    try:
        assert rcode(harness.ask("example.net")) == wire.SERVFAIL
    finally:
        harness.close()


def test_per_listener_upstreams_and_stop(loop: Loop, upstream: FakeUpstream) -> None:
    server = DnsServer(["127.0.0.1:9"], timeout=0.3)
    udp, tcp = _pair_of_sockets()
    address = udp.getsockname()
    loop.call(lambda: server.listen("c2", udp, tcp, lookup, upstreams=[upstream.address]))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(wire.query("example.com", wire.TYPE_A, 5), address)
            assert addresses(s.recv(4096)) == [UPSTREAM_ADDRESS]
        assert "c2" in server
    finally:
        loop.call(lambda: server.stop("c2"))
    assert "c2" not in server and udp.fileno() == -1 and tcp.fileno() == -1
    loop.call(lambda: server.stop("c2"))      # twice: silent


def test_upstream_addresses() -> None:
    assert upstream_address("8.8.8.8") == ("8.8.8.8", 53)
    assert upstream_address("127.0.0.1:5353") == ("127.0.0.1", 5353)
    assert upstream_address("::1") == ("::1", 53)
    assert upstream_address("[::1]:54") == ("::1", 54)
    for bad in ("dns.example", "1.2.3.4:x", "[::1]x", "1.2.3.4:0"):
        with pytest.raises(InvalidArgument):
            upstream_address(bad)


# -- hostile input --------------------------------------------------------------------------
HEADER_ONE_QUESTION = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 1, 0, 0, 0)


def test_malformed_queries_get_formerr_and_the_server_lives_on(dns: Harness) -> None:
    loop_pointer = HEADER_ONE_QUESTION + b"\xc0\x0c" + b"\x00\x01\x00\x01"
    forward_pointer = HEADER_ONE_QUESTION + b"\xc0\x20" + b"\x00\x01\x00\x01" + b"\x00" * 20
    two_step_loop = HEADER_ONE_QUESTION + b"\x01a\xc0\x0c" + b"\x00\x01\x00\x01"
    long_label = HEADER_ONE_QUESTION + b"\x40" + b"a" * 64 + b"\x00\x00\x01\x00\x01"
    long_name = HEADER_ONE_QUESTION + (b"\x3f" + b"a" * 63) * 5 + b"\x00\x00\x01\x00\x01"
    short_question = HEADER_ONE_QUESTION + b"\x03web\x00\x00"
    runaway_label = HEADER_ONE_QUESTION + b"\x20abc"
    no_question = struct.pack("!HHHHHH", 0xBEEF, 0x0100, 0, 0, 0, 0)
    two_questions = (struct.pack("!HHHHHH", 0xBEEF, 0x0100, 2, 0, 0, 0)
                     + (b"\x03web\x00\x00\x01\x00\x01") * 2)
    bad_opt = wire.query("web", wire.TYPE_A, 0xBEEF, udp_size=1232)[:-3]   # OPT cut short
    for bad in (loop_pointer, forward_pointer, two_step_loop, long_label, long_name,
                short_question, runaway_label, no_question, two_questions):
        reply = dns.udp_exchange(bad)
        assert wire.parse(reply).id == 0xBEEF and rcode(reply) == wire.FORMERR, bad
    reply = dns.udp_exchange(bad_opt)
    assert rcode(reply) == wire.FORMERR
    assert addresses(dns.ask("web")) == ["172.18.0.2"]


def test_what_is_dropped_without_a_reply(dns: Harness) -> None:
    dns.no_reply(b"")
    dns.no_reply(b"\x01\x02\x03")
    response = bytearray(wire.query("web", wire.TYPE_A, 1))
    response[2] |= 0x80                      # a response sent to us: never answer it
    dns.no_reply(bytes(response))
    assert addresses(dns.ask("web")) == ["172.18.0.2"]


def test_other_opcodes_are_not_implemented(dns: Harness) -> None:
    notify = bytearray(wire.query("web", wire.TYPE_A, 3))
    notify[2] |= 4 << 3
    assert rcode(dns.udp_exchange(bytes(notify))) == wire.NOTIMP


def test_random_garbage_never_kills_it(dns: Harness) -> None:
    import random

    rng = random.Random(5)
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _ in range(300):
            size = rng.randrange(0, 80)
            data = bytes(rng.randrange(256) for _ in range(size))
            if rng.random() < 0.5 and size > 12:   # a plausible header, garbage after
                data = struct.pack("!HHHH", 7, 0x0100, 1, 0) + data[8:]
            s.sendto(data, dns.address)
    # garbage over TCP: a length that never arrives, then a closed connection
    with socket.create_connection(dns.address, timeout=5) as s:
        s.sendall(b"\xff\xff\x00\x01")
    with socket.create_connection(dns.address, timeout=5) as s:
        s.sendall(b"\x00\x05hello")        # too short for a header: the server hangs up
        assert s.recv(100) == b""
    assert addresses(dns.ask("web")) == ["172.18.0.2"]
    [reply] = dns.tcp_exchange(wire.query("db", wire.TYPE_A, 4))
    assert addresses(reply) == ["172.18.0.3"]


def test_every_truncation_of_a_good_message_is_a_wire_error() -> None:
    good = wire.query("web.example", wire.TYPE_A, 1, udp_size=1232)
    assert wire.parse(good).udp_size == 1232
    for end in range(len(good)):
        with pytest.raises(wire.WireError):
            wire.parse(good[:end])


def test_names_too_long_to_encode_are_refused() -> None:
    with pytest.raises(wire.WireError):
        wire.encode_name("a" * 64)
    with pytest.raises(wire.WireError):
        wire.encode_name(".".join(["a" * 63] * 5))
    assert wire.encode_name("web.") == wire.encode_name("web") == b"\x03web\x00"
    assert wire.encode_name("") == b"\x00"


def test_with_ndots_set_single_labels_not_ours_are_answered_empty(
        loop: Loop, upstream: FakeUpstream) -> None:
    server = DnsServer([upstream.address], timeout=0.3)
    udp, tcp = _pair_of_sockets()
    address = udp.getsockname()
    loop.call(lambda: server.listen("c3", udp, tcp, lookup, ndots_set=True))
    try:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            s.settimeout(5)
            s.sendto(wire.query("lbqsingle", wire.TYPE_A, 7), address)
            reply = s.recv(4096)
            assert rcode(reply) == wire.NOERROR and addresses(reply) == []
            s.sendto(wire.query("example.com", wire.TYPE_A, 8), address)  # dotted: upstream
            assert addresses(s.recv(4096)) == [UPSTREAM_ADDRESS]
            s.sendto(wire.query("web", wire.TYPE_A, 9), address)          # ours: answered
            assert addresses(s.recv(4096)) == ["172.18.0.2"]
    finally:
        loop.call(lambda: server.stop("c3"))
