"""Masks read from image files (part of :mod:`inpaint_utils.masks`): one rule for the hole of a file of
any mode (:func:`hole_from_pil`) and :func:`load_mask`."""
from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from .common import Size, parse_size

# --------------------------------------------------------------------------------------------
# masks from files
# --------------------------------------------------------------------------------------------
#: alpha-carrying Pillow modes (a ``transparency`` entry in ``img.info`` also counts)
_ALPHA_MODES = ("RGBA", "LA", "PA", "La", "RGBa")
#: Pillow modes of integer samples with a 16-bit range (``I``: what 16-bit PGM / PNG give)
_WIDE_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I")


def hole_from_pil(img) -> np.ndarray:
    """The hole of a mask image as a boolean ``(H, W)`` array (True = hole), by the course's one rule:

    * the file has an alpha channel (``RGBA``, ``LA``, ``PA``, or a ``transparency`` entry) that is not
      uniformly opaque: **hole = alpha >= 50 %** (opaque = hole, transparent = keep; the colours are
      not looked at);
    * otherwise **hole = brightest channel >= 50 % of the full range of the file's bit depth**: 128 of
      255 for 8-bit files (``1``, ``L``, ``P`` through its palette, ``RGB``, ...; so a red, green or
      blue hole is a hole, like white), 32768 of 65535 for 16-bit ones (``I;16``, ``I``), 0.5 for
      float ones (``F``, read as 0..1).

    The full range, not the file's brightest pixel, sets the threshold: a near-black 16-bit mask
    has no hole. Raises ``ValueError`` for ``I`` values outside 0..65535 or NaN in ``F``.
    """
    mode = img.mode
    if mode in _ALPHA_MODES or "transparency" in img.info:
        alpha = np.asarray(img.convert("RGBA").getchannel("A"))
        if alpha.min() < 255:
            return alpha >= 128
    if mode in _WIDE_MODES:
        values = np.asarray(img, dtype=np.int64)
        if values.size and (values.min() < 0 or values.max() > 65535):
            raise ValueError(f"mode {mode} mask values lie in [{values.min()}, {values.max()}], outside the "
                             "16-bit range 0..65535")
        return values >= 32768
    if mode == "F":
        values = np.asarray(img, dtype=np.float64)
        if not np.isfinite(values).all():
            raise ValueError("mode F mask contains NaN or inf values")
        return values >= 0.5
    rgb = np.asarray(img.convert("RGB"))                                            # (H, W, 3) uint8
    return rgb.max(axis=2) >= 128


def load_mask(path: str | Path, size: Size | None = None, hole_is_white: bool = True) -> torch.Tensor:
    """A binary mask ``(1, 1, H, W)`` (1 = hole) from an image file of any mode (PNG, JPG, ...).

    The hole is decided by :func:`hole_from_pil`: where the file is transparent somewhere, opaque
    (alpha >= 50 %) is the hole; otherwise a pixel whose brightest channel reaches 50 % of the file's
    full range (white, or any bright colour) is. ``hole_is_white=False`` swaps hole and keep (files
    that store 1 = keep, e.g. RePaint's). ``size`` (int or (H, W)) resizes with nearest-neighbour,
    so the result stays binary. A hole of more than half the image, what an inverted mask looks
    like, gives a ``UserWarning`` (one line). A missing file raises ``FileNotFoundError``, any other
    unreadable one :class:`inpaint_utils.data.ImageReadError` (a ``ValueError``).
    """
    from ..data.reading import read_image_file

    hole = read_image_file(path, hole_from_pil, what="mask")
    if not hole_is_white:
        hole = ~hole
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]                    # (1, 1, H, W)
    if size is not None:
        hw = parse_size(size, minimum=1)
        mask = F.interpolate(mask, size=hw, mode="nearest-exact")
    share = float(mask.mean())
    if share > 0.5:
        how = ("white or opaque = hole; hole_is_white=False, in `inpaint fill` --invert-mask, swaps hole and keep"
               if hole_is_white else "read inverted, black or transparent = hole; hole_is_white=True, in "
               "`inpaint fill` no --invert-mask, reads white as the hole")
        warnings.warn(f"mask {path}: the hole covers {100 * share:.1f} % of the image, more than half: is the mask "
                      f"inverted? ({how})", UserWarning, stacklevel=2)
    return mask
