#!/usr/bin/env bash
# Issue 11's evidence on this 2-core CPU: a HeLIO projector labeler against the full teacher and the
# capacity-matched pruned labeler on CIFAR-10 IPC 10, 3 seeds, one table, same run.
#
#   bash benchmarks/run_cpu_projector.sh all      # or one stage: backbone weak projector update table
#
# No pretrained foundation model can be fetched here, so the stand-in "foundation" backbone is a
# ResNet-18 (ImageNet stem) trained on a *different* real set: Imagenette, resized to 32 px. The
# projector (LoRA rank 8 on its convolutions, a full-rank head update) is learnt on CIFAR-10's
# training split from weak teachers: the epoch-1 and epoch-2 checkpoints of a 3-epoch CIFAR-10 teacher
# run. D_S and the pruned labeler come from the IPC 10 curve build (run_cpu_cifar10.sh ipc10 first).
#
# Work lives in benchmarks/work/projector-cifar10-ipc10 and is committed as it lands
# (benchmarks/commit_work.sh): the backbone's and weak teachers' weights (not their optimiser
# state), the projector, the updated D_S and one evaluate report per row and seed. Every stage
# resumes or is skipped when its output exists, so a session that ends mid-way loses at most one
# student; the table stage records projector-cifar10-ipc10-cpu (benchmarks/projector_table.py).
# The weak stage needs only the epoch-1 and epoch-2 checkpoints: it stops once they exist.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES="backbone weak projector update table"
STAGE=${1:?usage: bash benchmarks/run_cpu_projector.sh all|${STAGES// /|}}
if [ "$STAGE" = all ]; then
    for stage in $STAGES; do bash benchmarks/run_cpu_projector.sh "$stage"; done
    exit 0
fi
PY=${PY:-.venv/bin/python}
ZOO="$PY -m flashdd_zoo"
BUILD=${BUILD:-benchmarks/work/cifar10-cpu-ipc10}   # the IPC 10 curve build (D_S, selected labeler)
OUT=benchmarks/work/projector-cifar10-ipc10
TEACHER=${TEACHER:-benchmarks/teachers/cifar10-cpu-teacher}
SEEDS=${SEEDS:-0 1 2}
# The first try (first-try-2ep-1500pc/: two passes over 1,500 images a class, sized for the slowest
# 2-core machine seen) left the projector far below its weak teachers and its students 2.26 points
# under tau. This run trains longer, on the whole training split less the slice the weak teachers'
# run held out, which measures the projector after every epoch (metrics.json top1_by_epoch).
PROJECTOR_EPOCHS=${PROJECTOR_EPOCHS:-6}
HOLDOUT=500   # as the weak teachers' run (and the curve build's teacher)
BACKBONE=$OUT/imagenette32-backbone
WEAK=$OUT/cifar10-weak/checkpoints
case "$STAGE" in
backbone)  # Imagenette at 32 px, as an ImageFolder tree; then the stand-in foundation backbone
    [ -f $BACKBONE/last/checkpoint.json ] && [ -f $BACKBONE/teacher_report.json ] && { echo "backbone: done"; exit 0; }
    $PY benchmarks/resize_folder.py "${FLASHDD_DATA_ROOT:-../shared/data}/imagenette-128" runs/imagenette-32 --size 32
    $ZOO train-teacher --dataset folder:runs/imagenette-32 --out $BACKBONE --epochs 15 --stem imagenet --device cpu ;;
weak)  # weak teachers: early checkpoints of one short CIFAR-10 run that never sees the held-out slice
    [ -f $WEAK/epoch-0002/checkpoint.json ] && { echo "weak: done"; exit 0; }
    $ZOO train-teacher --dataset cifar10 --out $OUT/cifar10-weak --epochs 3 --checkpoint-epochs 1,2 --stem imagenet \
        --holdout-per-class $HOLDOUT --device cpu &
    pid=$!
    while kill -0 $pid 2>/dev/null && [ ! -f $WEAK/epoch-0002/checkpoint.json ]; do sleep 10; done
    kill -TERM $pid 2>/dev/null || true; wait $pid || true
    [ -f $WEAK/epoch-0002/checkpoint.json ] ;;
projector)  # the backbone is the final epoch of its run (last/: weights, with the optimiser state left out of git)
    [ -f $OUT/projector/manifest.json ] || $ZOO projector --dataset cifar10 --backbone flashdd-zoo:$BACKBONE/last \
        --weak-teachers $WEAK/epoch-0001 --weak-teachers $WEAK/epoch-0002 \
        --epochs $PROJECTOR_EPOCHS --holdout-per-class $HOLDOUT --out $OUT/projector ;;
update)  # HeLIO Eq. 7 on D_S's images, with the projector's encoder
    [ -d $OUT/distilled-updated ] || $ZOO projector-update --distilled "$BUILD/work/distilled" --labeler $OUT/projector \
        --dataset cifar10 --out $OUT/distilled-updated ;;
table)  # every soft-label source on the same D_S with the same seeds and protocol, one report per seed
    for seed in $SEEDS; do
        for who in teacher pruned projector updated; do
            case $who in
            teacher) labeler=$TEACHER; ds="$BUILD/work/distilled" ;;
            pruned) labeler=$(ls -d "$BUILD"/*-pruned | head -1); ds="$BUILD/work/distilled" ;;
            projector) labeler=$OUT/projector; ds="$BUILD/work/distilled" ;;
            updated) labeler=$OUT/projector; ds=$OUT/distilled-updated ;;
            esac
            [ -f $OUT/eval-$who-seed$seed.json ] || $ZOO evaluate --dataset cifar10 --distilled "$ds" --labeler "$labeler" \
                --seeds "$seed" --student-stem imagenet --device cpu --out $OUT/eval-$who-seed$seed.json
        done
    done
    $PY benchmarks/projector_table.py $OUT --teacher $TEACHER --pruned "$(ls -d "$BUILD"/*-pruned | head -1)" \
        --record projector-cifar10-ipc10-cpu ;;
*) echo "unknown stage $STAGE; choose all or one of: $STAGES" >&2; exit 2 ;;
esac
