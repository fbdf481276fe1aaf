"""``docker commit``: a container's writable layer becomes a new image.

The upper directory becomes a gzip layer (``make_layer``) written straight into the
content store, less the mount points the runtime made there (``init_layer``: Docker
keeps those in its init layer); the new image's config is Docker's: the container's
configuration merged over its image's (as ``docker create`` merges them), then the
``changes`` (Dockerfile instructions: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, USER,
WORKDIR, VOLUME, STOPSIGNAL, ONBUILD, SHELL, HEALTHCHECK) applied, a history entry
appended and the layer's diff ID added to ``rootfs.diff_ids`` (unless the layer is
empty: then the history entry says ``empty_layer``). Pausing the container meanwhile
is the caller's business (it needs the monitor, which is async).
"""

from __future__ import annotations

import copy
import datetime
import hashlib
import json
import posixpath
import re
import signal

from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any, BinaryIO

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine
    from longboat.image.store import Image

#: the diff ID of a tar with nothing in it (the 1024-byte end marker alone)
EMPTY_LAYER_DIFF_ID = "sha256:" + hashlib.sha256(bytes(1024)).hexdigest()
_VALID = ("cmd", "entrypoint", "env", "expose", "label", "user", "workdir", "volume",
          "stopsignal", "onbuild", "shell", "healthcheck")


# -- Docker's merge of a container's config over its image's ------------------------------

def merge(user: dict[str, Any], image: dict[str, Any]) -> dict[str, Any]:
    """Docker's ``merge(userConf, imageConf)`` (daemon/commit.go), on JSON objects."""
    out = dict(user)
    if not out.get("User"):
        out["User"] = image.get("User") or ""
    if not out.get("ExposedPorts"):
        if image.get("ExposedPorts"):
            out["ExposedPorts"] = dict(image["ExposedPorts"])
    elif image.get("ExposedPorts"):
        out["ExposedPorts"] = {**image["ExposedPorts"], **out["ExposedPorts"]}
    if not out.get("Env"):
        out["Env"] = list(image.get("Env") or []) or out.get("Env")
    else:
        have = {e.partition("=")[0] for e in out["Env"]}
        out["Env"] = list(out["Env"]) + [e for e in image.get("Env") or []
                                         if e.partition("=")[0] not in have]
    labels = dict(out.get("Labels") or {})
    for key, value in (image.get("Labels") or {}).items():
        labels.setdefault(key, value)
    out["Labels"] = labels
    if not out.get("Entrypoint"):
        if not out.get("Cmd"):
            out["Cmd"] = image.get("Cmd")
            if "ArgsEscaped" in image:
                out["ArgsEscaped"] = image["ArgsEscaped"]
        if out.get("Entrypoint") is None:
            out["Entrypoint"] = image.get("Entrypoint")
    if out.get("Healthcheck") is None and image.get("Healthcheck") is not None:
        out["Healthcheck"] = image["Healthcheck"]
    if not out.get("WorkingDir"):
        out["WorkingDir"] = image.get("WorkingDir") or ""
    if not out.get("Volumes"):
        if image.get("Volumes"):
            out["Volumes"] = dict(image["Volumes"])
    elif image.get("Volumes"):
        out["Volumes"] = {**image["Volumes"], **out["Volumes"]}
    if not out.get("StopSignal") and image.get("StopSignal"):
        out["StopSignal"] = image["StopSignal"]
    return out


# -- changes: Dockerfile instructions ----------------------------------------------------

def _env_map(config: dict[str, Any]) -> dict[str, str]:
    env: dict[str, str] = {}
    for item in config.get("Env") or []:
        key, _, value = str(item).partition("=")
        env[key] = value
    return env


_VAR = re.compile(r"\$(?:\{([A-Za-z_][A-Za-z0-9_]*)(?::([-+])([^}]*))?\}|([A-Za-z_][A-Za-z0-9_]*))")


def words(text: str, env: dict[str, str] | None) -> list[str]:
    """Split ``text`` the way Dockerfile instructions do: whitespace separates words,
    quotes group them ('' literally, "" with escapes), a backslash escapes, and ``$VAR``
    / ``${VAR}`` / ``${VAR:-default}`` / ``${VAR:+alt}`` expand from ``env`` (when
    given) outside single quotes."""
    out: list[str] = []
    current: list[str] = []
    started = False
    i = 0
    n = len(text)

    def expand(at: int) -> tuple[str, int]:
        match = _VAR.match(text, at)
        if env is None or match is None:
            return "$", at + 1
        name = match.group(1) or match.group(4)
        value = env.get(name)
        if match.group(2) == "-" and not value:
            value = match.group(3)
        elif match.group(2) == "+":
            value = match.group(3) if value else ""
        return value or "", match.end()

    while i < n:
        ch = text[i]
        if ch.isspace():
            if started:
                out.append("".join(current))
                current, started = [], False
            i += 1
            continue
        started = True
        if ch == "\\" and i + 1 < n:
            current.append(text[i + 1])
            i += 2
        elif ch == "'":
            end = text.find("'", i + 1)
            if end < 0:
                raise InvalidArgument(f"unexpected end of statement while looking for "
                                      f"matching single-quote: {text}")
            current.append(text[i + 1:end])
            i = end + 1
        elif ch == '"':
            i += 1
            while True:
                if i >= n:
                    raise InvalidArgument(f"unexpected end of statement while looking for "
                                          f"matching double-quote: {text}")
                ch = text[i]
                if ch == '"':
                    i += 1
                    break
                if ch == "\\" and i + 1 < n and text[i + 1] in '"\\$':
                    current.append(text[i + 1])
                    i += 2
                elif ch == "$":
                    value, i = expand(i)
                    current.append(value)
                else:
                    current.append(ch)
                    i += 1
        elif ch == "$":
            value, i = expand(i)
            current.append(value)
        else:
            current.append(ch)
            i += 1
    if started:
        out.append("".join(current))
    return out


def _json_form(rest: str) -> list[str] | None:
    """The exec form (a JSON array of strings), or None for the shell form."""
    if not rest.startswith("["):
        return None
    try:
        value = json.loads(rest)
    except ValueError:
        return None
    if isinstance(value, list) and all(isinstance(v, str) for v in value):
        return list(value)
    return None


def _pairs(instruction: str, rest: str, env: dict[str, str]) -> list[tuple[str, str]]:
    parts = words(rest, env)
    if not parts:
        raise InvalidArgument(f"{instruction} requires at least one argument")
    if "=" not in parts[0]:
        # the legacy form: NAME value with spaces
        key, _, value = rest.strip().partition(" ")
        if not value.strip():
            raise InvalidArgument(f"{instruction} must have two arguments")
        return [(key, " ".join(words(value, env)))]
    pairs = []
    for part in parts:
        key, eq, value = part.partition("=")
        if not eq or not key:
            raise InvalidArgument(f"{instruction} names can not be blank" if not key else
                                  f"Syntax error - can't find = in \"{part}\". Must be "
                                  "of the form: name=value")
        pairs.append((key, value))
    return pairs


def _lines(changes: list[str]) -> list[str]:
    """The instructions: lines joined across trailing backslashes; blanks and comments
    dropped."""
    out: list[str] = []
    pending = ""
    for raw in "\n".join(changes).split("\n"):
        line = raw.strip()
        if not pending and (not line or line.startswith("#")):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        out.append(pending + line)
        pending = ""
    if pending.strip():
        out.append(pending)
    return out


def apply_changes(config: dict[str, Any], changes: list[str]) -> dict[str, Any]:
    """Docker's BuildFromConfig: the Dockerfile instructions of ``changes`` applied to
    (a copy of) ``config``."""
    config = copy.deepcopy(config)
    parsed = []
    for line in _lines(changes):
        instruction, _, rest = line.partition(" ")
        if instruction.lower() not in _VALID:
            raise InvalidArgument(f"{instruction.lower()} is not a valid change command")
        parsed.append((instruction.lower(), rest.strip()))
    cmd_set = False
    for instruction, rest in parsed:
        env = _env_map(config)
        if instruction in ("cmd", "entrypoint"):
            args = _json_form(rest)
            if args is None:
                shell = list(config.get("Shell") or ["/bin/sh", "-c"])
                args = [*shell, rest] if rest else []
            if instruction == "cmd":
                config["Cmd"] = args
                cmd_set = True
            else:
                config["Entrypoint"] = args
                if not cmd_set:
                    config["Cmd"] = None
        elif instruction == "env":
            current = list(config.get("Env") or [])
            for key, value in _pairs("ENV", rest, env):
                current = [e for e in current if e.partition("=")[0] != key]
                current.append(f"{key}={value}")
                env[key] = value
            config["Env"] = current
        elif instruction == "label":
            labels = dict(config.get("Labels") or {})
            labels.update(_pairs("LABEL", rest, env))
            config["Labels"] = labels
        elif instruction == "expose":
            ports = dict(config.get("ExposedPorts") or {})
            for word in words(rest, env):
                for port in _ports(word):
                    ports[port] = {}
            if not ports:
                raise InvalidArgument("EXPOSE requires at least one argument")
            config["ExposedPorts"] = ports
        elif instruction == "user":
            parts = words(rest, env)
            if len(parts) != 1:
                raise InvalidArgument("USER requires exactly one argument")
            config["User"] = parts[0]
        elif instruction == "workdir":
            parts = words(rest, env)
            if len(parts) != 1:
                raise InvalidArgument("WORKDIR requires exactly one argument")
            config["WorkingDir"] = posixpath.normpath(
                posixpath.join("/", config.get("WorkingDir") or "/", parts[0]))
        elif instruction == "volume":
            paths = _json_form(rest)
            if paths is None:
                paths = words(rest, env)
            if not paths or any(not p.strip() for p in paths):
                raise InvalidArgument("VOLUME specified can not be an empty string")
            volumes = dict(config.get("Volumes") or {})
            volumes.update({p: {} for p in paths})
            config["Volumes"] = volumes
        elif instruction == "stopsignal":
            parts = words(rest, env)
            if len(parts) != 1 or not _valid_signal(parts[0]):
                raise InvalidArgument(f"Invalid signal: {rest}")
            config["StopSignal"] = parts[0]
        elif instruction == "onbuild":
            trigger, _, more = rest.partition(" ")
            if trigger.upper() in ("ONBUILD", "FROM", "MAINTAINER"):
                raise InvalidArgument(f"{trigger.upper()} isn't allowed as an ONBUILD "
                                      "trigger")
            config["OnBuild"] = [*(config.get("OnBuild") or []),
                                 f"{trigger.upper()} {more}".strip()]
        elif instruction == "shell":
            args = _json_form(rest)
            if not args:
                raise InvalidArgument("SHELL requires the arguments to be in JSON form")
            config["Shell"] = args
        elif instruction == "healthcheck":
            config["Healthcheck"] = _healthcheck(rest)
    return config


def _ports(word: str) -> list[str]:
    port, _, proto = word.partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise InvalidArgument(f"invalid proto: {proto}")
    start, dash, end = port.partition("-")
    try:
        first = int(start)
        last = int(end) if dash else first
    except ValueError:
        raise InvalidArgument(f"invalid containerPort: {port}") from None
    if not (0 < first <= last <= 65535):
        raise InvalidArgument(f"invalid range specified for container port: {port}")
    return [f"{p}/{proto}" for p in range(first, last + 1)]


def _valid_signal(name: str) -> bool:
    if name.isdigit():
        return 0 < int(name) < 65
    upper = name.upper()
    upper = upper if upper.startswith("SIG") else "SIG" + upper
    return hasattr(signal.Signals, upper) or re.fullmatch(r"SIGRTM(IN|AX)([+-]\d+)?",
                                                          upper) is not None


def _healthcheck(rest: str) -> dict[str, Any]:
    if rest.strip().upper() == "NONE":
        return {"Test": ["NONE"]}
    if rest.startswith("--"):
        raise InvalidArgument("HEALTHCHECK options (--interval and such) are not supported "
                              "in commit changes")
    kind, _, command = rest.partition(" ")
    if kind.upper() != "CMD" or not command.strip():
        raise InvalidArgument("Unknown type in HEALTHCHECK (try CMD)")
    args = _json_form(command.strip())
    return {"Test": ["CMD", *args] if args is not None else ["CMD-SHELL", command.strip()]}


# -- the commit --------------------------------------------------------------------------

def _now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%f").rstrip("0").rstrip(".") + "Z"


def image_name(repo: str | None, tag: str | None) -> list[str]:
    from longboat.image import reference

    if not repo:
        if tag:
            raise InvalidArgument("tag is specified without a repository")
        return []
    ref = reference.parse(f"{repo}:{tag}" if tag else repo)
    if ref.digest is not None:
        raise InvalidArgument(f"refusing to create a tag with a digest reference: {repo}")
    return [str(ref)]


def commit(engine: Engine, container: Container, *, repo: str | None = None,
           tag: str | None = None, comment: str = "", author: str = "",
           changes: list[str] | None = None, config: dict[str, Any] | None = None
           ) -> Image:
    """The container's upper directory as a new image (blocking: run it in a thread)."""
    from longboat.engine import init_layer
    from longboat.image.layer import make_layer
    from longboat.image.store import OCI_LAYER_GZIP

    names = image_name(repo, tag)
    store = engine.images
    parent = store.get(container.data["Image"])
    parent_config = parent.config.get("config") or {}
    container_config = merge(container.config, parent_config)
    new_config = merge(apply_changes(config if config is not None else container_config,
                                     changes or []), container_config)

    upper = engine.snapshots.upper_path(container.id)
    # the runtime's mount points stay out (Docker keeps them in its init layer)
    runtime_made = init_layer.of_container(engine, container)
    with store.content.writer() as blob:
        result = make_layer(upper, _as_binary(blob), compression="gzip",
                            exclude=runtime_made)
        digest = blob.commit()
    created = _now()
    history: dict[str, Any] = {"created": created,
                               "created_by": " ".join(container_config.get("Cmd") or [])}
    if author:
        history["author"] = author
    if comment:
        history["comment"] = comment
    layers = list(parent.layers)
    diff_ids = list(parent.diff_ids)
    if result.diff_id == EMPTY_LAYER_DIFF_ID:
        history["empty_layer"] = True
    else:
        layers.append({"mediaType": OCI_LAYER_GZIP, "size": result.size, "digest": digest})
        diff_ids.append(result.diff_id)
    image_config: dict[str, Any] = {
        "architecture": parent.config.get("architecture") or "amd64",
        "os": parent.config.get("os") or "linux",
        "created": created,
        "container": container.id,
        "container_config": container_config,
        "config": new_config,
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [*(parent.config.get("history") or []), history],
    }
    if parent.config.get("variant"):
        image_config["variant"] = parent.config["variant"]
    if author:
        image_config["author"] = author
    # (should this fail, the blob is garbage for the store's gc: another image may
    # hold the very same layer, so it is not deleted here)
    return store.create(image_config, layers, names)


def _as_binary(blob: object) -> BinaryIO:
    # make_layer only calls write(): the content store's BlobWriter is enough
    return blob  # type: ignore[return-value]
