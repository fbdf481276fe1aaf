"""apply_layer on layers built here with Python's tar writer: every entry kind, owners,
modes, xattrs, mtimes, whiteouts in both modes, compression and digests."""

from __future__ import annotations

import bz2
import gzip
import hashlib
import io
import lzma
import os
import shutil
import stat
import struct
import subprocess
import tarfile
from collections.abc import Iterable
from pathlib import Path

import pytest

from longboat.image.layer import LayerError, apply_layer
from longboat.linux import libc

pytestmark = pytest.mark.integration

MTIME = 1_600_000_000
Entry = tuple[tarfile.TarInfo, bytes]


def info(name: str, kind: bytes = tarfile.REGTYPE, *, mode: int = 0o644, uid: int = 0,
         gid: int = 0, mtime: float = MTIME, linkname: str = "",
         pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.mode, ti.uid, ti.gid, ti.mtime, ti.linkname = kind, mode, uid, gid, mtime, linkname
    ti.uname = ti.gname = ""
    if pax:
        ti.pax_headers = dict(pax)
    return ti


def reg(name: str, data: bytes = b"", **kw: object) -> Entry:
    return info(name, tarfile.REGTYPE, **kw), data  # type: ignore[arg-type]


def d(name: str, **kw: object) -> Entry:
    kw.setdefault("mode", 0o755)
    return info(name, tarfile.DIRTYPE, **kw), b""  # type: ignore[arg-type]


def sym(name: str, target: str, **kw: object) -> Entry:
    return info(name, tarfile.SYMTYPE, linkname=target, mode=0o777, **kw), b""  # type: ignore[arg-type]


def hard(name: str, target: str) -> Entry:
    return info(name, tarfile.LNKTYPE, linkname=target), b""


def node(name: str, kind: bytes, major: int = 0, minor: int = 0, **kw: object) -> Entry:
    ti = info(name, kind, **kw)  # type: ignore[arg-type]
    ti.devmajor, ti.devminor = major, minor
    return ti, b""


def wh(name: str) -> Entry:
    return info(name, mode=0o600), b""


def tar_bytes(entries: Iterable[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in entries:
            if ti.isreg():
                ti.size = len(data)
                tar.addfile(ti, io.BytesIO(data))
            else:
                tar.addfile(ti)
    return buf.getvalue()


def apply(data: bytes, dest: Path, **kw: object):  # type: ignore[no-untyped-def]
    dest.mkdir(exist_ok=True)
    return apply_layer(io.BytesIO(data), str(dest), **kw)  # type: ignore[arg-type]


def snapshot(root: Path) -> dict[str, tuple[object, ...]]:
    """path -> (type, mode, uid, gid, size, content or target or rdev, mtime, user xattrs)."""
    out: dict[str, tuple[object, ...]] = {}
    for top, dirs, files in os.walk(root):
        for name in sorted(dirs + files):
            p = os.path.join(top, name)
            st = os.lstat(p)
            fmt = stat.S_IFMT(st.st_mode)
            detail: object = None
            if stat.S_ISREG(st.st_mode):
                detail = Path(p).read_bytes()
            elif stat.S_ISLNK(st.st_mode):
                detail = os.readlink(p)
            elif stat.S_ISCHR(st.st_mode) or stat.S_ISBLK(st.st_mode):
                detail = st.st_rdev
            xattrs: tuple[tuple[str, bytes], ...] = ()
            if not stat.S_ISLNK(st.st_mode):
                xattrs = tuple(sorted((k, os.getxattr(p, k)) for k in os.listxattr(p)
                                      if k.startswith("user.")))
            size = 0 if stat.S_ISDIR(st.st_mode) else st.st_size
            out[os.path.relpath(p, root)] = (fmt, stat.S_IMODE(st.st_mode), st.st_uid,
                                             st.st_gid, size, detail, int(st.st_mtime), xattrs)
    return out


CAPS_NET_RAW = struct.pack("<IIIII", 0x02000001, 1 << 13, 0, 0, 0)  # vfs_cap_data v2


def full_layer() -> list[Entry]:
    return [
        d("etc/", mode=0o750, uid=1234, gid=5678, mtime=MTIME + 1),
        reg("etc/passwd", b"root:x:0:0::/root:/bin/sh\n", mode=0o640, uid=1234, gid=5678,
            mtime=MTIME + 2),
        reg("etc/empty", b"", mode=0o600),
        d("bin/", mtime=MTIME + 3),
        reg("bin/su", b"\x7fELF-ish", mode=0o4755, uid=1234, gid=5678),
        reg("bin/wall", b"wall", mode=0o2755, gid=5),
        reg("bin/ping", b"ping", mode=0o755,
            pax={"SCHILY.xattr.security.capability": CAPS_NET_RAW.decode("utf-8",
                                                                          "surrogateescape")}),
        reg("bin/tagged", b"t", pax={"SCHILY.xattr.user.foo": "bar"}),
        d("tmp/", mode=0o1777),
        d("shared/", mode=0o2775, gid=5678, pax={"SCHILY.xattr.user.dir": "yes"}),
        sym("bin/sh", "busybox", uid=1234, gid=5678, mtime=MTIME + 4),
        sym("bin/abs", "/etc/passwd"),
        sym("bin/dangling", "../nowhere/at/all"),
        hard("bin/su-again", "bin/su"),
        hard("etc/link-to-symlink", "bin/abs"),
        node("dev/null", tarfile.CHRTYPE, 1, 3, mode=0o666),
        node("dev/loop9", tarfile.BLKTYPE, 7, 9, mode=0o660, gid=6),
        node("run/fifo", tarfile.FIFOTYPE, mode=0o620, uid=1234),
        reg("implicit/deep/er/file", b"x"),
        reg("big", bytes(range(256)) * (3 * 4096 + 17)),
    ]


def test_every_entry_kind(tmp_path: Path) -> None:
    dest = tmp_path / "rootfs"
    result = apply(tar_bytes(full_layer()), dest)
    assert result.entries == len(full_layer())
    assert result.skipped_xattrs == ()

    def st(rel: str) -> os.stat_result:
        return os.lstat(dest / rel)

    etc = st("etc")
    assert stat.S_ISDIR(etc.st_mode) and stat.S_IMODE(etc.st_mode) == 0o750
    assert (etc.st_uid, etc.st_gid, etc.st_mtime) == (1234, 5678, MTIME + 1)
    passwd = st("etc/passwd")
    assert (dest / "etc/passwd").read_bytes() == b"root:x:0:0::/root:/bin/sh\n"
    assert stat.S_IMODE(passwd.st_mode) == 0o640
    assert (passwd.st_uid, passwd.st_gid, passwd.st_mtime) == (1234, 5678, MTIME + 2)
    assert st("etc/empty").st_size == 0 and stat.S_IMODE(st("etc/empty").st_mode) == 0o600
    # setuid survives the chown (which clears it), setgid too; sticky on a directory.
    su = st("bin/su")
    assert stat.S_IMODE(su.st_mode) == 0o4755 and (su.st_uid, su.st_gid) == (1234, 5678)
    assert stat.S_IMODE(st("bin/wall").st_mode) == 0o2755 and st("bin/wall").st_gid == 5
    assert stat.S_IMODE(st("tmp").st_mode) == 0o1777
    shared = st("shared")
    assert stat.S_IMODE(shared.st_mode) == 0o2775 and shared.st_gid == 5678
    # xattrs: file capabilities (set after chown, which would drop them) and user.*.
    assert os.getxattr(dest / "bin/ping", "security.capability") == CAPS_NET_RAW
    assert os.getxattr(dest / "bin/tagged", "user.foo") == b"bar"
    assert os.getxattr(dest / "shared", "user.dir") == b"yes"
    # Symlinks: targets as stored (absolute ones too), owner and mtime of the link itself.
    assert os.readlink(dest / "bin/sh") == "busybox"
    assert os.readlink(dest / "bin/abs") == "/etc/passwd"
    assert os.readlink(dest / "bin/dangling") == "../nowhere/at/all"
    sh = st("bin/sh")
    assert (sh.st_uid, sh.st_gid, sh.st_mtime) == (1234, 5678, MTIME + 4)
    # Hardlinks share the inode, including a hardlink to a symlink.
    assert st("bin/su-again").st_ino == su.st_ino and su.st_nlink == 2
    assert st("etc/link-to-symlink").st_ino == st("bin/abs").st_ino
    assert stat.S_ISLNK(st("etc/link-to-symlink").st_mode)
    # Device nodes and fifos.
    null = st("dev/null")
    assert stat.S_ISCHR(null.st_mode) and null.st_rdev == os.makedev(1, 3)
    assert stat.S_IMODE(null.st_mode) == 0o666
    loop = st("dev/loop9")
    assert stat.S_ISBLK(loop.st_mode) and loop.st_rdev == os.makedev(7, 9)
    assert (stat.S_IMODE(loop.st_mode), loop.st_gid) == (0o660, 6)
    fifo = st("run/fifo")
    assert stat.S_ISFIFO(fifo.st_mode) and stat.S_IMODE(fifo.st_mode) == 0o620
    assert fifo.st_uid == 1234
    # Parents the layer never named: 0755 root:root, as Docker makes them.
    for implicit in ("dev", "run", "implicit", "implicit/deep", "implicit/deep/er"):
        s = st(implicit)
        assert stat.S_ISDIR(s.st_mode) and stat.S_IMODE(s.st_mode) == 0o755
        assert (s.st_uid, s.st_gid) == (0, 0)
    assert (dest / "big").read_bytes() == bytes(range(256)) * (3 * 4096 + 17)
    # Directory mtimes survive the writing of their content.
    assert st("bin").st_mtime == MTIME + 3


def test_mtimes_with_nanoseconds_and_old_dates(tmp_path: Path) -> None:
    layer = tar_bytes([reg("a", b"1", mtime=1_600_000_000.25), reg("b", b"2", mtime=5),
                       d("c/", mtime=1_234_567_890.5)])
    dest = tmp_path / "r"
    apply(layer, dest)
    assert os.lstat(dest / "a").st_mtime_ns == 1_600_000_000_250_000_000
    assert os.lstat(dest / "b").st_mtime == 5
    assert os.lstat(dest / "c").st_mtime_ns == 1_234_567_890_500_000_000


def test_long_names_pax_and_gnu(tmp_path: Path) -> None:
    long_dir = "/".join(["directory-with-a-long-name"] * 6)
    target = long_dir + "/" + "f" * 120
    for fmt in (tarfile.PAX_FORMAT, tarfile.GNU_FORMAT, tarfile.USTAR_FORMAT):
        dest = tmp_path / f"fmt{fmt}"
        entries = [reg(target, b"long"), hard("h" * 101, target)]
        if fmt == tarfile.USTAR_FORMAT:  # ustar's prefix field holds only 155 bytes
            entries = [reg("p" * 150 + "/" + "n" * 99, b"long")]
        else:
            entries.append(sym("s" * 130, "t" * 200))
        apply(tar_bytes(entries, fmt), dest)
        if fmt == tarfile.USTAR_FORMAT:
            assert (dest / ("p" * 150) / ("n" * 99)).read_bytes() == b"long"
            continue
        assert (dest / target).read_bytes() == b"long"
        assert os.lstat(dest / ("h" * 101)).st_ino == os.lstat(dest / target).st_ino
        assert os.readlink(dest / ("s" * 130)) == "t" * 200


def test_non_utf8_and_unicode_names(tmp_path: Path) -> None:
    raw = b"caf\xe9"  # latin-1, not UTF-8: kept as the same bytes
    name = raw.decode("utf-8", "surrogateescape")
    dest = tmp_path / "r"
    apply(tar_bytes([reg(name, b"1"), reg("日本語/ファイル", b"2")], tarfile.GNU_FORMAT), dest)
    assert os.path.exists(os.path.join(os.fsencode(dest), raw))
    assert (dest / "日本語/ファイル").read_bytes() == b"2"


def test_replacing_existing_entries(tmp_path: Path) -> None:
    dest = tmp_path / "r"
    apply(tar_bytes([reg("file", b"old"), hard("other-name", "file"),
                     d("dir/"), reg("dir/child", b"c"), reg("was-file", b"f"),
                     sym("link", "somewhere"), d("keep/", mode=0o700), reg("keep/x", b"x")]),
          dest)
    apply(tar_bytes([reg("file", b"new"), reg("dir", b"now a file"), d("was-file/"),
                     d("link/"), d("keep/", mode=0o755, uid=7)]), dest)
    # A file is replaced, never written through: its other link keeps the old content.
    assert (dest / "file").read_bytes() == b"new"
    assert (dest / "other-name").read_bytes() == b"old"
    assert (dest / "dir").read_bytes() == b"now a file"
    assert (dest / "was-file").is_dir() and not (dest / "link").is_symlink()
    # A directory over a directory merges: content kept, metadata updated.
    keep = os.lstat(dest / "keep")
    assert (dest / "keep/x").read_bytes() == b"x"
    assert (stat.S_IMODE(keep.st_mode), keep.st_uid) == (0o755, 7)


def test_root_entry_sets_the_root_metadata(tmp_path: Path) -> None:
    dest = tmp_path / "r"
    apply(tar_bytes([d("./", mode=0o750, uid=3, mtime=MTIME), reg("./a", b"a")]), dest)
    st = os.lstat(dest)
    assert (stat.S_IMODE(st.st_mode), st.st_uid, st.st_mtime) == (0o750, 3, MTIME)
    assert (dest / "a").read_bytes() == b"a"


def test_unsettable_xattrs_are_reported(tmp_path: Path) -> None:
    dest = tmp_path / "r"
    layer = tar_bytes([
        sym("l", "t", pax={"SCHILY.xattr.user.x": "1"}),  # user.* is refused on symlinks
        d("o/", pax={"SCHILY.xattr.trusted.overlay.opaque": "y",
                     "SCHILY.xattr.trusted.overlay.redirect": "/etc"}),
    ])
    result = apply(layer, dest)
    skipped = {(s.path, s.name) for s in result.skipped_xattrs}
    assert skipped == {("l", "user.x"), ("o", "trusted.overlay.opaque"),
                       ("o", "trusted.overlay.redirect")}
    assert "trusted.overlay.opaque" not in os.listxattr(dest / "o")


# --- whiteouts

LOWER = [
    d("a/"), reg("a/keep", b"k"), reg("a/gone", b"g"), d("a/sub/"), reg("a/sub/x", b"x"),
    d("b/", mode=0o750), reg("b/old", b"o"), d("b/olddir/"), reg("b/olddir/y", b"y"),
    reg("c", b"c"), sym("s", "a"), reg("readded", b"lower"),
]
UPPER = [
    d("a/"), wh("a/.wh.gone"), wh("a/.wh.sub"), wh(".wh.c"), wh(".wh.s"),
    d("b/", mode=0o750), reg("b/aaa", b"before the marker"), wh("b/.wh..wh..opq"),
    d("b/olddir/"), reg("b/olddir/z", b"z"), reg("b/new", b"n"),
    reg("readded", b"upper"), wh(".wh.readded"),
]
# A whiteout in a directory that no layer has: nothing to hide.
MISSING = [wh("missing/.wh.nothing")]


def test_whiteouts_delete_mode(tmp_path: Path) -> None:
    dest = tmp_path / "r"
    apply(tar_bytes(LOWER), dest)
    apply(tar_bytes(UPPER + MISSING), dest)
    found = sorted(str(p.relative_to(dest)) for p in dest.rglob("*"))
    assert found == ["a", "a/keep", "b", "b/aaa", "b/new", "b/olddir", "b/olddir/z",
                     "readded"]
    # The same layer's own entry survives its whiteout, wherever the marker sits.
    assert (dest / "readded").read_bytes() == b"upper"
    assert not (dest / "missing").exists()


def test_whiteouts_overlay_mode_match_delete_mode(tmp_path: Path) -> None:
    lower, upper = tmp_path / "lower", tmp_path / "upper"
    apply(tar_bytes(LOWER), lower, whiteouts="overlay")
    apply(tar_bytes(UPPER), upper, whiteouts="overlay")
    gone = os.lstat(upper / "a/gone")
    assert stat.S_ISCHR(gone.st_mode) and gone.st_rdev == 0
    assert stat.S_ISCHR(os.lstat(upper / "a/sub").st_mode)
    assert os.getxattr(upper / "b", "trusted.overlay.opaque") == b"y"
    assert not any(p.name.startswith(".wh.") for p in upper.rglob("*"))
    assert (upper / "readded").read_bytes() == b"upper"

    merged, expected = tmp_path / "merged", tmp_path / "expected"
    apply(tar_bytes(LOWER), expected)
    apply(tar_bytes(UPPER), expected)
    merged.mkdir()
    libc.mount("overlay", str(merged), "overlay", libc.MS_RDONLY,
               f"lowerdir={upper}:{lower}")
    try:
        got = snapshot(merged)
    finally:
        libc.umount2(str(merged))
    want = snapshot(expected)
    # Directory mtimes differ where delete mode removed entries; compare the rest.
    strip = {k: v[:6] + v[7:] if v[0] == stat.S_IFDIR else v for k, v in want.items()}
    assert {k: v[:6] + v[7:] if v[0] == stat.S_IFDIR else v for k, v in got.items()} == strip


def test_overlay_mode_whiteout_in_a_new_directory(tmp_path: Path) -> None:
    # A lower layer may have the directory: the whiteout has to be there for it.
    apply(tar_bytes(MISSING), tmp_path / "r", whiteouts="overlay")
    st = os.lstat(tmp_path / "r/missing/nothing")
    assert stat.S_ISCHR(st.st_mode) and st.st_rdev == 0


# --- compression and digests


def test_digests_plain(tmp_path: Path) -> None:
    layer = tar_bytes(full_layer())
    result = apply(layer, tmp_path / "r")
    digest = "sha256:" + hashlib.sha256(layer).hexdigest()
    assert result.compression == "none"
    assert result.diff_id == result.digest == digest
    assert result.size == result.uncompressed_size == len(layer)


@pytest.mark.parametrize("kind", ["gzip", "bzip2", "xz", "zstd", "gzip-multimember"])
def test_compression_auto_detected(tmp_path: Path, kind: str) -> None:
    layer = tar_bytes(full_layer())
    if kind == "gzip":
        blob = gzip.compress(layer, mtime=0)
    elif kind == "gzip-multimember":
        blob = gzip.compress(layer[:5000], mtime=0) + gzip.compress(layer[5000:], mtime=0)
    elif kind == "bzip2":
        blob = bz2.compress(layer)
    elif kind == "xz":
        blob = lzma.compress(layer)
    else:
        if shutil.which("zstd") is None:
            pytest.skip("the zstd program is not installed to make a zstd layer")
        blob = subprocess.run(["zstd", "-q", "-c"], input=layer, capture_output=True,
                              check=True).stdout
    result = apply(blob, tmp_path / "r")
    assert result.compression == kind.split("-")[0]
    assert result.diff_id == "sha256:" + hashlib.sha256(layer).hexdigest()
    assert result.digest == "sha256:" + hashlib.sha256(blob).hexdigest()
    assert (result.size, result.uncompressed_size) == (len(blob), len(layer))
    assert (tmp_path / "r/big").read_bytes() == bytes(range(256)) * (3 * 4096 + 17)


def test_trailing_data_after_the_archive_is_hashed(tmp_path: Path) -> None:
    # GNU tar pads archives to 10 KiB records: the diff ID covers the padding too.
    layer = tar_bytes([reg("a", b"a")]) + bytes(10240)
    result = apply(gzip.compress(layer, mtime=0), tmp_path / "r")
    assert result.diff_id == "sha256:" + hashlib.sha256(layer).hexdigest()


def test_declared_compression_must_match(tmp_path: Path) -> None:
    layer = tar_bytes([reg("a", b"a")])
    with pytest.raises(LayerError, match="declared gzip but its content is a plain tar"):
        apply(layer, tmp_path / "r", compression="gzip")
    result = apply(gzip.compress(layer), tmp_path / "r2", compression="gzip")
    assert result.compression == "gzip"


def test_deep_trees_need_no_recursion(tmp_path: Path) -> None:
    # 1500 levels: deeper than Python's recursion limit, within PATH_MAX.
    deep = "a/" * 1500
    dest = tmp_path / "r"
    apply(tar_bytes([reg("d/" + deep + "f", b"deep"), reg("e/" + deep + "g", b"deep"),
                     reg("e/keep", b"k")]), dest)
    apply(tar_bytes([wh(".wh.d"), d("e/"), wh("e/.wh..wh..opq"), reg("e/" + deep + "new")]),
          dest)
    assert not (dest / "d").exists()
    assert not (dest / "e/keep").exists()
    fd = os.open(dest / "e", os.O_RDONLY)
    try:
        for _ in range(1500):
            assert os.listdir(fd) == ["a"]
            nxt = os.open("a", os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        assert os.listdir(fd) == ["new"]
    finally:
        os.close(fd)
    # Removed by the extractor's own iterative removal (shutil.rmtree, which pytest uses
    # for old temporary directories, recurses and would fail on this tree).
    apply(tar_bytes([wh(".wh.e")]), dest)
    assert os.listdir(dest) == []
