"""Bench: TCP throughput (iperf3) container to container on one of our bridges, against a
plain veth pair between two namespaces; prints both and the ratio.

Everything runs in scratch network namespaces of its own (``lbk-bench-<pid>-*``): a
"host" holding the bridge with two "containers" attached by ``links.attach_veth`` (as the
engine attaches them, nftables table included), and two namespaces joined by one veth
pair. The host's own namespace is not touched. iperf3 comes from Debian (``apt-get
install iperf3``; scripts/test.sh installs it).

    python tests/bench/net_throughput.py [--seconds 5] [--runs 3]
    pytest -m bench tests/bench/net_throughput.py -s
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable

import pytest

from longboat.linux import libc
from longboat.network import links, netns, nftables

pytestmark = pytest.mark.bench

PORT = 5201
TABLE = "lbkbench"


def _enter(path: str) -> Callable[[], None]:
    def join() -> None:   # in the forked child, before exec: single-threaded
        fd = os.open(path, os.O_RDONLY)
        libc.setns(fd, libc.CLONE_NEWNET)
        os.close(fd)
    return join


def iperf(server_ns: str, client_ns: str, address: str, seconds: int) -> float:
    """Gbit/s received by an iperf3 server in ``server_ns`` from a client in
    ``client_ns``."""
    server = subprocess.Popen(["iperf3", "-s", "-1", "-B", address, "-p", str(PORT)],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                              preexec_fn=_enter(server_ns))
    try:
        # iperf3 -s -1 serves exactly one client: a probe connection would use it up, so
        # wait for the listener in its namespace's /proc/PID/net/tcp instead
        deadline = time.monotonic() + 10
        while not _listening(server.pid, PORT):
            if time.monotonic() > deadline or server.poll() is not None:
                raise RuntimeError("iperf3 -s did not start listening")
            time.sleep(0.05)
        out = subprocess.run(["iperf3", "-c", address, "-p", str(PORT), "-t", str(seconds),
                              "-J"], capture_output=True, text=True, check=True,
                             preexec_fn=_enter(client_ns), timeout=seconds + 30).stdout
    finally:
        try:
            server.wait(timeout=10)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()
    return float(json.loads(out)["end"]["sum_received"]["bits_per_second"]) / 1e9


def _listening(pid: int, port: int) -> bool:
    try:
        with open(f"/proc/{pid}/net/tcp") as f:   # the process's own namespace's table
            lines = f.readlines()[1:]
    except OSError:
        return False
    return any(line.split()[1].endswith(f":{port:04X}") and line.split()[3] == "0A"
               for line in lines)


def measure(seconds: int, runs: int) -> dict[str, float]:
    tag = f"lbk-bench-{os.getpid()}"
    made: list[str] = []

    def ns(name: str) -> str:
        path = f"/run/netns/{tag}-{name}"
        netns.create(path)
        made.append(path)
        return path

    try:
        host, a, b, p1, p2 = ns("host"), ns("a"), ns("b"), ns("p1"), ns("p2")

        def plumb() -> None:
            links.ensure_bridge("lbkbr9", ["10.201.90.1/24"])
            for name, path, last in (("lbkv9a", a, 2), ("lbkv9b", b, 3)):
                links.attach_veth("lbkbr9", name, path, ifname="eth0",
                                  mac=links.mac_for(f"10.201.90.{last}"),
                                  addresses=[f"10.201.90.{last}/24"], gateways=["10.201.90.1"])
            nftables.apply(nftables.Ruleset(
                [nftables.BridgeNetwork("lbkbr9", ("10.201.90.0/24",))]), TABLE)

        netns.run_in(host, plumb)
        netns.run_in(p1, lambda: links.veth_pair(
            "eth0", p2, host_addresses=["10.201.91.1/24"], ifname="eth0", mac="",
            addresses=["10.201.91.2/24"], gateways=[]))
        bridge, veth = [], []
        for _ in range(runs):
            bridge.append(iperf(b, a, "10.201.90.3", seconds))
            veth.append(iperf(p2, p1, "10.201.91.2", seconds))
    finally:
        for path in reversed(made):
            netns.remove(path)
    result = {"bridge_gbps": statistics.median(bridge), "veth_gbps": statistics.median(veth)}
    result["ratio"] = result["bridge_gbps"] / result["veth_gbps"]
    return result


def report(result: dict[str, float], seconds: int, runs: int) -> None:
    print(f"iperf3 TCP, {seconds} s, median of {runs}:")
    print(f"  container to container on a bridge: {result['bridge_gbps']:.2f} Gbit/s")
    print(f"  plain veth pair between namespaces: {result['veth_gbps']:.2f} Gbit/s")
    print(f"  ratio bridge/veth:                  {result['ratio']:.2f}")


def missing() -> str | None:
    if shutil.which("iperf3") is None:
        return "iperf3 is not installed (apt-get install iperf3; scripts/test.sh does)"
    return None


def test_net_throughput() -> None:
    if (reason := missing()) is not None:
        pytest.skip(reason)
    result = measure(3, 1)
    report(result, 3, 1)
    assert result["bridge_gbps"] > 0 and result["veth_gbps"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--seconds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    if (reason := missing()) is not None:
        sys.exit(reason)
    report(measure(args.seconds, args.runs), args.seconds, args.runs)
