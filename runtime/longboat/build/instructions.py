"""A parsed Dockerfile checked and grouped into build stages, as Docker's
``instructions.Parse`` does before anything is built: each instruction's flags and
argument count, ENV/LABEL pairs, FROM's ``AS name``, the ARGs before the first FROM.
Variables are expanded later, per step, against that step's environment."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from longboat.build.dockerfile import Dockerfile, Node
from longboat.build.dockerfile import parse as parse_dockerfile
from longboat.build.errors import DockerfileError

_FLAGS = {"from": {"platform"}, "copy": {"from", "chown", "chmod"},
          "add": {"chown", "chmod"},
          "healthcheck": {"interval", "timeout", "start-period", "retries"}}
_STAGE_NAME = re.compile(r"^[a-z][a-z0-9-_.]*$")
_ARG_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


@dataclass
class Stage:
    index: int
    name: str                   # "" when the stage has no AS
    base: str                   # the image word as written (expanded with meta args)
    platform: str | None
    from_node: Node
    nodes: list[Node] = field(default_factory=list)


@dataclass
class Plan:
    meta_args: list[Node]
    stages: list[Stage]
    escape: str
    warnings: list[str]


def parse_words(rest: str, escape: str) -> list[str]:
    """Docker's parseWords: split on whitespace outside quotes; quotes and escapes kept
    (they are removed when each word is expanded)."""
    words: list[str] = []
    word: list[str] = []
    quote = ""
    blank_ok = False
    in_word = False
    i = 0
    n = len(rest)
    while i < n:
        ch = rest[i]
        if not in_word and not quote:
            if ch.isspace():
                i += 1
                continue
            in_word = True
        if quote:
            if ch == quote:
                quote = ""
            elif ch == escape and quote != "'":
                if i + 1 == n:
                    i += 1
                    continue
                word.append(ch)
                i += 1
                ch = rest[i]
            word.append(ch)
            i += 1
            continue
        if ch.isspace():
            if blank_ok or word:
                words.append("".join(word))
            word, blank_ok, in_word = [], False, False
            i += 1
            continue
        if ch in ("'", '"'):
            quote = ch
            blank_ok = True
        if ch == escape:
            if i + 1 == n:
                i += 1
                continue
            word.append(ch)
            i += 1
            ch = rest[i]
        word.append(ch)
        i += 1
    if in_word and (blank_ok or word):
        words.append("".join(word))
    return words


def name_values(node: Node, escape: str) -> list[tuple[str, str]]:
    """ENV/LABEL pairs, unexpanded: ``KEY value with spaces`` or ``K=v K2="v 2"``."""
    what = node.keyword.upper()
    words = parse_words(node.rest, escape)
    if not words:
        raise DockerfileError(f"{what} requires at least one argument", node.line)
    if "=" not in words[0]:
        parts = re.split(r"[ \t]+", node.rest.strip(), maxsplit=1)
        if len(parts) < 2:
            raise DockerfileError(f"{what} must have two arguments", node.line)
        return [(parts[0], parts[1])]
    pairs = []
    for word in words:
        if "=" not in word:
            raise DockerfileError(f'Syntax error - can\'t find = in "{word}". Must be of '
                                  "the form: name=value", node.line)
        key, _, value = word.partition("=")
        if not key:
            raise DockerfileError(f"{what} names can not be blank", node.line)
        pairs.append((key, value))
    return pairs


def arg_decls(node: Node) -> list[tuple[str, str | None]]:
    """ARG's names and unexpanded defaults."""
    words = parse_words(node.rest, "\\")
    if not words:
        raise DockerfileError("ARG requires at least one argument", node.line)
    out: list[tuple[str, str | None]] = []
    for word in words:
        name, eq, default = word.partition("=")
        if not _ARG_NAME.match(name):
            raise DockerfileError(f"ARG names can not be blank or contain invalid "
                                  f"characters: {word!r}", node.line)
        out.append((name, default if eq else None))
    return out


def check(node: Node, escape: str, *, in_onbuild: bool = False) -> None:
    """Docker's per-instruction checks, at parse time."""
    allowed = _FLAGS.get(node.keyword, set())
    what = node.keyword.upper()
    for flag in node.flags:
        if flag not in allowed:
            if node.keyword == "add" and flag == "from":
                raise DockerfileError("ADD does not take --from; use COPY --from",
                                      node.line)
            raise DockerfileError(f"Unknown flag: {flag}", node.line)
    rest = node.rest.strip()
    k = node.keyword
    if k in ("env", "label"):
        name_values(node, escape)
    elif k == "arg":
        arg_decls(node)
    elif k in ("run", "cmd", "entrypoint"):
        if k == "run" and not rest:
            raise DockerfileError("RUN requires at least one argument", node.line)
    elif k in ("copy", "add"):
        args = node.json_args()
        if args is None:
            args = rest.split()
        if len(args) < 2:
            raise DockerfileError(f"{what} requires at least two arguments, but only one "
                                  "was provided. Destination could not be determined.",
                                  node.line)
    elif k in ("user", "workdir", "stopsignal", "maintainer"):
        if not rest:
            raise DockerfileError(f"{what} requires exactly one argument", node.line)
        if k != "maintainer" and len(parse_words(rest, escape)) != 1:
            raise DockerfileError(f"{what} requires exactly one argument", node.line)
    elif k in ("expose", "volume"):
        if not rest:
            raise DockerfileError(f"{what} requires at least one argument", node.line)
    elif k == "shell":
        if not node.json_args():
            raise DockerfileError("SHELL requires the arguments to be in JSON form",
                                  node.line)
    elif k == "healthcheck":
        kind = rest.split(None, 1)[0].upper() if rest else ""
        if kind not in ("NONE", "CMD"):
            raise DockerfileError("Unknown type in HEALTHCHECK (try CMD)" if rest else
                                  "HEALTHCHECK requires an argument", node.line)
        if kind == "NONE" and (len(rest.split()) > 1 or node.flags):
            raise DockerfileError("HEALTHCHECK NONE takes no arguments", node.line)
    elif k == "onbuild":
        trigger = onbuild_node(node)
        if trigger.keyword == "onbuild":
            raise DockerfileError("Chaining ONBUILD via `ONBUILD ONBUILD` isn't allowed",
                                  node.line)
        if trigger.keyword in ("from", "maintainer"):
            raise DockerfileError(f"{trigger.keyword.upper()} isn't allowed as an ONBUILD "
                                  "trigger", node.line)
        check(trigger, escape, in_onbuild=True)


def onbuild_node(node: Node) -> Node:
    """The instruction an ONBUILD carries, parsed."""
    from longboat.build.dockerfile import _node

    if not node.rest.strip():
        raise DockerfileError("ONBUILD requires at least one argument", node.line)
    trigger = _node(node.rest, node.line)
    return trigger


def onbuild_text(node: Node) -> str:
    """What the image keeps in OnBuild: the trigger as written."""
    return re.sub(r"(?i)^\s*ONBUILD\s*", "", node.original)


def plan(text: str) -> Plan:
    dockerfile: Dockerfile = parse_dockerfile(text)
    meta: list[Node] = []
    stages: list[Stage] = []
    for node in dockerfile.nodes:
        check(node, dockerfile.escape)
        if node.keyword == "from":
            words = node.rest.split()
            if len(words) not in (1, 3) or (len(words) == 3 and words[1].lower() != "as"):
                raise DockerfileError("FROM requires either one or three arguments",
                                      node.line)
            name = words[2].lower() if len(words) == 3 else ""
            if name and not _STAGE_NAME.match(name):
                raise DockerfileError(f"invalid name for build stage: {words[2]!r}, name "
                                      "can't start with a number or contain symbols",
                                      node.line)
            if name and any(s.name == name for s in stages):
                raise DockerfileError(f"duplicate name {name}", node.line)
            stages.append(Stage(len(stages), name, words[0], node.flags.get("platform"),
                                node))
        elif not stages:
            if node.keyword != "arg":
                raise DockerfileError("no build stage in current context", node.line)
            meta.append(node)
        else:
            stages[-1].nodes.append(node)
    if not stages:
        raise DockerfileError("file with no instructions")
    return Plan(meta, stages, dockerfile.escape, dockerfile.warnings)
