"""The interface both cgroup versions implement, and the value types they return.

The records here are small slotted classes rather than dataclasses on purpose: this package
is imported by every ``longboat-runtime create``, and ``dataclasses`` pulls in ``inspect``
(about 6 ms of imports on top of what the runtime already loads).
"""

from __future__ import annotations

import abc

from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Any

DEFAULT_ROOT = "/sys/fs/cgroup"


class Record:
    """A value type: fields in ``__slots__``; equality, hashing and repr by value."""

    __slots__: tuple[str, ...] = ()

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def as_dict(self) -> dict[str, object]:
        return dict(zip(self.__slots__, self._values(), strict=True))

    def __eq__(self, other: object) -> bool:
        if type(other) is not type(self):
            return NotImplemented
        assert isinstance(other, Record)
        return self._values() == other._values()

    def __hash__(self) -> int:
        return hash(self._values())

    def __repr__(self) -> str:
        fields = ", ".join(f"{k}={v!r}" for k, v in zip(self.__slots__, self._values(),
                                                        strict=True))
        return f"{type(self).__name__}({fields})"


class CgroupStats(Record):
    """What ``docker stats`` needs from a container's cgroup. Limits are None when
    unlimited; counters a host cannot provide read as 0."""

    __slots__ = (
        "cpu_usage_ns",
        "memory_limit",
        "memory_peak",
        "memory_usage",
        "oom_kills",
        "pids_current",
        "pids_limit",
    )

    def __init__(self, memory_usage: int = 0, memory_peak: int = 0,
                 memory_limit: int | None = None, cpu_usage_ns: int = 0,
                 pids_current: int = 0, pids_limit: int | None = None,
                 oom_kills: int = 0) -> None:
        self.memory_usage = memory_usage
        self.memory_peak = memory_peak
        self.memory_limit = memory_limit
        self.cpu_usage_ns = cpu_usage_ns
        self.pids_current = pids_current
        self.pids_limit = pids_limit
        self.oom_kills = oom_kills


def normalize_path(path: str) -> str:
    """``/a/b`` for an OCI ``linux.cgroupsPath``; relative paths are taken from the root.
    Refuses ``..`` and the root cgroup itself, which no container may own."""
    if not isinstance(path, str) or "\0" in path:
        raise InvalidArgument(f"linux.cgroupsPath must be a path, not {path!r}")
    parts = [p for p in path.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise InvalidArgument(f"linux.cgroupsPath {path!r} must not contain '..'")
    if not parts:
        raise InvalidArgument(f"linux.cgroupsPath {path!r} names the root cgroup; "
                              "a container needs a cgroup of its own")
    return "/" + "/".join(parts)


class Cgroup(abc.ABC):
    """One container's cgroup, in every hierarchy the host has (v1) or in the single
    unified hierarchy (v2). Creating the object touches nothing on the host."""

    version: int
    path: str

    @abc.abstractmethod
    def create(self) -> None:
        """Make the cgroup (and missing ancestors) ready to take processes; idempotent."""

    @abc.abstractmethod
    def exists(self) -> bool:
        """True when any directory of this cgroup is present on the host."""

    @abc.abstractmethod
    def add(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) into the cgroup."""

    @abc.abstractmethod
    def add_self(self, *, v2_done: bool = False) -> None:
        """Move the calling process in. Meant for a container's init between fork and
        exec: when the caller is single-threaded, v1 moves it through ``tasks``, which
        skips the kernel's global threadgroup lock (an RCU grace period, several ms,
        that writing a pid to ``cgroup.procs`` costs). ``v2_done``: the caller was
        cloned into :meth:`clone_target` already, so only v1 hierarchies remain."""

    def clone_target(self) -> str | None:
        """The cgroup2 directory of this cgroup, for clone3's CLONE_INTO_CGROUP (the
        v2 cgroup itself, or the unified hierarchy's on a hybrid host); None on pure v1."""
        return None

    @abc.abstractmethod
    def set(self, resources: Mapping[str, Any]) -> None:
        """Apply an OCI ``linux.resources`` object. Fields that are absent (or 0 where
        runc reads 0 as unset) keep their current value. The whole object is validated
        before anything is written."""

    @abc.abstractmethod
    def stats(self) -> CgroupStats: ...

    @abc.abstractmethod
    def pids(self) -> list[int]:
        """Every process in the cgroup and the cgroups below it, sorted."""

    @abc.abstractmethod
    def freeze(self, timeout: float = 5.0) -> None:
        """Freeze every process; returns once the kernel reports the cgroup frozen."""

    @abc.abstractmethod
    def thaw(self, timeout: float = 5.0) -> None: ...

    @abc.abstractmethod
    def frozen(self) -> bool: ...

    @abc.abstractmethod
    def oom_kills(self) -> int:
        """How many processes the OOM killer has killed in this cgroup."""

    @abc.abstractmethod
    def signal_all(self, sig: int) -> None:
        """Send ``sig`` to every process in the cgroup; processes already gone are fine."""

    def _kill_frozen(self, sig: int) -> None:
        """Freeze, signal every process, thaw: nothing forks between listing and killing,
        and a frozen task dies of SIGKILL as soon as it is thawed."""
        from longboat.cgroups import _files
        from longboat.errors import SystemFault

        try:
            self.freeze()
        except SystemFault:
            pass  # still kill what we can see; the thaw below cannot hurt
        try:
            _files.kill_all(self.pids(), sig)
        finally:
            self.thaw()

    @abc.abstractmethod
    def destroy(self, timeout: float = 2.0) -> None:
        """Remove the cgroup's directories (and any cgroups below them), deepest first,
        waiting up to ``timeout`` seconds for exiting tasks. Missing is fine. Shared
        parents such as ``/longboat`` are left alone."""

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.path!r})"
