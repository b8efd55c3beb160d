#!/usr/bin/env bash
# The cpu profile's runs (issue 14): each learned model of notebooks 02, 04 and 05 trained with
# `inpaint train --profile cpu` (the cascade of 03: notebook 03 run with PROFILE=cpu, which trains its 64 CE and
# its 128 stage, and the plain and block CEs it compares them with) on the 80 % training split of the shared folder's 1000 CelebA faces
# (faces_celeba_small_89x109, at 64 px), then scored with `inpaint evaluate` on the held-out 10 % test
# split with the holes it was trained on, beside Telea and Navier-Stokes on the same images and masks,
# into results/<run>.json (numbers and provenance, no machine paths); then README's results table is
# regenerated from results/. Each training takes at most 20 minutes on a 2-core CPU; weights stay under
# runs/<run>/ (git-ignored). A run that already has its checkpoint is only re-scored.
#
#   scripts/cpu_runs.sh            # all six: the four below, v2 and pconv (about 100 minutes)
#   scripts/cpu_runs.sh glcic      # one: ce | cascade | glcic | deepfill | v2 | pconv
#   scripts/cpu_runs.sh v2-select  # DeepFill v2 at the profile's lr and at v2's 1e-4, scored on the validation split
#   scripts/cpu_runs.sh controls   # GLCIC and DeepFill v1 (no skip connections) scored on LaMa's sets too
#
# Notebook 08's models (issue 15), trained on free-form holes, are scored on LaMa's fixed thin / medium /
# thick evaluation sets (`--mask-kind thick`: 100 masks drawn once from seed 0, binned by hole area) instead:
# `v2` (DeepFill v2, gated convolutions, ~8-14 min) and `pconv` (partial convolutions, ~11 min; its perceptual
# and style losses take the profile's `auto` features: VGG-16's pool1-3 where its ImageNet weights are found or
# downloadable, else SqueezeNet 1.1's, LPIPS's backbone in the shared folder; the checkpoint and the results
# name the one used).
#
# Needs the shared folder ($INPAINT_SHARED, default ../shared/data) with the faces and the LPIPS weights.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PYTHON:-python}
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-1}     # a shared 2-core CPU: one OpenMP thread per run
SHARED=${INPAINT_SHARED:-../shared/data}
DATA=$(cd "$SHARED/faces_celeba_small_89x109" && pwd)
mkdir -p results

score() {  # fill METHOD, run name [, results name [, mask kind]]: the test split beside Telea and NS, by default
           # with the holes it was trained on
    "$PY" -m inpaint_utils.cli evaluate --method "$1" --checkpoint "$2" --collection faces_small --split test \
        --mask-kind "${4:-training}" --num-images 100 --baselines --lpips --json "results/${3:-$2}.json"
}

train_cpu() {  # train METHOD, run name: the cpu profile on the training split
    "$PY" -m inpaint_utils.cli train "$1" --data "$DATA" --split train --profile cpu --run-name "$2"
}

cascade() {  # notebook 03 in the cpu profile; the centre cascade (64 CE + 128 stage) is the model scored
    local run=(papermill notebooks/03_cascade_ce_nsd.ipynb runs/03_cascade_ce_nsd_cpu.ipynb -p PROFILE cpu
               -p COLLECTION faces_small --cwd notebooks)
    mkdir -p runs
    # the kernel imports this checkout's package, not whichever one the interpreter has installed
    PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" "$PY" -m "${run[@]}"
    "$PY" -c "import sys; from inpaint_utils import cli, config; r = config.runs_dir()
cli.write_train_record(r / '03_cascade_center_cpu', sys.argv[1], stages=[r / '03_ce64_center_cpu', r / '03_cascade_center_cpu'],
                       method='cascade', profile='cpu', split='train (seed 0)', data='\$INPAINT_SHARED, collection faces_small',
                       settings=config.settings('03_cascade_ce_nsd', 'cpu'))" \
        "${run[*]}"
    score cascade 03_cascade_center_cpu
}

one() {  # train METHOD, fill METHOD, run name
    train_cpu "$1" "$3"
    score "$2" "$3"
}

free_form() {  # train METHOD, fill METHOD, run name: scored on each LaMa set, results/<run>_<kind>.json
    train_cpu "$1" "$3"
    for kind in thin medium thick; do
        score "$2" "$3" "$3_$kind" "$kind"
    done
}

v2_select() {  # DeepFill v2's learning rate chosen on the validation split (issue 24): the profile's run (08_v2_cpu)
               # and one at v2's own 1e-4 (08_v2_cpu_lr1e-4), the same steps, each scored on the 10 % validation split
               # (never the test split) on LaMa's three sets into results/selection/ (not README's table)
    mkdir -p results/selection
    [ -d runs/08_v2_cpu ] || train_cpu deepfill_v2 08_v2_cpu
    "$PY" -m inpaint_utils.cli train deepfill_v2 --data "$DATA" --split train --profile cpu --run-name 08_v2_cpu_lr1e-4 \
        --lr 1e-4
    for run in 08_v2_cpu 08_v2_cpu_lr1e-4; do
        for kind in thin medium thick; do
            "$PY" -m inpaint_utils.cli evaluate --method deepfill_v2 --checkpoint "$run" --collection faces_small \
                --split val --mask-kind "$kind" --num-images 100 --baselines --lpips \
                --json "results/selection/${run}_val_$kind.json"
        done
    done
}

controls() {  # the skip-connection control (issue 24): the cpu runs of GLCIC (the network alone) and DeepFill v1,
              # trained on rectangles, scored on LaMa's three sets beside PConv (skips) and v2 (no skips)
    [ -d runs/04_glcic_cpu ] || one glcic glcic_poisson 04_glcic_cpu
    [ -d runs/05_ca_cpu_hole ] || one deepfill deepfill 05_ca_cpu_hole
    for kind in thin medium thick; do
        score glcic 04_glcic_cpu "08_glcic_cpu_$kind" "$kind"
        score deepfill 05_ca_cpu_hole "08_ca_cpu_$kind" "$kind"
    done
}

glcic() {  # GLCIC as the paper runs it (the network, then fast marching + Poisson blending), and the network alone
    one glcic glcic_poisson 04_glcic_cpu
    score glcic 04_glcic_cpu 04_glcic_cpu_network
}

case "${1:-all}" in
    ce) one ce ce 02_ce_cpu ;;
    cascade) cascade ;;
    glcic) glcic ;;
    deepfill) one deepfill deepfill 05_ca_cpu_hole ;;
    v2) free_form deepfill_v2 deepfill_v2 08_v2_cpu ;;
    v2-select) v2_select ;;
    controls) controls ;;
    pconv) free_form pconv pconv 08_pconv_cpu ;;
    all) one ce ce 02_ce_cpu; cascade; glcic; one deepfill deepfill 05_ca_cpu_hole
         free_form deepfill_v2 deepfill_v2 08_v2_cpu; free_form pconv pconv 08_pconv_cpu; controls ;;
    *) echo "usage: scripts/cpu_runs.sh [all|ce|cascade|glcic|deepfill|v2|v2-select|pconv|controls]" >&2; exit 2 ;;
esac
"$PY" -c "from inpaint_utils import report; report.update_readme()"
