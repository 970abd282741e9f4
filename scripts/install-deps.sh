#!/usr/bin/env bash
# Installs everything the agent, its tests and its benchmarks need on Debian 12 (bookworm).
# Idempotent: packages already present are left alone. Uses sudo when not root.
set -euo pipefail
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

packages=(
  build-essential cmake ninja-build ccache pkg-config lld-16
  libboost1.81-dev libboost-system1.81-dev libssl-dev nlohmann-json3-dev libsqlite3-dev
  libcpp-httplib-dev catch2
  openssl curl ca-certificates procps python3 python3-yaml
  apparmor
)
# apparmor: only its apparmor_parser, which the test addon/apparmor_profile runs over the add-on's
# profile (no kernel here loads it: docs/addon.md#apparmor).
if [ "${DINODIA_BENCH_DEPS:-0}" = "1" ]; then
  packages+=(wrk nginx-light valgrind)
fi
if [ "${DINODIA_SANITIZER_DEPS:-0}" = "1" ]; then
  packages+=(clang libclang-rt-14-dev)
fi
# scripts/image.sh: podman with runc (crun fails in this sandbox), debootstrap for the base image
# stand-ins, and qemu-user to build and run the ARM images.
if [ "${DINODIA_IMAGE_DEPS:-0}" = "1" ]; then
  packages+=(podman buildah runc debootstrap qemu-user-static binfmt-support)
fi
if [ "${DINODIA_LINT_DEPS:-0}" = "1" ]; then
  packages+=(clang-format clang-tidy git)
fi
# Cross-building for the ARM hubs and running the result under qemu-user (scripts/test-arch.sh,
# docs/building.md).
if [ "${DINODIA_CROSS_DEPS:-0}" = "1" ]; then
  packages+=(crossbuild-essential-arm64 crossbuild-essential-armhf qemu-user-static binfmt-support
    debootstrap)
fi

# Node.js runs Home Assistant's own WebSocket client in the integration tests (tests/node). A
# machine may have Node from elsewhere (e.g. a vendor package that bundles npm): only add what
# is missing as a command.
if ! command -v node >/dev/null 2>&1; then packages+=(nodejs); fi
if ! command -v npm >/dev/null 2>&1; then packages+=(npm); fi

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

# The test's npm packages, exactly as package-lock.json pins them. npm keeps its own copy of the
# lock in node_modules/.package-lock.json: when that is newer than ours, nothing changed.
node_dir="$(cd "$(dirname "$0")/.." && pwd)/tests/node"
if [ ! -f "$node_dir/node_modules/.package-lock.json" ] ||
  [ "$node_dir/package-lock.json" -nt "$node_dir/node_modules/.package-lock.json" ]; then
  echo "Installing the Node test packages (npm ci in tests/node)"
  (cd "$node_dir" && npm ci --no-audit --no-fund --loglevel=error)
fi
