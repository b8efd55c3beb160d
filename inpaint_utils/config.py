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
