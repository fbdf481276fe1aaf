"""Network drivers: what a network and an endpoint are in the kernel.

The seam is small on purpose, so that swarm's overlay driver can plug in later: a driver
checks a new network's options, makes and deletes the network's shared part (a bridge; a
VXLAN later), and joins or leaves one endpoint (an interface in a container's network
namespace). Addresses are already chosen (IPAM) when a driver is called; the firewall
is not a driver's business (it is rebuilt from every network at each change).
"""

from __future__ import annotations

import hashlib
import socket

from longboat.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.networks import Network


class Driver:
    """The interface, and the behaviour of a driver with no kernel side (host, null)."""

    name = ""
    #: can the user create networks of this driver (``docker network create -d``)?
    user_defined = False
    #: do its endpoints live in a namespace of the container's own, with an address?
    has_endpoints = False

    def validate(self, options: dict[str, str], others: list[Network]) -> None:
        """Refuse bad options before anything changes."""

    def create_network(self, network: Network) -> None:
        """Make the network's shared part (``docker network create``)."""

    def restore_network(self, network: Network) -> None:
        """Make sure the shared part exists (engine start; after a reboot it is gone)."""
        self.create_network(network)

    def release_network(self, network: Network) -> None:
        """Remove the shared part at a clean engine stop (made again at start)."""
        self.delete_network(network)

    def delete_network(self, network: Network) -> None:
        """Remove the shared part (``docker network rm``)."""

    def join(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        """Put the endpoint's interface, addresses and routes into the namespace."""

    def leave(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        """Take the endpoint's interface out of the namespace."""


def host_ifname(network_id: str, container_id: str) -> str:
    """The host side of a veth pair: ``veth`` + 7 hex digits, stable for the pair."""
    return "veth" + hashlib.sha256(f"{network_id}/{container_id}".encode()
                                   ).hexdigest()[:7]


class BridgeDriver(Driver):
    name = "bridge"
    user_defined = True
    has_endpoints = True

    def validate(self, options: dict[str, str], others: list[Network]) -> None:
        mtu = options.get("com.docker.network.driver.mtu")
        if mtu and not (mtu.isascii() and mtu.lstrip("+-").isdigit()
                        and len(mtu) - len(mtu.lstrip("+-")) <= 1):
            raise InvalidArgument(f"failed to parse com.docker.network.driver.mtu value: "
                                  f'{mtu} (strconv.Atoi: parsing "{mtu}": invalid syntax)')
        if mtu and not 68 <= int(mtu) <= 65535:
            raise InvalidArgument(f"invalid MTU {mtu!r}: 68 to 65535")
        for key in ("com.docker.network.bridge.enable_icc",
                    "com.docker.network.bridge.enable_ip_masquerade"):
            value = options.get(key)
            if value not in (None, "", "true", "false", "1", "0"):
                raise InvalidArgument(f"{key}: expected true or false, got {value!r}")

    def create_network(self, network: Network) -> None:
        from longboat.network import links

        links.ensure_bridge(network.bridge, network.gateway_cidrs(), mtu=network.mtu)

    def delete_network(self, network: Network) -> None:
        from longboat.network import links

        links.delete_link(network.bridge)

    def join(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        from longboat.network import links

        links.attach_veth(network.bridge, endpoint["HostIfname"], netns_path,
                          ifname=endpoint["Ifname"], mac=endpoint["MacAddress"],
                          addresses=endpoint_addresses(endpoint),
                          gateways=[] if network.internal else network.gateways(),
                          mtu=network.mtu)

    def leave(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        from longboat.network import links

        # the host end, from here (no thread into the namespace): its peer goes with it
        if not links.delete_link(endpoint["HostIfname"]):
            links.detach(netns_path, endpoint["Ifname"])


class MacvlanDriver(Driver):
    """Containers straight on a host interface's segment (``-o parent=IF``), each with
    its own MAC; ``macvlan_mode`` bridge (they talk to each other) or private."""

    name = "macvlan"
    user_defined = True
    has_endpoints = True
    MODES = ("bridge", "private")

    def validate(self, options: dict[str, str], others: list[Network]) -> None:
        known = {"parent", "macvlan_mode", "com.docker.network.driver.mtu"}
        unknown = sorted(set(options) - known)
        if unknown:
            raise InvalidArgument(f"macvlan: unknown option {unknown[0]!r} (known: "
                                  f"{', '.join(sorted(known))})")
        parent = options.get("parent")
        if not parent:
            raise InvalidArgument("macvlan needs a parent interface: -o parent=IFNAME")
        try:
            socket.if_nametoindex(parent)
        except OSError:
            raise NotFound(f"macvlan: parent interface {parent} does not exist") from None
        mode = options.get("macvlan_mode") or "bridge"
        if mode not in self.MODES:
            raise InvalidArgument(f"macvlan_mode {mode!r}: expected one of "
                                  f"{', '.join(self.MODES)}")
        for other in others:
            if other.options.get("parent") == parent:
                raise InvalidArgument(f"network {other.name} is already using parent "
                                      f"interface {parent}")

    def join(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        from longboat.network import links

        options = network.options
        links.attach_macvlan(options["parent"], options.get("macvlan_mode") or "bridge",
                             netns_path, ifname=endpoint["Ifname"],
                             mac=endpoint["MacAddress"],
                             addresses=endpoint_addresses(endpoint),
                             gateways=[] if network.internal else network.gateways())

    def leave(self, network: Network, endpoint: dict[str, Any], netns_path: str) -> None:
        from longboat.network import links

        links.detach(netns_path, endpoint["Ifname"])


class HostDriver(Driver):
    name = "host"


class NullDriver(Driver):
    name = "null"


def endpoint_addresses(endpoint: dict[str, Any]) -> list[str]:
    return [a for a in (endpoint.get("IPv4Address"), endpoint.get("IPv6Address")) if a]


def drivers() -> dict[str, Driver]:
    return {d.name: d for d in (BridgeDriver(), MacvlanDriver(), HostDriver(), NullDriver())}
