"""The connection plugin's fetch is path-safe: of the engine's archive it takes exactly
the one regular file asked for, and refuses members that would land elsewhere."""

from __future__ import annotations

import importlib
import io
import sys
import tarfile
from pathlib import Path
from types import ModuleType

import pytest

COLLECTION = Path(__file__).resolve().parents[2] / "collection"


def plugin() -> ModuleType:
    if str(COLLECTION) not in sys.path:
        sys.path.insert(0, str(COLLECTION))
    return importlib.import_module("ansible_collections.longboat.core.plugins.connection.longboat")


connection = plugin()


def archive(*members: tuple[str, bytes | None, bytes]) -> io.BytesIO:
    """A tar of (name, type, content) members; type None is a regular file."""
    data = io.BytesIO()
    with tarfile.open(fileobj=data, mode="w") as tar:
        for name, kind, content in members:
            info = tarfile.TarInfo(name)
            if kind is None:
                info.size = len(content)
                tar.addfile(info, io.BytesIO(content))
            else:
                info.type = kind
                info.linkname = content.decode()
                tar.addfile(info)
    data.seek(0)
    return data


def test_the_file_asked_for_is_returned() -> None:
    assert connection.single_file(archive(("hello.txt", None, b"hi\n")), "hello.txt") == b"hi\n"


@pytest.mark.parametrize(("members", "message"), [
    ([("../../etc/cron.d/x", None, b"evil")], "escapes the destination"),
    ([("/etc/passwd", None, b"evil")], "escapes the destination"),
    ([("hello.txt/../../x", None, b"evil")], "escapes the destination"),
    ([("other.txt", None, b"x")], "only 'hello.txt' was asked for"),
    ([("hello.txt", None, b"a"), ("hello.txt/x", None, b"b")], "only 'hello.txt'"),
    ([("hello.txt", tarfile.SYMTYPE, b"/etc/shadow")], "not a regular file"),
    ([("hello.txt", tarfile.LNKTYPE, b"/etc/shadow")], "not a regular file"),
    ([("hello.txt", None, b"a"), ("hello.txt", None, b"b")], "twice"),
    ([], "does not hold"),
])
def test_hostile_or_wrong_archives_are_refused(members: list[tuple[str, bytes | None, bytes]],
                                               message: str) -> None:
    with pytest.raises(connection.UnsafeArchive, match=message):
        connection.single_file(archive(*members), "hello.txt")
