"""``GET /containers/{id}/top`` (``docker top``) and ``GET /containers/{id}/stats``
(``docker stats``), from the container's cgroup (``linux.cgroupsPath`` of its bundle).

top runs the host's ``ps`` with the client's arguments (default ``-ef``) and keeps the
rows whose PID is in the cgroup, as Docker does. stats reads the cgroup files Docker's
collector reads (v1: memory.stat, cpuacct, cpu.stat, the blkio throttle files; v2:
memory.stat, cpu.stat, io.stat) and answers in Docker's StatsJSON shape; a stream sends
one object a second, each with the previous sample as ``precpu_stats``.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import time

from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.errors import Conflict, InvalidArgument, SystemFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from typing import Any

    from longboat.cgroups import Cgroup
    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine

ZERO_TIME = "0001-01-01T00:00:00Z"
_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_V1_MEMORY_KEYS = (
    "cache", "rss", "rss_huge", "mapped_file", "dirty", "writeback", "pgpgin", "pgpgout",
    "pgfault", "pgmajfault", "inactive_anon", "active_anon", "inactive_file",
    "active_file", "unevictable", "hierarchical_memory_limit", "hierarchical_memsw_limit",
    "total_cache", "total_rss", "total_rss_huge", "total_mapped_file", "total_dirty",
    "total_writeback", "total_pgpgin", "total_pgpgout", "total_pgfault",
    "total_pgmajfault", "total_inactive_anon", "total_active_anon", "total_inactive_file",
    "total_active_file", "total_unevictable")
_V2_MEMORY_KEYS = (
    "anon", "file", "kernel_stack", "slab", "sock", "shmem", "file_mapped", "file_dirty",
    "file_writeback", "anon_thp", "inactive_anon", "active_anon", "inactive_file",
    "active_file", "unevictable", "slab_reclaimable", "slab_unreclaimable", "pgfault",
    "pgmajfault", "workingset_refault", "workingset_activate", "workingset_nodereclaim",
    "pgrefill", "pgscan", "pgsteal", "pgactivate", "pgdeactivate", "pglazyfree",
    "pglazyfreed", "thp_fault_alloc", "thp_collapse_alloc")
_V1_BLKIO = ("io_service_bytes_recursive", "io_serviced_recursive", "io_queue_recursive",
             "io_service_time_recursive", "io_wait_time_recursive", "io_merged_recursive",
             "io_time_recursive", "sectors_recursive")
# the CFQ files, by Docker's key (containerd's names)
_V1_CFQ = {"io_service_bytes_recursive": "blkio.io_service_bytes_recursive",
           "io_serviced_recursive": "blkio.io_serviced_recursive",
           "io_queue_recursive": "blkio.io_queued_recursive",
           "io_service_time_recursive": "blkio.io_service_time_recursive",
           "io_wait_time_recursive": "blkio.io_wait_time_recursive",
           "io_merged_recursive": "blkio.io_merged_recursive",
           "io_time_recursive": "blkio.time_recursive",
           "sectors_recursive": "blkio.sectors_recursive"}
_PS_ARG_CHECK = re.compile(r"\s+([^\s]*)=\s*(PID[^\s]*)")


# -- reading cgroup files ----------------------------------------------------------------

def _read(directory: str | None, name: str) -> str | None:
    if directory is None:
        return None
    try:
        with open(os.path.join(directory, name)) as f:
            return f.read()
    except OSError:
        return None


def _int(text: str | None) -> int:
    try:
        return int((text or "0").strip() or 0)
    except ValueError:
        return 0


def _keyed(text: str | None) -> dict[str, int]:
    out: dict[str, int] = {}
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 2:
            try:
                out[parts[0]] = int(parts[1])
            except ValueError:
                continue
    return out


def _v1_blkio_entries(text: str | None) -> list[dict[str, Any]]:
    entries = []
    for line in (text or "").splitlines():
        parts = line.split()
        if len(parts) == 3 and ":" in parts[0]:
            major, _, minor = parts[0].partition(":")
            entries.append({"major": int(major), "minor": int(minor), "op": parts[1],
                            "value": int(parts[2])})
        elif len(parts) == 2 and ":" in parts[0]:     # sectors, time: no op
            major, _, minor = parts[0].partition(":")
            entries.append({"major": int(major), "minor": int(minor), "op": "",
                            "value": int(parts[1])})
    return entries


def machine_memory() -> int:
    with open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) * 1024
    return 0


def system_cpu_usage() -> int:
    """The host's CPU time in nanoseconds from /proc/stat (Docker's getSystemCPUUsage:
    the first seven fields of the ``cpu`` line)."""
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu "):
                ticks = sum(int(v) for v in line.split()[1:8])
                return ticks * 1_000_000_000 // _CLOCK_TICKS
    return 0


def zero_cpu() -> dict[str, Any]:
    return {"cpu_usage": {"total_usage": 0, "usage_in_kernelmode": 0,
                          "usage_in_usermode": 0},
            "throttling_data": {"periods": 0, "throttled_periods": 0, "throttled_time": 0}}


def empty_stats(container: Container) -> dict[str, Any]:
    """What Docker answers for a container that does not run: its zero StatsJSON."""
    return {"read": ZERO_TIME, "preread": ZERO_TIME, "pids_stats": {},
            "blkio_stats": {key: None for key in _V1_BLKIO}, "num_procs": 0,
            "storage_stats": {}, "cpu_stats": zero_cpu(), "precpu_stats": zero_cpu(),
            "memory_stats": {}, "name": "/" + container.name, "id": container.id}


def _omit_zero(values: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in values.items() if v}


def sample(cgroup: Cgroup) -> dict[str, Any]:
    """One reading of the cgroup, in Docker's Stats shape (without name and id)."""
    from longboat.cgroups import CgroupV1
    from longboat.engine.filesystem import go_time

    stats = cgroup.stats()
    now = time.time_ns()
    read = go_time(now // 1_000_000_000, now % 1_000_000_000)
    cpu: dict[str, Any]
    memory: dict[str, Any]
    blkio: dict[str, Any]
    if isinstance(cgroup, CgroupV1):
        cpuacct = cgroup.dir("cpuacct")
        times = _keyed(_read(cpuacct, "cpuacct.stat"))
        percpu = [int(v) for v in (_read(cpuacct, "cpuacct.usage_percpu") or "").split()]
        throttling = _keyed(_read(cgroup.dir("cpu"), "cpu.stat"))
        usage: dict[str, Any] = {"total_usage": stats.cpu_usage_ns}
        if percpu:
            usage["percpu_usage"] = percpu
        usage["usage_in_kernelmode"] = times.get("system", 0) * 1_000_000_000 // _CLOCK_TICKS
        usage["usage_in_usermode"] = times.get("user", 0) * 1_000_000_000 // _CLOCK_TICKS
        cpu = {"cpu_usage": usage, "throttling_data": {
            "periods": throttling.get("nr_periods", 0),
            "throttled_periods": throttling.get("nr_throttled", 0),
            "throttled_time": throttling.get("throttled_time", 0)}}
        mem_dir = cgroup.dir("memory")
        raw = _keyed(_read(mem_dir, "memory.stat"))
        limit = raw.get("hierarchical_memory_limit", 0)
        machine = machine_memory()
        if machine and limit > machine:
            limit = machine
        memory = _omit_zero({"usage": stats.memory_usage, "max_usage": stats.memory_peak,
                             "stats": {k: raw.get(k, 0) for k in _V1_MEMORY_KEYS},
                             "failcnt": _int(_read(mem_dir, "memory.failcnt")),
                             "limit": limit})
        blk_dir = cgroup.dir("blkio")
        blkio = {key: [] for key in _V1_BLKIO}
        if _read(blk_dir, "blkio.io_serviced_recursive") is not None:
            for key, name in _V1_CFQ.items():
                blkio[key] = _v1_blkio_entries(_read(blk_dir, name))
        else:
            blkio["io_service_bytes_recursive"] = _v1_blkio_entries(
                _read(blk_dir, "blkio.throttle.io_service_bytes_recursive"))
            blkio["io_serviced_recursive"] = _v1_blkio_entries(
                _read(blk_dir, "blkio.throttle.io_serviced_recursive"))
    else:
        directory = str(getattr(cgroup, "dir", ""))
        cpu_stat = _keyed(_read(directory, "cpu.stat"))
        cpu = {"cpu_usage": {"total_usage": cpu_stat.get("usage_usec", 0) * 1000,
                             "usage_in_kernelmode": cpu_stat.get("system_usec", 0) * 1000,
                             "usage_in_usermode": cpu_stat.get("user_usec", 0) * 1000},
               "throttling_data": {
                   "periods": cpu_stat.get("nr_periods", 0),
                   "throttled_periods": cpu_stat.get("nr_throttled", 0),
                   "throttled_time": cpu_stat.get("throttled_usec", 0) * 1000}}
        raw = _keyed(_read(directory, "memory.stat"))
        machine = machine_memory()
        limit = stats.memory_limit if stats.memory_limit is not None else machine
        if machine and limit > machine:
            limit = machine
        events = _keyed(_read(directory, "memory.events"))
        memory = _omit_zero({"usage": stats.memory_usage,
                             "stats": {k: raw.get(k, 0) for k in _V2_MEMORY_KEYS},
                             "failcnt": events.get("oom", 0), "limit": limit})
        entries = []
        for line in (_read(directory, "io.stat") or "").splitlines():
            device, *fields = line.split()
            major, _, minor = device.partition(":")
            values = dict(f.split("=", 1) for f in fields if "=" in f)
            for op, key in (("read", "rbytes"), ("write", "wbytes")):
                entries.append({"major": int(major), "minor": int(minor), "op": op,
                                "value": int(values.get(key, 0))})
        blkio = {key: None for key in _V1_BLKIO}
        blkio["io_service_bytes_recursive"] = entries or None
    cpu["system_cpu_usage"] = system_cpu_usage()
    online = os.sysconf("SC_NPROCESSORS_ONLN")
    if online:
        cpu["online_cpus"] = online
    return {"read": read, "pids_stats": _omit_zero({"current": stats.pids_current,
                                                    "limit": stats.pids_limit or 0}),
            "blkio_stats": blkio, "num_procs": 0, "storage_stats": {}, "cpu_stats": cpu,
            "memory_stats": memory}


def frame(container: Container, current: dict[str, Any] | None,
          previous: dict[str, Any] | None) -> dict[str, Any]:
    if current is None:
        return empty_stats(container)
    out = {"read": current["read"],
           "preread": previous["read"] if previous else ZERO_TIME,
           "pids_stats": current["pids_stats"], "blkio_stats": current["blkio_stats"],
           "num_procs": 0, "storage_stats": {}, "cpu_stats": current["cpu_stats"],
           "precpu_stats": previous["cpu_stats"] if previous else zero_cpu(),
           "memory_stats": current["memory_stats"], "name": "/" + container.name,
           "id": container.id}
    return out


def container_cgroup(container: Container) -> Cgroup:
    """The cgroup of the container's bundle (``linux.cgroupsPath`` of config.json)."""
    from longboat.cgroups import open_cgroup

    try:
        with open(os.path.join(container.bundle, "config.json")) as f:
            spec = json.load(f)
        path = spec["linux"]["cgroupsPath"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise SystemFault(f"container {container.id} has no readable bundle "
                          f"(config.json): {exc}") from None
    return open_cgroup(str(path))


# -- top ---------------------------------------------------------------------------------

def _fields(line: str) -> list[str]:
    # Go's fieldsASCII: only ASCII whitespace separates
    return [f for f in re.split(r"[\t\n\f\r ]+", line) if f]


def parse_ps(output: str, pids: set[int]) -> dict[str, Any]:
    """Docker's parsePSOutput: the header's titles, and the rows of the given pids
    (thread rows, PID "-", follow the process row they belong to)."""
    lines = output.split("\n")
    titles = _fields(lines[0])
    try:
        pid_index = titles.index("PID")
    except ValueError:
        raise SystemFault("Couldn't find PID field in ps output") from None
    processes: list[list[str]] | None = None
    included = False
    for line in lines[1:]:
        if not line:
            continue
        fields = _fields(line)
        if len(fields) <= pid_index:
            continue
        if fields[pid_index] == "-":
            if included:
                processes = [*(processes or []), _row(fields, len(titles))]
            continue
        try:
            pid = int(fields[pid_index])
        except ValueError:
            raise SystemFault(f"Unexpected pid '{fields[pid_index]}'") from None
        included = pid in pids
        if included:
            processes = [*(processes or []), _row(fields, len(titles))]
    return {"Titles": titles, "Processes": processes}


def _row(fields: list[str], columns: int) -> list[str]:
    # as many fields as titles: what overhangs is the last column (the command)
    return [*fields[:columns - 1], " ".join(fields[columns - 1:])]


def check_ps_args(args: str) -> None:
    for key, value in _PS_ARG_CHECK.findall(args):
        if key != "pid":
            raise InvalidArgument(f'specifying "{key}={value}" is not allowed')


async def run_ps(args: list[str]) -> tuple[int, bytes, bytes]:
    process = await asyncio.create_subprocess_exec(
        "ps", *args, stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE)
    out, err = await process.communicate()
    return process.returncode or 0, out, err


def register(router: Router, engine: Engine) -> None:
    containers = engine.containers

    async def top(request: Request) -> Response:
        container = containers.get(request.params["id"])
        ps_args = request.arg("ps_args") or "-ef"
        check_ps_args(ps_args)
        if not container.running:
            raise Conflict(f"Container {container.id} is not running")
        if container.state.get("Restarting"):
            raise Conflict(f"Container {container.id} is restarting, wait until the "
                           "container is running")
        pids = await asyncio.get_running_loop().run_in_executor(
            None, lambda: container_cgroup(container).pids())
        args = ps_args.split(" ")
        code, out, _ = await run_ps([*args, "-q" + ",".join(str(p) for p in pids)])
        if code != 0:
            # some options (f, say) cannot go with -q: all processes, filtered below
            code, out, err = await run_ps(args)
            if code != 0:
                first = err.decode(errors="replace").split("\n", 1)[0]
                raise SystemFault(f"ps: {first or f'exit status {code}'}")
        result = parse_ps(out.decode(errors="replace"), set(pids))
        engine.events.publish("container", "top", container, {})
        return Response.json(result)

    async def stats(request: Request) -> Response:
        container = containers.get(request.params["id"])
        stream = request.flag("stream", True)
        one_shot = request.flag("one-shot")
        if one_shot and stream:
            raise InvalidArgument("cannot have stream=true and one-shot=true")
        loop = asyncio.get_running_loop()

        async def reading() -> dict[str, Any] | None:
            if not container.running:
                return None

            def read() -> dict[str, Any] | None:
                try:
                    return sample(container_cgroup(container))
                except Exception:
                    if container.running:
                        raise
                    return None     # it stopped meanwhile

            return await loop.run_in_executor(None, read)

        if not stream:
            current = await reading()
            previous = None
            if current is not None and not one_shot:
                # Docker's collector primes the CPU figures with a first sample
                await asyncio.sleep(1)
                previous, current = current, await reading()
            return Response.json(frame(container, current, previous))

        async def body() -> AsyncIterator[bytes]:
            previous = None
            while containers.by_id.get(container.id) is container:   # until removed
                current = await reading()
                yield json.dumps(frame(container, current, previous)).encode() + b"\n"
                previous = current
                await asyncio.sleep(1)

        return Response(200, headers={"Content-Type": "application/json"}, stream=body())

    router.add("GET", "/containers/{id}/top", top)
    router.add("GET", "/containers/{id}/stats", stats)
