"""Pull and push against a real registry (Debian's docker-registry on loopback), with and
without Basic auth; retries, garbage and digest mismatches against in-process servers on
loopback (a flaky proxy in front of the real registry, a fake that lies)."""

from __future__ import annotations

import json
import os
import stat
import threading
import urllib.parse
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from tests.support.registry import LocalRegistry, TokenServer, make_image

from longboat.image.content import DigestMismatch, sha256_of
from longboat.image.registry import (
    BadResponse,
    ManifestUnknown,
    RegistryError,
    RetryPolicy,
    Unauthorized,
    login,
    logout,
    pull,
    push,
)
from longboat.image.registry_auth import AuthStore
from longboat.image.registry_client import NameUnknown, Unreachable
from longboat.image.store import DOCKER_MANIFEST_LIST, OCI_INDEX, ImageStore

FAST = RetryPolicy(attempts=3, backoff=0.01, max_wait=0.05)


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("registry")) as reg:
        yield reg


@pytest.fixture(scope="module")
def auth_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalRegistry]:
    with LocalRegistry(tmp_path_factory.mktemp("auth-registry"),
                       users={"alice": "s3cret"}) as reg:
        yield reg


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("images")


class Events:
    def __init__(self) -> None:
        self.events: list[dict[str, Any]] = []

    def __call__(self, event: dict[str, Any]) -> None:
        self.events.append(event)

    def status(self, digest: str) -> list[str]:
        return [e["status"] for e in self.events if e.get("id") == digest[7:19]]


def fresh(tmp_path: Path, name: str = "store") -> ImageStore:
    return ImageStore(str(tmp_path / name))


def test_push_then_pull_gives_the_same_image(registry: LocalRegistry, workdir: Path,
                                             tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    name = f"{registry.host}/longboat/busybox:1"
    image = make_image(src, workdir, name, extra={"etc/motd": b"hello\n"})
    pushed = Events()
    digest = push(src, name, progress=pushed)
    assert digest == image.manifest_digest
    for layer in image.layers:
        assert "Pushed" in pushed.status(layer["digest"])
        assert pushed.status(layer["digest"])[-1] == "Pushed"

    dst = fresh(tmp_path, "dst")
    pulled_events = Events()
    pulled = pull(dst, name, progress=pulled_events)
    assert pulled.manifest_digest == image.manifest_digest
    assert pulled.id == image.id
    assert pulled.references == [name]
    for layer in image.layers:
        assert pulled_events.status(layer["digest"])[0] == "Pulling fs layer"
        assert pulled_events.status(layer["digest"])[-1] == "Download complete"
        with dst.content.open(layer["digest"]) as a, src.content.open(layer["digest"]) as b:
            assert a.read() == b.read()
    downloading = [e for e in pulled_events.events if e["status"] == "Downloading"]
    assert downloading and all(e["progressDetail"]["current"] <= e["progressDetail"]["total"]
                               for e in downloading)

    again = Events()
    assert push(src, name, progress=again) == digest
    for desc in [*image.layers, image.manifest["config"]]:
        assert again.status(desc["digest"]) == ["Layer already exists"]

    # a pull of what is already here fetches nothing
    third = Events()
    assert pull(dst, name, progress=third).id == image.id
    assert {s for d in image.layers for s in third.status(d["digest"])} == {"Already exists"}

    # by digest, too
    by_digest = pull(fresh(tmp_path, "by-digest"), f"{registry.host}/longboat/busybox@{digest}")
    assert by_digest.id == image.id


def test_chunked_upload(registry: LocalRegistry, workdir: Path, tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    name = f"{registry.host}/longboat/chunked:1"
    image = make_image(src, workdir, name, busybox=False,
                       extra={"data/blob": os.urandom(300_000)})
    events = Events()
    push(src, name, progress=events, chunk_size=64 << 10)
    layer = image.layers[0]
    pushing = [e for e in events.events
               if e["status"] == "Pushing" and e["id"] == layer["digest"][7:19]]
    expected_chunks = -(-layer["size"] // (64 << 10))
    assert len(pushing) == expected_chunks + 1  # the 0 event, then one per PATCH
    assert pushing[-1]["progressDetail"] == {"current": layer["size"], "total": layer["size"]}
    pulled = pull(fresh(tmp_path, "dst"), name)
    assert pulled.manifest_digest == image.manifest_digest


def test_cross_repository_mount(registry: LocalRegistry, workdir: Path, tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    first = f"{registry.host}/longboat/mount-a:1"
    image = make_image(src, workdir, first, extra={"etc/mount": b"a\n"})
    push(src, first)
    # the same image under another repository's name: its blobs are in mount-a
    second = f"{registry.host}/longboat/mount-b:1"
    src.tag(first, second)
    events = Events()
    push(src, second, progress=events)
    for desc in image.layers:
        assert events.status(desc["digest"]) == ["Mounted from longboat/mount-a"]

    # pulled into a fresh store and pushed elsewhere: the store remembers where from
    dst = fresh(tmp_path, "dst")
    pull(dst, second)
    third = f"{registry.host}/longboat/mount-c:1"
    dst.tag(second, third)
    events = Events()
    push(dst, third, progress=events)
    for desc in image.layers:
        assert events.status(desc["digest"]) == ["Mounted from longboat/mount-b"]
    assert pull(fresh(tmp_path, "check"), third).id == image.id


def test_unknown_manifest_and_repository(registry: LocalRegistry, workdir: Path,
                                         tmp_path: Path) -> None:
    src = fresh(tmp_path)
    name = f"{registry.host}/longboat/known:1"
    make_image(src, workdir, name, busybox=False, extra={"x": b"x"})
    push(src, name)
    with pytest.raises(ManifestUnknown, match=r"manifest for .*/longboat/known:nope not "
                                               r"found"):
        pull(fresh(tmp_path, "a"), f"{registry.host}/longboat/known:nope")
    with pytest.raises((ManifestUnknown, NameUnknown), match="not found"):
        pull(fresh(tmp_path, "b"), f"{registry.host}/longboat/never-pushed:1")
    assert fresh(tmp_path, "b").images() == []


def _put_index(registry: LocalRegistry, repo: str, tag: str, media: str,
               entries: list[tuple[dict[str, Any], Any]]) -> None:
    index = {"schemaVersion": 2, "mediaType": media,
             "manifests": [{"mediaType": "application/vnd.docker.distribution.manifest.v2+json",
                            "digest": image.manifest_digest, "size": len(image_bytes(image)),
                            "platform": platform} for platform, image in entries]}
    body = json.dumps(index).encode()
    status, _, text = registry.api("PUT", f"/v2/{repo}/manifests/{tag}", body,
                                   {"Content-Type": media})
    assert status == 201, text


def image_bytes(image: Any) -> bytes:
    return json.dumps(image.manifest, indent=3).encode()


def test_manifest_list_picks_linux_amd64(registry: LocalRegistry, workdir: Path,
                                         tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    repo = "longboat/multi"
    arm = make_image(src, workdir, f"{registry.host}/{repo}:arm", busybox=False,
                     extra={"arch": b"arm64\n"})
    amd = make_image(src, workdir, f"{registry.host}/{repo}:amd", busybox=False,
                     extra={"arch": b"amd64\n"})
    assert image_bytes(amd) == src.content.read(amd.manifest_digest)  # as create wrote it
    push(src, f"{registry.host}/{repo}:arm")
    push(src, f"{registry.host}/{repo}:amd")
    arm64 = {"os": "linux", "architecture": "arm64", "variant": "v8"}
    amd64 = {"os": "linux", "architecture": "amd64"}
    _put_index(registry, repo, "list", DOCKER_MANIFEST_LIST, [(arm64, arm), (amd64, amd)])
    _put_index(registry, repo, "oci", OCI_INDEX, [(arm64, arm), (amd64, amd)])
    _put_index(registry, repo, "only-arm", OCI_INDEX, [(arm64, arm)])
    _put_index(registry, repo, "no-amd", OCI_INDEX, [(arm64, arm),
                                                     ({"os": "windows",
                                                       "architecture": "amd64"}, amd)])
    for tag in ("list", "oci"):
        dst = fresh(tmp_path, tag)
        image = pull(dst, f"{registry.host}/{repo}:{tag}")
        assert image.id == amd.id and image.manifest_digest == amd.manifest_digest
        assert image.references == [f"{registry.host}/{repo}:{tag}"]
    assert pull(fresh(tmp_path, "only"), f"{registry.host}/{repo}:only-arm").id == arm.id
    with pytest.raises(RegistryError, match="no matching manifest for linux/amd64"):
        pull(fresh(tmp_path, "none"), f"{registry.host}/{repo}:no-amd")


def test_interrupted_pull_leaves_no_image_and_resumes(registry: LocalRegistry, workdir: Path,
                                                      tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    name = f"{registry.host}/longboat/interrupted:1"
    image = make_image(src, workdir, name, extra={"etc/i": b"i\n"})
    push(src, name)
    dst = fresh(tmp_path, "dst")
    first = image.layers[0]["digest"]

    class Crash(Exception):
        pass

    def crash_after_first_blob(event: dict[str, Any]) -> None:
        if event["status"] == "Download complete":
            raise Crash(event["id"])

    with pytest.raises(Crash):
        pull(dst, name, progress=crash_after_first_blob, max_concurrent=1)
    assert dst.images() == []
    assert dst.content.has(first)
    assert not dst.content.has(image.layers[1]["digest"])
    assert os.listdir(os.path.join(dst.root, "ingest")) == []

    events = Events()
    pulled = pull(dst, name, progress=events)
    assert pulled.manifest_digest == image.manifest_digest
    assert events.status(first) == ["Already exists"]
    assert events.status(image.layers[1]["digest"])[-1] == "Download complete"


def test_basic_auth_login_logout(auth_registry: LocalRegistry, workdir: Path,
                                 tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    name = f"{auth_registry.host}/alice/app:1"
    image = make_image(src, workdir, name, busybox=False, extra={"a": b"alice\n"})
    creds = AuthStore(str(tmp_path / "home" / ".longboat" / "config.json"))

    with pytest.raises(Unauthorized, match="unauthorized"):
        push(src, name, auth=creds)
    with pytest.raises(Unauthorized, match="unauthorized"):
        pull(fresh(tmp_path, "x"), name, auth=creds)
    with pytest.raises(Unauthorized, match="incorrect username or password"):
        login(auth_registry.host, "alice", "wrong", auth=creds)
    assert not os.path.exists(creds.path)

    assert login(auth_registry.host, "alice", "s3cret", auth=creds) == "Login Succeeded"
    assert stat.S_IMODE(os.stat(creds.path).st_mode) == 0o600
    saved = json.loads(Path(creds.path).read_text())
    assert saved == {"auths": {auth_registry.host: {"auth": "YWxpY2U6czNjcmV0"}}}

    assert push(src, name, auth=creds) == image.manifest_digest
    assert pull(fresh(tmp_path, "dst"), name, auth=creds).id == image.id

    assert logout(auth_registry.host, auth=creds)
    with pytest.raises(Unauthorized):
        pull(fresh(tmp_path, "after"), name, auth=creds)


# -- in-process servers on loopback --------------------------------------------------------------
class _Server:
    def __init__(self, handler: type[BaseHTTPRequestHandler]) -> None:
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self) -> _Server:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)


def flaky_proxy(upstream: str, fail: Callable[[str, str], bool]) -> _Server:
    """A proxy to ``upstream`` answering 503 whenever ``fail(method, path)`` says so."""
    import http.client

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def _forward(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else None
            if fail(self.command, self.path):
                self.send_response(503)
                self.send_header("Retry-After", "0")
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            conn = http.client.HTTPConnection(upstream, timeout=30)
            headers = {k: v for k, v in self.headers.items() if k.lower() != "connection"}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("connection", "transfer-encoding", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_HEAD = do_PUT = do_POST = do_PATCH = _forward

    return _Server(Handler)


def test_retries_on_503(registry: LocalRegistry, workdir: Path, tmp_path: Path) -> None:
    src = fresh(tmp_path, "src")
    name = f"{registry.host}/longboat/flaky:1"
    image = make_image(src, workdir, name, extra={"etc/f": b"f\n"})
    push(src, name)
    seen: dict[tuple[str, str], int] = {}
    lock = threading.Lock()

    def every_first_try(method: str, path: str) -> bool:
        with lock:
            seen[(method, path)] = seen.get((method, path), 0) + 1
            return seen[(method, path)] == 1

    with flaky_proxy(registry.host, every_first_try) as proxy:
        pulled = pull(fresh(tmp_path, "dst"), f"{proxy.host}/longboat/flaky:1", retry=FAST)
        assert pulled.manifest_digest == image.manifest_digest
        blob_gets = [k for k in seen if k[0] == "GET" and "/blobs/" in k[1]]
        assert len(blob_gets) == 3 and all(seen[k] == 2 for k in blob_gets)
        # and a push through it (HEAD, POST, PATCH, PUT each fail once)
        src.tag(name, f"{proxy.host}/longboat/flaky-copy:1")
        assert push(src, f"{proxy.host}/longboat/flaky-copy:1", retry=FAST) == \
            image.manifest_digest

    calls = []

    def always(method: str, path: str) -> bool:
        calls.append(path)
        return True

    with flaky_proxy(registry.host, always) as proxy, pytest.raises(Unreachable, match="503"):
        pull(fresh(tmp_path, "never"), f"{proxy.host}/longboat/flaky:1", retry=FAST)
    assert len(calls) == FAST.attempts


def fake_registry(routes: dict[str, tuple[int, dict[str, str], bytes]]) -> _Server:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            status, headers, body = routes.get(urllib.parse.urlsplit(self.path).path,
                                               (404, {}, b"{}"))
            self.send_response(status)
            for k, v in headers.items():
                self.send_header(k, v)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_HEAD = do_GET

    return _Server(Handler)


def test_garbage_and_digest_mismatch(tmp_path: Path) -> None:
    layer = b"not really a layer"
    config = json.dumps({"rootfs": {"type": "layers",
                                    "diff_ids": [sha256_of(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": sha256_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": sha256_of(layer), "size": len(layer)}]}).encode()
    json_type = {"Content-Type": "application/vnd.docker.distribution.manifest.v2+json"}
    routes = {
        "/v2/": (200, {}, b"{}"),
        "/v2/x/garbage/manifests/1": (200, json_type, b"<html>hello</html>"),
        "/v2/x/lying/manifests/1": (200, json_type, manifest),
        f"/v2/x/lying/blobs/{sha256_of(config)}": (200, {}, config),
        f"/v2/x/lying/blobs/{sha256_of(layer)}": (200, {}, b"NOT really a layer"),
        "/v2/x/wrong-digest/manifests/1": (200, {**json_type,
                                                 "Docker-Content-Digest": "sha256:" + "0" * 64},
                                           manifest),
    }
    store = fresh(tmp_path)
    with fake_registry(routes) as fake:
        with pytest.raises(BadResponse, match="not JSON"):
            pull(store, f"{fake.host}/x/garbage:1", retry=FAST)
        with pytest.raises(DigestMismatch, match="does not match its digest"):
            pull(store, f"{fake.host}/x/lying:1", retry=FAST)
        with pytest.raises(DigestMismatch, match="the registry says"):
            pull(store, f"{fake.host}/x/wrong-digest:1", retry=FAST)
    assert store.images() == []
    assert not store.content.has(sha256_of(layer))
    assert os.listdir(os.path.join(store.root, "ingest")) == []


def test_bearer_token_auth(tmp_path_factory: pytest.TempPathFactory, workdir: Path,
                           tmp_path: Path) -> None:
    base = tmp_path_factory.mktemp("token-registry")
    with TokenServer(base / "tokens", {"bob": "hunter2"}, anonymous=("pull",)) as tokens, \
            LocalRegistry(base / "registry", token=tokens.registry_config()) as reg:
        src = fresh(tmp_path, "src")
        name = f"{reg.host}/bob/app:1"
        image = make_image(src, workdir, name, busybox=False, extra={"b": b"bob\n"})
        creds = AuthStore(str(tmp_path / "config.json"))

        # anonymous callers may pull but not push
        with pytest.raises(Unauthorized, match="unauthorized"):
            push(src, name, auth=creds)
        with pytest.raises(Unauthorized, match="incorrect username or password"):
            login(reg.host, "bob", "wrong", auth=creds)
        assert login(reg.host, "bob", "hunter2", auth=creds) == "Login Succeeded"

        tokens.requests.clear()
        assert push(src, name, auth=creds) == image.manifest_digest
        asked = [r for r in tokens.requests if r["status"] == 200]
        assert all(r["user"] == "bob" and r["service"] == TokenServer.SERVICE for r in asked)
        assert ["repository:bob/app:pull,push"] in [r["scopes"] for r in asked]
        # one token per scope, cached for the rest of the push
        assert len(asked) == 1

        tokens.requests.clear()
        assert pull(fresh(tmp_path, "anon"), name).id == image.id  # anonymous pull
        assert [r["scopes"] for r in tokens.requests] == [["repository:bob/app:pull"]]
        assert tokens.requests[0]["user"] is None

        # pushing the same blobs to another repository mounts them: both scopes asked
        src.tag(name, f"{reg.host}/bob/copy:1")
        tokens.requests.clear()
        events = Events()
        push(src, f"{reg.host}/bob/copy:1", auth=creds, progress=events)
        assert events.status(image.layers[0]["digest"]) == ["Mounted from bob/app"]
        assert ["repository:bob/copy:pull,push", "repository:bob/app:pull"] in \
            [r["scopes"] for r in tokens.requests]


def test_blob_stream_cut_is_retried(tmp_path: Path) -> None:
    layer = os.urandom(200_000)
    config = json.dumps({"rootfs": {"type": "layers",
                                    "diff_ids": [sha256_of(layer)]}}).encode()
    manifest = json.dumps({
        "schemaVersion": 2, "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
        "config": {"mediaType": "application/vnd.docker.container.image.v1+json",
                   "digest": sha256_of(config), "size": len(config)},
        "layers": [{"mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
                    "digest": sha256_of(layer), "size": len(layer)}]}).encode()
    blobs = {sha256_of(config): config, sha256_of(layer): layer}
    cuts: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: object) -> None:
            pass

        def do_GET(self) -> None:
            path = urllib.parse.urlsplit(self.path).path
            name = path.rsplit("/", 1)[1]
            body = manifest if path.endswith("/manifests/1") else blobs[name]
            self.send_response(200)
            self.send_header("Content-Type", "application/vnd.docker.distribution."
                             "manifest.v2+json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if body is layer and not cuts:
                cuts.append(path)
                self.wfile.write(body[:50_000])
                self.close_connection = True
                return
            self.wfile.write(body)

    store = fresh(tmp_path)
    with _Server(Handler) as fake:
        image = pull(store, f"{fake.host}/x/cut:1", retry=FAST)
    assert cuts and image.layers[0]["digest"] == sha256_of(layer)
    with store.content.open(sha256_of(layer)) as f:
        assert f.read() == layer
