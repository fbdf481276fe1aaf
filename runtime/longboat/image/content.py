"""The content-addressed blob store: ``ROOT/blobs/sha256/<hex>``, in OCI image layout.

Blobs are written through :class:`BlobWriter`: into ``ROOT/ingest/``, hashed as they
arrive, checked against the digest and size they should have, fsynced, then renamed into
place. A crash leaves at worst a stray file in ``ingest/`` (removed by :meth:`clean_ingest`)
and never a blob whose content does not match its name.
"""

from __future__ import annotations

import hashlib
import os
import uuid

from longboat.errors import InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from types import TracebackType
    from typing import BinaryIO

_HEX = frozenset("0123456789abcdef")
LAYOUT = '{"imageLayoutVersion": "1.0.0"}'


class DigestMismatch(InvalidArgument):
    """Content that does not match the digest or size it was announced with."""


def check_digest(digest: str) -> str:
    """``sha256:<64 hex>`` or InvalidArgument (the only algorithm we store)."""
    algorithm, _, hexpart = digest.partition(":")
    if algorithm != "sha256" or len(hexpart) != 64 or not _HEX.issuperset(hexpart):
        raise InvalidArgument(f"invalid digest {digest!r}: expected sha256:<64 hex digits>")
    return digest


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


class BlobWriter:
    """Write a blob; :meth:`commit` verifies and publishes it. Use as a context manager:
    leaving the block without commit (or with an exception) discards what was written."""

    def __init__(self, store: ContentStore, expected: str | None, size: int | None) -> None:
        self.store = store
        self.expected = None if expected is None else check_digest(expected)
        self.expected_size = size
        self.size = 0
        self._hash = hashlib.sha256()
        self._tmp = os.path.join(store.root, "ingest", uuid.uuid4().hex)
        self._fd = os.open(self._tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC,
                           0o644)
        self.digest: str | None = None

    def write(self, data: bytes | memoryview) -> None:
        if self.expected_size is not None and self.size + len(data) > self.expected_size:
            raise DigestMismatch(
                f"blob {self.expected or ''} is larger than its announced {self.expected_size}"
                " bytes")
        self._hash.update(data)
        view = memoryview(data)
        while view:
            written = os.write(self._fd, view)
            view = view[written:]
        self.size += len(data)

    def commit(self) -> str:
        digest = "sha256:" + self._hash.hexdigest()
        if self.expected is not None and digest != self.expected:
            raise DigestMismatch(f"content does not match its digest: expected "
                                 f"{self.expected}, got {digest}")
        if self.expected_size is not None and self.size != self.expected_size:
            raise DigestMismatch(f"blob {digest} is {self.size} bytes, announced as "
                                 f"{self.expected_size}")
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        os.rename(self._tmp, self.store.path(digest))
        self.digest = digest
        return digest

    def abort(self) -> None:
        if self._fd >= 0:
            os.close(self._fd)
            self._fd = -1
        try:
            os.unlink(self._tmp)
        except FileNotFoundError:
            pass

    def __enter__(self) -> BlobWriter:
        return self

    def __exit__(self, kind: type[BaseException] | None, value: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self.digest is None:
            self.abort()


class ContentStore:
    """Blobs by digest under ``root`` (an OCI image layout directory)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self.blobs = os.path.join(root, "blobs", "sha256")
        os.makedirs(self.blobs, mode=0o700, exist_ok=True)
        os.makedirs(os.path.join(root, "ingest"), mode=0o700, exist_ok=True)
        layout = os.path.join(root, "oci-layout")
        if not os.path.exists(layout):
            with open(layout + ".tmp", "w") as f:
                f.write(LAYOUT)
            os.rename(layout + ".tmp", layout)

    def path(self, digest: str) -> str:
        return os.path.join(self.blobs, check_digest(digest)[7:])

    def has(self, digest: str) -> bool:
        return os.path.exists(self.path(digest))

    def size(self, digest: str) -> int:
        try:
            return os.stat(self.path(digest)).st_size
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def open(self, digest: str) -> BinaryIO:
        try:
            return open(self.path(digest), "rb")
        except FileNotFoundError:
            raise NotFound(f"blob {digest} is not in the store") from None

    def read(self, digest: str, limit: int = 16 << 20) -> bytes:
        """A small blob (a manifest, a config) whole; refuses ones larger than ``limit``."""
        with self.open(digest) as f:
            data = f.read(limit + 1)
        if len(data) > limit:
            raise InvalidArgument(f"blob {digest} is larger than {limit} bytes")
        return data

    def writer(self, expected: str | None = None, size: int | None = None) -> BlobWriter:
        return BlobWriter(self, expected, size)

    def put(self, data: bytes, expected: str | None = None) -> str:
        """Store ``data``; its digest (verified against ``expected`` when given)."""
        digest = sha256_of(data)
        if expected is not None and check_digest(expected) != digest:
            raise DigestMismatch(f"content does not match its digest: expected {expected}, "
                                 f"got {digest}")
        if self.has(digest):
            return digest
        with self.writer(digest, len(data)) as w:
            w.write(data)
            return w.commit()

    def ingest(self, stream: BinaryIO, expected: str | None = None,
               size: int | None = None, chunk: int = 1 << 20) -> str:
        """Copy a stream into the store (verified as :meth:`writer` does)."""
        if expected is not None and self.has(expected):
            return expected
        with self.writer(expected, size) as w:
            while True:
                data = stream.read(chunk)
                if not data:
                    break
                w.write(data)
            return w.commit()

    def delete(self, digest: str) -> None:
        try:
            os.unlink(self.path(digest))
        except FileNotFoundError:
            pass

    def digests(self) -> Iterator[str]:
        for name in os.listdir(self.blobs):
            if len(name) == 64 and _HEX.issuperset(name):
                yield "sha256:" + name

    def clean_ingest(self) -> None:
        """Remove what interrupted writes left behind."""
        import shutil

        ingest = os.path.join(self.root, "ingest")
        for name in os.listdir(ingest):
            path = os.path.join(ingest, name)
            if os.path.isdir(path) and not os.path.islink(path):
                shutil.rmtree(path, ignore_errors=True)
            else:
                try:
                    os.unlink(path)
                except FileNotFoundError:
                    pass
