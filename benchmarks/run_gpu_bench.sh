#!/usr/bin/env bash
# The GPU benchmark of issue 6, in one command on the lent GPU machine (H100, Python 3.12, torch 2.11):
#
#   here:    bash benchmarks/prepare_device_carry.sh
#   device:  run(command="bash benchmarks/run_gpu_bench.sh targets",  carry=[".devdata", ".whl"], timeout_s=600)
#   then:    run(command="bash benchmarks/run_gpu_bench.sh variants", carry=[".devdata", ".whl"], timeout_s=600)
#   here:    cp <files_at>/results/*.json benchmarks/results/ && python benchmarks/render_results.py
#
# "wrappers" (issue 13) runs the CUDA checks of what DD codebases do to a loaded teacher
# (DataParallel, .cuda() after loading, .half(), requires_grad loops, torch.compile, the caller's
# normalisation) as `pytest -m gpu` on real CIFAR-10 images:
#   here:    bash benchmarks/prepare_device_carry.sh cifar10
#   device:  run(command="bash benchmarks/run_gpu_bench.sh wrappers", carry=[".devdata", ".whl"], timeout_s=300)
#
# "targets" writes the four result files the issue names (bench-ipc10-capacity, bench-ipc1-capacity,
# bench-ceiling, fast-path-tolerance) into $OUT/results/, plus $OUT/log.txt.
# "variants" runs the fast path's other settings (torch.compile, bf16 input, raw input, no CUDA
# graphs) and a 3-member ensemble with and without member stacking, and writes their full reports
# to $OUT/variants/ without recording result files.
# Labelers: ResNet-18s at the target sizes with widths that are multiples of 8 and random weights
# (speed does not depend on weight values): 16,32,48,96 (516k params ~ IPC 10 capacity) and
# 8,8,8,16 (34k ~ IPC 1), 1,000 classes, 224x224. The teacher is a full ResNet-18, float32 eager.
set -euo pipefail
cd "$(dirname "$0")/.."
STAGE=${1:-targets}
if [ "$STAGE" = all ]; then  # both, where no per-command time limit applies
    bash benchmarks/run_gpu_bench.sh targets && bash benchmarks/run_gpu_bench.sh variants \
        && bash benchmarks/run_gpu_bench.sh wrappers
    exit 0
fi
OUT=${OUT:-/tmp/flashdd-bench-out}
mkdir -p "$OUT/results" "$OUT/variants"
export PYTHONPATH=.${PYTHONPATH:+:$PYTHONPATH} PYTHONUNBUFFERED=1
if ls .whl/*.whl >/dev/null 2>&1; then  # see prepare_device_carry.sh: they win over the image's versions
    python3 -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target /tmp/site .whl/*.whl
    export PYTHONPATH=/tmp/site:$PYTHONPATH
fi
exec > >(tee -a "$OUT/log.txt") 2>&1
python3 -c "import torch, flashdd_zoo; print('torch', torch.__version__, torch.cuda.get_device_name(0))" || {
    echo "import flashdd_zoo failed: carry the wheels it names (benchmarks/prepare_device_carry.sh)" >&2; exit 3; }
nvidia-smi --query-gpu=name,clocks.sm,clocks.mem,temperature.gpu,utilization.gpu --format=csv || true

IPC10=16,32,48,96
IPC1=8,8,8,16
bench() { python3 -m flashdd_zoo bench --device cuda --res 224 --classes 1000 "$@"; }

if [ "$STAGE" = targets ]; then
    bench --stage-widths $IPC10 --batch 100 --repeats 20 --record bench-ipc10-capacity
    bench --stage-widths $IPC1 --batch 100 --repeats 20 --record bench-ipc1-capacity
    bench --stage-widths $IPC1 --batch 1024 --repeats 20 --against none --ceiling --record bench-ceiling
    python3 benchmarks/fast_path_tolerance.py --images .devdata/imagenet1k-sample --stage-widths $IPC10 \
        --device cuda --record fast-path-tolerance
    cp benchmarks/results/bench-ipc10-capacity.json benchmarks/results/bench-ipc1-capacity.json \
       benchmarks/results/bench-ceiling.json benchmarks/results/fast-path-tolerance.json "$OUT/results/"
elif [ "$STAGE" = variants ]; then
    bench --stage-widths $IPC1 --batch 100 --against none --compile default --json "$OUT/variants/ipc1-compile.json"
    bench --stage-widths $IPC1 --batch 100 --against none --input-dtype bfloat16 --raw-input \
        --json "$OUT/variants/ipc1-bf16-raw-input.json"
    bench --stage-widths $IPC10 --batch 100 --against none --no-cuda-graphs --json "$OUT/variants/ipc10-no-graphs.json"
    bench --stage-widths $IPC10 --batch 100 --against none --compile default --input-dtype bfloat16 \
        --json "$OUT/variants/ipc10-compile-bf16-input.json"
    bench --stage-widths $IPC10 --members 3 --batch 100 --json "$OUT/variants/ipc10-ensemble3-stacked.json"
    bench --stage-widths $IPC10 --members 3 --batch 100 --against none --no-stack-members \
        --json "$OUT/variants/ipc10-ensemble3-one-by-one.json"
elif [ "$STAGE" = wrappers ]; then
    FLASHDD_DATA_ROOT=${FLASHDD_DATA_ROOT:-.devdata} FLASHDD_REQUIRE_DATA=1 python3 -m pytest -m gpu -q -p no:cacheprovider \
        tests/test_wrappers.py tests/test_input_normalization.py tests/test_fast_path.py \
        --junitxml "$OUT/variants/wrappers-junit.xml"
else
    echo "usage: bash benchmarks/run_gpu_bench.sh [targets|variants|wrappers|all]" >&2
    exit 2
fi
echo "done: $(ls "$OUT"/results "$OUT"/variants)"
