"""``volume create|ls|inspect|rm|prune``, with docker's flags, output and messages. The
parsers are built here too (small: argparse only); the handlers import the rest when a
command runs."""

from __future__ import annotations

from longboat.cli.main import CommandError, Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from typing import Any

    from longboat.cli.template import Context as Row

H = "longboat.cli.volumes:"
VOLUME_HEADERS = {"Name": "VOLUME NAME", "Driver": "DRIVER", "Scope": "SCOPE",
                  "Mountpoint": "MOUNTPOINT", "Labels": "LABELS", "Links": "LINKS",
                  "Size": "SIZE"}
VOLUME_TABLE = "table {{.Driver}}\t{{.Name}}"
PRUNE_WARNING = ("WARNING! This will remove all local volumes not used by at least one "
                 "container.\nAre you sure you want to continue?")


def add_volume_commands(sub: Any) -> None:
    """``volume`` and its commands."""
    def cmd(parent: Any, name: str, handler: str, text: str,
            aliases: tuple[str, ...] = ()) -> argparse.ArgumentParser:
        parser: argparse.ArgumentParser = parent.add_parser(
            name, help=text, description=text, aliases=list(aliases))
        parser.set_defaults(handler=H + handler if handler else "")
        if aliases:
            parser.aliases = [name, *aliases]         # type: ignore[attr-defined]
        return parser

    group = cmd(sub, "volume", "", "Manage volumes")
    group.set_defaults(usage_of=group)
    from longboat.cli.main import Parser

    volume_sub = group.add_subparsers(dest="subcommand", metavar="COMMAND",
                                      parser_class=Parser)
    p = cmd(volume_sub, "create", "create", "Create a volume")
    p.add_argument("-d", "--driver", default="local",
                   help='specify volume driver name (default "local")')
    p.add_argument("--label", action="append", default=[], help="set metadata for a volume")
    p.add_argument("-o", "--opt", action="append", default=[],
                   help="set driver specific options")
    from argparse import SUPPRESS

    p.add_argument("--name", dest="name_flag", help=SUPPRESS)   # hidden, as docker's
    p.add_argument("name", nargs="?", metavar="VOLUME")
    p = cmd(volume_sub, "ls", "ls", "List volumes", aliases=("list",))
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="provide filter values (e.g. 'dangling=true')")
    p.add_argument("--format", help="pretty-print volumes using a Go template")
    p.add_argument("-q", "--quiet", action="store_true", help="only display volume names")
    p = cmd(volume_sub, "inspect", "inspect", "Display detailed information on one or more "
                                              "volumes")
    p.add_argument("-f", "--format", help="format the output using the given Go template")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = cmd(volume_sub, "rm", "rm", "Remove one or more volumes", aliases=("remove",))
    p.add_argument("-f", "--force", action="store_true",
                   help="force the removal of one or more volumes")
    p.add_argument("names", nargs="+", metavar="VOLUME")
    p = cmd(volume_sub, "prune", "prune", "Remove all unused local volumes")
    p.add_argument("--filter", action="append", default=[],
                   help="provide filter values (e.g. 'label=<label>')")
    p.add_argument("-f", "--force", action="store_true", help="do not prompt for confirmation")


def _filters(items: list[str]) -> dict[str, list[str]]:
    from longboat.cli.images import parse_filters

    return parse_filters(items)


def _encode(filters: dict[str, list[str]]) -> str | None:
    from longboat.client.api import encode_filters

    return encode_filters(filters)


def _missing(name: str, exc: Any) -> str:
    """The docker CLI's text for a refusal (a missing volume included)."""
    return f"Error response from daemon: {exc.message}"


def create(ctx: Context) -> int:
    a = ctx.args
    if a.name and a.name_flag and a.name != a.name_flag:
        raise CommandError("conflicting options: either specify --name or provide "
                           "positional arg, not both")
    options: dict[str, str] = {}
    for item in a.opt:
        key, eq, value = item.partition("=")
        if not eq:
            raise CommandError(f'invalid argument "{item}" for "-o, --opt" flag: invalid '
                               "key-value pair format in driver options")
        options[key] = value
    from longboat.cli.run_args import labels_map

    body = {"Name": a.name or a.name_flag or "", "Driver": a.driver, "DriverOpts": options,
            "Labels": labels_map(a.label)}
    import json

    volume = ctx.client()._json("POST", "/volumes/create", body=json.dumps(body).encode(),
                                headers={"Content-Type": "application/json"})
    ctx.out.write(f"{volume['Name']}\n")
    return 0


def volume_row(volume: dict[str, Any]) -> Row:
    from longboat.cli.template import Context as Row

    labels = volume.get("Labels") or {}
    usage = volume.get("UsageData") or {}
    return Row("*formatter.volumeContext", {
        "Name": volume.get("Name", ""), "Driver": volume.get("Driver", ""),
        "Scope": volume.get("Scope", ""), "Mountpoint": volume.get("Mountpoint", ""),
        "Labels": ",".join(f"{k}={v}" for k, v in sorted(labels.items())),
        "Links": str(usage["RefCount"]) if "RefCount" in usage else "N/A",
        "Size": _size(usage["Size"]) if "Size" in usage else "N/A"})


def _size(size: int) -> str:
    from longboat.cli.output import human_size

    return human_size(size)


def ls(ctx: Context) -> int:
    from longboat.cli.template import render

    a = ctx.args
    answer = ctx.client()._json("GET", "/volumes",
                                params={"filters": _encode(_filters(a.filter))}) or {}
    volumes = sorted(answer.get("Volumes") or [], key=lambda v: str(v.get("Name")))
    fmt = a.format or ""
    if fmt in ("", "table"):
        fmt = "{{.Name}}" if a.quiet else VOLUME_TABLE
    elif fmt == "json":
        fmt = "{{json .}}"
    for warning in answer.get("Warnings") or []:
        ctx.err.write(f"{warning}\n")
    ctx.out.write(render(fmt, [volume_row(v) for v in volumes], VOLUME_HEADERS,
                         "*formatter.volumeContext"))
    return 0


def inspect(ctx: Context) -> int:
    from urllib.parse import quote

    from longboat.cli.containers import inspect_each

    client = ctx.client()
    return inspect_each(ctx, lambda name: dict(client._json(
        "GET", f"/volumes/{quote(name, safe='')}")), _missing)


def rm(ctx: Context) -> int:
    from urllib.parse import quote

    from longboat.client.api import APIError

    a = ctx.args
    client = ctx.client()
    errors: list[str] = []
    for name in a.names:
        try:
            client._status("DELETE", f"/volumes/{quote(name, safe='')}",
                           {"force": "1" if a.force else None})
        except APIError as exc:
            errors.append(_missing(name, exc))
            continue
        ctx.out.write(f"{name}\n")
        ctx.out.flush()
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def prune(ctx: Context) -> int:
    from longboat.cli.images import confirm
    from longboat.cli.output import human_size

    a = ctx.args
    filters = _filters(a.filter)
    if "all" in filters:
        raise CommandError("Error response from daemon: Invalid filter 'all'")
    if not a.force and not confirm(ctx, PRUNE_WARNING):
        return 0
    report = ctx.client()._json("POST", "/volumes/prune", timeout=None,
                                params={"filters": _encode(filters)}) or {}
    deleted = report.get("VolumesDeleted") or []
    if deleted:
        ctx.out.write("Deleted Volumes:\n" + "".join(f"{v}\n" for v in deleted) + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(int(report.get('SpaceReclaimed') or 0))}"
                  "\n")
    return 0


__all__ = ["add_volume_commands", "create", "inspect", "ls", "prune", "rm"]
