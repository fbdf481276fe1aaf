#!/usr/bin/env bash
# The README's main job. Until the engine and the lab land, the most complete thing that
# works end to end: a busybox container run by longboat-runtime, with its own PID, UTS,
# mount, IPC and network namespaces, a cgroup with a memory and pids limit, and a
# read-only root filesystem.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=setup.sh
source "$top/scripts/setup.sh"
exec python -m longboat.oci.demo "$@"
