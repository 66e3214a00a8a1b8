#!/usr/bin/env bash
# Issue 12 on this 2-core CPU: LADD's dense labels against hard and online labels, CIFAR-10 IPC 10.
#
#   bash benchmarks/run_cpu_dense.sh all        # or one stage: teacher | distill | dense | capacity | table
#
# teacher:  ConvNet-D3 on CIFAR-10 (target: >= 75% top-1 in <= 30 min here), keeping the early-stage
#           checkpoint LADD labels with (epoch 10 of 50 in LADD: a fifth of the run)
# distill:  the RDED D_S, IPC 10, observed by that teacher
# dense:    5 x 5 sub-images of each D_S image (62.5% of each side), one soft label each, from the early checkpoint
# capacity: the capacity-matched labeler for this D_S (build --preset cpu, no curve, ConvNet-D3 students)
# table:    hard labels / dense labels / online labels from the teacher (tau) and the capacity-matched
#           labeler, the same ConvNet-D3 students and seeds; records benchmarks/results/dense-cifar10-ipc10-cpu.json
#
# Cost at the defaults (300 student epochs, 3 seeds): a dense-label student makes 26 passes over D_S per epoch
# (the global views and 25 crop positions), about 1.7 h per seed at 125 images/s; each other row about 4 min
# per seed. STUDENT_EPOCHS=100 cuts the table to a third.
# Every stage resumes (teacher epochs, build stages, table rows seed by seed) and is skipped once its output exists;
# run it in the background (`nohup bash benchmarks/run_cpu_dense.sh all > runs/dense.log 2>&1 &`).
# Data: ../shared/data/cifar10 (or FLASHDD_DATA_ROOT).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES="teacher distill dense capacity table"
STAGE=${1:?usage: bash benchmarks/run_cpu_dense.sh all|${STAGES// /|}}
if [ "$STAGE" = all ]; then
    for stage in $STAGES; do bash benchmarks/run_cpu_dense.sh "$stage"; done
    exit 0
fi
PY=${PY:-.venv/bin/python}
ZOO="$PY -m flashdd_zoo"
# Sized by a timed epoch: ConvNet-D3 trained at 84 images/s on 5,120 CIFAR-10 images (2 cores shared with another
# job; the network alone ran 125 images/s). 45,000 images an epoch: about 9 min an epoch so loaded, so 6 epochs
# fit 30 min only on an unloaded CPU (about twice as fast); raise EPOCHS where more time is allowed.
EPOCHS=${EPOCHS:-6}
EARLY=${EARLY:-1}                 # LADD's early stage: epoch 10 of 50, about a fifth of the run
STUDENT_EPOCHS=${STUDENT_EPOCHS:-300}
SEEDS=${SEEDS:-0,1,2}
RUN=runs/cifar10-convnet-d3
DS=runs/cifar10-convnet-d3-rded-ipc10
DENSE=runs/cifar10-convnet-d3-ipc10-dense
BUILD=runs/cifar10-convnet-d3-ipc10-build
case "$STAGE" in
teacher)
    [ -f "$RUN/teacher_report.json" ] && { echo "teacher: done ($RUN)"; exit 0; }
    $ZOO train-teacher --dataset cifar10 --network convnet-d3 --out "$RUN" --epochs "$EPOCHS" --batch-size 256 \
        --lr 0.05 --checkpoint-epochs "$EARLY" --holdout-per-class 500 --device cpu \
        --record teacher-convnet-d3-cifar10-cpu ;;  # the held-out slice is what the capacity build selects on
distill)
    [ -f "$DS/distilled.json" ] && { echo "distill: done ($DS)"; exit 0; }
    $ZOO distill --method rded --dataset cifar10 --teacher "$RUN/teacher" --ipc 10 --out "$DS" --device cpu ;;
dense)
    [ -f "$DENSE/manifest.json" ] && { echo "dense: done ($DENSE)"; exit 0; }
    $ZOO dense --distilled "$DS" --labeler "$RUN/checkpoints/epoch-$(printf %04d "$EARLY")" --out "$DENSE" \
        --n 5 --ratio 0.625 --device cpu ;;
capacity)
    $ZOO build --preset cpu --no-curve --dataset cifar10 --ipc 10 --teacher "$RUN/teacher" --distilled "$DS" \
        --student convnet-d3 --seeds "$SEEDS" --epochs "$STUDENT_EPOCHS" --out "$BUILD" --device cpu ;;
table)
    $PY benchmarks/dense_table.py --distilled "$DS" --teacher "$RUN/teacher" --dense "$DENSE" --capacity-build "$BUILD" \
        --out runs/dense-cifar10-ipc10 --epochs "$STUDENT_EPOCHS" --seeds "$SEEDS" --student convnet-d3 \
        --record dense-cifar10-ipc10-cpu ;;
*) echo "unknown stage $STAGE; choose all or one of: $STAGES" >&2; exit 2 ;;
esac
