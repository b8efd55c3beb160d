"""Profiles (smoke / full), paths and reproducibility for the whole course.

Every notebook's first code cell sets ``PROFILE = "smoke"`` or ``"full"`` plus a few knobs; it then calls
:func:`settings` with its own name, so the numbers that differ between a CPU smoke run and the paper's
GPU run live here, in one table, and nowhere else. Smoke is the same code path with smaller numbers.

Paths come from the environment so no notebook hard-codes a drive path:

=====================  =======================================================  ==========================
variable               meaning                                                  default
=====================  =======================================================  ==========================
``INPAINT_DATA``       root of downloaded datasets (``data_download.sh``)       ``<project>/data``
``INPAINT_SHARED``     folder of real sample images (the course's offline set)  ``<project>/../shared/data``
``INPAINT_FIGURES``    where notebooks save figures                             ``<project>/figures``
``INPAINT_RUNS``       executed notebooks, checkpoints, metrics                 ``<project>/runs``
``INPAINT_LPIPS``      LPIPS weights (``.npz`` of the full squeeze model)       looked up under the above
=====================  =======================================================  ==========================
"""
from __future__ import annotations

import copy
import os
import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

__all__ = [
    "PROFILES",
    "settings",
    "project_root",
    "data_root",
    "shared_data_root",
    "figures_dir",
    "runs_dir",
    "seed_everything",
    "get_device",
]

#: Per notebook, the numbers that differ between the two profiles. ``smoke`` must finish in a few
#: minutes on a 2-core CPU; ``full`` holds the papers' settings for a GPU.
PROFILES: dict[str, dict[str, dict[str, Any]]] = {
    "00_data_prep": {
        "smoke": {"image_size": 128, "num_preview": 8, "max_images": 400},
        "full": {"image_size": 128, "num_preview": 16, "max_images": None},
    },
    "01_masking": {
        "smoke": {"image_size": 128, "ratio_samples": 200, "num_eval_images": 60},
        "full": {"image_size": 256, "ratio_samples": 2000, "num_eval_images": 1000},
    },
    # Context Encoder (seed 000 / Pathak et al.): smoke is a narrower CE (same code) for a CPU.
    "02_context_encoder": {
        "smoke": {"image_size": 128, "base_channels": 32, "bottleneck_dim": 1000, "batch_size": 16,
                  "num_steps": 300, "lr": 2e-4, "log_every": 10, "sample_every": 100, "checkpoint_every": 100,
                  "num_eval_images": 60},
        "full": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64,
                 "num_steps": 50000, "lr": 2e-4, "log_every": 100, "sample_every": 1000, "checkpoint_every": 2500,
                 "num_eval_images": None},
    },
    # Cascade CE and NSD (seed 003): smoke trains narrow 64 / 128 CEs (same code) for a few hundred steps in all on a
    # CPU; full is the authors' CE at 02's full settings (so 02's centre CE is reused as the plain CE) and the paper's
    # NSD sample (k = 250 images, n = 100 masks). threads=1: a shared 2-core CPU is faster with one OpenMP thread.
    "03_cascade_ce_nsd": {
        "smoke": {"image_size": 128, "base_channels": 16, "bottleneck_dim": 256, "batch_size": 8, "lr": 2e-4,
                  "steps_center": 80, "steps_blocks": 40, "log_every": 10, "sample_every": 40,
                  "checkpoint_every": 40, "num_eval_images": 32, "nsd_k": 8, "nsd_n": 10, "nsd_batch_size": 64,
                  "threads": 1},
        "full": {"image_size": 128, "base_channels": 64, "bottleneck_dim": 4000, "batch_size": 64, "lr": 2e-4,
                 "steps_center": 50000, "steps_blocks": 50000, "log_every": 100, "sample_every": 1000,
                 "checkpoint_every": 2500, "num_eval_images": None, "nsd_k": 250, "nsd_n": 100, "nsd_batch_size": 250,
                 "threads": None},
    },
    # SD-2 inpainting and RePaint (seed 000, seed 001): smoke runs tiny random pipelines (images are noise),
    # built offline under runs/; full runs the real models (stabilityai/stable-diffusion-2-inpainting,
    # google/ddpm-ema-celebahq-256) with the papers' settings. threads=1: tiny models are per-op overhead.
    "06_stable_diffusion": {
        "smoke": {"image_size": 64, "num_images": 4, "mask_ratio": 0.25, "sd_model": "tiny", "sd_size": 128,
                  "steps": 2, "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 8,
                  "latency_steps": [2, 4], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 4,
                  "ddpm_model": "tiny", "repaint_size": 32, "repaint_steps": 10, "jump_length": 2,
                  "jump_n_sample": 2, "repaint_images": 2, "threads": 1},
        "full": {"image_size": 128, "num_images": 100, "mask_ratio": 0.25,
                 "sd_model": "stabilityai/stable-diffusion-2-inpainting", "sd_size": 512, "steps": 50,
                 "scheduler": "pndm", "guidance_scale": 7.5, "batch_size": 8,
                 "latency_steps": [10, 25, 50], "latency_schedulers": ["pndm", "ddim", "dpmpp"], "latency_images": 16,
                 "ddpm_model": "google/ddpm-ema-celebahq-256", "repaint_size": 256, "repaint_steps": 250,
                 "jump_length": 10, "jump_n_sample": 10, "repaint_images": 4, "threads": None},
    },
}


def settings(notebook: str, profile: str, **overrides: Any) -> dict[str, Any]:
    """The settings of ``notebook`` under ``profile``, with every non-``None`` override applied.

    >>> settings("01_masking", "smoke", image_size=64)["image_size"]
    64
    """
    if notebook not in PROFILES:
        raise KeyError(f"unknown notebook {notebook!r}; known: {sorted(PROFILES)}")
    table = PROFILES[notebook]
    if profile not in table:
        raise ValueError(f"unknown PROFILE {profile!r} for {notebook}; choose one of {sorted(table)}")
    out = copy.deepcopy(table[profile])
    for key, value in overrides.items():
        if value is None:
            continue
        if key not in out:
            raise KeyError(f"{notebook} has no setting {key!r}; settings are {sorted(out)}")
        out[key] = value
    out["profile"] = profile
    return out


def _looks_like_root(path: Path) -> bool:
    return (path / "inpaint_utils").is_dir() and (path / "pyproject.toml").is_file()


def project_root() -> Path:
    """The course checkout: found from the working directory (notebooks run in ``notebooks/``),
    else from this file (editable install), else the working directory itself."""
    cwd = Path.cwd().resolve()
    for candidate in (cwd, *cwd.parents):
        if _looks_like_root(candidate):
            return candidate
    here = Path(__file__).resolve().parents[1]
    if _looks_like_root(here):
        return here
    return cwd


def _env_path(var: str, default: Path) -> Path:
    value = os.environ.get(var, "").strip()
    return Path(value).expanduser().resolve() if value else default


def data_root() -> Path:
    """Root of downloaded datasets: ``$INPAINT_DATA`` or ``<project>/data``."""
    return _env_path("INPAINT_DATA", project_root() / "data")


def shared_data_root() -> Path | None:
    """The offline folder of real images (``$INPAINT_SHARED`` or ``../shared/data`` beside the
    checkout), or ``None`` when it is absent."""
    path = _env_path("INPAINT_SHARED", project_root().parent / "shared" / "data")
    return path if path.is_dir() else None


def figures_dir() -> Path:
    """Where figures are saved (created on demand): ``$INPAINT_FIGURES`` or ``<project>/figures``."""
    path = _env_path("INPAINT_FIGURES", project_root() / "figures")
    path.mkdir(parents=True, exist_ok=True)
    return path


def runs_dir() -> Path:
    """Executed notebooks, metrics and checkpoints (ignored by git): ``$INPAINT_RUNS`` or
    ``<project>/runs``."""
    path = _env_path("INPAINT_RUNS", project_root() / "runs")
    path.mkdir(parents=True, exist_ok=True)
    return path


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch; return a CPU ``torch.Generator`` seeded the same way, for the
    functions of this package that take a ``generator``."""
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"seed must be an int, got {seed!r}")
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def get_device(device: str | torch.device = "auto") -> torch.device:
    """``"auto"`` picks cuda, then mps, then cpu; anything else is passed to ``torch.device``."""
    if isinstance(device, torch.device):
        return device
    if device != "auto":
        dev = torch.device(device)
        if dev.type == "cuda" and not torch.cuda.is_available():
            raise RuntimeError(f"device {device!r} asked for, but CUDA is not available here; use 'auto' or 'cpu'")
        return dev
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")
