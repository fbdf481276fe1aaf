#!/usr/bin/env bash
# The README's main job. Until the lab swarm lands, the most complete thing that works end
# to end: longboatd, a busybox image built from the host, and containers driven by the
# longboat CLI, through an engine restart (live restore). --keep leaves it all running.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=setup.sh
source "$top/scripts/setup.sh"
exec python -m longboat.demo "$@"
