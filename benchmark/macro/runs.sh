# shellcheck shell=bash
# Shared by benchmark/macro/run.sh and clients.sh (sourced, not run; it sources common.sh): one
# timed run of each tool on the private php-fpm of fcgi_macro_start, the median of a list, and
# the rounds both compare over (ROUNDS, default 3, of SECONDS_PER_RUN s, default 10).
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

ROUNDS=${ROUNDS:-3}
SECONDS_PER_RUN=${SECONDS_PER_RUN:-10}

floor_bin=$(dirname "$FCGI_BIN")/epoll_floor_client

# run_fcgi CONCURRENCY SECONDS [BENCH OPTION...] -> "rps p99_ms client_cpu_us_per_req fpm_cpu_us_per_req failures"
run_fcgi() {
  local c=$1 s=$2 conns json f0 f1
  shift 2
  conns=$((c < 4 ? c : 4))
  f0=$(fcgi_macro_fpm_cpu)
  json=$(timeout $((s + 30)) "$FCGI_BIN" bench --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" \
    "${FLOOR_HEADERS[@]}" --concurrency "$c" --connections "$conns" --duration "$s" --json \
    "$@" hello.php) || true
  f1=$(fcgi_macro_fpm_cpu)
  python3 - "$json" "$f0" "$f1" <<'EOF'
import json, sys
j = json.loads(sys.argv[1])
n = max(j["ok"], 1)
fpm = (float(sys.argv[3]) - float(sys.argv[2])) / n * 1e6
fail = j["failed"] + j["unanswered"]
print(f'{j["rps"]:.0f} {j["latency_ms"]["p99"]:.3f} {j["client_cpu_s"] / n * 1e6:.2f} {fpm:.1f} {fail}')
EOF
}

# run_wrk CONNECTIONS SECONDS -> "rps p99_ms nginx_cpu_us_per_req fpm_cpu_us_per_req failures"
run_wrk() {
  local c=$1 s=$2 out f0 f1 n0 n1 threads
  threads=$((c < 2 ? c : 2))
  fcgi_macro_nginx_up >&2
  f0=$(fcgi_macro_fpm_cpu); n0=$(fcgi_macro_nginx_cpu)
  out=$(timeout $((s + 30)) wrk -t "$threads" -c "$c" -d "${s}s" --latency \
    "http://127.0.0.1:$NGINX_PORT/hello.php") || true
  f1=$(fcgi_macro_fpm_cpu); n1=$(fcgi_macro_nginx_cpu)
  fcgi_macro_nginx_down
  python3 - "$out" "$f0" "$f1" "$n0" "$n1" <<'EOF'
import re, sys
out = sys.argv[1]
rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
total = int(re.search(r"(\d+) requests in", out).group(1))
m = re.search(r"^\s*99%\s+([\d.]+)(us|ms|s)\s*$", out, re.M)
p99 = float(m.group(1)) * {"us": 1e-3, "ms": 1.0, "s": 1e3}[m.group(2)]
bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
errs = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
fail = (int(bad.group(1)) if bad else 0) + (sum(map(int, errs.groups())) if errs else 0)
n = max(total, 1)
fpm = (float(sys.argv[3]) - float(sys.argv[2])) / n * 1e6
ngx = (float(sys.argv[5]) - float(sys.argv[4])) / n * 1e6
print(f"{rps:.0f} {p99:.3f} {ngx:.2f} {fpm:.1f} {fail}")
EOF
}

# run_floor CONNECTIONS SECONDS -> "rps cpu_us_per_req fpm_cpu_us_per_req": the syscall floor
# (one write and one read per request, epoll, C) on the same php-fpm and script.
run_floor() {
  local out f0 f1
  f0=$(fcgi_macro_fpm_cpu)
  out=$(timeout $(($2 + 30)) "$floor_bin" -c "$1" -n 100000000 -t "$2" -w 1000 "$FPM_SOCK")
  f1=$(fcgi_macro_fpm_cpu)
  python3 - "$out" "$f0" "$f1" <<'EOF2'
import sys
kv = dict(x.split("=", 1) for x in sys.argv[1].split())
fpm = (float(sys.argv[3]) - float(sys.argv[2])) / max(int(kv["requests"]), 1) * 1e6
print(f'{float(kv["req_per_s"]):.0f} {float(kv["cpu_us_per_req"]):.2f} {fpm:.1f}')
EOF2
}

median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
