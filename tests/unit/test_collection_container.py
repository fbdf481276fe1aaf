"""The container module's comparison: what counts as a change and what does not.

The collection's module_utils are loaded from collection/ by path, as Ansible would
ship them to a host (they cannot import longboat)."""

from __future__ import annotations

import copy
import importlib
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


spec = module_utils("container_spec")
compare = module_utils("compare")

IMAGE_CONFIG = {"Env": ["PATH=/usr/bin:/bin", "LANG=C"], "Labels": {"vendor": "x"},
                "ExposedPorts": {"9000/tcp": {}}, "Volumes": {"/data": {}}}


def params(**given: Any) -> dict[str, Any]:
    """The module's parameters: every option None unless given."""
    out: dict[str, Any] = {name: None for name in spec.OPTIONS}
    out.update(given)
    return out


def inspected(wanted: dict[str, Any], image: str = "busybox:latest") -> dict[str, Any]:
    """What an engine that keeps the create request as given shows for it (longboatd
    and docker both keep Config and HostConfig)."""
    body = copy.deepcopy(spec.create_body(wanted, image))
    host = body.pop("HostConfig")
    body.pop("NetworkingConfig", None)
    return {"Id": "c" * 64, "Image": "sha256:" + "1" * 64, "Config": body, "HostConfig": host,
            "NetworkSettings": {"Networks": {}}}


def differences(wanted_params: dict[str, Any], container: dict[str, Any],
                comparisons: dict[str, str] | None = None) -> list[str]:
    wanted = spec.wanted_values(params(**wanted_params))
    methods = compare.resolve_comparisons(spec.OPTIONS, comparisons)
    found = spec.recreate_differences(wanted, spec.actual_values(container, IMAGE_CONFIG),
                                      methods, IMAGE_CONFIG)
    return list(found.names)


FULL: dict[str, Any] = dict(
            command="sleep 1000", entrypoint=["/bin/sh", "-c"], env={"A": "1", "B": "two"},
            labels={"app": "web"}, published_ports=["8080:80", "127.0.0.1:5353:53/udp"],
            exposed_ports=["81"], volumes=["/srv:/srv:ro", "/cache"],
            mounts=[{"type": "volume", "source": "data", "target": "/var/data",
                     "read_only": False}],
            restart_policy="on-failure", restart_retries=3, user="nobody",
            working_dir="/tmp", hostname="web1", memory="512m", cpus=1.5, privileged=False,
            read_only=True, init=True, tty=False, interactive=True,
            capabilities=["net_admin"], cap_drop=["CAP_MKNOD"], dns_servers=["10.0.0.2"],
            etc_hosts={"db": "10.0.0.5"}, stop_signal="SIGINT", stop_timeout=5,
            healthcheck={"test": "wget -q localhost", "interval": "30s", "timeout": "5s",
                         "retries": 3, "start_period": "1m"},
            log_driver="json-file", log_options={"max-size": "10m"},
            sysctls={"net.ipv4.ip_forward": "1"})


def test_a_container_created_from_the_options_matches_them() -> None:
    wanted = spec.wanted_values(params(**FULL))
    assert differences(FULL, inspected(wanted)) == []


def test_spellings_the_engine_treats_alike_are_no_change() -> None:
    container = inspected(spec.wanted_values(params(**FULL)))
    same = dict(FULL, command=["sleep", "1000"], memory="536870912",
                published_ports=["0.0.0.0:8080:80/tcp", "127.0.0.1:5353:53/udp"],
                volumes=["/cache", "/srv:/srv:ro"], capabilities=["CAP_NET_ADMIN"],
                cap_drop=["mknod"], healthcheck=dict(FULL["healthcheck"], interval=30))
    assert differences(same, container) == []


@pytest.mark.parametrize(("option", "value"), [
    ("command", "sleep 999"),
    ("entrypoint", ["/bin/bash", "-c"]),
    ("env", {"A": "1", "B": "three"}),
    ("env", {"A": "1"}),                      # B is set on the container: strict
    ("labels", {"app": "api"}),
    ("published_ports", ["8081:80", "127.0.0.1:5353:53/udp"]),
    ("published_ports", ["8080:80"]),
    ("volumes", ["/srv:/srv", "/cache"]),     # rw instead of ro
    ("mounts", [{"type": "volume", "source": "data", "target": "/var/data",
                 "read_only": True}]),
    ("restart_policy", "always"),
    ("restart_retries", 4),
    ("user", "root"),
    ("working_dir", "/"),
    ("hostname", "web2"),
    ("memory", "1g"),
    ("cpus", 2.0),
    ("read_only", False),
    ("init", False),
    ("capabilities", ["NET_ADMIN", "SYS_TIME"]),
    ("dns_servers", ["10.0.0.3"]),
    ("etc_hosts", {"db": "10.0.0.6"}),
    ("stop_signal", "SIGTERM"),
    ("healthcheck", {"test": "true", "interval": "30s", "timeout": "5s", "retries": 3,
                     "start_period": "1m"}),
    ("log_options", {"max-size": "20m"}),
    ("sysctls", {"net.ipv4.ip_forward": "0"}),
])
def test_a_changed_option_is_a_difference(option: str, value: Any) -> None:
    container = inspected(spec.wanted_values(params(**FULL)))
    assert differences({**FULL, option: value}, container) == [option]


def test_options_not_given_are_not_compared() -> None:
    container = inspected(spec.wanted_values(params(**FULL)))
    assert differences({"command": FULL["command"]}, container) == []
    assert differences({}, container) == []


def test_what_the_image_gives_is_inherited_not_a_difference() -> None:
    # the engine merged the image's env and labels into the container's (docker does)
    container = inspected(spec.wanted_values(params(env={"A": "1"}, labels={"app": "w"})))
    container["Config"]["Env"] = ["PATH=/usr/bin:/bin", "LANG=C", "A=1"]
    container["Config"]["Labels"] = {"vendor": "x", "app": "w"}
    assert differences({"env": {"A": "1"}, "labels": {"app": "w"}}, container) == []
    # an engine that did not merge them: the same wanted state, still no difference
    bare = inspected(spec.wanted_values(params(env={"A": "1"}, labels={"app": "w"})))
    assert differences({"env": {"A": "1"}, "labels": {"app": "w"}}, bare) == []
    # overriding an inherited value is a wish the container must show
    assert differences({"env": {"A": "1", "LANG": "C.UTF-8"}}, container) == ["env"]


def test_comparisons_relax_or_ignore_options() -> None:
    container = inspected(spec.wanted_values(params(env={"A": "1", "B": "2"},
                                                    labels={"a": "1", "b": "2"})))
    assert differences({"env": {"A": "1"}}, container,
                       {"env": "allow_more_present"}) == []
    assert differences({"env": {"A": "9"}}, container,
                       {"env": "allow_more_present"}) == ["env"]
    assert differences({"env": {"A": "9"}, "labels": {"x": "y"}}, container,
                       {"*": "ignore"}) == []
    assert differences({"env": {"A": "9"}, "labels": {"x": "y"}}, container,
                       {"*": "ignore", "labels": "strict"}) == ["labels"]


def test_comparisons_that_make_no_sense_are_refused_with_the_choices() -> None:
    with pytest.raises(compare.ComparisonError, match=r"unknown option 'colour'.*command"):
        compare.resolve_comparisons(spec.OPTIONS, {"colour": "strict"})
    with pytest.raises(compare.ComparisonError, match="single value"):
        compare.resolve_comparisons(spec.OPTIONS, {"user": "allow_more_present"})
    with pytest.raises(compare.ComparisonError, match="not one of"):
        compare.resolve_comparisons(spec.OPTIONS, {"env": "loose"})


def test_defaults_the_engine_fills_in_equal_an_explicit_default() -> None:
    container = inspected(spec.wanted_values(params()))
    container["HostConfig"]["RestartPolicy"] = {"Name": "", "MaximumRetryCount": 0}
    assert differences({"restart_policy": "no", "privileged": False, "memory": "0",
                        "log_driver": "json-file", "stop_signal": "SIGTERM",
                        "network_mode": "bridge"}, container) == []


def test_bad_values_fail_with_what_to_write() -> None:
    with pytest.raises(spec.SpecError, match="quote it"):
        spec.wanted_values(params(env={"DEBUG": True}))
    with pytest.raises(spec.SpecError, match="not a size"):
        spec.wanted_values(params(memory="lots"))
    with pytest.raises(spec.SpecError, match="CONTAINER_PORT"):
        spec.wanted_values(params(published_ports=["1:2:3:4"]))
    with pytest.raises(spec.SpecError, match="1 to 65535"):
        spec.wanted_values(params(published_ports=["70000"]))
    with pytest.raises(spec.SpecError, match="absolute path"):
        spec.wanted_values(params(volumes=["relative"]))


def test_published_ports_in_docker_run_syntax() -> None:
    parsed = spec.parse_published_ports(["80", "8080:80", "127.0.0.1::53/udp",
                                         "9000-9001:9000-9001", "[::1]:8443:443"])
    assert parsed == {"80/tcp": ["0.0.0.0:", "0.0.0.0:8080"], "53/udp": ["127.0.0.1:"],
                      "9000/tcp": ["0.0.0.0:9000"], "9001/tcp": ["0.0.0.0:9001"],
                      "443/tcp": ["::1:8443"]}
    bindings = spec.port_bindings(parsed)
    assert {"HostIp": "", "HostPort": "8080"} in bindings["80/tcp"]
    assert spec.canonical_bindings(bindings) == parsed


def test_create_body_connects_the_first_network_at_create() -> None:
    wanted = spec.wanted_values(params(networks=[
        {"name": "app", "aliases": ["web"], "ipv4_address": "172.30.0.5"},
        {"name": "backend", "aliases": None, "ipv4_address": None}]))
    body = spec.create_body(wanted, "busybox:latest")
    assert body["HostConfig"]["NetworkMode"] == "app"
    assert body["NetworkingConfig"] == {"EndpointsConfig": {"app": {
        "Aliases": ["web"], "IPAMConfig": {"IPv4Address": "172.30.0.5"}}}}


def test_network_changes_connect_reconnect_and_strictly_disconnect() -> None:
    want = [spec.canonical_network({"name": "app", "aliases": ["web"]}),
            spec.canonical_network({"name": "backend", "ipv4_address": "10.1.0.9"})]
    container = {"Id": "abcdef1234567890", "NetworkSettings": {"Networks": {
        "app": {"Aliases": ["web", "abcdef123456"]},
        "backend": {"IPAMConfig": {"IPv4Address": "10.1.0.8"}},
        "bridge": {}, "extra": {}}}}
    have = spec.actual_networks(container)
    connect, disconnect = spec.network_changes(want, have, "allow_more_present")
    assert [n["name"] for n in connect] == ["backend"]      # another address: reconnect
    assert [n["name"] for n in disconnect] == ["backend"]
    _connect, disconnect = spec.network_changes(want, have, "strict", keep=["bridge"])
    assert sorted(n["name"] for n in disconnect) == ["backend", "extra"]
    assert spec.network_changes(want, have, "ignore") == ([], [])
    # the container's short ID, an alias docker adds itself, is not an extra alias
    exact = [spec.canonical_network({"name": "app", "aliases": ["web"]})]
    assert spec.network_changes(exact, have[:1], "strict") == ([], [])


def test_sizes_and_durations() -> None:
    assert compare.parse_size("512m") == 512 << 20
    assert compare.parse_size("1.5G") == 3 << 29
    assert compare.parse_size("100kb") == 100 << 10
    assert compare.parse_size(4096) == 4096
    assert compare.parse_duration("1m30s") == 90 * 10**9
    assert compare.parse_duration("500ms") == 5 * 10**8
    assert compare.parse_duration(2) == 2 * 10**9
    with pytest.raises(ValueError, match="not a duration"):
        compare.parse_duration("soon")
