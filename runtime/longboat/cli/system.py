"""``version``, ``info``, ``system df``, ``system prune`` and ``system dial-stdio``."""

from __future__ import annotations

import os
import platform
import sys

from longboat import __version__
from longboat.cli.main import CommandError, Context
from longboat.cli.output import bytes_size, human_size, tabwrite
from longboat.client.api import API_VERSION, ClientError

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.cli.template import Context as Row


def _arch() -> str:
    machine = platform.machine()
    return {"x86_64": "amd64", "aarch64": "arm64"}.get(machine, machine)


def _template(fmt: str, data: Any) -> str:
    from longboat.cli.template import Template

    if fmt == "json":
        from longboat.cli.output import go_json

        return go_json(data) + "\n"
    return Template(fmt.replace("\\t", "\t").replace("\\n", "\n")).execute(data) + "\n"


# -- version ---------------------------------------------------------------------------------
def version(ctx: Context) -> int:
    client = ctx.client()
    info: dict[str, Any] = {
        "Platform": {"Name": ""}, "Version": __version__, "ApiVersion": API_VERSION,
        "DefaultAPIVersion": API_VERSION, "GitCommit": "",
        "GoVersion": f"python{platform.python_version()}", "Os": "linux", "Arch": _arch(),
        "BuildTime": "", "Context": "default"}
    server: dict[str, Any] | None = None
    failure: ClientError | None = None
    try:
        server = client.version()
        info["ApiVersion"] = client.api_version
    except ClientError as exc:
        failure = exc
    fmt = ctx.args.format
    if fmt:
        ctx.out.write(_template(fmt, {"Client": info, "Server": server}))
    else:
        ctx.out.write(tabwrite(_version_text(info, server), 20, 1, 1))
    if failure is not None:
        raise failure
    return 0


def _version_text(client: dict[str, Any], server: dict[str, Any] | None) -> str:
    api = client["ApiVersion"]
    if api != client["DefaultAPIVersion"]:
        api += f" (downgraded from {client['DefaultAPIVersion']})"
    name = client["Platform"]["Name"]
    lines = [f"Client:{' ' + name if name else ''}",
             f" Version:\t{client['Version']}",
             f" API version:\t{api}",
             f" Go version:\t{client['GoVersion']}",
             f" Git commit:\t{client['GitCommit']}",
             f" Built:\t{client['BuildTime']}",
             f" OS/Arch:\t{client['Os']}/{client['Arch']}",
             f" Context:\t{client['Context']}"]
    if server is not None:
        name = (server.get("Platform") or {}).get("Name", "")
        lines += ["", f"Server:{' ' + name if name else ''}"]
        for component in server.get("Components") or []:
            details = component.get("Details") or {}
            lines.append(f" {component.get('Name', '')}:")
            if component.get("Name") == "Engine":
                lines += [
                    f"  Version:\t{component.get('Version', '')}",
                    f"  API version:\t{details.get('ApiVersion', '')} (minimum version "
                    f"{details.get('MinAPIVersion', '')})",
                    f"  Go version:\t{details.get('GoVersion', '')}",
                    f"  Git commit:\t{details.get('GitCommit', '')}",
                    f"  Built:\t{details.get('BuildTime', '')}",
                    f"  OS/Arch:\t{details.get('Os', '')}/{details.get('Arch', '')}",
                    f"  Experimental:\t{details.get('Experimental', '')}"]
            else:
                lines.append(f"  Version:\t{component.get('Version', '')}")
                lines += [f"  {key}:\t{details[key]}" for key in sorted(details)]
    return "\n".join(lines) + "\n"


# -- info ------------------------------------------------------------------------------------
def info(ctx: Context) -> int:
    client_info = {"Version": __version__, "Context": "default", "Debug": ctx.args.debug}
    fmt = ctx.args.format
    if fmt:
        data = ctx.client().info()
        data["ClientInfo"] = client_info
        ctx.out.write(_template(fmt, data))
        return 0
    ctx.out.write("Client:\n"
                  f" Version:    {__version__}\n"
                  " Context:    default\n"
                  f" Debug Mode: {'true' if ctx.args.debug else 'false'}\n\n")
    ctx.out.flush()
    data = ctx.client().info()
    ctx.out.write(server_info_text(data))
    for warning in data.get("Warnings") or []:
        ctx.err.write(f"{warning}\n")
    return 0


def _bool(value: Any) -> str:
    return "true" if value else "false"


def server_info_text(info: dict[str, Any]) -> str:
    """docker's ``prettyPrintServerInfo`` for the fields longboatd reports."""
    out: list[str] = ["Server:"]

    def add(label: str, value: Any, *, nonempty: bool = False) -> None:
        if nonempty and value in ("", None):
            return
        if isinstance(value, bool):
            value = _bool(value)
        out.append(f"{label} {value}")

    add(" Containers:", info.get("Containers", 0))
    add("  Running:", info.get("ContainersRunning", 0))
    add("  Paused:", info.get("ContainersPaused", 0))
    add("  Stopped:", info.get("ContainersStopped", 0))
    add(" Images:", info.get("Images", 0))
    add(" Server Version:", info.get("ServerVersion", ""), nonempty=True)
    add(" Storage Driver:", info.get("Driver", ""), nonempty=True)
    for pair in info.get("DriverStatus") or []:
        out.append(f"  {pair[0]}: {pair[1]}")
    for pair in info.get("SystemStatus") or []:
        out.append(f" {pair[0]}: {pair[1]}")
    add(" Logging Driver:", info.get("LoggingDriver", ""))
    add(" Cgroup Driver:", info.get("CgroupDriver", ""))
    add(" Cgroup Version:", info.get("CgroupVersion", ""), nonempty=True)
    plugins = info.get("Plugins") or {}
    out.append(" Plugins:")
    add("  Volume:", " ".join(plugins.get("Volume") or []))
    add("  Network:", " ".join(plugins.get("Network") or []))
    if plugins.get("Authorization"):
        add("  Authorization:", " ".join(plugins["Authorization"]))
    add("  Log:", " ".join(plugins.get("Log") or []))
    add(" Swarm:", (info.get("Swarm") or {}).get("LocalNodeState", ""))
    runtimes = info.get("Runtimes") or {}
    if runtimes:
        add(" Runtimes:", " ".join(sorted(runtimes)))
        add(" Default Runtime:", info.get("DefaultRuntime", ""))
    if info.get("OSType") == "linux":
        add(" Init Binary:", info.get("InitBinary", ""))
        for name, key in (("containerd", "ContainerdCommit"), ("runc", "RuncCommit"),
                          ("init", "InitCommit")):
            commit = info.get(key) or {}
            line = f" {name} version: {commit.get('ID', '')}"
            if commit.get("ID", "") != commit.get("Expected", commit.get("ID", "")):
                line += f" (expected: {commit['Expected']})"
            out.append(line)
        options = info.get("SecurityOptions") or []
        if options:
            out.append(" Security Options:")
            for option in options:
                fields = dict(kv.partition("=")[::2] for kv in str(option).split(","))
                out.append(f"  {fields.get('name', option)}")
                if fields.get("profile"):
                    out.append(f"   Profile: {fields['profile']}")
    add(" Kernel Version:", info.get("KernelVersion", ""))
    add(" Operating System:", info.get("OperatingSystem", ""))
    add(" OSType:", info.get("OSType", ""))
    add(" Architecture:", info.get("Architecture", ""))
    add(" CPUs:", info.get("NCPU", 0))
    add(" Total Memory:", bytes_size(int(info.get("MemTotal") or 0)))
    add(" Name:", info.get("Name", ""), nonempty=True)
    add(" ID:", info.get("ID", ""), nonempty=True)
    add(" Docker Root Dir:", info.get("DockerRootDir", ""))
    add(" Debug Mode:", bool(info.get("Debug")))
    if info.get("Debug"):
        add("  File Descriptors:", info.get("NFd", 0))
        add("  Goroutines:", info.get("NGoroutines", 0))
    add(" HTTP Proxy:", info.get("HttpProxy", ""), nonempty=True)
    add(" HTTPS Proxy:", info.get("HttpsProxy", ""), nonempty=True)
    add(" No Proxy:", info.get("NoProxy", ""), nonempty=True)
    if info.get("Labels"):
        out.append(" Labels:")
        out += [f"  {label}" for label in info["Labels"]]
    add(" Experimental:", bool(info.get("ExperimentalBuild")))
    registry = info.get("RegistryConfig") or {}
    cidrs = registry.get("InsecureRegistryCIDRs") or []
    indexes = registry.get("IndexConfigs") or {}
    if cidrs or indexes:
        out.append(" Insecure Registries:")
        out += [f"  {index.get('Name', name)}" for name, index in indexes.items()
                if isinstance(index, dict) and not index.get("Secure", True)]
        out += [f"  {cidr}" for cidr in cidrs]
    if registry.get("Mirrors"):
        out.append(" Registry Mirrors:")
        out += [f"  {mirror}" for mirror in registry["Mirrors"]]
    add(" Live Restore Enabled:", bool(info.get("LiveRestoreEnabled")))
    return "\n".join(out) + "\n\n"


# -- system df -------------------------------------------------------------------------------
DF_HEADERS = {"Type": "TYPE", "TotalCount": "TOTAL", "Active": "ACTIVE", "Size": "SIZE",
              "Reclaimable": "RECLAIMABLE"}
DF_TABLE = "table {{.Type}}\t{{.TotalCount}}\t{{.Active}}\t{{.Size}}\t{{.Reclaimable}}"
DF_IMAGES = ("table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}\t"
             "{{.SharedSize}}\t{{.UniqueSize}}\t{{.Containers}}")
DF_CONTAINERS = {"ID": "CONTAINER ID", "Image": "IMAGE", "Command": "COMMAND",
                 "LocalVolumes": "LOCAL VOLUMES", "Size": "SIZE", "RunningFor": "CREATED",
                 "Status": "STATUS", "Names": "NAMES"}
DF_VOLUMES = {"Name": "VOLUME NAME", "Links": "LINKS", "Size": "SIZE"}
DF_CACHE = {"ID": "CACHE ID", "CacheType": "CACHE TYPE", "Size": "SIZE",
            "CreatedSince": "CREATED", "LastUsedSince": "LAST USED", "UsageCount": "USAGE",
            "Shared": "SHARED"}


def _reclaimable(reclaimable: int, total: int) -> str:
    if total > 0:
        return f"{human_size(reclaimable)} ({reclaimable * 100 // total}%)"
    return human_size(reclaimable)


def df_rows(usage: dict[str, Any]) -> list[Row]:
    from longboat.cli.template import Context as Row

    images = usage.get("Images") or []
    layers = int(usage.get("LayersSize") or 0)
    used = sum(int(i.get("Size") or 0) - int(i.get("SharedSize") or 0) for i in images
               if int(i.get("Containers") or 0) > 0 and int(i.get("SharedSize", 0)) != -1)
    containers = usage.get("Containers") or []
    active_states = ("running", "paused", "restarting")
    c_active = [c for c in containers if str(c.get("State", "")) in active_states]
    c_size = sum(int(c.get("SizeRw") or 0) for c in containers)
    c_free = sum(int(c.get("SizeRw") or 0) for c in containers if c not in c_active)
    volumes = usage.get("Volumes") or []
    v_usage = [v.get("UsageData") or {} for v in volumes]
    v_size = sum(int(u.get("Size") or 0) for u in v_usage if int(u.get("Size", -1)) != -1)
    v_free = sum(int(u.get("Size") or 0) for u in v_usage
                 if int(u.get("RefCount") or 0) == 0 and int(u.get("Size", -1)) != -1)
    cache = usage.get("BuildCache") or []
    b_size = sum(int(b.get("Size") or 0) for b in cache if not b.get("Shared"))
    b_free = sum(int(b.get("Size") or 0) for b in cache
                 if not b.get("Shared") and not b.get("InUse"))

    def row(kind: str, total: int, active: int, size: int, free: str) -> Row:
        return Row("*formatter.diskUsageContext", {
            "Type": kind, "TotalCount": str(total), "Active": str(active),
            "Size": human_size(size), "Reclaimable": free})

    return [
        row("Images", len(images), sum(1 for i in images if int(i.get("Containers") or 0) > 0),
            layers, _reclaimable(layers - used, layers)),
        row("Containers", len(containers), len(c_active), c_size,
            _reclaimable(c_free, c_size)),
        row("Local Volumes", len(volumes), sum(1 for u in v_usage
                                                if int(u.get("RefCount") or 0) > 0),
            v_size, _reclaimable(v_free, v_size)),
        row("Build Cache", len(cache), sum(1 for b in cache if b.get("InUse")), b_size,
            human_size(b_free)),
    ]


def _df_container_rows(containers: list[dict[str, Any]]) -> list[Row]:
    """docker's diskUsageContainerContext: ps's row, sizes with 4 digits."""
    from longboat.cli.containers import container_rows

    rows = container_rows(containers, trunc=True)
    for row, c in zip(rows, containers, strict=True):
        size = human_size(int(c.get("SizeRw") or 0))
        if int(c.get("SizeRootFs") or 0) > 0:
            size += f" (virtual {human_size(int(c['SizeRootFs']))})"
        row.fields["Size"] = size
    return rows


def _df_volume_rows(volumes: list[dict[str, Any]]) -> list[Row]:
    """docker's diskUsageVolumeContext: name, links (containers using it), size."""
    from longboat.cli.template import Context as Row

    rows = []
    for v in volumes:
        usage = v.get("UsageData") or {}
        size = int(usage.get("Size", -1))
        rows.append(Row("*formatter.diskUsageVolumeContext", {
            "Name": str(v.get("Name") or ""),
            "Links": str(usage.get("RefCount", 0)),
            "Size": "N/A" if size == -1 else human_size(size)}))
    return rows


def df(ctx: Context) -> int:
    from longboat.cli.images import IMAGE_HEADERS, image_rows
    from longboat.cli.template import render

    usage = ctx.client().df()
    fmt = ctx.args.format or ""
    if not ctx.args.verbose or fmt:
        if fmt in ("", "table"):
            fmt = DF_TABLE
        elif fmt == "json":
            fmt = "{{json .}}"
        ctx.out.write(render(fmt, df_rows(usage), DF_HEADERS))
        return 0
    # docker shows each image once, by its first tag
    first = [{**image, "RepoTags": (image.get("RepoTags") or [])[:1], "RepoDigests": []}
             for image in usage.get("Images") or []]
    images = render(DF_IMAGES, image_rows(first, trunc=True, digests=False), IMAGE_HEADERS)
    containers = render("table " + "\t".join(f"{{{{.{k}}}}}" for k in DF_CONTAINERS),
                        _df_container_rows(usage.get("Containers") or []), DF_CONTAINERS)
    volumes = render("table " + "\t".join(f"{{{{.{k}}}}}" for k in DF_VOLUMES),
                     _df_volume_rows(usage.get("Volumes") or []), DF_VOLUMES)
    cache = render("table " + "\t".join(f"{{{{.{k}}}}}" for k in DF_CACHE), [], DF_CACHE)
    cache_total = sum(int(b.get("Size") or 0) for b in usage.get("BuildCache") or [])
    ctx.out.write("Images space usage:\n\n" + images + "\nContainers space usage:\n\n"
                  + containers + "\nLocal Volumes space usage:\n\n" + volumes
                  + f"\nBuild cache usage: {human_size(cache_total)}\n\n"
                  + cache)
    return 0


# -- system prune ----------------------------------------------------------------------------
def prune(ctx: Context) -> int:
    from longboat.cli.images import confirm, parse_filters, prune_report

    a = ctx.args
    filters = parse_filters(a.filter)
    what = ("all images without at least one container associated to them" if a.all
            else "all dangling images")
    if not a.force and not confirm(ctx, f"WARNING! This will remove:\n  - {what}\n\n"
                                        "Are you sure you want to continue?"):
        return 0
    freed, text = prune_report(ctx, a.all, filters)
    if text:
        ctx.out.write(text + "\n")
    ctx.out.write(f"Total reclaimed space: {human_size(freed)}\n")
    return 0


# -- system dial-stdio -----------------------------------------------------------------------
def dial_stdio(ctx: Context) -> int:
    """Join stdin and stdout to a connection to the daemon: what ``ssh://`` clients run
    on the remote host (docker's ``system dial-stdio``)."""
    import socket
    import threading

    host = ctx.host
    try:
        if host.startswith("unix://"):
            conn = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            conn.connect(host[len("unix://"):])
        elif host.startswith("tcp://"):
            address, _, port = host[len("tcp://"):].rpartition(":")
            conn = socket.create_connection((address.strip("[]"), int(port or 2375)))
        else:
            raise CommandError(f"dial-stdio: unsupported host {host}")
    except OSError as exc:
        raise CommandError(f"Cannot connect to the Longboat daemon at {host}: {exc}") from None

    def upstream() -> None:
        try:
            while data := os.read(0, 1 << 16):
                conn.sendall(data)
        except OSError:
            pass
        try:
            conn.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    threading.Thread(target=upstream, daemon=True).start()
    with conn:
        while data := conn.recv(1 << 16):
            view = memoryview(data)
            while view:
                view = view[os.write(1, view):]
    sys.stdout.flush()
    return 0


# -- system service (longboatd under Longboat's own supervision) ---------------------------
def _service_options(ctx: Context) -> None:
    """The service's own options may also follow the action (argparse hands everything
    after it over as one remainder, dropping a first ``--``): take them out of it; the
    rest, after ``--`` or from the first word that is not one of them, is longboatd's
    (longboatd's parser checks it)."""
    from longboat.cli.main import UsageError

    words = list(ctx.args.daemon_args or [])
    ctx.args.daemon_args = []
    while words:
        word = words.pop(0)
        if word == "--":
            ctx.args.daemon_args = words
            return
        name, eq, value = word.partition("=")
        if name not in ("--config-file", "--pidfile", "--log-file"):
            ctx.args.daemon_args = [word, *words]
            return
        if not eq:
            if not words:
                raise UsageError(f"longboat system service: {name} needs a value")
            value = words.pop(0)
        setattr(ctx.args, name[2:].replace("-", "_"), value)


def _daemon_args(ctx: Context) -> list[str]:
    extra = list(ctx.args.daemon_args or [])
    if ctx.args.config_file:
        extra = ["--config-file", ctx.args.config_file, *extra]
    return extra


def service(ctx: Context) -> int:
    """``system service start|stop|status|restart``: docs/lab.md."""
    from longboat.engine import supervise
    from longboat.errors import LongboatError

    _service_options(ctx)
    a = ctx.args
    try:
        if a.action == "status":
            return _service_status(ctx, supervise.status(a.pidfile))
        if a.action in ("stop", "restart"):
            recorded = supervise.status(a.pidfile)
            pid = supervise.stop(a.pidfile)
            if a.action == "stop":
                ctx.out.write("longboatd stopped\n" if pid else "longboatd was not running\n")
                return 0
            args = _daemon_args(ctx)
            if not a.daemon_args and recorded:
                # the same flags again, with this installation's longboatd (after an
                # upgrade, the new one: what the engine role relies on)
                args = supervise.recorded_args(recorded)
        else:
            args = _daemon_args(ctx)
        pid, started = supervise.start(args, pidfile=a.pidfile, log_file=a.log_file)
    except LongboatError as exc:
        raise CommandError(f"longboat system service {a.action}: {exc.message}") from None
    if started:
        ctx.out.write(f"longboatd started (supervisor pid {pid}, log {a.log_file})\n")
    else:
        ctx.out.write(f"longboatd is already running (supervisor pid {pid})\n")
    return 0


def _service_status(ctx: Context, state: dict[str, Any] | None) -> int:
    if state is None:
        ctx.out.write("longboatd is not running\n")
        return 3          # LSB: program is not running
    ctx.out.write(f"longboatd is running: supervisor pid {state['Pid']}, longboatd pid "
                  f"{state.get('DaemonPid', '?')}, restarts {state.get('Restarts', 0)}\n"
                  f"command: {' '.join(str(c) for c in state.get('Command') or [])}\n"
                  f"log: {state.get('LogFile', '')}\n")
    return 0
