"""A real registry for tests: Debian's ``docker-registry`` (distribution 2.8) on loopback.

:class:`LocalRegistry` writes a config of ours into a temporary directory (storage there
too), starts ``docker-registry serve`` on ``127.0.0.1:<free port>``, waits until
``GET /v2/`` answers (with a deadline), and stops it (SIGTERM, then SIGKILL) and waits for
its exit. Authentication: none, htpasswd (Basic; the bcrypt line written with Python's
``bcrypt``), or token (Bearer) with a certificate the caller provides.

The package installs a systemd unit; we never use it (policy-rc.d keeps apt from starting
it in containers, and tests must own their processes).
"""

from __future__ import annotations

import http.client
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

BINARY = "/usr/bin/docker-registry"


def ensure_installed() -> str:
    """The registry binary, installing Debian's package if missing (skip if impossible)."""
    if os.path.exists(BINARY):
        return BINARY
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        pytest.skip("docker-registry is not installed")
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    done = subprocess.run(["apt-get", "install", "-y", "docker-registry"], env=env,
                          capture_output=True, text=True, timeout=600)
    if done.returncode != 0 or not os.path.exists(BINARY):
        pytest.skip(f"cannot install docker-registry: {done.stderr[-500:]}")
    # apt may have enabled (or even started, with systemd) the packaged service: not ours
    subprocess.run(["systemctl", "disable", "--now", "docker-registry"], capture_output=True,
                   check=False)
    return BINARY


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def htpasswd_line(user: str, password: str) -> str:
    import bcrypt

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(rounds=5)).decode()
    return f"{user}:{hashed}\n"


class LocalRegistry:
    """One ``docker-registry`` process and its files."""

    def __init__(self, workdir: Path, *, users: dict[str, str] | None = None,
                 token: dict[str, str] | None = None) -> None:
        self.workdir = workdir
        self.users = users
        self.token = token
        self.port = 0
        self.proc: subprocess.Popen[bytes] | None = None
        self.log = workdir / "registry.log"

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    def _config(self) -> dict[str, Any]:
        config: dict[str, Any] = {
            "version": 0.1,
            "log": {"level": "warn", "accesslog": {"disabled": True}},
            "storage": {"filesystem": {"rootdirectory": str(self.workdir / "data")},
                        "delete": {"enabled": True}},
            "http": {"addr": self.host, "secret": "longboat-tests"},
        }
        if self.users is not None:
            path = self.workdir / "htpasswd"
            path.write_text("".join(htpasswd_line(u, p) for u, p in self.users.items()))
            config["auth"] = {"htpasswd": {"realm": "longboat-tests", "path": str(path)}}
        elif self.token is not None:
            config["auth"] = {"token": self.token}
        return config

    def start(self, deadline: float = 20.0) -> LocalRegistry:
        binary = ensure_installed()
        self.workdir.mkdir(parents=True, exist_ok=True)
        for _ in range(3):  # a free port can be taken between our probe and the bind
            self.port = free_port()
            config = self.workdir / "config.yml"
            config.write_text(json.dumps(self._config()))  # JSON is YAML
            with open(self.log, "ab") as log:
                self.proc = subprocess.Popen([binary, "serve", str(config)], stdout=log,
                                             stderr=subprocess.STDOUT,
                                             stdin=subprocess.DEVNULL)
            if self._wait_ready(deadline):
                return self
            self.stop()
        raise AssertionError(f"docker-registry did not start: {self.log.read_text()[-2000:]}")

    def _wait_ready(self, deadline: float) -> bool:
        assert self.proc is not None
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            try:
                conn = http.client.HTTPConnection(self.host, timeout=2)
                conn.request("GET", "/v2/")
                status = conn.getresponse().status
                conn.close()
                if status in (200, 401):
                    return True
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)
        self.proc = None

    def __enter__(self) -> LocalRegistry:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    # -- raw API, for what the tests set up behind the client's back ------------------------
    def api(self, method: str, path: str, body: bytes | None = None,
            headers: dict[str, str] | None = None) -> tuple[int, dict[str, str], bytes]:
        conn = http.client.HTTPConnection(self.host, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            resp = conn.getresponse()
            return resp.status, dict(resp.getheaders()), resp.read()
        finally:
            conn.close()


def make_image(store: Any, workdir: Path, name: str, *, busybox: bool = True,
               extra: dict[str, bytes] | None = None) -> Any:
    """An image in ``store`` (an ImageStore) named ``name``: a busybox layer (when
    ``busybox``) and a layer holding ``extra`` files (path -> content), gzip layers,
    Docker media types."""
    from longboat.image.bootstrap import busybox_rootfs
    from longboat.image.layer import make_layer
    from longboat.image.store import DOCKER_LAYER_GZIP

    uppers: list[Path] = []
    if busybox:
        rootfs = workdir / "busybox-rootfs"
        if not rootfs.exists():
            busybox_rootfs(str(rootfs))
        uppers.append(rootfs)
    if extra:
        upper = workdir / f"extra-{len(list(workdir.glob('extra-*')))}"
        for path, content in extra.items():
            target = upper / path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(content)
        uppers.append(upper)
    layers, diff_ids = [], []
    for i, upper in enumerate(uppers):
        out = workdir / f"layer-{upper.name}-{i}.tar.gz"
        with open(out, "wb") as f:
            result = make_layer(str(upper), f, compression="gzip")
        with open(out, "rb") as f:
            store.content.ingest(f, result.digest, result.size)
        layers.append({"mediaType": DOCKER_LAYER_GZIP, "digest": result.digest,
                       "size": result.size})
        diff_ids.append(result.diff_id)
    config = {"architecture": "amd64", "os": "linux", "created": "2024-01-01T00:00:00Z",
              "config": {"Cmd": ["/bin/sh"], "Env": ["PATH=/usr/sbin:/usr/bin:/sbin:/bin"]},
              "rootfs": {"type": "layers", "diff_ids": diff_ids},
              "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "longboat tests"}
                          for _ in diff_ids]}
    return store.create(config, layers, [name])


class TokenServer:
    """A Docker token server on loopback (``GET /token?service=&scope=``): JWTs signed
    with an RSA key whose self-signed certificate the registry trusts (``x5c`` header).
    ``users`` may have everything they ask for; anonymous callers get ``anonymous``
    actions (none by default). Every request is recorded in ``requests``."""

    SERVICE = "longboat-test-registry"
    ISSUER = "longboat-test-issuer"

    def __init__(self, workdir: Path, users: dict[str, str],
                 anonymous: tuple[str, ...] = ()) -> None:
        import datetime
        import threading
        from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import rsa
        from cryptography.x509.oid import NameOID

        self.users = users
        self.anonymous = anonymous
        self.requests: list[dict[str, Any]] = []
        self.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "longboat test tokens")])
        now = datetime.datetime.now(datetime.UTC)
        self.cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
                     .public_key(self.key.public_key())
                     .serial_number(x509.random_serial_number())
                     .not_valid_before(now - datetime.timedelta(days=1))
                     .not_valid_after(now + datetime.timedelta(days=1))
                     .add_extension(x509.BasicConstraints(ca=True, path_length=None), True)
                     .sign(self.key, hashes.SHA256()))
        self.cert_path = workdir / "token.crt"
        workdir.mkdir(parents=True, exist_ok=True)
        self.cert_path.write_bytes(self.cert.public_bytes(serialization.Encoding.PEM))
        self._der = self.cert.public_bytes(serialization.Encoding.DER)
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: object) -> None:
                pass

            def do_GET(self) -> None:
                server._answer(self)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def realm(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}/token"

    def registry_config(self) -> dict[str, str]:
        return {"realm": self.realm, "service": self.SERVICE, "issuer": self.ISSUER,
                "rootcertbundle": str(self.cert_path)}

    def _jwt(self, subject: str, access: list[dict[str, Any]]) -> str:
        import base64
        import time as _time
        import uuid

        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import padding

        def b64(data: bytes) -> str:
            return base64.urlsafe_b64encode(data).rstrip(b"=").decode()

        now = int(_time.time())
        header = {"typ": "JWT", "alg": "RS256", "x5c": [base64.b64encode(self._der).decode()]}
        claims = {"iss": self.ISSUER, "sub": subject, "aud": self.SERVICE, "exp": now + 300,
                  "nbf": now - 10, "iat": now, "jti": uuid.uuid4().hex, "access": access}
        signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims).encode())}"
        signature = self.key.sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
        return f"{signing_input}.{b64(signature)}"

    def _answer(self, handler: Any) -> None:
        import base64
        import urllib.parse

        query = urllib.parse.parse_qs(urllib.parse.urlsplit(handler.path).query)
        scopes = query.get("scope", [])
        user = None
        authorization = handler.headers.get("Authorization", "")
        if authorization.startswith("Basic "):
            name, _, password = base64.b64decode(authorization[6:]).decode().partition(":")
            if self.users.get(name) != password:
                self.requests.append({"user": name, "scopes": scopes, "status": 401})
                handler.send_response(401)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            user = name
        self.requests.append({"user": user, "scopes": scopes, "status": 200,
                              "service": query.get("service", [""])[0]})
        access = []
        for scope in scopes:
            kind, _, rest = scope.partition(":")
            repo, _, actions = rest.rpartition(":")
            wanted = actions.split(",")
            granted = wanted if user else [a for a in wanted if a in self.anonymous]
            if granted:
                access.append({"type": kind, "name": repo, "actions": granted})
        body = json.dumps({"token": self._jwt(user or "", access), "expires_in": 300}).encode()
        handler.send_response(200)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    def __enter__(self) -> TokenServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
        self.thread.join(timeout=10)
