"""HostConfig resources -> ``linux.resources``, ``process.rlimits`` and ``linux.sysctl``,
with the daemon's checks and messages (moby 20.10 ``verifyPlatformContainerResources``,
``adaptContainerSettings``, ``getMemoryResources``, ``getCPUResources``, ``getPidsLimit``).
"""

from __future__ import annotations

import re
from typing import Any

from longboat.engine.bundle_fields import Fields
from longboat.errors import InvalidArgument

#: moby's ``linuxMinMemory``: 6 MiB.
MIN_MEMORY = 6 * 1024 * 1024
#: The CFS period Docker uses for ``NanoCpus`` (100 ms in microseconds).
NANO_CPUS_PERIOD = 100_000
#: RLIM_INFINITY: a ulimit of -1 (``uint64(-1)`` in Docker).
RLIM_INFINITY = (1 << 64) - 1

#: docker/go-units' ulimit names ("as" is disabled there too).
ULIMITS = ("core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice", "nofile",
           "nproc", "rss", "rtprio", "rttime", "sigpending", "stack")

_CPU_LIST = re.compile(r"\d+(?:-\d+)?")
_IPC_SYSCTL_PREFIXES = ("kernel.msg", "kernel.sem", "kernel.shm", "fs.mqueue.")


def parse_cpu_list(text: str) -> set[int] | None:
    """``"0-2,4"`` -> {0, 1, 2, 4} (docker's ``parsers.ParseUintList``); None if malformed."""
    out: set[int] = set()
    if text == "":
        return out
    for part in text.split(","):
        if _CPU_LIST.fullmatch(part) is None:
            return None
        low, _, high = part.partition("-")
        first, last = int(low), int(high or low)
        if first > last or last - first > 1 << 16:
            return None
        out.update(range(first, last + 1))
    return out


def _cpuset(host: Fields, field: str, what: str, available: str | None,
            unavailable: str) -> str:
    value = host.string(field)
    wanted = parse_cpu_list(value)
    if wanted is None:
        raise InvalidArgument(f"Invalid value {value} for {what}: invalid format: {value}")
    if available is not None:
        have = parse_cpu_list(available.strip())
        if have is not None and not wanted <= have:
            raise InvalidArgument(f"{unavailable} - requested {value}, available: "
                                  f"{available.strip()}")
    return value


def memory_resources(host: Fields, *, swap_limit: bool) -> dict[str, Any]:
    memory = host.number("Memory")
    reservation = host.number("MemoryReservation")
    swap = host.number("MemorySwap")
    swappiness = host.integer("MemorySwappiness")
    for name, value in (("Memory", memory), ("MemoryReservation", reservation)):
        if value < 0:
            raise host.fail(name, f"must not be negative, got {value}")
    if swap < -1:
        raise host.fail("MemorySwap", f"must be -1 (unlimited) or a size, got {swap}")
    if memory != 0 and memory < MIN_MEMORY:
        raise InvalidArgument("Minimum memory limit allowed is 6MB")
    if memory > 0 and swap == 0:
        swap = memory * 2  # adaptContainerSettings: "twice the size of Memory"
    if memory > 0 and swap != -1 and not swap_limit:
        swap = -1  # the kernel cannot limit swap: Docker warns and drops it
    if memory > 0 and swap > 0 and swap < memory:
        raise InvalidArgument("Minimum memoryswap limit should be larger than memory limit, "
                              "see usage")
    if memory == 0 and swap > 0:
        raise InvalidArgument("You should always set the Memory limit when using Memoryswap "
                              "limit, see usage")
    if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
        raise InvalidArgument(f"Invalid value: {swappiness}, valid memory swappiness range "
                              "is 0-100")
    if reservation > 0 and reservation < MIN_MEMORY:
        raise InvalidArgument("Minimum memory reservation allowed is 6MB")
    if memory > 0 and reservation > 0 and memory < reservation:
        raise InvalidArgument("Minimum memory limit can not be less than memory reservation "
                              "limit, see usage")
    out: dict[str, Any] = {}
    if memory > 0:
        out["limit"] = memory
    if reservation > 0:
        out["reservation"] = reservation
    if swap > 0:
        out["swap"] = swap
    if swappiness is not None and swappiness != -1:
        out["swappiness"] = swappiness
    oom_kill_disable = host.boolean("OomKillDisable")
    if oom_kill_disable is not None:
        out["disableOOMKiller"] = oom_kill_disable
    return out


def cpu_resources(host: Fields, *, cpus: int, online_cpus: str | None,
                  online_mems: str | None) -> dict[str, Any]:
    nano = host.number("NanoCpus")
    shares = host.number("CpuShares")
    period = host.number("CpuPeriod")
    quota = host.number("CpuQuota")
    if nano > 0 and period > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Period cannot both be set")
    if nano > 0 and quota > 0:
        raise InvalidArgument("Conflicting options: Nano CPUs and CPU Quota cannot both be set")
    if nano < 0 or nano > cpus * 1_000_000_000:
        raise InvalidArgument(f"Range of CPUs is from 0.01 to {cpus}.00, as there are only "
                              f"{cpus} CPUs available")
    if shares < 0:
        raise InvalidArgument(f"invalid CPU shares ({shares}): value must be a positive "
                              "integer")
    if period != 0 and not 1000 <= period <= 1_000_000:
        raise InvalidArgument("CPU cfs period can not be less than 1ms (i.e. 1000) or larger "
                              "than 1s (i.e. 1000000)")
    if quota > 0 and quota < 1000:
        raise InvalidArgument("CPU cfs quota can not be less than 1ms (i.e. 1000)")
    if quota < -1:
        raise host.fail("CpuQuota", f"must be -1 (unlimited) or at least 1000, got {quota}")
    cpuset_cpus = _cpuset(host, "CpusetCpus", "cpuset cpus", online_cpus,
                          "Requested CPUs are not available")
    cpuset_mems = _cpuset(host, "CpusetMems", "cpuset mems", online_mems,
                          "Requested memory nodes are not available")
    out: dict[str, Any] = {}
    if shares > 0:
        out["shares"] = shares
    if nano > 0:
        out["period"] = NANO_CPUS_PERIOD
        out["quota"] = nano * NANO_CPUS_PERIOD // 1_000_000_000
    if period != 0:
        out["period"] = period
    if quota != 0:
        out["quota"] = quota
    if cpuset_cpus:
        out["cpus"] = cpuset_cpus
    if cpuset_mems:
        out["mems"] = cpuset_mems
    return out


def resources(host: Fields, *, swap_limit: bool, cpus: int, online_cpus: str | None,
              online_mems: str | None) -> dict[str, Any]:
    """``linux.resources`` without the device rules. Zero values ("not set" in Docker's
    API) are left out rather than written as 0."""
    out: dict[str, Any] = {}
    memory = memory_resources(host, swap_limit=swap_limit)
    if memory:
        out["memory"] = memory
    cpu = cpu_resources(host, cpus=cpus, online_cpus=online_cpus, online_mems=online_mems)
    if cpu:
        out["cpu"] = cpu
    pids = host.integer("PidsLimit")
    if pids is not None:
        # "docker API allows 0 and negative values to unset this": runc's unlimited is -1
        out["pids"] = {"limit": pids if pids > 0 else -1}
    weight = blkio_weight(host)
    block_io: dict[str, Any] = {"weight": weight} if weight else {}
    block_io.update(block_devices(host))
    if block_io:
        out["blockIO"] = block_io
    return out


def blkio_weight(host: Fields) -> int:
    weight = host.integer("BlkioWeight", bits=32) or 0
    if weight != 0 and not 10 <= weight <= 1000:
        raise InvalidArgument("Range of blkio weight is from 10 to 1000")
    return weight


#: HostConfig's per-device blkio lists -> the OCI ``blockIO`` keys.
BLKIO_DEVICE_LISTS = (("BlkioWeightDevice", "weightDevice", "Weight"),
                      ("BlkioDeviceReadBps", "throttleReadBpsDevice", "Rate"),
                      ("BlkioDeviceWriteBps", "throttleWriteBpsDevice", "Rate"),
                      ("BlkioDeviceReadIOps", "throttleReadIOPSDevice", "Rate"),
                      ("BlkioDeviceWriteIOps", "throttleWriteIOPSDevice", "Rate"))


def block_device_numbers(path: str, field: str) -> tuple[int, int]:
    """(major, minor) of the host's block device at ``path`` (moby stats it too,
    following links)."""
    import os
    import stat

    try:
        info = os.stat(path)
    except OSError as exc:
        raise InvalidArgument(f"{field}: stat {path}: {(exc.strerror or '').lower()}"
                              ) from None
    if not stat.S_ISBLK(info.st_mode):
        raise InvalidArgument(f"{field}: {path} is not a block device")
    return os.major(info.st_rdev), os.minor(info.st_rdev)


def block_devices(host: Fields) -> dict[str, list[dict[str, int]]]:
    """``BlkioWeightDevice`` and the ``BlkioDevice{Read,Write}{Bps,IOps}`` throttles
    with their device numbers (moby's ``getBlkioWeightDevices``/``...ThrottleDevices``):
    ``{"major", "minor", "weight"|"rate"}``."""
    out: dict[str, list[dict[str, int]]] = {}
    for field, key, value_key in BLKIO_DEVICE_LISTS:
        entries = []
        for item in host.objects(field):
            path = item.string("Path")
            value = item.number(value_key)
            if value < 0:
                raise item.fail(value_key, f"must not be negative, got {value}")
            if value_key == "Weight" and value != 0 and not 10 <= value <= 1000:
                raise InvalidArgument(f"invalid weight for device: {path}:{value}")
            if not path.startswith("/"):
                raise item.fail("Path", f"must be an absolute path, got {path!r}")
            major, minor = block_device_numbers(path, item.name("Path"))
            entries.append({"major": major, "minor": minor, value_key.lower(): value})
        if entries:
            out[key] = entries
    return out


def rlimits(host: Fields) -> list[dict[str, Any]]:
    """``HostConfig.Ulimits`` -> ``process.rlimits`` (``RLIMIT_<NAME>``; -1 is unlimited)."""
    out: list[dict[str, Any]] = []
    seen: set[str] = set()
    for item in host.objects("Ulimits"):
        name = item.string("Name")
        if name.lower() not in ULIMITS:
            raise item.fail("Name", f"invalid ulimit type: {name}")
        if name.lower() in seen:
            raise item.fail("Name", f"ulimit {name.lower()} is given twice")
        seen.add(name.lower())
        values = []
        for field in ("Soft", "Hard"):
            value = item.number(field)
            if value < -1:
                raise item.fail(field, f"must be -1 (unlimited) or a limit, got {value}")
            values.append(RLIM_INFINITY if value == -1 else value)
        soft, hard = values
        if soft > hard:
            raise InvalidArgument(f"ulimit soft limit must be less than or equal to hard "
                                  f"limit: {item.number('Soft')} > {item.number('Hard')}")
        out.append({"type": f"RLIMIT_{name.upper()}", "soft": soft, "hard": hard})
    return out


def sysctls(host: Fields, *, network: bool, ipc: bool, uts: bool,
            domainname: str) -> dict[str, str]:
    """``HostConfig.Sysctls``, checked as runc checks them: only namespaced sysctls, and
    only when the container has that namespace of its own (``network``, ``ipc``, ``uts``:
    whether it has)."""
    values = host.string_map("Sysctls")
    for key in values:
        name = key.replace("/", ".")
        if any(part in ("", "..") for part in name.split(".")):
            raise host.fail(f"Sysctls.{key}", "is not a valid sysctl name")
        if name.startswith(_IPC_SYSCTL_PREFIXES):
            if not ipc:
                raise InvalidArgument(f'sysctl "{key}" is not allowed in the hosts ipc '
                                      "namespace")
        elif name.startswith("net."):
            if not network:
                raise InvalidArgument(f'sysctl "{key}" not allowed in host network namespace')
        elif name == "kernel.hostname":
            raise InvalidArgument(f'sysctl "{key}" is not allowed as it conflicts with the '
                                  'OCI "hostname" field (use Config.Hostname)')
        elif name == "kernel.domainname":
            if not uts:
                raise InvalidArgument(f'sysctl "{key}" is not allowed in the host\'s uts '
                                      "namespace")
            if domainname and values[key] != domainname:
                raise InvalidArgument(f'sysctl "{key}" is not allowed as it conflicts with '
                                      'the OCI "domainname" field')
        else:
            raise InvalidArgument(f'sysctl "{key}" is not in a separate kernel namespace')
    return values
