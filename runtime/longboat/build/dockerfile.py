"""Parsing a Dockerfile into instruction nodes: parser directives (``# escape=``,
``# syntax=``), comments, line continuations, flags (``--from=...``) and the JSON (exec)
or shell form of the arguments. Nothing is expanded here (see :mod:`shell_words`), and
nothing is checked beyond syntax (see :mod:`instructions`)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field

from longboat.build.errors import DockerfileError

KEYWORDS = frozenset({
    "add", "arg", "cmd", "copy", "entrypoint", "env", "expose", "from", "healthcheck",
    "label", "maintainer", "onbuild", "run", "shell", "stopsignal", "user", "volume",
    "workdir"})
_DIRECTIVE = re.compile(r"^#[ \t]*([a-zA-Z][a-zA-Z0-9]*)[ \t]*=[ \t]*(.+?)[ \t]*$")
_HEREDOC = re.compile(r"(?:^|\s)<<-?(['\"]?)[A-Za-z_][A-Za-z0-9_]*\1(?:\s|$)")
_FLAG = re.compile(r"^--([a-zA-Z][a-zA-Z0-9-]*)(?:=(.*))?$")


@dataclass
class Node:
    """One instruction as written: ``keyword`` in lower case, its ``flags`` (name ->
    value, None for a bare ``--flag``), the rest of the line, and where it was."""

    keyword: str
    rest: str
    line: int
    original: str
    flags: dict[str, str | None] = field(default_factory=dict)

    def json_args(self) -> list[str] | None:
        """The exec form: a JSON array of strings, or None for the shell form."""
        text = self.rest.strip()
        if not text.startswith("["):
            return None
        try:
            value = json.loads(text)
        except (ValueError, RecursionError):   # "[[[[..." nested past the decoder's limit
            return None
        if isinstance(value, list) and all(isinstance(v, str) for v in value):
            return value
        return None


@dataclass
class Dockerfile:
    nodes: list[Node]
    escape: str = "\\"
    warnings: list[str] = field(default_factory=list)


def parse(text: str) -> Dockerfile:
    lines = text.replace("\r\n", "\n").split("\n")
    escape = "\\"
    warnings: list[str] = []
    seen: set[str] = set()
    index = 0
    # parser directives: only at the very top, before any other line
    while index < len(lines):
        match = _DIRECTIVE.match(lines[index].strip())
        if not match:
            break
        name, value = match.group(1).lower(), match.group(2)
        if name not in ("escape", "syntax"):
            break   # an unknown directive is a comment, and ends the directives
        if name in seen:
            raise DockerfileError(f"only one {name} parser directive can be used",
                                  index + 1)
        seen.add(name)
        if name == "escape":
            if value not in ("\\", "`"):
                raise DockerfileError(f"invalid escape token '{value}' does not match "
                                      "` or \\", index + 1)
            escape = value
        else:
            warnings.append(f"the syntax parser directive ({value}) is ignored: this "
                            "builder has one Dockerfile syntax")
        index += 1
    nodes: list[Node] = []
    while index < len(lines):
        raw = lines[index]
        index += 1
        stripped = raw.lstrip()
        if not stripped or stripped.startswith("#"):
            continue
        start = index
        line, more = _trim_continuation(stripped, escape)
        while more and index < len(lines):
            nxt = lines[index]
            index += 1
            if nxt.lstrip().startswith("#"):
                continue
            if not nxt.strip():
                warnings.append(f"empty continuation line found at line {index}: empty "
                                "continuation lines will become errors in a future release")
                continue
            part, more = _trim_continuation(nxt, escape)
            line += part
        nodes.append(_node(line, start))
    return Dockerfile(nodes, escape, warnings)


def _trim_continuation(line: str, escape: str) -> tuple[str, bool]:
    text = line.rstrip()
    if text.endswith(escape):
        return text[:-1], True
    return line.rstrip("\n"), False


def _node(line: str, number: int) -> Node:
    text = line.strip()
    keyword, _, rest = text.partition(" ")
    if "\t" in keyword:
        keyword, _, more = keyword.partition("\t")
        rest = more + " " + rest
    lower = keyword.lower()
    if lower not in KEYWORDS:
        raise DockerfileError(f"unknown instruction: {keyword.upper()}", number)
    rest = rest.strip()
    flags: dict[str, str | None] = {}
    # flags come first: --name=value or --name
    while rest.startswith("--"):
        word, _, after = rest.partition(" ")
        match = _FLAG.match(word)
        if not match:
            break
        flags[match.group(1)] = match.group(2)
        rest = after.lstrip()
    if lower in ("run", "copy", "add") and _HEREDOC.search(rest):
        raise DockerfileError(f"{keyword.upper()}: heredocs (<<EOF) are not supported by "
                              "this builder; write the lines as separate instructions or "
                              "COPY a file", number)
    return Node(lower, rest, number, text, flags)
