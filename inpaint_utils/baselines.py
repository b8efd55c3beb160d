"""Non-learned inpainting baselines: OpenCV Telea and Navier-Stokes, mean fill, and PatchMatch.

Seed 002 (GLCIC / contextual-attention replication) uses Telea (fast marching; Telea 2004) and NS
(Navier-Stokes; Bertalmio et al. 2001) as its baselines in Table II, and its ``hole_ns`` input mode
feeds the generator an image pre-filled by NS (``masks.make_input("hole_ns")`` calls
:func:`navier_stokes`). Mean fill is the Context Encoder / GLCIC way of blanking a hole and the
weakest sensible baseline. PatchMatch (:mod:`inpaint_utils.exemplar`) copies patches of the image
itself, the exemplar baseline of Pathak et al. 2016 (Photoshop's Content-Aware Fill). Used by notebooks 01 (masking), 04 (GLCIC), 05 (contextual attention) and
07 (comparison).

All functions take ``image`` float ``(B, 3, H, W)`` in ``[0, 1]`` and ``mask`` float ``(B, 1, H, W)``
(or ``(1, 1, H, W)``, broadcast), **1 = hole**, and return a float ``(B, 3, H, W)`` composite on the
image's device and dtype, whose known pixels are **exactly** the input's (not re-quantised):
``out = mask * fill + (1 - mask) * image``.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .validation import check_image_mask

__all__ = ["telea", "navier_stokes", "mean_fill", "patchmatch", "inpaint", "BASELINES", "EXEMPLAR", "ALL_BASELINES"]


def _known_counts(mask: torch.Tensor, batch: int) -> torch.Tensor:
    """Number of known pixels per image ``(B,)``."""
    return (1.0 - mask).expand(batch, -1, -1, -1).sum(dim=(1, 2, 3))


def _require_known_pixels(mask: torch.Tensor, batch: int, method: str) -> None:
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
    _require_known_pixels(mask, b, method)
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

    Also the pre-fill of seed 002's ``hole_ns`` input mode. Same contract as :func:`telea`.
    """
    return _opencv_inpaint(image, mask, radius, "INPAINT_NS", "navier_stokes")


def mean_fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Fill the hole with each image's per-channel mean of its **known** pixels.

    An empty mask returns the image unchanged; a mask without any known pixel raises ``ValueError``.
    """
    check_image_mask(image, mask)
    b = image.shape[0]
    _require_known_pixels(mask, b, "mean_fill")
    m = mask.to(dtype=image.dtype).expand(b, -1, -1, -1)  # (B, 1, H, W)
    known = 1.0 - m
    mean = (image * known).sum(dim=(2, 3), keepdim=True) / known.sum(dim=(2, 3), keepdim=True)  # (B, 3, 1, 1)
    return m * mean + known * image


def patchmatch(image: torch.Tensor, mask: torch.Tensor, patch_size: int = 7, seed: int = 0,
               **kwargs: Any) -> torch.Tensor:
    """PatchMatch exemplar inpainting (Barnes et al. 2009, Wexler et al.'s voting, coarse to fine): the
    hole is filled from ``patch_size`` patches of the image itself; see
    :func:`inpaint_utils.exemplar.patchmatch_inpaint` (``kwargs``: ``em_iterations``, ``pm_iterations``)."""
    from .exemplar import patchmatch_inpaint

    return patchmatch_inpaint(image, mask, patch_size=patch_size, seed=seed, **kwargs)


#: The fast classical baselines by name (milliseconds an image), what the notebooks' tables and the
#: explorer loop over.
BASELINES: dict[str, Callable[..., torch.Tensor]] = {"mean": mean_fill, "telea": telea, "ns": navier_stokes}
#: The exemplar baselines (seconds an image on a CPU), asked for by name: not in the loops over
#: :data:`BASELINES`. The nearest-neighbour scene completion
#: (:class:`inpaint_utils.exemplar.NearestNeighbourInpainter`) is not here: it needs a training set.
EXEMPLAR: dict[str, Callable[..., torch.Tensor]] = {"patchmatch": patchmatch}
#: Every baseline :func:`inpaint` runs.
ALL_BASELINES: dict[str, Callable[..., torch.Tensor]] = {**BASELINES, **EXEMPLAR}


def inpaint(image: torch.Tensor, mask: torch.Tensor, method: str, **kwargs: Any) -> torch.Tensor:
    """Run the baseline named ``method`` (one of :data:`ALL_BASELINES`: ``"mean"``, ``"telea"``,
    ``"ns"``, ``"patchmatch"``); ``kwargs`` go to it (e.g. ``radius=5`` for telea / ns)."""
    if method not in ALL_BASELINES:
        raise ValueError(f"unknown inpainting method {method!r}; choose one of {sorted(ALL_BASELINES)}")
    return ALL_BASELINES[method](image, mask, **kwargs)
