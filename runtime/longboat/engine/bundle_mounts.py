"""HostConfig ``Binds``, ``Mounts`` and ``Tmpfs`` -> the OCI ``mounts`` list, merged with
Docker's default mounts the way moby's ``WithMounts`` does.

Docker's rules kept here: a bind is ``rbind`` (``bind`` with ``NonRecursive``), ``ro``
unless writable, with its propagation (default ``rprivate``); a tmpfs gets ``noexec,
nosuid, nodev, rprivate`` and then its own options, later ones replacing earlier ones of
the same kind (``MergeTmpfsOptions``); user mounts replace the default mount at the same
destination (a user ``/dev`` replaces everything under it); mounts are ordered by depth;
with ``ReadonlyRootfs`` the default mounts but ``/proc``, ``/dev``, ``/dev/pts``,
``/dev/shm`` and ``/dev/mqueue`` become read-only. Named volumes are not supported yet.
"""

from __future__ import annotations

import json
import os
import posixpath
import stat
from dataclasses import dataclass
from typing import Any

from longboat.engine.bundle_fields import Fields
from longboat.errors import InvalidArgument

DEFAULT_SHM_SIZE = 64 << 20

_RW_MODES = ("rw", "ro")
_LABEL_MODES = ("z", "Z")
_PROPAGATION = ("private", "rprivate", "shared", "rshared", "slave", "rslave")
_COPY_MODES = ("nocopy",)
_CONSISTENCY = ("consistent", "cached", "delegated")

# moby/sys/mount's flag table, as MergeTmpfsOptions groups it: options with the same key
# replace each other (every propagation mode shares one key).
_TMPFS_FLAG_KEYS: dict[str, str] = {
    "ro": "rdonly", "rw": "rdonly", "suid": "nosuid", "nosuid": "nosuid",
    "dev": "nodev", "nodev": "nodev", "exec": "noexec", "noexec": "noexec",
    "sync": "sync", "async": "sync", "dirsync": "dirsync", "remount": "remount",
    "mand": "mand", "nomand": "mand", "atime": "noatime", "noatime": "noatime",
    "diratime": "nodiratime", "nodiratime": "nodiratime", "bind": "bind", "rbind": "rbind",
    "unbindable": "propagation", "runbindable": "propagation",
    "private": "propagation", "rprivate": "propagation", "shared": "propagation",
    "rshared": "propagation", "slave": "propagation", "rslave": "propagation",
    "relatime": "relatime", "norelatime": "relatime",
    "strictatime": "strictatime", "nostrictatime": "strictatime",
}
_TMPFS_DATA = ("", "size", "mode", "uid", "gid", "nr_inodes", "nr_blocks", "mpol")


@dataclass
class MountPoint:
    """A user mount before it becomes an OCI mount."""

    destination: str
    kind: str                       # "bind" or "tmpfs"
    source: str = ""
    writable: bool = True
    propagation: str = "rprivate"
    recursive: bool = True
    data: str = ""                  # tmpfs options, comma-separated
    propagation_given: bool = False


def default_mounts() -> list[dict[str, Any]]:
    """moby's ``oci.DefaultLinuxSpec`` mounts, in its order."""
    return [
        {"destination": "/proc", "type": "proc", "source": "proc",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev", "type": "tmpfs", "source": "tmpfs",
         "options": ["nosuid", "strictatime", "mode=755", "size=65536k"]},
        {"destination": "/dev/pts", "type": "devpts", "source": "devpts",
         "options": ["nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620",
                     "gid=5"]},
        {"destination": "/sys", "type": "sysfs", "source": "sysfs",
         "options": ["nosuid", "noexec", "nodev", "ro"]},
        {"destination": "/sys/fs/cgroup", "type": "cgroup", "source": "cgroup",
         "options": ["ro", "nosuid", "noexec", "nodev"]},
        {"destination": "/dev/mqueue", "type": "mqueue", "source": "mqueue",
         "options": ["nosuid", "noexec", "nodev"]},
        {"destination": "/dev/shm", "type": "tmpfs", "source": "shm",
         "options": ["nosuid", "noexec", "nodev", "mode=1777"]},
    ]


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def _check_destination(dest: str) -> str:
    if not dest.startswith("/"):
        raise ValueError(f"invalid mount path: '{dest}' mount path must be absolute")
    clean = posixpath.normpath(dest)
    if clean == "/" or clean == "//":
        raise ValueError("invalid specification: destination can't be '/'")
    return "/" + clean.lstrip("/")


def _valid_mode(mode: str) -> bool:
    """moby's ``linuxValidMountMode``: comma-separated words, at most one of each kind."""
    if mode == "":
        return True
    counts = [0] * 5
    for word in mode.split(","):
        for i, kind in enumerate((_RW_MODES, _LABEL_MODES, _PROPAGATION, _COPY_MODES,
                                  _CONSISTENCY)):
            if word in kind:
                counts[i] += 1
                break
        else:
            return False
    return max(counts) <= 1


def parse_bind(raw: str, field: str) -> MountPoint:
    """One ``HostConfig.Binds`` entry: ``src:dst[:mode]`` with an absolute host path."""
    if raw.count(":") > 2:
        raise InvalidArgument(_invalid_spec(raw))
    parts = raw.split(":")
    mode = ""
    if len(parts) == 1:
        raise InvalidArgument(f"{field}: anonymous volumes are not supported yet ('{raw}': "
                              "give a host path, 'SRC:DST')")
    if len(parts) == 2 and _valid_mode(parts[1]):
        raise InvalidArgument(_invalid_spec(raw))
    source, target = parts[0], parts[1]
    if len(parts) == 3:
        mode = parts[2]
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    if not source.startswith("/"):
        if not source:
            raise InvalidArgument(f"{_invalid_spec(raw)}: field Source must not be empty")
        raise InvalidArgument(f"{field}: named volumes are not supported yet ('{raw}': "
                              "give an absolute host path)")
    words = mode.split(",") if mode else []
    if "nocopy" in words:
        raise InvalidArgument(f"{_invalid_spec(raw)}: field VolumeOptions must not be "
                              "specified")
    try:
        dest = _check_destination(target)
    except ValueError as e:
        raise InvalidArgument(f"{_invalid_spec(raw)}: {e}") from None
    if not os.path.exists(source):
        # Docker creates a missing Binds source on the host; a translation does not
        # change the host: the engine creates it first if it wants that behaviour.
        raise InvalidArgument(f"{field}: bind source path does not exist: {source}")
    given = next((w for w in words if w in _PROPAGATION), "")
    return MountPoint(dest, "bind", source=posixpath.normpath(source),
                      writable="ro" not in words, propagation=given or "rprivate",
                      propagation_given=bool(given))


def _mount_error(kind: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"invalid mount config for type {json.dumps(kind)}: {problem}")


def _tmpfs_size(size: int) -> str:
    for suffix, divisor in (("g", 1 << 30), ("m", 1 << 20), ("k", 1 << 10)):
        if size % divisor == 0:
            return f"{size // divisor}{suffix}"
    return str(size)


def parse_mount(item: Fields) -> MountPoint:
    """One ``HostConfig.Mounts`` entry (``type`` bind or tmpfs)."""
    kind = item.string("Type")
    target = item.string("Target")
    source = item.string("Source")
    read_only = item.flag("ReadOnly")
    item.string("Consistency")
    if kind in ("volume", "npipe"):
        raise item.fail("Type", f"{kind} mounts are not supported yet")
    if kind not in ("bind", "tmpfs"):
        raise _mount_error(kind, "mount type unknown")
    try:
        dest = _check_destination(target)
    except ValueError as e:
        raise _mount_error(kind, str(e)) from None
    if item.given("VolumeOptions"):
        raise _mount_error(kind, "field VolumeOptions must not be specified")
    if kind == "bind":
        if item.given("TmpfsOptions"):
            raise _mount_error(kind, "field TmpfsOptions must not be specified")
        if not source:
            raise _mount_error(kind, "field Source must not be empty")
        if not source.startswith("/"):
            raise _mount_error(kind, f"invalid mount path: '{source}' mount path must be "
                                     "absolute")
        if not os.path.exists(source):
            raise _mount_error(kind, f"bind source path does not exist: {source}")
        options = item.obj("BindOptions")
        given = options.string("Propagation")
        if given and given not in _PROPAGATION:
            raise _mount_error(kind, f"invalid propagation mode: {given}")
        return MountPoint(dest, "bind", source=posixpath.normpath(source),
                          writable=not read_only, propagation=given or "rprivate",
                          recursive=not options.flag("NonRecursive"),
                          propagation_given=bool(given))
    if source:
        raise _mount_error(kind, "field Source must not be specified")
    if item.given("BindOptions"):
        raise _mount_error(kind, "field BindOptions must not be specified")
    options = item.obj("TmpfsOptions")
    size, mode = options.number("SizeBytes"), options.number("Mode", bits=32)
    if size < 0:
        raise _mount_error(kind, f"invalid tmpfs size {size}")
    if mode < 0 or mode > 0o7777:
        raise _mount_error(kind, f"invalid tmpfs mode {mode:o}")
    data = ["ro"] if read_only else []
    if mode:
        data.append(f"mode={mode:o}")
    if size:
        data.append(f"size={_tmpfs_size(size)}")
    return MountPoint(dest, "tmpfs", data=",".join(data))


def merge_tmpfs_options(options: list[str]) -> list[str]:
    """moby's ``MergeTmpfsOptions``: from the end, keep the first option of each kind."""
    seen: set[str] = set()
    out: list[str] = []
    for option in reversed(options):
        if option == "defaults":
            continue
        key = _TMPFS_FLAG_KEYS.get(option)
        if key is None:
            name, sep, _ = option.partition("=")
            if not sep or name not in _TMPFS_DATA:
                parts = " ".join(json.dumps(p) for p in option.split("=", 1))
                raise InvalidArgument(f"Invalid tmpfs option [{parts}]")
            key = "=" + name
        if key not in seen:
            seen.add(key)
            out.insert(0, option)
    return out


def tmpfs_mounts(host: Fields) -> list[MountPoint]:
    """``HostConfig.Tmpfs``: ``{path: "size=64m,mode=1777"}``."""
    out = []
    for dest, data in host.string_map("Tmpfs").items():
        try:
            clean = _check_destination(dest)
        except ValueError as e:
            raise InvalidArgument(str(e)) from None
        out.append(MountPoint(clean, "tmpfs", data=data))
    return out


def user_mounts(host: Fields, *, data_root: str | None = None) -> list[MountPoint]:
    """Binds, then Mounts, then Tmpfs; a destination used twice is refused. A bind of
    the engine's ``data_root`` or a directory above it is ``rslave`` unless a propagation
    is given (moby does so: the engine's own mounts below it must not be pinned)."""
    points = [parse_bind(raw, host.name(f"Binds[{i}]"))
              for i, raw in enumerate(host.strings("Binds") or [])]
    points += [parse_mount(item) for item in host.objects("Mounts")]
    points += tmpfs_mounts(host)
    seen: set[str] = set()
    for point in points:
        if (data_root and point.kind == "bind" and not point.propagation_given
                and (point.source == "/" or data_root == point.source
                     or data_root.startswith(point.source + "/"))):
            point.propagation = "rslave"
        if point.destination in seen:
            raise InvalidArgument(f"Duplicate mount point: {point.destination}")
        seen.add(point.destination)
    return points


def _depth(destination: str) -> int:
    return destination.rstrip("/").count("/")


def to_oci(point: MountPoint) -> dict[str, Any]:
    if point.kind == "tmpfs":
        options = ["noexec", "nosuid", "nodev", "rprivate"]
        if point.data:
            options += point.data.split(",")
        return {"destination": point.destination, "type": "tmpfs", "source": "tmpfs",
                "options": merge_tmpfs_options(options)}
    options = ["rbind" if point.recursive else "bind"]
    if not point.writable:
        options.append("ro")
    options.append(point.propagation)
    return {"destination": point.destination, "type": "bind", "source": point.source,
            "options": options}


def assemble(defaults: list[dict[str, Any]], points: list[MountPoint], *, shm_size: int,
             ipc_none: bool, readonly_rootfs: bool, privileged: bool) -> list[dict[str, Any]]:
    """The final mount list: defaults (less those a user mount replaces), then the user
    mounts by depth, with Docker's read-only and privileged adjustments."""
    ordered = sorted(points, key=lambda p: _depth(p.destination))  # stable, as moby sorts
    taken = {p.destination for p in ordered}
    mount_dev = "/dev" in taken
    mounts: list[dict[str, Any]] = []
    for mount in defaults:
        dest = mount["destination"]
        if dest in taken or (mount_dev and dest.startswith("/dev/")):
            continue
        if dest == "/dev/shm":
            if ipc_none:
                continue
            mount = {**mount, "options": [*mount["options"], f"size={shm_size}"]}
        mounts.append(mount)
    if readonly_rootfs:
        for mount in mounts:
            if mount["destination"] not in ("/proc", "/dev/pts", "/dev/shm", "/dev/mqueue",
                                            "/dev") and "ro" not in mount["options"]:
                mount["options"] = [*mount["options"], "ro"]
    mounts += [to_oci(p) for p in ordered]
    if privileged:
        for mount in mounts:
            if mount["destination"] == "/sys" or mount["type"] == "cgroup":
                mount["options"] = [o for o in mount["options"] if o != "ro"]
    return mounts


# --------------------------------------------------------------------------------------
# Devices
# --------------------------------------------------------------------------------------

_HOST_DEV_SKIP_DIRS = ("pts", "shm", "fd", "mqueue", ".lxc", ".lxd-mounts", ".udev")
# The runtime makes /dev/ptmx a link to pts/ptmx and never gives the host's console.
_HOST_DEV_SKIP = ("/dev/console", "/dev/ptmx")


def _device(host_path: str, container_path: str) -> dict[str, Any] | None:
    """The OCI device for a host node (lstat, like runc's DeviceFromPath), or None."""
    try:
        info = os.lstat(host_path)
    except OSError:
        return None
    if stat.S_ISCHR(info.st_mode):
        kind = "c"
    elif stat.S_ISBLK(info.st_mode):
        kind = "b"
    else:
        return None
    return {"path": container_path, "type": kind, "major": os.major(info.st_rdev),
            "minor": os.minor(info.st_rdev), "fileMode": stat.S_IMODE(info.st_mode),
            "uid": info.st_uid, "gid": info.st_gid}


def devices_from_path(on_host: str, in_container: str) -> list[dict[str, Any]]:
    """moby's ``DevicesFromPath``: a device node (a symlink to one is followed), or every
    node below a directory."""
    resolved = os.path.realpath(on_host) if os.path.islink(on_host) else on_host
    device = _device(resolved, in_container)
    if device is not None:
        return [device]
    found: list[dict[str, Any]] = []
    if os.path.isdir(resolved):
        for top, dirs, files in os.walk(resolved):
            dirs.sort()
            for name in sorted(files):
                path = os.path.join(top, name)
                child = _device(path, in_container + path[len(resolved):])
                if child is not None:
                    found.append(child)
    if not found:
        reason = "not a device node" if os.path.exists(resolved) else \
            "no such file or directory"
        raise InvalidArgument(f"error gathering device information while adding custom "
                              f"device {json.dumps(on_host)}: {reason}")
    return found


def host_devices(dev: str = "/dev") -> list[dict[str, Any]]:
    """Every device node of the host's /dev (``--privileged``), as runc lists them."""
    found: list[dict[str, Any]] = []
    for top, dirs, files in os.walk(dev):
        if top == dev:
            dirs[:] = sorted(d for d in dirs if d not in _HOST_DEV_SKIP_DIRS)
        else:
            dirs.sort()
        for name in sorted(files):
            path = os.path.join(top, name)
            if path in _HOST_DEV_SKIP:
                continue
            device = _device(path, path)
            if device is not None:
                found.append(device)
    return found


def _rule(device: dict[str, Any], access: str) -> dict[str, Any]:
    return {"allow": True, "type": device["type"], "major": device["major"],
            "minor": device["minor"], "access": access}


def _cgroup_rule(rule: str, field: str) -> dict[str, Any]:
    """A ``DeviceCgroupRules`` entry: ``"c 1:3 mr"``, ``"b *:* rwm"``."""
    parts = rule.split(" ")
    numbers = parts[1].split(":") if len(parts) == 3 else []
    access = parts[2] if len(parts) == 3 else ""
    if (len(parts) != 3 or parts[0] not in ("a", "b", "c") or len(numbers) != 2
            or not all(n == "*" or n.isdigit() for n in numbers)
            or not 1 <= len(access) <= 3 or access.strip("rwm")):
        raise InvalidArgument(f"invalid device cgroup rule format: '{rule}'")
    major, minor = (-1 if n == "*" else int(n) for n in numbers)
    return {"allow": True, "type": parts[0], "major": major, "minor": minor, "access": access}


#: The device cgroup rules Docker 20.10 starts from (containerd's default Unix spec): deny
#: all, allow zero, null, urandom, random, tty, deny fuse. Docker also allows the
#: console (5:1); longboat-runtime never gives the host's console, so neither does this.
DEFAULT_DEVICE_RULES: tuple[dict[str, Any], ...] = (
    {"allow": False, "access": "rwm"},
    *({"allow": True, "type": "c", "major": major, "minor": minor, "access": "rwm"}
      for major, minor in ((1, 5), (1, 3), (1, 9), (1, 8), (5, 0))),
    {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"},
)


def devices(host: Fields, *, privileged: bool,
            dev: str = "/dev") -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """``linux.devices`` and ``linux.resources.devices`` (moby's ``WithDevices``)."""
    nodes: list[dict[str, Any]] = []
    rules = [dict(rule) for rule in DEFAULT_DEVICE_RULES]
    mappings = []
    for item in host.objects("Devices"):
        on_host = item.string("PathOnHost")
        in_container = item.string("PathInContainer") or on_host
        access = item.string("CgroupPermissions") or "rwm"
        if not on_host.startswith("/"):
            raise item.fail("PathOnHost", f"bad format for path: {on_host}")
        if not in_container.startswith("/"):
            raise item.fail("PathInContainer", f"bad format for path: {in_container}")
        if (len(access) > 3 or access.strip("rwm")
                or len(set(access)) != len(access)):
            raise InvalidArgument(f"bad mode specified: {access}")
        mappings.append((on_host, posixpath.normpath(in_container), access))
    cgroup_rules = [_cgroup_rule(rule, host.name(f"DeviceCgroupRules[{i}]"))
                    for i, rule in enumerate(host.strings("DeviceCgroupRules") or [])]
    if privileged:
        nodes = host_devices(dev)
        for on_host, in_container, _ in mappings:
            if on_host != in_container:
                nodes += devices_from_path(on_host, in_container)
        return nodes, [{"allow": True, "access": "rwm"}]
    for on_host, in_container, access in mappings:
        found = devices_from_path(on_host, in_container)
        nodes += found
        rules += [_rule(d, access) for d in found]
    return nodes, rules + cgroup_rules
