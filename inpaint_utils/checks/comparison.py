"""Notebook 07's graded exercise (every method on the same images and masks): :func:`check_psnr_by_area`, the PSNR
in the hole grouped by hole-area bins (LaMa's protocol), against :func:`inpaint_utils.metrics.psnr` with
``region="hole"`` and :func:`inpaint_utils.comparison.scores_by_area` (:func:`inpaint_utils.masks.area_bins`).
"""
from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import torch

from .runner import CheckResult, _call, _Fail, _reference, _run, _unchanged

__all__ = ["check_psnr_by_area"]


def _by_bin(values: torch.Tensor, index: torch.Tensor) -> dict[int, float]:
    return {int(k): float(values[index == k].double().mean()) for k in torch.unique(index).tolist()}


def _psnr_of(mse: torch.Tensor) -> torch.Tensor:
    return 10 * torch.log10(1.0 / mse.double())


def _reference_bins(pred, target, mask, bins: int) -> dict[int, float]:
    per_image = _reference("metrics", "psnr")(pred, target, mask, region="hole", reduction="none")
    rows = _reference("comparison", "scores_by_area")({"psnr": per_image}, mask, bins)
    return {round(r["area_lo"] * bins): r["psnr"] for r in rows}


def _area_mistakes(pred, target, mask, bins: int) -> dict[str, dict[int, float]]:
    """Results of the usual wrong versions (dicts bin -> value)."""
    b, c = pred.shape[:2]
    sq = (pred - target).double().square()
    m = mask.double().expand(b, 1, *mask.shape[-2:])
    hole_mse = (m * sq).sum(dim=(1, 2, 3)) / (c * m.sum(dim=(1, 2, 3)))
    known_mse = ((1 - m) * sq).sum(dim=(1, 2, 3)) / (c * (1 - m).sum(dim=(1, 2, 3)))
    share = m.flatten(1).mean(dim=1)
    index = torch.clamp((share * bins).floor().long(), max=bins - 1)
    right = _by_bin(_psnr_of(hole_mse), index)
    rounded = torch.clamp((share * bins).round().long(), max=bins - 1)
    upper = torch.clamp((share * bins).ceil().long() - 1, min=0, max=bins - 1)       # (lo, hi] bins
    pooled = {k: float(_psnr_of(hole_mse[index == k].mean())) for k in right}
    return {
        "the PSNR over the WHOLE image: average the squared error over the hole only (sum over the hole / "
        "(C * hole pixels))": _by_bin(_psnr_of(sq.mean(dim=(1, 2, 3))), index),
        "the PSNR over the KNOWN pixels: the mask is 1 in the hole": _by_bin(_psnr_of(known_mse), index),
        "the bins of the KNOWN area (1 - hole share): bin by the hole's share of the image, mask.mean()":
            _by_bin(_psnr_of(hole_mse), torch.clamp(((1 - share) * bins).floor().long(), max=bins - 1)),
        "bins closed on the right, (k / bins, (k + 1) / bins] (off by one at the edges): LaMa's bins are "
        "half-open, [k / bins, (k + 1) / bins), so a share of exactly 10 % is in bin 1, floor(share * bins)":
            _by_bin(_psnr_of(hole_mse), upper),
        "rounded bin indices: the bin is floor(share * bins), not round(...)": _by_bin(_psnr_of(hole_mse), rounded),
        "bins numbered from 1: bin k (from 0) holds shares in [k / bins, (k + 1) / bins)":
            {k + 1: v for k, v in right.items()},
        "the PSNR of each bin's pooled MSE: compute PSNR per image, then average the PSNRs of the bin's images":
            pooled,
        "a share of 100 % in a bin of its own (bins): the last bin, bins - 1, holds 100 %":
            _by_bin(_psnr_of(hole_mse), (share * bins).floor().long()),
    }


def check_psnr_by_area(fn: Callable[..., Any], *, strict: bool = False, atol_db: float = 1e-3) -> CheckResult:
    """Grade ``psnr_by_area(pred, target, mask, bins=10) -> {k: mean PSNR}``: each image's PSNR in the hole
    (``10 log10(1 / MSE)``, the MSE over the hole pixels, images in ``[0, 1]``), averaged over the images whose
    hole covers ``[k / bins, (k + 1) / bins)`` of the image (LaMa's protocol; 100 % goes in the last bin), one
    entry per non-empty bin, keys the bin indices ``0 .. bins - 1``. The reference is
    :func:`inpaint_utils.comparison.scores_by_area` of ``metrics.psnr(pred, target, mask, region="hole",
    reduction="none")``.

    Tests: a dict; one bin (every hole the same size) against the reference; hole shares exactly on the bin edges
    (10 %, 20 %, 30 %: half-open bins); random holes spread over several bins, with ``bins=10`` and ``bins=5``
    (a wrong result is matched against the usual mistakes: PSNR over the whole image or the known pixels, the bins
    of the known area, the bins' edges, bins from 1, a PSNR of the pooled MSE); inputs left unchanged.
    """
    gen = torch.Generator().manual_seed(2021)
    size = 20                                                                          # 400 pixels: 10 % = 40 px

    def block_mask(pixels: int) -> torch.Tensor:
        m = torch.zeros(size * size)
        start = int(torch.randint(0, size * size - pixels + 1, (1,), generator=gen))
        m[start:start + pixels] = 1.0
        return m.view(1, 1, size, size)

    def case(pixels: list[int]):
        mask = torch.cat([block_mask(p) for p in pixels])
        target = torch.rand(len(pixels), 3, size, size, generator=gen)
        noise = torch.randn(len(pixels), 3, size, size, generator=gen)
        scale = torch.linspace(0.02, 0.3, len(pixels)).view(-1, 1, 1, 1)
        pred = (target + scale * noise).clamp(0, 1)
        return pred, target, mask

    def run(pred, target, mask, bins) -> dict[int, float]:
        out = _call(fn, pred, target, mask, bins=bins)
        if not isinstance(out, Mapping):
            raise _Fail(f"expected a dict {{bin index: mean PSNR}}, got {type(out).__name__}")
        result = {}
        for key, value in out.items():
            if isinstance(key, bool) or not isinstance(key, int) and not (isinstance(key, torch.Tensor)
                                                                          and key.numel() == 1):
                raise _Fail(f"the keys must be the bin indices 0 .. {bins - 1} (ints), got {key!r}")
            v = float(value.detach() if isinstance(value, torch.Tensor) else value)
            result[int(key)] = v
        return result

    def compare(what: str, pred, target, mask, bins: int = 10) -> None:
        expected = _reference_bins(pred, target, mask, bins)
        got = run(pred, target, mask, bins)

        def same(a: dict[int, float], b: dict[int, float]) -> bool:
            return set(a) == set(b) and all(abs(a[k] - b[k]) <= atol_db or (math.isinf(a[k]) and a[k] == b[k])
                                            for k in a)

        if same(got, expected):
            return
        hint = ""
        for why, value in _area_mistakes(pred, target, mask, bins).items():
            if same(got, value):
                hint = f" Your result matches {why}."
                break
        if not hint and any(math.isnan(v) for v in got.values()):
            hint = " NaN values: leave empty bins out of the dict (their mean is undefined)."
        show = lambda d: "{" + ", ".join(f"{k}: {v:.3f}" for k, v in sorted(d.items())) + "}"  # noqa: E731
        raise _Fail(f"{what} (bins={bins}): expected {show(expected)}, got {show(got)}.{hint}")

    def t_dict():
        run(*case([100, 100]), 10)

    def t_one_bin():
        compare("4 images, every hole 100 of 400 pixels (25 %, bin 2)", *case([100, 100, 100, 100]))

    def t_edges():
        compare("hole shares exactly on the edges: 40, 80 and 120 of 400 pixels (10 %, 20 %, 30 %) and 39 (9.75 %)",
                *case([40, 80, 120, 39]))

    def t_spread():
        pixels = [int(v) for v in torch.randint(8, 380, (12,), generator=gen)] + [400]
        compare("13 holes of random size, one covering the whole image", *case(pixels))
        compare("the same with 5 bins", *case(pixels), bins=5)

    def t_unchanged():
        pred, target, mask = case([50, 150, 250])
        copies = pred.clone(), target.clone(), mask.clone()
        run(pred, target, mask, 10)
        for name, before, after in zip(("pred", "target", "mask"), copies, (pred, target, mask)):
            _unchanged(name, before, after)

    return _run("psnr_by_area", fn, [
        ("returns a dict {bin: PSNR}", t_dict),
        ("one bin: the mean of the per-image PSNRs in the hole", t_one_bin),
        ("hole shares on the bin edges: half-open bins", t_edges),
        ("holes spread over the bins (10 and 5 bins)", t_spread),
        ("inputs are left unchanged", t_unchanged),
    ], strict)
