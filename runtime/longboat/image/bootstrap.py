"""Base root filesystems made from what the host has, without a registry.

``busybox_rootfs`` lays out a minimal Linux tree around Debian's static busybox
(package ``busybox-static``): the binary, a symlink per applet, and the handful of files
a shell and common tools expect (/etc/passwd, /etc/group, /tmp ...). The images issue
turns such a tree into a layer and an image (``longboat image bootstrap busybox``).
"""

from __future__ import annotations

import os
import shutil
import subprocess

from longboat.errors import SystemFault

BUSYBOX = "/bin/busybox"
_DIRS = ("bin", "sbin", "usr/bin", "usr/sbin", "etc", "dev", "proc", "sys", "tmp", "root",
         "home", "var", "var/tmp", "run")
_PASSWD = ("root:x:0:0:root:/root:/bin/sh\n"
           "daemon:x:1:1:daemon:/usr/sbin:/bin/false\n"
           "nobody:x:65534:65534:nobody:/nonexistent:/bin/false\n")
_GROUP = "root:x:0:\ndaemon:x:1:\ntty:x:5:\nnogroup:x:65534:\n"


def applets(busybox: str = BUSYBOX) -> list[str]:
    """Paths (relative to /) of every applet the binary provides."""
    try:
        out = subprocess.run([busybox, "--list-full"], check=True, capture_output=True,
                             text=True).stdout
    except FileNotFoundError:
        raise SystemFault(f"{busybox} is missing: install Debian's busybox-static") from None
    return [line.strip() for line in out.splitlines() if line.strip()]


def busybox_rootfs(dest: str, busybox: str = BUSYBOX) -> None:
    """Populate ``dest`` (created if missing) with a busybox root filesystem."""
    os.makedirs(dest, exist_ok=True)
    for d in _DIRS:
        os.makedirs(os.path.join(dest, d), exist_ok=True)
    os.chmod(os.path.join(dest, "tmp"), 0o1777)
    os.chmod(os.path.join(dest, "root"), 0o700)
    shutil.copy2(busybox, os.path.join(dest, "bin/busybox"))
    for applet in applets(busybox):
        if applet == "bin/busybox":
            continue
        link = os.path.join(dest, applet)
        os.makedirs(os.path.dirname(link), exist_ok=True)
        if not os.path.lexists(link):
            os.symlink("/bin/busybox", link)
    for name, text in (("etc/passwd", _PASSWD), ("etc/group", _GROUP),
                       ("etc/hostname", "busybox\n")):
        with open(os.path.join(dest, name), "w") as f:
            f.write(text)
