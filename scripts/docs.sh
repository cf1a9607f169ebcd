#!/usr/bin/env bash
# Builds the API reference from the public headers with Doxygen (docs/Doxyfile) and fails on any
# warning or undocumented public entity. Usage: scripts/docs.sh [OUTPUT_DIR]
# (default build/docs; open OUTPUT_DIR/html/index.html).
set -euo pipefail
cd "$(dirname "$0")/.."
out=${1:-build/docs}
mkdir -p "$out"
command -v doxygen >/dev/null || { echo "docs: doxygen is missing (bash scripts/setup.sh)" >&2; exit 1; }
# A later line on stdin overrides the Doxyfile's OUTPUT_DIRECTORY.
{ cat docs/Doxyfile; echo "OUTPUT_DIRECTORY = $out"; } | doxygen - >"$out/warnings.log" 2>&1 || true
# Doxygen does not warn about undocumented enum values or namespaces: walk its XML for them.
python3 - "$out/xml" >>"$out/warnings.log" <<'PY'
import glob, sys, xml.etree.ElementTree as ET

def documented(node):
    return any("".join(node.find(t).itertext()).strip()
               for t in ("briefdescription", "detaileddescription") if node.find(t) is not None)

for path in sorted(glob.glob(sys.argv[1] + "/*.xml")):
    root = ET.parse(path).getroot()
    for c in root.iter("compounddef"):
        kind, name = c.get("kind"), c.findtext("compoundname")
        if kind in ("file", "dir", "page") or "detail" in name.split("::"):
            continue
        if c.get("prot", "public") != "public":
            continue  # a private nested class
        if not documented(c):
            print(f"undocumented {kind} {name}")
        for m in c.iter("memberdef"):
            if m.get("prot") != "public":
                continue
            where = f"{name}::{m.findtext('name')}"
            if not documented(m):
                print(f"undocumented {m.get('kind')} {where}")
            for v in m.iter("enumvalue"):
                if not documented(v):
                    print(f"undocumented enum value {where}::{v.findtext('name')}")
PY
if [ -s "$out/warnings.log" ]; then
  cat "$out/warnings.log" >&2
  echo "docs: $(wc -l <"$out/warnings.log") problem(s) above" >&2
  exit 1
fi
echo "docs: API reference in $out/html/index.html"
