#!/usr/bin/env bash
# The GPU results of issues 3 and 4 (teachers, eval speed, tau(D_S), capacity builds), one stage
# per device call (each under the 10-minute limit; a build cut off at the limit resumes from its
# stage checkpoints when the same stage is run again on the still-warm machine).
#
#   here:    bash benchmarks/prepare_device_carry.sh cifar10          # or imagenette-128
#   device:  run(command="bash benchmarks/run_gpu_zoo.sh cifar-teacher", carry=[".devdata/cifar10", ".whl"], timeout_s=600)
#            ... then cifar-ipc10, eval-speed, cifar-ipc50 (same carry; runs/ stays on the warm machine)
#            imagenette-teacher, imagenette-ipc10 with carry=[".devdata/imagenette-128", ".whl"]
#   here:    cp <files_at>/results/*.json benchmarks/results/ && python benchmarks/render_results.py
#
# On a GPU machine without the 10-minute limit, one command runs every stage in order (CIFAR-10
# and Imagenette-128 both under .devdata/, or FLASHDD_DATA_ROOT pointing at them):
#            bash benchmarks/run_gpu_zoo.sh all
#
# Every stage records its result files with the exact command (flashdd_zoo/results.py).
set -euo pipefail
cd "$(dirname "$0")/.."
STAGES="cifar-teacher cifar-ipc10 eval-speed cifar-ipc50 imagenette-teacher imagenette-ipc10"
STAGE=${1:?usage: bash benchmarks/run_gpu_zoo.sh all|${STAGES// /|}}
if [ "$STAGE" = all ]; then
    for stage in $STAGES; do bash benchmarks/run_gpu_zoo.sh "$stage"; done
    exit 0
fi
OUT=${OUT:-/tmp/flashdd-zoo-out}
mkdir -p "$OUT/results"
touch "$OUT/.stage-start"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1 FLASHDD_DATA_ROOT=${FLASHDD_DATA_ROOT:-.devdata}
if ls .whl/*.whl >/dev/null 2>&1; then
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
exec > >(tee -a "$OUT/log-$STAGE.txt") 2>&1
zoo() { python3 -m flashdd_zoo "$@"; }

case "$STAGE" in
cifar-teacher)
    zoo train-teacher --dataset cifar10 --out runs/cifar10-teacher --epochs 30 --checkpoint-epochs 5,10 \
        --record teacher-cifar10 ;;
cifar-ipc10)
    zoo build --preset paper --dataset cifar10 --ipc 10 --teacher runs/cifar10-teacher/teacher \
        --out runs/cifar10-ipc10 --record capacity-cifar10-ipc10 --record-tau tau-cifar10-ipc10 ;;
eval-speed)
    zoo evaluate --dataset cifar10 --distilled runs/cifar10-ipc10/work/distilled \
        --labeler runs/cifar10-teacher/teacher --epochs 300 --seeds 0 --record eval-speed-cifar10-ipc10 ;;
cifar-ipc50)
    zoo build --preset paper --dataset cifar10 --ipc 50 --teacher runs/cifar10-teacher/teacher \
        --out runs/cifar10-ipc50 --record capacity-cifar10-ipc50 --record-tau tau-cifar10-ipc50 ;;
imagenette-teacher)
    zoo train-teacher --dataset imagenette128 --out runs/imagenette128-teacher --epochs 60 --batch-size 256 \
        --lr 0.2 --record teacher-imagenette128 ;;
imagenette-ipc10)
    zoo build --preset paper --dataset imagenette128 --ipc 10 --teacher runs/imagenette128-teacher/teacher \
        --out runs/imagenette128-ipc10 --record capacity-imagenette128-ipc10 --record-tau tau-imagenette128-ipc10 ;;
*)
    echo "unknown stage $STAGE" >&2; exit 2 ;;
esac
find benchmarks/results -name '*.json' -newer "$OUT/.stage-start" -exec cp {} "$OUT/results/" \;
for report in runs/*/build-report.md; do  # only this stage's build report is new
    if [ "$report" -nt "$OUT/.stage-start" ]; then
        cp "$report" "$OUT/$(basename "$(dirname "$report")")-build-report.md"
    fi
done
echo "stage $STAGE done"
