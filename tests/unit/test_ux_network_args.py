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


def test_network_create_options_as_dockers_map_flags() -> None:
    from longboat.cli import networks
    from longboat.cli.main import CommandError, UsageError

    def request(*words: str) -> dict[str, Any]:
        args = build_parser("network").parse_args(["network", "create", *words, "n"])
        out: dict[str, Any] = networks.create_request(args)
        return out

    # -o KEY alone is KEY="" (docker's MapOpts), --driver-opt of connect stays strict
    assert request("-o", "flag", "--ipam-opt", "x")["Options"] == {"flag": ""}
    assert request("--ipam-opt", "x")["IPAM"]["Options"] == {"x": ""}
    with pytest.raises(CommandError, match=r"^every ip-range or gateway must have a "
                                           r"corresponding subnet$"):
        request("--ip-range", "10.0.0.0/25")
    with pytest.raises(UsageError, match="is not a key=value pair"):
        networks._pairs(["x"], "--driver-opt")
