"""Help and usage errors laid out as docker's CLI lays them out (its cobra templates):
``Usage:  longboat network create [OPTIONS] NETWORK``, the description, ``Aliases:``,
``Options:`` as ``-d, --driver string``, commands in alphabetical order (management
commands apart at the top), and docker's words for a wrong argument count or an unknown
flag or command. Only argparse, textwrap and re: ``--help`` stays fast."""

from __future__ import annotations

import argparse
import re
import textwrap

WIDTH = 80
_PLURAL = {True: "arguments", False: "argument"}


def _positionals(parser: argparse.ArgumentParser) -> list[argparse.Action]:
    return [a for a in parser._actions
            if not a.option_strings and not isinstance(a, argparse._SubParsersAction)
            and a.help != argparse.SUPPRESS]


def _subcommands(parser: argparse.ArgumentParser
                 ) -> argparse._SubParsersAction[argparse.ArgumentParser] | None:
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            return action
    return None


def _metavar(action: argparse.Action) -> str:
    if action.metavar is not None:
        return str(action.metavar)
    if action.choices is not None:
        return "{" + "|".join(str(c) for c in action.choices) + "}"
    return action.dest.upper()


def _usage_word(action: argparse.Action) -> str:
    name = _metavar(action)
    if action.nargs == argparse.OPTIONAL:
        return name if name.startswith("[") else f"[{name}]"
    if action.nargs == argparse.ONE_OR_MORE:
        return f"{name} [{name}...]"
    if action.nargs == argparse.ZERO_OR_MORE:
        return f"[{name}...]"
    if action.nargs == argparse.REMAINDER:
        return name if name.startswith("[") else f"[{name}]"
    return name


def usage_line(parser: argparse.ArgumentParser) -> str:
    words = [parser.prog]
    if any(a.option_strings and a.help != argparse.SUPPRESS
           and not isinstance(a, argparse._HelpAction) for a in parser._actions):
        words.append("[OPTIONS]")
    if _subcommands(parser) is not None:
        words.append("COMMAND")
    words += [_usage_word(a) for a in _positionals(parser)]
    return " ".join(words)


def _type_word(action: argparse.Action) -> str:
    if action.nargs == 0 or (action.nargs == argparse.OPTIONAL and action.const is not None):
        return ""                                     # a flag (or --flag[=bool])
    if isinstance(action, argparse._AppendAction):
        return "list"
    if action.type is int:
        return "int"
    return "string"


def _help_text(parser: argparse.ArgumentParser, action: argparse.Action) -> str:
    text = parser._get_formatter()._expand_help(action) if action.help else ""
    if text.startswith(("longboat", "ssh")):
        return text                                   # a program's name stays as it is
    return text[:1].upper() + text[1:]


def _table(rows: list[tuple[str, str]], indent: int = 2, left: int = 0,
           wrap: bool = True) -> list[str]:
    """Two columns, the second aligned (and wrapped to WIDTH): cobra's layout."""
    if not rows:
        return []
    left = left or max(len(r[0]) for r in rows) + 3
    lines = []
    for name, text in rows:
        wrapped = (textwrap.wrap(text, max(WIDTH - indent - left, 30)) if wrap
                   else [text]) or [""]
        lines.append((" " * indent + name.ljust(left) + wrapped[0]).rstrip())
        lines += [" " * (indent + left) + more for more in wrapped[1:]]
    return lines


def _option_rows(parser: argparse.ArgumentParser) -> list[tuple[str, str]]:
    rows = []
    for action in parser._actions:
        if not action.option_strings or action.help == argparse.SUPPRESS:
            continue
        if isinstance(action, argparse._HelpAction):
            continue                                  # docker does not list --help
        shorts = [o for o in action.option_strings if not o.startswith("--")]
        longs = [o for o in action.option_strings if o.startswith("--")]
        name = (shorts[0] + ", " if shorts else "    ") + ", ".join(longs or shorts[1:])
        kind = _type_word(action)
        rows.append((name + (" " + kind if kind else ""), _help_text(parser, action)))
    return rows


def _command_rows(parser: argparse.ArgumentParser) -> tuple[list[tuple[str, str]],
                                                             list[tuple[str, str]]]:
    """(management commands, commands), each sorted by name."""
    sub = _subcommands(parser)
    if sub is None:
        return [], []
    groups: list[tuple[str, str]] = []
    commands: list[tuple[str, str]] = []
    for pseudo in sub._get_subactions():
        name = pseudo.dest
        if pseudo.help == argparse.SUPPRESS:
            continue
        child = sub.choices.get(name)
        row = (name, str(pseudo.help or ""))
        is_group = isinstance(child, argparse.ArgumentParser) and \
            _subcommands(child) is not None
        (groups if is_group else commands).append(row)
    return sorted(groups), sorted(commands)


def format_help(parser: argparse.ArgumentParser) -> str:
    out = ["", f"Usage:  {usage_line(parser)}", ""]
    if parser.description:
        out += [parser.description, ""]
    aliases = getattr(parser, "aliases", None)
    if aliases:
        out += ["Aliases:", "  " + ", ".join(aliases), ""]
    arguments = [(_metavar(a), _help_text(parser, a)) for a in _positionals(parser)
                 if a.help]
    if arguments:
        out += ["Arguments:", *_table(arguments), ""]
    options = _option_rows(parser)
    if options:
        out += ["Options:", *_table(options), ""]
    groups, commands = _command_rows(parser)
    left = max([len(name) for name, _ in groups + commands] + [9]) + 3
    if groups and commands:
        out += ["Management Commands:", *_table(groups, left=left, wrap=False), ""]
        out += ["Commands:", *_table(commands, left=left, wrap=False), ""]
    elif groups or commands:
        out += ["Commands:", *_table(sorted(groups + commands), left=left, wrap=False),
                ""]
    if groups or commands:
        out += [f"Run '{parser.prog} COMMAND --help' for more information on a command.",
                ""]
    return "\n".join(out)


def arity_error(parser: argparse.ArgumentParser) -> str:
    """docker's words for a wrong number of arguments: '"longboat network create"
    requires exactly 1 argument.'"""
    least = most = 0
    unbounded = False
    for action in _positionals(parser):
        if action.nargs is None:
            least += 1
            most += 1
        elif action.nargs == argparse.OPTIONAL:
            most += 1
        elif action.nargs == argparse.ONE_OR_MORE:
            least += 1
            unbounded = True
        else:
            unbounded = True
    if least == most and not unbounded:
        rule = ("accepts no arguments" if least == 0 else
                f"requires exactly {least} {_PLURAL[least > 1]}")
    elif unbounded:
        rule = f"requires at least {least} {_PLURAL[least > 1]}"
    elif least == 0:
        rule = f"requires at most {most} {_PLURAL[most > 1]}"
    else:
        rule = f"requires at least {least} and at most {most} arguments"
    return f'"{parser.prog}" {rule}.'


def missing_arguments(parser: argparse.ArgumentParser, message: str) -> bool:
    """Is argparse's "the following arguments are required: ..." about positional
    arguments only (a wrong count, for docker), not about a required option?"""
    missing = message.partition("the following arguments are required: ")[2]
    names = {n for a in _positionals(parser) for n in (_metavar(a), a.metavar, a.dest)
             if n}
    return bool(missing) and all(m in names for m in missing.split(", "))


def first_unknown_flag(parser: argparse.ArgumentParser, words: list[str]) -> str | None:
    """The first word that looks like a flag this command does not have (docker checks
    flags before it counts arguments)."""
    for word in words:
        if word == "--":
            return None
        if not word.startswith("-") or word == "-":
            continue
        try:
            found = parser._parse_optional(word)
        except argparse.ArgumentError:              # an ambiguous abbreviation
            continue
        if isinstance(found, tuple) and found[0] is None:
            return word
    return None


def unknown_flag(word: str) -> str:
    """pflag's words for a flag the command does not have."""
    if word.startswith("--"):
        return f"unknown flag: {word.split('=', 1)[0]}"
    return f"unknown shorthand flag: {word[1:2]!r} in {word}"


def flag_error(message: str, words: list[str]) -> str | None:
    """pflag's words for argparse's complaints about a flag's value (``words``: the
    command's arguments, to name the flag as it was typed)."""
    found = re.match(r"argument (\S+): expected one argument$", message)
    if found:
        names = found.group(1).split("/")
        typed = [w for w in words if w in names]
        name = typed[-1] if typed else ([n for n in names if n.startswith("--")]
                                        or names)[0]
        if not name.startswith("--"):
            return f"flag needs an argument: {name[1:]!r} in {name}"
        return f"flag needs an argument: {name}"
    found = re.match(r"argument (\S+): invalid (int|float) value: '(.*)'$", message)
    if found:
        names = sorted(found.group(1).split("/"), key=lambda n: n.startswith("--"))
        value = found.group(3)
        parse = "ParseInt" if found.group(2) == "int" else "ParseFloat"
        return (f'invalid argument "{value}" for "{", ".join(names)}" flag: '
                f'strconv.{parse}: parsing "{value}": invalid syntax')
    return None


def invalid_choice(message: str) -> str | None:
    """The word argparse refused as a command ('argument COMMAND: invalid choice: ...')."""
    found = re.match(r"argument COMMAND: invalid choice: '(.*?)' \(choose from", message)
    return found.group(1) if found else None


def see_help(parser: argparse.ArgumentParser, *, usage: bool = False) -> str:
    """``See 'longboat X --help'.``, and with ``usage`` the command's usage line and
    description after it (as docker adds them to a wrong argument count)."""
    text = f"See '{parser.prog} --help'."
    if usage:
        text += f"\n\nUsage:  {usage_line(parser)}"
        if parser.description:
            text += f"\n\n{parser.description}"
    return text
