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
#        a floor that spends 2 us more per response)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# -ge 1 ] || { echo "usage: $0 FCGI..." >&2; exit 2; }
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
ROUNDS=${ROUNDS:-3}
REQUESTS=${REQUESTS:-100000}
floor=${FLOOR:-$(dirname "$1")/epoll_floor_client}
read -r -a spins <<<"${FLOOR_SPIN:-0}"
runs=("$@")
[ -x "$floor" ] && for ns in "${spins[@]}"; do runs+=("floor:$ns"); done

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

printf '%-5s %-13s %9s  %-28s  %-22s\n' round client req/s \
  "php-fpm us/req (user sys vcs)" "client us/req (user sys)"
for r in $(seq 1 "$ROUNDS"); do
  i=0
  for bin in "${runs[@]}"; do
    i=$((i + 1))
    name=$i
    read -r u0 s0 v0 < <(fpm_counters)
    if [[ "$bin" == floor:* ]]; then
      ns=${bin#floor:}
      name=floor
      [ "$ns" = 0 ] || name="floor+${ns}ns"
      /usr/bin/time -f '%e %U %S' -o "$MACRO_DIR/time" timeout 120 "$floor" -c 4 \
        -n "$REQUESTS" -t 110 -w 0 --spin-ns "$ns" "$FPM_SOCK" >/dev/null
    else
      /usr/bin/time -f '%e %U %S' -o "$MACRO_DIR/time" timeout 120 "$bin" bench \
        --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" "${FLOOR_HEADERS[@]}" \
        --concurrency 4 --connections 4 --requests "$REQUESTS" hello.php >/dev/null
    fi
    read -r u1 s1 v1 < <(fpm_counters)
    python3 - "$r" "$name" "$REQUESTS" "$(getconf CLK_TCK)" "$u0 $s0 $v0 $u1 $s1 $v1" \
      "$(tail -1 "$MACRO_DIR/time")" <<'EOF'
import sys
r, name, n, tck = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
u0, s0, v0, u1, s1, v1 = map(int, sys.argv[5].split())
el, cu, cs = map(float, sys.argv[6].split())
us = 1e6 / n
print(f'{r:<5} {name:<13} {n / el:9.0f}  {(u1 - u0) / tck * us:6.1f} {(s1 - s0) / tck * us:6.1f} '
      f'{(v1 - v0) / n:5.2f}{"":9}  {cu * us:6.1f} {cs * us:6.1f}')
EOF
  done
done
