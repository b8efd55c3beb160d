"""Where a diffusion model comes from: :func:`resolve_model` (``"tiny"`` is built here; any other model,
a folder or a hub id, is :func:`inpaint_utils.pretrained.find_model`'s), the tiny offline pipelines with
random weights (every code path on a CPU in seconds; **their images are noise**) and the published full-size
architectures with random weights, for timing them without the download.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any

import torch

from ..config import runs_dir
from ..pretrained import default_model, download_model, find_model
from .common import _quiet, require_diffusers

#: ``model="tiny"``: a tiny random pipeline built under ``runs_dir()`` (its images are noise).
TINY = "tiny"
#: File written into the tiny models' folders; its presence marks random weights.
RANDOM_WEIGHTS_MARKER = "RANDOM_WEIGHTS.txt"
_TINY_FOLDERS = {"sd": "tiny_sd_inpaint", "ddpm": "tiny_ddpm"}


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
    attention level, and the DDPM scheduler of Ho et al.) saved like
    :data:`~inpaint_utils.pretrained.DEFAULT_DDPM_MODEL` (``unet/``, ``scheduler/``, ``model_index.json``) into
    ``folder``; return the folder. For RePaint."""
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


#: The published configuration of :data:`~inpaint_utils.pretrained.ORIGINAL_SD_MODEL` (model card and its
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

#: The architecture of :data:`~inpaint_utils.pretrained.DEFAULT_DDPM_MODEL` (Ho et al. 2020's 256x256 model:
#: 128 channels, multipliers 1-1-2-2-4-4, attention at 16x16) and the DDPM linear beta schedule.
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
    """A ``RePaintPipeline`` on the architecture of :data:`~inpaint_utils.pretrained.DEFAULT_DDPM_MODEL`
    (:data:`DDPM_CELEBAHQ_CONFIG`) with **random** weights, float32 on the CPU: for benchmarks."""
    require_diffusers()
    from diffusers import RePaintPipeline, RePaintScheduler, UNet2DModel

    with torch.random.fork_rng(devices=[]), _quiet():
        torch.manual_seed(seed)
        unet = UNet2DModel(**DDPM_CELEBAHQ_CONFIG)
    return RePaintPipeline(unet=unet, scheduler=RePaintScheduler(**_DDPM_SCHEDULER))



# --------------------------------------------------------------------------------------------------
# Where a model comes from
# --------------------------------------------------------------------------------------------------
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
