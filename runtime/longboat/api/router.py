"""Routing of Docker Engine API requests: ``/v1.NN/...`` and unversioned paths, version
negotiation, Docker's response headers and its error bodies."""

from __future__ import annotations

import logging
import re

from longboat import __version__
from longboat.api.http import Request, Response
from longboat.errors import LongboatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable

API_VERSION = "1.41"
MIN_API_VERSION = "1.24"
SERVER = f"Longboat/{__version__} (linux)"
_VERSIONED = re.compile(r"^/v(\d+)\.(\d+)(/.*)$")
log = logging.getLogger("longboat.api")

def _version_tuple(text: str) -> tuple[int, int]:
    major, _, minor = text.partition(".")
    return int(major), int(minor)


def error(status: int, message: str) -> Response:
    return Response.json({"message": message}, status)


class Router:
    def __init__(self) -> None:
        self._routes: list[tuple[str, re.Pattern[str],
                                 Callable[[Request], Awaitable[Response]]]] = []

    def add(self, method: str, pattern: str,
            handler: Callable[[Request], Awaitable[Response]]) -> None:
        """``pattern`` like ``/images/{name:.+}/json``: ``{x}`` matches one path segment,
        ``{x:.+}`` anything (image names contain slashes)."""
        regex = re.sub(r"\{(\w+)(?::([^}]+))?\}",
                       lambda m: f"(?P<{m.group(1)}>{m.group(2) or '[^/]+'})", pattern)
        self._routes.append((method, re.compile(f"^{regex}$"), handler))

    @staticmethod
    def common_headers() -> dict[str, str]:
        return {"Api-Version": API_VERSION, "Server": SERVER, "Ostype": "linux",
                "Docker-Experimental": "false"}

    async def __call__(self, request: Request) -> Response:
        path = request.path
        versioned = _VERSIONED.match(path)
        if versioned:
            asked = (int(versioned.group(1)), int(versioned.group(2)))
            if asked > _version_tuple(API_VERSION):
                return error(400, f"client version {asked[0]}.{asked[1]} is too new. "
                                  f"Maximum supported API version is {API_VERSION}")
            if asked < _version_tuple(MIN_API_VERSION):
                return error(400, f"client version {asked[0]}.{asked[1]} is too old. "
                                  f"Minimum supported API version is {MIN_API_VERSION}, "
                                  "please upgrade your client to a newer version")
            path = versioned.group(3)
        method = "GET" if request.method == "HEAD" else request.method
        allowed = False
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if not match:
                continue
            allowed = True
            if route_method != method and not (route_method == "HEAD" == request.method):
                continue
            request.params = {k: v for k, v in match.groupdict().items()}
            try:
                return await handler(request)
            except LongboatError as exc:
                return error(exc.status, exc.message)
            except Exception:  # a fault of ours: log it whole, answer 500
                log.exception("%s %s failed", request.method, request.path)
                return error(500, "internal error in longboatd; see its log")
        if allowed:
            return error(405, f"method {request.method} not allowed on {path}")
        return error(404, f"page not found: {path}")
