"""A container's files through the real docker CLI: docker cp both ways (running and
stopped containers, directories, symlinks, hostile tars refused with nothing written
outside), docker export, docker diff, docker commit."""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import time
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory, rootfs_template):
    with busybox_engine(tmp_path_factory.mktemp("longboatd-files"), rootfs_template) as daemon:
        yield daemon


# the container makes these, then idles
_SETUP = ("mkdir -p /data/sub && echo hello > /data/sub/f && ln -s sub/f /data/rel && "
          "ln -s /etc/passwd /data/abs && ln -s sub /data/dirlink && touch /ready && ")


def _wait_for(engine: Longboatd, name: str, path: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while engine.docker("cp", f"{name}:{path}", "-", check=False).returncode != 0:
        if time.monotonic() > deadline:
            raise AssertionError(f"{path} did not appear in {name}")
        time.sleep(0.05)


def _tar(entries: list[tuple[str, bytes | str | None]]) -> bytes:
    """A tar from (name, content): bytes a file, "->target" a symlink, None a dir."""
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        for name, content in entries:
            info = tarfile.TarInfo(name)
            info.mtime = 1_700_000_000
            if content is None:
                info.type, info.mode = tarfile.DIRTYPE, 0o755
                t.addfile(info)
            elif isinstance(content, str):
                info.type, info.linkname = tarfile.SYMTYPE, content[2:]
                t.addfile(info)
            else:
                info.size, info.mode = len(content), 0o644
                t.addfile(info, io.BytesIO(content))
    return out.getvalue()


def _members(data: bytes) -> dict[str, tarfile.TarInfo]:
    with tarfile.open(fileobj=io.BytesIO(data)) as t:
        return {m.name: m for m in t.getmembers()}


def _cp_out(engine: Longboatd, source: str) -> bytes:
    env = {**os.environ, "DOCKER_HOST": engine.host,
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    result = subprocess.run(["docker", "cp", source, "-"], capture_output=True, env=env,
                            timeout=60, check=False)
    assert result.returncode == 0, result.stderr.decode()
    return result.stdout


def test_cp_out_of_a_running_container(engine, tmp_path):
    engine.docker("run", "-d", "--name", "cp-run", "bb:1", "sh", "-c",
                  _SETUP + "sleep 600")
    try:
        _wait_for(engine, "cp-run", "/ready")
        engine.docker("cp", "cp-run:/data", str(tmp_path / "out"))
        assert (tmp_path / "out" / "sub" / "f").read_text() == "hello\n"
        assert os.readlink(tmp_path / "out" / "rel") == "sub/f"
        assert os.readlink(tmp_path / "out" / "abs") == "/etc/passwd"
        # a symlink is copied as a symlink; -L follows it (inside the container)
        engine.docker("cp", "cp-run:/data/abs", str(tmp_path / "link"))
        assert os.readlink(tmp_path / "link") == "/etc/passwd"
        engine.docker("cp", "-L", "cp-run:/data/abs", str(tmp_path / "passwd"))
        assert (tmp_path / "passwd").read_text().startswith("root:x:0:0:")
        # the tar as the API sends it, with its path stat
        members = _members(_cp_out(engine, "cp-run:/data/sub/."))
        assert sorted(members) == [".", "./f"]
        members = _members(_cp_out(engine, "cp-run:/data"))
        assert sorted(members) == ["data", "data/abs", "data/dirlink", "data/rel", "data/sub",
                                   "data/sub/f"]
        assert members["data/rel"].issym() and members["data/sub"].isdir()
        missing = engine.docker("cp", "cp-run:/nope", str(tmp_path / "x"), check=False)
        assert missing.returncode != 0 and "/nope" in missing.stderr
    finally:
        engine.docker("rm", "-f", "cp-run")


def test_path_stat_header(engine):
    import base64
    import http.client
    import socket

    class Conn(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(str(engine.socket))

    engine.docker("run", "-d", "--name", "cp-stat", "bb:1", "sh", "-c", _SETUP + "sleep 600")
    try:
        _wait_for(engine, "cp-stat", "/ready")
        stats = {}
        for path in ("/data/abs", "/data/sub", "/data/sub/f", "/data/dirlink/",
                     "/data/dirlink"):
            conn = Conn("localhost")
            conn.request("HEAD", f"/v1.41/containers/cp-stat/archive?path={path}")
            response = conn.getresponse()
            assert response.status == 200, path
            stats[path] = json.loads(base64.b64decode(
                response.headers["X-Docker-Container-Path-Stat"]))
            conn.close()
        assert stats["/data/abs"]["name"] == "abs"
        assert stats["/data/abs"]["mode"] == (1 << 27) | 0o777     # os.ModeSymlink
        assert stats["/data/abs"]["linkTarget"] == "/etc/passwd"
        assert stats["/data/sub"]["mode"] == (1 << 31) | 0o755     # os.ModeDir
        assert stats["/data/sub/f"] | {"mtime": ""} == {
            "name": "f", "size": 6, "mode": 0o644, "mtime": "", "linkTarget": ""}
        assert stats["/data/sub/f"]["mtime"].endswith("Z")
        # a trailing slash follows the link: the directory, under the link's name
        assert stats["/data/dirlink/"]["name"] == "dirlink"
        assert stats["/data/dirlink/"]["mode"] == (1 << 31) | 0o755
        assert stats["/data/dirlink"]["linkTarget"] == "/data/sub"
    finally:
        engine.docker("rm", "-f", "cp-stat")


def test_cp_into_running_and_stopped_containers(engine, tmp_path):
    source = tmp_path / "src"
    (source / "nested").mkdir(parents=True)
    (source / "nested" / "file.txt").write_text("from the host\n")
    os.symlink("nested/file.txt", source / "shortcut")
    (tmp_path / "single").write_text("one file\n")
    engine.docker("run", "-d", "--name", "cp-in", "bb:1", "sh", "-c", _SETUP + "sleep 600")
    engine.docker("create", "--name", "cp-stopped", "bb:1", "sh", "-c",
                  "cat /dropped/nested/file.txt /root/single; readlink /dropped/shortcut")
    try:
        _wait_for(engine, "cp-in", "/ready")
        engine.docker("cp", str(source), "cp-in:/tmp/")
        engine.docker("cp", str(tmp_path / "single"), "cp-in:/data/renamed")
        back = _members(_cp_out(engine, "cp-in:/tmp/src"))
        assert sorted(back) == ["src", "src/nested", "src/nested/file.txt", "src/shortcut"]
        assert back["src/shortcut"].linkname == "nested/file.txt"
        renamed = _members(_cp_out(engine, "cp-in:/data/renamed"))
        assert list(renamed) == ["renamed"] and renamed["renamed"].size == 9
        # onto a symlink (/data/abs -> /etc/passwd): the CLI follows the link target we
        # report, resolved inside the container, never the host's /etc/passwd
        engine.docker("cp", str(tmp_path / "single"), "cp-in:/data/abs")
        assert b"one file" in _cp_out(engine, "cp-in:/etc/passwd")
        assert Path("/etc/passwd").read_text().startswith("root:")

        # a stopped (never started) container: its snapshot is mounted for the copy
        engine.docker("cp", str(source), "cp-stopped:/dropped")
        engine.docker("cp", str(tmp_path / "single"), "cp-stopped:/root/single")
        out = engine.docker("start", "-a", "cp-stopped").stdout
        assert out == "from the host\none file\nnested/file.txt\n"
        # and out of it, now that it has exited
        engine.docker("cp", "cp-stopped:/dropped/nested", str(tmp_path / "again"))
        assert (tmp_path / "again" / "file.txt").read_text() == "from the host\n"
    finally:
        engine.docker("rm", "-f", "cp-in", "cp-stopped")


def test_hostile_tars_are_refused_and_nothing_lands_outside(engine, tmp_path):
    outside = tmp_path / "outside"
    outside.mkdir()
    engine.docker("run", "-d", "--name", "cp-hostile", "bb:1", "sh", "-c",
                  _SETUP + "sleep 600")
    try:
        _wait_for(engine, "cp-hostile", "/ready")
        merged = Path(json.loads(engine.docker("inspect", "cp-hostile").stdout)[0]
                      ["GraphDriver"]["Data"]["MergedDir"])
        attacks = {
            "dotdot": [("../../../../../../../.." + str(outside) + "/dotdot", b"x")],
            "absolute-link": [("esc", "->" + str(outside)), ("esc/abs-link", b"x")],
            "root-link": [("up", "->/"), ("up/etc/pwned", b"x")],
            "relative-link": [("rel", "->../../../../../../../../../.." + str(outside)),
                              ("rel/rel-link", b"x")],
            "absolute-name": [(str(outside) + "/absolute-name", b"x")],
        }
        for name, entries in attacks.items():
            result = engine.docker("cp", "-", "cp-hostile:/tmp", input=_tar(entries),
                                   check=False)
            assert result.returncode != 0, name
            assert "refused" in result.stderr or "traversal" in result.stderr, \
                (name, result.stderr)
        assert list(outside.iterdir()) == []
        assert not (merged / "etc" / "pwned").exists()
        assert not Path("/etc/pwned").exists()
        # a safe tar with a symlink that stays inside works
        engine.docker("cp", "-", "cp-hostile:/tmp", input=_tar(
            [("ok", None), ("ok/in", "->../ok"), ("ok/file", b"fine\n")]))
        assert b"fine" in _cp_out(engine, "cp-hostile:/tmp/ok/file")
        # the path asked for cannot leave the container either
        engine.docker("cp", "-", "cp-hostile:/../../../../tmp", input=_tar(
            [("clamped", b"inside\n")]))
        assert (merged / "tmp" / "clamped").read_text() == "inside\n"
    finally:
        engine.docker("rm", "-f", "cp-hostile")


def test_export_diff_and_commit(engine, tmp_path):
    engine.docker("run", "-d", "--name", "changer", "bb:1", "sh", "-c",
                  "touch /newfile && rm /etc/group && echo x >> /etc/passwd && "
                  "mkdir /tmp/d && touch /ready && sleep 600")
    try:
        _wait_for(engine, "changer", "/ready")
        diff = engine.docker("diff", "changer").stdout.splitlines()
        assert diff == ["C /etc", "D /etc/group", "C /etc/passwd", "A /newfile",
                        "A /ready", "C /tmp", "A /tmp/d"]

        exported = tmp_path / "export.tar"
        engine.docker("export", "-o", str(exported), "changer")
        names = subprocess.run(["tar", "tf", str(exported)], capture_output=True,
                               text=True, check=True).stdout.splitlines()
        assert "bin/busybox" in names and "newfile" in names and "tmp/d/" in names
        assert "etc/group" not in names and not any(n.startswith("./") for n in names)

        image = engine.docker("commit", "--change", 'CMD ["echo","hi"]', "--change",
                              "ENV COMMITTED=yes", "-m", "a message", "changer",
                              "committed:1").stdout.strip()
        assert image.startswith("sha256:")
        assert engine.docker("run", "--rm", "committed:1").stdout == "hi\n"
        out = engine.docker("run", "--rm", "committed:1", "sh", "-c",
                            "test -f /newfile && test -d /tmp/d && echo present; "
                            "echo $COMMITTED; test -e /etc/group || echo gone").stdout
        assert out == "present\nyes\ngone\n"
        inspected = json.loads(engine.docker("image", "inspect", "committed:1").stdout)[0]
        assert inspected["Config"]["Cmd"] == ["echo", "hi"]
        assert inspected["Comment"] == "a message"
        assert len(inspected["RootFS"]["Layers"]) == 2
        bad = engine.docker("commit", "--change", "RUN true", "changer", check=False)
        assert bad.returncode != 0 and "run is not a valid change command" in bad.stderr
        # still running after its pause for the commit
        assert engine.docker("inspect", "-f", "{{.State.Status}}", "changer"
                             ).stdout.strip() == "running"
    finally:
        engine.docker("rm", "-f", "changer")
        engine.docker("rmi", "committed:1", check=False)


def test_export_of_a_stopped_container(engine):
    engine.docker("run", "--name", "exited", "bb:1", "sh", "-c", "echo data > /made")
    try:
        env = {**os.environ, "DOCKER_HOST": engine.host,
               "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
        exported = subprocess.run(["docker", "export", "exited"], capture_output=True,
                                  env=env, timeout=60, check=True).stdout
        members = _members(exported)
        assert "made" in members and "bin/busybox" in members
        assert engine.docker("diff", "exited").stdout == "A /made\n"
    finally:
        engine.docker("rm", "exited")
