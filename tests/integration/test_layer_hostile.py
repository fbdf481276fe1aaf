"""Hostile layers: traversal, escaping symlinks and hardlinks, whiteouts aimed outside,
truncated, oversized and non-tar streams. Each gives a clear error and leaves everything
outside the destination as it was (dest is tmp_path/root; a canary lives beside it)."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest

from longboat.image.layer import LayerError, apply_layer

pytestmark = pytest.mark.integration

Entry = tuple[tarfile.TarInfo, bytes]


def info(name: str, kind: bytes = tarfile.REGTYPE, linkname: str = "", size: int = 0,
         pax: dict[str, str] | None = None) -> tarfile.TarInfo:
    ti = tarfile.TarInfo(name)
    ti.type, ti.linkname, ti.mode, ti.mtime, ti.size = kind, linkname, 0o644, 1_600_000_000, size
    if pax:
        ti.pax_headers = dict(pax)
    return ti


def reg(name: str, data: bytes = b"pwned", **kw: object) -> Entry:
    return info(name, size=len(data), **kw), data  # type: ignore[arg-type]


def d(name: str) -> Entry:
    return info(name, tarfile.DIRTYPE), b""


def sym(name: str, target: str) -> Entry:
    return info(name, tarfile.SYMTYPE, target), b""


def hard(name: str, target: str) -> Entry:
    return info(name, tarfile.LNKTYPE, target), b""


def tar_bytes(entries: list[Entry], fmt: int = tarfile.PAX_FORMAT) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=fmt) as tar:
        for ti, data in entries:
            tar.addfile(ti, io.BytesIO(data) if ti.isreg() and data else None)
    return buf.getvalue()


def _state(tmp_path: Path) -> dict[str, object]:
    """Everything outside dest that a hostile layer could reach."""
    state: dict[str, object] = {"top": sorted(p.name for p in tmp_path.iterdir())}
    for p in sorted((tmp_path / "outside").rglob("*")):
        st = os.lstat(p)
        content = p.read_bytes() if p.is_file() and not p.is_symlink() else None
        state[str(p)] = (st.st_mode, st.st_nlink, st.st_mtime_ns, content)
    for path in ("/etc/passwd", "/etc/x", "/etc/abs", "/x", "/escape"):
        try:
            st = os.lstat(path)
            state[path] = (st.st_mode, st.st_nlink, st.st_mtime_ns,
                           hashlib.sha256(Path(path).read_bytes()).hexdigest())
        except FileNotFoundError:
            state[path] = None
    return state


@pytest.fixture
def root(tmp_path: Path) -> Path:
    outside = tmp_path / "outside"
    (outside / "sub").mkdir(parents=True)
    (outside / "canary").write_bytes(b"canary")
    (outside / "sub" / "deep").write_bytes(b"deep")
    dest = tmp_path / "root"
    dest.mkdir()
    return dest


def _raw_header(name: bytes, kind: bytes, size_field: bytes) -> bytes:
    hdr = bytearray(512)
    hdr[0:len(name)] = name
    hdr[100:108] = b"0000644\0"
    hdr[108:116] = b"0000000\0"
    hdr[116:124] = b"0000000\0"
    hdr[124:136] = size_field
    hdr[136:148] = b"00000000000\0"
    hdr[148:156] = b" " * 8
    hdr[156:157] = kind
    hdr[257:265] = b"ustar\x0000"
    hdr[148:156] = b"%06o\0 " % sum(hdr)
    return bytes(hdr)


def _valid() -> bytes:
    # Blocks: dir/ at 0, dir/a at 512 (data 1024-4096), dir/b at 4096 (data to 5120),
    # then the end-of-archive marker.
    return tar_bytes([d("dir/"), reg("dir/a", b"A" * 3000), reg("dir/b", b"B" * 100)])


def _random_valid() -> bytes:
    return tar_bytes([reg("noise", bytes(range(256)) * 7 + os.urandom(8000))])


# (id, layer, error message pattern, apply_layer options)
CASES: list[tuple[str, Callable[[], bytes], str, dict[str, object]]] = [
    ("dotdot", lambda: tar_bytes([reg("../escape")]), r"'\.\.' component", {}),
    ("dotdot-overwrite-canary", lambda: tar_bytes([reg("../outside/canary")]),
     r"'\.\.' component", {}),
    ("absolute", lambda: tar_bytes([reg("/etc/abs")]), "absolute path", {}),
    ("dotdot-inside", lambda: tar_bytes([reg("a/../../x")]), r"'\.\.' component", {}),
    ("dotdot-dir", lambda: tar_bytes([d("../outside/new/")]), r"'\.\.' component", {}),
    ("pax-path-override", lambda: tar_bytes([reg("harmless", pax={"path": "../escape"})]),
     r"'\.\.' component", {}),
    ("gnu-longname", lambda: tar_bytes([reg("../" + "x" * 120)], tarfile.GNU_FORMAT),
     r"'\.\.' component", {}),
    ("symlink-root-then-write",
     lambda: tar_bytes([sym("evil", "/"), reg("evil/etc/x")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("symlink-up-then-write",
     lambda: tar_bytes([sym("evil", "../../.."), reg("evil/x")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("symlink-to-canary-dir-then-write",
     lambda: tar_bytes([sym("evil", "../outside"), reg("evil/canary")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("symlink-nested-then-mkdir",
     lambda: tar_bytes([d("a/"), sym("a/evil", "../../outside"), d("a/evil/sub/new/")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("symlink-chain-then-write",
     lambda: tar_bytes([sym("one", "two"), sym("two", "../outside"), reg("one/sub/x")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("symlink-loop-then-write",
     lambda: tar_bytes([sym("a", "b"), sym("b", "a"), reg("a/x")]),
     "symlink loop", {}),
    ("hardlink-absolute", lambda: tar_bytes([hard("x", "/etc/passwd")]),
     "absolute path", {}),
    ("hardlink-dotdot", lambda: tar_bytes([hard("x", "../outside/canary")]),
     r"'\.\.' component", {}),
    ("hardlink-through-symlink",
     lambda: tar_bytes([sym("evil", "../outside"), hard("x", "evil/canary")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("hardlink-through-absolute-symlink",
     lambda: tar_bytes([sym("evil", "/etc"), hard("x", "evil/passwd")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("hardlink-to-directory", lambda: tar_bytes([d("dir/"), hard("x", "dir")]),
     "hardlink to directory", {}),
    ("hardlink-missing", lambda: tar_bytes([hard("x", "nothing/here")]),
     "does not exist", {}),
    ("whiteout-dotdot", lambda: tar_bytes([reg("../.wh.outside")]),
     r"'\.\.' component", {}),
    ("whiteout-of-parent", lambda: tar_bytes([d("a/"), reg("a/.wh..."),]),
     r"whiteout of '\.\.'", {}),
    ("whiteout-of-self", lambda: tar_bytes([reg(".wh.")]), "whiteout of ''", {}),
    ("whiteout-through-symlink",
     lambda: tar_bytes([sym("evil", "../outside"), reg("evil/.wh.canary")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("whiteout-through-symlink-overlay",
     lambda: tar_bytes([sym("evil", "../outside"), reg("evil/.wh.canary")]),
     "goes through a symlink that leads outside the layer root", {"whiteouts": "overlay"}),
    ("opaque-through-symlink",
     lambda: tar_bytes([sym("evil", "../outside"), reg("evil/.wh..wh..opq")]),
     "goes through a symlink that leads outside the layer root", {}),
    ("opaque-through-symlink-overlay",
     lambda: tar_bytes([sym("evil", "/"), reg("evil/.wh..wh..opq")]),
     "goes through a symlink that leads outside the layer root", {"whiteouts": "overlay"}),
    ("parent-is-a-file", lambda: tar_bytes([reg("f"), reg("f/x")]), "not a directory", {}),
    ("truncated-in-data", lambda: _valid()[:512 * 3 + 1000], "truncated", {}),
    ("truncated-in-header", lambda: _valid()[:4096 + 100],
     "truncated: stream ends inside a header", {}),
    ("truncated-no-end-marker", lambda: _valid()[:5120],
     "truncated: no end-of-archive marker", {}),
    ("truncated-gzip-trailer", lambda: gzip.compress(_valid())[:-4],
     "gzip stream is truncated", {}),
    ("truncated-gzip-data", lambda: gzip.compress(_random_valid())[:3000], "truncated", {}),
    ("corrupt-gzip", lambda: gzip.compress(_valid())[:40] + b"\xff" * 200,
     "not valid gzip", {}),
    ("size-beyond-limit",
     lambda: tar_bytes([reg("big", b"x" * (2 << 20))]), "beyond the limit of 1048576",
     {"max_entry_size": 1 << 20}),
    ("absurd-declared-size",
     lambda: _raw_header(b"huge", b"0", b"\x80" + (100 << 40).to_bytes(11, "big")),
     "beyond the limit", {}),
    ("layer-beyond-limit", lambda: gzip.compress(tar_bytes([reg("z", bytes(8 << 20))])),
     "larger than the limit", {"max_size": 4 << 20}),
    ("huge-pax-header",
     lambda: _raw_header(b"././@PaxHeader", b"x", b"%011o\0" % (64 << 20)),
     "extended header", {}),
    ("corrupt-second-header",
     lambda: (lambda b: b[:520] + b"\xff" + b[521:])(_valid()), "bad checksum", {}),
    ("not-tar", lambda: bytes(range(256)) * 16, "not a tar archive", {}),
    ("not-tar-short", lambda: b"hello, world", "not a tar archive", {}),
    ("empty", lambda: b"", "empty", {}),
    ("gzip-of-not-tar", lambda: gzip.compress(b"#!/bin/sh\n" * 200), "not a tar archive",
     {}),
    ("sparse", lambda: tar_bytes([(info("s", tarfile.GNUTYPE_SPARSE), b"")],
                                 tarfile.GNU_FORMAT), "sparse", {}),
    ("negative-owner",
     lambda: (lambda h: h[:108] + b"-000001\0" + h[116:148] + b"%06o\0 " % (
         sum(h[:108] + b"-000001\0" + h[116:148]) + 256 + sum(h[156:])) + h[156:])(
         _raw_header(b"neg", b"0", b"00000000000\0")) + bytes(1024),
     "negative owner", {}),
]


@pytest.mark.parametrize(("layer", "message", "options"), [c[1:] for c in CASES],
                         ids=[c[0] for c in CASES])
def test_hostile_layer_is_refused(tmp_path: Path, root: Path, layer: Callable[[], bytes],
                                  message: str, options: dict[str, object]) -> None:
    before = _state(tmp_path)
    with pytest.raises(LayerError, match=message):
        apply_layer(io.BytesIO(layer()), str(root), **options)  # type: ignore[arg-type]
    assert _state(tmp_path) == before
    assert (tmp_path / "outside" / "canary").read_bytes() == b"canary"


def test_symlink_as_last_component_is_replaced_not_followed(tmp_path: Path,
                                                            root: Path) -> None:
    before = _state(tmp_path)
    (root / "evil").symlink_to("../outside/canary")
    (root / "evildir").symlink_to("../outside")
    (root / "evilnode").symlink_to("../outside/sub")
    layer = tar_bytes([reg("evil", b"mine"), d("evildir/"), sym("evilnode", "/etc"),
                       reg("evildir/file", b"inside")])
    apply_layer(io.BytesIO(layer), str(root))
    assert _state(tmp_path) == before
    assert not (root / "evil").is_symlink() and (root / "evil").read_bytes() == b"mine"
    assert (root / "evildir").is_dir() and not (root / "evildir").is_symlink()
    assert (root / "evildir/file").read_bytes() == b"inside"
    assert os.readlink(root / "evilnode") == "/etc"


def test_whiteout_removes_a_symlink_not_its_target(tmp_path: Path, root: Path) -> None:
    before = _state(tmp_path)
    (root / "link").symlink_to("../outside")
    (root / "dirlink").symlink_to("/etc")
    apply_layer(io.BytesIO(tar_bytes([reg(".wh.link"), reg(".wh.dirlink")])), str(root))
    assert _state(tmp_path) == before
    assert not os.path.lexists(root / "link") and not os.path.lexists(root / "dirlink")


def test_opaque_directory_never_descends_symlinks(tmp_path: Path, root: Path) -> None:
    before = _state(tmp_path)
    (root / "d").mkdir()
    (root / "d" / "out").symlink_to("../../outside")
    (root / "d" / "abs").symlink_to("/etc")
    apply_layer(io.BytesIO(tar_bytes([d("d/"), reg("d/.wh..wh..opq")])), str(root))
    assert _state(tmp_path) == before
    assert list((root / "d").iterdir()) == []


def test_symlinks_inside_the_root_are_followed_beneath_it(root: Path) -> None:
    # Merged-/usr images write through relative symlinks that stay inside: allowed.
    layer = tar_bytes([d("usr/"), d("usr/lib/"), sym("lib", "usr/lib"),
                       reg("lib/libc.so", b"libc"), hard("usr/lib/libc.so.6", "lib/libc.so")])
    apply_layer(io.BytesIO(layer), str(root))
    assert (root / "usr/lib/libc.so").read_bytes() == b"libc"
    assert os.lstat(root / "usr/lib/libc.so.6").st_ino == os.lstat(
        root / "usr/lib/libc.so").st_ino


def test_invalid_xattr_is_refused(root: Path) -> None:
    layer = tar_bytes([reg("f", pax={"SCHILY.xattr.user." + "x" * 300: "v"})])
    with pytest.raises(LayerError, match=r"extended attribute .* is not valid"):
        apply_layer(io.BytesIO(layer), str(root))
    layer = tar_bytes([reg("g", pax={"SCHILY.xattr.security.capability": "garbage"})])
    with pytest.raises(LayerError, match=r"extended attribute 'security\.capability'"):
        apply_layer(io.BytesIO(layer), str(root))
