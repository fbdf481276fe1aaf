"""The supervisor's pure parts: where its state lives, what restart reuses, and how
``system service`` splits its own options from longboatd's."""

from __future__ import annotations

import argparse
import sys

import pytest

from longboat.cli.main import Context, build_parser
from longboat.cli.system import _daemon_args, _service_options
from longboat.engine import supervise


def test_state_file_beside_the_pidfile() -> None:
    assert supervise.state_file("/run/longboat/supervise.pid") == "/run/longboat/supervise.json"
    assert supervise.state_file("/tmp/x") == "/tmp/x.json"


def test_restart_reuses_the_recorded_flags() -> None:
    assert supervise.recorded_args({"Command": ["/venv/bin/longboatd", "--debug", "-H", "x"]}
                                   ) == ["--debug", "-H", "x"]
    assert supervise.recorded_args({"Command": [sys.executable, "-c", "code", "--bridge",
                                                "none"]}) == ["--bridge", "none"]
    assert supervise.recorded_args({}) == []


def test_daemon_command_runs_longboatd() -> None:
    command = supervise.daemon_command(["--debug"])
    assert command[-1] == "--debug"
    assert "longboatd" in command[0] or "longboat.engine.daemon" in " ".join(command)


def _ctx(*words: str) -> Context:
    args = build_parser("system").parse_args(["system", "service", *words])
    ctx = Context(args)
    _service_options(ctx)
    return ctx


@pytest.mark.parametrize("words", [
    ("start", "--pidfile", "/p", "--", "--debug", "-H", "unix:///s"),
    ("--pidfile", "/p", "start", "--debug", "-H", "unix:///s"),
    ("start", "--pidfile=/p", "--debug", "-H", "unix:///s"),
])
def test_service_options_before_or_after_the_action(words: tuple[str, ...]) -> None:
    ctx = _ctx(*words)
    assert ctx.args.action == "start"
    assert ctx.args.pidfile == "/p"
    assert ctx.args.daemon_args == ["--debug", "-H", "unix:///s"]


def test_config_file_goes_to_longboatd() -> None:
    ctx = _ctx("restart", "--config-file", "/etc/x.json")
    assert _daemon_args(ctx) == ["--config-file", "/etc/x.json"]
    assert isinstance(ctx.args, argparse.Namespace)
