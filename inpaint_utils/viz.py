"""Figures for the notebooks: masked previews, image grids, method comparisons, saving to ``figures/``.

Used by every notebook (00 data preview, 01 masks, 02-06 results, 07 comparison). Figures are saved
with :func:`save_figure` into :func:`inpaint_utils.config.figures_dir` (``$INPAINT_FIGURES``).

Backend: this module never forces a backend where one is set up (Jupyter's inline backend, a desktop
GUI backend, ``$MPLBACKEND``). Only when matplotlib has no backend chosen yet *and* there is no display
(a headless script or CI) does it select ``Agg`` before importing pyplot. Figures are left open so a
notebook shows them; ``save_figure(..., close=True)`` closes them in scripts.
"""
from __future__ import annotations

import os
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from .config import figures_dir
from .fileio import atomic_open
from .validation import check_image, check_image_mask

__all__ = ["to_numpy_image", "overlay_mask", "image_grid", "comparison_grid", "ratio_histogram", "plot_curves",
           "save_figure",
           "NAMED_COLORS"]

#: Colours for :func:`overlay_mask`, RGB in ``[0, 1]``.
NAMED_COLORS: dict[str, tuple[float, float, float]] = {
    "magenta": (1.0, 0.0, 1.0),
    "grey": (0.5, 0.5, 0.5),
    "gray": (0.5, 0.5, 0.5),
    "white": (1.0, 1.0, 1.0),
    "black": (0.0, 0.0, 0.0),
}
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9._-]*$")


def _headless() -> bool:
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        return not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"))
    return False


def _pyplot():
    """``matplotlib.pyplot``, with ``Agg`` selected only when no backend is set up and there is no display."""
    import matplotlib

    if "matplotlib.pyplot" not in sys.modules:
        try:
            chosen = matplotlib.get_backend(auto_select=False)  # matplotlib >= 3.10: None if nothing chosen
        except TypeError:  # older matplotlib
            getter = getattr(matplotlib.rcParams, "_get_backend_or_none", None)
            chosen = getter() if getter is not None else "unknown"
        if chosen is None and _headless():
            matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def to_numpy_image(t: torch.Tensor | np.ndarray) -> np.ndarray:
    """One image as a float32 numpy array for ``imshow``: ``(H, W, 3)`` for colour, ``(H, W)`` for grey.

    Accepts ``(3, H, W)`` / ``(1, H, W)`` (CHW, tried first), ``(H, W, 3)`` / ``(H, W, 1)`` (HWC),
    ``(H, W)``, or a batch of one ``(1, C, H, W)``; a torch tensor or a numpy array, on any device.
    Values must be finite and in ``[0, 1]`` (a ``[-1, 1]`` or 0-255 image raises instead of showing
    wrong colours).
    """
    if isinstance(t, torch.Tensor):
        arr = t.detach().to("cpu", torch.float32).numpy()
    elif isinstance(t, np.ndarray):
        arr = t.astype(np.float32, copy=False)
    else:
        raise TypeError(f"to_numpy_image takes a torch.Tensor or numpy array, got {type(t).__name__}")
    if arr.ndim == 4 and arr.shape[0] == 1:
        arr = arr[0]
    if arr.ndim == 3 and arr.shape[0] in (1, 3):  # CHW
        arr = np.moveaxis(arr, 0, -1)
    elif not (arr.ndim == 2 or (arr.ndim == 3 and arr.shape[-1] in (1, 3))):
        raise ValueError(f"to_numpy_image expects CHW (3 or 1, H, W), HWC (H, W, 3 or 1) or (H, W); got shape "
                         f"{tuple(arr.shape)}")
    if arr.ndim == 3 and arr.shape[-1] == 1:
        arr = arr[..., 0]
    if arr.size == 0:
        raise ValueError(f"to_numpy_image got an empty image of shape {tuple(arr.shape)}")
    if not np.isfinite(arr).all():
        raise ValueError("to_numpy_image: the image contains NaN or inf values")
    lo, hi = float(arr.min()), float(arr.max())
    if lo < -1e-6 or hi > 1 + 1e-6:
        raise ValueError(f"to_numpy_image expects values in [0, 1], got [{lo:.4g}, {hi:.4g}]")
    return np.ascontiguousarray(np.clip(arr, 0.0, 1.0))


def _color(color: str | Sequence[float]) -> tuple[float, float, float]:
    if isinstance(color, str):
        if color not in NAMED_COLORS:
            raise ValueError(f"color {color!r} unknown; use an RGB triple in [0, 1] or one of {sorted(NAMED_COLORS)}")
        return NAMED_COLORS[color]
    values = tuple(float(c) for c in color)
    if len(values) != 3 or not all(0.0 <= c <= 1.0 for c in values):
        raise ValueError(f"color must be 3 numbers in [0, 1] (RGB), got {color!r}")
    return values  # type: ignore[return-value]


def overlay_mask(image: torch.Tensor, mask: torch.Tensor, color: str | Sequence[float] = (1.0, 0.0, 1.0),
                 alpha: float = 1.0) -> torch.Tensor:
    """The masked preview ``(B, 3, H, W)``: hole pixels (mask 1) painted ``color`` (default magenta;
    ``"grey"`` for the grey of the papers' figures), blended with weight ``alpha`` (1 = opaque);
    known pixels unchanged."""
    check_image_mask(image, mask)
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    rgb = torch.tensor(_color(color), dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    m = mask.to(dtype=image.dtype, device=image.device) * float(alpha)
    return (1.0 - m) * image + m * rgb


def _check_row(name: str, value: torch.Tensor) -> torch.Tensor:
    if not isinstance(value, torch.Tensor) or value.ndim != 4 or value.shape[1] not in (1, 3):
        shape = tuple(value.shape) if isinstance(value, torch.Tensor) else type(value).__name__
        raise ValueError(f"row {name!r} must be a tensor (B, 3, H, W) (or (B, 1, H, W) for masks), got {shape}")
    if value.shape[1] == 3:
        check_image(value, name=f"row {name!r}")
    else:
        check_image(value.expand(-1, 3, -1, -1), name=f"row {name!r}")
    return value


def _draw_grid(cells: list[list[torch.Tensor | None]], row_labels: Sequence[str], col_titles: Sequence[str] | None,
               cell_size: float):
    plt = _pyplot()
    n_rows, n_cols = len(cells), max(len(r) for r in cells)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_size * n_cols, cell_size * n_rows), squeeze=False)
    for i in range(n_rows):
        for j in range(n_cols):
            ax = axes[i][j]
            ax.set_xticks([])
            ax.set_yticks([])
            img = cells[i][j] if j < len(cells[i]) else None
            if img is None:
                ax.axis("off")
                continue
            arr = to_numpy_image(img)
            ax.imshow(arr, cmap="gray" if arr.ndim == 2 else None, vmin=0.0, vmax=1.0, interpolation="nearest")
            for spine in ax.spines.values():
                spine.set_visible(False)
            if j == 0 and row_labels[i]:
                ax.set_ylabel(row_labels[i], rotation=90, fontsize=10)
            if i == 0 and col_titles is not None and j < len(col_titles) and col_titles[j]:
                ax.set_title(col_titles[j], fontsize=10)
    fig.tight_layout()
    return fig


def image_grid(rows: Mapping[str, torch.Tensor], max_cols: int = 8, titles: Sequence[str] | None = None,
               cell_size: float = 1.6):
    """A matplotlib ``Figure`` with one row per entry of ``rows`` (its key written at the left) and up
    to ``max_cols`` images of that batch per row; shorter rows leave blank cells. ``titles`` label the
    columns (top row). Values are ``(B, 3, H, W)`` images or ``(B, 1, H, W)`` masks (shown grey), in
    ``[0, 1]``. The figure has ``len(rows) x min(max_cols, largest B)`` axes.
    """
    if not isinstance(rows, Mapping) or not rows:
        raise ValueError("rows must be a non-empty dict {label: tensor (B, 3, H, W)}")
    if isinstance(max_cols, bool) or not isinstance(max_cols, int) or max_cols < 1:
        raise ValueError(f"max_cols must be a positive int, got {max_cols!r}")
    cells = []
    for name, value in rows.items():
        _check_row(str(name), value)
        cells.append([value[k] for k in range(min(value.shape[0], max_cols))])
    n_cols = max(len(r) for r in cells)
    if titles is not None and len(titles) > n_cols:
        raise ValueError(f"titles has {len(titles)} entries but the grid has {n_cols} columns")
    return _draw_grid(cells, [str(k) for k in rows], titles, cell_size)


def comparison_grid(masked: torch.Tensor, outputs: Mapping[str, torch.Tensor], target: torch.Tensor,
                    max_rows: int = 8, row_labels: Sequence[str] | None = None, cell_size: float = 1.6):
    """A ``Figure`` with columns "masked | one per method in ``outputs`` | ground truth" and one row
    per image (up to ``max_rows``). All tensors ``(B, 3, H, W)`` in ``[0, 1]`` with the same shape;
    ``masked`` is typically :func:`overlay_mask` of the input."""
    check_image(masked, "masked")
    check_image(target, "target")
    if masked.shape != target.shape:
        raise ValueError(f"masked {tuple(masked.shape)} and target {tuple(target.shape)} must have the same shape")
    if not isinstance(outputs, Mapping) or not outputs:
        raise ValueError("outputs must be a non-empty dict {method name: tensor (B, 3, H, W)}")
    for name, out in outputs.items():
        check_image(out, f"outputs[{name!r}]")
        if out.shape != target.shape:
            raise ValueError(f"outputs[{name!r}] has shape {tuple(out.shape)}, target {tuple(target.shape)}")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
    n = min(target.shape[0], max_rows)
    if row_labels is not None and len(row_labels) < n:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {n} rows")
    columns = [masked, *outputs.values(), target]
    cells = [[col[i] for col in columns] for i in range(n)]
    labels = [str(row_labels[i]) for i in range(n)] if row_labels is not None else [""] * n
    return _draw_grid(cells, labels, ["masked", *[str(k) for k in outputs], "ground truth"], cell_size)


def ratio_histogram(achieved: Mapping[str, Mapping[float, torch.Tensor]], tolerance: float = 0.02,
                    bins: int = 31, cols: int = 4, cell_size: tuple[float, float] = (3.2, 2.4)):
    """Histograms of the area-ratio error (achieved minus target, in percentage points), one panel per
    mask kind, one colour per target ratio, with the +-``tolerance`` band shaded. ``achieved`` is the
    second value returned by :func:`inpaint_utils.masks.ratio_stats`. Used by notebook 01."""
    if not isinstance(achieved, Mapping) or not achieved:
        raise ValueError("achieved must be a non-empty dict {kind: {target ratio: tensor of ratios}}")
    plt = _pyplot()
    kinds = list(achieved)
    n_cols = min(cols, len(kinds))
    n_rows = -(-len(kinds) // n_cols)
    fig, axes = plt.subplots(n_rows, n_cols, figsize=(cell_size[0] * n_cols, cell_size[1] * n_rows),
                             squeeze=False, sharex=True)
    for ax in axes.flat[len(kinds):]:
        ax.axis("off")
    tol_pp = 100 * tolerance
    edges = np.linspace(-1.5 * tol_pp, 1.5 * tol_pp, bins + 1)
    for ax, kind in zip(axes.flat, kinds):
        ax.axvspan(-tol_pp, tol_pp, color="0.85", zorder=0)
        for i, (target, values) in enumerate(sorted(achieved[kind].items())):
            err = 100 * (torch.as_tensor(values).flatten() - target)
            ax.hist(err.clamp(edges[0], edges[-1]).numpy(), bins=edges, histtype="step", lw=1.5, color=f"C{i}",
                    label=f"target {target:g}")
        ax.set_title(kind, fontsize=10)
        ax.tick_params(labelsize=7)
    for ax in axes[-1]:
        ax.set_xlabel("achieved - target (points)", fontsize=8)
    axes.flat[0].legend(fontsize=7, loc="upper left")
    fig.suptitle(f"area-ratio error; grey band: +-{tol_pp:g} points", fontsize=10)
    fig.tight_layout()
    return fig


def plot_curves(rows: Sequence[Mapping[str, float]], keys: Sequence[str], x: str = "step", logy: bool = False,
                title: str | None = None, size: tuple[float, float] = (7.0, 3.0)):
    """Training curves: one line per key of ``keys`` against ``x``, from rows such as those of
    :func:`inpaint_utils.train.read_metrics` (rows missing a key are skipped for that line). Used by the
    training notebooks (02-05)."""
    if not rows:
        raise ValueError("rows is empty: nothing to plot")
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=size)
    drawn = 0
    for key in keys:
        pts = [(r[x], r[key]) for r in rows if key in r and x in r]
        if pts:
            ax.plot(*zip(*pts), label=key)
            drawn += 1
    if not drawn:
        raise ValueError(f"none of {list(keys)} found in the rows (their keys: {sorted(rows[0])})")
    ax.set_xlabel(x)
    if logy:
        ax.set_yscale("log")
    if title:
        ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def save_png(fig: Any, path: str | os.PathLike, dpi: int = 100) -> Path:
    """Write ``fig`` as a PNG to ``path`` atomically (:func:`inpaint_utils.fileio.atomic_open`)."""
    path = Path(path)
    with atomic_open(path, "wb") as fh:
        fig.savefig(fh, format="png", dpi=dpi, bbox_inches="tight")
    return path


def save_figure(fig: Any, name: str, dpi: int = 100, close: bool = False) -> Path:
    """Write ``fig`` to ``figures_dir() / f"{name}.png"`` atomically (a temporary file in the same
    folder, then ``os.replace``) and return the path. ``name`` is a plain file stem (letters, digits,
    ``_ - .``; no folder, no ``..``, no ``.png``). ``close=True`` closes the figure (scripts); the
    default leaves it open so a notebook still shows it."""
    if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or ".." in name or name.lower().endswith(".png"):
        raise ValueError(f"name must be a simple file stem such as 'fig01_masks' (letters, digits, '_', '-', '.'; "
                         f"no '/', no '..', no '.png'), got {name!r}")
    if isinstance(dpi, bool) or not isinstance(dpi, (int, float)) or dpi <= 0:
        raise ValueError(f"dpi must be a positive number, got {dpi!r}")
    path = save_png(fig, figures_dir() / f"{name}.png", dpi=dpi)
    if close:
        _pyplot().close(fig)
    return path
