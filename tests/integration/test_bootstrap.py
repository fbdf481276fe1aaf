"""Base images built on this host (busybox-static, debootstrap): reproducible digests, and
they run under longboat-runtime from a snapshot mount."""

from __future__ import annotations

import copy
import json
import os
import shutil
import tarfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from tests.support.bundles import CGROUP_PARENT, edit_config, unique_id

from longboat.errors import InvalidArgument
from longboat.image.bootstrap import apt_mirror, bootstrap_image, busybox_version
from longboat.image.snapshot import Mount, Snapshotter
from longboat.image.store import Image, ImageStore
from longboat.oci.spec import default_spec

pytestmark = pytest.mark.integration


@contextmanager
def mounted_bundle(tmp_path: Path, store: ImageStore, image: Image,
                   args: list[str], uppers: list[Path]) -> Iterator[Path]:
    """A bundle whose rootfs is the image's snapshot, mounted for the block."""
    snapshots = Snapshotter(str(tmp_path / "snapshots"))
    snapshots.unpack(store, image)
    key = unique_id("c")
    uppers.append(tmp_path / "snapshots" / "containers" / key / "upper")
    mount = snapshots.prepare(key, image)
    bundle = tmp_path / key
    (bundle / "rootfs").mkdir(parents=True)
    config = copy.deepcopy(default_spec())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["process"]["env"] = image.config["config"]["Env"]
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{key}"
    edit_config(config, {"root__readonly": False})
    (bundle / "config.json").write_text(json.dumps(config))
    mount.mount(str(bundle / "rootfs"))
    try:
        yield bundle
    finally:
        Mount.unmount(str(bundle / "rootfs"))
        snapshots.remove(key)


def test_busybox_is_reproducible_and_tagged(tmp_path):
    one = ImageStore(str(tmp_path / "one"))
    two = ImageStore(str(tmp_path / "two"))
    messages: list[str] = []
    first = bootstrap_image(one, "busybox", progress=messages.append)
    old = os.umask(0o077)  # what the tree gets from the umask must not matter
    try:
        second = bootstrap_image(two, "busybox")
    finally:
        os.umask(old)
    assert first.id == second.id
    assert first.manifest_digest == second.manifest_digest
    assert first.layers == second.layers
    version, _ = busybox_version()
    assert first.references == ["docker.io/library/busybox:latest",
                                f"docker.io/library/busybox:{version}"]
    assert messages and messages[-1].startswith(first.id)
    assert first.config["config"]["Cmd"] == ["sh"]
    assert first.config["architecture"] == "amd64" and first.config["os"] == "linux"
    assert first.created == first.config["history"][0]["created"]
    # a tag given wins over the default ones
    mine = bootstrap_image(one, "busybox:mine")
    assert mine.id == first.id and "docker.io/library/busybox:mine" in mine.references
    assert one.get("busybox:mine").id == first.id
    # the layer: sorted entries, one owner, one mtime, the applet links
    with tarfile.open(one.content.path(first.layers[0]["digest"])) as tar:
        members = tar.getmembers()
    assert {(m.uid, m.gid) for m in members} == {(0, 0)}
    assert len({m.mtime for m in members}) == 1
    by_name = {m.name: m for m in members}
    assert by_name["bin/sh"].issym() and by_name["bin/sh"].linkname == "/bin/busybox"
    assert by_name["tmp"].mode == 0o1777 and by_name["etc/passwd"].mode == 0o644


def test_unknown_base_images_are_refused(tmp_path):
    store = ImageStore(str(tmp_path / "store"))
    with pytest.raises(InvalidArgument, match="busybox"):
        bootstrap_image(store, "alpine")
    with pytest.raises(InvalidArgument, match="digest"):
        bootstrap_image(store, "busybox@sha256:" + "a" * 64)
    assert store.images() == []


def test_busybox_runs_from_a_snapshot(tmp_path, runtime):
    store = ImageStore(str(tmp_path / "store"))
    image = bootstrap_image(store, "busybox")
    script = "echo hello from $(busybox | head -1 | cut -d' ' -f1,2); echo x > /written"
    uppers: list[Path] = []
    with mounted_bundle(tmp_path, store, image, ["sh", "-c", script], uppers) as bundle:
        result = runtime("run", "--bundle", str(bundle), unique_id())
        assert result.stdout.startswith("hello from BusyBox v"), result.stdout
        # the write went to the container's layer, not to the shared one
        assert (uppers[0] / "written").read_text() == "x\n"
        assert not (tmp_path / "snapshots" / "layers" / image.diff_ids[0][7:] / "fs"
                    / "written").exists()


def test_apt_mirror_reads_both_source_formats(tmp_path):
    etc = tmp_path / "apt"
    (etc / "sources.list.d").mkdir(parents=True)
    (etc / "sources.list").write_text(
        "# comment\ndeb [arch=amd64] http://mirror.example/debian bookworm main\n")
    assert apt_mirror("bookworm", str(etc)) == "http://mirror.example/debian"
    (etc / "sources.list").write_text("")
    (etc / "sources.list.d" / "debian.sources").write_text(
        "Types: deb\nURIs: http://other.example/debian-security\nSuites: bookworm-security\n"
        "\nTypes: deb\nURIs: http://other.example/debian/\nSuites: bookworm bookworm-updates"
        "\nComponents: main\n")
    assert apt_mirror("bookworm", str(etc)) == "http://other.example/debian"
    assert apt_mirror("trixie", str(etc)) == "http://deb.debian.org/debian"


def _debootstrap_available() -> bool:
    return shutil.which("debootstrap") is not None or shutil.which("apt-get") is not None


@pytest.mark.skipif(not _debootstrap_available(), reason="needs debootstrap or apt-get")
def test_debian_bookworm_is_reproducible_and_runs(tmp_path, runtime):
    one = ImageStore(str(tmp_path / "one"))
    image = bootstrap_image(one, "debian:bookworm")
    assert image.references == ["docker.io/library/debian:bookworm"]
    assert image.config["config"]["Cmd"] == ["bash"]
    with tarfile.open(one.content.path(image.layers[0]["digest"])) as tar:
        names = set(tar.getnames())
    assert "etc/debian_version" in names and "usr/bin/apt-get" in names
    volatile = {"var/log/dpkg.log", "var/log/bootstrap.log", "etc/machine-id",
                "etc/resolv.conf", "var/cache/ldconfig/aux-cache", "etc/shadow-"}
    assert not volatile & names
    assert not [n for n in names if n.startswith(("var/lib/apt/lists/deb", "dev/"))]
    with mounted_bundle(tmp_path, one, image,
                        ["sh", "-c", "cat /etc/debian_version; id -un"], []) as bundle:
        out = runtime("run", "--bundle", str(bundle), unique_id()).stdout.split()
    assert out[0].startswith("12.") and out[1] == "root"
    # the same inputs (the same archive Release date) give the same digests
    two = ImageStore(str(tmp_path / "two"))
    again = bootstrap_image(two, "debian:bookworm")
    if again.created != image.created:
        pytest.skip("the mirror published a new Release between the two builds")
    assert again.layers == image.layers and again.id == image.id
