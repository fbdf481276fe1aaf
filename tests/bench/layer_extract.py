"""Bench: layer extraction throughput, longboat's apply_layer vs GNU tar on the same layer.

Builds a ~200 MB layer with a realistic mix (thousands of small files, some medium and
a few large ones, directories, symlinks, hardlinks), then extracts it into fresh
directories with ``apply_layer`` and with ``tar -xf`` (GNU tar, as root: owners and
modes kept), alternating, and prints the median throughput of each and their ratio.
The goal (DESIGN.md) is at least 0.8x GNU tar. Both a plain and a gzip layer are
measured (``tar -xzf`` runs gzip in a second process).

    python tests/bench/layer_extract.py [--runs 5] [--size-mb 200]
    pytest -m bench tests/bench/layer_extract.py -s
"""

from __future__ import annotations

import argparse
import gzip
import io
import os
import random
import shutil
import statistics
import subprocess
import sys
import tarfile
import tempfile
import time
from pathlib import Path

import pytest

from longboat.image.layer import apply_layer

pytestmark = pytest.mark.bench

GOAL = 0.8


def _content(rng: random.Random, size: int, noise: bytes) -> bytes:
    """Half incompressible, half text-like: layers compress about 2-3x."""
    if size == 0:
        return b""
    start = rng.randrange(0, len(noise) - size // 2 - 1) if size // 2 < len(noise) else 0
    half = noise[start:start + size // 2]
    text = (b"lorem ipsum dolor sit amet %d\n" % rng.randrange(1000)) * (size // 28 + 1)
    return (half + text)[:size]


def build_layer(path: Path, size_mb: int = 200, seed: int = 1) -> dict[str, int]:
    """Write a layer tar of about ``size_mb`` MB; return counts by kind."""
    rng = random.Random(seed)
    noise = rng.randbytes(8 << 20)
    scale = size_mb / 200
    counts = {"dirs": 0, "files": 0, "symlinks": 0, "hardlinks": 0, "bytes": 0}
    mtime = 1_700_000_000
    dirs = ["usr", "usr/lib", "usr/share", "usr/bin", "etc", "var/lib", "opt/app"]
    for i in range(int(1500 * scale)):
        base = rng.choice(dirs)
        dirs.append(f"{base}/d{i}")
    sizes: list[int] = []
    sizes += [int(rng.paretovariate(1.2) * 600) % 16384 for _ in range(int(12000 * scale))]
    sizes += [rng.randrange(64 << 10, 384 << 10) for _ in range(int(400 * scale))]
    sizes += [rng.randrange(6 << 20, 12 << 20) for _ in range(max(1, int(8 * scale)))]
    rng.shuffle(sizes)
    entries: list[tuple[tarfile.TarInfo, bytes]] = []
    seen: set[str] = set()
    for d in dirs:
        parts = d.split("/")
        for depth in range(1, len(parts) + 1):
            sub = "/".join(parts[:depth])
            if sub in seen:
                continue
            seen.add(sub)
            info = tarfile.TarInfo(sub)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, mtime
            entries.append((info, b""))
            counts["dirs"] += 1
    files: list[str] = []
    for i, size in enumerate(sizes):
        name = f"{rng.choice(dirs)}/f{i}.so" if size > 65536 else f"{rng.choice(dirs)}/f{i}"
        info = tarfile.TarInfo(name)
        info.size, info.mode, info.mtime = size, rng.choice((0o644, 0o755)), mtime
        info.uid = info.gid = rng.choice((0, 0, 0, 100))
        entries.append((info, _content(rng, size, noise)))
        files.append(name)
        counts["files"] += 1
        counts["bytes"] += size
    for i in range(int(800 * scale)):
        info = tarfile.TarInfo(f"{rng.choice(dirs)}/l{i}")
        target = rng.choice(files)
        info.type, info.mtime = tarfile.SYMTYPE, mtime
        info.linkname = "/" + target if i % 2 else "../" + target
        entries.append((info, b""))
        counts["symlinks"] += 1
    linked: list[tuple[tarfile.TarInfo, bytes]] = []
    for i in range(int(100 * scale)):
        info = tarfile.TarInfo(f"{rng.choice(dirs)}/h{i}")
        info.type, info.linkname, info.mtime = tarfile.LNKTYPE, rng.choice(files), mtime
        linked.append((info, b""))
        counts["hardlinks"] += 1
    # Directory-walk order, as Docker and BuildKit write layers; hardlinks last, after
    # their targets.
    entries.sort(key=lambda item: item[0].name.split("/"))
    with tarfile.open(path, "w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in entries + linked:
            tar.addfile(info, io.BytesIO(data) if info.isfile() else None)
    return counts


def _ours(layer: Path, dest: Path) -> None:
    with open(layer, "rb") as f:
        apply_layer(f, str(dest))


def _gnu_tar(layer: Path, dest: Path) -> None:
    subprocess.run(["tar", "-xf", str(layer), "-C", str(dest)], check=True)


def _timed(fn: object, layer: Path, dest: Path) -> float:
    dest.mkdir()
    os.sync()  # the previous run's writeback is not charged to this one
    start = time.perf_counter()
    fn(layer, dest)  # type: ignore[operator]
    took = time.perf_counter() - start
    shutil.rmtree(dest)
    return took


def measure(runs: int = 5, size_mb: int = 200, base: str | None = None) -> dict[str, float]:
    tar = shutil.which("tar")
    has_gnu_tar = bool(tar) and b"GNU tar" in subprocess.run(
        [tar or "tar", "--version"], capture_output=True, check=False).stdout
    result: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="lb-bench-layer-", dir=base) as tmp:
        plain = Path(tmp) / "layer.tar"
        counts = build_layer(plain, size_mb)
        compressed = Path(tmp) / "layer.tar.gz"
        with open(plain, "rb") as src, gzip.open(compressed, "wb", compresslevel=6) as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        result["entries"] = sum(v for k, v in counts.items() if k != "bytes")
        result["tar_mb"] = plain.stat().st_size / 1e6
        for label, layer in (("plain", plain), ("gzip", compressed)):
            times: dict[str, list[float]] = {"longboat": [], "gnu_tar": []}
            contenders = [("longboat", _ours)] + ([("gnu_tar", _gnu_tar)] if has_gnu_tar else [])
            for i in range(runs + 1):
                for name, fn in contenders:
                    took = _timed(fn, layer, Path(tmp) / f"out-{name}-{i}")
                    if i:  # the first round warms the page cache
                        times[name].append(took)
            for name, values in times.items():
                if values:
                    result[f"{label}_{name}_mb_s"] = result["tar_mb"] / statistics.median(values)
            if has_gnu_tar:
                result[f"{label}_ratio"] = (result[f"{label}_longboat_mb_s"]
                                            / result[f"{label}_gnu_tar_mb_s"])
    return result


def report(result: dict[str, float], where: str | None = None) -> None:
    print(f"layer: {result['tar_mb']:.0f} MB uncompressed, {result['entries']:.0f} entries, "
          f"extracted under {where or tempfile.gettempdir()}")
    for label in ("plain", "gzip"):
        line = f"{label:5}: longboat {result[f'{label}_longboat_mb_s']:7.1f} MB/s"
        if f"{label}_ratio" in result:
            line += (f", GNU tar {result[f'{label}_gnu_tar_mb_s']:7.1f} MB/s, ratio "
                     f"{result[f'{label}_ratio']:.2f}x (goal: at least {GOAL}x)")
        else:
            line += " (GNU tar is not installed: measured longboat alone)"
        print(line)


@pytest.mark.timeout(3600)  # on a slow disk each extraction takes seconds
def test_layer_extract() -> None:
    result = measure()
    report(result)
    assert result["plain_longboat_mb_s"] > 0


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--size-mb", type=int, default=200)
    parser.add_argument("--dir", help="where to extract (default: the temp directory); "
                        "/dev/shm takes the disk out and shows the extractors' own cost")
    args = parser.parse_args()
    report(measure(args.runs, args.size_mb, args.dir), args.dir)
    sys.exit(0)
