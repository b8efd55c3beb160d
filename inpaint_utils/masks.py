"""Every mask of the course, one convention: float32 ``(B, 1, H, W)``, **1 = hole**, 0 = known.

Used by notebooks ``01_masking`` (all shapes, area-ratio control), ``02_context_encoder`` (the
central square and the 10x overlap loss weights), ``03_cascade_ce_nsd`` (central square, random
blocks), ``04_glcic`` / ``05_contextual_attention`` (random square holes and the three input modes)
and ``07_comparison``.

Sources:

* Pathak et al. 2016, *Context Encoders* (arXiv:1604.07379): the central 64x64 region of a
  128x128 image (``"center"``) and the reconstruction loss whose 4-px overlap ring is weighted 10x
  (:func:`overlap_weights`); the paper's "random block" masks.
* Seed 003 (cascade CE), section 4.3: central square; random blocks, "a number of smaller possibly
  overlapping masks, covering up to 1/4 of the image" (``"blocks"``, default ratio 0.25).
* Seed 000, section 3.4: six shapes, square, circle, triangle, ellipse, irregular and random
  patches, "controlled by varying the hole-to-image area ratio" (``ratio`` below).
* Seed 002: the random ~128x128 square hole in a 256x256 image (``"square"``) and the three input
  modes ``hole`` / ``mosaic`` (bilinear down-up sampling by ``1 / mosaic_unit_size``, 12) /
  ``hole_ns`` (Navier-Stokes pre-fill) of :func:`make_input`.
* Irregular masks follow the free-form brush strokes of DeepFill v2 (Yu et al. 2019) and LaMa
  (Suvorov et al. 2021): a random walk of thick line segments.
* LaMa's evaluation protocol (Suvorov et al. 2021, arXiv:2109.07161): its thin / medium / thick
  generators (:func:`lama_mask`, no ratio: holes over 50 % redrawn), fixed sets drawn once from a seed
  and saved under ``runs/eval_masks`` (:func:`eval_mask_set`), and the 10 % hole-area bins the scores
  are grouped by (:func:`area_bins`).

How the ratio is met. ``make_mask(kind, size, ratio)`` hits ``round(ratio * H * W)`` hole pixels
for every sample: circles, ellipses, triangles and irregular strokes select *exactly* that many
pixels from a shape's level-set field (the k pixels nearest the centre in the shape's own gauge, or
nearest the stroke skeleton); squares have integer sides (``h, w`` differ by at most one pixel, the
"minor variations" of seed 002) and random blocks / patches trim their last rectangle, both within a
fraction of a percentage point. Shapes that must fit inside the image (square, circle, ellipse,
triangle) have a largest possible ratio, :func:`max_ratio`; asking for more raises ``ValueError``.
"""
from __future__ import annotations

import math
import numbers
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence, Union

import cv2
import numpy as np
import torch
import torch.nn.functional as F

from .baselines.fills import navier_stokes
from .validation import check_generator, check_image_mask, check_mask, check_ratio, is_int

__all__ = [
    "ratio_stats",
    "MASK_KINDS",
    "INPUT_MODES",
    "make_mask",
    "max_ratio",
    "center_mask",
    "overlap_weights",
    "erode_mask",
    "area_ratio",
    "resize_mask",
    "TrainingMasks",
    "ratio_text",
    "make_input",
    "load_mask",
    "hole_from_pil",
    "LAMA_KINDS",
    "LAMA_MASKS",
    "LAMA_MAX_HOLE",
    "LamaStrokes",
    "LamaBoxes",
    "LamaMaskConfig",
    "lama_mask",
    "area_bins",
    "area_bin_label",
    "EVAL_MASKS_VERSION",
    "eval_mask_set",
    "eval_mask_sets",
]

#: Names accepted by :func:`make_mask`.
MASK_KINDS: tuple[str, ...] = (
    "center", "square", "circle", "ellipse", "triangle", "irregular", "patches", "blocks",
)
#: Input modes of seed 002 accepted by :func:`make_input`.
INPUT_MODES: tuple[str, ...] = ("hole", "mosaic", "hole_ns")

MIN_SIDE = 16  # smallest image side a mask generator accepts

Size = Union[int, Sequence[int]]
Ratio = Union[float, Sequence[float]]

# Shape knobs (fractions of the image side unless stated).
_ELLIPSE_ASPECT = (0.35, 0.75)      # minor / major semi-axis of a random ellipse
_ELLIPSE_TRIES = 8                  # random orientations tried before the axis-aligned fallback
_TRIANGLE_JITTER = 0.35             # radians of jitter of each vertex around the equilateral angles
_TRIANGLE_TRIES = 8
_BLOCK_SIDES = (1 / 8, 1 / 3)       # "blocks": several smaller, possibly overlapping rectangles
_PATCH_SIDES = (1 / 16, 1 / 6)      # "patches": many small rectangles
_BRUSH_WIDTH = (0.05, 0.15)         # irregular: brush width (DeepFill v2: 12-40 px at 256)
_STROKE_STEP = (0.08, 0.25)         # irregular: length of one segment of the random walk
_STROKE_VERTICES = (4, 12)          # irregular: segments per stroke
_MAX_RECTS = 100_000                # safety stop of the rectangle loops


# --------------------------------------------------------------------------------------------
# argument parsing
# --------------------------------------------------------------------------------------------

def _parse_size(size: Size, name: str = "size", minimum: int = MIN_SIDE) -> tuple[int, int]:
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


# --------------------------------------------------------------------------------------------
# ceilings
# --------------------------------------------------------------------------------------------
def max_ratio(kind: str, size: Size) -> float:
    """The largest hole-to-image ratio ``kind`` can have at ``size`` (1.0 when nothing bounds it).

    A square (and the centred square) must fit: side <= min(H, W); a circle of diameter
    min(H, W): pi/4 * min^2 / (H W); the largest ellipse in a rectangle is the inscribed one: pi/4;
    the largest triangle in a rectangle has half its area: 1/2.
    """
    _check_kind(kind)
    h, w = _parse_size(size)
    short = min(h, w)
    if kind in ("center", "square"):
        return short * short / (h * w)
    if kind == "circle":
        return math.pi / 4 * short * short / (h * w)
    if kind == "ellipse":
        return math.pi / 4
    if kind == "triangle":
        return 0.5
    return 1.0


_CEILING_REASON = {
    "center": "a square must fit inside the image (side <= the shorter image side)",
    "square": "a square must fit inside the image (side <= the shorter image side)",
    "circle": "a circle must fit inside the image (diameter <= the shorter image side)",
    "ellipse": "an ellipse must fit inside the image (the inscribed ellipse covers pi/4)",
    "triangle": "a triangle must fit inside the image (at most half of its bounding box)",
}


def _check_kind(kind: str) -> None:
    if kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {MASK_KINDS}")


# --------------------------------------------------------------------------------------------
# the public generator
# --------------------------------------------------------------------------------------------
def make_mask(kind: str, size: Size, ratio: Ratio = 0.25, batch: int = 1,
              generator: torch.Generator | None = None, seed: int | None = None,
              device: str | torch.device | None = None) -> torch.Tensor:
    """A batch of random masks of one ``kind``: float32 ``(batch, 1, H, W)``, 1 = hole.

    Args:
        kind: one of :data:`MASK_KINDS`.
        size: ``int`` (square image) or ``(H, W)``; each side at least 16.
        ratio: hole-to-image area ratio in (0, 1), or a ``(lo, hi)`` range from which each sample
            draws its own ratio uniformly. Every sample meets its ratio within 2 percentage points
            (most kinds exactly, to the pixel). ``"blocks"`` defaults to the 1/4 of seed 003.
        batch: number of masks; each is drawn independently.
        generator, seed: randomness (give at most one); the same generator state or seed gives
            the same masks. With neither, a seed is drawn from torch's global RNG.
        device: where the result goes (masks are drawn on the CPU).

    >>> m = make_mask("center", 128, 0.25)
    >>> m.shape, int(m.sum()), m[0, 0, 32:96, 32:96].min().item()
    (torch.Size([1, 1, 128, 128]), 4096, 1.0)
    """
    _check_kind(kind)
    h, w = _parse_size(size)
    lo, hi = _parse_ratio(ratio)
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    ceiling = max_ratio(kind, (h, w))
    if hi > ceiling:
        raise ValueError(
            f"ratio {hi:g} is too large for kind {kind!r} at size {h}x{w}: {_CEILING_REASON[kind]}, "
            f"so the maximum ratio is {ceiling:.4f}")
    gen = _make_generator(generator, seed)

    # Per-sample ratio and its exact pixel count.
    ratios = torch.full((batch,), lo, dtype=torch.float64)
    if hi > lo:
        ratios = lo + (hi - lo) * _rand(gen, batch)
    targets = ratios * (h * w)                                   # (B,) wanted hole area, px
    counts = targets.round().long().clamp(1, h * w - 1)          # (B,) exact pixel counts

    if kind == "center":
        masks = _rectangles(h, w, targets, random_position=False, generator=gen)
    elif kind == "square":
        masks = _rectangles(h, w, targets, random_position=True, generator=gen)
    elif kind == "circle":
        masks = _circles(h, w, targets, counts, gen)
    elif kind == "ellipse":
        masks = _ellipses(h, w, targets, counts, gen)
    elif kind == "triangle":
        masks = _triangles(h, w, targets, counts, gen)
    elif kind == "irregular":
        masks = torch.from_numpy(np.stack([
            _irregular_one(h, w, int(k), rng) for k, rng in zip(counts, _numpy_rngs(gen, batch))]))
    else:  # "patches" or "blocks"
        sides = _PATCH_SIDES if kind == "patches" else _BLOCK_SIDES
        masks = torch.from_numpy(np.stack([
            _rect_union_one(h, w, int(k), rng, sides) for k, rng in zip(counts, _numpy_rngs(gen, batch))]))
    masks = masks.reshape(batch, 1, h, w).to(torch.float32)
    return masks.to(device) if device is not None else masks


def center_mask(size: Size, hole: int | Sequence[int] = 64, batch: int = 1,
                device: str | torch.device | None = None) -> torch.Tensor:
    """The Context Encoder's centred square (or ``(hh, hw)`` rectangle) hole: ``(batch, 1, H, W)``.

    ``center_mask(128, 64)`` is the central 64x64 of a 128x128 image (rows and columns 32:96).
    """
    h, w = _parse_size(size)
    hh, hw = _parse_size(hole, "hole", minimum=1)
    if hh > h or hw > w:
        raise ValueError(f"hole {hole!r} must fit in the image of size {h}x{w}")
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    mask = torch.zeros(batch, 1, h, w, dtype=torch.float32)
    top, left = (h - hh) // 2, (w - hw) // 2
    mask[:, :, top:top + hh, left:left + hw] = 1.0
    return mask.to(device) if device is not None else mask


# --------------------------------------------------------------------------------------------
# rectangles: "center" and "square"
# --------------------------------------------------------------------------------------------
def _near_square(target: float, h_max: int, w_max: int, centred: bool = False) -> tuple[int, int]:
    """Integer sides (hh, ww) inside (h_max, w_max) with hh * ww nearest ``target``: |hh - ww| <= 1.

    ``centred``: sides may differ by 2 and, among sizes within 0.5 percentage points of the target,
    those with the parity of the image win, so the hole sits exactly in the middle.
    """
    a = int(round(math.sqrt(target)))
    spread = 2 if centred else 1
    tol = 0.005 * h_max * w_max
    best = None
    for hh in range(a - 3, a + 4):
        for ww in range(hh - spread, hh + spread + 1):
            if not (1 <= hh <= h_max and 1 <= ww <= w_max):
                continue
            err = abs(hh * ww - target)
            if centred:
                parity = ((h_max - hh) % 2) + ((w_max - ww) % 2)
                key = (0, parity, abs(hh - ww), err) if err <= tol else (1, 0, 0, err)
            else:
                key = (err, hh != ww)   # nearest area, then prefer a true square
            if best is None or key < best[0]:
                best = (key, hh, ww)
    return best[1], best[2]


def _rectangles(h: int, w: int, targets: torch.Tensor, random_position: bool,
                generator: torch.Generator) -> torch.Tensor:
    batch = targets.shape[0]
    masks = torch.zeros(batch, h, w, dtype=torch.float32)
    u = _rand(generator, batch, 2) if random_position else None
    for b in range(batch):
        hh, ww = _near_square(float(targets[b]), h, w, centred=not random_position)
        if random_position:
            top = min(int(u[b, 0] * (h - hh + 1)), h - hh)
            left = min(int(u[b, 1] * (w - ww + 1)), w - ww)
        else:
            top, left = (h - hh) // 2, (w - ww) // 2
        masks[b, top:top + hh, left:left + ww] = 1.0
    return masks


# --------------------------------------------------------------------------------------------
# level-set shapes: circle, ellipse, triangle
# --------------------------------------------------------------------------------------------
def _pixel_grid(h: int, w: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Pixel-centre coordinates, image extent [0, W] x [0, H]: y (H, 1), x (1, W)."""
    ys = torch.arange(h, dtype=torch.float32).add_(0.5).view(h, 1)
    xs = torch.arange(w, dtype=torch.float32).add_(0.5).view(1, w)
    return ys, xs


def _col(values: torch.Tensor) -> torch.Tensor:
    """Per-sample parameters (B,) -> float32 (B, 1, 1), to broadcast against (H, W) grids."""
    return values.to(torch.float32).view(-1, 1, 1)


def _select_smallest(field: torch.Tensor, counts: torch.Tensor) -> torch.Tensor:
    """Per sample, 1 at the ``counts[b]`` pixels with the smallest ``field`` values (B, H, W).

    The field is a gauge of a shape (its level sets are the shape scaled about a centre), so the
    selected pixels form that shape at exactly the area wanted. Ties at the threshold are taken in
    raster order.
    """
    batch, h, w = field.shape
    flat = field.reshape(batch, h * w)
    out = torch.zeros(batch, h * w, dtype=torch.bool)
    for b in range(batch):
        k = int(counts[b])
        threshold = flat[b].kthvalue(k).values
        below, tie = flat[b] < threshold, flat[b] == threshold
        need = k - int(below.sum())
        out[b] = below | (tie & (tie.cumsum(0) <= need))
    return out.view(batch, h, w).to(torch.float32)


def _place(extent_x: torch.Tensor, extent_y: torch.Tensor, h: int, w: int,
           generator: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """Random centres (cx, cy) of shapes of half-extents (ex, ey) that keep them inside the image."""
    u = _rand(generator, extent_x.shape[0], 2)
    cx = extent_x + u[:, 0] * (w - 2 * extent_x).clamp_min(0)
    cy = extent_y + u[:, 1] * (h - 2 * extent_y).clamp_min(0)
    return cx, cy


def _circles(h: int, w: int, targets: torch.Tensor, counts: torch.Tensor,
             generator: torch.Generator) -> torch.Tensor:
    radius = (targets / math.pi).sqrt().clamp(max=min(h, w) / 2)               # (B,)
    cx, cy = _place(radius, radius, h, w, generator)
    ys, xs = _pixel_grid(h, w)
    field = (xs - _col(cx)) ** 2 + (ys - _col(cy)) ** 2                              # (B, H, W)
    return _select_smallest(field, counts)


def _first_true(ok: torch.Tensor) -> torch.Tensor:
    """Index of the first True along dim 1 (B, C) -> (B,); C when a row has none."""
    c = ok.shape[1]
    idx = torch.where(ok, torch.arange(c).expand_as(ok), torch.full_like(ok, c, dtype=torch.long))
    return idx.min(dim=1).values


def _ellipses(h: int, w: int, targets: torch.Tensor, counts: torch.Tensor,
              generator: torch.Generator) -> torch.Tensor:
    batch, tries = targets.shape[0], _ELLIPSE_TRIES
    t = targets.view(batch, 1)
    u = _rand(generator, batch, tries + 1, 2)
    # Random candidates: orientation theta, aspect q = b / a, area pi a b = t.
    theta = u[:, :tries, 0] * math.pi                                            # (B, C)
    q = _ELLIPSE_ASPECT[0] + (_ELLIPSE_ASPECT[1] - _ELLIPSE_ASPECT[0]) * u[:, :tries, 1]
    a = (t / (math.pi * q)).sqrt()
    b = q * a
    ex = ((a * theta.cos()) ** 2 + (b * theta.sin()) ** 2).sqrt()                # half bounding box
    ey = ((a * theta.sin()) ** 2 + (b * theta.cos()) ** 2).sqrt()
    fits = (2 * ex <= w) & (2 * ey <= h)
    # Fallback that always fits (t <= pi H W / 4): axis-aligned, semi-axes ax (x) and ay (y) with
    # ratio rho = ay / ax clamped to the feasible range [4t / (pi W^2), pi H^2 / (4t)].
    q_fb = _ELLIPSE_ASPECT[0] + (_ELLIPSE_ASPECT[1] - _ELLIPSE_ASPECT[0]) * u[:, tries, 0]
    rho = torch.where(u[:, tries, 1] < 0.5, q_fb, 1 / q_fb)
    rho = torch.minimum(torch.maximum(rho, 4 * targets / (math.pi * w * w)), math.pi * h * h / (4 * targets))
    ax = (targets / (math.pi * rho)).sqrt()
    ay = rho * ax
    pick = _first_true(fits)                                                     # (B,)
    has = pick < tries
    sel = pick.clamp(max=tries - 1).view(batch, 1)
    g = lambda v: v.gather(1, sel).squeeze(1)  # noqa: E731  (candidate chosen per sample)
    theta_s = torch.where(has, g(theta), torch.zeros(batch, dtype=torch.float64))
    a_s = torch.where(has, g(a), ax)
    b_s = torch.where(has, g(b), ay)
    ex_s = torch.where(has, g(ex), ax).clamp(max=w / 2)
    ey_s = torch.where(has, g(ey), ay).clamp(max=h / 2)
    cx, cy = _place(ex_s, ey_s, h, w, generator)
    ys, xs = _pixel_grid(h, w)
    dx, dy = xs - _col(cx), ys - _col(cy)                                            # (B, H, W)
    cos, sin = _col(theta_s.cos()), _col(theta_s.sin())
    along, across = dx * cos + dy * sin, -dx * sin + dy * cos
    field = (along / _col(a_s)) ** 2 + (across / _col(b_s)) ** 2
    return _select_smallest(field, counts)


def _triangle_area(v: torch.Tensor) -> torch.Tensor:
    """Areas of triangles ``v`` (..., 3, 2)."""
    (x0, y0), (x1, y1), (x2, y2) = [(v[..., i, 0], v[..., i, 1]) for i in range(3)]
    return 0.5 * ((x1 - x0) * (y2 - y0) - (x2 - x0) * (y1 - y0)).abs()


def _triangles(h: int, w: int, targets: torch.Tensor, counts: torch.Tensor,
               generator: torch.Generator) -> torch.Tensor:
    batch, tries = targets.shape[0], _TRIANGLE_TRIES
    u = _rand(generator, batch, tries, 4)
    # Random candidates: vertices near the equilateral angles on a circle, random rotation.
    base = torch.tensor([0.0, 2 * math.pi / 3, 4 * math.pi / 3], dtype=torch.float64)
    ang = u[..., :1] * 2 * math.pi + base + (2 * u[..., 1:4] - 1) * _TRIANGLE_JITTER    # (B, C, 3)
    verts = torch.stack([ang.cos(), ang.sin()], dim=-1)                                 # (B, C, 3, 2)
    verts = verts * (targets.view(batch, 1, 1, 1) / _triangle_area(verts)[..., None, None]).sqrt()
    size = verts.amax(dim=2) - verts.amin(dim=2)                                        # (B, C, 2)
    fits = (size[..., 0] <= w) & (size[..., 1] <= h)
    # Fallback that always fits (t <= H W / 2): a triangle with one side along an image side and
    # the opposite vertex on the opposite side (half the image), scaled down to the target area.
    v = _rand(generator, batch, 2)
    side = (v[:, 0] * 4).long().clamp(max=3)                                            # which image side
    apex = v[:, 1]
    fb = torch.zeros(batch, 3, 2, dtype=torch.float64)
    for b in range(batch):
        s, p = int(side[b]), float(apex[b])
        fb[b] = torch.tensor({
            0: [[0, h], [w, h], [p * w, 0]],    # base on the bottom
            1: [[0, 0], [w, 0], [p * w, h]],    # base on the top
            2: [[0, 0], [0, h], [w, p * h]],    # base on the left
            3: [[w, 0], [w, h], [0, p * h]],    # base on the right
        }[s], dtype=torch.float64)
    fb = fb * (targets / (h * w / 2)).clamp(max=1.0).sqrt().view(batch, 1, 1)
    pick = _first_true(fits)
    has = (pick < tries).view(batch, 1, 1)
    chosen = verts[torch.arange(batch), pick.clamp(max=tries - 1)]                      # (B, 3, 2)
    tri = torch.where(has, chosen, fb)
    # Random position with the bounding box inside the image.
    lo, hi = tri.amin(dim=1), tri.amax(dim=1)                                            # (B, 2)
    room = (torch.tensor([w, h], dtype=torch.float64) - (hi - lo)).clamp_min(0)
    tri = tri - lo.unsqueeze(1) + (_rand(generator, batch, 2) * room).unsqueeze(1)
    # Gauge of the triangle about its centroid: max_i n_i . (p - c) / h_i (level 1 = the triangle).
    centre = tri.mean(dim=1)                                                             # (B, 2)
    edge = tri.roll(-1, dims=1) - tri                                                    # (B, 3, 2)
    normal = torch.stack([edge[..., 1], -edge[..., 0]], dim=-1)
    normal = normal / normal.norm(dim=-1, keepdim=True)
    dist = (normal * (tri - centre.unsqueeze(1))).sum(-1)                                # (B, 3)
    normal = normal * dist.sign().unsqueeze(-1)                                          # outward
    dist = dist.abs()
    ys, xs = _pixel_grid(h, w)
    dx, dy = xs - _col(centre[:, 0]), ys - _col(centre[:, 1])                          # (B, H, W)
    field = torch.stack([(_col(normal[:, i, 0]) * dx + _col(normal[:, i, 1]) * dy) / _col(dist[:, i])
                         for i in range(3)]).amax(dim=0)                                 # (B, H, W)
    return _select_smallest(field, counts)


# --------------------------------------------------------------------------------------------
# unions of rectangles: "blocks" (seed 003) and "patches" (seed 000)
# --------------------------------------------------------------------------------------------
def _rect_union_one(h: int, w: int, count: int, rng: np.random.Generator,
                    sides: tuple[float, float]) -> np.ndarray:
    """Random, possibly overlapping rectangles until the union has ``count`` pixels.

    The last rectangle is shrunk (anchored at its top-left corner) to the size whose new pixels come
    nearest the remainder, preferring its original aspect among near-exact sizes.
    """
    canvas = np.zeros((h, w), dtype=bool)
    scale = math.sqrt(h * w)  # side lengths scale with the image, not with each of its sides
    h_lo, h_hi = min(h, max(2, round(sides[0] * scale))), min(h, max(3, round(sides[1] * scale)))
    w_lo, w_hi = min(w, max(2, round(sides[0] * scale))), min(w, max(3, round(sides[1] * scale)))
    tol = max(1.0, 0.002 * h * w)  # 0.2 percentage points
    area = 0
    for _ in range(_MAX_RECTS):
        rem = count - area
        if rem <= 0:
            break
        rh, rw = int(rng.integers(h_lo, h_hi + 1)), int(rng.integers(w_lo, w_hi + 1))
        y, x = int(rng.integers(0, h - rh + 1)), int(rng.integers(0, w - rw + 1))
        new = ~canvas[y:y + rh, x:x + rw]
        gain = int(new.sum())
        if gain < rem:
            canvas[y:y + rh, x:x + rw] = True
            area += gain
            continue
        # Last rectangle: new pixels of every (hh, ww) sub-rectangle from the top-left corner.
        added = new.astype(np.int64).cumsum(0).cumsum(1)                        # (rh, rw)
        err = np.abs(added - rem)
        hh, ww = np.meshgrid(np.arange(1, rh + 1), np.arange(1, rw + 1), indexing="ij")
        aspect = np.abs(np.log((hh / ww) / (rh / rw)))
        ok = err <= max(tol, err.min())
        i, j = np.unravel_index(np.argmin(np.where(ok, aspect * 1e6 + err, np.inf)), err.shape)
        if rem <= err[i, j]:  # adding nothing is as close: stop here
            break
        canvas[y:y + i + 1, x:x + j + 1] = True
        break
    else:  # pragma: no cover - a union of random rectangles covers the image long before this
        raise RuntimeError(f"could not reach {count} hole pixels in {_MAX_RECTS} rectangles")
    return canvas


# --------------------------------------------------------------------------------------------
# free-form strokes: "irregular" (DeepFill v2 / LaMa style)
# --------------------------------------------------------------------------------------------
def _smooth_noise(h: int, w: int, rng: np.random.Generator) -> np.ndarray:
    """Low-frequency noise in [0, 1): breaks ties between equidistant pixels in coherent runs."""
    grid = rng.random((max(2, h // 16), max(2, w // 16))).astype(np.float32)
    return np.clip(cv2.resize(grid, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 0.999)


def _irregular_one(h: int, w: int, count: int, rng: np.random.Generator) -> np.ndarray:
    """Brush strokes (random walks of thick segments with round joints) until ``count`` pixels
    are covered, then the boundary moved by at most a pixel or so to hit ``count`` exactly."""
    short = min(h, w)
    canvas = np.zeros((h, w), dtype=np.uint8)
    width_lo = max(2, round(_BRUSH_WIDTH[0] * short))
    width_hi = max(width_lo + 1, round(_BRUSH_WIDTH[1] * short))
    area = 0
    while area < count:
        width = int(rng.integers(width_lo, width_hi + 1))
        x, y = rng.uniform(0, w), rng.uniform(0, h)
        angle = rng.uniform(0, 2 * math.pi)
        for _ in range(int(rng.integers(_STROKE_VERTICES[0], _STROKE_VERTICES[1] + 1))):
            angle += rng.uniform(-1.2, 1.2)
            step = max(2.0, rng.uniform(*_STROKE_STEP) * short)
            nx, ny = x + step * math.cos(angle), y + step * math.sin(angle)
            if not 0 <= nx <= w - 1:  # bounce off the image edge instead of sliding along it
                nx, angle = float(np.clip(2 * np.clip(nx, 0, w - 1) - nx, 0, w - 1)), math.pi - angle
            if not 0 <= ny <= h - 1:
                ny, angle = float(np.clip(2 * np.clip(ny, 0, h - 1) - ny, 0, h - 1)), -angle
            cv2.line(canvas, (int(x), int(y)), (int(nx), int(ny)), 1, thickness=width)
            cv2.circle(canvas, (int(nx), int(ny)), width // 2, 1, thickness=-1)
            x, y = nx, ny
            area = cv2.countNonZero(canvas)
            if area >= count:
                break
    # Signed distance to the stroke boundary (inside <= 0, outside >= 1) plus smooth tie noise;
    # the ``count`` smallest values shave the overshoot of the last segment off the boundary.
    inside = cv2.distanceTransform(canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    outside = cv2.distanceTransform(1 - canvas, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    field = np.where(canvas > 0, 1.0 - inside, outside) + _smooth_noise(h, w, rng)
    flat = field.ravel()
    out = np.zeros(h * w, dtype=bool)
    out[np.argpartition(flat, count - 1)[:count]] = True
    return out.reshape(h, w)


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
    hw = _parse_size(size, minimum=1)
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
    """Seed 002's mosaic: bilinear downsampling by 1/unit, bilinear upsampling back."""
    h, w = image.shape[-2:]
    small = (max(1, round(h / unit)), max(1, round(w / unit)))
    coarse = F.interpolate(image, size=small, mode="bilinear", align_corners=False)
    return F.interpolate(coarse, size=(h, w), mode="bilinear", align_corners=False).clamp(0.0, 1.0)


def make_input(image: torch.Tensor, mask: torch.Tensor, mode: str = "hole", fill="mean",
               mosaic_unit: int = 12) -> torch.Tensor:
    """The model's input image ``(B, 3, H, W)``: known pixels exactly as given, the hole filled.

    Modes (seed 002): ``"hole"`` fills with ``fill`` (``"mean"``: each image's per-channel mean of
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
    from .data.reading import read_image_file

    hole = read_image_file(path, hole_from_pil, what="mask")
    if not hole_is_white:
        hole = ~hole
    mask = torch.from_numpy(hole.astype(np.float32))[None, None]                    # (1, 1, H, W)
    if size is not None:
        hw = _parse_size(size, minimum=1)
        mask = F.interpolate(mask, size=hw, mode="nearest-exact")
    share = float(mask.mean())
    if share > 0.5:
        how = ("white or opaque = hole; hole_is_white=False, in `inpaint fill` --invert-mask, swaps hole and keep"
               if hole_is_white else "read inverted, black or transparent = hole; hole_is_white=True, in "
               "`inpaint fill` no --invert-mask, reads white as the hole")
        warnings.warn(f"mask {path}: the hole covers {100 * share:.1f} % of the image, more than half: is the mask "
                      f"inverted? ({how})", UserWarning, stacklevel=2)
    return mask


def ratio_stats(kinds: Sequence[str] = MASK_KINDS, size: Size = 128, ratios: Sequence[float] = (0.1, 0.25, 0.4),
                samples: int = 200, tolerance: float = 0.02, generator: torch.Generator | None = None,
                seed: int | None = None) -> tuple[list[dict], dict[str, dict[float, torch.Tensor]]]:
    """Area-ratio control measured: ``samples`` masks of each kind at each target ratio.

    Returns ``(rows, achieved)``: one row per (kind, target) with the mean, min and max achieved
    ratio, the worst error in percentage points and whether every sample met ``tolerance``; and the
    achieved ratios themselves, ``achieved[kind][target] -> (samples,)`` (for a histogram). A target
    above a kind's geometric ceiling (:func:`max_ratio`) is left out of both. Used by notebook 01.
    """
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be a positive int, got {samples!r}")
    gen = _make_generator(generator, seed)
    rows: list[dict] = []
    achieved: dict[str, dict[float, torch.Tensor]] = {}
    for kind in kinds:
        _check_kind(kind)
        achieved[kind] = {}
        for target in ratios:
            target = check_ratio(target)
            if target > max_ratio(kind, size):
                continue
            got = area_ratio(make_mask(kind, size, target, batch=samples, generator=gen))
            err = (got - target).abs().max().item()
            achieved[kind][target] = got
            rows.append({"kind": kind, "target": target, "mean": got.mean().item(), "min": got.min().item(),
                         "max": got.max().item(), "max_err_pp": 100 * err, "within_tol": err <= tolerance})
    return rows, achieved


# --------------------------------------------------------------------------------------------
# LaMa's evaluation masks (Suvorov et al. 2021) and the fixed evaluation sets drawn from them
# --------------------------------------------------------------------------------------------
#: LaMa's three evaluation mask families, accepted by :func:`lama_mask` and :func:`eval_mask_set`.
LAMA_KINDS: tuple[str, ...] = ("thin", "medium", "thick")
#: LaMa rejects a mask whose hole covers more than this share of the image (``max_tamper_area``).
LAMA_MAX_HOLE = 0.5
#: The image side LaMa's parameters are given for; other sizes scale every length by ``min(H, W) / 256``.
LAMA_BASE_SIDE = 256
_LAMA_TRIES = 1000  # redraws per mask before giving up (the 50 % rule rejects a few per cent at most)


@dataclass(frozen=True)
class LamaStrokes:
    """LaMa's random irregular mask: ``times`` strokes, each a polyline of 1 to 5 straight segments
    drawn with a brush (lengths in pixels at 256 px; ``min_len`` / ``min_width`` are the constants
    LaMa adds to the drawn length and width).

    Per stroke: a start pixel uniform over the image; per segment an angle ``0.01 + k`` radians, ``k``
    uniform in ``0 .. max_angle - 1`` (mirrored to ``2 pi - angle`` on every other stroke), a length
    ``min_len + U{0 .. max_len - 1}``, a brush width ``min_width + U{0 .. max_width - 1}``; the end
    point is clipped to the image. LaMa's generator, as its configs run it (no ramp, coefficient 1),
    draws ``min_times .. max_times + 1`` strokes: its ``max_times`` gets one added before the draw.
    """

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4
    min_len: int = 10
    min_width: int = 5


@dataclass(frozen=True)
class LamaBoxes:
    """LaMa's random rectangle mask: ``min_times .. max_times`` axis-aligned boxes whose width and
    height are drawn independently in ``bbox_min_size .. bbox_max_size`` (clipped to the image less
    twice ``margin``), each placed uniformly at least ``margin`` pixels from the image border."""

    margin: int
    bbox_min_size: int
    bbox_max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaMaskConfig:
    """One LaMa family: strokes, and with weight ``box_proba`` (against 1 for the strokes) boxes.
    LaMa's mixture normalises the weights: medium and thick draw boxes with p = 0.3 / 1.3 = 0.23."""

    strokes: LamaStrokes
    boxes: LamaBoxes | None = None
    box_proba: float = 0.0


#: LaMa's ``configs/data_gen/random_{thin,medium,thick}_256.yaml`` (every length in pixels at 256 px).
LAMA_MASKS: dict[str, LamaMaskConfig] = {
    "thin": LamaMaskConfig(LamaStrokes(min_times=4, max_times=50, max_width=10, max_len=40)),
    "medium": LamaMaskConfig(LamaStrokes(min_times=4, max_times=5, max_width=50, max_len=100),
                             LamaBoxes(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
                             box_proba=0.3),
    "thick": LamaMaskConfig(LamaStrokes(min_times=1, max_times=5, max_width=100, max_len=200),
                            LamaBoxes(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
                            box_proba=0.3),
}


def _scaled(value: int, scale: float, minimum: int = 0) -> int:
    """A length of LaMa's 256-px configs at another image size."""
    return max(minimum, int(round(value * scale)))


def _lama_strokes_one(h: int, w: int, p: LamaStrokes, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One LaMa irregular mask ``(H, W)`` bool: ``p``'s strokes with every length scaled by ``scale``."""
    canvas = np.zeros((h, w), dtype=np.uint8)
    max_len, max_width = _scaled(p.max_len, scale, 1), _scaled(p.max_width, scale, 1)
    min_len, min_width = _scaled(p.min_len, scale), _scaled(p.min_width, scale, 1)
    for stroke in range(int(rng.integers(p.min_times, p.max_times + 2))):    # LaMa: up to max_times + 1
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):                             # 1 to 5 segments
            angle = 0.01 + int(rng.integers(p.max_angle))
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = min_len + int(rng.integers(max_len))
            width = min_width + int(rng.integers(max_width))
            nx = int(np.clip(x + length * math.sin(angle), 0, w))
            ny = int(np.clip(y + length * math.cos(angle), 0, h))
            cv2.line(canvas, (x, y), (nx, ny), 1, thickness=width)
            x, y = nx, ny
    return canvas.astype(bool)


def _lama_boxes_one(h: int, w: int, p: LamaBoxes, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One LaMa box mask ``(H, W)`` bool, lengths scaled by ``scale``."""
    margin = _scaled(p.margin, scale)
    lo = _scaled(p.bbox_min_size, scale, 1)
    hi = min(_scaled(p.bbox_max_size, scale, 1), h - 2 * margin, w - 2 * margin)
    if hi < lo:
        raise ValueError(f"LaMa boxes of at least {lo} px with a {margin}-px margin do not fit in {h}x{w}")
    canvas = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        bw, bh = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        x0 = int(rng.integers(margin, w - margin - bw + 1))
        y0 = int(rng.integers(margin, h - margin - bh + 1))
        canvas[y0:y0 + bh, x0:x0 + bw] = True
    return canvas


def _lama_one(h: int, w: int, config: LamaMaskConfig, max_hole: float, rng: np.random.Generator) -> np.ndarray:
    """Draws until a mask has a hole in ``(0, max_hole]`` of the image (LaMa's rejection rule)."""
    scale = min(h, w) / LAMA_BASE_SIDE
    box_p = config.box_proba / (1.0 + config.box_proba) if config.boxes is not None else 0.0
    for _ in range(_LAMA_TRIES):
        if rng.random() < box_p:
            hole = _lama_boxes_one(h, w, config.boxes, scale, rng)
        else:
            hole = _lama_strokes_one(h, w, config.strokes, scale, rng)
        area = int(hole.sum())
        if 0 < area <= max_hole * h * w:
            return hole
    raise RuntimeError(f"no LaMa mask with a hole of at most {max_hole:.0%} of {h}x{w} in {_LAMA_TRIES} draws")


def lama_mask(kind: str, size: Size = LAMA_BASE_SIDE, batch: int = 1, generator: torch.Generator | None = None,
              seed: int | None = None, max_hole: float = LAMA_MAX_HOLE,
              device: str | torch.device | None = None) -> torch.Tensor:
    """LaMa's evaluation masks (Suvorov et al. 2021, arXiv:2109.07161; its ``random_{kind}_256``
    configs, :data:`LAMA_MASKS`): float32 ``(batch, 1, H, W)``, 1 = hole.

    ``"thin"``: 4 to 51 strokes of brush 5-14 px, segments 10-49 px; ``"medium"``: 4 to 6 strokes of
    5-54 px, segments 10-109 px, or (p = 0.23) 1 to 5 boxes of 10-50 px; ``"thick"``: 1 to 6 strokes
    of 5-104 px, segments 10-209 px, or (p = 0.23) 1 to 3 boxes of 30-150 px kept 10 px from the
    border (all at 256 px). At another size every length scales by ``min(H, W) / 256`` (LaMa's own
    512-px configs are not exactly the 256 ones doubled; ours are, so the hole-area distribution
    stays about the same at every size). A mask whose hole covers more than ``max_hole`` of the image
    (LaMa: 50 %), or nothing, is drawn again. LaMa draws at the image's size before a square crop;
    we draw at the final size. Unlike :func:`make_mask` the hole area is not controlled: it is what
    the protocol bins the scores by (:func:`area_bins`).
    """
    if kind not in LAMA_KINDS:
        raise ValueError(f"unknown LaMa mask kind {kind!r}; choose one of {LAMA_KINDS}")
    h, w = _parse_size(size)
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    max_hole = check_ratio(max_hole, "max_hole")
    gen = _make_generator(generator, seed)
    config = LAMA_MASKS[kind]
    masks = torch.from_numpy(np.stack([_lama_one(h, w, config, max_hole, rng) for rng in _numpy_rngs(gen, batch)]))
    masks = masks.reshape(batch, 1, h, w).to(torch.float32)
    return masks.to(device) if device is not None else masks


def area_bins(mask: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Hole-area bin of each mask, ``(B,)`` long: bin ``k`` holds hole shares in ``[k / bins, (k + 1) /
    bins)`` (LaMa's evaluator: ``0-10 %``, ``10-20 %``, ..., a share of exactly 10 % in ``10-20 %``,
    100 % in the last bin). Counted in whole pixels, so a share on an edge falls on the right side."""
    check_mask(mask)
    if not is_int(bins) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    holes = (mask > 0.5).flatten(1).sum(dim=1).cpu()                                  # (B,) hole pixels
    total = mask[0].numel()
    return torch.clamp(holes * bins // total, max=bins - 1)


def area_bin_label(k: int, bins: int = 10) -> str:
    """``"10-20%"`` for bin 1 of 10 (LaMa's labels)."""
    lo, hi = 100 * k / bins, 100 * (k + 1) / bins
    return f"{lo:g}-{hi:g}%"


EVAL_MASKS_VERSION = 1  # bumped whenever a generator changes what a seed draws: old sets are then redrawn


def _eval_set_name(kind: str, h: int, w: int, n: int, seed: int, ratio: float | None) -> str:
    tag = kind if ratio is None else f"{kind}-r{ratio:g}"
    return f"{tag}_{h}x{w}_n{n}_seed{seed}_v{EVAL_MASKS_VERSION}"


def _hole_digest(hole: np.ndarray) -> str:
    """SHA-256 of a hole ``(H, W)`` bool, shape included (the decoded pixels, not the PNG bytes)."""
    import hashlib

    return hashlib.sha256(f"{hole.shape[0]}x{hole.shape[1]}:".encode() + np.packbits(hole).tobytes()).hexdigest()


def _read_eval_set(folder: Path, manifest: dict) -> tuple[np.ndarray | None, str]:
    """The stored holes ``(n, H, W)`` bool, or ``(None, what is wrong)``."""
    from PIL import Image

    holes = []
    for name, digest in zip(manifest["files"], manifest["sha256"]):
        path = folder / name
        if not path.is_file():
            return None, f"{name} is missing"
        try:
            with Image.open(path) as img:
                hole = np.asarray(img.convert("L")) >= 128
        except (OSError, ValueError) as err:
            return None, f"{name} is unreadable ({err})"
        if _hole_digest(hole) != digest:
            return None, f"{name} does not match its stored digest (edited or damaged)"
        holes.append(hole)
    return np.stack(holes), ""


def eval_mask_set(kind: str, size: Size = LAMA_BASE_SIDE, n: int = 100, seed: int = 0, ratio: float | None = None,
                  root: str | Path | None = None, max_hole: float = LAMA_MAX_HOLE) -> torch.Tensor:
    """A fixed evaluation mask set, ``(n, 1, H, W)`` float32 (1 = hole): drawn once from ``seed``,
    saved, and read back from disk from then on (the LaMa protocol: every method, every run, the same
    holes).

    ``kind``: one of :data:`LAMA_KINDS` (:func:`lama_mask`, holes of at most ``max_hole``) or of
    :data:`MASK_KINDS` with a ``ratio`` (:func:`make_mask`). The set lives in
    ``<root>/<kind>_<H>x<W>_n<n>_seed<seed>_v<version>/`` (``root`` defaults to
    ``config.runs_dir() / "eval_masks"``, ignored by git) as ``0000.png ...`` (8-bit, 255 = hole, what
    :func:`load_mask` reads) and ``manifest.json`` holding the parameters and the SHA-256 of each
    mask's pixels. Deleted, it is drawn again identically (same bytes). A file that is missing or no
    longer matches its digest, or a manifest that disagrees, gives a ``UserWarning`` naming it and
    the set is drawn again and rewritten; if the new draw differs from the stored digests (the
    generator changed without :data:`EVAL_MASKS_VERSION` moving) that is said too.
    """
    import json

    h, w = _parse_size(size)
    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if kind in LAMA_KINDS:
        if ratio is not None:
            raise ValueError(f"LaMa kind {kind!r} has no ratio (its hole area is random, binned afterwards); "
                             "pass ratio=None")
        max_hole = check_ratio(max_hole, "max_hole")

        def draw() -> torch.Tensor:
            return lama_mask(kind, (h, w), batch=n, seed=int(seed), max_hole=max_hole)
    elif kind in MASK_KINDS:
        if ratio is None:
            raise ValueError(f"kind {kind!r} needs a ratio (the hole-to-image area of make_mask)")
        ratio = check_ratio(ratio)

        def draw() -> torch.Tensor:
            return make_mask(kind, (h, w), ratio, batch=n, seed=int(seed))
    else:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {LAMA_KINDS + MASK_KINDS}")
    if root is None:
        from .config import runs_dir
        root = runs_dir() / "eval_masks"
    folder = Path(root) / _eval_set_name(kind, h, w, n, int(seed), ratio)
    params = {"kind": kind, "size": [h, w], "n": n, "seed": int(seed), "ratio": ratio,
              "max_hole": max_hole if kind in LAMA_KINDS else None, "version": EVAL_MASKS_VERSION}
    manifest_path = folder / "manifest.json"

    problem, stored = "", None
    if manifest_path.is_file():
        try:
            stored = json.loads(manifest_path.read_text())
            if {k: stored.get(k) for k in params} != params:
                problem = "manifest.json has other parameters"
            elif len(stored.get("files", [])) != n or len(stored.get("sha256", [])) != n:
                problem = f"manifest.json does not list {n} masks"
            else:
                holes, problem = _read_eval_set(folder, stored)
                if holes is not None:
                    return torch.from_numpy(holes).to(torch.float32).unsqueeze(1)
        except (ValueError, TypeError, AttributeError) as err:
            problem, stored = f"manifest.json is unreadable ({err})", None
    elif folder.is_dir() and any(folder.iterdir()):
        problem = "manifest.json is missing"

    from PIL import Image

    masks = draw()
    holes = masks[:, 0].numpy() > 0.5                                                  # (n, H, W)
    digests = [_hole_digest(hole) for hole in holes]
    if problem:
        note = ""
        old = stored.get("sha256") if isinstance(stored, dict) else None
        if isinstance(old, list) and len(old) == n and old != digests:
            changed = sum(a != b for a, b in zip(old, digests))
            note = (f"; {changed} of {n} redrawn masks differ from the stored digests: did the generator change "
                    "without EVAL_MASKS_VERSION moving?")
        warnings.warn(f"evaluation mask set {folder}: {problem}; drawn again from seed {seed} and rewritten{note}",
                      UserWarning, stacklevel=2)
    folder.mkdir(parents=True, exist_ok=True)
    files = [f"{i:04d}.png" for i in range(n)]
    for name, hole in zip(files, holes):
        Image.fromarray(hole.astype(np.uint8) * 255, mode="L").save(folder / name)
    manifest = {**params, "files": files, "sha256": digests,
                "generator": "masks.lama_mask" if kind in LAMA_KINDS else "masks.make_mask"}
    tmp = manifest_path.with_suffix(".json.tmp")
    tmp.write_text(json.dumps(manifest, indent=1) + "\n")
    tmp.replace(manifest_path)                        # the manifest last: a half-written set has none
    return masks


def eval_mask_sets(kinds: Sequence[str] = LAMA_KINDS, size: Size = LAMA_BASE_SIDE, n: int = 100, seed: int = 0,
                   root: str | Path | None = None) -> dict[str, torch.Tensor]:
    """``{kind: eval_mask_set(kind, size, n, seed)}`` for LaMa kinds: the sets :func:`inpaint_utils.
    comparison.compare_on_masks` takes (one seed, each kind drawn independently of the others)."""
    if not kinds:
        raise ValueError("kinds must be non-empty")
    return {kind: eval_mask_set(kind, size, n, seed, root=root) for kind in kinds}
