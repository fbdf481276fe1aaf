"""After its containers and networks are removed and it stops, an engine leaves nothing
in its network namespace or on the host: no links, addresses, nftables tables,
namespace files or mounts."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import pytest
from tests.support.engine import Longboatd

pytestmark = pytest.mark.integration


def _links(engine: Longboatd) -> list[str]:
    out = engine.run_in_netns(["ip", "-o", "link", "show"]).stdout
    return sorted(line.split(":")[1].strip().split("@")[0] for line in out.splitlines())


def _addresses(engine: Longboatd) -> list[str]:
    out = engine.run_in_netns(["ip", "-o", "addr", "show"]).stdout
    return sorted(line.split()[3] for line in out.splitlines())


def _mounts_under(path: Path) -> list[str]:
    with open("/proc/self/mountinfo") as f:
        return [line.split()[4] for line in f if line.split()[4].startswith(str(path))]


def test_nothing_remains_after_containers_networks_and_engine_go(
        tmp_path: Path, rootfs_template: Path) -> None:
    engine = Longboatd(tmp_path, netns=True).start()
    try:
        tar = tmp_path / "busybox.tar"
        with tarfile.open(tar, "w") as t:
            t.add(rootfs_template, arcname=".")
        engine.docker("import", str(tar), "bb:1")
        assert "longboat0" in _links(engine)
        engine.docker("network", "create", "--subnet", "10.240.0.0/24", "lbe-clean")
        engine.docker("run", "-d", "--name", "c1", "-p", "18100:80", "bb:1", "sleep", "600")
        engine.docker("run", "-d", "--name", "c2", "--network", "lbe-clean", "bb:1",
                      "sleep", "600")
        engine.docker("network", "connect", "bridge", "c2")
        engine.docker("run", "-d", "--name", "c3", "--network", "container:c2", "bb:1",
                      "sleep", "600")
        sandbox = json.loads(engine.docker("inspect", "c2").stdout)[0]["NetworkSettings"][
            "SandboxKey"]
        assert Path(sandbox).exists()
        assert engine.run_in_netns(["nft", "list", "tables"]).stdout.strip()
        engine.docker("rm", "-f", "c3", "c2", "c1")
        engine.docker("network", "rm", "lbe-clean")
        engine.stop(monitor=False)
        engine.stop_monitor()
        assert _links(engine) == ["lo"]
        assert _addresses(engine) == ["127.0.0.1/8", "::1/128"]
        assert engine.run_in_netns(["nft", "list", "tables"]).stdout.strip() == ""
        netns_dir = tmp_path / "run" / "netns"
        assert not netns_dir.exists() or list(netns_dir.iterdir()) == []
        # only the engine's own namespace file (and its directory's bind) is mounted
        assert [m for m in _mounts_under(tmp_path) if "engine-netns" not in m] == []
    finally:
        engine.stop()
    assert _mounts_under(tmp_path) == []
