"""Published ports: Docker's PortBindings and PublishAllPorts, checked at create, given
host ports at start (a fixed port, the first free one of a range, or a free ephemeral
one), and shown as inspect's ``NetworkSettings.Ports`` and ``/containers/json``'s
``Ports``.

A host port is in use when another running container publishes it (same protocol,
overlapping host address) or when something on the engine's host already holds it.
"""

from __future__ import annotations

import errno
import ipaddress
import socket

from longboat.errors import Conflict, InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable
    from typing import Any

#: Docker's ephemeral range for ``-P`` and ``-p CONTAINER`` (its default
#: ip_local_port_range fallback is 49153-60999).
EPHEMERAL = (49153, 60999)


def port_key(key: str) -> tuple[int, str]:
    """``"80/tcp"``, ``"53/udp"``, ``"80"`` -> (80, proto)."""
    port, _, proto = key.partition("/")
    proto = proto or "tcp"
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid port {key!r}: the protocol must be tcp, udp or sctp")
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise InvalidArgument(f"invalid port {key!r}: expected PORT[/PROTO], 1 to 65535")
    return int(port), proto


def _host_ports(text: str, where: str) -> tuple[int, int] | None:
    """``""`` (any), ``"8080"``, ``"8000-8010"`` -> the range, None for any."""
    if text in ("", "0"):
        return None
    low, dash, high = text.partition("-")
    if not low.isdigit() or (dash and not high.isdigit()):
        raise InvalidArgument(f"invalid host port {text!r} for {where}")
    first, last = int(low), int(high) if dash else int(low)
    if not 0 < first <= last < 65536:
        raise InvalidArgument(f"invalid host port range {text!r} for {where}")
    return first, last


def wanted(host_config: dict[str, Any], exposed: Iterable[str]) -> list[dict[str, Any]]:
    """What is asked to be published: one entry per binding, ``{"port", "proto",
    "host_ip", "host_ports": (first, last) | None}``, ``-P`` adding the exposed ports
    that have no binding. Raises InvalidArgument on malformed bindings."""
    bindings = host_config.get("PortBindings") or {}
    if not isinstance(bindings, dict):
        raise InvalidArgument("HostConfig.PortBindings must be an object")
    out: list[dict[str, Any]] = []
    for key, entries in bindings.items():
        port, proto = port_key(key)
        if entries is None:
            entries = [{}]
        if not isinstance(entries, list):
            raise InvalidArgument(f"HostConfig.PortBindings[{key}] must be a list")
        for entry in entries or [{}]:
            if not isinstance(entry, dict):
                raise InvalidArgument(f"HostConfig.PortBindings[{key}]: expected objects")
            host_ip = entry.get("HostIp") or ""
            if host_ip:
                try:
                    ipaddress.ip_address(host_ip if "%" not in host_ip else "")  # no zone
                except ValueError:
                    raise InvalidArgument(f"invalid host IP {host_ip!r} for port {key}"
                                          ) from None
            out.append({"port": port, "proto": proto, "host_ip": host_ip,
                        "host_ports": _host_ports(str(entry.get("HostPort") or ""), key)})
    if host_config.get("PublishAllPorts"):
        bound = {(w["port"], w["proto"]) for w in out}
        for key in sorted(exposed):
            port, proto = port_key(key)
            if (port, proto) not in bound:
                out.append({"port": port, "proto": proto, "host_ip": "",
                            "host_ports": None})
    return out


def exposed_ports(config: dict[str, Any], image_config: dict[str, Any]) -> list[str]:
    keys = set((image_config.get("ExposedPorts") or {}).keys())
    keys |= set((config.get("ExposedPorts") or {}).keys())
    return sorted(f"{p}/{proto}" for p, proto in (port_key(k) for k in keys))


def _overlap(a: str, b: str) -> bool:
    any_a = a in ("", "0.0.0.0", "::")
    any_b = b in ("", "0.0.0.0", "::")
    return any_a or any_b or a == b


def _clash(proto: str, host_ip: str, port: int, taken: list[dict[str, Any]]
           ) -> dict[str, Any] | None:
    return next((t for t in taken if t["proto"] == proto and t["host_port"] == port
                 and _overlap(t["host_ip"], host_ip)), None)


def check_fixed(asked: list[dict[str, Any]], taken: list[dict[str, Any]]) -> None:
    """At create: a fixed host port another running container publishes is refused."""
    for w in asked:
        if w["host_ports"] and w["host_ports"][0] == w["host_ports"][1]:
            port = w["host_ports"][0]
            if _clash(w["proto"], w["host_ip"], port, taken):
                raise Conflict(f"Bind for {w['host_ip'] or '0.0.0.0'}:{port} failed: port "
                               "is already allocated")


def _free_on_host(proto: str, host_ip: str, port: int) -> bool:
    """Nothing on the engine's host holds the port (a test bind, closed at once)."""
    family = socket.AF_INET6 if ":" in host_ip else socket.AF_INET
    kind = socket.SOCK_DGRAM if proto == "udp" else socket.SOCK_STREAM
    if proto == "sctp":
        return True
    with socket.socket(family, kind) as sock:
        try:
            sock.bind((host_ip or ("::" if family == socket.AF_INET6 else "0.0.0.0"), port))
        except OSError as exc:
            if exc.errno in (errno.EADDRINUSE, errno.EACCES):
                return False
            if exc.errno == errno.EADDRNOTAVAIL:
                raise InvalidArgument(f"host IP {host_ip} is not an address of this host"
                                      ) from None
            raise
    return True


def allocate(asked: list[dict[str, Any]], taken: list[dict[str, Any]]
             ) -> list[dict[str, Any]]:
    """Host ports for every binding: ``{"proto", "host_ip", "host_port",
    "container_port"}``; Conflict when a fixed port or a whole range is in use."""
    given: list[dict[str, Any]] = []
    for w in asked:
        proto, host_ip = w["proto"], w["host_ip"]
        first, last = w["host_ports"] or EPHEMERAL
        chosen = None
        for port in range(first, last + 1):
            if _clash(proto, host_ip, port, taken + given):
                continue
            if _free_on_host(proto, host_ip, port):
                chosen = port
                break
        if chosen is None:
            where = f"{host_ip or '0.0.0.0'}:{first}" + (f"-{last}" if last != first else "")
            raise Conflict(f"Bind for {where} failed: port is already allocated")
        given.append({"proto": proto, "host_ip": host_ip, "host_port": chosen,
                      "container_port": w["port"]})
    return given


def inspect_view(published: list[dict[str, Any]], exposed: Iterable[str], *,
                 ipv6: bool = False) -> dict[str, Any]:
    """``NetworkSettings.Ports``: ``{"80/tcp": [{"HostIp", "HostPort"}], "90/tcp": None}``.

    With ``ipv6`` (the container has an IPv6 address), a binding to no address in
    particular shows twice, as ``0.0.0.0`` and ``::``, as Docker 20.10 shows it on a host
    that can listen on IPv6: the port is DNATed over both versions."""
    view: dict[str, Any] = {key: None for key in exposed}
    both = ipv6 and ipv6_listenable()
    for p in published:
        key = f"{p['container_port']}/{p['proto']}"
        entries = view.get(key) or []
        entries.append({"HostIp": p["host_ip"] or "0.0.0.0", "HostPort": str(p["host_port"])})
        if both and not p["host_ip"]:
            entries.append({"HostIp": "::", "HostPort": str(p["host_port"])})
        view[key] = entries
    return view


def ipv6_listenable() -> bool:
    """Whether the calling thread's namespace can listen on ``[::1]`` (Docker's
    ``IsV6Listenable``)."""
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as sock:
            sock.bind(("::1", 0))
    except OSError:
        return False
    return True


def summary_view(published: list[dict[str, Any]], exposed: Iterable[str]
                 ) -> list[dict[str, Any]]:
    """``/containers/json``'s ``Ports``."""
    out: list[dict[str, Any]] = [{"IP": p["host_ip"] or "0.0.0.0",
                                  "PrivatePort": p["container_port"],
                                  "PublicPort": p["host_port"], "Type": p["proto"]}
                                 for p in published]
    done = {(p["container_port"], p["proto"]) for p in published}
    for key in exposed:
        port, proto = port_key(key)
        if (port, proto) not in done:
            out.append({"PrivatePort": port, "Type": proto})
    return out


def summary_from_inspect(view: dict[str, Any]) -> list[dict[str, Any]]:
    """``/containers/json``'s ``Ports`` from inspect's ``NetworkSettings.Ports``."""
    out: list[dict[str, Any]] = []
    for key, entries in (view or {}).items():
        port, proto = port_key(key)
        if not entries:
            out.append({"PrivatePort": port, "Type": proto})
        for entry in entries or []:
            out.append({"IP": entry["HostIp"], "PrivatePort": port,
                        "PublicPort": int(entry["HostPort"]), "Type": proto})
    return out
