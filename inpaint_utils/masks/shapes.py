"""The random hole shapes of :func:`make_mask` (part of :mod:`inpaint_utils.masks`): centre, square,
circle, ellipse, triangle, irregular strokes, random patches and blocks, their geometric ceilings
(:func:`max_ratio`), the Context Encoder's centred hole (:func:`center_mask`) and the measured ratio
control (:func:`ratio_stats`)."""
from __future__ import annotations

import math
from typing import Sequence

import cv2
import numpy as np
import torch

from ..validation import check_ratio, is_int
from .common import Ratio, Size, _make_generator, _numpy_rngs, _parse_ratio, _rand, parse_size
from .ops import area_ratio

#: Names accepted by :func:`make_mask`.
MASK_KINDS: tuple[str, ...] = (
    "center", "square", "circle", "ellipse", "triangle", "irregular", "patches", "blocks",
)

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
# ceilings
# --------------------------------------------------------------------------------------------
def max_ratio(kind: str, size: Size) -> float:
    """The largest hole-to-image ratio ``kind`` can have at ``size`` (1.0 when nothing bounds it).

    A square (and the centred square) must fit: side <= min(H, W); a circle of diameter
    min(H, W): pi/4 * min^2 / (H W); the largest ellipse in a rectangle is the inscribed one: pi/4;
    the largest triangle in a rectangle has half its area: 1/2.
    """
    _check_kind(kind)
    h, w = parse_size(size)
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
            (most kinds exactly, to the pixel). ``"blocks"`` defaults to the 1/4 of the cascade CE paper.
        batch: number of masks; each is drawn independently.
        generator, seed: randomness (give at most one); the same generator state or seed gives
            the same masks. With neither, a seed is drawn from torch's global RNG.
        device: where the result goes (masks are drawn on the CPU).

    >>> m = make_mask("center", 128, 0.25)
    >>> m.shape, int(m.sum()), m[0, 0, 32:96, 32:96].min().item()
    (torch.Size([1, 1, 128, 128]), 4096, 1.0)
    """
    _check_kind(kind)
    h, w = parse_size(size)
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
    h, w = parse_size(size)
    hh, hw = parse_size(hole, "hole", minimum=1)
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
# unions of rectangles: "blocks" (the cascade CE paper) and "patches" (Nanavati and Patel)
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
