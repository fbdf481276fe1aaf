"""Each Dockerfile instruction, dispatched on a stage's state: what it expands, what it
changes in the configuration, the cache key it is probed under, and the image it
commits (metadata only, a layer of copied files, or a build container's changes)."""

from __future__ import annotations

import contextlib
import copy as copy_module
import errno
import hashlib
import json
import os
import shutil

from longboat.build import config as cfg
from longboat.build import copy as copying
from longboat.build import shell_words
from longboat.build.builder import NOP, Builder, StageState
from longboat.build.errors import BuildError
from longboat.build.instructions import arg_decls, name_values, onbuild_text, parse_words
from longboat.build.layers import change_files, layer_from_upper, mounted
from longboat.build.run import exit_error, prune_mount_points, run_container

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.build.dockerfile import Node
    from longboat.image.store import Image


async def dispatch(b: Builder, state: StageState, node: Node) -> None:
    k = node.keyword
    handler = _METADATA.get(k)
    if handler is not None:
        comment = handler(b, state, node)
        await b._commit_nop(state, comment)
    elif k == "arg":
        await _arg(b, state, node)
    elif k == "workdir":
        await _workdir(b, state, node)
    elif k in ("copy", "add"):
        await _copy(b, state, node)
    elif k == "run":
        await _run(b, state, node)
    else:
        raise BuildError(f"unknown instruction: {k.upper()}")


# -- metadata instructions: they change the config and commit no layer ---------------------

def _env(b: Builder, state: StageState, node: Node) -> str:
    env = b.expansion_env(state)
    escape = b.plan.escape if b.plan else "\\"
    parts = []
    for key, value in name_values(node, escape):
        name = shell_words.process_word(key, env, escape)
        expanded = shell_words.process_word(value, env, escape)
        cfg.set_env(state.config, name, expanded)
        parts.append(f"{name}={expanded}")
    return "ENV " + " ".join(parts)


def _label(b: Builder, state: StageState, node: Node) -> str:
    env = b.expansion_env(state)
    escape = b.plan.escape if b.plan else "\\"
    labels = dict(state.config.get("Labels") or {})
    parts = []
    for key, value in name_values(node, escape):
        name = shell_words.process_word(key, env, escape)
        expanded = shell_words.process_word(value, env, escape)
        labels[name] = expanded
        parts.append(f"{name}={expanded}")
    state.config["Labels"] = labels
    return "LABEL " + " ".join(parts)


def _maintainer(b: Builder, state: StageState, node: Node) -> str:
    state.author = node.rest.strip()
    return "MAINTAINER " + state.author


def _command(state: StageState, node: Node) -> list[str]:
    args = node.json_args()
    if args is not None:
        return args
    rest = node.rest.strip()
    return [*cfg.shell_of(state.config), rest] if rest else []


def _cmd(b: Builder, state: StageState, node: Node) -> str:
    state.config["Cmd"] = _command(state, node)
    state.cmd_set = True
    return f"CMD {_go_quote(state.config['Cmd'])}"


def _entrypoint(b: Builder, state: StageState, node: Node) -> str:
    args = node.json_args()
    if args is None and not node.rest.strip():
        state.config["Entrypoint"] = None
    else:
        state.config["Entrypoint"] = _command(state, node)
    if not state.cmd_set:
        state.config["Cmd"] = None
    return f"ENTRYPOINT {_go_quote(state.config['Entrypoint'] or [])}"


def _go_quote(values: list[str]) -> str:
    import json

    return "[" + " ".join(json.dumps(v) for v in values) + "]"


def _expose(b: Builder, state: StageState, node: Node) -> str:
    from longboat.engine.commit import _ports

    env = b.expansion_env(state)
    escape = b.plan.escape if b.plan else "\\"
    ports = dict(state.config.get("ExposedPorts") or {})
    words = [shell_words.process_word(w, env, escape) for w in node.rest.split()]
    added = []
    for word in words:
        try:
            for port in _ports(word):
                ports[port] = {}
                added.append(port)
        except Exception as exc:
            raise BuildError(getattr(exc, "message", str(exc))) from None
    state.config["ExposedPorts"] = ports
    return "EXPOSE " + " ".join(sorted(ports))


def _volume(b: Builder, state: StageState, node: Node) -> str:
    env = b.expansion_env(state)
    escape = b.plan.escape if b.plan else "\\"
    paths = node.json_args()
    if paths is None:
        paths = node.rest.split()
    expanded = [shell_words.process_word(p, env, escape) for p in paths]
    if not expanded or any(not p.strip() for p in expanded):
        raise BuildError("VOLUME specified can not be an empty string")
    volumes = dict(state.config.get("Volumes") or {})
    for path in expanded:
        volumes[path] = {}
    state.config["Volumes"] = volumes
    return f"VOLUME {_go_quote(expanded)}"


def _user(b: Builder, state: StageState, node: Node) -> str:
    user = b.word(state, node.rest.strip())
    state.config["User"] = user
    return "USER " + user


def _stopsignal(b: Builder, state: StageState, node: Node) -> str:
    from longboat.engine.commit import _valid_signal

    signal = b.word(state, node.rest.strip())
    if not _valid_signal(signal):
        raise BuildError(f"Invalid signal: {signal}")
    state.config["StopSignal"] = signal
    return "STOPSIGNAL " + signal


def _shell(b: Builder, state: StageState, node: Node) -> str:
    args = node.json_args()
    if not args:
        raise BuildError("SHELL requires the arguments to be in JSON form")
    state.config["Shell"] = args
    return f"SHELL {_go_quote(args)}"


def _healthcheck(b: Builder, state: StageState, node: Node) -> str:
    rest = node.rest.strip()
    kind, _, command = rest.partition(" ")
    kind = kind.upper()
    command = command.strip()
    args = None
    if kind == "CMD":
        from longboat.build.dockerfile import Node as _Node

        args = _Node("cmd", command, node.line, command).json_args()
        if args is None and not command:
            raise BuildError("Missing command after HEALTHCHECK CMD")
    check = cfg.healthcheck(kind, args, command, node.flags)
    state.config["Healthcheck"] = check
    return f"HEALTHCHECK &{{{check['Test']} ...}}"


def _onbuild(b: Builder, state: StageState, node: Node) -> str:
    text = onbuild_text(node)
    state.config["OnBuild"] = [*(state.config.get("OnBuild") or []), text]
    return "ONBUILD " + text


_METADATA = {"env": _env, "label": _label, "maintainer": _maintainer, "cmd": _cmd,
             "entrypoint": _entrypoint, "expose": _expose, "volume": _volume,
             "user": _user, "stopsignal": _stopsignal, "shell": _shell,
             "healthcheck": _healthcheck, "onbuild": _onbuild}


async def _arg(b: Builder, state: StageState, node: Node) -> None:
    env = b.expansion_env(state)
    escape = b.plan.escape if b.plan else "\\"
    parts = []
    for name, default in arg_decls(node):
        given = b.options.build_args.get(name)
        if name in b.options.build_args and given is not None:
            value: str | None = given
            b.consumed.add(name)
        elif default is not None:
            value = shell_words.process_word(default, env, escape)
        elif b.meta_args.get(name) is not None:
            value = b.meta_args[name]
        else:
            value = None
        if name in b.options.build_args:
            b.consumed.add(name)
        state.args[name] = value
        parts.append(name if default is None else f"{name}={default}")
    await b._commit_nop(state, "ARG " + " ".join(parts))


# -- WORKDIR: the directory is made in the image ---------------------------------------

async def _workdir(b: Builder, state: StageState, node: Node) -> None:
    path = cfg.workdir(state.config, b.word(state, node.rest.strip()))
    state.config["WorkingDir"] = path
    container_config = b._nop(state, "WORKDIR " + path)
    if await b._probe(state, container_config):
        return

    def work(root_fd: int) -> None:
        from longboat.linux import fs

        try:
            os.close(fs.makedirs_in_root(root_fd, path, 0o755))
        except NotADirectoryError:
            raise BuildError(f"WORKDIR {path}: a part of it is not a directory") from None
        except OSError as exc:
            if exc.errno not in (errno.ENAMETOOLONG, errno.ELOOP):
                raise
            raise BuildError(f"WORKDIR {path[:80]}...: {exc.strerror}") from None

    def commit() -> Image:
        layer = change_files(b, state.image, work)
        return b._commit(state, container_config, layer)

    state.image = await b.blocking(commit)


# -- COPY and ADD -------------------------------------------------------------------------

class _CopyJob:
    """A COPY/ADD between its phases: sources resolved (their roots held open), the
    checksum known; then the files written; then everything released."""

    def __init__(self, b: Builder, state: StageState, node: Node) -> None:
        self.b = b
        self.state = state
        self.node = node
        self.add = node.keyword == "add"
        self.stack = contextlib.ExitStack()
        self.plan: copying.CopyPlan | None = None
        self.downloads = ""
        self.from_source: tuple[Image, list[str]] | None = None

    def prepare(self, source_image: Image | str | None, from_flag: str | None) -> str:
        """Resolve the sources; the step's comment (its cache key)."""
        b, state, node = self.b, self.state, self.node
        name = node.keyword.upper()
        args = node.json_args()
        if args is None:
            args = node.rest.split()
        words = [b.word(state, a) for a in args]
        srcs, dest = words[:-1], words[-1]
        dest_abs, dest_is_dir = copying.destination(dest, state.config.get("WorkingDir")
                                                    or "/")
        chmod = node.flags.get("chmod")
        mode = None
        if chmod:
            try:
                mode = int(chmod, 8)
                if not 0 <= mode <= 0o7777:
                    raise ValueError
            except ValueError:
                raise BuildError(f"invalid chmod parameter: {chmod}") from None
        sources: list[copying.Source] = []
        if from_flag:
            if source_image is None:
                raise BuildError(f"{name} --from={from_flag}: that stage has no files "
                                 "(FROM scratch with nothing added)")
            assert not isinstance(source_image, str)
            # an image's files are fixed by its ID: the key needs no mount (a miss mounts
            # it in write())
            self.from_source = (source_image, srcs)
            self.plan = copying.CopyPlan([], dest_abs, dest_is_dir, copying.Owner(), mode)
            digest = hashlib.sha256(json.dumps(srcs).encode()).hexdigest()
            flags = "".join(f" --{f}={node.flags[f]}" for f in ("chown", "chmod")
                            if node.flags.get(f))
            return f"{name} from:{source_image.id}:{digest} in {dest}{flags} "
        else:
            from longboat.build.context import open_context_root

            root_fd = open_context_root(b.context.root)
            self.stack.callback(os.close, root_fd)
            local = [s for s in srcs if not (self.add and _is_url(s))]
            urls = [s for s in srcs if self.add and _is_url(s)]
            if local:
                sources = copying.resolve(root_fd, local, context=True, instruction=name)
            if self.add:
                from longboat.build.archives import download, is_archive

                for source in sources:
                    import stat

                    if stat.S_ISREG(source.st.st_mode) and is_archive(root_fd, source.path):
                        source.archive = True
                if urls:
                    # on disk, never in the context's directory (which may be in SHM)
                    self.downloads = os.path.join(b.engine.tmpdir(), "downloads-" + b.new_key())
                    os.mkdir(self.downloads, 0o700)
                    self.stack.callback(shutil.rmtree, self.downloads, True)
                for url in urls:
                    path, filename, mtime = download(url, self.downloads)
                    st = os.stat(path)
                    sources.append(copying.Source(-1, url, filename, st, host_file=path,
                                                  mtime_ns=mtime))
        if len(sources) > 1 and not dest_is_dir:
            raise BuildError(f"When using {name} with more than one source file, the "
                             "destination must be a directory and end with a /")
        self.plan = copying.CopyPlan(sources, dest_abs, dest_is_dir, copying.Owner(), mode)
        checksum = copying.checksum(sources)
        import stat

        if len(sources) == 1 and stat.S_ISDIR(sources[0].st.st_mode) and \
                not sources[0].host_file:
            kind = "dir"
        elif len(sources) == 1:
            kind = "file"
        else:
            kind = "multi"
        flags = "".join(f" --{f}={node.flags[f]}" for f in ("chown", "chmod")
                        if node.flags.get(f))
        return f"{name} {kind}:{checksum} in {dest}{flags} "

    def write(self, root_fd: int) -> None:
        assert self.plan is not None
        if self.from_source is not None:
            image, srcs = self.from_source
            name = self.node.keyword.upper()
            source_fd, _ = self.stack.enter_context(mounted(self.b, image, readonly=True))
            self.plan.sources = copying.resolve(source_fd, srcs, context=False,
                                                instruction=name)
            if len(self.plan.sources) > 1 and not self.plan.dest_is_dir:
                raise BuildError(f"When using {name} with more than one source file, the "
                                 "destination must be a directory and end with a /")
        chown = self.node.flags.get("chown")
        if chown:
            self.plan.owner = _owner(self.b.word(self.state, chown), root_fd)
        copying.Writer(root_fd, self.plan).run()

    def close(self) -> None:
        self.stack.close()


def _is_url(text: str) -> bool:
    return text.startswith("http://") or text.startswith("https://")


def _owner(spec: str, root_fd: int) -> copying.Owner:
    """Docker's --chown: user[:group], names looked up in the image's own files; a
    lone user is also taken as the group."""
    from longboat.engine.bundle_user import parse_group, parse_passwd, read_etc_file

    parts = spec.split(":")
    if len(parts) > 2 or not parts[0]:
        raise BuildError(f"invalid chown string format: {spec}")
    user, group = (parts[0], parts[0]) if len(parts) == 1 else (parts[0], parts[1])

    def number(text: str) -> int | None:
        if not text.isdigit():
            return None
        if int(text) > 0xFFFFFFFE:      # (uid_t)-1 and beyond are not ids
            raise BuildError(f"invalid chown string format: {spec}: {text} is out of range")
        return int(text)

    uid = number(user)
    if uid is None:
        entries = parse_passwd(read_etc_file(root_fd, "/etc/passwd"))
        match = next((e for e in entries if e.name == user), None)
        if match is None:
            raise BuildError(f"unable to convert uid/gid chown string to host mapping: "
                             f"can't find uid for user {user}: no such user: {user}")
        uid = match.uid
    gid = number(group)
    if gid is None:
        groups = parse_group(read_etc_file(root_fd, "/etc/group"))
        found = next((g for g in groups if g.name == group), None)
        if found is None:
            raise BuildError(f"unable to convert uid/gid chown string to host mapping: "
                             f"can't find gid for group {group}: no such group: {group}")
        gid = found.gid
    return copying.Owner(uid, gid)


async def _copy(b: Builder, state: StageState, node: Node) -> None:
    from_flag = node.flags.get("from")
    source_image: Image | str | None = ""
    if from_flag:
        source_image = b.stage_image(state, from_flag)
        if source_image == "":
            source_image = await b._image_by_name(from_flag)
    job = _CopyJob(b, state, node)
    try:
        comment = await b.blocking(lambda: job.prepare(source_image, from_flag))
        container_config = b._nop(state, comment)
        if await b._probe(state, container_config):
            return

        def commit() -> Image:
            layer = change_files(b, state.image, job.write)
            return b._commit(state, container_config, layer)

        state.image = await b.blocking(commit)
    finally:
        await b.blocking(job.close)


# -- RUN ------------------------------------------------------------------------------

async def _run(b: Builder, state: StageState, node: Node) -> None:
    command = _command(state, node)
    env_names = set(cfg.env_map(state.config))
    build_args = sorted((k, v) for k, v in state.args.items()
                        if v is not None and k not in env_names)
    proxies = sorted((k, v) for k, v in b.options.build_args.items()
                     if k in _proxy_args() and v is not None and k not in env_names
                     and k not in state.args)
    save_cmd = list(command)
    if build_args:
        save_cmd = [f"|{len(build_args)}", *(f"{k}={v}" for k, v in build_args), *command]
    container_config = copy_module.deepcopy(state.config)
    container_config["Cmd"] = save_cmd
    container_config["Entrypoint"] = None
    if await b._probe(state, container_config):
        return
    if state.image is None:
        raise BuildError(f"RUN cannot run on an empty image (FROM scratch): "
                         f"{' '.join(command)}")
    env = list(state.config.get("Env") or []) + [f"{k}={v}" for k, v in build_args + proxies]
    host_config: dict[str, Any] = {"NetworkMode": b.options.network_mode or "default",
                                   **b.options.resources}
    if b.options.extra_hosts:
        host_config["ExtraHosts"] = list(b.options.extra_hosts)
    body = {"Image": state.image.id, "Cmd": command, "Entrypoint": [""],
            "Env": env or None, "User": state.config.get("User") or "",
            "WorkingDir": state.config.get("WorkingDir") or "",
            "AttachStdout": True, "AttachStderr": True, "HostConfig": host_config}
    def created(cid: str) -> None:
        b.context.note_container(cid)    # the build's journal (build/leftovers.py)
        b.out(f" ---> Running in {cid[:12]}\n")

    result = await run_container(b.engine, body, b.out, created)
    cid = result.container_id
    removed = False
    try:
        if result.exit_code != 0:
            raise exit_error(command, result.exit_code)

        def commit() -> Image:
            from longboat.engine.filesystem import runtime_mount_points

            snapshots = b.engine.snapshots
            container = b.engine.containers.get(cid)
            mount = snapshots.mounts(cid)
            lowers = [os.path.join(mount.root, lower) for lower in mount.lowerdirs]
            upper = snapshots.upper_path(cid)
            prune_mount_points(upper, lowers, runtime_mount_points(container))
            layer = layer_from_upper(b, upper)
            return b._commit(state, container_config, layer, cid)

        image = await b.blocking(commit)
        if b.options.remove or b.options.force_remove:
            await b.engine.containers.remove(cid, force=True)
            removed = True
            b.out(f"Removing intermediate container {cid[:12]}\n")
        state.image = image
    finally:
        if not removed and (b.options.force_remove or b.options.remove or
                            result.exit_code != 0):
            with contextlib.suppress(Exception):
                await b.engine.containers.remove(cid, force=True)


def _proxy_args() -> frozenset[str]:
    from longboat.build.builder import PROXY_ARGS

    return PROXY_ARGS


__all__ = ["NOP", "dispatch", "parse_words"]
