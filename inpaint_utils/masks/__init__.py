"""Every mask of the course, one convention: float32 ``(B, 1, H, W)``, **1 = hole**, 0 = known.

Used by notebooks ``01_masking`` (all shapes, area-ratio control), ``02_context_encoder`` (the
central square and the 10x overlap loss weights), ``03_cascade_ce_nsd`` (central square, random
blocks), ``04_glcic`` / ``05_contextual_attention`` (random square holes and the three input modes)
and ``07_comparison``.

A package along its seams (every public name is importable from ``inpaint_utils.masks`` itself):
``common`` (sizes, ratios, the random generators), ``shapes`` (:func:`make_mask` and its eight kinds,
:func:`center_mask`, :func:`max_ratio`, :func:`ratio_stats`), ``ops`` (erosion, the overlap loss
weights, hole ratios, :func:`resize_mask`, :func:`make_input`), ``files`` (:func:`load_mask`) and
``lama`` (LaMa's evaluation masks and the fixed evaluation sets).

Sources:

* Pathak et al. 2016, *Context Encoders* (arXiv:1604.07379): the central 64x64 region of a
  128x128 image (``"center"``) and the reconstruction loss whose 4-px overlap ring is weighted 10x
  (:func:`overlap_weights`); the paper's "random block" masks.
* The cascade context encoder paper (the one that introduces NSD), section 4.3: central square;
  random blocks, "a number of smaller possibly overlapping masks, covering up to 1/4 of the image"
  (``"blocks"``, default ratio 0.25).
* Nanavati and Patel, "Image Inpainting using Context Encoders and Diffusion Model", section 3.4: six
  shapes, square, circle, triangle, ellipse, irregular and random patches, "controlled by varying the
  hole-to-image area ratio" (``ratio`` below).
* Biradar, Singh, Agrawal and Samantaray, "Deep Learning for Image Inpainting": the random ~128x128
  square hole in a 256x256 image (``"square"``) and the three input modes ``hole`` / ``mosaic``
  (bilinear down-up sampling by ``1 / mosaic_unit_size``, 12) / ``hole_ns`` (Navier-Stokes pre-fill)
  of :func:`make_input`.
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
"minor variations" of Biradar et al.) and random blocks / patches trim their last rectangle, both
within a fraction of a percentage point. Shapes that must fit inside the image (square, circle,
ellipse, triangle) have a largest possible ratio, :func:`max_ratio`; asking for more raises
``ValueError``.
"""
from __future__ import annotations

from .common import MIN_SIDE, Ratio, Size, parse_size
from .shapes import MASK_KINDS, center_mask, make_mask, max_ratio, ratio_stats
from .ops import INPUT_MODES, TrainingMasks, area_ratio, erode_mask, make_input, overlap_weights, ratio_text, resize_mask
from .files import hole_from_pil, load_mask
from .lama import (EVAL_MASKS_VERSION, LAMA_BASE_SIDE, LAMA_KINDS, LAMA_MASKS, LAMA_MAX_HOLE, LamaBoxes,
                   LamaMaskConfig, LamaStrokes, area_bin_label, area_bins, eval_mask_set, eval_mask_sets, lama_mask)

__all__ = [
    "MIN_SIDE",
    "Size",
    "Ratio",
    "parse_size",
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
    "LAMA_BASE_SIDE",
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
