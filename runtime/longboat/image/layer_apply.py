"""Applying a layer tar onto a directory: Longboat's own extractor, put together.

Owns :func:`apply_layer`: it wires the pieces, runs the entry loop (each entry's path
cleaned, then routed to the whiteouts or to the writer) and maps host errors of an
entry to :class:`LayerError` or ``SystemFault``. The pieces, one module each:

* ``layer_blob``: the blob as given; compression, digests, size limit, reader thread;
* ``layer_tar``: the tar format; headers, PAX records, GNU long names, entry limits;
* ``layer_paths``: paths beneath the layer root; resolving, creating, removing safely;
* ``layer_entries``: the filesystem effects of an entry and its metadata;
* ``layer_whiteouts``: whiteout markers, in ``"delete"`` or ``"overlay"`` mode;
* ``layer_result``: the result and the error.

Invariants (docs/layers.md says why):

* Nothing is written, changed or removed outside ``dest``. Entry names and hardlink
  targets with a ``..`` component or a leading ``/`` are refused. Every parent directory
  is opened with ``openat2(RESOLVE_BENEATH)`` from a descriptor of ``dest``, so a path
  that goes through a symlink leading out of ``dest`` (absolute, or ``..`` above the
  root) is refused by the kernel and reported as an escape; every change is an ``*at``
  call on that parent that never follows the last component.
* An existing entry is replaced (unlinked, or removed recursively), never written
  through; only a directory over a directory is merged.
* Whiteouts: ``.wh.NAME`` and ``.wh..wh..opq`` hide what lower layers put there, never
  what this layer itself writes, wherever the marker sits in the tar. In ``"delete"``
  mode (dest holds the lower layers) they remove; in ``"overlay"`` mode (dest is the
  layer's own empty directory, to be an overlayfs lower) they become a 0:0 character
  device and ``trusted.overlay.opaque=y``. Markers are never written as files.
* Bad input (a malformed, truncated or oversized stream, a refused path) raises
  :class:`LayerError`; a failing host (ENOSPC, EIO) raises ``SystemFault``. Either way
  ``dest`` may hold part of the layer: callers extract into a fresh directory and
  discard it on failure.
"""

from __future__ import annotations

import errno
from typing import BinaryIO

from longboat.errors import InvalidArgument, SystemFault
from longboat.image.layer_blob import DEFAULT_MAX_SIZE, Compression, LayerBlob, Prefetch
from longboat.image.layer_entries import EntryWriter
from longboat.image.layer_paths import LayerRoot, clean_path
from longboat.image.layer_result import LayerError, LayerResult
from longboat.image.layer_tar import DEFAULT_MAX_ENTRY_SIZE, TarReader, TarStream
from longboat.image.layer_whiteouts import WHITEOUT_PREFIX, WhiteoutMode, Whiteouts


class _Applier:
    """One application of a layer: the entry loop over the pieces."""

    def __init__(self, dest: str, mode: WhiteoutMode, reader: TarReader) -> None:
        self.dest = dest
        self.reader = reader
        self.root = LayerRoot(dest)
        self.whiteouts = Whiteouts(self.root, mode)
        self.writer = EntryWriter(self.root, reader)
        self.entries = 0

    def close(self) -> None:
        self.root.close()

    def run(self) -> None:
        root, whiteouts, writer = self.root, self.whiteouts, self.writer
        for entry in self.reader:
            path = clean_path(entry.name, "layer entry")
            parent, _, name = path.rpartition("/")
            try:
                if name.startswith(WHITEOUT_PREFIX):
                    whiteouts.apply(entry, parent, name)
                else:
                    if path:
                        whiteouts.written(parent, name)
                    writer.write(entry, path, parent, name)
            except OSError as exc:
                raise self._entry_error(exc, entry.name) from exc
            if root.retired:
                root.release_retired()
            self.entries += 1
        writer.set_dir_times()

    def _entry_error(self, exc: OSError, name: str) -> Exception:
        if exc.errno in (errno.EXDEV, errno.ELOOP, errno.ENOTDIR, errno.ENAMETOOLONG,
                         errno.EISDIR):
            return LayerError(f"layer entry {name!r} cannot be applied: {exc.strerror}")
        return SystemFault(f"applying layer entry {name!r} to {self.dest!r}: {exc.strerror}")


def apply_layer(stream: BinaryIO, dest: str, *, compression: Compression = "auto",
                whiteouts: WhiteoutMode = "delete",
                max_entry_size: int = DEFAULT_MAX_ENTRY_SIZE,
                max_size: int = DEFAULT_MAX_SIZE) -> LayerResult:
    """Apply the layer blob read from ``stream`` onto the directory ``dest``.

    ``compression`` "auto" detects gzip, zstd, bzip2, xz or a plain tar by magic; any
    other value insists on that one. ``whiteouts`` "delete" removes what whiteouts hide
    (dest holds the lower layers); "overlay" writes overlayfs whiteouts and opaque
    directories (dest is the layer's own directory). ``max_entry_size`` bounds any one
    entry's declared size and ``max_size`` the uncompressed stream.
    """
    if whiteouts not in ("delete", "overlay"):
        raise InvalidArgument(f"whiteouts must be 'delete' or 'overlay', not {whiteouts!r}")
    source = LayerBlob(stream, compression, max_size)
    chunks = Prefetch(source.chunks())
    try:
        reader = TarReader(TarStream(chunks), max_entry_size)
        applier = _Applier(dest, whiteouts, reader)
        try:
            applier.run()
            reader.stream.drain()
        finally:
            applier.close()
    finally:
        chunks.close()
    return LayerResult(
        diff_id=source.diff_id,
        digest=source.digest,
        size=source.raw_size,
        compression=source.compression,
        uncompressed_size=source.tar_size,
        entries=applier.entries,
        skipped_xattrs=tuple(applier.writer.skipped),
    )
