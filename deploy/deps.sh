#!/usr/bin/env bash
# Installs the Debian packages rtpstream needs, only those that are missing.
#   deploy/deps.sh build     C libraries and tools to build and test (default)
#   deploy/deps.sh bench     + nginx and wrk for the benchmarks
set -euo pipefail

packages=(pkg-config libuv1-dev libhiredis-dev libssl-dev libxml2-dev zlib1g-dev redis-server openssl curl)
if [ "${1:-build}" = "bench" ]; then packages+=(nginx-light wrk); fi

missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "deps: installing ${missing[*]}" >&2
  sudo=""
  [ "$(id -u)" -ne 0 ] && sudo="sudo"
  export DEBIAN_FRONTEND=noninteractive
  $sudo apt-get update -qq
  $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
# A package install may start a system redis-server; the hub and the tests start their own.
command -v swift >/dev/null || [ -x /opt/swift/usr/bin/swift ] || {
  echo "deps: the Swift 6 toolchain is not on PATH (expected /opt/swift/usr/bin)" >&2; exit 1; }
