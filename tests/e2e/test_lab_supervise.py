"""``longboat system service``: longboatd under Longboat's own supervision (what lab nodes
and hosts without systemd run). A killed longboatd comes back; stop stops it and leaves
the containers' monitor (live restore); status and restart tell and keep the flags."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest


class Service:
    def __init__(self, workdir: Path) -> None:
        self.workdir = workdir
        self.socket = workdir / "longboat.sock"
        self.pidfile = workdir / "supervise.pid"
        self.log = workdir / "longboatd.log"
        (workdir / "daemon.json").write_text("{}")
        self.flags = ["--data-root", str(workdir / "data"), "--exec-root",
                      str(workdir / "run"), "-H", f"unix://{self.socket}", "--pidfile",
                      str(workdir / "longboatd.pid"), "--bridge", "none"]

    def __call__(self, action: str, *extra: str, check: bool = True, flags: bool = True
                 ) -> subprocess.CompletedProcess[str]:
        bindir = Path(sys.executable).parent
        given = ["--", *self.flags] if flags and action in ("start", "restart") else []
        result = subprocess.run(
            [str(bindir / "longboat"), "system", "service", action, "--pidfile",
             str(self.pidfile), "--log-file", str(self.log),
             "--config-file", str(self.workdir / "daemon.json"), *extra, *given],
            capture_output=True, text=True, timeout=120, check=False)
        if check and result.returncode != 0:
            raise AssertionError(f"service {action}: {result.returncode}\n{result.stdout}\n"
                                 f"{result.stderr}\n{self.log.read_text()}")
        return result

    def state(self) -> dict[str, object]:
        return dict(json.loads(self.pidfile.with_suffix(".json").read_text()))

    def answers(self) -> bool:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.socket))
                s.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\n\r\n")
                return s.recv(100).startswith(b"HTTP/1.1 200")
            except OSError:
                return False

    def stop_monitor(self) -> None:
        with socket.socket(socket.AF_UNIX) as s:
            try:
                s.connect(str(self.workdir / "run" / "monitor.sock"))
                s.sendall(b'{"op": "shutdown", "force": true}\n')
                s.recv(4096)
            except OSError:
                pass


def gone(pid: int) -> bool:
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return True
    return stat[stat.rindex(b")") + 2:][:1] == b"Z"


def wait_for(what: str, condition: object, timeout: float = 20) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.05)


@pytest.fixture
def service(tmp_path: Path) -> Iterator[Service]:
    s = Service(tmp_path)
    try:
        yield s
    finally:
        s("stop", check=False)
        s.stop_monitor()


def test_a_killed_longboatd_comes_back_and_stop_stops_it(service: Service) -> None:
    out = service("start").stdout
    assert out.startswith("longboatd started (supervisor pid ")
    assert service.answers()
    assert "already running" in service("start").stdout
    first = service.state()
    supervisor, daemon = int(first["Pid"]), int(first["DaemonPid"])  # type: ignore[call-overload]
    status = service("status").stdout
    assert f"supervisor pid {supervisor}, longboatd pid {daemon}, restarts 0" in status

    began = time.monotonic()
    os.kill(daemon, signal.SIGKILL)
    wait_for("a new longboatd", lambda: int(service.state()["DaemonPid"]) != daemon  # type: ignore[call-overload]
             and service.answers())
    print(f"longboatd back {time.monotonic() - began:.2f}s after kill -9")
    assert service.state()["Restarts"] == 1
    assert "exited with status -9; starting it again" in service.log.read_text()

    # restart keeps the flags it was started with
    restarted = service("restart").stdout
    assert restarted.startswith("longboatd started")
    assert service.answers()
    assert str(service.workdir / "data") in " ".join(service.state()["Command"])  # type: ignore[arg-type]
    # without flags (--config-file alone is not a flag), restart keeps the recorded ones
    command = service.state()["Command"]
    assert service("restart", flags=False).stdout.startswith("longboatd started")
    assert service.answers() and service.state()["Command"] == command
    supervisor = int(service.state()["Pid"])  # type: ignore[call-overload]
    daemon = int(service.state()["DaemonPid"])  # type: ignore[call-overload]

    assert service("stop").stdout == "longboatd stopped\n"
    assert gone(supervisor) and gone(daemon)
    assert not service.socket.exists()
    assert not service.pidfile.exists()
    result = service("status", check=False)
    assert (result.returncode, result.stdout) == (3, "longboatd is not running\n")
    assert service("stop").stdout == "longboatd was not running\n"


def test_a_killed_supervisor_takes_longboatd_with_it(service: Service) -> None:
    service("start")
    state = service.state()
    os.kill(int(state["Pid"]), signal.SIGKILL)  # type: ignore[call-overload]
    wait_for("longboatd to stop", lambda: gone(int(state["DaemonPid"])))  # type: ignore[call-overload]
    assert service("status", check=False).returncode == 3
    service("start")                 # and it starts again over the stale pidfiles
    assert service.answers()


def test_start_reports_a_daemon_that_cannot_start(service: Service) -> None:
    (service.workdir / "file").write_text("")
    service.flags += ["--data-root", str(service.workdir / "file")]
    result = service("start", check=False)
    assert result.returncode == 1
    assert "longboat system service start: longboatd exited before it answered" in \
        result.stderr
    assert service("status", check=False).returncode == 3    # not left restarting
