"""What builds of an engine that died mid-build (``kill -9``, a crash, a power cut)
left behind, removed when the engine starts again, before it serves anything: no build
of its own is live then.

A build's private directory names its engine (``longboat-build-<tag>-<random>``, the
tag a hash of the engine's ``DATA_ROOT/tmp``), so an engine never touches another's
build in ``/dev/shm``, which every engine on the host shares (directories named the
old way, without a tag, are left alone: their owner cannot be told). The directory is
also the build's journal: ``containers/<id>`` for each RUN container it created. At
start, for each leftover directory: its RUN containers are removed (killed first when
the monitor kept them running), every mount below it is detached (deepest first:
removing through a mount would delete a snapshot's or the host's files), then it is
removed without following any symlink (:func:`longboat.build.context.remove_tree`).
Last, every ``build-*`` snapshot (the writable and read-only snapshots of COPY/ADD and
``COPY --from`` steps) goes: only builds make them, and none is running."""

from __future__ import annotations

import logging
import os

from longboat.build.context import SHM, owner_tag, remove_tree
from longboat.linux import libc

TYPE_CHECKING = False
if TYPE_CHECKING:
    from longboat.engine.engine import Engine

log = logging.getLogger("longboat.build")
PREFIX = "longboat-build-"
SNAPSHOT_PREFIX = "build-"


def leftover_dirs(tmpdir: str, shm: str = SHM) -> list[str]:
    """This engine's build directories: every one in its tmpdir, and those in SHM that
    carry its tag."""
    tagged = f"{PREFIX}{owner_tag(tmpdir)}-"
    found = []
    for where, prefix in ((tmpdir, PREFIX), (shm, tagged)):
        try:
            names = os.listdir(where)
        except OSError:
            continue
        found += [os.path.join(where, n) for n in sorted(names) if n.startswith(prefix)]
    return found


def journal_containers(directory: str) -> list[str]:
    try:
        return sorted(os.listdir(os.path.join(directory, "containers")))
    except OSError:
        return []


def detach_and_remove(directory: str) -> bool:
    """Detach every mount at or below ``directory``, then remove it; False (and it
    stays) when a mount cannot be detached."""
    from longboat.volume.local import mounts_under

    for point in sorted(mounts_under(directory), reverse=True):
        try:
            libc.umount2(point, libc.MNT_DETACH)
        except OSError as exc:
            log.warning("build leftovers: detaching %s: %s", point, exc)
    if mounts_under(directory):
        log.warning("build leftovers: %s is still mounted: left in place", directory)
        return False
    remove_tree(directory)
    return True


def remove_snapshots(engine: Engine) -> None:
    for key in engine.snapshots.keys():  # noqa: SIM118 (a method, not a dict)
        if key.startswith(SNAPSHOT_PREFIX):
            try:
                engine.snapshots.remove(key)
            except Exception as exc:   # one bad snapshot must not stop the engine's start
                log.warning("build leftovers: snapshot %s: %s", key, exc)


async def clean(engine: Engine) -> None:
    """At engine start (the monitor reachable, containers restored)."""
    import asyncio

    loop = asyncio.get_running_loop()
    dirs = await loop.run_in_executor(None, leftover_dirs, engine.tmpdir())
    for directory in dirs:
        for cid in journal_containers(directory):
            if cid not in engine.containers.by_id:
                continue
            try:
                await engine.containers.remove(cid, force=True)
            except Exception as exc:
                log.warning("build leftovers: container %s: %s", cid[:12], exc)
        await loop.run_in_executor(None, detach_and_remove, directory)
        log.info("build leftovers: removed %s", directory)
    await loop.run_in_executor(None, remove_snapshots, engine)
