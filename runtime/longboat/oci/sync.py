"""The channel between the runtime and the processes it forks while creating a container.

A SOCK_SEQPACKET socketpair: one JSON object per message, optionally with descriptors
attached (SCM_RIGHTS). Both ends are close-on-exec, so a successful exec closes the
child's end: the parent reads that as success and an error message as failure.
"""

from __future__ import annotations

import json
import socket

from longboat.errors import LongboatError, SystemFault

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any


_MAX = 65536


class ChildFailed(LongboatError):
    """A forked stage of the runtime reported an error (or died) before exec."""

    def __init__(self, message: str, status: int = 500) -> None:
        super().__init__(message)
        self.status = status


class Channel:
    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock

    @classmethod
    def pair(cls) -> tuple[Channel, Channel]:
        a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
        return cls(a), cls(b)

    def send(self, kind: str, fds: list[int] | None = None, **fields: Any) -> None:
        data = json.dumps({"type": kind, **fields}).encode()
        if fds:
            socket.send_fds(self.sock, [data], fds)
        else:
            self.sock.sendall(data)

    def recv(self) -> tuple[dict[str, Any] | None, list[int]]:
        """The next message and its descriptors; (None, []) once the peer is gone."""
        try:
            data, fds, _flags, _addr = socket.recv_fds(self.sock, _MAX, 4)
        except ConnectionResetError:
            return None, []
        if not data:
            return None, list(fds)
        return json.loads(data), list(fds)

    def expect(self, kind: str) -> tuple[dict[str, Any], list[int]]:
        """Receive a message of one kind; an error message or a lost peer raises."""
        msg, fds = self.recv()
        if msg is None:
            raise ChildFailed("container process exited before it reported " + kind)
        if msg["type"] == "error":
            raise ChildFailed(msg["message"], msg.get("status", 500))
        if msg["type"] != kind:
            raise SystemFault(f"runtime protocol: expected {kind}, got {msg['type']}")
        return msg, fds

    def close(self) -> None:
        self.sock.close()

    def fileno(self) -> int:
        return self.sock.fileno()
