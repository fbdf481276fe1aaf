"""A small command-line parser with runc's conventions, for ``longboat-runtime``.

argparse costs several milliseconds to import and build on every invocation, and the
runtime is invoked three or four times per container; this table-driven parser costs
nearly nothing. Options come before positionals (``--name value``, ``--name=value``,
short aliases); ``--`` ends the options; a command may take the rest of the line.
"""

from __future__ import annotations

from longboat.errors import InvalidArgument

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from collections.abc import Sequence


class Opt:
    def __init__(self, names: str, help_text: str, *, value: str = "", default: object = None,
                 repeat: bool = False, kind: type = str) -> None:
        self.names = names.split(",")
        self.key = self.names[0].lstrip("-").replace("-", "_")
        self.help = help_text
        self.value = value            # metavar; "" for a flag without a value
        self.repeat = repeat
        self.kind = kind
        self.default = [] if repeat else (False if not value else default)


class Cmd:
    def __init__(self, help_text: str, opts: Sequence[Opt] = (), args: str = "",
                 rest: bool = False) -> None:
        self.help = help_text
        self.opts = list(opts)
        self.args = args.split() if args else []   # names; "NAME..." takes one or more
        self.rest = rest                           # the remaining words after args


class Parsed:
    def __init__(self, command: str, opts: dict[str, object], args: list[str],
                 rest: list[str]) -> None:
        self.command = command
        self.opts = opts
        self.args = args
        self.rest = rest

    def flag(self, key: str) -> bool:
        return bool(self.opts.get(key))

    def text(self, key: str) -> str | None:
        value = self.opts.get(key)
        return None if value is None else str(value)

    def number(self, key: str) -> int | None:
        value = self.opts.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) else None

    def many(self, key: str) -> list[str]:
        value = self.opts.get(key)
        return [str(v) for v in value] if isinstance(value, list) else []


class HelpRequested(Exception):
    def __init__(self, text: str) -> None:
        super().__init__(text)
        self.text = text


def _take(opts: list[Opt], argv: list[str], i: int, values: dict[str, object],
          where: str) -> int:
    word = argv[i]
    name, eq, inline = word.partition("=")
    for opt in opts:
        if name in opt.names:
            break
    else:
        raise InvalidArgument(f"{where}: unknown option {name} (see --help)")
    if not opt.value:
        if eq:
            raise InvalidArgument(f"{where}: {name} takes no value")
        values[opt.key] = True
        return i + 1
    if eq:
        raw = inline
    elif i + 1 < len(argv):
        raw = argv[i + 1]
        i += 1
    else:
        raise InvalidArgument(f"{where}: {name} needs a value ({opt.value})")
    try:
        value = opt.kind(raw)
    except ValueError:
        raise InvalidArgument(f"{where}: {name}: invalid value {raw!r}") from None
    if opt.repeat:
        current = values[opt.key]
        assert isinstance(current, list)
        current.append(value)
    else:
        values[opt.key] = value
    return i + 1


def parse(prog: str, global_opts: list[Opt], commands: dict[str, Cmd],
          argv: list[str]) -> tuple[dict[str, object], Parsed]:
    values: dict[str, object] = {o.key: o.default for o in global_opts}
    i = 0
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        if argv[i] in ("-h", "--help"):
            raise HelpRequested(usage(prog, global_opts, commands))
        if argv[i] in ("-v", "--version"):
            values["version"] = True
            return values, Parsed("version", {}, [], [])
        i = _take(global_opts, argv, i, values, prog)
    if i >= len(argv):
        raise InvalidArgument(f"{prog}: a command is needed (see {prog} --help)")
    name = argv[i]
    cmd = commands.get(name)
    if cmd is None:
        raise InvalidArgument(f"{prog}: unknown command {name!r} (see {prog} --help)")
    i += 1
    opts: dict[str, object] = {o.key: o.default for o in cmd.opts}
    where = f"{prog} {name}"
    while i < len(argv) and argv[i].startswith("-") and argv[i] != "-":
        if argv[i] == "--":
            i += 1
            break
        if argv[i] in ("-h", "--help"):
            raise HelpRequested(command_usage(prog, name, cmd))
        i = _take(cmd.opts, argv, i, opts, where)
    words = argv[i:]
    args: list[str] = []
    for spec in cmd.args:
        optional = spec.startswith("[")
        if spec.endswith("..."):
            if not words:
                raise InvalidArgument(f"{where}: missing {spec.rstrip('.')}")
            args += words
            words = []
        elif words:
            args.append(words.pop(0))
        elif not optional:
            raise InvalidArgument(f"{where}: missing {spec}")
    if words and not cmd.rest:
        raise InvalidArgument(f"{where}: unexpected argument {words[0]!r}")
    return values, Parsed(name, opts, args, words)


def _opt_lines(opts: list[Opt]) -> list[str]:
    lines = []
    for o in opts:
        flag = ", ".join(o.names) + (f" {o.value}" if o.value else "")
        lines.append(f"   {flag:<28} {o.help}")
    return lines


def usage(prog: str, global_opts: list[Opt], commands: dict[str, Cmd]) -> str:
    lines = [f"usage: {prog} [global options] COMMAND [options] [arguments]", "",
             "Run containers from OCI bundles (a runc-compatible command line).", "",
             "commands:"]
    lines += [f"   {n:<10} {c.help}" for n, c in commands.items()]
    lines += ["", "global options:", *_opt_lines(global_opts)]
    lines += ["   -h, --help                   show this help (or COMMAND --help)",
              "   -v, --version                show the version"]
    return "\n".join(lines)


def command_usage(prog: str, name: str, cmd: Cmd) -> str:
    args = " ".join(cmd.args) + (" [COMMAND [ARG...]]" if cmd.rest else "")
    lines = [f"usage: {prog} {name} [options] {args}".rstrip(), "", cmd.help]
    if cmd.opts:
        lines += ["", "options:", *_opt_lines(cmd.opts)]
    return "\n".join(lines)
