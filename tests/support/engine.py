"""A longboatd of the tests' own: its data root, socket and pidfile under tmp_path."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path


class Longboatd:
    def __init__(self, workdir: Path, *extra: str) -> None:
        self.workdir = workdir
        self.socket = workdir / "longboat.sock"
        self.data_root = workdir / "data"
        self.exec_root = workdir / "run"
        self.log = workdir / "longboatd.log"
        self.extra = extra
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"unix://{self.socket}"

    @staticmethod
    def binary() -> Path:
        return Path(sys.executable).parent / "longboatd"

    def start(self, deadline: float = 20) -> Longboatd:
        binary = str(self.binary())
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [binary, "--data-root", str(self.data_root), "--exec-root",
                 str(self.exec_root), "-H", self.host,
                 "--pidfile", str(self.workdir / "longboatd.pid"),
                 *(["--config-file", str(self._config())]
                   if "--config-file" not in self.extra else []), *self.extra],
                stdout=log, stderr=log)
        end = time.monotonic() + deadline
        while not self.socket.exists():
            if self.process.poll() is not None or time.monotonic() > end:
                raise AssertionError(f"longboatd did not start:\n{self.log.read_text()}")
            time.sleep(0.02)
        return self

    def _config(self) -> Path:
        path = self.workdir / "daemon.json"
        path.write_text("{}")
        return path

    def docker(self, *args: str, check: bool = True, input: bytes | None = None,
               timeout: float = 120) -> subprocess.CompletedProcess[str]:
        env = {**os.environ, "DOCKER_HOST": self.host, "DOCKER_CONFIG":
               str(self.workdir / "docker-config")}
        result = subprocess.run(["docker", *args], capture_output=True, env=env,
                                input=input, timeout=timeout, check=False)
        out = subprocess.CompletedProcess(result.args, result.returncode,
                                          result.stdout.decode(errors="replace"),
                                          result.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise AssertionError(f"docker {' '.join(args)} exited {out.returncode}\n"
                                 f"{out.stdout}\n{out.stderr}")
        return out

    def stop(self, *, monitor: bool = True) -> None:
        """Stop longboatd; with ``monitor``, also remove every container and stop the
        container monitor (which otherwise outlives the daemon, by design)."""
        if monitor and self.process is not None and self.process.poll() is None:
            ids = self.docker("ps", "-aq", check=False).stdout.split()
            if ids:
                self.docker("rm", "-f", *ids, check=False)
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if monitor:
            self.stop_monitor()

    def stop_monitor(self) -> None:
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.connect(str(self.exec_root / "monitor.sock"))
            sock.sendall(b'{"op": "shutdown", "force": true}\n')
            sock.recv(4096)
        except OSError:
            return
        finally:
            sock.close()

    def __enter__(self) -> Longboatd:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


@contextlib.contextmanager
def busybox_engine(workdir: Path, rootfs: Path, *import_args: str,
                   name: str = "bb:1") -> Iterator[Longboatd]:
    """A started longboatd with a busybox image ``name`` imported from ``rootfs``
    (``import_args`` go to ``docker import``, e.g. --change); stopped afterwards."""
    daemon = Longboatd(workdir).start()
    try:
        tar = workdir / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        daemon.docker("import", *import_args, str(tar), name)
        yield daemon
    finally:
        daemon.stop()
