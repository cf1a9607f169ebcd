#!/usr/bin/env bash
# Macro benchmark (issue 6): `fcgi bench` straight to php-fpm against wrk -> nginx -> php-fpm on
# the same hello-world script, same private php-fpm (pm=static, 4 workers, unix socket).
#
# 1. ROUNDS rounds of SECONDS_PER_RUN s each, alternating fcgi bench (pool of 4, concurrency 4),
#    wrk (4 connections) and the C epoll floor client (4 connections; build/bin/epoll_floor_client,
#    skipped when not built), then a table of req/s, p99, CPU per request, the ratio, client CPU
#    against the floor and the share of the ceiling (cores / (php-fpm CPU + floor CPU) per
#    request); then the client's peak RSS with 10,000 requests queued.
# 2. A concurrency sweep (SWEEP, SWEEP_SECONDS s per point, both tools) written to
#    docs/benchmarks-sweep.dat and rendered by benchmark/macro/sweep.gp to docs/benchmarks-sweep.svg.
#
# Usage: benchmark/macro/run.sh   (needs build/bin/fcgi; FCGI_BIN overrides; root for apt)
# Environment: ROUNDS (3), SECONDS_PER_RUN (10), SWEEP ("1 4 16 64"), SWEEP_SECONDS (5),
# NO_SWEEP=1 skips part 2. Every run is bounded by `timeout`.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=runs.sh
source "$here/runs.sh"

SWEEP=${SWEEP:-"1 4 16 64"}
SWEEP_SECONDS=${SWEEP_SECONDS:-5}
docs=$macro_src/docs

fcgi_macro_install
fcgi_macro_start

echo "machine: $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
echo "warmup (2 s each)"
run_fcgi 4 2 >/dev/null
run_wrk 4 2 >/dev/null

printf '\n%-6s %-10s %10s %9s %14s %12s %8s\n' round tool req/s p99_ms cpu_us/req fpm_us/req failed
fr=() fp=() fc=() ff=() wr=() wp=() wc=() wf=() lr=() lc=() lf=()
have_floor=0
[ -x "$floor_bin" ] && have_floor=1 ||
  echo "no $floor_bin (cmake --build build --target epoll_floor_client): floor skipped" >&2
for r in $(seq 1 "$ROUNDS"); do
  read -r rps p99 cpu fpm fail < <(run_fcgi 4 "$SECONDS_PER_RUN")
  printf '%-6s %-10s %10s %9s %14s %12s %8s\n' "$r" "fcgi" "$rps" "$p99" "$cpu" "$fpm" "$fail"
  fr+=("$rps") fp+=("$p99") fc+=("$cpu") ff+=("$fpm")
  read -r rps p99 cpu fpm fail < <(run_wrk 4 "$SECONDS_PER_RUN")
  printf '%-6s %-10s %10s %9s %14s %12s %8s\n' "$r" "wrk+nginx" "$rps" "$p99" "$cpu" "$fpm" "$fail"
  wr+=("$rps") wp+=("$p99") wc+=("$cpu") wf+=("$fpm")
  if [ $have_floor = 1 ]; then
    read -r rps cpu fpm < <(run_floor 4 "$SECONDS_PER_RUN")
    printf '%-6s %-10s %10s %9s %14s %12s %8s\n' "$r" "C floor" "$rps" "-" "$cpu" "$fpm" "-"
    lr+=("$rps") lc+=("$cpu") lf+=("$fpm")
  fi
done
mfr=$(median "${fr[@]}") mwr=$(median "${wr[@]}")
printf '\nmedians over %s rounds of %s s, concurrency 4 (fcgi: pool of 4; wrk: 4 connections, 2 threads)\n' \
  "$ROUNDS" "$SECONDS_PER_RUN"
printf '| tool | req/s | p99 ms | client or nginx CPU µs/req | php-fpm CPU µs/req |\n|---|---:|---:|---:|---:|\n'
printf '| fcgi bench | %s | %s | %s (client) | %s |\n' "$mfr" "$(median "${fp[@]}")" "$(median "${fc[@]}")" "$(median "${ff[@]}")"
printf '| wrk -> nginx | %s | %s | %s (nginx) | %s |\n' "$mwr" "$(median "${wp[@]}")" "$(median "${wc[@]}")" "$(median "${wf[@]}")"
python3 -c "print(f'ratio fcgi bench / nginx: {$mfr / $mwr:.2f}x (target >= 2.0x)')"
if [ $have_floor = 1 ]; then
  mlc=$(median "${lc[@]}") mfc=$(median "${fc[@]}") mlf=$(median "${lf[@]}") mlr=$(median "${lr[@]}")
  printf '| C epoll floor | %s | - | %s (client) | %s |\n' "$mlr" "$mlc" "$mlf"
  # The ceiling takes php-fpm's CPU per request under the floor client: its own cost when the
  # client is as cheap as can be.
  python3 - "$mfc" "$mlc" "$mlf" "$mfr" "$mlr" "$(nproc)" <<'EOF2'
import sys
client, floor, fpm, rps, floor_rps, cores = map(float, sys.argv[1:])
ceiling = cores / ((fpm + floor) * 1e-6)
print(f"client CPU / floor CPU: {client / floor:.2f}x (target <= 1.25x)")
print(f"ceiling = {cores:.0f} cores / ({fpm:.1f} us php-fpm + {floor:.2f} us floor) = {ceiling:.0f} req/s; "
      f"fcgi bench reaches {rps / ceiling * 100:.0f} % (target >= 85 %), the floor client "
      f"{floor_rps / ceiling * 100:.0f} %")
EOF2
  # Rounds alternate the tools, so the three runs of a round share the machine's state (this VM's
  # speed drifts by 30 % between rounds): ratios within a round are the fairer comparison.
  python3 - "$(nproc)" "${fr[*]}" "${wr[*]}" "${fc[*]}" "${lr[*]}" "${lc[*]}" "${lf[*]}" <<'EOF2'
import statistics, sys
cores = float(sys.argv[1])
fr, wr, fc, lr, lc, lf = ([float(x) for x in a.split()] for a in sys.argv[2:])
def show(name, values, fmt, target):
    rounds = " ".join(fmt.format(v) for v in values)
    print(f"  {name}: {fmt.format(statistics.median(values))} ({target}; rounds: {rounds})")
print("paired, median of the per-round ratios:")
show("fcgi bench / nginx req/s", [f / w for f, w in zip(fr, wr)], "{:.2f}x", "target >= 2.0x")
show("C floor / nginx req/s", [l / w for l, w in zip(lr, wr)], "{:.2f}x", "what the cheapest client gets")
show("client CPU / floor CPU", [c / l for c, l in zip(fc, lc)], "{:.2f}x", "target <= 1.25x")
ceil = [cores / ((f + l) * 1e-6) for f, l in zip(lf, lc)]
show("fcgi bench / ceiling", [f / c * 100 for f, c in zip(fr, ceil)], "{:.0f} %", "target >= 85 %")
show("ceiling / nginx req/s", [c / w for c, w in zip(ceil, wr)], "{:.2f}x", "the most any client can get")
EOF2
fi
echo "load after: $(uptime | sed 's/.*load/load/')"

# 10,000 requests queued at once on a pool of 4: the client's peak RSS (target <= 30 MB).
timeout 120 /usr/bin/time -v -o "$MACRO_DIR/time-queue.txt" "$FCGI_BIN" bench \
  --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" --concurrency 10000 --connections 4 \
  --requests 50000 --json hello.php > "$MACRO_DIR/queue.json" || true
python3 - "$MACRO_DIR/queue.json" "$(sed -n 's/.*Maximum resident set size (kbytes): //p' "$MACRO_DIR/time-queue.txt")" <<'EOF2'
import json, sys
j = json.load(open(sys.argv[1]))
print(f"10,000 in flight, 4 connections, 50,000 requests: {j['ok']} ok, peak RSS {int(sys.argv[2]) / 1024:.1f} MiB "
      f"(target <= 30 MB), {j['rps']:.0f} req/s")
EOF2

[ -z "${NO_SWEEP:-}" ] || exit 0
dat=$docs/benchmarks-sweep.dat
{
  echo "# concurrency fcgi_rps fcgi_p99_ms nginx_rps nginx_p99_ms  (benchmark/macro/run.sh, $(date -u +%F))"
  echo "# fcgi bench: --connections min(c,4); wrk: -c c -t min(c,2); ${SWEEP_SECONDS} s per point; $(nproc) CPUs"
} > "$dat.tmp"
printf '\n%-12s %10s %9s %10s %9s\n' concurrency fcgi_rps p99_ms nginx_rps p99_ms
for c in $SWEEP; do
  read -r frps fp99 _ _ ffail < <(run_fcgi "$c" "$SWEEP_SECONDS")
  read -r wrps wp99 _ _ wfail < <(run_wrk "$c" "$SWEEP_SECONDS")
  printf '%-12s %10s %9s %10s %9s   (failed: fcgi %s, wrk %s)\n' "$c" "$frps" "$fp99" "$wrps" "$wp99" "$ffail" "$wfail"
  echo "$c $frps $fp99 $wrps $wp99" >> "$dat.tmp"
done
mv "$dat.tmp" "$dat"
gnuplot -e "datafile='$dat'; outfile='$docs/benchmarks-sweep.svg'" "$here/sweep.gp"
echo "wrote $dat and $docs/benchmarks-sweep.svg"
