#!/usr/bin/env bash
# Compiles every ```cpp block of README.md and docs/*.md, so the code shown cannot drift from the
# library: a block that starts with #include as it is, a fragment with the includes a reader
# would add. Usage: scripts/check-readme.sh [CXX]
set -euo pipefail
cd "$(dirname "$0")/.."
cxx=${1:-g++}
dir=$(mktemp -d /tmp/fcgi-readme-XXXXXX)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import glob, re, sys
n = 0
for doc in ["README.md"] + sorted(glob.glob("docs/*.md")):
    text = open(doc).read()
    blocks = list(re.finditer(r"```cpp\n(.*?)```", text, re.S))
    if doc == "README.md" and not blocks:
        sys.exit("README.md has no cpp block")
    for m in blocks:
        code, line = m.group(1), text.count("\n", 0, m.start(1)) + 1  # errors name doc lines
        # A block that shows its includes must compile with those alone; a fragment gets the
        # ones a reader would add.
        prelude = "" if code.startswith("#include") else (
            "#include <asio/co_spawn.hpp>\n#include <asio/io_context.hpp>\n"
            "#include <asio/use_awaitable.hpp>\n#include <iostream>\n")
        with open(f"{sys.argv[1]}/block{n}.cpp", "w") as f:
            f.write(prelude + f"#line {line} \"{doc}\"\n" + code)
        n += 1
PY
# In parallel: each block includes all of Asio, and there are a dozen.
n=$(find "$dir" -name 'block*.cpp' | wc -l)
find "$dir" -name 'block*.cpp' -print0 |
  xargs -0 -P "$(nproc)" -n 1 "$cxx" -std=c++20 -DASIO_STANDALONE -Iinclude -fsyntax-only
echo "README.md and docs/*.md: $n C++ block(s) compile"
