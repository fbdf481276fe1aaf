"""The content store and the image store: names, IDs, rmi/prune semantics, garbage
collection, atomicity, and the OCI layout we write (checked against the OCI schemas)."""

from __future__ import annotations

import gzip
import io
import json
import os
import tarfile
from pathlib import Path

import pytest

from longboat.errors import Conflict, InvalidArgument, NotFound
from longboat.image import store as images
from longboat.image.content import ContentStore, DigestMismatch, sha256_of

pytestmark = pytest.mark.unit
SPECS = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "oci-image-schema"


def _layer(files: dict[str, bytes]) -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w") as tar:
        for name, data in sorted(files.items()):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return raw.getvalue()


def make_image(store: images.ImageStore, files: dict[str, bytes], names=(), parent=None):
    """An image of the parent's layers plus one layer of ``files``."""
    tar = _layer(files)
    compressed = gzip.compress(tar, mtime=0)
    layer_digest = store.content.put(compressed)
    layers = list(parent.layers) if parent else []
    diff_ids = list(parent.diff_ids) if parent else []
    layers.append({"mediaType": images.DOCKER_LAYER_GZIP, "size": len(compressed),
                   "digest": layer_digest})
    diff_ids.append(sha256_of(tar))
    config = {"architecture": "amd64", "os": "linux", "created": "2026-01-01T00:00:00Z",
              "config": {"Cmd": ["sh"]}, "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created_by": f"layer {len(layers)}"} for _ in layers]}
    return store.create(config, layers, list(names))


@pytest.fixture
def store(tmp_path):
    return images.ImageStore(str(tmp_path / "image"))


def test_content_store_verifies_and_is_atomic(tmp_path):
    content = ContentStore(str(tmp_path))
    digest = content.put(b"hello")
    assert digest == sha256_of(b"hello") and content.read(digest) == b"hello"
    with pytest.raises(DigestMismatch):
        content.put(b"hello", expected=sha256_of(b"other"))
    with pytest.raises(DigestMismatch), content.writer(sha256_of(b"abc"), 3) as w:
        w.write(b"abcd")
    with content.writer() as w:
        w.write(b"never committed")
    assert list(content.digests()) == [digest]
    assert os.listdir(tmp_path / "ingest") == []
    with pytest.raises(InvalidArgument):
        content.has("sha256:../../etc/passwd")


def test_names_ids_and_lookup(store):
    image = make_image(store, {"a": b"1"}, ["busybox"])
    assert image.references == ["docker.io/library/busybox:latest"]
    for name in ("busybox", "busybox:latest", "docker.io/library/busybox:latest", image.id,
                 image.id[7:19], f"busybox@{image.manifest_digest}"):
        assert store.get(name).id == image.id
    with pytest.raises(NotFound, match="No such image: nginx"):
        store.get("nginx")
    store.tag("busybox", "localhost:5000/team/app:v1")
    assert store.get("localhost:5000/team/app:v1").id == image.id
    with pytest.raises(InvalidArgument):
        store.tag("busybox", "library/BusyBox")


def test_a_tag_moves_and_the_old_image_becomes_dangling(store):
    old = make_image(store, {"a": b"1"}, ["app:latest"])
    new = make_image(store, {"a": b"2"}, ["app:latest"])
    assert store.get("app").id == new.id
    assert store.get(old.id).references == []
    deleted, freed = store.prune()
    assert deleted == [old.id] and freed > 0
    with pytest.raises(NotFound):
        store.get(old.id)
    assert store.get("app").id == new.id


def test_rmi_untags_then_deletes_and_collects_garbage(store):
    base = make_image(store, {"base": b"x" * 1000}, ["base"])
    child = make_image(store, {"top": b"y"}, ["child", "child:v2"], parent=base)
    assert store.remove("child:v2") == [{"Untagged": "child:v2"}]
    store.tag("child", "other")
    with pytest.raises(Conflict, match="must be forced"):
        store.remove(child.id)
    report = store.remove(child.id, force=True)
    assert {"Deleted": child.id} in report and {"Untagged": "child:latest"} in report
    assert {"Untagged": "other:latest"} in report
    # the shared base layer survives; the child's own layer and blobs are gone
    assert store.get("base").id == base.id
    kept = set(store.content.digests())
    assert base.blobs() <= kept and not (child.blobs() - base.blobs()) & kept


def test_an_image_in_use_is_not_removed(store):
    image = make_image(store, {"a": b"1"}, ["busy"])
    with pytest.raises(Conflict, match="container is using"):
        store.remove("busy", in_use=lambda i: i.id == image.id)
    assert store.get("busy").id == image.id


def test_missing_blobs_and_bad_manifests_leave_the_store_unchanged(store):
    make_image(store, {"a": b"1"}, ["keep"])
    before = Path(store.root, "index.json").read_bytes()
    config = store.content.put(b'{"rootfs": {"type": "layers", "diff_ids": []}}')
    missing = {"schemaVersion": 2, "mediaType": images.DOCKER_MANIFEST,
               "config": {"mediaType": images.DOCKER_CONFIG, "size": 10, "digest": config},
               "layers": [{"mediaType": images.DOCKER_LAYER_GZIP, "size": 3,
                           "digest": "sha256:" + "0" * 64}]}
    for bad, message in [(missing, "not 10 bytes|not in the store"),
                         ({"schemaVersion": 1}, "unsupported manifest"),
                         ({"schemaVersion": 2, "mediaType": images.OCI_INDEX,
                           "manifests": []}, "image index"),
                         ("not json", "not valid JSON")]:
        data = bad.encode() if isinstance(bad, str) else json.dumps(bad).encode()
        with pytest.raises(InvalidArgument, match=message):
            store.add(data, ["broken"])
    assert Path(store.root, "index.json").read_bytes() == before


def test_disk_usage_counts_shared_layers(store):
    base = make_image(store, {"base": b"x" * 5000}, ["base"])
    make_image(store, {"top": b"y"}, ["child"], parent=base)
    usage = store.disk_usage()
    rows = {tuple(r["RepoTags"]): r for r in usage["Images"]}
    child = rows[("docker.io/library/child:latest",)]
    assert child["SharedSize"] == base.layers[0]["size"]
    assert usage["LayersSize"] == sum(store.content.size(d) for d in store.content.digests())


def test_what_we_write_follows_the_oci_image_schemas(store):
    if not SPECS.is_dir():
        pytest.skip(f"OCI image schemas not found at {SPECS}")
    jsonschema = pytest.importorskip("jsonschema")
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    schemas = {p.name: json.loads(p.read_text()) for p in SPECS.glob("*.json")}
    # the files $ref each other by file name relative to their ids' bases
    bases = ("", "https://opencontainers.org/schema/", "https://opencontainers.org/schema/image/",
             "https://opencontainers.org/schema/image/descriptor/")
    registry = Registry().with_resources(
        (base + name, Resource.from_contents(schema, default_specification=DRAFT4))
        for name, schema in schemas.items() for base in bases)

    def check(doc, schema):
        jsonschema.Draft4Validator(schemas[schema], registry=registry).validate(doc)

    image = make_image(store, {"a": b"1"}, ["x"])
    check(json.loads(Path(store.root, "index.json").read_text()), "image-index-schema.json")
    check(json.loads(Path(store.root, "oci-layout").read_text()), "image-layout-schema.json")
    check(image.manifest, "image-manifest-schema.json")
    check(image.config, "config-schema.json")
