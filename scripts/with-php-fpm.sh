#!/usr/bin/env bash
# Starts a private php-fpm (examples/demo/php-fpm.conf.in) in a temp dir, runs the given command
# with FCGI_ENDPOINT=unix:<socket> in its environment, then stops php-fpm by its PID.
# Usage: scripts/with-php-fpm.sh COMMAND [ARGS...]   (e.g. '"$FCGI_ENDPOINT"' via bash -c)
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
dir=$(mktemp -d /tmp/fcgi-fpm-XXXXXX)
sed "s|@DIR@|$dir|g" "$src/examples/demo/php-fpm.conf.in" > "$dir/php-fpm.conf"
as_root=()
[ "$(id -u)" -ne 0 ] || as_root=(-R)
php-fpm8.2 -F -y "$dir/php-fpm.conf" "${as_root[@]}" >"$dir/stdout.log" 2>&1 &
fpm_pid=$!
cleanup() {
  kill "$fpm_pid" 2>/dev/null || true
  wait "$fpm_pid" 2>/dev/null || true
  rm -rf "$dir"
}
trap cleanup EXIT

# php-fpm gives no readiness signal but its socket: wait for it, bounded (10 s).
for _ in $(seq 1 200); do
  [ -S "$dir/php-fpm.sock" ] && break
  kill -0 "$fpm_pid" 2>/dev/null || { cat "$dir/php-fpm.log" "$dir/stdout.log" >&2; exit 1; }
  sleep 0.05
done
[ -S "$dir/php-fpm.sock" ] || { echo "php-fpm did not start" >&2; exit 1; }

export FCGI_ENDPOINT="unix:$dir/php-fpm.sock"
export FCGI_PHP_DIR="$src/examples/demo/php"
"$@"
