"""Mount options of an OCI config (``mounts[].options``), sorted into what mount(2) and
mount_setattr(2) take. The word table is also what ``features`` reports as the recognized
mount options.
"""

from __future__ import annotations

from longboat.linux import libc

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Final

#: ``linux.rootfsPropagation`` and the propagation mount options -> mount(2) flags.
PROPAGATION: Final[dict[str, int]] = {
    "shared": libc.MS_SHARED,
    "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE,
    "rslave": libc.MS_SLAVE | libc.MS_REC,
    "private": libc.MS_PRIVATE,
    "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE,
    "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}

# --------------------------------------------------------------------------------------
# Mount options
# --------------------------------------------------------------------------------------

# mount(2) flags libc.py does not define (linux/mount.h).
_MS_POSIXACL: Final = 1 << 16
_MS_I_VERSION: Final = 1 << 23

# mount_setattr(2) attributes (linux/mount.h), for the recursive "r*" options.
MOUNT_ATTR_RDONLY: Final = 0x1
MOUNT_ATTR_NOSUID: Final = 0x2
MOUNT_ATTR_NODEV: Final = 0x4
MOUNT_ATTR_NOEXEC: Final = 0x8
MOUNT_ATTR__ATIME: Final = 0x70
MOUNT_ATTR_RELATIME: Final = 0x0
MOUNT_ATTR_NOATIME: Final = 0x10
MOUNT_ATTR_STRICTATIME: Final = 0x20
MOUNT_ATTR_NODIRATIME: Final = 0x80
MOUNT_ATTR_NOSYMFOLLOW: Final = 0x200000

# What a word does; the second item of a table entry is its flag or attribute.
_SET, _CLEAR, _PROPAGATE, _BIND, _RBIND, _ATTR_SET, _ATTR_CLEAR, _ATIME, _EXT, _NOOP = range(10)

_MOUNT_WORDS: Final[dict[str, tuple[int, int]]] = {
    "defaults": (_NOOP, 0),
    "ro": (_SET, libc.MS_RDONLY),
    "rw": (_CLEAR, libc.MS_RDONLY),
    "nosuid": (_SET, libc.MS_NOSUID),
    "suid": (_CLEAR, libc.MS_NOSUID),
    "nodev": (_SET, libc.MS_NODEV),
    "dev": (_CLEAR, libc.MS_NODEV),
    "noexec": (_SET, libc.MS_NOEXEC),
    "exec": (_CLEAR, libc.MS_NOEXEC),
    "sync": (_SET, libc.MS_SYNCHRONOUS),
    "async": (_CLEAR, libc.MS_SYNCHRONOUS),
    "dirsync": (_SET, libc.MS_DIRSYNC),
    "remount": (_SET, libc.MS_REMOUNT),
    "mand": (_SET, libc.MS_MANDLOCK),
    "nomand": (_CLEAR, libc.MS_MANDLOCK),
    "noatime": (_SET, libc.MS_NOATIME),
    "atime": (_CLEAR, libc.MS_NOATIME),
    "nodiratime": (_SET, libc.MS_NODIRATIME),
    "diratime": (_CLEAR, libc.MS_NODIRATIME),
    "relatime": (_SET, libc.MS_RELATIME),
    "norelatime": (_CLEAR, libc.MS_RELATIME),
    "strictatime": (_SET, libc.MS_STRICTATIME),
    "nostrictatime": (_CLEAR, libc.MS_STRICTATIME),
    "lazytime": (_SET, libc.MS_LAZYTIME),
    "nolazytime": (_CLEAR, libc.MS_LAZYTIME),
    "nosymfollow": (_SET, libc.MS_NOSYMFOLLOW),
    "symfollow": (_CLEAR, libc.MS_NOSYMFOLLOW),
    "acl": (_SET, _MS_POSIXACL),
    "noacl": (_CLEAR, _MS_POSIXACL),
    "iversion": (_SET, _MS_I_VERSION),
    "noiversion": (_CLEAR, _MS_I_VERSION),
    "silent": (_SET, libc.MS_SILENT),
    "loud": (_CLEAR, libc.MS_SILENT),
    "bind": (_BIND, 0),
    "rbind": (_RBIND, 0),
    **{word: (_PROPAGATE, flags) for word, flags in PROPAGATION.items()},
    # Recursive attributes, applied with mount_setattr(2) and AT_RECURSIVE.
    "rro": (_ATTR_SET, MOUNT_ATTR_RDONLY),
    "rrw": (_ATTR_CLEAR, MOUNT_ATTR_RDONLY),
    "rnosuid": (_ATTR_SET, MOUNT_ATTR_NOSUID),
    "rsuid": (_ATTR_CLEAR, MOUNT_ATTR_NOSUID),
    "rnodev": (_ATTR_SET, MOUNT_ATTR_NODEV),
    "rdev": (_ATTR_CLEAR, MOUNT_ATTR_NODEV),
    "rnoexec": (_ATTR_SET, MOUNT_ATTR_NOEXEC),
    "rexec": (_ATTR_CLEAR, MOUNT_ATTR_NOEXEC),
    "rnodiratime": (_ATTR_SET, MOUNT_ATTR_NODIRATIME),
    "rdiratime": (_ATTR_CLEAR, MOUNT_ATTR_NODIRATIME),
    "rnosymfollow": (_ATTR_SET, MOUNT_ATTR_NOSYMFOLLOW),
    "rsymfollow": (_ATTR_CLEAR, MOUNT_ATTR_NOSYMFOLLOW),
    # The atime mode is one 3-bit field: the kernel takes it whole in attr_clr.
    "rrelatime": (_ATIME, MOUNT_ATTR_RELATIME),
    "rnoatime": (_ATIME, MOUNT_ATTR_NOATIME),
    "rstrictatime": (_ATIME, MOUNT_ATTR_STRICTATIME),
    "ratime": (_ATIME, MOUNT_ATTR_RELATIME),
    "rnorelatime": (_ATIME, MOUNT_ATTR_RELATIME),
    "rnostrictatime": (_ATIME, MOUNT_ATTR_RELATIME),
    # Needs more than mount(2); the runtime refuses what it cannot do.
    "tmpcopyup": (_EXT, 0),
    "idmap": (_EXT, 0),
    "ridmap": (_EXT, 0),
}

#: Every mount option word the runtime recognizes (``features`` reports these); any
#: other option is passed to the filesystem as mount data.
MOUNT_OPTIONS: Final = tuple(sorted(_MOUNT_WORDS))


class MountOptions:
    """A mount's ``options``, sorted into what mount(2) and mount_setattr(2) take.

    Later words override earlier ones (``ro,rw`` is read-write), as with mount(8).
    (A plain class, not a dataclass: importing dataclasses costs milliseconds on every
    container create.)

    - ``flags``: MS_* flags to set. ``MS_BIND``/``MS_REC`` are not among them: a bind mount
      is made in two steps (bind, then remount with these flags), see ``bind``.
    - ``clear_flags``: MS_* flags the options turn off explicitly (``rw``, ``suid``,
      ``dev``, ``exec``, ``async``, ``atime``, ``norelatime``...).
    - ``propagation``: MS_SHARED/MS_SLAVE/MS_PRIVATE/MS_UNBINDABLE, with MS_REC for the r*
      words; 0 for none. The last word wins.
    - ``bind``: ``bind`` or ``rbind`` was given; ``recursive``: ``rbind``.
    - ``data``: the options the filesystem takes as data, comma-joined in their order.
    - ``extensions``: recognized words that need more than mount(2): ``tmpcopyup``,
      ``idmap``, ``ridmap``.
    - ``attr_set``/``attr_clr``: MOUNT_ATTR_* to set and clear recursively with
      mount_setattr(2) (``rro``, ``rnosuid``, ``rnoatime``...).
    """

    __slots__ = ("attr_clr", "attr_set", "bind", "clear_flags", "data", "extensions",
                 "flags", "propagation", "recursive")

    def __init__(self, flags: int = 0, clear_flags: int = 0, propagation: int = 0,
                 bind: bool = False, recursive: bool = False, data: str = "",
                 extensions: set[str] | None = None, attr_set: int = 0,
                 attr_clr: int = 0) -> None:
        self.flags = flags
        self.clear_flags = clear_flags
        self.propagation = propagation
        self.bind = bind
        self.recursive = recursive
        self.data = data
        self.extensions: set[str] = set() if extensions is None else extensions
        self.attr_set = attr_set
        self.attr_clr = attr_clr

    def _values(self) -> tuple[object, ...]:
        return tuple(getattr(self, name) for name in self.__slots__)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, MountOptions) and self._values() == other._values()

    def __hash__(self) -> int:
        return hash(tuple(v for v in self._values() if not isinstance(v, set)))

    def __repr__(self) -> str:
        fields = ", ".join(f"{n}={getattr(self, n)!r}" for n in self.__slots__)
        return f"MountOptions({fields})"


def parse_mount_options(options: list[str]) -> MountOptions:
    """Sort a mount's ``options`` (already validated as strings) into :class:`MountOptions`."""
    result = MountOptions()
    data: list[str] = []
    for word in options:
        entry = _MOUNT_WORDS.get(word)
        if entry is None:
            data.append(word)
            continue
        kind, value = entry
        if kind == _SET:
            result.flags |= value
            result.clear_flags &= ~value
        elif kind == _CLEAR:
            result.flags &= ~value
            result.clear_flags |= value
        elif kind == _PROPAGATE:
            result.propagation = value
        elif kind == _BIND:
            result.bind = True
        elif kind == _RBIND:
            result.bind = result.recursive = True
        elif kind == _ATTR_SET:
            result.attr_set |= value
            result.attr_clr &= ~value
        elif kind == _ATTR_CLEAR:
            result.attr_set &= ~value
            result.attr_clr |= value
        elif kind == _ATIME:
            result.attr_set = (result.attr_set & ~MOUNT_ATTR__ATIME) | value
            result.attr_clr |= MOUNT_ATTR__ATIME
        elif kind == _EXT:
            result.extensions.add(word)
    result.data = ",".join(data)
    return result
