"""longboatd as a daemon: TLS listeners with client certificates, daemon.json, the
socket's ownership, and what it reports about itself."""

from __future__ import annotations

import grp
import json
import os
import socket
import subprocess
import time

import pytest
from tests.support import tlscerts
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_tls_listener_requires_a_client_certificate(tmp_path):
    certs = tlscerts.make(tmp_path / "certs")
    port = free_port()
    daemon = Longboatd(tmp_path / "d", "-H", f"tcp://127.0.0.1:{port}", "--tlsverify",
                       "--tlscacert", str(certs["ca"]), "--tlscert", str(certs["server_cert"]),
                       "--tlskey", str(certs["server_key"]))
    (tmp_path / "d").mkdir()
    daemon.start()
    try:
        env = {**os.environ, "DOCKER_HOST": f"tcp://127.0.0.1:{port}",
               "DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": str(tmp_path / "certs"),
               "DOCKER_CONFIG": str(tmp_path / "cfg")}
        deadline = time.monotonic() + 20
        while True:
            ok = subprocess.run(["docker", "version", "--format", "{{.Server.Version}}"],
                                env=env, capture_output=True, text=True, timeout=30)
            if ok.returncode == 0 or time.monotonic() > deadline:
                break
            time.sleep(0.1)   # the TCP listener comes up just after the unix one
        assert ok.returncode == 0, ok.stderr
        # the same CA, no client certificate: refused during the handshake
        (tmp_path / "nocert").mkdir()
        (tmp_path / "nocert" / "ca.pem").write_bytes(certs["ca"].read_bytes())
        refused = subprocess.run(["docker", "version"], capture_output=True, text=True,
                                 env={**env, "DOCKER_CERT_PATH": str(tmp_path / "nocert")},
                                 timeout=30)
        assert refused.returncode != 0
    finally:
        daemon.stop()


def test_daemon_json_and_the_socket_group(tmp_path):
    (tmp_path / "d").mkdir()
    config = tmp_path / "daemon.json"
    config.write_text(json.dumps({"default-runtime": "runc", "log-level": "debug"}))
    daemon = Longboatd(tmp_path / "d", "--config-file", str(config)).start()
    try:
        info = json.loads(daemon.docker("info", "--format", "{{json .}}").stdout)
        assert info["DefaultRuntime"] == "runc" and info["Debug"] is True
        stat = os.stat(daemon.socket)
        assert stat.st_mode & 0o777 == 0o660
        assert stat.st_gid == grp.getgrnam("longboat").gr_gid
        bad = tmp_path / "bad.json"
        bad.write_text('{"no-such-setting": 1}')
        refused = subprocess.run([str(daemon.binary()), "--config-file", str(bad)],
                                 capture_output=True, text=True, timeout=30)
        assert refused.returncode == 2 and "unknown setting 'no-such-setting'" in \
            refused.stderr
    finally:
        daemon.stop()


@pytest.fixture(scope="module")
def engine(tmp_path_factory, rootfs_template):
    with busybox_engine(tmp_path_factory.mktemp("longboatd-daemon"), rootfs_template) as daemon:
        yield daemon


def test_info_counts_containers(engine):
    engine.docker("run", "-d", "--name", "one", "bb:1", "sleep", "60")
    engine.docker("create", "--name", "two", "bb:1", "true")
    info = json.loads(engine.docker("info", "--format", "{{json .}}").stdout)
    assert (info["Containers"], info["ContainersRunning"], info["ContainersStopped"]) == \
        (2, 1, 1)
    assert info["Images"] == 1
    engine.docker("rm", "-f", "one", "two")


def test_oom_kill_is_reported(engine):
    out = engine.docker("run", "--name", "hog", "--memory", "16m", "--memory-swap", "16m",
                        "bb:1", "dd", "if=/dev/zero", "of=/dev/null", "bs=64M", "count=1",
                        check=False)
    assert out.returncode == 137
    state = json.loads(engine.docker("inspect", "hog").stdout)[0]["State"]
    assert state["OOMKilled"] is True and state["ExitCode"] == 137
    engine.docker("rm", "hog")


def test_init_reaps_zombies_and_forwards_sigterm(engine):
    script = ("sh -c 'sleep 0.1 & exec sleep 0.3' & sleep 1; "
              "ps -o stat= | grep -c Z || true")
    out = engine.docker("run", "--rm", "--init", "bb:1", "sh", "-c", script).stdout
    assert out.strip() == "0"       # tini reaped the orphaned child
    first = engine.docker("run", "--rm", "--init", "bb:1", "sh", "-c",
                          "cat /proc/1/cmdline | tr '\\0' ' '").stdout
    assert "docker-init" in first or "tini" in first
    engine.docker("run", "-d", "--init", "--name", "inited", "bb:1", "sleep", "60")
    started = time.monotonic()
    engine.docker("stop", "-t", "20", "inited")   # SIGTERM reaches sleep through tini
    assert time.monotonic() - started < 10
    engine.docker("rm", "inited")


def test_log_rotation(engine):
    engine.docker("run", "--name", "chatty", "--log-opt", "max-size=2k", "--log-opt",
                  "max-file=2", "bb:1", "sh", "-c",
                  "for i in $(seq 1 200); do echo line-$i-xxxxxxxxxxxxxxxxxxxx; done")
    log = json.loads(engine.docker("inspect", "chatty").stdout)[0]["LogPath"]
    files = sorted(os.listdir(os.path.dirname(log)))
    rotated = [f for f in files if f.startswith(os.path.basename(log))]
    assert len(rotated) == 2                       # max-file keeps two
    assert os.path.getsize(log) < 2000 + 200       # max-size (one entry may overrun)
    tail = engine.docker("logs", "--tail", "1", "chatty").stdout
    assert tail == "line-200-xxxxxxxxxxxxxxxxxxxx\n"
    engine.docker("rm", "chatty")


def test_events_stream(engine):
    since = str(int(time.time()) - 1)
    engine.docker("run", "--rm", "--name", "evented", "bb:1", "true")
    out = engine.docker("events", "--since", since, "--until", str(int(time.time()) + 1),
                        "--filter", "container=evented", "--format", "{{.Action}}").stdout
    actions = out.split()
    assert actions[:2] == ["create", "start"] and "die" in actions and "destroy" in actions
