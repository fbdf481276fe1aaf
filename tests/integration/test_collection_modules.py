"""longboat.core modules against a real test engine, through ansible-playbook: each
change is made once, a second run reports no change, check mode changes nothing, and
mistakes fail with a message that says what to fix."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.engine import Longboatd, busybox_engine

COLLECTION = Path(__file__).resolve().parents[2] / "collection"


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    workdir = tmp_path_factory.mktemp("colmod")
    with busybox_engine(workdir, rootfs_template, "--change", 'CMD ["sh"]',
                        name="busybox:latest") as daemon:
        yield daemon


class Playbook:
    def __init__(self, engine: Longboatd, workdir: Path) -> None:
        self.engine = engine
        self.workdir = workdir
        self.count = 0

    def __call__(self, tasks: list[dict[str, Any]], *, check: bool = False,
                 diff: bool = False, fail: bool = False) -> list[dict[str, Any]]:
        """Run ``tasks`` on localhost; each task's result (the json callback's)."""
        self.count += 1
        path = self.workdir / f"play{self.count}.yml"
        out = self.workdir / f"play{self.count}.json"
        registered = [dict(task, register=f"r{i}", ignore_errors=True)
                      for i, task in enumerate(tasks)]
        names = ", ".join(f"r{i}" for i in range(len(tasks)))
        registered.append({"ansible.builtin.copy": {
            "content": "{{ [" + names + "] | to_json }}", "dest": str(out)},
            "check_mode": False, "diff": False})
        play = [{"hosts": "localhost", "gather_facts": False,
                 "module_defaults": {"group/longboat.core.longboat": {
                     "engine_host": self.engine.host}},
                 "tasks": registered}]
        path.write_text(json.dumps(play))
        env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION),
               "ANSIBLE_LOCALHOST_WARNING": "false",
               "ANSIBLE_INVENTORY_UNPARSED_WARNING": "false",
               "ANSIBLE_PYTHON_INTERPRETER": sys.executable,
               "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"),
               "ANSIBLE_HOME": str(self.workdir / "ansible")}
        command = [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                   "localhost,", "-c", "local", str(path)]
        if check:
            command.append("--check")
        if diff:
            command.append("--diff")
        done = subprocess.run(command, capture_output=True, text=True, env=env,
                              timeout=240, check=False)
        if done.returncode != 0 or not out.exists():
            raise AssertionError(f"ansible-playbook:\n{done.stdout}\n{done.stderr}")
        results: list[dict[str, Any]] = json.loads(out.read_text())
        failed = any(r.get("failed") for r in results)
        assert failed == fail, json.dumps(results, indent=1)[:6000]
        return results


@pytest.fixture
def play(engine: Longboatd, tmp_path: Path) -> Playbook:
    return Playbook(engine, tmp_path)


def container(**options: Any) -> dict[str, Any]:
    return {"longboat.core.container": {"name": "colt-web", "image": "busybox",
                                        "command": "sleep 1000", "stop_timeout": 1,
                                        **options}}


def test_container_lifecycle_is_idempotent(play: Playbook, engine: Longboatd) -> None:
    wanted = container(env={"GREETING": "hello"}, labels={"role": "web"},
                       restart_policy="unless-stopped", memory="64m")
    try:
        first = play([wanted])[0]
        assert first["changed"] and first["actions"] == ["created", "started"]
        cid = first["container"]["Id"]
        assert first["container"]["State"]["Running"]
        assert play([wanted])[0]["changed"] is False

        # check mode: a change is reported, nothing is done
        changed = container(env={"GREETING": "bye"}, labels={"role": "web"},
                            restart_policy="unless-stopped", memory="64m")
        checked = play([changed], check=True, diff=True)[0]
        assert checked["changed"]
        assert [d["parameter"] for d in checked["differences"]] == ["env"]
        assert checked["diff"]["before"]["env"]["GREETING"] == "hello"
        assert checked["diff"]["after"]["env"]["GREETING"] == "bye"
        inspect = json.loads(engine.docker("inspect", "colt-web").stdout)[0]
        assert inspect["Id"] == cid

        # applied: recreated, then stable
        applied = play([changed])[0]
        assert applied["changed"] and applied["container"]["Id"] != cid
        assert play([changed])[0]["changed"] is False
        # ignored by comparisons: no recreate
        relaxed = container(env={"GREETING": "other"}, comparisons={"env": "ignore"})
        assert play([relaxed])[0]["changed"] is False

        # exec and info
        results = play([
            {"longboat.core.container_exec": {"container": "colt-web",
                                              "command": "sh -c 'echo $GREETING'"}},
            {"longboat.core.container_info": {"name": "colt-web"}},
            {"longboat.core.container_info": {"name": "colt-nothing"}}])
        assert results[0]["stdout"] == "bye" and results[0]["rc"] == 0
        assert results[1]["exists"] and results[1]["container"]["Name"] == "/colt-web"
        assert results[2]["exists"] is False and results[2]["changed"] is False

        # stopped, in check mode first
        stopped = container(state="stopped", env={"GREETING": "bye"},
                            labels={"role": "web"}, restart_policy="unless-stopped",
                            memory="64m")
        assert play([stopped], check=True)[0]["changed"]
        assert json.loads(engine.docker("inspect", "colt-web").stdout)[0]["State"]["Running"]
        assert play([stopped])[0]["actions"] == ["stopped"]
        assert play([stopped])[0]["changed"] is False
        assert play([container(state="started", env={"GREETING": "bye"},
                               labels={"role": "web"}, restart_policy="unless-stopped",
                               memory="64m")])[0]["actions"] == ["started"]
    finally:
        gone = {"longboat.core.container": {"name": "colt-web", "state": "absent"}}
        assert play([gone], check=True)[0]["changed"] in (True, False)
        play([gone])
        assert play([gone])[0]["changed"] is False
    assert engine.docker("inspect", "colt-web", check=False).returncode != 0


def test_mistakes_fail_with_what_to_fix(play: Playbook) -> None:
    results = play([{"longboat.core.container": {"name": "colt-x", "image": "nope:1",
                                                 "pull": "never"}}], fail=True)
    assert "pull is 'never'" in results[0]["msg"]
    results = play([container(name="colt-y", env={"DEBUG": True})], fail=True)
    assert "quote it" in results[0]["msg"]
    results = play([container(name="colt-z", comparisons={"colour": "strict"})], fail=True)
    assert "unknown option 'colour'" in results[0]["msg"]
    results = play([{"longboat.core.container": {"name": "colt-w", "state": "started"}}],
                   fail=True)
    assert "set image" in results[0]["msg"]


def test_unreachable_engine_says_where_it_looked(play: Playbook, tmp_path: Path) -> None:
    task = {"longboat.core.host_info": {"engine_host": f"unix://{tmp_path}/none.sock"}}
    results = play([task], fail=True)
    assert "none.sock" in results[0]["msg"] and "engine_host" in results[0]["msg"]


def test_image_tag_and_absent_are_idempotent(play: Playbook, engine: Longboatd) -> None:
    tag = {"longboat.core.image": {"name": "busybox", "source": "local",
                                   "repository": "colt/bb:v1"}}
    try:
        assert play([tag], check=True)[0]["changed"]
        assert engine.docker("image", "inspect", "colt/bb:v1", check=False).returncode != 0
        first = play([tag])[0]
        assert first["actions"] == ["tagged colt/bb:v1"]
        assert play([tag])[0]["changed"] is False
        info = play([{"longboat.core.image_info": {"name": ["colt/bb:v1", "colt/none"]}}])[0]
        assert len(info["images"]) == 1
        assert "colt/bb:v1" in info["images"][0]["RepoTags"]
    finally:
        gone = {"longboat.core.image": {"name": "colt/bb", "tag": "v1", "state": "absent"}}
        play([gone])
        assert play([gone])[0]["changed"] is False


def test_image_load_from_an_archive(play: Playbook, engine: Longboatd, tmp_path: Path
                                    ) -> None:
    archive = tmp_path / "bb.tar"
    engine.docker("tag", "busybox:latest", "colt/loaded:1")
    engine.docker("save", "-o", str(archive), "colt/loaded:1")
    engine.docker("rmi", "colt/loaded:1")
    task = {"longboat.core.image": {"name": "colt/loaded:1", "source": "load",
                                    "load_path": str(archive)}}
    try:
        assert play([task])[0]["actions"] == ["loaded colt/loaded:1"]
        assert play([task])[0]["changed"] is False
        forced = {"longboat.core.image": {**task["longboat.core.image"],
                                          "force_source": True}}
        assert play([forced])[0]["changed"] is False     # the same image again
    finally:
        engine.docker("rmi", "colt/loaded:1", check=False)


def _has_api(engine: Longboatd, path: str) -> bool:
    result = subprocess.run(["curl", "-s", "--unix-socket", str(engine.socket),
                             f"http://x/v1.41{path}"], capture_output=True, text=True,
                            check=False)
    return "page not found" not in result.stdout


def test_networks_and_volumes(play: Playbook, engine: Longboatd) -> None:
    if not _has_api(engine, "/networks") or not _has_api(engine, "/volumes"):
        pytest.skip("this engine has no network or volume API yet")
    network = {"longboat.core.network": {"name": "colt-net", "internal": True,
                                         "labels": {"a": "1"}}}
    volume = {"longboat.core.volume": {"name": "colt-vol", "labels": {"b": "2"}}}
    try:
        first = play([network, volume])
        assert [r["changed"] for r in first] == [True, True]
        again = play([network, volume])
        assert [r["changed"] for r in again] == [False, False]
        info = play([{"longboat.core.network_info": {"name": "colt-net"}},
                     {"longboat.core.volume_info": {"name": "colt-vol"}}])
        assert info[0]["network"]["Internal"] is True
        assert info[1]["volume"]["Labels"] == {"b": "2"}
        changed = {"longboat.core.network": {"name": "colt-net", "internal": False}}
        assert play([changed], check=True)[0]["changed"]
        assert play([changed])[0]["actions"] == ["recreated: internal"]
    finally:
        play([{"longboat.core.network": {"name": "colt-net", "state": "absent"}},
              {"longboat.core.volume": {"name": "colt-vol", "state": "absent"}}])


def test_image_build_from_a_context(play: Playbook, engine: Longboatd, tmp_path: Path
                                    ) -> None:
    if not _has_api(engine, "/build"):
        pytest.skip("this engine has no builder yet")
    context = tmp_path / "context"
    context.mkdir()
    (context / "Dockerfile").write_text(
        "FROM busybox:latest AS base\nARG GREETING=hello\n"
        "RUN echo $GREETING > /greeting\nFROM base AS final\nLABEL stage=final\n")
    (context / "junk.log").write_text("not sent")
    (context / ".dockerignore").write_text("*.log\n")
    task = {"longboat.core.image": {"name": "colt/built:1", "source": "build",
                                    "build": {"path": str(context),
                                              "args": {"GREETING": "ahoy"},
                                              "target": "base"}}}
    try:
        first = play([task])[0]
        assert first["actions"] == ["built colt/built:1"], first
        assert play([task])[0]["changed"] is False
        out = engine.docker("run", "--rm", "colt/built:1", "cat", "/greeting").stdout
        assert out.strip() == "ahoy"
        forced = {"longboat.core.image": {**task["longboat.core.image"],
                                          "force_source": True}}
        assert play([forced])[0]["changed"] is False       # cached: the same image
        missing = {"longboat.core.image": {"name": "colt/built:2", "source": "build",
                                           "build": {"path": str(tmp_path / "nothing")}}}
        assert "is not a directory" in play([missing], fail=True)[0]["msg"]
    finally:
        engine.docker("rmi", "colt/built:1", check=False)
