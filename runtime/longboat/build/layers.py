"""The filesystem side of a step without a container: a writable snapshot over the
stage's image, mounted on a private directory for the step's work (COPY, ADD,
WORKDIR), its upper directory turned into the step's layer; and read-only mounts of
other images (``COPY --from``). Every mount and snapshot goes away whatever happens.

The builder's own mounts are ``nodev,nosuid``: it reads files of untrusted images
(``/etc/passwd`` for ``--chown``, ``COPY --from`` sources), and opening a device node
from an image must never reach the host's device. Device nodes are still copied
(mknod), as Docker copies them."""

from __future__ import annotations

import contextlib
import os

from longboat.linux import fs, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterator
    from typing import Any

    from longboat.build.builder import Builder
    from longboat.image.store import Image

    Layer = tuple[dict[str, Any], str]    # (descriptor, diff ID)


def layer_from_upper(builder: Builder, upper: str) -> Layer | None:
    """The upper directory as a layer blob in the store; None when it holds nothing.
    Layers are stored uncompressed, as Docker keeps them (compressed on push)."""
    from longboat.engine.commit import EMPTY_LAYER_DIFF_ID
    from longboat.image.layer import make_layer
    from longboat.image.store import OCI_LAYER

    if not os.listdir(upper):
        return None
    with builder.store.content.writer() as blob:
        result = make_layer(upper, blob, compression="none")  # type: ignore[arg-type]
        digest = blob.commit()
    if result.diff_id == EMPTY_LAYER_DIFF_ID:
        return None
    return {"mediaType": OCI_LAYER, "size": result.size, "digest": digest}, result.diff_id


def _harden(target: str, *, readonly: bool) -> None:
    """Make the mount on ``target`` nodev and nosuid (a bind remount changes only the
    mount point's flags)."""
    flags = libc.MS_REMOUNT | libc.MS_BIND | libc.MS_NODEV | libc.MS_NOSUID
    if readonly:
        flags |= libc.MS_RDONLY
    libc.mount(None, target, None, flags)


@contextlib.contextmanager
def mounted(builder: Builder, image: Image | None, *, readonly: bool) -> Iterator[
        tuple[int, str]]:
    """(O_PATH root descriptor, snapshot key) of ``image``'s files, mounted."""
    from longboat.image.snapshot import Mount

    snapshots = builder.engine.snapshots
    key = builder.new_key()
    chains = snapshots.unpack(builder.store, image) if image is not None else []
    snapshots.prepare(key, chains, readonly=readonly)
    try:
        target = builder.mount_dir()
        try:
            snapshots.mounts(key).mount(target)
            try:
                _harden(target, readonly=readonly)
                root_fd = fs.open_root(target)
                try:
                    yield root_fd, key
                finally:
                    os.close(root_fd)
            finally:
                Mount.unmount(target)
        finally:
            os.rmdir(target)
    finally:
        snapshots.remove(key)


def change_files(builder: Builder, image: Image | None,
                       work: Callable[[int], None]) -> Layer | None:
    """Run ``work(root_fd)`` on a writable snapshot of ``image``; the layer it made."""
    from longboat.image.snapshot import Mount

    snapshots = builder.engine.snapshots
    key = builder.new_key()
    chains = snapshots.unpack(builder.store, image) if image is not None else []
    snapshots.prepare(key, chains)
    try:
        target = builder.mount_dir()
        try:
            snapshots.mounts(key).mount(target)
            try:
                _harden(target, readonly=False)
                root_fd = fs.open_root(target)
                try:
                    work(root_fd)
                finally:
                    os.close(root_fd)
            finally:
                Mount.unmount(target)
        finally:
            os.rmdir(target)
        return layer_from_upper(builder, snapshots.upper_path(key))
    finally:
        snapshots.remove(key)
