# shellcheck shell=bash
# Sourced by bench/run.sh, bench/abuse.sh, bench/home.sh, bench/relief.sh and
# scripts/update-symbol-order.sh: a work directory and the background processes a script starts
# (append their PIDs to PIDS), both cleaned up when it exits, and wait_port
# (scripts/wait-port.sh).
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

# A port the kernel reports free (a random pick can collide with ephemeral client ports).
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# The benchmarks' stack (bench/run.sh, bench/abuse.sh, bench/relief.sh): the Home Assistant
# stand-in with 300 entities and the agent as a LAN bridge only, one plain hub token, bound to
# loopback. Sets SUPERVISOR_TOKEN, HUB_TOKEN, FAKE_PORT, AGENT_PID and AGENT_PORT. `soft_nofile`,
# when given, is the agent's soft descriptor limit at start (a home's 1024; the agent raises its
# own). `options`, when given, are more members of its options.json (e.g. '"kiosk_relief": false').
start_bridge_stack() {  # build_dir, name, [soft_nofile], [options]
  start_fake_ha "$1" "$2"
  start_agent "$1" "" "${4:-}" "${3:-}"
}

# The stand-in alone (start_bridge_stack without the agent). Sets SUPERVISOR_TOKEN, HUB_TOKEN
# (for the agents start_agent adds) and FAKE_PORT.
start_fake_ha() {  # build_dir, name
  SUPERVISOR_TOKEN="$2-supervisor-token-$$"
  HUB_TOKEN="$2-hub-token-$$"
  "$1/tests/fake_ha" --port 0 --token "$SUPERVISOR_TOKEN" --entities 300 >"$WORK/fake.log" 2>&1 &
  PIDS+=($!)
  FAKE_PORT=$(wait_port "$WORK/fake.log" LISTENING)
}

# One more agent in front of the same stand-in, with the same hub token: `name` names its files
# in $WORK ("" for the first: options.json, data/, agent.log), `extra_options` are JSON members
# added to its options (e.g. '"kiosk_relief": false'). Sets AGENT_PID and AGENT_PORT.
start_agent() {  # build_dir, name, [extra_options], [soft_nofile]
  local build_dir="$1" name="$2" extra="${3:-}" soft_nofile="${4:-}"
  local suffix="${name:+-$name}"
  mkdir -p "$WORK/data$suffix"
  cat >"$WORK/options$suffix.json" <<JSON
{"port": 0, "hub_tokens": ["$HUB_TOKEN"], "log_level": "info", "platform_sync_enabled": false,
 "heating_usage_tracking_enabled": false, "electric_usage_tracking_enabled": false${extra:+, $extra}}
JSON
  (
    if [ -n "$soft_nofile" ]; then ulimit -Sn "$soft_nofile"; fi
    exec env DINODIA_OPTIONS_PATH="$WORK/options$suffix.json" DINODIA_DATA_DIR="$WORK/data$suffix" \
      DINODIA_SUPERVISOR_URL="http://127.0.0.1:$FAKE_PORT" SUPERVISOR_TOKEN="$SUPERVISOR_TOKEN" \
      DINODIA_BIND_ADDRESS=127.0.0.1 "$build_dir/agent/dinodia-hub-agent"
  ) >"$WORK/agent$suffix.log" 2>&1 &
  AGENT_PID=$!
  PIDS+=("$AGENT_PID")
  # shellcheck disable=SC2034 # read by the sourcing script
  AGENT_PORT=$(wait_port "$WORK/agent$suffix.log" "Listening")
}

# nginx as a plain reverse proxy with an upstream keep-alive pool in front of the stand-in at
# /core/api/ with the Supervisor token (bench/README.md says what it stands for). Sets
# NGINX_PORT.
start_nginx() {
  NGINX_PORT=$(free_port)
  cat >"$WORK/nginx.conf" <<NGINX
worker_processes 2;
pid $WORK/nginx.pid;
error_log $WORK/nginx-error.log warn;
events { worker_connections 1024; }
http {
  access_log off;
  upstream ha { server 127.0.0.1:$FAKE_PORT; keepalive 32; }
  # Plain requests get an empty Connection header, so the upstream keep-alive pool is used;
  # mapping them to "close" (a common copy-paste) would open a connection per request.
  map \$http_upgrade \$connection_upgrade { default upgrade; '' ""; }
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
  PIDS+=("$(cat "$WORK/nginx.pid" 2>/dev/null || echo 0)")
}

# Entities of integrations without a device, as every home has (sun, zone, person): the apps'
# template then lists some device_id as null, which is what makes the kiosk open its registry
# WebSocket on every refresh (bench/kiosk_profile.cpp).
add_deviceless_entities() {
  curl -sf -X POST "http://127.0.0.1:$FAKE_PORT/_fake/set" -H 'content-type: application/json' \
    -d '{"states": [
      {"entity_id": "sun.sun", "state": "above_horizon", "attributes": {"friendly_name": "Sun"}},
      {"entity_id": "zone.home", "state": "1", "attributes": {"friendly_name": "Home"}},
      {"entity_id": "person.owner", "state": "home", "attributes": {"friendly_name": "Owner"}}]}' \
    >/dev/null
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

# A home's registries in the Home Assistant stand-in at $1 (its URL): what bench/home.sh and
# the code-layout profile track (bench/home_fixture.py).
set_home_registries() {  # fake_ha URL
  python3 "$(dirname "${BASH_SOURCE[0]}")/../bench/home_fixture.py" registries "$WORK/registries.json"
  curl -sf -X POST "$1/_fake/set" -H 'content-type: application/json' \
    --data-binary "@$WORK/registries.json" >/dev/null
}
