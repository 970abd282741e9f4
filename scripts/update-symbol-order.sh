#!/usr/bin/env bash
# Writes agent/symbol-order.txt, the order in which lld lays out the agent's code
# (DINODIA_CODE_LAYOUT in CMakeLists.txt): every function of the binary that ran while the agent
# started and served a home's traffic, hottest first. The kernel maps code 64 KiB at a time
# around each page a process touches, so this order decides how much of the binary is resident.
#
# The profile is two runs of the Release, statically linked binary (as the add-on image and the
# benchmark build it) under callgrind: the LAN bridge alone, as the benchmark runs it, and as in a
# home, with platform sync over TLS to the platform stand-in and usage tracking on (the home's
# registries and events of bench/home_fixture.py). Each run has two phases, counted apart:
# start-up (options, pairing, the first cycles, the trackers' seeding) until the agent has
# settled, and then the settled agent at work: the bridge serving the benchmark's workloads
# (GET /api/, /api/states, camera_proxy, one kiosk's 1-second cycle, WebSocket sessions); the
# home syncing, tracking events and refreshing its registries for 60 s with no LAN client, as
# bench/home.sh measures it.
# Settled code comes first, start-up-only code after it: once settled the agent gives back the
# pages only start-up ran (common/code_pages.hpp), and what maps back in is the settled range
# alone. The order: what the settled home runs of the bridge's code (start-up or settled), then
# the rest of the bridge's code, then the settled home's own, then the home's start-up. A bridge
# touches the first two parts from the start; a settled home with no client on the LAN the first
# and the third. Shutdown's code is left out.
#
# Re-run it after changes to the relay or to start-up and commit the new file: names the list no
# longer matches are only placed at the default spot, and the idle RSS in bench/run.sh creeps up.
# The test suite says when: tests/layout/check_symbol_order.py (CTest layout/symbol_order) fails
# once too few of the project's hot-path names still exist in the built agent, and prints this
# command (docs/building.md#code-layout).
#
#   ./scripts/update-symbol-order.sh
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DINODIA_BENCH_DEPS=1 ./scripts/install-deps.sh
BENCH_DIR="${BENCH_DIR:-build-bench}"
TEST_DIR="${BUILD_DIR:-build}"
cmake -S . -B "$BENCH_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
cmake --build "$BENCH_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha bench_ws_sessions \
  bench_kiosk_profile >/dev/null
# The platform stand-in uses cpp-httplib, which the statically linked tree does not build.
cmake -S . -B "$TEST_DIR" -G Ninja >/dev/null
cmake --build "$TEST_DIR" -j "$(nproc)" --target fake_platform >/dev/null

# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

SUPERVISOR_TOKEN="profile-supervisor-$$"
HUB_TOKEN="profile-hub-$$"
SERIAL="DIN-GB-PROFILE01"

"$BENCH_DIR/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 >"$WORK/fake_ha.log" 2>&1 &
PIDS+=($!)
HA_PORT=$(wait_port "$WORK/fake_ha.log" LISTENING)

set_home_registries "http://127.0.0.1:$HA_PORT"
start_tls_platform "$TEST_DIR/tests/fake_platform" "$SERIAL"

# One profiled run: the agent with the given options under callgrind, serving the workloads.
profile() {  # name, options JSON, lan (serve the benchmark's workloads once settled) or quiet
  local dir="$WORK/$1"
  mkdir -p "$dir/data"
  echo "$2" >"$dir/options.json"
  DINODIA_OPTIONS_PATH="$dir/options.json" DINODIA_DATA_DIR="$dir/data" \
    DINODIA_SUPERVISOR_URL="http://127.0.0.1:$HA_PORT" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
    DINODIA_BIND_ADDRESS=127.0.0.1 DINODIA_SYNC_INTERVAL_SECONDS=3 \
    DINODIA_TELEMETRY_POLL_SECONDS=3 DINODIA_SETTLE_SECONDS=25 \
    SSL_CERT_FILE="$WORK/platform.crt" \
    valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$dir/callgrind.out" "$BENCH_DIR/agent/dinodia-hub-agent" \
    >"$dir/agent.log" 2>&1 &
  local pid=$!
  PIDS+=("$pid")
  local port
  port=$(wait_port "$dir/agent.log" "Listening" 60)
  local agent="http://127.0.0.1:$port"
  # Start-up ends when the agent says it has settled (under callgrind it is slow: 25 s).
  for _ in $(seq 1 600); do grep -q "Settled:" "$dir/agent.log" && break; sleep 0.1; done
  grep -q "Settled:" "$dir/agent.log" || { echo "$1: never settled" >&2; cat "$dir/agent.log" >&2; exit 1; }
  callgrind_control --dump "$pid" >/dev/null  # callgrind.out.1: start-up; counters restart
  for _ in $(seq 1 100); do [ -s "$dir/callgrind.out.1" ] && break; sleep 0.1; done
  python3 "$ROOT/bench/home_fixture.py" events "$HA_PORT" 4 "$dir/events.stop" >/dev/null &
  PIDS+=($!)
  local seconds path
  if [ "$3" = lan ]; then
    while read -r seconds path; do
      wrk -t1 -c2 -d"$seconds"s -H "Authorization: Bearer $HUB_TOKEN" "$agent$path" >/dev/null
    done <<<"3 /api/
3 /api/states
2 /api/camera_proxy/camera.front_door?size=262144"
    "$BENCH_DIR/bench/bench_kiosk_profile" 1 6 "agent=127.0.0.1:$port::/api/websocket:$HUB_TOKEN" >/dev/null
    "$BENCH_DIR/bench/bench_ws_sessions" 127.0.0.1 "$port" /api/websocket "$HUB_TOKEN" 2 3 >/dev/null
  else
    # Long enough for the trackers' and the areas' registry refreshes (every minute here, see
    # the home's options below), which a home runs every 5 to 30 minutes for good.
    sleep 60
  fi
  touch "$dir/events.stop"
  callgrind_control --dump "$pid" >/dev/null  # callgrind.out.2: settled
  for _ in $(seq 1 100); do [ -s "$dir/callgrind.out.2" ] && break; sleep 0.1; done
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null || true
}

# The LAN bridge alone (the benchmark's configuration), then a home's: platform sync over TLS and
# usage tracking on top, with no client on the LAN once settled.
profile bridge '{"port": 0, "hub_tokens": ["'"$HUB_TOKEN"'"], "log_level": "info",
  "platform_sync_enabled": false, "heating_usage_tracking_enabled": false,
  "electric_usage_tracking_enabled": false}' lan
profile home '{"port": 0, "hub_tokens": ["'"$HUB_TOKEN"'"], "log_level": "info",
  "platform_sync_enabled": true, "platform_base_url": "'"$PLATFORM"'",
  "hub_agent_id": "'"$SERIAL"'", "hub_agent_secret": "'"$BOOTSTRAP"'",
  "electric_usage_label_refresh_minutes": 1, "heating_usage_label_refresh_minutes": 1,
  "ha_area_snapshot_refresh_minutes": 1}' quiet
grep -q "Paired with platform" "$WORK/home/agent.log" ||
  { echo "the agent never paired with the platform stand-in:" >&2; cat "$WORK/home/agent.log" >&2; exit 1; }

# Self cost per function of the binary, hottest first (a cost line right after `calls=` is the
# callee's inclusive cost and belongs to the callee); the names are the symbols lld matches
# (callgrind runs with --demangle=no).
python3 - "$(readlink -f "$BENCH_DIR/agent/dinodia-hub-agent")" "$WORK/bridge/callgrind.out.1" \
  "$WORK/bridge/callgrind.out.2" "$WORK/home/callgrind.out.1" "$WORK/home/callgrind.out.2" \
  >"$ROOT/agent/symbol-order.txt" <<'PY'
import collections, re, sys
binary, profiles = sys.argv[1], sys.argv[2:]
def functions(*phases):
    obj = fn = None
    after_call = False
    cost = collections.Counter()
    for line in (l for phase in phases for l in open(phase, errors="replace")):
        if line.startswith("ob="):
            obj = line[3:].strip()
        elif line.startswith("fn="):
            # callgrind names a recursive call's frames name'2, name'3, ...
            fn = re.sub(r"'[0-9]+$", "", line[3:].strip())
        elif line.startswith("calls="):
            after_call = True
        elif line[:1].isdigit() or line[:1] in "+-*":
            if after_call:
                after_call = False
            elif obj == binary and fn:
                fields = line.split()
                if len(fields) >= 2:
                    cost[fn] += int(fields[1])
    return [name for name, _ in sorted(cost.items(), key=lambda item: (-item[1], item[0]))]
# profiles: the bridge's start-up and settled phases, then the home's. First what the settled
# home runs of the bridge's code, then the rest of the bridge's, then the settled home's own,
# then the home's start-up.
bridge = functions(profiles[0], profiles[1])
home_settled = set(functions(profiles[3]))
order = [n for n in bridge if n in home_settled] + [n for n in bridge if n not in home_settled] + \
    functions(profiles[3]) + functions(profiles[2])
listed = set()
for name in order:
    if name not in listed:
        listed.add(name)
        print(name)
PY
echo "agent/symbol-order.txt: $(wc -l <"$ROOT/agent/symbol-order.txt") functions"
