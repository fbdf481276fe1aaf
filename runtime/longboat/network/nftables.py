"""NAT and isolation for bridge networks: a model rendered to one nftables table per
engine, applied atomically through libnftables (ctypes; no ``nft`` process).

The model is the whole truth: every change re-renders the table from it and replaces
the old one in a single transaction (``table``, ``delete table``, the new definition in
one buffer), so the kernel never holds a half-built ruleset and nothing stale survives.
docs/network.md explains the rules. Everything works in the network namespace of the
calling thread.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import ipaddress
import re
import threading
from dataclasses import dataclass, field

from longboat.errors import InvalidArgument, SystemFault

DEFAULT_TABLE = "longboat"
PROTOCOLS = ("tcp", "udp", "sctp")
_NAME = re.compile(r"^[A-Za-z0-9_.-]{1,15}$")
_TABLE = re.compile(r"^[A-Za-z][A-Za-z0-9_-]{0,63}$")

Subnet = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True)
class BridgeNetwork:
    """A bridge network: its Linux bridge and subnets, and how it meets the world.

    ``masquerade``: source NAT for traffic leaving the bridge (Docker's
    ``enable_ip_masquerade``); ``internal``: no forwarding in or out at all; ``icc``:
    whether its containers may talk to each other directly."""

    ifname: str
    subnets: tuple[str, ...]
    masquerade: bool = True
    internal: bool = False
    icc: bool = True


@dataclass(frozen=True)
class PublishedPort:
    """``host_ip:host_port/proto`` forwarded to ``container_ip:container_port`` on bridge
    ``ifname``. An empty ``host_ip`` (or 0.0.0.0, ::) means every local address of the
    container address's family."""

    proto: str
    host_ip: str
    host_port: int
    container_ip: str
    container_port: int
    ifname: str


@dataclass
class Ruleset:
    networks: list[BridgeNetwork] = field(default_factory=list)
    ports: list[PublishedPort] = field(default_factory=list)


# --- validation ----------------------------------------------------------------------------

def _ifname(name: str) -> str:
    if not _NAME.match(name):
        raise InvalidArgument(f"invalid interface name {name!r}")
    return name


def _table(name: str) -> str:
    if not _TABLE.match(name):
        raise InvalidArgument(f"invalid nftables table name {name!r}")
    return name


def _subnets(network: BridgeNetwork) -> list[Subnet]:
    try:   # no IPv6 zone: ipaddress keeps any text after "%", and str() gives it back
        return [ipaddress.ip_network(s if "%" not in s else "", strict=False)
                for s in network.subnets]
    except ValueError as exc:
        raise InvalidArgument(f"network on {network.ifname}: {exc}") from None


def _port_number(value: int, what: str) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 1 <= value <= 65535:
        raise InvalidArgument(f"invalid {what} {value!r}: want 1-65535")
    return value


def _check_port(port: PublishedPort, bridges: set[str]) -> tuple[int, str | None]:
    """The port's IP version and its host address (None: every local address)."""
    if port.proto not in PROTOCOLS:
        raise InvalidArgument(f"invalid protocol {port.proto!r}: one of {', '.join(PROTOCOLS)}")
    _port_number(port.host_port, "host port")
    _port_number(port.container_port, "container port")
    if port.ifname not in bridges:
        raise InvalidArgument(f"published port {port.host_port}/{port.proto}: no bridge "
                              f"network on {port.ifname!r}")
    try:   # no IPv6 zone in either address (any text after "%" would reach the script)
        if "%" in port.container_ip:
            raise ValueError
        target = ipaddress.ip_address(port.container_ip)
    except ValueError:
        raise InvalidArgument(f"invalid container address {port.container_ip!r}") from None
    host: str | None = None
    if port.host_ip:
        try:
            bound = ipaddress.ip_address(port.host_ip if "%" not in port.host_ip else "")
        except ValueError:
            raise InvalidArgument(f"invalid host address {port.host_ip!r}") from None
        if bound.version != target.version:
            raise InvalidArgument(f"published port {port.host_ip}:{port.host_port}: the host "
                                  f"and container addresses are of different IP versions")
        if not bound.is_unspecified:
            host = str(bound)
    return target.version, host


# --- rendering -----------------------------------------------------------------------------

def _fam(net: Subnet | ipaddress.IPv4Address | ipaddress.IPv6Address) -> str:
    return "ip" if net.version == 4 else "ip6"


def _q(name: str) -> str:
    return f'"{name}"'


def render(ruleset: Ruleset, name: str = DEFAULT_TABLE, *,
           br_netfilter: frozenset[int] = frozenset()) -> str:
    """The nft script that replaces our tables with the ruleset, in one transaction.

    ``br_netfilter``: the IP versions (4, 6) whose bridged traffic passes the inet hooks
    (br_netfilter's bridge-nf-call-ip[6]tables); icc=false needs a bridge table only for
    the others."""
    name = _table(name)
    networks = ruleset.networks
    seen: set[str] = set()
    for network in networks:
        _ifname(network.ifname)
        if network.ifname in seen:
            raise InvalidArgument(f"bridge {network.ifname} appears twice")
        seen.add(network.ifname)
    subnets = {n.ifname: _subnets(n) for n in networks}

    forward: list[str] = []
    postrouting: list[str] = []
    publish: list[str] = []
    bridge_forward: list[str] = []

    # internal networks first: nothing in or out, published or established
    for network in networks:
        if network.internal:
            br = _q(network.ifname)
            forward.append(f"iifname {br} oifname != {br} drop")
            forward.append(f"oifname {br} iifname != {br} drop")
    forward.append("ct state established,related accept")
    forward.append("ct status dnat accept")
    for network in networks:
        br = _q(network.ifname)
        if not network.icc:
            # between two containers of the bridge: seen here only with br_netfilter,
            # and always in the bridge table below
            forward.append(f"iifname {br} oifname {br} drop")
            for net in subnets[network.ifname]:
                if net.version not in br_netfilter:
                    f = _fam(net)
                    bridge_forward.append(f"{f} saddr {net} {f} daddr {net} drop")
        if not network.internal:
            # nothing new enters a bridge from elsewhere (other bridges, other hosts)
            forward.append(f"oifname {br} iifname != {br} drop")

    for network in networks:
        if network.internal:
            continue
        br = _q(network.ifname)
        for net in subnets[network.ifname]:
            f = _fam(net)
            if network.masquerade and net.version == 4:
                # IPv6 leaves un-NATed, as with Docker 20.10 (its IPv6 NAT needs the
                # experimental ip6tables option)
                postrouting.append(f"oifname != {br} {f} saddr {net} masquerade")
            # hairpin: a container reaching a published port of its own bridge
            postrouting.append(f"oifname {br} {f} saddr {net} {f} daddr {net} "
                               "ct status dnat masquerade")
        if any(n.version == 4 for n in subnets[network.ifname]):
            # the host's 127.0.0.1:port, DNATed onto the bridge (route_localnet)
            postrouting.append(f"oifname {br} ip saddr 127.0.0.0/8 masquerade")

    internal = {n.ifname for n in networks if n.internal}
    for port in ruleset.ports:
        version, host = _check_port(port, seen)
        if port.ifname in internal:
            raise InvalidArgument(f"published port {port.host_port}/{port.proto}: network on "
                                  f"{port.ifname} is internal")
        f = "ip" if version == 4 else "ip6"
        nfproto = "ipv4" if version == 4 else "ipv6"
        match = f"{f} daddr {host} " if host else f"meta nfproto {nfproto} "
        target = (f"{port.container_ip}:{port.container_port}" if version == 4
                  else f"[{port.container_ip}]:{port.container_port}")
        publish.append(f"{match}{port.proto} dport {port.host_port} dnat {f} to {target}")

    lines = [f"table inet {name}", f"delete table inet {name}", f"table inet {name} {{"]
    lines += _chain("publish", None, publish)
    lines += _chain("prerouting", "type nat hook prerouting priority dstnat; policy accept;",
                    ["fib daddr type local jump publish"])
    lines += _chain("output", "type nat hook output priority -100; policy accept;",
                    ["ip6 daddr ::1 return", "fib daddr type local jump publish"])
    lines += _chain("postrouting", "type nat hook postrouting priority srcnat; policy accept;",
                    postrouting)
    lines += _chain("forward", "type filter hook forward priority filter; policy accept;",
                    forward)
    lines.append("}")
    # the bridge table exists only while some network needs it (icc=false)
    lines += [f"table bridge {name}", f"delete table bridge {name}"]
    if bridge_forward:
        lines.append(f"table bridge {name} {{")
        lines += _chain("forward", "type filter hook forward priority -200; policy accept;",
                        bridge_forward)
        lines.append("}")
    return "\n".join(lines) + "\n"


def _chain(chain: str, base: str | None, rules: list[str]) -> list[str]:
    out = [f"\tchain {chain} {{"]
    if base:
        out.append(f"\t\t{base}")
    out += [f"\t\t{rule}" for rule in rules]
    out.append("\t}")
    return out


# --- libnftables -----------------------------------------------------------------------------

_lib: ctypes.CDLL | None = None
_lib_lock = threading.Lock()


def _libnftables() -> ctypes.CDLL:
    global _lib
    with _lib_lock:
        if _lib is None:
            path = ctypes.util.find_library("nftables") or "libnftables.so.1"
            try:
                lib = ctypes.CDLL(path)
            except OSError as exc:
                raise SystemFault(f"libnftables is not available ({exc}); "
                                  "install the libnftables1 package") from exc
            lib.nft_ctx_new.restype = ctypes.c_void_p
            lib.nft_ctx_new.argtypes = [ctypes.c_uint32]
            lib.nft_ctx_free.argtypes = [ctypes.c_void_p]
            lib.nft_ctx_free.restype = None
            for fn in ("nft_ctx_buffer_output", "nft_ctx_buffer_error"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_int
            for fn in ("nft_ctx_get_output_buffer", "nft_ctx_get_error_buffer"):
                getattr(lib, fn).argtypes = [ctypes.c_void_p]
                getattr(lib, fn).restype = ctypes.c_char_p
            lib.nft_run_cmd_from_buffer.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
            lib.nft_run_cmd_from_buffer.restype = ctypes.c_int
            _lib = lib
        return _lib


def run(script: str) -> str:
    """Run an nft script in one transaction; its output. SystemFault with nft's message
    when the kernel or the parser refuses (then nothing of the script is applied)."""
    lib = _libnftables()
    ctx = lib.nft_ctx_new(0)
    if not ctx:
        raise SystemFault("libnftables: nft_ctx_new failed")
    try:
        lib.nft_ctx_buffer_output(ctx)
        lib.nft_ctx_buffer_error(ctx)
        code = lib.nft_run_cmd_from_buffer(ctx, script.encode())
        output = (lib.nft_ctx_get_output_buffer(ctx) or b"").decode(errors="replace")
        error = (lib.nft_ctx_get_error_buffer(ctx) or b"").decode(errors="replace")
    finally:
        lib.nft_ctx_free(ctx)
    if code != 0:
        raise SystemFault(f"nftables refused the ruleset: {error.strip() or 'error ' + str(code)}")
    return output


def br_netfilter_versions() -> frozenset[int]:
    """The IP versions whose bridged packets br_netfilter hands to the inet hooks in the
    calling thread's namespace (none when the module is not loaded)."""
    found = set()
    for version, key in ((4, "bridge-nf-call-iptables"), (6, "bridge-nf-call-ip6tables")):
        try:
            with open(f"/proc/sys/net/bridge/{key}") as f:
                if f.read().strip() == "1":
                    found.add(version)
        except OSError:
            pass
    return frozenset(found)


def apply(ruleset: Ruleset, name: str = DEFAULT_TABLE) -> None:
    """Replace our tables with ``ruleset``, atomically."""
    run(render(ruleset, name, br_netfilter=br_netfilter_versions()))


def remove(name: str = DEFAULT_TABLE) -> None:
    """Delete our tables (silent if they are gone)."""
    name = _table(name)
    run(f"table inet {name}\ndelete table inet {name}\n"
        f"table bridge {name}\ndelete table bridge {name}\n")


def listing(name: str = DEFAULT_TABLE) -> str:
    """``nft list table inet <name>``: for tests and diagnostics."""
    return run(f"list table inet {_table(name)}\n")
