"""Terminals for containers: the pty made inside the container, its master handed over a
``--console-socket`` (as runc does, SCM_RIGHTS with the pty's name as data), or relayed to
our own terminal when the runtime runs a container in the foreground."""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import socket
import struct
import termios
from collections.abc import Iterator

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any

def open_pty(console_size: dict[str, int] | None) -> tuple[int, int, str]:
    """(master, slave, slave name), made through the current root's /dev/ptmx; the slave
    becomes this process's controlling terminal and stdio. Call after setsid()."""
    master, slave = os.openpty()
    name = os.ttyname(slave)
    if console_size:
        set_size(slave, console_size.get("height", 0), console_size.get("width", 0))
    fcntl.ioctl(slave, termios.TIOCSCTTY, 0)
    return master, slave, name


def become_stdio(slave: int) -> None:
    for fd in (0, 1, 2):
        os.dup2(slave, fd)
    if slave > 2:
        os.close(slave)


def set_size(fd: int, rows: int, cols: int) -> None:
    fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", rows, cols, 0, 0))


def connect(path: str) -> socket.socket:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
    except OSError as exc:
        sock.close()
        from longboat.errors import InvalidArgument

        raise InvalidArgument(f"--console-socket {path}: {exc.strerror}") from None
    return sock


def send_master(sock: socket.socket, master: int, name: str) -> None:
    socket.send_fds(sock, [name.encode()], [master])


def receive_master(sock: socket.socket) -> int:
    _data, fds, _flags, _addr = socket.recv_fds(sock, 4096, 1)
    if not fds:
        raise OSError("no terminal received on the console socket")
    return fds[0]


@contextlib.contextmanager
def raw_terminal(fd: int) -> Iterator[None]:
    """Put our own terminal in raw mode while a container's terminal is relayed."""
    if not os.isatty(fd):
        yield
        return
    saved = termios.tcgetattr(fd)
    mode: list[Any] = termios.tcgetattr(fd)
    mode[0] &= ~(termios.BRKINT | termios.ICRNL | termios.INPCK | termios.ISTRIP | termios.IXON)
    mode[1] &= ~termios.OPOST
    mode[2] = (mode[2] & ~(termios.CSIZE | termios.PARENB)) | termios.CS8
    mode[3] &= ~(termios.ECHO | termios.ICANON | termios.IEXTEN | termios.ISIG)
    mode[6][termios.VMIN] = 1
    mode[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, mode)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


def relay(master: int, stdin: int = 0, stdout: int = 1) -> None:
    """Copy our stdin to the pty and the pty to our stdout until the pty closes (every
    process holding its slave has exited); keep the container's size in step with ours."""
    def resize(*_: object) -> None:
        with contextlib.suppress(OSError):
            size = fcntl.ioctl(stdin, termios.TIOCGWINSZ, b"\0" * 8)
            fcntl.ioctl(master, termios.TIOCSWINSZ, size)

    if os.isatty(stdin):
        resize()
        signal.signal(signal.SIGWINCH, resize)
    inputs = [master, stdin]
    with raw_terminal(stdin):
        while True:
            try:
                ready, _, _ = select.select(inputs, [], [])
            except InterruptedError:
                continue
            if master in ready:
                try:
                    data = os.read(master, 65536)
                except OSError:
                    data = b""
                if not data:
                    break
                os.write(stdout, data)
            if stdin in ready:
                data = os.read(stdin, 65536)
                if data:
                    os.write(master, data)
                else:
                    inputs.remove(stdin)
                    # end of our input: send the terminal's end-of-file character
                    with contextlib.suppress(OSError):
                        os.write(master, b"\x04")
