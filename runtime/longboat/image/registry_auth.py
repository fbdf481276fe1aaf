"""Registry credentials and authentication challenges.

Owns three things the distribution client (``registry``) needs and nothing else:

* :class:`AuthStore`, the credentials ``longboat login`` saves: a JSON file in Docker's
  ``config.json`` shape (``{"auths": {"HOST": {"auth": base64("user:password")}}}``),
  mode 0600 in a 0700 directory, replaced atomically. Docker Hub's credentials live under
  ``https://index.docker.io/v1/``, as Docker writes them; other keys Docker may have
  written (``credsStore``, ``HttpHeaders``...) are kept untouched.
* :func:`parse_www_authenticate`: RFC 7235 challenges (``Basic realm="x"``,
  ``Bearer realm="...",service="...",scope="repository:a:pull,push"``), quoted strings
  with escapes and commas inside them.
* :func:`repository_scope`: the token scopes of the distribution spec.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import re
from dataclasses import dataclass, field

from longboat.errors import InvalidArgument

DEFAULT_CONFIG = "/root/.longboat/config.json"
DOCKER_HUB_KEY = "https://index.docker.io/v1/"
_HUB_ALIASES = frozenset({"docker.io", "index.docker.io", "registry-1.docker.io",
                          "https://index.docker.io/v1/", "https://registry-1.docker.io"})


class AuthFileError(InvalidArgument):
    """A credentials file we cannot read."""


@dataclass(frozen=True)
class Challenge:
    """One ``WWW-Authenticate`` challenge: its scheme (lowercase) and parameters (names
    lowercase, values unquoted)."""

    scheme: str
    params: dict[str, str] = field(default_factory=dict)

    @property
    def realm(self) -> str:
        return self.params.get("realm", "")


_TOKEN = r"[!#$%&'*+.^_`|~0-9A-Za-z-]+"
_SCHEME = re.compile(rf"\s*({_TOKEN})(?:\s+|$)")
_PARAM = re.compile(rf"\s*({_TOKEN})\s*=\s*(?:\"((?:[^\"\\]|\\.)*)\"|({_TOKEN}))\s*(?:,|$)")
_TOKEN68 = re.compile(r"\s*[A-Za-z0-9._~+/-]+=*\s*(?:,|$)")


def parse_www_authenticate(header: str) -> list[Challenge]:
    """Every challenge in a ``WWW-Authenticate`` value, in order. A value that does not
    parse yields the challenges before the bad part (possibly none): the caller reports
    "no usable challenge" rather than us guessing."""
    challenges: list[Challenge] = []
    pos = 0
    text = header.strip()
    while pos < len(text):
        while pos < len(text) and text[pos] in ", \t":
            pos += 1
        m = _SCHEME.match(text, pos)
        if not m:
            break
        scheme = m.group(1).lower()
        pos = m.end()
        params: dict[str, str] = {}
        token68 = _TOKEN68.match(text, pos)
        param = _PARAM.match(text, pos)
        if token68 and not param:
            pos = token68.end()  # "Negotiate abc==": a credential blob, not parameters
        while True:
            param = _PARAM.match(text, pos)
            if not param:
                break
            name = param.group(1).lower()
            quoted = param.group(2)
            params[name] = (re.sub(r"\\(.)", r"\1", quoted) if quoted is not None
                            else param.group(3))
            pos = param.end()
        challenges.append(Challenge(scheme, params))
    return challenges


def repository_scope(name: str, actions: list[str] | tuple[str, ...]) -> str:
    """``repository:<name>:<action,...>`` (``name`` is the path in the registry, without
    its host: ``library/busybox``)."""
    if not name or not actions:
        raise InvalidArgument("a repository scope needs a name and at least one action")
    return f"repository:{name}:{','.join(actions)}"


def config_key(host: str) -> str:
    """The key a registry's credentials are saved under (Docker's rule: Docker Hub's
    under its old v1 URL, others by ``host[:port]``)."""
    host = host.strip()
    if host in _HUB_ALIASES:
        return DOCKER_HUB_KEY
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    host = host.rstrip("/")
    if host in _HUB_ALIASES:
        return DOCKER_HUB_KEY
    if not host or "/" in host:
        raise InvalidArgument(f"invalid registry address {host!r}: expected host[:port]")
    return host


class AuthStore:
    """Saved registry credentials, in Docker's ``config.json`` format."""

    def __init__(self, path: str = DEFAULT_CONFIG) -> None:
        self.path = path

    def _load(self) -> dict[str, object]:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            return {}
        except (ValueError, UnicodeDecodeError) as exc:
            raise AuthFileError(f"{self.path} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise AuthFileError(f"{self.path} must hold a JSON object")
        auths = data.get("auths", {})
        if not isinstance(auths, dict):
            raise AuthFileError(f"{self.path}: \"auths\" must be an object")
        return data

    def _save(self, data: dict[str, object]) -> None:
        directory = os.path.dirname(self.path) or "."
        os.makedirs(directory, mode=0o700, exist_ok=True)
        tmp = f"{self.path}.{os.getpid()}.tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.fchmod(fd, 0o600)  # whatever the umask
            os.write(fd, json.dumps(data, indent="\t").encode() + b"\n")
            os.fsync(fd)
        except BaseException:
            os.close(fd)
            os.unlink(tmp)
            raise
        os.close(fd)
        os.rename(tmp, self.path)

    def get(self, host: str) -> tuple[str, str] | None:
        """(user, password) saved for ``host``, or None."""
        auths = self._load().get("auths", {})
        assert isinstance(auths, dict)
        entry: object = auths.get(config_key(host))
        if not isinstance(entry, dict):
            return None
        encoded = entry.get("auth")
        if isinstance(encoded, str) and encoded:
            try:
                user, sep, password = base64.b64decode(encoded, validate=True).decode() \
                    .partition(":")
            except (binascii.Error, UnicodeDecodeError):
                raise AuthFileError(f"{self.path}: the credentials for {host} are not "
                                    "base64 of user:password") from None
            if not sep:
                raise AuthFileError(f"{self.path}: the credentials for {host} have no ':'")
            return user, password
        name, secret = entry.get("username"), entry.get("password")
        if isinstance(name, str) and isinstance(secret, str):
            return name, secret
        return None

    def set(self, host: str, user: str, password: str) -> None:
        if not user or ":" in user:
            raise InvalidArgument("a registry user name must be non-empty and have no ':'")
        data = self._load()
        auths = data.setdefault("auths", {})
        assert isinstance(auths, dict)
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        auths[config_key(host)] = {"auth": token}
        self._save(data)

    def remove(self, host: str) -> bool:
        """Forget ``host``'s credentials; whether there were any."""
        data = self._load()
        auths = data.get("auths", {})
        assert isinstance(auths, dict)
        if auths.pop(config_key(host), None) is None:
            return False
        self._save(data)
        return True

    def hosts(self) -> list[str]:
        auths = self._load().get("auths", {})
        assert isinstance(auths, dict)
        return sorted(auths)
