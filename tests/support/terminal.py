"""Running a command on a real terminal (a pty), as a user at a keyboard would."""

from __future__ import annotations

import fcntl
import os
import pty
import select
import struct
import termios
import time


def under_pty(argv: list[str], keys: bytes = b"", rows: int = 33, cols: int = 111,
              env: dict[str, str] | None = None, timeout: float = 20) -> tuple[bytes, int]:
    """Run ``argv`` (an absolute path first) on a pty of rows x cols; type ``keys`` once
    a shell prompts ("# "). What the terminal showed, and the exit code."""
    pid, fd = pty.fork()
    if pid == 0:       # pragma: no cover - the child
        os.execve(argv[0], argv, env or dict(os.environ))
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))
    out = b""
    sent = not keys
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        ready, _, _ = select.select([fd], [], [], 0.1)
        if ready:
            try:
                data = os.read(fd, 4096)
            except OSError:
                break
            if not data:
                break
            out += data
        if not sent and b"# " in out:
            os.write(fd, keys)
            sent = True
    else:
        os.kill(pid, 9)
    _, status = os.waitpid(pid, 0)
    os.close(fd)
    return out, os.waitstatus_to_exitcode(status)
