"""The runtime as a library: create, start, state, kill, delete, exec, pause, resume, ps,
update. The ``longboat-runtime`` CLI is a thin shell over this class, and the engine calls
it in-process, so a container costs a fork, not a new interpreter.

Whoever calls ``create`` or ``exec`` should be a child subreaper (the CLI's ``run`` and
``exec`` make themselves one; the engine is one): the container's init and exec'd
processes are grandchildren, and their exit status goes to the nearest subreaper.
"""

from __future__ import annotations

import os
import time

from longboat.errors import Conflict, InvalidArgument, NotFound, SystemFault
from longboat.linux import proc
from longboat.oci.hooks import run_hooks
from longboat.oci.state import (
    ContainerRecord,
    StateStore,
    oci_state,
    status_of,
)

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    import socket
    from collections.abc import Callable
    from typing import Any, NoReturn

    from longboat.cgroups import Cgroup
    from longboat.oci.sync import Channel


Stdio = tuple[int | None, int | None, int | None]
SIGKILL = 9  # the signal module costs a millisecond at start-up; Linux's number is fixed


class Created:
    def __init__(self, pid: int, warnings: list[str], pty_master: int | None = None) -> None:
        self.pid = pid
        self.warnings = warnings
        # the terminal's master, when one was asked for without a console socket
        self.pty_master = pty_master


class Executed:
    def __init__(self, pid: int, pty_master: int | None = None) -> None:
        self.pid = pid
        self.pty_master = pty_master


def signal_number(value: str | int) -> int:
    """9, "9", "KILL", "SIGKILL" -> 9."""
    if isinstance(value, int):
        return value
    text = value.strip().upper()
    if text.isdigit():
        return int(text)
    name = text if text.startswith("SIG") else "SIG" + text
    try:
        import signal

        return int(signal.Signals[name])
    except KeyError:
        raise InvalidArgument(f"unknown signal {value!r}") from None


class Runtime:
    def __init__(self, root: str | None = None) -> None:
        self.store = StateStore(root) if root else StateStore()

    # -- queries ---------------------------------------------------------------------
    def cgroup_of(self, record: ContainerRecord) -> Cgroup:
        from longboat.cgroups import open_cgroup

        return open_cgroup(record.cgroup_path)

    def status(self, record: ContainerRecord) -> str:
        return status_of(self.store, record, lambda: self._frozen(record))

    def _frozen(self, record: ContainerRecord) -> bool:
        cgroup = self.cgroup_of(record)
        return cgroup.exists() and cgroup.frozen()

    def state(self, container_id: str) -> dict[str, Any]:
        record = self.store.load(container_id)
        state = oci_state(record, self.status(record))
        cgroup = self.cgroup_of(record)
        if cgroup.exists():
            # Not in the OCI state schema's required set; runc-style extra, for supervisors.
            state["oomKilled"] = cgroup.oom_kills() > 0
        return state

    def containers(self) -> list[dict[str, Any]]:
        out = []
        for container_id in self.store.ids():
            try:
                out.append(self.state(container_id))
            except NotFound:
                # reserved but not yet created (or a create that is failing right now)
                out.append({"ociVersion": "1.1.0", "id": container_id, "status": "creating",
                            "pid": 0, "bundle": "", "created": "", "owner": ""})
        return out

    # -- lifecycle -------------------------------------------------------------------
    def create(self, container_id: str, bundle: str, *, pid_file: str | None = None,
               console_socket: str | None = None, preserve_fds: int = 0,
               stdio: Stdio | None = None) -> Created:
        """Create a container from a bundle; its process waits for :meth:`start`.
        ``stdio``: descriptors for the process's stdin, stdout and stderr (None: ours)."""
        from longboat.cgroups import open_cgroup
        from longboat.oci import child
        from longboat.oci.spec import load_config_with_warnings

        bundle = os.path.abspath(bundle)
        config, warnings = load_config_with_warnings(bundle)
        if not config.get("process"):
            raise InvalidArgument("config.json: process: required to create a container")
        kinds = [ns["type"] for ns in (config.get("linux") or {}).get("namespaces") or []]
        if "mount" not in kinds:
            raise InvalidArgument(
                "config.json: linux.namespaces: longboat-runtime needs a mount namespace")
        root_path = config["root"]["path"]
        rootfs = root_path if os.path.isabs(root_path) else os.path.join(bundle, root_path)
        state_dir = self.store.reserve(container_id)
        cgroup_path = (config.get("linux") or {}).get("cgroupsPath") or f"/longboat/{container_id}"
        if not cgroup_path.startswith("/"):
            cgroup_path = "/" + cgroup_path
        cgroup: Cgroup | None = None
        record: ContainerRecord | None = None
        try:
            os.mkfifo(self.store.fifo_path(container_id), 0o600)
            cgroup = open_cgroup(cgroup_path)
            cgroup.create()
            cgroup.set(device_rules(config))
            created_cgroup = cgroup
            parent, stage1 = _spawn(cgroup, console_socket, lambda kid, sock, placed:
                                    child.create_stage1(kid, config, bundle, rootfs,
                                                        created_cgroup, state_dir, sock,
                                                        preserve_fds, placed), stdio)
            try:
                record = ContainerRecord(
                    id=container_id, bundle=bundle, rootfs=rootfs, pid=0, init_start=0,
                    created=_now_rfc3339(),
                    cgroup_path=cgroup_path, config=config,
                    annotations=dict(config.get("annotations") or {}))
                pty_master = self._drive_create(parent, stage1, record, config)
            finally:
                parent.close()
                _reap(stage1)
            self.store.save(record)
            if pid_file:
                _write_atomic(pid_file, f"{record.pid}")
            return Created(record.pid, warnings, pty_master)
        except BaseException:
            if record is not None and record.pid:
                _kill_quietly(record.pid)
            if cgroup is not None:
                cgroup.signal_all(SIGKILL)
                cgroup.destroy()
            self.store.remove(container_id)
            raise

    def _drive_create(self, chan: Channel, stage1: int, record: ContainerRecord,
                      config: dict[str, Any]) -> int | None:
        """Answer the children's requests until the init reports it is created."""
        pty_master = None
        hooks_asked = False
        while True:
            msg, fds = chan.recv()
            if msg is None:
                raise SystemFault("container init exited before it was created")
            kind = msg["type"]
            if kind == "error":
                from longboat.oci.sync import ChildFailed

                raise ChildFailed(msg["message"], msg.get("status", 500))
            if kind == "userns":
                self._write_id_maps(msg["pid"], config)
                chan.send("ok")
            elif kind == "pid":
                record.pid = msg["pid"]
                record.init_start = proc.start_time(record.pid) or 0
            elif kind == "hooks":
                hooks_asked = True
            elif kind == "pty":
                pty_master = fds[0]
            elif kind == "created":
                return pty_master
            if hooks_asked and record.pid:
                hooks_asked = False
                state = oci_state(record, "creating")
                run_hooks(config, "prestart", state)
                run_hooks(config, "createRuntime", state)
                chan.send("ok", state=oci_state(record, "created"))

    @staticmethod
    def _write_id_maps(pid: int, config: dict[str, Any]) -> None:
        linux = config.get("linux") or {}
        for name, key in (("uid_map", "uidMappings"), ("gid_map", "gidMappings")):
            lines = "".join(f"{m['containerID']} {m['hostID']} {m['size']}\n"
                            for m in linux.get(key) or [])
            with open(f"/proc/{pid}/{name}", "w") as f:
                f.write(lines)

    def start(self, container_id: str) -> list[str]:
        record = self.store.load(container_id)
        status = self.status(record)
        if status != "created":
            raise Conflict(f"cannot start a container that is {status} (only a created one)")
        fifo_path = self.store.fifo_path(container_id)
        fd = os.open(fifo_path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            # "0" once the init has run the startContainer hooks, then end-of-file when
            # its exec closes the fifo; an init that dies closes it without the "0".
            got = b""
            deadline = time.monotonic() + 30
            while True:
                try:
                    chunk = os.read(fd, 16)
                except BlockingIOError:
                    chunk = None
                if chunk:
                    got += chunk
                elif chunk == b"" and got:
                    break   # writer closed after writing: the process was exec'd
                elif not proc.is_alive(record.pid, record.init_start):
                    raise SystemFault(f"container {container_id}: its process failed to start")
                if time.monotonic() > deadline:
                    raise SystemFault(f"container {container_id} init did not answer start")
                proc.wait_readable(fd, 0.05)
        finally:
            os.close(fd)
            os.unlink(fifo_path)
        return run_hooks(record.config, "poststart", oci_state(record, "running"))

    def kill(self, container_id: str, sig: str | int = "SIGTERM", *, all_processes: bool = False
             ) -> None:
        record = self.store.load(container_id)
        number = signal_number(sig)
        status = self.status(record)
        if status == "stopped":
            raise Conflict(f"container {container_id} is not running")
        cgroup = self.cgroup_of(record)
        if all_processes:
            cgroup.signal_all(number)
        else:
            try:
                os.kill(record.pid, number)
            except ProcessLookupError:
                raise Conflict(f"container {container_id} is not running") from None
        if status == "paused" and number == SIGKILL:
            cgroup.thaw()   # frozen tasks die of SIGKILL only once thawed (cgroup v1)

    def delete(self, container_id: str, *, force: bool = False) -> list[str]:
        record = self.store.load(container_id)
        status = self.status(record)
        cgroup = self.cgroup_of(record)
        if status in ("running", "paused") and not force:
            raise Conflict(f"cannot delete container {container_id} that is not stopped: "
                           f"{status}")
        if status != "stopped":
            if cgroup.exists():
                cgroup.signal_all(SIGKILL)
                if status == "paused":
                    cgroup.thaw()
            _kill_quietly(record.pid)
            if not proc.wait_exit(record.pid, 10):
                raise SystemFault(f"container {container_id}: init did not die after SIGKILL")
        if cgroup.exists():
            if cgroup.pids():   # processes exec'd into it may outlive the init
                cgroup.signal_all(SIGKILL)
            cgroup.destroy()
        warnings = run_hooks(record.config, "poststop", oci_state(record, "stopped"))
        self.store.remove(container_id)
        return warnings

    def pause(self, container_id: str) -> None:
        record = self.store.load(container_id)
        status = self.status(record)
        if status != "running":
            raise Conflict(f"cannot pause container {container_id}: it is {status}")
        self.cgroup_of(record).freeze()

    def resume(self, container_id: str) -> None:
        record = self.store.load(container_id)
        status = self.status(record)
        if status != "paused":
            raise Conflict(f"cannot resume container {container_id}: it is {status}")
        self.cgroup_of(record).thaw()

    def pids(self, container_id: str) -> list[int]:
        record = self.store.load(container_id)
        return self.cgroup_of(record).pids()

    def update(self, container_id: str, resources: dict[str, Any]) -> None:
        record = self.store.load(container_id)
        if self.status(record) == "stopped":
            raise Conflict(f"container {container_id} is not running")
        self.cgroup_of(record).set(resources)
        linux = record.config.setdefault("linux", {})
        merged = linux.setdefault("resources", {})
        for key, value in resources.items():
            if isinstance(value, dict) and isinstance(merged.get(key), dict):
                merged[key].update(value)
            else:
                merged[key] = value
        self.store.save(record)

    def exec(self, container_id: str, spec: dict[str, Any], *, console_socket: str | None = None,
             pid_file: str | None = None, preserve_fds: int = 0,
             stdio: Stdio | None = None) -> Executed:
        """Start ``spec`` (an OCI process) inside a running container."""
        from longboat.oci import child
        from longboat.oci.sync import ChildFailed

        record = self.store.load(container_id)
        status = self.status(record)
        if status not in ("running", "created"):
            raise Conflict(f"cannot exec in a {status} container")
        if not spec.get("args"):
            raise InvalidArgument("process.args: the command to execute is missing")
        kinds = [ns["type"] for ns in record.namespaces]
        cgroup = self.cgroup_of(record)
        parent, stage1 = _spawn(cgroup, console_socket, lambda kid, sock, placed:
                                child.exec_stage1(kid, record.pid, kinds, cgroup, spec, sock,
                                                  preserve_fds, placed), stdio)
        pid = 0
        pty_master = None
        try:
            first, _ = parent.expect("pid")
            pid = first["pid"]
            while True:
                msg, fds = parent.recv()
                if msg is None:
                    break   # the channel closed at exec: the process runs
                if msg["type"] == "pty":
                    pty_master = fds[0]
                elif msg["type"] == "error":
                    raise ChildFailed(msg["message"], msg.get("status", 500))
        except BaseException:
            if pid:
                _kill_quietly(pid)
            raise
        finally:
            parent.close()
            _reap(stage1)
        if pid_file:
            _write_atomic(pid_file, str(pid))
        return Executed(pid, pty_master)


def exec_process(record_config: dict[str, Any], args: list[str], *, env: list[str] | None = None,
                 cwd: str | None = None, user: str | None = None, tty: bool = False,
                 additional_gids: list[int] | None = None, caps: list[str] | None = None,
                 no_new_privs: bool = False) -> dict[str, Any]:
    """The process for ``exec``: the container's own process settings as a base (like
    runc), with the given overrides."""
    base = dict(record_config.get("process") or {})
    spec: dict[str, Any] = {
        "terminal": tty,
        "args": list(args),
        "env": list(base.get("env") or []) + list(env or []),
        "cwd": cwd or base.get("cwd") or "/",
        "user": dict(base.get("user") or {"uid": 0, "gid": 0}),
        "capabilities": {k: list(v) for k, v in (base.get("capabilities") or {}).items()},
        "noNewPrivileges": bool(base.get("noNewPrivileges")) or no_new_privs,
        "rlimits": list(base.get("rlimits") or []),
    }
    if user:
        uid, _, gid = user.partition(":")
        try:
            spec["user"] = {"uid": int(uid), "gid": int(gid or 0)}
        except ValueError:
            raise InvalidArgument(f"--user {user}: expected UID[:GID] as numbers") from None
    if additional_gids:
        spec["user"]["additionalGids"] = list(additional_gids)
    for cap in caps or []:
        for name in ("bounding", "effective", "permitted", "ambient", "inheritable"):
            spec["capabilities"].setdefault(name, [])
            if cap not in spec["capabilities"][name]:
                spec["capabilities"][name].append(cap)
    return spec


# Devices every container may use whatever its config's device rules say, after them
# (runc's list): mknod of any node, the default nodes and ptys. Not the host's console
# (5:1): a container's /dev/console is a bind of its own pty.
_ALWAYS_ALLOWED = (
    ("c", None, None, "m"), ("b", None, None, "m"),
    ("c", 1, 3, "rwm"), ("c", 1, 5, "rwm"), ("c", 1, 7, "rwm"), ("c", 1, 8, "rwm"),
    ("c", 1, 9, "rwm"), ("c", 5, 0, "rwm"), ("c", 5, 2, "rwm"),
    ("c", 136, None, "rwm"),
)


def device_rules(config: dict[str, Any]) -> dict[str, Any]:
    """The config's resources with the device rules completed: its own rules, then the
    always-allowed devices, then the devices it asks to be created."""
    linux = config.get("linux") or {}
    resources = dict(linux.get("resources") or {})
    rules = list(resources.get("devices") or [])
    rules += [{"allow": True, "type": t, "major": ma, "minor": mi, "access": a}
              for t, ma, mi, a in _ALWAYS_ALLOWED]
    rules += [{"allow": True, "type": d.get("type", "c"), "major": d.get("major"),
               "minor": d.get("minor"), "access": "rwm"}
              for d in linux.get("devices") or [] if d.get("type") in ("c", "b", "u")]
    resources["devices"] = [{k: v for k, v in r.items() if v is not None} for r in rules]
    return resources


def _spawn(cgroup: Cgroup, console_socket: str | None,
           stage1: Callable[[Channel, socket.socket | None, bool], NoReturn],
           stdio: Stdio | None = None) -> tuple[Channel, int]:
    """Fork the first stage of a create or an exec: it gets its end of a new sync
    channel, the connected console socket (if any), whether it already sits in the
    cgroup's v2 directory, and ``stdio`` as its descriptors 0, 1 and 2 (inherited by the
    container's process). Returns our end and its pid."""
    from longboat.oci.sync import Channel

    sock = None
    if console_socket:
        from longboat.oci import console

        sock = console.connect(console_socket)
    try:
        parent, kid = Channel.pair()
        pid, placed = _fork_into(cgroup)
        if pid == 0:
            parent.close()
            for target, fd in enumerate(stdio or ()):
                if fd is not None and fd != target:
                    os.dup2(fd, target)
            stage1(kid, sock, placed)
        kid.close()
    finally:
        if sock is not None:
            sock.close()
    return parent, pid


def _fork_into(cgroup: Cgroup) -> tuple[int, bool]:
    """Fork the first stage, straight into the cgroup's v2 directory when there is one
    (see longboat.linux.clone); (pid, whether it landed there)."""
    target = cgroup.clone_target()
    if target is not None:
        from longboat.linux.clone import fork_into_cgroup

        fd = os.open(target, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        try:
            return fork_into_cgroup(fd), True
        except OSError:
            pass    # an old kernel without clone3: move the child by writing its pid
        finally:
            os.close(fd)
    return os.fork(), False


def _now_rfc3339() -> str:
    seconds, nanoseconds = divmod(time.time_ns(), 1_000_000_000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{nanoseconds:09d}Z"


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, 0)
    except ChildProcessError:
        pass


def _kill_quietly(pid: int) -> None:
    if pid > 0:
        try:
            os.kill(pid, SIGKILL)
        except ProcessLookupError:
            pass


def _write_atomic(path: str, text: str) -> None:
    tmp = f"{path}.{os.getpid()}.tmp"
    with open(tmp, "w") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.rename(tmp, path)


def become_subreaper() -> None:
    from longboat.linux import libc

    libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
