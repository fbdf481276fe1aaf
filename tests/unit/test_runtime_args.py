"""The runtime's command-line parser: runc's conventions, clear errors."""

from __future__ import annotations

import pytest

from longboat.errors import InvalidArgument
from longboat.oci.args import HelpRequested, parse
from longboat.oci.cli import COMMANDS, GLOBAL, PROG

pytestmark = pytest.mark.unit


def p(*argv: str):
    return parse(PROG, GLOBAL, COMMANDS, list(argv))


def test_global_options_then_command_options_then_arguments():
    options, args = p("--root", "/r", "--debug", "create", "--bundle=/b", "--pid-file", "f",
                      "c1")
    assert options["root"] == "/r" and options["debug"] is True
    assert args.command == "create" and args.args == ["c1"]
    assert args.text("bundle") == "/b" and args.text("pid_file") == "f"
    assert args.number("preserve_fds") == 0


def test_defaults():
    options, args = p("run", "c1")
    assert options["root"] == "/run/longboat-runtime"
    assert args.text("bundle") == "." and not args.flag("detach")


def test_short_aliases_and_repeated_options():
    _, args = p("exec", "-t", "-e", "A=1", "--env", "B=2", "-u", "1000:1000", "c1", "sh", "-c",
                "echo hi")
    assert args.flag("tty") and args.many("env") == ["A=1", "B=2"]
    assert args.text("user") == "1000:1000"
    assert args.args == ["c1"] and args.rest == ["sh", "-c", "echo hi"]


def test_double_dash_ends_options():
    _, args = p("exec", "--", "c1", "-weird")
    assert args.args == ["c1"] and args.rest == ["-weird"]


def test_optional_and_variadic_arguments():
    assert p("kill", "c1")[1].args == ["c1"]
    assert p("kill", "--all", "c1", "KILL")[1].args == ["c1", "KILL"]
    assert p("delete", "-f", "a", "b", "c")[1].args == ["a", "b", "c"]


def test_typed_values():
    _, args = p("update", "--pids-limit", "20", "--memory", "32m", "c1")
    assert args.number("pids_limit") == 20 and args.text("memory") == "32m"


@pytest.mark.parametrize(("argv", "message"), [
    ((), "a command is needed"),
    (("frobnicate",), "unknown command 'frobnicate'"),
    (("create",), "missing ID"),
    (("create", "--bogus", "c1"), "unknown option --bogus"),
    (("create", "--bundle"), "--bundle needs a value"),
    (("update", "--pids-limit", "many", "c1"), "invalid value 'many'"),
    (("state", "a", "b"), "unexpected argument 'b'"),
    (("delete",), "missing ID"),
    (("start", "--detach=yes", "c1"), "unknown option --detach"),
    (("run", "--detach=yes", "c1"), "--detach takes no value"),
])
def test_bad_command_lines_are_refused_with_a_reason(argv, message):
    with pytest.raises(InvalidArgument, match=message):
        p(*argv)


def test_help_for_everything_and_each_command():
    with pytest.raises(HelpRequested) as top:
        p("--help")
    for name in COMMANDS:
        assert name in top.value.text
    with pytest.raises(HelpRequested) as sub:
        p("exec", "--help")
    assert "--console-socket" in sub.value.text and "usage: longboat-runtime exec" in \
        sub.value.text
