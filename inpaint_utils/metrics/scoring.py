"""One call for a table row: every metric of one reporting convention, per image or as batch means, and
every method scored on the same images and masks.

Two conventions (``convention=``):

* ``"seed000"``, Nanavati and Patel ("Image Inpainting using Context Encoders and Diffusion Model", Table 1,
  128x128): L1 and L2 (MSE) "as a percent" of images in ``[0, 1]`` (L1 3.22 % means a mean absolute error of
  0.0322; L2 0.88 % means an MSE of 0.0088) and PSNR in dB;
* ``"seed002"``, Biradar, Singh, Agrawal and Samantaray ("Deep Learning for Image Inpainting": the GLCIC /
  contextual-attention replication, Table II, 256x256 with a 128x128 hole): MSE and L1 on the 0-255 scale
  (MSE 821.73 = a mean squared error of 821.73 grey levels squared), PSNR, LPIPS and TV.

:func:`evaluate` runs without gradients.
"""
from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from ..validation import check_image, check_image_mask
from .perceptual import load_lpips, lpips_distance
from .pixel import (REGIONS, _check_choice, _check_pair, _check_ssim_size, _masked_mean, _psnr_from_mse,
                    _region_weight, _ssim_map, _ssim_per_image, _tv_per_image)

# --------------------------------------------------------------------------------------------------
# One call for a table row
# --------------------------------------------------------------------------------------------------
_CONVENTIONS = ("seed000", "seed002")


def evaluate_per_image(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                       convention: str = "seed000", lpips_model: torch.nn.Module | bool | None = None,
                       regions: Iterable[str] = ("image", "hole")) -> dict[str, torch.Tensor]:
    """The metrics of one convention, one value per image: ``{key: tensor (B,)}`` (same keys as
    :func:`evaluate`). ``completed`` is what is scored (usually the composite
    ``mask * pred + (1 - mask) * image``); ``mask`` is 1 = hole. For each region ``r`` in ``regions``:

    ``convention="seed000"`` (Nanavati and Patel, Table 1; percent of ``[0, 1]``):
        ``l1_pct_{r}``, ``l2_pct_{r}`` (MSE x100), ``psnr_{r}`` (dB), ``ssim_{r}`` (not in the paper;
        added), and ``lpips_{r}`` only when an LPIPS model (or ``True``: load it) is passed.
    ``convention="seed002"`` (Biradar et al., Table II; 0-255 scale):
        ``mse255_{r}``, ``l1_255_{r}``, ``psnr_{r}``, ``lpips_{r}`` (omitted only with
        ``lpips_model=False``; ``None`` loads it with :func:`load_lpips` and raises if the weights are
        missing), ``tv255_{r}`` (TV of ``completed``, 0-255) and ``tv255_target_{r}`` (TV of the ground
        truth on the same pixels, for reference).

    Keys are stable: the comparison notebook builds its tables from them.
    """
    _check_choice(convention, "convention", _CONVENTIONS)
    _check_pair(completed, target, mask, names=("completed", "target"))
    if mask is None:
        raise ValueError("evaluate needs the mask (B, 1, H, W), 1 = hole, that produced `completed`")
    regions = tuple(regions)
    if not regions:
        raise ValueError("regions must name at least one of ('image', 'hole', 'known')")
    for r in regions:
        _check_choice(r, "regions entry", REGIONS)
    if lpips_model is True or (lpips_model is None and convention == "seed002"):
        lpips_model = load_lpips(device=completed.device)  # raises FileNotFoundError when the weights are missing
    use_lpips = lpips_model is not None and lpips_model is not False
    if convention == "seed000":
        _check_ssim_size(completed)

    out: dict[str, torch.Tensor] = {}
    with torch.no_grad():  # inputs checked once above; the private kernels below skip the checks
        diff = completed - target
        abs_err, sq_err = diff.abs(), diff.square()
        smap = _ssim_map(completed, target) if convention == "seed000" else None
        for r in regions:
            weight = _region_weight(mask, r, completed)
            l1_unit, mse_unit = _masked_mean(abs_err, weight), _masked_mean(sq_err, weight)
            if convention == "seed000":
                out[f"l1_pct_{r}"] = l1_unit * 100.0
                out[f"l2_pct_{r}"] = mse_unit * 100.0
                out[f"psnr_{r}"] = _psnr_from_mse(mse_unit, 1.0)
                out[f"ssim_{r}"] = _ssim_per_image(smap, mask, r)
            else:
                out[f"mse255_{r}"] = mse_unit * 255.0 ** 2
                out[f"l1_255_{r}"] = l1_unit * 255.0
                out[f"psnr_{r}"] = _psnr_from_mse(mse_unit, 255.0)
            if use_lpips:
                out[f"lpips_{r}"] = lpips_distance(completed, target, mask, r, "none", model=lpips_model)
            if convention == "seed002":
                out[f"tv255_{r}"] = _tv_per_image(completed, mask, r) * 255.0
                out[f"tv255_target_{r}"] = _tv_per_image(target, mask, r) * 255.0
    return out


def evaluate(completed: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, convention: str = "seed000",
             lpips_model: torch.nn.Module | bool | None = None,
             regions: Iterable[str] = ("image", "hole")) -> dict[str, float]:
    """Batch means of :func:`evaluate_per_image` as plain floats (PSNR: mean of per-image PSNR, ``inf``
    if some image is perfect), e.g. for ``"seed000"`` and the default regions::

        {"l1_pct_image", "l2_pct_image", "psnr_image", "ssim_image",
         "l1_pct_hole", "l2_pct_hole", "psnr_hole", "ssim_hole"}

    and for ``"seed002"``: ``mse255_*``, ``l1_255_*``, ``psnr_*``, ``lpips_*``, ``tv255_*``, ``tv255_target_*``.
    """
    per_image = evaluate_per_image(completed, target, mask, convention=convention, lpips_model=lpips_model,
                                   regions=regions)
    return {k: float(v.mean()) for k, v in per_image.items()}


class ScoringFailureWarning(UserWarning):
    """Some images of a method could not be filled or scored; the others were (:class:`ImageFailure`)."""


@dataclass(frozen=True)
class ImageFailure:
    """One image a method could not fill: its index in the batch scored and why (``"ValueError: ..."``)."""

    method: str
    image: int
    reason: str


class Scores(dict):
    """:func:`score_methods`' result, ``{method: {key: (B,)}}``, plus ``failures``: ``{method: [ImageFailure,
    ...]}`` (every method has an entry, usually empty) and ``total``: the number of images asked. A failed
    image's scores are NaN; :func:`mean_rows` and :func:`scored_only` leave it out."""

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.failures: dict[str, list[ImageFailure]] = {}
        self.total = 0


def _reason(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _fill(name: str, method: Callable, target: torch.Tensor, m: torch.Tensor) -> torch.Tensor:
    """``method`` on one batch (hole zeroed), its output checked: an image in [0, 1] of the input's shape."""
    pred = method(target * (1 - m), m)
    check_image(pred, f"output of method {name!r}")
    if pred.shape != target.shape:
        raise ValueError(f"method {name!r} returned shape {tuple(pred.shape)} for input {tuple(target.shape)}")
    return pred


def score_methods(methods: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
                  image: torch.Tensor, mask: torch.Tensor, conventions: Sequence[str] = ("seed000", "seed002"),
                  lpips_model: torch.nn.Module | bool | None = None, batch_size: int = 32,
                  progress: bool = True) -> tuple[Scores, dict[str, torch.Tensor]]:
    """Run every method on the same images and masks and score the composites, one value per image.

    Each method is called as ``method(masked_image, mask)`` with the hole pixels zeroed, so no method
    can see the ground truth it is scored against; its output is composited
    (``mask * pred + (1 - mask) * image``) and scored with :func:`evaluate_per_image` in each of
    ``conventions``, in batches of ``batch_size``. Returns ``({method: {key: (B,)}}, {method: composites
    (B, 3, H, W)}``; :func:`compare_methods` averages it, ``comparison.compare_on_masks`` also bins it
    by hole area.

    **One image's failure does not stop the others.** When a method raises on a batch (or returns NaN,
    values outside [0, 1] or the wrong shape), its images are filled one by one; each image that still
    fails gets NaN scores and its masked input as composite, and is recorded in the result's
    ``failures`` (:class:`Scores`) with its reason, with one :class:`ScoringFailureWarning` per method
    naming them. Only a method that fails on *every* image raises, its first error, as before (a
    method that cannot run at all is an error, not a row of NaN).
    """
    check_image_mask(image, mask)
    if not isinstance(methods, Mapping) or not methods:
        raise ValueError("methods must be a non-empty dict {name: callable(masked_image, mask) -> image}")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    for c in conventions:
        _check_choice(c, "convention", _CONVENTIONS)
    if lpips_model is True or lpips_model is None:
        lpips_model = load_lpips(device=image.device)
    mask = mask.expand(image.shape[0], -1, -1, -1)
    from tqdm.auto import tqdm

    scores, outputs = Scores(), {}
    scores.total = int(image.shape[0])
    for name, method in tqdm(methods.items(), desc="methods", disable=not progress):
        per_image: dict[str, list[torch.Tensor]] = {}
        completed_parts = []
        failures: list[ImageFailure] = []
        first_error: Exception | None = None
        for start in range(0, image.shape[0], batch_size):
            target, m = image[start:start + batch_size], mask[start:start + batch_size]
            failed = torch.zeros(target.shape[0], dtype=torch.bool)
            try:
                pred = _fill(name, method, target, m)
            except Exception as err:                              # find the image(s) it fails on
                if target.shape[0] == 1:
                    first_error = first_error or err
                    failures.append(ImageFailure(name, start, _reason(err)))
                    failed[0] = True
                    pred = target * (1 - m)
                else:
                    parts = []
                    for j in range(target.shape[0]):
                        try:
                            parts.append(_fill(name, method, target[j:j + 1], m[j:j + 1]))
                        except Exception as one:
                            first_error = first_error or one
                            failures.append(ImageFailure(name, start + j, _reason(one)))
                            failed[j] = True
                            parts.append(target[j:j + 1] * (1 - m[j:j + 1]))
                    pred = torch.cat(parts)
            completed = m * pred + (1 - m) * target
            completed_parts.append(completed)
            batch_scores: dict[str, torch.Tensor] = {}
            for i, convention in enumerate(conventions):  # LPIPS (the slow part) once, with the first
                found = evaluate_per_image(completed, target, m, convention,
                                           lpips_model=lpips_model if i == 0 else False)
                for key, value in found.items():          # psnr_* is in both conventions: kept once
                    batch_scores.setdefault(key, value)
            for key, value in batch_scores.items():
                if failed.any():
                    value = value.clone()
                    value[failed.to(value.device)] = float("nan")
                per_image.setdefault(key, []).append(value)
        if first_error is not None and len(failures) == image.shape[0]:
            raise first_error
        if failures:
            listed = "; ".join(f"image {f.image}: {f.reason}" for f in failures[:5])
            more = f" (and {len(failures) - 5} more)" if len(failures) > 5 else ""
            warnings.warn(f"method {name!r}: {len(failures)} of {image.shape[0]} images could not be filled and "
                          f"are left out of its scores: {listed}{more}", ScoringFailureWarning, stacklevel=2)
        outputs[name] = torch.cat(completed_parts)
        scores[name] = {k: torch.cat(v) for k, v in per_image.items()}
        scores.failures[name] = failures
    return scores, outputs


def scored_only(scores: Mapping[str, Mapping[str, torch.Tensor]], name: str) -> torch.Tensor:
    """``(B,)`` bool: the images method ``name`` was scored on (not in ``scores.failures``)."""
    per_image = scores[name]
    ok = torch.ones(next(iter(per_image.values())).shape[0], dtype=torch.bool)
    for failure in getattr(scores, "failures", {}).get(name, ()):
        ok[failure.image] = False
    return ok


def compare_methods(methods: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
                    image: torch.Tensor, mask: torch.Tensor, conventions: Sequence[str] = ("seed000", "seed002"),
                    lpips_model: torch.nn.Module | bool | None = None, batch_size: int = 32,
                    progress: bool = True) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """:func:`score_methods` as table rows: one row per method (``{"method", "n", <metric keys>}``,
    means over the images it was scored on, ``"of"`` the images asked, ``"failed"`` the images that could
    not be filled and why, where any: see :func:`score_methods`) and the composites ``{method: (B, 3, H,
    W)}``. Notebooks 01-07 build their tables from this.
    """
    scores, outputs = score_methods(methods, image, mask, conventions=conventions, lpips_model=lpips_model,
                                    batch_size=batch_size, progress=progress)
    return mean_rows(scores), outputs


def mean_rows(scores: Mapping[str, Mapping[str, torch.Tensor]]) -> list[dict[str, Any]]:
    """:func:`score_methods`' per-image scores ``{method: {key: (B,)}}`` as table rows, one per method:
    ``{"method", "n" (images scored), "of" (images asked), <key>: the mean over the scored images}``, and
    ``"failed": [{"image", "reason"}, ...]`` where some images failed (:class:`Scores`)."""
    rows = []
    for name, per_image in scores.items():
        ok = scored_only(scores, name)
        row: dict[str, Any] = {"method": name, "n": int(ok.sum()), "of": int(ok.numel())}
        row.update({k: float(v[ok.to(v.device)].mean()) if ok.any() else float("nan") for k, v in per_image.items()})
        failures = getattr(scores, "failures", {}).get(name)
        if failures:
            row["failed"] = [{"image": f.image, "reason": f.reason} for f in failures]
        rows.append(row)
    return rows
