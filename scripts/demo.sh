#!/usr/bin/env bash
# `make demo`: every imgcls step on the embedded sample data (data/sample), outputs under $1 (default outputs/demo).
set -euo pipefail
OUT=${1:-outputs/demo}
IMGCLS=${IMGCLS:-.venv/bin/imgcls}
export HF_HUB_OFFLINE=1
rm -rf "$OUT"; mkdir -p "$OUT"
step() { echo; echo "== imgcls $*"; }

step eda data/sample
$IMGCLS eda data/sample --out "$OUT/eda"

# <!-- demo:clean -->
# <!-- demo:preprocess -->
# <!-- demo:split -->
# <!-- demo:train -->
# <!-- demo:predict -->

echo
echo "demo outputs under $OUT/:"
echo "  eda report:   $OUT/eda/report.html"
# <!-- demo:outputs -->
