"""``run``/``create`` flags for namespaces, cgroups and the runtime, turned into the
HostConfig fields docker 20.10's CLI sends for them (its ``opts.go`` and ``opts``
package): ``--pid``, ``--ipc``, ``--uts``, ``--userns``, ``--cgroupns``, ``--group-add``,
``--cgroup-parent``, ``--runtime``, ``--isolation``, ``--oom-score-adj``, the CFS and
real-time CPU flags, ``--cpuset-mems``, ``--memory-swappiness``, ``--kernel-memory``,
``--device-cgroup-rule``, the blkio device flags, ``--cidfile``, ``--storage-opt``,
``--volume-driver``, ``--gpus``. The checks and messages are docker 20.10's; the engine
does the rest. Pure functions, as :mod:`longboat.cli.run_args`.
"""

from __future__ import annotations

import re

from longboat.cli.run_args import ArgumentError, mem_bytes, ram_in_bytes

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

_DEVICE_CGROUP_RULE = re.compile(r"^([acb]) ([0-9]+|\*):([0-9]+|\*) ([rwm]{1,3})$")
_BPS_HELP = ("The correct format is <device-path>:<number>[<unit>]. Number must be a "
             "positive integer. Unit is optional and can be kb, mb, or gb")
_IOPS_HELP = "The correct format is <device-path>:<number>. Number must be a positive integer"
#: Flags docker's CLI refuses against a Linux daemon.
WINDOWS_ONLY = (("cpu_count", "--cpu-count"), ("cpu_percent", "--cpu-percent"),
                ("io_maxiops", "--io-maxiops"), ("io_maxbandwidth", "--io-maxbandwidth"))


def _flag_error(value: str, flag: str, problem: str) -> ArgumentError:
    return ArgumentError(f'invalid argument "{value}" for "{flag}" flag: {problem}')


# -- namespace modes (docker's api/types/container Valid() methods, 20.10) -----------------
def pid_mode(text: str) -> str:
    parts = text.split(":")
    ok = parts[0] in ("", "host") or (parts[0] == "container" and len(parts) == 2
                                      and parts[1] != "")
    if not ok:
        raise ArgumentError("--pid: invalid PID mode")
    return text


def uts_mode(text: str) -> str:
    if text.split(":")[0] not in ("", "host"):
        raise ArgumentError("--uts: invalid UTS mode")
    return text


def userns_mode(text: str) -> str:
    if text.split(":")[0] not in ("", "host"):
        raise ArgumentError("--userns: invalid USER mode")
    return text


def cgroupns_mode(text: str) -> str:
    if text not in ("", "host", "private"):
        raise ArgumentError("--cgroupns: invalid CGROUP mode")
    return text


# -- devices ---------------------------------------------------------------------------------
def device_cgroup_rule(text: str) -> str:
    """``c 1:3 rwm``, ``a *:* m`` (``opts.ValidateDeviceCgroupRule``)."""
    if not _DEVICE_CGROUP_RULE.match(text):
        raise _flag_error(text, "--device-cgroup-rule",
                          f"invalid device cgroup format '{text}'")
    return text


def _device_path(text: str, flag: str) -> tuple[str, str]:
    path, colon, value = text.partition(":")
    if not colon:
        raise _flag_error(text, flag, f"bad format: {text}")
    if not path.startswith("/dev/"):
        raise _flag_error(text, flag, f"bad format for device path: {text}")
    return path, value


def throttle_bps(text: str, flag: str) -> dict[str, Any]:
    """``/dev/sda:1mb`` -> {"Path": "/dev/sda", "Rate": 1048576}."""
    path, value = _device_path(text, flag)
    try:
        rate = ram_in_bytes(value)
    except ArgumentError:
        raise _flag_error(text, flag, f"invalid rate for device: {text}. {_BPS_HELP}"
                          ) from None
    return {"Path": path, "Rate": rate}


def throttle_iops(text: str, flag: str) -> dict[str, Any]:
    """``/dev/sda:100`` -> {"Path": "/dev/sda", "Rate": 100}."""
    path, value = _device_path(text, flag)
    if not value.isdigit() or not value.isascii():
        raise _flag_error(text, flag, f"invalid rate for device: {text}. {_IOPS_HELP}")
    return {"Path": path, "Rate": int(value)}


def weight_device(text: str) -> dict[str, Any]:
    """``/dev/sda:200`` -> {"Path": "/dev/sda", "Weight": 200} (10..1000, or 0)."""
    flag = "--blkio-weight-device"
    path, value = _device_path(text, flag)
    if not value.isdigit() or not value.isascii() or (
            int(value) > 0 and not 10 <= int(value) <= 1000):
        raise _flag_error(text, flag, f"invalid weight for device: {text}")
    return {"Path": path, "Weight": int(value)}


def gpus(text: str) -> dict[str, Any]:
    """``--gpus all|N|count=N,device=ID,driver=D,capabilities=C`` -> a DeviceRequest."""
    import csv

    request: dict[str, Any] = {"Driver": "", "Count": 0, "DeviceIDs": None,
                               "Capabilities": None, "Options": {}}
    fields = next(csv.reader([text]), [])
    for field in fields:
        key, eq, value = field.partition("=")
        if not eq:
            if len(fields) != 1:
                raise _flag_error(text, "--gpus", f"invalid value: {field}")
            value, key = key, "count"
        if key == "count":
            if value == "all":
                request["Count"] = -1
            elif value.isdigit():
                request["Count"] = int(value)
            else:
                raise _flag_error(text, "--gpus", f"invalid count ({value}): value must "
                                  "be either \"all\" or an integer")
        elif key == "device":
            request["DeviceIDs"] = value.split(",")
        elif key == "driver":
            request["Driver"] = value
        elif key == "capabilities":
            request["Capabilities"] = [value.split(",")]
        elif key == "options":
            option, _, option_value = value.partition("=")
            request["Options"][option] = option_value
        else:
            raise _flag_error(text, "--gpus", f"unexpected key '{key}' in '{field}'")
    if request["Capabilities"] is None:
        request["Capabilities"] = [["gpu"]]
    if request["Count"] and request["DeviceIDs"]:
        raise _flag_error(text, "--gpus", "cannot set both Count and DeviceIDs on device "
                          "request")
    return request


def storage_opts(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq:
            raise ArgumentError("invalid storage option")
        out[key] = value
    return out


# -- the HostConfig fields -------------------------------------------------------------------
def host_config_fields(a: argparse.Namespace) -> dict[str, Any]:
    """The HostConfig fields these flags give, with the values docker's CLI sends when a
    flag is not given."""
    for attribute, flag in WINDOWS_ONLY:
        if getattr(a, attribute, None):
            raise ArgumentError(f'"{flag}" is only supported on a Docker daemon running '
                                "on windows, but the Docker daemon is running on linux")
    swappiness = a.memory_swappiness
    if swappiness != -1 and not 0 <= swappiness <= 100:
        raise ArgumentError(f"invalid value: {swappiness}. Valid memory swappiness range "
                            "is 0-100")
    fields: dict[str, Any] = {
        "PidMode": pid_mode(a.pid or ""),
        "IpcMode": a.ipc or "",           # checked by the engine, as 20.10's CLI leaves it
        "UTSMode": uts_mode(a.uts or ""),
        "UsernsMode": userns_mode(a.userns or ""),
        "CgroupnsMode": cgroupns_mode(a.cgroupns or ""),
        "GroupAdd": list(a.group_add) or None,
        "CgroupParent": a.cgroup_parent or "",
        "Isolation": a.isolation or "",
        "OomScoreAdj": a.oom_score_adj,
        "CpuPeriod": a.cpu_period or 0,
        "CpuQuota": a.cpu_quota or 0,
        "CpuRealtimePeriod": a.cpu_rt_period or 0,
        "CpuRealtimeRuntime": a.cpu_rt_runtime or 0,
        "CpusetMems": a.cpuset_mems or "",
        "MemorySwappiness": swappiness,
        "KernelMemory": mem_bytes(a.kernel_memory, "--kernel-memory")
        if a.kernel_memory else 0,
        "KernelMemoryTCP": 0,
        "DeviceCgroupRules": [device_cgroup_rule(r) for r in a.device_cgroup_rule] or None,
        "BlkioWeightDevice": [weight_device(d) for d in a.blkio_weight_device],
        "BlkioDeviceReadBps": [throttle_bps(d, "--device-read-bps")
                               for d in a.device_read_bps] or None,
        "BlkioDeviceWriteBps": [throttle_bps(d, "--device-write-bps")
                                for d in a.device_write_bps] or None,
        "BlkioDeviceReadIOps": [throttle_iops(d, "--device-read-iops")
                                for d in a.device_read_iops] or None,
        "BlkioDeviceWriteIOps": [throttle_iops(d, "--device-write-iops")
                                 for d in a.device_write_iops] or None,
        "ContainerIDFile": a.cidfile or "",
        "VolumeDriver": a.volume_driver or "",
        # fields no flag here sets, as 20.10's CLI sends them (the Windows-only ones are
        # refused above)
        "Cgroup": "", "ConsoleSize": [0, 0], "CpuCount": 0, "CpuPercent": 0,
        "IOMaximumBandwidth": 0, "IOMaximumIOps": 0, "DeviceRequests": None,
        "MaskedPaths": None, "ReadonlyPaths": None,
    }
    if a.runtime:
        fields["Runtime"] = a.runtime
    if a.storage_opt:
        fields["StorageOpt"] = storage_opts(a.storage_opt)
    if a.gpus:
        fields["DeviceRequests"] = [gpus(a.gpus)]
    return fields


# -- --cidfile -------------------------------------------------------------------------------
class CidFile:
    """docker's ``cidFile``: created (refused if it exists) before the container is,
    written with the id once created, removed if nothing was written."""

    def __init__(self, path: str | None) -> None:
        import os

        self.path = path or ""
        self.written = False
        self._fd = -1
        if not self.path:
            return
        if os.path.lexists(self.path):
            raise ArgumentError("container ID file found, make sure the other container "
                                f"isn't running or delete {self.path}")
        try:
            self._fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                               | os.O_CLOEXEC, 0o666)
        except OSError as exc:
            raise ArgumentError(f"failed to create the container ID file: open "
                                f"{self.path}: {(exc.strerror or str(exc)).lower()}"
                                ) from None

    def write(self, cid: str) -> None:
        import os

        if self._fd < 0:
            return
        os.write(self._fd, cid.encode())
        self.written = True

    def close(self) -> None:
        import contextlib
        import os

        if self._fd < 0:
            return
        os.close(self._fd)
        self._fd = -1
        if not self.written:
            with contextlib.suppress(OSError):
                os.unlink(self.path)
