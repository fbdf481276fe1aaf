"""Security review of volumes: hostile names, copy-up from a hostile image (symlinks at
and under the mount path, hard links, device nodes, set-id files: what Docker does,
and nothing read or written outside the image and the volume), trees deeper than
Python's recursion limit and than PATH_MAX left by a container (removal, df, prune,
engine restart), and anonymous volumes removed while another container shares them."""

from __future__ import annotations

import concurrent.futures
import io
import json
import os
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbs-vol"), rootfs_template,
                        "--change", 'CMD ["sh"]') as daemon:
        yield daemon


@pytest.fixture(autouse=True)
def nothing_left(engine: Longboatd) -> Iterator[None]:
    yield
    engine.docker("rm", "-f", *engine.docker("ps", "-aq").stdout.split(), check=False)
    left = engine.docker("volume", "ls", "-q").stdout.split()
    if left:
        engine.docker("volume", "rm", "-f", *left, check=False)
    root = engine.data_root / "volumes"
    assert [p.name for p in root.iterdir()] == []
    with open("/proc/self/mountinfo") as f:
        assert str(engine.data_root) not in f.read()


def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _entry(name: str, kind: bytes = tarfile.REGTYPE, data: bytes | None = None,
           **attrs: object) -> tuple[tarfile.TarInfo, bytes | None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    if data is not None:
        info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _image(engine: Longboatd, name: str, entries: list[tuple[tarfile.TarInfo, bytes | None]],
           extra: str = "") -> None:
    context = _tar([_entry("Dockerfile", data=f"FROM bb:1\nADD p.tar /\n{extra}".encode()),
                    _entry("p.tar", data=_tar(entries))])
    env = {**os.environ, "DOCKER_HOST": engine.host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    done = subprocess.run(["docker", "build", "-q", "-t", name, "-"], input=context,
                          env=env, capture_output=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr.decode()


def run(engine: Longboatd, *args: str) -> str:
    return engine.docker("run", "--rm", "--network", "none", *args).stdout


@pytest.mark.parametrize("name", ["../lbs", "..", ".lbs", "/lbs", "lbs/x", "lbs\nx",
                                  "lbs x", "-lbs", "l", "lbs" + "x" * 300])
def test_hostile_volume_names_are_refused(engine: Longboatd, name: str) -> None:
    result = engine.docker("volume", "create", "--", name, check=False)
    assert result.returncode != 0
    assert "internal error" not in result.stderr
    assert "includes invalid characters" in result.stderr or "too short" in result.stderr \
        or "volume name is too long" in result.stderr, result.stderr
    assert not (engine.data_root / "lbs").exists()
    assert not (engine.data_root / "volumes" / ".lbs").exists()


def test_copy_up_of_a_symlinked_mount_path_stays_in_the_image(engine: Longboatd) -> None:
    """VOLUME at a path that is a symlink to / (absolute, and as ../../..): the copy
    comes from the image's root, never the host's."""
    marker = b"lbs: the image's own passwd\n"
    for target in ("/", "../../../.."):
        _image(engine, "lbs-vimg:1", [_entry("etc/passwd", data=marker),
                                      _entry("data", tarfile.SYMTYPE, linkname=target)],
               "VOLUME /data\n")
        try:
            engine.docker("create", "--name", "lbs-c", "lbs-vimg:1")
            volume = json.loads(engine.docker("inspect", "lbs-c").stdout)[0]["Mounts"][0]
            copied = Path(volume["Source"]) / "etc" / "passwd"
            assert copied.read_bytes() == marker
            engine.docker("rm", "-v", "lbs-c")
        finally:
            engine.docker("rmi", "lbs-vimg:1")


def test_copy_up_keeps_what_docker_keeps_and_follows_nothing(engine: Longboatd) -> None:
    _image(engine, "lbs-vimg:2", [
        _entry("data", tarfile.DIRTYPE),
        _entry("data/abs", tarfile.SYMTYPE, linkname="/etc/shadow"),
        _entry("data/up", tarfile.SYMTYPE, linkname="../../../../etc"),
        _entry("data/file", data=b"content\n"),
        _entry("data/hard", tarfile.LNKTYPE, linkname="data/file"),
        _entry("data/sub", tarfile.DIRTYPE),
        _entry("data/sub/hard2", tarfile.LNKTYPE, linkname="data/file"),
        _entry("data/suid", data=b"#!/bin/sh\n", mode=0o4755),
        _entry("data/null", tarfile.CHRTYPE, devmajor=1, devminor=3),
        _entry("data/fifo", tarfile.FIFOTYPE),
    ], "VOLUME /data\n")
    try:
        engine.docker("create", "--name", "lbs-c", "lbs-vimg:2")
        source = Path(json.loads(engine.docker("inspect", "lbs-c").stdout)[0]["Mounts"][0]
                      ["Source"])
        assert os.readlink(source / "abs") == "/etc/shadow"       # copied, not followed
        assert os.readlink(source / "up") == "../../../../etc"
        file_st = os.stat(source / "file")
        assert file_st.st_nlink == 3
        assert os.stat(source / "hard").st_ino == file_st.st_ino
        assert os.stat(source / "sub" / "hard2").st_ino == file_st.st_ino
        assert os.stat(source / "suid").st_mode & 0o7777 == 0o4755
        assert os.stat(source / "null", follow_symlinks=False).st_rdev == os.makedev(1, 3)
        # the volume is on the data root: nothing of it is a link to a host file
        assert os.stat(source / "file").st_dev == os.stat(engine.data_root).st_dev
        assert not any(os.stat(source / n).st_ino == os.stat("/etc/shadow").st_ino
                       for n in ("file", "hard"))
        engine.docker("rm", "-v", "lbs-c")
    finally:
        engine.docker("rmi", "lbs-vimg:2")


# two halves, the second moved below the first: the whole is deeper than any path the
# shell could name (PATH_MAX), each step is not
DEEP = ("p=d; i=1; while [ $i -lt {half} ]; do p=$p/d; i=$((i+1)); done; "
        "mkdir -p A/$p B/$p && echo leaf > A/$p/leaf && mv A B/$p/ && ln -s / B/root-link")


@pytest.mark.parametrize("depth", [1200, 2200])      # past the recursion limit; PATH_MAX
def test_deep_trees_a_container_leaves_are_removed(engine: Longboatd, depth: int) -> None:
    engine.docker("volume", "create", "lbs-deep")
    run(engine, "-v", "lbs-deep:/v", "-w", "/v", "bb:1", "sh", "-c", DEEP.format(half=depth // 2))
    # the container's own root filesystem too (the snapshot's removal)
    engine.docker("run", "--name", "lbs-deep-c", "--network", "none", "-w", "/tmp", "bb:1",
                  "sh", "-c", DEEP.format(half=depth // 2))
    df = engine.docker("system", "df", "-v")
    assert "lbs-deep" in df.stdout
    # committed too, or refused clearly past what a layer holds (`docker diff` of it is
    # still a 500: engine/filesystem.py's walk recurses, see docs/security.md)
    commit = engine.docker("commit", "lbs-deep-c", "lbs-deep-img:1", check=False)
    if depth < 2000:
        assert commit.returncode == 0, commit.stderr
        engine.docker("rmi", "lbs-deep-img:1")
    else:
        assert "too deep a path for a layer" in commit.stderr, commit.stderr
    engine.docker("rm", "lbs-deep-c")
    engine.docker("volume", "rm", "lbs-deep")
    assert not list((engine.data_root / "volumes").iterdir())
    assert os.path.exists("/etc/passwd")      # the root-link was not followed


def test_a_removal_cut_short_is_finished_at_the_next_start(engine: Longboatd) -> None:
    """A ``.removing-`` directory (a crash mid-removal) holding a tree deeper than the
    recursion limit: the engine still starts, and removes it."""
    doomed = engine.data_root / "volumes" / ".removing-lbs-crashed"
    doomed.mkdir()
    fd = os.open(doomed, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1500):
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
    finally:
        os.close(fd)
    engine.stop(monitor=False)
    engine.start()
    assert not doomed.exists()
    assert engine.docker("volume", "ls", "-q").stdout == ""


def test_anonymous_volume_shared_by_volumes_from_races(engine: Longboatd) -> None:
    for _ in range(3):
        engine.docker("create", "--name", "lbs-a", "-v", "/data", "bb:1", "true")
        engine.docker("create", "--name", "lbs-b", "--volumes-from", "lbs-a", "bb:1", "true")
        name = json.loads(engine.docker("inspect", "lbs-a").stdout)[0]["Mounts"][0]["Name"]
        with concurrent.futures.ThreadPoolExecutor(2) as pool:
            results = list(pool.map(lambda c: engine.docker("rm", "-v", c, check=False),
                                    ["lbs-a", "lbs-b"]))
        assert all(r.returncode == 0 for r in results), [r.stderr for r in results]
        # whoever went last took the volume with it (or it stays, never half-removed)
        left = engine.docker("volume", "ls", "-q").stdout.split()
        assert left in ([], [name])
        if left:
            engine.docker("volume", "rm", name)
        assert [p.name for p in (engine.data_root / "volumes").iterdir()] == []


def test_the_data_root_and_socket_are_private(engine: Longboatd) -> None:
    engine.docker("volume", "create", "lbs-private")
    for path in (engine.data_root, engine.data_root / "volumes",
                 engine.data_root / "volumes" / "lbs-private", engine.data_root / "tmp"):
        st = path.stat()
        assert st.st_uid == 0 and st.st_mode & 0o077 == 0, (path, oct(st.st_mode))
    sock = os.stat(engine.socket)
    assert sock.st_uid == 0 and sock.st_mode & 0o007 == 0, oct(sock.st_mode)
    engine.docker("volume", "rm", "lbs-private")


@pytest.mark.parametrize("depth", [400, 1500])
def test_copy_up_of_a_deep_tree(engine: Longboatd, depth: int) -> None:
    """A VOLUME path holding a deep tree (past Python's recursion limit): copied, as
    Docker copies any depth; nothing is left afterwards."""
    deep = "data/" + "d/" * depth
    _image(engine, "lbs-vdeep:1", [_entry(deep + "leaf", data=b"leaf\n")], "VOLUME /data\n")
    try:
        result = engine.docker("create", "--name", "lbs-c", "lbs-vdeep:1", check=False)
        assert result.returncode == 0, result.stderr
        if result.returncode == 0:
            source = Path(json.loads(engine.docker("inspect", "lbs-c").stdout)[0]["Mounts"]
                          [0]["Source"])
            fd = os.open(source, os.O_RDONLY | os.O_DIRECTORY)
            try:
                leaf = os.open("d/" * depth + "leaf", os.O_RDONLY, dir_fd=fd)
                assert os.read(leaf, 10) == b"leaf\n"
                os.close(leaf)
            finally:
                os.close(fd)
            engine.docker("rm", "-v", "lbs-c")
        else:
            assert "nested directories" in result.stderr, result.stderr
            assert engine.docker("ps", "-aq").stdout == ""
    finally:
        engine.docker("rmi", "lbs-vdeep:1")
