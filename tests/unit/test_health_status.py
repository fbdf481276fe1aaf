"""Health checks as pure logic: Docker's status transitions (start period, retries, the
last five results), the merge of the image's check with the container's, the probe's
command and timings, output truncation, Go's duration text, the create-time checks, and
the run/create flags that make Config.Healthcheck as docker's CLI sends it."""

from __future__ import annotations

import struct
from typing import Any

import pytest

from longboat.cli.main import build_parser
from longboat.cli.run_args import ArgumentError, container_config
from longboat.engine import health
from longboat.engine.health import Health, Output, Settings
from longboat.errors import InvalidArgument

pytestmark = pytest.mark.unit

MS = 1_000_000


def result(code: int, n: int = 0) -> dict[str, Any]:
    return {"Start": f"s{n}", "End": f"e{n}", "ExitCode": code, "Output": f"out{n}"}


def fresh() -> tuple[dict[str, Any], Health]:
    state: dict[str, Any] = {}
    return state, Health.reset(state)


# -- transitions -----------------------------------------------------------------------------
def test_a_success_makes_it_healthy_and_a_change_is_reported_once() -> None:
    state, h = fresh()
    assert state["Health"] == {"Status": "starting", "FailingStreak": 0, "Log": []}
    assert h.record_result(result(0), since_start=1, start_period=0, retries=3) == "healthy"
    assert h.record_result(result(0), since_start=2, start_period=0, retries=3) is None
    assert state["Health"]["Status"] == "healthy"


def test_failures_count_until_retries_then_unhealthy_and_a_success_heals() -> None:
    state, h = fresh()
    changes = [h.record_result(result(1, n), since_start=n, start_period=0, retries=3)
               for n in range(3)]
    assert changes == [None, None, "unhealthy"]
    assert state["Health"]["FailingStreak"] == 3
    assert h.record_result(result(1), since_start=9, start_period=0, retries=3) is None
    assert state["Health"]["FailingStreak"] == 4
    assert h.record_result(result(0), since_start=10, start_period=0, retries=3) == "healthy"
    assert state["Health"]["FailingStreak"] == 0


def test_a_healthy_container_needs_retries_failures_in_a_row() -> None:
    _, h = fresh()
    h.record_result(result(0), since_start=1, start_period=0, retries=2)
    assert h.record_result(result(2), since_start=2, start_period=0, retries=2) is None
    assert h.record_result(result(0), since_start=3, start_period=0, retries=2) is None
    assert h.record_result(result(2), since_start=4, start_period=0, retries=2) is None
    assert h.record_result(result(2), since_start=5, start_period=0, retries=2) == \
        "unhealthy"


def test_failures_in_the_start_period_do_not_count_while_starting() -> None:
    state, h = fresh()
    for n in range(5):
        assert h.record_result(result(1, n), since_start=n, start_period=10,
                               retries=1) is None
    assert state["Health"]["Status"] == "starting"
    assert state["Health"]["FailingStreak"] == 0
    assert len(state["Health"]["Log"]) == 5
    # the period is over: the next failure counts
    assert h.record_result(result(1), since_start=10, start_period=10, retries=1) == \
        "unhealthy"


def test_after_a_first_success_failures_count_even_in_the_start_period() -> None:
    _, h = fresh()
    h.record_result(result(0), since_start=1, start_period=60, retries=1)
    assert h.record_result(result(1), since_start=2, start_period=60, retries=1) == \
        "unhealthy"


def test_the_log_keeps_the_last_five_results() -> None:
    state, h = fresh()
    for n in range(8):
        h.record_result(result(0, n), since_start=n, start_period=0, retries=3)
    assert [e["Output"] for e in state["Health"]["Log"]] == [f"out{n}" for n in range(3, 8)]


def test_a_restart_resets_status_and_streak_and_keeps_the_log() -> None:
    state, h = fresh()
    for n in range(3):
        h.record_result(result(1, n), since_start=n, start_period=0, retries=3)
    Health.reset(state)
    assert state["Health"]["Status"] == "starting"
    assert state["Health"]["FailingStreak"] == 0
    assert len(state["Health"]["Log"]) == 3


def test_status_text_and_filter_values() -> None:
    assert health.status_suffix({}) == ""
    assert health.filter_status({}) == "none"
    for status, text in (("starting", " (health: starting)"), ("healthy", " (healthy)"),
                         ("unhealthy", " (unhealthy)")):
        state = {"Health": {"Status": status}}
        assert health.status_suffix(state) == text
        assert health.filter_status(state) == status


# -- configuration ---------------------------------------------------------------------------
def test_the_image_check_is_merged_field_by_field() -> None:
    image = {"Healthcheck": {"Test": ["CMD", "true"], "Interval": 200 * MS, "Retries": 5}}
    assert health.merged_check({}, image) == image["Healthcheck"]
    assert health.merged_check({"Healthcheck": {"Test": ["CMD", "x"]}}, {}) == \
        {"Test": ["CMD", "x"]}
    assert health.merged_check({}, {}) is None
    merged = health.merged_check({"Healthcheck": {"Test": ["CMD-SHELL", "false"],
                                                  "Timeout": 3 * MS}}, image)
    assert merged == {"Test": ["CMD-SHELL", "false"], "Interval": 200 * MS,
                      "Timeout": 3 * MS, "StartPeriod": None, "Retries": 5}
    # only the interval: the image's test
    only = health.merged_check({"Healthcheck": {"Interval": 300 * MS}}, image)
    assert only is not None and only["Test"] == ["CMD", "true"]
    assert only["Interval"] == 300 * MS


def test_settings_defaults_shell_and_none() -> None:
    s = Settings.of({"Test": ["CMD-SHELL", "echo hi"]}, None)
    assert s is not None
    assert s.command == ["/bin/sh", "-c", "echo hi"]
    assert (s.interval, s.timeout, s.start_period, s.retries) == (30.0, 30.0, 0.0, 3)
    s = Settings.of({"Test": ["CMD-SHELL", "echo hi"]}, ["/bin/ash", "-ec"])
    assert s is not None and s.command == ["/bin/ash", "-ec", "echo hi"]
    s = Settings.of({"Test": ["CMD", "wget", "-q", "x"], "Interval": 200 * MS,
                     "Timeout": 1500 * MS, "StartPeriod": 2_000 * MS, "Retries": 1}, None)
    assert s is not None
    assert s.command == ["wget", "-q", "x"]
    assert (s.interval, s.timeout, s.start_period, s.retries) == (0.2, 1.5, 2.0, 1)
    nothings: list[dict[str, Any] | None] = [None, {}, {"Test": []}, {"Test": ["NONE"]},
                                             {"Test": ["CMD"]}, {"Test": ["WHAT", "x"]}]
    for nothing in nothings:
        assert Settings.of(nothing, None) is None


@pytest.mark.parametrize(("check", "message"), [
    ({"Interval": 500}, "Interval in Healthcheck cannot be less than 1ms"),
    ({"Timeout": 999_999}, "Timeout in Healthcheck cannot be less than 1ms"),
    ({"StartPeriod": 1}, "StartPeriod in Healthcheck cannot be less than 1ms"),
    ({"Retries": -1}, "Retries in Healthcheck cannot be negative"),
    ({"Test": "true"}, "must be a list"),
])
def test_create_refuses_what_docker_refuses(check: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument, match=message):
        health.validate(check)


def test_create_accepts_zero_and_valid_values() -> None:
    health.validate(None)
    health.validate({"Test": ["NONE"]})
    health.validate({"Test": ["CMD", "true"], "Interval": 0, "Timeout": MS, "Retries": 0})


@pytest.mark.parametrize(("seconds", "text"), [
    (0.2, "200ms"), (0.3, "300ms"), (1, "1s"), (1.5, "1.5s"), (30, "30s"), (90, "1m30s"),
    (3600, "1h0m0s"), (0.0000015, "1.5µs"), (0, "0s"),
])
def test_durations_read_as_go_prints_them(seconds: float, text: str) -> None:
    assert health.go_duration(seconds) == text


def test_output_keeps_4096_bytes_and_marks_the_rest() -> None:
    out = Output()
    out.write(b"a" * 4000)
    out.write(b"b" * 200)
    out.write(b"c")
    text = out.text()
    assert text == "a" * 4000 + "b" * 96 + "..."
    small = Output()
    small.write(b"ok\n")
    assert small.text() == "ok\n"


def test_frames_from_the_monitor_are_unwrapped_stdout_and_stderr_together() -> None:
    def frame(stream: int, data: bytes) -> bytes:
        return struct.pack(">BxxxI", stream, len(data)) + data

    buffer = bytearray(frame(1, b"out ") + frame(2, b"err") + frame(1, b"par"))
    buffer = buffer[:-1]
    out = Output()
    health._frames(buffer, out)
    assert out.text() == "out err"
    buffer += b"r"
    health._frames(buffer, out)
    assert out.text() == "out errpar" and not buffer


# -- run/create flags ------------------------------------------------------------------------
def config_for(*flags: str) -> dict[str, Any]:
    args = build_parser().parse_args(["run", *flags, "bb:1"])
    config: dict[str, Any] = container_config(args, detach=True, environ={})
    return config


def test_health_flags_make_the_config_docker_sends() -> None:
    config = config_for("--health-cmd", "wget -q localhost", "--health-interval", "200ms",
                        "--health-timeout", "1.5s", "--health-start-period", "1m",
                        "--health-retries", "2")
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "wget -q localhost"],
                                     "Interval": 200 * MS, "Timeout": 1500 * MS,
                                     "StartPeriod": 60_000 * MS, "Retries": 2}
    assert config_for("--health-interval", "1s")["Healthcheck"] == {"Interval": 1000 * MS}
    assert "Healthcheck" not in config_for()
    assert config_for("--no-healthcheck")["Healthcheck"] == {"Test": ["NONE"]}


@pytest.mark.parametrize(("flags", "message"), [
    (("--no-healthcheck", "--health-cmd", "true"),
     "--no-healthcheck conflicts with --health-\\* options"),
    (("--health-interval=-1s",), "--health-interval cannot be negative"),
    (("--health-retries=-2",), "--health-retries cannot be negative"),
    (("--health-timeout", "soon"),
     'invalid argument "soon" for "--health-timeout" flag: time: invalid duration "soon"'),
])
def test_bad_health_flags_are_refused_as_docker_does(flags: tuple[str, ...],
                                                     message: str) -> None:
    with pytest.raises(ArgumentError, match=message):
        config_for(*flags)
