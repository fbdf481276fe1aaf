"""The lab's messages and the environment of ``lab exec``, as a newcomer meets them."""

from __future__ import annotations

import os
import sys
from typing import Any

import pytest

from longboat.errors import NotFound
from longboat.lab import cli, enter, plan, record


def test_exec_finds_this_installations_longboat(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PATH", "/usr/bin:/bin")
    monkeypatch.setenv("DOCKER_HOST", "unix:///elsewhere.sock")
    node = plan.make("ux1", 1, "10.253.0.0/24").nodes[0]
    env = enter.environment(node)
    assert env["PATH"] == "/usr/bin:/bin:" + os.path.dirname(sys.executable)
    assert "DOCKER_HOST" not in env and env["HOSTNAME"] == "ux1-1"
    monkeypatch.setenv("PATH", os.path.dirname(sys.executable) + ":/bin")
    assert enter.environment(node)["PATH"] == os.path.dirname(sys.executable) + ":/bin"


def test_a_missing_lab_says_what_to_do(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(record, "names", lambda: [])
    assert cli._hint("lab") == " ('longboat lab up' makes it)"
    assert cli._hint("ux1") == " ('longboat lab up --name ux1' makes it)"
    monkeypatch.setattr(record, "names", lambda: ["ux2"])
    assert cli._hint("ux1") == " ('longboat lab ls' lists the labs)"


def test_up_mentions_down_only_when_it_left_something(monkeypatch: pytest.MonkeyPatch
                                                      ) -> None:
    class Rec:
        def __init__(self, status: str) -> None:
            self.status = status

    def missing(name: str) -> Any:
        raise NotFound(f"no lab named {name!r}")

    monkeypatch.setattr(record, "load", missing)
    assert cli._made_hint("ux1") == ""                 # refused before anything was made
    monkeypatch.setattr(record, "load", lambda name: Rec("up"))
    assert cli._made_hint("ux1") == ""                 # an existing lab, left alone
    monkeypatch.setattr(record, "load", lambda name: Rec("failed"))
    assert "'longboat lab down --name ux1' removes it" in cli._made_hint("ux1")
