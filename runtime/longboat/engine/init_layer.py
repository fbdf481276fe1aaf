"""What Docker's "init" layer holds: the mount points the runtime creates.

A mount destination missing from the image (``/etc/hosts``, ``/etc/resolv.conf``,
``/etc/hostname``, ``/proc`` or ``/dev/pts`` in an image without them) is created by
the runtime, empty, in the container's writable layer. Docker creates those in an init
layer between the image and the container's layer, so they never reach an image:
:func:`leftovers` names them (and the directories that only hold them), so that
``docker commit`` and the builder's RUN layers leave them out. The targets of the
container's own mounts (binds, volumes, tmpfs) are not the init layer's: Docker 20.10
shows them in ``docker diff`` and commits them (checked against its dockerd).
"""

from __future__ import annotations

import os
import posixpath
import stat

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterable

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine


def mount_points(container: Container) -> set[str]:
    """The mount points that are the runtime's own (Docker's init layer: ``/proc``,
    ``/sys``, ``/dev``..., ``/etc/hosts``, ``/etc/resolv.conf``, ``/etc/hostname``): the
    bundle's destinations less the container's own mounts. The targets of binds, volumes
    and tmpfs mounts are made in the container's layer by Docker too (runc creates them
    there): its ``docker diff`` lists them and its commit keeps them, and so do ours."""
    from longboat.engine.filesystem import runtime_mount_points

    def clean(path: object) -> str:
        return posixpath.normpath("/" + str(path).lstrip("/"))

    host_config = container.host_config
    own = {clean(m.get("Destination")) for m in container.data.get("_MountPoints") or []
           if isinstance(m, dict) and m.get("Destination")}
    own |= {clean(target) for target in host_config.get("Tmpfs") or {}}
    own |= {clean(m.get("Target")) for m in host_config.get("Mounts") or []
            if isinstance(m, dict) and m.get("Target")}
    return runtime_mount_points(container) - own


def of_container(engine: Engine, container: Container) -> set[str]:
    """:func:`leftovers` of a container's writable layer (over its image's layers)."""
    mount = engine.snapshots.mounts(container.id)
    lowers = [os.path.join(mount.root, lower) for lower in mount.lowerdirs]
    return leftovers(engine.snapshots.upper_path(container.id), lowers,
                     mount_points(container))


def leftovers(upper: str, lowers: list[str], mount_points: Iterable[str]) -> set[str]:
    """The paths (relative to ``upper``, no leading slash) of the mount points the
    runtime made there: empty files and directories holding nothing else, found in no
    lower layer; and then the directories that hold only such paths and are either
    copies of a lower's (same mode and owner, not opaque) or in no lower at all (made to
    reach a mount point).

    The upper directory is what the container left: hostile. Every directory is opened
    beneath it with no symlink anywhere on the way (``RESOLVE_BENEATH |
    RESOLVE_NO_SYMLINKS``) and the last component is never followed (a directory
    replaced by a link to ``/`` once made the builder remove the host's files); lower
    layers are looked up inside each layer."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY
    from longboat.image.layer_paths import openat2 as beneath
    from longboat.linux import fs

    def lower_stat(path: str) -> os.stat_result | None:
        for lower in lowers:
            try:
                root = fs.open_root(lower)
            except OSError:
                continue
            try:
                fd = fs.open_nofollow_in_root(root, path)
            except (OSError, ValueError):
                continue
            finally:
                os.close(root)
            try:
                return os.fstat(fd)
            finally:
                os.close(fd)
        return None

    def parent_of(path: str) -> tuple[int, str] | None:
        """A descriptor of ``path``'s directory, opened beneath the upper directory with
        no symlink on the way, and ``path``'s last name; None when there is none."""
        parent, _, name = path.rpartition("/")
        try:
            fd = beneath(top, parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                         REAL_DIRS_ONLY) if parent else os.dup(top)
        except OSError:
            return None
        return fd, name

    def holds_only_leftovers(pfd: int, name: str, path: str) -> tuple[bool, bytes]:
        """(every entry of the directory is a leftover, its overlay opaque mark)."""
        try:
            dfd = os.open(name, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC,
                          dir_fd=pfd)
        except OSError:
            return False, b""
        try:
            if any(f"{path}/{entry}" not in out for entry in os.listdir(dfd)):
                return False, b""
            try:
                return True, os.getxattr(dfd, "trusted.overlay.opaque")
            except OSError:
                return True, b""
        finally:
            os.close(dfd)

    out: set[str] = set()
    parents: set[str] = set()
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        # deepest first: a mount point below another is known before its directory
        for point in sorted({p.strip("/") for p in mount_points}, key=len, reverse=True):
            path = posixpath.normpath(point) if point else ""
            if not path or path.startswith("..") or lower_stat(path) is not None:
                continue
            found = parent_of(path)
            if found is None:
                continue
            pfd, name = found
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    if not holds_only_leftovers(pfd, name, path)[0]:
                        continue
                elif not (stat.S_ISREG(st.st_mode) and st.st_size == 0):
                    continue
            except FileNotFoundError:
                continue
            finally:
                os.close(pfd)
            out.add(path)
            parent = posixpath.dirname(path)
            while parent:
                parents.add(parent)
                parent = posixpath.dirname(parent)
        for parent in sorted(parents, key=len, reverse=True):
            if parent in out:
                continue
            found = parent_of(parent)
            if found is None:
                continue
            pfd, name = found
            try:
                try:
                    st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                except OSError:
                    continue
                if not stat.S_ISDIR(st.st_mode):
                    continue
                only, opaque = holds_only_leftovers(pfd, name, parent)
                if not only or opaque == b"y":
                    continue
                below = lower_stat(parent)
                if below is not None and (below.st_mode, below.st_uid, below.st_gid) != \
                        (st.st_mode, st.st_uid, st.st_gid):
                    continue    # made or changed by the container's processes: it stays
                out.add(parent)
            finally:
                os.close(pfd)
    finally:
        os.close(top)
    return out
