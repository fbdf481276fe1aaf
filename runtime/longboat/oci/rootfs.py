"""The container's root filesystem, built inside its new mount namespace by its init.

Every destination is resolved inside the rootfs (openat2 ``RESOLVE_IN_ROOT``) and mounted
on through ``/proc/self/fd/N``, so a symlink in the image can never send a mount, a device
node or a write onto the host. Runs in the forked init before exec; it reports problems by
raising, naming the config field.
"""

from __future__ import annotations

import os
import stat

from longboat.errors import InvalidArgument
from longboat.linux import fs, libc
from longboat.oci.mountopts import parse_mount_options

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any


_PROPAGATION = {
    "shared": libc.MS_SHARED, "rshared": libc.MS_SHARED | libc.MS_REC,
    "slave": libc.MS_SLAVE, "rslave": libc.MS_SLAVE | libc.MS_REC,
    "private": libc.MS_PRIVATE, "rprivate": libc.MS_PRIVATE | libc.MS_REC,
    "unbindable": libc.MS_UNBINDABLE, "runbindable": libc.MS_UNBINDABLE | libc.MS_REC,
}
# The devices every container gets (runtime spec, "Default Devices").
DEFAULT_DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
                   ("urandom", 1, 9), ("tty", 5, 0))
DEV_SYMLINKS = (("fd", "/proc/self/fd"), ("stdin", "/proc/self/fd/0"),
                ("stdout", "/proc/self/fd/1"), ("stderr", "/proc/self/fd/2"))
# statvfs flags that a user namespace locks on a bind mount and that must be kept on remount
_LOCKED = ((os.ST_NOSUID, libc.MS_NOSUID), (os.ST_NODEV, libc.MS_NODEV),
           (os.ST_NOEXEC, libc.MS_NOEXEC), (os.ST_RDONLY, libc.MS_RDONLY),
           (os.ST_NOATIME, libc.MS_NOATIME), (os.ST_NODIRATIME, libc.MS_NODIRATIME),
           (os.ST_RELATIME, libc.MS_RELATIME))
_SETTABLE = (libc.MS_RDONLY | libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC
             | libc.MS_NOATIME | libc.MS_NODIRATIME | libc.MS_RELATIME | libc.MS_STRICTATIME
             | libc.MS_SYNCHRONOUS | libc.MS_DIRSYNC | libc.MS_NOSYMFOLLOW | libc.MS_MANDLOCK
             | libc.MS_LAZYTIME)


class RootfsBuilder:
    """Mounts, devices and links of one container, in the order the runtime spec gives."""

    def __init__(self, config: dict[str, Any], bundle: str, rootfs: str,
                 cgroup_path: str, *, in_userns: bool, cgroupns: bool) -> None:
        self.config = config
        self.linux: dict[str, Any] = config.get("linux") or {}
        self.bundle = bundle
        self.rootfs = rootfs
        self.cgroup_path = cgroup_path
        self.in_userns = in_userns
        self.cgroupns = cgroupns
        self.root_fd = -1

    # -- before pivot_root ------------------------------------------------------------
    def prepare(self) -> None:
        propagation = self.linux.get("rootfsPropagation")
        # Mounts made here reach the host only if asked for: the whole tree becomes a
        # slave (or gets the asked-for propagation, as runc does; Docker asks for rshared
        # when a bind mount is to propagate back), then the rootfs is bind-mounted on
        # itself for pivot_root, which refuses a new root whose parent mount is shared.
        flags = _PROPAGATION.get(propagation or "", libc.MS_SLAVE | libc.MS_REC)
        libc.mount(None, "/", None, flags)
        self._parent_mount_private()
        libc.mount(self.rootfs, self.rootfs, None, libc.MS_BIND | libc.MS_REC)
        self.root_fd = fs.open_root(self.rootfs)
        for index, entry in enumerate(self.config.get("mounts") or []):
            self._mount(index, entry)
        if not self._binds_dev():
            self._make_devices()
            self._dev_links()

    def _parent_mount_private(self) -> None:
        """Make the mount holding the rootfs private when it is shared (runc does the
        same): pivot_root(2) refuses to move a mount whose parent is shared."""
        rootfs = os.path.realpath(self.rootfs)
        best, shared = "", False
        with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
            for line in f:
                fields = line.split(" - ")[0].split()
                point = fields[4].replace("\\040", " ")
                inside = rootfs == point or rootfs.startswith(point.rstrip("/") + "/")
                if inside and len(point) >= len(best):
                    best, shared = point, any(o.startswith("shared:") for o in fields[6:])
        if shared:
            libc.mount(None, best, None, libc.MS_PRIVATE)

    def _mount(self, index: int, entry: dict[str, Any]) -> None:
        field = f"mounts[{index}]"
        dest = entry["destination"]
        kind = entry.get("type") or ""
        opts = parse_mount_options(list(entry.get("options") or []))
        if opts.extensions:
            raise InvalidArgument(
                f"config.json: {field}.options: {', '.join(sorted(opts.extensions))} "
                "not supported by longboat-runtime")
        if kind in ("proc", "sysfs") and fs.is_symlink_in_root(self.root_fd, dest):
            raise InvalidArgument(
                f"config.json: {field}.destination: {dest} is a symlink in the rootfs; "
                f"refusing to mount {kind} through it")
        if opts.bind or kind == "bind":
            self._bind(field, entry, opts)
        elif kind == "cgroup":
            self._cgroup(field, dest, opts)
        else:
            fd = fs.ensure_in_root(self.root_fd, dest, directory=True)
            try:
                libc.mount(entry.get("source") or kind, fs.fd_path(fd), kind,
                           opts.flags & ~libc.MS_REMOUNT, opts.data or None)
            except OSError as exc:
                raise InvalidArgument(
                    f"config.json: {field}: mounting {kind} on {dest}: {exc.strerror}") from None
            finally:
                os.close(fd)
        if opts.propagation:
            self._apply(dest, None, opts.propagation)

    def _bind(self, field: str, entry: dict[str, Any], opts: Any) -> None:
        source = entry.get("source") or ""
        if not os.path.isabs(source):
            source = os.path.join(self.bundle, source)
        try:
            st = os.stat(source)
        except FileNotFoundError:
            raise InvalidArgument(
                f"config.json: {field}.source: {entry.get('source')} does not exist") from None
        dest = entry["destination"]
        fd = fs.ensure_in_root(self.root_fd, dest, directory=stat.S_ISDIR(st.st_mode))
        try:
            libc.mount(source, fs.fd_path(fd), None,
                       libc.MS_BIND | (libc.MS_REC if opts.recursive else 0))
        finally:
            os.close(fd)
        extra = opts.flags & _SETTABLE
        if extra:
            self._remount_bind(dest, extra, source)

    def _remount_bind(self, dest: str, flags: int, source: str | None = None) -> None:
        if self.in_userns:
            flags |= self._locked_flags(source or dest)
        self._apply(dest, None, libc.MS_BIND | libc.MS_REMOUNT | flags)

    def _locked_flags(self, path: str) -> int:
        f_flag = os.statvfs(path).f_flag
        return sum(ms for st, ms in _LOCKED if f_flag & st)

    def _apply(self, dest: str, fstype: str | None, flags: int, source: str | None = None,
               data: str | None = None) -> None:
        fd = fs.open_in_root(self.root_fd, dest)
        try:
            libc.mount(source, fs.fd_path(fd), fstype, flags, data)
        finally:
            os.close(fd)

    def _cgroup(self, field: str, dest: str, opts: Any) -> None:
        from longboat.cgroups import host_version, v1_hierarchies

        flags = opts.flags & (libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC | libc.MS_RELATIME)
        readonly = bool(opts.flags & libc.MS_RDONLY)
        rel = self.cgroup_path.lstrip("/")
        if host_version() == 2:
            fd = fs.ensure_in_root(self.root_fd, dest, directory=True)
            try:
                if self.cgroupns:
                    libc.mount("cgroup2", fs.fd_path(fd), "cgroup2",
                               flags | (libc.MS_RDONLY if readonly else 0))
                else:
                    libc.mount(os.path.join("/sys/fs/cgroup", rel), fs.fd_path(fd), None,
                               libc.MS_BIND)
            finally:
                os.close(fd)
            if readonly and not self.cgroupns:
                self._remount_bind(dest, libc.MS_RDONLY | flags)
            return
        # v1: a tmpfs holding one mount per hierarchy, the container's own cgroup at each
        fd = fs.ensure_in_root(self.root_fd, dest, directory=True)
        try:
            libc.mount("tmpfs", fs.fd_path(fd), "tmpfs", flags, "mode=755")
        finally:
            os.close(fd)
        for hierarchy in v1_hierarchies():
            sub = os.path.join(dest, hierarchy.name)
            fd = fs.ensure_in_root(self.root_fd, sub, directory=True)
            try:
                if self.cgroupns:
                    libc.mount("cgroup", fs.fd_path(fd), "cgroup",
                               flags | (libc.MS_RDONLY if readonly else 0), hierarchy.options)
                else:
                    host = os.path.join(hierarchy.mountpoint, rel)
                    libc.mount(host, fs.fd_path(fd), None, libc.MS_BIND)
            finally:
                os.close(fd)
            if readonly and not self.cgroupns:
                self._remount_bind(sub, libc.MS_RDONLY | flags)
        if readonly:
            self._apply(dest, None, libc.MS_REMOUNT | libc.MS_RDONLY | flags)

    def _binds_dev(self) -> bool:
        return any(m.get("destination", "").rstrip("/") == "/dev"
                   and (m.get("type") == "bind" or "bind" in (m.get("options") or [])
                        or "rbind" in (m.get("options") or []))
                   for m in self.config.get("mounts") or [])

    def _make_devices(self) -> None:
        wanted: list[dict[str, Any]] = [
            {"path": f"/dev/{name}", "type": "c", "major": major, "minor": minor,
             "fileMode": 0o666, "uid": 0, "gid": 0} for name, major, minor in DEFAULT_DEVICES]
        given = {d["path"] for d in self.linux.get("devices") or []}
        wanted = [d for d in wanted if d["path"] not in given] + list(
            self.linux.get("devices") or [])
        for device in wanted:
            self._make_device(device)

    def _make_device(self, device: dict[str, Any]) -> None:
        path = device["path"]
        parent, name = fs.split(path)
        parent_fd = fs.makedirs_in_root(self.root_fd, parent)
        try:
            if self.in_userns:
                # mknod is not allowed in a user namespace: bind the host's node instead
                try:
                    fd = os.open(name, os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                                 0o644, dir_fd=parent_fd)
                    os.close(fd)
                except FileExistsError:
                    pass
                target = fs.open_nofollow_in_root(self.root_fd, path)
                try:
                    libc.mount(path, fs.fd_path(target), None, libc.MS_BIND)
                finally:
                    os.close(target)
                return
            kind = {"c": stat.S_IFCHR, "u": stat.S_IFCHR, "b": stat.S_IFBLK,
                    "p": stat.S_IFIFO}[device.get("type", "c")]
            mode = device.get("fileMode", 0o666) & 0o7777
            with_suppressed_missing(lambda: os.unlink(name, dir_fd=parent_fd))
            dev = os.makedev(device.get("major", 0), device.get("minor", 0))
            os.mknod(name, kind | mode, dev, dir_fd=parent_fd)
            os.chown(name, device.get("uid", 0), device.get("gid", 0), dir_fd=parent_fd,
                     follow_symlinks=False)
            os.chmod(name, mode, dir_fd=parent_fd)
        finally:
            os.close(parent_fd)

    def _dev_links(self) -> None:
        dev_fd = fs.makedirs_in_root(self.root_fd, "/dev")
        try:
            links = list(DEV_SYMLINKS)
            if os.path.exists("/proc/kcore"):
                links.append(("core", "/proc/kcore"))
            if any(m.get("destination") == "/dev/pts" and m.get("type") == "devpts"
                   for m in self.config.get("mounts") or []):
                with_suppressed_missing(lambda: os.unlink("ptmx", dir_fd=dev_fd))
                links.append(("ptmx", "pts/ptmx"))
            for name, target in links:
                try:
                    os.symlink(target, name, dir_fd=dev_fd)
                except FileExistsError:
                    pass
        finally:
            os.close(dev_fd)

    # -- pivot_root ----------------------------------------------------------------------
    def pivot(self) -> None:
        # pivot_root(".", ".") stacks the old root on the new one, so no directory for it
        # is needed in the image; then the old root (and only it: hence the fchdir to a
        # descriptor of it) is made a slave, so that detaching it does not propagate to
        # the host, and detached.
        old_root = os.open("/", os.O_DIRECTORY | os.O_RDONLY | os.O_CLOEXEC)
        try:
            os.chdir(self.rootfs)
            libc.pivot_root(".", ".")
            os.fchdir(old_root)
            libc.mount(None, ".", None, libc.MS_SLAVE | libc.MS_REC)
            libc.umount2(".", libc.MNT_DETACH)
        finally:
            os.close(old_root)
        os.chdir("/")
        if self.root_fd >= 0:
            os.close(self.root_fd)
            self.root_fd = -1
        propagation = self.linux.get("rootfsPropagation")
        if propagation:
            libc.mount(None, "/", None, _PROPAGATION[propagation])

    # -- after pivot_root ----------------------------------------------------------------
    def console(self, slave_name: str) -> None:
        """Bind the container's terminal onto /dev/console, as runc does."""
        try:
            fd = os.open("/dev/console", os.O_CREAT | os.O_WRONLY | os.O_NOFOLLOW | os.O_CLOEXEC,
                         0o600)
            os.close(fd)
        except FileExistsError:
            pass
        libc.mount(slave_name, "/dev/console", None, libc.MS_BIND)

    def finish(self) -> None:
        for index, path in enumerate(self.linux.get("readonlyPaths") or []):
            self._readonly(index, path)
        for path in self.linux.get("maskedPaths") or []:
            self._mask(path)
        root = self.config.get("root") or {}
        if root.get("readonly"):
            flags = libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY
            if self.in_userns:
                flags |= self._locked_flags("/")
            libc.mount(None, "/", None, flags)

    def _readonly(self, index: int, path: str) -> None:
        try:
            libc.mount(path, path, None, libc.MS_BIND | libc.MS_REC)
        except FileNotFoundError:
            return
        flags = libc.MS_BIND | libc.MS_REMOUNT | libc.MS_RDONLY | libc.MS_REC
        if self.in_userns:
            flags |= self._locked_flags(path)
        libc.mount(None, path, None, flags)

    def _mask(self, path: str) -> None:
        try:
            st = os.lstat(path)
        except FileNotFoundError:
            return
        if stat.S_ISDIR(st.st_mode):
            libc.mount("tmpfs", path, "tmpfs", libc.MS_RDONLY)
        else:
            libc.mount("/dev/null", path, None, libc.MS_BIND)


def with_suppressed_missing(action: Any) -> None:
    try:
        action()
    except FileNotFoundError:
        pass
