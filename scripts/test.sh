#!/usr/bin/env bash
# README command 2: installs what is missing, builds everything, runs every test (unit,
# integration against a private php-fpm, CLI, examples, install, formatting), fuzzes the
# protocol code for about a minute, then runs the tests again under ASan+UBSan, the
# multi-threaded stress test under TSan, and the soak test (docs/reliability.md). The output ends
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
  ctest --preset asan -j "$jobs" -LE "lint|install|soak"
fi

# ThreadSanitizer: the multi-threaded stress test plus the connection fault tests (label
# "stress"), built alone.
if [ "${FCGI_SKIP_SANITIZERS:-0}" != 1 ]; then
  cmake --preset tsan
  cmake --build --preset tsan -j "$jobs"
  # GCC 12's TSan runtime aborts ("unexpected memory mapping") when the kernel randomises
  # mmap with more than 28 bits (vm.mmap_rnd_bits, 32 on newer kernels); without ASLR it runs.
  tsan_prefix=()
  if [ "$(cat /proc/sys/vm/mmap_rnd_bits 2>/dev/null || echo 28)" -gt 28 ]; then
    tsan_prefix=(setarch "$(uname -m)" -R)
  fi
  "${tsan_prefix[@]}" ctest --preset tsan
fi

# Soak (label "soak"): fan-out against php-fpm while workers are SIGKILLed; FCGI_SOAK_SECONDS
# sets its length (120 s by default).
if [ "${FCGI_SKIP_SOAK:-0}" != 1 ]; then
  ctest --preset soak
fi
