"""One build: the stages a target needs, each instruction dispatched in order against
the stage's state, every step committed as an image (the classic builder's chain of
images, which is what its cache finds again), the target tagged at the end.

Output is Docker's: "Step N/M : ...", " ---> Using cache", " ---> Running in ...",
the command's output, " ---> <id>", "Successfully built", "Successfully tagged". On
failure nothing is tagged, and every container, mount and snapshot the build made is
gone (images of the steps that succeeded stay, as cache)."""

from __future__ import annotations

import asyncio
import copy
import datetime
import json
import os
import uuid
from dataclasses import dataclass, field

from longboat.build import config as cfg
from longboat.build import shell_words
from longboat.build.cache import BuildCache, cache_key, history_match, layer_index
from longboat.build.dockerfile import Node
from longboat.build.errors import BuildError
from longboat.build.instructions import (
    Plan,
    Stage,
    arg_decls,
    check,
    name_values,
    onbuild_node,
    onbuild_text,
    plan,
)
from longboat.errors import LongboatError, NotFound

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Awaitable, Callable
    from typing import Any, TypeVar

    from longboat.build.context import BuildContext
    from longboat.engine.engine import Engine
    from longboat.image.store import Image

    T = TypeVar("T")

PROXY_ARGS = frozenset({"HTTP_PROXY", "http_proxy", "HTTPS_PROXY", "https_proxy",
                        "FTP_PROXY", "ftp_proxy", "NO_PROXY", "no_proxy", "ALL_PROXY",
                        "all_proxy"})
NOP = "#(nop) "
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


@dataclass
class BuildOptions:
    dockerfile: str = "Dockerfile"
    tags: list[str] = field(default_factory=list)
    build_args: dict[str, str | None] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    no_cache: bool = False
    cache_from: list[str] = field(default_factory=list)
    pull: bool = False
    remove: bool = True
    force_remove: bool = False
    network_mode: str = "default"
    target: str = ""
    extra_hosts: list[str] = field(default_factory=list)
    quiet: bool = False
    resources: dict[str, Any] = field(default_factory=dict)
    registry_auth: dict[str, Any] = field(default_factory=dict)


@dataclass
class StageState:
    stage: Stage
    image: Image | None
    config: dict[str, Any]
    args: dict[str, str | None] = field(default_factory=dict)
    cmd_set: bool = False
    author: str = ""
    busted: bool = False

    @property
    def image_id(self) -> str:
        return self.image.id if self.image is not None else ""


def short(image_id: str) -> str:
    return image_id.removeprefix("sha256:")[:12]


def _now() -> str:
    now = datetime.datetime.now(datetime.UTC)
    return now.strftime("%Y-%m-%dT%H:%M:%S.%fZ").replace("000Z", "Z")


class Builder:
    def __init__(self, engine: Engine, context: BuildContext, options: BuildOptions,
                 emit: Callable[[dict[str, Any]], None]) -> None:
        self.engine = engine
        self.store = engine.images
        self.context = context
        self.options = options
        self._emit = emit
        self.cache = BuildCache(os.path.join(engine.settings.data_root, "build"))
        self.plan: Plan | None = None
        self.results: dict[int, Image | None] = {}
        self.step = 0
        self.total = 0
        self.consumed: set[str] = set()
        self.meta_args: dict[str, str | None] = {}
        self._images: dict[str, Image] | None = None
        self._cache_sources: list[Image] = []
        self.mounts = 0

    # -- output -------------------------------------------------------------------------
    def out(self, text: str) -> None:
        if not self.options.quiet:
            self._emit({"stream": text})

    async def blocking(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(None, fn)

    # -- images -------------------------------------------------------------------------
    def image(self, image_id: str) -> Image | None:
        if self._images is None:
            self._images = {i.id: i for i in self.store.images()}
        return self._images.get(image_id)

    def _remember(self, image: Image) -> None:
        if self._images is not None:
            self._images[image.id] = image

    # -- the build ----------------------------------------------------------------------
    async def build(self) -> str:
        """Build; the target image's ID (tagged as asked)."""
        self.plan = plan(self.context.dockerfile)
        for warning in self.plan.warnings:
            self.out(f"[Warning] {warning}\n")
        self._meta_args()
        stages = self._needed_stages()
        if self.options.labels:
            text = " ".join(f"{json.dumps(k)}={json.dumps(v)}"
                            for k, v in sorted(self.options.labels.items()))
            stages[-1].nodes.append(Node("label", text, 0, f"LABEL {text}"))
        self.total = sum(1 + len(s.nodes) for s in stages)
        self._cache_sources = await self.blocking(self._load_cache_sources)
        result: Image | None = None
        for stage in stages:
            result = await self._build_stage(stage)
            self.results[stage.index] = result
        if result is None:
            raise BuildError("No image was generated. Is your Dockerfile empty?")
        unused = sorted(set(self.options.build_args) - self.consumed - PROXY_ARGS)
        if unused:
            self.out(f"[Warning] One or more build-args [{' '.join(unused)}] were not "
                     "consumed\n")
        image_id = result.id
        self._emit({"aux": {"ID": image_id}})
        if self.options.quiet:
            self._emit({"stream": image_id + "\n"})
        self.out(f"Successfully built {short(image_id)}\n")
        for tag in self.options.tags:
            from longboat.image import reference

            await self.blocking(lambda t=tag: self.store.tag(image_id, t))  # type: ignore[misc]
            self.out(f"Successfully tagged {reference.parse(tag).familiar}\n")
        return image_id

    def _load_cache_sources(self) -> list[Image]:
        out = []
        for ref in self.options.cache_from:
            try:
                out.append(self.store.get(ref))
            except NotFound:
                continue    # Docker ignores missing cache sources
        return out

    def _meta_args(self) -> None:
        assert self.plan is not None
        env: dict[str, str] = {}
        for node in self.plan.meta_args:
            for name, default in arg_decls(node):
                value: str | None
                if self.options.build_args.get(name) is not None:
                    value = self.options.build_args[name]
                    self.consumed.add(name)
                elif default is not None:
                    value = shell_words.process_word(default, env, self.plan.escape)
                else:
                    value = None
                self.meta_args[name] = value
                if value is not None:
                    env[name] = value

    def _meta_env(self) -> dict[str, str]:
        return {k: v for k, v in self.meta_args.items() if v is not None}

    def _stage_ref(self, word: str, stages: list[Stage], before: int) -> Stage | None:
        """The earlier stage ``word`` names (name, or index for --from), if any."""
        lowered = word.lower()
        for stage in stages[:before]:
            if stage.name and stage.name == lowered:
                return stage
        if word.isdigit() and int(word) < before:
            return stages[int(word)]
        return None

    def _needed_stages(self) -> list[Stage]:
        assert self.plan is not None
        stages = self.plan.stages
        env = self._meta_env()
        for stage in stages:
            stage.base = shell_words.process_word(stage.base, env, self.plan.escape)
        if self.options.target:
            target = next((s for s in stages if s.name == self.options.target.lower()),
                          None)
            if target is None:
                raise BuildError(f"failed to reach build target {self.options.target} in "
                                 "Dockerfile")
        else:
            target = stages[-1]
        needed: set[int] = set()
        todo = [target]
        while todo:
            stage = todo.pop()
            if stage.index in needed:
                continue
            needed.add(stage.index)
            base = self._stage_ref(stage.base, stages, stage.index)
            if base is not None and not stage.base.isdigit():
                todo.append(base)
            for node in stage.nodes:
                source = node.flags.get("from") if node.keyword == "copy" else None
                if source:
                    ref = self._stage_ref(source, stages, stage.index)
                    if ref is not None:
                        todo.append(ref)
                    elif source.isdigit():
                        raise BuildError(f"invalid from flag value {source}: refers to "
                                         "current build stage or a later one")
        return [s for s in stages if s.index in needed]

    # -- stages -------------------------------------------------------------------------
    async def _build_stage(self, stage: Stage) -> Image | None:
        assert self.plan is not None
        self.step += 1
        self.out(f"Step {self.step}/{self.total} : {stage.from_node.original}\n")
        base = await self._base_image(stage)
        state = StageState(stage, base, cfg.from_image(base.config.get("config")
                                                         if base else None))
        state.author = (base.config.get("author") or "") if base else ""
        if base is not None:
            state.config["Image"] = base.id
        if "PATH" not in cfg.env_map(state.config):   # Docker's setDefaultPath
            state.config["Env"] = [*(state.config.get("Env") or []), f"PATH={DEFAULT_PATH}"]
        self.out(f" ---> {short(state.image_id)}\n" if base else " ---> \n")
        triggers = list(state.config.get("OnBuild") or [])
        if triggers:
            state.config["OnBuild"] = None
            plural = "s" if len(triggers) > 1 else ""
            self.out(f"# Executing {len(triggers)} build trigger{plural}\n")
            for text in triggers:
                from longboat.build.dockerfile import _node

                node = _node(text, stage.from_node.line)
                check(node, self.plan.escape)
                await self._dispatch(state, node)
        for node in stage.nodes:
            self.step += 1
            self.out(f"Step {self.step}/{self.total} : {node.original}\n")
            await self._dispatch(state, node)
            self.out(f" ---> {short(state.image_id)}\n")
        return state.image

    async def _base_image(self, stage: Stage) -> Image | None:
        assert self.plan is not None
        word = stage.base
        if word.lower() == "scratch":
            return None
        earlier = self._stage_ref(word, self.plan.stages, stage.index)
        if earlier is not None and not word.isdigit():
            return self.results.get(earlier.index)
        return await self._image_by_name(word)

    async def _image_by_name(self, name: str) -> Image:
        from longboat.image import reference, registry

        try:
            reference.parse(name)
        except LongboatError as exc:
            raise BuildError(f"invalid reference format: {name}: {exc.message}") from None
        if not self.options.pull:
            try:
                return await self.blocking(lambda: self.store.get(name))
            except NotFound:
                pass

        def pull() -> Image:
            from longboat.api.images import RequestCredentials

            auth = RequestCredentials(None)
            domain = reference.parse(name).domain
            creds = self.options.registry_auth.get(domain) or {}
            if isinstance(creds, dict):
                auth.user = str(creds.get("username") or "")
                auth.password = str(creds.get("password") or "")
            return registry.pull(self.store, name, auth=auth,
                                 insecure=self.engine.settings.insecure_registries,
                                 progress=lambda e: self._emit(e) if "status" in e else None)

        try:
            image = await self.blocking(pull)
        except LongboatError as exc:
            if not self.options.pull:
                raise BuildError(f"pull access denied for {name}, or it does not exist "
                                 f"locally: {exc.message}") from None
            try:   # --pull, and the registry cannot be reached: the local one will do
                image = await self.blocking(lambda: self.store.get(name))
            except NotFound:
                raise BuildError(f"pulling {name}: {exc.message}") from None
        self._remember(image)
        return image

    # -- expansion ----------------------------------------------------------------------
    def expansion_env(self, state: StageState) -> dict[str, str]:
        env = {k: v for k, v in state.args.items() if v is not None}
        for name in PROXY_ARGS:
            value = self.options.build_args.get(name)
            if value is not None:
                env.setdefault(name, value)
        env.update(cfg.env_map(state.config))
        return env

    def word(self, state: StageState, text: str) -> str:
        assert self.plan is not None
        return shell_words.process_word(text, self.expansion_env(state), self.plan.escape)

    # -- commits ------------------------------------------------------------------------
    def _container_config(self, state: StageState, cmd: list[str]) -> dict[str, Any]:
        container_config = copy.deepcopy(state.config)
        container_config["Cmd"] = cmd
        return container_config

    def _nop(self, state: StageState, comment: str) -> dict[str, Any]:
        return self._container_config(state, [*cfg.shell_of(state.config), NOP + comment])

    async def _probe(self, state: StageState, container_config: dict[str, Any]) -> bool:
        """Docker's probeCache: a hit moves the stage on to the cached image."""
        if state.busted:
            return False
        key = cache_key(state.image_id, container_config)
        if not self.options.no_cache:
            found = self.cache.lookup(key)
            image = self.image(found) if found else None
            if image is not None:
                self.out(" ---> Using cache\n")
                state.image = image
                return True
            image = await self.blocking(lambda: self._from_cache_sources(
                state, container_config))
            if image is not None:
                self.out(" ---> Using cache\n")
                state.image = image
                return True
        state.busted = True
        return False

    def _from_cache_sources(self, state: StageState, container_config: dict[str, Any]
                            ) -> Image | None:
        created_by = " ".join(container_config.get("Cmd") or [])
        parent = state.image.config if state.image else None
        for source in self._cache_sources:
            index = history_match(source.config, parent, created_by)
            if index is None:
                continue
            layer = layer_index(source.config, index)
            entry = dict(source.config["history"][index])
            layers = list(state.image.layers) if state.image else []
            diff_ids = list(state.image.diff_ids) if state.image else []
            if layer is not None:
                layers.append(source.layers[layer])
                diff_ids.append(source.diff_ids[layer])
            image_config = self._image_config(state, container_config, entry, diff_ids, "")
            image = self.store.create(image_config, layers)
            self._remember(image)
            self.cache.record(cache_key(state.image_id, container_config), image.id,
                              state.image_id)
            return image
        return None

    def _image_config(self, state: StageState, container_config: dict[str, Any],
                      history: dict[str, Any], diff_ids: list[str], container_id: str
                      ) -> dict[str, Any]:
        parent = state.image.config if state.image else {}
        run_config = copy.deepcopy(state.config)
        run_config["Image"] = state.image_id
        container_config = dict(container_config, Image=state.image_id)
        image_config: dict[str, Any] = {
            "architecture": parent.get("architecture") or "amd64",
            "config": run_config,
            "container": container_id,
            "container_config": container_config,
            "created": history["created"],
            "docker_version": "20.10.24",
            "history": [*(parent.get("history") or []), history],
            "os": parent.get("os") or "linux",
            "rootfs": {"type": "layers", "diff_ids": diff_ids},
        }
        if parent.get("variant"):
            image_config["variant"] = parent["variant"]
        if state.author:
            image_config["author"] = state.author
        return image_config

    def _commit(self, state: StageState, container_config: dict[str, Any],
                layer: tuple[dict[str, Any], str] | None, container_id: str = "") -> Image:
        """A new image on the stage's current one: ``layer`` (descriptor, diff ID) or
        none; recorded for the cache."""
        created = _now()
        history: dict[str, Any] = {"created": created,
                                   "created_by": " ".join(container_config.get("Cmd") or [])}
        layers = list(state.image.layers) if state.image else []
        diff_ids = list(state.image.diff_ids) if state.image else []
        if layer is None:
            history["empty_layer"] = True
        else:
            layers.append(layer[0])
            diff_ids.append(layer[1])
        image_config = self._image_config(state, container_config, history, diff_ids,
                                          container_id)
        image = self.store.create(image_config, layers)
        self._remember(image)
        self.cache.record(cache_key(state.image_id, container_config), image.id,
                          state.image_id)
        return image

    async def _commit_nop(self, state: StageState, comment: str) -> None:
        container_config = self._nop(state, comment)
        if await self._probe(state, container_config):
            return
        state.image = await self.blocking(lambda: self._commit(state, container_config,
                                                                None))

    # -- instructions -------------------------------------------------------------------
    async def _dispatch(self, state: StageState, node: Node) -> None:
        from longboat.build import steps

        try:
            await steps.dispatch(self, state, node)
        except BuildError:
            raise
        except LongboatError as exc:
            raise BuildError(exc.message) from None

    def new_key(self) -> str:
        return "build-" + uuid.uuid4().hex[:20]

    def mount_dir(self) -> str:
        self.mounts += 1
        path = os.path.join(self.context.dir, f"mnt{self.mounts}")
        os.mkdir(path, 0o700)
        return path

    def stage_image(self, state: StageState, word: str) -> Image | str | None:
        """What COPY --from names: an earlier stage's result, or "" for an image name."""
        assert self.plan is not None
        ref = self._stage_ref(word, self.plan.stages, state.stage.index)
        if ref is None:
            return ""
        return self.results.get(ref.index)

    def await_all(self, *aws: Awaitable[Any]) -> Awaitable[Any]:
        return asyncio.gather(*aws)


__all__ = ["BuildOptions", "Builder", "StageState", "name_values", "onbuild_node",
           "onbuild_text"]
