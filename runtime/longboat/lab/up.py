"""``lab up``: make (or complete) a lab, recording each step before it is made."""

from __future__ import annotations

import ipaddress
import json
import os
import sys

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.lab import (
    cgroups,
    enter,
    inventory,
    namespaces,
    node_fs,
    plan,
    record,
    sshd,
)
from longboat.lab.progress import Progress
from longboat.network import links


def _host_networks() -> list[ipaddress.IPv4Network]:
    """The IPv4 networks this host reaches already (routes and addresses)."""
    nets = (ipaddress.ip_network(cidr) for cidr in links.host_networks())
    return [net for net in nets if isinstance(net, ipaddress.IPv4Network)]


def _reserve(name: str, count: int, subnet: str | None) -> record.Record:
    """The lab's record: an existing one to complete, or a new one (subnet chosen)."""
    with record.locked():
        try:
            existing = record.load(name)
        except NotFound:
            existing = None
        if existing is not None:
            lab = existing.lab
            if count != lab.count or (subnet and subnet != lab.subnet):
                raise Conflict(f"lab {name} exists with {lab.count} nodes on {lab.subnet}: "
                               f"'longboat lab down --name {name}' first")
            existing.data["UpPid"] = os.getpid()
            existing.set_status("creating")
            namespaces.ensure_private_root()
            return existing
        others = record.all_records()
        chosen = subnet or plan.default_subnet(name, [r.lab.subnet for r in others])
        lab = plan.make(name, count, chosen)
        for other in others:
            if lab.network.overlaps(other.lab.network):
                raise Conflict(f"subnet {lab.subnet} overlaps lab {other.lab.name}'s "
                               f"{other.lab.subnet}")
        for net in _host_networks():
            if lab.network.overlaps(net):
                raise Conflict(f"subnet {lab.subnet} overlaps this host's network {net}")
        rec = record.Record(lab)
        rec.save()
        namespaces.ensure_private_root()
        return rec


def up(name: str, count: int, subnet: str | None, progress: Progress) -> record.Record:
    if os.geteuid() != 0:
        raise InvalidArgument("the lab needs root")
    sshd.sshd_binary()
    rec = _reserve(name, count, subnet)
    try:
        _make(rec, progress)
    except BaseException:
        rec.set_status("failed")
        raise
    rec.set_status("up")
    return rec


def _make(rec: record.Record, progress: Progress) -> None:
    lab = rec.lab
    with progress.step(lab.name, "key"):
        rec.step("lab", "key")
        sshd.keygen(lab.key_file, f"longboat-lab-{lab.name}")
    with progress.step(lab.name, "bridge"):
        rec.step("lab", "bridge")
        # forwarding stays as it is: nodes reach each other and the host, nothing else
        links.ensure_bridge(lab.bridge, [f"{lab.gateway}/{lab.network.prefixlen}"],
                            forwarding=False)
    with progress.step(lab.name, "inventory"):
        _write_client_files(lab)
    for node in lab.nodes:
        _make_node(rec, node, progress)


def _make_node(rec: record.Record, node: plan.Node, progress: Progress) -> None:
    lab = rec.lab
    with progress.step(node.name, "dirs"):
        rec.step(node.name, "dirs")
        node_fs.make_backing_dirs(node)
        os.makedirs(node.sshd_dir, mode=0o700, exist_ok=True)
        _write_daemon_json(node)
    with progress.step(node.name, "cgroup"):
        rec.step(node.name, "cgroup")
        cgroups.prepare(node)
    with progress.step(node.name, "namespaces"):
        rec.step(node.name, "namespaces")
        namespaces.create(node)
    with progress.step(node.name, "link") as step:
        rec.step(node.name, "link")
        if links.link_exists(node.host_veth):
            step.state = "present"
        else:
            attach_node(node, lab.bridge)
    with progress.step(node.name, "sshd"):
        rec.step(node.name, "sshd")
        sshd.prepare(lab, node)
        _write_client_files(lab)           # known_hosts gets the node's host key
        sshd.start(node)
    with progress.step(node.name, "engine"):
        rec.step(node.name, "engine")
        start_engine(node)


def attach_node(node: plan.Node, bridge: str) -> None:
    """A veth from the bridge into the node's network namespace: ``eth0`` there with the
    node's address and a default route through the bridge's address."""
    links.attach_veth(bridge, node.host_veth, node.ns_file("net"), ifname="eth0",
                      mac=node.mac, addresses=[f"{node.address}/{node.prefixlen}"],
                      gateways=[node.gateway])


def _write_daemon_json(node: plan.Node) -> None:
    """The node engine's settings, unless the node has some already: its cgroup parent."""
    etc = node.backing_dir("/etc/longboat")
    assert etc is not None
    path = os.path.join(etc, "daemon.json")
    if not os.path.exists(path):
        with open(path, "w") as f:
            json.dump({"cgroup-parent": node.engine_cgroup_parent}, f, indent=2)
            f.write("\n")


def cli_command(*args: str) -> list[str]:
    """The longboat command line, run by this same Python."""
    return [sys.executable, "-c", "import sys; from longboat.cli.main import main; "
                                  "sys.exit(main())", *args]


def start_engine(node: plan.Node) -> None:
    """The node's longboatd under ``longboat system service`` (idempotent)."""
    result = enter.run(node, cli_command("system", "service", "start", "--",
                                         "--cgroup-parent", node.engine_cgroup_parent),
                       timeout=90)
    if result.returncode != 0:
        raise SystemFault(f"node {node.name}: engine: "
                          f"{result.stdout.decode(errors='replace').strip()}")


def _write_client_files(lab: plan.Lab) -> None:
    keys = {}
    for node in lab.nodes:
        try:
            keys[node.name] = sshd.public_key(sshd.host_key(node))
        except FileNotFoundError:
            pass
    for path, text in ((lab.inventory_file, inventory.inventory(lab)),
                       (lab.ssh_config_file, inventory.ssh_config(lab)),
                       (lab.known_hosts_file, inventory.known_hosts(lab, keys))):
        with open(path + ".tmp", "w") as f:
            f.write(text)
        os.rename(path + ".tmp", path)


