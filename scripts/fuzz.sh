#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (ASan+UBSan) in build-fuzz and runs each one for
# FUZZ_SECONDS (default 20) over a copy of its committed corpus. Fails, naming the reproducer,
# when a target crashes, leaks, times out or breaks an invariant. New inputs stay in the copy:
# add a crash's reproducer to fuzz/corpus/<target>/ once fixed.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${FUZZ_SECONDS:-20}
build=${FUZZ_BUILD_DIR:-build-fuzz}
targets=(record_decoder name_value cgi_head fpm_status)

command -v clang++ >/dev/null || { echo "fuzz: clang++ missing (scripts/setup.sh)" >&2; exit 1; }

CC=clang CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DFCGI_FUZZ=ON -DFCGI_BUILD_TESTS=ON -DFCGI_BUILD_BENCHMARKS=OFF \
  -DFCGI_BUILD_EXAMPLES=OFF -DFCGI_BUILD_TOOLS=OFF >/dev/null
cmake --build "$build" -j "$(nproc)" --target "${targets[@]/#/fuzz_}"

status=0
for t in "${targets[@]}"; do
  work="$build/fuzz-work/$t"
  rm -rf "$work"
  mkdir -p "$work/corpus" "$work/artifacts"
  cp fuzz/corpus/"$t"/* "$work/corpus/"
  echo "fuzz: $t for ${seconds}s"
  # One process that stops at the first crash, so its reproducer is the one reported.
  if ! "$build/bin/fuzz_$t" -max_total_time="$seconds" -timeout=5 -rss_limit_mb=2048 \
      -print_final_stats=1 -artifact_prefix="$work/artifacts/" "$work/corpus" \
      >"$work/log" 2>&1; then
    status=1
    echo "fuzz: $t FAILED; last lines of $work/log:" >&2
    tail -n 40 "$work/log" >&2
    for f in "$work"/artifacts/*; do
      [ -e "$f" ] && echo "fuzz: reproducer: $f (replay: $build/bin/fuzz_$t $f)" >&2
    done
  else
    grep -E '^stat::number_of_executed_units|^Done' "$work/log" | sed "s/^/fuzz: $t: /" || true
  fi
done
[ "$status" -eq 0 ] && echo "fuzz: no crash in ${#targets[@]} targets"
exit "$status"
