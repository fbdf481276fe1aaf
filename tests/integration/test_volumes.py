"""Volumes against a real longboatd, through our CLI, the docker CLI and docker-py: named
volumes that outlive their containers, copy-up of image content (not into a volume with
content, not with nocopy), anonymous volumes from VOLUME and ``-v /path`` and their
removal with ``rm -v`` and ``--rm``, tmpfs volumes mounted while in use, binds (ro, a
missing source), ``--volumes-from``, removal refused while in use, prune, an engine
restart with a volume in use, hostile names and symlinked mount targets, and no mount
left behind."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest
from tests.support.cli import CLI
from tests.support.engine import Longboatd, busybox_engine
from tests.support.fixtures import busybox_engine_fixture, cli_fixture, leftovers_fixture

pytestmark = pytest.mark.integration

NONE = ("--network", "none")


engine = busybox_engine_fixture("longboatd-volumes")
cli = cli_fixture()
no_leftovers = leftovers_fixture(volumes=True)


def mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    return [p for p in points if p == str(path) or p.startswith(f"{path}/")]


def api(engine: Longboatd, method: str, path: str, body: object = None
        ) -> tuple[int, object]:
    args = ["curl", "-s", "-o", "-", "-w", "\n%{http_code}", "--unix-socket",
            str(engine.socket), "-X", method, f"http://longboat{path}"]
    if body is not None:
        args += ["-H", "Content-Type: application/json", "-d", json.dumps(body)]
    out = subprocess.run(args, capture_output=True, text=True, check=True).stdout
    text, _, status = out.rpartition("\n")
    return int(status), json.loads(text) if text.strip() else None


def image_with_data(cli: CLI, name: str) -> None:
    """An image with owned, moded files, a symlink and a hard link at /data, VOLUME-less."""
    cli("run", *NONE, "--name", "maker-" + name.replace(":", "-"), "bb:1", "sh", "-c",
        "mkdir -p /data/sub && echo image > /data/f && chown 1234:5678 /data/f && "
        "chmod 640 /data/f && ln -s /etc/passwd /data/link && ln /data/f /data/hard && "
        "chmod 1750 /data/sub && chown 42:43 /data && chmod 710 /data")
    cli("commit", "maker-" + name.replace(":", "-"), name)
    cli("rm", "maker-" + name.replace(":", "-"))


# -- named volumes ---------------------------------------------------------------------------
def test_a_named_volume_outlives_its_container(cli: CLI, engine: Longboatd) -> None:
    assert cli("volume", "create", "--label", "team=boat", "vtest-keep").stdout == \
        "vtest-keep\n"
    cli("run", *NONE, "--name", "writer", "-v", "vtest-keep:/data", "bb:1", "sh", "-c",
        "echo kept > /data/file")
    cli("rm", "writer")
    assert cli("run", *NONE, "--rm", "-v", "vtest-keep:/data", "bb:1", "cat",
               "/data/file").stdout == "kept\n"
    # created on demand by -v, seen by the next container too
    cli("run", *NONE, "--rm", "-v", "vtest-demand:/x", "bb:1", "touch", "/x/made")
    assert cli("run", *NONE, "--rm", "--mount", "source=vtest-demand,target=/y", "bb:1",
               "ls", "/y").stdout == "made\n"
    info = json.loads(cli("volume", "inspect", "vtest-keep").stdout)[0]
    assert (info["Name"], info["Driver"], info["Scope"], info["Labels"], info["Options"]) \
        == ("vtest-keep", "local", "local", {"team": "boat"}, {})
    assert info["Mountpoint"] == str(engine.data_root / "volumes/vtest-keep/_data")
    assert (engine.data_root / "volumes/vtest-keep/_data/file").read_text() == "kept\n"
    # the listing, inspect and its errors: the same as the docker CLI's
    for args in (("volume", "ls"), ("volume", "ls", "-q"), ("volume", "ls", "--filter",
                 "label=team=boat"), ("volume", "ls", "-f", "dangling=true", "--format",
                 "{{.Name}} {{.Driver}} {{.Labels}}"), ("volume", "inspect", "vtest-keep"),
                 ("volume", "inspect", "-f", "{{.Mountpoint}}", "vtest-keep", "nope"),
                 ("volume", "rm", "nope")):
        cli.same_as_docker(*args)
    assert cli("volume", "ls", "-q", "-f", "name=keep").stdout == "vtest-keep\n"


def test_a_volume_in_use_is_not_removed_and_prune_keeps_used_ones(
        cli: CLI, engine: Longboatd) -> None:
    cli("volume", "create", "vtest-used")
    cli("volume", "create", "vtest-unused")
    cid = cli("create", *NONE, "-v", "vtest-used:/data", "bb:1", "true").stdout.strip()
    refused = engine.docker("volume", "rm", "-f", "vtest-used", check=False)
    assert refused.returncode == 1
    assert refused.stderr == (f"Error response from daemon: remove vtest-used: volume is "
                              f"in use - [{cid}]\n")
    assert cli("volume", "rm", "vtest-used", check=False).stderr == refused.stderr
    status, body = api(engine, "DELETE", "/volumes/vtest-used")
    assert status == 409 and isinstance(body, dict) and "volume is in use" in body["message"]
    dangling = cli("volume", "ls", "-q", "-f", "dangling=true").stdout.split()
    assert "vtest-unused" in dangling and "vtest-used" not in dangling
    pruned = engine.docker("volume", "prune", "-f")
    assert pruned.stdout == "Deleted Volumes:\nvtest-unused\n\nTotal reclaimed space: 0B\n"
    assert cli("volume", "ls", "-q").stdout == "vtest-used\n"
    cli("rm", cid)
    assert cli("volume", "prune", "-f").stdout.startswith("Deleted Volumes:\nvtest-used\n")


# -- copy-up ---------------------------------------------------------------------------------
def test_image_content_is_copied_into_a_new_empty_volume_only(cli: CLI,
                                                              engine: Longboatd) -> None:
    image_with_data(cli, "vtest-data:1")
    cli("run", *NONE, "--rm", "-v", "vtest-copy:/data", "vtest-data:1", "true")
    data = engine.data_root / "volumes/vtest-copy/_data"
    st = os.stat(data / "f")
    assert (data / "f").read_text() == "image\n"
    assert (st.st_uid, st.st_gid, st.st_mode & 0o7777) == (1234, 5678, 0o640)
    assert os.readlink(data / "link") == "/etc/passwd"          # a symlink, not followed
    assert os.stat(data / "hard").st_ino == st.st_ino            # a hard link stays one
    assert os.stat(data / "sub").st_mode & 0o7777 == 0o1750
    top = os.stat(data)
    assert (top.st_uid, top.st_gid, top.st_mode & 0o7777) == (42, 43, 0o710)
    # a volume with content gets nothing; nocopy gets nothing
    cli("volume", "create", "vtest-full")
    cli("run", *NONE, "--rm", "-v", "vtest-full:/x", "bb:1", "touch", "/x/mine")
    cli("run", *NONE, "--rm", "-v", "vtest-full:/data", "vtest-data:1", "true")
    assert os.listdir(engine.data_root / "volumes/vtest-full/_data") == ["mine"]
    cli("run", *NONE, "--rm", "-v", "vtest-nocopy:/data:nocopy", "vtest-data:1", "true")
    assert os.listdir(engine.data_root / "volumes/vtest-nocopy/_data") == []
    cli("run", *NONE, "--rm", "--mount", "source=vtest-nocopy2,target=/data,volume-nocopy",
        "vtest-data:1", "true")
    assert os.listdir(engine.data_root / "volumes/vtest-nocopy2/_data") == []


# -- anonymous volumes -----------------------------------------------------------------------
def test_anonymous_volumes_from_volume_and_dash_v_and_rm_v(cli: CLI,
                                                           engine: Longboatd) -> None:
    cli("run", *NONE, "--name", "vtest-mk", "bb:1", "sh", "-c", "mkdir /data && echo in "
        "> /data/img")
    cli("commit", "-c", "VOLUME /data", "vtest-mk", "vtest-vol:1")
    cli("rm", "vtest-mk")
    cid = cli("create", *NONE, "-v", "/scratch", "-v", "vtest-named:/named",
              "vtest-vol:1", "true").stdout.strip()
    mounts = {m["Destination"]: m for m in json.loads(
        cli("inspect", "-f", "{{json .Mounts}}", cid).stdout)}
    assert sorted(mounts) == ["/data", "/named", "/scratch"]
    anonymous = mounts["/data"]
    assert len(anonymous["Name"]) == 64 and anonymous["Type"] == "volume"
    assert (anonymous["Driver"], anonymous["Mode"], anonymous["RW"],
            anonymous["Propagation"]) == ("local", "", True, "")
    assert mounts["/named"]["Mode"] == "z"
    assert anonymous["Source"] == str(engine.data_root / "volumes" / anonymous["Name"] /
                                      "_data")
    assert (Path(anonymous["Source"]) / "img").read_text() == "in\n"
    # as in Docker 20.10, anonymous volumes carry no label
    assert json.loads(cli("volume", "inspect", anonymous["Name"]).stdout)[0]["Labels"] \
        is None
    assert json.loads(cli("inspect", "-f", "{{json .Config.Volumes}}", cid).stdout) == \
        {"/data": {}, "/scratch": {}}
    cli("start", "-a", cid)
    cli("rm", "-v", cid)
    left = cli("volume", "ls", "-q").stdout.split()
    assert left == ["vtest-named"]          # the named one stays
    # --rm removes the anonymous volumes too
    cli("run", *NONE, "--rm", "vtest-vol:1", "true")
    assert cli("volume", "ls", "-q").stdout.split() == ["vtest-named"]


# -- tmpfs volumes, mounted while in use -----------------------------------------------------
def test_a_tmpfs_volume_is_mounted_while_used(cli: CLI, engine: Longboatd) -> None:
    cli("volume", "create", "-d", "local", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
        "o=size=2m,mode=1770", "vtest-tmp")
    data = engine.data_root / "volumes/vtest-tmp/_data"
    assert mounts_under(data) == []
    df = cli("run", *NONE, "--rm", "-v", "vtest-tmp:/t", "bb:1", "sh", "-c",
             "df -k /t | tail -1; stat -c %a /t").stdout.split()
    assert df[0] == "tmpfs" and df[1] == "2048" and df[-1] == "1770"
    assert mounts_under(data) == []          # the last user stopped: unmounted
    one = cli("run", *NONE, "-d", "-v", "vtest-tmp:/t", "bb:1", "sleep", "600").stdout.strip()
    two = cli("run", *NONE, "-d", "--mount", "source=vtest-tmp,target=/u", "bb:1", "sh",
              "-c", "echo shared > /u/s; sleep 600").stdout.strip()
    assert mounts_under(data) == [str(data)]
    deadline = time.monotonic() + 10
    while not (data / "s").exists():
        assert time.monotonic() < deadline
        time.sleep(0.05)
    cli("rm", "-f", one)
    assert mounts_under(data) == [str(data)] and (data / "s").read_text() == "shared\n"
    cli("rm", "-f", two)
    assert mounts_under(data) == []
    # --mount with volume-opt creates such a volume on demand
    out = cli("run", *NONE, "--rm", "--mount", "type=volume,source=vtest-tmp2,target=/m,"
              "volume-opt=type=tmpfs,volume-opt=device=tmpfs,volume-opt=o=size=1m", "bb:1",
              "sh", "-c", "df -k /m | tail -1").stdout.split()
    assert out[:2] == ["tmpfs", "1024"]
    info = json.loads(cli("volume", "inspect", "vtest-tmp2").stdout)[0]
    assert info["Options"] == {"type": "tmpfs", "device": "tmpfs", "o": "size=1m"}
    # a bind volume of a host directory: its files are the host's, and survive removal
    host = engine.workdir / "vtest-bind-src"
    host.mkdir()
    (host / "h").write_text("host\n")
    cli("volume", "create", "-o", "type=none", "-o", f"device={host}", "-o", "o=bind",
        "vtest-bindvol")
    assert cli("run", *NONE, "--rm", "-v", "vtest-bindvol:/b", "bb:1", "cat",
               "/b/h").stdout == "host\n"
    cli("volume", "rm", "vtest-bindvol")
    assert (host / "h").read_text() == "host\n"
    # bad options: moby's messages, nothing created
    bad = cli("volume", "create", "-o", "type=tmpfs", "vtest-bad", check=False)
    assert bad.stderr == ('Error response from daemon: create vtest-bad: missing required '
                          'option: "device"\n')
    assert not (engine.data_root / "volumes/vtest-bad").exists()


# -- binds and volumes-from ------------------------------------------------------------------
def test_binds_read_only_missing_sources_and_volumes_from(cli: CLI,
                                                          engine: Longboatd) -> None:
    host = engine.workdir / "vtest-host"
    host.mkdir(exist_ok=True)
    (host / "f").write_text("from host\n")
    refused = cli("run", *NONE, "--rm", "-v", f"{host}:/h:ro", "bb:1", "sh", "-c",
                  "cat /h/f; touch /h/new", check=False)
    assert refused.stdout == "from host\n" and refused.returncode != 0
    assert not (host / "new").exists()
    # a missing Binds source is made, as Docker does; --mount refuses it, changing nothing
    missing = engine.workdir / "vtest-missing" / "deep"
    cli("run", *NONE, "--rm", "-v", f"{missing}:/m", "bb:1", "touch", "/m/x")
    assert (missing / "x").exists()
    nowhere = engine.workdir / "vtest-nowhere"
    before = cli("ps", "-aq").stdout
    bad = cli("run", *NONE, "--rm", "--mount", f"type=bind,source={nowhere},target=/n",
              "bb:1", "true", check=False)
    assert bad.returncode == 125
    assert f'invalid mount config for type "bind": bind source path does not exist: ' \
           f"{nowhere}" in bad.stderr
    assert not nowhere.exists() and cli("ps", "-aq").stdout == before
    # --volumes-from, read-only
    cli("create", *NONE, "--name", "vtest-src", "-v", "vtest-shared:/shared", "-v",
        f"{host}:/h", "-v", "/anon", "bb:1", "true")
    cli("run", *NONE, "--rm", "--volumes-from", "vtest-src", "bb:1", "sh", "-c",
        "echo via > /shared/x; touch /anon/y")
    out = cli("run", *NONE, "--rm", "--volumes-from", "vtest-src:ro", "bb:1", "sh", "-c",
              "cat /shared/x /h/f; touch /shared/z", check=False)
    assert out.stdout == "via\nfrom host\n" and "Read-only file system" in out.stderr
    reader = cli("create", *NONE, "--volumes-from", "vtest-src:ro", "bb:1",
                 "true").stdout.strip()
    mounts = json.loads(cli("inspect", "-f", "{{json .Mounts}}", reader).stdout)
    assert sorted((m["Destination"], m["RW"]) for m in mounts) == [
        ("/anon", False), ("/h", False), ("/shared", False)]
    missing_ref = cli("create", *NONE, "--volumes-from", "vtest-nobody", "bb:1", "true",
                      check=False)
    assert "No such container: vtest-nobody" in missing_ref.stderr


# -- restart, hostile input, docker-py, cleanup ----------------------------------------------
def test_volumes_and_their_mounts_survive_an_engine_restart(
        tmp_path: Path, rootfs_template: Path) -> None:
    with busybox_engine(tmp_path, rootfs_template) as engine:
        engine.docker("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o",
                      "o=size=1m", "vtest-live")
        engine.docker("volume", "create", "vtest-plain")
        cid = engine.docker("run", *NONE, "-d", "-v", "vtest-live:/l", "-v",
                            "vtest-plain:/p", "bb:1", "sh", "-c",
                            "echo alive > /l/a; sleep 600").stdout.strip()
        data = engine.data_root / "volumes/vtest-live/_data"
        deadline = time.monotonic() + 10
        while not (data / "a").exists():
            assert time.monotonic() < deadline
            time.sleep(0.05)
        engine.stop(monitor=False)
        engine.start()
        assert engine.docker("volume", "ls", "-q").stdout.split() == ["vtest-live",
                                                                      "vtest-plain"]
        assert mounts_under(data) == [str(data)] and (data / "a").read_text() == "alive\n"
        refused = engine.docker("volume", "rm", "vtest-live", check=False)
        assert "volume is in use" in refused.stderr
        engine.docker("rm", "-f", cid)
        assert mounts_under(data) == []
        engine.docker("volume", "rm", "vtest-live", "vtest-plain")
    assert mounts_under(tmp_path) == []


@pytest.mark.parametrize("name", ["..", "../escape", "a/b", "/abs", ".hidden", "x"])
def test_hostile_volume_names_change_nothing(engine: Longboatd, name: str) -> None:
    before = sorted(os.listdir(engine.data_root / "volumes"))
    status, body = api(engine, "POST", "/volumes/create", {"Name": name})
    assert status == 400 and isinstance(body, dict) and body["message"].startswith(
        f"create {name}: ")
    status, _ = api(engine, "POST", "/containers/create", {
        "Image": "bb:1", "HostConfig": {"Binds": [f"{name}:/data"], "NetworkMode": "none"}})
    assert status == 400 or name.startswith("/")     # "/abs:/data" is a bind
    assert sorted(os.listdir(engine.data_root / "volumes")) == before
    assert not (engine.data_root / "escape").exists()


def test_mount_targets_that_are_symlinks_stay_inside_the_rootfs(cli: CLI,
                                                                engine: Longboatd) -> None:
    outside = engine.workdir / "vtest-outside"
    cli("run", *NONE, "--name", "vtest-trap", "bb:1", "sh", "-c",
        f"mkdir -p /inside && ln -s {outside} /trap && "
        "ln -s ../../../../../../../../inside /trap2")
    cli("commit", "vtest-trap", "vtest-trap:1")
    cli("rm", "vtest-trap")
    out = cli("run", *NONE, "--rm", "-v", "vtest-sym:/trap", "-v", "vtest-sym2:/trap2",
              "vtest-trap:1", "sh", "-c", f"touch /trap/a /trap2/b; ls {outside} /inside")
    assert "a" in out.stdout and "b" in out.stdout
    assert not outside.exists()           # created inside the container's rootfs only
    assert os.listdir(engine.data_root / "volumes/vtest-sym/_data") == ["a"]
    # copy-up follows the image's symlink inside the root, never out of it
    cli("run", *NONE, "--rm", "-v", "vtest-sym3:/trap2", "vtest-trap:1", "true")
    assert os.listdir(engine.data_root / "volumes/vtest-sym3/_data") == []


def test_docker_py_volumes(engine: Longboatd) -> None:
    docker = pytest.importorskip("docker")
    client = docker.DockerClient(base_url=engine.host, version="1.41")
    try:
        volume = client.volumes.create("vtest-py", labels={"by": "docker-py"})
        assert volume.attrs["Labels"] == {"by": "docker-py"}
        out = client.containers.run("bb:1", ["sh", "-c", "echo py > /v/f; cat /v/f"],
                                    volumes={"vtest-py": {"bind": "/v", "mode": "rw"}},
                                    network_mode="none", remove=True)
        assert out == b"py\n"
        assert [v.name for v in client.volumes.list(filters={"label": "by=docker-py"})] == \
            ["vtest-py"]
        assert client.volumes.prune()["VolumesDeleted"] == ["vtest-py"]
        with pytest.raises(docker.errors.NotFound):
            client.volumes.get("vtest-py")
    finally:
        client.close()


def test_no_mount_is_left_behind(cli: CLI, engine: Longboatd) -> None:
    cli("volume", "create", "-o", "type=tmpfs", "-o", "device=tmpfs", "-o", "o=size=1m",
        "vtest-last")
    cli("run", *NONE, "--rm", "-v", "vtest-last:/l", "-v", "/anon", "--tmpfs", "/t",
        "--mount", "type=tmpfs,target=/u,tmpfs-size=1m", "bb:1", "true")
    cli("volume", "rm", "vtest-last")
    assert mounts_under(engine.data_root / "volumes") == []
    assert os.listdir(engine.data_root / "volumes") == []
