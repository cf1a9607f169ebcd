#!/usr/bin/env bash
# README command 2: installs what is missing, builds everything, runs every test (unit,
# integration against a private php-fpm, formatting), then the same tests under ASan+UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j "$jobs"
ctest --preset default -j "$jobs"

if [ "${FCGI_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake --preset asan
  cmake --build --preset asan -j "$jobs"
  ctest --preset asan -j "$jobs" -LE "lint|install"
fi

# libFuzzer runs of the protocol code (clang, ~1 minute); the corpora also replay in ctest above.
if [ "${FCGI_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi
