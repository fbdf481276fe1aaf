"""The API client (the CLI's, vendored into the collection's module_utils) against a
hostile or broken engine: whatever comes back, a call raises ``ClientError`` (or a
subclass) with a message, never another exception (a traceback in an Ansible module,
a crash of the CLI), and a bounded amount is buffered."""

from __future__ import annotations

import os
import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from longboat.client.api import APIClient, ClientError

pytestmark = pytest.mark.unit


class FakeEngine:
    """A unix socket answering every request with ``answer`` (raw bytes), then closing."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.answer = b""
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.bind(str(path))
        self.sock.listen(8)
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                try:
                    conn.settimeout(5)
                    data = b""
                    while b"\r\n\r\n" not in data:
                        chunk = conn.recv(65536)
                        if not chunk:
                            break
                        data += chunk
                    conn.sendall(self.answer)
                except OSError:
                    pass

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def fake(tmp_path: Path) -> Iterator[FakeEngine]:
    engine = FakeEngine(tmp_path / "engine.sock")
    try:
        yield engine
    finally:
        engine.close()


def _client(fake: FakeEngine) -> APIClient:
    return APIClient(f"unix://{fake.path}", version="1.41", timeout=5)


def _ok(body: bytes, headers: str = "") -> bytes:
    return (f"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\n{headers}"
            f"Content-Length: {len(body)}\r\n\r\n").encode() + body


HOSTILE = {
    "not http": b"SSH-2.0-OpenSSH_9.2\r\n\r\n",
    "garbage": os.urandom(512) + b"\r\n\r\n",
    "empty": b"",
    "headers only, closed": b"HTTP/1.1 200 OK\r\n",
    "bad content-length": b"HTTP/1.1 200 OK\r\nContent-Length: lots\r\n\r\n{}",
    "negative content-length": b"HTTP/1.1 200 OK\r\nContent-Length: -5\r\n\r\n{}",
    "short body": b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n{\"a\": 1}",
    "bad chunk size": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n{}\r\n0\r\n\r\n",
    "truncated chunk": b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n100\r\n{}",
    "not json": _ok(b"<html>hello</html>"),
    "deeply nested json": _ok(b"[" * 100_000 + b"]" * 100_000),
    "not utf-8 json": _ok(b"\xff\xfe{}"),
    "headers too long": b"HTTP/1.1 200 OK\r\nX: " + b"a" * (2 << 20) + b"\r\n\r\n",
    "error with garbage body": b"HTTP/1.1 500 Oops\r\nContent-Length: 3\r\n\r\n\xff\x00[",
    "error with nested json": b"HTTP/1.1 500 Oops\r\nContent-Length: 200000\r\n\r\n"
                              + b"[" * 100_000 + b"]" * 100_000,
}


@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_hostile_answers_raise_client_errors(fake: FakeEngine, name: str) -> None:
    fake.answer = HOSTILE[name]
    client = _client(fake)
    try:
        with pytest.raises(ClientError) as caught:
            client.inspect_container("lbs-c")
        assert str(caught.value)
    finally:
        client.close()


@pytest.mark.parametrize("name", ["not json", "deeply nested json", "bad chunk size",
                                  "truncated chunk", "not utf-8 json"])
def test_hostile_streams_raise_client_errors(fake: FakeEngine, name: str) -> None:
    answer = HOSTILE[name]
    if name == "not utf-8 json":
        answer = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n4\r\n\xff\xfe{}"
                  b"\r\n0\r\n\r\n")
    fake.answer = answer
    client = _client(fake)
    try:
        with pytest.raises(ClientError):
            list(client.pull("lbs/none", "1"))
    finally:
        client.close()
