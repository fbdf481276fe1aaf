"""Where containers meet volumes: the engine's calls at a container's create, start,
stop and removal, and the recount of references and users when the engine starts."""

from __future__ import annotations

import asyncio
import threading

from longboat.volume import copyup, mountpoints

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable, Iterable
    from typing import Any

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine
    from longboat.engine.events import Events
    from longboat.volume.store import Volume, VolumeStore


def records(container: Container) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = container.data.get("_MountPoints") or []
    return found


def event_publisher(events: Events) -> Callable[[str, Volume, dict[str, str]], None]:
    """Volume events, published on the event loop whichever thread they come from."""
    try:
        loop: asyncio.AbstractEventLoop | None = asyncio.get_running_loop()
    except RuntimeError:
        loop = None
    loop_thread = threading.get_ident()

    def publish(action: str, volume: Volume, attrs: dict[str, str]) -> None:
        if loop is None or threading.get_ident() == loop_thread:
            events.publish("volume", action, volume, attrs)
        elif not loop.is_closed():
            loop.call_soon_threadsafe(events.publish, "volume", action, volume, attrs)

    return publish


def restore(store: VolumeStore, containers: Iterable[Container]) -> None:
    refs: list[tuple[str, str]] = []
    users: list[tuple[str, str]] = []
    for container in containers:
        for record in records(container):
            if record.get("Type") == "volume":
                refs.append((record["Name"], container.id))
                if container.running:
                    users.append((record["Name"], container.id))
    store.restore(refs, users)


def register(engine: Engine, container_id: str, config: dict[str, Any],
             host_config: dict[str, Any], image_config: dict[str, Any]
             ) -> list[dict[str, Any]]:
    """At create (in a worker thread): the container's mount points. ``config`` gets
    the image's VOLUMEs in its ``Volumes``, as Docker's merge does."""
    merged = mountpoints.anonymous_destinations(config, image_config)
    if merged:
        config["Volumes"] = merged
    return mountpoints.register(engine.volumes, container_id, config, host_config,
                                image_config, engine.containers.get)


def populate(engine: Engine, container: Container) -> None:
    """At create, after the record is written: Docker's copy-up of the image's content
    into each new empty volume (``nocopy`` not given), from the container's root
    filesystem mounted read-only for the while."""
    wanted = [r for r in records(container) if r["Type"] == "volume" and r["CopyData"]]
    if not wanted:
        return
    from longboat.engine.filesystem import ContainerRoot
    from longboat.errors import InvalidArgument

    store = engine.volumes
    holder = f"copy-up-{container.id}"
    with ContainerRoot(engine, container) as root:
        for record in wanted:
            if record["Origin"] == "volumes" and copyup.existing_file(
                    root.fd, record["Destination"]):
                raise InvalidArgument("cannot mount volume over existing file, file exists "
                                      f"{container.rootfs}{record['Destination']}")
            path = store.mount(record["Name"], holder)
            try:
                copyup.copy_up(root.fd, record["Destination"], path)
            finally:
                store.unmount(record["Name"], holder)


def host_config_for_start(engine: Engine, container: Container) -> dict[str, Any]:
    """The HostConfig to make the bundle from, the container's volumes mounted."""
    found = container.data.get("_MountPoints")
    if found is None:       # made before volumes existed: its HostConfig as it is
        return container.host_config
    return mountpoints.host_config_for_start(engine.volumes, container.id,
                                             container.host_config, found)


def stopped(engine: Engine, container: Container) -> None:
    mountpoints.stopped(engine.volumes, container.id, records(container))


def removed(engine: Engine, container: Container, *, remove_anonymous: bool) -> None:
    mountpoints.release(engine.volumes, container.id, records(container),
                        remove_anonymous=remove_anonymous)


def forget(engine: Engine, container_id: str, found: list[dict[str, Any]]) -> None:
    """A create that failed after its mount points were made: their references go,
    and the anonymous volumes made for it."""
    mountpoints.release(engine.volumes, container_id, found, remove_anonymous=True)
