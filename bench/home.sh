#!/usr/bin/env bash
# Home configuration memory (not in CI): the agent as a home runs it, not the bridge alone.
# Platform sync over TLS to the platform stand-in (tests/fakes/fake_platform with a self-signed
# certificate trusted through SSL_CERT_FILE, bootstrap secret from /_fake/provision), heating and
# electric usage tracking on, against the Home Assistant stand-in (tests/fakes/fake_ha, 300
# entities) whose registries make 5 climate entities (1 boiler, 4 radiators) and 20 lights and
# switches tracked. Measures:
#   idle    VmRSS and RssAnon after start-up, the first pairing, the agent's settling (it gives
#           back the code only start-up ran, common/code_pages.hpp: after 5 minutes in a home,
#           SETTLE_SECONDS here, default 10, as the sync is accelerated too) and IDLE_CYCLES more
#           sync cycles
#   day     the same after DAY_CYCLES accelerated sync cycles (720 = a day at the 2-minute
#           cadence; DINODIA_SYNC_INTERVAL_SECONDS=1, DINODIA_TELEMETRY_POLL_SECONDS=1) while
#           state_changed events for the tracked entities arrive at EVENT_RATE per second
#   peak    VmHWM (the kernel's high-water mark of the process after its one re-exec) and the
#           highest RssAnon sampled every 200 ms
# and prints RSS every SAMPLE_EVERY cycles, with the least-squares slope of RssAnon over the
# second half of the day (growth). Loopback only; about 13 minutes for the default day.
#
#   ./bench/home.sh                                   # Release, DINODIA_STATIC_DEPS, build-bench
#   BUILD_DIR=build-bench SKIP_BUILD=1 ./bench/home.sh
#   DAY_CYCLES=60 ./bench/home.sh                     # a short run
#   PAUSE_AT_IDLE=1 ./bench/home.sh                   # stop after idle for smaps/gdb/heaptrack
# Other knobs: EVENT_RATE (events/s, default 4), IDLE_CYCLES (default 5), HA_RESTART_EVERY
# (cycles between Home Assistant restarts through /_fake/core, default 0 = none),
# PLATFORM_BUILD_DIR (the non-static tree that builds fake_platform, default build),
# AGENT_WRAPPER (a command put in front of the agent, e.g. heaptrack; set GLIBC_TUNABLES too).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR="${BUILD_DIR:-build-bench}"
PLATFORM_BUILD_DIR="${PLATFORM_BUILD_DIR:-build}"
IDLE_CYCLES="${IDLE_CYCLES:-5}"
SETTLE_SECONDS="${SETTLE_SECONDS:-10}"
DAY_CYCLES="${DAY_CYCLES:-720}"
EVENT_RATE="${EVENT_RATE:-4}"
SAMPLE_EVERY="${SAMPLE_EVERY:-60}"
HA_RESTART_EVERY="${HA_RESTART_EVERY:-0}"
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha >/dev/null
  # The platform stand-in uses cpp-httplib, which the statically linked tree does not build.
  cmake -S . -B "$PLATFORM_BUILD_DIR" -G Ninja >/dev/null
  cmake --build "$PLATFORM_BUILD_DIR" -j "$(nproc)" --target fake_platform >/dev/null
fi

# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

SUPERVISOR_TOKEN="home-supervisor-$$"
HUB_TOKEN="home-hub-$$"
SERIAL="DIN-GB-HOME0001"

"$BUILD_DIR/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 >"$WORK/fake_ha.log" 2>&1 &
PIDS+=($!)
HA_PORT=$(wait_port "$WORK/fake_ha.log" LISTENING)
HA="http://127.0.0.1:$HA_PORT"

# The home's registries (bench/home_fixture.py): 5 climate entities for heating, 20 lights and
# switches for electric usage.
set_home_registries "$HA"

start_tls_platform "$PLATFORM_BUILD_DIR/tests/fake_platform" "$SERIAL"

mkdir -p "$WORK/data"
cat >"$WORK/options.json" <<JSON
{"port": 0, "hub_tokens": ["$HUB_TOKEN"], "log_level": "info",
 "platform_sync_enabled": true, "platform_base_url": "$PLATFORM",
 "hub_agent_id": "$SERIAL", "hub_agent_secret": "$BOOTSTRAP",
 "heating_usage_tracking_enabled": true, "electric_usage_tracking_enabled": true}
JSON
# shellcheck disable=SC2086 # AGENT_WRAPPER is a command line
DINODIA_OPTIONS_PATH="$WORK/options.json" DINODIA_DATA_DIR="$WORK/data" \
  DINODIA_SUPERVISOR_URL="$HA" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
  DINODIA_BIND_ADDRESS=127.0.0.1 DINODIA_SYNC_INTERVAL_SECONDS=1 \
  DINODIA_TELEMETRY_POLL_SECONDS=1 DINODIA_SETTLE_SECONDS="$SETTLE_SECONDS" \
  SSL_CERT_FILE="$WORK/platform.crt" \
  ${AGENT_WRAPPER:-} "$BUILD_DIR/agent/dinodia-hub-agent" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=("$AGENT_PID")
wait_port "$WORK/agent.log" "Listening" 60 >/dev/null
# Under a wrapper the agent is the wrapper's child.
if [ -n "${AGENT_WRAPPER:-}" ]; then
  AGENT_PID=$(pgrep -n -P "$AGENT_PID" || echo "$AGENT_PID")
fi

status_kib() { awk -v f="$1:" '$1==f {print $2}' "/proc/$AGENT_PID/status"; }
cycles() {
  curl -sf --cacert "$WORK/platform.crt" "$PLATFORM/_fake/state?serial=$SERIAL" |
    python3 -c 'import json,sys; print(json.load(sys.stdin)["requestCounts"].get("token-state", 0))'
}
wait_cycles() {  # until the platform has seen $1 token-state requests
  while [ "$(cycles)" -lt "$1" ]; do
    kill -0 "$AGENT_PID" 2>/dev/null || { echo "agent exited" >&2; cat "$WORK/agent.log" >&2; exit 1; }
    sleep 1
  done
}
mib() { awk -v k="$1" 'BEGIN {printf "%.1f", k / 1024}'; }

# Highest RssAnon every 200 ms until $WORK/peak.stop exists.
(
  peak=0
  while [ ! -e "$WORK/peak.stop" ]; do
    r=$(awk '$1=="RssAnon:" {print $2}' "/proc/$AGENT_PID/status" 2>/dev/null || echo 0)
    [ "${r:-0}" -gt "$peak" ] && peak=$r && echo "$peak" >"$WORK/peak_anon"
    sleep 0.2
  done
) &
PIDS+=($!)

for marker in "Paired with platform" "Heating usage seeded initial entity states" \
  "Electric usage seeded initial entity states" "Usage tracking subscribed to state_changed" \
  "Settled: start-up code pages given back"; do
  for _ in $(seq 1 $((300 + SETTLE_SECONDS * 10))); do grep -q "$marker" "$WORK/agent.log" && break; sleep 0.1; done
  grep -q "$marker" "$WORK/agent.log" || { echo "never logged: $marker" >&2; cat "$WORK/agent.log" >&2; exit 1; }
done
START_CYCLES=$(cycles)
wait_cycles $((START_CYCLES + IDLE_CYCLES))
sleep 0.5
IDLE_RSS=$(status_kib VmRSS)
IDLE_ANON=$(status_kib RssAnon)
IDLE_FILE=$(status_kib RssFile)
echo "idle after $(cycles) cycles: VmRSS $IDLE_RSS KiB, RssAnon $IDLE_ANON KiB, RssFile $IDLE_FILE KiB, threads $(status_kib Threads)"
if [ "${PAUSE_AT_IDLE:-0}" = 1 ]; then
  echo "paused: agent PID $AGENT_PID, work $WORK, log $WORK/agent.log; touch $WORK/continue to go on"
  while [ ! -e "$WORK/continue" ]; do sleep 1; done
fi

# Home Assistant's events for the tracked entities at a steady rate (bench/home_fixture.py).
python3 "$ROOT/bench/home_fixture.py" events "$HA_PORT" "$EVENT_RATE" "$WORK/events.stop" \
  >"$WORK/events.count" &
EVENTS_PID=$!
PIDS+=("$EVENTS_PID")

DAY_START=$(cycles)
SAMPLES="$WORK/samples"
: >"$SAMPLES"
echo "cycle VmRSS_KiB RssAnon_KiB"
done_cycles=0
while [ "$done_cycles" -lt "$DAY_CYCLES" ]; do
  step=$SAMPLE_EVERY
  [ $((done_cycles + step)) -gt "$DAY_CYCLES" ] && step=$((DAY_CYCLES - done_cycles))
  if [ "$HA_RESTART_EVERY" -gt 0 ] && [ "$step" -gt "$HA_RESTART_EVERY" ]; then step=$HA_RESTART_EVERY; fi
  wait_cycles $((DAY_START + done_cycles + step))
  done_cycles=$((done_cycles + step))
  if [ "$HA_RESTART_EVERY" -gt 0 ] && [ $((done_cycles % HA_RESTART_EVERY)) -eq 0 ]; then
    curl -sf -X POST "$HA/_fake/core?running=0" >/dev/null; sleep 3
    curl -sf -X POST "$HA/_fake/core?running=1" >/dev/null
  fi
  echo "$done_cycles $(status_kib VmRSS) $(status_kib RssAnon)" | tee -a "$SAMPLES"
done
touch "$WORK/events.stop"
wait "$EVENTS_PID" || true
sleep 2
DAY_RSS=$(status_kib VmRSS)
DAY_ANON=$(status_kib RssAnon)
PEAK_RSS=$(status_kib VmHWM)
touch "$WORK/peak.stop"
sleep 0.5
PEAK_ANON=$(cat "$WORK/peak_anon")
EVENTS=$(cat "$WORK/events.count")
BODY_KEYS=$(curl -sf --cacert "$WORK/platform.crt" "$PLATFORM/_fake/state?serial=$SERIAL" |
  python3 -c 'import json,sys; b=json.load(sys.stdin)["lastBodies"].get("token-state") or {}
b=json.loads(b) if isinstance(b, str) else b
print(len((b.get("heatingUsage") or {}).get("devices", [])), len((b.get("electricUsage") or {}).get("devices", [])))')
SLOPE=$(python3 - "$SAMPLES" <<'PY'
import sys
rows = [tuple(map(int, l.split())) for l in open(sys.argv[1]) if l.strip()]
rows = rows[len(rows) // 2:]
if len(rows) < 2:
    print("n/a")
else:
    xs, ys = [r[0] for r in rows], [r[2] for r in rows]
    mx, my = sum(xs) / len(xs), sum(ys) / len(ys)
    den = sum((x - mx) ** 2 for x in xs)
    print(f"{sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 100:.1f}" if den else "n/a")
PY
)
FAILS=$(grep -c "Platform sync failed" "$WORK/agent.log" || true)

echo
echo "Home configuration: platform sync over TLS, heating (5 entities) and electric (20) tracking,"
echo "fake_ha 300 entities; $DAY_CYCLES cycles at 1 s, $EVENTS events at $EVENT_RATE/s; last upload: heating/electric rows $BODY_KEYS; $FAILS failed syncs"
echo
echo "| | VmRSS (MiB) | RssAnon, private (MiB) |"
echo "|---|---|---|"
echo "| idle (after pairing and $IDLE_CYCLES cycles) | $(mib "$IDLE_RSS") | $(mib "$IDLE_ANON") |"
echo "| after $DAY_CYCLES cycles (a day) | $(mib "$DAY_RSS") | $(mib "$DAY_ANON") |"
echo "| peak (VmHWM; RssAnon sampled every 200 ms) | $(mib "$PEAK_RSS") | $(mib "$PEAK_ANON") |"
echo
echo "RssAnon slope over the second half of the day: $SLOPE KiB per 100 cycles"
