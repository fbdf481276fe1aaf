"""Pull, push and login: images between the image store and registries (OCI distribution).

Owns the order of a transfer and its invariants; the HTTP side (schemes, auth, retries,
errors) is ``registry_client``, credentials ``registry_auth``.

Pull: the manifest (an image index or manifest list picks linux/amd64), then the config
and the layers, each streamed into the content store through a verifying writer (its
digest and size as the manifest says) and skipped when the store already has it; the
image becomes visible only at the end, in one ``ImageStore.add``. An interrupted pull
leaves blobs but no image; the next pull reuses them.

Push: every blob (layers, then the config) is skipped when the registry has it (HEAD),
else mounted from another repository of the same registry it is known to be in (where
it was pulled from or pushed to before, or the image's other names), else uploaded in
chunks (POST, PATCH with Content-Range, PUT ?digest=); then the manifest, byte for byte
as stored. Which repositories hold a blob is remembered in
``STORE/distribution.json`` (Docker keeps the same in its ``v2metadata``).

Progress events have the shape of Docker's JSON progress stream:
``{"status": ..., "id": <12 hex digits>, "progressDetail": {"current": n, "total": n}}``.
"""

from __future__ import annotations

import fcntl
import http.client
import json
import os
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait

from longboat.errors import InvalidArgument, LongboatError
from longboat.image import reference
from longboat.image.content import DigestMismatch, check_digest, sha256_of
from longboat.image.registry_auth import AuthStore, repository_scope
from longboat.image.registry_client import (
    BadResponse,
    ManifestUnknown,
    NameUnknown,
    NotFoundError,
    RegistryClient,
    RegistryError,
    RetryPolicy,
    Unauthorized,
    registry_error,
)
from longboat.image.store import (
    INDEXES,
    MANIFESTS,
    MAX_MANIFEST,
    Image,
    ImageStore,
    parse_manifest,
)

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    Progress = Callable[[dict[str, Any]], None]

__all__ = [
    "DEFAULT_CHUNK",
    "BadResponse",
    "ManifestUnknown",
    "NameUnknown",
    "RegistryError",
    "RetryPolicy",
    "Unauthorized",
    "login",
    "logout",
    "pull",
    "push",
]

ACCEPT = ", ".join((*MANIFESTS, *INDEXES))
DEFAULT_CHUNK = 5 << 20
READ_CHUNK = 1 << 20
PLATFORM = {"os": "linux", "architecture": "amd64"}


def _short(digest: str) -> str:
    return digest.split(":", 1)[-1][:12]


class _Reporter:
    """Serialises progress events from the transfer threads; failures in the callback
    abort the transfer like any other error."""

    def __init__(self, progress: Progress | None) -> None:
        self.progress = progress
        self.lock = threading.Lock()

    def __call__(self, status: str, digest: str = "", current: int | None = None,
                 total: int | None = None) -> None:
        if self.progress is None:
            return
        event: dict[str, Any] = {"status": status}
        if digest:
            event["id"] = _short(digest)
        if current is not None:
            event["progressDetail"] = {"current": current, "total": total}
        else:
            event["progressDetail"] = {}
        with self.lock:
            self.progress(event)


# -- where blobs are known to be -------------------------------------------------------------
class SourceMap:
    """``STORE/distribution.json``: blob digest -> repositories (``host/path``) holding it."""

    def __init__(self, store: ImageStore) -> None:
        self.path = os.path.join(store.root, "distribution.json")

    def _load(self) -> dict[str, list[str]]:
        try:
            with open(self.path, "rb") as f:
                data = json.loads(f.read())
        except (FileNotFoundError, ValueError):
            return {}
        return data if isinstance(data, dict) else {}

    def get(self, digest: str) -> list[str]:
        return list(self._load().get(digest, []))

    def add(self, repository: str, digests: Iterable[str]) -> None:
        lock = os.open(self.path + ".lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(lock, fcntl.LOCK_EX)
            data = self._load()
            for digest in digests:
                repos = data.setdefault(digest, [])
                if repository in repos:
                    repos.remove(repository)
                repos.insert(0, repository)
                del repos[8:]  # the most recent few are enough to try
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(data, f)
            os.rename(tmp, self.path)
        finally:
            os.close(lock)


# -- pull --------------------------------------------------------------------------------------
def _pick(index: dict[str, Any], what: str) -> dict[str, Any]:
    entries = index.get("manifests")
    if not isinstance(entries, list) or not entries:
        raise BadResponse(f"{what}: the image index lists no manifests")
    for entry in entries:
        platform = entry.get("platform") or {}
        if platform.get("os") == PLATFORM["os"] and \
                platform.get("architecture") == PLATFORM["architecture"]:
            return dict(entry)
    if len(entries) == 1:
        return dict(entries[0])
    found = ", ".join(f"{(e.get('platform') or {}).get('os', '?')}/"
                      f"{(e.get('platform') or {}).get('architecture', '?')}" for e in entries)
    raise NotFoundError(f"{what}: no matching manifest for linux/amd64 in the manifest list "
                        f"entries (has {found})")


def _get_manifest(client: RegistryClient, path: str, ref: str, scopes: tuple[str, ...],
                  what: str) -> tuple[bytes, str, str]:
    """(bytes, media type, digest) of a manifest or index, verified when fetched by
    digest or when the registry names its digest."""
    resp = client.request("GET", f"/v2/{path}/manifests/{ref}", scopes=scopes,
                          headers={"Accept": ACCEPT}, max_body=MAX_MANIFEST, what=what)
    if resp.status == 404:
        error = registry_error(resp, what)
        if isinstance(error, NameUnknown):
            raise NameUnknown(f"repository {what.rsplit(':', 1)[0]} not found: does not "
                              "exist or no pull access")
        raise ManifestUnknown(f"manifest for {what} not found: manifest unknown")
    if resp.status != 200:
        raise registry_error(resp, what)
    data = resp.body
    digest = sha256_of(data)
    if ref.startswith("sha256:") and digest != ref:
        raise DigestMismatch(f"manifest for {what}: content does not match its digest: "
                             f"expected {ref}, got {digest}")
    announced = resp.header("Docker-Content-Digest")
    if announced.startswith("sha256:") and announced != digest:
        raise DigestMismatch(f"manifest for {what}: the registry says {announced}, the "
                             f"content is {digest}")
    try:
        doc = json.loads(data)
    except (ValueError, UnicodeDecodeError):
        raise BadResponse(f"manifest for {what}: the registry answered something that is "
                          "not JSON") from None
    if not isinstance(doc, dict):
        raise BadResponse(f"manifest for {what}: not a JSON object")
    media = str(doc.get("mediaType") or resp.header("Content-Type").split(";")[0].strip())
    if media not in MANIFESTS and media not in INDEXES:
        raise BadResponse(f"manifest for {what}: unsupported media type {media!r} (v1 "
                          "manifests are not supported)")
    return data, media, digest


def _fetch_blob(client: RegistryClient, store: ImageStore, path: str, desc: dict[str, Any],
                scopes: tuple[str, ...], report: _Reporter, quiet: bool = False) -> None:
    """Stream a blob into the content store, verified; retried whole on a broken
    connection (the writer of a failed attempt is discarded)."""
    digest, size = check_digest(str(desc["digest"])), int(desc["size"])
    attempts = client.retry.attempts
    for attempt in range(1, attempts + 1):
        resp = client.request("GET", f"/v2/{path}/blobs/{digest}", scopes=scopes,
                              stream=True, what=f"blob {digest}")
        if resp.stream is None:
            raise registry_error(resp, f"blob {digest} of {path}")
        step = max(size // 100, READ_CHUNK)
        reported = 0
        try:
            with store.content.writer(digest, size) as writer:
                while True:
                    data = resp.stream.read(READ_CHUNK)
                    if not data:
                        if writer.size < size:  # http.client reads a cut body as its end
                            raise ConnectionError(f"the connection closed after "
                                                  f"{writer.size} of {size} bytes")
                        break
                    writer.write(data)
                    if not quiet and (writer.size - reported >= step or writer.size == size):
                        reported = writer.size
                        report("Downloading", digest, writer.size, size)
                writer.commit()
            return
        except (OSError, ValueError, http.client.HTTPException) as exc:  # a cut stream
            client.close()
            if attempt == attempts:
                raise RegistryError(f"blob {digest} of {path}: download failed: "
                                    f"{exc}") from None
        finally:
            resp.stream.close()


def pull(store: ImageStore, ref: str, *, auth: AuthStore | None = None,
         insecure: Iterable[str] = (), progress: Progress | None = None,
         retry: RetryPolicy | None = None, max_concurrent: int = 3) -> Image:
    """Pull ``ref`` (Docker's normalisation applies) into ``store``; the image."""
    parsed = reference.parse(ref)
    report = _Reporter(progress)
    client = RegistryClient(parsed.domain, auth=auth, insecure=insecure, retry=retry)
    scopes = (repository_scope(parsed.path, ["pull"]),)
    wanted = parsed.digest or parsed.tag or reference.DEFAULT_TAG
    what = f"{parsed.familiar_name}:{parsed.tag}" if not parsed.digest else \
        f"{parsed.familiar_name}@{parsed.digest}"
    try:
        if parsed.tag is not None:
            report(f"Pulling from {parsed.path}", parsed.tag)
        data, media, digest = _get_manifest(client, parsed.path, wanted, scopes, what)
        if media in INDEXES:
            entry = _pick(json.loads(data), what)
            data, media, digest = _get_manifest(client, parsed.path,
                                                check_digest(str(entry.get("digest"))),
                                                scopes, what)
            if media in INDEXES:
                raise BadResponse(f"{what}: an image index inside an image index")
        try:
            manifest = parse_manifest(data)
        except InvalidArgument as exc:
            raise BadResponse(f"manifest for {what}: {exc.message}") from None

        config_desc = manifest["config"]
        if not store.content.has(config_desc["digest"]):
            _fetch_blob(client, store, parsed.path, config_desc, scopes, report, quiet=True)
        _check_config(store, manifest, what)

        layers = manifest["layers"]
        todo: list[dict[str, Any]] = []
        for desc in layers:
            if store.content.has(desc["digest"]):
                report("Already exists", desc["digest"])
            elif desc["digest"] not in {d["digest"] for d in todo}:
                report("Pulling fs layer", desc["digest"])
                todo.append(desc)

        def download(desc: dict[str, Any]) -> None:
            _fetch_blob(client, store, parsed.path, desc, scopes, report)
            report("Download complete", desc["digest"])

        names = [str(parsed)] if parsed.digest is None or parsed.digest == digest else []
        up_to_date = not todo and bool(names) and _names_manifest(store, names[0]) == digest
        _run_all(download, todo, max_concurrent)
        image = store.add(data, names)
        SourceMap(store).add(parsed.name, [d["digest"] for d in layers] +
                             [config_desc["digest"]])
        report(f"Digest: {digest}")
        report(f"Status: Image is up to date for {parsed.familiar}" if up_to_date else
               f"Status: Downloaded newer image for {parsed.familiar}")
        return image
    finally:
        client.close()


def _names_manifest(store: ImageStore, name: str) -> str | None:
    """The manifest digest ``name`` points at in the store now, if any."""
    try:
        return store.get(name).manifest_digest
    except LongboatError:
        return None


def _check_config(store: ImageStore, manifest: dict[str, Any], what: str) -> None:
    try:
        config = json.loads(store.content.read(manifest["config"]["digest"]))
    except (ValueError, UnicodeDecodeError):
        raise BadResponse(f"{what}: the image config is not JSON") from None
    if not isinstance(config, dict):
        raise BadResponse(f"{what}: the image config is not a JSON object")
    rootfs = config.get("rootfs") or {}
    diff_ids = rootfs.get("diff_ids") if isinstance(rootfs, dict) else None
    if not isinstance(diff_ids, list) or len(diff_ids) != len(manifest["layers"]):
        raise BadResponse(f"{what}: the image config lists "
                          f"{len(diff_ids) if isinstance(diff_ids, list) else 'no'} layers, "
                          f"its manifest {len(manifest['layers'])}")
    for diff_id in diff_ids:
        check_digest(str(diff_id))


def _run_all(work: Callable[[dict[str, Any]], None], items: list[dict[str, Any]],
             concurrency: int) -> None:
    """``work`` on every item, ``concurrency`` at a time; the first error stops the rest
    (those already running finish) and is raised."""
    if concurrency <= 1 or len(items) <= 1:
        for item in items:
            work(item)
        return
    with ThreadPoolExecutor(max_workers=concurrency) as pool:
        futures = [pool.submit(work, item) for item in items]
        done, _ = wait(futures, return_when=FIRST_EXCEPTION)
        errors = [e for e in (f.exception() for f in futures if f in done) if e is not None]
        if errors:
            for future in futures:
                future.cancel()
            raise errors[0]


# -- push --------------------------------------------------------------------------------------
def _upload(client: RegistryClient, store: ImageStore, path: str, desc: dict[str, Any],
            location: str, scopes: tuple[str, ...], chunk_size: int, report: _Reporter) -> None:
    digest, size = str(desc["digest"]), int(desc["size"])
    what = f"upload of {digest} to {path}"
    offset = 0
    with store.content.open(digest) as f:
        while True:
            chunk = f.read(chunk_size)
            if not chunk:
                break
            resp = client.request(
                "PATCH", location, scopes=scopes, body=chunk, what=what,
                headers={"Content-Type": "application/octet-stream",
                         "Content-Length": str(len(chunk)),
                         "Content-Range": f"{offset}-{offset + len(chunk) - 1}"})
            if resp.status != 202:
                raise registry_error(resp, what)
            offset += len(chunk)
            location = client.location(resp, what)
            report("Pushing", digest, offset, size)
    separator = "&" if "?" in location else "?"
    resp = client.request("PUT", f"{location}{separator}digest={digest}", scopes=scopes,
                          body=b"", what=what,
                          headers={"Content-Type": "application/octet-stream",
                                   "Content-Length": "0"})
    if resp.status != 201:
        raise registry_error(resp, what)


def _push_blob(client: RegistryClient, store: ImageStore, path: str, domain: str,
               desc: dict[str, Any], sources: list[str], chunk_size: int,
               report: _Reporter) -> None:
    digest = str(desc["digest"])
    push_scope = repository_scope(path, ["pull", "push"])
    resp = client.request("HEAD", f"/v2/{path}/blobs/{digest}", scopes=(push_scope,),
                          what=f"blob {digest}")
    if resp.status == 200:
        report("Layer already exists", digest)
        return
    if resp.status != 404:
        raise registry_error(resp, f"blob {digest} of {path}")
    location = ""
    for source in sources:
        src_domain, _, src_path = source.partition("/")
        if src_domain != domain or src_path == path:
            continue
        scopes = (push_scope, repository_scope(src_path, ["pull"]))
        resp = client.request("POST", f"/v2/{path}/blobs/uploads/?mount={digest}&from="
                              f"{src_path}", scopes=scopes, body=b"",
                              headers={"Content-Length": "0"}, what=f"mount of {digest}")
        if resp.status == 201:
            report(f"Mounted from {src_path}", digest)
            return
        if resp.status == 202:  # not mountable: the registry opened an upload instead
            location = client.location(resp, f"upload of {digest}")
            break
        if resp.status in (401, 403, 404):
            continue
        raise registry_error(resp, f"mount of {digest} from {src_path}")
    if not location:
        resp = client.request("POST", f"/v2/{path}/blobs/uploads/", scopes=(push_scope,),
                              body=b"", headers={"Content-Length": "0"},
                              what=f"upload of {digest}")
        if resp.status != 202:
            raise registry_error(resp, f"upload of {digest} to {path}")
        location = client.location(resp, f"upload of {digest}")
    report("Pushing", digest, 0, int(desc["size"]))
    _upload(client, store, path, desc, location, (push_scope,), chunk_size, report)
    report("Pushed", digest)


def push(store: ImageStore, name: str, *, auth: AuthStore | None = None,
         insecure: Iterable[str] = (), progress: Progress | None = None,
         chunk_size: int = DEFAULT_CHUNK, retry: RetryPolicy | None = None,
         max_concurrent: int = 3) -> str:
    """Push the image named ``name`` to its registry; the manifest digest."""
    if chunk_size <= 0:
        raise InvalidArgument("the upload chunk size must be positive")
    parsed = reference.parse(name)
    if parsed.digest is not None:
        raise InvalidArgument(f"cannot push by digest: {name}; push a tag")
    image = store.get(str(parsed))
    report = _Reporter(progress)
    client = RegistryClient(parsed.domain, auth=auth, insecure=insecure, retry=retry)
    sources = SourceMap(store)
    own = [reference.parse(n).name for n in image.references]
    report(f"The push refers to repository [{parsed.name}]")
    descs = [*image.layers, image.manifest["config"]]

    def one(desc: dict[str, Any]) -> None:
        candidates = list(dict.fromkeys([*sources.get(desc["digest"]), *own]))
        _push_blob(client, store, parsed.path, parsed.domain, desc, candidates, chunk_size,
                   report)

    try:
        unique = list({d["digest"]: d for d in descs}.values())
        _run_all(one, unique[:-1], max_concurrent)
        one(unique[-1])  # the config last: the manifest must not arrive before it
        data = store.content.read(image.manifest_digest, MAX_MANIFEST)
        media = str(json.loads(data).get("mediaType") or MANIFESTS[1])
        tag = parsed.tag or reference.DEFAULT_TAG
        resp = client.request("PUT", f"/v2/{parsed.path}/manifests/{tag}",
                              scopes=(repository_scope(parsed.path, ["pull", "push"]),),
                              body=data, headers={"Content-Type": media,
                                                  "Content-Length": str(len(data))},
                              what=f"manifest {parsed.familiar}")
        if resp.status not in (200, 201):
            raise registry_error(resp, f"manifest {parsed.familiar}")
        digest = sha256_of(data)
        announced = resp.header("Docker-Content-Digest")
        if announced and announced != digest:
            raise DigestMismatch(f"manifest {parsed.familiar}: the registry stored "
                                 f"{announced}, we sent {digest}")
        sources.add(parsed.name, [d["digest"] for d in descs])
        report(f"{tag}: digest: {digest} size: {len(data)}")
        return digest
    finally:
        client.close()


# -- login -------------------------------------------------------------------------------------
def login(host: str, user: str, password: str, *, auth: AuthStore,
          insecure: Iterable[str] = (), retry: RetryPolicy | None = None) -> str:
    """Check the credentials against ``GET /v2/`` (through the token server when the
    registry uses one) and save them; Docker's "Login Succeeded"."""
    domain = host.strip()
    for prefix in ("https://", "http://"):
        if domain.startswith(prefix):
            domain = domain[len(prefix):]
    domain = domain.rstrip("/")
    if domain in ("index.docker.io", "registry-1.docker.io", "index.docker.io/v1"):
        domain = "docker.io"
    client = RegistryClient(domain, credentials=(user, password), insecure=insecure,
                            retry=retry)
    try:
        resp = client.request("GET", "/v2/", what=f"login to {domain}")
    except Unauthorized:
        raise Unauthorized(f"login to {domain} failed: unauthorized: incorrect username or "
                           "password") from None
    finally:
        client.close()
    if resp.status == 401:
        raise Unauthorized(f"login to {domain} failed: unauthorized: incorrect username or "
                           "password")
    if resp.status != 200:
        raise registry_error(resp, f"login to {domain}")
    auth.set(domain, user, password)
    return "Login Succeeded"


def logout(host: str, *, auth: AuthStore) -> bool:
    """Forget ``host``'s credentials; whether there were any."""
    return auth.remove(host)
