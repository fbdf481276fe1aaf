"""The OCI runtime config (a bundle's ``config.json``): the default and loading.

Validation lives in :mod:`longboat.oci.validate`, mount options in
:mod:`longboat.oci.mountopts`; :func:`load_config` reads and validates.
"""

from __future__ import annotations

import json
import os

from longboat.errors import InvalidArgument
from longboat.oci import OCI_VERSION
from longboat.oci.validate import CONFIG_FILE, validate

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any, Final, NoReturn


# --------------------------------------------------------------------------------------
# The default config
# --------------------------------------------------------------------------------------

_DEFAULT_CAPS: Final = ("CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE")
_MASKED_PATHS: Final = ("/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/sys/firmware", "/proc/scsi")
_READONLY_PATHS: Final = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")


def default_spec(*, rootless: bool = False) -> dict[str, Any]:
    """The config.json ``longboat-runtime spec`` writes: runc's example, field for field.

    Differences from runc 1.1's ``runc spec``: our ``ociVersion`` and hostname, a cgroup
    namespace (as runc 1.2 has), and no ambient capabilities (runc 1.2 dropped them: an
    ambient capability cannot be raised without the inheritable one).

    ``rootless`` does what ``runc spec --rootless`` does: a user namespace mapping root
    in the container to the calling user, no network namespace (an unprivileged user
    cannot wire one up), ``/sys`` bind-mounted from the host (sysfs cannot be mounted
    without a network namespace of one's own), no ``gid=5`` on devpts (that group is
    not mapped) and no device cgroup rules.
    """
    cap_list = list(_DEFAULT_CAPS)
    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": {
            "terminal": True,
            "user": {"uid": 0, "gid": 0},
            "args": ["sh"],
            "env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
                    "TERM=xterm"],
            "cwd": "/",
            "capabilities": {"bounding": list(cap_list), "effective": list(cap_list),
                             "permitted": list(cap_list)},
            "rlimits": [{"type": "RLIMIT_NOFILE", "hard": 1024, "soft": 1024}],
            "noNewPrivileges": True,
        },
        "root": {"path": "rootfs", "readonly": True},
        "hostname": "longboat",
        "mounts": [
            {"destination": "/proc", "type": "proc", "source": "proc"},
            {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
             "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
            {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
             "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                         "gid=5"]},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
             "options": ["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"]},
            {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
             "options": ["nosuid", "noexec", "nodev"]},
            {"destination": "/sys", "type": "sysfs", "source": "sysfs",
             "options": ["nosuid", "noexec", "nodev", "ro"]},
            {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
             "options": ["nosuid", "noexec", "nodev", "relatime", "ro"]},
        ],
        "linux": {
            "resources": {"devices": [{"allow": False, "access": "rwm"}]},
            "namespaces": [{"type": t} for t in
                           ("pid", "network", "ipc", "uts", "mount", "cgroup")],
            "maskedPaths": list(_MASKED_PATHS),
            "readonlyPaths": list(_READONLY_PATHS),
        },
    }
    if rootless:
        linux = spec["linux"]
        linux["namespaces"] = [ns for ns in linux["namespaces"] if ns["type"] != "network"]
        linux["namespaces"].append({"type": "user"})
        linux["uidMappings"] = [{"containerID": 0, "hostID": os.geteuid(), "size": 1}]
        linux["gidMappings"] = [{"containerID": 0, "hostID": os.getegid(), "size": 1}]
        del linux["resources"]
        for mount in spec["mounts"]:
            if mount["destination"] == "/sys":
                mount.update(type="none", source="/sys",
                             options=["rbind", "nosuid", "noexec", "nodev", "ro"])
            elif mount["destination"] == "/dev/pts":
                mount["options"].remove("gid=5")
    return spec


# --------------------------------------------------------------------------------------
# Loading
# --------------------------------------------------------------------------------------

def _refuse_constant(name: str) -> NoReturn:
    raise ValueError(f"{name} is not a JSON number")


def load_config(bundle: str, *, require_process: bool = True) -> dict[str, Any]:
    """Read, parse and :func:`validate` ``bundle/config.json``; return the config.

    Warnings are dropped: use :func:`load_config_with_warnings` to show them.
    """
    return load_config_with_warnings(bundle, require_process=require_process)[0]


def load_config_with_warnings(bundle: str, *, require_process: bool = True,
                              ) -> tuple[dict[str, Any], list[str]]:
    """:func:`load_config`, also returning :func:`validate`'s warnings."""
    path = os.path.join(bundle, CONFIG_FILE)
    try:
        with open(path, "rb") as f:
            raw = f.read()
    except FileNotFoundError:
        raise InvalidArgument(f"{path}: no such file (is {bundle!r} a bundle?)") from None
    except OSError as e:
        raise InvalidArgument(f"{path}: cannot read: {e.strerror}") from None
    try:
        config: dict[str, Any] = json.loads(raw.decode("utf-8"),
                                            parse_constant=_refuse_constant)
    except UnicodeDecodeError as e:
        raise InvalidArgument(f"{path}: not UTF-8 text (byte {e.start})") from None
    except json.JSONDecodeError as e:
        raise InvalidArgument(
            f"{path}: invalid JSON at line {e.lineno}, column {e.colno}: {e.msg}") from None
    except ValueError as e:  # NaN / Infinity
        raise InvalidArgument(f"{path}: invalid JSON: {e}") from None
    return config, validate(config, bundle, require_process=require_process)
