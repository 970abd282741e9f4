#!/usr/bin/env bash
# Stages the add-on folder for the Home Assistant add-on repository: addon/* plus the sources the
# image is built from, side by side, so the folder is a complete Docker build context for
# addon/Dockerfile (the Supervisor builds with the add-on folder as context).
#   ./scripts/stage-addon.sh /path/to/addon-repo/dinodia-hub-agent
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: stage-addon.sh OUTPUT_DIR}"
mkdir -p "$out"
cp -R addon/. "$out/"
cp CMakeLists.txt "$out/"
for module in common ha_bridge platform_client telemetry agent; do
  rm -rf "${out:?}/$module"
  cp -R "$module" "$out/$module"
done
echo "staged add-on in $out"
