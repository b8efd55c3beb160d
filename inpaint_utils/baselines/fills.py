"""Fills that diffuse the border inwards: OpenCV Telea and Navier-Stokes, the mean fill, and Poisson
blending (GLCIC's post-process).

Biradar et al.'s replication report ("Deep Learning for Image Inpainting") uses Telea (fast marching;
Telea 2004) and NS (Navier-Stokes; Bertalmio et al. 2001) as its baselines in Table II, and its
``hole_ns`` input mode feeds the generator an image pre-filled by NS (``masks.make_input("hole_ns")``
calls :func:`navier_stokes`). Mean fill is the Context Encoder / GLCIC way of blanking a hole and the
weakest sensible baseline. :func:`poisson_blend` is Iizuka et al.'s post-process for GLCIC (fast
marching, then Poisson image editing); the nearest-image fill of :mod:`.exemplar` uses it too.

All functions take ``image`` float ``(B, 3, H, W)`` in ``[0, 1]`` and ``mask`` float ``(B, 1, H, W)``
(or ``(1, 1, H, W)``, broadcast), **1 = hole**, and return a float ``(B, 3, H, W)`` composite on the
image's device and dtype, whose known pixels are **exactly** the input's (not re-quantised):
``out = mask * fill + (1 - mask) * image``.
"""
from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import torch

from ..validation import check_image, check_image_mask

__all__ = ["telea", "navier_stokes", "mean_fill", "poisson_blend", "poisson_solve", "PoissonFallbackWarning",
           "require_known_pixels"]


def _known_counts(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """Number of known pixels per image ``(B,)``."""
    return (1.0 - mask).expand(batch, -1, -1, -1).sum(dim=(1, 2, 3))


def require_known_pixels(mask: torch.Tensor, batch: int, method: str) -> None:
    """``ValueError`` naming the images of the batch whose mask leaves no known pixel to fill from."""
    counts = _known_counts(mask, batch)
    if bool((counts == 0).any()):
        full = torch.nonzero(counts == 0).flatten().tolist()
        raise ValueError(f"{method}: mask covers the whole image (no known pixel to fill from) in image(s) "
                         f"{full[:5]} of the batch")


def _check_radius(radius: Any) -> float:
    if isinstance(radius, bool) or not isinstance(radius, (int, float)) or not radius > 0:
        raise ValueError(f"radius must be a positive number of pixels, got {radius!r}")
    return float(radius)


def _opencv_inpaint(image: torch.Tensor, mask: torch.Tensor, radius: float, flag_name: str,
                    method: str) -> torch.Tensor:
    """Run ``cv2.inpaint`` image by image on uint8 RGB (mask uint8, 255 = hole); composite in float."""
    import cv2  # local import: OpenCV is only needed here

    check_image_mask(image, mask)
    radius = _check_radius(radius)
    b = image.shape[0]
    require_known_pixels(mask, b, method)
    mask_b = mask.expand(b, -1, -1, -1)
    flag = getattr(cv2, flag_name)
    # uint8 copies for OpenCV: (B, H, W, 3) and (B, H, W)
    image_u8 = (image.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    mask_u8 = (mask_b[:, 0].detach().cpu().numpy() > 0.5).astype(np.uint8) * 255
    filled = np.empty_like(image_u8)
    for i in range(b):
        if not mask_u8[i].any():  # nothing to fill: the image is returned unchanged
            filled[i] = image_u8[i]
            continue
        filled[i] = cv2.inpaint(np.ascontiguousarray(image_u8[i]), np.ascontiguousarray(mask_u8[i]), radius, flag)
    fill = torch.from_numpy(filled).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype) / 255.0
    m = mask_b.to(dtype=image.dtype)
    return m * fill + (1.0 - m) * image  # known pixels exactly the input's


def telea(image: torch.Tensor, mask: torch.Tensor, radius: float = 3) -> torch.Tensor:
    """Telea's fast-marching inpainting (``cv2.INPAINT_TELEA``) with neighbourhood ``radius`` pixels.

    Runs per image on uint8 RGB; the returned known pixels are the float input's, untouched. An image
    with an empty mask comes back unchanged; a mask covering a whole image raises ``ValueError``.
    """
    return _opencv_inpaint(image, mask, radius, "INPAINT_TELEA", "telea")


def navier_stokes(image: torch.Tensor, mask: torch.Tensor, radius: float = 3) -> torch.Tensor:
    """Navier-Stokes inpainting (``cv2.INPAINT_NS``) with neighbourhood ``radius`` pixels.

    Also the pre-fill of Biradar et al.'s ``hole_ns`` input mode. Same contract as :func:`telea`.
    """
    return _opencv_inpaint(image, mask, radius, "INPAINT_NS", "navier_stokes")


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the hole with each image's per-channel mean of its **known** pixels.

    An empty mask returns the image unchanged; a mask without any known pixel raises ``ValueError``.
    """
    check_image_mask(image, mask)
    b = image.shape[0]
    require_known_pixels(mask, b, "mean_fill")
    m = mask.to(dtype=image.dtype).expand(b, -1, -1, -1)  # (B, 1, H, W)
    known = 1.0 - m
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)  # (B, 3, 1, 1)
    return m * mean + known * image


class PoissonFallbackWarning(UserWarning):
    """An image of :func:`poisson_blend` was blended by :func:`poisson_solve`, OpenCV having refused it."""


def poisson_solve(source: np.ndarray, target: np.ndarray, hole: np.ndarray) -> np.ndarray:
    """Poisson image editing (Perez et al. 2003) in the form ``cv2.seamlessClone(..., NORMAL_CLONE)``
    solves it, written out so that an image OpenCV refuses is blended by the same equation.

    On the hole's bounding box ``R``: the guidance field is ``source``'s forward differences where the
    pixel lies in the hole eroded three times by a 3x3 square (OpenCV's ``computeDerivatives``: a pixel
    whose 7x7 neighbourhood is all hole), ``target``'s elsewhere; ``f`` solves ``laplace(f) = div(guidance)``
    on the interior of ``R`` with ``f = target`` on ``R``'s outer ring (Dirichlet), and ``f = target``
    outside ``R``. So a hole narrower than 7 pixels keeps ``target`` (the fast-marching fill in
    :func:`poisson_blend`), exactly what OpenCV returns for it when it does not refuse it, and a box
    of width or height 2 or less (no interior) is ``target`` too.

    ``source``, ``target``: ``(H, W, C)`` float arrays; ``hole``: ``(H, W)`` bool. Returns ``(H, W, C)``
    float64 (round it to compare with OpenCV's 8-bit result: they agree within one level). One sparse
    solve for all channels (SciPy)."""
    from scipy.ndimage import binary_erosion
    from scipy.sparse import coo_matrix
    from scipy.sparse.linalg import splu

    hole = np.asarray(hole, dtype=bool)
    out = np.array(target, np.float64)
    if not hole.any():
        return out
    ys, xs = np.nonzero(hole)
    y0, y1, x0, x1 = ys.min(), ys.max() + 1, xs.min(), xs.max() + 1
    if y1 - y0 <= 2 or x1 - x0 <= 2:
        return out                                                    # no interior: all boundary
    src = np.asarray(source, np.float64)[y0:y1, x0:x1]
    dst = out[y0:y1, x0:x1]
    inner = binary_erosion(hole[y0:y1, x0:x1], np.ones((3, 3), bool), iterations=3, border_value=0)[..., None]
    # the guidance's forward differences, owned by the left / upper pixel of each pair
    gx = np.where(inner[:, :-1], src[:, 1:] - src[:, :-1], dst[:, 1:] - dst[:, :-1])   # (h, w-1, C)
    gy = np.where(inner[:-1], src[1:] - src[:-1], dst[1:] - dst[:-1])                    # (h-1, w, C)
    div = (gx[1:-1, 1:] - gx[1:-1, :-1]) + (gy[1:, 1:-1] - gy[:-1, 1:-1])             # (h-2, w-2, C)
    h, w = div.shape[:2]
    index = np.arange(h * w).reshape(h, w)
    rhs = div.reshape(h * w, -1).copy()
    rows, cols, vals = [index.ravel()], [index.ravel()], [np.full(h * w, -4.0)]
    for dy, dx in ((-1, 0), (1, 0), (0, -1), (0, 1)):
        ny, nx = np.mgrid[0:h, 0:w]
        ny, nx = ny + dy, nx + dx
        inside = (ny >= 0) & (ny < h) & (nx >= 0) & (nx < w)
        rows.append(index[inside]), cols.append(index[ny[inside], nx[inside]]), vals.append(np.ones(int(inside.sum())))
        ring = ~inside                                                # a neighbour on R's outer ring: known
        rhs[index[ring]] -= dst[ny[ring] + 1, nx[ring] + 1]
    a = coo_matrix((np.concatenate(vals), (np.concatenate(rows), np.concatenate(cols))), shape=(h * w, h * w)).tocsc()
    out[y0 + 1:y1 - 1, x0 + 1:x1 - 1] = splu(a).solve(rhs).reshape(h, w, -1)
    return out


# --------------------------------------------------------------------------------------------
# Poisson blending after fast marching: GLCIC's post-process (Iizuka et al. 2017; the authors' inpaint.lua)
# --------------------------------------------------------------------------------------------
def poisson_blend(image: torch.Tensor, completed: torch.Tensor, mask: torch.Tensor, radius: float = 1) -> torch.Tensor:
    """The paper's optional **post-process**: the hole of ``completed`` is blended into its
    surroundings with Telea's fast marching followed by Poisson image editing, as the authors'
    ``inpaint.lua --postproc``: per image, ``dst`` = the image with its hole filled by Telea
    (``cv2.INPAINT_TELEA``, ``radius`` 1 px), then ``cv2.seamlessClone(completed, dst, mask, centre,
    cv2.NORMAL_CLONE)``: inside the hole the result keeps the *gradients* of the completion, while its
    border takes the colours of the surroundings, which removes colour seams and shifts.

    ``image``, ``completed``: ``(B, 3, H, W)`` in ``[0, 1]`` (``completed`` usually the network's
    composite); ``mask``: ``(B or 1, 1, H, W)``, 1 = hole. Returns the composite ``(B, 3, H, W)`` on the
    image's device and dtype: hole pixels blended (8-bit, as OpenCV works), known pixels the input's,
    bit for bit. OpenCV ignores the outermost pixel frame of the mask and solves on the mask's
    bounding box, so each image is padded by one pixel (edge replicated) first and the centre is the
    one that maps the box onto itself; holes touching the image border are blended like any other.

    OpenCV's solver refuses some masks (seen with opencv-python-headless 5.1.0.95: a hole whose bounding
    box is one or two pixels wide or high, e.g. a single pixel or a 2-pixel stroke along the border, raises
    ``cv2.error``). Such an image is blended by :func:`poisson_solve` instead, the same equation as
    OpenCV's (within one 8-bit level of it on every mask OpenCV does solve), with a
    :class:`PoissonFallbackWarning` naming the image and OpenCV's reason; the rest of the batch is
    unaffected. Note that OpenCV, and so this blend, keeps the fast-marching fill in a hole narrower
    than 7 pixels (the source's gradients are used only three pixels inside the hole). Raises ``ValueError`` when an image's mask is empty (nothing to blend) or all hole.
    """
    import cv2

    check_image_mask(image, mask)
    check_image(completed, "completed")
    if completed.shape != image.shape:
        raise ValueError(f"completed {tuple(completed.shape)} and image {tuple(image.shape)} must have the same shape")
    b = image.shape[0]
    mask = mask.to(dtype=image.dtype, device=image.device).expand(b, 1, *image.shape[-2:])
    holes = mask.flatten(1).sum(dim=1)
    if bool((holes == 0).any()):
        bad = torch.nonzero(holes == 0).flatten().tolist()
        raise ValueError(f"poisson_blend: the mask of image(s) {bad[:5]} is empty: there is no hole to blend")
    # dst: the image with its hole filled by fast marching (Telea; raises for an all-hole mask)
    dst = telea(image.detach(), mask, radius=radius)

    def to_u8(x: torch.Tensor) -> np.ndarray:                                  # (B, 3, H, W) -> (B, H, W, 3) uint8
        return (x.detach().float().clamp(0, 1) * 255.0).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()

    src_u8, dst_u8 = to_u8(completed), to_u8(dst)
    mask_u8 = (mask[:, 0].detach().cpu().numpy() > 0.5).astype(np.uint8) * 255
    out = np.empty_like(dst_u8)
    for i in range(b):
        pad = lambda a, value=None: cv2.copyMakeBorder(  # noqa: E731
            np.ascontiguousarray(a), 1, 1, 1, 1, cv2.BORDER_CONSTANT if value is not None else cv2.BORDER_REPLICATE,
            value=value)
        src, dst_i, m = pad(src_u8[i]), pad(dst_u8[i]), pad(mask_u8[i], 0)
        x, y, w, h = cv2.boundingRect(m)
        centre = (x + w // 2, y + h // 2)              # OpenCV places the box at centre - size // 2
        try:
            out[i] = cv2.seamlessClone(src, dst_i, m, centre, cv2.NORMAL_CLONE)[1:-1, 1:-1]
        except cv2.error as err:
            reason = " ".join(str(err).split())
            reason = reason[reason.find("error:"):][:160] if "error:" in reason else reason[-160:]
            warnings.warn(f"poisson_blend: OpenCV's seamlessClone refused image {i} of the batch "
                          f"({int((m > 0).sum())} hole pixels, bounding box {w}x{h}: {reason}); that image is "
                          "blended by poisson_solve, the same equation solved here",
                          PoissonFallbackWarning, stacklevel=2)
            solved = poisson_solve(src.astype(np.float64), dst_i.astype(np.float64), m > 0)
            out[i] = np.clip(np.round(solved), 0, 255).astype(np.uint8)[1:-1, 1:-1]
    blended = torch.from_numpy(out).permute(0, 3, 1, 2).to(device=image.device, dtype=image.dtype) / 255.0
    return mask * blended + (1.0 - mask) * image
