"""The DNS wire format (RFC 1035) as far as the embedded resolver needs it: parse a
query's header and question, build answers (A, AAAA, PTR) and error replies.

Everything read here comes from containers or upstream servers and is hostile until
proven otherwise: every read is bounds-checked, compression pointers may only point
backwards (no loops), names stop at 255 bytes and labels at 63. A bad message raises
:class:`WireError`, never anything else.
"""

from __future__ import annotations

import ipaddress
import struct
from dataclasses import dataclass, field

HEADER = struct.Struct("!HHHHHH")
TYPE_A, TYPE_NS, TYPE_CNAME, TYPE_PTR, TYPE_MX, TYPE_TXT = 1, 2, 5, 12, 15, 16
TYPE_AAAA, TYPE_SRV, TYPE_OPT = 28, 33, 41
CLASS_IN = 1
NOERROR, FORMERR, SERVFAIL, NXDOMAIN, NOTIMP, REFUSED = 0, 1, 2, 3, 4, 5
OPCODE_QUERY = 0
MAX_NAME = 255
MAX_LABEL = 63
UDP_DEFAULT_SIZE = 512
TTL = 600          # what Docker's resolver gives its own names

_QR, _AA, _TC, _RD, _RA = 0x8000, 0x0400, 0x0200, 0x0100, 0x0080


class WireError(Exception):
    """A message that does not parse (short, looping, oversized, inconsistent)."""


@dataclass
class Question:
    labels: tuple[bytes, ...]    # as sent (case kept)
    qtype: int
    qclass: int

    @property
    def text(self) -> str | None:
        """The name as the resolver looks it up: lower case, no final dot; None when a
        label holds a dot or a byte outside printable ASCII (no name of ours does)."""
        if any(b"." in label or not all(32 < byte < 127 for byte in label)
               for label in self.labels):
            return None
        return b".".join(self.labels).lower().decode("ascii")


@dataclass
class Message:
    id: int
    flags: int
    questions: list[Question] = field(default_factory=list)
    ancount: int = 0
    nscount: int = 0
    arcount: int = 0
    udp_size: int = UDP_DEFAULT_SIZE   # from an EDNS0 OPT record, when there is one
    question_end: int = 12             # offset just past the question section

    @property
    def is_response(self) -> bool:
        return bool(self.flags & _QR)

    @property
    def opcode(self) -> int:
        return (self.flags >> 11) & 0xF

    @property
    def truncated(self) -> bool:
        return bool(self.flags & _TC)

    @property
    def rcode(self) -> int:
        return self.flags & 0xF


def read_name(data: bytes, offset: int) -> tuple[tuple[bytes, ...], int]:
    """The name at ``offset`` and the offset just past it (past the first pointer, when
    the name is compressed)."""
    labels: list[bytes] = []
    size = 0
    end = -1
    position = offset
    for _ in range(MAX_NAME):          # every step consumes a label or a pointer
        if position >= len(data):
            raise WireError("name runs past the end of the message")
        length = data[position]
        if length == 0:
            if end < 0:
                end = position + 1
            return tuple(labels), end
        kind = length & 0xC0
        if kind == 0xC0:
            if position + 1 >= len(data):
                raise WireError("truncated compression pointer")
            target = ((length & 0x3F) << 8) | data[position + 1]
            if target >= position:     # only backwards: no loops, no forward tricks
                raise WireError("compression pointer does not point backwards")
            if end < 0:
                end = position + 2
            position = target
            continue
        if kind:
            raise WireError("unknown label type")
        label = data[position + 1:position + 1 + length]
        if len(label) != length:
            raise WireError("label runs past the end of the message")
        size += length + 1
        if size > MAX_NAME:
            raise WireError("name longer than 255 bytes")
        labels.append(label)
        position += 1 + length
    raise WireError("name has too many labels")


def encode_name(name: str | tuple[bytes, ...]) -> bytes:
    """A name in wire labels: text (a final dot or none, the same) or labels."""
    if isinstance(name, str):
        text = name.rstrip(".")
        labels = tuple(text.encode("ascii").split(b".")) if text else ()
    else:
        labels = name
    out = bytearray()
    for label in labels:
        if not label or len(label) > MAX_LABEL:
            raise WireError(f"bad label in {name!r}")
        out.append(len(label))
        out += label
    out.append(0)
    if len(out) > MAX_NAME:
        raise WireError("name longer than 255 bytes")
    return bytes(out)


def _skip_record(data: bytes, offset: int) -> tuple[int, int, int]:
    """Skip one resource record; (its type, its class field, the offset past it)."""
    _, offset = read_name(data, offset)
    if offset + 10 > len(data):
        raise WireError("truncated resource record")
    rtype, rclass, _, rdlength = struct.unpack_from("!HHIH", data, offset)
    offset += 10 + rdlength
    if offset > len(data):
        raise WireError("resource record data runs past the end")
    return rtype, rclass, offset


def parse(data: bytes) -> Message:
    """Header and questions; with ``arcount``, the EDNS0 UDP size of a query."""
    if len(data) < HEADER.size:
        raise WireError("shorter than a DNS header")
    ident, flags, qdcount, ancount, nscount, arcount = HEADER.unpack_from(data)
    message = Message(ident, flags, [], ancount, nscount, arcount)
    offset = HEADER.size
    if qdcount > 8:   # a query has one; 10000 of 250-pointer names took 0.7 s of the loop
        raise WireError(f"{qdcount} questions")
    for _ in range(qdcount):
        name, offset = read_name(data, offset)
        if offset + 4 > len(data):
            raise WireError("truncated question")
        qtype, qclass = struct.unpack_from("!HH", data, offset)
        offset += 4
        message.questions.append(Question(name, qtype, qclass))
    message.question_end = offset
    if not message.is_response and arcount and not ancount and not nscount:
        for _ in range(min(arcount, 8)):
            rtype, rclass, offset = _skip_record(data, offset)
            if rtype == TYPE_OPT:
                message.udp_size = max(UDP_DEFAULT_SIZE, min(rclass, 65535))
    return message


# -- building replies ------------------------------------------------------------------------
def _reply_flags(query: Message, rcode: int) -> int:
    # QR, the query's opcode and RD, recursion available (as Docker's resolver sets it)
    return _QR | (query.flags & (0x7800 | _RD)) | _RA | (rcode & 0xF)


def error_reply(query: Message, rcode: int) -> bytes:
    """An answerless reply, the question echoed when there was exactly one."""
    question = b""
    if len(query.questions) == 1:
        try:
            question = _question_bytes(query.questions[0])
        except WireError:
            question = b""
    return (HEADER.pack(query.id, _reply_flags(query, rcode), 1 if question else 0, 0, 0, 0)
            + question)


def _question_bytes(question: Question) -> bytes:
    return encode_name(question.labels) + struct.pack("!HH", question.qtype, question.qclass)


def answer(query: Message, rtype: int, values: list[str], *, max_size: int,
           ttl: int = TTL) -> bytes:
    """A NOERROR reply to ``query``'s one question with ``values`` as records of
    ``rtype`` (A and AAAA: addresses, PTR: names); none is a known name without records
    of that type. Records that do not fit ``max_size`` are dropped and TC set."""
    question = query.questions[0]
    head = _question_bytes(question)
    records: list[bytes] = []
    for value in values:
        if rtype == TYPE_A:
            rdata = ipaddress.IPv4Address(value).packed
        elif rtype == TYPE_AAAA:
            rdata = ipaddress.IPv6Address(value).packed
        elif rtype == TYPE_PTR:
            rdata = encode_name(value)
        else:
            raise WireError(f"cannot answer type {rtype}")
        # 0xC00C: the name is the question's, right after the header
        records.append(struct.pack("!HHHIH", 0xC00C, rtype, CLASS_IN, ttl, len(rdata))
                       + rdata)
    flags = _reply_flags(query, NOERROR)
    size = HEADER.size + len(head)
    kept: list[bytes] = []
    for record in records:
        if size + len(record) > max_size:
            flags |= _TC
            break
        kept.append(record)
        size += len(record)
    return HEADER.pack(query.id, flags, 1, len(kept), 0, 0) + head + b"".join(kept)


def with_id(data: bytes, ident: int) -> bytes:
    return struct.pack("!H", ident) + data[2:]


def reverse_address(name: str) -> str | None:
    """``4.3.2.1.in-addr.arpa`` -> ``1.2.3.4``, the 32 nibbles of ``ip6.arpa`` -> an IPv6
    address; None for anything else."""
    if name.endswith(".in-addr.arpa"):
        parts = name[:-len(".in-addr.arpa")].split(".")
        if len(parts) != 4 or not all(p.isdigit() and len(p) <= 3 for p in parts):
            return None
        try:
            return str(ipaddress.IPv4Address(".".join(reversed(parts))))
        except ValueError:
            return None
    if name.endswith(".ip6.arpa"):
        nibbles = name[:-len(".ip6.arpa")].split(".")
        if len(nibbles) != 32 or not all(len(n) == 1 and n in "0123456789abcdef"
                                         for n in nibbles):
            return None
        return str(ipaddress.IPv6Address(int("".join(reversed(nibbles)), 16)))
    return None


def query(name: str, qtype: int, ident: int, *, udp_size: int | None = None) -> bytes:
    """A recursive query (tests and health checks)."""
    additional = b""
    if udp_size:
        additional = b"\x00" + struct.pack("!HHIH", TYPE_OPT, udp_size, 0, 0)
    return (HEADER.pack(ident, _RD, 1, 0, 0, 1 if additional else 0)
            + encode_name(name) + struct.pack("!HH", qtype, CLASS_IN) + additional)


def records(data: bytes) -> list[tuple[str, int, int, bytes]]:
    """The answer section of a reply: (name, type, ttl, rdata) — for tests and clients."""
    message = parse(data)
    offset = message.question_end
    out = []
    for _ in range(message.ancount):
        name, offset = read_name(data, offset)
        if offset + 10 > len(data):
            raise WireError("truncated resource record")
        rtype, _, ttl, rdlength = struct.unpack_from("!HHIH", data, offset)
        offset += 10
        rdata = data[offset:offset + rdlength]
        if len(rdata) != rdlength:
            raise WireError("resource record data runs past the end")
        if rtype == TYPE_PTR:
            target, _ = read_name(data, offset)
            rdata = b".".join(target)
        offset += rdlength
        out.append((b".".join(name).decode("latin-1"), rtype, ttl, rdata))
    return out
