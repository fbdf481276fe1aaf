"""The ``longboat`` CLI against a real longboatd: images, tags, inspect, history, save and
load, import, rmi, prune, pull and push through a real registry, login; its output
compared with what the real docker CLI prints for the same commands on the same daemon."""

from __future__ import annotations

import io
import json
import os
import pty
import stat
import subprocess
import sys
import tarfile
import time
from pathlib import Path

import pytest
from tests.support.cli import CLI, LONGBOAT
from tests.support.engine import Longboatd
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.integration

@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory):
    with Longboatd(tmp_path_factory.mktemp("longboatd-cli")) as daemon:
        yield daemon


@pytest.fixture(scope="module")
def cli(engine: Longboatd) -> CLI:
    return CLI(engine)


@pytest.fixture(scope="module")
def rootfs_tar(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("rootfs") / "rootfs.tar"
    with tarfile.open(path, "w") as tar:
        for name, data in (("etc/hostname", b"longboat\n"),
                           ("bin/blob", os.urandom(300_000))):
            info = tarfile.TarInfo(name)
            info.size = len(data)
            info.mode = 0o755
            tar.addfile(info, io.BytesIO(data))
    return path


def test_images_tag_inspect_history_print_what_docker_prints(cli: CLI, rootfs_tar: Path
                                                             ) -> None:
    image_id = cli("import", "-m", "first <import>", str(rootfs_tar), "cli/app:1").stdout
    assert image_id.startswith("sha256:") and len(image_id.strip()) == 71
    image_id = image_id.strip()
    cli("tag", "cli/app:1", "localhost:5000/team/app:v2")
    other = cli("import", "-", input=rootfs_tar.read_bytes() + b"\0" * 1024).stdout.strip()
    assert other.startswith("sha256:") and other != image_id
    for args in (["images"], ["images", "-a"], ["images", "-q"], ["images", "--digests"],
                 ["images", "--no-trunc"], ["image", "ls", "cli/app"],
                 ["images", "--filter", "dangling=true"],
                 ["images", "--format", "table {{.Repository}}:{{.Tag}}\t{{upper .ID}}"],
                 ["history", "cli/app:1"], ["history", "--no-trunc", "-H=false",
                                            "cli/app:1"],
                 ["history", "-q", "cli/app:1"], ["inspect", "cli/app:1"],
                 ["image", "inspect", "cli/app:1", "localhost:5000/team/app:v2"],
                 ["inspect", "-f", "{{.Id}} {{json .RepoTags}} {{.Size}} {{index .RootFS "
                                   "\"Layers\"}} {{.Config}}", "cli/app:1"],
                 ["system", "df"], ["system", "df", "-v"]):
        cli.same_as_docker(*args)
    listing = cli("images").stdout.splitlines()
    assert listing[0].split() == ["REPOSITORY", "TAG", "IMAGE", "ID", "CREATED", "SIZE"]
    assert any(row.startswith("cli/app ") and image_id[7:19] in row for row in listing)
    # rows of one image come in any order from docker's map: compare as sets
    ours = set(cli("images", "--format", "{{json .}}").stdout.splitlines())
    theirs = set(cli.engine.docker("images", "--format", "{{json .}}").stdout.splitlines())
    assert ours == theirs and len(ours) == 3   # the untagged import shows as <none>
    history = cli("history", "--format", "{{.ID}}|{{.Comment}}", "cli/app:1").stdout
    assert history == f"{image_id[7:19]}|first <import>\n"
    out = cli("rmi", "localhost:5000/team/app:v2", other).stdout
    assert out == f"Untagged: localhost:5000/team/app:v2\nDeleted: {other}\n"
    assert json.loads(cli("inspect", "cli/app:1").stdout)[0]["RepoTags"] == ["cli/app:1"]


def test_errors_and_exit_codes_match_docker(cli: CLI, rootfs_tar: Path) -> None:
    errs = cli("import", str(rootfs_tar), "errs:1").stdout.strip()
    for args in (["rmi", "nope"], ["inspect", "nope"],
                 ["image", "inspect", "nope"], ["history", "nope"], ["tag", "nope", "x"],
                 ["tag", "errs:1", "Bad"], ["images", "--format", "{{.Nope}}"],
                 ["images", "--format", "{{nope .ID}}"], ["inspect", "-f", "{{.Nope}}",
                                                           "errs:1"],
                 ["save", "-o", "/dev/null", "nope"], ["load", "-i", "/nonexistent"],
                 ["import", "/nonexistent"]):
        cli.same_as_docker(*args)
    partial = cli("rmi", "nope", "errs:1", check=False)
    assert partial.returncode == 1
    assert partial.stdout == f"Untagged: errs:1\nDeleted: {errs}\n"
    assert partial.stderr == "Error response from daemon: No such image: nope\n"
    forced = cli("rmi", "-f", "nope", check=False)
    assert forced.returncode == 0 and "No such image: nope" in forced.stderr
    unreachable = subprocess.run([LONGBOAT, "-H", "unix:///nonexistent/x.sock", "images"],
                                 capture_output=True, text=True, check=False)
    assert unreachable.returncode == 1
    assert unreachable.stderr == ("Cannot connect to the Longboat daemon at "
                                  "unix:///nonexistent/x.sock. Is longboatd running?\n")
    usage = cli("images", "--bogus", check=False)
    assert (usage.returncode, usage.stderr) == (
        125, "unknown flag: --bogus\nSee 'longboat images --help'.\n")
    garbage = cli("load", input=b"not a tar at all" * 100, check=False)
    docker_garbage = cli.engine.docker("load", input=b"not a tar at all" * 100, check=False)
    assert (garbage.returncode, garbage.stderr) == (1, docker_garbage.stderr)


def test_save_load_round_trip_and_prune(cli: CLI, rootfs_tar: Path, tmp_path: Path) -> None:
    image_id = cli("import", str(rootfs_tar), "trip:1").stdout.strip()
    archive = tmp_path / "trip.tar"
    cli("save", "-o", str(archive), "trip:1")
    piped = cli("image", "save", "trip:1").stdout.encode(errors="surrogateescape")
    assert archive.stat().st_size > 300_000 and len(piped) > 0
    with tarfile.open(archive) as tar:
        assert "manifest.json" in tar.getnames()
    assert not list(tmp_path.glob(".longboat_temp_*"))
    cli("rmi", "trip:1")
    assert cli("load", "-i", str(archive)).stdout == "Loaded image: trip:1\n"
    assert cli("inspect", "-f", "{{.Id}}", "trip:1").stdout.strip() == image_id
    assert cli("load", input=archive.read_bytes()).stdout == "Loaded image: trip:1\n"
    # a dangling image, then prune: refused at the prompt, then forced
    dangling = cli("import", "-", input=rootfs_tar.read_bytes() + b"\0" * 2048).stdout.strip()
    refused = cli("image", "prune", input=b"n\n")
    assert refused.stdout == ("WARNING! This will remove all dangling images.\n"
                              "Are you sure you want to continue? [y/N] ")
    out = cli("system", "prune", "-f").stdout
    assert out.startswith(f"Deleted Images:\ndeleted: {dangling}\n\nTotal reclaimed space: ")
    assert "trip:1" in cli("images", "--format", "{{.Repository}}:{{.Tag}}").stdout


def test_load_progress_redraws_lines_on_a_terminal(cli: CLI, rootfs_tar: Path,
                                                   tmp_path: Path) -> None:
    cli("import", str(rootfs_tar), "tty:1")
    archive = tmp_path / "tty.tar"
    cli("save", "-o", str(archive), "tty:1")
    cli("rmi", "tty:1")
    primary, secondary = pty.openpty()
    try:
        proc = subprocess.Popen([LONGBOAT, "-H", cli.engine.host, "load", "-i", str(archive)],
                                stdout=secondary, stderr=secondary, stdin=subprocess.DEVNULL)
        os.close(secondary)
        output = b""
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                data = os.read(primary, 65536)
            except OSError:      # EIO: the other side closed
                break
            if not data:
                break
            output += data
        assert proc.wait(30) == 0
    finally:
        os.close(primary)
    text = output.decode(errors="replace")
    assert "\x1b[1A\x1b[2K\r" in text and ": Loading layer " in text and "/" in text
    assert text.rstrip().endswith("Loaded image: tty:1")


def test_push_pull_and_login_through_a_registry(cli: CLI, rootfs_tar: Path,
                                                tmp_path: Path) -> None:
    with LocalRegistry(tmp_path / "registry") as registry:
        name = f"{registry.host}/demo/app:1"
        image_id = cli("import", str(rootfs_tar), name).stdout.strip()
        first = cli("push", name).stdout
        assert "Pushed" in first and "1: digest: sha256:" in first
        cli.same_as_docker("push", name)         # both now: "Layer already exists"
        cli("rmi", name)
        pulled = cli("pull", name).stdout
        assert "Digest: sha256:" in pulled and pulled.endswith(f"\n{name}\n")
        assert cli("inspect", "-f", "{{.Id}}", name).stdout.strip() == image_id
        cli("rmi", name)
        cli.engine.docker("pull", name)
        cli("rmi", name)
        assert cli("pull", "-q", name).stdout == f"{name}\n"
        missing = cli.same_as_docker("pull", f"{registry.host}/demo/absent")
        del missing
        absent = cli("pull", f"{registry.host}/demo/absent", check=False)
        assert absent.returncode == 1 and "not found" in absent.stderr
        assert absent.stdout.startswith("Using default tag: latest\n")
        cli("rmi", name)

    with LocalRegistry(tmp_path / "private", users={"alice": "s3cret"}) as private:
        name = f"{private.host}/team/app:1"
        cli("import", str(rootfs_tar), name)
        denied = cli("push", name, check=False)
        assert denied.returncode == 1
        wrong = cli("login", "-u", "alice", "--password-stdin", private.host,
                    input=b"wrong\n", check=False)
        assert wrong.returncode == 1 and wrong.stderr.startswith("Error response from daemon:")
        config = cli.config / "config.json"
        assert not config.exists()
        ok = cli("login", "-u", "alice", "--password-stdin", private.host, input=b"s3cret\n")
        assert ok.stdout == "Login Succeeded\n"
        assert stat.S_IMODE(config.stat().st_mode) == 0o600
        assert private.host in json.loads(config.read_text())["auths"]
        assert "digest: sha256:" in cli("push", name).stdout
        cli("rmi", name)
        assert cli("pull", name).stdout.endswith(f"{name}\n")
        assert cli("logout", private.host).stdout == \
            f"Removing login credentials for {private.host}\n"
        assert cli("logout", private.host).stdout == f"Not logged in to {private.host}\n"
        cli("rmi", name)


def _runtimes_sorted(text: str) -> str:
    """docker prints the runtimes in Go's map order, which changes from run to run."""
    return "\n".join(" Runtimes: " + " ".join(sorted(line.split()[1:]))
                     if line.startswith(" Runtimes:") else line for line in text.split("\n"))


def test_version_info_and_a_lean_start(cli: CLI) -> None:
    ours = cli("version").stdout
    theirs = cli.engine.docker("version").stdout
    assert ours.split("\nServer:")[1] == theirs.split("\nServer:")[1]
    assert ours.startswith("Client:\n Version:           ")
    assert cli("version", "--format", "{{.Server.ApiVersion}}").stdout == "1.41\n"
    info = cli("info").stdout
    docker_info = cli.engine.docker("info").stdout
    assert _runtimes_sorted(info.split("\nServer:\n")[1]) == \
        _runtimes_sorted(docker_info.split("\nServer:\n")[1])
    # --help and version import nothing of the engine
    code = ("import sys, runpy; sys.argv = ['longboat', '--help']\n"
            "from longboat.cli import main\n"
            "try:\n    main.main(['--help'])\nexcept SystemExit:\n    pass\n"
            "heavy = [m for m in sys.modules if m.startswith(('longboat.image', "
            "'longboat.api', 'longboat.engine', 'longboat.client', 'http', 'ssl', 'json'))]\n"
            "print(heavy)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True)
    assert done.stdout.strip().endswith("[]"), done.stdout
