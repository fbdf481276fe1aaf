"""The container's user, resolved from the container's own /etc/passwd and /etc/group.

Docker (runc's ``libcontainer/user``, ``GetExecUser`` and ``GetAdditionalGroups``)
semantics: ``user``, ``user:group``, ``uid``, ``uid:gid`` and mixtures; a name is looked up
in the container's files, a number is taken as is when no entry has it. A named (or
matched) user gets the supplementary groups that list it in /etc/group; an explicit group
replaces the primary group and gives no supplementary groups. ``HostConfig.GroupAdd``
adds groups by name or number.

The files are read through :func:`longboat.linux.fs.open_in_root` (openat2
``RESOLVE_IN_ROOT``): a symlinked /etc/passwd resolves inside the rootfs, never on the
host; the engine never chroots. Only regular files are read (a FIFO would block), up to
:data:`MAX_FILE` bytes.
"""

from __future__ import annotations

import errno
import os
import re
import stat
from dataclasses import dataclass, field

from longboat.errors import InvalidArgument
from longboat.linux import fs, libc

#: Largest /etc/passwd or /etc/group read (a hostile image could offer gigabytes).
MAX_FILE = 16 << 20
#: runc's range for ids (``minID``..``maxID``).
MAX_ID = (1 << 31) - 1

_NUMBER = re.compile(r"[+-]?[0-9]+")  # what Go's strconv.Atoi accepts
_RANGE_ERROR = f"uids and gids must be in range 0-{MAX_ID}"


@dataclass
class ExecUser:
    """What the process runs as: ``process.user`` of the OCI config."""

    uid: int = 0
    gid: int = 0
    additional_gids: list[int] = field(default_factory=list)
    home: str = ""


@dataclass
class _Passwd:
    name: str
    uid: int
    gid: int
    home: str


@dataclass
class _Group:
    name: str
    gid: int
    members: list[str]


def _number(text: str) -> int | None:
    return int(text) if _NUMBER.fullmatch(text) else None


def read_etc_file(root_fd: int, path: str) -> str | None:
    """The text of ``path`` inside the root, or None when it does not exist (as runc,
    which then resolves numbers only)."""
    try:
        # the type first, on an O_PATH descriptor: opening a device node of an image
        # would open the host's device (the rootfs is not nodev), a FIFO would block
        pfd = fs.open_in_root(root_fd, path, libc.O_PATH | os.O_CLOEXEC)
        try:
            if not stat.S_ISREG(os.fstat(pfd).st_mode):
                raise InvalidArgument(f"{path} in the container's rootfs is not a regular "
                                      "file")
            fd = os.open(fs.fd_path(pfd), os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        finally:
            os.close(pfd)
    except OSError as e:
        if e.errno in (errno.ENOENT, errno.ENOTDIR):
            return None
        raise InvalidArgument(f"cannot open {path} in the container's rootfs: "
                              f"{e.strerror}") from None
    try:
        info = os.fstat(fd)
        if info.st_size > MAX_FILE:
            raise InvalidArgument(f"{path} in the container's rootfs is larger than "
                                  f"{MAX_FILE} bytes")
        chunks = []
        total = 0
        while chunk := os.read(fd, 1 << 16):
            total += len(chunk)
            if total > MAX_FILE:
                raise InvalidArgument(f"{path} in the container's rootfs is larger than "
                                      f"{MAX_FILE} bytes")
            chunks.append(chunk)
    except OSError as e:
        raise InvalidArgument(f"cannot read {path} in the container's rootfs: "
                              f"{e.strerror}") from None
    finally:
        os.close(fd)
    return b"".join(chunks).decode("utf-8", "surrogateescape")


def _lines(text: str | None) -> list[list[str]]:
    if text is None:
        return []
    out = []
    for raw in text.splitlines():
        line = raw.strip()
        if line and not line.startswith("#"):
            out.append(line.split(":"))
    return out


def parse_passwd(text: str | None) -> list[_Passwd]:
    """Entries of a passwd file. Lines without a numeric uid and gid are skipped (runc
    would read a missing number as 0, that is root: safer to ignore the line)."""
    entries = []
    for parts in _lines(text):
        if len(parts) < 4:
            continue
        uid, gid = _number(parts[2]), _number(parts[3])
        if uid is None or gid is None:
            continue
        entries.append(_Passwd(parts[0], uid, gid, parts[5] if len(parts) > 5 else ""))
    return entries


def parse_group(text: str | None) -> list[_Group]:
    """Entries of a group file; lines without a numeric gid are skipped."""
    entries = []
    for parts in _lines(text):
        if len(parts) < 3:
            continue
        gid = _number(parts[2])
        if gid is None:
            continue
        members = parts[3].split(",") if len(parts) > 3 and parts[3] else []
        entries.append(_Group(parts[0], gid, members))
    return entries


def _in_range(number: int) -> int:
    if not 0 <= number <= MAX_ID:
        raise InvalidArgument(_RANGE_ERROR)
    return number


def exec_user(spec: str, passwd: str | None, group: str | None) -> ExecUser:
    """runc's ``GetExecUser(spec, nil, passwd, group)``: the user a ``User`` string
    means with these file contents (None: the file does not exist)."""
    parts = spec.split(":")
    user_arg = parts[0]
    group_arg = parts[1] if len(parts) > 1 else ""  # runc ignores any further field
    uid_arg, gid_arg = _number(user_arg), _number(group_arg)
    result = ExecUser()

    users = parse_passwd(passwd)
    if user_arg == "":
        matches = [u for u in users if u.uid == 0]
    elif uid_arg is not None:
        matches = [u for u in users if u.uid == uid_arg]
    else:
        matches = [u for u in users if u.name == user_arg]
    matched_name = ""
    if matches:  # the first entry wins
        matched_name = matches[0].name
        result.uid, result.gid, result.home = matches[0].uid, matches[0].gid, matches[0].home
    elif user_arg:
        if uid_arg is None:
            raise InvalidArgument(
                f"unable to find user {user_arg}: no matching entries in passwd file")
        result.uid = _in_range(uid_arg)

    if group_arg or matched_name:
        groups = parse_group(group)
        if not group_arg:
            result.additional_gids = [g.gid for g in groups if matched_name in g.members]
        else:
            if gid_arg is not None:
                found = [g for g in groups if g.gid == gid_arg]
            else:
                found = [g for g in groups if g.name == group_arg]
            if found:
                result.gid = found[0].gid
            elif gid_arg is None:
                raise InvalidArgument(
                    f"unable to find group {group_arg}: no matching entries in group file")
            else:
                result.gid = _in_range(gid_arg)
    return result


def additional_groups(names: list[str], group: str | None) -> list[int]:
    """runc's ``GetAdditionalGroups``: ``GroupAdd`` entries (names or numbers) as gids, in
    the order given, without repeats."""
    groups = parse_group(group)
    gids: list[int] = []
    for wanted in names:
        match = next((g for g in groups if g.name == wanted or str(g.gid) == wanted), None)
        if match is not None:
            gid = match.gid
        else:
            number = _number(wanted)
            if number is None:
                raise InvalidArgument(f"Unable to find group {wanted}")
            gid = _in_range(number)
        if gid not in gids:
            gids.append(gid)
    return gids


def resolve_user(rootfs: str, spec: str, group_add: list[str]) -> ExecUser:
    """The user ``spec`` (Docker's ``Config.User``) means inside ``rootfs``. Its
    ``additional_gids`` are what the OCI ``additionalGids`` gets: the primary group, the
    user's supplementary groups, then the ``GroupAdd`` groups."""
    try:
        root_fd = fs.open_root(rootfs)
    except OSError as e:
        raise InvalidArgument(f"rootfs {rootfs}: {e.strerror}") from None
    try:
        passwd = read_etc_file(root_fd, "/etc/passwd")
        group = read_etc_file(root_fd, "/etc/group")
    finally:
        os.close(root_fd)
    user = exec_user(spec, passwd, group)
    # moby 20.10.24 (CVE-2023-25173) lists the primary group first, so that a process
    # that drops to it keeps it; repeats are left out.
    gids = [user.gid, *user.additional_gids,
            *(additional_groups(group_add, group) if group_add else [])]
    user.additional_gids = list(dict.fromkeys(gids))
    return user
