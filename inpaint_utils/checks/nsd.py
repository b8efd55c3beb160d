"""Notebook 03's graded exercise (the cascade Context Encoder paper's NSD): :func:`check_nsd`, the normalized
squared-distortion of an encoder's latents, against :func:`inpaint_utils.metrics.nsd_from_latents`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .runner import CheckResult, _call, _Fail, _reference, _run, _unchanged

__all__ = ["check_nsd"]


def _nsd_mistakes(z: torch.Tensor) -> dict[str, torch.Tensor]:
    """Per-image values ``(k,)`` of the usual wrong NSDs on latents ``(k, n, D)``."""
    k, n, d = z.shape
    dev = z - z.mean(dim=1, keepdim=True)                                              # (k, n, D)
    sq = dev.square().sum(dim=(1, 2))                                                  # (k,)
    across = z - z.mean(dim=0, keepdim=True)                                           # mean over the IMAGES
    return {
        "a division by 2 D n: Definition 3.2's 2 D belongs with its estimator dist^2 = 2/n sum_i ||E_i - Z||^2, "
        "whose 2 cancels; with the mean squared deviation from Z divide by D n": sq / (2 * d * n),
        "the unbiased variance (n - 1 in the denominator, torch.var's default correction=1): the estimator "
        "divides by n (torch.var(..., correction=0), or a plain mean)": sq / (d * (n - 1)),
        "no division by D (the latent's size): NSD is normalised per latent dimension": sq / n,
        "no division by n (the number of masks): average the squared deviations over the masks": sq / d,
        "the deviation from the mean over the IMAGES for each mask (axes swapped): Z_j is the mean of image j's "
        "latents over its n masks, latents[j].mean(dim=0), i.e. the mean over dim 1 of (k, n, D)":
            across.square().sum(dim=(1, 2)) / (d * n),
        "the root of the squared distortion (a distance, not its square): keep the squares":
            (sq / (d * n)).sqrt(),
        "the mean distance ||E_i - Z|| instead of the mean SQUARED distance":
            dev.square().sum(dim=2).sqrt().mean(dim=1) / d,
    }


def check_nsd(fn: Callable[[torch.Tensor], Any], *, strict: bool = False, rtol: float = 1e-5) -> CheckResult:
    """Grade ``nsd(latents) -> (k,)``, the normalized squared-distortion per image (the cascade Context Encoder
    paper, section 3): for image ``j`` with latents ``E(P_j, M_1..M_n)`` (``latents[j]``, ``(n, D)``) and their
    mean ``Z_j``, ``NSD_j = 1 / (D n) sum_i ||E(P_j, M_i) - Z_j||^2``; the paper's NSD is the mean over the images.
    ``latents`` ``(k images, n masks, D)``. The reference is :func:`inpaint_utils.metrics.nsd_from_latents` (the
    raw estimator, ``standardize=False``).

    Tests: the shape ``(k,)``; a hand-computed case (two masks at distance 2 in one dimension: NSD 1 / D); latents
    that ignore the mask give 0; independent N(0, I) latents give about ``(n - 1) / n``; random latents with a
    different spread per image against the reference (a wrong value is matched against the usual mistakes: the
    factor 2, ``n - 1``, no ``D`` or ``n``, the mean over the images instead of over the masks); the result is
    differentiable and leaves its input unchanged.
    """
    gen = torch.Generator().manual_seed(2003)

    def run(z: torch.Tensor) -> torch.Tensor:
        out = _call(fn, z)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor of shape ({z.shape[0]},), one NSD per image, got {type(out).__name__}")
        if tuple(out.shape) != (z.shape[0],):
            hint = " (that is one number: return the per-image values, before the mean over the images)" \
                if out.numel() == 1 else ""
            raise _Fail(f"latents {tuple(z.shape)} (k, n, D): expected shape ({z.shape[0]},), one NSD per image, got "
                        f"{tuple(out.shape)}{hint}")
        return out

    def compare(what: str, z: torch.Tensor) -> None:
        expected = _reference("metrics", "nsd_from_latents")(z).double()
        got = run(z).detach().double()
        if not torch.allclose(got, expected, rtol=rtol, atol=1e-9):
            hint = ""
            for why, value in _nsd_mistakes(z.double()).items():
                if torch.allclose(got, value, rtol=1e-4, atol=1e-9):
                    hint = f" Your values match {why}."
                    break
            raise _Fail(f"{what}: expected {[round(v, 5) for v in expected.tolist()[:4]]} (metrics.nsd_from_latents), "
                        f"got {[round(v, 5) for v in got.tolist()[:4]]}.{hint}")

    def t_shape():
        run(torch.randn(4, 5, 6, generator=gen))

    def t_known():
        d = 4
        z = torch.zeros(1, 2, d)
        z[0, 0, 0], z[0, 1, 0] = 1.0, -1.0          # two masks, 2 apart in one dimension: Z = 0, each 1 away
        compare(f"one image, two masks whose latents differ by 2 in one of D = {d} dimensions (NSD = (1 + 1) / "
                f"(D n) = 1 / D = {1 / d:g})", z)

    def t_ignores_mask():
        z = torch.randn(3, 1, 8, generator=gen).expand(3, 5, 8).clone()              # the same latent for every mask
        got = run(z).detach()
        if not bool((got.abs() < 1e-6).all()):
            raise _Fail(f"latents that do not depend on the mask (every mask gives image j the same latent) must give "
                        f"NSD 0, got {[round(v, 5) for v in got.tolist()]}: NSD measures the spread of one image's "
                        f"latents over its masks, around that image's own mean")

    def t_noise():
        k, n, d = 40, 10, 64
        compare(f"independent N(0, I) latents, k = {k}, n = {n}, D = {d} (NSD about (n - 1) / n = {(n - 1) / n:g})",
                torch.randn(k, n, d, generator=gen))

    def t_random():
        z = torch.randn(5, 7, 12, generator=gen) * torch.tensor([0.1, 0.5, 1.0, 2.0, 4.0]).view(5, 1, 1)
        z = z + 3.0 * torch.randn(5, 1, 12, generator=gen)                            # an offset per image
        compare("random latents, a different offset and spread per image", z)

    def t_gradient():
        z = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64).requires_grad_(True)
        copy = z.detach().clone()
        out = run(z)
        _unchanged("latents", copy, z.detach())
        if not out.requires_grad:
            raise _Fail("no gradient reaches the latents: use torch operations (no .item(), numpy or float())")
        out.sum().backward()
        if z.grad is None or not bool(torch.isfinite(z.grad).all()):
            raise _Fail("the gradient with respect to the latents is missing or not finite")

    return _run("nsd", fn, [
        ("returns one value per image, shape (k,)", t_shape),
        ("known value: two masks, one dimension apart", t_known),
        ("latents that ignore the mask give 0", t_ignores_mask),
        ("N(0, I) noise gives about (n - 1) / n", t_noise),
        ("random latents against metrics.nsd_from_latents", t_random),
        ("differentiable, input unchanged", t_gradient),
    ], strict)
