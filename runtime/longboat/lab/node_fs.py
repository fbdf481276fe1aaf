"""A node's private directories, set up from inside its new mount namespace.

The rest of the file system is the host's, seen as a slave (mounts made on the host
still reach the node, nothing the node mounts reaches the host). The node drops its copy
of ``/run/longboat-lab`` (other nodes' namespace files must not be held alive by it),
gets a tmpfs on ``/run`` and binds of its own directories under
``/var/lib/longboat-lab/<lab>/<node>/`` on ``/etc/longboat``, ``/var/lib/longboat``,
``/var/log`` and ``/root/.ssh``.
"""

from __future__ import annotations

import contextlib
import os

from longboat.lab import plan
from longboat.linux import libc


def make_backing_dirs(node: plan.Node) -> None:
    for node_path in plan.PRIVATE_DIRS:
        backing = node.backing_dir(node_path)
        if backing is not None:
            os.makedirs(backing, mode=0o755, exist_ok=True)
            if node_path == "/root/.ssh":
                os.chmod(backing, 0o700)
    os.makedirs(os.path.join(node.backing_dir("/var/log") or "", "longboat"), exist_ok=True)


def set_up(node: plan.Node) -> None:
    """In the child that has just unshared its mount namespace."""
    libc.mount("none", "/", None, libc.MS_REC | libc.MS_SLAVE)
    with contextlib.suppress(OSError):
        libc.umount2(plan.STATE_ROOT, libc.MNT_DETACH)
    make_backing_dirs(node)
    for node_path in plan.PRIVATE_DIRS:
        backing = node.backing_dir(node_path)
        os.makedirs(node_path, exist_ok=True)   # on the shared file system, if missing
        if backing is None:
            libc.mount("tmpfs", node_path, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV,
                       "mode=755")
        else:
            libc.mount(backing, node_path, None, libc.MS_BIND)
    for directory in ("/run/sshd", "/run/longboat", "/run/lock"):
        os.makedirs(directory, mode=0o755, exist_ok=True)
