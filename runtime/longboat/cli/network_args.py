"""The networking flags of ``run``/``create`` turned into the API's configuration, as the
docker CLI turns them (its ``go-connections/nat`` and ``runconfig/opts`` code): ``-p``
port specs and ranges, ``--expose``, ``--network`` (several; also the ``name=...,alias=``
form), ``--ip``/``--ip6``/``--network-alias``/``--link``, ``--add-host``, ``--dns*``,
``--mac-address``. Pure functions."""

from __future__ import annotations

import ipaddress
import re

from longboat.cli.run_args import ArgumentError

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

PROTOCOLS = ("tcp", "udp", "sctp")
_NON_USER_MODES = ("default", "bridge", "host", "none")
_MAC = re.compile(r"^[0-9A-Fa-f]{2}([:-])(?:[0-9A-Fa-f]{2}\1){4}[0-9A-Fa-f]{2}$")


# -- ports -----------------------------------------------------------------------------------
def split_proto_port(raw: str) -> tuple[str, str]:
    """``80/udp`` -> ("udp", "80"); ``80`` -> ("tcp", "80"); "" -> ("", "")."""
    parts = raw.split("/")
    if not raw or not parts[0]:
        return "", ""
    if len(parts) == 1 or not parts[1]:
        return "tcp", parts[0]
    return parts[1], parts[0]


def port_range(text: str) -> tuple[int, int]:
    """``8080`` or ``8000-8010`` -> (start, end)."""
    if not text:
        raise ArgumentError("empty string specified for ports")

    def number(value: str) -> int:
        if not value.isdigit() or int(value) > 65535:
            raise ArgumentError(f'strconv.ParseUint: parsing "{value}": invalid syntax'
                                if not value.isdigit() else
                                f'strconv.ParseUint: parsing "{value}": value out of range')
        return int(value)

    if "-" not in text:
        start = number(text)
        return start, start
    first, _, last = text.partition("-")
    start, end = number(first), number(last)
    if end < start:
        raise ArgumentError(f"invalid range specified for port: {text}")
    return start, end


def _split_parts(raw: str) -> tuple[str, str, str]:
    parts = raw.split(":")
    if len(parts) == 1:
        return "", "", parts[0]
    if len(parts) == 2:
        return "", parts[0], parts[1]
    return ":".join(parts[:-2]), parts[-2], parts[-1]


def port_spec(raw: str) -> list[tuple[str, dict[str, str]]]:
    """One ``-p [ip:][hostPort:]containerPort[/proto]`` -> [(port key "80/tcp",
    {"HostIp", "HostPort"})], ranges expanded."""
    raw_ip, host_port, container_port = _split_parts(raw)
    proto, container_port = split_proto_port(container_port)
    ip = raw_ip[1:-1] if raw_ip.startswith("[") and raw_ip.endswith("]") else raw_ip
    if ip:
        try:
            ipaddress.ip_address(ip)
        except ValueError:
            raise ArgumentError(f"Invalid ip address: {ip}") from None
    if not container_port:
        raise ArgumentError(f"No port specified: {raw}<empty>")
    try:
        start, end = port_range(container_port)
    except ArgumentError:
        raise ArgumentError(f"Invalid containerPort: {container_port}") from None
    host_start = host_end = 0
    if host_port:
        try:
            host_start, host_end = port_range(host_port)
        except ArgumentError:
            raise ArgumentError(f"Invalid hostPort: {host_port}") from None
        # a host range for one container port: the range to pick a free port from
        if end - start != host_end - host_start and end != start:
            raise ArgumentError("Invalid ranges specified for container and host Ports: "
                                f"{container_port} and {host_port}")
    if proto.lower() not in PROTOCOLS:
        raise ArgumentError(f"Invalid proto: {proto}")
    out = []
    for i in range(end - start + 1):
        host = ""
        if host_port:
            host = str(host_start + i)
            if start == end and host_start != host_end:
                host = f"{host_start}-{host_end}"
        out.append((f"{start + i}/{proto.lower()}", {"HostIp": ip, "HostPort": host}))
    return out


def port_specs(items: list[str]) -> tuple[dict[str, dict[str, Any]],
                                          dict[str, list[dict[str, str]]]]:
    """All ``-p`` flags -> (ExposedPorts, PortBindings)."""
    exposed: dict[str, dict[str, Any]] = {}
    bindings: dict[str, list[dict[str, str]]] = {}
    for item in items:
        for key, binding in port_spec(item):
            exposed[key] = {}
            if binding not in bindings.setdefault(key, []):
                bindings[key].append(binding)
    return exposed, bindings


def exposed_ports(items: list[str]) -> dict[str, dict[str, Any]]:
    """``--expose 80``, ``--expose 7000-7010/udp``."""
    out: dict[str, dict[str, Any]] = {}
    for item in items:
        if ":" in item:
            raise ArgumentError(f"invalid port format for --expose: {item}")
        proto, port = split_proto_port(item)
        try:
            start, end = port_range(port)
        except ArgumentError as exc:
            raise ArgumentError(f"invalid range format for --expose: {item}, error: {exc}"
                                ) from None
        if proto.lower() not in PROTOCOLS:
            raise ArgumentError(f"Invalid proto: {proto}")
        for number in range(start, end + 1):
            out[f"{number}/{proto.lower()}"] = {}
    return out


# -- names and addresses ---------------------------------------------------------------------
def extra_host(text: str) -> str:
    """``--add-host NAME:IP`` (or ``NAME:host-gateway``), checked as docker checks it."""
    name, colon, address = text.partition(":")
    if not colon or not name:
        raise ArgumentError(f'bad format for add-host: "{text}"')
    if address != "host-gateway":
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise ArgumentError(f'invalid IP address in add-host: "{address}"') from None
    return text


def ip_address(text: str, flag: str) -> str:
    try:
        ipaddress.ip_address(text)
    except ValueError:
        raise ArgumentError(f'invalid argument "{text}" for "{flag}" flag: '
                            f"{text} is not an ip address") from None
    return text


def dns_search(text: str) -> str:
    """A search domain, or "." (no search at all)."""
    if text == ".":
        return text
    domain = text[:-1] if text.endswith(".") else text
    if (not domain or len(domain) > 255 or domain.startswith(".")
            or not all(label and len(label) <= 63 and re.fullmatch(r"[A-Za-z0-9_-]+", label)
                       for label in domain.split("."))):
        raise ArgumentError(f"{text} is not a valid domain")
    return text


def link(text: str) -> str:
    """``--link NAME[:ALIAS]``."""
    if not text:
        raise ArgumentError("empty string specified for links")
    parts = text.split(":")
    if len(parts) > 2 or not parts[0] or (len(parts) == 2 and not parts[1]):
        raise ArgumentError(f"bad format for links: {text}")
    return text


def mac_address(text: str) -> str:
    if not _MAC.match(text):
        raise ArgumentError(f"{text} is not a valid mac address")
    return text


# -- networks --------------------------------------------------------------------------------
def is_user_defined(mode: str) -> bool:
    return mode not in _NON_USER_MODES and not mode.startswith("container:")


def network_attachment(text: str) -> dict[str, Any]:
    """``--network NAME`` or ``--network name=NAME,alias=A,ip=...,ip6=...,
    driver-opt=K=V,link-local-ip=...`` -> {"Target", "Aliases", ...}."""
    if "=" not in text:
        return {"Target": text}
    import csv

    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise ArgumentError(f"invalid network specification: {text}") from None
    out: dict[str, Any] = {}
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq:
            raise ArgumentError(f"invalid field key {key}")
        if key == "name":
            out["Target"] = value
        elif key == "alias":
            out.setdefault("Aliases", []).append(value)
        elif key == "ip":
            out["IPv4Address"] = ip_address(value, "--network")
        elif key == "ip6":
            out["IPv6Address"] = ip_address(value, "--network")
        elif key == "link-local-ip":
            out.setdefault("LinkLocalIPs", []).append(value)
        elif key == "driver-opt":
            opt_key, opt_eq, opt_value = value.partition("=")
            if not opt_eq:
                raise ArgumentError(f"invalid key value pair format in driver options: "
                                    f"{value}")
            out.setdefault("DriverOpts", {})[opt_key] = opt_value
        else:
            raise ArgumentError(f"invalid field key {key}")
    if not out.get("Target"):
        raise ArgumentError("network name/id is not specified")
    return out


def _endpoint(attachment: dict[str, Any]) -> dict[str, Any] | None:
    settings: dict[str, Any] = {}
    ipam = {k: attachment[k] for k in ("IPv4Address", "IPv6Address", "LinkLocalIPs")
            if attachment.get(k)}
    if ipam:
        settings["IPAMConfig"] = ipam
    for key in ("Aliases", "Links", "DriverOpts"):
        if attachment.get(key):
            settings[key] = attachment[key]
    return settings or None


def networking(a: argparse.Namespace) -> tuple[str, dict[str, Any]]:
    """(HostConfig.NetworkMode, NetworkingConfig.EndpointsConfig) for the flags: the
    first ``--network`` is the mode and takes ``--ip``/``--ip6``/``--network-alias``/
    ``--link``/``--link-local-ip``; every network gets its endpoint (docker's CLI leaves
    a single network's out when it has no settings)."""
    given = list(a.network or [])
    attachments = [network_attachment(n) for n in given] or [{"Target": "default"}]
    first = attachments[0]
    if a.ip:
        first["IPv4Address"] = ip_address(a.ip, "--ip")
    if a.ip6:
        first["IPv6Address"] = ip_address(a.ip6, "--ip6")
    if a.link_local_ip:
        first["LinkLocalIPs"] = list(first.get("LinkLocalIPs", [])) + list(a.link_local_ip)
    if a.network_alias:
        first["Aliases"] = list(first.get("Aliases", [])) + list(a.network_alias)
    if a.link and is_user_defined(first["Target"]):
        first["Links"] = [link(item) for item in a.link]
    if given:
        # docker's CLI checks each network named with --network (with none named, the
        # aliases go to the engine, which refuses them, and links are legacy links)
        for attachment in attachments:
            if is_user_defined(attachment["Target"]):
                continue
            if attachment.get("Aliases"):
                raise ArgumentError("network-scoped aliases are only supported for "
                                    "user-defined networks")
            if attachment is first and a.link:
                raise ArgumentError("links are only supported for user-defined networks")
    endpoints: dict[str, Any] = {}
    user, other = False, False
    for i, attachment in enumerate(attachments):
        target = attachment["Target"]
        if is_user_defined(target):
            user = True
        else:
            other = True
        if target in endpoints:
            raise ArgumentError(f'network "{target}" is specified multiple times')
        settings = _endpoint(attachment)
        if i == 0 and len(attachments) == 1 and settings is None:
            continue
        endpoints[target] = settings or {}
    if user and other:
        raise ArgumentError("conflicting options: cannot attach both user-defined and "
                            "non-user-defined network-modes")
    return first["Target"], endpoints
