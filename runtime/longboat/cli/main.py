"""The ``longboat`` command line: docker's syntax, a client of longboatd's API.

Start-up is kept lean: this module builds the argument parser only (argparse, os, sys);
each command's module, the API client and everything they need are imported when that
command runs.
"""

from __future__ import annotations

import argparse
import os
import sys

TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Any, NoReturn

    from longboat.client.api import APIClient

PROG = "longboat"
DEFAULT_HOST = "unix:///run/longboat/longboat.sock"


class UsageError(Exception):
    """Bad command-line use: docker exits 125 for these (1 for a wrong number of
    arguments or an unknown command)."""

    def __init__(self, message: str, status: int = 125) -> None:
        super().__init__(message)
        self.status = status


class CommandError(Exception):
    """A failure the CLI itself reports (its text is printed as it is)."""


class Parser(argparse.ArgumentParser):
    """argparse with docker's help layout and usage errors (longboat.cli.usage)."""

    aliases: list[str] = []

    def format_help(self) -> str:
        from longboat.cli.usage import format_help

        return format_help(self)

    def parse_known_args(self, args: Any = None, namespace: Any = None) -> Any:
        # every parser (a command's, not only the top one) refuses what it does not
        # know, so the error names that command as docker's does
        self._words = list(args or [])
        parsed, extras = super().parse_known_args(args, namespace)
        if extras:
            from longboat.cli import usage

            if extras[0].startswith("-") and extras[0] != "-":
                raise UsageError(f"{usage.unknown_flag(extras[0])}\n{usage.see_help(self)}")
            raise UsageError(f"{usage.arity_error(self)}\n"
                             f"{usage.see_help(self, usage=True)}", 1)
        return parsed, extras

    def error(self, message: str) -> NoReturn:
        from longboat.cli import usage

        word = usage.invalid_choice(message)
        if word is not None:
            raise UsageError(f"{self.prog}: '{word}' is not a {self.prog} command.\n"
                             f"{usage.see_help(self)}", 1)
        flag = usage.flag_error(message, getattr(self, "_words", []))
        if flag is not None:
            raise UsageError(f"{flag}\n{usage.see_help(self)}")
        if usage.missing_arguments(self, message):
            unknown = usage.first_unknown_flag(self, getattr(self, "_words", []))
            if unknown is not None:
                raise UsageError(f"{usage.unknown_flag(unknown)}\n{usage.see_help(self)}")
            raise UsageError(f"{usage.arity_error(self)}\n"
                             f"{usage.see_help(self, usage=True)}", 1)
        raise UsageError(f"{self.prog}: {message}.\nSee '{self.prog} --help'.")


class Context:
    """What a command gets: its arguments, the output streams and a client made on
    first use."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.out = sys.stdout
        self.err = sys.stderr
        self._client: APIClient | None = None

    @property
    def host(self) -> str:
        hosts: list[str] | None = self.args.host
        if hosts:
            if len(hosts) > 1:
                raise UsageError("Please specify only one -H")
            return hosts[0]
        return (os.environ.get("LONGBOAT_HOST") or os.environ.get("DOCKER_HOST")
                or DEFAULT_HOST)

    @property
    def config_dir(self) -> str:
        return (self.args.config or os.environ.get("LONGBOAT_CONFIG")
                or os.path.join(os.path.expanduser("~"), ".longboat"))

    def client(self) -> APIClient:
        if self._client is None:
            from longboat import __version__
            from longboat.client.api import APIClient, TLSConfig

            a = self.args
            verify = a.tlsverify or bool(os.environ.get("DOCKER_TLS_VERIFY"))
            tls = None
            if a.tls or verify:
                certs = os.environ.get("DOCKER_CERT_PATH") or self.config_dir

                def pem(given: str | None, name: str) -> str | None:
                    path = given or os.path.join(certs, name)
                    return path if given or os.path.exists(path) else None

                tls = TLSConfig(ca=pem(a.tlscacert, "ca.pem"), cert=pem(a.tlscert, "cert.pem"),
                                key=pem(a.tlskey, "key.pem"), verify=verify)
            version = os.environ.get("DOCKER_API_VERSION") or "auto"
            self._client = APIClient(self.host, tls=tls, version=version,
                                     user_agent=f"Longboat-Client/{__version__} (linux)")
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()


# -- the parser ------------------------------------------------------------------------------
def _cmd(sub: Any, name: str, handler: str, help: str, aliases: tuple[str, ...] = ()
         ) -> argparse.ArgumentParser:
    parser: argparse.ArgumentParser = sub.add_parser(name, help=help, description=help,
                                                     aliases=list(aliases))
    parser.set_defaults(handler=handler)
    if aliases and isinstance(parser, Parser):
        parser.aliases = [name, *aliases]
    return parser


def _format(p: argparse.ArgumentParser, what: str = "the output") -> None:
    p.add_argument("--format", help=f"format {what} with a Go template ('table ...', "
                                    "'json')")


def _add_image_commands(sub: Any, *, group: bool) -> None:
    """``images``/``pull``/... at the top, and ``image ls``/``image pull``/... in the
    group (the same handlers)."""
    H = "longboat.cli.images:"
    ls = _cmd(sub, "ls" if group else "images", H + "ls", "List images",
              ("list",) if group else ())
    ls.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")
    ls.add_argument("-a", "--all", action="store_true",
                    help="show all images (default hides intermediate images)")
    ls.add_argument("--digests", action="store_true", help="show digests")
    ls.add_argument("-f", "--filter", action="append", default=[],
                    help="filter output (dangling=true, reference=..., label=...)")
    _format(ls)
    ls.add_argument("--no-trunc", action="store_true", help="don't truncate output")
    ls.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")

    if group:
        p = _cmd(sub, "bootstrap", H + "bootstrap",
                 "Build a base image from the engine host's packages (busybox[:TAG] from "
                 "busybox-static, debian[:SUITE] with debootstrap)")
        p.add_argument("name", metavar="NAME[:TAG]")
        p = _cmd(sub, "inspect", H + "inspect", "Display detailed information on one or "
                                                 "more images")
        p.add_argument("-f", "--format")
        p.add_argument("names", nargs="+", metavar="IMAGE")
        p = _cmd(sub, "prune", H + "prune", "Remove unused images")
        p.add_argument("-a", "--all", action="store_true",
                       help="remove all unused images, not just dangling ones")
        p.add_argument("--filter", action="append", default=[])
        p.add_argument("-f", "--force", action="store_true", help="do not prompt")

    p = _cmd(sub, "rm" if group else "rmi", H + "rm", "Remove one or more images",
             ("remove",) if group else ())
    p.add_argument("-f", "--force", action="store_true", help="force removal")
    p.add_argument("--no-prune", action="store_true",
                   help="do not delete untagged parents")
    p.add_argument("names", nargs="+", metavar="IMAGE")

    p = _cmd(sub, "history", H + "history", "Show the history of an image")
    p.add_argument("-H", "--human", nargs="?", const="true", default="true",
                   choices=["true", "false", "1", "0"],
                   help="print sizes and dates in human readable format (default true)")
    p.add_argument("--no-trunc", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="only show image IDs")
    _format(p)
    p.add_argument("name", metavar="IMAGE")

    p = _cmd(sub, "tag", H + "tag", "Create a tag TARGET_IMAGE that refers to SOURCE_IMAGE")
    p.add_argument("source", metavar="SOURCE_IMAGE[:TAG]")
    p.add_argument("target", metavar="TARGET_IMAGE[:TAG]")

    p = _cmd(sub, "save", H + "save", "Save one or more images to a tar archive "
                                       "(streamed to STDOUT by default)")
    p.add_argument("-o", "--output", help="write to a file, instead of STDOUT")
    p.add_argument("names", nargs="+", metavar="IMAGE")

    p = _cmd(sub, "load", H + "load", "Load an image from a tar archive or STDIN")
    p.add_argument("-i", "--input", help="read from tar archive file, instead of STDIN")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress the load output")

    p = _cmd(sub, "import", H + "import_", "Import the contents from a tarball to create a "
                                           "filesystem image")
    p.add_argument("-c", "--change", action="append", default=[],
                   help="apply Dockerfile instruction to the created image")
    p.add_argument("-m", "--message", help="set commit message for imported image")
    p.add_argument("--platform")
    p.add_argument("source", metavar="file|URL|-")
    p.add_argument("repository", nargs="?", metavar="REPOSITORY[:TAG]")

    p = _cmd(sub, "pull", H + "pull", "Download an image from a registry")
    p.add_argument("-a", "--all-tags", action="store_true",
                   help="download all tagged images in the repository")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("--platform")
    p.add_argument("name", metavar="NAME[:TAG|@DIGEST]")

    p = _cmd(sub, "build", "longboat.cli.build:build", "Build an image from a Dockerfile")
    if not isinstance(p, _Sink):
        from longboat.cli.build import add_arguments

        add_arguments(p)

    p = _cmd(sub, "push", H + "push", "Upload an image to a registry")
    p.add_argument("-a", "--all-tags", action="store_true")
    p.add_argument("-q", "--quiet", action="store_true", help="suppress verbose output")
    p.add_argument("name", metavar="NAME[:TAG]")


def _add_port_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("container", metavar="CONTAINER")
    p.add_argument("private_port", nargs="?", metavar="PRIVATE_PORT[/PROTO]")


def _add_network_commands(sub: Any) -> None:
    """``network create|ls|inspect|connect|disconnect|prune|rm``."""
    H = "longboat.cli.networks:"
    many: dict[str, Any] = {"action": "append", "default": []}
    p = _cmd(sub, "create", H + "create", "Create a network")
    p.add_argument("--attachable", action="store_true",
                   help="enable manual container attachment")
    p.add_argument("--aux-address", **many,
                   help="auxiliary IPv4 or IPv6 addresses used by network driver")
    p.add_argument("--config-from", help="the network from which to copy the configuration")
    p.add_argument("--config-only", action="store_true",
                   help="create a configuration only network")
    p.add_argument("-d", "--driver", default="bridge",
                   help="driver to manage the network (default \"bridge\")")
    p.add_argument("--gateway", **many, help="IPv4 or IPv6 gateway for the master subnet")
    p.add_argument("--ingress", action="store_true",
                   help="create swarm routing-mesh network")
    p.add_argument("--internal", action="store_true",
                   help="restrict external access to the network")
    p.add_argument("--ip-range", **many, help="allocate container ip from a sub-range")
    p.add_argument("--ipam-driver", default="default", help="IP address management driver")
    p.add_argument("--ipam-opt", **many, help="set IPAM driver specific options")
    p.add_argument("--ipv6", action="store_true", help="enable IPv6 networking")
    p.add_argument("--label", **many, help="set metadata on a network")
    p.add_argument("-o", "--opt", **many, help="set driver specific options")
    p.add_argument("--scope", help="control the network's scope")
    p.add_argument("--subnet", **many,
                   help="subnet in CIDR format that represents a network segment")
    p.add_argument("name", metavar="NETWORK")

    p = _cmd(sub, "ls", H + "ls", "List networks", ("list",))
    p.add_argument("-f", "--filter", **many,
                   help="provide filter values (e.g. 'driver=bridge')")
    _format(p)
    p.add_argument("--no-trunc", action="store_true", help="do not truncate the output")
    p.add_argument("-q", "--quiet", action="store_true", help="only display network IDs")

    p = _cmd(sub, "inspect", H + "inspect", "Display detailed information on one or more "
                                             "networks")
    p.add_argument("-f", "--format", help="format the output using the given Go template")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="verbose output for diagnostics")
    p.add_argument("names", nargs="+", metavar="NETWORK")

    p = _cmd(sub, "connect", H + "connect", "Connect a container to a network")
    p.add_argument("--alias", **many, help="add network-scoped alias for the container")
    p.add_argument("--driver-opt", **many, help="driver options for the network")
    p.add_argument("--ip", help="IPv4 address (e.g., 172.30.100.104)")
    p.add_argument("--ip6", help="IPv6 address (e.g., 2001:db8::33)")
    p.add_argument("--link", **many, help="add link to another container")
    p.add_argument("--link-local-ip", **many, help="add a link-local address for the "
                                                   "container")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")

    p = _cmd(sub, "disconnect", H + "disconnect", "Disconnect a container from a network")
    p.add_argument("-f", "--force", action="store_true",
                   help="force the container to disconnect from a network")
    p.add_argument("network", metavar="NETWORK")
    p.add_argument("container", metavar="CONTAINER")

    p = _cmd(sub, "prune", H + "prune", "Remove all unused networks")
    p.add_argument("--filter", **many, help="provide filter values (e.g. 'until=<timestamp>')")
    p.add_argument("-f", "--force", action="store_true",
                   help="do not prompt for confirmation")

    p = _cmd(sub, "rm", H + "rm", "Remove one or more networks", ("remove",))
    p.add_argument("names", nargs="+", metavar="NETWORK")


class _Sink:
    """Stands in for the parsers of the commands not asked for: building argparse
    parsers for docker's ~50 commands costs more than a container start."""

    def __getattr__(self, name: str) -> Any:
        return lambda *args, **kwargs: self


class _Only:
    """Subparsers that build only the named command (or group) for real."""

    def __init__(self, sub: Any, wanted: str) -> None:
        self.sub = sub
        self.wanted = wanted
        self.found = False

    def add_parser(self, name: str, **kwargs: Any) -> Any:
        if name == self.wanted or self.wanted in kwargs.get("aliases", ()):
            self.found = True
            return self.sub.add_parser(name, **kwargs)
        return _Sink()


_GLOBAL_WITH_VALUE = {"-H", "--host", "--config", "-l", "--log-level", "--tlscacert",
                      "--tlscert", "--tlskey"}


def _command_word(argv: list[str]) -> str | None:
    """The command argv names (None for help, a version request or nothing)."""
    skip = False
    for word in argv:
        if skip:
            skip = False
        elif word in _GLOBAL_WITH_VALUE:
            skip = True
        elif word.startswith("-"):
            if word in ("-h", "--help", "-v", "--version"):
                return None
        else:
            return word
    return None


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole command line, or with ``only`` just that command (the others are not
    built, so a command starts fast); ``only`` that is no command gets the whole."""
    parser = _build(only) if only is not None else None
    if parser is None:
        parser = _build(None)
    assert parser is not None
    return parser


def _build(only: str | None) -> argparse.ArgumentParser | None:
    from longboat import __version__

    parser = Parser(prog=PROG, description="Longboat: containers, images, networks, "
                                           "volumes and builds, driven like docker.")
    parser.add_argument("-v", "--version", action="version",
                        version=f"Longboat version {__version__}",
                        help="print version information and quit")
    parser.add_argument("--config", metavar="DIR",
                        help="location of client config files (default ~/.longboat)")
    parser.add_argument("-D", "--debug", action="store_true", help="enable debug mode")
    parser.add_argument("-H", "--host", action="append", metavar="HOST",
                        help="daemon socket to connect to: unix://PATH, tcp://HOST:PORT, "
                             "ssh://[USER@]HOST[:PORT] (default $LONGBOAT_HOST, "
                             f"$DOCKER_HOST, {DEFAULT_HOST})")
    parser.add_argument("-l", "--log-level", choices=["debug", "info", "warn", "error",
                                                      "fatal"], default="info",
                        help='set the logging level ("debug"|"info"|"warn"|"error"|'
                             '"fatal") (default "info")')
    parser.add_argument("--tls", action="store_true", help="use TLS; implied by --tlsverify")
    parser.add_argument("--tlscacert", help="trust certs signed only by this CA")
    parser.add_argument("--tlscert", help="path to TLS certificate file")
    parser.add_argument("--tlskey", help="path to TLS key file")
    parser.add_argument("--tlsverify", action="store_true",
                        help="use TLS and verify the remote")
    real_sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=Parser)
    sub: Any = real_sub if only is None else _Only(real_sub, only)

    from longboat.cli.container_args import add_container_commands

    add_container_commands(sub, group=False)
    _add_image_commands(sub, group=False)
    p = _cmd(sub, "inspect", "longboat.cli.containers:inspect_any",
             "Return low-level information on Longboat objects")
    p.add_argument("-f", "--format")
    p.add_argument("-s", "--size", action="store_true",
                   help="display total file sizes if the type is container")
    p.add_argument("--type", choices=["container", "image"])
    p.add_argument("names", nargs="+", metavar="NAME|ID")

    container = _cmd(sub, "container", "", "Manage containers")
    container.set_defaults(usage_of=container)
    container_sub = container.add_subparsers(dest="subcommand", metavar="COMMAND",
                                             parser_class=Parser)
    add_container_commands(container_sub, group=True)

    container_port = _cmd(container_sub, "port", "longboat.cli.networks:port",
                          "List port mappings or a specific mapping for the container")
    _add_port_arguments(container_port)
    _add_port_arguments(_cmd(sub, "port", "longboat.cli.networks:port",
                             "List port mappings or a specific mapping for the container"))

    network = _cmd(sub, "network", "", "Manage networks")
    network.set_defaults(usage_of=network)
    network_sub = network.add_subparsers(dest="subcommand", metavar="COMMAND",
                                         parser_class=Parser)
    _add_network_commands(network_sub)

    image = _cmd(sub, "image", "", "Manage images")
    image.set_defaults(usage_of=image)
    image_sub = image.add_subparsers(dest="subcommand", metavar="COMMAND",
                                     parser_class=Parser)
    _add_image_commands(image_sub, group=True)
    if not isinstance(sub, _Only) or sub.wanted == "volume":
        from longboat.cli.volumes import add_volume_commands

        add_volume_commands(sub)

    p = _cmd(sub, "login", "longboat.cli.auth:login", "Log in to a registry")
    p.add_argument("-u", "--username")
    p.add_argument("-p", "--password")
    p.add_argument("--password-stdin", action="store_true",
                   help="take the password from stdin")
    p.add_argument("server", nargs="?", metavar="SERVER")
    p = _cmd(sub, "logout", "longboat.cli.auth:logout", "Log out from a registry")
    p.add_argument("server", nargs="?", metavar="SERVER")

    p = _cmd(sub, "version", "longboat.cli.system:version",
             "Show the Longboat version information")
    p.add_argument("-f", "--format")
    p = _cmd(sub, "info", "longboat.cli.system:info", "Display system-wide information")
    p.add_argument("-f", "--format")

    system = _cmd(sub, "system", "", "Manage Longboat")
    system.set_defaults(usage_of=system)
    system_sub = system.add_subparsers(dest="subcommand", metavar="COMMAND",
                                       parser_class=Parser)
    p = _cmd(system_sub, "df", "longboat.cli.system:df", "Show Longboat disk usage")
    p.add_argument("-v", "--verbose", action="store_true",
                   help="show detailed information on space usage")
    _format(p)
    p = _cmd(system_sub, "prune", "longboat.cli.system:prune", "Remove unused data")
    p.add_argument("-a", "--all", action="store_true", help="remove all unused images, "
                                                             "not just dangling ones")
    p.add_argument("--filter", action="append", default=[])
    p.add_argument("-f", "--force", action="store_true", help="do not prompt")
    p = _cmd(system_sub, "info", "longboat.cli.system:info",
             "Display system-wide information")
    p.add_argument("-f", "--format")
    _cmd(system_sub, "dial-stdio", "longboat.cli.system:dial_stdio",
         "Proxy the stdio stream to the daemon connection (for ssh:// clients)")
    p = _cmd(system_sub, "service", "longboat.cli.system:service",
             "Run longboatd supervised (restarted if it dies) without systemd")
    p.add_argument("action", choices=["start", "stop", "status", "restart"])
    p.add_argument("--config-file", help="longboatd's --config-file")
    p.add_argument("--pidfile", default="/run/longboat/supervise.pid",
                   help="the supervisor's pid file (default: %(default)s)")
    p.add_argument("--log-file", default="/var/log/longboat/longboatd.log",
                   help="longboatd's output (default: %(default)s)")
    p.add_argument("daemon_args", nargs=argparse.REMAINDER, metavar="-- LONGBOATD-FLAGS")

    lab = _cmd(sub, "lab", "", "Several hosts on this machine, for multi-host work")
    lab.set_defaults(usage_of=lab)
    from longboat.lab.commands import add_commands as add_lab_commands

    add_lab_commands(lab.add_subparsers(dest="subcommand", metavar="COMMAND",
                                        parser_class=Parser))
    if isinstance(sub, _Only) and not sub.found:
        return None       # not a command: the whole parser says so, with the choices
    return parser


def _handler(name: str) -> Callable[[Context], int | None]:
    import importlib

    module, _, function = name.partition(":")
    handler: Callable[[Context], int | None] = getattr(importlib.import_module(module),
                                                       function)
    return handler


def main(argv: list[str] | None = None) -> int:
    words = sys.argv[1:] if argv is None else argv
    if words[:1] == ["help"]:                   # `longboat help network create`, as docker
        words = [*words[1:], "--help"]
    parser = build_parser(only=_command_word(words))
    try:
        args = parser.parse_args(words)
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    handler_name = getattr(args, "handler", "")
    if not handler_name:
        # `longboat`, `longboat image`, `longboat system`: usage, as docker does
        target: argparse.ArgumentParser = getattr(args, "usage_of", parser)
        target.print_help()
        return 0
    ctx = Context(args)
    try:
        return _run(_handler(handler_name), ctx)
    finally:
        ctx.close()


def _run(handler: Callable[[Context], int | None], ctx: Context) -> int:
    from longboat.cli.template import TemplateError
    from longboat.client.api import APIError, ClientError, StreamError

    try:
        return handler(ctx) or 0
    except UsageError as exc:
        print(exc, file=sys.stderr)
        return exc.status
    except StreamError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except APIError as exc:
        print(f"Error response from daemon: {exc.message}", file=sys.stderr)
        return 1
    except ClientError as exc:
        print(exc.message, file=sys.stderr)
        return 1
    except TemplateError as exc:
        print(f"template parsing error: {exc}", file=sys.stderr)
        return 1
    except CommandError as exc:
        print(exc, file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # `longboat images | head`: the reader went away; nothing more to say
        try:
            sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (silences the exit flush)
        except OSError:
            pass
        return 1


if __name__ == "__main__":
    sys.exit(main())
