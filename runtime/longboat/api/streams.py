"""Docker's JSON-lines progress streams, fed by work that runs in a thread (pulls,
pushes, loads use blocking I/O): each event the work reports is sent as it happens, and
a failure ends the stream with Docker's ``errorDetail``/``error`` object."""

from __future__ import annotations

import asyncio
import json

from longboat.errors import LongboatError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from typing import Any

_DONE = object()


def line(event: dict[str, Any]) -> bytes:
    return json.dumps(event).encode() + b"\r\n"


def error_event(message: str) -> dict[str, Any]:
    return {"errorDetail": {"message": message}, "error": message}


async def progress(work: Callable[[Callable[[dict[str, Any]], None]], list[dict[str, Any]]]
                   ) -> AsyncIterator[bytes]:
    """Run ``work(emit)`` in a thread; yield each emitted event, then the events it
    returns, as JSON lines."""
    loop = asyncio.get_running_loop()
    queue: asyncio.Queue[object] = asyncio.Queue()

    def emit(event: dict[str, Any]) -> None:
        loop.call_soon_threadsafe(queue.put_nowait, event)

    def run() -> None:
        try:
            for event in work(emit):
                emit(event)
        except LongboatError as exc:
            emit(error_event(exc.message))
        except Exception as exc:  # the client must hear of it; the log gets it whole
            import logging

            logging.getLogger("longboat.api").exception("streamed work failed")
            emit(error_event(f"internal error: {exc}"))
        finally:
            loop.call_soon_threadsafe(queue.put_nowait, _DONE)

    task = loop.run_in_executor(None, run)
    while True:
        item = await queue.get()
        if item is _DONE:
            break
        assert isinstance(item, dict)
        yield line(item)
    await task
