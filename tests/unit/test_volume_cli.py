"""The volume flags of ``run``/``create`` (``-v``, ``--mount type=volume`` with
``volume-opt``, ``--volumes-from``) and the ``volume`` commands' parsers."""

from __future__ import annotations

import pytest

from longboat.cli import run_args
from longboat.cli.main import build_parser

pytestmark = pytest.mark.unit


def test_run_volume_flags_become_binds_mounts_volumes_from_and_config_volumes() -> None:
    args = build_parser().parse_args([
        "run", "-v", "named:/n:ro", "-v", "/anon", "-v", "/h:/h:rshared",
        "--mount", "type=volume,source=v,target=/m,volume-opt=type=tmpfs,"
                   "volume-opt=device=tmpfs,volume-label=a=b,volume-nocopy",
        "--volumes-from", "c1:ro", "--volumes-from", "c2", "--tmpfs", "/t:size=1m", "bb:1"])
    config = run_args.container_config(args, detach=True)
    host = config["HostConfig"]
    assert host["Binds"] == ["named:/n:ro", "/h:/h:rshared"]
    assert config["Volumes"] == {"/anon": {}}
    assert host["VolumesFrom"] == ["c1:ro", "c2"]
    assert host["Tmpfs"] == {"/t": "size=1m"}
    assert host["Mounts"] == [{"Type": "volume", "Source": "v", "Target": "/m",
                               "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"},
                                                 "DriverConfig": {"Options": {
                                                     "type": "tmpfs", "device": "tmpfs"}}}}]


def test_volume_opt_values_keep_their_equals_signs() -> None:
    spec = run_args.mount('type=volume,target=/x,"volume-opt=o=size=1m,uid=0"')
    assert spec["VolumeOptions"]["DriverConfig"]["Options"] == {"o": "size=1m,uid=0"}


@pytest.mark.parametrize("argv", [
    ["volume", "create", "-d", "local", "-o", "type=tmpfs", "--label", "a=b", "v1"],
    ["volume", "ls", "-q", "-f", "dangling=true", "--format", "{{.Name}}"],
    ["volume", "list"], ["volume", "inspect", "-f", "{{.Name}}", "a", "b"],
    ["volume", "rm", "-f", "a"], ["volume", "remove", "a"],
    ["volume", "prune", "-f", "--filter", "label=a"],
])
def test_volume_commands_parse(argv: list[str]) -> None:
    args = build_parser(only="volume").parse_args(argv)
    assert args.handler.startswith("longboat.cli.volumes:")
