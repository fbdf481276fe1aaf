"""Names, on an engine in a namespace of its own: the embedded DNS forwarding what it
does not know to an upstream server (a fake one in the engine's namespace, named by
``--dns``), no forwarding at all from an internal network, and legacy ``--link`` on the
default bridge (/etc/hosts entries and the link environment variables)."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.integration.test_networks import http_in, inspect, serve_http, until
from tests.support.engine import Longboatd, busybox_engine

from longboat.network import dns_wire as wire

pytestmark = pytest.mark.integration

UPSTREAM_NAME = "lbq-upstream.example"
UPSTREAM_ADDRESS = "10.215.99.99"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbq-dns"), rootfs_template,
                        "--change", 'CMD ["sh"]', name="bb:1", netns=True) as daemon:
        daemon.docker("network", "create", "--subnet", "10.215.30.0/24", "lbqd")
        daemon.docker("network", "create", "--internal", "--subnet", "10.215.31.0/24",
                      "lbqi")
        yield daemon
        daemon.docker("rm", "-f", *daemon.docker("ps", "-aq").stdout.split(), check=False)
        daemon.docker("network", "rm", "lbqd", "lbqi", check=False)


class FakeUpstream:
    """A UDP DNS server in the engine's namespace that knows one name."""

    def __init__(self, engine: Longboatd, address: str) -> None:
        from longboat.network import netns

        assert engine.netns is not None
        self.sock = netns.socket_in(str(engine.netns), socket.AF_INET, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.sock.bind((address, 53))
        self.sock.settimeout(0.2)
        self.stopping = threading.Event()
        self.asked: list[str] = []
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.stopping.is_set():
            try:
                data, peer = self.sock.recvfrom(4096)
            except TimeoutError:
                continue
            except OSError:
                return
            query = wire.parse(data)
            question = query.questions[0]
            self.asked.append(f"{question.text}/{question.qtype}")
            if question.text == UPSTREAM_NAME:
                values = [UPSTREAM_ADDRESS] if question.qtype == wire.TYPE_A else []
                reply = wire.answer(query, question.qtype, values, max_size=512)
            else:
                reply = wire.error_reply(query, wire.NXDOMAIN)
            self.sock.sendto(reply, peer)

    def close(self) -> None:
        self.stopping.set()
        self.thread.join(5)
        self.sock.close()


def test_names_it_does_not_know_go_upstream(engine: Longboatd) -> None:
    upstream = FakeUpstream(engine, "10.215.30.1")       # lbqd's gateway: the host
    try:
        out = until(lambda: engine.docker(
            "run", "--rm", "--network", "lbqd", "--dns", "10.215.30.1", "bb:1",
            "nslookup", UPSTREAM_NAME, check=False).stdout, what="an upstream answer")
        assert f"Address: {UPSTREAM_ADDRESS}" in out
        assert f"{UPSTREAM_NAME}/{wire.TYPE_A}" in upstream.asked
        # the upstream's NXDOMAIN reaches the container as it is
        missing = engine.docker("run", "--rm", "--network", "lbqd", "--dns",
                                "10.215.30.1", "bb:1", "nslookup", "lbq-nosuch.example",
                                check=False)
        assert missing.returncode != 0 and "NXDOMAIN" in missing.stdout + missing.stderr
        # the container's resolv.conf names only the embedded server
        resolv = engine.docker("run", "--rm", "--network", "lbqd", "--dns", "10.215.30.1",
                               "bb:1", "cat", "/etc/resolv.conf").stdout
        assert "nameserver 127.0.0.11" in resolv and "10.215.30.1" not in resolv
    finally:
        upstream.close()


def test_with_ndots_set_single_labels_are_not_forwarded(engine: Longboatd) -> None:
    upstream = FakeUpstream(engine, "10.215.30.1")
    try:
        out = engine.docker("run", "--rm", "--network", "lbqd", "--dns", "10.215.30.1",
                            "--dns-option", "ndots:2", "bb:1", "sh", "-c",
                            "cat /etc/resolv.conf; nslookup lbqsingle; nslookup "
                            f"{UPSTREAM_NAME}", check=False).stdout
        assert "options ndots:2" in out and "ndots:0" not in out
        assert f"Address: {UPSTREAM_ADDRESS}" in out
        assert not [q for q in upstream.asked if q.startswith("lbqsingle/")]
    finally:
        upstream.close()


def test_an_internal_network_forwards_nothing(engine: Longboatd) -> None:
    upstream = FakeUpstream(engine, "10.215.31.1")       # lbqi's gateway
    try:
        serve_http(engine, "lbq-inner", "--network", "lbqi")
        out = engine.docker("run", "--rm", "--network", "lbqi", "--dns", "10.215.31.1",
                            "bb:1", "sh", "-c", f"nslookup {UPSTREAM_NAME}; "
                            "nslookup lbq-inner", check=False).stdout
        assert "SERVFAIL" in out and UPSTREAM_ADDRESS not in out
        address = inspect(engine, "lbq-inner")["NetworkSettings"]["Networks"]["lbqi"][
            "IPAddress"]
        assert f"Address: {address}" in out            # its own names still resolve
        assert upstream.asked == []
    finally:
        upstream.close()
        engine.docker("rm", "-f", "lbq-inner", check=False)


def test_links_on_the_default_bridge(engine: Longboatd) -> None:
    try:
        engine.docker("run", "-d", "--name", "lbq-db", "--hostname", "dbhost", "-e",
                      "LBQ_MODE=primary", "--expose", "5432", "--expose", "7000-7002/udp",
                      "bb:1", "sh", "-c", "mkdir /w && echo db > /w/index.html && "
                      "exec httpd -f -p 5432 -h /w")
        until(lambda: inspect(engine, "lbq-db")["State"]["Running"], what="lbq-db")
        ip = inspect(engine, "lbq-db")["NetworkSettings"]["IPAddress"]
        assert ip
        out = engine.docker("run", "--rm", "--name", "lbq-app", "--link", "lbq-db:lbqdb",
                            "bb:1", "sh", "-c", "cat /etc/hosts; echo ==; env").stdout
        hosts, _, env = out.partition("==\n")
        assert f"{ip}\tlbqdb dbhost lbq-db\n" in hosts
        variables = dict(line.split("=", 1) for line in env.splitlines() if "=" in line)
        expected = {
            "LBQDB_PORT": f"tcp://{ip}:5432",
            "LBQDB_PORT_5432_TCP": f"tcp://{ip}:5432",
            "LBQDB_PORT_5432_TCP_ADDR": ip, "LBQDB_PORT_5432_TCP_PORT": "5432",
            "LBQDB_PORT_5432_TCP_PROTO": "tcp",
            "LBQDB_PORT_7000_UDP_START": f"udp://{ip}:7000",
            "LBQDB_PORT_7001_UDP": f"udp://{ip}:7001",
            "LBQDB_PORT_7000_UDP_END": f"udp://{ip}:7002",
            "LBQDB_PORT_7000_UDP_PORT_START": "7000", "LBQDB_PORT_7000_UDP_PORT_END": "7002",
            "LBQDB_NAME": "/lbq-app/lbqdb", "LBQDB_ENV_LBQ_MODE": "primary"}
        assert {k: variables.get(k) for k in expected} == expected
        # the alias reaches the linked container (through /etc/hosts: no embedded DNS
        # on the default bridge)
        request = "printf 'GET / HTTP/1.0\\r\\n\\r\\n' | nc -w 3 lbqdb 5432"
        reply = engine.docker("run", "--rm", "--link", "lbq-db:lbqdb", "bb:1", "sh", "-c",
                              request).stdout
        assert reply.endswith("\r\n\r\ndb\n")
        # a link to a stopped container: the start is refused
        engine.docker("stop", "-t", "0", "lbq-db")
        refused = engine.docker("run", "--rm", "--link", "lbq-db:lbqdb", "bb:1", "true",
                                check=False)
        assert refused.returncode != 0 and "non running container" in refused.stderr
    finally:
        engine.docker("rm", "-f", "lbq-db", "lbq-app", check=False)


def test_links_on_a_user_network_are_names_only(engine: Longboatd) -> None:
    try:
        serve_http(engine, "lbq-udb", "--network", "lbqd")
        out = engine.docker("run", "--rm", "--network", "lbqd", "--link", "lbq-udb:lbqu",
                            "bb:1", "sh", "-c", "cat /etc/hosts; env").stdout
        assert "lbqu" not in out and "LBQU_" not in out
        assert http_in(engine, "lbqd", "lbq-udb") == "hello-lbq-udb\n"
    finally:
        engine.docker("rm", "-f", "lbq-udb", check=False)


def test_a_linked_container_restarted_elsewhere_updates_its_parents_hosts(
        engine: Longboatd) -> None:
    try:
        engine.docker("run", "-d", "--name", "lbq-child", "bb:1", "sleep", "600")
        first = inspect(engine, "lbq-child")["NetworkSettings"]["IPAddress"]
        engine.docker("run", "-d", "--name", "lbq-parent", "--link", "lbq-child:lbqc",
                      "bb:1", "sleep", "600")
        hosts = engine.docker("exec", "lbq-parent", "cat", "/etc/hosts").stdout
        assert f"{first}\tlbqc " in hosts
        # the child's address goes to another container while it is stopped
        engine.docker("stop", "-t", "0", "lbq-child")

        def squat() -> bool:
            # (the address comes back to IPAM just after the exit: try again until then)
            engine.docker("rm", "-f", "lbq-squatter", check=False)
            engine.docker("run", "-d", "--name", "lbq-squatter", "bb:1", "sleep", "600")
            return bool(inspect(engine, "lbq-squatter")["NetworkSettings"]["IPAddress"]
                        == first)

        until(squat, what="another container on the child's old address")
        engine.docker("start", "lbq-child")
        second = inspect(engine, "lbq-child")["NetworkSettings"]["IPAddress"]
        assert second != first
        hosts = engine.docker("exec", "lbq-parent", "cat", "/etc/hosts").stdout
        assert f"{second}\tlbqc " in hosts and f"{first}\tlbqc " not in hosts
    finally:
        engine.docker("rm", "-f", "lbq-parent", "lbq-child", "lbq-squatter", check=False)
