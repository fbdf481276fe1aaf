"""Legacy link environment variables, as moby's links.Link.ToEnv writes them."""

from __future__ import annotations

from longboat.engine import legacy_links


def test_single_ports_and_the_default_port() -> None:
    env = legacy_links.port_env("db-1", "172.17.0.2", ["6379/tcp", "53/udp", "53/tcp"])
    assert env == [
        "DB_1_PORT=tcp://172.17.0.2:53",
        "DB_1_PORT_53_TCP=tcp://172.17.0.2:53", "DB_1_PORT_53_TCP_ADDR=172.17.0.2",
        "DB_1_PORT_53_TCP_PORT=53", "DB_1_PORT_53_TCP_PROTO=tcp",
        "DB_1_PORT_53_UDP=udp://172.17.0.2:53", "DB_1_PORT_53_UDP_ADDR=172.17.0.2",
        "DB_1_PORT_53_UDP_PORT=53", "DB_1_PORT_53_UDP_PROTO=udp",
        "DB_1_PORT_6379_TCP=tcp://172.17.0.2:6379", "DB_1_PORT_6379_TCP_ADDR=172.17.0.2",
        "DB_1_PORT_6379_TCP_PORT=6379", "DB_1_PORT_6379_TCP_PROTO=tcp"]


def test_three_consecutive_ports_are_a_range_and_every_port_is_listed() -> None:
    env = legacy_links.port_env("w", "10.0.0.5", ["8000", "8001", "8002", "9000", "9001"])
    assert env[:7] == [
        "W_PORT=tcp://10.0.0.5:8000",
        "W_PORT_8000_TCP_START=tcp://10.0.0.5:8000", "W_PORT_8000_TCP_ADDR=10.0.0.5",
        "W_PORT_8000_TCP_PROTO=tcp", "W_PORT_8000_TCP_PORT_START=8000",
        "W_PORT_8000_TCP_END=tcp://10.0.0.5:8002", "W_PORT_8000_TCP_PORT_END=8002"]
    for port in (8000, 8001, 8002, 9000, 9001):    # as dockerd 20.10 (the oracle test)
        assert f"W_PORT_{port}_TCP=tcp://10.0.0.5:{port}" in env
    assert not [e for e in env if e.startswith("W_PORT_9000_TCP_START")]


def test_name_and_child_environment() -> None:
    env = legacy_links.link_env("/app/db", "10.0.0.5", [], ["PATH=/x", "HOME=/r", "A=1=2",
                                                           "UNSET"])
    assert env == ["DB_NAME=/app/db", "DB_ENV_A=1=2"]


def test_merge_places_links_after_the_defaults_and_lets_the_containers_win() -> None:
    process = ["PATH=/bin", "HOSTNAME=h", "DB_NAME=mine", "X=1"]
    merged = legacy_links.merge(process, ["DB_NAME=/a/db", "DB_PORT=tcp://1:2"], tty=False)
    assert merged == ["PATH=/bin", "HOSTNAME=h", "DB_PORT=tcp://1:2", "DB_NAME=mine", "X=1"]
    tty = legacy_links.merge(["PATH=/bin", "HOSTNAME=h", "TERM=xterm"], ["L=1"], tty=True)
    assert tty == ["PATH=/bin", "HOSTNAME=h", "TERM=xterm", "L=1"]
