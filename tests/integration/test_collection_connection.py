"""The longboat.core.longboat connection plugin: a playbook configures a running
container through the engine's API (exec, put and fetch through the archive
endpoints), idempotently."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.engine import Longboatd, busybox_engine

COLLECTION = Path(__file__).resolve().parents[2] / "collection"
# the host's Python, lent to a busybox container read-only (busybox has none)
PYTHON_BINDS = ["-v", "/usr:/usr:ro", "-v", "/usr/lib64:/lib64:ro",
                "-v", "/usr/lib/x86_64-linux-gnu:/lib/x86_64-linux-gnu:ro"]


@pytest.fixture
def engine(tmp_path: Path, rootfs_template: Path) -> Iterator[Longboatd]:
    workdir = tmp_path / "engine"
    workdir.mkdir()
    with busybox_engine(workdir, rootfs_template, name="busybox:latest") as daemon:
        daemon.docker("run", "-d", "--name", "colc-target", *PYTHON_BINDS, "busybox",
                      "sleep", "1000")
        yield daemon


PLAY = [{
    "hosts": "colc-target", "gather_facts": False,
    "vars": {"ansible_connection": "longboat.core.longboat",
             "ansible_python_interpreter": "/usr/bin/python3"},
    "tasks": [
        {"name": "put", "ansible.builtin.copy": {"content": "listen 80\n",
                                                 "dest": "/etc/app.conf", "mode": "0640"},
         "register": "put"},
        {"name": "read back", "ansible.builtin.command": "cat /etc/app.conf",
         "register": "cat", "changed_when": False},
        {"name": "fetch", "ansible.builtin.fetch": {"src": "/etc/app.conf",
                                                    "dest": "{{ fetch_dir }}/", "flat": True}},
        {"name": "record", "ansible.builtin.copy": {
            "content": "{{ {'put': put.changed, 'cat': cat.stdout} | to_json }}",
            "dest": "{{ fetch_dir }}/result.json", "mode": "0644"},
         "delegate_to": "localhost",
         "vars": {"ansible_connection": "local",
                  "ansible_python_interpreter": sys.executable}},
    ]}]


def run(engine: Longboatd, workdir: Path) -> dict[str, object]:
    playbook = workdir / "play.yml"
    playbook.write_text(json.dumps(PLAY))
    env = {**os.environ, "ANSIBLE_COLLECTIONS_PATH": str(COLLECTION),
           "LONGBOAT_HOST": engine.host, "ANSIBLE_HOME": str(workdir / "ansible"),
           "ANSIBLE_LOCAL_TEMP": str(workdir / "tmp")}
    done = subprocess.run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                           "colc-target,", "-e", f"fetch_dir={workdir}", str(playbook)],
                          capture_output=True, text=True, env=env, timeout=120, check=False)
    assert done.returncode == 0, done.stdout + done.stderr
    return dict(json.loads((workdir / "result.json").read_text()))


def test_a_playbook_configures_a_container(engine: Longboatd, tmp_path: Path) -> None:
    first = run(engine, tmp_path)
    assert first == {"put": True, "cat": "listen 80"}
    assert (tmp_path / "app.conf").read_text() == "listen 80\n"
    mode = engine.docker("exec", "colc-target", "stat", "-c", "%a", "/etc/app.conf").stdout
    assert mode.strip() == "640"
    assert run(engine, tmp_path) == {"put": False, "cat": "listen 80"}


def test_a_stopped_container_is_unreachable_with_a_reason(engine: Longboatd, tmp_path: Path
                                                          ) -> None:
    engine.docker("stop", "-t", "0", "colc-target")
    with pytest.raises(AssertionError, match=r"not running.*start it first"):
        run(engine, tmp_path)
