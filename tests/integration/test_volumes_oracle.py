"""Volumes checked against a real Docker 20.10 (Debian's docker.io) given the same
flags: the ``Mounts`` inspect shows (every mount kind: named, anonymous from VOLUME and
-v, binds with modes, --mount volume/tmpfs/bind, --volumes-from), a volume's inspect
shape, and copy-up of image content with its owners and modes."""

from __future__ import annotations

import json
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.dockerd import Dockerd, running
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
            ) -> Iterator[Dockerd]:
    with running(tmp_path_factory.mktemp("dockerd")) as daemon:
        image = tmp_path_factory.mktemp("image") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        daemon.docker("import", str(image), "bb:0")
        _with_volume(daemon.docker)
        yield daemon


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("longboatd-volumes-oracle"),
                        rootfs_template, name="bb:0") as daemon:
        _with_volume(daemon.docker)
        yield daemon


def _with_volume(docker: Any) -> None:
    """bb:1: bb:0 with content at /data and VOLUME /data, made the same way on both."""
    docker("run", "--network", "none", "--name", "vo-maker", "bb:0", "sh", "-c",
           "mkdir /data && echo img > /data/f && chown 7:8 /data/f && chmod 604 /data/f")
    docker("commit", "-c", "VOLUME /data", "vo-maker", "bb:1")
    docker("rm", "vo-maker")


def _shape(mounts: list[dict[str, Any]], data_root: str, host: str) -> list[dict[str, Any]]:
    """Mounts with what differs by nature (data roots, random names) normalised."""
    out = []
    for m in sorted(mounts, key=lambda m: m["Destination"]):
        m = dict(m)
        m["Source"] = m["Source"].replace(data_root, "<root>").replace(host, "<host>")
        if m.get("Name"):
            m["Source"] = m["Source"].replace(m["Name"], "<name>")
        if len(m.get("Name", "")) == 64:
            m["Name"] = "<anonymous>"
        out.append(m)
    return out


def test_inspect_mounts_match_docker(dockerd: Dockerd, engine: Longboatd,
                                     tmp_path: Path) -> None:
    host = tmp_path / "host"
    host.mkdir()
    flags = ["--network", "none", "-v", "vo-named:/named", "-v", "vo-ro:/ro:ro,nocopy",
             "-v", "/anon", "-v", f"{host}:/bind", "-v", f"{host}:/bindro:ro,rslave",
             "--mount", "source=vo-m,target=/m", "--mount", "type=volume,target=/manon",
             "--mount", f"type=bind,source={host},target=/mb,readonly"]
    results = []
    for docker in (dockerd.docker, engine.docker):
        def run(*args: str, docker: Any = docker) -> str:
            out = docker(*args).stdout
            return out.decode() if isinstance(out, bytes) else str(out)

        run("create", "--name", "vo-src", *flags, "bb:1", "true")
        run("create", "--name", "vo-reader", "--network", "none", "--volumes-from",
            "vo-src:ro", "bb:1", "true")
        # (moby 20.10 cannot take --volumes-from a container with a tmpfs --mount)
        run("create", "--name", "vo-tmpfs", "--network", "none", "--mount",
            "type=tmpfs,target=/t,tmpfs-size=1m", "--tmpfs", "/run2", "bb:1", "true")
        found = [json.loads(run("inspect", "-f", "{{json .Mounts}}", name))
                 for name in ("vo-src", "vo-reader", "vo-tmpfs")]
        volume = json.loads(run("volume", "inspect", "vo-named"))[0]
        anonymous = next(m for m in found[0] if m["Destination"] == "/data")
        copied = json.loads(run("run", "--rm", "--network", "none", "-v",
                                f"{anonymous['Name']}:/v", "bb:1", "sh", "-c",
                                'echo "[\\"$(cat /v/f)\\", \\"$(stat -c "%u %g %a" /v/f)\\"]"'))
        assert copied == ["img", "7 8 604"]
        run("rm", "-v", "vo-reader", "vo-src", "vo-tmpfs")
        left = sorted(run("volume", "ls", "-q").split())
        run("volume", "rm", *left)
        results.append((found, volume, left))
    (theirs, their_volume, their_left), (ours, our_volume, our_left) = results
    their_root = str(Path(their_volume["Mountpoint"]).parents[2])
    our_root = str(engine.data_root)
    for a, b in zip(ours, theirs, strict=True):
        assert _shape(a, our_root, str(host)) == _shape(b, their_root, str(host))
    assert sorted(our_volume) == sorted(their_volume)
    assert (our_volume["Labels"], our_volume["Options"], our_volume["Scope"]) == \
        (their_volume["Labels"], their_volume["Options"], their_volume["Scope"])
    assert our_left == their_left == ["vo-m", "vo-named", "vo-ro"]
