"""A real Docker 20.10 engine for oracle tests and benches (Debian's ``docker.io``).

:class:`Dockerd` starts ``dockerd`` in a fresh network namespace (no iptables rules, links
or bridges on the host; ``bridge=True`` gives it its default bridge and iptables rules
in there) and a private mount namespace (its overlay and netns mounts die
with it), with its data, exec root, socket, pid file and trust key under a directory of
the caller's; a tmpfs on ``/run`` in that namespace takes the state dockerd keeps in
fixed places. :meth:`Dockerd.stop` stops it and kills whatever is left in its network
namespace (containerd, shims), lazily unmounts anything of its that reached our mount
namespace and removes its cgroups. :func:`running` is the pytest side: install, start
(skip with the reason when Docker cannot run here), always stop.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest


class Dockerd:
    """``bridge=True``: dockerd's own defaults inside its namespace (the ``docker0``
    bridge, iptables NAT and isolation rules), so that ``docker run`` pays for the
    default network as a user's does; by default no bridge and no iptables."""

    def __init__(self, base: Path, *, bridge: bool = False) -> None:
        self.base = base
        self.bridge = bridge
        self.sock = base / "docker.sock"
        self.env = {**os.environ, "DOCKER_HOST": f"unix://{self.sock}"}
        self.cgroup_parent = f"longboat-test-docker-{uuid.uuid4().hex[:8]}"
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = base / "dockerd.log"

    @property
    def pid(self) -> int:
        """dockerd's pid (unshare and sh exec into it): its namespaces are /proc/<pid>/ns."""
        assert self.proc is not None
        return self.proc.pid

    def docker(self, *args: str, timeout: float = 120, **kw: Any) -> \
            subprocess.CompletedProcess[bytes]:
        kw.setdefault("env", self.env)
        result = subprocess.run([docker_cli(), *args], capture_output=True, timeout=timeout,
                                **kw)
        if result.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {result.returncode}: "
                                 f"{result.stderr.decode()}")
        return result

    def start(self) -> None:
        for d in ("data", "exec"):
            (self.base / d).mkdir()
        # 20.10 still makes a trust key, by default in the host's /etc/docker
        (self.base / "daemon.json").write_text(json.dumps(
            {"deprecated-key-path": str(self.base / "key.json")}))
        # unshare: a fresh network namespace (no iptables or links on the host) and a
        # private mount namespace, so its overlay and netns mounts die with it; a tmpfs
        # on /run there takes the state dockerd keeps in fixed places (/run/docker/plugins)
        cmd = ["unshare", "--net", "--mount", "--propagation", "private", "sh", "-c",
               'mount -t tmpfs -o mode=0755 longboat-test-run /run && exec "$@"', "sh",
               "dockerd",
               "--config-file", str(self.base / "daemon.json"),
               "--data-root", str(self.base / "data"), "--exec-root", str(self.base / "exec"),
               "--pidfile", str(self.base / "docker.pid"), "-H", f"unix://{self.sock}",
               *([] if self.bridge else ["--iptables=false", "--ip-masq=false",
                                         "--bridge=none"]),
               "--ip6tables=false", "--userland-proxy=false",
               "--cgroup-parent", "/" + self.cgroup_parent,
               "--exec-opt", "native.cgroupdriver=cgroupfs", "--log-level", "warn"]
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                         start_new_session=True)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"dockerd exited {self.proc.returncode}: "
                                   f"{self.log.read_text()[-2000:]}")
            if self.sock.exists() and subprocess.run(
                    [docker_cli(), "version"], env=self.env, capture_output=True,
                    timeout=30).returncode == 0:
                return
            time.sleep(0.2)
        raise RuntimeError(f"dockerd did not answer within 60s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.proc is None:
            return
        netns = _netns(self.proc.pid)
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(30)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        # containerd and any shim it left: every process still in dockerd's namespace
        if netns is not None and netns != _netns(os.getpid()):
            deadline = time.monotonic() + 10
            while (left := [p for p in _pids() if _netns(p) == netns]) \
                    and time.monotonic() < deadline:
                for pid in left:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
                _reap()
                time.sleep(0.05)
        _reap()
        # its mounts lived in its private mount namespace; should any have reached ours
        with open("/proc/self/mountinfo") as f:
            points = [line.split()[4] for line in f]
        for point in sorted((p for p in points if p.startswith(str(self.base))),
                            key=len, reverse=True):
            subprocess.run(["umount", "-l", point], check=False)
        for top in Path("/sys/fs/cgroup").iterdir():
            for d in sorted(top.glob(f"{self.cgroup_parent}*/**/"),
                            key=lambda p: len(p.parts), reverse=True):
                if d.is_dir():
                    try:
                        d.rmdir()
                    except OSError:
                        pass
            # dockerd makes its own cgroup parents in some setups
            for d in (top / self.cgroup_parent,):
                if d.is_dir():
                    d.rmdir()
        self.proc = None


def _pids() -> list[int]:
    return [int(p) for p in os.listdir("/proc") if p.isdigit()]


def _netns(pid: int) -> str | None:
    try:
        return os.readlink(f"/proc/{pid}/ns/net")
    except OSError:
        return None


def _reap() -> None:
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
    except ChildProcessError:
        pass


def docker_cli() -> str:
    """Debian's 20.10 client when installed beside dockerd, else whatever docker is."""
    return "/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker"


def install_docker() -> str | None:
    """None when dockerd is there (installing Debian's docker.io if needed), else why not."""
    if shutil.which("dockerd"):
        return None
    try:
        result = subprocess.run(["apt-get", "install", "-y", "--no-install-recommends",
                                 "docker.io"], capture_output=True, timeout=600,
                                env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"})
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"installing docker.io failed: {exc}"
    if result.returncode != 0 or not shutil.which("dockerd"):
        return f"installing docker.io failed: {result.stderr.decode()[-500:]}"
    return None


@contextmanager
def running(base: Path) -> Iterator[Dockerd]:
    """A started :class:`Dockerd` under ``base`` for the block (pytest skip if Docker
    cannot be installed or started here); stopped whatever happens."""
    reason = install_docker()
    if reason:
        pytest.skip(f"no Docker engine to test against: {reason}")
    daemon = Dockerd(base)
    try:
        try:
            daemon.start()
        except RuntimeError as exc:
            pytest.skip(f"dockerd cannot start here: {exc}")
        yield daemon
    finally:
        daemon.stop()
