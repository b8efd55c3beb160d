"""Input checks shared by every module: one place that says what an image and a mask are.

Conventions (docs/conventions.md): images are float tensors ``(B, 3, H, W)`` in ``[0, 1]``; masks are float
``(B, 1, H, W)`` with **1 = hole (missing), 0 = known**. These functions never silently fix input:
they raise with a message that names the argument and the offending value.
"""
from __future__ import annotations

import math
import numbers
from typing import Any

import torch

__all__ = ["check_image", "check_mask", "check_ratio", "check_image_mask", "check_fill_setting", "is_int",
           "check_generator"]


def check_image(image: torch.Tensor, name: str = "image") -> torch.Tensor:
    """Check a batch of RGB images ``(B, 3, H, W)``, floating point, finite, in ``[0, 1]``."""
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, 3, H, W), got {type(image).__name__}")
    if image.ndim != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must have shape (B, 3, H, W), got {tuple(image.shape)}")
    if not image.is_floating_point():
        raise TypeError(f"{name} must be a float tensor in [0, 1], got dtype {image.dtype}")
    if image.numel() == 0:
        raise ValueError(f"{name} is empty: shape {tuple(image.shape)}")
    # one pass: the extremes show a NaN (propagated) or an infinity, without isfinite's (B, 3, H, W) booleans
    lo, hi = (float(v) for v in torch.aminmax(image.detach()))
    if not (math.isfinite(lo) and math.isfinite(hi)):
        raise ValueError(f"{name} contains NaN or inf values")
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"{name} must be in [0, 1], got values in [{lo:.4g}, {hi:.4g}]")
    return image


def check_mask(mask: torch.Tensor, size: tuple[int, int] | None = None, batch: int | None = None,
               name: str = "mask") -> torch.Tensor:
    """Check a batch of masks ``(B, 1, H, W)``, floating point, values exactly 0 or 1 (1 = hole).

    ``size`` (H, W) and ``batch`` check that the mask fits the image it goes with; a batch of 1 is
    allowed to broadcast over any image batch.
    """
    if not isinstance(mask, torch.Tensor):
        raise TypeError(f"{name} must be a torch.Tensor of shape (B, 1, H, W), got {type(mask).__name__}")
    if mask.ndim != 4 or mask.shape[1] != 1:
        raise ValueError(f"{name} must have shape (B, 1, H, W) with one channel (1 = hole), got {tuple(mask.shape)}")
    if not mask.is_floating_point():
        raise TypeError(f"{name} must be a float tensor of 0 (known) and 1 (hole), got dtype {mask.dtype}")
    values = mask.detach()
    if not torch.isfinite(values).all():
        raise ValueError(f"{name} contains NaN or inf values")
    if not ((values == 0) | (values == 1)).all():
        bad = values[(values != 0) & (values != 1)].flatten()[:3].tolist()
        raise ValueError(f"{name} must be binary (0 = known, 1 = hole), found values such as {bad}")
    if size is not None and tuple(mask.shape[-2:]) != tuple(size):
        raise ValueError(f"{name} has size {tuple(mask.shape[-2:])} (H, W) but the image is {tuple(size)}")
    if batch is not None and mask.shape[0] not in (1, batch):
        raise ValueError(f"{name} has batch {mask.shape[0]} but the images have batch {batch}")
    return mask


def check_image_mask(image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Check an image batch and the mask that goes with it (same size, compatible batch)."""
    check_image(image)
    check_mask(mask, size=tuple(image.shape[-2:]), batch=image.shape[0])
    return image, mask


def check_ratio(ratio: float, name: str = "ratio") -> float:
    """A hole-to-image area ratio must lie strictly between 0 and 1."""
    try:
        value = float(ratio)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a number in (0, 1), got {ratio!r}") from None
    if math.isnan(value) or not 0.0 < value < 1.0:
        raise ValueError(f"{name} must be in the open interval (0, 1), got {ratio!r}")
    return value


def check_fill_setting(fill: Any) -> Any:
    """A model config's hole ``fill``: ``"mean"``, a float in ``[0, 1]`` or an ``(r, g, b)`` tuple (a list,
    as read back from JSON, becomes one) in ``[0, 1]``; returned normalised, or ``ValueError``."""
    if isinstance(fill, list):
        fill = tuple(fill)
    if isinstance(fill, str):
        if fill != "mean":
            raise ValueError(f"fill must be 'mean', a float in [0, 1] or an (r, g, b) tuple, got {fill!r}")
    elif isinstance(fill, tuple):
        if len(fill) != 3 or not all(isinstance(v, numbers.Real) and 0 <= v <= 1 for v in fill):
            raise ValueError(f"fill as a tuple must be (r, g, b) with values in [0, 1], got {fill!r}")
        fill = tuple(float(v) for v in fill)
    elif not (isinstance(fill, numbers.Real) and not isinstance(fill, bool) and 0 <= fill <= 1):
        raise ValueError(f"fill must be 'mean', a float in [0, 1] or an (r, g, b) tuple, got {fill!r}")
    return fill



def is_int(value: Any) -> bool:
    """Whether ``value`` is an integer (Python or NumPy), and not a ``bool``."""
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator | None:
    """The random source of a call that takes ``generator=`` or ``seed=`` (never both): a new generator
    seeded with ``seed``, else ``generator`` (checked), else ``None`` (torch's global RNG, which
    ``seed_everything`` makes reproducible)."""
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        if not is_int(seed):
            raise TypeError(f"seed must be an int, got {seed!r}")
        return torch.Generator().manual_seed(int(seed))
    if generator is not None and not isinstance(generator, torch.Generator):
        raise TypeError(f"generator must be a torch.Generator, got {type(generator).__name__}")
    return generator
