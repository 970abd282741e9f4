# shellcheck shell=bash
# Sourced by bench/run.sh, bench/abuse.sh, bench/home.sh and scripts/update-symbol-order.sh: a
# work directory and the background processes a script starts (append their PIDs to PIDS), both
# cleaned up when it exits, and wait_port (scripts/wait-port.sh).
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

# The benchmarks' stack (bench/run.sh, bench/abuse.sh): the Home Assistant stand-in with 300
# entities and the agent as a LAN bridge only, one plain hub token, bound to loopback. Sets
# SUPERVISOR_TOKEN, HUB_TOKEN, FAKE_PORT, AGENT_PID and AGENT_PORT. `soft_nofile`, when given,
# is the agent's soft descriptor limit at start (a home's 1024; the agent raises its own).
# `options`, when given, are more members of options.json (e.g. '"kiosk_relief": false').
start_bridge_stack() {  # build_dir, name, [soft_nofile], [options]
  local build_dir="$1" name="$2" soft_nofile="${3:-}" options="${4:+, $4}"
  SUPERVISOR_TOKEN="$name-supervisor-token-$$"
  HUB_TOKEN="$name-hub-token-$$"
  "$build_dir/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 \
    >"$WORK/fake.log" 2>&1 &
  PIDS+=($!)
  FAKE_PORT=$(wait_port "$WORK/fake.log" LISTENING)
  mkdir -p "$WORK/data"
  cat >"$WORK/options.json" <<JSON
{"port": 0, "hub_tokens": ["$HUB_TOKEN"], "log_level": "info", "platform_sync_enabled": false,
 "heating_usage_tracking_enabled": false, "electric_usage_tracking_enabled": false$options}
JSON
  (
    if [ -n "$soft_nofile" ]; then ulimit -Sn "$soft_nofile"; fi
    exec env DINODIA_OPTIONS_PATH="$WORK/options.json" DINODIA_DATA_DIR="$WORK/data" \
      DINODIA_SUPERVISOR_URL="http://127.0.0.1:$FAKE_PORT" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
      DINODIA_BIND_ADDRESS=127.0.0.1 "$build_dir/agent/dinodia-hub-agent"
  ) >"$WORK/agent.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  # shellcheck disable=SC2034 # read by the sourcing script
  AGENT_PORT=$(wait_port "$WORK/agent.log" "Listening")
}

# The platform stand-in over TLS, as a home's sync reaches the platform (bench/home.sh,
# scripts/update-symbol-order.sh): a self-signed certificate for 127.0.0.1 in
# $WORK/platform.crt (the agent trusts it through SSL_CERT_FILE) and the serial provisioned.
# Sets PLATFORM (its https URL) and BOOTSTRAP (the hub's bootstrap secret).
start_tls_platform() {  # fake_platform binary, serial
  openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=platform \
    -addext subjectAltName=IP:127.0.0.1 -keyout "$WORK/platform.key" -out "$WORK/platform.crt" \
    >/dev/null 2>&1
  "$1" --port 0 --backend aws --tls-cert "$WORK/platform.crt" --tls-key "$WORK/platform.key" \
    >"$WORK/fake_platform.log" 2>&1 &
  PIDS+=($!)
  PLATFORM="https://127.0.0.1:$(wait_port "$WORK/fake_platform.log" LISTENING)"
  # shellcheck disable=SC2034 # read by the sourcing script
  BOOTSTRAP=$(curl -sf --cacert "$WORK/platform.crt" -X POST "$PLATFORM/_fake/provision" \
    -H 'content-type: application/json' -d "{\"serial\":\"$2\",\"linkedHome\":true}" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["bootstrapSecret"])')
}
