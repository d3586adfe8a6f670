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
SPLIT_SRC=data/sample   # the latest earlier step's output, if the demo wrote one
for d in "$OUT/clean" "$OUT/processed"; do [ -f "$d/manifest.csv" ] && SPLIT_SRC=$d; done
step split "$SPLIT_SRC"
$IMGCLS split "$SPLIT_SRC" --out "$OUT/splits.csv" --val 0.25 --device cpu
step split --check "$OUT/splits.csv"
$IMGCLS split --check "$OUT/splits.csv" --device cpu
# <!-- demo:train -->
# <!-- demo:predict -->

echo
echo "demo outputs under $OUT/:"
echo "  eda report:   $OUT/eda/report.html"
echo "  split:        $OUT/splits.csv, report $OUT/splits_report.html"
# <!-- demo:outputs -->
