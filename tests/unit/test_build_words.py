"""Docker's variable substitution and word rules."""

from __future__ import annotations

import pytest

from longboat.build.errors import BuildError
from longboat.build.shell_words import process_word, process_words

ENV = {"A": "apple", "EMPTY": "", "SP": "x y"}


@pytest.mark.parametrize("text, expected", [
    ("$A", "apple"),
    ("${A}", "apple"),
    ("${A}s", "apples"),
    ("$As", ""),
    ("${MISSING:-default}", "default"),
    ("${EMPTY:-default}", "default"),
    ("${A:-default}", "apple"),
    ("${A:+alt}", "alt"),
    ("${MISSING:+alt}", ""),
    ("${MISSING:-$A}", "apple"),
    ("\\$A", "$A"),
    ("'$A'", "$A"),
    ('"$A b"', "apple b"),
    ('"\\$A"', "$A"),
    ("a\\ b", "a b"),
    ("$", "$"),
    ("a  b", "a  b"),
    ("${SP}", "x y"),
])
def test_process_word(text: str, expected: str) -> None:
    assert process_word(text, ENV) == expected


def test_backtick_escape() -> None:
    assert process_word("`$A", ENV, "`") == "$A"
    assert process_word("c:\\dir", ENV, "`") == "c:\\dir"


def test_words_split_after_expansion() -> None:
    assert process_words('80 "8080/udp" $A', ENV) == ["80", "8080/udp", "apple"]


@pytest.mark.parametrize("text", ["${A", "${A:?x}", "'open", '"open'])
def test_bad_substitutions(text: str) -> None:
    with pytest.raises(BuildError):
        process_word(text, ENV)
