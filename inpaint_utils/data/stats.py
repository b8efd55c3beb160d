"""Dataset statistics: first images, image sizes, the mean colour that fills holes (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

import torch
from torch.utils.data import Dataset

from ..validation import check_image
from .preprocessing import _check_size
from .reading import image_size
from .sources import DataSource


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
