#!/usr/bin/env bash
# Builds and tests the add-on image for one hub architecture with podman, on a machine with no
# Docker engine and no registry:
#   ./scripts/image.sh build ARCH     stage the add-on (scripts/stage-addon.sh) and build its
#                                     Dockerfile for ARCH, as the publishing workflow does
#   ./scripts/image.sh test ARCH      build it unless the image is from these very sources,
#                                     then run the image test (tests/image)
#                                     against it; ends with `image test ARCH: N passed, M failed`
#   ARCH: amd64 | aarch64 | armv7
# The Dockerfile's base images cannot be pulled here, so local stand-ins are made under their
# exact names from debootstrap roots of the same Debian release (docs/building.md says how each
# differs from the real image). ARM images run under qemu-user through binfmt_misc.
# Environment: BUILD_DIR (native build for the test's fakes, default build), DINODIA_IMAGE_KEEP=1
# keeps the test's containers and folders for a post-mortem.
set -euo pipefail
cd "$(dirname "$0")/.."
usage() {
  echo "usage: image.sh build|test amd64|aarch64|armv7" >&2
  exit 2
}
[ $# -eq 2 ] || usage
command="$1"
arch="$2"
case "$command" in build | test) ;; *) usage ;; esac
# shellcheck source=cross/arch.sh
. cross/arch.sh
dinodia_arch "$arch"

DINODIA_IMAGE_DEPS=1 ./scripts/install-deps.sh
# shellcheck source=scripts/podman-env.sh
. scripts/podman-env.sh
[ "$arch" = amd64 ] || ./scripts/enable-binfmt.sh

version=$(sed -n 's/^version: "\(.*\)"$/\1/p' addon/config.yaml)
image_name=$(sed -n 's/^image: //p' addon/config.yaml)
image="${image_name//\{arch\}/$arch}:$version"
builder_image=$(sed -n 's/^ARG BUILDER_IMAGE=//p' addon/Dockerfile)
base_tag=$(sed -n 's/^ARG BASE_IMAGE_TAG=//p' addon/Dockerfile)
base_image="ghcr.io/home-assistant/$arch-base-debian:$base_tag"

# A stand-in is made once and kept in podman's storage; its recipe (this script's stand-in part)
# is stored as a label, so a changed recipe makes it again.
recipe_of() {  # name
  sed -n '/^# stand-in recipe begin/,/^# stand-in recipe end/p' "$0" | cat - <(echo "$1") |
    sha256sum | cut -c1-16
}
have_image() {  # ref, recipe
  [ "$(podman image inspect --format '{{ index .Labels "dev.dinodia.recipe" }}' "$1" 2>/dev/null)" = "$2" ]
}

# stand-in recipe begin
# Debian bookworm from debootstrap for `deb_arch`, with `packages` added, as an image named `ref`
# whose config mimics the real one (`containerfile_tail`: ENV, SHELL, LABEL, ENTRYPOINT).
make_standin() {  # ref, deb_arch, platform, packages, containerfile_tail
  local ref="$1" deb_arch="$2" platform="$3" packages="$4" tail="$5"
  local recipe
  recipe=$(recipe_of "$ref $deb_arch $packages $tail")
  if have_image "$ref" "$recipe"; then
    echo "stand-in $ref is ready"
    return 0
  fi
  local dir
  dir=$(mktemp -d /var/tmp/dinodia-standin-XXXXXX)
  echo "making the stand-in for $ref (debootstrap bookworm $deb_arch)"
  local include=()
  [ -n "$packages" ] && include=(--include="$packages")
  # A foreign architecture's second stage runs under qemu-user through binfmt_misc.
  if ! debootstrap --variant=minbase --arch="$deb_arch" "${include[@]}" bookworm "$dir/rootfs" \
    "${DINODIA_DEBIAN_MIRROR:-http://deb.debian.org/debian}" >"$dir/debootstrap.log" 2>&1; then
    tail -n 30 "$dir/debootstrap.log" >&2
    echo "image.sh: debootstrap failed for $ref" >&2
    exit 1
  fi
  # As the official Debian images: no apt caches, sources as deb.debian.org serves them.
  rm -rf "$dir/rootfs/var/cache/apt/archives/"*.deb "$dir/rootfs/var/lib/apt/lists/"*
  printf 'deb http://deb.debian.org/debian bookworm main\ndeb http://deb.debian.org/debian bookworm-updates main\n' \
    >"$dir/rootfs/etc/apt/sources.list"
  tar -C "$dir/rootfs" -cf "$dir/rootfs.tar" .
  {
    echo "FROM scratch"
    echo "ADD rootfs.tar /"
    printf '%s\n' "$tail"
    echo "LABEL dev.dinodia.recipe=\"$recipe\" dev.dinodia.standin=\"$ref\""
  } >"$dir/Containerfile"
  podman build --quiet --format docker --platform "$platform" --pull=never --layers=false \
    -t "$ref" "$dir" >/dev/null
  rm -rf "$dir"
  echo "stand-in $ref is ready"
}
# stand-in recipe end

standins() {
  # The build stage's image: plain Debian bookworm, for the build machine (amd64 here).
  make_standin "$builder_image" amd64 linux/amd64 "" 'CMD ["bash"]'
  # Home Assistant's Debian base: what its Dockerfile adds with apt (bash jq tzdata curl
  # ca-certificates xz-utils), its environment, shell and labels; not s6-overlay, bashio or
  # tempio, which the add-on does not use, and so no /init either: an image that still started
  # the base's entry point would fail here.
  make_standin "$base_image" "$DEB_ARCH" "$OCI_PLATFORM" \
    bash,jq,tzdata,curl,ca-certificates,xz-utils \
    "$(
      cat <<'EOF'
ENV LANG="C.UTF-8" DEBIAN_FRONTEND="noninteractive" CURL_CA_BUNDLE="/etc/ssl/certs/ca-certificates.crt" S6_BEHAVIOUR_IF_STAGE2_FAILS=2 S6_CMD_WAIT_FOR_SERVICES_MAXTIME=0 S6_CMD_WAIT_FOR_SERVICES=1 S6_SERVICES_READYTIME=50
SHELL ["/bin/bash", "-o", "pipefail", "-c"]
LABEL io.hass.type="base" io.hass.base.name="debian"
ENTRYPOINT ["/init"]
EOF
    )"
}

# What a build needs in podman's storage, with margin (1.9 GB measured: docs/building.md, "Disk").
need_space_gb=5
check_space() {
  local store avail_kb
  store=$(podman info --format '{{.Store.GraphRoot}}')
  mkdir -p "$store"
  avail_kb=$(df -Pk "$store" | awk 'NR == 2 { print $4 }')
  if [ "$avail_kb" -lt $((need_space_gb * 1024 * 1024)) ]; then
    echo "image.sh: $store has $((avail_kb / 1024)) MiB free; building an image needs ${need_space_gb} GiB" >&2
    echo "image.sh: podman's unused images go with: podman image prune -a (after sourcing scripts/podman-env.sh)" >&2
    exit 1
  fi
}

stage_addon() {  # prints the folder it staged the add-on repository in
  local stage
  stage=$(mktemp -d /var/tmp/dinodia-stage-XXXXXX)
  ./scripts/stage-addon.sh "$stage" >/dev/null
  echo "$stage"
}

# One hash of a staged add-on folder: every file's path, mode and content. An image carries the
# hash of the folder it was built from (label dev.dinodia.source), so that `test` builds again an
# image made from other sources rather than test a stale one.
source_hash() {  # staged add-on folder
  (
    cd "$1"
    find . -type f -printf '%m %p\n' | LC_ALL=C sort
    find . -type f -print0 | LC_ALL=C sort -z | xargs -0 sha256sum
  ) | sha256sum | cut -c1-16
}

build() {  # [a staged repository folder, removed after the build]
  check_space
  standins
  local stage="${1:-}"
  [ -n "$stage" ] || stage=$(stage_addon)
  local source
  source=$(source_hash "$stage/dinodia-hub-agent")
  echo "building $image for $arch ($OCI_PLATFORM) from the staged add-on folder (source $source)"
  local start=$SECONDS
  # --format docker keeps HEALTHCHECK (OCI image configs have no such field); --network host for
  # apt inside the build; the base images are the local stand-ins (--pull=never). BuildKit sets
  # BUILDPLATFORM by itself, Debian 12's buildah does not.
  # --layers=false: no image per step. The vfs driver stores each as a full copy of the
  # filesystem (about 1.3 GB per step of the build stage, 12 GB per build); one amd64 build with
  # both stand-ins then took 1.9 GB. Images left dangling (an earlier build of the same tag) are
  # removed after it.
  podman build --format docker --platform "$OCI_PLATFORM" --pull=never --network host \
    --layers=false \
    --build-arg BUILDPLATFORM="$(podman info --format '{{.Host.OS}}/{{.Host.Arch}}')" \
    --build-arg BUILD_ARCH="$arch" --build-arg BUILD_VERSION="$version" \
    --label "dev.dinodia.source=$source" \
    -t "$image" "$stage/dinodia-hub-agent"
  rm -rf "$stage"
  podman image prune -f >/dev/null
  echo "built $image in $((SECONDS - start)) s; size $(podman image inspect --format '{{.Size}}' "$image") bytes"
}

image_test() {
  local stage want have
  stage=$(stage_addon)
  want=$(source_hash "$stage/dinodia-hub-agent")
  have=$(podman image inspect --format '{{ index .Labels "dev.dinodia.source" }}' "$image" \
    2>/dev/null || true)
  if [ "$have" = "$want" ]; then
    echo "$image is built from these sources ($want)"
    rm -rf "$stage"
  else
    if [ -n "$have" ]; then
      echo "$image is built from other sources ($have): building it"
    else
      echo "$image is missing or without its source label: building it"
    fi
    build "$stage"
  fi
  local build_dir="${BUILD_DIR:-build}"
  # shellcheck source=scripts/ccache-env.sh
  . scripts/ccache-env.sh
  cmake -S . -B "$build_dir" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo >/dev/null
  cmake --build "$build_dir" -j "$(nproc)" --target image_test fake_ha fake_platform dinodia-hub-agent
  export DINODIA_IMAGE="$image" DINODIA_IMAGE_ARCH="$arch"
  local passed=0 failed=0 names
  mapfile -t names < <("$build_dir/tests/image_test" --list-test-names-only | sed '/^$/d')
  for name in "${names[@]}"; do
    echo "--- $name"
    # -w NoTests: a name the filter does not match fails instead of passing with no test run.
    if "$build_dir/tests/image_test" -w NoTests "$name"; then
      passed=$((passed + 1))
    else
      failed=$((failed + 1))
    fi
  done
  echo "image test $arch: $passed passed, $failed failed"
  [ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
}

case "$command" in
  build) build ;;
  test) image_test ;;
esac
