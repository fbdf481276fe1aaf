"""The lab, end to end: ``longboat lab up`` makes nodes with their own hostname, engine,
sshd and address; clients reach them with the written ssh config, key and inventory;
two labs live side by side; ``down`` leaves nothing, also after ``up`` was killed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import paramiko  # type: ignore[import-untyped]
import pytest
import yaml  # type: ignore[import-untyped]
from tests.support import hoststate

PREFIX = f"lbt{os.getpid() % 100000}"
SUBNET_BASE = (os.getpid() % 50) * 5          # 10.251.<base + k>.0/24


def longboat(*args: str, check: bool = True, timeout: float = 180
             ) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    env = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    env.pop("LONGBOAT_HOST", None)
    env.pop("DOCKER_HOST", None)
    result = subprocess.run([f"{bindir}/longboat", *args], capture_output=True, text=True,
                            env=env, timeout=timeout, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"longboat {' '.join(args)} exited {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


def on(lab: str, node: str, *command: str, check: bool = True
       ) -> subprocess.CompletedProcess[str]:
    return longboat("lab", "exec", "--name", lab, node, "--", *command, check=check)


def state_now() -> hoststate.Snapshot:
    return hoststate.snapshot()


def lab_processes(prefix: str) -> list[str]:
    """Processes whose command line names the lab's paths, or that sit in its cgroups."""
    found = []
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/cgroup") as f:
                cgroups = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").decode(errors="replace")
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
        except OSError:
            continue
        if stat[stat.rindex(b")") + 2:][:1] == b"Z":
            continue           # dead, not yet reaped (the leak check's subreaper does it)
        if f"/longboat-lab/{prefix}" in cgroups or f"longboat-lab/{prefix}" in cmd:
            found.append(f"{pid}: {cmd}")
    return found


def assert_nothing_left(before: hoststate.Snapshot, lab: str) -> None:
    deadline = time.monotonic() + 5
    while True:
        after = state_now()
        leaks = [leak for leak in hoststate.leaks(before, after)
                 if not leak.startswith("process ")]
        # only what this lab makes: other tests (and their labs) come and go meanwhile;
        # /run/longboat-lab's own mount goes only with the last lab on the host
        others = list(Path("/run/longboat-lab").glob("*/lab.json"))
        leaks = [leak for leak in leaks
                 if leak.startswith((f"link lb-{lab}", f"link lp-{lab}"))
                 or f"longboat-lab/{lab}" in leak
                 or (leak.endswith(" /run/longboat-lab") and not others)]
        leaks += lab_processes(lab)
        if not leaks or time.monotonic() > deadline:
            break
        time.sleep(0.1)
    assert not leaks, leaks


@pytest.fixture(scope="module")
def baseline() -> hoststate.Snapshot:
    return state_now()


@pytest.fixture(scope="module")
def lab(baseline: hoststate.Snapshot) -> Iterator[str]:
    name = f"{PREFIX}a"
    began = time.monotonic()
    result = longboat("lab", "up", "--name", name, "--nodes", "3", "--subnet",
                      f"10.251.{SUBNET_BASE}.0/24")
    print(f"lab up, 3 nodes: {time.monotonic() - began:.1f}s\n{result.stdout}")
    try:
        yield name
    finally:
        longboat("lab", "down", "--name", name, "--purge", check=False)


def test_up_shows_progress_per_node(lab: str) -> None:
    rows = longboat("lab", "ls").stdout.splitlines()
    mine = [r.split() for r in rows if r.startswith(lab + " ")]
    assert mine and mine[0][1:5] == ["3", f"10.251.{SUBNET_BASE}.0/24", f"lb-{lab}", "up"]


def test_each_node_has_its_hostname_and_its_own_engine(lab: str) -> None:
    ids = set()
    for n in (1, 2, 3):
        node = f"{lab}-{n}"
        assert on(lab, node, "hostname").stdout.strip() == node
        info = json.loads(on(lab, node, "longboat", "info", "--format", "json").stdout)
        assert info["Name"] == node
        ids.add(info["ID"])
        # its own /run, /var/lib/longboat and /etc/longboat, the host's /usr
        listing = on(lab, node, "sh", "-c", "cat /etc/longboat/daemon.json; "
                                             "ls /run/longboat; test -d /usr/bin").stdout
        assert f"/longboat-lab/{lab}/{node}/longboat" in listing
        assert "longboat.sock" in listing
    assert len(ids) == 3


def test_ssh_with_paramiko_using_the_written_config_and_key(lab: str) -> None:
    config = paramiko.SSHConfig.from_path(f"/var/lib/longboat-lab/{lab}/ssh_config")
    target = f"10.251.{SUBNET_BASE}.3"
    for n in (1, 2):
        entry = config.lookup(f"{lab}-{n}")
        client = paramiko.SSHClient()
        client.load_host_keys(entry["userknownhostsfile"])
        client.set_missing_host_key_policy(paramiko.RejectPolicy())
        client.connect(entry["hostname"], port=int(entry["port"]), username=entry["user"],
                       key_filename=entry["identityfile"][0], look_for_keys=False,
                       allow_agent=False, timeout=10)
        try:
            _, out, _ = client.exec_command(
                "hostname; python3 -c \"import socket; "
                f"socket.create_connection(('{target}', 22), 3); print('reached')\"")
            assert out.read().decode().split() == [f"{lab}-{n}", "reached"]
        finally:
            client.close()


def test_inventory_for_ansible_over_paramiko(lab: str) -> None:
    data = yaml.safe_load(Path(f"/var/lib/longboat-lab/{lab}/inventory.yml").read_text())
    group = data["all"]["children"][lab]
    assert group["vars"]["ansible_connection"] == "paramiko"
    assert group["vars"]["ansible_user"] == "root"
    assert os.path.exists(group["vars"]["ansible_ssh_private_key_file"])
    assert group["vars"]["ansible_host_key_checking"] is False
    assert {h: v["ansible_host"] for h, v in group["hosts"].items()} == {
        f"{lab}-{n}": f"10.251.{SUBNET_BASE}.{n + 1}" for n in (1, 2, 3)}


def test_a_busybox_container_runs_on_a_node_below_its_cgroup(lab: str) -> None:
    node = f"{lab}-2"
    on(lab, node, "longboat", "image", "bootstrap", "busybox")
    out = on(lab, node, "longboat", "run", "--rm", "busybox", "sh", "-c",
             "echo hi; cat /proc/self/cgroup").stdout
    assert out.startswith("hi\n")
    assert f"/longboat-lab/{lab}/{node}/longboat/" in out
    # the image is the node's own: the other nodes do not have it
    assert "busybox" not in on(lab, f"{lab}-1", "longboat", "images").stdout


def test_a_second_lab_side_by_side(lab: str, baseline: hoststate.Snapshot) -> None:
    other = f"{PREFIX}b"
    before = state_now()
    try:
        longboat("lab", "up", "--name", other, "--nodes", "1", "--subnet",
                 f"10.251.{SUBNET_BASE + 1}.0/24", "-q")
        assert on(other, f"{other}-1", "hostname").stdout.strip() == f"{other}-1"
        names = longboat("lab", "ls", "-q").stdout.split()
        assert lab in names and other in names
        # its own subnet: its node's sshd answers on the lab's second address
        assert on(other, f"{other}-1", "python3", "-c",
                  "import socket; socket.create_connection("
                  f"('10.251.{SUBNET_BASE + 1}.2', 22), 2); print('ok')").stdout == "ok\n"
    finally:
        longboat("lab", "down", "--name", other, "--purge", "-q", check=False)
    assert_nothing_left(before, other)
    # the first lab is untouched
    assert on(lab, f"{lab}-1", "longboat", "info", "--format", "{{.Name}}"
              ).stdout.strip() == f"{lab}-1"


def test_down_after_up_was_killed_halfway(lab: str) -> None:
    name = f"{PREFIX}c"
    before = state_now()
    bindir = Path(sys.executable).parent
    up = subprocess.Popen([str(bindir / "longboat"), "lab", "up", "--name", name, "--nodes",
                           "3", "--subnet", f"10.251.{SUBNET_BASE + 2}.0/24"],
                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    record = Path(f"/run/longboat-lab/{name}/lab.json")
    deadline = time.monotonic() + 60
    try:
        while True:          # until the second node's sshd step has begun
            try:
                made = json.loads(record.read_text())["Made"]
                if "sshd" in made.get(f"{name}-2", []):
                    break
            except (OSError, ValueError):
                pass
            assert up.poll() is None, "lab up finished before it could be killed"
            assert time.monotonic() < deadline
            time.sleep(0.005)
    finally:
        up.send_signal(signal.SIGKILL)
        up.wait()
    assert "failed" in longboat("lab", "ls").stdout
    longboat("lab", "down", "--name", name, "--purge")
    assert_nothing_left(before, name)


def test_down_leaves_nothing(lab: str, baseline: hoststate.Snapshot) -> None:
    on(lab, f"{lab}-3", "longboat", "image", "bootstrap", "busybox")
    on(lab, f"{lab}-3", "longboat", "run", "-d", "busybox", "sleep", "1000")
    longboat("lab", "down", "--name", lab, "--purge")
    assert_nothing_left(baseline, PREFIX)
    assert not os.path.exists(f"/run/longboat-lab/{lab}")
    assert not os.path.exists(f"/var/lib/longboat-lab/{lab}")
