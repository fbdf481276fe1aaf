"""The command line's help and usage errors read as docker's (checked against docker
20.10's CLI by hand: wording, layout, exit codes)."""

from __future__ import annotations

import pytest

from longboat.cli.main import main


def run(capsys: pytest.CaptureFixture[str], *words: str) -> tuple[int, str, str]:
    try:
        code = main(list(words))
    except SystemExit as exc:                 # --help, --version
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out, out.err


def test_top_level_help_groups_and_sorts_commands(capsys: pytest.CaptureFixture[str]
                                                  ) -> None:
    code, out, _ = run(capsys, "--help")
    assert code == 0
    assert "\nUsage:  longboat [OPTIONS] COMMAND\n" in out
    management = out.split("Management Commands:\n")[1].split("\n\n")[0].splitlines()
    assert [line.split()[0] for line in management] == [
        "container", "image", "lab", "network", "system", "volume"]
    commands = [line.split()[0] for line in
                out.split("\nCommands:\n")[1].split("\n\n")[0].splitlines()]
    assert commands == sorted(commands)
    assert {"build", "port", "run", "ps"} <= set(commands)
    assert "  network     Manage networks\n" in out
    assert "  port        List port mappings or a specific mapping for the container\n" in out
    assert out.endswith("Run 'longboat COMMAND --help' for more information on a "
                        "command.\n")


@pytest.mark.parametrize("group", ["network", "volume", "lab", "system"])
def test_a_group_alone_prints_its_usage(capsys: pytest.CaptureFixture[str],
                                        group: str) -> None:
    code, out, err = run(capsys, group)
    assert (code, err) == (0, "")
    assert f"\nUsage:  longboat {group} COMMAND\n" in out
    assert f"Run 'longboat {group} COMMAND --help'" in out


def test_network_group_usage_is_dockers(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "network")[1] == """
Usage:  longboat network COMMAND

Manage networks

Commands:
  connect      Connect a container to a network
  create       Create a network
  disconnect   Disconnect a container from a network
  inspect      Display detailed information on one or more networks
  ls           List networks
  prune        Remove all unused networks
  rm           Remove one or more networks

Run 'longboat network COMMAND --help' for more information on a command.
"""


def test_unknown_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "nosuch") == (
        1, "", "longboat: 'nosuch' is not a longboat command.\nSee 'longboat --help'.\n")
    assert run(capsys, "network", "foo") == (
        1, "", "longboat network: 'foo' is not a longboat network command.\n"
               "See 'longboat network --help'.\n")


def test_unknown_flags_name_the_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "network", "create", "--nosuch", "x") == (
        125, "", "unknown flag: --nosuch\nSee 'longboat network create --help'.\n")
    assert run(capsys, "volume", "ls", "-x") == (
        125, "", "unknown shorthand flag: 'x' in -x\nSee 'longboat volume ls --help'.\n")
    assert run(capsys, "build", "--bogus=1", ".")[2].startswith("unknown flag: --bogus\n")


@pytest.mark.parametrize(("words", "rule"), [
    (("network", "create"), "requires exactly 1 argument"),
    (("network", "connect", "n"), "requires exactly 2 arguments"),
    (("network", "rm"), "requires at least 1 argument"),
    (("network", "ls", "extra"), "accepts no arguments"),
    (("volume", "create", "a", "b"), "requires at most 1 argument"),
    (("port",), "requires at least 1 and at most 2 arguments"),
    (("lab", "exec"), "requires at least 1 argument"),
])
def test_wrong_argument_counts(capsys: pytest.CaptureFixture[str], words: tuple[str, ...],
                               rule: str) -> None:
    code, out, err = run(capsys, *words)
    command = "longboat " + " ".join(w for w in words if w not in ("n", "a", "b", "extra"))
    assert (code, out) == (1, "")
    assert err.startswith(f'"{command}" {rule}.\nSee \'{command} --help\'.\n\nUsage:  '
                          f"{command} "), err


def test_command_help_layout(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "network", "ls", "--help")
    assert code == 0
    assert out == """
Usage:  longboat network ls [OPTIONS]

List networks

Aliases:
  ls, list

Options:
  -f, --filter list     Provide filter values (e.g. 'driver=bridge')
      --format string   Format the output with a Go template ('table ...',
                        'json')
      --no-trunc        Do not truncate the output
  -q, --quiet           Only display network IDs
"""
    out = run(capsys, "run", "--help")[1]
    assert "\nUsage:  longboat run [OPTIONS] IMAGE [COMMAND [ARG...]]\n" in out
    assert "  -h, --hostname string" in out and "--help" not in out


def test_system_service_needs_its_action(capsys: pytest.CaptureFixture[str]) -> None:
    code, _, err = run(capsys, "system", "service")
    assert code == 1
    assert err.startswith('"longboat system service" requires at least 1 argument.\n'
                          "See 'longboat system service --help'.\n\nUsage:  longboat system "
                          "service [OPTIONS] {start|stop|status|restart} "
                          "[-- LONGBOATD-FLAGS]\n")


def test_flag_values_and_unknown_flags_before_counts(capsys: pytest.CaptureFixture[str]
                                                     ) -> None:
    assert run(capsys, "network", "ls", "--filter") == (
        125, "", "flag needs an argument: --filter\nSee 'longboat network ls --help'.\n")
    assert run(capsys, "lab", "up", "--nodes", "x") == (
        125, "", 'invalid argument "x" for "--nodes" flag: strconv.ParseInt: parsing "x": '
                 "invalid syntax\nSee 'longboat lab up --help'.\n")
    assert run(capsys, "port", "--bogus") == (
        125, "", "unknown flag: --bogus\nSee 'longboat port --help'.\n")


def test_help_command(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "help", "network", "ls") == run(capsys, "network", "ls", "--help")
    assert run(capsys, "help")[1].startswith("\nUsage:  longboat [OPTIONS] COMMAND\n")
