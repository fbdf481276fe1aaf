"""The files ``up`` writes for clients: an Ansible inventory (YAML), an ssh config and
the known_hosts that goes with it. Pure text, from the plan and the host keys."""

from __future__ import annotations

import json

from longboat.lab import plan


def _q(value: str) -> str:
    return json.dumps(value)          # a JSON string is a YAML double-quoted scalar


def inventory(lab: plan.Lab) -> str:
    lines = [
        f"# Ansible inventory of lab {lab.name} (written by longboat lab up)",
        "all:",
        "  children:",
        f"    {lab.name}:",
        "      hosts:",
    ]
    for node in lab.nodes:
        lines += [
            f"        {node.name}:",
            f"          ansible_host: {_q(node.address)}",
            f"          longboat_cgroup_parent: {_q(node.engine_cgroup_parent)}",
        ]
    lines += [
        "      vars:",
        "        ansible_connection: paramiko",
        "        ansible_user: root",
        f"        ansible_ssh_private_key_file: {_q(lab.key_file)}",
        "        ansible_host_key_checking: false",
        "        ansible_paramiko_look_for_keys: false",
        "        ansible_python_interpreter: /usr/bin/python3",
        "        longboat_lab: " + _q(lab.name),
        "        longboat_service_manager: longboat",
        "",
    ]
    return "\n".join(lines)


def ssh_config(lab: plan.Lab) -> str:
    blocks = [f"# ssh config of lab {lab.name}: ssh -F {lab.ssh_config_file} NODE\n"]
    for node in lab.nodes:
        blocks.append(
            f"Host {node.name}\n"
            f"  HostName {node.address}\n"
            "  Port 22\n"
            "  User root\n"
            f"  IdentityFile {lab.key_file}\n"
            "  IdentitiesOnly yes\n"
            f"  UserKnownHostsFile {lab.known_hosts_file}\n"
            "  StrictHostKeyChecking yes\n")
    return "\n".join(blocks)


def known_hosts(lab: plan.Lab, host_keys: dict[str, str]) -> str:
    """``host_keys``: node name -> its public host key line ("ssh-ed25519 AAAA... c")."""
    lines = []
    for node in lab.nodes:
        key = host_keys.get(node.name)
        if key:
            kind, blob = key.split()[:2]
            lines.append(f"{node.name},{node.address} {kind} {blob}")
    return "\n".join(lines) + "\n"
