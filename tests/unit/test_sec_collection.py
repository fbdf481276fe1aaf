"""The connection plugin's file transfer under hostile conditions, with a fake engine:
fetch never writes through a link planted at its temporary name, takes only the one
regular file (not a sparse member whose header claims any size), and leaves nothing on
failure; put sends a regular file member even when the local path is a symlink."""

from __future__ import annotations

import importlib
import io
import os
import sys
import tarfile
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

pytestmark = pytest.mark.unit

COLLECTION = Path(__file__).resolve().parents[2] / "collection"


def plugin() -> ModuleType:
    if str(COLLECTION) not in sys.path:
        sys.path.insert(0, str(COLLECTION))
    return importlib.import_module("ansible_collections.longboat.core.plugins.connection.longboat")


connection = plugin()


class FakeEngine:
    def __init__(self, archive: bytes) -> None:
        self.archive = archive
        self.put: list[tuple[str, bytes]] = []

    def archive_stat(self, container: str, path: str) -> dict[str, Any]:
        return {"name": os.path.basename(path), "linkTarget": ""}

    def get_archive(self, container: str, path: str) -> tuple[Iterator[bytes], dict[str, Any]]:
        return iter([self.archive[i:i + 1000] for i in range(0, len(self.archive), 1000)]), {}

    def put_archive(self, container: str, path: str, data: Any) -> None:
        self.put.append((path, data.read()))

    def close(self) -> None:
        pass


def _connection(engine: FakeEngine) -> Any:
    from ansible.playbook.play_context import PlayContext

    conn = connection.Connection(PlayContext(), None)
    options = {"remote_addr": "lbs-c"}
    conn.get_option = options.get      # no plugin loader here: its options, directly
    conn.engine = engine
    conn._connected = True
    conn._ids = (0, 0)
    return conn


def _tar(info: tarfile.TarInfo, data: bytes, fmt: int = tarfile.GNU_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as tar:
        tar.addfile(info, io.BytesIO(data))
    return out.getvalue()


def _file(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return _tar(info, data)


def test_fetch_never_writes_through_a_planted_link(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_text("untouched\n")
    dest = tmp_path / "fetched"
    # the names the old code wrote to first, all links to the victim
    for pid in {os.getpid(), os.getppid()}:
        os.symlink(victim, f"{dest}.{pid}.tmp")
    conn = _connection(FakeEngine(_file("hello.txt", b"from the container\n")))
    conn.fetch_file("/hello.txt", str(dest))
    assert dest.read_bytes() == b"from the container\n"
    assert victim.read_text() == "untouched\n"
    assert not dest.is_symlink()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".longboat-fetch-")] == []


def test_fetch_refuses_a_sparse_member_and_leaves_nothing(tmp_path: Path) -> None:
    info = tarfile.TarInfo("hello.txt")
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = 0
    raw = bytearray(_tar(info, b""))
    conn = _connection(FakeEngine(bytes(raw)))
    with pytest.raises(connection.AnsibleError):
        conn.fetch_file("/hello.txt", str(tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["../../x", "/etc/passwd", "other"])
def test_fetch_refuses_other_members_and_leaves_nothing(tmp_path: Path, name: str) -> None:
    conn = _connection(FakeEngine(_file(name, b"evil")))
    with pytest.raises(connection.AnsibleError):
        conn.fetch_file("/hello.txt", str(tmp_path / "out"))
    assert list(tmp_path.iterdir()) == []


def test_fetched_file_mode_follows_the_umask(tmp_path: Path) -> None:
    conn = _connection(FakeEngine(_file("hello.txt", b"x")))
    old = os.umask(0o027)
    try:
        conn.fetch_file("/hello.txt", str(tmp_path / "out"))
    finally:
        os.umask(old)
    assert (tmp_path / "out").stat().st_mode & 0o777 == 0o640


def test_put_sends_a_regular_file_even_for_a_symlinked_source(tmp_path: Path) -> None:
    real = tmp_path / "real"
    real.write_bytes(b"payload\n")
    link = tmp_path / "link"
    link.symlink_to(real)
    engine = FakeEngine(b"")
    conn = _connection(engine)
    conn.put_file(str(link), "/tmp/../etc/target")
    [(directory, data)] = engine.put
    assert directory == "/etc"
    with tarfile.open(fileobj=io.BytesIO(data)) as tar:
        [member] = tar.getmembers()
        assert member.name == "target" and member.isfile()
        extracted = tar.extractfile(member)
        assert extracted is not None and extracted.read() == b"payload\n"
