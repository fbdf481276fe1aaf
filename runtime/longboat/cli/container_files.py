"""Container file commands: ``cp`` (both ways, with docker's path rules), ``commit``,
``export`` and ``diff``."""

from __future__ import annotations

import os
import sys

from longboat.cli.containers import _binary_out
from longboat.cli.main import CommandError, Context
from longboat.cli.output import human_size, is_terminal, write_archive
from longboat.client.api import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Iterator
    from typing import Any


# -- cp --------------------------------------------------------------------------------------
def _split_cp_arg(arg: str) -> tuple[str | None, str]:
    """``CONTAINER:PATH`` or a local path (one with a slash before any colon, or
    starting with "." or "/", is local)."""
    if os.path.isabs(arg) or arg.startswith("."):
        return None, arg
    container, colon, path = arg.partition(":")
    if not colon or "/" in container:
        return None, arg
    return container, path


MODE_DIR = 1 << 31


class _ChunkReader:
    """A file-like view of a chunk iterator (for tarfile's stream mode)."""

    def __init__(self, chunks: Iterator[bytes]) -> None:
        self._chunks = chunks
        self._buffer = b""
        self.total = 0

    def read(self, size: int = -1) -> bytes:
        while size < 0 or len(self._buffer) < size:
            chunk = next(self._chunks, b"")
            if not chunk:
                break
            self.total += len(chunk)
            self._buffer += chunk
        if size < 0:
            data, self._buffer = self._buffer, b""
        else:
            data, self._buffer = self._buffer[:size], self._buffer[size:]
        return data


def _rename_root(name: str, old: str, new: str) -> str | None:
    """A member's name with its first component ``old`` replaced by ``new`` (``new``
    "." drops it); None for members outside ``old``."""
    name = name.lstrip("/")
    if name.startswith("./"):
        name = name[2:]
    first, slash, rest = name.partition("/")
    if first != old:
        return None
    if new == ".":
        return rest or "."
    return new + (slash + rest if rest else "")


def cp(ctx: Context) -> int:
    a = ctx.args
    src_container, src_path = _split_cp_arg(a.source)
    dst_container, dst_path = _split_cp_arg(a.destination)
    if src_container and dst_container:
        raise CommandError("copying between containers is not supported")
    if not src_container and not dst_container:
        raise CommandError("must specify at least one container source")
    if src_container:
        if not src_path:
            raise CommandError("Error: filepath can not be empty")
        return _copy_from(ctx, src_container, src_path, dst_path)
    assert dst_container is not None
    if not dst_path:
        raise CommandError("Error: filepath can not be empty")
    return _copy_to(ctx, src_path, dst_container, dst_path)


def _copy_from(ctx: Context, container: str, src: str, dst: str) -> int:
    import tarfile

    client = ctx.client()
    if not os.path.isabs(src):
        src = "/" + src
    chunks, stat = client.get_archive(container, src)
    if dst == "-":
        out = _binary_out(ctx)
        for chunk in chunks:
            out.write(chunk)
        out.flush()
        return 0
    root = str(stat.get("name") or os.path.basename(src.rstrip("/")) or "/")
    src_is_dir = bool(int(stat.get("mode") or 0) & MODE_DIR)
    contents_only = src.endswith("/.")
    if os.path.isdir(dst):
        target_dir, new_root = dst, ("." if src_is_dir and contents_only else root)
    else:
        if dst.endswith("/") or dst.endswith("/."):
            raise CommandError(f'Error response from daemon: destination "{dst}" must be a '
                               "directory")
        if src_is_dir and os.path.lexists(dst):
            raise CommandError(f'cannot overwrite non-directory "{dst}" with directory '
                               f'"{src}"')
        parent = os.path.dirname(os.path.abspath(dst))
        if not os.path.isdir(parent):
            raise CommandError(f'lstat {parent}: no such file or directory')
        target_dir, new_root = parent, os.path.basename(os.path.abspath(dst))
    reader = _ChunkReader(chunks)
    with tarfile.open(fileobj=reader, mode="r|") as tar:  # type: ignore[call-overload]
        for member in tar:
            renamed = _rename_root(member.name, root, new_root)
            if renamed is None:
                continue
            member.name = renamed
            if renamed == ".":
                continue
            tar.extract(member, target_dir, filter="tar")
    if not ctx.args.quiet:
        ctx.err.write(f"Successfully copied {human_size(reader.total)} to {dst}\n")
    return 0


def _copy_to(ctx: Context, src: str, container: str, dst: str) -> int:
    import tarfile
    import tempfile

    client = ctx.client()
    if not os.path.isabs(dst):
        dst = "/" + dst
    if src == "-":
        client.put_archive(container, dst, sys.stdin.buffer)
        return 0
    if not os.path.lexists(src):
        raise CommandError(f"lstat {os.path.abspath(src)}: no such file or directory")
    src_is_dir = os.path.isdir(src)
    try:
        dst_stat: dict[str, Any] | None = client.archive_stat(container, dst)
    except APIError as exc:
        if not exc.not_found:
            raise
        dst_stat = None
    base = os.path.basename(os.path.abspath(src))
    if dst_stat is not None and int(dst_stat.get("mode") or 0) & MODE_DIR:
        target_dir = dst
        name = "." if src_is_dir and src.endswith("/.") else base
    else:
        if dst_stat is not None and src_is_dir:
            raise CommandError(f'Error response from daemon: cannot overwrite non-directory '
                               f'"{dst}" with directory')
        if dst.endswith("/"):
            raise CommandError(f'Error response from daemon: destination "{container}:'
                               f'{dst}" must be a directory')
        target_dir = os.path.dirname(dst.rstrip("/")) or "/"
        name = os.path.basename(dst.rstrip("/"))
    with tempfile.TemporaryFile() as spool:
        with tarfile.open(fileobj=spool, mode="w", format=tarfile.PAX_FORMAT) as tar:
            if name == ".":
                for entry in sorted(os.listdir(src)):
                    tar.add(os.path.join(src, entry), arcname=entry)
            else:
                tar.add(src, arcname=name)
        size = spool.tell()
        spool.seek(0)
        client.put_archive(container, target_dir, spool, copy_uid_gid=ctx.args.archive)
    if not ctx.args.quiet:
        ctx.err.write(f"Successfully copied {human_size(size)} to {container}:{dst}\n")
    return 0


# -- commit, export, diff --------------------------------------------------------------------
def commit(ctx: Context) -> int:
    a = ctx.args
    repository = tag = None
    if a.repository:
        from longboat.cli.images import parse_reference

        ref = parse_reference(a.repository)
        if ref.digest is not None:
            raise CommandError("refusing to create a tag with a digest reference")
        repository, tag = ref.name, ref.tag
    result = ctx.client().commit(a.container, repository=repository, tag=tag,
                                 message=a.message, author=a.author,
                                 pause=a.pause == "true", changes=a.change)
    ctx.out.write(f"{result.get('Id', '')}\n")
    return 0


def export(ctx: Context) -> int:
    a = ctx.args
    if not a.output and is_terminal(ctx.out):
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    write_archive(_binary_out(ctx), ctx.client().export(a.container), a.output)
    return 0


def diff(ctx: Context) -> int:
    for change in ctx.client().changes(ctx.args.container):
        kind = {0: "C", 1: "A", 2: "D"}.get(int(change.get("Kind", 0)), "?")
        ctx.out.write(f"{kind} {change.get('Path', '')}\n")
    return 0
