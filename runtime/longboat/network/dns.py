"""The embedded DNS server containers on user-defined networks ask at 127.0.0.11, as
Docker's: one server object in longboatd, one listener (a UDP and a TCP socket, bound
inside a container's network namespace) per container.

A listener answers from its ``lookup``:

- ``A``/``AAAA`` for a name (``lookup(name, qtype)``, the name lower-cased, without its
  final dot): a list of addresses is the answer (TTL 600, shuffled as Docker does); an
  empty list is a name we know without records of that type (NOERROR and no answer, as
  Docker does for a container without IPv6); None: not ours.
- ``PTR`` for ``in-addr.arpa``/``ip6.arpa`` names: ``lookup("172.18.0.2", PTR)`` gives
  the names of that address, or None.
- With ``ndots_set``, an A/AAAA question for a single-label name that is not ours is
  answered empty (NOERROR), not forwarded, as Docker's resolver does.
- Everything that is not ours goes to the upstream servers (the host's resolvers, or
  the container's ``--dns``), in order: over UDP for a UDP query — again over TCP when
  the answer comes back truncated — and over TCP for a TCP query; 4 s per server; when
  none answers, SERVFAIL. A listener with no upstreams (an internal network) answers
  SERVFAIL at once.

The server is driven by the event loop of the thread that calls :meth:`DnsServer.listen`;
``listen``/``stop``/``close`` must be called from that loop's thread. Upstream queries
leave from longboatd's own network namespace. Malformed queries get FORMERR (or nothing,
when not even a header came), responses and oversized names are dropped or refused;
nothing a container sends can make the server raise.
"""

from __future__ import annotations

import asyncio
import contextlib
import ipaddress
import logging
import random
import socket
import struct

from longboat.errors import InvalidArgument
from longboat.network import dns_wire as wire

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Hashable
    from typing import Any

    Lookup = Callable[[str, int], "list[str] | None"]

log = logging.getLogger("longboat.dns")

MAX_UPSTREAMS = 3          # as Docker: the first three resolvers
MAX_TCP_CLIENTS = 32       # per listener
TCP_IDLE = 10.0            # seconds a client connection may sit idle
_ids = random.SystemRandom()


def upstream_address(text: str) -> tuple[str, int]:
    """``1.1.1.1``, ``1.1.1.1:5353``, ``::1``, ``[::1]:5353`` -> (host, port)."""
    text = text.strip()
    host, port = text, 53
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        if rest:
            if not rest.startswith(":") or not rest[1:].isdigit():
                raise InvalidArgument(f"bad DNS server address: {text}")
            port = int(rest[1:])
    elif text.count(":") == 1:
        host, _, port_text = text.partition(":")
        if not port_text.isdigit():
            raise InvalidArgument(f"bad DNS server address: {text}")
        port = int(port_text)
    try:
        ipaddress.ip_address(host)
    except ValueError:
        raise InvalidArgument(f"bad DNS server address: {text}") from None
    if not 0 < port < 65536:
        raise InvalidArgument(f"bad DNS server port: {text}")
    return host, port


class _Listener:
    def __init__(self, udp: socket.socket | None, tcp: socket.socket | None,
                 lookup: Lookup, upstreams: list[tuple[str, int]], *,
                 ndots_set: bool = False) -> None:
        self.udp = udp
        self.tcp = tcp
        self.lookup = lookup
        self.upstreams = upstreams
        self.ndots_set = ndots_set
        self.tasks: set[asyncio.Task[None]] = set()
        self.tcp_clients = 0


class _Failed(Exception):
    """An upstream did not give a usable answer."""


class DnsServer:
    def __init__(self, upstreams: list[str], *, timeout: float = 4.0,
                 max_forwards: int = 100) -> None:
        self.upstreams = [upstream_address(u) for u in upstreams][:MAX_UPSTREAMS]
        self.timeout = timeout
        self.max_forwards = max_forwards
        self._forwarding = 0
        self._listeners: dict[Hashable, _Listener] = {}
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- listeners -------------------------------------------------------------------------
    def listen(self, key: Hashable, udp_sock: socket.socket | None,
               tcp_sock: socket.socket | None, lookup: Lookup, *,
               upstreams: list[str] | None = None, ndots_set: bool = False) -> None:
        """Serve on the two bound sockets (the server owns them from now on) until
        :meth:`stop`. ``upstreams`` overrides the server's for this listener (``--dns``;
        [] for none at all). ``ndots_set``: the container's resolv.conf sets ndots above
        0, so an A/AAAA question for a single-label name that is not ours gets an empty
        answer instead of going upstream (Docker's resolver: the client then tries its
        search domains)."""
        loop = asyncio.get_running_loop() if self._loop is None else self._loop
        self._loop = loop
        if key in self._listeners:
            self.stop(key)
        servers = (self.upstreams if upstreams is None
                   else [upstream_address(u) for u in upstreams][:MAX_UPSTREAMS])
        listener = _Listener(udp_sock, tcp_sock, lookup, servers, ndots_set=ndots_set)
        self._listeners[key] = listener
        if udp_sock is not None:
            udp_sock.setblocking(False)
            loop.add_reader(udp_sock.fileno(), self._on_datagram, listener)
        if tcp_sock is not None:
            tcp_sock.setblocking(False)
            tcp_sock.listen(16)
            loop.add_reader(tcp_sock.fileno(), self._on_connection, listener)

    def stop(self, key: Hashable) -> None:
        """Stop serving ``key`` and close its sockets; silent for an unknown key."""
        listener = self._listeners.pop(key, None)
        if listener is None:
            return
        for sock in (listener.udp, listener.tcp):
            if sock is None:
                continue
            if self._loop is not None and sock.fileno() >= 0:
                self._loop.remove_reader(sock.fileno())
            sock.close()
        for task in list(listener.tasks):
            task.cancel()

    def close(self) -> None:
        for key in list(self._listeners):
            self.stop(key)

    def __contains__(self, key: Hashable) -> bool:
        return key in self._listeners

    def _spawn(self, listener: _Listener, coro: Any) -> None:
        assert self._loop is not None
        task: asyncio.Task[None] = self._loop.create_task(coro)
        listener.tasks.add(task)
        task.add_done_callback(listener.tasks.discard)

    # -- UDP -------------------------------------------------------------------------------
    def _on_datagram(self, listener: _Listener) -> None:
        sock = listener.udp
        assert sock is not None
        for _ in range(64):      # then let the loop breathe
            try:
                data, peer = sock.recvfrom(65535)
            except (BlockingIOError, InterruptedError):
                return
            except OSError as exc:   # ICMP errors surface here: not fatal
                log.debug("dns: udp receive: %s", exc)
                return
            reply = self._local(listener, data, tcp=False)
            if isinstance(reply, bytes):
                self._send_datagram(sock, reply, peer)
            elif reply is not None:
                self._spawn(listener, self._forward_datagram(listener, reply, data, peer))

    @staticmethod
    def _send_datagram(sock: socket.socket, reply: bytes, peer: Any) -> None:
        try:
            sock.sendto(reply, peer)
        except OSError as exc:
            log.debug("dns: udp send to %s: %s", peer, exc)

    async def _forward_datagram(self, listener: _Listener, query: wire.Message,
                                data: bytes, peer: Any) -> None:
        reply = await self._forward(listener, query, data, tcp=False)
        if listener.udp is not None and listener.udp.fileno() >= 0:
            self._send_datagram(listener.udp, reply, peer)

    # -- TCP -------------------------------------------------------------------------------
    def _on_connection(self, listener: _Listener) -> None:
        sock = listener.tcp
        assert sock is not None
        try:
            conn, _ = sock.accept()
        except (BlockingIOError, InterruptedError):
            return
        except OSError as exc:
            log.debug("dns: accept: %s", exc)
            return
        if listener.tcp_clients >= MAX_TCP_CLIENTS:
            conn.close()
            return
        conn.setblocking(False)
        self._spawn(listener, self._serve_connection(listener, conn))

    async def _serve_connection(self, listener: _Listener, conn: socket.socket) -> None:
        listener.tcp_clients += 1
        writer: asyncio.StreamWriter | None = None
        try:
            reader, writer = await asyncio.open_connection(sock=conn)
            while True:
                head = await asyncio.wait_for(reader.readexactly(2), TCP_IDLE)
                (size,) = struct.unpack("!H", head)
                data = await asyncio.wait_for(reader.readexactly(size), TCP_IDLE)
                reply = self._local(listener, data, tcp=True)
                if isinstance(reply, wire.Message):
                    reply = await self._forward(listener, reply, data, tcp=True)
                if reply is None:
                    return
                writer.write(struct.pack("!H", len(reply)) + reply)
                await writer.drain()
        except (asyncio.IncompleteReadError, TimeoutError, ConnectionError, OSError):
            return
        finally:
            listener.tcp_clients -= 1
            if writer is not None:
                writer.close()
            else:
                conn.close()

    # -- answering -------------------------------------------------------------------------
    def _local(self, listener: _Listener, data: bytes, *, tcp: bool
               ) -> bytes | wire.Message | None:
        """Our reply (bytes), the parsed query when it must go upstream, or None to drop
        the message."""
        try:
            return self._answer(listener, data, tcp=tcp)
        except Exception:   # a bug of ours must not stop the listener
            log.exception("dns: a query could not be handled")
            return None

    def _answer(self, listener: _Listener, data: bytes, *, tcp: bool
                ) -> bytes | wire.Message | None:
        try:
            query = wire.parse(data)
        except wire.WireError as exc:
            if len(data) < wire.HEADER.size:
                return None
            log.debug("dns: malformed query: %s", exc)
            ident, flags = struct.unpack_from("!HH", data)
            if flags & 0x8000:
                return None
            return wire.error_reply(wire.Message(ident, flags), wire.FORMERR)
        if query.is_response:
            return None
        if query.opcode != wire.OPCODE_QUERY:
            return wire.error_reply(query, wire.NOTIMP)
        if len(query.questions) != 1:
            return wire.error_reply(query, wire.FORMERR)
        question = query.questions[0]
        name = question.text
        if (question.qclass != wire.CLASS_IN or name is None
                or question.qtype not in (wire.TYPE_A, wire.TYPE_AAAA, wire.TYPE_PTR)):
            return query
        max_size = 65535 if tcp else query.udp_size
        try:
            if question.qtype == wire.TYPE_PTR:
                address = wire.reverse_address(name)
                if address is None:
                    return query
                values = listener.lookup(address, wire.TYPE_PTR)
            else:
                values = listener.lookup(name, question.qtype)
                if values and len(values) > 1:
                    values = list(values)
                    _ids.shuffle(values)
            if values is None:
                if not (listener.ndots_set and question.qtype != wire.TYPE_PTR
                        and "." not in name):
                    return query
                values = []
            return wire.answer(query, question.qtype, list(values), max_size=max_size)
        except Exception:   # a fault of the lookup: the container still gets an answer
            log.exception("dns: answering %s (type %d) failed", name, question.qtype)
            return wire.error_reply(query, wire.SERVFAIL)

    async def _forward(self, listener: _Listener, query: wire.Message, data: bytes, *,
                       tcp: bool) -> bytes:
        if not listener.upstreams or self._forwarding >= self.max_forwards:
            return wire.error_reply(query, wire.SERVFAIL)
        self._forwarding += 1
        try:
            for server in listener.upstreams:
                try:
                    reply = await self._ask(server, query, data, tcp=tcp)
                except _Failed as exc:
                    log.debug("dns: upstream %s:%d: %s", server[0], server[1], exc)
                    continue
                return wire.with_id(reply, query.id)
            return wire.error_reply(query, wire.SERVFAIL)
        finally:
            self._forwarding -= 1

    async def _ask(self, server: tuple[str, int], query: wire.Message, data: bytes, *,
                   tcp: bool) -> bytes:
        ident = _ids.getrandbits(16)
        outgoing = wire.with_id(data, ident)
        if tcp:
            return await self._exchange_tcp(server, outgoing, ident, query)
        reply = await self._exchange_udp(server, outgoing, ident, query)
        if not wire.parse(reply).truncated:
            return reply
        try:
            full = await self._exchange_tcp(server, outgoing, ident, query)
        except _Failed:
            return reply          # the client retries over TCP itself
        return full if len(full) <= query.udp_size else reply

    def _check(self, reply: bytes, ident: int, query: wire.Message) -> bool:
        try:
            message = wire.parse(reply)
        except wire.WireError:
            return False
        if not message.is_response or message.id != ident:
            return False
        if not message.questions:
            return message.rcode != wire.NOERROR
        asked, got = query.questions[0], message.questions[0]
        return (len(message.questions) == 1 and asked.qtype == got.qtype
                and asked.qclass == got.qclass
                and tuple(x.lower() for x in asked.labels)
                == tuple(x.lower() for x in got.labels))

    async def _exchange_udp(self, server: tuple[str, int], data: bytes, ident: int,
                            query: wire.Message) -> bytes:
        loop = asyncio.get_running_loop()
        family = socket.AF_INET6 if ":" in server[0] else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_DGRAM)
        sock.setblocking(False)
        deadline = loop.time() + self.timeout
        try:
            try:
                sock.connect(server)
                await loop.sock_sendall(sock, data)
                while True:
                    left = deadline - loop.time()
                    if left <= 0:
                        raise _Failed("timed out")
                    reply = await asyncio.wait_for(loop.sock_recv(sock, 65535), left)
                    if self._check(reply, ident, query):
                        return reply
            except TimeoutError:
                raise _Failed("timed out") from None
            except OSError as exc:
                raise _Failed(str(exc)) from None
        finally:
            sock.close()

    async def _exchange_tcp(self, server: tuple[str, int], data: bytes, ident: int,
                            query: wire.Message) -> bytes:
        writer: asyncio.StreamWriter | None = None
        try:
            async with asyncio.timeout(self.timeout):
                reader, writer = await asyncio.open_connection(*server)
                writer.write(struct.pack("!H", len(data)) + data)
                await writer.drain()
                (size,) = struct.unpack("!H", await reader.readexactly(2))
                reply = await reader.readexactly(size)
        except TimeoutError:
            raise _Failed("timed out over TCP") from None
        except (OSError, asyncio.IncompleteReadError) as exc:
            raise _Failed(f"over TCP: {exc}") from None
        finally:
            if writer is not None:
                writer.close()
                with contextlib.suppress(Exception):
                    await writer.wait_closed()
        if not self._check(reply, ident, query):
            raise _Failed("a reply that does not match the query")
        return reply
