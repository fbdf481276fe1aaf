"""``.dockerignore``: Docker's pattern rules (its ``fileutils.PatternMatcher``), used
both by the CLI when it tars a context and by the engine when it receives one.

Patterns are cleaned paths relative to the context (a leading ``/`` is dropped);
``*`` matches within one path component, ``?`` one character of it, ``[...]`` a
class, ``**`` any number of components (zero too), ``\\`` escapes; ``!`` makes an
exception. The last pattern that matches a path decides. A pattern also excludes
everything below a directory it matches."""

from __future__ import annotations

import posixpath
import re
from dataclasses import dataclass


@dataclass(frozen=True)
class Pattern:
    text: str
    exclusion: bool
    regex: re.Pattern[str]
    depth: int


def read_patterns(text: str) -> list[str]:
    """The patterns of a .dockerignore file, as Docker reads them."""
    out: list[str] = []
    for raw in text.splitlines():
        if raw.startswith("#"):
            continue
        pattern = raw.strip()
        if not pattern:
            continue
        invert = pattern.startswith("!")
        if invert:
            pattern = pattern[1:].strip()
        if pattern:
            pattern = posixpath.normpath(pattern)
            if len(pattern) > 1 and pattern.startswith("/"):
                pattern = pattern.lstrip("/") or "/"
        out.append("!" + pattern if invert else pattern)
    return out


def _compile(pattern: str) -> re.Pattern[str]:
    out = ["^"]
    i = 0
    n = len(pattern)
    while i < n:
        ch = pattern[i]
        if ch == "*":
            if i + 1 < n and pattern[i + 1] == "*":
                i += 2
                if i < n and pattern[i] == "/":
                    i += 1
                out.append(".*" if i >= n else "(.*/)?")
                continue
            out.append("[^/]*")
        elif ch == "?":
            out.append("[^/]")
        elif ch == "\\":
            if i + 1 < n:
                out.append(re.escape(pattern[i + 1]))
                i += 1
            else:
                out.append(r"\\")
        elif ch == "[":
            end = pattern.find("]", i + 2 if pattern[i + 1:i + 2] in ("!", "^") else i + 1)
            if end < 0:
                raise ValueError(f"syntax error in pattern {pattern!r}: unclosed [")
            body = pattern[i + 1:end]
            if body.startswith("!"):
                body = "^" + body[1:]
            out.append("[" + body.replace("\\", "\\\\") + "]")
            i = end
        else:
            out.append(re.escape(ch))
        i += 1
    out.append("$")
    return re.compile("".join(out), re.DOTALL)


class Matcher:
    """Decides whether a context path (relative, ``/``-separated) is excluded."""

    def __init__(self, patterns: list[str]) -> None:
        self.patterns: list[Pattern] = []
        for text in patterns:
            exclusion = text.startswith("!")
            body = text[1:] if exclusion else text
            if not body:
                raise ValueError("illegal exclusion pattern: \"!\"")
            body = posixpath.normpath(body)
            try:
                regex = _compile(body)
            except re.error as exc:
                raise ValueError(f"syntax error in pattern {text!r}: {exc}") from None
            self.patterns.append(Pattern(body, exclusion, regex, len(body.split("/"))))

    @property
    def has_exclusions(self) -> bool:
        return any(p.exclusion for p in self.patterns)

    def __bool__(self) -> bool:
        return bool(self.patterns)

    def excluded(self, path: str) -> bool:
        path = posixpath.normpath(path)
        parent = posixpath.dirname(path)
        parent_dirs = parent.split("/") if parent else []
        matched = False
        for pattern in self.patterns:
            match = pattern.regex.match(path) is not None
            if not match and parent and pattern.depth <= len(parent_dirs):
                match = pattern.regex.match("/".join(parent_dirs[:pattern.depth])) is not None
            if match:
                matched = not pattern.exclusion
        return matched

    def may_have_exceptions_below(self, directory: str) -> bool:
        """Whether an exception pattern could re-include something below an excluded
        ``directory`` (so a walker must still descend into it)."""
        prefix = directory.rstrip("/") + "/"
        for pattern in self.patterns:
            if not pattern.exclusion:
                continue
            if "*" in pattern.text or "?" in pattern.text or "[" in pattern.text:
                return True
            if pattern.text.startswith(prefix):
                return True
        return False
