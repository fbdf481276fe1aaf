"""longboat.core.container with state ``healthy``: it waits for State.Health.Status to be
healthy, and fails with a clear message when the check reports unhealthy, when the
container stops, when it has no health check, or when the wait times out (as
community.docker's docker_container). The module is loaded from collection/ by path, with
a stand-in module object and engine client."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.unit

COLLECTION = Path(__file__).resolve().parents[2] / "collection"


def container_module() -> Any:
    if str(COLLECTION) not in sys.path:
        sys.path.insert(0, str(COLLECTION))
    pytest.importorskip("ansible")
    return importlib.import_module(
        "ansible_collections.longboat.core.plugins.modules.container")


class Failed(Exception):
    def __init__(self, fields: dict[str, Any]) -> None:
        super().__init__(fields["msg"])
        self.fields = fields


class FakeModule:
    def __init__(self, timeout: int = 5) -> None:
        self.params = {"name": "lbh-web", "healthy_wait_timeout": timeout}
        self.check_mode = False

    def fail_json(self, **fields: Any) -> None:
        raise Failed(fields)


class FakeEngine:
    """inspect_container answers the next of the given states (the last one repeats)."""

    def __init__(self, *states: dict[str, Any]) -> None:
        self.states = list(states)
        self.calls = 0

    def inspect_container(self, ref: str) -> dict[str, Any]:
        state = self.states[min(self.calls, len(self.states) - 1)]
        self.calls += 1
        return {"Id": ref, "State": state}


def running(health: dict[str, Any] | None) -> dict[str, Any]:
    state: dict[str, Any] = {"Status": "running", "Running": True}
    if health is not None:
        state["Health"] = health
    return state


@pytest.fixture(autouse=True)
def no_sleep(monkeypatch: pytest.MonkeyPatch) -> None:
    mod = container_module()
    monkeypatch.setattr(mod.time, "sleep", lambda _s: None)


def wait(engine: FakeEngine, timeout: int = 5) -> dict[str, Any]:
    mod = container_module()
    manager = mod.ContainerManager(FakeModule(timeout), engine)
    result: dict[str, Any] = manager.wait_healthy({"Id": "c1"})
    return result


def test_it_waits_through_starting_until_healthy() -> None:
    engine = FakeEngine(running({"Status": "starting", "FailingStreak": 0, "Log": []}),
                        running({"Status": "starting", "FailingStreak": 0, "Log": []}),
                        running({"Status": "healthy", "FailingStreak": 0, "Log": []}))
    assert wait(engine)["State"]["Health"]["Status"] == "healthy"
    assert engine.calls == 3


def test_unhealthy_fails_with_the_last_check_output() -> None:
    engine = FakeEngine(running({"Status": "unhealthy", "FailingStreak": 3, "Log": [
        {"ExitCode": 1, "Output": "connection refused\n"}]}))
    with pytest.raises(Failed) as failed:
        wait(engine)
    assert failed.value.fields["msg"] == ("container lbh-web is unhealthy: the last check "
                                          "exited 1: connection refused")
    assert failed.value.fields["container"]["Id"] == "c1"


def test_no_health_check_fails_rather_than_passing_as_started() -> None:
    with pytest.raises(Failed, match="has no health check to wait for"):
        wait(FakeEngine(running(None)))


def test_a_container_that_stops_while_starting_fails() -> None:
    stopped = {"Status": "exited", "Running": False,
               "Health": {"Status": "starting", "FailingStreak": 0, "Log": []}}
    with pytest.raises(Failed, match="stopped while waiting for it to become healthy"):
        wait(FakeEngine(stopped))
    with pytest.raises(Failed, match="stopped while waiting"):
        wait(FakeEngine({"Status": "exited", "Running": False}))


def test_the_wait_times_out_with_the_status_it_was_in() -> None:
    with pytest.raises(Failed, match=r"was not healthy within 0s \(still starting\)"):
        wait(FakeEngine(running({"Status": "starting", "FailingStreak": 0, "Log": []})),
             timeout=0)
