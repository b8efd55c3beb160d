"""Pictures of the committed results (README, ``figures/``): what each method does to a face, how each run
trained, and how the scores of notebook 08's free-form models change with the hole's area.

Every figure is made from the result files committed under ``results/`` (:func:`inpaint_utils.report.committed_results`)
and from what those files name, never from typed numbers:

* :func:`area_bins_figure`: PSNR and LPIPS in the hole per 10 % hole-area bin on LaMa's thin / medium / thick sets,
  one line per method, read from each result's ``by_area`` rows (``inpaint evaluate --mask-kind thin|medium|thick``
  writes them); the number of images in each bin is printed under each panel.
* :func:`curves_figure`: the training curves of each run a result names (``training.run_name``), read from the run's
  ``metrics.csv`` (:func:`inpaint_utils.train.read_metrics`); a run whose folder is not here is listed, not drawn.
* :func:`grid_figure`: a few held-out test images with one centre hole: the masked input, Telea, each learned model
  whose checkpoint (the result's ``checkpoint``) is here, and the ground truth. It shows images of the test split,
  so it is made locally and not committed where those images may not be redistributed (``figures/README.md``).

``scripts/make_figures.py`` (``python scripts/make_figures.py [--only area curves grid]``) makes each one it can
(:func:`make_figures`) and says, for each one it cannot, why.
"""
from __future__ import annotations

import math

import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import torch

from . import config, viz
from .models import LEARNED
from .report import committed_results

__all__ = ["LAMA_SETS", "FIGURES", "area_bin_rows", "area_bins_figure", "training_runs", "curves_figure",
           "learned_checkpoints", "grid_figure", "make_figures"]

#: LaMa's evaluation sets, in the order the figure shows them.
LAMA_SETS = ("thin", "medium", "thick")
#: figure -> file stem under ``figures/``.
FIGURES = {"area": "results_area_bins", "curves": "results_training_curves", "grid": "results_grid"}
_METRIC_LABELS = {"psnr_hole": "PSNR in the hole (dB)", "lpips_hole": "LPIPS in the hole (squeeze)",
                  "ssim_hole": "SSIM in the hole", "l1_pct_hole": "L1 in the hole (% of [0, 1])"}
_NOT_LOSSES = ("step", "time_s")


def _records(records: Mapping[str, Mapping[str, Any]] | None) -> dict[str, Mapping[str, Any]]:
    return dict(committed_results() if records is None else records)


def _same_rows(a: Sequence[Mapping[str, Any]], b: Sequence[Mapping[str, Any]], rel: float = 1e-6) -> bool:
    """Whether two results' per-bin rows of one baseline are the same scores: the same bins and counts, every
    number equal to ``rel`` (two scoring runs of the same images and masks differ by LPIPS' float rounding, ~1e-9)."""
    if len(a) != len(b):
        return False
    for ra, rb in zip(a, b):
        if ra.keys() != rb.keys():
            return False
        for key, va in ra.items():
            vb = rb[key]
            if isinstance(va, float) and isinstance(vb, float):
                if not math.isclose(va, vb, rel_tol=rel, abs_tol=1e-12):
                    return False
            elif va != vb:
                return False
    return True


def area_bin_rows(records: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> dict[str, dict[str, list[Mapping[str, Any]]]]:
    """``{LaMa set: {method: its by_area rows, in bin order}}`` from the results with ``by_area`` rows on a LaMa
    set. The baselines scored beside several learned models on the same set appear once; should two results
    score a baseline on other images or masks (other rows), the second is labelled ``"method (result)"``."""
    out: dict[str, dict[str, list[Mapping[str, Any]]]] = {}
    for name, record in _records(records).items():
        kind, rows = record.get("mask_kind"), record.get("by_area")
        if kind not in LAMA_SETS or not rows:
            continue
        per_method: dict[str, list[Mapping[str, Any]]] = {}
        for row in rows:
            per_method.setdefault(row["method"], []).append(row)
        panel = out.setdefault(kind, {})
        for method, method_rows in per_method.items():
            method_rows = sorted(method_rows, key=lambda r: r["area_lo"])
            label = method
            if label in panel and not _same_rows(panel[label], method_rows):
                label = f"{method} ({name})"
            panel.setdefault(label, method_rows)
    return {kind: out[kind] for kind in LAMA_SETS if kind in out}


def area_bins_figure(records: Mapping[str, Mapping[str, Any]] | None = None,
                     metrics: Sequence[str] = ("psnr_hole", "lpips_hole")):
    """PSNR and LPIPS in the hole (``metrics``) against the hole's area, one panel per LaMa set and metric, one
    line per method (:func:`area_bin_rows`), the images per bin under each panel. Notebook 08's per-area plot
    for the committed runs."""
    panels = area_bin_rows(records)
    if not panels:
        raise ValueError("no result with per-area rows on a LaMa set (thin / medium / thick): score a model with "
                         "`inpaint evaluate --mask-kind thick --json results/NAME.json` (scripts/cpu_runs.sh v2)")
    metrics = list(metrics)
    unknown = [m for m in metrics if m not in _METRIC_LABELS]
    if not metrics or unknown:
        raise ValueError(f"metrics must be some of {list(_METRIC_LABELS)}, got {list(metrics)}")
    plt = viz.pyplot()
    kinds = list(panels)
    methods = list(dict.fromkeys(m for kind in kinds for m in panels[kind]))
    colours = {m: f"C{i}" for i, m in enumerate(methods)}
    fig, axes = plt.subplots(len(metrics), len(kinds), figsize=(3.4 * len(kinds), 2.6 * len(metrics) + 0.6),
                             squeeze=False)
    for col, kind in enumerate(kinds):
        bins = None
        for method, rows in panels[kind].items():
            x = [100 * (r["area_lo"] + r["area_hi"]) / 2 for r in rows]
            for row_i, metric in enumerate(metrics):
                pts = [(xi, r[metric]) for xi, r in zip(x, rows) if r.get(metric) is not None]
                if pts:
                    axes[row_i][col].plot(*zip(*pts), marker="o", ms=3, lw=1.4, color=colours[method], label=method)
            bins = bins or rows
        counts = ", ".join(str(r["n"]) for r in bins)
        axes[0][col].set_title(f"{kind} set", fontsize=10)
        axes[-1][col].set_xlabel(f"hole area (%, 10 % bins)\nimages per bin: {counts}", fontsize=7)
        for row_i, metric in enumerate(metrics):
            ax = axes[row_i][col]
            ax.grid(alpha=0.3)
            ax.tick_params(labelsize=7)
            if col == 0:
                ax.set_ylabel(_METRIC_LABELS[metric], fontsize=8)
    handles, labels = axes[0][0].get_legend_handles_labels()
    seen = dict(zip(labels, handles))
    for ax in axes.flat:
        for h, lab in zip(*ax.get_legend_handles_labels()):
            seen.setdefault(lab, h)
    fig.legend(list(seen.values()), list(seen), loc="upper center", ncol=min(len(seen), 6), fontsize=8,
               frameon=False, bbox_to_anchor=(0.5, 0.95))
    sources = [n for n, r in _records(records).items() if r.get("mask_kind") in LAMA_SETS and r.get("by_area")]
    fig.suptitle(f"LaMa's free-form evaluation sets: scores by hole area (results/{', '.join(sources)})", fontsize=9,
                 y=0.995)
    fig.tight_layout(rect=(0, 0, 1, 0.9))
    return fig


def training_runs(records: Mapping[str, Mapping[str, Any]] | None = None
                  ) -> tuple[dict[str, Path], list[dict[str, str]]]:
    """``({label: run folder}, not_here)``: the training run of each committed result (``training.run_name``
    under :func:`config.runs_dir`), once per run, labelled ``"method (run)"``; a run whose ``metrics.csv`` is not
    here is a row of ``not_here`` with its ``run``, ``reason`` and the training ``command`` that makes it."""
    found: dict[str, Path] = {}
    missing: list[dict[str, str]] = []
    seen: set[str] = set()
    for record in _records(records).values():
        training = record.get("training") or {}
        run = training.get("run_name")
        if not run or run in seen:
            continue
        seen.add(run)
        folder = config.runs_dir() / run
        if (folder / "metrics.csv").is_file():
            found[f"{training.get('method') or record.get('method')} ({run})"] = folder
        else:
            missing.append({"run": run, "reason": f"no {folder / 'metrics.csv'}",
                            "command": str(training.get("command") or "")})
    return found, missing


def curves_figure(runs: Mapping[str, str | os.PathLike], cols: int = 3):
    """One panel per run of ``runs`` (``{label: run folder}``, e.g. :func:`training_runs`'s first item): every
    loss the run logged in ``metrics.csv`` against the step, on a log scale where all values are positive."""
    from .train import read_metrics

    if not runs:
        raise ValueError("no run with a metrics.csv to plot: the runs of results/ train into runs/<run>/ "
                         "(scripts/cpu_runs.sh)")
    if isinstance(cols, bool) or not isinstance(cols, int) or cols < 1:
        raise ValueError(f"cols must be a positive int, got {cols!r}")
    plt = viz.pyplot()
    n_cols = min(cols, len(runs))
    n_rows = -(-len(runs) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(3.6 * n_cols, 2.6 * n_rows), squeeze=False)
    for ax in axes.flat[len(runs):]:
        ax.axis("off")
    for ax, (label, folder) in zip(axes.flat, runs.items()):
        rows = read_metrics(folder)
        keys = list(dict.fromkeys(k for r in rows for k in r if k not in _NOT_LOSSES and not k.startswith("lr")))
        if not keys:
            raise ValueError(f"{Path(folder) / 'metrics.csv'} holds no loss column (only {sorted(rows[0]) if rows else []})")
        values = []
        for key in keys:
            pts = [(r["step"], r[key]) for r in rows if key in r and "step" in r]
            if pts:
                ax.plot(*zip(*pts), lw=1.1, label=key)
                values += [v for _, v in pts]
        if values and min(values) > 0:
            ax.set_yscale("log")
        ax.set_title(label, fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=6)
    fig.tight_layout()
    return fig


def _checkpoint_path(checkpoint: str) -> Path:
    """A result's ``checkpoint`` (``runs/<run>/checkpoints/step_*``, relative to the checkout) where it is here:
    under :func:`config.runs_dir` (which ``INPAINT_RUNS`` may move)."""
    path = Path(checkpoint)
    if path.is_absolute():
        return path
    parts = path.parts
    if parts and parts[0] == "runs":
        return config.runs_dir().joinpath(*parts[1:])
    return config.project_root() / path


def learned_checkpoints(records: Mapping[str, Mapping[str, Any]] | None = None
                        ) -> tuple[dict[str, tuple[str, Path]], list[dict[str, str]]]:
    """``({label: (method, checkpoint folder)}, not_here)`` for the learned model of each committed result, once
    per method and checkpoint; one whose checkpoint is not here is a row of ``not_here`` (``method``, ``reason``,
    the training ``command``)."""
    found: dict[str, tuple[str, Path]] = {}
    missing: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for record in _records(records).values():
        method, checkpoint = record.get("method"), record.get("checkpoint")
        if method not in LEARNED or not checkpoint or (method, checkpoint) in seen:
            continue
        seen.add((method, checkpoint))
        path = _checkpoint_path(checkpoint)
        if path.is_dir():
            found[method if method not in found else f"{method} ({path.parent.parent.name})"] = (method, path)
        else:
            command = (record.get("training") or {}).get("command") or ""
            missing.append({"method": method, "reason": f"no checkpoint {checkpoint}", "command": str(command)})
    return found, missing


def _collection(records: Mapping[str, Mapping[str, Any]]) -> str:
    for record in records.values():
        match = re.search(r"--collection (\S+)", str(record.get("command") or ""))
        if match:
            return match.group(1)
    return "faces_small"


def grid_figure(records: Mapping[str, Mapping[str, Any]] | None = None, num_images: int = 4,
                device: str | torch.device = "cpu", seed: int = 0):
    """``(figure, not_here)``: ``num_images`` held-out test images (the split the committed results scored, at
    their size) with the centre hole of half the side (the Context Encoder's; the other models were trained on
    their own holes, the table says how they score on those), as columns: the masked input, Telea, each learned
    model of :func:`learned_checkpoints` that is here, the ground truth. ``not_here`` lists the models left out."""
    from . import data
    from .inference import load_inpainter
    from .masks import center_mask

    records = _records(records)
    if isinstance(num_images, bool) or not isinstance(num_images, int) or num_images < 1:
        raise ValueError(f"num_images must be a positive int, got {num_images!r}")
    models, missing = learned_checkpoints(records)
    if not models:
        raise FileNotFoundError("no checkpoint of the committed results is here (runs/ holds the weights, not git): "
                                + "; ".join(f"{m['method']}: {m['command']}" for m in missing))
    sizes = {int(r["image_size"]) for r in records.values() if r.get("image_size")}
    size = min(sizes) if sizes else 64
    source = data.find_source(collection=_collection(records), verbose=False)
    test = source.dataset(size=size, split="test", seed=seed, max_images=num_images)
    images = data.first_images(test, min(num_images, len(test)))
    mask = center_mask(size, size // 2, batch=images.shape[0])
    outputs: dict[str, torch.Tensor] = {"telea": load_inpainter("telea")(images, mask)}
    for label, (method, path) in models.items():
        outputs[label] = load_inpainter(method, path, device=device)(images, mask)
    fig = viz.comparison_grid(viz.overlay_mask(images, mask), outputs, images, max_rows=num_images)
    return fig, missing


def make_figures(only: Sequence[str] | None = None, records: Mapping[str, Mapping[str, Any]] | None = None,
                 out_dir: str | os.PathLike | None = None, log=print) -> dict[str, Path | None]:
    """Make each figure of :data:`FIGURES` (``only`` some of them) that the committed results and the runs here
    allow, saved as ``<out_dir or figures/>/<stem>.png``; ``{figure: path, or None where it could not be made}``,
    and one ``log`` line for each, saying where it went or why not."""
    records = _records(records)
    only = list(FIGURES) if only is None else list(only)
    unknown = [k for k in only if k not in FIGURES]
    if unknown:
        raise ValueError(f"unknown figure {unknown}; choose from {list(FIGURES)}")
    out = Path(out_dir) if out_dir is not None else config.figures_dir()
    out.mkdir(parents=True, exist_ok=True)
    made: dict[str, Path | None] = {}
    plt = viz.pyplot()
    for key in only:
        try:
            if key == "area":
                fig = area_bins_figure(records)
                left_out: list[dict[str, str]] = []
            elif key == "curves":
                runs, left_out = training_runs(records)
                fig = curves_figure(runs)
            else:
                fig, left_out = grid_figure(records)
        except (ValueError, FileNotFoundError) as err:
            made[key] = None
            log(f"{FIGURES[key]}: not made: {err}")
            continue
        path = viz.save_png(fig, out / f"{FIGURES[key]}.png")
        plt.close(fig)
        made[key] = path
        log(f"{FIGURES[key]}: {path}" + "".join(f"; left out {m.get('method') or m.get('run')}: {m['reason']}"
                                                 for m in left_out))
    return made
