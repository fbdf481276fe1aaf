"""longboatd serves the Docker API for images: the real docker CLI drives it."""

from __future__ import annotations

import http.client
import json
import os
import socket
import stat
import tarfile
from pathlib import Path

import pytest
from tests.support.engine import Longboatd
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration


class UnixHTTP(http.client.HTTPConnection):
    def __init__(self, path: str) -> None:
        super().__init__("localhost", timeout=30)
        self.path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.connect(self.path)


def call(engine: Longboatd, method: str, path: str) -> tuple[int, dict[str, str], bytes]:
    conn = UnixHTTP(str(engine.socket))
    try:
        conn.request(method, path)
        response = conn.getresponse()
        return response.status, dict(response.getheaders()), response.read()
    finally:
        conn.close()


@pytest.fixture(scope="module")
def engine(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("longboatd")
    with Longboatd(workdir) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory, rootfs_template):
    path = tmp_path_factory.mktemp("rootfs") / "busybox.tar"
    with tarfile.open(path, "w") as tar:
        tar.add(rootfs_template, arcname=".")
    return path


def test_ping_version_and_headers(engine):
    status, headers, body = call(engine, "GET", "/_ping")
    assert (status, body) == (200, b"OK")
    assert headers["Api-Version"] == "1.41" and headers["Ostype"] == "linux"
    assert headers["Server"].startswith("Longboat/") and headers["Swarm"] == "inactive"
    status, headers, body = call(engine, "HEAD", "/_ping")
    assert status == 200 and body == b""
    status, _, body = call(engine, "GET", "/v1.41/version")
    version = json.loads(body)
    assert version["ApiVersion"] == "1.41" and version["MinAPIVersion"] == "1.24"
    assert version["Components"][0]["Details"]["ApiVersion"] == "1.41"
    status, _, body = call(engine, "GET", "/v1.99/version")
    assert status == 400
    assert json.loads(body)["message"] == ("client version 1.99 is too new. Maximum "
                                           "supported API version is 1.41")
    out = engine.docker("version", "--format", "{{.Server.Components}}").stdout
    assert "Engine" in out


def test_errors_are_docker_shaped(engine):
    status, headers, body = call(engine, "GET", "/images/nope/json")
    assert status == 404 and headers["Content-Type"] == "application/json"
    assert json.loads(body) == {"message": "No such image: nope"}
    status, _, body = call(engine, "GET", "/no/such/endpoint")
    assert status == 404 and "message" in json.loads(body)
    missing = engine.docker("rmi", "nope", check=False)
    assert missing.returncode == 1 and "No such image: nope" in missing.stderr


def test_socket_and_data_root_are_private(engine):
    assert stat.S_IMODE(os.stat(engine.data_root).st_mode) == 0o700
    mode = stat.S_IMODE(os.stat(engine.socket).st_mode)
    assert mode & 0o007 == 0   # never world-accessible (0660 with a longboat group)


def test_import_images_tag_history_inspect_rmi(engine, rootfs_tar):
    image_id = engine.docker("import", str(rootfs_tar), "imported:1").stdout.strip()
    assert image_id.startswith("sha256:")
    listing = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert f"imported:1 {image_id[7:19]}" in listing
    engine.docker("tag", "imported:1", "localhost:5000/team/app:v2")
    inspected = json.loads(engine.docker("inspect", "imported:1").stdout)[0]
    assert inspected["Id"] == image_id
    assert sorted(inspected["RepoTags"]) == ["imported:1", "localhost:5000/team/app:v2"]
    assert inspected["Os"] == "linux" and len(inspected["RootFS"]["Layers"]) == 1
    history = engine.docker("history", "--no-trunc", "--format", "{{.Comment}}",
                            "imported:1").stdout
    assert "Imported from -" in history
    refused = engine.docker("rmi", image_id, check=False)
    assert refused.returncode == 1 and "must be forced" in refused.stderr
    out = engine.docker("rmi", "localhost:5000/team/app:v2").stdout
    assert "Untagged: localhost:5000/team/app:v2" in out
    out = engine.docker("rmi", "imported:1").stdout
    assert f"Deleted: {image_id}" in out
    assert "imported" not in engine.docker("images").stdout


def test_import_applies_changes(engine, rootfs_tar):
    engine.docker("import", "--change", "VOLUME /data", "--change", "ENV A=1 B=two",
                  "--change", 'CMD ["/bin/sh"]', "--change", "WORKDIR /srv",
                  str(rootfs_tar), "changed:1")
    config = json.loads(engine.docker("inspect", "changed:1").stdout)[0]["Config"]
    assert config["Volumes"] == {"/data": {}}
    assert config["Env"] == ["A=1", "B=two"]
    assert config["Cmd"] == ["/bin/sh"] and config["WorkingDir"] == "/srv"
    refused = engine.docker("import", "--change", "FROM x", str(rootfs_tar), "bad:1",
                            check=False)
    assert refused.returncode != 0 and "not a valid change command" in refused.stderr
    assert "bad" not in engine.docker("images").stdout
    engine.docker("rmi", "changed:1")


def test_save_then_load_round_trip(engine, rootfs_tar, tmp_path):
    image_id = engine.docker("import", str(rootfs_tar), "roundtrip:1").stdout.strip()
    archive = tmp_path / "saved.tar"
    engine.docker("save", "-o", str(archive), "roundtrip:1")
    with tarfile.open(archive) as tar:
        names = tar.getnames()
    assert "manifest.json" in names and "index.json" in names
    engine.docker("rmi", "roundtrip:1")
    out = engine.docker("load", "-i", str(archive)).stdout
    assert "Loaded image: roundtrip:1" in out
    assert engine.docker("inspect", "--format", "{{.Id}}", "roundtrip:1").stdout.strip() \
        == image_id
    engine.docker("rmi", "roundtrip:1")


def test_push_and_pull_through_a_registry(engine, rootfs_tar, tmp_path):
    with LocalRegistry(tmp_path / "registry") as registry:
        name = f"{registry.host}/demo/busybox:1"
        image_id = engine.docker("import", str(rootfs_tar), name).stdout.strip()
        pushed = engine.docker("push", name).stdout
        assert "digest: sha256:" in pushed
        engine.docker("rmi", name)
        pulled = engine.docker("pull", name).stdout
        assert "Downloaded newer image" in pulled
        assert engine.docker("inspect", "--format", "{{.Id}}", name).stdout.strip() == image_id
        missing = engine.docker("pull", f"{registry.host}/demo/absent:1", check=False)
        assert missing.returncode != 0 and "not found" in missing.stderr
        engine.docker("rmi", name)


def test_sigterm_stops_the_daemon_and_removes_its_socket(tmp_path):
    daemon = Longboatd(tmp_path).start()
    daemon.stop()
    assert daemon.process is not None and daemon.process.returncode == 0
    assert not Path(daemon.socket).exists()


def test_bootstrap_a_busybox_image_through_the_api(engine):
    conn = UnixHTTP(str(engine.socket))
    try:
        conn.request("POST", "/v1.41/images/bootstrap?name=busybox:demo")
        response = conn.getresponse()
        events = [json.loads(line) for line in response.read().splitlines() if line.strip()]
    finally:
        conn.close()
    assert response.status == 200
    assert not [e for e in events if "error" in e], events
    image_id = events[-1]["aux"]["ID"]
    listed = engine.docker("images", "--format", "{{.Repository}}:{{.Tag}} {{.ID}}").stdout
    assert f"busybox:demo {image_id[7:19]}" in listed
    out = engine.docker("history", "--format", "{{.CreatedBy}}", "busybox:demo").stdout
    assert out.strip()
    engine.docker("rmi", "busybox:demo")
