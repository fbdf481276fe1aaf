"""longboat-runtime: lifecycle hooks, hostile and malformed bundles, and what leaks (or
must not leak) from the runtime into the container."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from tests.integration.conftest import wait_child
from tests.support.bundles import unique_id

pytestmark = pytest.mark.integration


def _write(path: Path, config: dict) -> None:
    (path / "config.json").write_text(json.dumps(config))


def _hook(script: str, out: Path, stage: str) -> dict:
    """A hook that stores its stdin (the container state) and where it ran."""
    return {"path": "/bin/sh",
            "args": ["sh", "-c", f"cat > {out}/{stage}.json; {script}"],
            "env": ["HOOK_STAGE=" + stage], "timeout": 10}


def test_every_hook_runs_in_order_with_the_state_on_stdin(runtime, bundle, tmp_path):
    out = tmp_path / "hooks"
    out.mkdir()
    cid = unique_id()
    path, config = bundle(["sh", "-c", "echo ran > /out/process"])
    log = f"echo $HOOK_STAGE >> {out}/order"
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                             "options": ["rbind"]})
    config["hooks"] = {
        stage: [_hook(log, out if stage != "startContainer" else Path("/out"), stage)]
        for stage in ("prestart", "createRuntime", "createContainer", "startContainer",
                      "poststart", "poststop")}
    # startContainer runs inside the container: it logs through the bind mount
    config["hooks"]["startContainer"][0]["args"][2] = (
        "cat > /out/startContainer.json; echo startContainer >> /out/order; hostname > /out/where")
    config["hostname"] = "hooked"
    _write(path, config)
    runtime("create", "--bundle", str(path), cid)
    pid = runtime.state(cid)["pid"]
    assert (out / "order").read_text().split() == ["prestart", "createRuntime",
                                                   "createContainer"]
    runtime("start", cid)
    assert wait_child(pid) == 0
    runtime("delete", cid)
    assert (out / "order").read_text().split() == [
        "prestart", "createRuntime", "createContainer", "startContainer", "poststart",
        "poststop"]
    assert (out / "where").read_text().strip() == "hooked"
    for stage in ("prestart", "createRuntime", "poststart", "poststop"):
        state = json.loads((out / f"{stage}.json").read_text())
        assert state["id"] == cid and state["pid"] in (pid, 0)
        assert state["bundle"] == str(path)
    assert json.loads((out / "poststop.json").read_text())["status"] == "stopped"
    assert (out / "process").read_text() == "ran\n"


def test_a_failing_create_hook_stops_creation_and_leaves_nothing(runtime, bundle, tmp_path):
    cid = unique_id()
    path, config = bundle(["true"])
    config["hooks"] = {"createRuntime": [{"path": "/bin/sh",
                                          "args": ["sh", "-c", "echo nope >&2; exit 3"]}]}
    _write(path, config)
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1
    assert "hooks.createRuntime[0]" in result.stderr and "nope" in result.stderr
    _assert_nothing_left(runtime, cid, config)


def test_a_hook_that_hangs_is_killed_at_its_timeout(runtime, bundle):
    cid = unique_id()
    path, config = bundle(["true"])
    config["hooks"] = {"prestart": [{"path": "/bin/sleep", "args": ["sleep", "30"],
                                     "timeout": 1}]}
    _write(path, config)
    result = runtime("create", "--bundle", str(path), cid, check=False, timeout=20)
    assert result.returncode == 1 and "timed out after 1s" in result.stderr
    _assert_nothing_left(runtime, cid, config)


def _assert_nothing_left(runtime, cid: str, config: dict) -> None:
    assert not (runtime.root / cid).exists()
    cgroup = config["linux"]["cgroupsPath"].lstrip("/")
    for controller in ("memory", "pids", "freezer", "cpu"):
        assert not os.path.exists(f"/sys/fs/cgroup/{controller}/{cgroup}")


@pytest.mark.parametrize(("change", "message"), [
    ({"process": {"args": [], "cwd": "/"}}, "process.args"),
    ({"process": {"args": ["sh"], "cwd": "relative"}}, "process.cwd"),
    ({"ociVersion": "2.0.0"}, "ociVersion"),
    ({"root": {"path": "no-such-rootfs"}}, "root.path"),
    ({"hostname": 42}, "hostname"),
    ({"mounts": [{"destination": "proc", "type": "proc", "source": "proc"}]},
     "mounts[0].destination"),
    ({"linux": {"namespaces": [{"type": "mount"}, {"type": "bogus"}]}},
     "linux.namespaces[1].type"),
    ({"linux": {"namespaces": [{"type": "mount"},
                               {"type": "network", "path": "/proc/999999/ns/net"}]}},
     "linux.namespaces[1].path"),
    ({"process": {"args": ["sh"], "cwd": "/", "rlimits": [
        {"type": "RLIMIT_NOFILE", "soft": 10, "hard": 5}]}}, "process.rlimits[0]"),
    ({"process": {"args": ["sh"], "cwd": "/",
                  "capabilities": {"bounding": ["CAP_FLY"]}}}, "process.capabilities.bounding"),
    ({"linux": {"namespaces": [{"type": "mount"}], "sysctl": {"net.ipv4.ip_forward": "1"}}},
     "linux.sysctl"),
])
def test_a_malformed_config_names_the_field_and_leaves_nothing(runtime, bundle, change, message):
    cid = unique_id()
    path, config = bundle(["true"])
    cgroups_path = config["linux"]["cgroupsPath"]
    for key, value in change.items():
        config[key] = value
    config["linux"]["cgroupsPath"] = cgroups_path
    _write(path, config)
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1
    assert message in result.stderr, result.stderr
    _assert_nothing_left(runtime, cid, config)


def test_invalid_json_says_where(runtime, bundle):
    path, _ = bundle(["true"])
    (path / "config.json").write_text('{"ociVersion": "1.0.2",\n "process": }')
    result = runtime("create", "--bundle", str(path), unique_id(), check=False)
    assert result.returncode == 1 and "line 2" in result.stderr


def test_a_missing_bind_source_is_refused(runtime, bundle, tmp_path):
    cid = unique_id()
    path, config = bundle(["true"])
    config["mounts"].append({"destination": "/data", "type": "bind",
                             "source": str(tmp_path / "absent"), "options": ["rbind"]})
    _write(path, config)
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1
    assert f"mounts[{len(config['mounts']) - 1}].source" in result.stderr
    _assert_nothing_left(runtime, cid, config)


def test_a_missing_executable_fails_create(runtime, bundle):
    cid = unique_id()
    path, config = bundle(["no-such-program"])
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1
    assert 'exec: "no-such-program": executable file not found in $PATH' in result.stderr
    _assert_nothing_left(runtime, cid, config)


def test_a_symlinked_proc_destination_is_refused(runtime, bundle, tmp_path):
    cid = unique_id()
    path, config = bundle(["true"])
    os.rmdir(path / "rootfs" / "proc")
    os.symlink("/tmp", path / "rootfs" / "proc")
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1 and "symlink" in result.stderr
    _assert_nothing_left(runtime, cid, config)


def test_symlinks_in_the_rootfs_cannot_send_mounts_to_the_host(runtime, bundle, tmp_path):
    """A mount destination that is a symlink pointing out of the rootfs lands inside it."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "canary").write_text("untouched")
    path, config = bundle(["sh", "-c", "ls /escape; cat /escape/canary 2>/dev/null; true"])
    os.symlink(str(outside), path / "rootfs" / "escape")
    config["mounts"].append({"destination": "/escape", "type": "tmpfs", "source": "tmpfs",
                             "options": ["size=1m"]})
    _write(path, config)
    runtime("run", "--bundle", str(path), unique_id())
    assert (outside / "canary").read_text() == "untouched"
    # the tmpfs went to the symlink's target resolved inside the rootfs
    assert (path / "rootfs" / str(outside).lstrip("/")).is_dir()


def test_the_container_gets_only_stdio_and_no_runtime_state(runtime, bundle, tmp_path):
    """Descriptors of the runtime (its own, and ones inherited from the caller) are
    closed before exec; the process is not the runtime (no python left inside)."""
    path, _ = bundle(["sh", "-c", "ls /proc/self/fd; echo ---; cat /proc/1/cmdline; echo; "
                      "grep -E '^(NoNewPrivs|CapEff)' /proc/self/status"])
    leaked = os.open("/etc/hostname", os.O_RDONLY)  # inheritable on purpose
    os.set_inheritable(leaked, True)
    try:
        result = subprocess.run([runtime.binary, "--root", str(runtime.root), "run",
                                 "--bundle", str(path), unique_id()], capture_output=True,
                                text=True, timeout=60, close_fds=False, check=False)
    finally:
        os.close(leaked)
    assert result.returncode == 0, result.stderr
    fds, rest = result.stdout.split("---\n")
    # 0, 1, 2 and the one ls opens for /proc/self/fd itself
    assert sorted(int(f) for f in fds.split()) == [0, 1, 2, 3]
    assert "python" not in rest and rest.startswith("sh")
    assert "NoNewPrivs:\t1" in rest


def test_what_the_host_lacks_is_named_and_nothing_is_left(runtime, bundle):
    """A sysctl this kernel does not have: the field is named, create fails, and the
    namespaces, mounts and cgroup are gone."""
    cid = unique_id()
    path, config = bundle(["true"])
    config["linux"]["sysctl"] = {"net.ipv4.no_such_knob": "1"}
    _write(path, config)
    result = runtime("create", "--bundle", str(path), cid, check=False)
    assert result.returncode == 1
    assert "linux.sysctl.net.ipv4.no_such_knob" in result.stderr, result.stderr
    _assert_nothing_left(runtime, cid, config)
