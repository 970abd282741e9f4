#!/usr/bin/env bash
# Kiosk-relief benchmark (bench/README.md#kiosk-relief): what the apps' Home-mode
# polling costs Home Assistant through each target, and how fresh the answers are.
#
# Load: K kiosks plus IPHONES iPhones, as the real apps poll (bench/kiosk_profile.cpp: the
# kiosk's 1-second refresh with its registry WebSocket, a doorbell detail view open on
# CAMERA_VIEWERS kiosks, the iPhone's 5 s probe and 12 s refresh), and EVENTS state changes a
# second published in the Home Assistant stand-in.
# Targets (TARGETS, any of):
#   direct    – the stand-in at /core/api/... with the Supervisor token (what the apps would
#               cost Home Assistant through the Supervisor with nothing in between)
#   nginx     – nginx as a plain keep-alive reverse proxy (scripts/background.sh start_nginx)
#   agent-off – the agent with "kiosk_relief": false
#   agent-on  – the agent with "kiosk_relief": true, "kiosk_relief_window_ms": WINDOW_MS
# Each cell (events a second × K) runs every target for CELL_SECONDS, back to back in a rotating
# order, so the targets of one cell see the machine at nearly the same moments (bench/run.sh
# says why ratios are only taken between neighbouring measurements). Per target it reports, from
# the stand-in's counts (GET /_fake/stats "counts"), the Home Assistant work per kiosk cycle
# (REST requests, WebSocket logins, commands, template renders), the agent's CPU per kiosk cycle
# (/proc/PID/stat utime + stime) and RSS (at the end of each cell, and its peak over the run),
# p50/p99 per step, the freshness of /api/states answers and, at
# 0 events a second, how many answers differ from direct's (status, Content-Type and body; the
# WebSocket frames).
# Prints Markdown tables and writes them to bench/results/relief-latest.md.
#
#   ./bench/relief.sh                                   # ~6 min: CELL_SECONDS=12, 3 targets
#   QUICK=1 ./bench/relief.sh                           # ~2.5 min: CELL_SECONDS=4
#   TARGETS="direct nginx agent-off agent-on" WINDOW_MS=1000 ./bench/relief.sh   # ~8 min
# Other knobs: KS="1 3 10", RATES="0 5 50", IPHONES=2, CAMERA_VIEWERS=1, BUILD_DIR=build-bench.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
if [ "${QUICK:-0}" = "1" ]; then DEFAULT_SECONDS=4; else DEFAULT_SECONDS=12; fi
CELL_SECONDS="${CELL_SECONDS:-$DEFAULT_SECONDS}"
read -r -a TARGETS <<<"${TARGETS:-direct nginx agent-off}"
read -r -a KS <<<"${KS:-1 3 10}"
read -r -a RATES <<<"${RATES:-0 5 50}"
IPHONES="${IPHONES:-2}"
CAMERA_VIEWERS="${CAMERA_VIEWERS:-1}"
WINDOW_MS="${WINDOW_MS:-1000}"
BUILD_DIR="${BUILD_DIR:-build-bench}"
SEQ_ENTITY=sensor.relief_seq

DINODIA_BENCH_DEPS=1 ./scripts/install-deps.sh
# Built as bench/run.sh builds it: linked as the add-on image links it.
cmake -S . -B "$BUILD_DIR" -G Ninja -DCMAKE_BUILD_TYPE=Release -DDINODIA_STATIC_DEPS=ON >/dev/null
nice -n 15 cmake --build "$BUILD_DIR" -j 2 --target dinodia-hub-agent fake_ha bench_kiosk_profile \
  >/dev/null

# shellcheck source=scripts/background.sh
. "$ROOT/scripts/background.sh"

start_fake_ha "$BUILD_DIR" relief
add_deviceless_entities
curl -sf -X POST "http://127.0.0.1:$FAKE_PORT/_fake/set" -H 'content-type: application/json' \
  -d "{\"states\": [{\"entity_id\": \"$SEQ_ENTITY\", \"state\": \"0\", \"attributes\": {}}]}" >/dev/null

declare -A SPEC PID_OF
for t in "${TARGETS[@]}"; do
  case $t in
    direct) SPEC[$t]="127.0.0.1:$FAKE_PORT:/core:/core/api/websocket:$SUPERVISOR_TOKEN" ;;
    nginx)
      start_nginx
      # WebSocket auth is in-band: a plain proxy cannot swap the hub token for the Supervisor's.
      SPEC[$t]="127.0.0.1:$NGINX_PORT::/api/websocket:$SUPERVISOR_TOKEN" ;;
    agent-off | agent-on)
      if [ "$t" = agent-off ]; then relief='"kiosk_relief": false'
      else relief="\"kiosk_relief\": true, \"kiosk_relief_window_ms\": $WINDOW_MS"; fi
      start_agent "$BUILD_DIR" "$t" "$relief"
      PID_OF[$t]=$AGENT_PID
      SPEC[$t]="127.0.0.1:$AGENT_PORT::/api/websocket:$HUB_TOKEN" ;;
    *) echo "unknown target $t (direct, nginx, agent-off, agent-on)" >&2; exit 2 ;;
  esac
done
sleep 1  # the agents' start-up (the relief's event subscription) out of the first cell

cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }
cell=0
for rate in "${RATES[@]}"; do
  for k in "${KS[@]}"; do
    for i in "${!TARGETS[@]}"; do
      t=${TARGETS[$(( (i + cell) % ${#TARGETS[@]} ))]}
      out="$WORK/cell-$rate-$k-$t"
      curl -sf -X POST "http://127.0.0.1:$FAKE_PORT/_fake/stats/reset" >/dev/null
      before=0
      [ -z "${PID_OF[$t]:-}" ] || before=$(cpu_ticks "${PID_OF[$t]}")
      "$BUILD_DIR/bench/bench_kiosk_profile" --iphones="$IPHONES" --camera-viewers="$CAMERA_VIEWERS" \
        --events-per-second="$rate" --fake="127.0.0.1:$FAKE_PORT" --seq-entity="$SEQ_ENTITY" \
        "$k" "$CELL_SECONDS" "$t=${SPEC[$t]}" >"$out.json" || true
      after=0
      [ -z "${PID_OF[$t]:-}" ] || after=$(cpu_ticks "${PID_OF[$t]}")
      echo $((after - before)) >"$out.ticks"
      rss=0
      [ -z "${PID_OF[$t]:-}" ] || rss=$(awk '/^VmRSS:/ {print $2}' "/proc/${PID_OF[$t]}/status")
      echo "$rss" >"$out.rss"
      curl -sf "http://127.0.0.1:$FAKE_PORT/_fake/stats" >"$out.stats"
    done
    cell=$((cell + 1))
  done
done
for t in "${TARGETS[@]}"; do
  [ -z "${PID_OF[$t]:-}" ] || awk '/^VmHWM:/ {print $2}' "/proc/${PID_OF[$t]}/status" >"$WORK/peak-$t"
done
python3 - "$WORK" "$CELL_SECONDS" "$(getconf CLK_TCK)" "$WINDOW_MS" "$IPHONES" "$CAMERA_VIEWERS" \
  "${#TARGETS[@]}" "${TARGETS[@]}" "${#KS[@]}" "${KS[@]}" "${RATES[@]}" <<'PY' |
import json, sys
work, secs, tps, window, iphones, viewers = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), sys.argv[5], sys.argv[6]
rest = sys.argv[7:]
targets = rest[1:1 + int(rest[0])]
rest = rest[1 + int(rest[0]):]
ks = [int(k) for k in rest[1:1 + int(rest[0])]]
rates = rest[1 + int(rest[0]):]
steps = ["api", "states", "template", "websocket", "camera"]
ios_steps = ["ios_probe", "ios_api", "ios_states", "ios_template"]

def load(rate, k, t):
    base = "%s/cell-%s-%d-%s" % (work, rate, k, t)
    try:
        profile = json.load(open(base + ".json"))["targets"][t]
    except (OSError, ValueError, KeyError):
        profile = None
    counts = json.load(open(base + ".stats"))["counts"]
    return profile, counts, int(open(base + ".ticks").read()), int(open(base + ".rss").read())

cells = {(r, k, t): load(r, k, t) for r in rates for k in ks for t in targets}
def per_cycle(value, p):
    return value / max(p["cycles"], 1)

print("### Home Assistant work and agent CPU, per kiosk cycle")
print()
print("Everything that reached the stand-in during the cell (the kiosks, the iPhones and the camera view) divided by the kiosks' refresh cycles.")
print()
print("| events/s | K | via | kiosk cycles (errors, overruns) | iPhone refreshes (errors) | HA requests | WS logins | WS commands | template renders | **requests + logins** | agent CPU | agent RSS at the end |")
print("|---|---|---|---|---|---|---|---|---|---|---|---|")
for r in rates:
    for k in ks:
        for t in targets:
            p, c, ticks, rss = cells[(r, k, t)]
            if p is None:
                print("| %s | %d | %s | (no result) ||||||||" % (r, k, t)); continue
            cpu = "%.2f ms" % (1000.0 * ticks / tps / max(p["cycles"], 1)) if t.startswith("agent") else "–"
            mem = "%.1f MiB" % (rss / 1024.0) if t.startswith("agent") else "–"
            print("| %s | %d | %s | %d (%d, %d) | %d (%d) | %.2f | %.2f | %.2f | %.2f | **%.2f** | %s | %s |" % (
                r, k, t, p["cycles"], p["errors"], p["overruns"], p["ios_cycles"], p["ios_errors"],
                per_cycle(c["http_requests"], p), per_cycle(c["ws_logins"], p), per_cycle(c["ws_commands"], p),
                per_cycle(c["template_renders"], p), per_cycle(c["http_requests"] + c["ws_logins"], p), cpu, mem))
print()
peaks = []
for t in targets:
    try:
        peaks.append("%s %.1f MiB" % (t, int(open("%s/peak-%s" % (work, t)).read()) / 1024.0))
    except (OSError, ValueError):
        pass
if peaks:
    print("Agent peak RSS over the whole run (VmHWM): " + ", ".join(peaks) + ".")
    print()
print("### Latency per step, p50 / p99 ms (p50 against direct's in the same cell)")
print()
print("| events/s | K | via | " + " | ".join(steps + ios_steps) + " |")
print("|---|---|---|" + "---|" * (len(steps) + len(ios_steps)))
slower = []
for r in rates:
    for k in ks:
        d = cells[(r, k, "direct")][0] if "direct" in targets else None
        for t in targets:
            p = cells[(r, k, t)][0]
            if p is None: continue
            row = []
            for s in steps + ios_steps:
                if p.get(s + "_n", 0) == 0:
                    row.append("–"); continue
                cell = "%.2f / %.2f" % (p[s + "_p50_ms"], p[s + "_p99_ms"])
                if d and t != "direct" and d.get(s + "_n", 0) and d[s + "_p50_ms"] > 0:
                    ratio = p[s + "_p50_ms"] / d[s + "_p50_ms"]
                    cell += " (%.2f×)" % ratio
                    if s in steps[:4] and ratio > 1.0:
                        slower.append((t, r, k, s, ratio))
                row.append(cell)
            print("| %s | %d | %s | %s |" % (r, k, t, " | ".join(row)))
print()
print("Steps: the kiosk's api (GET /api/ probe), states, template, websocket (registry session, timed to its result) and camera (doorbell view, every 15 s on %s kiosk(s)); the iPhones' (%s) 5-second probe and their 12-second refresh (api, states, template)." % (viewers, iphones))
print()
if any(r != "0" for r in rates):
    print("### Freshness of /api/states answers (ms)")
    print()
    print("Staleness: per answer, how long before the request was sent the first state change it does not show had been made (0 when it shows every change made before the request). First appearance: per change, from the moment it was made to the first answer through that target showing it or a later one (includes waiting for the next poll).")
    print()
    print("| events/s | K | via | changes published | answers | staleness p50 / p99 | first appearance p50 / p99 |")
    print("|---|---|---|---|---|---|---|")
    for r in rates:
        if r == "0": continue
        for k in ks:
            for t in targets:
                p = cells[(r, k, t)][0]
                if p is None: continue
                published = json.load(open("%s/cell-%s-%d-%s.json" % (work, r, k, t)))["events_published"]
                print("| %s | %d | %s | %d | %d | %.2f / %.2f | %.1f / %.1f |" % (
                    r, k, t, published, p["stale_n"], p["stale_p50_ms"], p["stale_p99_ms"],
                    p["first_p50_ms"], p["first_p99_ms"]))
    print()
if "0" in rates and "direct" in targets:
    print("### Identical bytes at 0 events/s")
    print()
    print("Answers whose digest (status, Content-Type, body; for the WebSocket every frame) is not one direct access returned in the same cell.")
    print()
    print("| K | via | answers compared | differing from direct |")
    print("|---|---|---|---|")
    for k in ks:
        d = cells[("0", k, "direct")][0]
        for t in targets:
            p = cells[("0", k, t)][0]
            if t == "direct" or p is None or d is None: continue
            compared, differing = 0, {}
            for s, digests in p["digests"].items():
                ref = set(d["digests"].get(s, {}))
                for digest, n in digests.items():
                    compared += n
                    if digest not in ref:
                        differing[s] = differing.get(s, 0) + n
            text = ", ".join("%s %d" % kv for kv in sorted(differing.items())) or "0"
            print("| %d | %s | %d | %s |" % (k, t, compared, text))
    print()
print("### Against the targets: ≥ 5× fewer Home Assistant requests + logins per kiosk cycle at K = 10, no kiosk step slower than direct at p50, staleness p99 ≤ W + 50 ms")
print()
if "agent-off" in targets and "agent-on" in targets and 10 in ks:
    for r in rates:
        off, on = cells[(r, 10, "agent-off")], cells[(r, 10, "agent-on")]
        if off[0] and on[0]:
            a = per_cycle(off[1]["http_requests"] + off[1]["ws_logins"], off[0])
            b = per_cycle(on[1]["http_requests"] + on[1]["ws_logins"], on[0])
            print("- K = 10, %s events/s: Home Assistant requests + logins per kiosk cycle %.2f with the relief off, %.2f on: **%.1f× fewer** (target ≥ 5×)." % (r, a, b, a / b if b else float("inf")))
else:
    print("- Relief on against off at K = 10: not measured in this run (TARGETS needs agent-off and agent-on).")
if "agent-on" in targets:
    onslow = [x for x in slower if x[0] == "agent-on"]
    print("- Kiosk steps through agent-on slower than direct at p50: %s (target: none)." % (
        ", ".join("%s at %s events/s K = %d %.2f×" % (s, r, k, x) for _, r, k, s, x in onslow) or "none"))
    worst = max((cells[(r, k, "agent-on")][0]["stale_p99_ms"] for r in rates if r != "0" for k in ks
                 if cells[(r, k, "agent-on")][0]), default=None)
    if worst is not None:
        print("- Freshness through agent-on: worst staleness p99 %.1f ms (target ≤ W + 50 = %d ms)." % (worst, window + 50))
else:
    print("- Kiosk steps and freshness with the relief on: not measured in this run.")
print()
print("(The camera step is left out of the p50 comparison: one image per 15 s gives a cell one or two samples.)")
PY
  tee "$ROOT/bench/results/relief-latest.md"
{
  echo
  echo "Machine: $(nproc) cores, $(uname -m), $(date -u '+%Y-%m-%d %H:%M') UTC, commit $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with local changes)'). Cells of ${CELL_SECONDS} s per target, targets back to back in a rotating order; K kiosks + $IPHONES iPhones, a doorbell view on $CAMERA_VIEWERS kiosk(s); relief window $WINDOW_MS ms for agent-on; load generator, stand-in and proxies share the cores."
} | tee -a "$ROOT/bench/results/relief-latest.md"
