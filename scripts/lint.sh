#!/usr/bin/env bash
# Style and static checks.
#   ./scripts/lint.sh          clang-format over every tracked .cpp/.hpp (a few seconds)
#   ./scripts/lint.sh --tidy   the same, then clang-tidy (the repo's .clang-tidy) over the
#                              project's own sources: common ha_bridge ha_client
#                              platform_client telemetry agent (minutes: each file parses
#                              Boost.Beast/Asio)
# Environment:
#   LINT_BUILD_DIR=build-lint  where cmake writes compile_commands.json for clang-tidy (only
#                              configured, nothing is built: the project generates no headers)
#   JOBS=$(nproc)              parallel clang-tidy processes
# Exit status: non-zero if a file is not clang-format clean or clang-tidy reports anything
# (every warning counts as an error here; a deliberate exception is a NOLINT with its reason).
# Needs the Debian packages clang-format and clang-tidy (checked with version 14).
set -euo pipefail
cd "$(dirname "$0")/.."

tidy=0
for arg in "$@"; do
  case "$arg" in
    --tidy) tidy=1 ;;
    -h | --help)
      sed -n '2,13p' "$0"
      exit 0
      ;;
    *)
      echo "lint.sh: unknown argument '$arg' (expected --tidy)" >&2
      exit 2
      ;;
  esac
done

need() {
  if ! command -v "$1" >/dev/null 2>&1; then
    echo "lint.sh: $1 not found (Debian: apt-get install $1)" >&2
    exit 2
  fi
}

need clang-format
mapfile -t cxx_files < <(git ls-files '*.cpp' '*.hpp')
echo "clang-format: ${#cxx_files[@]} files"
# --Werror turns each needed change into an error; the output names the file and line.
clang-format --dry-run --Werror "${cxx_files[@]}"

if [ "$tidy" = "0" ]; then exit 0; fi

need clang-tidy
need cmake
BUILD_DIR="${LINT_BUILD_DIR:-build-lint}"
JOBS="${JOBS:-$(nproc)}"
# No -G: an existing build dir keeps its generator; any generator writes the database.
cmake -S . -B "$BUILD_DIR" -DCMAKE_EXPORT_COMPILE_COMMANDS=ON >/dev/null
mapfile -t own_sources < <(git ls-files -- 'common/*.cpp' 'ha_bridge/*.cpp' 'ha_client/*.cpp' \
  'platform_client/*.cpp' 'telemetry/*.cpp' 'agent/*.cpp')
echo "clang-tidy: ${#own_sources[@]} files, $JOBS at a time ($(clang-tidy --version | grep -o 'version [0-9.]*'))"
# One clang-tidy per file: a failing file does not stop the others, and xargs exits non-zero
# (123) if any of them failed (pipefail passes that on). The "N warnings generated." lines
# count the warnings in system and library headers, which HeaderFilterRegex leaves out: they
# are only noise here.
printf '%s\n' "${own_sources[@]}" |
  xargs -P "$JOBS" -n 1 clang-tidy -p "$BUILD_DIR" --quiet --warnings-as-errors='*' 2>&1 |
  { grep -Ev '^[0-9]+ warnings? generated\.$' || true; }
echo "clang-tidy: clean"
