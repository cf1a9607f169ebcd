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

# Absolute libdir and includedir, as GNUInstallDirs allows and distribution packagers give: the
# .pc file goes to that libdir and names both as they are, and a shared build's tool finds the
# library there (its RUNPATH from bindir to libdir). The library and tool only, unoptimised.
abs="$prefix/absolute"
cmake -S "$src" -B "$abs/build" -G Ninja -DCMAKE_BUILD_TYPE=Debug -DBUILD_SHARED_LIBS=ON \
  -DFCGI_BUILD_TESTS=OFF -DFCGI_BUILD_EXAMPLES=OFF -DFCGI_BUILD_BENCHMARKS=OFF \
  -DCMAKE_INSTALL_PREFIX="$abs/prefix" -DCMAKE_INSTALL_LIBDIR="$abs/lib64" \
  -DCMAKE_INSTALL_INCLUDEDIR="$abs/inc" >/dev/null
cmake --build "$abs/build" >/dev/null
cmake --install "$abs/build" >/dev/null
test -f "$abs/lib64/pkgconfig/asio-fcgi.pc" || { echo "no .pc in the absolute libdir"; exit 1; }
# shellcheck disable=SC2046
g++ -std=c++20 -o "$abs/consumer-pc" "$src/test/consumer/main.cpp" \
  $(PKG_CONFIG_PATH="$abs/lib64/pkgconfig" pkg-config --cflags --libs asio-fcgi) \
  -Wl,-rpath,"$abs/lib64"
out=$("$abs/consumer-pc")
[ "$out" = "unix:/run/php/php8.2-fpm.sock" ] || { echo "absolute-dirs consumer printed '$out'"; exit 1; }
"$abs/prefix/bin/fcgi" --version >/dev/null || { echo "installed shared fcgi did not run"; exit 1; }
echo "install: absolute libdir and includedir: pkg-config consumer and shared CLI ran"
