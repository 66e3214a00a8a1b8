#!/usr/bin/env bash
# Issue 13 part 3 on this CPU: the relabel store a stored-label pipeline (SRe2L, G-VBSM, LPLD) would
# keep for 300 epochs of CIFAR-10 IPC 10, in bytes against the labeler's bytes.
#
#   bash benchmarks/run_cpu_relabel.sh [D_S [LABELER]]
#
# Defaults: the D_S and the selected labeler of `bash benchmarks/run_cpu_cifar10.sh ipc10`
# (benchmarks/work/cifar10-cpu-ipc10/work/distilled and the labeler_dir of its build-report.json). Writes the
# store to runs/relabel-cifar10-ipc10-cpu (replaced if present) and records
# benchmarks/results/relabel-cifar10-ipc10-cpu.json (store_bytes, labeler_bytes, ratio, epochs,
# images, ...); then run benchmarks/render_results.py and commit both. The views are the evaluate
# command's (RDED's recipe, batch 100, T 20, student seed 0), full float16 soft labels.
# EPOCHS, RECORD, RESULTS_DIR, OUT and TOPK override the defaults (e.g. EPOCHS=2 RECORD=relabel-try
# RESULTS_DIR=/tmp/results for a quick check of the script).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
BUILD=${BUILD:-benchmarks/work/cifar10-cpu-ipc10}
DS=${1:-$BUILD/work/distilled}
LABELER=${2:-$($PY -c "import json; print(json.load(open('$BUILD/build-report.json'))['labeler_dir'])")}
EPOCHS=${EPOCHS:-300}
RECORD=${RECORD:-relabel-cifar10-ipc10-cpu}
RESULTS_DIR=${RESULTS_DIR:-benchmarks/results}
OUT=${OUT:-runs/$RECORD}
TOPK_ARGS=()
if [ -n "${TOPK:-}" ]; then TOPK_ARGS=(--topk "$TOPK"); fi
$PY -m flashdd_zoo relabel --distilled "$DS" --dataset cifar10 --labeler "$LABELER" --epochs "$EPOCHS" \
    --batch-size 100 --seed 0 --temperature 20 "${TOPK_ARGS[@]}" --device cpu --out "$OUT" --overwrite \
    --record "$RECORD" --results-dir "$RESULTS_DIR"
