"""Operations on masks and the model inputs made from them (part of :mod:`inpaint_utils.masks`): the
Context Encoder's eroded hole and overlap loss weights, hole ratios, the one mask resize, the training
masks' record and the three input modes of :func:`make_input`."""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from ..baselines.fills import navier_stokes
from ..validation import check_image_mask, check_mask, is_int
from .common import Ratio, Size, parse_size

#: Input modes of Biradar et al. (*Deep Learning for Image Inpainting*) accepted by :func:`make_input`.
INPUT_MODES: tuple[str, ...] = ("hole", "mosaic", "hole_ns")


# --------------------------------------------------------------------------------------------
# loss weights and ratios
# --------------------------------------------------------------------------------------------
def _check_pixels(value, name: str) -> int:
    if not is_int(value) or value < 0:
        raise ValueError(f"{name} must be an int >= 0 (pixels), got {value!r}")
    return int(value)


def erode_mask(mask: torch.Tensor, pixels: int) -> torch.Tensor:
    """The hole shrunk by ``pixels`` from every border it shares with known pixels (max-pool
    erosion with a square window, so Chebyshev distance). Sides where the hole touches the image
    edge are not shrunk: there is no context there.

    The CE authors' code drops only this shrunk region from the input (``erode_mask(center, 4)``:
    the central 56x56) while predicting and weighting the full 64x64; see :func:`overlap_weights`.
    """
    check_mask(mask)
    pixels = _check_pixels(pixels, "pixels")
    if pixels == 0:
        return mask.clone()
    known = 1.0 - mask
    near_known = F.max_pool2d(known, kernel_size=2 * pixels + 1, stride=1, padding=pixels)  # (B, 1, H, W)
    return mask * (1.0 - near_known)


def overlap_weights(mask: torch.Tensor, overlap: int = 4, weight: float = 10.0) -> torch.Tensor:
    """Per-pixel weights of the Context Encoder's reconstruction loss, ``(B, 1, H, W)``.

    Known pixels 0; hole pixels within ``overlap`` px of a known pixel (the ring just inside the
    hole border) ``weight``; the rest of the hole 1. The authors' code (``overlapPred = 4``,
    ``overlapL2Weight = 10``): for the central 64x64 hole of a 128x128 image, the inner 56x56 has
    weight 1 and the 4-px ring weight 10. Works for any mask shape (max-pool erosion), batched.
    """
    check_mask(mask)
    overlap = _check_pixels(overlap, "overlap")
    try:
        weight = float(weight)
    except (TypeError, ValueError):
        raise TypeError(f"weight must be a number, got {weight!r}") from None
    if not math.isfinite(weight) or weight < 0:
        raise ValueError(f"weight must be finite and >= 0, got {weight!r}")
    interior = erode_mask(mask, overlap)
    ring = mask - interior
    return interior + weight * ring


def area_ratio(mask: torch.Tensor) -> torch.Tensor:
    """Hole fraction of each mask: ``(B,)`` float."""
    check_mask(mask)
    return mask.flatten(1).mean(dim=1)


@dataclass(frozen=True)
class TrainingMasks:
    """Masks drawn as a learned model's training drew them (each task's ``training_masks``): ``kind`` (the
    :data:`MASK_KINDS` kind they belong to), ``description`` (one line) and ``masks`` ``(n, 1, S, S)``."""

    kind: str
    description: str
    masks: torch.Tensor


def ratio_text(ratio: Ratio) -> str:
    """``0.25``, or a range ``0.05-0.3``: a hole ratio as the descriptions of masks print it."""
    return "-".join(f"{r:g}" for r in ratio) if isinstance(ratio, (tuple, list)) else f"{ratio:g}"


def resize_mask(mask: torch.Tensor, size: Size) -> torch.Tensor:
    """``mask`` ``(B, 1, H, W)`` resized to ``size`` (an int or ``(H, W)``) so that a pixel is a hole when
    **any** part of it covers a hole pixel (adaptive max pooling): an integer upscale (128 -> 512)
    replicates each pixel exactly, other factors grow the hole rather than shrink it, so no hole pixel
    is ever taken as known. The one mask resize of the package (the model's holes at another size,
    a diffusion pipeline's working size, a smaller model's input)."""
    check_mask(mask)
    hw = parse_size(size, minimum=1)
    if tuple(mask.shape[-2:]) == hw:
        return mask
    return (F.adaptive_max_pool2d(mask.float(), hw) > 0).to(mask.dtype)


# --------------------------------------------------------------------------------------------
# model inputs
# --------------------------------------------------------------------------------------------
def _fill_values(image: torch.Tensor, mask: torch.Tensor, fill) -> torch.Tensor:
    """The fill colour, broadcastable to ``image``: (B, 3, 1, 1) or (1, 3, 1, 1) or scalar."""
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be 'mean', a float in [0, 1] or a (3,) tensor, got {fill!r}")
        known = (1.0 - mask).expand(image.shape[0], 1, *image.shape[-2:])       # (B, 1, H, W)
        n_known = known.sum(dim=(2, 3))                                          # (B, 1)
        if (n_known == 0).any():
            bad = (n_known.flatten() == 0).nonzero().flatten().tolist()
            raise ValueError(f"fill='mean' needs known pixels, but the mask of sample(s) {bad} is all hole")
        return ((image * known).sum(dim=(2, 3)) / n_known).view(image.shape[0], 3, 1, 1)
    if isinstance(fill, numbers.Real) and not isinstance(fill, bool):
        value = float(fill)
        if not (math.isfinite(value) and 0.0 <= value <= 1.0):
            raise ValueError(f"fill must be in [0, 1], got {fill!r}")
        return torch.full((1, 3, 1, 1), value, dtype=image.dtype, device=image.device)
    if isinstance(fill, (torch.Tensor, np.ndarray, list, tuple)):
        tensor = torch.as_tensor(fill, dtype=image.dtype).to(image.device)
        if tensor.shape != (3,):
            raise ValueError(f"fill as a tensor must have shape (3,) (one value per channel), "
                             f"got {tuple(tensor.shape)}")
        if not torch.isfinite(tensor).all() or tensor.min() < 0 or tensor.max() > 1:
            raise ValueError(f"fill must be in [0, 1], got {tensor.tolist()}")
        return tensor.view(1, 3, 1, 1)
    raise TypeError(f"fill must be 'mean', a float in [0, 1] or a (3,) tensor, got {type(fill).__name__}")


def _mosaic(image: torch.Tensor, unit: int) -> torch.Tensor:
    """Biradar et al.'s mosaic: bilinear downsampling by 1/unit, bilinear upsampling back."""
    h, w = image.shape[-2:]
    small = (max(1, round(h / unit)), max(1, round(w / unit)))
    coarse = F.interpolate(image, size=small, mode="bilinear", align_corners=False)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def make_input(image: torch.Tensor, mask: torch.Tensor, mode: str = "hole", fill="mean",
               mosaic_unit: int = 12) -> torch.Tensor:
    """The model's input image ``(B, 3, H, W)``: known pixels exactly as given, the hole filled.

    Modes (Biradar et al.): ``"hole"`` fills with ``fill`` (``"mean"``: each image's per-channel mean of
    its known pixels; a float; or a ``(3,)`` tensor such as the dataset mean of the CE);
    ``"mosaic"`` with the image downsampled by ``1 / mosaic_unit`` and upsampled back (bilinear), so
    the hole carries coarse content; ``"hole_ns"`` with OpenCV's Navier-Stokes inpainting (radius 3,
    :func:`inpaint_utils.baselines.navier_stokes`). ``mask`` may have batch 1 (one mask for all).
    """
    check_image_mask(image, mask)
    if mode not in INPUT_MODES:
        raise ValueError(f"unknown input mode {mode!r}; choose one of {INPUT_MODES}")
    mask = mask.to(dtype=image.dtype, device=image.device)
    hole = mask.bool().expand(image.shape[0], 3, *image.shape[-2:])              # (B, 3, H, W)
    if mode == "hole":
        filled = _fill_values(image, mask, fill).expand_as(image)
    elif mode == "mosaic":
        if not is_int(mosaic_unit) or not 1 <= mosaic_unit <= min(image.shape[-2:]):
            raise ValueError(f"mosaic_unit must be an int in [1, min(H, W) = {min(image.shape[-2:])}], "
                             f"got {mosaic_unit!r}")
        filled = _mosaic(image, int(mosaic_unit))
    else:  # "hole_ns"
        filled = navier_stokes(image, mask.expand(image.shape[0], 1, *image.shape[-2:]), radius=3)
        filled = filled.to(dtype=image.dtype, device=image.device)
    return torch.where(hole, filled, image)
