"""Snapshots: every image layer unpacked once, in overlayfs form, shared by every image
and container that uses it; containers get a writable layer on top.

On disk, under ``ROOT`` (``DATA_ROOT/snapshots``), 0700::

    layers/<chain hex>/fs          the layer, extracted with overlay whiteouts
    layers/<chain hex>/link        its short name (8 characters)
    layers/<chain hex>/meta.json   chain ID, diff ID, parent chain ID, bytes on disk
    l/<short name> -> ../layers/<chain hex>/fs
    containers/<key>/upper, work   a prepared container's writable layer
    containers/<key>/meta.json     the chain it sits on (what keeps its layers alive)
    empty/                         an empty lower (an image with fewer than two layers)
    tmp/                           extractions in progress
    locks/<chain hex>              one unpacker at a time per layer
    lock                           shared by unpack/prepare, exclusive for gc/remove

A layer is keyed by its chain ID (OCI image spec: ``chainID(L1) = diffID(L1)``,
``chainID(Ln) = sha256(chainID(Ln-1) + " " + diffID(Ln))``), so a layer directory holds
exactly one content on exactly one parent chain.

Invariants:

* A layer directory is visible only complete: it is extracted into ``tmp/``, its diff ID
  checked against the image config, flushed (syncfs) and then renamed into ``layers/``.
  A crash leaves at most a directory in ``tmp/`` (removed by :meth:`Snapshotter.gc`) or a
  dangling ``l/`` link (likewise); concurrent unpackers of one layer serialise on its
  lock file, and the second finds the first one's result.
* The mount data stays short: lower directories are named through ``l/<8 chars>`` and
  the mount is made from a thread whose working directory is ``ROOT`` (a private
  ``fs_struct``, so the process's own working directory never changes), which keeps
  every lower to 11 bytes: 128 layers take 1.4 KiB of the 4 KiB page, and the page
  allows about 350 layers, below overlayfs's own stack limit of 500.
* A layer is removed only by :meth:`gc`, and only when no image in the store and no
  prepared container refers to its chain.
"""

from __future__ import annotations

import ctypes
import fcntl
import hashlib
import json
import os
import secrets
import threading
import uuid
from dataclasses import dataclass, field
from typing import Any, Final

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.image.content import DigestMismatch, check_digest
from longboat.image.layer import apply_layer
from longboat.image.store import Image
from longboat.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

    from longboat.image.store import ImageStore

#: overlayfs refuses more lower layers than this (OVL_MAX_STACK, fs/overlayfs/params.h).
MAX_LOWER_LAYERS: Final = 500
_CLONE_FS: Final = 0x00000200
_SHORT_ALPHABET: Final = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_SHORT_LEN: Final = 8
_KEY_CHARS: Final = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                              "0123456789_.-")
#: Options that keep the upper directory expressible as a layer (layer_diff refuses
#: redirects and metacopy) whatever the host's overlay module defaults are.
_OVERLAY_OPTIONS: Final = ("index=off", "redirect_dir=off", "metacopy=off")


def chain_ids(diff_ids: Sequence[str]) -> list[str]:
    """The chain ID of every layer of an image, bottom first (OCI image spec)."""

    out: list[str] = []
    for diff_id in diff_ids:
        check_digest(diff_id)
        if not out:
            out.append(diff_id)
        else:
            out.append("sha256:" + hashlib.sha256(f"{out[-1]} {diff_id}".encode())
                       .hexdigest())
    return out


def _check_key(key: str) -> str:
    if not key or len(key) > 128 or not _KEY_CHARS.issuperset(key) or key[0] == ".":
        raise InvalidArgument(f"invalid snapshot key {key!r}: 1 to 128 of [A-Za-z0-9_.-], "
                              "not starting with '.'")
    return key


def _syncfs(fd: int) -> None:
    libc_ = ctypes.CDLL(None, use_errno=True)
    if libc_.syncfs(fd) != 0:
        err = ctypes.get_errno()
        raise SystemFault(f"syncfs: {os.strerror(err)}")


def _disk_usage(path: str) -> int:
    """Bytes allocated below ``path``, each inode once (hardlinks), symlinks not followed."""
    # Iterative, directories opened from the top with no symlink on the way (os.walk
    # recurses one frame per level: a layer 1000 directories deep stopped it).
    from longboat.image.layer_paths import REAL_DIRS_ONLY, openat2

    seen: set[tuple[int, int]] = set()
    total = 0
    top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                fd = openat2(top, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                             REAL_DIRS_ONLY) if rel else top
            except FileNotFoundError:
                continue
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            st = entry.stat(follow_symlinks=False)
                        except FileNotFoundError:
                            continue
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(f"{rel}/{entry.name}" if rel else entry.name)
                        if (st.st_dev, st.st_ino) in seen:
                            continue
                        seen.add((st.st_dev, st.st_ino))
                        total += st.st_blocks * 512
            finally:
                if fd != top:
                    os.close(fd)
    finally:
        os.close(top)
    return total


def _rmtree(path: str) -> None:
    # Iterative and never following a symlink (shutil.rmtree recurses one frame per
    # level: a tree 1000 deep, which any container or build context can make, stopped it
    # at Python's recursion limit and leaked the snapshot).
    from longboat.image.layer_paths import rmtree

    parent, name = os.path.split(path.rstrip("/"))
    try:
        parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        rmtree(parent_fd, name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        raise SystemFault(f"removing {path}: {exc.strerror}") from exc
    finally:
        os.close(parent_fd)


def _in_directory(directory: str, work: Callable[[], None]) -> None:
    """Run ``work`` in a thread whose working directory is ``directory``.

    The thread first unshares its fs_struct (CLONE_FS), so its chdir does not move the
    rest of the process: relative paths in ``work`` resolve against ``directory`` and
    nothing else in a multi-threaded engine notices.
    """
    failure: list[BaseException] = []

    def run() -> None:
        try:
            libc.unshare(_CLONE_FS)
            os.chdir(directory)
            work()
        except BaseException as exc:
            failure.append(exc)

    thread = threading.Thread(target=run, name="snapshot-mount")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


class _Flock:
    def __init__(self, path: str, exclusive: bool) -> None:
        self.path = path
        self.operation = fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH
        self.fd = -1

    def __enter__(self) -> _Flock:
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        fcntl.flock(self.fd, self.operation)
        return self

    def __exit__(self, *exc: object) -> None:
        os.close(self.fd)  # closing drops the lock
        self.fd = -1


@dataclass(frozen=True)
class Mount:
    """What to mount for a snapshot: an overlay over ``lowerdirs`` (top first, relative
    to ``root``), with ``upperdir``/``workdir`` (also relative) unless read-only."""

    root: str
    lowerdirs: tuple[str, ...]
    upperdir: str | None = None
    workdir: str | None = None
    readonly: bool = False
    type: str = field(default="overlay")

    @property
    def options(self) -> list[str]:
        out = ["lowerdir=" + ":".join(self.lowerdirs)]
        if self.upperdir is not None and self.workdir is not None:
            out += [f"upperdir={self.upperdir}", f"workdir={self.workdir}"]
        if self.readonly:
            out.append("ro")
        return out + list(_OVERLAY_OPTIONS)

    @property
    def data(self) -> str:
        """The mount data string (relative paths: mount from ``root``)."""
        return ",".join(o for o in self.options if o != "ro")

    def check(self) -> None:
        """Refuse what the kernel would refuse, with a message that says why."""
        if len(self.lowerdirs) > MAX_LOWER_LAYERS:
            raise InvalidArgument(f"an image of {len(self.lowerdirs)} layers cannot be "
                                  f"mounted: overlayfs stacks at most {MAX_LOWER_LAYERS}")
        page = os.sysconf("SC_PAGE_SIZE")
        if len(self.data.encode()) + 1 > page:
            raise InvalidArgument(f"an image of {len(self.lowerdirs)} layers needs "
                                  f"{len(self.data)} bytes of overlay mount options, more "
                                  f"than the kernel's {page}")

    def mount(self, target: str) -> None:
        """Mount the overlay on ``target`` (a directory)."""
        self.check()
        target = os.path.abspath(target)
        flags = libc.MS_RDONLY if self.readonly else 0

        def do() -> None:
            libc.mount("overlay", target, "overlay", flags, self.data)

        try:
            _in_directory(self.root, do)
        except OSError as exc:
            raise SystemFault(f"mounting the overlay on {target}: {exc.strerror}") from exc

    @staticmethod
    def unmount(target: str) -> None:
        try:
            libc.umount2(os.path.abspath(target), 0)
        except OSError as exc:
            raise SystemFault(f"unmounting {target}: {exc.strerror}") from exc


class Snapshotter:
    """Unpacked layers and containers' writable layers under ``root``."""

    def __init__(self, root: str) -> None:
        self.root = os.path.abspath(root)
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        os.chmod(self.root, 0o700)
        for sub in ("layers", "l", "containers", "tmp", "locks", "empty"):
            os.makedirs(os.path.join(self.root, sub), mode=0o700, exist_ok=True)
        os.chmod(os.path.join(self.root, "empty"), 0o755)

    # -- paths and locks ---------------------------------------------------------------
    def _layer_dir(self, chain_id: str) -> str:
        return os.path.join(self.root, "layers", check_digest(chain_id)[7:])

    def _container_dir(self, key: str) -> str:
        return os.path.join(self.root, "containers", _check_key(key))

    def _lock(self, exclusive: bool) -> _Flock:
        return _Flock(os.path.join(self.root, "lock"), exclusive)

    def has(self, chain_id: str) -> bool:
        return os.path.isdir(os.path.join(self._layer_dir(chain_id), "fs"))

    def layer_path(self, chain_id: str) -> str:
        """The directory a layer is unpacked in (overlay form), or NotFound."""
        path = os.path.join(self._layer_dir(chain_id), "fs")
        if not os.path.isdir(path):
            raise NotFound(f"layer {chain_id} is not unpacked")
        return path

    def _short(self, chain_id: str) -> str:
        with open(os.path.join(self._layer_dir(chain_id), "link")) as f:
            return f.read().strip()

    # -- unpacking ---------------------------------------------------------------------
    def unpack(self, store: ImageStore, image: Image,
               progress: Callable[[str, str], None] | None = None) -> list[str]:
        """Make sure every layer of ``image`` is unpacked; its chain IDs, bottom first.

        ``progress(chain_id, state)`` is told "exists" or "unpacked" for each layer."""
        diff_ids = image.diff_ids
        layers = image.layers
        if len(diff_ids) != len(layers):
            raise InvalidArgument(f"image {image.id[7:19]}: its config lists "
                                  f"{len(diff_ids)} layers, its manifest {len(layers)}")
        chains = chain_ids(diff_ids)
        with self._lock(exclusive=False):
            parent = ""
            for chain, diff_id, desc in zip(chains, diff_ids, layers, strict=True):
                if self.has(chain):
                    state = "exists"
                else:
                    with _Flock(os.path.join(self.root, "locks", chain[7:]), exclusive=True):
                        if self.has(chain):
                            state = "exists"  # another unpacker finished it meanwhile
                        else:
                            self._unpack_one(store, chain, diff_id, parent, desc)
                            state = "unpacked"
                if progress is not None:
                    progress(chain, state)
                parent = chain
        return chains

    def _unpack_one(self, store: ImageStore, chain: str, diff_id: str, parent: str,
                    desc: dict[str, Any]) -> None:
        tmp = os.path.join(self.root, "tmp", uuid.uuid4().hex)
        os.mkdir(tmp, 0o700)
        link = ""
        try:
            fs = os.path.join(tmp, "fs")
            os.mkdir(fs, 0o755)
            with store.content.open(desc["digest"]) as blob:
                result = apply_layer(blob, fs, whiteouts="overlay")
            if result.digest != desc["digest"]:
                raise DigestMismatch(f"layer blob {desc['digest']} read as {result.digest}")
            if result.diff_id != diff_id:
                raise DigestMismatch(f"layer {desc['digest']} unpacks to diff ID "
                                     f"{result.diff_id}, the image config says {diff_id}")
            meta = {"chain_id": chain, "diff_id": diff_id, "parent": parent,
                    "digest": desc["digest"], "size": _disk_usage(fs)}
            link = self._new_link(chain)
            with open(os.path.join(tmp, "link"), "w") as f:
                f.write(link)
            with open(os.path.join(tmp, "meta.json"), "w") as f:
                json.dump(meta, f)
            fd = os.open(tmp, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
            try:
                _syncfs(fd)
            finally:
                os.close(fd)
            os.rename(tmp, self._layer_dir(chain))
        except BaseException:
            if link:
                try:
                    os.unlink(os.path.join(self.root, "l", link))
                except FileNotFoundError:
                    pass
            _rmtree(tmp)
            raise

    def _new_link(self, chain: str) -> str:
        """A fresh ``l/<8 chars>`` symlink to the layer's (future) directory."""
        target = os.path.join("..", "layers", chain[7:], "fs")
        for _ in range(100):
            name = "".join(secrets.choice(_SHORT_ALPHABET) for _ in range(_SHORT_LEN))
            try:
                os.symlink(target, os.path.join(self.root, "l", name))
            except FileExistsError:
                continue
            return name
        raise SystemFault(f"{self.root}/l: no free short name after 100 tries")

    # -- containers --------------------------------------------------------------------
    def _resolve_chain(self, image_or_chain: Image | Sequence[str]) -> list[str]:
        if isinstance(image_or_chain, str):
            raise InvalidArgument("pass an Image or a list of chain IDs, not a string")
        if isinstance(image_or_chain, Image):
            return chain_ids(image_or_chain.diff_ids)
        return [check_digest(c) for c in image_or_chain]

    def _mount_for(self, chains: Sequence[str], key: str | None, readonly: bool) -> Mount:
        lowers = [os.path.join("l", self._short(c)) for c in reversed(chains)]
        if key is None or readonly:
            # overlayfs needs two lowers without an upper: the empty one is invisible
            while len(lowers) < 2:
                lowers.append("empty")
            return Mount(self.root, tuple(lowers), readonly=True)
        if not lowers:
            lowers = ["empty"]
        base = os.path.join("containers", key)
        return Mount(self.root, tuple(lowers), os.path.join(base, "upper"),
                     os.path.join(base, "work"))

    def prepare(self, key: str, image_or_chain: Image | Sequence[str], *,
                readonly: bool = False) -> Mount:
        """A writable layer ``key`` over an unpacked chain (an Image or its chain IDs,
        bottom first); ``readonly`` makes a view instead (no upper). The chain's layers
        stay until :meth:`remove`."""
        container = self._container_dir(key)
        chains = self._resolve_chain(image_or_chain)
        with self._lock(exclusive=False):
            for chain in chains:
                if not self.has(chain):
                    raise NotFound(f"layer {chain} is not unpacked: unpack the image first")
            try:
                os.mkdir(container, 0o700)
            except FileExistsError:
                raise Conflict(f"snapshot {key!r} already exists") from None
            try:
                if not readonly:
                    os.mkdir(os.path.join(container, "upper"), 0o755)
                    os.mkdir(os.path.join(container, "work"), 0o700)
                mount = self._mount_for(chains, key, readonly)
                mount.check()
                tmp = os.path.join(container, "meta.json.tmp")
                with open(tmp, "w") as f:
                    json.dump({"key": key, "chain": chains, "readonly": readonly}, f)
                    f.flush()
                    os.fsync(f.fileno())
                os.rename(tmp, os.path.join(container, "meta.json"))
            except BaseException:
                _rmtree(container)
                raise
        return mount

    def _container_meta(self, key: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._container_dir(key), "meta.json")) as f:
                return dict(json.load(f))
        except FileNotFoundError:
            raise NotFound(f"no snapshot {key!r}") from None

    def mounts(self, key: str) -> Mount:
        """The mount of an existing snapshot (after a restart, say)."""
        meta = self._container_meta(key)
        return self._mount_for(meta["chain"], key, bool(meta["readonly"]))

    def view(self, chain: Image | Sequence[str]) -> Mount:
        """A read-only mount of a chain that records nothing: the caller keeps the image
        alive (and must not run :meth:`gc`) while it is mounted. For ``export``."""
        chains = self._resolve_chain(chain)
        for c in chains:
            self.layer_path(c)
        return self._mount_for(chains, None, True)

    def keys(self) -> list[str]:
        return sorted(name for name in os.listdir(os.path.join(self.root, "containers"))
                      if os.path.exists(os.path.join(self.root, "containers", name,
                                                     "meta.json")))

    def upper_path(self, key: str) -> str:
        """A container's upper directory (what a commit turns into a layer)."""
        if self._container_meta(key)["readonly"]:
            raise InvalidArgument(f"snapshot {key!r} is a read-only view")
        return os.path.join(self._container_dir(key), "upper")

    def remove(self, key: str) -> None:
        """Forget a container's snapshot (it must be unmounted); its layers stay for
        :meth:`gc`."""
        container = self._container_dir(key)
        with self._lock(exclusive=True):
            if not os.path.isdir(container):
                raise NotFound(f"no snapshot {key!r}")
            doomed = os.path.join(self.root, "tmp", "c-" + uuid.uuid4().hex)
            os.rename(container, doomed)
            _rmtree(doomed)

    # -- garbage -----------------------------------------------------------------------
    def layers(self) -> list[str]:
        return sorted("sha256:" + name
                      for name in os.listdir(os.path.join(self.root, "layers")))

    def gc(self, store: ImageStore) -> tuple[list[str], int]:
        """Remove layers no image in ``store`` and no snapshot uses, what crashed
        unpackers left, and dangling short links; (removed chain IDs, bytes freed)."""
        with self._lock(exclusive=True):
            keep: set[str] = set()
            for image in store.images():
                keep.update(chain_ids(image.diff_ids))
            for key in self.keys():
                keep.update(self._container_meta(key)["chain"])
            removed: list[str] = []
            freed = 0
            for chain in self.layers():
                if chain in keep:
                    continue
                layer = self._layer_dir(chain)
                freed += int(self._layer_meta(chain).get("size", 0))
                link = ""
                try:
                    link = self._short(chain)
                except FileNotFoundError:
                    pass
                doomed = os.path.join(self.root, "tmp", "gc-" + uuid.uuid4().hex)
                os.rename(layer, doomed)  # gone at once, even if the removal is cut short
                if link:
                    try:
                        os.unlink(os.path.join(self.root, "l", link))
                    except FileNotFoundError:
                        pass
                _rmtree(doomed)
                removed.append(chain)
            # no unpacker runs under the exclusive lock: whatever is in tmp/ is debris
            for name in os.listdir(os.path.join(self.root, "tmp")):
                _rmtree(os.path.join(self.root, "tmp", name))
            for name in os.listdir(os.path.join(self.root, "locks")):
                os.unlink(os.path.join(self.root, "locks", name))
            links = os.path.join(self.root, "l")
            for name in os.listdir(links):
                if not os.path.exists(os.path.join(links, name)):
                    os.unlink(os.path.join(links, name))
        return removed, freed

    def _layer_meta(self, chain: str) -> dict[str, Any]:
        try:
            with open(os.path.join(self._layer_dir(chain), "meta.json")) as f:
                return dict(json.load(f))
        except FileNotFoundError:
            return {}

    def usage(self) -> dict[str, Any]:
        """Bytes on disk: per layer (counted when it was unpacked), per container's
        writable layer (counted now), and the total."""
        users: dict[str, int] = {}
        containers = []
        for key in self.keys():
            meta = self._container_meta(key)
            for chain in meta["chain"]:
                users[chain] = users.get(chain, 0) + 1
            upper = os.path.join(self._container_dir(key), "upper")
            size = _disk_usage(upper) if os.path.isdir(upper) else 0
            containers.append({"key": key, "size": size, "chain": meta["chain"]})
        layers = []
        for chain in self.layers():
            meta = self._layer_meta(chain)
            layers.append({"chain_id": chain, "diff_id": meta.get("diff_id", ""),
                           "size": int(meta.get("size", 0)),
                           "containers": users.get(chain, 0)})
        total = sum(r["size"] for r in layers) + sum(c["size"] for c in containers)
        return {"layers": layers, "containers": containers, "total": total}

