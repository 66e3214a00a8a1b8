#!/usr/bin/env bash
# Issue 10 on this 2-core CPU: the Flash-DD curve on real CIFAR-10 at IPC 1, 10 and 50.
#
#   bash benchmarks/run_cpu_cifar10.sh teacher    # ImageNet-stem ResNet-18, 500 images/class held out
#   bash benchmarks/run_cpu_cifar10.sh ipc10      # then ipc1, ipc50 (each: the whole curve, 3 seeds)
#   bash benchmarks/run_cpu_cifar10.sh ipc1-mse   # IPC 1 again with Flash-DD's student loss (after ipc1)
#   bash benchmarks/run_cpu_cifar10.sh all
#
# Run one stage at a time, in the background (`nohup ... &`): every stage resumes where an
# interruption left it (teacher epochs, build stages, chain steps), with results that do not
# depend on the interruption. Each stage writes benchmarks/results/<name>.json when it ends;
# commit it and re-run benchmarks/render_results.py. Data: ../shared/data/cifar10 (or
# FLASHDD_DATA_ROOT). The builds use the teacher committed in benchmarks/teachers/ (the weights the
# `teacher` stage produced for teacher-cifar10-cpu.json), so a fresh checkout need not retrain it;
# TEACHER=runs/cifar10-cpu-teacher/teacher uses a freshly trained one instead.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES="teacher ipc10 ipc1 ipc50 ipc1-mse"
STAGE=${1:?usage: bash benchmarks/run_cpu_cifar10.sh all|${STAGES// /|}}
if [ "$STAGE" = all ]; then
    for stage in $STAGES; do bash benchmarks/run_cpu_cifar10.sh "$stage"; done
    exit 0
fi
ZOO=${ZOO:-.venv/bin/flashdd-zoo}
TEACHER=${TEACHER:-benchmarks/teachers/cifar10-cpu-teacher}
case "$STAGE" in
teacher)
    $ZOO train-teacher --dataset cifar10 --out runs/cifar10-cpu-teacher --epochs 30 --stem imagenet --holdout-per-class 500 \
        --device cpu --record teacher-cifar10-cpu ;;
# One pruning chain (in a curve build it does not depend on the IPC) serves every IPC. Work folders
# and the chain live in benchmarks/work/ and are committed as stages finish (benchmarks/commit_work.sh):
# a session ends whatever still runs (IPC 50 takes longer than one), and the next session resumes.
ipc1)
    $ZOO build --preset cpu --dataset cifar10 --ipc 1 --teacher $TEACHER \
        --chain-dir benchmarks/work/cifar10-cpu-chain --out benchmarks/work/cifar10-cpu-ipc1 --device cpu \
        --record capacity-cifar10-ipc1-cpu ;;
ipc10)  # with DD-Ranking's label-robust scores of the teacher and the selected labeler (issue 13)
    $ZOO build --preset cpu --dataset cifar10 --ipc 10 --teacher $TEACHER --label-robust \
        --chain-dir benchmarks/work/cifar10-cpu-chain --out benchmarks/work/cifar10-cpu-ipc10 --device cpu \
        --record capacity-cifar10-ipc10-cpu --record-label-robust ddranking-cifar10-ipc10-cpu ;;
ipc50)
    $ZOO build --preset cpu --dataset cifar10 --ipc 50 --seeds 0,1 --teacher $TEACHER \
        --chain-dir benchmarks/work/cifar10-cpu-chain --out benchmarks/work/cifar10-cpu-ipc50 --device cpu \
        --record capacity-cifar10-ipc50-cpu ;;
# IPC 1's curve is flat within seed noise under RDED's KL at T = 20. The same teacher, chain and
# D_S with Flash-DD's loss, MSE + 0.025 CE, at T = 4: at T = 20 the softmax targets are nearly
# uniform and the MSE term vanishes beside the CE (hard labels in all but name).
ipc1-mse)
    $ZOO build --preset cpu --dataset cifar10 --ipc 1 --loss mse_ce --temperature 4 --teacher $TEACHER \
        --distilled benchmarks/work/cifar10-cpu-ipc1/work/distilled \
        --chain-dir benchmarks/work/cifar10-cpu-chain --out benchmarks/work/cifar10-cpu-ipc1-mse --device cpu \
        --record capacity-cifar10-ipc1-mse-cpu ;;
*) echo "unknown stage $STAGE; choose all or one of: $STAGES" >&2; exit 2 ;;
esac
