"""Security review of the network API: nothing a caller gives may reach the nftables
script unvalidated (an injection there is a root-level firewall change), and a refused
create changes nothing (no record, no link, no pool, and the firewall still applies for
everyone afterwards). Every field that reaches the ruleset is tried: the bridge name,
IPAM subnets, gateways, ranges and auxiliary addresses (IPv6 scope IDs carry any text
through Python's ``ipaddress``), published ports' host addresses; names and labels,
which never reach it, are tried too. The engine runs in a namespace of its own."""

from __future__ import annotations

import http.client
import json
import os
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

MARK = "lbsinjected"
INJECTIONS = [f'"; add table inet {MARK}; "', f"\nadd table inet {MARK}\n",
              f"}}\nadd table inet {MARK}\n{{", f"# {MARK}", f"lbs {MARK}"]


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbs-net"), rootfs_template,
                        "--change", 'CMD ["sh"]', netns=True) as daemon:
        yield daemon


class _Unix(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=60)
        self.unix_path = path

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.connect(self.unix_path)
        self.sock = sock


def api(engine: Longboatd, method: str, path: str, body: Any = None) -> tuple[int, Any]:
    conn = _Unix(str(engine.socket))
    try:
        data = json.dumps(body).encode() if body is not None else None
        conn.request(method, "/v1.41" + path, body=data,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        raw = response.read()
        return response.status, json.loads(raw) if raw else None
    finally:
        conn.close()


def ruleset(engine: Longboatd) -> str:
    return engine.run_in_netns(["nft", "list", "ruleset"]).stdout


def links(engine: Longboatd) -> set[str]:
    out = engine.run_in_netns(["ip", "-o", "link"]).stdout
    return {line.split(":")[1].strip().split("@")[0] for line in out.splitlines()}


def records(engine: Longboatd) -> set[str]:
    return set(os.listdir(engine.data_root / "network" / "networks"))


def state(engine: Longboatd) -> tuple[set[str], set[str], str]:
    ipam = (engine.data_root / "network" / "ipam.json").read_text() if \
        (engine.data_root / "network" / "ipam.json").exists() else ""
    return records(engine), links(engine), ipam


def assert_firewall_works(engine: Longboatd) -> None:
    """The table applies for a fresh network (nothing stored poisons the next apply),
    and no injected text reached the kernel."""
    status, made = api(engine, "POST", "/networks/create",
                       {"Name": "lbs-good", "Options": {
                           "com.docker.network.bridge.name": "lbs-good0"}})
    assert status == 201, made
    try:
        rules = ruleset(engine)
        assert '"lbs-good0"' in rules
        assert MARK not in rules
    finally:
        status, _ = api(engine, "DELETE", "/networks/lbs-good")
        assert status == 204
    assert "lbs-good0" not in links(engine)


def refused(engine: Longboatd, body: dict[str, Any]) -> None:
    before = state(engine)
    status, reply = api(engine, "POST", "/networks/create", body)
    assert status == 400, (status, reply)
    assert isinstance(reply, dict) and reply.get("message")
    assert state(engine) == before


BRIDGE = "com.docker.network.bridge.name"


@pytest.mark.parametrize("bridge", [
    'lbs"x', "lbs;x", "lbs x", "lbs\nx", "lbs{x", "lbs}x", "lbs#x", "lbs%x", "lbs\\x",
    "lbs/x", "lbs:x", ".", "..", "lbs-" + "x" * 12, "lbs\tx", "lbs\0x",
    *[i[:15] for i in INJECTIONS]])
def test_bridge_names_that_nft_or_the_kernel_would_not_take_are_refused(
        engine: Longboatd, bridge: str) -> None:
    refused(engine, {"Name": "lbs-bad", "Options": {BRIDGE: bridge}})
    assert_firewall_works(engine)


@pytest.mark.parametrize("field, value", [
    ("Subnet", "fd00:5::%x\nadd table inet lbsinjected/64"),
    ("Subnet", 'fd00:5::%x"/64'),
    ("Subnet", "fd00:5::%x/64"),
    ("Gateway", "fd00:5::1%x\nadd table inet lbsinjected"),
    ("IPRange", "fd00:5::%x\nadd table inet lbsinjected/80"),
    ("Subnet", "10.231.0.0/24\nadd table inet lbsinjected"),
    ("Subnet", "10.231.0.0/24 lbsinjected"),
    ("Gateway", "10.231.0.1 lbsinjected"),
])
def test_ipam_values_with_text_are_refused(engine: Longboatd, field: str, value: str
                                           ) -> None:
    config = {"Subnet": "fd00:5::/64", field: value} if field != "Subnet" or ":" in value \
        else {"Subnet": value}
    body = {"Name": "lbs-ipam", "EnableIPv6": True,
            "IPAM": {"Config": [{"Subnet": "10.231.0.0/24"}, config]}}
    if ":" not in value:
        body = {"Name": "lbs-ipam", "IPAM": {"Config": [
            {"Subnet": "10.231.0.0/24", **({field: value} if field != "Subnet" else
                                           {"Subnet": value})}]}}
    refused(engine, body)
    assert_firewall_works(engine)


def test_auxiliary_addresses_with_a_scope_are_refused(engine: Longboatd) -> None:
    refused(engine, {"Name": "lbs-aux", "EnableIPv6": True, "IPAM": {"Config": [
        {"Subnet": "fd00:6::/64",
         "AuxiliaryAddresses": {"r": "fd00:6::9%x\nadd table inet lbsinjected"}}]}})
    assert_firewall_works(engine)


@pytest.mark.parametrize("name", ["../lbs-up", "lbs/../../x", "lbs\nnew", "lbs;flush",
                                  'lbs"q', "lbs-" + "n" * 5000])
def test_hostile_network_names_stay_names(engine: Longboatd, name: str) -> None:
    """Names never reach a path or the ruleset: whatever the API decides about them,
    records stay ``<id>.json`` in their directory and the firewall is intact."""
    status, reply = api(engine, "POST", "/networks/create", {"Name": name})
    if status == 201:
        assert records(engine) >= {reply["Id"] + ".json"}
        status, view = api(engine, "GET", "/networks/" + reply["Id"])
        assert status == 200 and view["Name"] == name
        assert MARK not in ruleset(engine)
        status, _ = api(engine, "DELETE", "/networks/" + reply["Id"])
        assert status == 204
    else:
        assert status == 400, reply
    assert all(r.endswith(".json") and "/" not in r for r in records(engine))
    assert not (engine.data_root / "network" / "lbs-up").exists()
    assert_firewall_works(engine)


def test_labels_and_other_options_never_reach_the_ruleset(engine: Longboatd) -> None:
    status, reply = api(engine, "POST", "/networks/create", {
        "Name": "lbs-labels", "Labels": {f"k{i}": v for i, v in enumerate(INJECTIONS)},
        "Options": {"com.docker.network.bridge.enable_icc": "false",
                    f"lbs.{MARK}": INJECTIONS[1]}})
    assert status == 201, reply
    try:
        assert MARK not in ruleset(engine)
    finally:
        assert api(engine, "DELETE", "/networks/lbs-labels")[0] == 204
    for key in ("com.docker.network.bridge.enable_icc",
                "com.docker.network.bridge.enable_ip_masquerade",
                "com.docker.network.driver.mtu"):
        refused(engine, {"Name": "lbs-opt", "Options": {key: INJECTIONS[1]}})


@pytest.mark.parametrize("host_ip", ["fe80::1%x\nadd table inet lbsinjected",
                                     'fd00:7::1%x"', "127.0.0.1 lbsinjected",
                                     "::%lo"])
def test_published_host_addresses_with_text_are_refused(engine: Longboatd, host_ip: str
                                                        ) -> None:
    status, reply = api(engine, "POST", "/containers/create?name=lbs-port", {
        "Image": "bb:1", "Cmd": ["sleep", "30"], "ExposedPorts": {"80/tcp": {}},
        "HostConfig": {"PortBindings": {"80/tcp": [{"HostIp": host_ip,
                                                    "HostPort": "8080"}]}}})
    if status == 201:
        api(engine, "DELETE", "/containers/lbs-port?force=1")
    assert status == 400, reply
    assert_firewall_works(engine)


@pytest.mark.parametrize("parent", ['lo"', "lo;x", "lo\nadd table inet lbsinjected",
                                    "../lo"])
def test_macvlan_parents_with_text_are_refused(engine: Longboatd, parent: str) -> None:
    before = state(engine)
    status, reply = api(engine, "POST", "/networks/create", {
        "Name": "lbs-mv", "Driver": "macvlan", "Options": {"parent": parent}})
    assert status in (400, 404), reply
    assert state(engine) == before
    assert_firewall_works(engine)


def test_endpoint_addresses_with_a_zone_are_refused(engine: Longboatd) -> None:
    status, made = api(engine, "POST", "/networks/create", {
        "Name": "lbs-v6", "EnableIPv6": True, "Options": {BRIDGE: "lbs-v6"},
        "IPAM": {"Config": [{"Subnet": "10.232.0.0/24"}, {"Subnet": "fd00:8::/64"}]}})
    assert status == 201, made
    try:
        zoned = 'fd00:8::9%x"\nadd table inet lbsinjected'
        status, reply = api(engine, "POST", "/containers/create?name=lbs-ep", {
            "Image": "bb:1", "Cmd": ["sleep", "30"], "HostConfig": {"NetworkMode": "lbs-v6"},
            "NetworkingConfig": {"EndpointsConfig": {"lbs-v6": {
                "IPAMConfig": {"IPv6Address": zoned}}}}})
        if status == 201:
            status, reply = api(engine, "POST", "/containers/lbs-ep/start")
            api(engine, "DELETE", "/containers/lbs-ep?force=1")
        assert status >= 400, reply
        status, reply = api(engine, "POST", "/containers/create?name=lbs-ep", {
            "Image": "bb:1", "Cmd": ["sleep", "30"], "HostConfig": {"NetworkMode": "none"}})
        assert status == 201, reply
        try:
            status, reply = api(engine, "POST", "/networks/lbs-v6/connect", {
                "Container": "lbs-ep", "EndpointConfig": {"IPAMConfig": {
                    "IPv6Address": zoned}}})
            assert status == 400, reply
        finally:
            api(engine, "DELETE", "/containers/lbs-ep?force=1")
        assert MARK not in ruleset(engine)
    finally:
        assert api(engine, "DELETE", "/networks/lbs-v6")[0] == 204
    assert_firewall_works(engine)


def test_json_nested_past_the_decoder_is_a_400(engine: Longboatd) -> None:
    conn = _Unix(str(engine.socket))
    try:
        body = b"[" * 100_000 + b"]" * 100_000
        conn.request("POST", "/v1.41/networks/create", body=body,
                     headers={"Content-Type": "application/json"})
        response = conn.getresponse()
        assert response.status == 400, response.read()
        response.read()
    finally:
        conn.close()
    assert_firewall_works(engine)
