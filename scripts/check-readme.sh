#!/usr/bin/env bash
# Compiles every ```cpp block of README.md (with the includes and main a reader would add), so
# the README's code cannot drift from the library. Usage: scripts/check-readme.sh [CXX]
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
dir=$(mktemp -d /tmp/fcgi-readme-XXXXXX)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import re, sys
blocks = re.findall(r"```cpp\n(.*?)```", open("README.md").read(), re.S)
if not blocks:
    sys.exit("README.md has no cpp block")
for i, code in enumerate(blocks):
    with open(f"{sys.argv[1]}/block{i}.cpp", "w") as f:
        f.write("#include <asio/co_spawn.hpp>\n#include <asio/io_context.hpp>\n"
                "#include <asio/use_awaitable.hpp>\n#include <iostream>\n" + code)
PY
n=0
for f in "$dir"/block*.cpp; do
  "$cxx" -std=c++20 -DASIO_STANDALONE -Iinclude -fsyntax-only "$f"
  n=$((n + 1))
done
echo "README: $n C++ block(s) compile"
