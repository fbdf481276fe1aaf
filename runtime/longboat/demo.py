"""The README's demo: longboatd, a base image built from the host, and containers driven
by the `longboat` CLI, including an engine restart that the containers live through.
``python -m longboat.demo [--keep]``."""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import time

SOCKET = "/run/longboat/longboat.sock"
BIN = os.path.dirname(sys.executable)


def answers(path: str) -> bool:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    try:
        sock.connect(path)
        sock.sendall(b"GET /_ping HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        return b"OK" in sock.recv(4096)
    except OSError:
        return False
    finally:
        sock.close()


def start_engine() -> subprocess.Popen[bytes]:
    print("$ longboatd &", flush=True)
    os.makedirs("/var/log/longboat", exist_ok=True)
    log = open("/var/log/longboat/longboatd.log", "ab")  # noqa: SIM115 (the daemon's)
    engine = subprocess.Popen([os.path.join(BIN, "longboatd")], stdout=log, stderr=log,
                              start_new_session=True)
    deadline = time.monotonic() + 30
    while not answers(SOCKET):
        if engine.poll() is not None or time.monotonic() > deadline:
            sys.exit("longboatd did not start; see /var/log/longboat/longboatd.log")
        time.sleep(0.05)
    return engine


def stop_engine(engine: subprocess.Popen[bytes]) -> None:
    print("$ kill -TERM $(pidof longboatd)", flush=True)
    engine.send_signal(signal.SIGTERM)
    engine.wait(30)


def lb(*args: str, check: bool = True) -> None:
    print(f"\n$ longboat {' '.join(a if ' ' not in a else repr(a) for a in args)}",
          flush=True)
    result = subprocess.run([os.path.join(BIN, "longboat"), *args], check=False)
    if check and result.returncode != 0:
        sys.exit(f"longboat {args[0]} failed with status {result.returncode}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--keep", action="store_true",
                        help="leave longboatd and the demo container running")
    keep = parser.parse_args().keep
    ours = not answers(SOCKET)
    engine = start_engine() if ours else None
    try:
        lb("version")
        lb("image", "bootstrap", "busybox")
        lb("images")
        lb("run", "--rm", "--memory", "64m", "--hostname", "demo", "busybox", "sh", "-c",
           "echo hello from $(hostname), pid $$; grep -E '^(CapEff|NoNewPrivs)' "
           "/proc/self/status; cat /sys/fs/cgroup/memory/memory.limit_in_bytes 2>/dev/null "
           "|| cat /sys/fs/cgroup/memory.max")
        subprocess.run([os.path.join(BIN, "longboat"), "rm", "-f", "demo-ticker"],
                       capture_output=True, check=False)     # left by an earlier --keep
        lb("run", "-d", "--name", "demo-ticker", "--restart", "always", "busybox", "sh",
           "-c", "i=0; while :; do i=$((i+1)); echo tick $i; sleep 1; done")
        time.sleep(2)
        lb("ps")
        lb("logs", "--tail", "2", "demo-ticker")
        lb("exec", "demo-ticker", "ps")
        lb("top", "demo-ticker")
        lb("stats", "--no-stream", "demo-ticker")
        if engine is not None:
            print("\n==> restarting the engine: the container lives through it", flush=True)
            stop_engine(engine)
            engine = start_engine()
            lb("ps")
            lb("logs", "--tail", "1", "demo-ticker")
        if not keep:
            lb("rm", "-f", "demo-ticker")
    finally:
        if engine is not None and not keep:
            stop_engine(engine)
            # the container monitor outlives the engine by design; nothing runs now
            monitor = "/run/longboat/monitor.sock"
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            try:
                sock.connect(monitor)
                sock.sendall(b'{"op": "shutdown"}\n')
                sock.recv(4096)
            except OSError:
                pass
            finally:
                sock.close()
    print("\n==> done." + (" longboatd still runs (--keep): try `longboat ps`."
                           if keep else " The engine is stopped; its images stay in "
                           "/var/lib/longboat."))
    return 0


if __name__ == "__main__":
    sys.exit(main())
