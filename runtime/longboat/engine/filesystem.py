"""A container's files, for ``docker cp``, ``export`` and ``diff``: its root filesystem
mounted for a moment, paths resolved inside it, tars built from it and extracted into
it, and the changes its writable layer holds.

Safety (the container's files are untrusted, and may change while we read them):

* The root is mounted on a private directory of ours: a bind of a running container's
  rootfs, or the stopped container's snapshot (read-only, with its upper directory as
  the top lower, unless we write). Descriptors opened there pin that mount, not the
  container's, so a container exiting meanwhile can still unmount its own.
* Every lookup of a requested path is ``openat2(RESOLVE_IN_ROOT)`` from a descriptor of
  the root (``longboat.linux.fs``): ``..`` and absolute symlinks stay inside.
* Tars are built from descriptors: each directory is opened ``O_NOFOLLOW`` from its
  parent's descriptor and each file ``O_NOFOLLOW | O_NONBLOCK``, then checked with
  ``fstat``, so swapping a file for a symlink (the ``docker cp`` race of CVE-2018-15664)
  reads nothing outside the container.
* Extraction goes through the image layer extractor's pieces (``layer_paths``,
  ``layer_entries``): names with ``..`` or a leading ``/`` are refused, every parent is
  opened ``RESOLVE_BENEATH`` the destination, so a symlink leading out of it (absolute,
  or by ``..``) is refused, and nothing is written through a symlink.
"""

from __future__ import annotations

import errno
import os
import posixpath
import stat
import tarfile
import tempfile
import threading
import uuid

from longboat.errors import InvalidArgument, LongboatError, NotFound, SystemFault
from longboat.linux import fs, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, BinaryIO

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
#: how much of a path one openat2 lookup is given (PATH_MAX is 4096)
_LOOKUP_PIECE = 3072
_FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_CHUNK = 1 << 20


class Forbidden(LongboatError):
    status = 403


# -- the root filesystem, mounted for a moment ---------------------------------------------

# containers whose stopped snapshot a ContainerRoot has mounted: start must wait, or the
# container layer would be mounted twice
_mounted_for_files: dict[str, int] = {}
_mounted_lock = threading.Lock()


def files_in_use(container_id: str) -> bool:
    with _mounted_lock:
        return _mounted_for_files.get(container_id, 0) > 0


class ContainerRoot:
    """The merged view of a container's files at a private mount point, as a context
    manager (blocking: run it in a thread). ``writable`` mounts a stopped container's
    snapshot read-write (for extraction); otherwise it is read-only."""

    def __init__(self, engine: Engine, container: Container, *, writable: bool = False
                 ) -> None:
        self.engine = engine
        self.container = container
        self.writable = writable
        self.path = ""
        self.fd = -1
        self.holds_snapshot = False

    def __enter__(self) -> ContainerRoot:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        from longboat.image.snapshot import Mount

        target = os.path.join(self.engine.tmpdir(), "rootfs-" + uuid.uuid4().hex[:16])
        os.mkdir(target, 0o700)
        try:
            if os.path.ismount(self.container.rootfs):
                # running (or left mounted): share its overlay, through a mount of ours
                libc.mount(self.container.rootfs, target, None, libc.MS_BIND)
                if not self.writable:
                    libc.mount(None, target, None,
                               libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY)
            else:
                mount = self.engine.snapshots.mounts(self.container.id)
                if not self.writable and mount.upperdir is not None:
                    mount = Mount(mount.root, (mount.upperdir, *mount.lowerdirs),
                                  readonly=True)
                with _mounted_lock:
                    _mounted_for_files[self.container.id] = \
                        _mounted_for_files.get(self.container.id, 0) + 1
                self.holds_snapshot = True
                mount.mount(target)
        except OSError as exc:
            self._remove(target)
            self._release()
            raise SystemFault(f"mounting the files of container {self.container.id}: "
                              f"{exc.strerror}") from exc
        except BaseException:
            self._remove(target)
            self._release()
            raise
        self.path = target
        try:
            self.fd = fs.open_root(target)
        except BaseException:
            self.close()
            raise

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1
        if self.path:
            try:
                libc.umount2(self.path, 0)
            except OSError:
                libc.umount2(self.path, libc.MNT_DETACH)   # still busy: let it go lazily
            self._remove(self.path)
            self.path = ""
        self._release()

    def _release(self) -> None:
        if self.holds_snapshot:
            self.holds_snapshot = False
            with _mounted_lock:
                _mounted_for_files[self.container.id] -= 1

    @staticmethod
    def _remove(target: str) -> None:
        try:
            os.rmdir(target)
        except OSError:
            pass


# -- paths -------------------------------------------------------------------------------

def absolute(path: str) -> str:
    """Docker's absolute form of a requested path: cleaned, with a trailing ``/`` or
    ``/.`` kept (they mean "the directory itself, symlinks followed")."""
    if not path:
        raise InvalidArgument("path is required")
    cleaned = posixpath.normpath("/" + path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    if posixpath.basename(path.rstrip("/") if path != "/" else path) == "." and \
            posixpath.basename(cleaned) != ".":
        cleaned = cleaned.rstrip("/") + "/."
    if path.endswith("/") and not cleaned.endswith("/"):
        cleaned += "/"
    return cleaned


def base_name(abs_path: str) -> str:
    """Go's filepath.Base: trailing slashes dropped, "/" for the root."""
    stripped = abs_path.rstrip("/")
    return posixpath.basename(stripped) if stripped else "/"


def follows_last(abs_path: str) -> bool:
    return abs_path.endswith("/") or abs_path.endswith("/.")


def follow_in_scope(root_fd: int, path: str) -> str:
    """Where ``path`` leads inside the root, every symlink followed within it (the
    ones that dangle too; missing components are kept): Docker's FollowSymlinkInScope.
    For display only (``linkTarget``): the files are always opened with openat2."""
    pending = [p for p in path.split("/") if p]
    done: list[str] = []
    links = 0
    while pending:
        part = pending.pop(0)
        if part == ".":
            continue
        if part == "..":
            if done:
                done.pop()
            continue
        try:
            pfd = fs.open_in_root(root_fd, "/".join(done), libc.O_PATH | os.O_DIRECTORY)
        except OSError:
            done.append(part)       # below something missing: kept as it is
            continue
        try:
            target = os.readlink(part, dir_fd=pfd)
        except OSError:
            done.append(part)       # not a symlink, or missing
            continue
        finally:
            os.close(pfd)
        links += 1
        if links > 255:
            raise InvalidArgument(f"too many levels of symbolic links in {path!r}")
        if target.startswith("/"):
            done = []
        pending = [p for p in target.split("/") if p] + pending
    return "/" + "/".join(done)


class Located:
    """A requested path inside the root: an O_PATH descriptor of the entry itself (not
    followed, unless the path asked for it) and its lstat."""

    def __init__(self, fd: int, st: os.stat_result, abs_path: str) -> None:
        self.fd = fd
        self.st = st
        self.abs_path = abs_path

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def locate(root_fd: int, path: str, container_ref: str) -> Located:
    abs_path = absolute(path)
    try:
        if follows_last(abs_path) or abs_path == "/":
            fd = fs.open_in_root(root_fd, abs_path, libc.O_PATH)
        else:
            fd = fs.open_nofollow_in_root(root_fd, abs_path, libc.O_PATH)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR):
            raise NotFound(f"Could not find the file {path} in container "
                           f"{container_ref}") from None
        if exc.errno in (errno.ELOOP, errno.EXDEV):
            raise InvalidArgument(f"{path}: too many levels of symbolic links") from None
        raise SystemFault(f"{path} in container {container_ref}: {exc.strerror}") from exc
    return Located(fd, os.fstat(fd), abs_path)


# Go's os.FileMode type bits
_GO_DIR = 1 << 31
_GO_SYMLINK = 1 << 27
_GO_DEVICE = 1 << 26
_GO_PIPE = 1 << 25
_GO_SOCKET = 1 << 24
_GO_SETUID = 1 << 23
_GO_SETGID = 1 << 22
_GO_CHARDEV = 1 << 21
_GO_STICKY = 1 << 20


def go_file_mode(mode: int) -> int:
    """A stat mode as Go's os.FileMode (what Docker's path stat carries)."""
    bits = mode & 0o777
    kind = stat.S_IFMT(mode)
    bits |= {stat.S_IFDIR: _GO_DIR, stat.S_IFLNK: _GO_SYMLINK, stat.S_IFIFO: _GO_PIPE,
             stat.S_IFSOCK: _GO_SOCKET, stat.S_IFBLK: _GO_DEVICE,
             stat.S_IFCHR: _GO_DEVICE | _GO_CHARDEV}.get(kind, 0)
    if mode & stat.S_ISUID:
        bits |= _GO_SETUID
    if mode & stat.S_ISGID:
        bits |= _GO_SETGID
    if mode & stat.S_ISVTX:
        bits |= _GO_STICKY
    return bits


def go_time(seconds: int, nanos: int = 0) -> str:
    """Go's time.Time in JSON (RFC 3339 with nanoseconds, trailing zeros dropped), UTC."""
    import time

    text = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds))
    if nanos:
        text += "." + f"{nanos:09d}".rstrip("0")
    return text + "Z"


def path_stat(root_fd: int, where: Located) -> dict[str, Any]:
    """Docker's ContainerPathStat of a located path."""
    st = where.st
    link_target = ""
    if stat.S_ISLNK(st.st_mode):
        link_target = follow_in_scope(root_fd, where.abs_path)
    return {"name": base_name(where.abs_path), "size": st.st_size,
            "mode": go_file_mode(st.st_mode),
            "mtime": go_time(int(st.st_mtime_ns // 1_000_000_000),
                             st.st_mtime_ns % 1_000_000_000),
            "linkTarget": link_target}


# -- building tars -----------------------------------------------------------------------

class TarBuilder:
    """Writes a tar of entries read through descriptors (never through paths)."""

    def __init__(self, write: Callable[[bytes], None]) -> None:
        self.write = write
        self.links: dict[tuple[int, int], str] = {}

    def _header(self, name: str, st: os.stat_result, kind: bytes, *, size: int = 0,
                linkname: str = "") -> None:
        info = tarfile.TarInfo(name)
        info.type = kind
        info.mode = st.st_mode & 0o7777
        info.uid, info.gid = st.st_uid, st.st_gid
        info.uname = info.gname = ""
        info.mtime = st.st_mtime_ns // 1_000_000_000
        info.size = size
        info.linkname = linkname
        if kind in (tarfile.CHRTYPE, tarfile.BLKTYPE):
            info.devmajor, info.devminor = os.major(st.st_rdev), os.minor(st.st_rdev)
        self.write(info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape"))

    def add(self, parent_fd: int, name: str, arcname: str) -> None:
        """Entry ``name`` of directory ``parent_fd`` (not followed) and all below it."""
        stack: list[tuple[int, str, str, bool]] = [(parent_fd, name, arcname, False)]
        owned: list[int] = []
        try:
            while stack:
                pfd, entry, arc, close_parent = stack.pop()
                try:
                    self._one(pfd, entry, arc, stack, owned)
                finally:
                    if close_parent:    # its last entry: the directory is done
                        os.close(pfd)
                        owned.remove(pfd)
        finally:
            for fd in owned:
                os.close(fd)

    def add_children(self, dir_fd: int, prefix: str) -> None:
        """The entries below directory ``dir_fd``, named ``prefix`` + name."""
        for child in self._names(dir_fd):
            self.add(dir_fd, child, prefix + child)

    @staticmethod
    def _names(dir_fd: int) -> list[str]:
        # sorted bytewise, as Go's filepath.Walk
        names = os.listdir(dir_fd)
        return sorted(names, key=os.fsencode)

    def _one(self, pfd: int, name: str, arc: str, stack: list[tuple[int, str, str, bool]],
             owned: list[int]) -> None:
        try:
            st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
        except FileNotFoundError:
            return      # gone meanwhile: skip it, as Docker does
        mode = st.st_mode
        if stat.S_ISDIR(mode):
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=pfd)
            except (FileNotFoundError, NotADirectoryError):
                return
            except OSError as exc:
                if exc.errno == errno.ELOOP:
                    return  # swapped for a symlink meanwhile
                raise
            owned.append(fd)
            st = os.fstat(fd)
            self._header(arc, st, tarfile.DIRTYPE)
            children = self._names(fd)
            if not children:
                os.close(fd)
                owned.remove(fd)
                return
            base = arc.rstrip("/") + "/"
            # pushed in reverse, so popped in order; the last one closes fd
            for i, child in enumerate(reversed(children)):
                stack.append((fd, child, base + child, i == 0))
            return
        if not stat.S_ISDIR(mode) and st.st_nlink > 1:
            key = (st.st_dev, st.st_ino)
            first = self.links.get(key)
            if first is not None:
                self._header(arc, st, tarfile.LNKTYPE, linkname=first)
                return
            self.links[key] = arc
        if stat.S_ISREG(mode):
            self._file(pfd, name, arc)
        elif stat.S_ISLNK(mode):
            try:
                target = os.readlink(name, dir_fd=pfd)
            except OSError:
                return
            self._header(arc, st, tarfile.SYMTYPE, linkname=target)
        elif stat.S_ISCHR(mode):
            self._header(arc, st, tarfile.CHRTYPE)
        elif stat.S_ISBLK(mode):
            self._header(arc, st, tarfile.BLKTYPE)
        elif stat.S_ISFIFO(mode):
            self._header(arc, st, tarfile.FIFOTYPE)
        # sockets are skipped, as Docker's archiver does

    def _file(self, pfd: int, name: str, arc: str) -> None:
        try:
            fd = os.open(name, _FILE_FLAGS, dir_fd=pfd)
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ELOOP, errno.ENXIO):
                return      # gone or swapped for something else meanwhile
            raise
        try:
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                return
            size = st.st_size
            self._header(arc, st, tarfile.REGTYPE, size=size)
            left = size
            while left > 0:
                data = os.read(fd, min(_CHUNK, left))
                if not data:
                    break
                self.write(data)
                left -= len(data)
            if left > 0:
                self.write(bytes(left))     # shrank meanwhile: pad to the size declared
            pad = -size % tarfile.BLOCKSIZE
            if pad:
                self.write(bytes(pad))
        finally:
            os.close(fd)

    def finish(self) -> None:
        self.write(bytes(tarfile.BLOCKSIZE * 2))


def _reopen_dir(path_fd: int) -> int:
    """A readable descriptor of the directory an O_PATH descriptor refers to."""
    return os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=path_fd)


def archive_path(root_fd: int, where: Located, write: Callable[[bytes], None]) -> None:
    """``GET /containers/{id}/archive``: the located entry (and what is below it) named
    after the requested path's base name."""
    builder = TarBuilder(write)
    name = base_name(where.abs_path)
    if name == "/":
        name = "."
    if stat.S_ISDIR(where.st.st_mode):
        fd = _reopen_dir(where.fd)
        try:
            st = os.fstat(fd)
            builder._header(name, st, tarfile.DIRTYPE)
            builder.add_children(fd, name.rstrip("/") + "/")
        finally:
            os.close(fd)
    else:
        parent, entry = fs.split(where.abs_path)
        pfd = fs.open_in_root(root_fd, parent, libc.O_PATH | os.O_DIRECTORY)
        try:
            builder.add(pfd, entry, name)
        finally:
            os.close(pfd)
    builder.finish()


def export(root_fd: int, write: Callable[[bytes], None]) -> None:
    """``docker export``: every entry of the root, named relative to it."""
    fd = _reopen_dir(root_fd)
    try:
        builder = TarBuilder(write)
        builder.add_children(fd, "")
        builder.finish()
    finally:
        os.close(fd)


# -- extracting into a container ---------------------------------------------------------

def extract(root_fd: int, path: str, container_ref: str, stream: BinaryIO, *,
            no_overwrite_dir_non_dir: bool = False) -> int:
    """``PUT /containers/{id}/archive``: the tar (plain or compressed) read from
    ``stream`` extracted into the directory ``path`` of the container (symlinks on the
    way, the last one too, followed inside the root). Returns the number of entries."""
    from longboat.image.layer_blob import DEFAULT_MAX_SIZE, LayerBlob, Prefetch
    from longboat.image.layer_entries import EntryWriter
    from longboat.image.layer_paths import LayerRoot, clean_path
    from longboat.image.layer_result import LayerError
    from longboat.image.layer_tar import DEFAULT_MAX_ENTRY_SIZE, DIRTYPE, TarReader, TarStream

    abs_path = absolute(path)
    try:
        dest_fd = fs.open_in_root(root_fd, abs_path, libc.O_PATH)
    except OSError as exc:
        if exc.errno in (errno.ENOENT, errno.ENOTDIR, errno.ELOOP):
            raise NotFound(f"Could not find the file {path} in container "
                           f"{container_ref}") from None
        raise SystemFault(f"{path} in container {container_ref}: {exc.strerror}") from exc
    try:
        if not stat.S_ISDIR(os.fstat(dest_fd).st_mode):
            raise InvalidArgument("extraction point is not a directory")
        source = LayerBlob(stream, "auto", DEFAULT_MAX_SIZE)
        chunks = Prefetch(source.chunks())
        try:
            reader = TarReader(TarStream(chunks), DEFAULT_MAX_ENTRY_SIZE)
            root = LayerRoot(fs.fd_path(dest_fd))
            try:
                writer = EntryWriter(root, reader)
                entries = 0
                for entry in reader:
                    target = clean_path(entry.name, "archive entry")
                    if not target:
                        continue    # the destination itself: Docker leaves it as it is
                    parent, _, name = target.rpartition("/")
                    try:
                        if no_overwrite_dir_non_dir:
                            _check_overwrite(root, parent, name, entry.name,
                                             entry.type == DIRTYPE, abs_path)
                        writer.write(entry, target, parent, name)
                    except LayerError as exc:
                        # the extractor speaks of layers; here it is an archive for cp
                        raise LayerError(exc.message.replace("layer entry", "archive entry")
                                         .replace("the layer root", "the destination")
                                         ) from None
                    except OSError as exc:
                        if exc.errno in (errno.EXDEV, errno.ELOOP, errno.ENOTDIR,
                                         errno.ENAMETOOLONG, errno.EISDIR):
                            raise LayerError(f"archive entry {entry.name!r} cannot be "
                                             f"extracted: {exc.strerror}") from exc
                        if exc.errno == errno.EROFS:
                            raise Forbidden("container rootfs is marked read-only") from exc
                        raise SystemFault(f"extracting {entry.name!r} into {path}: "
                                          f"{exc.strerror}") from exc
                    if root.retired:
                        root.release_retired()
                    entries += 1
                writer.set_dir_times()
                reader.stream.drain()
            finally:
                root.close()
        finally:
            chunks.close()
    finally:
        os.close(dest_fd)
    return entries


def _check_overwrite(root: Any, parent: str, name: str, entry: str, is_dir: bool,
                     dest: str) -> None:
    pfd = root.dir_fd(parent, entry, create=False)
    if pfd is None:
        return
    try:
        st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
    except FileNotFoundError:
        return
    where = posixpath.join(dest, parent, name)
    if stat.S_ISDIR(st.st_mode) and not is_dir:
        raise InvalidArgument(f'cannot overwrite directory "{where}" with non-directory '
                              f'"{entry}"')
    if not stat.S_ISDIR(st.st_mode) and is_dir:
        raise InvalidArgument(f'cannot overwrite non-directory "{where}" with directory '
                              f'"{entry}"')


def spool(directory: str) -> BinaryIO:
    """An unnamed temporary file in ``directory`` (the caller closes it)."""
    return tempfile.TemporaryFile(dir=directory)


# -- changes (docker diff) ---------------------------------------------------------------

MODIFIED, ADDED, DELETED = 0, 1, 2
_OPAQUE = "trusted.overlay.opaque"


def runtime_mount_points(container: Container) -> set[str]:
    """The mount destinations of the container's bundle: the runtime creates those that
    are missing in the rootfs (empty, in the upper directory). Docker keeps them in an
    "init" layer, so they never show in its diff."""
    import json

    try:
        with open(os.path.join(container.bundle, "config.json")) as f:
            spec = json.load(f)
    except (OSError, ValueError):
        return set()
    return {posixpath.normpath("/" + str(m.get("destination") or "/").lstrip("/"))
            for m in spec.get("mounts") or []}


def changes(upper: str, lowers: list[str], hidden: set[str] | None = None
            ) -> list[dict[str, Any]]:
    """Docker's overlay changes of an upper directory over ``lowers`` (top first), in
    the order Docker's walk gives them: ``[{"Path", "Kind"}]``. ``hidden``: paths the
    runtime made (mount points) that are not reported when no lower has them, nor their
    directories when nothing else changed in them."""
    hidden = hidden or set()
    out: list[dict[str, Any]] = []
    changed_dirs: set[str] = set()
    root_fd = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)

    def in_lowers(path: str) -> os.stat_result | None:
        # looked up inside each lower (its symlinks resolve in it, never on the host)
        for lower in lowers:
            try:
                lower_fd = fs.open_root(lower)
            except OSError:
                continue
            try:
                fd = _open_in_lower(lower_fd, path)
            except (FileNotFoundError, NotADirectoryError):
                continue
            finally:
                os.close(lower_fd)
            try:
                return os.fstat(fd)
            finally:
                os.close(fd)
        return None

    def only_hidden(path: str, dir_fd: int) -> bool:
        """True when every entry below ``path`` in the upper is a hidden mount point
        (iterative: a directory at a time, any depth)."""
        pending = [(path, os.dup(dir_fd))]
        try:
            while pending:
                here, fd = pending.pop()
                try:
                    names = os.listdir(fd)
                    if not names:
                        return False
                    for name in names:
                        child = posixpath.join(here, name)
                        st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                        if child in hidden and in_lowers(child) is None:
                            continue
                        if not stat.S_ISDIR(st.st_mode):
                            return False
                        pending.append((child, os.open(name, _DIR_FLAGS, dir_fd=fd)))
                finally:
                    os.close(fd)
            return True
        finally:
            for _, fd in pending:
                os.close(fd)

    def walk(root_fd: int) -> None:
        """Depth first, entries of a directory in byte order, each recorded before
        what is below it (Docker's order); iterative, a descriptor per level open."""
        stack = [(os.dup(root_fd), "/", iter(sorted(os.listdir(root_fd), key=os.fsencode)))]
        try:
            while stack:
                dir_fd, path, names = stack[-1]
                name = next(names, None)
                if name is None:
                    os.close(dir_fd)
                    stack.pop()
                    continue
                child = posixpath.join(path, name)
                st = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
                if not stat.S_ISDIR(st.st_mode):
                    record(-1, child, st, name, dir_fd)
                    continue
                fd = os.open(name, _DIR_FLAGS, dir_fd=dir_fd)
                try:
                    record(fd, child, st, name, dir_fd)
                    below = iter(sorted(os.listdir(fd), key=os.fsencode))
                except BaseException:
                    os.close(fd)
                    raise
                stack.append((fd, child, below))
        finally:
            for dir_fd, _, _ in stack:
                os.close(dir_fd)

    def record(fd: int, path: str, st: os.stat_result, name: str, parent_fd: int) -> None:
        lower = in_lowers(path)
        if path in hidden and lower is None:
            return
        is_dir = stat.S_ISDIR(st.st_mode)
        deleted = False
        if stat.S_ISCHR(st.st_mode) and st.st_rdev == 0:
            deleted = True
        elif is_dir:
            try:
                opaque = os.getxattr(fs.fd_path(fd), _OPAQUE)
            except OSError:
                opaque = b""
            if opaque == b"y" and lower is not None:
                deleted = True
        if deleted:
            kind = DELETED
        elif lower is None:
            kind = ADDED
        else:
            if is_dir and stat.S_ISDIR(lower.st_mode):
                if st.st_size == lower.st_size and st.st_mode == lower.st_mode and \
                        _same_time(st.st_mtime_ns, lower.st_mtime_ns):
                    return      # only the parent of a change: not itself changed
                if hidden and st.st_mode == lower.st_mode and only_hidden(path, fd):
                    return      # copied up only to hold the runtime's mount points
            kind = MODIFIED
        if is_dir:
            changed_dirs.add(path)
        if kind in (ADDED, DELETED):
            parent = posixpath.dirname(path)
            if parent not in changed_dirs and parent != "/":
                out.append({"Path": parent, "Kind": MODIFIED})
                changed_dirs.add(parent)
        out.append({"Path": path, "Kind": kind})

    try:
        walk(root_fd)
    finally:
        os.close(root_fd)
    return out


def _open_in_lower(lower_fd: int, path: str) -> int:
    """``path`` opened (O_PATH) inside a lower, symlinks resolved in it; a path longer
    than the kernel takes in one lookup is resolved a piece at a time (each piece's
    symlinks then resolve beneath the directory reached so far: still never outside)."""
    parts = [p for p in path.split("/") if p]
    fd = os.dup(lower_fd)
    try:
        while True:
            piece: list[str] = []
            size = 0
            while parts and size + len(parts[0]) + 1 < _LOOKUP_PIECE:
                size += len(parts[0]) + 1
                piece.append(parts.pop(0))
            if not piece and parts:
                raise FileNotFoundError(errno.ENAMETOOLONG, "name too long", path)
            flags = libc.O_PATH if not parts else libc.O_PATH | os.O_DIRECTORY
            nxt = fs.open_in_root(fd, "/".join(piece), flags)
            os.close(fd)
            fd = nxt
            if not parts:
                return fd
    except BaseException:
        os.close(fd)
        raise


def _same_time(a_ns: int, b_ns: int) -> bool:
    # Docker's sameFsTime: equal, or equal seconds where one side has no nanoseconds
    if a_ns == b_ns:
        return True
    return a_ns // 1_000_000_000 == b_ns // 1_000_000_000 and \
        (a_ns % 1_000_000_000 == 0 or b_ns % 1_000_000_000 == 0)


def container_changes(engine: Engine, container: Container) -> list[dict[str, Any]]:
    snapshots = engine.snapshots
    mount = snapshots.mounts(container.id)
    upper = snapshots.upper_path(container.id)
    lowers = [os.path.join(mount.root, lower) for lower in mount.lowerdirs]
    from longboat.engine import init_layer

    return changes(upper, lowers, init_layer.mount_points(container))

