"""Images on this host: which manifests exist, and the names that point at them.

The store is an OCI image layout (``ROOT/oci-layout``, ``ROOT/blobs/``, ``ROOT/index.json``)
that skopeo, umoci and friends can read. Each image is a manifest in ``index.json``; its
names are Docker's fully normalised references (``docker.io/library/busybox:latest``),
kept in the descriptor's ``org.opencontainers.image.ref.name`` annotation, one descriptor
per name (an untagged, "dangling" image keeps a descriptor without one).

An image's ID is the digest of its config, as with Docker. Blobs are written first and the
index last (atomically), so an interrupted pull or load never shows a half image; blobs no
manifest references are garbage, removed by :meth:`ImageStore.gc`.
"""

from __future__ import annotations

import fcntl
import json
import os

from longboat.errors import Conflict, InvalidArgument, NotFound
from longboat.image import reference
from longboat.image.content import ContentStore, check_digest

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER = "application/vnd.docker.image.rootfs.diff.tar"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_LAYER_ZSTD = "application/vnd.oci.image.layer.v1.tar+zstd"
MANIFESTS = (DOCKER_MANIFEST, OCI_MANIFEST)
INDEXES = (DOCKER_MANIFEST_LIST, OCI_INDEX)
LAYERS = (DOCKER_LAYER, DOCKER_LAYER_GZIP, OCI_LAYER, OCI_LAYER_GZIP, OCI_LAYER_ZSTD,
          "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip",
          "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip")
REF_NAME = "org.opencontainers.image.ref.name"
MAX_MANIFEST = 4 << 20


def oci_layer_type(media_type: str) -> str:
    """The OCI name of a layer media type (Docker's plain and gzip layers have one)."""
    return {DOCKER_LAYER: OCI_LAYER, DOCKER_LAYER_GZIP: OCI_LAYER_GZIP}.get(media_type,
                                                                        media_type)


class Image:
    """One image: its manifest, its config and the names pointing at it."""

    def __init__(self, manifest_digest: str, manifest: dict[str, Any], config: dict[str, Any],
                 references: list[str]) -> None:
        self.manifest_digest = manifest_digest
        self.manifest = manifest
        self.config = config
        self.references = references

    @property
    def id(self) -> str:
        return str(self.manifest["config"]["digest"])

    @property
    def layers(self) -> list[dict[str, Any]]:
        return list(self.manifest.get("layers") or [])

    @property
    def diff_ids(self) -> list[str]:
        return list((self.config.get("rootfs") or {}).get("diff_ids") or [])

    @property
    def size(self) -> int:
        """Bytes of its layers as stored, plus its config (what Docker calls Size)."""
        return int(self.manifest["config"]["size"]) + sum(int(d["size"]) for d in self.layers)

    @property
    def created(self) -> str:
        return str(self.config.get("created") or "")

    def blobs(self) -> set[str]:
        return {self.manifest_digest, self.id} | {d["digest"] for d in self.layers}

    def __repr__(self) -> str:
        return f"Image({self.id[7:19]}, {self.references})"


def parse_manifest(data: bytes) -> dict[str, Any]:
    """A single-platform image manifest (Docker v2 schema 2 or OCI), checked for shape."""
    try:
        manifest = json.loads(data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise InvalidArgument(f"manifest is not valid JSON: {exc}") from None
    if not isinstance(manifest, dict):
        raise InvalidArgument("manifest must be a JSON object")
    media = manifest.get("mediaType", OCI_MANIFEST)
    if media in INDEXES:
        raise InvalidArgument("this is an image index (manifest list); pick one manifest")
    if media not in MANIFESTS or manifest.get("schemaVersion") != 2:
        raise InvalidArgument(f"unsupported manifest type {media!r} (schema "
                              f"{manifest.get('schemaVersion')!r})")
    config = manifest.get("config")
    layers = manifest.get("layers")
    if not isinstance(config, dict) or not isinstance(layers, list):
        raise InvalidArgument("manifest needs a config descriptor and a layers array")
    for where, desc in [("config", config)] + [(f"layers[{i}]", d) for i, d in enumerate(layers)]:
        if not isinstance(desc, dict) or not isinstance(desc.get("size"), int) \
                or desc["size"] < 0:
            raise InvalidArgument(f"manifest {where}: a descriptor needs a size")
        check_digest(str(desc.get("digest")))
        if where != "config" and desc.get("mediaType") not in LAYERS:
            raise InvalidArgument(f"manifest {where}: unknown layer type "
                                  f"{desc.get('mediaType')!r}")
    return manifest


class ImageStore:
    """The images of one engine, under ``root`` (``DATA_ROOT/image``)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.content = ContentStore(root)
        self._index_path = os.path.join(root, "index.json")

    # -- the index ----------------------------------------------------------------------
    def _read_index(self) -> list[dict[str, Any]]:
        try:
            with open(self._index_path, "rb") as f:
                index = json.loads(f.read())
        except FileNotFoundError:
            return []
        return list(index.get("manifests") or [])

    def _write_index(self, descriptors: list[dict[str, Any]]) -> None:
        tmp = self._index_path + ".tmp"
        data = json.dumps({"schemaVersion": 2, "mediaType": OCI_INDEX,
                           "manifests": descriptors}, indent=1).encode()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
        try:
            os.write(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, self._index_path)

    class _Locked:
        def __init__(self, store: ImageStore) -> None:
            self.fd = os.open(os.path.join(store.root, "index.lock"),
                              os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)

        def __enter__(self) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_EX)

        def __exit__(self, *exc: object) -> None:
            fcntl.flock(self.fd, fcntl.LOCK_UN)
            os.close(self.fd)

    def _lock(self) -> ImageStore._Locked:
        return ImageStore._Locked(self)

    def _grouped(self, descriptors: list[dict[str, Any]]) -> dict[str, list[str]]:
        """manifest digest -> its names, in index order."""
        out: dict[str, list[str]] = {}
        for d in descriptors:
            names = out.setdefault(d["digest"], [])
            name = (d.get("annotations") or {}).get(REF_NAME)
            if name:
                names.append(name)
        return out

    @staticmethod
    def _descriptors(groups: dict[str, list[str]], sizes: dict[str, int],
                     media: dict[str, str]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        for digest, names in groups.items():
            base = {"mediaType": media[digest], "digest": digest, "size": sizes[digest]}
            if not names:
                out.append(dict(base))
            for name in names:
                out.append({**base, "annotations": {REF_NAME: name}})
        return out

    def _edit(self, change: Callable[[dict[str, list[str]]], None]) -> None:
        """Apply ``change`` to {manifest digest: names} under the lock and save."""
        with self._lock():
            descriptors = self._read_index()
            sizes = {d["digest"]: d["size"] for d in descriptors}
            media = {d["digest"]: d.get("mediaType", OCI_MANIFEST) for d in descriptors}
            groups = self._grouped(descriptors)
            change(groups)
            for digest in groups:
                if digest not in sizes:
                    sizes[digest] = self.content.size(digest)
                    media[digest] = parse_manifest(self.content.read(digest)).get(
                        "mediaType", OCI_MANIFEST)
            self._write_index(self._descriptors(groups, sizes, media))

    # -- reading ------------------------------------------------------------------------
    def _image(self, digest: str, names: list[str]) -> Image:
        manifest = parse_manifest(self.content.read(digest, MAX_MANIFEST))
        config = json.loads(self.content.read(manifest["config"]["digest"]))
        return Image(digest, manifest, config, names)

    def images(self) -> list[Image]:
        return [self._image(d, names) for d, names in self._grouped(self._read_index()).items()]

    def __iter__(self) -> Iterator[Image]:
        return iter(self.images())

    def get(self, name_or_id: str) -> Image:
        """By name (normalised like Docker's), by ``name@sha256:`` manifest digest, or by
        image ID (``sha256:...`` or a unique prefix of its hex, at least 4 digits)."""
        groups = self._grouped(self._read_index())
        wanted = name_or_id.strip()
        # a name first (as Docker does), then an image ID or a prefix of one
        try:
            ref = reference.parse(wanted)
        except InvalidArgument:
            ref = None
        if ref is not None and ref.digest:
            if ref.digest in groups:
                return self._image(ref.digest, groups[ref.digest])
            raise NotFound(f"No such image: {wanted}")
        if ref is not None:
            full = str(ref)
            for digest, names in groups.items():
                if full in names:
                    return self._image(digest, names)
        hexpart = wanted[7:] if wanted.startswith("sha256:") else wanted
        if 4 <= len(hexpart) <= 64 and all(c in "0123456789abcdef" for c in hexpart):
            matches: dict[str, Image] = {}
            for digest, names in groups.items():
                image = self._image(digest, names)
                if image.id[7:].startswith(hexpart):
                    matches.setdefault(image.id, image)
            if len(matches) > 1:
                raise Conflict(f"image ID prefix {wanted} is ambiguous")
            if matches:
                return next(iter(matches.values()))
        raise NotFound(f"No such image: {wanted}")

    def exists(self, name_or_id: str) -> bool:
        try:
            self.get(name_or_id)
        except NotFound:
            return False
        return True

    # -- adding -------------------------------------------------------------------------
    def add(self, manifest_data: bytes, names: list[str] | tuple[str, ...] = ()) -> Image:
        """Record a manifest whose config and layers are already in the content store, and
        point ``names`` at it (moving them off any other image)."""
        return self.add_many([(manifest_data, list(names))])[0]

    def add_many(self, entries: list[tuple[bytes, list[str]]]) -> list[Image]:
        """Record several images in one index write: all of them or none (a load of a
        multi-image archive). Later entries win a name given twice."""
        checked: list[tuple[str, list[str]]] = []
        for manifest_data, names in entries:
            self._check_complete(manifest_data)
            full = [str(reference.parse(n)) for n in names]
            checked.append((self.content.put(manifest_data), full))

        def change(groups: dict[str, list[str]]) -> None:
            for digest, full in checked:
                for other in groups.values():
                    other[:] = [n for n in other if n not in full]
                mine = groups.setdefault(digest, [])
                mine.extend(n for n in full if n not in mine)

        self._edit(change)
        groups = self._grouped(self._read_index())
        return [self._image(digest, groups.get(digest, [])) for digest, _ in checked]

    def _check_complete(self, manifest_data: bytes) -> None:
        manifest = parse_manifest(manifest_data)
        for desc in [manifest["config"], *manifest["layers"]]:
            if not self.content.has(desc["digest"]):
                raise InvalidArgument(f"manifest refers to {desc['digest']}, which is not in "
                                      "the store")
            if self.content.size(desc["digest"]) != desc["size"]:
                raise InvalidArgument(f"blob {desc['digest']} is not {desc['size']} bytes")
        config = json.loads(self.content.read(manifest["config"]["digest"]))
        diff_ids = (config.get("rootfs") or {}).get("diff_ids") or []
        if len(diff_ids) != len(manifest["layers"]):
            raise InvalidArgument(f"image config lists {len(diff_ids)} layers, its manifest "
                                  f"{len(manifest['layers'])}")

    def create(self, config: dict[str, Any], layers: list[dict[str, Any]],
               names: list[str] | tuple[str, ...] = ()) -> Image:
        """Write an image from a config (whose ``rootfs.diff_ids`` match ``layers``) and
        layer descriptors of blobs in the store. OCI media types: every tool reads them
        (Docker 20.10 loads, pulls and runs them; skopeo 1.9 finds only OCI manifests by
        name in a layout), and the image ID (the config's digest) is the same either way."""
        config_data = json.dumps(config, separators=(",", ":")).encode()
        config_digest = self.content.put(config_data)
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "size": len(config_data),
                               "digest": config_digest},
                    "layers": [dict(d, mediaType=oci_layer_type(d["mediaType"]))
                               for d in layers]}
        return self.add(json.dumps(manifest, indent=3).encode(), names)

    # -- names --------------------------------------------------------------------------
    def tag(self, name_or_id: str, name: str) -> str:
        image = self.get(name_or_id)
        full = str(reference.parse(name))
        if reference.parse(name).digest:
            raise InvalidArgument(f"refusing to create a tag with a digest reference: {name}")

        def change(groups: dict[str, list[str]]) -> None:
            for other in groups.values():
                other[:] = [n for n in other if n != full]
            groups[image.manifest_digest].append(full)

        self._edit(change)
        return full

    def remove(self, name_or_id: str, *, force: bool = False,
               in_use: Callable[[Image], bool] | None = None) -> list[dict[str, str]]:
        """Docker's ``rmi``: untag a name; delete the image once no name is left. By ID,
        an image with several names needs ``force``; an image a container uses cannot be
        deleted. Returns Docker's list of ``{"Untagged": ...}`` / ``{"Deleted": ...}``."""
        image = self.get(name_or_id)
        by_name = name_or_id in image.references or _normal(name_or_id) in image.references
        report: list[dict[str, str]] = []
        if by_name and len(image.references) > 1:
            name = _normal(name_or_id)
            self._edit(lambda g: g[image.manifest_digest].remove(name))
            return [{"Untagged": reference.parse(name).familiar}]
        if not by_name and len(image.references) > 1 and not force:
            raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be forced) - "
                           "image is referenced in multiple repositories")
        if in_use is not None and in_use(image) and not force:
            raise Conflict(f"conflict: unable to remove repository reference "
                           f"\"{name_or_id}\" (must force) - container is using its "
                           f"referenced image {image.id[7:19]}")
        report += [{"Untagged": reference.parse(n).familiar} for n in image.references]

        def drop(groups: dict[str, list[str]]) -> None:
            groups.pop(image.manifest_digest, None)

        self._edit(drop)
        report.append({"Deleted": image.id})
        self.gc()
        return report

    def prune(self, *, dangling_only: bool = True,
              in_use: Callable[[Image], bool] | None = None) -> tuple[list[str], int]:
        """Remove unnamed images (or, with ``dangling_only`` False, every image no
        container uses); (deleted image IDs, bytes reclaimed)."""
        doomed = [i for i in self.images()
                  if (not i.references or not dangling_only)
                  and not (in_use is not None and in_use(i))]
        gone = {i.manifest_digest for i in doomed}

        def change(groups: dict[str, list[str]]) -> None:
            for digest in gone:
                groups.pop(digest, None)

        self._edit(change)
        return [i.id for i in doomed], self.gc()

    def gc(self) -> int:
        """Delete blobs that no recorded image references; bytes freed."""
        with self._lock():
            keep: set[str] = set()
            for image in self.images():
                keep |= image.blobs()
            freed = 0
            for digest in list(self.content.digests()):
                if digest not in keep:
                    freed += self.content.size(digest)
                    self.content.delete(digest)
            self.content.clean_ingest()
        return freed

    def disk_usage(self) -> dict[str, Any]:
        """Per image: its size, and how much of it it shares with other images."""
        images = self.images()
        users: dict[str, int] = {}
        for image in images:
            for blob in image.blobs():
                users[blob] = users.get(blob, 0) + 1
        rows = []
        for image in images:
            shared = sum(int(d["size"]) for d in image.layers if users[d["digest"]] > 1)
            rows.append({"Id": image.id, "RepoTags": image.references, "Size": image.size,
                         "SharedSize": shared, "Created": image.created})
        total = sum(self.content.size(b) for b in users)
        return {"Images": rows, "LayersSize": total}


def _normal(name: str) -> str:
    try:
        return str(reference.parse(name))
    except InvalidArgument:
        return name

