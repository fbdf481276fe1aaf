"""cgroup v2 on a fake cgroupfs: a plain directory tree standing in for /sys/fs/cgroup.

A plain directory gets no interface files on mkdir, so the tests read back exactly what
the code wrote (writes create missing files, like a shell's ``>``) and pre-create the
files the kernel would provide for reading. Host detection and mountinfo parsing, which
both versions share, are tested here too.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longboat.cgroups import (
    CgroupStats,
    CgroupV1,
    CgroupV2,
    Hierarchy,
    host_version,
    open_cgroup,
    parse_mountinfo,
    remove_empty_parents,
)
from longboat.cgroups.resources import blkio_to_io_weight, shares_to_weight
from longboat.errors import InvalidArgument, NotFound, SystemFault

pytestmark = pytest.mark.unit

MiB = 1 << 20
ALL = {"cpuset", "cpu", "io", "memory", "pids"}


@pytest.fixture
def root(tmp_path: Path) -> Path:
    (tmp_path / "cgroup.controllers").write_text("cpuset cpu io memory pids\n")
    (tmp_path / "cgroup.subtree_control").write_text("")
    return tmp_path


@pytest.fixture
def cg(root: Path) -> CgroupV2:
    cgroup = open_cgroup("/longboat/abc", root=str(root))
    assert isinstance(cgroup, CgroupV2)
    cgroup.create()
    return cgroup


def leaf(root: Path) -> Path:
    return root / "longboat" / "abc"


def read(path: Path) -> str:
    return path.read_text().strip()


def tokens(path: Path) -> set[str]:
    return set(path.read_text().split())


def written(root: Path) -> set[str]:
    """The interface files present in the leaf (all of them written by the code)."""
    return {p.name for p in leaf(root).iterdir()}


# -- detection and paths ----------------------------------------------------------------

def test_host_version_follows_cgroup_controllers(
        root: Path, tmp_path_factory: pytest.TempPathFactory) -> None:
    assert host_version(str(root)) == 2
    assert host_version(str(tmp_path_factory.mktemp("plain"))) == 1


def test_open_cgroup_takes_relative_paths_from_the_root(root: Path) -> None:
    cgroup = open_cgroup("longboat//./abc/", root=str(root))
    assert isinstance(cgroup, CgroupV2)
    assert (cgroup.version, cgroup.path) == (2, "/longboat/abc")
    assert cgroup.dir == f"{root}/longboat/abc"
    assert not cgroup.exists()


@pytest.mark.parametrize("path", ["", "/", "/longboat/../etc", "..", "a/\0b"])
def test_open_cgroup_refuses_the_root_and_escapes(root: Path, path: str) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.cgroupsPath"):
        open_cgroup(path, root=str(root))


def test_open_cgroup_without_any_cgroup_mount_is_a_system_fault(tmp_path: Path) -> None:
    with pytest.raises(SystemFault, match="no cgroup hierarchy"):
        open_cgroup("/longboat/abc", root=str(tmp_path))


MOUNTINFO = """\
24 31 0:22 / /sys rw,nosuid,nodev,noexec,relatime shared:7 - sysfs sysfs rw
31 23 0:28 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755
32 31 0:29 / /sys/fs/cgroup/cpu,cpuacct rw,relatime shared:10 - cgroup cgroup rw,cpu,cpuacct
34 31 0:31 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,clone_children,cpuset
35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
40 31 0:37 / /sys/fs/cgroup/systemd rw,relatime - cgroup cgroup rw,xattr,name=systemd
41 31 0:38 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw,nsdelegate
42 31 0:32 / /sys/fs/cgroup/memory\\040again rw,relatime - cgroup cgroup rw,memory
43 23 0:39 / /mnt/net\\040cls rw,relatime - cgroup cgroup rw,net_cls
44 31 0:40 / /sys/fs/cgroup/net\\040cls rw,relatime - cgroup cgroup rw,net_cls,net_prio
"""


def test_parse_mountinfo_lists_v1_hierarchies_under_the_root() -> None:
    assert parse_mountinfo(MOUNTINFO, "/sys/fs/cgroup/") == [
        Hierarchy("cpu,cpuacct", "/sys/fs/cgroup/cpu,cpuacct", "cpu,cpuacct"),
        Hierarchy("cpuset", "/sys/fs/cgroup/cpuset", "cpuset"),
        Hierarchy("memory", "/sys/fs/cgroup/memory", "memory"),
        Hierarchy("systemd", "/sys/fs/cgroup/systemd", "name=systemd"),
        Hierarchy("net cls", "/sys/fs/cgroup/net cls", "net_cls,net_prio"),
    ]
    assert parse_mountinfo(MOUNTINFO, "/elsewhere") == []


def test_v1_cgroup_maps_subsystems_to_their_hierarchy() -> None:
    cgroup = CgroupV1("/longboat/abc", parse_mountinfo(MOUNTINFO))
    assert cgroup.dir("cpuacct") == "/sys/fs/cgroup/cpu,cpuacct/longboat/abc"
    assert cgroup.dir("memory") == "/sys/fs/cgroup/memory/longboat/abc"
    assert cgroup.dir("pids") is None
    assert cgroup.paths["systemd"] == "/sys/fs/cgroup/systemd/longboat/abc"
    with pytest.raises(SystemFault, match="pids cgroup controller"):
        cgroup.set({"pids": {"limit": 10}})
    with pytest.raises(InvalidArgument, match="needs cgroup v2"):
        cgroup.set({"unified": {"memory.high": "1"}})


def test_v1_refuses_a_missing_controller_before_writing_anything(tmp_path: Path) -> None:
    (tmp_path / "memory" / "longboat" / "abc").mkdir(parents=True)
    cgroup = CgroupV1("/longboat/abc", [Hierarchy("memory", str(tmp_path / "memory"), "memory")])
    with pytest.raises(SystemFault, match=r"linux\.resources\.pids needs the pids"):
        cgroup.set({"memory": {"limit": 64 * MiB}, "pids": {"limit": 3}})
    assert list((tmp_path / "memory" / "longboat" / "abc").iterdir()) == []
    cgroup.set({"memory": {"limit": 64 * MiB}})
    assert read(tmp_path / "memory" / "longboat" / "abc" / "memory.limit_in_bytes") == str(64 * MiB)


# -- create ---------------------------------------------------------------------------

def test_create_enables_controllers_in_every_ancestor_but_not_the_leaf(root: Path) -> None:
    cgroup = open_cgroup("/longboat/abc", root=str(root))
    cgroup.create()
    assert cgroup.exists() and leaf(root).is_dir()
    assert tokens(root / "cgroup.subtree_control") == {f"+{c}" for c in ALL}
    assert tokens(root / "longboat" / "cgroup.subtree_control") == {f"+{c}" for c in ALL}
    assert written(root) == set()  # the leaf holds processes: no controllers below it


def test_create_is_idempotent_and_enables_only_what_is_missing(root: Path) -> None:
    (root / "cgroup.subtree_control").write_text("cpu memory\n")  # the kernel's format
    cgroup = open_cgroup("/longboat/abc", root=str(root))
    cgroup.create()
    assert tokens(root / "cgroup.subtree_control") == {"+cpuset", "+io", "+pids"}
    before = {p: p.stat().st_mtime_ns for p in root.rglob("cgroup.subtree_control")}
    (root / "cgroup.subtree_control").write_text("cpu cpuset io memory pids\n")
    before[root / "cgroup.subtree_control"] = (root / "cgroup.subtree_control").stat().st_mtime_ns
    cgroup.create()
    after = {p: p.stat().st_mtime_ns for p in root.rglob("cgroup.subtree_control")}
    assert after == before


def test_create_enables_only_the_controllers_the_host_has(tmp_path: Path) -> None:
    (tmp_path / "cgroup.controllers").write_text("memory pids hugetlb\n")
    open_cgroup("/a/b/c", root=str(tmp_path)).create()
    for level in (tmp_path, tmp_path / "a", tmp_path / "a" / "b"):
        assert tokens(level / "cgroup.subtree_control") == {"+memory", "+pids"}
    assert not (tmp_path / "a" / "b" / "c" / "cgroup.subtree_control").exists()


# -- set: memory ----------------------------------------------------------------------

def test_memory_limit_reservation_and_swap(root: Path, cg: CgroupV2) -> None:
    cg.set({"memory": {"limit": 256 * MiB, "reservation": 128 * MiB, "swap": 512 * MiB}})
    d = leaf(root)
    assert read(d / "memory.max") == str(256 * MiB)
    assert read(d / "memory.low") == str(128 * MiB)
    assert read(d / "memory.swap.max") == str(256 * MiB)  # memory+swap minus memory
    assert written(root) == {"memory.max", "memory.low", "memory.swap.max"}


def test_swap_equal_to_limit_means_no_swap(root: Path, cg: CgroupV2) -> None:
    cg.set({"memory": {"limit": 64 * MiB, "swap": 64 * MiB}})
    assert read(leaf(root) / "memory.swap.max") == "0"


def test_unlimited_memory_also_unlimits_swap(root: Path, cg: CgroupV2) -> None:
    cg.set({"memory": {"limit": -1}})
    assert read(leaf(root) / "memory.max") == "max"
    assert read(leaf(root) / "memory.swap.max") == "max"
    cg.set({"memory": {"limit": 32 * MiB, "swap": -1, "reservation": -1}})
    assert read(leaf(root) / "memory.max") == str(32 * MiB)
    assert read(leaf(root) / "memory.swap.max") == "max"
    assert read(leaf(root) / "memory.low") == "max"


def test_swap_alone_is_computed_from_the_current_limit(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "memory.max").write_text(f"{100 * MiB}\n")
    cg.set({"memory": {"swap": 150 * MiB}})
    assert read(leaf(root) / "memory.swap.max") == str(50 * MiB)
    assert read(leaf(root) / "memory.max") == str(100 * MiB)
    with pytest.raises(InvalidArgument, match=r"memory\.swap .* at least"):
        cg.set({"memory": {"swap": 50 * MiB}})


def test_swap_without_any_memory_limit_is_refused(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "memory.max").write_text("max\n")
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.memory\.swap needs"):
        cg.set({"memory": {"swap": 64 * MiB}})
    assert not (leaf(root) / "memory.swap.max").exists()
    with pytest.raises(InvalidArgument, match=r"memory\.limit is unlimited"):
        cg.set({"memory": {"limit": -1, "swap": 64 * MiB}})
    assert read(leaf(root) / "memory.max") == "max"


@pytest.mark.parametrize(("memory", "field"), [
    ({"limit": -2}, "memory.limit"),
    ({"limit": "1g"}, "memory.limit"),
    ({"limit": True}, "memory.limit"),
    ({"limit": 1.5}, "memory.limit"),
    ({"reservation": -100}, "memory.reservation"),
    ({"swap": -3}, "memory.swap"),
    ({"limit": 64 * MiB, "swap": 32 * MiB}, "memory.swap"),
    ({"disableOOMKiller": "yes"}, "memory.disableOOMKiller"),
])
def test_bad_memory_values_are_refused_and_write_nothing(
        root: Path, cg: CgroupV2, memory: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"linux\.resources\.{field}"):
        cg.set({"memory": memory, "pids": {"limit": 5}})
    assert written(root) == set()


def test_zero_means_unset_and_oom_killer_switch_is_not_on_v2(root: Path, cg: CgroupV2) -> None:
    cg.set({"memory": {"limit": 0, "reservation": 0, "swap": 0, "disableOOMKiller": True},
            "cpu": {"shares": 0, "quota": 0, "period": 0, "cpus": "", "mems": ""},
            "blockIO": {"weight": 0}})
    assert written(root) == set()


# -- set: cpu, cpuset, pids, io ----------------------------------------------------------

@pytest.mark.parametrize(("shares", "weight"), [
    (1, 1), (2, 1), (3, 1), (512, 20), (1024, 39), (2048, 79), (262143, 9999),
    (262144, 10000), (1_000_000, 10000),
])
def test_cpu_shares_become_cpu_weight(root: Path, cg: CgroupV2, shares: int, weight: int) -> None:
    assert shares_to_weight(shares) == weight
    cg.set({"cpu": {"shares": shares}})
    assert read(leaf(root) / "cpu.weight") == str(weight)


def test_negative_shares_are_refused(root: Path, cg: CgroupV2) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.cpu\.shares"):
        cg.set({"cpu": {"shares": -1}})
    assert written(root) == set()


@pytest.mark.parametrize(("cpu", "existing", "expected"), [
    ({"quota": 50000, "period": 100000}, None, "50000 100000"),
    ({"quota": -1, "period": 200000}, None, "max 200000"),
    ({"quota": -5000}, "30000 100000", "max 100000"),
    ({"quota": 20000}, "max 250000", "20000 250000"),
    ({"quota": 20000}, None, "20000 100000"),
    ({"period": 50000}, "30000 100000", "30000 50000"),
    ({"period": 50000}, None, "max 50000"),
])
def test_cpu_max_keeps_the_half_not_asked_for(
        root: Path, cg: CgroupV2, cpu: dict[str, int], existing: str | None,
        expected: str) -> None:
    if existing is not None:
        (leaf(root) / "cpu.max").write_text(existing + "\n")
    cg.set({"cpu": cpu})
    assert read(leaf(root) / "cpu.max") == expected


def test_cpuset(root: Path, cg: CgroupV2) -> None:
    cg.set({"cpu": {"cpus": "0-3,6", "mems": "0"}})
    assert read(leaf(root) / "cpuset.cpus") == "0-3,6"
    assert read(leaf(root) / "cpuset.mems") == "0"


@pytest.mark.parametrize("cpu", [{"cpus": 3}, {"cpus": "0-3; rm"}, {"mems": "0\n1"},
                                 {"period": -1}, {"quota": "max"}])
def test_bad_cpu_values_are_refused(root: Path, cg: CgroupV2, cpu: dict[str, object]) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.cpu\."):
        cg.set({"cpu": cpu})
    assert written(root) == set()


@pytest.mark.parametrize(("limit", "expected"), [(100, "100"), (1, "1"), (0, "max"),
                                                 (-1, "max")])
def test_pids_max(root: Path, cg: CgroupV2, limit: int, expected: str) -> None:
    cg.set({"pids": {"limit": limit}})
    assert read(leaf(root) / "pids.max") == expected


@pytest.mark.parametrize(("weight", "io_weight"), [(10, 1), (11, 11), (100, 910),
                                                   (500, 4950), (1000, 10000)])
def test_blkio_weight_becomes_io_weight(
        root: Path, cg: CgroupV2, weight: int, io_weight: int) -> None:
    assert blkio_to_io_weight(weight) == io_weight
    cg.set({"blockIO": {"weight": weight}})
    assert read(leaf(root) / "io.weight") == str(io_weight)


def test_blkio_weight_goes_to_bfq_unconverted_when_bfq_is_there(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "io.bfq.weight").write_text("default 100\n")
    cg.set({"blockIO": {"weight": 500}})
    assert read(leaf(root) / "io.bfq.weight") == "500"
    assert written(root) == {"io.bfq.weight"}


@pytest.mark.parametrize("weight", [9, 1001, -10, "500"])
def test_bad_blkio_weight_is_refused(root: Path, cg: CgroupV2, weight: object) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.blockIO\.weight"):
        cg.set({"blockIO": {"weight": weight}})
    assert written(root) == set()


def test_device_rules_are_checked_but_not_applied_on_v2(root: Path, cg: CgroupV2) -> None:
    cg.set({"devices": [{"allow": False, "access": "rwm"},
                        {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"}]})
    assert written(root) == set()


@pytest.mark.parametrize(("rule", "field"), [
    ({"type": "c"}, r"devices\[0\]\.allow"),
    ({"allow": True, "type": "x"}, r"devices\[0\]\.type"),
    ({"allow": True, "access": "rwx"}, r"devices\[0\]\.access"),
    ({"allow": True, "access": ""}, r"devices\[0\]\.access"),
    ({"allow": True, "major": -7}, r"devices\[0\]\.major"),
    ({"allow": True, "minor": "3"}, r"devices\[0\]\.minor"),
])
def test_bad_device_rules_are_refused(
        root: Path, cg: CgroupV2, rule: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidArgument, match=rf"linux\.resources\.{field}"):
        cg.set({"devices": [rule]})


def test_unified_values_are_written_as_given(root: Path, cg: CgroupV2) -> None:
    cg.set({"unified": {"memory.high": "1000000", "pids.max": "7"}})
    assert read(leaf(root) / "memory.high") == "1000000"
    assert read(leaf(root) / "pids.max") == "7"
    for key in ("../escape", "noDot", ".hidden"):
        with pytest.raises(InvalidArgument, match=r"linux\.resources\.unified"):
            cg.set({"unified": {key: "1"}})


@pytest.mark.parametrize("resources", [[], {"memory": 5}, {"devices": {"allow": True}},
                                       {"cpu": ["shares"]}])
def test_malformed_resources_are_refused(cg: CgroupV2, resources: object) -> None:
    with pytest.raises(InvalidArgument, match=r"linux\.resources"):
        cg.set(resources)  # type: ignore[arg-type]


def test_a_value_the_kernel_refuses_names_the_field_and_value(root: Path, cg: CgroupV2) -> None:
    # /dev/full fails every write with ENOSPC, one of the kernel's "not this value" errnos.
    (leaf(root) / "cpu.max").symlink_to("/dev/full")
    with pytest.raises(InvalidArgument, match=r"linux\.resources\.cpu\.quota.*'500 100000'"):
        cg.set({"cpu": {"quota": 500, "period": 100000}})


def test_set_on_a_missing_cgroup_is_not_found(root: Path) -> None:
    with pytest.raises(NotFound):
        open_cgroup("/longboat/gone", root=str(root)).set({"pids": {"limit": 3}})


# -- stats, pids, oom -----------------------------------------------------------------

def test_stats_parses_the_interface_files(root: Path, cg: CgroupV2) -> None:
    d = leaf(root)
    (d / "memory.current").write_text("1234\n")
    (d / "memory.peak").write_text("5678\n")
    (d / "memory.max").write_text("max\n")
    (d / "cpu.stat").write_text("usage_usec 1500\nuser_usec 1000\nsystem_usec 500\n")
    (d / "pids.current").write_text("3\n")
    (d / "pids.max").write_text("10\n")
    (d / "memory.events").write_text("low 0\nhigh 0\nmax 4\noom 2\noom_kill 1\n")
    assert cg.stats() == CgroupStats(memory_usage=1234, memory_peak=5678, memory_limit=None,
                                     cpu_usage_ns=1_500_000, pids_current=3, pids_limit=10,
                                     oom_kills=1)
    assert cg.oom_kills() == 1
    (d / "memory.peak").unlink()
    (d / "memory.max").write_text("1048576\n")
    (d / "pids.max").write_text("max\n")
    stats = cg.stats()
    assert (stats.memory_peak, stats.memory_limit, stats.pids_limit) == (0, MiB, None)
    assert stats.as_dict()["cpu_usage_ns"] == 1_500_000


def test_stats_of_a_missing_cgroup_is_not_found(root: Path) -> None:
    with pytest.raises(NotFound):
        open_cgroup("/longboat/gone", root=str(root)).stats()


def test_pids_include_descendant_cgroups(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "cgroup.procs").write_text("12\n7\n")
    (leaf(root) / "sub" / "deeper").mkdir(parents=True)
    (leaf(root) / "sub" / "deeper" / "cgroup.procs").write_text("99\n")
    (leaf(root) / "sub" / "cgroup.procs").write_text("")
    assert cg.pids() == [7, 12, 99]


def test_add_writes_cgroup_procs(root: Path, cg: CgroupV2) -> None:
    cg.add(os.getpid())
    assert read(leaf(root) / "cgroup.procs") == str(os.getpid())
    cg.add_self()
    assert read(leaf(root) / "cgroup.procs") == "0"  # the kernel reads 0 as "the caller"
    for bad in (0, -1, True):
        with pytest.raises(InvalidArgument, match="not a process id"):
            cg.add(bad)
    with pytest.raises(NotFound):
        open_cgroup("/longboat/gone", root=str(root)).add(os.getpid())


# -- freezer --------------------------------------------------------------------------

@pytest.fixture
def fake_kernel(root: Path, cg: CgroupV2) -> Iterator[None]:
    """Mirrors cgroup.freeze into cgroup.events the way the kernel reports it."""
    d = leaf(root)
    (d / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    stop = threading.Event()

    def run() -> None:
        while not stop.wait(0.001):
            try:
                wanted = (d / "cgroup.freeze").read_text().strip()
            except FileNotFoundError:
                continue
            text = f"populated 1\nfrozen {wanted}\n"
            if wanted and (d / "cgroup.events").read_text() != text:
                (d / "cgroup.events").write_text(text)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    yield
    stop.set()
    thread.join()


@pytest.mark.usefixtures("fake_kernel")
def test_freeze_and_thaw_wait_for_cgroup_events(root: Path, cg: CgroupV2) -> None:
    assert not cg.frozen()
    cg.freeze()
    assert read(leaf(root) / "cgroup.freeze") == "1"
    assert cg.frozen()
    cg.thaw()
    assert read(leaf(root) / "cgroup.freeze") == "0"
    assert not cg.frozen()


def test_freeze_that_never_completes_gives_up_and_thaws(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "cgroup.events").write_text("populated 1\nfrozen 0\n")
    started = time.monotonic()
    with pytest.raises(SystemFault, match="did not freeze"):
        cg.freeze(timeout=0.1)
    assert 0.1 <= time.monotonic() - started < 2
    assert read(leaf(root) / "cgroup.freeze") == "0"


def test_freeze_of_a_missing_cgroup_is_not_found(root: Path) -> None:
    with pytest.raises(NotFound):
        open_cgroup("/longboat/gone", root=str(root)).freeze()


# -- signals --------------------------------------------------------------------------

@pytest.fixture
def sleepers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs = [subprocess.Popen(["sleep", "60"]) for _ in range(2)]
    yield procs
    for proc in procs:
        proc.kill()
        proc.wait()


def test_signal_all_signals_every_process_and_ignores_gone_ones(
        root: Path, cg: CgroupV2, sleepers: list[subprocess.Popen[bytes]]) -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()
    (leaf(root) / "cgroup.procs").write_text(f"{sleepers[0].pid}\n{gone.pid}\n")
    (leaf(root) / "child").mkdir()
    (leaf(root) / "child" / "cgroup.procs").write_text(f"{sleepers[1].pid}\n")
    cg.signal_all(signal.SIGTERM)
    assert [p.wait(timeout=10) for p in sleepers] == [-signal.SIGTERM, -signal.SIGTERM]


def test_sigkill_uses_cgroup_kill_when_the_kernel_has_it(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "cgroup.kill").write_text("")
    cg.signal_all(signal.SIGKILL)
    assert read(leaf(root) / "cgroup.kill") == "1"


# -- destroy --------------------------------------------------------------------------

def test_destroy_removes_the_leaf_deepest_first_and_keeps_the_parent(root: Path) -> None:
    cgroup = open_cgroup("/longboat/abc", root=str(root))
    (leaf(root) / "sub" / "deeper").mkdir(parents=True)
    (leaf(root) / "sub2").mkdir()
    assert cgroup.exists()
    cgroup.destroy()
    assert not cgroup.exists()
    assert (root / "longboat").is_dir()
    cgroup.destroy()  # idempotent


def test_destroy_reports_what_is_not_a_cgroup(root: Path, cg: CgroupV2) -> None:
    (leaf(root) / "cpu.max").write_text("max 100000\n")  # no kernel to make this vanish
    with pytest.raises(SystemFault, match="cannot remove cgroup"):
        cg.destroy()


def test_remove_empty_parents_stops_at_shared_and_busy_ancestors(root: Path) -> None:
    (root / "a" / "b" / "c").mkdir(parents=True)
    (root / "a" / "b" / "other").mkdir()
    open_cgroup("/a/b/c", root=str(root)).destroy()
    remove_empty_parents("/a/b/c", root=str(root))
    assert (root / "a" / "b").is_dir()  # still holds "other"
    open_cgroup("/a/b/other", root=str(root)).destroy()
    remove_empty_parents("/a/b/other", "/a", root=str(root))
    assert not (root / "a" / "b").exists() and (root / "a").is_dir()
    remove_empty_parents("/a/b/other", root=str(root))
    assert not (root / "a").exists()
    with pytest.raises(InvalidArgument, match="not an ancestor"):
        remove_empty_parents("/a/b", "/x", root=str(root))
