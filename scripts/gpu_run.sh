#!/usr/bin/env bash
# One prepared run on a lent GPU machine (issue 18): everything it measures goes into OUTDIR.
#
#   bash scripts/gpu_run.sh OUTDIR        # on the device tool: bash scripts/gpu_run.sh $OUT
#   make gpu-run OUT=OUTDIR
#
# Steps, each under `timeout`, logged, and followed by the next one even when it fails:
#   preflight  python3, torch and gpa_lib import; what torch sees
#   machine    python -m gpa_lib.bench machine: GPU facts, bf16/fp32 matmul and copy ceilings (~10 s)
#   extension  python -m gpa_lib.bench extension: the fused kernel's build (log: build.log) and time
#   gpu-tests  pytest -m gpu over the files with gpu marks (junit: gpu_tests.xml)
#   sanitizer  python -m gpa_lib.bench sanitize: compute-sanitizer memcheck over every case of the
#              fused kernels, racecheck and initcheck over the first ones (log: run.log); SKIP
#              without compute-sanitizer
#   kernel     python -m gpa_lib.bench kernel at the issue's settings, floors at the measured ceilings
#   hierarchy  python -m gpa_lib.bench hierarchy --device cuda: the hierarchical phase 1 (4x8) against
#              exact phase 1 on 2 images, then CUDA phase-1 times at 1024² and 2048² and one training
#              step of each at 2048², 8 heads (hierarchy_phase1_cuda.json)
#   pose       python -m gpa_lib.bench pose-gpu: gpa-gpu through backend=None and dense-gpu at the
#              same batch, steady step time and peak memory of both, if time is left
# The whole run keeps within GPU_RUN_BUDGET_S (default 480 s): each step's timeout is its cap or what
# is left, the sanitizer gets at most SANITIZER_S (default 120 s), the benchmark leaves HIERARCHY_S
# (default 75 s) for the hierarchy step plus POSE_MIN_S (default 100 s) for the pose runs and stops
# starting measurements before its timeout, the hierarchy step gets at most HIERARCHY_S and leaves
# POSE_MIN_S (it has no budget of its own: killed, it writes nothing), and the pose runs happen only
# with POSE_MIN_S left. A summary table is printed last and kept in summary.txt.
#
# OUTDIR gets at most 8 plain files, no folders (the device tool brings back 8 files, 16 MiB each):
#   summary.txt run.log build.log gpu_tests.xml machine_<gpu>.json kernel_bench_<gpu>.json
#   hierarchy_phase1_cuda.json pose_train_<gpu>.json
# Build products and caches go to /tmp. Exit status 0 when every step passed (the pose run may be
# skipped), 1 otherwise. Without a CUDA GPU every step says "needs a CUDA GPU" within seconds.
#
# Environment: PYTHON (default python3: the GPU machine's, holding torch; no venv, no network: the
# project is used from this folder through PYTHONPATH), GPU_RUN_BUDGET_S, POSE_MIN_S,
# SANITIZER_S, HIERARCHY_S, GPA_LIB_SOURCE_COMMIT (the commit the tree was sent from; the copy there
# has no .git), and for a second, narrower run: GPU_RUN_STEPS (the steps to run, default all eight;
# e.g. "machine extension kernel") and GPU_RUN_KERNEL_ARGS (more kernel-bench options, e.g. "--sizes
# 1024 --methods cuda").
set -u -o pipefail

if [ $# -ne 1 ]; then
    echo "usage: bash scripts/gpu_run.sh OUTDIR" >&2
    exit 2
fi
REPO=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
mkdir -p "$1" || exit 2
OUT=$(cd "$1" && pwd)
if [ -n "$(ls -A "$OUT")" ]; then
    # Results of an earlier run would be taken for this one's (the device tool empties $OUT).
    echo "gpu_run: OUTDIR $OUT is not empty; give an empty or new folder" >&2
    exit 2
fi
cd "$REPO" || exit 2

PY=${PYTHON:-python3}
if ! command -v timeout >/dev/null; then
    echo "gpu_run: the coreutils command 'timeout' is missing; every step runs under it" >&2
    exit 2
fi
BUDGET=${GPU_RUN_BUDGET_S:-480}
POSE_MIN_S=${POSE_MIN_S:-100}
SANITIZER_S=${SANITIZER_S:-120}
HIERARCHY_S=${HIERARCHY_S:-75}
STEPS=" ${GPU_RUN_STEPS:-preflight machine extension gpu-tests sanitizer kernel hierarchy pose} "
NO_GPU="needs a CUDA GPU"
LOG=$OUT/run.log
SUMMARY=$OUT/summary.txt
STEP_OUT=$(mktemp -d /tmp/gpu_run.XXXXXX)
START=$SECONDS

export PYTHONPATH="$REPO${PYTHONPATH:+:$PYTHONPATH}"
export PYTHONUNBUFFERED=1 PYTHONDONTWRITEBYTECODE=1 MPLBACKEND=Agg
export GPA_LIB_RESULTS_DIR="$OUT"                     # write_result puts the JSON here
export GPA_LIB_CACHE=${GPA_LIB_CACHE:-/tmp/gpa_lib_cache}  # the extension's build folder
if [ -z "${GPA_LIB_SOURCE_COMMIT:-}" ]; then
    # Only this project's own repository: a copy inside another checkout must not take its HEAD.
    GPA_LIB_SOURCE_COMMIT="not given"
    if [ "$(git -C "$REPO" rev-parse --show-toplevel 2>/dev/null)" = "$(cd "$REPO" && pwd -P)" ]; then
        GPA_LIB_SOURCE_COMMIT=$(git -C "$REPO" rev-parse HEAD 2>/dev/null || echo "not given")
    fi
fi
export GPA_LIB_SOURCE_COMMIT

: >"$LOG"
NAMES=() STATUS=() TIMES=() NOTES=()

left() { echo $((BUDGET - (SECONDS - START))); }

write_summary() {
    {
        printf '%-10s %-8s %6s  %s\n' step status secs note
        for i in "${!NAMES[@]}"; do
            printf '%-10s %-8s %6s  %s\n' "${NAMES[$i]}" "${STATUS[$i]}" "${TIMES[$i]}" "${NOTES[$i]}"
        done
        echo "elapsed $((SECONDS - START)) s of a ${BUDGET} s budget; source commit ${GPA_LIB_SOURCE_COMMIT}"
    } >"$SUMMARY"
}

record() {  # name status seconds note
    NAMES+=("$1") STATUS+=("$2") TIMES+=("$3") NOTES+=("${4:0:110}")
    echo "--- $1: $2 after $3 s: $4" | tee -a "$LOG"
    write_summary
}

# run_step NAME CAP_S LOGFILE NOTE_PATTERN CMD...: run CMD under timeout (its cap or the time left),
# output to the console, LOGFILE and the step's own capture; classify the outcome; the note is the
# last output line matching NOTE_PATTERN (else the last line).
run_step() {
    local name=$1 cap=$2 logfile=$3 pattern=$4
    shift 4
    if [[ "$STEPS" != *" $name "* ]]; then
        record "$name" SKIP 0 "not in GPU_RUN_STEPS"
        return 0
    fi
    local limit
    limit=$(left)
    ((limit > cap)) && limit=$cap
    if ((limit < 15)); then
        record "$name" SKIP 0 "only $(left) s of the budget left"
        return 0
    fi
    local capture=$STEP_OUT/$name.out t0=$SECONDS rc
    local shown="$*"
    shown=${shown//$'\n'/ }
    echo "=== $name (timeout ${limit} s, $(left) s of the budget left): ${shown:0:150}" | tee -a "$LOG"
    [ "$logfile" != "$LOG" ] && echo "=== $name: ${shown:0:150}" >>"$logfile"
    timeout -k 10 "$limit" "$@" </dev/null 2>&1 | tee -a "$logfile" "$capture"
    rc=${PIPESTATUS[0]}
    local secs=$((SECONDS - t0)) note status
    note=$(grep -E "$pattern" "$capture" | tail -n 1)
    [ -z "$note" ] && note=$(grep -v '^[[:space:]]*$' "$capture" | tail -n 1)
    if [ "$rc" -eq 0 ]; then
        status=PASS
    elif [ "$rc" -eq 124 ] || [ "$rc" -eq 137 ]; then
        status=TIMEOUT note="killed after the ${limit} s timeout; last: $note"
    elif grep -q "$NO_GPU" "$capture"; then
        status=NO-GPU note=$(grep -m 1 -o "$NO_GPU.*" "$capture")
    elif [ "$rc" -eq 2 ] && grep -q "skipped:" "$capture"; then
        status=SKIP note=$(grep -m 1 "skipped:" "$capture")
    else
        status=FAIL note="exit $rc: $note"
    fi
    [ "$logfile" != "$LOG" ] && tail -n 20 "$capture" >>"$LOG"
    record "$name" "$status" "$secs" "$note"
}

echo "gpu_run: $(date -u +%FT%TZ) in $REPO, results to $OUT, budget ${BUDGET} s, python: $PY" | tee -a "$LOG"

# 1. preflight: does this python hold torch, and does torch see a GPU? (never fatal: each step says it)
run_step preflight 60 "$LOG" "^preflight:" "$PY" -c '
import sys, torch, gpa_lib
print(f"preflight: python {sys.version.split()[0]} at {sys.executable}; torch {torch.__version__} "
      f"(CUDA {torch.version.cuda}); gpa_lib from {gpa_lib.__file__}")
if torch.cuda.is_available():
    print(f"preflight: {torch.cuda.get_device_name()}, capability "
          f"{torch.cuda.get_device_capability()}, {torch.cuda.device_count()} device(s)")
else:
    print("preflight: needs a CUDA GPU: torch.cuda.is_available() is False; every step will say so")
    sys.exit(1)
'
command -v nvidia-smi >/dev/null && timeout 20 nvidia-smi 2>&1 | head -n 20 >>"$LOG"

# 2. machine facts and ceilings
run_step machine 90 "$LOG" "TFLOP/s|^machine:" "$PY" -m gpa_lib.bench machine --seconds 10
MACHINE_JSON=$(ls "$OUT"/machine_*.json 2>/dev/null | head -n 1)

# 3. the extension build, then the GPU tests
run_step extension 240 "$OUT/build.log" "^extension:" "$PY" -m gpa_lib.bench extension


# The junit XML in one line; exit 1 when every test was skipped (torch sees no GPU: conftest's reason).
junit_verdict() {
    "$PY" - "$1" <<'EOF'
import sys
import xml.etree.ElementTree as ET
try:
    root = ET.parse(sys.argv[1]).getroot()
except (OSError, ET.ParseError) as err:
    print(f"gpu tests: no junit XML ({err})")
    sys.exit(1)
suite = root if root.tag == "testsuite" else root.find("testsuite")
n = {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")}
passed = n["tests"] - n["failures"] - n["errors"] - n["skipped"]
print(f"gpu tests: {passed} passed, {n['failures']} failed, {n['errors']} errors, "
      f"{n['skipped']} skipped of {n['tests']}")
if n["skipped"] == n["tests"]:
    reasons = sorted({s.get("message", "") for s in root.iter("skipped")})
    print(f"gpu tests: every test skipped: {(reasons or [''])[0][:200]}")
    sys.exit(1)
EOF
}

PYTEST_TIMEOUT=()
"$PY" -c "import pytest_timeout" 2>/dev/null && PYTEST_TIMEOUT=(--timeout=120)
run_step gpu-tests 150 "$LOG" "passed|failed|error" "$PY" -m pytest -m gpu -p no:cacheprovider \
    "${PYTEST_TIMEOUT[@]}" --junitxml="$OUT/gpu_tests.xml" tests/test_attention_cuda.py \
    tests/test_attention_flex_training.py tests/test_attention_selection.py \
    tests/test_attention_hierarchy.py
# pytest passes when every test skips: the XML says whether the tests ran at all.
last=$((${#NAMES[@]} - 1))
if [ "${STATUS[$last]}" = PASS ]; then
    VERDICT=$(junit_verdict "$OUT/gpu_tests.xml" 2>&1)
    VERDICT_RC=$?
    echo "$VERDICT" | tee -a "$LOG"
    NOTES[last]=$(echo "$VERDICT" | head -n 1 | cut -c 1-110)
    if [ "$VERDICT_RC" -ne 0 ]; then
        STATUS[last]=FAIL
        NOTES[last]=$(echo "$VERDICT" | tail -n 1 | cut -c 1-110)
        if echo "$VERDICT" | grep -q "$NO_GPU"; then
            STATUS[last]=NO-GPU
            NOTES[last]=$(echo "$VERDICT" | grep -o "$NO_GPU.*" | head -n 1 | cut -c 1-110)
        fi
    fi
    echo "--- gpu-tests: ${STATUS[$last]} (junit): ${NOTES[$last]}" | tee -a "$LOG"
fi
write_summary

# 4. compute-sanitizer over small calls of the fused kernels (the cases of gpa_lib/bench/sanitize.py;
# a fused phase-1 kernel adds its own there). Its output goes to run.log: OUTDIR holds 8 files.
run_step sanitizer "$SANITIZER_S" "$LOG" "^sanitize:" "$PY" -m gpa_lib.bench sanitize \
    --time-budget-s $((SANITIZER_S - 10))

# 5. the kernel benchmark: what is left less the hierarchy step's and the pose runs' shares (of those
# that are to run), less a margin in which the last measurement ends and the JSON is written (it is
# also rewritten after every measurement).
POSE_SHARE=0
[[ "$STEPS" == *" pose "* ]] && POSE_SHARE=$POSE_MIN_S
HIERARCHY_SHARE=0
[[ "$STEPS" == *" hierarchy "* ]] && HIERARCHY_SHARE=$HIERARCHY_S
BENCH_CAP=$(($(left) - HIERARCHY_SHARE - POSE_SHARE - 5))
KERNEL_ARGS=(--max-call-s 0.5 --time-budget-s $((BENCH_CAP > 60 ? BENCH_CAP - 45 : 15)))
read -r -a EXTRA <<<"${GPU_RUN_KERNEL_ARGS:-}"
KERNEL_ARGS+=("${EXTRA[@]}")
[ -n "$MACHINE_JSON" ] && KERNEL_ARGS+=(--machine-json "$MACHINE_JSON")
run_step kernel "$BENCH_CAP" "$LOG" "^kernel bench:|^wrote" "$PY" -m gpa_lib.bench kernel \
    "${KERNEL_ARGS[@]}"

# 6. the hierarchical phase 1 against exact phase 1 on the GPU (gpa_lib/bench/hierarchy.py): at most
# HIERARCHY_S, and only what is left less the pose runs' share; without CUDA the command says "needs a
# CUDA GPU" and exits before any work. It writes hierarchy_phase1_cuda.json at its end only; each
# timed method gets 6 s (fewer repeats past that, at least one after a warm-up call).
HIERARCHY_CAP=$(($(left) - POSE_SHARE))
((HIERARCHY_CAP > HIERARCHY_S)) && HIERARCHY_CAP=$HIERARCHY_S
if [[ "$STEPS" == *" hierarchy "* ]] && ((HIERARCHY_CAP < 15)); then
    record hierarchy SKIP 0 "only $(left) s of the budget left (the pose runs keep ${POSE_SHARE} s)"
else
    run_step hierarchy "$HIERARCHY_CAP" "$LOG" "^primary|^hierarchy:" "$PY" -m gpa_lib.bench \
        hierarchy --device cuda --images 2 --settings 4x8 --timing-sides 1024 2048 \
        --timing-heads 8 --train-sides 2048 --train-heads 8 --timing-budget-s 6
fi

# 7. the pose training runs, only with time left: gpa-gpu as configured (backend=None, the automatic
# choice) and dense-gpu at the same batch; an entry point that moved is a logged skip.
if [[ "$STEPS" != *" pose "* ]] || (($(left) >= POSE_MIN_S)); then
    POSE_CAP=$(($(left) - 5))
    run_step pose "$POSE_CAP" "$LOG" "^pose:" "$PY" -m gpa_lib.bench pose-gpu \
        --presets gpa-gpu dense-gpu --steps 30 --warmup-steps 10 \
        --time-budget-s $((POSE_CAP - 20)) --work-dir /tmp/gpa_pose_run
else
    record pose SKIP 0 "only $(left) s of the budget left (needs ${POSE_MIN_S} s)"
fi

# The end: the kernel table again (the device tool returns only the end of the output), the files,
# the summary, and the exit status.
KERNEL_JSON=$(ls "$OUT"/kernel_bench_*.json 2>/dev/null | head -n 1)
if [ -n "$KERNEL_JSON" ]; then
    echo "=== kernel bench table ($KERNEL_JSON)"
    "$PY" -m gpa_lib.bench kernel --show "$KERNEL_JSON" 2>&1 | tail -n 70
fi
n_files=$(find "$OUT" -mindepth 1 | wc -l)
echo "=== $OUT: $n_files entries (at most 8 planned; the device tool brings back 8 files)" | tee -a "$LOG"
ls -l "$OUT" | tail -n +2 | tee -a "$LOG"
((n_files > 8)) && echo "WARNING: more than 8 entries in $OUT: some may not come back" | tee -a "$LOG"
rm -rf "$STEP_OUT"
write_summary
echo "=== summary ($SUMMARY)"
cat "$SUMMARY"
for s in "${STATUS[@]}"; do
    case $s in PASS | SKIP) ;; *) echo "gpu_run: NOT everything passed"; exit 1 ;; esac
done
echo "gpu_run: everything passed"
exit 0
