# shellcheck shell=bash
# Sourced by scripts/background.sh and scripts/demo.sh: waiting for a started process's port.

# Prints the port a process logged ("LISTENING <port>" from the stand-ins, "port: <n>" from the
# agent) once `marker` shows up in its log file; gives up after `seconds` (default 10).
wait_port() {  # file, marker, [seconds]
  local tries=$((${3:-10} * 20))
  for _ in $(seq 1 "$tries"); do
    if grep -q "$2" "$1" 2>/dev/null; then
      grep -m1 "$2" "$1" | sed -E 's/.*(LISTENING |port: )([0-9]+).*/\2/'
      return 0
    fi
    sleep 0.05
  done
  echo "timed out waiting for $2 in $1" >&2
  cat "$1" >&2
  return 1
}
