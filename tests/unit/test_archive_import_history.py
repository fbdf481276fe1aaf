"""``docker import`` of a rootfs tarball and ``docker history`` of an image."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from tests.support import image_archives as ia

from longboat.errors import InvalidArgument
from longboat.image import archive
from longboat.image.store import OCI_LAYER, Image, ImageStore

pytestmark = pytest.mark.unit

ROOTFS = ia.tar_of([ia.member("bin", kind=tarfile.DIRTYPE),
                    ia.member("bin/sh", b"#!fake\n"),
                    ia.member("etc/hostname", b"imported\n"),
                    ia.member("bin/ls", kind=tarfile.SYMTYPE, linkname="/bin/sh"),
                    ia.member("dev/null", kind=tarfile.CHRTYPE)])


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "store"))


@pytest.mark.parametrize("compress", [lambda b: b, gzip.compress, bz2.compress, lzma.compress])
def test_import_makes_a_one_layer_image(store: ImageStore,
                                        compress: Callable[[bytes], bytes]) -> None:
    start = int(time.time())
    image = archive.import_rootfs(store, io.BytesIO(compress(ROOTFS)), ["imported:1"],
                                  {"Cmd": ["/bin/sh"], "Env": ["A=b"]})
    diff_id = "sha256:" + ia.sha(ROOTFS)
    assert image.references == ["docker.io/library/imported:1"]
    assert image.layers == [{"mediaType": OCI_LAYER, "size": len(ROOTFS),
                             "digest": diff_id}]
    c = image.config
    assert (c["architecture"], c["os"], c["rootfs"]) == (
        "amd64", "linux", {"type": "layers", "diff_ids": [diff_id]})
    assert c["config"] == {"Cmd": ["/bin/sh"], "Env": ["A=b"]}
    assert c["history"] == [{"created": c["created"], "comment": "Imported from -"}]
    assert store.content.read(diff_id) == ROOTFS
    [entry] = archive.history(image)
    assert entry == {"Id": image.id, "Created": entry["Created"], "CreatedBy": "",
                     "Tags": ["imported:1"], "Size": len(ROOTFS),
                     "Comment": "Imported from -"}
    assert start <= entry["Created"] <= time.time() + 1


def test_import_without_name_is_dangling(store: ImageStore) -> None:
    image = archive.import_rootfs(store, io.BytesIO(ROOTFS), [])
    assert image.references == []
    assert archive.history(image)[0]["Tags"] is None


@pytest.mark.parametrize(("data", "names", "changes", "match"), [
    (b"not a tarball at all" * 50, [], None, "not a tar"),
    (b"", [], None, "not a tar"),
    (ROOTFS[:700], [], None, "truncated|not a tar"),
    (ia.tar_of([ia.member("../escape", b"x")]), [], None, "traversal"),
    (ia.tar_of([ia.member("/abs", b"x")]), [], None, "absolute"),
    (ROOTFS, ["Bad:Name"], None, "invalid image name"),
    (ROOTFS, ["x@sha256:" + "a" * 64], None, "digest reference"),
    (ROOTFS, [], {"Bogus": 1}, "unknown config change"),
    (ROOTFS, [], {"Cmd": "sh"}, "Cmd must be a list"),
    (gzip.compress(ROOTFS)[:100], [], None, "truncated|corrupt"),
])
def test_import_refuses_bad_input(store: ImageStore, data: bytes, names: list[str],
                                  changes: dict[str, object] | None, match: str) -> None:
    archive.import_rootfs(store, io.BytesIO(ROOTFS), ["kept:1"])
    index = Path(store.root, "index.json").read_bytes()
    blobs = sorted(store.content.digests())
    with pytest.raises(InvalidArgument, match=match):
        archive.import_rootfs(store, io.BytesIO(data), names, changes)
    assert Path(store.root, "index.json").read_bytes() == index
    assert sorted(store.content.digests()) == blobs
    assert os.listdir(Path(store.root, "ingest")) == []


def _image(history: list[dict[str, object]], layers: list[int],
           refs: list[str]) -> Image:
    manifest = {"config": {"digest": "sha256:" + "c" * 64, "size": 10},
                "layers": [{"digest": f"sha256:{i:064x}", "size": s}
                           for i, s in enumerate(layers)]}
    return Image("sha256:" + "m" * 64, manifest, {"history": history}, refs)


def test_history_newest_first_with_missing_and_empty_layers() -> None:
    image = _image([
        {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file:x in /"},
        {"created": "2024-05-01T10:00:01.123456789Z", "created_by": "/bin/sh -c #(nop)  CMD "
         "[\"sh\"]", "empty_layer": True},
        {"created": "2024-05-01T12:00:00+02:00", "created_by": "RUN x", "comment": "hi"},
        {"created": "2024-05-02T00:00:00Z", "created_by": "ENV A=b", "empty_layer": True},
    ], [111, 222], ["docker.io/library/app:1", "localhost:5000/app:2"])
    assert archive.history(image) == [
        {"Id": "sha256:" + "c" * 64, "Created": 1714608000, "CreatedBy": "ENV A=b",
         "Tags": ["app:1", "localhost:5000/app:2"], "Size": 0, "Comment": ""},
        {"Id": "<missing>", "Created": 1714557600, "CreatedBy": "RUN x", "Tags": None,
         "Size": 222, "Comment": "hi"},
        {"Id": "<missing>", "Created": 1714557601, "CreatedBy":
         "/bin/sh -c #(nop)  CMD [\"sh\"]", "Tags": None, "Size": 0, "Comment": ""},
        {"Id": "<missing>", "Created": 1714557600, "CreatedBy":
         "/bin/sh -c #(nop) ADD file:x in /", "Tags": None, "Size": 111, "Comment": ""},
    ]


def test_history_of_image_without_history_is_empty() -> None:
    assert archive.history(_image([], [5], [])) == []
    # malformed records do not break it
    entries = archive.history(_image([{"created": 5}, "junk"], [5], []))  # type: ignore[list-item]
    assert [e["Created"] for e in entries] == [0, 0]


def test_import_config_is_valid_oci(store: ImageStore) -> None:
    validator = ia.schema_validator("config-schema.json")
    if validator is None:
        pytest.skip(f"OCI image schemas not found at {ia.SCHEMAS}")
    image = archive.import_rootfs(store, io.BytesIO(ROOTFS), ["x:1"],
                                  {"ExposedPorts": {"80/tcp": {}}, "Labels": {"a": "b"}})
    validator.validate(json.loads(store.content.read(image.id)))
