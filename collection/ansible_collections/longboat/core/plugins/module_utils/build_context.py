# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The files of a build context, less what ``.dockerignore`` excludes (Docker's rules:
patterns matched against the path relative to the context, ``**`` for any number of
directories, ``!`` to re-include, the last matching pattern wins). The Dockerfile and
``.dockerignore`` are always sent, as Docker does."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import re


def _regex(pattern):
    out = []
    i = 0
    while i < len(pattern):
        char = pattern[i]
        if pattern.startswith("**", i):
            out.append(".*")
            i += 2
            if pattern.startswith("/", i):
                i += 1
            continue
        if char == "*":
            out.append("[^/]*")
        elif char == "?":
            out.append("[^/]")
        else:
            out.append(re.escape(char))
        i += 1
    # a pattern naming a directory excludes what is under it too
    return re.compile("^" + "".join(out) + "(/.*)?$")


def read_patterns(context):
    try:
        with open(os.path.join(context, ".dockerignore")) as f:
            lines = f.read().splitlines()
    except (IOError, OSError):
        return []
    patterns = []
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        negate = line.startswith("!")
        text = os.path.normpath(line[1:].strip() if negate else line).lstrip("/")
        if text == ".":
            continue
        patterns.append((negate, _regex(text)))
    return patterns


def excluded(relative, patterns):
    result = False
    for negate, regex in patterns:
        if regex.match(relative):
            result = not negate
    return result


def context_files(context, dockerfile="Dockerfile"):
    """Relative paths (directories before their contents) to put in the context tar."""
    patterns = read_patterns(context)
    keep = set([os.path.normpath(dockerfile), ".dockerignore"])
    out = []
    for root, dirs, files in os.walk(context):
        dirs.sort()
        relative_root = os.path.relpath(root, context)
        for name in sorted(dirs) + sorted(files):
            relative = os.path.normpath(os.path.join(relative_root, name))
            if relative in keep or not excluded(relative, patterns):
                out.append(relative)
            elif name in dirs and not any(negate for negate, _r in patterns):
                dirs.remove(name)     # nothing under it can come back
        # a symlink to a directory is sent as a link, not walked
        dirs[:] = [d for d in dirs if not os.path.islink(os.path.join(root, d))]
    return out
