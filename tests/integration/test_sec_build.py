"""Security review of the builder: hostile build contexts, hostile images used by
``COPY --from`` and ``--chown``, ADD URLs with hostile names and redirects (all served
from loopback). Each must fail cleanly (or build what Docker builds) and leave nothing:
no container, mount, snapshot or build directory, nothing written outside the context."""

from __future__ import annotations

import http.server
import io
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

SENTINEL = Path("/tmp/lbs-pwned")


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lbs-build"), rootfs_template,
                        "--change", 'CMD ["sh"]') as daemon:
        yield daemon


def build(engine: Longboatd, context: bytes, *args: str
          ) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": engine.host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    done = subprocess.run(["docker", "build", *args, "-"], capture_output=True, env=env,
                          input=context, timeout=300, check=False)
    return subprocess.CompletedProcess(done.args, done.returncode,
                                       done.stdout.decode(errors="replace"),
                                       done.stderr.decode(errors="replace"))


def assert_nothing_left(engine: Longboatd) -> None:
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    with open("/proc/self/mountinfo") as f:
        assert str(engine.data_root) not in f.read()
    assert list((engine.data_root / "snapshots" / "containers").iterdir()) == []
    tmp = engine.data_root / "tmp"
    assert [p.name for p in tmp.iterdir() if p.name.startswith(("longboat-build-",
                                                                "downloads-"))] == []
    assert not SENTINEL.exists()


Entry = tuple[tarfile.TarInfo, bytes | None]


def _tar(entries: list[Entry], fmt: int = tarfile.GNU_FORMAT) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=fmt) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes = b"x", **attrs: object) -> Entry:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, data


def _special(name: str, kind: bytes, target: str = "", **attrs: object) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    for key, value in attrs.items():
        setattr(info, key, value)
    return info, None


def _dockerfile(text: str) -> Entry:
    return _file("Dockerfile", text.encode())


COPY_ALL = _dockerfile("FROM bb:1\nCOPY . /ctx/\n")


def _pax_path(real: str, shown: str) -> Entry:
    info = tarfile.TarInfo(shown)
    info.pax_headers = {"path": real}
    info.size = 1
    return info, b"x"


def _pax_link(name: str, target: str) -> Entry:
    info = tarfile.TarInfo(name)
    info.type = tarfile.LNKTYPE
    info.linkname = "innocent"
    info.pax_headers = {"linkpath": target}
    return info, None


# -- hostile contexts --------------------------------------------------------------------

@pytest.mark.parametrize("entries, fmt, message", [
    # a symlink leading out, then written through (as a directory and as a file)
    ([COPY_ALL, _special("out", tarfile.SYMTYPE, "/tmp"), _file("out/lbs-pwned")],
     tarfile.GNU_FORMAT, "leads outside"),
    ([COPY_ALL, _special("out", tarfile.SYMTYPE, "/tmp/lbs-pwned"), _file("out")],
     tarfile.GNU_FORMAT, None),
    ([COPY_ALL, _special("d", tarfile.SYMTYPE, "../../../../../../tmp"),
      _file("d/lbs-pwned")], tarfile.GNU_FORMAT, "leads outside"),
    # hard links to outside, directly and through a symlink
    ([COPY_ALL, _special("h", tarfile.LNKTYPE, "/etc/passwd")], tarfile.GNU_FORMAT,
     "absolute path"),
    ([COPY_ALL, _special("h", tarfile.LNKTYPE, "../../../../etc/passwd")],
     tarfile.GNU_FORMAT, "path traversal is refused"),
    ([COPY_ALL, _special("r", tarfile.SYMTYPE, "/"),
      _special("h", tarfile.LNKTYPE, "r/etc/passwd")], tarfile.GNU_FORMAT, "leads outside"),
    # PAX and GNU long names hiding traversal behind an innocent ustar name
    ([COPY_ALL, _pax_path("../../../../tmp/lbs-pwned", "innocent")], tarfile.PAX_FORMAT,
     "path traversal is refused"),
    ([COPY_ALL, _pax_path("/tmp/lbs-pwned", "innocent")], tarfile.PAX_FORMAT,
     "absolute path"),
    ([COPY_ALL, _file("a/" * 60 + "../" * 70 + "tmp/lbs-pwned")], tarfile.GNU_FORMAT,
     "path traversal is refused"),
    ([COPY_ALL, _pax_link("h", "../../../../etc/passwd")], tarfile.PAX_FORMAT,
     "path traversal is refused"),
    ([COPY_ALL, _pax_link("h", "/etc/passwd")], tarfile.PAX_FORMAT, "absolute path"),
    ([COPY_ALL, _special("h", tarfile.LNKTYPE, "a/" * 60 + "../" * 70 + "etc/passwd")],
     tarfile.GNU_FORMAT, "path traversal is refused"),
    # one name switching type: file, then directory, then symlink out, then written
    ([COPY_ALL, _file("sw"), _special("sw", tarfile.DIRTYPE),
      _special("sw", tarfile.SYMTYPE, "/tmp"), _file("sw/lbs-pwned")], tarfile.GNU_FORMAT,
     "leads outside"),
    # devices (also as a name that existed as a file) and set-id bits are not a way out
    ([COPY_ALL, _file("node"), _special("node", tarfile.CHRTYPE, devmajor=1, devminor=1)],
     tarfile.GNU_FORMAT, "device node: refused"),
    ([COPY_ALL, _special("blk", tarfile.BLKTYPE, devmajor=8, devminor=0)],
     tarfile.GNU_FORMAT, "device node: refused"),
])
def test_hostile_context(engine: Longboatd, entries: list[Entry], fmt: int,
                         message: str | None) -> None:
    result = build(engine, _tar(entries, fmt), "-t", "lbs-hostile:1")
    if message is None:
        # Docker builds it: the symlink is replaced by the file, nothing is written out
        assert result.returncode == 0, result.stderr
        engine.docker("rmi", "lbs-hostile:1")
    else:
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert engine.docker("image", "inspect", "lbs-hostile:1",
                             check=False).returncode != 0
    assert_nothing_left(engine)


def test_huge_member_size_is_refused_before_anything_grows(engine: Longboatd) -> None:
    """A header claiming 1 TiB of data with none behind it: refused (the tar ends
    early), not a 1 TiB file."""
    header = tarfile.TarInfo("big")
    header.size = 1 << 40
    # the Dockerfile's header and its one data block, then the lying header, then EOF
    raw = _tar([COPY_ALL])[:1024] + header.tobuf(tarfile.GNU_FORMAT) + b"x" * 4096
    result = build(engine, raw, "-t", "lbs-big:1")
    assert result.returncode != 0
    assert_nothing_left(engine)


def test_deep_nesting(engine: Longboatd) -> None:
    """A context 1500 directories deep (the longest path the kernel takes): copied, or
    refused with a clear error; either way nothing is left."""
    deep = "d/" * 1500
    result = build(engine, _tar([_dockerfile("FROM bb:1\nCOPY . /ctx/\n"),
                                 _file(deep + "leaf", b"leaf\n")]), "-t", "lbs-deep:1")
    assert "internal error" not in result.stderr
    if result.returncode == 0:
        out = engine.docker("run", "--rm", "--network", "none", "lbs-deep:1", "cat",
                            "/ctx/" + deep + "leaf").stdout
        assert out == "leaf\n"
        engine.docker("rmi", "lbs-deep:1")
    else:
        assert "too deep" in result.stderr or "too long" in result.stderr, result.stderr
    assert_nothing_left(engine)


@pytest.mark.parametrize("dockerfile, message", [
    ("FROM bb:1\nWORKDIR /" + "w/" * 2100 + "\n", "File name too long"),
    ("FROM bb:1\nCOPY --chown=99999999999 f /f\n", "out of range"),
    ("FROM bb:1\nCOPY --chown=1:4294967295 f /f\n", "out of range"),
    ("FROM bb:1\nCOPY f /" + "c/" * 2100 + "\n", "too long"),
])
def test_hostile_paths_and_ids_are_clear_errors(engine: Longboatd, dockerfile: str,
                                                message: str) -> None:
    result = build(engine, _tar([_dockerfile(dockerfile), _file("f")]), "-t", "lbs-ids:1")
    assert result.returncode != 0
    assert "internal error" not in result.stderr
    assert message in result.stderr, result.stderr[-2000:]
    assert_nothing_left(engine)


# -- hostile images: COPY --from, --chown ---------------------------------------------------

def _image_with(engine: Longboatd, name: str, entries: list[Entry]) -> None:
    """An image whose files come from an ADDed archive (ADD keeps device nodes)."""
    payload = _tar(entries)
    result = build(engine, _tar([_dockerfile("FROM bb:1\nADD payload.tar /\n"),
                                 _file("payload.tar", payload)]), "-t", name)
    assert result.returncode == 0, result.stderr


def test_copy_from_never_opens_device_nodes(engine: Longboatd) -> None:
    # major 4095 has no driver: opening it fails with ENXIO, and nodev with EACCES
    _image_with(engine, "lbs-devs:1", [
        _special("dev-node", tarfile.CHRTYPE, devmajor=4095, devminor=0),
        _special("fifo", tarfile.FIFOTYPE),
        _special("link-to-node", tarfile.SYMTYPE, "/dev-node")])
    try:
        for src in ("/dev-node", "/fifo", "/link-to-node"):
            result = build(engine, _tar([_dockerfile(
                f"FROM bb:1\nCOPY --from=lbs-devs:1 {src} /copied\n")]), "-t", "lbs-c:1")
            assert result.returncode != 0
            assert "not a regular file" in result.stderr, result.stderr
            assert_nothing_left(engine)
        # a directory holding them copies them as they are (Docker's behaviour)
        result = build(engine, _tar([_dockerfile(
            "FROM lbs-devs:1 AS src\nFROM bb:1\nCOPY --from=src / /copied/\n")]),
            "-t", "lbs-c:1")
        assert result.returncode == 0, result.stderr
        out = engine.docker("run", "--rm", "--network", "none", "lbs-c:1", "stat", "-c",
                            "%F %t", "/copied/dev-node", "/copied/fifo").stdout
        assert out.split("\n")[:2] == ["character special file fff", "fifo 0"]
        engine.docker("rmi", "lbs-c:1")
    finally:
        engine.docker("rmi", "lbs-devs:1")
    assert_nothing_left(engine)


def test_chown_never_opens_a_device_passwd(engine: Longboatd) -> None:
    _image_with(engine, "lbs-pw:1", [
        _special("etc/passwd", tarfile.CHRTYPE, devmajor=4095, devminor=0)])
    try:
        result = build(engine, _tar([_dockerfile("FROM lbs-pw:1\nCOPY --chown=root a /a\n"),
                                     _file("a")]), "-t", "lbs-pw2:1")
        assert result.returncode != 0
        assert "/etc/passwd" in result.stderr
        assert "internal error" not in result.stderr
    finally:
        engine.docker("rmi", "lbs-pw:1")
    assert_nothing_left(engine)


def test_container_user_lookup_never_opens_a_device_passwd(engine: Longboatd) -> None:
    """Not the builder's, the engine's: ``--user name`` reads the image's /etc/passwd;
    a device node there is refused by its type, never opened."""
    _image_with(engine, "lbs-pw3:1", [
        _special("etc/passwd", tarfile.CHRTYPE, devmajor=4095, devminor=0),
        _special("etc/group", tarfile.FIFOTYPE)])
    try:
        for user in ("lbs", "1:lbs"):
            result = engine.docker("run", "--rm", "--network", "none", "--user", user,
                                   "lbs-pw3:1", "true", check=False)
            assert result.returncode != 0
            assert "not a regular file" in result.stderr, result.stderr
    finally:
        engine.docker("rmi", "lbs-pw3:1")
    assert_nothing_left(engine)


def test_copy_from_symlinks_in_the_image_resolve_inside_it(engine: Longboatd) -> None:
    _image_with(engine, "lbs-links:1", [
        _special("abs", tarfile.SYMTYPE, "/etc/shadow"),
        _special("rel", tarfile.SYMTYPE, "../../../../../etc/shadow"),
        _special("dir", tarfile.SYMTYPE, "/"),
        _file("etc/shadow", b"the image's own\n")])
    try:
        result = build(engine, _tar([_dockerfile(
            "FROM bb:1\nCOPY --from=lbs-links:1 /abs /a\n"
            "COPY --from=lbs-links:1 /rel /r\nCOPY --from=lbs-links:1 /dir/etc/shadow /d\n")]),
            "-t", "lbs-l2:1")
        assert result.returncode == 0, result.stderr
        out = engine.docker("run", "--rm", "--network", "none", "lbs-l2:1", "cat", "/a",
                            "/r", "/d").stdout
        assert out == "the image's own\n" * 3
        engine.docker("rmi", "lbs-l2:1")
    finally:
        engine.docker("rmi", "lbs-links:1")
    assert_nothing_left(engine)


def test_destination_symlinks_in_the_image_stay_inside(engine: Longboatd) -> None:
    """COPY and WORKDIR through symlinks of the image (absolute and ``..``) land inside
    the image, never on the host."""
    _image_with(engine, "lbs-dst:1", [
        _special("tmpout", tarfile.SYMTYPE, "/tmp"),
        _special("up", tarfile.SYMTYPE, "../../../../tmp")])
    try:
        result = build(engine, _tar([_dockerfile(
            "FROM lbs-dst:1\nCOPY f /tmpout/lbs-pwned\nCOPY f /up/lbs-pwned2\n"
            "WORKDIR /up/lbs-workdir\n"), _file("f", b"in\n")]), "-t", "lbs-d2:1")
        assert result.returncode == 0, result.stderr
        out = engine.docker("run", "--rm", "--network", "none", "lbs-d2:1", "sh", "-c",
                            "cat /tmp/lbs-pwned /tmp/lbs-pwned2; pwd").stdout
        assert out == "in\nin\n/tmp/lbs-workdir\n"     # the image's /tmp
        assert not Path("/tmp/lbs-pwned2").exists()
        assert not Path("/tmp/lbs-workdir").exists()
        engine.docker("rmi", "lbs-d2:1")
    finally:
        engine.docker("rmi", "lbs-dst:1")
    assert_nothing_left(engine)


def test_add_archive_escapes_are_refused(engine: Longboatd) -> None:
    for payload, message in (
            (_tar([_special("out", tarfile.SYMTYPE, "/tmp"), _file("out/lbs-pwned")]),
             "leads outside"),
            (_tar([_file("../../../tmp/lbs-pwned")]), "path traversal is refused"),
            (_tar([_special("h", tarfile.LNKTYPE, "/etc/passwd")]), "absolute path")):
        result = build(engine, _tar([_dockerfile("FROM bb:1\nADD p.tar /x/\n"),
                                     _file("p.tar", payload)]), "-t", "lbs-add:1")
        assert result.returncode != 0
        assert message in result.stderr, result.stderr
        assert_nothing_left(engine)


# -- ADD of URLs (a loopback server only) -----------------------------------------------------

class _Handler(http.server.BaseHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path.startswith("/redirect-ftp"):
            self.send_response(302)
            self.send_header("Location", "ftp://127.0.0.1:9/file")
            self.end_headers()
            return
        if self.path.startswith("/redirect-file"):
            self.send_response(302)
            self.send_header("Location", "file:///etc/shadow")
            self.end_headers()
            return
        if self.path.startswith("/redirect-ok"):
            self.send_response(302)
            self.send_header("Location", "/fine.txt")
            self.end_headers()
            return
        body = b"served\n"
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)


@pytest.fixture
def server() -> Iterator[str]:
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()


@pytest.mark.parametrize("path, dest, message", [
    ("/..", "/", "cannot determine a filename"),
    ("/..", "/web/", "cannot determine a filename"),
    ("/.", "/web/", "cannot determine a filename"),
    ("/a/..", "/web/", "cannot determine a filename"),
    ("/redirect-ftp", "/web/", "only http and https"),
    ("/redirect-file", "/web/", "Redirection to url 'file:///etc/shadow' is not allowed"),
])
def test_add_url_hostile(engine: Longboatd, server: str, path: str, dest: str,
                         message: str) -> None:
    result = build(engine, _tar([_dockerfile(f"FROM bb:1\nADD {server}{path} {dest}\n")]),
                   "-t", "lbs-url:1")
    assert result.returncode != 0
    assert message in result.stderr, result.stderr
    assert_nothing_left(engine)


def test_add_url_redirect_within_http_is_followed(engine: Longboatd, server: str) -> None:
    result = build(engine, _tar([_dockerfile(
        f"FROM bb:1\nADD {server}/redirect-ok /web/\n")]), "-t", "lbs-url:1")
    assert result.returncode == 0, result.stderr
    out = engine.docker("run", "--rm", "--network", "none", "lbs-url:1", "cat",
                        "/web/redirect-ok").stdout
    assert out == "served\n"
    engine.docker("rmi", "lbs-url:1")
    assert_nothing_left(engine)


def test_run_sees_no_descriptor_of_the_builder(engine: Longboatd) -> None:
    """A RUN step's process holds stdio only (the builder holds context and image roots
    open meanwhile): nothing of the host reachable through /proc/self/fd."""
    result = build(engine, _tar([_dockerfile(
        "FROM bb:1\nCOPY f /f\nRUN ls -l /proc/self/fd/ > /fds; ls /proc/self/fd | wc -l "
        ">> /fds\n"), _file("f")]), "-t", "lbs-fds:1")
    assert result.returncode == 0, result.stderr
    out = engine.docker("run", "--rm", "--network", "none", "lbs-fds:1", "cat",
                        "/fds").stdout
    assert out.splitlines()[-1].strip() == "4", out     # 0, 1, 2 and ls's own directory
    engine.docker("rmi", "lbs-fds:1")
    assert_nothing_left(engine)


def test_the_dockerfile_parameter_stays_in_the_context(engine: Longboatd) -> None:
    """``dockerfile=`` names a file of the context: ``..`` and absolute names resolve
    inside it (so the host's files are never read as a Dockerfile)."""
    import http.client
    import socket

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.connect(str(engine.socket))
            self.sock = sock

    context = _tar([_dockerfile("FROM bb:1\n")])
    for name in ("../../../../etc/passwd", "/etc/passwd", "/proc/self/environ"):
        conn = Unix("localhost", timeout=60)
        try:
            conn.request("POST", "/v1.41/build?t=lbs-df:1&dockerfile="
                         + name.replace("/", "%2F"), body=context,
                         headers={"Content-Type": "application/x-tar"})
            out = conn.getresponse().read().decode()
        finally:
            conn.close()
        assert "Cannot locate specified Dockerfile" in out, out
        assert "root:" not in out
    assert engine.docker("image", "inspect", "lbs-df:1", check=False).returncode != 0
    assert_nothing_left(engine)


def test_run_cannot_make_the_builder_delete_host_files(engine: Longboatd) -> None:
    """After a RUN the builder removes the empty mount points the runtime made in the
    container's upper directory (an image VOLUME is one). The command can replace a
    directory above such a mount point with a symlink to /: the removal must still
    happen inside the upper directory, never through the link on the host."""
    victim = Path(f"/tmp/lbs-victim-{os.getpid()}")
    (victim / "keep").mkdir(parents=True, exist_ok=True)
    (victim / "keep" / "precious").write_text("still here\n")
    (victim / "empty").mkdir(exist_ok=True)
    inside = str(victim).lstrip("/")
    try:
        result = build(engine, _tar([_dockerfile(
            f"FROM bb:1\nVOLUME /x/{inside}/keep /x/{inside}/empty/sub\n"
            "RUN mv /x /moved && ln -s / /x\n")]), "-t", "lbs-victim:1")
        assert (victim / "keep" / "precious").read_text() == "still here\n"
        assert (victim / "empty").is_dir()
        if result.returncode == 0:
            out = engine.docker("run", "--rm", "--network", "none", "--entrypoint",
                                "readlink", "lbs-victim:1", "/x").stdout
            assert out == "/\n"
            engine.docker("rmi", "lbs-victim:1")
        else:
            assert "internal error" not in result.stderr, result.stderr
    finally:
        import shutil
        shutil.rmtree(victim, ignore_errors=True)
    assert_nothing_left(engine)


def test_a_context_is_never_removed_through_a_mount(tmp_path: Path) -> None:
    """A step that failed to unmount leaves a mount in the build's directory: closing
    the context detaches it and removes the rest, never what is mounted there."""
    from longboat.build.context import BuildContext
    from longboat.linux import libc

    victim = tmp_path / "victim"
    victim.mkdir()
    (victim / "precious").write_text("kept\n")
    (tmp_path / "tmp").mkdir()
    ctx = BuildContext(str(tmp_path / "tmp"), 10, head=b"plain")
    mnt = Path(ctx.dir) / "mnt1"
    mnt.mkdir()
    libc.mount(str(victim), str(mnt), None, libc.MS_BIND)
    try:
        ctx.close()
    finally:
        if mnt.exists() and os.path.ismount(mnt):
            libc.umount2(str(mnt), libc.MNT_DETACH)
    assert (victim / "precious").read_text() == "kept\n"
    assert not os.path.exists(ctx.dir)
