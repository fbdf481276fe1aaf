"""Volume endpoints: ``GET /volumes``, ``POST /volumes/create``, ``GET /volumes/{name}``,
``DELETE /volumes/{name}``, ``POST /volumes/prune`` (API 1.41: every unused volume)."""

from __future__ import annotations

import asyncio

from longboat.api.containers import _filters
from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from longboat.engine.engine import Engine

#: the longest ``name`` filter taken (a volume name is at most 200 characters)
MAX_NAME_PATTERN = 256


def register(router: Router, engine: Engine) -> None:
    volumes = engine.volumes

    async def list_volumes(request: Request) -> Response:
        filters = _filters(request)
        for pattern in filters.get("name") or []:
            if len(pattern) > MAX_NAME_PATTERN:
                raise InvalidArgument(f"a name filter is at most {MAX_NAME_PATTERN} "
                                      "characters")
        # name filters are regular expressions (Docker's too): matched off the loop
        rows = await asyncio.get_running_loop().run_in_executor(
            None, lambda: [v.inspect() for v in volumes.find(filters)])
        return Response.json({"Volumes": rows, "Warnings": None})

    async def create(request: Request) -> Response:
        body = await request.json() or {}
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object (a volume "
                                  "configuration)")
        name = body.get("Name")
        driver = body.get("Driver")
        if not isinstance(name, (str, type(None))) or not isinstance(driver,
                                                                     (str, type(None))):
            raise InvalidArgument("Name and Driver must be strings")
        volume = await asyncio.get_running_loop().run_in_executor(
            None, lambda: volumes.create(name or None, driver=driver,
                                         options=body.get("DriverOpts"),
                                         labels=body.get("Labels")))
        return Response.json(volume.inspect(), 201)

    async def inspect(request: Request) -> Response:
        return Response.json(volumes.get(request.params["name"]).inspect())

    async def remove(request: Request) -> Response:
        name = request.params["name"]
        force = request.flag("force")
        await asyncio.get_running_loop().run_in_executor(
            None, lambda: volumes.remove(name, force=force))
        return Response(204)

    async def prune(request: Request) -> Response:
        filters = _filters(request)
        removed, freed = await asyncio.get_running_loop().run_in_executor(
            None, volumes.prune, filters)
        return Response.json({"VolumesDeleted": removed or None, "SpaceReclaimed": freed})

    router.add("GET", "/volumes", list_volumes)
    router.add("POST", "/volumes/create", create)
    router.add("POST", "/volumes/prune", prune)
    router.add("GET", "/volumes/{name}", inspect)
    router.add("DELETE", "/volumes/{name}", remove)
