"""The last steps before a container process execs: limits, identity, capabilities.

Shared by the container's init and by ``exec``. Runs in a forked child, inside the
container's namespaces and root; everything it reads (``/etc/passwd``) is the
container's own.
"""

from __future__ import annotations

import os
import resource

from longboat.errors import InvalidArgument, NotFound
from longboat.linux import caps, libc

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any


DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
_SETS = ("bounding", "effective", "permitted", "inheritable", "ambient")


def find_executable(process: dict[str, Any]) -> str:
    """The path exec will run: args[0] as-is when it has a '/', else searched in the
    process's PATH, inside the container's root (this runs after pivot_root)."""
    name = str(process["args"][0])
    if "/" in name:
        if not os.path.exists(name):
            raise NotFound(f'exec: "{name}": stat {name}: no such file or directory')
        return name
    path = DEFAULT_PATH
    for item in process.get("env") or []:
        if item.startswith("PATH="):
            path = item[5:]
    for directory in path.split(":"):
        candidate = os.path.join(directory or ".", name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    raise NotFound(f'exec: "{name}": executable file not found in $PATH')


def home_of(uid: int) -> str:
    try:
        with open("/etc/passwd", encoding="utf-8", errors="replace") as f:
            for line in f:
                fields = line.rstrip("\n").split(":")
                if len(fields) >= 6 and fields[2] == str(uid):
                    return fields[5] or "/"
    except OSError:
        pass
    return "/"


def environment(process: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in process.get("env") or []:
        key, _, value = item.partition("=")
        env[key] = value
    if "HOME" not in env:
        env["HOME"] = home_of(int((process.get("user") or {}).get("uid", 0)))
    return env


def set_rlimits(process: dict[str, Any]) -> None:
    for index, limit in enumerate(process.get("rlimits") or []):
        kind = getattr(resource, limit["type"], None)
        if kind is None:
            raise InvalidArgument(
                f"config.json: process.rlimits[{index}].type: {limit['type']} is not known")
        try:
            resource.setrlimit(kind, (limit["soft"], limit["hard"]))
        except (ValueError, OSError) as exc:
            raise InvalidArgument(
                f"config.json: process.rlimits[{index}]: setting {limit['type']} to "
                f"{limit['soft']}:{limit['hard']}: {exc}") from None


def set_oom_score_adj(process: dict[str, Any]) -> None:
    value = process.get("oomScoreAdj")
    if value is None:
        return
    try:
        with open("/proc/self/oom_score_adj", "w") as f:
            f.write(str(value))
    except OSError as exc:
        raise InvalidArgument(
            f"config.json: process.oomScoreAdj: cannot set {value}: {exc.strerror}") from None


def capability_masks(process: dict[str, Any]) -> dict[str, int]:
    wanted = process.get("capabilities") or {}
    return {name: caps.to_mask(wanted.get(name) or [], field=f"process.capabilities.{name}")[0]
            for name in _SETS}


def finalize(process: dict[str, Any], *, in_userns: bool, preserve_fds: int = 0) -> None:
    """Switch to the process's identity and capabilities. After this only exec remains."""
    masks = capability_masks(process)
    # The bounding set can only shrink, and only while we still hold CAP_SETPCAP.
    for cap in range(caps.last_cap() + 1):
        if not masks["bounding"] & (1 << cap):
            libc.prctl(libc.PR_CAPBSET_DROP, cap)
    user = process.get("user") or {}
    uid, gid = int(user.get("uid", 0)), int(user.get("gid", 0))
    libc.prctl(libc.PR_SET_KEEPCAPS, 1)
    groups = [int(g) for g in user.get("additionalGids") or []]
    try:
        os.setgroups(groups)
    except PermissionError:
        if not in_userns:  # setgroups may be denied in a user namespace; that is fine
            raise
    os.setresgid(gid, gid, gid)
    os.setresuid(uid, uid, uid)
    libc.prctl(libc.PR_SET_KEEPCAPS, 0)
    cwd = process.get("cwd") or "/"
    try:
        os.chdir(cwd)
    except OSError as exc:
        raise InvalidArgument(f"config.json: process.cwd: {cwd}: {exc.strerror}") from None
    libc.capset(masks["effective"], masks["permitted"], masks["inheritable"])
    libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_CLEAR_ALL)
    for cap in range(caps.last_cap() + 1):
        if masks["ambient"] & (1 << cap):
            libc.prctl(libc.PR_CAP_AMBIENT, libc.PR_CAP_AMBIENT_RAISE, cap)
    if process.get("noNewPrivileges"):
        libc.prctl(libc.PR_SET_NO_NEW_PRIVS, 1)
    if "umask" in user:
        os.umask(int(user["umask"]))
    else:
        os.umask(0o022)
    # Nothing of the runtime may reach the container: every descriptor but stdio and the
    # ones passed on purpose closes at exec (the sync channel too, which tells the runtime
    # that exec happened).
    libc.close_range(3 + preserve_fds, flags=libc.CLOSE_RANGE_CLOEXEC)


def execute(path: str, process: dict[str, Any], env: dict[str, str]) -> None:
    os.execve(path, list(process["args"]), env)
