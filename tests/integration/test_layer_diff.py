"""make_layer on a real overlayfs upper directory: changes, deletions (whiteouts) and
replaced directories (opaque) become a layer that, applied onto the lower, gives the
merged view; the same tree gives the same digest."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from longboat.image.layer import apply_layer, make_layer
from longboat.linux import libc

pytestmark = pytest.mark.integration

MTIME = 1_600_000_000
CAPS = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)


def _base_layer() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        def add(name: str, kind: bytes = tarfile.REGTYPE, data: bytes = b"", mode: int = 0o644,
                linkname: str = "") -> None:
            ti = tarfile.TarInfo(name)
            ti.type, ti.mode, ti.mtime, ti.linkname, ti.size = kind, mode, MTIME, linkname, len(
                data)
            tar.addfile(ti, io.BytesIO(data) if data else None)

        add("etc/", tarfile.DIRTYPE, mode=0o755)
        add("etc/config", data=b"old config\n")
        add("etc/motd", data=b"hello\n")
        add("etc/deleted", data=b"to be deleted\n")
        add("var/", tarfile.DIRTYPE, mode=0o755)
        add("var/cache/", tarfile.DIRTYPE, mode=0o700)
        add("var/cache/a", data=b"a" * 5000)
        add("var/cache/sub/", tarfile.DIRTYPE, mode=0o755)
        add("var/cache/sub/b", data=b"b")
        add("var/log/", tarfile.DIRTYPE, mode=0o755)
        add("var/log/old.log", data=b"log")
        add("usr/", tarfile.DIRTYPE, mode=0o755)
        add("usr/bin/", tarfile.DIRTYPE, mode=0o755)
        add("usr/bin/tool", data=b"tool", mode=0o755)
        add("usr/bin/link", tarfile.SYMTYPE, linkname="tool")
        add("gone-dir/", tarfile.DIRTYPE, mode=0o755)
        add("gone-dir/inner", data=b"inner")
    return buf.getvalue()


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """path -> (type, mode, uid, gid, size, content/target/rdev, mtime s, xattrs)."""
    out: dict[str, tuple[object, ...]] = {}
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(top, name)
            st = os.lstat(p)
            detail: object = None
            xattrs: tuple[tuple[str, bytes], ...] = ()
            if stat.S_ISREG(st.st_mode):
                detail = Path(p).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = st.st_rdev
            if stat.S_ISREG(st.st_mode) or stat.S_ISDIR(st.st_mode):
                xattrs = tuple(sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)
                                      if not k.startswith("trusted.overlay.")))
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            out[os.path.relpath(p, root)] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode),
                                             st.st_uid, st.st_gid, size, detail,
                                             int(st.st_mtime), xattrs)
    return out


class Overlay:
    def __init__(self, base: Path, lower: Path) -> None:
        self.upper, self.work, self.merged = base / "upper", base / "work", base / "merged"
        for p in (self.upper, self.work, self.merged):
            p.mkdir()
        self.options = (f"lowerdir={lower},upperdir={self.upper},workdir={self.work},"
                        "redirect_dir=off,metacopy=off,index=off")

    def __enter__(self) -> Path:
        libc.mount("overlay", str(self.merged), "overlay", 0, self.options)
        return self.merged

    def __exit__(self, *exc: object) -> None:
        libc.umount2(str(self.merged))


@pytest.fixture
def changed(tmp_path: Path) -> Iterator[tuple[Path, Path, dict[str, tuple[object, ...]]]]:
    """(lower, upper, snapshot of the merged view) after a container's worth of changes."""
    lower = tmp_path / "lower"
    lower.mkdir()
    apply_layer(io.BytesIO(_base_layer()), str(lower))
    overlay = Overlay(tmp_path, lower)
    with overlay as m:
        (m / "etc/config").write_bytes(b"new config\n")              # changed content
        os.chmod(m / "etc/motd", 0o600)                               # metadata-only change
        os.chown(m / "etc/motd", 1234, 5678)
        (m / "etc/deleted").unlink()                                  # whiteout
        os.utime(m / "etc/config", (MTIME + 50, MTIME + 50))
        # rm -rf and recreate: an opaque directory
        for p in sorted((m / "var/cache").rglob("*"), reverse=True):
            p.rmdir() if p.is_dir() else p.unlink()
        (m / "var/cache").rmdir()
        (m / "var/cache").mkdir(mode=0o750)
        (m / "var/cache/fresh").write_bytes(b"fresh")
        (m / "var/cache/sub").mkdir()
        (m / "var/cache/sub/c").write_bytes(b"c")
        # a whole directory deleted
        (m / "gone-dir/inner").unlink()
        (m / "gone-dir").rmdir()
        # new entries of every kind
        (m / "var/log/new.log").write_bytes(b"x" * 70000)
        os.chown(m / "var/log/new.log", 1234, 5678)
        (m / "usr/bin/suid").write_bytes(b"suid")
        os.chown(m / "usr/bin/suid", 0, 5678)
        os.chmod(m / "usr/bin/suid", 0o4755)
        (m / "usr/bin/ping").write_bytes(b"ping")
        os.chmod(m / "usr/bin/ping", 0o755)
        os.setxattr(m / "usr/bin/ping", "security.capability", CAPS)
        os.setxattr(m / "usr/bin/ping", "user.note", b"a note")
        (m / "usr/bin/abs").symlink_to("/etc/config")
        (m / "usr/bin/link").unlink()
        (m / "usr/bin/link").symlink_to("suid")                       # replaced symlink
        os.mkfifo(m / "var/fifo", 0o640)
        os.mknod(m / "var/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
        os.chmod(m / "var/null", 0o666)
        (m / "var/one").write_bytes(b"linked")
        os.link(m / "var/one", m / "var/two")                         # hardlinks in the layer
        os.link(m / "usr/bin/tool", m / "usr/bin/tool2")              # copy-up, then link
        (m / "etc/new dir/with space").mkdir(parents=True)
        (m / "etc/new dir/with space/ünïcode").write_bytes(b"u")
        (m / ("d" * 90) / ("f" * 90)).mkdir(parents=True)             # a name over 100 bytes
        os.utime(m / "usr/bin/abs", (MTIME + 7, MTIME + 7), follow_symlinks=False)
        merged = snapshot(m)
    yield lower, overlay.upper, merged


def test_layer_applied_onto_lower_equals_merged_view(
        tmp_path: Path, changed: tuple[Path, Path, dict[str, tuple[object, ...]]]) -> None:
    _lower, upper, merged = changed
    # The upper really holds overlayfs's forms, which the layer must convert.
    assert stat.S_ISCHR(os.lstat(upper / "etc/deleted").st_mode)
    assert stat.S_ISCHR(os.lstat(upper / "gone-dir").st_mode)
    assert os.getxattr(upper / "var/cache", "trusted.overlay.opaque") == b"y"

    out = io.BytesIO()
    result = make_layer(str(upper), out)
    layer = out.getvalue()
    assert result.diff_id == result.digest == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert result.size == len(layer)
    with tarfile.open(fileobj=io.BytesIO(layer)) as tar:
        members = {m.name: m for m in tar.getmembers()}
    assert members["etc/.wh.deleted"].isreg() and members["etc/.wh.deleted"].size == 0
    assert members[".wh.gone-dir"].isreg()
    assert members["var/cache/.wh..wh..opq"].isreg()
    assert members["var/two"].islnk() and members["var/two"].linkname == "var/one"
    assert members["usr/bin/tool2"].islnk() and members["usr/bin/tool2"].linkname == "usr/bin/tool"
    assert all(m.uname == "" and m.gname == "" for m in members.values())
    assert not any("trusted.overlay" in k for m in members.values() for k in m.pax_headers)
    assert members["usr/bin/ping"].pax_headers["SCHILY.xattr.user.note"] == "a note"
    names = list(members)  # in tar order; tarfile drops the directories' trailing "/"
    assert names.index("var/cache") < names.index("var/cache/.wh..wh..opq")
    # Walk order by the names in the upper, as Docker: a whiteout sits where its name was.
    walk = [n.replace(".wh.", "") for n in names if not n.endswith(".wh..wh..opq")]
    assert walk == sorted(walk, key=lambda n: n.encode().split(b"/"))

    applied = tmp_path / "applied"
    applied.mkdir()
    apply_layer(io.BytesIO(_base_layer()), str(applied))
    apply_layer(io.BytesIO(layer), str(applied))
    assert snapshot(applied) == merged
    assert os.lstat(applied / "var/one").st_ino == os.lstat(applied / "var/two").st_ino
    assert os.getxattr(applied / "usr/bin/ping", "security.capability") == CAPS


def test_same_tree_same_digest_and_round_trip(
        tmp_path: Path, changed: tuple[Path, Path, dict[str, tuple[object, ...]]]) -> None:
    lower, upper, merged = changed
    first, second = io.BytesIO(), io.BytesIO()
    r1 = make_layer(str(upper), first)
    r2 = make_layer(str(upper), second)
    assert r1 == r2 and first.getvalue() == second.getvalue()
    g1, g2 = io.BytesIO(), io.BytesIO()
    z1 = make_layer(str(upper), g1, compression="gzip")
    z2 = make_layer(str(upper), g2, compression="gzip")
    assert z1.diff_id == r1.diff_id and z1.digest == z2.digest != r1.digest
    assert z1.digest == "sha256:" + hashlib.sha256(g1.getvalue()).hexdigest()
    assert gzip.decompress(g1.getvalue()) == first.getvalue()

    # Unpacked in overlay form, the layer is the upper again: the same tar comes back,
    # and as an overlay lower it shows the merged view.
    again = tmp_path / "again"
    again.mkdir()
    applied = apply_layer(io.BytesIO(g1.getvalue()), str(again), whiteouts="overlay")
    assert applied.diff_id == r1.diff_id and applied.digest == z1.digest
    assert make_layer(str(again), io.BytesIO()).diff_id == r1.diff_id
    view = tmp_path / "view"
    view.mkdir()
    libc.mount("overlay", str(view), "overlay", libc.MS_RDONLY, f"lowerdir={again}:{lower}")
    try:
        assert snapshot(view) == merged
    finally:
        libc.umount2(str(view))


def test_sockets_are_skipped_and_redirects_refused(tmp_path: Path) -> None:
    import socket

    upper = tmp_path / "upper"
    upper.mkdir()
    sock = socket.socket(socket.AF_UNIX)
    try:
        sock.bind(str(upper / "sock"))
        (upper / "file").write_bytes(b"f")
        result = make_layer(str(upper), io.BytesIO())
        assert result.entries == 1
    finally:
        sock.close()
    (upper / "moved").mkdir()
    os.setxattr(upper / "moved", "trusted.overlay.redirect", b"/elsewhere")
    from longboat.image.layer import LayerError

    with pytest.raises(LayerError, match="redirect_dir=off"):
        make_layer(str(upper), io.BytesIO())


def test_deep_tree_round_trip(tmp_path: Path) -> None:
    upper = tmp_path / "upper"
    upper.mkdir()
    fd = os.open(upper, os.O_RDONLY)
    try:
        for _ in range(1500):
            os.mkdir("a", dir_fd=fd)
            nxt = os.open("a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("f", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
    finally:
        os.close(fd)
    out = io.BytesIO()
    result = make_layer(str(upper), out)
    assert result.entries == 1501
    again = tmp_path / "again"
    again.mkdir()
    assert apply_layer(io.BytesIO(out.getvalue()), str(again)).diff_id == result.diff_id
    assert make_layer(str(again), io.BytesIO()).diff_id == result.diff_id
    # shutil.rmtree (pytest's clean-up) recurses: remove the trees with a whiteout.
    whiteout = io.BytesIO()
    with tarfile.open(fileobj=whiteout, mode="w") as tar:
        tar.addfile(tarfile.TarInfo(".wh.a"))
    for tree in (upper, again):
        apply_layer(io.BytesIO(whiteout.getvalue()), str(tree))
        assert os.listdir(tree) == []
