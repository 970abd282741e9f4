# shellcheck shell=bash
# Sourced by bench/run.sh and scripts/update-symbol-order.sh: a work directory and the background
# processes a script starts (append their PIDs to PIDS), both cleaned up when it exits, and
# wait_port (scripts/wait-port.sh).
WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# shellcheck source=scripts/wait-port.sh
. "$(dirname "${BASH_SOURCE[0]}")/wait-port.sh"
