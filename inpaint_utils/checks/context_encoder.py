"""Notebook 02's graded exercise (the Context Encoder of Pathak et al. 2016): :func:`check_ce_loss`, the
generator's joint loss ``0.999 L_rec + 0.001 L_adv``, against :func:`inpaint_utils.losses.ce_generator_loss`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .runner import CheckResult, _as_float, _call, _close, _diagnose, _Fail, _fn_name, _reference, _run, _unchanged

__all__ = ["check_ce_loss"]

LAMBDA_REC, LAMBDA_ADV = 0.999, 0.001


def _ce_mistakes(pred, target, weights, logits) -> dict[str, float]:
    """Values of the usual wrong joint losses on these inputs (``logits`` may be ``None``)."""
    b, c, h, w = pred.shape
    wt = weights.expand(b, c, h, w)
    s = float((wt * (pred - target).square()).sum())
    n = float((wt > 0).sum())
    rec = s / n
    hole = (wt > 0).float()
    plain = float((hole * (pred - target).square()).sum()) / n
    if logits is None:
        adv = adv0 = adv_w = adv_sat = 0.0
    else:
        adv = float(F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits)))
        adv0 = float(F.binary_cross_entropy_with_logits(logits, torch.zeros_like(logits)))
        adv_w = float(-logits.mean())
        adv_sat = float(-F.softplus(logits).mean())                                    # mean log(1 - D(G(z)))
    return {
        "the weights swapped: 0.001 L_rec + 0.999 L_adv; the reconstruction carries the loss (lambda_rec = 0.999) "
        "and the adversarial term only sharpens it (lambda_adv = 0.001)": LAMBDA_ADV * rec + LAMBDA_REC * adv,
        "the L2 without the overlap weights (a plain mean over the hole): multiply each squared error by its "
        "weight (10 on the 4-px ring, 1 inside the hole)": LAMBDA_REC * plain + LAMBDA_ADV * adv,
        "L_rec divided by sum(weights) (a weighted mean, 3x smaller with the ring): divide by the NUMBER of "
        "weighted elements, C * #(weights > 0), as the authors' MSE over the predicted pixels does":
            LAMBDA_REC * s / float(wt.sum()) + LAMBDA_ADV * adv,
        "L_rec averaged over every element, weight 0 included (the hole's error diluted by the known area): "
        "divide by the number of weighted elements, C * #(weights > 0)": LAMBDA_REC * s / wt.numel() + LAMBDA_ADV * adv,
        "lambda_rec applied twice (0.999**2, the bug of a popular PyTorch port)": LAMBDA_REC ** 2 * rec + LAMBDA_ADV * adv,
        "L_rec measured on [-1, 1] images (4x): here pred and target are in [0, 1], use them as they are":
            LAMBDA_REC * 4 * rec + LAMBDA_ADV * adv,
        "the two terms unweighted (L_rec + L_adv): weight them 0.999 and 0.001": rec + adv,
        "the reconstruction term alone: add 0.001 times the adversarial term": LAMBDA_REC * rec,
        "L_adv with the label 'fake' (0): the generator wants D to say 'real', BCE(logits, 1)":
            LAMBDA_REC * rec + LAMBDA_ADV * adv0,
        "L_adv as the saturating minimax term mean log(1 - D(G(z))): use the non-saturating -log D(G(z)) = "
        "BCE(logits, 1)": LAMBDA_REC * rec + LAMBDA_ADV * adv_sat,
        "L_adv as -mean(logits) (a WGAN critic's term): the CE's discriminator is a classifier, use "
        "BCE(logits, 1) (binary_cross_entropy_with_logits)": LAMBDA_REC * rec + LAMBDA_ADV * adv_w,
    }


def check_ce_loss(fn: Callable[..., Any], *, strict: bool = False, rtol: float = 1e-4) -> CheckResult:
    """Grade ``ce_loss(pred, target, weights, d_fake_logits) -> 0-d tensor``, the Context Encoder generator's
    joint loss (Pathak et al. 2016, eq. 5; the authors' ``wtl2``): ``0.999 L_rec + 0.001 L_adv`` with

    * ``L_rec = sum(weights * (pred - target)**2) / (C * #(weights > 0))``, the masked L2 with the overlap
      weights (``masks.overlap_weights``: 0 known, 1 in the hole, 10 on its 4-px ring), images in ``[0, 1]``;
    * ``L_adv = BCE(d_fake_logits, 1)``, the non-saturating generator term on the discriminator's logits;
      ``d_fake_logits=None`` (a reconstruction-only run): ``L_adv = 0``.

    The reference is :func:`inpaint_utils.losses.ce_generator_loss` with ``units="unit"``. Tests: a 0-d tensor;
    the centre hole of the authors' model with its ring, against the reference; a random batch with random holes
    (the mistake a wrong value matches is named: the weights swapped, no overlap weights, the wrong normalisation,
    the label 'fake', ...); ``d_fake_logits=None``; gradients reach ``pred`` (only where the weight is non-zero)
    and the logits; inputs left unchanged.
    """
    gen = torch.Generator().manual_seed(2016)
    size = 32

    def reference(pred, target, weights, logits) -> float:
        loss = _reference("losses", "ce_generator_loss")
        return float(loss(pred, target, weights, logits, lambda_rec=LAMBDA_REC, lambda_adv=LAMBDA_ADV,
                          units="unit")[0])

    def weights_of(mask):
        return _reference("masks", "overlap_weights")(mask, 4, 10.0)

    def centre_case():
        from ..masks import make_mask

        mask = make_mask("center", size, 0.25, batch=2)                               # a 16x16 centre hole
        target = torch.rand(2, 3, size, size, generator=gen)
        pred = torch.rand(2, 3, size, size, generator=gen)
        logits = torch.randn(2, 1, generator=gen) * 2
        return pred, target, weights_of(mask), logits

    def random_case():
        from ..masks import make_mask

        mask = make_mask("square", size, (0.1, 0.3), batch=3, generator=gen)           # a hole per image
        target = torch.rand(3, 3, size, size, generator=gen)
        pred = (target + 0.3 * torch.randn(3, 3, size, size, generator=gen)).clamp(0, 1)
        logits = torch.randn(3, 1, generator=gen) * 3
        return pred, target, weights_of(mask), logits

    def value_of(*args) -> float:
        return _as_float(_call(fn, *args), f"{_fn_name(fn)}(pred, target, weights, d_fake_logits)")

    def compare(what, pred, target, weights, logits):
        expected = reference(pred, target, weights, logits)
        got = value_of(pred, target, weights, logits)
        if not _close(got, expected, rtol, 1e-7):
            raise _Fail(f"{what}: expected {expected:.6g} (losses.ce_generator_loss, units='unit'), got {got:.6g}."
                        + _diagnose(got, _ce_mistakes(pred, target, weights, logits), rtol=1e-4))

    def t_scalar():
        out = _call(fn, *centre_case())
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor (a loss to call .backward() on), got {type(out).__name__}")
        if out.ndim != 0:
            raise _Fail(f"expected a 0-d tensor, got shape {tuple(out.shape)}: reduce with .sum() / .mean()")
        if not out.is_floating_point():
            raise _Fail(f"expected a float tensor, got {out.dtype}")

    def t_centre():
        compare("the 16x16 centre hole with its 4-px ring weighted 10 (the authors' model)", *centre_case())

    def t_random():
        compare("3 images, square holes of 10-30 % at random places", *random_case())

    def t_no_discriminator():
        pred, target, weights, _ = random_case()
        compare("d_fake_logits=None (reconstruction only): 0.999 L_rec", pred, target, weights, None)

    def t_gradient():
        pred, target, weights, logits = random_case()
        pred = pred.clone().requires_grad_(True)
        logits = logits.clone().requires_grad_(True)
        out = _call(fn, pred, target, weights, logits)
        if not isinstance(out, torch.Tensor) or not out.requires_grad:
            raise _Fail("no gradient reaches pred or the logits: compute the loss with torch operations (no .item(), "
                        ".detach(), float() or numpy), otherwise the generator cannot train on it")
        out.reshape(()).backward()
        if pred.grad is None or logits.grad is None:
            raise _Fail(f"no gradient for {'pred' if pred.grad is None else 'd_fake_logits'}: both terms must "
                        "depend on their input")
        off = (weights == 0).expand_as(pred)
        if bool(pred.grad[off].abs().max() > 0):
            raise _Fail("the gradient is non-zero where the weight is 0 (known pixels): L_rec must only see the "
                        "weighted pixels")
        if not bool(logits.grad.abs().max() > 0):
            raise _Fail("the logits get a zero gradient: the adversarial term is missing or detached")

    def t_inputs_unchanged():
        args = random_case()
        copies = [a.clone() for a in args]
        _call(fn, *args)
        for name, before, after in zip(("pred", "target", "weights", "d_fake_logits"), copies, args):
            _unchanged(name, before, after)

    return _run("ce_loss", fn, [
        ("returns a 0-d float tensor", t_scalar),
        ("centre hole with the overlap ring, against the reference", t_centre),
        ("random batch, a different hole per image", t_random),
        ("d_fake_logits=None: the reconstruction term alone", t_no_discriminator),
        ("gradients reach pred (weighted pixels only) and the logits", t_gradient),
        ("inputs are left unchanged", t_inputs_unchanged),
    ], strict)
