#!/usr/bin/env bash
# The whole test suite under AddressSanitizer + UndefinedBehaviorSanitizer (gcc), then a short
# run of every libFuzzer target (clang). Called by .ci/run after the normal test command.
#   ./scripts/test-sanitized.sh [fuzz-seconds-per-target]   default 20; 0 skips fuzzing
# Environment:
#   ASAN_BUILD_DIR=build-asan   build dir for the sanitized build
#   CTEST_ARGS="-R pattern"     extra ctest arguments
#   JOBS=$(nproc)               parallel build and test jobs
# Exit status: non-zero if the build fails, any test fails (a sanitizer report aborts the
# process that hit it: the test binary itself or the agent/fake it spawned), or fuzzing finds a
# problem.
set -euo pipefail
cd "$(dirname "$0")/.."
FUZZ_SECONDS="${1:-20}"
BUILD_DIR="${ASAN_BUILD_DIR:-build-asan}"
JOBS="${JOBS:-$(nproc)}"

DINODIA_SANITIZER_DEPS=1 ./scripts/install-deps.sh
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
# No benchmark tools (no test runs them); a warning fails the build, as in scripts/test.sh.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DDINODIA_SANITIZE=ON \
  -DDINODIA_BUILD_TESTS=ON -DDINODIA_BUILD_BENCH=OFF -DDINODIA_WERROR=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$JOBS"

# Exported so that the agent and the fakes the integration tests spawn inherit them. abort_on_error
# turns a report into SIGABRT, which the tests see as a crashed process. The agent's ASan report
# goes to its stderr, which the test support captures; log_path keeps a copy per process too.
mkdir -p "$BUILD_DIR/sanitizer-logs"
rm -f "$BUILD_DIR"/sanitizer-logs/*
export ASAN_OPTIONS="detect_leaks=1:abort_on_error=1:log_path=$PWD/$BUILD_DIR/sanitizer-logs/asan"
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:log_path=$PWD/$BUILD_DIR/sanitizer-logs/ubsan"
status=0
# Soak and long benchmarks carry the `soak` label and are not part of this run either.
# Sanitized processes are 2-3x slower: tests without their own TIMEOUT get 600 s.
# shellcheck disable=SC2086
ctest --test-dir "$BUILD_DIR" --output-on-failure -j "$JOBS" -LE soak --timeout 600 \
  ${CTEST_ARGS:-} || status=$?

if compgen -G "$BUILD_DIR/sanitizer-logs/*" >/dev/null; then
  echo "== sanitizer reports (from the tests and every process they spawned):"
  for f in "$BUILD_DIR"/sanitizer-logs/*; do
    echo "--- $f"
    head -n 60 "$f"
  done
  status=1
fi
if [ "$status" -ne 0 ]; then
  echo "sanitized test run FAILED"
fi

if [ "$FUZZ_SECONDS" != "0" ]; then
  FUZZ_SKIP_DEPS=1 ./scripts/fuzz.sh "$FUZZ_SECONDS" || status=1
fi
exit "$status"
