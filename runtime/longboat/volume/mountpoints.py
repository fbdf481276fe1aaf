"""A container's mount points, made at create time as moby 20.10's
``registerMountPoints`` makes them, in its order:

1. ``HostConfig.VolumesFrom`` (``container[:ro|rw]``): the other container's mount
   points, read-only when asked (no copy of image content);
2. ``HostConfig.Binds``: ``/host:/dst[:mode]`` binds and ``name:/dst[:mode]`` named
   volumes (created on demand), replacing a volumes-from mount at the same place;
3. ``HostConfig.Mounts`` (``type`` bind, volume or tmpfs), the same way;
4. the anonymous volumes of ``Config.Volumes`` and of the image's VOLUMEs where nothing
   is mounted yet (random 64-hex names; no label, as in 20.10).

Each mount point is a JSON record in the container's record (``_MountPoints``): Docker's
``Mounts`` fields (Type, Name, Source, Destination, Driver, Mode, RW, Propagation) and
ours: ``Origin`` (binds, mounts, volumes-from, volumes), ``Spec`` (the Binds string or
the Mounts object given), ``Named`` (the user named the volume: ``rm -v`` keeps it) and
``CopyData`` (copy the image's content into an empty volume).
"""

from __future__ import annotations

import json

from longboat.engine.bundle_fields import Fields
from longboat.engine.bundle_mounts import _PROPAGATION, _check_destination, _valid_mode
from longboat.engine.bundle_mounts import parse_mount as parse_bind_or_tmpfs_mount
from longboat.errors import InvalidArgument

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any

    from longboat.volume.store import VolumeStore

#: What inspect shows of a mount point, in Docker's order.
PUBLIC = ("Type", "Name", "Source", "Destination", "Driver", "Mode", "RW", "Propagation")
_OMIT_EMPTY = ("Type", "Name", "Driver")


def _invalid_spec(raw: str) -> str:
    return f"invalid volume specification: '{raw}'"


def _mount_error(kind: str, problem: str) -> InvalidArgument:
    return InvalidArgument(f"invalid mount config for type {json.dumps(kind)}: {problem}")


def public(record: dict[str, Any]) -> dict[str, Any]:
    """Docker's ``MountPoint`` (``Type``, ``Name`` and ``Driver`` left out when empty)."""
    return {k: record.get(k, "") for k in PUBLIC
            if not (k in _OMIT_EMPTY and not record.get(k))}


def parse_bind(raw: str) -> dict[str, Any]:
    """One ``HostConfig.Binds`` entry (moby's ``ParseMountRaw``): an absolute source is a
    bind, any other a volume name; a lone destination is an anonymous volume."""
    if not isinstance(raw, str):
        raise InvalidArgument("HostConfig.Binds: each entry must be a string")
    parts = raw.split(":")
    if len(parts) > 3 or not parts[0]:
        raise InvalidArgument(_invalid_spec(raw))
    source, target, mode = "", parts[0], ""
    if len(parts) == 2:
        if _valid_mode(parts[1]):
            raise InvalidArgument(_invalid_spec(raw))
        source, target = parts
    elif len(parts) == 3:
        source, target, mode = parts
    if not _valid_mode(mode):
        raise InvalidArgument(f"invalid mode: {mode}")
    kind = "bind" if source.startswith("/") else "volume"
    words = mode.split(",") if mode else []
    try:
        dest = _check_destination(target)
    except ValueError as e:
        raise InvalidArgument(f"{_invalid_spec(raw)}: {_mount_error(kind, str(e)).message}"
                              ) from None
    if kind == "bind":
        if "nocopy" in words:
            problem = _mount_error(kind, "field VolumeOptions must not be specified")
            raise InvalidArgument(f"{_invalid_spec(raw)}: {problem.message}")
        propagation = next((w for w in words if w in _PROPAGATION), "rprivate")
        return {"Type": "bind", "Name": "", "Source": _clean(source), "Destination": dest,
                "Driver": "", "Mode": mode, "RW": "ro" not in words,
                "Propagation": propagation, "Origin": "binds", "Spec": raw, "Named": True,
                "CopyData": False}
    return {"Type": "volume", "Name": source, "Source": "", "Destination": dest,
            "Driver": "local", "Mode": mode or "z", "RW": "ro" not in words,
            "Propagation": "", "Origin": "binds", "Spec": raw, "Named": bool(source),
            "CopyData": "nocopy" not in words}


def _clean(path: str) -> str:
    import posixpath

    return "/" + posixpath.normpath(path).lstrip("/")


def parse_mount(item: Any, index: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """One ``HostConfig.Mounts`` entry: (its mount point, the volume options to create
    a volume with: ``Labels`` and ``DriverConfig``)."""
    fields = Fields(item, f"HostConfig.Mounts[{index}]")
    kind = fields.string("Type")
    if kind != "volume":
        point = parse_bind_or_tmpfs_mount(fields)
        record: dict[str, Any] = {
            "Type": kind, "Name": "", "Source": point.source, "Destination":
            point.destination, "Driver": "", "Mode": "", "RW": point.writable,
            "Propagation": point.propagation if kind == "bind" else "", "Origin": "mounts",
            "Spec": dict(item), "Named": True, "CopyData": False}
        return record, {}
    target = fields.string("Target")
    source = fields.string("Source")
    read_only = fields.flag("ReadOnly")
    fields.string("Consistency")
    try:
        dest = _check_destination(target)
    except ValueError as e:
        raise _mount_error(kind, str(e)) from None
    for extra in ("BindOptions", "TmpfsOptions"):
        if fields.given(extra):
            raise _mount_error(kind, f"field {extra} must not be specified")
    options = fields.obj("VolumeOptions")
    no_copy = options.flag("NoCopy")
    labels = options.string_map("Labels")
    driver_config = options.obj("DriverConfig")
    driver = driver_config.string("Name")
    driver_options = driver_config.string_map("Options")
    record = {"Type": "volume", "Name": source, "Source": "", "Destination": dest,
              "Driver": driver or "local", "Mode": "z", "RW": not read_only,
              "Propagation": "", "Origin": "mounts", "Spec": dict(item),
              "Named": bool(source), "CopyData": not no_copy}
    return record, {"driver": driver or None, "labels": labels or None,
                    "options": driver_options or None}


def parse_volumes_from(spec: Any) -> tuple[str, bool]:
    """``container[:mode]`` -> (container, writable) (moby's ``ParseVolumesFrom``)."""
    if not isinstance(spec, str):
        raise InvalidArgument("HostConfig.VolumesFrom: each entry must be a string")
    if not spec:
        raise InvalidArgument("volumes-from specification cannot be an empty string")
    ref, _, mode = spec.partition(":")
    if not mode:
        return ref, True
    words = mode.split(",")
    if not _valid_mode(mode) or any(w in _PROPAGATION or w == "nocopy" for w in words):
        raise InvalidArgument(f"invalid mode: {mode}")
    return ref, "ro" not in words


def anonymous_destinations(config: dict[str, Any], image_config: dict[str, Any]
                           ) -> dict[str, Any]:
    """``Config.Volumes`` merged with the image's (moby's ``merge``)."""
    merged: dict[str, Any] = {}
    for source, what in ((image_config.get("Volumes"), "Image.Config.Volumes"),
                         (config.get("Volumes"), "Config.Volumes")):
        if source is None:
            continue
        if not isinstance(source, dict):
            raise InvalidArgument(f"{what} must be an object of paths")
        merged.update({k: {} for k in source})
    return merged


def register(store: VolumeStore, container_id: str, config: dict[str, Any],
             host_config: dict[str, Any], image_config: dict[str, Any],
             lookup: Callable[[str], Any]) -> list[dict[str, Any]]:
    """The container's mount points, its volumes created (named ones on demand,
    anonymous ones new) and referenced. ``lookup`` finds a container by name or id
    (for VolumesFrom). On an error the anonymous volumes made here are removed again."""
    table: dict[str, dict[str, Any]] = {}
    explicit: set[str] = set()      # destinations of Binds and Mounts
    tmpfs = host_config.get("Tmpfs") or {}
    if not isinstance(tmpfs, dict):
        raise InvalidArgument("HostConfig.Tmpfs must be an object")
    tmpfs_dests = {_clean(t) for t in tmpfs if isinstance(t, str) and t.startswith("/")}
    made: list[str] = []

    def volume_for(record: dict[str, Any], create: dict[str, Any]) -> None:
        volume = store.create(record["Name"] or None, driver=create.get("driver"),
                              options=create.get("options"), labels=create.get("labels"))
        if not record["Name"]:
            made.append(volume.name)
        record["Name"], record["Source"] = volume.name, volume.mountpoint
        record["Driver"] = volume.driver

    def place(record: dict[str, Any]) -> None:
        dest = record["Destination"]
        if dest in explicit or dest in tmpfs_dests:
            raise InvalidArgument(f"Duplicate mount point: {dest}")
        explicit.add(dest)
        table[dest] = record

    try:
        for spec in _list(host_config, "VolumesFrom"):
            ref, writable = parse_volumes_from(spec)
            source = lookup(ref)
            for other in source.data.get("_MountPoints") or []:
                copy = dict(other, RW=bool(other["RW"]) and writable, CopyData=False,
                            Origin="volumes-from", Mode="")
                if copy["Type"] == "volume":
                    store.get(copy["Name"])             # still there
                table[copy["Destination"]] = copy
        for raw in _list(host_config, "Binds"):
            record = parse_bind(raw)
            if record["Type"] == "volume":
                volume_for(record, {})
            place(record)
        for index, item in enumerate(_list(host_config, "Mounts")):
            record, create = parse_mount(item, index)
            if record["Type"] == "volume":
                volume_for(record, create)
            place(record)
        for path in sorted(anonymous_destinations(config, image_config)):
            try:
                dest = _check_destination(path)
            except ValueError as e:
                raise InvalidArgument(f"Config.Volumes: {e}") from None
            if dest in table:
                continue
            record = {"Type": "volume", "Name": "", "Source": "", "Destination": dest,
                      "Driver": "local", "Mode": "", "RW": True, "Propagation": "",
                      "Origin": "volumes", "Spec": path, "Named": False, "CopyData": True}
            volume_for(record, {})
            table[dest] = record
        for record in table.values():
            if record["Type"] == "volume":
                store.reference(record["Name"], container_id)
    except BaseException:
        release(store, container_id, list(table.values()), remove_anonymous=False)
        for name in made:
            store.release(name, container_id)
            try:
                store.remove(name)
            except Exception:
                pass    # best effort: the error that matters is the one raised
        raise
    return list(table.values())


def _list(host_config: dict[str, Any], field: str) -> list[Any]:
    value = host_config.get(field)
    if value is None:
        return []
    if not isinstance(value, list):
        raise InvalidArgument(f"HostConfig.{field} must be a list")
    return value


def release(store: VolumeStore, container_id: str, records: list[dict[str, Any]], *,
            remove_anonymous: bool) -> None:
    """The container is gone: its references go; with ``remove_anonymous`` (``rm -v``,
    ``--rm``) so do its anonymous volumes that no other container uses."""
    from longboat.errors import Conflict, NotFound

    for record in records:
        if record.get("Type") != "volume":
            continue
        store.unmount(record["Name"], container_id)
        store.release(record["Name"], container_id)
        if remove_anonymous and not record.get("Named"):
            try:
                store.remove(record["Name"])
            except (Conflict, NotFound):
                pass        # another container uses it, or it is gone already


def host_config_for_start(store: VolumeStore, container_id: str,
                          host_config: dict[str, Any], records: list[dict[str, Any]]
                          ) -> dict[str, Any]:
    """The HostConfig the bundle is made from: every volume mounted (for its first
    user) and given as a bind of its directory, VolumesFrom resolved, Binds' missing
    host directories made (as Docker does). Only binds and tmpfs mounts are left."""
    import os

    binds: list[str] = []
    mounts: list[dict[str, Any]] = []
    mounted: list[dict[str, Any]] = []
    try:
        for record in records:
            dest, writable = record["Destination"], bool(record["RW"])
            if record["Type"] == "volume":
                path = store.mount(record["Name"], container_id)
                mounted.append(record)
                store.publish("mount", store.get(record["Name"]), {
                    "container": container_id, "destination": dest, "driver":
                    record.get("Driver") or "local", "propagation": "",
                    "read/write": str(writable).lower()})
                words = [w for w in (record["Mode"] or "").split(",")
                         if w and w != "nocopy"] if record["Origin"] == "binds" else []
                if not writable and "ro" not in words:
                    words.append("ro")
                binds.append(":".join([path, dest, *([",".join(words)] if words else [])]))
            elif record["Type"] == "bind" and record["Origin"] == "binds":
                if not os.path.exists(record["Source"]):
                    os.makedirs(record["Source"], 0o755, exist_ok=True)
                binds.append(str(record["Spec"]))
            elif record["Type"] == "bind":
                spec = {"Type": "bind", "Source": record["Source"], "Target": dest,
                        "ReadOnly": not writable}
                given = dict(record["Spec"]).get("BindOptions") \
                    if isinstance(record["Spec"], dict) else None
                if given:
                    spec["BindOptions"] = given
                elif record.get("Propagation") not in ("", "rprivate", None):
                    spec["BindOptions"] = {"Propagation": record["Propagation"]}
                mounts.append(spec)
            else:       # tmpfs, from Mounts or another container's
                mounts.append(dict(record["Spec"], ReadOnly=not writable))
    except BaseException:
        for record in mounted:
            store.unmount(record["Name"], container_id)
        raise
    resolved = dict(host_config)
    resolved.update(Binds=binds or None, Mounts=mounts or None, VolumesFrom=None)
    return resolved


def stopped(store: VolumeStore, container_id: str, records: list[dict[str, Any]]) -> None:
    """The container stopped: its volumes lose a user (the last one unmounts)."""
    for record in records:
        if record.get("Type") == "volume" and container_id in store.users.get(
                record["Name"], ()):
            store.unmount(record["Name"], container_id)
            volume = store.volumes.get(record["Name"])
            if volume is not None:
                store.publish("unmount", volume, {"container": container_id,
                                                  "driver": volume.driver})
