"""Volume specs as moby 20.10 reads them (Binds, Mounts, VolumesFrom, Config.Volumes),
volume names, the local driver's options, and the volume store's bookkeeping (names,
references, filters, prune) on plain directories."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from longboat.errors import Conflict, InvalidArgument, NotFound
from longboat.volume import local, mountpoints
from longboat.volume.store import VolumeStore, check_name, go_rfc3339

pytestmark = pytest.mark.unit


# -- Binds -----------------------------------------------------------------------------------
@pytest.mark.parametrize(("raw", "want"), [
    ("/host:/data", {"Type": "bind", "Source": "/host", "Destination": "/data",
                     "Mode": "", "RW": True, "Propagation": "rprivate", "Named": True}),
    ("/host/../x/:/data/:ro,rslave", {"Type": "bind", "Source": "/x",
                                      "Destination": "/data", "Mode": "ro,rslave",
                                      "RW": False, "Propagation": "rslave"}),
    ("vol:/data", {"Type": "volume", "Name": "vol", "Destination": "/data", "Mode": "z",
                   "RW": True, "Driver": "local", "Named": True, "CopyData": True}),
    ("vol:/data:ro,nocopy", {"Type": "volume", "Name": "vol", "Mode": "ro,nocopy",
                             "RW": False, "CopyData": False}),
    ("/data", {"Type": "volume", "Name": "", "Destination": "/data", "Named": False,
               "Mode": "z"}),
])
def test_binds_are_binds_named_or_anonymous_volumes(raw: str, want: dict[str, Any]) -> None:
    record = mountpoints.parse_bind(raw)
    assert {k: record[k] for k in want} == want
    assert record["Origin"] == "binds" and record["Spec"] == raw


@pytest.mark.parametrize(("raw", "message"), [
    ("", "invalid volume specification: ''"),
    ("a:b:c:d", "invalid volume specification: 'a:b:c:d'"),
    ("/data:rw", "invalid volume specification: '/data:rw'"),
    ("/a:/b:rw,ro", "invalid mode: rw,ro"),
    ("/a:/b:bogus", "invalid mode: bogus"),
    ("vol:data", "invalid volume specification: 'vol:data': invalid mount config for type "
                 "\"volume\": invalid mount path: 'data' mount path must be absolute"),
    ("/a:/", "invalid volume specification: '/a:/': invalid mount config for type "
             "\"bind\": invalid specification: destination can't be '/'"),
    ("/a:/b:nocopy", "invalid volume specification: '/a:/b:nocopy': invalid mount config "
                     "for type \"bind\": field VolumeOptions must not be specified"),
])
def test_bad_binds_get_mobys_messages(raw: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        mountpoints.parse_bind(raw)
    assert caught.value.message == message


# -- Mounts ----------------------------------------------------------------------------------
def test_volume_mounts_carry_their_create_options() -> None:
    record, create = mountpoints.parse_mount({
        "Type": "volume", "Source": "v1", "Target": "/x", "ReadOnly": True,
        "VolumeOptions": {"NoCopy": True, "Labels": {"a": "b"}, "DriverConfig": {
            "Name": "local", "Options": {"type": "tmpfs", "device": "tmpfs"}}}}, 0)
    assert (record["Type"], record["Name"], record["Destination"], record["RW"],
            record["CopyData"], record["Mode"]) == ("volume", "v1", "/x", False, False, "z")
    assert create == {"driver": "local", "labels": {"a": "b"},
                      "options": {"type": "tmpfs", "device": "tmpfs"}}


def test_bind_and_tmpfs_mounts(tmp_path: Path) -> None:
    record, _ = mountpoints.parse_mount({"Type": "bind", "Source": str(tmp_path),
                                         "Target": "/b", "BindOptions": {
                                             "Propagation": "rshared"}}, 0)
    assert (record["Type"], record["Source"], record["Propagation"], record["Mode"]) == \
        ("bind", str(tmp_path), "rshared", "")
    record, _ = mountpoints.parse_mount({"Type": "tmpfs", "Target": "/t"}, 1)
    assert (record["Type"], record["Source"], record["RW"]) == ("tmpfs", "", True)


@pytest.mark.parametrize(("item", "message"), [
    ({"Type": "bind", "Source": "/no/such/longboat/dir", "Target": "/x"},
     'invalid mount config for type "bind": bind source path does not exist: '
     "/no/such/longboat/dir"),
    ({"Type": "volume", "Source": "v", "Target": "x"},
     "invalid mount config for type \"volume\": invalid mount path: 'x' mount path must be "
     "absolute"),
    ({"Type": "volume", "Source": "v", "Target": "/x", "BindOptions": {}},
     'invalid mount config for type "volume": field BindOptions must not be specified'),
    ({"Type": "nope", "Target": "/x"}, 'invalid mount config for type "nope": mount type '
                                       "unknown"),
])
def test_bad_mounts(item: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        mountpoints.parse_mount(item, 0)
    assert caught.value.message == message


# -- VolumesFrom and Config.Volumes -----------------------------------------------------------
@pytest.mark.parametrize(("spec", "want"), [
    ("c1", ("c1", True)), ("c1:rw", ("c1", True)), ("c1:ro", ("c1", False)),
    ("c1:ro,z", ("c1", False)),
])
def test_volumes_from(spec: str, want: tuple[str, bool]) -> None:
    assert mountpoints.parse_volumes_from(spec) == want


@pytest.mark.parametrize(("spec", "message"), [
    ("", "volumes-from specification cannot be an empty string"),
    ("c1:rshared", "invalid mode: rshared"), ("c1:nocopy", "invalid mode: nocopy"),
    ("c1:bogus", "invalid mode: bogus"),
])
def test_bad_volumes_from(spec: str, message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        mountpoints.parse_volumes_from(spec)
    assert caught.value.message == message


def test_config_volumes_merge_the_images() -> None:
    assert mountpoints.anonymous_destinations({"Volumes": {"/a": {}}},
                                              {"Volumes": {"/b": {}}}) == {"/a": {}, "/b": {}}
    assert mountpoints.anonymous_destinations({}, {}) == {}


def test_public_mount_points_leave_out_empty_names() -> None:
    record = mountpoints.parse_bind("/h:/d:ro")
    assert mountpoints.public(record) == {
        "Type": "bind", "Source": "/h", "Destination": "/d", "Mode": "ro", "RW": False,
        "Propagation": "rprivate"}


# -- names and options -----------------------------------------------------------------------
@pytest.mark.parametrize("name", ["ab", "a1", "my-vol_1.x", "0" * 64, "a.."])
def test_good_names(name: str) -> None:
    check_name(name)


@pytest.mark.parametrize(("name", "problem"), [
    ("a", "volume name is too short"), ("..", "includes invalid characters"),
    ("../x", "includes invalid characters"), ("a/b", "includes invalid characters"),
    (".hidden", "includes invalid characters"), ("-x", "includes invalid characters"),
    ("a b", "includes invalid characters"), ("é1", "includes invalid characters"),
])
def test_bad_names(name: str, problem: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        check_name(name)
    assert caught.value.message.startswith(f"create {name}: ") and problem in \
        caught.value.message


@pytest.mark.parametrize(("options", "message"), [
    ({"type": "tmpfs"}, 'missing required option: "device"'),
    ({"o": "size=1m"}, 'missing required option: "device"'),
    ({"type": "tmpfs", "device": "tmpfs", "bogus": "1"}, 'invalid option: "bogus"'),
    ({"type": "tmpfs", "device": "tmpfs", "size": "1m"},
     "quota size requested but no quota support"),
])
def test_local_driver_options(options: dict[str, str], message: str) -> None:
    with pytest.raises(InvalidArgument) as caught:
        local.validate(options)
    assert caught.value.message == message
    local.validate({"type": "tmpfs", "device": "tmpfs", "o": "size=1m"})
    local.validate({})


def test_rfc3339_like_go() -> None:
    import os
    import time

    old = os.environ.get("TZ")
    os.environ["TZ"] = "UTC"
    time.tzset()
    try:
        assert go_rfc3339(0) == "1970-01-01T00:00:00Z"
    finally:
        if old is None:
            del os.environ["TZ"]
        else:
            os.environ["TZ"] = old
        time.tzset()


# -- the store -------------------------------------------------------------------------------
def test_store_creates_finds_refuses_and_prunes(tmp_path: Path) -> None:
    events: list[tuple[str, str]] = []
    store = VolumeStore(str(tmp_path / "volumes"),
                        lambda action, volume, attrs: events.append((action, volume.name)))
    one = store.create("one", labels={"team": "boat"}, options={})
    assert store.create("one").mountpoint == one.mountpoint        # the same volume
    anonymous = store.create(None, reference="c1")
    assert len(anonymous.name) == 64 and anonymous.labels is None
    assert json.loads((tmp_path / "volumes/one/volume.json").read_text())["Labels"] == \
        {"team": "boat"}
    assert one.inspect()["Mountpoint"] == str(tmp_path / "volumes/one/_data")
    assert [v.name for v in store.find({"dangling": ["true"]})] == ["one"]
    assert [v.name for v in store.find({"dangling": ["false"]})] == [anonymous.name]
    assert [v.name for v in store.find({"label": ["team=boat"]})] == ["one"]
    assert [v.name for v in store.find({"name": ["^on"]})] == ["one"]
    assert store.find({"driver": ["nfs"]}) == []
    with pytest.raises(InvalidArgument):
        store.find({"bogus": ["1"]})
    with pytest.raises(Conflict) as caught:
        store.remove(anonymous.name, force=True)
    assert caught.value.message == f"remove {anonymous.name}: volume is in use - [c1]"
    with pytest.raises(NotFound) as missing:
        store.remove("nope")
    assert missing.value.message == "get nope: no such volume"
    store.remove("nope", force=True)
    with pytest.raises(NotFound):
        store.create("x1", driver="nfs")

    # a new store (an engine restart) finds them again; references come from containers
    again = VolumeStore(str(tmp_path / "volumes"))
    again.restore([(anonymous.name, "c1")], [])
    assert sorted(again.volumes) == sorted(["one", anonymous.name])
    assert again.get("one").labels == {"team": "boat"}
    removed, _ = again.prune({"label!": ["team"]})
    assert removed == []
    removed, _ = again.prune()
    assert removed == ["one"] and not (tmp_path / "volumes/one").exists()
    again.release(anonymous.name, "c1")
    again.remove(anonymous.name)
    assert again.volumes == {} and sorted(p.name for p in (tmp_path / "volumes").iterdir()) \
        == []
    assert ("create", "one") in events


@pytest.mark.parametrize("name", ["..", "../../etc", "a/b", "/abs"])
def test_hostile_names_never_reach_the_filesystem(tmp_path: Path, name: str) -> None:
    store = VolumeStore(str(tmp_path / "volumes"))
    with pytest.raises(InvalidArgument):
        store.create(name)
    assert list((tmp_path / "volumes").iterdir()) == []
    assert sorted(p.name for p in tmp_path.iterdir()) == ["volumes"]
