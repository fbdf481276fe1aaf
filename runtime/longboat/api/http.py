"""A small HTTP/1.1 server on asyncio, with what the Docker API needs beyond plain
request/response: chunked streams (pull progress, logs, events), bodies read as streams
(image loads, build contexts), and connection hijacking (attach, exec: HTTP 101).

One request at a time per connection, keep-alive between them. Nothing here knows about
Docker; :mod:`longboat.api.router` does.
"""

from __future__ import annotations

import asyncio
import json
from urllib.parse import parse_qs, unquote, urlsplit

from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Awaitable, Callable
    from typing import Any

MAX_HEADER = 64 << 10
REASONS = {100: "Continue", 101: "UPGRADED", 200: "OK", 201: "Created", 204: "No Content",
           304: "Not Modified", 400: "Bad Request", 401: "Unauthorized", 403: "Forbidden",
           404: "Not Found", 405: "Method Not Allowed", 409: "Conflict",
           413: "Payload Too Large", 500: "Internal Server Error", 501: "Not Implemented",
           503: "Service Unavailable"}


class Request:
    def __init__(self, method: str, target: str, version: str, headers: dict[str, str],
                 reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.method = method
        parts = urlsplit(target)
        self.path = unquote(parts.path)
        self.query = parse_qs(parts.query, keep_blank_values=True)
        self.version = version
        self.headers = headers          # lower-case names
        self._reader = reader
        self._writer = writer
        self._remaining = int(headers.get("content-length", "0") or 0)
        self._chunked = "chunked" in headers.get("transfer-encoding", "").lower()
        self._chunk_left = 0
        self._done = not self._chunked and self._remaining == 0
        self.hijacked = False
        self.params: dict[str, str] = {}

    # -- query helpers ------------------------------------------------------------------
    def arg(self, name: str, default: str | None = None) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else default

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.arg(name)
        if value is None:
            return default
        return value.lower() in ("1", "true", "yes", "on")

    def json_arg(self, name: str) -> Any:
        value = self.arg(name)
        if not value:
            return None
        try:
            return json.loads(value)
        except (ValueError, RecursionError):    # "[[[[...": nested past the decoder
            raise InvalidArgument(f"invalid JSON in the {name} parameter") from None

    # -- the body -----------------------------------------------------------------------
    async def read(self, limit: int = 64 << 10) -> bytes:
        """Up to ``limit`` bytes of the body; b"" at its end."""
        if self._done:
            return b""
        if not self._chunked:
            data = await self._reader.read(min(limit, self._remaining))
            if not data:
                raise InvalidArgument("request body ended early")
            self._remaining -= len(data)
            self._done = self._remaining == 0
            return data
        if self._chunk_left == 0:
            line = await self._reader.readline()
            try:
                self._chunk_left = int(line.split(b";")[0].strip() or b"0", 16)
            except ValueError:
                raise InvalidArgument("malformed chunked request body") from None
            if self._chunk_left == 0:
                while (await self._reader.readline()).strip():
                    pass   # trailers
                self._done = True
                return b""
        data = await self._reader.read(min(limit, self._chunk_left))
        if not data:
            raise InvalidArgument("request body ended early")
        self._chunk_left -= len(data)
        if self._chunk_left == 0:
            await self._reader.readline()
        return data

    async def body(self, limit: int = 16 << 20) -> bytes:
        parts: list[bytes] = []
        size = 0
        while chunk := await self.read():
            size += len(chunk)
            if size > limit:
                raise InvalidArgument(f"request body larger than {limit} bytes")
            parts.append(chunk)
        return b"".join(parts)

    async def json(self) -> Any:
        data = await self.body()
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError) as exc:    # nested past the decoder too
            raise InvalidArgument(f"invalid JSON body: {exc}") from None

    async def drain(self) -> None:
        while await self.read():
            pass

    def hijack(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        """Take the raw connection (after the handler wrote its own 101 or 200 head)."""
        self.hijacked = True
        return self._reader, self._writer


class Response:
    def __init__(self, status: int = 200, body: bytes = b"",
                 headers: dict[str, str] | None = None,
                 stream: AsyncIterator[bytes] | None = None,
                 hijack: Callable[[], Awaitable[None]] | None = None) -> None:
        self.status = status
        self.body = body
        self.headers = dict(headers or {})
        self.stream = stream
        self.hijack = hijack

    @classmethod
    def json(cls, value: Any, status: int = 200) -> Response:
        return cls(status, json.dumps(value).encode() + b"\n",
                   {"Content-Type": "application/json"})

    @classmethod
    def text(cls, text: str, status: int = 200) -> Response:
        return cls(status, text.encode(), {"Content-Type": "text/plain; charset=utf-8"})


def head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} {REASONS.get(status, 'Unknown')}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


async def serve_connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                           handle: Callable[[Request], Awaitable[Response]],
                           common: Callable[[], dict[str, str]]) -> None:
    """Serve requests on one connection until it closes or is hijacked."""
    try:
        while True:
            try:
                line = await reader.readline()
            except (ConnectionError, asyncio.LimitOverrunError, ValueError):
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                method, target, version = line.decode("latin-1").split()
            except ValueError:
                writer.write(head(400, {"Content-Length": "0", "Connection": "close"}))
                return
            headers: dict[str, str] = {}
            size = 0
            while True:
                raw = await reader.readline()
                size += len(raw)
                if size > MAX_HEADER:
                    writer.write(head(400, {"Content-Length": "0", "Connection": "close"}))
                    return
                if raw in (b"\r\n", b"\n", b""):
                    break
                name, _, value = raw.decode("latin-1").partition(":")
                headers[name.strip().lower()] = value.strip()
            length = headers.get("content-length", "0") or "0"
            if not length.isdigit():      # negative or garbage: refuse, never read "to EOF"
                writer.write(head(400, {"Content-Length": "0", "Connection": "close"}))
                return
            request = Request(method.upper(), target, version, headers, reader, writer)
            if headers.get("expect", "").lower() == "100-continue":
                writer.write(b"HTTP/1.1 100 Continue\r\n\r\n")
            response = await handle(request)
            if not await _send(request, response, writer, common()):
                return
            if request.hijacked or headers.get("connection", "").lower() == "close":
                return
            await request.drain()
    finally:
        if not writer.is_closing():
            writer.close()


async def _send(request: Request, response: Response, writer: asyncio.StreamWriter,
                common: dict[str, str]) -> bool:
    headers = {**common, **response.headers}
    if response.hijack is not None:
        writer.write(head(response.status, headers))
        await writer.drain()
        request.hijacked = True
        await response.hijack()
        return False
    if response.stream is not None:
        headers["Transfer-Encoding"] = "chunked"
        writer.write(head(response.status, headers))
        await writer.drain()
        try:
            async for chunk in response.stream:
                if chunk:
                    writer.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
                    await writer.drain()
        except (ConnectionError, asyncio.CancelledError):
            return False
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        return True
    headers["Content-Length"] = str(len(response.body))
    writer.write(head(response.status, headers))
    if request.method != "HEAD":
        writer.write(response.body)
    await writer.drain()
    return True
