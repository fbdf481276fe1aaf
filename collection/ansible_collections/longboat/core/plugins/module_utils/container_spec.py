# -*- coding: utf-8 -*-
# Copyright: Longboat contributors
# Apache License 2.0 (see https://www.apache.org/licenses/LICENSE-2.0)
"""The container module's model: its options turned into canonical values, Docker's
create request, the same canonical values read back from an inspected container, and
the comparison that decides whether a container must be recreated and which networks
must be connected or disconnected.

Pure (no Ansible, no engine): unit tests load it by path. Canonical values are what
both sides are reduced to before comparing, so that spellings the engine treats alike
(``8080:80`` and ``0.0.0.0:8080:80/tcp``, ``512m`` and 536870912, a string command and
its list) never count as a change.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import shlex

from ansible_collections.longboat.core.plugins.module_utils.compare import (
    ALLOW_MORE_PRESENT, DICT, LIST, SET, STRICT, VALUE, Differences, compare_all,
    is_different, parse_duration, parse_size)

# option -> (kind of value, default comparison); 'image' and 'networks' are compared
# by the module itself (the image by ID, networks without recreating)
OPTIONS = {
    "image": (VALUE, STRICT),
    "command": (LIST, STRICT),
    "entrypoint": (LIST, STRICT),
    "env": (DICT, STRICT),
    "labels": (DICT, STRICT),
    "published_ports": (DICT, STRICT),
    "exposed_ports": (SET, ALLOW_MORE_PRESENT),
    "volumes": (SET, STRICT),
    "mounts": (SET, STRICT),
    "network_mode": (VALUE, STRICT),
    "networks": (SET, ALLOW_MORE_PRESENT),
    "restart_policy": (VALUE, STRICT),
    "restart_retries": (VALUE, STRICT),
    "user": (VALUE, STRICT),
    "working_dir": (VALUE, STRICT),
    "hostname": (VALUE, STRICT),
    "memory": (VALUE, STRICT),
    "cpus": (VALUE, STRICT),
    "privileged": (VALUE, STRICT),
    "read_only": (VALUE, STRICT),
    "init": (VALUE, STRICT),
    "tty": (VALUE, STRICT),
    "interactive": (VALUE, STRICT),
    "auto_remove": (VALUE, STRICT),
    "capabilities": (SET, STRICT),
    "cap_drop": (SET, STRICT),
    "dns_servers": (LIST, STRICT),
    "etc_hosts": (DICT, STRICT),
    "stop_signal": (VALUE, STRICT),
    "stop_timeout": (VALUE, STRICT),
    "healthcheck": (DICT, STRICT),
    "log_driver": (VALUE, STRICT),
    "log_options": (DICT, STRICT),
    "sysctls": (DICT, STRICT),
}

# compared by the module, not by recreate_differences()
SPECIAL = ("image", "networks")


class SpecError(ValueError):
    """An option value that cannot be turned into a container configuration."""


# -- parsing the options -------------------------------------------------------------
def split_command(value, name):
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        return [str(part) for part in value]
    if isinstance(value, str):
        try:
            return shlex.split(value)
        except ValueError as exc:
            raise SpecError("%s: %s in %r" % (name, exc, value))
    raise SpecError("%s must be a string or a list of strings" % (name,))


def string_map(value, name):
    """A dict of strings; booleans refused (YAML's yes/no would become 'True')."""
    if value is None:
        return None
    out = {}
    for key, item in value.items():
        if isinstance(item, bool):
            raise SpecError("%s: the value of %s is a boolean; quote it (e.g. '%s') so the "
                            "container gets the text you mean" % (name, key, str(item).lower()))
        out[str(key)] = "" if item is None else str(item)
    return out


def env_dict(entries):
    """``["A=1", "B"]`` -> ``{"A": "1", "B": ""}`` (an entry without = is unset: skipped
    by Docker too)."""
    out = {}
    for entry in entries or []:
        key, sep, value = entry.partition("=")
        if sep:
            out[key] = value
    return out


def port_key(text):
    """``80`` -> ``80/tcp``; ``53/udp`` stays."""
    port, _sep, proto = str(text).partition("/")
    proto = (proto or "tcp").lower()
    if proto not in ("tcp", "udp", "sctp"):
        raise SpecError("port %r: the protocol must be tcp, udp or sctp" % (text,))
    if not port.isdigit() or not 0 < int(port) < 65536:
        raise SpecError("port %r: expected a port number from 1 to 65535" % (text,))
    return "%d/%s" % (int(port), proto)


def parse_published_ports(specs):
    """docker run -p syntax -> ``{"80/tcp": ["0.0.0.0:8080", ...]}`` (canonical: sorted
    ``hostip:hostport`` strings, an empty host ip as 0.0.0.0, an empty port for "any").
    Accepts ``CPORT``, ``HPORT:CPORT``, ``IP:HPORT:CPORT``, ``IP::CPORT``, each with an
    optional ``/proto``, and ``HSTART-HEND:CSTART-CEND`` ranges."""
    if specs is None:
        return None
    out = {}
    for spec in specs:
        text = str(spec).strip()
        if text.startswith("["):            # [::1]:8080:80
            end = text.find("]")
            host_ip, rest = text[1:end], text[end + 2:]
            parts = rest.split(":")
            if len(parts) == 1:
                parts = ["", parts[0]]
            host_port, container = parts[0], parts[-1]
        else:
            parts = text.split(":")
            if len(parts) == 1:
                host_ip, host_port, container = "", "", parts[0]
            elif len(parts) == 2:
                host_ip, host_port, container = "", parts[0], parts[1]
            elif len(parts) == 3:
                host_ip, host_port, container = parts
            else:
                raise SpecError("published_ports: %r is not [IP:][HOST_PORT:]"
                                "CONTAINER_PORT[/PROTO]" % (spec,))
        port, _sep, proto = container.partition("/")
        container_ports = _port_range(port, spec)
        host_ports = _port_range(host_port, spec) if host_port else [None]
        if host_port and len(host_ports) != len(container_ports):
            if len(container_ports) != 1:
                raise SpecError("published_ports: %r: the host and container ranges "
                                "differ in size" % (spec,))
        for index, cport in enumerate(container_ports):
            key = port_key("%d/%s" % (cport, proto or "tcp"))
            if host_ports == [None]:
                hport = ""
            elif len(host_ports) == len(container_ports):
                hport = str(host_ports[index])
            else:          # a host range for one container port: docker picks one
                hport = "%d-%d" % (host_ports[0], host_ports[-1])
            out.setdefault(key, []).append("%s:%s" % (host_ip or "0.0.0.0", hport))
    return dict((key, sorted(set(values))) for key, values in out.items())


def _port_range(text, spec):
    first, sep, last = text.partition("-")
    try:
        start = int(first)
        end = int(last) if sep else start
    except ValueError:
        raise SpecError("published_ports: %r: %r is not a port or a port range"
                        % (spec, text))
    if not (0 < start <= end < 65536):
        raise SpecError("published_ports: %r: ports go from 1 to 65535" % (spec,))
    return list(range(start, end + 1))


def port_bindings(canonical):
    """Canonical published ports -> HostConfig.PortBindings."""
    bindings = {}
    for key, values in (canonical or {}).items():
        for value in values:
            host_ip, _sep, host_port = value.rpartition(":")
            bindings.setdefault(key, []).append(
                {"HostIp": "" if host_ip == "0.0.0.0" else host_ip, "HostPort": host_port})
    return bindings


def canonical_bindings(bindings):
    out = {}
    for key, values in (bindings or {}).items():
        entries = []
        for value in values or []:
            entries.append("%s:%s" % (value.get("HostIp") or "0.0.0.0",
                                      value.get("HostPort") or ""))
        out[port_key(key)] = sorted(set(entries)) or ["0.0.0.0:"]
    return out


def parse_volume(text):
    """``SRC:DST[:MODE]`` (a bind when SRC is a path, else a named volume) or ``DST``
    (anonymous) -> canonical ``SRC:DST[:MODE]`` / ``DST`` with the default mode dropped."""
    parts = str(text).split(":")
    if len(parts) == 1:
        if not parts[0].startswith("/"):
            raise SpecError("volumes: %r: an anonymous volume needs an absolute path in the "
                            "container" % (text,))
        return parts[0]
    if len(parts) > 3 or not parts[0] or not parts[1].startswith("/"):
        raise SpecError("volumes: %r is not SOURCE:/PATH[:MODE] or /PATH" % (text,))
    modes = [m for m in (parts[2].split(",") if len(parts) == 3 else []) if m and m != "rw"]
    return ":".join(parts[:2] + ([",".join(sorted(modes))] if modes else []))


def canonical_mount(mount):
    kind = mount.get("type") or "volume"
    return {"type": kind, "source": mount.get("source") or "",
            "target": mount.get("target"), "read_only": bool(mount.get("read_only"))}


def parse_healthcheck(value):
    if value is None:
        return None
    test = value.get("test")
    if isinstance(test, str):
        test = ["NONE"] if test.upper() == "NONE" else ["CMD-SHELL", test]
    elif test is not None:
        test = [str(part) for part in test]
    out = {"test": test}
    for name in ("interval", "timeout", "start_period"):
        try:
            out[name] = parse_duration(value.get(name), "healthcheck." + name) or 0
        except ValueError as exc:
            raise SpecError(str(exc))
    out["retries"] = int(value.get("retries") or 0)
    return out


def wanted_values(params):
    """The module's options as canonical values (None: not set, not compared)."""
    try:
        memory = parse_size(params.get("memory"), "memory")
    except ValueError as exc:
        raise SpecError(str(exc))
    exposed = params.get("exposed_ports")
    networks = params.get("networks")
    return {
        "image": params.get("image"),
        "command": split_command(params.get("command"), "command"),
        "entrypoint": split_command(params.get("entrypoint"), "entrypoint"),
        "env": string_map(params.get("env"), "env"),
        "labels": string_map(params.get("labels"), "labels"),
        "published_ports": parse_published_ports(params.get("published_ports")),
        "exposed_ports": None if exposed is None else sorted(set(port_key(p) for p in exposed)),
        "volumes": None if params.get("volumes") is None else sorted(
            set(parse_volume(v) for v in params["volumes"])),
        "mounts": None if params.get("mounts") is None else [
            canonical_mount(m) for m in params["mounts"]],
        "network_mode": normal_network_mode(params.get("network_mode")),
        "networks": None if networks is None else [canonical_network(n) for n in networks],
        "restart_policy": params.get("restart_policy"),
        "restart_retries": params.get("restart_retries"),
        "user": params.get("user"),
        "working_dir": params.get("working_dir"),
        "hostname": params.get("hostname"),
        "memory": memory,
        "cpus": None if params.get("cpus") is None else int(round(params["cpus"] * 1e9)),
        "privileged": params.get("privileged"),
        "read_only": params.get("read_only"),
        "init": params.get("init"),
        "tty": params.get("tty"),
        "interactive": params.get("interactive"),
        "auto_remove": params.get("auto_remove"),
        "capabilities": _caps(params.get("capabilities")),
        "cap_drop": _caps(params.get("cap_drop")),
        "dns_servers": params.get("dns_servers"),
        "etc_hosts": string_map(params.get("etc_hosts"), "etc_hosts"),
        "stop_signal": params.get("stop_signal"),
        "stop_timeout": params.get("stop_timeout"),
        "healthcheck": parse_healthcheck(params.get("healthcheck")),
        "log_driver": params.get("log_driver"),
        "log_options": string_map(params.get("log_options"), "log_options"),
        "sysctls": string_map(params.get("sysctls"), "sysctls"),
    }


def _caps(values):
    if values is None:
        return None
    out = []
    for cap in values:
        cap = str(cap).upper()
        out.append(cap if cap.startswith("CAP_") or cap == "ALL" else "CAP_" + cap)
    return sorted(set(out))


def normal_network_mode(mode):
    if mode is None:
        return None
    return "default" if mode in ("", "bridge", "default") else mode


def canonical_network(network):
    return {"name": network["name"], "aliases": sorted(set(network.get("aliases") or [])),
            "ipv4_address": network.get("ipv4_address") or None}


# -- Docker's create request -----------------------------------------------------------
def create_body(wanted, image):
    """``POST /containers/create``'s body for the canonical ``wanted`` values and the
    image reference to create it from (networks beyond the first are connected after
    create, as API 1.41 takes one endpoint at create)."""
    config = {"Image": image}
    host = {}
    if wanted.get("command") is not None:
        config["Cmd"] = wanted["command"]
    if wanted.get("entrypoint") is not None:
        config["Entrypoint"] = wanted["entrypoint"]
    if wanted.get("env") is not None:
        config["Env"] = ["%s=%s" % item for item in sorted(wanted["env"].items())]
    if wanted.get("labels") is not None:
        config["Labels"] = dict(wanted["labels"])
    exposed = set(wanted.get("exposed_ports") or [])
    exposed.update((wanted.get("published_ports") or {}).keys())
    if exposed:
        config["ExposedPorts"] = dict((key, {}) for key in sorted(exposed))
    if wanted.get("published_ports") is not None:
        host["PortBindings"] = port_bindings(wanted["published_ports"])
    binds, anonymous = [], {}
    for volume in wanted.get("volumes") or []:
        if ":" in volume:
            binds.append(volume)
        else:
            anonymous[volume] = {}
    if binds:
        host["Binds"] = binds
    if anonymous:
        config["Volumes"] = anonymous
    if wanted.get("mounts") is not None:
        host["Mounts"] = [_mount_body(m) for m in wanted["mounts"]]
    for option, key, where in (("user", "User", config), ("working_dir", "WorkingDir", config),
                               ("hostname", "Hostname", config), ("tty", "Tty", config),
                               ("interactive", "OpenStdin", config),
                               ("stop_signal", "StopSignal", config),
                               ("stop_timeout", "StopTimeout", config),
                               ("memory", "Memory", host), ("cpus", "NanoCpus", host),
                               ("privileged", "Privileged", host),
                               ("read_only", "ReadonlyRootfs", host), ("init", "Init", host),
                               ("auto_remove", "AutoRemove", host),
                               ("capabilities", "CapAdd", host), ("cap_drop", "CapDrop", host),
                               ("dns_servers", "Dns", host), ("sysctls", "Sysctls", host)):
        if wanted.get(option) is not None:
            where[key] = wanted[option]
    if wanted.get("interactive"):
        config["AttachStdin"] = False
        config["StdinOnce"] = False
    if wanted.get("etc_hosts") is not None:
        host["ExtraHosts"] = ["%s:%s" % item for item in sorted(wanted["etc_hosts"].items())]
    if wanted.get("restart_policy") is not None or wanted.get("restart_retries") is not None:
        name = wanted.get("restart_policy") or "no"
        host["RestartPolicy"] = {"Name": name, "MaximumRetryCount":
                                 wanted.get("restart_retries") or 0}
    if wanted.get("healthcheck") is not None:
        check = wanted["healthcheck"]
        config["Healthcheck"] = {"Test": check["test"], "Interval": check["interval"],
                                 "Timeout": check["timeout"], "Retries": check["retries"],
                                 "StartPeriod": check["start_period"]}
    if wanted.get("log_driver") is not None or wanted.get("log_options") is not None:
        host["LogConfig"] = {"Type": wanted.get("log_driver") or "json-file",
                             "Config": wanted.get("log_options") or {}}
    networks = wanted.get("networks") or []
    mode = wanted.get("network_mode")
    if mode is None and networks:
        mode = networks[0]["name"]
    if mode is not None:
        host["NetworkMode"] = mode
    if networks and networks[0]["name"] == mode:
        config["NetworkingConfig"] = {"EndpointsConfig": {
            mode: endpoint_config(networks[0])}}
    config["HostConfig"] = host
    return config


def endpoint_config(network):
    endpoint = {}
    if network.get("aliases"):
        endpoint["Aliases"] = list(network["aliases"])
    if network.get("ipv4_address"):
        endpoint["IPAMConfig"] = {"IPv4Address": network["ipv4_address"]}
    return endpoint


def _mount_body(mount):
    body = {"Type": mount["type"], "Target": mount["target"],
            "ReadOnly": mount["read_only"]}
    if mount["source"]:
        body["Source"] = mount["source"]
    return body


# -- the same canonical values, read from a container ---------------------------------
def actual_values(container, image_config=None):
    """Canonical values of an inspected container. ``image_config`` (the image's Config)
    fills in what the container inherits, so an inherited env or label never differs."""
    config = container.get("Config") or {}
    host = container.get("HostConfig") or {}
    image_config = image_config or {}
    binds = [parse_volume(b) for b in host.get("Binds") or []]
    bound = set(b.split(":")[1] for b in binds)
    image_volumes = set((image_config.get("Volumes") or {}).keys())
    anonymous = [v for v in (config.get("Volumes") or {})
                 if v not in bound and v not in image_volumes]
    restart = host.get("RestartPolicy") or {}
    log = host.get("LogConfig") or {}
    check = config.get("Healthcheck")
    exposed = set(port_key(p) for p in (config.get("ExposedPorts") or {}))
    exposed.update(port_key(p) for p in (image_config.get("ExposedPorts") or {}))
    exposed.update(port_key(p) for p in (host.get("PortBindings") or {}))
    return {
        "image": container.get("Image"),
        "command": config.get("Cmd"),
        "entrypoint": config.get("Entrypoint"),
        "env": env_dict(config.get("Env")),
        "labels": dict(config.get("Labels") or {}),
        "published_ports": canonical_bindings(host.get("PortBindings")),
        "exposed_ports": sorted(exposed),
        "volumes": sorted(set(binds + anonymous)),
        "mounts": [canonical_mount({"type": m.get("Type"), "source": m.get("Source"),
                                    "target": m.get("Target"),
                                    "read_only": m.get("ReadOnly")})
                   for m in host.get("Mounts") or []],
        "network_mode": normal_network_mode(host.get("NetworkMode") or "default"),
        "networks": actual_networks(container),
        "restart_policy": restart.get("Name") or "no",
        "restart_retries": restart.get("MaximumRetryCount") or 0,
        "user": config.get("User") or "",
        "working_dir": config.get("WorkingDir") or "",
        "hostname": config.get("Hostname") or "",
        "memory": host.get("Memory") or 0,
        "cpus": host.get("NanoCpus") or 0,
        "privileged": bool(host.get("Privileged")),
        "read_only": bool(host.get("ReadonlyRootfs")),
        "init": bool(host.get("Init")),
        "tty": bool(config.get("Tty")),
        "interactive": bool(config.get("OpenStdin")),
        "auto_remove": bool(host.get("AutoRemove")),
        "capabilities": _caps(host.get("CapAdd") or []),
        "cap_drop": _caps(host.get("CapDrop") or []),
        "dns_servers": list(host.get("Dns") or []),
        "etc_hosts": dict(e.split(":", 1) for e in host.get("ExtraHosts") or [] if ":" in e),
        "stop_signal": config.get("StopSignal") or image_config.get("StopSignal") or "SIGTERM",
        "stop_timeout": config.get("StopTimeout"),
        "healthcheck": None if not check else {
            "test": check.get("Test"), "interval": check.get("Interval") or 0,
            "timeout": check.get("Timeout") or 0, "retries": check.get("Retries") or 0,
            "start_period": check.get("StartPeriod") or 0},
        "log_driver": log.get("Type") or "json-file",
        "log_options": dict(log.get("Config") or {}),
        "sysctls": dict(host.get("Sysctls") or {}),
    }


def actual_networks(container):
    out = []
    settings = (container.get("NetworkSettings") or {}).get("Networks") or {}
    short_id = (container.get("Id") or "")[:12]
    for name, endpoint in sorted(settings.items()):
        ipam = endpoint.get("IPAMConfig") or {}
        aliases = [a for a in endpoint.get("Aliases") or [] if a != short_id]
        out.append({"name": name, "aliases": sorted(set(aliases)),
                    "ipv4_address": ipam.get("IPv4Address") or None})
    return out


def with_inherited(wanted, image_config):
    """``wanted`` with what the image gives merged in where the container inherits it
    (env and labels: the image's entries, overridden by the wanted ones)."""
    out = dict(wanted)
    image_config = image_config or {}
    if wanted.get("env") is not None:
        merged = env_dict(image_config.get("Env"))
        merged.update(wanted["env"])
        out["env"] = merged
    if wanted.get("labels") is not None:
        merged = dict(image_config.get("Labels") or {})
        merged.update(wanted["labels"])
        out["labels"] = merged
    return out


def recreate_differences(wanted, actual, methods, image_config=None):
    """Differences that need a new container (everything but image and networks)."""
    want = with_inherited(wanted, image_config)
    have = dict(actual)
    image_config = image_config or {}
    for name in ("env", "labels"):
        inherited = env_dict(image_config.get("Env")) if name == "env" else dict(
            image_config.get("Labels") or {})
        if want.get(name) is not None:
            inherited.update(have.get(name) or {})
            have[name] = inherited
    options = dict((k, v) for k, v in OPTIONS.items() if k not in SPECIAL)
    return compare_all(options, methods, want, have)


def network_changes(wanted, actual, method, keep=()):
    """What to do about networks: ``(connect, disconnect)`` lists of canonical networks.
    A wanted network that is attached with other aliases or another address is in
    both (disconnect, then connect). With ``strict``, networks not wanted are
    disconnected, except those named in ``keep`` (the network mode's own)."""
    if wanted is None or method == "ignore":
        return [], []
    have = dict((n["name"], n) for n in actual or [])
    connect, disconnect = [], []
    for network in wanted:
        current = have.get(network["name"])
        if current is None:
            connect.append(network)
            continue
        aliases_differ = is_different(SET, ALLOW_MORE_PRESENT if method != STRICT else STRICT,
                                      network["aliases"], current["aliases"]) \
            if network["aliases"] else False
        address_differs = bool(network["ipv4_address"]) and \
            network["ipv4_address"] != current["ipv4_address"]
        if aliases_differ or address_differs:
            disconnect.append(current)
            connect.append(network)
    if method == STRICT:
        names = set(n["name"] for n in wanted) | set(keep)
        disconnect.extend(n for n in actual or [] if n["name"] not in names)
    return connect, disconnect


__all__ = ["OPTIONS", "Differences", "SpecError", "actual_values", "create_body",
           "network_changes", "recreate_differences", "wanted_values"]
