#!/usr/bin/env bash
# Issue 10's label-time target, measured in one process: each IPC's selected labeler (a member of the
# shared CIFAR-10 pruning chain) against the full teacher's architecture, at the students' batch
# (100 images) and input (32 px, ImageNet stem), torch and onnxruntime on this CPU.
#
#   bash benchmarks/run_cpu_label_speed.sh     # after run_cpu_cifar10.sh ipc1, ipc10, ipc50
#
# The builds' label_seconds come from student runs that, for a build resumed over several sessions,
# ran on different machines and under different loads; this measures both networks side by side.
# Records bench-cpu-cifar10-ipc{1,10,50}-labeler (ratio = labeler images/s over the teacher's).
set -euo pipefail
cd "$(dirname "$0")/.."
ZOO=${ZOO:-.venv/bin/flashdd-zoo}
PY=${PY:-.venv/bin/python}
CHAIN=benchmarks/work/cifar10-cpu-chain
OUT=runs/label-speed
# the chain step each build selected (Algorithm 1 on the held-out slice), checked against its record
for pair in "1 02" "10 08" "50 05"; do
    set -- $pair
    record=benchmarks/results/capacity-cifar10-ipc$1-cpu.json
    $ZOO export $CHAIN/step-$2 --dataset cifar10 --kind pruned --out $OUT/ipc$1-step-$2
    "$PY" - "$record" "$OUT/ipc$1-step-$2/metrics.json" <<'PY'
import json, sys
want = json.load(open(sys.argv[1]))["metrics"]["labeler_params"]
got = json.load(open(sys.argv[2]))["params"]
if want != got:
    sys.exit(f"{sys.argv[2]}: {got} parameters, but {sys.argv[1]} selected a labeler of {want}; update the steps here")
PY
    $ZOO bench $OUT/ipc$1-step-$2 --device cpu --batch 100 --backends torch,onnx --repeats 15 --rep-seconds 0.5 --warmup 3 \
        --record bench-cpu-cifar10-ipc$1-labeler
done
