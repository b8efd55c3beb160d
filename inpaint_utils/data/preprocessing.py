"""The papers' preprocessing: resize the short side, centre crop (seed 000: resize to 256, crop 128) (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import functools
from typing import Any, Callable

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_image


#: ``"ce"``: seed 000 (Context Encoder): resize the short side to ``2 * size`` (256 for 128) and
#: centre-crop (or pad) to ``size`` (default 128). ``"256"``: seed 002 (GLCIC, contextual attention):
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

    ``mode="ce"`` (seed 000): short side to ``2 * size`` then centre crop to ``size`` (default 128:
    "resized to 256 then cropped/padded to 128"; on a whole face this keeps its central part).
    ``mode="256"`` (seed 002): short side to ``size`` then centre crop (default 256: the whole image
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
