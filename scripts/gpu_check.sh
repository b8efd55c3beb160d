#!/usr/bin/env bash
# A short, prepared check of the GPU paths on one CUDA GPU, sized to about 8 minutes on one H200 (the
# course's device checks get 15 minutes of device time in all, start-up included): one run of this script
# measures what the `gpu` profile's estimates in inpaint_utils/config.py guess.
#
#   scripts/gpu_check.sh                       # with .venv/bin/python; see --help
#   scripts/gpu_check.sh --python "$(which python)" --out runs/gpu_check
#
# Steps, each under its own time limit; a failing step does not stop the others:
#   env            torch / CUDA / GPU as the notebooks see them
#   pytest-gpu     the tests marked `gpu` (SyncBatchNorm, NCCL, the fp16 scaler), skipped without CUDA
#   nb-02 .. nb-05 each training notebook in the gpu profile, cut to a few steps (CUDA, AMP, loader workers)
#   bench-ce       benchmarks/bench_context_encoder.py on CUDA (inference, training images/s, NSD)
#   bench-ca       benchmarks/bench_contextual_attention.py on CUDA (batched vs per-sample loop)
#   bench-train    benchmarks/bench_training.py on CUDA, gpu profile: images/s and data wait, cache off / on
#   train-nproc1   `inpaint train ce --profile gpu --nproc 1` on the course's images, a few steps
# Every step's wall time and status go to OUT/summary.md and OUT/summary.json, its output to OUT/logs/.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/gpu_check.sh [--python PY] [--out DIR] [--steps N] [--step-timeout S] [--allow-cpu]
                            [--dry-run] [-h|--help]

  --python PY        interpreter with the project installed (default: .venv/bin/python)
  --out DIR          logs, executed notebooks and summary.{md,json} (default: runs/gpu_check)
  --steps N          training steps of each notebook and of `inpaint train` (default: 40)
  --step-timeout S   seconds one step may take (default: 150)
  --allow-cpu        run even when no CUDA GPU is visible (to try the script itself; slow)
  --dry-run          print the steps and their commands, run nothing
USAGE
}

PY=".venv/bin/python"
OUT="runs/gpu_check"
STEPS=40
STEP_TIMEOUT=150
ALLOW_CPU=0
DRY_RUN=0
while [[ $# -gt 0 ]]; do
    case "$1" in
        --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --steps) STEPS="${2:?--steps needs a number}"; shift 2 ;;
        --step-timeout) STEP_TIMEOUT="${2:?--step-timeout needs seconds}"; shift 2 ;;
        --allow-cpu) ALLOW_CPU=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "gpu_check.sh: unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done
[[ "$STEPS" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_check.sh: --steps must be a positive whole number, got '$STEPS'" >&2; exit 2; }
[[ "$STEP_TIMEOUT" =~ ^[1-9][0-9]*$ ]] || { echo "gpu_check.sh: --step-timeout must be whole seconds, got '$STEP_TIMEOUT'" >&2; exit 2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
NBRUN=("$PY" -m inpaint_utils.nbrun run --profile gpu --out "$OUT/notebooks" --timeout "$STEP_TIMEOUT")
# Each step: a name, then its command. The notebooks keep the gpu profile's networks, batch and loader
# workers and only run fewer steps (and score fewer images), so a step's time is what a real run spends per step.
declare -a NAMES CMDS
add() { NAMES+=("$1"); shift; CMDS+=("$(printf '%q ' "$@")"); }
add env "$PY" -c "import torch, inpaint_utils; from inpaint_utils.report import hardware; print(torch.__version__, torch.version.cuda, hardware()); import sys; sys.exit(not torch.cuda.is_available())"
add pytest-gpu "$PY" -m pytest -q -p no:cacheprovider -m gpu tests
add nb-02 "${NBRUN[@]}" notebooks/02_context_encoder.ipynb -p NUM_STEPS="$STEPS" -p NUM_EVAL_IMAGES=16 -p RUN_NAME=02_ce_gpu_check
add nb-03 "${NBRUN[@]}" notebooks/03_cascade_ce_nsd.ipynb -p STEPS_CENTER="$STEPS" -p STEPS_BLOCKS="$STEPS" -p NSD_K=8 -p NSD_N=8 -p NUM_EVAL_IMAGES=16 -p PLAIN_CE_RUN=02_ce_gpu_check
add nb-04 "${NBRUN[@]}" notebooks/04_glcic.ipynb -p NUM_STEPS="$STEPS" -p T_C=$((STEPS / 2)) -p T_D=$((STEPS / 4)) -p NUM_EVAL_IMAGES=16 -p RUN_NAME=04_glcic_gpu_check
add nb-05 "${NBRUN[@]}" notebooks/05_contextual_attention.ipynb -p NUM_STEPS="$STEPS" -p NUM_EVAL_IMAGES=16 -p RUN_NAME=05_ca_gpu_check
add bench-ce "$PY" benchmarks/bench_context_encoder.py --device cuda --repeat 3 --train-steps 3 --k 50 --n 20
add bench-ca "$PY" benchmarks/bench_contextual_attention.py --device cuda --repeat 5
add bench-train "$PY" benchmarks/bench_training.py --device cuda --profile gpu --steps 10 --warmup 2
add train-nproc1 "$PY" -m inpaint_utils.cli train ce --data "$OUT/train-images" --profile gpu --nproc 1 --steps "$STEPS" --run-name ce_gpu_check

if [[ $DRY_RUN -eq 1 ]]; then
    echo "gpu check -> $OUT (summary.md, summary.json, logs/); ${#NAMES[@]} steps, ${STEP_TIMEOUT} s each at most:"
    for i in "${!NAMES[@]}"; do printf '%-13s %s\n' "${NAMES[$i]}" "${CMDS[$i]}"; done
    exit 0
fi

"$PY" -c "import inpaint_utils" 2>/dev/null || {
    echo "gpu_check.sh: $PY cannot import inpaint_utils; install the project (pip install -e '.[all]')" >&2; exit 2; }
if [[ $ALLOW_CPU -eq 0 ]] && ! "$PY" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "gpu_check.sh: no CUDA GPU visible to $PY (pass --allow-cpu to try the script on a CPU)" >&2
    exit 2
fi

mkdir -p "$OUT/logs" "$OUT/train-images"
# `inpaint train` needs a folder of images: the first course images the notebooks would use, copied as PNGs.
"$PY" - "$OUT/train-images" <<'PYEOF'
import sys
from pathlib import Path

from PIL import Image

from inpaint_utils import data

out = Path(sys.argv[1])
source = data.find_source(collection="faces_small")
dataset = source.dataset(split="train", size=128)
for i in range(min(64, len(dataset))):
    Image.fromarray((dataset[i].permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(out / f"{i:03d}.png")
PYEOF

export INPAINT_RUNS="${INPAINT_RUNS:-$OUT/runs}" INPAINT_FIGURES="${INPAINT_FIGURES:-$OUT/figures}"
TSV="$OUT/summary.tsv"
: > "$TSV"
failed=0
for i in "${!NAMES[@]}"; do
    name="${NAMES[$i]}"
    echo "=== $name: ${CMDS[$i]}"
    start=$(date +%s.%N)
    if timeout --kill-after 10 "$STEP_TIMEOUT" bash -c "${CMDS[$i]}" > "$OUT/logs/$name.log" 2>&1; then
        status=passed
    else
        rc=$?; failed=1
        if [[ $rc -eq 124 || $rc -eq 137 ]]; then status="timed out"; else status="failed ($rc)"; fi
    fi
    seconds=$(awk -v a="$start" -v b="$(date +%s.%N)" 'BEGIN { printf "%.1f", b - a }')
    tail -n 3 "$OUT/logs/$name.log"
    printf '%s\t%s\t%s\n' "$name" "$status" "$seconds" >> "$TSV"
done

"$PY" - "$TSV" "$OUT" "$STEPS" <<'PYEOF'
import json, subprocess, sys
from datetime import datetime, timezone
from pathlib import Path

from inpaint_utils.report import hardware

tsv, out, steps = Path(sys.argv[1]), Path(sys.argv[2]), int(sys.argv[3])
rows = [dict(zip(("step", "status", "seconds"), line.split("\t"))) for line in tsv.read_text().splitlines() if line]
for row in rows:
    row["seconds"] = float(row["seconds"])
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
summary = {"finished": datetime.now(timezone.utc).isoformat(timespec="seconds"), "hardware": hardware(),
           "commit": commit or "unknown", "training_steps": steps, "total_seconds": round(sum(r["seconds"] for r in rows), 1),
           "failed": [r["step"] for r in rows if r["status"] != "passed"], "steps": rows}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
lines = [f"# GPU check ({steps} training steps per run)", "", f"{summary['finished']}, commit {summary['commit']}, "
         f"{summary['hardware']}", "", "| step | status | wall time (s) |", "|---|---|---|"]
lines += [f"| {r['step']} | {r['status']} | {r['seconds']:.1f} |" for r in rows]
lines += [f"| **total** | {'all passed' if not summary['failed'] else 'FAILED: ' + ', '.join(summary['failed'])} "
          f"| {summary['total_seconds']:.1f} |", "", "Each step's output (benchmark tables, images/s) is in logs/.", ""]
(out / "summary.md").write_text("\n".join(lines))
print("\n".join(lines))
PYEOF
rm -f "$TSV"
exit $failed
