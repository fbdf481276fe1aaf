"""A longboatd of the tests' own: its data root, socket and pidfile under tmp_path.

By default it runs with ``--bridge none`` (no default bridge network on the host: the
"default" network mode is a private namespace with only lo), so that test engines side
by side never touch the host's network. ``netns=True`` runs it (and the container monitor
it starts) in a network namespace of its own, with the full network defaults (bridge
``longboat0``, its nftables table); :meth:`Longboatd.run_in_netns` and
:meth:`Longboatd.in_netns` reach into that namespace (the engine's "host")."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")


class Longboatd:
    def __init__(self, workdir: Path, *extra: str, netns: bool = False) -> None:
        self.workdir = workdir
        self.socket = workdir / "longboat.sock"
        self.data_root = workdir / "data"
        self.exec_root = workdir / "run"
        self.log = workdir / "longboatd.log"
        self.netns = workdir / "engine-netns" / "ns" if netns else None
        if not netns and not {"-b", "--bridge"} & set(extra) and not any(
                e.startswith("--bridge=") for e in extra):
            extra = ("--bridge", "none", *extra)
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
        prefix: list[str] = []
        if self.netns is not None:
            from longboat.network import netns

            if not netns.is_namespace(str(self.netns)):
                netns.create(str(self.netns))
            prefix = ["nsenter", f"--net={self.netns}"]
        with open(self.log, "ab") as log:
            self.process = subprocess.Popen(
                [*prefix, binary, "--data-root", str(self.data_root), "--exec-root",
                 str(self.exec_root), "-H", self.host,
                 "--pidfile", str(self.workdir / "longboatd.pid"),
                 *(["--config-file", str(self._config())]
                   if "--config-file" not in self.extra else []), *self.extra],
                stdout=log, stderr=log)
        end = time.monotonic() + deadline
        # the socket file alone proves nothing: a killed engine's stays behind
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > end:
                if self.process.poll() is None:
                    self.process.kill()
                    self.process.wait()
                self.remove_netns()
                raise AssertionError(f"longboatd did not start:\n{self.log.read_text()}")
            time.sleep(0.02)
        return self

    def answers(self) -> bool:
        """Whether a daemon accepts on the socket and answers ``GET /_ping``."""
        import socket

        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        sock.settimeout(2)
        try:
            sock.connect(str(self.socket))
            sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: longboat\r\nConnection: close"
                         b"\r\n\r\n")
            data = b""
            while b"\r\n" not in data and len(data) < 4096:
                chunk = sock.recv(4096)
                if not chunk:
                    break
                data += chunk
            return data.startswith(b"HTTP/1.1 200")
        except OSError:
            return False
        finally:
            sock.close()

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
            self.remove_netns()

    def remove_netns(self) -> None:
        """The engine's namespace goes (with its links) once the monitor has exited."""
        if self.netns is None:
            return
        from longboat.network import netns

        netns.remove(str(self.netns))

    def run_in_netns(self, argv: list[str], *, check: bool = True, timeout: float = 30,
                     input: bytes | None = None) -> subprocess.CompletedProcess[str]:
        """A program in the engine's network namespace (its "host"), e.g. busybox wget."""
        assert self.netns is not None, "Longboatd(netns=True) only"
        result = subprocess.run(["nsenter", f"--net={self.netns}", *argv],
                                capture_output=True, timeout=timeout, input=input,
                                check=False)
        out = subprocess.CompletedProcess(result.args, result.returncode,
                                          result.stdout.decode(errors="replace"),
                                          result.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise AssertionError(f"{' '.join(argv)} exited {out.returncode} in the engine's "
                                 f"namespace\n{out.stdout}\n{out.stderr}")
        return out

    def in_netns(self, fn: Callable[[], T]) -> T:
        """``fn()`` in a thread inside the engine's network namespace."""
        assert self.netns is not None, "Longboatd(netns=True) only"
        from longboat.network import netns

        return netns.run_in(str(self.netns), fn)

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
                   name: str = "bb:1", netns: bool = False) -> Iterator[Longboatd]:
    """A started longboatd with a busybox image ``name`` imported from ``rootfs``
    (``import_args`` go to ``docker import``, e.g. --change); stopped afterwards."""
    daemon = Longboatd(workdir, netns=netns).start()
    try:
        tar = workdir / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        daemon.docker("import", *import_args, str(tar), name)
        yield daemon
    finally:
        daemon.stop()
