"""The engine's networks check everything that reaches the firewall before anything
changes, without relying on the API's checks (called in-process here): an unparsable
or zoned address, a bridge name nft or the kernel would not take, are InvalidArgument
(400) with no record, pool or link left; a create whose firewall apply fails is undone;
a bad record an older engine stored is left out of the firewall instead of stopping
every apply. The engine's "host" is a network namespace of the test's own."""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longboat.engine import firewall
from longboat.engine.config import Settings
from longboat.engine.engine import Engine
from longboat.errors import InvalidArgument, SystemFault
from longboat.network import links, netns, nftables  # noqa: F401 (imported before threads)

pytestmark = pytest.mark.integration


class Host:
    def __init__(self, tmp_path: Path) -> None:
        self.ns = str(tmp_path / "netns" / "lbo-net")
        self.settings = Settings()
        self.settings.data_root = str(tmp_path / "data")
        self.settings.exec_root = str(tmp_path / "run")
        self.settings.bridge = "none"
        netns.create(self.ns)

    def engine(self) -> Engine:
        engine: Engine = netns.run_in(self.ns, lambda: Engine(self.settings))
        netns.run_in(self.ns, engine.networks.ensure_predefined)
        return engine

    def run(self, *argv: str) -> str:
        return subprocess.run(["nsenter", f"--net={self.ns}", *argv], check=True,
                              capture_output=True, text=True).stdout

    def links(self) -> set[str]:
        return {line.split(":")[1].strip().split("@")[0]
                for line in self.run("ip", "-o", "link").splitlines()}

    def state(self, engine: Engine) -> tuple[set[str], set[str], str]:
        ipam = Path(engine.networks.ipam.path)
        return (set(os.listdir(engine.networks.records)), self.links(),
                ipam.read_text() if ipam.exists() else "")

    def remove(self) -> None:
        netns.remove(self.ns)     # its links and nftables table go with it


@pytest.fixture
def host(tmp_path: Path) -> Iterator[Host]:
    h = Host(tmp_path)
    try:
        yield h
    finally:
        h.remove()


def _create(host: Host, engine: Engine, body: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = netns.run_in(host.ns, lambda: engine.networks.create(body))
    return result


BAD: dict[str, dict[str, Any]] = {
    "unparsable subnet": {"IPAM": {"Config": [{"Subnet": "garbage"}]}},
    "subnet with a zone": {"EnableIPv6": True,
                           "IPAM": {"Config": [{"Subnet": "fd00:1::/64%x; flush ruleset"}]}},
    "gateway with a zone": {"IPAM": {"Config": [{"Subnet": "fd00:2::/64",
                                                 "Gateway": "fd00:2::1%eth0"}]}},
    "range not a CIDR": {"IPAM": {"Config": [{"Subnet": "10.91.0.0/16",
                                              "IPRange": "10.91.0.0/99"}]}},
    "aux with a zone": {"IPAM": {"Config": [{"Subnet": "fd00:3::/64", "AuxiliaryAddresses":
                                             {"a": "fd00:3::5%x"}}]}},
    "config-only garbage": {"ConfigOnly": True, "IPAM": {"Config": [{"Subnet": "x/y"}]}},
    "bridge name with ;": {"Options": {"com.docker.network.bridge.name": "lbo;x"}},
    "bridge name with space": {"Options": {"com.docker.network.bridge.name": "lbo x"}},
    "bridge name ..": {"Options": {"com.docker.network.bridge.name": ".."}},
    "ConfigFrom not an object": {"ConfigFrom": "lbo-base"},
}


def test_values_the_firewall_would_refuse_are_400_and_change_nothing(host: Host) -> None:
    engine = host.engine()
    before = host.state(engine)
    for what, body in BAD.items():
        with pytest.raises(InvalidArgument) as caught:
            _create(host, engine, dict(body, Name="lbo-bad"))
        assert caught.value.status == 400, what
        assert host.state(engine) == before, what
    # and the engine still works: a good network, its firewall
    created = _create(host, engine, {"Name": "lbo-good"})
    netns.run_in(host.ns, engine.networks.apply_firewall)
    bridge = f"br-{created['Id'][:12]}"
    assert bridge in host.links()
    assert bridge in host.run("nft", "list", "table", "inet", firewall.table_name(engine))


def test_a_create_whose_firewall_fails_is_undone(host: Host,
                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    engine = host.engine()
    _create(host, engine, {"Name": "lbo-first"})
    before = host.state(engine)
    real = firewall.apply

    def failing(eng: Engine, networks: list[Any]) -> None:
        if any(n.name == "lbo-second" for n in networks):
            raise SystemFault("nftables refused the ruleset: lbo test")
        real(eng, networks)

    monkeypatch.setattr(firewall, "apply", failing)
    with pytest.raises(SystemFault):
        _create(host, engine, {"Name": "lbo-second"})
    assert host.state(engine) == before
    assert engine.networks.by_name("lbo-second") is None


def test_a_bad_record_from_an_older_engine_does_not_stop_the_firewall(host: Host) -> None:
    engine = host.engine()
    good = _create(host, engine, {"Name": "lbo-ok"})
    bad = _create(host, engine, {"Name": "lbo-old"})
    path = Path(engine.networks.records) / f"{bad['Id']}.json"
    record = json.loads(path.read_text())
    record["Options"]["com.docker.network.bridge.name"] = "lbo;old"   # as stored before
    path.write_text(json.dumps(record))
    again = host.engine()           # a restarted engine reads the records
    netns.run_in(host.ns, again.networks.apply_firewall)
    table = host.run("nft", "list", "table", "inet", firewall.table_name(again))
    assert f"br-{good['Id'][:12]}" in table
    assert "lbo;old" not in table
    # and networks are still created (and reach the firewall) next to it
    later = _create(host, again, {"Name": "lbo-later"})
    table = host.run("nft", "list", "table", "inet", firewall.table_name(again))
    assert f"br-{later['Id'][:12]}" in table
