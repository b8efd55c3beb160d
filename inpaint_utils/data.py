"""Datasets, image loading, splits, the papers' preprocessing and the offline fallback.

Introduced in ``notebooks/00_data_prep.ipynb``; every later notebook gets its images from here.

* :data:`DATASETS` is the registry of the datasets the seed papers train on (CelebA-HQ, Cityscapes and
  Places365 in seed 000, the Context Encoder / Stable Diffusion 2 report; Animals-90 and an ImageNet
  subset in seed 002, the GLCIC / contextual-attention replication), with their Kaggle ids.
* :func:`download` (``bash data_download.sh NAME`` or ``python -m inpaint_utils.data download NAME``)
  fetches one with the ``kaggle`` CLI into ``data/<name>/``, checks the archive, extracts it safely and
  writes ``data/<name>/.complete`` last, so a re-run does nothing.
* :func:`load_image` reads a file of any Pillow mode as a float ``(3, H, W)`` tensor in ``[0, 1]``;
  :func:`preprocess` applies the papers' resize / crop recipes; :class:`ImageFolder` is the dataset
  with deterministic train / val / test splits.
* :func:`find_source` implements DESIGN.md "Data paths": the downloaded dataset when present, else the
  shared folder of real images (``../shared/data``), else scikit-image's bundled samples, and it says
  which one it used. CI and the smoke profile never download anything.
"""
from __future__ import annotations

import argparse
import datetime as _dt
import functools
import hashlib
import json
import math
import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image, ImageOps
from torch.utils.data import Dataset

from . import config
from .fileio import atomic_open, sha256_file
from .report import format_table
from .validation import check_image

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "get_dataset_spec",
    "registry_rows",
    "ImageReadError",
    "IMAGE_SUFFIXES",
    "load_image",
    "pil_to_tensor",
    "image_size",
    "list_images",
    "PREPROCESS_MODES",
    "preprocess",
    "resize_short_side",
    "center_crop",
    "make_transform",
    "split_indices",
    "SPLITS",
    "ImageFolder",
    "InMemoryImages",
    "COLLECTIONS",
    "SKIMAGE_SAMPLES",
    "DataSource",
    "dataset_source",
    "shared_source",
    "skimage_source",
    "find_source",
    "make_dataset",
    "first_images",
    "image_sizes",
    "size_summary",
    "mean_color",
    "DownloadError",
    "MARKER",
    "kaggle_credentials",
    "download",
    "safe_extract",
    "main",
]

# ------------------------------------------------------------------------------------------------
# The registry
# ------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class DatasetSpec:
    """One dataset of the seed papers and where to get it.

    ``image_glob`` is the pattern (relative to ``data/<name>/``) that matches the images after
    extraction; files are then filtered by suffix (case-insensitive). ``preprocessing`` names a mode
    of :func:`preprocess`. ``sha256`` is the archive's checksum where we know it; ``None`` means the
    archive is only checked for integrity (``zipfile.testzip``: every member's CRC). ``crop`` is a
    region taken from each file before preprocessing (``"left_half"`` for the photo half of the
    Cityscapes image pairs).
    """

    name: str
    kaggle_id: str
    paper: str
    description: str
    image_glob: str
    preprocessing: str
    sha256: str | None
    licence: str
    crop: str | None = None
    fallback_collection: str = "scenes"

    @property
    def url(self) -> str:
        return f"https://www.kaggle.com/datasets/{self.kaggle_id}"


DATASETS: dict[str, DatasetSpec] = {
    spec.name: spec
    for spec in (
        DatasetSpec(
            name="celeba-hq",
            kaggle_id="badasstechie/celebahq-resized-256x256",
            paper="000 (Context Encoder vs Stable Diffusion 2)",
            description=(
                "CelebA-HQ, 30,000 aligned celebrity faces, here already resized from 1024x1024 to "
                "256x256 jpg in celeba_hq_256/ (about 0.3 GB). The paper resized to 256 and cropped to "
                "128; the 256 px copy makes that cheap (our choice of Kaggle copy)."
            ),
            image_glob="celeba_hq_256/*",
            preprocessing="ce",
            sha256=None,
            licence="CelebA agreement: non-commercial research and education only; do not redistribute.",
            fallback_collection="faces",
        ),
        DatasetSpec(
            name="cityscapes",
            kaggle_id="dansbecker/cityscapes-image-pairs",
            paper="000 (Context Encoder vs Stable Diffusion 2)",
            description=(
                "Cityscapes street scenes as 256x512 jpg pairs (photo left, colour label map right), "
                "2,975 train + 500 val in cityscapes_data/{train,val}/ (about 0.1 GB). The official "
                "release needs a registration; this Kaggle copy is our choice. Only the left (photo) "
                "half is used."
            ),
            image_glob="cityscapes_data/*/*",
            preprocessing="ce",
            sha256=None,
            licence="Cityscapes terms: non-commercial research and teaching; cite Cordts et al. 2016.",
            crop="left_half",
        ),
        DatasetSpec(
            name="places365",
            kaggle_id="benjaminkz/places365",
            paper="000 (Context Encoder vs Stable Diffusion 2)",
            description=(
                "Places365-Standard, 256x256 scene images in train/ and val/ class folders (large: "
                "tens of GB; use max_images). The paper used 'a filtered subset' it does not list; "
                "this Kaggle copy and any subsetting are our choice."
            ),
            image_glob="**/*",
            preprocessing="ce",
            sha256=None,
            licence="Places terms (MIT CSAIL): non-commercial research and education; images belong to their owners.",
        ),
        DatasetSpec(
            name="animals-90",
            kaggle_id="iamsouravbanerjee/animal-image-dataset-90-different-animals",
            paper="002 (GLCIC and contextual attention)",
            description=(
                "Animal Image Dataset (90 Different Animals): 5,400 jpg of 90 classes (60 each) in "
                "animals/animals/<class>/ (about 0.7 GB), the exact Kaggle set the paper cites; it split "
                "1:11 (test:train) per class and resized to 256x256."
            ),
            image_glob="animals/animals/*/*",
            preprocessing="256",
            sha256=None,
            licence="As stated on the Kaggle page; web images of mixed origin: research and teaching use only.",
        ),
        DatasetSpec(
            name="imagenet-subset",
            kaggle_id="ifigotin/imagenetmini-1000",
            paper="002 (GLCIC and contextual attention)",
            description=(
                "ImageNet Mini: about 38,700 ImageNet-1k images (all 1000 classes) in "
                "imagenet-mini/{train,val}/<wnid>/ (about 4 GB). The paper used a 50k subset of the "
                "ImageNet localization challenge (a Kaggle competition that needs accepting its rules "
                "and 150+ GB); this smaller public subset is our choice."
            ),
            image_glob="imagenet-mini/*/*/*",
            preprocessing="256",
            sha256=None,
            licence="ImageNet terms of access: non-commercial research and education only.",
        ),
    )
}


def get_dataset_spec(name: str) -> DatasetSpec:
    """The registry entry of ``name``; an unknown name raises ``KeyError`` listing the known ones."""
    try:
        return DATASETS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown dataset {name!r}; known datasets: {', '.join(sorted(DATASETS))}") from None


def registry_rows() -> list[dict[str, str]]:
    """One row per registered dataset (for tables): name, paper, kaggle id, preprocessing,
    whether it is downloaded under :func:`config.data_root`, and the download command."""
    root = config.data_root()
    return [
        {
            "name": spec.name,
            "paper": spec.paper.split(" ")[0],
            "kaggle id": spec.kaggle_id,
            "preprocess": spec.preprocessing,
            "downloaded": "yes" if (root / spec.name / MARKER).is_file() else "no",
            "download with": f"bash data_download.sh {spec.name}",
        }
        for spec in DATASETS.values()
    ]


# ------------------------------------------------------------------------------------------------
# Reading images
# ------------------------------------------------------------------------------------------------

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class ImageReadError(ValueError):
    """A file exists but is not a readable image (corrupt, truncated, unsupported)."""


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow image of any mode as a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    * ``RGB``, ``L``, ``1``, ``CMYK``, ``YCbCr``, ...: converted to RGB (grey is repeated).
    * Transparency (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a ``transparency`` entry):
      **composited on white**, ``rgb * alpha + 1 * (1 - alpha)``. Transparent pixels of such files
      often hold arbitrary colours; white is how viewers show them and keeps them out of the hole
      statistics of dark images.
    * 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and ``I`` (what 16-bit PGM/PNG give):
      divided by 65535, so 65535 -> 1.0, without clipping at 255. ``I`` values outside 0..65535 are
      rejected (these loaders only meet 16-bit data).
    * ``F`` (float TIFF): read on Pillow's 0..255 scale (as ``convert("L")`` does), divided by 255 and
      clipped to ``[0, 1]``.
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"mode {mode} pixel values lie in [{arr.min():g}, {arr.max():g}], "
                             "outside the 16-bit range 0..65535")
        grey = (arr / 65535.0).astype(np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("mode F image contains NaN or inf values")
        grey = np.clip(arr / 255.0, 0.0, 1.0).astype(np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    else:
        has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
        if has_alpha:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
            alpha = rgba[..., 3:4]
            rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white
        else:
            rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.float32) / 255.0
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous().clamp_(0.0, 1.0)  # (3, H, W)


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read ``path`` (jpg, png, or anything Pillow reads) as float32 ``(3, H, W)`` in ``[0, 1]``.

    Modes are handled by :func:`pil_to_tensor` (transparency composited on white, 16-bit scaled by
    65535). An EXIF orientation tag is applied. A missing file raises ``FileNotFoundError``; a file
    that cannot be decoded (not an image, truncated, corrupt) raises :class:`ImageReadError` with the
    path and the reason. Truncated files are not half-read: Pillow's global
    ``LOAD_TRUNCATED_IMAGES`` is left alone.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"image file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"cannot read image {path}: it is a directory")
    try:
        with Image.open(path) as img:
            img.load()
            if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation
                img = ImageOps.exif_transpose(img)
            return pil_to_tensor(img)
    except FileNotFoundError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, ...
        raise ImageReadError(f"cannot read image {path}: {type(e).__name__}: {e}") from e


def _quick_check(path: Path) -> str | None:
    """``None`` when Pillow can open ``path`` and its cheap ``verify()`` passes, else the reason."""
    try:
        with Image.open(path) as img:
            img.verify()
    except Exception as e:
        return f"{type(e).__name__}: {e}"
    return None


def _full_check(path: Path) -> str | None:
    try:
        load_image(path)
    except (ImageReadError, FileNotFoundError) as e:
        return str(e)
    return None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only."""
    with Image.open(path) as img:
        return img.size


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def list_images(root: str | os.PathLike, pattern: str = "**/*") -> list[Path]:
    """Image files (``.jpg``, ``.jpeg``, ``.png``, any case) under ``root`` matching ``pattern``,
    sorted by their path relative to ``root``. Files under hidden folders (``.download``,
    ``.ipynb_checkpoints``, ...) are left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    files = []
    for path in root.glob(pattern):
        rel = path.relative_to(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and not _is_hidden(rel) and path.is_file():
            files.append((rel.as_posix(), path))
    return [p for _, p in sorted(files)]


# ------------------------------------------------------------------------------------------------
# The papers' preprocessing
# ------------------------------------------------------------------------------------------------

#: ``"ce"``: seed 000 (Context Encoder): resize the short side to ``2 * size`` (256 for 128) and
#: centre-crop (or pad) to ``size`` (default 128). ``"256"``: seed 002 (GLCIC, contextual attention):
#: resize the short side to ``size`` (default 256) and centre-crop to ``size x size``.
#: ``None``: no change.
PREPROCESS_MODES = ("ce", "256", None)
_DEFAULT_SIZE = {"ce": 128, "256": 256}


def _check_size(size: Any, name: str = "size") -> int:
    if isinstance(size, bool) or not isinstance(size, (int, np.integer)) or size < 1:
        raise ValueError(f"{name} must be a positive int, got {size!r}")
    return int(size)


def _as_batch(image: torch.Tensor) -> tuple[torch.Tensor, bool]:
    if not isinstance(image, torch.Tensor):
        raise TypeError(f"image must be a torch.Tensor (3, H, W) or (B, 3, H, W), got {type(image).__name__}")
    if image.ndim == 3:
        return check_image(image.unsqueeze(0)), False
    return check_image(image), True


def _resize_short(x: torch.Tensor, target: int) -> torch.Tensor:
    h, w = x.shape[-2:]
    if h <= w:
        new_h, new_w = target, max(target, round(w * target / h))
    else:
        new_h, new_w = max(target, round(h * target / w)), target
    if (new_h, new_w) == (h, w):
        return x
    x = F.interpolate(x, size=(new_h, new_w), mode="bilinear", align_corners=False, antialias=True)
    return x.clamp(0.0, 1.0)


def resize_short_side(image: torch.Tensor, target: int) -> torch.Tensor:
    """Resize ``(B, 3, H, W)`` (or ``(3, H, W)``) so its short side is ``target``, keeping the aspect
    ratio; bilinear with antialiasing (as torchvision's ``Resize``), clipped to ``[0, 1]``."""
    target = _check_size(target, "target")
    x, batched = _as_batch(image)
    x = _resize_short(x, target)
    return x if batched else x[0]


def center_crop(image: torch.Tensor, size: int) -> torch.Tensor:
    """The central ``size x size`` region of ``(..., H, W)``; a side shorter than ``size`` is padded
    with black (0) on both sides, as torchvision's ``CenterCrop`` does."""
    size = _check_size(size)
    h, w = image.shape[-2:]
    pad_h, pad_w = max(size - h, 0), max(size - w, 0)
    if pad_h or pad_w:
        image = F.pad(image, (pad_w // 2, pad_w - pad_w // 2, pad_h // 2, pad_h - pad_h // 2), value=0.0)
        h, w = image.shape[-2:]
    top, left = (h - size) // 2, (w - size) // 2
    return image[..., top:top + size, left:left + size]


def preprocess(image: torch.Tensor, mode: str | None = "ce", size: int | None = None) -> torch.Tensor:
    """Apply a paper's recipe to ``(3, H, W)`` or ``(B, 3, H, W)`` images in ``[0, 1]``.

    ``mode="ce"`` (seed 000): short side to ``2 * size`` then centre crop to ``size`` (default 128:
    "resized to 256 then cropped/padded to 128"; on a whole face this keeps its central part).
    ``mode="256"`` (seed 002): short side to ``size`` then centre crop (default 256: the whole image
    at 256 x 256). ``mode=None``: returned unchanged (``size`` must then be ``None``).
    """
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    x, batched = _as_batch(image)
    if mode is None:
        if size is not None:
            raise ValueError(f"mode=None keeps the image as it is; got size={size!r} (use mode='256' to resize)")
        return image
    size = _DEFAULT_SIZE[mode] if size is None else _check_size(size)
    x = center_crop(_resize_short(x, 2 * size if mode == "ce" else size), size)
    return x if batched else x[0]


def make_transform(mode: str | None = "256", size: int | None = 128) -> Callable[[torch.Tensor], torch.Tensor]:
    """A picklable ``image -> preprocess(image, mode, size)`` (for DataLoader workers)."""
    if mode not in PREPROCESS_MODES:
        raise ValueError(f"mode must be one of {PREPROCESS_MODES}, got {mode!r}")
    if mode is None and size is not None:
        raise ValueError(f"mode=None keeps the image as it is; got size={size!r}")
    if size is not None:
        _check_size(size)
    return functools.partial(preprocess, mode=mode, size=size)


def _apply_crop(image: torch.Tensor, crop: str | None) -> torch.Tensor:
    if crop is None:
        return image
    if crop == "left_half":
        return image[..., : image.shape[-1] // 2]
    raise ValueError(f"crop must be None or 'left_half', got {crop!r}")


# ------------------------------------------------------------------------------------------------
# Splits and datasets
# ------------------------------------------------------------------------------------------------

SPLITS = ("train", "val", "test", "all")


def _check_fractions(fractions: Sequence[float]) -> tuple[float, float, float]:
    try:
        values = tuple(float(f) for f in fractions)
    except (TypeError, ValueError):
        raise ValueError(f"fractions must be three numbers (train, val, test), got {fractions!r}") from None
    if len(values) != 3 or not all(math.isfinite(v) and v >= 0 for v in values) or abs(sum(values) - 1) > 1e-6:
        raise ValueError("fractions must be three non-negative numbers (train, val, test) summing to 1, "
                         f"got {fractions!r}")
    return values  # type: ignore[return-value]


def _check_seed(seed: Any) -> int:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {seed!r}")
    return int(seed)


def _permutation(n: int, seed: int) -> list[int]:
    """A permutation of ``range(n)`` that depends only on ``(n, seed)``: indices ordered by a
    BLAKE2 hash of ``"seed:index"``, so it is the same on any machine and library version."""
    return sorted(range(n), key=lambda i: hashlib.blake2b(f"{seed}:{i}".encode(), digest_size=8).digest())


def _split_counts(n: int, fractions: tuple[float, float, float]) -> list[int]:
    raw = [n * f for f in fractions]
    counts = [math.floor(r + 1e-9) for r in raw]
    order = sorted(range(3), key=lambda k: (-(raw[k] - counts[k]), k))
    for k in order[: n - sum(counts)]:  # largest remainders first
        counts[k] += 1
    return counts


def _split_order(n: int, fractions: Sequence[float], seed: int) -> dict[str, list[int]]:
    fractions = _check_fractions(fractions)
    perm = _permutation(n, _check_seed(seed))
    n_train, n_val, _ = _split_counts(n, fractions)
    return {"train": perm[:n_train], "val": perm[n_train:n_train + n_val], "test": perm[n_train + n_val:],
            "all": perm}


def split_indices(n: int, fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0) -> dict[str, list[int]]:
    """Deterministic train / val / test indices of ``n`` items: disjoint, covering ``range(n)``,
    each sorted; sizes follow ``fractions`` (largest-remainder rounding, e.g. 144 -> 115 / 15 / 14).
    The same ``(n, fractions, seed)`` gives the same split on any machine."""
    if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 0:
        raise ValueError(f"n must be a non-negative int, got {n!r}")
    order = _split_order(int(n), fractions, seed)
    return {k: sorted(order[k]) for k in ("train", "val", "test")}


class _SplitImages(Dataset):
    """Shared part of :class:`ImageFolder` and :class:`InMemoryImages`: split, cap, preprocess."""

    def __init__(self, count: int, size: int | None, preprocess: str | None, split: str,
                 fractions: Sequence[float], seed: int, max_images: int | None, crop: str | None,
                 label: str):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if preprocess not in PREPROCESS_MODES:
            raise ValueError(f"preprocess must be one of {PREPROCESS_MODES}, got {preprocess!r}")
        if crop not in (None, "left_half"):
            raise ValueError(f"crop must be None or 'left_half', got {crop!r}")
        if preprocess is None and size is not None:
            raise ValueError(f"preprocess=None returns images at their own size; pass size=None, got size={size!r}")
        if max_images is not None:
            _check_size(max_images, "max_images")
        self.size = None if size is None else _check_size(size)
        self.preprocess = preprocess
        self.split = split
        self.fractions = _check_fractions(fractions)
        self.seed = _check_seed(seed)
        self.max_images = max_images
        self.crop = crop
        order = _split_order(count, self.fractions, self.seed)[split]
        if max_images is not None:
            order = order[:max_images]  # a seeded random subset of the split
        if not order:
            raise ValueError(f"split {split!r} of {label} is empty ({count} images, fractions {self.fractions})")
        self.indices = sorted(order)

    def _raw(self, index: int) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, i: int) -> torch.Tensor:
        n = len(self)
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} images")
        image = _apply_crop(self._raw(self.indices[i]), self.crop)
        if self.preprocess is None:
            return image
        return preprocess(image, self.preprocess, self.size)


class ImageFolder(_SplitImages):
    """Images under a folder (recursively) or from a list of files, as ``(3, size, size)`` tensors.

    Lists ``*.jpg / *.jpeg / *.png`` (any case, sorted by relative path, hidden folders left out),
    opens each with a cheap Pillow ``verify()`` (``verify="full"`` decodes every file, ``"none"``
    checks nothing) and skips unreadable files with one warning that counts and names them. The
    deterministic ``split`` is computed on the sorted listing with ``seed`` (:func:`split_indices`),
    then capped to ``max_images`` (a seeded random subset of that split). Each item is
    ``preprocess(load_image(file), preprocess, size)``: ``preprocess="256"`` (the default) is resize
    + centre crop to ``size``, ``"ce"`` the Context Encoder recipe, ``None`` the image unchanged
    (then ``size`` must be ``None``). ``crop="left_half"`` keeps the left half first (Cityscapes pairs).
    """

    def __init__(self, root: str | os.PathLike | Sequence[str | os.PathLike], size: int | None = 128,
                 preprocess: str | None = "256", split: str = "all",
                 fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, max_images: int | None = None,
                 crop: str | None = None, verify: str = "quick"):
        if verify not in ("quick", "full", "none"):
            raise ValueError(f"verify must be 'quick', 'full' or 'none', got {verify!r}")
        if isinstance(root, (str, os.PathLike)):
            self.root: Path | None = Path(root)
            if not self.root.is_dir():
                raise FileNotFoundError(f"image folder not found: {self.root}")
            all_files = list_images(self.root)
            label = f"folder {self.root}"
        else:
            self.root = None
            all_files = sorted({Path(p) for p in root}, key=str)
            label = f"the list of {len(all_files)} files"
        if not all_files:
            raise ValueError(f"no images ({', '.join('*' + s for s in IMAGE_SUFFIXES)}) found in {label}")
        super().__init__(len(all_files), size, preprocess, split, fractions, seed, max_images, crop, label)
        self.num_listed = len(all_files)
        check = {"quick": _quick_check, "full": _full_check, "none": lambda p: None}[verify]
        candidates = [all_files[i] for i in self.indices]
        problems = [(p, check(p)) for p in candidates]
        self.skipped: list[Path] = [p for p, why in problems if why is not None]
        self.files: list[Path] = [p for p, why in problems if why is None]
        if self.skipped:
            shown = ", ".join(self._name(p) for p in self.skipped[:5]) + (", ..." if len(self.skipped) > 5 else "")
            where = f"under {self.root}" if self.root is not None else "in the given list"
            warnings.warn(f"skipped {len(self.skipped)} unreadable image file(s) {where}: {shown}", stacklevel=2)
        if not self.files:
            raise ValueError(f"none of the {len(candidates)} image files of split {split!r} in {label} can be read")
        self.indices = list(range(len(self.files)))

    def _name(self, path: Path) -> str:
        if self.root is not None:
            try:
                return path.relative_to(self.root).as_posix()
            except ValueError:
                pass
        return path.name

    def _raw(self, index: int) -> torch.Tensor:
        return load_image(self.files[index])

    def __repr__(self) -> str:
        where = self.root if self.root is not None else f"list of {self.num_listed} files"
        return (f"ImageFolder({where}, split={self.split!r}, {len(self)} images, size={self.size}, "
                f"preprocess={self.preprocess!r}, seed={self.seed})")


class InMemoryImages(_SplitImages):
    """Like :class:`ImageFolder`, for images already in memory (``(3, H, W)`` tensors in ``[0, 1]``),
    e.g. scikit-image's samples. Same split, cap and preprocessing rules."""

    def __init__(self, images: Sequence[torch.Tensor], names: Sequence[str] | None = None, size: int | None = 128,
                 preprocess: str | None = "256", split: str = "all", fractions: Sequence[float] = (0.8, 0.1, 0.1),
                 seed: int = 0, max_images: int | None = None, crop: str | None = None):
        images = list(images)
        if not images:
            raise ValueError("images is empty: InMemoryImages needs at least one (3, H, W) image")
        for k, image in enumerate(images):
            if not isinstance(image, torch.Tensor) or image.ndim != 3:
                raise ValueError(f"images[{k}] must be a (3, H, W) tensor, got "
                                 f"{tuple(image.shape) if isinstance(image, torch.Tensor) else type(image).__name__}")
            check_image(image.unsqueeze(0), name=f"images[{k}]")
        names = list(names) if names is not None else [f"image_{k}" for k in range(len(images))]
        if len(names) != len(images):
            raise ValueError(f"names has {len(names)} entries for {len(images)} images")
        super().__init__(len(images), size, preprocess, split, fractions, seed, max_images, crop,
                         f"{len(images)} in-memory images")
        self.images = [images[i] for i in self.indices]
        self.names = [names[i] for i in self.indices]
        self.indices = list(range(len(self.images)))

    def _raw(self, index: int) -> torch.Tensor:
        return self.images[index].float()

    def __repr__(self) -> str:
        return (f"InMemoryImages({len(self)} images, split={self.split!r}, size={self.size}, "
                f"preprocess={self.preprocess!r})")


# ------------------------------------------------------------------------------------------------
# Where the images come from: dataset -> shared folder -> scikit-image samples
# ------------------------------------------------------------------------------------------------

#: Collections of the shared folder (``../shared/data``, see its README): sub-folders, searched
#: recursively. ``faces``: the CelebA / CelebA-HQ faces of at least 128 px (56 + 48 + 8 + 32 = 144);
#: ``faces_small``: 1000 CelebA faces at 89 x 109; ``scenes``: CamVid test (233, 256 x 192), BSDS500
#: (500, 481 x 321) and Urban100 (100, max side 256); ``all``: the three together.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "faces": ("faces_celebahq_stargan2", "faces_celebamaskhq_sean", "faces_celebahq_ddnm",
              "faces_celeba_aligned_178x218"),
    "faces_small": ("faces_celeba_small_89x109",),
    "scenes": ("camvid_256/test", "bsds500", "sr_testsets/Urban100_256"),
}
COLLECTIONS["all"] = COLLECTIONS["faces"] + COLLECTIONS["faces_small"] + COLLECTIONS["scenes"]

_COLLECTION_TEXT = {
    "faces": "CelebA-HQ / CelebAMask-HQ / CelebA faces (>= 128 px) from public repositories",
    "faces_small": "CelebA aligned faces at half resolution (89 x 109)",
    "scenes": "street and natural scenes: CamVid test, BSDS500, Urban100",
    "all": "every face and scene folder of the shared set",
}

#: scikit-image samples used as the last fallback: (name, bundled file). Colour photos first; the
#: grey ones (camera, coins, moon) are repeated to three channels.
SKIMAGE_SAMPLES: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("chelsea", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("immunohistochemistry", "ihc.png"),
    ("retina", "retina.jpg"),
    ("camera", "camera.png"),
    ("coins", "coins.png"),
    ("moon", "moon.png"),
)


@dataclass(frozen=True, eq=False)
class DataSource:
    """Where a notebook's images come from.

    ``kind`` is ``"dataset"`` (downloaded into ``data/<name>``), ``"shared"`` (a collection of the
    shared folder) or ``"skimage"`` (scikit-image's bundled samples). ``files`` are image paths;
    ``images`` in-memory ``(3, H, W)`` tensors (used when a sample ships without a file).
    """

    kind: str
    name: str
    files: tuple[Path, ...] = ()
    images: tuple[torch.Tensor, ...] = ()
    image_names: tuple[str, ...] = ()
    description: str = ""
    root: Path | None = None
    crop: str | None = None

    def __len__(self) -> int:
        return len(self.files) + len(self.images)

    def summary(self) -> str:
        """One line: which source and how many images."""
        n = len(self)
        if self.kind == "dataset":
            return f"data source: dataset {self.name!r} in {self.root} ({n} images)"
        if self.kind == "shared":
            return f"data source: shared folder {self.root}, collection {self.name!r} ({n} images)"
        return f"data source: scikit-image bundled samples ({n} images: {', '.join(self.image_names)})"

    def load(self, index: int) -> torch.Tensor:
        """Image ``index`` of the source at its own size, ``(3, H, W)`` (the source's crop applied)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a source of {n} images")
        index %= n
        if index < len(self.files):
            return _apply_crop(load_image(self.files[index]), self.crop)
        return _apply_crop(self.images[index - len(self.files)].float(), self.crop)

    def dataset(self, size: int | None = 128, preprocess: str | None = "256", split: str = "all",
                fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, max_images: int | None = None,
                verify: str = "quick") -> Dataset:
        """An :class:`ImageFolder` over the source's files, or an :class:`InMemoryImages` over its
        in-memory samples; the arguments are theirs (``verify`` applies to files only)."""
        if self.files:
            return ImageFolder(list(self.files), size=size, preprocess=preprocess, split=split, fractions=fractions,
                               seed=seed, max_images=max_images, crop=self.crop, verify=verify)
        if self.images:
            return InMemoryImages(list(self.images), names=list(self.image_names), size=size, preprocess=preprocess,
                                  split=split, fractions=fractions, seed=seed, max_images=max_images, crop=self.crop)
        raise ValueError(f"data source {self.kind}:{self.name} holds no images")


def make_dataset(source: DataSource, **kwargs: Any) -> Dataset:
    """``source.dataset(**kwargs)``: the same dataset interface for all three kinds of source."""
    if not isinstance(source, DataSource):
        raise TypeError(f"source must be a DataSource (see find_source), got {type(source).__name__}")
    return source.dataset(**kwargs)


def dataset_source(name: str) -> DataSource | None:
    """The downloaded dataset ``name`` under :func:`config.data_root` when it holds images, else
    ``None``. Files are those matching the registry's ``image_glob`` (any image under the folder if
    that pattern finds none)."""
    spec = get_dataset_spec(name)
    root = config.data_root() / spec.name
    files = list_images(root, spec.image_glob) or list_images(root)
    if not files:
        return None
    return DataSource("dataset", spec.name, files=tuple(files), description=spec.description, root=root,
                      crop=spec.crop)


def shared_source(collection: str = "faces") -> DataSource | None:
    """Collection ``collection`` of the shared folder (:func:`config.shared_data_root`), or ``None``
    when that folder is absent or the collection's folders hold no images."""
    if collection not in COLLECTIONS:
        raise KeyError(f"unknown collection {collection!r}; known collections: {', '.join(COLLECTIONS)}")
    root = config.shared_data_root()
    if root is None:
        return None
    files: list[Path] = []
    for sub in COLLECTIONS[collection]:
        files += list_images(root / sub)
    if not files:
        return None
    return DataSource("shared", collection, files=tuple(files), description=_COLLECTION_TEXT[collection], root=root)


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def skimage_source() -> DataSource:
    """scikit-image's bundled sample photos (:data:`SKIMAGE_SAMPLES`): the files shipped in the
    wheel where present, else the arrays its loaders return (in memory)."""
    data_dir = _skimage_data_dir()
    files: list[Path] = []
    names: list[str] = []
    for name, filename in SKIMAGE_SAMPLES:
        if (data_dir / filename).is_file():
            files.append(data_dir / filename)
            names.append(name)
    if files:
        return DataSource("skimage", "skimage", files=tuple(files), image_names=tuple(names),
                          description="scikit-image bundled sample photos", root=data_dir)
    import skimage.data

    images: list[torch.Tensor] = []
    for name, _ in SKIMAGE_SAMPLES:
        try:
            array = getattr(skimage.data, name)()
        except Exception:  # a sample that would need a download: skip it
            continue
        images.append(pil_to_tensor(Image.fromarray(np.asarray(array))))
        names.append(name)
    if not images:
        raise RuntimeError("no scikit-image sample image could be loaded; reinstall scikit-image")
    return DataSource("skimage", "skimage", images=tuple(images), image_names=tuple(names),
                      description="scikit-image bundled sample photos (in memory)")


def find_source(dataset: str | None = None, collection: str | None = None, verbose: bool = True) -> DataSource:
    """The images a notebook uses (DESIGN.md "Data paths"), and one printed line saying which.

    1. ``data_root()/<dataset>`` when ``dataset`` is given and that folder holds images;
    2. else the shared folder's ``collection`` (one of :data:`COLLECTIONS`; ``None`` picks the
       dataset's natural stand-in: ``faces`` for ``celeba-hq`` and when no dataset is named,
       ``scenes`` for the other datasets);
    3. else scikit-image's bundled samples.
    """
    note = ""
    if dataset is not None:
        spec = get_dataset_spec(dataset)
        if collection is None:
            collection = spec.fallback_collection
        found = dataset_source(dataset)
        if found is not None:
            if verbose:
                print(found.summary())
            return found
        note = (f" [dataset {dataset!r} not found in {config.data_root() / spec.name}; "
                f"get it with: bash data_download.sh {spec.name}]")
    if collection is None:
        collection = "faces"
    source = shared_source(collection)
    if source is None:
        shared = config.shared_data_root()
        why = "no shared folder" if shared is None else f"no images for collection {collection!r} in {shared}"
        source = skimage_source()
        note += f" [{why}]"
    if verbose:
        print(source.summary() + note)
    return source


# ------------------------------------------------------------------------------------------------
# Dataset statistics
# ------------------------------------------------------------------------------------------------


def first_images(dataset: Dataset | Sequence[torch.Tensor], n: int) -> torch.Tensor:
    """The first ``n`` items (fewer when the dataset is shorter) stacked into ``(n, 3, H, W)``."""
    n = min(_check_size(n, "n"), len(dataset))  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("dataset is empty")
    items = [dataset[i] for i in range(n)]
    items = [item[0] if isinstance(item, (tuple, list)) else item for item in items]
    shapes = {tuple(t.shape) for t in items}
    if len(shapes) != 1:
        raise ValueError(f"items have different shapes {sorted(shapes)}; use a dataset with a fixed size")
    return torch.stack(items)


def image_sizes(source: DataSource | Sequence[str | os.PathLike],
                max_images: int | None = None) -> list[tuple[int, int]]:
    """``(width, height)`` of the first ``max_images`` images of a source (or of a list of files),
    read from the file headers only (the source's crop applied)."""
    if max_images is not None:
        _check_size(max_images, "max_images")
    if isinstance(source, DataSource):
        files, images, crop = list(source.files), list(source.images), source.crop
    else:
        files, images, crop = [Path(p) for p in source], [], None
    sizes = [image_size(p) for p in files[:max_images]]
    room = None if max_images is None else max(0, max_images - len(sizes))
    sizes += [(int(t.shape[-1]), int(t.shape[-2])) for t in images[:room]]
    if crop == "left_half":
        sizes = [(w // 2, h) for w, h in sizes]
    return sizes


def size_summary(sizes: Sequence[tuple[int, int]], top: int = 8) -> list[dict[str, Any]]:
    """Rows ``{"width x height", "images", "share"}`` of the ``top`` most common sizes (for
    :func:`inpaint_utils.report.format_table`); the rest are summed in a last row ``"other"``."""
    counts: dict[tuple[int, int], int] = {}
    for size in sizes:
        counts[tuple(size)] = counts.get(tuple(size), 0) + 1  # type: ignore[index]
    ranked = sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))
    total = max(len(sizes), 1)
    rows = [{"width x height": f"{w} x {h}", "images": c, "share": f"{100 * c / total:.1f} %"}
            for (w, h), c in ranked[:top]]
    rest = sum(c for _, c in ranked[top:])
    if rest:
        rows.append({"width x height": "other", "images": rest, "share": f"{100 * rest / total:.1f} %"})
    return rows


def mean_color(dataset: Dataset | DataSource | torch.Tensor | Sequence[torch.Tensor],
               max_images: int | None = None) -> torch.Tensor:
    """Per-channel mean ``(3,)`` over every pixel of the first ``max_images`` images (all when
    ``None``), in ``[0, 1]``. The Context Encoder fills its hole with this colour.

    ``dataset`` is a dataset whose items are ``(3, H, W)`` tensors (or tuples starting with one), a
    :class:`DataSource` (its default 128 px dataset), or a ``(B, 3, H, W)`` batch.
    """
    if max_images is not None:
        _check_size(max_images, "max_images")
    if isinstance(dataset, DataSource):
        dataset = dataset.dataset()
    if isinstance(dataset, torch.Tensor):
        batch = check_image(dataset, name="dataset")
        if max_images is not None:
            batch = batch[:max_images]
        return batch.double().mean(dim=(0, 2, 3)).float()
    n = len(dataset)  # type: ignore[arg-type]
    if n == 0:
        raise ValueError("dataset is empty: no mean colour")
    n = n if max_images is None else min(n, max_images)
    total = torch.zeros(3, dtype=torch.float64)
    pixels = 0
    for i in range(n):
        item = dataset[i]
        image = item[0] if isinstance(item, (tuple, list)) else item
        check_image(image.unsqueeze(0) if image.ndim == 3 else image, name=f"dataset[{i}]")
        image = image.reshape(-1, 3, *image.shape[-2:])
        total += image.double().sum(dim=(0, 2, 3))
        pixels += image.shape[0] * image.shape[-1] * image.shape[-2]
    return (total / pixels).float()


# ------------------------------------------------------------------------------------------------
# Downloading (kaggle CLI), checking and safe extraction
# ------------------------------------------------------------------------------------------------

MARKER = ".complete"
_DOWNLOAD_DIR = ".download"
DEFAULT_TIMEOUT_S = 3600.0


class DownloadError(RuntimeError):
    """A download step failed; the message says which and what to do. It never holds a key."""


_CREDENTIALS_HELP = (
    "Create a token once: sign in at https://www.kaggle.com -> Settings -> API -> 'Create New Token' "
    "(this downloads kaggle.json); put it at ~/.kaggle/kaggle.json (or in the folder named by "
    "$KAGGLE_CONFIG_DIR) and run `chmod 600 ~/.kaggle/kaggle.json`. Or export KAGGLE_USERNAME and "
    "KAGGLE_KEY (or KAGGLE_API_TOKEN) in your shell."
)


def _kaggle_json_candidates() -> list[Path]:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR", "").strip()
    if config_dir:
        return [Path(config_dir).expanduser() / "kaggle.json"]
    home = Path.home()
    xdg = os.environ.get("XDG_CONFIG_HOME", "").strip() or str(home / ".config")
    return [home / ".kaggle" / "kaggle.json", Path(xdg) / "kaggle" / "kaggle.json"]


def kaggle_credentials() -> str:
    """Where the Kaggle API credentials come from (a description, never the key itself).

    Accepted, as the kaggle CLI does: ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``, ``KAGGLE_API_TOKEN``,
    ``$KAGGLE_CONFIG_DIR/kaggle.json`` or ``~/.kaggle/kaggle.json`` (with ``username`` and ``key``),
    ``~/.kaggle/access_token``. Raises :class:`DownloadError` saying how to create them.
    """
    user, key = os.environ.get("KAGGLE_USERNAME", "").strip(), os.environ.get("KAGGLE_KEY", "").strip()
    if user and key:
        return "environment variables KAGGLE_USERNAME and KAGGLE_KEY"
    if os.environ.get("KAGGLE_API_TOKEN", "").strip():
        return "environment variable KAGGLE_API_TOKEN"
    partial = ""
    if bool(user) != bool(key):
        have, missing = ("KAGGLE_USERNAME", "KAGGLE_KEY") if user else ("KAGGLE_KEY", "KAGGLE_USERNAME")
        partial = f" ({have} is set but {missing} is not.)"
    candidates = _kaggle_json_candidates()
    for path in candidates:
        if not path.is_file():
            continue
        try:
            content = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            raise DownloadError(f"{path} exists but is not a readable JSON file; replace it with a fresh token. "
                                + _CREDENTIALS_HELP) from None
        if not (isinstance(content, dict) and content.get("username") and content.get("key")):
            raise DownloadError(f"{path} lacks a 'username' and a 'key' entry; replace it with a fresh token. "
                                + _CREDENTIALS_HELP)
        if os.name == "posix" and path.stat().st_mode & 0o077:
            print(f"warning: {path} can be read by other users; run: chmod 600 {path}", file=sys.stderr)
        return str(path)
    token_file = Path.home() / ".kaggle" / "access_token"
    if token_file.is_file() and token_file.stat().st_size > 0:
        return str(token_file)
    looked = ", ".join(str(p) for p in candidates)
    raise DownloadError(f"no Kaggle API credentials found (looked for KAGGLE_USERNAME/KAGGLE_KEY, "
                        f"KAGGLE_API_TOKEN and {looked}).{partial} " + _CREDENTIALS_HELP)


def _python_bin_dir() -> Path:
    return Path(sys.executable).parent


def _find_kaggle_cli() -> str:
    """The ``kaggle`` executable: on ``PATH``, else beside the running Python (an unactivated venv)."""
    found = shutil.which("kaggle")
    if found:
        return found
    found = shutil.which("kaggle", path=str(_python_bin_dir()))
    if found:
        return found
    raise DownloadError("the kaggle command-line tool is not installed (not on PATH nor in "
                        f"{_python_bin_dir()}). Install it with: pip install kaggle "
                        "(or: pip install -e '.[data]' in this project)")


def _download_timeout(timeout: float | None) -> float:
    if timeout is None:
        value = os.environ.get("INPAINT_DOWNLOAD_TIMEOUT", "").strip()
        if not value:
            return DEFAULT_TIMEOUT_S
        try:
            timeout = float(value)
        except ValueError:
            raise DownloadError(f"INPAINT_DOWNLOAD_TIMEOUT must be a number of seconds, got {value!r}") from None
    if not math.isfinite(timeout) or timeout <= 0:
        raise DownloadError(f"the download timeout must be a positive number of seconds, got {timeout!r}")
    return float(timeout)


def _verify_archive(archive: Path, spec: DatasetSpec) -> str:
    """sha256 of ``archive`` after checking it against the registry (when known) and every
    member's CRC (``zipfile.testzip``). Raises :class:`DownloadError`."""
    digest = sha256_file(archive)
    if spec.sha256 is not None and digest != spec.sha256.lower():
        raise DownloadError(f"{archive} has sha256 {digest}, but the registry expects {spec.sha256} "
                            f"for {spec.name} (incomplete download, or the Kaggle dataset changed)")
    try:
        with zipfile.ZipFile(archive) as zf:
            bad = zf.testzip()
    except (zipfile.BadZipFile, zipfile.LargeZipFile, OSError, EOFError, ValueError) as e:
        raise DownloadError(f"{archive} is not a valid zip archive ({type(e).__name__}: {e})") from None
    except Exception as e:  # zlib.error and friends on a damaged member
        raise DownloadError(f"{archive} is damaged ({type(e).__name__}: {e})") from None
    if bad is not None:
        raise DownloadError(f"{archive} is damaged: member {bad!r} fails its CRC check")
    return digest


_DRIVE = re.compile(r"^[A-Za-z]:")


def _member_parts(name: str) -> list[str]:
    return [p for p in re.split(r"[\\/]+", name) if p not in ("", ".")]


def _unsafe_reason(info: zipfile.ZipInfo, base: Path) -> str | None:
    name = info.filename
    if not name or "\x00" in name:
        return "empty name or NUL character"
    if name.startswith(("/", "\\")):
        return "absolute path"
    if _DRIVE.match(name):
        return "drive letter"
    parts = _member_parts(name)
    if ".." in parts:
        return "'..' component"
    kind = stat.S_IFMT(info.external_attr >> 16)
    if kind == stat.S_IFLNK:
        return "symbolic link"
    if kind not in (0, stat.S_IFREG, stat.S_IFDIR):
        return "special file (device, fifo or socket)"
    target = base.joinpath(*parts).resolve() if parts else base
    if target != base and base not in target.parents:
        return "resolves outside the destination"
    return None


def safe_extract(archive: str | os.PathLike, dest: str | os.PathLike) -> int:
    """Extract zip ``archive`` into folder ``dest`` and return the number of files written.

    Every member is checked first; members with an absolute path, a drive letter, a ``..``
    component, a symbolic link (or other special file) or a path resolving outside ``dest`` make
    the whole archive refused with :class:`DownloadError`, and nothing is written. Members are
    extracted into a temporary folder inside ``dest`` and moved into place only when all of them are
    out, so a failure leaves no half-extracted tree; top-level entries of the same name already in
    ``dest`` are replaced.
    """
    archive, dest = Path(archive), Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    base = dest.resolve()
    with zipfile.ZipFile(archive) as zf:
        infos = zf.infolist()
        bad = [(i.filename, why) for i in infos if (why := _unsafe_reason(i, base)) is not None]
        if bad:
            listed = "; ".join(f"{name!r} ({why})" for name, why in bad[:5]) + ("; ..." if len(bad) > 5 else "")
            raise DownloadError(f"refusing to extract {archive}: {len(bad)} unsafe member(s): {listed}. "
                                "Nothing was extracted.")
        needed = sum(i.file_size for i in infos)
        free = shutil.disk_usage(base).free
        if needed > free:
            raise DownloadError(f"extracting {archive} needs {needed / 1e9:.1f} GB but only {free / 1e9:.1f} GB "
                                f"are free under {base}")
        tmp = Path(tempfile.mkdtemp(prefix=".extract-", dir=base))
        try:
            count = 0
            for info in infos:
                parts = _member_parts(info.filename)
                if not parts:
                    continue
                target = tmp.joinpath(*parts)
                if info.is_dir() or stat.S_ISDIR(info.external_attr >> 16):
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                with zf.open(info) as src, open(target, "wb") as dst:
                    shutil.copyfileobj(src, dst, 1 << 20)
                count += 1
            for entry in sorted(tmp.iterdir()):
                final = base / entry.name
                if final.is_symlink() or final.is_file():
                    final.unlink()
                elif final.is_dir():
                    shutil.rmtree(final)
                os.replace(entry, final)
        except Exception as e:
            raise DownloadError(f"extracting {archive} into {dest} failed ({type(e).__name__}: {e}); "
                                "nothing was left half-extracted") from None
        finally:
            shutil.rmtree(tmp, ignore_errors=True)
    return count


def _find_archive(download_dir: Path, spec: DatasetSpec) -> Path | None:
    expected = download_dir / f"{spec.kaggle_id.split('/')[-1]}.zip"
    if expected.is_file():
        return expected
    zips = sorted(download_dir.glob("*.zip"), key=lambda p: p.stat().st_mtime) if download_dir.is_dir() else []
    return zips[-1] if zips else None


def _write_marker(dest: Path, info: dict[str, Any]) -> None:
    with atomic_open(dest / MARKER, "w", encoding="utf-8") as f:
        json.dump(info, f, indent=1)
        f.write("\n")


def download(name: str, dest: str | os.PathLike | None = None, *, force: bool = False, keep_archive: bool = False,
             timeout: float | None = None, log: Callable[[str], None] = print) -> Path:
    """Download dataset ``name`` with the kaggle CLI into ``dest`` (default ``data_root()/name``).

    Steps, each reported through ``log``: (1) ``dest/.complete`` present -> nothing to do (``force``
    redoes everything); (2) an archive already in ``dest/.download`` that checks out -> no download;
    (3) else check the Kaggle credentials and run ``kaggle datasets download -d <id> -p
    dest/.download`` with a timeout (``timeout`` or ``$INPAINT_DOWNLOAD_TIMEOUT``, default 3600 s);
    (4) verify the archive (sha256 when the registry has one, always every member's CRC); (5)
    :func:`safe_extract` into ``dest``; (6) write ``dest/.complete`` (JSON with the archive's sha256)
    last; the archive is then deleted unless ``keep_archive``. Returns ``dest``; failures raise
    :class:`DownloadError` (an unknown ``name`` raises ``KeyError``).
    """
    spec = get_dataset_spec(name)
    dest = (Path(dest) if dest is not None else config.data_root() / spec.name).expanduser().resolve()
    marker = dest / MARKER
    download_dir = dest / _DOWNLOAD_DIR
    if marker.is_file() and not force:
        try:
            digest = json.loads(marker.read_text(encoding="utf-8")).get("sha256", "?")
        except (OSError, json.JSONDecodeError, AttributeError):
            digest = "?"
        log(f"{spec.name}: already complete in {dest} ({MARKER} present, archive sha256 {str(digest)[:16]}...); "
            "skipping download and extraction (use --force to redo)")
        return dest
    if force:
        marker.unlink(missing_ok=True)
        shutil.rmtree(download_dir, ignore_errors=True)

    digest = None
    archive = _find_archive(download_dir, spec)
    if archive is not None:
        log(f"{spec.name}: found {archive}; checking it")
        try:
            digest = _verify_archive(archive, spec)
            log(f"{spec.name}: the archive checks out (sha256 {digest[:16]}...); skipping the download")
        except DownloadError as e:
            log(f"{spec.name}: the archive already there is not usable ({e}); downloading it again")
            archive.unlink(missing_ok=True)
            archive = None

    if digest is None:
        where = kaggle_credentials()
        cli = _find_kaggle_cli()
        limit = _download_timeout(timeout)
        download_dir.mkdir(parents=True, exist_ok=True)
        log(f"{spec.name}: downloading {spec.url} with kaggle credentials from {where} "
            f"(timeout {limit:g} s; INPAINT_DOWNLOAD_TIMEOUT changes it)")
        cmd = [cli, "datasets", "download", "-d", spec.kaggle_id, "-p", str(download_dir)]
        try:
            proc = subprocess.run(cmd, timeout=limit, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise DownloadError(f"kaggle did not finish downloading {spec.kaggle_id} within {limit:g} s; run again "
                                "to retry, or raise INPAINT_DOWNLOAD_TIMEOUT") from None
        except OSError as e:
            raise DownloadError(f"cannot run the kaggle CLI {cli}: {e.strerror or e}") from None
        if proc.returncode != 0:
            raise DownloadError(f"kaggle exited with status {proc.returncode} while downloading {spec.kaggle_id} "
                                f"(see its message above). Check your network, your token, and that the dataset "
                                f"page {spec.url} opens when you are signed in.")
        archive = _find_archive(download_dir, spec)
        if archive is None:
            raise DownloadError(f"kaggle reported success but left no .zip archive in {download_dir}")
        log(f"{spec.name}: checking {archive.name} (every member's CRC"
            f"{' and the registry sha256' if spec.sha256 else ''})")
        try:
            digest = _verify_archive(archive, spec)
        except DownloadError as e:
            archive.unlink(missing_ok=True)
            raise DownloadError(f"{e}. The archive was removed; run again to download it afresh.") from None

    log(f"{spec.name}: extracting into {dest}")
    count = safe_extract(archive, dest)
    _write_marker(dest, {
        "dataset": spec.name,
        "kaggle_id": spec.kaggle_id,
        "archive": archive.name,
        "sha256": digest,
        "files": count,
        "completed": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"),
    })
    if not keep_archive:
        archive.unlink(missing_ok=True)
        try:
            download_dir.rmdir()
        except OSError:
            pass
    log(f"{spec.name}: done, {count} files in {dest} (sha256 {digest[:16]}... recorded in {marker})")
    return dest


# ------------------------------------------------------------------------------------------------
# Command line: python -m inpaint_utils.data {download,list,source}
# ------------------------------------------------------------------------------------------------


def main(argv: Sequence[str] | None = None) -> int:
    """``download NAME [--dest DIR] [--force] [--keep-archive] [--timeout S]``, ``list``, ``source``."""
    parser = argparse.ArgumentParser(prog="python -m inpaint_utils.data",
                                     description="Datasets of the inpainting course (see DATASETS).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    dl = sub.add_parser("download", help="download a dataset from Kaggle into data/<name>/")
    dl.add_argument("name", help=f"one of: {', '.join(DATASETS)}")
    dl.add_argument("--dest", type=Path, default=None, help="target folder (default: $INPAINT_DATA/<name>)")
    dl.add_argument("--force", action="store_true", help="download and extract again even if complete")
    dl.add_argument("--keep-archive", action="store_true", help="keep the .zip after extraction")
    dl.add_argument("--timeout", type=float, default=None, help="seconds (default $INPAINT_DOWNLOAD_TIMEOUT or 3600)")
    sub.add_parser("list", help="list the registered datasets")
    src = sub.add_parser("source", help="say which images a notebook would use")
    src.add_argument("--dataset", default=None)
    src.add_argument("--collection", default=None, choices=list(COLLECTIONS))
    args = parser.parse_args(argv)

    if args.cmd == "list":
        print(format_table(registry_rows()))
        print(f"data root: {config.data_root()}")
        return 0
    if args.cmd == "source":
        try:
            find_source(args.dataset, args.collection)
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 1
        return 0
    try:
        download(args.name, args.dest, force=args.force, keep_archive=args.keep_archive, timeout=args.timeout,
                 log=lambda s: print(s, flush=True))
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
