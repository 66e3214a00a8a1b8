#!/usr/bin/env bash
# Mutation benchmark (issue 19): mutmut 3 over the modules that guard users ([tool.mutmut] in
# pyproject.toml), then benchmarks/results/mutation-score.json (killed / total per module and
# overall, less the mutants listed in mutation-equivalents.toml). A benchmark, not a CI step: hours
# on a 2-core CPU.
#
#   bash benchmarks/run_mutation.sh                      # the full benchmark -> mutation-score.json
#   bash benchmarks/run_mutation.sh flashdd_zoo/zoo/capacity.py [tests/test_capacity_build.py ...]
#       # a partial run: only the named module(s) mutated, optionally only the named test files;
#       # recorded as .mutation/results/mutation-score-partial.json, never as the benchmark's result
#
# mutmut runs in a copy of the working tree (.mutation/, git-ignored), so the checkout's own
# pyproject.toml stays the one configuration. The full benchmark outlasts a session: its verdicts
# (mutmut's .meta files and test stats) are copied to benchmarks/work/mutation/ every minute, to be
# committed with benchmarks/commit_work.sh, and the next run resumes from them. mutmut itself drops a
# verdict when the mutated *function* changes, but not when a test does (an old "survived" would
# stand after the test was strengthened), so benchmarks/mutation_state.py resets the verdicts that
# the tests changed since the save could have changed (or all of them, for a conftest or
# pyproject.toml change).
# Partial runs start afresh unless MUTATION_RESUME=1 (finish an interrupted one). Environment: PYTHON (default .venv/bin/python, whose bin/ holds
# mutmut: pip install -e ".[dev,mutation]"), MUTATION_CHILDREN (parallel mutants, default: cores),
# FLASHDD_DATA_ROOT (default ../shared/data).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
PY=${PYTHON:-$ROOT/.venv/bin/python}
MUTMUT=$(dirname "$PY")/mutmut
[ -x "$MUTMUT" ] || { echo "no mutmut beside $PY: pip install -e '.[mutation]'" >&2; exit 2; }

# Tests run inside mutants/, one level deeper than the checkout: ../shared/data does not resolve
# from there, and the tests that need real data would skip (and kill nothing). Point at it, and
# turn any such skip into a failure.
DATA=${FLASHDD_DATA_ROOT:-$ROOT/../shared/data}
[ -d "$DATA" ] || { echo "no data at $DATA (set FLASHDD_DATA_ROOT)" >&2; exit 2; }
export FLASHDD_DATA_ROOT=$(cd "$DATA" && pwd) FLASHDD_REQUIRE_DATA=1
CORES=$(nproc)  # before OMP_NUM_THREADS=1 below: GNU nproc reports that instead of the cores
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}
unset PYTHONPATH  # mutmut puts mutants/ first; a PYTHONPATH checkout would shadow it in subprocesses

modules=() tests=()
for arg in "$@"; do
  case $arg in
    tests/*) tests+=("$arg") ;;
    flashdd_zoo/*.py) modules+=("$arg") ;;
    *) echo "unknown argument $arg (expected flashdd_zoo/....py or tests/....py)" >&2; exit 2 ;;
  esac
done
name=mutation-score out=$ROOT/benchmarks/results
[ ${#modules[@]} -eq 0 ] && [ ${#tests[@]} -eq 0 ] || { name=mutation-score-partial out=$ROOT/.mutation/results; }

# the working tree as it is (tracked and untracked, not ignored), without the long builds' state
WORK=$ROOT/.mutation
mkdir -p "$WORK"
git ls-files -co --exclude-standard | grep -v '^benchmarks/work/' | tar cf - -T - | (cd "$WORK" && tar xf -)
if [ ${#modules[@]} -gt 0 ] || [ ${#tests[@]} -gt 0 ]; then
  "$PY" - "$WORK/pyproject.toml" "${#modules[@]}" "${modules[@]}" "${tests[@]}" <<'PY'
import json, re, sys
path, n = sys.argv[1], int(sys.argv[2])
modules, tests = sys.argv[3:3 + n], sys.argv[3 + n:]
text = open(path).read()
def replace(key, values):
    global text
    text, k = re.subn(rf"^{key} = \[.*?^\]|^{key} = \[[^\n]*\]", f"{key} = {json.dumps(values)}", text, count=1, flags=re.M | re.S)
    assert k == 1, key
if modules:
    replace("only_mutate", modules)
if tests:
    replace("pytest_add_cli_args_test_selection", tests)
open(path, "w").write(text)
PY
fi

STATE=$ROOT/benchmarks/work/mutation   # the full benchmark's verdicts so far (committed)
save_state() {  # the verdicts and stats only (the mutated sources are regenerated), written whole then swapped in
  (cd "$WORK" && find mutants -name '*.meta' -o -name 'mutmut-stats.json') > "$WORK/state.list" || return 0
  rm -rf "$STATE.tmp" && mkdir -p "$STATE.tmp" && (cd "$WORK" && tar cf - -T state.list) | (cd "$STATE.tmp" && tar xf -)
  # mutmut rewrites a .meta in place after each mutant: a copy caught mid-write waits for the next round
  "$PY" -c 'import json, pathlib, sys; [json.loads(p.read_text()) for p in pathlib.Path(sys.argv[1]).rglob("*.*")]' \
    "$STATE.tmp" 2>/dev/null || return 0
  cp "$WORK/tests-files.json" "$STATE.tmp/"
  rm -rf "$STATE.old" && { [ ! -d "$STATE" ] || mv "$STATE" "$STATE.old"; } && mv "$STATE.tmp" "$STATE" && rm -rf "$STATE.old"
}
[ -d "$STATE" ] || [ ! -d "$STATE.old" ] || mv "$STATE.old" "$STATE"  # a run stopped mid-swap
if [ "$name" = mutation-score ]; then
  rm -rf "$WORK/mutants"
  "$PY" benchmarks/mutation_state.py hashes > "$WORK/tests-files.json"  # the tests this run uses
  if [ -f "$STATE/tests-files.json" ]; then
    # keep the saved verdicts that the tests changed since cannot have changed (mutation_state.py)
    (cd "$STATE" && tar cf - mutants) | (cd "$WORK" && tar xf -)
    "$PY" benchmarks/mutation_state.py carry "$WORK/mutants" "$STATE/tests-files.json" "$WORK/tests-files.json" \
      || { echo "starting afresh"; rm -rf "$WORK/mutants"; }
  fi
  (while sleep 60; do save_state; done) &
  saver=$!
  trap 'kill $saver 2>/dev/null || true' EXIT
elif [ "${MUTATION_RESUME:-0}" != 1 ]; then
  rm -rf "$WORK/mutants"
fi
cd "$WORK"
nice -n "${MUTATION_NICE:-10}" "$MUTMUT" run --max-children "${MUTATION_CHILDREN:-$CORES}"
cd "$ROOT"
if [ "$name" = mutation-score ]; then kill $saver 2>/dev/null || true; save_state; fi
"$PY" benchmarks/mutation_score.py "$WORK" --name "$name" --out "$out" --mutmut "$MUTMUT" \
  --command "bash benchmarks/run_mutation.sh${*:+ $*}"
if [ "$name" = mutation-score ]; then
  "$PY" benchmarks/render_results.py  # RESULTS.md and the README list every recorded result
fi
