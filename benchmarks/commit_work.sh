#!/usr/bin/env bash
# Commit the finished stages of the long builds in benchmarks/work/ (stages.json, D_S, chain
# members), so a later session resumes them: a session ends whatever still runs. Stages are written
# atomically, so whatever is on disk at any moment is a consistent set of finished stages.
set -euo pipefail
cd "$(dirname "$0")/.."
git add benchmarks/work
if git diff --cached --quiet -- benchmarks/work; then
    echo "benchmarks/work: nothing new"; exit 0
fi
done_stages=$(python3 -c "
import json, pathlib
for p in sorted(pathlib.Path('benchmarks/work').glob('*/work/stages.json')):
    print(p.parent.parent.name + ':', ', '.join(json.loads(p.read_text())))")
git commit -q -m "benchmarks/work: finished stages so far (resumable across sessions)" -m "$done_stages" -- benchmarks/work
echo "committed: $done_stages"
