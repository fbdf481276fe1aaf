"""Bench: create + start + wait + delete of a `/bin/true` bundle, longboat-runtime vs runc.

Both runtimes run the same bundle through their command lines, alternating, and the
median of each is compared. The goal (DESIGN.md) is at most 2x runc.

    python tests/bench/runtime_start.py [--runs 30]
    pytest -m bench tests/bench/runtime_start.py -s
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pytest

from longboat.image.bootstrap import busybox_rootfs
from longboat.oci.spec import default_spec

pytestmark = pytest.mark.bench
PR_SET_CHILD_SUBREAPER = 36


def _subreaper() -> None:
    import ctypes

    ctypes.CDLL(None).prctl(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)


def ours() -> str:
    return str(Path(sys.executable).parent / "longboat-runtime")


def make_bundle(path: Path) -> None:
    busybox_rootfs(str(path / "rootfs"))
    config = default_spec()
    config["process"]["terminal"] = False
    config["process"]["args"] = ["/bin/true"]
    config["linux"]["cgroupsPath"] = "/longboat-bench/start"
    (path / "config.json").write_text(json.dumps(config))


def cycle(runtime: str, root: str, bundle: Path, cid: str) -> float:
    pid_file = bundle / f"{cid}.pid"
    start = time.perf_counter()
    subprocess.run([runtime, "--root", root, "create", "--bundle", str(bundle),
                    "--pid-file", str(pid_file), cid], check=True)
    pid = int(pid_file.read_text())
    subprocess.run([runtime, "--root", root, "start", cid], check=True)
    _, status = os.waitpid(pid, 0)  # we are the subreaper of the container's init
    subprocess.run([runtime, "--root", root, "delete", cid], check=True)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"{runtime}: /bin/true exited with {status}")
    return elapsed


def library_cycle(runtime: object, bundle: Path, cid: str) -> float:
    """The same cycle through the library, as the engine runs it (no new interpreter)."""
    from longboat.oci.container import Runtime

    assert isinstance(runtime, Runtime)
    start = time.perf_counter()
    created = runtime.create(cid, str(bundle))
    runtime.start(cid)
    os.waitpid(created.pid, 0)
    runtime.delete(cid)
    return time.perf_counter() - start


def measure(runs: int) -> dict[str, float]:
    _subreaper()
    runc = shutil.which("runc")
    with tempfile.TemporaryDirectory(prefix="lb-bench-") as tmp:
        bundle = Path(tmp) / "bundle"
        make_bundle(bundle)
        roots = {"longboat": os.path.join(tmp, "lb-state"), "runc": os.path.join(tmp, "runc-state")}
        times: dict[str, list[float]] = {"longboat": [], "runc": [], "library": []}
        from longboat.oci.container import Runtime

        library = Runtime(os.path.join(tmp, "lib-state"))
        try:
            for i in range(runs + 2):
                for name, binary in (("longboat", ours()), ("runc", runc)):
                    if binary is None:
                        continue
                    took = cycle(binary, roots[name], bundle, f"bench-{name}-{i}")
                    if i >= 2:  # the first rounds warm the page cache
                        times[name].append(took)
                took = library_cycle(library, bundle, f"bench-lib-{i}")
                if i >= 2:
                    times["library"].append(took)
        finally:
            for sub in ("cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio",
                        "pids", "systemd", "unified", ""):
                for leaf in ("longboat-bench/start", "longboat-bench"):
                    try:
                        os.rmdir(os.path.join("/sys/fs/cgroup", sub, leaf))
                    except OSError:
                        pass
    result = {f"{k}_median_ms": statistics.median(v) * 1000 for k, v in times.items() if v}
    if "runc_median_ms" in result:
        result["ratio"] = result["longboat_median_ms"] / result["runc_median_ms"]
    return result


def report(result: dict[str, float]) -> None:
    print(f"longboat-runtime: {result['longboat_median_ms']:.1f} ms median "
          "(create+start+wait+delete of /bin/true)")
    print(f"  as a library:   {result['library_median_ms']:.1f} ms median "
          "(the same cycle in-process, as the engine runs it)")
    if "ratio" in result:
        print(f"runc:             {result['runc_median_ms']:.1f} ms median")
        print(f"ratio:            {result['ratio']:.2f}x runc (goal: at most 2x); "
              f"as a library {result['library_median_ms'] / result['runc_median_ms']:.2f}x")
    else:
        print("runc is not installed: measured longboat-runtime alone")


def test_runtime_start() -> None:
    result = measure(15)
    report(result)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=30)
    report(measure(parser.parse_args().runs))
