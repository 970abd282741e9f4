#!/usr/bin/env bash
# Lets this machine run ARM binaries directly: mounts binfmt_misc if the kernel has not, and
# enables qemu-user-static's handlers (Debian's binfmt-support registers them with the F flag,
# so they also work inside containers and chroots). Used by scripts/image.sh for the ARM images
# and their stand-ins; needs root.
set -euo pipefail
if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
  mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
fi
for handler in qemu-aarch64 qemu-arm; do
  if [ ! -e "/proc/sys/fs/binfmt_misc/$handler" ]; then
    update-binfmts --enable "$handler"
  fi
  if [ ! -e "/proc/sys/fs/binfmt_misc/$handler" ]; then
    echo "enable-binfmt.sh: could not register $handler (is qemu-user-static installed?)" >&2
    exit 1
  fi
done
