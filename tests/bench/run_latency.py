"""Bench: `run --rm IMAGE true` end to end through the CLI, ours vs Docker 20.10, and the
memory the engines cost: idle RSS, and host-side RSS per running container.

Both engines run on this machine in the same invocation, each in a network namespace of
its own with its default bridge: Docker with its own data root, ``docker0`` and iptables
rules (tests/support/dockerd.py, ``bridge=True``), longboatd with its own data and exec
roots, ``longboat0`` and its nftables table (``Longboatd(netns=True)``). Each run is
timed twice per engine, alternating: with ``--network none`` and with the default
network (the bridge, what a user gets). Goals (DESIGN.md): at most 0.35x docker's run
time; engine idle RSS at most 60 MiB; at most 3 MiB per running container.

    python tests/bench/run_latency.py [--runs 15] [--containers 20]
    pytest -m bench tests/bench/run_latency.py -s
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run as a script too

from longboat.image.bootstrap import busybox_rootfs
from tests.support import dockerd
from tests.support.engine import Longboatd

pytestmark = pytest.mark.bench

#: the network modes timed: flags for `run`
MODES = {"none": ["--network", "none"], "bridge": []}


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def tree_rss_kib(pids: list[int]) -> int:
    return sum(rss_kib(p) for p in pids if os.path.exists(f"/proc/{p}"))


def pids_named(*names: str) -> list[int]:
    found = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                comm = Path(f"/proc/{entry}/comm").read_text().strip()
            except OSError:
                continue
            if comm in names:
                found.append(int(entry))
    return found


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def monitor_pid(engine: Longboatd) -> int:
    import json
    import socket

    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.connect(str(engine.exec_root / "monitor.sock"))
    sock.sendall(b'{"op": "ping"}\n')
    pid = int(json.loads(sock.recv(4096))["pid"])
    sock.close()
    return pid


def measure(runs: int, containers: int) -> dict[str, float]:
    result: dict[str, float] = {}
    longboat = str(Path(sys.executable).parent / "longboat")
    with tempfile.TemporaryDirectory(prefix="lb-run-bench-") as tmp:
        base = Path(tmp)
        rootfs = base / "rootfs"
        busybox_rootfs(str(rootfs))
        tar = base / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        (base / "longboat").mkdir()
        engine = Longboatd(base / "longboat", netns=True).start()
        try:
            engine.docker("import", str(tar), "bb:1")
            lb_env = {**os.environ, "LONGBOAT_HOST": engine.host,
                      "DOCKER_HOST": engine.host}
            has_run = subprocess.run([longboat, "run", "--help"], capture_output=True,
                                     env=lb_env).returncode == 0
            ours_cli = [longboat] if has_run else ["docker"]
            ours_cmds = {mode: [*ours_cli, "run", "--rm", *flags, "bb:1", "true"]
                         for mode, flags in MODES.items()}
            result["ours_cli_is_longboat"] = float(has_run)
            # memory, idle (after a container of each mode, so the monitor is up and
            # the networking code loaded)
            for cmd in ours_cmds.values():
                timed(cmd, lb_env)
            assert engine.process is not None
            engine_pid, mon_pid = engine.process.pid, monitor_pid(engine)
            result["longboatd_idle_mib"] = rss_kib(engine_pid) / 1024
            result["monitor_idle_mib"] = rss_kib(mon_pid) / 1024
            (base / "docker").mkdir()
            docker = None
            if dockerd.install_docker() is None:
                docker = dockerd.Dockerd(base / "docker", bridge=True)
                try:
                    docker.start()
                except RuntimeError as exc:
                    print(f"dockerd cannot start here ({exc}): measuring ours alone")
                    docker = None
            try:
                times: dict[str, list[float]] = {f"{who}_{mode}": [] for who in (
                    "ours", "docker") for mode in MODES}
                docker_cmds = {mode: ["docker", "run", "--rm", *flags, "bb:1", "true"]
                               for mode, flags in MODES.items()}
                if docker is not None:
                    docker.docker("import", str(tar), "bb:1")
                    for cmd in docker_cmds.values():
                        timed(cmd, docker.env)
                for _ in range(runs):
                    for mode in MODES:
                        times[f"ours_{mode}"].append(timed(ours_cmds[mode], lb_env))
                        if docker is not None:
                            times[f"docker_{mode}"].append(timed(docker_cmds[mode],
                                                                 docker.env))
                for key, values in times.items():
                    if values:
                        result[f"{key}_ms"] = statistics.median(values) * 1000
                for mode in MODES:
                    if docker is not None:
                        result[f"ratio_{mode}"] = result[f"ours_{mode}_ms"] / \
                            result[f"docker_{mode}_ms"]
                if docker is not None:
                    daemons = pids_named("dockerd", "containerd")
                    result["docker_idle_mib"] = tree_rss_kib(daemons) / 1024
                # per running container
                before = rss_kib(engine_pid) + rss_kib(mon_pid)
                for i in range(containers):
                    engine.docker("run", "-d", "--network", "none", "--name", f"idle{i}",
                                  "bb:1", "sleep", "600")
                after = rss_kib(engine_pid) + rss_kib(mon_pid)
                result["ours_per_container_mib"] = (after - before) / containers / 1024
                if docker is not None:
                    shims_before = pids_named("containerd-shim", "containerd-shim-runc-v2")
                    for i in range(min(containers, 5)):
                        docker.docker("run", "-d", "--network", "none", "--name",
                                      f"idle{i}", "bb:1", "sleep", "600")
                    shims = [p for p in pids_named("containerd-shim",
                                                   "containerd-shim-runc-v2")
                             if p not in shims_before]
                    if shims:
                        result["docker_shim_mib"] = tree_rss_kib(shims) / len(shims) / 1024
            finally:
                if docker is not None:
                    docker.stop()
        finally:
            engine.stop()
    return result


def report(r: dict[str, float]) -> None:
    cli = "longboat" if r.get("ours_cli_is_longboat") else "docker CLI -> longboatd"
    for mode, what in (("none", "--network none"), ("bridge", "default network (bridge)")):
        print(f"run --rm true, {what}, median: ours ({cli}) {r[f'ours_{mode}_ms']:.0f} ms",
              end="")
        if f"docker_{mode}_ms" in r:
            print(f"; docker {r[f'docker_{mode}_ms']:.0f} ms; ratio "
                  f"{r[f'ratio_{mode}']:.2f}x (goal: at most 0.35x)")
        else:
            print(" (no dockerd here: ours alone)")
    print(f"idle RSS: longboatd {r['longboatd_idle_mib']:.1f} MiB + monitor "
          f"{r['monitor_idle_mib']:.1f} MiB = "
          f"{r['longboatd_idle_mib'] + r['monitor_idle_mib']:.1f} MiB (goal: at most 60)"
          + (f"; dockerd+containerd {r['docker_idle_mib']:.1f} MiB"
             if "docker_idle_mib" in r else ""))
    print(f"per running container: {r['ours_per_container_mib'] * 1024:.0f} KiB host-side "
          "(goal: at most 3 MiB)"
          + (f"; containerd-shim {r['docker_shim_mib']:.1f} MiB each"
             if "docker_shim_mib" in r else ""))


def test_run_latency_and_memory() -> None:
    report(measure(10, 20))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--containers", type=int, default=20)
    args = parser.parse_args()
    report(measure(args.runs, args.containers))
