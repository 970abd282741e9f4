#!/usr/bin/env bash
# Builds the libFuzzer targets (clang, ASan + UBSan) and runs each for a fixed time.
#   ./scripts/fuzz.sh [seconds-per-target]     default 300
# Environment:
#   FUZZ_BUILD_DIR=build-fuzz   build dir (its own: every object there is instrumented)
#   FUZZ_TARGETS="fuzz_options ..."   subset to run (default: all six)
#   FUZZ_NICE=0                 nice level for the fuzzing runs (shared machines: 19)
#   FUZZ_SKIP_DEPS=1            do not run install-deps.sh
#   FUZZ_ARGS="..."             extra libFuzzer flags, e.g. "-fork=1 -ignore_crashes=1" to keep
#                               going past a known finding (crash inputs still land in artifacts/)
# Exit status: non-zero if a target found a crash, leak, sanitizer report or broken invariant
# (the input is kept in $FUZZ_BUILD_DIR/artifacts/<target>/), or if the build failed.
# Seeds come from fuzz/corpus/<target>/ (read-only); inputs the fuzzer finds interesting are
# kept in $FUZZ_BUILD_DIR/corpus/<target>/ so later runs start from them. Inputs that once broke
# a target live in fuzz/regressions/<target>/ and are replayed before each run.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-300}"
BUILD_DIR="${FUZZ_BUILD_DIR:-build-fuzz}"
read -r -a TARGETS <<<"${FUZZ_TARGETS:-fuzz_options fuzz_platform_response fuzz_path_policy fuzz_ws_auth fuzz_http_head fuzz_ws_filter_diff}"
read -r -a EXTRA_ARGS <<<"${FUZZ_ARGS:-}"
NICE="${FUZZ_NICE:-0}"

if [ "${FUZZ_SKIP_DEPS:-0}" != "1" ]; then
  DINODIA_SANITIZER_DEPS=1 ./scripts/install-deps.sh
fi
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
CC=clang CXX=clang++ cmake -S . -B "$BUILD_DIR" -G Ninja -DDINODIA_FUZZ=ON \
  -DDINODIA_BUILD_TESTS=OFF -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
nice -n "$NICE" cmake --build "$BUILD_DIR" -j "$(nproc)" --target "${TARGETS[@]}"

# Request targets may be as long as the bridge's header limit (32 KiB); the other inputs are
# small in practice, and a larger -max_len mostly slows the search down.
max_len_for() {
  case "$1" in
    fuzz_path_policy | fuzz_http_head) echo 32768 ;;
    *) echo 16384 ;;
  esac
}

export ASAN_OPTIONS="${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}"
export UBSAN_OPTIONS="${UBSAN_OPTIONS:-halt_on_error=1:print_stacktrace=1}"
mkdir -p "$BUILD_DIR/logs"
failed=()
for target in "${TARGETS[@]}"; do
  artifacts="$BUILD_DIR/artifacts/$target"
  corpus="$BUILD_DIR/corpus/$target"
  log="$BUILD_DIR/logs/$target.log"
  mkdir -p "$artifacts" "$corpus"
  # Inputs that once failed (fuzz/regressions/<target>/) are replayed first: each must pass.
  regressions=(fuzz/regressions/"$target"/*)
  if [ -e "${regressions[0]}" ]; then
    echo "== $target: replaying ${#regressions[@]} regression input(s)"
    if ! nice -n "$NICE" "$BUILD_DIR/fuzz/$target" "${regressions[@]}" >"$log.regressions" 2>&1; then
      echo "!! $target FAILED on a regression input (log: $log.regressions)"
      grep -E 'Running:|ERROR: |runtime error|FUZZ INVARIANT|SUMMARY' "$log.regressions" |
        head -n 6 || true
      failed+=("$target")
    fi
  fi
  echo "== $target: ${SECONDS_PER_TARGET}s (log: $log)"
  status=0
  nice -n "$NICE" "$BUILD_DIR/fuzz/$target" -max_total_time="$SECONDS_PER_TARGET" \
    -max_len="$(max_len_for "$target")" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${EXTRA_ARGS[@]}" "$corpus" "fuzz/corpus/$target" >"$log" 2>&1 || status=$?
  # The last status line: "#N DONE cov: C ft: F corp: ..." or the crash report.
  grep -E '^#[0-9]+[[:space:]]+(DONE|pulse|NEW|REDUCE)' "$log" | tail -n 1 || true
  grep -E '^stat::number_of_executed_units' "$log" || true
  if [ "$status" -ne 0 ]; then
    echo "!! $target FAILED (exit $status); artifacts in $artifacts/"
    grep -E 'ERROR: |runtime error|FUZZ INVARIANT|SUMMARY' "$log" | head -n 5 || true
    failed+=("$target")
  fi
done

if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}"
  exit 1
fi
echo "fuzzing: all ${#TARGETS[@]} targets ran ${SECONDS_PER_TARGET}s clean"
