"""The engine's networks: their records, Docker's create/inspect/list/remove/prune, and
their endpoints (one per container and network).

A network's record (``DATA_ROOT/network/networks/<id>.json``, written atomically) holds
Docker's Network object as created (name, driver, IPAM config, options, labels) and its
endpoints: for each container attached, the interface, MAC and addresses it got, so that
an engine that restarts while containers run keeps their addresses and rules (live
restore). Addresses come from :class:`longboat.network.ipam.Ipam` (one pool per IPAM
config, keyed ``<network id>/<n>``). The kernel work is a driver's
(:mod:`longboat.engine.network_drivers`); the firewall is rebuilt from every record at
each change (:mod:`longboat.engine.firewall`).

Validation comes first: a create, connect or remove that is refused changes nothing.
"""

from __future__ import annotations

import asyncio
import ipaddress
import json
import logging
import os
import re
import secrets
import socket
import threading

from longboat.engine.network_drivers import Driver, drivers
from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound
from longboat.network.ipam import Ipam

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.engine import Engine

BUILTIN = ("bridge", "host", "none")
Configs = list[dict[str, "Any"]]
NetworkList = list["Network"]
Filters = dict[str, list[str]]
BRIDGE_NAME_OPTION = "com.docker.network.bridge.name"
_TRUE = ("1", "t", "true", "True", "TRUE")
#: what nftables' renderer takes as an interface name, and the kernel too
_BRIDGE_NAME = re.compile(r"[A-Za-z0-9_.-]{1,15}")
log = logging.getLogger("longboat.engine.networks")


class Forbidden(LongboatError):
    """Docker answers 403 for operations on the predefined networks."""

    status = 403


def _now() -> str:
    from longboat.engine.containers import now_rfc3339

    return now_rfc3339()


def _flag(options: dict[str, str], key: str, default: bool) -> bool:
    value = options.get(key)
    return default if value in (None, "") else value in _TRUE


class Network:
    """One network's record: Docker's fields, plus ``_endpoints`` keyed by container."""

    def __init__(self, data: dict[str, Any], path: str) -> None:
        self.data = data
        self.path = path

    @property
    def id(self) -> str:
        return str(self.data["Id"])

    @property
    def name(self) -> str:
        return str(self.data["Name"])

    @property
    def driver(self) -> str:
        return str(self.data["Driver"])

    @property
    def internal(self) -> bool:
        return bool(self.data.get("Internal"))

    @property
    def config_only(self) -> bool:
        return bool(self.data.get("ConfigOnly"))

    @property
    def options(self) -> dict[str, str]:
        return dict(self.data.get("Options") or {})

    @property
    def labels(self) -> dict[str, str]:
        return dict(self.data.get("Labels") or {})

    @property
    def builtin(self) -> bool:
        return self.name in BUILTIN

    @property
    def ipam_configs(self) -> list[dict[str, Any]]:
        """The address pools as allocated (with the gateways IPAM chose); inspect's
        ``IPAM.Config`` shows user-given pools as they were given, like Docker's."""
        pools = self.data.get("_pools")
        if pools is not None:
            return list(pools)
        return list((self.data.get("IPAM") or {}).get("Config") or [])

    @property
    def endpoints(self) -> dict[str, dict[str, Any]]:
        endpoints: dict[str, dict[str, Any]] = self.data.setdefault("_endpoints", {})
        return endpoints

    @property
    def bridge(self) -> str:
        """The Linux bridge of a bridge network (``br-<id[:12]>`` unless named)."""
        return self.options.get(BRIDGE_NAME_OPTION) or f"br-{self.id[:12]}"

    @property
    def icc(self) -> bool:
        return _flag(self.options, "com.docker.network.bridge.enable_icc", True)

    @property
    def masquerade(self) -> bool:
        return _flag(self.options, "com.docker.network.bridge.enable_ip_masquerade", True)

    @property
    def mtu(self) -> int | None:
        value = self.options.get("com.docker.network.driver.mtu")
        return int(value) if value else None

    def user_subnet(self, version: int) -> bool:
        """Whether the user gave this network a subnet of that IP version (Docker takes
        a container's own address only then); records from before say yes."""
        given = self.data.get("_user_subnets")
        return given is None or version in given

    def subnets(self) -> list[str]:
        return [c["Subnet"] for c in self.ipam_configs if c.get("Subnet")]

    def _in_use(self, config: dict[str, Any]) -> bool:
        """An IPv6 pool is used only with EnableIPv6 (Docker keeps one given without)."""
        return ":" not in str(config.get("Subnet") or "") or bool(
            self.data.get("EnableIPv6"))

    def gateways(self) -> list[str]:
        return [c["Gateway"] for c in self.ipam_configs if c.get("Gateway")
                and self._in_use(c)]

    def gateway_cidrs(self) -> list[str]:
        """The gateway addresses with their prefix, as a bridge carries them."""
        out = []
        for c in self.ipam_configs:
            if c.get("Subnet") and c.get("Gateway") and self._in_use(c):
                prefix = ipaddress.ip_network(c["Subnet"]).prefixlen
                out.append(f"{c['Gateway']}/{prefix}")
        return out

    def pool_key(self, index: int) -> str:
        return f"{self.id}/{index}"

    def pool_for(self, address: str) -> tuple[int, dict[str, Any]] | None:
        ip = ipaddress.ip_address(address)
        for i, c in enumerate(self.ipam_configs):
            if c.get("Subnet") and ip in ipaddress.ip_network(c["Subnet"]):
                return i, c
        return None

    def pool_of_version(self, version: int) -> tuple[int, dict[str, Any]] | None:
        for i, c in enumerate(self.ipam_configs):
            if c.get("Subnet") and ipaddress.ip_network(c["Subnet"]).version == version:
                return i, c
        return None

    def save(self) -> None:
        with open(self.path + ".tmp", "w") as f:
            json.dump(self.data, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.rename(self.path + ".tmp", self.path)

    def inspect(self, *, containers: bool = True) -> dict[str, Any]:
        public = {k: v for k, v in self.data.items() if not k.startswith("_")}
        view: dict[str, Any] = dict(public, Containers={})
        if containers:
            view["Containers"] = {cid: {
                "Name": ep["Name"], "EndpointID": ep["EndpointID"],
                "MacAddress": ep.get("MacAddress", ""),
                "IPv4Address": ep.get("IPv4Address", ""),
                "IPv6Address": ep.get("IPv6Address", "")} for cid, ep in self.endpoints.items()}
        return view


def _strings(value: Any, field: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str)
                                              for k, v in value.items()):
        raise InvalidArgument(f"{field} must be an object of strings")
    return dict(value)


class Networks:
    """Every network of this engine (the predefined bridge, host and none, and the
    user's)."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.root = os.path.join(engine.settings.data_root, "network")
        self.records = os.path.join(self.root, "networks")
        os.makedirs(self.records, mode=0o700, exist_ok=True)
        self.ipam = Ipam(os.path.join(self.root, "ipam.json"))
        self.drivers: dict[str, Driver] = drivers()
        self.lock = threading.RLock()
        self.by_id: dict[str, Network] = {}
        self._loop: asyncio.AbstractEventLoop | None = None
        for entry in os.listdir(self.records):
            if not entry.endswith(".json"):
                continue
            path = os.path.join(self.records, entry)
            try:
                with open(path) as f:
                    network = Network(json.load(f), path)
            except (OSError, ValueError):
                continue
            self.by_id[network.id] = network

    # -- the predefined networks --------------------------------------------------------
    @property
    def default_bridge_name(self) -> str:
        return str(getattr(self.engine.settings, "bridge", "") or "longboat0")

    @property
    def default_bridge_enabled(self) -> bool:
        return self.default_bridge_name != "none"

    def ensure_predefined(self) -> None:
        """host and none always; bridge unless ``--bridge none`` (its subnet from
        ``--bip``, or the first free default pool; re-made when --bip changes)."""
        with self.lock:
            for name in ("host", "none"):
                if self.by_name(name) is None:
                    self._new_record({"Name": name, "Driver": "host" if name == "host"
                                      else "null", "IPAM": {"Driver": "default",
                                                            "Options": None, "Config": []}})
            current = self.by_name("bridge")
            if not self.default_bridge_enabled:
                if current is not None and not current.endpoints:
                    self._forget(current)
                return
            bip = getattr(self.engine.settings, "bip", "") or ""
            wanted_subnet = gateway = None
            if bip:
                try:
                    iface = ipaddress.ip_interface(bip)
                except ValueError:
                    raise InvalidArgument(f"--bip {bip}: expected an address with a prefix, "
                                          "e.g. 172.17.0.1/16") from None
                wanted_subnet, gateway = str(iface.network), str(iface.ip)
            if current is not None:
                same_bridge = current.bridge == self.default_bridge_name
                same_pool = wanted_subnet is None or current.subnets()[:1] == [wanted_subnet]
                if (same_bridge and same_pool) or current.endpoints:
                    return
                self._forget(current)
            nid = secrets.token_hex(32)
            config = self.ipam.add_network(f"{nid}/0", subnet=wanted_subnet, gateway=gateway,
                                           host_routes=self._host_routes())
            # inspect shows the subnet alone unless --bip named the gateway (dockerd's)
            shown = dict(config) if bip else {"Subnet": config["Subnet"]}
            self._new_record({
                "Id": nid, "Name": "bridge", "Driver": "bridge", "_pools": [config],
                "IPAM": {"Driver": "default", "Options": None, "Config": [shown]},
                "Options": {"com.docker.network.bridge.default_bridge": "true",
                            "com.docker.network.bridge.enable_icc": "true",
                            "com.docker.network.bridge.enable_ip_masquerade": "true",
                            "com.docker.network.bridge.host_binding_ipv4": "0.0.0.0",
                            BRIDGE_NAME_OPTION: self.default_bridge_name,
                            "com.docker.network.driver.mtu": "1500"}})

    def _host_routes(self) -> list[str]:
        """The host's networks, less those of our own bridges (IPAM must skip only the
        others)."""
        from longboat.network import links

        ours = {s for n in self.by_id.values() for s in n.subnets()}
        return [r for r in links.host_networks() if str(
            ipaddress.ip_network(r, strict=False)) not in ours]

    def _new_record(self, fields: dict[str, Any]) -> Network:
        nid = fields.get("Id") or secrets.token_hex(32)
        data: dict[str, Any] = {
            "Name": "", "Id": nid, "Created": _now(), "Scope": "local", "Driver": "bridge",
            "EnableIPv6": False, "IPAM": {"Driver": "default", "Options": {}, "Config": []},
            "Internal": False, "Attachable": False, "Ingress": False,
            "ConfigFrom": {"Network": ""}, "ConfigOnly": False, "Options": {}, "Labels": {},
            "_endpoints": {}}
        data.update(fields)
        network = Network(data, os.path.join(self.records, f"{nid}.json"))
        network.save()
        self.by_id[nid] = network
        return network

    def _forget(self, network: Network) -> None:
        """Drop a record and its address pools (its links are the caller's business)."""
        for i, _ in enumerate(network.ipam_configs):
            try:
                self.ipam.remove_network(network.pool_key(i))
            except NotFound:
                pass
        self.by_id.pop(network.id, None)
        try:
            os.unlink(network.path)
        except FileNotFoundError:
            pass

    # -- lookup -------------------------------------------------------------------------
    def by_name(self, name: str) -> Network | None:
        return next((n for n in self.by_id.values() if n.name == name), None)

    def get(self, ref: str) -> Network:
        """By full id, name, or a unique id prefix (Docker's order)."""
        if ref in self.by_id:
            return self.by_id[ref]
        named = self.by_name(ref)
        if named is not None:
            return named
        matches = [n for n in self.by_id.values() if n.id.startswith(ref)] if ref else []
        if len(matches) == 1:
            return matches[0]
        if len(matches) > 1:
            raise InvalidArgument(f"network {ref} is ambiguous ({len(matches)} matches found "
                                  "based on ID prefix)")
        raise NotFound(f"network {ref} not found")

    def inspect(self, ref: str, *, verbose: bool = False) -> dict[str, Any]:
        network = self.get(ref)
        view = network.inspect()
        if network.driver in ("host", "null") and network.builtin:
            view["Containers"] = self._sharing(network)
        return view

    def _sharing(self, network: Network) -> dict[str, Any]:
        """The running containers of the host or none network: Docker lists them with
        an endpoint and no addresses (their namespaces are not ours to record)."""
        import hashlib

        out: dict[str, Any] = {}
        for container in list(self.engine.containers.by_id.values()):
            networks = container.data.get("NetworkSettings", {}).get("Networks") or {}
            if network.name in networks and container.running:
                endpoint = hashlib.sha256(f"{network.id}/{container.id}".encode())
                out[container.id] = {"Name": container.name,
                                     "EndpointID": endpoint.hexdigest(), "MacAddress": "",
                                     "IPv4Address": "", "IPv6Address": ""}
        return out

    def list(self, filters: dict[str, list[str]] | None = None) -> list[dict[str, Any]]:
        return [n.inspect() for n in sorted(self.by_id.values(), key=lambda n: n.data[
            "Created"]) if _matches(n, filters or {})]

    # -- create -------------------------------------------------------------------------
    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        """Docker's NetworkCreateRequest -> ``{"Id", "Warning"}``. Checked whole before
        anything changes; a failure half-way undoes what was done."""
        if not isinstance(body, dict):
            raise InvalidArgument("the request body must be a JSON object")
        name = body.get("Name")
        if not isinstance(name, str) or not name:
            raise InvalidArgument("a network needs a name")
        driver_name = body.get("Driver") or "bridge"
        if not isinstance(driver_name, str):
            raise InvalidArgument("Driver must be a string")
        scope = body.get("Scope") or "local"
        if scope != "local":
            raise InvalidArgument(f"scope {scope!r} is not supported on this engine (only "
                                  "local; swarm scope comes with swarm mode)")
        if body.get("Ingress"):
            raise InvalidArgument("ingress networks need swarm mode")
        options = _strings(body.get("Options"), "Options")
        labels = _strings(body.get("Labels"), "Labels")
        ipam = body.get("IPAM") or {}
        if not isinstance(ipam, dict):
            raise InvalidArgument("IPAM must be an object")
        if (ipam.get("Driver") or "default") != "default":
            raise InvalidArgument(f"IPAM driver {ipam.get('Driver')!r} is not supported "
                                  "(only default)")
        configs = ipam.get("Config") or []
        if not isinstance(configs, list) or not all(isinstance(c, dict) for c in configs):
            raise InvalidArgument("IPAM.Config must be a list of objects")
        config_from = body.get("ConfigFrom") or {}
        if not isinstance(config_from, dict) or not isinstance(
                config_from.get("Network") or "", str):
            raise InvalidArgument("ConfigFrom must be an object with a Network name")
        config_from = config_from.get("Network") or ""
        for config in configs:
            self._checked_config(config)    # every address parsed before anything changes
        config_only = bool(body.get("ConfigOnly"))
        with self.lock:
            if name in BUILTIN:
                raise Forbidden(f"{name} is a pre-defined network and cannot be created")
            if self.by_name(name) is not None:
                raise Conflict(f"network with name {name} already exists")
            if config_only:
                if config_from:
                    raise InvalidArgument("a config-only network cannot take its "
                                          "configuration from another network")
                driver_name = "null"
            if config_from:
                source = self.get(config_from)
                if not source.config_only:
                    raise InvalidArgument(f"network {config_from} is not a config-only "
                                          "network")
                if configs or options:
                    raise InvalidArgument("a network with --config-from takes its IPAM "
                                          "config and options from it: give neither")
                configs = source.ipam_configs
                options = source.options
            driver = self.drivers.get(driver_name)
            if driver is None:
                raise NotFound(f'plugin "{driver_name}" not found')
            if not driver.user_defined and not config_only:
                raise Forbidden(f'only one instance of "{driver_name}" network is allowed')
            if not config_only:
                driver.validate(options, [n for n in self.by_id.values()
                                          if n.driver == driver_name])
            enable_ipv6 = bool(body.get("EnableIPv6"))
            if not configs and not config_only:
                configs = [{}]
            # an IPv6 subnet without EnableIPv6 is taken (and not used), as by Docker
            nid = secrets.token_hex(32)
            fields: dict[str, Any] = {
                "Id": nid, "Name": name, "Driver": driver_name, "EnableIPv6": enable_ipv6,
                "Internal": bool(body.get("Internal")),
                "Attachable": bool(body.get("Attachable")),
                "ConfigFrom": {"Network": self.get(config_from).name if config_from else ""},
                "ConfigOnly": config_only, "Options": options, "Labels": labels}
            if driver_name == "bridge":
                bridge = options.get(BRIDGE_NAME_OPTION) or f"br-{nid[:12]}"
                if len(bridge) > 15:
                    raise InvalidArgument(f"bridge name {bridge!r} is longer than 15 "
                                          "characters")
                if not _BRIDGE_NAME.fullmatch(bridge) or bridge in (".", ".."):
                    raise InvalidArgument(f"invalid bridge name {bridge!r} "
                                          f"({BRIDGE_NAME_OPTION}): 1 to 15 of A-Z a-z 0-9 "
                                          "_ . -")
                if any(n.driver == "bridge" and n.bridge == bridge
                       for n in self.by_id.values()):
                    raise Conflict(f"bridge name {bridge} is already used by another "
                                   "network")
            if config_only:
                stored = [self._checked_config(c) for c in configs]
                network = self._new_record(dict(fields, IPAM={
                    "Driver": "default", "Options": ipam.get("Options") or {},
                    "Config": stored}))
                return {"Id": network.id, "Warning": ""}
            if not any(_version(c) == 4 for c in configs):
                configs = [{}, *configs]   # Docker always gives a network an IPv4 pool
            made = self._allocate_pools(nid, configs, enable_ipv6)
            network = Network(dict(fields, Created=_now(), Scope="local", Ingress=False,
                                   IPAM={"Driver": "default",
                                         "Options": ipam.get("Options") or {},
                                         "Config": _reported(configs, made)},
                                   _pools=made, _endpoints={}, _user_subnets=sorted(
                                       {_version(c) for c in configs if c.get("Subnet")})),
                              os.path.join(self.records, f"{nid}.json"))
            adopted = driver_name == "bridge" and _link_exists(network.bridge)
            try:
                # the firewall with this network rendered (so checked) before any change;
                # a bad record from before is left out, as apply_firewall leaves it
                try:
                    self._render([*self.by_id.values(), network])
                except InvalidArgument:
                    self._render([*self._renderable(list(self.by_id.values())), network])
                driver.create_network(network)
            except BaseException:
                for i, _ in enumerate(made):
                    self.ipam.remove_network(network.pool_key(i))
                raise
            try:
                network.save()
                self.by_id[nid] = network
                self.apply_firewall()
            except BaseException:
                # a create that fails changes nothing: no record, pool or bridge stays
                self._forget(network)
                if not adopted:
                    try:
                        driver.delete_network(network)
                    except Exception:
                        log.exception("undoing network %s: its link", name)
                try:
                    self.apply_firewall()
                except Exception:
                    log.exception("undoing network %s: the firewall", name)
                raise
        self.publish("create", network)
        return {"Id": nid, "Warning": ""}

    def _render(self, networks: NetworkList) -> str:
        """The firewall's script for these networks (raises what the renderer refuses)."""
        from longboat.engine import firewall
        from longboat.network import nftables

        return nftables.render(firewall.ruleset(networks), firewall.table_name(self.engine))

    @staticmethod
    def _checked_config(config: dict[str, Any]) -> dict[str, Any]:
        """One IPAM config, every address parsed as Docker's net.ParseIP/ParseCIDR take
        them (no IPv6 zone: ``ipaddress`` keeps any text after ``%``, and it would reach
        the firewall's script): InvalidArgument, never a 500 later."""
        out: dict[str, Any] = {}
        for key in ("Subnet", "IPRange", "Gateway"):
            value = config.get(key)
            if value:
                if not isinstance(value, str):
                    raise InvalidArgument(f"IPAM.Config.{key} must be a string")
                _parsed(value, f"IPAM.Config.{key}", cidr=key != "Gateway")
                out[key] = value
        aux = _strings(config.get("AuxiliaryAddresses"), "IPAM.Config.AuxiliaryAddresses")
        for key, value in aux.items():
            _parsed(value, f"auxiliary address {key}", cidr=False)
        if aux:
            out["AuxiliaryAddresses"] = aux
        return out

    def _allocate_pools(self, nid: str, configs: Configs, enable_ipv6: bool) -> Configs:
        made: Configs = []
        routes = self._host_routes()
        try:
            for i, raw in enumerate(configs):
                config = self._checked_config(raw)
                made.append(self.ipam.add_network(
                    f"{nid}/{i}", subnet=config.get("Subnet"), gateway=config.get("Gateway"),
                    ip_range=config.get("IPRange"),
                    aux_addresses=config.get("AuxiliaryAddresses"), host_routes=routes))
            if enable_ipv6 and not any(":" in c["Subnet"] for c in made):
                # Docker 20.10's words (it has no default IPv6 pool either)
                raise Conflict("could not find an available, non-overlapping IPv6 address "
                               "pool among the defaults to assign to the network")
        except BaseException:
            for j in range(len(made)):
                self.ipam.remove_network(f"{nid}/{j}")
            raise
        return made

    # -- remove -------------------------------------------------------------------------
    def remove(self, ref: str) -> None:
        self.engine.container_networks.settle()   # exited containers' endpoints going
        with self.lock:
            network = self.get(ref)
            if network.builtin:
                raise Forbidden(f"{network.name} is a pre-defined network and cannot be "
                                "removed")
            if network.endpoints:
                raise Forbidden(f"error while removing network: network {network.name} id "
                                f"{network.id} has active endpoints")
            users = [n.name for n in self.by_id.values()
                     if n.data.get("ConfigFrom", {}).get("Network") == network.name]
            if network.config_only and users:
                raise Forbidden(f"configuration network {network.name} is in use by "
                                f"{', '.join(sorted(users))}")
            if not network.config_only:
                self.drivers[network.driver].delete_network(network)
            self._forget(network)
        self.apply_firewall()
        self.publish("destroy", network)

    def prune(self, filters: Filters | None = None) -> dict[str, Any]:
        filters = dict(filters or {})
        until = filters.pop("until", None)
        deleted = []
        for network in [*self.by_id.values()]:
            if network.builtin or network.endpoints or not _matches(network, filters):
                continue
            if until and not _before(network.data["Created"], until[0]):
                continue
            try:
                self.remove(network.id)
            except LongboatError:
                continue
            deleted.append(network.name)
        return {"NetworksDeleted": deleted or None}

    # -- container endpoints (called by engine.endpoints) -------------------------------
    async def connect(self, ref: str, container_ref: str, endpoint: dict[str, Any]) -> None:
        await self.engine.container_networks.connect(ref, container_ref, endpoint or {})

    async def disconnect(self, ref: str, container_ref: str, *, force: bool = False) -> None:
        await self.engine.container_networks.disconnect(ref, container_ref, force=force)

    def publish(self, action: str, network: Network, **attributes: str) -> None:
        """A network event (safe from the executor's threads: the engine's loop sends
        it)."""
        if self._loop is None:
            return
        attrs = {"name": network.name, "type": network.driver, **attributes}
        self._loop.call_soon_threadsafe(self.engine.events.publish, "network", action,
                                        network, attrs)

    def apply_firewall(self) -> None:
        from longboat.engine import firewall

        with self.lock:    # endpoints change in executor threads
            networks = list(self.by_id.values())
            try:
                self._render(networks)
            except InvalidArgument:
                networks = self._renderable(networks)
            firewall.apply(self.engine, networks)

    def _renderable(self, networks: NetworkList) -> NetworkList:
        """The networks the renderer takes, each tried alone: a record it refuses (an
        engine before validation stored it) is left out of the firewall, with an error
        in the log, rather than stopping every apply (and the engine's start)."""
        kept = []
        for network in networks:
            try:
                self._render([network])
            except InvalidArgument as exc:
                log.error("network %s (%s) is left out of the firewall: %s", network.name,
                          network.id[:12], exc)
                continue
            kept.append(network)
        return kept

    # -- engine start and stop ----------------------------------------------------------
    async def start(self) -> None:
        """At engine start: the predefined networks, every bridge (after a reboot they
        are gone), the firewall."""
        self._loop = asyncio.get_running_loop()
        # pyroute2's sync sockets cannot run on a thread with a running event loop
        await self._loop.run_in_executor(None, self._start)

    def _start(self) -> None:
        self.ensure_predefined()
        with self.lock:
            for network in self.by_id.values():
                if not network.config_only:
                    self.drivers[network.driver].restore_network(network)
        self.engine.container_networks.finish_leaving()   # an earlier engine's, half done
        self.apply_firewall()

    def shutdown(self, *, anything_running: bool) -> None:
        """At a clean stop with nothing running: remove our bridges and the firewall
        table (the next start makes them again), so a stopped engine leaves no trace."""
        if anything_running:
            return
        from longboat.engine import firewall

        with self.lock:
            for network in self.by_id.values():
                if not network.config_only and not network.endpoints:
                    self.drivers[network.driver].release_network(network)
        firewall.remove(self.engine)


def _parsed(value: str, field: str, *, cidr: bool) -> None:
    try:
        if "%" in value:
            raise ValueError(value)
        if cidr:
            ipaddress.ip_network(value, strict=False)
        else:
            ipaddress.ip_address(value)
    except ValueError:
        kind = "CIDR address" if cidr else "IP address"
        raise InvalidArgument(f"invalid {kind} in {field}: {value!r}") from None


def _link_exists(name: str) -> bool:
    """Whether a link of that name is in this thread's network namespace."""
    try:
        socket.if_nametoindex(name)
    except OSError:
        return False
    return True


def _version(config: dict[str, Any]) -> int:
    """A requested pool's IP version (4 when it names no subnet: a default pool)."""
    subnet = config.get("Subnet")
    if not isinstance(subnet, str) or not subnet:
        return 4
    try:
        return ipaddress.ip_network(subnet, strict=False).version
    except ValueError:
        return 4


def _reported(asked: Configs, made: Configs) -> Configs:
    """``IPAM.Config`` as Docker 20.10 shows it: per IP version, the pools as the user
    gave them (no gateway filled in), or, for a version left to the defaults, the pools
    allocated with their gateways; IPv4 first."""
    out: Configs = []
    for version in (4, 6):
        pairs = [(a, m) for a, m in zip(asked, made, strict=True)
                 if ipaddress.ip_network(m["Subnet"]).version == version]
        for given, allocated in pairs:
            if given.get("Subnet"):
                out.append(Networks._checked_config(given))
            else:
                out.append(dict(allocated))
    return out


def _before(created: str, until: str) -> bool:
    from longboat.image.archive import unix_time

    try:
        limit = float(until)
    except ValueError:
        limit = unix_time(until)
    return unix_time(created) < limit


def _matches(network: Network, filters: dict[str, list[str]]) -> bool:
    for key, values in filters.items():
        if not values:
            continue
        if key == "name" and not any(v in network.name for v in values):
            return False
        if key == "id" and not any(network.id.startswith(v) for v in values):
            return False
        if key == "driver" and network.driver not in values:
            return False
        if key == "scope" and "local" not in values:
            return False
        if key == "type" and not any((v == "builtin") == network.builtin for v in values):
            return False
        if key == "dangling":
            want = values[0] in ("1", "true")
            if want != (not network.endpoints and not network.builtin):
                return False
        if key in ("label", "label!"):
            labels = network.labels
            for value in values:
                k, has_value, v = value.partition("=")
                hit = k in labels and (not has_value or labels[k] == v)
                if hit != (key == "label"):
                    return False
        if key not in ("name", "id", "driver", "scope", "type", "dangling", "label",
                       "label!"):
            raise InvalidArgument(f"invalid filter '{key}'")
    return True
