"""Bench: a cold build and a fully cached rebuild of the same multi-stage Dockerfile,
ours (``longboat build``) vs Docker 20.10's classic builder (``DOCKER_BUILDKIT=0 docker
build``), in the same invocation on the same machine, on the same busybox base image.

Goals (DESIGN.md): cold build at most 1x Docker's; fully cached rebuild at most 0.5x.
Each engine's cache is emptied before each cold run (the images it built removed);
RUN steps use ``--network none`` on both sides.

    python tests/bench/build_cache.py [--runs 5]
    pytest -m bench tests/bench/build_cache.py -s
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2]))   # run as a script too

from longboat.image.bootstrap import busybox_rootfs
from tests.support import dockerd
from tests.support.engine import Longboatd

pytestmark = pytest.mark.bench

LONGBOAT = str(Path(sys.executable).parent / "longboat")

DOCKERFILE = """\
FROM bb:1 AS deps
ARG LEVEL=3
ENV BUILD_ROOT=/build
WORKDIR $BUILD_ROOT
COPY deps/ ./deps/
RUN for i in $(seq 1 50); do echo "dep $i level $LEVEL" > deps/gen-$i.txt; done

FROM bb:1 AS build
WORKDIR /src
COPY --from=deps /build/deps ./deps
COPY src/ ./
RUN cat deps/*.txt *.c | sha256sum > checksum && mkdir -p /out && cp checksum /out/

FROM bb:1
LABEL org.example.bench=build-cache
COPY --from=build /out/ /app/
COPY config/ /etc/app/
ENV APP=/app
EXPOSE 8080
USER nobody
WORKDIR /app
CMD ["cat", "/app/checksum"]
"""


def make_context(root: Path) -> Path:
    ctx = root / "ctx"
    for sub in ("deps", "src", "config"):
        (ctx / sub).mkdir(parents=True)
    (ctx / "Dockerfile").write_text(DOCKERFILE)
    for i in range(200):
        (ctx / "deps" / f"d{i}.txt").write_text(f"dependency {i}\n" * 20)
    for i in range(50):
        (ctx / "src" / f"m{i}.c").write_text(f"int f{i}(void) {{ return {i}; }}\n" * 50)
    for i in range(10):
        (ctx / "config" / f"c{i}.conf").write_text(f"key{i}=value\n")
    (ctx / ".dockerignore").write_text("*.tmp\n")
    return ctx


def timed(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, env=env, check=True, capture_output=True, timeout=600)
    return time.perf_counter() - start


def clear_cache(cli: list[str], env: dict[str, str]) -> None:
    """Remove every image but the base: the next build is cold."""
    names = subprocess.run([*cli, "images", "-aq", "--no-trunc"], env=env, check=True,
                           capture_output=True, text=True).stdout.split()
    base = subprocess.run([*cli, "image", "inspect", "-f", "{{.Id}}", "bb:1"], env=env,
                          check=True, capture_output=True, text=True).stdout.strip()
    doomed = sorted(set(names) - {base})
    if doomed:
        subprocess.run([*cli, "rmi", "-f", *doomed], env=env, capture_output=True,
                       check=False)


def measure(runs: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory(prefix="lb-bench-build-") as tmp:
        base = Path(tmp)
        rootfs = base / "rootfs"
        busybox_rootfs(str(rootfs))
        tar = base / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs, arcname=".")
        ctx = make_context(base)
        (base / "lb").mkdir()
        engine = Longboatd(base / "lb").start()
        results: dict[str, list[float]] = {k: [] for k in
                                           ("ours_cold", "ours_cached", "docker_cold",
                                            "docker_cached")}
        try:
            engine.docker("import", str(tar), "bb:1")
            saved = base / "bb.tar"
            engine.docker("save", "-o", str(saved), "bb:1")
            ours_env = {**os.environ, "LONGBOAT_CONFIG": str(base / "lbcfg")}
            ours_cli = [LONGBOAT, "-H", engine.host]
            docker_env_ours = {**os.environ, "DOCKER_HOST": engine.host}
            build_ours = [*ours_cli, "build", "-q", "--network", "none", "-t", "bench:1",
                          str(ctx)]
            (base / "docker").mkdir()
            docker = dockerd.Dockerd(base / "docker")
            have_docker = dockerd.install_docker() is None
            if have_docker:
                try:
                    docker.start()
                except RuntimeError as exc:
                    print(f"dockerd cannot start here ({exc}); measuring ours alone")
                    have_docker = False
            try:
                docker_env = {**docker.env, "DOCKER_BUILDKIT": "0"}
                docker_cli = [dockerd.docker_cli()]
                build_docker = [*docker_cli, "build", "-q", "--network", "none", "-t",
                                "bench:1", str(ctx)]
                if have_docker:
                    docker.docker("load", "-i", str(saved))
                for _ in range(runs):
                    clear_cache(["docker"], docker_env_ours)
                    results["ours_cold"].append(timed(build_ours, ours_env))
                    results["ours_cached"].append(timed(build_ours, ours_env))
                    if have_docker:
                        clear_cache(docker_cli, docker_env)
                        results["docker_cold"].append(timed(build_docker, docker_env))
                        results["docker_cached"].append(timed(build_docker, docker_env))
            finally:
                docker.stop()
        finally:
            engine.stop()
    return {k: statistics.median(v) for k, v in results.items() if v}


def report(r: dict[str, float]) -> None:
    print(f"cold build:   longboat {r['ours_cold'] * 1000:7.0f} ms", end="")
    if "docker_cold" in r:
        print(f"   docker {r['docker_cold'] * 1000:7.0f} ms   ratio "
              f"{r['ours_cold'] / r['docker_cold']:.2f}x (goal <= 1x)")
    else:
        print()
    print(f"cached build: longboat {r['ours_cached'] * 1000:7.0f} ms", end="")
    if "docker_cached" in r:
        print(f"   docker {r['docker_cached'] * 1000:7.0f} ms   ratio "
              f"{r['ours_cached'] / r['docker_cached']:.2f}x (goal <= 0.5x)")
    else:
        print()


def test_build_cache_bench() -> None:
    report(measure(3))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5)
    report(measure(parser.parse_args().runs))
