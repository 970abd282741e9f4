#!/usr/bin/env bash
# Kiosk relief, HTTP side (docs/lan-bridge.md#kiosk-relief): requests per second of the kiosk's
# two expensive reads, GET /api/states and POST /api/template (one template, as every kiosk
# sends it), straight to the Home Assistant stand-in, through the agent with the relief off and
# through the agent with it on, in one run, and how many requests reached the stand-in. A quick
# throughput check; the kiosk profile with freshness and Home Assistant's work per cycle is
# bench/relief.sh.
#
#   bench/relief_http.sh [build_dir]     DURATION=5 CONNECTIONS="4 16" ROUNDS=2
#
# Two stacks (scripts/background.sh), each with its own stand-in: the agent with
# "kiosk_relief": false, and the agent with the defaults (relief on, window 1000 ms). Direct is
# measured against the first stand-in. Load generator, stand-ins and agents share the machine's
# cores. Prints a Markdown table: req/s, the ratio to direct, and the stand-in's requests per
# 1000 answered.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/.." && pwd)
BUILD_DIR=${1:-$ROOT/build}
DURATION=${DURATION:-5}
CONNECTIONS=${CONNECTIONS:-"4 16"}
ROUNDS=${ROUNDS:-2}
# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

MAIN_WORK=$WORK
WORK=$MAIN_WORK/off && mkdir -p "$WORK"
start_bridge_stack "$BUILD_DIR" off "" '"kiosk_relief": false'
OFF_URL="http://127.0.0.1:$AGENT_PORT" OFF_FAKE=$FAKE_PORT OFF_HUB=$HUB_TOKEN
DIRECT_URL="http://127.0.0.1:$FAKE_PORT/core" DIRECT_TOKEN=$SUPERVISOR_TOKEN
WORK=$MAIN_WORK/on && mkdir -p "$WORK"
start_bridge_stack "$BUILD_DIR" on
ON_URL="http://127.0.0.1:$AGENT_PORT" ON_FAKE=$FAKE_PORT ON_HUB=$HUB_TOKEN
for _ in $(seq 100); do
  grep -q "event stream up" "$WORK/agent.log" && break
  sleep 0.1
done
grep -q "event stream up" "$WORK/agent.log" || { echo "relief event stream not up" >&2; exit 1; }
WORK=$MAIN_WORK

cat >"$WORK/template.lua" <<'LUA'
wrk.method = "POST"
wrk.headers["Content-Type"] = "application/json"
wrk.body = '{"template":"{% for s in states %}{{ s.entity_id }},{{ area_name(s.entity_id) }};{% endfor %}"}'
LUA

requests_total() {  # fake port
  curl -sf "http://127.0.0.1:$1/_fake/stats" | python3 -c 'import json,sys; print(json.load(sys.stdin)["requests_total"])'
}

# run_wrk <url> <token> <path> <connections> <fake port> -> "req/s answered upstream"
run_wrk() {
  local script=() before after out
  [ "$3" = /api/template ] && script=(-s "$WORK/template.lua")
  before=$(requests_total "$5")
  out=$(wrk -t2 -c"$4" -d"${DURATION}s" "${script[@]}" -H "Authorization: Bearer $2" "$1$3")
  after=$(requests_total "$5")
  local rps answered
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  answered=$(awk '/requests in/ {print $1}' <<<"$out")
  echo "$rps $answered $((after - before))"
}

echo "Machine: $(nproc) cores, $(uname -m), $(date -u +%Y-%m-%dT%H:%MZ); ${DURATION}s per cell, $ROUNDS rounds (the table shows the last; the ratios of every round in the last column), wrk -t2"
echo
echo "| request | connections | direct req/s | relief off req/s (ratio) | relief on req/s (ratio) | stand-in requests per 1000 answered: off / on | on/direct per round |"
echo "|---|---|---|---|---|---|---|"
for path in /api/states /api/template; do
  for c in $CONNECTIONS; do
    ratios=""
    for _ in $(seq "$ROUNDS"); do
      read -r d_rps _ _ <<<"$(run_wrk "$DIRECT_URL" "$DIRECT_TOKEN" "$path" "$c" "$OFF_FAKE")"
      read -r off_rps off_n off_up <<<"$(run_wrk "$OFF_URL" "$OFF_HUB" "$path" "$c" "$OFF_FAKE")"
      read -r on_rps on_n on_up <<<"$(run_wrk "$ON_URL" "$ON_HUB" "$path" "$c" "$ON_FAKE")"
      ratios="$ratios $(awk -v a="$on_rps" -v b="$d_rps" 'BEGIN {printf "%.2f", a / b}')"
    done
    awk -v p="$path" -v c="$c" -v d="$d_rps" -v off="$off_rps" -v on="$on_rps" -v offn="$off_n" \
      -v offu="$off_up" -v onn="$on_n" -v onu="$on_up" -v r="$ratios" 'BEGIN {
        printf "| %s | %s | %.0f | %.0f (%.2f×) | %.0f (%.2f×) | %.0f / %.1f |%s |\n",
          p, c, d, off, off / d, on, on / d, 1000 * offu / offn, 1000 * onu / onn, r }'
  done
done
