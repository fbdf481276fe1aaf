"""``run``/``create`` flags turned into the container configuration as docker's CLI does:
sizes, --cpus, env, --ulimit, --mount, --restart, --tmpfs, -v, --device, and the whole
body from a parsed command line."""

from __future__ import annotations

from pathlib import Path

import pytest

from longboat.cli import run_args
from longboat.cli.main import build_parser
from longboat.cli.run_args import ArgumentError

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(("text", "size"), [
    ("512m", 512 << 20), ("512M", 512 << 20), ("1g", 1 << 30), ("1.5g", 3 << 29),
    ("64k", 64 << 10), ("100", 100), ("100b", 100), ("2mb", 2 << 20), ("2MiB", 2 << 20),
    ("1t", 1 << 40),
])
def test_sizes_are_binary_like_go_units(text: str, size: int) -> None:
    assert run_args.ram_in_bytes(text) == size


@pytest.mark.parametrize("text", ["", "abc", "12x", "-5m", "m"])
def test_bad_sizes_are_refused(text: str) -> None:
    with pytest.raises(ArgumentError):
        run_args.ram_in_bytes(text)
    with pytest.raises(ArgumentError, match='for "--memory" flag'):
        run_args.mem_bytes(text, "--memory")


def test_memory_swap_takes_minus_one() -> None:
    assert run_args.swap_bytes("-1") == -1
    assert run_args.swap_bytes("1g") == 1 << 30


@pytest.mark.parametrize(("text", "nanos"), [
    ("1.5", 1_500_000_000), ("2", 2_000_000_000), ("0.25", 250_000_000), ("0", 0),
    ("0.000000001", 1),
])
def test_cpus_become_nano_cpus_exactly(text: str, nanos: int) -> None:
    assert run_args.nano_cpus(text) == nanos


def test_bad_cpus_are_refused() -> None:
    with pytest.raises(ArgumentError, match="failed to parse one as a rational number"):
        run_args.nano_cpus("one")
    with pytest.raises(ArgumentError, match="too precise"):
        run_args.nano_cpus("0.0000000001")


def test_env_from_our_environment() -> None:
    env = {"HOME": "/root", "EMPTY": ""}
    assert run_args.env_value("A=1", env) == "A=1"
    assert run_args.env_value("A=", env) == "A="
    assert run_args.env_value("HOME", env) == "HOME=/root"
    assert run_args.env_value("EMPTY", env) == "EMPTY="
    assert run_args.env_value("UNSET", env) == "UNSET"      # kept as given, like docker
    with pytest.raises(ArgumentError, match="invalid environment variable"):
        run_args.env_value("=x", env)


def test_env_file(tmp_path: Path) -> None:
    path = tmp_path / "env"
    path.write_text("\ufeff# comment\n\nA=1\n  B = spaced \nHOME\nUNSET\nC=x=y\n")
    with pytest.raises(ArgumentError, match="contains whitespaces"):
        run_args.read_kv_file(str(path), {"HOME": "/root"})
    path.write_text("# comment\n\nA=1\n  B= kept \nHOME\nUNSET\nC=x=y\n")
    assert run_args.read_kv_file(str(path), {"HOME": "/root"}) == \
        ["A=1", "B= kept ", "HOME=/root", "C=x=y"]
    with pytest.raises(ArgumentError, match="no such file"):
        run_args.read_kv_file(str(tmp_path / "absent"))


def test_ulimits() -> None:
    assert run_args.ulimit("nofile=1024:2048") == {"Name": "nofile", "Soft": 1024,
                                                   "Hard": 2048}
    assert run_args.ulimit("nproc=50") == {"Name": "nproc", "Soft": 50, "Hard": 50}
    for bad, message in (("nofile", "invalid ulimit argument"),
                         ("bogus=1", "invalid ulimit type: bogus"),
                         ("nofile=a:b", "invalid ulimit argument"),
                         ("nofile=10:5", "soft limit must be less")):
        with pytest.raises(ArgumentError, match=message):
            run_args.ulimit(bad)


def test_restart_policies() -> None:
    assert run_args.restart_policy("on-failure:3") == {"Name": "on-failure",
                                                       "MaximumRetryCount": 3}
    assert run_args.restart_policy("on-failure") == {"Name": "on-failure",
                                                     "MaximumRetryCount": 0}
    assert run_args.restart_policy("always")["Name"] == "always"
    assert run_args.restart_policy("unless-stopped")["Name"] == "unless-stopped"
    assert run_args.restart_policy("no")["Name"] == "no"
    for bad in ("sometimes", "always:3", "on-failure:x", ":3", "on-failure:-1"):
        with pytest.raises(ArgumentError):
            run_args.restart_policy(bad)


def test_tmpfs_volumes_devices() -> None:
    assert run_args.tmpfs("/run:size=64m") == ("/run", "size=64m")
    assert run_args.tmpfs("/run") == ("/run", "")
    with pytest.raises(ArgumentError):
        run_args.tmpfs("run")
    assert run_args.volume("/a:/b:ro") == ("/a:/b:ro", "")
    assert run_args.volume("/data") == (None, "/data")
    assert run_args.volume("./x:/b", cwd="/home/u") == ("/home/u/x:/b", "")
    for bad in ("a:b", "/a:/b:ro:x", ":/b", "data"):
        with pytest.raises(ArgumentError):
            run_args.volume(bad)
    assert run_args.device("/dev/fuse") == {"PathOnHost": "/dev/fuse",
                                            "PathInContainer": "/dev/fuse",
                                            "CgroupPermissions": "rwm"}
    assert run_args.device("/dev/a:/dev/b:r")["PathInContainer"] == "/dev/b"
    assert run_args.device("/dev/a:rw")["CgroupPermissions"] == "rw"
    with pytest.raises(ArgumentError):
        run_args.device("/dev/a:/dev/b:xyz")
    assert run_args.capability("net_admin") == "CAP_NET_ADMIN"
    assert run_args.capability("ALL") == "ALL"


def test_mounts() -> None:
    assert run_args.mount("type=bind,source=/a,target=/b,readonly") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": True}
    assert run_args.mount("type=bind,src=/a,dst=/b,ro=false,bind-propagation=rshared") == {
        "Type": "bind", "Source": "/a", "Target": "/b", "ReadOnly": False,
        "BindOptions": {"Propagation": "rshared"}}
    assert run_args.mount("type=tmpfs,destination=/t,tmpfs-size=64m,tmpfs-mode=1770") == {
        "Type": "tmpfs", "Target": "/t",
        "TmpfsOptions": {"SizeBytes": 64 << 20, "Mode": 0o1770}}
    assert run_args.mount("target=/v")["Type"] == "volume"
    for bad, message in (("type=bind,source=/a", "target is required"),
                         ("type=bind,target=/b", "Source must not be empty"),
                         ("type=tmpfs,source=/a,target=/b", "Source must be empty"),
                         ("type=tmpfs,target=/b,bind-propagation=shared", "cannot mix"),
                         ("type=disk,target=/b", "invalid value for 'type'"),
                         ("type=bind,source=/a,target=/b,colour=red", "unexpected key"),
                         ("type=bind,source,target=/b", "must be a key=value pair")):
        with pytest.raises(ArgumentError, match=message):
            run_args.mount(bad)


def _parse(*argv: str) -> object:
    return build_parser().parse_args(["run", *argv])


def test_whole_configuration_from_a_command_line(tmp_path: Path) -> None:
    env_file = tmp_path / "env"
    env_file.write_text("FROM_FILE=1\n")
    args = _parse("-it", "--rm", "--name", "x", "-e", "A=1", "--env-file", str(env_file),
                  "-h", "boat", "-l", "k=v", "-l", "flag", "--restart", "no",
                  "--memory", "512m", "--cpus", "1.5", "--ulimit", "nofile=1024:2048",
                  "--tmpfs", "/run:size=64m", "--mount", "type=tmpfs,target=/t",
                  "-v", "/tmp:/host", "-v", "/anon", "--network", "none",
                  "--entrypoint", "", "--pids-limit", "100", "--init",
                  "--stop-timeout", "3", "--log-opt", "max-size=1m",
                  "bb:1", "sh", "-c", "echo -n hi --rm")
    config = run_args.container_config(args, detach=False)  # type: ignore[arg-type]
    host = config["HostConfig"]
    assert config["Cmd"] == ["sh", "-c", "echo -n hi --rm"]
    assert config["Image"] == "bb:1" and config["Hostname"] == "boat"
    assert config["Env"] == ["FROM_FILE=1", "A=1"]
    assert config["Labels"] == {"k": "v", "flag": ""}
    assert (config["Tty"], config["OpenStdin"], config["AttachStdin"],
            config["StdinOnce"]) == (True, True, True, True)
    assert config["Entrypoint"] == [""] and config["StopTimeout"] == 3
    assert config["Volumes"] == {"/anon": {}}
    assert host["AutoRemove"] is True and host["Memory"] == 512 << 20
    assert host["NanoCpus"] == 1_500_000_000 and host["PidsLimit"] == 100
    assert host["Ulimits"] == [{"Name": "nofile", "Soft": 1024, "Hard": 2048}]
    assert host["Tmpfs"] == {"/run": "size=64m"} and host["Binds"] == ["/tmp:/host"]
    assert host["Mounts"] == [{"Type": "tmpfs", "Target": "/t"}]
    assert host["NetworkMode"] == "none" and host["Init"] is True
    assert host["LogConfig"] == {"Type": "", "Config": {"max-size": "1m"}}


def test_detached_and_conflicting_options() -> None:
    config = run_args.container_config(_parse("-d", "-i", "bb:1"),  # type: ignore[arg-type]
                                       detach=True)
    assert (config["AttachStdin"], config["AttachStdout"], config["StdinOnce"]) == \
        (False, False, False)
    assert config["Cmd"] is None and "Init" not in config["HostConfig"]
    with pytest.raises(ArgumentError, match="Conflicting options: --restart and --rm"):
        run_args.container_config(_parse("--rm", "--restart", "always", "bb:1"),  # type: ignore[arg-type]
                                  detach=False)
    with pytest.raises(ArgumentError, match="Conflicting options: -a and -d"):
        run_args.container_config(_parse("-d", "-a", "stdout", "bb:1"),  # type: ignore[arg-type]
                                  detach=True)


def test_helper_formats() -> None:
    from longboat.cli.container_files import _rename_root
    from longboat.cli.containers import _go_duration, get_timestamp, go_quote

    assert go_quote('sh -c "x"\n\x01…') == '"sh -c \\"x\\"\\n\\x01…"'
    assert _go_duration("1h30m") == 5400.0 and _go_duration("1.5s") == 1.5
    assert _go_duration("10") is None
    assert get_timestamp("10m", now=1000.0) == "400"
    assert get_timestamp("1700000000.5") == "1700000000.5"
    assert get_timestamp("2024-01-02T03:04:05Z") == "1704164645.000000000"
    assert _rename_root("dir/a/b", "dir", "new") == "new/a/b"
    assert _rename_root("dir", "dir", ".") == "."
    assert _rename_root("other/x", "dir", "new") is None
