#!/usr/bin/env bash
# The README's main job. Until swarm mode lands: a lab of hosts on this machine, the
# engine installed and started on each by Ansible (playbooks/engine.yml), an application
# deployed by Ansible (playbooks/demo-app.yml), traffic between the hosts, an engine
# restart the containers live through, and a rerun that changes nothing (runtime/longboat/
# demo.py). --keep leaves the lab running.
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# shellcheck source=setup.sh
source "$top/scripts/setup.sh"
exec python -m longboat.demo "$@"
