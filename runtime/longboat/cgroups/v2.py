"""cgroup v2: one unified hierarchy; controllers are handed down through each ancestor's
``cgroup.subtree_control``.

Device rules are not applied here: on v2 they need an eBPF program attached to the cgroup
(BPF_CGROUP_DEVICE), which this package does not load. See docs/cgroups.md.
"""

from __future__ import annotations

import os
import time

from longboat.cgroups import _files
from longboat.cgroups.base import DEFAULT_ROOT, Cgroup, CgroupStats, normalize_path
from longboat.cgroups.resources import (
    THROTTLE_KEYS,
    UNLIMITED,
    P,
    Resources,
    blkio_to_io_weight,
    parse_resources,
    shares_to_weight,
)
from longboat.errors import InvalidArgument, NotFound, SystemFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

# Controllers a container's cgroup gets, when the host has them.
WANTED_CONTROLLERS = ("cpuset", "cpu", "io", "memory", "pids")

_DEFAULT_PERIOD = "100000"


def _limit(value: int) -> str:
    return "max" if value == UNLIMITED else str(value)


_SIGKILL = 9  # Linux's number; the signal module costs a millisecond to import


class CgroupV2(Cgroup):
    """A container's cgroup in the unified hierarchy mounted at ``root``."""

    version = 2

    def __init__(self, path: str, root: str = DEFAULT_ROOT) -> None:
        self.path = normalize_path(path)
        self.root = root.rstrip("/") or "/"
        self.dir = self.root.rstrip("/") + self.path

    # -- lifecycle ------------------------------------------------------------------

    def create(self) -> None:
        available = _files.read(self.root, "cgroup.controllers").split()
        wanted = [c for c in WANTED_CONTROLLERS if c in available]
        parent = self.root.rstrip("/")
        for part in self.path.strip("/").split("/"):
            self._enable(parent, wanted)
            level = f"{parent}/{part}"
            try:
                os.mkdir(level, 0o755)
            except FileExistsError:
                pass
            except OSError as exc:
                raise SystemFault(f"cannot create cgroup {level}: {exc.strerror}") from exc
            parent = level

    @staticmethod
    def _enable(directory: str, wanted: list[str]) -> None:
        text = _files.read_optional(directory, "cgroup.subtree_control") or ""
        enabled = {token.lstrip("+") for token in text.split()}
        missing = [c for c in wanted if c not in enabled]
        if not missing:
            return
        try:
            _files.write(directory, "cgroup.subtree_control",
                         " ".join(f"+{c}" for c in missing), field="cgroup.subtree_control")
        except InvalidArgument as exc:
            raise SystemFault(
                f"cannot enable the {' '.join(missing)} controllers for the cgroups below "
                f"{directory}: {exc.message} (a non-root cgroup with processes of its own "
                "cannot hand controllers down)") from exc

    def exists(self) -> bool:
        return os.path.isdir(self.dir)

    def add(self, pid: int) -> None:
        if pid == 0:
            raise InvalidArgument("not a process id: 0")
        _files.move_process(self.dir, pid)

    def add_self(self, *, v2_done: bool = False) -> None:
        if not v2_done:
            _files.move_process(self.dir, 0)

    def clone_target(self) -> str | None:
        return self.dir

    def destroy(self, timeout: float = 2.0) -> None:
        _files.remove_tree(self.dir, time.monotonic() + timeout)

    # -- resources ------------------------------------------------------------------

    def set(self, resources: Mapping[str, Any]) -> None:
        r = parse_resources(resources)
        d = self.dir
        if r.wants_memory:
            self._set_memory(r)
        if r.cpu_shares is not None:
            _files.write(d, "cpu.weight", str(shares_to_weight(r.cpu_shares)),
                         field=f"{P}.cpu.shares")
        if r.cpu_quota is not None or r.cpu_period is not None:
            self._set_cpu_max(r)
        if r.cpuset_cpus is not None:
            _files.write(d, "cpuset.cpus", r.cpuset_cpus, field=f"{P}.cpu.cpus")
        if r.cpuset_mems is not None:
            _files.write(d, "cpuset.mems", r.cpuset_mems, field=f"{P}.cpu.mems")
        if r.pids_limit is not None:
            _files.write(d, "pids.max", _limit(r.pids_limit), field=f"{P}.pids.limit")
        if r.blkio_weight is not None:
            field = f"{P}.blockIO.weight"
            if _files.exists(d, "io.bfq.weight"):
                # BFQ takes the blkio scale (1..1000) as it is.
                _files.write(d, "io.bfq.weight", str(r.blkio_weight), field=field)
            else:
                _files.write(d, "io.weight", str(blkio_to_io_weight(r.blkio_weight)),
                             field=field, missing=f"{field}: blkio weight not supported by "
                             "this kernel (neither io.bfq.weight nor io.weight exists)")
        if r.blkio_weight_devices or r.blkio_throttles:
            self._set_io_devices(r)
        for key, value in r.unified:
            _files.write(d, key, value, field=f"{P}.unified[{key!r}]")
        # r.devices: needs eBPF on v2; not applied (docs/cgroups.md).

    def _set_io_devices(self, r: Resources) -> None:
        """Per-device weights (io.bfq.weight as is, else io.weight scaled) and the
        throttles in io.max (a rate of 0, no limit in Docker's words, is "max")."""
        d = self.dir
        bfq = _files.exists(d, "io.bfq.weight")
        for i, (major, minor, weight) in enumerate(r.blkio_weight_devices):
            value = weight if bfq else blkio_to_io_weight(weight)
            _files.write(d, "io.bfq.weight" if bfq else "io.weight",
                         f"{major}:{minor} {value}", field=f"{P}.blockIO.weightDevice[{i}]")
        for key, entries in r.blkio_throttles.items():
            name = THROTTLE_KEYS[key][1]
            for i, (major, minor, rate) in enumerate(entries):
                _files.write(d, "io.max", f"{major}:{minor} {name}={rate or 'max'}",
                             field=f"{P}.blockIO.{key}[{i}]")

    def _set_memory(self, r: Resources) -> None:
        d = self.dir
        limit, swap = r.memory_limit, r.memory_swap
        swap_value: str | None = None
        if swap is not None and swap != UNLIMITED:
            # OCI's swap is memory+swap; memory.swap.max is the swap alone.
            if limit is None:
                current = _files.read(d, "memory.max").strip()
                if current == "max":
                    raise InvalidArgument(f"{P}.memory.swap needs {P}.memory.limit: the "
                                          "cgroup has no memory limit to add swap to")
                limit = int(current)
                if swap < limit:
                    raise InvalidArgument(f"{P}.memory.swap ({swap}, memory+swap) must be "
                                          f"at least the memory limit ({limit})")
            swap_value = str(swap - limit)
        # Swap first: v2 has no order to keep between the two, and a host without swap
        # accounting then refuses the request before the memory limit changed.
        if swap_value is not None:
            _files.write(d, "memory.swap.max", swap_value, field=f"{P}.memory.swap",
                         missing=f"{P}.memory.swap was set but this kernel does not account "
                         "swap (no memory.swap.max), so a memory+swap limit cannot be "
                         "enforced")
        elif swap == UNLIMITED:
            try:
                _files.write(d, "memory.swap.max", "max", field=f"{P}.memory.swap")
            except SystemFault:
                if _files.exists(d, "memory.swap.max"):
                    raise
                # no swap accounting: unlimited is what the host has anyway
        if r.memory_limit is not None:
            _files.write(d, "memory.max", _limit(r.memory_limit), field=f"{P}.memory.limit")
        if r.memory_reservation is not None:
            _files.write(d, "memory.low", _limit(r.memory_reservation),
                         field=f"{P}.memory.reservation")
        # r.disable_oom_killer: v2 has no switch for it (memory.oom.group is another
        # thing); not applied, as with runc.

    def _set_cpu_max(self, r: Resources) -> None:
        # cpu.max holds "quota period"; keep whichever half was not asked for.
        quota, period = "max", _DEFAULT_PERIOD
        if r.cpu_quota is None or r.cpu_period is None:
            current = (_files.read_optional(self.dir, "cpu.max") or "").split()
            if current:
                quota = current[0]
            if len(current) > 1:
                period = current[1]
        if r.cpu_quota is not None:
            quota = _limit(r.cpu_quota)
        if r.cpu_period is not None:
            period = str(r.cpu_period)
        field = f"{P}.cpu.quota" if r.cpu_quota is not None else f"{P}.cpu.period"
        _files.write(self.dir, "cpu.max", f"{quota} {period}", field=field)

    # -- state ----------------------------------------------------------------------

    def _check_exists(self) -> None:
        if not self.exists():
            raise NotFound(f"cgroup {self.dir} does not exist")

    def stats(self) -> CgroupStats:
        self._check_exists()
        d = self.dir

        def read(name: str) -> str | None:
            return _files.read_optional(d, name)

        limit = (read("memory.max") or "max").strip()
        pids_max = (read("pids.max") or "max").strip()
        return CgroupStats(
            memory_usage=_files.int_or_zero(read("memory.current")),
            memory_peak=_files.int_or_zero(read("memory.peak")),
            memory_limit=None if limit == "max" else int(limit),
            cpu_usage_ns=_files.keyed_int(read("cpu.stat"), "usage_usec") * 1000,
            pids_current=_files.int_or_zero(read("pids.current")),
            pids_limit=None if pids_max == "max" else int(pids_max),
            oom_kills=_files.keyed_int(read("memory.events"), "oom_kill"),
        )

    def oom_kills(self) -> int:
        return _files.keyed_int(_files.read(self.dir, "memory.events"), "oom_kill")

    def pids(self) -> list[int]:
        self._check_exists()
        return sorted(_files.procs_below(self.dir))

    # -- freezer --------------------------------------------------------------------

    def _events_frozen(self) -> bool:
        return _files.keyed_int(_files.read(self.dir, "cgroup.events"), "frozen") == 1

    def freeze(self, timeout: float = 5.0) -> None:
        _files.write(self.dir, "cgroup.freeze", "1", field="freeze",
                     missing="this kernel cannot freeze cgroup v2 (no cgroup.freeze; "
                     "needs Linux 5.2 or later)")
        if not _files.wait_until(self._events_frozen, timeout):
            _files.write(self.dir, "cgroup.freeze", "0", field="thaw")
            raise SystemFault(f"cgroup {self.path} did not freeze within {timeout} s; "
                              "thawed it again")

    def thaw(self, timeout: float = 5.0) -> None:
        _files.write(self.dir, "cgroup.freeze", "0", field="thaw")
        if not _files.wait_until(lambda: not self._events_frozen(), timeout):
            raise SystemFault(f"cgroup {self.path} did not thaw within {timeout} s")

    def frozen(self) -> bool:
        return self._events_frozen()

    def signal_all(self, sig: int) -> None:
        if sig == _SIGKILL and _files.exists(self.dir, "cgroup.kill"):
            # Linux 5.14+: kills the whole subtree atomically, forks included.
            _files.write(self.dir, "cgroup.kill", "1", field="signal")
            return
        if sig != _SIGKILL or not _files.exists(self.dir, "cgroup.freeze"):
            _files.kill_all(self.pids(), sig)
            return
        self._kill_frozen(sig)
