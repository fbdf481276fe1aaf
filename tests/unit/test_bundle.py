"""Docker container definition -> OCI config (longboat.engine.bundle).

A table of Docker inputs (ContainerConfig, HostConfig, image config) and the OCI fields
they must give, after moby 20.10's createSpec; every config the table produces must pass
our validator and the official OCI runtime schema. A second table holds bad input and the
message Docker gives for it. The user is resolved from a fake rootfs, including hostile
ones (a symlinked /etc/passwd pointing out of the rootfs, a FIFO).
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from longboat.engine import bundle as bundle_mod
from longboat.engine.bundle import DEFAULT_CAPABILITIES, HostInfo, oci_config
from longboat.engine.bundle_user import exec_user
from longboat.errors import InvalidArgument, LongboatError, NotFound
from longboat.linux import caps
from longboat.oci.validate import validate

pytestmark = pytest.mark.unit

SCHEMA_DIR = Path(__file__).resolve().parents[2].parent / "shared" / "specs" / "oci-runtime-schema"
CID = "c0ffee1234"
HOST = HostInfo(cgroup_version=1, swap_limit=True, cpus=4, online_cpus="0-3",
                online_mems="0")
MiB = 1 << 20

PASSWD = """\
root:x:0:0:root:/root:/bin/sh
daemon:x:1:1:daemon:/usr/sbin:/bin/false
# a comment, and a line with a broken uid that must not count as root
broken:x:abc:0::/:/bin/sh
app:x:1000:1000:App:/home/app:/bin/sh
dup:x:1001:1001::/:/bin/sh
dup:x:1002:1002::/:/bin/sh
"""
GROUP = """\
root:x:0:
daemon:x:1:app
wheel:x:10:root,app
audio:x:29:app
app:x:1000:
staff:x:50:
"""


@pytest.fixture(scope="module")
def rootfs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("bundle") / "rootfs"
    (root / "etc").mkdir(parents=True)
    (root / "etc" / "passwd").write_text(PASSWD)
    (root / "etc" / "group").write_text(GROUP)
    return root


@pytest.fixture(scope="module")
def init_binary(tmp_path_factory: pytest.TempPathFactory) -> str:
    path = tmp_path_factory.mktemp("init") / "tini-static"
    path.write_bytes(b"\x7fELF")
    return str(path)


@pytest.fixture(scope="module")
def config_schema() -> Any:
    if not SCHEMA_DIR.is_dir():
        pytest.skip(f"OCI runtime schema folder {SCHEMA_DIR} is absent")
    jsonschema = pytest.importorskip("jsonschema")
    referencing = pytest.importorskip("referencing")
    from referencing.jsonschema import DRAFT4

    registry = referencing.Registry().with_resources(
        (path.name, referencing.Resource.from_contents(json.loads(path.read_text()),
                                                      default_specification=DRAFT4))
        for path in SCHEMA_DIR.glob("*.json"))
    schema = json.loads((SCHEMA_DIR / "config-schema.json").read_text())
    return jsonschema.Draft4Validator(schema, registry=registry)


def make(rootfs: Path, config: dict[str, Any] | None = None,
         host_config: dict[str, Any] | None = None, image: dict[str, Any] | None = None,
         **kwargs: Any) -> dict[str, Any]:
    kwargs.setdefault("host", HOST)
    kwargs.setdefault("data_root", "/var/lib/longboat")
    kwargs.setdefault("hostname", "c0ffee1234")
    if image is None:
        image = {"Cmd": ["sh"]}
    return oci_config(CID, {} if config is None else config,
                      {} if host_config is None else host_config, image, str(rootfs), **kwargs)


def mount(spec: dict[str, Any], destination: str) -> dict[str, Any] | None:
    found = [m for m in spec["mounts"] if m["destination"] == destination]
    assert len(found) <= 1, f"{destination} mounted {len(found)} times"
    return found[0] if found else None


def ns(spec: dict[str, Any]) -> list[str]:
    return [n["type"] for n in spec["linux"]["namespaces"]]


Getter = Callable[[dict[str, Any]], Any]

ALL_CAPS = caps.from_mask(caps.ALL_MASK())
SHM = ["nosuid", "noexec", "nodev", "mode=1777"]

# (id, Config, HostConfig, image config, getter, expected)
CASES: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None, Getter, Any]] = [
    # ---- command ----
    ("image-cmd", {}, {}, {"Cmd": ["sh", "-c", "x"]}, lambda s: s["process"]["args"],
     ["sh", "-c", "x"]),
    ("image-entrypoint-and-cmd", {}, {}, {"Entrypoint": ["/ep"], "Cmd": ["a"]},
     lambda s: s["process"]["args"], ["/ep", "a"]),
    ("cmd-overrides-image-cmd-keeps-entrypoint", {"Cmd": ["b"]}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"], ["/ep", "b"]),
    ("entrypoint-drops-image-cmd", {"Entrypoint": ["/new"]}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"], ["/new"]),
    ("entrypoint-and-cmd", {"Entrypoint": ["/new", "-x"], "Cmd": ["b"]}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"],
     ["/new", "-x", "b"]),
    ("entrypoint-empty-string-clears", {"Entrypoint": [""], "Cmd": ["echo"]}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"], ["echo"]),
    ("entrypoint-empty-list-keeps-image-cmd", {"Entrypoint": []}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"], ["a"]),
    ("entrypoint-null-inherits", {"Entrypoint": None, "Cmd": None}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["a"]}, lambda s: s["process"]["args"], ["/ep", "a"]),
    ("cmd-as-string-is-strslice", {"Cmd": "echo hi"}, {}, {},
     lambda s: s["process"]["args"], ["echo hi"]),
    # ---- env ----
    ("env-defaults", {}, {}, None, lambda s: s["process"]["env"],
     [f"PATH={bundle_mod.DEFAULT_PATH}", "HOSTNAME=c0ffee1234"]),
    ("env-tty-term", {"Tty": True}, {}, None, lambda s: s["process"]["env"][-1],
     "TERM=xterm"),
    ("env-merge", {"Env": ["A=mine", "B", "C=c=d"]}, {},
     {"Cmd": ["sh"], "Env": ["PATH=/img", "A=img", "B=img", "D=img"]},
     lambda s: s["process"]["env"], ["PATH=/img", "HOSTNAME=c0ffee1234", "A=mine", "C=c=d",
                                     "D=img"]),
    ("env-user-path-wins", {"Env": ["PATH=/mine"]}, {}, {"Cmd": ["sh"], "Env": ["PATH=/i"]},
     lambda s: s["process"]["env"][0], "PATH=/mine"),
    ("env-unset-default", {"Env": ["HOSTNAME"]}, {}, None, lambda s: s["process"]["env"],
     [f"PATH={bundle_mod.DEFAULT_PATH}"]),
    ("env-override-term", {"Tty": True, "Env": ["TERM=vt100"]}, {}, None,
     lambda s: s["process"]["env"][2], "TERM=vt100"),
    # ---- working dir ----
    ("cwd-default", {}, {}, None, lambda s: s["process"]["cwd"], "/"),
    ("cwd-image", {}, {}, {"Cmd": ["sh"], "WorkingDir": "/srv"},
     lambda s: s["process"]["cwd"], "/srv"),
    ("cwd-cleaned", {"WorkingDir": "/a/../b/"}, {}, {"Cmd": ["sh"], "WorkingDir": "/srv"},
     lambda s: s["process"]["cwd"], "/b"),
    # ---- user ----
    ("user-default-root-with-its-groups", {}, {}, None, lambda s: s["process"]["user"],
     {"uid": 0, "gid": 0, "additionalGids": [0, 10]}),
    ("user-by-name", {"User": "app"}, {}, None, lambda s: s["process"]["user"],
     {"uid": 1000, "gid": 1000, "additionalGids": [1000, 1, 10, 29]}),
    ("user-by-uid-known", {"User": "1000"}, {}, None, lambda s: s["process"]["user"],
     {"uid": 1000, "gid": 1000, "additionalGids": [1000, 1, 10, 29]}),
    ("user-and-group-names", {"User": "app:staff"}, {}, None,
     lambda s: s["process"]["user"], {"uid": 1000, "gid": 50, "additionalGids": [50]}),
    ("user-uid-gid-unknown", {"User": "4242:4343"}, {}, None,
     lambda s: s["process"]["user"], {"uid": 4242, "gid": 4343, "additionalGids": [4343]}),
    ("user-uid-unknown-gets-gid-0", {"User": "4242"}, {}, None,
     lambda s: s["process"]["user"], {"uid": 4242, "gid": 0, "additionalGids": [0]}),
    ("user-group-only", {"User": ":wheel"}, {}, None, lambda s: s["process"]["user"],
     {"uid": 0, "gid": 10, "additionalGids": [10]}),
    ("user-first-entry-wins", {"User": "dup"}, {}, None,
     lambda s: s["process"]["user"]["uid"], 1001),
    ("user-from-image", {}, {}, {"Cmd": ["sh"], "User": "daemon"},
     lambda s: s["process"]["user"], {"uid": 1, "gid": 1, "additionalGids": [1]}),
    ("user-group-add", {"User": "app"}, {"GroupAdd": ["audio", "777", "staff"]}, None,
     lambda s: s["process"]["user"]["additionalGids"], [1000, 1, 10, 29, 777, 50]),
    ("user-non-root-bounding-only", {"User": "app"}, {}, None,
     lambda s: s["process"]["capabilities"], {"bounding": list(DEFAULT_CAPABILITIES)}),
    # ---- capabilities ----
    ("caps-default", {}, {}, None, lambda s: s["process"]["capabilities"],
     {"bounding": list(DEFAULT_CAPABILITIES), "effective": list(DEFAULT_CAPABILITIES),
      "permitted": list(DEFAULT_CAPABILITIES)}),
    ("caps-drop-all-add-one", {}, {"CapDrop": ["ALL"], "CapAdd": ["net_bind_service"]},
     None, lambda s: s["process"]["capabilities"]["effective"], ["CAP_NET_BIND_SERVICE"]),
    ("caps-drop-some", {}, {"CapDrop": ["CHOWN", "cap_kill"], "CapAdd": ["SYS_ADMIN"]},
     None, lambda s: s["process"]["capabilities"]["bounding"],
     [c for c in DEFAULT_CAPABILITIES if c not in ("CAP_CHOWN", "CAP_KILL")]
     + ["CAP_SYS_ADMIN"]),
    ("caps-add-all-drop-one", {}, {"CapAdd": ["ALL"], "CapDrop": ["SYS_ADMIN"]}, None,
     lambda s: s["process"]["capabilities"]["permitted"],
     [c for c in ALL_CAPS if c != "CAP_SYS_ADMIN"]),
    ("caps-privileged-ignores-drop-all", {}, {"Privileged": True, "CapDrop": ["ALL"]}, None,
     lambda s: s["process"]["capabilities"]["bounding"], ALL_CAPS),
    ("caps-no-inheritable-no-ambient", {}, {"CapAdd": ["NET_ADMIN"]}, None,
     lambda s: sorted(s["process"]["capabilities"]), ["bounding", "effective", "permitted"]),
    # ---- process flags ----
    ("terminal", {"Tty": True}, {}, None, lambda s: s["process"]["terminal"], True),
    ("no-terminal", {}, {}, None, lambda s: s["process"]["terminal"], False),
    ("nnp-plain", {}, {"SecurityOpt": ["no-new-privileges"]}, None,
     lambda s: s["process"]["noNewPrivileges"], True),
    ("nnp-colon-true", {}, {"SecurityOpt": ["no-new-privileges:true"]}, None,
     lambda s: s["process"]["noNewPrivileges"], True),
    ("nnp-equals-false", {}, {"SecurityOpt": ["no-new-privileges=false"]}, None,
     lambda s: s["process"]["noNewPrivileges"], False),
    ("nnp-default", {}, {}, None, lambda s: s["process"]["noNewPrivileges"], False),
    ("oom-score-adj", {}, {"OomScoreAdj": 500}, None, lambda s: s["process"]["oomScoreAdj"],
     500),
    ("rlimits", {}, {"Ulimits": [{"Name": "nofile", "Soft": 1024, "Hard": 2048},
                                 {"Name": "CORE", "Soft": -1, "Hard": -1}]}, None,
     lambda s: s["process"]["rlimits"],
     [{"type": "RLIMIT_NOFILE", "soft": 1024, "hard": 2048},
      {"type": "RLIMIT_CORE", "soft": (1 << 64) - 1, "hard": (1 << 64) - 1}]),
    ("no-rlimits-by-default", {}, {}, None, lambda s: "rlimits" in s["process"], False),
    # ---- resources ----
    ("memory-and-default-swap", {}, {"Memory": 64 * MiB}, None,
     lambda s: s["linux"]["resources"]["memory"], {"limit": 64 * MiB, "swap": 128 * MiB}),
    ("memory-swap-unlimited", {}, {"Memory": 64 * MiB, "MemorySwap": -1}, None,
     lambda s: s["linux"]["resources"]["memory"], {"limit": 64 * MiB}),
    ("memory-swap-given", {}, {"Memory": 64 * MiB, "MemorySwap": 100 * MiB,
                               "MemoryReservation": 32 * MiB, "MemorySwappiness": 10,
                               "OomKillDisable": True}, None,
     lambda s: s["linux"]["resources"]["memory"],
     {"limit": 64 * MiB, "swap": 100 * MiB, "reservation": 32 * MiB, "swappiness": 10,
      "disableOOMKiller": True}),
    ("nano-cpus", {}, {"NanoCpus": 1_500_000_000}, None,
     lambda s: s["linux"]["resources"]["cpu"], {"period": 100000, "quota": 150000}),
    ("cpu-fields", {}, {"CpuShares": 512, "CpuPeriod": 50000, "CpuQuota": 25000,
                        "CpusetCpus": "0-1", "CpusetMems": "0"}, None,
     lambda s: s["linux"]["resources"]["cpu"],
     {"shares": 512, "period": 50000, "quota": 25000, "cpus": "0-1", "mems": "0"}),
    ("pids-zero-is-unlimited", {}, {"PidsLimit": 0}, None,
     lambda s: s["linux"]["resources"]["pids"], {"limit": -1}),
    ("pids-limit", {}, {"PidsLimit": 100}, None, lambda s: s["linux"]["resources"]["pids"],
     {"limit": 100}),
    ("blkio-weight", {}, {"BlkioWeight": 300}, None,
     lambda s: s["linux"]["resources"]["blockIO"], {"weight": 300}),
    ("no-resources-by-default", {}, {"CpuShares": 0, "Memory": 0}, None,
     lambda s: sorted(s["linux"]["resources"]), ["devices"]),
    ("device-cgroup-defaults", {}, {}, None, lambda s: s["linux"]["resources"]["devices"],
     [{"allow": False, "access": "rwm"},
      *({"allow": True, "type": "c", "major": 1, "minor": m, "access": "rwm"}
        for m in (5, 3, 9, 8)),
      {"allow": True, "type": "c", "major": 5, "minor": 0, "access": "rwm"},
      {"allow": False, "type": "c", "major": 10, "minor": 229, "access": "rwm"}]),
    ("device-cgroup-rules", {}, {"DeviceCgroupRules": ["c 1:3 mr", "b *:* rwm"]}, None,
     lambda s: s["linux"]["resources"]["devices"][-2:],
     [{"allow": True, "type": "c", "major": 1, "minor": 3, "access": "mr"},
      {"allow": True, "type": "b", "major": -1, "minor": -1, "access": "rwm"}]),
    ("device-mapping", {}, {"Devices": [{"PathOnHost": "/dev/null",
                                         "PathInContainer": "/dev/xnull",
                                         "CgroupPermissions": "rw"}]}, None,
     lambda s: ({k: s["linux"]["devices"][0][k] for k in ("path", "type", "major", "minor")},
                s["linux"]["resources"]["devices"][-1]),
     ({"path": "/dev/xnull", "type": "c", "major": 1, "minor": 3},
      {"allow": True, "type": "c", "major": 1, "minor": 3, "access": "rw"})),
    # ---- sysctls ----
    ("sysctl-defaults", {}, {}, None, lambda s: s["linux"]["sysctl"],
     bundle_mod.DEFAULT_NET_SYSCTLS),
    ("sysctl-user", {}, {"Sysctls": {"net.ipv4.ping_group_range": "1 1",
                                     "kernel.shm_rmid_forced": "1"}}, None,
     lambda s: s["linux"]["sysctl"],
     {"net.ipv4.ip_unprivileged_port_start": "0", "net.ipv4.ping_group_range": "1 1",
      "kernel.shm_rmid_forced": "1"}),
    ("sysctl-none-on-host-network", {}, {"NetworkMode": "host"}, None,
     lambda s: "sysctl" in s["linux"], False),
    # ---- namespaces ----
    ("ns-default-v1", {}, {}, None, ns, ["mount", "network", "uts", "pid", "ipc"]),
    ("ns-network-none", {}, {"NetworkMode": "none"}, None, ns,
     ["mount", "network", "uts", "pid", "ipc"]),
    ("ns-network-host", {}, {"NetworkMode": "host"}, None, ns, ["mount", "uts", "pid", "ipc"]),
    ("ns-pid-ipc-uts-host", {}, {"PidMode": "host", "IpcMode": "host", "UTSMode": "host"},
     None, ns, ["mount", "network"]),
    ("ns-cgroup-private", {}, {"CgroupnsMode": "private"}, None, lambda s: ns(s)[-1],
     "cgroup"),
    ("hostname", {}, {}, None, lambda s: s["hostname"], "c0ffee1234"),
    ("domainname", {"Domainname": "example.org"}, {}, None, lambda s: s["domainname"],
     "example.org"),
    ("uts-host-no-hostname", {}, {"UTSMode": "host"}, None, lambda s: "hostname" in s, False),
    # ---- mounts ----
    ("default-mounts", {}, {}, None, lambda s: [m["destination"] for m in s["mounts"]],
     ["/proc", "/dev", "/dev/pts", "/sys", "/sys/fs/cgroup", "/dev/mqueue", "/dev/shm"]),
    ("shm-default-size", {}, {}, None, lambda s: mount(s, "/dev/shm")["options"],
     [*SHM, f"size={64 * MiB}"]),
    ("shm-size", {}, {"ShmSize": MiB}, None, lambda s: mount(s, "/dev/shm")["options"],
     [*SHM, f"size={MiB}"]),
    ("ipc-none-no-shm", {}, {"IpcMode": "none"}, None, lambda s: mount(s, "/dev/shm"), None),
    ("ipc-host-binds-host-shm", {}, {"IpcMode": "host"}, None, lambda s: mount(s, "/dev/shm"),
     {"destination": "/dev/shm", "type": "bind", "source": "/dev/shm",
      "options": ["rbind", "rprivate"]}),
    ("tmpfs-options-merged", {}, {"Tmpfs": {"/run": "size=1m,exec"}}, None,
     lambda s: mount(s, "/run"),
     {"destination": "/run", "type": "tmpfs", "source": "tmpfs",
      "options": ["nosuid", "nodev", "rprivate", "size=1m", "exec"]}),
    ("tmpfs-plain", {}, {"Tmpfs": {"/run/x/": ""}}, None, lambda s: mount(s, "/run/x"),
     {"destination": "/run/x", "type": "tmpfs", "source": "tmpfs",
      "options": ["noexec", "nosuid", "nodev", "rprivate"]}),
    ("tmpfs-over-shm-replaces-default", {}, {"Tmpfs": {"/dev/shm": "size=2m"}}, None,
     lambda s: mount(s, "/dev/shm")["source"], "tmpfs"),
    ("bind-rw-default", {}, {"Binds": ["/tmp:/data"]}, None, lambda s: mount(s, "/data"),
     {"destination": "/data", "type": "bind", "source": "/tmp",
      "options": ["rbind", "rprivate"]}),
    ("bind-ro-z", {}, {"Binds": ["/tmp/:/data:ro,Z"]}, None,
     lambda s: mount(s, "/data")["options"], ["rbind", "ro", "rprivate"]),
    ("bind-rshared-sets-root-propagation", {}, {"Binds": ["/tmp:/data:rshared"]}, None,
     lambda s: (mount(s, "/data")["options"], s["linux"]["rootfsPropagation"]),
     (["rbind", "rshared"], "shared")),
    ("bind-slave-keeps-default-rslave-root", {}, {"Binds": ["/tmp:/data:slave"]}, None,
     lambda s: (mount(s, "/data")["options"][-1], "rootfsPropagation" in s["linux"]),
     ("slave", False)),
    ("bind-of-data-root-parent-is-rslave", {}, {"Binds": ["/var:/v", "/var/lib:/l:rprivate",
                                                          "/tmp:/t"]}, None,
     lambda s: [mount(s, d)["options"][-1] for d in ("/v", "/l", "/t")],
     ["rslave", "rprivate", "rprivate"]),
    ("mounts-bind", {}, {"Mounts": [{"Type": "bind", "Source": "/tmp", "Target": "/m",
                                     "ReadOnly": True,
                                     "BindOptions": {"NonRecursive": True}}]}, None,
     lambda s: mount(s, "/m")["options"], ["bind", "ro", "rprivate"]),
    ("mounts-tmpfs", {}, {"Mounts": [{"Type": "tmpfs", "Target": "/t",
                                      "TmpfsOptions": {"SizeBytes": MiB, "Mode": 0o700}}]},
     None, lambda s: mount(s, "/t")["options"],
     ["noexec", "nosuid", "nodev", "rprivate", "mode=700", "size=1m"]),
    ("mounts-by-depth", {}, {"Binds": ["/tmp:/a/b/c", "/tmp:/a"]}, None,
     lambda s: [m["destination"] for m in s["mounts"]][-2:], ["/a", "/a/b/c"]),
    ("user-dev-replaces-dev-tree", {}, {"Tmpfs": {"/dev": ""}}, None,
     lambda s: [m["destination"] for m in s["mounts"] if m["destination"].startswith("/dev")],
     ["/dev"]),
    ("readonly-rootfs", {}, {"ReadonlyRootfs": True, "Tmpfs": {"/run": ""}}, None,
     lambda s: (s["root"]["readonly"], "ro" in mount(s, "/proc")["options"],
                "ro" in mount(s, "/sys/fs/cgroup")["options"],
                "ro" in mount(s, "/dev/shm")["options"], "ro" in mount(s, "/run")["options"]),
     (True, False, True, False, False)),
    ("privileged", {}, {"Privileged": True}, None,
     lambda s: ("maskedPaths" in s["linux"], "readonlyPaths" in s["linux"],
                "ro" in mount(s, "/sys")["options"],
                "ro" in mount(s, "/sys/fs/cgroup")["options"],
                s["linux"]["resources"]["devices"],
                any(d["path"] == "/dev/null" for d in s["linux"]["devices"])),
     (False, False, False, False, [{"allow": True, "access": "rwm"}], True)),
    ("masked-paths-default", {}, {}, None, lambda s: s["linux"]["maskedPaths"],
     list(bundle_mod.DEFAULT_MASKED_PATHS)),
    ("readonly-paths-default", {}, {}, None, lambda s: s["linux"]["readonlyPaths"],
     list(bundle_mod.DEFAULT_READONLY_PATHS)),
    ("systempaths-unconfined", {}, {"SecurityOpt": ["systempaths=unconfined"]}, None,
     lambda s: ("maskedPaths" in s["linux"], "readonlyPaths" in s["linux"]), (False, False)),
    ("masked-paths-given", {}, {"MaskedPaths": ["/proc/kcore"], "ReadonlyPaths": []}, None,
     lambda s: (s["linux"]["maskedPaths"], "readonlyPaths" in s["linux"]),
     (["/proc/kcore"], False)),
    # ---- linux ----
    ("cgroups-path", {}, {}, None, lambda s: s["linux"]["cgroupsPath"], f"/longboat/{CID}"),
    ("cgroup-parent", {}, {"CgroupParent": "custom/"}, None,
     lambda s: s["linux"]["cgroupsPath"], f"/custom/{CID}"),
    ("annotations", {}, {"Annotations": {"a": "b"}}, None, lambda s: s["annotations"],
     {"a": "b"}),
    ("root", {}, {}, None, lambda s: s["root"]["readonly"], False),
]


@pytest.mark.parametrize(("config", "host_config", "image", "get", "expected"),
                         [c[1:] for c in CASES], ids=[c[0] for c in CASES])
def test_translation(rootfs: Path, config_schema: Any, config: dict[str, Any],
                     host_config: dict[str, Any], image: dict[str, Any] | None, get: Getter,
                     expected: Any) -> None:
    spec = make(rootfs, config, host_config, image)
    assert get(spec) == expected
    validate(spec, str(rootfs.parent))
    errors = sorted(config_schema.iter_errors(spec), key=str)
    assert not errors, [f"{list(e.absolute_path)}: {e.message}" for e in errors]
    json.dumps(spec)  # serialisable as config.json


def test_inputs_are_not_modified(rootfs: Path) -> None:
    config = {"Env": ["A=1"], "Cmd": ["x"]}
    host_config = {"Memory": 64 * MiB, "Tmpfs": {"/run": ""}, "Binds": ["/tmp:/d"]}
    image = {"Env": ["B=2"], "Entrypoint": ["/ep"]}
    copies = json.dumps([config, host_config, image])
    make(rootfs, config, host_config, image)
    assert json.dumps([config, host_config, image]) == copies


def test_cgroup_v2_gets_a_private_cgroup_namespace(rootfs: Path) -> None:
    v2 = HostInfo(cgroup_version=2, cpus=4)
    assert ns(make(rootfs, host=v2))[-1] == "cgroup"
    assert "cgroup" not in ns(make(rootfs, host=v2, host_config={"CgroupnsMode": "host"}))


def test_no_swap_limit_drops_the_swap_value(rootfs: Path) -> None:
    host = HostInfo(swap_limit=False, cpus=4)
    spec = make(rootfs, host_config={"Memory": 64 * MiB, "MemorySwap": 100 * MiB}, host=host)
    assert spec["linux"]["resources"]["memory"] == {"limit": 64 * MiB}


def test_init_runs_tini_as_pid_1(rootfs: Path, init_binary: str) -> None:
    spec = make(rootfs, {"Cmd": ["sleep", "1"]}, {"Init": True}, init_path=init_binary)
    assert spec["process"]["args"] == ["/sbin/docker-init", "--", "sleep", "1"]
    assert mount(spec, "/sbin/docker-init") == {
        "destination": "/sbin/docker-init", "type": "bind", "source": init_binary,
        "options": ["bind", "ro"]}
    # no init in the host's PID namespace (moby: only with a private one)
    spec = make(rootfs, {"Cmd": ["x"]}, {"Init": True, "PidMode": "host"},
                init_path=init_binary)
    assert spec["process"]["args"] == ["x"]
    with pytest.raises(LongboatError, match="init binary"):
        make(rootfs, {}, {"Init": True}, init_path=str(rootfs / "nope"))


def test_network_files_are_bind_mounted(rootfs: Path, tmp_path: Path,
                                        config_schema: Any) -> None:
    files = {}
    for name in ("resolv.conf", "hosts", "hostname"):
        files[name] = tmp_path / name
        files[name].write_text("x\n")
    spec = make(rootfs, host_config={"ReadonlyRootfs": True},
                resolv_conf=str(files["resolv.conf"]), hosts_file=str(files["hosts"]),
                hostname_file=str(files["hostname"]))
    assert mount(spec, "/etc/resolv.conf") == {
        "destination": "/etc/resolv.conf", "type": "bind",
        "source": str(files["resolv.conf"]), "options": ["rbind", "ro", "rprivate"]}
    assert mount(spec, "/etc/hosts")["source"] == str(files["hosts"])
    assert mount(spec, "/etc/hostname")["source"] == str(files["hostname"])
    # a user mount at the same place wins
    spec = make(rootfs, host_config={"Binds": ["/tmp:/etc/hosts"]},
                hosts_file=str(files["hosts"]))
    assert mount(spec, "/etc/hosts")["source"] == "/tmp"
    assert not list(config_schema.iter_errors(spec))


def test_container_network_mode_joins_the_given_namespace(rootfs: Path) -> None:
    spec = make(rootfs, host_config={"NetworkMode": "container:abc"},
                netns_path="/proc/self/ns/net")
    assert {"type": "network", "path": "/proc/self/ns/net"} in spec["linux"]["namespaces"]
    assert "sysctl" not in spec["linux"]
    validate(spec, str(rootfs.parent))


def test_privileged_lists_host_devices_but_not_the_console(rootfs: Path) -> None:
    spec = make(rootfs, host_config={"Privileged": True})
    paths = {d["path"] for d in spec["linux"]["devices"]}
    assert {"/dev/null", "/dev/zero"} <= paths
    assert "/dev/console" not in paths and "/dev/ptmx" not in paths
    assert not any(p.startswith("/dev/pts/") for p in paths)


def test_stop_signal_forms_are_accepted(rootfs: Path) -> None:
    for sig in ("SIGTERM", "term", "9", "SIGRTMIN+3", "RTMAX-1"):
        make(rootfs, {"StopSignal": sig})


# --------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------

ERRORS: list[tuple[str, dict[str, Any], dict[str, Any], dict[str, Any] | None, str]] = [
    # types, named after the Docker field
    ("config-not-object", [], {}, None, "Config: must be an object"),  # type: ignore[list-item]
    ("host-config-not-object", {}, "x", None, "HostConfig: must be an object"),  # type: ignore[list-item]
    ("memory-string", {}, {"Memory": "1g"}, None,
     'HostConfig.Memory: must be an integer, got a string ("1g")'),
    ("memory-float", {}, {"Memory": 1e9}, None, "HostConfig.Memory: must be an integer"),
    ("privileged-string", {}, {"Privileged": "yes"}, None,
     "HostConfig.Privileged: must be a boolean"),
    ("env-not-list", {"Env": "A=1"}, {}, None, "Config.Env: must be an array of strings"),
    ("cmd-item-int", {"Cmd": ["a", 1]}, {}, None, "Config.Cmd[1]: must be a string"),
    ("labels-int", {"Labels": {"a": 1}}, {}, None, "Config.Labels.a: must be a string"),
    ("tty-string", {"Tty": "true"}, {}, None, "Config.Tty: must be a boolean"),
    ("ulimits-not-objects", {}, {"Ulimits": ["nofile=1"]}, None,
     "HostConfig.Ulimits[0]: must be an object"),
    ("image-env-bad", {}, {}, {"Cmd": ["x"], "Env": ["=x"]},
     "Image.Config.Env[0]: invalid environment variable: =x"),
    ("nul-in-arg", {"Cmd": ["a\0b"]}, {}, None, "Config.Cmd[0]: must not contain a NUL"),
    # command, env, workdir
    ("no-command", {}, {}, {}, "No command specified"),
    ("entrypoint-empty-string-no-cmd", {"Entrypoint": [""]}, {},
     {"Entrypoint": ["/ep"], "Cmd": ["sh"]}, "No command specified"),
    ("env-empty-name", {"Env": ["=x"]}, {}, None, "invalid environment variable: =x"),
    ("workdir-relative", {"WorkingDir": "rel"}, {}, None,
     "the working directory 'rel' is invalid, it needs to be an absolute path"),
    ("stop-signal", {"StopSignal": "SIGFOO"}, {}, None, "Invalid signal: SIGFOO"),
    ("stop-signal-zero", {"StopSignal": "0"}, {}, None, "Invalid signal: 0"),
    # user
    ("user-unknown", {"User": "nobody2"}, {}, None,
     "unable to find user nobody2: no matching entries in passwd file"),
    ("user-broken-line-is-not-root", {"User": "broken"}, {}, None,
     "unable to find user broken: no matching entries in passwd file"),
    ("group-unknown", {"User": "app:nogroup"}, {}, None,
     "unable to find group nogroup: no matching entries in group file"),
    ("uid-negative", {"User": "-1"}, {}, None, "uids and gids must be in range 0-2147483647"),
    ("uid-too-big", {"User": "2147483648"}, {}, None, "uids and gids must be in range"),
    ("group-add-unknown", {}, {"GroupAdd": ["nosuch"]}, None, "Unable to find group nosuch"),
    # capabilities and security options
    ("cap-unknown", {}, {"CapAdd": ["FOO"]}, None, 'unknown capability: "CAP_FOO"'),
    ("cap-drop-unknown", {}, {"CapDrop": ["cap_bogus"]}, None,
     'unknown capability: "CAP_BOGUS"'),
    ("nnp-bad-bool", {}, {"SecurityOpt": ["no-new-privileges=maybe"]}, None,
     'invalid --security-opt 2: "no-new-privileges=maybe"'),
    ("secopt-no-separator", {}, {"SecurityOpt": ["foo"]}, None,
     'invalid --security-opt 1: "foo"'),
    ("secopt-unknown-key", {}, {"SecurityOpt": ["foo=bar"]}, None,
     'invalid --security-opt 2: "foo=bar"'),
    ("seccomp-profile", {}, {"SecurityOpt": ["seccomp=/x.json"]}, None,
     "HostConfig.SecurityOpt[0]: seccomp profiles are not supported yet"),
    # resources: Docker's messages
    ("memory-below-6m", {}, {"Memory": 1024}, None, "Minimum memory limit allowed is 6MB"),
    ("swap-below-memory", {}, {"Memory": 64 * MiB, "MemorySwap": 32 * MiB}, None,
     "Minimum memoryswap limit should be larger than memory limit, see usage"),
    ("swap-without-memory", {}, {"MemorySwap": 64 * MiB}, None,
     "You should always set the Memory limit when using Memoryswap limit, see usage"),
    ("reservation-below-6m", {}, {"MemoryReservation": 1024}, None,
     "Minimum memory reservation allowed is 6MB"),
    ("memory-below-reservation", {}, {"Memory": 64 * MiB, "MemoryReservation": 128 * MiB},
     None, "Minimum memory limit can not be less than memory reservation limit, see usage"),
    ("memory-negative", {}, {"Memory": -5}, None, "HostConfig.Memory: must not be negative"),
    ("swappiness", {}, {"MemorySwappiness": 101}, None,
     "Invalid value: 101, valid memory swappiness range is 0-100"),
    ("cpu-shares-negative", {}, {"CpuShares": -1}, None,
     "invalid CPU shares (-1): value must be a positive integer"),
    ("nano-and-period", {}, {"NanoCpus": 10**9, "CpuPeriod": 100000}, None,
     "Conflicting options: Nano CPUs and CPU Period cannot both be set"),
    ("nano-and-quota", {}, {"NanoCpus": 10**9, "CpuQuota": 100000}, None,
     "Conflicting options: Nano CPUs and CPU Quota cannot both be set"),
    ("nano-too-many", {}, {"NanoCpus": 5 * 10**9}, None,
     "Range of CPUs is from 0.01 to 4.00, as there are only 4 CPUs available"),
    ("cpu-period", {}, {"CpuPeriod": 500}, None,
     "CPU cfs period can not be less than 1ms (i.e. 1000) or larger than 1s (i.e. 1000000)"),
    ("cpu-quota", {}, {"CpuQuota": 500}, None,
     "CPU cfs quota can not be less than 1ms (i.e. 1000)"),
    ("cpuset-unavailable", {}, {"CpusetCpus": "0-9"}, None,
     "Requested CPUs are not available - requested 0-9, available: 0-3"),
    ("cpuset-malformed", {}, {"CpusetCpus": "a"}, None,
     "Invalid value a for cpuset cpus: invalid format: a"),
    ("cpuset-mems-unavailable", {}, {"CpusetMems": "1"}, None,
     "Requested memory nodes are not available - requested 1, available: 0"),
    ("blkio-weight", {}, {"BlkioWeight": 5}, None, "Range of blkio weight is from 10 to 1000"),
    ("oom-score-adj", {}, {"OomScoreAdj": 1001}, None,
     "Invalid value 1001, range for oom score adj is [-1000, 1000]"),
    ("shm-negative", {}, {"ShmSize": -1}, None, "SHM size can not be less than 0"),
    ("ulimit-name", {}, {"Ulimits": [{"Name": "bogus", "Soft": 1, "Hard": 1}]}, None,
     "HostConfig.Ulimits[0].Name: invalid ulimit type: bogus"),
    ("ulimit-empty", {}, {"Ulimits": [{}]}, None, "invalid ulimit type: "),
    ("ulimit-soft-above-hard", {}, {"Ulimits": [{"Name": "nofile", "Soft": 5, "Hard": 2}]},
     None, "ulimit soft limit must be less than or equal to hard limit: 5 > 2"),
    ("ulimit-twice", {}, {"Ulimits": [{"Name": "nofile", "Soft": 1, "Hard": 1},
                                      {"Name": "NOFILE", "Soft": 1, "Hard": 1}]}, None,
     "is given twice"),
    ("unsupported-field", {}, {"DeviceRequests": [{"Count": -1}]},
     None, "HostConfig.DeviceRequests: is not supported yet"),
    ("userns", {}, {"UsernsMode": "private"}, None, "user namespaces are not supported yet"),
    # sysctls (runc's rules)
    ("sysctl-not-namespaced", {}, {"Sysctls": {"kernel.panic": "1"}}, None,
     'sysctl "kernel.panic" is not in a separate kernel namespace'),
    ("sysctl-net-on-host", {}, {"NetworkMode": "host", "Sysctls": {"net.ipv4.ip_forward": "1"}},
     None, 'sysctl "net.ipv4.ip_forward" not allowed in host network namespace'),
    ("sysctl-ipc-on-host", {}, {"IpcMode": "host", "Sysctls": {"kernel.shmmax": "1"}}, None,
     'sysctl "kernel.shmmax" is not allowed in the hosts ipc namespace'),
    ("sysctl-hostname", {}, {"Sysctls": {"kernel.hostname": "x"}}, None,
     'conflicts with the OCI "hostname" field'),
    # namespaces
    ("network-unknown", {}, {"NetworkMode": "mynet"}, None, "network mynet not found"),
    ("network-container-unresolved", {}, {"NetworkMode": "container:abc"}, None,
     "the caller must resolve"),
    ("network-container-hostname", {"Hostname": "x"}, {"NetworkMode": "container:abc"}, None,
     "conflicting options: hostname and the network mode"),
    ("pid-mode", {}, {"PidMode": "bogus"}, None, "invalid PID mode: bogus"),
    ("pid-container", {}, {"PidMode": "container:abc"}, None, "the caller must resolve"),
    ("ipc-mode", {}, {"IpcMode": "bogus"}, None, "invalid IPC mode: bogus"),
    ("uts-mode", {}, {"UTSMode": "private"}, None, "invalid UTS mode: private"),
    ("uts-host-hostname", {"Hostname": "x"}, {"UTSMode": "host"}, None,
     "conflicting options: hostname and the UTS mode"),
    ("cgroupns-mode", {}, {"CgroupnsMode": "bogus"}, None,
     "invalid cgroup namespace mode: bogus"),
    ("cgroup-parent-dotdot", {}, {"CgroupParent": "../escape"}, None,
     "HostConfig.CgroupParent: must not contain '..'"),
    # mounts (moby's volume parser messages)
    ("bind-named-volume", {}, {"Binds": ["data:/data"]}, None,
     "HostConfig.Binds[0]: named volumes are not supported yet"),
    ("bind-anonymous", {}, {"Binds": ["/data"]}, None, "anonymous volumes are not supported"),
    ("bind-bad-mode", {}, {"Binds": ["/tmp:/data:xx"]}, None, "invalid mode: xx"),
    ("bind-two-rw-modes", {}, {"Binds": ["/tmp:/data:ro,rw"]}, None, "invalid mode: ro,rw"),
    ("bind-dst-mode-only", {}, {"Binds": ["/data:ro"]}, None,
     "invalid volume specification: '/data:ro'"),
    ("bind-too-many-colons", {}, {"Binds": ["/a:/b:ro:x"]}, None,
     "invalid volume specification: '/a:/b:ro:x'"),
    ("bind-relative-target", {}, {"Binds": ["/tmp:rel"]}, None,
     "invalid volume specification: '/tmp:rel': invalid mount path: 'rel' mount path must "
     "be absolute"),
    ("bind-root-target", {}, {"Binds": ["/tmp:/"]}, None,
     "invalid volume specification: '/tmp:/': invalid specification: destination can't be "
     "'/'"),
    ("bind-nocopy", {}, {"Binds": ["/tmp:/d:nocopy"]}, None,
     "field VolumeOptions must not be specified"),
    ("bind-missing-source", {}, {"Binds": ["/nonexistent-longboat:/d"]}, None,
     "bind source path does not exist: /nonexistent-longboat"),
    ("duplicate-mount-point", {}, {"Binds": ["/tmp:/x"], "Tmpfs": {"/x/": ""}}, None,
     "Duplicate mount point: /x"),
    ("mounts-volume", {}, {"Mounts": [{"Type": "volume", "Source": "v", "Target": "/v"}]},
     None, "HostConfig.Mounts[0].Type: volume mounts are not supported yet"),
    ("mounts-unknown-type", {}, {"Mounts": [{"Type": "foo", "Target": "/v"}]}, None,
     'invalid mount config for type "foo": mount type unknown'),
    ("mounts-bind-missing", {}, {"Mounts": [{"Type": "bind", "Source": "/nope-lb",
                                             "Target": "/v"}]}, None,
     'invalid mount config for type "bind": bind source path does not exist: /nope-lb'),
    ("mounts-bind-no-source", {}, {"Mounts": [{"Type": "bind", "Target": "/v"}]}, None,
     'invalid mount config for type "bind": field Source must not be empty'),
    ("mounts-tmpfs-source", {}, {"Mounts": [{"Type": "tmpfs", "Source": "/x",
                                             "Target": "/v"}]}, None,
     'invalid mount config for type "tmpfs": field Source must not be specified'),
    ("mounts-relative-target", {}, {"Mounts": [{"Type": "tmpfs", "Target": "v"}]}, None,
     "invalid mount path: 'v' mount path must be absolute"),
    ("tmpfs-bad-option", {}, {"Tmpfs": {"/run": "size=1m,foo"}}, None,
     'Invalid tmpfs option ["foo"]'),
    ("tmpfs-relative", {}, {"Tmpfs": {"run": ""}}, None,
     "invalid mount path: 'run' mount path must be absolute"),
    ("tmpfs-root", {}, {"Tmpfs": {"/": ""}}, None, "destination can't be '/'"),
    # devices
    ("device-missing", {}, {"Devices": [{"PathOnHost": "/dev/nonexistent-lb"}]}, None,
     'error gathering device information while adding custom device '
     '"/dev/nonexistent-lb"'),
    ("device-not-a-device", {}, {"Devices": [{"PathOnHost": "/etc/hostname"}]}, None,
     "error gathering device information"),
    ("device-mode", {}, {"Devices": [{"PathOnHost": "/dev/null",
                                      "CgroupPermissions": "rwx"}]}, None,
     "bad mode specified: rwx"),
    ("device-cgroup-rule", {}, {"DeviceCgroupRules": ["x 1:2 r"]}, None,
     "invalid device cgroup rule format: 'x 1:2 r'"),
]


@pytest.mark.parametrize(("config", "host_config", "image", "message"),
                         [c[1:] for c in ERRORS], ids=[c[0] for c in ERRORS])
def test_bad_input(rootfs: Path, config: dict[str, Any], host_config: dict[str, Any],
                   image: dict[str, Any] | None, message: str) -> None:
    with pytest.raises((InvalidArgument, NotFound)) as info:
        make(rootfs, config, host_config, image)
    assert message in str(info.value)


def test_unknown_network_is_not_found(rootfs: Path) -> None:
    with pytest.raises(NotFound) as info:
        make(rootfs, host_config={"NetworkMode": "mynet"})
    assert info.value.status == 404


def test_bad_container_id_and_hostname(rootfs: Path) -> None:
    with pytest.raises(InvalidArgument, match="invalid container id"):
        oci_config("../x", {}, {}, {"Cmd": ["sh"]}, str(rootfs), hostname="h", host=HOST)
    with pytest.raises(InvalidArgument, match="invalid hostname"):
        make(rootfs, hostname="x" * 65)


# --------------------------------------------------------------------------------------
# The user, from hostile rootfs trees
# --------------------------------------------------------------------------------------

def test_symlinked_passwd_is_resolved_inside_the_rootfs(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "passwd").write_text("evil:x:0:0::/:/bin/sh\n")
    (outside / "group").write_text("evilgroup:x:0:evil\n")
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    # relative: on the host, rootfs/etc/../../outside/passwd is the outside file
    (root / "etc" / "passwd").symlink_to("../../outside/passwd")
    # absolute: on the host, this is the outside file too
    (root / "etc" / "group").symlink_to(outside / "group")
    assert (root / "etc" / "passwd").read_text().startswith("evil")  # the trap is real
    with pytest.raises(InvalidArgument) as info:
        make(root, {"User": "evil"})
    assert str(info.value) == "unable to find user evil: no matching entries in passwd file"
    with pytest.raises(InvalidArgument, match="unable to find group evilgroup"):
        make(root, {"User": "0:evilgroup"})
    # inside the rootfs the same links do resolve, clamped to it
    (root / "outside").mkdir()
    (root / "outside" / "passwd").write_text("inside:x:7:7::/:/bin/sh\n")
    assert make(root, {"User": "inside"})["process"]["user"] == {
        "uid": 7, "gid": 7, "additionalGids": [7]}


def test_passwd_as_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    (root / "etc").mkdir(parents=True)
    os.mkfifo(root / "etc" / "passwd")
    with pytest.raises(InvalidArgument, match="not a regular file"):
        make(root, {"User": "app"})


def test_missing_files_allow_numeric_users_only(tmp_path: Path) -> None:
    root = tmp_path / "rootfs"
    root.mkdir()
    assert make(root, {"User": "1234:5678"})["process"]["user"] == {
        "uid": 1234, "gid": 5678, "additionalGids": [5678]}
    assert make(root)["process"]["user"] == {"uid": 0, "gid": 0, "additionalGids": [0]}
    with pytest.raises(InvalidArgument, match="unable to find user app"):
        make(root, {"User": "app"})
    with pytest.raises(InvalidArgument, match="unable to find group staff"):
        make(root, {"User": "0:staff"})


def test_missing_rootfs(tmp_path: Path) -> None:
    with pytest.raises(InvalidArgument, match="rootfs"):
        make(tmp_path / "nope")


def test_exec_user_matches_runc_on_edge_cases() -> None:
    passwd = "root:x:0:0::/root:/bin/sh\nu:x:5:6::/home/u:/bin/sh\n"
    group = "g:x:6:u\nh:x:7:u,v\n"
    assert exec_user("u", passwd, group).additional_gids == [6, 7]
    assert exec_user("u", passwd, group).home == "/home/u"
    assert exec_user("5:h", passwd, group).gid == 7
    assert exec_user("u:7", passwd, group).additional_gids == []
    assert exec_user("u:g:extra", passwd, group).gid == 6  # runc ignores further fields
    assert exec_user("+5", passwd, group).uid == 5  # strconv.Atoi accepts a sign
