"""A container's standard streams over a hijacked connection (run, start -a, attach,
exec): stdin pumped in (half-closed at its end), output demultiplexed to our stdout and
stderr (raw bytes with a TTY), the terminal in raw mode, its size followed, signals
forwarded."""

from __future__ import annotations

import os
import signal
import sys
import threading

from longboat.client.api import CHUNK, ClientError, FrameReader

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import IO, Any

    from longboat.client.api import HijackedStream

PROXIED_SIGNALS = ("SIGINT", "SIGTERM", "SIGHUP", "SIGQUIT", "SIGUSR1", "SIGUSR2")


def is_terminal(fd: int) -> bool:
    try:
        return os.isatty(fd)
    except OSError:
        return False


def terminal_size(fd: int) -> tuple[int, int] | None:
    """(rows, columns) of the terminal on ``fd``, None when it is not one."""
    try:
        size = os.get_terminal_size(fd)
    except OSError:
        return None
    return size.lines, size.columns


class RawTerminal:
    """The terminal on ``fd`` in raw mode for the ``with`` block (docker's
    ``SetRawTerminal``): keys go to the container as typed."""

    def __init__(self, fd: int, enabled: bool = True) -> None:
        self.fd = fd
        self.enabled = enabled and is_terminal(fd)
        self._saved: Any = None

    def __enter__(self) -> RawTerminal:
        if self.enabled:
            import termios
            import tty

            self._saved = termios.tcgetattr(self.fd)
            tty.setraw(self.fd)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._saved is not None:
            import termios

            termios.tcsetattr(self.fd, termios.TCSADRAIN, self._saved)
            self._saved = None


def in_background(function: Callable[[], Any]) -> None:
    """Run a request beside the stream (signals and resizes must not block it); its
    failure is of no consequence to the session."""

    def run() -> None:
        try:
            function()
        except ClientError:
            pass

    threading.Thread(target=run, daemon=True).start()


def follow_size(resize: Callable[[int, int], None], fd: int = 1) -> Callable[[], None]:
    """Tell the container our terminal's size now and at every SIGWINCH; returns what
    undoes the handler."""

    def send() -> None:
        size = terminal_size(fd)
        if size is not None and size[0] and size[1]:
            resize(*size)

    in_background(send)
    try:
        previous = signal.signal(signal.SIGWINCH, lambda *_: in_background(send))
    except ValueError:      # not the main thread
        return lambda: None

    def restore() -> None:
        signal.signal(signal.SIGWINCH, previous)

    return restore


def proxy_signals(kill: Callable[[str], None]) -> Callable[[], None]:
    """Forward the signals we get to the container (docker's ``--sig-proxy``)."""
    saved: dict[int, Any] = {}
    for name in PROXIED_SIGNALS:
        number = getattr(signal, name)

        def forward(_signum: int, _frame: object, name: str = name) -> None:
            in_background(lambda: kill(name))

        try:
            saved[number] = signal.signal(number, forward)
        except (ValueError, OSError):
            continue

    def restore() -> None:
        for number, handler in saved.items():
            signal.signal(number, handler)

    return restore


def _pump_stdin(stream: HijackedStream, fd: int) -> None:
    try:
        while True:
            try:
                data = os.read(fd, CHUNK)
            except InterruptedError:
                continue
            if not data:
                break
            stream.sendall(data)
    except (OSError, ClientError):
        pass
    finally:
        stream.close_write()


def _write(out: IO[bytes], data: bytes) -> None:
    try:
        out.write(data)
        out.flush()
    except BrokenPipeError:
        pass


def copy_output(chunks: Iterator[bytes], *, tty: bool, out: IO[bytes] | None = None,
                err: IO[bytes] | None = None) -> None:
    """Write a container's output (a log, an attach) to our stdout and stderr: as it is
    with a TTY, demultiplexed from docker's frames without one."""
    out = out or sys.stdout.buffer
    err = err or sys.stderr.buffer
    frames = None if tty else FrameReader()
    for data in chunks:
        if frames is None:
            _write(out, data)
            continue
        for stream, payload in frames.feed(data):
            _write(err if stream == 2 else out, payload)


def _received(stream: HijackedStream) -> Iterator[bytes]:
    while True:
        data = stream.recv(CHUNK)
        if not data:
            return
        yield data


def hold_session(stream: HijackedStream, *, tty: bool, stdin: bool,
                 out: IO[bytes] | None = None, err: IO[bytes] | None = None) -> None:
    """Until the container's output ends: our stdin (when attached) goes in on a thread
    and is half-closed at its end; the output comes out here."""
    if stdin:
        threading.Thread(target=_pump_stdin, args=(stream, 0), daemon=True).start()
    try:
        copy_output(_received(stream), tty=tty, out=out, err=err)
    finally:
        stream.close()
