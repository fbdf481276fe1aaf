"""Image commands: ``images``, ``inspect``, ``history``, ``tag``, ``rmi``, ``image prune``,
``save``, ``load``, ``import``, ``pull``, ``push`` (and their ``image ...`` forms), with
docker's output."""

from __future__ import annotations

import os
import sys

from longboat.cli.main import CommandError, Context
from longboat.cli.output import (
    go_time_string,
    human_size,
    indented_json,
    is_terminal,
    rfc3339,
    since,
    truncate_id,
    write_archive,
)
from longboat.cli.progress import show_all
from longboat.cli.template import Context as Row
from longboat.cli.template import Template, render
from longboat.client.api import APIError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import IO, Any

    from longboat.image.reference import Reference

IMAGE_HEADERS = {"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG",
                 "Digest": "DIGEST", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                 "Size": "SIZE", "Containers": "CONTAINERS", "VirtualSize": "VIRTUAL SIZE",
                 "SharedSize": "SHARED SIZE", "UniqueSize": "UNIQUE SIZE"}
IMAGE_TABLE = "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
IMAGE_TABLE_DIGESTS = ("table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t"
                       "{{.CreatedSince}}\t{{.Size}}")
HISTORY_HEADERS = {"ID": "IMAGE", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT",
                   "CreatedBy": "CREATED BY", "Size": "SIZE", "Comment": "COMMENT"}
HISTORY_TABLE = "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
HISTORY_TABLE_RAW = "table {{.ID}}\t{{.CreatedAt}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}"
QUIET = "{{.ID}}"


# -- helpers shared by the commands ------------------------------------------------------------
def parse_filters(items: list[str]) -> dict[str, list[str]]:
    filters: dict[str, list[str]] = {}
    for item in items:
        key, eq, value = item.partition("=")
        if not eq or not key.strip():
            raise CommandError(f"bad format of filter (expected name=value): {item}")
        filters.setdefault(key.strip().lower(), []).append(value)
    return filters


def parse_reference(text: str, what: str = "repository/tag") -> Reference:
    from longboat.errors import LongboatError
    from longboat.image import reference

    try:
        return reference.parse(text)
    except LongboatError as exc:
        raise CommandError(f'Error parsing reference: "{text}" is not a valid {what}: '
                           f"{exc.message}") from None


def name_only(text: str) -> bool:
    """No tag and no digest given (``busybox``, ``host:5000/app``)."""
    return "@" not in text and ":" not in text.rsplit("/", 1)[-1]


def registry_auth(ctx: Context, domain: str) -> dict[str, str]:
    """The credentials ``longboat login`` saved for ``domain``, as X-Registry-Auth."""
    from longboat.errors import LongboatError
    from longboat.image.registry_auth import AuthStore

    try:
        saved = AuthStore(os.path.join(ctx.config_dir, "config.json")).get(domain)
    except LongboatError as exc:
        raise CommandError(exc.message) from None
    if saved is None:
        return {}
    return {"username": saved[0], "password": saved[1], "serveraddress": domain}


def _split_tag(name: str) -> tuple[str, str]:
    repo, colon, tag = name.rpartition(":")
    if not colon or "/" in tag:
        return name, ""
    return repo, tag


# -- images ----------------------------------------------------------------------------------
def image_rows(images: list[dict[str, Any]], *, trunc: bool, digests: bool) -> list[Row]:
    """docker's rows for ``images``: one per repository and tag (a dangling image is one
    ``<none>`` row)."""
    rows: list[Row] = []
    for image in images:
        shared = int(image.get("SharedSize", -1) if image.get("SharedSize") is not None
                     else -1)
        size = int(image.get("Size") or 0)
        containers = int(image.get("Containers", -1) if image.get("Containers") is not None
                         else -1)
        created = float(image.get("Created") or 0)
        image_id = str(image.get("Id") or "")

        def row(repo: str, tag: str, digest: str, image: dict[str, Any] = image,
                shared: int = shared, size: int = size, containers: int = containers,
                created: float = created, image_id: str = image_id) -> Row:
            return Row("*formatter.imageContext", {
                "Containers": "N/A" if containers == -1 else str(containers),
                "CreatedAt": go_time_string(created),
                "CreatedSince": since(created),
                "Digest": digest,
                "ID": truncate_id(image_id) if trunc else image_id,
                "Repository": repo,
                "SharedSize": "N/A" if shared == -1 else human_size(shared),
                "Size": human_size(size, 3),
                "Tag": tag,
                "UniqueSize": "N/A" if shared == -1 else human_size(size - shared),
                "VirtualSize": human_size(int(image.get("VirtualSize") or size)),
            })

        tags: dict[str, list[str]] = {}
        for name in image.get("RepoTags") or []:
            if name == "<none>:<none>":
                continue
            repo, tag = _split_tag(name)
            if tag:
                tags.setdefault(repo, []).append(tag)
        by_digest: dict[str, list[str]] = {}
        for name in image.get("RepoDigests") or []:
            repo, at, digest = name.partition("@")
            if at and name != "<none>@<none>":
                by_digest.setdefault(repo, []).append(digest)
        if not tags and not by_digest:
            rows.append(row("<none>", "<none>", "<none>"))
            continue
        for repo, repo_tags in tags.items():
            repo_digests = by_digest.pop(repo, []) if digests else []
            by_digest.pop(repo, None)
            for tag in repo_tags:
                for digest in repo_digests or ["<none>"]:
                    rows.append(row(repo, tag, digest))
        for repo, repo_digests in by_digest.items():
            for digest in repo_digests if digests else [""]:
                rows.append(row(repo, "<none>", digest))
    return rows


def ls(ctx: Context) -> int:
    a = ctx.args
    images = ctx.client().images(all=a.all, filters=parse_filters(a.filter),
                                 name=a.repository)
    fmt = a.format or ""
    if fmt in ("", "table"):
        fmt = QUIET if a.quiet else IMAGE_TABLE_DIGESTS if a.digests else IMAGE_TABLE
    elif fmt == "json":
        fmt = "{{json .}}"
    elif a.digests and fmt.startswith("table") and "{{.Digest}}" not in fmt:
        fmt = fmt.replace("{{.Tag}}", "{{.Tag}}\t{{.Digest}}", 1)
    rows = image_rows(images, trunc=not a.no_trunc, digests=a.digests)
    ctx.out.write(render(fmt, rows, IMAGE_HEADERS, "*formatter.imageContext"))
    return 0


# -- inspect ---------------------------------------------------------------------------------
def _inspect(ctx: Context, names: list[str], fmt: str | None, missing: str) -> int:
    client = ctx.client()
    found: list[dict[str, Any]] = []
    errors: list[str] = []
    for name in names:
        try:
            found.append(client.inspect_image(name))
        except APIError as exc:
            if not exc.not_found:
                raise
            errors.append(missing.format(name=name, message=exc.message))
    if fmt and fmt != "json":
        template = Template(fmt.replace("\\t", "\t").replace("\\n", "\n"))
        # like docker's TemplateInspector: what ran is flushed, an empty line if nothing
        from longboat.cli.template import TemplateError

        text = ""
        try:
            for item in found:
                text += template.execute(item) + "\n"
        except TemplateError:
            ctx.out.write(text or "\n")
            raise
        ctx.out.write(text or "\n")
    else:
        ctx.out.write(indented_json(found) + "\n")
    if errors:
        raise CommandError("\n".join(errors))
    return 0


def inspect(ctx: Context) -> int:
    return _inspect(ctx, ctx.args.names, ctx.args.format,
                    "Error response from daemon: {message}")


def inspect_any(ctx: Context) -> int:
    """Top-level ``inspect``: images are the only objects so far."""
    return _inspect(ctx, ctx.args.names, ctx.args.format, "Error: No such object: {name}")


# -- history ---------------------------------------------------------------------------------
def history(ctx: Context) -> int:
    a = ctx.args
    human = a.human in ("true", "1")
    trunc = not a.no_trunc
    entries = ctx.client().image_history(a.name)
    rows = []
    for entry in entries:
        created = float(entry.get("Created") or 0)
        image_id = str(entry.get("Id") or "")
        created_by = str(entry.get("CreatedBy") or "").replace("\t", " ")
        if trunc and len(created_by) > 45:
            created_by = created_by[:44] + "…"
        size = int(entry.get("Size") or 0)
        rows.append(Row("*formatter.historyContext", {
            "ID": truncate_id(image_id) if trunc and image_id != "<missing>" else image_id,
            "CreatedSince": since(created) if human else rfc3339(created),
            "CreatedAt": rfc3339(created),
            "CreatedBy": created_by,
            "Size": human_size(size, 3) if human else str(size),
            "Comment": str(entry.get("Comment") or ""),
        }))
    fmt = a.format or ""
    if fmt in ("", "table"):
        fmt = QUIET if a.quiet else HISTORY_TABLE if human else HISTORY_TABLE_RAW
    elif fmt == "json":
        fmt = "{{json .}}"
    ctx.out.write(render(fmt, rows, HISTORY_HEADERS, "*formatter.historyContext"))
    return 0


# -- tag, rmi, prune -------------------------------------------------------------------------
def tag(ctx: Context) -> int:
    target = ctx.args.target
    ref = parse_reference(target)
    if ref.digest is not None:
        raise CommandError("refusing to create a tag with a digest reference")
    ctx.client().tag(ctx.args.source, ref.name, ref.tag or "latest")
    return 0


def rm(ctx: Context) -> int:
    a = ctx.args
    client = ctx.client()
    errors: list[str] = []
    fatal = False
    for name in a.names:
        try:
            report = client.remove_image(name, force=a.force, noprune=a.no_prune)
        except APIError as exc:
            fatal = fatal or not exc.not_found
            errors.append(f"Error response from daemon: {exc.message}")
            continue
        for item in report:
            if item.get("Deleted"):
                ctx.out.write(f"Deleted: {item['Deleted']}\n")
            else:
                ctx.out.write(f"Untagged: {item.get('Untagged', '')}\n")
        ctx.out.flush()
    if errors:
        if not a.force or fatal:
            raise CommandError("\n".join(errors))
        ctx.err.write("\n".join(errors) + "\n")
    return 0


def confirm(ctx: Context, message: str) -> bool:
    ctx.out.write(f"{message} [y/N] ")
    ctx.out.flush()
    answer = sys.stdin.readline()
    return answer.strip().lower() in ("y", "yes")


PRUNE_DANGLING = "WARNING! This will remove all dangling images."
PRUNE_ALL = ("WARNING! This will remove all images without at least one container "
             "associated to them.")


def prune_report(ctx: Context, all_images: bool, filters: dict[str, list[str]]
                 ) -> tuple[int, str]:
    """(bytes reclaimed, docker's "Deleted Images:" text) of an image prune."""
    wanted = dict(filters)
    wanted["dangling"] = ["false" if all_images else "true"]
    report = ctx.client().prune_images(filters=wanted)
    lines = []
    for item in report.get("ImagesDeleted") or []:
        if item.get("Untagged"):
            lines.append(f"untagged: {item['Untagged']}")
        if item.get("Deleted"):
            lines.append(f"deleted: {item['Deleted']}")
    text = "Deleted Images:\n" + "".join(line + "\n" for line in lines) if lines else ""
    return int(report.get("SpaceReclaimed") or 0), text


def prune(ctx: Context) -> int:
    a = ctx.args
    filters = parse_filters(a.filter)
    if not a.force and not confirm(ctx, (PRUNE_ALL if a.all else PRUNE_DANGLING)
                                   + "\nAre you sure you want to continue?"):
        return 0
    freed, text = prune_report(ctx, a.all, filters)
    if text:
        ctx.out.write(text + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0


# -- save, load, import ----------------------------------------------------------------------
def save(ctx: Context) -> int:
    a = ctx.args
    if not a.output and is_terminal(ctx.out):
        raise CommandError("cowardly refusing to save to a terminal. Use the -o flag or "
                           "redirect")
    if a.output:
        import stat

        try:
            if stat.S_ISCHR(os.stat(a.output).st_mode):
                raise CommandError("failed to save image: cannot write to a character "
                                   "device file")
        except FileNotFoundError:
            pass
        directory = os.path.dirname(os.path.abspath(a.output))
        if not os.path.isdir(directory):
            raise CommandError(f'failed to save image: invalid output path: directory '
                               f'"{directory}" does not exist')
    write_archive(ctx.out.buffer, ctx.client().save(a.names), a.output)
    return 0


def _open_input(path: str) -> IO[bytes]:
    try:
        return open(path, "rb")
    except OSError as exc:
        raise CommandError(f"open {path}: {exc.strerror.lower() if exc.strerror else exc}"
                           ) from None


def load(ctx: Context) -> int:
    a = ctx.args
    if a.input:
        source = _open_input(a.input)
    else:
        if is_terminal(sys.stdin):
            raise CommandError("requested load from stdin, but stdin is empty")
        source = sys.stdin.buffer
    terminal = is_terminal(ctx.out)
    with source:
        events = ctx.client().load(source, quiet=a.quiet or not terminal)
        show_all(events, ctx.out, terminal)
    return 0


def import_(ctx: Context) -> int:
    a = ctx.args
    if a.repository:
        parse_reference(a.repository)
    data: IO[bytes] | None = None
    src = None
    if a.source == "-":
        data = sys.stdin.buffer
    elif a.source.startswith(("http://", "https://")):
        src = a.source
    else:
        data = _open_input(a.source)
    try:
        events = ctx.client().import_image(data, src=src, repository=a.repository,
                                           message=a.message, changes=a.change,
                                           platform=a.platform)
        show_all(events, ctx.out, is_terminal(ctx.out))
    finally:
        if data is not None and data is not sys.stdin.buffer:
            data.close()
    return 0



def bootstrap(ctx: Context) -> int:
    """``longboat image bootstrap busybox[:TAG] | debian[:SUITE]``: a base image built by
    the engine from its host's packages, no registry needed."""
    events = ctx.client().bootstrap_image(ctx.args.name)
    show_all(events, ctx.out, is_terminal(ctx.out))
    return 0


# -- pull, push ------------------------------------------------------------------------------
def pull(ctx: Context) -> int:
    a = ctx.args
    if a.all_tags:
        raise CommandError("longboatd does not list a repository's tags yet: pull a tag")
    ref = parse_reference(a.name)
    if name_only(a.name) and not a.quiet:
        ctx.out.write("Using default tag: latest\n")
    events = ctx.client().pull(ref.name, ref.digest or ref.tag or "latest",
                               auth=registry_auth(ctx, ref.domain), platform=a.platform)
    if a.quiet:
        for _ in events:
            pass
    else:
        show_all(events, ctx.out, is_terminal(ctx.out))
    ctx.out.write(f"{ref}\n")
    return 0


def push(ctx: Context) -> int:
    a = ctx.args
    if a.all_tags:
        raise CommandError("push --all-tags is not supported yet: push a tag")
    ref = parse_reference(a.name)
    if ref.digest is not None:
        raise CommandError("cannot push a digest reference")
    if name_only(a.name) and not a.quiet:
        ctx.out.write("Using default tag: latest\n")
    events = ctx.client().push(ref.familiar_name, ref.tag or "latest",
                               auth=registry_auth(ctx, ref.domain))
    if a.quiet:
        for _ in events:
            pass
        ctx.out.write(f"{ref}\n")
    else:
        show_all(events, ctx.out, is_terminal(ctx.out))
    return 0
