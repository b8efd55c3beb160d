"""Training losses of the Context Encoder and DeepFill v1 (and the adversarial terms the other GANs reuse).

Used by notebooks ``02_context_encoder`` and ``03_cascade_ce_nsd`` through
:mod:`inpaint_utils.train`. Sources: Nanavati & Patel, equations (1)-(4) (joint loss
``L_G = lambda_rec L_rec + lambda_adv L_adv``, non-saturating generator term, discriminator BCE);
Pathak et al. 2016 (arXiv:1604.07379), section 3.2, and the authors' Torch code (``train.lua``) for
the details the papers leave out: ``lambda_rec = 0.999``, ``lambda_adv = 0.001`` (``wtl2``), the
10x weight on the 4-px overlap ring (``overlapL2Weight``, :func:`inpaint_utils.masks.overlap_weights`),
and how the weighted L2 is normalised (:func:`masked_l2`).

DeepFill v1 (Yu et al. 2018, arXiv:1801.07892; Biradar et al.'s Table I; notebook ``05_contextual_attention``):
the spatially discounted L1 (:func:`spatial_discount_weights` with :func:`masked_l1`, ``gamma`` 0.9) and
WGAN-GP (:func:`wgan_critic_loss`, :func:`wgan_generator_loss`, :func:`gradient_penalty`, ``lambda`` 10).

Adversarial terms take **logits** (the discriminators end without a sigmoid) and use
``binary_cross_entropy_with_logits``: ``-log sigmoid(l)`` is evaluated as ``softplus(-l)``, which
neither overflows nor saturates to ``log 0 = -inf`` when the discriminator is confident, unlike
``BCELoss(sigmoid(l))`` (the authors' ``nn.Sigmoid`` + ``nn.BCECriterion``), which PyTorch clamps
at ``log >= -100`` with zero gradient there. Every loss is computed in at least float32 (inputs
in bfloat16 / float16 from autocast are upcast first) and is a 0-d tensor.

Partial convolutions (Liu et al. 2018, arXiv:1804.07723, section 3.4; :mod:`inpaint_utils.models.partial_conv`):
:func:`pconv_loss` with the paper's weights :data:`PCONV_LOSS_WEIGHTS` (1, 6, 0.05, 120, 0.1), built from
:func:`perceptual_loss`, :func:`style_loss` (:func:`gram_matrix`, normalised by ``C H W``) and
:func:`dilated_hole_tv`, on the features of :class:`VGG16Features` (pool1, pool2, pool3 of torchvision's
ImageNet VGG-16; offline from ``$INPAINT_VGG16``; ``weights="random"`` in tests) or, where VGG-16's weights are
not to be had, of :class:`SqueezeNetFeatures` (SqueezeNet 1.1's ImageNet features, LPIPS's backbone, available
offline): :func:`feature_network` makes the choice (``"vgg16"``, ``"squeeze"``, ``"auto"``). The perceptual and
style losses serve any task.

The substitute beside the paper (Liu et al. 2018, section 3.4)::

    stage   VGG-16 (the paper's Psi_p)         SqueezeNet 1.1 (ours, offline)
    1/2     pool1     64 ch   features.4       conv1 + ReLU   64 ch   features.1 (3x3 s2, no padding)
    1/4     pool2    128 ch   features.9       fire3         128 ch   features.4 (after a 3x3 s2 max-pool)
    1/8     pool3    256 ch   features.16      fire5         256 ch   features.7 (after a 3x3 s2 max-pool)

the outputs of the same three stages LPIPS takes from SqueezeNet (its slices 1-3): the same widths and the same
resolutions (within a pixel: SqueezeNet's strided layers pad nothing, 64 px gives 31, 15, 7). Both take
ImageNet-normalised input. The Gram matrices are normalised as the paper's, ``K_p = 1 / (C_p H_p W_p)`` of each
map (:func:`gram_matrix`), and the loss weights (0.05, 120) are the paper's; they were set for VGG-16's
activations, and how SqueezeNet's compare was not measured here (no VGG-16 weights): a result trained with
the substitute is labelled with it (``loss_features`` in its checkpoint and results), never as the paper's.
"""
from __future__ import annotations

import math
import os
from typing import Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from . import pretrained
from .pretrained import VGG16_FILENAME
from .validation import check_image

__all__ = [
    "NORMALIZATIONS",
    "masked_l2",
    "masked_l1",
    "generator_adversarial_bce",
    "discriminator_bce",
    "ce_generator_loss",
    "spatial_discount_weights",
    "wgan_critic_loss",
    "wgan_generator_loss",
    "gradient_penalty",
    "VGG16_FILENAME",
    "VGG16Features",
    "SqueezeNetFeatures",
    "FEATURE_CHOICES",
    "feature_network",
    "gram_matrix",
    "perceptual_loss",
    "style_loss",
    "dilated_hole_tv",
    "PCONV_LOSS_WEIGHTS",
    "pconv_loss_weights",
    "pconv_loss",
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


def _weighted_error(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor, normalize: str,
                    power: int) -> torch.Tensor:
    """``sum(weights * |pred - target| ** power)`` (power 1 or 2), normalised as :func:`masked_l2` says."""
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
    diff = pred.to(dtype) - target.to(dtype)
    total = (weights * (diff.square() if power == 2 else diff.abs())).sum()
    if normalize == "sum":
        return total
    denom = weights.sum() if normalize == "weights" else (weights > 0).sum().to(dtype)
    if bool(denom.detach() == 0):
        raise ValueError("weights are all zero: there is no pixel to reconstruct (check the mask; 1 = hole)")
    return total / denom


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

    Note (docs/conventions.md, "Notes from the public implementations"): the popular PyTorch port multiplies the weight matrix by ``wtl2``
    *and* the mean by ``wtl2`` again (``0.999**2``), so its effective ``lambda_rec`` differs from the
    authors'; here ``lambda_rec`` is applied once, in :func:`ce_generator_loss`.
    """
    return _weighted_error(pred, target, weights, normalize, power=2)


def generator_adversarial_bce(d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Nanavati & Patel eq. (3), the non-saturating generator term ``L_adv = -E[log D(G(x_masked))]``:
    BCE of the discriminator's logits on generated images against the label "real" (1), the
    authors' ``criterion:forward(output, real_label)``. Mean over the logits; a 0-d tensor."""
    _check_float(d_fake_logits, "d_fake_logits")
    _check_finite(d_fake_logits, "d_fake_logits")
    logits = d_fake_logits.to(_loss_dtype(d_fake_logits))
    return F.binary_cross_entropy_with_logits(logits, torch.ones_like(logits))


def discriminator_bce(d_real_logits: torch.Tensor, d_fake_logits: torch.Tensor) -> torch.Tensor:
    """Nanavati & Patel eq. (4), ``L_D = -E[log D(x)] - E[log(1 - D(G(x_masked)))]``: BCE of real logits
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
    """Nanavati & Patel eq. (1): ``L_G = lambda_rec L_rec + lambda_adv L_adv`` with the authors' 0.999 / 0.001.

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


# --------------------------------------------------------------------------------------------
# DeepFill v1: spatially discounted L1 and WGAN-GP
# --------------------------------------------------------------------------------------------
def masked_l1(pred: torch.Tensor, target: torch.Tensor, weights: torch.Tensor,
              normalize: str = "elements") -> torch.Tensor:
    """Weighted absolute error ``sum(weights * |pred - target|)``, normalised as in :func:`masked_l2`
    (default ``"elements"``: divided by the number of elements with a non-zero weight). With the
    :func:`spatial_discount_weights` of a mask it is DeepFill's discounted L1 over the hole (v1: the mean
    over the hole's patch); with ``1 - mask`` the mean L1 over the known pixels (v1's ``ae_loss``)."""
    return _weighted_error(pred, target, weights, normalize, power=1)


def spatial_discount_weights(mask: torch.Tensor, gamma: float = 0.9) -> torch.Tensor:
    """DeepFill's spatial discounting (Yu et al. 2018, section 3.1): every hole pixel gets weight
    ``gamma ** l``, ``l`` the number of pixel rings between it and the known region; known pixels get 0.
    ``(B, 1, H, W)``.

    ``l`` counts chessboard (8-neighbourhood) steps minus one, so a hole pixel touching the known region
    has ``l = 0`` (weight ``gamma ** 0 = 1``, as the v1 code's border rows) and, in a square hole, ``l``
    grows by one per ring towards the centre. The image border is not a known pixel. The v1 code computes
    the weights once for its fixed-size hole patch, as ``gamma ** min(i, H - i, j, W - j)`` (so the top
    and left rows get ``gamma ** 0``, the bottom and right ones ``gamma ** 1``, an off-by-one we do not
    copy); ours gives every border ring ``gamma ** 0``, for any mask. A sample without a known pixel
    raises ``ValueError``.
    """
    from .validation import check_mask

    check_mask(mask)
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float)) or not 0 < gamma <= 1:
        raise ValueError(f"gamma must be in (0, 1], got {gamma!r}")
    known = 1.0 - mask.detach().float()                                           # (B, 1, H, W)
    if bool((known.flatten(1).amax(dim=1) == 0).any()):
        raise ValueError("a mask with no known pixel has no distance to the known region")
    weights = torch.zeros_like(known)
    reached, level = known, 0
    while bool((reached < 1).any()):
        level += 1
        grown = F.max_pool2d(reached, 3, stride=1, padding=1)                   # one more ring (chessboard)
        weights = weights + (grown - reached) * float(gamma) ** (level - 1)      # the border ring: gamma ** 0
        reached = grown
    return weights.to(mask.dtype)


def wgan_critic_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN critic loss ``E[D(fake)] - E[D(real)]`` (v1's ``gan_wgan_loss``: the critic minimises it;
    its negative estimates the Wasserstein distance). Scores ``(B,)``; a 0-d tensor in float32 or wider."""
    for name, x in (("real_scores", real_scores), ("fake_scores", fake_scores)):
        _check_float(x, name)
        _check_finite(x, name)
    return fake_scores.to(_loss_dtype(fake_scores)).mean() - real_scores.to(_loss_dtype(real_scores)).mean()


def wgan_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """The WGAN generator loss ``-E[D(fake)]``; a 0-d tensor."""
    _check_float(fake_scores, "fake_scores")
    _check_finite(fake_scores, "fake_scores")
    return -fake_scores.to(_loss_dtype(fake_scores)).mean()


def gradient_penalty(critic, real: torch.Tensor, fake: torch.Tensor, generator: torch.Generator | None = None,
                     mask: torch.Tensor | None = None, target_norm: float = 1.0,
                     alpha: torch.Tensor | None = None) -> torch.Tensor:
    """WGAN-GP's penalty (Gulrajani et al. 2017), ``E[(||grad D(x_hat)|| - 1) ** 2]`` on random
    interpolates ``x_hat = real + alpha (fake - real)``, ``alpha ~ U(0, 1)`` per sample (drawn from
    ``generator`` on the CPU, or given as ``alpha`` ``(B,)``). ``critic``: a callable
    ``(B, C, H, W) -> (B,)`` scores. ``mask``
    ``(B or 1, 1, H, W)``: the norm is taken over the masked pixels only (v1's ``gradients_penalty(...,
    mask=mask)``: the hole); ``None`` takes every pixel. Differentiable (``create_graph``) so the critic
    is trained through it; multiply by ``lambda`` (10) yourself. A 0-d float32 (or wider) tensor.

    The norm is ``sqrt(sum(g ** 2) + 1e-12)``: the tiny constant keeps the second derivative finite when a
    gradient is exactly 0 (e.g. a masked-out region).
    """
    _check_float(real, "real")
    _check_float(fake, "fake")
    if real.shape != fake.shape or real.ndim != 4:
        raise ValueError(f"real and fake must have the same shape (B, C, H, W), got {tuple(real.shape)} and "
                         f"{tuple(fake.shape)}")
    b = real.shape[0]
    if alpha is None:
        alpha = torch.rand(b, generator=generator)
    if not isinstance(alpha, torch.Tensor) or alpha.shape != (b,):
        raise ValueError(f"alpha must be a tensor of shape ({b},), got "
                         f"{tuple(alpha.shape) if isinstance(alpha, torch.Tensor) else type(alpha).__name__}")
    alpha = alpha.to(device=real.device, dtype=real.dtype).view(b, 1, 1, 1)
    x_hat = (real.detach() + alpha * (fake.detach() - real.detach())).requires_grad_(True)
    scores = critic(x_hat)
    if not isinstance(scores, torch.Tensor) or scores.shape != (b,):
        raise ValueError(f"critic must return scores of shape ({b},), got "
                         f"{tuple(scores.shape) if isinstance(scores, torch.Tensor) else type(scores).__name__}")
    (grad,) = torch.autograd.grad(scores.sum(), x_hat, create_graph=True)
    sq = grad.to(_loss_dtype(grad)).square()
    if mask is not None:
        if mask.ndim != 4 or mask.shape[0] not in (1, b) or mask.shape[1] != 1 or mask.shape[-2:] != real.shape[-2:]:
            raise ValueError(f"mask must have shape (B or 1, 1, H, W) = ({b} or 1, 1, {real.shape[-2]}, "
                             f"{real.shape[-1]}), got {tuple(mask.shape)}")
        sq = sq * mask.to(sq.dtype)
    norms = (sq.flatten(1).sum(dim=1) + 1e-12).sqrt()                              # (B,)
    return (norms - float(target_norm)).square().mean()


# --------------------------------------------------------------------------------------------
# VGG-16 features for perceptual and style losses (any task), and the PConv loss (Liu et al. 2018)
# --------------------------------------------------------------------------------------------
#: ``torchvision.models.vgg16().features`` up to pool3: convolution widths, "M" = 2x2 max-pool.
_VGG16_POOL3 = (64, 64, "M", 128, 128, "M", 256, 256, 256, "M")
#: indices of pool1, pool2, pool3 in ``features`` (the layers the paper's Psi_p are taken at).
VGG16_POOL_INDICES = (4, 9, 16)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


class _ImageNetFeatures(nn.Module):
    """What :class:`VGG16Features` and :class:`SqueezeNetFeatures` share: ImageNet normalisation of ``[0, 1]``
    input, frozen parameters, the checked load of a torchvision state dict, and the maps after the layers
    ``stage_indices`` of ``self.features``."""

    stage_indices: tuple[int, ...] = ()
    #: names in the load's messages: the network, and what its file should be
    label, expected = "", ""

    def _normalisation(self) -> None:
        self.register_buffer("mean", torch.tensor(IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False)
        self.register_buffer("std", torch.tensor(IMAGENET_STD).view(1, 3, 1, 1), persistent=False)

    def _load(self, state: Mapping[str, torch.Tensor], source: str) -> None:
        own = self.state_dict()
        missing = [k for k in own if k not in state]
        if missing:
            raise ValueError(f"{self.label} weights from {source} lack {missing[:4]}: not {self.expected}?")
        bad = [f"{k}: {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in own.items()
               if tuple(state[k].shape) != tuple(v.shape)]
        if bad:
            raise ValueError(f"{self.label} weights from {source} have other shapes: {bad[:4]}")
        self.load_state_dict({k: state[k] for k in own})

    def _freeze(self) -> None:
        self.eval()
        for p in self.parameters():
            p.requires_grad_(False)

    def forward(self, image: torch.Tensor) -> list[torch.Tensor]:
        if image.ndim != 4 or image.shape[1] != 3:
            raise ValueError(f"image must have shape (B, 3, H, W) in [0, 1], got {tuple(image.shape)}")
        x = (image - self.mean.to(image.dtype)) / self.std.to(image.dtype)        # ImageNet normalisation
        out = []
        for i, layer in enumerate(self.features):
            x = layer(x)
            if i in self.stage_indices:
                out.append(x)                                                     # the three stages
        return out


class VGG16Features(_ImageNetFeatures):
    """Frozen VGG-16 features at pool1, pool2 and pool3 (the paper's ``Psi_p``, Liu et al. 2018
    section 3.4), for perceptual and style losses of any task.

    ``forward(image)``: ``(B, 3, H, W)`` in ``[0, 1]`` (ImageNet-normalised here, once) -> a list of
    three maps ``(B, 64, H/2, W/2)``, ``(B, 128, H/4, W/4)``, ``(B, 256, H/8, W/8)``. The layers are
    torchvision's ``vgg16().features[:17]`` (same names, so its state dict loads); parameters are frozen
    (``requires_grad=False``) and the module has no BatchNorm or dropout, so train / eval are alike.

    ``weights``:

    * ``"imagenet"`` (default): ``$INPAINT_VGG16`` (a ``vgg16-397923af.pth`` file or its folder) when
      set, else ``<shared data>/weights/vgg16/vgg16-397923af.pth`` or torch hub's cached copy, else
      torchvision's download (never with ``INPAINT_OFFLINE=1``; a host that does not answer within
      3 s fails at once; :func:`inpaint_utils.pretrained.resolve_vgg16_file`). Missing:
      ``FileNotFoundError`` saying what to download and where to put it.
    * a path: that file (or folder), offline; the ``features.0`` .. ``features.14`` tensors must be in it.
    * ``"random"``: torchvision's initialisation (Kaiming-normal, fan out) from ``generator`` / ``seed``:
      for tests (no download); the losses then measure a random network's features.

    ``network_name``: ``"vgg16"`` (ImageNet weights) or ``"random"``, what a checkpoint records
    (:func:`feature_network`); ``weights_source``: the file, ``"torchvision download"`` or ``"random"``.
    """

    stage_indices = VGG16_POOL_INDICES                         # pool1, pool2, pool3
    label, expected = "VGG-16", f"torchvision's vgg16 state dict ({VGG16_FILENAME})"

    def __init__(self, weights: str | os.PathLike = "imagenet", generator: torch.Generator | None = None,
                 seed: int | None = None):
        super().__init__()
        layers: list[nn.Module] = []
        c_in = 3
        for v in _VGG16_POOL3:
            if v == "M":
                layers.append(nn.MaxPool2d(2, 2))
            else:
                layers += [nn.Conv2d(c_in, v, 3, padding=1), nn.ReLU()]
                c_in = v
        self.features = nn.Sequential(*layers)                 # indices as torchvision's vgg16().features
        self._normalisation()
        if isinstance(weights, str) and weights == "random":
            if generator is not None and seed is not None:
                raise ValueError("pass either generator or seed, not both")
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else generator
            for m in self.features:
                if isinstance(m, nn.Conv2d):
                    fan_out = m.out_channels * 9
                    with torch.no_grad():
                        m.weight.normal_(0.0, math.sqrt(2.0 / fan_out), generator=gen)
                        m.bias.zero_()
            self.weights_source = "random"
            self.network_name = "random"
        else:
            if isinstance(weights, str) and weights == "imagenet":
                path = pretrained.resolve_vgg16_file(None)
            elif isinstance(weights, (str, os.PathLike)):
                path = pretrained.resolve_vgg16_file(weights)
            else:
                raise TypeError(f"weights must be 'imagenet', 'random' or a path, got {weights!r}")
            if path is None:
                state, source = pretrained.download_vgg16_state(), "torchvision download"
            else:
                state, source = torch.load(path, map_location="cpu", weights_only=True), str(path)
            self._load(state, source)
            self.weights_source = source
            self.network_name = "vgg16"
        self._freeze()


class _Fire(nn.Module):
    """SqueezeNet's Fire module (Iandola et al. 2016): a 1x1 squeeze, then 1x1 and 3x3 expands side by side
    (ReLU after each), concatenated; the names of torchvision's, so its state dict loads."""

    def __init__(self, c_in: int, squeeze: int, expand: int):
        super().__init__()
        self.squeeze = nn.Conv2d(c_in, squeeze, 1)
        self.expand1x1 = nn.Conv2d(squeeze, expand, 1)
        self.expand3x3 = nn.Conv2d(squeeze, expand, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.squeeze(x))
        return torch.cat([F.relu(self.expand1x1(x)), F.relu(self.expand3x3(x))], dim=1)   # (B, 2 expand, H, W)


#: indices of conv1's ReLU, fire3 and fire5 in ``squeezenet1_1().features`` (the module docstring's table)
SQUEEZENET_STAGE_INDICES = (1, 4, 7)


class SqueezeNetFeatures(_ImageNetFeatures):
    """Frozen SqueezeNet 1.1 features at conv1 (ReLU), fire3 and fire5: the offline substitute of
    :class:`VGG16Features` for perceptual and style losses (the module docstring sets them beside VGG-16's
    pool1-pool3).

    ``forward(image)``: ``(B, 3, H, W)`` in ``[0, 1]`` (ImageNet-normalised here) -> three maps
    ``(B, 64, ~H/2, ~W/2)``, ``(B, 128, ~H/4, ~W/4)``, ``(B, 256, ~H/8, ~W/8)``. The layers are torchvision's
    ``squeezenet1_1().features[:8]`` (same names). ``weights``: ``"imagenet"`` (default; found offline by
    :func:`inpaint_utils.pretrained.squeezenet_features_state`: LPIPS's backbone in the shared data folder or
    ``$INPAINT_LPIPS``, torch hub's cache, else torchvision's download; missing: ``FileNotFoundError`` saying
    what to put where), a path (that file: ``.npz`` or ``.pth``), or ``"random"`` (tests; ``generator`` /
    ``seed``). ``network_name``: ``"squeeze"`` (ImageNet) or ``"squeeze_random"``.
    """

    stage_indices = SQUEEZENET_STAGE_INDICES                   # conv1, fire3, fire5
    label, expected = "SqueezeNet 1.1", "torchvision's squeezenet1_1 features"

    def __init__(self, weights: str | os.PathLike = "imagenet", generator: torch.Generator | None = None,
                 seed: int | None = None):
        super().__init__()
        self.features = nn.Sequential(                         # indices as torchvision's squeezenet1_1().features
            nn.Conv2d(3, 64, 3, stride=2), nn.ReLU(),          # 0, 1: conv1 (1/2)
            nn.MaxPool2d(3, 2, ceil_mode=True),                # 2
            _Fire(64, 16, 64), _Fire(128, 16, 64),             # 3, 4: fire2, fire3 (1/4)
            nn.MaxPool2d(3, 2, ceil_mode=True),                # 5
            _Fire(128, 32, 128), _Fire(256, 32, 128))          # 6, 7: fire4, fire5 (1/8)
        self._normalisation()
        if isinstance(weights, str) and weights == "random":
            if generator is not None and seed is not None:
                raise ValueError("pass either generator or seed, not both")
            gen = torch.Generator().manual_seed(int(seed)) if seed is not None else generator
            for m in self.modules():
                if isinstance(m, nn.Conv2d):
                    fan_in = m.in_channels * m.kernel_size[0] * m.kernel_size[1]
                    with torch.no_grad():
                        m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=gen)
                        m.bias.zero_()
            self.weights_source, self.network_name = "random", "squeeze_random"
        else:
            if isinstance(weights, str) and weights == "imagenet":
                state, source = pretrained.squeezenet_features_state(None)
            elif isinstance(weights, (str, os.PathLike)):
                state, source = pretrained.squeezenet_features_state(weights)
            else:
                raise TypeError(f"weights must be 'imagenet', 'random' or a path, got {weights!r}")
            self._load(state, source)
            self.weights_source, self.network_name = source, "squeeze"
        self._freeze()


#: what :func:`feature_network` takes: ``auto``, the two ImageNet networks, and the random ones of tests
FEATURE_CHOICES = ("auto", "vgg16", "squeeze", "random", "squeeze_random")


def feature_network(features: str = "auto", *, weights: str | os.PathLike | None = None, seed: int | None = None,
                    say=print) -> nn.Module:
    """The frozen feature network of the perceptual and style losses, from the one pretrained-weights lookup.

    ``features``: ``"vgg16"`` (the paper's pool1-pool3 of VGG-16 ImageNet, :class:`VGG16Features`), ``"squeeze"``
    (SqueezeNet 1.1 ImageNet, :class:`SqueezeNetFeatures`, the offline substitute), ``"auto"`` (VGG-16 when its
    weights are here or can be downloaded, else SqueezeNet: :func:`inpaint_utils.pretrained.choose_feature_network`;
    ``say`` gets one line naming the choice and why), ``"random"`` / ``"squeeze_random"`` (each network with random
    weights from ``seed``: tests and the smoke profile). ``weights``: a file for the chosen ImageNet network
    (default: its lookup). The module's ``network_name`` is what a checkpoint records. Weights not here:
    ``FileNotFoundError`` saying what is missing and where to put it (for ``"auto"``: both networks')."""
    if features not in FEATURE_CHOICES:
        raise ValueError(f"features must be one of {FEATURE_CHOICES}, got {features!r}")
    if features == "random":
        return VGG16Features("random", seed=seed)
    if features == "squeeze_random":
        return SqueezeNetFeatures("random", seed=seed)
    name, why = pretrained.choose_feature_network(features)
    if features == "auto" and say is not None:
        label = ("VGG-16 (pool1-pool3, the paper's)" if name == "vgg16"
                 else "SqueezeNet 1.1 (conv1, fire3, fire5; the offline substitute, not the paper's VGG-16)")
        say(f"perceptual and style losses: features auto -> {name}, {label}: {why}")
    given = "imagenet" if weights is None else weights
    if name == "vgg16":
        return VGG16Features(given)
    try:
        return SqueezeNetFeatures(given)
    except FileNotFoundError as err:
        if features != "auto":
            raise
        raise FileNotFoundError(pretrained.missing_weights_message(
            "An ImageNet feature network for the perceptual and style losses (features 'auto')", "",
            f"{why}; and {str(err).rstrip('.')}",
            f"Either one will do: VGG-16's {pretrained.VGG16_FILENAME} with INPAINT_VGG16=/path/to/it, or "
            "SqueezeNet 1.1's as just said.")) from err


def gram_matrix(features: torch.Tensor) -> torch.Tensor:
    """``K_p Psi^T Psi`` of Liu et al. 2018 eq. 4: ``(B, C, H, W) -> (B, C, C)``, normalised by
    ``K_p = 1 / (C H W)``; computed in at least float32 (outside autocast)."""
    if features.ndim != 4:
        raise ValueError(f"features must have shape (B, C, H, W), got {tuple(features.shape)}")
    b, c, h, w = features.shape
    with torch.autocast(device_type=features.device.type, enabled=False):
        flat = features.to(_loss_dtype(features)).reshape(b, c, h * w)             # (B, C, HW)
        return flat @ flat.transpose(1, 2) / (c * h * w)                             # (B, C, C)


def _check_feature_lists(pred: list, target: list) -> None:
    if len(pred) != len(target) or not pred:
        raise ValueError(f"pred and target feature lists must be non-empty and of equal length, got "
                         f"{len(pred)} and {len(target)}")
    for i, (a, b) in enumerate(zip(pred, target)):
        if a.shape != b.shape:
            raise ValueError(f"feature maps {i} differ in shape: {tuple(a.shape)} and {tuple(b.shape)}")


def perceptual_loss(pred_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
    """``sum_p ||Psi_p(pred) - Psi_p(target)||_1 / N_p`` (Liu et al. 2018 eq. 3, one of its two sums;
    ``N_p`` = the number of elements of ``Psi_p``): the sum over layers of the mean absolute
    difference. Feature lists as :class:`VGG16Features` returns them. A 0-d tensor."""
    _check_feature_lists(pred_features, target_features)
    return sum((a.to(_loss_dtype(a)) - b.to(_loss_dtype(a))).abs().mean()
               for a, b in zip(pred_features, target_features))


def style_loss(pred_features: list[torch.Tensor], target_features: list[torch.Tensor]) -> torch.Tensor:
    """``sum_p 1 / C_p^2 || K_p (Psi_p(pred)^T Psi_p(pred) - Psi_p(target)^T Psi_p(target)) ||_1``
    (Liu et al. 2018 eq. 4-5): the sum over layers of the mean absolute difference of the
    :func:`gram_matrix` es (normalised by ``C H W``), averaged over the batch. A 0-d tensor."""
    _check_feature_lists(pred_features, target_features)
    return sum((gram_matrix(a) - gram_matrix(b)).abs().mean() for a, b in zip(pred_features, target_features))


def dilated_hole_tv(completed: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Liu et al. 2018 eq. 6: total variation of the composite on ``P``, the hole dilated by 1 px
    (3x3): ``sum |I(i, j+1) - I(i, j)| / N + sum |I(i+1, j) - I(i, j)| / N`` over the neighbour pairs
    with *both* pixels in ``P``, ``N`` = the number of elements of ``completed`` (all channels, the
    batch). ``mask`` ``(B or 1, 1, H, W)``, 1 = hole. A 0-d tensor."""
    from .validation import check_mask

    _check_float(completed, "completed")
    if completed.ndim != 4:
        raise ValueError(f"completed must have shape (B, C, H, W), got {tuple(completed.shape)}")
    check_mask(mask, size=tuple(completed.shape[-2:]), batch=completed.shape[0])
    x = completed.to(_loss_dtype(completed))
    region = F.max_pool2d(mask.to(x.dtype), 3, stride=1, padding=1)               # (B, 1, H, W) P
    horiz = region[..., :, 1:] * region[..., :, :-1]                              # both pixels in P
    vert = region[..., 1:, :] * region[..., :-1, :]
    dx = (x[..., :, 1:] - x[..., :, :-1]).abs() * horiz
    dy = (x[..., 1:, :] - x[..., :-1, :]).abs() * vert
    return (dx.sum() + dy.sum()) / x.numel()


#: Liu et al. 2018 eq. 7: ``L_valid + 6 L_hole + 0.05 L_perceptual + 120 (L_style_out + L_style_comp) + 0.1 L_tv``.
PCONV_LOSS_WEIGHTS: dict[str, float] = {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}


def pconv_loss_weights(overrides: Mapping[str, float] | None = None) -> dict[str, float]:
    """:data:`PCONV_LOSS_WEIGHTS` with ``overrides`` applied; ``ValueError`` naming an unknown term."""
    w = dict(PCONV_LOSS_WEIGHTS)
    if overrides is not None:
        unknown = sorted(set(overrides) - set(w))
        if unknown:
            raise ValueError(f"unknown loss weights {unknown}; known: {sorted(w)}")
        w.update(overrides)
    return w


def pconv_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, vgg: nn.Module,
               weights: Mapping[str, float] | None = None) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of the PConv U-Net (Liu et al. 2018, section 3.4, eq. 1-7); ``(total, parts)``.

    ``pred`` ``I_out`` ``(B, 3, H, W)`` (the raw, unclamped prediction), ``target`` ``I_gt`` in
    ``[0, 1]``, ``mask`` ``(B or 1, 1, H, W)`` with 1 = hole (the paper's ``M`` is ``1 - mask``), ``vgg``
    a :class:`VGG16Features` (or any module returning a list of feature maps). ``I_comp = mask * pred
    + (1 - mask) * target``. Terms (``N`` = number of elements of ``I_gt``, batch included):

    * ``L_hole = ||mask * (I_out - I_gt)||_1 / N``, ``L_valid = ||(1 - mask) * (I_out - I_gt)||_1 / N``
      (eq. 1-2: divided by the whole image's size, not the hole's);
    * ``L_perceptual`` = :func:`perceptual_loss` of ``I_out`` plus that of ``I_comp`` (eq. 3);
    * ``L_style_out``, ``L_style_comp`` = :func:`style_loss` of each (eq. 4-5);
    * ``L_tv`` = :func:`dilated_hole_tv` of ``I_comp`` (eq. 6).

    ``total = sum weights[k] * L_k`` with :data:`PCONV_LOSS_WEIGHTS` (1, 6, 0.05, 120, 0.1; ``style``
    weighs ``L_style_out + L_style_comp``); ``weights`` overrides some of them. ``parts``: detached
    0-d tensors ``valid, hole, perceptual, style_out, style_comp, tv, total`` (unweighted, but total).
    One VGG pass on ``[I_out, I_comp, I_gt]`` stacked along the batch.
    """
    from .validation import check_mask

    w = pconv_loss_weights(weights)
    _check_float(pred, "pred")
    check_image(target, "target")
    if pred.shape != target.shape:
        raise ValueError(f"pred and target must have the same shape, got {tuple(pred.shape)} and {tuple(target.shape)}")
    check_mask(mask, size=tuple(target.shape[-2:]), batch=target.shape[0])
    _check_finite(pred, "pred")
    dtype = _loss_dtype(pred)
    pred, target = pred.to(dtype), target.to(dtype)
    hole = mask.to(dtype)
    l_hole = masked_l1(pred, target, hole, normalize="sum") / pred.numel()
    l_valid = masked_l1(pred, target, 1.0 - hole, normalize="sum") / pred.numel()
    completed = hole * pred + (1.0 - hole) * target
    b = pred.shape[0]
    feats = vgg(torch.cat([pred, completed, target.detach()], dim=0))               # each (3B, C_p, H_p, W_p)
    f_out = [f[:b] for f in feats]
    f_comp = [f[b:2 * b] for f in feats]
    f_gt = [f[2 * b:].detach() for f in feats]
    l_perc = perceptual_loss(f_out, f_gt) + perceptual_loss(f_comp, f_gt)
    l_style_out, l_style_comp = style_loss(f_out, f_gt), style_loss(f_comp, f_gt)
    l_tv = dilated_hole_tv(completed, mask)
    total = (w["valid"] * l_valid + w["hole"] * l_hole + w["perceptual"] * l_perc
             + w["style"] * (l_style_out + l_style_comp) + w["tv"] * l_tv)
    parts = {"valid": l_valid, "hole": l_hole, "perceptual": l_perc, "style_out": l_style_out,
             "style_comp": l_style_comp, "tv": l_tv, "total": total}
    return total, {k: v.detach() for k, v in parts.items()}


# --------------------------------------------------------------------------------------------
# DeepFill v2 / SN-PatchGAN: hinge losses on the discriminator's feature map
# --------------------------------------------------------------------------------------------
__all__ += ["hinge_discriminator_loss", "hinge_generator_loss"]


def hinge_discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor) -> torch.Tensor:
    """SN-PatchGAN's discriminator loss (Yu et al. 2019, arXiv:1806.03589, section 3.2; hinge loss of
    Lim & Ye 2017 / Miyato et al. 2018): ``E[relu(1 - D(x))] + E[relu(1 + D(G(z)))]``.

    ``real_scores`` / ``fake_scores``: the discriminator's outputs of any shape, e.g. its
    ``(B, C, h, w)`` feature map, every element of which is one "patch" (the means run over all of
    them; no flattening to one score). v2's code (neuralgym's ``gan_hinge_loss``) halves both terms;
    that constant factor is left out here, as in the paper's equation (Adam's step barely depends on
    it). A 0-d tensor in float32 or wider (inputs under autocast are upcast)."""
    for name, x in (("real_scores", real_scores), ("fake_scores", fake_scores)):
        _check_float(x, name)
        _check_finite(x, name)
    real = real_scores.to(_loss_dtype(real_scores))
    fake = fake_scores.to(_loss_dtype(fake_scores))
    return F.relu(1.0 - real).mean() + F.relu(1.0 + fake).mean()


def hinge_generator_loss(fake_scores: torch.Tensor) -> torch.Tensor:
    """SN-PatchGAN's generator loss ``-E[D(G(z))]`` over every element of the discriminator's output
    for the completed images (Yu et al. 2019, section 3.2); a 0-d tensor."""
    _check_float(fake_scores, "fake_scores")
    _check_finite(fake_scores, "fake_scores")
    return -fake_scores.to(_loss_dtype(fake_scores)).mean()
