"""System endpoints: ``/_ping``, ``/version``, ``/info``, ``/system/df``."""

from __future__ import annotations

import asyncio
import os
import platform

from longboat import __version__
from longboat.api.http import Request, Response
from longboat.api.router import API_VERSION, MIN_API_VERSION, Router
from longboat.errors import LongboatError
from longboat.image.archive import unix_time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.engine import Engine


def register(router: Router, engine: Engine) -> None:
    async def ping(request: Request) -> Response:
        response = Response.text("OK")
        response.headers.update({"Builder-Version": "1", "Swarm": "inactive",
                                 "Cache-Control": "no-cache, no-store, must-revalidate",
                                 "Pragma": "no-cache"})
        return response

    async def version(request: Request) -> Response:
        return Response.json(version_info())

    async def info(request: Request) -> Response:
        return Response.json(system_info(engine))

    async def df(request: Request) -> Response:
        # the rows on the loop (the records change there), every walk of the disk in the
        # executor: image layers, containers' upper directories, volumes
        rows = [(c.summary(), c.id) for c in list(engine.containers.by_id.values())]
        body = await asyncio.get_running_loop().run_in_executor(
            None, lambda: disk_usage(engine, rows))
        return Response.json(body)

    router.add("GET", "/_ping", ping)
    router.add("HEAD", "/_ping", ping)
    router.add("GET", "/version", version)
    router.add("GET", "/info", info)
    router.add("GET", "/system/df", df)


def disk_usage(engine: Engine, rows: list[tuple[dict[str, Any], str]]) -> dict[str, Any]:
    """``/system/df``'s answer; walks trees (run it off the event loop)."""
    usage = engine.images.disk_usage()
    images = [{"Id": row["Id"], "ParentId": "", "RepoTags": _familiar(row["RepoTags"]),
               "RepoDigests": [], "Created": unix_time(row["Created"]), "Size": row["Size"],
               "SharedSize": row["SharedSize"], "VirtualSize": row["Size"], "Labels": {},
               "Containers": 0} for row in usage["Images"]]
    containers = []
    for row, cid in rows:
        try:
            row["SizeRw"] = _tree_size(engine.snapshots.upper_path(cid))
        except (LongboatError, OSError):
            row["SizeRw"] = 0     # removed meanwhile
        row["SizeRootFs"] = 0
        containers.append(row)
    return {"LayersSize": usage["LayersSize"], "Images": images, "Containers": containers,
            "Volumes": engine.volumes.disk_usage(), "BuildCache": []}


def _tree_size(path: str) -> int:
    from longboat.volume.store import tree_size  # iterative: a container's tree of any depth

    return tree_size(path)


def version_info() -> dict[str, Any]:
    kernel = platform.release()
    details = {"ApiVersion": API_VERSION, "MinAPIVersion": MIN_API_VERSION,
               "GitCommit": "", "GoVersion": f"python{platform.python_version()}",
               "Os": "linux", "Arch": _arch(), "KernelVersion": kernel, "BuildTime": "",
               "Experimental": "false"}
    return {"Platform": {"Name": "Longboat"},
            "Components": [{"Name": "Engine", "Version": __version__, "Details": details}],
            "Version": __version__, **details, "Experimental": False}


def system_info(engine: Engine) -> dict[str, Any]:
    from longboat.cgroups import host_version

    images = engine.images.images()
    containers = list(engine.containers.by_id.values())
    running = sum(1 for c in containers if c.running and not c.state["Paused"])
    paused = sum(1 for c in containers if c.state["Paused"])
    with open("/proc/meminfo") as f:
        mem_total = int(f.readline().split()[1]) * 1024
    return {
        "ID": engine.id, "Containers": len(containers), "ContainersRunning": running,
        "ContainersPaused": paused, "ContainersStopped": len(containers) - running - paused,
        "Images": len(images), "Driver": "overlay",
        "DriverStatus": [["Backing Filesystem", "extfs"]], "DockerRootDir":
        engine.settings.data_root, "SystemStatus": None, "Plugins": {
            "Volume": ["local"], "Network": ["bridge", "host", "none"], "Log": ["json-file"]},
        "MemoryLimit": True, "SwapLimit": True, "CpuCfsPeriod": True, "CpuCfsQuota": True,
        "CPUShares": True, "CPUSet": True, "PidsLimit": True, "OomKillDisable": True,
        "IPv4Forwarding": _forwarding(), "Debug": engine.settings.log_level == "debug",
        "NFd": len(os.listdir("/proc/self/fd")), "NGoroutines": 0,
        "LoggingDriver": "json-file", "CgroupDriver": "cgroupfs",
        "CgroupVersion": str(host_version()), "KernelVersion": platform.release(),
        "OperatingSystem": _os_name(), "OSType": "linux", "OSVersion": "",
        "Architecture": platform.machine(), "NCPU": os.cpu_count() or 1,
        "MemTotal": mem_total, "IndexServerAddress": "https://index.docker.io/v1/",
        "RegistryConfig": {"InsecureRegistryCIDRs": ["127.0.0.0/8"], "IndexConfigs": {},
                           "Mirrors": []},
        "Name": engine.name, "Labels": [], "ExperimentalBuild": False,
        "ServerVersion": __version__, "Runtimes": {"longboat": {"path": "longboat-runtime"},
                                                   "runc": {"path": "runc"}},
        "DefaultRuntime": engine.settings.default_runtime,
        "Swarm": {"NodeID": "", "NodeAddr": "", "LocalNodeState": "inactive",
                  "ControlAvailable": False, "Error": "", "RemoteManagers": None},
        "LiveRestoreEnabled": True, "Isolation": "", "InitBinary": "tini",
        "SecurityOptions": ["name=cgroupns"], "Warnings": [],
    }


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _forwarding() -> bool:
    try:
        with open("/proc/sys/net/ipv4/ip_forward") as f:
            return f.read().strip() == "1"
    except OSError:
        return False


def _os_name() -> str:
    try:
        with open("/etc/os-release") as f:
            for row in f:
                if row.startswith("PRETTY_NAME="):
                    return row.split("=", 1)[1].strip().strip('"')
    except OSError:
        pass
    return "Linux"


def _familiar(names: list[str]) -> list[str]:
    from longboat.image import reference

    return [reference.parse(n).familiar for n in names]
