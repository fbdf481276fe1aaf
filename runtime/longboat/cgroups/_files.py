"""Reading and writing cgroupfs interface files, with kernel errors mapped onto Longboat's
error hierarchy, plus the small waiting and removal helpers both cgroup versions share.

Writes open with ``O_CREAT | O_TRUNC`` like a shell's ``>``: on cgroupfs that is harmless for
an existing file (kernfs ignores the truncation and refuses creation with EACCES), and it
lets the unit tests use a plain directory tree as a fake cgroupfs and read back exactly
what was written.
"""

from __future__ import annotations

import errno
import os
import time

from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound, SystemFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable

# errnos with which the kernel says "not this value" rather than "not on this host".
_REFUSED = frozenset({errno.EINVAL, errno.ERANGE, errno.EOVERFLOW, errno.EBUSY, errno.ENOSPC})


def missing_file(directory: str, name: str, hint: str | None = None) -> LongboatError:
    """The error for an interface file that is not there: the cgroup itself is missing
    (NotFound) or the host's kernel lacks the controller or feature (SystemFault)."""
    if not os.path.isdir(directory):
        return NotFound(f"cgroup {directory} does not exist")
    return SystemFault(hint or f"{directory}/{name} does not exist: this host's kernel lacks "
                               "that cgroup controller or feature")


def write(directory: str, name: str, value: str, *, field: str,
          missing: str | None = None) -> None:
    """Write ``value`` to ``directory/name`` in one write(2).

    ``field`` names what asked for the value (an OCI field such as
    "linux.resources.memory.limit") so that a refusal by the kernel can say which input
    was wrong; ``missing`` replaces the message given when the file does not exist.
    """
    path = f"{directory}/{name}"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    except (FileNotFoundError, PermissionError) as exc:
        if os.path.exists(path):
            raise SystemFault(f"cannot open {path}: {exc.strerror}") from exc
        raise missing_file(directory, name, missing) from exc
    try:
        os.write(fd, value.encode())
    except OSError as exc:
        if exc.errno in _REFUSED:
            raise InvalidArgument(f"{field}: the kernel refused {value!r} for {name} "
                                  f"({exc.strerror})") from exc
        raise SystemFault(f"writing {value!r} to {path}: {exc.strerror}") from exc
    finally:
        os.close(fd)


def read(directory: str, name: str) -> str:
    """The content of ``directory/name``; NotFound or SystemFault when it is missing."""
    text = read_optional(directory, name)
    if text is None:
        raise missing_file(directory, name)
    return text


def read_optional(directory: str, name: str) -> str | None:
    """The content of ``directory/name``, or None when there is no such file."""
    try:
        fd = os.open(f"{directory}/{name}", os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        return None
    try:
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks).decode()


def exists(directory: str, name: str) -> bool:
    return os.path.exists(f"{directory}/{name}")


def keyed_int(text: str | None, key: str) -> int:
    """The value of ``key`` in a flat-keyed file ("key value" lines), 0 when absent."""
    for line in (text or "").splitlines():
        name, _, value = line.partition(" ")
        if name == key:
            return int(value)
    return 0


def int_or_zero(text: str | None) -> int:
    return int(text) if text and text.strip() else 0


def procs_below(directory: str) -> set[int]:
    """Every pid in ``cgroup.procs`` of ``directory`` and of the cgroups below it."""
    found: set[int] = set()
    for dirpath, _dirs, _files in os.walk(directory):
        text = read_optional(dirpath, "cgroup.procs")
        if text:
            found.update(int(line) for line in text.split())
    return found


def move_process(directory: str, pid: int, *, name: str = "cgroup.procs") -> None:
    """Write ``pid`` into ``directory/name``: ``cgroup.procs`` moves the whole thread
    group; pid 0 means the caller (with ``tasks``, only the calling thread)."""
    if isinstance(pid, bool) or not isinstance(pid, int) or pid < 0:
        raise InvalidArgument(f"not a process id: {pid!r}")
    try:
        write(directory, name, str(pid), field="pid")
    except (InvalidArgument, SystemFault) as exc:
        if pid and not _alive(pid):
            raise NotFound(f"process {pid} does not exist") from exc
        # ENOSPC: a v1 cpuset without cpus or mems; EBUSY: a v2 cgroup that has
        # controllers enabled for children takes no processes itself.
        who = pid or os.getpid()
        raise SystemFault(f"cannot move process {who} into {directory}: {exc.message}") from exc


def single_threaded() -> bool:
    return len(os.listdir("/proc/self/task")) == 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def kill_all(pids: Iterable[int], sig: int) -> None:
    for pid in pids:
        try:
            os.kill(pid, sig)
        except ProcessLookupError:
            pass


def wait_until(condition: Callable[[], bool], timeout: float) -> bool:
    """Poll ``condition`` with a growing interval until it holds or ``timeout`` seconds
    pass; the result says which."""
    deadline = time.monotonic() + timeout
    delay = 0.0005
    while True:
        if condition():
            return True
        left = deadline - time.monotonic()
        if left <= 0:
            return False
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)


def remove_tree(directory: str, deadline: float) -> None:
    """rmdir ``directory`` and every cgroup below it, deepest first. A cgroup stays busy
    (EBUSY) while its last tasks finish exiting: retry until ``deadline`` (monotonic)."""
    for dirpath, _dirs, _files in os.walk(directory, topdown=False):
        _rmdir(dirpath, deadline)


def _rmdir(directory: str, deadline: float) -> None:
    delay = 0.0005
    while True:
        try:
            os.rmdir(directory)
            return
        except FileNotFoundError:
            return
        except OSError as exc:
            if exc.errno != errno.EBUSY:
                raise SystemFault(f"cannot remove cgroup {directory}: {exc.strerror}") from exc
            left = deadline - time.monotonic()
            if left <= 0:
                pids = sorted(procs_below(directory))
                raise Conflict(f"cannot remove cgroup {directory}: still busy (processes "
                               f"{pids or 'none'}) after waiting for them to exit") from exc
        time.sleep(min(delay, left))
        delay = min(delay * 2, 0.05)
