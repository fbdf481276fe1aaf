"""Rendering the NAT and isolation model to an nft script (no kernel: the script is
checked as text; tests/integration/test_net_kernel.py sends traffic through it)."""

from __future__ import annotations

import pytest

from longboat.errors import InvalidArgument
from longboat.network.nftables import BridgeNetwork, PublishedPort, Ruleset, render

pytestmark = pytest.mark.unit

BR0 = BridgeNetwork("lb0", ("172.17.0.0/16", "fd00:17::/64"))
BR1 = BridgeNetwork("lb1", ("172.18.0.0/16",))


def chain(script: str, name: str, table: str = "inet longboat") -> list[str]:
    """The rules of one chain of one table's definition in the script."""
    body = script.split(f"table {table} {{\n", 1)[1]
    block = body.split(f"\tchain {name} {{\n", 1)[1].split("\n\t}", 1)[0]
    return [line.strip() for line in block.splitlines()]


def test_one_transaction_replaces_the_table() -> None:
    script = render(Ruleset([BR0]), "engine1")
    lines = script.splitlines()
    # create-if-missing, delete, define: one buffer, so one atomic transaction
    assert lines[:3] == ["table inet engine1", "delete table inet engine1",
                         "table inet engine1 {"]
    assert "table bridge engine1\ndelete table bridge engine1\n" in script
    assert "table bridge engine1 {" not in script   # only icc=false needs it


def test_masquerade_out_of_each_bridge_and_hairpin() -> None:
    rules = chain(render(Ruleset([BR0, BR1])), "postrouting")
    assert 'oifname != "lb0" ip saddr 172.17.0.0/16 masquerade' in rules
    # IPv6 is not NATed on the way out (Docker 20.10 without ip6tables), hairpin is
    assert 'oifname != "lb0" ip6 saddr fd00:17::/64 masquerade' not in rules
    assert ('oifname "lb0" ip6 saddr fd00:17::/64 ip6 daddr fd00:17::/64 '
            'ct status dnat masquerade') in rules
    assert 'oifname != "lb1" ip saddr 172.18.0.0/16 masquerade' in rules
    assert ('oifname "lb0" ip saddr 172.17.0.0/16 ip daddr 172.17.0.0/16 '
            'ct status dnat masquerade') in rules
    assert 'oifname "lb0" ip saddr 127.0.0.0/8 masquerade' in rules


def test_no_masquerade_when_turned_off() -> None:
    quiet = BridgeNetwork("lb2", ("10.0.0.0/24",), masquerade=False)
    rules = chain(render(Ruleset([quiet])), "postrouting")
    assert not any("oifname !=" in rule for rule in rules)


def test_published_ports_dnat_from_everywhere_and_from_one_address() -> None:
    ports = [PublishedPort("tcp", "", 8080, "172.17.0.2", 80, "lb0"),
             PublishedPort("udp", "0.0.0.0", 53, "172.17.0.2", 5353, "lb0"),
             PublishedPort("tcp", "192.0.2.7", 8443, "172.17.0.3", 443, "lb0"),
             PublishedPort("tcp", "::", 8080, "fd00:17::2", 80, "lb0")]
    script = render(Ruleset([BR0], ports))
    assert chain(script, "publish") == [
        "meta nfproto ipv4 tcp dport 8080 dnat ip to 172.17.0.2:80",
        "meta nfproto ipv4 udp dport 53 dnat ip to 172.17.0.2:5353",
        "ip daddr 192.0.2.7 tcp dport 8443 dnat ip to 172.17.0.3:443",
        "meta nfproto ipv6 tcp dport 8080 dnat ip6 to [fd00:17::2]:80",
    ]
    # reached from other hosts (prerouting) and from the host itself (output)
    assert "fib daddr type local jump publish" in chain(script, "prerouting")
    assert chain(script, "output")[1:] == ["ip6 daddr ::1 return",
                                           "fib daddr type local jump publish"]


def test_forwarding_isolation_and_internal_networks() -> None:
    internal = BridgeNetwork("lb9", ("10.9.0.0/24",), internal=True)
    script = render(Ruleset([BR0, BR1, internal]))
    rules = chain(script, "forward")
    assert rules[0] == "type filter hook forward priority filter; policy accept;"
    # internal: nothing in or out, before anything is accepted
    assert rules[1:3] == ['iifname "lb9" oifname != "lb9" drop',
                          'oifname "lb9" iifname != "lb9" drop']
    assert rules[3:5] == ["ct state established,related accept", "ct status dnat accept"]
    # nothing new enters a bridge from anywhere else: other bridges are isolated
    assert 'oifname "lb0" iifname != "lb0" drop' in rules
    assert 'oifname "lb1" iifname != "lb1" drop' in rules
    assert not any("lb9" in rule for rule in chain(script, "postrouting"))


def test_icc_false_uses_the_bridge_table_unless_br_netfilter_covers_it() -> None:
    closed = BridgeNetwork("lb3", ("10.3.0.0/24", "fd00:3::/64"), icc=False)
    script = render(Ruleset([closed]))
    assert 'iifname "lb3" oifname "lb3" drop' in chain(script, "forward")
    assert chain(script, "forward", "bridge longboat")[1:] == [
        "ip saddr 10.3.0.0/24 ip daddr 10.3.0.0/24 drop",
        "ip6 saddr fd00:3::/64 ip6 daddr fd00:3::/64 drop"]
    half = render(Ruleset([closed]), br_netfilter=frozenset({4}))
    assert chain(half, "forward", "bridge longboat")[1:] == [
        "ip6 saddr fd00:3::/64 ip6 daddr fd00:3::/64 drop"]
    full = render(Ruleset([closed]), br_netfilter=frozenset({4, 6}))
    assert "table bridge longboat {" not in full


@pytest.mark.parametrize("ruleset, message", [
    (Ruleset([BridgeNetwork('lb0"; flush ruleset', ("10.0.0.0/8",))]), "interface name"),
    (Ruleset([BridgeNetwork("lb0", ("10.0.0.0/33",))]), "lb0"),
    (Ruleset([BR0, BR0]), "twice"),
    (Ruleset([BR0], [PublishedPort("icmp", "", 1, "172.17.0.2", 1, "lb0")]), "protocol"),
    (Ruleset([BR0], [PublishedPort("tcp", "", 0, "172.17.0.2", 1, "lb0")]), "host port"),
    (Ruleset([BR0], [PublishedPort("tcp", "", 1, "172.17.0.2", 70000, "lb0")]),
     "container port"),
    (Ruleset([BR0], [PublishedPort("tcp", "", 1, "172.17.0.2", 1, "lbX")]), "no bridge"),
    (Ruleset([BR0], [PublishedPort("tcp", "::1", 1, "172.17.0.2", 1, "lb0")]),
     "different IP versions"),
    (Ruleset([BR0], [PublishedPort("tcp", "", 1, "172.17.0.x", 1, "lb0")]),
     "container address"),
    (Ruleset([BridgeNetwork("lb9", ("10.9.0.0/24",), internal=True)],
             [PublishedPort("tcp", "", 1, "10.9.0.2", 1, "lb9")]), "internal"),
])
def test_bad_models_are_refused(ruleset: Ruleset, message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        render(ruleset)


def test_bad_table_name() -> None:
    with pytest.raises(InvalidArgument):
        render(Ruleset(), "x y")
