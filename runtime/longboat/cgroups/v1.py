"""cgroup v1: one directory per mounted hierarchy (memory, cpu, pids, name=systemd, ...).

A container's cgroup is the same relative path in every hierarchy mounted under the root;
which hierarchies exist is read from ``/proc/self/mountinfo`` (once per ``open_cgroup``).
"""

from __future__ import annotations

import os
import time

from longboat.cgroups import _files
from longboat.cgroups.base import DEFAULT_ROOT, Cgroup, CgroupStats, Record, normalize_path
from longboat.cgroups.resources import (
    THROTTLE_KEYS,
    UNLIMITED,
    P,
    Resources,
    parse_resources,
)
from longboat.errors import InvalidArgument, NotFound, SystemFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping, Sequence
    from typing import Any

# Mount options of a v1 cgroup mount that name a controller (the rest are flags such as
# rw, clone_children, noprefix, release_agent=...).
KNOWN_SUBSYSTEMS = frozenset({
    "cpuset", "cpu", "cpuacct", "blkio", "memory", "devices", "freezer", "net_cls",
    "perf_event", "net_prio", "hugetlb", "pids", "rdma", "misc", "debug",
})

# Limits at or above this are "unlimited": the kernel shows LONG_MAX rounded down to a
# page (9223372036854771712 with 4 KiB pages).
_UNLIMITED_FROM = (1 << 63) - (1 << 16)


_SIGKILL = 9  # Linux's number; the signal module costs a millisecond to import


class Hierarchy(Record):
    """One mounted v1 hierarchy. ``options`` is what ``mount -t cgroup`` takes as data to
    mount it again (e.g. in a container): "memory", "cpu,cpuacct", "name=systemd"."""

    __slots__ = ("mountpoint", "name", "options")

    def __init__(self, name: str, mountpoint: str, options: str) -> None:
        self.name = name
        self.mountpoint = mountpoint
        self.options = options

    @property
    def subsystems(self) -> tuple[str, ...]:
        return tuple(self.options.split(","))


def v1_hierarchies(root: str = DEFAULT_ROOT) -> list[Hierarchy]:
    """The v1 hierarchies mounted below ``root``, in mount order."""
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        return parse_mountinfo(f.read(), root)


def hybrid_unified(text: str, root: str = DEFAULT_ROOT) -> str | None:
    """On a hybrid host (v1 controllers plus a cgroup2 mount below ``root``, usually
    ``unified``), that mount point. It holds no controllers, but systemd and runc track
    whose processes are whose there, so a container's cgroup is made in it too."""
    prefix = os.path.normpath(root).rstrip("/") + "/"
    for line in text.splitlines():
        mount, sep, fs = line.partition(" - ")
        fields = mount.split()
        if sep and len(fields) >= 5 and fs.split()[:1] == ["cgroup2"]:
            mountpoint = _unescape(fields[4])
            if mountpoint.startswith(prefix):
                return mountpoint
    return None


def parse_mountinfo(text: str, root: str = DEFAULT_ROOT) -> list[Hierarchy]:
    """The ``cgroup`` (v1) mounts below ``root`` in a mountinfo text; a hierarchy mounted
    twice is listed once."""
    prefix = os.path.normpath(root).rstrip("/") + "/"
    found: list[Hierarchy] = []
    seen: set[str] = set()
    for line in text.splitlines():
        mount, sep, fs = line.partition(" - ")
        fields, fs_fields = mount.split(), fs.split()
        if not sep or len(fields) < 5 or len(fs_fields) < 3 or fs_fields[0] != "cgroup":
            continue
        device, mountpoint = fields[2], _unescape(fields[4])
        if not mountpoint.startswith(prefix) or device in seen:
            continue
        options = [o for o in fs_fields[2].split(",")
                   if o in KNOWN_SUBSYSTEMS or o.startswith("name=")]
        if not options:
            continue
        seen.add(device)
        found.append(Hierarchy(os.path.basename(mountpoint), mountpoint, ",".join(options)))
    return found


def _unescape(field: str) -> str:
    # mountinfo escapes space, tab, newline and backslash as \ooo.
    if "\\" not in field:
        return field
    out, i = [], 0
    while i < len(field):
        if field[i] == "\\" and field[i + 1:i + 4].isdigit():
            out.append(chr(int(field[i + 1:i + 4], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


class CgroupV1(Cgroup):
    """A container's cgroup in every v1 hierarchy."""

    version = 1

    def __init__(self, path: str, hierarchies: Sequence[Hierarchy],
                 unified: str | None = None) -> None:
        self.path = normalize_path(path)
        self.hierarchies = tuple(hierarchies)
        # hierarchy name -> this cgroup's directory in it
        self.paths = {h.name: h.mountpoint + self.path for h in self.hierarchies}
        # the controller-less cgroup2 mount of a hybrid host: membership only
        self.unified = None if unified is None else unified + self.path
        self._by_subsystem: dict[str, Hierarchy] = {}
        for h in self.hierarchies:
            for subsystem in h.subsystems:
                self._by_subsystem.setdefault(subsystem, h)

    def dir(self, subsystem: str) -> str | None:
        """This cgroup's directory in the hierarchy holding ``subsystem``, if mounted."""
        h = self._by_subsystem.get(subsystem)
        return None if h is None else h.mountpoint + self.path

    def _need(self, subsystem: str, field: str) -> str:
        directory = self.dir(subsystem)
        if directory is None:
            raise SystemFault(f"{field} needs the {subsystem} cgroup controller, which is "
                              "not mounted on this host")
        return directory

    # -- lifecycle ------------------------------------------------------------------

    def create(self) -> None:
        parts = self.path.strip("/").split("/")
        for h in self.hierarchies:
            cpuset = "cpuset" in h.subsystems
            parent = h.mountpoint
            cpus = mems = ""
            if cpuset:
                cpus = _files.read(parent, "cpuset.cpus").strip()
                mems = _files.read(parent, "cpuset.mems").strip()
            for part in parts:
                level = f"{parent}/{part}"
                try:
                    os.mkdir(level, 0o755)
                except FileExistsError:
                    pass
                except OSError as exc:
                    raise SystemFault(f"cannot create cgroup {level}: {exc.strerror}") from exc
                if cpuset:
                    # A new cpuset starts with no cpus and no mems, and adding a task to
                    # it fails with ENOSPC: inherit the parent's (or keep what is set).
                    cpus = self._init_cpuset(level, "cpuset.cpus", cpus)
                    mems = self._init_cpuset(level, "cpuset.mems", mems)
                parent = level
        if self.unified is not None:
            try:
                os.makedirs(self.unified, 0o755, exist_ok=True)
            except OSError as exc:
                raise SystemFault(f"cannot create cgroup {self.unified}: {exc.strerror}") from exc

    @staticmethod
    def _init_cpuset(level: str, name: str, inherited: str) -> str:
        current = _files.read(level, name).strip()
        if current:
            return current
        _files.write(level, name, inherited, field=f"{P}.cpu (inherited {name})")
        return inherited

    def exists(self) -> bool:
        return any(os.path.isdir(d) for d in self.paths.values())

    def add(self, pid: int) -> None:
        if pid == 0:
            raise InvalidArgument("not a process id: 0")
        for directory in self.paths.values():
            _files.move_process(directory, pid)
        if self.unified is not None:
            _files.move_process(self.unified, pid)

    def add_self(self, *, v2_done: bool = False) -> None:
        if not _files.single_threaded():
            self.add(os.getpid())
            return
        for directory in self.paths.values():
            _files.move_process(directory, 0, name="tasks")
        if self.unified is not None and not v2_done:
            _files.move_process(self.unified, 0)

    def clone_target(self) -> str | None:
        return self.unified

    def destroy(self, timeout: float = 2.0) -> None:
        deadline = time.monotonic() + timeout
        for directory in self.paths.values():
            _files.remove_tree(directory, deadline)
        if self.unified is not None:
            _files.remove_tree(self.unified, deadline)

    # -- resources ------------------------------------------------------------------

    def set(self, resources: Mapping[str, Any]) -> None:
        r = parse_resources(resources)
        if r.unified:
            raise InvalidArgument(f"{P}.unified needs cgroup v2; this host uses cgroup v1")
        # Refuse a request for a missing controller before anything is written.
        for wanted, subsystem, field in (
                (r.wants_memory, "memory", f"{P}.memory"),
                ((r.cpu_shares, r.cpu_quota, r.cpu_period) != (None, None, None), "cpu",
                 f"{P}.cpu"),
                ((r.cpuset_cpus, r.cpuset_mems) != (None, None), "cpuset", f"{P}.cpu.cpus/mems"),
                (r.pids_limit is not None, "pids", f"{P}.pids"),
                (r.blkio_weight is not None, "blkio", f"{P}.blockIO.weight"),
                (bool(r.blkio_weight_devices or r.blkio_throttles), "blkio",
                 f"{P}.blockIO"),
                (bool(r.devices), "devices", f"{P}.devices")):
            if wanted:
                self._need(subsystem, field)
        if r.wants_memory:
            self._set_memory(r)
        if r.cpu_shares is not None or r.cpu_quota is not None or r.cpu_period is not None:
            self._set_cpu(r)
        if r.cpuset_cpus is not None:
            d = self._need("cpuset", f"{P}.cpu.cpus")
            _files.write(d, "cpuset.cpus", r.cpuset_cpus, field=f"{P}.cpu.cpus")
        if r.cpuset_mems is not None:
            d = self._need("cpuset", f"{P}.cpu.mems")
            _files.write(d, "cpuset.mems", r.cpuset_mems, field=f"{P}.cpu.mems")
        if r.pids_limit is not None:
            d = self._need("pids", f"{P}.pids.limit")
            value = "max" if r.pids_limit == UNLIMITED else str(r.pids_limit)
            _files.write(d, "pids.max", value, field=f"{P}.pids.limit")
        if r.blkio_weight is not None:
            self._set_blkio_weight(r.blkio_weight)
        if r.blkio_weight_devices or r.blkio_throttles:
            self._set_blkio_devices(r)
        if r.devices:
            d = self._need("devices", f"{P}.devices")
            for i, rule in enumerate(r.devices):
                _files.write(d, "devices.allow" if rule.allow else "devices.deny",
                             rule.v1_entry(), field=f"{P}.devices[{i}]")

    def _set_memory(self, r: Resources) -> None:
        d = self._need("memory", f"{P}.memory")
        limit, swap = r.memory_limit, r.memory_swap
        if swap is not None and not _files.exists(d, "memory.memsw.limit_in_bytes"):
            if swap != UNLIMITED:
                raise SystemFault(
                    f"{P}.memory.swap was set but this kernel does not account swap "
                    "(no memory.memsw.limit_in_bytes; boot with swapaccount=1), so a "
                    "memory+swap limit cannot be enforced")
            swap = None  # unlimited memory+swap is what the host has anyway
        lim_field, sw_field = f"{P}.memory.limit", f"{P}.memory.swap"
        if limit is not None and swap is not None:
            # The kernel keeps memory.limit <= memory.memsw.limit at every step: raise
            # memsw first when it grows past the current limit, else lower the limit first.
            current = int(_files.read(d, "memory.limit_in_bytes"))
            if swap == UNLIMITED or swap >= current:
                _files.write(d, "memory.memsw.limit_in_bytes", str(swap), field=sw_field)
                _files.write(d, "memory.limit_in_bytes", str(limit), field=lim_field)
            else:
                _files.write(d, "memory.limit_in_bytes", str(limit), field=lim_field)
                _files.write(d, "memory.memsw.limit_in_bytes", str(swap), field=sw_field)
        elif limit is not None:
            memsw = _files.read_optional(d, "memory.memsw.limit_in_bytes")
            if memsw is not None and limit > int(memsw):
                raise InvalidArgument(f"{lim_field} {limit} is above the current memory+swap "
                                      f"limit {int(memsw)}; set {sw_field} as well")
            _files.write(d, "memory.limit_in_bytes", str(limit), field=lim_field)
        elif swap is not None:
            _files.write(d, "memory.memsw.limit_in_bytes", str(swap), field=sw_field)
        if r.memory_reservation is not None:
            _files.write(d, "memory.soft_limit_in_bytes", str(r.memory_reservation),
                         field=f"{P}.memory.reservation")
        if r.disable_oom_killer is not None:
            _files.write(d, "memory.oom_control", "1" if r.disable_oom_killer else "0",
                         field=f"{P}.memory.disableOOMKiller")
        if r.memory_swappiness is not None:
            _files.write(d, "memory.swappiness", str(r.memory_swappiness),
                         field=f"{P}.memory.swappiness")

    def _set_cpu(self, r: Resources) -> None:
        d = self._need("cpu", f"{P}.cpu")
        if r.cpu_shares is not None:
            _files.write(d, "cpu.shares", str(r.cpu_shares), field=f"{P}.cpu.shares")
        period_refused: InvalidArgument | None = None
        if r.cpu_period is not None:
            try:
                _files.write(d, "cpu.cfs_period_us", str(r.cpu_period),
                             field=f"{P}.cpu.period")
            except InvalidArgument as exc:
                # A shorter period can be refused while the old quota/period ratio would
                # exceed the parent's bandwidth; retry once the new quota is in place.
                if r.cpu_quota is None:
                    raise
                period_refused = exc
        if r.cpu_quota is not None:
            _files.write(d, "cpu.cfs_quota_us", str(r.cpu_quota), field=f"{P}.cpu.quota")
        if period_refused is not None:
            _files.write(d, "cpu.cfs_period_us", str(r.cpu_period), field=f"{P}.cpu.period")

    def _set_blkio_devices(self, r: Resources) -> None:
        """Per-device weights (BFQ's file when there is one, as runc) and throttles,
        one "major:minor value" line each (a rate of 0 removes that device's limit)."""
        d = self._need("blkio", f"{P}.blockIO")
        if r.blkio_weight_devices:
            name = ("blkio.bfq.weight_device" if _files.exists(d, "blkio.bfq.weight_device")
                    else "blkio.weight_device")
            for i, (major, minor, weight) in enumerate(r.blkio_weight_devices):
                _files.write(d, name, f"{major}:{minor} {weight}",
                             field=f"{P}.blockIO.weightDevice[{i}]")
        for key, entries in r.blkio_throttles.items():
            name = THROTTLE_KEYS[key][0]
            for i, (major, minor, rate) in enumerate(entries):
                _files.write(d, name, f"{major}:{minor} {rate}",
                             field=f"{P}.blockIO.{key}[{i}]")

    def _set_blkio_weight(self, weight: int) -> None:
        field = f"{P}.blockIO.weight"
        d = self._need("blkio", field)
        # BFQ exposes its own weight file; CFQ's blkio.weight went away with the legacy
        # block layer. Prefer BFQ like runc does.
        for name in ("blkio.bfq.weight", "blkio.weight"):
            if _files.exists(d, name):
                _files.write(d, name, str(weight), field=field)
                return
        if not os.path.isdir(d):
            raise NotFound(f"cgroup {d} does not exist")
        raise SystemFault(f"{field}: blkio weight not supported by this kernel (neither "
                          "blkio.bfq.weight nor blkio.weight exists)")

    # -- state ----------------------------------------------------------------------

    def _check_exists(self) -> None:
        if not self.exists():
            raise NotFound(f"cgroup {self.path} does not exist")

    def stats(self) -> CgroupStats:
        self._check_exists()
        stats = CgroupStats()
        memory = self.dir("memory")
        if memory is not None:
            stats.memory_usage = _files.int_or_zero(
                _files.read_optional(memory, "memory.usage_in_bytes"))
            stats.memory_peak = _files.int_or_zero(
                _files.read_optional(memory, "memory.max_usage_in_bytes"))
            limit = _files.int_or_zero(_files.read_optional(memory, "memory.limit_in_bytes"))
            stats.memory_limit = None if limit == 0 or limit >= _UNLIMITED_FROM else limit
            stats.oom_kills = _files.keyed_int(
                _files.read_optional(memory, "memory.oom_control"), "oom_kill")
        cpuacct = self.dir("cpuacct")
        if cpuacct is not None:
            stats.cpu_usage_ns = _files.int_or_zero(
                _files.read_optional(cpuacct, "cpuacct.usage"))
        pids = self.dir("pids")
        if pids is not None:
            stats.pids_current = _files.int_or_zero(_files.read_optional(pids, "pids.current"))
            text = (_files.read_optional(pids, "pids.max") or "max").strip()
            stats.pids_limit = None if text == "max" else int(text)
        return stats

    def oom_kills(self) -> int:
        d = self._need("memory", "oom_kills")
        return _files.keyed_int(_files.read(d, "memory.oom_control"), "oom_kill")

    def pids(self) -> list[int]:
        self._check_exists()
        found: set[int] = set()
        for directory in self.paths.values():
            found |= _files.procs_below(directory)
        return sorted(found)

    # -- freezer --------------------------------------------------------------------

    def _freezer_state(self) -> str:
        return _files.read(self._need("freezer", "freeze"), "freezer.state").strip()

    def freeze(self, timeout: float = 5.0) -> None:
        d = self._need("freezer", "freeze")

        def frozen() -> bool:
            if self._freezer_state() == "FROZEN":
                return True
            # FREEZING can stall on a task in the middle of something; asking again
            # makes the kernel retry the tasks it could not freeze yet.
            _files.write(d, "freezer.state", "FROZEN", field="freeze")
            return False

        _files.write(d, "freezer.state", "FROZEN", field="freeze")
        if not _files.wait_until(frozen, timeout):
            _files.write(d, "freezer.state", "THAWED", field="thaw")
            raise SystemFault(f"cgroup {self.path} did not freeze within {timeout} s "
                              f"(state {self._freezer_state()}); thawed it again")

    def thaw(self, timeout: float = 5.0) -> None:
        d = self._need("freezer", "thaw")
        _files.write(d, "freezer.state", "THAWED", field="thaw")
        if not _files.wait_until(lambda: self._freezer_state() == "THAWED", timeout):
            raise SystemFault(f"cgroup {self.path} did not thaw within {timeout} s")

    def frozen(self) -> bool:
        return self._freezer_state() == "FROZEN"

    def signal_all(self, sig: int) -> None:
        freezer = self.dir("freezer")
        if sig != _SIGKILL or freezer is None or not os.path.isdir(freezer):
            _files.kill_all(self.pids(), sig)
            return
        self._kill_frozen(sig)

