"""fork(2) that lands the child directly in a cgroup v2 cgroup (clone3 CLONE_INTO_CGROUP).

Moving a process by writing ``cgroup.procs`` takes the kernel's threadgroup lock for
writing, which waits for an RCU grace period: 5-15 ms when nothing else moved processes
recently, on every container start. A child created inside the cgroup costs nothing extra.
This mirrors what ``os.fork`` does around the system call (Python's before/after-fork
hooks) so the child is as usable as after ``os.fork``. Only for short-lived,
single-threaded stages: the C library does not learn the child's thread id.
"""

from __future__ import annotations

import ctypes
import os
import signal

_CLONE_INTO_CGROUP = 0x200000000
_SYS_CLONE3 = 435

_api = ctypes.pythonapi
# PyDLL keeps the GIL held across the call, as os.fork does around fork().
_syscall = ctypes.PyDLL(None, use_errno=True).syscall
_syscall.restype = ctypes.c_long


class _CloneArgs(ctypes.Structure):
    _fields_ = [(name, ctypes.c_uint64) for name in (
        "flags", "pidfd", "child_tid", "parent_tid", "exit_signal", "stack", "stack_size",
        "tls", "set_tid", "set_tid_size", "cgroup")]


def fork_into_cgroup(cgroup_fd: int) -> int:
    """Like ``os.fork()``; the child starts in the cgroup v2 directory ``cgroup_fd``.
    Raises OSError when the kernel cannot (no clone3, or not a cgroup2 directory)."""
    args = _CloneArgs(flags=_CLONE_INTO_CGROUP, exit_signal=int(signal.SIGCHLD),
                      cgroup=cgroup_fd)
    _api.PyOS_BeforeFork()
    pid = _syscall(ctypes.c_long(_SYS_CLONE3), ctypes.byref(args),
                   ctypes.c_size_t(ctypes.sizeof(args)))
    if pid == 0:
        _api.PyOS_AfterFork_Child()
        return 0
    _api.PyOS_AfterFork_Parent()
    if pid < 0:
        err = ctypes.get_errno()
        raise OSError(err, f"clone3: {os.strerror(err)}")
    return int(pid)
