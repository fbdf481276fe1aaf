"""``lab down``: remove everything a lab's plan names, whether it was made or not.

Order per node: every process below the node's cgroup (its sshd, engine, monitor,
containers, anything started with ``lab exec`` or over ssh) is killed; then the
namespace files are unmounted (the namespaces, and with them every mount and link
inside, go with their last reference), the host's veth ends are deleted and the cgroups
removed. Then the bridge, the lab's cgroup and its record. ``purge`` also removes the
lab's data (keys, inventory, the nodes' private directories).
"""

from __future__ import annotations

import contextlib
import os
import shutil

from longboat.errors import Conflict, NotFound
from longboat.lab import cgroups, namespaces, plan, record
from longboat.lab.progress import Progress
from longboat.network import links


def down(name: str, progress: Progress, *, purge: bool = False) -> None:
    try:
        rec = record.load(name)
    except NotFound:
        if purge and os.path.isdir(os.path.join(plan.DATA_ROOT, plan.check_name(name))):
            shutil.rmtree(os.path.join(plan.DATA_ROOT, name))
            return
        raise
    lab = rec.lab
    up_pid = int(rec.data.get("UpPid") or 0)
    if (rec.status == "creating" and up_pid and up_pid != os.getpid()
            and record.process_alive(up_pid)):
        raise Conflict(f"lab {name} is being made by pid {up_pid}: wait for it, or "
                       "stop it first")
    rec.set_status("removing")
    for node in reversed(lab.nodes):
        remove_node(node, progress)
    with progress.step(lab.name, "bridge"):
        links.delete_link(lab.bridge)
    with progress.step(lab.name, "cgroup"):
        cgroups.remove_lab(lab)
    with record.locked():
        shutil.rmtree(lab.state_dir, ignore_errors=True)
        if not record.names():
            namespaces.drop_private_root()
    if purge:
        with progress.step(lab.name, "data"):
            shutil.rmtree(lab.data_dir, ignore_errors=True)
            with contextlib.suppress(OSError):
                os.rmdir(plan.DATA_ROOT)


def remove_node(node: plan.Node, progress: Progress) -> None:
    with progress.step(node.name, "processes"):
        cgroups.kill_all(node)
    with progress.step(node.name, "namespaces"):
        namespaces.remove(node)
    with progress.step(node.name, "link"):
        links.delete_link(node.host_veth)
        links.delete_link(node.peer_veth)   # only ever left by labs of older versions
    with progress.step(node.name, "cgroup"):
        cgroups.remove(node)
    shutil.rmtree(node.state_dir, ignore_errors=True)
