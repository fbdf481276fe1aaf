"""IPv6 end to end, on an engine in a namespace of its own: dual-stack and IPv6-subnet
networks, containers' IPv6 addresses in inspect, TCP over IPv6 between containers by
name (AAAA from the embedded DNS), a published port reached over IPv6 from another
"host", and IPv6 leaving un-NATed (Docker 20.10's default: no IPv6 masquerade)."""

from __future__ import annotations

import json
import socket
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_networks import get, http_in, inspect, serve_http, until
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

NET = ["--ipv6", "--subnet", "10.215.20.0/24", "--subnet", "fd00:5a:20::/64"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbq-ipv6"), rootfs_template,
                        "--change", 'CMD ["sh"]', name="bb:1", netns=True) as daemon:
        daemon.docker("network", "create", *NET, "lbq6")
        yield daemon
        daemon.docker("rm", "-f", *daemon.docker("ps", "-aq").stdout.split(), check=False)
        daemon.docker("network", "rm", "lbq6", check=False)


@pytest.fixture
def web(engine: Longboatd) -> Iterator[dict[str, Any]]:
    serve_http(engine, "lbq-web6", "--network", "lbq6", "-p", "18086:80")
    yield inspect(engine, "lbq-web6")
    engine.docker("rm", "-f", "lbq-web6", check=False)


def test_containers_get_ipv6_addresses(engine: Longboatd, web: dict[str, Any]) -> None:
    settings = web["NetworkSettings"]["Networks"]["lbq6"]
    assert settings["GlobalIPv6Address"] == "fd00:5a:20::2"
    assert settings["GlobalIPv6PrefixLen"] == 64
    assert settings["IPv6Gateway"] == "fd00:5a:20::1"
    assert settings["IPAddress"] == "10.215.20.2" and settings["Gateway"] == "10.215.20.1"
    network = json.loads(engine.docker("network", "inspect", "lbq6").stdout)[0]
    assert network["EnableIPv6"] is True
    assert network["Containers"][web["Id"]]["IPv6Address"] == "fd00:5a:20::2/64"
    addresses = engine.docker("exec", "lbq-web6", "ip", "-6", "addr").stdout
    assert "fd00:5a:20::2/64" in addresses
    routes = engine.docker("exec", "lbq-web6", "ip", "-6", "route").stdout
    assert "default via fd00:5a:20::1" in routes
    # the published port shows for both IP versions, as Docker 20.10 shows it
    assert web["NetworkSettings"]["Ports"] == {"80/tcp": [
        {"HostIp": "0.0.0.0", "HostPort": "18086"}, {"HostIp": "::", "HostPort": "18086"}]}


def test_tcp_over_ipv6_between_containers_by_name(engine: Longboatd,
                                                  web: dict[str, Any]) -> None:
    # the embedded DNS answers AAAA with the IPv6 address, A with the IPv4 one
    out = engine.docker("run", "--rm", "--network", "lbq6", "bb:1", "nslookup",
                        "-type=aaaa", "lbq-web6").stdout
    assert "fd00:5a:20::2" in out and "10.215.20.2" not in out
    script = ("ip=$(nslookup -type=aaaa lbq-web6 | awk '/^Address: .*:/{a=$2} END{print a}');"
              " echo \"to $ip\"; printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 $ip 80")
    reply = until(lambda: engine.docker("run", "--rm", "--network", "lbq6", "bb:1", "sh",
                                        "-c", script, check=False).stdout,
                  what="GET over IPv6")
    assert reply.startswith("to fd00:5a:20::2\n") and reply.endswith("hello-lbq-web6\n")
    assert http_in(engine, "lbq6", "fd00:5a:20::2") == "hello-lbq-web6\n"


def test_an_ipv6_subnet_alone_gets_an_ipv4_pool_too(engine: Longboatd) -> None:
    engine.docker("network", "create", "--ipv6", "--subnet", "fd00:5a:21::/64", "lbq6b")
    try:
        config = json.loads(engine.docker("network", "inspect", "lbq6b").stdout)[0][
            "IPAM"]["Config"]
        assert len(config) == 2 and "Gateway" in config[0] and "." in config[0]["Subnet"]
        assert config[1] == {"Subnet": "fd00:5a:21::/64"}   # as given, as Docker shows it
        out = engine.docker("run", "--rm", "--network", "lbq6b", "bb:1", "ip",
                            "addr").stdout
        assert "fd00:5a:21::2/64" in out and "inet " in out
    finally:
        engine.docker("network", "rm", "lbq6b")


def _other_host(engine: Longboatd, path: str) -> None:
    """A second "host" joined to the engine's namespace by a veth: fd00:5a:ff::1 on the
    engine's side, fd00:5a:ff::2 on the other, which routes the container subnet back
    through the engine (IPv6 is not NATed)."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    from longboat.network import netns

    netns.create(path)
    nodad = 0x02

    def make() -> None:
        with IPRoute() as ipr, open(path) as ns:
            ipr.link("add", ifname="lbq6h0", kind="veth",
                     peer={"ifname": "lbq6h1", "net_ns_fd": ns.fileno()})
            index = ipr.link_lookup(ifname="lbq6h0")[0]
            ipr.addr("add", index=index, address="fd00:5a:ff::1", prefixlen=64,
                     flags=nodad)
            ipr.link("set", index=index, state="up")

    def other_side() -> None:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname="lbq6h1")[0]
            ipr.addr("add", index=index, address="fd00:5a:ff::2", prefixlen=64,
                     flags=nodad)
            ipr.link("set", index=index, state="up")
            ipr.route("add", dst="fd00:5a:20::/64", gateway="fd00:5a:ff::1")

    engine.in_netns(make)
    netns.run_in(path, other_side)


def test_published_port_over_ipv6_from_another_host_and_no_ipv6_nat(
        engine: Longboatd, web: dict[str, Any], tmp_path: Path) -> None:
    from longboat.network import links, netns

    other = str(tmp_path / "netns" / "lbq6-other")
    _other_host(engine, other)
    try:
        def from_other() -> str | None:
            return netns.run_in(other, lambda: get("http://[fd00:5a:ff::1]:18086/"))

        assert until(from_other, what="GET [host]:18086 over IPv6") == "hello-lbq-web6\n"
        # IPv4 still works to the same published port
        assert engine.in_netns(lambda: get("http://127.0.0.1:18086/")) == "hello-lbq-web6\n"
        # out of the container: the other host sees the container's own IPv6 address
        seen: list[str] = []
        server = netns.socket_in(other, socket.AF_INET6, socket.SOCK_STREAM)
        server.bind(("fd00:5a:ff::2", 18087))
        server.listen(4)

        def accept() -> None:
            conn, peer = server.accept()
            seen.append(peer[0])
            conn.sendall(b"seen\n")
            conn.close()

        thread = threading.Thread(target=accept, daemon=True)
        thread.start()
        try:
            out = until(lambda: engine.docker(
                "exec", "lbq-web6", "sh", "-c", "nc -w 3 fd00:5a:ff::2 18087 </dev/null",
                check=False).stdout, what="a connection out over IPv6")
            assert out == "seen\n"
            thread.join(5)
        finally:
            server.close()
        assert seen == ["fd00:5a:20::2"]
        listing = engine.run_in_netns(["nft", "list", "ruleset"]).stdout
        assert not [line for line in listing.splitlines() if "oifname !=" in line
                    and "ip6 saddr fd00:5a:20::/64" in line and "masquerade" in line]
        assert "ip saddr 10.215.20.0/24 masquerade" in listing     # IPv4 still is
    finally:
        engine.in_netns(lambda: links.delete_link("lbq6h0"))
        netns.remove(other)


def test_connect_with_addresses_on_a_stopped_container_is_checked_at_once(
        engine: Longboatd, web: dict[str, Any]) -> None:
    engine.docker("network", "create", "--subnet", "10.215.22.0/24", "lbq6c")
    engine.docker("create", "--name", "lbq-stopped", "--network", "lbq6c", "bb:1", "true")
    try:
        before = inspect(engine, "lbq-stopped")["NetworkSettings"]["Networks"]
        # lbq-web6's addresses as given (usually .2 and ::2; another when an earlier
        # test's lbq-web6 was still leaving the network as this one joined)
        held = web["NetworkSettings"]["Networks"]["lbq6"]
        for flags, message in (
                (["--ip", "10.99.0.5"], "10.99.0.5"),                    # outside
                (["--ip", held["IPAddress"]], "already in use"),         # lbq-web6's
                (["--ip", "10.215.20.1"], "already in use"),             # the gateway
                (["--ip6", "fd00:5a:99::5"], "fd00:5a:99::5"),           # outside
                (["--ip6", held["GlobalIPv6Address"]], "already in use"),  # lbq-web6's
                (["--ip", "10.215.20.300"], "10.215.20.300")):           # not an address
            refused = engine.docker("network", "connect", *flags, "lbq6", "lbq-stopped",
                                    check=False)
            assert refused.returncode != 0 and message in refused.stderr, (flags, refused)
            assert inspect(engine, "lbq-stopped")["NetworkSettings"]["Networks"] == before
        # no address of one's own on a network whose subnet the engine chose, as Docker
        engine.docker("network", "create", "lbq6auto")
        try:
            refused = engine.docker("network", "connect", "--ip", "172.30.0.9", "lbq6auto",
                                    "lbq-stopped", check=False)
            assert refused.returncode != 0 and "user configured subnets" in refused.stderr
        finally:
            engine.docker("network", "rm", "lbq6auto")
        engine.docker("network", "connect", "--ip", "10.215.20.77", "--ip6",
                      "fd00:5a:20::77", "lbq6", "lbq-stopped")
        asked = inspect(engine, "lbq-stopped")["NetworkSettings"]["Networks"]["lbq6"]
        assert asked["IPAMConfig"] == {"IPv4Address": "10.215.20.77",
                                       "IPv6Address": "fd00:5a:20::77"}
    finally:
        engine.docker("rm", "-f", "lbq-stopped", check=False)
        engine.docker("network", "rm", "lbq6c", check=False)


def test_an_ipv6_subnet_without_ipv6_enabled_is_not_used(engine: Longboatd) -> None:
    # Docker 20.10 takes the subnet and gives no IPv6 address from it
    engine.docker("network", "create", "--subnet", "fd00:5a:23::/64", "lbq6off")
    try:
        network = json.loads(engine.docker("network", "inspect", "lbq6off").stdout)[0]
        assert network["EnableIPv6"] is False
        assert network["IPAM"]["Config"][1] == {"Subnet": "fd00:5a:23::/64"}
        out = engine.docker("run", "--rm", "--network", "lbq6off", "bb:1", "sh", "-c",
                            "ip addr; ip -6 route").stdout
        assert "fd00:5a:23" not in out and "inet " in out
    finally:
        engine.docker("network", "rm", "lbq6off")


def test_ports_bound_to_one_ip_version(engine: Longboatd, tmp_path: Path) -> None:
    from longboat.network import links, netns

    other = str(tmp_path / "netns" / "lbq6-bound")
    serve_http(engine, "lbq-bound6", "--network", "lbq6", "-p", "[::]:18088:80", "-p",
               "0.0.0.0:18089:80")
    _other_host(engine, other)
    try:
        ports = inspect(engine, "lbq-bound6")["NetworkSettings"]["Ports"]
        assert ports == {"80/tcp": [{"HostIp": "::", "HostPort": "18088"},
                                    {"HostIp": "0.0.0.0", "HostPort": "18089"}]}

        def over(url: str) -> str | None:
            return netns.run_in(other, lambda: get(url))

        assert until(lambda: over("http://[fd00:5a:ff::1]:18088/"),
                     what="[::]:18088 over IPv6") == "hello-lbq-bound6\n"
        assert over("http://[fd00:5a:ff::1]:18089/") is None     # IPv4 only
        assert engine.in_netns(lambda: get("http://127.0.0.1:18089/")) == \
            "hello-lbq-bound6\n"
        assert engine.in_netns(lambda: get("http://127.0.0.1:18088/")) is None
    finally:
        engine.in_netns(lambda: links.delete_link("lbq6h0"))
        netns.remove(other)
        engine.docker("rm", "-f", "lbq-bound6", check=False)
