"""A container's ``/etc/hosts``, ``/etc/resolv.conf`` and ``/etc/hostname``, written as
Docker 20.10 writes them (libnetwork's ``etchosts``/``resolvconf`` and its sandbox code).
Pure functions of text: the engine reads the host's files and writes the results.

resolv.conf, by network:

- host networking: the host's file as it is (``--dns`` flags do not apply, as in Docker).
- the default bridge and ``none``: the host's file without loopback nameservers (the
  container cannot reach them) and, without IPv6, without IPv6 ones; when none remain,
  Google's (8.8.8.8, 8.8.4.4) as Docker falls back. ``--dns``/``--dns-search``/
  ``--dns-option`` replace the host's lines of their kind.
- user-defined networks: ``nameserver 127.0.0.11`` (the embedded server), the search
  domains and options from above plus ``ndots:0`` (unless the user set ndots above 0);
  :func:`upstreams` names the servers the embedded server forwards to (the host's IPv4
  ones, loopback included, or ``--dns``).
"""

from __future__ import annotations

import ipaddress
import os
import re

from longboat.errors import InvalidArgument

EMBEDDED_DNS = "127.0.0.11"
DEFAULT_IPV4_DNS = ("8.8.8.8", "8.8.4.4")
DEFAULT_IPV6_DNS = ("2001:4860:4860::8888", "2001:4860:4860::8844")
HOST_GATEWAY = "host-gateway"
SYSTEMD_RESOLVED_STUB = "127.0.0.53"
SYSTEMD_RESOLVED_UPSTREAMS = "/run/systemd/resolve/resolv.conf"

_LOCALHOST_DEFAULTS = (
    ("127.0.0.1", "localhost"),
    ("::1", "localhost ip6-localhost ip6-loopback"),
    ("fe00::0", "ip6-localnet"),
    ("ff00::0", "ip6-mcastprefix"),
    ("ff02::1", "ip6-allnodes"),
    ("ff02::2", "ip6-allrouters"),
)

# libnetwork's patterns (a superset of IPv6, by their own admission)
_IPV4 = r"(?:(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)\.){3}(?:25[0-5]|2[0-4][0-9]|[01]?[0-9][0-9]?)"
_IPV6 = r"(?:[0-9A-Fa-f]{0,4}:){2,7}[0-9A-Fa-f]{0,4}(?:%\w+)?"
_LOCALHOST_NS = re.compile(r"(?m)^nameserver\s+(?:(?:127\.(?:[0-9]{1,3}\.){2}[0-9]{1,3})"
                           r"|(?:::1)$)\s*\n*")
_IPV6_NS = re.compile(r"(?m)^nameserver\s+" + _IPV6 + r"\s*\n*")
_NS = {"ip": re.compile(rf"^\s*nameserver\s*({_IPV4}|{_IPV6})\s*$"),
       "ipv4": re.compile(rf"^\s*nameserver\s*({_IPV4})\s*$"),
       "ipv6": re.compile(rf"^\s*nameserver\s*({_IPV6})\s*$")}
_SEARCH = re.compile(r"^\s*search\s*((?:[^\s]+\s*)*)$")
_OPTIONS = re.compile(r"^\s*options\s*((?:[^\s]+\s*)*)$")


# -- /etc/hostname ---------------------------------------------------------------------------
def hostname(name: str) -> str:
    """``/etc/hostname``: the host name alone (the domain name is not in it)."""
    return name + "\n"


# -- /etc/hosts ------------------------------------------------------------------------------
def validate_extra_host(text: str) -> tuple[str, str]:
    """``--add-host NAME:IP`` (IPv6 allowed: split on the first colon; ``host-gateway``
    for the host's address) -> (NAME, IP)."""
    name, colon, address = text.partition(":")
    if not colon or not name:
        raise InvalidArgument(f'bad format for add-host: "{text}"')
    if address != HOST_GATEWAY:
        try:
            ipaddress.ip_address(address.strip("[]"))
        except ValueError:
            raise InvalidArgument(f'invalid IP address in add-host: "{address}"') from None
    return name, address


def _main_names(name: str, domainname: str) -> str:
    # the FQDN and the bare host name, whether the FQDN came whole or split in two
    fqdn = f"{name}.{domainname}" if domainname else name
    first, dot, _ = fqdn.partition(".")
    return f"{fqdn} {first}" if dot else fqdn


def hosts(name: str, *, domainname: str = "", addresses: list[str] | tuple[str, ...] = (),
          extra_hosts: list[str] | tuple[str, ...] = (),
          links: list[tuple[str, str]] | tuple[tuple[str, str], ...] = (),
          host_gateway: str | None = None) -> str:
    """``/etc/hosts`` as Docker writes it: the localhost lines, ``--add-host`` entries
    (``NAME:IP``), legacy links ((names, address): "alias hostname name"), then one line
    per address of the container (one per network it joined) with its names."""
    records = list(_LOCALHOST_DEFAULTS)
    for item in extra_hosts:
        host, address = validate_extra_host(item)
        if address == HOST_GATEWAY:
            if not host_gateway:
                raise InvalidArgument("unable to derive the IP value for host-gateway")
            address = host_gateway
        records.append((address, host))
    records += [(address, names) for names, address in links]
    records += [(address, _main_names(name, domainname)) for address in addresses]
    return "".join(f"{address}\t{names}\n" for address, names in records)


def link_names(alias: str, child_hostname: str, child_name: str) -> str:
    """The names a legacy ``--link NAME:ALIAS`` gives the child: the alias, its host name
    and its name when that differs from the alias."""
    names = f"{alias} {child_hostname}"
    if alias != child_name.lstrip("/"):
        names += " " + child_name.lstrip("/")
    return names


# -- /etc/resolv.conf ------------------------------------------------------------------------
def _lines(content: str) -> list[str]:
    return [line.partition("#")[0] for line in content.split("\n")]


def nameservers(content: str, kind: str = "ip") -> list[str]:
    """The nameservers of a resolv.conf: ``kind`` "ip" (all), "ipv4" or "ipv6"."""
    pattern = _NS[kind]
    return [m.group(1) for line in _lines(content) if (m := pattern.match(line))]


def search_domains(content: str) -> list[str]:
    """The last ``search`` line's domains (as the resolver reads them)."""
    domains: list[str] = []
    for line in _lines(content):
        if m := _SEARCH.match(line):
            domains = m.group(1).split()
    return domains


def options(content: str) -> list[str]:
    found: list[str] = []
    for line in _lines(content):
        if m := _OPTIONS.match(line):
            found = m.group(1).split()
    return found


def filter_host(content: str, *, ipv6: bool) -> str:
    """The host's resolv.conf for a container: loopback nameservers out (and IPv6 ones
    without IPv6); Google's servers when nothing remains (appended as Docker does)."""
    cleaned = _LOCALHOST_NS.sub("", content)
    if not ipv6:
        cleaned = _IPV6_NS.sub("", cleaned)
    if not nameservers(cleaned):
        fallback = list(DEFAULT_IPV4_DNS) + (list(DEFAULT_IPV6_DNS) if ipv6 else [])
        cleaned += "\n" + "\n".join(f"nameserver {ns}" for ns in fallback)
    return cleaned


def build(servers: list[str], search: list[str], opts: list[str]) -> str:
    """resolvconf.Build: search, nameserver and options lines."""
    out = []
    if search and " ".join(search).strip(" ") != ".":
        out.append("search " + " ".join(search))
    out += [f"nameserver {ns}" for ns in servers]
    if opts and " ".join(opts).strip(" "):
        out.append("options " + " ".join(opts))
    return "".join(line + "\n" for line in out)


def _base(host: str, *, ipv6: bool, dns: list[str] | None, dns_search: list[str] | None,
          dns_options: list[str] | None) -> str:
    if dns or dns_search or dns_options:
        return build(list(dns or nameservers(host)), list(dns_search or search_domains(host)),
                     list(dns_options or options(host)))
    return filter_host(host, ipv6=ipv6)


def resolv_conf(host: str, *, network: str = "bridge", ipv6: bool = False,
                dns: list[str] | None = None, dns_search: list[str] | None = None,
                dns_options: list[str] | None = None) -> str:
    """The container's resolv.conf from the host's (``host``, its text). ``network``:
    "host" (the host's file), "bridge" (the default bridge, ``none`` and anything without
    the embedded server) or "user" (a user-defined network: the embedded server)."""
    if network == "host":
        return host
    if network not in ("bridge", "user"):
        raise InvalidArgument(f"unknown resolv.conf flavour {network!r}")
    base = _base(host, ipv6=ipv6, dns=dns, dns_search=dns_search, dns_options=dns_options)
    if network == "bridge":
        return base
    servers = [EMBEDDED_DNS] + (nameservers(base, "ipv6") if ipv6 else [])
    opts = options(base)
    if not ndots_set(opts):
        opts.append("ndots:0")   # container and alias names first, as Docker
    return build(servers, search_domains(base), opts)


def ndots_set(opts: list[str]) -> bool:
    """Whether the options set ``ndots`` above 0 (Docker then keeps the user's and its
    embedded server answers unqualified names it does not know itself)."""
    for option in opts:
        if "ndots" in option:
            _, colon, value = option.partition(":")
            if not colon or ":" in value:
                raise InvalidArgument(f"invalid ndots option {option}")
            try:
                number = int(value)
            except ValueError:
                raise InvalidArgument(f"invalid number for ndots option {option}") from None
            if number > 0:
                return True
    return False


def upstreams(host: str, *, dns: list[str] | None = None) -> list[str]:
    """The servers the embedded DNS forwards to: the ``--dns`` IPv4 servers, or the
    host's IPv4 ones (loopback ones too: the server asks from the host's side), or
    Google's when the host has none."""
    if dns:
        return [ns for ns in dns if _is_ipv4(ns)]
    found = nameservers(host, "ipv4")
    return found or list(DEFAULT_IPV4_DNS)


def _is_ipv4(text: str) -> bool:
    try:
        return ipaddress.ip_address(text).version == 4
    except ValueError:
        return False


def host_resolv_conf_path(path: str = "/etc/resolv.conf") -> str:
    """The host file to start from: systemd-resolved's list of real upstreams when
    ``path`` only names its 127.0.0.53 stub (as Docker 20.10 does)."""
    try:
        with open(path) as f:
            content = f.read()
    except OSError:
        return path
    if nameservers(content) == [SYSTEMD_RESOLVED_STUB] and os.path.exists(
            SYSTEMD_RESOLVED_UPSTREAMS):
        return SYSTEMD_RESOLVED_UPSTREAMS
    return path
