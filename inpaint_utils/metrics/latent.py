"""NSD, the normalized squared-distortion of an encoder's latent space (the cascade context encoder paper,
which introduces it, section 3): how much an encoder's latent of one image moves with the mask.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from ..validation import check_image, check_mask
from .pixel import _acc_dtype

# --------------------------------------------------------------------------------------------------
# NSD: normalized squared-distortion of an encoder's latent space (the cascade CE paper, section 3)
# --------------------------------------------------------------------------------------------------
def _check_latents(latents: torch.Tensor) -> None:
    if not isinstance(latents, torch.Tensor):
        raise TypeError(f"latents must be a torch.Tensor of shape (k, n, D), got {type(latents).__name__}")
    if latents.ndim != 3:
        raise ValueError(f"latents must have shape (k images, n masks, D), got {tuple(latents.shape)}")
    if not latents.is_floating_point():
        raise TypeError(f"latents must be a float tensor, got dtype {latents.dtype}")
    k, n, d = latents.shape
    if k < 1 or d < 1:
        raise ValueError(f"latents need at least one image and one dimension, got shape {tuple(latents.shape)}")
    if n < 2:
        raise ValueError(f"NSD needs at least 2 masks per image (n >= 2), got n = {n}")
    if not torch.isfinite(latents.detach()).all():
        raise ValueError("latents contain NaN or inf values")


def _check_standardizable(k: int, standardize: bool) -> None:
    """Standardising needs two images: with one, each dimension's variance is that image's own spread
    over the masks, and NSD is 1.0 whatever the latents are."""
    if standardize and k < 2:
        raise ValueError(f"NSD with standardize=True needs at least 2 images (k >= 2), got k = {k}: with one "
                         "image it is 1.0 for any latents; pass more images, or standardize=False")


def _nsd_from_moments(means: torch.Tensor, within: torch.Tensor, absmax: torch.Tensor, n: int,
                      standardize: bool, eps: float) -> tuple[torch.Tensor, int]:
    """Per-image NSD from per-image latent means ``(k, D)`` and within-image sums of squared
    deviations ``(k, D)`` (``within[j, d] = sum_i (x_jid - means[j, d])**2``). Returns ``(nsd (k,),
    number of dimensions used)``.

    Standardising dimension ``d`` by its mean and (population) std over all ``k n`` latents divides
    ``within[:, d]`` by its variance ``var_d = (sum_j within[j, d] + n sum_j (means[j, d] - mean_d)**2) / (k n)``;
    the shift cancels. Dimensions whose std is at most ``eps`` times their largest magnitude (constant
    over every image and mask) carry no information and are left out of the sum and of ``D``.
    """
    k, d = means.shape
    if not standardize:
        return within.sum(dim=1) / (d * n), d
    _check_standardizable(k, standardize)
    grand = means.mean(dim=0)                                                      # (D,)
    var = (within.sum(dim=0) + n * (means - grand).square().sum(dim=0)) / (k * n)  # (D,)
    with torch.no_grad():
        varying = var.sqrt() > eps * absmax                                        # (D,) bool
    used = int(varying.sum())
    if used == 0:
        raise ValueError("every latent dimension is constant over all images and masks: NSD is undefined "
                         "with standardize=True (is the encoder's output independent of its input?)")
    return (within[:, varying] / var[varying]).sum(dim=1) / (used * n), used


def nsd_from_latents(latents: torch.Tensor, standardize: bool = False, eps: float = 1e-6) -> torch.Tensor:
    """Normalized squared-distortion per image, ``(k,)``, from encoder latents ``(k images, n masks, D)``.

    The cascade context encoder paper, section 3: for image ``P_j`` and masks ``M_1..M_n``, with
    ``Z_j = 1/n sum_i E(P_j, M_i)``, the final estimator is

        ``NSD_j = 1/(D n) sum_i ||E(P_j, M_i) - Z_j||^2``    and the paper's NSD is ``mean_j NSD_j``.

    This *is* Definition 3.2, ``NSD = dist^2 / (2 D)``, with the paper's estimator
    ``dist^2 = 2/n sum_i ||E(P_j, M_i) - Z_j||^2`` (itself ``1/n^2 sum_{i,i'} ||E_i - E_i'||^2``
    by the identity ``1/(2 n^2) sum ||x_i - x_i'||^2 = 1/n sum ||x_i - x_bar||^2``): the 2s cancel.
    The normalisation by ``2 D`` makes NSD = 1 when the latent is independent N(0, I) noise for every
    mask; this finite-``n`` estimator then has expectation ``(n - 1) / n`` (0.99 for the paper's n = 100).
    NSD = 0 when the latent ignores the mask.

    ``standardize=False`` (default) is the paper's raw estimator on the latents as given: the one its
    reported 0.79 / 0.56 use, so compare those with it. ``standardize=True`` (our variant, not the
    paper's; needs ``k >= 2`` images): the paper assumes the encoder maps into N(0, I); real encoders do
    not (their scale is arbitrary, and a dimension with a large spread would dominate), so every latent
    dimension is first standardised by its mean and population std over all ``k n`` latents. NSD is
    then invariant to any per-dimension affine map of the latent (e.g. a BatchNorm after the code),
    ``mean_j NSD_j`` lies in ``[0, 1]`` (the share of each dimension's variance that comes from the
    masks rather than from the images, averaged over dimensions), it is ~0 when the latent ignores
    the mask and ~1 (``k (n-1) / (k n - 1)``) when the latent is noise that ignores the image.
    Constant dimensions are left out (see :func:`_nsd_from_moments`).

    Computed in float64 (float32 on MPS); differentiable.
    """
    _check_latents(latents)
    k, n, d = latents.shape
    x = latents.to(_acc_dtype(latents))
    means = x.mean(dim=1)                                                          # (k, D)
    within = (x - means[:, None, :]).square().sum(dim=1)                           # (k, D)
    absmax = x.detach().abs().amax(dim=(0, 1))                                     # (D,)
    per_image, _ = _nsd_from_moments(means, within, absmax, n, standardize, eps)
    return per_image


def nsd(encode_fn: Callable[..., torch.Tensor], images: torch.Tensor, masks: torch.Tensor, fill: Any = "mean",
        mode: str = "hole", batch_size: int = 64, device: str | torch.device | None = None,
        progress: bool = True, standardize: bool = False, with_mask: bool = False,
        eps: float = 1e-6) -> dict[str, Any]:
    """NSD of an encoder over ``k`` images x ``n`` masks (the cascade CE paper: k = 250, n = 100; reported
    CE 0.79 +- 0.17, cascade CE 0.56 +- 0.17, on raw latents: ``standardize=False``, the default;
    ``standardize=True`` is our standardised variant, see :func:`nsd_from_latents`).

    Every (image, mask) pair is built with :func:`inpaint_utils.masks.make_input` (``fill``, ``mode``:
    use what the model was trained with, e.g. ``model.config.fill`` for the Context Encoder), sent
    to ``device`` in batches of ``batch_size`` pairs and encoded by ``encode_fn(masked_input)`` (or
    ``encode_fn(masked_input, mask)`` with ``with_mask=True``, e.g. for the cascade, whose 128x128
    input needs the mask to paste the 64x64 CE's prediction), which returns ``(b, D)`` (or any
    ``(b, ...)``, flattened). Runs under ``torch.no_grad()``; put the model in ``eval()`` first
    (BatchNorm). Latents are reduced per image as they arrive (memory ~ ``k x D``, not ``k x n x D``).

    Returns ``{"mean", "std", "per_image", "k", "n", "D", "D_used"}``: the paper's NSD (mean over
    images), the std over images (``correction=1``; 0 for k = 1), the per-image values ``(k,)`` float64
    on the CPU, the sizes, and the number of latent dimensions used (constant ones are dropped when
    standardising). Equals :func:`nsd_from_latents` on the stacked latents.
    """
    check_image(images, "images")
    check_mask(masks, size=tuple(images.shape[-2:]), name="masks")
    k, n = images.shape[0], masks.shape[0]
    if n < 2:
        raise ValueError(f"NSD needs at least 2 masks (n >= 2), got masks of shape {tuple(masks.shape)}")
    _check_standardizable(k, standardize)                     # before any encoding
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if not callable(encode_fn):
        raise TypeError(f"encode_fn must be callable (masked_input -> (B, D) latents), got {type(encode_fn).__name__}")
    device = torch.device(device) if device is not None else images.device
    from tqdm.auto import tqdm

    from ..masks import make_input  # lazy: keeps metrics importable on its own

    means, within, absmax = [], [], None
    pending: torch.Tensor | None = None        # latents of the image(s) not yet complete, in pair order
    dim = None
    with torch.no_grad():
        for start in tqdm(range(0, k * n, batch_size), desc="NSD", disable=not progress):
            pair = torch.arange(start, min(start + batch_size, k * n))             # flat pair index j * n + i
            j, i = pair // n, pair % n
            mask = masks[i.to(masks.device)]                                       # (b, 1, H, W)
            masked_input = make_input(images[j.to(images.device)], mask, mode=mode, fill=fill).to(device)
            z = encode_fn(masked_input, mask.to(device)) if with_mask else encode_fn(masked_input)
            if not isinstance(z, torch.Tensor) or z.ndim < 2 or z.shape[0] != len(pair):
                raise ValueError(f"encode_fn must return a tensor (B, D) with B = {len(pair)} rows, got "
                                 f"{tuple(z.shape) if isinstance(z, torch.Tensor) else type(z).__name__}")
            z = z.reshape(len(pair), -1).to(_acc_dtype(z))                         # (b, D)
            if dim is None:
                dim = z.shape[1]
            elif z.shape[1] != dim:
                raise ValueError(f"encode_fn returned {z.shape[1]} latent dimensions, earlier {dim}")
            if not torch.isfinite(z).all():
                raise ValueError("encode_fn returned NaN or inf latents")
            batch_max = z.abs().amax(dim=0)
            absmax = batch_max if absmax is None else torch.maximum(absmax, batch_max)
            pending = z if pending is None else torch.cat([pending, z])
            while pending.shape[0] >= n:                                           # one image complete
                x, pending = pending[:n], pending[n:]                              # (n, D)
                m = x.mean(dim=0)
                means.append(m)
                within.append((x - m).square().sum(dim=0))
    per_image, used = _nsd_from_moments(torch.stack(means), torch.stack(within), absmax, n, standardize, eps)
    per_image = per_image.cpu().to(torch.float64)
    return {"mean": float(per_image.mean()), "std": float(per_image.std()) if k > 1 else 0.0,
            "per_image": per_image, "k": k, "n": n, "D": dim, "D_used": used}

