import matplotlib

matplotlib.use("Agg")  # tests draw off-screen

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402
from PIL import Image  # noqa: E402

from inpaint_utils import viz  # noqa: E402


def _images(b=3, size=16, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


def _mask(b=3, size=16):
    mask = torch.zeros(b, 1, size, size)
    mask[..., 4:10, 5:12] = 1
    return mask


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    import matplotlib.pyplot as plt
    plt.close("all")


def test_to_numpy_image_layouts():
    chw = _images(1)[0]
    hwc = chw.permute(1, 2, 0)
    a = viz.to_numpy_image(chw)
    assert a.shape == (16, 16, 3) and a.dtype == np.float32
    assert np.array_equal(a, viz.to_numpy_image(hwc))
    assert np.array_equal(a, viz.to_numpy_image(chw[None]))
    assert np.array_equal(a, viz.to_numpy_image(hwc.numpy()))
    assert viz.to_numpy_image(torch.zeros(1, 8, 9)).shape == (8, 9)  # a mask, CHW
    assert viz.to_numpy_image(torch.zeros(8, 9)).shape == (8, 9)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        viz.to_numpy_image(chw * 2 - 1)
    with pytest.raises(ValueError, match="shape"):
        viz.to_numpy_image(torch.zeros(4, 8, 8))
    with pytest.raises(TypeError, match="torch.Tensor or numpy"):
        viz.to_numpy_image([[0.0]])


def test_overlay_colours_hole_pixels_only():
    image, mask = _images(), _mask()
    out = viz.overlay_mask(image, mask)
    hole = mask.expand_as(image).bool()
    assert out.shape == image.shape
    assert torch.equal(out[~hole], image[~hole])
    magenta = out.permute(0, 2, 3, 1)[mask[:, 0].bool()]  # (N, 3)
    assert torch.equal(magenta, torch.tensor([1.0, 0.0, 1.0]).expand_as(magenta))
    grey = viz.overlay_mask(image, mask, color="grey").permute(0, 2, 3, 1)[mask[:, 0].bool()]
    assert torch.allclose(grey, torch.full_like(grey, 0.5))
    half = viz.overlay_mask(image, mask, color=(0, 0, 0), alpha=0.5)
    assert torch.allclose(half[hole], image[hole] * 0.5)
    with pytest.raises(ValueError, match="color"):
        viz.overlay_mask(image, mask, color=(2, 0, 0))
    with pytest.raises(ValueError, match="binary"):
        viz.overlay_mask(image, mask * 0.5)


def test_image_grid_has_one_row_per_entry():
    image, mask = _images(b=10), _mask(b=10)
    rows = {"input": viz.overlay_mask(image, mask), "mask": mask, "truth": image[:4]}
    fig = viz.image_grid(rows, max_cols=6, titles=["a", "b"])
    axes = fig.get_axes()
    assert len(axes) == 3 * 6  # 3 rows x min(6, 10) columns
    assert axes[0].get_ylabel() == "input" and axes[6].get_ylabel() == "mask" and axes[12].get_ylabel() == "truth"
    assert axes[0].get_title() == "a" and axes[1].get_title() == "b"
    assert sum(len(ax.images) for ax in axes) == 6 + 6 + 4  # the short row leaves blank cells
    assert len(viz.image_grid({"x": image[:2]}).get_axes()) == 2
    with pytest.raises(ValueError, match="non-empty"):
        viz.image_grid({})
    with pytest.raises(ValueError, match="row 'bad'"):
        viz.image_grid({"bad": torch.rand(2, 4, 8, 8)})
    with pytest.raises(ValueError, match="titles"):
        viz.image_grid({"x": image[:2]}, titles=["a", "b", "c"])


def test_comparison_grid_columns():
    target, mask = _images(b=5), _mask(b=5)
    masked = viz.overlay_mask(target, mask)
    outputs = {"telea": target.flip(-1), "ns": target.flip(-2)}
    fig = viz.comparison_grid(masked, outputs, target, max_rows=4)
    axes = fig.get_axes()
    assert len(axes) == 4 * 4  # rows = min(5, 4); columns = masked, telea, ns, ground truth
    assert [ax.get_title() for ax in axes[:4]] == ["masked", "telea", "ns", "ground truth"]
    with pytest.raises(ValueError, match=r"outputs\['ns'\]"):
        viz.comparison_grid(masked, {"ns": target[..., :8, :8]}, target)
    with pytest.raises(ValueError, match=r"outputs\['ns'\].*k <= 5"):
        viz.comparison_grid(masked, {"ns": torch.cat([target, target[:1]])}, target)


def test_a_method_not_run_on_an_image_is_a_blank_labelled_cell_never_the_ground_truth():
    target, mask = _images(b=4), _mask(b=4)
    masked = viz.overlay_mask(target, mask)
    slow = target[:2].flip(-1)                              # a slow method run on the first two images only
    fig = viz.comparison_grid(masked, {"telea": target.flip(-2), "slow": slow, "CE": "refused"}, target)
    axes = fig.get_axes()
    grid = [axes[i * 5:(i + 1) * 5] for i in range(4)]      # masked, telea, slow, CE, ground truth
    assert [ax.get_title() for ax in grid[0]] == ["masked", "telea", "slow", "CE", "ground truth"]
    for i, row in enumerate(grid):
        assert len(row[1].images) == 1 and len(row[4].images) == 1
        truth = row[4].images[0].get_array()
        if i < 2:                                           # ran: its own output, not the ground truth
            assert np.allclose(row[2].images[0].get_array(), viz.to_numpy_image(slow[i]))
            assert not np.allclose(row[2].images[0].get_array(), truth)
        else:                                               # did not run: blank, labelled, no image at all
            assert len(row[2].images) == 0 and [t.get_text() for t in row[2].texts] == ["not run\non this image"]
        assert len(row[3].images) == 0 and [t.get_text() for t in row[3].texts] == ["refused"]
    labelled = viz.comparison_grid(masked, {"slow": slow}, target, not_run="not scored")
    assert [t.get_text() for t in labelled.get_axes()[3 * 3 + 1].texts] == ["not scored"]


def test_save_figure_writes_a_png_atomically(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_FIGURES", str(tmp_path))
    fig = viz.image_grid({"a": _images(b=4), "b": _images(b=4, seed=1)}, cell_size=1.5)
    path = viz.save_figure(fig, "fig_test-01", dpi=50)
    assert path == tmp_path / "fig_test-01.png"
    with Image.open(path) as im:
        assert im.format == "PNG"
        w, h = im.size
    assert 100 < w < 400 and 50 < h < 200  # about 4 x 1.5 in by 2 x 1.5 in at 50 dpi, trimmed
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fig_test-01.png"]  # no temporary left
    import matplotlib.pyplot as plt
    assert plt.fignum_exists(fig.number)  # left open for notebooks by default
    viz.save_figure(fig, "fig_test-01", close=True)  # overwrites
    assert not plt.fignum_exists(fig.number)


@pytest.mark.parametrize("name", ["../escape", "a/b", "a\\b", "..", "", ".hidden", "fig.png", "a..b", "sp ace", 3])
def test_save_figure_rejects_bad_names(name, tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_FIGURES", str(tmp_path))
    fig = viz.image_grid({"a": _images(b=1)})
    with pytest.raises(ValueError, match="simple file stem"):
        viz.save_figure(fig, name)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("mplbackend, expected", [(None, "agg"), ("svg", "svg")])
def test_backend_is_agg_only_when_none_is_set_up(mplbackend, expected):
    import os
    import subprocess
    import sys
    env = {k: v for k, v in os.environ.items() if k not in ("DISPLAY", "WAYLAND_DISPLAY", "MPLBACKEND")}
    if mplbackend:
        env["MPLBACKEND"] = mplbackend
    code = ("import torch, matplotlib; from inpaint_utils import viz; "
            "viz.image_grid({'x': torch.rand(1, 3, 8, 8)}); print(matplotlib.get_backend().lower())")
    out = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip().splitlines()[-1] == expected


def test_ratio_histogram_one_panel_per_kind():
    from inpaint_utils.masks import ratio_stats

    _, achieved = ratio_stats(("center", "circle", "patches"), size=32, ratios=(0.1, 0.3), samples=8, seed=0)
    fig = viz.ratio_histogram(achieved, cols=2)
    visible = [ax for ax in fig.axes if ax.axison]
    assert [ax.get_title() for ax in visible] == ["center", "circle", "patches"]
    assert len(fig.axes) == 4  # 2 x 2 grid, the last panel switched off
    with pytest.raises(ValueError, match="non-empty"):
        viz.ratio_histogram({})


def test_plot_curves_draws_one_line_per_key():
    rows = [{"step": 1, "rec": 1.0, "d": 0.7}, {"step": 2, "rec": 0.5}, {"step": 3, "rec": 0.25, "d": 0.6}]
    fig = viz.plot_curves(rows, ["rec", "d"], logy=True)
    lines = fig.axes[0].get_lines()
    assert [l.get_label() for l in lines] == ["rec", "d"]
    assert list(lines[1].get_xdata()) == [1, 3]  # the row without "d" is skipped for that line
    assert fig.axes[0].get_yscale() == "log"
    with pytest.raises(ValueError, match="none of"):
        viz.plot_curves(rows, ["nope"])
    with pytest.raises(ValueError, match="empty"):
        viz.plot_curves([], ["rec"])


# --- contextual attention views (notebook 05) -------------------------------------------------------
def test_flow_to_color_known_directions():
    # right, down, left, up, no offset; (dy, dx) in image coordinates (y down)
    offsets = torch.tensor([[0, 3], [3, 0], [0, -3], [-3, 0], [0, 0]]).view(5, 2, 1, 1)
    rgb = viz.flow_to_color(offsets).view(5, 3)
    torch.testing.assert_close(rgb[0], torch.tensor([1.0, 0.0, 0.0]))   # right: red (hue 0)
    torch.testing.assert_close(rgb[1], torch.tensor([0.5, 1.0, 0.0]))   # down: hue 1/4
    torch.testing.assert_close(rgb[2], torch.tensor([0.0, 1.0, 1.0]))   # left: cyan (hue 1/2)
    torch.testing.assert_close(rgb[3], torch.tensor([0.5, 0.0, 1.0]))   # up: hue 3/4
    torch.testing.assert_close(rgb[4], torch.tensor([1.0, 1.0, 1.0]))   # zero: white
    # saturation grows with the distance; max_norm fixes the scale
    half = viz.flow_to_color(torch.tensor([0, 1]).view(1, 2, 1, 1), max_norm=2.0).view(3)
    torch.testing.assert_close(half, torch.tensor([1.0, 0.5, 0.5]))
    assert viz.flow_to_color(torch.zeros(2, 2, 4, 4, dtype=torch.long)).shape == (2, 3, 4, 4)
    with pytest.raises(ValueError, match=r"\(B, 2, h, w\)"):
        viz.flow_to_color(torch.zeros(1, 3, 4, 4))
    with pytest.raises(ValueError, match="max_norm"):
        viz.flow_to_color(offsets, max_norm=0)


def test_color_wheel_legend_matches_flow_to_color():
    legend = viz.color_wheel_legend(33)
    assert legend.shape == (3, 33, 33) and float(legend.min()) >= 0 and float(legend.max()) <= 1
    torch.testing.assert_close(legend[:, 16, 16], torch.ones(3))                    # centre: zero offset
    s = 16 / 16.5                                                                   # right rim: dx 16, radius 16.5
    torch.testing.assert_close(legend[:, 16, 32], torch.tensor([1.0, 1 - s, 1 - s]))  # nearly saturated red
    torch.testing.assert_close(legend[:, 0, 0], torch.ones(3))                      # corner, outside: white
    fig = viz.image_grid({"flow": legend[None].expand(3, -1, -1, -1)})
    width = fig.get_size_inches()[0]
    ax = viz.add_color_wheel(fig, width=1.0)
    assert ax in fig.axes and fig.get_size_inches()[0] == pytest.approx(width + 1.0)
    assert all(ax.get_position().x0 >= other.get_position().x1 for other in fig.axes if other is not ax)


def test_attention_arrows_and_heatmap():
    image = _images(1, 32)
    offsets = torch.zeros(1, 2, 4, 4, dtype=torch.long)
    offsets[0, :, 2, 2] = torch.tensor([-2, 1])                                     # cell (2, 2) -> (0, 3)
    fig = viz.plot_attention_arrows(image, offsets, points=[(20, 20)])
    ann = [c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]
    assert len(ann) == 1 and ann[0].xy == (3.5 * 8, 0.5 * 8) and ann[0].xyann == (2.5 * 8, 2.5 * 8)
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    fig = viz.plot_attention_arrows(image, offsets, mask=mask, num_points=4)
    ann = [c for c in fig.axes[0].get_children() if type(c).__name__ == "Annotation"]
    assert len(ann) == 4
    with pytest.raises(ValueError, match="points"):
        viz.plot_attention_arrows(image, offsets)
    heat = viz.attention_heatmap(image[0], torch.tensor([[0.0, 1.0], [0.0, 0.0]]))
    assert heat.shape == (3, 32, 32) and float(heat.min()) >= 0 and float(heat.max()) <= 1
    assert not torch.equal(heat[:, :16, 16:], heat[:, 16:, :16])                   # the hot cell stands out


def test_hole_error_map_is_the_scaled_mean_error_inside_the_hole_only():
    target = torch.full((2, 3, 8, 8), 0.5)
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:5, 3:6] = 1.0
    output = target.clone()
    output[:, 0] += 0.3                                 # one channel off by 0.3 everywhere: mean error 0.1
    err = viz.hole_error_map(output, target, mask, scale=0.5)
    assert err.shape == (2, 1, 8, 8)
    torch.testing.assert_close(err[mask.bool()], torch.full((18,), 0.2))
    assert float(err[~mask.bool()].abs().max()) == 0.0          # nothing outside the hole
    assert float(viz.hole_error_map(target, target, mask).max()) == 0.0
    assert float(viz.hole_error_map(torch.ones_like(target), torch.zeros_like(target), mask, 0.5).max()) == 1.0
    with pytest.raises(ValueError, match="scale must be a positive number"):
        viz.hole_error_map(output, target, mask, scale=0)
    with pytest.raises(ValueError, match="must have the same shape"):
        viz.hole_error_map(output[:1], target, mask)


def test_fill_error_figure_has_a_fill_row_and_an_error_row():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 16, 16, generator=g)
    mask = torch.zeros(1, 16, 16)
    mask[:, 4:12, 7:9] = 1.0
    fig = viz.fill_error_figure(image * (1 - mask), image, mask, {"a": image, "b": torch.rand(3, 16, 16, generator=g)})
    assert len(fig.axes) == 2 * 4                      # masked, a, b, truth; fill and error rows
    assert [ax.get_title() for ax in fig.axes[:4]] == ["masked", "a", "b", "ground truth"]
    with pytest.raises(ValueError, match="fills must be a non-empty dict"):
        viz.fill_error_figure(image, image, mask, {})
    viz.pyplot().close(fig)
