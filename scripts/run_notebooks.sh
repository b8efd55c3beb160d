#!/usr/bin/env bash
# Run every course notebook end to end in one profile, then nbval; the weekly GPU workflow
# (.github/workflows/gpu-notebooks.yml) calls exactly this, and anyone can run it on a GPU machine:
#
#   scripts/run_notebooks.sh --profile gpu            # ~1 hour on one H200; see --help
#
# Each notebook is executed with papermill (python -m inpaint_utils.nbrun run) into OUT (runs/<profile>),
# its wall time and pass/fail go to OUT/summary.md and OUT/summary.json, its log to OUT/logs/. A failing
# notebook does not stop the others; the script exits non-zero at the end if any notebook (or nbval) failed.
# nbval then re-executes the committed notebooks (smoke profile, now on this machine) and compares the
# outputs of their "# NBVAL_CHECK_OUTPUT" cells. Figures go to figures/, results to runs/results/
# ($INPAINT_FIGURES, $INPAINT_RUNS move them); nbval writes only into a temporary folder.
set -euo pipefail

usage() {
    cat <<'USAGE'
usage: scripts/run_notebooks.sh [--profile smoke|cpu|gpu|full] [--out DIR] [--python PY] [--timeout S]
                                [--no-nbval] [--allow-cpu] [--dry-run] [-h|--help] [NOTEBOOK ...]

  --profile P    profile of inpaint_utils.config.PROFILES to run (default: gpu)
  --out DIR      executed notebooks, logs and summary.{md,json} (default: runs/<profile>)
  --python PY    run with this Python (it must have the project installed: pip install -e ".[all]");
                 default: create / update .venv with `make install CONSTRAINTS=` (pip's torch, a CUDA
                 build on Linux) and use .venv/bin/python
  --timeout S    seconds one notebook may take (default: 1800)
  --no-nbval     skip the nbval pass
  --allow-cpu    run the gpu / full profile even when no CUDA GPU is visible (hours on a CPU)
  --dry-run      list the notebooks and print the commands, run nothing
  NOTEBOOK ...   notebooks to run (default: notebooks/*.ipynb)

Environment read by the notebooks: INPAINT_DATA (downloaded datasets), INPAINT_SHARED (offline images),
INPAINT_SD_MODEL / INPAINT_DDPM_MODEL / HF_HOME (diffusion weights), INPAINT_FIGURES, INPAINT_RUNS.
USAGE
}

PROFILE=gpu
OUT=""
PY=""
TIMEOUT=1800
RUN_NBVAL=1
ALLOW_CPU=0
DRY_RUN=0
NOTEBOOKS=()
while [[ $# -gt 0 ]]; do
    case "$1" in
        --profile) PROFILE="${2:?--profile needs a value}"; shift 2 ;;
        --profile=*) PROFILE="${1#*=}"; shift ;;
        --out) OUT="${2:?--out needs a folder}"; shift 2 ;;
        --out=*) OUT="${1#*=}"; shift ;;
        --python) PY="${2:?--python needs an interpreter}"; shift 2 ;;
        --python=*) PY="${1#*=}"; shift ;;
        --timeout) TIMEOUT="${2:?--timeout needs seconds}"; shift 2 ;;
        --timeout=*) TIMEOUT="${1#*=}"; shift ;;
        --no-nbval) RUN_NBVAL=0; shift ;;
        --allow-cpu) ALLOW_CPU=1; shift ;;
        --dry-run) DRY_RUN=1; shift ;;
        -h|--help) usage; exit 0 ;;
        -*) echo "run_notebooks.sh: unknown option $1 (see --help)" >&2; exit 2 ;;
        *) NOTEBOOKS+=("$1"); shift ;;
    esac
done
case "$PROFILE" in
    smoke|gpu|full) ;;
    *) echo "run_notebooks.sh: --profile must be smoke, gpu or full, got '$PROFILE'" >&2; exit 2 ;;
esac
[[ "$TIMEOUT" =~ ^[0-9]+$ ]] || { echo "run_notebooks.sh: --timeout must be whole seconds, got '$TIMEOUT'" >&2; exit 2; }

cd "$(dirname "${BASH_SOURCE[0]}")/.."
OUT="${OUT:-runs/$PROFILE}"
if [[ ${#NOTEBOOKS[@]} -eq 0 ]]; then
    mapfile -t NOTEBOOKS < <(ls notebooks/*.ipynb | sort)
fi
for nb in "${NOTEBOOKS[@]}"; do
    [[ -f "$nb" ]] || { echo "run_notebooks.sh: no notebook $nb" >&2; exit 2; }
done

PYTHON_CMD="${PY:-.venv/bin/python}"
INSTALL=(make install "CONSTRAINTS=")
NBRUN=("$PYTHON_CMD" -m inpaint_utils.nbrun run --profile "$PROFILE" --out "$OUT" --timeout "$TIMEOUT")
NBVAL=("$PYTHON_CMD" -m pytest notebooks -p no:cacheprovider -q)
show() { printf ' %q' "$@"; printf '\n'; }

if [[ $DRY_RUN -eq 1 ]]; then
    echo "profile $PROFILE -> $OUT (summary.md, summary.json, logs/); ${#NOTEBOOKS[@]} notebook(s):"
    [[ -n "$PY" ]] || show "${INSTALL[@]}"
    for nb in "${NOTEBOOKS[@]}"; do show "${NBRUN[@]}" "$nb"; done
    if [[ $RUN_NBVAL -eq 1 ]]; then show "${NBVAL[@]}"; fi
    exit 0
fi

if [[ -z "$PY" ]]; then
    "${INSTALL[@]}"
fi
"$PYTHON_CMD" -c "import inpaint_utils" 2>/dev/null || {
    echo "run_notebooks.sh: $PYTHON_CMD cannot import inpaint_utils; install the project (pip install -e '.[all]')" >&2
    exit 2; }
if [[ "$PROFILE" != smoke && $ALLOW_CPU -eq 0 ]] && ! "$PYTHON_CMD" -c "import torch, sys; sys.exit(not torch.cuda.is_available())"; then
    echo "run_notebooks.sh: no CUDA GPU visible to $PYTHON_CMD; the $PROFILE profile would take hours on a CPU" \
         "(pass --allow-cpu to run it anyway)" >&2
    exit 2
fi

mkdir -p "$OUT/logs"
RESULTS="$OUT/summary.tsv"
: > "$RESULTS"
failed=0
for nb in "${NOTEBOOKS[@]}"; do
    name="$(basename "$nb" .ipynb)"
    start=$(date +%s)
    echo "=== $name (profile $PROFILE)"
    if "${NBRUN[@]}" "$nb" 2>&1 | tee "$OUT/logs/$name.log"; then status=passed; else status=failed; failed=1; fi
    printf '%s\t%s\t%s\n' "$name" "$status" "$(( $(date +%s) - start ))" >> "$RESULTS"
done

if [[ $RUN_NBVAL -eq 1 ]]; then
    start=$(date +%s)
    scratch="$(mktemp -d)"
    trap 'rm -rf "$scratch"' EXIT
    echo "=== nbval (the committed notebooks, smoke profile)"
    if INPAINT_FIGURES="$scratch/figures" INPAINT_RUNS="$scratch/runs" "${NBVAL[@]}" 2>&1 \
            | tee "$OUT/logs/nbval.log"; then status=passed; else status=failed; failed=1; fi
    printf '%s\t%s\t%s\n' "nbval" "$status" "$(( $(date +%s) - start ))" >> "$RESULTS"
fi

"$PYTHON_CMD" - "$RESULTS" "$OUT" "$PROFILE" <<'PYEOF'
import json, subprocess, sys
from datetime import datetime, timezone
from pathlib import Path

from inpaint_utils.report import hardware

tsv, out, profile = Path(sys.argv[1]), Path(sys.argv[2]), sys.argv[3]
rows = [dict(zip(("notebook", "status", "seconds"), line.split("\t"))) for line in tsv.read_text().splitlines() if line]
for row in rows:
    row["seconds"] = int(row["seconds"])
try:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
except OSError:
    commit = ""
summary = {"profile": profile, "finished": datetime.now(timezone.utc).isoformat(timespec="seconds"),
           "hardware": hardware(), "commit": commit or "unknown", "total_seconds": sum(r["seconds"] for r in rows),
           "failed": [r["notebook"] for r in rows if r["status"] != "passed"], "notebooks": rows}
(out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
lines = [f"# Notebooks, profile `{profile}`", "",
         f"{summary['finished']}, commit {summary['commit']}, {summary['hardware']}", "",
         "| notebook | status | wall time (s) |", "|---|---|---|"]
lines += [f"| {r['notebook']} | {r['status']} | {r['seconds']} |" for r in rows]
lines += [f"| **total** | {'all passed' if not summary['failed'] else 'FAILED: ' + ', '.join(summary['failed'])} "
          f"| {summary['total_seconds']} |", ""]
(out / "summary.md").write_text("\n".join(lines))
print("\n".join(lines))
PYEOF
rm -f "$RESULTS"
exit $failed
