"""The network API and CLI against a real engine (in a network namespace of its own):
``longboat network ...`` prints what the docker CLI prints on the same daemon, docker-py
drives the endpoints, ``port`` and ``ps`` show published ports as docker does, and the
embedded DNS forwards what is not ours to the container's ``--dns`` server (a fake one on
the engine's loopback) while answering a known name without IPv6 with NOERROR."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.cli import CLI
from tests.support.engine import Longboatd, busybox_engine

from longboat.network import dns_wire as wire

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    work = tmp_path_factory.mktemp("lbn-api")
    with busybox_engine(work, rootfs_template, "--change", 'CMD ["sh"]',
                        netns=True) as daemon:
        yield daemon


@pytest.fixture
def cli(engine: Longboatd) -> CLI:
    return CLI(engine)


@pytest.fixture
def cleanup(engine: Longboatd) -> Iterator[list[str]]:
    """Containers and networks (``net:NAME``) a test made, removed after it."""
    made: list[str] = []
    yield made
    containers = [m for m in made if not m.startswith("net:")]
    if containers:
        engine.docker("rm", "-f", *containers, check=False)
    for m in reversed(made):
        if m.startswith("net:"):
            engine.docker("network", "rm", m[4:], check=False)


def until(check: Callable[[], Any], timeout: float = 15, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.1)


def test_network_commands_print_what_docker_prints(engine: Longboatd, cli: CLI,
                                                   cleanup: list[str]) -> None:
    cleanup += ["net:lbn-one", "net:lbn-two", "net:lbn-10"]
    made = cli("network", "create", "--subnet", "10.220.0.0/24", "--gateway", "10.220.0.254",
               "--ip-range", "10.220.0.128/25", "--aux-address", "router=10.220.0.130",
               "--label", "team=net", "-o", "com.docker.network.bridge.name=lbn-one0",
               "lbn-one")
    assert len(made.stdout.strip()) == 64
    engine.docker("network", "create", "--internal", "--subnet", "10.221.0.0/24",
                  "lbn-two")
    cli("network", "create", "--ipv6", "--subnet", "10.222.0.0/24", "--subnet",
        "fd22::/64", "lbn-10")
    for args in (["network", "ls"], ["network", "ls", "--no-trunc"],
                 ["network", "ls", "-q", "-f", "driver=bridge"],
                 ["network", "ls", "-f", "label=team=net"],
                 ["network", "ls", "-f", "type=custom", "--format", "{{.Name}} {{.IPv6}}"],
                 ["network", "inspect", "lbn-one", "lbn-two"],
                 ["network", "inspect", "-f", "{{.Name}} {{.Driver}} {{.Internal}}",
                  "lbn-one", "lbn-two"],
                 ["network", "inspect", "lbn-10", "no-such-net"]):
        cli.same_as_docker(*args)
    for ref in ("host", "no-such-net"):
        # docker 28's CLI adds an "exit status 1" line of its own after the daemon's
        ours, theirs = cli("network", "rm", ref, check=False), engine.docker(
            "network", "rm", ref, check=False)
        assert (ours.returncode, ours.stdout) == (theirs.returncode, theirs.stdout) == (1, "")
        assert theirs.stderr.startswith(ours.stderr) and ours.stderr.startswith("Error")
    shown = json.loads(cli("network", "inspect", "lbn-one").stdout)[0]
    assert shown["IPAM"]["Config"] == [{"Subnet": "10.220.0.0/24", "IPRange": "10.220.0.128/25",
                                        "Gateway": "10.220.0.254",
                                        "AuxiliaryAddresses": {"router": "10.220.0.130"}}]
    assert shown["Labels"] == {"team": "net"}
    taken = cli("network", "create", "lbn-one", check=False)
    assert taken.returncode == 1 and "already exists" in taken.stderr


def test_docker_py_creates_connects_and_prunes(engine: Longboatd,
                                               cleanup: list[str]) -> None:
    import docker  # type: ignore[import-untyped]

    cleanup += ["lbn-py-c", "net:lbn-py", "net:lbn-py-keep"]
    client = docker.DockerClient(base_url=engine.host, version="1.41")
    try:
        ipam = docker.types.IPAMConfig(pool_configs=[
            docker.types.IPAMPool(subnet="10.223.0.0/24", gateway="10.223.0.1")])
        net = client.networks.create("lbn-py", driver="bridge", ipam=ipam,
                                     labels={"prune": "yes"})
        client.networks.create("lbn-py-keep", labels={"prune": "no"})
        container = client.containers.run("bb:1", "sleep 30", name="lbn-py-c", detach=True)
        net.connect(container, aliases=["pyalias"], ipv4_address="10.223.0.50")
        net.reload()
        assert net.attrs["Containers"][container.id]["IPv4Address"] == "10.223.0.50/24"
        endpoint = client.api.inspect_container("lbn-py-c")["NetworkSettings"]["Networks"][
            "lbn-py"]
        assert "pyalias" in endpoint["Aliases"]
        assert endpoint["IPAMConfig"]["IPv4Address"] == "10.223.0.50"
        with pytest.raises(docker.errors.APIError) as refused:
            net.remove()
        assert refused.value.status_code in (403, 409)
        net.disconnect(container)
        net.reload()
        assert net.attrs["Containers"] == {}
        assert {n.name for n in client.networks.list(filters={"label": "prune"})} == {
            "lbn-py", "lbn-py-keep"}
        pruned = client.networks.prune(filters={"label": "prune=yes"})
        assert pruned["NetworksDeleted"] == ["lbn-py"]
        assert [n.name for n in client.networks.list(names=["lbn-py-keep"])] == [
            "lbn-py-keep"]
        with pytest.raises(docker.errors.NotFound):
            client.networks.get("lbn-py")
    finally:
        client.close()


def test_ports_in_ps_and_port_as_docker_prints_them(engine: Longboatd, cli: CLI,
                                                    cleanup: list[str]) -> None:
    cleanup += ["lbn-ports", "lbn-plain"]
    cli("run", "-d", "--name", "lbn-ports", "-p", "127.0.0.1:18080:80",
        "-p", "18081:81/udp", "-p", "127.0.0.1::82", "--expose", "90-91", "bb:1",
        "sleep", "60")
    cli("run", "-d", "--name", "lbn-plain", "bb:1", "sleep", "60")
    ports = until(lambda: json.loads(cli("inspect", "lbn-ports").stdout)[0]
                  ["NetworkSettings"]["Ports"].get("82/tcp"), what="a port for 82")
    assert ports[0]["HostIp"] == "127.0.0.1" and int(ports[0]["HostPort"]) > 0
    for args in (["port", "lbn-ports"], ["port", "lbn-ports", "80"],
                 ["port", "lbn-ports", "81/udp"], ["port", "lbn-ports", "90"],
                 ["ps", "--format", "{{.Names}} {{.Ports}}", "-f", "name=lbn-"]):
        cli.same_as_docker(*args)
    text = cli("ps", "--format", "{{.Ports}}", "-f", "name=lbn-ports").stdout
    assert "127.0.0.1:18080->80/tcp" in text and "90-91/tcp" in text


class FakeUpstream:
    """A UDP resolver on 127.0.0.1:53 inside the engine's namespace: every A query gets
    192.0.2.77."""

    def __init__(self, engine: Longboatd) -> None:
        from longboat.network import netns

        assert engine.netns is not None
        self.sock = netns.socket_in(str(engine.netns), socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.bind(("127.0.0.1", 53))
        self.sock.settimeout(0.2)
        self.asked: list[str] = []
        self.running = True
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while self.running:
            try:
                data, peer = self.sock.recvfrom(4096)
            except (TimeoutError, OSError):
                continue
            try:
                query = wire.parse(data)
            except wire.WireError:
                continue
            question = query.questions[0]
            self.asked.append(question.text or "")
            if question.qtype == wire.TYPE_A:
                reply = wire.answer(query, wire.TYPE_A, ["192.0.2.77"], max_size=512)
            else:
                reply = wire.error_reply(query, wire.NOERROR)
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.running = False
        self.thread.join(5)
        self.sock.close()


def test_embedded_dns_forwards_to_the_containers_dns_server(engine: Longboatd,
                                                            cleanup: list[str]) -> None:
    cleanup += ["net:lbn-dns", "lbn-dns-web"]
    engine.docker("network", "create", "--subnet", "10.224.0.0/24", "lbn-dns")
    engine.docker("run", "-d", "--name", "lbn-dns-web", "--network", "lbn-dns",
                  "--network-alias", "www", "bb:1", "sleep", "60")
    upstream = FakeUpstream(engine)
    try:
        def ask(name: str) -> str | None:
            out = engine.docker("run", "--rm", "--network", "lbn-dns", "--dns", "127.0.0.1",
                                "bb:1", "nslookup", name, check=False)
            return out.stdout if out.returncode == 0 else None

        outside = until(lambda: ask("elsewhere.example"), what="a forwarded answer")
        assert "192.0.2.77" in outside
        assert "elsewhere.example" in upstream.asked
        ours = until(lambda: ask("www"), what="our answer")
        assert "10.224.0." in ours
        assert "www" not in upstream.asked          # ours never leave the engine
        resolv = engine.docker("run", "--rm", "--network", "lbn-dns", "--dns", "127.0.0.1",
                               "--dns-search", "corp.example", "bb:1", "cat",
                               "/etc/resolv.conf").stdout
        assert resolv == ("search corp.example\nnameserver 127.0.0.11\n"
                          "options ndots:0\n")
    finally:
        upstream.close()
