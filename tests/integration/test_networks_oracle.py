"""User networks checked against a real Docker 20.10 (Debian's docker.io, in a namespace
of its own, ``--bridge=none --iptables=false``) given the same flags: ``network
inspect`` of a network with every IPAM and driver option, and a container's
``NetworkSettings`` on it (an alias and a static address), IPv4 and dual stack.
What differs by nature (ids, timestamps, MACs, sandbox paths) is normalised away."""

from __future__ import annotations

import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.dockerd import Dockerd, running
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

NETWORK = ["--subnet", "10.215.8.0/24", "--gateway", "10.215.8.254", "--ip-range",
           "10.215.8.128/25", "--aux-address", "lbqrouter=10.215.8.253", "--label",
           "lbq.team=net", "-o", "com.docker.network.bridge.name=lbqbr8", "-o",
           "com.docker.network.driver.mtu=1400", "--internal", "--attachable"]
DUAL = ["--ipv6", "--subnet", "10.215.9.0/24", "--subnet", "fd00:5a:9::/64"]
PLAIN = ["--subnet", "10.215.10.0/24"]


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
            ) -> Iterator[Dockerd]:
    with running(tmp_path_factory.mktemp("dockerd")) as daemon:
        image = tmp_path_factory.mktemp("image") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        daemon.docker("import", str(image), "bb:0")
        # lo up in its namespace, as on a host (dockerd checks IPv6 on ::1)
        subprocess.run(["nsenter", f"--net=/proc/{daemon.pid}/ns/net", "ip", "link", "set",
                        "lo", "up"], check=True)
        yield daemon


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbq-oracle"), rootfs_template,
                        name="bb:0", netns=True) as daemon:
        yield daemon


def _network_shape(doc: dict[str, Any]) -> dict[str, Any]:
    doc = dict(doc)
    for key in ("Id", "Created"):
        doc.pop(key)
    doc["Containers"] = {name: _without(ep, "EndpointID", "MacAddress")
                         for name, ep in ((ep["Name"], ep) for ep in
                                          doc["Containers"].values())}
    return doc


def _without(doc: dict[str, Any], *keys: str) -> dict[str, Any]:
    return {k: v for k, v in doc.items() if k not in keys}


def _settings_shape(doc: dict[str, Any]) -> dict[str, Any]:
    settings = dict(doc["NetworkSettings"])
    for key in ("SandboxID", "SandboxKey", "EndpointID", "MacAddress", "Bridge"):
        settings[key] = bool(settings[key])
    settings["Networks"] = {name: dict(_without(ep, "NetworkID", "EndpointID", "MacAddress"),
                                       Aliases=sorted(a for a in ep["Aliases"] or []
                                                      if a != doc["Id"][:12]))
                            for name, ep in settings["Networks"].items()}
    return settings


def _both(dockerd: Dockerd, engine: Longboatd, *args: str) -> list[str]:
    """The same command by the same (Debian's 20.10) client against both engines."""
    return [dockerd.docker(*args).stdout.decode(), dockerd.docker(
        *args, env={**dockerd.env, "DOCKER_HOST": engine.host,
                    "DOCKER_CONFIG": str(engine.workdir / "docker-config")}).stdout.decode()]


@pytest.mark.parametrize("flags,run", [
    (NETWORK, ["--network-alias", "lbqdb", "--ip", "10.215.8.10"]),
    (DUAL, ["--network-alias", "lbqdb", "--ip", "10.215.9.10", "--ip6", "fd00:5a:9::10"]),
    (PLAIN, ["--network-alias", "lbqdb"]),
    (DUAL, ["-p", "18095:80", "-p", "18096:81/udp", "--expose", "82"]),
    (PLAIN, ["-p", "18097:80", "-p", "18098-18099:83-84"]),
    (["--subnet", "10.215.16.0/24", "--subnet", "fd00:5a:16::/64"], ["--ip", "10.215.16.9"]),
    (DUAL, ["-p", "[::]:18104:80", "-p", "0.0.0.0:18105:81", "-p", "[::1]:18106:82"]),
], ids=["every-option", "dual-stack", "plain", "published", "published-ipv4-only",
        "ipv6-subnet-not-enabled", "published-by-version"])
def test_network_and_endpoint_inspect_match_docker(dockerd: Dockerd, engine: Longboatd,
                                                   flags: list[str], run: list[str]
                                                   ) -> None:
    try:
        _both(dockerd, engine, "network", "create", *flags, "lbq-net")
        _both(dockerd, engine, "run", "-d", "--name", "lbq-c", "--network", "lbq-net",
              *run, "bb:0", "sleep", "600")
        theirs, ours = (json.loads(t)[0] for t in _both(
            dockerd, engine, "network", "inspect", "lbq-net"))
        assert _network_shape(ours) == _network_shape(theirs)
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-c"))
        assert _settings_shape(ours) == _settings_shape(theirs)
        assert ours["HostConfig"]["NetworkMode"] == theirs["HostConfig"]["NetworkMode"]
        theirs_ports, ours_ports = _both(dockerd, engine, "ps", "--filter", "name=lbq-c",
                                         "--format", "{{.Ports}}")
        assert ours_ports == theirs_ports
        theirs_ports, ours_ports = _both(dockerd, engine, "port", "lbq-c")
        # (the 20.10 client prints them in Go's map order: random)
        assert sorted(ours_ports.splitlines()) == sorted(theirs_ports.splitlines())
    finally:
        for docker in (dockerd.docker, engine.docker):
            try:
                docker("rm", "-f", "lbq-c")
            except AssertionError:
                pass
            try:
                docker("network", "rm", "lbq-net")
            except AssertionError:
                pass


@pytest.mark.parametrize("flags,run", [
    (DUAL, ["--hostname", "lbqh", "--ip", "10.215.9.10", "--ip6", "fd00:5a:9::10",
            "--add-host", "lbq-extra:10.215.77.7", "--dns-search", "lbq.example",
            "--dns-option", "timeout:2"]),
    (PLAIN, ["--hostname", "lbqh", "--domainname", "lbq.example", "--dns", "10.215.10.53"]),
], ids=["dual-stack", "dns-flags"])
def test_etc_files_match_docker(dockerd: Dockerd, engine: Longboatd, flags: list[str],
                                run: list[str]) -> None:
    try:
        _both(dockerd, engine, "network", "create", *flags, "lbq-net")
        theirs, ours = _both(dockerd, engine, "run", "--rm", "--network", "lbq-net", *run,
                             "bb:0", "sh", "-c", "cat /etc/hosts; echo ==; "
                             "cat /etc/resolv.conf; echo ==; cat /etc/hostname")
        assert ours.splitlines() == theirs.splitlines(), (ours, theirs)
    finally:
        for docker in (dockerd.docker, engine.docker):
            try:
                docker("network", "rm", "lbq-net")
            except AssertionError:
                pass


def test_connect_and_disconnect_match_docker(dockerd: Dockerd, engine: Longboatd) -> None:
    try:
        _both(dockerd, engine, "network", "create", *PLAIN, "lbq-net")
        _both(dockerd, engine, "network", "create", *DUAL, "lbq-net2")
        _both(dockerd, engine, "run", "-d", "--name", "lbq-c", "--hostname", "lbqh",
              "--network", "lbq-net", "--ip", "10.215.10.5", "bb:0", "sleep", "600")
        _both(dockerd, engine, "network", "connect", "--alias", "lbqsecond", "--ip",
              "10.215.9.7", "--ip6", "fd00:5a:9::7", "lbq-net2", "lbq-c")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-c"))
        assert _settings_shape(ours) == _settings_shape(theirs)
        theirs, ours = _both(dockerd, engine, "exec", "lbq-c", "cat", "/etc/hosts")
        assert ours == theirs
        theirs, ours = (json.loads(t)[0] for t in _both(
            dockerd, engine, "network", "inspect", "lbq-net2"))
        assert _network_shape(ours) == _network_shape(theirs)
        _both(dockerd, engine, "network", "disconnect", "lbq-net", "lbq-c")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-c"))
        assert _settings_shape(ours) == _settings_shape(theirs)
        theirs, ours = _both(dockerd, engine, "exec", "lbq-c", "cat", "/etc/hosts")
        # a deliberate difference: dockerd 20.10 drops every line of the host name on a
        # disconnect (it deletes hosts records by name), the remaining network's too
        assert ours == theirs + "10.215.9.7\tlbqh\nfd00:5a:9::7\tlbqh\n"
        # stopped, then connected again: the configuration only
        _both(dockerd, engine, "stop", "-t", "0", "lbq-c")
        _both(dockerd, engine, "network", "connect", "--ip", "10.215.10.6", "lbq-net",
              "lbq-c")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-c"))
        # (dockerd keeps a stopped container's sandbox id and path; we clear them)
        assert _without(_settings_shape(ours), "SandboxID", "SandboxKey") == \
            _without(_settings_shape(theirs), "SandboxID", "SandboxKey")
        # created, never started
        _both(dockerd, engine, "create", "--name", "lbq-d", "--network", "lbq-net",
              "--network-alias", "lbqd", "--hostname", "lbqdh", "bb:0", "true")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-d"))
        assert _settings_shape(ours) == _settings_shape(theirs)
    finally:
        for docker in (dockerd.docker, engine.docker):
            for args in (["rm", "-f", "lbq-c", "lbq-d"],
                         ["network", "rm", "lbq-net", "lbq-net2"]):
                try:
                    docker(*args)
                except AssertionError:
                    pass


def _stderr(docker: Any, *args: str) -> str:
    """The error a command ends with, without the client's run prefix and hint (we
    refuse a bad address at create, so the client adds them; dockerd refuses at start,
    leaving the created container behind)."""
    try:
        docker(*args)
    except AssertionError as exc:
        text = str(exc).split(": ", 1)[1] if ": " in str(exc) else str(exc)
        text = text.removeprefix("docker: ").replace("\nSee 'docker run --help'.", "")
        return re.sub(r"\b[0-9a-f]{64}\b", "<id>", text)
    return ""


def test_bad_input_errors_match_docker(dockerd: Dockerd, engine: Longboatd) -> None:
    def ours(*args: str) -> str:
        return dockerd.docker(*args, env={**dockerd.env, "DOCKER_HOST": engine.host})

    cases = [
        ["network", "create", "--subnet", "10.215.11.128/25", "lbq-over"],
        ["network", "create", "--subnet", "10.215.12.0/24", "--gateway", "10.215.13.1",
         "lbq-gw"],
        ["network", "create", "--subnet", "10.215.12.0/24", "--ip-range", "10.215.13.0/25",
         "lbq-range"],
        ["network", "create", "-d", "lbqnosuch", "lbq-driver"],
        ["network", "create", "lbq-net"],
        ["run", "-d", "--network", "lbq-net", "--ip", "10.99.0.9", "bb:0", "true"],
        ["run", "-d", "--network", "lbq-net", "--ip", "10.215.11.5", "bb:0", "true"],
        ["network", "rm", "lbq-net"],
        ["network", "connect", "lbq-net", "lbq-e"],
        ["network", "disconnect", "lbq-nosuch", "lbq-e"],
        ["network", "rm", "lbq-nosuch"],
        ["network", "create", "--ipv6", "lbq-v6none"],
        ["network", "create", "--subnet", "fd00:5a:30::/64", "lbq-v6off"],
        ["network", "create", "--subnet", "10.215.14.0/24", "--aux-address",
         "a=10.215.15.1", "lbq-aux"],
        ["network", "create", "-o", "com.docker.network.bridge.name=lbqbr", "-o",
         "com.docker.network.driver.mtu=abc", "lbq-mtu"],
        ["run", "-d", "--network", "lbq-net", "--ip6", "fd00:5a:31::5", "bb:0", "true"],
        ["run", "-d", "--network", "lbq-net", "--network-alias", "x", "--ip", "10.215.11.300",
         "bb:0", "true"],
        ["run", "-d", "--network-alias", "lbqx", "bb:0", "true"],
        ["network", "connect", "lbq-net", "lbq-nosuch"],
        ["network", "connect", "host", "lbq-e"],
        ["network", "disconnect", "none", "lbq-e"],
        ["network", "rm", "host"],
    ]
    try:
        for docker in (dockerd.docker, ours):
            docker("network", "create", "--subnet", "10.215.11.0/24", "lbq-net")
            docker("run", "-d", "--name", "lbq-e", "--network", "lbq-net", "--ip",
                   "10.215.11.5", "bb:0", "sleep", "600")
        differences = []
        for args in cases:
            theirs, mine = _stderr(dockerd.docker, *args), _stderr(ours, *args)
            if theirs != mine:
                differences.append((args, theirs, mine))
        assert not differences, "\n".join(f"{a}\n  docker: {t!r}\n  ours:   {m!r}"
                                          for a, t, m in differences)
    finally:
        for docker in (dockerd.docker, engine.docker):
            for args in (["rm", "-f", "lbq-e"], ["network", "rm", "lbq-net"],
                         ["network", "rm", "lbq-v6off"]):
                try:
                    docker(*args)
                except AssertionError:
                    pass


def test_predefined_host_and_none_match_docker(dockerd: Dockerd, engine: Longboatd
                                               ) -> None:
    for name in ("host", "none"):
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "network",
                                                        "inspect", name))
        assert _network_shape(ours) == _network_shape(theirs), name


@pytest.mark.parametrize("mode", ["none", "host"])
def test_settings_on_none_and_host_match_docker(dockerd: Dockerd, engine: Longboatd,
                                                mode: str) -> None:
    try:
        _both(dockerd, engine, "run", "-d", "--name", "lbq-m", "--network", mode, "bb:0",
              "sleep", "600")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-m"))
        # (dockerd names a sandbox for these too, a namespace file of its own for none
        # and the host's for host; we have none: the runtime makes none's namespace)
        assert _without(_settings_shape(ours), "SandboxID", "SandboxKey") == \
            _without(_settings_shape(theirs), "SandboxID", "SandboxKey")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "network",
                                                        "inspect", mode))
        assert _network_shape(ours) == _network_shape(theirs)
    finally:
        for docker in (dockerd.docker, engine.docker):
            try:
                docker("rm", "-f", "lbq-m")
            except AssertionError:
                pass


def test_a_shared_namespace_matches_docker(dockerd: Dockerd, engine: Longboatd) -> None:
    try:
        _both(dockerd, engine, "network", "create", *PLAIN, "lbq-net")
        _both(dockerd, engine, "run", "-d", "--name", "lbq-x", "--network", "lbq-net",
              "--hostname", "lbqx", "bb:0", "sleep", "600")
        _both(dockerd, engine, "run", "-d", "--name", "lbq-y", "--network",
              "container:lbq-x", "bb:0", "sleep", "600")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-y"))
        assert _settings_shape(ours) == _settings_shape(theirs)
        # (dockerd also copies X's name into Config.Hostname; we keep Y's config as
        # created and use X's name at start)
        assert theirs["Config"]["Hostname"] == "lbqx"
        assert ours["HostConfig"]["NetworkMode"].startswith("container:")
        assert theirs["HostConfig"]["NetworkMode"].startswith("container:")
        theirs, ours = _both(dockerd, engine, "exec", "lbq-y", "sh", "-c",
                             "cat /etc/hosts /etc/resolv.conf /etc/hostname; hostname")
        assert ours == theirs
    finally:
        for docker in (dockerd.docker, engine.docker):
            for args in (["rm", "-f", "lbq-y", "lbq-x"], ["network", "rm", "lbq-net"]):
                try:
                    docker(*args)
                except AssertionError:
                    pass
