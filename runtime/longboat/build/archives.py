"""ADD's archives: recognising a local tar (plain, gzip, bzip2 or xz, by content, as
Docker does) and extracting it with our own path-safe extractor; fetching http(s) URLs."""

from __future__ import annotations

import bz2
import email.utils
import lzma
import os
import posixpath
import urllib.parse
import urllib.request
import zlib

from longboat.build.errors import BuildError
from longboat.linux import fs

TYPE_CHECKING = False
if TYPE_CHECKING:
    from longboat.build.copy import Source

_READ = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC
MAX_DOWNLOAD = 8 << 30


def _tar_header_ok(block: bytes) -> bool:
    from longboat.image.layer_tar import _checksum_ok

    return len(block) >= 512 and _checksum_ok(block[:512])


def is_archive(root_fd: int, path: str) -> bool:
    """Whether the file is a tar archive, possibly compressed."""
    fd = fs.open_in_root(root_fd, path, _READ)
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

    fd = fs.open_in_root(source.root_fd, source.path, _READ)
    dest = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=dest_fd)
    try:
        with os.fdopen(fd, "rb") as stream:
            extract_tar(stream, fs.fd_path(dest), what=f"archive {source.path}",
                        devices=True)
    finally:
        os.close(dest)


def download(url: str, directory: str) -> tuple[str, str, int | None]:
    """Fetch ``url`` into ``directory``: (file path, the name it is copied under, mtime
    in ns from Last-Modified or None)."""
    parts = urllib.parse.urlsplit(url)
    name = posixpath.basename(parts.path.rstrip("/")) if parts.path else ""
    target = os.path.join(directory, "download-" + os.urandom(8).hex())
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
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
    if not name:
        raise BuildError(f"cannot determine a filename from url: {url}")
    return target, name, mtime
