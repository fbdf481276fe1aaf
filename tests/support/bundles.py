"""OCI bundles for tests: a busybox rootfs (built once per session, copied per bundle)
and a config.json from the runtime's default spec with a test's changes."""

from __future__ import annotations

import copy
import json
import os
import shutil
import uuid
from pathlib import Path
from typing import Any

from longboat.image.bootstrap import busybox_rootfs
from longboat.oci.spec import default_spec

CGROUP_PARENT = "/longboat-test"


def template_rootfs(cache: Path) -> Path:
    rootfs = cache / "busybox-rootfs"
    if not (rootfs / "bin" / "busybox").exists():
        busybox_rootfs(str(rootfs))
    return rootfs


def unique_id(prefix: str = "t") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def make_bundle(path: Path, template: Path, args: list[str], *,
                container_id: str | None = None, **changes: Any) -> tuple[Path, dict[str, Any]]:
    """A bundle at ``path`` running ``args``; ``changes`` go through ``edit_config``."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copytree(template, path / "rootfs", symlinks=True)
    config = copy.deepcopy(default_spec())
    config["process"]["terminal"] = False
    config["process"]["args"] = args
    config["linux"]["cgroupsPath"] = f"{CGROUP_PARENT}/{container_id or unique_id()}"
    edit_config(config, changes)
    (path / "config.json").write_text(json.dumps(config, indent=2))
    return path, config


def edit_config(config: dict[str, Any], changes: dict[str, Any]) -> None:
    """Apply ``a__b__c=value`` style changes (``__`` separates keys)."""
    for key, value in changes.items():
        node = config
        parts = key.split("__")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
        node[parts[-1]] = value


def remove_cgroup_parent() -> None:
    """Remove the tests' parent cgroup in every hierarchy once it is empty."""
    root = "/sys/fs/cgroup"
    candidates = [os.path.join(root, CGROUP_PARENT.lstrip("/"))]
    if os.path.isdir(root):
        candidates += [os.path.join(root, d, CGROUP_PARENT.lstrip("/"))
                       for d in os.listdir(root)]
    for path in candidates:
        try:
            os.rmdir(path)
        except OSError:
            pass
