"""Attached clients: a hijacked API connection joined to a container's stdio through the
monitor. A client may attach before the container starts (``docker run`` does): it
waits, and is joined when the container starts, before its process runs."""

from __future__ import annotations

import asyncio
import contextlib

TYPE_CHECKING = False
if TYPE_CHECKING:
    from longboat.engine.containers import Container
    from longboat.engine.monitor_client import MonitorClient


class Attachment:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                 stdin: bool, stdout: bool, stderr: bool) -> None:
        self.reader = reader
        self.writer = writer
        self.stdin = stdin
        self.stdout = stdout
        self.stderr = stderr
        self.done = asyncio.Event()


class Attachments:
    def __init__(self, monitor: MonitorClient) -> None:
        self.monitor = monitor
        self.pending: dict[str, list[Attachment]] = {}
        self._relays: set[asyncio.Task[None]] = set()   # running relays, kept alive

    def wait_for_start(self, container_id: str, attachment: Attachment) -> None:
        self.pending.setdefault(container_id, []).append(attachment)

    async def connect_pending(self, container: Container) -> None:
        for attachment in self.pending.pop(container.id, []):
            await self.join(container.id, attachment)

    async def join(self, key: str, attachment: Attachment) -> None:
        """Relay between the client and a supervised process until its output ends."""
        await self.relay(attachment, "attach", id=key)

    async def relay(self, attachment: Attachment, op: str, **fields: object) -> dict[str, object]:
        """Ask the monitor for ``op`` (attach, or exec with attach) and relay the stream
        it turns into; the monitor's reply."""
        reply, m_reader, m_writer = await self.monitor.stream(
            op, stdin=attachment.stdin, stdout=attachment.stdout, stderr=attachment.stderr,
            **fields)

        async def to_container() -> None:
            try:
                while data := await attachment.reader.read(65536):
                    m_writer.write(data)
                    await m_writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            with contextlib.suppress(OSError):
                if m_writer.can_write_eof():
                    m_writer.write_eof()   # the client closed its side: close stdin

        async def to_client() -> None:
            try:
                while data := await m_reader.read(65536):
                    attachment.writer.write(data)
                    await attachment.writer.drain()
            except (ConnectionError, asyncio.CancelledError):
                pass
            finally:
                with contextlib.suppress(OSError):
                    attachment.writer.close()
                m_writer.close()
                attachment.done.set()

        input_task = asyncio.create_task(to_container()) if attachment.stdin else None
        output_task = asyncio.create_task(to_client())

        async def finish() -> None:
            await output_task
            if input_task is not None:
                input_task.cancel()

        task = asyncio.create_task(finish())
        self._relays.add(task)
        task.add_done_callback(self._relays.discard)
        return reply
