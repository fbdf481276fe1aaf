"""The nftables renderer is the last line: whatever reaches it, every field that is
written into the script is either refused (``InvalidArgument``) or carries no text of
its own. Each field of the model is tried with injection attempts (quotes, newlines,
``;``, braces, comments, and IPv6 zones, which Python's ipaddress keeps verbatim)."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from longboat.errors import InvalidArgument
from longboat.network.nftables import BridgeNetwork, PublishedPort, Ruleset, render

pytestmark = pytest.mark.unit

MARK = "lbsinjected"
TEXTS = ['"; add table inet lbsinjected; "', "\nadd table inet lbsinjected\n",
         "} add table inet lbsinjected {", "# lbsinjected", "x lbsinjected",
         "x\tlbsinjected"]   # (a plain valid name is a name: only text beyond one is looked for)
ADDRESS_TEXTS = [f"fd00::1%{t}" for t in TEXTS] + [f"10.0.0.2 {MARK}", f"10.0.0.2\n{MARK}",
                                                   f"::ffff:10.0.0.2%{MARK}"]
SUBNET_TEXTS = [f"fd00::%{t}/64" for t in TEXTS if "/" not in t] + [
    f"10.1.0.0/24 {MARK}", f"10.1.0.0/24\n{MARK}", f"fd00::/64%{MARK}"]

NETWORK = BridgeNetwork("lbs0", ("10.1.0.0/24", "fd00::/64"), icc=False)
PORTS = [PublishedPort("tcp", "", 8080, "10.1.0.2", 80, "lbs0"),
         PublishedPort("tcp", "::1", 8081, "fd00::2", 80, "lbs0")]


def _assert_safe(ruleset: Ruleset, **kwargs: Any) -> None:
    try:
        script = render(ruleset, **kwargs)
    except InvalidArgument:
        return
    assert MARK not in script, script


def test_the_model_itself_renders() -> None:
    script = render(Ruleset([NETWORK], PORTS), br_netfilter=frozenset())
    assert '"lbs0"' in script and "dnat ip6 to [fd00::2]:80" in script


@pytest.mark.parametrize("text", TEXTS + [t[:15] for t in TEXTS])
def test_interface_names(text: str) -> None:
    _assert_safe(Ruleset([dataclasses.replace(NETWORK, ifname=text)]))
    _assert_safe(Ruleset([NETWORK], [dataclasses.replace(PORTS[0], ifname=text)]))


@pytest.mark.parametrize("text", SUBNET_TEXTS)
def test_subnets(text: str) -> None:
    for icc in (True, False):
        _assert_safe(Ruleset([dataclasses.replace(NETWORK, subnets=(text,), icc=icc)]))


@pytest.mark.parametrize("text", ADDRESS_TEXTS)
def test_published_addresses(text: str) -> None:
    for port in PORTS:
        _assert_safe(Ruleset([NETWORK], [dataclasses.replace(port, host_ip=text)]))
        _assert_safe(Ruleset([NETWORK], [dataclasses.replace(port, container_ip=text)]))


@pytest.mark.parametrize("text", [*TEXTS, "TCP", "tcp "])
def test_protocols(text: str) -> None:
    _assert_safe(Ruleset([NETWORK], [dataclasses.replace(PORTS[0], proto=text)]))


@pytest.mark.parametrize("value", [0, -1, 65536, True, "80", "80; drop", 1.5])
def test_port_numbers(value: Any) -> None:
    for field in ("host_port", "container_port"):
        _assert_safe(Ruleset([NETWORK], [dataclasses.replace(PORTS[0], **{field: value})]))


@pytest.mark.parametrize("text", [*TEXTS, "", "1abc", "a" * 70])
def test_table_names(text: str) -> None:
    _assert_safe(Ruleset([NETWORK], PORTS), name=text)
