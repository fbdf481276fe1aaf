"""The README's demo: a lab of hosts on this machine, Longboat installed and started on
each by Ansible (playbooks/engine.yml), an application on every host by Ansible
(playbooks/demo-app.yml: a bootstrapped base image, a built image, a network, a volume, a
published web server), traffic between the hosts, the CLI on one host, an engine restart
that the containers live through, and a second run of the playbooks that changes nothing.
``python -m longboat.demo [--nodes N] [--keep]``."""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import time
from pathlib import Path

BIN = os.path.dirname(sys.executable)
TOP = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PLAYBOOKS = os.path.join(TOP, "playbooks")
LAB = "demo"
INSTALLED = "/opt/longboat/bin/longboat"    # the engine role's default longboat_venv


def say(text: str) -> None:
    print(f"\n==> {text}", flush=True)


def show(argv: list[str]) -> None:
    words = [os.path.basename(argv[0]), *argv[1:]]
    print("$ " + " ".join(w if w and not re.search(r"[\s'\"$;|&]", w) else repr(w)
                          for w in words), flush=True)


def run(argv: list[str], *, capture: bool = False, check: bool = True,
        env: dict[str, str] | None = None) -> str:
    show(argv)
    done = subprocess.run(argv, check=False, text=True, env=env,
                          stdout=subprocess.PIPE if capture else None)
    if capture:
        print(done.stdout, end="", flush=True)
    if check and done.returncode != 0:
        sys.exit(f"{os.path.basename(argv[0])} failed with status {done.returncode}")
    return done.stdout if capture else ""


def longboat(*args: str, capture: bool = False, check: bool = True) -> str:
    return run([os.path.join(BIN, "longboat"), *args], capture=capture, check=check)


def on(node: str, *args: str, capture: bool = False, check: bool = True) -> str:
    """``longboat`` on a lab host, as the engine role installed it there (the lab's
    hosts share this machine's /opt), through ``lab exec``."""
    return longboat("lab", "exec", "--name", LAB, node, "--", INSTALLED, *args,
                    capture=capture, check=check)


def playbook(inventory: str, *names: str) -> dict[str, int]:
    """Run playbooks; the PLAY RECAP's changed count per host."""
    env = {**os.environ, "ANSIBLE_FORCE_COLOR": "0", "ANSIBLE_NOCOLOR": "1",
           "ANSIBLE_STDOUT_CALLBACK": "default", "ANSIBLE_DEPRECATION_WARNINGS": "0"}
    out = run([os.path.join(BIN, "ansible-playbook"), "-i", inventory,
               *(os.path.join(PLAYBOOKS, n) for n in names)], capture=True, env=env)
    # each playbook prints a recap of the whole run so far: the last one counts
    return {host: int(count) for host, count in
            re.findall(r"^(\S+)\s+:\s+ok=\d+\s+changed=(\d+)", out, re.M)}


def fetch(node: str, address: str, port: int = 8080) -> str:
    """The page at address:port, asked from a lab host (its network namespace)."""
    code = (f"import urllib.request; print(urllib.request.urlopen('http://{address}:{port}/',"
            " timeout=10).read().decode().strip())")
    return longboat("lab", "exec", "--name", LAB, node, "--", sys.executable, "-c", code,
                    capture=True).strip()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, default=3, help="lab hosts (default 3)")
    parser.add_argument("--keep", action="store_true",
                        help=f"leave the lab '{LAB}' running (remove it with "
                             f"`longboat lab down --name {LAB}`)")
    args = parser.parse_args()
    if args.nodes < 2:
        parser.error("--nodes: at least 2 (traffic goes from one host to another)")
    nodes = [f"{LAB}-{i}" for i in range(1, args.nodes + 1)]
    ok = False
    try:
        say(f"a lab of {args.nodes} hosts on this machine: each its own network, mount and "
            "UTS namespaces, an sshd and an engine")
        longboat("lab", "up", "--name", LAB, "--nodes", str(args.nodes))
        inventory = f"/var/lib/longboat-lab/{LAB}/inventory.yml"
        addresses = dict(re.findall(r"^\s+(" + LAB + r"-\d+):\n\s+ansible_host: \"?([\d.]+)",
                                    Path(inventory).read_text(), re.M))

        say("Ansible installs Longboat on every host and (re)starts its engine "
            "(role longboat.core.engine), then deploys the application "
            "(modules longboat.core.image, network, volume, container)")
        started = time.monotonic()
        playbook(inventory, "engine.yml", "demo-app.yml")
        first = time.monotonic() - started

        first_node, other = nodes[0], nodes[1]
        say(f"from {other}, the web server on {first_node} through its published port")
        fetch(other, addresses[first_node])

        say(f"the longboat CLI on {first_node}")
        on(first_node, "ps")
        on(first_node, "images")
        on(first_node, "network", "ls")
        on(first_node, "volume", "ls")
        on(first_node, "port", "demo-web")
        say("the embedded DNS: a container finds the server by its network alias")
        on(first_node, "run", "--rm", "--network", "demo-net", "busybox", "nslookup", "web")
        on(first_node, "exec", "demo-web", "cat", "/www/index.html")

        say(f"{first_node}'s engine restarts; its containers live through it")
        on(first_node, "system", "service", "restart")
        on(first_node, "ps", "--format", "{{.Names}}\t{{.Status}}\t{{.Ports}}")
        fetch(other, addresses[first_node])

        say("the playbooks again: nothing to change")
        started = time.monotonic()
        changed = playbook(inventory, "engine.yml", "demo-app.yml")
        second = time.monotonic() - started
        print(f"first run {first:.1f} s; second run {second:.1f} s, changed per host: "
              + ", ".join(f"{h}={n}" for h, n in sorted(changed.items())), flush=True)
        if any(changed.values()):
            sys.exit("the second run changed something: the playbooks are not idempotent")
        ok = True
    finally:
        if not args.keep:
            say("taking the lab down: every namespace, link, mount, cgroup and process "
                "it made goes")
            longboat("lab", "down", "--name", LAB, "--purge", check=False)
    print("\n==> done." + (f" The lab '{LAB}' still runs (--keep): `longboat lab ls`, "
                           f"`longboat lab ssh --name {LAB} {LAB}-1`." if args.keep else "")
          if ok else "\n==> the demo stopped early (see above).")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
