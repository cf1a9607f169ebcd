#!/usr/bin/env bash
# README command 1: installs what is missing, builds everything, starts a private php-fpm and
# fans out hundreds of real PHP runs through the library, then stops php-fpm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset default
cmake --build --preset default -j "$(nproc)"

dir=$(mktemp -d /tmp/fcgi-demo-XXXXXX)
sed "s|@DIR@|$dir|g" examples/demo/php-fpm.conf.in > "$dir/php-fpm.conf"
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

# php-fpm gives no readiness signal but its socket: wait for it, bounded.
for _ in $(seq 1 200); do
  [ -S "$dir/php-fpm.sock" ] && break
  kill -0 "$fpm_pid" 2>/dev/null || { cat "$dir/php-fpm.log" "$dir/stdout.log" >&2; exit 1; }
  sleep 0.05
done
[ -S "$dir/php-fpm.sock" ] || { echo "php-fpm did not start" >&2; exit 1; }

build/bin/fanout_demo "unix:$dir/php-fpm.sock" "$PWD/examples/demo/php" "${DEMO_JOBS:-600}" 4
