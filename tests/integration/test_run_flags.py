"""docker 20.10's namespace, cgroup and runtime flags of ``run``/``create`` against a real
longboatd with a busybox image: ``--pid host`` and ``--pid container:x``, ``--ipc
shareable``/``container:x``/``host``, ``--uts host``, ``--group-add``,
``--oom-score-adj``, ``--cpu-period``/``--cpu-quota``/``--cpuset-mems`` and
``--memory-swappiness`` in the container's cgroup, ``--device-cgroup-rule``,
``--cgroup-parent``, ``--cidfile``, ``--runtime runc``, ``--kernel-memory``'s warning and
the refusals. Every resource is named lbr-*."""

from __future__ import annotations

import json
import os
import re
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from tests.support.cli import CLI
from tests.support.engine import Longboatd
from tests.support.fixtures import busybox_engine_fixture, cli_fixture, leftovers_fixture

pytestmark = pytest.mark.integration


engine = busybox_engine_fixture("longboatd-run-flags")
cli = cli_fixture()
no_leftovers = leftovers_fixture()


def inspect(engine: Longboatd, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(engine.docker("inspect", name).stdout)[0]
    return found


def sh(cli: CLI, script: str, *flags: str, check: bool = True) -> str:
    """``run --rm`` a shell script with the flags; its output."""
    return cli("run", "--rm", "--network", "none", *flags, "bb:1", "sh", "-c", script,
               check=check).stdout


def background(cli: CLI, name: str, *flags: str, script: str = "sleep 120") -> int:
    cli("run", "-d", "--network", "none", "--name", name, *flags, "bb:1", "sh", "-c",
        script)
    pid: int = inspect(cli.engine, name)["State"]["Pid"]
    assert pid > 0
    return pid


# -- namespaces ------------------------------------------------------------------------------
def test_pid_host_sees_the_hosts_processes(cli: CLI) -> None:
    own = sh(cli, "echo $$; ls /proc | grep -c '^[0-9]'")
    shell_pid, count = own.split()
    assert shell_pid == "1" and int(count) < 5           # a private PID namespace
    seen = sh(cli, "ls -d /proc/[0-9]* | wc -l; cat /proc/1/comm", "--pid", "host")
    count, init = seen.split()[:2]
    assert int(count) > 20
    assert init == Path("/proc/1/comm").read_text().strip()


def test_pid_of_another_container(cli: CLI) -> None:
    background(cli, "lbr-pid-donor", script="exec sleep 120")
    seen = sh(cli, "cat /proc/1/cmdline | tr '\\0' ' '; echo; echo $$",
              "--pid", "container:lbr-pid-donor")
    cmdline, mine = seen.splitlines()[:2]
    assert cmdline.strip() == "sleep 120" and mine != "1"
    # a container that does not run cannot be joined
    cli("create", "--name", "lbr-pid-idle", "bb:1", "true")
    refused = cli("run", "--rm", "--pid", "container:lbr-pid-idle", "bb:1", "true",
                  check=False)
    assert refused.returncode != 0
    assert "is not running" in refused.stderr
    missing = cli("run", "--rm", "--pid", "container:lbr-nope", "bb:1", "true",
                  check=False)
    assert "No such container: lbr-nope" in missing.stderr          # at create, a 400
    assert "Unable to find image" not in missing.stderr


def test_ipc_of_a_shareable_container(cli: CLI, engine: Longboatd) -> None:
    donor = background(cli, "lbr-ipc-donor", "--ipc", "shareable",
                       script="echo hello > /dev/shm/lbr-note; exec sleep 120")
    time.sleep(0.2)
    out = sh(cli, "cat /dev/shm/lbr-note; readlink /proc/self/ns/ipc; "
                  "echo back > /dev/shm/lbr-reply", "--ipc", "container:lbr-ipc-donor")
    note, namespace = out.split()[:2]
    assert note == "hello"
    assert namespace == os.readlink(f"/proc/{donor}/ns/ipc")
    assert engine.docker("exec", "lbr-ipc-donor", "cat",
                         "/dev/shm/lbr-reply").stdout.strip() == "back"
    # a private one (the default) is refused as Docker refuses it
    background(cli, "lbr-ipc-private")
    private_id = inspect(engine, "lbr-ipc-private")["Id"]
    refused = cli("run", "--rm", "--ipc", "container:lbr-ipc-private", "bb:1", "true",
                  check=False)
    assert refused.returncode != 0
    assert (f"can't join IPC of container {private_id}: non-shareable IPC (hint: use "
            "IpcMode:shareable for the donor container)") in refused.stderr
    assert inspect(engine, "lbr-ipc-donor")["HostConfig"]["IpcMode"] == "shareable"
    # the other container's name is stored as its id, as moby does
    cli("create", "--name", "lbr-ipc-joiner", "--ipc", "container:lbr-ipc-donor", "bb:1")
    donor_id = inspect(engine, "lbr-ipc-donor")["Id"]
    assert inspect(engine, "lbr-ipc-joiner")["HostConfig"]["IpcMode"] == \
        f"container:{donor_id}"


def test_ipc_and_uts_host(cli: CLI) -> None:
    out = sh(cli, "readlink /proc/self/ns/ipc; readlink /proc/self/ns/uts; hostname",
             "--ipc", "host", "--uts", "host")
    ipc, uts, hostname = out.split()
    assert ipc == os.readlink("/proc/self/ns/ipc")
    assert uts == os.readlink("/proc/self/ns/uts")
    assert hostname == os.uname().nodename
    private = sh(cli, "readlink /proc/self/ns/uts")
    assert private.strip() != os.readlink("/proc/self/ns/uts")
    conflict = cli("run", "--rm", "--uts", "host", "-h", "lbr", "bb:1", "true", check=False)
    assert conflict.returncode != 0
    assert "conflicting options: hostname and the UTS mode" in conflict.stderr


# -- user and process ------------------------------------------------------------------------
def test_group_add_by_name_and_number(cli: CLI) -> None:
    out = sh(cli, "id", "--group-add", "tty", "--group-add", "4242")
    groups = out.split("groups=")[1].split()[0].split(",")
    assert "5(tty)" in groups and "4242" in groups       # tty: the image's /etc/group
    unknown = cli("run", "--rm", "--group-add", "lbr-nogroup", "bb:1", "id", check=False)
    assert unknown.returncode != 0
    assert "Unable to find group lbr-nogroup" in unknown.stderr


def test_oom_score_adj(cli: CLI, engine: Longboatd) -> None:
    assert sh(cli, "cat /proc/self/oom_score_adj", "--oom-score-adj", "345").strip() == "345"
    bad = engine.docker("run", "--rm", "--oom-score-adj", "2000", "bb:1", "true",
                        check=False)
    assert "Invalid value 2000, range for oom score adj is [-1000, 1000]" in bad.stderr


# -- cgroups ---------------------------------------------------------------------------------
def _cgroup_dir(controller: str, pid: int) -> Path:
    """The host directory of the container's cgroup (v1) for ``controller``."""
    for line in Path(f"/proc/{pid}/cgroup").read_text().splitlines():
        _, controllers, path = line.split(":", 2)
        if controller in controllers.split(","):
            mount = "cpu,cpuacct" if controller in ("cpu", "cpuacct") else controller
            base = Path("/sys/fs/cgroup") / mount
            if not base.exists():
                base = Path("/sys/fs/cgroup") / controller
            return base / path.lstrip("/")
    raise AssertionError(f"no {controller} cgroup for {pid}")


needs_v1 = pytest.mark.skipif(not Path("/sys/fs/cgroup/cpu").is_dir(),
                              reason="cgroup v1 only (this host's layout)")


@needs_v1
def test_cpu_period_quota_cpuset_mems_and_swappiness(cli: CLI) -> None:
    mems = Path("/sys/fs/cgroup/cpuset/cpuset.mems").read_text().strip().split("-")[0]
    pid = background(cli, "lbr-cpu", "--cpu-period", "50000", "--cpu-quota", "25000",
                     "--cpuset-mems", mems)
    cpu = _cgroup_dir("cpu", pid)
    assert (cpu / "cpu.cfs_period_us").read_text().strip() == "50000"
    assert (cpu / "cpu.cfs_quota_us").read_text().strip() == "25000"
    assert (_cgroup_dir("cpuset", pid) / "cpuset.mems").read_text().strip() == mems
    # the same seen from inside (the container's own cgroup mounted read-only)
    inside = cli.engine.docker("exec", "lbr-cpu", "cat", "/sys/fs/cgroup/cpu/"
                               "cpu.cfs_quota_us").stdout.strip()
    assert inside == "25000"
    host = inspect(cli.engine, "lbr-cpu")["HostConfig"]
    assert (host["CpuPeriod"], host["CpuQuota"], host["CpusetMems"]) == (50000, 25000, mems)


def _block_device() -> str | None:
    import stat

    for pattern in ("vd?", "sd?", "nvme?n?", "xvd?", "loop?"):
        for path in sorted(Path("/dev").glob(pattern)):
            if stat.S_ISBLK(path.stat().st_mode):
                return str(path)
    return None


@needs_v1
def test_blkio_throttles_and_swappiness(cli: CLI) -> None:
    device = _block_device()
    if device is None:
        pytest.skip("no block device")
    info = os.stat(device)
    numbers = f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
    pid = background(cli, "lbr-blkio", "--device-read-bps", f"{device}:1mb",
                     "--device-write-bps", f"{device}:2mb", "--device-read-iops",
                     f"{device}:300", "--device-write-iops", f"{device}:400",
                     "--memory-swappiness", "10")
    blkio = _cgroup_dir("blkio", pid)
    for name, value in (("read_bps_device", 1 << 20), ("write_bps_device", 2 << 20),
                        ("read_iops_device", 300), ("write_iops_device", 400)):
        lines = (blkio / f"blkio.throttle.{name}").read_text().split("\n")
        assert f"{numbers} {value}" in lines, name
    memory = _cgroup_dir("memory", pid)
    assert (memory / "memory.swappiness").read_text().strip() == "10"
    host = inspect(cli.engine, "lbr-blkio")["HostConfig"]
    assert host["BlkioDeviceReadBps"] == [{"Path": device, "Rate": 1 << 20}]
    missing = cli("run", "--rm", "--device-read-bps", "/dev/lbr-none:1mb", "bb:1", "true",
                  check=False)
    assert "stat /dev/lbr-none: no such file or directory" in missing.stderr


@needs_v1
def test_device_cgroup_rule(cli: CLI) -> None:
    pid = background(cli, "lbr-dev", "--device-cgroup-rule", "c 42:7 rm")
    rules = (_cgroup_dir("devices", pid) / "devices.list").read_text().splitlines()
    assert "c 42:7 rm" in rules
    made = cli.engine.docker("exec", "lbr-dev", "sh", "-c",
                             "mknod /tmp/x c 42:7 2>&1 || mknod /tmp/x c 42 7 && echo ok")
    assert "ok" in made.stdout


@needs_v1
def test_cgroup_parent(cli: CLI) -> None:
    parent = f"lbr-parent-{os.getpid()}"
    try:
        pid = background(cli, "lbr-parented", "--cgroup-parent", parent)
        path = _cgroup_dir("memory", pid)
        assert path.parent.name == parent
        assert inspect(cli.engine, "lbr-parented")["HostConfig"]["CgroupParent"] == parent
    finally:
        cli("rm", "-f", "lbr-parented", check=False)
        for controller in Path("/sys/fs/cgroup").iterdir():
            target = controller / parent
            if target.is_dir() and not target.is_symlink():
                for _ in range(50):
                    try:
                        target.rmdir()
                        break
                    except OSError:
                        time.sleep(0.05)


# -- the CLI's side --------------------------------------------------------------------------
def test_cidfile_is_written_and_refused_when_present(cli: CLI, tmp_path: Path) -> None:
    path = tmp_path / "lbr.cid"
    cid = cli("run", "-d", "--cidfile", str(path), "--name", "lbr-cid", "bb:1", "sleep",
              "60").stdout.strip()
    assert path.read_text() == cid
    again = cli("run", "-d", "--cidfile", str(path), "bb:1", "true", check=False)
    assert again.returncode == 125
    assert ("container ID file found, make sure the other container isn't running or "
            f"delete {path}") in again.stderr
    assert cli("ps", "-aq").stdout.split() == [cid[:12]]       # nothing was created
    failed = tmp_path / "failed.cid"
    refused = cli("create", "--cidfile", str(failed), "--name", "lbr-cid", "bb:1",
                  check=False)
    assert refused.returncode != 0 and not failed.exists()   # removed when create fails
    assert inspect(cli.engine, "lbr-cid")["HostConfig"]["ContainerIDFile"] == str(path)


@pytest.mark.skipif(shutil.which("runc") is None, reason="runc is not installed")
def test_runtime_runc(cli: CLI, engine: Longboatd) -> None:
    out = sh(cli, "echo hi from runc; cat /proc/self/oom_score_adj", "--runtime", "runc",
             "--oom-score-adj", "111")
    assert out.split() == ["hi", "from", "runc", "111"]
    cli("create", "--runtime", "runc", "--name", "lbr-runc", "bb:1", "true")
    assert inspect(engine, "lbr-runc")["HostConfig"]["Runtime"] == "runc"
    bad = cli("create", "--runtime", "lbr-bogus", "bb:1", "true", check=False)
    assert "Unknown runtime specified lbr-bogus" in bad.stderr


def test_kernel_memory_warns_and_isolation_default(cli: CLI, engine: Longboatd) -> None:
    made = cli("create", "--kernel-memory", "10m", "--isolation", "default", "--name",
               "lbr-kmem", "bb:1", "true")
    assert ("WARNING: Your kernel does not support kernel memory limit capabilities or "
            "the cgroup is not mounted. Limitation discarded.") in made.stderr
    assert inspect(engine, "lbr-kmem")["HostConfig"]["KernelMemory"] == 10 << 20
    cli("start", "lbr-kmem")
    bad = cli("create", "--isolation", "hyperv", "bb:1", "true", check=False)
    assert "Invalid isolation: \"hyperv\" - linux only supports 'default'" in bad.stderr
    rt = cli("run", "--rm", "--cpu-rt-runtime", "1000", "bb:1", "true", check=False)
    assert rt.returncode != 0
    assert "real-time CPU scheduling" in rt.stderr


def test_platform_userns_cgroupns_and_security_opts(cli: CLI) -> None:
    out = sh(cli, "cat /proc/self/status | grep NoNewPrivs", "--platform", "linux/amd64",
             "--userns", "host", "--cgroupns", "private", "--security-opt",
             "no-new-privileges", "--security-opt", "seccomp=unconfined",
             "--security-opt", "apparmor=unconfined", "--security-opt", "label=disable")
    assert out.split() == ["NoNewPrivs:", "1"]


# -- the same flags on Docker 20.10 ----------------------------------------------------------
def _observe(docker: Any, device: str | None) -> dict[str, Any]:
    """What the flags give, through docker 20.10's CLI against one engine."""
    seen: dict[str, Any] = {}

    def out(*args: str) -> str:
        done = docker(*args)
        # the CLI's "error waiting for container" log line depends on timing: left out
        errors = [line for line in str(done.stderr).splitlines()
                  if line and not line.startswith("time=")]
        text = str(done.stdout).strip() if done.returncode == 0 else \
            f"exit {done.returncode}: " + "\n".join(errors)
        return re.sub("[0-9a-f]{64}", "<id>", text)

    def sh_run(script: str, *flags: str) -> str:
        return out("run", "--rm", "--network", "none", *flags, "bb:1", "sh", "-c", script)

    seen["oom"] = sh_run("cat /proc/self/oom_score_adj", "--oom-score-adj", "345")
    seen["groups"] = sh_run("id", "--group-add", "tty", "--group-add", "4242")
    seen["cpu"] = sh_run("cd /sys/fs/cgroup; cat cpu/cpu.cfs_period_us cpu/cpu.cfs_quota_us "
                         "cpuset/cpuset.mems memory/memory.swappiness",
                         "--cpu-period", "50000", "--cpu-quota", "25000",
                         "--cpuset-mems", "0", "--memory-swappiness", "10")
    if device is not None:
        seen["blkio"] = sh_run("cd /sys/fs/cgroup/blkio; cat blkio.throttle.read_bps_device "
                               "blkio.throttle.write_bps_device "
                               "blkio.throttle.read_iops_device "
                               "blkio.throttle.write_iops_device",
                               "--device-read-bps", f"{device}:1mb", "--device-write-bps",
                               f"{device}:2mb", "--device-read-iops", f"{device}:300",
                               "--device-write-iops", f"{device}:400")
    seen["device rule"] = "c 42:7 rm" in sh_run("cat /sys/fs/cgroup/devices/devices.list",
                                                "--device-cgroup-rule", "c 42:7 rm")
    seen["pid host"] = sh_run("cat /proc/1/comm", "--pid", "host")
    seen["uts host"] = sh_run("hostname", "--uts", "host")
    seen["ipc host"] = sh_run("readlink /proc/self/ns/ipc", "--ipc", "host")
    out("run", "-d", "--network", "none", "--name", "lbr-o-donor", "--ipc", "shareable",
        "bb:1", "sh", "-c", "echo shared > /dev/shm/lbr; exec sleep 60")
    out("run", "-d", "--network", "none", "--name", "lbr-o-private", "bb:1", "sleep", "60")
    out("create", "--name", "lbr-o-idle", "bb:1", "true")
    time.sleep(0.3)
    seen["pid container"] = sh_run("cat /proc/1/cmdline | tr '\\0' ' '; echo $$ | wc -c",
                                   "--pid", "container:lbr-o-donor")
    seen["ipc container"] = sh_run("cat /dev/shm/lbr", "--ipc", "container:lbr-o-donor")
    seen["ipc private"] = sh_run("true", "--ipc", "container:lbr-o-private")
    out("create", "--name", "lbr-o-joiner", "--ipc", "container:lbr-o-donor", "--pid",
        "container:lbr-o-donor", "bb:1", "true")
    joiner = json.loads(out("inspect", "lbr-o-joiner"))[0]["HostConfig"]
    seen["joiner modes"] = (joiner["IpcMode"], joiner["PidMode"])
    out("rm", "lbr-o-joiner")
    seen["pid missing"] = out("create", "--pid", "container:lbr-o-nope", "bb:1", "true")
    seen["ipc missing"] = out("create", "--ipc", "container:lbr-o-nope", "bb:1", "true")
    out("create", "--name", "lbr-o-j2", "--pid", "container:lbr-o-idle", "bb:1", "true")
    seen["pid created start"] = out("start", "lbr-o-j2")
    out("rm", "lbr-o-j2")
    seen["pid idle"] = sh_run("true", "--pid", "container:lbr-o-idle")
    seen["isolation"] = sh_run("true", "--isolation", "hyperv")
    seen["oom bad"] = sh_run("true", "--oom-score-adj", "2000")
    seen["runtime bad"] = sh_run("true", "--runtime", "lbr-bogus")
    seen["swappiness bad"] = sh_run("true", "--memory-swappiness", "101")
    seen["pid bad"] = sh_run("true", "--pid", "lbr")
    made = docker("create", "--name", "lbr-o-weights", "--blkio-weight", "300",
                  "--memory-swappiness", "10", "bb:1", "true")
    seen["weight warnings"] = [line for line in str(made.stderr).splitlines()
                               if line.startswith("WARNING")]
    out("rm", "lbr-o-weights")
    flags = ("--pid", "host", "--ipc", "shareable", "--uts", "host", "--userns", "host",
             "--group-add", "tty", "--cgroup-parent", "lbr-o-parent", "--oom-score-adj",
             "-5", "--cpu-period", "50000", "--cpu-quota", "25000", "--cpuset-mems", "0",
             "--memory-swappiness", "10", "--device-cgroup-rule", "c 42:7 rm",
             "--isolation", "default", "--stop-signal", "SIGUSR1", "--stop-timeout", "7")
    out("create", "--name", "lbr-o-inspect", *flags, "bb:1", "true")
    found = json.loads(out("inspect", "lbr-o-inspect"))[0]
    seen["HostConfig"] = {k: found["HostConfig"].get(k) for k in (
        "PidMode", "IpcMode", "UTSMode", "UsernsMode", "GroupAdd", "CgroupParent",
        "OomScoreAdj", "CpuPeriod", "CpuQuota", "CpusetMems", "MemorySwappiness",
        "DeviceCgroupRules", "Isolation", "BlkioDeviceReadBps", "ContainerIDFile")}
    seen["Config"] = {k: found["Config"].get(k) for k in ("StopSignal", "StopTimeout")}
    out("rm", "-f", "lbr-o-donor", "lbr-o-private", "lbr-o-idle", "lbr-o-inspect")
    return seen


def _client(host: str, config: Path) -> Any:
    import subprocess

    from tests.support.dockerd import docker_cli

    env = {**os.environ, "DOCKER_HOST": host, "DOCKER_CONFIG": str(config)}

    def docker(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([docker_cli(), *args], capture_output=True, text=True,
                              env=env, timeout=120, check=False)

    return docker


@needs_v1
def test_what_the_flags_do_matches_docker(engine: Longboatd, tmp_path_factory:
                                          pytest.TempPathFactory,
                                          rootfs_template: Path) -> None:
    import tarfile

    from tests.support.dockerd import running

    device = _block_device()
    ours = _observe(_client(engine.host, engine.workdir / "docker-config"), device)
    with running(tmp_path_factory.mktemp("dockerd-run-flags")) as dockerd:
        image = tmp_path_factory.mktemp("image-run-flags") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        dockerd.docker("import", str(image), "bb:1")
        theirs = _observe(_client(f"unix://{dockerd.sock}", dockerd.base / "config"),
                          device)
    assert ours == theirs
    blkio = Path("/sys/fs/cgroup/blkio")
    if not (blkio / "blkio.weight").exists() and not (blkio / "blkio.bfq.weight").exists():
        assert ours["weight warnings"] == ["WARNING: Your kernel does not support Block I/O "
                                           "weight or the cgroup is not mounted. Weight "
                                           "discarded."]
