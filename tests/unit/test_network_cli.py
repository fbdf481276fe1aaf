"""The networking part of the CLI: ``-p``/``--expose``/``--network``... parsed into the
API body as docker's CLI builds it, ``network`` commands' requests and output, ``port``
and the PORTS column. The end-to-end part serves longboat's real API router (the network
endpoints over a small in-memory stand-in for engine.networks) on a unix socket and runs
both our CLI and the real docker CLI against it, comparing what they print and send."""

from __future__ import annotations

import asyncio
import builtins
import json
import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longboat.api import networks as network_api
from longboat.api import system as system_api
from longboat.api.http import Request, Response, serve_connection
from longboat.api.router import Router
from longboat.cli import network_args, networks
from longboat.cli.main import build_parser
from longboat.cli.run_args import ArgumentError, container_config
from longboat.errors import Conflict, NotFound

pytestmark = pytest.mark.unit
LONGBOAT = str(Path(sys.executable).parent / "longboat")


def parse(*words: str) -> Any:
    return build_parser("run").parse_args(["run", *words])


def body(*words: str) -> dict[str, Any]:
    config: dict[str, Any] = container_config(parse(*words), detach=True)
    return config


# -- -p and --expose ------------------------------------------------------------------------
@pytest.mark.parametrize(("spec", "expected"), [
    ("80", [("80/tcp", {"HostIp": "", "HostPort": ""})]),
    ("8080:80", [("80/tcp", {"HostIp": "", "HostPort": "8080"})]),
    ("127.0.0.1:8080:80/udp", [("80/udp", {"HostIp": "127.0.0.1", "HostPort": "8080"})]),
    ("127.0.0.1::80", [("80/tcp", {"HostIp": "127.0.0.1", "HostPort": ""})]),
    ("[::1]:8080:80", [("80/tcp", {"HostIp": "::1", "HostPort": "8080"})]),
    ("8000-8001:9000-9001/sctp", [("9000/sctp", {"HostIp": "", "HostPort": "8000"}),
                                  ("9001/sctp", {"HostIp": "", "HostPort": "8001"})]),
    ("8000-8010:80", [("80/tcp", {"HostIp": "", "HostPort": "8000-8010"})]),
    ("7000-7001", [("7000/tcp", {"HostIp": "", "HostPort": ""}),
                   ("7001/tcp", {"HostIp": "", "HostPort": ""})]),
    ("53/UDP", [("53/udp", {"HostIp": "", "HostPort": ""})]),
])
def test_publish_specs(spec: str, expected: list[tuple[str, dict[str, str]]]) -> None:
    assert network_args.port_spec(spec) == expected


@pytest.mark.parametrize(("spec", "message"), [
    ("", "No port specified"),
    ("8080:", "No port specified"),
    ("x:80", "Invalid hostPort"),
    ("80/icmp", "Invalid proto"),
    ("1.2.3.999:80:80", "Invalid ip address"),
    ("70000", "Invalid containerPort"),
    ("9000-9001:80-82", "Invalid ranges"),
    ("90-80", "Invalid containerPort"),
])
def test_bad_publish_specs(spec: str, message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        network_args.port_spec(spec)


def test_publish_expose_and_publish_all_in_the_body() -> None:
    config = body("-p", "8080:80", "-p", "127.0.0.1::80", "-p", "53/udp",
                  "--expose", "7000-7001", "--expose", "80", "-P", "busybox")
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}, "7000/tcp": {},
                                      "7001/tcp": {}}
    assert config["HostConfig"]["PortBindings"] == {
        "80/tcp": [{"HostIp": "", "HostPort": "8080"},
                   {"HostIp": "127.0.0.1", "HostPort": ""}],
        "53/udp": [{"HostIp": "", "HostPort": ""}]}
    assert config["HostConfig"]["PublishAllPorts"] is True
    plain = body("busybox")
    assert "ExposedPorts" not in plain and plain["HostConfig"]["PortBindings"] == {}
    with pytest.raises(ArgumentError, match="invalid port format for --expose"):
        body("--expose", "1:2", "busybox")


# -- --network and friends ------------------------------------------------------------------
def test_default_network_sends_no_endpoint() -> None:
    config = body("busybox")
    assert config["HostConfig"]["NetworkMode"] == "default"
    assert config["NetworkingConfig"] == {"EndpointsConfig": {}}
    assert body("--net", "host", "busybox")["HostConfig"]["NetworkMode"] == "host"


def test_one_user_network_with_ip_alias_and_links() -> None:
    config = body("--network", "front", "--ip", "10.1.0.5", "--ip6", "fd00::5",
                  "--network-alias", "web", "--network-alias", "www", "--link", "db:database",
                  "--link-local-ip", "169.254.1.1", "busybox")
    assert config["HostConfig"]["NetworkMode"] == "front"
    assert config["HostConfig"]["Links"] == ["db:database"]
    assert config["NetworkingConfig"] == {"EndpointsConfig": {"front": {
        "IPAMConfig": {"IPv4Address": "10.1.0.5", "IPv6Address": "fd00::5",
                       "LinkLocalIPs": ["169.254.1.1"]},
        "Aliases": ["web", "www"], "Links": ["db:database"]}}}


def test_several_networks_each_get_an_endpoint_the_first_the_flags() -> None:
    config = body("--network", "front", "--network", "back", "--ip", "10.1.0.5",
                  "--network", "name=third,alias=t3,ip=10.3.0.3", "busybox")
    assert config["HostConfig"]["NetworkMode"] == "front"
    assert config["NetworkingConfig"]["EndpointsConfig"] == {
        "front": {"IPAMConfig": {"IPv4Address": "10.1.0.5"}},
        "back": {},
        "third": {"IPAMConfig": {"IPv4Address": "10.3.0.3"}, "Aliases": ["t3"]}}


def test_links_on_the_default_bridge_stay_in_host_config_only() -> None:
    config = body("--link", "db", "busybox")
    assert config["HostConfig"]["Links"] == ["db"]
    assert config["NetworkingConfig"]["EndpointsConfig"] == {}


@pytest.mark.parametrize(("words", "message"), [
    (["--network", "a", "--network", "a"], 'network "a" is specified multiple times'),
    (["--network", "host", "--network", "mine"], "conflicting options"),
    (["--ip", "10.0.0.300", "--network", "a"], "is not an ip address"),
    (["--network", "alias=x"], "network name/id is not specified"),
    (["--network", "name=a,bogus=1"], "invalid field key bogus"),
    (["--link", "a:b:c"], "bad format for links"),
    (["--add-host", "nocolon"], "bad format for add-host"),
    (["--add-host", "h:1.2.3"], "invalid IP address in add-host"),
    (["--dns", "resolver"], "is not an ip address"),
    (["--dns-search", "bad..domain"], "is not a valid domain"),
    (["--mac-address", "02:42:ac:11"], "is not a valid mac address"),
])
def test_bad_network_flags(words: list[str], message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        body(*words, "busybox")


def test_names_and_resolver_flags_in_the_body() -> None:
    config = body("-h", "box", "--domainname", "example.com", "--add-host", "gw:10.0.0.1",
                  "--add-host", "host.docker.internal:host-gateway", "--add-host",
                  "v6:fd00::1", "--dns", "1.1.1.1", "--dns-search", "a.example",
                  "--dns-search", ".", "--dns-option", "ndots:2",
                  "--mac-address", "02:42:ac:11:00:09", "busybox")
    host = config["HostConfig"]
    assert (config["Hostname"], config["Domainname"]) == ("box", "example.com")
    assert host["ExtraHosts"] == ["gw:10.0.0.1", "host.docker.internal:host-gateway",
                                  "v6:fd00::1"]
    assert (host["Dns"], host["DnsSearch"], host["DnsOptions"]) == (
        ["1.1.1.1"], ["a.example", "."], ["ndots:2"])
    assert config["MacAddress"] == "02:42:ac:11:00:09"
    plain = body("busybox")["HostConfig"]
    assert (plain["Dns"], plain["DnsSearch"], plain["DnsOptions"], plain["ExtraHosts"],
            plain["Links"]) == ([], [], [], None, None)


# -- network create's request ---------------------------------------------------------------
def create_args(*words: str) -> Any:
    return build_parser("network").parse_args(["network", "create", *words])


def test_create_request_puts_ranges_gateways_and_aux_with_their_subnets() -> None:
    request = networks.create_request(create_args(
        "--subnet", "10.5.0.0/16", "--subnet", "fd05::/64", "--ip-range", "10.5.1.0/24",
        "--gateway", "fd05::fe", "--gateway", "10.5.0.254", "--aux-address", "r=10.5.0.9",
        "--ipv6", "--internal", "--attachable", "--label", "a=1", "--label", "b",
        "-o", "com.docker.network.bridge.name=lb-x", "--ipam-opt", "k=v", "-d", "bridge",
        "net5"))
    assert request == {
        "Name": "net5", "CheckDuplicate": True, "Driver": "bridge", "Scope": "",
        "EnableIPv6": True,
        "IPAM": {"Driver": "default", "Options": {"k": "v"}, "Config": [
            {"Subnet": "10.5.0.0/16", "IPRange": "10.5.1.0/24", "Gateway": "10.5.0.254",
             "AuxiliaryAddresses": {"r": "10.5.0.9"}},
            {"Subnet": "fd05::/64", "Gateway": "fd05::fe"}]},
        "Internal": True, "Attachable": True, "Ingress": False, "ConfigOnly": False,
        "Options": {"com.docker.network.bridge.name": "lb-x"},
        "Labels": {"a": "1", "b": ""}}
    plain = networks.create_request(create_args("--config-from", "tmpl", "n"))
    assert plain["IPAM"] == {"Driver": "default", "Config": [], "Options": {}}
    assert plain["ConfigFrom"] == {"Network": "tmpl"}


@pytest.mark.parametrize(("words", "message"), [
    (["--gateway", "10.0.0.1"], "must have a corresponding subnet"),
    (["--subnet", "10.0.0.0/8", "--subnet", "10.1.0.0/16"], "overlapping"),
    (["--subnet", "10.0.0.0/24", "--gateway", "10.9.0.1"], "no matching subnet for gateway"),
    (["--subnet", "10.0.0.0/24", "--ip-range", "10.0.0.0/25", "--subnet", "10.1.0.0/24",
      "--ip-range", "10.0.0.128/25"], "multiple ranges"),
    (["--subnet", "10.0.0.0/24", "--aux-address", "x=10.2.0.1"], "aux-address"),
    (["--subnet", "nonsense", "--gateway", "10.0.0.1"], "invalid CIDR"),
])
def test_bad_create_requests(words: list[str], message: str) -> None:
    from longboat.cli.main import CommandError

    with pytest.raises(CommandError, match=message):
        networks.create_request(create_args(*words, "n"))


# -- output ---------------------------------------------------------------------------------
@pytest.mark.parametrize(("ports", "text"), [
    ([], ""),
    ([{"PrivatePort": 80, "Type": "tcp"}], "80/tcp"),
    ([{"IP": "0.0.0.0", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"},
      {"IP": "::", "PrivatePort": 80, "PublicPort": 8080, "Type": "tcp"}],
     "0.0.0.0:8080->80/tcp, :::8080->80/tcp"),
    ([{"PrivatePort": p, "Type": "tcp"} for p in (7002, 7000, 7001, 9000)]
     + [{"PrivatePort": 53, "Type": "udp"}],
     "7000-7002/tcp, 53/udp, 9000/tcp"),       # a group is written when it closes
    ([{"IP": "127.0.0.1", "PrivatePort": p, "PublicPort": p, "Type": "tcp"}
      for p in (5000, 5001)], "127.0.0.1:5000-5001->5000-5001/tcp"),
])
def test_ports_column_as_docker_20_10(ports: list[dict[str, Any]], text: str) -> None:
    assert networks.displayable_ports(ports) == text


def test_natural_order_and_go_times() -> None:
    names = ["net10", "net2", "bridge", "Net1", "host"]
    assert sorted(names, key=networks.natural_key) == ["Net1", "bridge", "host", "net2",
                                                       "net10"]
    assert networks.go_time("2026-11-28T00:05:28.903003450Z") == (
        "2026-11-28 00:05:28.90300345 +0000 UTC")
    assert networks.go_time("2026-11-28T00:05:28Z") == "2026-11-28 00:05:28 +0000 UTC"


# -- end to end: both CLIs against the real router over a stand-in engine -------------------
class FakeNetworks:
    """engine.networks as the contract shapes it, in memory."""

    def __init__(self) -> None:
        self.by_id: dict[str, dict[str, Any]] = {}
        self.connected: list[tuple[str, str, dict[str, Any]]] = []
        self.disconnected: list[tuple[str, str, bool]] = []
        self.created: list[dict[str, Any]] = []
        for number, (name, driver) in enumerate((("bridge", "bridge"), ("host", "host"),
                                                 ("none", "null"))):
            self._add(name, driver, f"{number + 1:x}" * 64)

    def _add(self, name: str, driver: str, nid: str, **extra: Any) -> dict[str, Any]:
        record = {"Name": name, "Id": nid, "Created": "2026-11-28T00:05:28.903003455Z",
                  "Scope": "local", "Driver": driver, "EnableIPv6": False,
                  "IPAM": {"Driver": "default", "Options": None, "Config": []},
                  "Internal": False, "Attachable": False, "Ingress": False,
                  "ConfigFrom": {"Network": ""}, "ConfigOnly": False,
                  "Containers": {"c" * 64: {"Name": "web"}}, "Options": {}, "Labels": {},
                  **extra}
        self.by_id[nid] = record
        return record

    def get(self, ref: str) -> dict[str, Any]:
        for record in self.by_id.values():
            if ref in (record["Id"], record["Name"]) or record["Id"].startswith(ref):
                return record
        raise NotFound(f"network {ref} not found")

    def inspect(self, ref: str, *, verbose: bool = False) -> dict[str, Any]:
        return self.get(ref)

    def list(self, filters: dict[str, builtins.list[str]]) -> builtins.list[dict[str, Any]]:
        names = filters.get("name")
        return [r for r in self.by_id.values()
                if not names or any(n in r["Name"] for n in names)]

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        self.created.append(body)
        if any(r["Name"] == body["Name"] for r in self.by_id.values()):
            raise Conflict(f"network with name {body['Name']} already exists")
        nid = f"{len(self.by_id) + 10:02x}" * 32
        self._add(body["Name"], body.get("Driver") or "bridge", nid,
                  Labels=body.get("Labels") or {})
        return {"Id": nid, "Warning": ""}

    def remove(self, ref: str) -> None:
        del self.by_id[self.get(ref)["Id"]]

    async def connect(self, ref: str, container: str, endpoint: dict[str, Any]) -> None:
        self.connected.append((self.get(ref)["Name"], container, endpoint))

    async def disconnect(self, ref: str, container: str, *, force: bool) -> None:
        self.disconnected.append((self.get(ref)["Name"], container, force))

    def prune(self, filters: dict[str, builtins.list[str]]) -> dict[str, Any]:
        gone = [r["Name"] for r in list(self.by_id.values())
                if r["Name"] not in ("bridge", "host", "none")]
        for name in gone:
            self.remove(name)
        return {"NetworksDeleted": gone or None}


class FakeEngine:
    def __init__(self) -> None:
        self.networks = FakeNetworks()
        self.container_bodies: list[dict[str, Any]] = []
        self.container_ports: dict[str, list[dict[str, str]] | None] = {
            "80/tcp": [{"HostIp": "0.0.0.0", "HostPort": "8080"},
                       {"HostIp": "::", "HostPort": "8080"}],
            "53/udp": [{"HostIp": "127.0.0.1", "HostPort": "5353"}],
            "9000/tcp": None}


class Server:
    def __init__(self, path: Path) -> None:
        self.engine = FakeEngine()
        self.path = path
        router = Router()
        system_api.register(router, self.engine)  # type: ignore[arg-type]
        network_api.register(router, self.engine)  # type: ignore[arg-type]
        engine = self.engine

        async def create_container(request: Request) -> Response:
            engine.container_bodies.append(await request.json())
            return Response.json({"Id": "d" * 64, "Warnings": []}, 201)

        async def inspect_container(request: Request) -> Response:
            if request.params["id"] != "web":
                return Response.json({"message": "No such container: "
                                                 + request.params["id"]}, 404)
            return Response.json({"Id": "c" * 64, "Name": "/web",
                                  "NetworkSettings": {"Ports": engine.container_ports}})

        router.add("POST", "/containers/create", create_container)
        router.add("GET", "/containers/{id}/json", inspect_container)
        self.loop = asyncio.new_event_loop()
        ready = threading.Event()

        async def serve() -> None:
            async def connection(reader: asyncio.StreamReader,
                                 writer: asyncio.StreamWriter) -> None:
                await serve_connection(reader, writer, router, Router.common_headers)

            self.server = await asyncio.start_unix_server(connection, str(path))
            ready.set()

        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        asyncio.run_coroutine_threadsafe(serve(), self.loop)
        assert ready.wait(10)

    def close(self) -> None:
        async def stop() -> None:
            self.server.close()

        asyncio.run_coroutine_threadsafe(stop(), self.loop).result(10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(10)
        self.loop.close()


@pytest.fixture
def server(tmp_path: Path) -> Iterator[Server]:
    running = Server(tmp_path / "api.sock")
    yield running
    running.close()


def run(cli: str, server: Server, *args: str, input: str | None = None
        ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": f"unix://{server.path}",
           "DOCKER_CONFIG": str(server.path.parent / "docker-config"),
           "LONGBOAT_CONFIG": str(server.path.parent / "longboat-config")}
    env.pop("LONGBOAT_HOST", None)
    return subprocess.run([cli, *args], capture_output=True, text=True, env=env,
                          input=input, timeout=60, check=False)


def ours(server: Server, *args: str, input: str | None = None
         ) -> subprocess.CompletedProcess[str]:
    return run(LONGBOAT, server, *args, input=input)


needs_docker = pytest.mark.skipif(shutil.which("docker") is None,
                                  reason="the docker CLI is not installed")


def test_ls_and_quiet_and_filters(server: Server) -> None:
    out = ours(server, "network", "ls")
    assert out.returncode == 0, out.stderr
    assert out.stdout == ("NETWORK ID     NAME      DRIVER    SCOPE\n"
                          "111111111111   bridge    bridge    local\n"
                          "222222222222   host      host      local\n"
                          "333333333333   none      null      local\n")
    assert ours(server, "network", "ls", "-q", "-f", "name=o").stdout == (
        "222222222222\n333333333333\n")
    assert ours(server, "network", "ls", "--format", "{{.Name}} {{.IPv6}}",
                "--no-trunc").stdout == "bridge false\nhost false\nnone false\n"


def test_create_inspect_rm_and_errors(server: Server) -> None:
    made = ours(server, "network", "create", "--subnet", "10.9.0.0/24", "--label", "x=y",
                "lbnet")
    assert made.returncode == 0, made.stderr
    nid = made.stdout.strip()
    assert len(nid) == 64 and server.engine.networks.created[-1]["IPAM"]["Config"] == [
        {"Subnet": "10.9.0.0/24"}]
    again = ours(server, "network", "create", "lbnet")
    assert again.returncode == 1
    assert again.stderr == ("Error response from daemon: network with name lbnet already "
                            "exists\n")
    shown = ours(server, "network", "inspect", "lbnet")
    assert json.loads(shown.stdout)[0]["Id"] == nid
    assert ours(server, "network", "inspect", "-f", "{{.Name}} {{.Labels}}",
                nid[:12]).stdout == "lbnet map[x:y]\n"
    missing = ours(server, "network", "inspect", "lbnet", "nope")
    assert missing.returncode == 1
    assert missing.stderr == "Error response from daemon: network nope not found\n"
    assert json.loads(missing.stdout)[0]["Name"] == "lbnet"
    gone = ours(server, "network", "rm", "lbnet", "nope")
    assert (gone.returncode, gone.stdout, gone.stderr) == (
        1, "lbnet\n", "Error response from daemon: network nope not found\n")


def test_connect_disconnect_and_prune(server: Server) -> None:
    assert ours(server, "network", "create", "lbp").returncode == 0
    done = ours(server, "network", "connect", "--alias", "a1", "--ip", "10.9.0.7", "--link",
                "db:d", "lbp", "web")
    assert done.returncode == 0, done.stderr
    assert server.engine.networks.connected == [("lbp", "web", {
        "IPAMConfig": {"IPv4Address": "10.9.0.7"}, "Links": ["db:d"], "Aliases": ["a1"],
        "DriverOpts": None})]
    assert ours(server, "network", "disconnect", "-f", "lbp", "web").returncode == 0
    assert server.engine.networks.disconnected == [("lbp", "web", True)]
    declined = ours(server, "network", "prune", input="n\n")
    assert declined.stdout.startswith("WARNING! This will remove all custom networks")
    assert "lbp" in [r["Name"] for r in server.engine.networks.by_id.values()]
    pruned = ours(server, "network", "prune", "-f")
    assert pruned.stdout == "Deleted Networks:\nlbp\n\n"
    assert ours(server, "network", "prune", "-f").stdout == ""


def test_api_list_has_no_endpoints_and_checks_filters(server: Server) -> None:
    import docker  # type: ignore[import-untyped]

    client = docker.APIClient(base_url=f"unix://{server.path}", version="1.41")
    try:
        listed = client.networks()
        assert {n["Name"] for n in listed} == {"bridge", "host", "none"}
        assert all(n["Containers"] == {} for n in listed)
        assert client.inspect_network("bridge")["Containers"]   # inspect keeps them
        with pytest.raises(docker.errors.APIError, match="invalid filter 'bogus'"):
            client.networks(filters={"bogus": "1"})
        with pytest.raises(docker.errors.APIError, match="'type'='weird'"):
            client.networks(filters={"type": "weird"})
        with pytest.raises(docker.errors.NotFound):
            client.inspect_network("bridge", scope="swarm")
        made = client.create_network("lbpy", driver="bridge", labels={"k": "v"})
        assert made["Id"] in {n["Id"] for n in client.networks(names=["lbpy"])}
        client.connect_container_to_network("web", "lbpy", aliases=["w"])
        assert server.engine.networks.connected[-1][2]["Aliases"] == ["w"]
        client.disconnect_container_from_network("web", "lbpy", force=False)
        client.remove_network("lbpy")
        with pytest.raises(docker.errors.NotFound):
            client.remove_network("lbpy")
    finally:
        client.close()


def test_port_command(server: Server) -> None:
    out = ours(server, "port", "web")
    assert out.stdout == ("53/udp -> 127.0.0.1:5353\n80/tcp -> 0.0.0.0:8080\n"
                          "80/tcp -> :::8080\n")
    assert ours(server, "port", "web", "80").stdout == "0.0.0.0:8080\n:::8080\n"
    assert ours(server, "container", "port", "web", "53/udp").stdout == "127.0.0.1:5353\n"
    missing = ours(server, "port", "web", "9000")
    assert (missing.returncode, missing.stderr) == (
        1, "Error: No public port '9000' published for web\n")


@needs_docker
def test_ls_and_inspect_print_what_docker_prints(server: Server) -> None:
    ours(server, "network", "create", "--label", "a=1", "net10")   # one: Go maps shuffle
    ours(server, "network", "create", "net2")
    for args in (["network", "ls"], ["network", "ls", "--no-trunc"],
                 ["network", "ls", "-q"],
                 ["network", "ls", "--format", "table {{.Name}}\t{{.Labels}}\t{{.IPv6}}"],
                 ["network", "ls", "--format", "{{.ID}}: {{.CreatedAt}}"],
                 ["network", "inspect", "bridge", "net2"],
                 ["network", "inspect", "-f", "{{.Name}} {{.Driver}}", "host"],
                 ["network", "inspect", "none", "missing"]):
        mine = ours(server, *args)
        theirs = run("docker", server, *args)
        assert (mine.stdout, mine.returncode) == (theirs.stdout, theirs.returncode), args
        if theirs.returncode:
            assert mine.stderr == theirs.stderr, args


@needs_docker
def test_docker_cli_sends_the_same_network_settings(server: Server) -> None:
    """docker create and longboat create with the same networking flags: the same
    networking fields reach the API."""
    flags = ["-p", "8080:80", "-p", "127.0.0.1::53/udp", "-p", "9000-9001:9000-9001",
             "--expose", "7000", "-P", "--add-host", "gw:10.0.0.1", "--dns", "1.1.1.1",
             "--dns-search", "a.example", "--dns-option", "ndots:2", "--network", "front",
             "--ip", "10.1.0.5", "--network-alias", "web", "--link", "db:database",
             "-h", "box", "--domainname", "example.com"]
    # (--mac-address: docker 28's CLI puts it on the endpoint, which needs API 1.44)
    for cli in (LONGBOAT, "docker"):
        done = run(cli, server, "create", *flags, "busybox")
        assert done.returncode == 0, (cli, done.stderr)
    mine, theirs = server.engine.container_bodies

    def networking(config: dict[str, Any]) -> dict[str, Any]:
        host = config["HostConfig"]
        endpoints = config["NetworkingConfig"]["EndpointsConfig"]
        return {
            "ExposedPorts": config.get("ExposedPorts"),
            "Hostname": config["Hostname"], "Domainname": config["Domainname"],
            "MacAddress": config.get("MacAddress"),
            "PortBindings": host["PortBindings"],
            **{k: host.get(k) for k in ("NetworkMode", "PublishAllPorts", "Dns",
                                        "DnsSearch", "DnsOptions", "ExtraHosts", "Links")},
            "Endpoints": {name: {k: v for k, v in (ep or {}).items()
                                 if v not in (None, {}, [], "", 0)}
                          for name, ep in endpoints.items()}}

    assert networking(mine) == networking(theirs)
