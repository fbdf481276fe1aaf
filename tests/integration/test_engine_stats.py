"""docker top and docker stats against a real longboatd: ps rows of that container only,
ps arguments, stats figures checked against the cgroup files, the stream, a stopped
container's zeros."""

from __future__ import annotations

import http.client
import json
import socket
import time
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory, rootfs_template):
    with busybox_engine(tmp_path_factory.mktemp("longboatd-stats"), rootfs_template) as daemon:
        yield daemon


class _UnixConnection(http.client.HTTPConnection):
    def __init__(self, path: Path) -> None:
        super().__init__("localhost", timeout=30)
        self.unix_path = str(path)

    def connect(self) -> None:
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(30)
        sock.connect(self.unix_path)
        self.sock = sock


def api_get(engine: Longboatd, path: str) -> tuple[int, object]:
    conn = _UnixConnection(engine.socket)
    try:
        conn.request("GET", "/v1.41" + path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def cgroup_file(controller: str, cid: str, name: str) -> str:
    return (Path("/sys/fs/cgroup") / controller / "longboat" / cid / name).read_text()


def _running(engine: Longboatd, name: str, *command: str, extra: tuple[str, ...] = ()
             ) -> str:
    return engine.docker("run", "-d", "--name", name, *extra, "bb:1", *command
                         ).stdout.strip()


def test_top_lists_the_container_processes_only(engine):
    first = _running(engine, "top-a", "sh", "-c", "sleep 1001 & sleep 1002 & wait")
    _running(engine, "top-b", "sleep", "1003")
    try:
        deadline = time.monotonic() + 10
        while True:
            out = engine.docker("top", "top-a").stdout
            if len(out.splitlines()) == 4 or time.monotonic() > deadline:
                break
            time.sleep(0.05)
        lines = out.splitlines()
        assert lines[0].split() == ["UID", "PID", "PPID", "C", "STIME", "TTY", "TIME", "CMD"]
        commands = sorted(line.split(None, 7)[7] for line in lines[1:])
        # (ps's 80 columns, without a terminal, may cut the longest command short)
        assert commands[0].startswith("sh -c sleep 1001 & sleep")
        assert commands[1:] == ["sleep 1001", "sleep 1002"]
        # the PIDs are the host's, and the same the cgroup lists
        pids = {int(line.split()[1]) for line in lines[1:]}
        in_cgroup = {int(p) for p in cgroup_file("pids", first, "cgroup.procs").split()}
        assert pids == in_cgroup

        status, body = api_get(engine, "/containers/top-a/top?ps_args=-o%20pid,comm")
        assert status == 200 and isinstance(body, dict)
        assert body["Titles"] == ["PID", "COMMAND"]
        assert sorted(row[1] for row in body["Processes"]) == ["sh", "sleep", "sleep"]
        aux = engine.docker("top", "top-b", "aux").stdout.splitlines()
        assert aux[0].split()[:2] == ["USER", "PID"] and len(aux) == 2
        assert aux[1].endswith("sleep 1003")
        status, body = api_get(engine, "/containers/top-b/top?ps_args=-o%20pid%20-o%20x=PID")
        assert status == 400 and 'specifying "x=PID" is not allowed' in body["message"]
    finally:
        engine.docker("rm", "-f", "top-a", "top-b")


def test_top_of_a_stopped_container_is_a_conflict(engine):
    cid = engine.docker("create", "--name", "top-stopped", "bb:1", "true").stdout.strip()
    try:
        refused = engine.docker("top", "top-stopped", check=False)
        assert refused.returncode != 0
        assert f"Container {cid} is not running" in refused.stderr
        status, _ = api_get(engine, "/containers/top-stopped/top")
        assert status == 409
    finally:
        engine.docker("rm", "top-stopped")


def test_stats_no_stream_matches_the_cgroup(engine):
    cid = _running(engine, "stats-a", "sh", "-c",
                   "while true; do i=0; while [ $i -lt 200 ]; do i=$((i+1)); done; "
                   "sleep 0.05; done", extra=("--memory", "64m"))
    try:
        line = engine.docker("stats", "--no-stream", "--format", "{{json .}}", "stats-a"
                             ).stdout
        shown = json.loads(line)
        assert shown["Name"] == "stats-a" and shown["ID"] == cid[:12]
        assert shown["MemUsage"].endswith(" / 64MiB")
        assert shown["CPUPerc"].endswith("%") and int(shown["PIDs"]) >= 1
        assert shown["NetIO"] == "0B / 0B"

        status, stats = api_get(engine, "/containers/stats-a/stats?stream=false")
        assert status == 200 and isinstance(stats, dict)
        assert stats["name"] == "/stats-a" and stats["id"] == cid
        assert "networks" not in stats    # no network: omitted, as Docker does
        memory = stats["memory_stats"]
        assert memory["limit"] == 64 << 20 == int(cgroup_file(
            "memory", cid, "memory.limit_in_bytes"))
        assert memory["stats"]["hierarchical_memory_limit"] == 64 << 20
        assert 0 < memory["usage"] <= memory["max_usage"] <= 64 << 20
        cpu = stats["cpu_stats"]
        total_now = int(cgroup_file("cpuacct", cid, "cpuacct.usage"))
        assert 0 < cpu["cpu_usage"]["total_usage"] <= total_now
        assert len(cpu["cpu_usage"]["percpu_usage"]) == len(
            cgroup_file("cpuacct", cid, "cpuacct.usage_percpu").split())
        assert cpu["online_cpus"] >= 1 and cpu["system_cpu_usage"] > 0
        assert set(cpu["throttling_data"]) == {"periods", "throttled_periods",
                                               "throttled_time"}
        # not one-shot: primed with a first sample a second earlier
        pre = stats["precpu_stats"]
        assert pre["system_cpu_usage"] < cpu["system_cpu_usage"]
        assert pre["cpu_usage"]["total_usage"] <= cpu["cpu_usage"]["total_usage"]
        assert stats["preread"] < stats["read"]
        assert stats["pids_stats"]["current"] == int(cgroup_file("pids", cid,
                                                                 "pids.current"))
        assert set(stats["blkio_stats"]) >= {"io_service_bytes_recursive",
                                             "io_serviced_recursive"}

        status, once = api_get(engine, "/containers/stats-a/stats?stream=false&one-shot=true")
        assert status == 200 and isinstance(once, dict)
        assert once["preread"] == "0001-01-01T00:00:00Z"
        assert once["precpu_stats"]["cpu_usage"]["total_usage"] == 0
    finally:
        engine.docker("rm", "-f", "stats-a")


def test_stats_stream_sends_one_object_a_second(engine):
    _running(engine, "stats-stream", "sleep", "60", extra=("--pids-limit", "50"))
    conn = _UnixConnection(engine.socket)
    try:
        conn.request("GET", "/v1.41/containers/stats-stream/stats")
        response = conn.getresponse()
        assert response.status == 200
        started = time.monotonic()
        first = json.loads(response.readline())
        second = json.loads(response.readline())
        assert 0.8 < time.monotonic() - started < 5
        assert first["preread"] == "0001-01-01T00:00:00Z"
        assert second["preread"] == first["read"]
        assert second["precpu_stats"] == first["cpu_stats"]
        assert second["pids_stats"] == {"current": 1, "limit": 50}
    finally:
        conn.close()
        engine.docker("rm", "-f", "stats-stream")


def test_stats_of_a_stopped_container_are_zeros(engine):
    cid = engine.docker("create", "--name", "stats-stopped", "bb:1", "true").stdout.strip()
    try:
        status, stats = api_get(engine, "/containers/stats-stopped/stats?stream=false")
        assert status == 200 and isinstance(stats, dict)
        assert stats["read"] == "0001-01-01T00:00:00Z"
        assert stats["memory_stats"] == {} and stats["pids_stats"] == {}
        assert stats["cpu_stats"]["cpu_usage"]["total_usage"] == 0
        assert (stats["name"], stats["id"]) == ("/stats-stopped", cid)
        shown = json.loads(engine.docker("stats", "--no-stream", "--format", "{{json .}}",
                                         "stats-stopped").stdout)
        assert shown["CPUPerc"] == "0.00%" and shown["MemUsage"] == "0B / 0B"
    finally:
        engine.docker("rm", "stats-stopped")
