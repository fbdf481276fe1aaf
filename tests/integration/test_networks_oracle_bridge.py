"""The default bridge checked against a real Docker 20.10 with its own ``docker0`` (in a
namespace of its own, ``Dockerd(bridge=True)``), given the same commands through the
same 20.10 client: the ``bridge`` network's inspect, a container's NetworkSettings on
it with published ports, and legacy ``--link`` (the /etc/hosts entry and the link
environment variables). Both engines' default bridges get 172.17.0.0/16 in their fresh
namespaces, so the addresses match too."""

from __future__ import annotations

import json
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.integration.test_networks_oracle import _both, _network_shape, _settings_shape
from tests.support.dockerd import Dockerd, install_docker
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
            ) -> Iterator[Dockerd]:
    reason = install_docker()
    if reason:
        pytest.skip(f"no Docker engine to test against: {reason}")
    daemon = Dockerd(tmp_path_factory.mktemp("dockerd-bridge"), bridge=True)
    try:
        try:
            daemon.start()
        except RuntimeError as exc:
            pytest.skip(f"dockerd cannot start here: {exc}")
        image = tmp_path_factory.mktemp("image") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        daemon.docker("import", str(image), "bb:0")
        # lo up in its namespace, as on a host (for 127.0.0.1 bindings)
        subprocess.run(["nsenter", f"--net=/proc/{daemon.pid}/ns/net", "ip", "link", "set",
                        "lo", "up"], check=True)
        yield daemon
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbq-oracle-bridge"), rootfs_template,
                        name="bb:0", netns=True) as daemon:
        yield daemon


def _bridge_shape(doc: dict[str, Any]) -> dict[str, Any]:
    shape = _network_shape(doc)
    options = dict(shape["Options"])
    options.pop("com.docker.network.bridge.name")     # docker0 / longboat0
    shape["Options"] = options
    return shape


def _remove(dockerd: Dockerd, engine: Longboatd, *names: str) -> None:
    for docker in (dockerd.docker, engine.docker):
        try:
            docker("rm", "-f", *names)
        except AssertionError:
            pass


def test_the_bridge_network_and_a_container_on_it(dockerd: Dockerd, engine: Longboatd
                                                  ) -> None:
    try:
        _both(dockerd, engine, "run", "-d", "--name", "lbq-b", "-p", "18100:80", "-p",
              "127.0.0.1:18101:81/udp", "--expose", "82", "bb:0", "sleep", "600")
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "network",
                                                        "inspect", "bridge"))
        assert _bridge_shape(ours) == _bridge_shape(theirs)
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-b"))
        assert _settings_shape(ours) == _settings_shape(theirs)
        assert ours["NetworkSettings"]["IPAddress"] == theirs["NetworkSettings"]["IPAddress"]
        theirs, ours = _both(dockerd, engine, "ps", "--filter", "name=lbq-b", "--format",
                             "{{.Ports}}")
        assert ours == theirs
    finally:
        _remove(dockerd, engine, "lbq-b")


def test_legacy_links(dockerd: Dockerd, engine: Longboatd) -> None:
    try:
        _both(dockerd, engine, "run", "-d", "--name", "lbq-db", "--hostname", "dbhost",
              "-e", "LBQ_MODE=primary", "--expose", "5432", "--expose", "7000-7002/udp",
              "--expose", "9000-9001", "bb:0", "sleep", "600")
        theirs, ours = _both(dockerd, engine, "run", "--rm", "--name", "lbq-app",
                             "--hostname", "apphost", "--link", "lbq-db:lbq-db-alias",
                             "--link", "lbq-db", "-e", "LBQ_DB_ALIAS_NAME=mine", "bb:0",
                             "sh", "-c", "cat /etc/hosts; echo ==; env | sort")
        # (dockerd writes the links' lines in Go's map order: random)
        assert sorted(ours.splitlines()) == sorted(theirs.splitlines()), (ours, theirs)
        theirs, ours = (json.loads(t)[0] for t in _both(dockerd, engine, "inspect",
                                                        "lbq-db"))
        assert _settings_shape(ours) == _settings_shape(theirs)
    finally:
        _remove(dockerd, engine, "lbq-db", "lbq-app")


@pytest.mark.parametrize("flags", [
    [], ["--dns", "10.215.40.53", "--dns-search", "lbq.example", "--dns-option", "ndots:3"],
    ["--add-host", "lbq-gw:host-gateway", "--domainname", "lbq.example"],
], ids=["plain", "dns-flags", "host-gateway"])
def test_etc_files_on_the_default_bridge(dockerd: Dockerd, engine: Longboatd,
                                         flags: list[str]) -> None:
    theirs, ours = _both(dockerd, engine, "run", "--rm", "--hostname", "lbqh", *flags,
                         "bb:0", "sh", "-c", "cat /etc/hosts; echo ==; cat /etc/resolv.conf;"
                         " echo ==; cat /etc/hostname")
    assert ours == theirs


def test_bad_input_on_the_default_bridge(dockerd: Dockerd, engine: Longboatd) -> None:
    from tests.integration.test_networks_oracle import _stderr

    def ours(*args: str) -> Any:
        return dockerd.docker(*args, env={**dockerd.env, "DOCKER_HOST": engine.host})

    cases = [
        ["run", "-d", "--ip", "172.17.0.50", "bb:0", "true"],
        ["run", "-d", "--network-alias", "lbqx", "bb:0", "true"],
        ["run", "-d", "--link", "lbq-nosuch:x", "bb:0", "true"],
        ["run", "-d", "--link", "lbq-stopped:x", "bb:0", "true"],
        ["run", "-d", "-p", "18102:80", "bb:0", "true"],
        ["run", "-d", "--network", "host", "--link", "lbq-up:x", "bb:0", "true"],
        ["run", "-d", "--network", "none", "-p", "18103:80", "--name", "lbq-none", "bb:0",
         "true"],
    ]
    try:
        for docker in (dockerd.docker, ours):
            docker("create", "--name", "lbq-stopped", "bb:0", "true")
            docker("run", "-d", "--name", "lbq-up", "-p", "18102:80", "bb:0", "sleep",
                   "600")
        differences = []
        for args in cases:
            theirs, mine = _stderr(dockerd.docker, *args), _stderr(ours, *args)
            # deliberate: a fixed host port taken is refused at create (dockerd fails the
            # start, naming the endpoint); the client's "Error waiting for container"
            # line for a failed start is the wait endpoint's (not networking's)
            if "already allocated" in theirs and theirs.endswith(mine.split(": ", 1)[1]):
                continue
            if _last(theirs) != _last(mine):
                differences.append((args, theirs, mine))
        assert not differences, "\n".join(f"{a}\n  docker: {t!r}\n  ours:   {m!r}"
                                          for a, t, m in differences)
    finally:
        _remove(dockerd, engine, "lbq-stopped", "lbq-up", "lbq-none")


def _last(text: str) -> str:
    """An error's last line, with the random name docker gave the container out."""
    import re

    lines = [x for x in text.strip().splitlines() if not x.startswith('time="')]
    line = (lines or [""])[-1].removeprefix("docker: ")
    return re.sub(r" AS /[a-z]+_[a-z]+/", " AS /<name>/", line)
