"""Container networking through the real docker CLI, with real TCP and UDP traffic, on
an engine that runs in a network namespace of its own (its "host"): names and aliases
on a user-defined network, published ports from the host's loopback and from another
host, isolation between networks, internal networks, macvlan, -P, connect/disconnect
on a running container, live restore, and bad input that changes nothing."""

from __future__ import annotations

import json
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

# A UDP echo server and client, for busybox has no UDP netcat. Static, numeric
# addresses only (no resolver in a static glibc).
UDP_ECHO_C = r"""
#include <arpa/inet.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>
int main(int argc, char **argv) {
    struct sockaddr_in a = {0}; char buf[512]; socklen_t n = sizeof a;
    int s = socket(AF_INET, SOCK_DGRAM, 0);
    a.sin_family = AF_INET;
    if (argc == 3 && !strcmp(argv[1], "serve")) {
        a.sin_port = htons(atoi(argv[2]));
        if (bind(s, (struct sockaddr *)&a, sizeof a)) { perror("bind"); return 1; }
        for (;;) {
            ssize_t r = recvfrom(s, buf + 5, sizeof buf - 5, 0, (struct sockaddr *)&a, &n);
            if (r < 0) continue;
            memcpy(buf, "echo:", 5);
            sendto(s, buf, r + 5, 0, (struct sockaddr *)&a, n);
            n = sizeof a;
        }
    }
    if (argc == 5 && !strcmp(argv[1], "send")) {
        struct timeval tv = {2, 0};
        setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        inet_pton(AF_INET, argv[2], &a.sin_addr); a.sin_port = htons(atoi(argv[3]));
        for (int i = 0; i < 5; i++) {
            sendto(s, argv[4], strlen(argv[4]), 0, (struct sockaddr *)&a, sizeof a);
            ssize_t r = recv(s, buf, sizeof buf - 1, 0);
            if (r > 0) { buf[r] = 0; puts(buf); return 0; }
        }
        return 2;
    }
    fputs("udpecho serve PORT | udpecho send IP PORT TEXT\n", stderr);
    return 64;
}
"""

HTTPD = "mkdir -p /www && echo {text} > /www/index.html && exec httpd -f -p {port} -h /www"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    work = tmp_path_factory.mktemp("lbe-networks")
    with busybox_engine(work, rootfs_template, "--change", 'CMD ["sh"]',
                        netns=True) as daemon:
        source = work / "udpecho.c"
        source.write_text(UDP_ECHO_C)
        binary = work / "udpecho"
        subprocess.run(["gcc", "-static", "-O2", "-o", str(binary), str(source)], check=True)
        tar = work / "bbx.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs_template, arcname=".")
            t.add(binary, arcname="bin/udpecho")
        daemon.docker("import", "--change", "EXPOSE 8080/tcp 5353/udp", str(tar), "bbx:1")
        yield daemon


def until(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def inspect(engine: Longboatd, *refs: str) -> Any:
    data = json.loads(engine.docker("inspect", *refs).stdout)
    return data[0] if len(refs) == 1 else data


def serve_http(engine: Longboatd, name: str, *args: str, text: str | None = None,
               port: int = 80, image: str = "bb:1") -> str:
    engine.docker("run", "-d", "--name", name, *args, image, "sh", "-c",
                  HTTPD.format(text=text or f"hello-{name}", port=port))
    until(lambda: inspect(engine, name)["State"]["Running"], what=f"{name} running")
    return name


def http_in(engine: Longboatd, network: str, host: str, port: int = 80, *extra: str,
            check: bool = True, timeout: int = 3) -> str:
    """GET / from a fresh container on ``network`` (busybox nc: our busybox's wget
    crashes in containers); the body, or "" when nothing answered. With ``check``,
    waits for an answer."""
    request = f"printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w {timeout} {host} {port}"

    def attempt() -> str:
        out = engine.docker("run", "--rm", "--network", network, *extra, "bb:1", "sh",
                            "-c", request, check=False).stdout
        head, _, body = out.partition("\r\n\r\n")
        return body if head.startswith("HTTP/1.") else ""

    if not check:
        return attempt()
    result: str = until(attempt, what=f"GET http://{host}:{port}/ from {network}")
    return result


def get(url: str) -> str | None:
    """The body at ``url``, or None (busybox wget crashes once connected, in and out of
    containers, so the host side uses Python)."""
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=3) as reply:
            return str(reply.read().decode())
    except OSError:
        return None


def host_get(engine: Longboatd, url: str) -> str:
    """GET from the engine's host (its namespace), waiting for an answer."""
    result: str = until(lambda: engine.in_netns(lambda: get(url)), what=f"GET {url}")
    return result


def udp_ask(engine: Longboatd, address: str, port: int, text: str) -> str:
    def ask() -> str:
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
            sock.settimeout(1)
            for _ in range(10):
                sock.sendto(text.encode(), (address, port))
                try:
                    return sock.recv(512).decode()
                except TimeoutError:
                    continue
        return ""

    result: str = engine.in_netns(ask)
    return result


@pytest.fixture
def cleanup(engine: Longboatd) -> Iterator[list[str]]:
    """Names of containers and networks (``net:NAME``) the test made, removed after."""
    made: list[str] = []
    yield made
    containers = [m for m in made if not m.startswith("net:")]
    if containers:
        engine.docker("rm", "-f", *containers, check=False)
    for m in reversed(made):
        if m.startswith("net:"):
            engine.docker("network", "rm", m[4:], check=False)


def test_names_aliases_and_short_ids_on_a_user_network(engine: Longboatd,
                                                       cleanup: list[str]) -> None:
    cleanup += ["net:lbe-a", "web-a"]
    engine.docker("network", "create", "--subnet", "10.210.0.0/24", "lbe-a")
    serve_http(engine, "web-a", "--network", "lbe-a", "--network-alias", "www")
    web = inspect(engine, "web-a")
    settings = web["NetworkSettings"]["Networks"]["lbe-a"]
    assert settings["IPAddress"].startswith("10.210.0.") and settings["IPPrefixLen"] == 24
    assert settings["Gateway"] == "10.210.0.1"
    assert settings["MacAddress"] == "02:42:" + ":".join(
        f"{int(b):02x}" for b in settings["IPAddress"].split("."))
    assert "www" in settings["Aliases"] and web["Id"][:12] in settings["Aliases"]
    for host in ("web-a", "www", web["Id"][:12], "web-a.lbe-a"):
        assert http_in(engine, "lbe-a", host) == "hello-web-a\n"
    # UDP: the embedded DNS answers at 127.0.0.11 with the container's address
    out = engine.docker("run", "--rm", "--network", "lbe-a", "bb:1", "sh", "-c",
                        "cat /etc/resolv.conf; nslookup www").stdout
    assert "nameserver 127.0.0.11" in out and f"Address: {settings['IPAddress']}" in out
    network = json.loads(engine.docker("network", "inspect", "lbe-a").stdout)[0]
    assert network["Containers"][web["Id"]]["IPv4Address"] == settings["IPAddress"] + "/24"
    # as given, without the gateway chosen (Docker 20.10's inspect; see the oracle test)
    assert network["IPAM"]["Config"] == [{"Subnet": "10.210.0.0/24"}]


def test_udp_between_containers_by_name(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["net:lbe-u", "echo-u"]
    engine.docker("network", "create", "--subnet", "10.211.0.0/24", "lbe-u")
    engine.docker("run", "-d", "--name", "echo-u", "--network", "lbe-u", "bbx:1",
                  "udpecho", "serve", "7000")
    script = ("ip=$(nslookup echo-u 127.0.0.11 | awk '/^Address: /{a=$2} END{print a}'); "
              "udpecho send $ip 7000 ping")
    out = until(lambda: engine.docker("run", "--rm", "--network", "lbe-u", "bbx:1", "sh",
                                      "-c", script, check=False).stdout, what="udp echo")
    assert out == "echo:ping\n"


def test_published_ports_from_the_hosts_loopback_tcp_and_udp(engine: Longboatd,
                                                             cleanup: list[str]) -> None:
    cleanup += ["pub-l", "pub-u"]
    serve_http(engine, "pub-l", "-p", "127.0.0.1:18080:80", "-p", "18081:80")
    assert host_get(engine, "http://127.0.0.1:18080/") == "hello-pub-l\n"
    assert host_get(engine, "http://127.0.0.1:18081/") == "hello-pub-l\n"
    ports = inspect(engine, "pub-l")["NetworkSettings"]["Ports"]
    assert ports == {"80/tcp": [{"HostIp": "127.0.0.1", "HostPort": "18080"},
                                {"HostIp": "0.0.0.0", "HostPort": "18081"}]}
    listed = engine.docker("ps", "--filter", "name=pub-l", "--format", "{{.Ports}}").stdout
    assert "127.0.0.1:18080->80/tcp" in listed and "0.0.0.0:18081->80/tcp" in listed
    engine.docker("run", "-d", "--name", "pub-u", "-p", "15353:5353/udp", "bbx:1",
                  "udpecho", "serve", "5353")
    assert until(lambda: udp_ask(engine, "127.0.0.1", 15353, "hi")) == "echo:hi"


def _veth_to_other_host(engine: Longboatd, other: str) -> None:
    """A second "host": a namespace joined to the engine's by a veth pair
    (10.250.0.1 on the engine's side, 10.250.0.2 on the other)."""
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    from longboat.network import netns

    netns.create(other)

    def make() -> None:
        with IPRoute() as ipr, open(other) as ns:
            ipr.link("add", ifname="lbeh0", kind="veth",
                     peer={"ifname": "lbeh1", "net_ns_fd": ns.fileno()})
            index = ipr.link_lookup(ifname="lbeh0")[0]
            ipr.addr("add", index=index, address="10.250.0.1", prefixlen=30)
            ipr.link("set", index=index, state="up")

    def other_side() -> None:
        with IPRoute() as ipr:
            index = ipr.link_lookup(ifname="lbeh1")[0]
            ipr.addr("add", index=index, address="10.250.0.2", prefixlen=30)
            ipr.link("set", index=index, state="up")

    engine.in_netns(make)
    netns.run_in(other, other_side)


def test_published_port_from_another_host_and_hairpin(engine: Longboatd,
                                                      cleanup: list[str],
                                                      tmp_path: Path) -> None:
    from longboat.network import netns

    cleanup += ["pub-o"]
    other = str(tmp_path / "netns" / "lbe-other")
    _veth_to_other_host(engine, other)
    try:
        serve_http(engine, "pub-o", "-p", "18082:80")

        def from_other() -> str | None:
            return netns.run_in(other, lambda: get("http://10.250.0.1:18082/"))

        assert until(from_other, what="GET from the other host") == "hello-pub-o\n"
        # hairpin: a container on the same bridge through the host's published port
        gateway = inspect(engine, "pub-o")["NetworkSettings"]["Gateway"]
        assert http_in(engine, "bridge", gateway, 18082) == \
            "hello-pub-o\n"
    finally:
        engine.in_netns(lambda: _delete_link("lbeh0"))
        netns.remove(other)


def _delete_link(name: str) -> None:
    from longboat.network import links

    links.delete_link(name)


def test_no_traffic_between_two_networks(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["net:lbe-b", "net:lbe-c", "web-b"]
    engine.docker("network", "create", "--subnet", "10.212.0.0/24", "lbe-b")
    engine.docker("network", "create", "--subnet", "10.213.0.0/24", "lbe-c")
    serve_http(engine, "web-b", "--network", "lbe-b")
    address = inspect(engine, "web-b")["NetworkSettings"]["Networks"]["lbe-b"]["IPAddress"]
    assert http_in(engine, "lbe-b", address) == "hello-web-b\n"
    assert http_in(engine, "lbe-c", address, check=False, timeout=2) == ""
    unknown = engine.docker("run", "--rm", "--network", "lbe-c", "bb:1", "nslookup",
                            "web-b", check=False)
    assert unknown.returncode != 0 or "10.212.0." not in unknown.stdout


def test_internal_network_has_no_way_out(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["net:lbe-int", "net:lbe-out", "web-int"]
    engine.docker("network", "create", "--internal", "--subnet", "10.214.0.0/24",
                  "lbe-int")
    engine.docker("network", "create", "--subnet", "10.215.0.0/24", "lbe-out")
    serve_http(engine, "web-int", "--network", "lbe-int")
    # inside it, containers reach each other
    assert http_in(engine, "lbe-int", "web-int") == "hello-web-int\n"
    # a server on the engine's host: reachable from an ordinary network, not from inside
    server = engine.in_netns(lambda: _listener(("0.0.0.0", 18090)))
    try:
        assert http_in(engine, "lbe-out", "10.215.0.1", 18090) == "out\n"
        # (its own gateway address is the host's, as in Docker: only forwarding is cut)
        assert http_in(engine, "lbe-int", "10.215.0.1", 18090, check=False,
                       timeout=2) == ""
    finally:
        server.close()
    route = engine.docker("run", "--rm", "--network", "lbe-int", "bb:1", "ip",
                          "route").stdout
    assert "default" not in route


class _Listener:
    """A tiny HTTP server in a thread: answers "out" to every connection."""

    def __init__(self, sock: socket.socket) -> None:
        import threading

        self.sock = sock
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            with conn:
                conn.recv(1024)
                conn.sendall(b"HTTP/1.0 200 OK\r\nContent-Length: 4\r\n\r\nout\n")

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()
        self.thread.join(5)


def _listener(address: tuple[str, int]) -> _Listener:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(address)
    sock.listen(8)
    return _Listener(sock)


def test_macvlan_bridge_and_private_modes(engine: Longboatd, cleanup: list[str]) -> None:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    def dummy(action: str) -> None:
        # the parent: one end of a veth pair in the engine's namespace
        with IPRoute() as ipr:
            if action == "add":
                ipr.link("add", ifname="lbemv0", kind="veth", peer={"ifname": "lbemv1"})
                for name in ("lbemv0", "lbemv1"):
                    ipr.link("set", index=ipr.link_lookup(ifname=name)[0], state="up")
            else:
                ipr.link("del", index=ipr.link_lookup(ifname="lbemv0")[0])

    engine.in_netns(lambda: dummy("add"))
    try:
        cleanup += ["net:lbe-mv", "mv-web"]
        engine.docker("network", "create", "-d", "macvlan", "--subnet", "10.216.0.0/24",
                      "-o", "parent=lbemv0", "lbe-mv")
        serve_http(engine, "mv-web", "--network", "lbe-mv")
        assert http_in(engine, "lbe-mv", "mv-web") == "hello-mv-web\n"
        assert _link_kind(inspect(engine, "mv-web")["NetworkSettings"]["SandboxKey"],
                          "eth0") == "macvlan"
        engine.docker("rm", "-f", "mv-web")
        engine.docker("network", "rm", "lbe-mv")
        cleanup += ["net:lbe-mvp", "mvp-web"]
        engine.docker("network", "create", "-d", "macvlan", "--subnet", "10.217.0.0/24",
                      "-o", "parent=lbemv0", "-o", "macvlan_mode=private", "lbe-mvp")
        serve_http(engine, "mvp-web", "--network", "lbe-mvp")
        address = inspect(engine, "mvp-web")["NetworkSettings"]["Networks"]["lbe-mvp"][
            "IPAddress"]
        assert http_in(engine, "lbe-mvp", address, check=False, timeout=2) == ""
        engine.docker("rm", "-f", "mvp-web")
        engine.docker("network", "rm", "lbe-mvp")
    finally:
        engine.in_netns(lambda: dummy("del"))


def _link_kind(netns_path: str, ifname: str) -> str:
    from pyroute2 import IPRoute  # type: ignore[import-untyped]

    from longboat.network import netns

    def kind() -> str:
        with IPRoute() as ipr:
            info = ipr.link("get", ifname=ifname)[0].get_attr("IFLA_LINKINFO")
            return str(info.get_attr("IFLA_INFO_KIND"))

    return netns.run_in(netns_path, kind)


def test_publish_all_exposed_ports(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["pub-all"]
    serve_http(engine, "pub-all", "-P", "--expose", "9090", port=8080, image="bbx:1")
    ports = inspect(engine, "pub-all")["NetworkSettings"]["Ports"]
    assert set(ports) == {"8080/tcp", "5353/udp", "9090/tcp"}   # the image's and --expose
    host_port = int(ports["8080/tcp"][0]["HostPort"])
    assert 49153 <= host_port <= 60999
    assert host_get(engine, f"http://127.0.0.1:{host_port}/") == "hello-pub-all\n"
    listed = engine.docker("port", "pub-all", "8080/tcp").stdout
    assert f":{host_port}" in listed


def test_connect_and_disconnect_a_running_container(engine: Longboatd,
                                                    cleanup: list[str]) -> None:
    cleanup += ["net:lbe-d", "net:lbe-e", "web-d"]
    engine.docker("network", "create", "--subnet", "10.218.0.0/24", "lbe-d")
    engine.docker("network", "create", "--subnet", "10.219.0.0/24", "lbe-e")
    serve_http(engine, "web-d", "--network", "lbe-d")
    engine.docker("network", "connect", "--alias", "later", "--ip", "10.219.0.50", "lbe-e",
                  "web-d")
    addresses = engine.docker("exec", "web-d", "ip", "-4", "addr").stdout
    assert "10.219.0.50/24" in addresses and "eth1" in addresses
    assert http_in(engine, "lbe-e", "later") == "hello-web-d\n"
    hosts = engine.docker("exec", "web-d", "cat", "/etc/hosts").stdout
    assert "web-d" in hosts or inspect(engine, "web-d")["Id"][:12] in hosts
    engine.docker("network", "disconnect", "lbe-e", "web-d")
    assert "10.219.0.50" not in engine.docker("exec", "web-d", "ip", "-4", "addr").stdout
    assert http_in(engine, "lbe-e", "10.219.0.50", check=False, timeout=2) == ""
    assert "lbe-e" not in inspect(engine, "web-d")["NetworkSettings"]["Networks"]
    assert http_in(engine, "lbe-d", "web-d") == "hello-web-d\n"
    # a stopped container: configuration only, used at its next start
    engine.docker("stop", "-t", "0", "web-d")
    engine.docker("network", "connect", "lbe-e", "web-d")
    engine.docker("start", "web-d")
    assert http_in(engine, "lbe-e", "web-d") == "hello-web-d\n"


def test_live_restore_keeps_networking(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["net:lbe-r", "web-r"]
    engine.docker("network", "create", "--subnet", "10.220.0.0/24", "lbe-r")
    serve_http(engine, "web-r", "--network", "lbe-r", "-p", "18083:80")
    before = inspect(engine, "web-r")["NetworkSettings"]
    assert host_get(engine, "http://127.0.0.1:18083/") == "hello-web-r\n"
    engine.stop(monitor=False)
    engine.start()
    after = inspect(engine, "web-r")["NetworkSettings"]
    assert after["Networks"]["lbe-r"]["IPAddress"] == \
        before["Networks"]["lbe-r"]["IPAddress"]
    assert after["Ports"] == before["Ports"]
    assert host_get(engine, "http://127.0.0.1:18083/") == "hello-web-r\n"
    assert http_in(engine, "lbe-r", "web-r") == "hello-web-r\n"


# -- bad input: a clear error, nothing changed ---------------------------------------------

def _networks(engine: Longboatd) -> str:
    return engine.docker("network", "ls", "--format", "{{.Name}} {{.Driver}}").stdout


def _containers(engine: Longboatd) -> str:
    return engine.docker("ps", "-a", "--format", "{{.Names}}").stdout


def test_overlapping_subnets_are_refused(engine: Longboatd, cleanup: list[str]) -> None:
    cleanup += ["net:lbe-o1", "net:lbe-o2"]
    engine.docker("network", "create", "--subnet", "10.230.0.0/24", "lbe-o1")
    before = _networks(engine)
    refused = engine.docker("network", "create", "--subnet", "10.230.0.128/25", "lbe-o2",
                            check=False)
    assert refused.returncode != 0 and "overlaps" in refused.stderr
    assert _networks(engine) == before


def test_unknown_driver_is_refused(engine: Longboatd) -> None:
    before = _networks(engine)
    refused = engine.docker("network", "create", "-d", "lbe-nosuch", "lbe-x", check=False)
    assert refused.returncode != 0 and "lbe-nosuch" in refused.stderr
    assert _networks(engine) == before


def test_addresses_outside_the_subnet_or_taken_are_refused(engine: Longboatd,
                                                           cleanup: list[str]) -> None:
    cleanup += ["net:lbe-ip", "ip-one"]
    engine.docker("network", "create", "--subnet", "10.231.0.0/24", "lbe-ip")
    engine.docker("run", "-d", "--name", "ip-one", "--network", "lbe-ip", "--ip",
                  "10.231.0.9", "bb:1", "sleep", "600")
    before = _containers(engine)
    outside = engine.docker("run", "-d", "--network", "lbe-ip", "--ip", "10.99.0.9",
                            "bb:1", "true", check=False)
    assert outside.returncode != 0 and "10.99.0.9" in outside.stderr
    taken = engine.docker("run", "-d", "--network", "lbe-ip", "--ip", "10.231.0.9",
                          "bb:1", "true", check=False)
    assert taken.returncode != 0 and "already in use" in taken.stderr
    assert _containers(engine) == before
    address = inspect(engine, "ip-one")["NetworkSettings"]["Networks"]["lbe-ip"]
    assert address["IPAddress"] == "10.231.0.9"


def test_a_host_port_published_twice_is_refused(engine: Longboatd,
                                                cleanup: list[str]) -> None:
    cleanup += ["port-one"]
    serve_http(engine, "port-one", "-p", "18084:80")
    before = _containers(engine)
    refused = engine.docker("run", "-d", "-p", "18084:80", "bb:1", "true", check=False)
    assert refused.returncode != 0 and "already allocated" in refused.stderr
    assert _containers(engine) == before
    assert host_get(engine, "http://127.0.0.1:18084/") == "hello-port-one\n"


def test_removing_a_network_with_endpoints_is_refused(engine: Longboatd,
                                                      cleanup: list[str]) -> None:
    cleanup += ["net:lbe-busy", "busy-web"]
    engine.docker("network", "create", "--subnet", "10.232.0.0/24", "lbe-busy")
    serve_http(engine, "busy-web", "--network", "lbe-busy")
    refused = engine.docker("network", "rm", "lbe-busy", check=False)
    assert refused.returncode != 0 and "active endpoints" in refused.stderr
    assert "lbe-busy" in _networks(engine)
    assert http_in(engine, "lbe-busy", "busy-web") == "hello-busy-web\n"
    refused = engine.docker("network", "rm", "bridge", check=False)
    assert refused.returncode != 0 and "pre-defined" in refused.stderr


def test_links_extra_hosts_and_a_shared_namespace(engine: Longboatd,
                                                  cleanup: list[str]) -> None:
    cleanup += ["net:lbe-l", "db-l", "app-l", "side-l"]
    engine.docker("network", "create", "--subnet", "10.221.0.0/24", "lbe-l")
    serve_http(engine, "db-l", "--network", "lbe-l")
    engine.docker("run", "-d", "--name", "app-l", "--network", "lbe-l", "--link",
                  "db-l:database", "--add-host", "extra.example:10.9.9.9", "--dns-search",
                  "lbe.example", "--hostname", "apphost", "bb:1", "sleep", "600")
    db = inspect(engine, "db-l")["NetworkSettings"]["Networks"]["lbe-l"]["IPAddress"]
    app = inspect(engine, "app-l")
    assert app["HostConfig"]["Links"] == ["/db-l:/app-l/database"]
    out = engine.docker("exec", "app-l", "nslookup", "database.").stdout  # no search
    assert f"Address: {db}" in out
    hosts = engine.docker("exec", "app-l", "cat", "/etc/hosts").stdout
    assert "10.9.9.9\textra.example" in hosts and "\tapphost" in hosts
    resolv = engine.docker("exec", "app-l", "cat", "/etc/resolv.conf").stdout
    assert "search lbe.example" in resolv and "nameserver 127.0.0.11" in resolv
    # container:X shares X's namespace: the same interfaces, X's server on localhost
    engine.docker("run", "-d", "--name", "side-l", "--network", "container:db-l", "bb:1",
                  "sleep", "600")
    request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 127.0.0.1 80"
    out = engine.docker("exec", "side-l", "sh", "-c", request).stdout
    assert out.endswith("hello-db-l\n")
    side = engine.docker("exec", "side-l", "ip", "-4", "addr").stdout
    assert f"{db}/24" in side
