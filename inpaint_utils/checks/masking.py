"""Notebook 01's graded exercises (masking and the metrics): :func:`check_masked_l2` (the L2 loss over the
hole), :func:`check_psnr` (PSNR of images in ``[0, 1]``, optionally in the hole) and
:func:`check_mask_generator` (a seeded random mask generator, 1 = hole). The references are
:func:`inpaint_utils.losses.masked_l2`, :func:`inpaint_utils.metrics.psnr` and :func:`inpaint_utils.masks.area_ratio` /
:func:`inpaint_utils.validation.check_mask`.
"""
from __future__ import annotations

import inspect
import math
import random
from typing import Any, Callable, Sequence

import numpy as np
import torch

from .runner import CheckResult, _as_float, _call, _close, _diagnose, _Fail, _fn_name, _run, _unchanged

__all__ = ["check_masked_l2", "check_psnr", "check_mask_generator"]


# --------------------------------------------------------------------------------------------------
# check_masked_l2
# --------------------------------------------------------------------------------------------------
def check_masked_l2(fn: Callable[[torch.Tensor, torch.Tensor, torch.Tensor], Any], *, strict: bool = False,
                    rtol: float = 1e-4) -> CheckResult:
    """Grade ``fn(pred, target, mask) -> 0-d tensor``: the mean squared error over the hole,
    ``sum(mask * (pred - target)**2) / (C * sum(mask))`` over the whole batch (images ``(B, C, H, W)``,
    mask ``(B or 1, 1, H, W)``, 1 = hole), as :func:`inpaint_utils.losses.masked_l2` with the mask as
    weights. Tests: a 0-d tensor; a hand-computed value; random batches with holes of different sizes
    and a broadcast ``(1, 1, H, W)`` mask against the reference (relative tolerance ``rtol``); known
    pixels ignored; gradients only in the hole; inputs left unchanged.
    """
    from ..losses import masked_l2
    from ..masks import make_mask

    gen = torch.Generator().manual_seed(1234)
    b, c, size = 3, 3, 32

    def known_inputs():
        target = torch.zeros(1, c, size, size)
        mask = torch.zeros(1, 1, size, size)
        mask[..., 8:24, 8:24] = 1.0                                  # a 16x16 hole: ratio 1/4
        pred = torch.full((1, c, size, size), 0.5)                   # error 0.5 on the known pixels
        pred[..., 8:16, 8:24] = 0.1                                  # error 0.1 in the hole's top half
        pred[..., 16:24, 8:24] = 0.3                                 # error 0.3 in its bottom half
        return pred, target, mask

    def mistakes(pred, target, mask):
        """Values of the usual wrong formulas on these inputs."""
        m = mask.expand(pred.shape[0], 1, *pred.shape[-2:])
        sq = (pred - target).square()
        per_image = (m * sq).sum(dim=(1, 2, 3)) / (m.sum(dim=(1, 2, 3)) * pred.shape[1])
        return {
            "the mean over ALL pixels of mask * error^2 (the hole's error diluted by the known area): divide by "
            "the number of hole elements, C * mask.sum(), not by every pixel": float((m * sq).mean()),
            "the plain MSE over the whole image (the mask is ignored)": float(sq.mean()),
            "the MSE over the KNOWN pixels: the mask convention is 1 = hole, 0 = known": float(
                ((1 - m) * sq).sum() / ((1 - m).sum() * pred.shape[1])),
            "the sum, not the mean, of the squared errors in the hole": float((m * sq).sum()),
            "a division by the number of hole pixels without the channels (C times too large): divide by "
            "C * mask.sum() (or expand the mask to C channels first)": float((m * sq).sum() / m.sum()),
            "the root of the mean (RMSE): the L2 loss here is the mean squared error, no square root": float(
                ((m * sq).sum() / (m.sum() * pred.shape[1])).sqrt()),
            "the mean ABSOLUTE error (L1): square the differences": float(
                (m * (pred - target).abs()).sum() / (m.sum() * pred.shape[1])),
            "the mean over the images of each image's hole MSE: pool every hole element of the batch instead "
            "(one sum over the batch, divided by C times the batch's hole pixels), as losses.masked_l2 does":
                float(per_image.mean()),
        }

    def value_of(pred, target, mask) -> float:
        return _as_float(_call(fn, pred, target, mask), f"{_fn_name(fn)}(pred, target, mask)")

    def t_scalar():
        pred, target, mask = known_inputs()
        out = _call(fn, pred, target, mask)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor (0-d) so the loss can be back-propagated, got {type(out).__name__}; "
                        f"keep the computation in torch (no .item(), float() or numpy)")
        if out.ndim != 0:
            raise _Fail(f"expected a 0-d tensor (one number for the batch), got shape {tuple(out.shape)}; "
                        f"sum over every dimension")
        if not out.is_floating_point():
            raise _Fail(f"expected a floating-point tensor, got dtype {out.dtype}")

    def t_known_value():
        pred, target, mask = known_inputs()
        expected = float(masked_l2(pred, target, mask))      # (0.1^2 + 0.3^2) / 2 = 0.05
        got = value_of(pred, target, mask)
        if not _close(got, expected, rtol):
            raise _Fail(f"hole error 0.1 on half of a 16x16 hole and 0.3 on the other half, 0.5 on the known pixels: "
                        f"expected (0.1^2 + 0.3^2) / 2 = {expected:.6g}, got {got:.6g}."
                        + _diagnose(got, mistakes(pred, target, mask)))

    def random_inputs():
        pred = torch.rand(b, c, size, size, generator=gen)
        target = torch.rand(b, c, size, size, generator=gen)
        mask = make_mask("blocks", size, (0.1, 0.45), batch=b, generator=gen)  # holes of different sizes
        return pred, target, mask

    def t_random_batch():
        pred, target, mask = random_inputs()
        expected = float(masked_l2(pred, target, mask))
        got = value_of(pred, target, mask)
        if not _close(got, expected, rtol):
            raise _Fail(f"random batch of {b} images with holes of different sizes: expected {expected:.6g} "
                        f"(losses.masked_l2), got {got:.6g} (relative tolerance {rtol:g})."
                        + _diagnose(got, mistakes(pred, target, mask)))

    def t_broadcast_mask():
        pred, target, mask = random_inputs()
        one = mask[:1]                                                # (1, 1, H, W): one mask for the batch
        expected = float(masked_l2(pred, target, one))
        got = value_of(pred, target, one)
        if not _close(got, expected, rtol):
            hint = ""
            if _close(got, expected * b, 1e-3):
                hint = (f" It is {b} times too large: with a (1, 1, H, W) mask for a batch of {b}, the product counts "
                        f"the hole {b} times but mask.sum() only once; expand the mask first "
                        f"(mask.expand(pred.shape[0], 1, H, W)).")
            raise _Fail(f"one (1, 1, H, W) mask for a batch of {b} (masks broadcast over the batch, as everywhere in "
                        f"the course): expected {expected:.6g}, got {got:.6g}.{hint}"
                        + ("" if hint else _diagnose(got, mistakes(pred, target, one))))

    def t_known_pixels_ignored():
        pred, target, mask = random_inputs()
        before = value_of(pred, target, mask)
        changed = torch.where(mask.bool().expand_as(pred), pred, 1.0 - pred)   # new values on the known pixels only
        after = value_of(changed, target, mask)
        if not _close(after, before, 1e-5, 1e-9):
            raise _Fail(f"changing the prediction outside the hole changed the loss ({before:.6g} -> {after:.6g}); "
                        f"only hole pixels (mask == 1) may count")

    def t_gradient():
        pred, target, mask = random_inputs()
        pred = pred.clone().requires_grad_(True)
        out = _call(fn, pred, target, mask)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise _Fail("no gradient reaches pred: the result must be computed with torch operations on pred "
                        "(no .item(), .detach(), float() or numpy), otherwise a model cannot train on it")
        out.reshape(()).backward()
        grad = pred.grad
        if grad is None:
            raise _Fail("pred.grad is None after backward(): the result is not connected to pred")
        hole = mask.bool().expand_as(grad)
        if bool(grad[~hole].abs().max() > 0):
            raise _Fail("the gradient is non-zero on known pixels: the loss must depend on the hole only")
        if not bool(grad[hole].abs().max() > 0):
            raise _Fail("the gradient is zero in the hole: the loss does not depend on the predicted hole pixels")
        expected = 2 * (pred.detach() - target) * hole / (hole.sum())          # d/dpred of the hole mean
        if not torch.allclose(grad, expected, rtol=1e-3, atol=1e-7):
            raise _Fail("the gradient differs from that of the hole mean 2 (pred - target) / (C * hole pixels)")

    def t_inputs_unchanged():
        pred, target, mask = random_inputs()
        copies = pred.clone(), target.clone(), mask.clone()
        _call(fn, pred, target, mask)
        for name, before, after in zip(("pred", "target", "mask"), copies, (pred, target, mask)):
            _unchanged(name, before, after)

    return _run("masked_l2", fn, [
        ("returns a 0-d float tensor", t_scalar),
        ("known value (hand-computed)", t_known_value),
        ("random batch, holes of different sizes", t_random_batch),
        ("one (1, 1, H, W) mask for a batch", t_broadcast_mask),
        ("known pixels are ignored", t_known_pixels_ignored),
        ("gradient flows to pred, in the hole only", t_gradient),
        ("inputs are left unchanged", t_inputs_unchanged),
    ], strict)


# --------------------------------------------------------------------------------------------------
# check_psnr
# --------------------------------------------------------------------------------------------------
def _takes_mask(fn: Callable) -> bool:
    try:
        return "mask" in inspect.signature(fn).parameters
    except (TypeError, ValueError):
        return False


def check_psnr(fn: Callable[..., Any], *, strict: bool = False, atol_db: float = 1e-3,
               with_mask: bool | None = None) -> CheckResult:
    """Grade ``fn(pred, target) -> PSNR in dB`` of images in ``[0, 1]`` (data range 1), computed per
    image and averaged over the batch, as :func:`inpaint_utils.metrics.psnr`. Tests: one number; the
    hand-computed 20 dB of a constant error 0.1; random images against the reference (within
    ``atol_db``); a batch of images with different errors (per-image PSNR, then the mean); identical
    images give ``+inf`` (or at least 100 dB), not NaN or an error. With ``with_mask=True`` (default:
    when ``fn`` has a ``mask`` parameter) also ``fn(pred, target, mask=mask)`` against
    ``metrics.psnr(..., mask, region="hole")``.
    """
    from ..masks import make_mask
    from ..metrics import l2, psnr

    if with_mask is None:
        with_mask = _takes_mask(fn)
    gen = torch.Generator().manual_seed(4321)
    size = 32

    def value_of(*args, **kwargs) -> float:
        return _as_float(_call(fn, *args, **kwargs), f"{_fn_name(fn)}(pred, target)")

    def mistakes(pred, target):
        mse = l2(pred, target, reduction="none").double()                      # (B,) MSE per image, [0, 1]
        return {
            "data range 255: these images are in [0, 1], so the peak value is 1, not 255 (10 log10(1 / MSE))":
                float((10 * torch.log10(255.0 ** 2 / mse)).mean()),
            "20 log10(1 / MSE): with the MSE use 10 log10 (or 20 log10(1 / RMSE))":
                float((20 * torch.log10(1.0 / mse)).mean()),
            "10 log10(1 / RMSE): with the root of the MSE use 20 log10 (or 10 log10(1 / MSE))":
                float((10 * torch.log10(1.0 / mse.sqrt())).mean()),
            "a natural logarithm: PSNR uses log10": float((10 * torch.log(1.0 / mse)).mean()),
            "10 log10(MSE): the sign is flipped, PSNR = 10 log10(peak^2 / MSE)": float((10 * torch.log10(mse)).mean()),
            "PSNR with the MSE on the 0-255 scale but peak 1: use the same scale for both (peak 1 on [0, 1])":
                float((10 * torch.log10(1.0 / (mse * 255.0 ** 2))).mean()),
            "the PSNR of the MSE pooled over the batch: compute PSNR per image, then average (as the papers and "
            "metrics.psnr do)": float(10 * torch.log10(1.0 / mse.mean())),
        }

    def t_number():
        x = torch.rand(1, 3, size, size, generator=gen)
        _as_float(_call(fn, (x + 0.1).clamp(0, 1), x.clamp(0, 1)), f"{_fn_name(fn)}(pred, target)")

    def t_known_value():
        target = torch.full((1, 3, size, size), 0.2)
        pred = target + 0.1                                                     # MSE 0.01 -> 20 dB
        expected = float(psnr(pred, target))
        got = value_of(pred, target)
        if not _close(got, expected, 0, atol_db):
            raise _Fail(f"constant error 0.1 (MSE 0.01) on [0, 1] images: expected 10 log10(1 / 0.01) = "
                        f"{expected:.4f} dB, got {got:.4f}." + _diagnose(got, mistakes(pred, target)))

    def t_random():
        pred = torch.rand(1, 3, size, size, generator=gen)
        target = torch.rand(1, 3, size, size, generator=gen)
        expected = float(psnr(pred, target))
        got = value_of(pred, target)
        if not _close(got, expected, 0, atol_db):
            raise _Fail(f"random image pair: expected {expected:.4f} dB (metrics.psnr), got {got:.4f} "
                        f"(tolerance {atol_db:g} dB)." + _diagnose(got, mistakes(pred, target)))

    def t_batch():
        target = torch.rand(3, 3, size, size, generator=gen)
        noise = torch.randn(3, 3, size, size, generator=gen) * torch.tensor([0.02, 0.1, 0.3]).view(3, 1, 1, 1)
        pred = (target + noise).clamp(0, 1)                                     # very different errors per image
        expected = float(psnr(pred, target))
        got = value_of(pred, target)
        if not _close(got, expected, 0, atol_db):
            raise _Fail(f"batch of 3 images with different errors: expected the mean of the per-image PSNRs "
                        f"{expected:.4f} dB, got {got:.4f}." + _diagnose(got, mistakes(pred, target)))

    def t_identical():
        x = torch.rand(2, 3, size, size, generator=gen)
        try:
            got = value_of(x.clone(), x)
        except _Fail:
            raise
        except (ZeroDivisionError, ValueError, RuntimeError) as err:
            raise _Fail(f"identical images (MSE 0) raised {type(err).__name__}: {err}; PSNR is +inf there "
                        f"(torch: 10 * torch.log10(1 / mse) gives inf for mse = 0)") from None
        if math.isnan(got) or not (got == math.inf or got >= 100.0):
            raise _Fail(f"identical images (MSE 0): expected +inf (or at least 100 dB), got {got}")

    def t_hole():
        pred = torch.rand(2, 3, size, size, generator=gen)
        target = torch.rand(2, 3, size, size, generator=gen)
        mask = make_mask("square", size, 0.25, batch=2, generator=gen)
        pred = torch.where(mask.bool().expand_as(pred), pred, target)          # error only in the hole
        expected = float(psnr(pred, target, mask, region="hole"))
        got = value_of(pred, target, mask=mask)
        if not _close(got, expected, 0, atol_db):
            whole = float(psnr(pred, target))
            hint = " Your value is the PSNR over the whole image: average the squared error over the hole only." \
                if _close(got, whole, 0, 1e-3) else ""
            raise _Fail(f"PSNR in the hole (mask=...): expected {expected:.4f} dB (metrics.psnr(..., region='hole')), "
                        f"got {got:.4f}.{hint}")

    tests = [
        ("returns one number", t_number),
        ("known value: error 0.1 is 20 dB", t_known_value),
        ("random images against metrics.psnr", t_random),
        ("batch: per-image PSNR, then the mean", t_batch),
        ("identical images give +inf", t_identical),
    ]
    if with_mask:
        tests.append(("PSNR in the hole (mask=...)", t_hole))
    return _run("psnr", fn, tests, strict)


# --------------------------------------------------------------------------------------------------
# check_mask_generator
# --------------------------------------------------------------------------------------------------
def check_mask_generator(fn: Callable[[int, float, torch.Generator], Any], *, size: int = 64,
                         ratios: Sequence[float] = (0.1, 0.25, 0.4), tolerance: float = 0.02, random_masks: bool = True,
                         strict: bool = False) -> CheckResult:
    """Grade a mask generator ``fn(size, ratio, generator) -> mask``: float32 ``(1, 1, size, size)``
    of 0 and 1, **1 = hole**, whose hole covers ``ratio`` of the image within ``tolerance`` (2
    percentage points, as :func:`inpaint_utils.masks.make_mask`), drawn from ``generator`` only (the same
    seed gives the same mask whatever the global random state) and, with ``random_masks=True``,
    different masks for different seeds. Reference behaviour: ``masks.make_mask(kind, size, ratio,
    generator=generator)`` passes this check for every kind whose ceiling allows ``ratios``.
    """
    from ..masks import area_ratio
    from ..validation import check_mask

    other = max(16, (size * 3) // 4)

    def draw(s: int, ratio: float, seed: int) -> Any:
        return _call(fn, s, ratio, torch.Generator().manual_seed(seed))

    def tensor(s: int, ratio: float, seed: int) -> torch.Tensor:
        out = draw(s, ratio, seed)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor, got {type(out).__name__}")
        return out

    def valid(s: int, ratio: float, seed: int) -> torch.Tensor:
        out = tensor(s, ratio, seed)
        if tuple(out.shape) != (1, 1, s, s) or out.dtype != torch.float32:
            raise _Fail(f"size {s}: expected a float32 tensor of shape (1, 1, {s}, {s}), got {out.dtype} "
                        f"{tuple(out.shape)}")
        try:
            check_mask(out)
        except (TypeError, ValueError) as err:
            raise _Fail(str(err)) from None
        return out

    def t_tensor():
        tensor(size, ratios[0], 0)

    def t_shape():
        for s in (size, other):
            out = tensor(s, ratios[0], 0)
            if tuple(out.shape) != (1, 1, s, s):
                hint = ""
                if tuple(out.shape) in ((s, s), (1, s, s)):
                    hint = " (add the batch and channel dimensions: mask[None, None] or .view(1, 1, H, W))"
                elif out.ndim == 4 and tuple(out.shape[-2:]) != (s, s):
                    hint = f" (the image side is the `size` argument, {s} here)"
                raise _Fail(f"size={s}: expected shape (1, 1, {s}, {s}) (batch, channel, height, width), got "
                            f"{tuple(out.shape)}{hint}")

    def t_dtype():
        out = tensor(size, ratios[0], 0)
        if out.dtype != torch.float32:
            raise _Fail(f"expected dtype torch.float32 (masks are float 0 / 1 so they multiply images), got "
                        f"{out.dtype}; convert with .float()")

    def t_binary():
        out = tensor(size, ratios[0], 0)
        values = torch.unique(out.detach().float()).tolist()
        if not set(values) <= {0.0, 1.0}:
            raise _Fail(f"values must be exactly 0 (known) and 1 (hole), found {values[:6]}"
                        f"{' ...' if len(values) > 6 else ''} (threshold or round, do not blur)")

    def t_polarity():
        ratio = 0.2
        got = float(area_ratio(valid(size, ratio, 1)))
        if abs(got - ratio) <= tolerance:
            return
        if abs((1 - got) - ratio) <= tolerance:
            raise _Fail(f"asked for a hole of {ratio:.0%} and got a KNOWN area of {1 - got:.1%}: the polarity is "
                        f"inverted; the course's masks are 1 = hole (missing), 0 = known (return 1 - mask)")
        raise _Fail(f"asked for ratio {ratio}, the hole (value 1) covers {got:.3f} of the image")

    def t_ratio():
        worst, where = 0.0, None
        for ratio in ratios:
            for seed in (0, 1, 2):
                got = float(area_ratio(valid(size, ratio, seed)))
                if abs(got - ratio) > worst:
                    worst, where = abs(got - ratio), (ratio, seed, got)
        if worst > tolerance:
            ratio, seed, got = where
            hint = ""
            if _close(got, ratio * ratio, 0.1):
                hint = (" (the area came out ratio^2: a side of ratio * size covers ratio^2 of the image; the AREA is "
                        "the ratio, so a square's side is sqrt(ratio) * size)")
            raise _Fail(f"ratio {ratio} (seed {seed}): the hole covers {got:.4f}, {100 * abs(got - ratio):.2f} points "
                        f"off; allowed: {100 * tolerance:g} points{hint}")

    def t_seeded():
        torch.manual_seed(0), np.random.seed(0), random.seed(0)
        first = valid(size, ratios[-1], 7)
        torch.manual_seed(123), np.random.seed(123), random.seed(123)
        second = valid(size, ratios[-1], 7)
        if not torch.equal(first, second):
            raise _Fail("the same generator seed gave different masks once the global random state changed: draw "
                        "every random number from `generator` (torch.randint(..., generator=generator), "
                        "torch.rand(..., generator=generator)), not from torch's, numpy's or Python's global RNG")

    def t_random():
        masks_ = [valid(size, ratios[-1], seed) for seed in range(5)]
        if all(torch.equal(masks_[0], m) for m in masks_[1:]):
            raise _Fail("five different seeds gave the same mask: place the hole at random (using `generator`)")

    tests = [
        ("returns a tensor", t_tensor),
        ("shape (1, 1, size, size)", t_shape),
        ("dtype float32", t_dtype),
        ("values 0 and 1 only", t_binary),
        ("polarity 1 = hole", t_polarity),
        (f"area ratio within {100 * tolerance:g} points", t_ratio),
        ("same seed, same mask (uses `generator` only)", t_seeded),
    ]
    if random_masks:
        tests.append(("different seeds, different masks", t_random))
    state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    try:
        return _run("mask_generator", fn, tests, strict)
    finally:  # the check reseeds the global generators to catch their use: give the notebook its state back
        torch.set_rng_state(state[0]), np.random.set_state(state[1]), random.setstate(state[2])

