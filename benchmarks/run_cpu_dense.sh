#!/usr/bin/env bash
# Issue 12 on this 2-core CPU: LADD's dense labels against hard and online labels, CIFAR-10 IPC 10.
#
#   bash benchmarks/run_cpu_dense.sh all        # or one stage: teacher | dense | table
#
# It works on issue 10's IPC 10 curve build (run_cpu_cifar10.sh ipc10 first): its RDED D_S, its full
# teacher (tau), its selected labeler and its student protocol (ResNet-18, ImageNet stem, 300 epochs).
# Only the dense labeler is new, as in LADD: an early checkpoint of a ConvNet-D3 run.
#
# teacher:  ConvNet-D3 on CIFAR-10 (target: >= 75% top-1 in <= 30 min here), keeping the early-stage
#           checkpoint LADD labels with (epoch 10 of 50 in LADD: a fifth of the run)
# dense:    5 x 5 sub-images of each D_S image (62.5% of each side), one soft label each, from that checkpoint
#           (at T = 1, as LADD stores them, and softened at T = 2) and from the run's last epoch (LADD's labeler
#           has 10 epochs of training, as the last epoch here has)
# table:    hard labels / dense labels / online labels from the teacher (tau) and the selected labeler,
#           one protocol and seeds; the dense row's labels (early checkpoint, softened, last epoch; the early
#           one also with one optimizer step per batch of views, --dense-step view) are those whose first-seed
#           student scores best on the build's held-out slice; a control row trains that row's crops and steps
#           with hard labels; records benchmarks/results/dense-cifar10-ipc10-cpu.json
#
# Work lives in benchmarks/work/ and is committed as it lands (benchmarks/commit_work.sh): the
# ConvNet-D3 run resumes by epoch, the table seed by seed, so a session that ends mid-way loses at
# most one student. A dense-label student makes 26 passes per step (the global views and 25 crop
# positions): about 15 min a seed here, against 1-4 min for the other rows.
# Data: ../shared/data/cifar10 (or FLASHDD_DATA_ROOT).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES="teacher dense table"
STAGE=${1:?usage: bash benchmarks/run_cpu_dense.sh all|${STAGES// /|}}
if [ "$STAGE" = all ]; then
    for stage in $STAGES; do bash benchmarks/run_cpu_dense.sh "$stage"; done
    exit 0
fi
PY=${PY:-.venv/bin/python}
ZOO="$PY -m flashdd_zoo"
BUILD=${BUILD:-benchmarks/work/cifar10-cpu-ipc10}   # the IPC 10 curve build (D_S, teacher, selected labeler)
TEACHER=${TEACHER:-benchmarks/teachers/cifar10-cpu-teacher}
# ConvNet-D3 trains at about 340 images/s on the Intel 2-core machine (45,000 images an epoch: 133 s),
# so 10 epochs fit 30 min there; the slowest machine seen (125 images/s) needs EPOCHS=5 to fit.
EPOCHS=${EPOCHS:-10}
EARLY=${EARLY:-2}                 # LADD's early stage: epoch 10 of 50, a fifth of the run
SEEDS=${SEEDS:-0,1,2}
RUN=benchmarks/work/cifar10-convnet-d3
DENSE=benchmarks/work/cifar10-convnet-d3-ipc10-dense          # from the early checkpoint
DENSE_T2=benchmarks/work/cifar10-convnet-d3-ipc10-dense-t2      # from the early checkpoint, softmax(logits / 2)
DENSE_LAST=benchmarks/work/cifar10-convnet-d3-ipc10-dense-last  # from the last epoch
case "$STAGE" in
teacher)
    [ -f "$RUN/teacher_report.json" ] && { echo "teacher: done ($RUN)"; exit 0; }
    $ZOO train-teacher --dataset cifar10 --network convnet-d3 --out "$RUN" --epochs "$EPOCHS" --batch-size 256 \
        --lr 0.05 --checkpoint-epochs "$EARLY" --holdout-per-class 500 --device cpu \
        --record teacher-convnet-d3-cifar10-cpu ;;
dense)
    early=$RUN/checkpoints/epoch-$(printf %04d "$EARLY")
    for spec in "$DENSE:$early:1" "$DENSE_T2:$early:2" "$DENSE_LAST:$RUN/teacher:1"; do
        IFS=: read -r out labeler temperature <<< "$spec"
        if [ -f "$out/manifest.json" ]; then echo "dense: done ($out)"; continue; fi
        $ZOO dense --distilled "$BUILD/work/distilled" --labeler "$labeler" --out "$out" --n 5 --ratio 0.625 \
            --temperature "$temperature" --device cpu
    done ;;
table)
    $PY benchmarks/dense_table.py --build "$BUILD" --teacher "$TEACHER" --dense "$DENSE" --dense "$DENSE_T2" --dense "$DENSE_LAST" --dense-per-view "$DENSE" \
        --out benchmarks/work/dense-cifar10-ipc10 --seeds "$SEEDS" --record dense-cifar10-ipc10-cpu ;;
*) echo "unknown stage $STAGE; choose all or one of: $STAGES" >&2; exit 2 ;;
esac
