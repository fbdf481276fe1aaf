"""longboatd runs containers for the real docker CLI: run (attached, piped stdin, exit
codes, --rm), detached containers, ps, logs, stop with a grace period, kill, pause,
rename, rm, wait; and live restore across an engine restart."""

from __future__ import annotations

import json
import os
import time

import pytest
from tests.support.engine import Longboatd, busybox_engine
from tests.support.terminal import under_pty

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory, rootfs_template):
    with busybox_engine(tmp_path_factory.mktemp("longboatd-containers"), rootfs_template,
                        "--change", 'CMD ["sh"]') as daemon:
        yield daemon


def test_run_attached_gives_output_and_exit_code(engine):
    out = engine.docker("run", "--rm", "--hostname", "boat", "bb:1", "sh", "-c",
                        "echo pid=$$ host=$(hostname); echo err >&2")
    assert out.stdout == "pid=1 host=boat\n" and out.stderr == "err\n"
    failed = engine.docker("run", "--rm", "bb:1", "sh", "-c", "exit 7", check=False)
    assert failed.returncode == 7
    assert engine.docker("ps", "-aq").stdout == ""   # --rm removed both


def test_run_with_piped_stdin(engine):
    out = engine.docker("run", "--rm", "-i", "bb:1", "sh", "-c", "tr a-z A-Z",
                        input=b"hello longboat\n")
    assert out.stdout == "HELLO LONGBOAT\n"


def test_detached_ps_logs_stop_rm(engine):
    cid = engine.docker("run", "-d", "--name", "ticker", "bb:1", "sh", "-c",
                        "i=0; while true; do echo tick $i; i=$((i+1)); sleep 0.1; done"
                        ).stdout.strip()
    assert len(cid) == 64
    _until(lambda: "tick 3" in engine.docker("logs", "ticker").stdout)
    ps = engine.docker("ps", "--format", "{{.ID}} {{.Names}} {{.Status}}").stdout
    assert ps.startswith(f"{cid[:12]} ticker Up ")
    tail = engine.docker("logs", "--tail", "1", "ticker").stdout.splitlines()
    assert len(tail) == 1 and tail[0].startswith("tick ")
    stamped = engine.docker("logs", "-t", "--tail", "1", "ticker").stdout
    assert stamped[:4].isdigit() and "Z tick" in stamped
    started = time.monotonic()
    engine.docker("stop", "-t", "1", "ticker")   # sh as PID 1 ignores SIGTERM: SIGKILL
    assert 0.9 < time.monotonic() - started < 15
    state = json.loads(engine.docker("inspect", "ticker").stdout)[0]["State"]
    assert (state["Status"], state["ExitCode"], state["Running"]) == ("exited", 137, False)
    refused = engine.docker("start", "-a", "nope", check=False)
    assert refused.returncode != 0 and "No such container: nope" in refused.stderr
    engine.docker("rm", "ticker")
    assert "ticker" not in engine.docker("ps", "-a").stdout


def test_stop_signal_is_delivered_and_graceful_exit_recorded(engine):
    engine.docker("run", "-d", "--name", "graceful", "bb:1", "sh", "-c",
                  "trap 'echo bye; exit 3' TERM; while true; do sleep 0.1; done")
    _until(lambda: _status(engine, "graceful") == "running")
    engine.docker("stop", "graceful")
    assert engine.docker("wait", "graceful").stdout.strip() == "3"
    assert "bye" in engine.docker("logs", "graceful").stdout
    engine.docker("rm", "graceful")


def test_remove_running_needs_force_and_names_are_unique(engine):
    engine.docker("run", "-d", "--name", "busy", "bb:1", "sleep", "60")
    refused = engine.docker("rm", "busy", check=False)
    assert refused.returncode == 1
    assert "You cannot remove a running container" in refused.stderr
    taken = engine.docker("run", "-d", "--name", "busy", "bb:1", "true", check=False)
    assert taken.returncode != 0 and 'The container name "/busy" is already in use' in \
        taken.stderr
    engine.docker("rename", "busy", "renamed")
    engine.docker("pause", "renamed")
    assert _status(engine, "renamed") == "paused"
    engine.docker("unpause", "renamed")
    engine.docker("kill", "renamed")
    assert engine.docker("wait", "renamed").stdout.strip() == "137"
    engine.docker("rm", "-f", "renamed")


def test_missing_image_and_bad_input(engine):
    # --pull never: the CLI would otherwise ask us to pull from Docker Hub (no traffic
    # leaves this machine in tests)
    missing = engine.docker("create", "--pull", "never", "no-such-image:1", check=False)
    assert missing.returncode != 0 and "No such image: no-such-image:1" in missing.stderr
    bad = engine.docker("run", "--rm", "--pull", "never", "--name", "bad name", "bb:1",
                        "true", check=False)
    assert bad.returncode != 0 and "Invalid container name" in bad.stderr
    assert engine.docker("ps", "-aq").stdout == ""


def test_live_restore_keeps_containers_across_an_engine_restart(engine):
    engine.docker("run", "-d", "--name", "survivor", "bb:1", "sh", "-c",
                  "trap 'exit 4' TERM; while true; do sleep 0.1; done")
    engine.docker("run", "-d", "--name", "quitter", "bb:1", "sh", "-c", "sleep 1; exit 5")
    pid = json.loads(engine.docker("inspect", "survivor").stdout)[0]["State"]["Pid"]
    engine.stop(monitor=False)          # the engine goes; the monitor and containers stay
    assert os.path.exists(f"/proc/{pid}")
    time.sleep(1.5)                    # quitter exits while no engine runs
    engine.start()
    assert _status(engine, "survivor") == "running"
    _until(lambda: _status(engine, "quitter") == "exited")
    code = engine.docker("inspect", "-f", "{{.State.ExitCode}}", "quitter").stdout.strip()
    assert code == "5"
    engine.docker("stop", "survivor")
    assert engine.docker("inspect", "-f", "{{.State.ExitCode}}", "survivor").stdout.strip() \
        == "4"
    engine.docker("rm", "survivor", "quitter")


def _status(engine: Longboatd, name: str) -> str:
    return engine.docker("inspect", "-f", "{{.State.Status}}", name).stdout.strip()


def _until(condition, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)




def test_exec_runs_in_the_container_with_exit_codes_and_stdin(engine):
    engine.docker("run", "-d", "--name", "target", "--hostname", "inner", "bb:1",
                  "sleep", "60")
    out = engine.docker("exec", "target", "sh", "-c", "echo $(hostname) $$; exit 3",
                        check=False)
    assert out.returncode == 3
    host, pid = out.stdout.split()
    assert host == "inner" and int(pid) > 1
    piped = engine.docker("exec", "-i", "target", "sh", "-c", "tr a-z A-Z", input=b"abc\n")
    assert piped.stdout == "ABC\n"
    who = engine.docker("exec", "-u", "nobody", "-w", "/tmp", "-e", "X=1", "target",
                        "sh", "-c", "echo $(id -u) $(pwd) $X").stdout
    assert who == "65534 /tmp 1\n"
    missing = engine.docker("exec", "target", "no-such-command", check=False)
    assert missing.returncode == 126 and "executable file not found" in missing.stderr
    engine.docker("exec", "-d", "target", "sleep", "30")
    engine.docker("rm", "-f", "target")
    stopped = engine.docker("exec", "target", "true", check=False)
    assert stopped.returncode != 0 and "No such container" in stopped.stderr


def test_restart_policies(engine):
    engine.docker("run", "-d", "--name", "flaky", "--restart", "on-failure:2", "bb:1",
                  "sh", "-c", "exit 9")
    _until(lambda: engine.docker("inspect", "-f", "{{.RestartCount}} {{.State.Status}}",
                                 "flaky").stdout.split() == ["2", "exited"])
    assert engine.docker("inspect", "-f", "{{.State.ExitCode}}", "flaky").stdout.strip() == "9"
    engine.docker("run", "-d", "--name", "always", "--restart", "always", "bb:1",
                  "sh", "-c", "sleep 0.2")
    _until(lambda: int(engine.docker("inspect", "-f", "{{.RestartCount}}", "always")
                       .stdout) >= 2)
    engine.docker("stop", "always")        # a manual stop ends the restarts
    count = engine.docker("inspect", "-f", "{{.RestartCount}}", "always").stdout
    time.sleep(0.5)                       # no restart may follow a manual stop
    assert engine.docker("inspect", "-f", "{{.RestartCount}} {{.State.Running}}",
                         "always").stdout.split() == [count.strip(), "false"]
    refused = engine.docker("run", "--rm", "--restart", "always", "bb:1", "true",
                            check=False)
    assert refused.returncode != 0 and "restart" in refused.stderr.lower()
    engine.docker("rm", "-f", "flaky", "always")


def test_runc_as_the_container_runtime(engine):
    out = engine.docker("run", "--rm", "--runtime", "runc", "bb:1", "sh", "-c",
                        "echo pid=$$; cat /proc/1/cgroup | head -1")
    assert out.stdout.startswith("pid=1\n")
    engine.docker("run", "-d", "--runtime", "runc", "--name", "viarunc", "bb:1",
                  "sleep", "60")
    assert engine.docker("exec", "viarunc", "echo", "hi").stdout == "hi\n"
    inspected = json.loads(engine.docker("inspect", "viarunc").stdout)[0]
    assert inspected["HostConfig"]["Runtime"] == "runc"
    engine.docker("stop", "-t", "1", "viarunc")
    engine.docker("rm", "viarunc")
    unknown = engine.docker("run", "--rm", "--runtime", "nope", "bb:1", "true", check=False)
    assert unknown.returncode != 0 and "Unknown runtime specified nope" in unknown.stderr


def _in_pty(engine: Longboatd, args: list[str], typed: bytes = b"") -> tuple[bytes, int]:
    """The docker CLI on a real terminal (as a user types)."""
    import shutil

    env = {**os.environ, "DOCKER_HOST": engine.host,
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    docker = shutil.which("docker")
    assert docker is not None
    return under_pty([docker, *args], typed, env=env)


def test_interactive_terminals(engine):
    shown, code = _in_pty(engine, ["run", "-it", "--rm", "bb:1", "sh", "-c",
                                   "tty; echo TERM=$TERM"])
    assert code == 0 and b"/dev/pts/0" in shown and b"TERM=xterm" in shown
    engine.docker("run", "-d", "--name", "shell", "bb:1", "sleep", "60")
    shown, code = _in_pty(engine, ["exec", "-it", "shell", "sh"],
                          typed=b"echo inside $(tty); exit 4\r")
    assert code == 4 and b"inside /dev/pts/" in shown
    engine.docker("rm", "-f", "shell")


def test_logs_follow_streams_until_the_container_exits(engine):
    engine.docker("run", "-d", "--name", "counter", "bb:1", "sh", "-c",
                  "for i in 1 2 3 4 5; do echo n$i; sleep 0.2; done")
    followed = engine.docker("logs", "-f", "counter", timeout=30).stdout
    assert followed.split() == ["n1", "n2", "n3", "n4", "n5"]
    engine.docker("rm", "counter")


def test_api_bodies_of_the_wrong_shape_are_refused(engine):
    import http.client
    import socket as socketlib

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socketlib.socket(socketlib.AF_UNIX, socketlib.SOCK_STREAM)
            self.sock.connect(str(engine.socket))

    for body, status in ((b"[]", 400), (b"{not json", 400), (b'{"Image": 5}', 400),
                         (b'{"Image": "bb:1", "HostConfig": []}', 400),
                         (b'{"Image": "absent:1"}', 404)):
        conn = Conn("localhost")
        conn.request("POST", "/v1.41/containers/create", body,
                     {"Content-Type": "application/json"})
        response = conn.getresponse()
        message = json.loads(response.read())["message"]
        conn.close()
        assert response.status == status, (body, message)
        assert message
    assert engine.docker("ps", "-aq").stdout == ""   # nothing half-created
    df = engine.docker("system", "df").stdout
    assert "Containers" in df


def test_a_container_that_cannot_start(engine):
    started = time.monotonic()
    failed = engine.docker("run", "--rm", "bb:1", "/no/such/program", check=False,
                           timeout=60)
    assert failed.returncode != 0 and "no such file or directory" in failed.stderr.lower()
    assert time.monotonic() - started < 30
    assert engine.docker("ps", "-aq").stdout == ""     # --rm removed it anyway
    kept = engine.docker("run", "--name", "broken", "bb:1", "/no/such/program",
                         check=False)
    assert kept.returncode != 0
    assert _status(engine, "broken") == "created"
    engine.docker("rm", "broken")


def test_restart_policy_applies_to_exits_while_the_engine_was_down(engine):
    engine.docker("run", "-d", "--name", "phoenix", "--restart", "always", "bb:1", "sh",
                  "-c", "sleep 1; exit 1")
    engine.stop(monitor=False)
    time.sleep(1.5)                   # it exits while no engine runs
    engine.start()
    _until(lambda: int(engine.docker("inspect", "-f", "{{.RestartCount}}", "phoenix")
                       .stdout) >= 1)
    engine.docker("rm", "-f", "phoenix")


def test_a_container_that_does_not_read_stdin_blocks_nobody(engine):
    """The monitor supervises every container: a full stdin pipe must not stop it."""
    import subprocess

    env = {**os.environ, "DOCKER_HOST": engine.host,
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    slow = subprocess.Popen(["docker", "run", "-i", "--name", "deaf", "bb:1", "sleep", "30"],
                            stdin=subprocess.PIPE, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL, env=env)
    try:
        _until(lambda: engine.docker("inspect", "-f", "{{.State.Status}}", "deaf",
                                     check=False).stdout.strip() == "running")
        assert slow.stdin is not None
        import threading

        feeder = threading.Thread(target=lambda: _feed(slow.stdin), daemon=True)
        feeder.start()
        started = time.monotonic()
        assert engine.docker("run", "--rm", "bb:1", "echo", "ok", timeout=30).stdout == "ok\n"
        assert time.monotonic() - started < 15
    finally:
        engine.docker("rm", "-f", "deaf", check=False)
        slow.kill()
        slow.wait()


def _feed(pipe) -> None:
    try:
        for _ in range(64):
            pipe.write(b"x" * 65536)
            pipe.flush()
    except (BrokenPipeError, ValueError, OSError):
        pass
