"""The engine's volumes: ``DATA_ROOT/volumes/<name>/`` holds ``volume.json`` (name,
driver, creation time, labels, options; written atomically) and ``_data``, what
containers see.

Two counts per volume, both kept in memory and recomputed from the containers' records
when the engine starts:

* references: the containers (running or not) whose mount points name the volume. A
  referenced volume cannot be removed ("volume is in use") and is not dangling.
* users: the running containers that have it mounted. A volume with mount options is
  mounted on ``_data`` when its first user starts and unmounted when the last one stops.

Methods are called from the event loop and from executor threads: one lock guards the
tables.
"""

from __future__ import annotations

import json
import logging
import os
import re
import secrets
import shutil
import threading
import time

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.volume import local

log = logging.getLogger("longboat.volume")

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

#: moby's ``RestrictedNamePattern``: what a local volume may be called.
NAME = re.compile(r"[a-zA-Z0-9][a-zA-Z0-9_.-]+")
RESTRICTED_CHARS = "[a-zA-Z0-9][a-zA-Z0-9_.-]"
DRIVER = "local"
_FILTERS = ("dangling", "driver", "label", "name")
_TRUE, _FALSE = ("true", "1"), ("false", "0")


def go_rfc3339(when: float) -> str:
    """Go's ``time.RFC3339`` in local time: seconds, ``Z`` for a zero offset."""
    local_time = time.localtime(when)
    offset = local_time.tm_gmtoff or 0
    text = time.strftime("%Y-%m-%dT%H:%M:%S", local_time)
    if offset == 0:
        return text + "Z"
    sign = "+" if offset > 0 else "-"
    hours, minutes = divmod(abs(offset) // 60, 60)
    return f"{text}{sign}{hours:02d}:{minutes:02d}"


def check_name(name: str) -> None:
    """moby's local driver ``validateName``."""
    if len(name) == 1:
        raise InvalidArgument(f"create {name}: volume name is too short, names should be at "
                              "least two alphanumeric characters")
    if len(name) > 200:     # its directory, and ".removing-" + it, must fit NAME_MAX
        raise InvalidArgument(f"create {name[:32]}...: volume name is too long "
                              f"({len(name)} characters, at most 200)")
    if not NAME.fullmatch(name):
        raise InvalidArgument(
            f'create {name}: "{name}" includes invalid characters for a local volume name, '
            f'only "{RESTRICTED_CHARS}" are allowed. If you intended to pass a host '
            "directory, use absolute path")


def anonymous_name() -> str:
    return secrets.token_hex(32)


class Volume:
    """One volume, as stored."""

    def __init__(self, directory: str, record: dict[str, Any]) -> None:
        self.dir = directory
        self.name: str = record["Name"]
        self.driver: str = record.get("Driver") or DRIVER
        self.created: float = float(record.get("Created") or 0)
        self.labels: dict[str, str] | None = record.get("Labels")
        self.options: dict[str, str] | None = record.get("Options")

    @property
    def mountpoint(self) -> str:
        return os.path.join(self.dir, "_data")

    @property
    def id(self) -> str:      # the actor of its events
        return self.name

    def record(self) -> dict[str, Any]:
        return {"Name": self.name, "Driver": self.driver, "Created": self.created,
                "Labels": self.labels, "Options": self.options}

    def inspect(self) -> dict[str, Any]:
        """Docker's Volume object."""
        return {"CreatedAt": go_rfc3339(self.created), "Driver": self.driver,
                "Labels": self.labels, "Mountpoint": self.mountpoint, "Name": self.name,
                "Options": self.options, "Scope": "local"}

    def save(self) -> None:
        path = os.path.join(self.dir, "volume.json")
        with open(path + ".tmp", "w") as f:
            json.dump(self.record(), f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)


def _string_map(value: Any, what: str) -> dict[str, str] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
        raise InvalidArgument(f"{what} must be an object of strings")
    return dict(value)


class VolumeStore:
    """Every volume of this engine (the ``local`` driver only)."""

    def __init__(self, root: str,
                 publish: Callable[[str, Volume, dict[str, str]], None] | None = None
                 ) -> None:
        self.root = root
        self.publish = publish or (lambda action, volume, attrs: None)
        os.makedirs(root, mode=0o700, exist_ok=True)
        self.lock = threading.RLock()
        self.volumes: dict[str, Volume] = {}
        self.refs: dict[str, set[str]] = {}
        self.users: dict[str, set[str]] = {}
        for name in os.listdir(root):
            directory = os.path.join(root, name)
            if name.startswith(".removing-") and not local.mounts_under(directory):
                remove_tree(root, name)    # a removal cut short
                continue
            try:
                with open(os.path.join(directory, "volume.json")) as f:
                    record = json.load(f)
            except FileNotFoundError:
                if not os.path.isdir(os.path.join(directory, "_data")):
                    continue      # not a volume (a crash before _data was made)
                record = {"Name": name, "Created": os.stat(directory).st_mtime}
            except (OSError, ValueError):
                continue
            if record.get("Name") == name and NAME.fullmatch(name):
                self.volumes[name] = Volume(directory, record)

    # -- lookup -------------------------------------------------------------------------
    def get(self, name: str) -> Volume:
        with self.lock:
            volume = self.volumes.get(name)
        if volume is None:
            raise NotFound(f"get {name}: no such volume")
        return volume

    def references(self, name: str) -> list[str]:
        with self.lock:
            return sorted(self.refs.get(name, ()))

    def find(self, filters: dict[str, list[str]] | None = None) -> list[Volume]:
        filters = filters or {}
        for key in filters:
            if key not in _FILTERS:
                raise InvalidArgument(f"Invalid filter '{key}'")
        dangling = filters.get("dangling")
        if dangling:
            for value in dangling:
                if value.lower() not in _TRUE + _FALSE:
                    raise InvalidArgument(f"Invalid filter 'dangling={value}'")
        with self.lock:
            found = sorted(self.volumes.values(), key=lambda v: v.name)
            return [v for v in found if self._matches(v, filters)]

    def _matches(self, volume: Volume, filters: dict[str, list[str]]) -> bool:
        for key, values in filters.items():
            if not values:
                continue
            if key == "dangling":
                want = values[0].lower() in _TRUE
                if bool(self.refs.get(volume.name)) == want:
                    return False
            elif key in ("driver", "name"):
                value = volume.driver if key == "driver" else volume.name
                if not any(_match(v, value) for v in values):
                    return False
            elif not labels_match(volume.labels or {}, values):     # label
                return False
        return True

    # -- create and remove --------------------------------------------------------------
    def create(self, name: str | None = None, *, driver: str | None = None,
               options: Any = None, labels: Any = None, reference: str | None = None
               ) -> Volume:
        """Create a volume (a random 64-hex name when none is given), or return the one
        of that name. ``reference`` is a container id that now uses it."""
        driver = driver or DRIVER
        name = name or anonymous_name()
        if driver != DRIVER:
            raise NotFound(f"create {name}: error looking up volume plugin {driver}: plugin "
                           f'"{driver}" not found')
        check_name(name)
        options = _string_map(options, "DriverOpts")
        labels = _string_map(labels, "Labels")
        try:
            local.validate(options or {})
        except InvalidArgument as exc:
            raise InvalidArgument(f"create {name}: {exc.message}") from None
        with self.lock:
            volume = self.volumes.get(name)
            if volume is None:
                directory = os.path.join(self.root, name)
                volume = Volume(directory, {"Name": name, "Driver": driver,
                                            "Created": time.time(), "Labels": labels,
                                            "Options": options})
                try:
                    os.makedirs(directory, mode=0o700, exist_ok=True)
                    os.makedirs(volume.mountpoint, mode=0o755, exist_ok=True)
                    volume.save()
                except OSError as exc:
                    shutil.rmtree(directory, ignore_errors=True)
                    raise SystemFault(f"create {name}: {exc}") from exc
                self.volumes[name] = volume
                created = True
            else:
                created = False
            if reference:
                self.refs.setdefault(name, set()).add(reference)
        if created:
            self.publish("create", volume, {"driver": volume.driver})
        return volume

    def reference(self, name: str, container_id: str) -> Volume:
        with self.lock:
            volume = self.get(name)
            self.refs.setdefault(name, set()).add(container_id)
            return volume

    def release(self, name: str, container_id: str) -> None:
        with self.lock:
            holders = self.refs.get(name)
            if holders is not None:
                holders.discard(container_id)
                if not holders:
                    del self.refs[name]

    def remove(self, name: str, *, force: bool = False) -> None:
        """Remove an unused volume; ``force`` only quiets a missing one (as in moby, a
        volume in use is never removed)."""
        with self.lock:
            volume = self.volumes.get(name)
            if volume is None:
                if force:
                    return
                raise NotFound(f"get {name}: no such volume")
            refs = sorted(self.refs.get(name, ()))
            if refs:
                raise Conflict(f"remove {name}: volume is in use - [{', '.join(refs)}]")
            self._delete(volume)
        self.publish("destroy", volume, {"driver": volume.driver})

    def _delete(self, volume: Volume) -> None:
        # never delete through a mount: a bind volume's _data is someone's directory
        for point in sorted(local.mounts_under(volume.dir), reverse=True):
            local.unmount(point)
        if local.mounts_under(volume.dir):
            raise SystemFault(f"remove {volume.name}: its directory is still mounted")
        try:
            os.rename(volume.dir, os.path.join(self.root, f".removing-{volume.name}"))
        except OSError as exc:
            raise SystemFault(f"remove {volume.name}: {exc}") from exc
        del self.volumes[volume.name]
        self.users.pop(volume.name, None)
        remove_tree(self.root, f".removing-{volume.name}")

    def prune(self, filters: dict[str, list[str]] | None = None) -> tuple[list[str], int]:
        """API 1.41's prune: every volume no container references (``label`` and
        ``label!`` filters). The names removed and the bytes freed."""
        filters = filters or {}
        for key in filters:
            if key not in ("label", "label!"):
                raise InvalidArgument(f"Invalid filter '{key}'")
        removed: list[str] = []
        freed = 0
        for volume in self.find():
            labels = volume.labels or {}
            if filters.get("label") and not labels_match(labels, filters["label"]):
                continue
            if filters.get("label!") and any(labels_match(labels, [w])
                                             for w in filters["label!"]):
                continue
            with self.lock:
                if self.refs.get(volume.name) or volume.name not in self.volumes:
                    continue
                size = tree_size(volume.mountpoint)
                try:
                    self._delete(volume)
                except SystemFault:
                    continue
            self.publish("destroy", volume, {"driver": volume.driver})
            removed.append(volume.name)
            freed += size
        return removed, freed

    # -- mounts -------------------------------------------------------------------------
    def mount(self, name: str, container_id: str) -> str:
        """The host path a running container binds; mounts the volume's device for its
        first user."""
        with self.lock:
            volume = self.get(name)
            users = self.users.setdefault(name, set())
            if not users and local.needs_mount(volume.options) and \
                    not local.is_mounted(volume.mountpoint):
                local.mount(volume.options or {}, volume.mountpoint)
            users.add(container_id)
            return volume.mountpoint

    def unmount(self, name: str, container_id: str) -> None:
        """The container stopped; the last user's stop unmounts the device."""
        with self.lock:
            users = self.users.get(name)
            if users is None or container_id not in users:
                return
            users.discard(container_id)
            volume = self.volumes.get(name)
            if not users:
                del self.users[name]
                if volume is not None and local.needs_mount(volume.options):
                    local.unmount(volume.mountpoint)

    def restore(self, refs: Iterable[tuple[str, str]], users: Iterable[tuple[str, str]]
                ) -> None:
        """At engine start: (volume, container) references and running users, from the
        containers' records. A device mounted with no user left is unmounted."""
        with self.lock:
            for name, cid in refs:
                if name in self.volumes:
                    self.refs.setdefault(name, set()).add(cid)
            for name, cid in users:
                if name in self.volumes:
                    self.users.setdefault(name, set()).add(cid)
            for volume in self.volumes.values():
                if volume.name not in self.users and local.needs_mount(volume.options) \
                        and local.is_mounted(volume.mountpoint):
                    local.unmount(volume.mountpoint)

    def disk_usage(self) -> list[dict[str, Any]]:
        """``/system/df``'s Volumes: each with its size and reference count."""
        rows = []
        for volume in self.find():
            row = volume.inspect()
            row["UsageData"] = {"Size": tree_size(volume.mountpoint),
                                "RefCount": len(self.references(volume.name))}
            rows.append(row)
        return rows


def _match(pattern: str, value: str) -> bool:
    """Docker's ``filters.Match``: equal, or the pattern as a regular expression."""
    if pattern == value:
        return True
    try:
        return re.search(pattern, value) is not None
    except re.error:
        return False


def labels_match(labels: dict[str, str], wanted: list[str]) -> bool:
    """Every ``key`` or ``key=value`` of ``wanted`` is among ``labels``."""
    for item in wanted:
        key, eq, value = item.partition("=")
        if key not in labels or (eq and labels[key] != value):
            return False
    return True


def remove_tree(parent: str, name: str) -> None:
    """Remove ``parent/name`` whatever a container left in it: any depth (shutil.rmtree
    stops at Python's recursion limit, which raised out of the engine's start), never
    following a symlink. Best effort: what cannot be removed stays, logged."""
    from longboat.image.layer_paths import rmtree

    try:
        parent_fd = os.open(parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return
    try:
        rmtree(parent_fd, name)
    except FileNotFoundError:
        pass
    except OSError as exc:
        log.warning("removing %s/%s: %s", parent, name, exc)
    finally:
        os.close(parent_fd)


def tree_size(path: str) -> int:
    """Bytes of the regular files below ``path`` (apparent sizes, as Docker's
    UsageData). Iterative, no symlink followed; a subtree deeper than PATH_MAX is not
    counted."""
    from longboat.image.layer_paths import REAL_DIRS_ONLY, openat2

    total = 0
    try:
        top = os.open(path, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    except OSError:
        return 0
    try:
        stack = [""]
        while stack:
            rel = stack.pop()
            try:
                fd = openat2(top, rel, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                             REAL_DIRS_ONLY) if rel else top
            except OSError:
                continue
            try:
                with os.scandir(fd) as entries:
                    for entry in entries:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                stack.append(f"{rel}/{entry.name}" if rel else entry.name)
                            elif entry.is_file(follow_symlinks=False):
                                total += entry.stat(follow_symlinks=False).st_size
                        except OSError:
                            pass
            finally:
                if fd != top:
                    os.close(fd)
    finally:
        os.close(top)
    return total
