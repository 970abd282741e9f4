#!/usr/bin/env bash
# LAN bridge benchmark: one run on loopback measuring, side by side,
#   direct  – the Home Assistant stand-in (tests/fakes/fake_ha) at /core/api/... (the Supervisor's
#             Core proxy path, Bearer SUPERVISOR_TOKEN)
#   agent   – dinodia-hub-agent on its LAN port at /api/... (Bearer hub token)
#   nginx   – nginx as a plain keep-alive reverse proxy in front of the same stand-in (what a
#             mature general-purpose proxy costs for one extra hop)
#   forwarder – bench/forwarder.cpp, which only copies bytes between each client connection and
#             one of its own to the stand-in: the floor for one extra hop (throughput cells only)
# Workloads: GET /api/ and GET /api/states (300 entities, ~200 KB) at 16 connections,
# camera_proxy 256 KiB at 8, WebSocket sessions per second at 16 (connect, auth,
# config/entity_registry/list, close), the WebSocket relay's throughput (8 connections, pings
# pipelined 8 deep) and events fan-out (16 clients subscribed to state_changed while Home Assistant
# fires events as fast as they are delivered); plus the agent's RSS idle and at peak.
# Kiosk profile: K = 1, 3, 10 kiosks each running the 1-second Home-mode refresh as the real kiosk
# does (bench/kiosk_profile.cpp; docs/platform-protocol.md#apps) for KIOSK_SECONDS, with p50/p99
# per step, the agent's CPU time per cycle, the Home Assistant requests per cycle and the agent's
# RSS. The relief measurements (Home Assistant work, freshness) are bench/relief.sh.
# Prints a Markdown table and writes it to bench/results/latest.md.
#
#   ./bench/run.sh     # ROUNDS=7 rounds of DURATION=3 seconds per cell; the kiosk profile in
#                      # KIOSK_ROUNDS=3 rounds of KIOSK_SECONDS=60 per K
#   WORKLOADS="relay fanout" KIOSK_SECONDS=0 ./bench/run.sh   # only some throughput cells
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
DURATION="${DURATION:-3}"
ROUNDS="${ROUNDS:-7}"
BUILD_DIR="${BUILD_DIR:-build-bench}"
# The throughput cells to run, in this order within each round.
read -r -a WORKLOADS <<<"${WORKLOADS:-api states camera ws relay fanout}"
RELAY_CONNECTIONS="${RELAY_CONNECTIONS:-8}"
FANOUT_CLIENTS="${FANOUT_CLIENTS:-16}"
# SKIP_BUILD=1 measures the binaries already in BUILD_DIR (e.g. a copy of an earlier commit's).
if [ "${SKIP_BUILD:-0}" != "1" ]; then
  DINODIA_BENCH_DEPS=1 ./scripts/install-deps.sh
  # Linked as the add-on image links it (addon/Dockerfile): OpenSSL, SQLite and the C++ runtime
  # inside the binary.
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha bench_ws_sessions \
    bench_ws_relay bench_kiosk_profile bench_forwarder >/dev/null
fi
KIOSK_SECONDS="${KIOSK_SECONDS:-60}"  # per round; 0 skips the kiosk profile
KIOSK_ROUNDS="${KIOSK_ROUNDS:-3}"

# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

# The relay itself is measured: the kiosk relief would answer repeated reads from memory
# (bench/relief_http.sh measures that).
start_bridge_stack "$BUILD_DIR" bench "" '"kiosk_relief": false'

start_nginx

FORWARDER_PORT=$(free_port)
"$BUILD_DIR/bench/bench_forwarder" "$FORWARDER_PORT" "$FAKE_PORT" 2 >"$WORK/forwarder.log" 2>&1 &
PIDS+=($!)
wait_port "$WORK/forwarder.log" LISTENING >/dev/null

rss_kb() { awk -v k="$2:" '$1==k {print $2}' "/proc/$1/status"; }
sleep 1
IDLE_RSS=$(rss_kb "$AGENT_PID" VmRSS)
# Of it, the agent's own memory; the rest is code (the binary's, libc's) mapped from the page
# cache, which is shared and which the kernel can drop and read again.
IDLE_ANON=$(rss_kb "$AGENT_PID" RssAnon)

declare -A URL TOKEN WSPATH
URL[direct]="http://127.0.0.1:$FAKE_PORT/core"
URL[agent]="http://127.0.0.1:$AGENT_PORT"
URL[nginx]="http://127.0.0.1:$NGINX_PORT"
URL[forwarder]="http://127.0.0.1:$FORWARDER_PORT/core"
TOKEN[direct]="$SUPERVISOR_TOKEN"; TOKEN[agent]="$HUB_TOKEN"; TOKEN[nginx]="$HUB_TOKEN"
TOKEN[forwarder]="$SUPERVISOR_TOKEN"
WSPATH[direct]="/core/api/websocket"; WSPATH[agent]="/api/websocket"; WSPATH[nginx]="/api/websocket"
WSPATH[forwarder]="/core/api/websocket"
# WebSocket auth is in-band: a plain proxy cannot swap the hub token for the Supervisor's, so the
# nginx row authenticates with the Supervisor token itself (nginx does no token check at all).
declare -A WSTOKEN
WSTOKEN[direct]="$SUPERVISOR_TOKEN"; WSTOKEN[agent]="$HUB_TOKEN"; WSTOKEN[nginx]="$SUPERVISOR_TOKEN"
WSTOKEN[forwarder]="$SUPERVISOR_TOKEN"
PORT_OF() { case $1 in direct) echo "$FAKE_PORT";; agent) echo "$AGENT_PORT";; nginx) echo "$NGINX_PORT";; forwarder) echo "$FORWARDER_PORT";; esac; }

declare -A RESULT P99 ROUND_RESULT
run_wrk() {  # name target path connections round
  local out
  out=$(wrk -t2 -c"$4" -d"${DURATION}s" --latency -H "Authorization: Bearer ${TOKEN[$2]}" "${URL[$2]}$3")
  if echo "$out" | grep -q "Non-2xx"; then echo "non-2xx answers for $2 $3:"; echo "$out"; exit 1; fi
  ROUND_RESULT[$1/$2/$5]=$(echo "$out" | awk '/Requests\/sec/ {print $2}')
  P99[$1/$2/$5]=$(echo "$out" | awk '$1=="99%" {print $2}')
}
run_ws() {  # target round
  local out
  out=$("$BUILD_DIR/bench/bench_ws_sessions" 127.0.0.1 "$(PORT_OF "$1")" "${WSPATH[$1]}" "${WSTOKEN[$1]}" 16 "$DURATION" || true)
  ROUND_RESULT[ws/$1/$2]=$(echo "$out" | sed -E 's/.*"sessions_per_second":([0-9.]+).*/\1/')
  P99[ws/$1/$2]=$(echo "$out" | sed -E 's/.*"p99_ms":([0-9.]+).*/\1ms/')
  local errors
  errors=$(echo "$out" | sed -E 's/.*"errors":([0-9]+).*/\1/')
  [ "$errors" = "0" ] || echo "warning: $errors failed WebSocket sessions via $1" >&2
}
# The relay cells (bench/ws_relay.cpp): messages or events per second, p99 in ms.
run_ws_relay() {  # workload target round
  local out
  case $1 in
    relay) out=$("$BUILD_DIR/bench/bench_ws_relay" ping 127.0.0.1 "$(PORT_OF "$2")" "${WSPATH[$2]}" \
      "${WSTOKEN[$2]}" "$RELAY_CONNECTIONS" "$DURATION" 8 || true) ;;
    fanout) out=$("$BUILD_DIR/bench/bench_ws_relay" fanout 127.0.0.1 "$(PORT_OF "$2")" "${WSPATH[$2]}" \
      "${WSTOKEN[$2]}" "$FANOUT_CLIENTS" "$DURATION" "$FAKE_PORT" "$SUPERVISOR_TOKEN" 8 || true) ;;
  esac
  ROUND_RESULT[$1/$2/$3]=$(echo "$out" | sed -E 's/.*"(messages|events)_per_second":([0-9.]+).*/\2/')
  P99[$1/$2/$3]=$(echo "$out" | sed -E 's/.*"p99_ms":([0-9.]+).*/\1ms/')
  local errors
  errors=$(echo "$out" | sed -E 's/.*"errors":([0-9]+).*/\1/')
  [ "$errors" = "0" ] || echo "warning: $errors errors in the $1 cell via $2: $out" >&2
}
median() { printf '%s\n' "$@" | sort -g | awk '{v[NR]=$1} END {print v[int((NR+1)/2)]}'; }

# The machine is shared and virtual: its speed drifts, by a factor of two within minutes on
# some days. So a ratio is taken between measurements made next to each other: in each of
# ROUNDS rounds, every workload runs against the three targets back to back (in a rotating
# order), and the ratio reported is the median of the rounds' paired ratios. A cell's req/s is
# the median over the rounds.
TARGETS=(direct agent nginx forwarder)
for round in $(seq 1 "$ROUNDS"); do
  for workload in "${WORKLOADS[@]}"; do
    for i in 0 1 2 3; do
      t=${TARGETS[$(( (i + round) % 4 ))]}
      case $workload in
        api) run_wrk api "$t" /api/ 16 "$round" ;;
        states) run_wrk states "$t" /api/states 16 "$round" ;;
        camera) run_wrk camera "$t" "/api/camera_proxy/camera.front_door?size=262144" 8 "$round" ;;
        ws) run_ws "$t" "$round" ;;
        relay | fanout) run_ws_relay "$workload" "$t" "$round" ;;
      esac
    done
  done
done
for key in "${WORKLOADS[@]}"; do
  for t in direct agent nginx forwarder; do
    values=(); p99s=()
    for round in $(seq 1 "$ROUNDS"); do
      values+=("${ROUND_RESULT[$key/$t/$round]}")
      p99s+=("$(echo "${P99[$key/$t/$round]}" | sed -E 's/ms$//; s/us$/e-3/; s/s$/e3/')")
    done
    RESULT[$key/$t]=$(median "${values[@]}")
    P99[$key/$t]="$(median "${p99s[@]}" | awk '{printf "%.2fms", $1}')"
  done
done
PEAK_RSS=$(rss_kb "$AGENT_PID" VmHWM)

ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
# How much of the code layout list still names functions of this binary (a stale list raises
# idle RSS: scripts/update-symbol-order.sh rewrites it).
ORDER_LISTED=$(wc -l <"$ROOT/agent/symbol-order.txt")
ORDER_FOUND=$(nm --defined-only "$BUILD_DIR/agent/dinodia-hub-agent" |
  awk 'NR == FNR { have[$3] = 1; next } ($0 in have) { n++ } END { print n + 0 }' - "$ROOT/agent/symbol-order.txt")
{
  echo "| workload | direct (req/s) | agent (req/s) | nginx (req/s) | forwarder (req/s) | agent/direct (median of paired rounds) | agent/direct per round | agent/nginx | nginx/direct | forwarder/direct (the floor) | target | p99 direct / agent / nginx |"
  echo "|---|---|---|---|---|---|---|---|---|---|---|---|"
  for w in "api:GET /api/ @16:≥ 0.5× direct" "states:GET /api/states (300 entities) @16:≥ 0.7× direct" \
    "camera:camera_proxy 256 KiB @8:≥ 0.7× direct" "ws:WebSocket sessions/s @16:≥ 0.5× direct" \
    "relay:WebSocket relay, pings 8 in flight (msg/s) @$RELAY_CONNECTIONS:≥ nginx's ratio" \
    "fanout:events fan-out (events/s) @$FANOUT_CLIENTS:≥ nginx's ratio"; do
    IFS=: read -r key label target <<<"$w"
    [[ " ${WORKLOADS[*]} " == *" $key "* ]] || continue
    d=${RESULT[$key/direct]}; a=${RESULT[$key/agent]}; n=${RESULT[$key/nginx]}; f=${RESULT[$key/forwarder]}
    per_round=(); per_round_nginx=(); per_round_nginx_direct=(); per_round_floor=()
    for round in $(seq 1 "$ROUNDS"); do
      per_round+=("$(ratio "${ROUND_RESULT[$key/agent/$round]}" "${ROUND_RESULT[$key/direct/$round]}")")
      per_round_nginx+=("$(ratio "${ROUND_RESULT[$key/agent/$round]}" "${ROUND_RESULT[$key/nginx/$round]}")")
      per_round_nginx_direct+=("$(ratio "${ROUND_RESULT[$key/nginx/$round]}" "${ROUND_RESULT[$key/direct/$round]}")")
      per_round_floor+=("$(ratio "${ROUND_RESULT[$key/forwarder/$round]}" "${ROUND_RESULT[$key/direct/$round]}")")
    done
    echo "| $label | $d | $a | $n | $f | **$(median "${per_round[@]}")** | $(IFS=' '; echo "${per_round[*]}") | $(median "${per_round_nginx[@]}") | $(median "${per_round_nginx_direct[@]}") | $(median "${per_round_floor[@]}") | $target | ${P99[$key/direct]} / ${P99[$key/agent]} / ${P99[$key/nginx]} |"
  done
  echo
  echo "Agent RSS: idle $((IDLE_RSS / 1024)).$(( (IDLE_RSS % 1024) * 10 / 1024 )) MiB (target ≤ 8 MB = 7.6 MiB; of it $((IDLE_ANON / 1024)).$(( (IDLE_ANON % 1024) * 10 / 1024 )) MiB private, the rest code pages mapped from the page cache), peak $((PEAK_RSS / 1024)).$(( (PEAK_RSS % 1024) * 10 / 1024 )) MiB (target ≤ 32 MB = 30.5 MiB). Code layout: $ORDER_FOUND of the $ORDER_LISTED functions agent/symbol-order.txt lists are in this binary."
  echo
  echo "Machine: $(nproc) cores, $(awk '/MemTotal/ {printf "%.0f GiB", $2/1048576}' /proc/meminfo), $(uname -m), $(date -u +%Y-%m-%d). $ROUNDS rounds; in each, every workload runs ${DURATION}s against each of the four targets back to back (rotating order); req/s are medians over the rounds, ratios the median of the rounds' paired ratios; wrk -t2; load generator, stand-in, proxy share the same cores."
} | tee "$ROOT/bench/results/latest.md"

[ "$KIOSK_SECONDS" -gt 0 ] || exit 0
add_deviceless_entities
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
fake_requests() { curl -s "http://127.0.0.1:$FAKE_PORT/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin).get("requests_total", -1))'; }
TICKS_PER_SECOND=$(getconf CLK_TCK)
KIOSK_TARGETS=(
  "direct=127.0.0.1:$FAKE_PORT:/core:${WSPATH[direct]}:${WSTOKEN[direct]}"
  "nginx=127.0.0.1:$NGINX_PORT::${WSPATH[nginx]}:${WSTOKEN[nginx]}"
  "agent=127.0.0.1:$AGENT_PORT::${WSPATH[agent]}:${WSTOKEN[agent]}"
)
# Like the throughput cells, the interleaved profile runs in KIOSK_ROUNDS rounds per K: a step's
# p50 or p99 is the median over the rounds, and the agent/nginx ratio of every step is shown per
# round, because on this machine one round's p50 moves by 10-30 % from the next.
for k in 1 3 10; do
  for round in $(seq 1 "$KIOSK_ROUNDS"); do
    before_ticks=$(cpu_ticks "$AGENT_PID")
    "$BUILD_DIR/bench/bench_kiosk_profile" "$k" "$KIOSK_SECONDS" "${KIOSK_TARGETS[@]}" \
      >"$WORK/kiosk-$k-$round.json" || true
    echo "$(( $(cpu_ticks "$AGENT_PID") - before_ticks ))" >"$WORK/kiosk-$k-$round.ticks"
  done
done
python3 - "$WORK" "$KIOSK_ROUNDS" "$KIOSK_SECONDS" "$TICKS_PER_SECOND" <<'PY' | tee -a "$ROOT/bench/results/latest.md"
import json, statistics, sys
work, rounds, secs, tps = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
steps = ("api", "states", "template", "websocket")
print()
print("Kiosk profile (bench/kiosk_profile.cpp, as the real kiosk refreshes): GET /api/ → GET /api/states → "
      "POST /api/template → a WebSocket config/entity_registry/list session (the template lists entities "
      "without a device), on a 1-second tick; kiosk k runs its cycle c via target (k + c) mod 3, "
      "so direct, nginx and the agent are measured in the same run under the same conditions, each "
      "with a third of the cycles. %d rounds of %d s per K; p50 and p99 are medians over the rounds."
      % (rounds, secs))
print()
print("| K | via | cycles | errors | api p50/p99 ms | states p50/p99 ms | template p50/p99 ms | websocket p50/p99 ms | agent CPU per cycle |")
print("|---|---|---|---|---|---|---|---|---|")
ratios = {}
for k in (1, 3, 10):
    runs = [json.load(open("%s/kiosk-%d-%d.json" % (work, k, r)))["targets"] for r in range(1, rounds + 1)]
    ticks = sum(int(open("%s/kiosk-%d-%d.ticks" % (work, k, r)).read()) for r in range(1, rounds + 1))
    for via in ("direct", "nginx", "agent"):
        cycles = sum(run[via]["cycles"] for run in runs)
        errors = sum(run[via]["errors"] for run in runs)
        med = lambda key: statistics.median(run[via][key] for run in runs)
        cells = ["%.2f / %.2f" % (med(s + "_p50_ms"), med(s + "_p99_ms")) for s in steps]
        cpu = "%.2f ms" % (1000.0 * ticks / tps / max(cycles, 1)) if via == "agent" else "–"
        print("| %d | %s | %d | %d | %s | %s |" % (k, via, cycles, errors, " | ".join(cells), cpu))
    for s in steps:
        ratios[(k, s)] = [run["agent"][s + "_p50_ms"] / run["nginx"][s + "_p50_ms"] for run in runs]
print()
print("Agent p50 / nginx p50 per step (per round, then the median; the target is ≤ 1.20):")
print()
print("| K | " + " | ".join(steps) + " |")
print("|---|" + "---|" * len(steps))
for k in (1, 3, 10):
    cells = []
    for s in steps:
        r = ratios[(k, s)]
        cells.append("%s → **%.2f**" % (" ".join("%.2f" % x for x in r), statistics.median(r)))
    print("| %d | %s |" % (k, " | ".join(cells)))
worst = max(((statistics.median(r), k, s) for (k, s), r in ratios.items()))
print()
print("Slowest step against nginx: %s at K = %d, median ratio %.2f (%s)."
      % (worst[2], worst[1], worst[0], "within 20 %" if worst[0] <= 1.2 else "MORE than 20 % slower"))
PY

# The CPU target is about K = 10 kiosks all using the agent: measured on its own.
AGENT_ONLY_SECONDS=$KIOSK_SECONDS
before_ticks=$(cpu_ticks "$AGENT_PID"); before_req=$(fake_requests)
out=$("$BUILD_DIR/bench/bench_kiosk_profile" 10 "$AGENT_ONLY_SECONDS" "${KIOSK_TARGETS[2]}" || true)
after_ticks=$(cpu_ticks "$AGENT_PID"); after_req=$(fake_requests)
echo "$out" | python3 -c '
import json, sys
r = json.loads(sys.stdin.read())["targets"]["agent"]
ticks, tps, secs, reqs = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4])
cycles = max(r["cycles"], 1)
print()
print("K = 10 kiosks, all through the agent, %d s: %d cycles, %d errors; agent CPU %.2f ms per cycle, %.1f %% of one core; %.1f Home Assistant requests per cycle; GET /api/ p50/p99 %.2f / %.2f ms." % (secs, r["cycles"], r["errors"], 1000.0 * ticks / tps / cycles, 100.0 * ticks / tps / secs, reqs / cycles, r["api_p50_ms"], r["api_p99_ms"]))
' "$((after_ticks - before_ticks))" "$TICKS_PER_SECOND" "$AGENT_ONLY_SECONDS" "$((after_req - before_req))" | tee -a "$ROOT/bench/results/latest.md"
echo "Agent RSS after the kiosk profile: $(( $(rss_kb "$AGENT_PID" VmRSS) / 1024 )) MiB (peak $(( $(rss_kb "$AGENT_PID" VmHWM) / 1024 )) MiB)." | tee -a "$ROOT/bench/results/latest.md"
