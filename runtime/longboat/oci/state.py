"""The runtime's record of each container: ``ROOT/ID/state`` and the exec fifo.

The record is written once the container is created and rewritten atomically (temp
file, fsync, rename). It is stored with ``marshal``, which costs nothing to import: json
would pull in ``re`` and cost every ``start`` and ``delete`` several milliseconds.
(``longboat-runtime state`` prints the OCI state as JSON.)

The status is never stored: it is derived from the kernel each time it is read (is the
init process alive and the same one? is the fifo still there? is the cgroup frozen?), so
it cannot go stale when a process dies behind our back.
"""

from __future__ import annotations

import marshal
import os

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.linux import proc
from longboat.oci import OCI_VERSION

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any


DEFAULT_ROOT = "/run/longboat-runtime"
FIFO = "exec.fifo"
STATE_FILE = "state"
_ID_CHARS = frozenset("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.+-")


def check_id(container_id: str) -> None:
    # (no regular expression: `re` costs milliseconds at every start)
    if (not 0 < len(container_id) <= 1024 or not container_id[0].isalnum()
            or not container_id[0].isascii() or not _ID_CHARS.issuperset(container_id)):
        raise InvalidArgument(
            f"invalid container id {container_id!r}: use letters, digits, '_', '.', '+', '-'")


class ContainerRecord:
    """What the runtime remembers of a container between invocations."""

    FIELDS = ("id", "bundle", "rootfs", "pid", "init_start", "created", "cgroup_path",
              "config", "annotations", "owner")

    def __init__(self, id: str, bundle: str, rootfs: str, pid: int, init_start: int,
                 created: str, cgroup_path: str, config: dict[str, Any],
                 annotations: dict[str, str] | None = None, owner: str = "") -> None:
        self.id = id
        self.bundle = bundle
        self.rootfs = rootfs
        self.pid = pid
        self.init_start = init_start
        self.created = created
        self.cgroup_path = cgroup_path
        self.config = config
        self.annotations = annotations or {}
        self.owner = owner

    def as_dict(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self.FIELDS}

    @property
    def namespaces(self) -> list[dict[str, str]]:
        linux: dict[str, Any] = self.config.get("linux") or {}
        return list(linux.get("namespaces") or [])


class StateStore:
    """The directory of container records (runc's ``--root``)."""

    def __init__(self, root: str = DEFAULT_ROOT) -> None:
        self.root = root

    def dir(self, container_id: str) -> str:
        check_id(container_id)
        return os.path.join(self.root, container_id)

    def reserve(self, container_id: str) -> str:
        """Claim an id: make its directory, or fail if it exists (atomic by mkdir)."""
        os.makedirs(self.root, mode=0o700, exist_ok=True)
        path = self.dir(container_id)
        try:
            os.mkdir(path, 0o700)
        except FileExistsError:
            raise Conflict(f"container with id {container_id!r} already exists") from None
        return path

    def save(self, record: ContainerRecord) -> None:
        path = os.path.join(self.dir(record.id), STATE_FILE)
        tmp = path + ".tmp"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, marshal.dumps(record.as_dict()))
            os.fsync(fd)
        finally:
            os.close(fd)
        os.rename(tmp, path)

    def load(self, container_id: str) -> ContainerRecord:
        path = os.path.join(self.dir(container_id), STATE_FILE)
        try:
            with open(path, "rb") as f:
                data = marshal.loads(f.read())
        except FileNotFoundError:
            raise NotFound(f"container {container_id!r} does not exist") from None
        except (EOFError, ValueError, TypeError):
            raise SystemFault(f"container {container_id!r}: its record {path} is unreadable; "
                              "delete it with --force") from None
        return ContainerRecord(**data)

    def exists(self, container_id: str) -> bool:
        return os.path.isdir(self.dir(container_id))

    def ids(self) -> list[str]:
        try:
            return sorted(n for n in os.listdir(self.root)
                          if os.path.isdir(os.path.join(self.root, n)))
        except FileNotFoundError:
            return []

    def remove(self, container_id: str) -> None:
        """Remove the record's directory (only files of ours live there)."""
        path = self.dir(container_id)
        try:
            names = os.listdir(path)
        except FileNotFoundError:
            return
        for name in names:
            try:
                os.unlink(os.path.join(path, name))
            except FileNotFoundError:
                pass
        try:
            os.rmdir(path)
        except FileNotFoundError:
            pass

    def fifo_path(self, container_id: str) -> str:
        return os.path.join(self.dir(container_id), FIFO)


def status_of(store: StateStore, record: ContainerRecord, frozen: Callable[[], bool]) -> str:
    """created/running/paused/stopped, as the kernel sees it now (the cgroup is only
    asked about freezing when the rest says running)."""
    if not proc.is_alive(record.pid, record.init_start):
        return "stopped"
    if os.path.exists(store.fifo_path(record.id)):
        return "created"
    return "paused" if frozen() else "running"


def oci_state(record: ContainerRecord, status: str) -> dict[str, Any]:
    """The state document of the OCI runtime spec (plus runc's rootfs/created/owner)."""
    state: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "id": record.id,
        "status": status,
        "pid": 0 if status == "stopped" else record.pid,
        "bundle": record.bundle,
        "rootfs": record.rootfs,
        "created": record.created,
        "owner": record.owner,
    }
    if record.annotations:
        state["annotations"] = record.annotations
    return state
