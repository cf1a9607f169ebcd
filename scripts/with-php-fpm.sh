#!/usr/bin/env bash
# Starts a private php-fpm (examples/demo/php-fpm.conf.in) in a temp dir, runs the given command
# with FCGI_ENDPOINT=unix:<socket> in its environment, then stops php-fpm by its PID.
# Usage: scripts/with-php-fpm.sh COMMAND [ARGS...]   (e.g. '"$FCGI_ENDPOINT"' via bash -c)
# FCGI_FPM_POOLS=N starts N separate php-fpm instances: FCGI_ENDPOINT_1..N and FCGI_FPM_PID_1..N
# (FCGI_ENDPOINT is the first); `fcgi_stop_pool I` (a bash function) stops instance I and waits
# until it is gone.
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/fcgi-fpm-XXXXXX)
pools=${FCGI_FPM_POOLS:-1}
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(-R)
fpm_pids=()
# Our child still, by /proc/PID/stat's parent field (after the last ')', as comm may hold
# spaces): a pool fcgi_stop_pool stopped has been reaped, and its PID may belong to anything now.
ours() {
  local stat rest ppid
  stat=$(cat "/proc/$1/stat" 2>/dev/null) || return 1
  rest=${stat##*) }
  read -r _ ppid _ <<<"$rest"
  [ "$ppid" = "$$" ]
}
cleanup() {
  for pid in "${fpm_pids[@]}"; do ours "$pid" && kill "$pid" 2>/dev/null || true; done
  for pid in "${fpm_pids[@]}"; do wait "$pid" 2>/dev/null || true; done
  rm -rf "$dir"
}
trap cleanup EXIT

for i in $(seq 1 "$pools"); do
  d=$dir
  [ "$i" -eq 1 ] || { d=$dir/pool$i; mkdir "$d"; }
  sed "s|@DIR@|$d|g" "$src/examples/demo/php-fpm.conf.in" > "$d/php-fpm.conf"
  php-fpm8.2 -F -y "$d/php-fpm.conf" "${as_root[@]}" >"$d/stdout.log" 2>&1 &
  fpm_pid=$!
  fpm_pids+=("$fpm_pid")
  # php-fpm gives no readiness signal but its socket: wait for it, bounded (10 s).
  for _ in $(seq 1 200); do
    [ -S "$d/php-fpm.sock" ] && break
    kill -0 "$fpm_pid" 2>/dev/null || { cat "$d/php-fpm.log" "$d/stdout.log" >&2; exit 1; }
    sleep 0.05
  done
  [ -S "$d/php-fpm.sock" ] || { echo "php-fpm did not start" >&2; exit 1; }
  export "FCGI_ENDPOINT_$i=unix:$d/php-fpm.sock" "FCGI_FPM_PID_$i=$fpm_pid"
done

# Stops instance $1 (SIGTERM) and waits, bounded (10 s), until its master has exited.
fcgi_stop_pool() {
  local var="FCGI_FPM_PID_$1"
  local pid=${!var}
  kill "$pid"
  for _ in $(seq 1 200); do
    kill -0 "$pid" 2>/dev/null || return 0
    sleep 0.05
  done
  echo "php-fpm $pid did not stop" >&2
  return 1
}
export -f fcgi_stop_pool

export FCGI_ENDPOINT="$FCGI_ENDPOINT_1"
export FCGI_PHP_DIR="$src/examples/demo/php"
"$@"
