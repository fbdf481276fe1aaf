"""Network endpoints of the Docker Engine API v1.41: list, inspect, create, remove,
connect, disconnect, prune. Thin: the work is ``engine.networks``'s; what changes the
kernel (bridges, nftables) runs in the executor, off the event loop."""

from __future__ import annotations

import asyncio

from longboat.api.containers import _filters
from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, TypeVar

    from longboat.engine.engine import Engine

    T = TypeVar("T")

LIST_FILTERS = ("dangling", "driver", "id", "label", "name", "scope", "type")
PRUNE_FILTERS = ("until", "label", "label!")


def _checked_filters(request: Request, accepted: tuple[str, ...]) -> dict[str, list[str]]:
    filters = _filters(request)
    for key, values in filters.items():
        if key not in accepted:
            raise InvalidArgument(f"invalid filter '{key}'")
        if key == "type":
            for value in values:
                if value not in ("custom", "builtin"):
                    raise InvalidArgument(f"invalid filter: 'type'='{value}'")
        if key == "dangling":
            for value in values:
                if value not in ("true", "false", "1", "0"):
                    raise InvalidArgument(f"invalid filter 'dangling={value}'")
        if key == "scope":
            for value in values:
                if value not in ("local", "swarm", "global"):
                    raise InvalidArgument(f"invalid filter: 'scope'='{value}'")
    return filters


async def _blocking(fn: Callable[..., T], *args: Any) -> T:
    return await asyncio.get_running_loop().run_in_executor(None, fn, *args)


async def _body(request: Request) -> dict[str, Any]:
    body = await request.json()
    if body is None:
        return {}
    if not isinstance(body, dict):
        raise InvalidArgument("the request body must be a JSON object")
    return body


def _container_ref(body: dict[str, Any]) -> str:
    container = body.get("Container")
    if not isinstance(container, str) or not container:
        raise InvalidArgument("no container given (Container)")
    return container


def register(router: Router, engine: Engine) -> None:
    async def list_networks(request: Request) -> Response:
        filters = _checked_filters(request, LIST_FILTERS)
        # as Docker: the list does not carry the endpoints; inspect does
        rows = [dict(row, Containers={}) for row in engine.networks.list(filters)]
        return Response.json(rows)

    async def inspect(request: Request) -> Response:
        scope = request.arg("scope") or ""
        view = engine.networks.inspect(request.params["id"], verbose=request.flag("verbose"))
        if scope and scope != view.get("Scope", "local"):
            raise NotFound(f"network {request.params['id']} not found")
        return Response.json(view)

    async def create(request: Request) -> Response:
        body = await _body(request)
        created = await _blocking(engine.networks.create, body)
        return Response.json(created, 201)

    async def remove(request: Request) -> Response:
        await _blocking(engine.networks.remove, request.params["id"])
        return Response(204)

    async def connect(request: Request) -> Response:
        body = await _body(request)
        endpoint = body.get("EndpointConfig") or {}
        if not isinstance(endpoint, dict):
            raise InvalidArgument("EndpointConfig must be an object")
        await engine.networks.connect(request.params["id"], _container_ref(body), endpoint)
        return Response(200)

    async def disconnect(request: Request) -> Response:
        body = await _body(request)
        await engine.networks.disconnect(request.params["id"], _container_ref(body),
                                  force=bool(body.get("Force")))
        return Response(200)

    async def prune(request: Request) -> Response:
        filters = _checked_filters(request, PRUNE_FILTERS)
        return Response.json(await _blocking(engine.networks.prune, filters))

    router.add("GET", "/networks", list_networks)
    router.add("GET", "/networks/", list_networks)
    router.add("POST", "/networks/create", create)
    router.add("POST", "/networks/prune", prune)
    router.add("GET", "/networks/{id}", inspect)
    router.add("DELETE", "/networks/{id}", remove)
    router.add("POST", "/networks/{id}/connect", connect)
    router.add("POST", "/networks/{id}/disconnect", disconnect)
