"""Usage errors of the networking, volume, port and build commands: what our CLI prints
and its exit code are docker 20.10's, word for word (with "docker" read as "longboat").
Neither CLI reaches a daemon for these (the socket does not exist)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.dockerd import docker_cli
from tests.support.engine import busybox_engine

pytestmark = pytest.mark.integration
LONGBOAT = str(Path(sys.executable).parent / "longboat")


def _run(argv: list[str], tmp_path: Path) -> tuple[int, str]:
    env = {**os.environ, "DOCKER_HOST": "unix:///nonexistent/lbu.sock",
           "LONGBOAT_HOST": "unix:///nonexistent/lbu.sock",
           "DOCKER_CONFIG": str(tmp_path / "docker-config")}
    done = subprocess.run(argv, capture_output=True, text=True, env=env, timeout=30,
                          stdin=subprocess.DEVNULL, check=False)
    return done.returncode, done.stdout + done.stderr


@pytest.mark.parametrize("words", [
    "network create", "network connect lbu-n", "network rm", "network ls lbu-x",
    "network inspect", "network disconnect", "network prune lbu-x",
    "network create --nosuch lbu-n", "network ls --bogus",
    "volume create lbu-a lbu-b", "volume rm", "volume inspect", "volume ls lbu-x",
    "volume prune lbu-x", "volume ls -x",
    "port", "port lbu-a 80 lbu-c", "build --bogus .",
    "port --bogus", "network create -x", "volume rm --force --zz",
    "network ls --filter", "network ls -f", "build --cpu-shares x .",
    "build --cpu-period 1.5 .", "network create --subnet",
])
def test_usage_errors_as_docker(words: str, tmp_path: Path) -> None:
    if docker_cli() == "docker":
        pytest.skip("no docker 20.10 CLI (Debian's docker.io) to compare with")
    code, text = _run([docker_cli(), *words.split()], tmp_path)
    ours = _run([LONGBOAT, *words.split()], tmp_path)
    assert ours == (code, text.replace("docker", "longboat"))


def test_system_df_verbose_lists_containers_and_volumes(tmp_path: Path,
                                                        rootfs_template: Path) -> None:
    if docker_cli() == "docker":
        pytest.skip("no docker 20.10 CLI (Debian's docker.io) to compare with")
    with busybox_engine(tmp_path, rootfs_template) as engine:
        engine.docker("volume", "create", "lbu-df")
        engine.docker("volume", "create", "lbu-df-unused")
        engine.docker("create", "--name", "lbu-dfc", "-v", "lbu-df:/data", "bb:1", "true")
        env = {**os.environ, "LONGBOAT_HOST": engine.host}
        ours = subprocess.run([LONGBOAT, "system", "df", "-v"], capture_output=True,
                              text=True, env=env, check=True).stdout
        theirs = engine.docker("system", "df", "-v").stdout

        def below_images(text: str) -> str:
            return text.split("Containers space usage:")[1]

        assert below_images(ours) == below_images(theirs)
        containers = ours.split("Containers space usage:")[1]
        assert "lbu-dfc" in containers and '"true"' in containers
        assert "\nlbu-df          1         0B\n" in ours
        assert "\nlbu-df-unused   0         0B\n" in ours
