"""The engine's event stream (``GET /events``): what happened to containers and images,
in Docker's event shape, kept for a while for ``--since`` and pushed to subscribers."""

from __future__ import annotations

import asyncio
import collections
import time

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator
    from typing import Any


class Events:
    def __init__(self, keep: int = 1024) -> None:
        self.recent: collections.deque[dict[str, Any]] = collections.deque(maxlen=keep)
        self.subscribers: list[asyncio.Queue[dict[str, Any]]] = []

    def publish(self, kind: str, action: str, obj: Any, attributes: dict[str, str]) -> None:
        nanos = time.time_ns()
        actor_id = getattr(obj, "id", str(obj))
        attrs = dict(attributes)
        if kind == "container":
            attrs.setdefault("name", obj.name)
            attrs.setdefault("image", obj.data.get("ImageName", ""))
        event = {"Type": kind, "Action": action, "Actor": {"ID": actor_id,
                                                           "Attributes": attrs},
                 "scope": "local", "time": nanos // 1_000_000_000, "timeNano": nanos,
                 # the legacy fields old clients read
                 "status": action, "id": actor_id, "from": attrs.get("image", "")}
        self.recent.append(event)
        for queue in self.subscribers:
            queue.put_nowait(event)

    async def stream(self, since: float | None, until: float | None,
                     filters: dict[str, list[str]]) -> AsyncIterator[dict[str, Any]]:
        queue: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
        self.subscribers.append(queue)
        try:
            if since is not None:
                for event in list(self.recent):
                    if event["timeNano"] >= since * 1e9 and _match(event, filters) and \
                            (until is None or event["timeNano"] <= until * 1e9):
                        yield event
            while True:
                timeout = None if until is None else max(0.0, until - time.time())
                try:
                    event = await asyncio.wait_for(queue.get(), timeout)
                except TimeoutError:
                    return
                if _match(event, filters):
                    yield event
        finally:
            self.subscribers.remove(queue)


def _match(event: dict[str, Any], filters: dict[str, list[str]]) -> bool:
    actor = event["Actor"]
    for key, values in filters.items():
        if key == "type" and event["Type"] not in values:
            return False
        if key in ("event", "action") and not _action_matches(event["Action"], values):
            return False
        if key == "container" and event["Type"] == "container" and not any(
                v in (actor["ID"], actor["Attributes"].get("name")) for v in values):
            return False
        if key == "image" and actor["Attributes"].get("image") not in values:
            return False
        if key == "label":
            for wanted in values:
                k, eq, v = wanted.partition("=")
                if k not in actor["Attributes"] or (eq and actor["Attributes"][k] != v):
                    return False
    return True


def _action_matches(action: str, values: list[str]) -> bool:
    """Exact, except that ``health_status``, ``exec_create`` and ``exec_start`` without
    their ": detail" match every such event (Docker's prefix match for these three)."""
    if action in values:
        return True
    prefixed = {"health_status", "exec_create", "exec_start"} & set(values)
    return bool(prefixed) and any(action.startswith(p) for p in prefixed)
