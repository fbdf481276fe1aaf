"""``POST /build`` (the classic builder, Docker's query parameters and JSON stream) and
``POST /build/prune``."""

from __future__ import annotations

import asyncio
import base64
import json
import logging

from longboat.api import streams
from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.errors import InvalidArgument, LongboatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from typing import Any

    from longboat.build.builder import BuildOptions
    from longboat.engine.engine import Engine

log = logging.getLogger("longboat.api.build")
_DONE = object()


def _json_map(request: Request, name: str) -> dict[str, Any]:
    value = request.json_arg(name)
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InvalidArgument(f"{name} must be a JSON object")
    return value


def _int(request: Request, name: str) -> int | None:
    value = request.arg(name)
    if not value:
        return None
    try:
        return int(value)
    except ValueError:
        raise InvalidArgument(f"{name} must be an integer, not {value!r}") from None


def options_from(request: Request) -> BuildOptions:
    from longboat.build.builder import BuildOptions
    from longboat.image import reference

    if request.arg("remote"):
        raise InvalidArgument("remote build contexts (git repositories, URLs) are not "
                              "supported: send the context as the request body")
    if request.arg("version") == "2":
        raise InvalidArgument("BuildKit (version=2) is not supported by this engine: use "
                              "the classic builder (DOCKER_BUILDKIT=0)")
    if request.flag("squash"):
        raise InvalidArgument("squash is not supported")
    tags = [t for t in request.query.get("t", []) if t]
    for tag in tags:
        try:
            ref = reference.parse(tag)
        except LongboatError as exc:
            raise InvalidArgument(f"invalid reference format: {tag}: {exc.message}") \
                from None
        if ref.digest:
            raise InvalidArgument(f"invalid tag {tag}: a digest cannot be a tag")
    cache_from = request.json_arg("cachefrom") or []
    if not isinstance(cache_from, list):
        raise InvalidArgument("cachefrom must be a JSON array")
    build_args = {str(k): (None if v is None else str(v))
                  for k, v in _json_map(request, "buildargs").items()}
    labels = {str(k): str(v) for k, v in _json_map(request, "labels").items()}
    hosts: list[str] = []
    for value in request.query.get("extrahosts", []):
        hosts += [h for h in value.split(",") if h]
    resources: dict[str, Any] = {}
    for param, key in (("memory", "Memory"), ("memswap", "MemorySwap"),
                       ("cpushares", "CpuShares"), ("cpuperiod", "CpuPeriod"),
                       ("cpuquota", "CpuQuota"), ("shmsize", "ShmSize")):
        number = _int(request, param)
        if number:
            resources[key] = number
    for param, key in (("cpusetcpus", "CpusetCpus"), ("cpusetmems", "CpusetMems")):
        if request.arg(param):
            resources[key] = request.arg(param)
    ulimits = request.json_arg("ulimits")
    if ulimits:
        resources["Ulimits"] = ulimits
    auth: dict[str, Any] = {}
    header = request.headers.get("x-registry-config")
    if header:
        try:
            decoded = json.loads(base64.urlsafe_b64decode(header + "=" * (-len(header) % 4)))
        except (ValueError, TypeError):
            raise InvalidArgument("X-Registry-Config is not base64-encoded JSON") from None
        auth = decoded if isinstance(decoded, dict) else {}
    rm = request.flag("rm", True)
    return BuildOptions(
        dockerfile=request.arg("dockerfile") or "Dockerfile", tags=tags,
        build_args=build_args, labels=labels, no_cache=request.flag("nocache"),
        cache_from=[str(c) for c in cache_from], pull=request.flag("pull"),
        remove=rm, force_remove=request.flag("forcerm"),
        network_mode=request.arg("networkmode") or "default",
        target=request.arg("target") or "", extra_hosts=hosts, quiet=request.flag("q"),
        resources=resources, registry_auth=auth)


def register(router: Router, engine: Engine) -> None:
    from longboat.api.images import _spool

    async def build(request: Request) -> Response:
        options = options_from(request)
        spool = await _spool(request, engine.tmpdir())
        return Response(200, headers={"Content-Type": "application/json"},
                        stream=_run(engine, options, spool))

    async def prune(request: Request) -> Response:
        def work() -> dict[str, Any]:
            import os

            from longboat.build.cache import BuildCache

            cache = BuildCache(os.path.join(engine.settings.data_root, "build"))
            present = {i.id for i in engine.images.images()}
            cache.prune(present)
            return {"CachesDeleted": None, "SpaceReclaimed": 0}

        result = await asyncio.get_running_loop().run_in_executor(None, work)
        return Response.json(result)

    router.add("POST", "/build", build)
    router.add("POST", "/build/prune", prune)


async def _run(engine: Engine, options: BuildOptions, spool: Any) -> AsyncIterator[bytes]:
    from longboat.build.builder import Builder
    from longboat.build.context import BuildContext

    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    async def work() -> None:
        context = None
        try:
            size = spool.seek(0, 2)
            spool.seek(0)
            head = spool.read(8)
            context = await loop.run_in_executor(
                None, lambda: BuildContext(engine.tmpdir(), size, head=head))

            def receive() -> None:
                assert context is not None
                with spool:
                    spool.seek(0)
                    context.receive(spool, options.dockerfile)

            await loop.run_in_executor(None, receive)
            await Builder(engine, context, options, queue.put_nowait).build()
        except LongboatError as exc:
            queue.put_nowait(streams.error_event(exc.message))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            log.exception("build failed")
            queue.put_nowait(streams.error_event(f"internal error: {exc}"))
        finally:
            try:
                spool.close()
                if context is not None:
                    await loop.run_in_executor(None, context.close)
            finally:
                queue.put_nowait(_DONE)     # the stream ends, whatever the cleanup did

    task = asyncio.create_task(work())
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                break
            assert isinstance(item, dict)
            yield streams.line(item)
    finally:
        if not task.done():
            task.cancel()
            try:
                await task
            except (asyncio.CancelledError, Exception):
                pass
