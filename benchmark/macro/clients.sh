#!/usr/bin/env bash
# fcgi bench beside the other FastCGI clients Debian 12 ships, on the macro benchmark's private
# php-fpm (pm=static, 4 workers, unix socket) and hello-world script, concurrency 4 each:
#
#   fcgi bench            pool of 4 kept-alive connections
#   fcgi bench recycle 1  the same with --recycle-after 1: a new connection per request, as the
#                         two library clients below do
#   wrk -> nginx          4 connections, nginx keeps its upstream connections alive
#   C epoll floor         benchmark/floor/epoll_floor_client, 4 kept-alive connections
#   FCGI::Client (Perl)   libfcgi-client-perl, 4 processes, a connection per request
#   cgi-fcgi loop         libfcgi-bin's bridge (C, the FastCGI reference library), 4 shell loops
#                         starting one process and one connection per request
#   fcgi request loop     the same loops with `fcgi request`
#   /bin/echo loop        the same loops with /bin/echo printing the answer: no request, what
#                         the loops themselves cost (a fork and an exec per run)
#
# ROUNDS rounds (default 3) of SECONDS_PER_RUN s (default 10) per client, alternating; prints
# each run, then the medians as a markdown table. fcgi bench and the floor measure themselves
# (requests/s and CPU over the measured period, their own process); the others are timed whole
# by /usr/bin/time, start-up included: CPU of every process of the client (for the loops, the
# shell too: that is what running a client per request costs), requests/s over the elapsed
# time. Every server is on a unix socket or 127.0.0.1, every run bounded by `timeout`.
#
# Usage: benchmark/macro/clients.sh   (needs build/bin/fcgi; root for apt)
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=runs.sh
source "$here/runs.sh"

fcgi_macro_install
# The two other clients, only when missing (policy as in fcgi_macro_install: no service starts).
missing=()
command -v cgi-fcgi >/dev/null 2>&1 || missing+=(libfcgi-bin)
perl -MFCGI::Client -e 1 2>/dev/null || missing+=(libfcgi-client-perl)
if [ ${#missing[@]} -gt 0 ]; then
  echo "installing ${missing[*]}" >&2
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
fi
fcgi_macro_start

# loop_clients N SECONDS OUT CMD...: N shell loops, each running CMD once per request (stdin
# empty) until SECONDS have passed; loop i writes "ok failed" to OUT.i.
loop_clients() {
  local n=$1 s=$2 out=$3 i
  shift 3
  for i in $(seq 1 "$n"); do
    (
      ok=0 failed=0 end=$((${EPOCHREALTIME/./} + s * 1000000))
      while [ "${EPOCHREALTIME/./}" -lt "$end" ]; do
        r=$("$@" </dev/null 2>/dev/null) || true
        if [[ $r == *"Hello, world!"* ]]; then ok=$((ok + 1)); else failed=$((failed + 1)); fi
      done
      echo "$ok $failed" >"$out.$i"
    ) &
  done
  wait
}

# summarize OUT_PREFIX TIME_FILE F0 F1 -> "rps p99_ms client_cpu_us_per_req fpm_cpu_us_per_req
# failures" from the per-process files (first line "ok failed", then latencies in µs, if any)
# and /usr/bin/time's "elapsed user system".
summarize() {
  python3 - "$@" <<'EOF'
import glob, math, sys
prefix, time_file, f0, f1 = sys.argv[1:]
ok = failed = 0
lat = []
for name in glob.glob(prefix + ".*"):
    lines = open(name).read().split()
    ok += int(lines[0]); failed += int(lines[1])
    lat += [int(x) for x in lines[2:]]
try:
    elapsed, user, system = map(float, open(time_file).read().split()[-3:])
except (OSError, ValueError):  # killed by its timeout: no figures, all failed
    print(f"0 - 0 0 {max(failed, 1)}")
    sys.exit()
n = max(ok, 1)
lat.sort()
p99 = f"{lat[max(0, math.ceil(len(lat) * 0.99) - 1)] / 1000:.3f}" if lat else "-"  # nearest rank
fpm = (float(f1) - float(f0)) / n * 1e6
print(f"{ok / elapsed:.0f} {p99} {(user + system) / n * 1e6:.2f} {fpm:.1f} {failed}")
EOF
}

# timed OUT SECONDS CMD... -> as run_fcgi: CMD (which writes OUT.n.*) under /usr/bin/time, bounded,
# then summarized with php-fpm's CPU over the run.
timed() {
  local out=$1 s=$2 f0 f1
  shift 2
  f0=$(fcgi_macro_fpm_cpu)
  timeout $((s + 30)) /usr/bin/time -f '%e %U %S' -o "$out.time" "$@" || true
  f1=$(fcgi_macro_fpm_cpu)
  summarize "$out.n" "$out.time" "$f0" "$f1"
}

# run_perl SECONDS -> as run_fcgi
run_perl() {
  local out=$MACRO_DIR/perl
  rm -f "$out".*
  timed "$out" "$1" perl "$here/perl_fcgi_client.pl" "$FPM_SOCK" 4 "$1" "$SCRIPT_ROOT" "$out.n"
}

# run_loop NAME SECONDS CMD... -> as run_fcgi, for 4 loops of CMD; the loops run in the
# environment of `loop_env` (an env command line, set by the caller), so that a client whose
# params are its environment pays for no extra exec per request.
run_loop() {
  local out=$MACRO_DIR/$1 s=$2
  shift 2
  rm -f "$out".*
  timed "$out" "$s" "${loop_env[@]}" \
    bash -c "$(declare -f loop_clients); loop_clients \"\$@\"" _ 4 "$s" "$out.n" "$@"
}

# The loops start from an empty environment; cgi-fcgi's also holds the params php-fpm gets from
# it (cgi-fcgi sends its whole environment): the floor's set (benchmark/floor), as the Perl
# client's. LC_ALL=C keeps EPOCHREALTIME's decimal point a point.
plain_env=(env -i "PATH=$PATH" LC_ALL=C)
cgi_env=("${plain_env[@]}" GATEWAY_INTERFACE=CGI/1.1 SERVER_PROTOCOL=HTTP/1.1
         SERVER_SOFTWARE=cgi-fcgi REQUEST_METHOD=GET "SCRIPT_FILENAME=$SCRIPT_ROOT/hello.php"
         SCRIPT_NAME=/hello.php "DOCUMENT_ROOT=$SCRIPT_ROOT" REQUEST_URI=/hello.php QUERY_STRING=
         CONTENT_LENGTH=0 CONTENT_TYPE= REMOTE_ADDR=127.0.0.1 REMOTE_PORT=0 SERVER_ADDR=127.0.0.1
         SERVER_NAME=localhost SERVER_PORT=80 HTTP_HOST=localhost HTTP_USER_AGENT=asio-fcgi-bench
         'HTTP_ACCEPT=*/*' HTTP_ACCEPT_ENCODING=gzip)
request_cmd=("$FCGI_BIN" request --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT"
             "${FLOOR_HEADERS[@]}" hello.php)

tools=("fcgi bench" "fcgi bench recycle 1" "wrk -> nginx" "FCGI::Client (Perl)" "cgi-fcgi loop"
       "fcgi request loop" "/bin/echo loop")
[ -x "$floor_bin" ] && tools+=("C epoll floor") ||
  echo "no $floor_bin (cmake --build build --target epoll_floor_client): floor skipped" >&2

# run_tool NAME SECONDS -> "rps p99_ms cpu_us_per_req fpm_cpu_us_per_req failures"
run_tool() {
  local rps cpu fpm
  case $1 in
    "fcgi bench") run_fcgi 4 "$2" ;;
    "fcgi bench recycle 1") run_fcgi 4 "$2" --recycle-after 1 ;;
    "wrk -> nginx") run_wrk 4 "$2" ;;
    "C epoll floor") read -r rps cpu fpm < <(run_floor 4 "$2"); echo "$rps - $cpu $fpm -" ;;
    "FCGI::Client (Perl)") run_perl "$2" ;;
    "cgi-fcgi loop")
      loop_env=("${cgi_env[@]}")
      run_loop cgi "$2" cgi-fcgi -bind -connect "$FPM_SOCK" ;;
    "fcgi request loop")
      loop_env=("${plain_env[@]}")
      run_loop request "$2" "${request_cmd[@]}" ;;
    "/bin/echo loop")
      loop_env=("${plain_env[@]}")
      run_loop echo "$2" /bin/echo 'Hello, world!' ;;
  esac
}

echo "machine: $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
echo "warmup (2 s each)"
for t in "${tools[@]}"; do run_tool "$t" 2 >/dev/null; done

runs=$MACRO_DIR/runs.txt
: >"$runs"
printf '\n%-6s %-22s %10s %9s %14s %12s %8s\n' round tool req/s p99_ms cpu_us/req fpm_us/req failed
for r in $(seq 1 "$ROUNDS"); do
  for t in "${tools[@]}"; do
    read -r rps p99 cpu fpm fail < <(run_tool "$t" "$SECONDS_PER_RUN")
    printf '%-6s %-22s %10s %9s %14s %12s %8s\n' "$r" "$t" "$rps" "$p99" "$cpu" "$fpm" "$fail"
    printf '%s|%s %s %s %s %s\n' "$t" "$rps" "$p99" "$cpu" "$fpm" "$fail" >>"$runs"
  done
done

printf '\nmedians over %s rounds of %s s, concurrency 4\n' "$ROUNDS" "$SECONDS_PER_RUN"
python3 - "$runs" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    tool, values = line.rstrip("\n").split("|")
    runs.setdefault(tool, []).append(values.split())
def med(tool, i, fmt):
    xs = [float(v[i]) for v in runs[tool] if v[i] != "-"]
    return fmt.format(statistics.median(xs)) if xs else "-"
base = statistics.median(float(v[0]) for v in runs["fcgi bench"])
print("| client | req/s | vs fcgi bench | p99 ms | client CPU µs/req | php-fpm CPU µs/req | failed (all rounds) |")
print("|---|---:|---:|---:|---:|---:|---:|")
for tool, vs in runs.items():
    rps = statistics.median(float(v[0]) for v in vs)
    failed = "-" if vs[0][4] == "-" else str(sum(int(v[4]) for v in vs))
    # wrk's CPU is nginx's: wrk itself is not counted, as in run.sh.
    label = tool + (" (nginx's CPU)" if tool.startswith("wrk") else "")
    print(f"| {label} | {rps:.0f} | {rps / base:.2f}x | {med(tool, 1, '{:.3f}')} | "
          f"{med(tool, 2, '{:.2f}')} | {med(tool, 3, '{:.1f}')} | {failed} |")
EOF
echo "load after: $(uptime | sed 's/.*load/load/')"
