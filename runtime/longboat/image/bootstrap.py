"""Base root filesystems made from what the host has, without a registry.

``busybox_rootfs`` lays out a minimal Linux tree around Debian's static busybox
(package ``busybox-static``): the binary, a symlink per applet, and the handful of files
a shell and common tools expect (/etc/passwd, /etc/group, /tmp ...).
``bootstrap_image`` turns such a tree, or a ``debootstrap --variant=minbase`` one, into a
one-layer image with reproducible digests (``longboat image bootstrap busybox``).
"""

from __future__ import annotations

import datetime
import email.utils
import glob
import os
import re
import shutil
import stat
import subprocess
import tempfile
from collections.abc import Callable
from typing import Any

from longboat.errors import InvalidArgument, SystemFault
from longboat.image import reference
from longboat.image.layer import make_layer
from longboat.image.store import DOCKER_LAYER_GZIP, Image, ImageStore
from longboat.linux import libc

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


# --------------------------------------------------------------------------------------
# Images: a rootfs made into one reproducible layer, a config and a local tag

#: Where the ``run`` command looks for programs (Docker's default for Linux images).
DEFAULT_PATH = "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
DEFAULT_MIRROR = "http://deb.debian.org/debian"
DEFAULT_SUITE = "bookworm"
_ARCHITECTURES = {"x86_64": "amd64", "aarch64": "arm64", "armv7l": "arm", "i686": "386",
                  "ppc64le": "ppc64le", "s390x": "s390x", "riscv64": "riscv64"}
_DEB_ARCHITECTURES = {"amd64": "amd64", "arm64": "arm64", "arm": "armhf", "386": "i386",
                      "ppc64le": "ppc64el", "s390x": "s390x", "riscv64": "riscv64"}
_BUSYBOX_BANNER = re.compile(r"BusyBox v(\S+) \(([^)]*)\)")
_SUITE = re.compile(r"[a-z][a-z0-9-]{0,30}")

Progress = Callable[[str], None]


def bootstrap_image(store: ImageStore, name: str, *, progress: Progress | None = None,
                    epoch: int | None = None, busybox: str = BUSYBOX,
                    mirror: str | None = None) -> Image:
    """Build a base image without a registry and tag it in ``store``.

    ``busybox[:TAG]``: Debian's static busybox with its applet links. Without a tag it
    is tagged ``latest`` and the busybox version (``1.35.0``); a tag given wins.
    ``debian[:SUITE]`` (default bookworm): ``debootstrap --variant=minbase`` from the
    mirror apt uses (or ``mirror``); without a tag it is tagged with the suite and
    ``latest``.

    Layer digests and the image ID are reproducible for the same inputs (docs/
    snapshots.md): every mtime is clamped to ``epoch`` (default ``SOURCE_DATE_EPOCH``
    from the environment, else the busybox binary's mtime or the Debian archive's
    Release date), owners are 0:0 for busybox, entries are sorted and gzip carries no
    timestamp; ``created`` is ``epoch`` too.
    """
    ref = reference.parse(name)
    if ref.digest is not None:
        raise InvalidArgument(f"cannot bootstrap {name!r}: a digest names existing content")
    tagged = ":" in name.partition("@")[0].rpartition("/")[2]
    recipe = ref.path.rpartition("/")[2]
    say = progress or (lambda message: None)
    if epoch is None and os.environ.get("SOURCE_DATE_EPOCH", "").isdigit():
        epoch = int(os.environ["SOURCE_DATE_EPOCH"])
    with tempfile.TemporaryDirectory(prefix="bootstrap-", dir=store.root) as work:
        tree = os.path.join(work, "rootfs")
        if recipe == "busybox":
            version, package = busybox_version(busybox)
            say(f"busybox {version}: laying out the root filesystem")
            busybox_rootfs(tree, busybox)
            if epoch is None:
                epoch = int(os.stat(busybox).st_mtime)
            _normalise_busybox(tree)
            tags = [str(ref.tag)] if tagged else ["latest", version]
            created_by = f"longboat image bootstrap busybox (busybox-static {package})"
            cmd = ["sh"]
        elif recipe == "debian":
            suite = str(ref.tag) if tagged else DEFAULT_SUITE
            mirror = mirror or apt_mirror(suite)
            say(f"debian {suite}: debootstrap --variant=minbase from {mirror}")
            release_date = debootstrap(tree, suite, mirror, progress=say)
            if epoch is None:
                epoch = release_date
            _normalise_debian(tree, epoch, mirror, suite)
            tags = [suite] if tagged else [suite, "latest"]
            created_by = (f"longboat image bootstrap debian:{suite} (debootstrap "
                          f"--variant=minbase, {mirror})")
            cmd = ["bash"]
        else:
            raise InvalidArgument(f"cannot bootstrap {name!r}: known base images are "
                                  "busybox[:TAG] and debian[:SUITE]")
        _clamp_mtimes(tree, epoch)
        say("writing the layer")
        layer, diff_id = _store_layer(store, tree, work)
    created = _iso(epoch)
    config: dict[str, Any] = {
        "architecture": architecture(), "os": "linux", "created": created,
        "config": {"Env": [DEFAULT_PATH], "Cmd": cmd},
        "rootfs": {"type": "layers", "diff_ids": [diff_id]},
        "history": [{"created": created, "created_by": created_by}],
    }
    names = [str(ref.with_tag(tag)) for tag in tags]
    image = store.create(config, [layer], names)
    say(f"{image.id}: tagged {', '.join(reference.parse(n).familiar for n in names)}")
    return image


def architecture() -> str:
    machine = os.uname().machine
    try:
        return _ARCHITECTURES[machine]
    except KeyError:
        raise SystemFault(f"no OCI architecture name for this machine ({machine})") from None


def busybox_version(busybox: str = BUSYBOX) -> tuple[str, str]:
    """(upstream version, Debian package version) from the binary's own banner."""
    try:
        out = subprocess.run([busybox, "--help"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        raise SystemFault(f"{busybox} is missing: install Debian's busybox-static") from None
    match = _BUSYBOX_BANNER.search(out)
    if match is None:
        raise SystemFault(f"{busybox} does not say which BusyBox version it is")
    return match.group(1), match.group(2).removeprefix("Debian ")


def _normalise_busybox(tree: str) -> None:
    """What busybox_rootfs left to the umask and the caller's uid, made fixed."""
    special = {"tmp": 0o1777, "root": 0o700, "var/tmp": 0o1777}
    for top, dirs, files in os.walk(tree):
        for entry in dirs + files:
            path = os.path.join(top, entry)
            rel = os.path.relpath(path, tree)
            os.lchown(path, 0, 0)
            st = os.lstat(path)
            if stat.S_ISDIR(st.st_mode):
                os.chmod(path, special.get(rel, 0o755))
            elif stat.S_ISREG(st.st_mode):
                os.chmod(path, 0o755 if rel == "bin/busybox" else 0o644)


def _clamp_mtimes(tree: str, epoch: int) -> None:
    """No mtime later than ``epoch`` (what a run today adds); older ones (from a
    package) stay. Symlinks themselves, never their targets."""
    limit = epoch * 1_000_000_000
    for top, dirs, files in os.walk(tree):
        for entry in dirs + files:
            path = os.path.join(top, entry)
            if os.lstat(path).st_mtime_ns > limit:
                os.utime(path, ns=(limit, limit), follow_symlinks=False)


def _store_layer(store: ImageStore, tree: str, work: str) -> tuple[dict[str, Any], str]:
    """(layer descriptor, diff ID) of ``tree`` as a gzip layer in the content store."""
    with tempfile.TemporaryFile(dir=work) as out:
        result = make_layer(tree, out, compression="gzip")
        out.seek(0)
        digest = store.content.ingest(out, result.digest, result.size)
    return {"mediaType": DOCKER_LAYER_GZIP, "size": result.size, "digest": digest}, \
        result.diff_id


def _iso(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")


# -- Debian ----------------------------------------------------------------------------

def apt_mirror(suite: str = DEFAULT_SUITE, etc: str = "/etc/apt") -> str:
    """The Debian mirror apt is configured with (one-line and deb822 sources), for
    ``suite``; Debian's own redirector when none names it."""
    entries: list[tuple[str, list[str]]] = []
    candidates = [os.path.join(etc, "sources.list")]
    parts = os.path.join(etc, "sources.list.d")
    if os.path.isdir(parts):
        candidates += [os.path.join(parts, n) for n in sorted(os.listdir(parts))]
    for path in candidates:
        try:
            with open(path) as f:
                text = f.read()
        except (FileNotFoundError, IsADirectoryError):
            continue
        if path.endswith(".list"):
            for line in text.splitlines():
                words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
                if len(words) >= 3 and words[0] == "deb":
                    entries.append((words[1], [words[2]]))
        elif path.endswith(".sources"):
            for stanza in re.split(r"\n\s*\n", text):
                fields: dict[str, str] = {}
                for line in stanza.splitlines():
                    if ":" in line and not line.startswith(("#", " ")):
                        key, _, value = line.partition(":")
                        fields[key.strip().lower()] = value.strip()
                if "deb" in fields.get("types", "").split() \
                        and fields.get("enabled", "yes") != "no":
                    for uri in fields.get("uris", "").split():
                        entries.append((uri, fields.get("suites", "").split()))
    for uri, suites in entries:
        if suite in suites and "security" not in uri:
            return uri.rstrip("/")
    return DEFAULT_MIRROR


def debootstrap(tree: str, suite: str, mirror: str, *,
                progress: Progress | None = None) -> int:
    """``debootstrap --variant=minbase`` into ``tree``; the archive's Release date."""
    if not _SUITE.fullmatch(suite):
        raise InvalidArgument(f"invalid Debian suite {suite!r}")
    if not re.fullmatch(r"(https?|file)://[^\s,]+", mirror):
        raise InvalidArgument(f"invalid mirror URL {mirror!r}")
    program = shutil.which("debootstrap")
    if program is None:
        if progress is not None:
            progress("installing debootstrap with apt-get")
        _run(["apt-get", "install", "-y", "--no-install-recommends", "debootstrap"],
             "apt-get install debootstrap", env={**os.environ,
                                                 "DEBIAN_FRONTEND": "noninteractive"})
        program = shutil.which("debootstrap") or "/usr/sbin/debootstrap"
    if not os.path.exists(os.path.join("/usr/share/debootstrap/scripts", suite)):
        raise InvalidArgument(f"debootstrap does not know the suite {suite!r}")
    try:
        _run([program, "--variant=minbase",
              f"--arch={_DEB_ARCHITECTURES[architecture()]}", suite, tree, mirror],
             "debootstrap")
    finally:
        # a failed debootstrap can leave /proc or /sys mounted in the tree: never let the
        # caller's clean-up walk into them
        _unmount_below(tree)
    return _release_date(tree)


def _unmount_below(tree: str) -> None:
    prefix = os.path.realpath(tree) + "/"
    with open("/proc/self/mountinfo") as f:
        points = [line.split()[4] for line in f]
    points = [p.replace("\\040", " ") for p in points if p.startswith(prefix)]
    for point in sorted(points, key=len, reverse=True):
        try:
            libc.umount2(point, libc.MNT_DETACH)
        except OSError as exc:
            raise SystemFault(f"unmounting {point} left by debootstrap: {exc}") from exc


def _run(argv: list[str], what: str, env: dict[str, str] | None = None) -> None:
    result = subprocess.run(argv, capture_output=True, text=True, env=env,
                            stdin=subprocess.DEVNULL)
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise SystemFault(f"{what} failed (exit {result.returncode}):\n{tail}")


def _release_date(tree: str) -> int:
    lists = os.path.join(tree, "var/lib/apt/lists")
    for name in sorted(os.listdir(lists)) if os.path.isdir(lists) else []:
        if name.endswith(("_Release", "_InRelease")):
            with open(os.path.join(lists, name), errors="replace") as f:
                for line in f:
                    if line.startswith("Date:"):
                        when = email.utils.parsedate_to_datetime(line[5:].strip())
                        return int(when.timestamp())
    raise SystemFault("debootstrap left no Release file to date the image by")


#: What a debootstrap run leaves that depends on the run, not on the packages.
_VOLATILE_GLOBS = (
    "var/log/**/*", "var/cache/apt/**/*", "var/lib/apt/lists/**/*",
    "var/cache/ldconfig/aux-cache", "var/cache/debconf/*-old", "var/lib/dpkg/*-old",
    "etc/*-", "etc/machine-id", "var/lib/dbus/machine-id", "etc/resolv.conf",
    "etc/hostname", "dev/*", "run/mount/utab", "debootstrap",
)


def _normalise_debian(tree: str, epoch: int, mirror: str, suite: str) -> None:
    for pattern in _VOLATILE_GLOBS:
        for path in sorted(glob.glob(os.path.join(tree, pattern), recursive=True),
                           reverse=True):
            if os.path.islink(path) or not os.path.isdir(path):
                os.unlink(path)
            elif pattern.startswith("dev/") or pattern == "debootstrap":
                shutil.rmtree(path)
    # shadow's "last changed" day is the day of the run
    day = str(epoch // 86400)
    for name in ("etc/shadow",):
        path = os.path.join(tree, name)
        if os.path.exists(path):
            with open(path) as f:
                lines = f.read().splitlines()
            out = []
            for line in lines:
                fields = line.split(":")
                if len(fields) > 2 and fields[2]:
                    fields[2] = day
                out.append(":".join(fields))
            st = os.stat(path)
            with open(path, "w") as f:
                f.write("\n".join(out) + "\n")
            os.chmod(path, stat.S_IMODE(st.st_mode))
    with open(os.path.join(tree, "etc/hostname"), "w") as f:
        f.write("localhost\n")
    with open(os.path.join(tree, "etc/apt/sources.list"), "w") as f:
        f.write(f"deb {mirror} {suite} main\n")
