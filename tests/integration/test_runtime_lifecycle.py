"""longboat-runtime through its command line: the lifecycle, exec, signals, limits."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import time
from pathlib import Path

import pytest
from tests.integration.conftest import wait_child
from tests.support.bundles import unique_id

from longboat.linux import proc

pytestmark = pytest.mark.integration


def test_run_gives_pid_1_hostname_and_exit_code(runtime, bundle):
    path, _ = bundle(["sh", "-c", "echo pid=$$; hostname; exit 3"], hostname="boat")
    result = runtime("run", "--bundle", str(path), unique_id(), check=False)
    assert result.returncode == 3, result.stderr
    assert result.stdout.split() == ["pid=1", "boat"]


def test_create_start_state_kill_delete(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, config = bundle(["sleep", "1000"])
    pid_file = path / "pid"
    runtime("create", "--bundle", str(path), "--pid-file", str(pid_file), cid)
    state = runtime.state(cid)
    assert state["status"] == "created"
    assert state["pid"] == int(pid_file.read_text()) > 0
    assert state["bundle"] == str(path)
    assert state["id"] == cid
    runtime("start", cid)
    assert runtime.state(cid)["status"] == "running"
    listed = runtime("list", "--format", "json").stdout
    assert [s["id"] for s in json.loads(listed)] == [cid]
    assert runtime("list", "-q").stdout.split() == [cid]
    # a running container is not deleted without --force
    refused = runtime("delete", cid, check=False)
    assert refused.returncode == 1 and "not stopped" in refused.stderr
    runtime("kill", cid, "KILL")
    assert wait_child(state["pid"]) == 137
    assert runtime.state(cid)["status"] == "stopped"
    runtime("delete", cid)
    cgroup = config["linux"]["cgroupsPath"].lstrip("/")
    assert not os.path.exists(f"/sys/fs/cgroup/memory/{cgroup}")
    gone = runtime("state", cid, check=False)
    assert gone.returncode == 1 and "does not exist" in gone.stderr


def test_kill_delivers_the_signal(runtime, bundle, tmp_path):
    cid = unique_id()
    runtime.ids.append(cid)
    script = "trap 'echo got-usr1 > /out/signal; exit 7' USR1; while :; do sleep 0.05; done"
    out = tmp_path / "out"
    out.mkdir()
    path, config = bundle(["sh", "-c", script])
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                             "options": ["rbind", "rw"]})
    (path / "config.json").write_text(json.dumps(config))
    runtime("create", "--bundle", str(path), cid)
    runtime("start", cid)
    pid = runtime.state(cid)["pid"]
    runtime("kill", cid, "USR1")
    assert wait_child(pid) == 7
    assert (out / "signal").read_text() == "got-usr1\n"


def test_exec_enters_the_running_container(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, _ = bundle(["sleep", "1000"], hostname="inner")
    runtime("create", "--bundle", str(path), cid)
    runtime("start", cid)
    init = runtime.state(cid)["pid"]
    result = runtime("exec", cid, "sh", "-c", "hostname; echo $$; cat /proc/1/cmdline")
    lines = result.stdout.splitlines()
    assert lines[0] == "inner"
    assert int(lines[1]) > 1  # a new process in the container's PID namespace
    assert lines[2].startswith("sleep")
    for kind in ("pid", "net", "mnt", "uts", "ipc"):
        assert os.readlink(f"/proc/{init}/ns/{kind}") != os.readlink(f"/proc/self/ns/{kind}")
    code = runtime("exec", cid, "sh", "-c", "exit 42", check=False)
    assert code.returncode == 42
    env = runtime("exec", "--env", "GREETING=hi", "--cwd", "/tmp", "--user", "1000:1001",
                  cid, "sh", "-c", 'echo "$GREETING $(pwd) $(id -u):$(id -g)"')
    assert env.stdout.strip() == "hi /tmp 1000:1001"
    missing = runtime("exec", cid, "no-such-program", check=False)
    assert missing.returncode == 1
    assert "executable file not found" in missing.stderr


def test_exec_detached_with_pid_file(runtime, bundle, tmp_path):
    cid = unique_id()
    runtime.ids.append(cid)
    path, _ = bundle(["sleep", "1000"])
    runtime("run", "--detach", "--bundle", str(path), cid)
    pid_file = tmp_path / "exec.pid"
    runtime("exec", "--detach", "--pid-file", str(pid_file), cid, "sleep", "1000")
    pid = int(pid_file.read_text())
    assert proc.is_alive(pid)
    assert pid in json.loads(runtime("ps", "--format", "json", cid).stdout)
    runtime("delete", "--force", cid)
    assert wait_child(pid) == 137


def test_pause_freezes_and_resume_thaws(runtime, bundle, tmp_path):
    cid = unique_id()
    runtime.ids.append(cid)
    out = tmp_path / "ticks"
    out.mkdir()
    path, config = bundle(["sh", "-c", "i=0; while :; do i=$((i+1)); echo $i > /out/n; "
                           "sleep 0.02; done"])
    config["mounts"].append({"destination": "/out", "type": "bind", "source": str(out),
                             "options": ["rbind"]})
    (path / "config.json").write_text(json.dumps(config))
    runtime("run", "--detach", "--bundle", str(path), cid)
    _wait_for(lambda: (out / "n").exists())
    runtime("pause", cid)
    assert runtime.state(cid)["status"] == "paused"
    frozen_at = (out / "n").read_text()
    time.sleep(0.3)  # a paused counter must not move, whatever we wait
    assert (out / "n").read_text() == frozen_at
    runtime("resume", cid)
    assert runtime.state(cid)["status"] == "running"
    _wait_for(lambda: (out / "n").read_text() not in ("", frozen_at))


def test_memory_limit_oom_kill_is_reported(runtime, bundle):
    cid = unique_id()
    path, _ = bundle(["dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1"],
                     linux__resources={"memory": {"limit": 16 << 20, "swap": 16 << 20}})
    result = runtime("run", "--bundle", str(path), cid, check=False)
    assert result.returncode == 137
    assert "out of memory" in result.stderr
    # the state says so too while the container exists
    cid2 = unique_id()
    runtime.ids.append(cid2)
    runtime("create", "--bundle", str(path), cid2)
    pid = runtime.state(cid2)["pid"]
    runtime("start", cid2)
    assert wait_child(pid) == 137
    state = runtime.state(cid2)
    assert state["status"] == "stopped" and state["oomKilled"] is True


def test_pids_limit_contains_a_fork_bomb(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, config = bundle(["sh", "-c", "for i in $(seq 60); do sleep 30 & done; sleep 30"],
                          linux__resources={"pids": {"limit": 16}})
    runtime("run", "--detach", "--bundle", str(path), cid)
    cg = "/sys/fs/cgroup/pids" + config["linux"]["cgroupsPath"]
    # the kernel counts each refused fork in pids.events
    _wait_for(lambda: int(Path(cg, "pids.events").read_text().split()[1]) > 0)
    assert int(Path(cg, "pids.current").read_text()) <= 16
    assert len(json.loads(runtime("ps", "--format", "json", cid).stdout)) <= 16


def test_update_changes_limits_of_a_running_container(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, config = bundle(["sleep", "1000"], linux__resources={"pids": {"limit": 50}})
    runtime("run", "--detach", "--bundle", str(path), cid)
    runtime("update", "--memory", "32m", "--pids-limit", "20", "--cpu-shares", "512", cid)
    cg = config["linux"]["cgroupsPath"].lstrip("/")
    assert Path(f"/sys/fs/cgroup/memory/{cg}/memory.limit_in_bytes").read_text().strip() == \
        str(32 << 20)
    assert Path(f"/sys/fs/cgroup/pids/{cg}/pids.max").read_text().strip() == "20"
    assert Path(f"/sys/fs/cgroup/cpu/{cg}/cpu.shares").read_text().strip() == "512"


def test_console_socket_receives_the_terminal(runtime, bundle, tmp_path):
    cid = unique_id()
    runtime.ids.append(cid)
    path, _ = bundle(["sh", "-c", "tty; echo size=$(stty size)"], process__terminal=True,
                     process__consoleSize={"height": 30, "width": 100})
    sock_path = str(tmp_path / "console.sock")
    server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    server.bind(sock_path)
    server.listen(1)
    server.settimeout(30)
    try:
        runtime("create", "--bundle", str(path), "--console-socket", sock_path, cid)
        conn, _ = server.accept()
        _, fds, _, _ = socket.recv_fds(conn, 1024, 1)
        conn.close()
        master = fds[0]
        pid = runtime.state(cid)["pid"]
        runtime("start", cid)
        output = b""
        while True:
            try:
                chunk = os.read(master, 4096)
            except OSError:
                break
            if not chunk:
                break
            output += chunk
        os.close(master)
        assert wait_child(pid) == 0
    finally:
        server.close()
    text = output.decode().replace("\r", "")
    assert "/dev/pts/0" in text or "/dev/console" in text
    assert "size=30 100" in text


def test_run_with_a_terminal_relays_it(runtime, bundle):
    path, _ = bundle(["sh", "-c", "tty; read line; echo got:$line"], process__terminal=True)
    master, slave = os.openpty()
    cid = unique_id()
    try:
        child = subprocess.Popen([runtime.binary, "--root", str(runtime.root), "run",
                                  "--bundle", str(path), cid],
                                 stdin=slave, stdout=slave, stderr=slave)
        os.close(slave)
        os.write(master, b"hello\n")
        output = b""
        deadline = time.monotonic() + 30
        while b"got:hello" not in output and time.monotonic() < deadline:
            if proc.wait_readable(master, 1):
                try:
                    output += os.read(master, 4096)
                except OSError:
                    break
        assert child.wait(timeout=30) == 0
    finally:
        os.close(master)
    assert b"got:hello" in output
    assert b"/dev/pts/0" in output


def _wait_for(condition, timeout: float = 10) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.02)


def test_a_container_joins_another_ones_namespaces_by_path(runtime, bundle):
    """How --network container:X and friends work: namespaces given by path are joined."""
    first = unique_id()
    runtime.ids.append(first)
    path, _ = bundle(["sleep", "1000"], hostname="first")
    runtime("run", "--detach", "--bundle", str(path), first)
    pid = runtime.state(first)["pid"]
    path2, config = bundle(["sh", "-c", "hostname; readlink /proc/self/ns/net"])
    for ns in config["linux"]["namespaces"]:
        if ns["type"] in ("network", "uts", "ipc"):
            ns["path"] = f"/proc/{pid}/ns/{ {'network': 'net'}.get(ns['type'], ns['type'])}"
    config.pop("hostname", None)
    (path2 / "config.json").write_text(json.dumps(config))
    out = runtime("run", "--bundle", str(path2), unique_id()).stdout.split()
    assert out[0] == "first"
    assert out[1] == os.readlink(f"/proc/{pid}/ns/net")


def test_rootfs_and_bind_propagation(runtime, bundle, tmp_path):
    """With the rootfs rshared (as Docker asks when a bind mount must propagate), a
    bind mount marked rshared passes mounts made inside the container back to the host;
    with the default (rslave) they stay inside."""
    shared = tmp_path / "shared"
    shared.mkdir()
    from longboat.linux import libc

    libc.mount(str(shared), str(shared), None, libc.MS_BIND)
    try:
        libc.mount(None, str(shared), None, libc.MS_SHARED)
        path, config = bundle(["sh", "-c", "mount -t tmpfs none /shared/inner && "
                               "echo hi > /shared/inner/file"],
                              linux__rootfsPropagation="rshared")
        (shared / "inner").mkdir()
        config["mounts"].append({"destination": "/shared", "type": "bind",
                                 "source": str(shared), "options": ["rbind", "rshared"]})
        config["process"]["capabilities"]["bounding"].append("CAP_SYS_ADMIN")
        config["process"]["capabilities"]["effective"].append("CAP_SYS_ADMIN")
        config["process"]["capabilities"]["permitted"].append("CAP_SYS_ADMIN")
        (path / "config.json").write_text(json.dumps(config))
        runtime("run", "--bundle", str(path), unique_id())
        # the tmpfs mounted inside propagated out to the host's copy of the directory
        assert (shared / "inner" / "file").read_text() == "hi\n"
        libc.umount2(str(shared / "inner"), libc.MNT_DETACH)
    finally:
        libc.umount2(str(shared), libc.MNT_DETACH)
