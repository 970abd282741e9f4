#!/usr/bin/env bash
# LAN bridge benchmark: one run on loopback measuring, side by side,
#   direct  – the Home Assistant stand-in (tests/fakes/fake_ha) at /core/api/... (the Supervisor's
#             Core proxy path, Bearer SUPERVISOR_TOKEN)
#   agent   – dinodia-hub-agent on its LAN port at /api/... (Bearer hub token)
#   nginx   – nginx as a plain keep-alive reverse proxy in front of the same stand-in (the ceiling
#             for one extra hop)
# Workloads (issue #2): GET /api/ and GET /api/states (300 entities, ~200 KB) at 16 connections,
# camera_proxy 256 KiB at 8, WebSocket sessions per second at 16 (connect, auth,
# config/entity_registry/list, close); plus the agent's RSS idle and at peak.
# Kiosk profile (issue #6): K = 1, 3, 10 kiosks each running the 1-second Home-mode cycle
# (platform-contract B5) for KIOSK_SECONDS, with p50/p99 per step, the agent's CPU time per cycle,
# the Home Assistant requests per cycle and the agent's RSS.
# Prints a Markdown table and writes it to bench/results/latest.md.
#
#   ./bench/run.sh                 # DURATION=10 seconds per measurement by default
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION="${DURATION:-10}"
BUILD_DIR="${BUILD_DIR:-build-bench}"
DINODIA_BENCH_DEPS=1 ./scripts/install-deps.sh
# Linked as the add-on image links it (addon/Dockerfile): OpenSSL, SQLite and the C++ runtime
# inside the binary.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
cmake --build "$BUILD_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha bench_ws_sessions \
  bench_kiosk_profile >/dev/null
KIOSK_SECONDS="${KIOSK_SECONDS:-60}"  # 0 skips the kiosk profile

WORK=$(mktemp -d)
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null || true; done
  wait 2>/dev/null || true
  rm -rf "$WORK"
}
trap cleanup EXIT

SUPERVISOR_TOKEN="bench-supervisor-token-$$"
HUB_TOKEN="bench-hub-token-$$"

wait_port() {  # file, marker
  for _ in $(seq 1 200); do
    if grep -q "$2" "$1" 2>/dev/null; then
      grep -m1 "$2" "$1" | sed -E 's/.*(LISTENING |port: )([0-9]+).*/\2/'
      return 0
    fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1" >&2
  cat "$1" >&2
  return 1
}

"$BUILD_DIR/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 >"$WORK/fake.log" 2>&1 &
PIDS+=($!)
FAKE_PORT=$(wait_port "$WORK/fake.log" LISTENING)

mkdir -p "$WORK/data"
cat >"$WORK/options.json" <<JSON
{"port": 0, "hub_tokens": ["$HUB_TOKEN"], "log_level": "info", "platform_sync_enabled": false,
 "heating_usage_tracking_enabled": false, "electric_usage_tracking_enabled": false}
JSON
DINODIA_OPTIONS_PATH="$WORK/options.json" DINODIA_DATA_DIR="$WORK/data" \
  DINODIA_SUPERVISOR_URL="http://127.0.0.1:$FAKE_PORT" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
  DINODIA_BIND_ADDRESS=127.0.0.1 \
  "$BUILD_DIR/agent/dinodia-hub-agent" >"$WORK/agent.log" 2>&1 &
AGENT_PID=$!
PIDS+=($AGENT_PID)
AGENT_PORT=$(wait_port "$WORK/agent.log" "Listening")

# A port the kernel reports free (a random pick can collide with ephemeral client ports).
NGINX_PORT=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream ha { server 127.0.0.1:$FAKE_PORT; keepalive 32; }
  map \$http_upgrade \$connection_upgrade { default upgrade; '' close; }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    location /api/ {
      proxy_pass http://ha/core/api/;
      proxy_http_version 1.1;
      proxy_set_header Connection \$connection_upgrade;
      proxy_set_header Upgrade \$http_upgrade;
      proxy_set_header Authorization "Bearer $SUPERVISOR_TOKEN";
      proxy_buffering off;
      proxy_read_timeout 300s;
    }
  }
}
NGINX
nginx -c "$WORK/nginx.conf" -p "$WORK"
PIDS+=($(cat "$WORK/nginx.pid" 2>/dev/null || echo 0))

rss_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
sleep 1
IDLE_RSS=$(rss_kb "$AGENT_PID" VmRSS)

declare -A URL TOKEN WSPATH
URL[direct]="http://127.0.0.1:$FAKE_PORT/core"
URL[agent]="http://127.0.0.1:$AGENT_PORT"
URL[nginx]="http://127.0.0.1:$NGINX_PORT"
TOKEN[direct]="$SUPERVISOR_TOKEN"; TOKEN[agent]="$HUB_TOKEN"; TOKEN[nginx]="$HUB_TOKEN"
WSPATH[direct]="/core/api/websocket"; WSPATH[agent]="/api/websocket"; WSPATH[nginx]="/api/websocket"
# WebSocket auth is in-band: a plain proxy cannot swap the hub token for the Supervisor's, so the
# nginx row authenticates with the Supervisor token itself (nginx does no token check at all).
declare -A WSTOKEN
WSTOKEN[direct]="$SUPERVISOR_TOKEN"; WSTOKEN[agent]="$HUB_TOKEN"; WSTOKEN[nginx]="$SUPERVISOR_TOKEN"
PORT_OF() { case $1 in direct) echo "$FAKE_PORT";; agent) echo "$AGENT_PORT";; nginx) echo "$NGINX_PORT";; esac; }

declare -A RESULT P99
run_wrk() {  # name target path connections
  local out
  out=$(wrk -t2 -c"$4" -d"${DURATION}s" --latency -H "Authorization: Bearer ${TOKEN[$2]}" "${URL[$2]}$3")
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers for $2 $3:"; echo "$out"; exit 1; fi
  RESULT[$1/$2]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P99[$1/$2]=$(echo "$out" | awk '$1=="99%" {print $2}')
}
run_ws() {  # target
  local out
  out=$("$BUILD_DIR/bench/bench_ws_sessions" 127.0.0.1 "$(PORT_OF "$1")" "${WSPATH[$1]}" "${WSTOKEN[$1]}" 16 "$DURATION" || true)
  RESULT[ws/$1]=$(echo "$out" | sed -E 's/.*"sessions_per_second":([0-9.]+).*/\1/')
  P99[ws/$1]=$(echo "$out" | sed -E 's/.*"p99_ms":([0-9.]+).*/\1ms/')
  local errors
  errors=$(echo "$out" | sed -E 's/.*"errors":([0-9]+).*/\1/')
  [ "$errors" = "0" ] || echo "warning: $errors failed WebSocket sessions via $1" >&2
}

for t in direct agent nginx; do
  run_wrk api "$t" /api/ 16
  run_wrk states "$t" /api/states 16
  run_wrk camera "$t" "/api/camera_proxy/camera.front_door?size=262144" 8
  run_ws "$t"
done
PEAK_RSS=$(rss_kb "$AGENT_PID" VmHWM)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
{
  echo "| workload | direct (req/s) | agent (req/s) | nginx (req/s) | agent/direct | agent/nginx | target | p99 direct / agent / nginx |"
  echo "|---|---|---|---|---|---|---|---|"
  for w in "api:GET /api/ @16:0.5" "states:GET /api/states (300 entities) @16:0.7" "camera:camera_proxy 256 KiB @8:0.7" "ws:WebSocket sessions/s @16:0.5"; do
    IFS=: read -r key label target <<<"$w"
    d=${RESULT[$key/direct]}; a=${RESULT[$key/agent]}; n=${RESULT[$key/nginx]}
    echo "| $label | $d | $a | $n | $(ratio "$a" "$d") | $(ratio "$a" "$n") | ≥ $target× direct | ${P99[$key/direct]} / ${P99[$key/agent]} / ${P99[$key/nginx]} |"
  done
  echo
  echo "Agent RSS: idle $((IDLE_RSS / 1024)).$(( (IDLE_RSS % 1024) * 10 / 1024 )) MiB (target ≤ 8 MiB), peak $((PEAK_RSS / 1024)).$(( (PEAK_RSS % 1024) * 10 / 1024 )) MiB (target ≤ 32 MiB)."
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(date -u +%Y-%m-%d). Duration ${DURATION}s per cell; wrk -t2; load generator, stand-in, proxy share the same cores."
} | tee "$ROOT/bench/results/latest.md"

[ "$KIOSK_SECONDS" -gt 0 ] || exit 0
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fake_requests() { curl -s "http://127.0.0.1:$FAKE_PORT/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("requests_total", -1))'; }
TICKS_PER_SECOND=$(getconf CLK_TCK)
{
  echo
  echo "Kiosk profile: each kiosk runs GET /api/ → GET /api/states → POST /api/template → WebSocket config/entity_registry/list once a second for ${KIOSK_SECONDS}s."
  echo
  echo "| K | via | cycles | errors | api p50/p99 ms | states p50/p99 ms | template p50/p99 ms | websocket p50/p99 ms | agent CPU per cycle | agent CPU share | HA requests per cycle |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|"
} | tee -a "$ROOT/bench/results/latest.md"
for k in 1 3 10; do
  for t in direct nginx agent; do
    prefix=""; [ "$t" = direct ] && prefix="/core"
    token="${WSTOKEN[$t]}"
    before_ticks=$(cpu_ticks "$AGENT_PID"); before_req=$(fake_requests)
    out=$("$BUILD_DIR/bench/bench_kiosk_profile" 127.0.0.1 "$(PORT_OF "$t")" "$prefix" "${WSPATH[$t]}" "$token" "$k" "$KIOSK_SECONDS" || true)
    after_ticks=$(cpu_ticks "$AGENT_PID"); after_req=$(fake_requests)
    echo "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())
k, via, ticks, tps, reqs, secs = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
cycles = max(r["cycles"], 1)
step = lambda s: "%.2f / %.2f" % (r[s + "_p50_ms"], r[s + "_p99_ms"])
cpu = "%.2f ms" % (1000.0 * ticks / tps / cycles) if via == "agent" else "–"
share = "%.1f %%" % (100.0 * ticks / tps / secs) if via == "agent" else "–"
per = "%.1f" % (reqs / cycles) if reqs >= 0 else "n/a"
print("| %s | %s | %d | %d | %s | %s | %s | %s | %s | %s | %s |" % (k, via, r["cycles"], r["errors"], step("api"), step("states"), step("template"), step("websocket"), cpu, share, per))
' "$k" "$t" "$((after_ticks - before_ticks))" "$TICKS_PER_SECOND" "$((after_req - before_req))" "$KIOSK_SECONDS"
  done
done | tee -a "$ROOT/bench/results/latest.md"
echo "Agent RSS after the kiosk profile: $(( $(rss_kb "$AGENT_PID" VmRSS) / 1024 )) MiB (peak $(( $(rss_kb "$AGENT_PID" VmHWM) / 1024 )) MiB)." | tee -a "$ROOT/bench/results/latest.md"
