"""/etc/hosts, /etc/resolv.conf and /etc/hostname as Docker 20.10 writes them. The
expected texts are what dockerd 20.10.24 wrote into containers (busybox, `cat`), run for
the same flags on a host whose resolv.conf held `nameserver 10.255.255.53`; the rest
follows libnetwork's resolvconf rules."""

from __future__ import annotations

import pytest

from longboat.errors import InvalidArgument
from longboat.network import etcfiles

pytestmark = pytest.mark.unit

LOCALHOST = ("127.0.0.1\tlocalhost\n"
             "::1\tlocalhost ip6-localhost ip6-loopback\n"
             "fe00::0\tip6-localnet\n"
             "ff00::0\tip6-mcastprefix\n"
             "ff02::1\tip6-allnodes\n"
             "ff02::2\tip6-allrouters\n")
HOST = "nameserver 10.255.255.53\n"


# -- /etc/hosts -----------------------------------------------------------------------------
def test_hosts_with_extra_hosts_and_no_address_as_docker_none() -> None:
    # docker run --network none -h box --domainname example.com
    #   --add-host gw:10.0.0.1 --add-host v6:fd00::1
    assert etcfiles.hosts("box", domainname="example.com",
                          extra_hosts=["gw:10.0.0.1", "v6:fd00::1"]) == (
        LOCALHOST + "10.0.0.1\tgw\nfd00::1\tv6\n")


def test_hosts_with_a_dotted_hostname_gives_fqdn_and_short_name() -> None:
    # docker run --network unet -h box.sub.example
    assert etcfiles.hosts("box.sub.example", addresses=["10.77.0.2"]) == (
        LOCALHOST + "10.77.0.2\tbox.sub.example box\n")
    assert etcfiles.hosts("box", domainname="example.com", addresses=["10.77.0.2"]) == (
        LOCALHOST + "10.77.0.2\tbox.example.com box\n")


def test_hosts_line_per_address_ipv6_too() -> None:
    # docker run --network unet6 (an --ipv6 network)
    assert etcfiles.hosts("fc410defc9f9", addresses=["10.78.0.2", "fd77::2"]) == (
        LOCALHOST + "10.78.0.2\tfc410defc9f9\nfd77::2\tfc410defc9f9\n")


def test_hosts_legacy_links_after_extra_hosts() -> None:
    names = etcfiles.link_names("database", "2347117cbf74", "/db")
    assert names == "database 2347117cbf74 db"
    assert etcfiles.link_names("db", "2347117cbf74", "/db") == "db 2347117cbf74"
    text = etcfiles.hosts("web", addresses=["172.17.0.3"], extra_hosts=["x:1.2.3.4"],
                          links=[(names, "172.17.0.2")])
    assert text == LOCALHOST + ("1.2.3.4\tx\n172.17.0.2\tdatabase 2347117cbf74 db\n"
                                "172.17.0.3\tweb\n")


def test_host_gateway() -> None:
    text = etcfiles.hosts("web", extra_hosts=["host.docker.internal:host-gateway"],
                          host_gateway="172.17.0.1")
    assert text.endswith("172.17.0.1\thost.docker.internal\n")
    with pytest.raises(InvalidArgument, match="host-gateway"):
        etcfiles.hosts("web", extra_hosts=["h:host-gateway"])


@pytest.mark.parametrize("bad", ["nocolon", ":1.2.3.4", "h:300.1.1.1", "h:", "h:name"])
def test_bad_extra_hosts(bad: str) -> None:
    with pytest.raises(InvalidArgument):
        etcfiles.validate_extra_host(bad)


def test_hostname_file_has_no_domain() -> None:
    assert etcfiles.hostname("box") == "box\n"
    assert etcfiles.hostname("box.sub.example") == "box.sub.example\n"


# -- /etc/resolv.conf -----------------------------------------------------------------------
def test_default_bridge_and_none_copy_the_host_file() -> None:
    assert etcfiles.resolv_conf(HOST) == HOST


def test_host_networking_is_the_host_file_whatever_the_flags() -> None:
    host = "# by hand\nnameserver 127.0.0.53\noptions edns0\n"
    assert etcfiles.resolv_conf(host, network="host", dns=["1.1.1.1"]) == host


def test_user_network_uses_the_embedded_server() -> None:
    # docker run --network unet
    assert etcfiles.resolv_conf(HOST, network="user") == (
        "nameserver 127.0.0.11\noptions ndots:0\n")
    assert etcfiles.upstreams(HOST) == ["10.255.255.53"]


def test_user_network_with_dns_flags() -> None:
    # docker run --network unet --dns 1.1.1.1 --dns-search a.example --dns-option ndots:3
    text = etcfiles.resolv_conf(HOST, network="user", dns=["1.1.1.1"],
                                dns_search=["a.example"], dns_options=["ndots:3"])
    assert text == "search a.example\nnameserver 127.0.0.11\noptions ndots:3\n"
    assert etcfiles.upstreams(HOST, dns=["1.1.1.1", "2001:db8::1"]) == ["1.1.1.1"]


def test_user_ndots_zero_still_gets_dockers() -> None:
    text = etcfiles.resolv_conf(HOST, network="user", dns_options=["ndots:0", "edns0"])
    assert text == "nameserver 127.0.0.11\noptions ndots:0 edns0 ndots:0\n"
    with pytest.raises(InvalidArgument, match="ndots"):
        etcfiles.resolv_conf(HOST, network="user", dns_options=["ndots:x"])


def test_dns_search_alone_keeps_the_host_servers() -> None:
    # docker run --network none --dns-search a.example
    assert etcfiles.resolv_conf(HOST, dns_search=["a.example"]) == (
        "search a.example\nnameserver 10.255.255.53\n")


def test_search_dot_means_none() -> None:
    assert etcfiles.resolv_conf(HOST, dns_search=["."]) == "nameserver 10.255.255.53\n"


def test_loopback_servers_are_dropped_and_google_takes_over() -> None:
    host = "# systemd stub\nnameserver 127.0.0.53\nsearch corp.example\noptions edns0\n"
    text = etcfiles.resolv_conf(host)
    assert text == ("# systemd stub\nsearch corp.example\noptions edns0\n"
                    "\nnameserver 8.8.8.8\nnameserver 8.8.4.4")
    # the embedded server still forwards to the loopback one (from the host's side)
    assert etcfiles.upstreams(host) == ["127.0.0.53"]
    user = etcfiles.resolv_conf(host, network="user")
    assert user == "search corp.example\nnameserver 127.0.0.11\noptions edns0 ndots:0\n"


def test_ipv6_servers_only_with_ipv6() -> None:
    host = "nameserver 10.0.0.1\nnameserver 2001:db8::53\nnameserver ::1\n"
    assert etcfiles.resolv_conf(host) == "nameserver 10.0.0.1\n"
    assert etcfiles.resolv_conf(host, ipv6=True) == (
        "nameserver 10.0.0.1\nnameserver 2001:db8::53\n")
    assert etcfiles.resolv_conf(host, network="user", ipv6=True) == (
        "nameserver 127.0.0.11\nnameserver 2001:db8::53\noptions ndots:0\n")
    only_v6 = "nameserver 2001:db8::53\n"
    assert etcfiles.resolv_conf(only_v6) == "\nnameserver 8.8.8.8\nnameserver 8.8.4.4"
    assert etcfiles.upstreams(only_v6) == ["8.8.8.8", "8.8.4.4"]


def test_parsing_follows_the_last_search_and_options_lines_and_strips_comments() -> None:
    host = ("search a.example b.example\nsearch c.example # old\nnameserver 10.0.0.1 # x\n"
            "options rotate\noptions timeout:1 attempts:2\n")
    assert etcfiles.search_domains(host) == ["c.example"]
    assert etcfiles.options(host) == ["timeout:1", "attempts:2"]
    assert etcfiles.nameservers(host) == ["10.0.0.1"]


def test_unknown_flavour() -> None:
    with pytest.raises(InvalidArgument):
        etcfiles.resolv_conf(HOST, network="overlay")
