"""Security review of the lab: what ``lab up`` leaves on the host is private (the lab's
key 0600, no file or directory below its state that others may write, the node's data
root 0700 and its API socket 0660, sshd's host key 0600), and ``lab exec`` does not hand
the node a way back to the caller's engine. A one-node lab, purged afterwards."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

pytestmark = pytest.mark.integration

LAB = f"lbs{os.getpid() % 100000}"[:9]
SUBNET = f"10.252.{100 + os.getpid() % 100}.0/29"


def longboat(*args: str, check: bool = True, env: dict[str, str] | None = None
             ) -> subprocess.CompletedProcess[str]:
    bindir = str(Path(sys.executable).parent)
    base = {**os.environ, "PATH": f"{bindir}:{os.environ.get('PATH', '/usr/bin:/bin')}"}
    base.pop("LONGBOAT_HOST", None)
    base.pop("DOCKER_HOST", None)
    result = subprocess.run([f"{bindir}/longboat", *args], capture_output=True, text=True,
                            env={**base, **(env or {})}, timeout=180, check=False)
    if check and result.returncode != 0:
        raise AssertionError(f"longboat {' '.join(args)} exited {result.returncode}\n"
                             f"{result.stdout}\n{result.stderr}")
    return result


@pytest.fixture(scope="module")
def lab() -> Iterator[str]:
    try:
        longboat("lab", "up", "--name", LAB, "--nodes", "1", "--subnet", SUBNET, "-q")
        yield LAB
    finally:
        longboat("lab", "down", "--name", LAB, "--purge", "-q", check=False)


def _writable_by_others(top: Path) -> list[str]:
    found = []
    for root, dirs, files in os.walk(top):
        for name in dirs + files:
            path = os.path.join(root, name)
            st = os.lstat(path)
            if stat.S_ISLNK(st.st_mode):
                continue
            if st.st_mode & 0o002 and not (stat.S_ISDIR(st.st_mode) and st.st_mode & 0o1000):
                found.append(path)
    return found


def test_lab_state_is_private(lab: str) -> None:
    state = Path("/var/lib/longboat-lab") / lab
    assert stat.S_IMODE(state.stat().st_mode) == 0o700
    assert state.stat().st_uid == 0
    assert stat.S_IMODE((state / "id_ed25519").stat().st_mode) == 0o600
    host_keys = list(state.glob("*/sshd/ssh_host_*_key"))
    assert host_keys and all(stat.S_IMODE(k.stat().st_mode) == 0o600 for k in host_keys)
    assert _writable_by_others(state) == []
    run_state = Path("/run/longboat-lab") / lab
    assert _writable_by_others(run_state) == []
    assert not Path("/run/longboat-lab").stat().st_mode & 0o022


def test_node_engine_data_root_and_socket(lab: str) -> None:
    out = longboat("lab", "exec", "--name", lab, "1", "--", "stat", "-c", "%a %U %G %n",
                   "/var/lib/longboat", "/run/longboat/longboat.sock").stdout.splitlines()
    data_root, sock = out
    assert data_root.startswith("700 root ")
    assert sock.split()[0] in ("660", "600") and sock.split()[1] == "root"


def test_lab_exec_does_not_name_the_callers_engine(lab: str) -> None:
    out = longboat("lab", "exec", "--name", lab, "1", "--", "env",
                   env={"LONGBOAT_HOST": "unix:///tmp/lbs-callers.sock",
                        "DOCKER_HOST": "unix:///tmp/lbs-callers.sock",
                        "DOCKER_CONTEXT": "lbs-callers", "DOCKER_TLS_VERIFY": "1",
                        "DOCKER_CERT_PATH": "/tmp/lbs-callers-certs"}).stdout
    assert "lbs-callers" not in out
    # and the node's own engine answers the longboat there
    longboat("lab", "exec", "--name", lab, "1", "--", "longboat", "version",
             env={"DOCKER_TLS_VERIFY": "1", "DOCKER_CERT_PATH": "/tmp/lbs-callers-certs"})
    assert f"HOSTNAME={lab}-1" in out.splitlines()
