"""An sshd of the tests' own on loopback: its host key, one authorized key, its own
config and pid file under a temporary directory, and an ssh client configuration
(HOME/.ssh/config and known_hosts) that reaches it."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Sshd:
    def __init__(self, workdir: Path, forced_command: str | None = None) -> None:
        self.workdir = workdir
        self.home = workdir / "home"
        self.port = free_port()
        self.forced_command = forced_command
        self.process: subprocess.Popen[bytes] | None = None
        self.made_privsep = False

    def start(self, alias: str = "lbtest") -> Sshd:
        sshd = shutil.which("sshd") or "/usr/sbin/sshd"
        if not os.path.exists(sshd):
            pytest.skip("openssh-server is not installed")
        w = self.workdir
        for name in ("host_key", "id_ed25519"):
            subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f",
                            str(w / name)], check=True)
        user_key = (w / "id_ed25519.pub").read_text().strip()
        prefix = f'command="{self.forced_command}",no-pty ' if self.forced_command else ""
        (w / "authorized_keys").write_text(prefix + user_key + "\n")
        (w / "sshd_config").write_text(
            f"Port {self.port}\nListenAddress 127.0.0.1\nHostKey {w / 'host_key'}\n"
            f"AuthorizedKeysFile {w / 'authorized_keys'}\nPermitRootLogin prohibit-password\n"
            "PasswordAuthentication no\nKbdInteractiveAuthentication no\nUsePAM no\n"
            f"StrictModes no\nPidFile {w / 'sshd.pid'}\nAllowStreamLocalForwarding yes\n")
        if not os.path.isdir("/run/sshd"):      # sshd's privilege separation directory
            os.makedirs("/run/sshd", mode=0o755)
            self.made_privsep = True
        self.process = subprocess.Popen([sshd, "-D", "-e", "-f", str(w / "sshd_config")],
                                        stderr=open(w / "sshd.log", "wb"))  # noqa: SIM115
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                if self.process.poll() is not None or time.monotonic() > deadline:
                    raise AssertionError((w / "sshd.log").read_text()) from None
                time.sleep(0.05)
        ssh = self.home / ".ssh"
        ssh.mkdir(parents=True)
        (ssh / "config").write_text(f"Host {alias}\n  HostName 127.0.0.1\n  Port {self.port}\n"
                                    f"  User root\n  IdentityFile {w / 'id_ed25519'}\n")
        host_key = (w / "host_key.pub").read_text().split()
        (ssh / "known_hosts").write_text(f"[127.0.0.1]:{self.port} {host_key[0]} "
                                         f"{host_key[1]}\n")
        return self

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        if self.made_privsep:
            shutil.rmtree("/run/sshd", ignore_errors=True)
