"""Security review of the builder, the parts that need no root: ADD's URL names,
redirects and size limit (a loopback server only), where a context is received, and
the parser and substitution under very long or deeply nested input (bounded time, a
clear error or a result, never a crash)."""

from __future__ import annotations

import http.server
import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from longboat.build import archives, context
from longboat.build.dockerfile import parse
from longboat.build.errors import BuildError, DockerfileError
from longboat.build.shell_words import process_word, process_words

pytestmark = pytest.mark.unit


class _Handler(http.server.BaseHTTPRequestHandler):
    sent = 0

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/endless":
            self.send_response(200)
            self.end_headers()
            chunk = b"x" * (1 << 16)
            try:
                while _Handler.sent < 64 << 20:
                    self.wfile.write(chunk)
                    _Handler.sent += len(chunk)
            except OSError:
                pass
            return
        if self.path == "/to-ftp":
            self.send_response(301)
            self.send_header("Location", "ftp://127.0.0.1:9/x")
            self.end_headers()
            return
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")


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


@pytest.mark.parametrize("url", ["http://h/..", "http://h/.", "http://h/", "http://h",
                                 "http://h/a/..", "http://h/a/../"])
def test_download_names_that_are_not_names_are_refused(url: str) -> None:
    with pytest.raises(BuildError, match="cannot determine a filename"):
        archives.download_name(url)


def test_download_name_is_the_last_component() -> None:
    assert archives.download_name("http://h/a/b.tar.gz?x=1#f") == "b.tar.gz"
    assert archives.download_name("http://h/%2e%2e") == "%2e%2e"   # not unquoted: a name


def test_download_stops_at_the_limit_while_receiving(server: str, tmp_path: Path,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(archives, "MAX_DOWNLOAD", 4 << 20)
    _Handler.sent = 0
    with pytest.raises(BuildError, match="larger than 4194304 bytes"):
        archives.download(server + "/endless", str(tmp_path))
    # the partial file never grew past the limit (plus one chunk)
    sizes = [p.stat().st_size for p in tmp_path.iterdir()]
    assert all(size <= (4 << 20) + (1 << 20) for size in sizes)


def test_download_refuses_redirects_to_other_schemes(server: str, tmp_path: Path) -> None:
    with pytest.raises(BuildError, match="only http and https"):
        archives.download(server + "/to-ftp", str(tmp_path))


def test_download_of_a_name(server: str, tmp_path: Path) -> None:
    path, name, _ = archives.download(server + "/file.txt", str(tmp_path))
    assert name == "file.txt"
    assert Path(path).read_bytes() == b"ok"


# -- where a context is received -----------------------------------------------------------

@pytest.mark.parametrize("head", [b"\x1f\x8b\x08", b"BZh91", b"\xfd7zXZ\x00",
                                  b"\x28\xb5\x2f\xfd"])
def test_a_compressed_context_is_never_received_in_memory(tmp_path: Path, head: bytes
                                                          ) -> None:
    ctx = context.BuildContext(str(tmp_path), 1024, head=head)
    try:
        assert ctx.dir.startswith(str(tmp_path))
        assert os.stat(ctx.dir).st_mode & 0o777 == 0o700
    finally:
        ctx.close()
    assert not os.path.exists(ctx.dir)


def test_a_large_context_is_received_on_disk(tmp_path: Path) -> None:
    ctx = context.BuildContext(str(tmp_path), context.MEMORY_CONTEXT + 1, head=b"plain")
    try:
        assert ctx.dir.startswith(str(tmp_path))
    finally:
        ctx.close()


def test_a_small_plain_context_may_be_in_memory_and_is_private(tmp_path: Path) -> None:
    ctx = context.BuildContext(str(tmp_path), 1024, head=b"plain")
    try:
        assert os.stat(ctx.dir).st_mode & 0o777 == 0o700
        assert os.stat(ctx.dir).st_uid == os.getuid()
    finally:
        ctx.close()
    assert not os.path.exists(ctx.dir)


def test_remove_tree_handles_any_depth(tmp_path: Path) -> None:
    top = tmp_path / "deep"
    top.mkdir()
    fd = os.open(top, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1800):       # deeper than Python's recursion limit
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.symlink("/", "out", dir_fd=fd)
    finally:
        os.close(fd)
    context.remove_tree(str(top))
    assert not top.exists()
    assert os.path.exists("/etc/passwd")
    context.remove_tree(str(top))     # gone: silent


# -- the parser and substitution under hostile input -----------------------------------------

def _fast(fn: object, limit: float = 5.0) -> None:
    start = time.monotonic()
    assert callable(fn)
    fn()
    assert time.monotonic() - start < limit


def test_a_very_long_line_parses_in_bounded_time() -> None:
    text = "FROM x\nRUN echo " + "a" * (3 << 20) + "\n"
    _fast(lambda: parse(text))


def test_many_continuations_parse_in_bounded_time() -> None:
    text = "FROM x\nRUN echo a \\\n" + "  b \\\n" * 200_000 + "  c\n"
    _fast(lambda: parse(text))


def test_many_instructions_parse_in_bounded_time() -> None:
    text = "FROM x\n" + "ENV A=b\n" * 100_000
    _fast(lambda: parse(text))


@pytest.mark.parametrize("directive", ["# escape=x", "# escape=\\\\", "# escape=\n",
                                       "# escape=$"])
def test_escape_directive_takes_only_backslash_or_backtick(directive: str) -> None:
    text = directive + "\nFROM x\n"
    try:
        df = parse(text)
    except DockerfileError as exc:
        assert "escape" in str(exc)
    else:
        assert df.escape in ("\\", "`")


def test_substitution_of_long_and_nested_words_is_bounded() -> None:
    env = {"A": "a" * 1000}
    _fast(lambda: process_word("$A" * 20_000, env))
    nested = "${X:-" * 2000 + "v" + "}" * 2000
    try:
        _fast(lambda: process_word(nested, env))
    except BuildError:
        pass    # refused, not a crash
    _fast(lambda: process_words("x " * 200_000, env))


def test_deeply_nested_json_is_the_shell_form() -> None:
    df = parse("FROM x\nCMD " + "[" * 100_000 + "\n")
    assert df.nodes[1].json_args() is None


def test_unterminated_substitutions_are_errors() -> None:
    for text in ("${A", "${A:-", '"abc', "'abc", "${:-x}"):
        try:
            process_word(text, {})
        except BuildError:
            pass


def test_wildcard_sources_match_at_any_depth(tmp_path: Path) -> None:
    from longboat.build import copy as copying
    from longboat.linux import fs

    fd = os.open(tmp_path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        for _ in range(1100):       # deeper than Python's recursion limit
            os.mkdir("d", dir_fd=fd)
            nxt = os.open("d", os.O_RDONLY | os.O_DIRECTORY, dir_fd=fd)
            os.close(fd)
            fd = nxt
        os.close(os.open("x", os.O_CREAT | os.O_WRONLY, 0o644, dir_fd=fd))
        os.symlink("/", "out", dir_fd=fd)
    finally:
        os.close(fd)
    root = fs.open_root(str(tmp_path))
    try:
        found = copying.resolve(root, ["*/" * 1100 + "x", "*/" * 1100 + "out/etc"],
                                context=True, instruction="COPY")
        assert [s.path for s in found] == ["d/" * 1100 + "x"]   # no way through the link
    finally:
        os.close(root)
    context.remove_tree(str(tmp_path))
