"""The lab's plan (names, addresses, link names, paths, cgroups) and the client files
``up`` writes from it: pure functions."""

from __future__ import annotations

import paramiko  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]

from longboat.errors import InvalidArgument
from longboat.lab import inventory, plan


def test_nodes_addresses_and_names() -> None:
    lab = plan.make("lab", 3, "10.250.0.0/24")
    assert lab.bridge == "lb-lab"
    assert lab.gateway == "10.250.0.1"
    assert [(n.name, n.address, n.host_veth, n.peer_veth) for n in lab.nodes] == [
        ("lab-1", "10.250.0.2", "lb-lab-1", "lp-lab-1"),
        ("lab-2", "10.250.0.3", "lb-lab-2", "lp-lab-2"),
        ("lab-3", "10.250.0.4", "lb-lab-3", "lp-lab-3")]
    node = lab.node("2")
    assert node is lab.node("lab-2") or node == lab.node("lab-2")
    assert node.mac == "02:4c:0a:fa:00:03"
    assert node.ns_file("mnt") == "/run/longboat-lab/lab/lab-2/mnt"
    assert node.backing_dir("/var/lib/longboat") == \
        "/var/lib/longboat-lab/lab/lab-2/var-lib-longboat"
    assert node.backing_dir("/run") is None
    assert node.system_cgroup == "/longboat-lab/lab/lab-2/system"
    assert node.engine_cgroup_parent == "/longboat-lab/lab/lab-2/longboat"


def test_link_names_fit_the_kernel_limit() -> None:
    lab = plan.make("abcdefghi", plan.MAX_NODES, "10.0.0.0/16")
    names = [lab.bridge] + [n.host_veth for n in lab.nodes] + [n.peer_veth for n in lab.nodes]
    assert max(len(n) for n in names) <= 15


@pytest.mark.parametrize("name", ["", "Lab", "abcdefghij", "a-b", "-a", "a/b", "a b"])
def test_bad_names(name: str) -> None:
    with pytest.raises(InvalidArgument):
        plan.make(name, 1, "10.250.0.0/24")


@pytest.mark.parametrize(("count", "subnet"), [(0, "10.250.0.0/24"), (100, "10.0.0.0/16"),
                                               (6, "10.250.0.0/29"), (1, "10.250.0.1/24"),
                                               (1, "nonsense")])
def test_bad_sizes_and_subnets(count: int, subnet: str) -> None:
    with pytest.raises(InvalidArgument):
        plan.make("lab", count, subnet)


def test_default_subnets_do_not_overlap() -> None:
    assert plan.default_subnet("lab", []) == "10.250.0.0/24"
    assert plan.default_subnet("other", []) == "10.250.1.0/24"
    assert plan.default_subnet("lab", ["10.250.0.0/24"]) == "10.250.1.0/24"
    assert plan.default_subnet("x", ["10.250.0.0/23", "10.250.2.0/24"]) == "10.250.3.0/24"


def test_inventory_is_yaml_for_paramiko() -> None:
    lab = plan.make("lab", 2, "10.250.0.0/24")
    data = yaml.safe_load(inventory.inventory(lab))
    group = data["all"]["children"]["lab"]
    assert group["hosts"] == {
        "lab-1": {"ansible_host": "10.250.0.2",
                  "longboat_cgroup_parent": "/longboat-lab/lab/lab-1/longboat"},
        "lab-2": {"ansible_host": "10.250.0.3",
                  "longboat_cgroup_parent": "/longboat-lab/lab/lab-2/longboat"}}
    assert group["vars"]["ansible_connection"] == "paramiko"
    assert group["vars"]["ansible_user"] == "root"
    assert group["vars"]["ansible_ssh_private_key_file"] == "/var/lib/longboat-lab/lab/id_ed25519"
    assert group["vars"]["ansible_host_key_checking"] is False
    assert group["vars"]["longboat_service_manager"] == "longboat"


def test_ssh_config_and_known_hosts() -> None:
    lab = plan.make("lab", 2, "10.250.0.0/24")
    config = paramiko.SSHConfig.from_text(inventory.ssh_config(lab))
    entry = config.lookup("lab-2")
    assert entry["hostname"] == "10.250.0.3"
    assert entry["user"] == "root"
    assert entry["identityfile"] == ["/var/lib/longboat-lab/lab/id_ed25519"]
    assert entry["userknownhostsfile"] == "/var/lib/longboat-lab/lab/known_hosts"
    text = inventory.known_hosts(lab, {"lab-1": "ssh-ed25519 AAAAC3Nz root@lab-1"})
    assert text == "lab-1,10.250.0.2 ssh-ed25519 AAAAC3Nz\n"
