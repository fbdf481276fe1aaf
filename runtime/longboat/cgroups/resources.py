"""Validation of an OCI ``linux.resources`` object into typed values, and the v1 -> v2
unit conversions (the same ones runc uses, so a bundle behaves alike under both).

Conventions kept from runc so that bundles written for it mean the same here: 0 means
"unset" for memory limit/reservation/swap, cpu shares/quota/period and the blkio weight;
-1 means unlimited for the memory values; a negative cpu quota and a pids limit <= 0 mean
unlimited; an empty cpus/mems string is unset.
"""

from __future__ import annotations

from longboat.cgroups.base import Record
from longboat.errors import InvalidArgument

TYPE_CHECKING = False  # typing and collections cost milliseconds at start-up
if TYPE_CHECKING:
    from collections.abc import Mapping

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

P = "linux.resources"
UNLIMITED = -1

# cpu.shares bounds the kernel clamps v1 values to (MIN_SHARES, MAX_SHARES).
MIN_SHARES = 2
MAX_SHARES = 262144


class DeviceRule(Record):
    """One entry of ``linux.resources.devices``; ``None`` major/minor is the wildcard."""

    __slots__ = ("access", "allow", "major", "minor", "type")

    def __init__(self, allow: bool, type: str = "a", major: int | None = None,
                 minor: int | None = None, access: str = "rwm") -> None:
        self.allow = allow
        self.type = type
        self.major = major
        self.minor = minor
        self.access = access

    def v1_entry(self) -> str:
        """The line for devices.allow / devices.deny, e.g. "c 1:3 rwm"."""
        major = "*" if self.major is None else str(self.major)
        minor = "*" if self.minor is None else str(self.minor)
        return f"{self.type} {major}:{minor} {self.access}"


class Resources(Record):
    """A validated ``linux.resources``: None everywhere a value is to be left alone."""

    __slots__ = (
        "blkio_throttles",
        "blkio_weight",
        "blkio_weight_devices",
        "cpu_period",
        "cpu_quota",
        "cpu_shares",
        "cpuset_cpus",
        "cpuset_mems",
        "devices",
        "disable_oom_killer",
        "memory_limit",
        "memory_reservation",
        "memory_swap",
        "memory_swappiness",
        "pids_limit",
        "unified",
    )

    def __init__(self) -> None:
        self.memory_limit: int | None = None        # bytes, or UNLIMITED
        self.memory_reservation: int | None = None  # bytes, or UNLIMITED
        self.memory_swap: int | None = None         # memory+swap bytes, or UNLIMITED
        self.disable_oom_killer: bool | None = None
        self.cpu_shares: int | None = None
        self.cpu_quota: int | None = None           # microseconds, or UNLIMITED
        self.cpu_period: int | None = None          # microseconds
        self.cpuset_cpus: str | None = None
        self.cpuset_mems: str | None = None
        self.pids_limit: int | None = None          # or UNLIMITED
        self.blkio_weight: int | None = None        # 10..1000
        self.memory_swappiness: int | None = None   # 0..100
        # ((major, minor, weight), ...), and per OCI throttle key ((major, minor, rate), ...)
        self.blkio_weight_devices: tuple[tuple[int, int, int], ...] = ()
        self.blkio_throttles: dict[str, tuple[tuple[int, int, int], ...]] = {}
        self.devices: tuple[DeviceRule, ...] = ()
        self.unified: tuple[tuple[str, str], ...] = ()

    @property
    def wants_memory(self) -> bool:
        return (self.memory_limit, self.memory_reservation, self.memory_swap,
                self.disable_oom_killer) != (None, None, None, None)


def shares_to_weight(shares: int) -> int:
    """cpu.shares (2..262144) -> cpu.weight (1..10000), runc's linear mapping. Shares
    outside the v1 range are clamped first, as the v1 kernel itself does."""
    shares = min(max(shares, MIN_SHARES), MAX_SHARES)
    return 1 + ((shares - 2) * 9999) // 262142


def blkio_to_io_weight(weight: int) -> int:
    """blkio.weight (10..1000) -> io.weight (1..10000), runc's linear mapping."""
    return 1 + ((weight - 10) * 9999) // 990


def parse_resources(resources: Mapping[str, Any]) -> Resources:
    """Check every field we apply and return them typed; InvalidArgument names the first
    bad field. Fields we do not apply are listed in docs/cgroups.md."""
    _need_object(resources, P)
    out = Resources()

    memory = _section(resources, "memory")
    if memory is not None:
        out.memory_limit = _memory_bytes(memory, "limit")
        out.memory_reservation = _memory_bytes(memory, "reservation")
        out.memory_swap = _memory_bytes(memory, "swap")
        oom = memory.get("disableOOMKiller")
        if oom is not None and not isinstance(oom, bool):
            raise InvalidArgument(f"{P}.memory.disableOOMKiller must be true or false, "
                                  f"not {oom!r}")
        out.disable_oom_killer = oom
        swappiness = _int(memory, "swappiness", f"{P}.memory.swappiness")
        if swappiness is not None and swappiness != -1 and not 0 <= swappiness <= 100:
            raise InvalidArgument(f"{P}.memory.swappiness must be between 0 and 100, not "
                                  f"{swappiness}")
        out.memory_swappiness = None if swappiness == -1 else swappiness
        limit, swap = out.memory_limit, out.memory_swap
        if limit == UNLIMITED and swap is None:
            # runc: "unlimited memory" without a swap value means memory+swap unlimited
            # too (else the v1 kernel refuses a limit above the memory+swap limit).
            out.memory_swap = UNLIMITED
        elif swap is not None and swap != UNLIMITED:
            if limit == UNLIMITED:
                raise InvalidArgument(f"{P}.memory.swap {swap} limits memory+swap while "
                                      f"{P}.memory.limit is unlimited (-1)")
            if limit is not None and swap < limit:
                raise InvalidArgument(f"{P}.memory.swap ({swap}, memory+swap) must be at "
                                      f"least {P}.memory.limit ({limit})")

    cpu = _section(resources, "cpu")
    if cpu is not None:
        shares = _int(cpu, "shares", f"{P}.cpu.shares")
        if shares is not None and shares < 0:
            raise InvalidArgument(f"{P}.cpu.shares must not be negative, not {shares}")
        out.cpu_shares = shares or None
        quota = _int(cpu, "quota", f"{P}.cpu.quota")
        out.cpu_quota = None if not quota else (UNLIMITED if quota < 0 else quota)
        period = _int(cpu, "period", f"{P}.cpu.period")
        if period is not None and period < 0:
            raise InvalidArgument(f"{P}.cpu.period must not be negative, not {period}")
        out.cpu_period = period or None
        out.cpuset_cpus = _cpu_list(cpu, "cpus")
        out.cpuset_mems = _cpu_list(cpu, "mems")

    pids = _section(resources, "pids")
    if pids is not None:
        limit = _int(pids, "limit", f"{P}.pids.limit")
        if limit is not None:
            out.pids_limit = UNLIMITED if limit <= 0 else limit

    block_io = _section(resources, "blockIO")
    if block_io is not None:
        weight = _int(block_io, "weight", f"{P}.blockIO.weight")
        if weight and not 10 <= weight <= 1000:
            raise InvalidArgument(f"{P}.blockIO.weight must be between 10 and 1000, "
                                  f"not {weight}")
        out.blkio_weight = weight or None
        out.blkio_weight_devices = _block_devices(block_io, "weightDevice", "weight")
        for key in THROTTLE_KEYS:
            entries = _block_devices(block_io, key, "rate")
            if entries:
                out.blkio_throttles[key] = entries

    devices = resources.get("devices")
    if devices is not None:
        if not isinstance(devices, list | tuple):
            raise InvalidArgument(f"{P}.devices must be an array, not {devices!r}")
        out.devices = tuple(_device(rule, f"{P}.devices[{i}]")
                            for i, rule in enumerate(devices))

    unified = _section(resources, "unified")
    if unified is not None:
        out.unified = tuple(_unified_entry(key, value) for key, value in unified.items())
    return out


#: OCI ``blockIO`` throttle lists -> (v1 file, v2 ``io.max`` key).
THROTTLE_KEYS = {"throttleReadBpsDevice": ("blkio.throttle.read_bps_device", "rbps"),
                 "throttleWriteBpsDevice": ("blkio.throttle.write_bps_device", "wbps"),
                 "throttleReadIOPSDevice": ("blkio.throttle.read_iops_device", "riops"),
                 "throttleWriteIOPSDevice": ("blkio.throttle.write_iops_device", "wiops")}


def _block_devices(block_io: Mapping[str, Any], key: str, value_key: str
                   ) -> tuple[tuple[int, int, int], ...]:
    entries = block_io.get(key)
    if entries is None:
        return ()
    if not isinstance(entries, list | tuple):
        raise InvalidArgument(f"{P}.blockIO.{key} must be an array, not {entries!r}")
    out = []
    for i, entry in enumerate(entries):
        field = f"{P}.blockIO.{key}[{i}]"
        _need_object(entry, field)
        numbers = []
        for name in ("major", "minor", value_key):
            number = _int(entry, name, f"{field}.{name}")
            if number is None or number < 0:
                raise InvalidArgument(f"{field}.{name} must be a number >= 0, not "
                                      f"{number!r}")
            numbers.append(number)
        if value_key == "weight" and not 10 <= numbers[2] <= 1000:
            raise InvalidArgument(f"{field}.weight must be between 10 and 1000, not "
                                  f"{numbers[2]}")
        out.append((numbers[0], numbers[1], numbers[2]))
    return tuple(out)


def _need_object(value: object, field: str) -> None:
    if not isinstance(value, dict):
        raise InvalidArgument(f"{field} must be an object, not {value!r}")


def _section(resources: Mapping[str, Any], key: str) -> Mapping[str, Any] | None:
    section: object = resources.get(key)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise InvalidArgument(f"{P}.{key} must be an object, not {section!r}")
    return section


def _int(section: Mapping[str, Any], key: str, field: str) -> int | None:
    value: object = section.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidArgument(f"{field} must be an integer, not {value!r}")
    return value


def _memory_bytes(memory: Mapping[str, Any], key: str) -> int | None:
    field = f"{P}.memory.{key}"
    value = _int(memory, key, field)
    if value is not None and value < UNLIMITED:
        raise InvalidArgument(f"{field} must be -1 (unlimited) or a number of bytes, "
                              f"not {value}")
    return value or None


_CPU_LIST_CHARS = frozenset("0123456789,-:/")


def _cpu_list(cpu: Mapping[str, Any], key: str) -> str | None:
    field = f"{P}.cpu.{key}"
    value = cpu.get(key)
    if value is None:
        return None
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string like \"0-3,6\", not {value!r}")
    value = value.strip()
    if not set(value) <= _CPU_LIST_CHARS:
        raise InvalidArgument(f"{field} must be a list like \"0-3,6\", not {value!r}")
    return value or None


def _device(rule: object, field: str) -> DeviceRule:
    _need_object(rule, field)
    assert isinstance(rule, dict)
    allow = rule.get("allow")
    if not isinstance(allow, bool):
        raise InvalidArgument(f"{field}.allow must be true or false, not {allow!r}")
    kind = rule.get("type", "a")
    if kind not in ("a", "b", "c"):
        raise InvalidArgument(f"{field}.type must be \"a\", \"b\" or \"c\", not {kind!r}")
    numbers: list[int | None] = []
    for key in ("major", "minor"):
        number = _int(rule, key, f"{field}.{key}")
        if number is not None and number < -1:
            raise InvalidArgument(f"{field}.{key} must be -1 (any) or a device number, "
                                  f"not {number}")
        numbers.append(None if number in (None, -1) else number)
    access = rule.get("access", "rwm")
    if (not isinstance(access, str) or not access or not set(access) <= set("rwm")
            or len(set(access)) != len(access)):
        raise InvalidArgument(f"{field}.access must be a combination of r, w and m, "
                              f"not {access!r}")
    return DeviceRule(allow, kind, numbers[0], numbers[1], access)


def _unified_entry(key: object, value: object) -> tuple[str, str]:
    field = f"{P}.unified[{key!r}]"
    if (not isinstance(key, str) or "/" in key or "\0" in key or "." not in key
            or key.startswith(".")):
        raise InvalidArgument(f"{field}: the key must be a cgroup interface file name "
                              "like \"memory.high\"")
    if not isinstance(value, str):
        raise InvalidArgument(f"{field} must be a string, not {value!r}")
    return key, value
