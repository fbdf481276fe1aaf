"""Writing a container's /etc/hosts, /etc/resolv.conf and /etc/hostname (files in its
directory, bind-mounted by the bundle; their text comes from
:mod:`longboat.network.etcfiles`), at create, at start and when it joins or leaves a
network. Written in place (same inode): a running container has them bind-mounted."""

from __future__ import annotations

import os

from longboat.errors import InvalidArgument
from longboat.network import etcfiles


def host_file(path: str) -> str:
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def host_resolv_conf() -> str:
    """The host's resolv.conf text (systemd-resolved's upstreams behind its stub)."""
    return host_file(etcfiles.host_resolv_conf_path())


def ndots_set(directory: str) -> bool:
    """Whether the container's resolv.conf sets ndots above 0 (only the user's does:
    ours for the embedded server says ndots:0)."""
    try:
        return etcfiles.ndots_set(etcfiles.options(host_file(os.path.join(
            directory, "resolv.conf"))))
    except InvalidArgument:
        return False


def write_in_place(path: str, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_CLOEXEC, 0o644)
    with os.fdopen(fd, "w") as f:
        f.write(text)


def write(directory: str, *, hostname: str, hosts_text: str, resolv_text: str) -> None:
    write_in_place(os.path.join(directory, "hostname"), etcfiles.hostname(hostname))
    write_in_place(os.path.join(directory, "hosts"), hosts_text)
    write_in_place(os.path.join(directory, "resolv.conf"), resolv_text)
