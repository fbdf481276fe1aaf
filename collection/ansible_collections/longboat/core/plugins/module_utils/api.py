"""A low-level client of the Docker Engine API as longboatd serves it: one method per
endpoint, docker-py's split (this file knows HTTP and the API's shapes; what to show a
user is the caller's business).

Standard library only, and importable on any Python 3.8+ without the rest of Longboat:
the Ansible collection vendors this file as it is. paramiko is imported only when an
``ssh://`` host is used.

Transports: ``unix:///path``, ``tcp://host:port`` (TLS with a CA, and a client
certificate, as docker's ``DOCKER_TLS_VERIFY``/``DOCKER_CERT_PATH``), and
``ssh://user@host[:port]``: like docker, the client runs ``longboat system dial-stdio``
on the remote host and speaks HTTP over that command's stdin and stdout.

Versions: the first request asks ``GET /_ping`` for the server's ``Api-Version`` and uses
the lower of that and :data:`API_VERSION` in ``/v1.NN/`` paths, unless a version is
pinned.

Errors: a status >= 400 raises :class:`APIError` with the status and the server's
``message``; an error reported inside a JSON progress stream (pull, push, load, import)
raises :class:`StreamError` (``status`` None) after the events before it were yielded;
a daemon that cannot be reached raises :class:`DaemonUnreachable`.
"""

from __future__ import annotations

import base64
import codecs
import json
import os
import re
import socket
import stat
import sys
from collections.abc import Iterator
from urllib.parse import quote, urlencode

TYPE_CHECKING = False   # typing costs milliseconds at every command's start
if TYPE_CHECKING:
    import ssl
    from collections.abc import Iterable, Mapping
    from typing import IO, Any

    Filters = Mapping[str, str | bool | Iterable[str]] | None

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
DEFAULT_HOST = "unix:///run/longboat/longboat.sock"
DEFAULT_REMOTE_COMMAND = ("longboat", "system", "dial-stdio")
DEFAULT_TIMEOUT = 60.0
CHUNK = 64 << 10



# -- errors ------------------------------------------------------------------------------
class ClientError(Exception):
    """Base of every error this client raises on purpose."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class DaemonUnreachable(ClientError):
    """Nothing answers at the host (no socket, refused, TLS or SSH failed)."""


class APIError(ClientError):
    """The daemon answered with an error: ``status`` (None for an error reported inside
    a stream after a 200) and its ``message``."""

    def __init__(self, status: int | None, message: str) -> None:
        super().__init__(message)
        self.status = status

    @property
    def not_found(self) -> bool:
        return self.status == 404


class StreamError(APIError):
    """An ``{"error": ..., "errorDetail": {...}}`` object in a JSON progress stream."""

    def __init__(self, message: str, event: dict[str, Any] | None = None) -> None:
        super().__init__(None, message)
        self.event = event or {}


class ProtocolError(ClientError):
    """The answer is not HTTP or JSON as the API promises."""


# -- JSON streams ------------------------------------------------------------------------
#: the longest single value a JSON stream may carry (docker's are lines of a few hundred
#: bytes; a build's aux or an event is a few KiB): a longer one is a ProtocolError
MAX_STREAM_VALUE = 32 << 20
_STRUCTURE = re.compile(r'["{}\[\]]')        # what matters outside strings
_IN_STRING = re.compile(r'["\\]')            # what matters inside one
_SCALAR_END = re.compile(r'[\s"{}\[\],:]')   # where a bare number/true/null stops
_NON_SPACE = re.compile(r"\S")


class JSONStream:
    """Incremental parser of concatenated JSON values (docker sends one per line, but
    neither line ends nor chunk boundaries are to be trusted).

    Linear: every character is scanned once (strings and brackets tracked across
    chunks), a value's text is kept as its chunks and decoded once, when its end is
    seen; a value longer than :data:`MAX_STREAM_VALUE` raises :class:`ProtocolError`."""

    def __init__(self, limit: int = MAX_STREAM_VALUE) -> None:
        self._decoder = json.JSONDecoder()
        self._utf8 = codecs.getincrementaldecoder("utf-8")("strict")
        self._limit = limit
        self._parts: list[str] = []    # the current value's text from earlier chunks
        self._size = 0
        self._mode = ""                # "", "container", "string" or "scalar"
        self._depth = 0
        self._in_string = False
        self._escape = False
        self._error = ""

    def feed(self, data: bytes) -> list[Any]:
        if self._error:
            raise ProtocolError(self._error)
        try:
            text = self._utf8.decode(data)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"JSON stream is not UTF-8: {exc}") from None
        values: list[Any] = []
        i, n, start = 0, len(text), 0
        while i < n:
            if not self._mode:
                found = _NON_SPACE.search(text, i)
                if found is None:
                    break
                i = start = found.start()
                c = text[i]
                if c in "{[":
                    self._mode, self._depth, i = "container", 1, i + 1
                elif c == '"':
                    self._mode, self._in_string, i = "string", True, i + 1
                else:
                    self._mode = "scalar"
                continue
            end = -1
            if self._in_string:
                if self._escape:
                    self._escape, i = False, i + 1
                    continue
                found = _IN_STRING.search(text, i)
                if found is None:
                    break
                i = found.end()
                if found.group() == "\\":
                    self._escape = True
                    continue
                self._in_string = False
                if self._mode == "string":
                    end = i
            elif self._mode == "container":
                found = _STRUCTURE.search(text, i)
                if found is None:
                    break
                i, c = found.end(), found.group()
                if c == '"':
                    self._in_string = True
                elif c in "{[":
                    self._depth += 1
                else:
                    self._depth -= 1
                    if self._depth == 0:
                        end = i
            else:
                found = _SCALAR_END.search(text, i)
                if found is None:
                    break
                i = end = found.start()
            if end >= 0:
                if self._size + end - start > self._limit:
                    self._too_long()
                self._parts.append(text[start:end])
                if not self._value(values):
                    return values
        if self._mode:
            self._parts.append(text[start:])
            self._size += n - start
            if self._size > self._limit:
                self._too_long()
        return values

    def _too_long(self) -> None:
        self._error = (f"a value in the JSON stream is longer than {self._limit} "
                       "characters")
        raise ProtocolError(self._error)

    def _value(self, values: list[Any]) -> bool:
        """Decode the value just ended; False (and the stream is broken) when bad."""
        text = "".join(self._parts)
        self._parts, self._size, self._mode, self._depth = [], 0, "", 0
        try:
            values.append(self._decoder.decode(text))
        except RecursionError:
            self._error = "JSON stream nested too deeply"
        except ValueError as exc:
            self._error = f"malformed JSON in stream: {exc}: {text[:80]!r}"
        return not self._error

    def close(self) -> list[Any]:
        """The end of the stream: a bare value still open is decoded (its end is the
        stream's); anything else left, or any error seen, raises ProtocolError."""
        if self._error:
            raise ProtocolError(self._error)
        try:
            self._utf8.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ProtocolError(f"JSON stream is not UTF-8: {exc}") from None
        values: list[Any] = []
        if self._mode == "scalar":
            self._value(values)
        elif self._mode:
            rest = "".join(self._parts)
            self._parts, self._mode = [], ""
            self._error = f"malformed JSON in stream (cut short): {rest[:80]!r}"
        if self._error:
            raise ProtocolError(self._error)
        return values


def error_message(status: int, body: bytes) -> str:
    """The message of an error response: ``{"message": ...}``, else the text itself."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except (ValueError, RecursionError):
        return text or REASONS.get(status, f"HTTP {status}")
    if isinstance(data, dict) and isinstance(data.get("message"), str):
        return str(data["message"])
    return text


def version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.strip().partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        raise ClientError(f"malformed API version {text!r}") from None


def negotiate(ours: str, theirs: str | None) -> str:
    """The version to speak: the lower of ours and the server's (ours when it says
    nothing)."""
    if not theirs:
        return ours
    return theirs if version_tuple(theirs) < version_tuple(ours) else ours


def encode_auth(auth: Mapping[str, Any]) -> str:
    """``X-Registry-Auth``: base64url of the JSON credentials, as docker sends it."""
    return base64.urlsafe_b64encode(json.dumps(dict(auth)).encode()).decode()


def encode_filters(filters: Filters) -> str | None:
    """Docker's filter map: ``{"dangling": {"true": true}, "label": {"a=b": true}}``."""
    if not filters:
        return None
    out: dict[str, dict[str, bool]] = {}
    for key, value in filters.items():
        values = [value] if isinstance(value, (str, bool)) else list(value)
        out[key] = {(str(v).lower() if isinstance(v, bool) else str(v)): True
                    for v in values}
    return json.dumps(out, separators=(",", ":"))


# -- transports --------------------------------------------------------------------------
class TLSConfig:
    """Docker's client TLS: verify the daemon against ``ca`` (or the system store)
    unless ``verify`` is False; present ``cert``/``key`` when given."""

    def __init__(self, ca: str | None = None, cert: str | None = None,
                 key: str | None = None, verify: bool = True) -> None:
        self.ca, self.cert, self.key, self.verify = ca, cert, key, verify

    @classmethod
    def from_cert_path(cls, path: str, verify: bool) -> TLSConfig:
        def present(name: str) -> str | None:
            full = os.path.join(path, name)
            return full if os.path.exists(full) else None

        return cls(ca=present("ca.pem"), cert=present("cert.pem"), key=present("key.pem"),
                   verify=verify)

    def context(self) -> ssl.SSLContext:
        import ssl  # only TLS users pay for it

        try:
            context = ssl.create_default_context(cafile=self.ca if self.verify else None)
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            if self.cert:
                context.load_cert_chain(self.cert, self.key)
        except (OSError, ssl.SSLError) as exc:
            raise ClientError(f"TLS configuration: {exc}") from None
        return context


REASONS = {400: "Bad Request", 401: "Unauthorized", 403: "Forbidden", 404: "Not Found",
           405: "Method Not Allowed", 409: "Conflict", 500: "Internal Server Error",
           501: "Not Implemented", 503: "Service Unavailable"}


def _is_tls_error(exc: BaseException) -> bool:
    ssl = sys.modules.get("ssl")     # imported only when TLS is in use
    return ssl is not None and isinstance(exc, ssl.SSLError)


def _is_tls_socket(sock: object) -> bool:
    ssl = sys.modules.get("ssl")
    return ssl is not None and isinstance(sock, ssl.SSLSocket)


class HTTPError(Exception):
    """The daemon's answer broke HTTP/1.1."""


class _Response:
    """One HTTP/1.1 answer read from a socket-like object (a socket, a TLS socket, an
    ssh channel). Our own, small reader: http.client pulls in the email package, about
    13 ms of every command's start-up."""

    def __init__(self, sock: Any, method: str) -> None:
        self._sock = sock
        self._buffer = b""
        head = self._until(b"\r\n\r\n", 1 << 20)
        lines = head.decode("latin-1").split("\r\n")
        parts = lines[0].split(" ", 2)
        if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
            raise HTTPError(f"not an HTTP answer: {lines[0]!r}")
        self.status = int(parts[1])
        self.reason = parts[2] if len(parts) > 2 else ""
        self.headers: dict[str, str] = {}
        for line in lines[1:]:
            name, _, value = line.partition(":")
            self.headers[name.strip().lower()] = value.strip()
        self._chunked = "chunked" in self.headers.get("transfer-encoding", "").lower()
        length = self.headers.get("content-length")
        if method == "HEAD" or self.status in (204, 304) or 100 <= self.status < 200:
            self._left: int | None = 0
        elif self._chunked:
            self._left = None
        elif length is not None:
            if not length.isdigit():
                raise HTTPError(f"a malformed Content-Length in the answer: {length[:40]!r}")
            self._left = int(length)
        else:
            self._left = -1          # until the daemon closes the connection
        self._chunk_left = 0
        self._done = self._left == 0

    def getheader(self, name: str, default: str | None = None) -> str | None:
        return self.headers.get(name.lower(), default)

    def _fill(self) -> bool:
        data = self._sock.recv(CHUNK)
        if not data:
            return False
        self._buffer += data
        return True

    def _until(self, marker: bytes, limit: int) -> bytes:
        while marker not in self._buffer:
            if len(self._buffer) > limit:
                raise HTTPError("an answer's headers are too long")
            if not self._fill():
                raise HTTPError("the daemon closed the connection")
        head, _, self._buffer = self._buffer.partition(marker)
        return head

    def _take(self, n: int) -> bytes:
        if not self._buffer and not self._fill():
            return b""
        data, self._buffer = self._buffer[:n], self._buffer[n:]
        return data

    def read1(self, n: int = CHUNK) -> bytes:
        """Some of the body (at most ``n`` bytes); b"" at its end."""
        if self._done:
            return b""
        if self._chunked:
            if self._chunk_left == 0:
                line = self._until(b"\r\n", 1024)
                try:
                    self._chunk_left = int(line.split(b";")[0].strip() or b"0", 16)
                except ValueError:
                    raise HTTPError("a malformed chunk in the answer") from None
                if self._chunk_left == 0:
                    while self._until(b"\r\n", 1 << 16):
                        pass            # trailers
                    self._done = True
                    return b""
            data = self._take(min(n, self._chunk_left))
            if not data:
                raise HTTPError("the answer ended in the middle of a chunk")
            self._chunk_left -= len(data)
            if self._chunk_left == 0:
                self._until(b"\r\n", 2)
            return data
        if self._left == -1:
            data = self._take(n)
            self._done = not data
            return data
        assert self._left is not None
        data = self._take(min(n, self._left))
        if not data:
            raise HTTPError("the answer ended before its announced length")
        self._left -= len(data)
        self._done = self._left == 0
        return data

    def read(self, n: int | None = None) -> bytes:
        if n is not None:
            return self.read1(n)
        parts = []
        while data := self.read1(CHUNK):
            parts.append(data)
        return b"".join(parts)

    def close(self) -> None:
        try:
            self._sock.close()
        except OSError:
            pass


class _Connection:
    """One HTTP/1.1 request and its answer, over whatever socket-like object ``dial``
    returns."""

    def __init__(self, host: str, dial: Any, timeout: float | None) -> None:
        self.host = host
        self._dial = dial
        self.timeout = timeout
        self.sock: Any = None
        self._head: list[str] = []
        self._method = "GET"

    def _connect(self) -> None:
        if self.sock is None:
            self.sock = self._dial()
            if self.timeout is not None and hasattr(self.sock, "settimeout"):
                self.sock.settimeout(self.timeout)

    def putrequest(self, method: str, url: str, skip_accept_encoding: bool = True) -> None:
        self._method = method
        self._head = [f"{method} {url} HTTP/1.1", f"Host: {self.host}"]

    def putheader(self, name: str, value: str) -> None:
        self._head.append(f"{name}: {value}")

    def endheaders(self) -> None:
        self._connect()
        self.sock.sendall(("\r\n".join(self._head) + "\r\n\r\n").encode("latin-1"))

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def request(self, method: str, url: str, body: bytes | None = None,
                headers: dict[str, str] | None = None) -> None:
        self.putrequest(method, url)
        for name, value in (headers or {}).items():
            self.putheader(name, value)
        if body is None and method in ("POST", "PUT"):
            self.putheader("Content-Length", "0")
        self.endheaders()
        if body:
            self.send(body)

    def getresponse(self) -> _Response:
        return _Response(self.sock, self._method)

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            except OSError:
                pass
            self.sock = None


class _SSHTunnel:
    """One SSH session to the host; each HTTP connection is a new channel running the
    dial-stdio command there (docker's ``ssh://`` way)."""

    def __init__(self, target: str, command: str, timeout: float | None) -> None:
        import paramiko  # type: ignore[import-untyped]

        user, _, hostport = target.rpartition("@")
        host, port = _split_port(hostport, 22)
        config = paramiko.SSHConfig()
        config_file = os.path.expanduser("~/.ssh/config")
        if os.path.exists(config_file):
            config = paramiko.SSHConfig.from_path(config_file)
        options = config.lookup(host)
        self.client = paramiko.SSHClient()
        self.client.load_system_host_keys()
        known = os.path.expanduser("~/.ssh/known_hosts")
        if os.path.exists(known):
            self.client.load_host_keys(known)
        self.client.set_missing_host_key_policy(paramiko.RejectPolicy())
        try:
            self.client.connect(
                options.get("hostname", host),
                port=int(options.get("port", port)) if port == 22 else port,
                username=user or options.get("user") or None,
                key_filename=options.get("identityfile") or None,
                timeout=timeout)
        except (paramiko.SSHException, OSError) as exc:
            raise DaemonUnreachable(f"ssh://{target}: {exc}") from None
        self.command = command
        self.timeout = timeout

    def dial(self) -> Any:
        transport = self.client.get_transport()
        if transport is None or not transport.is_active():
            raise DaemonUnreachable("the SSH connection is closed")
        channel = transport.open_session(timeout=self.timeout)
        channel.exec_command(self.command)
        return channel

    def close(self) -> None:
        self.client.close()


def _split_port(hostport: str, default: int) -> tuple[str, int]:
    if hostport.startswith("["):           # [::1]:2375
        host, _, rest = hostport[1:].partition("]")
        port = rest[1:] if rest.startswith(":") else ""
    else:
        host, sep, port = hostport.rpartition(":")
        if not sep:
            host, port = hostport, ""
    try:
        return host, int(port) if port else default
    except ValueError:
        raise ClientError(f"invalid port in {hostport!r}") from None


def host_from_env(environ: Mapping[str, str] | None = None) -> str:
    """``LONGBOAT_HOST``, else ``DOCKER_HOST``, else the default socket."""
    env = os.environ if environ is None else environ
    return env.get("LONGBOAT_HOST") or env.get("DOCKER_HOST") or DEFAULT_HOST


# -- the client --------------------------------------------------------------------------
class APIClient:
    """The Engine API at ``base_url``; ``version`` "auto" negotiates on first use."""

    def __init__(self, base_url: str = DEFAULT_HOST, *, version: str = "auto",
                 tls: TLSConfig | None = None, timeout: float | None = DEFAULT_TIMEOUT,
                 user_agent: str = "longboat-client",
                 ssh_command: str = " ".join(DEFAULT_REMOTE_COMMAND)) -> None:
        self.base_url = base_url
        self.timeout = timeout
        self.user_agent = user_agent
        self._api_version: str | None = None if version == "auto" else version
        if self._api_version is not None:
            version_tuple(self._api_version)
        self._ssh: _SSHTunnel | None = None
        self._ssl: ssl.SSLContext | None = None
        scheme, sep, rest = base_url.partition("://")
        if not sep:
            raise ClientError(f"invalid host {base_url!r}: expected unix://PATH, "
                              "tcp://HOST:PORT or ssh://[USER@]HOST[:PORT]")
        self.scheme = scheme
        if scheme == "unix":
            self._path = rest
            if not rest:
                raise ClientError(f"invalid host {base_url!r}: no socket path")
            self._http_host = "localhost"
        elif scheme in ("tcp", "http", "https"):
            hostport = rest.split("/", 1)[0]
            if scheme == "https" and tls is None:
                tls = TLSConfig()
            self._host, self._port = _split_port(hostport, 2376 if tls else 2375)
            if not self._host:
                raise ClientError(f"invalid host {base_url!r}: no address")
            self._http_host = hostport
            self._ssl = tls.context() if tls is not None else None
        elif scheme == "ssh":
            self._target = rest.split("/", 1)[0]
            self._ssh_command = ssh_command
            self._http_host = "localhost"
        else:
            raise ClientError(f"invalid host {base_url!r}: unsupported scheme {scheme!r}")

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **kwargs: Any
                 ) -> APIClient:
        """As docker does: the host from ``LONGBOAT_HOST``/``DOCKER_HOST``; TLS when
        ``DOCKER_TLS_VERIFY`` is set, with ca.pem/cert.pem/key.pem from
        ``DOCKER_CERT_PATH`` (default ``~/.longboat``)."""
        env = os.environ if environ is None else environ
        if env.get("DOCKER_TLS_VERIFY") and "tls" not in kwargs:
            path = env.get("DOCKER_CERT_PATH") or os.path.expanduser("~/.longboat")
            kwargs["tls"] = TLSConfig.from_cert_path(path, verify=True)
        if env.get("DOCKER_API_VERSION") and "version" not in kwargs:
            kwargs["version"] = env["DOCKER_API_VERSION"]
        return cls(host_from_env(env), **kwargs)

    # -- plumbing ------------------------------------------------------------------------
    def _dial(self) -> Any:
        try:
            if self.scheme == "unix":
                sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
                sock.settimeout(self.timeout)
                try:
                    sock.connect(self._path)
                except BaseException:
                    sock.close()
                    raise
                return sock
            if self.scheme == "ssh":
                if self._ssh is None:
                    self._ssh = _SSHTunnel(self._target, self._ssh_command, self.timeout)
                return self._ssh.dial()
            raw = socket.create_connection((self._host, self._port), timeout=self.timeout)
            if self._ssl is None:
                return raw
            try:
                return self._ssl.wrap_socket(raw, server_hostname=self._host)
            except BaseException:
                raw.close()
                raise
        except DaemonUnreachable:
            raise
        except OSError as exc:
            if _is_tls_error(exc):
                raise DaemonUnreachable(f"TLS handshake with {self.base_url} failed: "
                                        f"{exc}") from None
            raise DaemonUnreachable(self._unreachable(exc)) from None

    def _unreachable(self, exc: Exception) -> str:
        if self.scheme == "unix":
            try:
                if not stat.S_ISSOCK(os.stat(self._path).st_mode):
                    return f"{self._path} is not a socket"
            except FileNotFoundError:
                pass
            except OSError as err:
                return f"Cannot connect to the Longboat daemon at {self.base_url}: {err}"
            if isinstance(exc, PermissionError):
                return (f"permission denied while trying to connect to the Longboat daemon "
                        f"socket at {self.base_url}")
        return (f"Cannot connect to the Longboat daemon at {self.base_url}. "
                "Is longboatd running?")

    def close(self) -> None:
        if self._ssh is not None:
            self._ssh.close()
            self._ssh = None

    def __enter__(self) -> APIClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def api_version(self) -> str:
        if self._api_version is None:
            response = self._send("GET", "/_ping", versioned=False)
            try:
                response.read()
            finally:
                response.close()
            self._api_version = negotiate(API_VERSION, response.getheader("Api-Version"))
        return self._api_version

    def _send(self, method: str, path: str, *, params: Any = None,
              body: bytes | IO[bytes] | None = None,
              headers: dict[str, str] | None = None, versioned: bool = True,
              timeout: float | None = -1.0) -> _Response:
        """Send a request; the response (status checked) is the caller's to read."""
        url = (f"/v{self.api_version}" if versioned else "") + path
        if params:
            query = urlencode([(k, v) for k, v in
                               (params.items() if isinstance(params, dict) else params)
                               if v is not None], doseq=True)
            if query:
                url += "?" + query
        all_headers = {"User-Agent": self.user_agent}
        all_headers.update(headers or {})
        if isinstance(body, bytes):
            all_headers.setdefault("Content-Length", str(len(body)))
        elif body is not None:
            size = _file_size(body)
            if size is not None:
                all_headers.setdefault("Content-Length", str(size))
            else:
                all_headers.setdefault("Transfer-Encoding", "chunked")
        connection = _Connection(self._http_host, self._dial,
                                 self.timeout if timeout == -1.0 else timeout)
        try:
            if body is None or isinstance(body, bytes):
                connection.request(method, url, body=body, headers=all_headers)
            else:
                connection.putrequest(method, url, skip_accept_encoding=True)
                for name, value in all_headers.items():
                    connection.putheader(name, value)
                connection.endheaders()
                chunked = "Transfer-Encoding" in all_headers
                while True:
                    data = body.read(CHUNK)
                    if not data:
                        break
                    connection.send(b"%x\r\n%s\r\n" % (len(data), data) if chunked else data)
                if chunked:
                    connection.send(b"0\r\n\r\n")
            response = connection.getresponse()
        except DaemonUnreachable:
            connection.close()
            raise
        except (OSError, HTTPError) as exc:
            connection.close()
            if isinstance(exc, (BrokenPipeError, ConnectionResetError)):
                # the daemon may have answered (an error) before reading the whole body
                raise ClientError(f"{method} {path}: the connection broke: {exc}") from None
            if isinstance(exc, socket.timeout):
                raise ClientError(f"{method} {path}: timed out") from None
            raise ClientError(f"{method} {path}: {exc}") from None
        if response.status >= 400:
            try:
                data = response.read()
            except (OSError, HTTPError):
                data = b""
            finally:
                connection.close()
            raise APIError(response.status, error_message(response.status, data))
        return response

    def _json(self, method: str, path: str, **kwargs: Any) -> Any:
        response = self._send(method, path, **kwargs)
        try:
            data = response.read()
        except (OSError, HTTPError) as exc:
            raise ClientError(f"{method} {path}: reading the answer: {exc}") from None
        finally:
            response.close()
        if not data.strip():
            return None
        try:
            return json.loads(data)
        except (ValueError, RecursionError):
            raise ProtocolError(f"{method} {path}: the answer is not JSON: "
                                f"{data[:80]!r}") from None

    @staticmethod
    def _chunks(response: _Response) -> Iterator[bytes]:
        try:
            while True:
                try:
                    data = response.read1(CHUNK)
                except (OSError, HTTPError) as exc:
                    raise ClientError(f"the stream broke: {exc}") from None
                if not data:
                    return
                yield data
        finally:
            response.close()

    @classmethod
    def _events(cls, response: _Response) -> Iterator[dict[str, Any]]:
        parser = JSONStream()
        for data in cls._chunks(response):
            for event in parser.feed(data):
                if not isinstance(event, dict):
                    raise ProtocolError(f"unexpected value in a progress stream: {event!r}")
                if event.get("error") or event.get("errorDetail"):
                    detail = event.get("errorDetail") or {}
                    message = event.get("error") or (
                        detail.get("message") if isinstance(detail, dict) else None)
                    raise StreamError(str(message or "unknown error"), event)
                yield event
        parser.close()

    # -- system --------------------------------------------------------------------------
    def ping(self) -> str:
        """``GET /_ping``: "OK" (and negotiates the version if it is not yet)."""
        response = self._send("GET", "/_ping", versioned=False)
        try:
            body = response.read().decode("utf-8", "replace")
        finally:
            response.close()
        if self._api_version is None:
            self._api_version = negotiate(API_VERSION, response.getheader("Api-Version"))
        return body

    def version(self) -> dict[str, Any]:
        return dict(self._json("GET", "/version"))

    def info(self) -> dict[str, Any]:
        return dict(self._json("GET", "/info"))

    def df(self) -> dict[str, Any]:
        return dict(self._json("GET", "/system/df"))

    # -- images --------------------------------------------------------------------------
    def images(self, *, all: bool = False, filters: Filters = None,
               name: str | None = None) -> list[dict[str, Any]]:
        wanted: dict[str, Any] = dict(filters or {})
        if name:
            wanted["reference"] = [name]
        params = {"all": "1" if all else None, "filters": encode_filters(wanted)}
        return list(self._json("GET", "/images/json", params=params) or [])

    def inspect_image(self, name: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/images/{_segment(name)}/json"))

    def image_history(self, name: str) -> list[dict[str, Any]]:
        return list(self._json("GET", f"/images/{_segment(name)}/history") or [])

    def tag(self, image: str, repository: str, tag: str | None = None) -> None:
        self._json("POST", f"/images/{_segment(image)}/tag",
                   params={"repo": repository, "tag": tag})

    def remove_image(self, name: str, *, force: bool = False, noprune: bool = False
                     ) -> list[dict[str, str]]:
        params = {"force": "1" if force else None, "noprune": "1" if noprune else None}
        return list(self._json("DELETE", f"/images/{_segment(name)}", params=params) or [])

    def prune_images(self, *, filters: Filters = None) -> dict[str, Any]:
        return dict(self._json("POST", "/images/prune",
                               params={"filters": encode_filters(filters)}) or {})

    def pull(self, repository: str, tag: str | None = None, *,
             auth: Mapping[str, Any] | None = None, platform: str | None = None
             ) -> Iterator[dict[str, Any]]:
        """Start a pull; its progress events (the request is made before this returns,
        so a refused pull raises here)."""
        headers = {"X-Registry-Auth": encode_auth(auth or {})}
        response = self._send("POST", "/images/create", headers=headers, timeout=None,
                              params={"fromImage": repository, "tag": tag,
                                      "platform": platform})
        return self._events(response)

    def bootstrap_image(self, name: str) -> Iterator[dict[str, Any]]:
        """Build a base image from what the engine's host has (busybox[:TAG],
        debian[:SUITE]): a Longboat endpoint; its progress events."""
        response = self._send("POST", "/images/bootstrap", params={"name": name},
                              timeout=None)
        return self._events(response)

    def push(self, repository: str, tag: str | None = None, *,
             auth: Mapping[str, Any] | None = None) -> Iterator[dict[str, Any]]:
        headers = {"X-Registry-Auth": encode_auth(auth or {})}
        response = self._send("POST", f"/images/{_segment(repository)}/push",
                              params={"tag": tag}, headers=headers, timeout=None)
        return self._events(response)

    def save(self, names: Iterable[str]) -> Iterator[bytes]:
        """The images as a docker-archive tar, in chunks (a missing image raises here)."""
        response = self._send("GET", "/images/get", params=[("names", n) for n in names],
                              timeout=None)
        return self._chunks(response)

    def load(self, data: bytes | IO[bytes], *, quiet: bool = False
             ) -> Iterator[dict[str, Any]]:
        response = self._send("POST", "/images/load", body=data, timeout=None,
                              params={"quiet": "1" if quiet else "0"},
                              headers={"Content-Type": "application/x-tar"})
        return self._events(response)

    def import_image(self, data: bytes | IO[bytes] | None = None, *,
                     src: str | None = None, repository: str | None = None,
                     tag: str | None = None, message: str | None = None,
                     changes: Iterable[str] = (), platform: str | None = None
                     ) -> Iterator[dict[str, Any]]:
        """Import a root filesystem tar sent as ``data``, or fetched by the daemon from
        ``src`` (a URL)."""
        if (data is None) == (src is None):
            raise ClientError("import needs either the tar's data or a source URL")
        params: list[tuple[str, str | None]] = [
            ("fromSrc", "-" if data is not None else src), ("repo", repository),
            ("tag", tag), ("message", message), ("platform", platform)]
        params += [("changes", c) for c in changes]
        response = self._send("POST", "/images/create", params=params, body=data,
                              timeout=None,
                              headers={"Content-Type": "application/x-tar"} if data is not None
                              else None)
        return self._events(response)

    def login(self, username: str, password: str, registry: str | None = None
              ) -> dict[str, Any]:
        """``POST /auth``: check credentials with a registry (the daemon keeps nothing)."""
        body = {"username": username, "password": password,
                "serveraddress": registry or "https://index.docker.io/v1/"}
        return dict(self._json("POST", "/auth", body=json.dumps(body).encode(),
                               headers={"Content-Type": "application/json"}) or {})


    # -- containers ----------------------------------------------------------------------
    def create_container(self, config: Mapping[str, Any], name: str | None = None,
                         platform: str | None = None) -> dict[str, Any]:
        """``POST /containers/create``: ``config`` is the container's Config with its
        ``HostConfig`` (and ``NetworkingConfig``) inside; returns ``{"Id", "Warnings"}``."""
        return dict(self._json("POST", "/containers/create",
                               params={"name": name, "platform": platform},
                               body=json.dumps(dict(config)).encode(),
                               headers={"Content-Type": "application/json"}))

    def containers(self, *, all: bool = False, limit: int | None = None, size: bool = False,
                   filters: Filters = None) -> list[dict[str, Any]]:
        params = {"all": "1" if all else None, "limit": str(limit) if limit else None,
                  "size": "1" if size else None, "filters": encode_filters(filters)}
        return list(self._json("GET", "/containers/json", params=params) or [])

    def inspect_container(self, ref: str, *, size: bool = False) -> dict[str, Any]:
        return dict(self._json("GET", f"/containers/{_segment(ref)}/json",
                               params={"size": "1" if size else None}))

    def _status(self, method: str, path: str, params: Any = None) -> int:
        """A request whose answer is only a status (204, or 304 "nothing to do")."""
        response = self._send(method, path, params=params, timeout=None)
        try:
            response.read()
        finally:
            response.close()
        return response.status

    def start(self, ref: str) -> bool:
        """Start; False when it was already running (304)."""
        return self._status("POST", f"/containers/{_segment(ref)}/start") != 304

    def stop(self, ref: str, timeout: int | None = None) -> bool:
        """Stop (signal, grace period, SIGKILL); False when it was not running (304)."""
        return self._status("POST", f"/containers/{_segment(ref)}/stop",
                            {"t": None if timeout is None else str(timeout)}) != 304

    def restart(self, ref: str, timeout: int | None = None) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/restart",
                     {"t": None if timeout is None else str(timeout)})

    def kill(self, ref: str, signal: str | int | None = None) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/kill",
                     {"signal": None if signal is None else str(signal)})

    def pause(self, ref: str) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/pause")

    def unpause(self, ref: str) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/unpause")

    def rename(self, ref: str, name: str) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/rename", {"name": name})

    def resize(self, ref: str, height: int, width: int) -> None:
        self._status("POST", f"/containers/{_segment(ref)}/resize",
                      {"h": str(height), "w": str(width)})

    def remove_container(self, ref: str, *, force: bool = False, volumes: bool = False,
                         link: bool = False) -> None:
        self._status("DELETE", f"/containers/{_segment(ref)}",
                     {"force": "1" if force else None, "v": "1" if volumes else None,
                      "link": "1" if link else None})

    def wait(self, ref: str, condition: str | None = None) -> dict[str, Any]:
        """Block until the condition (not-running, next-exit, removed) is met:
        ``{"StatusCode": N, "Error": null | {"Message": ...}}``."""
        return self.wait_begin(ref, condition).result()

    def wait_begin(self, ref: str, condition: str | None = None) -> Waiter:
        """Register a wait now (its answer's headers have arrived when this returns) and
        collect the result later: what ``run`` does before it starts the container."""
        response = self._send("POST", f"/containers/{_segment(ref)}/wait",
                              params={"condition": condition}, timeout=None)
        return Waiter(response)

    def logs(self, ref: str, *, stdout: bool = True, stderr: bool = True,
             follow: bool = False, timestamps: bool = False, details: bool = False,
             since: str | None = None, until: str | None = None, tail: str | None = None
             ) -> Iterator[bytes]:
        """The log as the daemon sends it: framed (see :class:`FrameReader`) unless the
        container has a TTY."""
        params = {"stdout": "1" if stdout else None, "stderr": "1" if stderr else None,
                  "follow": "1" if follow else None,
                  "timestamps": "1" if timestamps else None,
                  "details": "1" if details else None, "since": since, "until": until,
                  "tail": tail}
        response = self._send("GET", f"/containers/{_segment(ref)}/logs", params=params,
                              timeout=None)
        return self._chunks(response)

    def attach(self, ref: str, *, stdin: bool = False, stdout: bool = True,
               stderr: bool = True, logs: bool = False, detach_keys: str | None = None
               ) -> HijackedStream:
        """``POST /containers/{id}/attach`` hijacked: a raw two-way stream."""
        params = {"stream": "1", "stdin": "1" if stdin else None,
                  "stdout": "1" if stdout else None, "stderr": "1" if stderr else None,
                  "logs": "1" if logs else None, "detachKeys": detach_keys}
        return self._hijack(f"/containers/{_segment(ref)}/attach", params, None)

    def top(self, ref: str, ps_args: str | None = None) -> dict[str, Any]:
        return dict(self._json("GET", f"/containers/{_segment(ref)}/top",
                               params={"ps_args": ps_args}))

    def stats(self, ref: str, *, stream: bool = True, one_shot: bool = False
              ) -> Iterator[dict[str, Any]]:
        """Resource usage samples: one (``stream`` False) or one a second."""
        response = self._send("GET", f"/containers/{_segment(ref)}/stats", timeout=None,
                              params={"stream": "1" if stream else "0",
                                      "one-shot": "1" if one_shot else None})
        return self._objects(response)

    def changes(self, ref: str) -> list[dict[str, Any]]:
        """``GET /containers/{id}/changes``: Kind 0 modified, 1 added, 2 deleted."""
        return list(self._json("GET", f"/containers/{_segment(ref)}/changes") or [])

    def export(self, ref: str) -> Iterator[bytes]:
        response = self._send("GET", f"/containers/{_segment(ref)}/export", timeout=None)
        return self._chunks(response)

    def archive_stat(self, ref: str, path: str) -> dict[str, Any]:
        """``HEAD /containers/{id}/archive``: the path's stat (name, size, mode, mtime,
        linkTarget)."""
        response = self._send("HEAD", f"/containers/{_segment(ref)}/archive",
                              params={"path": path})
        try:
            response.read()
        finally:
            response.close()
        return _path_stat(response.getheader("X-Docker-Container-Path-Stat"))

    def get_archive(self, ref: str, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        """A tar of ``path`` in the container, and the path's stat."""
        response = self._send("GET", f"/containers/{_segment(ref)}/archive",
                              params={"path": path}, timeout=None)
        stat_header = response.getheader("X-Docker-Container-Path-Stat")
        return self._chunks(response), _path_stat(stat_header)

    def put_archive(self, ref: str, path: str, data: bytes | IO[bytes], *,
                    no_overwrite_dir_non_dir: bool = False, copy_uid_gid: bool = False
                    ) -> None:
        """Extract a tar into the directory ``path`` in the container."""
        response = self._send(
            "PUT", f"/containers/{_segment(ref)}/archive", body=data, timeout=None,
            params={"path": path,
                    "noOverwriteDirNonDir": "1" if no_overwrite_dir_non_dir else None,
                    "copyUIDGID": "1" if copy_uid_gid else None},
            headers={"Content-Type": "application/x-tar"})
        try:
            response.read()
        finally:
            response.close()

    def commit(self, ref: str, *, repository: str | None = None, tag: str | None = None,
               message: str | None = None, author: str | None = None, pause: bool = True,
               changes: Iterable[str] = (), config: Mapping[str, Any] | None = None
               ) -> dict[str, Any]:
        params: list[tuple[str, str | None]] = [
            ("container", ref), ("repo", repository), ("tag", tag), ("comment", message),
            ("author", author), ("pause", "1" if pause else "0")]
        params += [("changes", c) for c in changes]
        return dict(self._json("POST", "/commit", params=params, timeout=None,
                               body=json.dumps(dict(config or {})).encode(),
                               headers={"Content-Type": "application/json"}))

    def prune_containers(self, *, filters: Filters = None) -> dict[str, Any]:
        return dict(self._json("POST", "/containers/prune", timeout=None,
                               params={"filters": encode_filters(filters)}) or {})

    def events(self, *, since: str | None = None, until: str | None = None,
               filters: Filters = None) -> Iterator[dict[str, Any]]:
        """``GET /events``: one dict per event, until ``until`` (or forever)."""
        response = self._send("GET", "/events", timeout=None, params={
            "since": since, "until": until, "filters": encode_filters(filters)})
        return self._objects(response)

    # -- exec ----------------------------------------------------------------------------
    def exec_create(self, ref: str, config: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /containers/{id}/exec``: ``{"Id"}`` of a process to start later."""
        return dict(self._json("POST", f"/containers/{_segment(ref)}/exec",
                               body=json.dumps(dict(config)).encode(),
                               headers={"Content-Type": "application/json"}))

    def exec_start(self, exec_id: str, *, tty: bool = False, detach: bool = False
                   ) -> HijackedStream | None:
        """Start an exec: hijacked (its stdio) unless ``detach``."""
        body = {"Detach": detach, "Tty": tty}
        if detach:
            self._json("POST", f"/exec/{_segment(exec_id)}/start",
                       body=json.dumps(body).encode(),
                       headers={"Content-Type": "application/json"})
            return None
        return self._hijack(f"/exec/{_segment(exec_id)}/start", None, body)

    def exec_inspect(self, exec_id: str) -> dict[str, Any]:
        return dict(self._json("GET", f"/exec/{_segment(exec_id)}/json"))

    def exec_resize(self, exec_id: str, height: int, width: int) -> None:
        self._status("POST", f"/exec/{_segment(exec_id)}/resize",
                     {"h": str(height), "w": str(width)})

    # -- networks --------------------------------------------------------------------------
    def networks(self, *, filters: Filters = None) -> list[dict[str, Any]]:
        return list(self._json("GET", "/networks",
                               params={"filters": encode_filters(filters)}) or [])

    def inspect_network(self, ref: str, *, verbose: bool = False,
                        scope: str | None = None) -> dict[str, Any]:
        return dict(self._json("GET", f"/networks/{_segment(ref)}", params={
            "verbose": "true" if verbose else None, "scope": scope}))

    def create_network(self, body: Mapping[str, Any]) -> dict[str, Any]:
        """``POST /networks/create`` (a NetworkCreateRequest): ``{"Id", "Warning"}``."""
        return dict(self._json("POST", "/networks/create", timeout=None,
                               body=json.dumps(dict(body)).encode(),
                               headers={"Content-Type": "application/json"}))

    def remove_network(self, ref: str) -> None:
        self._status("DELETE", f"/networks/{_segment(ref)}")

    def connect_network(self, ref: str, container: str,
                        endpoint: Mapping[str, Any] | None = None) -> None:
        self._json("POST", f"/networks/{_segment(ref)}/connect", timeout=None,
                   body=json.dumps({"Container": container,
                                    "EndpointConfig": dict(endpoint or {})}).encode(),
                   headers={"Content-Type": "application/json"})

    def disconnect_network(self, ref: str, container: str, *, force: bool = False) -> None:
        self._json("POST", f"/networks/{_segment(ref)}/disconnect", timeout=None,
                   body=json.dumps({"Container": container, "Force": force}).encode(),
                   headers={"Content-Type": "application/json"})

    def prune_networks(self, *, filters: Filters = None) -> dict[str, Any]:
        return dict(self._json("POST", "/networks/prune", timeout=None,
                               params={"filters": encode_filters(filters)}) or {})

    # -- hijacking and object streams ------------------------------------------------------
    @classmethod
    def _objects(cls, response: _Response) -> Iterator[dict[str, Any]]:
        parser = JSONStream()
        for data in cls._chunks(response):
            for value in parser.feed(data):
                if isinstance(value, dict):
                    yield value
        parser.close()

    def _hijack(self, path: str, params: Any, body: Mapping[str, Any] | None
                ) -> HijackedStream:
        """POST with ``Connection: Upgrade``/``Upgrade: tcp``; after the daemon's 101 the
        connection is a raw stream both ways (read by hand: http.client would buffer
        bytes that belong to the stream)."""
        url = f"/v{self.api_version}{path}"
        if params:
            query = urlencode([(k, v) for k, v in params.items() if v is not None])
            if query:
                url += "?" + query
        payload = json.dumps(dict(body)).encode() if body is not None else b""
        head = (f"POST {url} HTTP/1.1\r\nHost: {self._http_host}\r\n"
                f"User-Agent: {self.user_agent}\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(payload)}\r\nConnection: Upgrade\r\n"
                "Upgrade: tcp\r\n\r\n")
        sock = self._dial()
        try:
            sock.sendall(head.encode() + payload)
            data = b""
            while b"\r\n\r\n" not in data:
                chunk = sock.recv(CHUNK)
                if not chunk:
                    raise ProtocolError(f"POST {path}: the daemon closed the connection")
                data += chunk
                if len(data) > (1 << 20):
                    raise ProtocolError(f"POST {path}: no end of the answer's headers")
            header_block, _, rest = data.partition(b"\r\n\r\n")
            lines = header_block.decode("latin-1").split("\r\n")
            parts = lines[0].split(" ", 2)
            if len(parts) < 2 or not parts[0].startswith("HTTP/") or not parts[1].isdigit():
                raise ProtocolError(f"POST {path}: not an HTTP answer: {lines[0]!r}")
            status = int(parts[1])
            headers = {}
            for line in lines[1:]:
                name, _, value = line.partition(":")
                headers[name.strip().lower()] = value.strip()
            if status >= 400:
                error_body = _read_body(sock, rest, headers)
                raise APIError(status, error_message(status, error_body))
            if status not in (101, 200):
                raise ProtocolError(f"POST {path}: unexpected answer {lines[0]!r}")
            sock.settimeout(None)
        except TimeoutError:
            sock.close()
            raise ClientError(f"POST {path}: timed out") from None
        except OSError as exc:
            sock.close()
            raise ClientError(f"POST {path}: {exc}") from None
        except BaseException:
            sock.close()
            raise
        return HijackedStream(sock, rest)


class Waiter:
    """A ``POST /containers/{id}/wait`` whose headers came: ``result()`` blocks for the
    body."""

    def __init__(self, response: _Response) -> None:
        self._response = response

    def result(self) -> dict[str, Any]:
        try:
            data = self._response.read()
        except (OSError, HTTPError) as exc:
            raise ClientError(f"waiting for the container: {exc}") from None
        finally:
            self._response.close()
        try:
            value = json.loads(data)
        except ValueError:
            raise ProtocolError(f"wait: the answer is not JSON: {data[:80]!r}") from None
        if not isinstance(value, dict):
            raise ProtocolError(f"wait: unexpected answer {value!r}")
        return value

    def close(self) -> None:
        self._response.close()


class HijackedStream:
    """The raw connection of an attach or exec start: ``recv`` what the process writes
    (framed unless it has a TTY: :class:`FrameReader`), ``sendall`` its stdin,
    ``close_write`` at the end of the input (the daemon then closes the process's
    stdin)."""

    def __init__(self, sock: Any, buffered: bytes = b"") -> None:
        self.sock = sock
        self._buffered = buffered

    def recv(self, size: int = CHUNK) -> bytes:
        if self._buffered:
            data, self._buffered = self._buffered[:size], self._buffered[size:]
            return data
        try:
            return bytes(self.sock.recv(size))
        except OSError as exc:
            raise ClientError(f"the stream broke: {exc}") from None

    def sendall(self, data: bytes) -> None:
        try:
            self.sock.sendall(data)
        except OSError as exc:
            raise ClientError(f"the stream broke: {exc}") from None

    def close_write(self) -> None:
        try:
            if _is_tls_socket(self.sock):
                return      # TLS has no half-close that keeps the read side
            self.sock.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass

    def __enter__(self) -> HijackedStream:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class FrameReader:
    """Incremental demultiplexer of docker's stdio framing: an 8-byte header (stream: 0
    stdin, 1 stdout, 2 stderr; three zero bytes; the size, uint32 big-endian), then the
    data."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, data: bytes) -> list[tuple[int, bytes]]:
        self._buffer += data
        out: list[tuple[int, bytes]] = []
        while len(self._buffer) >= 8:
            stream = self._buffer[0]
            size = int.from_bytes(self._buffer[4:8], "big")
            if len(self._buffer) < 8 + size:
                break
            out.append((stream, self._buffer[8:8 + size]))
            self._buffer = self._buffer[8 + size:]
        return out

    @property
    def pending(self) -> bool:
        return bool(self._buffer)


def _read_body(sock: Any, rest: bytes, headers: Mapping[str, str]) -> bytes:
    """The body of an error answer on a connection read by hand."""
    data = rest
    try:
        if "content-length" in headers:
            size = int(headers["content-length"])
            while len(data) < size:
                chunk = sock.recv(CHUNK)
                if not chunk:
                    break
                data += chunk
            return data[:size]
        while True:
            if "chunked" in headers.get("transfer-encoding", "") and data.endswith(
                    b"0\r\n\r\n"):
                break
            chunk = sock.recv(CHUNK)
            if not chunk:
                break
            data += chunk
    except (OSError, ValueError):
        pass
    if "chunked" in headers.get("transfer-encoding", ""):
        body = b""
        while data:
            size_line, _, data = data.partition(b"\r\n")
            try:
                size = int(size_line.split(b";")[0], 16)
            except ValueError:
                break
            if size == 0:
                break
            body += data[:size]
            data = data[size + 2:]
        return body
    return data


def _path_stat(header: str | None) -> dict[str, Any]:
    if not header:
        return {}
    try:
        value = json.loads(base64.b64decode(header))
    except (ValueError, TypeError):
        raise ProtocolError(f"malformed X-Docker-Container-Path-Stat: {header[:80]!r}") \
            from None
    return dict(value) if isinstance(value, dict) else {}

def _segment(name: str) -> str:
    # image names keep their slashes in the path (the server matches them); the rest is
    # escaped
    return quote(name, safe="/:@")


def _file_size(body: IO[bytes]) -> int | None:
    try:
        info = os.fstat(body.fileno())
        if stat.S_ISREG(info.st_mode):
            return info.st_size - body.tell()
    except (OSError, AttributeError, ValueError):
        pass
    return None


__all__ = ["API_VERSION", "DEFAULT_HOST", "APIClient", "APIError", "ClientError",
           "DaemonUnreachable", "FrameReader", "HijackedStream", "JSONStream",
           "ProtocolError", "StreamError", "TLSConfig", "Waiter", "encode_auth",
           "encode_filters", "error_message", "host_from_env", "negotiate"]
