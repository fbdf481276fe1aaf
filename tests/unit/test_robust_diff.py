"""``docker diff`` (engine/filesystem.py ``changes``) walks iteratively: a container's
tree thousands of levels deep (deeper than PATH_MAX) is listed, not a 500; the order
is Docker's (depth first, byte order, a directory before what is below it)."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from longboat.build.context import remove_tree
from longboat.engine.filesystem import ADDED, DELETED, MODIFIED, changes

pytestmark = pytest.mark.unit
DEPTH = 2500     # "/d" * 2500: 5000 characters, past PATH_MAX


@pytest.fixture
def layers(tmp_path: Path) -> Iterator[tuple[Path, Path]]:
    upper, lower = tmp_path / "upper", tmp_path / "lower"
    upper.mkdir()
    lower.mkdir()
    try:
        yield upper, lower
    finally:
        for top in (upper, lower):     # pytest's rmtree recurses: too deep for it
            remove_tree(str(top))


def _chain(top: Path, depth: int) -> None:
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(depth):
            os.mkdir("d", dir_fd=fd)
            below = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = below
        with open(os.open("f", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd), "w") as f:
            f.write("x")
    finally:
        os.close(fd)


def test_order_and_kinds(layers: tuple[Path, Path]) -> None:
    upper, lower = layers
    (lower / "etc" / "x").mkdir(parents=True)
    (lower / "etc" / "passwd").write_text("")
    (lower / "gone").mkdir()
    (upper / "etc" / "x" / "new").mkdir(parents=True)
    (upper / "etc" / "passwd").write_text("x")
    (upper / "B" / "a").mkdir(parents=True)
    (upper / "a").write_text("")
    (upper / "etc" / "hosts").write_text("")
    os.mknod(upper / "gone", 0o020000, os.makedev(0, 0))
    os.symlink("/etc", upper / "ln")
    found = [(c["Path"], c["Kind"]) for c in changes(str(upper), [str(lower)],
                                                      {"/etc/hosts"})]
    assert found == [("/B", ADDED), ("/B/a", ADDED), ("/a", ADDED), ("/etc", MODIFIED),
                     ("/etc/passwd", MODIFIED), ("/etc/x", MODIFIED),
                     ("/etc/x/new", ADDED), ("/gone", DELETED), ("/ln", ADDED)]


def test_a_tree_deeper_than_path_max_is_listed(layers: tuple[Path, Path]) -> None:
    upper, lower = layers
    _chain(upper, DEPTH)
    found = changes(str(upper), [str(lower)])
    assert len(found) == DEPTH + 1
    assert found[0] == {"Path": "/d", "Kind": ADDED}
    assert found[-1] == {"Path": "/d" * DEPTH + "/f", "Kind": ADDED}


def test_a_deep_tree_also_in_the_lower_is_looked_up_there(
        layers: tuple[Path, Path]) -> None:
    """The lower lookup of a path past PATH_MAX goes a piece at a time."""
    upper, lower = layers
    _chain(lower, DEPTH)
    _chain(upper, DEPTH)
    # the lower's directories have other mtimes: modified; the file differs: modified
    found = changes(str(upper), [str(lower)])
    assert len(found) == DEPTH + 1
    assert {c["Kind"] for c in found} == {MODIFIED}
