#!/usr/bin/env bash
# What php-fpm's workers pay per request under each client: their user and system CPU and their
# voluntary context switches (a worker that finds no next request on its socket sleeps in read()),
# beside each client's own user and system CPU, for fcgi bench builds and the C epoll floor
# client, alternating, against the same private php-fpm (hello.php, unix socket, 4 workers,
# 4 connections). It shows where a gap between fcgi bench and the floor lies: in the client, or
# in what the client's pace makes php-fpm do.
#
# Usage: benchmark/macro/fpm_cost.sh FCGI...   (ROUNDS=3, REQUESTS=100000 per run; each run is
#        bounded to 120 s; FLOOR overrides the floor client, default build/bin/epoll_floor_client
#        next to the first FCGI; FLOOR_SPIN="0 2000" also runs the floor with --spin-ns 2000,
#        a floor that spends 2 us more per response; FLOOR_DEPTH="1 2" also runs it with 2
#        requests written per connection, pipelined)
# An FCGI argument may carry bench flags after the binary, one word each; they replace the default
# "--concurrency 4 --connections 4" as a whole: 'build/bin/fcgi --multiplex on --concurrency 8
# --connections 4' pipelines 2 requests per php-fpm connection. fcgi bench's p99 is printed too.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 FCGI..." >&2; exit 2; }
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
read -r -a spins <<<"${FLOOR_SPIN:-0}"
read -r -a depths <<<"${FLOOR_DEPTH:-1}"
runs=("$@")
for spec in "$@"; do
  read -r -a words <<<"$spec"
  [ ${#words[@]} -gt 0 ] || { echo "$0: an empty FCGI argument" >&2; exit 2; }
done
read -r -a first <<<"$1"
floor=${FLOOR:-$(dirname "${first[0]}")/epoll_floor_client}
[ -x "$floor" ] && for ns in "${spins[@]}"; do
  for d in "${depths[@]}"; do runs+=("floor:$ns:$d"); done
done

fcgi_macro_install
fcgi_macro_start

# "utime stime voluntary_switches" summed over php-fpm's master and workers (ticks, count).
fpm_counters() {
  local u=0 s=0 v=0 pid
  for pid in "$FPM_PID" $(pgrep -P "$FPM_PID"); do
    read -r pu ps < <(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12, $13}')
    u=$((u + pu))
    s=$((s + ps))
    v=$((v + $(awk '/^voluntary_ctxt_switches/{print $2}' "/proc/$pid/status")))
  done
  echo "$u $s $v"
}

printf '%-5s %-20s %9s  %-28s  %-22s %s\n' round client req/s \
  "php-fpm us/req (user sys vcs)" "client us/req (user sys)" "p99 ms"
for r in $(seq 1 "$ROUNDS"); do
  i=0
  for bin in "${runs[@]}"; do
    i=$((i + 1))
    name=$i
    read -r u0 s0 v0 < <(fpm_counters)
    p99=-
    if [[ "$bin" == floor:* ]]; then
      IFS=: read -r _ ns d <<<"$bin"
      name=floor
      [ "$ns" = 0 ] || name="floor+${ns}ns"
      [ "$d" = 1 ] || name="$name/depth$d"
      /usr/bin/time -f '%e %U %S' -o "$MACRO_DIR/time" timeout 120 "$floor" -c 4 \
        -n "$REQUESTS" -t 110 -w 0 --spin-ns "$ns" --depth "$d" "$FPM_SOCK" >/dev/null
    else
      read -r -a words <<<"$bin"
      flags=("${words[@]:1}")
      [ ${#flags[@]} -gt 0 ] || flags=(--concurrency 4 --connections 4)
      /usr/bin/time -f '%e %U %S' -o "$MACRO_DIR/time" timeout 120 "${words[0]}" bench \
        --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" "${FLOOR_HEADERS[@]}" "${flags[@]}" \
        --requests "$REQUESTS" --json hello.php >"$MACRO_DIR/bench.json"
      p99=$(python3 -c 'import json, sys; print("%.2f" % json.load(open(sys.argv[1]))["latency_ms"]["p99"])' \
        "$MACRO_DIR/bench.json")
    fi
    read -r u1 s1 v1 < <(fpm_counters)
    python3 - "$r" "$name" "$REQUESTS" "$(getconf CLK_TCK)" "$u0 $s0 $v0 $u1 $s1 $v1" \
      "$(tail -1 "$MACRO_DIR/time")" "$p99" <<'EOF'
import sys
r, name, n, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u0, s0, v0, u1, s1, v1 = map(int, sys.argv[5].split())
el, cu, cs = map(float, sys.argv[6].split())
us = 1e6 / n
print(f'{r:<5} {name:<20} {n / el:9.0f}  {(u1 - u0) / tck * us:6.1f} {(s1 - s0) / tck * us:6.1f} '
      f'{(v1 - v0) / n:5.2f}{"":9}  {cu * us:6.1f} {cs * us:6.1f}{"":9} {sys.argv[7]}')
EOF
  done
done
