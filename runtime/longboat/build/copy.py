"""COPY and ADD: finding the sources and writing them into an image's root.

Sources are resolved inside their root (the build context, or another stage's or an
image's files for ``--from``) by ``openat2(RESOLVE_IN_ROOT)``: a symlink that points out
of the context (``/etc/passwd``, ``../..``) resolves inside it instead; a source named
with ``..`` above the context is refused outright. Wildcards (``*``, ``?``, ``[...]``)
match context paths per component, as Go's ``filepath.Match``.

Destinations are resolved inside the image's root the same way (Docker's
``FollowSymlinkInScope``), and every entry is created with ``*at`` calls relative to
its parent's descriptor, never following its last component.

Docker's rules: a directory source copies its content; a file goes into the
destination directory when the destination ends with ``/`` or is an existing
directory, else becomes the destination; several sources need a destination ending
with ``/``. New files and directories belong to 0:0 unless ``--chown``; ``--chmod``
sets the permission bits; mtimes are kept. ADD also extracts local tar archives (plain,
gzip, bzip2, xz) and fetches http(s) URLs.
"""

from __future__ import annotations

import errno
import fnmatch
import hashlib
import os
import posixpath
import re
import stat
from dataclasses import dataclass, field

from longboat.build.errors import BuildError
from longboat.errors import SystemFault
from longboat.linux import fs, libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator

_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
_READ = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC
_READ_FOLLOW = os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC   # within the root, by openat2
_WILDCARD = re.compile(r"(?<!\\)[*?\[]")


@dataclass
class Source:
    """One resolved source: its root's descriptor, its path inside that root (symlinks
    in it followed within the root) and the name it is copied under."""

    root_fd: int
    path: str
    name: str
    st: os.stat_result
    archive: bool = False      # ADD: a local tar archive, to be extracted
    host_file: str = ""        # ADD of a URL: the downloaded file (outside any root)
    mtime_ns: int | None = None


@dataclass
class Owner:
    uid: int = 0
    gid: int = 0


@dataclass
class CopyPlan:
    sources: list[Source]
    dest: str                   # absolute path in the image
    dest_is_dir: bool
    owner: Owner | None         # None: keep ownership (ADD extraction keeps the tar's)
    chmod: int | None = None
    checksum: str = ""
    dir_times: list[tuple[int, str, int]] = field(default_factory=list)


def has_wildcards(path: str) -> bool:
    return _WILDCARD.search(path) is not None


def clean_source(src: str, *, context: bool) -> str:
    """A source path relative to its root; ``..`` above a context is refused."""
    cleaned = posixpath.normpath(src.lstrip("/") or ".") if src else "."
    if context and (cleaned == ".." or cleaned.startswith("../")):
        raise BuildError(f"Forbidden path outside the build context: {src} ({cleaned})")
    if cleaned.startswith(".."):
        cleaned = posixpath.normpath("/" + cleaned).lstrip("/") or "."
    return cleaned


def _stat_in_root(root_fd: int, path: str) -> os.stat_result:
    fd = fs.open_in_root(root_fd, path, libc.O_PATH)
    try:
        return os.fstat(fd)
    finally:
        os.close(fd)


def resolve(root_fd: int, srcs: list[str], *, context: bool, instruction: str
            ) -> list[Source]:
    out: list[Source] = []
    for src in srcs:
        cleaned = clean_source(src, context=context)
        if has_wildcards(cleaned):
            matches = list(_glob(root_fd, cleaned))
            if not matches:
                continue
            for path in matches:
                out.append(Source(root_fd, path, posixpath.basename(path),
                                  _stat_in_root(root_fd, path)))
            continue
        try:
            st = _stat_in_root(root_fd, cleaned)
        except (FileNotFoundError, NotADirectoryError):
            where = "build context or excluded by .dockerignore" if context else "image"
            raise BuildError(f"{instruction} failed: file not found in {where}: stat "
                             f"{cleaned}: file does not exist") from None
        except OSError as exc:
            if exc.errno == errno.ELOOP:
                raise BuildError(f"{instruction} failed: {cleaned}: too many levels of "
                                 "symbolic links") from None
            raise
        name = posixpath.basename(cleaned) if cleaned != "." else ""
        out.append(Source(root_fd, cleaned, name, st))
    if not out:
        raise BuildError(f"{instruction} failed: no source files were specified")
    return out


def _glob(root_fd: int, pattern: str) -> Iterator[str]:
    """Paths under the root matching ``pattern`` (Go's filepath.Match per component);
    a matched directory's content is not searched further. Iterative: directories are
    opened from the top with no symlink on the way, one at a time, at any depth."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY
    from longboat.image.layer_paths import openat2 as beneath

    depth = len(pattern.split("/"))
    regex = re.compile(_translate(pattern))
    top = fs.open_in_root(root_fd, "", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        stack = [("", 1)]
        while stack:
            rel, level = stack.pop()
            try:
                fd = beneath(top, rel, _DIR, REAL_DIRS_ONLY) if rel else top
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise BuildError(f"{pattern[:80]}...: too long a path") from None
                raise
            subdirs: list[str] = []
            try:
                for name in sorted(os.listdir(fd)):
                    path = f"{rel}/{name}" if rel else name
                    if level == depth:
                        if regex.match(path):
                            yield path
                        continue
                    st = os.stat(name, dir_fd=fd, follow_symlinks=False)
                    if stat.S_ISDIR(st.st_mode):
                        subdirs.append(path)
            finally:
                if fd != top:
                    os.close(fd)
            stack.extend((path, level + 1) for path in reversed(subdirs))
    finally:
        os.close(top)


def _translate(pattern: str) -> str:
    out = []
    for part in pattern.split("/"):
        regex = fnmatch.translate(part)
        # fnmatch's "*" crosses nothing here: each part is matched alone
        out.append(regex.removeprefix("(?s:").removesuffix(")\\Z").replace(".*", "[^/]*"))
    return "(?s:" + "/".join(out) + r")\Z"


# -- checksums (the cache key of a COPY/ADD: content and metadata, never mtimes) -------------

def checksum(sources: list[Source]) -> str:
    digest = hashlib.sha256()
    for source in sources:
        digest.update(f"source {source.name}\n".encode())
        if source.host_file:
            _hash_host_file(digest, source.host_file)
            continue
        _hash_entry(digest, source.root_fd, source.path, "", follow=True)
    return digest.hexdigest()


def _hash_host_file(digest: hashlib._Hash, path: str) -> None:
    with open(path, "rb") as f:
        while chunk := f.read(1 << 20):
            digest.update(chunk)


def _hash_entry(digest: hashlib._Hash, root_fd: int, path: str, rel: str, *,
                follow: bool) -> None:
    """Hash ``path`` (followed within the root when ``follow``) and, for a directory,
    everything below it in sorted order, without following symlinks. Iterative: a tree
    of any depth is one stack of names, not one Python frame per level."""
    stack = [(path, rel, follow)]
    while stack:
        path, rel, follow = stack.pop()
        names = _hash_one(digest, root_fd, path, rel, follow=follow)
        stack.extend((posixpath.join(path, name), posixpath.join(rel, name), False)
                     for name in reversed(names))


def _hash_one(digest: hashlib._Hash, root_fd: int, path: str, rel: str, *,
              follow: bool) -> list[str]:
    """Hash one entry; a directory's sorted names."""
    if follow:
        pfd = fs.open_in_root(root_fd, path, libc.O_PATH)
    else:
        pfd = fs.open_nofollow_in_root(root_fd, path)
    try:
        st = os.fstat(pfd)
        # read what was checked, through its O_PATH descriptor: never a device or FIFO
        fd = os.open(fs.fd_path(pfd), _READ_FOLLOW) if stat.S_ISREG(st.st_mode) else -1
    finally:
        os.close(pfd)
    mode = st.st_mode
    link = ""
    if stat.S_ISLNK(mode):
        parent_fd = fs.open_in_root(root_fd, posixpath.dirname(path), libc.O_PATH
                                    | os.O_DIRECTORY)
        try:
            link = os.readlink(posixpath.basename(path), dir_fd=parent_fd)
        finally:
            os.close(parent_fd)
    size = st.st_size if stat.S_ISREG(mode) else 0
    digest.update(f"{rel}\0{stat.S_IFMT(mode)}\0{mode & 0o7777:o}\0{st.st_uid}\0"
                  f"{st.st_gid}\0{size}\0{link}\n".encode())
    if fd >= 0:
        try:
            while chunk := os.read(fd, 1 << 20):
                digest.update(chunk)
        finally:
            os.close(fd)
    elif stat.S_ISDIR(mode):
        fd = fs.open_in_root(root_fd, path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)
    return []


# -- writing -----------------------------------------------------------------------------

def destination(dest: str, workdir: str) -> tuple[str, bool]:
    """The absolute destination, and whether it names a directory (trailing ``/``)."""
    is_dir = dest.endswith("/") or dest.endswith("/.") or dest in (".", "")
    if not dest.startswith("/"):
        dest = posixpath.join(workdir or "/", dest)
    cleaned = posixpath.normpath(dest)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned, is_dir


class Writer:
    """Writes sources into the image root ``root_fd`` (an O_PATH descriptor)."""

    def __init__(self, root_fd: int, plan: CopyPlan) -> None:
        self.root_fd = root_fd
        self.plan = plan
        self.dir_times: list[tuple[str, int]] = []

    def run(self) -> None:
        plan = self.plan
        for source in plan.sources:
            try:
                self._one(source)
            except OSError as exc:
                if exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP):
                    raise
                raise BuildError(f"cannot copy to {plan.dest[:80]}: {exc.strerror} (too "
                                 "long, or too many symbolic links)") from None
        for path, ns in reversed(self.dir_times):
            try:
                fd = fs.open_nofollow_in_root(self.root_fd, path, os.O_RDONLY
                                              | os.O_DIRECTORY)
            except OSError:
                continue
            try:
                os.utime(fd, ns=(ns, ns))
            finally:
                os.close(fd)

    def _makedirs(self, path: str) -> int:
        """O_PATH fd of directory ``path`` in the image, made (owned like the copy)
        where missing."""
        parts = [p for p in path.split("/") if p]
        fd = fs.open_in_root(self.root_fd, "", libc.O_PATH | os.O_DIRECTORY)
        done: list[str] = []
        try:
            for part in parts:
                done.append(part)
                here = "/".join(done)
                try:
                    nxt = fs.open_in_root(self.root_fd, here, libc.O_PATH | os.O_DIRECTORY)
                except FileNotFoundError:
                    try:
                        os.mkdir(part, 0o755, dir_fd=fd)
                    except FileExistsError:
                        os.close(fs.makedirs_in_root(self.root_fd, here))
                    else:
                        new = os.open(part, _DIR, dir_fd=fd)
                        try:
                            owner = self.plan.owner or Owner()
                            os.fchown(new, owner.uid, owner.gid)
                            os.fchmod(new, 0o755)
                        finally:
                            os.close(new)
                    nxt = fs.open_in_root(self.root_fd, here, libc.O_PATH | os.O_DIRECTORY)
                except NotADirectoryError:
                    raise BuildError(f"cannot copy to {path}: /{here} is not a "
                                     "directory") from None
                os.close(fd)
                fd = nxt
            return fd
        except BaseException:
            os.close(fd)
            raise

    def _is_dir_in_image(self, path: str) -> bool:
        try:
            fd = fs.open_in_root(self.root_fd, path, libc.O_PATH)
        except OSError:
            return False
        try:
            return stat.S_ISDIR(os.fstat(fd).st_mode)
        finally:
            os.close(fd)

    def _one(self, source: Source) -> None:
        from longboat.build.archives import extract_archive, open_regular

        plan = self.plan
        if source.archive:
            dest_fd = self._makedirs(plan.dest)
            try:
                extract_archive(source, dest_fd)
            finally:
                os.close(dest_fd)
            return
        if source.host_file:
            self._host_file(source)
            return
        if stat.S_ISDIR(source.st.st_mode):
            dest_fd = self._makedirs(plan.dest)
            try:
                src_fd = fs.open_in_root(source.root_fd, source.path,
                                         os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
                try:
                    self._children(src_fd, dest_fd, plan.dest)
                finally:
                    os.close(src_fd)
            finally:
                os.close(dest_fd)
            return
        if plan.dest_is_dir or self._is_dir_in_image(plan.dest):
            parent, name = plan.dest, source.name
        else:
            parent, name = posixpath.dirname(plan.dest), posixpath.basename(plan.dest)
        if not name:
            raise BuildError(f"cannot copy {source.path} to {plan.dest}")
        if not stat.S_ISREG(source.st.st_mode):
            raise BuildError(f"cannot copy {source.path}: not a regular file")
        parent_fd = self._makedirs(parent)
        try:
            src = open_regular(source.root_fd, source.path)
            try:
                self._file_from_fd(src, os.fstat(src), parent_fd, name)
            finally:
                os.close(src)
        finally:
            os.close(parent_fd)

    def _host_file(self, source: Source) -> None:
        plan = self.plan
        if plan.dest_is_dir:
            parent, name = plan.dest, source.name
        else:
            parent, name = posixpath.dirname(plan.dest), posixpath.basename(plan.dest)
        parent_fd = self._makedirs(parent)
        try:
            src = os.open(source.host_file, os.O_RDONLY | os.O_CLOEXEC)
            try:
                self._file_from_fd(src, os.fstat(src), parent_fd, name, mode=0o600,
                                   mtime_ns=source.mtime_ns)
            finally:
                os.close(src)
        finally:
            os.close(parent_fd)

    def _owner(self, st: os.stat_result) -> tuple[int, int]:
        owner = self.plan.owner
        return (owner.uid, owner.gid) if owner is not None else (st.st_uid, st.st_gid)

    def _mode(self, st: os.stat_result) -> int:
        return self.plan.chmod if self.plan.chmod is not None else st.st_mode & 0o7777

    @staticmethod
    def _clear(parent_fd: int, name: str, *, keep_dir: bool) -> bool:
        """Make room for ``name``; True when a directory stays (to merge into)."""
        from longboat.image.layer_paths import rmtree

        try:
            st = os.stat(name, dir_fd=parent_fd, follow_symlinks=False)
        except FileNotFoundError:
            return False
        if stat.S_ISDIR(st.st_mode):
            if keep_dir:
                return True
            real = os.open(".", os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC, dir_fd=parent_fd)
            try:
                rmtree(real, name)
            finally:
                os.close(real)
            return False
        os.unlink(name, dir_fd=parent_fd)
        return False

    def _file_from_fd(self, src: int, st: os.stat_result, parent_fd: int, name: str, *,
                      mode: int | None = None, mtime_ns: int | None = None) -> None:
        if not stat.S_ISREG(st.st_mode):
            raise BuildError(f"cannot copy {name}: not a regular file")
        self._clear(parent_fd, name, keep_dir=False)
        fd = os.open(name, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW
                     | os.O_CLOEXEC, 0o600, dir_fd=parent_fd)
        try:
            _copy_data(src, fd, st.st_size)
            uid, gid = self._owner(st)
            os.fchown(fd, uid, gid)
            chosen = self.plan.chmod if self.plan.chmod is not None else \
                (mode if mode is not None else st.st_mode & 0o7777)
            os.fchmod(fd, chosen)
            when = st.st_mtime_ns if mtime_ns is None else mtime_ns
            os.utime(fd, ns=(when, when))
        finally:
            os.close(fd)

    def _children(self, src_top: int, dest_top: int, dest_path: str) -> None:
        """Copy the content of directory ``src_top`` into ``dest_top``. Iterative, with
        one pair of descriptors open at a time: a directory below the tops is opened
        from its top with no symlink allowed on the way (both trees are walked, or
        made, by this copy), so a tree of any depth costs neither Python frames nor
        descriptors per level."""
        from longboat.image.layer_paths import REAL_DIRS_ONLY
        from longboat.image.layer_paths import openat2 as beneath

        stack = [""]
        while stack:
            rel = stack.pop()
            src, dest = src_top, dest_top
            try:
                if rel:
                    src = beneath(src_top, rel, _DIR, REAL_DIRS_ONLY)
                    dest = beneath(dest_top, rel, _DIR, REAL_DIRS_ONLY)
                subdirs = [posixpath.join(rel, name) for name in sorted(os.listdir(src))
                           if self._entry(src, name, dest,
                                          posixpath.join(dest_path, rel, name))]
            except OSError as exc:
                if exc.errno == errno.ENAMETOOLONG:
                    raise BuildError(f"cannot copy to {dest_path}/{rel}: the path is too "
                                     "long") from None
                raise
            finally:
                if src != src_top:
                    os.close(src)
                if dest != dest_top:
                    os.close(dest)
            stack.extend(reversed(subdirs))

    def _entry(self, src_dir: int, name: str, dest_dir: int, dest_path: str) -> bool:
        """Copy one entry; True for a directory, whose content is still to be copied."""
        st = os.stat(name, dir_fd=src_dir, follow_symlinks=False)
        mode = st.st_mode
        uid, gid = self._owner(st)
        if stat.S_ISDIR(mode):
            if not self._clear(dest_dir, name, keep_dir=True):
                os.mkdir(name, 0o700, dir_fd=dest_dir)
            new = os.open(name, _DIR, dir_fd=dest_dir)
            try:
                os.fchown(new, uid, gid)
                os.fchmod(new, self._mode(st))
            finally:
                os.close(new)
            self.dir_times.append((dest_path, st.st_mtime_ns))
            return True
        elif stat.S_ISREG(mode):
            src = os.open(name, _READ, dir_fd=src_dir)
            try:
                self._file_from_fd(src, os.fstat(src), dest_dir, name)
            finally:
                os.close(src)
        elif stat.S_ISLNK(mode):
            target = os.readlink(name, dir_fd=src_dir)
            self._clear(dest_dir, name, keep_dir=False)
            os.symlink(target, name, dir_fd=dest_dir)
            os.chown(name, uid, gid, dir_fd=dest_dir, follow_symlinks=False)
            os.utime(name, ns=(st.st_mtime_ns, st.st_mtime_ns), dir_fd=dest_dir,
                     follow_symlinks=False)
        elif stat.S_ISFIFO(mode) or stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
            self._clear(dest_dir, name, keep_dir=False)
            os.mknod(name, mode, st.st_rdev, dir_fd=dest_dir)
            os.chown(name, uid, gid, dir_fd=dest_dir, follow_symlinks=False)
        # sockets are skipped, as Docker's archiver does
        return False


def _copy_data(src: int, dst: int, size: int) -> None:
    left = size
    try:
        while left > 0:
            n = os.copy_file_range(src, dst, min(left, 1 << 30))
            if n == 0:
                break
            left -= n
        return
    except OSError as exc:
        if exc.errno not in (errno.EXDEV, errno.EINVAL, errno.ENOSYS, errno.EOPNOTSUPP):
            raise SystemFault(f"copying: {exc.strerror}") from exc
    os.lseek(src, size - left, os.SEEK_SET)
    while left > 0:
        data = os.read(src, min(left, 1 << 20))
        if not data:
            break
        os.write(dst, data)
        left -= len(data)
