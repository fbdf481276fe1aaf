# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""Registry credentials kept as ``longboat login`` keeps them: Docker's config.json
format in ``~/.longboat/config.json`` (0600), Docker Hub under its old v1 URL, other
registries under ``host[:port]``."""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import base64
import json
import os

HUB_KEY = "https://index.docker.io/v1/"
HUB_ALIASES = ("docker.io", "index.docker.io", "registry-1.docker.io", HUB_KEY,
               "https://index.docker.io/v1")
DEFAULT_PATH = "~/.longboat/config.json"


def config_key(registry):
    host = (registry or HUB_KEY).strip()
    if host in HUB_ALIASES:
        return HUB_KEY
    for prefix in ("https://", "http://"):
        if host.startswith(prefix):
            host = host[len(prefix):]
    host = host.split("/", 1)[0]
    return HUB_KEY if host in HUB_ALIASES else host


def registry_of(image):
    """The registry part of an image reference (Docker Hub when there is none)."""
    first, sep, _rest = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return HUB_KEY


def load(path):
    path = os.path.expanduser(path)
    try:
        with open(path, "rb") as f:
            data = json.loads(f.read() or b"{}")
    except (IOError, OSError):
        return {}
    except ValueError as exc:
        raise ValueError("%s is not valid JSON (%s): fix or remove it" % (path, exc))
    if not isinstance(data, dict) or not isinstance(data.get("auths", {}), dict):
        raise ValueError("%s must hold a JSON object whose 'auths' is an object" % path)
    return data


def save(path, data):
    path = os.path.expanduser(path)
    directory = os.path.dirname(path) or "."
    if not os.path.isdir(directory):
        os.makedirs(directory, 0o700)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.fchmod(fd, 0o600)
        os.write(fd, json.dumps(data, indent="\t").encode() + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.rename(tmp, path)


def get(path, registry):
    """(username, password) saved for ``registry``, or None."""
    entry = load(path).get("auths", {}).get(config_key(registry))
    if not isinstance(entry, dict):
        return None
    encoded = entry.get("auth")
    if encoded:
        try:
            user, sep, password = base64.b64decode(encoded).decode().partition(":")
        except (ValueError, TypeError):
            return None
        return (user, password) if sep else None
    if entry.get("username") is not None and entry.get("password") is not None:
        return entry["username"], entry["password"]
    return None


def put(path, registry, username, password):
    data = load(path)
    data.setdefault("auths", {})[config_key(registry)] = {
        "auth": base64.b64encode(("%s:%s" % (username, password)).encode()).decode()}
    save(path, data)


def remove(path, registry):
    data = load(path)
    if data.get("auths", {}).pop(config_key(registry), None) is None:
        return False
    save(path, data)
    return True


def x_registry_auth(path, image):
    """The credentials for ``image``'s registry, as the pull/push header wants them."""
    registry = registry_of(image)
    saved = get(path, registry)
    if saved is None:
        return None
    return {"username": saved[0], "password": saved[1], "serveraddress": registry}
