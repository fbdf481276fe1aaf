"""Bench: push and pull of a ~200 MB image against a local registry (Debian's
docker-registry on loopback, storage on the temp directory).

Builds an image of four gzip layers (about 200 MB uncompressed, half incompressible
data), then alternately pushes it to a fresh repository (every blob uploaded) and pulls
it into a fresh store (every blob downloaded and verified), and prints the median time
and throughput (compressed bytes moved per second) of each.

Docker 20.10 (``docker push``/``docker pull``, Debian's ``docker.io``) is measured beside
ours against the SAME registry process: dockerd runs in a network namespace of its own
(tests/support/dockerd.py), and the registry is started inside that namespace (its
loopback brought up there), with this process's main thread moved into it (``setns``)
for the registry's start and our own push and pull, so both clients reach
``127.0.0.1:<port>`` of one registry and the host's network is never touched. Per run:
our push (bench/image), docker push of the same image (``docker load``ed from our save,
untimed) to bench/docker, our pull of bench/image into a fresh store, then (docker's
store emptied of the image) ``docker pull`` of bench/image, which must give our manifest
digest. What each side does differs by design, and the report says so: docker push
gzips every layer from its uncompressed store (we send the stored blobs), docker pull
also decompresses and extracts the layers into overlay2 (our pull stores verified blobs;
our unpack into snapshots is timed separately). Without dockerd, longboat is measured
alone.

    python tests/bench/registry_pull_push.py [--runs 3] [--size-mb 200]
    pytest -m bench tests/bench/registry_pull_push.py -s
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from longboat.image import archive
from longboat.image.layer import make_layer
from longboat.image.registry import pull, push
from longboat.image.snapshot import Snapshotter
from longboat.image.store import DOCKER_LAYER_GZIP, ImageStore
from longboat.linux import libc
from tests.support.dockerd import Dockerd, install_docker
from tests.support.registry import LocalRegistry

pytestmark = pytest.mark.bench

LAYERS = 4


def build_image(store: ImageStore, work: Path, name: str, size_mb: int) -> Any:
    rng = random.Random(7)
    text = b"".join(b"line %d of a text-like file, compressible\n" % i for i in range(25000))
    layers, diff_ids = [], []
    per_layer = size_mb // LAYERS
    for n in range(LAYERS):
        upper = work / f"upper{n}"
        for i in range(per_layer):
            d = upper / f"dir{i % 16}"
            d.mkdir(parents=True, exist_ok=True)
            # 1 MiB files: half random, half text
            (d / f"file{i}").write_bytes(rng.randbytes(1 << 19) + text[: 1 << 19])
        out = work / f"layer{n}.tar.gz"
        with open(out, "wb") as f:
            result = make_layer(str(upper), f, compression="gzip", gzip_level=1)
        with open(out, "rb") as f:
            store.content.ingest(f, result.digest, result.size)
        shutil.rmtree(upper)
        out.unlink()
        layers.append({"mediaType": DOCKER_LAYER_GZIP, "digest": result.digest,
                       "size": result.size})
        diff_ids.append(result.diff_id)
    config = {"architecture": "amd64", "os": "linux",
              "rootfs": {"type": "layers", "diff_ids": diff_ids}}
    return store.create(config, layers, [name])


@contextlib.contextmanager
def in_netns(pid: int | None) -> Iterator[None]:
    """This thread (and the threads and processes it starts) in ``pid``'s network
    namespace for the block; nothing changes for None."""
    if pid is None:
        yield
        return
    own = os.open("/proc/thread-self/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    target = os.open(f"/proc/{pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)
    try:
        libc.setns(target, libc.CLONE_NEWNET)
        try:
            yield
        finally:
            libc.setns(own, libc.CLONE_NEWNET)
    finally:
        os.close(own)
        os.close(target)


@contextlib.contextmanager
def maybe_dockerd(work: Path, use: bool) -> Iterator[tuple[Dockerd | None, str]]:
    """A dockerd in its own network namespace (loopback up), or (None, why not)."""
    if not use:
        yield None, "not asked for (--no-docker)"
        return
    reason = install_docker()
    if reason:
        yield None, reason
        return
    daemon = Dockerd(work / "dockerd")
    daemon.base.mkdir()
    try:
        try:
            daemon.start()
        except RuntimeError as exc:
            yield None, f"dockerd cannot start here: {exc}"
            return
        # a fresh network namespace has its loopback down; it is dockerd's, not the host's
        subprocess.run(["nsenter", f"--net=/proc/{daemon.pid}/ns/net", "ip", "link", "set",
                        "lo", "up"], check=True, capture_output=True)
        yield daemon, ""
    finally:
        daemon.stop()


def docker_forget(daemon: Dockerd, *names: str) -> None:
    """Remove images (and so their layers) from docker's store."""
    daemon.docker("rmi", "-f", *names)
    left = daemon.docker("images", "-q").stdout.split()
    assert not left, f"docker still has images {left}"


def measure(runs: int = 3, size_mb: int = 200, docker: bool = True) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="longboat-bench-") as tmp:
        work = Path(tmp)
        src = ImageStore(str(work / "src"))
        image = build_image(src, work, "bench/image:0", size_mb)
        total = image.size
        times: dict[str, list[float]] = {k: [] for k in (
            "push", "pull", "unpack", "docker_push", "docker_pull")}
        with maybe_dockerd(work, docker) as (daemon, why_not):
            saved = work / "image.tar"
            if daemon is not None:
                with open(saved, "wb") as f:
                    archive.save(src, ["bench/image:0"], f)
            for run in range(runs):
                # a fresh registry each run, and no memory of where blobs were: every blob
                # is uploaded (no HEAD hit, no cross-repository mount) and downloaded
                with in_netns(daemon.pid if daemon else None), \
                        LocalRegistry(work / f"registry{run}") as reg:
                    name = f"{reg.host}/bench/image:1"
                    src.tag("bench/image:0", name)
                    Path(src.root, "distribution.json").unlink(missing_ok=True)
                    start = time.perf_counter()
                    push(src, name)
                    times["push"].append(time.perf_counter() - start)
                    src.remove(name)
                    if daemon is not None:
                        theirs = f"{reg.host}/bench/docker:1"
                        daemon.docker("load", "-q", "-i", str(saved), timeout=600)
                        daemon.docker("tag", "bench/image:0", theirs)
                        start = time.perf_counter()
                        daemon.docker("push", theirs, timeout=600)
                        times["docker_push"].append(time.perf_counter() - start)
                        docker_forget(daemon, "bench/image:0", theirs)
                    dst = work / f"dst{run}"
                    start = time.perf_counter()
                    pulled = pull(ImageStore(str(dst)), name)
                    times["pull"].append(time.perf_counter() - start)
                    assert pulled.manifest_digest == image.manifest_digest
                    if daemon is not None:
                        start = time.perf_counter()
                        daemon.docker("pull", name, timeout=600)
                        times["docker_pull"].append(time.perf_counter() - start)
                        inspect = json.loads(daemon.docker("image", "inspect", name).stdout)
                        assert inspect[0]["Id"] == image.id
                        assert f"{reg.host}/bench/image@{image.manifest_digest}" in \
                            inspect[0]["RepoDigests"], inspect[0]["RepoDigests"]
                        docker_forget(daemon, name)
                start = time.perf_counter()
                Snapshotter(str(work / f"snap{run}")).unpack(ImageStore(str(dst)), pulled)
                times["unpack"].append(time.perf_counter() - start)
                shutil.rmtree(dst)
                shutil.rmtree(work / f"snap{run}")
                shutil.rmtree(work / f"registry{run}")
    med = {k: statistics.median(v) for k, v in times.items() if v}
    return {"bytes": total, "median": med, "all": times,
            "mb_s": {k: total / v / 1e6 for k, v in med.items()},
            "docker": not why_not, "why_not": why_not}


def report(result: dict[str, Any]) -> None:
    med, rate, runs = result["median"], result["mb_s"], result["all"]
    print(f"image: {LAYERS} gzip layers, {result['bytes'] / 1e6:.0f} MB compressed")

    def line(label: str, key: str) -> None:
        if key in med:
            print(f"{label:<34} {med[key]:6.2f} s ({rate[key]:4.0f} MB/s), runs "
                  + ", ".join(f"{t:.2f}" for t in runs[key]))

    line("push: longboat", "push")
    line("push: docker 20.10 (gzips layers)", "docker_push")
    line("pull: longboat (blobs, verified)", "pull")
    line("      longboat unpack (snapshots)", "unpack")
    if "pull" in med and "unpack" in med:
        both = med["pull"] + med["unpack"]
        print(f"{'      longboat pull + unpack':<34} {both:6.2f} s "
              f"({result['bytes'] / both / 1e6:4.0f} MB/s)")
    line("pull: docker 20.10 (and extracts)", "docker_pull")
    if not result["docker"]:
        print(f"docker: not measured ({result['why_not']}): longboat alone")


@pytest.mark.timeout(1800)
def test_registry_pull_push() -> None:
    result = measure()
    report(result)
    assert result["mb_s"]["pull"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--no-docker", action="store_true", help="measure longboat alone")
    args = parser.parse_args()
    report(measure(args.runs, args.size_mb, not args.no_docker))
    sys.exit(0)
