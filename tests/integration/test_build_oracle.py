"""The builder against a real Docker 20.10 engine (tests/support/dockerd.py, its own
namespaces): the same Dockerfiles, on the same base image (ours, ``docker load``-ed
into Docker), built by Docker's classic builder and by ours, give the same image
configuration and the same files (path, type, mode, owner, content, link target; the
image's own layers merged, whiteouts applied)."""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import posixpath
import subprocess
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.support.dockerd import Dockerd, running
from tests.support.engine import Longboatd, busybox_engine

pytestmark = pytest.mark.integration

FIELDS = ("Env", "Cmd", "Entrypoint", "WorkingDir", "User", "ExposedPorts", "Volumes",
          "Labels", "StopSignal", "Healthcheck", "OnBuild")


@pytest.fixture(scope="module")
def engines(tmp_path_factory: pytest.TempPathFactory, rootfs_template: Path
            ) -> Iterator[tuple[Longboatd, Dockerd]]:
    with busybox_engine(tmp_path_factory.mktemp("lb-oracle"), rootfs_template,
                        "--change", 'CMD ["sh"]') as ours, \
            running(tmp_path_factory.mktemp("dockerd-build")) as docker:
        saved = ours.workdir / "bb.tar"
        ours.docker("save", "-o", str(saved), "bb:1")
        docker.docker("load", "-i", str(saved))
        yield ours, docker


def build_both(engines: tuple[Longboatd, Dockerd], ctx: Path, tag: str
               ) -> tuple[dict[str, Any], dict[str, Any]]:
    ours, docker = engines
    args = ["build", "--network", "none", "-t", tag, str(ctx)]
    ours.docker(*args, timeout=300)
    subprocess.run(["/usr/bin/docker" if os.path.exists("/usr/bin/docker") else "docker",
                    *args], env={**docker.env, "DOCKER_BUILDKIT": "0"}, check=True,
                   capture_output=True, timeout=300)
    return image_view(_save(ours, tag)), image_view(docker.docker("save", tag).stdout)


def _save(engine: Longboatd, tag: str) -> bytes:
    env = {**os.environ, "DOCKER_HOST": engine.host}
    return subprocess.run(["docker", "save", tag], env=env, check=True,
                          capture_output=True, timeout=120).stdout


def image_view(saved: bytes) -> dict[str, Any]:
    """(config fields, merged files) of the one image in a docker-archive."""
    with tarfile.open(fileobj=io.BytesIO(saved)) as outer:
        manifest = json.load(outer.extractfile("manifest.json"))[0]  # type: ignore[arg-type]
        config = json.load(outer.extractfile(manifest["Config"]))  # type: ignore[arg-type]
        files: dict[str, tuple[Any, ...]] = {}
        for layer in manifest["Layers"]:
            data = outer.extractfile(layer).read()  # type: ignore[union-attr]
            if data[:2] == b"\x1f\x8b":
                data = gzip.decompress(data)
            _apply(files, data)
    fields = {k: (config.get("config") or {}).get(k) or None for k in FIELDS}
    return {"config": fields, "files": files}


def _apply(files: dict[str, tuple[Any, ...]], data: bytes) -> None:
    with tarfile.open(fileobj=io.BytesIO(data)) as layer:
        members = layer.getmembers()
        for m in members:          # whiteouts first: they hide lower layers only
            name = "/" + m.name.strip("./").lstrip("/")
            base = posixpath.basename(name)
            if base == ".wh..wh..opq":
                parent = posixpath.dirname(name).rstrip("/") + "/"
                for path in [p for p in files if p.startswith(parent)]:
                    del files[path]
            elif base.startswith(".wh."):
                gone = posixpath.join(posixpath.dirname(name), base[4:])
                for path in [p for p in files if p == gone or p.startswith(gone + "/")]:
                    del files[path]
        for m in members:
            name = "/" + m.name.strip("./").lstrip("/")
            if posixpath.basename(name).startswith(".wh.") or name == "/":
                continue
            if m.isdir():
                entry: tuple[Any, ...] = ("dir", m.mode & 0o7777, m.uid, m.gid)
            elif m.issym():
                entry = ("symlink", m.uid, m.gid, m.linkname)
            elif m.islnk():
                target = files.get("/" + m.linkname.strip("./").lstrip("/"))
                entry = target or ("hardlink", m.linkname)
            elif m.isfile():
                digest = hashlib.sha256(layer.extractfile(m).read()).hexdigest()  # type: ignore[union-attr]
                entry = ("file", m.mode & 0o7777, m.uid, m.gid, digest)
            else:
                entry = ("node", m.type, m.mode & 0o7777, m.uid, m.gid, m.devmajor, m.devminor)
            if entry[0] != "dir" or files.get(name, ("",))[0] != "dir":
                for path in [p for p in files if p.startswith(name + "/")]:
                    del files[path]
            files[name] = entry


def compare(ours: dict[str, Any], theirs: dict[str, Any]) -> None:
    assert ours["config"] == theirs["config"]
    only_ours = sorted(set(ours["files"]) - set(theirs["files"]))
    only_theirs = sorted(set(theirs["files"]) - set(ours["files"]))
    assert (only_ours, only_theirs) == ([], [])
    different = {p: (ours["files"][p], theirs["files"][p]) for p in ours["files"]
                 if ours["files"][p] != theirs["files"][p]}
    assert different == {}


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def _archive() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as t:
        for name, kind in (("pkg", tarfile.DIRTYPE), ("pkg/bin", tarfile.DIRTYPE)):
            info = tarfile.TarInfo(name)
            info.type = kind
            info.mode = 0o750
            info.uid, info.gid = 1000, 1000
            t.addfile(info)
        data = b"#!/bin/sh\necho tool\n"
        info = tarfile.TarInfo("pkg/bin/tool")
        info.size, info.mode, info.uid, info.gid = len(data), 0o755, 1000, 1000
        t.addfile(info, io.BytesIO(data))
        link = tarfile.TarInfo("pkg/current")
        link.type, link.linkname = tarfile.SYMTYPE, "bin/tool"
        t.addfile(link)
    return gzip.compress(buf.getvalue(), mtime=0)


CASES: dict[str, dict[str, str | bytes]] = {
    "multistage": {"Dockerfile":
                   "FROM bb:1 AS build\nWORKDIR /src\nCOPY app.txt .\n"
                   "RUN mkdir -p /out/bin && cp app.txt /out/bin/app && chmod 700 /out/bin/app"
                   " && ln -s bin/app /out/link && ln /out/bin/app /out/hard\n"
                   "FROM bb:1\nCOPY --from=build /out /opt/\nCOPY --from=0 /src/app.txt /\n"
                   "RUN rm -rf /usr/sbin && mkdir -m 1777 /scratch\n"
                   "USER nobody\nWORKDIR /home/app\nCMD [\"app\"]\n",
                   "app.txt": "app\n"},
    "archives": {"Dockerfile": "FROM bb:1\nADD tools.tar.gz /opt/\nADD plain.txt /opt/\n"
                               "COPY tools.tar.gz /copied/\n",
                 "tools.tar.gz": _archive(), "plain.txt": "plain\n"},
    "metadata": {"Dockerfile":
                 "FROM bb:1\nARG VERSION=1.2\nENV APP_HOME=/srv/app PATH=/srv/app/bin:$PATH"
                 "\nENV MSG=\"v${VERSION:-none} ${MISSING:-dflt} ${APP_HOME:+set}\"\n"
                 "LABEL version=$VERSION maintainer=\"someone\" multi=\"a b\"\n"
                 "EXPOSE 8080 53/udp 7000-7002\nVOLUME /data [\"/logs\"]\nVOLUME [\"/x\", \"/y\"]\n"
                 "STOPSIGNAL SIGINT\nHEALTHCHECK --interval=30s --timeout=3s --start-period=1m"
                 " --retries=4 CMD [\"wget\", \"-q\", \"http://localhost/\"]\n"
                 "WORKDIR $APP_HOME\nWORKDIR sub\nUSER 1000:1000\n"
                 "ENTRYPOINT echo entry\nSHELL [\"/bin/sh\", \"-ec\"]\nCMD run this\n"},
    "copy_rules": {"Dockerfile":
                   "FROM bb:1\nCOPY dir /d1\nCOPY dir/ /d2/\nCOPY file.txt /f1\n"
                   "COPY file.txt /f2/\nCOPY file.txt /etc\nCOPY *.md /docs/\n"
                   "COPY --chown=nobody:nogroup file.txt /owned\n"
                   "COPY --chown=1234 dir /owned-dir/\nCOPY exe.sh /bin/\n",
                   "dir/a.txt": "a\n", "dir/sub/b.txt": "b\n", "file.txt": "f\n",
                   "one.md": "1", "two.md": "2", "exe.sh": "#!/bin/sh\n"},
    "dockerignore": {"Dockerfile": "FROM bb:1\nCOPY . /ctx\n",
                     ".dockerignore": "*.tmp\n**/cache\nsecret*\n!secret.keep\n",
                     "a.tmp": "x", "keep.txt": "k", "deep/cache/c": "c", "deep/ok": "o",
                     "secret.key": "s", "secret.keep": "k"},
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_same_image_as_docker(engines: tuple[Longboatd, Dockerd], tmp_path: Path,
                              case: str) -> None:
    ctx = write(tmp_path / case, CASES[case])
    for path in ctx.rglob("*"):
        os.chmod(path, 0o755 if path.is_dir() or path.suffix == ".sh" else 0o644)
    ours, theirs = build_both(engines, ctx, f"lb-oracle-{case.replace('_', '-')}:1")
    compare(ours, theirs)


def test_onbuild_same_as_docker(engines: tuple[Longboatd, Dockerd], tmp_path: Path
                                ) -> None:
    parent = write(tmp_path / "parent", {"Dockerfile":
                                         "FROM bb:1\nONBUILD ARG WHO=child\n"
                                         "ONBUILD COPY . /app/\n"
                                         "ONBUILD RUN echo built-by-$WHO > /app/who\n"})
    ours, theirs = build_both(engines, parent, "lb-oracle-onbuild:parent")
    compare(ours, theirs)
    child = write(tmp_path / "child", {"Dockerfile": "FROM lb-oracle-onbuild:parent\n"
                                                     "ENV AFTER=1\n", "c.txt": "c\n"})
    os.chmod(child / "c.txt", 0o644)
    ours, theirs = build_both(engines, child, "lb-oracle-onbuild:child")
    compare(ours, theirs)
