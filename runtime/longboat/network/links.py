"""Links, addresses and routes through netlink (pyroute2): bridges, veth pairs and macvlan
interfaces for containers, and the per-namespace sysctls the NAT rules rely on.

Every function works in the network namespace of the calling thread (the engine's own,
or one a caller entered with ``netns.run_in``); work inside a container's namespace is
done through ``netns.run_in``, with an ``IPRoute`` socket opened in that thread, so
pyroute2 never forks a helper process. Sockets are always closed.

IPv6 addresses are added with ``nodad``: they are usable the moment they exist, instead
of after a second of duplicate address detection.
"""

from __future__ import annotations

import contextlib
import errno
import importlib
import importlib.util
import ipaddress
import os
import socket
import sys
from collections.abc import Iterator
from typing import Any

from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound, SystemFault
from longboat.network import netns


def _lean_pyroute2() -> None:
    """Let ``pyroute2.iproute`` be imported without the package's ``__init__``, which
    imports every module pyroute2 has (NDB and its sqlite, IPDB, wireless, ipset, ...):
    10 MiB of the engine's resident memory and 0.1 s, for the 4 MiB we use. The
    package is stood in by its module, not executed; the first name asked of it that
    is not a submodule (``from pyroute2 import NDB`` anywhere in the process) runs the
    real ``__init__`` then, so everyone else sees pyroute2 as it is."""
    if "pyroute2" in sys.modules:
        return
    spec = importlib.util.find_spec("pyroute2")
    if spec is None or spec.loader is None:
        return
    package = importlib.util.module_from_spec(spec)
    loader = spec.loader

    def __getattr__(name: str) -> Any:
        if not name.startswith("__") and \
                importlib.util.find_spec(f"pyroute2.{name}") is not None:
            return importlib.import_module(f"pyroute2.{name}")
        del package.__getattr__
        loader.exec_module(package)
        return getattr(package, name)

    package.__getattr__ = __getattr__  # type: ignore[method-assign]
    sys.modules["pyroute2"] = package


_lean_pyroute2()

from pyroute2.iproute.linux import IPRoute  # type: ignore[import-untyped]  # noqa: E402
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]  # noqa: E402

IFA_F_NODAD = 0x02
IFNAMSIZ = 16
MACVLAN_MODES = ("bridge", "private", "vepa", "passthru")
RT_TABLE_MAIN = 254


@contextlib.contextmanager
def _ipr() -> Iterator[Any]:
    ipr = IPRoute(groups=0)
    try:
        yield ipr
    finally:
        ipr.close()


def _fault(what: str, exc: NetlinkError) -> SystemFault:
    return SystemFault(f"{what}: {os.strerror(exc.code)}")


def _check_name(name: str) -> None:
    if not name or len(name) >= IFNAMSIZ or "/" in name or any(c.isspace() for c in name):
        raise InvalidArgument(f"invalid interface name {name!r}: 1-15 characters, "
                              "no '/' or spaces")


def _index(ipr: Any, name: str) -> int | None:
    """The index of link ``name`` in the calling thread's namespace (the one ``ipr``'s
    socket was opened in): if_nametoindex(3), one ioctl instead of a netlink query
    through pyroute2 (a tenth of the time)."""
    del ipr
    try:
        return socket.if_nametoindex(name)
    except OSError:
        return None


def _require(ipr: Any, name: str) -> int:
    index = _index(ipr, name)
    if index is None:
        raise NotFound(f"network interface {name} not found")
    return index


def link_exists(name: str) -> bool:
    with _ipr() as ipr:
        return _index(ipr, name) is not None


def link_up(name: str) -> None:
    with _ipr() as ipr:
        index = _require(ipr, name)
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _fault(f"setting {name} up", exc) from exc


# --- sysctls (per network namespace: /proc/sys/net follows the calling thread) --------

def _sysctl(key: str, value: str) -> None:
    path = "/proc/sys/net/" + key
    try:
        with open(path) as f:
            if f.read().strip() == value:
                return
        with open(path, "w") as f:
            f.write(value)
    except OSError as exc:
        raise SystemFault(f"setting {key} to {value}: {exc}") from exc


def read_sysctl(key: str) -> str:
    """A net sysctl (``ipv4/ip_forward``) of the calling thread's namespace."""
    with open("/proc/sys/net/" + key) as f:
        return f.read().strip()


def set_forwarding(*, ipv4: bool = True, ipv6: bool = False) -> None:
    """Turn on IP forwarding (never off: others may rely on it). IPv6 forwarding only
    when asked, since it also stops the namespace from accepting router adverts."""
    if ipv4:
        _sysctl("ipv4/ip_forward", "1")
    if ipv6:
        _sysctl("ipv6/conf/all/forwarding", "1")


def set_route_localnet(ifname: str) -> None:
    """Let 127.0.0.0/8 sources and destinations be routed out of ``ifname`` (needed to
    DNAT the host's own 127.0.0.1:port to a container behind this bridge)."""
    _sysctl(f"ipv4/conf/{ifname}/route_localnet", "1")


def set_hairpin(ifname: str, on: bool = True) -> None:
    """Hairpin mode on a bridge port: frames may leave by the port they came in on."""
    with _ipr() as ipr:
        index = _require(ipr, ifname)
        try:
            ipr.brport("set", index=index, mode=1 if on else 0)
        except NetlinkError as exc:
            raise _fault(f"setting hairpin mode on {ifname}", exc) from exc


# --- addresses and routes ------------------------------------------------------------

def _interface(cidr: str) -> ipaddress.IPv4Interface | ipaddress.IPv6Interface:
    try:
        iface = ipaddress.ip_interface(cidr)
    except ValueError:
        raise InvalidArgument(f"invalid address {cidr!r}: want an address/prefix") from None
    if "/" not in cidr:
        raise InvalidArgument(f"invalid address {cidr!r}: want an address/prefix")
    return iface


def _add_address(ipr: Any, index: int, cidr: str) -> None:
    iface = _interface(cidr)
    spec: dict[str, Any] = {"index": index, "address": str(iface.ip),
                            "prefixlen": iface.network.prefixlen}
    if iface.version == 6:
        spec["flags"] = IFA_F_NODAD
        spec["family"] = socket.AF_INET6
    try:
        ipr.addr("add", **spec)
    except NetlinkError as exc:
        if exc.code != errno.EEXIST:
            raise _fault(f"adding address {cidr}", exc) from exc


def _addresses(ipr: Any, index: int) -> list[tuple[str, int, int]]:
    """(address, prefixlen, scope) of every address on a link."""
    return [(m.get_attr("IFA_ADDRESS"), m["prefixlen"], m["scope"])
            for m in ipr.addr("dump", index=index)]


def _add_default_routes(ipr: Any, index: int, gateways: list[str]) -> None:
    for gateway in gateways:
        try:
            address = ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid gateway {gateway!r}") from None
        family = socket.AF_INET if address.version == 4 else socket.AF_INET6
        dst = "0.0.0.0/0" if address.version == 4 else "::/0"
        try:
            ipr.route("replace", dst=dst, gateway=str(address), oif=index, family=family)
        except NetlinkError as exc:
            raise _fault(f"adding a default route via {gateway}", exc) from exc


# --- bridges ---------------------------------------------------------------------------

def ensure_bridge(name: str, addresses: list[str], *, mtu: int | None = None,
                  forwarding: bool = True) -> None:
    """Create (or adopt) bridge ``name`` with exactly these global addresses, up.

    Also, in the calling thread's namespace: route_localnet on the bridge, and (with
    ``forwarding``) IPv4 forwarding, plus IPv6 forwarding when an IPv6 address is given.
    """
    _check_name(name)
    wanted = [_interface(a) for a in addresses]
    with _ipr() as ipr:
        index = _index(ipr, name)
        if index is None:
            spec: dict[str, Any] = {"ifname": name, "kind": "bridge", "br_stp_state": 0,
                                    "br_forward_delay": 0}
            if mtu:
                spec["mtu"] = mtu
            try:
                ipr.link("add", **spec)
            except NetlinkError as exc:
                if exc.code != errno.EEXIST:
                    raise _fault(f"creating bridge {name}", exc) from exc
            index = _require(ipr, name)
        else:
            kinds = [m.get_attr("IFLA_LINKINFO") for m in ipr.link("get", index=index)]
            kind = kinds[0].get_attr("IFLA_INFO_KIND") if kinds and kinds[0] else None
            if kind != "bridge":
                raise Conflict(f"network interface {name} exists and is not a bridge")
            if mtu:
                ipr.link("set", index=index, mtu=mtu)
        for address, prefixlen, scope in _addresses(ipr, index):
            if scope != 0:  # link-local and host scope: the kernel's own
                continue
            have = ipaddress.ip_interface(f"{address}/{prefixlen}")
            if have not in wanted:
                try:
                    ipr.addr("del", index=index, address=address, prefixlen=prefixlen)
                except NetlinkError as exc:
                    raise _fault(f"removing address {have} from {name}", exc) from exc
        for iface in wanted:
            _add_address(ipr, index, str(iface))
        try:
            ipr.link("set", index=index, state="up")
        except NetlinkError as exc:
            raise _fault(f"setting {name} up", exc) from exc
    if any(i.version == 4 for i in wanted):
        set_route_localnet(name)
    if forwarding:
        set_forwarding(ipv4=True, ipv6=any(i.version == 6 for i in wanted))


def delete_link(name: str) -> bool:
    """Delete a link (a bridge, the host end of a veth, which takes its peer along);
    silent if it is missing. True when there was one."""
    with _ipr() as ipr:
        index = _index(ipr, name)
        if index is None:
            return False
        try:
            ipr.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != errno.ENODEV:
                raise _fault(f"deleting {name}", exc) from exc
            return False
        return True


# --- container interfaces --------------------------------------------------------------

def _configure_inside(ifname: str, mac: str, addresses: list[str], gateways: list[str],
                      mtu: int | None) -> None:
    """In the container's namespace: MAC and MTU (when given: a veth peer is born with
    them), up, addresses, default routes; lo up."""
    with _ipr() as ipr:
        index = _require(ipr, ifname)
        settings: dict[str, Any] = {"index": index, "state": "up"}
        if mac:
            settings["address"] = mac
        if mtu:
            settings["mtu"] = mtu
        try:
            ipr.link("set", **settings)
        except NetlinkError as exc:
            raise _fault(f"configuring {ifname}", exc) from exc
        for cidr in addresses:
            _add_address(ipr, index, cidr)
        _add_default_routes(ipr, index, gateways)
        lo = _index(ipr, "lo")
        if lo is not None:
            ipr.link("set", index=lo, state="up")


def _validate_endpoint(ifname: str, mac: str, addresses: list[str],
                       gateways: list[str]) -> None:
    _check_name(ifname)
    if mac:
        parts = mac.split(":")
        if len(parts) != 6 or not all(len(p) == 2 for p in parts):
            raise InvalidArgument(f"invalid MAC address {mac!r}")
        try:
            first = int(parts[0], 16)
            for p in parts[1:]:
                int(p, 16)
        except ValueError:
            raise InvalidArgument(f"invalid MAC address {mac!r}") from None
        if first & 1:
            raise InvalidArgument(f"invalid MAC address {mac!r}: a multicast address")
    for cidr in addresses:
        _interface(cidr)
    for gateway in gateways:
        try:
            ipaddress.ip_address(gateway)
        except ValueError:
            raise InvalidArgument(f"invalid gateway {gateway!r}") from None


def _netns_fd(path: str) -> int:
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC)
    except FileNotFoundError:
        raise NotFound(f"network namespace {path} not found") from None


def attach_veth(bridge: str, host_ifname: str, netns_path: str, *, ifname: str, mac: str,
                addresses: list[str], gateways: list[str], mtu: int | None = None) -> None:
    """A veth pair: ``host_ifname`` on ``bridge`` (hairpin on) in the calling thread's
    namespace, its peer created straight in ``netns_path`` as ``ifname`` and configured
    there. On failure nothing is left behind."""
    _veth(host_ifname, netns_path, bridge=bridge, host_addresses=[], ifname=ifname, mac=mac,
          addresses=addresses, gateways=gateways, mtu=mtu)


def veth_pair(host_ifname: str, netns_path: str, *, host_addresses: list[str], ifname: str,
              mac: str, addresses: list[str], gateways: list[str],
              mtu: int | None = None) -> None:
    """A plain veth pair, no bridge: ``host_ifname`` with ``host_addresses`` here, its
    peer ``ifname`` configured in ``netns_path`` (an uplink, a point-to-point link)."""
    for cidr in host_addresses:
        _interface(cidr)
    _veth(host_ifname, netns_path, bridge=None, host_addresses=host_addresses, ifname=ifname,
          mac=mac, addresses=addresses, gateways=gateways, mtu=mtu)


def _veth(host_ifname: str, netns_path: str, *, bridge: str | None,
          host_addresses: list[str], ifname: str, mac: str, addresses: list[str],
          gateways: list[str], mtu: int | None) -> None:
    _check_name(host_ifname)
    _validate_endpoint(ifname, mac, addresses, gateways)
    fd = _netns_fd(netns_path)
    try:
        with _ipr() as ipr:
            master = _require(ipr, bridge) if bridge else None
            if _index(ipr, host_ifname) is not None:
                raise Conflict(f"network interface {host_ifname} already exists")
            # one message: the pair, the peer born in the namespace under its final
            # name with its MAC and MTU, the host end up and on the bridge
            peer: dict[str, Any] = {"ifname": ifname, "net_ns_fd": fd}
            if mac:
                peer["address"] = mac
            spec: dict[str, Any] = {"ifname": host_ifname, "kind": "veth", "peer": peer}
            if mtu:
                spec["mtu"] = mtu
                peer["mtu"] = mtu
            if master is not None and not host_addresses:
                spec["master"] = master
                spec["state"] = "up"
            try:
                ipr.link("add", **spec)
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    raise Conflict(f"network interface {host_ifname} or {ifname} in "
                                   f"{netns_path} already exists") from exc
                raise _fault(f"creating veth {host_ifname}", exc) from exc
            try:
                index = _require(ipr, host_ifname)
                if "state" not in spec:
                    if master is not None:
                        ipr.link("set", index=index, master=master)
                    for cidr in host_addresses:
                        _add_address(ipr, index, cidr)
                    ipr.link("set", index=index, state="up")
                if master is not None:
                    ipr.brport("set", index=index, mode=1)  # hairpin
            except (NetlinkError, LongboatError) as exc:
                left = _index(ipr, host_ifname)
                if left is not None:
                    with contextlib.suppress(NetlinkError):
                        ipr.link("del", index=left)
                if isinstance(exc, LongboatError):
                    raise
                raise _fault(f"setting up {host_ifname}", exc) from exc
    finally:
        os.close(fd)
    try:
        netns.run_in(netns_path, lambda: _configure_inside(ifname, "", addresses, gateways,
                                                            None))
    except BaseException:
        delete_link(host_ifname)
        raise


def attach_macvlan(parent: str, mode: str, netns_path: str, *, ifname: str, mac: str,
                   addresses: list[str], gateways: list[str]) -> None:
    """A macvlan interface on ``parent`` (in the calling thread's namespace), created
    straight in ``netns_path`` as ``ifname`` and configured there."""
    if mode not in MACVLAN_MODES:
        raise InvalidArgument(f"invalid macvlan mode {mode!r}: one of "
                              f"{', '.join(MACVLAN_MODES)}")
    _validate_endpoint(ifname, mac, addresses, gateways)
    fd = _netns_fd(netns_path)
    try:
        with _ipr() as ipr:
            link = _require(ipr, parent)
            spec: dict[str, Any] = {"ifname": ifname, "kind": "macvlan", "link": link,
                                    "macvlan_mode": mode, "net_ns_fd": fd}
            if mac:
                spec["address"] = mac
            try:
                ipr.link("add", **spec)
            except NetlinkError as exc:
                if exc.code == errno.EEXIST:
                    raise Conflict(f"network interface {ifname} in {netns_path} already "
                                   "exists") from exc
                raise _fault(f"creating macvlan {ifname} on {parent}", exc) from exc
    finally:
        os.close(fd)
    try:
        netns.run_in(netns_path, lambda: _configure_inside(ifname, "", addresses, gateways,
                                                            None))
    except BaseException:
        with contextlib.suppress(NotFound):
            detach(netns_path, ifname)
        raise


def detach(netns_path: str, ifname: str) -> None:
    """Remove ``ifname`` from the namespace (a veth's peer goes with it); silent if the
    interface or the namespace is gone."""
    if not netns.is_namespace(netns_path):
        return
    netns.run_in(netns_path, lambda: delete_link(ifname))


def mac_for(address: str) -> str:
    """Docker's MAC address for an IPv4 address: 02:42 and the address's four bytes."""
    try:
        packed = ipaddress.IPv4Address(address).packed
    except ValueError:
        raise InvalidArgument(f"invalid IPv4 address {address!r}") from None
    return "02:42:" + ":".join(f"{b:02x}" for b in packed)


def host_networks() -> list[str]:
    """The networks the calling thread's namespace already reaches: destinations of the
    main routing table (not default routes) and the subnets of its global addresses."""
    found: set[str] = set()
    with _ipr() as ipr:
        for family in (socket.AF_INET, socket.AF_INET6):
            for route in ipr.route("dump", family=family, table=RT_TABLE_MAIN):
                prefixlen = route["dst_len"]
                dst = route.get_attr("RTA_DST")
                if not dst or prefixlen == 0:
                    continue
                net = ipaddress.ip_network(f"{dst}/{prefixlen}", strict=False)
                if not (net.is_link_local or net.is_multicast):
                    found.add(str(net))
        for msg in ipr.addr("dump"):
            if msg["scope"] != 0:
                continue
            net = ipaddress.ip_interface(f"{msg.get_attr('IFA_ADDRESS')}/"
                                         f"{msg['prefixlen']}").network
            if not (net.is_loopback or net.is_link_local):
                found.add(str(net))
    return sorted(found, key=lambda n: (ipaddress.ip_network(n).version,
                                        ipaddress.ip_network(n)))


def addresses_of(ifname: str) -> list[str]:
    """The global addresses of a link, as CIDRs (for tests and inspection)."""
    with _ipr() as ipr:
        index = _require(ipr, ifname)
        return [f"{a}/{p}" for a, p, scope in _addresses(ipr, index) if scope == 0]

