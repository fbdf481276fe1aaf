"""The container commands' argument parsers (``run``, ``ps``, ``logs``... at the top and in
the ``container`` group). argparse only: the handlers live in ``longboat.cli.containers``
and are imported when a command runs."""

from __future__ import annotations

import argparse

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

H = "longboat.cli.containers:"
FILES = "longboat.cli.container_files:"


def _cmd(sub: Any, name: str, handler: str, help: str, aliases: tuple[str, ...] = (),
         *, short_h: bool = True) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help,
                                                     aliases=list(aliases),
                                                     add_help=short_h)
    if not short_h:     # -h is --hostname there, as in docker
        parser.add_argument("--help", action="help", help="show this help message and exit")
    parser.set_defaults(handler=handler if ":" in handler else H + handler)
    return parser


_GO_TRUE = ("1", "t", "T", "TRUE", "true", "True")
_GO_FALSE = ("0", "f", "F", "FALSE", "false", "False")


def go_bool(p: argparse.ArgumentParser, flag: str, *, default: bool, help: str) -> None:
    """A Go boolean flag as docker's: ``--flag`` alone is true, ``--flag=false`` (any of
    Go's ParseBool spellings) sets it; the value is never taken from the next word. The
    ``=value`` forms are hidden aliases (argparse matches a whole word first)."""
    dest = flag.lstrip("-").replace("-", "_")
    text = "true" if default else "false"
    p.add_argument(flag, action="store_const", const="true", default=text, dest=dest,
                   help=help)
    for const, spellings in (("true", _GO_TRUE), ("false", _GO_FALSE)):
        p.add_argument(*(f"{flag}={word}" for word in spellings), action="store_const",
                       const=const, dest=dest, help=argparse.SUPPRESS)


def add_create_options(p: argparse.ArgumentParser) -> None:
    """The flags ``run`` and ``create`` share, and IMAGE [COMMAND] [ARG...]."""
    add = p.add_argument
    many: dict[str, Any] = {"action": "append", "default": []}
    add("-a", "--attach", action="append", default=[],
        help="attach to STDIN, STDOUT or STDERR")
    add("--blkio-weight", type=int, help="block IO (relative weight), between 10 and 1000")
    add("--blkio-weight-device", **many,
        help="block IO weight (relative device weight)")
    add("--cap-add", **many, help="add Linux capabilities")
    add("--cap-drop", **many, help="drop Linux capabilities")
    add("--cgroup-parent", help="optional parent cgroup for the container")
    add("--cgroupns", help="cgroup namespace to use (host|private)")
    add("--cidfile", help="write the container ID to the file")
    add("--cpu-count", type=int, help="CPU count (Windows only)")
    add("--cpu-percent", type=int, help="CPU percent (Windows only)")
    add("--cpu-period", type=int, help="limit CPU CFS (Completely Fair Scheduler) period")
    add("--cpu-quota", type=int, help="limit CPU CFS (Completely Fair Scheduler) quota")
    add("--cpu-rt-period", type=int,
        help="limit CPU real-time period in microseconds")
    add("--cpu-rt-runtime", type=int,
        help="limit CPU real-time runtime in microseconds")
    add("--cpu-shares", "-c", type=int, help="CPU shares (relative weight)")
    add("--cpus", help="number of CPUs")
    add("--cpuset-cpus", help="CPUs in which to allow execution (0-3, 0,1)")
    add("--cpuset-mems", help="MEMs in which to allow execution (0-3, 0,1)")
    add("--device", **many, help="add a host device to the container")
    add("--device-cgroup-rule", **many,
        help="add a rule to the cgroup allowed devices list")
    add("--device-read-bps", **many,
        help="limit read rate (bytes per second) from a device")
    add("--device-read-iops", **many, help="limit read rate (IO per second) from a device")
    add("--device-write-bps", **many,
        help="limit write rate (bytes per second) to a device")
    add("--device-write-iops", **many, help="limit write rate (IO per second) to a device")
    go_bool(p, "--disable-content-trust", default=True,
            help="skip image verification (always: images are not signed here)")
    add("--domainname", help="container NIS domain name")
    add("--entrypoint", help="overwrite the default ENTRYPOINT of the image")
    add("-e", "--env", **many, help="set environment variables")
    add("--env-file", **many, help="read in a file of environment variables")
    add("--health-cmd", help="command to run to check health")
    add("--health-interval", help="time between running the check (ms|s|m|h) (default 0s)")
    add("--health-retries", type=int, default=0,
        help="consecutive failures needed to report unhealthy")
    add("--health-start-period", help="start period for the container to initialize "
        "before starting health-retries countdown (ms|s|m|h) (default 0s)")
    add("--health-timeout", help="maximum time to allow one check to run (ms|s|m|h) "
                                 "(default 0s)")
    add("--no-healthcheck", action="store_true",
        help="disable any container-specified HEALTHCHECK")
    add("--gpus", help="GPU devices to add to the container ('all' to pass all GPUs)")
    add("--group-add", **many, help="add additional groups to join")
    add("-h", "--hostname", help="container host name")
    add("--init", action="store_true",
        help="run an init inside the container that forwards signals and reaps processes")
    add("-i", "--interactive", action="store_true",
        help="keep STDIN open even if not attached")
    add("--io-maxbandwidth", help="maximum IO bandwidth limit for the system drive "
                                  "(Windows only)")
    add("--io-maxiops", type=int, help="maximum IOps limit for the system drive "
                                       "(Windows only)")
    add("--ipc", help="IPC mode to use")
    add("--isolation", help="container isolation technology")
    add("--kernel-memory", help="kernel memory limit")
    add("-l", "--label", **many, help="set meta data on a container")
    add("--label-file", **many, help="read in a line delimited file of labels")
    add("--log-driver", help="logging driver for the container")
    add("--log-opt", **many, help="log driver options")
    add("-m", "--memory", help="memory limit")
    add("--memory-reservation", help="memory soft limit")
    add("--memory-swap", help="swap limit equal to memory plus swap: '-1' to enable "
                              "unlimited swap")
    add("--memory-swappiness", type=int, default=-1,
        help="tune container memory swappiness (0 to 100) (default -1)")
    add("--mount", **many, help="attach a filesystem mount to the container")
    add("--name", help="assign a name to the container")
    add("--network", "--net", **many,
        help="connect a container to a network (repeatable; name=NET,alias=A,ip=IP form)")
    # networking (longboat.cli.network_args turns these into the API's fields)
    add("--add-host", **many, help="add a custom host-to-IP mapping (host:ip)")
    add("--dns", **many, help="set custom DNS servers")
    add("--dns-option", **many, help="set DNS options")
    add("--dns-search", **many, help="set custom DNS search domains")
    add("--expose", **many, help="expose a port or a range of ports")
    add("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    add("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
    add("--link", **many, help="add link to another container")
    add("--link-local-ip", **many, help="container IPv4/IPv6 link-local addresses")
    add("--mac-address", help="container MAC address (e.g., 92:d0:c6:0a:29:33)")
    add("--network-alias", **many, help="add network-scoped alias for the container")
    add("-p", "--publish", **many, help="publish a container's port(s) to the host")
    add("-P", "--publish-all", action="store_true",
        help="publish all exposed ports to random ports")
    add("--oom-kill-disable", action="store_true", help="disable OOM Killer")
    add("--oom-score-adj", type=int, default=0,
        help="tune host's OOM preferences (-1000 to 1000)")
    add("--pid", help="PID namespace to use")
    add("--pids-limit", type=int, help="tune container pids limit (-1 for unlimited)")
    add("--platform", help="set platform if server is multi-platform capable")
    add("--privileged", action="store_true",
        help="give extended privileges to this container")
    add("--pull", choices=["always", "missing", "never"], default="missing",
        help='pull image before running ("always", "missing", "never")')
    add("-q", "--quiet", action="store_true", help="suppress the pull output")
    add("--read-only", action="store_true", help="mount the container's root filesystem "
                                                 "as read only")
    add("--restart", help="restart policy to apply when a container exits (default 'no')")
    add("--rm", action="store_true", help="automatically remove the container when it exits")
    add("--runtime", help="runtime to use for this container")
    add("--security-opt", **many, help="security options")
    add("--shm-size", help="size of /dev/shm")
    add("--stop-signal", help="signal to stop the container")
    add("--stop-timeout", type=int, help="timeout (in seconds) to stop a container")
    add("--storage-opt", **many, help="storage driver options for the container")
    add("--sysctl", **many, help="sysctl options")
    add("--tmpfs", **many, help="mount a tmpfs directory")
    add("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    add("--ulimit", **many, help="ulimit options")
    add("-u", "--user", help="username or UID (format: <name|uid>[:<group|gid>])")
    add("--userns", help="user namespace to use")
    add("--uts", help="UTS namespace to use")
    add("-v", "--volume", **many, help="bind mount a volume")
    add("--volume-driver", help="optional volume driver for the container")
    add("--volumes-from", **many, help="mount volumes from the specified container(s)")
    add("-w", "--workdir", help="working directory inside the container")
    add("image", metavar="IMAGE")
    add("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")


def _names(p: argparse.ArgumentParser, what: str = "CONTAINER") -> None:
    p.add_argument("names", nargs="+", metavar=what)


def add_container_commands(sub: Any, *, group: bool) -> None:
    """The container commands: at the top (``ps``, ``rm``...) or in the ``container``
    group (``ls``, ``rm``, ``inspect``, ``prune``...)."""
    p = _cmd(sub, "run", "run", "Create and run a new container from an image",
             short_h=False)
    p.add_argument("-d", "--detach", action="store_true",
                   help="run container in background and print container ID")
    go_bool(p, "--sig-proxy", default=True,
            help="proxy received signals to the process (default true)")
    p.add_argument("--detach-keys", help="override the key sequence for detaching")
    add_create_options(p)

    p = _cmd(sub, "create", "create", "Create a new container", short_h=False)
    add_create_options(p)

    p = _cmd(sub, "start", "start", "Start one or more stopped containers")
    p.add_argument("-a", "--attach", action="store_true",
                   help="attach STDOUT/STDERR and forward signals")
    p.add_argument("-i", "--interactive", action="store_true",
                   help="attach container's STDIN")
    p.add_argument("--detach-keys")
    _names(p)

    for name, handler, text in (("stop", "stop", "Stop one or more running containers"),
                                ("restart", "restart", "Restart one or more containers")):
        p = _cmd(sub, name, handler, text)
        p.add_argument("-s", "--signal", help="signal to send to the container")
        p.add_argument("-t", "--time", "--timeout", type=int, dest="time",
                       help="seconds to wait before killing the container")
        _names(p)

    p = _cmd(sub, "kill", "kill", "Kill one or more running containers")
    p.add_argument("-s", "--signal", help="signal to send to the container")
    _names(p)
    for name, text in (("pause", "Pause all processes within one or more containers"),
                       ("unpause", "Unpause all processes within one or more containers"),
                       ("wait", "Block until one or more containers stop, then print "
                                "their exit codes")):
        _names(_cmd(sub, name, name, text))

    p = _cmd(sub, "rm", "rm", "Remove one or more containers",
             ("remove",) if group else ())
    p.add_argument("-f", "--force", action="store_true",
                   help="force the removal of a running container (uses SIGKILL)")
    p.add_argument("-l", "--link", action="store_true", help="remove the specified link")
    p.add_argument("-v", "--volumes", action="store_true",
                   help="remove anonymous volumes associated with the container")
    _names(p)

    p = _cmd(sub, "rename", "rename", "Rename a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("new_name", metavar="NEW_NAME")

    p = _cmd(sub, "attach", "attach", "Attach local standard input, output, and error "
                                      "streams to a running container")
    p.add_argument("--no-stdin", action="store_true", help="do not attach STDIN")
    go_bool(p, "--sig-proxy", default=True,
            help="proxy all received signals to the process (default true)")
    p.add_argument("--detach-keys")
    p.add_argument("container", metavar="CONTAINER")

    p = _cmd(sub, "logs", "logs", "Fetch the logs of a container")
    p.add_argument("--details", action="store_true", help="show extra details")
    p.add_argument("-f", "--follow", action="store_true", help="follow log output")
    p.add_argument("--since", help="show logs since timestamp or relative (e.g. 42m)")
    p.add_argument("-n", "--tail", default="all",
                   help="number of lines to show from the end of the logs")
    p.add_argument("-t", "--timestamps", action="store_true", help="show timestamps")
    p.add_argument("--until", help="show logs before a timestamp or relative (e.g. 42m)")
    p.add_argument("container", metavar="CONTAINER")

    p = _cmd(sub, "exec", "exec_", "Execute a command in a running container")
    p.add_argument("-d", "--detach", action="store_true",
                   help="detached mode: run command in the background")
    p.add_argument("--detach-keys")
    p.add_argument("-e", "--env", action="append", default=[],
                   help="set environment variables")
    p.add_argument("--env-file", action="append", default=[])
    p.add_argument("-i", "--interactive", action="store_true",
                   help="keep STDIN open even if not attached")
    p.add_argument("--privileged", action="store_true")
    p.add_argument("-t", "--tty", action="store_true", help="allocate a pseudo-TTY")
    p.add_argument("-u", "--user", help="username or UID")
    p.add_argument("-w", "--workdir", help="working directory inside the container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("command", nargs=argparse.REMAINDER, metavar="COMMAND [ARG...]")

    p = _cmd(sub, "top", "top", "Display the running processes of a container")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("ps_args", nargs=argparse.REMAINDER, metavar="[ps OPTIONS]")

    p = _cmd(sub, "stats", "stats", "Display a live stream of container(s) resource usage "
                                    "statistics")
    p.add_argument("-a", "--all", action="store_true",
                   help="show all containers (default shows just running)")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("--no-stream", action="store_true",
                   help="disable streaming stats and only pull the first result")
    p.add_argument("--no-trunc", action="store_true", help="do not truncate output")
    p.add_argument("names", nargs="*", metavar="CONTAINER")

    p = _cmd(sub, "ls" if group else "ps", "ps", "List containers",
             ("ps", "list") if group else ())
    p.add_argument("-a", "--all", action="store_true",
                   help="show all containers (default shows just running)")
    p.add_argument("-f", "--filter", action="append", default=[],
                   help="filter output based on conditions provided")
    p.add_argument("--format", help="format output using a Go template")
    p.add_argument("-n", "--last", type=int, default=-1,
                   help="show n last created containers (includes all states)")
    p.add_argument("-l", "--latest", action="store_true",
                   help="show the latest created container (includes all states)")
    p.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    p.add_argument("-q", "--quiet", action="store_true", help="only display container IDs")
    p.add_argument("-s", "--size", action="store_true", help="display total file sizes")

    p = _cmd(sub, "cp", FILES + "cp", "Copy files/folders between a container and the local "
                              "filesystem")
    p.add_argument("-a", "--archive", action="store_true",
                   help="archive mode (copy all uid/gid information)")
    p.add_argument("-L", "--follow-link", action="store_true",
                   help="always follow symbol link in SRC_PATH")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress progress output")
    p.add_argument("source", metavar="SRC_PATH")
    p.add_argument("destination", metavar="DEST_PATH")

    p = _cmd(sub, "commit", FILES + "commit", "Create a new image from a container's changes")
    p.add_argument("-a", "--author", help='author (e.g., "John Hannibal Smith '
                                          '<hannibal@a-team.com>")')
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", help="commit message")
    p.add_argument("-p", "--pause", default="true", nargs="?", const="true",
                   choices=["true", "false"],
                   help="pause container during commit (default true)")
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("repository", nargs="?", metavar="[REPOSITORY[:TAG]]")

    p = _cmd(sub, "export", FILES + "export", "Export a container's filesystem as a tar archive")
    p.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    p.add_argument("container", metavar="CONTAINER")

    p = _cmd(sub, "diff", FILES + "diff", "Inspect changes to files or directories on a "
                                  "container's filesystem")
    p.add_argument("container", metavar="CONTAINER")

    if group:
        p = _cmd(sub, "inspect", "inspect", "Display detailed information on one or more "
                                            "containers")
        p.add_argument("-f", "--format")
        p.add_argument("-s", "--size", action="store_true", help="display total file sizes")
        _names(p)
        p = _cmd(sub, "prune", "prune", "Remove all stopped containers")
        p.add_argument("--filter", action="append", default=[])
        p.add_argument("-f", "--force", action="store_true", help="do not prompt for "
                                                                  "confirmation")
    else:
        p = _cmd(sub, "events", "events", "Get real time events from the server")
        p.add_argument("-f", "--filter", action="append", default=[],
                       help="filter output based on conditions provided")
        p.add_argument("--format", help="format output using a Go template")
        p.add_argument("--since", help="show all events created since timestamp")
        p.add_argument("--until", help="stream events until this timestamp")
