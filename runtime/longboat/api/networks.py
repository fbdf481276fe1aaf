"""Network endpoints of the Docker Engine API v1.41: list, inspect, create, remove,
connect, disconnect, prune. Thin: the work is ``engine.networks``'s; what changes the
kernel (bridges, nftables) runs in the executor, off the event loop."""

from __future__ import annotations

import asyncio
import ipaddress
import re

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


#: what nftables' renderer takes as an interface name, and the kernel too
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"


def _checked_address(value: Any, field: str, *, cidr: bool = False) -> None:
    """An address or CIDR as Docker's net.ParseIP/ParseCIDR take it: no IPv6 zone
    (``%scope``; Python's ipaddress keeps any text there, and it would reach the
    firewall's script)."""
    if value is None or value == "":
        return
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string")
    if "%" in value:
        raise InvalidArgument(f"invalid {field} {value!r}: an IPv6 zone (%...) is not "
                              "allowed")
    try:
        if cidr:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        kind = "CIDR address" if cidr else "IP address"
        raise InvalidArgument(f"invalid {kind} in {field}: {value!r}") from None


def _checked_create(body: dict[str, Any]) -> None:
    """What reaches the kernel or the nftables script, checked here with the API's
    words before the engine sees it (the engine checks again, renders the new ruleset
    before it changes anything, and undoes a create whose firewall fails)."""
    options = body.get("Options")
    if isinstance(options, dict):
        bridge = options.get(BRIDGE_NAME_OPTION)
        if bridge and (not isinstance(bridge, str) or not _BRIDGE_NAME.fullmatch(bridge)
                       or bridge in (".", "..")):
            raise InvalidArgument(f"invalid bridge name {bridge!r} ({BRIDGE_NAME_OPTION}): "
                                  "1 to 15 of A-Z a-z 0-9 _ . -")
    ipam = body.get("IPAM")
    configs = ipam.get("Config") if isinstance(ipam, dict) else None
    for config in configs if isinstance(configs, list) else []:
        if not isinstance(config, dict):
            continue
        for key in ("Subnet", "IPRange", "Gateway"):
            _checked_address(config.get(key), f"IPAM.Config.{key}", cidr=key != "Gateway")
        aux = config.get("AuxiliaryAddresses")
        for name, value in (aux.items() if isinstance(aux, dict) else []):
            _checked_address(value, f"auxiliary address {name}")


def _checked_endpoint(endpoint: dict[str, Any]) -> None:
    ipam = endpoint.get("IPAMConfig")
    if isinstance(ipam, dict):
        for key in ("IPv4Address", "IPv6Address"):
            _checked_address(ipam.get(key), key)
        for value in ipam.get("LinkLocalIPs") or []:
            _checked_address(value, "LinkLocalIPs")


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
        _checked_create(body)
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
        _checked_endpoint(endpoint)
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
