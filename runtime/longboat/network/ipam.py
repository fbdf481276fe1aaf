"""IP address management for container networks: each network's subnet, gateway,
dynamic range and reserved (aux) addresses, and which address belongs to whom.

State is one JSON document (``DATA_ROOT/network/ipam.json``), written atomically under
a file lock, so that no address is handed out twice, across engine restarts and between
processes. Subnets come from the caller, or from Docker's default pools (172.17.0.0/16,
then 172.18.0.0/16 ... 172.31.0.0/16, then 192.168.0.0/20 ... 192.168.240.0/20), skipping
any that overlap a network of ours or one the caller says the host uses.
"""

from __future__ import annotations

import fcntl
import ipaddress
import json
import os

from longboat.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable, Iterator
    from typing import Any

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
Address = ipaddress.IPv4Address | ipaddress.IPv6Address


def default_pools() -> Iterator[ipaddress.IPv4Network]:
    """Docker's default address pools, in the order Docker uses them."""
    for second in range(17, 32):
        yield ipaddress.IPv4Network(f"172.{second}.0.0/16")
    for third in range(0, 256, 16):
        yield ipaddress.IPv4Network(f"192.168.{third}.0/20")


def _network(text: str, field: str) -> Network:
    try:
        if "%" in text:   # an IPv6 zone: ipaddress keeps any text there (not Docker's)
            raise ValueError(text)
        return ipaddress.ip_network(text, strict=False)
    except ValueError:
        raise InvalidArgument(f"invalid {field} {text!r}: expected CIDR, e.g. "
                              "10.1.0.0/16") from None


def _address(text: str, field: str) -> Address:
    try:
        if "%" in text:   # an IPv6 zone: ipaddress keeps any text there (not Docker's)
            raise ValueError(text)
        return ipaddress.ip_address(text)
    except ValueError:
        raise InvalidArgument(f"invalid {field} {text!r}: expected an IP address") from None


class Ipam:
    def __init__(self, path: str) -> None:
        self.path = path
        os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)

    # -- state --------------------------------------------------------------------------
    def _load(self) -> dict[str, Any]:
        try:
            with open(self.path, "rb") as f:
                state: dict[str, Any] = json.loads(f.read() or b"{}")
        except FileNotFoundError:
            return {}
        return state

    def _save(self, state: dict[str, Any]) -> None:
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(state, f, indent=1, sort_keys=True)
            f.flush()
            os.fsync(f.fileno())
        os.rename(tmp, self.path)

    class _Locked:
        def __init__(self, ipam: Ipam) -> None:
            self.fd = os.open(ipam.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC,
                              0o600)

        def __enter__(self) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

        def __exit__(self, *exc: object) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def _lock(self) -> Ipam._Locked:
        return Ipam._Locked(self)

    # -- networks -----------------------------------------------------------------------
    def add_network(self, network_id: str, *, subnet: str | None = None,
                    gateway: str | None = None, ip_range: str | None = None,
                    aux_addresses: dict[str, str] | None = None,
                    host_routes: Iterable[str] = ()) -> dict[str, Any]:
        """Reserve an address space for a network; its IPAM config as Docker reports it
        (``Subnet``, ``Gateway``, ``IPRange``, ``AuxiliaryAddresses``)."""
        with self._lock():
            state = self._load()
            if network_id in state:
                raise Conflict(f"network {network_id} already has an address space")
            taken = [_network(n["subnet"], "subnet") for n in state.values()]
            taken += [_network(r, "host route") for r in host_routes]
            if subnet is None:
                if gateway or ip_range or aux_addresses:
                    raise InvalidArgument("a gateway, an ip-range or aux-addresses need a "
                                          "subnet")
                chosen: Network | None = next(
                    (p for p in default_pools() if not any(p.overlaps(t) for t in taken)),
                    None)
                if chosen is None:
                    raise Conflict("could not find an available, non-overlapping IPv4 "
                                   "address pool among the defaults to assign to the network")
                net = chosen
            else:
                net = _network(subnet, "subnet")
                if any(net.version == t.version and net.overlaps(t) for t in taken):
                    raise Conflict("Pool overlaps with other one on this address space")
            usable = self._usable(net)
            gw = _address(gateway, "gateway") if gateway else next(iter(usable), None)
            if gw is None or gw not in net or gw in (net.network_address,
                                                     net.broadcast_address):
                raise InvalidArgument(f"gateway {gateway} is not a usable address of {net}"
                                      if gateway else f"{net} has no address for a gateway")
            rng = _network(ip_range, "ip-range") if ip_range else net
            if rng.version != net.version or not rng.subnet_of(net):  # type: ignore[arg-type]
                raise InvalidArgument(f"ip-range {rng} is not inside subnet {net}")
            aux = {}
            for name, addr in (aux_addresses or {}).items():
                ip = _address(addr, f"aux-address {name}")
                if ip not in net:
                    raise InvalidArgument(f"aux-address {name}={ip} is not inside subnet "
                                          f"{net}")
                aux[name] = str(ip)
            entry = {"subnet": str(net), "gateway": str(gw), "ip_range": str(rng),
                     "aux": aux, "allocated": {str(gw): "gateway",
                                               **{a: f"aux:{n}" for n, a in aux.items()}}}
            state[network_id] = entry
            self._save(state)
            return self._docker_config(entry)

    @staticmethod
    def _usable(net: Network) -> Iterator[Address]:
        if net.num_addresses <= 2:
            yield from net
            return
        yield from net.hosts()

    @staticmethod
    def _docker_config(entry: dict[str, Any]) -> dict[str, Any]:
        config: dict[str, Any] = {"Subnet": entry["subnet"], "Gateway": entry["gateway"]}
        if entry["ip_range"] != entry["subnet"]:
            config["IPRange"] = entry["ip_range"]
        if entry["aux"]:
            config["AuxiliaryAddresses"] = dict(entry["aux"])
        return config

    def config(self, network_id: str) -> dict[str, Any]:
        return self._docker_config(self._entry(self._load(), network_id))

    def remove_network(self, network_id: str) -> None:
        with self._lock():
            state = self._load()
            entry = self._entry(state, network_id)
            users = [o for o in entry["allocated"].values()
                     if o != "gateway" and not o.startswith("aux:")]
            if users:
                raise Conflict(f"network {network_id} still has addresses in use by "
                               f"{', '.join(sorted(users))}")
            del state[network_id]
            self._save(state)

    @staticmethod
    def _entry(state: dict[str, Any], network_id: str) -> dict[str, Any]:
        try:
            entry: dict[str, Any] = state[network_id]
        except KeyError:
            raise NotFound(f"network {network_id} has no address space") from None
        return entry

    # -- addresses ----------------------------------------------------------------------
    def allocate(self, network_id: str, owner: str, address: str | None = None) -> str:
        """An address for ``owner``: the one asked for, or the lowest free one in the
        network's ip-range."""
        with self._lock():
            state = self._load()
            entry = self._entry(state, network_id)
            net = _network(entry["subnet"], "subnet")
            taken = entry["allocated"]
            if address is not None:
                ip = _address(address, "address")
                if ip not in net:
                    raise InvalidArgument(f"no configured subnet contains IP address {ip}")
                if ip in (net.network_address, net.broadcast_address) and \
                        net.num_addresses > 2:
                    raise InvalidArgument(f"{ip} is the network's own or broadcast address")
                if str(ip) in taken:
                    raise Conflict("Address already in use")
            else:
                rng = _network(entry["ip_range"], "ip-range")
                found = next((a for a in self._usable(rng)
                              if a in net and str(a) not in taken
                              and a not in (net.network_address, net.broadcast_address)),
                             None)
                if found is None:
                    raise Conflict(f"no available IPv{net.version} addresses on this "
                                   f"network's address pools: {network_id} ({rng})")
                ip = found
            taken[str(ip)] = owner
            self._save(state)
            return str(ip)

    def release(self, network_id: str, address: str) -> None:
        with self._lock():
            state = self._load()
            entry = self._entry(state, network_id)
            owner = entry["allocated"].get(address)
            if owner is None:
                return
            if owner == "gateway" or owner.startswith("aux:"):
                raise InvalidArgument(f"{address} is reserved ({owner}), not allocated")
            del entry["allocated"][address]
            self._save(state)

    def owner(self, network_id: str, address: str) -> str | None:
        owner = self._entry(self._load(), network_id)["allocated"].get(address)
        return None if owner is None else str(owner)
