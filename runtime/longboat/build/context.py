"""The build context: the tar a client sends, received into a private directory.

The archive is untrusted. It is read by the image layer extractor's pieces
(``layer_tar``, ``layer_paths``, ``layer_entries``): names with ``..`` or a leading
``/`` are refused, every parent is opened ``RESOLVE_BENEATH`` the context directory (a
symlink in the archive that leads out cannot be written through), nothing is written
through a symlink, and the stream's size is bounded. Device nodes and FIFOs are refused
(a build needs neither, and reading a FIFO blocks). Symlinks are kept as they are;
whoever reads the context later resolves them inside it (``RESOLVE_IN_ROOT``).

Files the context's ``.dockerignore`` excludes are not written (the Dockerfile and the
``.dockerignore`` itself are read first, then dropped if excluded, as Docker does).
A body that is not a tar at all is taken as the Dockerfile alone.
"""

from __future__ import annotations

import errno
import hashlib
import logging
import os
import stat
import uuid

from longboat.build import dockerignore
from longboat.build.errors import BuildError
from longboat.errors import InvalidArgument, SystemFault
from longboat.linux import fs, libc

log = logging.getLogger("longboat.build")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import BinaryIO

MAX_DOCKERFILE = 4 << 20
#: contexts up to this size (as sent) are received into SHM (a tmpfs) instead of disk
MEMORY_CONTEXT = 32 << 20
SHM = "/dev/shm"


def _shm_usable() -> bool:
    try:
        st = os.statvfs(SHM)
    except OSError:
        return False
    return os.access(SHM, os.W_OK) and st.f_bavail * st.f_frsize > 4 * MEMORY_CONTEXT


def extract_tar(stream: BinaryIO, dest: str, *, what: str, devices: bool,
                skip: Callable[[str], bool] | None = None) -> int:
    """Extract the (plain or compressed) tar ``stream`` beneath the directory ``dest``;
    the number of entries written."""
    from longboat.image.layer_blob import DEFAULT_MAX_SIZE, LayerBlob, Prefetch
    from longboat.image.layer_entries import EntryWriter
    from longboat.image.layer_paths import LayerRoot, clean_path
    from longboat.image.layer_result import LayerError
    from longboat.image.layer_tar import (
        BLKTYPE,
        CHRTYPE,
        DEFAULT_MAX_ENTRY_SIZE,
        FIFOTYPE,
        TarReader,
        TarStream,
    )

    source = LayerBlob(stream, "auto", DEFAULT_MAX_SIZE)
    chunks = Prefetch(source.chunks())
    count = 0
    try:
        reader = TarReader(TarStream(chunks), DEFAULT_MAX_ENTRY_SIZE)
        root = LayerRoot(dest)
        try:
            writer = EntryWriter(root, reader)
            for entry in reader:
                try:
                    target = clean_path(entry.name, f"{what} entry")
                    if not target:
                        continue
                    if not devices and entry.type in (CHRTYPE, BLKTYPE, FIFOTYPE):
                        kind = "FIFO" if entry.type == FIFOTYPE else "device node"
                        raise BuildError(f"{what} entry {entry.name!r} is a {kind}: "
                                         "refused")
                    if skip is not None and skip(target):
                        continue
                    parent, _, name = target.rpartition("/")
                    writer.write(entry, target, parent, name)
                except LayerError as exc:
                    raise BuildError(exc.message.replace("layer entry", f"{what} entry")
                                     .replace("the layer root", f"the {what}")) from None
                except OSError as exc:
                    if exc.errno in (errno.EXDEV, errno.ELOOP, errno.ENOTDIR,
                                     errno.ENAMETOOLONG, errno.EISDIR):
                        raise BuildError(f"{what} entry {entry.name!r} cannot be "
                                         f"extracted: {exc.strerror}") from exc
                    raise SystemFault(f"extracting {what} entry {entry.name!r}: "
                                      f"{exc.strerror}") from exc
                if root.retired:
                    root.release_retired()
                count += 1
            writer.set_dir_times()
            reader.stream.drain()
        finally:
            root.close()
    except LayerError as exc:
        raise BuildError(exc.message.replace("layer", what)) from None
    finally:
        chunks.close()
    return count


def _is_tar(head: bytes) -> bool:
    """Whether ``head`` starts a tar, possibly compressed (by magic), or not."""
    from longboat.image.layer_tar import _checksum_ok

    if _compressed(head):
        return True
    return len(head) >= 512 and _checksum_ok(head[:512])


def _compressed(head: bytes) -> bool:
    return head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00" \
        or head[:4] == b"\x28\xb5\x2f\xfd"


class BuildContext:
    """A received context under ``DIR/context`` (DIR private, 0700), removed by
    :meth:`close`. ``dockerfile`` holds the Dockerfile's text.

    Only a plain (uncompressed) body of at most :data:`MEMORY_CONTEXT` bytes goes to
    SHM: its files cannot take more than the body's size there (tar's sparse members
    are refused, hard links take no room). A compressed body of that size could expand
    to gigabytes of memory, so it is received on disk like a large one."""

    def __init__(self, tmpdir: str, size_hint: int | None = None, *,
                 head: bytes = b"") -> None:
        # named after its engine: the next start of an engine killed mid-build finds
        # its own (build/leftovers.py), never another engine's in the shared SHM
        name = f"longboat-build-{owner_tag(tmpdir)}-{uuid.uuid4().hex[:16]}"
        if size_hint is not None and size_hint <= MEMORY_CONTEXT and \
                not _compressed(head) and _shm_usable():
            tmpdir = SHM     # a small context lives in memory: no disk writes to wait on
        self.dir = os.path.join(tmpdir, name)
        os.mkdir(self.dir, 0o700)
        self.root = os.path.join(self.dir, "context")
        os.mkdir(self.root, 0o755)
        self.dockerfile = ""
        self.ignore = dockerignore.Matcher([])

    def receive(self, stream: BinaryIO, dockerfile_path: str) -> None:
        head = stream.read(512)
        stream.seek(0)
        if not head:
            raise InvalidArgument("the build context is empty: send a tar of the context "
                                  "(or a Dockerfile)")
        if not _is_tar(head):
            text = stream.read(MAX_DOCKERFILE + 1)
            if len(text) > MAX_DOCKERFILE:
                raise InvalidArgument("the request body is neither a tar archive nor a "
                                      "Dockerfile")
            self.dockerfile = text.decode("utf-8", errors="replace")
            return
        extract_tar(stream, self.root, what="build context", devices=False)
        self._read_dockerfile(dockerfile_path)
        self._apply_dockerignore(dockerfile_path)

    def _read_file(self, path: str, limit: int) -> bytes | None:
        root_fd = fs.open_root(self.root)
        try:
            fd = fs.open_in_root(root_fd, path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except (FileNotFoundError, NotADirectoryError):
            return None
        finally:
            os.close(root_fd)
        try:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            data = os.read(fd, limit + 1)
        finally:
            os.close(fd)
        if len(data) > limit:
            raise InvalidArgument(f"{path} is larger than {limit} bytes")
        return data

    def _read_dockerfile(self, path: str) -> None:
        data = self._read_file(path, MAX_DOCKERFILE)
        if data is None and path == "Dockerfile":
            data = self._read_file("dockerfile", MAX_DOCKERFILE)
        if data is None:
            raise BuildError(f"Cannot locate specified Dockerfile: {path}")
        self.dockerfile = data.decode("utf-8", errors="replace")

    def _apply_dockerignore(self, dockerfile_path: str) -> None:
        data = self._read_file(".dockerignore", 1 << 20)
        if not data:
            return
        try:
            self.ignore = dockerignore.Matcher(dockerignore.read_patterns(
                data.decode("utf-8", errors="replace")))
        except ValueError as exc:
            raise BuildError(f".dockerignore: {exc}") from None
        # what a client should not have sent goes: walk and remove the excluded
        remove_excluded(self.root, self.ignore)

    def note_container(self, container_id: str) -> None:
        """Journal a RUN container of this build (removed at the next engine start
        should the engine die before the build ends)."""
        journal = os.path.join(self.dir, "containers")
        os.makedirs(journal, 0o700, exist_ok=True)
        os.close(os.open(os.path.join(journal, container_id),
                         os.O_WRONLY | os.O_CREAT | os.O_CLOEXEC, 0o600))

    def close(self) -> None:
        # a mount left by a step that failed to unmount is detached first: removing
        # through it would delete a snapshot's files
        from longboat.volume.local import mounts_under

        for point in sorted(mounts_under(self.dir), reverse=True):
            try:
                libc.umount2(point, libc.MNT_DETACH)
            except OSError as exc:
                log.warning("build: detaching %s: %s", point, exc)
                return      # never remove through a mount
        remove_tree(self.dir)


def owner_tag(tmpdir: str) -> str:
    """The tag of an engine's build directories: a hash of its ``DATA_ROOT/tmp``."""
    return hashlib.sha256(os.path.abspath(tmpdir).encode()).hexdigest()[:8]


def remove_tree(path: str) -> None:
    """Remove ``path`` and everything below it, however deep (``shutil.rmtree``
    recurses one frame per level and gives up at Python's recursion limit), never
    following a symlink; silent when it is gone, logged when it cannot be removed."""
    from longboat.image.layer_paths import rmtree

    parent, name = os.path.split(path.rstrip("/"))
    try:
        parent_fd = os.open(parent or "/", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except FileNotFoundError:
        return
    try:
        rmtree(parent_fd, name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("build: removing %s: %s", path, exc)
    finally:
        os.close(parent_fd)


def remove_excluded(root: str, matcher: dockerignore.Matcher) -> None:
    """Remove what ``matcher`` excludes below ``root`` (never following symlinks)."""
    top = os.open(root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        _prune(top, "", matcher)
    finally:
        os.close(top)


def _prune(top: int, prefix: str, matcher: dockerignore.Matcher) -> None:
    """Iterative (any depth), one descriptor open at a time; directories are opened from
    ``top`` with no symlink allowed on the way."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY, openat2, rmtree

    stack = [""]
    while stack:
        rel = stack.pop()
        dir_fd = openat2(top, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                         REAL_DIRS_ONLY) if rel else top
        try:
            for entry in sorted(os.listdir(dir_fd)):
                path = prefix + (f"{rel}/" if rel else "") + entry
                st = os.stat(entry, dir_fd=dir_fd, follow_symlinks=False)
                is_dir = stat.S_ISDIR(st.st_mode)
                if matcher.excluded(path):
                    if is_dir and matcher.may_have_exceptions_below(path):
                        pass    # descend: something below may be kept
                    elif is_dir:
                        rmtree(dir_fd, entry)
                        continue
                    else:
                        os.unlink(entry, dir_fd=dir_fd)
                        continue
                if is_dir:
                    stack.append(f"{rel}/{entry}" if rel else entry)
        finally:
            if dir_fd != top:
                os.close(dir_fd)


def open_context_root(path: str) -> int:
    """An O_PATH descriptor of a context (or image) root, for RESOLVE_IN_ROOT lookups."""
    try:
        return fs.open_root(path)
    except OSError as exc:
        raise SystemFault(f"opening {path}: {exc.strerror}") from exc


__all__ = ["BuildContext", "extract_tar", "libc", "open_context_root", "remove_excluded"]
