"""The daemon's settings: ``/etc/longboat/daemon.json`` overlaid by command-line flags."""

from __future__ import annotations

import json
import os

from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_CONFIG_FILE = "/etc/longboat/daemon.json"
DEFAULT_SOCKET = "/run/longboat/longboat.sock"

# daemon.json key -> (attribute, type); the names dockerd uses where it has one
_KEYS: dict[str, tuple[str, type]] = {
    "data-root": ("data_root", str), "exec-root": ("exec_root", str),
    "hosts": ("hosts", list), "log-level": ("log_level", str), "pidfile": ("pidfile", str),
    "default-runtime": ("default_runtime", str), "tls": ("tls", bool),
    "tlsverify": ("tlsverify", bool), "tlscacert": ("tlscacert", str),
    "tlscert": ("tlscert", str), "tlskey": ("tlskey", str),
    "insecure-registries": ("insecure_registries", list), "group": ("group", str),
    "bridge": ("bridge", str), "bip": ("bip", str),
    "cgroup-parent": ("cgroup_parent", str),
}


class Settings:
    def __init__(self) -> None:
        self.data_root = "/var/lib/longboat"
        self.exec_root = "/run/longboat"
        self.hosts: list[str] = []
        self.log_level = "info"
        self.pidfile = "/run/longboat/longboatd.pid"
        self.default_runtime = "longboat"
        self.tls = False
        self.tlsverify = False
        self.tlscacert: str | None = None
        self.tlscert: str | None = None
        self.tlskey: str | None = None
        self.insecure_registries: list[str] = []
        self.group = "longboat"
        self.bridge = "longboat0"   # the default bridge network's Linux bridge; "none": none
        self.bip = ""               # its address and prefix (default: the first free pool)
        # the cgroup containers go below (/<parent>/<id>) unless their HostConfig names one
        self.cgroup_parent = "/longboat"

    def load_file(self, path: str, *, required: bool) -> None:
        try:
            with open(path, "rb") as f:
                data = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            if required:
                raise InvalidArgument(f"{path}: no such file") from None
            return
        except ValueError as exc:
            raise InvalidArgument(f"{path}: invalid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise InvalidArgument(f"{path}: must hold a JSON object")
        self.apply(data, where=path)

    def apply(self, values: dict[str, Any], where: str) -> None:
        for key, value in values.items():
            if key not in _KEYS:
                raise InvalidArgument(f"{where}: unknown setting {key!r}")
            attr, kind = _KEYS[key]
            if not isinstance(value, kind):
                raise InvalidArgument(f"{where}: {key} must be a {kind.__name__}")
            setattr(self, attr, value)

    @property
    def sockets(self) -> list[str]:
        return self.hosts or [f"unix://{DEFAULT_SOCKET}"]

    def image_root(self) -> str:
        return os.path.join(self.data_root, "image")
