#!/usr/bin/env bash
# Run HERE (the developer machine) before benchmarks/run_gpu_bench.sh goes to the GPU machine.
# It fills two git-ignored folders that the device call must carry:
#   .devdata/<set>              the real image sets named as arguments (default imagenet1k-sample,
#                               18 MB, for the tolerance check; cifar10 55 MB or imagenette-128
#                               63 MB for benchmarks/run_gpu_zoo.sh: one per call, 64 MiB travel)
#   .whl/                       wheels the GPU image lacks or has in other versions, pinned to this
#                               venv's versions: torch-pruning (its 1.6.1 wheel), huggingface_hub 2.x
#                               and the HTTP stack it imports (`import flashdd_zoo` needs them;
#                               the image has huggingface_hub 1.x)
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-.venv/bin/python}
DATA_ROOT=${FLASHDD_DATA_ROOT:-../shared/data}
for d in .devdata .whl; do  # the device tool carries ignored paths only; never commit these
    git check-ignore -q "$d/x" || echo "/$d/" >> .git/info/exclude
done
mkdir -p .devdata .whl
for set in "${@:-imagenet1k-sample}"; do
    [ -d ".devdata/$set" ] || cp -r "$DATA_ROOT/$set" .devdata/
done

pins=$("$PY" - <<'EOF'
from importlib.metadata import version
names = ["huggingface_hub", "httpx2", "httpcore2", "truststore", "hf-xet", "anyio", "idna", "click",
         "pytest", "pluggy", "iniconfig"]  # pytest: run_gpu_bench.sh wrappers
print(" ".join(["torch-pruning==1.6.1"] + [f"{n}=={version(n)}" for n in names]))
EOF
)
for pin in $pins; do
    name=${pin%%==*}
    if ! ls .whl/"$(echo "$name" | tr - _)"-"${pin##*==}"-*.whl >/dev/null 2>&1; then
        "$PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
            --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
            --platform any -d .whl "$pin"
    fi
done
ls .whl
du -sh .devdata .whl
echo 'now: device run(command="bash benchmarks/run_gpu_bench.sh targets", carry=[".devdata", ".whl"], timeout_s=600)'
