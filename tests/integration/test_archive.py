"""Image archives against our own store and real tools: save -> load round trips, a
hand-made Docker 20.10 ``docker save`` archive, OCI archives with nested indexes, what we
write validated against the OCI image schemas, and (the oracle) a real Docker 20.10
engine: our save -> ``docker load`` -> ``docker run``; ``docker save`` -> our load."""

from __future__ import annotations

import gzip
import io
import json
import re
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import image_archives as ia
from tests.support.dockerd import Dockerd, running

from longboat.image import archive
from longboat.image.store import OCI_INDEX, OCI_MANIFEST, ImageStore

pytestmark = pytest.mark.integration


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "store"))


def saved(store: ImageStore, names: list[str]) -> bytes:
    out = io.BytesIO()
    archive.save(store, names, out)
    return out.getvalue()


def members(data: bytes) -> dict[str, bytes]:
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        return {m.name: (tar.extractfile(m).read() if m.isreg() else b"")  # type: ignore[union-attr]
                for m in tar.getmembers()}


def test_save_writes_docker_archive_and_oci_layout(store: ImageStore, rootfs_template: Path,
                                                   tmp_path: Path) -> None:
    image, _ = ia.busybox_image(store, rootfs_template, tmp_path, ["busybox:test", "bb:1"])
    files = members(saved(store, ["busybox:test"]))
    manifest = json.loads(files["manifest.json"])
    assert manifest == [{"Config": f"blobs/sha256/{image.id[7:]}", "RepoTags": ["busybox:test"],
                         "Layers": [f"blobs/sha256/{d['digest'][7:]}" for d in image.layers]}]
    assert json.loads(files["repositories"]) == {
        "busybox": {"test": image.layers[-1]["digest"][7:]}}
    assert json.loads(files["oci-layout"]) == {"imageLayoutVersion": "1.0.0"}
    index = json.loads(files["index.json"])
    assert index["manifests"] == [{
        "mediaType": image.manifest["mediaType"], "digest": image.manifest_digest,
        "size": store.content.size(image.manifest_digest),
        "annotations": {"io.containerd.image.name": "docker.io/library/busybox:test",
                        "org.opencontainers.image.ref.name": "test"}}]
    for digest in image.blobs():
        assert ia.sha(files[f"blobs/sha256/{digest[7:]}"]) == digest[7:]
    # layers as stored: the base stays gzip
    assert files[f"blobs/sha256/{image.layers[0]['digest'][7:]}"][:2] == b"\x1f\x8b"
    # the same images give the same bytes
    assert saved(store, ["busybox:test"]) == saved(store, ["busybox:test"])
    # by ID: no names; by repository: every tag of it
    assert json.loads(members(saved(store, [image.id]))["manifest.json"])[0]["RepoTags"] == []
    assert json.loads(members(saved(store, ["bb"]))["manifest.json"])[0]["RepoTags"] == ["bb:1"]


def test_written_documents_match_oci_schemas(store: ImageStore, rootfs_template: Path,
                                             tmp_path: Path) -> None:
    validators = {n: ia.schema_validator(n) for n in (
        "image-index-schema.json", "image-manifest-schema.json", "config-schema.json",
        "image-layout-schema.json")}
    if None in validators.values():
        pytest.skip(f"OCI image schemas not found at {ia.SCHEMAS}")
    image, _ = ia.busybox_image(store, rootfs_template, tmp_path, ["busybox:test"])
    imported = archive.import_rootfs(store, io.BytesIO(ia.tar_of([ia.member("f", b"x")])),
                                     ["imp:1"], {"Cmd": ["/bin/sh"], "WorkingDir": "/"})
    files = members(saved(store, ["busybox:test", "imp:1"]))
    validators["image-index-schema.json"].validate(json.loads(files["index.json"]))
    validators["image-layout-schema.json"].validate(json.loads(files["oci-layout"]))
    for img in (image, imported):
        manifest = json.loads(files[f"blobs/sha256/{img.manifest_digest[7:]}"])
        validators["image-manifest-schema.json"].validate(manifest)
        validators["config-schema.json"].validate(json.loads(files[f"blobs/sha256/{img.id[7:]}"]))
    # and the validators do fail on a bad document
    with pytest.raises(Exception, match="required"):
        validators["image-manifest-schema.json"].validate({"schemaVersion": 2})
    # our store's own index.json too
    validators["image-index-schema.json"].validate(
        json.loads(Path(store.root, "index.json").read_text()))


def test_round_trip_into_another_store(store: ImageStore, rootfs_template: Path,
                                       tmp_path: Path) -> None:
    image, _ = ia.busybox_image(store, rootfs_template, tmp_path, ["busybox:test"])
    untagged, _ = ia.busybox_image(store, rootfs_template, tmp_path / "u", [], hello="other\n")
    data = saved(store, ["busybox:test", untagged.id])
    other = ImageStore(str(tmp_path / "other"))
    events: list[dict[str, Any]] = []
    loaded = archive.load(other, io.BytesIO(data), events.append)
    assert loaded == ["busybox:test", untagged.id]
    got = other.get("busybox:test")
    assert (got.id, got.manifest_digest, got.manifest) == (
        image.id, image.manifest_digest, image.manifest)
    assert other.get(untagged.id).references == []
    assert {"stream": "Loaded image: busybox:test\n"} in events
    assert any(e.get("status") == "Loading layer" for e in events)
    # loading again changes nothing and gives the same answer; from a pipe-like stream too
    before = ia.state(other)
    assert archive.load(other, NonSeekable(data)) == ["busybox:test", untagged.id]
    assert ia.state(other) == before
    # a gzip-compressed archive (docker load takes those)
    third = ImageStore(str(tmp_path / "third"))
    assert archive.load(third, io.BytesIO(gzip.compress(data))) == ["busybox:test",
                                                                    untagged.id]
    assert third.get("busybox:test").id == image.id


class NonSeekable(io.RawIOBase):
    def __init__(self, data: bytes) -> None:
        self.buf = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return False

    def readinto(self, b: Any) -> int:
        data = self.buf.read(min(len(b), 65536))
        b[:len(data)] = data
        return len(data)


def test_load_hand_made_docker_save_archive(store: ImageStore, rootfs_template: Path,
                                            tmp_path: Path) -> None:
    src = ImageStore(str(tmp_path / "src"))
    image, tars = ia.busybox_image(src, rootfs_template, tmp_path, ["busybox:test"])
    config = src.content.read(image.id)
    # an image whose same layer appears twice: docker save links the second to the first
    twice_cfg = json.loads(config)
    twice_cfg["rootfs"]["diff_ids"] = [*twice_cfg["rootfs"]["diff_ids"],
                                       twice_cfg["rootfs"]["diff_ids"][1]]
    twice_cfg["history"].append({"created": ia.CREATED, "created_by": "again"})
    twice = json.dumps(twice_cfg).encode()
    data = ia.docker_save_archive([(config, tars, ["busybox:test"]),
                                   (twice, [*tars, tars[1]], [])])
    assert b"../" in data  # the symlink is there
    loaded = archive.load(store, io.BytesIO(data))
    got = store.get("busybox:test")
    assert got.id == image.id  # same config bytes, same ID
    assert loaded == ["busybox:test", "sha256:" + ia.sha(twice)]
    assert [d["mediaType"] for d in got.layers] == [
        "application/vnd.oci.image.layer.v1.tar"] * 2
    assert [d["digest"] for d in got.layers] == image.diff_ids  # plain tars: digest == diff ID
    assert len(store.get(loaded[1]).layers) == 3
    for digest, tar in zip(image.diff_ids, tars, strict=True):
        assert store.content.read(digest, 1 << 30) == tar


def test_load_oci_archive_with_nested_index(store: ImageStore, rootfs_template: Path,
                                            tmp_path: Path) -> None:
    """skopeo's oci-archive: index.json -> an image index (arm64, amd64) -> manifest;
    ref.name is ``name:tag``."""
    src = ImageStore(str(tmp_path / "src"))
    image, _ = ia.busybox_image(src, rootfs_template, tmp_path, ["busybox:test"])
    manifest = src.content.read(image.manifest_digest)
    arm = json.dumps({"schemaVersion": 2, "mediaType": OCI_MANIFEST, "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json", "size": 2,
        "digest": "sha256:" + "1" * 64}, "layers": []}).encode()
    nested = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [
        {"mediaType": OCI_MANIFEST, "digest": "sha256:" + ia.sha(arm), "size": len(arm),
         "platform": {"architecture": "arm64", "os": "linux"}},
        {"mediaType": image.manifest["mediaType"], "digest": image.manifest_digest,
         "size": len(manifest), "platform": {"architecture": "amd64", "os": "linux"}},
    ]}).encode()
    index = {"schemaVersion": 2, "manifests": [
        {"mediaType": OCI_INDEX, "digest": "sha256:" + ia.sha(nested), "size": len(nested),
         "annotations": {"org.opencontainers.image.ref.name": "localhost:5000/bb:oci"}}]}
    blobs = {**{d: src.content.read(d, 1 << 30) for d in image.blobs()},
             "sha256:" + ia.sha(nested): nested, "sha256:" + ia.sha(arm): arm}
    entries = [ia.member("oci-layout", b'{"imageLayoutVersion": "1.0.0"}'),
               ia.member("index.json", json.dumps(index).encode()),
               ia.member("blobs", kind=tarfile.DIRTYPE),
               ia.member("blobs/sha256", kind=tarfile.DIRTYPE)]
    entries += [ia.member(f"blobs/sha256/{d[7:]}", b) for d, b in blobs.items()]
    assert archive.load(store, io.BytesIO(ia.tar_of(entries))) == ["localhost:5000/bb:oci"]
    got = store.get("localhost:5000/bb:oci")
    assert (got.id, got.manifest_digest) == (image.id, image.manifest_digest)
    # a bare ref.name is a tag only: the image loads without a name
    index["manifests"][0]["annotations"] = {"org.opencontainers.image.ref.name": "latest"}
    entries[1] = ia.member("index.json", json.dumps(index).encode())
    other = ImageStore(str(tmp_path / "other"))
    assert archive.load(other, io.BytesIO(ia.tar_of(entries))) == [image.id]


# --------------------------------------------------------------------------------------
# the oracle: a real Docker 20.10 engine in its own network and mount namespaces


@pytest.fixture(scope="module")
def dockerd(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Dockerd]:
    with running(tmp_path_factory.mktemp("dockerd")) as daemon:
        yield daemon


def test_docker_loads_and_runs_our_save(dockerd: Dockerd, store: ImageStore,
                                        rootfs_template: Path, tmp_path: Path) -> None:
    image, _ = ia.busybox_image(store, rootfs_template, tmp_path, ["longboat-bb:save"])
    out = tmp_path / "ours.tar"
    with open(out, "wb") as f:
        archive.save(store, ["longboat-bb:save"], f)
    result = dockerd.docker("load", "-i", str(out))
    assert b"Loaded image: longboat-bb:save" in result.stdout
    inspect = json.loads(dockerd.docker("image", "inspect", "longboat-bb:save").stdout)
    assert inspect[0]["Id"] == image.id  # gzip base layer and all: same config, same ID
    ran = dockerd.docker("run", "--rm", "--network", "none", "longboat-bb:save",
                         "/bin/sh", "-c", "cat /etc/hostname; cat /hello")
    hostname, hello = ran.stdout.decode().splitlines()
    assert re.fullmatch(r"[0-9a-f]{12}", hostname)  # docker's, over the image's "busybox"
    assert hello == "hello from layer 2"


def test_our_load_takes_docker_save(dockerd: Dockerd, store: ImageStore,
                                    rootfs_template: Path, tmp_path: Path) -> None:
    src = ImageStore(str(tmp_path / "src"))
    image, tars = ia.busybox_image(src, rootfs_template, tmp_path, ["longboat-bb:back"])
    ours = tmp_path / "ours.tar"
    with open(ours, "wb") as f:
        archive.save(src, ["longboat-bb:back"], f)
    dockerd.docker("load", "-i", str(ours))
    # docker build adds a layer and an empty-layer entry: history to compare
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    (ctx / "Dockerfile").write_text("FROM longboat-bb:back\nRUN echo built > /built\n"
                                    "ENV A=b\n")
    dockerd.docker("build", "--network", "none", "-q", "-t", "longboat-bb:built", str(ctx),
                   env={**dockerd.env, "DOCKER_BUILDKIT": "0"}, timeout=120)
    theirs = tmp_path / "theirs.tar"
    dockerd.docker("save", "-o", str(theirs), "longboat-bb:back", "longboat-bb:built")
    with tarfile.open(theirs) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "index.json" not in names  # the 20.10 format
    assert any(n.endswith("/layer.tar") for n in names)
    with open(theirs, "rb") as f:
        loaded = archive.load(store, f)
    assert sorted(loaded) == ["longboat-bb:back", "longboat-bb:built"]
    back = store.get("longboat-bb:back")
    assert back.id == image.id and back.diff_ids == image.diff_ids
    for digest, original in zip(back.diff_ids, tars, strict=True):
        assert ia.layer_listing(store.content.read(digest, 1 << 30)) == \
            ia.layer_listing(original)
    built = store.get("longboat-bb:built")
    assert built.diff_ids[:2] == image.diff_ids and len(built.diff_ids) == 3
    top = ia.layer_listing(store.content.read(built.layers[-1]["digest"], 1 << 30))
    assert [e[0] for e in top if e[1] == ord(tarfile.REGTYPE)] == ["built"]
    # history as Docker's API answers it (Size: docker counts the unpacked files)
    api = json.loads(subprocess.run(
        ["curl", "-s", "--unix-socket", str(dockerd.sock),
         "http://localhost/v1.41/images/longboat-bb:built/history"],
        capture_output=True, check=True).stdout)
    ours_h = archive.history(built)
    assert len(ours_h) == len(api) == 5
    assert ours_h[0]["Id"] == api[0]["Id"] == built.id
    assert ours_h[0]["Tags"] == api[0]["Tags"] == ["longboat-bb:built"]
    # docker still has the build's intermediate images and knows their IDs and tags
    # (parents); we keep no parent chain, so older entries are "<missing>"
    assert all(e["Id"] == "<missing>" and e["Tags"] is None for e in ours_h[1:])
    keys = ("Created", "CreatedBy", "Comment")
    assert [[e[k] for k in keys] for e in ours_h] == [[e[k] for k in keys] for e in api]
    assert [e["Size"] == 0 for e in ours_h] == [e["Size"] == 0 for e in api]
