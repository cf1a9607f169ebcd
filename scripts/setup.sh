#!/usr/bin/env bash
# Installs, only when missing, what building and testing asio-fcgi needs from Debian 12's
# packages. Idempotent; run as root (or with sudo available).
set -euo pipefail

packages=(
  g++ cmake ninja-build pkg-config git ca-certificates
  libasio-dev libboost-test-dev libbenchmark-dev
  libcli11-dev nlohmann-json3-dev
  php8.2-fpm php8.2-cli
  clang-format clang libclang-rt-14-dev
  doxygen
  libfcgi-dev golang-go
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done

if [ ${#missing[@]} -eq 0 ]; then
  echo "setup: all ${#packages[@]} packages present"
  exit 0
fi

sudo=""
if [ "$(id -u)" -ne 0 ]; then
  command -v sudo >/dev/null || { echo "setup: run as root to install: ${missing[*]}" >&2; exit 1; }
  sudo="sudo"
fi

echo "setup: installing ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
# Installing php8.2-fpm must not start the system's php-fpm service: tests start their own.
policy_added=""
if [ ! -e /usr/sbin/policy-rc.d ]; then
  printf '#!/bin/sh\nexit 101\n' | $sudo tee /usr/sbin/policy-rc.d >/dev/null
  $sudo chmod +x /usr/sbin/policy-rc.d
  policy_added=1
fi
cleanup() { [ -z "$policy_added" ] || $sudo rm -f /usr/sbin/policy-rc.d; }
trap cleanup EXIT

$sudo apt-get update -q
$sudo apt-get install -y -q --no-install-recommends "${missing[@]}"
echo "setup: done"
