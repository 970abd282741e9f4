#!/usr/bin/env bash
# Builds the agent and runs it against local stand-ins, so a newcomer sees a real request go
# through on a fresh Debian 12 machine:
#   * tests/fakes/fake_ha        Home Assistant Core behind the Supervisor's proxy (REST + WebSocket)
#   * tests/fakes/fake_platform  the Dinodia platform (pairing, token-state, token rotation)
#   * dinodia-hub-agent          pairs with the platform, syncs the hub-token hashes and serves
#                                the LAN bridge
# Then it prints curl lines to try with the token the platform hands to the apps. Ctrl-C stops it.
set -euo pipefail
cd "$(dirname "$0")/.."
./scripts/install-deps.sh
BUILD_DIR="${BUILD_DIR:-build}"
# shellcheck source=scripts/ccache-env.sh
. scripts/ccache-env.sh
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha fake_platform

WORK=$(mktemp -d /tmp/dinodia-demo-XXXXXX)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  echo "stopped; logs were in $WORK"
}
trap cleanup EXIT INT TERM

# shellcheck source=scripts/wait-port.sh
. scripts/wait-port.sh

SUPERVISOR_TOKEN="demo-supervisor-$RANDOM$RANDOM"
SERIAL="DIN-GB-DEMO0001"

"$BUILD_DIR/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 >"$WORK/fake_ha.log" 2>&1 &
PIDS+=($!)
HA_PORT=$(wait_port "$WORK/fake_ha.log" LISTENING 30)

"$BUILD_DIR/tests/fake_platform" --port 0 --backend aws >"$WORK/fake_platform.log" 2>&1 &
PIDS+=($!)
PLATFORM_PORT=$(wait_port "$WORK/fake_platform.log" LISTENING 30)
PLATFORM="http://127.0.0.1:$PLATFORM_PORT"

# The installer's provisioning step: the platform creates the hub and its bootstrap secret.
BOOTSTRAP=$(curl -sf -X POST "$PLATFORM/_fake/provision" -H 'content-type: application/json' \
  -d "{\"serial\":\"$SERIAL\",\"linkedHome\":true}" |
  python3 -c 'import json,sys; print(json.load(sys.stdin)["bootstrapSecret"])')

mkdir -p "$WORK/data"
cat >"$WORK/data/options.json" <<JSON
{"port": ${DEMO_PORT:-8099}, "platform_sync_enabled": true, "platform_base_url": "$PLATFORM",
 "hub_agent_id": "$SERIAL", "hub_agent_secret": "$BOOTSTRAP", "log_level": "info"}
JSON
DINODIA_OPTIONS_PATH="$WORK/data/options.json" DINODIA_DATA_DIR="$WORK/data" \
  DINODIA_SUPERVISOR_URL="http://127.0.0.1:$HA_PORT" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
  DINODIA_SYNC_INTERVAL_SECONDS=5 \
  "$BUILD_DIR/agent/dinodia-hub-agent" >"$WORK/agent.log" 2>&1 &
PIDS+=($!)
AGENT_PORT=$(wait_port "$WORK/agent.log" "Listening" 30)

# The platform publishes the token once the agent has acknowledged it (one sync later).
TOKEN=""
for _ in $(seq 1 100); do
  TOKEN=$(curl -s "$PLATFORM/_fake/published-token?serial=$SERIAL" |
    python3 -c 'import json,sys; print(json.load(sys.stdin).get("token",""))' 2>/dev/null || true)
  [ -n "$TOKEN" ] && break
  sleep 0.2
done
[ -n "$TOKEN" ] || { echo "the platform did not publish a token"; cat "$WORK/agent.log"; exit 1; }

echo
echo "== The agent paired with the platform stand-in and accepts the token it published =="
sed 's/^/   /' "$WORK/agent.log" | head -12
echo
echo "== A request from a kiosk in Home mode, through the agent to Home Assistant =="
echo "curl -s -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$AGENT_PORT/api/"
curl -s -H "Authorization: Bearer $TOKEN" "http://127.0.0.1:$AGENT_PORT/api/"
echo
echo
echo "Try also:"
echo "  curl -s -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$AGENT_PORT/api/states | head -c 300"
echo "  curl -s -i http://127.0.0.1:$AGENT_PORT/api/states        # no token: 401"
echo "  curl -s -i -H 'Authorization: Bearer $TOKEN' http://127.0.0.1:$AGENT_PORT/api/history/period  # 403"
echo "  DINODIA_DATA_DIR=$WORK/data DINODIA_OPTIONS_PATH=$WORK/data/options.json $BUILD_DIR/agent/dinodia-hub-agent status"
echo
echo "Logs: $WORK (agent.log, fake_ha.log, fake_platform.log). Ctrl-C stops everything."
wait
