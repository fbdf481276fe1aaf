"""``login`` and ``logout``: the daemon checks credentials (``POST /auth``); the client
keeps them, as docker does, in ``~/.longboat/config.json`` (mode 0600), from where
``pull`` and ``push`` send them as ``X-Registry-Auth``."""

from __future__ import annotations

import os
import sys

from longboat.cli.main import CommandError, Context

HUB = "https://index.docker.io/v1/"


def _host(server: str) -> str:
    """``https://host:5000/v2/`` -> ``host:5000`` (Docker Hub keeps its own key)."""
    if server == HUB:
        return server
    return server.split("://", 1)[-1].split("/", 1)[0]


def login(ctx: Context) -> int:
    from longboat.errors import LongboatError
    from longboat.image.registry_auth import AuthStore

    a = ctx.args
    server = a.server or HUB
    password = a.password
    if password and a.password_stdin:
        raise CommandError("--password and --password-stdin are mutually exclusive")
    if a.password_stdin:
        if not a.username:
            raise CommandError("Must provide --username with --password-stdin")
        password = sys.stdin.read().rstrip("\n").rstrip("\r")
    if a.password:
        ctx.err.write("WARNING! Using --password via the CLI is insecure. Use "
                      "--password-stdin.\n")
    username = a.username
    if not username:
        ctx.out.write("Username: ")
        ctx.out.flush()
        username = sys.stdin.readline().strip()
        if not username:
            raise CommandError("Error: Non-null Username Required")
    if not password:
        import getpass

        password = getpass.getpass("Password: ")
        if not password:
            raise CommandError("Error: Password Required")
    ctx.client().login(username, password, server)
    store = AuthStore(os.path.join(ctx.config_dir, "config.json"))
    try:
        store.set(_host(server), username, password)
    except LongboatError as exc:
        raise CommandError(f"Error saving credentials: {exc.message}") from None
    ctx.err.write(f"WARNING! Your credentials are stored unencrypted in '{store.path}'.\n"
                  "Configure a credential helper to remove this warning. See\n"
                  "https://docs.docker.com/go/credential-store/\n\n")
    ctx.out.write("Login Succeeded\n")
    return 0


def logout(ctx: Context) -> int:
    from longboat.errors import LongboatError
    from longboat.image.registry_auth import AuthStore

    server = ctx.args.server or HUB
    store = AuthStore(os.path.join(ctx.config_dir, "config.json"))
    try:
        removed = store.remove(_host(server))
    except LongboatError as exc:
        raise CommandError(exc.message) from None
    if not removed:
        ctx.out.write(f"Not logged in to {server}\n")
        return 0
    ctx.out.write(f"Removing login credentials for {server}\n")
    return 0
