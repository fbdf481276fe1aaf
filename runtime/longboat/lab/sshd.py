"""Each node's sshd (Debian's openssh-server): its host key and config under the node's
data dir, root's authorized_keys in the node's own ``/root/.ssh``, listening on the
node's address, port 22, public keys only; and the lab's client key."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time

from longboat.errors import SystemFault
from longboat.lab import enter, plan

SSHD_CANDIDATES = ("/usr/sbin/sshd", "/usr/bin/sshd")


def sshd_binary() -> str:
    for path in (*SSHD_CANDIDATES, shutil.which("sshd") or ""):
        if path and os.access(path, os.X_OK):
            return path
    raise SystemFault("sshd not found: install openssh-server")


def keygen(path: str, comment: str) -> None:
    """An ed25519 key pair at ``path`` (and ``path``.pub), unless there is one."""
    if os.path.exists(path) and os.path.exists(path + ".pub"):
        return
    for stale in (path, path + ".pub"):
        if os.path.exists(stale):
            os.unlink(stale)
    os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
    result = subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", comment,
                             "-f", path], capture_output=True, check=False)
    if result.returncode != 0:
        raise SystemFault(f"ssh-keygen {path}: {result.stderr.decode(errors='replace')}")


def host_key(node: plan.Node) -> str:
    return os.path.join(node.sshd_dir, "ssh_host_ed25519_key")


def public_key(path: str) -> str:
    with open(path + ".pub") as f:
        return f.read().strip()


def config_text(node: plan.Node) -> str:
    return "\n".join([
        "# written by longboat lab up",
        "Port 22",
        f"ListenAddress {node.address}",
        f"HostKey {host_key(node)}",
        "PidFile /run/sshd.pid",
        "AuthorizedKeysFile /root/.ssh/authorized_keys",
        "PermitRootLogin prohibit-password",
        "AllowUsers root",
        "PubkeyAuthentication yes",
        "PasswordAuthentication no",
        "KbdInteractiveAuthentication no",
        "UsePAM no",
        "UseDNS no",
        "PrintMotd no",
        "AllowStreamLocalForwarding yes",
        "Subsystem sftp internal-sftp",
        "AcceptEnv LANG LC_*",
        "",
    ])


def prepare(lab: plan.Lab, node: plan.Node) -> None:
    """Host key, config and authorized_keys (the node's backing dirs exist)."""
    keygen(host_key(node), f"root@{node.name}")
    with open(os.path.join(node.sshd_dir, "sshd_config"), "w") as f:
        f.write(config_text(node))
    ssh_dir = node.backing_dir("/root/.ssh")
    assert ssh_dir is not None
    authorized = os.path.join(ssh_dir, "authorized_keys")
    wanted = public_key(lab.key_file)
    try:
        with open(authorized) as f:
            lines = [line.rstrip("\n") for line in f]
    except FileNotFoundError:
        lines = []
    if wanted not in lines:
        with open(authorized, "a") as f:
            f.write(wanted + "\n")
    os.chmod(authorized, 0o600)


def start(node: plan.Node, timeout: float = 20) -> None:
    """Start sshd on the node (it daemonizes itself) unless it answers already, then
    wait until its port answers."""
    if _answers(node.address):
        return
    config = os.path.join(node.sshd_dir, "sshd_config")
    result = enter.run(node, [sshd_binary(), "-f", config, "-E",
                              "/var/log/sshd.log"], timeout=timeout)
    if result.returncode != 0:
        raise SystemFault(f"node {node.name}: sshd: {result.stdout.decode(errors='replace')}")
    deadline = time.monotonic() + timeout
    while not _answers(node.address):
        if time.monotonic() > deadline:
            raise SystemFault(f"node {node.name}: sshd does not answer on "
                              f"{node.address}:22")
        time.sleep(0.05)


def _answers(address: str) -> bool:
    try:
        socket.create_connection((address, 22), timeout=0.5).close()
        return True
    except OSError:
        return False
