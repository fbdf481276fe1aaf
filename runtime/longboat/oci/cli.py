"""``longboat-runtime``: runc's command line over the runtime library.

Global flags as runc's (``--root``, ``--log``, ``--log-format``, ``--debug``); exit status
0 on success, 1 with a message on stderr (and in ``--log``) on failure; ``run`` and
``exec`` exit with the container process's status.
"""

from __future__ import annotations

import os
import sys

from longboat import __version__
from longboat.errors import InvalidArgument, LongboatError
from longboat.oci.args import Cmd, HelpRequested, Opt, Parsed, parse

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any

    from longboat.oci.container import Runtime


PROG = "longboat-runtime"


GLOBAL = [
    Opt("--root", "directory for container state", value="DIR",
        default="/run/longboat-runtime"),
    Opt("--log", "also write errors to this file", value="FILE"),
    Opt("--log-format", "text or json", value="FORMAT", default="text"),
    Opt("--debug", "show tracebacks of errors"),
    Opt("--systemd-cgroup", "not supported: cgroups are managed through cgroupfs"),
    Opt("--rootless", "accepted for runc compatibility; no effect", value="BOOL"),
]
_BUNDLE = Opt("--bundle,-b", "the bundle directory (default: the current one)", value="DIR",
              default=".")
_PID_FILE = Opt("--pid-file", "write the process's PID to this file", value="FILE")
_CONSOLE = Opt("--console-socket", "send the terminal's master to this unix socket",
               value="PATH")
_PRESERVE = Opt("--preserve-fds", "pass this many extra descriptors (from fd 3)", value="N",
                default=0, kind=int)
_CREATE_OPTS = [_BUNDLE, _PID_FILE, _CONSOLE, _PRESERVE,
                Opt("--no-pivot", "not supported"),
                Opt("--no-new-keyring", "accepted; no effect")]
_FORMAT = Opt("--format,-f", "table or json", value="FORMAT", default="table")
COMMANDS = {
    "spec": Cmd("write a default config.json into a bundle",
                [_BUNDLE, Opt("--rootless", "a config for a user namespace")]),
    "create": Cmd("create a container (its process waits for start)", _CREATE_OPTS, "ID"),
    "start": Cmd("start a created container", [], "ID"),
    "run": Cmd("create and start a container, and wait for it", [
        *_CREATE_OPTS,
        Opt("--detach,-d", "return once the container has started"),
        Opt("--keep", "do not delete the container after it exits")], "ID"),
    "state": Cmd("print a container's state as JSON", [], "ID"),
    "kill": Cmd("send a signal to a container's init (or to all its processes)",
                [Opt("--all,-a", "signal every process of the container")], "ID [SIGNAL]"),
    "delete": Cmd("delete containers and their resources",
                  [Opt("--force,-f", "kill a running container first")], "ID..."),
    "list": Cmd("list containers", [_FORMAT, Opt("--quiet,-q", "only the IDs")]),
    "ps": Cmd("list the processes of a container", [_FORMAT], "ID"),
    "exec": Cmd("run a new process inside a running container", [
        Opt("--process,-p", "a JSON file with an OCI process", value="FILE"),
        Opt("--tty,-t", "allocate a terminal"),
        Opt("--detach,-d", "do not wait for the process"),
        _PID_FILE, _CONSOLE,
        Opt("--env,-e", "set an environment variable", value="KEY=VALUE", repeat=True),
        Opt("--cwd", "working directory", value="DIR"),
        Opt("--user,-u", "UID[:GID]", value="UID[:GID]"),
        Opt("--additional-gids,-g", "a supplementary group", value="GID", repeat=True,
            kind=int),
        Opt("--cap,-c", "add a capability", value="CAP", repeat=True),
        Opt("--no-new-privs", "set no_new_privs"),
        _PRESERVE], "ID", rest=True),
    "pause": Cmd("freeze every process of a container", [], "ID"),
    "resume": Cmd("thaw a paused container", [], "ID"),
    "update": Cmd("change a running container's resource limits", [
        Opt("--resources,-r", "a JSON file of OCI linux.resources ('-': stdin)", value="FILE"),
        Opt("--memory", "memory limit (bytes, or k/m/g)", value="SIZE"),
        Opt("--memory-reservation", "memory soft limit", value="SIZE"),
        Opt("--memory-swap", "memory plus swap limit", value="SIZE"),
        Opt("--cpu-shares", "CPU shares", value="N", kind=int),
        Opt("--cpu-quota", "CFS quota in microseconds", value="N", kind=int),
        Opt("--cpu-period", "CFS period in microseconds", value="N", kind=int),
        Opt("--cpuset-cpus", "CPUs to use, e.g. 0-1", value="LIST"),
        Opt("--cpuset-mems", "memory nodes to use", value="LIST"),
        Opt("--pids-limit", "maximum number of processes", value="N", kind=int),
        Opt("--blkio-weight", "block I/O weight (10-1000)", value="N", kind=int)], "ID"),
    "features": Cmd("print what this runtime supports, as JSON"),
}


def _json() -> Any:
    """json, imported only by the commands that print or read it: json pulls in ``re``,
    a few milliseconds that start and delete need not pay."""
    import json

    return json


def _size(text: str) -> int:
    units = {"k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "b": 1}
    text = text.strip().lower()
    try:
        if text == "-1":
            return -1
        if text[-1] in units:
            return int(float(text[:-1]) * units[text[-1]])
        return int(text)
    except (ValueError, IndexError):
        raise InvalidArgument(f"invalid size {text!r}: use bytes or a k/m/g suffix") from None


def _resources_from_flags(args: Parsed) -> dict[str, Any]:
    source = args.text("resources")
    if source:
        if source == "-":
            data = sys.stdin.read()
        else:
            with open(source) as f:
                data = f.read()
        try:
            loaded: dict[str, Any] = _json().loads(data)
        except ValueError as exc:
            raise InvalidArgument(f"--resources: invalid JSON: {exc}") from None
        return loaded
    res: dict[str, Any] = {}
    memory = {}
    for key, flag in (("limit", "memory"), ("reservation", "memory_reservation"),
                      ("swap", "memory_swap")):
        value = args.text(flag)
        if value:
            memory[key] = _size(value)
    if memory:
        res["memory"] = memory
    cpu: dict[str, Any] = {}
    for key, flag in (("shares", "cpu_shares"), ("quota", "cpu_quota"),
                      ("period", "cpu_period")):
        if args.number(flag) is not None:
            cpu[key] = args.number(flag)
    for key, flag in (("cpus", "cpuset_cpus"), ("mems", "cpuset_mems")):
        if args.text(flag):
            cpu[key] = args.text(flag)
    if cpu:
        res["cpu"] = cpu
    if args.number("pids_limit") is not None:
        res["pids"] = {"limit": args.number("pids_limit")}
    if args.number("blkio_weight") is not None:
        res["blockIO"] = {"weight": args.number("blkio_weight")}
    return res


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join("   ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip()
                     for r in rows)


def _ps_rows(pids: list[int]) -> list[list[str]]:
    rows = [["PID", "PPID", "STAT", "CMD"]]
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat", "rb") as f:
                stat = f.read()
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                cmd = f.read().replace(b"\0", b" ").strip().decode(errors="replace")
        except OSError:
            continue
        fields = stat[stat.rindex(b")") + 2:].split()
        rows.append([str(pid), fields[1].decode(), fields[0].decode(), cmd])
    return rows


def _wait_for(pid: int) -> int:
    """Wait for a grandchild (we are its subreaper), forwarding our signals to it."""
    import signal

    from longboat.linux.proc import exit_code

    forwarded = [signal.SIGINT, signal.SIGTERM, signal.SIGHUP, signal.SIGQUIT,
                 signal.SIGUSR1, signal.SIGUSR2]

    def forward(signum: int, _frame: object) -> None:
        try:
            os.kill(pid, signum)
        except ProcessLookupError:
            pass

    for s in forwarded:
        signal.signal(s, forward)
    while True:
        try:
            waited, status = os.waitpid(-1, 0)
        except ChildProcessError:
            return 255
        if waited == pid:
            return exit_code(status)


def _relay_and_wait(master: int | None, pid: int) -> int:
    if master is not None:
        from longboat.oci import console

        console.relay(master)
        os.close(master)
    return _wait_for(pid)


def run(args: Parsed, root: str) -> int:
    from longboat.oci.container import Runtime, become_subreaper

    rt = Runtime(root)
    c = args.command
    cid = args.args[0] if args.args else ""
    if c == "spec":
        from longboat.oci.spec import default_spec

        path = os.path.join(args.text("bundle") or ".", "config.json")
        if os.path.exists(path):
            raise InvalidArgument(f"{path} already exists; remove it first")
        with open(path, "w") as f:
            _json().dump(default_spec(rootless=args.flag("rootless")), f, indent="\t")
        return 0
    if c == "features":
        from longboat.oci.features import features

        print(_json().dumps(features(), indent=4))
        return 0
    if c in ("create", "run"):
        if args.flag("no_pivot"):
            raise InvalidArgument("--no-pivot is not supported: longboat-runtime always "
                                  "uses pivot_root")
        detach = c == "create" or args.flag("detach")
        if not detach:
            become_subreaper()
        created = rt.create(cid, args.text("bundle") or ".", pid_file=args.text("pid_file"),
                            console_socket=args.text("console_socket"),
                            preserve_fds=args.number("preserve_fds") or 0)
        _warn(created.warnings)
        if c == "create":
            return 0
        try:
            _warn(rt.start(cid))
        except BaseException:
            rt.delete(cid, force=True)
            raise
        if detach:
            return 0
        code = _relay_and_wait(created.pty_master, created.pid)
        if rt.state(cid).get("oomKilled"):
            print(f"{PROG}: container {cid} was killed: out of memory", file=sys.stderr)
        if not args.flag("keep"):
            _warn(rt.delete(cid, force=True))
        return code
    if c == "start":
        _warn(rt.start(cid))
    elif c == "state":
        print(_json().dumps(rt.state(cid), indent=2))
    elif c == "kill":
        rt.kill(cid, args.args[1] if len(args.args) > 1 else "SIGTERM",
                all_processes=args.flag("all"))
    elif c == "delete":
        failed = 0
        for each in args.args:
            try:
                _warn(rt.delete(each, force=args.flag("force")))
            except LongboatError as exc:
                print(f"{PROG}: {exc.message}", file=sys.stderr)
                failed = 1
        return failed
    elif c == "pause":
        rt.pause(cid)
    elif c == "resume":
        rt.resume(cid)
    elif c == "list":
        _list(rt, args)
    elif c == "ps":
        pids = rt.pids(cid)
        if args.text("format") == "json":
            print(_json().dumps(pids))
        else:
            print(_table(_ps_rows(pids)))
    elif c == "update":
        rt.update(cid, _resources_from_flags(args))
    elif c == "exec":
        return _exec(rt, cid, args)
    return 0


def _list(rt: Runtime, args: Parsed) -> None:
    states = rt.containers()
    if args.flag("quiet"):
        for s in states:
            print(s["id"])
    elif args.text("format") == "json":
        print(_json().dumps(states))
    else:
        rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
        rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                  s.get("owner") or "root"] for s in states]
        print(_table(rows))


def _exec(rt: Runtime, cid: str, args: Parsed) -> int:
    from longboat.oci.container import become_subreaper, exec_process

    record = rt.store.load(cid)
    process_file = args.text("process")
    if process_file:
        try:
            with open(process_file) as f:
                spec: dict[str, Any] = _json().load(f)
        except (OSError, ValueError) as exc:
            raise InvalidArgument(f"--process {process_file}: {exc}") from None
        if args.flag("tty"):
            spec["terminal"] = True
    else:
        if not args.rest:
            raise InvalidArgument("exec: give a command to run, or --process FILE")
        spec = exec_process(record.config, args.rest, env=args.many("env"),
                            cwd=args.text("cwd"), user=args.text("user"),
                            tty=args.flag("tty"),
                            additional_gids=[int(g) for g in args.many("additional_gids")],
                            caps=args.many("cap"), no_new_privs=args.flag("no_new_privs"))
    detach = args.flag("detach")
    if not detach:
        become_subreaper()
    executed = rt.exec(cid, spec, console_socket=args.text("console_socket"),
                       pid_file=args.text("pid_file"),
                       preserve_fds=args.number("preserve_fds") or 0)
    if detach:
        return 0
    return _relay_and_wait(executed.pty_master, executed.pid)


def _warn(warnings: list[str]) -> None:
    for w in warnings:
        print(f"{PROG}: warning: {w}", file=sys.stderr)


def _log(path: str | None, fmt: str, message: str) -> None:
    if not path:
        return
    try:
        with open(path, "a") as f:
            if fmt == "json":
                from datetime import UTC, datetime

                f.write(_json().dumps({"level": "error", "msg": message,
                                    "time": datetime.now(UTC).isoformat()}) + "\n")
            else:
                f.write(f"error: {message}\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    try:
        options, args = parse(PROG, GLOBAL, COMMANDS, sys.argv[1:] if argv is None else argv)
    except HelpRequested as exc:
        print(exc.text)
        return 0
    except InvalidArgument as exc:
        print(exc.message, file=sys.stderr)
        return 2
    if args.command == "version":
        print(f"{PROG} version {__version__}\nspec: 1.1.0")
        return 0
    debug = bool(options["debug"])
    log, log_format = options["log"], str(options["log_format"])
    if options["systemd_cgroup"]:
        print(f"{PROG}: --systemd-cgroup is not supported; cgroups are managed via cgroupfs",
              file=sys.stderr)
        return 1
    if debug:
        os.environ["LONGBOAT_DEBUG"] = "1"  # forked stages send tracebacks back
    try:
        return run(args, str(options["root"]))
    except (LongboatError, OSError) as exc:
        if debug:
            raise
        message = exc.message if isinstance(exc, LongboatError) else str(exc)
        print(f"{PROG}: {message}", file=sys.stderr)
        _log(None if log is None else str(log), log_format, message)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
