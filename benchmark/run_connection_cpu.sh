#!/usr/bin/env bash
# Client CPU per request: fcgi::connection against the syscall floor (benchmark/floor), on a
# unix socket to trivial responder processes, and prints a markdown table of medians.
#
# Usage: benchmark/run_connection_cpu.sh [bin_dir]     (default: build/bin)
# Environment: CONNS (4), ROUNDS (3), SECONDS_PER_RUN (5), REQUESTS (200000), WARMUP (1000),
# SYSCALLS=1 to also count syscalls and context switches per request (needs perf with the
# syscalls tracepoints, usually root).
# Builds nothing: run `cmake --build --preset default` first.
#
# Runs alternate (floor, ours, floor, ours, ...) over ROUNDS rounds so that drift in the
# machine's load hits both sides alike; the medians are compared.
set -euo pipefail

bin=${1:-build/bin}
conns=${CONNS:-4}
rounds=${ROUNDS:-3}
seconds=${SECONDS_PER_RUN:-5}
requests=${REQUESTS:-200000}
warmup=${WARMUP:-1000}

for b in trivial_responder epoll_floor_client connection_cpu_benchmark; do
    if [[ ! -x $bin/$b ]]; then
        echo "missing $bin/$b: build first (cmake --build --preset default)" >&2
        exit 2
    fi
done

dir=$(mktemp -d "${TMPDIR:-/tmp}/fcgi-cpu.XXXXXX")
responder_pid=
cleanup() {
    if [[ -n $responder_pid ]]; then
        kill "$responder_pid" 2>/dev/null || true
        # The responder reaps its workers and removes its socket before exiting.
        for _ in $(seq 50); do
            kill -0 "$responder_pid" 2>/dev/null || break
            sleep 0.1
        done
    fi
    rm -rf "$dir"
}
trap cleanup EXIT

sock=$dir/fcgi.sock
"$bin/trivial_responder" -w "$conns" -d "$dir/request.bin" "$sock" >"$dir/pid" &
for _ in $(seq 100); do
    [[ -s $dir/pid && -S $sock ]] && break
    sleep 0.05
done
responder_pid=$(cat "$dir/pid")

# The comparison is only fair if both clients send the same bytes: the responder dumps the first
# request it completes, which is ours.
"$bin/connection_cpu_benchmark" -c 1 -n 1 -w 0 "$sock" >/dev/null
if "$bin/epoll_floor_client" --dump | cmp -s - "$dir/request.bin"; then
    same_bytes="identical ($(stat -c %s "$dir/request.bin") bytes)"
else
    same_bytes="DIFFERENT: the floor client no longer matches what the library sends"
    echo "warning: request bytes differ between the floor client and fcgi::connection" >&2
fi

common=(-n "$requests" -t "$seconds" -w "$warmup")
declare -A cpu usr sys rps allocs
field() { sed -n "s/.* $1=\([^ ]*\).*/\1/p" <<<"$2"; }  # field NAME LINE
run() {  # run KEY PROGRAM ARGS...: records CPU (total, user, sys), req_per_s and allocs_per_req
    local key=$1
    shift
    local line
    line=$("$@")
    echo "  $line" >&2
    cpu[$key]+="$(field cpu_us_per_req "$line") "
    usr[$key]+="$(field user_us_per_req "$line") "
    sys[$key]+="$(field sys_us_per_req "$line") "
    rps[$key]+="$(field req_per_s "$line") "
    allocs[$key]+="$(field allocs_per_req "$line") "
}

for ((r = 1; r <= rounds; ++r)); do
    echo "round $r/$rounds" >&2
    run floor "$bin/epoll_floor_client" -c "$conns" "${common[@]}" "$sock"
    run ours "$bin/connection_cpu_benchmark" -c "$conns" "${common[@]}" "$sock"
    run coro "$bin/connection_cpu_benchmark" -c "$conns" --coroutine "${common[@]}" "$sock"
    run pingpong "$bin/epoll_floor_client" --pingpong "${common[@]}" "$sock"
    run ours1 "$bin/connection_cpu_benchmark" -c 1 "${common[@]}" "$sock"
done

median() { tr ' ' '\n' <<<"$1" | sed '/^$/d' | sort -g | awk '{v[NR]=$1} END {
    if (NR % 2) print v[(NR+1)/2]; else printf "%.3f\n", (v[NR/2]+v[NR/2+1])/2 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", a / b }'; }

row() {  # row LABEL FLOOR_KEY OURS_KEY
    local fc oc
    fc=$(median "${cpu[$2]}")
    oc=$(median "${cpu[$3]}")
    printf '| %s | %s (%s + %s) | %s (%s + %s) | %s× | %s | %s | %s |\n' "$1" \
        "$fc" "$(median "${usr[$2]}")" "$(median "${sys[$2]}")" \
        "$oc" "$(median "${usr[$3]}")" "$(median "${sys[$3]}")" "$(ratio "$oc" "$fc")" \
        "$(median "${rps[$2]}")" "$(median "${rps[$3]}")" "$(median "${allocs[$3]}")"
}

echo
echo "Request bytes, floor vs fcgi::connection: $same_bytes."
echo "Medians of $rounds rounds; each run ${seconds} s or $requests requests after $warmup warmup."
echo "allocs/req: calls of operator new per request, 1 of them the benchmark's own copy of the request."
echo
echo "CPU µs/req: median of user+sys (median user + median sys)."
echo
echo '| workload | floor CPU µs/req | asio-fcgi CPU µs/req | ratio | floor req/s | asio-fcgi req/s | asio-fcgi allocs/req |'
echo '|---|---:|---:|---:|---:|---:|---:|'
row "$conns connections: epoll floor vs callbacks" floor ours
row "$conns connections: epoll floor vs use_awaitable" floor coro
row "1 connection: blocking ping-pong floor vs callbacks" pingpong ours1
goal=$(awk -v a="$(median "${cpu[ours]}")" -v b="$(median "${cpu[floor]}")" \
    'BEGIN { print (a <= 1.5 * b) ? "met" : "not met" }')
echo
echo "Goal (asio-fcgi ≤ 1.5× floor CPU per request, $conns connections, callbacks): $goal."

# Optional: where the kernel side differs. One run each under perf stat, counting syscalls by
# tracepoint (no strace slowdown) and context switches.
if [[ ${SYSCALLS:-0} == 1 ]]; then
    events=syscalls:sys_enter_read,syscalls:sys_enter_recvfrom,syscalls:sys_enter_write
    events+=,syscalls:sys_enter_sendmsg,syscalls:sys_enter_epoll_wait,context-switches
    count() {  # count LABEL PROGRAM ARGS...: one table row of per-request counts
        local label=$1
        shift
        local out
        if ! out=$(perf stat -x, -e "$events" -- "$@" 2>&1 >/dev/null); then
            echo "perf stat failed: $out" >&2
            return
        fi
        awk -F, -v label="$label" -v n="$requests" '
            { v[$3] = $1 / n }
            END { printf "| %s | %.2f | %.2f | %.2f | %.2f | %.2f | %.2f |\n", label,
                  v["syscalls:sys_enter_read"], v["syscalls:sys_enter_recvfrom"],
                  v["syscalls:sys_enter_write"], v["syscalls:sys_enter_sendmsg"],
                  v["syscalls:sys_enter_epoll_wait"], v["context-switches"] }' <<<"$out"
    }
    # A count bound only (no time bound, no warmup), so per-request figures divide exactly.
    exact=(-n "$requests" -t 1000000 -w 0)
    echo
    echo "Per request, one run of $requests requests each:"
    echo
    echo '| client | read | recvfrom | write | sendmsg | epoll_wait | context switches |'
    echo '|---|---:|---:|---:|---:|---:|---:|'
    count "floor, $conns connections" "$bin/epoll_floor_client" -c "$conns" "${exact[@]}" "$sock"
    count "asio-fcgi callbacks, $conns connections" \
        "$bin/connection_cpu_benchmark" -c "$conns" "${exact[@]}" "$sock"
    count "floor ping-pong" "$bin/epoll_floor_client" --pingpong "${exact[@]}" "$sock"
    count "asio-fcgi callbacks, 1 connection" \
        "$bin/connection_cpu_benchmark" -c 1 "${exact[@]}" "$sock"
fi
