"""A longboatd killed (SIGKILL) in the middle of a build leaves its build directory
(in /dev/shm), the RUN container (kept running by the monitor), its snapshot, and,
mid-COPY, a build snapshot mounted in the build directory. The next start removes all
of it (containers first, then mounts detached, then the directory, no symlink
followed), and builds work again. The test engine's start waits for the new daemon to
answer, though the killed one's socket file is still there."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import pytest
from tests.support.engine import busybox_engine

from longboat.build.context import SHM, owner_tag
from longboat.image.snapshot import Snapshotter
from longboat.volume.local import mounts_under

pytestmark = pytest.mark.integration


def _leftovers(data_root: Path) -> list[str]:
    tmp = data_root / "tmp"
    tag = f"longboat-build-{owner_tag(str(tmp))}-"
    found = [str(tmp / n) for n in os.listdir(tmp) if n.startswith("longboat-build-")] \
        if tmp.exists() else []
    return found + [os.path.join(SHM, n) for n in os.listdir(SHM) if n.startswith(tag)]


def test_a_build_killed_mid_run_leaves_nothing_after_the_next_start(
        tmp_path: Path, rootfs_template: Path) -> None:
    context = tmp_path / "ctx"
    context.mkdir()
    (context / "f").write_text("lbo\n")
    (context / "Dockerfile").write_text(
        "FROM bb:1\nCOPY f /f\nRUN echo lbo-started; sleep 300\n")
    (tmp_path / "engine").mkdir()
    with busybox_engine(tmp_path / "engine", rootfs_template) as daemon:
        env = {**os.environ, "DOCKER_HOST": daemon.host, "DOCKER_BUILDKIT": "0",
               "DOCKER_CONFIG": str(daemon.workdir / "docker-config")}
        build = subprocess.Popen(["docker", "build", "-t", "lbo-killed", str(context)],
                                 stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env)
        try:
            deadline = time.monotonic() + 120
            while not daemon.docker("ps", "-q").stdout.split():
                assert build.poll() is None, build.stdout.read() if build.stdout else ""
                assert time.monotonic() < deadline, "the RUN container never ran"
                time.sleep(0.1)
            assert daemon.process is not None
            os.kill(daemon.process.pid, signal.SIGKILL)
            daemon.process.wait()
        finally:
            build.kill()
            build.wait()
        assert daemon.socket.exists()           # the dead engine's socket file stays
        left = _leftovers(daemon.data_root)
        assert len(left) == 1, left
        snapshots = Snapshotter(str(daemon.data_root / "snapshots"))
        assert snapshots.keys(), "the RUN container's snapshot"
        # as if it had died mid-COPY too: a build snapshot mounted in its directory
        snapshots.prepare("build-lbofake", [])
        target = os.path.join(left[0], "mnt9")
        os.mkdir(target)
        snapshots.mounts("build-lbofake").mount(target)
        assert mounts_under(left[0])

        daemon.start()
        assert daemon.answers()
        assert daemon.docker("ps", "-aq").stdout.split() == []
        assert _leftovers(daemon.data_root) == []
        assert mounts_under(left[0]) == []
        assert mounts_under(str(daemon.data_root / "snapshots")) == []
        assert Snapshotter(str(daemon.data_root / "snapshots")).keys() == []
        ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
        assert "sleep 300" not in ps

        (context / "Dockerfile").write_text("FROM bb:1\nCOPY f /f\nRUN cat /f\n")
        done = subprocess.run(["docker", "build", "--rm", "-t", "lbo-after", str(context)],
                              capture_output=True, text=True, env=env, timeout=180)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "lbo" in done.stdout
        assert _leftovers(daemon.data_root) == []
        assert daemon.docker("ps", "-aq").stdout.split() == []
