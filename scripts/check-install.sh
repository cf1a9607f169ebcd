#!/usr/bin/env bash
# Installs a build into a temp prefix, then builds test/consumer against it with find_package
# and with pkg-config, then the project of docs/getting-started.md.
# Usage: scripts/check-install.sh BUILD_DIR
set -euo pipefail
build=$(cd "${1:?usage: check-install.sh BUILD_DIR}" && pwd)
src=$(cd "$(dirname "$0")/.." && pwd)
prefix=$(mktemp -d /tmp/fcgi-install-XXXXXX)
trap 'rm -rf "$prefix"' EXIT
cmake --install "$build" --prefix "$prefix" >/dev/null
test -x "$prefix/bin/fcgi" || { echo "fcgi CLI not installed"; exit 1; }

cmake -S "$src/test/consumer" -B "$prefix/consumer-build" -G Ninja \
  -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$prefix/consumer-build" >/dev/null
out=$("$prefix/consumer-build/consumer")
[ "$out" = "unix:/run/php/php8.2-fpm.sock" ] || { echo "consumer printed '$out'"; exit 1; }

# The same program through pkg-config.
export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
# shellcheck disable=SC2046
g++ -std=c++20 -o "$prefix/consumer-pc" "$src/test/consumer/main.cpp" $(pkg-config --cflags --libs asio-fcgi)
out=$("$prefix/consumer-pc")
[ "$out" = "unix:/run/php/php8.2-fpm.sock" ] || { echo "pkg-config consumer printed '$out'"; exit 1; }
echo "install: find_package and pkg-config consumers built and ran"

# docs/getting-started.md's project (its cmake block and first C++ program), as a reader would
# build it against the installed package; run against a socket that does not exist.
gs="$prefix/getting-started"
mkdir -p "$gs"
python3 - "$src/docs/getting-started.md" "$gs" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
open(f"{sys.argv[2]}/CMakeLists.txt", "w").write(re.findall(r"```cmake\n(.*?)```", text, re.S)[0])
open(f"{sys.argv[2]}/main.cpp", "w").write(re.findall(r"```cpp\n(.*?)```", text, re.S)[0])
PY
cmake -S "$gs" -B "$gs/build" -G Ninja -DCMAKE_PREFIX_PATH="$prefix" >/dev/null
cmake --build "$gs/build" >/dev/null
if out=$("$gs/build/my_jobs" "unix:$gs/no-such.sock" /srv/hello.php 2>&1); then
  echo "getting-started program succeeded without a server"; exit 1
fi
grep -q "no endpoint is available" <<<"$out" || { echo "getting-started program printed '$out'"; exit 1; }
echo "install: docs/getting-started.md's project built and ran"
