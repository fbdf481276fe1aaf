"""The build cache, with the classic builder's semantics.

A step's result is found again by its parent image and the step's container
configuration (Docker's ``ContainerConfig``: the stage's config with ``Cmd`` set to
the step: ``#(nop) ENV a=b``, ``|1 X=2 /bin/sh -c make`` for a RUN with one build arg
declared, ``#(nop) COPY dir:<checksum> in /app`` ...). Only images this engine built are
candidates: each built step records ``key -> image`` and ``image -> parent`` under
``DATA_ROOT/build/`` (loaded or pulled images have no such record, as in Docker).
``--cache-from`` images are matched by their history instead (Docker's rule): the
entry after the parent's history must have been made by the same command, and its
layer is taken over.
"""

from __future__ import annotations

import hashlib
import json
import os

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# configuration fields that make two steps the same (Docker's compare(): everything a
# step can change; Hostname and Image are per-container and per-parent)
_KEY_FIELDS = ("Cmd", "Entrypoint", "Env", "Labels", "ExposedPorts", "Volumes",
               "WorkingDir", "User", "OnBuild", "StopSignal", "Healthcheck", "Shell",
               "ArgsEscaped")


def cache_key(parent_id: str, container_config: dict[str, Any]) -> str:
    fields = {k: container_config.get(k) or None for k in _KEY_FIELDS}
    text = json.dumps({"parent": parent_id, "config": fields}, sort_keys=True,
                      separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()


class BuildCache:
    """``DATA_ROOT/build/cache/<key>``: the image a step made; ``parents/<image hex>``:
    the image it was made on."""

    def __init__(self, root: str) -> None:
        self.root = root
        for sub in ("cache", "parents"):
            os.makedirs(os.path.join(root, sub), mode=0o700, exist_ok=True)

    def lookup(self, key: str) -> str | None:
        try:
            with open(os.path.join(self.root, "cache", key)) as f:
                return f.read().strip() or None
        except FileNotFoundError:
            return None

    def record(self, key: str, image_id: str, parent_id: str) -> None:
        _write(os.path.join(self.root, "cache", key), image_id)
        _write(os.path.join(self.root, "parents", image_id.removeprefix("sha256:")),
               parent_id)

    def parent(self, image_id: str) -> str:
        try:
            with open(os.path.join(self.root, "parents",
                                   image_id.removeprefix("sha256:"))) as f:
                return f.read().strip()
        except FileNotFoundError:
            return ""

    def prune(self, exists: set[str]) -> int:
        """Forget records of images that are gone; how many were removed."""
        removed = 0
        for sub in ("cache", "parents"):
            directory = os.path.join(self.root, sub)
            for name in os.listdir(directory):
                path = os.path.join(directory, name)
                if sub == "cache":
                    with open(path) as f:
                        image = f.read().strip()
                else:
                    image = "sha256:" + name
                if image not in exists:
                    os.unlink(path)
                    removed += 1
        return removed


def _write(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
    os.rename(tmp, path)


def history_match(source: dict[str, Any], parent: dict[str, Any] | None,
                  created_by: str) -> int | None:
    """``--cache-from``: the index in ``source``'s history of the step that follows
    ``parent`` (an image config, None for scratch) and was made by ``created_by``,
    when ``source`` was built on ``parent``; else None."""
    source_history = source.get("history") or []
    parent_history = (parent or {}).get("history") or []
    source_ids = (source.get("rootfs") or {}).get("diff_ids") or []
    parent_ids = ((parent or {}).get("rootfs") or {}).get("diff_ids") or []
    n = len(parent_history)
    if len(source_history) <= n or source_ids[:len(parent_ids)] != parent_ids:
        return None
    for mine, theirs in zip(parent_history, source_history, strict=False):
        if mine.get("created_by") != theirs.get("created_by") or \
                bool(mine.get("empty_layer")) != bool(theirs.get("empty_layer")):
            return None
    if source_history[n].get("created_by") != created_by:
        return None
    return n


def layer_index(config: dict[str, Any], history_index: int) -> int | None:
    """Which layer the history entry ``history_index`` made (None if empty)."""
    history = config.get("history") or []
    if history[history_index].get("empty_layer"):
        return None
    return sum(1 for h in history[:history_index] if not h.get("empty_layer"))
