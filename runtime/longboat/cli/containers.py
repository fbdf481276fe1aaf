"""Container commands: ``run``, ``create``, ``start``, ``stop``, ``restart``, ``kill``,
``pause``, ``unpause``, ``wait``, ``rm``, ``rename``, ``attach``, ``logs``, ``exec``,
``top``, ``stats``, ``inspect``, ``ps``, ``events``, ``container prune`` (and their
``container ...`` forms), with docker's behaviour and output. The file commands (cp,
commit, export, diff) are in longboat.cli.container_files."""

from __future__ import annotations

import sys
import time

from longboat.cli.main import CommandError, Context, UsageError
from longboat.cli.output import (
    go_json,
    human_size,
    indented_json,
    is_terminal,
    since,
    truncate_id,
)
from longboat.client.api import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from longboat.cli.template import Context as Row


def _row(kind: str, fields: dict[str, Any]) -> Row:
    # the template engine is loaded only by commands that print tables (not by run)
    from longboat.cli.template import Context

    return Context(kind, fields)


def render(*args: Any, **kwargs: Any) -> str:
    from longboat.cli.template import render as real

    return real(*args, **kwargs)


class ExitStatus(Exception):
    """The command ends with this status after its messages were written."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


def _exit(function: Callable[[Context], int]) -> Callable[[Context], int]:
    def run(ctx: Context) -> int:
        try:
            return function(ctx)
        except ExitStatus as status:
            return status.code
    run.__doc__ = function.__doc__
    return run


# -- helpers ---------------------------------------------------------------------------------
def go_quote(text: str) -> str:
    """Go's ``strconv.Quote``."""
    out = ['"']
    escapes = {"\a": "\\a", "\b": "\\b", "\f": "\\f", "\n": "\\n", "\r": "\\r",
               "\t": "\\t", "\v": "\\v", "\\": "\\\\", '"': '\\"'}
    for char in text:
        if char in escapes:
            out.append(escapes[char])
        elif ord(char) < 0x20 or ord(char) == 0x7F:
            out.append(f"\\x{ord(char):02x}")
        elif not char.isprintable():
            out.append(f"\\u{ord(char):04x}" if ord(char) < 0x10000 else
                       f"\\U{ord(char):08x}")
        else:
            out.append(char)
    out.append('"')
    return "".join(out)


def get_timestamp(value: str, now: float | None = None) -> str:
    """docker's ``timetypes.GetTimestamp``: a Go duration ("10m") becomes now minus it
    in Unix seconds; an RFC 3339 date or time becomes "SECONDS.NANOS"; Unix seconds pass
    as they are."""
    import re
    from datetime import datetime

    reference = time.time() if now is None else now
    duration = _go_duration(value)
    if value != "0" and duration is not None:
        return str(int(reference - duration))
    if re.fullmatch(r"-?\d+(\.\d{1,9})?", value):
        return value
    text = value.replace("z", "Z")
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        if "-" in value:
            raise CommandError(f'parsing time "{value}": not an RFC 3339 date and time'
                               ) from None
        raise CommandError(f'failed to parse value as time or duration: "{value}"'
                           ) from None
    if moment.tzinfo is None:
        moment = moment.astimezone()
    seconds = moment.timestamp()
    whole = int(seconds // 1)
    return f"{whole}.{moment.microsecond * 1000:09d}"


_DURATION_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0,
                   "h": 3600.0}


def _go_duration(text: str) -> float | None:
    """Go's ``time.ParseDuration`` in seconds, or None."""
    import re

    if text in ("0", "+0", "-0"):
        return 0.0
    match = re.fullmatch(r"([-+]?)((?:\d*\.?\d+(?:ns|us|µs|ms|s|m|h))+)", text)
    if not match:
        return None
    total = 0.0
    for number, unit in re.findall(r"(\d*\.?\d+)(ns|us|µs|ms|s|m|h)", match.group(2)):
        total += float(number) * _DURATION_UNITS[unit]
    return -total if match.group(1) == "-" else total


def _parse_filters(items: list[str]) -> dict[str, list[str]]:
    from longboat.cli.images import parse_filters

    return parse_filters(items)


def _each(ctx: Context, names: list[str], action: Callable[[str], Any], *,
          ignore_missing: bool = False, summary: str | None = None) -> int:
    """docker's loop over several containers: each name printed when done, each
    failure written to stderr, exit status 1 when any failed."""
    failed: list[str] = []
    for name in names:
        try:
            action(name)
        except APIError as exc:
            ctx.err.write(f"Error response from daemon: {exc.message}\n")
            ctx.err.flush()
            if not (ignore_missing and exc.not_found):    # rm -f: reported, not failed
                failed.append(name)
            continue
        ctx.out.write(f"{name}\n")
        ctx.out.flush()
    if failed:
        if summary:
            ctx.err.write(f"Error: {summary}: {', '.join(failed)}\n")
        return 1
    return 0


def _binary_out(ctx: Context) -> Any:
    return getattr(ctx.out, "buffer", ctx.out)


# -- create and run --------------------------------------------------------------------------
def _config(ctx: Context, *, detach: bool) -> dict[str, Any]:
    from longboat.cli.run_args import ArgumentError, container_config

    try:
        return container_config(ctx.args, detach=detach)
    except ArgumentError as exc:
        raise UsageError(f"{exc}\nSee '{_prog(ctx)} --help'.") from None


def _prog(ctx: Context) -> str:
    group = "container " if getattr(ctx.args, "subcommand", None) else ""
    return f"longboat {group}{ctx.args.handler.rpartition(':')[2].rstrip('_')}"


def _pull(ctx: Context, image: str) -> None:
    """Pull as docker's run does: progress on stderr."""
    from longboat.cli.images import parse_reference, registry_auth
    from longboat.cli.progress import show_all

    ref = parse_reference(image)
    events = ctx.client().pull(ref.name, ref.digest or ref.tag or "latest",
                               auth=registry_auth(ctx, ref.domain),
                               platform=ctx.args.platform)
    if ctx.args.quiet:
        for _ in events:
            pass
    else:
        show_all(events, ctx.err, is_terminal(ctx.err))


def _create(ctx: Context, config: dict[str, Any]) -> str:
    """Create the container, pulling its image first when ``--pull`` says so; with
    ``--cidfile``, the id goes to that file (refused if it exists), as docker does."""
    from longboat.cli.run_args import ArgumentError
    from longboat.cli.run_flags import CidFile

    try:
        cidfile = CidFile(ctx.args.cidfile)
    except ArgumentError as exc:
        raise _fail_run(ctx, str(exc)) from None
    try:
        cid = _create_container(ctx, config)
        cidfile.write(cid)
    finally:
        cidfile.close()
    return cid


def _create_container(ctx: Context, config: dict[str, Any]) -> str:
    a = ctx.args
    client = ctx.client()
    if a.pull == "always":
        _pull(ctx, a.image)
    try:
        created = client.create_container(config, name=a.name, platform=a.platform)
    except APIError as exc:
        if not (exc.not_found and "No such image" in exc.message and a.pull == "missing"):
            raise
        from longboat.cli.images import parse_reference

        ctx.err.write(f"Unable to find image '{parse_reference(a.image)}' locally\n")
        ctx.err.flush()
        _pull(ctx, a.image)
        created = client.create_container(config, name=a.name, platform=a.platform)
    for warning in created.get("Warnings") or []:
        ctx.err.write(f"WARNING: {warning}\n")
    return str(created["Id"])


def _fail_run(ctx: Context, message: str, code: int = 125) -> ExitStatus:
    ctx.err.write(f"longboat: {message}\n\nRun '{_prog(ctx)} --help' for more "
                  "information\n")
    ctx.err.flush()
    return ExitStatus(code)


@_exit
def create(ctx: Context) -> int:
    config = _config(ctx, detach=False)
    try:
        cid = _create(ctx, config)
    except APIError as exc:
        raise _fail_run(ctx, f"Error response from daemon: {exc.message}") from None
    ctx.out.write(cid + "\n")
    return 0


def _start_error_code(message: str) -> int:
    if any(text in message for text in ("executable file not found", "no such file or "
                                        "directory", "system cannot find the file")):
        return 127
    if "permission denied" in message or "is a directory" in message:
        return 126
    return 125


@_exit
def run(ctx: Context) -> int:
    a = ctx.args
    config = _config(ctx, detach=a.detach)
    stdin_attached = bool(config["AttachStdin"])
    tty = bool(config["Tty"])
    if stdin_attached and tty and not _stdin_is_terminal():
        raise CommandError("the input device is not a TTY")
    client = ctx.client()
    try:
        cid = _create(ctx, config)
    except APIError as exc:
        raise _fail_run(ctx, f"Error response from daemon: {exc.message}") from None
    if a.detach:
        try:
            client.start(cid)
        except APIError as exc:
            raise _fail_run(ctx, f"Error response from daemon: {exc.message}",
                            _start_error_code(exc.message)) from None
        ctx.out.write(cid + "\n")
        return 0
    return _attached_start(ctx, cid, tty=tty, stdin=stdin_attached,
                           stdout=bool(config["AttachStdout"]),
                           stderr=bool(config["AttachStderr"]),
                           condition="removed" if a.rm else "next-exit",
                           sig_proxy=a.sig_proxy == "true", in_run=True)


def _stdin_is_terminal() -> bool:
    from longboat.cli.streams import is_terminal

    return is_terminal(0)


def _attached_start(ctx: Context, cid: str, *, tty: bool, stdin: bool, stdout: bool,
                    stderr: bool, condition: str, sig_proxy: bool, in_run: bool) -> int:
    """docker's order: attach, register the wait, start, stream until the output ends,
    then the exit code."""
    from longboat.cli import streams

    client = ctx.client()
    stream = client.attach(cid, stdin=stdin, stdout=stdout, stderr=stderr)
    try:
        waiter = client.wait_begin(cid, condition)
    except BaseException:
        stream.close()
        raise
    sys.stdout.flush()
    undo: list[Callable[[], None]] = []
    try:
        with streams.RawTerminal(0, enabled=tty and stdin):
            try:
                client.start(cid)
            except APIError as exc:
                stream.close()
                waiter.close()
                if in_run:
                    raise _fail_run(ctx, f"Error response from daemon: {exc.message}",
                                    _start_error_code(exc.message)) from None
                raise
            if tty and streams.is_terminal(1):
                undo.append(streams.follow_size(lambda h, w: client.resize(cid, h, w)))
            if sig_proxy and not tty:
                undo.append(streams.proxy_signals(lambda name: client.kill(cid, name)))
            streams.hold_session(stream, tty=tty, stdin=stdin)
    finally:
        for restore in undo:
            restore()
    status = waiter.result()
    error = status.get("Error")
    if isinstance(error, dict) and error.get("Message"):
        ctx.err.write(f"Error waiting for container: {error['Message']}\n")
        return 125
    return int(status.get("StatusCode") or 0)


# -- lifecycle -------------------------------------------------------------------------------
@_exit
def start(ctx: Context) -> int:
    a = ctx.args
    client = ctx.client()
    if a.attach or a.interactive:
        if len(a.names) > 1:
            raise CommandError("you cannot start and attach multiple containers at once")
        info = client.inspect_container(a.names[0])
        config = info.get("Config") or {}
        tty = bool(config.get("Tty"))
        stdin = bool(a.interactive and config.get("OpenStdin"))
        if stdin and tty and not _stdin_is_terminal():
            raise CommandError("the input device is not a TTY")
        return _attached_start(ctx, str(info["Id"]), tty=tty, stdin=stdin, stdout=True,
                               stderr=True, condition="next-exit", sig_proxy=True,
                               in_run=False)
    return _each(ctx, a.names, client.start, summary="failed to start containers")


def stop(ctx: Context) -> int:
    client = ctx.client()
    return _each(ctx, ctx.args.names, lambda name: client.stop(name, ctx.args.time))


def restart(ctx: Context) -> int:
    client = ctx.client()
    return _each(ctx, ctx.args.names, lambda name: client.restart(name, ctx.args.time))


def kill(ctx: Context) -> int:
    client = ctx.client()
    return _each(ctx, ctx.args.names, lambda name: client.kill(name, ctx.args.signal))


def pause(ctx: Context) -> int:
    return _each(ctx, ctx.args.names, ctx.client().pause)


def unpause(ctx: Context) -> int:
    return _each(ctx, ctx.args.names, ctx.client().unpause)


def rm(ctx: Context) -> int:
    a = ctx.args
    client = ctx.client()

    def remove(name: str) -> None:
        if not name.strip("/"):
            raise APIError(400, "Container name cannot be empty")
        client.remove_container(name, force=a.force, volumes=a.volumes, link=a.link)

    return _each(ctx, a.names, remove, ignore_missing=a.force)


def wait(ctx: Context) -> int:
    client = ctx.client()
    failed = False
    for name in ctx.args.names:
        try:
            status = client.wait(name, "not-running")
        except APIError as exc:
            ctx.err.write(f"Error response from daemon: {exc.message}\n")
            failed = True
            continue
        ctx.out.write(f"{status.get('StatusCode', 0)}\n")
        ctx.out.flush()
    return 1 if failed else 0


def rename(ctx: Context) -> int:
    a = ctx.args
    if not a.new_name.strip():
        raise CommandError("Error: Neither old nor new names may be empty")
    try:
        ctx.client().rename(a.container, a.new_name)
    except APIError as exc:
        raise CommandError(f"Error response from daemon: {exc.message}\n"
                           "Error: failed to rename container named "
                           f"{a.container}") from None
    return 0


# -- attach, logs, exec ----------------------------------------------------------------------
@_exit
def attach(ctx: Context) -> int:
    from longboat.cli import streams

    a = ctx.args
    client = ctx.client()
    info = client.inspect_container(a.container)
    state = info.get("State") or {}
    if not state.get("Running"):
        raise CommandError("You cannot attach to a stopped container, start it first")
    if state.get("Paused"):
        raise CommandError("You cannot attach to a paused container, unpause it first")
    config = info.get("Config") or {}
    tty = bool(config.get("Tty"))
    stdin = bool(config.get("OpenStdin")) and not a.no_stdin
    if stdin and tty and not _stdin_is_terminal():
        raise CommandError("the input device is not a TTY")
    cid = str(info["Id"])
    waiter = client.wait_begin(cid, "not-running")
    stream = client.attach(cid, stdin=stdin, stdout=True, stderr=True,
                           detach_keys=a.detach_keys)
    undo: list[Callable[[], None]] = []
    try:
        with streams.RawTerminal(0, enabled=tty and stdin):
            if tty and streams.is_terminal(1):
                undo.append(streams.follow_size(lambda h, w: client.resize(cid, h, w)))
            if a.sig_proxy == "true" and not tty:
                undo.append(streams.proxy_signals(lambda name: client.kill(cid, name)))
            streams.hold_session(stream, tty=tty, stdin=stdin)
    finally:
        for restore in undo:
            restore()
    return int(waiter.result().get("StatusCode") or 0)


def logs(ctx: Context) -> int:
    from longboat.cli.streams import copy_output

    a = ctx.args
    client = ctx.client()
    info = client.inspect_container(a.container)
    now = time.time()
    chunks = client.logs(str(info["Id"]), follow=a.follow, timestamps=a.timestamps,
                         details=a.details, tail=a.tail,
                         since=get_timestamp(a.since, now) if a.since else None,
                         until=get_timestamp(a.until, now) if a.until else None)
    copy_output(chunks, tty=bool((info.get("Config") or {}).get("Tty")))
    return 0


@_exit
def exec_(ctx: Context) -> int:
    from longboat.cli import streams
    from longboat.cli.run_args import ArgumentError, env_value, read_kv_file

    a = ctx.args
    if not a.command:
        raise UsageError(f"\"{_prog(ctx)}\" requires at least 2 arguments.\n"
                         f"See '{_prog(ctx)} --help'.")
    try:
        env: list[str] = []
        for path in a.env_file:
            env += read_kv_file(path)
        env += [env_value(item) for item in a.env]
    except ArgumentError as exc:
        raise UsageError(str(exc)) from None
    client = ctx.client()
    stdin = a.interactive and not a.detach
    if stdin and a.tty and not _stdin_is_terminal():
        raise CommandError("the input device is not a TTY")
    config = {"User": a.user or "", "Privileged": a.privileged, "Tty": a.tty,
              "AttachStdin": stdin, "AttachStdout": not a.detach,
              "AttachStderr": not a.detach, "Detach": a.detach,
              "DetachKeys": a.detach_keys or "", "Env": env or None,
              "WorkingDir": a.workdir or "", "Cmd": list(a.command)}
    exec_id = str(client.exec_create(a.container, config)["Id"])
    if a.detach:
        client.exec_start(exec_id, tty=a.tty, detach=True)
        return 0
    stream = client.exec_start(exec_id, tty=a.tty)
    assert stream is not None
    undo: list[Callable[[], None]] = []
    try:
        with streams.RawTerminal(0, enabled=a.tty and stdin):
            if a.tty and streams.is_terminal(1):
                undo.append(streams.follow_size(
                    lambda h, w: client.exec_resize(exec_id, h, w)))
            streams.hold_session(stream, tty=a.tty, stdin=stdin)
    finally:
        for restore in undo:
            restore()
    # the exit code may be recorded a moment after the output ended
    deadline = time.monotonic() + 10
    while True:
        info = client.exec_inspect(exec_id)
        if not info.get("Running") or time.monotonic() > deadline:
            return int(info.get("ExitCode") or 0)
        time.sleep(0.02)


# -- top, stats ------------------------------------------------------------------------------
def top(ctx: Context) -> int:
    from longboat.cli.output import tabwrite

    a = ctx.args
    listing = ctx.client().top(a.container, " ".join(a.ps_args) or None)
    lines = ["\t".join(listing.get("Titles") or [])]
    lines += ["\t".join(str(x) for x in row) for row in listing.get("Processes") or []]
    ctx.out.write(tabwrite("\n".join(lines) + "\n", 20, 1, 3))
    return 0


STATS_HEADERS = {"Container": "CONTAINER", "ID": "CONTAINER ID", "Name": "NAME",
                 "CPUPerc": "CPU %", "MemUsage": "MEM USAGE / LIMIT", "MemPerc": "MEM %",
                 "NetIO": "NET I/O", "BlockIO": "BLOCK I/O", "PIDs": "PIDS"}
STATS_TABLE = ("table {{.ID}}\t{{.Name}}\t{{.CPUPerc}}\t{{.MemUsage}}\t{{.MemPerc}}\t"
               "{{.NetIO}}\t{{.BlockIO}}\t{{.PIDs}}")


def stats_row(given: str, sample: dict[str, Any] | None, *, trunc: bool) -> Row:
    """docker's ``stats`` columns from one sample (its previous CPU reading included)."""
    from longboat.cli.output import bytes_size

    if not sample:
        return _row("*formatter.statsContext", {
            "Container": given, "ID": truncate_id(given) if trunc else given,
            "Name": "--", "CPUPerc": "--", "MemUsage": "-- / --", "MemPerc": "--",
            "NetIO": "--", "BlockIO": "--", "PIDs": "--"})
    cpu = sample.get("cpu_stats") or {}
    precpu = sample.get("precpu_stats") or {}
    usage = (cpu.get("cpu_usage") or {}).get("total_usage") or 0
    pre_usage = (precpu.get("cpu_usage") or {}).get("total_usage") or 0
    system = cpu.get("system_cpu_usage") or 0
    pre_system = precpu.get("system_cpu_usage") or 0
    online = cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage")
                                           or []) or 1
    cpu_percent = 0.0
    if system - pre_system > 0 and usage - pre_usage > 0:
        cpu_percent = (usage - pre_usage) / (system - pre_system) * online * 100.0
    memory = sample.get("memory_stats") or {}
    mem_stats = memory.get("stats") or {}
    used = float(memory.get("usage") or 0)
    for key in ("total_inactive_file", "inactive_file"):
        if key in mem_stats and mem_stats[key] < used:
            used -= mem_stats[key]
            break
    limit = float(memory.get("limit") or 0)
    mem_percent = used / limit * 100.0 if limit else 0.0
    rx = tx = 0
    for net in (sample.get("networks") or {}).values():
        rx += int(net.get("rx_bytes") or 0)
        tx += int(net.get("tx_bytes") or 0)
    read = write = 0
    for entry in (sample.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []:
        op = str(entry.get("op") or "").lower()
        if op.startswith("r"):
            read += int(entry.get("value") or 0)
        elif op.startswith("w"):
            write += int(entry.get("value") or 0)
    cid = str(sample.get("id") or given)
    name = str(sample.get("name") or "").lstrip("/")
    pids = (sample.get("pids_stats") or {}).get("current")
    return _row("*formatter.statsContext", {
        "Container": given, "ID": truncate_id(cid) if trunc else cid, "Name": name or "--",
        "CPUPerc": f"{cpu_percent:.2f}%",
        "MemUsage": f"{bytes_size(used)} / {bytes_size(limit)}",
        "MemPerc": f"{mem_percent:.2f}%",
        "NetIO": f"{human_size(rx, 3)} / {human_size(tx, 3)}",
        "BlockIO": f"{human_size(read, 3)} / {human_size(write, 3)}",
        "PIDs": str(pids if pids is not None else 0)})


def stats(ctx: Context) -> int:
    import threading

    a = ctx.args
    client = ctx.client()
    names: list[str] = list(a.names)
    if not names:
        names = [str(c["Id"]) for c in client.containers(all=a.all)]
    fmt = a.format or "table"
    if fmt == "table":
        fmt = STATS_TABLE
    elif fmt == "json":
        fmt = "{{json .}}"
    trunc = not a.no_trunc
    if a.no_stream:
        rows = []
        failed = []
        for name in names:
            try:
                sample = next(iter(client.stats(name, stream=False)), None)
            except APIError as exc:
                ctx.err.write(f"Error response from daemon: {exc.message}\n")
                failed.append(name)
                continue
            rows.append(stats_row(name, sample, trunc=trunc))
        if failed:
            return 1
        ctx.out.write(render(fmt, rows, STATS_HEADERS, "*formatter.statsContext"))
        return 0
    latest: dict[str, dict[str, Any] | None] = dict.fromkeys(names)

    def follow(name: str) -> None:
        try:
            for sample in client.stats(name, stream=True):
                latest[name] = sample
        except APIError:
            latest[name] = None

    for name in names:
        threading.Thread(target=follow, args=(name,), daemon=True).start()
    try:
        while True:
            time.sleep(1)
            rows = [stats_row(n, latest[n], trunc=trunc) for n in names]
            ctx.out.write("\x1b[2J\x1b[H" + render(fmt, rows, STATS_HEADERS,
                                                    "*formatter.statsContext"))
            ctx.out.flush()
    except KeyboardInterrupt:
        return 0


# -- inspect ---------------------------------------------------------------------------------
def _show_inspected(ctx: Context, found: list[dict[str, Any]], fmt: str | None,
                    errors: list[str]) -> None:
    """Print what was found, then every error (a template's first), as docker does."""
    if fmt and fmt != "json":
        from longboat.cli.template import Template, TemplateError

        template = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
        text = ""
        try:
            for item in found:
                text += template.execute(item) + "\n"
        except TemplateError as exc:
            errors.insert(0, f"template parsing error: {exc}")
        ctx.out.write(text or "\n")
    else:
        ctx.out.write(indented_json(found) + "\n")
    if errors:
        raise CommandError("\n".join(errors))


def inspect_each(ctx: Context, lookup: Callable[[str], dict[str, Any]],
                 missing: Callable[[str, APIError], str] | None = None) -> int:
    """The ``inspect`` of every kind of object: each name of ``ctx.args.names`` looked up,
    the found ones shown (``--format``), then one error line per missing one (docker's
    order), exit status 1 if any was missing."""
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in ctx.args.names:
        try:
            found.append(lookup(name))
        except APIError as exc:
            if not exc.not_found:
                raise
            errors.append(missing(name, exc) if missing is not None
                          else f"Error response from daemon: {exc.message}")
    _show_inspected(ctx, found, ctx.args.format, errors)
    return 0


def inspect(ctx: Context) -> int:
    """``container inspect``."""
    client = ctx.client()
    return inspect_each(ctx, lambda name: client.inspect_container(name, size=ctx.args.size))


def inspect_any(ctx: Context) -> int:
    """Top-level ``inspect``: a container, else an image (docker's order); ``--type``
    picks one."""
    a = ctx.args
    client = ctx.client()
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    lookups: list[Callable[[str], dict[str, Any]]] = []
    if a.type in (None, "container"):
        lookups.append(lambda name: client.inspect_container(name, size=a.size))
    if a.type in (None, "image"):
        lookups.append(client.inspect_image)
    for name in a.names:
        for lookup in lookups:
            try:
                found.append(lookup(name))
                break
            except APIError as exc:
                if not exc.not_found:
                    raise
        else:
            if a.type:
                errors.append(f"Error response from daemon: No such {a.type}: {name}")
            else:
                errors.append(f"Error: No such object: {name}")
    _show_inspected(ctx, found, a.format, errors)
    return 0


# -- ps --------------------------------------------------------------------------------------
PS_HEADERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
              "CreatedAt": "CREATED AT", "RunningFor": "CREATED", "Ports": "PORTS",
              "State": "STATE", "Status": "STATUS", "Size": "SIZE", "Names": "NAMES",
              "Labels": "LABELS", "Mounts": "MOUNTS", "LocalVolumes": "LOCAL VOLUMES",
              "Networks": "NETWORKS", "Platform": "PLATFORM"}
PS_TABLE = ("table {{.ID}}\t{{.Image}}\t{{.Command}}\t{{.RunningFor}}\t{{.Status}}\t"
            "{{.Ports}}\t{{.Names}}")


def _ports(ports: list[dict[str, Any]]) -> str:
    from longboat.cli.networks import displayable_ports

    return displayable_ports(ports)


def container_rows(containers: list[dict[str, Any]], *, trunc: bool) -> list[Row]:
    from longboat.cli.output import ellipsis, go_time_string

    rows = []
    for c in containers:
        cid = str(c.get("Id") or "")
        names = [n[1:] if n.startswith("/") else n for n in c.get("Names") or []]
        if trunc:
            names = [n for n in names if "/" not in n][:1] or names[:1]
        image = str(c.get("Image") or "") or "<no image>"
        if trunc and image.startswith("sha256:"):
            image = truncate_id(image)
        command = str(c.get("Command") or "")
        created = float(c.get("Created") or 0)
        size_rw = int(c.get("SizeRw") or 0)
        size_root = int(c.get("SizeRootFs") or 0)
        size = human_size(size_rw, 3)
        if size_root > 0:
            size += f" (virtual {human_size(size_root, 3)})"
        labels = c.get("Labels") or {}
        mounts = c.get("Mounts") or []
        networks = ((c.get("NetworkSettings") or {}).get("Networks") or {})
        rows.append(_row("*formatter.ContainerContext", {
            "Command": go_quote(ellipsis(command, 20) if trunc else command),
            "CreatedAt": go_time_string(created),
            "ID": truncate_id(cid) if trunc else cid,
            "Image": image,
            "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
            "LocalVolumes": str(sum(1 for m in mounts if m.get("Type") == "volume")),
            "Mounts": ",".join(str(m.get("Name") or m.get("Source") or "")
                               for m in mounts),
            "Names": ",".join(names),
            "Networks": ",".join(sorted(networks)),
            "Platform": None,
            "Ports": _ports(c.get("Ports") or []),
            "RunningFor": since(created),
            "Size": size,
            "State": str(c.get("State") or ""),
            "Status": str(c.get("Status") or ""),
        }))
    return rows


def ps(ctx: Context) -> int:
    a = ctx.args
    last = 1 if a.latest and a.last == -1 else a.last
    fmt = a.format or ""
    size = a.size or "{{.Size}}" in fmt or (fmt.startswith("table") and a.size)
    containers = ctx.client().containers(all=a.all or last > 0, limit=last if last > 0
                                         else None, size=bool(size),
                                         filters=_parse_filters(a.filter))
    if fmt in ("", "table"):
        fmt = "{{.ID}}" if a.quiet else PS_TABLE + ("\t{{.Size}}" if a.size else "")
    elif fmt == "json":
        fmt = "{{json .}}"
    ctx.out.write(render(fmt, container_rows(containers, trunc=not a.no_trunc),
                         PS_HEADERS, "*formatter.ContainerContext"))
    return 0


# -- events ----------------------------------------------------------------------------------
def event_line(event: dict[str, Any]) -> str:
    """docker's default event line: "TIME TYPE ACTION ID (attr=value, ...)"."""
    from datetime import UTC, datetime

    nanos = int(event.get("timeNano") or 0) or int(event.get("time") or 0) * 10**9
    moment = datetime.fromtimestamp(nanos // 10**9, UTC).astimezone()
    stamp = moment.strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos % 10**9:09d}"
    zone = moment.strftime("%z")
    stamp += "Z" if zone == "+0000" else f"{zone[:3]}:{zone[3:]}"
    actor = event.get("Actor") or {}
    line = f"{stamp} {event.get('Type', '')} {event.get('Action', '')} {actor.get('ID', '')}"
    attributes = actor.get("Attributes") or {}
    if attributes:
        line += " (" + ", ".join(f"{k}={attributes[k]}" for k in sorted(attributes)) + ")"
    return line + "\n"


def _event_json(event: dict[str, Any]) -> str:
    """``{{json .}}`` of an event: Go's field order, empty legacy fields left out."""
    ordered: dict[str, Any] = {}
    for key in ("status", "id", "from"):
        if event.get(key):
            ordered[key] = event[key]
    for key in ("Type", "Action", "Actor", "scope", "time", "timeNano"):
        if key in event:
            ordered[key] = event[key]
    actor = ordered.get("Actor")
    if isinstance(actor, dict) and isinstance(actor.get("Attributes"), dict):
        # Go marshals a map with its keys sorted
        ordered["Actor"] = dict(actor, Attributes=dict(sorted(actor["Attributes"].items())))
    return go_json(ordered)


def events(ctx: Context) -> int:
    from longboat.cli.template import Template

    a = ctx.args
    now = time.time()
    stream = ctx.client().events(since=get_timestamp(a.since, now) if a.since else None,
                                 until=get_timestamp(a.until, now) if a.until else None,
                                 filters=_parse_filters(a.filter))
    fmt = a.format or ""
    template = None
    if fmt and fmt not in ("json", "{{json .}}"):
        template = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
    try:
        for event in stream:
            if not fmt:
                ctx.out.write(event_line(event))
            elif template is None:
                ctx.out.write(_event_json(event) + "\n")
            else:
                fields = {"Status": event.get("status", ""), "ID": event.get("id", ""),
                          "From": event.get("from", ""), "Type": event.get("Type", ""),
                          "Action": event.get("Action", ""),
                          "Actor": event.get("Actor") or {},
                          "Scope": event.get("scope", ""), "Time": event.get("time", 0),
                          "TimeNano": event.get("timeNano", 0)}
                ctx.out.write(template.execute(fields) + "\n")
            ctx.out.flush()
    except KeyboardInterrupt:
        return 0
    return 0


# -- prune -----------------------------------------------------------------------------------
def prune(ctx: Context) -> int:
    from longboat.cli.images import confirm

    a = ctx.args
    if not a.force and not confirm(ctx, "WARNING! This will remove all stopped containers.\n"
                                        "Are you sure you want to continue?"):
        return 0
    report = ctx.client().prune_containers(filters=_parse_filters(a.filter))
    deleted = report.get("ContainersDeleted") or []
    if deleted:
        ctx.out.write("Deleted Containers:\n" + "".join(f"{c}\n" for c in deleted) + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}"
                  "\n")
    return 0


__all__ = ["attach", "create", "events", "exec_",
           "inspect", "inspect_any", "kill", "logs", "pause", "prune", "ps", "rename",
           "restart", "rm", "run", "start", "stats", "stop", "top", "unpause", "wait"]
