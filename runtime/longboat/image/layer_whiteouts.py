"""Whiteouts: the OCI markers that hide what lower layers put in a directory.

Owns their names (``.wh.NAME`` hides ``NAME``, ``.wh..wh..opq`` makes a directory
opaque), overlayfs's form of them (a 0:0 character device, ``trusted.overlay.opaque=y``)
and the xattr namespaces overlayfs keeps for itself, shared with ``layer_diff``, which
converts the other way. When applying, a whiteout hides lower layers only, never what
this layer itself writes, wherever the marker sits in the tar (the OCI rule), so
:class:`Whiteouts` records every name the layer writes. In ``"delete"`` mode (dest holds
the lower layers) hidden entries are removed; in ``"overlay"`` mode (dest is the layer's
own directory, to be an overlayfs lower) the overlayfs form is written. Markers are
never written as files; ``.wh..wh.*`` (AUFS metadata) is ignored.
"""

from __future__ import annotations

import os
import stat
from typing import Final, Literal

from longboat.image.layer_paths import REAL_DIRS_ONLY, LayerRoot, list_dir, openat2
from longboat.image.layer_result import LayerError
from longboat.image.layer_tar import TarEntry

WhiteoutMode = Literal["delete", "overlay"]

WHITEOUT_PREFIX: Final = ".wh."
OPAQUE_MARKER: Final = ".wh..wh..opq"
OVERLAY_OPAQUE_XATTR: Final = "trusted.overlay.opaque"
#: Extended attributes overlayfs reads from its layers (redirects, metacopy, opaque).
OVERLAY_XATTR_PREFIXES: Final = ("trusted.overlay.", "user.overlay.")


class Whiteouts:
    """Applies a layer's whiteout markers beneath ``root``, sparing what it wrote."""

    def __init__(self, root: LayerRoot, mode: WhiteoutMode) -> None:
        self.root = root
        self.mode = mode
        # What this layer wrote: names by parent directory, each ancestor of a written
        # path listed in its own parent. Whiteouts never hide these.
        self.children: dict[str, set[str]] = {}

    def written(self, parent: str, name: str) -> None:
        """Record that the layer writes ``name`` in directory ``parent``."""
        kids = self.children.get(parent)
        if kids is None:
            kids = self.children[parent] = set()
            up = parent
            while up:  # register the new parent in its own parent, as far as needed
                grand, _, base = up.rpartition("/")
                known = self.children.get(grand)
                if known is not None:
                    known.add(base)
                    break
                self.children[grand] = {base}
                up = grand
        kids.add(name)

    def apply(self, e: TarEntry, parent: str, name: str) -> None:
        """Apply whiteout marker ``name`` (in directory ``parent``)."""
        if name == OPAQUE_MARKER:
            if self.mode == "overlay":
                self._opaque_overlay(e, parent)
            else:
                self._opaque_delete(e, parent)
            return
        hidden = name[len(WHITEOUT_PREFIX):]
        if hidden.startswith(WHITEOUT_PREFIX):
            return  # AUFS metadata (.wh..wh.plnk and such), meaningless here
        if hidden in ("", ".", ".."):
            raise LayerError(f"layer entry {e.name!r} is a whiteout of {hidden!r}, which "
                             "would hide its own directory or its parent; refused")
        if hidden in self.children.get(parent, ()):
            return  # a whiteout hides lower layers only, never this layer's own entries
        if self.mode == "overlay":
            pfd = self.root.dir_fd(parent, e.name, create=True)
            assert pfd is not None
            self.root.remove(pfd, hidden)
            os.mknod(hidden, stat.S_IFCHR, os.makedev(0, 0), dir_fd=pfd)
            os.chown(hidden, e.uid, e.gid, dir_fd=pfd, follow_symlinks=False)
            # The marker's mtime, so that make_layer gives back the same tar.
            os.utime(hidden, ns=(e.mtime_ns, e.mtime_ns), dir_fd=pfd, follow_symlinks=False)
            return
        pfd = self.root.dir_fd(parent, e.name, create=False)
        if pfd is not None:
            self.root.remove(pfd, hidden)

    def _opaque_overlay(self, e: TarEntry, parent: str) -> None:
        pfd = self.root.dir_fd(parent, e.name, create=True)
        assert pfd is not None
        # An O_PATH descriptor takes no xattrs: open the directory itself.
        fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
        try:
            os.setxattr(fd, OVERLAY_OPAQUE_XATTR, b"y")
        finally:
            os.close(fd)

    def _opaque_delete(self, e: TarEntry, parent: str) -> None:
        pfd = self.root.dir_fd(parent, e.name, create=False)
        if pfd is None:
            return
        # Everything below the directory goes but what this layer wrote (wherever the
        # marker sits in the tar) and the directories leading to it. Iterative, and no
        # symlink is followed below the directory.
        stack = [""]
        while stack:
            rel = stack.pop()
            if rel:
                fd = openat2(pfd, rel, os.O_RDONLY | os.O_DIRECTORY, REAL_DIRS_ONLY)
            else:
                fd = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=pfd)
            try:
                layer_dir = "/".join(p for p in (parent, rel) if p)
                kept = self.children.get(layer_dir, ())
                for child, is_dir in list_dir(fd):
                    if child not in kept:
                        self.root.remove(fd, child)
                    elif is_dir:
                        stack.append(f"{rel}/{child}" if rel else child)
            finally:
                os.close(fd)

