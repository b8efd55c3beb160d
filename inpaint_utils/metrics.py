"""Image-completion metrics in the conventions of the course's papers.

Used by notebooks 01 (masking), 02-06 (each model's evaluation) and 07 (comparison tables).

Two reporting conventions, chosen in :func:`evaluate`:

* **seed 000** (course report, Table 1, 128x128): L1 and L2 (MSE) "as a percent" of images in
  ``[0, 1]`` (L1 3.22 % means a mean absolute error of 0.0322; L2 0.88 % means an MSE of 0.0088) and
  PSNR in dB.
* **seed 002** (GLCIC / contextual-attention replication, Table II, 256x256 with a 128x128 hole): MSE
  and L1 on the 0-255 scale (MSE 821.73 = a mean squared error of 821.73 grey levels squared), PSNR,
  LPIPS and TV.

Every pixel metric takes the same arguments::

    metric(pred, target, mask=None, region="image", reduction="mean", scale="unit")

* ``pred``, ``target``: float ``(B, 3, H, W)`` in ``[0, 1]`` (checked, never fixed);
* ``mask``: float ``(B, 1, H, W)`` (or ``(1, 1, H, W)``, broadcast), **1 = hole**, 0 = known;
* ``region``: ``"image"`` (every pixel), ``"hole"`` (hole pixels only: the sum over the hole divided by
  the number of hole pixels times channels, per image) or ``"known"`` (the complement). A region
  with no pixel in some image raises ``ValueError``;
* ``reduction``: ``"none"`` gives one value per image ``(B,)``; ``"mean"`` the mean of those values
  (a 0-d tensor). PSNR is computed **per image and then averaged**, as is usual; an image with zero
  error has PSNR ``+inf``, so the batch mean is ``+inf`` too (it is not clamped: a perfect
  reconstruction of the region, e.g. ``region="known"`` on a composite, shows up as ``inf``);
* ``scale``: ``"unit"`` (errors of ``[0, 1]`` images), ``"percent"`` (x100, seed 000) or ``"255"``
  (errors measured on the 0-255 scale, seed 002: L1 x255, MSE x255^2). PSNR uses the data range of
  the scale (1 for unit / percent, 255 for "255"), so its value is the same for every scale.

Per-image sums are accumulated in float64 (float32 on MPS; the SSIM map is computed in float32 for
float32 input, within 1e-6 of float64) and returned as tensors on the input's device. Gradients flow
back to ``pred`` (LPIPS's own weights are frozen); :func:`evaluate` runs without gradients.

LPIPS (``load_lpips``, ``lpips_distance``) loads the v0.1 **squeeze** model offline from an ``.npz``
(``$INPAINT_LPIPS`` or the shared folder, see ``../shared/data/README.md``); without that file it is
the ``lpips`` package's own model, ``lpips.LPIPS(net=...)``, whose ImageNet backbone torchvision
takes from its cache or downloads (a short time limit, never a hang; never with ``INPAINT_OFFLINE=1``,
as in the tests); offline, a ``FileNotFoundError`` says what to put where. ``lpips`` expects inputs in
``[-1, 1]``; our images are ``[0, 1]``; the conversion happens in exactly one place,
:func:`_to_lpips_range` (feeding ``[0, 1]`` images unconverted is the classic silent LPIPS bug).

FID and KID (LaMa's protocol scores them on the composite; :func:`fid_kid`) come from closed forms on
features, :func:`fid_from_features` (Fréchet distance of the two Gaussians, float64) and
:func:`kid_from_features` (unbiased MMD^2, cubic polynomial kernel, random subsets); the features are
torch-fidelity's InceptionV3 pool features (:func:`load_inception`: ``$INPAINT_INCEPTION`` or its usual
download, never with ``INPAINT_OFFLINE=1``; offline a ``FileNotFoundError`` says what to download and
where to put it). Every result holds its ``n``, and :func:`format_fid_kid` prints it: FID is badly
biased under a few thousand images.
"""
from __future__ import annotations

import math
import os
import pickle
import warnings
from typing import Any, Callable, Iterable, Mapping, Sequence

import numpy as np
import torch

from . import pretrained
from .pretrained import (INCEPTION_DOWNLOAD_TIMEOUT, INCEPTION_FILENAME, INCEPTION_URL, LPIPS_BACKBONES,
                         LPIPS_DOWNLOAD_TIMEOUT, LPIPS_FILENAME)
from .validation import check_image, check_image_mask, check_mask

__all__ = [
    "compare_methods",
    "score_methods",
    "mean_rows",
    "REGIONS",
    "SCALES",
    "l1",
    "l2",
    "mse",
    "psnr",
    "ssim",
    "tv",
    "load_lpips",
    "lpips_distance",
    "evaluate",
    "evaluate_per_image",
    "LPIPS_FILENAME",
    "LPIPS_BACKBONES",
    "nsd",
    "nsd_from_latents",
    "frechet_distance",
    "fid_from_features",
    "kid_from_features",
    "load_inception",
    "inception_features",
    "fid_kid",
    "format_fid_kid",
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
]

REGIONS = ("image", "hole", "known")
SCALES = {"unit": 1.0, "percent": 100.0, "255": 255.0}
_REDUCTIONS = ("mean", "none")


# --------------------------------------------------------------------------------------------------
# Argument checks and the region weights
# --------------------------------------------------------------------------------------------------
def _acc_dtype(x: torch.Tensor) -> torch.dtype:
    """Dtype of per-image sums: float64 (float32 on MPS, which has no float64)."""
    return torch.float32 if x.device.type == "mps" else torch.float64


def _check_choice(value: Any, name: str, choices: Iterable[str]) -> str:
    choices = tuple(choices)
    if value not in choices:
        raise ValueError(f"{name} must be one of {choices}, got {value!r}")
    return value


def _check_pair(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None,
                names: tuple[str, str] = ("pred", "target")) -> None:
    check_image(pred, names[0])
    check_image(target, names[1])
    if pred.shape != target.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape, got {tuple(pred.shape)} and "
                         f"{tuple(target.shape)}")
    if mask is not None:
        check_mask(mask, size=tuple(pred.shape[-2:]), batch=pred.shape[0])


def _region_weight(mask: torch.Tensor | None, region: str, like: torch.Tensor) -> torch.Tensor | None:
    """``(B, 1, H, W)`` 0/1 weights (dtype and device of ``like``, batch of ``like``) of the pixels in
    ``region``; ``None`` for the whole image. Raises when the region is empty in some image."""
    _check_choice(region, "region", REGIONS)
    if region == "image":
        return None
    if mask is None:
        raise ValueError(f"region={region!r} needs a mask (B, 1, H, W) with 1 = hole; got mask=None")
    m = mask.to(device=like.device, dtype=like.dtype)
    weight = (m if region == "hole" else 1.0 - m).expand(like.shape[0], -1, -1, -1)
    counts = weight.sum(dim=(1, 2, 3))
    if bool((counts == 0).any()):
        empty = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"region={region!r} is empty (no {region} pixel) in image(s) {empty[:5]} of the batch; "
                         f"check the mask or use region='image'")
    return weight


def _masked_mean(values: torch.Tensor, weight: torch.Tensor | None) -> torch.Tensor:
    """Per-image mean ``(B,)`` of ``values`` ``(B, C, H, W)`` over the pixels where ``weight``
    ``(B, 1, H, W)`` is 1 (sum over the region / (region pixels x C)), accumulated in float64."""
    acc = _acc_dtype(values)
    if weight is None:
        return values.sum(dim=(1, 2, 3), dtype=acc) / values[0].numel()
    total = (values * weight).sum(dim=(1, 2, 3), dtype=acc)
    return total / (weight.sum(dim=(1, 2, 3), dtype=acc) * values.shape[1])


def _reduce(per_image: torch.Tensor, reduction: str) -> torch.Tensor:
    _check_choice(reduction, "reduction", _REDUCTIONS)
    return per_image if reduction == "none" else per_image.mean()


def _error_factor(scale: str, power: int) -> float:
    # percent multiplies the value itself (L2 0.88 % = MSE 0.0088); "255" rescales the pixel values.
    _check_choice(scale, "scale", SCALES)
    return 100.0 if scale == "percent" else SCALES[scale] ** power


def _psnr_from_mse(mse_unit: torch.Tensor, data_range: float) -> torch.Tensor:
    """PSNR per image from the MSE on ``[0, 1]``; ``+inf`` where the error is exactly zero."""
    mse_scaled = mse_unit * data_range ** 2
    out = 10.0 * torch.log10(data_range ** 2 / mse_scaled.clamp_min(torch.finfo(mse_scaled.dtype).tiny))
    return torch.where(mse_unit == 0, torch.full_like(out, math.inf), out)


def _pixel_error(pred, target, mask, region, reduction, scale, power: int) -> torch.Tensor:
    _check_pair(pred, target, mask)
    _check_choice(reduction, "reduction", _REDUCTIONS)
    factor = _error_factor(scale, power)
    weight = _region_weight(mask, region, pred)
    diff = pred - target
    err = diff.abs() if power == 1 else diff.square()
    return _reduce(_masked_mean(err, weight) * factor, reduction)


# --------------------------------------------------------------------------------------------------
# L1, L2 / MSE, PSNR
# --------------------------------------------------------------------------------------------------
def l1(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, region: str = "image",
       reduction: str = "mean", scale: str = "unit") -> torch.Tensor:
    """Mean absolute error per image (then averaged for ``reduction="mean"``).

    ``scale="percent"`` gives seed 000's "L1 %" (x100), ``scale="255"`` seed 002's L1 on 0-255 (x255).

    >>> x = torch.zeros(1, 3, 4, 4)
    >>> round(float(l1(x + 0.1, x, scale="255")), 3)
    25.5
    """
    return _pixel_error(pred, target, mask, region, reduction, scale, power=1)


def l2(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, region: str = "image",
       reduction: str = "mean", scale: str = "unit") -> torch.Tensor:
    """Mean squared error (MSE) per image (then averaged for ``reduction="mean"``).

    ``scale="percent"`` gives seed 000's "L2 %" (MSE x100: 0.88 % = MSE 0.0088 on ``[0, 1]``);
    ``scale="255"`` seed 002's MSE on the 0-255 scale (MSE on ``[0, 1]`` x 255^2).
    """
    return _pixel_error(pred, target, mask, region, reduction, scale, power=2)


#: ``mse`` is ``l2`` (same function).
mse = l2


def psnr(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, region: str = "image",
         reduction: str = "mean", scale: str = "unit") -> torch.Tensor:
    """Peak signal-to-noise ratio in dB, ``10 log10(R^2 / MSE)``, **per image**, then averaged.

    ``R`` is the data range of the scale (1 for unit / percent, 255 for "255", with the MSE on the same
    scale), so the value does not depend on the scale. An image whose region has zero error gives
    ``+inf`` (and so does the mean over a batch that contains one); nothing is clamped.
    Constant error 0.1 on ``[0, 1]`` -> 20 dB.
    """
    _check_choice(scale, "scale", SCALES)
    mse_unit = l2(pred, target, mask, region=region, reduction="none", scale="unit")
    return _reduce(_psnr_from_mse(mse_unit, 255.0 if scale == "255" else 1.0), reduction)


# --------------------------------------------------------------------------------------------------
# SSIM (Wang et al. 2004)
# --------------------------------------------------------------------------------------------------
_SSIM_WIN, _SSIM_SIGMA, _SSIM_K1, _SSIM_K2 = 11, 1.5, 0.01, 0.03


def _gaussian_1d(size: int, sigma: float, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    x = torch.arange(size, dtype=dtype, device=device) - (size - 1) / 2
    g = torch.exp(-x.square() / (2 * sigma ** 2))
    return g / g.sum()


def _blur_matrix(n: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """``(n, n)`` matrix ``G`` such that ``x @ G`` filters the last dim of ``x`` with the 11-tap Gaussian,
    the border padded symmetrically (edge sample repeated: numpy 'symmetric' = scipy 'reflect', as in
    scikit-image's ``gaussian_filter``). A banded matmul is ~10x faster on CPU than a grouped conv."""
    r = _SSIM_WIN // 2
    g = _gaussian_1d(_SSIM_WIN, _SSIM_SIGMA, dtype, device)
    # padded position k (0 .. n+2r-1) holds sample idx[k]
    idx = torch.cat([torch.arange(r - 1, -1, -1), torch.arange(n), torch.arange(n - 1, n - 1 - r, -1)]).to(device)
    cols = torch.arange(n, device=device)
    band = torch.zeros(n + 2 * r, n, dtype=dtype, device=device)  # output j = sum_t g[t] * padded[j + t]
    for t in range(_SSIM_WIN):
        band[cols + t, cols] = g[t]
    select = torch.zeros(n, n + 2 * r, dtype=dtype, device=device)  # padded = x @ select
    select[idx, torch.arange(n + 2 * r, device=device)] = 1.0
    return select @ band


def _ssim_map(pred: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """Full-size SSIM map ``(B, C, H, W)`` with data range 1, Gaussian window 11 / sigma 1.5,
    population (not sample) covariances, the border handled by symmetric padding (as scikit-image's
    ``gaussian_filter(mode='reflect')``)."""
    # float32 is plenty here (|error| ~1e-6 against float64) and 3x faster on CPU; float64 stays float64
    dtype = torch.float64 if pred.dtype == torch.float64 else torch.float32
    c, h, w = pred.shape[1:]
    x, y = pred.to(dtype), target.to(dtype)
    stack = torch.cat([x, y, x * x, y * y, x * y], dim=1)  # (B, 5C, H, W)
    gh, gw = _blur_matrix(h, dtype, pred.device), _blur_matrix(w, dtype, pred.device)
    stack = gh.T @ (stack @ gw)  # (B, 5C, H, W): local Gaussian means
    mu_x, mu_y, xx, yy, xy = stack.split(c, dim=1)
    var_x, var_y, cov = xx - mu_x.square(), yy - mu_y.square(), xy - mu_x * mu_y
    c1, c2 = _SSIM_K1 ** 2, _SSIM_K2 ** 2
    num = (2 * mu_x * mu_y + c1) * (2 * cov + c2)
    den = (mu_x.square() + mu_y.square() + c1) * (var_x + var_y + c2)
    return num / den


def ssim(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None, region: str = "image",
         reduction: str = "mean") -> torch.Tensor:
    """Structural similarity (Wang et al. 2004): Gaussian window 11x11, sigma 1.5, K1 0.01, K2 0.03,
    data range 1, computed per channel and averaged over channels (higher is better, 1 = identical).

    ``region="image"`` matches ``skimage.metrics.structural_similarity(gaussian_weights=True,
    sigma=1.5, use_sample_covariance=False, data_range=1, channel_axis=...)``: the mean of the SSIM map
    without its 5-pixel border. ``region="hole"`` / ``"known"`` average the *full-size* SSIM map
    (border included, symmetric padding) over the hole / known pixels, so holes that touch the image
    border count whole. Images must be at least 11x11.
    """
    _check_pair(pred, target, mask)
    _check_choice(reduction, "reduction", _REDUCTIONS)
    _check_choice(region, "region", REGIONS)
    _check_ssim_size(pred)
    smap = _ssim_map(pred, target)
    return _reduce(_ssim_per_image(smap, mask, region), reduction)


def _check_ssim_size(image: torch.Tensor) -> None:
    h, w = image.shape[-2:]
    if h < _SSIM_WIN or w < _SSIM_WIN:
        raise ValueError(f"ssim needs images of at least {_SSIM_WIN}x{_SSIM_WIN} pixels, got {h}x{w}")


def _ssim_per_image(smap: torch.Tensor, mask: torch.Tensor | None, region: str) -> torch.Tensor:
    weight = _region_weight(mask, region, smap)
    if weight is None:
        r = _SSIM_WIN // 2
        h, w = smap.shape[-2:]
        return _masked_mean(smap[..., r:h - r, r:w - r], None)
    return _masked_mean(smap, weight)


# --------------------------------------------------------------------------------------------------
# Total variation
# --------------------------------------------------------------------------------------------------
def tv(image: torch.Tensor, mask: torch.Tensor | None = None, region: str = "image", reduction: str = "mean",
       scale: str = "unit") -> torch.Tensor:
    """Anisotropic total variation of one image (not a comparison): the mean absolute difference
    between horizontally and vertically neighbouring pixels, both directions pooled::

        TV = (sum |x[i, j+1] - x[i, j]| + sum |x[i+1, j] - x[i, j]|) / (number of those pairs x C)

    so a 0/1 checkerboard has TV 1 (255 with ``scale="255"``) and a constant image 0. Seed 002 reports
    a "TV loss" without defining it; this is our definition, on the scale asked for (``"255"`` for
    seed 002's table, where its numbers are not expected to be comparable to ours).

    ``region="hole"`` counts the neighbour pairs with **at least one** pixel in the hole (so the seam
    between fill and context is included); ``"known"`` those with both pixels known (the two
    partition the pairs).
    """
    check_image(image, "image")
    if mask is not None:
        check_mask(mask, size=tuple(image.shape[-2:]), batch=image.shape[0])
    _check_choice(scale, "scale", SCALES)
    _check_choice(reduction, "reduction", _REDUCTIONS)
    _check_choice(region, "region", REGIONS)
    return _reduce(_tv_per_image(image, mask, region) * SCALES[scale], reduction)


def _tv_per_image(image: torch.Tensor, mask: torch.Tensor | None, region: str) -> torch.Tensor:
    b, c, h, w = image.shape
    if h * (w - 1) + (h - 1) * w == 0:
        raise ValueError(f"tv needs at least two neighbouring pixels, got an image of {h}x{w}")
    acc = _acc_dtype(image)
    dx = (image[..., :, 1:] - image[..., :, :-1]).abs()  # (B, C, H, W-1)
    dy = (image[..., 1:, :] - image[..., :-1, :]).abs()  # (B, C, H-1, W)
    if region == "image":
        total = dx.sum(dim=(1, 2, 3), dtype=acc) + dy.sum(dim=(1, 2, 3), dtype=acc)
        return total / float(c * (h * (w - 1) + (h - 1) * w))
    if mask is None:
        raise ValueError(f"region={region!r} needs a mask (B, 1, H, W) with 1 = hole; got mask=None")
    m = mask.to(device=image.device, dtype=image.dtype).expand(b, -1, -1, -1)
    wx = torch.maximum(m[..., :, 1:], m[..., :, :-1])  # (B, 1, H, W-1): the pair touches the hole
    wy = torch.maximum(m[..., 1:, :], m[..., :-1, :])  # (B, 1, H-1, W)
    if region == "known":
        wx, wy = 1.0 - wx, 1.0 - wy
    total = (dx * wx).sum(dim=(1, 2, 3), dtype=acc) + (dy * wy).sum(dim=(1, 2, 3), dtype=acc)
    count = (wx.sum(dim=(1, 2, 3), dtype=acc) + wy.sum(dim=(1, 2, 3), dtype=acc)) * c
    if bool((count == 0).any()):
        empty = torch.nonzero(count == 0).flatten().tolist()
        raise ValueError(f"tv: region={region!r} has no neighbour pair in image(s) {empty[:5]} of the batch; "
                         f"check the mask or use region='image'")
    return total / count


# --------------------------------------------------------------------------------------------------
# LPIPS (offline .npz, else the lpips package's own weights)
# --------------------------------------------------------------------------------------------------
_LPIPS_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}


def _package_lpips(net: str, allow_download: bool) -> torch.nn.Module:
    """``lpips.LPIPS(net=net)`` as its users build it: lin layers from the wheel, the backbone from
    torchvision (its cache, else a download: :func:`inpaint_utils.pretrained.download_lpips_backbone`)."""
    import lpips

    def build() -> torch.nn.Module:
        with warnings.catch_warnings():  # torchvision's "'pretrained' is deprecated" from inside lpips
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
            return lpips.LPIPS(net=net, verbose=False)

    return pretrained.download_lpips_backbone(net, build, allow_download)


def load_lpips(net: str = "squeeze", weights: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", allow_download: bool = True) -> torch.nn.Module:
    """The LPIPS v0.1 model, frozen, in eval mode, on ``device``.

    Weights: ``weights`` (a file or the folder holding ``lpips_squeeze_v0.1_full.npz``), else
    ``$INPAINT_LPIPS``; the first one given is the one used, loaded **offline** (built with
    ``pnet_rand=True`` so torchvision fetches nothing; every backbone and linear key must come from the
    file, checked). With neither: ``<shared data>/weights/lpips_squeeze/lpips_squeeze_v0.1_full.npz``
    when present, else the ``lpips`` package's own ``lpips.LPIPS(net=net)`` (``"squeeze"``, ``"alex"``
    or ``"vgg"``), whose backbone torchvision takes from its cache or downloads (``allow_download``,
    never with ``INPAINT_OFFLINE=1``; a host that does not answer within 3 s or a connection silent for
    :data:`LPIPS_DOWNLOAD_TIMEOUT` s fails at once). Raises ``FileNotFoundError`` saying what was tried
    and what to put where. Cached per (net, weights, device): calling it again is free.

    The returned module takes images in ``[-1, 1]``; use :func:`lpips_distance` for ``[0, 1]`` images.
    """
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"net must be one of {sorted(LPIPS_BACKBONES)} (only 'squeeze' loads from the offline "
                         f".npz), got {net!r}")
    device = torch.device(device)
    path = pretrained.resolve_lpips_weights(weights, net)
    if path is None:
        key = (net, "lpips package", str(device))
        if key not in _LPIPS_CACHE:
            model = _package_lpips(net, allow_download).to(device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _LPIPS_CACHE[key] = model
        return _LPIPS_CACHE[key]
    key = (net, str(path), str(device))
    if key in _LPIPS_CACHE:
        return _LPIPS_CACHE[key]
    try:
        import lpips
    except ImportError as err:  # pragma: no cover - lpips is a core dependency
        raise ImportError("LPIPS needs the 'lpips' package: pip install lpips>=0.1.4") from err

    with warnings.catch_warnings():  # torchvision's "'pretrained' is deprecated" from inside lpips
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
        # pnet_rand=True: torchvision builds squeezenet1_1 with random weights, fetching nothing;
        # pretrained=True loads lin0..lin6 from the lpips wheel; all of it is then overwritten from the .npz
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(np.asarray(npz[k])) for k in npz.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"LPIPS weights {path} have unexpected keys {sorted(unexpected)[:5]}: not a "
                         f"LPIPS v0.1 {net} model?")
    # `lins.K.*` are aliases of `linK.*` (same tensors) in lpips' state dict; everything else must be loaded.
    not_loaded = [k for k in missing if not k.startswith("lins.")]
    backbone = [k for k in model.state_dict() if k.startswith("net.")]
    if not_loaded or not backbone or not all(k in state for k in backbone):
        absent = not_loaded or [k for k in backbone if k not in state]
        raise ValueError(f"LPIPS weights {path} lack keys such as {absent[:5]}: the file must hold the full "
                         f"model (backbone net.sliceN.*, lin0..lin6, scaling_layer)")
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _LPIPS_CACHE[key] = model
    return model


def _to_lpips_range(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` -> ``[-1, 1]``, the range ``lpips`` expects. The **only** place this conversion happens."""
    return x * 2.0 - 1.0


def lpips_distance(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                   region: str = "image", reduction: str = "mean", model: torch.nn.Module | None = None,
                   batch_size: int = 32) -> torch.Tensor:
    """LPIPS distance (v0.1, squeeze) between ``[0, 1]`` images; lower is more similar, 0 = identical.

    ``model``: an ``lpips.LPIPS`` (default: :func:`load_lpips` on the images' device, cached). Inputs
    are converted to ``[-1, 1]`` here, once. ``region="image"`` is the usual spatially averaged
    distance; ``"hole"`` / ``"known"`` run the model with ``spatial=True`` (per-layer maps bilinearly
    upsampled to the image size) and average that map over the hole / known pixels. Runs in chunks of
    ``batch_size`` images.
    """
    _check_pair(pred, target, mask)
    _check_choice(reduction, "reduction", _REDUCTIONS)
    if model is None:
        model = load_lpips(device=pred.device)
    weight = _region_weight(mask, region, pred.float())
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    spatial_before = getattr(model, "spatial", False)
    model.spatial = weight is not None or spatial_before
    try:
        chunks = []
        for start in range(0, pred.shape[0], batch_size):
            p = _to_lpips_range(pred[start:start + batch_size].float())
            t = _to_lpips_range(target[start:start + batch_size].float())
            chunks.append(model(p, t))  # (b, 1, 1, 1), or (b, 1, H, W) when spatial
        dist = torch.cat(chunks).to(_acc_dtype(pred))
    finally:
        model.spatial = spatial_before
    if weight is None:
        per_image = dist.mean(dim=(1, 2, 3))
    else:
        per_image = _masked_mean(dist, weight.to(dist.dtype))
    return _reduce(per_image, reduction)


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

    ``convention="seed000"`` (seed 000 Table 1; percent of ``[0, 1]``):
        ``l1_pct_{r}``, ``l2_pct_{r}`` (MSE x100), ``psnr_{r}`` (dB), ``ssim_{r}`` (not in the paper;
        added), and ``lpips_{r}`` only when an LPIPS model (or ``True``: load it) is passed.
    ``convention="seed002"`` (seed 002 Table II; 0-255 scale):
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
    if some image is perfect), e.g. for seed 000 and the default regions::

        {"l1_pct_image", "l2_pct_image", "psnr_image", "ssim_image",
         "l1_pct_hole", "l2_pct_hole", "psnr_hole", "ssim_hole"}

    and for seed 002: ``mse255_*``, ``l1_255_*``, ``psnr_*``, ``lpips_*``, ``tv255_*``, ``tv255_target_*``.
    """
    per_image = evaluate_per_image(completed, target, mask, convention=convention, lpips_model=lpips_model,
                                   regions=regions)
    return {k: float(v.mean()) for k, v in per_image.items()}


def score_methods(methods: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
                  image: torch.Tensor, mask: torch.Tensor, conventions: Sequence[str] = ("seed000", "seed002"),
                  lpips_model: torch.nn.Module | bool | None = None, batch_size: int = 32,
                  progress: bool = True) -> tuple[dict[str, dict[str, torch.Tensor]], dict[str, torch.Tensor]]:
    """Run every method on the same images and masks and score the composites, one value per image.

    Each method is called as ``method(masked_image, mask)`` with the hole pixels zeroed, so no method
    can see the ground truth it is scored against; its output is composited
    (``mask * pred + (1 - mask) * image``) and scored with :func:`evaluate_per_image` in each of
    ``conventions``, in batches of ``batch_size``. Returns ``({method: {key: (B,)}}, {method: composites
    (B, 3, H, W)}``; :func:`compare_methods` averages it, ``comparison.compare_on_masks`` also bins it
    by hole area.
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

    scores, outputs = {}, {}
    for name, method in tqdm(methods.items(), desc="methods", disable=not progress):
        per_image: dict[str, list[torch.Tensor]] = {}
        completed_parts = []
        for start in range(0, image.shape[0], batch_size):
            target, m = image[start:start + batch_size], mask[start:start + batch_size]
            pred = method(target * (1 - m), m)
            check_image(pred, f"output of method {name!r}")
            if pred.shape != target.shape:
                raise ValueError(f"method {name!r} returned shape {tuple(pred.shape)} for input {tuple(target.shape)}")
            completed = m * pred + (1 - m) * target
            completed_parts.append(completed)
            batch_scores: dict[str, torch.Tensor] = {}
            for i, convention in enumerate(conventions):  # LPIPS (the slow part) once, with the first
                found = evaluate_per_image(completed, target, m, convention,
                                           lpips_model=lpips_model if i == 0 else False)
                for key, value in found.items():          # psnr_* is in both conventions: kept once
                    batch_scores.setdefault(key, value)
            for key, value in batch_scores.items():
                per_image.setdefault(key, []).append(value)
        outputs[name] = torch.cat(completed_parts)
        scores[name] = {k: torch.cat(v) for k, v in per_image.items()}
    return scores, outputs


def compare_methods(methods: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]],
                    image: torch.Tensor, mask: torch.Tensor, conventions: Sequence[str] = ("seed000", "seed002"),
                    lpips_model: torch.nn.Module | bool | None = None, batch_size: int = 32,
                    progress: bool = True) -> tuple[list[dict[str, Any]], dict[str, torch.Tensor]]:
    """:func:`score_methods` as table rows: one row per method (``{"method", "n", <metric keys>}``,
    batch means) and the composites ``{method: (B, 3, H, W)}``. Notebooks 01-07 build their tables
    from this.
    """
    scores, outputs = score_methods(methods, image, mask, conventions=conventions, lpips_model=lpips_model,
                                    batch_size=batch_size, progress=progress)
    return mean_rows(scores), outputs


def mean_rows(scores: Mapping[str, Mapping[str, torch.Tensor]]) -> list[dict[str, Any]]:
    """:func:`score_methods`' per-image scores ``{method: {key: (B,)}}`` as table rows, one per method:
    ``{"method", "n" (B), <key>: the mean over the images}``."""
    return [{"method": name, "n": int(next(iter(per_image.values())).shape[0]),
             **{k: float(v.mean()) for k, v in per_image.items()}} for name, per_image in scores.items()]


# --------------------------------------------------------------------------------------------------
# NSD: normalized squared-distortion of an encoder's latent space (seed 003, section 3)
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

    Seed 003 (cascade CE), section 3: for image ``P_j`` and masks ``M_1..M_n``, with
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
    """NSD of an encoder over ``k`` images x ``n`` masks (seed 003: k = 250, n = 100; reported
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

    from .masks import make_input  # lazy: keeps metrics importable on its own

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


# --------------------------------------------------------------------------------------------------
# FID and KID on Inception pool features (Heusel et al. 2017; Binkowski et al. 2018)
# --------------------------------------------------------------------------------------------------
_INCEPTION_CACHE: dict[tuple[str, str], torch.nn.Module] = {}


def _feature_matrix(features: Any, name: str) -> np.ndarray:
    """``(N, D)`` float64 NumPy array of ``features`` (tensor or array), checked."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N samples, D features) array, got shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 samples of at least 1 feature, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return array


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition,
    negative round-off eigenvalues set to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64:

        ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``

    with ``Tr (sigma1 sigma2)^(1/2) = Tr (sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2)`` (similar matrices;
    the right one is symmetric PSD, so its square root comes from an eigen-decomposition: no complex
    round-off as with ``scipy.linalg.sqrtm`` of the non-symmetric product). Clipped at 0 from below."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64).ravel(), np.asarray(mu2, dtype=np.float64).ravel()
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"means and covariances must be (D,) and (D, D) with one D, got {mu1.shape}, {mu2.shape}, "
                         f"{sigma1.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean))


def fid_from_features(features1: Any, features2: Any) -> float:
    """FID between two feature sets ``(N1, D)`` and ``(N2, D)``: the Fréchet distance of the Gaussians with
    their means and sample covariances (``ddof=1``, as pytorch-fid and torch-fidelity), float64.

    FID is biased upwards at small N (the estimate falls as N grows): report N beside it
    (:func:`format_fid_kid`) and compare FIDs only at the same N; LaMa uses 2,000 (CelebA-HQ) and
    30,000 (Places) images."""
    f1, f2 = _feature_matrix(features1, "features1"), _feature_matrix(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets have {f1.shape[1]} and {f2.shape[1]} dimensions; they must match")
    return frechet_distance(f1.mean(axis=0), np.cov(f1, rowvar=False, ddof=1),
                            f2.mean(axis=0), np.cov(f2, rowvar=False, ddof=1))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    """Unbiased MMD^2 of two equal-size samples with the kernel ``(gamma x.y + coef0)^degree``."""
    m = x.shape[0]
    kxx = (x @ x.T * gamma + coef0) ** degree
    kyy = (y @ y.T * gamma + coef0) ** degree
    kxy = (x @ y.T * gamma + coef0) ** degree
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kid_from_features(features1: Any, features2: Any, subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Kernel Inception Distance (Binkowski et al. 2018) between ``(N1, D)`` and ``(N2, D)`` features: the
    unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` (``gamma`` defaults to
    ``1 / D``), averaged over ``subsets`` random subsets of ``subset_size`` samples of each set, drawn
    without replacement (torch-fidelity's and torchmetrics' defaults: 100 subsets of 1,000). With fewer
    samples the subset size is ``min(subset_size, N1, N2)``; when that is every sample of both sets all
    subsets are the same and one is computed. Unbiased: its mean is ~0 for two samples of one
    distribution, and a single estimate can be slightly negative.

    Returns ``{"kid", "kid_std" (over subsets, ddof 0), "subsets", "subset_size"}``."""
    f1, f2 = _feature_matrix(features1, "features1"), _feature_matrix(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets have {f1.shape[1]} and {f2.shape[1]} dimensions; they must match")
    for value, name in ((subsets, "subsets"), (subset_size, "subset_size"), (degree, "degree")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    n1, n2 = f1.shape[0], f2.shape[0]
    m = min(subset_size, n1, n2)
    gamma = 1.0 / f1.shape[1] if gamma is None else float(gamma)
    if m == n1 == n2:
        values = [_mmd2_unbiased(f1, f2, degree, gamma, coef0)]
    else:
        rng = np.random.default_rng(seed)
        values = [_mmd2_unbiased(f1[rng.choice(n1, m, replace=False)], f2[rng.choice(n2, m, replace=False)],
                                 degree, gamma, coef0) for _ in range(subsets)]
    return {"kid": float(np.mean(values)), "kid_std": float(np.std(values)), "subsets": len(values),
            "subset_size": m}


def load_inception(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                   allow_download: bool = True) -> torch.nn.Module:
    """torch-fidelity's InceptionV3 feature extractor (the 2048-d pool features of FID and KID), frozen,
    in eval mode, on ``device``; it takes uint8 images ``(B, 3, H, W)`` and resizes them to 299 itself.

    Weights: ``weights`` (the file, or the folder holding :data:`INCEPTION_FILENAME`), else
    ``$INPAINT_INCEPTION``, else ``<shared data>/weights/inception/`` or torch's cache
    (``torch.hub.get_dir()/checkpoints``); without any, torch-fidelity's usual download from
    :data:`INCEPTION_URL` into that cache (``allow_download``, never with ``INPAINT_OFFLINE=1``; a host
    that does not answer within 3 s or a connection silent for :data:`INCEPTION_DOWNLOAD_TIMEOUT` s fails
    at once). Raises ``FileNotFoundError`` saying what to download and where to put it. Cached per
    (weights, device).
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError("FID / KID need torch-fidelity: pip install torch-fidelity (part of the course's "
                          "'notebooks' extra: pip install -e '.[notebooks]')") from err
    device = torch.device(device)
    path, tried = pretrained.resolve_inception_weights(weights)
    key = (str(path) if path is not None else "download", str(device))
    if key in _INCEPTION_CACHE:
        return _INCEPTION_CACHE[key]
    if path is None:
        model = pretrained.download_inception(lambda: FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]),
                                              tried, allow_download)
    else:
        try:
            model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                feature_extractor_weights_path=str(path))
        except (RuntimeError, ValueError, KeyError, EOFError, OSError, pickle.UnpicklingError) as err:
            raise ValueError(f"Inception weights {path} could not be loaded ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]}): not {INCEPTION_FILENAME}?") from err
    model = model.to(device).eval()
    _INCEPTION_CACHE[key] = model
    return model


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` float images -> uint8 0..255 (rounded), what Inception feature extractors take."""
    return (images * 255.0).round().clamp(0, 255).to(torch.uint8)


def inception_features(images: torch.Tensor, feature_extractor: Callable[[torch.Tensor], Any],
                       batch_size: int = 50, device: str | torch.device | None = None,
                       progress: bool = False) -> np.ndarray:
    """Features ``(N, D)`` float64 of ``[0, 1]`` images ``(N, 3, H, W)``: ``feature_extractor`` gets uint8
    batches on ``device`` (default: that of its first parameter, else the CPU) and returns ``(b, D)``
    (or a tuple whose first item is, as torch-fidelity's extractors do)."""
    check_image(images, "images")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if device is None:
        params = list(feature_extractor.parameters()) if isinstance(feature_extractor, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    from tqdm.auto import tqdm

    out = []
    with torch.no_grad():
        for start in tqdm(range(0, images.shape[0], batch_size), desc="features", disable=not progress):
            batch = _to_uint8(images[start:start + batch_size]).to(device)
            found = feature_extractor(batch)
            if isinstance(found, (tuple, list)):
                found = found[0]
            if not isinstance(found, torch.Tensor) or found.shape[0] != batch.shape[0]:
                raise ValueError(f"feature_extractor must return (B, D) features for B = {batch.shape[0]} images, got "
                                 f"{tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__}")
            out.append(found.reshape(batch.shape[0], -1).to(torch.float64).cpu())
    return torch.cat(out).numpy()


def fid_kid(real_images: torch.Tensor, fake_images: torch.Tensor,
            feature_extractor: Callable[[torch.Tensor], Any] | None = None, weights: str | os.PathLike | None = None,
            device: str | torch.device | None = None, batch_size: int = 50, kid_subsets: int = 100,
            kid_subset_size: int = 1000, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """FID and KID between ground-truth images and completed ones (score the **composite**,
    ``mask * pred + (1 - mask) * image``, as LaMa does), both ``[0, 1]`` ``(N, 3, H, W)``.

    Features: ``feature_extractor`` (uint8 images -> ``(b, D)``; tests pass a small random network),
    else InceptionV3's 2048-d pool features from :func:`load_inception` (``weights`` / ``$INPAINT_INCEPTION``
    / its usual download; a ``FileNotFoundError`` offline says what to download and where to put it).

    Returns ``{"fid", "kid", "kid_std", "n", "n_real", "n_fake", "kid_subsets", "kid_subset_size",
    "features"}``: ``n`` (the smaller of the two counts) always stands beside the scores; print it with
    :func:`format_fid_kid`. FID at a few hundred images is far above its large-N value: compare only at
    the same N, and prefer KID (unbiased) or LPIPS on small sets.
    """
    check_image(real_images, "real_images")
    check_image(fake_images, "fake_images")
    name = "custom feature extractor"
    if feature_extractor is None:
        feature_extractor = load_inception(weights, device=device if device is not None else "cpu")
        name = "InceptionV3 pool (2048), torch-fidelity"
    f_real = inception_features(real_images, feature_extractor, batch_size, device, progress)
    f_fake = inception_features(fake_images, feature_extractor, batch_size, device, progress)
    kid = kid_from_features(f_real, f_fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    n_real, n_fake = f_real.shape[0], f_fake.shape[0]
    return {"fid": fid_from_features(f_real, f_fake), "kid": kid["kid"], "kid_std": kid["kid_std"],
            "n": min(n_real, n_fake), "n_real": n_real, "n_fake": n_fake, "kid_subsets": kid["subsets"],
            "kid_subset_size": kid["subset_size"], "features": name}


def format_fid_kid(result: Mapping[str, Any]) -> str:
    """``"FID 12.3 (N = 100); KID 0.0123 ± 0.0011 (N = 100, 100 subsets of 50)"``: every score with its N
    (``"N = 100 real, 80 completed"`` when the counts differ). Takes :func:`fid_kid`'s result, or any
    dict with ``fid`` and / or ``kid`` and ``n``."""
    if "n" not in result:
        raise ValueError("an FID / KID result must hold its sample count 'n' (FID without N is not comparable)")
    n_real, n_fake = result.get("n_real"), result.get("n_fake")
    n = (f"N = {n_real} real, {n_fake} completed" if n_real is not None and n_fake is not None and n_real != n_fake
         else f"N = {int(result['n'])}")
    parts = []
    if result.get("fid") is not None:
        parts.append(f"FID {float(result['fid']):.1f} ({n})")
    if result.get("kid") is not None:
        subsets = (f", {result['kid_subsets']} subsets of {result['kid_subset_size']}"
                   if result.get("kid_subsets", 1) > 1 and "kid_subset_size" in result else "")
        std = f" ± {float(result['kid_std']):.4f}" if result.get("kid_std") is not None and subsets else ""
        parts.append(f"KID {float(result['kid']):.4f}{std} ({n}{subsets})")
    if not parts:
        raise ValueError("the result holds neither 'fid' nor 'kid'")
    return "; ".join(parts)
