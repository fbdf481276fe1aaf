"""Volume name filters are capped (256 characters: 400 past that) and still regular
expressions (Docker's semantics); ``GET /system/df`` answers with its walks run off
the event loop."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest
from tests.support.engine import Longboatd

pytestmark = pytest.mark.integration


@pytest.fixture
def engine(tmp_path: Path) -> Iterator[Longboatd]:
    with Longboatd(tmp_path) as daemon:
        yield daemon


def _get(engine: Longboatd, path: str) -> tuple[int, object]:
    import http.client
    import socket

    class Unix(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.connect(str(engine.socket))

    conn = Unix("localhost", timeout=30)
    try:
        conn.request("GET", "/v1.41" + path)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


def test_volume_name_filters(engine: Longboatd) -> None:
    engine.docker("volume", "create", "lbo-vol-a1")
    engine.docker("volume", "create", "lbo-vol-b2")
    try:
        status, body = _get(engine, "/volumes?filters=" + quote(json.dumps(
            {"name": ["^lbo-vol-[a]"]})))
        assert status == 200
        assert isinstance(body, dict)
        assert [v["Name"] for v in body["Volumes"]] == ["lbo-vol-a1"]
        status, body = _get(engine, "/volumes?filters=" + quote(json.dumps(
            {"name": ["a" * 257]})))
        assert status == 400
        assert isinstance(body, dict) and "at most 256" in body["message"]
        status, body = _get(engine, "/system/df")
        assert status == 200
        assert isinstance(body, dict)
        assert {v["Name"] for v in body["Volumes"]} == {"lbo-vol-a1", "lbo-vol-b2"}
    finally:
        engine.docker("volume", "rm", "lbo-vol-a1", "lbo-vol-b2", check=False)
