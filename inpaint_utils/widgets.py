"""An interactive inpainting explorer for Jupyter (ipywidgets): pick an image, a mask and a method, and
see the masked input, the fill and its metrics.

Written for notebook ``07_comparison`` (the trained models beside the baselines) and usable in every
notebook::

    from inpaint_utils import data, widgets
    explorer = widgets.InpaintExplorer(data.find_source(collection="faces_small"), size=128)
    explorer            # the last expression of a cell shows it

The mask is **chosen** (a kind of :data:`inpaint_utils.masks.MASK_KINDS`, a hole-to-image ratio and a
seed: :func:`inpaint_utils.masks.make_mask`), **drawn** as a rectangle (sliders x / y / width / height, in
pixels), **painted** with a brush (freehand strokes of the width on the "brush" slider, on a canvas that
shows the image, "clear" removes them; :func:`stroke_mask` turns the strokes into the mask) or **uploaded**
as an image file (:func:`inpaint_utils.masks.load_mask`; white = hole unless the box is unticked; a file of
another size is refused with a message unless "resize" is ticked). A method is
``callable(masked_image, mask) -> completed`` (hole pixels zeroed in its input, as in
:func:`inpaint_utils.metrics.compare_methods`, which runs it, composites and scores it here: L1 and L2 in %
of ``[0, 1]``, PSNR, SSIM, in the hole and over the image, and LPIPS when an LPIPS model is given).

Images are rendered as PNG bytes into ``ipywidgets.Image`` (no matplotlib). Errors (a ratio a shape
cannot reach, an all-hole mask, a method that raises) are shown in the widget's message line, never
raised. Every control is an attribute, and :meth:`InpaintExplorer.update` recomputes, so the explorer
can be driven from code and tested without a browser (the brush canvas's ``strokes`` are plain data);
``tests/test_browser.py`` also runs it in JupyterLab in headless Chromium. ipywidgets and anywidget (the
brush canvas, a few lines of JavaScript with no build step) are imported when an explorer is built
(``pip install "inpaint-course[notebooks]"`` or ``pip install "ipywidgets>=8" anywidget``).
"""
from __future__ import annotations

import base64
import functools
import html
import io
import math
import numbers
import os
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from . import baselines, data, masks, metrics, viz

__all__ = ["InpaintExplorer", "png_bytes", "rectangle_mask", "stroke_mask"]

MASK_MODES = ("choose", "draw", "paint", "upload")
#: Rows of the metrics table: (label, key stem of metrics.evaluate, digits).
_METRIC_ROWS = (("L1 (% of [0, 1])", "l1_pct", 3), ("L2 (MSE, %)", "l2_pct", 3), ("PSNR (dB)", "psnr", 2),
                ("SSIM", "ssim", 4), ("LPIPS", "lpips", 4))


def _ipywidgets():
    try:
        import ipywidgets
    except ImportError as err:
        raise ImportError("the inpainting explorer needs ipywidgets (and a Jupyter front end to show it): "
                          "pip install \"inpaint-course[notebooks]\" (or pip install \"ipywidgets>=8\" anywidget)") from err
    return ipywidgets


def png_bytes(image: torch.Tensor) -> bytes:
    """One image ``(3, H, W)`` / ``(1, 3, H, W)`` (or a mask ``(1, H, W)``) in ``[0, 1]`` as PNG bytes."""
    from PIL import Image

    array = np.round(viz.to_numpy_image(image) * 255.0).astype(np.uint8)            # (H, W, 3) or (H, W)
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


def rectangle_mask(size: int, x: int, y: int, width: int, height: int) -> torch.Tensor:
    """A ``(1, 1, size, size)`` mask whose hole (1) is the rectangle with top-left corner ``(x, y)`` and the
    given width and height in pixels, clipped to the image."""
    mask = torch.zeros(1, 1, size, size)
    mask[..., max(0, int(y)):max(0, int(y) + int(height)), max(0, int(x)):max(0, int(x) + int(width))] = 1.0
    return mask


def stroke_mask(strokes: Sequence[Any], size: int | tuple[int, int]) -> torch.Tensor:
    """Brush strokes rasterised as a ``(1, 1, H, W)`` mask (1 = hole), ``size`` an int or ``(H, W)``.

    A stroke is ``{"points": [[x, y], ...], "width": w}`` (what the explorer's brush canvas sends) or a pair
    ``(points, width)``: a polyline through the points in image pixels (x to the right, y down, the image
    spanning ``[0, W] x [0, H]``, so pixel ``(row, col)`` has its centre at ``(col + 0.5, row + 0.5)``) drawn
    with a round brush of diameter ``width`` pixels, as a canvas draws it with round caps and joins. A pixel
    is in the hole when its centre lies within ``width / 2`` of the polyline; a stroke of one point is a
    disc. Points outside the image are allowed (the stroke is clipped)."""
    height, width = masks.parse_size(size, minimum=1)
    hole = np.zeros((height, width), dtype=bool)
    for index, stroke in enumerate(strokes):
        points, brush = _stroke_parts(stroke, index)
        radius = brush / 2.0
        segments = list(zip(points[:-1], points[1:])) or [(points[0], points[0])]
        for (x0, y0), (x1, y1) in segments:
            # only the pixels of the segment's bounding box widened by the radius can be reached
            c0, c1 = max(0, math.floor(min(x0, x1) - radius)), min(width, math.ceil(max(x0, x1) + radius) + 1)
            r0, r1 = max(0, math.floor(min(y0, y1) - radius)), min(height, math.ceil(max(y0, y1) + radius) + 1)
            if c0 >= c1 or r0 >= r1:
                continue
            xs = np.arange(c0, c1, dtype=np.float64)[None, :] + 0.5                 # (1, w) pixel centres
            ys = np.arange(r0, r1, dtype=np.float64)[:, None] + 0.5                 # (h, 1)
            dx, dy = x1 - x0, y1 - y0
            length2 = dx * dx + dy * dy
            # the point of the segment nearest to each pixel centre: (x0, y0) + t * (dx, dy), t in [0, 1]
            t = np.clip(((xs - x0) * dx + (ys - y0) * dy) / length2, 0.0, 1.0) if length2 > 0 else 0.0
            distance2 = (xs - x0 - t * dx) ** 2 + (ys - y0 - t * dy) ** 2               # (h, w)
            hole[r0:r1, c0:c1] |= distance2 <= radius * radius
    return torch.from_numpy(hole.astype(np.float32))[None, None]


def _stroke_parts(stroke: Any, index: int) -> tuple[list[tuple[float, float]], float]:
    """``(points, width)`` of one stroke, checked: at least one finite ``(x, y)`` point, a width > 0."""
    if isinstance(stroke, Mapping):
        if "points" not in stroke or "width" not in stroke:
            raise ValueError(f"stroke {index} must have 'points' and 'width', got keys {sorted(stroke)}")
        points, brush = stroke["points"], stroke["width"]
    elif isinstance(stroke, Sequence) and not isinstance(stroke, str) and len(stroke) == 2:
        points, brush = stroke
    else:
        raise TypeError(f"stroke {index} must be {{'points': [[x, y], ...], 'width': w}} or (points, width), "
                        f"got {stroke!r}")
    if isinstance(brush, bool) or not isinstance(brush, numbers.Real) or not math.isfinite(brush) or brush <= 0:
        raise ValueError(f"stroke {index}: the brush width must be a number of pixels > 0, got {brush!r}")
    if isinstance(points, (str, bytes)) or not isinstance(points, Sequence) or not points:
        raise ValueError(f"stroke {index} must have at least one point [x, y], got {points!r}")
    parsed = []
    for point in points:
        if (not isinstance(point, Sequence) or isinstance(point, (str, bytes)) or len(point) != 2
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and math.isfinite(v)
                           for v in point)):
            raise ValueError(f"stroke {index}: each point must be a pair of finite numbers [x, y], got {point!r}")
        parsed.append((float(point[0]), float(point[1])))
    return parsed, float(brush)


#: The brush canvas in the browser (anywidget's ES module): the image as background, the strokes in red
#: over it, each stroke sent to Python (the ``strokes`` trait) when the pointer is released. Coordinates
#: are image pixels: the canvas has ``size`` x ``size`` pixels and is shown ``display_width`` wide.
_BRUSH_ESM = """
function render({ model, el }) {
  const canvas = document.createElement("canvas");
  canvas.className = "inpaint-brush-canvas";
  canvas.style.cursor = "crosshair";
  canvas.style.touchAction = "none";
  el.appendChild(canvas);
  const ctx = canvas.getContext("2d");
  const layer = document.createElement("canvas");   // strokes drawn opaque here, shown half transparent
  const background = new Image();
  let current = null;                                // the stroke being painted

  function resize() {
    canvas.width = layer.width = model.get("size");
    canvas.height = layer.height = model.get("size");
    canvas.style.width = canvas.style.height = model.get("display_width") + "px";
  }
  function paint(c, stroke) {
    const pts = stroke.points;
    c.strokeStyle = c.fillStyle = "rgb(255, 0, 0)";
    c.lineWidth = stroke.width;
    c.lineCap = c.lineJoin = "round";
    c.beginPath();
    if (pts.length === 1) {
      c.arc(pts[0][0], pts[0][1], stroke.width / 2, 0, 2 * Math.PI);
      c.fill();
      return;
    }
    c.moveTo(pts[0][0], pts[0][1]);
    for (const p of pts.slice(1)) c.lineTo(p[0], p[1]);
    c.stroke();
  }
  function redraw() {
    const lc = layer.getContext("2d");
    lc.clearRect(0, 0, layer.width, layer.height);
    for (const s of model.get("strokes")) paint(lc, s);
    if (current) paint(lc, current);
    ctx.clearRect(0, 0, canvas.width, canvas.height);
    if (background.complete && background.naturalWidth) ctx.drawImage(background, 0, 0, canvas.width, canvas.height);
    ctx.globalAlpha = 0.6;
    ctx.drawImage(layer, 0, 0);
    ctx.globalAlpha = 1.0;
  }
  function point(event) {
    const r = canvas.getBoundingClientRect();
    const x = (event.clientX - r.left) * canvas.width / r.width;
    const y = (event.clientY - r.top) * canvas.height / r.height;
    return [Math.round(x * 100) / 100, Math.round(y * 100) / 100];
  }
  function finish() {
    if (!current) return;
    const stroke = current;
    current = null;
    model.set("strokes", [...model.get("strokes"), stroke]);
    model.save_changes();
    redraw();
  }
  canvas.addEventListener("pointerdown", (event) => {
    canvas.setPointerCapture(event.pointerId);
    current = { points: [point(event)], width: model.get("brush_width") };
    redraw();
  });
  canvas.addEventListener("pointermove", (event) => {
    if (!current) return;
    current.points.push(point(event));
    redraw();
  });
  canvas.addEventListener("pointerup", finish);
  canvas.addEventListener("pointercancel", finish);
  const load = () => { background.src = model.get("background"); };
  const onSize = () => { resize(); redraw(); };
  background.onload = redraw;
  model.on("change:strokes", redraw);
  model.on("change:background", load);
  model.on("change:size", onSize);
  model.on("change:display_width", onSize);
  resize();
  load();
  redraw();
  return () => {
    model.off("change:strokes", redraw);
    model.off("change:background", load);
    model.off("change:size", onSize);
    model.off("change:display_width", onSize);
  };
}
export default { render };
"""


@functools.cache
def _brush_canvas_class() -> type:
    """The anywidget class of the brush canvas, built on first use (anywidget is imported lazily)."""
    try:
        import anywidget
        import traitlets
    except ImportError as err:
        raise ImportError("the explorer's brush needs anywidget: pip install \"inpaint-course[notebooks]\" "
                          "(or pip install anywidget, which in Colab keeps Colab's own ipywidgets)") from err

    class BrushCanvas(anywidget.AnyWidget):
        """A canvas of ``size`` x ``size`` pixels shown ``display_width`` screen pixels wide: ``background``
        (an image as a data URL) under the painted ``strokes`` (a list of ``{"points": [[x, y], ...],
        "width": w}`` in image pixels, :func:`stroke_mask`); a new stroke has the width ``brush_width``."""
        _esm = _BRUSH_ESM
        size = traitlets.Int(128).tag(sync=True)
        display_width = traitlets.Int(256).tag(sync=True)
        brush_width = traitlets.Float(8.0).tag(sync=True)
        background = traitlets.Unicode("").tag(sync=True)
        strokes = traitlets.List().tag(sync=True)

    return BrushCanvas


def _prepare_images(images: Any, size: int, max_images: int) -> tuple[torch.Tensor, list[str]]:
    """``images`` (a DataSource, a tensor (B, 3, H, W) / (3, H, W), or a sequence / dataset of tensors and
    image paths) as one ``(N, 3, size, size)`` batch (short side resized, centre crop) and names."""
    items: list[tuple[str, Any]] = []
    if isinstance(images, data.DataSource):
        n = min(len(images), max_images)
        names = list(images.image_names) if len(images.image_names) == len(images) else \
            [Path(p).name for p in images.files] + list(images.image_names)
        items = [(names[i] if i < len(names) else f"image {i}", lambda i=i: images.load(i)) for i in range(n)]
    elif isinstance(images, torch.Tensor):
        batch = images.unsqueeze(0) if images.ndim == 3 else images
        items = [(f"image {i}", lambda i=i: batch[i]) for i in range(min(len(batch), max_images))]
    elif isinstance(images, (str, os.PathLike)):
        items = [(Path(images).name, lambda: data.load_image(images))]
    elif hasattr(images, "__len__") and hasattr(images, "__getitem__"):
        for i in range(min(len(images), max_images)):
            item = images[i]
            if isinstance(item, (str, os.PathLike)):
                items.append((Path(item).name, lambda p=item: data.load_image(p)))
            else:
                items.append((f"image {i}", lambda t=item: t))
    else:
        raise TypeError(f"images must be a DataSource, a tensor (B, 3, H, W), or a list of tensors / image paths, "
                        f"got {type(images).__name__}")
    if not items:
        raise ValueError("images is empty: give at least one image")
    tensors = []
    for name, load in items:
        image = load()
        if not isinstance(image, torch.Tensor):
            raise TypeError(f"image {name!r} must be a tensor (3, H, W) in [0, 1], got {type(image).__name__}")
        if image.ndim == 4 and image.shape[0] == 1:
            image = image[0]
        tensors.append(data.preprocess(image.float(), "256", size))                # (3, size, size)
    return torch.stack(tensors), [name for name, _ in items]


def _upload_entries(value: Any) -> list[tuple[str, bytes]]:
    """``(name, content)`` of the files in a FileUpload value (ipywidgets 8: a tuple of dicts; 7: a dict)."""
    if isinstance(value, Mapping):  # ipywidgets 7: {name: {"metadata": ..., "content": bytes}}
        return [(str(name), bytes(entry["content"])) for name, entry in value.items()]
    return [(str(entry.get("name", "mask.png")), bytes(entry["content"])) for entry in value or ()]


class InpaintExplorer:
    """Interactive inpainting: an image, a mask (chosen, drawn, painted or uploaded) and a method, with the masked
    input, the completed image, the original and a metrics table.

    Args:
        images: a :class:`inpaint_utils.data.DataSource`, a tensor ``(B, 3, H, W)`` or ``(3, H, W)`` in
            ``[0, 1]``, or a list (or dataset) of such tensors and image paths. Each is resized (short side)
            and centre-cropped to ``size`` (``data.preprocess(image, "256", size)``); at most ``max_images``.
        methods: ``{name: callable(masked_image, mask) -> completed}`` (default: the baselines,
            :data:`inpaint_utils.baselines.BASELINES`); notebook 07 adds the trained models, each
            :func:`inpaint_utils.inference.load_inpainter` on its checkpoint (``ce``, ``cascade``, ``glcic``,
            ``deepfill``, ``pconv``, ``deepfill_v2``: any of :data:`inpaint_utils.inference.LEARNED`).
        size: side of the square images and masks (at least 16).
        lpips_model: an LPIPS model (:func:`inpaint_utils.metrics.load_lpips`) to add LPIPS to the table.
        names: labels of the images in the drop-down (default: file names, or "image i").
        display_width: width in screen pixels of each shown image.

    The widgets are attributes (``image``, ``method``, ``mask_mode``, ``kind``, ``ratio``, ``seed``,
    ``rect_x``, ``rect_y``, ``rect_w``, ``rect_h``, ``canvas`` (the brush canvas: its ``strokes`` are the
    painted hole), ``brush`` (the width of the next stroke, in image pixels), ``clear_strokes``, ``upload``,
    ``resize_upload``, ``hole_is_white``; views ``masked_view``, ``fill_view``, ``original_view``,
    ``metrics_html``, ``message``), ``widget`` is the whole box. The views and the main controls carry CSS
    classes (``inpaint-explorer``, ``inpaint-method``, ``inpaint-mask-mode``, ``inpaint-masked``,
    ``inpaint-fill``, ``inpaint-original``, ``inpaint-brush``, ``inpaint-clear``, ``inpaint-message``) for
    browser tests. After each :meth:`update`: ``mask`` ``(1, 1, size, size)``, ``completed`` (or ``None``),
    ``last_metrics`` (the keys of :func:`inpaint_utils.metrics.evaluate`), ``error`` (text or ``None``).
    """

    def __init__(self, images: Any, methods: Mapping[str, Callable[[torch.Tensor, torch.Tensor], torch.Tensor]] | None = None,
                 size: int = 128, lpips_model: torch.nn.Module | None = None, names: Sequence[str] | None = None,
                 display_width: int = 256, max_images: int = 64):
        w = _ipywidgets()
        BrushCanvas = _brush_canvas_class()
        if isinstance(size, bool) or not isinstance(size, int) or size < masks.MIN_SIDE:
            raise ValueError(f"size must be an int >= {masks.MIN_SIDE}, got {size!r}")
        methods = dict(baselines.BASELINES if methods is None else methods)
        if not methods:
            raise ValueError("methods must name at least one callable(masked_image, mask) -> completed")
        for name, fn in methods.items():
            if not callable(fn):
                raise TypeError(f"method {name!r} must be callable(masked_image, mask) -> completed, got "
                                f"{type(fn).__name__}")
        self.size = size
        self.methods = methods
        self.lpips_model = lpips_model
        self.images, self.image_names = _prepare_images(images, size, max_images)
        if names is not None:
            if len(names) != len(self.images):
                raise ValueError(f"names has {len(names)} entries for {len(self.images)} images")
            self.image_names = [str(n) for n in names]
        self.mask: torch.Tensor | None = None
        self.completed: torch.Tensor | None = None
        self.last_metrics: dict[str, float] = {}
        self.last_seconds: float | None = None
        self.error: str | None = None
        self._holding = False

        wide = {"description_width": "initial"}
        # -- image and method
        self.image = w.Dropdown(options=[(n, i) for i, n in enumerate(self.image_names)], value=0,
                                description="image", style=wide)
        self.method = w.Dropdown(options=list(methods), value=next(iter(methods)), description="method", style=wide)
        # -- mask: choose / draw / upload
        self.mask_mode = w.ToggleButtons(options=list(MASK_MODES), value="choose", description="mask", style=wide)
        self.kind = w.Dropdown(options=list(masks.MASK_KINDS), value="square", description="kind")
        self.ratio = w.FloatSlider(value=0.25, min=0.01, max=0.9, step=0.01, description="hole ratio",
                                   continuous_update=False, readout_format=".2f", style=wide)
        self.seed = w.BoundedIntText(value=0, min=0, max=2**31 - 1, description="seed", style=wide)
        side, quarter = size, size // 4
        self.rect_x = w.IntSlider(value=quarter, min=0, max=side - 1, description="x", continuous_update=False)
        self.rect_y = w.IntSlider(value=quarter, min=0, max=side - 1, description="y", continuous_update=False)
        self.rect_w = w.IntSlider(value=side // 2, min=0, max=side, description="width", continuous_update=False)
        self.rect_h = w.IntSlider(value=side // 2, min=0, max=side, description="height", continuous_update=False)
        # brush: strokes painted on the image, each of the width the slider had when it was painted
        self.canvas = BrushCanvas(size=size, display_width=int(display_width))
        self.brush = w.IntSlider(value=max(1, size // 16), min=1, max=max(2, size // 4), description="brush",
                                 style=wide)
        w.dlink((self.brush, "value"), (self.canvas, "brush_width"))
        self.clear_strokes = w.Button(description="clear", tooltip="remove every painted stroke")
        self.clear_strokes.on_click(lambda _: setattr(self.canvas, "strokes", []))
        self.upload = w.FileUpload(accept="image/*", multiple=False, description="mask image")
        self.resize_upload = w.Checkbox(value=False, description=f"resize to {size}x{size}", indent=False)
        self.hole_is_white = w.Checkbox(value=True, description="white = hole", indent=False)
        # -- views
        px = f"{int(display_width)}px"
        self.masked_view = w.Image(format="png", layout=w.Layout(width=px))
        self.fill_view = w.Image(format="png", layout=w.Layout(width=px))
        self.original_view = w.Image(format="png", layout=w.Layout(width=px))
        self.metrics_html = w.HTML()
        self.message = w.HTML()

        self._mode_boxes = {
            "choose": w.HBox([self.kind, self.ratio, self.seed]),
            "draw": w.HBox([w.VBox([self.rect_x, self.rect_y]), w.VBox([self.rect_w, self.rect_h])]),
            "paint": w.HBox([self.canvas, w.VBox([w.HTML("paint the hole on the image with the mouse"),
                                                  self.brush, self.clear_strokes])]),
            "upload": w.HBox([self.upload, self.resize_upload, self.hole_is_white]),
        }

        def column(title: str, view) -> Any:
            return w.VBox([w.HTML(f"<b>{html.escape(title)}</b>"), view])

        self.widget = w.VBox([
            w.HBox([self.image, self.method]),
            self.mask_mode,
            *self._mode_boxes.values(),
            w.HBox([column("masked input", self.masked_view), column("completed", self.fill_view),
                    column("original", self.original_view)]),
            w.HBox([self.metrics_html]),
            self.message,
        ])

        for control in (self.image, self.method, self.mask_mode, self.resize_upload, self.hole_is_white):
            control.observe(self._changed, names="value")
        for control in (self.kind, self.ratio, self.seed):
            control.observe(lambda change: self._changed(change, mode="choose"), names="value")
        for control in (self.rect_x, self.rect_y, self.rect_w, self.rect_h):
            control.observe(lambda change: self._changed(change, mode="draw"), names="value")
        self.upload.observe(lambda change: self._changed(change, mode="upload"), names="value")
        self.canvas.observe(lambda change: self._changed(change, mode="paint"), names="strokes")
        for control, name in ((self.widget, "explorer"), (self.method, "method"), (self.mask_mode, "mask-mode"),
                              (self.masked_view, "masked"), (self.fill_view, "fill"),
                              (self.original_view, "original"), (self.canvas, "brush"),
                              (self.clear_strokes, "clear"), (self.message, "message")):
            control.add_class(f"inpaint-{name}")
        self.update()

    # ---------------------------------------------------------------------------------------------
    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        return self.widget._repr_mimebundle_(**kwargs)

    @contextmanager
    def hold_updates(self) -> Iterator["InpaintExplorer"]:
        """Change several controls and recompute once, at the end of the ``with`` block."""
        self._holding = True
        try:
            yield self
        finally:
            self._holding = False
            self.update()

    def _changed(self, change: Any = None, mode: str | None = None) -> None:
        if mode is not None and self.mask_mode.value != mode:
            self.mask_mode.value = mode          # its own observer runs the update
            return
        if not self._holding:
            self.update()

    # ---------------------------------------------------------------------------------------------
    def current_mask(self) -> torch.Tensor:
        """The mask the controls describe, ``(1, 1, size, size)``, 1 = hole; raises with a message when the
        controls describe no valid mask."""
        mode = self.mask_mode.value
        if mode == "choose":
            return masks.make_mask(self.kind.value, self.size, float(self.ratio.value), seed=int(self.seed.value))
        if mode == "draw":
            return rectangle_mask(self.size, self.rect_x.value, self.rect_y.value, self.rect_w.value,
                                  self.rect_h.value)
        if mode == "paint":
            if not self.canvas.strokes:
                raise ValueError("nothing painted yet: paint the hole on the image with the mouse "
                                 "(the 'brush' slider sets the width)")
            return stroke_mask(self.canvas.strokes, self.size)
        entries = _upload_entries(self.upload.value)
        if not entries:
            raise ValueError("no mask image uploaded yet: click 'mask image' and choose a PNG / JPG "
                             "(white = hole, or untick 'white = hole')")
        name, content = entries[-1]
        return self._load_uploaded(name, content)

    def _load_uploaded(self, name: str, content: bytes) -> torch.Tensor:
        with tempfile.TemporaryDirectory(prefix="inpaint-mask-") as tmp:
            path = Path(tmp) / (Path(name).name or "mask.png")
            path.write_bytes(content)
            mask = masks.load_mask(path, hole_is_white=bool(self.hole_is_white.value))
            h, w = mask.shape[-2:]
            if (h, w) != (self.size, self.size):
                if not self.resize_upload.value:
                    raise ValueError(f"the uploaded mask {name!r} is {w}x{h} pixels but the images are "
                                     f"{self.size}x{self.size}: upload a {self.size}x{self.size} mask, or tick "
                                     f"'resize to {self.size}x{self.size}' (nearest neighbour)")
                mask = masks.load_mask(path, size=self.size, hole_is_white=bool(self.hole_is_white.value))
        return mask

    def update(self, *_: Any) -> None:
        """Recompute the mask, run the method, refresh the views and the metrics table. Errors are shown in
        ``message`` (and kept in ``error``), never raised."""
        for mode, box in self._mode_boxes.items():
            box.layout.display = None if mode == self.mask_mode.value else "none"
        index = int(self.image.value)
        image = self.images[index:index + 1]                                        # (1, 3, size, size)
        self.original_view.value = png_bytes(image)
        self.canvas.background = "data:image/png;base64," + base64.b64encode(self.original_view.value).decode("ascii")
        self.error, self.completed, self.last_metrics, self.last_seconds = None, None, {}, None
        try:
            mask = self.current_mask()
        except Exception as err:  # noqa: BLE001 - shown to the user, not raised
            self.mask = None
            self.masked_view.value = png_bytes(torch.full_like(image, 0.5))
            return self._show_error(f"mask: {err}")
        self.mask = mask
        self.masked_view.value = png_bytes(viz.overlay_mask(image, mask))
        ratio = float(masks.area_ratio(mask))
        name = self.method.value
        start = time.perf_counter()
        try:
            rows, outputs = metrics.compare_methods(
                {name: self.methods[name]}, image, mask, conventions=("seed000",),
                lpips_model=self.lpips_model if self.lpips_model is not None else False, progress=False)
        except Exception as err:  # noqa: BLE001 - a failing method is shown, not raised
            self.fill_view.value = png_bytes(torch.full_like(image, 0.5))
            return self._show_error(f"method {name!r} failed on this mask (hole {ratio:.1%} of the image): "
                                    f"{type(err).__name__}: {err}")
        self.last_seconds = time.perf_counter() - start
        self.completed = outputs[name]
        self.last_metrics = {k: v for k, v in rows[0].items() if k not in ("method", "n", "of")}
        self.fill_view.value = png_bytes(self.completed)
        self.metrics_html.value = self._metrics_table()
        self.message.value = (f"<span>{html.escape(name)}: hole {ratio:.1%} of the image "
                              f"({int(mask.sum())} px), {self.last_seconds:.2f} s (method + metrics)</span>")

    def _show_error(self, text: str) -> None:
        self.error = text
        self.completed = None
        self.metrics_html.value = ""
        self.message.value = f"<span style='color:#b00020'><b>error</b> {html.escape(text)}</span>"

    def _metrics_table(self) -> str:
        cells = []
        for label, stem, digits in _METRIC_ROWS:
            hole, whole = self.last_metrics.get(f"{stem}_hole"), self.last_metrics.get(f"{stem}_image")
            if hole is None and whole is None:
                continue
            fmt = (lambda v, d=digits: "" if v is None else f"{v:.{d}f}")
            cells.append(f"<tr><td>{html.escape(label)}</td><td style='text-align:right'>{fmt(hole)}</td>"
                         f"<td style='text-align:right'>{fmt(whole)}</td></tr>")
        head = "<tr><th>metric</th><th>hole</th><th>image</th></tr>"
        return f"<table class='inpaint-metrics'>{head}{''.join(cells)}</table>"
