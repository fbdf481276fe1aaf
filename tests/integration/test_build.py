"""The builder end to end: ``DOCKER_BUILDKIT=0 docker build`` and ``longboat build``
against a test longboatd with a busybox base image; the cache; multi-stage; ONBUILD;
ADD of archives and URLs; bad input and hostile contexts leave nothing behind."""

from __future__ import annotations

import bz2
import gzip
import http.server
import io
import json
import lzma
import os
import subprocess
import tarfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from tests.support.cli import CLI
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def engine(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
           ) -> Iterator[Longboatd]:
    with busybox_engine(tmp_path_factory.mktemp("lb-build"), rootfs_template,
                        "--change", 'CMD ["sh"]') as daemon:
        yield daemon


def docker_build(engine: Longboatd, context: Path | str, *args: str, check: bool = True,
                 input: bytes | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "DOCKER_HOST": engine.host, "DOCKER_BUILDKIT": "0",
           "DOCKER_CONFIG": str(engine.workdir / "docker-config")}
    done = subprocess.run(["docker", "build", *args, str(context)], capture_output=True,
                          env=env, input=input, timeout=180, check=False)
    out = subprocess.CompletedProcess(done.args, done.returncode,
                                      done.stdout.decode(errors="replace"),
                                      done.stderr.decode(errors="replace"))
    if check and out.returncode != 0:
        raise AssertionError(f"docker build failed: {out.stdout}\n{out.stderr}")
    return out


def write(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def inspect(engine: Longboatd, name: str) -> dict[str, object]:
    data: list[dict[str, object]] = json.loads(engine.docker("image", "inspect", name).stdout)
    return data[0]


def run(engine: Longboatd, image: str, script: str) -> str:
    return engine.docker("run", "--rm", "--network", "none", image, "sh", "-c",
                         script).stdout


def assert_nothing_left(engine: Longboatd) -> None:
    assert engine.docker("ps", "-aq").stdout.strip() == ""
    with open("/proc/self/mountinfo") as f:
        assert str(engine.data_root) not in f.read()
    left = list((engine.data_root / "snapshots" / "containers").iterdir())
    assert left == []


# -- the docker CLI ------------------------------------------------------------------------

def test_docker_build_through_our_socket(engine: Longboatd, tmp_path: Path) -> None:
    ctx = write(tmp_path, {
        "Dockerfile": "FROM bb:1\nARG V=1\nENV APP=/app GREETING=\"hello world\"\n"
                      "WORKDIR $APP\nCOPY src/ ./\nCOPY top.txt /etc/top.txt\n"
                      "RUN echo \"run $V\" && echo made > made.txt\nUSER nobody\n"
                      "EXPOSE 80 53/udp\nVOLUME /data\nLABEL a=b \"c d\"=\"e f\"\n"
                      "STOPSIGNAL SIGUSR1\nHEALTHCHECK --interval=5s --retries=2 CMD true\n"
                      "ENTRYPOINT [\"sh\", \"-c\"]\nCMD [\"echo hi\"]\n",
        "src/a.txt": "A\n", "src/sub/b.txt": "B\n", "top.txt": "top\n"})
    result = docker_build(engine, ctx, "-t", "lbt-docker:1", "-t", "lbt-docker:2")
    out = result.stdout
    assert "Step 1/15 : FROM bb:1" in out
    assert "Step 7/15 : RUN echo \"run $V\" && echo made > made.txt" in out
    assert "run 1\n" in out
    assert " ---> Running in " in out and "Removing intermediate container" in out
    assert "Successfully tagged lbt-docker:1" in out and "Successfully tagged lbt-docker:2" in out
    built = inspect(engine, "lbt-docker:1")
    config = built["Config"]
    assert isinstance(config, dict)
    assert config["WorkingDir"] == "/app"
    assert "GREETING=hello world" in config["Env"]
    assert config["User"] == "nobody"
    assert config["ExposedPorts"] == {"80/tcp": {}, "53/udp": {}}
    assert config["Volumes"] == {"/data": {}}
    assert config["Labels"] == {"a": "b", "c d": "e f"}
    assert config["StopSignal"] == "SIGUSR1"
    assert config["Healthcheck"] == {"Test": ["CMD-SHELL", "true"], "Interval": 5_000_000_000,
                                     "Retries": 2}
    assert config["Entrypoint"] == ["sh", "-c"] and config["Cmd"] == ["echo hi"]
    files = engine.docker("run", "--rm", "--network", "none", "--entrypoint", "sh",
                          "lbt-docker:1", "-c",
                          "cat /app/a.txt /app/sub/b.txt /etc/top.txt /app/made.txt; "
                          "stat -c '%u:%g %a' /app/a.txt /app").stdout
    assert files == "A\nB\ntop\nmade\n0:0 644\n0:0 755\n"
    assert_nothing_left(engine)


def test_longboat_build_cli(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    ctx = write(tmp_path / "ctx", {"Dockerfile": "FROM bb:1\nARG WHO\nLABEL who=$WHO\n"
                                                 "RUN echo hi-$WHO\n",
                                   "other.Dockerfile": "FROM bb:1\nCMD [\"other\"]\n"})
    iid = tmp_path / "iid"
    out = cli("build", "-t", "lbt-cli:a", "-t", "lbt-cli:b", "--build-arg", "WHO=me",
              "--label", "extra=1", "--iidfile", str(iid), str(ctx)).stdout
    assert "Step 1/5 : FROM bb:1" in out and "hi-me" in out
    assert "Step 5/5 : LABEL \"extra\"=\"1\"" in out
    image_id = iid.read_text()
    assert image_id.startswith("sha256:")
    assert f"Successfully built {image_id[7:19]}" in out
    labels = inspect(engine, "lbt-cli:b")["Config"]
    assert isinstance(labels, dict) and labels["Labels"] == {"who": "me", "extra": "1"}
    quiet = cli("build", "-q", "-f", str(ctx / "other.Dockerfile"), str(ctx)).stdout
    assert quiet.startswith("sha256:") and len(quiet.strip()) == 71
    # the Dockerfile from stdin, and a context from stdin (a Dockerfile alone)
    piped = cli("build", "-q", "-f", "-", str(ctx), input=b"FROM bb:1\nENV P=1\n").stdout
    assert inspect(engine, piped.strip())["Config"]["Env"][-1] == "P=1"  # type: ignore[index]
    alone = cli("build", "-q", "-", input=b"FROM bb:1\nENV Q=2\n").stdout
    assert inspect(engine, alone.strip())["Config"]["Env"][-1] == "Q=2"  # type: ignore[index]
    assert_nothing_left(engine)


def test_dockerignore_is_honoured(engine: Longboatd, tmp_path: Path) -> None:
    ctx = write(tmp_path, {"Dockerfile": "FROM bb:1\nCOPY . /ctx/\n",
                           ".dockerignore": "*.log\n**/secret*\nbuild\n!build/keep\n"
                                            "Dockerfile\n",
                           "a.log": "x", "sub/b.log": "y", "sub/secret.txt": "s",
                           "deep/er/secret": "s", "build/drop": "d", "build/keep": "k",
                           "ok.txt": "ok"})
    docker_build(engine, ctx, "-t", "lbt-ignore:1")
    listing = run(engine, "lbt-ignore:1", "cd /ctx && find . | sort")
    assert listing.split() == [".", "./.dockerignore", "./build", "./build/keep",
                               "./deep", "./deep/er", "./ok.txt", "./sub", "./sub/b.log"]


# -- the cache ------------------------------------------------------------------------------

def _steps(output: str) -> list[bool]:
    """For each step after FROM: was it cached?"""
    blocks = output.split("Step ")[2:]
    return ["Using cache" in block for block in blocks]


def test_cache(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    ctx = write(tmp_path, {"Dockerfile": "FROM bb:1\nRUN echo one > /one\nARG V=1\n"
                                         "COPY f.txt /f.txt\nRUN echo $V > /v\n"
                                         "ENV E=1\nRUN echo done\n",
                           "f.txt": "content\n"})
    first = cli("build", "-t", "lbt-cache:1", str(ctx)).stdout
    assert _steps(first) == [False] * 6
    image = inspect(engine, "lbt-cache:1")["Id"]
    # a full hit
    again = cli("build", "-t", "lbt-cache:1", str(ctx)).stdout
    assert _steps(again) == [True] * 6
    assert inspect(engine, "lbt-cache:1")["Id"] == image
    # an mtime-only change still hits
    os.utime(ctx / "f.txt", (1_000_000, 1_000_000))
    assert _steps(cli("build", str(ctx)).stdout) == [True] * 6
    # a build arg changes only the RUN that has it declared
    assert _steps(cli("build", "--build-arg", "V=2", str(ctx)).stdout) == \
        [True, True, True, False, False, False]
    # a content change misses, and the miss cascades
    (ctx / "f.txt").write_text("changed\n")
    assert _steps(cli("build", str(ctx)).stdout) == [True, True, False, False, False, False]
    # --no-cache builds everything; the tag stays where it was until the build succeeds
    assert _steps(cli("build", "--no-cache", str(ctx)).stdout) == [False] * 6
    assert inspect(engine, "lbt-cache:1")["Id"] == image


def test_cache_from_a_loaded_image(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    ctx = write(tmp_path, {"Dockerfile": "FROM bb:1\nRUN echo cf > /cf\nENV CF=1\n"})
    cli("build", "-t", "lbt-cf:1", str(ctx))
    saved = tmp_path / "saved.tar"
    engine.docker("save", "-o", str(saved), "lbt-cf:1")
    engine.docker("rmi", "lbt-cf:1")
    for image in engine.docker("images", "-q", "--filter", "dangling=true").stdout.split():
        engine.docker("rmi", image, check=False)
    engine.docker("load", "-i", str(saved))
    # a loaded image is no cache candidate by itself...
    assert _steps(cli("build", str(ctx)).stdout) == [False, False]
    # ...but with --cache-from it is (a fresh engine state for that test: remove ours)
    out = cli("build", "--cache-from", "lbt-cf:1", "--no-cache", str(ctx)).stdout
    assert _steps(out) == [False, False]


# -- multi-stage, ONBUILD, ADD --------------------------------------------------------------

def test_multi_stage(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    ctx = write(tmp_path, {"Dockerfile":
                           "FROM bb:1 AS base\nRUN echo base > /base\n"
                           "FROM bb:1 AS broken\nRUN exit 7\n"
                           "FROM base AS build\nRUN echo built > /built && mkdir /out && "
                           "echo art > /out/artifact\n"
                           "FROM scratch AS final\nCOPY --from=build /out/ /\n"
                           "COPY --from=0 /base /base\nCOPY --from=bb:1 /bin/busybox /bb\n"})
    out = cli("build", "-t", "lbt-ms:final", str(ctx)).stdout
    assert "exit 7" not in out          # the broken stage is not needed
    assert "Step 1/8 : FROM bb:1 AS base" in out
    assert "Step 8/8 : COPY --from=bb:1 /bin/busybox /bb" in out
    engine.docker("create", "--name", "lbt-ms-c", "lbt-ms:final", "x")
    try:
        names = subprocess.run(["docker", "export", "lbt-ms-c"], capture_output=True,
                               env={**os.environ, "DOCKER_HOST": engine.host},
                               check=True).stdout
    finally:
        engine.docker("rm", "lbt-ms-c")
    with tarfile.open(fileobj=io.BytesIO(names)) as t:
        members = {m.name: m for m in t.getmembers()}
        assert t.extractfile("artifact").read() == b"art\n"  # type: ignore[union-attr]
        assert t.extractfile("base").read() == b"base\n"  # type: ignore[union-attr]
    assert "bb" in members and "built" not in members
    target = cli("build", "--target", "build", "-t", "lbt-ms:build", str(ctx)).stdout
    assert "Step 3/3 : FROM base AS build" not in target
    assert run(engine, "lbt-ms:build", "cat /built /base") == "built\nbase\n"
    failed = cli("build", "--target", "broken", str(ctx), check=False)
    assert failed.returncode == 1
    assert "The command '/bin/sh -c exit 7' returned a non-zero code: 7" in failed.stderr


def test_onbuild(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    parent = write(tmp_path / "parent", {"Dockerfile": "FROM bb:1\n"
                                         "ONBUILD COPY hello.txt /hello.txt\n"
                                         "ONBUILD RUN echo triggered > /triggered\n"})
    cli("build", "-t", "lbt-onbuild:parent", str(parent))
    config = inspect(engine, "lbt-onbuild:parent")["Config"]
    assert isinstance(config, dict)
    assert config["OnBuild"] == ["COPY hello.txt /hello.txt",
                                 "RUN echo triggered > /triggered"]
    child = write(tmp_path / "child", {"Dockerfile": "FROM lbt-onbuild:parent\n",
                                       "hello.txt": "hi\n"})
    out = cli("build", "-t", "lbt-onbuild:child", str(child)).stdout
    assert "# Executing 2 build triggers" in out
    assert run(engine, "lbt-onbuild:child", "cat /hello.txt /triggered") == "hi\ntriggered\n"
    assert not inspect(engine, "lbt-onbuild:child")["Config"]["OnBuild"]  # type: ignore[index]


class _Quiet(http.server.SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


def test_add_archives_and_urls(engine: Longboatd, tmp_path: Path) -> None:
    cli = CLI(engine)
    ctx = tmp_path / "ctx"
    ctx.mkdir()
    payload = io.BytesIO()
    with tarfile.open(fileobj=payload, mode="w") as t:
        info = tarfile.TarInfo("dir/inside.txt")
        data = b"inside\n"
        info.size = len(data)
        info.uid = 1234
        t.addfile(info, io.BytesIO(data))
    raw = payload.getvalue()
    (ctx / "plain.tar").write_bytes(raw)
    (ctx / "a.tar.gz").write_bytes(gzip.compress(raw))
    (ctx / "b.tar.bz2").write_bytes(bz2.compress(raw))
    (ctx / "c.tar.xz").write_bytes(lzma.compress(raw))
    (ctx / "notatar.gz").write_bytes(gzip.compress(b"just text"))
    served = tmp_path / "www"
    served.mkdir()
    (served / "fetched.txt").write_text("from the web\n")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), lambda *a: _Quiet(
        *a, directory=str(served)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    url = f"http://127.0.0.1:{server.server_address[1]}/fetched.txt"
    (ctx / "Dockerfile").write_text(
        "FROM bb:1\nADD plain.tar /p/\nADD a.tar.gz /g\nADD b.tar.bz2 /b/\n"
        "ADD c.tar.xz /x/\nADD notatar.gz /n/\n"
        f"ADD {url} /web/\nADD {url} /web/renamed\n")
    try:
        cli("build", "-t", "lbt-add:1", str(ctx))
    finally:
        server.shutdown()
        server.server_close()
    out = run(engine, "lbt-add:1", "cat /p/dir/inside.txt /g/dir/inside.txt "
              "/b/dir/inside.txt /x/dir/inside.txt; stat -c '%u %a' /p/dir/inside.txt "
              "/web/fetched.txt; ls /n; cat /web/fetched.txt /web/renamed")
    assert out == ("inside\n" * 4 + "1234 644\n0 600\nnotatar.gz\n"
                   "from the web\nfrom the web\n")


# -- bad input ------------------------------------------------------------------------------

@pytest.mark.parametrize("dockerfile, message", [
    ("FROM bb:1\nRUN true\nNOPE x\n", "Dockerfile parse error line 3: unknown instruction: NOPE"),
    ("FROM bb:1\nENV a=1 b\n", "Dockerfile parse error line 2: Syntax error"),
    ("FROM bb:1\nCOPY missing.txt /\n", "COPY failed: file not found in build context"),
    ("FROM bb:1\nCOPY ../outside /\n", "Forbidden path outside the build context: ../outside"),
    ("FROM bb:1\nCOPY a b /dst\n", "the destination must be a directory and end with a /"),
    ("FROM bb:1\nCOPY --chown=nosuchuser a /\n", "can't find uid for user nosuchuser"),
    ("FROM nosuch-image:1\n", "nosuch-image:1"),
])
def test_bad_input(engine: Longboatd, tmp_path: Path, dockerfile: str, message: str) -> None:
    ctx = write(tmp_path, {"Dockerfile": dockerfile, "a": "a", "b": "b"})
    result = docker_build(engine, ctx, "-t", "lbt-bad:1", check=False)
    assert result.returncode != 0
    assert message in result.stderr + result.stdout
    assert engine.docker("image", "inspect", "lbt-bad:1", check=False).returncode != 0
    assert_nothing_left(engine)


def test_failing_run_moves_no_tag_and_leaves_nothing(engine: Longboatd, tmp_path: Path
                                                     ) -> None:
    cli = CLI(engine)
    good = write(tmp_path / "good", {"Dockerfile": "FROM bb:1\nENV GOOD=1\n"})
    cli("build", "-t", "lbt-fail:1", str(good))
    before = inspect(engine, "lbt-fail:1")["Id"]
    bad = write(tmp_path / "bad", {"Dockerfile": "FROM bb:1\nRUN echo partial > /p\n"
                                                "RUN echo oops && exit 3\nENV X=1\n"})
    for rm in ("--rm=true", "--force-rm"):
        result = cli("build", rm, "-t", "lbt-fail:1", str(bad), check=False)
        assert result.returncode == 1
        assert "Step 3/4 : RUN echo oops && exit 3" in result.stdout
        assert "oops" in result.stdout
        assert ("The command '/bin/sh -c echo oops && exit 3' returned a non-zero code: 3"
                in result.stderr)
        assert inspect(engine, "lbt-fail:1")["Id"] == before
        assert_nothing_left(engine)


# -- hostile contexts ------------------------------------------------------------------------

def _tar(entries: list[tuple[tarfile.TarInfo, bytes | None]]) -> bytes:
    out = io.BytesIO()
    with tarfile.open(fileobj=out, mode="w", format=tarfile.GNU_FORMAT) as t:
        for info, data in entries:
            t.addfile(info, io.BytesIO(data) if data is not None else None)
    return out.getvalue()


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _link(name: str, target: str, kind: bytes = tarfile.SYMTYPE
          ) -> tuple[tarfile.TarInfo, None]:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = target
    return info, None


DOCKERFILE = _file("Dockerfile", b"FROM bb:1\nCOPY . /ctx/\n")


@pytest.mark.parametrize("entries, message", [
    ([DOCKERFILE, _file("../escape", b"x")], "path traversal is refused"),
    ([DOCKERFILE, _file("/abs", b"x")], "absolute path"),
    ([DOCKERFILE, _link("evil", "/"), _file("evil/tmp/lbt-pwned", b"x")],
     "leads outside"),
    ([DOCKERFILE, _link("dev", "", tarfile.CHRTYPE)], "is a device node: refused"),
    ([DOCKERFILE, _link("fifo", "", tarfile.FIFOTYPE)], "is a FIFO: refused"),
])
def test_hostile_contexts_are_refused(engine: Longboatd, entries: list[
        tuple[tarfile.TarInfo, bytes | None]], message: str) -> None:
    result = docker_build(engine, "-", "-t", "lbt-hostile:1", check=False,
                          input=_tar(entries))
    assert result.returncode != 0
    assert message in result.stderr
    assert not os.path.exists("/tmp/lbt-pwned")
    assert_nothing_left(engine)
    assert list((engine.data_root / "tmp").glob("longboat-build-*")) == []
    assert list(Path("/dev/shm").glob("longboat-build-*")) == []


def test_symlinks_in_the_context_resolve_inside_it(engine: Longboatd) -> None:
    context = _tar([_file("Dockerfile", b"FROM bb:1\nCOPY passwd /copied\n"
                                        b"COPY up /up\nCOPY . /ctx/\n"),
                    _link("passwd", "/etc/passwd"), _file("etc/passwd", b"context's own\n"),
                    _link("up", "../../../../etc/passwd")])
    docker_build(engine, "-", "-t", "lbt-links:1", input=context)
    out = run(engine, "lbt-links:1", "cat /copied /up; readlink /ctx/passwd")
    assert out == "context's own\ncontext's own\n/etc/passwd\n"


def test_intermediate_images_are_hidden_kept_by_prune_and_removed_with_their_child(
        engine: Longboatd, tmp_path: Path) -> None:
    """Like docker: ``images`` hides the untagged parents a build leaves (``-a`` shows
    them), ``image prune`` keeps them (the cache needs them), ``rmi`` of the built image
    takes its untagged parents along, and an image a container uses is not removed."""
    cli = CLI(engine)
    ctx = write(tmp_path, {"Dockerfile": "FROM bb:1\nENV LBT_CHAIN=1\n"
                                         "RUN echo chain > /chain\nLABEL lbt=chain\n"})
    cli("build", "-t", "lbt-chain:1", str(ctx))
    built = inspect(engine, "lbt-chain:1")
    parent = str(built["Parent"])
    assert parent.startswith("sha256:")
    listed = engine.docker("images", "-q", "--no-trunc").stdout.split()
    every = engine.docker("images", "-aq", "--no-trunc").stdout.split()
    assert parent not in listed and parent in every and built["Id"] in listed
    engine.docker("image", "prune", "-f")
    assert parent in engine.docker("images", "-aq", "--no-trunc").stdout.split()
    assert _steps(cli("build", "-t", "lbt-chain:1", str(ctx)).stdout) == [True] * 3
    # in use by a container: refused by name and by ID, without force
    engine.docker("create", "--name", "lbt-chain-user", "--network", "none", "lbt-chain:1")
    refused = engine.docker("rmi", "lbt-chain:1", check=False)
    assert refused.returncode != 0 and "is using its referenced image" in refused.stderr
    refused = engine.docker("rmi", str(built["Id"]), check=False)
    assert refused.returncode != 0 and "being used by container" in refused.stderr
    engine.docker("rm", "lbt-chain-user")
    out = engine.docker("rmi", "lbt-chain:1").stdout
    assert f"Deleted: {built['Id']}" in out and f"Deleted: {parent}" in out
    assert parent not in engine.docker("images", "-aq", "--no-trunc").stdout.split()
    assert inspect(engine, "bb:1")["Id"]   # the base stays
