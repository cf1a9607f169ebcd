#!/usr/bin/env bash
# Runs every ```sh block of the user guides in docs/ (not benchmarks.md: its commands build and
# run benchmarks for minutes), from the repository root, against a private php-fpm
# (scripts/with-php-fpm.sh), so the commands shown work as written. Blocks address the system
# php-fpm (unix:/run/php/php8.2-fpm.sock); that address is replaced by the private one, which is
# also FCGI_CONNECT, as cli.md tells the reader to set. Blocks that cannot run here (installing,
# building) are tagged ```text instead.
# Usage: scripts/check-docs.sh [BUILD_DIR]   (default build; it must hold bin/fcgi)
set -euo pipefail
cd "$(dirname "$0")/.."
build=$(cd "${1:-build}" && pwd)
dir=$(mktemp -d /tmp/fcgi-docs-XXXXXX)
trap 'rm -rf "$dir"' EXIT
python3 - "$dir" <<'PY'
import re, sys
n = 0
guides = ["getting-started", "request-response", "pool", "timeouts-cancellation",
          "multiplexing", "errors", "cli", "performance"]
for doc in [f"docs/{g}.md" for g in guides]:
    text = open(doc).read()
    for m in re.finditer(r"```sh\n(.*?)```", text, re.S):
        line = text.count("\n", 0, m.start(1)) + 1
        with open(f"{sys.argv[1]}/block{n:03d}.sh", "w") as f:
            f.write(f"# {doc}:{line}\n" + m.group(1))
        n += 1
PY
cat >"$dir/run.sh" <<'RUN'
set -uo pipefail
export FCGI_CONNECT=$FCGI_ENDPOINT
failed=0
for f in "$BLOCKS"/block*.sh; do
  where=$(head -1 "$f")
  code=$(sed -e "s|unix:/run/php/php8.2-fpm.sock|$FCGI_ENDPOINT|g" -e "s|build/bin/fcgi|$BUILD/bin/fcgi|g" "$f")
  ok=1
  out=$(bash -euo pipefail -c "$code" 2>&1) || ok=0
  # A "|| echo "exit $?"   # exit N" line promises that exit code: hold the doc to it.
  for want in $(grep -o '# exit [0-9]*' <<<"$code" | cut -d' ' -f3); do
    grep -qx "exit $want" <<<"$out" || ok=0
  done
  if [ "$ok" = 1 ]; then
    echo "ok  ${where#\# }"
  else
    echo "FAILED ${where#\# }:"; echo "$code"; echo "--- output:"; echo "$out"
    failed=1
  fi
done
exit "$failed"
RUN
BLOCKS=$dir BUILD=$build bash scripts/with-php-fpm.sh bash "$dir/run.sh"
