"""Molecule's full `test` sequence for molecule/default (a 2-node lab `mol`: create,
converge, idempotence, testinfra verify, destroy), as CI runs it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.mark.timeout(1200)
def test_molecule_default_scenario(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}",
           "ANSIBLE_HOME": str(tmp_path / "ansible"), "ANSIBLE_FORCE_COLOR": "0",
           "MOLECULE_NO_LOG": "false", "NO_COLOR": "1"}
    env.pop("LONGBOAT_HOST", None)
    env.pop("DOCKER_HOST", None)
    try:
        done = subprocess.run([str(BIN / "molecule"), "test", "--destroy", "always"],
                              cwd=ROOT, env=env, capture_output=True, text=True,
                              timeout=1100, check=False)
        output = done.stdout + done.stderr
        assert done.returncode == 0, output[-8000:]
        assert "idempotence" in output and "Verifier completed successfully" in output
    finally:
        subprocess.run([str(BIN / "molecule"), "destroy"], cwd=ROOT, env=env,
                       capture_output=True, timeout=300, check=False)
    lab = subprocess.run([str(BIN / "longboat"), "lab", "ls", "-q"], capture_output=True,
                         text=True, check=False).stdout.split()
    assert "mol" not in lab
    assert not Path("/opt/mol-longboat").exists()
