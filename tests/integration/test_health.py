"""Health checks against a real longboatd, through our CLI, the docker CLI and docker-py:
a probe that passes (healthy), one that fails until unhealthy after its retries, one past
its timeout (killed, a failure), the start period, NONE and --no-healthcheck, the image's
HEALTHCHECK merged with the container's flags, the ps Status text and --filter health=,
the events (exec_create/exec_start/exec_die and health_status), stop and start, pause,
and an engine restart with the container still running (live restore: checks go on).
Intervals of 200 ms keep it fast; every resource is named lbh-*."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from tests.support.cli import CLI
from tests.support.engine import Longboatd
from tests.support.fixtures import busybox_engine_fixture, cli_fixture, leftovers_fixture

pytestmark = pytest.mark.integration

FAST = ("--health-interval", "200ms")


engine = busybox_engine_fixture("longboatd-health")
cli = cli_fixture()
no_leftovers = leftovers_fixture()


def state(engine: Longboatd, name: str) -> dict[str, Any]:
    found: dict[str, Any] = json.loads(engine.docker("inspect", name).stdout)[0]["State"]
    return found


def health(engine: Longboatd, name: str) -> dict[str, Any]:
    found: dict[str, Any] = state(engine, name).get("Health") or {}
    return found


def until(check: Callable[[], Any], timeout: float = 20, what: str = "") -> Any:
    end = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what or check}")
        time.sleep(0.05)


def run(cli: CLI, name: str, *flags: str, command: tuple[str, ...] = ("sleep", "120"),
        image: str = "bb:1") -> None:
    cli("run", "-d", "--network", "none", "--name", name, *flags, image, *command)


def status_is(engine: Longboatd, name: str, wanted: str) -> Callable[[], bool]:
    return lambda: health(engine, name).get("Status") == wanted


def test_a_passing_probe_makes_it_healthy(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-ok", "--health-cmd", "echo ok; echo err >&2", *FAST)
    until(status_is(engine, "lbh-ok", "healthy"), what="healthy")
    found = health(engine, "lbh-ok")
    assert found["FailingStreak"] == 0
    last = found["Log"][-1]
    assert last["ExitCode"] == 0
    assert sorted(last["Output"].split()) == ["err", "ok"]
    assert last["Start"] <= last["End"]
    until(lambda: len(health(engine, "lbh-ok")["Log"]) == 5, what="five results")
    time.sleep(0.5)
    assert len(health(engine, "lbh-ok")["Log"]) == 5      # the last five only
    # finished probes leave no exit records behind in the monitor
    assert len(list((engine.exec_root / "monitor").glob("*.exit"))) <= 2
    # the same through the docker CLI's template and docker-py
    assert engine.docker("inspect", "-f", "{{.State.Health.Status}}",
                         "lbh-ok").stdout.strip() == "healthy"
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host, version="auto")
    try:
        attrs = client.containers.get("lbh-ok").attrs
        assert attrs["State"]["Health"]["Status"] == "healthy"
        assert attrs["Config"]["Healthcheck"] == {"Test": ["CMD-SHELL",
                                                           "echo ok; echo err >&2"],
                                                  "Interval": 200_000_000}
    finally:
        client.close()


def test_ps_shows_the_health_and_filters_on_it(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-ps-good", "--health-cmd", "true", *FAST)
    run(cli, "lbh-ps-slow", "--health-cmd", "true")          # 30 s: still starting
    run(cli, "lbh-ps-bad", "--health-cmd", "false", "--health-retries", "1", *FAST)
    run(cli, "lbh-ps-none")
    until(status_is(engine, "lbh-ps-good", "healthy"), what="healthy")
    until(status_is(engine, "lbh-ps-bad", "unhealthy"), what="unhealthy")

    def statuses(*args: str) -> dict[str, str]:
        out = cli("ps", *args, "--format", "{{.Names}}|{{.Status}}").stdout
        return dict(line.split("|") for line in out.splitlines())

    every = statuses()
    assert every["lbh-ps-good"].endswith(" (healthy)")
    assert every["lbh-ps-slow"].endswith(" (health: starting)")
    assert every["lbh-ps-bad"].endswith(" (unhealthy)")
    assert every["lbh-ps-none"].startswith("Up ") and "(" not in every["lbh-ps-none"]
    assert every["lbh-ps-good"].startswith("Up ")
    for value, name in (("healthy", "lbh-ps-good"), ("starting", "lbh-ps-slow"),
                        ("unhealthy", "lbh-ps-bad"), ("none", "lbh-ps-none")):
        assert list(statuses("--filter", f"health={value}")) == [name]
        docker_names = engine.docker("ps", "--filter", f"health={value}", "--format",
                                     "{{.Names}}").stdout.split()
        assert docker_names == [name]
    bad = engine.docker("ps", "--filter", "health=sick", check=False)
    assert bad.returncode != 0
    assert "Unrecognised filter value for health: sick" in bad.stderr


def test_failures_make_it_unhealthy_after_the_retries(engine: Longboatd, cli: CLI) -> None:
    since = time.time()
    run(cli, "lbh-bad", "--health-cmd", "echo nope; exit 3", "--health-retries", "2", *FAST)
    until(status_is(engine, "lbh-bad", "unhealthy"), what="unhealthy")
    found = health(engine, "lbh-bad")
    assert found["FailingStreak"] >= 2
    assert {(e["ExitCode"], e["Output"]) for e in found["Log"]} == {(3, "nope\n")}
    # Docker's events: exec_create/exec_start/exec_die for each probe, one health_status
    events = engine.docker("events", "--since", f"{since:.3f}", "--until",
                           f"{time.time():.3f}", "--filter", "container=lbh-bad",
                           "--format", "{{.Action}}|{{json .Actor.Attributes}}").stdout
    actions = [line.split("|")[0] for line in events.splitlines()]
    assert "exec_create: /bin/sh -c echo nope; exit 3" in actions
    assert "exec_start: /bin/sh -c echo nope; exit 3" in actions
    assert actions.count("health_status: unhealthy") == 1
    assert "health_status: healthy" not in actions
    dies = [json.loads(line.split("|", 1)[1]) for line in events.splitlines()
            if line.startswith("exec_die|")]
    assert dies and all(d["exitCode"] == "3" and d["execID"] for d in dies)
    # the event filter without the ": status" matches (Docker's prefix match)
    filtered = engine.docker("events", "--since", f"{since:.3f}", "--until",
                             f"{time.time():.3f}", "--filter", "event=health_status",
                             "--format", "{{.Action}} {{.Actor.Attributes.name}}").stdout
    assert filtered.splitlines() == ["health_status: unhealthy lbh-bad"]


def test_a_probe_past_its_timeout_is_killed_and_fails(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-slow", "--health-cmd", "sleep 7", "--health-timeout", "300ms",
        "--health-retries", "1", *FAST)
    until(status_is(engine, "lbh-slow", "unhealthy"), what="unhealthy")
    last = health(engine, "lbh-slow")["Log"][-1]
    assert last["ExitCode"] == -1
    assert last["Output"] == "Health check exceeded timeout (300ms)"
    # each one killed: they do not pile up (at most the current one runs)
    until(lambda: len(health(engine, "lbh-slow")["Log"]) >= 3, what="three probes")
    procs = cli("exec", "lbh-slow", "ps", "-o", "pid,args").stdout
    assert sum("sleep 7" in line for line in procs.splitlines()) <= 1, procs


def test_the_start_period_forgives_failures_until_a_success(engine: Longboatd,
                                                            cli: CLI) -> None:
    # ready after 2.5 s; failures meanwhile do not count (one would be enough otherwise)
    since = time.time()
    run(cli, "lbh-boot", "--health-cmd", "test -e /tmp/ready", "--health-retries", "1",
        "--health-start-period", "8s", *FAST,
        command=("sh", "-c", "sleep 2.5; touch /tmp/ready; sleep 120"))
    until(lambda: any(e["ExitCode"] == 1 for e in health(engine, "lbh-boot")
                      .get("Log", [])), what="a failed probe")
    assert health(engine, "lbh-boot")["Status"] == "starting"
    assert health(engine, "lbh-boot")["FailingStreak"] == 0
    until(status_is(engine, "lbh-boot", "healthy"), what="healthy")
    actions = engine.docker("events", "--since", f"{since:.3f}", "--until",
                            f"{time.time():.3f}", "--filter", "container=lbh-boot",
                            "--filter", "event=health_status",
                            "--format", "{{.Action}}").stdout.split("\n")
    assert [a for a in actions if a] == ["health_status: healthy"]
    # past the start period (2 s here): failures count; those before it did not
    since = time.time()
    run(cli, "lbh-late", "--health-cmd", "false", "--health-retries", "1",
        "--health-start-period", "2s", *FAST)
    until(status_is(engine, "lbh-late", "unhealthy"), what="unhealthy")
    streak = health(engine, "lbh-late")["FailingStreak"]
    probes = engine.docker("events", "--since", f"{since:.3f}", "--until",
                           f"{time.time():.3f}", "--filter", "container=lbh-late",
                           "--filter", "event=exec_die", "--format",
                           "{{.Action}}").stdout.split()
    assert 1 <= streak <= len(probes) - 3, (streak, len(probes))   # ~8 forgiven


def test_the_image_check_is_inherited_and_none_disables_it(engine: Longboatd,
                                                           cli: CLI) -> None:
    cli("build", "-q", "-t", "lbh-img:1", "-", input=b"FROM bb:1\n"
        b'HEALTHCHECK --interval=200ms --retries=1 CMD ["sh", "-c", "echo image"]\n')
    try:
        run(cli, "lbh-image", image="lbh-img:1")
        until(status_is(engine, "lbh-image", "healthy"), what="healthy from the image")
        assert health(engine, "lbh-image")["Log"][-1]["Output"] == "image\n"
        # our command, the image's interval and retries (200ms: quick to fail)
        run(cli, "lbh-merged", "--health-cmd", "exit 2", image="lbh-img:1")
        until(status_is(engine, "lbh-merged", "unhealthy"), timeout=10,
              what="unhealthy with the image's interval")
        run(cli, "lbh-off", "--no-healthcheck", image="lbh-img:1")
        time.sleep(0.8)
        assert "Health" not in state(engine, "lbh-off")
        cfg = json.loads(engine.docker("inspect", "lbh-off").stdout)[0]["Config"]
        assert cfg["Healthcheck"] == {"Test": ["NONE"]}
        assert "(" not in cli("ps", "--filter", "name=lbh-off", "--format",
                              "{{.Status}}").stdout
        # the docker CLI's flags do the same
        engine.docker("run", "-d", "--network", "none", "--name", "lbh-docker-off",
                      "--no-healthcheck", "lbh-img:1", "sleep", "60")
        assert engine.docker("ps", "--filter", "health=none", "--filter",
                             "name=lbh-docker-off", "-q").stdout.strip()
    finally:
        ids = engine.docker("ps", "-aq", check=False).stdout.split()
        if ids:
            engine.docker("rm", "-f", *ids, check=False)
        cli("rmi", "lbh-img:1", check=False)


def test_long_output_is_truncated_like_docker(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-loud", "--health-cmd", "head -c 5000 /dev/zero | tr '\\0' x", *FAST)
    until(status_is(engine, "lbh-loud", "healthy"), what="healthy")
    assert health(engine, "lbh-loud")["Log"][-1]["Output"] == "x" * 4096 + "..."


def test_bad_values_are_refused_at_create(engine: Longboatd, cli: CLI) -> None:
    out = engine.docker("create", "--health-interval", "1ns", "bb:1", check=False)
    assert out.returncode != 0
    assert "Interval in Healthcheck cannot be less than 1ms" in out.stderr
    mine = cli("create", "--no-healthcheck", "--health-retries", "2", "bb:1", check=False)
    assert mine.returncode != 0
    assert "--no-healthcheck conflicts with --health-* options" in mine.stderr


def test_checks_stop_with_the_container_and_start_again(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-cycle", "--health-cmd", "true", *FAST)
    until(status_is(engine, "lbh-cycle", "healthy"), what="healthy")
    cli("stop", "-t", "1", "lbh-cycle")
    stopped = health(engine, "lbh-cycle")
    assert stopped["Status"] == "unhealthy"          # as Docker 20.10 leaves it
    time.sleep(0.6)
    assert health(engine, "lbh-cycle") == stopped         # no probe while stopped
    cli("start", "lbh-cycle")
    restarted = health(engine, "lbh-cycle")
    assert restarted["Status"] == "starting"
    kept = [e for e in restarted["Log"] if e in stopped["Log"]]     # the log is kept
    assert kept and kept == stopped["Log"][-len(kept):]
    until(status_is(engine, "lbh-cycle", "healthy"), what="healthy again")
    # paused: no probes (unhealthy meanwhile, as Docker); unpaused: they go on
    cli("pause", "lbh-cycle")
    paused = health(engine, "lbh-cycle")
    assert paused["Status"] == "unhealthy"
    assert cli("ps", "--filter", "name=lbh-cycle", "--format",
               "{{.Status}}").stdout.strip().endswith("(Paused)")
    time.sleep(0.6)
    assert health(engine, "lbh-cycle")["Log"] == paused["Log"]
    cli("unpause", "lbh-cycle")
    until(lambda: health(engine, "lbh-cycle")["Log"][-1] != paused["Log"][-1],
          what="a probe after unpause")
    until(status_is(engine, "lbh-cycle", "healthy"), what="healthy after unpause")


def test_an_engine_restart_keeps_checking(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-live", "--health-cmd", "true", *FAST)
    until(status_is(engine, "lbh-live", "healthy"), what="healthy")
    engine.stop(monitor=False)        # the container keeps running (live restore)
    down = time.time()
    time.sleep(0.5)
    engine.start()
    assert state(engine, "lbh-live")["Running"]
    until(lambda: health(engine, "lbh-live")["Log"][-1]["Start"] >
          time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(down + 0.5)),
          what="a probe after the restart")
    until(status_is(engine, "lbh-live", "healthy"), what="healthy after the restart")


def test_a_docker_exec_has_its_exec_die_event_too(engine: Longboatd, cli: CLI) -> None:
    run(cli, "lbh-exec")
    since = time.time()
    assert engine.docker("exec", "lbh-exec", "sh", "-c", "exit 4", check=False
                         ).returncode == 4

    def dies() -> list[str]:
        return engine.docker("events", "--since", f"{since:.3f}", "--until",
                             f"{time.time():.3f}", "--filter", "event=exec_die", "--format",
                             "{{.Actor.Attributes.exitCode}} {{.Actor.Attributes.name}}"
                             ).stdout.splitlines()
    assert until(dies, timeout=5, what="exec_die") == ["4 lbh-exec"]


# -- against Docker 20.10 --------------------------------------------------------------------
ORACLE = {
    "lbh-o-ok": ("--health-cmd", "echo ok", *FAST),
    "lbh-o-bad": ("--health-cmd", "echo no; exit 3", "--health-retries", "2", *FAST),
    "lbh-o-slow": ("--health-cmd", "sleep 7", "--health-timeout", "300ms",
                   "--health-retries", "1", *FAST),
    "lbh-o-start": ("--health-cmd", "true"),
    "lbh-o-cmdless": ("--health-retries", "1", *FAST),
    "lbh-o-none": (),
}


def _observe(docker: Callable[..., Any]) -> dict[str, Any]:
    """What a user sees of the ORACLE containers on one engine (timing normalised)."""
    def out(*args: str) -> str:
        data = docker(*args).stdout
        return data.decode() if isinstance(data, bytes) else str(data)

    since = time.time()
    for name, flags in ORACLE.items():
        out("run", "-d", "--network", "none", "--name", name, *flags, "bb:1", "sleep", "60")

    def inspected(name: str) -> dict[str, Any]:
        found: dict[str, Any] = json.loads(out("inspect", name))[0]
        return found

    for name, wanted in (("lbh-o-ok", "healthy"), ("lbh-o-bad", "unhealthy"),
                         ("lbh-o-slow", "unhealthy")):
        until(lambda name=name, wanted=wanted: (inspected(name)["State"].get("Health")
                                                or {}).get("Status") == wanted,
              what=f"{name} {wanted}")
    seen: dict[str, Any] = {}
    for name in ORACLE:
        info = inspected(name)
        record = info["State"].get("Health")
        seen[name] = {
            "config": info["Config"].get("Healthcheck"),
            "health": None if record is None else {
                "keys": sorted(record), "status": record["Status"],
                "streak": min(record["FailingStreak"], 1),
                "results": sorted({(e["ExitCode"], e["Output"]) for e in record["Log"]}),
                "entry keys": sorted({k for e in record["Log"] for k in e})}}
    rows = out("ps", "--format", "{{.Names}}|{{.Status}}").splitlines()
    seen["ps"] = sorted((n, s.rpartition(" (")[2] if s.endswith(")") else "")
                        for n, s in (r.split("|") for r in rows))
    seen["filters"] = {value: sorted(out("ps", "--filter", f"health={value}", "--format",
                                         "{{.Names}}").split())
                       for value in ("starting", "healthy", "unhealthy", "none")}
    events = out("events", "--since", f"{since:.3f}", "--until", f"{time.time():.3f}",
                 "--filter", "container=lbh-o-ok",
                 "--format", "{{.Action}}|{{json .Actor.Attributes}}").splitlines()
    first = [(action, sorted(json.loads(attrs))) for action, attrs in
             (e.split("|", 1) for e in events[2:6])]
    seen["events"] = [events[0].split("|")[0], events[1].split("|")[0], *first]
    out("stop", "-t", "0", "lbh-o-ok")
    seen["stopped"] = inspected("lbh-o-ok")["State"]["Health"]["Status"]
    out("rm", "-f", *ORACLE)
    return seen


def test_what_users_see_matches_docker(engine: Longboatd, tmp_path_factory:
                                       pytest.TempPathFactory, rootfs_template: Path) -> None:
    import tarfile

    from tests.support.dockerd import running

    with running(tmp_path_factory.mktemp("dockerd-health")) as dockerd:
        image = tmp_path_factory.mktemp("image-health") / "rootfs.tar"
        with tarfile.open(image, "w") as tar:
            tar.add(rootfs_template, arcname=".")
        dockerd.docker("import", str(image), "bb:1")
        theirs = _observe(dockerd.docker)
    ours = _observe(engine.docker)
    assert ours == theirs


# -- longboat.core.container state=healthy ---------------------------------------------------
def test_the_collection_waits_until_healthy_or_says_why_not(engine: Longboatd,
                                                            tmp_path: Path) -> None:
    pytest.importorskip("ansible")
    from tests.integration.test_collection_modules import Playbook

    play = Playbook(engine, tmp_path)

    def task(name: str, **options: Any) -> dict[str, Any]:
        return {"longboat.core.container": {
            "name": name, "image": "bb:1", "command": "sleep 120", "stop_timeout": 0,
            "network_mode": "none", "state": "healthy", "healthy_wait_timeout": 30,
            **options}}

    good = task("lbh-ans-ok", healthcheck={"test": "echo fine", "interval": "200ms"})
    first = play([good])[0]
    assert first["changed"] and first["actions"] == ["created", "started"]
    assert first["container"]["State"]["Health"]["Status"] == "healthy"
    again = play([good])[0]       # the same check: no change, healthy at once
    assert again["changed"] is False
    assert again["container"]["State"]["Health"]["Status"] == "healthy"
    results = play([
        task("lbh-ans-bad", healthcheck={"test": "echo down; exit 1", "interval": "200ms",
                                         "retries": 1}),
        task("lbh-ans-none"),
        task("lbh-ans-slow", healthcheck={"test": "true"}, healthy_wait_timeout=1)],
        fail=True)
    assert results[0]["failed"]
    assert results[0]["msg"] == ("container lbh-ans-bad is unhealthy: the last check "
                                 "exited 1: down")
    assert results[1]["failed"]
    assert "lbh-ans-none has no health check to wait for" in results[1]["msg"]
    assert results[2]["failed"]
    assert "was not healthy within 1s (still starting)" in results[2]["msg"]
