"""Address management: pools, subnets, gateways, ranges, aux addresses; no address given
twice, state kept across instances (engine restarts)."""

from __future__ import annotations

import pytest

from longboat.errors import Conflict, InvalidArgument, NotFound
from longboat.network.ipam import Ipam

pytestmark = pytest.mark.unit


@pytest.fixture
def ipam(tmp_path):
    return Ipam(str(tmp_path / "network" / "ipam.json"))


def test_default_pools_in_dockers_order_skipping_what_is_used(ipam):
    assert ipam.add_network("bridge") == {"Subnet": "172.17.0.0/16", "Gateway": "172.17.0.1"}
    assert ipam.add_network("n2")["Subnet"] == "172.18.0.0/16"
    third = ipam.add_network("n3", host_routes=["172.19.5.0/24"])
    assert third["Subnet"] == "172.20.0.0/16"   # 172.19 overlaps a host route


def test_user_subnet_gateway_range_and_aux(ipam):
    config = ipam.add_network("net", subnet="10.1.0.0/24", gateway="10.1.0.254",
                              ip_range="10.1.0.128/25", aux_addresses={"router": "10.1.0.129"})
    assert config == {"Subnet": "10.1.0.0/24", "Gateway": "10.1.0.254",
                      "IPRange": "10.1.0.128/25",
                      "AuxiliaryAddresses": {"router": "10.1.0.129"}}
    # dynamic addresses come from the range, skipping the aux address
    assert ipam.allocate("net", "c1") == "10.1.0.130"
    assert ipam.allocate("net", "c2") == "10.1.0.131"
    # a static address anywhere in the subnet
    assert ipam.allocate("net", "c3", "10.1.0.5") == "10.1.0.5"


def test_no_address_twice_and_release(ipam):
    ipam.add_network("net", subnet="10.2.0.0/29")   # 6 hosts: .1 gateway, .2-.6 free
    got = [ipam.allocate("net", f"c{i}") for i in range(5)]
    assert got == ["10.2.0.2", "10.2.0.3", "10.2.0.4", "10.2.0.5", "10.2.0.6"]
    with pytest.raises(Conflict, match="no available IPv4 addresses"):
        ipam.allocate("net", "one-too-many")
    with pytest.raises(Conflict, match=r"^Address already in use$"):
        ipam.allocate("net", "thief", "10.2.0.3")
    ipam.release("net", "10.2.0.3")
    assert ipam.allocate("net", "next") == "10.2.0.3"
    assert ipam.owner("net", "10.2.0.3") == "next"


def test_state_survives_a_new_instance(ipam, tmp_path):
    ipam.add_network("net", subnet="10.3.0.0/24")
    ipam.allocate("net", "c1")
    again = Ipam(str(tmp_path / "network" / "ipam.json"))
    assert again.allocate("net", "c2") == "10.3.0.3"
    assert again.config("net")["Gateway"] == "10.3.0.1"


def test_ipv6(ipam):
    config = ipam.add_network("v6", subnet="fd00:1::/64")
    assert config["Gateway"] == "fd00:1::1"
    assert ipam.allocate("v6", "c1") == "fd00:1::2"
    # a v4 and a v6 network never overlap each other
    ipam.add_network("v4", subnet="10.4.0.0/16")


@pytest.mark.parametrize(("kwargs", "error", "message"), [
    ({"subnet": "10.9.0.0/16"}, Conflict, "Pool overlaps"),
    ({"subnet": "10.9.1.0/24"}, Conflict, "Pool overlaps"),
    ({"subnet": "not-a-net"}, InvalidArgument, "invalid subnet"),
    ({"subnet": "10.8.0.0/24", "gateway": "10.7.0.1"}, InvalidArgument, "not a usable"),
    ({"subnet": "10.8.0.0/24", "gateway": "10.8.0.255"}, InvalidArgument, "not a usable"),
    ({"subnet": "10.8.0.0/24", "ip_range": "10.7.0.0/25"}, InvalidArgument, "not inside"),
    ({"subnet": "10.8.0.0/24", "aux_addresses": {"x": "10.7.0.9"}}, InvalidArgument,
     "not inside"),
    ({"gateway": "10.8.0.1"}, InvalidArgument, "need a subnet"),
])
def test_bad_input_changes_nothing(ipam, tmp_path, kwargs, error, message):
    ipam.add_network("existing", subnet="10.9.0.0/16")
    before = (tmp_path / "network" / "ipam.json").read_bytes()
    with pytest.raises(error, match=message):
        ipam.add_network("new", **kwargs)
    assert (tmp_path / "network" / "ipam.json").read_bytes() == before


def test_addresses_and_networks_that_do_not_belong(ipam):
    ipam.add_network("net", subnet="10.5.0.0/24")
    with pytest.raises(InvalidArgument, match="no configured subnet contains"):
        ipam.allocate("net", "c", "10.6.0.1")
    with pytest.raises(InvalidArgument, match="broadcast"):
        ipam.allocate("net", "c", "10.5.0.255")
    with pytest.raises(NotFound):
        ipam.allocate("nope", "c")
    ipam.allocate("net", "c1")
    with pytest.raises(Conflict, match="still has addresses in use by c1"):
        ipam.remove_network("net")
    with pytest.raises(InvalidArgument, match="reserved"):
        ipam.release("net", "10.5.0.1")
    ipam.release("net", "10.5.0.2")
    ipam.remove_network("net")
    assert ipam.add_network("net", subnet="10.5.0.0/24")["Gateway"] == "10.5.0.1"
