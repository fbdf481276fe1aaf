"""The engine's nftables table, rebuilt from every network's record at each change
(network create/remove, endpoint join/leave): masquerade and isolation for each bridge
network, DNAT for every published port. One table per engine: ``longboat`` for the
default data root, ``longboat-<hash>`` for another (test engines side by side). When the
engine has no bridge network at all, it has no table."""

from __future__ import annotations

import hashlib
import threading

TYPE_CHECKING = False
if TYPE_CHECKING:
    from longboat.engine.engine import Engine
    from longboat.engine.networks import Network
    from longboat.network.nftables import Ruleset

DEFAULT_DATA_ROOT = "/var/lib/longboat"
_lock = threading.Lock()
_applied: dict[str, bool] = {}


def table_name(engine: Engine) -> str:
    root = engine.settings.data_root.rstrip("/")
    if root == DEFAULT_DATA_ROOT:
        return "longboat"
    return "longboat-" + hashlib.sha256(root.encode()).hexdigest()[:8]


def ruleset(networks: list[Network]) -> Ruleset:
    from longboat.network import nftables

    model = nftables.Ruleset()
    for network in networks:
        if network.driver != "bridge" or network.config_only:
            continue
        model.networks.append(nftables.BridgeNetwork(
            ifname=network.bridge, subnets=tuple(network.subnets()),
            masquerade=network.masquerade, internal=network.internal, icc=network.icc))
        if network.internal:
            continue     # nothing is published from an internal network
        for endpoint in network.endpoints.values():
            for port in endpoint.get("Ports") or []:
                v4 = endpoint["IPv4Address"].partition("/")[0]
                v6 = endpoint["IPv6Address"].partition("/")[0]
                target = v6 if ":" in (port["host_ip"] or "") else v4
                if not target:
                    continue
                model.ports.append(nftables.PublishedPort(
                    proto=port["proto"], host_ip=port["host_ip"],
                    host_port=port["host_port"], container_ip=target,
                    container_port=port["container_port"], ifname=network.bridge))
    return model


def apply(engine: Engine, networks: list[Network]) -> None:
    from longboat.network import nftables

    name = table_name(engine)
    model = ruleset(networks)
    with _lock:
        if not model.networks:
            if _applied.get(name, True):
                nftables.remove(name)
            _applied[name] = False
            return
        nftables.apply(model, name)
        _applied[name] = True


def remove(engine: Engine) -> None:
    from longboat.network import nftables

    name = table_name(engine)
    with _lock:
        nftables.remove(name)
        _applied[name] = False
