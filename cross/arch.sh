# shellcheck shell=sh
# The one place that relates an add-on architecture name (config.yaml `arch`, Home Assistant's
# BUILD_ARCH) to Debian's architecture, the GNU triplet of Debian's cross compiler and the
# qemu-user emulator that runs its binaries here. Sourced by cross/make-sysroot.sh,
# scripts/image.sh and scripts/test-arch.sh; docs/building.md explains the whole path.
#   dinodia_arch aarch64 && echo "$DEB_ARCH $TRIPLET $QEMU"
dinodia_arch() {
  case "$1" in
    amd64) DEB_ARCH=amd64 TRIPLET=x86_64-linux-gnu QEMU=qemu-x86_64-static OCI_PLATFORM=linux/amd64 ;;
    aarch64) DEB_ARCH=arm64 TRIPLET=aarch64-linux-gnu QEMU=qemu-aarch64-static OCI_PLATFORM=linux/arm64 ;;
    armv7) DEB_ARCH=armhf TRIPLET=arm-linux-gnueabihf QEMU=qemu-arm-static OCI_PLATFORM=linux/arm/v7 ;;
    *)
      echo "unknown architecture '$1': expected amd64, aarch64 or armv7" >&2
      return 1
      ;;
  esac
  export DEB_ARCH TRIPLET QEMU OCI_PLATFORM
}

# The Debian package with the C++ compiler that builds for $DEB_ARCH on this machine: the native
# g++ when the target is this machine's own architecture, otherwise Debian's cross compiler.
dinodia_compiler_package() {
  if [ "$DEB_ARCH" = "$(dpkg --print-architecture)" ]; then
    echo g++
  else
    echo "g++-$(echo "$TRIPLET" | tr _ -)"
  fi
}
