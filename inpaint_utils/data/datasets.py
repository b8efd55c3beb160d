"""Deterministic train / val / test splits and the datasets built on them (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import hashlib
import math
import os
import warnings
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset

from ..validation import check_image
from .preprocessing import PREPROCESS_MODES, _apply_crop, _check_size, preprocess
from .reading import IMAGE_SUFFIXES, ImageReadError, _full_check, _quick_check, list_images, load_image


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
            raise ImageReadError(f"none of the {len(candidates)} image files of split {split!r} in {label} can be read "
                                 f"({self._name(self.skipped[0])}: {problems[0][1]})")
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
