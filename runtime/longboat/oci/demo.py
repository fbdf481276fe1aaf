"""The README's demo while the engine and the lab are still to come: a busybox container
run by longboat-runtime, showing what isolates it. ``python -m longboat.oci.demo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from longboat.image.bootstrap import busybox_rootfs
from longboat.oci.spec import default_spec

PROBE = r"""
echo "== inside a longboat container"
echo "pid of this shell: $$ (PID namespace)"
echo "hostname: $(hostname) (UTS namespace)"
echo "network interfaces: $(ls /sys/class/net | tr '\n' ' ')(network namespace)"
echo "memory limit: $(cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null \
    || cat /sys/fs/cgroup/memory.max) bytes (cgroup)"
echo "pids limit: $(cat /sys/fs/cgroup/pids/pids.max 2>/dev/null \
    || cat /sys/fs/cgroup/pids.max) (cgroup)"
touch /written 2>/dev/null && echo "root filesystem: writable" \
    || echo "root filesystem: read-only"
grep -E '^(CapEff|NoNewPrivs)' /proc/self/status
echo "processes it can see:"; ps
"""


def main() -> int:
    runtime = os.path.join(os.path.dirname(sys.executable), "longboat-runtime")
    with tempfile.TemporaryDirectory(prefix="longboat-demo-") as bundle:
        print(f"==> building a busybox root filesystem in {bundle}/rootfs")
        busybox_rootfs(os.path.join(bundle, "rootfs"))
        config = default_spec()
        config["process"]["terminal"] = False
        config["process"]["args"] = ["sh", "-c", PROBE]
        config["hostname"] = "longboat-demo"
        config["linux"]["cgroupsPath"] = f"/longboat/demo-{os.getpid()}"
        config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
        with open(os.path.join(bundle, "config.json"), "w") as f:
            json.dump(config, f, indent=2)
        print("==> longboat-runtime run --bundle", bundle, f"demo-{os.getpid()}")
        result = subprocess.run([runtime, "run", "--bundle", bundle, f"demo-{os.getpid()}"],
                                check=False)
        print(f"==> the container exited with status {result.returncode}; "
              "its namespaces, mounts and cgroup are gone")
        return result.returncode


if __name__ == "__main__":
    sys.exit(main())
