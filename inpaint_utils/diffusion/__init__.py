"""Diffusion inpainting behind the course's conventions: Stable Diffusion 2 and RePaint.

Used by notebook ``06_stable_diffusion`` (and ``07_comparison``, ``benchmarks/bench_diffusion.py``).

* **Stable Diffusion 2 inpainting** (Rombach et al. 2022, *High-Resolution Image Synthesis with Latent
  Diffusion Models*, arXiv:2112.10752; Stability AI's checkpoint :data:`ORIGINAL_SD_MODEL`, deleted from the
  hub in November 2025: the default is the community mirror :data:`DEFAULT_SD_MODEL`, which states it is not
  affiliated with Stability AI) run through ``diffusers.StableDiffusionInpaintPipeline`` as Nanavati and Patel
  ("Image Inpainting using Context Encoders and Diffusion Model", section 3.2) did: empty prompt, 128x128
  inputs upscaled to 512x512 and the result scaled back. :class:`SDInpainter` (:mod:`.sd`).
* **RePaint** (Lugmayr et al. 2022, arXiv:2201.09865): a pixel-space DDPM (faces: the public CelebA-HQ
  model :data:`DEFAULT_DDPM_MODEL`; scenes: the LSUN church model :data:`DEFAULT_SCENE_DDPM_MODEL`, since a
  face DDPM cannot paint a street: :data:`DEFAULT_DDPM_MODELS`) whose known pixels are replaced at every step,
  with resampling (jump length 10, 10 resamplings, 250 steps in the "Image inpainting" overview notes and the
  paper). diffusers' ``RePaintPipeline`` and ``RePaintScheduler``. :class:`RePaintInpainter`,
  :func:`repaint_schedule` (:mod:`.repaint`).

Conventions, at the edge, once:

* images float ``(B, 3, H, W)`` in ``[0, 1]``; each model converts to its own ``[-1, 1]`` inside;
* masks float ``(B, 1, H, W)``, **1 = hole**. diffusers' inpainting pipeline uses the same sense (white
  = repaint), so the mask goes in unchanged. RePaint's own convention is the opposite (1 = **keep**):
  :func:`to_repaint_mask` converts, in :class:`RePaintInpainter` only;
* the result is always composited, ``completed = where(mask, pred, image)``: known pixels come back
  bit for bit. The VAE of a latent diffusion model changes pixels **outside** the mask too (a lossy
  encode / decode round trip: several open diffusers issues); the output before paste-back is returned
  as ``info["raw"]`` so that notebooks can show that error and score both.

Offline by construction. A model is a hub id or a local folder. :func:`resolve_model` (:mod:`.tiny`, with
:func:`inpaint_utils.pretrained.find_model`) finds a hub id in the local Hugging Face cache; when it is not
there it asks the hub about the repository
(``huggingface_hub``'s ``model_info``, a few seconds at most) and any refusal (offline: ``HF_HUB_OFFLINE``;
missing, deleted or renamed: ``RepositoryNotFoundError``; gated: ``GatedRepoError``; no such revision;
unreachable) raises :class:`ModelUnavailableError` at once with the id, the reason and what to do; the
download itself translates the same errors. It never hangs. ``model="tiny"`` builds (once)
a tiny, randomly initialised pipeline of the same architecture under ``runs_dir()`` and loads it like a
download: every code path runs on a CPU in seconds, but **its images are noise**
(:func:`build_tiny_inpaint_pipeline`, :func:`build_tiny_ddpm`). ``$INPAINT_SD_MODEL`` /
``$INPAINT_DDPM_MODEL`` name the default models (hub id or folder). Finding and downloading the pretrained
models is :mod:`inpaint_utils.pretrained`'s; its names are re-exported here.

On a GPU the wrappers run in float16 with PyTorch's scaled-dot-product attention (SDPA) and batch the
images; on the CPU in float32. Every call is seeded: each image gets its own generator (seed
``seed + i``), so a result does not depend on the other images of the call.

diffusers, transformers and accelerate are optional: ``pip install "inpaint-course[diffusion]"``.

The package: :mod:`.common` (what both wrappers share: resizing, mask conventions, seeds, dtypes),
:mod:`.tiny` (where a model comes from: the tiny random pipelines, the full-size architectures with random
weights, :func:`resolve_model`), :mod:`.sd` and :mod:`.repaint` (the two wrappers). Its members import each
other, never this face.
"""
from __future__ import annotations

from ..pretrained import (DEFAULT_DDPM_MODEL, DEFAULT_DDPM_MODELS, DEFAULT_SCENE_DDPM_MODEL, DEFAULT_SD_MODEL,
                          ORIGINAL_SD_MODEL, ModelUnavailableError, ddpm_model_for, default_model, hub_offline)
from .common import require_diffusers, resize_image, roundtrip_error, to_repaint_mask, working_size
from .repaint import RePaintInpainter, repaint_jump_back, repaint_schedule, repaint_step
from .sd import SCHEDULERS, SDInpainter, hallucination_summary
from .tiny import RANDOM_WEIGHTS_MARKER  # noqa: F401  (public, not in __all__)
from .tiny import (DDPM_CELEBAHQ_CONFIG, SD2_INPAINT_CONFIG, TINY, build_random_ddpm_pipeline,
                   build_random_sd2_inpaint_pipeline, build_tiny_ddpm, build_tiny_inpaint_pipeline, ensure_tiny_model,
                   resolve_model)

__all__ = [
    "DEFAULT_SD_MODEL",
    "DEFAULT_DDPM_MODEL",
    "ORIGINAL_SD_MODEL",
    "DEFAULT_SCENE_DDPM_MODEL",
    "DEFAULT_DDPM_MODELS",
    "ddpm_model_for",
    "default_model",
    "TINY",
    "SCHEDULERS",
    "ModelUnavailableError",
    "require_diffusers",
    "hub_offline",
    "resolve_model",
    "build_tiny_inpaint_pipeline",
    "build_tiny_ddpm",
    "ensure_tiny_model",
    "SD2_INPAINT_CONFIG",
    "DDPM_CELEBAHQ_CONFIG",
    "build_random_sd2_inpaint_pipeline",
    "build_random_ddpm_pipeline",
    "working_size",
    "resize_image",
    "to_repaint_mask",
    "repaint_schedule",
    "repaint_step",
    "repaint_jump_back",
    "roundtrip_error",
    "hallucination_summary",
    "SDInpainter",
    "RePaintInpainter",
]
