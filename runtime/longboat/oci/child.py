"""What runs in the processes the runtime forks, between fork and exec.

``create``: stage one joins the cgroup and the namespaces given by path, creates the new
ones (a user namespace first, mapped by the runtime), and forks the container's init (PID 1
of a new PID namespace), then exits. The init builds the root filesystem, waits on the
exec fifo until ``start``, then becomes the container's process by exec.

``exec``: stage one joins the cgroup and every namespace of the running container and
forks the new process, which execs the requested program.

These run in a copy of the runtime; they never return. Errors go back over the sync
channel, which is close-on-exec, so the runtime reads EOF as "exec happened".
"""

from __future__ import annotations

import os
import sys

from longboat.errors import LongboatError
from longboat.linux import caps, libc, namespaces
from longboat.oci import process
from longboat.oci.hooks import run_hooks
from longboat.oci.rootfs import RootfsBuilder
from longboat.oci.state import FIFO
from longboat.oci.sync import Channel

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    import socket
    from typing import Any, NoReturn

    from longboat.cgroups import Cgroup


def _fail(chan: Channel, exc: BaseException) -> NoReturn:
    if isinstance(exc, LongboatError):
        message, status = exc.message, exc.status
    elif isinstance(exc, OSError):
        message, status = str(exc), 500
    else:
        message, status = f"{type(exc).__name__}: {exc}", 500
    if _traceback is not None:
        message += "\n" + "".join(_traceback.format_exception(exc))
    try:
        chan.send("error", message=message, status=status)
    except OSError:
        print(f"longboat-runtime: {message}", file=sys.stderr)
    os._exit(1)


_traceback = None


def _before_entering(terminal: bool) -> None:
    """Load now whatever the child needs later: once inside the container's mount
    namespace, Python can no longer import modules or codecs from the host."""
    global _traceback
    caps.last_cap()
    if terminal:
        from longboat.oci import console  # noqa: F401  (later imports find it loaded)
    if os.environ.get("LONGBOAT_DEBUG"):
        import traceback

        _traceback = traceback


def _namespace_plan(config: dict[str, Any]) -> tuple[dict[str, str], list[str]]:
    joins: dict[str, str] = {}
    new: list[str] = []
    for ns in (config.get("linux") or {}).get("namespaces") or []:
        if ns.get("path"):
            joins[ns["type"]] = ns["path"]
        else:
            new.append(ns["type"])
    return joins, new


def create_stage1(chan: Channel, config: dict[str, Any], bundle: str, rootfs: str,
                  cgroup: Cgroup, state_dir: str, console_sock: socket.socket | None,
                  preserve_fds: int, placed: bool) -> NoReturn:
    try:
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        _before_entering(bool(config["process"].get("terminal")))
        cgroup.add_self(v2_done=placed)
        joins, new = _namespace_plan(config)
        opened = namespaces.open_all(joins)
        state_dir_fd = os.open(state_dir, libc.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        fifo_fd = os.open(FIFO, libc.O_PATH | os.O_CLOEXEC, dir_fd=state_dir_fd)
        if "user" in new:
            # The init opens the fifo as the user namespace's root: make that its owner
            # (as runc does); the state directory stays closed to it (see _open_fifo).
            os.chown(FIFO, *_host_ids_of_root(config), dir_fd=state_dir_fd)
        if opened and opened[0][0] == "user":
            namespaces.join(opened[:1])
            opened = opened[1:]
        in_userns = "user" in new or "user" in joins
        if "user" in new:
            libc.unshare(libc.CLONE_NEWUSER)
            chan.send("userns", pid=os.getpid())
            chan.expect("ok")
        if in_userns:
            os.setresgid(0, 0, 0)
            os.setresuid(0, 0, 0)
        namespaces.join(opened)
        libc.unshare(namespaces.flags_for([k for k in new if k != "user"]))
        pid = os.fork()
        if pid == 0:
            container_init(chan, config, bundle, rootfs, cgroup.path, (state_dir_fd, fifo_fd),
                           console_sock, in_userns=in_userns,
                           cgroupns="cgroup" in new, preserve_fds=preserve_fds)
        chan.send("pid", pid=pid)
    except BaseException as exc:
        _fail(chan, exc)
    os._exit(0)


def container_init(chan: Channel, config: dict[str, Any], bundle: str, rootfs: str,
                   cgroup_path: str, fifo_fds: tuple[int, int],
                   console_sock: socket.socket | None,
                   *, in_userns: bool, cgroupns: bool, preserve_fds: int) -> NoReturn:
    spec = config["process"]
    created = False
    try:
        os.setsid()
        os.umask(0)
        builder = RootfsBuilder(config, bundle, rootfs, cgroup_path, in_userns=in_userns,
                                cgroupns=cgroupns)
        builder.prepare()
        if "network" in _namespace_plan(config)[1]:
            from longboat.linux.namespaces import loopback_up

            loopback_up()
        chan.send("hooks")
        state = chan.expect("ok")[0]["state"]
        run_hooks(config, "createContainer", state)
        builder.pivot()
        pty = None
        if spec.get("terminal"):
            from longboat.oci import console

            pty = console.open_pty(spec.get("consoleSize"))
            builder.console(pty[2])
        # Sysctls before the read-only and masked paths (runc's order): the default
        # readonlyPaths include /proc/sys, which would refuse every sysctl afterwards.
        _identity_and_sysctls(config)
        builder.finish()
        exe = process.find_executable(spec)
        process.set_rlimits(spec)
        process.set_oom_score_adj(spec)
        if pty is not None:
            from longboat.oci import console

            master, slave, name = pty
            if console_sock is not None:
                console.send_master(console_sock, master, name)
            else:
                chan.send("pty", fds=[master])
            os.close(master)
            console.become_stdio(slave)
        if console_sock is not None:
            console_sock.close()
        chan.send("created")
        created = True
        chan.close()
        # Blocks until `start` opens the fifo for reading. The byte says the
        # startContainer hooks ran; the fifo closing at exec (close-on-exec) tells `start`
        # that the process runs, so that it can run the poststart hooks.
        fifo = _open_fifo(*fifo_fds)
        for fd in fifo_fds:
            os.close(fd)
        run_hooks(config, "startContainer", state)
        env = process.environment(spec)
        process.finalize(spec, in_userns=in_userns, preserve_fds=preserve_fds)
        os.write(fifo, b"0")
        process.execute(exe, spec, env)
    except BaseException as exc:
        if created:
            print(f"longboat-runtime: {exc}", file=sys.stderr)
            os._exit(127)
        _fail(chan, exc)
    os._exit(127)


def _host_ids_of_root(config: dict[str, Any]) -> tuple[int, int]:
    """The host uid and gid that a new user namespace maps its root to."""
    linux = config.get("linux") or {}
    ids = []
    for key in ("uidMappings", "gidMappings"):
        for m in linux.get(key) or []:
            if m["containerID"] <= 0 < m["containerID"] + m["size"]:
                ids.append(m["hostID"] - m["containerID"])
                break
        else:
            from longboat.errors import InvalidArgument

            raise InvalidArgument(f"config.json: linux.{key}: container ID 0 is not mapped")
    return ids[0], ids[1]


def _open_fifo(state_dir_fd: int, fifo_fd: int) -> int:
    """The exec fifo, opened for writing (this blocks until ``start``).

    Reopened through /proc/self/fd, as runc does: a user namespace's root may not search
    the root-only state directory, but following the descriptor's magic link checks only
    the fifo itself. The result must be that fifo: without a procfs of its own, the
    container's image decides what /proc/self/fd holds. Failing that, by name."""
    try:
        fifo = os.open(f"/proc/self/fd/{fifo_fd}", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return os.open(FIFO, os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_dir_fd)
    got, want = os.fstat(fifo), os.fstat(fifo_fd)
    if (got.st_dev, got.st_ino) == (want.st_dev, want.st_ino):
        return fifo
    os.close(fifo)
    return os.open(FIFO, os.O_WRONLY | os.O_CLOEXEC, dir_fd=state_dir_fd)


def _identity_and_sysctls(config: dict[str, Any]) -> None:
    if config.get("hostname"):
        libc.sethostname(config["hostname"])
    if config.get("domainname"):
        libc.setdomainname(config["domainname"])
    for key, value in ((config.get("linux") or {}).get("sysctl") or {}).items():
        path = "/proc/sys/" + key.replace(".", "/")
        try:
            with open(path, "w") as f:
                f.write(value)
        except OSError as exc:
            from longboat.errors import InvalidArgument

            raise InvalidArgument(
                f"config.json: linux.sysctl.{key}: cannot set {value!r}: {exc.strerror}") from None


def exec_stage1(chan: Channel, record_pid: int, kinds: list[str], cgroup: Cgroup,
                spec: dict[str, Any], console_sock: socket.socket | None,
                preserve_fds: int, placed: bool) -> NoReturn:
    try:
        libc.prctl(libc.PR_SET_DUMPABLE, 0)
        _before_entering(bool(spec.get("terminal")))
        cgroup.add_self(v2_done=placed)
        paths = {k: namespaces.proc_path(record_pid, k) for k in kinds
                 if not namespaces.same_as_ours(record_pid, k)}
        opened = namespaces.open_all(paths)
        namespaces.join(opened)
        in_userns = "user" in paths
        pid = os.fork()
        if pid == 0:
            _exec_child(chan, spec, console_sock, in_userns, preserve_fds)
        chan.send("pid", pid=pid)
    except BaseException as exc:
        _fail(chan, exc)
    os._exit(0)


def _exec_child(chan: Channel, spec: dict[str, Any], console_sock: socket.socket | None,
                in_userns: bool, preserve_fds: int) -> NoReturn:
    try:
        if spec.get("terminal"):
            from longboat.oci import console

            os.setsid()
            master, slave, name = console.open_pty(spec.get("consoleSize"))
            if console_sock is not None:
                console.send_master(console_sock, master, name)
                console_sock.close()
            else:
                chan.send("pty", fds=[master])
            os.close(master)
            console.become_stdio(slave)
        exe = process.find_executable(spec)
        process.set_rlimits(spec)
        process.set_oom_score_adj(spec)
        process.finalize(spec, in_userns=in_userns, preserve_fds=preserve_fds)
        env = process.environment(spec)
        process.execute(exe, spec, env)
    except BaseException as exc:
        _fail(chan, exc)
    os._exit(127)
