"""``longboat-runtime``: runc's command line over the runtime library.

Global flags as runc's (``--root``, ``--log``, ``--log-format``, ``--debug``); exit status
0 on success, 1 with a message on stderr (and in ``--log``) on failure; ``run`` and
``exec`` exit with the container process's status.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys

from longboat import __version__
from longboat.errors import InvalidArgument, LongboatError

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any


PROG = "longboat-runtime"


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog=PROG, description="Run containers from OCI bundles (a runc-compatible CLI).")
    p.add_argument("--version", action="version",
                   version=f"{PROG} version {__version__}\nspec: 1.1.0")
    p.add_argument("--root", default="/run/longboat-runtime",
                   help="directory for container state (default: %(default)s)")
    p.add_argument("--log", help="also write errors to this file")
    p.add_argument("--log-format", choices=["text", "json"], default="text")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    p.add_argument("--systemd-cgroup", action="store_true",
                   help="not supported: cgroups are managed through cgroupfs")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def cmd(name: str, help_text: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=help_text, description=help_text)

    s = cmd("spec", "write a default config.json into a bundle")
    s.add_argument("--bundle", "-b", default=".")
    s.add_argument("--rootless", action="store_true")

    for name, text in (("create", "create a container (its process waits for start)"),
                       ("run", "create and start a container, and wait for it")):
        s = cmd(name, text)
        s.add_argument("--bundle", "-b", default=".")
        s.add_argument("--pid-file")
        s.add_argument("--console-socket")
        s.add_argument("--preserve-fds", type=int, default=0)
        s.add_argument("--no-pivot", action="store_true", help="not supported")
        s.add_argument("--no-new-keyring", action="store_true", help="accepted; no effect")
        if name == "run":
            s.add_argument("--detach", "-d", action="store_true")
            s.add_argument("--keep", action="store_true",
                           help="do not delete the container after it exits")
        s.add_argument("id")

    for name, text in (("start", "start a created container"),
                       ("state", "print a container's state as JSON"),
                       ("pause", "freeze every process of a container"),
                       ("resume", "thaw a paused container")):
        cmd(name, text).add_argument("id")

    s = cmd("kill", "send a signal to a container's init (or all its processes)")
    s.add_argument("--all", "-a", action="store_true")
    s.add_argument("id")
    s.add_argument("signal", nargs="?", default="SIGTERM")

    s = cmd("delete", "delete a container and its resources")
    s.add_argument("--force", "-f", action="store_true")
    s.add_argument("ids", nargs="+", metavar="id")

    s = cmd("list", "list containers")
    s.add_argument("--format", "-f", choices=["table", "json"], default="table")
    s.add_argument("--quiet", "-q", action="store_true")

    s = cmd("ps", "list the processes of a container")
    s.add_argument("--format", "-f", choices=["table", "json"], default="table")
    s.add_argument("id")

    s = cmd("exec", "run a new process inside a running container")
    s.add_argument("--process", "-p", help="a JSON file with an OCI process")
    s.add_argument("--tty", "-t", action="store_true")
    s.add_argument("--detach", "-d", action="store_true")
    s.add_argument("--pid-file")
    s.add_argument("--console-socket")
    s.add_argument("--env", "-e", action="append", default=[])
    s.add_argument("--cwd")
    s.add_argument("--user", "-u", help="UID[:GID]")
    s.add_argument("--additional-gids", "-g", action="append", type=int, default=[])
    s.add_argument("--cap", "-c", action="append", default=[])
    s.add_argument("--no-new-privs", action="store_true")
    s.add_argument("--preserve-fds", type=int, default=0)
    s.add_argument("id")
    s.add_argument("command", nargs=argparse.REMAINDER)

    s = cmd("update", "change a running container's resource limits")
    s.add_argument("--resources", "-r", help="a JSON file of OCI linux.resources ('-': stdin)")
    for flag in ("--memory", "--memory-reservation", "--memory-swap"):
        s.add_argument(flag, help="bytes, or with a k/m/g suffix")
    s.add_argument("--cpu-shares", type=int)
    s.add_argument("--cpu-quota", type=int)
    s.add_argument("--cpu-period", type=int)
    s.add_argument("--cpuset-cpus")
    s.add_argument("--cpuset-mems")
    s.add_argument("--pids-limit", type=int)
    s.add_argument("--blkio-weight", type=int)
    s.add_argument("id")

    cmd("features", "print what this runtime supports, as JSON")
    return p


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


def _resources_from_flags(args: argparse.Namespace) -> dict[str, Any]:
    if args.resources:
        if args.resources == "-":
            data = sys.stdin.read()
        else:
            with open(args.resources) as f:
                data = f.read()
        try:
            loaded: dict[str, Any] = json.loads(data)
        except json.JSONDecodeError as exc:
            raise InvalidArgument(f"--resources: invalid JSON: {exc}") from None
        return loaded
    res: dict[str, Any] = {}
    memory = {k: _size(v) for k, v in (("limit", args.memory),
                                       ("reservation", args.memory_reservation),
                                       ("swap", args.memory_swap)) if v}
    if memory:
        res["memory"] = memory
    cpu = {k: v for k, v in (("shares", args.cpu_shares), ("quota", args.cpu_quota),
                             ("period", args.cpu_period), ("cpus", args.cpuset_cpus),
                             ("mems", args.cpuset_mems)) if v is not None}
    if cpu:
        res["cpu"] = cpu
    if args.pids_limit is not None:
        res["pids"] = {"limit": args.pids_limit}
    if args.blkio_weight is not None:
        res["blockIO"] = {"weight": args.blkio_weight}
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


def run(args: argparse.Namespace) -> int:
    from longboat.oci.container import Runtime, become_subreaper, exec_process

    rt = Runtime(args.root)
    c = args.command
    if c == "spec":
        from longboat.oci.spec import default_spec

        path = os.path.join(args.bundle, "config.json")
        if os.path.exists(path):
            raise InvalidArgument(f"{path} already exists; remove it first")
        with open(path, "w") as f:
            json.dump(default_spec(rootless=args.rootless), f, indent="\t")
        return 0
    if c == "features":
        from longboat.oci.features import features

        print(json.dumps(features(), indent=4))
        return 0
    if c == "create":
        created = rt.create(args.id, args.bundle, pid_file=args.pid_file,
                            console_socket=args.console_socket, preserve_fds=args.preserve_fds)
        _warn(created.warnings)
        return 0
    if c == "run":
        if not args.detach:
            become_subreaper()
        created = rt.create(args.id, args.bundle, pid_file=args.pid_file,
                            console_socket=args.console_socket, preserve_fds=args.preserve_fds)
        _warn(created.warnings)
        try:
            _warn(rt.start(args.id))
        except BaseException:
            rt.delete(args.id, force=True)
            raise
        if args.detach:
            return 0
        code = _relay_and_wait(created.pty_master, created.pid)
        state = rt.state(args.id)
        if state.get("oomKilled"):
            print(f"{PROG}: container {args.id} was killed: out of memory", file=sys.stderr)
        if not args.keep:
            _warn(rt.delete(args.id, force=True))
        return code
    if c == "start":
        _warn(rt.start(args.id))
        return 0
    if c == "state":
        print(json.dumps(rt.state(args.id), indent=2))
        return 0
    if c == "kill":
        rt.kill(args.id, args.signal, all_processes=args.all)
        return 0
    if c == "delete":
        failed = 0
        for cid in args.ids:
            try:
                _warn(rt.delete(cid, force=args.force))
            except LongboatError as exc:
                print(f"{PROG}: {exc.message}", file=sys.stderr)
                failed = 1
        return failed
    if c == "pause":
        rt.pause(args.id)
        return 0
    if c == "resume":
        rt.resume(args.id)
        return 0
    if c == "list":
        states = rt.list()
        if args.quiet:
            for s in states:
                print(s["id"])
        elif args.format == "json":
            print(json.dumps(states))
        else:
            rows = [["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]]
            rows += [[s["id"], str(s["pid"]), s["status"], s["bundle"], s["created"],
                      s.get("owner") or "root"] for s in states]
            print(_table(rows))
        return 0
    if c == "ps":
        pids = rt.pids(args.id)
        if args.format == "json":
            print(json.dumps(pids))
        else:
            print(_table(_ps_rows(pids)))
        return 0
    if c == "update":
        rt.update(args.id, _resources_from_flags(args))
        return 0
    if c == "exec":
        record = rt.store.load(args.id)
        if args.process:
            try:
                with open(args.process) as f:
                    spec = json.load(f)
            except (OSError, json.JSONDecodeError) as exc:
                raise InvalidArgument(f"--process {args.process}: {exc}") from None
            if args.tty:
                spec["terminal"] = True
        else:
            command = [a for a in args.command if a != "--"] if args.command[:1] == ["--"] \
                else args.command
            if not command:
                raise InvalidArgument("exec: give a command to run, or --process FILE")
            spec = exec_process(record.config, command, env=args.env, cwd=args.cwd,
                                user=args.user, tty=args.tty,
                                additional_gids=args.additional_gids, caps=args.cap,
                                no_new_privs=args.no_new_privs)
        if not args.detach:
            become_subreaper()
        executed = rt.exec(args.id, spec, console_socket=args.console_socket,
                           pid_file=args.pid_file, preserve_fds=args.preserve_fds)
        if args.detach:
            return 0
        return _relay_and_wait(executed.pty_master, executed.pid)
    raise InvalidArgument(f"unknown command {c}")


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

                f.write(json.dumps({"level": "error", "msg": message,
                                    "time": datetime.now(UTC).isoformat()}) + "\n")
            else:
                f.write(f"error: {message}\n")
    except OSError:
        pass


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    if args.systemd_cgroup:
        print(f"{PROG}: --systemd-cgroup is not supported; cgroups are managed via cgroupfs",
              file=sys.stderr)
        return 1
    if args.debug:
        os.environ["LONGBOAT_DEBUG"] = "1"  # forked stages send tracebacks back
    try:
        return run(args)
    except LongboatError as exc:
        if args.debug:
            raise
        print(f"{PROG}: {exc.message}", file=sys.stderr)
        _log(args.log, args.log_format, exc.message)
        return 1
    except OSError as exc:
        if args.debug:
            raise
        print(f"{PROG}: {exc}", file=sys.stderr)
        _log(args.log, args.log_format, str(exc))
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
