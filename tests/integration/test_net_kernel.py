"""The kernel-facing network library against the real kernel, with real traffic.

Every test builds its own small world of network namespaces named ``lbk-<pid>-...``: a
scratch "host" namespace that holds the bridges, the nftables table and an uplink to a
namespace standing in for another host, and one namespace per "container". The test
process's own namespace is never touched; removing the namespaces removes every link,
address and rule in them. Subnets are from 10.201.0.0/16 (and fd00:201::/32).
"""

from __future__ import annotations

import itertools
import os
import socket
import threading
from collections.abc import Iterator

import pytest

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.network import links, netns, nftables

NETNS_DIR = "/run/netns"
_counter = itertools.count()


class Lab:
    """Network namespaces made for one test; all removed by ``close``."""

    def __init__(self) -> None:
        self.tag = f"lbk-{os.getpid()}-{next(_counter)}"
        self.paths: list[str] = []

    def ns(self, name: str) -> str:
        path = os.path.join(NETNS_DIR, f"{self.tag}-{name}")
        netns.create(path)
        self.paths.append(path)
        return path

    def close(self) -> None:
        for path in reversed(self.paths):
            netns.remove(path)


@pytest.fixture
def lab() -> Iterator[Lab]:
    made = Lab()
    try:
        yield made
    finally:
        made.close()


class Server:
    """A TCP or UDP server in a namespace that answers every connection or datagram with
    the address it came from, so a test sees what NAT did to the source."""

    def __init__(self, path: str, address: str, port: int, *,
                 proto: str = "tcp") -> None:
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
        self.proto = proto
        self.sock = netns.socket_in(path, family, kind)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, port))
        if proto == "tcp":
            self.sock.listen(16)
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                if self.proto == "tcp":
                    conn, peer = self.sock.accept()
                    with conn:
                        conn.settimeout(2)
                        conn.recv(64)
                        conn.sendall(peer[0].encode())
                else:
                    _data, peer = self.sock.recvfrom(64)
                    self.sock.sendto(peer[0].encode(), peer)
            except OSError:
                continue

    def close(self) -> None:
        self.stopping.set()
        self.thread.join()
        self.sock.close()


@pytest.fixture
def servers() -> Iterator[list[Server]]:
    made: list[Server] = []
    try:
        yield made
    finally:
        for server in made:
            server.close()


def ask(path: str, address: str, port: int, *, proto: str = "tcp",
        timeout: float = 3.0) -> str:
    """Connect from namespace ``path``; the server's answer: our address as it saw it."""
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    kind = socket.SOCK_STREAM if proto == "tcp" else socket.SOCK_DGRAM
    with netns.socket_in(path, family, kind) as sock:
        sock.settimeout(timeout)
        if proto == "tcp":
            sock.connect((address, port))
            sock.sendall(b"hello")
            return sock.recv(64).decode()
        sock.sendto(b"hello", (address, port))
        return sock.recvfrom(64)[0].decode()


def unreachable(path: str, address: str, port: int, *, proto: str = "tcp") -> bool:
    try:
        ask(path, address, port, proto=proto, timeout=0.5)
    except OSError:
        return True
    return False


# --- netns -------------------------------------------------------------------------------

def test_netns_create_run_in_and_remove(tmp_path: os.PathLike[str]) -> None:
    path = os.path.join(str(tmp_path), "nsdir", "one")
    ours = os.stat("/proc/thread-self/ns/net").st_ino
    netns.create(path)
    try:
        assert netns.is_namespace(path)
        inside = netns.run_in(path, netns.current_inode)
        assert inside == os.stat(path).st_ino != ours
        assert os.stat("/proc/thread-self/ns/net").st_ino == ours   # we never moved
        with pytest.raises(Conflict):
            netns.create(path)
        server = Server(path, "127.0.0.1", 7000)   # lo is up in there
        try:
            assert ask(path, "127.0.0.1", 7000) == "127.0.0.1"
        finally:
            server.close()
    finally:
        netns.remove(path)
    netns.remove(path)   # silent when gone
    assert not os.path.exists(path)
    with open("/proc/self/mountinfo") as f:
        mounts = f.read()
    assert os.path.join(str(tmp_path), "nsdir") not in mounts
    with pytest.raises(NotFound):
        netns.run_in(path, lambda: None)


def test_concurrent_create_and_remove_in_one_directory(tmp_path: os.PathLike[str]) -> None:
    directory = os.path.join(str(tmp_path), "busy")
    failures: list[BaseException] = []

    def churn(worker: int) -> None:
        try:
            for round_ in range(5):
                path = os.path.join(directory, f"ns{worker}-{round_}")
                netns.create(path)
                assert netns.run_in(path, netns.current_inode) == os.stat(path).st_ino
                netns.remove(path)
        except BaseException as exc:
            failures.append(exc)

    workers = [threading.Thread(target=churn, args=(i,)) for i in range(6)]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert failures == []
    with open("/proc/self/mountinfo") as f:
        assert directory not in f.read()
    assert os.listdir(directory) == []


def test_run_in_passes_errors_and_results(lab: Lab) -> None:
    path = lab.ns("a")
    assert netns.run_in(path, lambda: 42) == 42
    with pytest.raises(ZeroDivisionError):
        netns.run_in(path, lambda: 1 // 0)


# --- links: bridge and veth --------------------------------------------------------------

def _bridge_with_two(lab: Lab) -> tuple[str, str, str]:
    host, a, b = lab.ns("host"), lab.ns("a"), lab.ns("b")

    def plumb() -> None:
        links.ensure_bridge("lbkbr0", ["10.201.1.1/24", "fd00:201:1::1/64"])
        for name, path, last in (("lbkva", a, 2), ("lbkvb", b, 3)):
            links.attach_veth("lbkbr0", name, path, ifname="eth0",
                              mac=links.mac_for(f"10.201.1.{last}"),
                              addresses=[f"10.201.1.{last}/24", f"fd00:201:1::{last}/64"],
                              gateways=["10.201.1.1", "fd00:201:1::1"])

    netns.run_in(host, plumb)
    return host, a, b


def test_veth_pair_on_a_bridge_carries_ipv4_and_ipv6(lab: Lab, servers: list[Server]) -> None:
    host, a, b = _bridge_with_two(lab)
    servers.append(Server(b, "::", 8000))
    servers.append(Server(b, "0.0.0.0", 8001, proto="udp"))
    assert ask(a, "10.201.1.3", 8000) == "::ffff:10.201.1.2"
    assert ask(a, "fd00:201:1::3", 8000) == "fd00:201:1::2"   # no DAD wait
    assert ask(a, "10.201.1.3", 8001, proto="udp") == "10.201.1.2"
    # the host reaches both through the bridge's own addresses
    assert ask(host, "10.201.1.3", 8000) == "::ffff:10.201.1.1"

    addresses, mac = netns.run_in(a, lambda: (links.addresses_of("eth0"), _mac("eth0")))
    assert addresses == ["10.201.1.2/24", "fd00:201:1::2/64"]
    assert mac == "02:42:0a:c9:01:02"

    def host_side() -> tuple[str, str, str, list[str]]:
        return (links.read_sysctl("ipv4/ip_forward"),
                links.read_sysctl("ipv6/conf/all/forwarding"),
                links.read_sysctl("ipv4/conf/lbkbr0/route_localnet"), links.host_networks())

    assert netns.run_in(host, host_side) == ("1", "1", "1",
                                             ["10.201.1.0/24", "fd00:201:1::/64"])


def _mac(ifname: str) -> str:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]
    with IPRoute(groups=0) as ipr:
        return str(ipr.link("get", ifname=ifname)[0].get_attr("IFLA_ADDRESS"))


def _link_info(ifname: str) -> tuple[int, int | None]:
    """(MTU, bridge port hairpin mode or None) of a link."""
    from pyroute2 import IPRoute
    with IPRoute(groups=0) as ipr:
        link = ipr.link("get", ifname=ifname)[0]
        mtu = int(link.get_attr("IFLA_MTU"))
        for port in ipr.brport("dump"):
            if port["index"] == link["index"]:
                return mtu, int(port.get_nested("IFLA_PROTINFO", "IFLA_BRPORT_MODE"))
        return mtu, None


def test_veth_mtu_and_hairpin(lab: Lab) -> None:
    host, a = lab.ns("host"), lab.ns("a")

    def plumb() -> tuple[int, int | None]:
        links.ensure_bridge("lbkbr5", ["10.201.5.1/24"], mtu=1400)
        links.attach_veth("lbkbr5", "lbkv5", a, ifname="eth1", mac="", mtu=1400,
                          addresses=["10.201.5.2/24"], gateways=[])
        return _link_info("lbkv5")

    assert netns.run_in(host, plumb) == (1400, 1)
    assert netns.run_in(a, lambda: _link_info("eth1")) == (1400, None)


def test_create_reuses_a_stale_file(tmp_path: os.PathLike[str]) -> None:
    keeper = os.path.join(str(tmp_path), "ns", "keeper")
    path = os.path.join(str(tmp_path), "ns", "stale")
    netns.create(keeper)           # the directory is a mount point from here on
    try:
        with open(path, "w"):
            pass                   # what a crash between create and mount leaves
        assert not netns.is_namespace(path)
        netns.create(path)
        assert netns.is_namespace(path)
        netns.remove(path)
        assert not os.path.exists(path)
    finally:
        netns.remove(keeper)
    assert os.listdir(os.path.dirname(path)) == []


def test_detach_removes_both_ends_and_is_idempotent(lab: Lab) -> None:
    host, a, _b = _bridge_with_two(lab)
    links.detach(a, "eth0")
    links.detach(a, "eth0")
    assert not netns.run_in(a, lambda: links.link_exists("eth0"))
    assert not netns.run_in(host, lambda: links.link_exists("lbkva"))
    assert netns.run_in(host, lambda: links.link_exists("lbkvb"))
    netns.run_in(host, lambda: links.delete_link("lbkbr0"))
    netns.run_in(host, lambda: links.delete_link("lbkbr0"))
    assert not netns.run_in(host, lambda: links.link_exists("lbkbr0"))


def test_ensure_bridge_adopts_and_replaces_addresses(lab: Lab) -> None:
    host = lab.ns("host")

    def work() -> list[str]:
        # a new namespace may inherit ip_forward=1 from the host's (devconf_inherit_init_net)
        with open("/proc/sys/net/ipv4/ip_forward", "w") as f:
            f.write("0")
        links.ensure_bridge("lbkbr1", ["10.201.2.1/24"], forwarding=False)
        links.ensure_bridge("lbkbr1", ["10.201.3.1/24"], mtu=1400, forwarding=False)
        return links.addresses_of("lbkbr1")

    assert netns.run_in(host, work) == ["10.201.3.1/24"]
    assert netns.run_in(host, lambda: links.read_sysctl("ipv4/ip_forward")) == "0"


def test_bad_input_changes_nothing(lab: Lab) -> None:
    host, a = lab.ns("host"), lab.ns("a")

    def work() -> None:
        links.ensure_bridge("lbkbr2", ["10.201.4.1/24"])
        with pytest.raises(InvalidArgument):
            links.attach_veth("lbkbr2", "lbkv-bad", a, ifname="eth0", mac="zz",
                              addresses=["10.201.4.2/24"], gateways=[])
        with pytest.raises(InvalidArgument):
            links.attach_veth("lbkbr2", "lbkv-bad", a, ifname="eth0", mac="",
                              addresses=["10.201.4.2"], gateways=[])
        with pytest.raises(InvalidArgument):
            links.attach_veth("lbkbr2", "lbkv-name-too-long", a, ifname="eth0", mac="",
                              addresses=[], gateways=[])
        with pytest.raises(NotFound):
            links.attach_veth("lbknobridge", "lbkv-bad", a, ifname="eth0", mac="",
                              addresses=[], gateways=[])
        with pytest.raises(Conflict):
            links.ensure_bridge("lo", [])
        assert not links.link_exists("lbkv-bad")
        # a failure inside the namespace (an unreachable gateway) leaves no veth behind
        with pytest.raises(Exception):   # noqa: B017 - the kernel's refusal, as SystemFault
            links.attach_veth("lbkbr2", "lbkv-bad", a, ifname="eth0", mac="",
                              addresses=["10.201.4.2/24"], gateways=["10.201.99.1"])
        assert not links.link_exists("lbkv-bad")

    netns.run_in(host, work)
    assert not netns.run_in(a, lambda: links.link_exists("eth0"))


def test_mac_for_is_dockers_scheme() -> None:
    assert links.mac_for("172.17.0.2") == "02:42:ac:11:00:02"
    with pytest.raises(InvalidArgument):
        links.mac_for("fd00::1")


# --- nftables: NAT and isolation with real traffic ------------------------------------------

TABLE = "lbktest"


class World:
    """A scratch host with an uplink to another host, and containers on four bridges:

    - lbkbr0 10.201.1.0/24 + fd00:201:1::/64: a (.2) and b (.3)
    - lbkbr1 10.201.2.0/24: c (.2)
    - lbkbr2 10.201.3.0/24, internal: d (.2), still given a default route
    - lbkbr3 10.201.4.0/24, icc=false: e (.2) and f (.3)
    - lbkup 10.201.250.1/24 + fd00:201:250::1/64 to "other" (.2, ::2)
    """

    NETWORKS = [
        nftables.BridgeNetwork("lbkbr0", ("10.201.1.0/24", "fd00:201:1::/64")),
        nftables.BridgeNetwork("lbkbr1", ("10.201.2.0/24",)),
        nftables.BridgeNetwork("lbkbr2", ("10.201.3.0/24",), internal=True),
        nftables.BridgeNetwork("lbkbr3", ("10.201.4.0/24",), icc=False),
    ]
    PORTS = [
        nftables.PublishedPort("tcp", "", 8080, "10.201.1.2", 80, "lbkbr0"),
        nftables.PublishedPort("udp", "", 8053, "10.201.1.2", 53, "lbkbr0"),
        nftables.PublishedPort("tcp", "10.201.250.1", 8081, "10.201.1.2", 80, "lbkbr0"),
        nftables.PublishedPort("tcp", "", 8080, "fd00:201:1::2", 80, "lbkbr0"),
        nftables.PublishedPort("tcp", "", 8082, "10.201.4.3", 80, "lbkbr3"),
    ]

    def __init__(self, lab: Lab) -> None:
        self.host = lab.ns("host")
        self.other = lab.ns("other")
        self.c = {name: lab.ns(name) for name in "abcdef"}
        netns.run_in(self.host, self._plumb)

    def _plumb(self) -> None:
        links.veth_pair("lbkup", self.other, host_addresses=["10.201.250.1/24",
                                                             "fd00:201:250::1/64"],
                        ifname="eth0", mac="", addresses=["10.201.250.2/24",
                                                          "fd00:201:250::2/64"],
                        gateways=["10.201.250.1", "fd00:201:250::1"])
        plan = {"lbkbr0": "ab", "lbkbr1": "c", "lbkbr2": "d", "lbkbr3": "ef"}
        for number, network in enumerate(self.NETWORKS):
            third = number + 1
            v6 = ["fd00:201:1::1/64"] if network.ifname == "lbkbr0" else []
            links.ensure_bridge(network.ifname, [f"10.201.{third}.1/24", *v6])
            for last, name in enumerate(plan[network.ifname], start=2):
                addresses = [f"10.201.{third}.{last}/24"]
                gateways = [f"10.201.{third}.1"]
                if v6:
                    addresses.append(f"fd00:201:1::{last}/64")
                    gateways.append("fd00:201:1::1")
                links.attach_veth(network.ifname, f"lbkv{name}", self.c[name], ifname="eth0",
                                  mac=links.mac_for(addresses[0].split("/")[0]),
                                  addresses=addresses, gateways=gateways)

    def br_netfilter(self, on: bool) -> None:
        """Whether bridged IPv4/IPv6 traffic passes the inet hooks in the host namespace."""
        def write() -> None:
            for key in ("bridge-nf-call-iptables", "bridge-nf-call-ip6tables"):
                path = f"/proc/sys/net/bridge/{key}"
                if not os.path.exists(path):
                    if on:
                        pytest.skip("br_netfilter is not loaded")
                    return
                with open(path, "w") as f:
                    f.write("1" if on else "0")
        netns.run_in(self.host, write)

    def apply(self, ports: list[nftables.PublishedPort] | None = None) -> None:
        ruleset = nftables.Ruleset(self.NETWORKS, self.PORTS if ports is None else ports)
        netns.run_in(self.host, lambda: nftables.apply(ruleset, TABLE))


@pytest.fixture
def world(lab: Lab, servers: list[Server]) -> World:
    made = World(lab)
    for name in "abcdef":
        servers.append(Server(made.c[name], "::", 80))
    servers.append(Server(made.c["a"], "0.0.0.0", 53, proto="udp"))
    servers.append(Server(made.other, "::", 9000))
    return made


def test_masquerade_out_of_a_bridge(world: World) -> None:
    world.apply()
    assert ask(world.c["a"], "10.201.250.2", 9000) == "::ffff:10.201.250.1"
    # IPv6 leaves unmasqueraded, as from Docker 20.10 (it NATs IPv6 only with the
    # experimental ip6tables option): the other host sees the container's own address
    assert ask(world.c["a"], "fd00:201:250::2", 9000) == "fd00:201:1::2"
    assert ask(world.c["c"], "10.201.250.2", 9000) == "::ffff:10.201.250.1"


def test_published_ports_from_another_host(world: World) -> None:
    assert unreachable(world.other, "10.201.250.1", 8080)    # nothing before the rules
    world.apply()
    # the container sees the real client address (no source NAT from outside)
    assert ask(world.other, "10.201.250.1", 8080) == "::ffff:10.201.250.2"
    assert ask(world.other, "10.201.250.1", 8053, proto="udp") == "10.201.250.2"
    assert ask(world.other, "10.201.250.1", 8081) == "::ffff:10.201.250.2"
    assert ask(world.other, "fd00:201:250::1", 8080) == "fd00:201:250::2"
    # the host's address on a bridge is a local address too
    assert ask(world.other, "10.201.1.1", 8080) == "::ffff:10.201.250.2"
    # but unpublished container ports are not reachable by routing
    assert unreachable(world.other, "10.201.1.2", 80)


def test_published_ports_from_the_host_itself(world: World) -> None:
    world.apply()
    assert ask(world.host, "127.0.0.1", 8080) == "::ffff:10.201.1.1"
    assert ask(world.host, "127.0.0.1", 8053, proto="udp") == "10.201.1.1"
    assert ask(world.host, "10.201.250.1", 8080) == "::ffff:10.201.250.1"
    # 8081 is bound to 10.201.250.1 only
    assert ask(world.host, "10.201.250.1", 8081) == "::ffff:10.201.250.1"
    assert unreachable(world.host, "127.0.0.1", 8081)


@pytest.mark.parametrize("br_netfilter", [True, False], ids=["br_netfilter", "no-br_netfilter"])
def test_hairpin_from_the_same_bridge(world: World, br_netfilter: bool) -> None:
    world.br_netfilter(br_netfilter)
    world.apply()
    # b and a itself reach a's published port through the host's addresses
    assert ask(world.c["b"], "10.201.1.1", 8080) == "::ffff:10.201.1.1"
    assert ask(world.c["b"], "10.201.250.1", 8080) == "::ffff:10.201.1.1"
    assert ask(world.c["a"], "10.201.250.1", 8080) == "::ffff:10.201.1.1"
    assert ask(world.c["b"], "10.201.1.1", 8053, proto="udp") == "10.201.1.1"


@pytest.mark.parametrize("br_netfilter", [True, False], ids=["br_netfilter", "no-br_netfilter"])
def test_isolation_between_bridges(world: World, br_netfilter: bool) -> None:
    world.br_netfilter(br_netfilter)
    assert ask(world.c["a"], "10.201.2.2", 80) == "::ffff:10.201.1.2"   # routed, before
    world.apply()
    assert unreachable(world.c["a"], "10.201.2.2", 80)
    assert unreachable(world.c["c"], "10.201.1.2", 80)
    # same bridge: direct traffic flows
    assert ask(world.c["a"], "10.201.1.3", 80) == "::ffff:10.201.1.2"
    # a published port stays reachable from another bridge, through the host's address
    assert ask(world.c["c"], "10.201.250.1", 8080) == "::ffff:10.201.1.1"


def test_internal_network_has_no_way_out(world: World) -> None:
    assert ask(world.c["d"], "10.201.250.2", 9000) == "::ffff:10.201.3.2"   # before
    world.apply()
    d = world.c["d"]
    assert unreachable(d, "10.201.250.2", 9000)
    assert unreachable(d, "10.201.1.2", 80)
    assert unreachable(d, "10.201.250.1", 8080)
    assert unreachable(world.other, "10.201.3.2", 80)
    assert unreachable(world.c["a"], "10.201.3.2", 80)


@pytest.mark.parametrize("br_netfilter", [True, False], ids=["br_netfilter", "no-br_netfilter"])
def test_icc_false_keeps_containers_apart(world: World, br_netfilter: bool) -> None:
    world.br_netfilter(br_netfilter)
    assert ask(world.c["e"], "10.201.4.3", 80) == "::ffff:10.201.4.2"   # before
    world.apply()
    assert unreachable(world.c["e"], "10.201.4.3", 80)
    assert unreachable(world.c["f"], "10.201.4.2", 80)
    # the way out and the host stay open; a published port of the network still works
    assert ask(world.c["e"], "10.201.250.2", 9000) == "::ffff:10.201.250.1"
    assert ask(world.c["e"], "10.201.4.1", 8082) == "::ffff:10.201.4.1"
    assert ask(world.other, "10.201.250.1", 8082) == "::ffff:10.201.250.2"


def test_reapply_replaces_and_remove_deletes(world: World) -> None:
    world.apply()
    assert ask(world.other, "10.201.250.1", 8080) == "::ffff:10.201.250.2"
    world.apply(ports=[])
    assert unreachable(world.other, "10.201.250.1", 8080)
    listing = netns.run_in(world.host, lambda: nftables.listing(TABLE))
    assert "dnat ip" not in listing and "masquerade" in listing
    netns.run_in(world.host, lambda: nftables.remove(TABLE))
    netns.run_in(world.host, lambda: nftables.remove(TABLE))
    assert netns.run_in(world.host, lambda: nftables.run("list ruleset")).strip() == ""
    assert ask(world.c["a"], "10.201.2.2", 80) == "::ffff:10.201.1.2"   # isolation gone


def test_a_refused_ruleset_changes_nothing(world: World) -> None:
    world.apply()
    before = netns.run_in(world.host, lambda: nftables.listing(TABLE))
    bad = nftables.Ruleset(world.NETWORKS, [nftables.PublishedPort(
        "tcp", "", 8080, "10.201.1.2", 80, "lbknothere")])
    with pytest.raises(InvalidArgument):
        netns.run_in(world.host, lambda: nftables.apply(bad, TABLE))
    # a script the kernel refuses half way leaves the old table whole
    with pytest.raises(SystemFault):
        netns.run_in(world.host, lambda: nftables.run(
            f"delete table inet {TABLE}\nadd rule inet {TABLE} nochain accept\n"))
    assert netns.run_in(world.host, lambda: nftables.listing(TABLE)) == before
    assert ask(world.other, "10.201.250.1", 8080) == "::ffff:10.201.250.2"


# --- macvlan ---------------------------------------------------------------------------------

def _parent(name: str) -> None:
    """A parent link for macvlan: one end of a veth pair, both ends up (this kernel may
    have no dummy driver)."""
    from pyroute2 import IPRoute
    with IPRoute(groups=0) as ipr:
        ipr.link("add", ifname=name, kind="veth", peer=name + "p")
        for end in (name, name + "p"):
            ipr.link("set", index=ipr.link_lookup(ifname=end)[0], state="up")


@pytest.mark.parametrize("mode, talk", [("bridge", True), ("private", False)])
def test_macvlan_children_of_one_parent(lab: Lab, servers: list[Server], mode: str,
                                        talk: bool) -> None:
    host, m1, m2 = lab.ns("host"), lab.ns("m1"), lab.ns("m2")

    def plumb() -> None:
        _parent("lbkpar0")
        for path, last in ((m1, 2), (m2, 3)):
            links.attach_macvlan("lbkpar0", mode, path, ifname="eth0",
                                 mac=links.mac_for(f"10.201.40.{last}"),
                                 addresses=[f"10.201.40.{last}/24", f"fd00:201:40::{last}/64"],
                                 gateways=["10.201.40.1"])

    netns.run_in(host, plumb)
    servers.append(Server(m2, "::", 80))
    if talk:
        assert ask(m1, "10.201.40.3", 80) == "::ffff:10.201.40.2"
        assert ask(m1, "fd00:201:40::3", 80) == "fd00:201:40::2"
    else:
        assert unreachable(m1, "10.201.40.3", 80)
    assert netns.run_in(m1, lambda: _mac("eth0")) == "02:42:0a:c9:28:02"
    links.detach(m1, "eth0")
    assert not netns.run_in(m1, lambda: links.link_exists("eth0"))


def test_macvlan_bad_input(lab: Lab) -> None:
    host, m1 = lab.ns("host"), lab.ns("m1")

    def work() -> None:
        with pytest.raises(InvalidArgument):
            links.attach_macvlan("lo", "passthrough!", m1, ifname="eth0", mac="",
                                 addresses=[], gateways=[])
        with pytest.raises(NotFound):
            links.attach_macvlan("lbknoparent", "bridge", m1, ifname="eth0", mac="",
                                 addresses=[], gateways=[])

    netns.run_in(host, work)
    assert not netns.run_in(m1, lambda: links.link_exists("eth0"))
