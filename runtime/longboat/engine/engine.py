"""The engine's state on this host, and the one place that wires its parts together:
the image store, the snapshotter and the credentials it pulls and pushes with."""

from __future__ import annotations

import os
import socket
import uuid

from longboat.engine.config import Settings
from longboat.image.store import ImageStore


class Engine:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        os.makedirs(settings.data_root, mode=0o700, exist_ok=True)
        os.chmod(settings.data_root, 0o700)   # private whatever umask made it
        self.images = ImageStore(settings.image_root())
        self.images.content.clean_ingest()
        self.id = self._engine_id()

    def _engine_id(self) -> str:
        path = os.path.join(self.settings.data_root, "engine-id")
        try:
            with open(path) as f:
                return f.read().strip()
        except FileNotFoundError:
            value = str(uuid.uuid4())
            with open(path + ".tmp", "w") as f:
                f.write(value)
            os.rename(path + ".tmp", path)
            return value

    @property
    def name(self) -> str:
        return socket.gethostname()

    def tmpdir(self) -> str:
        path = os.path.join(self.settings.data_root, "tmp")
        os.makedirs(path, mode=0o700, exist_ok=True)
        return path
