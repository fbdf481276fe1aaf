"""A Docker container definition -> an OCI runtime config (a bundle's ``config.json``).

:func:`oci_config` is the engine's half of runc's split between "describe the container"
and "make it happen": it takes what ``POST /containers/create`` stored (Docker's
``ContainerConfig`` and ``HostConfig``) and the image's config, and returns the config
``longboat-runtime`` (or runc) runs. It follows what moby 20.10's ``createSpec`` does
(``daemon/oci_linux.go``, ``oci/defaults.go``, ``daemon/daemon_unix.go`` checks), with
Docker's error messages where Docker has one; see ``docs/bundle.md``.

It changes nothing: it reads the container's /etc/passwd and /etc/group (inside the
rootfs, never following a link out of it), stats device nodes the config names, and reads
a few host facts (:class:`HostInfo`). Every field is type-checked; a bad one raises
:class:`InvalidArgument` naming it.
"""

from __future__ import annotations

import functools
import os
import posixpath
import re
import signal
from dataclasses import dataclass
from typing import Any

from longboat.engine import bundle_mounts, bundle_resources, bundle_user
from longboat.engine.bundle_fields import Fields
from longboat.errors import InvalidArgument, NotFound, SystemFault
from longboat.linux import caps
from longboat.oci import OCI_VERSION

#: Where Debian's ``tini`` package puts its static binary (``--init``).
DEFAULT_INIT_PATH = "/usr/bin/tini-static"
#: Where Docker mounts the init in the container.
INIT_IN_CONTAINER = "/sbin/docker-init"
#: ``system.DefaultPathEnv("linux")``.
DEFAULT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

#: moby's ``caps.DefaultCapabilities()``, in its order.
DEFAULT_CAPABILITIES = ("CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER",
                        "CAP_MKNOD", "CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID",
                        "CAP_SETFCAP", "CAP_SETPCAP", "CAP_NET_BIND_SERVICE",
                        "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE")
#: moby 20.10's ``oci.DefaultLinuxSpec`` masked and read-only paths.
DEFAULT_MASKED_PATHS = ("/proc/asound", "/proc/acpi", "/proc/kcore", "/proc/keys",
                        "/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
                        "/proc/sched_debug", "/proc/scsi", "/sys/firmware",
                        "/sys/devices/virtual/powercap")
DEFAULT_READONLY_PATHS = ("/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys",
                          "/proc/sysrq-trigger")
#: Sysctls moby 20.10 sets in a private network namespace when the kernel has them.
DEFAULT_NET_SYSCTLS = {"net.ipv4.ip_unprivileged_port_start": "0",
                       "net.ipv4.ping_group_range": "0 2147483647"}

# HostConfig fields the bundle cannot honour yet: refused when set, never dropped silently.
# (KernelMemory is accepted and dropped with Docker's warning at create: create_warnings.)
_UNSUPPORTED = ("DeviceRequests", "KernelMemoryTCP", "VolumesFrom", "CpuCount",
                "CpuPercent", "IOMaximumIOps", "IOMaximumBandwidth", "StorageOpt")
#: Real-time CPU: refused with a reason (the runtime does not set cpu.rt_*).
_REALTIME = ("CpuRealtimePeriod", "CpuRealtimeRuntime")
#: moby's linuxMinMemory, the floor it also applies to KernelMemory.
_MIN_KERNEL_MEMORY = 6 * 1024 * 1024
_CONTAINER_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,127}")
_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_FALSE = ("0", "f", "F", "FALSE", "false", "False")


@dataclass(frozen=True)
class HostInfo:
    """The host facts the translation depends on (tests pass their own)."""

    cgroup_version: int = 1
    swap_limit: bool = True          # the memory controller can limit swap
    cpus: int = 1                    # Go's runtime.NumCPU(): the affinity mask
    online_cpus: str | None = None   # cpuset cpus the containers may use
    online_mems: str | None = None
    net_sysctls: tuple[str, ...] = tuple(DEFAULT_NET_SYSCTLS)  # those the kernel has
    dev: str = "/dev"                # the host's /dev, listed for --privileged
    #: HostConfig resource fields this host cannot apply (see _DISCARDED): moby warns
    #: at create and drops them rather than failing the start
    missing: frozenset[str] = frozenset()

    @staticmethod
    def detect() -> HostInfo:
        """This host's facts (read once)."""
        return _detect()


@functools.cache
def _detect() -> HostInfo:
    from longboat import cgroups

    version = cgroups.host_version()
    root = "/sys/fs/cgroup"
    if version == 2:
        swap = True
        cpuset = root
        cpus_file, mems_file = "cpuset.cpus.effective", "cpuset.mems.effective"
    else:
        swap = os.path.exists(f"{root}/memory/memory.memsw.limit_in_bytes")
        cpuset = f"{root}/cpuset"
        cpus_file, mems_file = "cpuset.cpus", "cpuset.mems"
    return HostInfo(
        cgroup_version=version, swap_limit=swap, cpus=len(os.sched_getaffinity(0)),
        missing=_missing_controls(version, root),
        online_cpus=_read_first(f"{cpuset}/{cpus_file}", "/sys/devices/system/cpu/online"),
        online_mems=_read_first(f"{cpuset}/{mems_file}",
                                "/sys/devices/system/node/online"),
        net_sysctls=tuple(name for name in DEFAULT_NET_SYSCTLS if os.path.exists(
            "/proc/sys/" + name.replace(".", "/"))))


#: What moby 20.10 drops with a warning when the host cannot do it
#: (``verifyPlatformContainerResources``): HostConfig field -> (where it lands in
#: ``linux.resources``, the warning).
_DISCARDED = {
    "MemorySwappiness": (("memory", "swappiness"), "Your kernel does not support memory "
                         "swappiness capabilities or the cgroup is not mounted. Memory "
                         "swappiness discarded."),
    "OomKillDisable": (("memory", "disableOOMKiller"), "Your kernel does not support "
                       "OomKillDisable. OomKillDisable discarded."),
    "BlkioWeight": (("blockIO", "weight"), "Your kernel does not support Block I/O weight "
                    "or the cgroup is not mounted. Weight discarded."),
    "BlkioWeightDevice": (("blockIO", "weightDevice"), "Your kernel does not support Block "
                          "I/O weight_device or the cgroup is not mounted. Weight-device "
                          "discarded."),
}


def _missing_controls(version: int, root: str) -> frozenset[str]:
    """The _DISCARDED fields this host's cgroups cannot apply (moby's sysinfo)."""
    if version == 2:
        # no memory.swappiness nor an OOM-killer switch in v2; io weights need "io"
        have_io = "io" in (_read_first(f"{root}/cgroup.controllers") or "").split()
        return frozenset({"MemorySwappiness", "OomKillDisable"} |
                         (set() if have_io else {"BlkioWeight", "BlkioWeightDevice"}))
    out = set()
    for field, files in (("MemorySwappiness", ("memory/memory.swappiness",)),
                         ("OomKillDisable", ("memory/memory.oom_control",)),
                         ("BlkioWeight", ("blkio/blkio.weight", "blkio/blkio.bfq.weight")),
                         ("BlkioWeightDevice", ("blkio/blkio.weight_device",
                                                "blkio/blkio.bfq.weight_device"))):
        if not any(os.path.exists(f"{root}/{name}") for name in files):
            out.add(field)
    return frozenset(out)


def _asked(hc: Fields, field: str) -> bool:
    value = hc.get(field)
    if field == "MemorySwappiness":
        return value is not None and value != -1
    return bool(value)


def _read_first(*paths: str) -> str | None:
    for path in paths:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read().strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text:
            return text
    return None


# --------------------------------------------------------------------------------------
# Pieces
# --------------------------------------------------------------------------------------

def command(config: Fields, image: Fields) -> list[str]:
    """Entrypoint + Cmd, with the image's defaults (moby's ``merge`` and
    ``mergeAndVerifyConfig``): a given Entrypoint drops the image's Cmd; ``[""]`` and
    ``[]`` clear the image's Entrypoint."""
    entrypoint = config.strings("Entrypoint", str_slice=True)
    cmd = config.strings("Cmd", str_slice=True)
    if not entrypoint:
        if not cmd:
            cmd = image.strings("Cmd", str_slice=True)
        if entrypoint is None:
            entrypoint = image.strings("Entrypoint", str_slice=True)
    if entrypoint == [""]:
        entrypoint = None
    args = [*(entrypoint or []), *(cmd or [])]
    if not args:
        raise InvalidArgument("No command specified")
    if args[0] == "":
        raise InvalidArgument("the command to run must not be an empty string "
                              "(Config.Entrypoint/Config.Cmd)")
    return args


def _env_key(entry: str) -> str:
    return entry.split("=", 1)[0]


def _checked_env(fields: Fields) -> list[str]:
    entries = fields.strings("Env") or []
    for i, entry in enumerate(entries):
        if _env_key(entry) == "":  # opts.ValidateEnv
            raise fields.fail(f"Env[{i}]", f"invalid environment variable: {entry}")
    return entries


def environment(config: Fields, image: Fields, *, hostname: str, tty: bool) -> list[str]:
    """The process environment: the container's Env, then the image's variables it does
    not set; over PATH, HOSTNAME and (with a TTY) TERM=xterm. ``NAME`` without ``=``
    unsets (``ReplaceOrAppendEnvValues``)."""
    user = _checked_env(config)
    keys = {_env_key(e) for e in user}
    merged = user + [e for e in _checked_env(image) if _env_key(e) not in keys]
    env = [f"PATH={DEFAULT_PATH}", f"HOSTNAME={hostname}"]
    if tty:
        env.append("TERM=xterm")
    index = {_env_key(e): i for i, e in enumerate(env)}
    removed: set[int] = set()
    for entry in merged:
        key = _env_key(entry)
        if "=" not in entry:
            if key in index:
                removed.add(index.pop(key))
            continue
        if key in index:
            env[index[key]] = entry
        else:
            index[key] = len(env)
            env.append(entry)
    return [e for i, e in enumerate(env) if i not in removed]


def working_dir(config: Fields, image: Fields) -> str:
    cwd = config.string("WorkingDir") or image.string("WorkingDir")
    if not cwd:
        return "/"
    if not cwd.startswith("/"):
        raise InvalidArgument(f"the working directory '{cwd}' is invalid, it needs to be an "
                              "absolute path")
    return "/" + posixpath.normpath(cwd).lstrip("/")


def _cap_names(fields: Fields, field: str, known: list[str]) -> list[str]:
    """CapAdd/CapDrop normalised (moby's ``normalizeLegacyCapabilities``)."""
    out = []
    for name in fields.strings(field) or []:
        upper = name.upper()
        if upper != "ALL":
            if not upper.startswith("CAP_"):
                upper = "CAP_" + upper
            if upper not in known:
                raise InvalidArgument(f'unknown capability: "{upper}"')
        if upper not in out:
            out.append(upper)
    return out


def capability_list(host: Fields, *, privileged: bool) -> list[str]:
    """moby's ``TweakCapabilities``: the default set, less CapDrop, plus CapAdd; "ALL" in
    CapAdd starts from every capability, in CapDrop from none."""
    every = caps.from_mask(caps.ALL_MASK())
    adds = _cap_names(host, "CapAdd", every)
    drops = _cap_names(host, "CapDrop", every)
    if privileged:
        return every
    if not adds and not drops:
        return list(DEFAULT_CAPABILITIES)
    if "ALL" in adds:
        return [c for c in every if c not in drops]
    if "ALL" in drops:
        return [c for c in adds if c != "ALL"]
    out = [c for c in DEFAULT_CAPABILITIES if c not in drops]
    return out + [c for c in adds if c not in out]


def _signal_ok(name: str) -> bool:
    if re.fullmatch(r"[+-]?[0-9]+", name):
        return int(name) != 0
    upper = name.upper().removeprefix("SIG")
    if f"SIG{upper}" in signal.Signals.__members__:
        return True
    match = re.fullmatch(r"RTMIN\+(\d+)|RTMAX-(\d+)", upper)
    span = signal.SIGRTMAX - signal.SIGRTMIN
    return match is not None and int(match[1] or match[2]) <= span


def no_new_privileges(host: Fields) -> bool:
    """``SecurityOpt`` (moby's ``parseSecurityOpt``): ``no-new-privileges[=bool]``; the
    unconfined seccomp/AppArmor/label forms are accepted, real profiles refused."""
    nnp = False
    for i, opt in enumerate(host.strings("SecurityOpt") or []):
        field = f"SecurityOpt[{i}]"
        if opt == "no-new-privileges":
            nnp = True
            continue
        if opt == "disable":
            continue
        sep = "=" if "=" in opt else ":" if ":" in opt else ""
        if not sep:
            raise InvalidArgument(f'invalid --security-opt 1: "{opt}"')
        key, value = opt.split(sep, 1)
        if key == "no-new-privileges":
            if value not in _TRUE + _FALSE:
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
            nnp = value in _TRUE
        elif key in ("seccomp", "apparmor"):
            if value != "unconfined":
                raise host.fail(field, f"{key} profiles are not supported yet (only "
                                       f"{key}=unconfined)")
        elif key == "label":
            if value != "disable":
                raise host.fail(field, "SELinux labels are not supported (only "
                                       "label=disable)")
        elif key == "systempaths":
            if value != "unconfined":
                raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
        else:
            raise InvalidArgument(f'invalid --security-opt 2: "{opt}"')
    return nnp


def _systempaths_unconfined(host: Fields) -> bool:
    return any(o in ("systempaths=unconfined", "systempaths:unconfined")
               for o in host.strings("SecurityOpt") or [])


def _mode(host: Fields, field: str, what: str, allowed: tuple[str, ...],
          joined: str | None = None) -> str:
    """A namespace mode; ``container:<name|id>`` (where ``allowed`` has "container")
    needs ``joined``, the other container's namespace file the caller resolved."""
    value = host.string(field)
    kind, _, other = value.partition(":")
    if kind == "container" and "container" in allowed and other:
        if not joined:
            raise host.fail(field, f"{value}: the caller must resolve the container's "
                                   f"{what} namespace")
        return "container"
    if value not in allowed or value == "container":
        raise InvalidArgument(f"invalid {what} mode: {value}")
    return value


def create_warnings(host_config: dict[str, Any] | None, *,
                    host: HostInfo | None = None) -> list[str]:
    """The checks moby 20.10 makes at create (``verifyContainerSettings``) that need no
    image, rootfs or other container, with Docker's messages, and the warnings it
    returns: namespace modes, ``OomScoreAdj``, memory, CPU, pids and blkio weight
    values, ``Isolation`` other than default, ``KernelMemory`` (deprecated; the kernel
    memory limit is not set, as runc 1.1 no longer sets it either)."""
    hc = Fields(host_config, "HostConfig")
    host = host or HostInfo.detect()
    warnings: list[str] = []
    isolation = hc.string("Isolation")
    if isolation and isolation.lower() != "default":
        raise InvalidArgument(f'Invalid isolation: "{isolation}" - linux only supports '
                              "'default'")
    for field, what, allowed in (
            ("PidMode", "PID", ("", "host", "container")),
            ("IpcMode", "IPC", ("", "private", "shareable", "none", "host", "container")),
            ("UTSMode", "UTS", ("", "host"))):
        _mode(hc, field, what, allowed, joined="(resolved at start)")
    if hc.string("CgroupnsMode") not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {hc.string('CgroupnsMode')}")
    _oom_score_adj(hc)
    bundle_resources.memory_resources(hc, swap_limit=host.swap_limit)
    bundle_resources.cpu_resources(hc, cpus=host.cpus, online_cpus=host.online_cpus,
                                   online_mems=host.online_mems)
    bundle_resources.blkio_weight(hc)
    kernel_memory = hc.number("KernelMemory")
    if kernel_memory > 0:
        if kernel_memory < _MIN_KERNEL_MEMORY:
            raise InvalidArgument("Minimum kernel memory limit allowed is 6MB")
        warnings.append("Your kernel does not support kernel memory limit capabilities or "
                        "the cgroup is not mounted. Limitation discarded.")
    warnings += [_DISCARDED[field][1] for field in _DISCARDED
                 if field in host.missing and _asked(hc, field)]
    return warnings


def _oom_score_adj(hc: Fields) -> int:
    value = hc.number("OomScoreAdj", bits=32)
    if not -1000 <= value <= 1000:
        raise InvalidArgument(f"Invalid value {value}, range for oom score adj is "
                              "[-1000, 1000]")
    return value


def cgroups_path(host: Fields, *, default_parent: str, container_id: str) -> str:
    parent = host.string("CgroupParent") or default_parent
    if any(part == ".." for part in parent.split("/")):
        raise host.fail("CgroupParent", f"must not contain '..': {parent}")
    return posixpath.normpath(posixpath.join("/", parent, container_id))


def _check_config(config: Fields) -> None:
    """Type checks of ContainerConfig fields that do not reach the OCI config."""
    for name in ("Tty", "OpenStdin", "StdinOnce", "AttachStdin", "AttachStdout",
                 "AttachStderr", "NetworkDisabled", "ArgsEscaped"):
        config.boolean(name)
    for name in ("Hostname", "Domainname", "Image", "MacAddress"):
        config.string(name)
    config.string_map("Labels")
    config.integer("StopTimeout")
    stop_signal = config.string("StopSignal")
    if stop_signal and not _signal_ok(stop_signal):
        raise InvalidArgument(f"Invalid signal: {stop_signal}")


# --------------------------------------------------------------------------------------
# The config
# --------------------------------------------------------------------------------------

def oci_config(container_id: str, config: dict[str, Any] | None,
               host_config: dict[str, Any] | None, image_config: dict[str, Any] | None,
               rootfs: str, *, hostname: str, cgroup_parent: str = "/longboat",
               init_path: str | None = DEFAULT_INIT_PATH, resolv_conf: str | None = None,
               hosts_file: str | None = None, hostname_file: str | None = None,
               netns_path: str | None = None, data_root: str | None = None,
               host: HostInfo | None = None, pidns_path: str | None = None,
               ipcns_path: str | None = None, ipc_shm: str | None = None
               ) -> dict[str, Any]:
    """The OCI runtime config for a Docker container.

    ``config`` is Docker's ContainerConfig, ``host_config`` its HostConfig,
    ``image_config`` the ``config`` object of the image's config JSON. ``rootfs`` is the
    container's root filesystem: written as ``root.path`` and where the user is looked
    up. ``hostname`` is the container's hostname (Docker: ``Config.Hostname``, or the
    first 12 characters of the id). ``resolv_conf``, ``hosts_file`` and ``hostname_file``
    are host files to bind-mount at ``/etc/resolv.conf``, ``/etc/hosts`` and
    ``/etc/hostname``; ``netns_path`` is the network namespace to join: that of
    ``NetworkMode`` ``container:<name>``, or the one the engine made for the container's
    networks, resolved by the caller. ``init_path`` is the binary mounted as
    ``/sbin/docker-init`` for ``HostConfig.Init``. ``data_root`` is the engine's data
    directory: a bind of it or of a directory above it defaults to ``rslave``. ``host``
    defaults to :meth:`HostInfo.detect`. ``pidns_path`` and ``ipcns_path`` are the
    namespaces of ``PidMode``/``IpcMode`` ``container:<name>`` (the other container's
    ``/proc/<pid>/ns/...``); ``ipc_shm`` the host directory bound at ``/dev/shm`` for
    ``container:<name>`` (that container's) and ``shareable`` (its own; without it, a
    shareable container gets the default tmpfs).

    Raises :class:`InvalidArgument` for a bad or conflicting field (Docker's message
    where it has one), :class:`NotFound` for an unknown network.
    """
    host = host or HostInfo.detect()
    cfg = Fields(config, "Config")
    hc = Fields(host_config, "HostConfig")
    image = Fields(image_config, "Image.Config")
    if type(container_id) is not str or not _CONTAINER_ID.fullmatch(container_id):
        raise InvalidArgument(f"invalid container id {container_id!r}")
    if type(hostname) is not str or not hostname or len(hostname.encode()) > 64 \
            or "\0" in hostname:
        raise InvalidArgument(f"invalid hostname {hostname!r}: 1 to 64 bytes")
    _check_config(cfg)
    for name in _UNSUPPORTED:
        if hc.get(name):
            raise hc.fail(name, "is not supported yet")
    for name in _REALTIME:
        if hc.get(name):
            raise hc.fail(name, "real-time CPU scheduling (cpu.rt_period_us, "
                                "cpu.rt_runtime_us) is not supported")
    create_warnings(host_config, host=host)
    userns = hc.string("UsernsMode")
    if userns not in ("", "host"):
        raise hc.fail("UsernsMode", f"user namespaces are not supported yet ({userns})")

    tty = cfg.flag("Tty")
    privileged = hc.flag("Privileged")
    readonly_rootfs = hc.flag("ReadonlyRootfs")
    domainname = cfg.string("Domainname")

    # ---- namespaces ------------------------------------------------------------------
    network_mode = hc.string("NetworkMode")
    namespaces: list[dict[str, Any]] = [{"type": "mount"}]
    network_private = True
    if network_mode == "host":
        network_private = False
    elif network_mode.startswith("container:"):
        network_private = False
        if cfg.string("Hostname"):
            raise InvalidArgument("conflicting options: hostname and the network mode")
        if not netns_path:
            raise hc.fail("NetworkMode", f"{network_mode}: the caller must resolve the "
                                         "container's network namespace (netns_path)")
        namespaces.append({"type": "network", "path": netns_path})
    elif netns_path:     # a network's namespace, made by the engine
        namespaces.append({"type": "network", "path": netns_path})
    elif network_mode in ("", "default", "bridge", "none"):
        namespaces.append({"type": "network"})
    else:
        raise NotFound(f"network {network_mode} not found")
    uts_mode = _mode(hc, "UTSMode", "UTS", ("", "host"))
    uts_private = uts_mode != "host"
    if uts_private:
        namespaces.append({"type": "uts"})
    elif cfg.string("Hostname"):
        raise InvalidArgument("conflicting options: hostname and the UTS mode")
    pid_mode = _mode(hc, "PidMode", "PID", ("", "host", "container"), pidns_path)
    pid_private = pid_mode == ""
    if pid_private:
        namespaces.append({"type": "pid"})
    elif pid_mode == "container":
        namespaces.append({"type": "pid", "path": pidns_path})
    ipc_mode = _mode(hc, "IpcMode", "IPC", ("", "private", "shareable", "none", "host",
                                            "container"), ipcns_path)
    if ipc_mode == "container":
        namespaces.append({"type": "ipc", "path": ipcns_path})
    elif ipc_mode != "host":
        namespaces.append({"type": "ipc"})
    cgroupns = hc.string("CgroupnsMode")
    if cgroupns not in ("", "private", "host"):
        raise InvalidArgument(f"invalid cgroup namespace mode: {cgroupns}")
    if not cgroupns:  # adaptContainerSettings: v2 private, v1 host (and privileged on v1)
        cgroupns = "private" if host.cgroup_version == 2 else "host"
    if cgroupns == "private":
        namespaces.append({"type": "cgroup"})

    # ---- process ---------------------------------------------------------------------
    args = command(cfg, image)
    env = environment(cfg, image, hostname=hostname, tty=tty)
    user = bundle_user.resolve_user(rootfs, cfg.string("User") or image.string("User"),
                                    hc.strings("GroupAdd") or [])
    cap_list = capability_list(hc, privileged=privileged)
    capabilities: dict[str, list[str]] = {"bounding": list(cap_list)}
    if user.uid == 0:  # oci.SetCapabilities: a non-root user gets what execve would give
        capabilities["effective"] = list(cap_list)
        capabilities["permitted"] = list(cap_list)
    oom_score_adj = _oom_score_adj(hc)
    process_user: dict[str, Any] = {"uid": user.uid, "gid": user.gid}
    if user.additional_gids:
        process_user["additionalGids"] = user.additional_gids
    process: dict[str, Any] = {
        "terminal": tty,
        "user": process_user,
        "args": args,
        "env": env,
        "cwd": working_dir(cfg, image),
        "capabilities": capabilities,
        "noNewPrivileges": no_new_privileges(hc),
        "oomScoreAdj": oom_score_adj,
    }
    rlimits = bundle_resources.rlimits(hc)
    if rlimits:
        process["rlimits"] = rlimits

    # ---- mounts ----------------------------------------------------------------------
    shm_size = hc.number("ShmSize")
    if shm_size < 0:
        raise InvalidArgument("SHM size can not be less than 0")
    points = bundle_mounts.user_mounts(
        hc, data_root=posixpath.normpath(data_root) if data_root else None)
    taken = {p.destination for p in points}
    for path, dest in ((resolv_conf, "/etc/resolv.conf"), (hostname_file, "/etc/hostname"),
                       (hosts_file, "/etc/hosts")):
        if path is not None and dest not in taken:
            points.append(bundle_mounts.MountPoint(dest, "bind", source=path,
                                                   writable=not readonly_rootfs))
    if ipc_mode == "host" and "/dev/shm" not in taken:
        points.append(bundle_mounts.MountPoint("/dev/shm", "bind", source="/dev/shm"))
    if ipc_mode in ("container", "shareable") and ipc_shm and "/dev/shm" not in taken:
        points.append(bundle_mounts.MountPoint("/dev/shm", "bind", source=ipc_shm))
    elif ipc_mode == "container" and "/dev/shm" not in taken:
        raise hc.fail("IpcMode", "the caller must resolve the container's /dev/shm")
    defaults = bundle_mounts.default_mounts()
    use_init = hc.flag("Init") and pid_private
    if use_init:
        if not init_path or not os.path.isfile(init_path):
            raise SystemFault(f"HostConfig.Init: the init binary {init_path or '(none)'} "
                              "is missing (install Debian's tini package)")
        defaults.append({"destination": INIT_IN_CONTAINER, "type": "bind",
                         "source": init_path, "options": ["bind", "ro"]})
        process["args"] = [INIT_IN_CONTAINER, "--", *args]
    mounts = bundle_mounts.assemble(defaults, points, shm_size=shm_size or
                                    bundle_mounts.DEFAULT_SHM_SIZE,
                                    ipc_none=ipc_mode == "none",
                                    readonly_rootfs=readonly_rootfs, privileged=privileged)

    # ---- linux -----------------------------------------------------------------------
    resources = bundle_resources.resources(hc, swap_limit=host.swap_limit, cpus=host.cpus,
                                           online_cpus=host.online_cpus,
                                           online_mems=host.online_mems)
    for field in host.missing:      # warned about at create: dropped, as moby does
        section, key = _DISCARDED[field][0]
        resources.get(section, {}).pop(key, None)
        if resources.get(section) == {}:
            del resources[section]
    devices, device_rules = bundle_mounts.devices(hc, privileged=privileged, dev=host.dev)
    resources["devices"] = device_rules
    sysctl = {name: DEFAULT_NET_SYSCTLS[name] for name in host.net_sysctls
              if network_private and name in DEFAULT_NET_SYSCTLS}
    sysctl.update(bundle_resources.sysctls(hc, network=network_mode != "host",
                                           ipc=ipc_mode != "host", uts=uts_private,
                                           domainname=domainname))
    linux: dict[str, Any] = {
        "namespaces": namespaces,
        "devices": devices,
        "resources": resources,
        "cgroupsPath": cgroups_path(hc, default_parent=cgroup_parent,
                                    container_id=container_id),
    }
    if sysctl:
        linux["sysctl"] = sysctl
    masked = hc.strings("MaskedPaths")
    readonly = hc.strings("ReadonlyPaths")
    if privileged or _systempaths_unconfined(hc):
        masked, readonly = [], []
    for name, paths, default in (("maskedPaths", masked, DEFAULT_MASKED_PATHS),
                                 ("readonlyPaths", readonly, DEFAULT_READONLY_PATHS)):
        chosen = list(default) if paths is None else paths
        for i, path in enumerate(chosen):
            if not path.startswith("/"):
                field = "MaskedPaths" if name == "maskedPaths" else "ReadonlyPaths"
                raise hc.fail(f"{field}[{i}]", f"must be an absolute path, got {path!r}")
        if chosen:
            linux[name] = chosen
    propagation = _rootfs_propagation(points)
    if propagation:
        linux["rootfsPropagation"] = propagation

    spec: dict[str, Any] = {
        "ociVersion": OCI_VERSION,
        "process": process,
        "root": {"path": rootfs, "readonly": readonly_rootfs},
        "mounts": mounts,
        "linux": linux,
    }
    if uts_private:
        spec["hostname"] = hostname
        if domainname:
            spec["domainname"] = domainname
    annotations = hc.string_map("Annotations")
    if annotations:
        spec["annotations"] = annotations
    return spec


def _rootfs_propagation(points: list[bundle_mounts.MountPoint]) -> str:
    """A shared bind needs a shared root (moby's WithMounts). moby also writes "rslave"
    for a slave bind; that is already the runtime's default (runc's too), and the OCI
    schema's enum has no "rslave", so nothing is written for it."""
    kinds = {p.propagation for p in points if p.kind == "bind"}
    return "shared" if kinds & {"shared", "rshared"} else ""
