"""OCI lifecycle hooks: run each with the container's state on stdin, within its timeout."""

from __future__ import annotations

from longboat.errors import LongboatError

TYPE_CHECKING = False  # typing costs milliseconds at start-up; the checker sees it
if TYPE_CHECKING:
    from typing import Any


# Where each hook runs (runtime spec, "POSIX-platform Hooks"):
#   prestart, createRuntime, poststart, poststop: the runtime's namespaces, by the runtime;
#   createContainer, startContainer: inside the container's namespaces, by its init.
FATAL = ("prestart", "createRuntime", "createContainer", "startContainer")


class HookFailed(LongboatError):
    pass


def hooks_of(config: dict[str, Any], stage: str) -> list[dict[str, Any]]:
    return list((config.get("hooks") or {}).get(stage) or [])


def run_hooks(config: dict[str, Any], stage: str, state: dict[str, Any]) -> list[str]:
    """Run the hooks of a stage in order. A failure of a fatal stage raises; for
    poststart and poststop it is returned as a warning (the spec says: log and go on)."""
    warnings: list[str] = []
    hooks = hooks_of(config, stage)
    if not hooks:
        return warnings
    import json  # both only paid for by containers that have hooks
    import subprocess

    payload = json.dumps(state).encode()
    for index, hook in enumerate(hooks):
        where = f"hooks.{stage}[{index}] ({hook['path']})"
        argv = list(hook.get("args") or [hook["path"]])
        env = dict(e.split("=", 1) for e in hook.get("env") or [] if "=" in e)
        try:
            result = subprocess.run(argv, executable=hook["path"], input=payload, env=env,
                                    capture_output=True, timeout=hook.get("timeout"),
                                    check=False)
        except subprocess.TimeoutExpired:
            problem = f"{where}: timed out after {hook.get('timeout')}s"
        except OSError as exc:
            problem = f"{where}: {exc.strerror}"
        else:
            if result.returncode == 0:
                continue
            detail = result.stderr.decode(errors="replace").strip()
            problem = f"{where}: exited with status {result.returncode}" + (
                f": {detail}" if detail else "")
        if stage in FATAL:
            raise HookFailed(problem)
        warnings.append(problem)
    return warnings
