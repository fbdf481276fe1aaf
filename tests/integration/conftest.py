"""Fixtures for tests that run real containers: a busybox rootfs template, bundles, and a
longboat-runtime command line with its own state root."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support import bundles


@pytest.fixture(scope="session")
def rootfs_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return bundles.template_rootfs(tmp_path_factory.mktemp("rootfs-cache"))


class RuntimeCLI:
    """``longboat-runtime`` (or runc) with a private ``--root``, as a test drives it."""

    def __init__(self, binary: str, root: Path) -> None:
        self.binary = binary
        self.root = root
        self.ids: list[str] = []

    def __call__(self, *args: str, check: bool = True, timeout: float = 60,
                 **kwargs: Any) -> subprocess.CompletedProcess[str]:
        # Files, not pipes: a created container's init inherits our stdio and would hold a
        # pipe open for as long as it lives.
        with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
            code = subprocess.run([self.binary, "--root", str(self.root), *args],
                                  stdout=out, stderr=err, timeout=timeout, **kwargs).returncode
            out.seek(0)
            err.seek(0)
            result = subprocess.CompletedProcess(args, code, out.read().decode(),
                                                 err.read().decode())
        if check and result.returncode != 0:
            raise AssertionError(f"{self.binary} {' '.join(args)} exited "
                                 f"{result.returncode}\nstdout: {result.stdout}\n"
                                 f"stderr: {result.stderr}")
        return result

    def state(self, cid: str) -> dict[str, Any]:
        return dict(json.loads(self("state", cid).stdout))

    def cleanup(self) -> None:
        for cid in self.ids:
            self("delete", "--force", cid, check=False)


def longboat_runtime() -> str:
    return str(Path(sys.executable).parent / "longboat-runtime")


@pytest.fixture
def runtime(tmp_path: Path) -> Iterator[RuntimeCLI]:
    cli = RuntimeCLI(longboat_runtime(), tmp_path / "state")
    yield cli
    cli.cleanup()
    bundles.remove_cgroup_parent()


@pytest.fixture
def bundle(tmp_path: Path, rootfs_template: Path) -> Callable[..., tuple[Path, dict[str, Any]]]:
    counter = iter(range(1000))

    def make(args: list[str], **changes: Any) -> tuple[Path, dict[str, Any]]:
        return bundles.make_bundle(tmp_path / f"bundle{next(counter)}", rootfs_template, args,
                                   **changes)

    return make


def wait_child(pid: int, timeout: float = 20) -> int:
    """Exit code of a container init: the test session is its subreaper."""
    from longboat.linux.proc import exit_code, wait_exit

    if not wait_exit(pid, timeout):
        os.kill(pid, signal.SIGKILL)
        os.waitpid(pid, 0)
        raise AssertionError(f"process {pid} did not exit within {timeout}s")
    _, status = os.waitpid(pid, 0)
    return exit_code(status)
