"""What a lab is made of, by name: nodes, addresses, link names, paths and cgroups.

Pure: computing a plan touches nothing on the host. Everything ``up`` makes and
``down`` removes is named here, so that ``down`` finds it all again from the recorded
plan alone, even after ``up`` died half-way.
"""

from __future__ import annotations

import ipaddress
import os
import re
from dataclasses import dataclass

from longboat.errors import InvalidArgument
from longboat.lab import DEFAULT_NAME as _DEFAULT_NAME

STATE_ROOT = "/run/longboat-lab"         # namespace files and each lab's record
DATA_ROOT = "/var/lib/longboat-lab"      # keys, inventory, each node's private dirs
CGROUP_ROOT = "/longboat-lab"
DEFAULT_NAME = _DEFAULT_NAME
DEFAULT_SUBNET = "10.250.0.0/24"
MAX_NODES = 99
NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_]{0,8}$")   # "lb-" + name + "-99" fits IFNAMSIZ

# the directories each node has of its own: node path -> directory under the node's
# data dir that backs it (None: a tmpfs, gone with the node)
PRIVATE_DIRS: dict[str, str | None] = {
    "/etc/longboat": "etc-longboat",
    "/var/lib/longboat": "var-lib-longboat",
    "/var/log": "var-log",
    "/root/.ssh": "root-ssh",
    "/run": None,
}


def check_name(name: str) -> str:
    if not NAME_RE.match(name):
        raise InvalidArgument(f"invalid lab name {name!r}: 1 to 9 characters, lower-case "
                              "letters, digits and '_', starting with a letter or digit")
    return name


@dataclass(frozen=True)
class Node:
    lab: str
    index: int          # 1-based
    address: str        # e.g. 10.250.0.2
    prefixlen: int
    gateway: str

    @property
    def name(self) -> str:
        """The node's name and hostname: ``<lab>-<index>``."""
        return f"{self.lab}-{self.index}"

    @property
    def host_veth(self) -> str:
        return f"lb-{self.lab}-{self.index}"

    @property
    def peer_veth(self) -> str:
        """The name older versions gave the veth's other end on the host (it is now made
        straight in the node as ``eth0``); ``down`` still removes a leftover one."""
        return f"lp-{self.lab}-{self.index}"

    @property
    def mac(self) -> str:
        """02:4c (locally administered, 'L') followed by the node's IPv4 bytes."""
        raw = ipaddress.IPv4Address(self.address).packed
        return "02:4c:" + ":".join(f"{b:02x}" for b in raw)

    @property
    def state_dir(self) -> str:
        """Where the node's namespace files are bind-mounted (net, uts, mnt)."""
        return os.path.join(STATE_ROOT, self.lab, self.name)

    def ns_file(self, kind: str) -> str:
        return os.path.join(self.state_dir, kind)

    @property
    def data_dir(self) -> str:
        return os.path.join(DATA_ROOT, self.lab, self.name)

    def backing_dir(self, node_path: str) -> str | None:
        sub = PRIVATE_DIRS[node_path]
        return None if sub is None else os.path.join(self.data_dir, sub)

    @property
    def sshd_dir(self) -> str:
        return os.path.join(self.data_dir, "sshd")

    @property
    def cgroup(self) -> str:
        """The node's cgroup parent: everything the node runs is below it."""
        return f"{CGROUP_ROOT}/{self.lab}/{self.name}"

    @property
    def system_cgroup(self) -> str:
        """The node's own processes (sshd, the engine and its monitor, lab exec)."""
        return f"{self.cgroup}/system"

    @property
    def engine_cgroup_parent(self) -> str:
        """The node engine's ``cgroup-parent``: containers at ``<this>/<id>``."""
        return f"{self.cgroup}/longboat"


@dataclass(frozen=True)
class Lab:
    name: str
    subnet: str
    count: int

    @property
    def network(self) -> ipaddress.IPv4Network:
        return ipaddress.IPv4Network(self.subnet)

    @property
    def bridge(self) -> str:
        return f"lb-{self.name}"

    @property
    def gateway(self) -> str:
        return str(self.network.network_address + 1)

    @property
    def nodes(self) -> list[Node]:
        net = self.network
        return [Node(self.name, i, str(net.network_address + 1 + i), net.prefixlen,
                     self.gateway) for i in range(1, self.count + 1)]

    def node(self, ref: str) -> Node:
        """A node by name (``lab-2``) or by index (``2``)."""
        for node in self.nodes:
            if ref in (node.name, str(node.index)):
                return node
        names = ", ".join(n.name for n in self.nodes)
        raise InvalidArgument(f"lab {self.name} has no node {ref!r} (nodes: {names})")

    @property
    def state_dir(self) -> str:
        return os.path.join(STATE_ROOT, self.name)

    @property
    def record_file(self) -> str:
        return os.path.join(self.state_dir, "lab.json")

    @property
    def data_dir(self) -> str:
        return os.path.join(DATA_ROOT, self.name)

    @property
    def key_file(self) -> str:
        return os.path.join(self.data_dir, "id_ed25519")

    @property
    def inventory_file(self) -> str:
        return os.path.join(self.data_dir, "inventory.yml")

    @property
    def ssh_config_file(self) -> str:
        return os.path.join(self.data_dir, "ssh_config")

    @property
    def known_hosts_file(self) -> str:
        return os.path.join(self.data_dir, "known_hosts")

    @property
    def cgroup(self) -> str:
        return f"{CGROUP_ROOT}/{self.name}"


def make(name: str, count: int, subnet: str) -> Lab:
    check_name(name)
    if not 1 <= count <= MAX_NODES:
        raise InvalidArgument(f"--nodes must be between 1 and {MAX_NODES}")
    try:
        net = ipaddress.IPv4Network(subnet, strict=True)
    except ValueError as exc:
        raise InvalidArgument(f"invalid --subnet {subnet!r}: {exc}") from None
    if net.num_addresses < count + 3:        # network, bridge, nodes, broadcast
        raise InvalidArgument(f"--subnet {subnet} is too small for {count} nodes")
    return Lab(name, str(net), count)


def default_subnet(name: str, taken: list[str]) -> str:
    """10.250.0.0/24 for the lab named "lab"; other labs get the first 10.250.N.0/24
    that no other lab uses."""
    used = [ipaddress.IPv4Network(s) for s in taken]
    candidates = [DEFAULT_SUBNET] if name == DEFAULT_NAME else []
    candidates += [f"10.250.{n}.0/24" for n in range(1, 256)]
    for candidate in candidates:
        net = ipaddress.IPv4Network(candidate)
        if not any(net.overlaps(u) for u in used):
            return candidate
    raise InvalidArgument("no free 10.250.N.0/24 left: give --subnet")
