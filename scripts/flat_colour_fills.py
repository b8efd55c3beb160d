"""What each cpu checkpoint paints into thin holes of a flat image (issue 24, item 3), next to Telea.

A model that is fed its input correctly fills a hole in a flat image with that image's colour. For every
checkpoint of a ``cpu``-profile run under ``runs/`` (``$INPAINT_RUNS``; a folder whose name holds ``cpu`` and
that has a checkpoint), this prints the mean colour it paints into the first four of LaMa's thin masks at 64 px
(``masks.lama_mask("thin", 64, seed=...)``, the masks the issue names) on two flat images, blue (0.2, 0.5, 0.8)
and near-black (0.05, 0.05, 0.05), with the mean absolute error in the hole, beside Telea's on the same holes.
A centre-only model (the Context Encoder, a centre cascade) refuses these masks: it is scored on its own centre
hole instead, and the line says so. Where no checkpoint is found it says so and exits 0.

    python scripts/flat_colour_fills.py            # every cpu checkpoint under runs/
    python scripts/flat_colour_fills.py RUN ...    # these run folders or names only
"""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

import torch

from inpaint_utils import config, inference, masks
from inpaint_utils.checkpoint import CheckpointError, checkpoint_info, latest_checkpoint
from inpaint_utils.models import LEARNED

COLOURS = {"blue": (0.2, 0.5, 0.8), "near-black": (0.05, 0.05, 0.05)}
SIZE, NUM_MASKS, MASK_SEED = 64, 4, 0


def thin_masks() -> torch.Tensor:
    """The first four masks of LaMa's thin set at 64 px (seed 0): ``(4, 1, 64, 64)``, 1 = hole."""
    return masks.lama_mask("thin", SIZE, batch=NUM_MASKS, seed=MASK_SEED)


def flat(colour: tuple[float, float, float], n: int) -> torch.Tensor:
    return torch.tensor(colour, dtype=torch.float32).view(1, 3, 1, 1).expand(n, 3, SIZE, SIZE).clone()


def fill_report(fill, mask: torch.Tensor) -> dict[str, dict[str, float | tuple]]:
    """``{colour name: {"painted": mean RGB in the hole, "error": mean |fill - colour| in the hole}}``."""
    out = {}
    for name, colour in COLOURS.items():
        image = flat(colour, mask.shape[0])
        with torch.no_grad():
            completed = fill(image, mask)
        hole = mask.expand_as(completed).bool()
        painted = tuple(round(float(completed[:, c][hole[:, c]].mean()), 3) for c in range(3))
        error = float((completed - image).abs()[hole].mean())
        out[name] = {"painted": painted, "error": error}
    return out


def cpu_checkpoints(names: list[str]) -> list[Path]:
    """The run folders to read: ``names`` (folders, or names under runs/), else every folder of runs/ whose
    name holds ``cpu`` and that has an intact checkpoint."""
    root = config.runs_dir()
    if names:
        return [Path(n) if Path(n).is_dir() else root / n for n in names]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return sorted(d for d in root.iterdir() if d.is_dir() and "cpu" in d.name and latest_checkpoint(d) is not None)


def method_of(run: Path) -> str:
    """The ``inpaint fill`` method of a run's checkpoint (its model name, :data:`LEARNED` read backwards)."""
    model = checkpoint_info(latest_checkpoint(run))["model_name"]
    for method, name in LEARNED.items():
        if name == model and method != "glcic_poisson":
            return method
    raise ValueError(f"{run}: checkpoint of an unknown model {model!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("runs", nargs="*", help="run folders or names under runs/ (default: every cpu run)")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    runs = cpu_checkpoints(args.runs)
    missing = [r for r in runs if not r.is_dir() or latest_checkpoint(r) is None]
    if missing:
        print(f"no checkpoint in {', '.join(map(str, missing))}", file=sys.stderr)
        return 2
    mask = thin_masks()
    print(f"flat images {', '.join(f'{k} {v}' for k, v in COLOURS.items())}; the first {NUM_MASKS} masks of LaMa's "
          f"thin set at {SIZE} px (seed {MASK_SEED}, mean hole {float(mask.mean()):.3f}); mean colour painted in "
          f"the hole, mean |error| there")
    rows = [("Telea", "thin masks", fill_report(inference.load_inpainter("telea"), mask))]
    if not runs:
        print(f"no cpu checkpoint under {config.runs_dir()} (train one with scripts/cpu_runs.sh); Telea alone:")
    not_loaded = []
    for run in runs:
        try:
            method = method_of(run)
            fill = inference.load_inpainter(method, run, device="cpu")
        except (ValueError, OSError, CheckpointError) as err:     # another code version's checkpoint, a damaged one
            not_loaded.append(f"{run.name}: {str(err).splitlines()[0][:160]}")
            continue
        try:
            rows.append((f"{method} ({run.name})", "thin masks", fill_report(fill, mask)))
        except ValueError:                         # a centre-only model: its own centre hole, said so
            own, _ = inference.training_masks(fill, NUM_MASKS, torch.Generator().manual_seed(0))
            own = masks.resize_mask(own, SIZE)
            rows.append((f"{method} ({run.name})", "its centre hole: it refuses the thin masks", fill_report(fill, own)))
    for name, where, found in rows:
        parts = "; ".join(f"{c}: painted {v['painted']}, |error| {v['error']:.3f}" for c, v in found.items())
        print(f"  {name:32s} [{where}] {parts}")
    for line in not_loaded:
        print(f"  not loaded: {line}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
