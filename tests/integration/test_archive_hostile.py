"""Hostile and broken image archives: each is refused with a clear error and leaves the
store exactly as it was (index.json's bytes, the set of blobs, an empty ingest/); a load
interrupted by an error or a SIGKILL leaves no image visible and a rerun completes."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import subprocess
import sys
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support import image_archives as ia

from longboat.errors import InvalidArgument
from longboat.image import archive
from longboat.image.store import ImageStore

pytestmark = pytest.mark.integration

Members = list[ia.Member]


@pytest.fixture
def store(tmp_path: Path, rootfs_template: Path) -> ImageStore:
    """A store that already holds an image (whose blobs a bad load must not touch)."""
    s = ImageStore(str(tmp_path / "store"))
    ia.busybox_image(s, rootfs_template, tmp_path / "present", ["present:1"])
    return s


@pytest.fixture
def good(tmp_path: Path, rootfs_template: Path) -> tuple[Members, ImageStore]:
    """Our save of an image the store does not have, as a list of members to tamper with."""
    src = ImageStore(str(tmp_path / "src"))
    ia.busybox_image(src, rootfs_template, tmp_path / "new", ["fresh:1"], hello="fresh\n")
    out = io.BytesIO()
    archive.save(src, ["fresh:1"], out)
    return split(out.getvalue()), src


def split(data: bytes) -> Members:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return [(m, tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()]


def find(members: Members, name: str) -> int:
    return next(i for i, (m, _) in enumerate(members) if m.name == name)


def refused(store: ImageStore, data: bytes, match: str) -> None:
    before = ia.state(store)
    with pytest.raises(InvalidArgument, match=match):
        archive.load(store, io.BytesIO(data))
    assert ia.state(store) == before
    assert [i.references for i in store.images()] == [["docker.io/library/present:1"]]


def docker_archive(store: ImageStore, edit: Callable[[Members], None]) -> bytes:
    """A docker save (20.10) archive of the store's image, edited."""
    image = store.get("present:1")
    tars = [store.content.read(d["digest"], 1 << 30) for d in image.layers]
    tars[0] = gzip.decompress(tars[0])
    return ia.docker_save_archive([(store.content.read(image.id), tars, ["other:1"])], edit)


def test_good_archive_loads(store: ImageStore, good: tuple[Members, ImageStore]) -> None:
    """The baseline the hostile variants are made from."""
    assert archive.load(store, io.BytesIO(ia.tar_of(good[0]))) == ["fresh:1"]


@pytest.mark.parametrize(("name", "match"), [
    ("../evil", "traversal"),
    ("blobs/../../evil", "traversal"),
    ("/etc/evil", "absolute"),
])
def test_bad_member_names(store: ImageStore, good: tuple[Members, ImageStore], name: str,
                          match: str) -> None:
    members = good[0]
    members.insert(0, ia.member(name, b"pwned"))
    refused(store, ia.tar_of(members), match)
    assert not Path("/etc/evil").exists()


@pytest.mark.parametrize(("name", "target"), [
    ("manifest.json", "/etc/passwd"),
    ("evil", "../../../../etc/passwd"),
    ("0123/layer.tar", "/etc/shadow"),
    ("0123/layer.tar", "../../outside/layer.tar"),
    ("0123/layer.tar", "../nothing/layer.tar"),
])
def test_symlink_members(store: ImageStore, good: tuple[Members, ImageStore], name: str,
                         target: str) -> None:
    members = good[0]
    if name == "manifest.json":
        del members[find(members, "manifest.json")]
    members.insert(0, ia.member(name, kind=tarfile.SYMTYPE, linkname=target))
    refused(store, ia.tar_of(members), "symlink")


@pytest.mark.parametrize("target", ["../../etc/passwd", "/etc/passwd", "index.json"])
def test_hardlink_members(store: ImageStore, good: tuple[Members, ImageStore],
                          target: str) -> None:
    members = good[0]
    members.insert(0, ia.member("link", kind=tarfile.LNKTYPE, linkname=target))
    refused(store, ia.tar_of(members), "hardlink")


@pytest.mark.parametrize("kind", [tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE])
def test_device_members(store: ImageStore, good: tuple[Members, ImageStore],
                        kind: bytes) -> None:
    members = good[0]
    members.insert(0, ia.member("dev", kind=kind))
    refused(store, ia.tar_of(members), "device, fifo")


def test_duplicate_member(store: ImageStore, good: tuple[Members, ImageStore]) -> None:
    members = good[0]
    members.append(ia.member("index.json", b'{"manifests": []}'))
    refused(store, ia.tar_of(members), "appears twice")


def test_docker_manifest_points_at_missing_layer(store: ImageStore) -> None:
    def edit(members: Members) -> None:
        i = next(i for i, (m, _) in enumerate(members) if m.name.endswith("/layer.tar"))
        del members[i]

    refused(store, docker_archive(store, edit), "has no file .*layer.tar")


def test_oci_manifest_points_at_missing_blob(store: ImageStore,
                                             good: tuple[Members, ImageStore]) -> None:
    members, src = good
    image = src.get("fresh:1")
    del members[find(members, f"blobs/sha256/{image.layers[1]['digest'][7:]}")]
    refused(store, ia.tar_of(members), "has no file 'blobs/sha256/")
    del members[find(members, f"blobs/sha256/{image.id[7:]}")]
    refused(store, ia.tar_of(members), "missing from the archive")


def test_layer_not_matching_its_digest(store: ImageStore,
                                       good: tuple[Members, ImageStore]) -> None:
    """The second layer is tampered with (same size): the first, already written, is
    removed again."""
    members, src = good
    image = src.get("fresh:1")
    i = find(members, f"blobs/sha256/{image.layers[1]['digest'][7:]}")
    info, data = members[i]
    members[i] = (info, data.replace(b"fresh\n", b"evil!\n"))
    refused(store, ia.tar_of(members), "does not match its digest")


def test_config_not_matching_digest(store: ImageStore,
                                    good: tuple[Members, ImageStore]) -> None:
    members, src = good
    i = find(members, f"blobs/sha256/{src.get('fresh:1').id[7:]}")
    info, data = members[i]
    members[i] = (info, data.replace(b'"amd64"', b'"arm64"'))
    refused(store, ia.tar_of(members), "does not match its digest")


def test_config_diff_ids_not_matching_layers(store: ImageStore) -> None:
    def edit(members: Members) -> None:
        i = next(i for i, (m, _) in enumerate(members) if m.name.endswith(".json")
                 and len(m.name) == 69)
        config = json.loads(members[i][1])
        config["rootfs"]["diff_ids"][1] = "sha256:" + "0" * 64
        data = json.dumps(config).encode()
        members[i] = ia.member(f"{hashlib.sha256(data).hexdigest()}.json", data)
        j = next(i for i, (m, _) in enumerate(members) if m.name == "manifest.json")
        manifest = json.loads(members[j][1])
        manifest[0]["Config"] = members[i][0].name
        members[j] = ia.member("manifest.json", json.dumps(manifest).encode())

    refused(store, docker_archive(store, edit), "diff ID")


def test_config_with_fewer_diff_ids_than_layers(store: ImageStore) -> None:
    def edit(members: Members) -> None:
        j = next(i for i, (m, _) in enumerate(members) if m.name == "manifest.json")
        manifest = json.loads(members[j][1])
        manifest[0]["Layers"].append(manifest[0]["Layers"][0])
        members[j] = ia.member("manifest.json", json.dumps(manifest).encode())

    refused(store, docker_archive(store, edit), "lists 2 layers")


def test_docker_config_named_by_wrong_digest(store: ImageStore) -> None:
    def edit(members: Members) -> None:
        i = next(i for i, (m, _) in enumerate(members) if m.name.endswith(".json")
                 and len(m.name) == 69)
        members[i] = ia.member(members[i][0].name, members[i][1] + b" ")

    refused(store, docker_archive(store, edit), "does not match its digest")


@pytest.mark.parametrize("cut", [0.3, 0.6, 0.95, -1024, -512, -1])
def test_truncated_archive(store: ImageStore, good: tuple[Members, ImageStore],
                           cut: float) -> None:
    data = ia.tar_of(good[0])
    end = len(data) - 10240  # the record padding after the end marker
    data = data.rstrip(b"\0")
    at = int(len(data) * cut) if cut > 0 else len(data) + int(cut) + 1024
    refused(store, data[:max(min(at, end), 1)], "truncated|not a tar|has no file|no end")


def test_truncated_compressed_archive(store: ImageStore,
                                      good: tuple[Members, ImageStore]) -> None:
    data = gzip.compress(ia.tar_of(good[0]))
    refused(store, data[:len(data) // 2], "truncated")


def header(name: str, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = size
    return info.tobuf(tarfile.PAX_FORMAT)


def test_huge_declared_size(store: ImageStore, good: tuple[Members, ImageStore]) -> None:
    # a header that declares 1 TiB, followed by a whole good archive
    refused(store, header("blobs/sha256/" + "a" * 64, 1 << 40) + ia.tar_of(good[0]),
            "more than the limit")
    # within the limit, but the file ends long before
    refused(store, header("blobs/sha256/" + "a" * 64, 1 << 30) + ia.tar_of(good[0]),
            "declares")


@pytest.mark.parametrize(("content", "match"), [
    (b"{not json", "not valid JSON"),
    (b'{"Config": "x"}', "non-empty JSON list"),
    (b"[]", "non-empty JSON list"),
    (b'[{"Config": 1, "Layers": []}]', "Config path"),
    (b'[{"Config": "x.json", "Layers": "y"}]', "Config path"),
    (b'[{"Config": "../x.json", "Layers": []}]', "traversal"),
    (b'[{"Config": "nothere.json", "Layers": []}]', "has no file"),
])
def test_bad_manifest_json(store: ImageStore, content: bytes, match: str) -> None:
    refused(store, ia.tar_of([ia.member("manifest.json", content)]), match)


def test_bad_index_json(store: ImageStore, good: tuple[Members, ImageStore]) -> None:
    members = good[0]
    i = find(members, "index.json")
    for content, match in [(b"[1]", "image index"), (b"{]", "not valid JSON"),
                           (b'{"manifests": [{"digest": "sha256:zz", "size": 1}]}',
                            "invalid digest")]:
        members[i] = ia.member("index.json", content)
        refused(store, ia.tar_of(members), match)


def test_huge_zero_filled_manifest(store: ImageStore, tmp_path: Path) -> None:
    path = tmp_path / "zeros.tar"
    info = tarfile.TarInfo("manifest.json")
    info.size = 100 << 20
    with open(path, "wb") as f:
        f.write(info.tobuf(tarfile.USTAR_FORMAT))
        f.truncate(512 + (100 << 20) + 1024)
    before = ia.state(store)
    with open(path, "rb") as f, pytest.raises(InvalidArgument, match="more than the limit"):
        archive.load(store, f)  # refused from its header, without reading 100 MB
    assert ia.state(store) == before


@pytest.mark.parametrize("data", [b"", b"hello, not a tar" * 100, bytes(4096)])
def test_not_a_tar(store: ImageStore, data: bytes) -> None:
    refused(store, data, "not a tar|truncated|not an image archive")


def test_no_manifest_at_all(store: ImageStore) -> None:
    refused(store, ia.tar_of([ia.member("hello", b"x")]), "not an image archive")


# --------------------------------------------------------------------------------------
# interrupted loads


def test_error_in_the_middle_leaves_nothing_and_rerun_completes(
        store: ImageStore, good: tuple[Members, ImageStore]) -> None:
    data = ia.tar_of(good[0])
    before = ia.state(store)
    layers: list[str] = []

    def crash(event: dict[str, Any]) -> None:
        if event.get("status") == "Loading layer" and event["id"] not in layers:
            layers.append(event["id"])
            if len(layers) == 2:  # the first layer is written, the second begins
                raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        archive.load(store, io.BytesIO(data), crash)
    assert ia.state(store) == before
    assert not store.exists("fresh:1")
    assert archive.load(store, io.BytesIO(data)) == ["fresh:1"]
    assert store.get("fresh:1").id == good[1].get("fresh:1").id


_KILLER = """
import os, signal, sys
from longboat.image import archive
from longboat.image.store import ImageStore
seen = []
def progress(event):
    if event.get("status") == "Loading layer" and event["id"] not in seen:
        seen.append(event["id"])
        if len(seen) == 2:
            os.kill(os.getpid(), signal.SIGKILL)
with open(sys.argv[2], "rb") as f:
    archive.load(ImageStore(sys.argv[1]), f, progress)
"""


def test_sigkill_in_the_middle_leaves_no_image_and_rerun_completes(
        store: ImageStore, good: tuple[Members, ImageStore], tmp_path: Path) -> None:
    path = tmp_path / "fresh.tar"
    path.write_bytes(ia.tar_of(good[0]))
    index_before = ia.state(store)[0]
    result = subprocess.run([sys.executable, "-c", _KILLER, store.root, str(path)],
                            capture_output=True, timeout=60)
    assert result.returncode == -9, result.stderr.decode()
    # what the killed load wrote is not an image: index.json is untouched
    assert ia.state(store)[0] == index_before
    assert not store.exists("fresh:1")
    with open(path, "rb") as f:
        assert archive.load(store, f) == ["fresh:1"]
    assert store.get("fresh:1").id == good[1].get("fresh:1").id
    store.gc()  # and garbage of the killed run is collectable
    assert os.listdir(Path(store.root, "ingest")) == []
