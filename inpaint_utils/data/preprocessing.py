"""The papers' preprocessing: resize the short side, centre crop (Nanavati & Patel: resize to 256, crop 128) (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_image


#: ``"ce"``: Nanavati & Patel (Context Encoder): resize the short side to ``2 * size`` (256 for 128) and
#: centre-crop (or pad) to ``size`` (default 128). ``"256"``: Biradar et al. (GLCIC, contextual attention):
#: resize the short side to ``size`` (default 256) and centre-crop to ``size x size``.
#: ``None``: no change.
PREPROCESS_MODES = ("ce", "256", None)
_DEFAULT_SIZE = {"ce": 128, "256": 256}


def _check_size(size: Any, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{name} must be a positive int, got {size!r}")
    return int(size)


def _as_batch(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor (3, H, W) or (B, 3, H, W), got {type(image).__name__}")
    if image.ndim == 3:
        return check_image(image.unsqueeze(0)), False
    return check_image(image), True


def _resize_short(x: torch.Tensor, target: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h <= w:
        new_h, new_w = target, max(target, round(w * target / h))
    else:
        new_h, new_w = max(target, round(h * target / w)), target
    if (new_h, new_w) == (h, w):
        return x
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def resize_short_side(image: torch.Tensor, target: int) -> torch.Tensor:
    """Resize ``(B, 3, H, W)`` (or ``(3, H, W)``) so its short side is ``target``, keeping the aspect
    ratio; bilinear with antialiasing (as torchvision's ``Resize``), clipped to ``[0, 1]``."""
    target = _check_size(target, "target")
    x, batched = _as_batch(image)
    x = _resize_short(x, target)
    return x if batched else x[0]


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` region of ``(..., H, W)``; a side shorter than ``size`` is padded
    with black (0) on both sides, as torchvision's ``CenterCrop`` does."""
    size = _check_size(size)
    h, w = image.shape[-2:]
    pad_h, pad_w = max(size - h, 0), max(size - w, 0)
    if pad_h or pad_w:
        image = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=0.0)
        h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top:top + size, left:left + size]


def preprocess(image: torch.Tensor, mode: str | None = "ce", size: int | None = None) -> torch.Tensor:
    """Apply a paper's recipe to ``(3, H, W)`` or ``(B, 3, H, W)`` images in ``[0, 1]``.

    ``mode="ce"`` (Nanavati & Patel): short side to ``2 * size`` then centre crop to ``size`` (default 128:
    "resized to 256 then cropped/padded to 128"; on a whole face this keeps its central part).
    ``mode="256"`` (Biradar et al.): short side to ``size`` then centre crop (default 256: the whole image
    at 256 x 256). ``mode=None``: returned unchanged (``size`` must then be ``None``).
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    x, batched = _as_batch(image)
    if mode is None:
        if size is not None:
            raise ValueError(f"mode=None keeps the image as it is; got size={size!r} (use mode='256' to resize)")
        return image
    size = _DEFAULT_SIZE[mode] if size is None else _check_size(size)
    x = center_crop(_resize_short(x, 2 * size if mode == "ce" else size), size)
    return x if batched else x[0]


def make_transform(mode: str | None = "256", size: int | None = 128) -> Callable[[torch.Tensor], torch.Tensor]:
    """A picklable ``image -> preprocess(image, mode, size)`` (for DataLoader workers)."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    if mode is None and size is not None:
        raise ValueError(f"mode=None keeps the image as it is; got size={size!r}")
    if size is not None:
        _check_size(size)
    return functools.partial(preprocess, mode=mode, size=size)


def _apply_crop(image: torch.Tensor, crop: str | None) -> torch.Tensor:
    if crop is None:
        return image
    if crop == "left_half":
        return image[..., : image.shape[-1] // 2]
    raise ValueError(f"crop must be None or 'left_half', got {crop!r}")


def random_crop_flip_params(count: int, generator: torch.Generator, min_scale: float = 0.8) -> torch.Tensor:
    """``count`` seeded random crops and horizontal flips, as ``(count, 2, 3)`` affine matrices for
    :func:`apply_crop_flip`: each a square window whose side is a uniform ``min_scale .. 1`` fraction
    of the image, at a uniform position inside it, mirrored left-right with probability 1/2. Drawn
    from ``generator`` only, so the same generator state gives the same crops on any device."""
    count = _check_size(count, "count")
    if not isinstance(min_scale, (int, float)) or isinstance(min_scale, bool) or not 0 < min_scale <= 1:
        raise ValueError(f"min_scale must be a number in (0, 1], got {min_scale!r}")
    draws = torch.rand(count, 4, generator=generator, dtype=torch.float64)
    scale = min_scale + (1 - min_scale) * draws[:, 0]
    # in affine_grid's coordinates ([-1, 1] across the image) a window of side `scale` may move by 1 - scale
    shift_x, shift_y = (1 - scale) * (2 * draws[:, 1] - 1), (1 - scale) * (2 * draws[:, 2] - 1)
    flip = torch.where(draws[:, 3] < 0.5, -1.0, 1.0).double()
    theta = torch.zeros(count, 2, 3, dtype=torch.float64)
    theta[:, 0, 0], theta[:, 0, 2] = scale * flip, shift_x
    theta[:, 1, 1], theta[:, 1, 2] = scale, shift_y
    return theta.float()


def apply_crop_flip(images: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    """Row ``i`` of ``(B, 3, H, W)`` images cropped and flipped by ``theta[i]``
    (:func:`random_crop_flip_params`) and resized back to ``H x W`` (bilinear), still in ``[0, 1]``.
    The identity matrix returns the image unchanged."""
    x, _ = _as_batch(images)
    if not isinstance(theta, torch.Tensor) or theta.shape != (x.shape[0], 2, 3):
        shape = tuple(theta.shape) if isinstance(theta, torch.Tensor) else type(theta).__name__
        raise ValueError(f"theta must be a ({x.shape[0]}, 2, 3) tensor for {x.shape[0]} images, got {shape}")
    grid = _axis_aligned_grid(theta.to(x.device, x.dtype), x.shape)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=False).clamp(0.0, 1.0)


def _axis_aligned_grid(theta: torch.Tensor, shape: torch.Size) -> torch.Tensor:
    """``F.affine_grid(theta, shape, align_corners=False)`` for matrices without rotation or shear (the crops
    and flips of :func:`random_crop_flip_params`), built from one row and one column of coordinates instead
    of a matrix product per pixel: half the cost of a crop on a CPU (4 of 8 ms for 8 images of 128 px on one
    thread), the same grid up to rounding. Other matrices go to ``affine_grid``."""
    if bool((theta[:, 0, 1] != 0).any() or (theta[:, 1, 0] != 0).any()):
        return F.affine_grid(theta, list(shape), align_corners=False)
    b, _, h, w = shape

    def coords(n: int) -> torch.Tensor:                 # pixel centres in [-1, 1], as affine_grid (align_corners=False)
        return (torch.arange(n, device=theta.device, dtype=theta.dtype) * 2 + 1) / n - 1

    gx = theta[:, 0, 0, None] * coords(w) + theta[:, 0, 2, None]                 # (B, W)
    gy = theta[:, 1, 1, None] * coords(h) + theta[:, 1, 2, None]                 # (B, H)
    return torch.stack((gx[:, None, :].expand(b, h, w), gy[:, :, None].expand(b, h, w)), dim=-1)
