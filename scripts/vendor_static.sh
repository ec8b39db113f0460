#!/usr/bin/env bash
# Copies the browser libraries the chat page uses from node_modules/ into static/vendor/.
#
# The copied files are committed, so the app needs neither npm nor a network at run time.
# To update: edit the pinned versions in package.json, then
#   npm install --no-audit --no-fund && bash scripts/vendor_static.sh
# Source-map comments are stripped because the .map files are not shipped (Django's manifest
# storage would otherwise fail on the missing files).
set -euo pipefail
cd "$(dirname "$0")/.."

NM=node_modules
OUT=static/vendor
test -d "$NM/marked" || { echo "run 'npm install' first" >&2; exit 1; }

rm -rf "$OUT"
mkdir -p "$OUT/marked" "$OUT/dompurify" "$OUT/highlight" "$OUT/katex/fonts"

strip_maps() { sed -i -e '/^\/\/# sourceMappingURL=/d' -e 's#/\*\# sourceMappingURL=[^*]*\*/##' "$@"; }

cp "$NM/marked/lib/marked.esm.js" "$OUT/marked/marked.esm.js"
cp "$NM/marked/LICENSE" "$OUT/marked/LICENSE"

cp "$NM/dompurify/dist/purify.es.mjs" "$OUT/dompurify/purify.es.mjs"
cp "$NM/dompurify/LICENSE" "$OUT/dompurify/LICENSE"

HL="$NM/@highlightjs/cdn-assets"
cp "$HL/es/highlight.min.js" "$OUT/highlight/highlight.min.js"
cp "$HL/styles/github.min.css" "$OUT/highlight/github.min.css"
cp "$HL/styles/github-dark.min.css" "$OUT/highlight/github-dark.min.css"
cp "$HL/LICENSE" "$OUT/highlight/LICENSE"

cp "$NM/katex/dist/katex.mjs" "$OUT/katex/katex.mjs"
cp "$NM/katex/dist/katex.min.css" "$OUT/katex/katex.min.css"
cp "$NM/katex/dist/fonts/"* "$OUT/katex/fonts/"
cp "$NM/katex/LICENSE" "$OUT/katex/LICENSE"

strip_maps "$OUT"/*/*.js "$OUT"/*/*.mjs "$OUT"/*/*.css

{
  echo "Copied by scripts/vendor_static.sh from these npm packages:"
  for p in marked dompurify @highlightjs/cdn-assets katex; do
    echo "  $p $(node -p "require('./$NM/$p/package.json').version")"
  done
} > "$OUT/VERSIONS.txt"
echo "static/vendor updated:"; cat "$OUT/VERSIONS.txt"
