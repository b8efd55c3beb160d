"""Notebook 07's comparison: every method on the same held-out images and the same masks, scored by
mask kind and by hole ratio, plus the summaries and the curves built from those rows.

The masks are drawn once per ``(kind, ratio)`` from one seed (:func:`comparison_masks`), so every
method sees exactly the same holes; each method is scored with :func:`inpaint_utils.metrics.compare_methods`
(hole zeroed before the call, composite scored, Nanavati & Patel and Biradar et al. conventions). A method that
cannot fill a mask (a centre Context Encoder asked for a hole outside its window) is recorded in
``skipped`` with its reason instead of stopping the comparison.

Own masks and other masks. A learned model is also scored on masks drawn the way its training drew
them (:func:`training_masks`, from its checkpoint's config and the training code: the CE's centre hole,
GLCIC's random rectangles, DeepFill v1's shrunk boxes, the blocks a full-image CE trained on, the free-form
strokes of partial convolutions and of DeepFill v2, v2's with a box), and
:func:`own_and_other` lays out each learned model's scores on its own masks beside those on every mask
kind, saying which is which (``"own masks"``, ``"own kind"``: the kind its training masks belong to, at
the comparison's ratios, ``"other kind"``) and listing each kind it refused as refused.

The field's protocol (LaMa, Suvorov et al. 2021) is the other way in: the fixed thin / medium / thick
sets of :func:`inpaint_utils.masks.eval_mask_sets` (drawn once from a seed, saved under
``runs/eval_masks``), keyed by kind, and with ``by_area=True`` every score also per 10 % hole-area bin
(:func:`scores_by_area`), each bin with its own ``n``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, Mapping, Sequence

import torch

from .masks import TrainingMasks, area_bin_label, area_bins, area_ratio, make_mask, max_ratio, resize_mask

__all__ = ["comparison_masks", "compare_on_masks", "scores_by_area", "summarize", "psnr_by_ratio", "training_masks",
           "compare_on_training_masks", "own_and_other", "vs_training", "Replication", "REPLICATION", "replication_table"]

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


def _set_key(key: Any) -> tuple[str, float | None]:
    """``(kind, ratio)`` of a mask-set key: a ``(kind, ratio)`` pair (:func:`comparison_masks`) or a kind
    alone (a fixed evaluation set, :func:`inpaint_utils.masks.eval_mask_set`, whose ratio is not asked)."""
    if isinstance(key, str):
        return key, None
    if isinstance(key, tuple) and len(key) == 2 and isinstance(key[0], str):
        return key[0], (None if key[1] is None else float(key[1]))
    raise ValueError(f"mask set keys must be (kind, ratio) pairs or kind names, got {key!r}")


def scores_by_area(per_image: Mapping[str, torch.Tensor], mask: torch.Tensor, bins: int = 10) -> list[dict[str, Any]]:
    """Per-image scores ``{key: (B,)}`` grouped by the hole area of their masks ``(B, 1, H, W)``, LaMa's
    protocol: one row per non-empty bin, in order, ``{"area_bin": "10-20%", "area_lo": 0.1, "area_hi":
    0.2, "n": images in the bin, "achieved": their mean hole share, <key>: mean over the bin}``. Bins
    are half-open, ``[k / bins, (k + 1) / bins)`` (:func:`inpaint_utils.masks.area_bins`); empty bins
    are left out, so every mean stands beside its ``n``."""
    index = area_bins(mask, bins)                                                      # (B,)
    share = area_ratio(mask).double().cpu()
    for key, value in per_image.items():
        if value.shape != index.shape:
            raise ValueError(f"score {key!r} has shape {tuple(value.shape)} for {index.shape[0]} masks")
    rows = []
    for k in torch.unique(index).tolist():
        chosen = index == k
        row: dict[str, Any] = {"area_bin": area_bin_label(k, bins), "area_lo": k / bins, "area_hi": (k + 1) / bins,
                               "n": int(chosen.sum()), "achieved": float(share[chosen].mean())}
        for key, value in per_image.items():
            row[key] = float(value.detach().cpu()[chosen].double().mean())
        rows.append(row)
    return rows


def compare_on_masks(methods: Mapping[str, Method], images: torch.Tensor, mask_sets: Mapping[Any, torch.Tensor],
                     lpips_model: Any = False, batch_size: int = 32, progress: bool = True, by_area: bool = False,
                     bins: int = 10) -> tuple:
    """Score every method on every mask set (hole zeroed before the call, composite scored, Nanavati & Patel
    and Biradar et al. conventions). ``mask_sets`` maps ``(kind, ratio)`` (:func:`comparison_masks`) or a kind
    name (the fixed sets of :func:`inpaint_utils.masks.eval_mask_sets`, ratio ``None``) to ``(n, 1, H, W)``
    masks, one per image.

    Returns ``(rows, outputs, skipped)``: one row per ``(method, kind, ratio)`` with ``kind``, ``ratio``
    (asked, or ``None``), ``achieved`` (mean hole ratio), ``n`` (images scored) of ``of`` (asked), with
    ``failed`` (image and reason) where a method could not fill some images, and the metric keys of both
    conventions (means over the images scored);
    the composites per mask set (under the set's own key); and ``{"method", "kind", "ratio", "reason"}``
    for each method that refused a mask set (a ``ValueError`` from the method). With ``by_area=True`` a
    fourth item, ``area_rows``: the same scores per hole-area bin (:func:`scores_by_area`, ``bins``
    bins), one row per ``(method, kind, ratio, bin)`` with its own ``n``.
    """
    from tqdm.auto import tqdm

    from .metrics import mean_rows, score_methods, scored_only

    rows: list[dict[str, Any]] = []
    area_rows: list[dict[str, Any]] = []
    outputs: dict[Any, dict[str, torch.Tensor]] = {}
    skipped: list[dict[str, str]] = []
    for key, mask in tqdm(mask_sets.items(), desc="mask sets", disable=not progress):
        kind, ratio = _set_key(key)
        if mask.shape[0] != images.shape[0]:
            raise ValueError(f"mask set {key!r} has {mask.shape[0]} masks for {images.shape[0]} images")
        achieved = float(area_ratio(mask).mean())
        outputs[key] = {}
        for name, method in methods.items():
            try:
                found, outs = score_methods({name: method}, images, mask, conventions=("seed000", "seed002"),
                                            lpips_model=lpips_model, batch_size=batch_size, progress=False)
            except ValueError as err:
                skipped.append({"method": name, "kind": kind, "ratio": "" if ratio is None else f"{ratio:g}",
                                "reason": str(err).splitlines()[0]})
                continue
            (row,) = mean_rows(found)                      # n: images scored, of: asked, failed: why not
            rows.append({"method": name, "kind": kind, "ratio": ratio, "achieved": achieved, **row})
            if by_area:
                ok = scored_only(found, name)
                per_image = {k: v[ok.to(v.device)] for k, v in found[name].items()}
                area_rows += [{"method": name, "kind": kind, "ratio": ratio, **row}
                              for row in scores_by_area(per_image, mask.expand(images.shape[0], -1, -1, -1)[ok], bins)]
            outputs[key][name] = outs[name]
    return (rows, outputs, skipped, area_rows) if by_area else (rows, outputs, skipped)


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


# --------------------------------------------------------------------------------------------------
# each learned model on the masks it trained on, beside every mask kind
# --------------------------------------------------------------------------------------------------
def training_masks(method: str, config: Mapping[str, Any], n: int, size: int,
                   generator: torch.Generator | None = None, *, mask_kind: str | None = None,
                   mask_ratio: float | Sequence[float] | None = None) -> TrainingMasks:
    """``n`` masks drawn as the training of the learned ``method`` (an :data:`inpaint_utils.models.LEARNED`
    name: ``ce``, ``cascade``, ``glcic``, ``deepfill``, ``pconv``, ``deepfill_v2``) with the checkpoint's
    ``config`` drew them, at the model's size and then resized to ``size``. The task that trains the model
    draws them (``training_masks`` of :data:`inpaint_utils.models.TASKS`), by its own functions:

    * ``ce`` / ``cascade`` with a centre output: the centre hole the model drops; with a full-image output,
      the task's ``mask_kind`` at ``mask_ratio`` (a checkpoint does not store them: pass them);
    * ``glcic`` (and ``glcic_poisson``): one rectangle per image with sides in ``hole_range`` (kind ``"square"``);
    * ``deepfill``: v1's box shrunk by a random ``0 .. hole_size // 8`` px a side (kind ``"square"``);
    * ``pconv``: free-form brush strokes covering 1-60 % of the image (kind ``"irregular"``);
    * ``deepfill_v2``: brush strokes covering 5-30 % united with a box of 25 % (kind ``"irregular"``).

    A checkpoint does not store the stroke ratio: ``mask_ratio`` gives the one a run trained with when it was
    not its task's default (``pconv``: the strokes' share; ``deepfill_v2``: the strokes', the box kept)."""
    from .models import LEARNED, TASKS

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    if method not in LEARNED:
        raise ValueError(f"{method!r} is not a learned model with training masks; choose one of {sorted(LEARNED)}")
    own = TASKS[LEARNED[method]].training_masks(config, n, generator, mask_kind=mask_kind, mask_ratio=mask_ratio)
    s = own.masks.shape[-1]
    description = own.description + (f", scaled to {size}x{size}" if s != size else "")
    return TrainingMasks(own.kind, description, resize_mask(own.masks, size))


def compare_on_training_masks(methods: Mapping[str, Method], images: torch.Tensor,
                              training: Mapping[str, TrainingMasks], lpips_model: Any = False,
                              batch_size: int = 32) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor],
                                                             list[dict[str, str]]]:
    """Each method of ``training`` (a name of ``methods``) on its own training masks
    (:func:`training_masks`, one per image), scored as :func:`compare_on_masks` does. Returns ``(rows,
    outputs, skipped)``: rows with ``kind`` (the kind the masks belong to), ``masks`` (their description)
    and ``ratio`` (the achieved mean hole ratio); the composites by method; refusals as in
    :func:`compare_on_masks`."""
    rows: list[dict[str, Any]] = []
    outputs: dict[str, torch.Tensor] = {}
    skipped: list[dict[str, str]] = []
    for name, own in training.items():
        if name not in methods:
            raise KeyError(f"no method {name!r} to score on its training masks; methods: {list(methods)}")
        achieved = float(area_ratio(own.masks).mean())
        found, outs, refused = compare_on_masks({name: methods[name]}, images, {(own.kind, achieved): own.masks},
                                                lpips_model=lpips_model, batch_size=batch_size, progress=False)
        rows += [{**row, "masks": own.description} for row in found]
        skipped += [{**row, "masks": own.description} for row in refused]
        outputs.update(outs[own.kind, achieved])
    return rows, outputs, skipped


def vs_training(rows: Sequence[Mapping[str, Any]], training_kinds: Mapping[str, str]) -> list[dict[str, Any]]:
    """Copies of ``rows`` (with ``method`` and ``kind``) with a ``"vs training"`` column: ``"own kind"`` when
    the kind is the one a learned method's training masks belong to (``training_kinds``: method -> kind),
    ``"other kind"`` when not, ``"-"`` for a method not in ``training_kinds`` (baselines, models not trained
    in the course)."""
    def label(row: Mapping[str, Any]) -> str:
        if row["method"] not in training_kinds:
            return "-"
        return "own kind" if row["kind"] == training_kinds[row["method"]] else "other kind"

    return [{**row, "vs training": label(row)} for row in rows]


def own_and_other(rows: Sequence[Mapping[str, Any]], own_rows: Sequence[Mapping[str, Any]],
                  skipped: Sequence[Mapping[str, str]], training_kinds: Mapping[str, str],
                  keys: Sequence[str]) -> list[dict[str, Any]]:
    """One table of the learned methods (``training_kinds``: method -> the kind its training masks belong
    to): per method, a row on its own training masks (``own_rows``, :func:`compare_on_training_masks`),
    then one per mask kind of ``rows`` / ``skipped`` (means of ``keys`` over the ratios), each with
    ``"vs training"``: ``"own masks"``, ``"own kind"`` (the kind of its training masks, at the asked
    ratios) or ``"other kind"``. A kind refused at every ratio is a row without scores whose
    ``refused`` says so (``reason``: why); one refused at some ratios names them."""
    kinds = list(dict.fromkeys([*(r["kind"] for r in rows), *(s["kind"] for s in skipped)]))
    out: list[dict[str, Any]] = []
    for method in training_kinds:
        for row in summarize([r for r in own_rows if r["method"] == method], ("method", "masks"), keys):
            out.append({"method": method, "masks": row["masks"], "vs training": "own masks", "n": row["n"],
                        **{k: row[k] for k in keys if k in row}})
        for s in (s for s in skipped if s["method"] == method and "masks" in s):
            out.append({"method": method, "masks": s["masks"], "vs training": "own masks", "refused": "refused",
                        "reason": s["reason"]})
        for kind in kinds:
            scored = [r for r in rows if r["method"] == method and r["kind"] == kind]
            refused = [s for s in skipped if s["method"] == method and s["kind"] == kind and "masks" not in s]
            if not scored and not refused:
                continue
            entry: dict[str, Any] = {"method": method, "masks": kind,
                                     "vs training": vs_training([{"method": method, "kind": kind}],
                                                                training_kinds)[0]["vs training"]}
            if scored:
                row = summarize(scored, ("method",), keys)[0]
                entry.update({"n": row["n"], **{k: row[k] for k in keys if k in row}})
            if refused:
                entry["refused"] = ("refused at every ratio" if not scored else
                                    f"refused at ratio {', '.join(s['ratio'] for s in refused)}")
                entry["reason"] = "; ".join(dict.fromkeys(s["reason"] for s in refused))
            out.append(entry)
    return out


# --------------------------------------------------------------------------------------------------
# the replication table: each number the papers report beside ours, read from saved run results
# --------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Replication:
    """One paper number set and where ours comes from: the paper's row ``paper_method`` of
    ``report.REPORTED[table]``, and the mean of our rows in ``results`` (a ``save_results`` name;
    ``rows_key`` picks the list inside it) whose fields equal ``where``, with ``columns`` mapping each
    paper column to our key. ``committed``: ``(results/ stem, method)`` of the committed ``cpu``-profile
    run (:func:`inpaint_utils.report.committed_results`) whose row of that method is put beside them too."""

    table: str
    paper_method: str
    paper_data: str | None
    results: str
    notebook: str
    where: Mapping[str, Any]
    columns: Mapping[str, str]
    rows_key: str = "rows"
    committed: tuple[str, str] | None = None
    #: the name our rows get when our model is not the paper's (Biradar et al.'s "GLCIC" is Yu et al.'s stable
    #: variant; ours is Iizuka et al.'s network); ``None``: the paper's label
    ours_method: str | None = None
    #: the paper row's ``masks`` field, where one method and data have several rows (LaMa's narrow / wide)
    paper_masks: str | None = None
    #: what our rows' ``masks`` column says (the set ours were scored on), when the table has that column
    ours_masks: str | None = None


_SEED000 = {"l1_pct": "l1_pct_hole", "l2_pct": "l2_pct_hole", "psnr": "psnr_hole"}
#: Biradar et al. do not say over which pixels its Table II averages; ours are in the hole (notebooks 04 and 05 print both).
_SEED002 = {"mse255": "mse255_hole", "l1_255": "l1_255_hole", "psnr": "psnr_hole", "lpips": "lpips_hole",
            "tv": "tv255_hole"}

#: LaMa's FID and VGG LPIPS over the whole image (fid, lpips_vgg_image) are not what ours measure: those stay blank
#: in our rows; our SqueezeNet LPIPS over the hole goes in its own column
_SEED001 = {"fid": "fid", "lpips_vgg_image": "lpips_vgg_image", "lpips_squeeze_hole": "lpips_hole"}

#: the cascade CE paper's NSD is the raw estimator (notebook 03's ``nsd_*``): raw beside raw. ``nsd_standardised_ours`` is our
#: standardised variant (``metrics.nsd(..., standardize=True)``), which the paper does not report (blank in its row).
_SEED003 = {"nsd_mean": "nsd_mean", "nsd_std": "nsd_std", "nsd_standardised_ours": "ours_std_mean"}

#: Every reported number of Nanavati & Patel, Table 1, Biradar et al., Table II and the cascade CE paper's NSD that a notebook of
#: the course measures, and where that notebook saves ours.
REPLICATION: tuple[Replication, ...] = (
    Replication("seed000_table1", "Context Encoder", "CelebA-HQ", "02_context_encoder", "02_context_encoder",
                {"method": "context encoder"}, _SEED000, committed=("02_ce_cpu", "ce")),
    Replication("seed000_table1", "Stable Diffusion 2", "CelebA-HQ", "06_diffusion", "06_stable_diffusion",
                {"method": "SD-2", "data": "faces"}, _SEED000),
    Replication("seed000_table1", "Stable Diffusion 2", "Cityscapes", "06_diffusion", "06_stable_diffusion",
                {"method": "SD-2", "data": "scenes"}, _SEED000),
    Replication("seed002_table2", "Telea", None, "05_contextual_attention", "05_contextual_attention",
                {"method": "Telea"}, _SEED002, committed=("05_ca_cpu_hole", "telea")),
    Replication("seed002_table2", "Navier-Stokes", None, "05_contextual_attention", "05_contextual_attention",
                {"method": "Navier-Stokes"}, _SEED002, committed=("05_ca_cpu_hole", "ns")),
    Replication("seed002_table2", "stable GLCIC of Yu et al. (no BN, ELU, WGAN-GP; 50k)", None, "04_glcic",
                "04_glcic", {"method": "GLCIC"}, _SEED002, committed=("04_glcic_cpu_network", "glcic"),
                ours_method="GLCIC of Iizuka et al. (ours: BN, ReLU, BCE)"),
    Replication("seed002_table2", "CA Animals hole (150k)", None, "05_contextual_attention", "05_contextual_attention",
                {"method": "CA hole"}, _SEED002, committed=("05_ca_cpu_hole", "deepfill")),
    Replication("seed002_table2", "CA Animals mosaic (50k)", None, "05_contextual_attention",
                "05_contextual_attention", {"method": "CA mosaic"}, _SEED002),
    # notebook 08's DeepFill v2 beside LaMa's Table 1 rows: our thin set beside their narrow masks, our thick set
    # beside their wide ones (a pairing of ours); only our SqueezeNet LPIPS over the hole exists, in its own column
    Replication("seed001_irregular", "DeepFill v2", "CelebA-HQ, 256 px", "08_irregular_holes", "08_irregular_holes",
                {"method": "DeepFill v2", "kind": "thin"}, _SEED001, committed=("08_v2_cpu_thin", "deepfill_v2"),
                paper_masks="LaMa narrow", ours_masks="LaMa thin set"),
    Replication("seed001_irregular", "DeepFill v2", "CelebA-HQ, 256 px", "08_irregular_holes", "08_irregular_holes",
                {"method": "DeepFill v2", "kind": "thick"}, _SEED001, committed=("08_v2_cpu_thick", "deepfill_v2"),
                paper_masks="LaMa wide", ours_masks="LaMa thick set"),
    Replication("seed003_nsd", "Context Encoder", None, "03_cascade_ce_nsd", "03_cascade_ce_nsd",
                {"method": "Context Encoder"}, _SEED003, rows_key="nsd"),
    Replication("seed003_nsd", "Cascade CE", None, "03_cascade_ce_nsd", "03_cascade_ce_nsd",
                {"method": "Cascade CE"}, _SEED003, rows_key="nsd"),
)


def _paper_row(entry: Replication) -> dict[str, Any]:
    from .report import REPORTED

    for row in REPORTED[entry.table]["rows"]:
        if (row["method"] == entry.paper_method and (entry.paper_data is None or row.get("data") == entry.paper_data)
                and (entry.paper_masks is None or row.get("masks") == entry.paper_masks)):
            return row
    raise KeyError(f"{entry.table} has no row {entry.paper_method!r} ({entry.paper_data}, {entry.paper_masks})")


def replication_table(entries: Sequence[Replication] = REPLICATION,
                      loader: Callable[[str], Mapping[str, Any]] | None = None,
                      committed: Mapping[str, Mapping[str, Any]] | None = None) -> list[dict[str, Any]]:
    """Two rows per entry: the paper's numbers, then ours with the data, profile, steps, hardware,
    command and code version of the run that produced them (``"not run"`` and the notebook to run
    when its results are missing); a third, ``who`` = ``"ours, committed"``, for an entry whose
    ``committed`` run is among ``committed`` (default: the records under ``results/``,
    :func:`inpaint_utils.report.committed_results`). Nothing of ours is typed: every value is read from
    the saved results through ``loader`` (default :func:`inpaint_utils.report.load_results`)."""
    from .report import REPORTED, committed_results, load_results

    loader = load_results if loader is None else loader
    committed = committed_results() if committed is None else committed
    out: list[dict[str, Any]] = []
    for entry in entries:
        paper = _paper_row(entry)
        label = f"{entry.paper_method}" + (f" ({entry.paper_data})" if entry.paper_data else "") \
            + (f" [{entry.paper_masks}]" if entry.paper_masks else "")
        out.append({"table": entry.table, "method": label, "who": "paper",
                    **{c: paper.get(c) for c in entry.columns},
                    "data": paper.get("data", REPORTED[entry.table]["source"].split(":")[0]),
                    **({"note": paper["note"]} if paper.get("note") else {})})
        ours = entry.ours_method or label            # our model's own name where it is not the paper's
        mine = [_ours_row(entry, ours, loader)]
        if entry.committed is not None and entry.committed[0] in committed:
            mine.append(_committed_row(entry, ours, committed[entry.committed[0]]))
        for row in mine:                             # a paper row with a caveat: say what ours is beside it
            if paper.get("note"):
                row["note"] = "ours: held-out test images"
            if entry.ours_masks:
                row["masks"] = entry.ours_masks
                row["note"] = (f"ours on the {entry.ours_masks} beside {entry.paper_masks} (our pairing); FID and "
                               "VGG LPIPS not computed; lpips_squeeze_hole is another quantity")
        out += mine
    return out


def _ours_row(entry: Replication, label: str, loader: Callable[[str], Mapping[str, Any]]) -> dict[str, Any]:
    """The mean of our rows of ``entry`` in the notebook's saved results, with their provenance."""
    try:
        record = loader(entry.results)
    except FileNotFoundError:
        return {"table": entry.table, "method": label, "who": "ours",
                "data": f"not run: execute notebook {entry.notebook} first"}
    found = [r for r in record.get(entry.rows_key, [])
             if all(str(r.get(k)) == str(v) for k, v in entry.where.items())]
    ours: dict[str, Any] = {"table": entry.table, "method": label, "who": "ours"}
    for col, key in entry.columns.items():
        values = [float(r[key]) for r in found if r.get(key) is not None]
        ours[col] = sum(values) / len(values) if values else None
    steps = record.get("steps")
    ours.update({"data": record.get("data") if found else f"no row {dict(entry.where)} in {entry.results}",
                 "profile": record.get("profile"), "steps": steps if not isinstance(steps, dict) else
                 ", ".join(f"{k} {v}" for k, v in steps.items()),
                 "hardware": record.get("hardware"), "command": record.get("command"),
                 "code": record.get("code_version"), "created": record.get("created")})
    return ours


def _committed_row(entry: Replication, label: str, record: Mapping[str, Any]) -> dict[str, Any]:
    """The row of ``entry.committed``'s method in a committed ``inpaint evaluate --json`` record, in the
    entry's columns, with that run's provenance (its training profile and steps)."""
    name, method = entry.committed
    found = [r for r in record.get("rows", []) if r.get("method") == method]
    training = record.get("training") or {}
    row: dict[str, Any] = {"table": entry.table, "method": label, "who": "ours, committed"}
    for col, key in entry.columns.items():
        row[col] = float(found[0][key]) if found and found[0].get(key) is not None else None
    row.update({"data": (f"results/{name}.json: {record.get('data')}, {record.get('mask')}" if found
                         else f"no row {method!r} in results/{name}.json"),
                "profile": training.get("profile"),
                "steps": training.get("step") if method == record.get("method") else None,   # a baseline: not trained
                "hardware": record.get("hardware"), "command": training.get("command") or record.get("command"),
                "code": record.get("code_version"), "created": record.get("created")})
    return row
