"""The inpainting explorer driven without a browser: set the controls, read the views and the table."""
from __future__ import annotations

import datetime
import io
import sys

import numpy as np
import pytest
import torch

pytest.importorskip("ipywidgets")
pytest.importorskip("anywidget")

from inpaint_utils import data, masks, metrics, widgets  # noqa: E402

SIZE = 64


def _images(n: int = 3, size: int = SIZE) -> torch.Tensor:
    """Smooth, different test images (B, 3, size, size) in [0, 1]."""
    g = torch.Generator().manual_seed(0)
    coarse = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(coarse, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _grey(masked: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    return torch.full_like(masked, 0.5)


def _png(array: np.ndarray) -> bytes:
    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray(array).save(buf, format="PNG")
    return buf.getvalue()


def _upload_value(content: bytes, name: str = "mask.png") -> tuple[dict, ...]:
    return ({"name": name, "type": "image/png", "size": len(content), "content": memoryview(content),
             "last_modified": datetime.datetime(2024, 1, 1, tzinfo=datetime.timezone.utc)},)


@pytest.fixture
def explorer():
    methods = {"grey": _grey, "telea": widgets.baselines.telea, "ns": widgets.baselines.navier_stokes}
    return widgets.InpaintExplorer(_images(), methods, size=SIZE)


def test_first_view_is_rendered_as_png(explorer):
    assert explorer.error is None
    for view in (explorer.masked_view, explorer.fill_view, explorer.original_view):
        assert view.value[:8] == b"\x89PNG\r\n\x1a\n"
    assert explorer.mask.shape == (1, 1, SIZE, SIZE)
    assert abs(float(masks.area_ratio(explorer.mask)) - 0.25) < 0.02           # square, ratio 0.25
    assert "<table" in explorer.metrics_html.value
    # the live view needs no matplotlib figure
    assert explorer.widget.children


def test_controls_change_the_images(explorer):
    fill, masked, original = explorer.fill_view.value, explorer.masked_view.value, explorer.original_view.value
    explorer.image.value = 1
    assert explorer.original_view.value != original and explorer.fill_view.value != fill
    fill = explorer.fill_view.value
    explorer.method.value = "telea"
    assert explorer.fill_view.value != fill
    masked = explorer.masked_view.value
    explorer.kind.value = "circle"
    assert explorer.masked_view.value != masked
    before = explorer.mask.clone()
    explorer.seed.value = 5
    assert not torch.equal(explorer.mask, before)
    explorer.ratio.value = 0.4
    assert abs(float(masks.area_ratio(explorer.mask)) - 0.4) < 0.02
    assert explorer.error is None


def test_metrics_table_holds_the_library_values(explorer):
    explorer.method.value = "grey"
    image, mask = explorer.images[:1], explorer.mask
    completed = mask * 0.5 + (1 - mask) * image
    assert torch.allclose(explorer.completed, completed)
    table = explorer.metrics_html.value
    expected = {
        "l1": float(metrics.l1(completed, image, mask, region="hole", scale="percent")),
        "l2": float(metrics.l2(completed, image, mask, region="hole", scale="percent")),
        "psnr": float(metrics.psnr(completed, image, mask, region="hole")),
        "ssim": float(metrics.ssim(completed, image, mask, region="hole")),
    }
    assert f"{expected['l1']:.3f}" in table and f"{expected['l2']:.3f}" in table
    assert f"{expected['psnr']:.2f}" in table and f"{expected['ssim']:.4f}" in table
    assert explorer.last_metrics["l1_pct_hole"] == pytest.approx(expected["l1"], rel=1e-6)
    assert "LPIPS" not in table                                                 # no LPIPS model given


def test_lpips_row_when_a_model_is_given():
    class FakeLPIPS(torch.nn.Module):  # mean |difference| in LPIPS's [-1, 1] range, spatial when asked
        spatial = False

        def forward(self, p, t):
            d = (p - t).abs().mean(dim=1, keepdim=True)
            return d if self.spatial else d.mean(dim=(2, 3), keepdim=True)

    ex = widgets.InpaintExplorer(_images(), {"grey": _grey}, size=SIZE, lpips_model=FakeLPIPS())
    image, mask = ex.images[:1], ex.mask
    expected = 2 * float(metrics.l1(ex.completed, image, mask, region="hole"))  # [0, 1] -> [-1, 1] doubles it
    assert ex.last_metrics["lpips_hole"] == pytest.approx(expected, rel=1e-5)
    assert "LPIPS" in ex.metrics_html.value and f"{expected:.4f}" in ex.metrics_html.value


def test_drawn_rectangle_matches_the_sliders(explorer):
    with explorer.hold_updates():
        explorer.rect_x.value, explorer.rect_y.value = 5, 10
        explorer.rect_w.value, explorer.rect_h.value = 20, 12
    assert explorer.mask_mode.value == "draw"                                   # moving a slider switches mode
    assert float(masks.area_ratio(explorer.mask)) == pytest.approx(20 * 12 / SIZE ** 2)
    assert explorer.mask[0, 0, 10:22, 5:25].min() == 1 and int(explorer.mask.sum()) == 240
    assert "240 px" in explorer.message.value
    explorer.rect_x.value = SIZE - 8                                            # clipped at the right edge
    assert int(explorer.mask.sum()) == 8 * 12
    # only the controls of the current mode are shown
    shown = [m for m, box in explorer._mode_boxes.items() if box.layout.display != "none"]
    assert shown == ["draw"]


def test_all_hole_and_empty_masks_are_reported_not_raised(explorer):
    explorer.method.value = "telea"
    with explorer.hold_updates():
        explorer.rect_x.value, explorer.rect_y.value, explorer.rect_w.value, explorer.rect_h.value = 0, 0, SIZE, SIZE
    assert explorer.error and "whole image" in explorer.error
    assert "error" in explorer.message.value and explorer.metrics_html.value == ""
    explorer.rect_w.value = 0                                                   # no hole at all
    assert explorer.error and "empty" in explorer.error


def test_unreachable_ratio_is_reported(explorer):
    explorer.kind.value = "circle"
    explorer.ratio.value = 0.85
    assert explorer.error and "maximum ratio" in explorer.error and explorer.mask is None


def test_failing_method_shows_its_message():
    def broken(masked, mask):
        raise RuntimeError("the model needs a 256x256 input")

    ex = widgets.InpaintExplorer(_images(), {"grey": _grey, "broken": broken}, size=SIZE)
    ex.method.value = "broken"
    assert ex.error and "the model needs a 256x256 input" in ex.error and "broken" in ex.error
    assert "the model needs a 256x256 input" in ex.message.value
    assert ex.completed is None
    ex.method.value = "grey"                                                    # recovers
    assert ex.error is None and ex.completed is not None


def test_uploaded_mask_same_size_other_size_and_polarity(explorer):
    explorer.upload.value = _upload_value(b"")[:0]                              # nothing uploaded yet
    explorer.mask_mode.value = "upload"
    assert explorer.error and "no mask image uploaded" in explorer.error

    square = np.zeros((SIZE, SIZE), np.uint8)
    square[8:40, 16:32] = 255                                                   # white = hole, 32 x 16 px
    explorer.upload.value = _upload_value(_png(square))
    assert explorer.error is None and explorer.mask_mode.value == "upload"
    assert int(explorer.mask.sum()) == 32 * 16

    explorer.hole_is_white.value = False                                        # a file that stores 1 = keep
    assert int(explorer.mask.sum()) == SIZE * SIZE - 32 * 16
    explorer.hole_is_white.value = True

    small = np.zeros((SIZE // 2, SIZE // 2), np.uint8)
    small[4:20, 8:16] = 255
    explorer.upload.value = _upload_value(_png(small), "small.png")
    assert explorer.error and "32x32" in explorer.error and "resize" in explorer.error
    explorer.resize_upload.value = True
    assert explorer.error is None and explorer.mask.shape == (1, 1, SIZE, SIZE)
    assert float(masks.area_ratio(explorer.mask)) == pytest.approx((16 * 8) / (SIZE // 2) ** 2)

    explorer.upload.value = _upload_value(b"not an image", "x.png")
    assert explorer.error and "cannot read mask" in explorer.error and "x.png" in explorer.error


def test_images_from_paths_and_a_data_source(tmp_path):
    from PIL import Image

    paths = []
    for i, img in enumerate(_images(2, 80)):
        path = tmp_path / f"face_{i}.png"
        Image.fromarray((img.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)).save(path)
        paths.append(path)
    ex = widgets.InpaintExplorer(paths, size=SIZE)                              # default methods: the baselines
    assert ex.image_names == ["face_0.png", "face_1.png"] and ex.images.shape == (2, 3, SIZE, SIZE)
    assert list(ex.methods) == list(widgets.baselines.BASELINES)
    source = data.DataSource("shared", "test", files=tuple(paths), root=tmp_path)
    ex = widgets.InpaintExplorer(source, size=SIZE, max_images=1)
    assert ex.image_names == ["face_0.png"] and ex.error is None


def test_bad_arguments():
    with pytest.raises(ValueError, match="size"):
        widgets.InpaintExplorer(_images(), size=8)
    with pytest.raises(TypeError, match="callable"):
        widgets.InpaintExplorer(_images(), {"x": 3}, size=SIZE)
    with pytest.raises(TypeError, match="DataSource"):
        widgets.InpaintExplorer(3.0, size=SIZE)


def test_missing_ipywidgets_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "ipywidgets", None)
    with pytest.raises(ImportError, match="pip install"):
        widgets.InpaintExplorer(_images(), size=SIZE)


# -- the brush: strokes rasterised in Python (the canvas only sends the points) ---------------------------
def test_stroke_mask_of_a_horizontal_stroke_area_endpoints_width():
    # from the centre of pixel (row 20, col 10) to that of (row 20, col 40), a brush 5 px wide (radius 2.5)
    mask = widgets.stroke_mask([{"points": [[10.5, 20.5], [40.5, 20.5]], "width": 5}], SIZE)
    assert mask.shape == (1, 1, SIZE, SIZE) and mask.dtype == torch.float32
    hole = mask[0, 0]
    # between the endpoints every column holds exactly the 5 rows 18..22 (centres within 2.5 of row 20.5)
    assert (hole[:, 10:41].sum(dim=0) == 5).all() and hole[18:23, 10:41].min() == 1
    assert hole[17].sum() == 0 and hole[23].sum() == 0
    # round caps: the column 1 px past an endpoint holds rows within sqrt(2.5^2 - 1^2) = 2.29 (5 rows),
    # 2 px past within 1.5 (3 rows), 3 px past nothing
    assert int(hole[:, 9].sum()) == 5 and int(hole[:, 41].sum()) == 5
    assert int(hole[:, 8].sum()) == 3 and int(hole[:, 42].sum()) == 3
    assert hole[:, :8].sum() == 0 and hole[:, 43:].sum() == 0
    assert int(mask.sum()) == 31 * 5 + 2 * (5 + 3)
    # the area is close to the continuous one: length x width + the two half discs
    assert float(mask.sum()) == pytest.approx(30 * 5 + np.pi * 2.5 ** 2, rel=0.02)


def test_stroke_mask_disc_diagonal_union_and_clipping():
    disc = widgets.stroke_mask([([[32.0, 32.0]], 20)], SIZE)[0, 0]                 # one point: a disc, r = 10
    assert float(disc.sum()) == pytest.approx(np.pi * 10 ** 2, rel=0.03)
    assert torch.equal(disc, disc.flip(0)) and torch.equal(disc, disc.flip(1))    # symmetric about the centre
    assert disc[31:33, 22:42].min() == 1 and disc[31, 21] == 0 and disc[31, 42] == 0

    # a slanted stroke with a bend: the width is measured across the stroke, not along an axis
    points, width = [[8.3, 10.1], [30.2, 28.0], [52.6, 45.2]], 9
    length = sum(np.hypot(x1 - x0, y1 - y0) for (x0, y0), (x1, y1) in zip(points, points[1:]))
    slanted = widgets.stroke_mask([{"points": points, "width": width}], SIZE)[0, 0]
    assert float(slanted.sum()) == pytest.approx(length * width + np.pi * (width / 2) ** 2, rel=0.02)
    assert slanted[10, 8] == 1 and slanted[45, 52] == 1 and slanted[28, 30] == 1   # endpoints and the bend
    assert slanted[10, 45] == 0 and slanted[45, 10] == 0                          # far from the stroke

    # strokes add up (the union), the brush width is per stroke, a stroke leaving the image is clipped
    a = {"points": [[5, 5], [5, 60]], "width": 4}
    b = {"points": [[-20, 50.5], [100, 50.5]], "width": 1}                         # exactly row 50, end to end
    both = widgets.stroke_mask([a, b], SIZE)
    assert torch.equal(both, torch.maximum(widgets.stroke_mask([a], SIZE), widgets.stroke_mask([b], SIZE)))
    assert int(widgets.stroke_mask([b], SIZE).sum()) == SIZE and both[0, 0, 50].min() == 1
    assert widgets.stroke_mask([], SIZE).sum() == 0
    assert widgets.stroke_mask([a], (32, 48)).shape == (1, 1, 32, 48)             # (H, W)


@pytest.mark.parametrize("strokes, message", [
    ([{"points": [[1, 1]]}], "'points' and 'width'"),
    ([{"points": [[1, 1]], "width": 0}], "width must be a number of pixels > 0"),
    ([{"points": [[1, 1]], "width": float("nan")}], "width"),
    ([{"points": [], "width": 3}], "at least one point"),
    ([{"points": [[1, 2, 3]], "width": 3}], "pair of finite numbers"),
    ([{"points": [[1, float("inf")]], "width": 3}], "pair of finite numbers"),
    ([3], "stroke 0 must be"),
])
def test_stroke_mask_bad_strokes(strokes, message):
    with pytest.raises((ValueError, TypeError), match=message):
        widgets.stroke_mask(strokes, SIZE)


def test_painted_strokes_are_the_mask_and_clear_removes_them(explorer):
    explorer.brush.value = 6
    assert explorer.canvas.brush_width == 6                                     # the next stroke's width
    assert explorer.canvas.background.startswith("data:image/png;base64,")      # the image under the brush
    stroke = {"points": [[10, 12], [30, 20], [40, 40]], "width": explorer.canvas.brush_width}
    explorer.canvas.strokes = [stroke]                                          # what the browser sends
    assert explorer.mask_mode.value == "paint" and explorer.error is None
    assert torch.equal(explorer.mask, widgets.stroke_mask([stroke], SIZE))
    assert f"{int(explorer.mask.sum())} px" in explorer.message.value
    shown = [m for m, box in explorer._mode_boxes.items() if box.layout.display != "none"]
    assert shown == ["paint"]
    one = explorer.mask.clone()
    explorer.canvas.strokes = [stroke, {"points": [[50, 5]], "width": 8}]
    assert explorer.mask.sum() > one.sum() and (explorer.mask >= one).all()
    explorer.clear_strokes.click()
    assert explorer.canvas.strokes == [] and explorer.mask is None
    assert explorer.error and "nothing painted yet" in explorer.error


def test_missing_anywidget_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "anywidget", None)
    widgets._brush_canvas_class.cache_clear()
    try:
        with pytest.raises(ImportError, match="anywidget"):
            widgets.InpaintExplorer(_images(), size=SIZE)
    finally:
        widgets._brush_canvas_class.cache_clear()


def test_learned_methods_of_irregular_holes_are_selectable_from_their_checkpoints(tmp_path):
    """Partial convolutions and DeepFill v2 join the explorer as the other learned methods do (notebook 07:
    ``load_inpainter`` on a checkpoint): selectable, their fill shown, known pixels kept, on any mask mode."""
    from inpaint_utils import inference
    from inpaint_utils.checkpoint import save_checkpoint
    from inpaint_utils.models import DeepFillV2Config, DeepFillV2Generator, PConvConfig, PConvUNet

    methods = {"telea": widgets.baselines.telea}
    for method, net in (("pconv", PConvUNet(PConvConfig.tiny(image_size=32), seed=0)),
                        ("deepfill_v2", DeepFillV2Generator(DeepFillV2Config.tiny(image_size=32), seed=0))):
        run = tmp_path / method
        save_checkpoint(run / "checkpoints" / "step_000001", {"generator": net}, model_name=net.model_name,
                        config=net.config.to_dict(), step=1)
        methods[method] = inference.load_inpainter(method, run, device="cpu")       # 32 px models, a 64 px explorer
    explorer = widgets.InpaintExplorer(_images(), methods, size=SIZE)
    assert list(explorer.method.options) == ["telea", "pconv", "deepfill_v2"]
    image = explorer.images[:1]
    for method in ("pconv", "deepfill_v2"):
        explorer.method.value = method
        explorer.kind.value = "irregular"
        assert explorer.error is None, explorer.error
        known = explorer.mask.expand_as(image) == 0
        assert torch.equal(explorer.completed[known], image[known])
        assert not torch.equal(explorer.completed, image) and method in explorer.message.value
        explorer.kind.value = "square"
