#!/usr/bin/env bash
# Runs the README's first command (./scripts/demo.sh) on a fresh Debian 12 container: a clone of
# this repository's HEAD, nothing installed but git, so the command has to install everything it
# needs itself. Prints "fresh machine: demo OK" when a kiosk request went through the agent.
#   ./scripts/fresh-machine.sh
# The Debian image is the stand-in scripts/image.sh makes (registries are unreachable here): run
# `./scripts/image.sh build amd64` once first. The second README command (./scripts/test.sh) is
# what CI runs on a fresh machine (.ci/run). If this machine reaches npm through a proxy with its
# own CA (NODE_EXTRA_CA_CERTS set), that CA file is handed to node inside the container.
set -euo pipefail
cd "$(dirname "$0")/.."
DINODIA_IMAGE_DEPS=1 ./scripts/install-deps.sh
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh
image=$(sed -n 's/^ARG BUILDER_IMAGE=//p' addon/Dockerfile)
if ! podman image exists "$image"; then
  echo "no local $image: run ./scripts/image.sh build amd64 first (it makes the stand-in)" >&2
  exit 1
fi
ca=()
if [ -n "${NODE_EXTRA_CA_CERTS:-}" ] && [ -f "$NODE_EXTRA_CA_CERTS" ]; then
  ca=(-v "$NODE_EXTRA_CA_CERTS:/host-ca.crt:ro" -e NODE_EXTRA_CA_CERTS=/host-ca.crt)
fi
start=$(date +%s)
podman run --rm --network host -v "$PWD:/src:ro" "${ca[@]}" "$image" bash -c '
  set -e
  apt-get update -qq >/dev/null && apt-get install -y -qq git ca-certificates >/dev/null
  git clone -q /src /w && cd /w && echo "fresh clone at $(git log --oneline -1)"
  (DEMO_PORT=18099 ./scripts/demo.sh >/tmp/demo.out 2>&1 &)
  for _ in $(seq 1 3600); do grep -q "Ctrl-C stops everything" /tmp/demo.out 2>/dev/null && break; sleep 1; done
  sed -n "/== The agent paired/,\$p" /tmp/demo.out
  grep -q "\"message\":\"API running.\"" /tmp/demo.out || { tail -40 /tmp/demo.out; exit 1; }
'
echo "fresh machine: demo OK in $(($(date +%s) - start)) s"
