#!/usr/bin/env bash
# Abuse run (not in CI): the attacks of a hostile device on the home Wi-Fi, without a hub token,
# each while a legitimate kiosk runs its 1-second Home-mode cycle (GET /api/, GET /api/states,
# POST /api/template, a WebSocket auth + config/entity_registry/list + close). Per attack: the
# agent's peak RSS and RSS AFTER seconds after the burst, its peak descriptors, the kiosk's
# success rate and worst p99, and what reached the Supervisor stand-in beyond the kiosk's own
# requests (fake_ha's /_fake/stats). Loopback only; about 8 minutes. See bench/README.md.
#
#   ./bench/abuse.sh                      # Release build with DINODIA_STATIC_DEPS in build-bench
#   BUILD_DIR=build SKIP_BUILD=1 ./bench/abuse.sh   # an existing build
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
BUILD_DIR="${BUILD_DIR:-build-bench}"
AFTER="${AFTER:-30}"  # seconds between the end of a burst and the after-burst RSS
if [ "${SKIP_BUILD:-0}" != 1 ]; then
  cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
  cmake --build "$BUILD_DIR" -j "$(nproc)" --target dinodia-hub-agent fake_ha bench_kiosk_profile \
    >/dev/null
fi

# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

# As a home starts it: soft descriptor limit 1024 (the agent raises its own). The kiosk relief is
# off so that every kiosk request reaches the stand-in: "beyond the kiosk" below subtracts the
# kiosk's own requests, which is exact only then (the relief does not touch unauthenticated
# traffic: it answers a request only after the hub token has been checked).
start_bridge_stack "$BUILD_DIR" abuse 1024 '"kiosk_relief": false'
KIOSK="agent=127.0.0.1:$AGENT_PORT::/api/websocket:$HUB_TOKEN"

# VmRSS, or another /proc status field given as $1 (RssAnon: the private part, heap and stacks;
# the rest is code and data pages mapped from the binary, shared with the page cache).
rss_kib() { awk -v f="${1:-VmRSS}:" '$1==f {print $2}' "/proc/$AGENT_PID/status"; }
fds() { find "/proc/$AGENT_PID/fd" -mindepth 1 -maxdepth 1 2>/dev/null | wc -l; }
fake_stats() { curl -s "http://127.0.0.1:$FAKE_PORT/_fake/stats"; }
# Peak RSS and descriptors every 200 ms until the file $1.stop exists.
sample() {
  local peak_rss=0 peak_fds=0 r f
  while [ ! -e "$1.stop" ]; do
    r=$(rss_kib); f=$(fds)
    [ "$r" -gt "$peak_rss" ] && peak_rss=$r
    [ "$f" -gt "$peak_fds" ] && peak_fds=$f
    echo "$peak_rss $peak_fds" >"$1"
    sleep 0.2
  done
}

# A warm-up cycle so that idle means "after the kiosk has run", as in a home.
"$BUILD_DIR/bench/bench_kiosk_profile" 1 5 "$KIOSK" >/dev/null
sleep 3
IDLE_RSS=$(rss_kib)
IDLE_ANON=$(rss_kib RssAnon)
IDLE_FDS=$(fds)
echo "agent idle: RSS $IDLE_RSS KiB (private $IDLE_ANON KiB), $IDLE_FDS descriptors"

ATTACK=0
ROWS="$WORK/rows"
: >"$ROWS"
# attack NAME BURST_SECONDS_HINT CLIENT_ARGS... (one attacker process per ';'-separated group)
attack() {
  local name=$1 hint=$2
  shift 2
  ATTACK=$((ATTACK + 1))
  local client_file="$WORK/client-$ATTACK.json"
  local before after_rss after_anon start burst
  before=$(fake_stats)
  rm -f "$WORK/peak.stop"
  sample "$WORK/peak" &
  local sampler=$!
  "$BUILD_DIR/bench/bench_kiosk_profile" 1 $((hint + AFTER)) "$KIOSK" >"$WORK/kiosk.json" 2>&1 &
  local kiosk=$!
  start=$(date +%s.%N)
  local clients=() group=()
  for arg in "$@" ";"; do
    if [ "$arg" = ";" ]; then
      python3 "$ROOT/bench/abuse_client.py" "${group[@]}" --port "$AGENT_PORT" >>"$client_file" &
      clients+=($!)
      group=()
    else
      group+=("$arg")
    fi
  done
  for c in "${clients[@]}"; do wait "$c" || true; done
  burst=$(python3 -c "import time; print(round(time.time() - $start, 1))")
  sleep "$AFTER"
  after_rss=$(rss_kib)
  after_anon=$(rss_kib RssAnon)
  touch "$WORK/peak.stop"
  wait "$sampler" || true
  wait "$kiosk" || true
  python3 - "$name" "$burst" "$IDLE_RSS" "$after_rss" "$IDLE_ANON" "$after_anon" "$WORK/peak" "$WORK/kiosk.json" \
    "$before" "$(fake_stats)" "$client_file" >>"$ROWS" <<'PY'
import json, sys
name, burst, idle, after, idle_anon, after_anon, peak_file, kiosk_file, before, now, client_file = sys.argv[1:]
peak_rss, peak_fds = (int(x) for x in open(peak_file).read().split())
try:
    k = json.loads(open(kiosk_file).read().strip().splitlines()[-1])["targets"]["agent"]
except Exception:
    k = {"cycles": 0, "errors": 1}
cycles, errors = k["cycles"], k["errors"]
p99 = max((v for key, v in k.items() if key.endswith("_p99_ms")), default=0)
b, n = json.loads(before), json.loads(now)
# The kiosk's own calls, as it made them (it opens its WebSocket only when its template answer
# asks for the registry: bench/kiosk_profile.cpp).
rest = n["requests_total"] - b["requests_total"] - sum(k.get(f"{s}_n", 0) for s in ("api", "states", "template"))
ws = n["ws_connections_total"] - b["ws_connections_total"] - k.get("websocket_n", 0)
clients = [json.loads(l) for l in open(client_file) if l.strip()]
for c in clients:
    c.pop("pid", None)
ok = 100.0 * (cycles - errors) / cycles if cycles else 0.0
mib = lambda kib: kib / 1024
print(f"| {name} | {burst} | {mib(peak_rss):.1f} | {mib(int(after)):.1f} ({mib(int(after) - int(idle)):+.1f}) "
      f"| {mib(int(after_anon)):.1f} ({mib(int(after_anon) - int(idle_anon)):+.1f}) | {peak_fds} | {ok:.1f} % of {cycles} | {p99:.1f} | {rest} / {ws} | {json.dumps(clients)} |")
PY
  tail -n 1 "$ROWS"
}

attack "1,000 WS upgrades x ~1 MiB before auth" 20 ws_preauth --count 1000 --source-base 1
attack "2,000 WS upgrades that never log in" 15 ws_never_login --count 2000 --hold 12 --source-base 2
attack "19,990 idle TCP connections (2 processes)" 25 \
  idle --count 9995 --hold 20 --source-base 3 ";" idle --count 9995 --hold 20 --source-base 4
attack "2,000 connections, a tokenless request every 40 s" 45 \
  tokenless --count 2000 --hold 45 --source-base 5
attack "10,000 idle TCP connections" 20 idle --count 10000 --hold 15 --source-base 6
attack "300 x POST /_dinodia/zha/permit ~1 MiB" 15 zha_permit --count 300 --source-base 7
attack "2,000 wrong tokens on one connection (30 s at most)" 30 \
  wrong_tokens --count 2000 --hold 30 --source-base 8

cat <<EOF2

Agent idle: RSS $(python3 -c "print(round($IDLE_RSS/1024, 1))") MiB (private $(python3 -c "print(round($IDLE_ANON/1024, 1))") MiB), $IDLE_FDS descriptors; after-burst RSS taken ${AFTER} s after each burst.

| attack | burst (s) | peak RSS (MiB) | RSS after (MiB, vs idle) | of it private after (MiB, vs idle) | peak descriptors | kiosk cycles OK | kiosk worst p99 (ms) | reached the Supervisor beyond the kiosk: REST / WS | attacker's view |
|---|---|---|---|---|---|---|---|---|---|
EOF2
cat "$ROWS"
echo
echo "Agent log lines: $(grep -c 'Accept failed' "$WORK/agent.log" || true) 'Accept failed', $(grep -c 'Hub token refused' "$WORK/agent.log" || true) 'Hub token refused'."
