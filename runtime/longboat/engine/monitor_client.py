"""longboatd's side of the monitor: start it if it is not running, call it, stream from
it (attach) and follow its exit events."""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import sys
import time

from longboat.errors import LongboatError, SystemFault

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any


class MonitorError(LongboatError):
    def __init__(self, message: str, status: int) -> None:
        super().__init__(message)
        self.status = status


class MonitorClient:
    def __init__(self, exec_root: str) -> None:
        self.socket = os.path.join(exec_root, "monitor.sock")
        self.runtime_root = os.path.join(exec_root, "runtime")
        self.state_dir = os.path.join(exec_root, "monitor")
        self.log = os.path.join(exec_root, "monitor.log")

    def ensure_running(self, timeout: float = 10) -> None:
        """Start the monitor unless one answers on its socket. It gets its own session,
        so that it outlives this daemon (live restore)."""
        if self._answers():
            return
        os.makedirs(os.path.dirname(self.socket), mode=0o700, exist_ok=True)
        with open(self.log, "ab") as log:
            subprocess.Popen([sys.executable, "-m", "longboat.engine.monitor", self.socket,
                              self.runtime_root, self.state_dir],
                             stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                             start_new_session=True, close_fds=True)
        deadline = time.monotonic() + timeout
        while not self._answers():
            if time.monotonic() > deadline:
                raise SystemFault(f"the container monitor did not start; see {self.log}")
            time.sleep(0.02)

    def _answers(self) -> bool:
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(self.socket)
            sock.sendall(b'{"op": "ping"}\n')
            return b'"ok": true' in sock.recv(4096)
        except OSError:
            return False
        finally:
            sock.close()

    async def call(self, op: str, **fields: Any) -> dict[str, Any]:
        reader, writer = await asyncio.open_unix_connection(self.socket, limit=1 << 20)
        try:
            writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
            await writer.drain()
            line = await reader.readline()
        finally:
            writer.close()
        return self._reply(line)

    @staticmethod
    def _reply(line: bytes) -> dict[str, Any]:
        if not line:
            raise SystemFault("the container monitor closed the connection")
        reply: dict[str, Any] = json.loads(line)
        if not reply.get("ok"):
            raise MonitorError(reply.get("error", "monitor error"), reply.get("status", 500))
        return reply

    async def stream(self, op: str, **fields: Any
                     ) -> tuple[dict[str, Any], asyncio.StreamReader, asyncio.StreamWriter]:
        """Open a connection that, after the reply, carries a stream (attach, events)."""
        reader, writer = await asyncio.open_unix_connection(self.socket, limit=1 << 20)
        writer.write(json.dumps({"op": op, **fields}).encode() + b"\n")
        await writer.drain()
        try:
            reply = self._reply(await reader.readline())
        except BaseException:
            writer.close()
            raise
        return reply, reader, writer
