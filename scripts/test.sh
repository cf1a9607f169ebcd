#!/usr/bin/env bash
# README command 2: installs what is missing, builds everything, runs every test (unit,
# integration against a private php-fpm, CLI, examples, install, formatting), fuzzes the
# protocol code for about a minute, then runs the tests again under ASan+UBSan. The output ends
# with ctest's summary line.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
jobs=$(nproc)

cmake --preset default
cmake --build --preset default -j "$jobs"
ctest --preset default -j "$jobs"

# libFuzzer runs of the protocol code (clang); the corpora also replay in ctest above.
if [ "${FCGI_SKIP_FUZZ:-0}" != 1 ]; then
  bash scripts/fuzz.sh
fi

if [ "${FCGI_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake --preset asan
  cmake --build --preset asan -j "$jobs"
  ctest --preset asan -j "$jobs" -LE "lint|install"
fi
