#!/usr/bin/env bash
# The test command: installs dependencies, builds everything, runs the whole test suite.
#   ./scripts/test.sh            # unit + integration tests (what CI runs)
# Environment:
#   BUILD_DIR=build              where to build
#   CTEST_ARGS="-R pattern"      extra ctest arguments
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR="${BUILD_DIR:-build}"
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
# A warning fails the build (DINODIA_WERROR): none may land.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo -DDINODIA_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)"
# Soak and long benchmarks carry the `soak` label and are not part of the default run.
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$(nproc)" -LE soak ${CTEST_ARGS:-}
