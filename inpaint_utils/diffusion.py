"""Diffusion inpainting behind the course's conventions: Stable Diffusion 2 and RePaint.

Used by notebook ``06_stable_diffusion`` (and ``07_comparison``, ``benchmarks/bench_diffusion.py``).

* **Stable Diffusion 2 inpainting** (Rombach et al. 2022, *High-Resolution Image Synthesis with Latent
  Diffusion Models*, arXiv:2112.10752; the ``stabilityai/stable-diffusion-2-inpainting`` checkpoint, deleted
  from the hub in November 2025: the default is the community mirror
  ``sd2-community/stable-diffusion-2-inpainting``, which states it is not affiliated with Stability AI) run
  through ``diffusers.StableDiffusionInpaintPipeline`` as seed 000 (section 3.2) did: empty prompt,
  128x128 inputs upscaled to 512x512 and the result scaled back. :class:`SDInpainter`.
* **RePaint** (Lugmayr et al. 2022, arXiv:2201.09865): a pixel-space DDPM (faces: the public CelebA-HQ
  model ``google/ddpm-ema-celebahq-256``; scenes: the LSUN church model ``google/ddpm-church-256``, since
  a face DDPM cannot paint a street: :data:`DEFAULT_DDPM_MODELS`) whose known pixels are replaced at every step, with resampling
  (jump length 10, 10 resamplings, 250 steps in seed 001 and the paper). diffusers' ``RePaintPipeline``
  and ``RePaintScheduler``. :class:`RePaintInpainter`, :func:`repaint_schedule`.

Conventions, at the edge, once:

* images float ``(B, 3, H, W)`` in ``[0, 1]``; each model converts to its own ``[-1, 1]`` inside;
* masks float ``(B, 1, H, W)``, **1 = hole**. diffusers' inpainting pipeline uses the same sense (white
  = repaint), so the mask goes in unchanged. RePaint's own convention is the opposite (1 = **keep**):
  :func:`to_repaint_mask` converts, in :class:`RePaintInpainter` only;
* the result is always composited, ``completed = where(mask, pred, image)``: known pixels come back
  bit for bit. The VAE of a latent diffusion model changes pixels **outside** the mask too (a lossy
  encode / decode round trip: several open diffusers issues); the output before paste-back is returned
  as ``info["raw"]`` so that notebooks can show that error and score both.

Offline by construction. A model is a hub id or a local folder. :func:`resolve_model` finds a hub id
in the local Hugging Face cache; when it is not there it asks the hub about the repository
(``huggingface_hub``'s ``model_info``, a few seconds at most) and any refusal (offline: ``HF_HUB_OFFLINE``;
missing, deleted or renamed: ``RepositoryNotFoundError``; gated: ``GatedRepoError``; no such revision;
unreachable) raises :class:`ModelUnavailableError` at once with the id, the reason and what to do; the
download itself translates the same errors. It never hangs. ``model="tiny"`` builds (once)
a tiny, randomly initialised pipeline of the same architecture under ``runs_dir()`` and loads it like a
download: every code path runs on a CPU in seconds, but **its images are noise**
(:func:`build_tiny_inpaint_pipeline`, :func:`build_tiny_ddpm`). ``$INPAINT_SD_MODEL`` /
``$INPAINT_DDPM_MODEL`` name the default models (hub id or folder).

On a GPU the wrappers run in float16 with PyTorch's scaled-dot-product attention (SDPA) and batch the
images; on the CPU in float32. Every call is seeded: each image gets its own generator (seed
``seed + i``), so a result does not depend on the other images of the call.

diffusers, transformers and accelerate are optional: ``pip install "inpaint-course[diffusion]"``.
"""
from __future__ import annotations

import contextlib
import json
import math
import os
import shutil
import tempfile
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Iterator, Sequence

import torch
import torch.nn.functional as F

from .config import get_device, runs_dir
from .masks import resize_mask
from .pretrained import (DEFAULT_DDPM_MODEL, DEFAULT_DDPM_MODELS, DEFAULT_SCENE_DDPM_MODEL, DEFAULT_SD_MODEL,
                         DIFFUSION_INSTALL_HINT, ORIGINAL_SD_MODEL, ModelUnavailableError, ddpm_model_for,
                         default_model, download_model, find_model, hub_howto, hub_offline)
from .validation import check_image, check_image_mask, check_mask

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
    "roundtrip_error",
    "hallucination_summary",
    "SDInpainter",
    "RePaintInpainter",
]

#: ``model="tiny"``: a tiny random pipeline built under ``runs_dir()`` (its images are noise).
TINY = "tiny"
#: File written into the tiny models' folders; its presence marks random weights.
RANDOM_WEIGHTS_MARKER = "RANDOM_WEIGHTS.txt"
_TINY_FOLDERS = {"sd": "tiny_sd_inpaint", "ddpm": "tiny_ddpm"}

#: Scheduler names accepted by :class:`SDInpainter` -> (diffusers class, config overrides).
#: ``pndm`` is the checkpoint's own scheduler (what seed 000 ran with the pipeline's defaults).
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {}),
    "dpmpp": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                     "use_karras_sigmas": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}

# --------------------------------------------------------------------------------------------------
# Optional dependency, and where a model comes from
# --------------------------------------------------------------------------------------------------
def require_diffusers():
    """``import diffusers`` (and check transformers), or ``ImportError`` saying what to install."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the diffusion notebook needs diffusers and transformers ({err}); install them with: "
                          f"{DIFFUSION_INSTALL_HINT}") from err
    return diffusers


def resolve_model(model: str | os.PathLike | None = None, kind: str = "sd", *,
                  cache_dir: str | os.PathLike | None = None, allow_download: bool | None = None,
                  probe_timeout: float = 3.0) -> Path | str:
    """Where to load ``model`` from, decided **before** any download is tried.

    ``"tiny"`` returns the tiny random model's folder (built under ``runs_dir()`` if absent:
    :func:`ensure_tiny_model`); any other model is :func:`inpaint_utils.pretrained.find_model`'s: a local
    folder (``Path``) for an existing folder or a hub id in the Hugging Face cache (``cache_dir``, default
    ``$HF_HOME``'s), the hub id itself (``str``) only when it may be downloaded now (``allow_download``, default:
    not :func:`hub_offline`, and the hub knows the repository within ``probe_timeout`` seconds), else
    :class:`ModelUnavailableError` with the id, the reason (offline, missing / deleted / renamed, gated,
    unreachable) and the commands to download it or point to a local copy.
    ``kind`` is ``"sd"`` (an inpainting pipeline) or ``"ddpm"`` (a pixel-space DDPM for RePaint);
    ``model=None`` means ``$INPAINT_SD_MODEL`` / ``$INPAINT_DDPM_MODEL`` or the default hub id.
    """
    if model is None:
        model = default_model(kind)
    if isinstance(model, (str, os.PathLike)) and str(model) == TINY:
        return ensure_tiny_model(kind)
    return find_model(model, kind, cache_dir=cache_dir, allow_download=allow_download, probe_timeout=probe_timeout)


def _local_folder(model: str | os.PathLike | None, kind: str, allow_download: bool | None) -> Path:
    """:func:`resolve_model`, then the download (only when it returned a hub id)."""
    where = resolve_model(model, kind, allow_download=allow_download)
    if isinstance(where, Path):
        return where
    require_diffusers()
    return download_model(where, kind)


@contextlib.contextmanager
def _quiet(enabled: bool = True) -> Iterator[None]:
    """Silence the loading / saving progress bars of diffusers and transformers (restored after)."""
    if not enabled:
        yield
        return
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(deprecated|safety checker|is_safetensors).*")
            yield
    finally:
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


# --------------------------------------------------------------------------------------------------
# Tiny offline models (random weights) and the published full-size architectures
# --------------------------------------------------------------------------------------------------
def _bytes_to_unicode() -> list[str]:
    """The 256 printable characters byte-level BPE (GPT-2, CLIP) maps the bytes 0..255 to."""
    printable = list(range(ord("!"), ord("~") + 1)) + list(range(ord("¡"), ord("¬") + 1)) + \
        list(range(ord("®"), ord("ÿ") + 1))
    chars, extra = printable[:], 0
    for b in range(256):
        if b not in printable:
            chars.append(256 + extra)
            extra += 1
    return [chr(c) for c in chars]


#: A few English merges so that short prompts give multi-character tokens; the tiny vocabulary is the
#: 256 byte characters, the same with the end-of-word mark ``</w>``, these merges and the two specials.
_TINY_MERGES = ("t h", "th e</w>", "a n", "an d</w>", "i n", "o n", "e r", "r e", "o f</w>", "f a", "fa ce</w>",
                "c e</w>", "p h", "ph o", "pho t", "phot o</w>")


def _write_tiny_tokenizer_files(folder: Path) -> dict[str, int]:
    chars = _bytes_to_unicode()
    vocab: dict[str, int] = {}
    for token in chars + [c + "</w>" for c in chars]:
        vocab[token] = len(vocab)
    for merge in _TINY_MERGES:
        vocab.setdefault(merge.replace(" ", ""), len(vocab))
    for special in ("<|startoftext|>", "<|endoftext|>"):
        vocab[special] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab, ensure_ascii=False), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n" + "\n".join(_TINY_MERGES) + "\n", encoding="utf-8")
    return vocab


def _write_marker(folder: Path, what: str) -> None:
    (folder / RANDOM_WEIGHTS_MARKER).write_text(
        f"{what}\nBuilt by inpaint_utils.diffusion with RANDOM weights for offline tests and smoke runs: "
        f"the architecture is real, the images it makes are noise.\n", encoding="utf-8")


def _save_atomically(folder: Path, build) -> Path:
    """Run ``build(staging_folder)`` and move the result to ``folder`` (never a half-written model)."""
    folder = Path(folder).expanduser().resolve()
    folder.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        build(staging)
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(staging, folder)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    return folder


def _tiny_sd_components(seed: int, tokenizer_dir: Path) -> dict[str, Any]:
    """The components of a tiny SD inpainting pipeline, after diffusers' own test dummies: a 9-channel
    UNet of 32/64 channels with cross-attention, a 4-level VAE (downsampling 8, like SD), a 5-layer CLIP
    text encoder of width 32, the SD-2 inpainting scheduler configuration."""
    require_diffusers()
    from diffusers import AutoencoderKL, PNDMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vocab = _write_tiny_tokenizer_files(tokenizer_dir)
    tokenizer = CLIPTokenizer.from_pretrained(str(tokenizer_dir), model_max_length=77)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            block_out_channels=(32, 64), layers_per_block=2, sample_size=16,
            in_channels=9, out_channels=4,  # latents (4) + mask (1) + masked-image latents (4)
            down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
            up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"),
            cross_attention_dim=32, attention_head_dim=(2, 4), use_linear_projection=True)
        vae = AutoencoderKL(
            block_out_channels=(32, 32, 64, 64), layers_per_block=1, in_channels=3, out_channels=3, latent_channels=4,
            down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4, sample_size=128)
        text_encoder = CLIPTextModel(CLIPTextConfig(
            vocab_size=len(vocab), hidden_size=32, intermediate_size=37, num_attention_heads=4, num_hidden_layers=5,
            max_position_embeddings=77, projection_dim=32, hidden_act="gelu", layer_norm_eps=1e-5,
            bos_token_id=vocab["<|startoftext|>"], eos_token_id=vocab["<|endoftext|>"],
            pad_token_id=vocab["<|endoftext|>"]))
    scheduler = PNDMScheduler(**_SD2_SCHEDULER)
    return {"vae": vae, "text_encoder": text_encoder, "tokenizer": tokenizer, "unet": unet, "scheduler": scheduler}


def build_tiny_inpaint_pipeline(folder: str | os.PathLike, seed: int = 0) -> Path:
    """Build a tiny, randomly initialised ``StableDiffusionInpaintPipeline`` and ``save_pretrained`` it
    into ``folder`` (replaced if present); return the folder. Nothing is downloaded: the CLIP tokenizer
    is built from a vocabulary and merges written to disk here. Same ``seed``, same weights.
    Load it with ``SDInpainter(folder)`` or ``StableDiffusionInpaintPipeline.from_pretrained(folder)``.
    """
    require_diffusers()
    from diffusers import StableDiffusionInpaintPipeline

    def build(staging: Path) -> None:
        with tempfile.TemporaryDirectory() as tok_dir, _quiet():
            parts = _tiny_sd_components(seed, Path(tok_dir))
            pipe = StableDiffusionInpaintPipeline(**parts, safety_checker=None, feature_extractor=None,
                                                  requires_safety_checker=False)
            pipe.save_pretrained(staging)
        _write_marker(staging, f"tiny Stable Diffusion inpainting pipeline (seed {seed})")

    return _save_atomically(Path(folder), build)


def build_tiny_ddpm(folder: str | os.PathLike, seed: int = 0, sample_size: int = 32) -> Path:
    """Build a tiny, randomly initialised pixel-space DDPM (``UNet2DModel`` of 32/64 channels with one
    attention level, and the DDPM scheduler of Ho et al.) saved like ``google/ddpm-ema-celebahq-256``
    (``unet/``, ``scheduler/``, ``model_index.json``) into ``folder``; return the folder. For RePaint."""
    require_diffusers()
    from diffusers import DDPMPipeline, DDPMScheduler, UNet2DModel

    def build(staging: Path) -> None:
        with torch.random.fork_rng(devices=[]), _quiet():
            torch.manual_seed(seed)
            unet = UNet2DModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=sample_size,
                               in_channels=3, out_channels=3, down_block_types=("DownBlock2D", "AttnDownBlock2D"),
                               up_block_types=("AttnUpBlock2D", "UpBlock2D"))
            DDPMPipeline(unet=unet, scheduler=DDPMScheduler(**_DDPM_SCHEDULER)).save_pretrained(staging)
        _write_marker(staging, f"tiny DDPM (seed {seed})")

    return _save_atomically(Path(folder), build)


_TINY_LOCK = threading.Lock()


def ensure_tiny_model(kind: str = "sd", folder: str | os.PathLike | None = None) -> Path:
    """The tiny random model of ``kind`` (``"sd"`` or ``"ddpm"``) in ``folder`` (default
    ``runs_dir()/tiny_sd_inpaint`` or ``runs_dir()/tiny_ddpm``), built there first if absent."""
    if kind not in _TINY_FOLDERS:
        raise ValueError(f"kind must be 'sd' or 'ddpm', got {kind!r}")
    folder = Path(folder) if folder is not None else runs_dir() / _TINY_FOLDERS[kind]
    with _TINY_LOCK:
        if not ((folder / "model_index.json").is_file() and (folder / RANDOM_WEIGHTS_MARKER).is_file()):
            (build_tiny_inpaint_pipeline if kind == "sd" else build_tiny_ddpm)(folder)
    return folder.resolve()


#: The published configuration of ``stabilityai/stable-diffusion-2-inpainting`` (model card and its
#: ``*/config.json``): UNet 320-640-1280-1280 with linear-projection cross-attention of width 1024
#: (OpenCLIP ViT-H/14 text encoder, 23 layers), the SD VAE (128-256-512-512, factor 8), PNDM.
SD2_INPAINT_CONFIG: dict[str, dict[str, Any]] = {
    "unet": {
        "sample_size": 64, "in_channels": 9, "out_channels": 4, "layers_per_block": 2,
        "block_out_channels": (320, 640, 1280, 1280),
        "down_block_types": ("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        "up_block_types": ("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"),
        "attention_head_dim": (5, 10, 20, 20), "cross_attention_dim": 1024, "use_linear_projection": True,
        "norm_num_groups": 32, "norm_eps": 1e-5, "act_fn": "silu", "flip_sin_to_cos": True, "freq_shift": 0,
    },
    "vae": {
        "block_out_channels": (128, 256, 512, 512), "layers_per_block": 2, "in_channels": 3, "out_channels": 3,
        "latent_channels": 4, "down_block_types": ("DownEncoderBlock2D",) * 4,
        "up_block_types": ("UpDecoderBlock2D",) * 4, "sample_size": 512, "norm_num_groups": 32,
        "scaling_factor": 0.18215,
    },
    "text_encoder": {
        "vocab_size": 49408, "hidden_size": 1024, "intermediate_size": 4096, "num_attention_heads": 16,
        "num_hidden_layers": 23, "max_position_embeddings": 77, "projection_dim": 512, "hidden_act": "gelu",
        "layer_norm_eps": 1e-5,
    },
}
_SD2_SCHEDULER = {"beta_start": 0.00085, "beta_end": 0.012, "beta_schedule": "scaled_linear", "skip_prk_steps": True,
                  "set_alpha_to_one": False, "steps_offset": 1, "num_train_timesteps": 1000}

#: The architecture of ``google/ddpm-ema-celebahq-256`` (Ho et al. 2020's 256x256 model: 128 channels,
#: multipliers 1-1-2-2-4-4, attention at 16x16) and the DDPM linear beta schedule.
DDPM_CELEBAHQ_CONFIG: dict[str, Any] = {
    "sample_size": 256, "in_channels": 3, "out_channels": 3, "layers_per_block": 2,
    "block_out_channels": (128, 128, 256, 256, 512, 512),
    "down_block_types": ("DownBlock2D", "DownBlock2D", "DownBlock2D", "DownBlock2D", "AttnDownBlock2D", "DownBlock2D"),
    "up_block_types": ("UpBlock2D", "AttnUpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D", "UpBlock2D"),
}
_DDPM_SCHEDULER = {"num_train_timesteps": 1000, "beta_start": 0.0001, "beta_end": 0.02, "beta_schedule": "linear",
                   "clip_sample": True}


def build_random_sd2_inpaint_pipeline(seed: int = 0):
    """The full-size SD-2 inpainting pipeline (:data:`SD2_INPAINT_CONFIG`) with **random** weights, in
    float32 on the CPU (about 1.3 G parameters, 5 GB): for timing the real architecture without the
    download (``benchmarks/bench_diffusion.py --model sd2-random``). Its tokenizer is the tiny one
    (token ids fit the full vocabulary; the cost of text encoding does not depend on them)."""
    require_diffusers()
    from diffusers import AutoencoderKL, PNDMScheduler, StableDiffusionInpaintPipeline, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    with tempfile.TemporaryDirectory() as tok_dir, _quiet(), torch.random.fork_rng(devices=[]):
        vocab = _write_tiny_tokenizer_files(Path(tok_dir))
        tokenizer = CLIPTokenizer.from_pretrained(tok_dir, model_max_length=77)
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(**SD2_INPAINT_CONFIG["unet"])
        vae = AutoencoderKL(**SD2_INPAINT_CONFIG["vae"])
        text_encoder = CLIPTextModel(CLIPTextConfig(**SD2_INPAINT_CONFIG["text_encoder"],
                                                    bos_token_id=vocab["<|startoftext|>"],
                                                    eos_token_id=vocab["<|endoftext|>"],
                                                    pad_token_id=vocab["<|endoftext|>"]))
        return StableDiffusionInpaintPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                              scheduler=PNDMScheduler(**_SD2_SCHEDULER), safety_checker=None,
                                              feature_extractor=None, requires_safety_checker=False)


def build_random_ddpm_pipeline(seed: int = 0):
    """A ``RePaintPipeline`` on the architecture of ``google/ddpm-ema-celebahq-256``
    (:data:`DDPM_CELEBAHQ_CONFIG`) with **random** weights, float32 on the CPU: for benchmarks."""
    require_diffusers()
    from diffusers import RePaintPipeline, RePaintScheduler, UNet2DModel

    with torch.random.fork_rng(devices=[]), _quiet():
        torch.manual_seed(seed)
        unet = UNet2DModel(**DDPM_CELEBAHQ_CONFIG)
    return RePaintPipeline(unet=unet, scheduler=RePaintScheduler(**_DDPM_SCHEDULER))


# --------------------------------------------------------------------------------------------------
# Resizing (128 -> 512 -> 128) and mask conventions
# --------------------------------------------------------------------------------------------------
def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def working_size(height: int, width: int, size: int | None, multiple: int = 8) -> tuple[int, int]:
    """The (H, W) a model runs at: the image scaled so that its longer side is ``size`` (seed 000:
    128 -> 512), each side rounded to a multiple of ``multiple`` (the VAE's factor 8; at least one
    multiple). ``size=None`` keeps the image's own size, which must then be a multiple already."""
    multiple = _check_positive_int(multiple, "multiple")
    if size is None:
        if height % multiple or width % multiple:
            raise ValueError(f"image size {height}x{width} is not a multiple of {multiple}; pass size= to resize")
        return height, width
    size = _check_positive_int(size, "size")
    if size % multiple:
        raise ValueError(f"size must be a multiple of {multiple} (the model's downsampling factor), got {size}")
    scale = size / max(height, width)
    h, w = (max(multiple, int(round(side * scale / multiple)) * multiple) for side in (height, width))
    return h, w


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of ``(B, 3, H, W)`` images in ``[0, 1]`` to ``size`` (H, W), antialiased when
    shrinking, clamped to ``[0, 1]`` (bicubic overshoots at edges). 128 -> 512 -> 128 returns a smooth
    image within a few 1e-3 and a constant one exactly."""
    check_image(image)
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    out = F.interpolate(image.float(), size=size, mode="bicubic", align_corners=False, antialias=shrink)
    return out.clamp_(0.0, 1.0).to(image.dtype)


def to_repaint_mask(mask: torch.Tensor) -> torch.Tensor:
    """Our mask (1 = hole) -> RePaint's (1 = **keep**, 0 = inpaint): ``1 - mask``. The one place the
    conversion happens (diffusers' ``RePaintPipeline`` docs: "0.0 define which part of the original
    image to inpaint")."""
    check_mask(mask)
    return 1.0 - mask


def roundtrip_error(raw: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel change ``|raw - image|`` averaged over RGB, ``(B, 1, H, W)`` in ``[0, 1]``; with
    ``mask`` the hole is set to 0, leaving the error **outside** the mask (the VAE round trip of a
    latent diffusion model; zero after paste-back)."""
    check_image(raw, "raw")
    check_image(image)
    if raw.shape != image.shape:
        raise ValueError(f"raw {tuple(raw.shape)} and image {tuple(image.shape)} must have the same shape")
    err = (raw.float() - image.float()).abs().mean(dim=1, keepdim=True)
    if mask is not None:
        check_image_mask(image, mask)
        err = err * (1.0 - mask.float())
    return err.clamp_(0.0, 1.0)


def repaint_schedule(steps: int = 250, jump_length: int = 10, jump_n_sample: int = 10,
                     num_train_timesteps: int = 1000) -> dict[str, Any]:
    """RePaint's time schedule (diffusers' ``RePaintScheduler.set_timesteps``) and what it costs.

    Returns ``{"timesteps": [...], "unet_calls": n, "undo_steps": m}``: every decrease of t is one UNet
    call (denoise, then replace the known pixels); every increase is one "undo" (re-noising, no UNet).
    ``steps=250, jump_length=10, jump_n_sample=10`` (the paper, seed 001) gives 2410 UNet calls per
    image, against 250 without resampling."""
    for value, name in ((steps, "steps"), (jump_length, "jump_length"), (jump_n_sample, "jump_n_sample")):
        _check_positive_int(value, name)
    require_diffusers()
    from diffusers import RePaintScheduler

    scheduler = RePaintScheduler(num_train_timesteps=num_train_timesteps)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    timesteps = [int(t) for t in scheduler.timesteps]
    calls = undos = 0
    t_last = timesteps[0] + 1
    for t in timesteps:  # the loop of RePaintPipeline.__call__
        if t < t_last:
            calls += 1
        else:
            undos += 1
        t_last = t
    return {"timesteps": timesteps, "unet_calls": calls, "undo_steps": undos}


def hallucination_summary(rows: Sequence[dict[str, Any]], method: str = "SD-2", reference: str = "Telea",
                          scores: Sequence[str] = ("psnr_hole", "lpips_hole")) -> tuple[list[dict], list[dict]]:
    """Seed 000's hallucination claim as numbers: per data set and mask shape, ``method`` beside
    ``reference`` (a method that cannot hallucinate, e.g. Telea's diffusion of the border inwards).

    ``rows`` are result rows with ``"data"``, ``"mask"``, ``"method"`` and the ``scores`` (as
    :func:`inpaint_utils.metrics.compare_methods` returns them, plus data and mask). A score missing
    from the rows (LPIPS without its weights) is left out. Returns

    * ``table``: one row per (data, mask): ``n``, each score of ``method``, of ``reference``
      (``<score>_ref``) and the difference ``d_<score>`` (method - reference);
    * ``verdict``: one row per data set: the worst mask shape by each score (lowest PSNR, highest LPIPS)
      and by each difference, and ``circle_worst`` ("k of m": how many criteria put the circle last).
    """
    index = {(r["data"], r["mask"], r["method"]): r for r in rows}
    present = [s for s in scores if any(s in r for r in rows)]
    if not present:
        raise ValueError(f"rows hold none of the scores {list(scores)}")
    lower_is_worse = {s: not s.startswith("lpips") for s in present}
    table: list[dict[str, Any]] = []
    for (data, mask, name), row in index.items():
        if name != method:
            continue
        ref = index.get((data, mask, reference))
        if ref is None:
            raise ValueError(f"no {reference!r} row for data {data!r}, mask {mask!r}")
        out: dict[str, Any] = {"data": data, "mask": mask, "n": row.get("n")}
        for s in present:
            out[s], out[f"{s}_ref"] = float(row[s]), float(ref[s])
            out[f"d_{s}"] = float(row[s]) - float(ref[s])
        table.append(out)
    if not table:
        raise ValueError(f"no rows of method {method!r}")
    verdict = []
    for data in dict.fromkeys(r["data"] for r in table):
        part = [r for r in table if r["data"] == data]
        v: dict[str, Any] = {"data": data}
        for s in present:
            for key in (s, f"d_{s}"):
                pick = min if lower_is_worse[s] else max
                v[f"worst_{key}"] = pick(part, key=lambda r: r[key])["mask"]
        criteria = [k for k in v if k.startswith("worst_")]
        v["circle_worst"] = f"{sum(v[k] == 'circle' for k in criteria)} of {len(criteria)}"
        verdict.append(v)
    return table, verdict


# --------------------------------------------------------------------------------------------------
# Shared helpers of the two wrappers
# --------------------------------------------------------------------------------------------------
def _image_seeds(generator: torch.Generator | int | None, n: int, default: int) -> list[int]:
    """One seed per image: ``seed + i`` for an int (``default`` when None), else drawn from the generator."""
    if generator is None:
        generator = default
    if isinstance(generator, bool):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")
    if isinstance(generator, int):
        return [int(generator) + i for i in range(n)]
    if isinstance(generator, torch.Generator):
        return torch.randint(0, 2**62, (n,), generator=generator, device=generator.device).tolist()
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")


def _resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    names = {"fp16": torch.float16, "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch.dtype, got {dtype!r}")
        dtype = names[dtype]
    if dtype not in (torch.float16, torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be float16, bfloat16 or float32, got {dtype}")
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("float16 is not supported on the CPU here; use dtype=None (float32 on the CPU)")
    return dtype


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _use_sdpa(*modules: Any) -> str:
    """Set PyTorch's scaled-dot-product attention on every attention layer of the modules; return the
    processor name(s) in use."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    names = set()
    for module in modules:
        if module is None or not hasattr(module, "set_attn_processor"):
            continue
        if getattr(module, "attn_processors", None):
            module.set_attn_processor(AttnProcessor2_0())
            names |= {type(p).__name__ for p in module.attn_processors.values()}
    return ",".join(sorted(names)) or "none"


def _move(pipe: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """``pipe.to(device, dtype)`` without diffusers' note on casting a model built in memory."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        return pipe.to(device, dtype)
    finally:
        dlog.set_verbosity(level)


def _check_batch(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    check_image_mask(image, mask)
    return mask.expand(image.shape[0], -1, -1, -1)


def _paste_back(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``where(mask, pred, image)``: hole from the prediction, every known pixel exactly the input's."""
    return torch.where(mask.to(torch.bool), pred.to(image.dtype), image)


# --------------------------------------------------------------------------------------------------
# Stable Diffusion 2 inpainting
# --------------------------------------------------------------------------------------------------
class SDInpainter:
    """Stable Diffusion inpainting on ``[0, 1]`` tensors with ``1 = hole`` masks (seed 000's set-up).

    >>> sd = SDInpainter("tiny", size=64, steps=2)           # doctest: +SKIP
    >>> completed, info = sd(image, mask, generator=0)        # doctest: +SKIP

    Args:
        model: hub id (default ``$INPAINT_SD_MODEL`` or :data:`DEFAULT_SD_MODEL`), a local folder,
            ``"tiny"`` (random weights, images are noise), or a ``StableDiffusionInpaintPipeline``.
            A hub id that is not cached and cannot be downloaded fails at once (:func:`resolve_model`).
        device: ``"auto"`` (cuda, then mps, then cpu) or a device. dtype: ``None`` = float16 on cuda,
            float32 elsewhere.
        scheduler: a name of :data:`SCHEDULERS` (``"ddim"``, ``"dpmpp"``, ``"pndm"``, ...) or ``None``
            for the checkpoint's own (PNDM for SD-2 inpainting, seed 000's).
        steps, guidance_scale: denoising steps and classifier-free guidance weight (pipeline defaults 50, 7.5).
        prompt, negative_prompt: text; seed 000 uses the empty prompt.
        cfg: ``"auto"`` runs classifier-free guidance only when it can change the result. With the empty
            prompt and no negative prompt the conditional and unconditional branches see the same
            embedding, so guidance is the identity and doubles the UNet's work; ``"auto"`` then runs one
            branch (same images, about half the time). ``True`` always runs both (diffusers' behaviour).
        size: longer side the image is scaled to before the pipeline (128 -> 512; multiple of 8), and back.
        batch_size: images per pipeline call. seed: used when a call gets no generator.
        attention: ``"sdpa"`` (PyTorch's fused attention) or ``"default"`` (diffusers' choice).
    """

    def __init__(self, model: Any = None, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None,
                 scheduler: str | None = None, steps: int = 50, guidance_scale: float = 7.5, prompt: str = "",
                 negative_prompt: str | None = None, cfg: bool | str = "auto", size: int | None = 512,
                 batch_size: int = 4, seed: int = 0, attention: str = "sdpa", progress: bool = False,
                 allow_download: bool | None = None, random_weights: bool | None = None) -> None:
        self.device = get_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.steps = _check_positive_int(steps, "steps")
        self.guidance_scale = self._check_guidance(guidance_scale)
        self.prompt = self._check_text(prompt, "prompt")
        self.negative_prompt = None if negative_prompt is None else self._check_text(negative_prompt, "negative_prompt")
        if cfg not in ("auto", True, False):
            raise ValueError(f"cfg must be 'auto', True or False, got {cfg!r}")
        self.cfg = cfg
        self.size = size if size is None else _check_positive_int(size, "size")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        if attention not in ("sdpa", "default"):
            raise ValueError(f"attention must be 'sdpa' or 'default', got {attention!r}")
        if scheduler is not None and scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {sorted(SCHEDULERS)} or None")

        self.folder: Path | None = None
        if isinstance(model, (str, os.PathLike)) or model is None:
            self.folder = _local_folder(model, "sd", allow_download)  # fails fast, before diffusers loads anything
            self.pipe = self._load(self.folder)
            self.model_name = str(model if model is not None else default_model("sd"))
            marked = (self.folder / RANDOM_WEIGHTS_MARKER).is_file()
        else:
            require_diffusers()
            from diffusers import StableDiffusionInpaintPipeline

            if not isinstance(model, StableDiffusionInpaintPipeline):
                raise TypeError(f"model must be a hub id, a folder or a StableDiffusionInpaintPipeline, "
                                f"got {type(model).__name__}")
            self.pipe = _move(model, self.device, self.dtype)
            self.model_name = type(model).__name__
            marked = False
        self.random_weights = marked if random_weights is None else bool(random_weights)
        self.pipe.set_progress_bar_config(disable=not progress)
        self.attention = _use_sdpa(self.pipe.unet, self.pipe.vae) if attention == "sdpa" else "default"
        self.multiple = int(self.pipe.vae_scale_factor)
        if self.size is not None and self.size % self.multiple:
            raise ValueError(f"size must be a multiple of {self.multiple} (the VAE's downsampling factor), got {size}")
        self._base_scheduler = self.pipe.scheduler
        self.scheduler_name = "model"
        self.set_scheduler(scheduler)

    # -- construction ------------------------------------------------------------------------------
    def _load(self, folder: Path):
        require_diffusers()
        from diffusers import StableDiffusionInpaintPipeline

        try:
            with _quiet():
                pipe = StableDiffusionInpaintPipeline.from_pretrained(
                    folder, torch_dtype=self.dtype, local_files_only=True, safety_checker=None,
                    requires_safety_checker=False)
        except (OSError, ValueError) as err:
            how = hub_howto(DEFAULT_SD_MODEL, "sd")
            raise ModelUnavailableError(f"could not load an inpainting pipeline from {folder}: {err}\n{how}") from err
        return pipe.to(self.device)

    @staticmethod
    def _check_guidance(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {value!r}")
        return float(value)

    @staticmethod
    def _check_text(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        return value

    def set_scheduler(self, name: str | None) -> None:
        """Switch the sampler: a name of :data:`SCHEDULERS` or ``None`` (the checkpoint's own). Built
        from the checkpoint's scheduler configuration (betas, offsets) each time."""
        if name is None:
            self.pipe.scheduler = self._base_scheduler
            self.scheduler_name = "model"
            return
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)} or None")
        import diffusers

        cls_name, overrides = SCHEDULERS[name]
        cls = getattr(diffusers, cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pipe.scheduler = cls.from_config(self._base_scheduler.config, **overrides)
        self.scheduler_name = name

    # -- inference ---------------------------------------------------------------------------------
    def _guidance(self, guidance_scale: float, prompt: str, cfg: bool | str) -> tuple[float, bool]:
        """(guidance scale passed to the pipeline, whether both CFG branches run)."""
        if guidance_scale <= 1.0 or cfg is False:
            return 1.0, False
        if cfg == "auto" and prompt == "" and not self.negative_prompt:
            return 1.0, False  # both branches would be identical: guidance is the identity
        return guidance_scale, True

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | int | None = None, *,
                 steps: int | None = None, guidance_scale: float | None = None, prompt: str | None = None,
                 cfg: bool | str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Inpaint ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` where ``mask`` ``(B or 1, 1, H, W)`` is 1.

        ``generator``: a ``torch.Generator`` (per-image seeds are drawn from it), an int seed (image i
        uses ``seed + i``) or ``None`` (the wrapper's ``seed``). ``steps``, ``guidance_scale``,
        ``prompt``, ``cfg`` override the wrapper's settings for this call.

        Returns ``completed`` ``(B, 3, H, W)`` float32 in ``[0, 1]`` on the image's device (known
        pixels exactly the input's) and ``info``: ``raw`` (the output scaled back, **without**
        paste-back), ``seconds`` (per image: each pipeline call's wall time over its images),
        ``seconds_per_image``, ``work_size``, ``seeds``, ``steps``, ``scheduler``, ``guidance_scale``,
        ``cfg`` (whether both guidance branches ran), ``unet_evals`` (UNet evaluations per image),
        ``device``, ``dtype``, ``attention``.
        """
        mask = _check_batch(image, mask)
        steps = self.steps if steps is None else _check_positive_int(steps, "steps")
        guidance_scale = self.guidance_scale if guidance_scale is None else self._check_guidance(guidance_scale)
        prompt = self.prompt if prompt is None else self._check_text(prompt, "prompt")
        cfg = self.cfg if cfg is None else cfg
        if cfg not in ("auto", True, False):
            raise ValueError(f"cfg must be 'auto', True or False, got {cfg!r}")
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        seeds = _image_seeds(generator, b, self.seed)
        scale, both = self._guidance(guidance_scale, prompt, cfg)

        # our mask (1 = hole) is diffusers' mask (white = repaint): no conversion
        image_w = resize_image(image.detach().float().cpu(), work)
        mask_w = resize_mask(mask.detach().float().cpu(), work)
        outputs, seconds = [], []
        for start in range(0, b, self.batch_size):
            stop = min(start + self.batch_size, b)
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:stop]]
            _sync(self.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.pipe(prompt=[prompt] * (stop - start),
                                negative_prompt=None if self.negative_prompt is None else
                                [self.negative_prompt] * (stop - start),
                                image=image_w[start:stop].to(self.device),
                                mask_image=mask_w[start:stop].to(self.device),
                                height=work[0], width=work[1], num_inference_steps=steps, guidance_scale=scale,
                                generator=gens, output_type="pt").images
            _sync(self.device)
            elapsed = time.perf_counter() - t0
            seconds += [elapsed / (stop - start)] * (stop - start)
            outputs.append(out.float().cpu())
        raw_work = torch.cat(outputs).clamp_(0.0, 1.0)
        raw = resize_image(raw_work, (h, w)).to(image.device)
        completed = _paste_back(raw, image.float(), mask.to(image.device))
        info = {
            "raw": raw, "seconds": seconds, "seconds_per_image": sum(seconds) / len(seconds), "work_size": work,
            "seeds": seeds, "steps": steps, "scheduler": self.scheduler_name,
            "scheduler_class": type(self.pipe.scheduler).__name__, "guidance_scale": guidance_scale, "cfg": both,
            "unet_evals": len(self.pipe.scheduler.timesteps) * (2 if both else 1), "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""), "attention": self.attention,
        }
        return completed, info

    def roundtrip(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Where the change outside the mask comes from: ``{"resize": down(up(image)), "vae":
        down(decode(encode(up(image))))}`` (the VAE's mean latent, no diffusion), both ``(B, 3, H, W)``."""
        check_image(image)
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        up = resize_image(image.detach().float().cpu(), work)
        vae = self.pipe.vae
        parts = []
        with torch.inference_mode():
            for start in range(0, b, self.batch_size):
                x = up[start:start + self.batch_size].to(self.device, self.dtype) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
                latents = vae.encode(x).latent_dist.mode()
                decoded = vae.decode(latents).sample
                parts.append(((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).cpu())
        return {"resize": resize_image(up, (h, w)).to(image.device),
                "vae": resize_image(torch.cat(parts), (h, w)).to(image.device)}

    def warmup(self, size: int | None = None) -> None:
        """One short call (first-call overheads: kernels, caches) so that timings measure steady state."""
        side = size or (self.size or 64)
        x = torch.full((1, 3, side, side), 0.5)
        m = torch.zeros(1, 1, side, side)
        m[..., side // 4: side // 2, side // 4: side // 2] = 1.0
        self(x, m, generator=0, steps=1)

    def __repr__(self) -> str:
        return (f"SDInpainter(model={self.model_name!r}, device={self.device}, dtype={self.dtype}, scheduler="
                f"{self.scheduler_name!r}, steps={self.steps}, guidance_scale={self.guidance_scale}, size={self.size}, "
                f"batch_size={self.batch_size}, random_weights={self.random_weights})")


# --------------------------------------------------------------------------------------------------
# RePaint
# --------------------------------------------------------------------------------------------------
class RePaintInpainter:
    """RePaint (Lugmayr et al. 2022) with diffusers' ``RePaintPipeline`` / ``RePaintScheduler`` on a
    pixel-space DDPM, on ``[0, 1]`` tensors with ``1 = hole`` masks.

    Args:
        model: hub id (default ``$INPAINT_DDPM_MODEL`` or :data:`DEFAULT_DDPM_MODEL`), a folder with
            ``unet/`` and ``scheduler/`` (or the files at its root), ``"tiny"``, or a ``RePaintPipeline``.
        steps, jump_length, jump_n_sample: the schedule (seed 001 / the paper: 250, 10, 10 -> 2410 UNet
            calls per image; see :func:`repaint_schedule`). eta: 1.0, RePaint's DDPM ancestral sampling in
            the hole (the paper; 0 would be a deterministic DDIM-like step, the value of diffusers' example).
        size: side the images are scaled to (default: the DDPM's training size, 256 for CelebA-HQ).
        batch_size: images per pipeline call. A call's randomness: the initial noise of each image comes
            from its own seed, the resampling noise of a batch from the seed of its first image, so the
            same seed **and** batch size give the same result.
    """

    def __init__(self, model: Any = None, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None,
                 steps: int = 250, jump_length: int = 10, jump_n_sample: int = 10, eta: float = 1.0,
                 size: int | None = None, batch_size: int = 4, seed: int = 0, progress: bool = False,
                 allow_download: bool | None = None, random_weights: bool | None = None) -> None:
        self.device = get_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.steps = _check_positive_int(steps, "steps")
        self.jump_length = _check_positive_int(jump_length, "jump_length")
        self.jump_n_sample = _check_positive_int(jump_n_sample, "jump_n_sample")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        self.eta = float(eta)
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.folder: Path | None = None
        if isinstance(model, (str, os.PathLike)) or model is None:
            self.folder = _local_folder(model, "ddpm", allow_download)
            self.pipe = self._load(self.folder)
            self.model_name = str(model if model is not None else default_model("ddpm"))
            marked = (self.folder / RANDOM_WEIGHTS_MARKER).is_file()
        else:
            require_diffusers()
            from diffusers import RePaintPipeline

            if not isinstance(model, RePaintPipeline):
                raise TypeError(f"model must be a hub id, a folder or a RePaintPipeline, got {type(model).__name__}")
            self.pipe = _move(model, self.device, self.dtype)
            self.model_name = type(model).__name__
            marked = False
        self.random_weights = marked if random_weights is None else bool(random_weights)
        self.pipe.set_progress_bar_config(disable=not progress)
        self.attention = _use_sdpa(self.pipe.unet)
        native = self.pipe.unet.config.sample_size
        native = native if isinstance(native, int) else int(native[0])
        self.size = native if size is None else _check_positive_int(size, "size")
        self.multiple = 2 ** (len(self.pipe.unet.config.block_out_channels) - 1)
        if self.size % self.multiple:
            raise ValueError(f"size must be a multiple of {self.multiple} for this UNet, got {self.size}")

    def _load(self, folder: Path):
        require_diffusers()
        from diffusers import RePaintPipeline, RePaintScheduler, UNet2DModel

        unet_sub = "unet" if (folder / "unet" / "config.json").is_file() else None
        sched_sub = "scheduler" if (folder / "scheduler" / "scheduler_config.json").is_file() else None
        try:
            with _quiet():
                unet = UNet2DModel.from_pretrained(folder, subfolder=unet_sub, torch_dtype=self.dtype,
                                                   local_files_only=True)
                scheduler = RePaintScheduler.from_pretrained(folder, subfolder=sched_sub)
        except (OSError, ValueError) as err:
            how = hub_howto(DEFAULT_DDPM_MODEL, "ddpm")
            raise ModelUnavailableError(f"could not load a DDPM from {folder}: {err}\n{how}") from err
        return RePaintPipeline(unet=unet, scheduler=scheduler).to(self.device)

    def schedule(self) -> dict[str, Any]:
        """:func:`repaint_schedule` of this wrapper's settings."""
        return repaint_schedule(self.steps, self.jump_length, self.jump_n_sample,
                                self.pipe.scheduler.config.num_train_timesteps)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | int | None = None
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Inpaint like :meth:`SDInpainter.__call__`; returns ``completed`` and ``info`` (``raw``,
        ``seconds``, ``seconds_per_image``, ``work_size``, ``seeds``, ``unet_calls`` per image, ...)."""
        mask = _check_batch(image, mask)
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        seeds = _image_seeds(generator, b, self.seed)
        image_w = resize_image(image.detach().float().cpu(), work) * 2.0 - 1.0     # RePaint works in [-1, 1]
        keep_w = to_repaint_mask(resize_mask(mask.detach().float().cpu(), work))  # RePaint: 1 = keep
        outputs, seconds = [], []
        for start in range(0, b, self.batch_size):
            stop = min(start + self.batch_size, b)
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:stop]]
            _sync(self.device)
            t0 = time.perf_counter()
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*preprocess.*deprecated.*")
                out = self.pipe(image=image_w[start:stop].to(self.device, self.dtype),
                                mask_image=keep_w[start:stop].to(self.device, self.dtype),
                                num_inference_steps=self.steps, eta=self.eta, jump_length=self.jump_length,
                                jump_n_sample=self.jump_n_sample, generator=gens, output_type="np").images
            _sync(self.device)
            elapsed = time.perf_counter() - t0
            seconds += [elapsed / (stop - start)] * (stop - start)
            outputs.append(torch.from_numpy(out).permute(0, 3, 1, 2).float())  # (b, H, W, 3) -> (b, 3, H, W)
        raw_work = torch.cat(outputs).clamp_(0.0, 1.0)
        raw = resize_image(raw_work, (h, w)).to(image.device)
        completed = _paste_back(raw, image.float(), mask.to(image.device))
        info = {
            "raw": raw, "raw_work": raw_work, "seconds": seconds, "seconds_per_image": sum(seconds) / len(seconds),
            "work_size": work, "seeds": seeds, "steps": self.steps, "jump_length": self.jump_length,
            "jump_n_sample": self.jump_n_sample, "unet_calls": self.schedule()["unet_calls"],
            "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "attention": self.attention,
        }
        return completed, info

    def __repr__(self) -> str:
        return (f"RePaintInpainter(model={self.model_name!r}, device={self.device}, dtype={self.dtype}, "
                f"steps={self.steps}, jump_length={self.jump_length}, jump_n_sample={self.jump_n_sample}, "
                f"size={self.size}, batch_size={self.batch_size}, random_weights={self.random_weights})")
