#!/usr/bin/env bash
# Builds test/subproject, a user's project that compiles asio-fcgi as part of itself, with
# add_subdirectory and with FetchContent (from a tarball of this source tree: no network), and
# runs its program. Usage: scripts/check-subproject.sh [add_subdirectory|FetchContent]...
set -euo pipefail
src=$(cd "$(dirname "$0")/.." && pwd)
work=$(mktemp -d /tmp/fcgi-subproject-XXXXXX)
trap 'rm -rf "$work"' EXIT
[ $# -gt 0 ] || set -- add_subdirectory FetchContent

for how in "$@"; do
  args=(-DFCGI_HOW="$how")
  case "$how" in
    add_subdirectory) args+=(-DFCGI_SOURCE_DIR="$src") ;;
    FetchContent)
      tar -C "$src" --exclude-vcs --exclude='./build*' --exclude=./.cache \
          -czf "$work/asio-fcgi.tar.gz" .
      args+=(-DFCGI_URL="file://$work/asio-fcgi.tar.gz") ;;
    *) echo "unknown way '$how'" >&2; exit 2 ;;
  esac
  cmake -S "$src/test/subproject" -B "$work/$how" -G Ninja "${args[@]}" >"$work/$how.log" 2>&1 ||
    { cat "$work/$how.log"; exit 1; }
  cmake --build "$work/$how" >>"$work/$how.log" 2>&1 || { cat "$work/$how.log"; exit 1; }
  out=$("$work/$how/consumer")
  [ "$out" = "unix:/run/php/php8.2-fpm.sock" ] || { echo "$how: consumer printed '$out'"; exit 1; }
  echo "subproject: $how consumer built and ran"
done
