"""A container's networking: what create checks and records (NetworkMode, the networks
and their EndpointSettings, ports, DNS, extra hosts, links), what start makes (a
network namespace file ``EXEC_ROOT/netns/<id>``, one endpoint per network, published
ports, the etc files, an embedded DNS listener) and what the container's exit undoes.

Modes: ``host`` (the engine's namespace), ``none`` (a private namespace with only lo,
made by the runtime), ``container:X`` (X's namespace), and networks: ``default`` (the
predefined ``bridge``, or only lo when the engine runs with ``--bridge none``),
``bridge`` or a network's name or id, plus every network of
``NetworkingConfig.EndpointsConfig``.

A network's record holds the live endpoints (interface, MAC, addresses, published
ports); the container's record holds ``NetworkSettings`` in Docker's shape (what was
asked for, and, while it runs, what it got). Both survive an engine restart: a running
container keeps its namespace, interfaces and rules, and gets its DNS listener back.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import ipaddress
import logging
import os
import secrets
import threading

from longboat.engine import container_etc, ports
from longboat.errors import Conflict, InvalidArgument, LongboatError, NotFound
from longboat.network import etcfiles

TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Any

    from longboat.engine.containers import Container
    from longboat.engine.engine import Engine
    from longboat.engine.networks import Network

log = logging.getLogger("longboat.endpoints")

QTYPE_A, QTYPE_PTR, QTYPE_AAAA = 1, 12, 28
DEFAULT_BRIDGE = "bridge"


def _endpoint_settings(network: Network, asked: dict[str, Any] | None) -> dict[str, Any]:
    asked = asked or {}
    return {"IPAMConfig": asked.get("IPAMConfig") or None, "Links": asked.get("Links") or None,
            "Aliases": asked.get("Aliases") or None, "NetworkID": network.id,
            "EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
            "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "MacAddress": asked.get("MacAddress") or "", "DriverOpts":
                asked.get("DriverOpts")}   # as given: {} from connect, null from run


_RUNTIME_FIELDS = {"EndpointID": "", "Gateway": "", "IPAddress": "", "IPPrefixLen": 0,
                   "IPv6Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0}
_TOP_FIELDS = ("EndpointID", "Gateway", "GlobalIPv6Address", "GlobalIPv6PrefixLen",
               "IPAddress", "IPPrefixLen", "IPv6Gateway", "MacAddress")


def empty_settings() -> dict[str, Any]:
    return {"Bridge": "", "SandboxID": "", "HairpinMode": False,
            "LinkLocalIPv6Address": "", "LinkLocalIPv6PrefixLen": 0, "Ports": {},
            "SandboxKey": "", "SecondaryIPAddresses": None, "SecondaryIPv6Addresses": None,
            "EndpointID": "", "Gateway": "", "GlobalIPv6Address": "", "GlobalIPv6PrefixLen": 0,
            "IPAddress": "", "IPPrefixLen": 0, "IPv6Gateway": "", "MacAddress": "",
            "Networks": {}}


class ContainerNetworks:
    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.netns_dir = os.path.join(engine.settings.exec_root, "netns")
        self._dns: Any = None
        # the kernel side of exited containers' networking, undone after their exit is
        # reported: container id -> the job (see teardown)
        self._leaving: dict[str, concurrent.futures.Future[None]] = {}
        self._leaving_lock = threading.Lock()
        self._worker: concurrent.futures.ThreadPoolExecutor | None = None

    @property
    def networks(self) -> Any:
        return self.engine.networks

    def netns_file(self, container_id: str) -> str:
        return os.path.join(self.netns_dir, container_id)

    # -- create -------------------------------------------------------------------------
    def configure(self, cid: str, name: str, config: dict[str, Any],
                  host_config: dict[str, Any], networking: Any,
                  image_config: dict[str, Any]) -> dict[str, Any]:
        """Check everything network-related a create asks for; Docker's
        ``NetworkSettings`` to record. Changes nothing."""
        if networking is not None and not isinstance(networking, dict):
            raise InvalidArgument("NetworkingConfig must be an object")
        asked = (networking or {}).get("EndpointsConfig") or {}
        if not isinstance(asked, dict) or not all(isinstance(v, dict) or v is None
                                                  for v in asked.values()):
            raise InvalidArgument("NetworkingConfig.EndpointsConfig must map network names "
                                  "to EndpointSettings objects")
        mode = host_config.get("NetworkMode") or "default"
        if not isinstance(mode, str):
            raise InvalidArgument("HostConfig.NetworkMode must be a string")
        settings = empty_settings()
        _check_dns(host_config)
        extra_hosts = _check_extra_hosts(host_config)
        asked_ports = ports.wanted(host_config, ports.exposed_ports(config, image_config))
        links = self._check_links(host_config, name)
        if mode.startswith("container:"):
            other = self.engine.containers.get(mode.partition(":")[2])
            if other.id == cid:
                raise InvalidArgument("cannot join own network namespace")
            for field, what in (("PortBindings", "port publishing"), ("Dns", "dns"),
                                ("ExtraHosts", "custom host-to-IP mapping")):
                if host_config.get(field):
                    raise InvalidArgument(f"conflicting options: {what} and the network "
                                          "mode")
            if host_config.get("PublishAllPorts"):
                raise InvalidArgument("conflicting options: port publishing and the "
                                      "container type network mode")
            if config.get("MacAddress"):
                raise InvalidArgument("conflicting options: mac-address and the network "
                                      "mode")
            if asked:
                raise InvalidArgument("container sharing network namespace with another "
                                      "container cannot be connected to any other network")
            return settings
        if mode == "host" or mode == "none":
            if links:
                raise InvalidArgument(f"conflicting options: {mode} type networking can't "
                                      "be used with links. This would result in undefined "
                                      "behavior")
            if set(asked) - {mode, "default"}:
                raise InvalidArgument(f"container cannot be disconnected from {mode} "
                                      "network or connected to another network")
            network = self.networks.get(mode)
            settings["Networks"][mode] = _endpoint_settings(network, asked.get(mode))
            return settings
        chosen: list[tuple[Network, dict[str, Any] | None]] = []
        if mode in ("default", "bridge"):
            if self.networks.default_bridge_enabled:
                chosen.append((self.networks.get(DEFAULT_BRIDGE), asked.get("bridge")))
        else:
            chosen.append((self.networks.get(mode), None))
        for ref, endpoint in asked.items():
            if ref in (mode, "default") and ref not in self.networks.by_id and \
                    self.networks.by_name(ref) is None:
                # newer docker CLIs name the mode itself ("default") as the network
                if chosen:
                    chosen[0] = (chosen[0][0], endpoint)
                continue
            network = self.networks.get(ref)
            for i, (have, _) in enumerate(chosen):
                if have.id == network.id:
                    chosen[i] = (have, endpoint)
                    break
            else:
                chosen.append((network, endpoint))
        for network, endpoint in chosen:
            self._check_endpoint(network, endpoint, cid)
            settings["Networks"][network.name] = _endpoint_settings(network, endpoint)
        if chosen:
            ports.check_fixed(asked_ports, self.published_ports())
        del extra_hosts
        return settings

    def _check_endpoint(self, network: Network, endpoint: dict[str, Any] | None,
                        cid: str) -> None:
        from longboat.engine.networks import Forbidden

        if network.config_only:
            raise Forbidden(f"cannot attach to network {network.name}: it is a config-only "
                            "network")
        if network.name in ("host", "none"):
            raise InvalidArgument(f"container cannot be connected to the {network.name} "
                                  "network and another")
        endpoint = endpoint or {}
        user_defined = network.name != DEFAULT_BRIDGE
        if endpoint.get("Aliases") and not user_defined:
            raise InvalidArgument("network-scoped alias is supported only for containers "
                                  "in user defined networks")
        for field in ("Aliases", "Links"):
            value = endpoint.get(field)
            if value is not None and (not isinstance(value, list) or not all(
                    isinstance(v, str) for v in value)):
                raise InvalidArgument(f"EndpointSettings.{field} must be a list of strings")
        ipam = endpoint.get("IPAMConfig") or {}
        if not isinstance(ipam, dict):
            raise InvalidArgument("EndpointSettings.IPAMConfig must be an object")
        for field, version in (("IPv4Address", 4), ("IPv6Address", 6)):
            address = ipam.get(field)
            if not address:
                continue
            if not user_defined:
                raise InvalidArgument("user specified IP address is supported on user "
                                      "defined networks only")
            try:
                ip = ipaddress.ip_address(address)
            except ValueError:
                raise InvalidArgument(f"invalid IPv{version} address: {address}") from None
            if ip.version != version:
                raise InvalidArgument(f"invalid IPv{version} address: {address}")
            if not network.user_subnet(version):
                raise InvalidArgument("user specified IP address is supported only when "
                                      "connecting to networks with user configured subnets")
            pool = network.pool_for(str(ip))
            if pool is None:
                raise InvalidArgument(f"Invalid address {ip}: It does not belong to any of "
                                      "this network's subnets")
            owner = self.networks.ipam.owner(network.pool_key(pool[0]), str(ip))
            if owner is not None and owner != cid and owner in self._leaving:
                self.settle(owner)     # an exited container's, given back in a moment
                owner = self.networks.ipam.owner(network.pool_key(pool[0]), str(ip))
            if owner is not None and owner != cid:
                raise Conflict("Address already in use")

    def _check_links(self, host_config: dict[str, Any], name: str) -> list[str]:
        """``name[:alias]`` -> Docker's stored ``/name:/me/alias`` (the target must
        exist)."""
        given = host_config.get("Links") or []
        if not isinstance(given, list) or not all(isinstance(v, str) for v in given):
            raise InvalidArgument("HostConfig.Links must be a list of strings")
        out = []
        for link in given:
            target, _, alias = link.partition(":")
            target = target.lstrip("/")
            alias = alias.rsplit("/", 1)[-1] if alias else target
            try:
                found = self.engine.containers.get(target)
            except NotFound:
                # a 400 as dockerd's (a 404 at create makes the client pull the image)
                raise InvalidArgument(f"could not get container for {target}: No such "
                                      f"container: {target}") from None
            out.append(f"/{found.name}:/{name}/{alias}")
        if given:
            host_config["Links"] = out
        return out

    # -- start --------------------------------------------------------------------------
    def netns_for_bundle(self, container: Container) -> str | None:
        """The namespace the bundle joins (None: the runtime makes one, or host)."""
        mode = container.host_config.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            other = self.engine.containers.get(mode.partition(":")[2])
            if not other.running:
                raise Conflict(f"cannot join network of a non running container: "
                               f"{other.id}")
            path = self.netns_file(other.id)
            if os.path.exists(path):
                return path
            other_mode = other.host_config.get("NetworkMode") or "default"
            if other_mode == "host":
                raise InvalidArgument("cannot join the network of a container on the host "
                                      "network; use --network host")
            if other_mode.startswith("container:"):
                return self.netns_for_bundle(other)
            return f"/proc/{other.state['Pid']}/ns/net"
        if self._attached(container):
            return self.netns_file(container.id)
        return None

    def _attached(self, container: Container) -> list[Network]:
        """The networks with endpoints the container joins at start, in order."""
        out = []
        for name, endpoint in (container.data["NetworkSettings"].get("Networks") or {}
                               ).items():
            try:
                network = self.networks.get(endpoint.get("NetworkID") or name)
            except NotFound:
                raise NotFound(f"network {name} not found: the container cannot start "
                               f"(disconnect it from {name})") from None
            if self.networks.drivers[network.driver].has_endpoints:
                out.append(network)
        return out

    def setup(self, container: Container, image_config: dict[str, Any]) -> None:
        """At start (in an executor thread): the namespace file and every endpoint,
        ports, the firewall and the etc files. On failure, undone."""
        if self.prepare(container):
            self.join_all(container, image_config)

    def prepare(self, container: Container) -> bool:
        """At start, first (in an executor thread): the namespace file the bundle joins;
        True when endpoints are to join it (:meth:`join_all`). Without endpoints, the
        etc files, and False."""
        from longboat.network import netns

        if not self._attached(container):
            self.write_etc(container)
            return False
        self.settle(container.id)      # its previous run's links and namespace file
        if _asks_addresses(container):
            self.settle()              # an address may still be an exited container's
        path = self.netns_file(container.id)
        if os.path.lexists(path):
            netns.remove(path)         # a stale one (the host rebooted, a crash)
        netns.create(path)
        return True

    def join_all(self, container: Container, image_config: dict[str, Any]) -> None:
        """Every endpoint into the prepared namespace, ports, the firewall, the etc
        files (in an executor thread; it may run while the runtime creates the
        container, which needs only the namespace file; done before it starts). On
        failure, all of it, the namespace file included, is undone."""
        networks = self._attached(container)
        path = self.netns_file(container.id)
        try:
            for network in networks:
                self._join(container, network, primary=network is networks[0],
                           image_config=image_config)
            container.data["NetworkSettings"]["SandboxKey"] = path
            container.data["NetworkSettings"]["SandboxID"] = secrets.token_hex(32)
            container.save()
            self.write_etc(container)
            self.networks.apply_firewall()
        except BaseException:
            self.teardown(container, later=False)
            raise

    def _join(self, container: Container, network: Network, *, primary: bool,
              image_config: dict[str, Any] | None, netns_path: str | None = None) -> None:
        from longboat.network import links

        path = netns_path or self.netns_file(container.id)
        settings = container.data["NetworkSettings"]
        endpoint_cfg = settings["Networks"].setdefault(network.name,
                                                       _endpoint_settings(network, None))
        ipam_cfg = endpoint_cfg.get("IPAMConfig") or {}
        used = {e["Ifname"] for n in self.networks.by_id.values()
                for cid, e in n.endpoints.items() if cid == container.id}
        ifname = next(f"eth{i}" for i in range(64) if f"eth{i}" not in used)
        endpoint: dict[str, Any] = {
            "Name": container.name, "EndpointID": secrets.token_hex(32), "Ifname": ifname,
            "HostIfname": _host_ifname(network.id, container.id), "IPv4Address": "",
            "IPv6Address": "", "MacAddress": "", "Allocated": [], "Ports": []}
        allocated: list[tuple[str, str]] = []
        with self.networks.lock:
            try:
                for version, field in ((4, "IPv4Address"), (6, "IPv6Address")):
                    pool = network.pool_of_version(version)
                    if pool is None or (version == 6 and not network.data.get("EnableIPv6")):
                        continue
                    key = network.pool_key(pool[0])
                    address = self.networks.ipam.allocate(key, container.id,
                                                          ipam_cfg.get(field) or None)
                    allocated.append((key, address))
                    prefix = ipaddress.ip_network(pool[1]["Subnet"]).prefixlen
                    endpoint[field] = f"{address}/{prefix}"
                endpoint["Allocated"] = [list(a) for a in allocated]
                v4 = endpoint["IPv4Address"].partition("/")[0]
                asked_mac = container.config.get("MacAddress") if primary else None
                endpoint["MacAddress"] = asked_mac or (links.mac_for(v4) if v4
                                                       else _random_mac())
                if primary and network.driver == "bridge" and image_config is not None:
                    asked = ports.wanted(container.host_config,
                                         ports.exposed_ports(container.config, image_config))
                    endpoint["Ports"] = ports.allocate(asked, self.published_ports())
                self.networks.drivers[network.driver].join(network, endpoint, path)
            except BaseException:
                for key, address in allocated:
                    with contextlib.suppress(LongboatError):
                        self.networks.ipam.release(key, address)
                raise
            network.endpoints[container.id] = endpoint
            network.save()
        self._fill(endpoint_cfg, network, endpoint, container, primary=primary)

    def _fill(self, cfg: dict[str, Any], network: Network, endpoint: dict[str, Any],
              container: Container, *, primary: bool) -> None:
        v4, _, p4 = endpoint["IPv4Address"].partition("/")
        v6, _, p6 = endpoint["IPv6Address"].partition("/")
        gw4 = next((g for g in network.gateways() if ":" not in g), "")
        gw6 = next((g for g in network.gateways() if ":" in g), "")
        cfg.update(NetworkID=network.id, EndpointID=endpoint["EndpointID"],
                   IPAddress=v4, IPPrefixLen=int(p4 or 0), Gateway=gw4 if v4 else "",
                   GlobalIPv6Address=v6, GlobalIPv6PrefixLen=int(p6 or 0),
                   IPv6Gateway=gw6 if v6 else "", MacAddress=endpoint["MacAddress"])
        if network.name != DEFAULT_BRIDGE:
            implicit = _implicit_aliases(container)
            aliases = [a for a in cfg.get("Aliases") or [] if a not in implicit]
            cfg["Aliases"] = [*aliases, *implicit]
        settings = container.data["NetworkSettings"]
        if network.name == DEFAULT_BRIDGE:
            for key in _TOP_FIELDS:
                settings[key] = cfg[key]
            # (NetworkSettings.Bridge stays "": dockerd 20.10 leaves it empty)
        if primary:
            settings["Ports"] = ports.inspect_view(endpoint["Ports"], self._exposed(
                container), ipv6=bool(endpoint["IPv6Address"]))

    def _exposed(self, container: Container) -> list[str]:
        try:
            image = self.engine.images.get(container.data["Image"])
            image_config = image.config.get("config") or {}
        except LongboatError:
            image_config = {}
        keys = set(ports.exposed_ports(container.config, image_config))
        keys |= {f"{p}/{proto}" for p, proto in (ports.port_key(k) for k in (
            container.host_config.get("PortBindings") or {}))}
        return sorted(keys)

    def _leave(self, container: Container, network: Network, path: str) -> None:
        """Take the endpoint out now: records, interface, addresses (disconnect)."""
        if self._forget_endpoint(container, network, path):
            self._undo_endpoint(network, container.id, path)

    def _forget_endpoint(self, container: Container, network: Network, path: str) -> bool:
        """The records' part of leaving: the endpoint moves from the network's endpoints
        to its ``_leaving`` ones (persisted: an engine that dies before the kernel part
        is done finishes it at its next start), the container's endpoint settings lose
        what this run got. False when it was not joined."""
        with self.networks.lock:
            endpoint = network.endpoints.pop(container.id, None)
            if endpoint is None:
                return False
            network.data.setdefault("_leaving", {})[container.id] = dict(endpoint,
                                                                         Netns=path)
            network.save()
        cfg = (container.data["NetworkSettings"].get("Networks") or {}).get(network.name)
        if cfg is not None:
            cfg.update(_RUNTIME_FIELDS)
            cfg["MacAddress"] = ""   # the aliases stay, the implicit ones too (Docker's)
        return True

    def _undo_endpoint(self, network: Network, container_id: str, path: str) -> None:
        """The kernel's part of leaving (the interface), then its addresses go back to
        IPAM — only then, so that no other container gets them while the interface
        (and its MAC, made from the address) may still be on the network."""
        endpoint = (network.data.get("_leaving") or {}).get(container_id)
        if endpoint is None:
            return
        try:
            self.networks.drivers[network.driver].leave(network, endpoint,
                                                        endpoint.get("Netns") or path)
        except LongboatError as exc:
            log.warning("leaving network %s: %s", network.name, exc.message)
        with self.networks.lock:
            for key, address in endpoint.get("Allocated") or []:
                with contextlib.suppress(LongboatError):
                    self.networks.ipam.release(key, address)
            leaving = network.data.get("_leaving") or {}
            leaving.pop(container_id, None)
            if not leaving:
                network.data.pop("_leaving", None)
            if network.id in self.networks.by_id:
                network.save()

    def teardown(self, container: Container, *, later: bool = True) -> None:
        """At exit (in an executor thread): every endpoint, the namespace file, the
        firewall. Idempotent; works from the records when the kernel state is gone.

        What others can see goes at once: the endpoints leave the networks' records
        (names, ports, inspect), the container's settings are cleared and the firewall
        loses its published ports. The kernel's part — deleting the interfaces (tens of
        milliseconds of the kernel's RCU waits per veth), the namespace file, giving the
        addresses back — is done by a background thread (``later``), after the exit is
        reported. Whatever reuses what it frees waits for it (:meth:`settle`): the
        container's next start, a network's removal, the engine's stop."""
        if not self.has_teardown(container):
            return
        path = self.netns_file(container.id)
        joined = [n for n in self.networks.by_id.values() if container.id in n.endpoints]
        for network in joined:
            self._forget_endpoint(container, network, path)
        settings = container.data["NetworkSettings"]
        for key in _TOP_FIELDS:
            settings[key] = 0 if key.endswith("PrefixLen") else ""
        settings.update(Bridge="", SandboxKey="", SandboxID="", Ports={})
        container.save()
        self.networks.apply_firewall()
        ids = [n.id for n in joined]
        if not later:
            self._undo(container.id, path, ids)
            return
        with self._leaving_lock:
            if self._worker is None:
                self._worker = concurrent.futures.ThreadPoolExecutor(
                    max_workers=1, thread_name_prefix="net-teardown")
            self._leaving[container.id] = self._worker.submit(
                self._undo, container.id, path, ids)

    def has_teardown(self, container: Container) -> bool:
        """Has :meth:`teardown` anything to do (cheap: the event loop asks it before
        handing teardown to a thread)?"""
        if any(container.id in n.endpoints for n in list(self.networks.by_id.values())):
            return True
        with self._leaving_lock:
            if container.id in self._leaving:
                return False     # already handed to the background thread
        return os.path.exists(self.netns_file(container.id)) or \
            bool(container.data["NetworkSettings"].get("SandboxKey"))

    def _undo(self, container_id: str, path: str, network_ids: list[str]) -> None:
        from longboat.network import netns

        try:
            for nid in network_ids:
                network = self.networks.by_id.get(nid)
                if network is not None:
                    self._undo_endpoint(network, container_id, path)
            with contextlib.suppress(LongboatError):
                netns.remove(path)
        except Exception:
            log.exception("tearing down the networking of %s", container_id[:12])
        finally:
            with self._leaving_lock:
                self._leaving.pop(container_id, None)

    def settle(self, container_id: str | None = None) -> None:
        """Wait until the background teardown of a container (of every one, when None)
        is done. Not on the event loop's thread for long: each takes ~30 ms."""
        with self._leaving_lock:
            jobs = list(self._leaving.values()) if container_id is None else \
                [j for j in (self._leaving.get(container_id),) if j is not None]
        for job in jobs:
            with contextlib.suppress(Exception):
                job.result()

    def finish_leaving(self) -> None:
        """At engine start (in an executor thread): endpoints an earlier engine left
        half torn down (it stopped or died before its background thread was done)."""
        for network in list(self.networks.by_id.values()):
            for cid, endpoint in list((network.data.get("_leaving") or {}).items()):
                path = endpoint.get("Netns") or self.netns_file(cid)
                self._undo_endpoint(network, cid, path)
                container = self.engine.containers.by_id.get(cid)
                if container is None or not container.running:
                    from longboat.network import netns

                    with contextlib.suppress(LongboatError):
                        netns.remove(path)

    # -- the embedded DNS ---------------------------------------------------------------
    def _dns_server(self) -> Any:
        if self._dns is None:
            from longboat.network.dns import DnsServer

            self._dns = DnsServer(etcfiles.upstreams(container_etc.host_resolv_conf()))
        return self._dns

    def wants_dns(self, container: Container) -> bool:
        return any(n.name != DEFAULT_BRIDGE for n in self._attached(container)) \
            if self._has_netns(container) else False

    def _has_netns(self, container: Container) -> bool:
        return os.path.exists(self.netns_file(container.id))

    def start_dns(self, container: Container) -> None:
        """A listener at 127.0.0.11:53 (UDP and TCP) in the container's namespace (on
        the engine's loop thread)."""
        import socket

        from longboat.network import netns

        if not self.wants_dns(container) or container.id in self._dns_server():
            return
        path = self.netns_file(container.id)

        def bound(kind: int) -> socket.socket:
            sock = netns.socket_in(path, socket.AF_INET, kind)
            try:
                sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                sock.bind((etcfiles.EMBEDDED_DNS, 53))
            except OSError:
                sock.close()
                raise
            return sock

        udp = bound(socket.SOCK_DGRAM)
        try:
            tcp = bound(socket.SOCK_STREAM)
        except OSError:
            udp.close()
            raise
        dns = container.host_config.get("Dns") or None
        internal = all(n.internal for n in self._attached(container))
        upstreams = [] if internal else etcfiles.upstreams("", dns=dns) if dns else None
        self._dns_server().listen(container.id, udp, tcp, self.lookup_for(container.id),
                                  upstreams=upstreams,
                                  ndots_set=container_etc.ndots_set(container.dir))

    def stop_dns(self, container_id: str) -> None:
        if self._dns is not None:
            self._dns.stop(container_id)

    def close(self) -> None:
        if self._dns is not None:
            self._dns.close()
        self.settle()
        with self._leaving_lock:
            worker, self._worker = self._worker, None
        if worker is not None:
            worker.shutdown(wait=True)

    def lookup_for(self, asking: str) -> Any:
        def lookup(name: str, qtype: int) -> list[str] | None:
            return self.lookup(asking, name, qtype)

        return lookup

    def lookup(self, asking: str, name: str, qtype: int) -> list[str] | None:
        """Names ``asking`` may resolve: on each user-defined network it shares with
        others, their names, ``name.network``, short ids, aliases, and its own links."""
        name = name.lower().rstrip(".")
        asker = self.engine.containers.by_id.get(asking)
        if asker is None:
            return None
        shared = [n for n in self.networks.by_id.values()
                  if asking in n.endpoints and n.name != DEFAULT_BRIDGE]
        if qtype == QTYPE_PTR:
            for network in shared:
                for endpoint in list(network.endpoints.values()):
                    if name in (endpoint["IPv4Address"].partition("/")[0],
                                endpoint["IPv6Address"].partition("/")[0]):
                        return [f"{endpoint['Name']}.{network.name}"]
            return None
        links = self._link_aliases(asker)
        found: list[str] | None = None
        for network in shared:
            asker_cfg = (asker.data["NetworkSettings"].get("Networks") or {}).get(
                network.name) or {}
            net_links = dict(links)
            for link in asker_cfg.get("Links") or []:
                target, _, alias = link.partition(":")
                net_links[(alias or target).lower()] = target
            for cid, endpoint in list(network.endpoints.items()):
                other = self.engine.containers.by_id.get(cid)
                if other is None:
                    continue
                cfg = (other.data["NetworkSettings"].get("Networks") or {}).get(
                    network.name) or {}
                names = {other.name.lower(), f"{other.name.lower()}.{network.name.lower()}",
                         cid[:12]}
                names |= {a.lower() for a in cfg.get("Aliases") or []}
                names |= {a for a, t in net_links.items()
                          if t.lstrip("/") in (other.name, cid)}
                if name not in names:
                    continue
                found = found if found is not None else []
                field = "IPv4Address" if qtype == QTYPE_A else "IPv6Address" \
                    if qtype == QTYPE_AAAA else ""
                address = endpoint.get(field, "").partition("/")[0] if field else ""
                if address and address not in found:
                    found.append(address)
        return found

    @staticmethod
    def _link_aliases(container: Container) -> dict[str, str]:
        """``--link`` aliases: alias -> target name."""
        out = {}
        for link in container.host_config.get("Links") or []:
            target, _, alias = link.partition(":")
            out[alias.rsplit("/", 1)[-1].lower()] = target.lstrip("/")
        return out

    # -- etc files ----------------------------------------------------------------------
    def write_etc(self, container: Container, *, parents: bool = True) -> None:
        """The container's /etc files; with ``parents``, also those of the running
        containers that ``--link`` to it on the default bridge (Docker updates their
        hosts line when the linked container starts with a new address)."""
        config, host_config = container.config, container.host_config
        mode = host_config.get("NetworkMode") or "default"
        hostname = config.get("Hostname") or container.id[:12]
        if mode.startswith("container:"):
            other = self.engine.containers.get(mode.partition(":")[2])
            hostname = self.hostname(container)
            for name in ("hosts", "resolv.conf"):
                text = container_etc.host_file(os.path.join(other.dir, name))
                container_etc.write_in_place(os.path.join(container.dir, name), text)
            container_etc.write_in_place(os.path.join(container.dir, "hostname"),
                                         etcfiles.hostname(hostname))
            return
        host_resolv = container_etc.host_resolv_conf()
        if mode == "host":
            hosts_text = container_etc.host_file("/etc/hosts")
            extra = self._extra_hosts(container)
            hosts_text += "".join(f"{address}\t{name}\n" for name, address in extra)
            container_etc.write(container.dir, hostname=hostname, hosts_text=hosts_text,
                                resolv_text=etcfiles.resolv_conf(host_resolv, network="host"))
            return
        networks = [n for n in self.networks.by_id.values() if container.id in n.endpoints]
        order = list(container.data["NetworkSettings"].get("Networks") or {})
        networks.sort(key=lambda n: order.index(n.name) if n.name in order else len(order))
        # per network in the order joined, IPv4 then IPv6, as Docker 20.10 writes them
        addresses = [a.partition("/")[0] for n in networks for a in (
            n.endpoints[container.id]["IPv4Address"],
            n.endpoints[container.id]["IPv6Address"]) if a]
        embedded = any(n.name != DEFAULT_BRIDGE for n in networks)
        links = []
        for alias, target in self._link_aliases(container).items():
            try:
                other = self.engine.containers.get(target)
            except NotFound:
                continue
            # Docker writes link entries only on the default bridge (elsewhere links
            # are names in the embedded DNS)
            address = next((n.endpoints[other.id]["IPv4Address"].partition("/")[0]
                            for n in networks if n.name == DEFAULT_BRIDGE
                            and other.id in n.endpoints), "")
            if address:
                other_host = other.config.get("Hostname") or other.id[:12]
                links.append((etcfiles.link_names(alias, other_host, other.name), address))
        hosts_text = etcfiles.hosts(
            hostname, domainname=config.get("Domainname") or "", addresses=addresses,
            extra_hosts=[f"{n}:{a}" for n, a in self._extra_hosts(container)], links=links)
        ipv6 = any(n.endpoints[container.id]["IPv6Address"] for n in networks)
        resolv_text = etcfiles.resolv_conf(
            host_resolv, network="user" if embedded else "bridge", ipv6=ipv6,
            dns=host_config.get("Dns") or None, dns_search=host_config.get("DnsSearch") or None,
            dns_options=host_config.get("DnsOptions") or None)
        container_etc.write(container.dir, hostname=hostname, hosts_text=hosts_text,
                            resolv_text=resolv_text)
        if parents and any(n.name == DEFAULT_BRIDGE for n in networks):
            self._update_parents(container)

    def _update_parents(self, child: Container) -> None:
        for parent in list(self.engine.containers.by_id.values()):
            if parent.id == child.id or not parent.running or not any(
                    target.lstrip("/") in (child.name, child.id)
                    for target in self._link_aliases(parent).values()):
                continue
            try:
                self.write_etc(parent, parents=False)
            except (OSError, LongboatError) as exc:
                log.warning("updating the hosts file of %s: %s", parent.name, exc)

    def hostname(self, container: Container) -> str:
        """The container's host name; under ``container:X``, X's (Docker's
        initializeNetworkingPaths: the /etc files and the name are X's)."""
        mode = container.host_config.get("NetworkMode") or "default"
        if mode.startswith("container:"):
            try:
                other = self.engine.containers.get(mode.partition(":")[2])
            except NotFound:
                other = container
            if other.id != container.id:
                return self.hostname(other)
        return str(container.config.get("Hostname") or container.id[:12])

    def _extra_hosts(self, container: Container) -> list[tuple[str, str]]:
        pairs = [etcfiles.validate_extra_host(e) for e in
                 container.host_config.get("ExtraHosts") or []]
        gateway = ""
        if any(address == etcfiles.HOST_GATEWAY for _, address in pairs):
            with contextlib.suppress(NotFound):
                gateway = next(iter(self.networks.get(DEFAULT_BRIDGE).gateways()), "")
        return [(n, gateway if a == etcfiles.HOST_GATEWAY else a) for n, a in pairs
                if a != etcfiles.HOST_GATEWAY or gateway]

    # -- views --------------------------------------------------------------------------
    def published_ports(self, *, but: str | None = None) -> list[dict[str, Any]]:
        return [p for n in self.networks.by_id.values() for cid, e in n.endpoints.items()
                if cid != but for p in e.get("Ports") or []]

    # -- connect and disconnect ---------------------------------------------------------
    async def connect(self, ref: str, container_ref: str, endpoint: dict[str, Any]) -> None:
        from longboat.engine.networks import Forbidden

        network = self.networks.get(ref)
        container = self.engine.containers.get(container_ref)
        mode = container.host_config.get("NetworkMode") or "default"
        if mode == "host" or mode.startswith("container:") or network.name in (
                "host", "none"):
            raise Forbidden("container cannot be disconnected from host network or "
                            "connected to host network" if "host" in (mode, network.name)
                            else f"container sharing network namespace with another "
                                 f"container or the {network.name} network cannot be "
                                 "connected to any other network")
        networks = container.data["NetworkSettings"]["Networks"]
        if "none" in networks:
            raise Forbidden("container cannot be connected to multiple networks with one "
                            "of the networks in private (none) mode")
        if network.name in networks:
            raise Forbidden(f"endpoint with name {container.name} already exists in "
                            f"network {network.name}")
        if endpoint is not None and not isinstance(endpoint, dict):
            raise InvalidArgument("EndpointConfig must be an object")
        self._check_endpoint(network, endpoint, container.id)
        loop = asyncio.get_running_loop()
        networks[network.name] = _endpoint_settings(network, endpoint)
        if network.name != DEFAULT_BRIDGE:     # Docker adds them at connect, running or not
            implicit = _implicit_aliases(container)
            given = [a for a in networks[network.name]["Aliases"] or [] if a not in implicit]
            networks[network.name]["Aliases"] = [*given, *implicit]
        if container.running:
            first_netns = not self._has_netns(container)
            try:
                if first_netns:
                    raise Forbidden("container has no network namespace of its own to "
                                    "connect (it was started with only lo); stop it, "
                                    "connect, start it again")
                await loop.run_in_executor(None, self._hot_join, container, network)
            except BaseException:
                networks.pop(network.name, None)
                container.save()
                raise
            if network.name != DEFAULT_BRIDGE:
                self.stop_dns(container.id)
                self.start_dns(container)
        container.save()
        self.networks.publish("connect", network, container=container.id)

    def _hot_join(self, container: Container, network: Network) -> None:
        self._join(container, network, primary=False, image_config=None)
        container.save()
        self.write_etc(container)
        self.networks.apply_firewall()

    async def disconnect(self, ref: str, container_ref: str, *, force: bool = False
                         ) -> None:
        from longboat.engine.networks import Forbidden

        network = self.networks.get(ref)
        container = self.engine.containers.get(container_ref)
        networks = container.data["NetworkSettings"]["Networks"]
        if network.name not in networks:
            raise Forbidden(f"container {container.id} is not connected to network "
                            f"{network.name}")
        if network.name in ("host", "none"):
            raise Forbidden(f"container cannot be disconnected from {network.name} network")
        if container.running and network.id in {n.id for n in self._attached(container)}:
            await asyncio.get_running_loop().run_in_executor(
                None, self._hot_leave, container, network)
            if not any(n.name != DEFAULT_BRIDGE and container.id in n.endpoints
                       for n in self.networks.by_id.values()):
                self.stop_dns(container.id)
        networks.pop(network.name, None)
        container.save()
        self.networks.publish("disconnect", network, container=container.id)

    def _hot_leave(self, container: Container, network: Network) -> None:
        self._leave(container, network, self.netns_file(container.id))
        container.save()
        self.write_etc(container)
        self.networks.apply_firewall()


def _check_dns(host_config: dict[str, Any]) -> None:
    for field in ("Dns", "DnsSearch", "DnsOptions"):
        value = host_config.get(field)
        if value is not None and (not isinstance(value, list) or not all(
                isinstance(v, str) for v in value)):
            raise InvalidArgument(f"HostConfig.{field} must be a list of strings")
    for server in host_config.get("Dns") or []:
        try:
            ipaddress.ip_address(server)
        except ValueError:
            raise InvalidArgument(f"{server} is not an ip address") from None
    for domain in host_config.get("DnsSearch") or []:
        if domain != "." and (len(domain) > 255 or domain.startswith("-") or
                              " " in domain):
            raise InvalidArgument(f"{domain} is not a valid domain")


def _check_extra_hosts(host_config: dict[str, Any]) -> list[tuple[str, str]]:
    given = host_config.get("ExtraHosts")
    if given is not None and (not isinstance(given, list) or not all(
            isinstance(v, str) for v in given)):
        raise InvalidArgument("HostConfig.ExtraHosts must be a list of strings")
    return [etcfiles.validate_extra_host(e) for e in given or []]


def _asks_addresses(container: Container) -> bool:
    """Does the container ask for fixed addresses (``--ip``, ``--ip6``)?"""
    return any((cfg.get("IPAMConfig") or {}).get(field)
               for cfg in (container.data["NetworkSettings"].get("Networks") or {}).values()
               if isinstance(cfg, dict) for field in ("IPv4Address", "IPv6Address"))


def _implicit_aliases(container: Container) -> list[str]:
    """The aliases Docker 20.10 adds on a user-defined network: the short id, and the
    host name when it is not the container's name."""
    out = [container.id[:12]]
    hostname = container.config.get("Hostname") or ""
    if hostname and hostname != container.name and hostname not in out:
        out.append(hostname)
    return out


def _host_ifname(network_id: str, container_id: str) -> str:
    from longboat.engine.network_drivers import host_ifname

    return host_ifname(network_id, container_id)


def _random_mac() -> str:
    raw = bytearray(secrets.token_bytes(6))
    raw[0] = (raw[0] & 0xFE) | 0x02
    return ":".join(f"{b:02x}" for b in raw)
