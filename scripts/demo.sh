#!/usr/bin/env bash
# README command 1: installs what is missing, builds everything, starts a private php-fpm and
# fans out hundreds of real PHP runs through the library, then stops php-fpm.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
cmake --preset default
cmake --build --preset default -j "$(nproc)"
# shellcheck disable=SC2016
exec scripts/with-php-fpm.sh bash -c \
  'build/bin/fanout_demo "$FCGI_ENDPOINT" "$FCGI_PHP_DIR" "${DEMO_JOBS:-600}" 4'
