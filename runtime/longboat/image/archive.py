"""Image archives: ``save`` and ``load`` (docker-archive and OCI archives), ``import``
of a root filesystem tarball, and an image's ``history``.

What ``save`` writes is a docker-archive (``manifest.json``, ``repositories``) that is
also an OCI image layout (``oci-layout``, ``index.json``, ``blobs/sha256/``): blobs are
written as stored, so ``manifest.json`` names ``blobs/sha256/<hex>`` paths and the image
ID and manifest digest survive a round trip.

What ``load`` reads: real ``docker save`` output (``<id>/layer.tar``, ``manifest.json``),
OCI archives (``index.json`` + blobs, nested indexes resolved to linux/amd64) and our
own; whole-archive gzip, bzip2 or xz compression. Invariants (docs/archives.md):

* The archive is never extracted. ``tarfile`` only parses headers (random access on a
  seekable file; other streams are spooled to an unlinked temporary file first); member
  data is read by offset. Member names with ``..``, absolute names, hardlinks, devices,
  fifos, sparse files and duplicate names are refused; a symlink is accepted only as
  docker save's alias of one ``layer.tar`` for another inside the archive.
* Limits: JSON documents (manifest.json, index.json, configs, manifests) up to
  :data:`MAX_JSON` bytes, members up to :data:`MAX_MEMBER`, :data:`MAX_MEMBERS` members,
  a missing end-of-archive marker or data past the end of the file is "truncated".
* Every digest is verified (config and manifest digests, layer digests, diff IDs against
  the config's ``rootfs.diff_ids``) before anything is published. Blobs go through the
  content store's writers; each image is recorded with ``ImageStore.add`` last, so an
  interrupted load leaves no visible image and a rerun completes. On an error, the blobs
  this load created are removed again: the store is left as it was.
"""

from __future__ import annotations

import bz2
import contextlib
import datetime
import hashlib
import io
import json
import lzma
import os
import posixpath
import re
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from typing import IO, Any, BinaryIO, Final

from longboat.errors import InvalidArgument
from longboat.image import reference
from longboat.image.content import DigestMismatch, check_digest, sha256_of
from longboat.image.store import (
    DOCKER_LAYER,
    INDEXES,
    MAX_MANIFEST,
    OCI_CONFIG,
    OCI_INDEX,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    REF_NAME,
    Image,
    ImageStore,
    parse_manifest,
)

#: Largest JSON document read from an archive (manifest.json, index.json, a config).
MAX_JSON: Final = 16 << 20
#: Largest single member (a layer); beyond is an absurd size.
MAX_MEMBER: Final = 64 << 30
#: Largest archive after whole-archive decompression.
MAX_ARCHIVE: Final = 1 << 40
MAX_MEMBERS: Final = 200_000
MAX_IMAGES: Final = 10_000
MAX_LAYERS: Final = 1_000
MAX_INDEX_DEPTH: Final = 4

CONTAINERD_NAME: Final = "io.containerd.image.name"
PLATFORM: Final = ("linux", "amd64")
OCI_LAYOUT: Final = b'{"imageLayoutVersion":"1.0.0"}'
IMPORT_COMMENT: Final = "Imported from -"
#: Keys of an image config's ``config`` that ``import_rootfs`` takes as changes.
CONFIG_KEYS: Final[dict[str, type]] = {
    "User": str, "ExposedPorts": dict, "Env": list, "Entrypoint": list, "Cmd": list,
    "Volumes": dict, "WorkingDir": str, "Labels": dict, "StopSignal": str, "OnBuild": list}

_CHUNK: Final = 1 << 20
_MAGIC_GZIP: Final = b"\x1f\x8b"
_MAGIC_BZIP2: Final = b"BZh"
_MAGIC_XZ: Final = b"\xfd7zXZ\x00"
_MAGIC_ZSTD: Final = b"\x28\xb5\x2f\xfd"
_BLOB_PATH = re.compile(r"blobs/sha256/([0-9a-f]{64})")

Progress = Callable[[dict[str, Any]], None]


class ArchiveError(InvalidArgument):
    """An image archive that cannot be loaded: malformed, truncated, oversized, hostile,
    or not matching its own digests."""


# --------------------------------------------------------------------------------------
# save


def save(store: ImageStore, names_or_ids: list[str], out: BinaryIO) -> None:
    """Write the images ``names_or_ids`` to ``out`` as a docker-archive that is also an
    OCI image layout. A name keeps that name in the archive; a repository name without a
    tag (``busybox``) keeps every tag of it; an image ID keeps no name (as Docker)."""
    if not names_or_ids:
        raise InvalidArgument("nothing to save: name at least one image")
    selected: dict[str, tuple[Image, list[str]]] = {}
    for wanted in names_or_ids:
        for image, names in _select(store, wanted):
            entry = selected.setdefault(image.manifest_digest, (image, []))
            entry[1].extend(n for n in names if n not in entry[1])
    blobs: dict[str, None] = {}
    docker_manifest: list[dict[str, Any]] = []
    repositories: dict[str, dict[str, str]] = {}
    index: list[dict[str, Any]] = []
    for image, names in selected.values():
        layers = [str(d["digest"]) for d in image.layers]
        for digest in (*layers, image.id, image.manifest_digest):
            blobs[digest] = None
        refs = [reference.parse(n) for n in names]
        docker_manifest.append({"Config": _blob_name(image.id),
                                "RepoTags": [r.familiar for r in refs],
                                "Layers": [_blob_name(d) for d in layers]})
        base = {"mediaType": image.manifest.get("mediaType", OCI_MANIFEST),
                "digest": image.manifest_digest,
                "size": store.content.size(image.manifest_digest)}
        for ref in refs:
            if layers:
                repositories.setdefault(ref.familiar_name, {})[str(ref.tag)] = layers[-1][7:]
            index.append({**base, "annotations": {CONTAINERD_NAME: str(ref),
                                                  REF_NAME: str(ref.tag)}})
        if not refs:
            index.append(base)
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        _add_dir(tar, "blobs")
        _add_dir(tar, "blobs/sha256")
        for digest in blobs:
            with store.content.open(digest) as f:
                _add_file(tar, _blob_name(digest), f, store.content.size(digest))
        _add_bytes(tar, "oci-layout", OCI_LAYOUT)
        _add_bytes(tar, "index.json", _json({"schemaVersion": 2, "mediaType": OCI_INDEX,
                                             "manifests": index}))
        _add_bytes(tar, "manifest.json", _json(docker_manifest))
        if repositories:
            _add_bytes(tar, "repositories", _json(repositories))


def _select(store: ImageStore, wanted: str) -> list[tuple[Image, list[str]]]:
    """The images ``wanted`` names, each with the names to save it under."""
    try:
        ref = reference.parse(wanted)
    except InvalidArgument:
        ref = None
    if ref is not None and ref.digest is None and ":" not in wanted.rpartition("/")[2]:
        # a repository without a tag: every tag of it, as `docker save busybox` does
        found = [(image, [n for n in image.references
                          if reference.parse(n).name == ref.name])
                 for image in store.images()]
        found = [(image, names) for image, names in found if names]
        if found:
            return found
    image = store.get(wanted)
    if ref is not None and ref.digest is None and str(ref) in image.references:
        return [(image, [str(ref)])]
    return [(image, [])]


def _blob_name(digest: str) -> str:
    return "blobs/sha256/" + check_digest(digest)[7:]


def _json(value: object) -> bytes:
    return json.dumps(value, separators=(",", ":")).encode()


def _info(name: str, kind: bytes, size: int = 0) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type, info.size, info.mtime = kind, size, 0
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    info.uname = info.gname = ""
    return info


def _add_dir(tar: tarfile.TarFile, name: str) -> None:
    tar.addfile(_info(name, tarfile.DIRTYPE))


def _add_bytes(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    tar.addfile(_info(name, tarfile.REGTYPE, len(data)), io.BytesIO(data))


def _add_file(tar: tarfile.TarFile, name: str, f: IO[bytes], size: int) -> None:
    tar.addfile(_info(name, tarfile.REGTYPE, size), f)


# --------------------------------------------------------------------------------------
# reading an archive safely


def _clean_name(raw: str) -> str:
    if "\0" in raw:
        raise ArchiveError(f"archive member {raw!r}: a NUL byte in a name is refused")
    if raw.startswith("/"):
        raise ArchiveError(f"archive member {raw!r}: an absolute path is refused")
    parts = [p for p in raw.split("/") if p not in ("", ".")]
    if ".." in parts:
        raise ArchiveError(f"archive member {raw!r}: path traversal ('..') is refused")
    return "/".join(parts)


class _Archive:
    """The checked members of a plain tar file, read by offset; never extracted."""

    def __init__(self, f: BinaryIO) -> None:
        self.f = f
        self.files: dict[str, tuple[int, int]] = {}
        self.aliases: dict[str, str] = {}
        end = f.seek(0, os.SEEK_END)
        f.seek(0)
        links: dict[str, str] = {}
        try:
            # headers only; it does not own f and holds nothing to close
            tar = tarfile.open(fileobj=f, mode="r:")  # noqa: SIM115
        except tarfile.TarError as exc:
            raise ArchiveError(f"not a tar archive: {exc}") from None
        count = 0
        while True:
            try:
                member = tar.next()
            except tarfile.TarError as exc:
                raise ArchiveError(f"archive is truncated or malformed: {exc}") from None
            if member is None:
                break
            count += 1
            if count > MAX_MEMBERS:
                raise ArchiveError(f"archive has more than {MAX_MEMBERS} members")
            name = _clean_name(member.name)
            if member.isdir():
                continue
            if not name:
                raise ArchiveError(f"archive member {member.name!r} has no name")
            if name in self.files or name in links:
                raise ArchiveError(f"archive member {name!r} appears twice")
            if member.issym():
                links[name] = member.linkname
            elif member.islnk():
                raise ArchiveError(f"archive member {name!r} is a hardlink (to "
                                   f"{member.linkname!r}); links are refused in an image "
                                   "archive")
            elif not member.isreg() or member.issparse():
                raise ArchiveError(f"archive member {name!r} is a device, fifo or sparse "
                                   "file; only files and directories belong in an image "
                                   "archive")
            else:
                if member.size > MAX_MEMBER:
                    raise ArchiveError(f"archive member {name!r} declares {member.size} "
                                       f"bytes, more than the limit of {MAX_MEMBER}")
                if member.offset_data + member.size > end:
                    raise ArchiveError(f"archive is truncated: member {name!r} declares "
                                       f"{member.size} bytes, the file ends before")
                self.files[name] = (member.offset_data, member.size)
        # POSIX: the archive ends with two zero blocks; without them it was cut short
        f.seek(tar.offset)
        if f.read(1024) != bytes(1024):
            raise ArchiveError("archive is truncated: no end-of-archive marker after "
                               f"{len(self.files)} files")
        for name, target in links.items():
            self.aliases[name] = self._alias(name, target)

    def _alias(self, name: str, target: str) -> str:
        """docker save (20.10) links a layer.tar it already wrote under another ID; any
        other link, or one leading out of the archive, is refused."""
        if posixpath.basename(name) != "layer.tar" or target.startswith("/"):
            raise ArchiveError(f"archive member {name!r} is a symlink (to {target!r}); "
                               "links are refused in an image archive")
        joined = posixpath.normpath(posixpath.join(posixpath.dirname(name), target))
        if joined.startswith("../") or joined == ".." or joined not in self.files:
            raise ArchiveError(f"archive member {name!r} is a symlink to {target!r}, "
                               "which is not a file in the archive")
        return joined

    def has(self, name: str) -> bool:
        return name in self.files or name in self.aliases

    def member(self, name: str) -> tuple[int, int]:
        name = self.aliases.get(name, name)
        try:
            return self.files[name]
        except KeyError:
            raise ArchiveError(f"the archive has no file {name!r}, which its manifest "
                               "refers to") from None

    def read(self, name: str, limit: int = MAX_JSON) -> bytes:
        offset, size = self.member(name)
        if size > limit:
            raise ArchiveError(f"archive member {name!r} is {size} bytes, more than the "
                               f"limit of {limit} for a JSON document")
        self.f.seek(offset)
        return self.f.read(size)

    def chunks(self, name: str) -> Iterator[bytes]:
        offset, size = self.member(name)
        while size:
            self.f.seek(offset)
            data = self.f.read(min(size, _CHUNK))
            if not data:
                raise ArchiveError(f"archive is truncated inside {name!r}")
            offset += len(data)
            size -= len(data)
            yield data

    def json(self, name: str, limit: int = MAX_JSON) -> tuple[Any, bytes]:
        data = self.read(name, limit)
        try:
            return json.loads(data), data
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"{name} is not valid JSON: {exc}") from None


class _Prefixed(io.RawIOBase):
    """``head`` then the rest of ``stream``: a stream whose first bytes were peeked."""

    def __init__(self, head: bytes, stream: IO[bytes]) -> None:
        self.head = head
        self.stream = stream

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        if self.head:
            n = min(len(view), len(self.head))
            view[:n] = self.head[:n]
            self.head = self.head[n:]
            return n
        data = self.stream.read(len(view))
        view[:len(data)] = data
        return len(data)


def _decompressing(stream: IO[bytes]) -> tuple[IO[bytes], str]:
    """``stream`` decompressed (gzip, bzip2, xz detected by magic), and the compression."""
    head = stream.read(6)
    raw = io.BufferedReader(_Prefixed(head, stream), _CHUNK)
    if head.startswith(_MAGIC_GZIP):
        return io.BufferedReader(_Gzip(raw), _CHUNK), "gzip"
    if head.startswith(_MAGIC_BZIP2):
        return bz2.BZ2File(raw), "bzip2"
    if head.startswith(_MAGIC_XZ):
        return lzma.LZMAFile(raw), "xz"
    if head.startswith(_MAGIC_ZSTD):
        raise ArchiveError("zstd-compressed archives are not supported; decompress first")
    return raw, "none"


class _Gzip(io.RawIOBase):
    """A gzip stream (concatenated members too) decompressed, at most ``n`` bytes of
    output per read: a small input cannot balloon memory."""

    def __init__(self, raw: IO[bytes]) -> None:
        self.raw = raw
        self.z = zlib.decompressobj(wbits=31)

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer).cast("B")
        while True:
            if self.z.eof:
                source = self.z.unused_data or self.raw.read(_CHUNK)
                if not source:
                    return 0
                self.z = zlib.decompressobj(wbits=31)
            elif self.z.unconsumed_tail:
                source = self.z.unconsumed_tail
            else:
                source = self.raw.read(_CHUNK)
                if not source:
                    raise ArchiveError("gzip stream is truncated")
            data = self._inflate(source, len(view))
            if data:
                view[:len(data)] = data
                return len(data)

    def _inflate(self, chunk: bytes, n: int) -> bytes:
        try:
            return self.z.decompress(chunk, n)
        except zlib.error as exc:
            raise ArchiveError(f"gzip stream is corrupt: {exc}") from None


def _spool(stream: BinaryIO, directory: str) -> tuple[BinaryIO, bool]:
    """A seekable plain tar of ``stream``: the stream itself when it already is one,
    else an unlinked temporary file in ``directory`` (True: ours to close)."""
    seekable = False
    with contextlib.suppress(OSError, AttributeError, ValueError):
        seekable = stream.seekable()
    if seekable:
        start = stream.tell()
        head = stream.read(6)
        stream.seek(start)
        if not head.startswith((_MAGIC_GZIP, _MAGIC_BZIP2, _MAGIC_XZ, _MAGIC_ZSTD)):
            if start:
                raise ArchiveError("a seekable archive stream must be at its start")
            return stream, False
    plain, _ = _decompressing(stream)
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (returned to the caller)
    try:
        _copy_plain(plain, spool, MAX_ARCHIVE,
                    corrupt="compressed archive is corrupt or truncated",
                    too_big=f"archive is larger than {MAX_ARCHIVE} bytes")
        spool.seek(0)
    except BaseException:
        spool.close()
        raise
    return spool, True


def _copy_plain(plain: IO[bytes], out: IO[bytes], limit: int, *, corrupt: str,
                too_big: str) -> tuple[int, str]:
    """Copy a decompressing stream into ``out``, at most ``limit`` bytes; (size, sha256
    hex of what was copied). A corrupt stream or one over the limit is refused."""
    hasher = hashlib.sha256()
    size = 0
    while True:
        try:
            data = plain.read(_CHUNK)
        except (OSError, EOFError, lzma.LZMAError, zlib.error) as exc:
            raise ArchiveError(f"{corrupt}: {exc}") from None
        if not data:
            return size, hasher.hexdigest()
        size += len(data)
        if size > limit:
            raise ArchiveError(too_big)
        hasher.update(data)
        out.write(data)


class _LayerHash:
    """sha256 of a layer's bytes as given and of its uncompressed tar (the diff ID)."""

    def __init__(self, first: bytes) -> None:
        self.raw = hashlib.sha256()
        self.tar = hashlib.sha256()
        self.size = 0
        if first.startswith(_MAGIC_GZIP):
            self.compression = "gzip"
        elif first.startswith((_MAGIC_BZIP2, _MAGIC_XZ, _MAGIC_ZSTD)):
            raise ArchiveError("a layer compressed with bzip2, xz or zstd is not supported "
                               "in an archive (gzip or plain tar)")
        else:
            self.compression = "none"
        self.z = zlib.decompressobj(wbits=31)

    def update(self, data: bytes) -> None:
        self.raw.update(data)
        self.size += len(data)
        if self.compression == "none":
            self.tar.update(data)
            return
        pending = data
        try:
            while pending:
                if self.z.eof:
                    # concatenated gzip members are one stream (pigz writes them)
                    self.z = zlib.decompressobj(wbits=31)
                self.tar.update(self.z.decompress(pending, 4 << 20))
                pending = self.z.unused_data if self.z.eof else self.z.unconsumed_tail
        except zlib.error as exc:
            raise ArchiveError(f"layer is not a valid gzip stream: {exc}") from None

    def finish(self) -> tuple[str, str]:
        if self.compression == "gzip" and not self.z.eof:
            raise ArchiveError("layer's gzip stream is truncated")
        return "sha256:" + self.raw.hexdigest(), "sha256:" + self.tar.hexdigest()


# --------------------------------------------------------------------------------------
# load


class _Planned:
    """One image to record: its manifest (bytes as it will be stored), config and names."""

    def __init__(self, manifest: bytes, config: bytes, layers: list[_Layer],
                 names: list[str]) -> None:
        self.manifest = manifest
        self.config = config
        self.layers = layers
        self.names = names


class _Layer:
    def __init__(self, member: str, diff_id: str, digest: str | None,
                 size: int | None) -> None:
        self.member = member
        self.diff_id = diff_id
        self.digest = digest
        self.size = size
        self.compression = "none"


class _Loader:
    def __init__(self, store: ImageStore, archive: _Archive, progress: Progress | None):
        self.store = store
        self.archive = archive
        self.progress = progress
        self.created: list[str] = []
        self.done: dict[str, _Layer] = {}

    def _emit(self, event: dict[str, Any]) -> None:
        if self.progress is not None:
            self.progress(event)

    # -- planning: every JSON document parsed and its digests checked, nothing written --
    def plan(self) -> list[_Planned]:
        a = self.archive
        if a.has("index.json"):
            return self._plan_oci()
        if a.has("manifest.json"):
            return self._plan_docker()
        if a.has("repositories"):
            raise ArchiveError("this is a legacy (pre-1.10) docker save archive without "
                               "manifest.json; it is not supported")
        raise ArchiveError("not an image archive: neither manifest.json nor index.json "
                           "found")

    def _plan_docker(self) -> list[_Planned]:
        manifest, _ = self.archive.json("manifest.json")
        if not isinstance(manifest, list) or not manifest:
            raise ArchiveError("manifest.json must be a non-empty JSON list of images")
        if len(manifest) > MAX_IMAGES:
            raise ArchiveError(f"manifest.json lists more than {MAX_IMAGES} images")
        planned = []
        for i, entry in enumerate(manifest):
            where = f"manifest.json[{i}]"
            if not isinstance(entry, dict) or not isinstance(entry.get("Config"), str) \
                    or not isinstance(entry.get("Layers"), list) \
                    or not all(isinstance(x, str) for x in entry["Layers"]):
                raise ArchiveError(f"{where} needs a Config path and a list of Layers paths")
            tags = entry.get("RepoTags") or []
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise ArchiveError(f"{where}: RepoTags must be a list of names")
            config_path = _clean_name(entry["Config"])
            config_data = self.archive.read(config_path)
            config_digest = sha256_of(config_data)
            named = _BLOB_PATH.fullmatch(config_path) or re.fullmatch(
                r"([0-9a-f]{64})\.json", config_path)
            if named and named.group(1) != config_digest[7:]:
                raise ArchiveError(f"{where}: config {config_path} does not match its digest "
                                   f"(content is {config_digest})")
            diff_ids = _diff_ids(config_data, where)
            paths = [_clean_name(p) for p in entry["Layers"]]
            if len(paths) != len(diff_ids):
                raise ArchiveError(f"{where}: the config lists {len(diff_ids)} layers "
                                   f"(rootfs.diff_ids), manifest.json {len(paths)}")
            layers = []
            for path, diff_id in zip(paths, diff_ids, strict=True):
                self.archive.member(path)
                m = _BLOB_PATH.fullmatch(path)
                layers.append(_Layer(path, diff_id, f"sha256:{m.group(1)}" if m else None,
                                     None))
            names = [_tag_name(t, where) for t in tags]
            planned.append(_Planned(b"", config_data, layers, names))
        return planned

    def _plan_oci(self) -> list[_Planned]:
        layout = "oci-layout"
        if self.archive.has(layout):
            value, _ = self.archive.json(layout, 64 << 10)
            if not isinstance(value, dict) or not isinstance(
                    value.get("imageLayoutVersion"), str):
                raise ArchiveError("oci-layout must hold an imageLayoutVersion")
        index, _ = self.archive.json("index.json")
        descriptors = _index_manifests(index, "index.json")
        docker_tags = self._docker_tags()
        planned: list[_Planned] = []
        by_digest: dict[str, _Planned] = {}
        for i, desc in enumerate(descriptors):
            where = f"index.json manifests[{i}]"
            platform = desc.get("platform")
            if isinstance(platform, dict) and not _is_platform(platform):
                continue
            names = _oci_names(desc, where)
            seen = by_digest.get(str(desc.get("digest")))
            if seen is not None:
                # one image under several names: one descriptor per name
                seen.names.extend(n for n in names if n not in seen.names)
                continue
            manifest_data = self._pick(desc, where, 0)
            manifest = parse_manifest(manifest_data)
            config_desc = manifest["config"]
            config_data = self._blob(config_desc, f"{where} config", MAX_JSON)
            if not names:
                names = docker_tags.get(config_desc["digest"], [])
            diff_ids = _diff_ids(config_data, where)
            if len(diff_ids) != len(manifest["layers"]):
                raise ArchiveError(f"{where}: the config lists {len(diff_ids)} layers "
                                   f"(rootfs.diff_ids), the manifest "
                                   f"{len(manifest['layers'])}")
            layers = []
            for desc_l, diff_id in zip(manifest["layers"], diff_ids, strict=True):
                path = _blob_name(desc_l["digest"])
                self.archive.member(path)
                layers.append(_Layer(path, diff_id, desc_l["digest"], desc_l["size"]))
            planned.append(_Planned(manifest_data, config_data, layers, names))
            by_digest[str(desc.get("digest"))] = planned[-1]
        if not planned:
            raise ArchiveError("index.json holds no linux/amd64 image")
        return planned

    def _docker_tags(self) -> dict[str, list[str]]:
        """Config digest -> names from manifest.json, for OCI descriptors without names."""
        if not self.archive.has("manifest.json"):
            return {}
        manifest, _ = self.archive.json("manifest.json")
        out: dict[str, list[str]] = {}
        if not isinstance(manifest, list):
            raise ArchiveError("manifest.json must be a JSON list of images")
        for i, entry in enumerate(manifest):
            m = _BLOB_PATH.fullmatch(_clean_name(str((entry or {}).get("Config"))))
            tags = (entry or {}).get("RepoTags") or []
            if m and isinstance(tags, list):
                out["sha256:" + m.group(1)] = [_tag_name(str(t), f"manifest.json[{i}]")
                                               for t in tags]
        return out

    def _blob(self, desc: dict[str, Any], where: str, limit: int) -> bytes:
        digest = check_digest(str(desc.get("digest")))
        path = _blob_name(digest)
        if not self.archive.has(path):
            raise ArchiveError(f"{where} points at {digest}, which is missing from the "
                               "archive")
        data = self.archive.read(path, limit)
        if sha256_of(data) != digest:
            raise ArchiveError(f"{where}: blob {path} does not match its digest {digest}")
        if desc.get("size") != len(data):
            raise ArchiveError(f"{where}: blob {digest} is {len(data)} bytes, its descriptor "
                               f"says {desc.get('size')!r}")
        return data

    def _pick(self, desc: dict[str, Any], where: str, depth: int) -> bytes:
        """The image manifest ``desc`` names, through nested indexes (linux/amd64)."""
        if depth > MAX_INDEX_DEPTH:
            raise ArchiveError(f"{where}: indexes nested deeper than {MAX_INDEX_DEPTH}")
        data = self._blob(desc, where, MAX_MANIFEST)
        try:
            value = json.loads(data)
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArchiveError(f"{where}: manifest is not valid JSON: {exc}") from None
        is_index = desc.get("mediaType") in INDEXES or (
            isinstance(value, dict) and (value.get("mediaType") in INDEXES
                                         or ("manifests" in value and "layers" not in value)))
        if not is_index:
            return data
        manifests = _index_manifests(value, where)
        matching = [d for d in manifests if isinstance(d.get("platform"), dict)
                    and _is_platform(d["platform"])]
        if not matching and len(manifests) == 1 and "platform" not in manifests[0]:
            matching = manifests
        if not matching:
            raise ArchiveError(f"{where}: the image index has no linux/amd64 manifest")
        return self._pick(matching[0], f"{where} -> {matching[0].get('digest')}", depth + 1)

    # -- writing: layers, then configs and manifests, then the images ------------------
    def write(self, planned: list[_Planned]) -> list[str]:
        total = sum(len(p.layers) for p in planned)
        count = 0
        for image in planned:
            for layer in image.layers:
                count += 1
                self._layer(layer, count, total)
        loaded: list[str] = []
        manifests: list[tuple[_Planned, bytes]] = []
        for image in planned:
            self._put(image.config)
            manifest = image.manifest or self._manifest_for(image)
            manifests.append((image, manifest))
        for _image, manifest in manifests:
            digest = sha256_of(manifest)
            if not self.store.content.has(digest):
                self.created.append(digest)
        # every image of the archive goes on record in one index write: all or none
        records = self.store.add_many([(manifest, list(image.names))
                                       for image, manifest in manifests])
        self.created = []   # images on record own their blobs now
        for (image, _manifest), recorded in zip(manifests, records, strict=True):
            names = [reference.parse(n).familiar for n in image.names]
            for name in names:
                self._emit({"stream": f"Loaded image: {name}\n"})
            if not names:
                self._emit({"stream": f"Loaded image ID: {recorded.id}\n"})
            loaded += names or [recorded.id]
        return loaded

    def _put(self, data: bytes) -> str:
        digest = sha256_of(data)
        if not self.store.content.has(digest):
            self.store.content.put(data)
            self.created.append(digest)
        return digest

    def _manifest_for(self, image: _Planned) -> bytes:
        """A manifest for an image that came without one (docker save's format): OCI
        media types, as ImageStore.create writes."""
        layers = []
        for layer in image.layers:
            done = self.done[layer.member]
            media = OCI_LAYER_GZIP if done.compression == "gzip" else OCI_LAYER
            layers.append({"mediaType": media, "size": done.size, "digest": done.digest})
        manifest = {"schemaVersion": 2, "mediaType": OCI_MANIFEST,
                    "config": {"mediaType": OCI_CONFIG, "size": len(image.config),
                               "digest": sha256_of(image.config)},
                    "layers": layers}
        return json.dumps(manifest, indent=3).encode()

    def _layer(self, layer: _Layer, count: int, total: int) -> None:
        """Stream one layer member into the store, checking its digest and diff ID."""
        done = self.done.get(layer.member)
        if done is not None:
            if done.diff_id != layer.diff_id:
                raise ArchiveError(f"layer {layer.member} has diff ID {done.diff_id}, the "
                                   f"config says {layer.diff_id}")
            return
        content = self.store.content
        _, size = self.archive.member(layer.member)
        if layer.size is not None and layer.size != size:
            raise ArchiveError(f"layer {layer.member} is {size} bytes, its descriptor says "
                               f"{layer.size}")
        short = (layer.digest or layer.diff_id)[7:19]
        present = layer.digest is not None and content.has(layer.digest) \
            and content.size(layer.digest) == size
        current = 0
        hasher: _LayerHash | None = None
        with contextlib.ExitStack() as stack:
            writer = None if present else stack.enter_context(content.writer(None, size))
            for data in self.archive.chunks(layer.member):
                if hasher is None:
                    hasher = _LayerHash(data)
                hasher.update(data)
                if writer is not None:
                    writer.write(data)
                current += len(data)
                self._emit({"status": "Loading layer", "id": short,
                            "progressDetail": {"current": current, "total": size}})
            if hasher is None:
                hasher = _LayerHash(b"")
            digest, diff_id = hasher.finish()
            if layer.digest is not None and digest != layer.digest:
                raise ArchiveError(f"layer {layer.member} does not match its digest: "
                                   f"expected {layer.digest}, got {digest}")
            if diff_id != layer.diff_id:
                raise ArchiveError(f"layer {layer.member}: its diff ID is {diff_id}, the "
                                   f"image config's rootfs.diff_ids says {layer.diff_id}")
            if writer is not None:
                if content.has(digest):
                    writer.abort()
                else:
                    writer.commit()
                    self.created.append(digest)
        layer.digest, layer.size, layer.compression = digest, size, hasher.compression
        self.done[layer.member] = layer

    def rollback(self) -> None:
        for digest in self.created:
            self.store.content.delete(digest)


def _diff_ids(config_data: bytes, where: str) -> list[str]:
    try:
        config = json.loads(config_data)
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArchiveError(f"{where}: the image config is not valid JSON: {exc}") from None
    if not isinstance(config, dict):
        raise ArchiveError(f"{where}: the image config must be a JSON object")
    rootfs = config.get("rootfs")
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list):
        raise ArchiveError(f"{where}: the image config has no rootfs.diff_ids")
    if len(diff_ids) > MAX_LAYERS:
        raise ArchiveError(f"{where}: more than {MAX_LAYERS} layers")
    try:
        return [check_digest(str(d)) for d in diff_ids]
    except InvalidArgument as exc:
        raise ArchiveError(f"{where}: rootfs.diff_ids: {exc.message}") from None


def _index_manifests(index: Any, where: str) -> list[dict[str, Any]]:
    if not isinstance(index, dict) or not isinstance(index.get("manifests"), list) \
            or not all(isinstance(d, dict) for d in index["manifests"]):
        raise ArchiveError(f"{where} must be an image index with a manifests list")
    if len(index["manifests"]) > MAX_IMAGES:
        raise ArchiveError(f"{where} lists more than {MAX_IMAGES} manifests")
    return list(index["manifests"])


def _is_platform(platform: dict[str, Any]) -> bool:
    return (platform.get("os"), platform.get("architecture")) == PLATFORM


def _tag_name(name: str, where: str) -> str:
    try:
        ref = reference.parse(name)
    except InvalidArgument as exc:
        raise ArchiveError(f"{where}: invalid image name {name!r}: {exc.message}") from None
    if ref.digest is not None:
        raise ArchiveError(f"{where}: {name!r} is a digest reference, not a tag")
    return str(ref)


def _oci_names(desc: dict[str, Any], where: str) -> list[str]:
    """containerd's full name, else a ref.name that is a whole reference (``repo:tag``);
    a bare ref.name (``latest``) is only a tag and names nothing."""
    annotations = desc.get("annotations") or {}
    if not isinstance(annotations, dict):
        raise ArchiveError(f"{where}: annotations must be an object")
    for key in (CONTAINERD_NAME, REF_NAME):
        value = annotations.get(key)
        if not isinstance(value, str) or not value:
            continue
        if key == REF_NAME and not any(c in value for c in ":/"):
            continue
        try:
            ref = reference.parse(value)
        except InvalidArgument as exc:
            raise ArchiveError(f"{where}: invalid image name {value!r}: {exc.message}") \
                from None
        return [] if ref.digest is not None else [str(ref)]
    return []


def load(store: ImageStore, stream: BinaryIO,
         progress: Progress | None = None) -> list[str]:
    """Load the images of a docker-archive or OCI archive; their names as the docker CLI
    shows them (``busybox:latest``), or the image ID of an image without a name."""
    archive_file, owned = _spool(stream, store.root)
    try:
        archive = _Archive(archive_file)
        loader = _Loader(store, archive, progress)
        planned = loader.plan()
        try:
            return loader.write(planned)
        except BaseException:
            loader.rollback()
            raise
    except DigestMismatch as exc:
        raise ArchiveError(exc.message) from None
    finally:
        if owned:
            archive_file.close()


# --------------------------------------------------------------------------------------
# import and history


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def import_rootfs(store: ImageStore, stream: BinaryIO, names: list[str],
                  changes: dict[str, Any] | None = None, *,
                  message: str = IMPORT_COMMENT) -> Image:
    """``docker import``: a root filesystem tarball (plain, gzip, bzip2 or xz) becomes a
    one-layer image. ``changes`` are keys of the image config's ``config`` (``Cmd``,
    ``Env``, ``WorkingDir`` ...), as ``docker import --change`` sets them."""
    full = [_tag_name(n, "import") for n in names]
    settings: dict[str, Any] = {}
    for key, value in (changes or {}).items():
        kind = CONFIG_KEYS.get(key)
        if kind is None:
            raise InvalidArgument(f"import: unknown config change {key!r} (one of "
                                  f"{', '.join(sorted(CONFIG_KEYS))})")
        if not isinstance(value, kind):
            raise InvalidArgument(f"import: {key} must be a {kind.__name__}")
        settings[key] = value
    content = store.content
    plain, _ = _decompressing(stream)
    with tempfile.TemporaryFile(dir=store.root) as spool:
        size, hexdigest = _copy_plain(plain, spool, MAX_MEMBER,
                                      corrupt="import: compressed stream is corrupt",
                                      too_big=f"import: the tarball is larger than "
                                              f"{MAX_MEMBER}")
        _check_rootfs(spool)
        diff_id = "sha256:" + hexdigest
        existed = content.has(diff_id)
        spool.seek(0)
        content.ingest(spool, diff_id, size)
    created = _now()
    config = {"architecture": PLATFORM[1], "os": PLATFORM[0], "created": created,
              "comment": message, "config": settings,
              "rootfs": {"type": "layers", "diff_ids": [diff_id]},
              "history": [{"created": created, "comment": message}]}
    try:
        return store.create(config, [{"mediaType": DOCKER_LAYER, "size": size,
                                      "digest": diff_id}], full)
    except BaseException:
        if not existed:
            content.delete(diff_id)
        raise


def _check_rootfs(spool: BinaryIO) -> None:
    """A root filesystem tarball must be a whole tar whose names stay inside the root
    (links and devices are fine: the layer extractor handles them)."""
    spool.seek(0)
    try:
        tar = tarfile.open(fileobj=spool, mode="r:")  # noqa: SIM115 (headers only)
        while (member := tar.next()) is not None:
            try:
                _clean_name(member.name)
            except ArchiveError as exc:
                raise InvalidArgument(f"import: {exc.message}") from None
        spool.seek(tar.offset)
        if spool.read(1024) != bytes(1024):
            raise InvalidArgument("import: the tarball is truncated (no end-of-archive "
                                  "marker)")
    except tarfile.TarError as exc:
        raise InvalidArgument(f"import: not a tar archive: {exc}") from None


_TIME = re.compile(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(?:\.\d+)?(Z|[+-]\d\d:\d\d)$")


def unix_time(created: object) -> int:
    """RFC 3339 (any fraction of a second) -> unix seconds; 0 when absent or bad."""
    if not isinstance(created, str):
        return 0
    m = _TIME.match(created.strip())
    if m is None:
        return 0
    zone = "+00:00" if m.group(2) == "Z" else m.group(2)
    return int(datetime.datetime.fromisoformat(m.group(1) + zone).timestamp())


def history(image: Image) -> list[dict[str, Any]]:
    """Docker's ``GET /images/{name}/history``: one entry per history record, newest
    first. The newest carries the image ID and its tags; older ones ``<missing>`` (we
    keep no parent images). ``Size`` is the layer's size as stored (0 for an empty-layer
    record)."""
    raw = image.config.get("history") or []
    layers = image.layers
    entries: list[dict[str, Any]] = []
    n = 0
    for h in raw if isinstance(raw, list) else []:
        h = h if isinstance(h, dict) else {}
        size = 0
        if not h.get("empty_layer"):
            if n < len(layers):
                size = int(layers[n]["size"])
            n += 1
        entries.append({"Id": "<missing>", "Created": unix_time(h.get("created")),
                        "CreatedBy": str(h.get("created_by") or ""), "Tags": None,
                        "Size": size, "Comment": str(h.get("comment") or "")})
    entries.reverse()
    if entries:
        tags = [reference.parse(r).familiar for r in image.references
                if reference.parse(r).tag is not None]
        entries[0]["Id"] = image.id
        entries[0]["Tags"] = tags or None
    return entries


__all__ = ["ArchiveError", "history", "import_rootfs", "load", "save"]
