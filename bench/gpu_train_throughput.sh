#!/usr/bin/env bash
# imgcls train vs timm's real train.py on one GPU (issue 21): tf_efficientnet_lite0 and efficientnet_b0, 128 px
# (batch 128) and 224 px (batch 64), 3 and 10 epochs each, sides alternating; one JSON per configuration in $OUT.
#
# Prepare on the CPU machine (the device has no data and no timm scripts; /.carry/ is git-ignored):
#   mkdir -p .carry/timm && cp /work/timm_scripts/train.py .carry/timm/
#   python bench/train_throughput.py /work/imgdata/out/openclipart_l1 --timm-repo .carry/timm --per-class 80 \
#       --as-jpeg 256 --model tf_efficientnet_lite0 --export .carry/oc256     # ~1,100 images, ~20 MB + weights
# Run on the device (the `run` tool, carry [".carry"]), half per call so each stays under 10 minutes:
#   bash bench/gpu_train_throughput.sh tf_efficientnet_lite0
#   bash bench/gpu_train_throughput.sh efficientnet_b0
# efficientnet_b0 has no offline weights: both sides start from random init (the work is the same).
set -euo pipefail
MODEL=${1:?model: tf_efficientnet_lite0 or efficientnet_b0}
OUT=${OUT:-/tmp/gpu_train_out}
mkdir -p "$OUT"
PY=${PYTHON:-python3}
nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv,noheader || true
for cfg in "128 128" "224 64"; do
  set -- $cfg
  "$PY" bench/train_throughput.py --split-dir .carry/oc256 --timm-repo .carry/timm --model "$MODEL" \
    --img-size "$1" --batch-size "$2" --epochs 3,10 --device cuda --workers 8 \
    --json "$OUT/${MODEL}-$1.json" 2>&1 | grep -v "^scanning"
  # the first-epoch check: the same 3 epochs without channels_last (cuDNN's depthwise plans differ by layout)
  "$PY" bench/train_throughput.py --split-dir .carry/oc256 --timm-repo .carry/timm --model "$MODEL" \
    --img-size "$1" --batch-size "$2" --epochs 3 --device cuda --workers 8 --imgcls-args "--no-channels-last" \
    --json "$OUT/${MODEL}-$1-nocl.json" 2>&1 | grep -v "^scanning"
done
