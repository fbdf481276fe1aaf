"""``lab ls``: each lab's name, nodes, subnet, bridge and status, checked on the host."""

from __future__ import annotations

from longboat.lab import namespaces, record
from longboat.network import links


def status(rec: record.Record) -> str:
    """up, creating, failed, removing, or broken (recorded up, but something is gone)."""
    recorded = rec.status
    if recorded == "creating":
        pid = int(rec.data.get("UpPid") or 0)
        return "creating" if pid and record.process_alive(pid) else "failed"
    if recorded != "up":
        return recorded
    lab = rec.lab
    if not links.link_exists(lab.bridge):
        return "broken"
    for node in lab.nodes:
        if not all(namespaces.is_mounted(node.ns_file(k)) for k in namespaces.KINDS):
            return "broken"
    return "up"


def rows() -> list[dict[str, str]]:
    out = []
    for rec in record.all_records():
        lab = rec.lab
        out.append({"Name": lab.name, "Nodes": str(lab.count), "Subnet": lab.subnet,
                    "Bridge": lab.bridge, "Status": status(rec),
                    "Inventory": lab.inventory_file})
    return out
