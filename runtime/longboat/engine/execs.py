"""Processes started in running containers (``docker exec``): their records, and the
OCI process each one runs, built from the container's own process settings."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import secrets

from longboat.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.containers import Container
    from longboat.engine.monitor_client import MonitorClient


class Exec:
    def __init__(self, container: Container, config: dict[str, Any]) -> None:
        self.id = secrets.token_hex(32)
        self.container = container
        self.config = config
        self.running = False
        self.exit_code: int | None = None
        self.pid = 0
        # started by ``docker exec``: the monitor's record of it goes once its exit code
        # is ours and its output has reached its client (health probes drop their own)
        self.release = False
        self.streaming = False

    def inspect(self) -> dict[str, Any]:
        cmd = list(self.config.get("Cmd") or [])
        return {"ID": self.id, "Running": self.running, "ExitCode": self.exit_code,
                "ProcessConfig": {"tty": bool(self.config.get("Tty")),
                                  "entrypoint": cmd[0] if cmd else "",
                                  "arguments": cmd[1:],
                                  "privileged": bool(self.config.get("Privileged")),
                                  "user": self.config.get("User") or ""},
                "OpenStdin": bool(self.config.get("AttachStdin")),
                "OpenStderr": bool(self.config.get("AttachStderr")),
                "OpenStdout": bool(self.config.get("AttachStdout")),
                "CanRemove": False, "ContainerID": self.container.id,
                "DetachKeys": self.config.get("DetachKeys") or "", "Pid": self.pid}

    def process(self) -> dict[str, Any]:
        """The OCI process: the container's (capabilities, rlimits, no_new_privs, env)
        with this exec's command, env, user, working directory and terminal."""
        with open(os.path.join(self.container.bundle, "config.json")) as f:
            base = dict(json.load(f)["process"])
        config = self.config
        process = dict(base, terminal=bool(config.get("Tty")),
                       args=list(config["Cmd"]),
                       env=_merge_env(base.get("env") or [], config.get("Env") or []))
        if config.get("WorkingDir"):
            process["cwd"] = config["WorkingDir"]
        if config.get("User"):
            from longboat.engine.bundle_user import resolve_user

            user = resolve_user(self.container.rootfs, str(config["User"]), [])
            process["user"] = {"uid": user.uid, "gid": user.gid,
                               "additionalGids": user.additional_gids}
        if config.get("Privileged"):
            from longboat.linux import caps

            everything = caps.from_mask(caps.ALL_MASK())
            process["capabilities"] = {k: everything for k in
                                       ("bounding", "effective", "permitted")}
        return process


def _merge_env(base: list[str], extra: list[str]) -> list[str]:
    env = {e.partition("=")[0]: e for e in base}
    for item in extra:
        env[item.partition("=")[0]] = item
    return list(env.values())


class Execs:
    def __init__(self, monitor: MonitorClient | None = None) -> None:
        self.by_id: dict[str, Exec] = {}
        self.monitor = monitor
        self._forgetting: set[asyncio.Task[None]] = set()

    def ids_of(self, container_id: str) -> list[str] | None:
        """Docker's ``ExecIDs``: the container's execs not yet exited (created or
        running), None when there are none."""
        ids = [e.id for e in self.by_id.values()
               if e.container.id == container_id and e.exit_code is None]
        return ids or None

    def create(self, container: Container, config: dict[str, Any]) -> Exec:
        if not isinstance(config, dict):
            raise InvalidArgument("the request body must be a JSON object")
        cmd = config.get("Cmd")
        if not isinstance(cmd, list) or not cmd or not all(isinstance(a, str) for a in cmd):
            raise InvalidArgument("No exec command specified")
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.state.get("Paused"):
            raise Conflict(f"Container {container.id} is paused, unpause the container "
                           "before exec")
        record = Exec(container, config)
        self.by_id[record.id] = record
        return record

    def get(self, exec_id: str) -> Exec:
        try:
            return self.by_id[exec_id]
        except KeyError:
            raise NotFound(f"No such exec instance: {exec_id}") from None

    def exited(self, exec_id: str, code: int) -> None:
        record = self.by_id.get(exec_id)
        if record is not None:
            record.running = False
            record.exit_code = code
            self._release(record)

    def drop_container(self, container_id: str) -> None:
        """A removed container's execs go (inspect: "No such exec instance", as
        Docker's)."""
        for exec_id in [e.id for e in self.by_id.values()
                        if e.container.id == container_id]:
            del self.by_id[exec_id]

    def stream_ended(self, record: Exec) -> None:
        """Its attached client has all of its output."""
        record.streaming = False
        self._release(record)

    def _release(self, record: Exec) -> None:
        """Once the exit code is ours (inspect answers from this record) and no client
        still reads its output, the monitor forgets the exec: its record and exit file
        do not pile up until the container goes."""
        if not record.release or record.exit_code is None or record.streaming or \
                self.monitor is None:
            return
        record.release = False
        monitor = self.monitor

        async def forget() -> None:
            with contextlib.suppress(Exception):
                await monitor.call("forget", id=record.id)

        try:
            task = asyncio.get_running_loop().create_task(forget())
        except RuntimeError:
            return      # no loop (tests of the table alone)
        self._forgetting.add(task)
        task.add_done_callback(self._forgetting.discard)
