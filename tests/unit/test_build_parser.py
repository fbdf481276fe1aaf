"""The Dockerfile parser and stage planner: directives, continuations, comments, forms,
flags, and errors that name the line."""

from __future__ import annotations

import pytest

from longboat.build.dockerfile import parse
from longboat.build.errors import DockerfileError
from longboat.build.instructions import name_values, parse_words, plan


def test_continuations_comments_and_case() -> None:
    df = parse("# a comment\nfrom busybox\nRUN echo a \\\n  # inside\n    && echo b\n\n"
               "cmd [\"sh\", \"-c\", \"x\"]\n")
    assert [n.keyword for n in df.nodes] == ["from", "run", "cmd"]
    assert df.nodes[1].rest == "echo a     && echo b"
    assert df.nodes[1].line == 3
    assert df.nodes[2].json_args() == ["sh", "-c", "x"]
    assert df.nodes[1].json_args() is None


def test_escape_directive_backtick() -> None:
    df = parse("# escape=`\nFROM x\nRUN dir c:\\ `\n  && echo\n")
    assert df.escape == "`"
    assert df.nodes[1].rest == "dir c:\\   && echo"


def test_syntax_directive_is_ignored_with_a_warning() -> None:
    df = parse("# syntax=docker/dockerfile:1\nFROM x\n")
    assert df.warnings and "syntax" in df.warnings[0]


def test_directive_after_an_instruction_is_a_comment() -> None:
    df = parse("FROM x\n# escape=`\nRUN a \\\n b\n")
    assert df.escape == "\\"
    assert df.nodes[1].rest == "a  b"


def test_flags_are_split_off() -> None:
    df = parse("FROM x AS a\nCOPY --from=a --chown=1:2 /src /dst\n")
    node = df.nodes[1]
    assert node.flags == {"from": "a", "chown": "1:2"}
    assert node.rest == "/src /dst"


def test_unknown_instruction_names_the_line() -> None:
    with pytest.raises(DockerfileError) as err:
        parse("FROM x\n\nFOO bar\n")
    assert err.value.message == "Dockerfile parse error line 3: unknown instruction: FOO"


def test_heredoc_is_refused_clearly() -> None:
    with pytest.raises(DockerfileError) as err:
        parse("FROM x\nRUN <<EOF\necho hi\nEOF\n")
    assert "line 2" in err.value.message and "heredoc" in err.value.message


@pytest.mark.parametrize("text, message", [
    ("RUN echo\n", "line 1: no build stage in current context"),
    ("FROM x\nENV\n", "line 2: ENV requires at least one argument"),
    ("FROM x\nENV a=1 b\n", "line 2: Syntax error - can't find = in \"b\""),
    ("FROM x\nCOPY a\n", "line 2: COPY requires at least two arguments"),
    ("FROM x\nSHELL /bin/sh\n", "line 2: SHELL requires the arguments to be in JSON form"),
    ("FROM x\nONBUILD FROM y\n", "line 2: FROM isn't allowed as an ONBUILD trigger"),
    ("FROM x\nONBUILD ONBUILD RUN y\n", "line 2: Chaining ONBUILD"),
    ("FROM x\nRUN --mount=type=cache true\n", "line 2: Unknown flag: mount"),
    ("FROM x\nHEALTHCHECK FOO\n", "line 2: Unknown type in HEALTHCHECK"),
    ("FROM a b\n", "line 1: FROM requires either one or three arguments"),
    ("FROM a AS x\nFROM b AS x\n", "line 2: duplicate name x"),
    ("FROM x\nUSER a b\n", "line 2: USER requires exactly one argument"),
])
def test_bad_instructions(text: str, message: str) -> None:
    with pytest.raises(DockerfileError) as err:
        plan(text)
    assert message in err.value.message


def test_stages_and_meta_args() -> None:
    p = plan("ARG BASE=busybox\nFROM $BASE AS build\nRUN x\nFROM scratch\n"
             "COPY --from=build /a /a\n")
    assert [n.rest for n in p.meta_args] == ["BASE=busybox"]
    assert [(s.index, s.name, s.base) for s in p.stages] == [(0, "build", "$BASE"),
                                                              (1, "", "scratch")]
    assert len(p.stages[1].nodes) == 1


def test_parse_words_keeps_quotes() -> None:
    assert parse_words('a="b c" d\\ e \'f g\'', "\\") == ['a="b c"', "d\\ e", "'f g'"]


def test_env_forms() -> None:
    node = parse("ENV A=1 B=\"two words\"\n").nodes[0]
    assert name_values(node, "\\") == [("A", "1"), ("B", '"two words"')]
    legacy = parse("ENV NAME some value here\n").nodes[0]
    assert name_values(legacy, "\\") == [("NAME", "some value here")]
