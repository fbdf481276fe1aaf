"""The engine's state on this host, and the one place that wires its parts together:
the image store, the snapshotter, the container monitor, containers and events."""

from __future__ import annotations

import os
import socket
import uuid

from longboat.engine.attach import Attachments
from longboat.engine.config import Settings
from longboat.engine.events import Events
from longboat.engine.monitor_client import MonitorClient
from longboat.image.snapshot import Snapshotter
from longboat.image.store import ImageStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        os.makedirs(settings.data_root, mode=0o700, exist_ok=True)
        os.chmod(settings.data_root, 0o700)   # private whatever umask made it
        self.images = ImageStore(settings.image_root())
        self.images.content.clean_ingest()
        self.snapshots = Snapshotter(os.path.join(settings.data_root, "snapshots"))
        self.monitor = MonitorClient(settings.exec_root)
        self.attachments = Attachments(self.monitor)
        self.events = Events()
        from longboat.engine.execs import Execs

        self.execs = Execs(self.monitor)
        from longboat.engine.health import HealthChecks

        self.health = HealthChecks(self)
        self.id = self._engine_id()
        from longboat.engine.containers import Containers
        from longboat.engine.endpoints import ContainerNetworks
        from longboat.engine.networks import Networks

        self.networks = Networks(self)
        self.container_networks = ContainerNetworks(self)

        from longboat.volume import containers as volume_mounts
        from longboat.volume.store import VolumeStore

        self.volumes = VolumeStore(os.path.join(settings.data_root, "volumes"),
                                   volume_mounts.event_publisher(self.events))
        self.containers = Containers(self)
        volume_mounts.restore(self.volumes, self.containers.by_id.values())

    async def start(self) -> None:
        """Bring up (or find) the monitor, follow its exit events, then re-adopt the
        containers that ran when we stopped (subscribing first, so no exit is missed)."""
        import asyncio

        await self.networks.start()
        self._events_task = asyncio.create_task(self._follow_exits(await self._subscribe()))
        await self.containers.restart_on_boot()
        from longboat.build import leftovers

        await leftovers.clean(self)   # what builds left when an earlier engine died

    async def stop(self) -> None:
        """A clean stop (SIGTERM): running containers keep their networking (live
        restore); with none running, our bridges and firewall table go too."""
        import asyncio
        import functools

        self.container_networks.close()
        self.health.close()
        running = any(c.running for c in self.containers.by_id.values())
        await asyncio.get_running_loop().run_in_executor(None, functools.partial(
            self.networks.shutdown, anything_running=running))

    async def _subscribe(self) -> tuple[Any, Any]:
        import asyncio

        await asyncio.get_running_loop().run_in_executor(None, self.monitor.ensure_running)
        _, reader, writer = await self.monitor.stream("events")
        await self.containers.restore()
        await self._restore_execs()
        return reader, writer

    async def _restore_execs(self) -> None:
        """After a reconnection: execs that ran under a monitor that died are gone from
        the new one (their stdio and exit status died with it): exited, code 137."""
        for record in [r for r in self.execs.by_id.values() if r.running]:
            reply = await self.monitor.call("state", id=record.id)
            process = reply.get("process") or {}
            if not process.get("running"):
                self._exec_exited({"key": record.id,
                                   "exit_code": process.get("exit_code", 137)})

    async def _follow_exits(self, stream: tuple[Any, Any]) -> None:
        import asyncio
        import json
        import logging

        log = logging.getLogger("longboat.engine")
        while True:
            reader, writer = stream
            try:
                while line := await reader.readline():
                    event = json.loads(line)
                    if event.get("event") != "exit":
                        continue
                    if event["key"] == event["container"]:
                        await self.containers.on_exit(event)
                    else:
                        self._exec_exited(event)
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("error following the monitor's events")
            finally:
                writer.close()
            log.warning("lost the monitor's event stream; reconnecting")
            while True:
                await asyncio.sleep(0.5)
                try:
                    stream = await self._subscribe()
                    break
                except Exception:
                    log.exception("cannot reach the container monitor")

    def _exec_exited(self, event: dict[str, Any]) -> None:
        """An exec's exit: its record, and Docker's ``exec_die`` event (health probes
        publish their own, once their output is read)."""
        record = self.execs.by_id.get(event["key"])
        self.execs.exited(event["key"], int(event["exit_code"]))
        if record is not None and record.id not in self.health.probes:
            self.events.publish("container", "exec_die", record.container, {
                "execID": record.id, "exitCode": str(event["exit_code"])})

    def _engine_id(self) -> str:
        path = os.path.join(self.settings.data_root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            value = str(uuid.uuid4())
            with open(path + ".tmp", "w") as f:
                f.write(value)
            os.rename(path + ".tmp", path)
            return value

    @property
    def name(self) -> str:
        return socket.gethostname()

    def tmpdir(self) -> str:
        path = os.path.join(self.settings.data_root, "tmp")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
