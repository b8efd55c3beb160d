"""Training losses of the Context Encoder (and the adversarial terms the other GANs reuse).

Used by notebooks ``02_context_encoder`` and ``03_cascade_ce_nsd`` through
:mod:`inpaint_utils.train`. Sources: seed 000, equations (1)-(4) (joint loss
``L_G = lambda_rec L_rec + lambda_adv L_adv``, non-saturating generator term, discriminator BCE);
Pathak et al. 2016 (arXiv:1604.07379), section 3.2, and the authors' Torch code (``train.lua``) for
the details the papers leave out: ``lambda_rec = 0.999``, ``lambda_adv = 0.001`` (``wtl2``), the
10x weight on the 4-px overlap ring (``overlapL2Weight``, :func:`inpaint_utils.masks.overlap_weights`),
and how the weighted L2 is normalised (:func:`masked_l2`).

Adversarial terms take **logits** (the discriminators end without a sigmoid) and use
``binary_cross_entropy_with_logits``: ``-log sigmoid(l)`` is evaluated as ``softplus(-l)``, which
neither overflows nor saturates to ``log 0 = -inf`` when the discriminator is confident, unlike
``BCELoss(sigmoid(l))`` (the authors' ``nn.Sigmoid`` + ``nn.BCECriterion``), which PyTorch clamps
at ``log >= -100`` with zero gradient there. Every loss is computed in at least float32 (inputs
in bfloat16 / float16 from autocast are upcast first) and is a 0-d tensor.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .validation import check_image

__all__ = [
    "NORMALIZATIONS",
    "masked_l2",
    "generator_adversarial_bce",
    "discriminator_bce",
    "ce_generator_loss",
]

#: Accepted values of ``normalize`` in :func:`masked_l2`.
NORMALIZATIONS = ("elements", "weights", "sum")


def _check_float(x: torch.Tensor, name: str) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor, got {type(x).__name__}")
    if not x.is_floating_point():
        raise TypeError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if x.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(x.shape)}")


def _loss_dtype(x: torch.Tensor) -> torch.dtype:
    """Losses are summed in at least float32: half-precision sums over a batch lose digits."""
    return torch.promote_types(x.dtype, torch.float32)


def _check_finite(x: torch.Tensor, name: str) -> None:
    if not bool(torch.isfinite(x.detach()).all()):
        raise ValueError(f"{name} contains NaN or inf values")


def masked_l2(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
              normalize: str = "elements") -> torch.Tensor:
    """Weighted squared error, the Context Encoder's reconstruction loss ``L_rec``; a 0-d tensor.

    ``pred``, ``target``: ``(B, C, H, W)`` (same shape); ``weights``: ``(B or 1, 1, H, W)`` (or
    ``(B or 1, C, H, W)``), finite, >= 0, typically ``overlap_weights(mask, 4, 10)``: 0 on known
    pixels, 1 inside the hole, 10 on its 4-px border ring. With ``S = sum(weights * (pred - target)**2)``
    over every element (weights broadcast over channels):

    * ``"elements"`` (default; **the authors'**): ``S / #{elements with weight > 0}``. The authors'
      ``train.lua`` takes ``nn.MSECriterion`` (the mean over all ``B x 3 x 64 x 64`` predicted
      elements) and multiplies its *gradient* by the weight matrix (``wtl2`` on the inner 56x56,
      ``10 wtl2`` on the ring), which is the gradient of ``wtl2 * S / N``. Dividing by the number of
      weighted elements gives exactly that ``N`` for the centre window, and for a full-image output
      with zero weight outside the hole it is the mean over the hole (not diluted by the known area).
    * ``"weights"``: ``S / sum(weights)`` (weights broadcast over channels): a weighted mean, so the
      ring weight only shifts emphasis and the scale is that of a plain MSE. For the 64x64 window
      with overlap 4, ``sum(w) = 3 (56^2 + 10 (64^2 - 56^2)) B = 3 * 12736 B`` versus ``N = 3 * 4096 B``:
      this loss is 3.11x smaller than the authors', which changes the balance against
      ``lambda_adv`` by that factor.
    * ``"sum"``: ``S``.

    Note (DESIGN.md "Peers"): the popular PyTorch port multiplies the weight matrix by ``wtl2``
    *and* the mean by ``wtl2`` again (``0.999**2``), so its effective ``lambda_rec`` differs from the
    authors'; here ``lambda_rec`` is applied once, in :func:`ce_generator_loss`.
    """
    _check_float(pred, "pred")
    _check_float(target, "target")
    _check_float(weights, "weights")
    if normalize not in NORMALIZATIONS:
        raise ValueError(f"normalize must be one of {NORMALIZATIONS}, got {normalize!r}")
    if pred.ndim != 4:
        raise ValueError(f"pred must have shape (B, C, H, W), got {tuple(pred.shape)}")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    b, c, h, w = pred.shape
    if (weights.ndim != 4 or weights.shape[0] not in (1, b) or weights.shape[1] not in (1, c)
            or tuple(weights.shape[-2:]) != (h, w)):
        raise ValueError(f"weights must have shape (B or 1, 1 or C, H, W) = ({b} or 1, 1 or {c}, {h}, {w}), "
                         f"got {tuple(weights.shape)}")
    _check_finite(pred, "pred")
    _check_finite(target, "target")
    _check_finite(weights, "weights")
    if bool((weights.detach() < 0).any()):
        raise ValueError(f"weights must be >= 0, got a minimum of {float(weights.detach().min()):.4g}")
    dtype = _loss_dtype(pred)                      # at least float32, also under autocast (bf16 / fp16)
    weights = weights.to(dtype).expand(b, c, h, w)                               # (B, C, H, W)
    total = (weights * (pred.to(dtype) - target.to(dtype)).square()).sum()
    if normalize == "sum":
        return total
    denom = weights.sum() if normalize == "weights" else (weights > 0).sum().to(dtype)
    if bool(denom.detach() == 0):
        raise ValueError("weights are all zero: there is no pixel to reconstruct (check the mask; 1 = hole)")
    return total / denom


def generator_adversarial_bce(d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Seed 000 eq. (3), the non-saturating generator term ``L_adv = -E[log D(G(x_masked))]``:
    BCE of the discriminator's logits on generated images against the label "real" (1), the
    authors' ``criterion:forward(output, real_label)``. Mean over the logits; a 0-d tensor."""
    _check_float(d_fake_logits, "d_fake_logits")
    _check_finite(d_fake_logits, "d_fake_logits")
    logits = d_fake_logits.to(_loss_dtype(d_fake_logits))
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def discriminator_bce(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Seed 000 eq. (4), ``L_D = -E[log D(x)] - E[log(1 - D(G(x_masked)))]``: BCE of real logits
    against 1 plus BCE of fake logits against 0, each a mean over its batch, summed as the
    authors' ``errD = errD_real + errD_fake``. Detach the fakes yourself when training D. 0-d tensor."""
    _check_float(d_real_logits, "d_real_logits")
    _check_float(d_fake_logits, "d_fake_logits")
    _check_finite(d_real_logits, "d_real_logits")
    _check_finite(d_fake_logits, "d_fake_logits")
    real_logits = d_real_logits.to(_loss_dtype(d_real_logits))
    fake_logits = d_fake_logits.to(_loss_dtype(d_fake_logits))
    real = F.binary_cross_entropy_with_logits(real_logits, torch.ones_like(real_logits))
    fake = F.binary_cross_entropy_with_logits(fake_logits, torch.zeros_like(fake_logits))
    return real + fake


def ce_generator_loss(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
                      d_fake_logits: torch.Tensor | None, lambda_rec: float = 0.999, lambda_adv: float = 0.001,
                      normalize: str = "elements", units: str = "tanh") -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """Seed 000 eq. (1): ``L_G = lambda_rec L_rec + lambda_adv L_adv`` with the authors' 0.999 / 0.001.

    ``pred``, ``target``: images in ``[0, 1]``; ``weights``: see :func:`masked_l2`;
    ``d_fake_logits``: the discriminator on ``pred`` (not detached), or ``None`` for a
    reconstruction-only run (then ``L_adv`` is 0 and ``lambda_adv`` unused).

    ``units="tanh"`` (default) measures ``L_rec`` in the generator's ``[-1, 1]`` range, as the
    authors' code does (their images are in ``[-1, 1]``): 4x the value on ``[0, 1]`` images.
    ``units="unit"`` measures it on ``[0, 1]``. The choice fixes the balance between the two terms.

    Returns ``(total, parts)``, ``parts`` = detached 0-d tensors ``{"rec", "adv", "total"}`` (``rec``
    and ``adv`` unweighted) for logging without a device sync.
    """
    if units not in ("tanh", "unit"):
        raise ValueError(f"units must be 'tanh' ([-1, 1], the authors') or 'unit' ([0, 1]), got {units!r}")
    for name, value in (("lambda_rec", lambda_rec), ("lambda_adv", lambda_adv)):
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value >= 0:
            raise ValueError(f"{name} must be a number >= 0, got {value!r}")
    check_image(pred, "pred")
    check_image(target, "target")
    rec = masked_l2(pred, target, weights, normalize=normalize)
    if units == "tanh":
        rec = rec * 4.0                    # (2 p - 1) - (2 t - 1) = 2 (p - t): squared, 4x
    if d_fake_logits is None:
        adv = rec.new_zeros(())
        total = lambda_rec * rec
    else:
        adv = generator_adversarial_bce(d_fake_logits)
        total = lambda_rec * rec + lambda_adv * adv
    return total, {"rec": rec.detach(), "adv": adv.detach(), "total": total.detach()}
