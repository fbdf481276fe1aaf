"""The low-level API client against a tiny fake daemon on a unix socket: version
negotiation, error bodies, JSON progress streams, transports and what it may import."""

from __future__ import annotations

import glob
import json
import os
import socketserver
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler
from pathlib import Path
from typing import Any
from urllib.parse import unquote_plus

import pytest

from longboat.client import api
from longboat.client.api import (
    APIClient,
    APIError,
    DaemonUnreachable,
    JSONStream,
    ProtocolError,
    StreamError,
)


class FakeDaemon(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, api_version: str = "1.40") -> None:
        self.api_version = api_version
        self.requests: list[tuple[str, str, dict[str, str], bytes]] = []
        self.routes: dict[tuple[str, str], tuple[int, list[bytes], str]] = {}
        super().__init__(path, Handler)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server: FakeDaemon

    def log_message(self, *args: Any) -> None:
        pass

    def address_string(self) -> str:
        return "unix"

    def _body(self) -> bytes:
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            data = b""
            while True:
                size = int(self.rfile.readline().split(b";")[0], 16)
                if size == 0:
                    self.rfile.readline()
                    return data
                data += self.rfile.read(size)
                self.rfile.readline()
        return self.rfile.read(int(self.headers.get("Content-Length") or 0))

    def _answer(self) -> None:
        body = self._body()
        path, _, _query = self.path.partition("?")
        self.server.requests.append((self.command, self.path, dict(self.headers), body))
        status, chunks, ctype = self.server.routes.get(
            (self.command, path), (404, [b'{"message":"page not found"}'], "application/json"))
        if path == "/_ping":
            status, chunks, ctype = 200, [b"OK"], "text/plain"
        self.send_response(status)
        self.send_header("Api-Version", self.server.api_version)
        self.send_header("Content-Type", ctype)
        if len(chunks) == 1:
            self.send_header("Content-Length", str(len(chunks[0])))
            self.end_headers()
            self.wfile.write(chunks[0])
            return
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        for chunk in chunks:
            self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            self.wfile.flush()
        self.wfile.write(b"0\r\n\r\n")

    do_GET = do_POST = do_DELETE = do_HEAD = _answer


@pytest.fixture
def daemon(tmp_path: Path) -> Iterator[FakeDaemon]:
    server = FakeDaemon(str(tmp_path / "fake.sock"))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


def client_for(daemon: FakeDaemon) -> APIClient:
    return APIClient(f"unix://{daemon.server_address}", timeout=10)


def test_negotiates_the_lower_version_and_uses_it_in_paths(daemon: FakeDaemon) -> None:
    daemon.routes[("GET", "/v1.40/version")] = (200, [b'{"ApiVersion": "1.40"}'],
                                                "application/json")
    client = client_for(daemon)
    assert client.version() == {"ApiVersion": "1.40"}
    assert [r[1] for r in daemon.requests] == ["/_ping", "/v1.40/version"]
    assert client.api_version == "1.40"
    assert api.negotiate("1.41", "1.50") == "1.41"
    assert api.negotiate("1.41", None) == "1.41"


def test_a_pinned_version_skips_the_ping(daemon: FakeDaemon) -> None:
    daemon.routes[("GET", "/v1.30/info")] = (200, [b"{}"], "application/json")
    client = APIClient(f"unix://{daemon.server_address}", version="1.30")
    assert client.info() == {}
    assert [r[1] for r in daemon.requests] == ["/v1.30/info"]


def test_errors_carry_status_and_the_server_message(daemon: FakeDaemon) -> None:
    daemon.routes[("GET", "/v1.40/images/nope/json")] = (
        404, [b'{"message": "No such image: nope"}'], "application/json")
    daemon.routes[("DELETE", "/v1.40/images/busy")] = (
        409, [b"conflict: plain text\n"], "text/plain")
    client = client_for(daemon)
    with pytest.raises(APIError) as caught:
        client.inspect_image("nope")
    assert (caught.value.status, caught.value.message) == (404, "No such image: nope")
    assert caught.value.not_found
    with pytest.raises(APIError) as caught:
        client.remove_image("busy")
    assert (caught.value.status, caught.value.message) == (409, "conflict: plain text")


def test_progress_stream_split_anywhere_then_an_error(daemon: FakeDaemon) -> None:
    events = (b'{"status":"Pulling from x","id":"1"}\r\n'
              b'{"status":"Downloading","id":"abc","progressDetail":{"current":5,"total":9}}'
              b'{"status":"caf\xc3\xa9"}\n'
              b'{"errorDetail":{"message":"manifest unknown"},"error":"manifest unknown"}\n')
    # chunk boundaries inside objects and inside a UTF-8 sequence
    chunks = [events[:7], events[7:60], events[60:events.index(b"\xa9")],
              events[events.index(b"\xa9"):]]
    daemon.routes[("POST", "/v1.40/images/create")] = (200, chunks, "application/json")
    client = client_for(daemon)
    stream = client.pull("x", "1", auth={"username": "u", "password": "p"})
    seen = []
    with pytest.raises(StreamError) as caught:
        for event in stream:
            seen.append(event)
    assert [e["status"] for e in seen] == ["Pulling from x", "Downloading", "café"]
    assert caught.value.message == "manifest unknown" and caught.value.status is None
    _, path, headers, _ = daemon.requests[-1]
    assert path == "/v1.40/images/create?fromImage=x&tag=1"
    auth = json.loads(api.base64.urlsafe_b64decode(headers["X-Registry-Auth"]))
    assert auth == {"username": "u", "password": "p"}


def test_load_streams_a_file_body_and_save_yields_bytes(daemon: FakeDaemon,
                                                       tmp_path: Path) -> None:
    daemon.routes[("POST", "/v1.40/images/load")] = (
        200, [b'{"stream":"Loaded image: a:1\\n"}\r\n'], "application/json")
    daemon.routes[("GET", "/v1.40/images/get")] = (200, [b"tar", b"data"],
                                                   "application/x-tar")
    archive = tmp_path / "a.tar"
    archive.write_bytes(b"x" * 200_000)
    client = client_for(daemon)
    with open(archive, "rb") as f:
        assert list(client.load(f, quiet=True)) == [{"stream": "Loaded image: a:1\n"}]
    _, path, headers, body = daemon.requests[-1]
    assert path.endswith("/images/load?quiet=1") and body == archive.read_bytes()
    assert headers["Content-Length"] == "200000"
    assert b"".join(client.save(["a:1", "b:2"])) == b"tardata"
    assert daemon.requests[-1][1] == "/v1.40/images/get?names=a%3A1&names=b%3A2"


def test_chunked_upload_of_a_pipe(daemon: FakeDaemon) -> None:
    daemon.routes[("POST", "/v1.40/images/create")] = (
        200, [b'{"status":"sha256:abc"}'], "application/json")
    read, write = os.pipe()
    os.write(write, b"rootfs tar")
    os.close(write)
    with os.fdopen(read, "rb") as pipe:
        events = list(client_for(daemon).import_image(pipe, repository="imp:1"))
    assert events == [{"status": "sha256:abc"}]
    _, path, headers, body = daemon.requests[-1]
    assert headers["Transfer-Encoding"] == "chunked" and body == b"rootfs tar"
    assert "fromSrc=-" in path and "repo=imp%3A1" in path


def test_filters_are_docker_maps(daemon: FakeDaemon) -> None:
    daemon.routes[("GET", "/v1.40/images/json")] = (200, [b"[]"], "application/json")
    client_for(daemon).images(filters={"dangling": True, "label": ["a=b"]}, name="imp")
    path = daemon.requests[-1][1]
    query = dict(p.split("=", 1) for p in path.split("?", 1)[1].split("&"))
    filters = json.loads(unquote_plus(query["filters"]))
    assert filters == {"dangling": {"true": True}, "label": {"a=b": True},
                       "reference": {"imp": True}}


def test_json_stream_parser() -> None:
    parser = JSONStream()
    assert parser.feed(b'{"a":1}{"b"') == [{"a": 1}]
    assert parser.feed(b':2}\n\n[3]') == [{"b": 2}, [3]]
    parser.close()
    bad = JSONStream()
    assert bad.feed(b'{"a":1}{oops}') == [{"a": 1}]
    with pytest.raises(ProtocolError, match="malformed JSON"):
        bad.close()


def test_unreachable_daemon_and_bad_hosts(tmp_path: Path) -> None:
    client = APIClient(f"unix://{tmp_path}/absent.sock")
    with pytest.raises(DaemonUnreachable, match="Cannot connect to the Longboat daemon at "
                                                f"unix://{tmp_path}/absent.sock"):
        client.ping()
    with pytest.raises(api.ClientError, match="unsupported scheme"):
        APIClient("ftp://x")
    with pytest.raises(api.ClientError, match="expected unix://PATH"):
        APIClient("/var/run/x.sock")


def test_host_from_env_prefers_longboat_host() -> None:
    assert api.host_from_env({}) == api.DEFAULT_HOST
    assert api.host_from_env({"DOCKER_HOST": "tcp://a:1"}) == "tcp://a:1"
    assert api.host_from_env({"DOCKER_HOST": "tcp://a:1",
                              "LONGBOAT_HOST": "unix:///x"}) == "unix:///x"


def test_tls_from_the_docker_environment(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text("not a certificate")
    with pytest.raises(api.ClientError, match="TLS configuration"):
        APIClient.from_env({"DOCKER_HOST": "tcp://127.0.0.1:2376", "DOCKER_TLS_VERIFY": "1",
                            "DOCKER_CERT_PATH": str(tmp_path)})
    client = APIClient.from_env({"DOCKER_HOST": "tcp://127.0.0.1"})
    assert client._port == 2375 and client._ssl is None


def test_the_client_is_standalone_standard_library() -> None:
    """Vendored by the Ansible collection: no longboat, no paramiko, no third party."""
    source = Path(api.__file__).read_text()
    code = ("import sys, types\n"
            "mod = types.ModuleType('api'); mod.__file__ = 'api.py'\n"
            "sys.modules['api'] = mod\n"
            f"exec(compile({source!r}, 'api.py', 'exec'), mod.__dict__)\n"
            "bad = [m for m in sys.modules if m.split('.')[0] in "
            "('longboat', 'paramiko', 'cryptography')]\n"
            "assert not bad, bad\n"
            "mod.APIClient('unix:///x'); print('ok')\n")
    # this Python, and the oldest the collection supports when the host has it
    pythons = [sys.executable, *sorted(glob.glob("/root/.pyenv/versions/3.8*/bin/python3.8"))[:1]]
    for python in pythons:
        done = subprocess.run([python, "-I", "-S", "-c", code], capture_output=True,
                              text=True, timeout=30, check=False)
        assert done.returncode == 0 and done.stdout.strip() == "ok", (python, done.stderr)
