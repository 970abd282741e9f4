# shellcheck shell=bash
# Sourced by scripts/image.sh: the podman settings this kind of machine needs, as configuration
# files that every podman call of the script and of the image test (tests/image) reads.
#   - storage driver vfs: overlay mounts are not available in this sandbox;
#   - runtime runc: crun fails here on setrlimit;
#   - ulimits inside what the sandbox allows: podman's default RLIMIT_NPROC and RLIMIT_NOFILE
#     are above this machine's hard limits and runc is refused raising them. Open files get a
#     soft limit of 1024, as Home Assistant OS 16 gives add-on containers.
# Storage stays podman's default (/var/lib/containers) so stand-ins and images are kept between
# runs.
podman_conf_dir=$(mktemp -d /tmp/dinodia-podman-XXXXXX)
cat >"$podman_conf_dir/containers.conf" <<CONF
[containers]
default_ulimits = ["nofile=1024:$(ulimit -Hn)", "nproc=4096:4096"]
[engine]
runtime = "runc"
CONF
cat >"$podman_conf_dir/storage.conf" <<CONF
[storage]
driver = "vfs"
runroot = "/run/containers/storage"
graphroot = "/var/lib/containers/storage"
CONF
export CONTAINERS_CONF="$podman_conf_dir/containers.conf"
export CONTAINERS_STORAGE_CONF="$podman_conf_dir/storage.conf"
