#!/usr/bin/env bash
# The README's test command: lint, type-check, then unit + integration + e2e tests.
# Benchmarks are not part of it (pytest -m bench runs them).
set -euo pipefail
top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
# runc: the oracle for longboat-runtime; docker-registry: a real registry for pull/push;
# docker.io: Docker 20.10 as the oracle for images and the API; skopeo and debootstrap:
# image tools the image tests check against; iperf3: the network throughput bench
export LONGBOAT_TEST_PACKAGES="runc docker-registry docker.io skopeo debootstrap iperf3"
# shellcheck source=setup.sh
source "$top/scripts/setup.sh"
cd "$top"

echo "==> ruff"
ruff check runtime tests
echo "==> mypy"
mypy
echo "==> pytest"
exec pytest "$@"
