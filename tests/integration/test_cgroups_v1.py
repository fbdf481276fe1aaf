"""cgroup v1 against the real kernel: limits read back from the kernel's files and seen
to bite (fork refused, OOM kill, frozen tasks, device access denied).

Everything lives under a unique /longboat-test-<hex> parent in every hierarchy; fixtures
kill every process they start and remove every directory, even when a test fails.
"""

from __future__ import annotations

import errno
import os
import secrets
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from longboat.cgroups import (
    CgroupV1,
    host_version,
    open_cgroup,
    remove_empty_parents,
    v1_hierarchies,
)
from longboat.errors import InvalidArgument, NotFound, SystemFault

MiB = 1 << 20


def _skip_reason() -> str | None:
    if os.geteuid() != 0:
        return "needs root to create cgroups"
    if host_version() != 1:
        return "the host runs cgroup v2, not v1"
    if not any("memory" in h.subsystems for h in v1_hierarchies()):
        return "no cgroup v1 memory controller is mounted under /sys/fs/cgroup"
    return None


SKIP = _skip_reason()
pytestmark = [pytest.mark.integration, pytest.mark.skipif(SKIP is not None, reason=SKIP or "")]


def wait_for(condition: Callable[[], bool], timeout: float = 10.0) -> bool:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.01)
    return True


def read(directory: str, name: str) -> str:
    with open(os.path.join(directory, name)) as f:
        return f.read().strip()


def proc_state(pid: int) -> str:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("State:"):
                return line.split()[1]
    raise AssertionError(f"no State in /proc/{pid}/status")


def force_remove(parent: str) -> list[str]:
    """Last-resort cleanup of everything under ``parent`` in every hierarchy: thaw, kill,
    rmdir deepest first. Returns the directories that could not be removed."""
    left = []
    mountpoints = [h.mountpoint for h in v1_hierarchies()]
    if os.path.isdir("/sys/fs/cgroup/unified"):
        mountpoints.append("/sys/fs/cgroup/unified")  # hybrid hosts: membership only
    for mountpoint in mountpoints:
        top = mountpoint + parent
        if not os.path.isdir(top):
            continue
        for dirpath, _dirs, _files in os.walk(top, topdown=False):
            if os.path.exists(os.path.join(dirpath, "freezer.state")):
                with open(os.path.join(dirpath, "freezer.state"), "w") as f:
                    f.write("THAWED")
            for pid in read(dirpath, "cgroup.procs").split():
                try:
                    os.kill(int(pid), signal.SIGKILL)
                except ProcessLookupError:
                    pass

            def gone(path: str = dirpath) -> bool:
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    return True
                except OSError:
                    return False
                return True

            if not wait_for(gone, 5):
                left.append(dirpath)
    return left


@pytest.fixture(scope="module")
def parent() -> Iterator[str]:
    path = f"/longboat-test-{secrets.token_hex(4)}"
    yield path
    left = force_remove(path)
    assert not left, f"cgroup directories left behind: {left}"
    assert not any(os.path.exists(h.mountpoint + path) for h in v1_hierarchies())


@pytest.fixture
def make_cgroup(parent: str) -> Iterator[Callable[[str], CgroupV1]]:
    made: list[CgroupV1] = []

    def make(name: str) -> CgroupV1:
        cgroup = open_cgroup(f"{parent}/{name}")
        assert isinstance(cgroup, CgroupV1)
        made.append(cgroup)
        cgroup.create()
        return cgroup

    yield make
    for cgroup in reversed(made):
        if cgroup.exists():
            cgroup.signal_all(signal.SIGKILL)
            cgroup.destroy(timeout=5)


@pytest.fixture
def cg(make_cgroup: Callable[[str], CgroupV1], request: pytest.FixtureRequest) -> CgroupV1:
    return make_cgroup(request.node.name.replace("[", "-").replace("]", ""))


@pytest.fixture
def spawn() -> Iterator[Callable[..., subprocess.Popen[str]]]:
    """Start processes; every one is killed and reaped at teardown."""
    started: list[subprocess.Popen[str]] = []

    def start(*argv: str, **kwargs: Any) -> subprocess.Popen[str]:
        proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, **kwargs)
        started.append(proc)
        return proc

    yield start
    for proc in started:
        proc.kill()
        proc.communicate()


def python_after_go(code: str) -> tuple[str, ...]:
    """A Python child that starts up, then waits for a line on stdin before running
    ``code``: the test moves it into the cgroup in between, so the work is charged there."""
    return (sys.executable, "-c", f"import os, sys\nsys.stdin.readline()\n{code}")


def go(proc: subprocess.Popen[str]) -> None:
    assert proc.stdin is not None
    proc.stdin.write("go\n")
    proc.stdin.flush()


# -- create ---------------------------------------------------------------------------

def test_create_makes_the_cgroup_in_every_hierarchy(cg: CgroupV1, parent: str) -> None:
    assert cg.exists()
    assert {h.name for h in cg.hierarchies} == set(cg.paths)
    for directory in cg.paths.values():
        assert os.path.isdir(directory)
    cpuset = cg.dir("cpuset")
    if cpuset is not None:
        # copied down from the root, else adding a task would fail with ENOSPC
        root_cpuset = cpuset[: -len(cg.path)]
        for level in (os.path.dirname(cpuset), cpuset):
            assert read(level, "cpuset.cpus") == read(root_cpuset, "cpuset.cpus")
            assert read(level, "cpuset.mems") == read(root_cpuset, "cpuset.mems")
    cg.create()  # idempotent
    assert cg.exists()


# -- resources ------------------------------------------------------------------------

def test_set_writes_what_the_kernel_reads_back(cg: CgroupV1) -> None:
    cpus = read(os.path.dirname(cg.dir("cpuset") or ""), "cpuset.cpus")
    first_cpu = cpus.split(",")[0].split("-")[0]
    cg.set({"memory": {"limit": 64 * MiB, "reservation": 32 * MiB, "disableOOMKiller": True},
            "cpu": {"shares": 512, "quota": 50000, "period": 100000,
                    "cpus": first_cpu, "mems": "0"},
            "pids": {"limit": 20}})
    memory, cpu, cpuset, pids = (cg.dir(s) or "" for s in ("memory", "cpu", "cpuset", "pids"))
    assert read(memory, "memory.limit_in_bytes") == str(64 * MiB)
    assert read(memory, "memory.soft_limit_in_bytes") == str(32 * MiB)
    assert "oom_kill_disable 1" in read(memory, "memory.oom_control")
    assert read(cpu, "cpu.shares") == "512"
    assert read(cpu, "cpu.cfs_quota_us") == "50000"
    assert read(cpu, "cpu.cfs_period_us") == "100000"
    assert read(cpuset, "cpuset.cpus") == first_cpu
    assert read(cpuset, "cpuset.mems") == "0"
    assert read(pids, "pids.max") == "20"
    # unset fields keep their values; -1 and <= 0 mean unlimited
    cg.set({"cpu": {"quota": -1}, "pids": {"limit": 0}})
    assert read(cpu, "cpu.cfs_quota_us") == "-1"
    assert read(cpu, "cpu.shares") == "512"
    assert read(pids, "pids.max") == "max"
    assert read(memory, "memory.limit_in_bytes") == str(64 * MiB)


def test_memory_and_swap_limits_move_in_either_direction(cg: CgroupV1) -> None:
    memory = cg.dir("memory") or ""
    if not os.path.exists(os.path.join(memory, "memory.memsw.limit_in_bytes")):
        pytest.skip("the kernel does not account swap (no memory.memsw.limit_in_bytes)")

    def limits() -> tuple[int, int]:
        return (int(read(memory, "memory.limit_in_bytes")),
                int(read(memory, "memory.memsw.limit_in_bytes")))

    for limit, swap in [(64, 128), (256, 512), (32, 48), (300, 300), (16, 1024)]:
        cg.set({"memory": {"limit": limit * MiB, "swap": swap * MiB}})
        assert limits() == (limit * MiB, swap * MiB)
    with pytest.raises(InvalidArgument, match=r"memory\.limit .* memory\+swap"):
        cg.set({"memory": {"limit": 2048 * MiB}})
    assert limits() == (16 * MiB, 1024 * MiB)
    cg.set({"memory": {"limit": -1}})
    unlimited = limits()
    assert unlimited[0] == unlimited[1] > 1 << 60


def test_values_the_kernel_refuses_are_invalid_arguments(cg: CgroupV1) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.cpu\.quota.*'500'"):
        cg.set({"cpu": {"quota": 500}})  # below the kernel's 1 ms minimum
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.cpu\.cpus.*'4095'"):
        cg.set({"cpu": {"cpus": "4095"}})
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.memory\.limit"):
        cg.set({"memory": {"limit": -7}})


def test_blkio_weight(cg: CgroupV1) -> None:
    blkio = cg.dir("blkio")
    names = [n for n in ("blkio.bfq.weight", "blkio.weight")
             if blkio is not None and os.path.exists(os.path.join(blkio, n))]
    if not names:
        with pytest.raises(SystemFault, match="blkio weight not supported"):
            cg.set({"blockIO": {"weight": 500}})
        pytest.skip("this kernel has no blkio weight file")
    assert blkio is not None
    cg.set({"blockIO": {"weight": 500}})
    assert read(blkio, names[0]).split()[-1] == "500"


def test_device_rules_bite(cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    cg.set({"devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]})
    assert read(cg.dir("devices") or "", "devices.list") == "c 1:3 rw"
    proc = spawn(*python_after_go(
        "for dev in ('/dev/null', '/dev/zero'):\n"
        "    try:\n"
        "        os.close(os.open(dev, os.O_RDONLY)); print(dev, 0)\n"
        "    except OSError as e:\n"
        "        print(dev, e.errno)\n"))
    cg.add(proc.pid)
    go(proc)
    out, err = proc.communicate(timeout=30)
    assert out.split() == ["/dev/null", "0", "/dev/zero", str(errno.EPERM)], err


# -- processes ------------------------------------------------------------------------

def test_add_moves_a_process_and_pids_sees_descendant_cgroups(
        make_cgroup: Callable[[str], CgroupV1],
        spawn: Callable[..., subprocess.Popen[str]]) -> None:
    cg = make_cgroup("add")
    sub = make_cgroup("add/sub")
    a, b = spawn("sleep", "60"), spawn("sleep", "60")
    cg.add(a.pid)
    sub.add(b.pid)
    assert cg.pids() == sorted([a.pid, b.pid])
    assert sub.pids() == [b.pid]
    with open(f"/proc/{a.pid}/cgroup") as f:
        lines = f.read().splitlines()
    assert any(line.endswith(f":memory:{cg.path}") for line in lines), lines
    # the leaf's destroy takes "sub" along once everything is dead
    cg.signal_all(signal.SIGKILL)
    assert a.wait(timeout=10) == b.wait(timeout=10) == -signal.SIGKILL
    cg.destroy()
    assert not cg.exists() and not sub.exists()


def test_add_self_moves_a_child_before_it_execs(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn("cat", "/proc/self/cgroup", preexec_fn=cg.add_self)
    out, err = proc.communicate(timeout=30)
    assert proc.returncode == 0, err
    lines = out.splitlines()
    for h in cg.hierarchies:
        assert f"{h.options}:{cg.path}" in {line.split(":", 1)[1] for line in lines}, lines


def test_add_of_missing_process_or_cgroup_is_not_found(
        cg: CgroupV1, parent: str, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    dead = spawn("true")
    dead.wait()
    with pytest.raises(NotFound, match=f"process {dead.pid}"):
        cg.add(dead.pid)
    with pytest.raises(NotFound):
        open_cgroup(f"{parent}/never-made").add(os.getpid())
    with pytest.raises(NotFound):
        open_cgroup(f"{parent}/never-made").set({"pids": {"limit": 3}})


def test_pids_limit_refuses_forks(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    cg.set({"pids": {"limit": 4}})
    proc = spawn(*python_after_go(
        "r, w = os.pipe()\n"
        "kids, err = [], 0\n"
        "for _ in range(10):\n"
        "    try:\n"
        "        pid = os.fork()\n"
        "    except OSError as e:\n"
        "        err = e.errno\n"
        "        break\n"
        "    if pid == 0:\n"
        "        os.close(w); os.read(r, 1); os._exit(0)\n"
        "    kids.append(pid)\n"
        "os.close(w)\n"
        "for kid in kids:\n"
        "    os.waitpid(kid, 0)\n"
        "print(len(kids), err)\n"))
    cg.add(proc.pid)
    go(proc)
    out, err = proc.communicate(timeout=30)
    assert out.split() == ["3", str(errno.EAGAIN)], err  # itself + 3 children = 4
    assert "max 1" in read(cg.dir("pids") or "", "pids.events")


def test_freeze_and_thaw_a_sleeping_process(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    proc = spawn("sleep", "60")
    cg.add(proc.pid)
    assert not cg.frozen()
    cg.freeze()
    assert cg.frozen()
    assert read(cg.dir("freezer") or "", "freezer.state") == "FROZEN"
    assert proc_state(proc.pid) == "D"  # frozen tasks show as uninterruptible
    cg.freeze()  # idempotent
    cg.thaw()
    assert not cg.frozen()
    assert read(cg.dir("freezer") or "", "freezer.state") == "THAWED"
    assert wait_for(lambda: proc_state(proc.pid) == "S")


def test_signal_all_kills_even_a_frozen_cgroup(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    procs = [spawn("sleep", "60") for _ in range(3)]
    for proc in procs:
        cg.add(proc.pid)
    cg.freeze()
    cg.signal_all(signal.SIGKILL)
    assert [p.wait(timeout=10) for p in procs] == [-signal.SIGKILL] * 3
    assert not cg.frozen()
    assert wait_for(lambda: cg.pids() == [])


def test_memory_limit_gets_the_process_oom_killed(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    cg.set({"memory": {"limit": 16 * MiB}})
    proc = spawn(*python_after_go("b = bytearray(64 << 20)\nprint('survived')"))
    cg.add(proc.pid)
    go(proc)
    out, _ = proc.communicate(timeout=60)
    assert proc.returncode == -signal.SIGKILL, out
    assert cg.oom_kills() >= 1
    stats = cg.stats()
    assert stats.oom_kills >= 1
    assert stats.memory_limit == 16 * MiB
    assert 0 < stats.memory_peak <= 16 * MiB


def test_stats_are_sane(cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    assert cg.stats().memory_limit is None and cg.stats().pids_limit is None
    cg.set({"memory": {"limit": 256 * MiB}, "pids": {"limit": 10}})
    proc = spawn(*python_after_go(
        "b = bytearray(32 << 20)\n"
        "print('ready', flush=True)\n"
        "sys.stdin.readline()\n"))
    cg.add(proc.pid)
    go(proc)
    assert proc.stdout is not None and proc.stdout.readline().strip() == "ready"
    stats = cg.stats()
    assert 32 * MiB <= stats.memory_usage <= stats.memory_peak <= 256 * MiB
    assert stats.memory_limit == 256 * MiB
    assert stats.cpu_usage_ns > 0  # zeroing 32 MiB takes some CPU time
    assert (stats.pids_current, stats.pids_limit) == (1, 10)
    assert stats.oom_kills == 0
    go(proc)
    assert proc.wait(timeout=30) == 0


# -- destroy --------------------------------------------------------------------------

def test_destroy_removes_every_directory_right_after_the_kill(
        make_cgroup: Callable[[str], CgroupV1],
        spawn: Callable[..., subprocess.Popen[str]]) -> None:
    cg = make_cgroup("destroy")
    proc = spawn("sleep", "60")
    cg.add(proc.pid)
    directories = list(cg.paths.values())
    cg.signal_all(signal.SIGKILL)
    cg.destroy()  # the task may still be exiting: destroy waits for EBUSY to clear
    assert not any(os.path.exists(d) for d in directories)
    assert not cg.exists()
    cg.destroy()  # idempotent
    assert proc.wait(timeout=10) == -signal.SIGKILL


def test_destroy_of_a_busy_cgroup_gives_up_with_a_conflict(
        cg: CgroupV1, spawn: Callable[..., subprocess.Popen[str]]) -> None:
    from longboat.errors import Conflict

    proc = spawn("sleep", "60")
    cg.add(proc.pid)
    with pytest.raises(Conflict, match=str(proc.pid)):
        cg.destroy(timeout=0.2)
    assert cg.exists()


def test_remove_empty_parents_keeps_shared_parents_in_use(
        spawn: Callable[..., subprocess.Popen[str]]) -> None:
    shared = f"/longboat-test-{secrets.token_hex(4)}"
    try:
        one, two = open_cgroup(f"{shared}/one"), open_cgroup(f"{shared}/two")
        one.create()
        two.create()
        one.destroy()
        remove_empty_parents(one.path)
        assert all(os.path.isdir(h.mountpoint + shared) for h in v1_hierarchies())
        two.destroy()
        remove_empty_parents(two.path)
        assert not any(os.path.exists(h.mountpoint + shared) for h in v1_hierarchies())
    finally:
        assert not force_remove(shared)
