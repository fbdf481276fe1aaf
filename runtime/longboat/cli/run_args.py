"""``run``/``create`` flags turned into the API's container configuration, as the docker
CLI turns them (its ``opts`` and ``runconfig`` packages): sizes (``512m``), ``--cpus``,
env and label files, ``--ulimit``, ``--mount``, ``-v``, ``--device``, ``--restart``,
``--tmpfs``. Pure functions: no client, no I/O besides reading the files named."""

from __future__ import annotations

import os
import re
from fractions import Fraction

TYPE_CHECKING = False
if TYPE_CHECKING:
    import argparse
    from collections.abc import Iterable, Mapping
    from typing import Any


class ArgumentError(Exception):
    """A flag's value docker would refuse (the CLI exits 125 with this text)."""


# -- sizes and numbers -----------------------------------------------------------------------
_SIZE = re.compile(r"^(\d+(?:\.\d+)?) ?([kKmMgGtTpP])?[iI]?[bB]?$")
_UNITS = {"": 1, "k": 1 << 10, "m": 1 << 20, "g": 1 << 30, "t": 1 << 40, "p": 1 << 50}


def ram_in_bytes(text: str) -> int:
    """go-units ``RAMInBytes``: "512m" -> 536870912, "1.5g", "64k", "100" (bytes);
    binary units whatever the suffix says."""
    match = _SIZE.match(text.strip())
    if not match:
        raise ArgumentError(f"invalid size: '{text}'")
    number, unit = match.groups()
    return int(float(number) * _UNITS[(unit or "").lower()])


def mem_bytes(text: str, flag: str) -> int:
    try:
        return ram_in_bytes(text)
    except ArgumentError as exc:
        raise ArgumentError(f'invalid argument "{text}" for "{flag}" flag: {exc}') from None


def swap_bytes(text: str) -> int:
    """``--memory-swap``: a size, or -1 for unlimited."""
    if text.strip() == "-1":
        return -1
    return mem_bytes(text, "--memory-swap")


def nano_cpus(text: str) -> int:
    """``--cpus 1.5`` -> 1500000000 (exact, as docker's big.Rat)."""
    try:
        value = Fraction(text.strip())
    except (ValueError, ZeroDivisionError):
        raise ArgumentError(f'invalid argument "{text}" for "--cpus" flag: failed to parse '
                            f"{text} as a rational number") from None
    nanos = value * 1_000_000_000
    if nanos.denominator != 1:
        raise ArgumentError(f'invalid argument "{text}" for "--cpus" flag: value is too '
                            "precise")
    return int(nanos)


# -- env and labels --------------------------------------------------------------------------
def env_value(item: str, environ: Mapping[str, str] | None = None) -> str:
    """``-e KEY=VALUE`` as given; ``-e KEY`` takes KEY's value from our environment
    (left as "KEY" when it is not set, as docker does)."""
    env = os.environ if environ is None else environ
    key, eq, _ = item.partition("=")
    if not key:
        raise ArgumentError(f"invalid environment variable: {item}")
    if eq:
        return item
    if key in env:
        return f"{key}={env[key]}"
    return item


def read_kv_file(path: str, environ: Mapping[str, str] | None = None, *,
                 lookup: bool = True) -> list[str]:
    """docker's ``--env-file``/``--label-file``: KEY=VALUE lines (values kept verbatim),
    ``#`` comments and blank lines skipped; a bare KEY takes our environment's value or is
    dropped when unset."""
    env = os.environ if environ is None else environ
    try:
        with open(path, encoding="utf-8-sig") as f:
            text = f.read()
    except OSError as exc:
        raise ArgumentError(f"open {path}: {(exc.strerror or str(exc)).lower()}") from None
    lines: list[str] = []
    for number, raw in enumerate(text.splitlines(), 1):
        line = raw.lstrip()
        if not line or line.startswith("#"):
            continue
        key, eq, value = line.partition("=")
        if not key:
            raise ArgumentError(f"invalid variable at line {number} of {path}: "
                                "no variable name")
        if any(c.isspace() for c in key):
            raise ArgumentError(f"variable '{key}' contains whitespaces")
        if eq:
            lines.append(f"{key}={value}")
        elif not lookup:
            lines.append(key)
        elif key.strip() in env:
            lines.append(f"{key.strip()}={env[key.strip()]}")
    return lines


def labels_map(items: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = value
    return out


# -- resources and security ------------------------------------------------------------------
ULIMITS = {"core", "cpu", "data", "fsize", "locks", "memlock", "msgqueue", "nice",
           "nofile", "nproc", "rss", "rtprio", "rttime", "sigpending", "stack"}


def ulimit(text: str) -> dict[str, Any]:
    """``nofile=1024:2048`` -> {"Name": "nofile", "Soft": 1024, "Hard": 2048}; one number
    is both."""
    name, eq, values = text.partition("=")
    if not eq:
        raise ArgumentError(f"invalid ulimit argument: {text}")
    if name not in ULIMITS:
        raise ArgumentError(f"invalid ulimit type: {name}")
    soft_text, colon, hard_text = values.partition(":")
    try:
        soft = int(soft_text)
        hard = int(hard_text) if colon else soft
    except ValueError:
        raise ArgumentError(f"invalid ulimit argument: {text}") from None
    if soft > hard:
        raise ArgumentError(f"ulimit soft limit must be less than or equal to hard limit: "
                            f"{soft} > {hard}")
    return {"Name": name, "Soft": soft, "Hard": hard}


def restart_policy(text: str) -> dict[str, Any]:
    """``no``, ``always``, ``unless-stopped``, ``on-failure[:N]``."""
    name, colon, count = text.partition(":")
    if colon and not name:
        raise ArgumentError("invalid restart policy format: no policy provided before colon")
    retries = 0
    if count:
        try:
            retries = int(count)
        except ValueError:
            raise ArgumentError("invalid restart policy format: maximum retry count must be "
                                "an integer") from None
    if name not in ("", "no", "always", "unless-stopped", "on-failure"):
        raise ArgumentError(f"invalid restart policy '{name}'")
    if retries and name != "on-failure":
        raise ArgumentError("invalid restart policy: maximum retry count can only be used "
                            "with 'on-failure'")
    if retries < 0:
        raise ArgumentError("invalid restart policy: maximum retry count cannot be negative")
    return {"Name": name or "no", "MaximumRetryCount": retries}


def device(text: str) -> dict[str, str]:
    """``/dev/x[:/dev/y[:rwm]]``."""
    parts = text.split(":")
    host = parts[0]
    inside = host
    permissions = "rwm"
    if len(parts) == 2:
        if _valid_permissions(parts[1]):
            permissions = parts[1]
        else:
            inside = parts[1]
    elif len(parts) == 3:
        inside, permissions = parts[1], parts[2]
        if not _valid_permissions(permissions):
            raise ArgumentError(f"bad mode specified: {permissions}")
    elif len(parts) > 3:
        raise ArgumentError(f"invalid device specification: {text}")
    if not host.startswith("/") or not inside.startswith("/"):
        raise ArgumentError(f"{text} is not an absolute path")
    return {"PathOnHost": host, "PathInContainer": inside, "CgroupPermissions": permissions}


def _valid_permissions(text: str) -> bool:
    return bool(text) and all(c in "rwm" for c in text) and len(set(text)) == len(text)


def capability(text: str) -> str:
    """docker's normalisation: upper case, with the ``CAP_`` prefix (``ALL`` as it is)."""
    name = text.strip().upper()
    if name == "ALL" or name.startswith("CAP_"):
        return name
    return "CAP_" + name


def sysctl(text: str) -> tuple[str, str]:
    key, eq, value = text.partition("=")
    if not eq or not key:
        raise ArgumentError(f"invalid argument \"{text}\" for \"--sysctl\" flag: "
                            f"sysctl '{text}' is not allowed")
    return key, value


def security_opts(items: Iterable[str]) -> list[str]:
    """``seccomp=PROFILE.json`` is sent with the profile's contents, as docker does."""
    out: list[str] = []
    for item in items:
        key, sep, value = item.partition("=" if "=" in item else ":")
        if key == "seccomp" and sep and value != "unconfined":
            try:
                with open(value) as f:
                    contents = f.read()
            except OSError as exc:
                raise ArgumentError(f"opening seccomp profile ({value}) failed: "
                                    f"{exc.strerror or exc}") from None
            out.append(f"seccomp={contents}")
        else:
            out.append(item)
    return out


# -- mounts ----------------------------------------------------------------------------------
def tmpfs(text: str) -> tuple[str, str]:
    """``--tmpfs /run:size=64m,mode=1777`` -> ("/run", "size=64m,mode=1777")."""
    path, _, options = text.partition(":")
    if not path.startswith("/"):
        raise ArgumentError(f"invalid mount path for tmpfs: {text}: must be absolute")
    return path, options


def volume(text: str, cwd: str | None = None) -> tuple[str | None, str]:
    """``-v SRC:DST[:OPTS]``: (the bind as it goes into Binds, None) or, for an
    anonymous volume ``-v /data``, (None, "/data")."""
    parts = text.split(":")
    if len(parts) == 1:
        if not text.startswith("/"):
            raise ArgumentError(f"invalid volume specification: '{text}'")
        return None, text
    if len(parts) > 3 or not parts[0] or not parts[1]:
        raise ArgumentError(f"invalid volume specification: '{text}'")
    source = parts[0]
    if source.startswith("."):
        source = os.path.abspath(os.path.join(cwd or os.getcwd(), source))
    if not parts[1].startswith("/"):
        raise ArgumentError(f"invalid volume specification: '{text}': invalid mount config: "
                            "invalid mount path: '" + parts[1] + "' mount path must be "
                            "absolute")
    return ":".join([source, *parts[1:]]), ""


_MOUNT_TRUE = ("", "1", "true")


def mount(text: str) -> dict[str, Any]:
    """``--mount type=bind,source=/a,target=/b,readonly`` (also ``type=tmpfs`` with
    ``tmpfs-size``/``tmpfs-mode``, ``type=volume`` with ``volume-opt``,
    ``volume-nocopy``, ``volume-label``) -> a HostConfig.Mounts entry."""
    import csv

    try:
        fields = next(csv.reader([text]))
    except (csv.Error, StopIteration):
        raise ArgumentError(f"invalid mount specification: {text}") from None
    spec: dict[str, Any] = {"Type": "volume"}
    bind: dict[str, Any] = {}
    tmpfs_options: dict[str, Any] = {}
    volume_options: dict[str, Any] = {}
    for field in fields:
        key, eq, value = field.partition("=")
        key = key.strip().lower()
        if not eq and key not in ("readonly", "ro", "volume-nocopy", "bind-recursive"):
            raise ArgumentError(f"invalid field '{field}' must be a key=value pair")
        if key == "type":
            if value not in ("bind", "volume", "tmpfs", "npipe", "cluster"):
                raise ArgumentError(f"invalid value for 'type': {value}")
            spec["Type"] = value
        elif key in ("source", "src"):
            spec["Source"] = value
        elif key in ("target", "dst", "destination"):
            spec["Target"] = value
        elif key in ("readonly", "ro"):
            if value.lower() not in (*_MOUNT_TRUE, "0", "false"):
                raise ArgumentError(f"invalid value for {key}: {value}")
            spec["ReadOnly"] = value.lower() in _MOUNT_TRUE
        elif key == "consistency":
            spec["Consistency"] = value
        elif key == "bind-propagation":
            if value not in ("private", "rprivate", "shared", "rshared", "slave",
                             "rslave"):
                raise ArgumentError(f"invalid value for bind-propagation: {value}")
            bind["Propagation"] = value
        elif key == "bind-nonrecursive":
            bind["NonRecursive"] = value.lower() in _MOUNT_TRUE
        elif key == "volume-nocopy":
            volume_options["NoCopy"] = value.lower() in _MOUNT_TRUE
        elif key == "volume-driver":
            volume_options.setdefault("DriverConfig", {})["Name"] = value
        elif key == "volume-opt":
            opt_key, _, opt_value = value.partition("=")
            driver = volume_options.setdefault("DriverConfig", {})
            driver.setdefault("Options", {})[opt_key] = opt_value
        elif key == "volume-label":
            label_key, _, label_value = value.partition("=")
            volume_options.setdefault("Labels", {})[label_key] = label_value
        elif key == "tmpfs-size":
            tmpfs_options["SizeBytes"] = ram_in_bytes(value)
        elif key == "tmpfs-mode":
            try:
                tmpfs_options["Mode"] = int(value, 8)
            except ValueError:
                raise ArgumentError(f"invalid value for {key}: {value}") from None
        else:
            raise ArgumentError(f"unexpected key '{key}' in '{field}'")
    kind = spec["Type"]
    if not spec.get("Target"):
        raise ArgumentError("target is required")
    if kind == "bind":
        if not spec.get("Source"):
            raise ArgumentError("source is required when specifying volume-* options"
                                if volume_options else "invalid mount config for type "
                                "\"bind\": field Source must not be empty")
        if volume_options or tmpfs_options:
            raise ArgumentError(f"cannot mix 'volume-*' or 'tmpfs-*' options with mount "
                                f"type '{kind}'")
        if bind:
            spec["BindOptions"] = bind
    elif kind == "tmpfs":
        if spec.get("Source"):
            raise ArgumentError("invalid mount config for type \"tmpfs\": field Source must "
                                "be empty")
        if bind or volume_options:
            raise ArgumentError(f"cannot mix 'bind-*' or 'volume-*' options with mount "
                                f"type '{kind}'")
        if tmpfs_options:
            spec["TmpfsOptions"] = tmpfs_options
    else:
        if bind or tmpfs_options:
            raise ArgumentError(f"cannot mix 'bind-*' or 'tmpfs-*' options with mount "
                                f"type '{kind}'")
        if volume_options:
            spec["VolumeOptions"] = volume_options
    return spec


def go_duration_ns(text: str | None, flag: str) -> int:
    """Go's ``time.ParseDuration`` (as docker's duration flags), in nanoseconds."""
    if not text or text in ("0", "+0", "-0"):
        return 0
    units = {"ns": 1, "us": 1_000, "µs": 1_000, "ms": 1_000_000, "s": 1_000_000_000,
             "m": 60_000_000_000, "h": 3_600_000_000_000}
    match = re.fullmatch(r"([-+]?)((?:(?:\d+\.?\d*|\.\d+)(?:ns|us|µs|ms|s|m|h))+)", text)
    if not match:
        raise ArgumentError(f'invalid argument "{text}" for "{flag}" flag: time: invalid '
                            f'duration "{text}"')
    total = sum(float(number) * units[unit] for number, unit in
                re.findall(r"(\d+\.?\d*|\.\d+)(ns|us|µs|ms|s|m|h)", match.group(2)))
    return -round(total) if match.group(1) == "-" else round(total)


def healthcheck(a: argparse.Namespace) -> dict[str, Any] | None:
    """Config.Healthcheck as docker's CLI sends it: zero fields left out."""
    interval = go_duration_ns(a.health_interval, "--health-interval")
    timeout = go_duration_ns(a.health_timeout, "--health-timeout")
    start_period = go_duration_ns(a.health_start_period, "--health-start-period")
    retries = a.health_retries or 0
    given = bool(a.health_cmd) or bool(interval or timeout or start_period or retries)
    if a.no_healthcheck:
        if given:
            raise ArgumentError("--no-healthcheck conflicts with --health-* options")
        return {"Test": ["NONE"]}
    if not given:
        return None
    for value, flag in ((interval, "--health-interval"), (timeout, "--health-timeout"),
                        (retries, "--health-retries"),
                        (start_period, "--health-start-period")):
        if value < 0:
            raise ArgumentError(f"{flag} cannot be negative")
    check: dict[str, Any] = {}
    if a.health_cmd:
        check["Test"] = ["CMD-SHELL", a.health_cmd]
    for key, value in (("Interval", interval), ("Timeout", timeout),
                       ("StartPeriod", start_period), ("Retries", retries)):
        if value:
            check[key] = value
    return check


# -- the whole configuration -----------------------------------------------------------------
def container_config(a: argparse.Namespace, *, detach: bool,
                     environ: Mapping[str, str] | None = None) -> dict[str, Any]:
    """The ``POST /containers/create`` body for ``run``/``create`` flags: the Config
    with ``HostConfig`` and ``NetworkingConfig`` inside."""
    attach = set(a.attach or [])
    for stream in attach:
        if stream not in ("stdin", "stdout", "stderr"):
            raise ArgumentError(f"valid streams are STDIN, STDOUT and STDERR: {stream}")
    if detach and attach:
        raise ArgumentError("Conflicting options: -a and -d")
    attach_stdin = "stdin" in attach or (not detach and not attach and a.interactive)
    attach_stdout = "stdout" in attach or (not detach and not attach)
    attach_stderr = "stderr" in attach or (not detach and not attach)
    if attach and a.interactive:
        attach_stdin = True

    env: list[str] = []
    for path in a.env_file:
        env += read_kv_file(path, environ)
    env += [env_value(item, environ) for item in a.env]
    labels: list[str] = []
    for path in a.label_file:
        labels += read_kv_file(path, environ, lookup=False)
    labels += a.label

    binds: list[str] = []
    volumes: dict[str, Any] = {}
    for item in a.volume:
        bind, anonymous = volume(item)
        if bind is not None:
            binds.append(bind)
        else:
            volumes[anonymous] = {}

    entrypoint: list[str] | None = None
    if a.entrypoint is not None:
        entrypoint = [a.entrypoint] if a.entrypoint else [""]

    restart = restart_policy(a.restart) if a.restart else {"Name": "no",
                                                           "MaximumRetryCount": 0}
    if a.rm and restart["Name"] not in ("no", ""):
        raise ArgumentError("Conflicting options: --restart and --rm")

    log_options: dict[str, str] = {}
    for item in a.log_opt:
        key, eq, value = item.partition("=")
        if not eq:
            raise ArgumentError(f"invalid key-value pair format in driver options: {item}")
        log_options[key] = value

    from longboat.cli import network_args as net

    network_mode, endpoints = net.networking(a)
    exposed, port_bindings = net.port_specs(a.publish)
    exposed.update({k: v for k, v in net.exposed_ports(a.expose).items()
                    if k not in exposed})
    host_config: dict[str, Any] = {
        "Binds": binds or None,
        "NetworkMode": network_mode,
        "PortBindings": port_bindings,
        "PublishAllPorts": a.publish_all,
        "Dns": [net.ip_address(d, "--dns") for d in a.dns],
        "DnsOptions": list(a.dns_option),
        "DnsSearch": [net.dns_search(d) for d in a.dns_search],
        "ExtraHosts": [net.extra_host(h) for h in a.add_host] or None,
        "Links": [net.link(item) for item in a.link] or None,
        "RestartPolicy": restart,
        "AutoRemove": a.rm,
        "LogConfig": {"Type": a.log_driver or "", "Config": log_options},
        "CapAdd": [capability(c) for c in a.cap_add] or None,
        "CapDrop": [capability(c) for c in a.cap_drop] or None,
        "Privileged": a.privileged,
        "ReadonlyRootfs": a.read_only,
        "SecurityOpt": security_opts(a.security_opt) or None,
        "Tmpfs": dict(tmpfs(t) for t in a.tmpfs) or None,
        "Mounts": [mount(m) for m in a.mount] or None,
        "VolumesFrom": list(a.volumes_from) or None,
        "Devices": [device(d) for d in a.device],
        "Ulimits": [ulimit(u) for u in a.ulimit] or None,
        "Sysctls": dict(sysctl(s) for s in a.sysctl) or None,
        "OomKillDisable": a.oom_kill_disable,
        "ShmSize": mem_bytes(a.shm_size, "--shm-size") if a.shm_size else 0,
        "Memory": mem_bytes(a.memory, "--memory") if a.memory else 0,
        "MemoryReservation": mem_bytes(a.memory_reservation, "--memory-reservation")
        if a.memory_reservation else 0,
        "MemorySwap": swap_bytes(a.memory_swap) if a.memory_swap else 0,
        "NanoCpus": nano_cpus(a.cpus) if a.cpus else 0,
        "CpuShares": a.cpu_shares or 0,
        "CpusetCpus": a.cpuset_cpus or "",
        "BlkioWeight": a.blkio_weight or 0,
    }
    from longboat.cli import run_flags

    # namespaces, cgroups, the runtime: what docker's CLI sends, given or not
    host_config.update(run_flags.host_config_fields(a))
    if a.pids_limit is not None:
        host_config["PidsLimit"] = a.pids_limit
    if a.init:
        host_config["Init"] = True
    config: dict[str, Any] = {
        "Hostname": a.hostname or "",
        "Domainname": a.domainname or "",
        "User": a.user or "",
        "AttachStdin": attach_stdin,
        "AttachStdout": attach_stdout,
        "AttachStderr": attach_stderr,
        "Tty": a.tty,
        "OpenStdin": a.interactive,
        "StdinOnce": a.interactive and attach_stdin,
        "Env": env,
        "Cmd": list(a.command) if a.command else None,
        "Image": a.image,
        "Volumes": volumes,
        "WorkingDir": a.workdir or "",
        "Entrypoint": entrypoint,
        "OnBuild": None,
        "Labels": labels_map(labels),
        "HostConfig": host_config,
        "NetworkingConfig": {"EndpointsConfig": endpoints},
    }
    if exposed:
        config["ExposedPorts"] = exposed
    if a.mac_address:
        config["MacAddress"] = net.mac_address(a.mac_address)
    if a.stop_signal:
        config["StopSignal"] = a.stop_signal
    if a.stop_timeout is not None:
        config["StopTimeout"] = a.stop_timeout
    check = healthcheck(a)
    if check is not None:
        config["Healthcheck"] = check
    return config
