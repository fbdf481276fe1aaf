"""longboatd: read the settings, open the engine, serve the API on every listener until
SIGTERM or SIGINT, then close the listeners and exit (containers, once the engine runs
them, stay up: live restore)."""

from __future__ import annotations

import argparse
import asyncio
import grp
import logging
import os
import signal
import ssl
import stat
import sys

from longboat import __version__
from longboat.api import build as build_api
from longboat.api import container_files, container_stats, containers, images, system
from longboat.api import networks as network_api
from longboat.api import volumes as volume_api
from longboat.api.http import serve_connection
from longboat.api.router import Router
from longboat.engine.config import DEFAULT_CONFIG_FILE, Settings
from longboat.engine.engine import Engine
from longboat.errors import InvalidArgument, LongboatError

log = logging.getLogger("longboat.daemon")


def parse_args(argv: list[str]) -> tuple[Settings, str]:
    p = argparse.ArgumentParser(prog="longboatd", description="The Longboat engine.")
    p.add_argument("--config-file", default=DEFAULT_CONFIG_FILE,
                   help="daemon settings in JSON (default: %(default)s)")
    p.add_argument("--data-root", help="where images and containers live "
                                       "(default: /var/lib/longboat)")
    p.add_argument("--exec-root", help="runtime state (default: /run/longboat)")
    p.add_argument("-H", "--host", action="append", dest="hosts", metavar="SOCKET",
                   help="unix://PATH or tcp://ADDR:PORT to listen on (repeatable; default "
                        "unix:///run/longboat/longboat.sock)")
    p.add_argument("--tls", action="store_true", help="TLS on tcp:// listeners")
    p.add_argument("--tlsverify", action="store_true",
                   help="TLS, and require client certificates signed by --tlscacert")
    p.add_argument("--tlscacert")
    p.add_argument("--tlscert")
    p.add_argument("--tlskey")
    p.add_argument("--default-runtime", help="longboat (built in), runc or crun")
    p.add_argument("--log-level", choices=["debug", "info", "warn", "error", "fatal"])
    p.add_argument("--pidfile")
    p.add_argument("--group", help="group owning the unix socket (default: longboat)")
    p.add_argument("--cgroup-parent", help="cgroup containers are created below "
                                           "(default: /longboat)")
    p.add_argument("--insecure-registry", action="append", dest="insecure_registries",
                   metavar="HOST[:PORT]")
    p.add_argument("-b", "--bridge", help="the default bridge network's Linux bridge "
                                          "(default longboat0); none: no default bridge")
    p.add_argument("--bip", metavar="CIDR", help="the default bridge's address and prefix, "
                                                 "e.g. 172.17.0.1/16")
    p.add_argument("--version", action="version", version=f"longboatd {__version__}")
    args = p.parse_args(argv)
    settings = Settings()
    settings.load_file(args.config_file, required=args.config_file != DEFAULT_CONFIG_FILE)
    for name in ("data_root", "exec_root", "hosts", "tlscacert", "tlscert", "tlskey",
                 "default_runtime", "log_level", "pidfile", "group", "insecure_registries",
                 "cgroup_parent", "bridge", "bip"):
        value = getattr(args, name)
        if value:
            setattr(settings, name, value)
    settings.tls = settings.tls or args.tls or args.tlsverify
    settings.tlsverify = settings.tlsverify or args.tlsverify
    return settings, args.config_file


def tls_context(settings: Settings) -> ssl.SSLContext | None:
    if not settings.tls:
        return None
    if not settings.tlscert or not settings.tlskey:
        raise InvalidArgument("--tls needs --tlscert and --tlskey")
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(settings.tlscert, settings.tlskey)
    if settings.tlsverify:
        if not settings.tlscacert:
            raise InvalidArgument("--tlsverify needs --tlscacert")
        context.load_verify_locations(settings.tlscacert)
        context.verify_mode = ssl.CERT_REQUIRED
    return context


async def listen(settings: Settings, router: Router) -> list[asyncio.Server]:
    async def connection(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await serve_connection(reader, writer, router, Router.common_headers)

    servers = []
    for host in settings.sockets:
        if host.startswith("unix://"):
            path = host[len("unix://"):]
            os.makedirs(os.path.dirname(path) or ".", mode=0o755, exist_ok=True)
            if os.path.exists(path) and stat.S_ISSOCK(os.lstat(path).st_mode):
                os.unlink(path)
            old = os.umask(0o177)    # never world-accessible, not even for a moment
            try:
                server = await asyncio.start_unix_server(connection, path, limit=1 << 20)
            finally:
                os.umask(old)
            try:
                gid = grp.getgrnam(settings.group).gr_gid
                os.chown(path, 0, gid)
                os.chmod(path, 0o660)
            except KeyError:
                log.warning("group %s does not exist: %s is for root only", settings.group,
                            path)
        elif host.startswith("tcp://"):
            address = host[len("tcp://"):]
            hostname, _, port = address.rpartition(":")
            context = tls_context(settings)
            if context is None and hostname not in ("127.0.0.1", "localhost", "::1", "[::1]"):
                log.warning("listening on %s without TLS: anyone who reaches it is root "
                            "on this host", host)
            server = await asyncio.start_server(connection, hostname.strip("[]") or None,
                                                int(port or 2375), ssl=context,
                                                limit=1 << 20)
        else:
            raise InvalidArgument(f"-H {host}: expected unix://PATH or tcp://ADDR:PORT")
        log.info("API listening on %s", host)
        servers.append(server)
    return servers


async def run(settings: Settings) -> None:
    engine = Engine(settings)
    await engine.start()
    router = Router()
    system.register(router, engine)
    images.register(router, engine)
    containers.register(router, engine)
    volume_api.register(router, engine)
    container_files.register(router, engine)
    container_stats.register(router, engine)
    build_api.register(router, engine)
    network_api.register(router, engine)
    servers = await listen(settings, router)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    log.info("shutting down")
    for server in servers:
        server.close()
    await engine.stop()
    for host in settings.sockets:
        if host.startswith("unix://"):
            try:
                os.unlink(host[len("unix://"):])
            except FileNotFoundError:
                pass


def write_pidfile(path: str) -> None:
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    try:
        with open(path) as f:
            other = int(f.read().strip() or 0)
        if other and os.path.exists(f"/proc/{other}") and other != os.getpid():
            raise InvalidArgument(f"{path}: longboatd is already running as pid {other}")
    except (FileNotFoundError, ValueError):
        pass
    with open(path + ".tmp", "w") as f:
        f.write(str(os.getpid()))
    os.rename(path + ".tmp", path)


def main(argv: list[str] | None = None) -> int:
    try:
        settings, _ = parse_args(sys.argv[1:] if argv is None else argv)
    except LongboatError as exc:
        print(f"longboatd: {exc.message}", file=sys.stderr)
        return 2
    level = {"warn": "WARNING", "fatal": "CRITICAL"}.get(settings.log_level,
                                                         settings.log_level.upper())
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    try:
        write_pidfile(settings.pidfile)
        try:
            asyncio.run(run(settings))
        finally:
            try:
                os.unlink(settings.pidfile)
            except FileNotFoundError:
                pass
    except LongboatError as exc:
        log.error("%s", exc.message)
        return 1
    except OSError as exc:
        log.error("%s", exc)
        return 1
    return 0
