"""Networking off the critical path of ``run``, invisibly.

At start, the endpoints join the container's namespace while the runtime creates the
container: they are there when its process starts, and sysctls naming its interfaces
still apply. At exit, the kernel side (deleting the veth pair, the namespace file,
giving its addresses back) is left to a background thread: nothing of that may show.
Back-to-back runs with the same fixed address, a network removed right after its last
container, a container started again at once, inspect right after a stop; and a
container without published ports leaves the nftables table alone."""

from __future__ import annotations

import json
import os
import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    work = tmp_path_factory.mktemp("lbp-teardown")
    with busybox_engine(work, rootfs_template, netns=True) as daemon:
        yield daemon


def _links(engine: Longboatd) -> list[str]:
    out = engine.run_in_netns(["ip", "-o", "link", "show"]).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def _table_handles(engine: Longboatd) -> str:
    """The table with its rule handles: a rebuilt table has new ones."""
    tables = engine.run_in_netns(["nft", "list", "tables"]).stdout.split()
    name = next(t for t in tables if t.startswith("longboat"))
    return engine.run_in_netns(["nft", "-a", "list", "table", "inet", name]).stdout


def test_back_to_back_runs_with_a_fixed_address(engine: Longboatd) -> None:
    engine.docker("network", "create", "--subnet", "10.242.0.0/24", "lbp-fixed")
    try:
        for _ in range(3):
            out = engine.docker("run", "--rm", "--network", "lbp-fixed", "--ip",
                                "10.242.0.50", "bb:1", "ip", "-4", "-o", "addr", "show",
                                "eth0").stdout
            assert "10.242.0.50/24" in out
    finally:
        engine.docker("network", "rm", "lbp-fixed")


def test_network_removed_right_after_its_last_container(engine: Longboatd) -> None:
    for i in range(3):
        engine.docker("network", "create", f"lbp-gone{i}")
        engine.docker("run", "--rm", "--network", f"lbp-gone{i}", "bb:1", "true")
        engine.docker("network", "rm", f"lbp-gone{i}")
    links = _links(engine)
    assert not [name for name in links if name.startswith("br-")], links


def test_started_again_at_once_and_inspect_after_stop(engine: Longboatd) -> None:
    engine.docker("network", "create", "lbp-again")
    try:
        engine.docker("run", "-d", "--name", "lbp-c", "--network", "lbp-again", "bb:1",
                      "sleep", "600")
        for _ in range(2):
            engine.docker("stop", "-t", "0", "lbp-c")
            network = json.loads(engine.docker("network", "inspect", "lbp-again").stdout)[0]
            assert network["Containers"] == {}
            settings = json.loads(engine.docker("inspect", "lbp-c").stdout)[0][
                "NetworkSettings"]
            assert settings["Networks"]["lbp-again"]["IPAddress"] == ""
            assert settings["SandboxKey"] == ""
            engine.docker("start", "lbp-c")
            out = engine.docker("exec", "lbp-c", "ip", "-4", "-o", "addr", "show",
                                "eth0").stdout
            assert "inet " in out
        engine.docker("restart", "-t", "0", "lbp-c")
        engine.docker("rm", "-f", "lbp-c")
    finally:
        engine.docker("rm", "-f", "lbp-c", check=False)
        engine.docker("network", "rm", "lbp-again")


def test_veths_go_soon_after_the_exit(engine: Longboatd) -> None:
    before = _links(engine)
    for _ in range(3):
        engine.docker("run", "--rm", "bb:1", "true")
    netns_dir = engine.exec_root / "netns"

    def settled() -> bool:
        return _links(engine) == before and (not netns_dir.exists() or
                                             list(netns_dir.iterdir()) == [])

    deadline = time.monotonic() + 5
    while not settled() and time.monotonic() < deadline:
        time.sleep(0.05)
    assert _links(engine) == before
    assert not netns_dir.exists() or list(netns_dir.iterdir()) == []


def test_no_table_rebuild_without_published_ports(engine: Longboatd) -> None:
    engine.docker("run", "--rm", "bb:1", "true")
    before = _table_handles(engine)
    engine.docker("run", "--rm", "bb:1", "true")
    assert _table_handles(engine) == before
    engine.docker("run", "--rm", "-p", "18300:80", "bb:1", "true")
    after = _table_handles(engine)
    assert after != before
    assert "18300" not in after


def test_endpoints_are_there_when_the_process_starts(engine: Longboatd) -> None:
    out = engine.docker("run", "--rm", "bb:1", "sh", "-c",
                        "ip -4 -o addr show eth0; ip route; cat /etc/hosts").stdout
    assert "inet 172." in out and "default via" in out
    address = out.split("inet ")[1].split("/")[0]
    assert address in out.split("default via")[1]      # /etc/hosts names it


def test_sysctls_naming_the_interface_apply(engine: Longboatd) -> None:
    out = engine.docker("run", "--rm", "--sysctl", "net.ipv4.conf.eth0.rp_filter=2",
                        "bb:1", "cat", "/proc/sys/net/ipv4/conf/eth0/rp_filter").stdout
    assert out.strip() == "2"


def test_a_teardown_left_half_done_is_finished_at_the_next_start(
        tmp_path: Path, rootfs_template: Path) -> None:
    """The engine dies after an exit moved the endpoint to the network's ``_leaving``
    (records) but before its thread undid the kernel side: the next engine does it."""
    with busybox_engine(tmp_path, rootfs_template, netns=True) as engine:
        engine.docker("network", "create", "--subnet", "10.243.0.0/24", "lbp-crash")
        engine.docker("run", "-d", "--name", "lbp-c", "--network", "lbp-crash",
                      "--ip", "10.243.0.9", "bb:1", "sleep", "600")
        info = json.loads(engine.docker("inspect", "lbp-c").stdout)[0]
        network_id = json.loads(engine.docker("network", "inspect", "lbp-crash").stdout
                                )[0]["Id"]
        assert engine.process is not None
        engine.process.kill()
        engine.process.wait()
        os.kill(info["State"]["Pid"], signal.SIGKILL)    # exits while no engine runs
        # what teardown writes before it hands the kernel side to its thread
        record = engine.data_root / "network" / "networks" / f"{network_id}.json"
        data = json.loads(record.read_text())
        endpoint = data["_endpoints"].pop(info["Id"])
        data["_leaving"] = {info["Id"]: dict(endpoint, Netns=info["NetworkSettings"][
            "SandboxKey"])}
        record.write_text(json.dumps(data))
        assert endpoint["HostIfname"] in _links(engine)
        engine.socket.unlink()      # the dead engine's: start() waits for a new one
        engine.start()
        deadline = time.monotonic() + 5
        while endpoint["HostIfname"] in _links(engine) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert endpoint["HostIfname"] not in _links(engine)
        assert "_leaving" not in json.loads(record.read_text())
        engine.docker("rm", "lbp-c")
        # the address went back: another container gets it
        engine.docker("run", "--rm", "--network", "lbp-crash", "--ip", "10.243.0.9",
                      "bb:1", "true")
        engine.docker("network", "rm", "lbp-crash")
