"""``engine/init_layer.leftovers``: the runtime's empty mount points in a container's
layer (and the directories that only hold them) are named for commit and the builder;
what the container made, changed or filled stays; a symlink on the way is never
followed; the builder's removal (``prune_mount_points``) removes exactly those; a
layer made with them excluded has none of them."""

from __future__ import annotations

import io
import os
import tarfile
from pathlib import Path

import pytest

from longboat.build.run import prune_mount_points
from longboat.engine.init_layer import leftovers
from longboat.image.layer import make_layer

pytestmark = pytest.mark.unit


def _layers(tmp_path: Path) -> tuple[Path, Path]:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    for top in (upper, lower):
        (top / "etc").mkdir(parents=True)       # copied up in the container's layer
    (lower / "proc").mkdir()
    (lower / "etc" / "passwd").write_text("root:x:0:0::/root:/bin/sh\n")
    # the runtime's: empty files and directories the image has not
    for name in ("hosts", "resolv.conf", "hostname"):
        (upper / "etc" / name).write_text("")
    (upper / "dev" / "pts").mkdir(parents=True)
    (upper / "sys").mkdir()
    # the container's own
    (upper / "etc" / "motd").write_text("hello\n")
    (upper / "data").mkdir()          # an empty directory it made: not a mount point
    return upper, lower


POINTS = {"/etc/hosts", "/etc/resolv.conf", "/etc/hostname", "/dev/pts", "/dev", "/proc",
          "/sys", "/data/volume", "/etc/passwd"}


def test_leftovers_are_the_runtimes_empty_mount_points(tmp_path: Path) -> None:
    upper, lower = _layers(tmp_path)
    found = leftovers(str(upper), [str(lower)], POINTS)
    # /proc is the image's; /etc holds the container's motd
    assert found == {"etc/hosts", "etc/resolv.conf", "etc/hostname", "dev/pts", "dev",
                     "sys"}


def test_an_etc_with_only_mount_points_goes_too(tmp_path: Path) -> None:
    upper, lower = _layers(tmp_path)
    (upper / "etc" / "motd").unlink()
    assert "etc" in leftovers(str(upper), [str(lower)], POINTS)
    # but not when the container changed the directory's mode
    os.chmod(upper / "etc", 0o700)
    assert "etc" not in leftovers(str(upper), [str(lower)], POINTS)


def test_what_the_container_wrote_stays(tmp_path: Path) -> None:
    upper, lower = _layers(tmp_path)
    (upper / "etc" / "hosts").write_text("10.0.0.1 mine\n")       # not empty
    (upper / "dev" / "pts" / "x").write_text("")                   # not only ours
    (upper / "sys").rmdir()
    (upper / "sys").symlink_to("/")                                # not a directory
    found = leftovers(str(upper), [str(lower)], POINTS)
    assert found == {"etc/resolv.conf", "etc/hostname"}


def test_a_symlink_on_the_way_is_never_followed(tmp_path: Path) -> None:
    """A container that replaced /etc with a link to a host directory holding an empty
    file of a mount point's name: nothing there is named (nor removed)."""
    upper, lower = _layers(tmp_path)
    victim = tmp_path / "host"
    victim.mkdir()
    (victim / "hosts").write_text("")
    for name in ("hosts", "resolv.conf", "hostname", "motd"):
        (upper / "etc" / name).unlink()
    (upper / "etc").rmdir()
    (upper / "etc").symlink_to(victim)
    found = leftovers(str(upper), [str(lower)], POINTS)
    assert not any(p.startswith("etc") for p in found)
    prune_mount_points(str(upper), [str(lower)], POINTS)
    assert (victim / "hosts").exists()
    assert (upper / "etc").is_symlink()


def test_prune_removes_them_and_a_layer_can_exclude_them(tmp_path: Path) -> None:
    upper, lower = _layers(tmp_path)
    found = leftovers(str(upper), [str(lower)], POINTS)
    out = io.BytesIO()
    make_layer(str(upper), out, exclude=found)
    with tarfile.open(fileobj=io.BytesIO(out.getvalue())) as tar:
        names = {m.name.rstrip("/") for m in tar.getmembers()}
    assert names == {"etc", "etc/motd", "data"}
    prune_mount_points(str(upper), [str(lower)], POINTS)
    left = {str(p.relative_to(upper)) for p in upper.rglob("*")}
    assert left == {"etc", "etc/motd", "data"}
