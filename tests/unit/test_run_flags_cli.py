"""docker 20.10's namespace/cgroup/runtime ``run``/``create`` flags: the HostConfig our
CLI sends (compared with what the installed docker CLI sends for the same flags, on the
same stand-in API server as tests/unit/test_network_cli.py), the checks and messages
docker's CLI gives for bad values, ``--cidfile``, and what the bundle makes of the fields
(namespaces joined by path, blkio device limits with their device numbers, the create
warnings)."""

from __future__ import annotations

import os
import shutil
import stat
from pathlib import Path
from typing import Any

import pytest
from tests.support.dockerd import docker_cli
from tests.unit.test_network_cli import LONGBOAT, Server, run, server  # noqa: F401

from longboat.cli.main import build_parser
from longboat.cli.run_args import ArgumentError, container_config
from longboat.cli.run_flags import CidFile
from longboat.engine.bundle import HostInfo, create_warnings, oci_config
from longboat.errors import InvalidArgument

pytestmark = pytest.mark.unit

HOST = HostInfo(cgroup_version=1, cpus=4, online_cpus="0-3", online_mems="0")


def body(*words: str) -> dict[str, Any]:
    config: dict[str, Any] = container_config(
        build_parser("run").parse_args(["run", *words, "busybox"]), detach=True)
    return config


def host(*words: str) -> dict[str, Any]:
    config: dict[str, Any] = body(*words)["HostConfig"]
    return config


# -- flags -> body ---------------------------------------------------------------------------
@pytest.mark.parametrize(("words", "expected"), [
    (["--pid", "host"], {"PidMode": "host"}),
    (["--pid", "container:web"], {"PidMode": "container:web"}),
    (["--ipc", "shareable"], {"IpcMode": "shareable"}),
    (["--ipc", "container:web"], {"IpcMode": "container:web"}),
    (["--uts", "host"], {"UTSMode": "host"}),
    (["--userns", "host"], {"UsernsMode": "host"}),
    (["--cgroupns", "private"], {"CgroupnsMode": "private"}),
    (["--group-add", "audio", "--group-add", "50"], {"GroupAdd": ["audio", "50"]}),
    (["--cgroup-parent", "/lbr"], {"CgroupParent": "/lbr"}),
    (["--runtime", "runc"], {"Runtime": "runc"}),
    (["--isolation", "default"], {"Isolation": "default"}),
    (["--oom-score-adj", "-500"], {"OomScoreAdj": -500}),
    (["--cpu-period", "50000", "--cpu-quota", "25000"],
     {"CpuPeriod": 50000, "CpuQuota": 25000}),
    (["--cpu-rt-period", "1000", "--cpu-rt-runtime", "500"],
     {"CpuRealtimePeriod": 1000, "CpuRealtimeRuntime": 500}),
    (["--cpuset-mems", "0"], {"CpusetMems": "0"}),
    (["--memory-swappiness", "10"], {"MemorySwappiness": 10}),
    (["--kernel-memory", "10m"], {"KernelMemory": 10 << 20}),
    (["--device-cgroup-rule", "c 1:3 rwm", "--device-cgroup-rule", "a *:* m"],
     {"DeviceCgroupRules": ["c 1:3 rwm", "a *:* m"]}),
    (["--device-read-bps", "/dev/sda:1mb", "--device-write-bps", "/dev/sda:1024"],
     {"BlkioDeviceReadBps": [{"Path": "/dev/sda", "Rate": 1 << 20}],
      "BlkioDeviceWriteBps": [{"Path": "/dev/sda", "Rate": 1024}]}),
    (["--device-read-iops", "/dev/sda:10", "--device-write-iops", "/dev/sda:0"],
     {"BlkioDeviceReadIOps": [{"Path": "/dev/sda", "Rate": 10}],
      "BlkioDeviceWriteIOps": [{"Path": "/dev/sda", "Rate": 0}]}),
    (["--blkio-weight-device", "/dev/sda:200"],
     {"BlkioWeightDevice": [{"Path": "/dev/sda", "Weight": 200}]}),
    (["--cidfile", "/tmp/lbr-cid"], {"ContainerIDFile": "/tmp/lbr-cid"}),
    (["--storage-opt", "size=1g"], {"StorageOpt": {"size": "1g"}}),
    (["--volume-driver", "local"], {"VolumeDriver": "local"}),
    (["--gpus", "all"], {"DeviceRequests": [{"Driver": "", "Count": -1, "DeviceIDs": None,
                                             "Capabilities": [["gpu"]], "Options": {}}]}),
])
def test_flags_give_dockers_fields(words: list[str], expected: dict[str, Any]) -> None:
    got = host(*words)
    assert {k: got.get(k) for k in expected} == expected


def test_defaults_are_what_dockers_cli_sends() -> None:
    got = host()
    assert {k: got[k] for k in (
        "PidMode", "IpcMode", "UTSMode", "UsernsMode", "CgroupnsMode", "GroupAdd",
        "CgroupParent", "Isolation", "OomScoreAdj", "CpuPeriod", "CpuQuota",
        "CpuRealtimePeriod", "CpuRealtimeRuntime", "CpusetMems", "MemorySwappiness",
        "DeviceCgroupRules", "BlkioWeightDevice", "BlkioDeviceReadBps",
        "BlkioDeviceWriteBps", "BlkioDeviceReadIOps", "BlkioDeviceWriteIOps",
        "ContainerIDFile", "VolumeDriver")} == {
        "PidMode": "", "IpcMode": "", "UTSMode": "", "UsernsMode": "", "CgroupnsMode": "",
        "GroupAdd": None, "CgroupParent": "", "Isolation": "", "OomScoreAdj": 0,
        "CpuPeriod": 0, "CpuQuota": 0, "CpuRealtimePeriod": 0, "CpuRealtimeRuntime": 0,
        "CpusetMems": "", "MemorySwappiness": -1, "DeviceCgroupRules": None,
        "BlkioWeightDevice": [], "BlkioDeviceReadBps": None, "BlkioDeviceWriteBps": None,
        "BlkioDeviceReadIOps": None, "BlkioDeviceWriteIOps": None, "ContainerIDFile": "",
        "VolumeDriver": ""}
    assert "Runtime" not in got and "StorageOpt" not in got


@pytest.mark.parametrize(("words", "message"), [
    (["--pid", "bogus"], "--pid: invalid PID mode"),
    (["--pid", "container:"], "--pid: invalid PID mode"),
    (["--uts", "container:x"], "--uts: invalid UTS mode"),
    (["--userns", "private"], "--userns: invalid USER mode"),
    (["--cgroupns", "bogus"], "--cgroupns: invalid CGROUP mode"),
    (["--memory-swappiness", "200"],
     "invalid value: 200. Valid memory swappiness range is 0-100"),
    (["--kernel-memory", "foo"],
     'invalid argument "foo" for "--kernel-memory" flag: invalid size: \'foo\''),
    (["--device-cgroup-rule", "c 1:3"], 'invalid argument "c 1:3" for '
     '"--device-cgroup-rule" flag: invalid device cgroup format \'c 1:3\''),
    (["--device-read-bps", "sda:10"], 'invalid argument "sda:10" for "--device-read-bps" '
     "flag: bad format for device path: sda:10"),
    (["--device-read-bps", "/dev/sda"], "bad format: /dev/sda"),
    (["--device-write-bps", "/dev/sda:x"], "invalid rate for device: /dev/sda:x. The "
     "correct format is <device-path>:<number>[<unit>]. Number must be a positive "
     "integer. Unit is optional and can be kb, mb, or gb"),
    (["--device-read-iops", "/dev/sda:1k"], "invalid rate for device: /dev/sda:1k. The "
     "correct format is <device-path>:<number>. Number must be a positive integer"),
    (["--device-write-iops", "/dev/sda:-1"], "invalid rate for device: /dev/sda:-1."),
    (["--blkio-weight-device", "/dev/sda:5"], "invalid weight for device: /dev/sda:5"),
    (["--storage-opt", "size"], "invalid storage option"),
    (["--cpu-count", "2"], '"--cpu-count" is only supported on a Docker daemon running on '
     "windows, but the Docker daemon is running on linux"),
])
def test_bad_values_are_refused_as_docker(words: list[str], message: str) -> None:
    with pytest.raises(ArgumentError) as info:
        body(*words)
    assert message in str(info.value)


# -- --cidfile -------------------------------------------------------------------------------
def test_cidfile_written_refused_if_present_removed_on_failure(tmp_path: Path) -> None:
    path = tmp_path / "cid"
    cidfile = CidFile(str(path))
    cidfile.write("ab" * 32)
    cidfile.close()
    assert path.read_text() == "ab" * 32          # no newline, as docker
    with pytest.raises(ArgumentError, match="container ID file found, make sure the other "
                       f"container isn't running or delete {path}"):
        CidFile(str(path))
    other = tmp_path / "other"
    CidFile(str(other)).close()                   # create failed: nothing written
    assert not other.exists()
    with pytest.raises(ArgumentError, match="failed to create the container ID file: open "
                       f"{tmp_path}/no/cid: no such file or directory"):
        CidFile(str(tmp_path / "no" / "cid"))


# -- the same body as docker's CLI -----------------------------------------------------------
FLAG_SETS = [
    ["--pid", "host", "--ipc", "shareable", "--uts", "host", "--userns", "host",
     "--cgroupns", "private"],
    ["--pid", "container:web", "--ipc", "container:web"],
    ["--group-add", "audio", "--group-add", "50", "--cgroup-parent", "/lbr",
     "--runtime", "runc", "--isolation", "default", "--oom-score-adj", "-500"],
    ["--cpu-period", "50000", "--cpu-quota", "25000", "--cpu-rt-period", "1000",
     "--cpu-rt-runtime", "500", "--cpuset-mems", "0", "--memory-swappiness", "10",
     "--kernel-memory", "10m", "--oom-kill-disable", "--pids-limit", "50"],
    ["--device-cgroup-rule", "c 1:3 rwm", "--device-read-bps", "/dev/sda:1mb",
     "--device-write-bps", "/dev/sda:1024", "--device-read-iops", "/dev/sda:10",
     "--device-write-iops", "/dev/sda:20", "--blkio-weight-device", "/dev/sda:200",
     "--blkio-weight", "300"],
    ["--storage-opt", "size=1g", "--volume-driver", "local", "--gpus", "all",
     "--stop-signal", "SIGUSR1", "--stop-timeout", "7", "--security-opt",
     "no-new-privileges", "--platform", "linux/amd64"],
]
#: Debian's 20.10 client when it is installed (tests/support/dockerd.py), else any docker.
DOCKER = docker_cli() if shutil.which(docker_cli()) else "docker"
needs_docker = pytest.mark.skipif(shutil.which(DOCKER) is None,
                                  reason="the docker CLI is not installed")
#: Where our body still differs from 20.10's, not this module's fields: 20.10 leaves
#: empty Mounts/Sysctls/Tmpfs out and always sends PidsLimit (0 unless given).
_OTHERS = ("Mounts", "Sysctls", "Tmpfs", "PidsLimit")


def _is_20_10() -> bool:
    import subprocess

    done = subprocess.run([DOCKER, "--version"], capture_output=True, text=True,
                          check=False)
    return "version 20.10." in done.stdout


@needs_docker
@pytest.mark.parametrize("flags", FLAG_SETS, ids=lambda f: f[0].lstrip("-"))
def test_docker_cli_sends_the_same_host_config(server: Server, flags: list[str]  # noqa: F811
                                               ) -> None:
    """The whole HostConfig with 20.10's client; with a newer one (which sends a few
    fields differently), the fields that have a value."""
    for cli in (LONGBOAT, DOCKER):
        done = run(cli, server, "create", *flags, "busybox")
        assert done.returncode == 0, (cli, done.stderr)
    mine, theirs = server.engine.container_bodies
    if _is_20_10():
        def fields(config: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in config["HostConfig"].items() if k not in _OTHERS}
    else:
        def fields(config: dict[str, Any]) -> dict[str, Any]:
            return {k: v for k, v in config["HostConfig"].items()
                    if v not in (0, "", None, [], {}, False, [0, 0])}
    assert fields(mine) == fields(theirs)
    for key in ("StopSignal", "StopTimeout"):
        assert mine.get(key) == theirs.get(key)


@needs_docker
def test_docker_cli_and_ours_refuse_the_same_values(server: Server,  # noqa: F811
                                                    tmp_path: Path) -> None:
    for flags in (["--pid", "bogus"], ["--uts", "container:x"], ["--userns", "bogus"],
                  ["--cgroupns", "bogus"], ["--memory-swappiness", "200"],
                  ["--device-cgroup-rule", "bogus"], ["--device-read-bps", "sda:1"],
                  ["--device-read-iops", "/dev/sda:1k"],
                  ["--blkio-weight-device", "/dev/sda:5"]):
        mine = run(LONGBOAT, server, "create", *flags, "busybox")
        theirs = run(DOCKER, server, "create", *flags, "busybox")
        assert (mine.returncode, theirs.returncode) == (125, 125), flags
        first = theirs.stderr.splitlines()[0].removeprefix("docker: ")
        assert first.rstrip(".") in mine.stderr, (flags, mine.stderr)
    present = tmp_path / "cid"
    present.write_text("x")
    mine = run(LONGBOAT, server, "create", "--cidfile", str(present), "busybox")
    theirs = run(DOCKER, server, "create", "--cidfile", str(present), "busybox")
    assert theirs.stderr.strip() in mine.stderr
    assert server.engine.container_bodies == []


# -- the bundle ------------------------------------------------------------------------------
@pytest.fixture
def rootfs(tmp_path: Path) -> Path:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text("root:x:0:0:root:/root:/bin/sh\n")
    (root / "etc" / "group").write_text("root:x:0:\naudio:x:29:\n")
    return root


def make(rootfs: Path, host_config: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    spec: dict[str, Any] = oci_config("c0ffee", {}, host_config, {"Cmd": ["sh"]},
                                      str(rootfs), hostname="c0ffee", host=HOST,
                                      init_path=None, **kwargs)
    return spec


def _namespaces(spec: dict[str, Any]) -> dict[str, str | None]:
    return {ns["type"]: ns.get("path") for ns in spec["linux"]["namespaces"]}


def test_pid_and_ipc_of_another_container_are_joined_by_path(rootfs: Path) -> None:
    spec = make(rootfs, {"PidMode": "container:web", "IpcMode": "container:web",
                         "Init": True},
                pidns_path="/proc/42/ns/pid", ipcns_path="/proc/42/ns/ipc",
                ipc_shm="/proc/42/root/dev/shm")
    namespaces = _namespaces(spec)
    assert namespaces["pid"] == "/proc/42/ns/pid" and namespaces["ipc"] == "/proc/42/ns/ipc"
    shm = [m for m in spec["mounts"] if m["destination"] == "/dev/shm"]
    assert shm == [{"destination": "/dev/shm", "type": "bind",
                    "source": "/proc/42/root/dev/shm", "options": ["rbind", "rprivate"]}]
    assert spec["process"]["args"] == ["sh"]        # no init outside a private PID ns


def test_host_namespaces_and_group_add(rootfs: Path) -> None:
    spec = make(rootfs, {"PidMode": "host", "IpcMode": "host", "UTSMode": "host",
                         "UsernsMode": "host", "GroupAdd": ["audio", "4242"],
                         "OomScoreAdj": 300})
    assert set(_namespaces(spec)) == {"mount", "network"}
    assert spec["process"]["user"]["additionalGids"] == [0, 29, 4242]
    assert spec["process"]["oomScoreAdj"] == 300
    assert "hostname" not in spec


def test_cgroup_fields(rootfs: Path) -> None:
    spec = make(rootfs, {"CgroupParent": "/lbr-parent", "CpuPeriod": 50000,
                         "CpuQuota": 25000, "CpusetMems": "0", "MemorySwappiness": 10,
                         "DeviceCgroupRules": ["c 1:3 rwm"], "CgroupnsMode": "private"})
    resources = spec["linux"]["resources"]
    assert spec["linux"]["cgroupsPath"] == "/lbr-parent/c0ffee"
    assert resources["cpu"] == {"period": 50000, "quota": 25000, "mems": "0"}
    assert resources["memory"] == {"swappiness": 10}
    assert resources["devices"][-1] == {"allow": True, "type": "c", "major": 1, "minor": 3,
                                        "access": "rwm"}
    assert "cgroup" in _namespaces(spec)


def _a_block_device() -> str | None:
    for name in sorted(os.listdir("/dev")):
        path = f"/dev/{name}"
        try:
            if stat.S_ISBLK(os.stat(path).st_mode):
                return path
        except OSError:
            continue
    return None


def test_blkio_device_limits_get_the_device_numbers(rootfs: Path) -> None:
    device = _a_block_device()
    if device is None:
        pytest.skip("no block device on this host")
    info = os.stat(device)
    numbers = {"major": os.major(info.st_rdev), "minor": os.minor(info.st_rdev)}
    spec = make(rootfs, {"BlkioWeight": 300,
                         "BlkioWeightDevice": [{"Path": device, "Weight": 200}],
                         "BlkioDeviceReadBps": [{"Path": device, "Rate": 1 << 20}],
                         "BlkioDeviceWriteBps": [{"Path": device, "Rate": 1024}],
                         "BlkioDeviceReadIOps": [{"Path": device, "Rate": 10}],
                         "BlkioDeviceWriteIOps": [{"Path": device, "Rate": 20}]})
    assert spec["linux"]["resources"]["blockIO"] == {
        "weight": 300,
        "weightDevice": [{**numbers, "weight": 200}],
        "throttleReadBpsDevice": [{**numbers, "rate": 1 << 20}],
        "throttleWriteBpsDevice": [{**numbers, "rate": 1024}],
        "throttleReadIOPSDevice": [{**numbers, "rate": 10}],
        "throttleWriteIOPSDevice": [{**numbers, "rate": 20}]}


@pytest.mark.parametrize(("host_config", "message"), [
    ({"BlkioDeviceReadBps": [{"Path": "/dev/lbr-missing", "Rate": 1}]},
     "HostConfig.BlkioDeviceReadBps[0].Path: stat /dev/lbr-missing: no such file or "
     "directory"),
    ({"BlkioDeviceWriteIOps": [{"Path": "/dev/null", "Rate": 1}]},
     "HostConfig.BlkioDeviceWriteIOps[0].Path: /dev/null is not a block device"),
    ({"BlkioWeightDevice": [{"Path": "/dev/null", "Weight": 5}]},
     "invalid weight for device: /dev/null:5"),
    ({"CpuRealtimePeriod": 1000}, "HostConfig.CpuRealtimePeriod: real-time CPU "
     "scheduling (cpu.rt_period_us, cpu.rt_runtime_us) is not supported"),
    ({"Isolation": "hyperv"}, "Invalid isolation: \"hyperv\" - linux only supports "
     "'default'"),
    ({"KernelMemory": 1 << 20}, "Minimum kernel memory limit allowed is 6MB"),
    ({"IpcMode": "container:web"}, "HostConfig.IpcMode: container:web: the caller must "
     "resolve"),
    ({"IpcMode": "container"}, "invalid IPC mode: container"),
    ({"UTSMode": "container:web"}, "invalid UTS mode: container:web"),
    ({"UsernsMode": "private"}, "user namespaces are not supported yet"),
    ({"StorageOpt": {"size": "1g"}}, "HostConfig.StorageOpt: is not supported yet"),
])
def test_bundle_refusals(rootfs: Path, host_config: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as info:
        make(rootfs, host_config)
    assert message in str(info.value)


def test_create_warnings() -> None:
    assert create_warnings({}) == []
    assert create_warnings({"Isolation": "Default"}) == []
    assert create_warnings({"KernelMemory": 10 << 20}) == [
        "Your kernel does not support kernel memory limit capabilities or the cgroup is "
        "not mounted. Limitation discarded."]


# -- Go boolean flags ------------------------------------------------------------------------
@pytest.mark.parametrize(("words", "proxy", "command"), [
    (["busybox"], "true", []),
    (["--sig-proxy", "busybox", "x"], "true", ["x"]),       # never takes the next word
    (["--sig-proxy=false", "busybox"], "false", []),
    (["--sig-proxy=0", "busybox"], "false", []),
    (["--sig-proxy=False", "busybox"], "false", []),
    (["--sig-proxy=t", "busybox"], "true", []),
])
def test_sig_proxy_is_a_go_boolean(words: list[str], proxy: str, command: list[str]) -> None:
    parsed = build_parser("run").parse_args(["run", *words])
    assert (parsed.sig_proxy, parsed.image, parsed.command) == (proxy, "busybox", command)
    flags = [w for w in words if w.startswith("-")]
    attach = build_parser("attach").parse_args(["attach", *flags, "web"])
    assert (attach.sig_proxy, attach.container) == (proxy, "web")


def test_disable_content_trust_takes_its_forms() -> None:
    for words in (["--disable-content-trust"], ["--disable-content-trust=false"], []):
        parsed = build_parser("run").parse_args(["run", *words, "busybox"])
        assert parsed.image == "busybox"


def test_what_the_host_cannot_apply_is_dropped_with_dockers_warning(rootfs: Path) -> None:
    host = HostInfo(cgroup_version=1, cpus=4, online_cpus="0-3", online_mems="0",
                    missing=frozenset({"BlkioWeight", "MemorySwappiness"}))
    host_config = {"BlkioWeight": 300, "MemorySwappiness": 10, "OomKillDisable": True}
    assert create_warnings(host_config, host=host) == [
        "Your kernel does not support memory swappiness capabilities or the cgroup is not "
        "mounted. Memory swappiness discarded.",
        "Your kernel does not support Block I/O weight or the cgroup is not mounted. "
        "Weight discarded."]
    assert create_warnings({"MemorySwappiness": -1}, host=host) == []
    spec = oci_config("c0ffee", {}, host_config, {"Cmd": ["sh"]}, str(rootfs),
                      hostname="c0ffee", host=host, init_path=None)
    resources = spec["linux"]["resources"]
    assert resources["memory"] == {"disableOOMKiller": True}
    assert "blockIO" not in resources
