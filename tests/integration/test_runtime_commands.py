"""longboat-runtime's informational commands and its behaviour as a command line."""

from __future__ import annotations

import json
import subprocess

import pytest
from tests.support.bundles import unique_id

pytestmark = pytest.mark.integration


def test_spec_writes_a_config_that_runs(runtime, bundle, tmp_path):
    path, _ = bundle(["true"])
    (path / "config.json").unlink()
    runtime("spec", "--bundle", str(path))
    config = json.loads((path / "config.json").read_text())
    assert config["process"]["args"] == ["sh"] and config["root"]["path"] == "rootfs"
    again = runtime("spec", "--bundle", str(path), check=False)
    assert again.returncode == 1 and "already exists" in again.stderr
    config["process"].update(terminal=False, args=["sh", "-c", "echo from-spec"])
    config["linux"]["cgroupsPath"] = f"/longboat-test/{unique_id()}"
    (path / "config.json").write_text(json.dumps(config))
    assert runtime("run", "--bundle", str(path), unique_id()).stdout == "from-spec\n"


def test_features_lists_what_the_host_supports(runtime):
    features = json.loads(runtime("features").stdout)
    assert features["ociVersionMax"] == "1.1.0"
    assert "CAP_SYS_ADMIN" in features["linux"]["capabilities"]
    assert set(features["linux"]["namespaces"]) >= {"pid", "network", "mount", "user"}
    assert "rbind" in features["mountOptions"]


def test_list_and_ps_tables(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, _ = bundle(["sleep", "1000"])
    runtime("run", "--detach", "--bundle", str(path), cid)
    table = runtime("list").stdout.splitlines()
    assert table[0].split() == ["ID", "PID", "STATUS", "BUNDLE", "CREATED", "OWNER"]
    assert table[1].split()[0] == cid and table[1].split()[2] == "running"
    ps = runtime("ps", cid).stdout.splitlines()
    assert ps[0].split() == ["PID", "PPID", "STAT", "CMD"]
    assert ps[1].split()[3:] == ["sleep", "1000"]


def test_unknown_container_and_usage_errors(runtime):
    missing = runtime("state", "nope", check=False)
    assert missing.returncode == 1
    assert missing.stderr == "longboat-runtime: container 'nope' does not exist\n"
    bad_id = runtime("state", "../etc", check=False)
    assert bad_id.returncode == 1 and "invalid container id" in bad_id.stderr
    usage = runtime("create", check=False)
    assert usage.returncode == 2 and "missing ID" in usage.stderr
    version = subprocess.run([runtime.binary, "--version"], capture_output=True, text=True,
                             check=True)
    assert version.stdout.startswith("longboat-runtime version ")


def test_the_state_root_is_private(runtime, bundle):
    cid = unique_id()
    runtime.ids.append(cid)
    path, _ = bundle(["sleep", "1000"])
    runtime("create", "--bundle", str(path), cid)
    assert (runtime.root.stat().st_mode & 0o777) == 0o700
    assert ((runtime.root / cid).stat().st_mode & 0o777) == 0o700
    assert ((runtime.root / cid / "state").stat().st_mode & 0o777) == 0o600
