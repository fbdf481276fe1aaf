"""What applying or producing a layer reports: :class:`LayerResult` (digests, sizes,
entry count, skipped xattrs), :class:`SkippedXattr`, and :class:`LayerError`, the error
for a layer that cannot be applied or produced."""

from __future__ import annotations

from dataclasses import dataclass, field

from longboat.errors import InvalidArgument


class LayerError(InvalidArgument):
    """A layer blob that cannot be applied: malformed, truncated, oversized or hostile."""


@dataclass(frozen=True)
class SkippedXattr:
    """An extended attribute of an entry that was not set, and why."""

    path: str
    name: str
    reason: str


@dataclass(frozen=True)
class LayerResult:
    """What applying (or producing) a layer measured.

    ``diff_id`` is the sha256 of the uncompressed tar (the image config's ``rootfs``);
    ``digest`` and ``size`` are of the bytes as given (the blob in a manifest), equal to
    ``diff_id`` and ``uncompressed_size`` for a plain tar.
    """

    diff_id: str
    digest: str
    size: int
    compression: str
    uncompressed_size: int
    entries: int
    skipped_xattrs: tuple[SkippedXattr, ...] = field(default=())
