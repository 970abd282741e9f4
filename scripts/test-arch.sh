#!/usr/bin/env bash
# The unit and integration suites for a hub's ARM architecture, run on this machine: the agent,
# the protocol fakes and every test are cross-compiled with Debian's cross compiler against a
# Debian 12 sysroot (cross/make-sysroot.sh, cross/toolchain.cmake) and run under qemu-user; the
# kernel's binfmt_misc hands every ARM process the tests spawn (agent, fakes) to qemu as well.
#   ./scripts/test-arch.sh aarch64|armv7            unit + integration (all but soak and image)
#   ./scripts/test-arch.sh aarch64|armv7 --smoke    a quick subset: every unit test and a few
#                                                    integration tests per area (below)
# Environment:
#   BUILD_DIR=build-ARCH             where to build
#   SYSROOT_DIR=.cache/sysroot-ARCH  the sysroot (made when missing or out of date)
#   CTEST_ARGS="-R pattern"          extra ctest arguments, e.g. a smoke subset
#   DINODIA_TEST_TIME_SCALE=N        how much longer the tests wait for things to happen under
#                                    emulation (tests/support/time_scale.hpp); default 4
#   JOBS=2                           parallel build and test jobs
# Ends with the line "test-arch ARCH: N passed, M failed (build Ss, tests Ss, ...)"; the exit status is
# non-zero when the build or any test fails. Results and timings: docs/building.md.
set -euo pipefail
cd "$(dirname "$0")/.."
ARCH="${1:?usage: test-arch.sh aarch64|armv7 [--smoke]}"
SMOKE="${2:-}"
if [ -n "$SMOKE" ] && [ "$SMOKE" != --smoke ]; then
  echo "test-arch.sh: unknown argument '$SMOKE' (expected --smoke)" >&2
  exit 2
fi
# shellcheck source=cross/arch.sh
. cross/arch.sh
case "$ARCH" in
  aarch64 | armv7) dinodia_arch "$ARCH" ;;
  *)
    echo "test-arch.sh: ARCH must be aarch64 or armv7, not '$ARCH'" >&2
    exit 2
    ;;
esac
BUILD_DIR="${BUILD_DIR:-build-$ARCH}"
SYSROOT_DIR="${SYSROOT_DIR:-.cache/sysroot-$ARCH}"
mkdir -p "$(dirname "$SYSROOT_DIR")"
SYSROOT_DIR="$(cd "$(dirname "$SYSROOT_DIR")" && pwd)/$(basename "$SYSROOT_DIR")"
JOBS="${JOBS:-2}"
export DINODIA_TEST_TIME_SCALE="${DINODIA_TEST_TIME_SCALE:-4}"
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi

DINODIA_CROSS_DEPS=1 ./scripts/install-deps.sh

# A fresh machine or container may have binfmt_misc unmounted or qemu's handlers not registered.
$SUDO ./scripts/enable-binfmt.sh
./cross/make-sysroot.sh "$ARCH" "$SYSROOT_DIR" tests
# Processes started through binfmt_misc (the agent and fakes the tests spawn) find their loader and
# libraries in the sysroot; CTest starts the test binaries with qemu -L <sysroot> itself.
export QEMU_LD_PREFIX="$SYSROOT_DIR"
if ! "$SYSROOT_DIR/usr/bin/true"; then
  echo "test-arch.sh: an $ARCH binary does not run here (binfmt_misc handler for $QEMU?)" >&2
  exit 1
fi

# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
build_start=$SECONDS
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_TOOLCHAIN_FILE="$PWD/cross/toolchain.cmake" -DDINODIA_SYSROOT="$SYSROOT_DIR" >/dev/null
# tests/all: the agent, the fakes and every test; the benchmark's load generators are left out.
cmake --build "$BUILD_DIR" -j "$JOBS" --target tests/all
build_seconds=$((SECONDS - build_start))

# The smoke subset: every unit test (the 32-bit arithmetic, clock, parsers, buffers, splice), and
# the integration tests that move large and odd bodies both ways, parse and sign with the platform
# (pairing, clock skew, legacy upgrade, rotation), count usage by timestamps and across kill -9,
# and run the agent as the container does. About 4 minutes per architecture here with a warm
# ccache (docs/building.md).
smoke=(
  '^unit/'
  'http_relay_test:bodies are relayed both ways'
  'http_relay_test:hostile input gets a 4xx'
  'http_relay_test:kiosk 1-second cycle'
  'ws_relay_test:a 20 MiB message from HA'
  'ws_relay_test:frames are relayed byte-exact'
  'ws_relay_test:the kiosk.s 1-second WebSocket step'
  'bridge_behaviour_test:home-assistant-js-websocket: connect'
  'platform_sync_test:first pairing'
  'platform_sync_test:skewed hub clock: offset logged'
  'platform_sync_test:upgrade from the legacy agent'
  'platform_sync_test:a rotated-out token is refused'
  'telemetry_test:electric usage, LAN address and areas'
  'telemetry_test:heating: legacy'
  'telemetry_test:usage survives kill -9'
  'fault_injection_test:Supervisor resets the connection mid-body'
  'addon_container_test:the agent serves the health check'
)
selection=()
if [ -n "$SMOKE" ]; then
  selection=(-R "$(IFS='|' && echo "${smoke[*]}")")
fi

test_start=$SECONDS
log="$BUILD_DIR/test-arch.log"
status=0
# The soak and the add-on image tests are not part of the default run (as in scripts/test.sh).
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -LE 'soak|image' "${selection[@]}" \
  ${CTEST_ARGS:-} | tee "$log" || status=$?
test_seconds=$((SECONDS - test_start))

# CTest's summary: "95% tests passed, 2 tests failed out of 40".
summary=$(grep -E '^[0-9]+% tests passed, [0-9]+ tests? failed out of [0-9]+' "$log" || true)
if [ -z "$summary" ]; then
  echo "test-arch $ARCH: no test ran (build ${build_seconds}s, tests ${test_seconds}s)"
  exit 1
fi
failed=$(echo "$summary" | sed -E 's/.* ([0-9]+) tests? failed.*/\1/')
total=$(echo "$summary" | sed -E 's/.* out of ([0-9]+).*/\1/')
if [ "$failed" -ne 0 ]; then
  echo "== failed on $ARCH:"
  sed -n '/^The following tests FAILED:/,$p' "$log" | sed -n '2,$p' | grep -E '^\s+[0-9]+ - ' || true
  status=1
fi
echo "test-arch $ARCH${SMOKE:+ (smoke)}: $((total - failed)) passed, $failed failed" \
  "(build ${build_seconds}s, tests ${test_seconds}s, time scale $DINODIA_TEST_TIME_SCALE," \
  "commit $(git rev-parse --short HEAD 2>/dev/null || echo unknown))"
exit "$status"
