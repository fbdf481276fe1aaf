"""The network, volume, image and login modules' decisions, and the build context:
what counts as a change and what does not (module_utils loaded from collection/)."""

from __future__ import annotations

import importlib
import json
import os
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

COLLECTION = Path(__file__).resolve().parents[2] / "collection"


def module_utils(name: str) -> ModuleType:
    if str(COLLECTION) not in sys.path:
        sys.path.insert(0, str(COLLECTION))
    return importlib.import_module(f"ansible_collections.longboat.core.plugins.module_utils.{name}")


net = module_utils("network_spec")
compare = module_utils("compare")
image_ref = module_utils("image_ref")
auth = module_utils("auth_config")
build_context = module_utils("build_context")

NETWORK = {"Name": "app", "Id": "n" * 64, "Driver": "bridge", "Internal": False,
           "Attachable": False, "EnableIPv6": False, "Options": {},
           "Labels": {"tier": "backend"},
           "IPAM": {"Driver": "default", "Config": [
               {"Subnet": "172.30.0.0/24", "Gateway": "172.30.0.1"}]},
           "Containers": {"c1": {"Name": "web"}, "c2": {"Name": "/worker"}}}


def network_diff(**given: Any) -> list[str]:
    wanted = net.wanted_network({"driver": "bridge", **given})
    methods = compare.resolve_comparisons(net.NETWORK_OPTIONS, None)
    return list(net.network_differences(wanted, NETWORK, methods).names)


def test_a_network_as_created_has_no_difference() -> None:
    assert network_diff(ipam_config=[{"subnet": "172.30.0.0/24"}],
                        labels={"tier": "backend"}, internal=False) == []
    # the gateway the engine picked is not compared when the task gives none
    assert network_diff(ipam_config=[{"subnet": "172.30.0.0/24", "gateway": None,
                                      "iprange": None, "aux_addresses": None}]) == []


@pytest.mark.parametrize(("option", "value"), [
    ("ipam_config", [{"subnet": "172.31.0.0/24"}]),
    ("ipam_config", [{"subnet": "172.30.0.0/24", "gateway": "172.30.0.254"}]),
    ("labels", {"tier": "frontend"}),
    ("internal", True),
    ("attachable", True),
    ("driver", "macvlan"),
    ("driver_options", {"com.docker.network.bridge.name": "br-app"}),
])
def test_a_changed_network_option_is_a_difference(option: str, value: Any) -> None:
    assert network_diff(**{option: value}) == [option]


def test_network_body_is_dockers_create_request() -> None:
    wanted = net.wanted_network({"driver": "bridge", "internal": True,
                                 "ipam_config": [{"subnet": "10.9.0.0/24",
                                                  "aux_addresses": {"r": "10.9.0.2"}}],
                                 "labels": {"a": 1}})
    assert net.network_body("app", wanted) == {
        "Name": "app", "CheckDuplicate": True, "Driver": "bridge", "Internal": True,
        "IPAM": {"Driver": "default", "Config": [
            {"Subnet": "10.9.0.0/24", "AuxiliaryAddresses": {"r": "10.9.0.2"}}]},
        "Labels": {"a": "1"}}


def test_connected_containers_with_and_without_appends() -> None:
    connected = net.connected_names(NETWORK)
    assert connected == ["web", "worker"]
    assert net.connection_changes(["web", "db"], connected, False) == (["db"], ["worker"])
    assert net.connection_changes(["web", "db"], connected, True) == (["db"], [])
    assert net.connection_changes(["/web", "worker"], connected, False) == ([], [])
    assert net.connection_changes(None, connected, False) == ([], [])


def test_volume_differences() -> None:
    volume = {"Name": "v", "Driver": "local", "Options": None, "Labels": {"a": "1"}}
    methods = compare.resolve_comparisons(net.VOLUME_OPTIONS, None)

    def diff(**given: Any) -> list[str]:
        wanted = net.wanted_volume({"driver": "local", **given})
        return list(net.volume_differences(wanted, volume, methods).names)

    assert diff() == []
    assert diff(labels={"a": "1"}) == []
    assert diff(labels={"a": "2"}) == ["labels"]
    assert diff(driver_options={"type": "tmpfs"}) == ["driver_options"]
    assert net.volume_body("v", net.wanted_volume({"driver": "local",
                                                   "driver_options": {"o": "size=1m"}})) \
        == {"Name": "v", "Driver": "local", "DriverOpts": {"o": "size=1m"}}


@pytest.mark.parametrize(("ref", "split", "full"), [
    ("busybox", ("busybox", "latest"), "busybox:latest"),
    ("busybox:1.36", ("busybox", "1.36"), "busybox:1.36"),
    ("localhost:5000/app", ("localhost:5000/app", "latest"), "localhost:5000/app:latest"),
    ("localhost:5000/app:v2", ("localhost:5000/app", "v2"), "localhost:5000/app:v2"),
    ("app@sha256:" + "a" * 64, ("app", "sha256:" + "a" * 64), "app@sha256:" + "a" * 64),
])
def test_image_references(ref: str, split: tuple[str, str], full: str) -> None:
    assert image_ref.split_reference(ref) == split
    assert image_ref.full_reference(ref) == full


def test_saved_credentials_round_trip_in_dockers_format(tmp_path: Path) -> None:
    path = str(tmp_path / "cfg" / "config.json")
    assert auth.get(path, "localhost:5000") is None
    auth.put(path, "https://localhost:5000/v2/", "deploy", "s3:cret")
    assert auth.get(path, "localhost:5000") == ("deploy", "s3:cret")
    assert os.stat(path).st_mode & 0o777 == 0o600
    data = json.loads(Path(path).read_text())
    assert list(data["auths"]) == ["localhost:5000"]
    assert auth.x_registry_auth(path, "localhost:5000/app:1") == {
        "username": "deploy", "password": "s3:cret", "serveraddress": "localhost:5000"}
    assert auth.x_registry_auth(path, "busybox") is None      # Docker Hub: none saved
    assert auth.config_key("docker.io") == auth.HUB_KEY
    assert auth.remove(path, "localhost:5000") is True
    assert auth.remove(path, "localhost:5000") is False


def test_a_broken_credentials_file_is_named_in_the_error(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text("{not json")
    with pytest.raises(ValueError, match=r"config\.json is not valid JSON"):
        auth.get(str(path), "localhost:5000")


def test_build_context_follows_dockerignore(tmp_path: Path) -> None:
    for name in ("Dockerfile", "app.py", "README.md", "build/out.o", "build/keep.txt",
                 "docs/a.md", "src/x/test_a.py", "src/x/a.py"):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text(name)
    (tmp_path / ".dockerignore").write_text(
        "# comment\n*.md\nbuild\n!build/keep.txt\n**/test_*.py\nDockerfile\n")
    files = build_context.context_files(str(tmp_path))
    assert "Dockerfile" in files and ".dockerignore" in files      # always sent
    assert "app.py" in files and "src/x/a.py" in files
    assert "build/keep.txt" in files
    assert "docs/a.md" in files      # as Docker: *.md matches at the top only
    for gone in ("README.md", "build/out.o", "src/x/test_a.py"):
        assert gone not in files
