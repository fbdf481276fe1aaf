"""The session's leak check fails a run that leaves host state behind, of every kind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
import uuid
from pathlib import Path

import pytest

from longboat.linux import libc

pytestmark = pytest.mark.integration
TOP = Path(__file__).resolve().parents[2]


LEAKY = {
    "process": """
        import os, subprocess
        def test_leaks():
            # double fork: the grandchild is orphaned, and the session reaps orphans
            subprocess.run(["sh", "-c", "sleep 120 >/dev/null 2>&1 &"], check=True)
    """,
    "mount": """
        import os
        from longboat.linux import libc
        def test_leaks():
            os.makedirs("{where}", exist_ok=True)
            libc.mount("tmpfs", "{where}", "tmpfs", 0, "size=1m")
    """,
    "cgroup": """
        import os
        def test_leaks():
            os.mkdir("/sys/fs/cgroup/pids/{name}")
    """,
    "link": """
        from pyroute2 import IPRoute
        def test_leaks():
            with IPRoute() as ip:
                ip.link("add", ifname="{short}", kind="bridge")
    """,
    "network namespace": """
        from pyroute2 import netns
        def test_leaks():
            netns.create("{name}")
    """,
}


@pytest.mark.parametrize("kind", list(LEAKY))
def test_a_leaking_run_fails(kind, tmp_path):
    name = f"lbleak-{uuid.uuid4().hex[:8]}"
    short = f"lbk{uuid.uuid4().hex[:8]}"
    where = str(tmp_path / "mnt")
    test_file = tmp_path / "test_leaky.py"
    test_file.write_text(textwrap.dedent(LEAKY[kind]).format(name=name, short=short,
                                                             where=where))
    try:
        result = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.leakcheck",
             "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test_file)],
            cwd=TOP, capture_output=True, text=True, timeout=120, check=False)
    finally:
        _clean(kind, name, short, where)
    assert "1 passed" in result.stdout, result.stdout + result.stderr
    assert result.returncode == 1, result.stdout
    assert "LEAK CHECK FAILED" in result.stdout
    assert kind in result.stdout


def test_a_clean_run_passes(tmp_path):
    test_file = tmp_path / "test_clean.py"
    test_file.write_text("def test_nothing():\n    assert True\n")
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "tests.support.leakcheck",
         "-p", "no:cacheprovider", "--rootdir", str(tmp_path), str(test_file)],
        cwd=TOP, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "LEAK CHECK FAILED" not in result.stdout


def _clean(kind: str, name: str, short: str, where: str) -> None:
    if kind == "process":
        # the leaked sleep was reparented to the inner pytest, then to us or init; find
        # it by its command line
        for pid in os.listdir("/proc"):
            if pid.isdigit():
                try:
                    cmd = Path(f"/proc/{pid}/cmdline").read_bytes()
                except OSError:
                    continue
                if cmd == b"sleep\x00120\x00":
                    os.kill(int(pid), 9)
    elif kind == "mount":
        try:
            libc.umount2(where, libc.MNT_DETACH)
        except OSError:
            pass
    elif kind == "cgroup":
        try:
            os.rmdir(f"/sys/fs/cgroup/pids/{name}")
        except FileNotFoundError:
            pass
    elif kind == "link":
        from pyroute2 import IPRoute

        with IPRoute() as ip:
            for index in ip.link_lookup(ifname=short):
                ip.link("del", index=index)
    else:
        from pyroute2 import netns

        if name in netns.listnetns():
            netns.remove(name)
