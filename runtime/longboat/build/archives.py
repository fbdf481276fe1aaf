"""ADD's archives: recognising a local tar (plain, gzip, bzip2 or xz, by content, as
Docker does) and extracting it with our own path-safe extractor; fetching http(s) URLs.

Only regular files are opened (a device node or FIFO in an image is never opened: an
open alone can have effects, and a FIFO blocks). Downloads follow redirects to http(s)
only, stop at :data:`MAX_DOWNLOAD` bytes while receiving, and take their file name from
the URL's last path component, which must be an ordinary name (not ``.`` or ``..``)."""

from __future__ import annotations

import bz2
import email.utils
import lzma
import os
import posixpath
import stat
import urllib.parse
import urllib.request
import zlib

from longboat.build.errors import BuildError
from longboat.linux import fs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.build.copy import Source

_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DOWNLOAD = 8 << 30


def _tar_header_ok(block: bytes) -> bool:
    from longboat.image.layer_tar import _checksum_ok

    return len(block) >= 512 and _checksum_ok(block[:512])


def open_regular(root_fd: int, path: str) -> int:
    """A read descriptor of the regular file ``path`` inside the root (symlinks followed
    within it). The type is checked on an O_PATH descriptor before the file is opened
    for reading (through that descriptor, so it is the same file): a device node is
    never opened, a FIFO never blocks."""
    from longboat.linux import libc

    pfd = fs.open_in_root(root_fd, path, libc.O_PATH)
    try:
        if not stat.S_ISREG(os.fstat(pfd).st_mode):
            raise BuildError(f"{path}: not a regular file")
        return os.open(fs.fd_path(pfd), _READ)
    finally:
        os.close(pfd)


def is_archive(root_fd: int, path: str) -> bool:
    """Whether the file is a tar archive, possibly compressed."""
    fd = open_regular(root_fd, path)
    try:
        head = os.pread(fd, 1 << 16, 0)
    finally:
        os.close(fd)
    data = head
    try:
        if head[:2] == b"\x1f\x8b":
            data = zlib.decompressobj(31).decompress(head, 512)
        elif head[:3] == b"BZh":
            data = bz2.BZ2Decompressor().decompress(head, 512)
        elif head[:6] == b"\xfd7zXZ\x00":
            data = lzma.LZMADecompressor().decompress(head, 512)
    except (OSError, EOFError, zlib.error, lzma.LZMAError, ValueError):
        return False
    return _tar_header_ok(data)


def extract_archive(source: Source, dest_fd: int) -> None:
    from longboat.build.context import extract_tar

    fd = open_regular(source.root_fd, source.path)
    dest = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dest_fd)
    try:
        with os.fdopen(fd, "rb") as stream:
            extract_tar(stream, fs.fd_path(dest), what=f"archive {source.path}",
                        devices=True)
    finally:
        os.close(dest)


class _HttpRedirects(urllib.request.HTTPRedirectHandler):
    """Redirects to http(s) only (urllib's own default also follows ftp://)."""

    def redirect_request(self, req: urllib.request.Request, fp: Any, code: int, msg: str,
                         headers: Any, newurl: str) -> urllib.request.Request | None:
        scheme = urllib.parse.urlsplit(newurl).scheme.lower()
        if scheme not in ("http", "https"):
            raise BuildError(f"failed to GET {req.full_url}: redirected to a {scheme or 'relative'}"
                             f" URL ({newurl}): only http and https are followed")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener() -> urllib.request.OpenerDirector:
    return urllib.request.build_opener(_HttpRedirects())


def download_name(url: str) -> str:
    """The file name an ADD of ``url`` is copied under: the last component of its path
    (Docker's rule); an empty, ``.`` or ``..`` name is refused."""
    parts = urllib.parse.urlsplit(url)
    name = posixpath.basename(parts.path.rstrip("/")) if parts.path else ""
    if name in ("", ".", ".."):
        raise BuildError(f"cannot determine a filename from url: {url}")
    return name


def download(url: str, directory: str) -> tuple[str, str, int | None]:
    """Fetch ``url`` into ``directory``: (file path, the name it is copied under, mtime
    in ns from Last-Modified or None)."""
    name = download_name(url)
    target = os.path.join(directory, "download-" + os.urandom(8).hex())
    try:
        with _opener().open(url, timeout=60) as response:
            if response.status >= 400:
                raise BuildError(f"failed to GET {url} with status {response.status}")
            mtime = None
            modified = response.headers.get("Last-Modified")
            if modified:
                try:
                    when = email.utils.parsedate_to_datetime(modified)
                    mtime = int(when.timestamp()) * 1_000_000_000
                except (TypeError, ValueError):
                    mtime = None
            size = 0
            with open(target, "wb") as f:
                while chunk := response.read(1 << 20):
                    size += len(chunk)
                    if size > MAX_DOWNLOAD:
                        raise BuildError(f"{url}: larger than {MAX_DOWNLOAD} bytes")
                    f.write(chunk)
    except OSError as exc:
        raise BuildError(f"failed to GET {url}: {exc}") from None
    return target, name, mtime
