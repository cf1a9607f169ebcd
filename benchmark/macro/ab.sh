#!/usr/bin/env bash
# A/B of two builds of `fcgi bench` against the same private php-fpm (hello.php, unix socket,
# pool of 4, 4 in flight), alternating A, B and the C epoll floor client round after round, so a
# change in the library can be judged on this noisy machine: req/s and client CPU per request.
#
# Usage: benchmark/macro/ab.sh FCGI_A FCGI_B   (ROUNDS=3, SECONDS_PER_RUN=5; FLOOR overrides
#        the floor client, default build/bin/epoll_floor_client next to FCGI_B)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
[ $# = 2 ] || { echo "usage: $0 FCGI_A FCGI_B" >&2; exit 2; }
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"
ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-5}
floor=${FLOOR:-$(dirname "$2")/epoll_floor_client}

fcgi_macro_install
fcgi_macro_start

printf '%-6s %-6s %10s %14s\n' round build req/s cpu_us/req
for r in $(seq 1 "$ROUNDS"); do
  for side in A B; do
    bin=$1
    [ $side = B ] && bin=$2
    json=$(timeout $((SECONDS_PER_RUN + 30)) "$bin" bench --connect "unix:$FPM_SOCK" \
      --root "$SCRIPT_ROOT" "${FLOOR_HEADERS[@]}" --concurrency 4 --connections 4 \
      --duration "$SECONDS_PER_RUN" --json hello.php) || true
    python3 - "$r" "$side" "$json" <<'EOF2'
import json, sys
j = json.loads(sys.argv[3])
print(f'{sys.argv[1]:<6} {sys.argv[2]:<6} {j["rps"]:10.0f} {j["client_cpu_s"] / max(j["ok"], 1) * 1e6:14.2f}')
EOF2
  done
  if [ -x "$floor" ]; then
    out=$(timeout $((SECONDS_PER_RUN + 30)) "$floor" -c 4 -n 100000000 -t "$SECONDS_PER_RUN" \
      -w 1000 "$FPM_SOCK")
    python3 - "$r" "$out" <<'EOF2'
import sys
kv = dict(f.split("=", 1) for f in sys.argv[2].split() if "=" in f)
print(f'{sys.argv[1]:<6} {"floor":<6} {float(kv["req_per_s"]):10.0f} {float(kv["cpu_us_per_req"]):14.2f}')
EOF2
  fi
done
