#!/usr/bin/env bash
# `make demo`: every imgcls step on the embedded sample data (data/sample), outputs under $1 (default outputs/demo).
set -euo pipefail
OUT=${1:-outputs/demo}
IMGCLS=${IMGCLS:-.venv/bin/imgcls}
export HF_HUB_OFFLINE=1
rm -rf "$OUT"; mkdir -p "$OUT"
step() { echo; echo "== imgcls $*"; }

step eda data/sample --test data/sample_test
$IMGCLS eda data/sample --test data/sample_test --out "$OUT/eda"

step clean data/sample
$IMGCLS clean data/sample --out "$OUT/clean" --device cpu
PRE_SRC=data/sample; [ -f "$OUT/clean/manifest.csv" ] && PRE_SRC=$OUT/clean
step preprocess "$PRE_SRC" --size 128 "(normalised, padded 128 px cache; --face-crop / --remove-bg: README)"
$IMGCLS preprocess "$PRE_SRC" --out "$OUT/processed" --size 128 --workers 2
SPLIT_SRC=data/sample   # the latest earlier step's output, if the demo wrote one
for d in "$OUT/clean" "$OUT/processed"; do [ -f "$d/manifest.csv" ] && SPLIT_SRC=$d; done
step split "$SPLIT_SRC"
$IMGCLS split "$SPLIT_SRC" --out "$OUT/splits.csv" --val 0.25 --device cpu
step split --check "$OUT/splits.csv"
$IMGCLS split --check "$OUT/splits.csv" --device cpu
# train: fine-tune the offline ImageNet EfficientNet-Lite0 (small budget for a CPU demo), and a second model
# with the imbalance tools; both land in $OUT/runs (the ensemble / predict demo below uses them)
TRAIN_SRC=data/sample; [ -f "$OUT/splits.csv" ] && TRAIN_SRC=$OUT/splits.csv
# the split's val rows validate; without splits.csv (split failed above) train draws a quarter itself
VAL=(); [ "$TRAIN_SRC" = data/sample ] && VAL=(--val-split 0.25)
step train "$TRAIN_SRC" --model tf_efficientnet_lite0 --pretrained
$IMGCLS train "$TRAIN_SRC" --model tf_efficientnet_lite0 --pretrained --img-size 64 --epochs 1 "${VAL[@]}" \
  --device cpu --workers 0 --out "$OUT/runs" --name lite0
step train "$TRAIN_SRC" --model resnet10t --no-pretrained --loss focal --sampler weighted
$IMGCLS train "$TRAIN_SRC" --model resnet10t --no-pretrained --img-size 64 --epochs 2 --loss focal --sampler weighted \
  "${VAL[@]}" --device cpu --workers 0 --out "$OUT/runs" --name resnet10t_focal
# tune: a 2-trial Optuna search over the default space (1 epoch at 64 px each; a real search: README)
step tune "$TRAIN_SRC" --study demo --trials 2 --model resnet10t --no-pretrained --epochs 1 --img-size 64
$IMGCLS tune "$TRAIN_SRC" --study demo --trials 2 --model resnet10t --no-pretrained --epochs 1 --img-size 64 "${VAL[@]}" \
  --device cpu --workers 0 --out "$OUT/tune"
# predict / ensemble: the train demo's runs under $OUT/runs, else two quick ones (1 epoch, 64 px, CPU)
PRED_SRC=data/sample; [ -f "$OUT/splits.csv" ] && PRED_SRC=$OUT/splits.csv
mapfile -t RUNS < <(ls -d "$OUT"/runs/*/ 2>/dev/null | head -2)
if [ "${#RUNS[@]}" -lt 2 ]; then
  for m in resnet10t test_efficientnet; do
    step train "$PRED_SRC" --model $m --no-pretrained "(quick run for the ensemble demo)"
    $IMGCLS train "$PRED_SRC" --model $m --no-pretrained --img-size 64 --epochs 1 --aug none --device cpu --workers 0 \
      --out "$OUT/runs" --name demo_$m --quiet
  done
  mapfile -t RUNS < <(ls -d "$OUT"/runs/*/ | head -2)
fi
step ensemble "${RUNS[@]}" --method weighted --weights auto
$IMGCLS ensemble "${RUNS[@]}" --method weighted --weights auto --out "$OUT/ensemble"
step export "${RUNS[0]}" --onnx
$IMGCLS export "${RUNS[0]}" --onnx --out "$OUT/onnx"
step predict "$OUT/ensemble" --data "$PRED_SRC" --tta flip --eval "(validation: with / without TTA)"
$IMGCLS predict "$OUT/ensemble" --data "$PRED_SRC" --tta flip --eval --device cpu --out "$OUT/predictions_eval"
TEST=data/sample_test; [ -d "$TEST" ] || TEST=$PRED_SRC
step predict "$OUT/ensemble" --data "$TEST" --tta flip "(the held-out test set -> submission.csv)"
$IMGCLS predict "$OUT/ensemble" --data "$TEST" --tta flip --device cpu --out "$OUT/predictions"
step runs "$OUT" "(every run, trial and ensemble, one metric)"
$IMGCLS runs "$OUT"
$IMGCLS runs report "$OUT" --out "$OUT/runs_report.html"

echo
echo "demo outputs under $OUT/:"
echo "  eda report:   $OUT/eda/report.html"
echo "  split:        $OUT/splits.csv, report $OUT/splits_report.html"
echo "  ensemble:     $OUT/ensemble/spec.yaml (scores.csv); ONNX: $OUT/onnx/"
echo "  submission:   $OUT/predictions/submission.csv (probabilities: $OUT/predictions/probs.parquet)"
echo "  train runs:   $OUT/runs/lite0/, $OUT/runs/resnet10t_focal/ (report.html, metrics.csv, per_class.csv, best.pt)"
echo "  reports:      $OUT/predictions/report.html, $OUT/ensemble/report.html, $OUT/runs_report.html (imgcls runs)"
echo "  tune:         $OUT/tune/demo/ (report.html, trials.csv, best_config.yaml, trial_NNNN/)"
echo "  clean report: $OUT/clean/report.html (manifest: $OUT/clean/manifest.csv)"
echo "  preprocess:   $OUT/processed/ (manifest.csv, report.html)"
# <!-- demo:outputs -->
