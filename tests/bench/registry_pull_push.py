"""Bench: push and pull of a ~200 MB image against a local registry (Debian's
docker-registry on loopback, storage on the temp directory).

Builds an image of four gzip layers (about 200 MB uncompressed, half incompressible
data), then alternately pushes it to a fresh repository (every blob uploaded) and pulls
it into a fresh store (every blob downloaded and verified), and prints the median time
and throughput (compressed bytes moved per second) of each.

Docker's ``docker push``/``docker pull`` would be measured beside ours when a ``dockerd``
helper exists in tests/support (one that starts the daemon in its own network
namespace); until then longboat is measured alone and the report says so.

    python tests/bench/registry_pull_push.py [--runs 3] [--size-mb 200]
    pytest -m bench tests/bench/registry_pull_push.py -s
"""

from __future__ import annotations

import argparse
import importlib.util
import random
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from longboat.image.layer import make_layer
from longboat.image.registry import pull, push
from longboat.image.store import DOCKER_LAYER_GZIP, ImageStore
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


def measure(runs: int = 3, size_mb: int = 200) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="longboat-bench-") as tmp:
        work = Path(tmp)
        src = ImageStore(str(work / "src"))
        image = build_image(src, work, "bench/image:0", size_mb)
        total = image.size
        push_times, pull_times = [], []
        for run in range(runs):
            # a fresh registry each run, and no memory of where blobs were: every blob is
            # uploaded (no HEAD hit, no cross-repository mount) and downloaded
            with LocalRegistry(work / f"registry{run}") as reg:
                name = f"{reg.host}/bench/image:1"
                src.tag("bench/image:0", name)
                Path(src.root, "distribution.json").unlink(missing_ok=True)
                start = time.perf_counter()
                push(src, name)
                push_times.append(time.perf_counter() - start)
                src.remove(name)
                dst = work / f"dst{run}"
                start = time.perf_counter()
                pulled = pull(ImageStore(str(dst)), name)
                pull_times.append(time.perf_counter() - start)
                assert pulled.manifest_digest == image.manifest_digest
                shutil.rmtree(dst)
            shutil.rmtree(work / f"registry{run}")
    push_s, pull_s = statistics.median(push_times), statistics.median(pull_times)
    return {"bytes": total, "push_s": push_s, "pull_s": pull_s,
            "push_mb_s": total / push_s / 1e6, "pull_mb_s": total / pull_s / 1e6,
            "push_all": push_times, "pull_all": pull_times,
            "docker": importlib.util.find_spec("tests.support.dockerd") is not None
            and shutil.which("dockerd") is not None}


def report(result: dict[str, Any]) -> None:
    print(f"image: {LAYERS} gzip layers, {result['bytes'] / 1e6:.0f} MB compressed")
    print(f"push: longboat {result['push_s']:.2f} s ({result['push_mb_s']:.0f} MB/s), runs "
          + ", ".join(f"{t:.2f}" for t in result["push_all"]))
    print(f"pull: longboat {result['pull_s']:.2f} s ({result['pull_mb_s']:.0f} MB/s), runs "
          + ", ".join(f"{t:.2f}" for t in result["pull_all"]))
    if not result["docker"]:
        print("docker: no dockerd (or no tests/support/dockerd helper): measured longboat "
              "alone")


@pytest.mark.timeout(1800)
def test_registry_pull_push() -> None:
    result = measure()
    report(result)
    assert result["pull_mb_s"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=200)
    args = parser.parse_args()
    report(measure(args.runs, args.size_mb))
    sys.exit(0)
