"""The `longboat` CLI as tests drive it: against a test longboatd, with its own config
directory, and compared with the real docker CLI on the same daemon."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.engine import Longboatd

LONGBOAT = str(Path(sys.executable).parent / "longboat")


class CLI:
    def __init__(self, engine: Longboatd) -> None:
        self.engine = engine
        self.config = engine.workdir / "longboat-config"

    def __call__(self, *args: str, check: bool = True, input: bytes | None = None,
                 env: dict[str, str] | None = None, timeout: float = 60
                 ) -> subprocess.CompletedProcess[str]:
        full_env = {**os.environ, "LONGBOAT_CONFIG": str(self.config), **(env or {})}
        full_env.pop("LONGBOAT_HOST", None)
        done = subprocess.run([LONGBOAT, "-H", self.engine.host, *args], input=input,
                              capture_output=True, env=full_env, timeout=timeout,
                              check=False)
        out = subprocess.CompletedProcess(done.args, done.returncode,
                                          done.stdout.decode(errors="replace"),
                                          done.stderr.decode(errors="replace"))
        if check and out.returncode != 0:
            raise AssertionError(f"longboat {' '.join(args)} exited {out.returncode}\n"
                                 f"{out.stdout}\n{out.stderr}")
        return out

    def same_as_docker(self, *args: str) -> str:
        """Run both CLIs; their stdout, stderr and exit codes must be equal (retried
        when a "... ago" column ticked over between the two runs)."""
        for _ in range(3):
            ours = self(*args, check=False)
            theirs = self.engine.docker(*args, check=False)
            if (ours.stdout, ours.stderr, ours.returncode) == \
                    (theirs.stdout, theirs.stderr, theirs.returncode):
                return ours.stdout
        assert (ours.stdout, ours.stderr, ours.returncode) == \
            (theirs.stdout, theirs.stderr, theirs.returncode), args
        return ours.stdout

    def served(self, result: subprocess.CompletedProcess[str], route: str) -> None:
        """Skip while the daemon does not serve ``route`` yet."""
        if result.returncode != 0 and "page not found" in result.stderr:
            pytest.skip(f"longboatd does not serve {route} yet")
