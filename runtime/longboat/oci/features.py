"""What ``longboat-runtime features`` reports (the OCI runtime spec's features.md).

Built from the same tables the runtime uses (:mod:`longboat.oci.spec`,
:mod:`longboat.linux.caps`), so that the report cannot drift from what is accepted.
"""

from __future__ import annotations

from typing import Any

import longboat
from longboat.linux import caps
from longboat.oci import OCI_VERSION, mountopts, validate

OCI_VERSION_MIN = "1.0.0"
OCI_VERSION_MAX = OCI_VERSION

#: Annotation carrying this runtime's version (runc uses org.opencontainers.runc.version).
VERSION_ANNOTATION = "io.github.longboat.runtime.version"


def features() -> dict[str, Any]:
    """The features document, ready for ``json.dumps``.

    Capabilities are those this table and the host kernel both know; seccomp, AppArmor,
    SELinux, Intel RDT, idmapped mounts and network devices are reported as disabled:
    :func:`longboat.oci.validate.validate` warns about or leaves them to the runtime to refuse.
    """
    host_last = caps.last_cap()
    return {
        "ociVersionMin": OCI_VERSION_MIN,
        "ociVersionMax": OCI_VERSION_MAX,
        "hooks": list(validate.HOOKS),
        "mountOptions": list(mountopts.MOUNT_OPTIONS),
        "linux": {
            "namespaces": list(validate.NAMESPACES),
            "capabilities": [name for name, number in caps.NAMES.items()
                             if number <= host_last],
            "cgroup": {"v1": True, "v2": True, "systemd": False, "systemdUser": False},
            "seccomp": {"enabled": False},
            "apparmor": {"enabled": False},
            "selinux": {"enabled": False},
            "intelRdt": {"enabled": False},
            "mountExtensions": {"idmap": {"enabled": False}},
            "netDevices": {"enabled": False},
        },
        "annotations": {VERSION_ANNOTATION: longboat.__version__},
    }
