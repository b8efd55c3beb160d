"""Argument parsing and randomness shared by the mask generators (part of :mod:`inpaint_utils.masks`):
image sizes, hole ratios and the generators every draw comes from."""
from __future__ import annotations

from typing import Sequence, Union

import numpy as np
import torch

from ..validation import check_generator, check_ratio, is_int

MIN_SIDE = 16  # smallest image side a mask generator accepts

Size = Union[int, Sequence[int]]
Ratio = Union[float, Sequence[float]]

# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------

def parse_size(size: Size, name: str = "size", minimum: int = MIN_SIDE) -> tuple[int, int]:
    """``int`` or ``(H, W)`` -> ``(H, W)``, each side an int >= ``minimum``."""
    if is_int(size):
        hw = (int(size), int(size))
    elif isinstance(size, (tuple, list, torch.Size)) and len(size) == 2 and all(is_int(s) for s in size):
        hw = (int(size[0]), int(size[1]))
    else:
        raise TypeError(f"{name} must be an int or a pair of ints (H, W), got {size!r}")
    if min(hw) < minimum:
        raise ValueError(f"{name} must be at least {minimum} pixel(s) on each side, got {size!r}")
    return hw


def _parse_ratio(ratio: Ratio) -> tuple[float, float]:
    """A float in (0, 1) or a ``(lo, hi)`` range in (0, 1) -> ``(lo, hi)``."""
    if isinstance(ratio, (tuple, list)):
        if len(ratio) != 2:
            raise ValueError(f"ratio as a range must be a pair (lo, hi), got {ratio!r}")
        lo, hi = check_ratio(ratio[0], "ratio[0]"), check_ratio(ratio[1], "ratio[1]")
        if lo > hi:
            raise ValueError(f"ratio range must have lo <= hi, got {ratio!r}")
        return lo, hi
    value = check_ratio(ratio)
    return value, value


def _make_generator(generator: torch.Generator | None, seed: int | None) -> torch.Generator:
    """:func:`check_generator`'s source, or, with neither, a generator seeded from torch's global RNG (so
    that ``seed_everything()`` makes the draw reproducible)."""
    generator = check_generator(generator, seed)
    if generator is None:
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    return generator


def _rand(generator: torch.Generator, *shape: int) -> torch.Tensor:
    """Uniform [0, 1) float64 numbers on the CPU from ``generator`` (wherever it lives)."""
    return torch.rand(*shape, generator=generator, device=generator.device, dtype=torch.float64).cpu()


def _numpy_rngs(generator: torch.Generator, batch: int) -> list[np.random.Generator]:
    """One independent NumPy generator per sample, seeded from ``generator``."""
    seeds = torch.randint(0, 2**62, (batch,), generator=generator, device=generator.device).cpu()
    return [np.random.default_rng(int(s)) for s in seeds]
