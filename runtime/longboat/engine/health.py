"""Health checks: Docker's HEALTHCHECK, run by the engine while a container runs.

A container's check is its image's ``Healthcheck`` merged with its own (a field the
container sets wins; a zero field inherits), as Docker 20.10 merges them. ``["NONE"]``
(or no check) means none. Every ``Interval`` after the previous probe ended (the first one
``Interval`` after the start) the probe runs as an exec in the container, through the
monitor like ``docker exec`` (events ``exec_create``, ``exec_start``, ``exec_die``), its
stdout and stderr kept together up to 4096 bytes. A probe that runs longer than
``Timeout`` is killed and counts as a failure (exit code -1). ``State.Health`` keeps the
status (``starting`` until the first success or until ``Retries`` failures in a row after
the start period; then ``healthy``/``unhealthy``), the failing streak and the last five
results; a change of status is a ``health_status: <status>`` event. Checks stop when the
container exits, is stopped, paused or removed (the status then reads ``unhealthy``, as
Docker 20.10 leaves it, without an event), go on when it is unpaused, and start again
(status ``starting``) when it starts or when the engine restarts with it still running
(live restore).

One difference from Docker 20.10, on purpose: the timeout runs from the moment the probe
process has started (as Docker 25 does), so a slow exec start on a loaded host is not a
probe failure; starting the exec has its own limit (30 s), as in Docker 25.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import struct
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine
    from longboat.engine.execs import Exec

DEFAULT_INTERVAL = 30.0
DEFAULT_TIMEOUT = 30.0
DEFAULT_START_PERIOD = 0.0
DEFAULT_RETRIES = 3
MAX_OUTPUT = 4096
MAX_LOG = 5
EXEC_START_LIMIT = 30.0     # seconds for the exec to start at all
KILL_WAIT = 10.0            # seconds a killed probe is given to be reaped

STARTING, HEALTHY, UNHEALTHY = "starting", "healthy", "unhealthy"
STATUSES = (STARTING, HEALTHY, UNHEALTHY, "none")   # what ps --filter health= accepts

log = logging.getLogger("longboat.engine.health")


# -- the check's configuration ---------------------------------------------------------------
def merged_check(config: dict[str, Any], image_config: dict[str, Any]
                 ) -> dict[str, Any] | None:
    """Docker's merge of the image's Healthcheck into the container's: the container's
    when the image has none; else field by field, empty/zero fields inherited."""
    own = config.get("Healthcheck")
    inherited = image_config.get("Healthcheck")
    if not isinstance(inherited, dict):
        return dict(own) if isinstance(own, dict) else None
    if not isinstance(own, dict):
        return dict(inherited)
    merged = dict(own)
    for key in ("Test", "Interval", "Timeout", "StartPeriod", "Retries"):
        if not merged.get(key):
            merged[key] = inherited.get(key)
    return merged


class Settings:
    """A check ready to run: its command and its timings in seconds."""

    def __init__(self, command: list[str], interval: float, timeout: float,
                 start_period: float, retries: int) -> None:
        self.command = command
        self.interval = interval
        self.timeout = timeout
        self.start_period = start_period
        self.retries = retries

    @classmethod
    def of(cls, check: dict[str, Any] | None, shell: list[str] | None
           ) -> Settings | None:
        """None when there is nothing to run: no check, ``NONE``, an unknown kind, or no
        command."""
        if not check:
            return None
        test = check.get("Test") or []
        if not isinstance(test, list) or not test:
            return None
        kind, args = test[0], [str(a) for a in test[1:]]
        if kind == "CMD-SHELL":
            args = list(shell or ["/bin/sh", "-c"]) + args
        elif kind != "CMD":
            if kind != "NONE":
                log.warning("unknown health check type %r (expected CMD)", kind)
            return None
        if not args:
            return None

        def seconds(key: str, default: float) -> float:
            value = check.get(key) or 0
            return int(value) / 1e9 if value else default

        retries = int(check.get("Retries") or 0)
        return cls(args, seconds("Interval", DEFAULT_INTERVAL),
                   seconds("Timeout", DEFAULT_TIMEOUT),
                   seconds("StartPeriod", DEFAULT_START_PERIOD),
                   retries if retries > 0 else DEFAULT_RETRIES)


def validate(check: Any) -> None:
    """The create-time checks of Docker 20.10 (400 on failure)."""
    from longboat.errors import InvalidArgument

    if check is None:
        return
    if not isinstance(check, dict):
        raise InvalidArgument("Healthcheck must be an object")
    test = check.get("Test")
    if test is not None and (not isinstance(test, list) or
                             not all(isinstance(t, str) for t in test)):
        raise InvalidArgument("Healthcheck.Test must be a list of strings")
    for key in ("Interval", "Timeout", "StartPeriod"):
        value = check.get(key) or 0
        if not isinstance(value, int):
            raise InvalidArgument(f"Healthcheck.{key} must be an integer (nanoseconds)")
        if value != 0 and value < 1_000_000:
            raise InvalidArgument(f"{key} in Healthcheck cannot be less than 1ms")
    retries = check.get("Retries") or 0
    if not isinstance(retries, int):
        raise InvalidArgument("Healthcheck.Retries must be an integer")
    if retries < 0:
        raise InvalidArgument("Retries in Healthcheck cannot be negative")


def go_duration(seconds: float) -> str:
    """Go's ``time.Duration.String()``: 200ms, 1.5s, 1m30s, 1h0m0s."""
    ns = round(seconds * 1e9)
    if ns == 0:
        return "0s"
    sign, ns = ("-", -ns) if ns < 0 else ("", ns)
    if ns < 1_000_000_000:
        for unit, size in (("ms", 1_000_000), ("µs", 1_000), ("ns", 1)):
            if ns >= size:
                return sign + _fraction(ns, size) + unit
    hours, rest = divmod(ns, 3_600_000_000_000)
    minutes, rest = divmod(rest, 60_000_000_000)
    text = _fraction(rest, 1_000_000_000) + "s"
    if hours:
        return f"{sign}{hours}h{minutes}m{text}"
    if minutes:
        return f"{sign}{minutes}m{text}"
    return sign + text


def _fraction(value: int, unit: int) -> str:
    whole, frac = divmod(value, unit)
    if not frac:
        return str(whole)
    digits = len(str(unit)) - 1
    return f"{whole}.{frac:0{digits}d}".rstrip("0")


# -- the status, as pure logic ----------------------------------------------------------------
class Output:
    """A probe's output: the first 4096 bytes, "..." appended when there was more."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.truncated = False

    def write(self, chunk: bytes) -> None:
        room = MAX_OUTPUT - len(self.data)
        if room > 0:
            self.data += chunk[:room]
        if len(chunk) > max(room, 0):
            self.truncated = True

    def text(self) -> str:
        return self.data.decode(errors="replace") + ("..." if self.truncated else "")


class Health:
    """``State.Health`` of one container and its transitions (Docker's handleProbeResult).
    Works on the dict stored in the container's state."""

    def __init__(self, record: dict[str, Any]) -> None:
        self.record = record

    @staticmethod
    def reset(state: dict[str, Any]) -> Health:
        """At (re)start and live restore: starting, no failing streak; the log is kept,
        as Docker keeps it."""
        record = state.get("Health")
        if not isinstance(record, dict):
            record = {"Log": []}
        record.update(Status=STARTING, FailingStreak=0)
        record.setdefault("Log", [])
        state["Health"] = record
        return Health(record)

    @property
    def status(self) -> str:
        return str(self.record.get("Status") or UNHEALTHY)

    def record_result(self, result: dict[str, Any], *, since_start: float,
                      start_period: float, retries: int) -> str | None:
        """Add a probe's result (``since_start``: seconds from the container's start to
        the probe's start); the new status if it changed."""
        before = self.status
        entries = list(self.record.get("Log") or [])
        entries.append(result)
        self.record["Log"] = entries[-MAX_LOG:]
        if result["ExitCode"] == 0:
            self.record["FailingStreak"] = 0
            self.record["Status"] = HEALTHY
        elif before != STARTING or since_start >= start_period:
            # failures in the start period do not count until a first success
            streak = int(self.record.get("FailingStreak") or 0) + 1
            self.record["FailingStreak"] = streak
            if streak >= retries:
                self.record["Status"] = UNHEALTHY
        return self.status if self.status != before else None


def status_suffix(state: dict[str, Any]) -> str:
    """What ps adds after "Up 5 seconds": " (healthy)", " (health: starting)"."""
    record = state.get("Health")
    if not isinstance(record, dict) or not record.get("Status"):
        return ""
    status = record["Status"]
    return f" (health: {status})" if status == STARTING else f" ({status})"


def filter_status(state: dict[str, Any]) -> str:
    """The value ``--filter health=`` matches: ``none`` without a check."""
    record = state.get("Health")
    if not isinstance(record, dict):
        return "none"
    return str(record.get("Status") or UNHEALTHY)


def _frames(buffer: bytearray, output: Output) -> None:
    """Move the complete 8-byte-header frames of ``buffer`` into ``output``."""
    while len(buffer) >= 8:
        size = struct.unpack(">I", bytes(buffer[4:8]))[0]
        if len(buffer) < 8 + size:
            return
        output.write(bytes(buffer[8:8 + size]))
        del buffer[:8 + size]


# -- running the checks -----------------------------------------------------------------------
class HealthChecks:
    """One task per running container with a check."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.tasks: dict[str, asyncio.Task[None]] = {}
        self.probes: set[str] = set()     # exec ids of the probes running now

    def settings(self, container: Container) -> Settings | None:
        try:
            image = self.engine.images.get(container.data["Image"])
            image_config: dict[str, Any] = image.config.get("config") or {}
        except Exception:
            image_config = {}
        config = container.config
        return Settings.of(merged_check(config, image_config),
                           config.get("Shell") or image_config.get("Shell"))

    def start(self, container: Container) -> None:
        """At start and live restore: status ``starting``, the checks from now on. Never
        raises: a container that started stays started."""
        try:
            settings = self.settings(container)
            if settings is None:
                return
            self.stop(container.id)
            Health.reset(container.state)
            container.save()
            self._launch(container, settings)
        except Exception:
            log.exception("cannot start the health checks of %s", container.id[:12])

    def restore(self, container: Container) -> None:
        """A running container found at engine start (or monitor reconnection); a paused
        one gets its checks at unpause, as Docker's restore."""
        if container.id not in self.tasks and not container.state.get("Paused"):
            self.start(container)

    def resume(self, container: Container) -> None:
        """Unpaused: the checks go on (no reset, as Docker)."""
        settings = self.settings(container)
        if settings is not None and container.id not in self.tasks and \
                isinstance(container.state.get("Health"), dict):
            self._launch(container, settings)

    def stop(self, container_id: str) -> None:
        """Exit, stop, kill, rm, pause: no more probes. As Docker 20.10, checks that were
        running leave the status ``unhealthy`` (no event) until the next start."""
        task = self.tasks.pop(container_id, None)
        if task is None:
            return
        task.cancel()
        container = self.engine.containers.by_id.get(container_id)
        record = container.state.get("Health") if container is not None else None
        if container is not None and isinstance(record, dict):
            record["Status"] = UNHEALTHY
            container.save()

    def close(self) -> None:
        """The engine stops: the probes stop, the containers' state stays as it was
        (they may keep running: live restore starts the checks again)."""
        for task in self.tasks.values():
            task.cancel()
        self.tasks.clear()

    def _launch(self, container: Container, settings: Settings) -> None:
        task = asyncio.get_running_loop().create_task(self._checks(container, settings))
        self.tasks[container.id] = task

        def done(finished: asyncio.Task[None]) -> None:
            if self.tasks.get(container.id) is finished:
                del self.tasks[container.id]

        task.add_done_callback(done)

    async def _checks(self, container: Container, settings: Settings) -> None:
        from longboat.image.archive import unix_time

        while True:
            await asyncio.sleep(settings.interval)
            if not container.running or container.state.get("Paused") or \
                    container.id not in self.engine.containers.by_id:
                return
            begun = time.time()
            try:
                result = await self._probe(container, settings)
            except asyncio.CancelledError:
                raise
            except Exception as exc:    # the check goes on; this probe failed
                log.warning("health check of %s: %s", container.id[:12], exc)
                result = {"ExitCode": -1, "Output": str(getattr(exc, "message", exc))}
            if not container.running or container.id not in self.engine.containers.by_id:
                return
            from longboat.engine.containers import rfc3339

            entry = {"Start": rfc3339(begun), "End": rfc3339(time.time()),
                     "ExitCode": result["ExitCode"], "Output": result["Output"]}
            record = container.state.get("Health")
            if not isinstance(record, dict):
                return
            changed = Health(record).record_result(
                entry, since_start=begun - unix_time(container.state["StartedAt"]),
                start_period=settings.start_period, retries=settings.retries)
            container.save()
            if changed is not None:
                self.engine.events.publish("container", f"health_status: {changed}",
                                           container, {})

    async def _probe(self, container: Container, settings: Settings) -> dict[str, Any]:
        """One run of the check as an exec: {"ExitCode", "Output"}."""
        engine = self.engine
        command = settings.command
        record = engine.execs.create(container, {
            "Cmd": command, "AttachStdout": True, "AttachStderr": True, "Tty": False,
            "Privileged": False})
        self.probes.add(record.id)
        text = command[0] + " " + " ".join(command[1:])
        engine.events.publish("container", "exec_create: " + text, container,
                              {"execID": record.id})
        try:
            return await self._run(record, settings, text)
        finally:
            engine.execs.by_id.pop(record.id, None)
            self.probes.discard(record.id)
            with contextlib.suppress(Exception):
                await engine.monitor.call("forget", id=record.id)

    async def _run(self, record: Exec, settings: Settings, text: str) -> dict[str, Any]:
        engine = self.engine
        container = record.container
        process = await asyncio.get_running_loop().run_in_executor(None, record.process)
        engine.events.publish("container", "exec_start: " + text, container,
                              {"execID": record.id})
        try:
            reply, reader, writer = await asyncio.wait_for(engine.monitor.stream(
                "exec", attach=True, stdin=False, stdout=True, stderr=True,
                id=container.id, exec_id=record.id, process=process), EXEC_START_LIMIT)
        except TimeoutError:
            return {"ExitCode": -1, "Output": "timed out starting health check for "
                                              f"container {container.id}"}
        except Exception as exc:
            engine.execs.exited(record.id, 126)
            self._died(record, 126)
            return {"ExitCode": -1, "Output": "OCI runtime exec failed: "
                                              f"{getattr(exc, 'message', exc)}"}
        record.running, record.pid = True, int(reply["pid"])
        output = Output()

        async def read() -> None:
            buffer = bytearray()
            while chunk := await reader.read(65536):
                buffer += chunk
                _frames(buffer, output)

        try:
            await asyncio.wait_for(read(), settings.timeout)
            timed_out = False
        except TimeoutError:
            timed_out = True
        finally:
            writer.close()
        if timed_out:
            await self._kill(record)
            code = await self._exit_code(record, wait=KILL_WAIT)
            self._died(record, code if code is not None else -1)
            return {"ExitCode": -1, "Output": "Health check exceeded timeout "
                                              f"({go_duration(settings.timeout)})"}
        code = await self._exit_code(record, wait=KILL_WAIT)
        if code is None:
            return {"ExitCode": -1, "Output": "healthcheck for container "
                                              f"{container.id} has no exit code"}
        self._died(record, code)
        return {"ExitCode": code, "Output": output.text()}

    def _died(self, record: Exec, code: int) -> None:
        self.engine.execs.exited(record.id, code)
        self.engine.events.publish("container", "exec_die", record.container,
                                   {"execID": record.id, "exitCode": str(code)})

    async def _kill(self, record: Exec) -> None:
        """SIGKILL to the probe, through the monitor (which knows whether it still runs,
        so no recycled pid is hit)."""
        with contextlib.suppress(Exception):
            await self.engine.monitor.call("signal", id=record.id, signal="SIGKILL")

    async def _exit_code(self, record: Exec, *, wait: float) -> int | None:
        deadline = time.monotonic() + wait
        while True:
            try:
                reply = await self.engine.monitor.call("state", id=record.id)
            except Exception:
                return None
            process = reply.get("process") or {}
            if process and not process.get("running"):
                return int(process["exit_code"])
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.02)
