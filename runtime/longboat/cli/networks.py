"""``network create|ls|inspect|connect|disconnect|prune|rm`` and ``port``, with docker's
options and output; and the PORTS text ``ps`` shows."""

from __future__ import annotations

import re

from longboat.cli.main import CommandError, Context, UsageError
from longboat.client.api import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.cli.template import Context as Row

LS_TABLE = "table {{.ID}}\t{{.Name}}\t{{.Driver}}\t{{.Scope}}"
LS_HEADERS = {"ID": "NETWORK ID", "Name": "NAME", "Driver": "DRIVER", "Scope": "SCOPE",
              "IPv6": "IPV6", "Internal": "INTERNAL", "Labels": "LABELS",
              "CreatedAt": "CREATED AT"}
PRUNE_WARNING = ("WARNING! This will remove all custom networks not used by at least one "
                 "container.\nAre you sure you want to continue?")


def _daemon_error(exc: APIError) -> str:
    # docker's CLI since 23 prints the daemon's words ("network X not found"), as
    # our other commands do
    return f"Error response from daemon: {exc.message}"


def _pairs(items: list[str], flag: str, *, strict: bool = True) -> dict[str, str]:
    """KEY=VALUE items; without ``strict`` a lone KEY is KEY="" (docker's MapOpts, as
    for ``-o``, ``--ipam-opt`` and ``--aux-address``)."""
    out: dict[str, str] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq and strict:
            raise UsageError(f'invalid argument "{item}" for "{flag}" flag: '
                             f"{item} is not a key=value pair")
        out[key] = value
    return out


def _labels(items: list[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


# -- create ----------------------------------------------------------------------------------
def _contains(subnet: str, other: str) -> bool:
    """docker's ``subnetMatches``: does ``subnet`` hold ``other`` (an address or a
    network)."""
    import ipaddress

    try:
        network = ipaddress.ip_network(subnet, strict=False)
    except ValueError:
        raise CommandError(f"invalid CIDR address: {subnet}") from None
    try:
        if "/" in other:
            address = ipaddress.ip_network(other, strict=False).network_address
        else:
            address = ipaddress.ip_address(other)
    except ValueError:
        raise CommandError(f"invalid CIDR address: {other}") from None
    return address.version == network.version and address in network


def ipam_configs(subnets: list[str], ranges: list[str], gateways: list[str],
                 aux: dict[str, str]) -> list[dict[str, Any]]:
    """docker's ``consolidateIpam``: each --ip-range, --gateway and --aux-address goes to
    the --subnet that holds it."""
    if not subnets:
        if ranges or gateways or aux:
            raise CommandError("every ip-range or gateway must have a corresponding "
                               "subnet")
        return []
    if len(subnets) < len(ranges) or len(subnets) < len(gateways):
        raise CommandError("take a look at the network documentation for more information "
                           "about IP-range and gateway")
    for i, first in enumerate(subnets):
        for second in subnets[i + 1:]:
            if _contains(first, second) or _contains(second, first):
                raise CommandError("multiple overlapping subnet configuration is not "
                                   "supported")
    configs: dict[str, dict[str, Any]] = {s: {"Subnet": s} for s in subnets}

    def place(value: str, field: str, what: str) -> None:
        for subnet in subnets:
            if not _contains(subnet, value):
                continue
            if configs[subnet].get(field):
                raise CommandError(f"cannot configure multiple {what}s ({value}, "
                                   f"{configs[subnet][field]}) on the same subnet "
                                   f"({subnet})")
            configs[subnet][field] = value
            return
        raise CommandError(f"no matching subnet for {what} {value}")

    for item in ranges:
        place(item, "IPRange", "range")
    for item in gateways:
        place(item, "Gateway", "gateway")
    for key, address in aux.items():
        holders = [s for s in subnets if _contains(s, address)]
        if not holders:
            raise CommandError(f"no matching subnet for aux-address {address}")
        for subnet in holders:
            configs[subnet].setdefault("AuxiliaryAddresses", {})[key] = address
    return list(configs.values())


def create_request(a: Any) -> dict[str, Any]:
    """The ``POST /networks/create`` body for ``network create`` flags."""
    body: dict[str, Any] = {
        "Name": a.name,
        "CheckDuplicate": True,
        "Driver": a.driver,
        "Scope": a.scope or "",
        "EnableIPv6": a.ipv6,
        "IPAM": {"Driver": a.ipam_driver,
                 "Config": ipam_configs(a.subnet, a.ip_range, a.gateway,
                                        _pairs(a.aux_address, "--aux-address",
                                               strict=False)),
                 "Options": _pairs(a.ipam_opt, "--ipam-opt", strict=False)},
        "Internal": a.internal,
        "Attachable": a.attachable,
        "Ingress": a.ingress,
        "ConfigOnly": a.config_only,
        "Options": _pairs(a.opt, "--opt", strict=False),
        "Labels": _labels(a.label),
    }
    if a.config_from:
        body["ConfigFrom"] = {"Network": a.config_from}
    return body


def create(ctx: Context) -> int:
    created = ctx.client().create_network(create_request(ctx.args))
    if created.get("Warning"):
        ctx.err.write(f"WARNING: {created['Warning']}\n")
    ctx.out.write(f"{created['Id']}\n")
    return 0


# -- ls --------------------------------------------------------------------------------------
def natural_key(text: str) -> list[Any]:
    """``sortorder.NaturalLess``: digits compare as numbers ("net2" before "net10")."""
    return [(0, int(part), part) if part.isdigit() else (1, 0, part)
            for part in re.split(r"(\d+)", text) if part]


def go_time(created: str) -> str:
    """Go's ``time.Time.String()`` for an RFC 3339 time with nanoseconds, in UTC as the
    engine wrote it ("2024-05-01 12:00:00.123456789 +0000 UTC")."""
    match = re.match(r"^(\d{4}-\d\d-\d\d)T(\d\d:\d\d:\d\d)(?:\.(\d+))?(Z|[+-]\d\d:\d\d)$",
                     created)
    if not match:
        return created
    day, clock, fraction, zone = match.groups()
    fraction = (fraction or "").rstrip("0")
    text = f"{day} {clock}" + (f".{fraction}" if fraction else "")
    if zone == "Z":
        return text + " +0000 UTC"
    return text + " " + zone.replace(":", "") + " " + zone.replace(":", "")


def network_rows(networks: list[dict[str, Any]], *, trunc: bool) -> list[Row]:
    from longboat.cli.output import truncate_id
    from longboat.cli.template import Context as RowContext

    rows = []
    for n in sorted(networks, key=lambda n: natural_key(str(n.get("Name") or ""))):
        nid = str(n.get("Id") or "")
        labels = n.get("Labels") or {}
        rows.append(RowContext("*formatter.networkContext", {
            "ID": truncate_id(nid) if trunc else nid,
            "Name": str(n.get("Name") or ""),
            "Driver": str(n.get("Driver") or ""),
            "Scope": str(n.get("Scope") or ""),
            "IPv6": "true" if n.get("EnableIPv6") else "false",
            "Internal": "true" if n.get("Internal") else "false",
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "CreatedAt": go_time(str(n.get("Created") or "")),
        }))
    return rows


def ls(ctx: Context) -> int:
    from longboat.cli.images import parse_filters
    from longboat.cli.template import render

    a = ctx.args
    networks = ctx.client().networks(filters=parse_filters(a.filter))
    fmt = a.format or ""
    if fmt in ("", "table"):
        fmt = "{{.ID}}" if a.quiet else LS_TABLE
    elif fmt == "json":
        fmt = "{{json .}}"
    elif a.quiet:
        fmt = "{{.ID}}"
    ctx.out.write(render(fmt, network_rows(networks, trunc=not a.no_trunc), LS_HEADERS,
                         "*formatter.networkContext"))
    return 0


# -- inspect, rm, connect, disconnect, prune ------------------------------------------------
def inspect(ctx: Context) -> int:
    from longboat.cli.containers import inspect_each

    client = ctx.client()
    return inspect_each(ctx, lambda name: client.inspect_network(name,
                                                                 verbose=ctx.args.verbose),
                        lambda _name, exc: _daemon_error(exc))


def rm(ctx: Context) -> int:
    client = ctx.client()
    status = 0
    for name in ctx.args.names:
        try:
            client.remove_network(name)
        except APIError as exc:
            ctx.err.write(_daemon_error(exc) + "\n")
            ctx.err.flush()
            status = 1
            continue
        ctx.out.write(f"{name}\n")
        ctx.out.flush()
    return status


def connect(ctx: Context) -> int:
    from longboat.cli import network_args
    from longboat.cli.run_args import ArgumentError

    a = ctx.args
    try:
        ipam: dict[str, Any] = {}
        if a.ip:
            ipam["IPv4Address"] = network_args.ip_address(a.ip, "--ip")
        if a.ip6:
            ipam["IPv6Address"] = network_args.ip_address(a.ip6, "--ip6")
        if a.link_local_ip:
            ipam["LinkLocalIPs"] = list(a.link_local_ip)
        links = [network_args.link(item) for item in a.link]
        driver_opts = _pairs(a.driver_opt, "--driver-opt")
    except ArgumentError as exc:
        raise UsageError(str(exc)) from None
    endpoint: dict[str, Any] = {"IPAMConfig": ipam, "Links": links or None,
                                "Aliases": list(a.alias) or None,
                                "DriverOpts": driver_opts or None}
    ctx.client().connect_network(a.network, a.container, endpoint)
    return 0


def disconnect(ctx: Context) -> int:
    a = ctx.args
    ctx.client().disconnect_network(a.network, a.container, force=a.force)
    return 0


def prune(ctx: Context) -> int:
    from longboat.cli.images import confirm, parse_filters

    a = ctx.args
    if not a.force and not confirm(ctx, PRUNE_WARNING):
        return 0
    report = ctx.client().prune_networks(filters=parse_filters(a.filter))
    deleted = report.get("NetworksDeleted") or []
    if deleted:
        ctx.out.write("Deleted Networks:\n" + "".join(f"{n}\n" for n in deleted) + "\n")
    return 0


# -- ports -----------------------------------------------------------------------------------
def _port_sort_key(port: dict[str, Any]) -> tuple[int, str, int, str]:
    return (int(port.get("PrivatePort") or 0), str(port.get("IP") or ""),
            int(port.get("PublicPort") or 0), str(port.get("Type") or ""))


def displayable_ports(ports: list[dict[str, Any]]) -> str:
    """docker 20.10's PORTS column: published ports as ``IP:PUBLIC->PRIVATE/PROTO``,
    consecutive ports that map to themselves grouped into ranges, unpublished ones as
    ``PRIVATE/PROTO``."""
    groups: dict[str, list[int]] = {}
    order: list[str] = []
    result: list[str] = []
    mappings: list[str] = []
    for port in sorted(ports, key=_port_sort_key):
        private = int(port.get("PrivatePort") or 0)
        proto = str(port.get("Type") or "tcp")
        ip = str(port.get("IP") or "")
        key = proto
        if ip:
            public = int(port.get("PublicPort") or 0)
            if public != private:
                mappings.append(f"{ip}:{public}->{private}/{proto}")
                continue
            key = f"{ip}/{proto}"
        group = groups.get(key)
        if group is None:
            groups[key] = [private, private]
            order.append(key)
            continue
        if private == group[1] + 1:
            group[1] = private
            continue
        result.append(_form_group(key, group[0], group[1]))
        groups[key] = [private, private]
    result += [_form_group(key, *groups[key]) for key in order]
    return ", ".join(result + mappings)


def _form_group(key: str, first: int, last: int) -> str:
    ip, slash, proto = key.rpartition("/")
    text = str(first) if first == last else f"{first}-{last}"
    if slash and ip:
        text = f"{ip}:{text}->{text}"
    return f"{text}/{proto}"


def port(ctx: Context) -> int:
    """``port CONTAINER [PRIVATE_PORT[/PROTO]]``: the container's published ports."""
    a = ctx.args
    settings = ctx.client().inspect_container(a.container).get("NetworkSettings") or {}
    published: dict[str, list[dict[str, str]] | None] = settings.get("Ports") or {}
    if a.private_port:
        number, slash, proto = a.private_port.partition("/")
        key = f"{number}/{proto if slash and proto else 'tcp'}"
        if not number.isdigit() or not 0 < int(number) < 65536:
            raise CommandError(f"Error: invalid port: {number}")
        frontends = published.get(key)
        if frontends:
            for frontend in frontends:
                ctx.out.write(f"{_host_port(frontend)}\n")
            return 0
        raise CommandError(f"Error: No public port '{a.private_port}' published for "
                           f"{a.container}")

    def order(key: str) -> tuple[int, str]:
        number, _, proto = key.partition("/")
        return (int(number) if number.isdigit() else 0, proto)

    for key in sorted(published, key=order):
        for frontend in published[key] or []:
            ctx.out.write(f"{key} -> {_host_port(frontend)}\n")
    return 0


def _host_port(frontend: dict[str, str]) -> str:
    return f"{frontend.get('HostIp', '')}:{frontend.get('HostPort', '')}"


__all__ = ["connect", "create", "disconnect", "displayable_ports", "inspect", "ls", "port",
           "prune", "rm"]
