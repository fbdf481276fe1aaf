"""The lab's links, with pyroute2: the bridge on the host and a veth per node.

(longboat.network.links, being written for container networking, has the same kind of
calls; the lab keeps its own few here so it does not depend on that work in progress.)
"""

from __future__ import annotations

import contextlib
import os
import threading
from collections.abc import Callable
from typing import TypeVar

from pyroute2 import IPRoute  # type: ignore[import-untyped]
from pyroute2.netlink.exceptions import NetlinkError  # type: ignore[import-untyped]

from longboat.errors import SystemFault
from longboat.lab import plan
from longboat.linux import libc

T = TypeVar("T")
_ENODEV = 19
_EEXIST = 17


def _index(ip: IPRoute, name: str) -> int | None:
    found = ip.link_lookup(ifname=name)
    return int(found[0]) if found else None


def set_up(name: str) -> None:
    with IPRoute() as ip:
        index = _index(ip, name)
        if index is not None:
            ip.link("set", index=index, state="up")


def ensure_bridge(name: str, address: str, prefixlen: int) -> None:
    """The bridge, its address and up; adopts one that exists already."""
    with IPRoute() as ip:
        if _index(ip, name) is None:
            try:
                ip.link("add", ifname=name, kind="bridge")
            except NetlinkError as exc:
                if exc.code != _EEXIST:
                    raise SystemFault(f"creating bridge {name}: {exc}") from exc
        index = _index(ip, name)
        have = {a.get_attr("IFA_ADDRESS") for a in ip.get_addr(index=index, family=2)}
        if address not in have:
            ip.addr("add", index=index, address=address, prefixlen=prefixlen)
        ip.link("set", index=index, state="up")


def delete(name: str) -> None:
    """Delete a link; silent if it is missing."""
    with IPRoute() as ip:
        index = _index(ip, name)
        if index is None:
            return
        try:
            ip.link("del", index=index)
        except NetlinkError as exc:
            if exc.code != _ENODEV:
                raise SystemFault(f"deleting link {name}: {exc}") from exc


def exists(name: str) -> bool:
    with IPRoute() as ip:
        return _index(ip, name) is not None


def attach_node(node: plan.Node, bridge: str) -> None:
    """A veth from the bridge into the node's network namespace: ``eth0`` there with the
    node's address and a default route through the bridge's address."""
    netns = node.ns_file("net")
    peer = node.peer_veth
    delete(node.host_veth)
    delete(peer)
    with IPRoute() as ip:
        ip.link("add", ifname=node.host_veth, kind="veth", peer={"ifname": peer})
        host = _index(ip, node.host_veth)
        ip.link("set", index=host, master=_index(ip, bridge))
        fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)
        try:
            ip.link("set", index=_index(ip, peer), net_ns_fd=fd)
        finally:
            os.close(fd)
        ip.link("set", index=host, state="up")

    def inside() -> None:
        with IPRoute() as ip:
            index = _index(ip, peer)
            if index is None:
                raise SystemFault(f"{peer} did not arrive in {netns}")
            ip.link("set", index=index, ifname="eth0", address=node.mac)
            ip.addr("add", index=index, address=node.address, prefixlen=node.prefixlen)
            ip.link("set", index=index, state="up")
            lo = _index(ip, "lo")
            ip.link("set", index=lo, state="up")
            with contextlib.suppress(NetlinkError):   # EEXIST on a second attach
                ip.route("add", dst="0.0.0.0/0", gateway=node.gateway)

    run_in(netns, inside)


def run_in(netns: str, fn: Callable[[], T]) -> T:
    """``fn()`` in a short-lived thread that joined the network namespace ``netns``."""
    result: list[T] = []
    failure: list[BaseException] = []
    fd = os.open(netns, os.O_RDONLY | os.O_CLOEXEC)

    def run() -> None:
        try:
            libc.setns(fd, libc.CLONE_NEWNET)
            result.append(fn())
        except BaseException as exc:
            failure.append(exc)

    try:
        thread = threading.Thread(target=run, name="lab-netns")
        thread.start()
        thread.join()
    finally:
        os.close(fd)
    if failure:
        raise failure[0]
    return result[0]
