"""Container endpoints: create, list, inspect, start, stop, restart, kill, wait, remove,
pause, unpause, rename, resize, logs, attach, prune; and ``/events``."""

from __future__ import annotations

import asyncio
import contextlib
import json

from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.engine.attach import Attachment
from longboat.errors import InvalidArgument, LongboatError, NotModified

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from typing import Any

    from longboat.engine.engine import Engine

RAW_STREAM = "application/vnd.docker.raw-stream"


def _filters(request: Request) -> dict[str, list[str]]:
    raw = request.json_arg("filters") or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("filters must be a JSON object")
    return {k: list(v) if isinstance(v, list) else [x for x, on in v.items() if on]
            for k, v in raw.items()}


def prune_filter(filters: dict[str, list[str]]) -> Callable[[dict[str, Any]], bool]:
    """moby's container prune filters: ``until`` (one timestamp or Go duration: created
    at or before it), ``label`` (every one matches) and ``label!`` (pruned unless every
    one matches, moby's MatchKVList); others are refused."""
    for key in filters:
        if key not in ("until", "label", "label!"):
            raise InvalidArgument(f"Invalid filter '{key}'")
    until: float | None = None
    if filters.get("until"):
        if len(filters["until"]) > 1:
            raise InvalidArgument("more than one until filter specified")
        from longboat.engine.logs import parse_time

        try:
            until = parse_time(filters["until"][0])
        except InvalidArgument:
            raise InvalidArgument("failed to parse value as time or duration: "
                                  f"{json.dumps(filters['until'][0])}") from None

    def match_all(labels: dict[str, str], wanted: list[str]) -> bool:
        for item in wanted:
            key, eq, value = item.partition("=")
            if key not in labels or (eq and labels[key] != value):
                return False
        return True

    def keep(data: dict[str, Any]) -> bool:
        from longboat.engine.logs import parse_time

        if until is not None and parse_time(str(data.get("Created"))) > until:
            return False
        labels = (data.get("Config") or {}).get("Labels") or {}
        if not match_all(labels, filters.get("label") or []):
            return False
        return not (filters.get("label!") and match_all(labels, filters["label!"]))

    return keep


def register(router: Router, engine: Engine) -> None:
    containers = engine.containers

    async def create(request: Request) -> Response:
        body = await request.json()
        cid, warnings = await asyncio.get_running_loop().run_in_executor(
            None, containers.create, body, request.arg("name"))
        engine.events.publish("container", "create", containers.get(cid), {})
        return Response.json({"Id": cid, "Warnings": warnings}, 201)

    async def list_containers(request: Request) -> Response:
        filters = _filters(request)
        from longboat.engine.health import STATUSES

        for value in filters.get("health", []):
            if value not in STATUSES:
                raise InvalidArgument(f"Unrecognised filter value for health: {value}")
        limit = int(request.arg("limit") or -1)
        show_all = request.flag("all") or limit > 0   # as Docker: a limit implies all
        with_size = request.flag("size")
        rows = []
        for c in sorted(containers.by_id.values(), key=lambda c: c.data["Created"],
                        reverse=True):
            if not (show_all or c.running or "status" in filters or "exited" in filters):
                continue
            if _matches(c, filters):
                row = c.summary()
                if with_size:
                    from longboat.api.system import _tree_size

                    try:
                        row["SizeRw"] = _tree_size(engine.snapshots.upper_path(c.id))
                    except LongboatError:
                        row["SizeRw"] = 0
                    row["SizeRootFs"] = 0
                rows.append(row)
        return Response.json(rows[:limit] if limit > 0 else rows)

    async def inspect(request: Request) -> Response:
        container = containers.get(request.params["id"])
        return Response.json(dict(container.inspect(),
                                  ExecIDs=engine.execs.ids_of(container.id)))

    # wait responses on their way: (its condition, set once its answer is written)
    answering: dict[str, list[tuple[str, asyncio.Event]]] = {}

    async def start(request: Request) -> Response:
        container = containers.get(request.params["id"])
        cid, auto_remove = container.id, bool(container.host_config.get("AutoRemove"))
        try:
            await containers.start(cid)
        except NotModified:
            return Response(304)
        except BaseException:
            # a container that could not start has answered its waits (with --rm, once
            # removed): those answers go out before the start's error, as dockerd's
            # do (the docker CLI stops reading its wait when it sees that error)
            written = [event.wait() for condition, event in answering.get(cid, [])
                       if condition != "removed" or auto_remove]
            if written:
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(asyncio.gather(*written), 2)
            raise
        engine.events.publish("container", "start", containers.get(request.params["id"]), {})
        return Response(204)

    async def stopped(request: Request) -> bool:
        """Stop with the request's grace period (``t``); False if it was not running."""
        t = request.arg("t")
        try:
            await containers.stop(request.params["id"], None if t is None else int(t))
        except NotModified:
            return False
        engine.events.publish("container", "stop", containers.get(request.params["id"]), {})
        return True

    async def stop(request: Request) -> Response:
        return Response(204 if await stopped(request) else 304)

    async def restart(request: Request) -> Response:
        await stopped(request)
        await containers.start(request.params["id"])
        engine.events.publish("container", "restart", containers.get(request.params["id"]), {})
        return Response(204)

    async def kill(request: Request) -> Response:
        await containers.kill(request.params["id"], request.arg("signal") or "SIGKILL")
        return Response(204)

    async def wait(request: Request) -> Response:
        container = containers.get(request.params["id"])
        condition = request.arg("condition") or "not-running"
        waiting = asyncio.ensure_future(containers.wait(container.id, condition))
        written = asyncio.Event()
        pending = answering.setdefault(container.id, [])
        pending.append((condition, written))

        def forget() -> None:
            written.set()
            if (condition, written) in pending:
                pending.remove((condition, written))
            if not pending and answering.get(container.id) is pending:
                del answering[container.id]

        # (a client gone before its body started never runs the body's cleanup)
        waiting.add_done_callback(
            lambda _: asyncio.get_running_loop().call_later(5, forget))

        async def body() -> AsyncIterator[bytes]:
            try:
                yield b""   # the headers go out now; the CLI starts the container next
                code = await waiting
                # dockerd: no Error once the container is gone (a --rm container that
                # could not start: docker run prints the start error alone)
                error = None if condition == "removed" else \
                    container.state.get("Error") or None
                yield json.dumps({"StatusCode": code,
                                  "Error": {"Message": error} if error else None}).encode()
            finally:
                waiting.cancel()
                forget()

        return Response(200, headers={"Content-Type": "application/json"}, stream=body())

    async def remove(request: Request) -> Response:
        await containers.remove(request.params["id"], force=request.flag("force"),
                                volumes=request.flag("v"))
        return Response(204)

    async def freeze(request: Request, paused: bool) -> Response:
        container = containers.get(request.params["id"])
        await engine.monitor.call("pause" if paused else "resume", id=container.id)
        container.set_state(Paused=paused)
        if paused:      # no probes in a frozen container; they go on once it thaws
            engine.health.stop(container.id)
        else:
            engine.health.resume(container)
        engine.events.publish("container", "pause" if paused else "unpause", container, {})
        return Response(204)

    async def pause(request: Request) -> Response:
        return await freeze(request, True)

    async def unpause(request: Request) -> Response:
        return await freeze(request, False)

    async def rename(request: Request) -> Response:
        from longboat.engine import names
        from longboat.errors import Conflict

        container = containers.get(request.params["id"])
        new = names.check(request.arg("name") or "")
        taken = containers.names_in_use()
        if new in taken and taken[new] != container.id:
            raise Conflict(f'Conflict. The container name "/{new}" is already in use by '
                           f'container "{taken[new]}". You have to remove (or rename) that '
                           "container to be able to reuse that name.")
        old = container.name
        container.data["Name"] = "/" + new
        container.save()
        engine.events.publish("container", "rename", container, {"oldName": "/" + old})
        return Response(204)

    async def resize(request: Request) -> Response:
        container = containers.get(request.params["id"])
        if container.running:
            await engine.monitor.call("resize", id=container.id,
                                      height=int(request.arg("h") or 0),
                                      width=int(request.arg("w") or 0))
        return Response(200)

    async def prune(request: Request) -> Response:
        keep = prune_filter(_filters(request))
        deleted = []
        for c in list(containers.by_id.values()):
            if not c.running and keep(c.data):
                await containers.remove(c.id)
                deleted.append(c.id)
        return Response.json({"ContainersDeleted": deleted or None, "SpaceReclaimed": 0})

    async def logs(request: Request) -> Response:
        from longboat.engine import logs as logfile

        container = containers.get(request.params["id"])
        stdout, stderr = request.flag("stdout"), request.flag("stderr")
        if not (stdout or stderr):
            raise InvalidArgument("You must choose at least one stream")
        tail_arg = request.arg("tail") or "all"
        tail = None if tail_arg == "all" else int(tail_arg)
        since_arg, until_arg = request.arg("since") or "0", request.arg("until") or "0"
        since = logfile.parse_time(since_arg) if since_arg != "0" else None
        until = logfile.parse_time(until_arg) if until_arg != "0" else None
        timestamps = request.flag("timestamps")
        tty = bool(container.config.get("Tty"))

        async def body() -> AsyncIterator[bytes]:
            if request.flag("follow"):
                source = logfile.follow(container.log_path, stdout=stdout, stderr=stderr,
                                        since=since, until=until, tail=tail,
                                        timestamps=timestamps,
                                        running=lambda: container.running)
                async for stream, data in source:
                    yield data if tty else logfile.frame(stream, data)
            else:
                for stream, data in logfile.read(container.log_path, stdout=stdout,
                                                 stderr=stderr, since=since, until=until,
                                                 tail=tail, timestamps=timestamps):
                    yield data if tty else logfile.frame(stream, data)

        return Response(200, headers={"Content-Type": RAW_STREAM}, stream=body())

    async def attach(request: Request) -> Response:
        container = containers.get(request.params["id"])
        upgrade = request.headers.get("upgrade", "").lower() == "tcp"
        headers = {"Content-Type": RAW_STREAM}
        if upgrade:
            headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})

        async def joined() -> None:
            reader, writer = request.hijack()
            attachment = Attachment(reader, writer, request.flag("stdin"),
                                    request.flag("stdout"), request.flag("stderr"))
            if container.running:
                await engine.attachments.join(container.id, attachment)
            else:
                engine.attachments.wait_for_start(container.id, attachment)
            await attachment.done.wait()

        return Response(101 if upgrade else 200, headers=headers, hijack=joined)

    async def events(request: Request) -> Response:
        from longboat.engine.logs import parse_time

        since = parse_time(request.arg("since") or "") if request.arg("since") else None
        until = parse_time(request.arg("until") or "") if request.arg("until") else None
        filters = _filters(request)

        async def body() -> AsyncIterator[bytes]:
            yield b""
            async for event in engine.events.stream(since, until, filters):
                yield json.dumps(event).encode() + b"\n"

        return Response(200, headers={"Content-Type": "application/json"}, stream=body())

    async def exec_create(request: Request) -> Response:
        container = containers.get(request.params["id"])
        record = engine.execs.create(container, await request.json() or {})
        engine.events.publish("container", "exec_create: " + " ".join(record.config["Cmd"]),
                              container, {"execID": record.id})
        return Response.json({"Id": record.id}, 201)

    async def exec_start(request: Request) -> Response:
        record = engine.execs.get(request.params["id"])
        body = await request.json() or {}
        if record.running or record.exit_code is not None:
            from longboat.errors import Conflict

            raise Conflict(f"Error: Exec command {record.id} has already run")
        if not record.container.running:
            from longboat.errors import Conflict

            raise Conflict(f"Container {record.container.id} is not running")
        process = await asyncio.get_running_loop().run_in_executor(None, record.process)
        if body.get("Tty") is not None:
            process["terminal"] = bool(body["Tty"])
        fields = {"id": record.container.id, "exec_id": record.id, "process": process}
        engine.events.publish("container", "exec_start: " + " ".join(record.config["Cmd"]),
                              record.container, {"execID": record.id})
        config = record.config
        record.release = True
        if body.get("Detach"):
            reply = await engine.monitor.call("exec", stdin=False, **fields)
            # (its exit may have been handled already, while the reply was on its way)
            record.running, record.pid = record.exit_code is None, int(reply["pid"])
            return Response(200)
        upgrade = request.headers.get("upgrade", "").lower() == "tcp"
        headers = {"Content-Type": RAW_STREAM}
        if upgrade:
            headers.update({"Connection": "Upgrade", "Upgrade": "tcp"})

        async def joined() -> None:
            reader, writer = request.hijack()
            attachment = Attachment(reader, writer, bool(config.get("AttachStdin")),
                                    bool(config.get("AttachStdout", True)),
                                    bool(config.get("AttachStderr", True)))
            record.streaming = True
            try:
                reply = await engine.attachments.relay(attachment, "exec", attach=True,
                                                       **fields)
            except Exception as exc:
                # as Docker: the failure goes to the client's stderr, the code to inspect
                from longboat.engine.logs import frame

                text = f"OCI runtime exec failed: {getattr(exc, 'message', exc)}\r\n".encode()
                writer.write(text if process["terminal"] else frame(2, text))
                writer.close()
                engine.execs.exited(record.id, 126)
                engine.execs.stream_ended(record)
                return
            record.running, record.pid = record.exit_code is None, int(str(reply["pid"]))
            try:
                await attachment.done.wait()
            finally:
                engine.execs.stream_ended(record)

        return Response(101 if upgrade else 200, headers=headers, hijack=joined)

    async def exec_inspect(request: Request) -> Response:
        record = engine.execs.get(request.params["id"])
        if record.running:
            # the monitor knows first: the client asks right after its stream ends
            reply = await engine.monitor.call("state", id=record.id)
            process = reply.get("process") or {}
            if process and not process.get("running"):
                engine.execs.exited(record.id, int(process["exit_code"]))
        return Response.json(record.inspect())

    async def exec_resize(request: Request) -> Response:
        record = engine.execs.get(request.params["id"])
        try:   # it may not have started yet: the client resizes right after start
            await engine.monitor.call("resize", id=record.id, height=int(request.arg("h") or 0),
                                      width=int(request.arg("w") or 0))
        except LongboatError:
            pass
        return Response(201)

    router.add("POST", "/containers/{id}/exec", exec_create)
    router.add("POST", "/exec/{id}/start", exec_start)
    router.add("GET", "/exec/{id}/json", exec_inspect)
    router.add("POST", "/exec/{id}/resize", exec_resize)
    router.add("POST", "/containers/create", create)
    router.add("GET", "/containers/json", list_containers)
    router.add("POST", "/containers/prune", prune)
    router.add("GET", "/containers/{id}/json", inspect)
    router.add("POST", "/containers/{id}/start", start)
    router.add("POST", "/containers/{id}/stop", stop)
    router.add("POST", "/containers/{id}/restart", restart)
    router.add("POST", "/containers/{id}/kill", kill)
    router.add("POST", "/containers/{id}/wait", wait)
    router.add("POST", "/containers/{id}/pause", pause)
    router.add("POST", "/containers/{id}/unpause", unpause)
    router.add("POST", "/containers/{id}/rename", rename)
    router.add("POST", "/containers/{id}/resize", resize)
    router.add("POST", "/containers/{id}/attach", attach)
    router.add("GET", "/containers/{id}/logs", logs)
    router.add("DELETE", "/containers/{id}", remove)
    router.add("GET", "/events", events)


def _matches(container: Any, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "name" and not any(v.lstrip("/") in container.name for v in values):
            return False
        if key == "id" and not any(container.id.startswith(v) for v in values):
            return False
        if key == "status" and container.state["Status"] not in values:
            return False
        if key == "health":
            from longboat.engine.health import filter_status

            if filter_status(container.state) not in values:
                return False
        if key == "exited" and (container.running or
                                str(container.state["ExitCode"]) not in values):
            return False
        if key == "ancestor" and not any(v in (container.data["ImageName"],
                                               container.data["Image"]) for v in values):
            return False
        if key == "label":
            labels = container.config.get("Labels") or {}
            for wanted in values:
                k, eq, v = wanted.partition("=")
                if k not in labels or (eq and labels[k] != v):
                    return False
    return True
