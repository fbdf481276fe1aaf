"""``PidMode``/``IpcMode`` ``container:<name|id>``: the other container's namespaces, as
paths for :func:`longboat.engine.bundle.oci_config`; and the /dev/shm of an ``IpcMode:
shareable`` container.

moby 20.10's rules (``getPidContainer``, ``getIpcContainer``): the other container must
exist and be running (not restarting); for IPC it must also be shareable
(``IpcMode: shareable``, or ``host``, whose /dev/shm is the host's). The namespaces are
joined through its init's ``/proc/<pid>/ns/{pid,ipc}``, as moby does. A shareable
container's /dev/shm is, as moby's ``ShmPath``, a tmpfs on the host
(``<container dir>/mounts/shm``, ``ShmSize``, nosuid/nodev/noexec, mode 1777) mounted at
start, bound at /dev/shm in it and in those that join it, unmounted when it stops. (A
bind of ``/proc/<pid>/root/dev/shm`` would need no host mount, but the kernel refuses to
bind a mount of another mount namespace.)
"""

from __future__ import annotations

import os
from typing import TypedDict

from longboat.errors import Conflict, InvalidArgument, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.containers import Container, Containers


def _running(containers: Containers, ref: str) -> Container:
    other = containers.get(ref)
    state = other.state
    if state.get("Restarting"):
        raise Conflict(f"container {other.id} is restarting, wait until the container is "
                       "running")
    if not state.get("Running") or not state.get("Pid"):
        raise Conflict(f"container {other.id} is not running")
    return other


class Joined(TypedDict, total=False):
    """``oci_config``'s keyword arguments for the namespaces of other containers."""

    pidns_path: str
    ipcns_path: str
    ipc_shm: str


def at_create(containers: Containers, host_config: dict[str, Any]) -> None:
    """``container:<name>`` in PidMode/IpcMode becomes ``container:<id>`` at create, as
    moby stores it; an unknown container is refused then ("No such container", a bad
    parameter: 400, not the 404 that would make a client pull the image)."""
    for field in ("PidMode", "IpcMode"):
        mode = host_config.get(field)
        if isinstance(mode, str) and mode.startswith("container:") and mode[10:]:
            try:
                host_config[field] = "container:" + containers.get(mode[10:]).id
            except NotFound as exc:
                raise InvalidArgument(str(exc)) from None


def resolve(containers: Containers, container: Container) -> Joined:
    """``oci_config`` keyword arguments: ``pidns_path``, ``ipcns_path``, ``ipc_shm``."""
    host_config = container.host_config
    out: Joined = {}
    pid_mode = str(host_config.get("PidMode") or "")
    if pid_mode.startswith("container:") and pid_mode[10:]:
        ref = pid_mode[10:]
        try:
            other = _running(containers, ref)
        except NotFound as exc:
            raise NotFound(f"cannot join PID of a non running container: {ref}: "
                           f"{exc}") from None
        out["pidns_path"] = f"/proc/{other.state['Pid']}/ns/pid"
    ipc_mode = str(host_config.get("IpcMode") or "")
    if ipc_mode.startswith("container:") and ipc_mode[10:]:
        ref = ipc_mode[10:]
        prefix = f"can't join IPC of container {ref}"
        try:
            other = _running(containers, ref)
        except (NotFound, Conflict) as exc:
            raise type(exc)(f"{prefix}: {exc}") from None
        other_mode = other.host_config.get("IpcMode") or "private"
        pid = other.state["Pid"]
        if other_mode == "host":
            out["ipc_shm"] = "/dev/shm"
        elif other_mode == "shareable" and os.path.ismount(shm_path(other)):
            out["ipc_shm"] = shm_path(other)
        else:
            raise Conflict(f"{prefix}: non-shareable IPC (hint: use IpcMode:shareable for "
                           "the donor container)")
        out["ipcns_path"] = f"/proc/{pid}/ns/ipc"
    elif ipc_mode == "shareable":
        out["ipc_shm"] = mount_shm(container)
    return out


#: moby's default ShmSize (64 MiB).
DEFAULT_SHM_SIZE = 64 << 20


def shm_path(container: Container) -> str:
    return os.path.join(container.dir, "mounts", "shm")


def mount_shm(container: Container) -> str:
    """The shareable container's /dev/shm tmpfs on the host (mounted if it is not)."""
    from longboat.linux import libc

    path = shm_path(container)
    os.makedirs(path, mode=0o700, exist_ok=True)
    if not os.path.ismount(path):
        size = container.host_config.get("ShmSize") or DEFAULT_SHM_SIZE
        if type(size) is not int or size < 0:
            raise InvalidArgument("SHM size can not be less than 0")
        libc.mount("shm", path, "tmpfs", libc.MS_NOSUID | libc.MS_NODEV | libc.MS_NOEXEC,
                   f"mode=1777,size={size}")
    return path


def unmount_shm(container: Container) -> None:
    """Its /dev/shm tmpfs goes when it stops (as moby's ``unmountIpcMount``)."""
    from longboat.linux import libc

    path = shm_path(container)
    if os.path.ismount(path):
        libc.umount2(path, libc.MNT_DETACH)
