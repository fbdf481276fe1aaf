#!/usr/bin/env bash
# Installs what Longboat needs on a Debian 12 host, as root, idempotently:
# Debian packages, then a virtual environment in .venv with longboat installed editable.
# Sourced by demo.sh and test.sh; safe to run any number of times.
set -euo pipefail

top=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
venv="$top/.venv"

# Runtime needs: busybox-static (base images), tini (--init), iproute2 and nftables
# (networking; libnftables), openssh-server (the lab's hosts run sshd). test.sh adds
# what the tests need (LONGBOAT_TEST_PACKAGES).
apt_packages=(python3 python3-venv python3-dev gcc busybox-static tini iproute2 nftables procps
              openssh-server ${LONGBOAT_TEST_PACKAGES:-})

need_install=()
for pkg in "${apt_packages[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" \
    || need_install+=("$pkg")
done
if [ "${#need_install[@]}" -gt 0 ]; then
  echo "==> installing Debian packages: ${need_install[*]}"
  apt-get update -q
  # Packages with services (docker-registry, docker.io) must not start them: the tests
  # run their own, on loopback or in their own network namespace. policy-rc.d is
  # Debian's way to say so during an install.
  policy=/usr/sbin/policy-rc.d
  made_policy=""
  if [ ! -e "$policy" ]; then
    printf '#!/bin/sh\nexit 101\n' > "$policy" && chmod +x "$policy" && made_policy=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends \
    "${need_install[@]}" || { if [ -n "$made_policy" ]; then rm -f "$policy"; fi; exit 1; }
  if [ -n "$made_policy" ]; then rm -f "$policy"; fi
  if [ -d /run/systemd/system ]; then
    for unit in docker-registry docker docker.socket containerd; do
      systemctl disable --now "$unit" >/dev/null 2>&1 || true
    done
  fi
fi

# The engine's API socket belongs to root and this group (0660), as docker's does.
getent group longboat >/dev/null || groupadd --system longboat

# Re-install into the venv only when the project's metadata changed.
stamp="$venv/.longboat-installed"
want=$(sha256sum "$top/pyproject.toml" | cut -d' ' -f1)
if [ ! -x "$venv/bin/python" ]; then
  echo "==> creating virtual environment $venv"
  python3 -m venv "$venv"
fi
if [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
  echo "==> installing longboat and its test tools into $venv"
  # (this machine's pip configuration may name local indexes that do not exist; pip
  # warns about each and goes on: keep those lines out of the way)
  "$venv/bin/pip" install -q --disable-pip-version-check -e "$top[test]" \
    2> >(grep -v "is ignored: it is neither a file nor a directory" >&2)
  echo "$want" > "$stamp"
fi
# Byte-compile our own sources: the CLIs start many times a second and must not pay for
# compiling (PYTHONDONTWRITEBYTECODE, if set, would keep imports from caching it).
"$venv/bin/python" -m compileall -q "$top/runtime/longboat" >/dev/null
export PATH="$venv/bin:$PATH"
