"""The json-file log driver with real processes: a writer in another process (as the
engine's monitor is) fed by a real program's pipes while we follow through rotations; and
a real Docker 20.10 engine as the oracle for the file format, rotation and ``docker logs``."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.dockerd import Dockerd, running

from longboat.engine import logs
from longboat.engine.logs import LogWriter, follow, read

MONITOR = r"""
import os, selectors, subprocess, sys
from longboat.engine.logs import LogWriter
path, max_size, max_file, cmd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), sys.argv[4]
writer = LogWriter(path, max_size=max_size, max_file=max_file)
proc = subprocess.Popen(["sh", "-c", cmd], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
sel = selectors.DefaultSelector()
sel.register(proc.stdout, selectors.EVENT_READ, "stdout")
sel.register(proc.stderr, selectors.EVENT_READ, "stderr")
while sel.get_map():
    for key, _ in sel.select():
        data = os.read(key.fileobj.fileno(), 65536)
        if data:
            writer.write(key.data, data)
        else:
            sel.unregister(key.fileobj)
            writer.flush(key.data)
writer.close()
sys.exit(proc.wait())
"""

PROGRAM = ('i=0; while [ $i -lt 3000 ]; do echo "out $i"; echo "err $i" >&2; i=$((i+1)); '
           'done; printf end')


def test_follow_a_writer_in_another_process(tmp_path: Path) -> None:
    path = tmp_path / "c-json.log"
    monitor = subprocess.Popen([sys.executable, "-c", MONITOR, str(path), "8192", "100",
                                PROGRAM])

    async def collect() -> list[tuple[int, bytes]]:
        gen = follow(str(path), running=lambda: monitor.poll() is None, poll=0.02)
        return [item async for item in gen]

    try:
        got = asyncio.run(asyncio.wait_for(collect(), 30))
    finally:
        if monitor.poll() is None:
            monitor.kill()
        monitor.wait()
    assert monitor.returncode == 0
    out = b"".join(d for s, d in got if s == 1)
    err = b"".join(d for s, d in got if s == 2)
    assert out == b"".join(f"out {i}\n".encode() for i in range(3000)) + b"end"
    assert err == b"".join(f"err {i}\n".encode() for i in range(3000))
    assert len(list(path.parent.glob("c-json.log.*"))) > 10  # it did rotate, many times
    assert got == list(read(str(path)))  # and a later read agrees, in the same order


# --------------------------------------------------------------------------------------
# the oracle: a real Docker 20.10 engine in its own network and mount namespaces

@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path) -> Iterator[Dockerd]:
    with running(tmp_path_factory.mktemp("dockerd")) as daemon:
        image = tmp_path_factory.mktemp("image") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        daemon.docker("import", str(image), "longboat-logs:test")
        yield daemon


def docker_run(dockerd: Dockerd, script: str, *opts: str) -> Path:
    """Run ``script`` in a container to its end; the path of its json-file log."""
    cid = dockerd.docker("run", "-d", "--network", "none", "--log-driver", "json-file", *opts,
                         "longboat-logs:test", "sh", "-c", script).stdout.decode().strip()
    assert dockerd.docker("wait", cid).stdout.strip() == b"0"
    return Path(dockerd.docker("inspect", "-f", "{{.LogPath}}", cid).stdout.decode().strip())


def log_fields(path: Path) -> list[tuple[str, bytes]]:
    """(stream, the raw JSON text of "log") per line, as the file has them."""
    fields = []
    for line in path.read_bytes().splitlines():
        m = re.fullmatch(rb'\{"log":(".*"),"stream":"(stdout|stderr)","time":"([^"]+)"\}', line)
        assert m, line
        assert re.fullmatch(rb"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d*[1-9])?Z", m.group(3)), line
        fields.append((m.group(2).decode(), m.group(1)))
    return fields


# Bytes that test the escaping: HTML characters, controls, invalid and truncated UTF-8,
# an encoded surrogate, U+2028, a 40000-byte line, and a last line without a newline.
SCRIPT = (r"""printf 'plain\n<a>&"q" \\ \t\a\r\n\377 \342\202A \355\240\200 \342\200\250 é\n'; """
          r"printf 'err\n' >&2; "
          r"i=0; while [ $i -lt 4000 ]; do printf 0123456789; i=$((i+1)); done; echo; "
          r"printf 'partial end'")
SCRIPT_OUT = (b'plain\n<a>&"q" \\ \t\a\r\n\xff \xe2\x82A \xed\xa0\x80 \xe2\x80\xa8 \xc3\xa9\n'
              + b"0123456789" * 4000 + b"\npartial end")


def test_file_format_matches_docker(dockerd: Dockerd, tmp_path: Path) -> None:
    theirs = docker_run(dockerd, SCRIPT)
    ours = tmp_path / "ours.log"
    with LogWriter(str(ours)) as w:
        for start in range(0, len(SCRIPT_OUT), 4096):  # chunking does not matter
            w.write("stdout", SCRIPT_OUT[start:start + 4096])
        w.write("stderr", b"err\n")
    def per_stream(fields: list[tuple[str, bytes]], stream: str) -> list[bytes]:
        return [text for s, text in fields if s == stream]
    for stream in ("stdout", "stderr"):
        assert per_stream(log_fields(ours), stream) == per_stream(log_fields(theirs), stream)
    # and our reader reads Docker's file as `docker logs` shows it
    assert b"".join(d for s, d in read(str(theirs)) if s == 1) == \
        b"".join(d for s, d in read(str(ours)) if s == 1)


def test_reading_dockers_files_as_docker_logs_does(dockerd: Dockerd) -> None:
    script = ('i=0; while [ $i -lt 200 ]; do echo "line $i"; '
              'if [ $((i % 7)) = 0 ]; then echo "err $i" >&2; fi; i=$((i+1)); done')
    path = docker_run(dockerd, script, "--log-opt", "max-size=2k", "--log-opt", "max-file=3")
    cid = path.parent.name
    rotated = sorted(p.name for p in path.parent.glob(path.name + ".*"))
    assert rotated == [path.name + ".1", path.name + ".2"]
    entry = len(logs.encode_entry("stdout", b"line 199\n", 1_700_000_000_123_456_789))
    # Docker's rule, which ours follows: "2k" is 2000 bytes, and a file is rotated once it
    # has reached that size (before the next entry), so it passes it by at most one entry.
    assert logs.parse_size("2k") == 2000
    for p in path.parent.glob(path.name + ".*"):
        assert 2000 <= p.stat().st_size < 2000 + entry
    for args, kwargs in [
        ((), {}),
        (("--tail", "5"), {"tail": 5}),
        (("--timestamps", "--tail", "30"), {"timestamps": True, "tail": 30}),
    ]:
        out = dockerd.docker("logs", *args, cid)
        got = list(read(str(path), **kwargs))  # type: ignore[arg-type]
        # Docker tails before choosing streams; both streams are asked for here, as the CLI does.
        assert out.stdout == b"".join(d for s, d in got if s == 1)
        assert out.stderr == b"".join(d for s, d in got if s == 2)
    # --since/--until with a timestamp taken from the output
    stamped = dockerd.docker("logs", "-t", cid).stdout.splitlines()
    since = stamped[-20].split()[0].decode()
    until = stamped[-10].split()[0].decode()
    between = dockerd.docker("logs", "--since", since, "--until", until, cid).stdout
    got = list(read(str(path), since=logs.parse_time(since), until=logs.parse_time(until)))
    assert between == b"".join(d for s, d in got if s == 1)
    assert len(between.splitlines()) >= 11
