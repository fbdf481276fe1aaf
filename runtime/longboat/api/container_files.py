"""Container file endpoints: ``/containers/{id}/archive`` (HEAD, GET, PUT: ``docker
cp`` both ways), ``/containers/{id}/export``, ``/containers/{id}/changes`` (``docker
diff``) and ``POST /commit``. The file work is in :mod:`longboat.engine.filesystem` and
:mod:`longboat.engine.commit`; it blocks, so it runs in threads, and tars stream out as
they are built."""

from __future__ import annotations

import asyncio
import base64
import json
import queue
import threading

from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.engine import filesystem
from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from typing import Any

    from longboat.engine.engine import Engine

TAR = "application/x-tar"
_DONE = object()
#: a producer that nobody reads from for this long gives up (and releases its mount)
_STALL_TIMEOUT = 300.0


def threaded_stream(produce: Callable[[Callable[[bytes], None]], None],
                    cleanup: Callable[[], None]) -> AsyncIterator[bytes]:
    """Run ``produce(write)`` in a thread now, and stream what it writes. ``cleanup``
    runs in that thread when it ends, whatever happens to the stream (a client that
    goes away, a response never sent), so a mount is never left behind."""
    chunks: queue.Queue[object] = queue.Queue(maxsize=8)
    cancelled = threading.Event()
    buffer = bytearray()

    class Cancelled(Exception):
        pass

    def put(item: object) -> None:
        waited = 0.0
        while not cancelled.is_set():
            try:
                chunks.put(item, timeout=0.1)
                return
            except queue.Full:
                waited += 0.1
                if waited > _STALL_TIMEOUT:
                    cancelled.set()
        raise Cancelled

    def write(data: bytes) -> None:
        buffer.extend(data)
        if len(buffer) >= 256 << 10:
            put(bytes(buffer))
            buffer.clear()

    def run() -> None:
        try:
            produce(write)
            if buffer:
                put(bytes(buffer))
            put(_DONE)
        except Cancelled:
            pass
        except BaseException as exc:
            import logging

            logging.getLogger("longboat.api").exception("building a tar failed")
            try:
                put(exc)
            except Cancelled:
                pass
        finally:
            cleanup()

    threading.Thread(target=run, name="tar-stream", daemon=True).start()

    async def stream() -> AsyncIterator[bytes]:
        loop = asyncio.get_running_loop()
        try:
            while True:
                item = await loop.run_in_executor(None, chunks.get)
                if item is _DONE:
                    return
                if isinstance(item, BaseException):
                    # end the response without its last chunk: the client sees a
                    # broken transfer, not a short tar it would take as complete
                    raise ConnectionAbortedError("building the tar failed") from item
                assert isinstance(item, bytes)
                yield item
        finally:
            cancelled.set()

    return stream()


def register(router: Router, engine: Engine) -> None:
    containers = engine.containers

    async def thread(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    def required_path(request: Request) -> str:
        path = request.arg("path")
        if not path:
            raise InvalidArgument("path is required")
        return path

    async def archive_get(request: Request) -> Response:
        ref = request.params["id"]
        container = containers.get(ref)
        path = required_path(request)
        root = filesystem.ContainerRoot(engine, container)

        def prepare() -> tuple[filesystem.Located, str]:
            root.open()
            try:
                where = filesystem.locate(root.fd, path, ref)
                try:
                    stat = filesystem.path_stat(root.fd, where)
                except BaseException:
                    where.close()
                    raise
            except BaseException:
                root.close()
                raise
            encoded = base64.b64encode(json.dumps(stat).encode()).decode()
            return where, encoded

        where, encoded = await thread(prepare)
        headers = {"X-Docker-Container-Path-Stat": encoded, "Content-Type": TAR}

        def cleanup() -> None:
            where.close()
            root.close()

        if request.method == "HEAD":
            await thread(cleanup)
            return Response(200, headers=headers)
        return Response(200, headers=headers, stream=threaded_stream(
            lambda write: filesystem.archive_path(root.fd, where, write), cleanup))

    async def archive_put(request: Request) -> Response:
        ref = request.params["id"]
        container = containers.get(ref)
        path = required_path(request)
        if container.host_config.get("ReadonlyRootfs"):
            raise filesystem.Forbidden("container rootfs is marked read-only")
        no_overwrite = request.flag("noOverwriteDirNonDir")
        spool = filesystem.spool(engine.tmpdir())
        loop = asyncio.get_running_loop()
        try:
            while chunk := await request.read(1 << 20):
                await loop.run_in_executor(None, spool.write, chunk)
        except BaseException:
            spool.close()
            raise

        def work() -> None:
            with spool, filesystem.ContainerRoot(engine, container, writable=True) as root:
                spool.seek(0)
                filesystem.extract(root.fd, path, ref, spool,
                                   no_overwrite_dir_non_dir=no_overwrite)

        await thread(work)
        return Response(200)

    async def export(request: Request) -> Response:
        container = containers.get(request.params["id"])
        root = filesystem.ContainerRoot(engine, container)
        await thread(root.open)
        engine.events.publish("container", "export", container, {})
        return Response(200, headers={"Content-Type": TAR}, stream=threaded_stream(
            lambda write: filesystem.export(root.fd, write), root.close))

    async def changes(request: Request) -> Response:
        container = containers.get(request.params["id"])
        found = await thread(lambda: filesystem.container_changes(engine, container))
        return Response.json(found or None)   # Docker's nil slice: null

    async def commit(request: Request) -> Response:
        from longboat.engine.commit import commit as make_image

        ref = request.arg("container") or ""
        if not ref:
            raise InvalidArgument("container is required")
        container = containers.get(ref)
        body = await request.json()
        if body is not None and not isinstance(body, dict):
            raise InvalidArgument("the request body must be a container configuration "
                                  "(a JSON object) or empty")
        changes_list = [c for c in request.query.get("changes") or [] if c]
        pause = request.flag("pause", True)
        paused = False
        if pause and container.running and not container.state.get("Paused"):
            await engine.monitor.call("pause", id=container.id)
            paused = True
        try:
            image = await thread(lambda: make_image(
                engine, container, repo=request.arg("repo"), tag=request.arg("tag"),
                comment=request.arg("comment") or "", author=request.arg("author") or "",
                changes=changes_list, config=body))
        finally:
            if paused:
                await engine.monitor.call("resume", id=container.id)
        engine.events.publish("container", "commit", container, {
            "comment": request.arg("comment") or "", "imageID": image.id,
            "imageRef": image.references[0] if image.references else ""})
        return Response.json({"Id": image.id}, 201)

    router.add("GET", "/containers/{id}/archive", archive_get)
    router.add("PUT", "/containers/{id}/archive", archive_put)
    router.add("GET", "/containers/{id}/export", export)
    router.add("GET", "/containers/{id}/changes", changes)
    router.add("POST", "/commit", commit)
