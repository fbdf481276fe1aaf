"""The ``longboat lab`` commands (wired in longboat.cli.main)."""

from __future__ import annotations

import os
import sys

from longboat.cli.main import CommandError, Context, UsageError
from longboat.errors import LongboatError, NotFound
from longboat.lab import plan, record
from longboat.lab.progress import Progress


def _progress(ctx: Context) -> Progress:
    return Progress(ctx.out, quiet=bool(getattr(ctx.args, "quiet", False)))


def _lab(ctx: Context) -> record.Record:
    try:
        return record.load(ctx.args.name)
    except LongboatError as exc:
        raise CommandError(exc.message + _hint(ctx.args.name)) from None


def _hint(name: str) -> str:
    """What to do about a lab that is not there."""
    if record.names():
        return " ('longboat lab ls' lists the labs)"
    flag = "" if name == plan.DEFAULT_NAME else f" --name {name}"
    return f" ('longboat lab up{flag}' makes it)"


def up(ctx: Context) -> int:
    from longboat.lab.up import up as make

    a = ctx.args
    try:
        rec = make(a.name, a.nodes, a.subnet, _progress(ctx))
    except LongboatError as exc:
        raise CommandError(f"lab up: {exc.message}" + _made_hint(a.name)) from None
    lab = rec.lab
    if not a.quiet:
        ctx.out.write(f"lab {lab.name} is up: {lab.count} node{'s' if lab.count > 1 else ''} "
                      f"on {lab.subnet}\n"
                      f"  inventory:  {lab.inventory_file}\n"
                      f"  ssh config: {lab.ssh_config_file}\n")
    return 0


def _made_hint(name: str) -> str:
    """After a failed ``up``: how to remove what it made (nothing when it made nothing:
    a refused name, subnet or size)."""
    try:
        failed = record.load(name).status == "failed"
    except LongboatError:
        failed = False
    if not failed:
        return ""
    return (f"\n(what was made stays recorded: 'longboat lab down --name {name}' removes "
            "it, 'longboat lab up' again completes it)")


def down(ctx: Context) -> int:
    from longboat.lab.down import down as remove

    try:
        remove(ctx.args.name, _progress(ctx), purge=ctx.args.purge)
    except LongboatError as exc:
        hint = _hint(ctx.args.name) if isinstance(exc, NotFound) else ""
        raise CommandError(f"lab down: {exc.message}{hint}") from None
    return 0


def ls(ctx: Context) -> int:
    from longboat.cli.output import tabwrite
    from longboat.lab.status import rows

    found = rows()
    if ctx.args.quiet:
        ctx.out.write("".join(r["Name"] + "\n" for r in found))
        return 0
    lines = ["NAME\tNODES\tSUBNET\tBRIDGE\tSTATUS\tINVENTORY"]
    lines += ["\t".join(r[k] for k in ("Name", "Nodes", "Subnet", "Bridge", "Status",
                                       "Inventory")) for r in found]
    ctx.out.write(tabwrite("\n".join(lines) + "\n", 0, 1, 3))
    return 0


def _node(ctx: Context) -> plan.Node:
    try:
        return _lab(ctx).lab.node(ctx.args.node)
    except LongboatError as exc:
        raise CommandError(exc.message) from None


def ssh(ctx: Context) -> int:
    node = _node(ctx)
    lab = _lab(ctx).lab
    command = list(ctx.args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    sys.stdout.flush()
    os.execvp("ssh", ["ssh", "-F", lab.ssh_config_file, node.name, *command])


def exec_(ctx: Context) -> int:
    from longboat.lab.enter import exec_in

    node = _node(ctx)
    command = list(ctx.args.command)
    if command[:1] == ["--"]:
        command = command[1:]
    if not command:
        command = [os.environ.get("SHELL") or "/bin/sh"]
    sys.stdout.flush()
    try:
        exec_in(node, command)
    except FileNotFoundError:
        raise CommandError(f"{command[0]}: command not found on {node.name}") from None
    except LongboatError as exc:
        raise CommandError(exc.message) from None
    raise UsageError("unreachable")
