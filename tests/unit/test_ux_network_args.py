"""``--network-alias`` and ``--link`` with a network that is not user-defined named by
``--network``: refused as docker 20.10's CLI refuses them (it accepted them silently)."""

from __future__ import annotations

from typing import Any

import pytest

from longboat.cli.main import build_parser
from longboat.cli.run_args import ArgumentError, container_config


def body(*words: str) -> dict[str, Any]:
    config: dict[str, Any] = container_config(
        build_parser("create").parse_args(["create", *words]), detach=True)
    return config


@pytest.mark.parametrize(("words", "message"), [
    (["--network", "none", "--network-alias", "x"],
     "network-scoped aliases are only supported for user-defined networks"),
    (["--network", "host", "--network-alias", "x"],
     "network-scoped aliases are only supported for user-defined networks"),
    (["--network", "name=bridge,alias=x"],
     "network-scoped aliases are only supported for user-defined networks"),
    (["--network", "bridge", "--link", "web:w"],
     "links are only supported for user-defined networks"),
    (["--network", "container:web", "--link", "web:w"],
     "links are only supported for user-defined networks"),
])
def test_aliases_and_links_need_a_user_defined_network(words: list[str], message: str
                                                       ) -> None:
    with pytest.raises(ArgumentError, match=message):
        body(*words, "busybox")


def test_what_stays_allowed() -> None:
    # legacy links on the default network, and both on a user-defined one
    assert body("--link", "web:w", "busybox")["HostConfig"]["Links"] == ["web:w"]
    endpoints = body("--network", "app", "--network-alias", "x", "--link", "web:w",
                     "busybox")["NetworkingConfig"]["EndpointsConfig"]
    assert endpoints == {"app": {"Aliases": ["x"], "Links": ["web:w"]}}
