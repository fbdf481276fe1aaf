"""Registry authentication pieces: WWW-Authenticate parsing, scopes, the credentials file,
and which scheme a registry is spoken to with."""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

from longboat.errors import InvalidArgument
from longboat.image.registry_auth import (
    DOCKER_HUB_KEY,
    AuthFileError,
    AuthStore,
    Challenge,
    config_key,
    parse_www_authenticate,
    repository_scope,
)
from longboat.image.registry_client import api_host, is_local, schemes

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("header", "expected"), [
    ('Basic realm="Registry Realm"', [Challenge("basic", {"realm": "Registry Realm"})]),
    ('Bearer realm="https://auth.docker.io/token",service="registry.docker.io",'
     'scope="repository:library/busybox:pull"',
     [Challenge("bearer", {"realm": "https://auth.docker.io/token",
                           "service": "registry.docker.io",
                           "scope": "repository:library/busybox:pull"})]),
    # commas inside a quoted value, odd spacing, upper-case names, token values
    ('BEARER Realm = "http://127.0.0.1:1/t" , Service=reg, scope="repository:a/b:pull,push"',
     [Challenge("bearer", {"realm": "http://127.0.0.1:1/t", "service": "reg",
                           "scope": "repository:a/b:pull,push"})]),
    # escapes in quoted strings
    (r'Basic realm="say \"hi\" \\ there"', [Challenge("basic", {"realm": 'say "hi" \\ there'})]),
    # two challenges in one header
    ('Basic realm="a", Bearer realm="https://t/x",service="s"',
     [Challenge("basic", {"realm": "a"}), Challenge("bearer", {"realm": "https://t/x",
                                                               "service": "s"})]),
    ('Negotiate abc123==', [Challenge("negotiate", {})]),
    ("Bearer", [Challenge("bearer", {})]),
    ("", []),
    ('"garbage', []),
])
def test_parse_www_authenticate(header: str, expected: list[Challenge]) -> None:
    assert parse_www_authenticate(header) == expected


def test_challenge_realm() -> None:
    assert Challenge("bearer", {"realm": "https://x/t"}).realm == "https://x/t"
    assert Challenge("basic").realm == ""


def test_repository_scope() -> None:
    assert repository_scope("library/busybox", ["pull"]) == "repository:library/busybox:pull"
    assert repository_scope("a/b", ("pull", "push")) == "repository:a/b:pull,push"
    with pytest.raises(InvalidArgument):
        repository_scope("a", [])
    with pytest.raises(InvalidArgument):
        repository_scope("", ["pull"])


@pytest.mark.parametrize(("host", "key"), [
    ("docker.io", DOCKER_HUB_KEY),
    ("index.docker.io", DOCKER_HUB_KEY),
    ("https://index.docker.io/v1/", DOCKER_HUB_KEY),
    ("registry-1.docker.io", DOCKER_HUB_KEY),
    ("localhost:5000", "localhost:5000"),
    ("https://quay.io/", "quay.io"),
    ("[::1]:5000", "[::1]:5000"),
])
def test_config_key(host: str, key: str) -> None:
    assert config_key(host) == key


def test_config_key_refuses_paths() -> None:
    with pytest.raises(InvalidArgument):
        config_key("quay.io/some/repo")


def test_auth_file_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "dir" / "config.json"
    store = AuthStore(str(path))
    assert store.get("localhost:5000") is None
    old = os.umask(0)
    try:
        store.set("localhost:5000", "alice", "pa:ss wörd")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    doc = json.loads(path.read_text())
    assert doc == {"auths": {"localhost:5000": {"auth": "YWxpY2U6cGE6c3Mgd8O2cmQ="}}}
    assert store.get("localhost:5000") == ("alice", "pa:ss wörd")
    store.set("docker.io", "bob", "x")
    assert store.get("index.docker.io") == ("bob", "x")
    assert DOCKER_HUB_KEY in json.loads(path.read_text())["auths"]
    assert store.hosts() == sorted([DOCKER_HUB_KEY, "localhost:5000"])
    assert store.remove("localhost:5000") is True
    assert store.remove("localhost:5000") is False
    assert store.get("localhost:5000") is None


def test_auth_file_keeps_what_docker_wrote(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text(json.dumps({"auths": {"quay.io": {"username": "u", "password": "p"}},
                                "credsStore": "pass", "HttpHeaders": {"X-A": "b"}}))
    store = AuthStore(str(path))
    assert store.get("quay.io") == ("u", "p")
    store.set("localhost:5000", "a", "b")
    doc = json.loads(path.read_text())
    assert doc["credsStore"] == "pass" and doc["HttpHeaders"] == {"X-A": "b"}
    assert doc["auths"]["quay.io"] == {"username": "u", "password": "p"}


@pytest.mark.parametrize("content", [
    "not json", "[]", '{"auths": []}', '{"auths": {"h": {"auth": "%%%"}}}',
    '{"auths": {"h": {"auth": "bm9jb2xvbg=="}}}',  # "nocolon"
])
def test_bad_auth_files(tmp_path: Path, content: str) -> None:
    path = tmp_path / "config.json"
    path.write_text(content)
    with pytest.raises(AuthFileError):
        AuthStore(str(path)).get("h")
    assert path.read_text() == content


def test_bad_user_names(tmp_path: Path) -> None:
    store = AuthStore(str(tmp_path / "c.json"))
    for user in ("", "a:b"):
        with pytest.raises(InvalidArgument):
            store.set("h", user, "p")
    assert not (tmp_path / "c.json").exists()


@pytest.mark.parametrize(("netloc", "expected"), [
    ("localhost", ["http"]), ("localhost:5000", ["http"]), ("127.0.0.1:5000", ["http"]),
    ("127.3.2.1", ["http"]), ("[::1]:5000", ["http"]), ("::1", ["http"]),
    ("registry.example.com", ["https"]), ("10.0.0.1:5000", ["https"]),
    ("insecure.example.com:5000", ["https-insecure", "http"]),
])
def test_schemes(netloc: str, expected: list[str]) -> None:
    assert schemes(netloc, {"insecure.example.com:5000"}) == expected


def test_docker_hub_host() -> None:
    assert api_host("docker.io") == "registry-1.docker.io"
    assert api_host("quay.io") == "quay.io"
    assert not is_local("localhost.example.com")
