"""The engine's nftables table, rebuilt from every network's record at each change
(network create/remove, endpoint join/leave): masquerade and isolation for each bridge
network, DNAT for every published port. A rebuild that would not change the table (a
container without published ports joining or leaving) is skipped. One table per
engine: ``longboat`` for the default data root, ``longboat-<hash>`` for another (test
engines side by side). When the engine has no bridge network at all, it has no
table."""

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
#: per (table, network namespace): the script last applied ("" when the table was
#: removed); a change whose script is the same (a container without published ports
#: starting or exiting) costs no nftables transaction
_applied: dict[tuple[str, int], str] = {}


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
                host_ip = port["host_ip"] or ""
                # an unbound port reaches the container over each IP version it has
                targets = [v6] if ":" in host_ip else [v4] if host_ip else [v4, v6]
                for target in targets:
                    if not target:
                        continue
                    model.ports.append(nftables.PublishedPort(
                        proto=port["proto"], host_ip=host_ip,
                        host_port=port["host_port"], container_ip=target,
                        container_port=port["container_port"], ifname=network.bridge))
    return model


def _key(name: str) -> tuple[str, int]:
    from longboat.network import netns

    return name, netns.current_inode()


def apply(engine: Engine, networks: list[Network]) -> None:
    """Make the table match the networks' records; nothing when it already does as
    this process last left it (the first apply of an engine always runs)."""
    from longboat.network import nftables

    key = _key(table_name(engine))
    model = ruleset(networks)
    with _lock:
        if not model.networks:
            if _applied.get(key) != "":
                nftables.remove(key[0])
            _applied[key] = ""
            return
        script = nftables.render(model, key[0],
                                 br_netfilter=nftables.br_netfilter_versions())
        if _applied.get(key) == script:
            return
        _applied.pop(key, None)      # unknown until the transaction is through
        nftables.run(script)
        _applied[key] = script


def remove(engine: Engine) -> None:
    from longboat.network import nftables

    key = _key(table_name(engine))
    with _lock:
        _applied.pop(key, None)
        nftables.remove(key[0])
        _applied[key] = ""
