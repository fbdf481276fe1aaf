"""The README's demo while the engine and the lab are still to come: busybox containers
run by longboat-runtime, showing what isolates them and the runtime's lifecycle.
``python -m longboat.oci.demo``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile

from longboat.image.bootstrap import busybox_rootfs
from longboat.linux import caps
from longboat.oci.spec import default_spec

PROBE = r"""echo "pid of this shell: $$ (PID namespace)"
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


def _bundle(root: str, name: str, args: list[str], hostname: str) -> str:
    bundle = os.path.join(root, name)
    busybox_rootfs(os.path.join(bundle, "rootfs"))
    with open(os.path.join(bundle, "rootfs", "probe.sh"), "w") as f:
        f.write(PROBE)
    config = default_spec()
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["hostname"] = hostname
    config["linux"]["cgroupsPath"] = f"/longboat/{name}-{os.getpid()}"
    config["linux"]["resources"] = {"memory": {"limit": 64 << 20}, "pids": {"limit": 64}}
    with open(os.path.join(bundle, "config.json"), "w") as f:
        json.dump(config, f, indent=2)
    return bundle


def main() -> int:
    runtime = os.path.join(os.path.dirname(sys.executable), "longboat-runtime")
    with tempfile.TemporaryDirectory(prefix="longboat-demo-") as tmp:
        state = os.path.join(tmp, "state")

        def lr(*args: str, quiet: bool = False) -> str:
            shown = " ".join(a if " " not in a else repr(a) for a in args)
            print(f"\n$ longboat-runtime {shown}", flush=True)
            # a file, not a pipe: a detached container keeps its stdout open
            with tempfile.TemporaryFile("w+") as captured:
                subprocess.run([runtime, "--root", state, *args], check=True,
                               stdout=captured)
                captured.seek(0)
                out = captured.read()
            if not quiet:
                print(out, end="", flush=True)
            return out

        print("==> building busybox root filesystems (Debian's busybox-static) in", tmp)
        probe = _bundle(tmp, "probe", ["sh", "/probe.sh"], "longboat-demo")
        server = _bundle(tmp, "server", ["sh", "-c", "while :; do sleep 1; done"], "server")
        cid = f"demo-server-{os.getpid()}"
        print("==> a container in the foreground: what it sees of the host")
        lr("run", "--bundle", probe, f"demo-probe-{os.getpid()}")
        print("(CapEff above: " + ", ".join(
            caps.from_mask(caps.to_mask(default_spec()["process"]["capabilities"]["bounding"],
                                        field="bounding").mask)) + ")")
        print("\n==> a container in the background, and its lifecycle")
        try:
            lr("run", "--detach", "--bundle", server, cid)
            lr("list")
            lr("exec", cid, "sh", "-c", "echo exec into $(hostname): && ps")
            lr("pause", cid)
            print(json.loads(lr("state", cid, quiet=True))["status"])
            lr("resume", cid)
            print(json.loads(lr("state", cid, quiet=True))["status"])
            lr("kill", cid, "KILL")
        finally:
            subprocess.run([runtime, "--root", state, "delete", "--force", cid],
                           capture_output=True, check=False)
        print(f"\n$ longboat-runtime delete {cid}\n"
              "==> done: the containers' namespaces, mounts and cgroups are gone.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
