"""Image-completion metrics in the conventions of the course's papers.

Used by notebooks 01 (masking), 02-06 (each model's evaluation) and 07 (comparison tables).

Two reporting conventions, chosen in :func:`evaluate`:

* ``"seed000"``, **Nanavati and Patel** ("Image Inpainting using Context Encoders and Diffusion Model", Table 1,
  128x128): L1 and L2 (MSE) "as a percent" of images in ``[0, 1]`` (L1 3.22 % means a mean absolute error of
  0.0322; L2 0.88 % means an MSE of 0.0088) and PSNR in dB.
* ``"seed002"``, **Biradar, Singh, Agrawal and Samantaray** ("Deep Learning for Image Inpainting": the GLCIC /
  contextual-attention replication, Table II, 256x256 with a 128x128 hole): MSE and L1 on the 0-255 scale
  (MSE 821.73 = a mean squared error of 821.73 grey levels squared), PSNR, LPIPS and TV.

The package, one module per kind of metric (each imports its siblings, never this face):

* :mod:`~inpaint_utils.metrics.pixel`: L1, L2 / MSE, PSNR, SSIM, TV, and the arguments every pixel metric takes
  (``pred, target, mask=None, region="image", reduction="mean", scale="unit"``; masks are 1 = hole);
* :mod:`~inpaint_utils.metrics.perceptual`: LPIPS (:func:`load_lpips`, :func:`lpips_distance`);
* :mod:`~inpaint_utils.metrics.distribution`: FID and KID on Inception features, each with its ``n``;
* :mod:`~inpaint_utils.metrics.latent`: NSD, the normalized squared-distortion of an encoder's latents;
* :mod:`~inpaint_utils.metrics.scoring`: one call for a table row (:func:`evaluate`, :func:`compare_methods`).

Where the pretrained weights of LPIPS and Inception come from, and what is said when they are missing, is
:mod:`inpaint_utils.pretrained`'s.
"""
from __future__ import annotations

from ..pretrained import INCEPTION_DOWNLOAD_TIMEOUT, LPIPS_DOWNLOAD_TIMEOUT  # noqa: F401  (public, not in __all__)
from ..pretrained import INCEPTION_FILENAME, INCEPTION_URL, LPIPS_BACKBONES, LPIPS_FILENAME
from .distribution import (fid_from_features, fid_kid, format_fid_kid, frechet_distance, inception_features,
                           kid_from_features, load_inception)
from .latent import nsd, nsd_from_latents
from .perceptual import load_lpips, lpips_distance
from .pixel import REGIONS, SCALES, l1, l2, mse, psnr, ssim, tv
from .scoring import (ImageFailure, Scores, ScoringFailureWarning, compare_methods, evaluate, evaluate_per_image,
                      mean_rows, score_methods, scored_only)

__all__ = [
    "compare_methods",
    "score_methods",
    "mean_rows",
    "scored_only",
    "Scores",
    "ImageFailure",
    "ScoringFailureWarning",
    "REGIONS",
    "SCALES",
    "l1",
    "l2",
    "mse",
    "psnr",
    "ssim",
    "tv",
    "load_lpips",
    "lpips_distance",
    "evaluate",
    "evaluate_per_image",
    "LPIPS_FILENAME",
    "LPIPS_BACKBONES",
    "nsd",
    "nsd_from_latents",
    "frechet_distance",
    "fid_from_features",
    "kid_from_features",
    "load_inception",
    "inception_features",
    "fid_kid",
    "format_fid_kid",
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
]
