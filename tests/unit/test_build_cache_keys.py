"""Cache keys and --cache-from history matching; COPY path rules."""

from __future__ import annotations

import pytest

from longboat.build import copy as copying
from longboat.build.cache import cache_key, history_match, layer_index
from longboat.build.errors import BuildError

PARENT = "sha256:" + "1" * 64


def config(**fields: object) -> dict[str, object]:
    base: dict[str, object] = {"Cmd": ["/bin/sh", "-c", "#(nop) ENV a=b"],
                               "Env": ["PATH=/bin"], "Hostname": "x", "Image": "y"}
    base.update(fields)
    return base


def test_key_depends_on_parent_and_step() -> None:
    key = cache_key(PARENT, config())
    assert key == cache_key(PARENT, config(Hostname="other", Image="z"))
    assert key != cache_key("sha256:" + "2" * 64, config())
    assert key != cache_key(PARENT, config(Cmd=["/bin/sh", "-c", "#(nop) ENV a=c"]))
    assert key != cache_key(PARENT, config(Env=["PATH=/bin", "X=1"]))
    assert key != cache_key(PARENT, config(User="nobody"))
    assert key != cache_key(PARENT, config(WorkingDir="/app"))
    # empty and missing are the same (Docker's null vs [] vs {})
    assert cache_key(PARENT, config(Labels={})) == cache_key(PARENT, config(Labels=None))


def test_run_keys_carry_the_build_args() -> None:
    one = cache_key(PARENT, config(Cmd=["|1", "V=1", "/bin/sh", "-c", "make"]))
    two = cache_key(PARENT, config(Cmd=["|1", "V=2", "/bin/sh", "-c", "make"]))
    assert one != two


def image(history: list[dict[str, object]], diff_ids: list[str]) -> dict[str, object]:
    return {"history": history, "rootfs": {"diff_ids": diff_ids}}


def test_history_match() -> None:
    base = image([{"created_by": "base"}], ["sha256:a"])
    source = image([{"created_by": "base"}, {"created_by": "ENV", "empty_layer": True},
                    {"created_by": "RUN x"}], ["sha256:a", "sha256:b"])
    assert history_match(source, base, "ENV") == 1
    assert history_match(source, base, "RUN y") is None
    after_env = image([{"created_by": "base"}, {"created_by": "ENV", "empty_layer": True}],
                      ["sha256:a"])
    assert history_match(source, after_env, "RUN x") == 2
    assert layer_index(source, 2) == 1
    assert layer_index(source, 1) is None
    other = image([{"created_by": "other"}], ["sha256:z"])
    assert history_match(source, other, "ENV") is None


@pytest.mark.parametrize("dest, workdir, expected", [
    ("/app/", "/", ("/app", True)),
    ("/app", "/", ("/app", False)),
    ("rel", "/w", ("/w/rel", False)),
    ("rel/", "/w", ("/w/rel", True)),
    (".", "/w", ("/w", True)),
    ("../x", "/w/d", ("/w/x", False)),
])
def test_destination(dest: str, workdir: str, expected: tuple[str, bool]) -> None:
    assert copying.destination(dest, workdir) == expected


@pytest.mark.parametrize("src, cleaned", [("a/b", "a/b"), ("/a", "a"), ("./a/../b", "b"),
                                          (".", "."), ("", ".")])
def test_clean_source(src: str, cleaned: str) -> None:
    assert copying.clean_source(src, context=True) == cleaned


@pytest.mark.parametrize("src", ["../x", "a/../../x", ".."])
def test_sources_outside_the_context_are_refused(src: str) -> None:
    with pytest.raises(BuildError) as err:
        copying.clean_source(src, context=True)
    assert "outside the build context" in err.value.message


def test_wildcards() -> None:
    import re

    assert copying.has_wildcards("*.txt") and not copying.has_wildcards("a\\*b")
    regex = re.compile(copying._translate("dir/*.txt"))
    assert regex.match("dir/a.txt") and not regex.match("dir/sub/a.txt")
    assert not regex.match("other/a.txt")
