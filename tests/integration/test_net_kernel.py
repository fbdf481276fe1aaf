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

from longboat.errors import Conflict, InvalidArgument, NotFound
from longboat.network import links, netns

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
        ask(path, address, port, proto=proto, timeout=1.0)
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

    def inside() -> tuple[list[str], str, str]:
        return (links.addresses_of("eth0"), links.read_sysctl("ipv4/ip_forward"),
                _mac("eth0"))

    addresses, forward, mac = netns.run_in(a, inside)
    assert addresses == ["10.201.1.2/24", "fd00:201:1::2/64"]
    assert forward == "0"
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
