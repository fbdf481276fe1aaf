"""Bundles from Docker container definitions, run by longboat-runtime.

oci_config() writes the config; the busybox rootfs and the real kernel show what the
process got: its user and groups, its environment and command, tini reaping as PID 1,
cgroup limits, capabilities, a read-only root with a tmpfs, a read-only bind mount.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import pytest
from tests.support import bundles

from longboat.engine.bundle import DEFAULT_INIT_PATH, oci_config

pytestmark = pytest.mark.integration

HOSTNAME = "boat1"
MiB = 1 << 20


def write_bundle(path: Path, template: Path, cid: str, config: dict[str, Any],
                 host_config: dict[str, Any], image: dict[str, Any] | None = None,
                 **kwargs: Any) -> Path:
    path.mkdir(parents=True)
    shutil.copytree(template, path / "rootfs", symlinks=True)
    setup = kwargs.pop("setup", None)
    if setup is not None:
        setup(path / "rootfs")
    spec = oci_config(cid, config, host_config, image or {"Cmd": ["sh"]},
                      str(path / "rootfs"), hostname=HOSTNAME,
                      cgroup_parent=bundles.CGROUP_PARENT, **kwargs)
    (path / "config.json").write_text(json.dumps(spec, indent=2))
    return path


@pytest.fixture
def run(runtime: Any, tmp_path: Path, rootfs_template: Path) -> Any:
    counter = iter(range(100))

    def go(config: dict[str, Any], host_config: dict[str, Any] | None = None,
           image: dict[str, Any] | None = None, **kwargs: Any) -> str:
        cid = bundles.unique_id("bundle")
        path = write_bundle(tmp_path / f"b{next(counter)}", rootfs_template, cid, config,
                            host_config or {}, image, **kwargs)
        runtime.ids.append(cid)
        result = runtime("run", "--bundle", str(path), cid, check=False, timeout=30)
        assert result.returncode == 0, (result.stdout, result.stderr)
        return str(result.stdout)

    return go


def _add_users(rootfs: Path) -> None:
    with open(rootfs / "etc" / "passwd", "a") as f:
        f.write("app:x:1000:1000:App:/home/app:/bin/sh\n")
    with open(rootfs / "etc" / "group", "a") as f:
        f.write("app:x:1000:\nwheel:x:10:root,app\naudio:x:29:app\nstaff:x:50:\n")


def test_user_by_name_gets_its_groups_from_the_containers_files(run: Any) -> None:
    out = run({"User": "app", "Cmd": ["id"]}, {"GroupAdd": ["staff", "4242"]},
              setup=_add_users)
    assert out.strip() == ("uid=1000(app) gid=1000(app) "
                           "groups=10(wheel),29(audio),50(staff),1000(app),4242")


def test_env_cmd_entrypoint_and_workdir_overrides(run: Any, tmp_path: Path) -> None:
    hosts = tmp_path / "hosts"
    hosts.write_text("127.0.0.1 localhost\n10.9.8.7 from-the-engine\n")
    image = {"Entrypoint": ["/bin/echo", "image-entrypoint"], "Cmd": ["image-cmd"],
             "Env": ["FROM_IMAGE=1", "SHARED=image"], "WorkingDir": "/usr"}
    config = {"Entrypoint": ["/bin/sh", "-c"], "WorkingDir": "/tmp", "Env": ["SHARED=mine"],
              "Cmd": ['echo "$FROM_IMAGE $SHARED $HOSTNAME $PATH"; pwd; hostname; '
                      "grep from-the-engine /etc/hosts"]}
    out = run(config, {}, image, hosts_file=str(hosts)).splitlines()
    assert out == [f"1 mine {HOSTNAME} /usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:"
                   "/sbin:/bin", "/tmp", HOSTNAME, "10.9.8.7 from-the-engine"]
    # the image's command when the container gives none
    assert run({}, {}, image).strip() == "image-entrypoint image-cmd"


ORPHAN = """
sh -c 'sleep 0.3 & echo $! > /tmp/orphan'   # its parent exits: PID 1 inherits the sleep
pid=$(cat /tmp/orphan)
i=0
while [ -e /proc/$pid ] && [ $i -lt 200 ]; do i=$((i+1)); sleep 0.05; done
if [ -e /proc/$pid ]; then echo "not reaped: $(cat /proc/$pid/stat)"; else echo reaped; fi
tr '\\0' ' ' < /proc/1/cmdline
"""


@pytest.mark.skipif(not os.path.isfile(DEFAULT_INIT_PATH),
                    reason="tini-static is missing (apt-get install tini)")
def test_init_runs_tini_as_pid_1_and_reaps_orphans(run: Any) -> None:
    out = run({"Cmd": ["sh", "-c", ORPHAN]}, {"Init": True}).splitlines()
    assert out[0] == "reaped"
    assert out[1].startswith("/sbin/docker-init -- sh -c")


def test_memory_limit_reaches_the_cgroup(runtime: Any, tmp_path: Path,
                                         rootfs_template: Path) -> None:
    cid = bundles.unique_id("bundle")
    path = write_bundle(tmp_path / "b", rootfs_template, cid, {"Cmd": ["sleep", "30"]},
                        {"Memory": 64 * MiB, "PidsLimit": 50, "CpuShares": 512})
    runtime.ids.append(cid)
    runtime("create", "--bundle", str(path), cid)
    base = "/sys/fs/cgroup"
    group = f"{bundles.CGROUP_PARENT}/{cid}"
    if os.path.exists(f"{base}/cgroup.controllers"):  # v2
        assert Path(f"{base}{group}/memory.max").read_text().strip() == str(64 * MiB)
        assert Path(f"{base}{group}/memory.swap.max").read_text().strip() == str(64 * MiB)
        assert Path(f"{base}{group}/pids.max").read_text().strip() == "50"
    else:
        memory = Path(f"{base}/memory{group}")
        assert (memory / "memory.limit_in_bytes").read_text().strip() == str(64 * MiB)
        memsw = memory / "memory.memsw.limit_in_bytes"
        if memsw.exists():  # Docker's default: swap = memory, memory+swap = 2x memory
            assert memsw.read_text().strip() == str(128 * MiB)
        assert Path(f"{base}/pids{group}/pids.max").read_text().strip() == "50"
        assert Path(f"{base}/cpu{group}/cpu.shares").read_text().strip() == "512"
    runtime("delete", "--force", cid)


def _cap_line(out: str, name: str) -> int:
    for line in out.splitlines():
        if line.startswith(name + ":"):
            return int(line.split()[1], 16)
    raise AssertionError(f"{name} missing from {out!r}")


def test_cap_drop_all_and_add_one(run: Any) -> None:
    out = run({"Cmd": ["grep", "^Cap", "/proc/self/status"]},
              {"CapDrop": ["ALL"], "CapAdd": ["NET_BIND_SERVICE"]})
    bit = 1 << 10  # CAP_NET_BIND_SERVICE
    assert _cap_line(out, "CapBnd") == bit
    assert _cap_line(out, "CapEff") == bit
    assert _cap_line(out, "CapPrm") == bit
    assert _cap_line(out, "CapInh") == 0
    assert _cap_line(out, "CapAmb") == 0


def test_non_root_user_has_no_effective_capabilities(run: Any) -> None:
    out = run({"User": "65534", "Cmd": ["grep", "^Cap", "/proc/self/status"]})
    assert _cap_line(out, "CapEff") == 0
    assert _cap_line(out, "CapBnd") != 0


def test_readonly_rootfs_with_a_tmpfs(run: Any) -> None:
    script = ("touch /newfile 2>/dev/null && echo root-writable || echo root-readonly; "
              "echo data > /run/f && cat /run/f; grep ' /run ' /proc/mounts")
    out = run({"Cmd": ["sh", "-c", script]},
              {"ReadonlyRootfs": True, "Tmpfs": {"/run": "size=1m,mode=1770"}}).splitlines()
    assert out[0] == "root-readonly"
    assert out[1] == "data"
    fields = out[2].split()
    assert fields[2] == "tmpfs"
    options = fields[3].split(",")
    assert {"rw", "nosuid", "nodev", "noexec", "size=1024k", "mode=1770"} <= set(options)


def test_read_only_bind_mount(run: Any, tmp_path: Path) -> None:
    data = tmp_path / "data"
    data.mkdir()
    (data / "file").write_text("from the host\n")
    script = "cat /data/file; echo x > /data/new 2>/dev/null && echo writable || echo readonly"
    out = run({"Cmd": ["sh", "-c", script]}, {"Binds": [f"{data}:/data:ro"]}).splitlines()
    assert out == ["from the host", "readonly"]
    assert not (data / "new").exists()
