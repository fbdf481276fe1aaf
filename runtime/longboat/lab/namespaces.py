"""A node's namespaces (network, UTS, mount), kept by bind-mounted namespace files.

``create`` forks a child that unshares the three namespaces and sets the node up from
inside (hostname, its private directories: :mod:`longboat.lab.node_fs`); while the child
waits, the parent binds the child's ``/proc/PID/ns/{net,uts,mnt}`` onto the node's files
under ``/run/longboat-lab/<lab>/<node>/``; then the child exits. The namespaces live on
through those mounts, with no process holding them. A mount namespace file can only be
bind-mounted where propagation is private (else the mount would propagate into the very
namespace it names), so ``/run/longboat-lab`` is made a private bind mount of itself
while any lab exists (:func:`ensure_private_root`, :func:`drop_private_root`).
"""

from __future__ import annotations

import contextlib
import errno
import os

from longboat.errors import SystemFault
from longboat.lab import node_fs, plan
from longboat.linux import libc, namespaces

KINDS = ("net", "uts", "mnt")
_OCI = {"net": "network", "uts": "uts", "mnt": "mount"}


def _mount_points() -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [_unescape(line.split()[4]) for line in f]


def _unescape(field: str) -> str:
    return (field.replace("\\040", " ").replace("\\011", "\t").replace("\\012", "\n")
            .replace("\\134", "\\"))


def ensure_private_root() -> None:
    root = plan.STATE_ROOT
    os.makedirs(root, mode=0o755, exist_ok=True)
    if root not in _mount_points():
        libc.mount(root, root, None, libc.MS_BIND)
    libc.mount("none", root, None, libc.MS_PRIVATE)


def drop_private_root() -> None:
    """Unmount the private bind of ``/run/longboat-lab`` once nothing is mounted below."""
    root = plan.STATE_ROOT
    points = _mount_points()
    if root in points and not any(p.startswith(root + "/") for p in points):
        with contextlib.suppress(OSError):
            libc.umount2(root, libc.MNT_DETACH)


def create(node: plan.Node) -> None:
    """Make the node's namespaces and bind them to its files; idempotent per kind (a
    node whose files are all mounted already is left as it is)."""
    os.makedirs(node.state_dir, mode=0o700, exist_ok=True)
    if all(is_mounted(node.ns_file(k)) for k in KINDS):
        return
    remove(node)                       # a half-made node from an earlier crash
    for kind in KINDS:
        with open(node.ns_file(kind), "w"):
            pass
    ready_r, ready_w = os.pipe()
    go_r, go_w = os.pipe()
    pid = os.fork()
    if pid == 0:                                      # the child: never returns
        os.close(ready_r)
        os.close(go_w)
        code = 0
        try:
            _child(node, ready_w, go_r)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.write(ready_w, f"error: {exc}".encode()[:4000])
            code = 1
        os._exit(code)
    os.close(ready_w)
    os.close(go_r)
    try:
        answer = os.read(ready_r, 4096).decode(errors="replace")
        if answer != "ready":
            raise SystemFault(f"node {node.name}: {answer or 'namespace set-up died'}")
        for kind in KINDS:
            libc.mount(f"/proc/{pid}/ns/{kind}", node.ns_file(kind), None, libc.MS_BIND)
    finally:
        os.close(ready_r)
        os.close(go_w)                                  # lets the child exit
        os.waitpid(pid, 0)


def _child(node: plan.Node, ready_w: int, go_r: int) -> None:
    libc.unshare(libc.CLONE_NEWNS | libc.CLONE_NEWUTS | libc.CLONE_NEWNET)
    libc.sethostname(node.name)
    node_fs.set_up(node)
    from longboat.network import links  # pyroute2 only in this child, after the unshare

    links.link_up("lo")
    os.write(ready_w, b"ready")
    os.read(go_r, 1)                   # EOF when the parent is done (or died)


def is_mounted(path: str) -> bool:
    return path in _mount_points()


def remove(node: plan.Node) -> None:
    """Unmount and delete the node's namespace files; silent for what is missing."""
    for kind in KINDS:
        path = node.ns_file(kind)
        while is_mounted(path):
            try:
                libc.umount2(path, libc.MNT_DETACH)
            except OSError as exc:
                if exc.errno == errno.EINVAL:
                    break
                raise SystemFault(f"unmounting {path}: {exc}") from exc
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def open_files(node: plan.Node) -> list[tuple[str, int]]:
    """The node's namespace files, opened in join order (for :func:`enter`)."""
    for kind in KINDS:
        if not is_mounted(node.ns_file(kind)):
            raise SystemFault(f"node {node.name} is not up ({node.ns_file(kind)} is not "
                              "mounted): run 'longboat lab up' again, or 'lab down'")
    return namespaces.open_all({_OCI[k]: node.ns_file(k) for k in KINDS})


def enter(opened: list[tuple[str, int]]) -> None:
    """Join the namespaces (single-threaded callers only: a mount namespace can only
    be joined by a process that shares its file system context with no other thread)."""
    namespaces.join(opened)
    os.chdir("/")
