"""playbooks/engine.yml on a 3-node lab: the role installs and runs an engine on each
node (testinfra checks them), a second run changes nothing, and the lab goes away
without a trace.

:class:`EngineLab` is also what tests/bench/ansible_engine_rerun.py measures with."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
RECAP = re.compile(r"^(\S+)\s+:\s+ok=(\d+)\s+changed=(\d+)\s+unreachable=(\d+)\s+"
                   r"failed=(\d+)", re.M)


class EngineLab:
    """A lab of ``nodes`` hosts and what playbooks/engine.yml needs to run on it
    without touching anything of the host's: its own venv path, wheel cache and a frozen
    copy of the source (so edits to the checkout meanwhile are not a change)."""

    def __init__(self, name: str, subnet: str, workdir: Path, nodes: int = 3) -> None:
        self.name = name
        self.subnet = subnet
        self.nodes = nodes
        self.workdir = workdir
        self.venv = Path(f"/opt/{name}-longboat")
        self.inventory = Path(f"/var/lib/longboat-lab/{name}/inventory.yml")
        self.ssh_config = Path(f"/var/lib/longboat-lab/{name}/ssh_config")
        self.source = workdir / "source"

    def hosts(self) -> list[str]:
        return [f"{self.name}-{i}" for i in range(1, self.nodes + 1)]

    def lab(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        done = subprocess.run([str(BIN / "longboat"), "lab", *args], capture_output=True,
                              text=True, timeout=180, check=False)
        if check and done.returncode != 0:
            raise AssertionError(f"longboat lab {' '.join(args)}: {done.stdout}{done.stderr}")
        return done

    def up(self) -> None:
        self.source.mkdir(parents=True)
        shutil.copytree(ROOT / "runtime", self.source / "runtime",
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        for name in ("pyproject.toml", "README.md"):
            shutil.copy(ROOT / name, self.source / name)
        self.lab("up", "--name", self.name, "--nodes", str(self.nodes), "--subnet",
                 self.subnet, "-q")

    def down(self) -> None:
        self.lab("down", "--name", self.name, "--purge", "-q")
        shutil.rmtree(self.venv, ignore_errors=True)

    def playbook(self) -> tuple[dict[str, tuple[int, int, int, int]], float, str]:
        """Run playbooks/engine.yml: per host (ok, changed, unreachable, failed), the
        wall time, the output."""
        env = {**os.environ, "ANSIBLE_HOME": str(self.workdir / "ansible"),
               "ANSIBLE_LOCAL_TEMP": str(self.workdir / "tmp"), "ANSIBLE_FORCE_COLOR": "0"}
        env.pop("LONGBOAT_HOST", None)
        env.pop("DOCKER_HOST", None)
        start = time.monotonic()
        done = subprocess.run(
            [str(BIN / "ansible-playbook"), "-i", str(self.inventory),
             str(ROOT / "playbooks" / "engine.yml"),
             "-e", f"longboat_source={self.source}", "-e", f"longboat_venv={self.venv}",
             "-e", f"longboat_controller_cache={self.workdir / 'cache'}",
             "-e", f"longboat_wheel_cache={self.workdir / 'wheels'}"],
            capture_output=True, text=True, env=env, timeout=600, check=False, cwd=ROOT)
        elapsed = time.monotonic() - start
        output = done.stdout + done.stderr
        assert done.returncode == 0, output
        recap = {m[0]: (int(m[1]), int(m[2]), int(m[3]), int(m[4]))
                 for m in RECAP.findall(output)}
        assert sorted(recap) == self.hosts(), output
        return recap, elapsed, output

    def leftovers(self) -> list[str]:
        """What of the lab still exists (nothing, after down)."""
        found = []
        if self.name in self.lab("ls", "-q", check=False).stdout.split():
            found.append(f"lab {self.name} listed")
        links = subprocess.run(["ip", "-o", "link"], capture_output=True, text=True,
                               check=False).stdout
        found += [f"link {m}" for m in re.findall(rf"\b(lb-{self.name}\S*?)[:@]", links)]
        for path in (Path(f"/run/longboat-lab/{self.name}"),
                     Path(f"/var/lib/longboat-lab/{self.name}"),
                     Path(f"/sys/fs/cgroup/longboat-lab/{self.name}"), self.venv):
            if path.exists():
                found.append(str(path))
        return found


@pytest.fixture
def lab(tmp_path: Path) -> Iterator[EngineLab]:
    lab = EngineLab(f"lbc{os.getpid() % 1000000}", "10.252.1.0/24", tmp_path)
    try:
        lab.up()
        yield lab
    finally:
        lab.down()
    assert lab.leftovers() == []


@pytest.mark.timeout(900)
def test_engine_playbook_on_a_three_node_lab(lab: EngineLab) -> None:
    import testinfra  # type: ignore[import-untyped]

    first, elapsed, output = lab.playbook()
    print(f"first run: {elapsed:.1f} s")
    assert all(failed == 0 and unreachable == 0
               for _ok, _changed, unreachable, failed in first.values()), output
    assert any(changed for _ok, changed, _u, _f in first.values()), output

    warnings.filterwarnings("ignore", message="Unknown ssh-ed25519 host key")
    for name in lab.hosts():
        host = testinfra.get_host(f"paramiko://{name}", ssh_config=str(lab.ssh_config))
        assert host.run("hostname").stdout.strip() == name
        assert host.socket("unix:///run/longboat/longboat.sock").is_listening
        assert host.file("/run/longboat/longboat.sock").is_socket
        assert host.package("tini").is_installed
        assert host.package("nftables").is_installed
        daemon = host.file("/etc/longboat/daemon.json")
        assert daemon.mode == 0o644
        assert f'"cgroup-parent": "/longboat-lab/{lab.name}/{name}/longboat"' in \
            daemon.content_string
        status = host.run(f"{lab.venv}/bin/longboat system service status")
        assert status.rc == 0, status.stderr
        assert f"{lab.venv}/bin/longboatd" in status.stdout   # runs from the role's venv
        version = host.run(f"{lab.venv}/bin/longboat version --format '{{{{.Server.Os}}}}'")
        assert version.rc == 0 and version.stdout.strip() == "linux", version.stderr

    second, elapsed, output = lab.playbook()
    print(f"second (no-change) run on {len(second)} hosts: {elapsed:.1f} s")
    assert {host: changed for host, (_ok, changed, _u, _f) in second.items()} == \
        dict.fromkeys(lab.hosts(), 0), output
