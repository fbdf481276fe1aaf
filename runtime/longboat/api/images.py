"""Image endpoints: list, inspect, history, tag, remove, prune, pull and import
(``/images/create``), push, save (``/images/get``), load, and ``/auth``."""

from __future__ import annotations

import asyncio
import base64
import json
import os
import tempfile

from longboat.api import streams
from longboat.api.http import Request, Response
from longboat.api.router import Router
from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound
from longboat.image import archive, reference, registry
from longboat.image.registry_auth import AuthStore

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import AsyncIterator, Callable
    from typing import Any

    from longboat.engine.engine import Engine
    from longboat.image.store import Image


class RequestCredentials(AuthStore):
    """The credentials a client sent with one request (``X-Registry-Auth``), for the
    registry it names; nothing is written anywhere."""

    def __init__(self, header: str | None) -> None:
        super().__init__(path="/nonexistent/longboat-request-auth.json")
        self.user = self.password = ""
        if header:
            padded = header + "=" * (-len(header) % 4)
            try:
                data = json.loads(base64.urlsafe_b64decode(padded))
            except (ValueError, TypeError):
                raise InvalidArgument("X-Registry-Auth is not base64-encoded JSON") from None
            if isinstance(data, dict):
                self.user = str(data.get("username") or "")
                self.password = str(data.get("password") or data.get("identitytoken") or "")

    def get(self, host: str) -> tuple[str, str] | None:
        return (self.user, self.password) if self.user else None


def familiar(names: list[str]) -> list[str]:
    return [reference.parse(n).familiar for n in names]


class Lineage:
    """Which image each locally built image was built on (the builder records it), and
    which images have children: Docker hides untagged parents (intermediate build images)
    from ``images`` without ``-a``, and neither prunes nor dangles them."""

    def __init__(self, engine: Engine) -> None:
        from longboat.build.cache import BuildCache

        self.cache = BuildCache(os.path.join(engine.settings.data_root, "build"))
        self.parents = {i.id: p for i in engine.images.images()
                        if (p := self.cache.parent(i.id))}
        self.with_children = set(self.parents.values())

    def parent(self, image: Image) -> str:
        return self.parents.get(image.id, "")

    def intermediate(self, image: Image) -> bool:
        return not image.references and image.id in self.with_children


def used_by_containers(engine: Engine) -> dict[str, str]:
    """image ID -> the ID of one container using it."""
    return {c.data["Image"]: c.id for c in list(engine.containers.by_id.values())}


def _member(ids: set[str]) -> Callable[[Image], bool]:
    return lambda image: image.id in ids


def summary(image: Image, parent: str = "") -> dict[str, Any]:
    config = image.config.get("config") or {}
    return {"Id": image.id, "ParentId": parent, "RepoTags": familiar(image.references),
            "RepoDigests": [], "Created": archive.unix_time(image.created),
            "Size": image.size, "SharedSize": -1, "VirtualSize": image.size,
            "Labels": config.get("Labels") or {}, "Containers": -1}


def inspect(engine: Engine, image: Image) -> dict[str, Any]:
    from longboat.build.cache import BuildCache

    parent = BuildCache(os.path.join(engine.settings.data_root, "build")).parent(image.id)
    config = image.config
    names = familiar(image.references)
    digests = [f"{reference.parse(n).familiar_name}@{image.manifest_digest}"
               for n in image.references]
    return {
        "Id": image.id, "RepoTags": names, "RepoDigests": sorted(set(digests)),
        "Parent": parent,
        "Comment": (config.get("history") or [{}])[-1].get("comment", ""),
        "Created": image.created, "Container": "", "ContainerConfig": {},
        "DockerVersion": config.get("docker_version", ""), "Author": config.get("author", ""),
        "Config": config.get("config") or {}, "Architecture": config.get("architecture", ""),
        "Variant": config.get("variant", ""), "Os": config.get("os", ""),
        "Size": image.size, "VirtualSize": image.size,
        "GraphDriver": {"Name": "overlay", "Data": {}},
        "RootFS": {"Type": "layers", "Layers": image.diff_ids},
        "Metadata": {"LastTagTime": "0001-01-01T00:00:00Z"},
    }


def _filters(request: Request) -> dict[str, list[str]]:
    raw = request.json_arg("filters") or {}
    if not isinstance(raw, dict):
        raise InvalidArgument("filters must be a JSON object")
    out: dict[str, list[str]] = {}
    for key, value in raw.items():
        # both {"a": ["x"]} and the old {"a": {"x": true}}
        out[key] = list(value) if isinstance(value, list) else [k for k, v in value.items() if v]
    return out


def _matches(image: Image, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if key == "dangling":
            want = values[-1].lower() in ("true", "1")
            if bool(image.references) == want:
                return False
        elif key == "reference":
            import fnmatch

            names = familiar(image.references) + image.references
            if not any(fnmatch.fnmatch(n, v) or fnmatch.fnmatch(n, v + ":*")
                       for n in names for v in values):
                return False
        elif key == "label":
            labels = (image.config.get("config") or {}).get("Labels") or {}
            for wanted in values:
                k, eq, v = wanted.partition("=")
                if k not in labels or (eq and labels[k] != v):
                    return False
        else:
            raise InvalidArgument(f"invalid filter '{key}'")
    return True


def register(router: Router, engine: Engine) -> None:
    store = engine.images
    insecure = engine.settings.insecure_registries

    async def thread(fn: Callable[[], Any]) -> Any:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    async def list_images(request: Request) -> Response:
        filters = _filters(request)
        show_all = request.flag("all")

        def rows_of() -> list[dict[str, Any]]:
            lineage = Lineage(engine)
            return [summary(i, lineage.parent(i)) for i in store.images()
                    if (show_all or not lineage.intermediate(i)) and _matches(i, filters)]

        rows = await thread(rows_of)
        rows.sort(key=lambda r: r["Created"], reverse=True)
        return Response.json(rows)

    async def inspect_image(request: Request) -> Response:
        image = await thread(lambda: store.get(request.params["name"]))
        return Response.json(inspect(engine, image))

    async def image_history(request: Request) -> Response:
        image = await thread(lambda: store.get(request.params["name"]))
        return Response.json(archive.history(image))

    async def tag(request: Request) -> Response:
        repo = request.arg("repo") or ""
        if not repo:
            raise InvalidArgument("repository name must have at least one component")
        name = f"{repo}:{request.arg('tag')}" if request.arg("tag") else repo
        await thread(lambda: store.tag(request.params["name"], name))
        return Response(201)

    async def remove(request: Request) -> Response:
        force = request.flag("force")

        def work() -> list[dict[str, str]]:
            using = used_by_containers(engine)
            name = request.params["name"]
            image = store.get(name)
            by_id = image.id.startswith(name) or image.id[7:].startswith(name)
            if image.id in using and not force and (by_id or len(image.references) < 2):
                user = using[image.id][:12]
                if by_id:
                    raise Conflict(f"conflict: unable to delete {image.id[7:19]} (must be "
                                   f"forced) - image is being used by container {user}")
                raise Conflict(f'conflict: unable to remove repository reference "{name}" '
                               f"(must force) - container {user} is using its referenced "
                               f"image {image.id[7:19]}")
            lineage = Lineage(engine)
            report = store.remove(name, force=force)
            if request.flag("noprune", False) or not any("Deleted" in r for r in report):
                return report
            # like docker: the untagged parents nothing else needs go too
            parent = lineage.parent(image)
            while parent and parent not in using:
                try:
                    above = store.get(parent)
                except LongboatError:
                    break
                children = [c for c, p in lineage.parents.items() if p == parent
                            and c != image.id and store.exists(c)]
                if above.references or children:
                    break
                report += store.remove(parent, force=True)
                image, parent = above, lineage.parent(above)
            lineage.cache.prune({i.id for i in store.images()})
            return report

        return Response.json(await thread(work))

    async def prune(request: Request) -> Response:
        filters = _filters(request)
        dangling = (filters.get("dangling") or ["true"])[-1].lower() in ("true", "1")

        def work() -> tuple[list[str], int]:
            using = used_by_containers(engine)
            deleted: list[str] = []
            freed = 0
            while True:   # a pruned child can leave its untagged parent childless
                lineage = Lineage(engine)
                gone, size = store.prune(dangling_only=dangling,
                                         in_use=_member(set(using) | lineage.with_children))
                deleted += gone
                freed += size
                if not gone:
                    break
            lineage.cache.prune({i.id for i in store.images()})
            return deleted, freed

        deleted, freed = await thread(work)
        return Response.json({"ImagesDeleted": [{"Deleted": d} for d in deleted] or None,
                              "SpaceReclaimed": freed})

    async def create(request: Request) -> Response:
        source = request.arg("fromSrc")
        if source is not None:
            return await import_image(request, source)
        name = request.arg("fromImage") or ""
        if not name:
            raise InvalidArgument("fromImage or fromSrc is required")
        tag = request.arg("tag")
        ref = f"{name}@{tag}" if tag and tag.startswith("sha256:") else \
            f"{name}:{tag}" if tag else name
        reference.parse(ref)   # a bad name is a 400 before any streaming
        creds = RequestCredentials(request.headers.get("x-registry-auth"))

        def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
            registry.pull(store, ref, auth=creds, insecure=insecure, progress=emit)
            return []

        return Response(200, headers={"Content-Type": "application/json"},
                        stream=streams.progress(work))

    async def import_image(request: Request, source: str) -> Response:
        if source != "-":
            raise InvalidArgument("importing from a URL is not supported; send the tar as "
                                  "the request body (fromSrc=-)")
        spool = await _spool(request, engine.tmpdir())
        repo = request.arg("repo")
        names = [f"{repo}:{request.arg('tag')}" if request.arg("tag") else repo] if repo else []
        from longboat.engine.commit import apply_changes

        # docker import --change: Dockerfile instructions applied to an empty config
        # (a bad instruction is a 400 before any streaming)
        changed = apply_changes({}, request.query.get("changes") or [])
        changes = {k: v for k, v in changed.items() if v not in (None, [], {}, "")}
        for key in changes:
            if key not in archive.CONFIG_KEYS:
                raise InvalidArgument(f"{key.lower()} is not a valid change command for "
                                      "import")

        def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
            with spool:
                spool.seek(0)
                image = archive.import_rootfs(
                    store, spool, names, changes,
                    message=request.arg("message") or "Imported from -")
            return [{"status": image.id}]

        return Response(200, headers={"Content-Type": "application/json"},
                        stream=streams.progress(work))

    async def push(request: Request) -> Response:
        name = request.params["name"]
        tag = request.arg("tag")
        ref = f"{name}:{tag}" if tag else name
        creds = RequestCredentials(request.headers.get("x-registry-auth"))
        parsed = reference.parse(ref)
        try:
            image = store.get(ref)
        except LongboatError:
            raise NotFound(f"An image does not exist locally with the tag: "
                           f"{parsed.familiar_name}") from None

        def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
            digest = registry.push(store, ref, auth=creds, insecure=insecure, progress=emit)
            return [{"progressDetail": {}, "aux": {"Tag": parsed.tag or "latest",
                                                   "Digest": digest, "Size": image.size}}]

        return Response(200, headers={"Content-Type": "application/json"},
                        stream=streams.progress(work))

    async def save(request: Request) -> Response:
        names = request.query.get("names") or [request.params.get("name", "")]
        names = [n for n in names if n]
        if not names:
            raise InvalidArgument("no image names to save")
        for name in names:     # a missing image is a 404 before any byte is sent
            store.get(name)
        spool = tempfile.TemporaryFile(dir=engine.tmpdir())  # noqa: SIM115 (streamed, closed there)
        await thread(lambda: archive.save(store, names, spool))

        async def body() -> AsyncIterator[bytes]:
            with spool:
                spool.seek(0)
                while chunk := await thread(lambda: spool.read(1 << 20)):
                    yield chunk

        return Response(200, headers={"Content-Type": "application/x-tar"}, stream=body())

    async def load(request: Request) -> Response:
        spool = await _spool(request, engine.tmpdir())
        quiet = request.flag("quiet")

        def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
            with spool:
                spool.seek(0)
                archive.load(store, spool,
                             progress=(lambda e: emit(e) if "stream" in e or not quiet
                                       else None))
            return []

        return Response(200, headers={"Content-Type": "application/json"},
                        stream=streams.progress(work))

    async def auth(request: Request) -> Response:
        body = await request.json() or {}
        server = str(body.get("serveraddress") or "docker.io")
        host = server.split("://", 1)[-1].split("/", 1)[0]
        memory = RequestCredentials(None)
        memory.user = str(body.get("username") or "")
        memory.password = str(body.get("password") or "")

        def check() -> str:
            # verify only; the client keeps the credentials (as Docker's daemon does)
            probe = _Discard()
            return registry.login(host, memory.user, memory.password, auth=probe,
                                  insecure=insecure)

        try:
            status = await thread(check)
        except LongboatError as exc:
            raise InvalidArgument(f"login to {host} failed: {exc.message}") from None
        return Response.json({"Status": status, "IdentityToken": ""})

    async def bootstrap(request: Request) -> Response:
        """A Longboat extension (Docker has no such endpoint): build a base image from
        what the host has (busybox-static, debootstrap), as ``longboat image bootstrap``."""
        from longboat.image.bootstrap import bootstrap_image

        name = request.arg("name") or ""
        if not name:
            raise InvalidArgument("name is required (busybox[:TAG] or debian[:SUITE])")

        def work(emit: Callable[[dict[str, Any]], None]) -> list[dict[str, Any]]:
            image = bootstrap_image(store, name, progress=lambda text: emit({"status": text}))
            return [{"status": f"Built {image.id}"},
                    *({"status": f"Tagged {reference.parse(n).familiar}"}
                      for n in image.references),
                    {"aux": {"ID": image.id}}]

        return Response(200, headers={"Content-Type": "application/json"},
                        stream=streams.progress(work))

    router.add("POST", "/images/bootstrap", bootstrap)
    router.add("GET", "/images/json", list_images)
    router.add("POST", "/images/create", create)
    router.add("POST", "/images/load", load)
    router.add("GET", "/images/get", save)
    router.add("POST", "/images/prune", prune)
    router.add("GET", "/images/{name:.+}/json", inspect_image)
    router.add("GET", "/images/{name:.+}/history", image_history)
    router.add("GET", "/images/{name:.+}/get", save)
    router.add("POST", "/images/{name:.+}/tag", tag)
    router.add("POST", "/images/{name:.+}/push", push)
    router.add("DELETE", "/images/{name:.+}", remove)
    router.add("POST", "/auth", auth)


class _Discard(AuthStore):
    """An AuthStore that keeps nothing: login only checks the credentials."""

    def __init__(self) -> None:
        super().__init__(path="/nonexistent/longboat-discard.json")

    def set(self, host: str, user: str, password: str) -> None:
        return None


async def _spool(request: Request, directory: str) -> Any:
    """The request body in an unnamed temporary file (loads and imports are read twice:
    to plan, then to write)."""
    spool = tempfile.TemporaryFile(dir=directory)  # noqa: SIM115 (the caller closes it)
    loop = asyncio.get_running_loop()
    try:
        while chunk := await request.read(1 << 20):
            await loop.run_in_executor(None, spool.write, chunk)
    except BaseException:
        spool.close()
        raise
    os.fsync(spool.fileno())
    return spool
