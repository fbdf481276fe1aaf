""".dockerignore patterns with Docker's rules (one implementation for CLI and engine)."""

from __future__ import annotations

import pytest

from longboat.build.dockerignore import Matcher, read_patterns


def matcher(text: str) -> Matcher:
    return Matcher(read_patterns(text))


def test_reading_cleans_and_skips_comments() -> None:
    assert read_patterns("# c\n\n /abs/x \n!  keep/../y\n*.log\n") == \
        ["abs/x", "!y", "*.log"]


@pytest.mark.parametrize("patterns, path, excluded", [
    ("*.log", "a.log", True),
    ("*.log", "dir/a.log", False),
    ("**/*.log", "dir/sub/a.log", True),
    ("**/*.log", "a.log", True),
    ("dir", "dir/sub/file", True),
    ("dir/*", "dir/file", True),
    ("dir/*", "dir", False),
    ("*\n!keep", "keep", False),
    ("*\n!keep", "other", True),
    ("dir\n!dir/keep", "dir/keep", False),
    ("dir\n!dir/keep", "dir/drop", True),
    ("a?c", "abc", True),
    ("a?c", "a/c", False),
    ("[a-c]x", "bx", True),
    ("[!a-c]x", "bx", False),
    ("**", "anything/at/all", True),
    ("docs/**/*.md", "docs/a/b/c.md", True),
    ("docs/**/*.md", "docs/c.md", True),
    ("a.b", "axb", False),
    ("\\*", "*", True),
])
def test_matches(patterns: str, path: str, excluded: bool) -> None:
    assert matcher(patterns).excluded(path) is excluded


def test_last_match_wins() -> None:
    m = matcher("*.txt\n!important.txt\nimportant.txt")
    assert m.excluded("important.txt")


def test_exceptions_below_an_excluded_directory_are_found() -> None:
    m = matcher("dir\n!dir/keep")
    assert m.may_have_exceptions_below("dir")
    assert not matcher("dir").may_have_exceptions_below("dir")


def test_bad_patterns() -> None:
    with pytest.raises(ValueError):
        Matcher(["!"])
    with pytest.raises(ValueError):
        Matcher(["[abc"])
