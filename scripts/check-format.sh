#!/usr/bin/env bash
# Fails when a C++ source file of the project is not formatted per .clang-format.
set -euo pipefail
clang_format=${1:-clang-format}
cd "$(dirname "$0")/.."
if git rev-parse --is-inside-work-tree >/dev/null 2>&1; then
  mapfile -t files < <(git ls-files --cached --others --exclude-standard -- \
    '*.cpp' '*.hpp' '*.h' '*.c' | while read -r f; do [ -f "$f" ] && echo "$f"; done)
else
  mapfile -t files < <(find include src test benchmark examples tools \
    -name '*.cpp' -o -name '*.hpp' -o -name '*.h' -o -name '*.c' 2>/dev/null)
fi
[ ${#files[@]} -gt 0 ] || { echo "no sources found"; exit 1; }
"$clang_format" --dry-run -Werror "${files[@]}"
echo "clang-format: ${#files[@]} files formatted"
