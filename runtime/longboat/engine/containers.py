"""Containers: their records, their lifecycle, and the link to the monitor that runs
them.

A container's record (``DATA_ROOT/containers/<id>/container.json``, written atomically)
holds what was asked for (Docker's Config and HostConfig, as given) and its state in
Docker's words. Its root filesystem is a snapshot over its image's layers, mounted at
start and unmounted once it has exited; its bundle (config.json) is written at start
from the record, the image and the host. The monitor runs it; its exit reaches us as an
event, or, if it happened while we were down, from the monitor's exit record when we
start again.
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import shutil
import time

from longboat.engine import names, ports
from longboat.errors import Conflict, InvalidArgument, NotFound, NotModified
from longboat.volume import containers as volume_mounts
from longboat.volume.mountpoints import public as public_mount

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.engine import Engine

ZERO_TIME = "0001-01-01T00:00:00Z"


def now_rfc3339() -> str:
    return rfc3339(time.time())


def rfc3339(when: float) -> str:
    seconds = int(when)
    nanos = min(round((when - seconds) * 1e9), 999_999_999)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanos:09d}Z"


class Container:
    def __init__(self, data: dict[str, Any], directory: str) -> None:
        self.data = data
        self.dir = directory

    # -- fields -------------------------------------------------------------------------
    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"]).lstrip("/")

    @property
    def config(self) -> dict[str, Any]:
        return dict(self.data["Config"])

    @property
    def host_config(self) -> dict[str, Any]:
        return dict(self.data["HostConfig"])

    @property
    def state(self) -> dict[str, Any]:
        state: dict[str, Any] = self.data["State"]
        return state

    @property
    def running(self) -> bool:
        return bool(self.state["Running"])

    @property
    def bundle(self) -> str:
        return os.path.join(self.dir, "bundle")

    @property
    def rootfs(self) -> str:
        return os.path.join(self.bundle, "rootfs")

    @property
    def log_path(self) -> str:
        return os.path.join(self.dir, f"{self.id}-json.log")

    def save(self) -> None:
        path = os.path.join(self.dir, "container.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.data, f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)

    def set_state(self, **changes: Any) -> None:
        state = self.state
        state.update(changes)
        if state["Restarting"]:
            state["Status"] = "restarting"
        elif state["Running"]:
            state["Status"] = "paused" if state["Paused"] else "running"
        else:
            state["Status"] = "exited" if state["StartedAt"] != ZERO_TIME else "created"
        self.save()

    # -- Docker's views -----------------------------------------------------------------
    def inspect(self) -> dict[str, Any]:
        public = {k: v for k, v in self.data.items() if not k.startswith("_")}
        return dict(public, LogPath=self.log_path, ResolvConfPath=os.path.join(
            self.dir, "resolv.conf"), HostnamePath=os.path.join(self.dir, "hostname"),
            HostsPath=os.path.join(self.dir, "hosts"), GraphDriver={
                "Name": "overlay", "Data": {"MergedDir": self.rootfs}})

    def summary(self) -> dict[str, Any]:
        config = self.config
        command = " ".join([self.data["Path"], *self.data["Args"]]).strip()
        return {"Id": self.id, "Names": ["/" + self.name], "Image": self.data["ImageName"],
                "ImageID": self.data["Image"], "Command": command,
                "Created": int(self.data.get("CreatedUnix", 0)),
                "Ports": ports.summary_from_inspect(
                    self.data["NetworkSettings"].get("Ports") or {}),
                "Labels": config.get("Labels") or {}, "State": self.state["Status"],
                "Status": status_text(self.state), "HostConfig": {
                    "NetworkMode": self.host_config.get("NetworkMode") or "default"},
                "NetworkSettings": {"Networks": dict(
                    self.data["NetworkSettings"].get("Networks") or {})},
                "Mounts": list(self.data.get("Mounts") or [])}


def status_text(state: dict[str, Any]) -> str:
    """Docker's human Status column: "Up 5 minutes", "Exited (0) 2 seconds ago"."""
    from longboat.image.archive import unix_time

    def ago(when: str) -> str:
        from longboat.humanize import human_duration

        return human_duration(max(0.0, time.time() - unix_time(when)))

    status = state["Status"]
    if status == "created":
        return "Created"
    if status == "paused":
        return f"Up {ago(state['StartedAt'])} (Paused)"
    if status == "running":
        from longboat.engine.health import status_suffix

        return f"Up {ago(state['StartedAt'])}" + status_suffix(state)
    if status == "restarting":
        return f"Restarting ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"
    return f"Exited ({state['ExitCode']}) {ago(state['FinishedAt'])} ago"


class Containers:
    """Every container of this engine."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = os.path.join(engine.settings.data_root, "containers")
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        self.by_id: dict[str, Container] = {}
        # futures resolved with the exit code at a container's next exit / its removal
        self.exit_waiters: dict[str, list[asyncio.Future[int]]] = {}
        self._restarts: set[asyncio.Task[None]] = set()
        self.remove_waiters: dict[str, list[asyncio.Future[int]]] = {}
        for cid in os.listdir(self.root):
            try:
                with open(os.path.join(self.root, cid, "container.json")) as f:
                    self.by_id[cid] = Container(json.load(f), os.path.join(self.root, cid))
            except (OSError, ValueError):
                continue   # a half-created container: create writes the record last

    # -- lookup -------------------------------------------------------------------------
    def get(self, ref: str) -> Container:
        """By full ID, name (with or without /), or a unique ID prefix (Docker's order)."""
        if ref in self.by_id:
            return self.by_id[ref]
        wanted = ref.lstrip("/")
        for container in self.by_id.values():
            if container.name == wanted:
                return container
        matches = [c for c in self.by_id.values() if c.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"multiple IDs found with provided prefix: {ref}")
        raise NotFound(f"No such container: {ref}")

    def names_in_use(self) -> dict[str, str]:
        return {c.name: c.id for c in self.by_id.values()}

    # -- create -------------------------------------------------------------------------
    def create(self, body: dict[str, Any], name: str | None) -> tuple[str, list[str]]:
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object (a container "
                                  "configuration)")
        host_config = body.pop("HostConfig", None)
        if host_config is None:
            host_config = {}
        networking = body.pop("NetworkingConfig", None)
        if not isinstance(host_config, dict):
            raise InvalidArgument("HostConfig must be an object")
        image_name = body.get("Image")
        if not isinstance(image_name, str) or not image_name:
            raise InvalidArgument("Config.Image: an image is required")
        image = self.engine.images.get(image_name)   # 404 "No such image: X"
        taken = self.names_in_use()
        if name:
            name = names.check(name)
            if name in taken:
                raise Conflict(f'Conflict. The container name "/{name}" is already in use by '
                               f'container "{taken[name]}". You have to remove (or rename) '
                               "that container to be able to reuse that name.")
        else:
            name = names.generate(set(taken))
        policy = host_config.get("RestartPolicy") or {}
        if not isinstance(policy, dict) or (policy.get("Name") or "no") not in (
                "no", "always", "on-failure", "unless-stopped"):
            raise InvalidArgument(f"invalid restart policy {policy!r}")
        if host_config.get("AutoRemove") and (policy.get("Name") or "no") != "no":
            raise InvalidArgument("can't create 'AutoRemove' container with restart policy")
        if (policy.get("MaximumRetryCount") or 0) and policy.get("Name") != "on-failure":
            raise InvalidArgument(f"maximum retry count cannot be used with restart policy "
                                  f"'{policy.get('Name')}'")
        from longboat.engine.health import validate as validate_healthcheck

        validate_healthcheck(body.get("Healthcheck"))
        runtime = host_config.get("Runtime") or self.engine.settings.default_runtime
        if runtime not in ("longboat", "runc", "crun"):
            raise InvalidArgument(f"Unknown runtime specified {runtime}")
        host_config["Runtime"] = runtime
        from longboat.engine.bundle import create_warnings
        from longboat.engine.joined_namespaces import at_create

        warnings: list[str] = create_warnings(host_config)
        at_create(self, host_config)
        cid = secrets.token_hex(32)
        image_config = image.config.get("config") or {}
        network_settings = self.engine.container_networks.configure(
            cid, name, body, host_config, networking, image_config)
        entrypoint, command = _process_args(body, image_config)
        config = dict(body)
        config.setdefault("Hostname", cid[:12])
        config.setdefault("Env", None)
        config["Image"] = image_name
        directory = os.path.join(self.root, cid)
        os.makedirs(directory, mode=0o700)
        mount_points: list[dict[str, Any]] = []
        try:
            self.engine.snapshots.unpack(self.engine.images, image)
            self.engine.snapshots.prepare(cid, image)
            mount_points = volume_mounts.register(self.engine, cid, config, host_config,
                                                  image_config)
            data = {
                "Id": cid, "Created": now_rfc3339(), "CreatedUnix": int(time.time()),
                "Path": (entrypoint + command)[:1][0] if entrypoint + command else "",
                "Args": (entrypoint + command)[1:], "State": {
                    "Status": "created", "Running": False, "Paused": False,
                    "Restarting": False, "OOMKilled": False, "Dead": False, "Pid": 0,
                    "ExitCode": 0, "Error": "", "StartedAt": ZERO_TIME,
                    "FinishedAt": ZERO_TIME},
                "Image": image.id, "ImageName": image_name, "Name": "/" + name,
                "RestartCount": 0, "Driver": "overlay", "Platform": "linux",
                "MountLabel": "", "ProcessLabel": "", "AppArmorProfile": "",
                "ExecIDs": None, "HostConfig": _host_config_defaults(host_config),
                "Mounts": [public_mount(m) for m in mount_points],
                "_MountPoints": mount_points, "Config": config,
                "NetworkSettings": network_settings,
            }
            container = Container(data, directory)
            self._write_files(container)
            volume_mounts.populate(self.engine, container)
            container.save()
        except BaseException:
            volume_mounts.forget(self.engine, cid, mount_points)
            if cid in self.engine.snapshots.keys():  # noqa: SIM118 (a method, not a dict)
                self.engine.snapshots.remove(cid)
            shutil.rmtree(directory, ignore_errors=True)
            raise
        self.by_id[cid] = container
        return cid, warnings

    def _write_files(self, container: Container) -> None:
        """hostname, hosts and resolv.conf (written again at start and at network
        changes)."""
        self.engine.container_networks.write_etc(container)

    # -- start --------------------------------------------------------------------------
    async def start(self, ref: str, *, manual: bool = True) -> None:
        container = self.get(ref)
        if container.running:
            raise NotModified("container already started")
        if manual:
            container.data["_ManuallyStopped"] = False
            container.data["_RestartDelay"] = None
            container.set_state(Restarting=False)
        if container.state["Status"] == "removing":
            raise Conflict(f"container {container.id} is marked for removal")
        from longboat.engine.filesystem import files_in_use

        if files_in_use(container.id):
            raise Conflict(f"container {container.id} is busy: its files are being copied "
                           "or exported; start it again when that is done")
        monitor = self.engine.monitor
        config = container.config
        try:
            await monitor.call("delete", id=container.id, force=True)
        except Exception:
            pass   # nothing left over from an earlier run (before mounting its rootfs)
        joining: asyncio.Future[None] | None = None
        try:
            image_config = await asyncio.get_running_loop().run_in_executor(
                None, self._prepare_bundle, container)
            self.engine.container_networks.start_dns(container)
            log = _log_request(container)
            if image_config is not None:
                # the endpoints join the namespace file while the monitor creates the
                # container (it needs only the file); both are done before it starts
                joining = asyncio.get_running_loop().run_in_executor(
                    None, self.engine.container_networks.join_all, container,
                    image_config)
                if any(key.startswith("net.") for key in
                       container.host_config.get("Sysctls") or {}):
                    await asyncio.wait([joining])    # they may name its interfaces
            try:
                reply = await monitor.call("create", id=container.id,
                                           bundle=container.bundle,
                                           runtime=container.host_config.get("Runtime"),
                                           tty=bool(config.get("Tty")),
                                           stdin=bool(config.get("OpenStdin")), log=log)
            finally:
                if joining is not None:
                    await asyncio.wait([joining])    # done (or undone) either way
            if joining is not None:
                joining.result()
            # running from here on: an exit event may come as soon as start is sent
            container.set_state(Running=True, Paused=False, Restarting=False,
                                OOMKilled=False, Pid=reply["pid"], ExitCode=0, Error="",
                                StartedAt=now_rfc3339())
            await self.engine.attachments.connect_pending(container)
            await monitor.call("start", id=container.id)
            self.engine.health.start(container)
        except BaseException as exc:
            if joining is not None and not joining.done():
                await asyncio.wait([joining])        # never undo under a join
            message = str(getattr(exc, "message", exc))
            container.set_state(Running=False, Restarting=False, Pid=0, Error=message,
                                ExitCode=start_exit_code(message, container.data["Path"]))
            try:
                await monitor.call("delete", id=container.id, force=True)
            except Exception:
                pass   # nothing was created
            self._unmount(container)
            await self._network_down(container)
            _resolve(self.exit_waiters.pop(container.id, []), container.state["ExitCode"])
            if container.host_config.get("AutoRemove"):
                # --rm: a container that could not start goes too (its client waits on
                # condition=removed), with its anonymous volumes, as Docker's --rm
                await self.remove(container.id, force=True, volumes=True)
            raise

    def _prepare_bundle(self, container: Container) -> dict[str, Any] | None:
        """The rootfs, the namespace file and config.json; the image's config when
        endpoints are still to join the namespace (``ContainerNetworks.join_all``)."""
        from longboat.engine import joined_namespaces
        from longboat.engine.bundle import oci_config

        image = self.engine.images.get(container.data["Image"])
        os.makedirs(container.rootfs, exist_ok=True)
        if not os.path.ismount(container.rootfs):
            self.engine.snapshots.mounts(container.id).mount(container.rootfs)
        networks = self.engine.container_networks
        joins = networks.prepare(container)
        spec = oci_config(
            container.id, container.config,
            volume_mounts.host_config_for_start(self.engine, container),
            image.config.get("config") or {}, container.rootfs,
            hostname=networks.hostname(container),
            resolv_conf=os.path.join(container.dir, "resolv.conf"),
            hosts_file=os.path.join(container.dir, "hosts"),
            hostname_file=os.path.join(container.dir, "hostname"),
            netns_path=networks.netns_for_bundle(container),
            cgroup_parent=self.engine.settings.cgroup_parent,
            data_root=self.engine.settings.data_root,
            **joined_namespaces.resolve(self, container))
        spec["root"]["path"] = "rootfs"
        from longboat.engine import legacy_links

        spec["process"]["env"] = legacy_links.merge(
            spec["process"]["env"], legacy_links.environment(self.engine, container),
            tty=bool(container.config.get("Tty")))
        with open(os.path.join(container.bundle, "config.json"), "w") as f:
            json.dump(spec, f)
        return (image.config.get("config") or {}) if joins else None

    async def _network_down(self, container: Container) -> None:
        """Its DNS listener, endpoints, addresses, rules and namespace file go."""
        networks = self.engine.container_networks
        networks.stop_dns(container.id)
        if networks.has_teardown(container):
            await asyncio.get_running_loop().run_in_executor(None, networks.teardown,
                                                             container)

    def _unmount(self, container: Container) -> None:
        from longboat.image.snapshot import Mount

        volume_mounts.stopped(self.engine, container)
        from longboat.engine.joined_namespaces import unmount_shm

        unmount_shm(container)
        if os.path.ismount(container.rootfs):
            Mount.unmount(container.rootfs)

    # -- exits --------------------------------------------------------------------------
    async def on_exit(self, event: dict[str, Any]) -> None:
        container = self.by_id.get(event["container"])
        if container is None or event["key"] != container.id:
            return
        if not container.running or int(event.get("pid") or 0) != container.state["Pid"]:
            return    # an exit of an earlier run, or one already handled
        finished = event.get("finished_at")
        self.engine.health.stop(container.id)
        container.set_state(Running=False, Paused=False, Pid=0,
                            ExitCode=int(event["exit_code"]),
                            OOMKilled=bool(event.get("oom_killed")),
                            FinishedAt=rfc3339(finished) if finished else now_rfc3339())
        try:
            await self.engine.monitor.call("delete", id=container.id, force=True)
        except Exception:
            pass
        self._unmount(container)
        await self._network_down(container)
        _resolve(self.exit_waiters.pop(container.id, []), int(event["exit_code"]))
        self.engine.events.publish("container", "die", container,
                                   {"exitCode": str(event["exit_code"])})
        if container.host_config.get("AutoRemove"):
            await self.remove(container.id, force=True, volumes=True)
        elif self._should_restart(container, int(event["exit_code"])):
            self._schedule_restart(container)

    # -- restart policies ---------------------------------------------------------------
    def _should_restart(self, container: Container, code: int) -> bool:
        policy = container.host_config.get("RestartPolicy") or {}
        name = policy.get("Name") or "no"
        if container.data.get("_ManuallyStopped") or name == "no":
            return False
        if name == "on-failure":
            limit = int(policy.get("MaximumRetryCount") or 0)
            return code != 0 and (limit == 0 or container.data["RestartCount"] < limit)
        return name in ("always", "unless-stopped")

    def _schedule_restart(self, container: Container) -> None:
        """Docker's back-off: 100 ms, doubling at each restart up to a minute, back to
        100 ms once the container had run for 10 s."""
        from longboat.image.archive import unix_time

        ran = unix_time(container.state["FinishedAt"]) - unix_time(container.state["StartedAt"])
        previous = container.data.get("_RestartDelay")
        delay = 0.1 if previous is None or ran >= 10 else min(float(previous) * 2, 60.0)
        container.data["_RestartDelay"] = delay
        container.set_state(Restarting=True)

        async def later() -> None:
            await asyncio.sleep(delay)
            if container.id not in self.by_id or not container.state["Restarting"] or \
                    container.data.get("_ManuallyStopped"):
                return
            container.data["RestartCount"] += 1
            container.save()      # still "restarting" until start records it running
            try:
                await self.start(container.id, manual=False)
                self.engine.events.publish("container", "restart", container, {})
            except Exception as exc:
                container.set_state(Error=f"restart failed: {exc}")

        task = asyncio.create_task(later())
        self._restarts.add(task)
        task.add_done_callback(self._restarts.discard)

    async def restart_on_boot(self) -> None:
        """At engine start: containers whose policy says so and that are not running
        (the host rebooted, or they exited while we were down) start again."""
        for container in list(self.by_id.values()):
            policy = (container.host_config.get("RestartPolicy") or {}).get("Name") or "no"
            if container.running or container.state["Restarting"]:
                continue
            wanted = policy == "always" or (policy == "unless-stopped" and
                                            not container.data.get("_ManuallyStopped"))
            if wanted and container.state["StartedAt"] != ZERO_TIME:
                self._schedule_restart(container)

    async def restore(self) -> None:
        """At start-up: containers that ran when we stopped either still run (the
        monitor kept them) or exited meanwhile (its exit record says how)."""
        for container in list(self.by_id.values()):
            if not container.running:
                continue
            reply = await self.engine.monitor.call(
                "state", id=container.id, runtime=container.host_config.get("Runtime"))
            process = reply.get("process")
            state = reply.get("state") or {}
            if process is None and state.get("status") in ("running", "paused"):
                # a new monitor (the one that started it died): it takes the container
                # over; Pid and the runtime's record agree, or it reports it gone
                reply = await self.engine.monitor.call(
                    "adopt", id=container.id, pid=container.state["Pid"],
                    runtime=container.host_config.get("Runtime"),
                    tty=bool(container.config.get("Tty")), log=_log_request(container))
                process = reply.get("process")
                state = reply.get("state") or {}
            if process and process.get("running"):
                self.engine.container_networks.start_dns(container)   # live restore
                self.engine.health.restore(container)
                continue
            # the monitor's record; none, but the runtime's record says stopped: it died
            # while no monitor ran (137, as containerd reports a task whose shim was
            # lost); neither (the host rebooted): 255, as Docker after a reboot
            unknown = 137 if state.get("status") == "stopped" else 255
            await self.on_exit({"container": container.id, "key": container.id,
                                "pid": container.state["Pid"],
                                "exit_code": (process or {}).get("exit_code", unknown),
                                "oom_killed": (process or {}).get("oom_killed", False),
                                "finished_at": (process or {}).get("finished_at")})

    # -- signals ------------------------------------------------------------------------
    async def kill(self, ref: str, signal: str | int = "SIGKILL") -> None:
        container = self.get(ref)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        container.data["_ManuallyStopped"] = True
        container.save()
        self.engine.events.publish("container", "kill", container, {"signal": str(signal)})
        await self.engine.monitor.call("kill", id=container.id, signal=str(signal),
                                       all=False)

    async def stop(self, ref: str, timeout: int | None = None) -> None:
        """The stop signal, the grace period, then SIGKILL to every process."""
        container = self.get(ref)
        if container.state["Restarting"]:
            container.data["_ManuallyStopped"] = True
            container.set_state(Restarting=False)
            return
        if not container.running:
            raise NotModified("container already stopped")
        container.data["_ManuallyStopped"] = True
        container.save()
        self.engine.health.stop(container.id)
        if timeout is None:
            given = container.config.get("StopTimeout")
            timeout = 10 if given is None else int(given)
        exited = self._future(self.exit_waiters, container.id)
        signal = container.config.get("StopSignal") or "SIGTERM"
        self.engine.events.publish("container", "kill", container, {"signal": str(signal)})
        await self.engine.monitor.call("kill", id=container.id, signal=str(signal))
        try:
            await asyncio.wait_for(asyncio.shield(exited), max(timeout, 0))
            return
        except TimeoutError:
            pass
        await self.engine.monitor.call("kill", id=container.id, signal="SIGKILL", all=True)
        await asyncio.wait_for(exited, 30)

    def _future(self, table: dict[str, list[asyncio.Future[int]]], cid: str
                ) -> asyncio.Future[int]:
        future: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        table.setdefault(cid, []).append(future)
        return future

    async def wait(self, ref: str, condition: str = "not-running") -> int:
        """Docker's conditions: not-running (now, if it is not running), next-exit,
        removed. Registered at once, so a start right after cannot be missed."""
        container = self.get(ref)
        if condition not in ("not-running", "next-exit", "removed"):
            raise InvalidArgument(f"invalid condition: {condition!r}")
        if condition == "removed":
            return await self._future(self.remove_waiters, container.id)
        if condition == "not-running" and not container.running:
            return int(container.state["ExitCode"])
        return await self._future(self.exit_waiters, container.id)

    async def remove(self, ref: str, *, force: bool = False, volumes: bool = False) -> None:
        """``volumes`` (``rm -v``): its anonymous volumes go too (those no other
        container uses)."""
        container = self.get(ref)
        if container.running and not force:
            raise Conflict(f"You cannot remove a running container {container.id}. Stop the "
                           "container before attempting removal or force remove")
        self.engine.health.stop(container.id)
        if container.running:
            exited = self._future(self.exit_waiters, container.id)
            await self.engine.monitor.call("kill", id=container.id, signal="SIGKILL",
                                           all=True)
            await asyncio.wait_for(exited, 30)
        try:
            await self.engine.monitor.call("delete", id=container.id, force=True)
        except Exception:
            pass
        self._unmount(container)
        await self._network_down(container)
        volume_mounts.removed(self.engine, container, remove_anonymous=volumes)
        if container.id in self.engine.snapshots.keys():  # noqa: SIM118 (a method)
            self.engine.snapshots.remove(container.id)
        self.by_id.pop(container.id, None)
        self.engine.execs.drop_container(container.id)   # its execs: 404 from now on
        shutil.rmtree(container.dir, ignore_errors=True)
        code = int(container.state["ExitCode"])
        _resolve(self.exit_waiters.pop(container.id, []), code)
        _resolve(self.remove_waiters.pop(container.id, []), code)
        self.engine.events.publish("container", "destroy", container, {})


def _host_cgroup_version() -> int:
    from longboat.cgroups import host_version

    return host_version()


def _log_request(container: Container) -> dict[str, Any]:
    """The json-file log the monitor writes for this container (path and rotation)."""
    log: dict[str, Any] = {"path": container.log_path}
    options = (container.host_config.get("LogConfig") or {}).get("Config") or {}
    if options.get("max-size"):
        from longboat.engine.logs import parse_size

        log["max_size"] = parse_size(options["max-size"])
        log["max_file"] = int(options.get("max-file") or 1)
    return log


def start_exit_code(message: str, command: str) -> int:
    """moby's exit code for a start that failed (translateContainerdStartErr): 127 when
    the command was not found, 126 when it could not be run, else 128."""
    text = message.lower()
    code = 128
    if command.lower() in text and any(s in text for s in (
            "executable file not found", "no such file or directory")):
        code = 127
    if "permission denied" in text:
        code = 126
    if "not a directory" in text:
        code = 127
    return code


def _resolve(futures: list[asyncio.Future[int]], code: int) -> None:
    for future in futures:
        if not future.done():
            future.set_result(code)


def _process_args(body: dict[str, Any], image: dict[str, Any]) -> tuple[list[str], list[str]]:
    """Docker's rules: a given Entrypoint replaces the image's and drops its Cmd."""
    entrypoint = body.get("Entrypoint")
    command = body.get("Cmd")
    if isinstance(entrypoint, str):
        entrypoint = [entrypoint]
    if isinstance(command, str):
        command = [command]
    if entrypoint is None:
        entrypoint = image.get("Entrypoint") or []
        if command is None:
            command = image.get("Cmd") or []
    elif command is None:
        command = []
    if entrypoint == [""]:
        entrypoint = []
    return list(entrypoint), list(command or [])


def _host_config_defaults(host_config: dict[str, Any]) -> dict[str, Any]:
    """Inspect returns what create stored, with Docker's defaults filled the same way
    every time (configuration tools compare the two)."""
    defaults: dict[str, Any] = {
        "Binds": None, "ContainerIDFile": "", "LogConfig": {"Type": "json-file",
                                                            "Config": {}},
        "NetworkMode": "default", "PortBindings": {}, "RestartPolicy": {
            "Name": "no", "MaximumRetryCount": 0}, "AutoRemove": False,
        "VolumeDriver": "", "VolumesFrom": None, "CapAdd": None, "CapDrop": None,
        "CgroupnsMode": "host" if _host_cgroup_version() == 1 else "private",
        "Dns": [], "DnsOptions": [], "DnsSearch": [],
        "ExtraHosts": None, "GroupAdd": None, "IpcMode": "private", "Cgroup": "",
        "Links": None, "OomScoreAdj": 0, "PidMode": "", "Privileged": False,
        "PublishAllPorts": False, "ReadonlyRootfs": False, "SecurityOpt": None,
        "UTSMode": "", "UsernsMode": "", "ShmSize": 67108864, "Runtime": "longboat",
        "ConsoleSize": [0, 0], "Isolation": "", "CpuShares": 0, "Memory": 0,
        "NanoCpus": 0, "CgroupParent": "", "BlkioWeight": 0, "BlkioWeightDevice": [],
        "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "CpuPeriod": 0,
        "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0, "CpusetCpus": "",
        "CpusetMems": "", "Devices": [], "DeviceCgroupRules": None, "DeviceRequests": None,
        "KernelMemory": 0, "KernelMemoryTCP": 0, "MemoryReservation": 0, "MemorySwap": 0,
        "MemorySwappiness": None, "OomKillDisable": False, "PidsLimit": None,
        "Ulimits": None, "CpuCount": 0, "CpuPercent": 0, "IOMaximumIOps": 0,
        "IOMaximumBandwidth": 0, "MaskedPaths": None, "ReadonlyPaths": None,
    }
    merged = dict(defaults)
    for key, value in host_config.items():
        # the docker CLI sends "" for modes it leaves to the daemon: those get defaults
        if (value is not None and value != "") or key not in defaults:
            merged[key] = value
    if merged.get("NetworkMode") in ("", None):
        merged["NetworkMode"] = "default"
    return merged
