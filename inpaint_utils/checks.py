"""Classroom graders: check a student's implementation against the library's own and say what is wrong.

Used by the graded exercises of the notebooks (notebook 01: masked L2, PSNR, a random mask generator;
:func:`check_contextual_attention` is written for notebook 05, :func:`check_mask_update` and
:func:`check_partial_conv` for notebook 08) and by ``python -m inpaint_utils.exercises grade`` (see
:mod:`inpaint_utils.exercises`). Each check runs a handful of small tests (known values, random inputs
compared with the reference, shapes and dtypes, gradients, seeding), diagnoses the usual mistakes
(L2 averaged over every pixel instead of the hole, PSNR with data range 255, mask polarity inverted,
attention that is not masked, no softmax scale, a partial convolution without its sum(1)/sum(M)
rescaling ...) and returns a :class:`CheckResult`::

    from inpaint_utils import checks
    checks.check_masked_l2(my_masked_l2, strict=True)

The references are the library's functions, never a second copy: :func:`inpaint_utils.losses.masked_l2`,
:func:`inpaint_utils.metrics.psnr`, :func:`inpaint_utils.masks.area_ratio` /
:func:`inpaint_utils.validation.check_mask`, ``inpaint_utils.models.deepfill.contextual_attention`` and
``inpaint_utils.models.partial_conv.PartialConv2d``.

Output. Every check prints its report, ending with one machine-readable line
``CHECK <name> PASS|FAIL <score>`` (score = the fraction of its tests passed, two decimals), which the
grader parses. ``strict=True`` raises :class:`CheckFailed` (an ``AssertionError``) with the messages when
a test fails, so a notebook run by papermill stops at a wrong solution. The environment variable
``INPAINT_CHECKS_STRICT=0`` turns that raise off (the report and the line are still printed): the grader
sets it so that one wrong exercise does not hide the checks after it.
"""
from __future__ import annotations

import inspect
import math
import os
import random
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

__all__ = [
    "CheckResult",
    "CheckFailed",
    "CHECK_LINE",
    "STRICT_ENV",
    "parse_check_lines",
    "check_masked_l2",
    "check_psnr",
    "check_mask_generator",
    "check_contextual_attention",
    "check_mask_update",
    "check_partial_conv",
]

#: The machine-readable line every check prints last; ``name``, ``status`` (PASS / FAIL), ``score``.
CHECK_LINE = re.compile(r"^CHECK (?P<name>[A-Za-z0-9_.-]+) (?P<status>PASS|FAIL) (?P<score>[0-9]+(?:\.[0-9]+)?)\s*$",
                        re.MULTILINE)
#: ``INPAINT_CHECKS_STRICT=0``: checks report but never raise (``exercises grade`` sets it).
STRICT_ENV = "INPAINT_CHECKS_STRICT"


class CheckFailed(AssertionError):
    """A strict check failed; the message lists what was wrong and how to fix it."""


@dataclass
class CheckResult:
    """What a check found: ``passed`` (every test passed), ``score`` (fraction of tests passed, 0 to 1),
    ``messages`` (one line per test, ``"ok ..."`` or ``"FAIL ...: why, and what to do"``)."""

    name: str
    passed: bool
    score: float
    messages: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The messages of the failed tests."""
        return [m for m in self.messages if m.startswith("FAIL")]

    def line(self) -> str:
        """``CHECK <name> PASS|FAIL <score>``: what the grader parses."""
        return f"CHECK {self.name} {'PASS' if self.passed else 'FAIL'} {self.score:.2f}"

    def report(self) -> str:
        """The printed report: a header, one line per test, the machine-readable line."""
        n_ok = sum(m.startswith("ok") for m in self.messages)
        head = f"check_{self.name}: {n_ok} of {len(self.messages)} tests passed"
        return "\n".join([head, *(f"  {m}" for m in self.messages), self.line()])

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.name}: {'PASS' if self.passed else 'FAIL'}, score {self.score:.2f})"


def parse_check_lines(text: str) -> list[tuple[str, bool, float]]:
    """Every ``CHECK name PASS|FAIL score`` line in ``text``, as ``(name, passed, score)``."""
    return [(m["name"], m["status"] == "PASS", float(m["score"])) for m in CHECK_LINE.finditer(text)]


# --------------------------------------------------------------------------------------------------
# The test runner
# --------------------------------------------------------------------------------------------------
class _Fail(Exception):
    """A test found a wrong result; the message says what and how to fix it."""


class _NotImplemented(Exception):
    """The student's function still raises NotImplementedError."""


def _fn_name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _strict_enabled(strict: bool) -> bool:
    if not strict:
        return False
    return os.environ.get(STRICT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; NotImplementedError becomes :class:`_NotImplemented`."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise _NotImplemented(str(err) or "NotImplementedError") from None


def _run(name: str, fn: Callable, tests: Sequence[tuple[str, Callable[[], None]]], strict: bool) -> CheckResult:
    """Run ``tests`` (title, body) in order, print the report, return the result (raise when strict)."""
    messages: list[str] = []
    if not callable(fn):
        messages.append(f"FAIL callable: expected a function, got {type(fn).__name__} ({fn!r}); pass the function "
                        f"itself, without calling it (check_{name}(my_function), not check_{name}(my_function()))")
        tests = []
    for i, (title, body) in enumerate(tests):
        try:
            body()
        except _NotImplemented as err:
            messages.append(f"FAIL {title}: {_fn_name(fn)} is not implemented yet (NotImplementedError: {err}); "
                            f"write its body, then run this cell again")
            messages += [f"FAIL {t}: not run ({_fn_name(fn)} is not implemented yet)" for t, _ in tests[i + 1:]]
            break
        except _Fail as err:
            messages.append(f"FAIL {title}: {err}")
        except Exception as err:  # the student's code raised: say where, do not crash the check
            messages.append(f"FAIL {title}: {_fn_name(fn)} raised {type(err).__name__}: {err}")
        else:
            messages.append(f"ok   {title}")
    n_ok = sum(m.startswith("ok") for m in messages)
    total = max(len(messages), 1)
    result = CheckResult(name=name, passed=bool(messages) and n_ok == len(messages), score=n_ok / total,
                         messages=messages)
    print(result.report(), flush=True)
    if _strict_enabled(strict) and not result.passed:
        raise CheckFailed(f"check_{name}({_fn_name(fn)}) failed:\n" + "\n".join(f"  {m}" for m in result.failures))
    return result


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number or a one-element tensor / array (a clear failure otherwise)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _Fail(f"{what} must be one number, got a tensor of shape {tuple(value.shape)} (reduce it to a scalar)")
        return float(value.detach().reshape(()).item())
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    raise _Fail(f"{what} must be a number or a 0-d tensor, got {type(value).__name__}: {value!r}")


def _close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _diagnose(value: float, candidates: dict[str, float], rtol: float = 1e-3) -> str:
    """The mistake whose value ``value`` matches, as a sentence ('' when none does)."""
    for why, candidate in candidates.items():
        if math.isfinite(candidate) and _close(value, candidate, rtol, 1e-9):
            return f" Your value matches {why}."
    return ""


def _unchanged(name: str, before: torch.Tensor, after: torch.Tensor) -> None:
    if not torch.equal(before, after):
        raise _Fail(f"your function changed its input `{name}` in place; work on a copy (e.g. x = x * 1.0, not x *= ...)")


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
    from .losses import masked_l2
    from .masks import make_mask

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
    from .masks import make_mask
    from .metrics import l2, psnr

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
    from .masks import area_ratio
    from .validation import check_mask

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


# --------------------------------------------------------------------------------------------------
# check_contextual_attention
# --------------------------------------------------------------------------------------------------
def _reference(module: str, name: str) -> Any:
    """The library's ``inpaint_utils.<module>.<name>`` that a check compares with, imported when needed (a clear
    failure, not a crash, when it cannot be)."""
    import importlib

    try:
        return getattr(importlib.import_module(f".{module}", __package__), name)
    except (ImportError, AttributeError) as err:
        raise _Fail(f"cannot compare: the reference inpaint_utils.{module}.{name} is not available ({err}); "
                    "reinstall the course package (pip install -e .)") from None


def _valid_patch_map(mask: torch.Tensor, rate: int, ksize: int) -> torch.Tensor:
    """``(B, h, w)`` bool: background patches (ksize x ksize at 1 / rate resolution) with no hole pixel.

    The mask is downsampled by max-pooling (a block with any hole pixel is hole); the masks of the
    synthetic tests are constant on ``rate x rate`` blocks, so nearest-neighbour sampling gives the same map.
    """
    low = F.max_pool2d(mask, rate) if rate > 1 else mask                         # (B, 1, h, w)
    touched = F.max_pool2d(low, ksize, stride=1, padding=ksize // 2)            # 1 where the patch meets the hole
    return touched[:, 0] == 0


def check_contextual_attention(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-4,
                               rtol: float = 1e-3) -> CheckResult:
    """Grade ``contextual_attention(foreground, background, mask, *, ksize=3, stride=1, rate=2, fuse_k=3,
    softmax_scale=10.0) -> (output, offsets)`` (DeepFill v1, Yu et al. 2018): ``foreground`` and
    ``background`` features ``(B, C, H, W)``, ``mask`` ``(B, 1, H, W)`` (1 = hole, one per sample);
    ``output`` the shape and dtype of ``foreground``; ``offsets`` ``(B, 2, H // rate, W // rate)`` int64,
    ``(dy, dx)`` from each position to its most attended background patch, at ``1 / rate`` resolution.

    Tests: shapes and dtypes; output and offsets against ``inpaint_utils.models.deepfill.contextual_attention``
    on random features with a different hole per sample (``atol`` / ``rtol``; offsets may differ at 1 %
    of positions, ties); a synthetic scene whose hole holds an exact copy of a known region (the offsets
    must point at it, the output must paste it); and, with ``foreground = background`` (the network's
    use), no position may attend to a patch that touches the hole. A mismatch is diagnosed by running
    the reference without masking, with ``softmax_scale=1`` and without attention propagation.
    """
    b, c, hs, ws = 2, 8, 32, 32
    rate, ksize = 2, 3
    gen = torch.Generator().manual_seed(2018)

    def run(f, bg, m, **kwargs):
        out = _call(fn, f, bg, m, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Fail(f"expected a pair (output, offsets), got {type(out).__name__}"
                        + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
        return out

    def block_mask(top: int, left: int, side: int, batch: int = 1, h: int = hs, w: int = ws) -> torch.Tensor:
        m = torch.zeros(batch, 1, h, w)
        m[..., top:top + side, left:left + side] = 1.0
        return m

    def random_case():
        fg = torch.randn(b, c, hs, ws, generator=gen)
        bg = torch.randn(b, c, hs, ws, generator=gen)
        mask = torch.cat([block_mask(8, 8, 12), block_mask(14, 4, 10)])             # a different hole per sample
        return fg, bg, mask

    case = random_case()

    def t_shapes():
        fg, bg, mask = case
        output, offsets = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or output.shape != fg.shape:
            raise _Fail(f"output must have the foreground's shape {tuple(fg.shape)}, got "
                        f"{tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__} "
                        f"(paste the attended raw background patches back at full resolution with a transposed "
                        f"convolution, stride = rate)")
        if output.dtype != fg.dtype:
            raise _Fail(f"output must have the foreground's dtype {fg.dtype}, got {output.dtype}")
        want = (b, 2, hs // rate, ws // rate)
        if not isinstance(offsets, torch.Tensor) or tuple(offsets.shape) != want:
            raise _Fail(f"offsets must have shape {want} (B, 2 = (dy, dx), H // rate, W // rate), got "
                        f"{tuple(offsets.shape) if isinstance(offsets, torch.Tensor) else type(offsets).__name__}")
        if offsets.dtype != torch.int64:
            raise _Fail(f"offsets must be int64 (whole patch positions, e.g. from argmax), got {offsets.dtype}")

    def diagnose(fg, bg, mask, output) -> str:
        """Which known mistake the student's output matches, by running the reference with it."""
        reference = _reference("models.deepfill", "contextual_attention")
        variants = {
            "the reference WITHOUT the mask: the scores of background patches that touch the hole must be "
            "excluded (multiply by the patch-validity map before and after the softmax, or set them to -inf)":
                lambda: reference(fg, bg, torch.zeros_like(mask)),
            "the reference with softmax_scale=1: multiply the cosine similarities by softmax_scale (10) before "
            "the softmax, which makes the attention nearly one-hot":
                lambda: reference(fg, bg, mask, softmax_scale=1.0),
            "the reference without attention propagation (fuse_k=1): convolve the score map with a fuse_k x "
            "fuse_k identity kernel, left-right then top-down":
                lambda: reference(fg, bg, mask, fuse_k=1),
            "sample 0's mask used for the whole batch: each sample has its own mask (DeepFill v1 assumed one "
            "mask per batch; the course's version does not)":
                lambda: reference(fg, bg, mask[:1].expand_as(mask)),
        }
        for why, make in variants.items():
            try:
                other, _ = make()
            except Exception:  # noqa: BLE001 - a variant the reference refuses is simply not a diagnosis
                continue
            if other.shape == output.shape and torch.allclose(output, other, atol=atol, rtol=rtol):
                return f" Your output matches {why}."
        return ""

    def t_reference():
        fg, bg, mask = case
        reference = _reference("models.deepfill", "contextual_attention")
        ref_out, ref_off = reference(fg, bg, mask)
        output, offsets = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or output.shape != ref_out.shape:
            raise _Fail("output shape differs from the reference's (see the shape test)")
        if not torch.allclose(output.detach().float(), ref_out.float(), atol=atol, rtol=rtol):
            err = float((output.detach().float() - ref_out.float()).abs().max())
            raise _Fail(f"random features, a different hole per sample: output differs from the reference by up to "
                        f"{err:.3g} (allowed atol {atol:g}, rtol {rtol:g})." + diagnose(fg, bg, mask, output.detach()))
        if not isinstance(offsets, torch.Tensor) or offsets.shape != ref_off.shape:
            raise _Fail("offsets shape differs from the reference's (see the shape test)")
        agree = float((offsets.long() == ref_off.long()).all(dim=1).float().mean())
        if agree < 0.99:
            raise _Fail(f"offsets agree with the reference at {agree:.1%} of positions (need 99 %): offsets are "
                        f"(dy, dx) = (attended row - own row, attended column - own column) at 1 / rate resolution, "
                        f"from the argmax of the attention scores")

    def known_patch_case():
        # Designed at 1 / rate resolution (16 x 16) and upsampled by repetition, so the downsampling inside
        # the function sees exactly this design whatever its phase. The hole (rows / cols 2..5) of the
        # foreground holds an exact copy of the known region 7 rows and 7 columns further (rows / cols 9..12).
        h, w = hs // rate, ws // rate
        low_bg = torch.randn(1, c, h, w, generator=gen)
        low_fg = torch.randn(1, c, h, w, generator=gen)
        shift = 7
        low_fg[..., 1:7, 1:7] = low_bg[..., 1 + shift:7 + shift, 1 + shift:7 + shift]   # the hole and a 1-px ring
        up = lambda x: x.repeat_interleave(rate, dim=-2).repeat_interleave(rate, dim=-1)  # noqa: E731
        mask = block_mask(2 * rate, 2 * rate, 4 * rate)
        return up(low_fg), up(low_bg), mask, shift

    def t_known_patch():
        fg, bg, mask, shift = known_patch_case()
        output, offsets = run(fg, bg, mask)
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 4 or offsets.shape[1] != 2:
            raise _Fail("offsets must be a (B, 2, H // rate, W // rate) tensor (see the shape test)")
        got = offsets[0, :, 2:6, 2:6].reshape(2, -1).long()                      # the 16 hole positions
        right = (got == shift).all(dim=0)
        if not bool(right.all()):
            sample = got[:, (~right).nonzero()[0, 0]].tolist()
            hint = ""
            if sample == [-shift, -shift]:
                hint = " The sign is flipped: offset = attended position - own position."
            elif sample == [rate * shift, rate * shift]:
                hint = f" That is in full-resolution pixels: give offsets at 1 / rate resolution ({shift}, {shift})."
            elif sample == [0, 0]:
                hint = " Hole positions attend to themselves: exclude background patches that touch the hole."
            raise _Fail(f"the hole holds an exact copy of the known region {shift} rows and {shift} columns away: "
                        f"every hole position should point there, offset ({shift}, {shift}); {int((~right).sum())} "
                        f"of 16 do not (e.g. {tuple(sample)}).{hint}")
        core = slice(3 * rate, 5 * rate)                                          # full-res pixels fed by hole patches only
        src = slice(3 * rate + rate * shift, 5 * rate + rate * shift)
        pasted, expected = output[0, :, core, core].detach(), bg[0, :, src, src]
        if not torch.allclose(pasted, expected, atol=1e-2, rtol=1e-2):
            raise _Fail(f"the offsets are right but the output in the hole is not the copied background (max error "
                        f"{float((pasted - expected).abs().max()):.3g}): either the attention is spread over many "
                        f"patches (is the similarity multiplied by softmax_scale = 10 before the softmax?) or the "
                        f"paste is off (the full-resolution background patches weighted by the attention, put back "
                        f"with a transposed convolution of stride rate and divided by the overlap count)")

    def t_hole_not_attended():
        fg = torch.randn(b, c, hs, ws, generator=gen)
        mask = torch.cat([block_mask(8, 8, 12), block_mask(14, 4, 10)])
        _, offsets = run(fg, fg.clone(), mask)                                    # foreground = background
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 4 or offsets.shape[1] != 2:
            raise _Fail("offsets must be a (B, 2, H // rate, W // rate) tensor (see the shape test)")
        valid = _valid_patch_map(mask, rate, ksize)                               # (B, h, w)
        h, w = valid.shape[-2:]
        rows = torch.arange(h).view(1, h, 1) + offsets[:, 0].long()
        cols = torch.arange(w).view(1, 1, w) + offsets[:, 1].long()
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        if not bool(inside.all()):
            raise _Fail(f"{int((~inside).sum())} offsets point outside the image")
        batch = torch.arange(offsets.shape[0]).view(-1, 1, 1).expand_as(rows)
        ok = valid[batch, rows, cols]
        hole = mask[:, 0, ::rate, ::rate] > 0                                     # (B, h, w): hole positions
        if not bool(ok.all()):
            raise _Fail(f"with foreground = background, {int((~ok).sum())} of {ok.numel()} positions "
                        f"({int((~ok & hole).sum())} of them in the hole) attend to a background patch that "
                        f"touches the hole: the attention must only use known background (mask the scores of "
                        f"patches containing a hole pixel, before and after the softmax)")

    def t_gradient():
        fg, bg, mask = (x.clone() for x in case)
        fg.requires_grad_(True)
        bg.requires_grad_(True)
        output, _ = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            raise _Fail("no gradient reaches the features: contextual attention sits inside the network and is "
                        "trained end to end (keep every step a torch operation, no .detach() / numpy)")
        output.square().sum().backward()
        for name, x in (("foreground", fg), ("background", bg)):
            if x.grad is None or not bool(x.grad.abs().sum() > 0):
                raise _Fail(f"the {name} gets no gradient")

    return _run("contextual_attention", fn, [
        ("returns (output, offsets) of the right shapes and dtypes", t_shapes),
        ("matches the reference on random features", t_reference),
        ("known patch: offsets point at the copy, output pastes it", t_known_patch),
        ("never attends to patches in the hole", t_hole_not_attended),
        ("gradients reach foreground and background", t_gradient),
    ], strict)


# --------------------------------------------------------------------------------------------------
# check_mask_update and check_partial_conv (notebook 08, against the library's PartialConv2d)
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def _reference_partial_conv(x: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: int = 1,
                            padding: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``PartialConv2d`` with ``weight`` ``(C_out, C_in, k, k)`` and ``bias`` copied in: ``(out (B, C_out, H', W'),
    new_valid (B, 1, H', W') float)``."""
    layer_cls = _reference("models.partial_conv", "PartialConv2d")
    c_out, c_in, k = weight.shape[:3]
    with torch.random.fork_rng(devices=[]):      # its initialisation draws from the global RNG: keep the notebook's
        layer = layer_cls(c_in, c_out, k, stride=stride, padding=padding, bias=bias is not None)
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)
    out, new_valid = layer(x.detach(), valid.detach())
    return out, new_valid[:, :1].float()


def _out_side(n: int, k: int, stride: int, padding: int) -> int:
    """A convolution's output side: ``floor((n + 2 padding - k) / stride) + 1``."""
    return (n + 2 * padding - k) // stride + 1


def _random_valid(b: int, c: int, h: int, w: int, gen: torch.Generator, hole_rate: float = 0.3) -> torch.Tensor:
    """``(b, c, h, w)`` 0/1 valid masks (1 = known): scattered unknown pixels (independent per channel) and a
    rectangular hole of side h/3 to h/2 (all channels), placed at random, a different one per sample."""
    valid = (torch.rand(b, c, h, w, generator=gen) > hole_rate).float()
    for i in range(b):
        side = int(torch.randint(h // 3, h // 2 + 1, (1,), generator=gen))
        top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        valid[i, :, top:top + side, left:left + side] = 0.0
    return valid


def _which_variant(output: torch.Tensor, variants: Sequence[tuple[str, Callable[[], torch.Tensor]]],
                   atol: float = 0.0, rtol: float = 0.0) -> str:
    """The first variant (why, make) whose tensor ``output`` matches, as a sentence ('' when none does)."""
    output = output.detach().float()
    for why, make in variants:
        try:
            other = make()
        except Exception:  # noqa: BLE001 - a variant that cannot be computed here is simply not a diagnosis
            continue
        if other.shape == output.shape and torch.allclose(output, other.float(), atol=atol, rtol=rtol):
            return f" Your output matches {why}."
    return ""


_MU_EROSION = ("a window valid only when ALL its pixels are known (a minimum, an erosion of the known area): eq. 2 "
               "sets m' = 1 as soon as sum(M) > 0, i.e. when the window sees AT LEAST ONE known pixel (a maximum, a "
               "dilation), so the hole shrinks layer after layer")
_MU_HOLE_RETURNED = ("the updated HOLE (1 - m'): the hole/known convention is flipped; `valid` is 1 = KNOWN (the "
                     "paper's M) and so is the result: return m' = (sum(M) > 0), not its complement")
_MU_HOLE_READ = ("the update of the HOLE: the hole/known convention is flipped, `valid` was read as 1 = hole so the "
                 "hole grew instead of shrinking; here 1 = KNOWN (the paper's M, the opposite of the course's hole "
                 "masks): count the known pixels, sum(M), of valid itself")
_MU_NO_PADDING = ("a window count without padding (the output is smaller than H' x W'): pad by `padding` (default "
                  "kernel_size // 2) with zeros, which count as unknown pixels (F.conv2d(..., padding=padding))")
_MU_PER_CHANNEL = ("one new mask per input channel: a window sees a known pixel when ANY channel of valid is known "
                   "there; sum (or max) over the channels too and return one channel, (B, 1, H', W')")
_MU_FIRST_CHANNEL = ("the update of valid's first channel only: count the known elements of every channel "
                     "(valid[:, :1] ignores the others)")
_MU_EVERY_CHANNEL = ("a pixel counted as known only where every channel is known: one known element in ANY channel "
                     "is enough (sum(M) counts all C channels of the window)")


def _mask_update_mistakes(valid: torch.Tensor, k: int, stride: int,
                          padding: int) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    """The usual wrong mask updates of ``valid`` ``(B, C, H, W)`` (1 = known), each ``(why, make)``."""
    v = valid.detach().float()
    c = v.shape[1]
    ones = torch.ones(1, 1, k, k)

    def count(m: torch.Tensor, pad: int = padding) -> torch.Tensor:          # sum(M) per window, (B, 1, H', W')
        return F.conv2d(m.sum(1, keepdim=True), ones, stride=stride, padding=pad)

    def dilate(m: torch.Tensor, pad: int = padding) -> torch.Tensor:
        return (count(m, pad) > 0).float()

    return [
        (_MU_EROSION, lambda: (count(v) == c * k * k).float()),                        # padding counted unknown
        (_MU_EROSION, lambda: -F.max_pool2d(-v.amin(1, keepdim=True), k, stride, padding)),  # padding ignored
        (_MU_HOLE_RETURNED, lambda: 1.0 - dilate(v)),
        (_MU_HOLE_READ, lambda: dilate(1.0 - v)),
        (_MU_NO_PADDING, lambda: dilate(v, 0)),
        (_MU_PER_CHANNEL, lambda: torch.cat([dilate(v[:, i:i + 1]) for i in range(c)], dim=1)),
        (_MU_FIRST_CHANNEL, lambda: dilate(v[:, :1])),
        (_MU_EVERY_CHANNEL, lambda: dilate(v.amin(1, keepdim=True))),
    ]


def check_mask_update(fn: Callable[..., Any], *, strict: bool = False) -> CheckResult:
    """Grade ``mask_update(valid, kernel_size, stride=1, padding=None) -> new_valid``, the mask update of a partial
    convolution (eq. 2 of Liu et al. 2018, notebook 08): ``valid`` ``(B, C or 1, H, W)`` of 0 / 1, **1 = known** (the
    paper's ``M``), ``padding`` default ``kernel_size // 2`` (the padded border counts as unknown); ``new_valid``
    ``(B, 1, H', W')`` of 0 / 1 (float, or any dtype ``.float()`` converts), 1 where the ``kernel_size`` window sees
    at least one known pixel in any channel (``sum(M) > 0``).

    Tests: shapes and values for stride 1 and 2, odd and even sides and an explicit ``padding=0``; equality with
    ``inpaint_utils.models.partial_conv.PartialConv2d``'s new mask on random masks with a different hole per
    sample; a hole bigger than the window shrinks by ``k // 2`` per layer (its interior stays 0, its border ring
    becomes 1); a ``valid`` whose channels differ. A mismatch is diagnosed by computing the usual wrong updates
    (erosion instead of dilation, hole/known flipped, no padding, one mask per channel).
    """
    b = 2
    gen = torch.Generator().manual_seed(2018)

    def update(valid: torch.Tensor, k: int, stride: int = 1, padding: int | None = None) -> torch.Tensor:
        kwargs: dict[str, Any] = {"stride": stride}
        if padding is not None:
            kwargs["padding"] = padding
        out = _call(fn, valid, k, **kwargs)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor new_valid, got {type(out).__name__}")
        return out

    def describe(k: int, stride: int, padding: int | None, valid: torch.Tensor) -> str:
        pad = "default" if padding is None else padding
        return (f"kernel_size={k}, stride={stride}, padding={pad}, valid {tuple(valid.shape)}")

    def expect(valid, k, stride, padding, out, expected, what: str) -> None:
        """``out`` must equal ``expected`` (B, 1, H', W'); otherwise fail with the diagnosis."""
        p = k // 2 if padding is None else padding

        def diagnosis() -> str:
            return _which_variant(out, _mask_update_mistakes(valid, k, stride, p))

        if tuple(out.shape) != tuple(expected.shape):
            hint = diagnosis()
            if not hint and out.ndim == 3:
                hint = " Keep the channel dimension: (B, 1, H', W') (sum(..., keepdim=True) or [:, None])."
            raise _Fail(f"{what}: expected new_valid of shape {tuple(expected.shape)} (B, 1, H', W'), got "
                        f"{tuple(out.shape)}.{hint}")
        got = out.detach().float()
        if not torch.equal(got, expected):
            wrong = int((got != expected).sum())
            values = torch.unique(got).tolist()
            hint = diagnosis()
            if not hint and not set(values) <= {0.0, 1.0}:
                hint = (f" Its values are {values[:5]}{' ...' if len(values) > 5 else ''}, not 0 and 1: threshold the "
                        f"count, new_valid = (sum(M) > 0).")
            raise _Fail(f"{what}: {wrong} of {got.numel()} positions differ from the expected mask.{hint}")

    def t_shape():
        for h, w, k, stride, padding in ((12, 12, 3, 1, None), (11, 13, 3, 2, None), (12, 12, 5, 2, None),
                                         (11, 11, 5, 1, None), (12, 12, 3, 1, 0)):
            valid = _random_valid(b, 1, h, w, gen)
            out = update(valid, k, stride, padding)
            p = k // 2 if padding is None else padding
            want = (b, 1, _out_side(h, k, stride, p), _out_side(w, k, stride, p))
            what = describe(k, stride, padding, valid)
            if tuple(out.shape) != want:
                hint = _which_variant(out, _mask_update_mistakes(valid, k, stride, p))
                if not hint and padding == 0 and tuple(out.shape[-2:]) == (_out_side(h, k, stride, k // 2),
                                                                         _out_side(w, k, stride, k // 2)):
                    hint = " padding=0 was ignored: use the `padding` argument (kernel_size // 2 only when it is None)."
                elif not hint and out.ndim == 3:
                    hint = " Keep the channel dimension: (B, 1, H', W') (sum(..., keepdim=True) or [:, None])."
                raise _Fail(f"{what}: expected shape {want} (B, 1, floor((H + 2 padding - k) / stride) + 1, ...), got "
                            f"{tuple(out.shape)}.{hint}")
            values = torch.unique(out.detach().float()).tolist()
            if not set(values) <= {0.0, 1.0}:
                hint = (" It looks like the count sum(M): threshold it, new_valid = (sum(M) > 0)."
                        if max(values) > 1 else "")
                raise _Fail(f"{what}: values must be 0 and 1 only, found {values[:5]}"
                            f"{' ...' if len(values) > 5 else ''}.{hint}")

    def t_reference():
        for k, stride in ((3, 1), (3, 2), (5, 1)):
            valid = _random_valid(b, 1, 12, 12, gen)
            copy = valid.clone()
            out = update(valid, k, stride)
            _unchanged("valid", copy, valid)
            _, expected = _reference_partial_conv(torch.zeros(b, 1, 12, 12), valid, torch.zeros(1, 1, k, k),
                                                  stride=stride)
            expect(valid, k, stride, None, out, expected,
                   f"random masks, a different hole per sample ({describe(k, stride, None, valid)}), against "
                   f"PartialConv2d's new mask")

    def t_shrink():
        valid = torch.ones(1, 1, 16, 16)
        valid[..., 3:13, 3:13] = 0.0                                              # a 10x10 hole

        def holed(lo: int, hi: int) -> torch.Tensor:
            m = torch.ones(1, 1, 16, 16)
            m[..., lo:hi, lo:hi] = 0.0
            return m

        once = update(valid, 3)
        expect(valid, 3, 1, None, once, holed(4, 12),
               "a 10x10 hole (rows and columns 3..12 of 16x16), kernel_size=3: the windows of its 8x8 interior see "
               "no known pixel and stay 0, its 1-pixel border ring becomes 1 (the hole shrinks by k // 2 = 1)")
        again = update(once.detach().float(), 3)
        expect(once.detach().float(), 3, 1, None, again, holed(5, 11),
               "the same hole after two kernel_size=3 updates: it shrinks by 1 pixel per layer, to 6x6")
        five = update(valid, 5)
        expect(valid, 5, 1, None, five, holed(5, 11),
               "the 10x10 hole, kernel_size=5: it shrinks by k // 2 = 2 pixels, to 6x6")

    def t_channels():
        for k, stride in ((3, 1), (3, 2)):
            valid = _random_valid(b, 3, 12, 12, gen, hole_rate=0.7)                # channels differ, mostly unknown
            out = update(valid, k, stride)
            _, expected = _reference_partial_conv(torch.zeros(b, 3, 12, 12), valid, torch.zeros(1, 3, k, k),
                                                  stride=stride)
            expect(valid, k, stride, None, out, expected,
                   f"a 3-channel valid whose channels differ ({describe(k, stride, None, valid)}): a window is valid "
                   f"when it sees a known element in any channel")

    return _run("mask_update", fn, [
        ("returns (B, 1, H', W') of 0 and 1 (stride 1 and 2, odd and even sides)", t_shape),
        ("matches PartialConv2d's mask update on random masks", t_reference),
        ("a hole bigger than the window shrinks by k // 2 per layer", t_shrink),
        ("multi-channel valid: a known element in any channel counts", t_channels),
    ], strict)


_PC_NO_RENORM = ("a convolution of X*M without the sum(1)/sum(M) rescaling: multiply each window's W^T (X * M) by "
                 "sum(1) / sum(M), where sum(1) = C_in*k*k is the window's size and sum(M) the number of known "
                 "elements it sees (over all C_in channels; the padding counts as unknown), then add the bias (eq. 1)")
_PC_RATIO_KK = ("the ratio computed per channel: sum(1) = k*k (one channel's window) divided by sum(M) counted over "
                "all C_in channels, C_in times too small: sum(1) is the whole window, C_in*k*k")
_PC_RATIO_ONE = ("sum(M) counted on one channel of M against sum(1) = C_in*k*k, C_in times too large: count the known "
                 "elements of every channel (a (B, 1, H, W) mask stands for C_in equal channels: C_in times its count)")
_PC_BIAS_SCALED = ("the bias multiplied by the ratio, (W^T (X * M) + b) * sum(1)/sum(M): rescale the convolution "
                   "first, then add b (eq. 1: W^T (X * M) * sum(1)/sum(M) + b)")
_PC_BIAS_EVERYWHERE = ("the bias added in windows that see no known pixel: where sum(M) = 0 the output is 0 (eq. 1), "
                       "so add b only where the new mask is 1 (b * new_valid), not everywhere")
_PC_X_NOT_MASKED = ("a convolution of X instead of X * M (x not multiplied by the mask): multiply x by valid before "
                    "the convolution, so that the values in the hole never reach the output")
_PC_PLAIN = ("a plain convolution F.conv2d(x, weight, bias): the mask is not used at all (eq. 1 convolves X * M and "
             "rescales by sum(1)/sum(M))")
_PC_PADDING_KNOWN = ("sum(1) counting only the window's pixels inside the image: the padded border is part of the "
                     "window and counts as unknown (zeros in M), so sum(1) = C_in*k*k everywhere and the ratio exceeds "
                     "1 at the border")

_PC_FLIPPED = ("a partial convolution of the HOLE: the hole/known convention is flipped, `valid` is 1 = KNOWN (the "
               "paper's M, the opposite of the course's hole masks): multiply x by valid itself, not by 1 - valid")


def _partial_conv_mistakes(x: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           stride: int, padding: int) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    """The usual wrong partial convolutions (the output only), each ``(why, make)``."""
    c_out, c_in, k = weight.shape[:3]
    x, w = x.detach().float(), weight.detach().float()
    m = valid.detach().float().expand(x.shape[0], c_in, -1, -1)                   # (B, C_in, H, W)
    ones = torch.ones(1, 1, k, k)

    def count(t: torch.Tensor) -> torch.Tensor:                                  # per window, (B, 1, H', W')
        return F.conv2d(t, ones, stride=stride, padding=padding)

    def ratio(window: torch.Tensor | float, cnt: torch.Tensor) -> torch.Tensor:
        return torch.where(cnt > 0, window / cnt.clamp_min(1.0), torch.zeros_like(cnt))

    total = count(m.sum(1, keepdim=True))                                         # sum(M)
    first = count(m[:, :1])
    inside = c_in * count(torch.ones_like(m[:, :1]))                              # sum(1) without the padding
    seen = (total > 0).float()
    full = ratio(float(c_in * k * k), total)
    raw = F.conv2d(x * m, w, None, stride=stride, padding=padding)                # W^T (X * M)
    plain = F.conv2d(x, w, None, stride=stride, padding=padding)
    b = torch.zeros(1, c_out, 1, 1) if bias is None else bias.detach().float().view(1, -1, 1, 1)

    def flipped() -> torch.Tensor:                                               # the right formula, M = 1 - valid
        hole = 1.0 - m
        cnt = count(hole.sum(1, keepdim=True))
        out = F.conv2d(x * hole, w, None, stride=stride, padding=padding) * ratio(float(c_in * k * k), cnt)
        return out + b * (cnt > 0).float()

    return [
        (_PC_NO_RENORM, lambda: raw + b),
        (_PC_NO_RENORM, lambda: raw + b * seen),
        (_PC_RATIO_KK, lambda: raw * ratio(float(k * k), total) + b * seen),
        (_PC_RATIO_ONE, lambda: raw * ratio(float(c_in * k * k), first) + b * (first > 0).float()),
        (_PC_BIAS_SCALED, lambda: (raw + b) * full),
        (_PC_BIAS_EVERYWHERE, lambda: raw * full + b),
        (_PC_X_NOT_MASKED, lambda: plain * full + b * seen),
        (_PC_PLAIN, lambda: plain + b),
        (_PC_PADDING_KNOWN, lambda: raw * ratio(inside, total) + b * seen),
        (_PC_FLIPPED, flipped),
    ]


def check_partial_conv(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-5) -> CheckResult:
    """Grade ``partial_conv(x, valid, weight, bias=None, stride=1, padding=None) -> (out, new_valid)``, a partial
    convolution with its mask update (eq. 1-2 of Liu et al. 2018, notebook 08): ``x`` ``(B, C_in, H, W)``, ``valid``
    ``(B, C_in or 1, H, W)`` of 0 / 1, **1 = known**; ``weight`` ``(C_out, C_in, k, k)``, ``bias`` ``(C_out,)`` or
    ``None``, ``padding`` default ``k // 2``; ``out`` ``(B, C_out, H', W')`` =
    ``W^T (X * M) * sum(1) / sum(M) + b`` where ``sum(M) > 0`` and 0 elsewhere (``sum(1) = C_in k k``, the padding
    counting as unknown); ``new_valid`` ``(B, 1, H', W')`` (or ``(B, C_out, H', W')`` with equal channels, as
    ``PartialConv2d``), 1 where ``sum(M) > 0``.

    Tests: shapes; ``out`` and ``new_valid`` against ``inpaint_utils.models.partial_conv.PartialConv2d`` (with
    ``weight`` / ``bias`` copied in) on random inputs and masks, a different hole per sample, one-channel and
    ``C_in``-channel masks, bias on and off, stride 1 and 2 (tolerance ``atol`` plus 1e-5 relative); a fully known
    input gives ``F.conv2d``'s output away from the border (only there: the padding counts as unknown, so the
    ratio exceeds 1 at the border); a window that sees no known pixel gives 0 (no bias) and ``new_valid`` 0;
    gradients reach ``x`` (never its unknown pixels), ``weight`` and ``bias``. A mismatch is diagnosed by computing
    the usual wrong versions: no ``sum(1)/sum(M)`` rescaling, the ratio per channel, the bias rescaled or added
    where nothing is seen, ``x`` not multiplied by the mask.
    """
    b, c_in, c_out, size = 2, 3, 4, 12
    rtol = 1e-5
    gen = torch.Generator().manual_seed(1804)

    def params(k: int, with_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = torch.randn(c_out, c_in, k, k, generator=gen) / math.sqrt(c_in * k * k)
        bias = torch.randn(c_out, generator=gen) if with_bias else None
        return weight, bias

    def run(x, valid, weight, bias=None, stride=1, padding=None) -> tuple[torch.Tensor, Any]:
        kwargs: dict[str, Any] = {"bias": bias, "stride": stride}
        if padding is not None:
            kwargs["padding"] = padding
        res = _call(fn, x, valid, weight, **kwargs)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise _Fail(f"expected a pair (out, new_valid), got {type(res).__name__}"
                        + (f" of length {len(res)}" if isinstance(res, (tuple, list)) else ""))
        out, new_valid = res
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"out must be a torch.Tensor, got {type(out).__name__}")
        return out, new_valid

    def one_channel(new_valid: Any, want: tuple[int, int, int]) -> torch.Tensor:
        """The student's new_valid as ``(B, 1, H', W')`` float (``C_out`` equal channels accepted)."""
        n, h, w = want
        if not isinstance(new_valid, torch.Tensor):
            raise _Fail(f"new_valid must be a torch.Tensor, got {type(new_valid).__name__}")
        if new_valid.ndim != 4 or new_valid.shape[0] != n or tuple(new_valid.shape[-2:]) != (h, w) \
                or new_valid.shape[1] not in (1, c_out):
            raise _Fail(f"new_valid must have shape ({n}, 1, {h}, {w}) (or ({n}, {c_out}, {h}, {w}), one copy per "
                        f"output channel), got {tuple(new_valid.shape)}")
        nv = new_valid.detach().float()
        if not torch.equal(nv, nv[:, :1].expand_as(nv)):
            raise _Fail("new_valid's channels differ: the updated mask is the same for every output channel "
                        "(sum(M) counts the whole window, all input channels)")
        return nv[:, :1]

    def compare(out: torch.Tensor, expected: torch.Tensor, what: str, x, valid, weight, bias, stride, padding) -> None:
        got = out.detach().float()
        if got.shape != expected.shape:
            raise _Fail(f"{what}: out has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
        if not bool(torch.isfinite(got).all()):
            raise _Fail(f"{what}: out holds NaN or inf: where sum(M) = 0 the ratio sum(1)/sum(M) divides by zero; set "
                        f"it to 0 there (torch.where(count > 0, window / count.clamp(min=1), 0))")
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            err = float((got - expected).abs().max())
            p = weight.shape[-1] // 2 if padding is None else padding
            raise _Fail(f"{what}: out differs from the expected output by up to {err:.3g} (allowed atol {atol:g}, rtol "
                        f"{rtol:g})." + _which_variant(got, _partial_conv_mistakes(x, valid, weight, bias, stride, p),
                                                       atol=atol, rtol=1e-4))

    def compare_mask(new_valid: Any, expected: torch.Tensor, what: str, valid, k, stride, padding) -> None:
        nv = one_channel(new_valid, (expected.shape[0], *expected.shape[-2:]))
        if not torch.equal(nv, expected):
            p = k // 2 if padding is None else padding
            wrong = int((nv != expected).sum())
            raise _Fail(f"{what}: new_valid differs from the expected mask at {wrong} of {nv.numel()} positions "
                        f"(1 where the window sees at least one known element, sum(M) > 0)."
                        + _which_variant(nv, _mask_update_mistakes(valid, k, stride, p)))

    def t_shapes():
        for h, w, k, stride, padding in ((12, 12, 3, 1, None), (11, 13, 3, 2, None), (12, 12, 5, 2, None),
                                         (12, 12, 3, 1, 0)):
            x = torch.randn(b, c_in, h, w, generator=gen)
            weight, bias = params(k)
            out, new_valid = run(x, _random_valid(b, 1, h, w, gen), weight, bias, stride, padding)
            p = k // 2 if padding is None else padding
            oh, ow = _out_side(h, k, stride, p), _out_side(w, k, stride, p)
            what = f"kernel_size={k}, stride={stride}, padding={'default' if padding is None else padding} on {h}x{w}"
            if tuple(out.shape) != (b, c_out, oh, ow):
                hint = ""
                if tuple(out.shape[-2:]) == (_out_side(h, k, stride, 0), _out_side(w, k, stride, 0)):
                    hint = " That is the size without padding: pad by `padding` (default k // 2)."
                raise _Fail(f"{what}: out must have shape {(b, c_out, oh, ow)} (B, C_out, H', W'), got "
                            f"{tuple(out.shape)}.{hint}")
            if out.dtype != x.dtype:
                raise _Fail(f"out must have x's dtype {x.dtype}, got {out.dtype}")
            one_channel(new_valid, (b, oh, ow))

    def reference_tests(with_bias: bool) -> None:
        for channels, stride, k in ((1, 1, 3), (c_in, 2, 3), (1, 2, 5), (c_in, 1, 5)):
            x = torch.randn(b, c_in, size, size, generator=gen)
            valid = _random_valid(b, channels, size, size, gen)
            weight, bias = params(k, with_bias)
            copies = x.clone(), valid.clone(), weight.clone()
            out, new_valid = run(x, valid, weight, bias, stride)
            for name, before, after in zip(("x", "valid", "weight"), copies, (x, valid, weight)):
                _unchanged(name, before, after)
            ref_out, ref_valid = _reference_partial_conv(x, valid, weight, bias, stride)
            what = (f"random x and masks, a different hole per sample (valid {tuple(valid.shape)}, kernel_size={k}, "
                    f"stride={stride}, bias {'on' if with_bias else 'off'})")
            compare(out, ref_out, what, x, valid, weight, bias, stride, None)
            compare_mask(new_valid, ref_valid, what, valid, k, stride, None)

    def t_reference_bias():
        reference_tests(True)

    def t_reference_no_bias():
        reference_tests(False)

    def t_fully_known():
        for stride in (1, 2):
            k = 3
            x = torch.randn(b, c_in, size, size, generator=gen)
            valid = torch.ones(b, 1, size, size)
            weight, bias = params(k)
            out, new_valid = run(x, valid, weight, bias, stride)
            plain = F.conv2d(x, weight, bias, stride=stride, padding=k // 2)
            if tuple(out.shape) != tuple(plain.shape):
                raise _Fail(f"out has shape {tuple(out.shape)}, expected {tuple(plain.shape)} (see the shape test)")
            inner = F.conv2d(torch.ones(1, 1, size, size), torch.ones(1, 1, k, k), stride=stride,
                             padding=k // 2)[0, 0] == k * k                       # windows inside the image
            got = out.detach().float()[..., inner]
            if not torch.allclose(got, plain[..., inner], atol=atol, rtol=rtol):
                err = float((got - plain[..., inner]).abs().max())
                raise _Fail(f"a fully known input (valid = 1 everywhere, stride {stride}): away from the border, where "
                            f"the whole window lies inside the image, sum(M) = sum(1) and out must be F.conv2d(x, "
                            f"weight, bias) (the border is not tested here: its padding counts as unknown, so the "
                            f"ratio exceeds 1 there); it differs by up to {err:.3g}."
                            + _which_variant(out, _partial_conv_mistakes(x, valid, weight, bias, stride, k // 2),
                                             atol=atol, rtol=1e-4))
            nv = one_channel(new_valid, (b, *plain.shape[-2:]))
            if not bool((nv == 1).all()):
                raise _Fail(f"a fully known input (stride {stride}): new_valid must be 1 everywhere (every window, "
                            f"even at the border, sees known pixels), found {int((nv != 1).sum())} zeros")

    def t_empty_window():
        x = torch.randn(1, c_in, 16, 16, generator=gen) * 10.0                    # large values in the hole too
        valid = torch.ones(1, 1, 16, 16)
        valid[..., 3:13, 3:13] = 0.0                                              # a 10x10 hole
        weight, _ = params(3)
        bias = torch.linspace(0.5, 2.0, c_out)                                    # non-zero
        out, new_valid = run(x, valid, weight, bias)
        what = ("a 10x10 hole and kernel_size=3: the windows centred on its 8x8 interior see no known pixel, "
                "so there out must be 0 (no bias: eq. 1) and new_valid 0")
        if tuple(out.shape) != (1, c_out, 16, 16):
            raise _Fail(f"out has shape {tuple(out.shape)}, expected {(1, c_out, 16, 16)} (see the shape test)")
        got = out.detach().float()
        if not bool(torch.isfinite(got).all()):
            raise _Fail(f"{what}; out holds NaN or inf: sum(1)/sum(M) divides by zero where sum(M) = 0, set the ratio "
                        f"to 0 there (torch.where(count > 0, window / count.clamp(min=1), 0))")
        interior = got[..., 4:12, 4:12]
        if float(interior.abs().max()) > atol:
            hint = _which_variant(out, _partial_conv_mistakes(x, valid, weight, bias, 1, 1), atol=atol, rtol=1e-4)
            if not hint and torch.allclose(interior, bias.view(1, -1, 1, 1).expand_as(interior), atol=1e-4):
                hint = f" Your output there is the bias: {_PC_BIAS_EVERYWHERE}."
            raise _Fail(f"{what}; found values up to {float(interior.abs().max()):.3g}.{hint}")
        expected = torch.ones(1, 1, 16, 16)
        expected[..., 4:12, 4:12] = 0.0
        compare_mask(new_valid, expected, what, valid, 3, 1, None)

    def t_gradient():
        x = torch.randn(b, c_in, size, size, generator=gen).requires_grad_(True)
        valid = _random_valid(b, 1, size, size, gen)
        weight, bias = params(3)
        weight.requires_grad_(True)
        bias.requires_grad_(True)
        out, _ = run(x, valid, weight, bias)
        if not out.requires_grad:
            raise _Fail("no gradient reaches x or weight: the partial convolution is a layer of the network, trained "
                        "end to end (keep every step a torch operation on x and weight, no .detach() / numpy)")
        out.square().sum().backward()
        for name, t in (("x", x), ("weight", weight), ("bias", bias)):
            if t.grad is not None and not bool(torch.isfinite(t.grad).all()):
                raise _Fail(f"{name}'s gradient holds NaN or inf: a division by sum(M) = 0 (even one that torch.where "
                            f"discards afterwards) poisons the backward pass; divide by count.clamp(min=1) and set "
                            f"the ratio to 0 where count = 0")
            if t.grad is None or not bool(t.grad.abs().sum() > 0):
                raise _Fail(f"{name} gets no gradient")
        unknown = (valid == 0).expand_as(x)
        if bool(x.grad[unknown].abs().max() > 0):
            raise _Fail("x's gradient is non-zero on unknown pixels (valid = 0): their values reach the output; "
                        "multiply x by valid before the convolution")

    return _run("partial_conv", fn, [
        ("returns (out, new_valid) of the right shapes", t_shapes),
        ("matches PartialConv2d with a bias (stride 1 and 2, 1 and C_in mask channels)", t_reference_bias),
        ("matches PartialConv2d without a bias", t_reference_no_bias),
        ("fully known input: F.conv2d's output away from the border", t_fully_known),
        ("a window that sees no known pixel gives 0 and new_valid 0", t_empty_window),
        ("gradients reach x (not its unknown pixels), weight and bias", t_gradient),
    ], strict)
