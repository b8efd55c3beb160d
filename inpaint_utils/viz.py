"""Figures for the notebooks: masked previews, image grids, method comparisons, saving to ``figures/``.

Used by every notebook (00 data preview, 01 masks, 02-06 results, 07 comparison). Figures are saved
with :func:`save_figure` into :func:`inpaint_utils.config.figures_dir` (``$INPAINT_FIGURES``).
Notebook 05 adds the contextual-attention views: offsets coloured on the optical-flow colour wheel
(:func:`flow_to_color`, computed with torch on the tensors' device, only when called), its legend
(:func:`color_wheel_legend`, :func:`add_color_wheel`), arrows from hole pixels to where they attend
(:func:`plot_attention_arrows`) and per-pixel attention heat maps (:func:`attention_heatmap`).

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
from .validation import check_image, check_image_mask, check_mask

__all__ = ["to_numpy_image", "overlay_mask", "image_grid", "comparison_grid", "ratio_histogram", "plot_curves",
           "save_figure", "flow_to_color", "color_wheel_legend", "add_color_wheel", "plot_attention_arrows",
           "attention_heatmap", "pyplot", "save_png", "hole_error_map", "fill_error_figure",
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


def pyplot():
    """``matplotlib.pyplot``, with ``Agg`` selected only when no backend is set up and there is no display (what
    every figure of the package draws with)."""
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


_pyplot = pyplot


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


def _draw_grid(cells: list[list[torch.Tensor | str | None]], row_labels: Sequence[str],
               col_titles: Sequence[str] | None, cell_size: float):
    """One axes per cell: an image, a blank cell with a grey frame and ``text`` (a ``str`` cell: e.g. a
    method that did not run on this image), or nothing (``None``, past the end of a short row)."""
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
            if isinstance(img, str):  # blank and labelled: never an image standing in for a missing one
                ax.text(0.5, 0.5, img, ha="center", va="center", fontsize=8, color="0.35", wrap=True,
                        transform=ax.transAxes)
                for spine in ax.spines.values():
                    spine.set_color("0.8")
            else:
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


def comparison_grid(masked: torch.Tensor, outputs: Mapping[str, torch.Tensor | str], target: torch.Tensor,
                    max_rows: int = 8, row_labels: Sequence[str] | None = None, cell_size: float = 1.6,
                    not_run: str = "not run\non this image"):
    """A ``Figure`` with columns "masked | one per method in ``outputs`` | ground truth" and one row
    per image (up to ``max_rows``). ``masked`` and ``target`` are ``(B, 3, H, W)`` in ``[0, 1]`` with the
    same shape (``masked`` typically :func:`overlay_mask` of the input). A method's output holds the
    first ``k <= B`` images (a slow method run on a few): its cells past ``k`` are drawn blank and
    labelled ``not_run``, never filled with another image; a ``str`` instead of a tensor draws the whole
    column blank with that label (e.g. ``"refused"``)."""
    check_image(masked, "masked")
    check_image(target, "target")
    if masked.shape != target.shape:
        raise ValueError(f"masked {tuple(masked.shape)} and target {tuple(target.shape)} must have the same shape")
    if not isinstance(outputs, Mapping) or not outputs:
        raise ValueError("outputs must be a non-empty dict {method name: tensor (k, 3, H, W) or a label}")
    for name, out in outputs.items():
        if isinstance(out, str):
            continue
        check_image(out, f"outputs[{name!r}]")
        if out.shape[1:] != target.shape[1:] or out.shape[0] > target.shape[0]:
            raise ValueError(f"outputs[{name!r}] has shape {tuple(out.shape)}, target {tuple(target.shape)}: "
                             f"a method's output must hold the first k <= {target.shape[0]} images of the target's size")
    if isinstance(max_rows, bool) or not isinstance(max_rows, int) or max_rows < 1:
        raise ValueError(f"max_rows must be a positive int, got {max_rows!r}")
    n = min(target.shape[0], max_rows)
    if row_labels is not None and len(row_labels) < n:
        raise ValueError(f"row_labels has {len(row_labels)} entries for {n} rows")

    def cell(col: torch.Tensor | str, i: int) -> torch.Tensor | str:
        if isinstance(col, str):
            return col
        return col[i] if i < col.shape[0] else not_run

    columns = [masked, *outputs.values(), target]
    cells = [[cell(col, i) for col in columns] for i in range(n)]
    labels = [str(row_labels[i]) for i in range(n)] if row_labels is not None else [""] * n
    return _draw_grid(cells, labels, ["masked", *[str(k) for k in outputs], "ground truth"], cell_size)


def hole_error_map(output: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, scale: float = 0.5) -> torch.Tensor:
    """``(B, 1, H, W)`` in ``[0, 1]``: the mean over the colour channels of ``|output - target|`` inside the hole
    (``mask`` 1 = hole, ``(B or 1, 1, H, W)``), divided by ``scale`` and clipped at 1 (an error of ``scale`` or
    more is white), 0 outside the hole; so maps drawn with the same ``scale`` compare across methods."""
    check_image(output, "output")
    check_image(target, "target")
    if output.shape != target.shape:
        raise ValueError(f"output {tuple(output.shape)} and target {tuple(target.shape)} must have the same shape")
    check_mask(mask, size=tuple(target.shape[-2:]), batch=target.shape[0])
    if isinstance(scale, bool) or not isinstance(scale, (int, float)) or not 0 < scale < float("inf"):
        raise ValueError(f"scale must be a positive number, got {scale!r}")
    err = (output.float() - target.float()).abs().mean(dim=1, keepdim=True) * mask.float()
    return (err / scale).clamp(0.0, 1.0)


def fill_error_figure(masked: torch.Tensor, target: torch.Tensor, mask: torch.Tensor,
                      fills: Mapping[str, torch.Tensor], scale: float = 0.5, cell_size: float = 1.8):
    """One image's fills side by side and, under each, its error map in the hole (:func:`hole_error_map`,
    the same ``scale`` for all): columns "masked | one per method | ground truth", rows "fill" and "|error|".
    ``masked``, ``target``: ``(3, H, W)``; ``mask``: ``(1, H, W)`` (1 = hole); ``fills``: name -> ``(3, H, W)``.
    The masked input's error cell shows the hole itself, the truth's is left blank."""
    if not isinstance(fills, Mapping) or not fills:
        raise ValueError("fills must be a non-empty dict {method name: tensor (3, H, W)}")
    one = lambda t, name: _check_row(name, t[None])[0]   # noqa: E731  (3, H, W) checked as a batch of one
    masked, target, mask = one(masked, "masked"), one(target, "target"), _check_row("mask", mask[None])
    errors = [hole_error_map(one(f, name)[None], target[None], mask, scale)[0] for name, f in fills.items()]
    cells = [[masked, *fills.values(), target], [mask[0], *errors, None]]
    return _draw_grid(cells, ["fill", f"|error| (white: {scale:g}+)"], ["masked", *fills, "ground truth"], cell_size)


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


# --------------------------------------------------------------------------------------------------
# contextual attention (notebook 05): offsets as colours, arrows and heat maps
# --------------------------------------------------------------------------------------------------
def _check_offsets(offsets: torch.Tensor) -> torch.Tensor:
    if not isinstance(offsets, torch.Tensor):
        raise TypeError(f"offsets must be a torch.Tensor (B, 2, h, w), got {type(offsets).__name__}")
    if offsets.ndim != 4 or offsets.shape[1] != 2:
        raise ValueError(f"offsets must have shape (B, 2, h, w) holding (dy, dx), got {tuple(offsets.shape)}")
    if offsets.dtype == torch.bool or offsets.is_complex():
        raise TypeError(f"offsets must be an integer or float tensor, got dtype {offsets.dtype}")
    return offsets


def flow_to_color(offsets: torch.Tensor, max_norm: float | None = None) -> torch.Tensor:
    """Offsets ``(B, 2, h, w)`` holding ``(dy, dx)`` -> RGB ``(B, 3, h, w)`` in ``[0, 1]`` on the same device,
    on the optical-flow colour wheel: **hue = direction**, **saturation = distance** (value 1), so a zero
    offset is white. Directions in image coordinates (y down): right (``dx > 0``) is red (hue 0), down
    is yellow-green (hue 1/4), left cyan (1/2), up violet (3/4). ``max_norm`` is the distance shown
    fully saturated (default: the largest offset in the batch, at least 1); longer offsets are clipped.
    Pure torch, no numpy: call it when you want a picture, not on every forward pass."""
    _check_offsets(offsets)
    flow = offsets.detach().float()
    dy, dx = flow[:, 0], flow[:, 1]                                                   # (B, h, w)
    radius = torch.sqrt(dy * dy + dx * dx)
    if max_norm is None:
        scale = radius.max().clamp_min(1.0) if radius.numel() else radius.new_tensor(1.0)
    else:
        if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)) or not 0 < max_norm < float("inf"):
            raise ValueError(f"max_norm must be a positive finite number or None, got {max_norm!r}")
        scale = radius.new_tensor(float(max_norm))
    hue = torch.remainder(torch.atan2(dy, dx) / (2 * np.pi), 1.0)                      # (B, h, w) in [0, 1)
    sat = (radius / scale).clamp(0.0, 1.0)
    channels = []
    for n in (5.0, 3.0, 1.0):                                                          # HSV -> R, G, B (v = 1)
        k = torch.remainder(n + hue * 6.0, 6.0)
        channels.append(1.0 - sat * torch.clamp(torch.minimum(k, 4.0 - k), 0.0, 1.0))
    return torch.stack(channels, dim=1)                                                # (B, 3, h, w)


def color_wheel_legend(size: int = 64) -> torch.Tensor:
    """The legend of :func:`flow_to_color`: a ``(3, size, size)`` image in ``[0, 1]`` whose pixel at offset
    ``(dy, dx)`` from the centre has the colour of that offset (full saturation on the rim); white outside
    the disc."""
    if isinstance(size, bool) or not isinstance(size, int) or size < 8:
        raise ValueError(f"size must be an int >= 8, got {size!r}")
    c = (size - 1) / 2.0
    ys, xs = torch.meshgrid(torch.arange(size, dtype=torch.float32) - c, torch.arange(size, dtype=torch.float32) - c,
                            indexing="ij")
    radius = size / 2.0
    rgb = flow_to_color(torch.stack([ys, xs])[None], max_norm=radius)[0]              # (3, size, size)
    inside = (ys.square() + xs.square()) <= radius ** 2
    return torch.where(inside, rgb, torch.ones_like(rgb))


def add_color_wheel(fig: Any, width: float = 1.1, size: int = 96):
    """Add the :func:`color_wheel_legend` to the right of ``fig``: the figure grows by ``width`` inches and
    the legend (titled "offset") sits in that new margin, vertically centred; return its axis."""
    if isinstance(width, bool) or not isinstance(width, (int, float)) or not width > 0:
        raise ValueError(f"width must be a positive number of inches, got {width!r}")
    w, h = fig.get_size_inches()
    fig.set_size_inches(w + width, h, forward=True)
    for ax in fig.axes:                                     # keep the existing axes where they were, in inches
        x0, y0, aw, ah = ax.get_position().bounds
        ax.set_position([x0 * w / (w + width), y0, aw * w / (w + width), ah])
    side = min(0.8 * width, 0.8 * h)
    left = (w + 0.1 * width) / (w + width)
    ax = fig.add_axes([left, 0.5 - side / (2 * h), side / (w + width), side / h])
    ax.imshow(to_numpy_image(color_wheel_legend(size)), interpolation="bilinear")
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_title("offset\n(right = red)", fontsize=7)
    return ax


def plot_attention_arrows(image: torch.Tensor, offsets: torch.Tensor, mask: torch.Tensor | None = None,
                          points: Sequence[tuple[int, int]] | None = None, num_points: int = 9, ax: Any = None,
                          color: str = "yellow", title: str | None = None):
    """Draw ``image`` (``(3, H, W)`` or ``(1, 3, H, W)``) with an arrow from each of ``points`` (``(y, x)``
    image pixels) to the centre of the cell it attends most, read from ``offsets`` (``(2, h, w)`` or
    ``(1, 2, h, w)``, ``(dy, dx)`` in cells of ``H / h`` pixels). ``points=None`` spreads ``num_points``
    points on a grid inside the hole's bounding box (needs ``mask``, ``(1, H, W)`` or ``(1, 1, H, W)``).
    Returns the figure."""
    img = image[0] if image.ndim == 4 else image
    off = offsets[0] if offsets.ndim == 4 else offsets
    check_image(img[None], "image")
    _check_offsets(off[None])
    height, width = img.shape[-2:]
    h, w = off.shape[-2:]
    if height % h or width % w or height // h != width // w:
        raise ValueError(f"the offsets grid {h}x{w} must divide the image {height}x{width} by one factor")
    cell = height // h
    if points is None:
        if mask is None:
            raise ValueError("give points=[(y, x), ...] or the mask to pick points in its hole")
        m = (mask.reshape(mask.shape[-2:]) > 0).cpu()
        if tuple(m.shape) != (height, width) or not bool(m.any()):
            raise ValueError(f"mask must be {height}x{width} with at least one hole pixel")
        rows, cols = m.any(dim=1).nonzero().flatten(), m.any(dim=0).nonzero().flatten()
        n = max(1, int(round(num_points ** 0.5)))
        fr = torch.linspace(0.2, 0.8, n) if n > 1 else torch.tensor([0.5])
        ys = (rows[0] + fr * (rows[-1] - rows[0])).round().long()
        xs = (cols[0] + fr * (cols[-1] - cols[0])).round().long()
        points = [(int(y), int(x)) for y in ys for x in xs if bool(m[y, x])]
    plt = _pyplot()
    if ax is None:
        fig, ax = plt.subplots(figsize=(4, 4))
    else:
        fig = ax.figure
    ax.imshow(to_numpy_image(img), interpolation="nearest")
    off_cpu = off.detach().long().cpu()
    for y, x in points:
        if not (0 <= y < height and 0 <= x < width):
            raise ValueError(f"point {(y, x)} is outside the {height}x{width} image")
        cy, cx = y // cell, x // cell
        ty = (cy + int(off_cpu[0, cy, cx]) + 0.5) * cell
        tx = (cx + int(off_cpu[1, cy, cx]) + 0.5) * cell
        sy, sx = (cy + 0.5) * cell, (cx + 0.5) * cell
        ax.annotate("", xy=(tx, ty), xytext=(sx, sy),
                    arrowprops={"arrowstyle": "->", "color": color, "lw": 1.2})
        ax.plot([sx], [sy], "o", color=color, ms=3)
    ax.set_xticks([])
    ax.set_yticks([])
    if title:
        ax.set_title(title, fontsize=9)
    return fig


def attention_heatmap(image: torch.Tensor, weights: torch.Tensor, alpha: float = 0.6,
                      cmap: str = "inferno") -> torch.Tensor:
    """``image`` ``(3, H, W)`` blended with a heat map of ``weights`` ``(h, w)`` (e.g. one location's row
    of :func:`inpaint_utils.models.deepfill.contextual_attention_weights`), upsampled to ``H x W``
    (nearest) and normalised to its maximum: a ``(3, H, W)`` image in ``[0, 1]`` for the grids."""
    check_image(image[None], "image")
    if weights.ndim != 2:
        raise ValueError(f"weights must be a 2-d map (h, w), got {tuple(weights.shape)}")
    if not 0.0 <= float(alpha) <= 1.0:
        raise ValueError(f"alpha must be in [0, 1], got {alpha!r}")
    import matplotlib

    heat = torch.nn.functional.interpolate(weights.detach().float().cpu()[None, None], size=image.shape[-2:],
                                           mode="nearest")[0, 0]
    heat = heat / heat.max().clamp_min(1e-12)
    colored = torch.from_numpy(matplotlib.colormaps[cmap](heat.numpy())[..., :3]).float().permute(2, 0, 1)
    return ((1 - alpha) * image.detach().float().cpu() + alpha * colored).clamp(0.0, 1.0)
