"""A stage's image configuration as instructions change it (Docker's ``runConfig``), and
what each metadata instruction does to it, given its expanded arguments."""

from __future__ import annotations

import copy
import posixpath
import re

from longboat.build.errors import BuildError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

DEFAULT_SHELL = ["/bin/sh", "-c"]
_DURATION = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_UNITS = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
          "m": 60_000_000_000, "h": 3_600_000_000_000}


def empty_config() -> dict[str, Any]:
    """Docker's container.Config of ``FROM scratch``."""
    return {"Hostname": "", "Domainname": "", "User": "", "AttachStdin": False,
            "AttachStdout": False, "AttachStderr": False, "Tty": False,
            "OpenStdin": False, "StdinOnce": False, "Env": None, "Cmd": None,
            "Image": "", "Volumes": None, "WorkingDir": "", "Entrypoint": None,
            "OnBuild": None, "Labels": None}


def from_image(config: dict[str, Any] | None) -> dict[str, Any]:
    out = empty_config()
    out.update(copy.deepcopy(config or {}))
    return out


def env_map(config: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    return env


def set_env(config: dict[str, Any], key: str, value: str) -> None:
    current = [e for e in config.get("Env") or [] if e.partition("=")[0] != key]
    # Docker replaces in place when the name exists, else appends
    old = config.get("Env") or []
    for i, item in enumerate(old):
        if item.partition("=")[0] == key:
            replaced = list(old)
            replaced[i] = f"{key}={value}"
            config["Env"] = replaced
            return
    config["Env"] = [*current, f"{key}={value}"]


def shell_of(config: dict[str, Any]) -> list[str]:
    return list(config.get("Shell") or DEFAULT_SHELL)


def workdir(config: dict[str, Any], path: str) -> str:
    if not path.startswith("/"):
        path = posixpath.join(config.get("WorkingDir") or "/", path)
    cleaned = posixpath.normpath(path)
    if cleaned.startswith("//"):
        cleaned = "/" + cleaned.lstrip("/")
    return cleaned


def parse_duration(text: str, flag: str) -> int:
    """Go's time.ParseDuration, in nanoseconds."""
    if text in ("0", ""):
        return 0
    pos = 0
    total = 0.0
    for match in _DURATION.finditer(text):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _UNITS[match.group(2)]
        pos = match.end()
    if pos != len(text) or pos == 0:
        raise BuildError(f"time: invalid duration \"{text}\" (--{flag})")
    return int(total)


def healthcheck(kind: str, command: list[str] | None, shell_text: str,
                flags: dict[str, str | None]) -> dict[str, Any]:
    if kind == "NONE":
        return {"Test": ["NONE"]}
    test = ["CMD", *command] if command is not None else ["CMD-SHELL", shell_text]
    check: dict[str, Any] = {"Test": test}
    for flag, key in (("interval", "Interval"), ("timeout", "Timeout"),
                      ("start-period", "StartPeriod")):
        value = flags.get(flag)
        if value:
            ns = parse_duration(value, flag)
            if 0 < ns < 1_000_000:
                raise BuildError(f"Interval \"{flag}\" cannot be less than 1ms")
            if ns:
                check[key] = ns
    retries = flags.get("retries")
    if retries:
        try:
            count = int(retries)
        except ValueError:
            raise BuildError(f"invalid value for --retries: {retries}") from None
        if count < 1:
            raise BuildError(f"--retries must be at least 1 (not {count})")
        check["Retries"] = count
    return check
