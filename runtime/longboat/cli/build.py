"""``longboat build`` / ``longboat image build``: the context directory (or stdin) sent
as a tar, honouring ``.dockerignore`` with the engine's own matcher, and the engine's
build stream shown as docker's classic builder shows it."""

from __future__ import annotations

import argparse
import io
import os
import sys

from longboat.cli.main import CommandError, Context

TYPE_CHECKING = False
if TYPE_CHECKING:
    import tarfile
    from typing import IO, Any


def add_arguments(p: argparse.ArgumentParser) -> None:
    many: dict[str, Any] = {"action": "append", "default": []}
    p.add_argument("--add-host", **many, help="add a custom host-to-IP mapping (host:ip)")
    p.add_argument("--build-arg", **many, help="set build-time variables")
    p.add_argument("--cache-from", **many, help="images to consider as cache sources")
    p.add_argument("--compress", action="store_true",
                   help="compress the build context using gzip")
    p.add_argument("--cpu-period", type=int,
                   help="limit the CPU CFS (Completely Fair Scheduler) period")
    p.add_argument("--cpu-quota", type=int,
                   help="limit the CPU CFS (Completely Fair Scheduler) quota")
    p.add_argument("-c", "--cpu-shares", type=int, help="CPU shares (relative weight)")
    p.add_argument("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    p.add_argument("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    p.add_argument("--disable-content-trust", nargs="?", const="true", default="true",
                   choices=["true", "false", "1", "0"],
                   help="skip image verification (default true; there is no content "
                        "trust here)")
    p.add_argument("-f", "--file", help="name of the Dockerfile (default 'PATH/Dockerfile'"
                                        "; - reads it from stdin)")
    p.add_argument("--force-rm", action="store_true",
                   help="always remove intermediate containers")
    p.add_argument("--iidfile", help="write the image ID to the file")
    p.add_argument("--label", **many, help="set metadata for an image")
    p.add_argument("-m", "--memory", help="memory limit")
    p.add_argument("--memory-swap", help="swap limit equal to memory plus swap: '-1' to "
                                         "enable unlimited swap")
    p.add_argument("--network", default="default",
                   help="set the networking mode for the RUN instructions during build "
                        "(default \"default\")")
    p.add_argument("--no-cache", action="store_true",
                   help="do not use cache when building the image")
    p.add_argument("--platform", help="set platform if server is multi-platform capable")
    p.add_argument("--pull", action="store_true",
                   help="always attempt to pull a newer version of the image")
    p.add_argument("-q", "--quiet", action="store_true",
                   help="suppress the build output and print image ID on success")
    p.add_argument("--rm", nargs="?", const="true", default="true",
                   choices=["true", "false", "1", "0"],
                   help="remove intermediate containers after a successful build "
                        "(default true)")
    p.add_argument("--shm-size", help="size of /dev/shm")
    p.add_argument("-t", "--tag", **many, help="name and optionally a tag in the "
                                               "'name:tag' format")
    p.add_argument("--target", help="set the target build stage to build")
    p.add_argument("--ulimit", **many, help="ulimit options")
    p.add_argument("path", metavar="PATH | -")


def _size(n: int) -> str:
    for unit in ("B", "kB", "MB", "GB"):
        if n < 1000 or unit == "GB":
            return f"{n:.4g}{unit}" if unit != "B" else f"{n}B"
        n /= 1000  # type: ignore[assignment]
    return f"{n}GB"


def _is_archive(head: bytes) -> bool:
    import tarfile
    if head[:2] == b"\x1f\x8b" or head[:3] == b"BZh" or head[:6] == b"\xfd7zXZ\x00":
        return True
    if len(head) < 512:
        return False
    try:
        tarfile.TarInfo.frombuf(head[:512], "utf-8", "surrogateescape")
    except tarfile.TarError:
        return False
    return True


def _tar_info(path: str, arcname: str, st: os.stat_result) -> tarfile.TarInfo:
    import stat
    import tarfile

    info = tarfile.TarInfo(arcname)
    info.mode = st.st_mode & 0o7777
    info.mtime = int(st.st_mtime)
    info.uid = info.gid = 0         # as docker's CLI sends them (ChownOpts 0:0)
    info.uname = info.gname = ""
    if stat.S_ISDIR(st.st_mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(st.st_mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISREG(st.st_mode):
        info.size = st.st_size
    else:
        raise CommandError(f"unsupported file type in the build context: {path}")
    return info


def context_tar(root: str, out: IO[bytes], *, extra: dict[str, bytes] | None = None,
                dockerfile: str = "Dockerfile") -> None:
    """Tar ``root`` into ``out``, leaving out what its .dockerignore excludes (the
    Dockerfile and the .dockerignore itself are always sent)."""
    import stat
    import tarfile

    from longboat.build import dockerignore

    patterns: list[str] = []
    try:
        with open(os.path.join(root, ".dockerignore"), encoding="utf-8",
                  errors="replace") as f:
            patterns = dockerignore.read_patterns(f.read())
    except FileNotFoundError:
        pass
    if patterns:
        patterns += ["!.dockerignore", "!" + dockerfile]
    try:
        matcher = dockerignore.Matcher(patterns)
    except ValueError as exc:
        raise CommandError(f"error checking context: {exc}") from None
    start = out.tell()
    with tarfile.open(fileobj=out, mode="w|", format=tarfile.PAX_FORMAT) as tar:
        def walk(directory: str, prefix: str) -> None:
            for name in sorted(os.listdir(directory)):
                path = os.path.join(directory, name)
                rel = prefix + name
                st = os.lstat(path)
                is_dir = stat.S_ISDIR(st.st_mode)
                if matcher and matcher.excluded(rel):
                    if is_dir and matcher.may_have_exceptions_below(rel):
                        walk(path, rel + "/")
                    continue
                if stat.S_ISSOCK(st.st_mode):
                    continue
                try:
                    info = _tar_info(path, rel, st)
                except PermissionError as exc:
                    raise CommandError(f"error checking context: can't stat '{path}': "
                                       f"{exc}") from None
                if info.type == tarfile.REGTYPE:
                    try:
                        with open(path, "rb") as f:
                            tar.addfile(info, f)
                    except PermissionError as exc:
                        raise CommandError(f"error checking context: can't open "
                                           f"'{path}': {exc}") from None
                else:
                    tar.addfile(info)
                if is_dir:
                    walk(path, rel + "/")

        walk(root, "")
        for name, data in (extra or {}).items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o600
            tar.addfile(info, io.BytesIO(data))
    _unpad(out, start, tar.offset)


def _unpad(out: IO[bytes], start: int, end: int) -> None:
    """Drop the zeros tarfile pads an archive with up to 10 KiB (its end-of-archive
    blocks stay): docker's CLI sends none, and reports the context's size without."""
    out.truncate(start + end)
    out.seek(start + end)


def _single_file_tar(name: str, data: bytes, out: IO[bytes]) -> None:
    import tarfile
    start = out.tell()
    with tarfile.open(fileobj=out, mode="w|") as tar:
        info = tarfile.TarInfo(name)
        info.size = len(data)
        info.mode = 0o600
        tar.addfile(info, io.BytesIO(data))
    _unpad(out, start, tar.offset)


def _check_tags(tags: list[str]) -> None:
    """docker's CLI refuses a bad tag before sending anything."""
    from longboat.cli.main import UsageError
    from longboat.errors import LongboatError
    from longboat.image import reference

    for tag in tags:
        try:
            ref = reference.parse(tag)
        except LongboatError as exc:
            reason = exc.message.removeprefix("invalid reference format: ")
            raise UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: invalid '
                             f"reference format: {reason}\nSee 'longboat build --help'."
                             ) from None
        if ref.digest:
            raise UsageError(f'invalid argument "{tag}" for "-t, --tag" flag: invalid '
                             "reference format: a digest cannot be a tag\n"
                             "See 'longboat build --help'.")


def _resource_params(a: Any) -> list[tuple[str, str | None]]:
    """-m, --memory-swap, --cpu-*, --cpuset-*, --shm-size, --ulimit as docker's query."""
    import json

    from longboat.cli.main import UsageError
    from longboat.cli.run_args import ArgumentError, mem_bytes, swap_bytes, ulimit

    try:
        params: list[tuple[str, str | None]] = [
            ("memory", str(mem_bytes(a.memory, "--memory")) if a.memory else None),
            ("memswap", str(swap_bytes(a.memory_swap)) if a.memory_swap else None),
            ("shmsize", str(mem_bytes(a.shm_size, "--shm-size")) if a.shm_size else None),
            ("ulimits", json.dumps([ulimit(u) for u in a.ulimit]) if a.ulimit else None)]
    except ArgumentError as exc:
        raise UsageError(f"{exc}\nSee 'longboat build --help'.") from None
    for name, value in (("cpushares", a.cpu_shares), ("cpuperiod", a.cpu_period),
                        ("cpuquota", a.cpu_quota), ("cpusetcpus", a.cpuset_cpus),
                        ("cpusetmems", a.cpuset_mems)):
        params.append((name, str(value) if value else None))
    return params


def _gzipped(body: IO[bytes]) -> IO[bytes]:
    """``--compress``: the context gzipped (the engine takes either), as a new file."""
    import gzip
    import shutil
    import tempfile

    out = tempfile.TemporaryFile()  # noqa: SIM115 (the caller closes it)
    with body, gzip.GzipFile(fileobj=out, mode="wb", compresslevel=6) as packed:
        shutil.copyfileobj(body, packed)
    out.seek(0)
    return out


def build(ctx: Context) -> int:
    import json
    import tempfile

    from longboat.cli.progress import show_all

    a = ctx.args
    _check_tags(a.tag)
    resources = _resource_params(a)
    body: IO[bytes] = tempfile.TemporaryFile()  # noqa: SIM115 (closed below)
    dockerfile_param = ""
    try:
        stdin = sys.stdin.buffer
        if a.path == "-":
            if a.file == "-":
                raise CommandError("invalid argument: can't use stdin for both build "
                                   "context and dockerfile")
            data = stdin.read()
            if _is_archive(data[:512]):
                body.write(data)
                dockerfile_param = a.file or ""
            else:
                _single_file_tar("Dockerfile", data, body)
        else:
            root = a.path
            if not os.path.isdir(root):
                raise CommandError(f'unable to prepare context: path "{root}" not found')
            extra: dict[str, bytes] = {}
            if a.file == "-":
                name = ".dockerfile." + os.urandom(10).hex()
                extra[name] = stdin.read()
                dockerfile_param = name
            elif a.file:
                path = os.path.abspath(a.file)
                rel = os.path.relpath(path, os.path.abspath(root))
                if rel.startswith(".." + os.sep) or rel == "..":
                    name = ".dockerfile." + os.urandom(10).hex()
                    try:
                        with open(path, "rb") as f:
                            extra[name] = f.read()
                    except OSError as exc:
                        raise CommandError(f"unable to prepare context: unable to "
                                           f"evaluate symlinks in Dockerfile path: "
                                           f"{exc}") from None
                    dockerfile_param = name
                else:
                    if not os.path.exists(path):
                        raise CommandError(f"unable to prepare context: the Dockerfile "
                                           f"({a.file}) does not exist")
                    dockerfile_param = rel.replace(os.sep, "/")
            context_tar(root, body, extra=extra,
                        dockerfile=dockerfile_param or "Dockerfile")
        size = body.tell()
        body.seek(0)
        if not a.quiet:
            ctx.out.write(f"Sending build context to Longboat daemon  {_size(size)}\n")
            ctx.out.flush()
        build_args: dict[str, str | None] = {}
        for item in a.build_arg:
            key, eq, value = item.partition("=")
            build_args[key] = value if eq else os.environ.get(key)
        labels = {}
        for item in a.label:
            key, _, value = item.partition("=")
            labels[key] = value
        params: list[tuple[str, str | None]] = [("t", t) for t in a.tag]
        params += [("dockerfile", dockerfile_param or None), ("q", "1" if a.quiet else None),
                   ("nocache", "1" if a.no_cache else None),
                   ("pull", "1" if a.pull else None),
                   ("rm", "1" if a.rm in ("true", "1") else "0"),
                   ("forcerm", "1" if a.force_rm else None),
                   ("networkmode", a.network), ("target", a.target),
                   ("platform", a.platform),
                   ("buildargs", json.dumps(build_args)),
                   ("labels", json.dumps(labels) if labels else None),
                   ("cachefrom", json.dumps(a.cache_from) if a.cache_from else None)]
        params += [("extrahosts", h) for h in a.add_host]
        params += resources
        if a.compress:
            body = _gzipped(body)
        client = ctx.client()
        response = client._send("POST", "/build", params=params, body=body, timeout=None,
                                headers={"Content-Type": "application/x-tar"})
        image_id = ""

        def aux(event: dict[str, Any]) -> None:
            nonlocal image_id
            value = event.get("aux")
            if isinstance(value, dict) and value.get("ID"):
                image_id = str(value["ID"])

        events = client._events(response)
        if a.quiet:
            for event in events:
                if "aux" in event:
                    aux(event)
        else:
            from longboat.cli.output import is_terminal

            show_all(events, ctx.out, is_terminal(ctx.out), aux)
        if a.quiet and image_id:
            ctx.out.write(image_id + "\n")
        if a.iidfile and image_id:
            with open(a.iidfile, "w") as iidfile:
                iidfile.write(image_id)
    finally:
        body.close()
    return 0
