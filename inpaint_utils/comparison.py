"""Notebook 07's comparison: every method on the same held-out images and the same masks, scored by
mask kind and by hole ratio, plus the summaries and the curves built from those rows.

The masks are drawn once per ``(kind, ratio)`` from one seed (:func:`comparison_masks`), so every
method sees exactly the same holes; each method is scored with :func:`inpaint_utils.metrics.compare_methods`
(hole zeroed before the call, composite scored, seed 000 and seed 002 conventions). A method that
cannot fill a mask (a centre Context Encoder asked for a hole outside its window) is recorded in
``skipped`` with its reason instead of stopping the comparison.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping, Sequence

import torch

from .masks import area_ratio, make_mask, max_ratio

__all__ = ["comparison_masks", "compare_on_masks", "summarize", "psnr_by_ratio"]

Method = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]


def comparison_masks(kinds: Sequence[str], ratios: Sequence[float], n: int, size: int,
                     seed: int = 0) -> dict[tuple[str, float], torch.Tensor]:
    """``{(kind, ratio): (n, 1, size, size) masks}``, drawn from one generator seeded with ``seed`` in a
    fixed order (the same call gives the same masks). A ratio above what a kind can reach at this size
    (:func:`inpaint_utils.masks.max_ratio`) is left out of that kind rather than silently clipped."""
    if not kinds or not ratios:
        raise ValueError("kinds and ratios must be non-empty")
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    generator = torch.Generator().manual_seed(seed)
    out: dict[tuple[str, float], torch.Tensor] = {}
    for kind in kinds:
        reach = max_ratio(kind, size)
        for ratio in ratios:
            if ratio > reach:
                continue
            out[kind, float(ratio)] = make_mask(kind, size, ratio, batch=n, generator=generator)
    if not out:
        raise ValueError(f"no (kind, ratio) pair is reachable at size {size}: kinds {list(kinds)}, ratios {list(ratios)}")
    return out


def compare_on_masks(methods: Mapping[str, Method], images: torch.Tensor,
                     mask_sets: Mapping[tuple[str, float], torch.Tensor], lpips_model: Any = False,
                     batch_size: int = 32, progress: bool = True
                     ) -> tuple[list[dict[str, Any]], dict[tuple[str, float], dict[str, torch.Tensor]], list[dict[str, str]]]:
    """Score every method on every mask set. Returns ``(rows, outputs, skipped)``: one row per
    ``(method, kind, ratio)`` with ``kind``, ``ratio`` (asked), ``achieved`` (mean hole ratio), ``n`` and
    the metric keys of both conventions; the composites per mask set; and ``{"method", "kind",
    "ratio", "reason"}`` for each method that refused a mask set (a ``ValueError`` from the method)."""
    from tqdm.auto import tqdm

    from .metrics import compare_methods

    rows: list[dict[str, Any]] = []
    outputs: dict[tuple[str, float], dict[str, torch.Tensor]] = {}
    skipped: list[dict[str, str]] = []
    for (kind, ratio), mask in tqdm(mask_sets.items(), desc="mask sets", disable=not progress):
        if mask.shape[0] != images.shape[0]:
            raise ValueError(f"mask set {(kind, ratio)} has {mask.shape[0]} masks for {images.shape[0]} images")
        achieved = float(area_ratio(mask).mean())
        outputs[kind, ratio] = {}
        for name, method in methods.items():
            try:
                found, outs = compare_methods({name: method}, images, mask, conventions=("seed000", "seed002"),
                                              lpips_model=lpips_model, batch_size=batch_size, progress=False)
            except ValueError as err:
                skipped.append({"method": name, "kind": kind, "ratio": f"{ratio:g}", "reason": str(err).splitlines()[0]})
                continue
            rows.append({"method": name, "kind": kind, "ratio": ratio, "achieved": achieved, **found[0]})
            outputs[kind, ratio][name] = outs[name]
    return rows, outputs, skipped


def summarize(rows: Sequence[Mapping[str, Any]], by: Sequence[str], keys: Sequence[str]) -> list[dict[str, Any]]:
    """Means of ``keys`` over the rows grouped by the columns ``by`` (each row weighted by its ``n``),
    in the order groups first appear. A key missing from a row (e.g. LPIPS left out) is skipped."""
    groups: dict[tuple, dict[str, Any]] = {}
    for row in rows:
        group = tuple(row[b] for b in by)
        acc = groups.setdefault(group, {"n": 0, "sums": {}, "weights": {}})
        n = int(row.get("n", 1))
        acc["n"] += n
        for key in keys:
            value = row.get(key)
            if value is None or (isinstance(value, float) and math.isnan(value)):
                continue
            acc["sums"][key] = acc["sums"].get(key, 0.0) + n * float(value)
            acc["weights"][key] = acc["weights"].get(key, 0) + n
    out = []
    for group, acc in groups.items():
        row = dict(zip(by, group))
        row["n"] = acc["n"]
        for key in keys:
            if acc["weights"].get(key):
                row[key] = acc["sums"][key] / acc["weights"][key]
        out.append(row)
    return out


def psnr_by_ratio(rows: Sequence[Mapping[str, Any]], key: str = "psnr_hole") -> dict[str, list[tuple[float, float]]]:
    """``{method: [(achieved hole ratio, mean key), ...]}`` sorted by ratio, averaged over mask kinds at
    each asked ratio: the curves of "PSNR against hole ratio" per method."""
    table = summarize(rows, ("method", "ratio"), (key, "achieved"))
    curves: dict[str, list[tuple[float, float]]] = {}
    for row in table:
        if key in row:
            curves.setdefault(row["method"], []).append((row["achieved"], row[key]))
    return {m: sorted(points) for m, points in curves.items()}
