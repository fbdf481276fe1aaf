"""docker-py, the Python client many tools use, drives longboatd."""

from __future__ import annotations

import io
import tarfile

import pytest
from tests.support.engine import Longboatd

docker = pytest.importorskip("docker")
pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def client(tmp_path_factory, rootfs_template):
    workdir = tmp_path_factory.mktemp("longboatd-dockerpy")
    daemon = Longboatd(workdir).start()
    api = docker.DockerClient(base_url=daemon.host, version="auto")
    try:
        data = io.BytesIO()
        with tarfile.open(fileobj=data, mode="w") as t:
            t.add(rootfs_template, arcname=".")
        api.api.import_image_from_data(data.getvalue(), repository="bb", tag="1")
        yield api
    finally:
        api.close()
        daemon.stop()


def test_version_and_images(client):
    assert client.version()["ApiVersion"] == "1.41"
    assert client.ping() is True
    image = client.images.get("bb:1")
    assert image.tags == ["bb:1"]
    image.tag("bb", "2")
    assert sorted(client.images.get("bb:1").tags) == ["bb:1", "bb:2"]
    client.images.remove("bb:2")


def test_run_logs_exec_and_remove(client):
    out = client.containers.run("bb:1", ["sh", "-c", "echo hello; echo oops >&2"],
                                remove=True, stderr=True)
    assert b"hello" in out
    container = client.containers.run("bb:1", ["sleep", "60"], detach=True, name="pyc",
                                      labels={"team": "boats"})
    try:
        container.reload()
        assert container.status == "running"
        assert client.containers.list(filters={"label": "team=boats"})[0].id == container.id
        code, output = container.exec_run(["sh", "-c", "echo $((6*7)); exit 2"])
        assert (code, output) == (2, b"42\n")
        container.stop(timeout=1)
        assert container.wait()["StatusCode"] == 137
        assert container.logs() == b""
    finally:
        container.remove(force=True)
    with pytest.raises(docker.errors.NotFound):
        client.containers.get("pyc")
    with pytest.raises(docker.errors.ImageNotFound):
        client.images.get("nope:1")
