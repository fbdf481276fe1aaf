"""Engine supervision without systemd: ``longboat system service start|stop|status|restart``.

``start`` launches a supervisor (``python -m longboat.engine.supervise run``) that
detaches (fork, setsid), writes its pidfile and runs longboatd with the given flags,
its output appended to the log file. When longboatd dies the supervisor starts it again
after a back-off (0.5 s doubling to 30 s; back to 0.5 s once a run lasted 10 s). SIGTERM
to the supervisor (what ``stop`` sends) stops longboatd with SIGTERM and waits for it;
containers live on (live restore). If the supervisor itself is killed, longboatd gets
SIGTERM (parent-death signal) rather than running on unsupervised. SIGHUP restarts
longboatd at once. The supervisor's state (pids, command, restarts) is
``<pidfile minus .pid>.json``. docs/lab.md describes it for users and roles.
"""

from __future__ import annotations

import argparse
import contextlib
import fcntl
import json
import os
import select
import shutil
import signal
import socket
import subprocess
import sys
import time

from longboat.errors import InvalidArgument, SystemFault

DEFAULT_PIDFILE = "/run/longboat/supervise.pid"
DEFAULT_LOG = "/var/log/longboat/longboatd.log"
BACKOFF_FIRST = 0.5
BACKOFF_MAX = 30.0
STABLE_AFTER = 10.0          # a run this long resets the back-off
MARK = "longboat.engine.supervise"


def state_file(pidfile: str) -> str:
    base = pidfile[:-4] if pidfile.endswith(".pid") else pidfile
    return base + ".json"


def daemon_command(daemon_args: list[str]) -> list[str]:
    """How to run longboatd: the script beside this Python, else on PATH, else -c."""
    beside = os.path.join(os.path.dirname(sys.executable), "longboatd")
    if os.access(beside, os.X_OK):
        return [beside, *daemon_args]
    found = shutil.which("longboatd")
    if found:
        return [found, *daemon_args]
    return [sys.executable, "-c", "import sys; from longboat.engine.daemon import main; "
                                  "sys.exit(main())", *daemon_args]


def recorded_args(state: dict[str, object]) -> list[str]:
    """The longboatd flags of a supervisor's recorded command (for ``restart``)."""
    command = state.get("Command")
    if not isinstance(command, list):
        return []
    args = [str(c) for c in command[1:]]
    if args[:1] == ["-c"]:           # [python, -c, code, flags...]
        args = args[2:]
    return args


# -- what the commands do ----------------------------------------------------------------
def running_pid(pidfile: str) -> int | None:
    """The supervisor's pid, when the pidfile names a live supervisor."""
    try:
        with open(pidfile) as f:
            pid = int(f.read().strip() or 0)
    except (FileNotFoundError, ValueError):
        return None
    if pid <= 0:
        return None
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmdline = f.read()
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    if MARK.encode() not in cmdline or stat[stat.rindex(b")") + 2:][:1] == b"Z":
        return None
    return pid


def status(pidfile: str = DEFAULT_PIDFILE) -> dict[str, object] | None:
    """The supervisor's recorded state, or None when it is not running."""
    pid = running_pid(pidfile)
    if pid is None:
        return None
    try:
        with open(state_file(pidfile)) as f:
            data: dict[str, object] = json.load(f)
    except (OSError, ValueError):
        data = {}
    data["Pid"] = pid
    return data


def start(daemon_args: list[str], *, pidfile: str = DEFAULT_PIDFILE,
          log_file: str = DEFAULT_LOG, wait: float = 30.0) -> tuple[int, bool]:
    """Start a supervised longboatd unless one runs; (supervisor pid, started now).
    Returns once the daemon's first listener accepts connections."""
    endpoint = _endpoint(daemon_args)
    os.makedirs(os.path.dirname(pidfile) or ".", mode=0o755, exist_ok=True)
    lock = os.open(pidfile + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
    try:
        fcntl.flock(lock, fcntl.LOCK_EX)
        pid = running_pid(pidfile)
        if pid is not None:
            return pid, False
        with contextlib.suppress(FileNotFoundError):
            os.unlink(pidfile)
        os.makedirs(os.path.dirname(log_file) or ".", mode=0o755, exist_ok=True)
        launcher = subprocess.run(
            [sys.executable, "-m", MARK, "run", "--pidfile", pidfile, "--log-file",
             log_file, "--", *daemon_command(daemon_args)],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
            check=False, timeout=wait)
        if launcher.returncode != 0:
            raise SystemFault("the supervisor did not start: "
                              + launcher.stderr.decode(errors="replace").strip())
        deadline = time.monotonic() + wait
        while (pid := running_pid(pidfile)) is None:
            if time.monotonic() > deadline:
                raise SystemFault(f"the supervisor wrote no pidfile {pidfile}")
            time.sleep(0.02)
    finally:
        os.close(lock)
    _wait_ready(endpoint, pid, pidfile, log_file, deadline)
    return pid, True


def _endpoint(daemon_args: list[str]) -> str:
    from longboat.engine.daemon import parse_args
    from longboat.errors import LongboatError

    try:
        settings, _ = parse_args(daemon_args)
    except SystemExit:
        raise InvalidArgument(f"invalid longboatd flags: {' '.join(daemon_args)}") from None
    except LongboatError:
        raise
    return settings.sockets[0]


def _answers(endpoint: str) -> bool:
    try:
        if endpoint.startswith("unix://"):
            with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
                s.settimeout(1)
                s.connect(endpoint[len("unix://"):])
        else:
            host, _, port = endpoint[len("tcp://"):].rpartition(":")
            socket.create_connection((host.strip("[]") or "127.0.0.1", int(port or 2375)),
                                     timeout=1).close()
        return True
    except OSError:
        return False


def _wait_ready(endpoint: str, pid: int, pidfile: str, log_file: str,
                deadline: float) -> None:
    while not _answers(endpoint):
        if running_pid(pidfile) != pid:
            raise SystemFault(f"the supervisor exited; see {log_file}:\n{_tail(log_file)}")
        if (status(pidfile) or {}).get("Restarts"):
            # its first run died before it answered: a setting, not bad luck; say so
            # rather than leave it restarting
            stop(pidfile)
            raise SystemFault(f"longboatd exited before it answered on {endpoint}; see "
                              f"{log_file}:\n{_tail(log_file)}")
        if time.monotonic() > deadline:
            raise SystemFault(f"longboatd does not answer on {endpoint}; see {log_file}:\n"
                              f"{_tail(log_file)}")
        time.sleep(0.05)


def _tail(path: str, lines: int = 15) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            f.seek(max(0, f.tell() - 8192))
            return "\n".join(f.read().decode(errors="replace").splitlines()[-lines:])
    except OSError:
        return ""


def stop(pidfile: str = DEFAULT_PIDFILE, timeout: float = 60.0) -> int | None:
    """SIGTERM the supervisor and wait until it is gone; its pid, or None if none ran."""
    pid = running_pid(pidfile)
    if pid is None:
        return None
    try:
        pidfd = os.pidfd_open(pid)
    except ProcessLookupError:
        return None
    try:
        os.kill(pid, signal.SIGTERM)
        ready, _, _ = select.select([pidfd], [], [], timeout)
        if not ready:
            raise SystemFault(f"the supervisor (pid {pid}) did not stop within {timeout} s")
    finally:
        os.close(pidfd)
    return pid


# -- the supervisor itself -----------------------------------------------------------------
class Supervisor:
    def __init__(self, command: list[str], pidfile: str, log_file: str) -> None:
        self.command = command
        self.pidfile = pidfile
        self.log_file = log_file
        self.stopping = False
        self.restart_now = False
        self.child: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self.started_at = time.time()

    def note(self, message: str) -> None:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S%z")
        with contextlib.suppress(OSError), open(self.log_file, "a") as f:
            f.write(f"{stamp} supervisor[{os.getpid()}]: {message}\n")

    def save(self) -> None:
        data = {"Pid": os.getpid(), "DaemonPid": self.child.pid if self.child else 0,
                "Command": self.command, "Restarts": self.restarts,
                "StartedAt": self.started_at, "LogFile": self.log_file}
        tmp = state_file(self.pidfile) + ".tmp"
        with open(tmp, "w") as f:
            json.dump(data, f)
        os.rename(tmp, state_file(self.pidfile))

    def _signal(self, signum: int, _frame: object) -> None:
        if signum == signal.SIGHUP:
            self.restart_now = True
        else:
            self.stopping = True
        if self.child is not None and self.child.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                self.child.send_signal(signal.SIGTERM)

    def spawn(self) -> None:
        with open(self.log_file, "ab") as log:
            self.child = subprocess.Popen(
                self.command, stdin=subprocess.DEVNULL, stdout=log, stderr=log,
                preexec_fn=_die_with_parent)
        self.save()

    def run(self) -> int:
        for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(sig, self._signal)
        self.note(f"starting {' '.join(self.command)}")
        backoff = BACKOFF_FIRST
        try:
            while True:
                began = time.monotonic()
                self.spawn()
                assert self.child is not None
                if self.stopping:      # asked to stop before the child was there
                    self.child.send_signal(signal.SIGTERM)
                code = self.child.wait()
                if self.stopping:
                    self.note(f"longboatd stopped (status {code})")
                    return 0
                if self.restart_now:
                    self.restart_now = False
                    self.note("restarting longboatd (SIGHUP)")
                    continue
                if time.monotonic() - began >= STABLE_AFTER:
                    backoff = BACKOFF_FIRST
                self.note(f"longboatd exited with status {code}; starting it again in "
                          f"{backoff:g} s")
                self.restarts += 1
                if not self._sleep(backoff):
                    return 0
                backoff = min(backoff * 2, BACKOFF_MAX)
        finally:
            for path in (self.pidfile, state_file(self.pidfile)):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(path)

    def _sleep(self, seconds: float) -> bool:
        """Sleep, unless asked to stop meanwhile (False then)."""
        end = time.monotonic() + seconds
        while not self.stopping and not self.restart_now and time.monotonic() < end:
            time.sleep(min(0.1, end - time.monotonic()))
        self.restart_now = False
        return not self.stopping


def _die_with_parent() -> None:
    from longboat.linux import libc

    libc.prctl(libc.PR_SET_PDEATHSIG, signal.SIGTERM)


def _detach() -> None:
    """Become a daemon: the launcher's child in a session of its own, stdio on
    /dev/null, cwd /. The launcher exits as soon as the child is forked."""
    if os.fork() > 0:
        os._exit(0)
    os.setsid()
    null = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(null, fd)
    os.close(null)
    os.chdir("/")
    os.umask(0o022)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog=f"python -m {MARK}")
    sub = p.add_subparsers(dest="action", required=True)
    run = sub.add_parser("run", help="supervise COMMAND (detaches first)")
    run.add_argument("--pidfile", default=DEFAULT_PIDFILE)
    run.add_argument("--log-file", default=DEFAULT_LOG)
    run.add_argument("--foreground", action="store_true", help="do not detach")
    run.add_argument("command", nargs=argparse.REMAINDER)
    args = p.parse_args(sys.argv[1:] if argv is None else argv)
    command = [c for c in args.command]
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        p.error("no command to supervise")
    if not args.foreground:
        _detach()
    supervisor = Supervisor(command, args.pidfile, args.log_file)
    with open(args.pidfile + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(args.pidfile + ".tmp", args.pidfile)
    return supervisor.run()


if __name__ == "__main__":
    sys.exit(main())
