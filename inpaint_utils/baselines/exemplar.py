"""Exemplar baselines: PatchMatch inpainting and nearest-neighbour scene completion.

Two classical, non-learned fills that copy pixels which exist somewhere, beside the diffusion-like
Telea / Navier-Stokes of :mod:`.fills` (used by notebook 07's comparison and by
``inpaint fill --method patchmatch / nn``):

* :func:`patchmatch_inpaint`: the hole is filled from patches of the **same image**. A nearest-neighbour
  field (NNF: for every patch that touches the hole, the known patch most like it) is found with
  PatchMatch (Barnes et al. 2009: random initialisation, propagation, random search), and the hole
  is re-estimated by letting every overlapping patch vote for its pixels (the EM-like completion of
  Wexler et al. 2007), coarse to fine on an image pyramid. This is the algorithm behind Photoshop's
  Content-Aware Fill, the baseline Pathak et al. 2016 (Context Encoders, Fig. 5) compare with.
  OpenCV's ``xphoto.inpaint`` (shift-map, FSR) lives in ``opencv-contrib-python-headless``, which would
  install a second ``cv2`` over our ``opencv-python-headless``; we implement PatchMatch instead.
* :func:`nearest_neighbour_fill` / :class:`NearestNeighbourInpainter`: scene completion by the
  **nearest training image** (Hays and Efros 2007): the training image whose known region looks most
  like the query's is pasted into the hole. Hays and Efros match gist + colour and blend with a graph
  cut and Poisson editing; our feature is a *tiny image* (the image area-averaged to ``size x size``,
  colour, Torralba et al. 2008) compared by L2 over the **known** pixels only (hole pixels of the small
  image, any small pixel a hole pixel touches, are left out), optionally followed by GLCIC's
  Poisson post-process (:func:`.fills.poisson_blend`). Pathak et al.'s Table 1
  has two such rows (HOG features, and their learned features); this is a third, simplest variant.

Both take ``image`` float ``(B, 3, H, W)`` in ``[0, 1]`` and ``mask`` ``(B or 1, 1, H, W)``, 1 = hole,
and return the composite whose known pixels are exactly the input's.
"""
from __future__ import annotations

from typing import Any, Iterable, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..validation import check_image, check_image_mask
from .fills import poisson_blend, require_known_pixels

__all__ = ["patch_distances", "nearest_neighbour_field", "patchmatch_fill", "patchmatch_inpaint",
           "tiny_features", "NearestNeighbourInpainter", "nearest_neighbour_fill"]


# --------------------------------------------------------------------------------------------------
# PatchMatch (Barnes et al. 2009) on numpy arrays: image (H, W, 3) float64, hole (H, W) bool
# --------------------------------------------------------------------------------------------------
def _check_patch_size(patch_size: Any) -> int:
    if isinstance(patch_size, bool) or not isinstance(patch_size, int) or patch_size < 3 or patch_size % 2 == 0:
        raise ValueError(f"patch_size must be an odd integer >= 3, got {patch_size!r}")
    return patch_size


def _dilate(hole: np.ndarray, r: int) -> np.ndarray:
    """``hole`` grown by ``r`` pixels (a (2r+1)^2 square): the centres whose patch touches the hole."""
    h, w = hole.shape
    padded = np.pad(hole, r)
    out = np.zeros_like(hole)
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            out |= padded[dy:dy + h, dx:dx + w]
    return out


def _offsets(r: int) -> tuple[np.ndarray, np.ndarray]:
    dy, dx = np.meshgrid(np.arange(-r, r + 1), np.arange(-r, r + 1), indexing="ij")
    return dy.ravel(), dx.ravel()                                              # (P,), (P,)


def patch_distances(image: np.ndarray, ty: np.ndarray, tx: np.ndarray, sy: np.ndarray, sx: np.ndarray,
                    patch_size: int) -> np.ndarray:
    """Sum of squared differences between the ``patch_size`` patches of ``image`` (H, W, C) centred at
    targets ``(ty, tx)`` and sources ``(sy, sx)`` (arrays of the same length N); the image is
    edge-padded so centres anywhere in it have a whole patch. Returns ``(N,)``."""
    r = patch_size // 2
    padded = np.pad(image, ((r, r), (r, r), (0, 0)), mode="edge")
    return _distances(padded, ty + r, tx + r, sy + r, sx + r, *_offsets(r))


def _distances(padded: np.ndarray, ty, tx, sy, sx, oy, ox, known: np.ndarray | None = None) -> np.ndarray:
    # (N, P, C) patches gathered by fancy indexing, in padded coordinates
    diff = padded[ty[:, None] + oy, tx[:, None] + ox] - padded[sy[:, None] + oy, sx[:, None] + ox]
    if known is not None:                      # only the target patch's known pixels count (padded (H, W) 0/1)
        diff = diff * known[ty[:, None] + oy, tx[:, None] + ox][..., None]
    return np.einsum("npc,npc->n", diff, diff)


class _Field:
    """The NNF of one pyramid level: targets (pixels whose patch touches the hole) -> a valid source
    (a pixel whose whole patch is known and which is not a target)."""

    def __init__(self, hole: np.ndarray, patch_size: int):
        self.r = patch_size // 2
        self.oy, self.ox = _offsets(self.r)
        self.h, self.w = hole.shape
        # in edge-padded coordinates the padding of a hole pixel on the border is a hole too
        self.targets = _dilate(hole, self.r)                                   # (H, W) bool
        self.valid = ~self.targets
        self.ty, self.tx = np.nonzero(self.targets)
        self.vy, self.vx = np.nonzero(self.valid)
        if self.vy.size == 0:
            if min(self.h, self.w) < 3:      # not even the smallest patch fits: no option helps
                raise ValueError(f"image {self.w}x{self.h} is too small for patchmatch: it copies patches of at "
                                 f"least 3x3 known pixels; use telea or ns on an image this small")
            smaller = " a smaller patch_size (--patch-size) or" if patch_size > 3 else ""
            raise ValueError(f"the hole leaves no whole {patch_size}x{patch_size} known patch to copy from "
                             f"(image {self.w}x{self.h}): use{smaller} a smaller hole")

    def random_sources(self, n: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        pick = rng.integers(0, self.vy.size, size=n)
        return self.vy[pick].copy(), self.vx[pick].copy()


def _improve(padded, field: _Field, sy, sx, dist, cy, cx, known=None) -> None:
    """Keep the candidate sources ``(cy, cx)`` where they are valid and nearer (in place)."""
    cy = np.clip(cy, 0, field.h - 1)
    cx = np.clip(cx, 0, field.w - 1)
    ok = field.valid[cy, cx]
    if not ok.any():
        return
    idx = np.nonzero(ok)[0]
    r = field.r
    d = _distances(padded, field.ty[idx] + r, field.tx[idx] + r, cy[idx] + r, cx[idx] + r, field.oy, field.ox, known)
    better = d < dist[idx]
    i = idx[better]
    sy[i], sx[i], dist[i] = cy[i], cx[i], d[better]


def _patchmatch(estimate: np.ndarray, field: _Field, sy: np.ndarray, sx: np.ndarray, iterations: int,
                rng: np.random.Generator, hole: np.ndarray | None = None) -> np.ndarray:
    """``iterations`` rounds of PatchMatch on the targets of ``field`` against ``estimate`` (H, W, C):
    each round propagates the sources of the 4 neighbours (shifted by one pixel: a good match of my
    neighbour, moved by the same step, is likely good for me) and then tries random sources in
    windows halving from the image size down to one pixel (random search). Updates ``sy, sx`` in place
    and returns the distances. This is the parallel (all targets at once, "Jacobi") form of Barnes et
    al.'s scan-order algorithm: each round moves good matches one pixel further. With ``hole`` given,
    only the known pixels of each target patch are compared (the first search of the coarsest level,
    whose hole holds only a smooth guess)."""
    r = field.r
    padded = np.pad(estimate, ((r, r), (r, r), (0, 0)), mode="edge")
    known = None if hole is None else np.pad((~hole).astype(np.float64), r, mode="edge")
    dist = _distances(padded, field.ty + r, field.tx + r, sy + r, sx + r, field.oy, field.ox, known)
    # the source map over the whole image (targets only are read back): neighbour lookups
    map_y = np.full((field.h, field.w), -1, dtype=np.int64)
    map_x = np.full((field.h, field.w), -1, dtype=np.int64)
    for _ in range(iterations):
        # propagation from the 4 neighbours (the neighbour's own position when it is not a target: the
        # known pixel itself is its perfect match)
        map_y[...] = np.arange(field.h)[:, None]
        map_x[...] = np.arange(field.w)[None, :]
        map_y[field.ty, field.tx], map_x[field.ty, field.tx] = sy, sx
        for dy, dx in ((0, -1), (0, 1), (-1, 0), (1, 0)):
            ny = np.clip(field.ty + dy, 0, field.h - 1)
            nx = np.clip(field.tx + dx, 0, field.w - 1)
            _improve(padded, field, sy, sx, dist, map_y[ny, nx] - dy, map_x[ny, nx] - dx, known)
        # random search around the current source, window radius max(H, W), then halving
        radius = max(field.h, field.w)
        while radius >= 1:
            cy = sy + rng.integers(-radius, radius + 1, size=sy.size)
            cx = sx + rng.integers(-radius, radius + 1, size=sx.size)
            _improve(padded, field, sy, sx, dist, cy, cx, known)
            radius //= 2
    return dist


def nearest_neighbour_field(image: np.ndarray, hole: np.ndarray, patch_size: int = 7, iterations: int = 5,
                            seed: int = 0) -> dict[str, np.ndarray]:
    """PatchMatch's approximate nearest-neighbour field of an image ``(H, W, C)`` (the hole already
    filled by some estimate) for a boolean ``hole`` ``(H, W)``: for every *target* (a pixel whose
    ``patch_size`` patch touches the hole) the *source* (a pixel whose whole patch is known) with the
    smallest sum of squared differences that ``iterations`` rounds found. Returns ``{"ty", "tx", "sy",
    "sx", "dist"}`` (arrays of length N targets). Seeded by ``seed``: the same call gives the same field."""
    patch_size = _check_patch_size(patch_size)
    image, hole = np.asarray(image, dtype=np.float64), np.asarray(hole, dtype=bool)
    if image.ndim != 3 or hole.shape != image.shape[:2]:
        raise ValueError(f"image must be (H, W, C) and hole (H, W); got {image.shape} and {hole.shape}")
    rng = np.random.default_rng(seed)
    field = _Field(hole, patch_size)
    sy, sx = field.random_sources(field.ty.size, rng)
    dist = _patchmatch(image, field, sy, sx, iterations, rng)
    return {"ty": field.ty, "tx": field.tx, "sy": sy, "sx": sx, "dist": dist}


def _vote(estimate: np.ndarray, hole: np.ndarray, field: _Field, sy: np.ndarray, sx: np.ndarray) -> np.ndarray:
    """Wexler et al.'s voting: each hole pixel becomes the mean of the values that every patch covering
    it proposes (the pixel at the same place in that patch's source patch)."""
    h, w, c = estimate.shape
    total = np.zeros((h * w, c))
    count = np.zeros(h * w)
    for oy, ox in zip(field.oy, field.ox):
        qy, qx = field.ty + oy, field.tx + ox
        inside = (qy >= 0) & (qy < h) & (qx >= 0) & (qx < w)
        qy, qx = qy[inside], qx[inside]
        keep = hole[qy, qx]
        qy, qx = qy[keep], qx[keep]
        py = np.clip(sy[inside][keep] + oy, 0, h - 1)                          # the source's pixel there
        px = np.clip(sx[inside][keep] + ox, 0, w - 1)
        flat = qy * w + qx
        count += np.bincount(flat, minlength=h * w)
        for ch in range(c):
            total[:, ch] += np.bincount(flat, weights=estimate[py, px, ch], minlength=h * w)
    out = estimate.copy()
    filled = hole.ravel() & (count > 0)
    out.reshape(-1, c)[filled] = total[filled] / count[filled, None]
    return out


def _smooth_fill(image: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """A first guess for the coarsest level: known colours spread into the hole from its border inwards
    (each pass, the hole pixels next to filled ones take their mean), like onion peeling."""
    out = image.copy()
    out[hole] = 0
    filled = ~hole
    h, w = hole.shape
    while not filled.all():
        pv = np.pad(out * filled[..., None], ((1, 1), (1, 1), (0, 0)))
        pf = np.pad(filled.astype(np.float64), 1)
        s = sum(pv[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        n = sum(pf[1 + dy:1 + dy + h, 1 + dx:1 + dx + w] for dy in (-1, 0, 1) for dx in (-1, 0, 1))
        front = ~filled & (n > 0)
        out[front] = s[front] / n[front, None]
        filled = filled | front
    return out


def _downsample(image: np.ndarray, hole: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Half size: 2x2 means of the image (odd sizes lose the last row / column), hole where any of the
    four pixels is a hole."""
    h, w = (hole.shape[0] // 2) * 2, (hole.shape[1] // 2) * 2
    img = image[:h, :w].reshape(h // 2, 2, w // 2, 2, -1).mean(axis=(1, 3))
    mask = hole[:h, :w].reshape(h // 2, 2, w // 2, 2).any(axis=(1, 3))
    return img, mask


def patchmatch_fill(image: np.ndarray, hole: np.ndarray, patch_size: int = 7, em_iterations: int = 3,
                    pm_iterations: int = 2, min_size: int | None = None, seed: int = 0) -> np.ndarray:
    """Fill ``hole`` (H, W) bool of ``image`` (H, W, C) float from the image's own patches; returns a copy.

    Coarse to fine: the pyramid halves the image while its shorter side stays at least ``min_size``
    (default ``2 * patch_size + 1``) and the hole leaves known patches to copy from. The coarsest hole
    is first filled by onion peeling (:func:`_smooth_fill`) and its first search compares only the
    known pixels of each patch (the smooth guess would pull every match to flat patches); at every level ``em_iterations`` rounds of
    (PatchMatch with ``pm_iterations`` rounds, then voting) refine it; the next finer level starts from
    the upsampled estimate and the upsampled field. Known pixels are never changed.
    """
    patch_size = _check_patch_size(patch_size)
    for name, value in (("em_iterations", em_iterations), ("pm_iterations", pm_iterations)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    min_size = 2 * patch_size + 1 if min_size is None else int(min_size)
    image, hole = np.asarray(image, dtype=np.float64), np.asarray(hole, dtype=bool)
    if not hole.any():
        return image.copy()
    rng = np.random.default_rng(seed)
    levels = [(image, hole)]
    while min(levels[-1][1].shape) // 2 >= min_size:
        small, small_hole = _downsample(*levels[-1])
        if small_hole.all() or not (~_dilate(small_hole, patch_size // 2)).any():
            break
        levels.append((small, small_hole))
    estimate = None
    prev: tuple[_Field, np.ndarray, np.ndarray] | None = None
    for img, mask in reversed(levels):
        field = _Field(mask, patch_size)
        if estimate is None:
            estimate = _smooth_fill(img, mask)
            sy, sx = field.random_sources(field.ty.size, rng)
        else:
            # upsample the estimate (nearest; odd sizes repeat the last row / column) and the field
            up = np.repeat(np.repeat(estimate, 2, axis=0), 2, axis=1)
            up = np.pad(up, ((0, img.shape[0] - up.shape[0]), (0, img.shape[1] - up.shape[1]), (0, 0)), mode="edge")
            estimate = np.where(mask[..., None], up, img)
            pf, psy, psx = prev
            cy = np.clip(field.ty // 2, 0, pf.h - 1)
            cx = np.clip(field.tx // 2, 0, pf.w - 1)
            coarse_y = np.arange(pf.h)[:, None].repeat(pf.w, axis=1)
            coarse_x = np.arange(pf.w)[None, :].repeat(pf.h, axis=0)
            coarse_y[pf.ty, pf.tx], coarse_x[pf.ty, pf.tx] = psy, psx
            sy = np.clip(2 * coarse_y[cy, cx] + field.ty % 2, 0, field.h - 1)
            sx = np.clip(2 * coarse_x[cy, cx] + field.tx % 2, 0, field.w - 1)
            bad = ~field.valid[sy, sx]
            sy[bad], sx[bad] = field.random_sources(int(bad.sum()), rng)
        for it in range(em_iterations):
            first = prev is None and it == 0                # coarsest level, first search: known pixels only
            _patchmatch(estimate, field, sy, sx, pm_iterations, rng, hole=mask if first else None)
            estimate = _vote(estimate, mask, field, sy, sx)
        prev = (field, sy, sx)
    return np.where(hole[..., None], estimate, image)


def patchmatch_inpaint(image: torch.Tensor, mask: torch.Tensor, patch_size: int = 7, em_iterations: int = 3,
                       pm_iterations: int = 2, seed: int = 0) -> torch.Tensor:
    """PatchMatch exemplar inpainting (:func:`patchmatch_fill`) of each image of the batch (image ``i``
    seeded with ``seed + i``); same contract as :func:`.fills.telea`: known pixels are
    the input's, bit for bit; an empty mask returns the image; a hole leaving no whole known patch
    raises ``ValueError``. About 1-3 s for a 128x128 image with a 64x64 hole on one CPU core; a periodic
    texture (stripes, a checkerboard) is filled without error where Telea and the mean fill blur it."""
    check_image_mask(image, mask)
    b = image.shape[0]
    require_known_pixels(mask, b, "patchmatch")
    mask_b = mask.to(dtype=image.dtype, device=image.device).expand(b, 1, *image.shape[-2:])
    arrays = image.detach().permute(0, 2, 3, 1).cpu().double().numpy()         # (B, H, W, 3)
    holes = mask_b[:, 0].detach().cpu().numpy() > 0.5                          # (B, H, W)
    filled = np.stack([patchmatch_fill(arrays[i], holes[i], patch_size, em_iterations, pm_iterations, seed=seed + i)
                       for i in range(b)])
    fill = torch.from_numpy(filled).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype).clamp(0, 1)
    return mask_b * fill + (1.0 - mask_b) * image


# --------------------------------------------------------------------------------------------------
# nearest-neighbour scene completion (Hays and Efros 2007, with a tiny-image feature)
# --------------------------------------------------------------------------------------------------
def tiny_features(images: torch.Tensor, size: int = 32) -> torch.Tensor:
    """The feature of :class:`NearestNeighbourInpainter`: each image area-averaged to ``size x size``,
    ``(N, 3, size, size)`` float32."""
    return F.adaptive_avg_pool2d(images.float(), (size, size))


def _as_tensor(train: torch.Tensor | Iterable[Any]) -> torch.Tensor:
    if isinstance(train, torch.Tensor):
        images = train
    else:
        items = [item[0] if isinstance(item, (tuple, list)) else item for item in train]
        if not items:
            raise ValueError("the training set is empty: nearest-neighbour completion needs images to copy from")
        shapes = {tuple(t.shape) for t in items}
        if len(shapes) != 1:
            raise ValueError(f"training images must all have one size, got {sorted(shapes)[:3]}")
        images = torch.stack(items)
    if images.ndim == 3:
        images = images[None]
    check_image(images, "train images")
    return images


class NearestNeighbourInpainter:
    """Scene completion by the nearest training image (Hays and Efros 2007; Pathak et al. 2016 Table 1's
    "NN-inpainting" rows use HOG or their learned features instead of our tiny image).

    ``train``: a ``(N, 3, H, W)`` tensor in ``[0, 1]`` or a dataset / sequence of ``(3, H, W)`` images
    (or ``(image, ...)`` tuples). Their ``size x size`` tiny images are computed once. For a query, the
    distance to training image ``n`` is the mean squared difference of the tiny images over the known
    small pixels (a small pixel that any hole pixel touches is left out, so the hole's content never
    counts); the nearest one, resized to the query's size (bilinear) when it differs, is pasted into
    the hole. ``blend=True`` then applies GLCIC's Telea + Poisson post-process
    (:func:`.fills.poisson_blend`), which hides colour seams at the hole's border.
    """

    def __init__(self, train: torch.Tensor | Sequence[Any], size: int = 32, blend: bool = False):
        if isinstance(size, bool) or not isinstance(size, int) or size < 1:
            raise ValueError(f"size must be a positive integer, got {size!r}")
        self.images = _as_tensor(train).detach().cpu()
        self.size, self.blend = size, bool(blend)
        self.features = tiny_features(self.images, size)                       # (N, 3, s, s)

    def __len__(self) -> int:
        return self.images.shape[0]

    def distances(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, N)`` masked mean squared distances between each query's known tiny pixels and each
        training image's."""
        check_image_mask(image, mask)
        b = image.shape[0]
        mask = mask.to(dtype=torch.float32, device="cpu").expand(b, 1, *image.shape[-2:])
        q = tiny_features(image.detach().cpu(), self.size)                     # (B, 3, s, s)
        known = 1.0 - (F.adaptive_max_pool2d(mask, (self.size, self.size)) > 0).float()  # (B, 1, s, s)
        n_known = known.flatten(1).sum(dim=1)                                  # (B,)
        if bool((n_known == 0).any()):
            bad = torch.nonzero(n_known == 0).flatten().tolist()
            raise ValueError(f"nearest-neighbour: the hole of image(s) {bad[:5]} covers every pixel of the "
                             f"{self.size}x{self.size} feature: no known region to match (use a larger size)")
        # sum_k known * (q - t)^2 expanded: no (B, N, 3, s, s) tensor is built
        qk = q * known
        d = ((qk * q).flatten(1).sum(1)[:, None]
             - 2 * qk.flatten(1) @ self.features.flatten(1).T
             + known.expand_as(q).flatten(1) @ (self.features ** 2).flatten(1).T)   # (B, N)
        return (d / (3 * n_known[:, None])).clamp_min(0)

    def nearest(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The index of each query's nearest training image ``(B,)`` (the first one on a tie)."""
        return self.distances(image, mask).argmin(dim=1)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_image_mask(image, mask)
        b = image.shape[0]
        mask_b = mask.to(dtype=image.dtype, device=image.device).expand(b, 1, *image.shape[-2:])
        chosen = self.images[self.nearest(image, mask)]                        # (B, 3, h, w)
        if tuple(chosen.shape[-2:]) != tuple(image.shape[-2:]):
            chosen = F.interpolate(chosen.float(), size=image.shape[-2:], mode="bilinear",
                                   align_corners=False).clamp(0, 1)
        chosen = chosen.to(device=image.device, dtype=image.dtype)
        out = mask_b * chosen + (1.0 - mask_b) * image
        if self.blend:
            has_hole = mask_b.flatten(1).sum(dim=1) > 0
            if bool(has_hole.any()):
                idx = torch.nonzero(has_hole).flatten()
                out[idx] = poisson_blend(image[idx], out[idx], mask_b[idx])
        return out


def nearest_neighbour_fill(image: torch.Tensor, mask: torch.Tensor, train: torch.Tensor | Sequence[Any],
                           size: int = 32, blend: bool = False) -> torch.Tensor:
    """One call of :class:`NearestNeighbourInpainter` (``train``, ``size``, ``blend``) on ``image``, ``mask``;
    build the class once to fill many batches against one training set."""
    return NearestNeighbourInpainter(train, size=size, blend=blend)(image, mask)
