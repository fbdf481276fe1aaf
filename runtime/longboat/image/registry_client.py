"""The low-level OCI distribution client: one method per registry endpoint.

Owns the HTTP side of talking to a registry: which scheme (Docker's rules: ``localhost``,
``127.0.0.0/8`` and ``::1`` speak HTTP; others HTTPS, or for registries marked insecure
HTTPS without verification falling back to HTTP), ``docker.io`` meaning
``registry-1.docker.io``, authentication (answering ``401`` challenges with Basic
credentials or a Bearer token fetched from the realm, cached per scope), redirects,
retries with exponential backoff on connection errors, ``5xx`` and ``429`` (honouring
``Retry-After`` up to a cap), and turning the registry's error bodies into
:class:`RegistryError` subclasses. Standard library only: ``http.client`` and ``ssl``.

It knows nothing about the image store: ``registry`` (pull, push, login) does.
"""

from __future__ import annotations

import base64
import http.client
import ipaddress
import json
import logging
import ssl
import threading
import time
import urllib.parse
from dataclasses import dataclass, field

from longboat.errors import LongboatError, NotFound
from longboat.image.registry_auth import AuthStore, Challenge, parse_www_authenticate

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

log = logging.getLogger(__name__)

DOCKER_HUB = "docker.io"
DOCKER_HUB_API = "registry-1.docker.io"
MAX_ERROR_BODY = 64 << 10
MAX_TOKEN_BODY = 1 << 20
USER_AGENT = "longboat/0.1"
_REDIRECTS = (301, 302, 303, 307, 308)


class RegistryError(LongboatError):
    """A registry refused, or answered something we cannot use."""

    status = 500


class Unauthorized(RegistryError):
    status = 401


class Denied(RegistryError):
    status = 403


class ManifestUnknown(RegistryError, NotFound):
    status = 404


class NameUnknown(RegistryError, NotFound):
    status = 404


class BlobUnknown(RegistryError, NotFound):
    status = 404


class BadResponse(RegistryError):
    """The registry answered garbage: not the status, headers or JSON the API promises."""

    status = 502


class Unreachable(RegistryError):
    """Connection errors or server errors that outlasted the retries."""

    status = 502


@dataclass
class RetryPolicy:
    """Bounded retries: ``attempts`` tries in all, waits of ``backoff * 2**n`` seconds
    (or the server's ``Retry-After``, capped at ``max_wait``)."""

    attempts: int = 3
    backoff: float = 0.5
    max_wait: float = 10.0


@dataclass
class Response:
    status: int
    headers: http.client.HTTPMessage
    body: bytes = b""
    url: str = ""
    stream: http.client.HTTPResponse | None = None

    def header(self, name: str) -> str:
        return self.headers.get(name, "") or ""


def api_host(domain: str) -> str:
    """Where a reference's domain is served: ``docker.io`` is ``registry-1.docker.io``."""
    return DOCKER_HUB_API if domain in (DOCKER_HUB, "index.docker.io") else domain


def _hostname(netloc: str) -> str:
    if netloc.startswith("["):
        return netloc[1:netloc.index("]")]
    return netloc.rsplit(":", 1)[0] if netloc.count(":") == 1 else netloc


def is_local(netloc: str) -> bool:
    """``localhost``, ``127.0.0.0/8`` and ``::1`` (Docker's implicitly insecure set)."""
    host = _hostname(netloc)
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def schemes(netloc: str, insecure: Iterable[str] = ()) -> list[str]:
    """The schemes to try for a registry, in order."""
    if is_local(netloc):
        return ["http"]
    if netloc in set(insecure) or _hostname(netloc) in set(insecure):
        return ["https-insecure", "http"]
    return ["https"]


def registry_error(resp: Response, what: str) -> RegistryError:
    """The error for a failed response: from the registry's ``{"errors": [...]}`` body
    when there is one, else from the status."""
    codes: list[str] = []
    messages: list[str] = []
    if resp.body:
        try:
            doc = json.loads(resp.body)
            for e in doc.get("errors") or []:
                codes.append(str(e.get("code", "")))
                messages.append(str(e.get("message", "")).strip() or codes[-1].lower())
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            pass
    detail = "; ".join(dict.fromkeys(m for m in messages if m)) or \
        f"HTTP {resp.status} {http.client.responses.get(resp.status, '')}".strip()
    if "MANIFEST_UNKNOWN" in codes:
        return ManifestUnknown(f"{what}: manifest unknown")
    if "NAME_UNKNOWN" in codes:
        return NameUnknown(f"{what}: repository name not known to registry")
    if "BLOB_UNKNOWN" in codes:
        return BlobUnknown(f"{what}: blob unknown to registry")
    if resp.status == 401 or "UNAUTHORIZED" in codes:
        return Unauthorized(f"{what}: unauthorized: {detail}")
    if resp.status == 403 or "DENIED" in codes:
        return Denied(f"{what}: denied: {detail}")
    if resp.status == 404:
        return NotFoundError(f"{what}: not found: {detail}")
    if resp.status in (500, 502, 503, 504, 429):
        return Unreachable(f"{what}: registry answered {detail}")
    return RegistryError(f"{what}: {detail}")


class NotFoundError(RegistryError, NotFound):
    status = 404


@dataclass
class _Token:
    value: str
    expires: float


@dataclass
class _HostAuth:
    """What we learnt about a registry's authentication."""

    basic: bool = False
    bearer: Challenge | None = None
    tokens: dict[str, _Token] = field(default_factory=dict)


class RegistryClient:
    """One registry (``host[:port]``, as in a reference's domain)."""

    def __init__(self, domain: str, *, auth: AuthStore | None = None,
                 insecure: Iterable[str] = (), retry: RetryPolicy | None = None,
                 timeout: float = 60.0, credentials: tuple[str, str] | None = None) -> None:
        self.domain = domain
        self.netloc = api_host(domain)
        self.insecure = set(insecure)
        self.retry = retry or RetryPolicy()
        self.timeout = timeout
        self._credentials = credentials
        if credentials is None and auth is not None:
            self._credentials = auth.get(domain)
        self._schemes = schemes(self.netloc, self.insecure)
        self._auth = _HostAuth()
        self._lock = threading.Lock()
        self._local = threading.local()

    # -- connections ----------------------------------------------------------------------
    @property
    def base(self) -> str:
        scheme = self._schemes[0]
        return f"{'https' if scheme.startswith('https') else 'http'}://{self.netloc}"

    def _connection(self, scheme: str, netloc: str) -> http.client.HTTPConnection:
        conns: dict[tuple[str, str], http.client.HTTPConnection] = \
            self._local.__dict__.setdefault("conns", {})
        conn = conns.get((scheme, netloc))
        if conn is None:
            if scheme == "http":
                conn = http.client.HTTPConnection(netloc, timeout=self.timeout)
            else:
                context = ssl.create_default_context()
                if scheme == "https-insecure":
                    context.check_hostname = False
                    context.verify_mode = ssl.CERT_NONE
                conn = http.client.HTTPSConnection(netloc, timeout=self.timeout,
                                                   context=context)
            conns[(scheme, netloc)] = conn
        return conn

    def _drop(self, scheme: str, netloc: str) -> None:
        conns = self._local.__dict__.get("conns", {})
        conn = conns.pop((scheme, netloc), None)
        if conn is not None:
            conn.close()

    def close(self) -> None:
        for conn in self._local.__dict__.get("conns", {}).values():
            conn.close()
        self._local.__dict__["conns"] = {}

    # -- one exchange -------------------------------------------------------------------
    def _send(self, scheme: str, method: str, url: str, headers: dict[str, str],
              body: bytes | None, stream: bool, max_body: int) -> Response:
        parts = urllib.parse.urlsplit(url)
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        conn = self._connection(scheme, parts.netloc)
        try:
            conn.request(method, target, body=body, headers={"User-Agent": USER_AGENT,
                                                             **headers})
            raw = conn.getresponse()
            resp = Response(raw.status, raw.headers, url=url)
            if stream and raw.status in (200, 206):
                resp.stream = raw
                return resp
            if method == "HEAD":
                raw.read()
            else:
                resp.body = raw.read(max_body + 1)
                if len(resp.body) > max_body:
                    self._drop(scheme, parts.netloc)  # the rest is still unread
                    raise BadResponse(f"{method} {url}: the answer is larger than "
                                      f"{max_body} bytes")
                if not raw.isclosed():
                    raw.read()
            if raw.will_close:
                self._drop(scheme, parts.netloc)
            return resp
        except (OSError, http.client.HTTPException):
            self._drop(scheme, parts.netloc)
            raise

    def _exchange(self, method: str, url: str, headers: dict[str, str], body: bytes | None,
                  stream: bool, max_body: int) -> Response:
        """One request, retried on connection errors, 5xx and 429; the HTTP fallback of an
        insecure registry happens here too."""
        attempt = 0
        while True:
            attempt += 1
            parts = urllib.parse.urlsplit(url)
            same_host = parts.netloc == self.netloc
            scheme = self._schemes[0] if same_host else parts.scheme
            try:
                resp = self._send(scheme, method, url, headers, body, stream, max_body)
            except (ssl.SSLError, ConnectionRefusedError) as exc:
                if same_host and len(self._schemes) > 1:
                    log.info("%s: %s over %s failed (%s); trying %s", self.netloc, method,
                             scheme, exc, self._schemes[1])
                    with self._lock:
                        if len(self._schemes) > 1 and self._schemes[0] == scheme:
                            self._schemes = self._schemes[1:]
                    url = parts._replace(scheme="http").geturl()
                    attempt -= 1
                    continue
                if attempt >= self.retry.attempts:
                    raise Unreachable(f"cannot reach registry {self.netloc}: {exc}") from None
                wait = self.retry.backoff * 2 ** (attempt - 1)
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= self.retry.attempts:
                    raise Unreachable(f"cannot reach registry {self.netloc}: {exc}") from None
                wait = self.retry.backoff * 2 ** (attempt - 1)
            else:
                if resp.status < 500 and resp.status != 429:
                    return resp
                if attempt >= self.retry.attempts:
                    if resp.stream is not None:
                        resp.stream.close()
                    return resp
                wait = self.retry.backoff * 2 ** (attempt - 1)
                after = resp.header("Retry-After").strip()
                if after.isdigit():
                    wait = float(after)
                log.info("%s %s: HTTP %d, retrying in %.1fs", method, url, resp.status, wait)
            time.sleep(min(wait, self.retry.max_wait))

    # -- authentication -----------------------------------------------------------------
    def _basic(self) -> str:
        assert self._credentials is not None
        user, password = self._credentials
        return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()

    def _authorization(self, scopes: tuple[str, ...]) -> str | None:
        with self._lock:
            if self._auth.bearer is not None:
                token = self._auth.tokens.get(" ".join(scopes))
                if token is not None and token.expires > time.monotonic():
                    return f"Bearer {token.value}"
                return None
            if self._auth.basic and self._credentials is not None:
                return self._basic()
        return None

    def _challenge(self, resp: Response, scopes: tuple[str, ...], what: str) -> None:
        """Learn from a 401 how to authenticate; raise if we cannot."""
        challenges = parse_www_authenticate(resp.header("WWW-Authenticate"))
        bearer = next((c for c in challenges if c.scheme == "bearer" and c.realm), None)
        basic = next((c for c in challenges if c.scheme == "basic"), None)
        if bearer is not None:
            with self._lock:
                self._auth.bearer = bearer
            self._fetch_token(bearer, scopes)
            return
        if basic is not None:
            if self._credentials is None:
                raise Unauthorized(f"{what}: unauthorized: authentication required (run "
                                   f"`longboat login {self.domain}`)")
            with self._lock:
                self._auth.basic = True
            return
        raise registry_error(resp, what)

    def _fetch_token(self, challenge: Challenge, scopes: tuple[str, ...]) -> str:
        query = [("service", challenge.params["service"])] \
            if "service" in challenge.params else []
        query += [("scope", s) for s in scopes]
        realm = urllib.parse.urlsplit(challenge.realm)
        if realm.scheme not in ("http", "https") or not realm.netloc:
            raise BadResponse(f"registry {self.netloc} named a token realm that is not a "
                              f"URL: {challenge.realm!r}")
        url = challenge.realm + ("&" if realm.query else "?") + urllib.parse.urlencode(query)
        headers = {"Accept": "application/json"}
        if self._credentials is not None:
            headers["Authorization"] = self._basic()
        scheme = realm.scheme
        if scheme == "https" and (self.netloc in self.insecure or realm.netloc in self.insecure):
            scheme = "https-insecure"
        attempt = 0
        while True:
            attempt += 1
            try:
                resp = self._send(scheme, "GET", url, headers, None, False, MAX_TOKEN_BODY)
            except (OSError, http.client.HTTPException) as exc:
                if attempt >= self.retry.attempts:
                    raise Unreachable(f"cannot reach the token server {realm.netloc}: "
                                      f"{exc}") from None
                time.sleep(min(self.retry.backoff * 2 ** (attempt - 1), self.retry.max_wait))
                continue
            if resp.status >= 500 and attempt < self.retry.attempts:
                time.sleep(min(self.retry.backoff * 2 ** (attempt - 1), self.retry.max_wait))
                continue
            break
        if resp.status in (401, 403):
            raise Unauthorized(f"{self.domain}: unauthorized: the token server refused "
                               f"{'the credentials' if self._credentials else 'anonymous access'}"
                               f" (HTTP {resp.status})")
        if resp.status != 200:
            raise registry_error(resp, f"token from {realm.netloc}")
        try:
            doc = json.loads(resp.body)
            value = doc.get("token") or doc.get("access_token")
            expires_in = int(doc.get("expires_in") or 60)
        except (ValueError, UnicodeDecodeError, AttributeError, TypeError):
            raise BadResponse(f"the token server {realm.netloc} answered something that is "
                              "not a token (JSON with \"token\")") from None
        if not isinstance(value, str) or not value:
            raise BadResponse(f"the token server {realm.netloc} answered without a token")
        with self._lock:
            # a little early, so a token never expires on its way
            self._auth.tokens[" ".join(scopes)] = _Token(
                value, time.monotonic() + max(expires_in - 10, 5))
        return value

    # -- the request loop -----------------------------------------------------------------
    def request(self, method: str, path: str, *, scopes: tuple[str, ...] = (),
                headers: dict[str, str] | None = None, body: bytes | None = None,
                stream: bool = False, max_body: int = MAX_ERROR_BODY,
                what: str = "") -> Response:
        """``method`` on ``path`` (under ``/v2/``, or an absolute URL the registry gave us),
        authenticated for ``scopes``, following redirects; any status comes back (only
        authentication that cannot succeed raises)."""
        url = path if "://" in path else self.base + path
        what = what or f"{method} {path}"
        authenticated_once = False
        redirects = 0
        while True:
            hdrs = dict(headers or {})
            on_registry = urllib.parse.urlsplit(url).netloc == self.netloc
            if on_registry:
                authorization = self._authorization(scopes)
                if authorization is not None:
                    hdrs["Authorization"] = authorization
            resp = self._exchange(method, url, hdrs, body, stream, max_body)
            if resp.status == 401 and on_registry:
                if authenticated_once:
                    raise registry_error(resp, what)
                self._challenge(resp, scopes, what)
                authenticated_once = True
                continue
            if resp.status in _REDIRECTS and method in ("GET", "HEAD") and \
                    resp.header("Location"):
                redirects += 1
                if redirects > 5:
                    raise BadResponse(f"{what}: too many redirects")
                url = urllib.parse.urljoin(url, resp.header("Location"))
                continue
            return resp

    def location(self, resp: Response, what: str) -> str:
        """The absolute URL of a response's ``Location`` (upload sessions)."""
        loc = resp.header("Location")
        if not loc:
            raise BadResponse(f"{what}: the registry answered {resp.status} without a "
                              "Location")
        return urllib.parse.urljoin(resp.url or self.base + "/", loc)
