"""Helpers for the archive tests: images built in a store from real layers, a docker
save (Docker 20.10 on-disk format) archive built by hand, tars of hand-made members,
the store's state, and validation against the OCI image schemas."""

from __future__ import annotations

import hashlib
import io
import json
import os
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

from longboat.image.layer import make_layer
from longboat.image.store import DOCKER_LAYER, DOCKER_LAYER_GZIP, Image, ImageStore

SCHEMAS = Path("/work/shared/specs/oci-image-schema")
CREATED = "2024-05-01T10:20:30.123456789Z"

Member = tuple[tarfile.TarInfo, bytes]


def layer_of(store: ImageStore, tree: Path, gzip: bool) -> tuple[dict[str, Any], str, bytes]:
    """A layer of ``tree`` put in the store: (descriptor, diff ID, uncompressed tar)."""
    out = io.BytesIO()
    result = make_layer(str(tree), out, compression="gzip" if gzip else "none")
    digest = store.content.put(out.getvalue())
    plain = io.BytesIO()
    make_layer(str(tree), plain)
    desc = {"mediaType": DOCKER_LAYER_GZIP if gzip else DOCKER_LAYER, "size": result.size,
            "digest": digest}
    return desc, result.diff_id, plain.getvalue()


def busybox_image(store: ImageStore, rootfs: Path, work: Path, names: list[str],
                  hello: str = "hello from layer 2\n") -> tuple[Image, list[bytes]]:
    """A two-layer busybox image (gzip base, plain second layer adding /hello) with a
    history that ends in an empty-layer CMD; and its layers' uncompressed tars."""
    extra = work / "layer2"
    (extra / "etc").mkdir(parents=True, exist_ok=True)
    (extra / "hello").write_text(hello)
    (extra / "etc" / "motd").write_text("motd\n")
    base, base_id, base_tar = layer_of(store, rootfs, gzip=True)
    top, top_id, top_tar = layer_of(store, extra, gzip=False)
    config = {
        "architecture": "amd64", "os": "linux", "created": CREATED,
        "config": {"Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"], "Cmd": ["sh"]},
        "rootfs": {"type": "layers", "diff_ids": [base_id, top_id]},
        "history": [
            {"created": "2024-05-01T10:00:00Z", "created_by": "/bin/sh -c #(nop) ADD rootfs /"},
            {"created": "2024-05-01T10:10:00.5Z", "created_by": "/bin/sh -c echo hi > /hello",
             "comment": "second"},
            {"created": CREATED, "created_by": '/bin/sh -c #(nop)  CMD ["sh"]',
             "empty_layer": True},
        ],
    }
    return store.create(config, [base, top], names), [base_tar, top_tar]


def state(store: ImageStore) -> tuple[bytes | None, list[str], list[str]]:
    """What a failed load must leave unchanged: index.json's bytes, the blobs, ingest/."""
    index = Path(store.root, "index.json")
    return (index.read_bytes() if index.exists() else None, sorted(store.content.digests()),
            sorted(os.listdir(Path(store.root, "ingest"))))


def member(name: str, data: bytes = b"", kind: bytes = tarfile.REGTYPE,
           linkname: str = "", size: int | None = None) -> Member:
    info = tarfile.TarInfo(name)
    info.type, info.linkname, info.mtime = kind, linkname, 1_700_000_000
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.size = len(data) if size is None else size
    return info, data


def tar_of(members: list[Member]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return buf.getvalue()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def docker_save_archive(images: list[tuple[bytes, list[bytes], list[str]]],
                        edit: Callable[[list[Member]], None] | None = None) -> bytes:
    """A ``docker save`` archive as Docker 20.10 writes one: per layer a directory named
    by its v1 ID with ``VERSION``, ``json`` and ``layer.tar`` (a layer already written
    under another ID becomes a symlink to it), the config as ``<hex>.json``, then
    ``manifest.json`` and ``repositories``. ``images``: (config, layer tars, tags)."""
    members: list[Member] = []
    written: dict[str, str] = {}
    dirs: set[str] = set()
    manifest, repositories = [], {}
    for config, layers, tags in images:
        parent = ""
        paths = []
        for i, layer in enumerate(layers):
            v1 = sha(f"{parent}\n{sha(layer)}\n{i}".encode())
            paths.append(f"{v1}/layer.tar")
            if v1 in dirs:  # the same chain in an earlier image: written once
                parent = v1
                continue
            dirs.add(v1)
            members.append(member(v1, kind=tarfile.DIRTYPE))
            members.append(member(f"{v1}/VERSION", b"1.0"))
            v1json = {"id": v1, "created": "1970-01-01T00:00:00Z",
                      "container_config": {"Cmd": None}, "os": "linux"}
            if parent:
                v1json["parent"] = parent
            members.append(member(f"{v1}/json", json.dumps(v1json).encode()))
            if sha(layer) in written:
                members.append(member(f"{v1}/layer.tar", kind=tarfile.SYMTYPE,
                                      linkname=f"../{written[sha(layer)]}/layer.tar"))
            else:
                members.append(member(f"{v1}/layer.tar", layer))
                written[sha(layer)] = v1
            parent = v1
        members.append(member(f"{sha(config)}.json", config))
        manifest.append({"Config": f"{sha(config)}.json", "RepoTags": tags or None,
                         "Layers": paths})
        for tag in tags:
            repo, _, t = tag.rpartition(":")
            repositories.setdefault(repo, {})[t] = parent
    members.append(member("manifest.json", json.dumps(manifest).encode()))
    members.append(member("repositories", json.dumps(repositories).encode()))
    if edit is not None:
        edit(members)
    return tar_of(members)


def layer_listing(layer: bytes) -> list[tuple[str, int, int, int, str, int, int]]:
    """A layer tar's entries: (name, type, mode, size, link target, uid, gid)."""
    with tarfile.open(fileobj=io.BytesIO(layer), mode="r:*") as tar:
        return sorted((m.name.lstrip("./").rstrip("/"), ord(m.type), m.mode, m.size,
                       m.linkname, m.uid, m.gid) for m in tar.getmembers())


def schema_validator(name: str) -> Any:
    """A jsonschema validator for one OCI image schema (``image-manifest-schema.json``),
    with every file of the folder resolvable by its name; None if the folder is absent."""
    if not SCHEMAS.is_dir():
        return None
    import jsonschema
    from referencing import Registry, Resource
    from referencing.jsonschema import DRAFT4

    files = {p.name: json.loads(p.read_text()) for p in SCHEMAS.glob("*.json")}

    def retrieve(uri: str) -> Resource[Any]:
        base = uri.rsplit("/", 1)[-1].split("#")[0]
        if base in files:
            return DRAFT4.create_resource(files[base])
        raise LookupError(uri)

    registry: Registry[Any] = Registry(retrieve=retrieve)  # type: ignore[call-arg]
    return jsonschema.Draft4Validator(files[name], registry=registry)
