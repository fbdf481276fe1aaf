"""longboat-monitor: the per-host supervisor of containers.

One process per host, started by longboatd and outliving it (live restore): it is the
child subreaper of every container, so it receives their exit statuses; it holds their
stdio, writes their output to json-file logs, and relays it to attached clients. It runs
the OCI runtime as a library (a container costs it a fork), single-threaded, so forking
is safe. longboatd talks to it over a unix socket, one JSON object per line:
``{"op": ...}`` -> ``{"ok": true, ...}`` or ``{"ok": false, "error", "status"}``; after a
successful ``attach`` the connection carries the container's raw stdio, and after
``events`` it receives one line per exit.

Why one monitor rather than a shim per container: a Python shim costs about 9 MiB of
resident memory per container; the monitor costs that once, and a few KiB per container
(see docs/engine.md for the measurements).
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import socket
import sys
import time

from longboat.engine.logs import LogWriter, frame
from longboat.engine.runtimes import Runtimes
from longboat.errors import LongboatError
from longboat.linux import libc
from longboat.linux.proc import exit_code, is_alive
from longboat.oci.container import Stdio

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

READ = selectors.EVENT_READ
ATTACH_TIMEOUT = 10.0
ADOPTED_POLL = 1.0     # seconds: how often an adopted container's state is looked at


class Process:
    """A supervised process: a container's init or an exec'd process."""

    def __init__(self, key: str, container: str, pid: int, tty: bool) -> None:
        self.key = key
        self.container = container
        self.pid = pid
        self.tty = tty
        self.stdin: int | None = None            # our write end (or the pty master)
        self.outputs: dict[int, int] = {}        # read fd -> stream (1 stdout, 2 stderr)
        self.log: LogWriter | None = None
        self.attached: list[socket.socket] = []
        self.pending = b""                        # stdin bytes the process has not taken
        self.waiting_stdin = False
        self.stdin_eof = False                    # the client is done: close after pending
        self.feeding: list[socket.socket] = []    # clients paused until it takes them
        self.exit_code: int | None = None
        self.finished_at = 0.0
        self.oom_killed = False
        self.pidfd: int | None = None             # adopted: not our child, watched by pidfd

    def info(self) -> dict[str, Any]:
        return {"key": self.key, "container": self.container, "pid": self.pid,
                "exit_code": self.exit_code, "finished_at": self.finished_at,
                "oom_killed": self.oom_killed, "running": self.exit_code is None}


class Monitor:
    def __init__(self, socket_path: str, runtime_root: str, state_dir: str) -> None:
        self.runtimes = Runtimes(runtime_root)
        self.runtime_of: dict[str, str] = {}     # container id -> runtime name
        self.state_dir = state_dir
        os.makedirs(state_dir, mode=0o700, exist_ok=True)
        self.selector = selectors.DefaultSelector()
        self.processes: dict[str, Process] = {}      # key: container id or exec id
        self.by_pid: dict[int, Process] = {}
        self.subscribers: list[socket.socket] = []
        self.buffers: dict[socket.socket, bytes] = {}
        libc.prctl(libc.PR_SET_CHILD_SUBREAPER, 1)
        wake_r, self.wake_w = socket.socketpair()
        wake_r.setblocking(False)
        self.wake_w.setblocking(False)
        signal.set_wakeup_fd(self.wake_w.fileno(), warn_on_full_buffer=False)
        signal.signal(signal.SIGCHLD, lambda *_: None)
        self.selector.register(wake_r, READ, ("wake", None))
        if os.path.exists(socket_path):
            os.unlink(socket_path)
        self.server = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        old = os.umask(0o177)
        try:
            self.server.bind(socket_path)
        finally:
            os.umask(old)
        self.server.listen(64)
        self.server.setblocking(False)
        self.selector.register(self.server, READ, ("accept", None))

    # -- the loop -----------------------------------------------------------------------
    def run(self) -> None:
        while True:
            adopted = [p for p in self.processes.values() if p.pidfd is not None]
            for key, _ in self.selector.select(ADOPTED_POLL if adopted else None):
                try:
                    self._event(key)
                except Exception:   # one failing stream must not stop the supervision
                    import traceback

                    traceback.print_exc(file=sys.stderr)
            for proc in adopted:
                # the init of a PID namespace that exited lingers (and its pidfd stays
                # quiet) until its processes are reaped, which is now up to another reaper
                if proc.pidfd is not None and not is_alive(proc.pid):
                    self._adopted_exit(proc)

    def _event(self, key: selectors.SelectorKey) -> None:
        kind, data = key.data
        if kind == "accept":
            conn, _ = self.server.accept()
            conn.setblocking(True)
            self.buffers[conn] = b""
            self.selector.register(conn, READ, ("client", None))
        elif kind == "client":
            self._client(key.fileobj)  # type: ignore[arg-type]
        elif kind == "output":
            self._output(key.fd, data)
        elif kind == "input":
            self._input(key.fileobj, data)  # type: ignore[arg-type]
        elif kind == "stdin-ready":
            self._flush_stdin(data)
        elif kind == "adopted-exit":
            self._adopted_exit(data)
        elif kind == "wake":
            try:
                key.fileobj.recv(4096)  # type: ignore[union-attr]
            except BlockingIOError:
                pass
            self._reap()

    def _client(self, conn: socket.socket) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            self._drop(conn)
            return
        buffer = self.buffers.get(conn, b"") + data
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            self.buffers[conn] = buffer
            try:
                request = json.loads(line)
                reply, stream = self.handle(request, conn)
            except LongboatError as exc:
                reply, stream = {"ok": False, "error": exc.message, "status": exc.status}, None
            except (ValueError, KeyError, TypeError) as exc:
                reply, stream = {"ok": False, "error": f"bad request: {exc}", "status": 400}, None
            except OSError as exc:
                reply, stream = {"ok": False, "error": str(exc), "status": 500}, None
            conn.sendall(json.dumps(reply).encode() + b"\n")
            if stream is not None:
                stream()
                return
        self.buffers[conn] = buffer

    def _drop(self, conn: socket.socket) -> None:
        try:
            self.selector.unregister(conn)
        except (KeyError, ValueError):
            pass
        self.buffers.pop(conn, None)
        if conn in self.subscribers:
            self.subscribers.remove(conn)
        for proc in self.processes.values():
            if conn in proc.attached:
                proc.attached.remove(conn)
        conn.close()

    # -- requests -----------------------------------------------------------------------
    def handle(self, request: dict[str, Any], conn: socket.socket
               ) -> tuple[dict[str, Any], Any]:
        op = request["op"]
        if op == "ping":
            return {"ok": True, "pid": os.getpid()}, None
        if op == "shutdown":
            # only when nothing runs: containers would lose their supervisor
            running = [p.key for p in self.processes.values() if p.exit_code is None]
            if running and not request.get("force"):
                from longboat.errors import Conflict

                raise Conflict(f"containers still run under this monitor: {running}")
            return {"ok": True}, lambda: os._exit(0)
        if op == "create":
            return self._create(request), None
        if op == "adopt":
            return self._adopt(request), None
        if op == "start":
            warnings = self._runtime(request["id"]).start(request["id"])
            return {"ok": True, "warnings": warnings}, None
        if op == "kill":
            self._runtime(request["id"]).kill(request["id"], request.get("signal", "SIGTERM"),
                              all_processes=bool(request.get("all")))
            return {"ok": True}, None
        if op == "signal":
            # one supervised process (an exec: a health probe past its timeout), only
            # while it runs: we reap it ourselves, so its pid cannot have been recycled
            target = self._process(request["id"])
            if target.exit_code is None:
                os.kill(target.pid, signal.Signals[str(request.get("signal", "SIGKILL"))])
            return {"ok": True}, None
        if op == "forget":
            # a finished exec nobody will ask about again: its record and exit file go
            done = self.processes.get(request["id"])
            if done is not None and done.key != done.container and done.exit_code is not None:
                self._forget(done.key)
            return {"ok": True}, None
        if op == "delete":
            warnings = self._runtime(request["id"]).delete(request["id"],
                                                           force=bool(request.get("force")))
            for key in [k for k, p in self.processes.items() if p.container == request["id"]]:
                self._forget(key)
            self._unlink_fifos(request["id"])
            self.runtime_of.pop(request["id"], None)
            return {"ok": True, "warnings": warnings}, None
        if op in ("pause", "resume"):
            getattr(self._runtime(request["id"]), op)(request["id"])
            return {"ok": True}, None
        if op == "update":
            self._runtime(request["id"]).update(request["id"], request["resources"])
            return {"ok": True}, None
        if op == "state":
            key = request["id"]
            proc = self.processes.get(key)
            # a new monitor does not know which runtime an earlier one used: the caller says
            runtime = self._runtime(key) if key in self.runtime_of else \
                self.runtimes.get(request.get("runtime"))
            state = runtime.state(key) if runtime.exists(key) else None
            return {"ok": True, "state": state, "process": proc.info() if proc else
                    self._recorded(key)}, None
        if op == "list":
            return {"ok": True, "processes": [p.info() for p in self.processes.values()]}, None
        if op == "exec":
            reply = self._exec(request)
            if request.get("attach"):
                # attached before the select loop can read any of its output
                proc = self.processes[request["exec_id"]]
                return reply, lambda: self._attach(conn, proc, request)
            return reply, None
        if op == "attach":
            proc = self._process(request["id"])
            return {"ok": True, "tty": proc.tty}, lambda: self._attach(conn, proc,
                                                                        request)
        if op == "resize":
            proc = self._process(request["id"])
            if proc.tty and proc.stdin is not None:
                from longboat.oci import console

                console.set_size(proc.stdin, int(request["height"]), int(request["width"]))
            return {"ok": True}, None
        if op == "events":
            return {"ok": True}, lambda: self.subscribers.append(conn)
        raise KeyError(f"unknown op {op!r}")

    def _runtime(self, container_id: str) -> Any:
        return self.runtimes.get(self.runtime_of.get(container_id))

    def _process(self, key: str) -> Process:
        try:
            return self.processes[key]
        except KeyError:
            from longboat.errors import NotFound

            raise NotFound(f"no supervised process {key!r}") from None

    def _pipes(self, want_stdin: bool, tty: bool, fifos: str | None = None
               ) -> tuple[Stdio, list[int], dict[int, int], int | None]:
        """(child's stdio, fds to close after the fork, our read ends, our stdin end).
        With ``fifos`` (a container id), stdout and stderr are named FIFOs in the state
        directory rather than anonymous pipes, so that a new monitor can reopen them if
        this one dies (see _fifo)."""
        if tty:
            return (None, None, None), [], {}, None
        devnull = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        close = [devnull]
        stdin_w = None
        stdin_r = devnull
        if want_stdin:
            stdin_r, stdin_w = os.pipe()
            close.append(stdin_r)
        if fifos is not None:
            out_r, out_w = self._fifo(fifos, "stdout")
            err_r, err_w = self._fifo(fifos, "stderr")
        else:
            out_r, out_w = os.pipe()
            err_r, err_w = os.pipe()
        close += [out_w, err_w]
        return (stdin_r, out_w, err_w), close, {out_r: 1, err_r: 2}, stdin_w

    def _fifo_path(self, container: str, stream: str) -> str:
        return os.path.join(self.state_dir, f"{container}.{stream}")

    def _fifo(self, container: str, stream: str) -> tuple[int, int]:
        """(our read end, the container's end) of a named FIFO. The container's end is
        opened read-write: the FIFO then always has a reader, so a container never gets
        EPIPE/SIGPIPE while no monitor runs (its writes block once the 64 KiB buffer is
        full, until a new monitor reopens the FIFO by its name and drains it)."""
        path = self._fifo_path(container, stream)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        os.mkfifo(path, 0o600)
        read = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        try:
            write = os.open(path, os.O_RDWR | os.O_CLOEXEC)
        except BaseException:
            os.close(read)
            raise
        return read, write

    def _unlink_fifos(self, container: str) -> None:
        for stream in ("stdout", "stderr"):
            try:
                os.unlink(self._fifo_path(container, stream))
            except FileNotFoundError:
                pass

    def _create(self, request: dict[str, Any]) -> dict[str, Any]:
        cid = request["id"]
        tty = bool(request.get("tty"))
        log = request.get("log")
        writer = LogWriter(log["path"], max_size=log.get("max_size"),
                           max_file=int(log.get("max_file") or 1)) if log else None
        stdio, close, outputs, stdin_w = self._pipes(bool(request.get("stdin")), tty, cid)
        try:
            runtime = self.runtimes.get(request.get("runtime"))
            created = runtime.create(cid, request["bundle"], stdio=stdio)
            self.runtime_of[cid] = request.get("runtime") or "longboat"
        except BaseException:
            for fd in [*close, *outputs, *([stdin_w] if stdin_w is not None else [])]:
                os.close(fd)
            if writer is not None:
                writer.close()
            self._unlink_fifos(cid)
            raise
        for fd in close:
            os.close(fd)
        proc = Process(cid, cid, created.pid, tty)
        proc.stdin = created.pty_master if tty else stdin_w
        if created.pty_master is not None:
            outputs = {os.dup(created.pty_master): 1}
        proc.outputs = outputs
        proc.log = writer
        for fd in outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, READ, ("output", proc))
        self._track(proc)
        return {"ok": True, "pid": created.pid, "warnings": created.warnings}

    def _adopt(self, request: dict[str, Any]) -> dict[str, Any]:
        """Take over a container an earlier monitor started and that still runs (that
        monitor died): it is no longer our child, so a pidfd tells us when it exits; its
        output FIFOs are reopened by name and its json-file log is appended to. Nothing
        is done to the container itself. A TTY's master and an open stdin died with the
        earlier monitor."""
        cid = request["id"]
        known = self.processes.get(cid)
        if known is not None:
            return {"ok": True, "process": known.info()}
        pid = int(request["pid"])
        runtime_name = request.get("runtime") or "longboat"
        runtime = self.runtimes.get(runtime_name)
        state = runtime.state(cid) if runtime.exists(cid) else None
        if state is None or state.get("status") not in ("running", "paused") or \
                int(state.get("pid") or 0) != pid:
            return {"ok": True, "process": self._recorded(cid), "state": state}
        try:
            pidfd = os.pidfd_open(pid)
        except ProcessLookupError:
            return {"ok": True, "process": None, "state": None}
        self.runtime_of[cid] = runtime_name
        proc = Process(cid, cid, pid, bool(request.get("tty")))
        proc.pidfd = pidfd
        log = request.get("log")
        proc.log = LogWriter(log["path"], max_size=log.get("max_size"),
                             max_file=int(log.get("max_file") or 1)) if log else None
        for stream, name in ((1, "stdout"), (2, "stderr")):
            try:
                fd = os.open(self._fifo_path(cid, name),
                             os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
            except FileNotFoundError:
                continue    # a TTY, or a container from before FIFOs
            proc.outputs[fd] = stream
            self.selector.register(fd, READ, ("output", proc))
        self.processes[cid] = proc
        self.selector.register(pidfd, READ, ("adopted-exit", proc))
        return {"ok": True, "process": proc.info()}

    def _adopted_exit(self, proc: Process) -> None:
        """An adopted container exited. Its status went to another reaper: 137, as
        containerd reports a task whose shim was lost (unless the runtime can tell)."""
        if proc.pidfd is not None:
            self.selector.unregister(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None
        if self.processes.get(proc.key) is proc:
            self._exited(proc, 137)

    def _exec(self, request: dict[str, Any]) -> dict[str, Any]:
        tty = bool(request["process"].get("terminal"))
        stdio, close, outputs, stdin_w = self._pipes(bool(request.get("stdin")), tty)
        try:
            executed = self._runtime(request["id"]).exec(request["id"], request["process"],
                                                         stdio=stdio)
        except BaseException:
            for fd in [*close, *outputs, *([stdin_w] if stdin_w is not None else [])]:
                os.close(fd)
            raise
        for fd in close:
            os.close(fd)
        proc = Process(request["exec_id"], request["id"], executed.pid, tty)
        proc.stdin = executed.pty_master if tty else stdin_w
        if executed.pty_master is not None:
            outputs = {os.dup(executed.pty_master): 1}
        proc.outputs = outputs
        for fd in outputs:
            os.set_blocking(fd, False)
            self.selector.register(fd, READ, ("output", proc))
        self._track(proc)
        return {"ok": True, "pid": executed.pid}

    def _track(self, proc: Process) -> None:
        self.processes[proc.key] = proc
        self.by_pid[proc.pid] = proc
        self._reap()   # it may have exited already

    def _forget(self, key: str) -> None:
        proc = self.processes.pop(key, None)
        if proc is None:
            return
        for fd in list(proc.outputs):
            self._close_output(proc, fd)
        if proc.stdin is not None:
            if proc.waiting_stdin:
                self.selector.unregister(proc.stdin)
            try:
                os.close(proc.stdin)
            except OSError:
                pass
            proc.stdin = None
        if proc.log is not None:
            proc.log.close()
        if proc.pidfd is not None:
            self.selector.unregister(proc.pidfd)
            os.close(proc.pidfd)
            proc.pidfd = None
        if proc.key == proc.container:
            self._unlink_fifos(proc.key)
        self.by_pid.pop(proc.pid, None)
        for conn in proc.attached:
            self._drop(conn)
        try:
            os.unlink(os.path.join(self.state_dir, f"{key}.exit"))
        except FileNotFoundError:
            pass

    # -- streams ------------------------------------------------------------------------
    def _attach(self, conn: socket.socket, proc: Process, request: dict[str, Any]) -> None:
        """The connection now carries stdio: output to it, its bytes to stdin. A client
        that does not read for ATTACH_TIMEOUT seconds is dropped, so that one stuck
        client cannot stop the monitor."""
        conn.settimeout(ATTACH_TIMEOUT)
        self.selector.unregister(conn)
        self.buffers.pop(conn, None)
        if request.get("stdout", True) or request.get("stderr", True):
            proc.attached.append(conn)
        if request.get("stdin") and proc.stdin is not None:
            self.selector.register(conn, READ, ("input", proc))
        elif not proc.outputs:
            self._drop(conn)

    def _input(self, conn: socket.socket, proc: Process) -> None:
        try:
            data = conn.recv(65536)
        except OSError:
            data = b""
        if not data:
            # the client closed its write side: close the process's stdin (not for a tty,
            # whose stdin is also its output)
            self.selector.unregister(conn)
            if proc.stdin is not None and not proc.tty:
                proc.stdin_eof = True
                self._flush_stdin(proc)     # closes stdin once what is pending went in
            if conn not in proc.attached:
                conn.close()
            return
        if proc.stdin is None:
            return
        # never block on a process that does not read its stdin: keep what it does not
        # take, and stop reading from the client until it has (backpressure)
        proc.pending += data
        self._flush_stdin(proc)

    def _flush_stdin(self, proc: Process) -> None:
        if proc.stdin is None:
            proc.pending = b""
            return
        os.set_blocking(proc.stdin, False)
        while proc.pending:
            try:
                written = os.write(proc.stdin, proc.pending)
            except BlockingIOError:
                break
            except OSError:
                proc.pending = b""     # the process closed its stdin
                break
            proc.pending = proc.pending[written:]
        clients = [c for c in proc.attached + proc.feeding if c.fileno() >= 0]
        if proc.pending:
            if not proc.waiting_stdin:
                proc.waiting_stdin = True
                self.selector.register(proc.stdin, selectors.EVENT_WRITE,
                                       ("stdin-ready", proc))
                for conn in clients:
                    self._pause_input(conn, proc)
        elif proc.waiting_stdin:
            proc.waiting_stdin = False
            self.selector.unregister(proc.stdin)
            for conn in list(proc.feeding):
                self.selector.register(conn, READ, ("input", proc))
            proc.feeding.clear()
        if not proc.pending and proc.stdin_eof and proc.stdin is not None:
            os.close(proc.stdin)
            proc.stdin = None

    def _pause_input(self, conn: socket.socket, proc: Process) -> None:
        try:
            key = self.selector.get_key(conn)
        except KeyError:
            return
        if key.data[0] == "input":
            self.selector.unregister(conn)
            proc.feeding.append(conn)

    def _output(self, fd: int, proc: Process) -> None:
        stream = proc.outputs.get(fd, 1)
        try:
            data = os.read(fd, 65536)
        except BlockingIOError:
            return
        except OSError:
            data = b""   # a pty gives EIO once its last writer is gone
        if not data:
            self._close_output(proc, fd)
            return
        if proc.log is not None:
            try:
                proc.log.write("stdout" if stream == 1 else "stderr", data)
            except (LongboatError, OSError) as exc:
                # a full disk: the process goes on, its log stops (said once)
                print(f"longboat-monitor: {proc.key}: log disabled: {exc}", file=sys.stderr)
                proc.log = None
        chunk = data if proc.tty else frame(stream, data)
        for conn in list(proc.attached):
            try:
                conn.sendall(chunk)
            except OSError:
                self._drop(conn)

    def _close_output(self, proc: Process, fd: int) -> None:
        try:
            self.selector.unregister(fd)
        except (KeyError, ValueError):
            pass
        os.close(fd)
        stream = proc.outputs.pop(fd, 1)
        if proc.log is not None:
            proc.log.flush("stdout" if stream == 1 else "stderr")
        if not proc.outputs:
            self._finish_streams(proc)

    def _finish_streams(self, proc: Process) -> None:
        if proc.exit_code is None:
            return        # the streams close at exit; the exit closes the attachments
        for conn in list(proc.attached):
            try:
                conn.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            self._drop(conn)

    # -- exits --------------------------------------------------------------------------
    def _reap(self) -> None:
        while True:
            try:
                pid, status = os.waitpid(-1, os.WNOHANG)
            except ChildProcessError:
                return
            if pid == 0:
                return
            proc = self.by_pid.pop(pid, None)
            if proc is None:
                continue     # a process inside a container reparented to us
            self._exited(proc, exit_code(status))

    def _exited(self, proc: Process, code: int) -> None:
        proc.exit_code = code
        proc.finished_at = time.time()
        if proc.key == proc.container:
            proc.oom_killed = self._oom_killed(proc.container)
        self._record(proc)
        if not proc.outputs:
            self._finish_streams(proc)
        event = json.dumps({"event": "exit", **proc.info()}).encode() + b"\n"
        for conn in list(self.subscribers):
            try:
                conn.sendall(event)
            except OSError:
                self._drop(conn)

    def _oom_killed(self, container: str) -> bool:
        try:
            return bool(self._runtime(container).state(container).get("oomKilled"))
        except LongboatError:
            return False

    def _record(self, proc: Process) -> None:
        path = os.path.join(self.state_dir, f"{proc.key}.exit")
        with open(path + ".tmp", "w") as f:
            json.dump(proc.info(), f)
            f.flush()
            os.fsync(f.fileno())
        os.rename(path + ".tmp", path)

    def _recorded(self, key: str) -> dict[str, Any] | None:
        try:
            with open(os.path.join(self.state_dir, f"{key}.exit")) as f:
                return dict(json.load(f))
        except (FileNotFoundError, ValueError):
            return None


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 3:
        print("usage: python -m longboat.engine.monitor SOCKET RUNTIME_ROOT STATE_DIR",
              file=sys.stderr)
        return 2
    monitor = Monitor(*args)
    try:
        monitor.run()
    except KeyboardInterrupt:
        return 0
    return 0


if __name__ == "__main__":
    sys.exit(main())
