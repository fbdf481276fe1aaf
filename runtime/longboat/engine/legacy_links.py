"""Legacy ``--link`` on the default bridge, as Docker 20.10 does it at start: every
linked container must be running and on the default bridge, and the process gets its
``<ALIAS>_PORT...``, ``<ALIAS>_NAME`` and ``<ALIAS>_ENV_...`` variables (moby's
``links.Link.ToEnv``). The /etc/hosts entries are written with the etc files; on
user-defined networks links are names in the embedded DNS only, without variables.
"""

from __future__ import annotations

from longboat.engine import ports
from longboat.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine

DEFAULT_BRIDGE = "bridge"


def port_env(alias: str, child_ip: str, exposed: list[str]) -> list[str]:
    """The ``<ALIAS>_PORT...`` variables for a child's exposed ports: the lowest port as
    ``<ALIAS>_PORT``, each run of three or more consecutive ports as a range
    (``_START``/``_END``), then every port on its own (the ports of a range too, as
    dockerd 20.10 writes them)."""
    prefix = alias.upper().replace("-", "_")
    parsed = sorted((ports.port_key(k) for k in exposed),
                    key=lambda p: (p[0], p[1] != "tcp"))
    env: list[str] = []
    if parsed:
        port, proto = parsed[0]
        env.append(f"{prefix}_PORT={proto}://{child_ip}:{port}")
    i = 0
    while i < len(parsed):
        port, proto = parsed[i]
        j = _contiguous_end(parsed, i)
        if j > i + 1:
            key = f"{prefix}_PORT_{port}_{proto.upper()}"
            last_port, last_proto = parsed[j]
            env += [f"{key}_START={proto}://{child_ip}:{port}", f"{key}_ADDR={child_ip}",
                    f"{key}_PROTO={proto}", f"{key}_PORT_START={port}",
                    f"{prefix}_PORT_{port}_{last_proto.upper()}_END="
                    f"{last_proto}://{child_ip}:{last_port}",
                    f"{prefix}_PORT_{port}_{last_proto.upper()}_PORT_END={last_port}"]
            i = j + 1
        else:
            i += 1
    for port, proto in parsed:
        key = f"{prefix}_PORT_{port}_{proto.upper()}"
        env += [f"{key}={proto}://{child_ip}:{port}", f"{key}_ADDR={child_ip}",
                f"{key}_PORT={port}", f"{key}_PROTO={proto}"]
    return env


def _contiguous_end(parsed: list[tuple[int, str]], index: int) -> int:
    """The index of the last port of the run of consecutive numbers from ``index``."""
    value = parsed[index][0]
    for i in range(index + 1, len(parsed)):
        if parsed[i][0] > value + 1:
            return i - 1
        value += 1
    return len(parsed) - 1


def link_env(link_name: str, child_ip: str, exposed: list[str],
             child_env: list[str]) -> list[str]:
    """Every variable of one link; ``link_name`` is Docker's ``/parent/alias``."""
    alias = link_name.rsplit("/", 1)[-1]
    prefix = alias.upper().replace("-", "_")
    env = port_env(alias, child_ip, exposed)
    env.append(f"{prefix}_NAME={link_name}")
    for entry in child_env:
        key, eq, value = entry.partition("=")
        if eq and key not in ("HOME", "PATH"):
            env.append(f"{prefix}_ENV_{key}={value}")
    return env


def environment(engine: Engine, container: Container) -> list[str]:
    """The link variables of a container about to start (none unless it is on the
    default bridge); Conflict when a linked container is not running."""
    links = container.host_config.get("Links") or []
    networks = container.data["NetworkSettings"].get("Networks") or {}
    if not links or DEFAULT_BRIDGE not in networks:
        return []
    try:
        bridge = engine.networks.get(DEFAULT_BRIDGE)
    except NotFound:
        return []
    env: list[str] = []
    for link in links:
        target, _, name = link.partition(":")
        child = engine.containers.get(target.lstrip("/"))
        if not child.running:
            raise Conflict(f"Cannot link to a non running container: /{child.name} AS "
                           f"{name}")
        endpoint = bridge.endpoints.get(child.id)
        if endpoint is None:
            raise InvalidArgument(f"Cannot link to /{child.name}, as it does not belong to "
                                  "the default network")
        env += link_env(name, endpoint["IPv4Address"].partition("/")[0],
                        _exposed(engine, child), list(_child_env(engine, child)))
    return env


def _exposed(engine: Engine, child: Container) -> list[str]:
    keys = set((child.config.get("ExposedPorts") or {}).keys())
    keys |= set((_image_config(engine, child).get("ExposedPorts") or {}).keys())
    return sorted(keys)


def _child_env(engine: Engine, child: Container) -> list[str]:
    """The child's Env as Docker records it (its own, then the image's it does not set)."""
    own = list(child.config.get("Env") or [])
    keys = {e.partition("=")[0] for e in own}
    image = [e for e in _image_config(engine, child).get("Env") or []
             if e.partition("=")[0] not in keys]
    return own + image


def _image_config(engine: Engine, child: Container) -> dict[str, Any]:
    try:
        config: dict[str, Any] = engine.images.get(child.data["Image"]).config.get(
            "config") or {}
    except Exception:
        return {}
    return config


def merge(process_env: list[str], linked: list[str], *, tty: bool) -> list[str]:
    """The link variables placed as Docker places them: after PATH, HOSTNAME (and TERM),
    before the container's and image's own, which win over a link variable of the same
    name."""
    if not linked:
        return process_env
    keys = {e.partition("=")[0] for e in process_env}
    at = min(len(process_env), 3 if tty else 2)
    return [*process_env[:at], *(e for e in linked if e.partition("=")[0] not in keys),
            *process_env[at:]]
