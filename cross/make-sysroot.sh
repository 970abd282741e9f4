#!/bin/sh
# Makes a Debian 12 (bookworm) sysroot for cross-compiling the agent for a hub's architecture:
# the target's C/C++ runtime and the -dev packages the build links against, unpacked, never run.
#   cross/make-sysroot.sh ARCH DIR [tests]
#     ARCH   amd64 | aarch64 | armv7 (add-on names; cross/arch.sh maps them)
#     DIR    where the sysroot goes; an existing sysroot made with the same package list is kept
#     tests  also the packages the tests and protocol fakes need (cpp-httplib, Catch2)
# Used by addon/Dockerfile's build stage and by scripts/test-arch.sh, so the image and the ARM
# test suites are built against the same libraries. Environment: DINODIA_DEBIAN_MIRROR (default
# http://deb.debian.org/debian). Only the bookworm suite itself is used, not bookworm-security:
# the archive's armhf security index has been failing its size check here, and one suite for
# every architecture keeps the three images alike. Why a sysroot and not multiarch apt, and what
# that means for OpenSSL updates: docs/building.md.
set -eu
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source=cross/arch.sh
. "$here/arch.sh"

arch="${1:?usage: make-sysroot.sh ARCH DIR [tests]}"
dir="${2:?usage: make-sysroot.sh ARCH DIR [tests]}"
profile="${3:-runtime}"
dinodia_arch "$arch"
mirror="${DINODIA_DEBIAN_MIRROR:-http://deb.debian.org/debian}"

packages="libstdc++-12-dev,libboost1.81-dev,libboost-system1.81-dev,libssl-dev,libsqlite3-dev,nlohmann-json3-dev"
case "$profile" in
  runtime) ;;
  tests) packages="$packages,libcpp-httplib-dev,catch2" ;;
  *)
    echo "make-sysroot.sh: unknown profile '$profile' (runtime or tests)" >&2
    exit 2
    ;;
esac

stamp="$dir/.dinodia-sysroot"
want="DEB_ARCH=$DEB_ARCH
TRIPLET=$TRIPLET
QEMU=$QEMU
PACKAGES=$packages"
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ]; then
  echo "sysroot for $arch is ready in $dir"
  exit 0
fi

rm -rf "$dir"
mkdir -p "$dir"
echo "making the $arch ($DEB_ARCH) sysroot in $dir from $mirror"
# --foreign: only download and unpack, nothing of the target runs (no emulator needed). The first
# stage unpacks the essential packages; the --include ones (and what they depend on) are only
# downloaded, so they are unpacked below.
debootstrap --variant=minbase --foreign --arch="$DEB_ARCH" --include="$packages" \
  bookworm "$dir" "$mirror" >"$dir.debootstrap.log" 2>&1 || {
  tail -n 20 "$dir.debootstrap.log" >&2
  echo "make-sysroot.sh: debootstrap failed for $arch (log: $dir.debootstrap.log)" >&2
  exit 1
}
for deb in "$dir"/var/cache/apt/archives/*.deb; do
  dpkg-deb -x "$deb" "$dir"
done
rm -f "$dir"/var/cache/apt/archives/*.deb

# Debian ships some library links as absolute paths (e.g. /lib/<triplet>/libz.so.1): inside a
# sysroot they would point at the build machine's own files, so every absolute link becomes a
# relative one within the sysroot.
find "$dir/usr" "$dir/etc" -type l | while read -r link; do
  target=$(readlink "$link")
  case "$target" in
    /*)
      rel_dir=$(dirname "${link#"$dir"}")
      up=$(echo "$rel_dir" | sed -e 's|/[^/]*|../|g')
      ln -sfn "${up}${target#/}" "$link"
      ;;
  esac
done

printf '%s\n' "$want" >"$stamp"
rm -f "$dir.debootstrap.log"
echo "sysroot for $arch is ready in $dir"
