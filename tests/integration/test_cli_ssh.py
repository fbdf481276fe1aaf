"""`longboat -H ssh://host`: the CLI reaches a remote engine through ssh (paramiko), by
running `longboat system dial-stdio` there, as docker does."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from tests.support.engine import Longboatd
from tests.support.sshd import Sshd

pytestmark = pytest.mark.integration


def test_the_cli_drives_an_engine_over_ssh(tmp_path):
    (tmp_path / "engine").mkdir()
    (tmp_path / "ssh").mkdir()
    engine = Longboatd(tmp_path / "engine").start()
    longboat = str(Path(sys.executable).parent / "longboat")
    sshd = Sshd(tmp_path / "ssh",
                forced_command=f"{longboat} -H {engine.host} system dial-stdio")
    try:
        sshd.start()
        env = {**os.environ, "HOME": str(sshd.home)}
        env.pop("DOCKER_HOST", None)
        env.pop("LONGBOAT_HOST", None)
        out = subprocess.run([longboat, "-H", "ssh://lbtest", "version", "--format",
                              "{{json .Server}}"], env=env, capture_output=True,
                             text=True, timeout=60)
        assert out.returncode == 0, out.stderr
        assert '"ApiVersion":"1.41"' in out.stdout.replace(" ", "")
        images = subprocess.run([longboat, "-H", "ssh://lbtest", "images", "-q"], env=env,
                                capture_output=True, text=True, timeout=60)
        assert images.returncode == 0 and images.stdout == "", images.stderr
        # an unknown host key is refused, as ssh would
        (sshd.home / ".ssh" / "known_hosts").write_text("")
        refused = subprocess.run([longboat, "-H", "ssh://lbtest", "version"], env=env,
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0
    finally:
        sshd.stop()
        engine.stop()
