"""Snapshots: layers unpacked once and shared, overlay mounts over long chains, container
layers, crash safety, concurrency and garbage collection, on a real kernel."""

from __future__ import annotations

import io
import multiprocessing
import os
import stat
from pathlib import Path
from typing import Any

import pytest

from longboat.errors import InvalidArgument, NotFound
from longboat.image import snapshot as snapshot_module
from longboat.image.content import DigestMismatch
from longboat.image.layer import make_layer
from longboat.image.snapshot import MAX_LOWER_LAYERS, Mount, Snapshotter, chain_ids
from longboat.image.store import DOCKER_LAYER_GZIP, Image, ImageStore

pytestmark = pytest.mark.integration

# A layer as a test writes it: path -> file content, WHITEOUT, OPAQUE (an opaque
# directory) or DIR.
WHITEOUT = object()
OPAQUE = object()
DIR = object()


def layer_blob(tmp: Path, files: dict[str, Any]) -> tuple[bytes, str]:
    """(gzip layer, diff ID) of a tree given in overlay form."""
    tree = tmp / f"tree-{len(list(tmp.iterdir()))}"
    tree.mkdir()
    for path, what in files.items():
        target = tree / path
        target.parent.mkdir(parents=True, exist_ok=True)
        if what is WHITEOUT:
            os.mknod(target, stat.S_IFCHR | 0o600, 0)
        elif what is OPAQUE or what is DIR:
            target.mkdir(exist_ok=True)
            if what is OPAQUE:
                os.setxattr(target, "trusted.overlay.opaque", b"y")
        else:
            target.write_text(str(what))
    # fixed times: the same files must give the same layer whenever the test runs
    # (mtimes are kept to the second; two layers made across a second boundary differ)
    for top, dirs, names in os.walk(tree):
        for name in [*dirs, *names]:
            os.utime(os.path.join(top, name), (1_000_000_000, 1_000_000_000),
                     follow_symlinks=False)
    os.utime(tree, (1_000_000_000, 1_000_000_000))
    out = io.BytesIO()
    result = make_layer(str(tree), out, compression="gzip")
    return out.getvalue(), result.diff_id


def make_image(store: ImageStore, tmp: Path, name: str,
               layers: list[dict[str, Any]], *, diff_ids: list[str] | None = None) -> Image:
    descriptors, ids = [], []
    work = tmp / "layer-trees"
    work.mkdir(exist_ok=True)
    for files in layers:
        blob, diff_id = layer_blob(work, files)
        digest = store.content.put(blob)
        descriptors.append({"mediaType": DOCKER_LAYER_GZIP, "size": len(blob),
                            "digest": digest})
        ids.append(diff_id)
    config = {"architecture": "amd64", "os": "linux", "config": {},
              "rootfs": {"type": "layers", "diff_ids": diff_ids or ids}}
    return store.create(config, descriptors, [name])


@pytest.fixture
def store(tmp_path: Path) -> ImageStore:
    return ImageStore(str(tmp_path / "image"))


@pytest.fixture
def snapshots(tmp_path: Path) -> Snapshotter:
    return Snapshotter(str(tmp_path / "snapshots"))


def test_chain_ids_follow_the_oci_spec():
    a, b = "sha256:" + "a" * 64, "sha256:" + "b" * 64
    import hashlib
    assert chain_ids([a, b]) == [a, "sha256:" + hashlib.sha256(f"{a} {b}".encode())
                                 .hexdigest()]
    with pytest.raises(InvalidArgument):
        chain_ids(["md5:00"])


def test_images_sharing_a_base_unpack_it_once(store, snapshots, tmp_path):
    base = {"etc/os-release": "base", "bin/tool": "x" * 5000}
    one = make_image(store, tmp_path, "one", [base, {"one": "1"}])
    two = make_image(store, tmp_path, "two", [base, {"two": "2"}])
    seen: list[tuple[str, str]] = []
    chains_one = snapshots.unpack(store, one)
    chains_two = snapshots.unpack(store, two, progress=lambda c, s: seen.append((c, s)))
    assert chains_one[0] == chains_two[0] == one.diff_ids[0]
    assert seen == [(chains_two[0], "exists"), (chains_two[1], "unpacked")]
    assert len(snapshots.layers()) == 3
    assert len(os.listdir(tmp_path / "snapshots" / "layers")) == 3
    # both containers see the same inode of the shared layer's file
    inodes = []
    for key, image in (("c1", one), ("c2", two)):
        mount = snapshots.prepare(key, image)
        target = tmp_path / f"m-{key}"
        target.mkdir()
        mount.mount(str(target))
        try:
            assert (target / "etc/os-release").read_text() == "base"
            inodes.append(os.stat(target / "bin/tool").st_ino)
        finally:
            Mount.unmount(str(target))
    shared = os.path.join(snapshots.layer_path(chains_one[0]), "bin/tool")
    assert os.stat(shared).st_nlink == 1
    assert inodes[0] == inodes[1]
    # unpacking again does nothing
    before = os.stat(snapshots.layer_path(chains_one[1])).st_ino
    snapshots.unpack(store, one)
    assert os.stat(snapshots.layer_path(chains_one[1])).st_ino == before


def test_image_of_128_layers_mounts_with_whiteouts_and_opaque_dirs(store, snapshots,
                                                                   tmp_path):
    layers: list[dict[str, Any]] = []
    for i in range(128):
        files: dict[str, Any] = {f"layers/{i:03d}": str(i), "top": str(i)}
        if i == 0:
            files |= {"gone/x": "lower", "keep": "lower", "opaque/old": "lower"}
        if i == 64:
            files["gone"] = WHITEOUT
        if i == 100:
            files["opaque"] = OPAQUE
            files["opaque/new"] = "100"
        layers.append(files)
    image = make_image(store, tmp_path, "tall", layers)
    snapshots.unpack(store, image)
    mount = snapshots.prepare("tall", image)
    assert len(mount.lowerdirs) == 128
    assert all(d.startswith("l/") and len(d) == 10 for d in mount.lowerdirs)
    assert len(mount.data) < 2048
    target = tmp_path / "merged"
    target.mkdir()
    cwd = os.getcwd()
    mount.mount(str(target))
    assert os.getcwd() == cwd  # the relative lowerdirs were resolved in a helper thread
    try:
        assert (target / "top").read_text() == "127"
        assert len(os.listdir(target / "layers")) == 128
        assert not (target / "gone").exists()
        assert os.listdir(target / "opaque") == ["new"]
        assert (target / "keep").read_text() == "lower"
        # a container's writes land in its upper directory only
        (target / "new").write_text("mine")
        (target / "keep").write_text("changed")
        os.unlink(target / "layers/005")
    finally:
        Mount.unmount(str(target))
    upper = Path(snapshots.upper_path("tall"))
    assert (upper / "new").read_text() == "mine"
    assert (upper / "keep").read_text() == "changed"
    assert stat.S_ISCHR(os.lstat(upper / "layers/005").st_mode)
    bottom = Path(snapshots.layer_path(chain_ids(image.diff_ids)[0]))
    assert (bottom / "keep").read_text() == "lower"
    assert not (bottom / "new").exists()
    usage = snapshots.usage()
    assert [c["key"] for c in usage["containers"]] == ["tall"]
    assert usage["containers"][0]["size"] > 0 and len(usage["layers"]) == 128


def test_read_only_view_and_single_layer_images(store, snapshots, tmp_path):
    image = make_image(store, tmp_path, "single", [{"hello": "world"}])
    snapshots.unpack(store, image)
    view = snapshots.prepare("view", image, readonly=True)
    assert view.upperdir is None and view.lowerdirs[-1] == "empty"
    target = tmp_path / "view"
    target.mkdir()
    view.mount(str(target))
    try:
        assert (target / "hello").read_text() == "world"
        with pytest.raises(OSError):
            (target / "other").write_text("x")
    finally:
        Mount.unmount(str(target))
    with pytest.raises(InvalidArgument):
        snapshots.upper_path("view")


def test_mount_limits_are_checked_before_the_kernel():
    too_deep = Mount("/", tuple(f"l/{i:08d}" for i in range(MAX_LOWER_LAYERS + 1)))
    with pytest.raises(InvalidArgument, match="at most 500"):
        too_deep.check()
    too_long = Mount("/", tuple("/a/very/long/path/" + "x" * 40 for _ in range(100)))
    with pytest.raises(InvalidArgument, match="bytes of overlay mount options"):
        too_long.check()


def _unpack_in_child(store_root: str, snap_root: str, name: str) -> None:
    store = ImageStore(store_root)
    Snapshotter(snap_root).unpack(store, store.get(name))


def test_concurrent_unpackers_make_one_snapshot(store, snapshots, tmp_path):
    image = make_image(store, tmp_path, "shared",
                       [{f"d{i}/f{j}": "x" * 1000 for j in range(200)} for i in range(4)])
    ctx = multiprocessing.get_context("fork")
    children = [ctx.Process(target=_unpack_in_child,
                            args=(store.root, snapshots.root, "shared")) for _ in range(3)]
    for child in children:
        child.start()
    for child in children:
        child.join(60)
        assert child.exitcode == 0
    root = tmp_path / "snapshots"
    assert len(os.listdir(root / "layers")) == 4
    assert len(os.listdir(root / "l")) == 4
    assert os.listdir(root / "tmp") == []
    for chain in chain_ids(image.diff_ids):
        assert len(os.listdir(Path(snapshots.layer_path(chain)))) == 1


def test_failed_unpack_leaves_nothing_visible_and_a_retry_succeeds(store, snapshots,
                                                                   tmp_path, monkeypatch):
    image = make_image(store, tmp_path, "img", [{"a": "1"}, {"b": "2"}])
    real = snapshot_module.apply_layer
    calls = []

    def failing(stream: Any, dest: str, **kw: Any) -> Any:
        calls.append(dest)
        if len(calls) == 2:
            real(stream, dest, **kw)  # half of the work is on disk, then it dies
            raise OSError(5, "injected failure")
        return real(stream, dest, **kw)

    monkeypatch.setattr(snapshot_module, "apply_layer", failing)
    with pytest.raises(OSError, match="injected"):
        snapshots.unpack(store, image)
    chains = chain_ids(image.diff_ids)
    assert snapshots.has(chains[0]) and not snapshots.has(chains[1])
    root = tmp_path / "snapshots"
    assert os.listdir(root / "tmp") == []
    assert len(os.listdir(root / "l")) == 1
    with pytest.raises(NotFound, match="not unpacked"):
        snapshots.prepare("c", image)
    monkeypatch.setattr(snapshot_module, "apply_layer", real)
    assert snapshots.unpack(store, image) == chains
    assert snapshots.has(chains[1])


def _die_mid_unpack(store_root: str, snap_root: str) -> None:
    real = snapshot_module.apply_layer

    def dying(stream: Any, dest: str, **kw: Any) -> Any:
        real(stream, dest, **kw)
        os._exit(9)  # as a SIGKILL would: no cleanup runs

    snapshot_module.apply_layer = dying  # type: ignore[assignment]
    _unpack_in_child(store_root, snap_root, "img")


def test_killed_unpack_leaves_debris_only_gc_sees(store, snapshots, tmp_path):
    image = make_image(store, tmp_path, "img", [{"a": "1"}])
    child = multiprocessing.get_context("fork").Process(
        target=_die_mid_unpack, args=(store.root, snapshots.root))
    child.start()
    child.join(60)
    assert child.exitcode == 9
    root = tmp_path / "snapshots"
    assert snapshots.layers() == []
    assert len(os.listdir(root / "tmp")) == 1
    snapshots.unpack(store, image)
    assert snapshots.layers() == chain_ids(image.diff_ids)
    removed, _ = snapshots.gc(store)
    assert removed == []
    assert os.listdir(root / "tmp") == []
    assert len(os.listdir(root / "l")) == 1


def test_a_layer_that_does_not_match_its_diff_id_is_refused(store, snapshots, tmp_path):
    image = make_image(store, tmp_path, "liar", [{"a": "1"}],
                       diff_ids=["sha256:" + "0" * 64])
    with pytest.raises(DigestMismatch, match="diff ID"):
        snapshots.unpack(store, image)
    assert snapshots.layers() == []
    assert os.listdir(tmp_path / "snapshots" / "tmp") == []
    assert os.listdir(tmp_path / "snapshots" / "l") == []


def test_gc_keeps_what_images_and_containers_use(store, snapshots, tmp_path):
    base = {"base": "b"}
    one = make_image(store, tmp_path, "one", [base, {"one": "1"}])
    two = make_image(store, tmp_path, "two", [base, {"two": "2"}])
    c_one, c_two = snapshots.unpack(store, one), snapshots.unpack(store, two)
    assert snapshots.gc(store) == ([], 0)
    snapshots.prepare("uses-two", two)
    store.remove("one")
    store.remove("two")
    removed, freed = snapshots.gc(store)
    assert removed == [c_one[1]] and freed > 0
    assert sorted(snapshots.layers()) == sorted(c_two)
    assert len(os.listdir(tmp_path / "snapshots" / "l")) == 2
    snapshots.remove("uses-two")
    with pytest.raises(NotFound):
        snapshots.remove("uses-two")
    removed, _ = snapshots.gc(store)
    assert sorted(removed) == sorted(c_two)
    assert snapshots.layers() == [] and snapshots.usage()["total"] == 0
    assert os.listdir(tmp_path / "snapshots" / "l") == []


def test_bad_keys_and_duplicates_are_refused(store, snapshots, tmp_path):
    image = make_image(store, tmp_path, "img", [{"a": "1"}])
    snapshots.unpack(store, image)
    for bad in ("", "../x", "a/b", ".hidden", "x" * 129):
        with pytest.raises(InvalidArgument):
            snapshots.prepare(bad, image)
    snapshots.prepare("k", image)
    with pytest.raises(Exception, match="already exists"):
        snapshots.prepare("k", image)
    assert snapshots.keys() == ["k"]
