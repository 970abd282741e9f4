#!/usr/bin/env bash
# Writes the complete Home Assistant add-on repository into OUT: what the maintainers push to the
# repository homes already have (docs/compatibility.md#addon: same repository, same slug).
#   ./scripts/stage-addon.sh OUT
#     OUT/repository.yaml
#     OUT/dinodia-hub-agent/   config.yaml, Dockerfile, DOCS.md, README.md, CHANGELOG.md,
#                              translations/, apparmor.txt, rootfs/, and the image's build context
# The build context is exactly what addon/Dockerfile copies from it (its COPY lines are the list),
# so the folder builds as it is, with the add-on folder as context as the Supervisor and the
# publishing workflow use it. docs/building.md describes the layout.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:?usage: stage-addon.sh OUT}"
slug=dinodia-hub-agent
addon="$out/$slug"

rm -rf "$addon"
mkdir -p "$addon"
cp addon/repository.yaml "$out/repository.yaml"
for item in config.yaml Dockerfile DOCS.md README.md CHANGELOG.md apparmor.txt translations rootfs; do
  cp -R "addon/$item" "$addon/"
done
# The sources of every `COPY <source...> <dest>` that reads the build context (not --from=).
mapfile -t sources < <(awk '$1 == "COPY" && $2 !~ /^--from=/ { for (i = 2; i < NF; i++) print $i }' \
  addon/Dockerfile | sed 's|/$||' | sort -u)
for src in "${sources[@]}"; do
  [ -e "$addon/$src" ] && continue  # rootfs/ and the like are add-on files staged above
  if [ ! -e "$src" ]; then
    echo "stage-addon.sh: addon/Dockerfile copies '$src', which the repository does not have" >&2
    exit 1
  fi
  cp -R "$src" "$addon/$src"
done
echo "staged the add-on repository in $out"
