#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Installs what fieldhub needs to build, test and run the demo: Debian 12 packages, then the npm
# packages of package-lock.json (npm ci). Works as root or as a user with sudo. Safe to run
# again: apt installs only what is missing, npm ci runs only when the lock file changed.
set -euo pipefail

packages=(
  # build
  g++ cmake ninja-build pkg-config make clang-format
  # libraries
  libboost-dev libtomlplusplus-dev libsimdjson-dev libsqlite3-dev
  # tests and benchmarks
  libgtest-dev libgmock-dev libbenchmark-dev sqlite3 procps
  # I/O errors injected into the spool's syscalls (tests/integration/spool_fault_test.cpp)
  strace
  # real servers and peers for the demo and the integration tests
  mosquitto mosquitto-clients redis-server postgresql socat python3-pymodbus python3-serial python3-serial-asyncio redis-tools
  # the Modbus peer poller of bench/run-modbus-scale.sh (collectd's modbus plugin needs libmodbus5)
  collectd-core libmodbus5
  # production store clients
  libhiredis-dev libpq-dev
  # the dashboard's browser tests
  chromium
)
# Node.js and npm for the dashboard's libraries and its browser tests: Debian's, unless a node
# and npm are already there (a newer Node.js installed otherwise is kept).
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  packages+=(nodejs npm)
fi

if [ "$(id -u)" -eq 0 ]; then
  as_root=()
elif command -v sudo >/dev/null 2>&1; then
  as_root=(sudo)
else
  echo "install-deps: run as root or install sudo" >&2
  exit 1
fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: every Debian package is installed"
else
  echo "install-deps: installing ${missing[*]}"
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
fi

# The npm packages of package-lock.json (uPlot for the dashboard, playwright-core for its tests)
# into node_modules/, unless this very lock file was installed already (the stamp is its copy).
cd "$(dirname "$0")/.."
if ! cmp -s package-lock.json node_modules/.fieldhub-installed-lock.json 2>/dev/null; then
  echo "install-deps: npm ci"
  npm ci --no-audit --no-fund --prefer-offline --loglevel=error
  cp package-lock.json node_modules/.fieldhub-installed-lock.json
fi
