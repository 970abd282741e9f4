#!/usr/bin/env bash
# Installs everything the agent, its tests and its benchmarks need on Debian 12 (bookworm).
# Idempotent: packages already present are left alone. Uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ninja-build ccache pkg-config
  libboost1.81-dev libboost-system1.81-dev libssl-dev nlohmann-json3-dev libsqlite3-dev
  libcpp-httplib-dev catch2
  openssl curl ca-certificates procps python3
)
if [ "${DINODIA_BENCH_DEPS:-0}" = "1" ]; then
  packages+=(wrk nginx-light)
fi
if [ "${DINODIA_SANITIZER_DEPS:-0}" = "1" ]; then
  packages+=(clang libclang-rt-14-dev)
fi

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -gt 0 ]; then
  echo "Installing: ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi
