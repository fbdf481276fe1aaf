"""RUN: the step's command in a build container, made and run by the engine's own
container machinery (create, attach, start, wait), its output streamed to the build,
its writable layer turned into the step's layer.

The runtime creates empty mount points in the container's writable layer (``/etc/hosts``,
``/etc/resolv.conf``, ``/dev``...); Docker keeps those in an "init" layer that never
reaches an image. :func:`prune_mount_points` removes them (and directories copied up
or made only to hold them: ``engine/init_layer.py``) before the layer is made, so a
RUN's layer holds what the command did and nothing else."""

from __future__ import annotations

import asyncio
import contextlib
import os
import posixpath
import socket
import stat
import struct

from longboat.build.errors import BuildError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from longboat.engine.engine import Engine


class RunResult:
    def __init__(self, container_id: str, exit_code: int) -> None:
        self.container_id = container_id
        self.exit_code = exit_code


async def run_container(engine: Engine, body: dict[str, Any],
                        output: Callable[[str], None],
                        created: Callable[[str], None] | None = None) -> RunResult:
    """Create and run a build container; its output goes to ``output`` as it comes.
    The container is left (exited) for the caller to commit and remove; should
    anything fail before it exits, it is removed here."""
    from longboat.engine.attach import Attachment

    containers = engine.containers
    loop = asyncio.get_running_loop()
    cid, _ = await loop.run_in_executor(None, containers.create, body, None)
    if created is not None:
        created(cid)
    ours, theirs = socket.socketpair()
    writer = None
    try:
        t_reader, t_writer = await asyncio.open_unix_connection(sock=theirs)
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        engine.attachments.wait_for_start(cid, Attachment(t_reader, t_writer, False, True,
                                                          True))
        exited = asyncio.ensure_future(containers.wait(cid, "next-exit"))
        try:
            await containers.start(cid)
        except BaseException:
            exited.cancel()
            engine.attachments.pending.pop(cid, None)
            t_writer.close()
            raise
        await _relay(reader, output)
        code = await exited
    except BaseException:
        with contextlib.suppress(Exception):
            await containers.remove(cid, force=True)
        raise
    finally:
        if writer is not None:
            writer.close()
        else:
            ours.close()
    return RunResult(cid, code)


async def _relay(reader: asyncio.StreamReader, output: Callable[[str], None]) -> None:
    """Docker's 8-byte frames (no TTY) to text; partial UTF-8 kept until complete."""
    pending = b""
    while True:
        try:
            header = await reader.readexactly(8)
        except asyncio.IncompleteReadError:
            break
        size = struct.unpack(">I", header[4:8])[0]
        try:
            data = await reader.readexactly(size)
        except asyncio.IncompleteReadError as exc:
            data = exc.partial
        pending += data
        text = pending.decode("utf-8", errors="ignore")
        keep = len(pending) - len(text.encode())
        pending = pending[len(pending) - keep:] if keep > 0 else b""
        if text:
            output(text)
    if pending:
        output(pending.decode("utf-8", errors="replace"))


def prune_mount_points(upper: str, lowers: list[str], mount_points: set[str]) -> None:
    """Remove from ``upper`` the empty mount points the runtime made, and then the
    directories that only held them: :func:`longboat.engine.init_layer.leftovers`, the
    one account of them (``docker commit`` leaves the same paths out of its layer).

    The upper directory is what the build container left: hostile. Each path is removed
    from its directory opened beneath the upper directory with no symlink on the way
    (``RESOLVE_BENEATH | RESOLVE_NO_SYMLINKS``), never following the last component."""
    from longboat.engine.init_layer import leftovers
    from longboat.image.layer_paths import REAL_DIRS_ONLY, rmtree
    from longboat.image.layer_paths import openat2 as beneath

    paths = leftovers(upper, lowers, mount_points)
    top = os.open(upper, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        for path in sorted(paths):
            parent, _, name = path.rpartition("/")
            above = parent
            while above and above not in paths:
                above = posixpath.dirname(above)
            if above:
                continue     # goes with a directory above it
            try:
                pfd = beneath(top, parent, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC,
                              REAL_DIRS_ONLY) if parent else os.dup(top)
            except OSError:
                continue
            try:
                st = os.stat(name, dir_fd=pfd, follow_symlinks=False)
                if stat.S_ISDIR(st.st_mode):
                    rmtree(pfd, name)
                else:
                    os.unlink(name, dir_fd=pfd)
            except FileNotFoundError:
                pass
            finally:
                os.close(pfd)
    finally:
        os.close(top)


def exit_error(command: list[str], code: int) -> BuildError:
    return BuildError(f"The command '{' '.join(command)}' returned a non-zero code: {code}")
