#!/usr/bin/env bash
# Body throughput (issue 5): `fcgi request` straight to php-fpm against curl -> nginx -> php-fpm,
# same private php-fpm (benchmark/macro/common.sh), alternating, ROUNDS rounds, median MB/s.
#
# - request bodies: SIZES MiB of random bytes POSTed to php/hash_input.php (reads php://input in
#   1 MiB chunks, prints length and MD5): `fcgi request --data @FILE` vs `curl --data-binary @FILE`.
# - response bodies: php/output.php?mb=N: `fcgi request --output FILE` vs `curl -o FILE`.
# - then (unless NO_BIG=1) peak RSS of `fcgi request` (/usr/bin/time -v) for a BIG_MB MiB POST
#   from a file and a BIG_MB MiB response to a file, with checksums.
# Every checksum is compared; a mismatch fails the script.
#
# Usage: benchmark/macro/bodies.sh   Environment: ROUNDS (3), SIZES ("10 100"), BIG_MB (1024).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
# shellcheck source-path=SCRIPTDIR source=common.sh
source "$here/common.sh"

ROUNDS=${ROUNDS:-3}
SIZES=${SIZES:-"10 100"}
BIG_MB=${BIG_MB:-1024}
limit=300 # seconds: bound of every single transfer

fcgi_macro_install
fcgi_macro_start
base="http://127.0.0.1:$NGINX_PORT"
ct='Content-Type: application/octet-stream'
now() { date +%s.%N; }
mbps() { python3 -c "print(f'{$1 / ($3 - $2):.0f}')"; }
median() { printf '%s\n' "$@" | sort -g | awk '{a[NR]=$1} END {print (NR % 2) ? a[(NR+1)/2] : (a[NR/2] + a[NR/2+1]) / 2}'; }
fail() { echo "FAILED: $*" >&2; exit 1; }
# The body output.php?mb=N prints, reproduced locally.
# (yes dies of SIGPIPE, hence no pipefail here.)
pattern_md5() (
  set +o pipefail
  yes 0123456789abcde | head -c $(($1 << 20)) | md5sum | cut -d' ' -f1
)

# post_fcgi FILE -> MB/s; checks the script saw the file's length and MD5.
post_fcgi() {
  local t0 t1 out
  t0=$(now)
  out=$(timeout $limit "$FCGI_BIN" request --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" -H "$ct" \
    --data "@$1" hash_input.php)
  t1=$(now)
  [ "$out" = "$(stat -c %s "$1") $2" ] || fail "fcgi POST $1: got '$out'"
  mbps "$(($(stat -c %s "$1") >> 20))" "$t0" "$t1"
}
post_curl() {
  local t0 t1 out
  fcgi_macro_nginx_up >&2
  t0=$(now)
  out=$(timeout $limit curl -sS --fail -H "$ct" --data-binary "@$1" "$base/hash_input.php")
  t1=$(now)
  fcgi_macro_nginx_down
  [ "$out" = "$(stat -c %s "$1") $2" ] || fail "curl POST $1: got '$out'"
  mbps "$(($(stat -c %s "$1") >> 20))" "$t0" "$t1"
}
get_fcgi() {
  local t0 t1 out=$MACRO_DIR/out.bin
  rm -f "$out"
  t0=$(now)
  timeout $limit "$FCGI_BIN" request --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" --output "$out" \
    "output.php?mb=$1"
  t1=$(now)
  [ "$(md5sum < "$out" | cut -d' ' -f1)" = "$2" ] || fail "fcgi GET $1 MiB: checksum"
  mbps "$1" "$t0" "$t1"
}
get_curl() {
  local t0 t1 out=$MACRO_DIR/out.bin
  rm -f "$out"
  fcgi_macro_nginx_up >&2
  t0=$(now)
  timeout $limit curl -sS --fail -o "$out" "$base/output.php?mb=$1"
  t1=$(now)
  fcgi_macro_nginx_down
  [ "$(md5sum < "$out" | cut -d' ' -f1)" = "$2" ] || fail "curl GET $1 MiB: checksum"
  mbps "$1" "$t0" "$t1"
}

echo "machine: $(nproc) CPUs, $(uptime | sed 's/.*load/load/')"
printf '| direction | size | fcgi MiB/s (rounds) | nginx+curl MiB/s (rounds) | ratio (medians) | goal |\n'
printf '|---|---:|---:|---:|---:|---|\n'
for mb in $SIZES; do
  in=$MACRO_DIR/in$mb.bin
  head -c $((mb << 20)) /dev/urandom > "$in"
  md5=$(md5sum < "$in" | cut -d' ' -f1)
  pmd5=$(pattern_md5 "$mb")
  for dir in request response; do
    f=() n=()
    for _ in $(seq 1 "$ROUNDS"); do
      if [ $dir = request ]; then
        f+=("$(post_fcgi "$in" "$md5")") n+=("$(post_curl "$in" "$md5")")
      else
        f+=("$(get_fcgi "$mb" "$pmd5")") n+=("$(get_curl "$mb" "$pmd5")")
      fi
    done
    mf=$(median "${f[@]}") mn=$(median "${n[@]}")
    goal=$([ $dir = request ] && echo "≥ 1.2×" || echo "≥ 1.5×")
    printf '| %s | %s MiB | %s (%s) | %s (%s) | %s× | %s |\n' "$dir" "$mb" "$mf" "${f[*]}" "$mn" "${n[*]}" \
      "$(python3 -c "print(f'{$mf / $mn:.2f}')")" "$goal"
  done
  rm -f "$in"
done
echo "load after: $(uptime | sed 's/.*load/load/')"

[ -z "${NO_BIG:-}" ] || exit 0
# Peak RSS for a BIG_MB MiB body each way, from and to files.
big=$MACRO_DIR/big.bin
head -c $((BIG_MB << 20)) /dev/urandom > "$big"
bmd5=$(md5sum < "$big" | cut -d' ' -f1)
rss() { sed -n 's/.*Maximum resident set size (kbytes): //p' "$1"; }
t0=$(now)
out=$(timeout $limit /usr/bin/time -v -o "$MACRO_DIR/time-post.txt" "$FCGI_BIN" request \
  --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" -H "$ct" --data "@$big" hash_input.php)
t1=$(now)
[ "$out" = "$((BIG_MB << 20)) $bmd5" ] || fail "big POST: got '$out', want $((BIG_MB << 20)) $bmd5"
echo "POST $BIG_MB MiB from a file: peak RSS $(rss "$MACRO_DIR/time-post.txt") KiB, $(mbps "$BIG_MB" "$t0" "$t1") MiB/s, MD5 $bmd5 matches"
rm -f "$big"
t0=$(now)
timeout $limit /usr/bin/time -v -o "$MACRO_DIR/time-get.txt" "$FCGI_BIN" request \
  --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" --output "$MACRO_DIR/out.bin" "output.php?mb=$BIG_MB"
t1=$(now)
got=$(md5sum < "$MACRO_DIR/out.bin" | cut -d' ' -f1)
want=$(pattern_md5 "$BIG_MB")
[ "$got" = "$want" ] || fail "big GET: MD5 $got, want $want"
echo "GET $BIG_MB MiB to a file: peak RSS $(rss "$MACRO_DIR/time-get.txt") KiB, $(mbps "$BIG_MB" "$t0" "$t1") MiB/s, MD5 $got matches"
