"""Facts about processes read from /proc, and waiting on processes we are not parent of."""

from __future__ import annotations

import os
import select

_PF_EXITING = 0x4


def _stat(pid: int) -> list[bytes] | None:
    """The fields of /proc/PID/stat after the command name (field 3 onwards), or None
    when the process is gone. The name (field 2) may hold spaces and parentheses, so the
    split starts after the last ')'."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            data = f.read()
    except (FileNotFoundError, ProcessLookupError):
        return None
    return data[data.rindex(b")") + 2:].split()


def start_time(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (field 22 of /proc/PID/stat);
    with the pid it identifies a process across pid reuse. None when it is gone."""
    fields = _stat(pid)
    return None if fields is None else int(fields[19])


def is_alive(pid: int, expected_start: int | None = None) -> bool:
    """True while the process runs (a zombie counts as dead), and is the one expected."""
    fields = _stat(pid) if pid > 0 else None
    if fields is None:
        return False
    # A zombie, or a process already in exit (PF_EXITING): the init of a PID namespace
    # lingers there until every process of its namespace has been reaped.
    if fields[0] in (b"Z", b"X") or int(fields[6]) & _PF_EXITING:
        return False
    return expected_start is None or int(fields[19]) == expected_start


def wait_exit(pid: int, timeout: float | None) -> bool:
    """Wait until a process (not necessarily our child) has exited; True if it did in time.

    A zombie counts as exited. The init of a PID namespace stays half-exited until every
    process of its namespace is reaped, which may be up to someone else, so besides the
    pidfd we also look at its state."""
    import time

    from longboat.linux import libc

    try:
        fd = libc.pidfd_open(pid)
    except ProcessLookupError:
        return True
    deadline = None if timeout is None else time.monotonic() + timeout
    try:
        poller = select.poll()
        poller.register(fd, select.POLLIN)
        while is_alive(pid):
            if poller.poll(50):
                return True
            if deadline is not None and time.monotonic() > deadline:
                return False
        return True
    finally:
        os.close(fd)


def exit_code(status: int) -> int:
    """A shell-style exit code from a wait status: the code, or 128 + the signal."""
    if os.WIFSIGNALED(status):
        return 128 + os.WTERMSIG(status)
    return os.waitstatus_to_exitcode(status)


def wait_readable(fd: int, timeout: float) -> bool:
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    return bool(poller.poll(int(timeout * 1000)))
