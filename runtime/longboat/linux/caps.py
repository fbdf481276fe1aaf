"""The Linux capability table: names, numbers, and the host kernel's limit.

A capability set is a 64-bit mask with bit N for capability number N (the layout
``capget``/``capset`` and ``/proc/PID/status`` use). Names are the kernel's, with the
``CAP_`` prefix, exactly as the OCI runtime spec writes them.

The table knows every capability up to ``CAP_CHECKPOINT_RESTORE`` (Linux 5.9). A host
kernel may be older and know fewer (``/proc/sys/kernel/cap_last_cap``): names the table
knows but the kernel does not are not an error in a config (runc warns and ignores them),
so :func:`to_mask` skips them and hands them back for the caller to warn about.
"""

from __future__ import annotations

import functools
from collections.abc import Iterable

from longboat.errors import InvalidArgument, SystemFault

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Final

NAMES: Final[dict[str, int]] = {
    "CAP_CHOWN": 0,
    "CAP_DAC_OVERRIDE": 1,
    "CAP_DAC_READ_SEARCH": 2,
    "CAP_FOWNER": 3,
    "CAP_FSETID": 4,
    "CAP_KILL": 5,
    "CAP_SETGID": 6,
    "CAP_SETUID": 7,
    "CAP_SETPCAP": 8,
    "CAP_LINUX_IMMUTABLE": 9,
    "CAP_NET_BIND_SERVICE": 10,
    "CAP_NET_BROADCAST": 11,
    "CAP_NET_ADMIN": 12,
    "CAP_NET_RAW": 13,
    "CAP_IPC_LOCK": 14,
    "CAP_IPC_OWNER": 15,
    "CAP_SYS_MODULE": 16,
    "CAP_SYS_RAWIO": 17,
    "CAP_SYS_CHROOT": 18,
    "CAP_SYS_PTRACE": 19,
    "CAP_SYS_PACCT": 20,
    "CAP_SYS_ADMIN": 21,
    "CAP_SYS_BOOT": 22,
    "CAP_SYS_NICE": 23,
    "CAP_SYS_RESOURCE": 24,
    "CAP_SYS_TIME": 25,
    "CAP_SYS_TTY_CONFIG": 26,
    "CAP_MKNOD": 27,
    "CAP_LEASE": 28,
    "CAP_AUDIT_WRITE": 29,
    "CAP_AUDIT_CONTROL": 30,
    "CAP_SETFCAP": 31,
    "CAP_MAC_OVERRIDE": 32,
    "CAP_MAC_ADMIN": 33,
    "CAP_SYSLOG": 34,
    "CAP_WAKE_ALARM": 35,
    "CAP_BLOCK_SUSPEND": 36,
    "CAP_AUDIT_READ": 37,
    "CAP_PERFMON": 38,
    "CAP_BPF": 39,
    "CAP_CHECKPOINT_RESTORE": 40,
}

#: Number -> name, the inverse of :data:`NAMES`.
BY_NUMBER: Final[dict[int, str]] = {number: name for name, number in NAMES.items()}

#: The highest capability number this table knows.
LAST_KNOWN: Final[int] = max(NAMES.values())

_CAP_LAST_CAP = "/proc/sys/kernel/cap_last_cap"


@functools.cache
def last_cap() -> int:
    """The highest capability number the host kernel knows (read once, then cached)."""
    try:
        with open(_CAP_LAST_CAP, encoding="ascii") as f:
            return int(f.read().strip())
    except (OSError, ValueError) as e:
        raise SystemFault(f"cannot read {_CAP_LAST_CAP}: {e}") from e


class Mask(tuple[int, list[str]]):
    """What :func:`to_mask` returns; unpacks as ``mask, skipped = to_mask(...)``.

    ``mask``: bit N set for each capability number N that was named and the host knows.
    ``skipped``: names the table knows but the host kernel does not (above ``last_cap``),
    in the order given and without repeats, left out of ``mask`` for the caller to warn
    about. (A tuple subclass rather than a NamedTuple: importing typing costs milliseconds
    at every container start.)
    """

    def __new__(cls, mask: int, skipped: list[str]) -> Mask:
        return super().__new__(cls, (mask, skipped))

    @property
    def mask(self) -> int:
        return self[0]

    @property
    def skipped(self) -> list[str]:
        return self[1]


def to_mask(names: Iterable[object], *, field: str, host_last: int | None = None) -> Mask:
    """The mask of capability ``names``; ``field`` says where they came from.

    ``field`` prefixes error messages and should name the source, for example
    ``"config.json: process.capabilities.bounding"``; an error on the third name reads
    ``config.json: process.capabilities.bounding[2]: unknown capability "CAP_FOO"``.

    Raises :class:`InvalidArgument` for a name that is not a string or not a capability
    at all (names are case-sensitive and need the ``CAP_`` prefix, as in the OCI spec).
    Names known here but above the host's limit are skipped, not refused (see
    :class:`Mask`). ``host_last`` overrides :func:`last_cap` (for tests and for callers
    that describe another kernel).
    """
    limit = last_cap() if host_last is None else host_last
    mask = 0
    skipped: list[str] = []
    for index, name in enumerate(names):
        if not isinstance(name, str):
            raise InvalidArgument(
                f"{field}[{index}]: must be a capability name string, got {name!r}")
        number = NAMES.get(name)
        if number is None:
            raise InvalidArgument(f'{field}[{index}]: unknown capability "{name}"')
        if number > limit:
            if name not in skipped:
                skipped.append(name)
            continue
        mask |= 1 << number
    return Mask(mask, skipped)


def from_mask(mask: int) -> list[str]:
    """The names of the bits set in ``mask``, in capability-number order.

    A bit the table does not know (a kernel newer than this table) comes back as
    ``"CAP_<number>"`` rather than being dropped, so that nothing is lost silently;
    :func:`to_mask` does not accept such a name.
    """
    if mask < 0:
        raise ValueError(f"capability mask must not be negative, got {mask}")
    names = []
    number = 0
    while mask:
        if mask & 1:
            names.append(BY_NUMBER.get(number, f"CAP_{number}"))
        mask >>= 1
        number += 1
    return names


def ALL_MASK() -> int:
    """Every capability both this table and the host kernel know (``--privileged``)."""
    return (1 << (min(last_cap(), LAST_KNOWN) + 1)) - 1
