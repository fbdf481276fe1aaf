"""Running commands on a node: in its cgroup first, then in its namespaces."""

from __future__ import annotations

import os
import subprocess
import sys

from longboat.lab import cgroups, namespaces, plan

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

# what a command on a node sees of its environment: the caller's, less what names
# the caller's engine
_DROP = ("LONGBOAT_HOST", "DOCKER_HOST", "DOCKER_CONTEXT", "DOCKER_TLS_VERIFY", "DOCKER_CERT_PATH")


def environment(node: plan.Node) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in _DROP}
    env["HOSTNAME"] = node.name
    env.setdefault("PATH", "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
    # this installation's longboat last: `lab exec N -- longboat ps` works from a
    # virtual environment that is not activated too
    here = os.path.dirname(sys.executable)
    if here not in env["PATH"].split(os.pathsep):
        env["PATH"] += os.pathsep + here
    return env


def exec_in(node: plan.Node, argv: list[str]) -> None:
    """Replace this (single-threaded) process with ``argv`` on the node."""
    opened = namespaces.open_files(node)
    cgroups.join(node)
    namespaces.enter(opened)
    os.execvpe(argv[0], argv, environment(node))


def spawn(node: plan.Node, argv: list[str], **kwargs: Any) -> subprocess.Popen[bytes]:
    """``argv`` started on the node (``kwargs`` go to Popen)."""
    opened = namespaces.open_files(node)

    def inside() -> None:
        cgroups.join(node)
        namespaces.enter(opened)

    try:
        return subprocess.Popen(argv, preexec_fn=inside, env=environment(node),
                                **kwargs)
    finally:
        for _, fd in opened:
            os.close(fd)


def run(node: plan.Node, argv: list[str], *, timeout: float = 60
        ) -> subprocess.CompletedProcess[bytes]:
    process = spawn(node, argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT)
    try:
        out, _ = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        out, _ = process.communicate()
        raise
    return subprocess.CompletedProcess(argv, process.returncode, out, None)
