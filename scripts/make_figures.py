#!/usr/bin/env python
"""The README's pictures of the committed results, saved under figures/ (inpaint_utils.gallery):

    python scripts/make_figures.py                 # every figure the committed results and the runs here allow
    python scripts/make_figures.py --only area     # results_area_bins.png: notebook 08's per-area-bin plot
    python scripts/make_figures.py --only curves   # results_training_curves.png: needs runs/<run>/metrics.csv
    python scripts/make_figures.py --only grid     # results_grid.png: needs the checkpoints under runs/

Each figure is made from results/*.json and what those files name; one that cannot be made is reported with the
reason (exit status 1 when none could be made).
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path

from inpaint_utils import gallery


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=list(gallery.FIGURES), help="make only these figures")
    parser.add_argument("--out", type=Path, default=None, help="folder (default: figures/ or $INPAINT_FIGURES)")
    args = parser.parse_args(argv)
    made = gallery.make_figures(args.only, out_dir=args.out)
    return 0 if any(made.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
