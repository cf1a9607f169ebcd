# shellcheck shell=bash
# Shared by benchmark/macro/run.sh, clients.sh (through runs.sh), bodies.sh, ab.sh and
# fpm_cost.sh (sourced, not run): installs the tools the macro benchmarks need, starts a
# private php-fpm and a private nginx in a temp dir, and stops both by PID on exit.
# Every server listens on a unix socket or 127.0.0.1.
#
# After fcgi_macro_start: $MACRO_DIR (temp dir), $FPM_SOCK, $FPM_PID, $NGINX_PORT, and
# $SCRIPT_ROOT=/srv, where php-fpm sees the scripts of benchmark/macro/php: the pool runs in a
# chroot ($MACRO_DIR/root) so that benchmark/floor/epoll_floor_client, whose pre-encoded request
# names /srv/hello.php, runs the same script as fcgi bench and nginx.
# nginx is started and stopped around each use (fcgi_macro_nginx_up / _down).

macro_src=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
PHP_DIR=$macro_src/benchmark/macro/php
FCGI_BIN=${FCGI_BIN:-$macro_src/build/bin/fcgi}

# Debian packages, only when missing. Not in scripts/setup.sh: CI does not run these benchmarks.
fcgi_macro_install() {
  local missing=() cmd pkg
  for pair in nginx:nginx-light wrk:wrk gnuplot:gnuplot-nox curl:curl php-fpm8.2:php8.2-fpm \
              /usr/bin/time:time python3:python3; do
    cmd=${pair%%:*} pkg=${pair#*:}
    command -v "$cmd" >/dev/null 2>&1 || missing+=("$pkg")
  done
  [ ${#missing[@]} -eq 0 ] && return 0
  echo "installing ${missing[*]}" >&2
  # policy-rc.d keeps Debian's nginx/php-fpm services from starting during the install.
  local policy=/usr/sbin/policy-rc.d created=0
  if [ ! -e $policy ]; then printf '#!/bin/sh\nexit 101\n' > $policy; chmod +x $policy; created=1; fi
  apt-get install -y --no-install-recommends "${missing[@]}" >&2
  [ $created -eq 0 ] || rm -f $policy
}

fcgi_macro_stop() {
  fcgi_macro_nginx_down
  # An nginx started in a subshell that was interrupted: its pid file names it.
  if [ -n "${MACRO_DIR:-}" ] && [ -s "$MACRO_DIR/nginx/nginx.pid" ]; then
    kill "$(cat "$MACRO_DIR/nginx/nginx.pid")" 2>/dev/null || true
  fi
  [ -z "${FPM_PID:-}" ] || kill "$FPM_PID" 2>/dev/null || true
  [ -z "${FPM_PID:-}" ] || wait "$FPM_PID" 2>/dev/null || true
  [ -z "${MACRO_DIR:-}" ] || rm -rf "$MACRO_DIR"
}

# Waits (bounded, 10 s) until the test command "$@" succeeds while process $1 lives.
fcgi_macro_wait() {
  local pid=$1; shift
  for _ in $(seq 1 200); do
    "$@" && return 0
    kill -0 "$pid" 2>/dev/null || return 1
    sleep 0.05
  done
  return 1
}

fcgi_macro_free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

fcgi_macro_start() {
  MACRO_DIR=$(mktemp -d /tmp/fcgi-macro-XXXXXX)
  trap fcgi_macro_stop EXIT
  FPM_SOCK=$MACRO_DIR/php-fpm.sock
  SCRIPT_ROOT=/srv
  mkdir -p "$MACRO_DIR/root/srv" "$MACRO_DIR/root/tmp"
  chmod 1777 "$MACRO_DIR/root/tmp" # PHP's temp files (large request bodies) inside the chroot
  cp "$PHP_DIR"/*.php "$MACRO_DIR/root/srv/"
  # pm=static with 4 workers, no recycling (pm.max_requests=0) so that no run pays for a respawn;
  # post_max_size=0 lifts PHP's body limit for the 1 GB POST.
  cat > "$MACRO_DIR/php-fpm.conf" <<EOF
[global]
pid = $MACRO_DIR/php-fpm.pid
error_log = $MACRO_DIR/php-fpm.log
daemonize = no

[bench]
listen = $FPM_SOCK
listen.backlog = 511
pm = static
pm.max_children = 4
pm.max_requests = 0
pm.status_path = /fpm-status
chroot = $MACRO_DIR/root
clear_env = no
php_admin_value[post_max_size] = 0
php_admin_value[memory_limit] = 256M
php_admin_flag[log_errors] = on
php_admin_flag[display_errors] = off
EOF
  local as_root=()
  [ "$(id -u)" -ne 0 ] || as_root=(-R)
  php-fpm8.2 -F -y "$MACRO_DIR/php-fpm.conf" "${as_root[@]}" >"$MACRO_DIR/fpm.out" 2>&1 &
  FPM_PID=$!
  fcgi_macro_wait "$FPM_PID" test -S "$FPM_SOCK" ||
    { cat "$MACRO_DIR"/fpm.out "$MACRO_DIR"/php-fpm.log >&2; echo "php-fpm did not start" >&2; return 1; }

  NGINX_PORT=$(fcgi_macro_free_port)
  mkdir -p "$MACRO_DIR/nginx/logs"
  # nginx as the usual front: 2 worker processes (one per core), access log off, keep-alive
  # upstream with fastcgi_keep_conn on. Request bodies: client_max_body_size 0 (no limit) and
  # a 1 MiB client_body_buffer_size; larger bodies are buffered to a temp file before the
  # upstream sees them (nginx's default, fastcgi_request_buffering on). Responses:
  # fastcgi_buffering on with the default buffers, so large responses spill to a temp file.
  # `user root` because the master runs as root and the php-fpm socket belongs to root.
  local user_line=""
  [ "$(id -u)" -ne 0 ] || user_line="user root;"
  cat > "$MACRO_DIR/nginx/nginx.conf" <<EOF
$user_line
worker_processes 2;
pid $MACRO_DIR/nginx/nginx.pid;
error_log $MACRO_DIR/nginx/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off;
  client_body_temp_path $MACRO_DIR/nginx/client_body;
  fastcgi_temp_path $MACRO_DIR/nginx/fastcgi_temp;
  proxy_temp_path $MACRO_DIR/nginx/proxy_temp;
  uwsgi_temp_path $MACRO_DIR/nginx/uwsgi_temp;
  scgi_temp_path $MACRO_DIR/nginx/scgi_temp;
  keepalive_requests 1000000;
  upstream php {
    server unix:$FPM_SOCK;
    keepalive 64;
    keepalive_requests 1000000;
  }
  server {
    listen 127.0.0.1:$NGINX_PORT;
    root $SCRIPT_ROOT;
    client_max_body_size 0;
    client_body_buffer_size 1m;
    location ~ \.php\$ {
      include /etc/nginx/fastcgi_params;
      fastcgi_param SCRIPT_FILENAME $SCRIPT_ROOT\$fastcgi_script_name;
      fastcgi_pass php;
      fastcgi_keep_conn on;
    }
  }
}
EOF
  "$FCGI_BIN" request --connect "unix:$FPM_SOCK" --root "$SCRIPT_ROOT" hello.php >/dev/null ||
    { echo "fcgi request hello.php failed" >&2; return 1; }
}

# nginx runs only while it is measured: its idle keep-alive upstream connections each pin a
# php-fpm worker (a worker serves one connection at a time), so a running nginx would starve
# fcgi bench of workers. fcgi_macro_nginx_up starts it and waits until it answers;
# fcgi_macro_nginx_down stops it by PID and waits, which closes those connections.
fcgi_macro_nginx_up() {
  nginx -p "$MACRO_DIR/nginx" -c "$MACRO_DIR/nginx/nginx.conf" -g 'daemon off;' \
    >"$MACRO_DIR/nginx.out" 2>&1 &
  NGINX_PID=$!
  fcgi_macro_wait "$NGINX_PID" curl -sf -o /dev/null "http://127.0.0.1:$NGINX_PORT/hello.php" ||
    { cat "$MACRO_DIR"/nginx.out "$MACRO_DIR"/nginx/logs/error.log >&2; echo "nginx did not start" >&2; return 1; }
}

fcgi_macro_nginx_down() {
  [ -n "${NGINX_PID:-}" ] || return 0
  kill "$NGINX_PID" 2>/dev/null || true
  wait "$NGINX_PID" 2>/dev/null || true
  NGINX_PID=
}

# Sum of user+system CPU seconds of process PID and its children (a master and its workers).
fcgi_macro_tree_cpu() {
  local tck total=0 pid
  tck=$(getconf CLK_TCK)
  for pid in "$1" $(pgrep -P "$1"); do
    [ -r "/proc/$pid/stat" ] || continue
    # Fields 14 and 15 (utime, stime) counted after the ')' that ends the command name.
    total=$((total + $(sed 's/.*) //' "/proc/$pid/stat" | awk '{print $12 + $13}')))
  done
  python3 -c "print($total / $tck)"
}

fcgi_macro_fpm_cpu() { fcgi_macro_tree_cpu "$FPM_PID"; }
fcgi_macro_nginx_cpu() { fcgi_macro_tree_cpu "$NGINX_PID"; }

# The request headers benchmark/floor/epoll_floor_client sends, for fcgi bench to send the same
# params.
# shellcheck disable=SC2034  # used by the scripts that source this file
FLOOR_HEADERS=(-H "Host: localhost" -H "User-Agent: asio-fcgi-bench" -H "Accept: */*"
               -H "Accept-Encoding: gzip")
