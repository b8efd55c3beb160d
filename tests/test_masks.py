"""Tests of inpaint_utils.masks: shapes, area ratios, reproducibility, CE loss weights, input modes."""
import math

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from inpaint_utils.config import seed_everything, shared_data_root
from inpaint_utils.masks import (
    INPUT_MODES,
    MASK_KINDS,
    area_ratio,
    center_mask,
    erode_mask,
    load_mask,
    make_input,
    make_mask,
    max_ratio,
    overlap_weights,
)

SIZES = [32, (32, 48), (40, 200), (200, 40), 64, (96, 128), 128, 256]
RATIOS = [0.05, 0.1, 0.25, 0.4, 0.6]
EXACT_KINDS = ("circle", "ellipse", "triangle", "irregular")  # hit round(ratio * H * W) to the pixel
SHAPED_KINDS = ("center", "square", "circle", "ellipse", "triangle")  # one convex piece that must fit


def _np(mask_2d: torch.Tensor) -> np.ndarray:
    return mask_2d.numpy().astype(np.uint8)


def _components(mask_2d: torch.Tensor) -> int:
    return cv2.connectedComponents(_np(mask_2d), connectivity=8)[0] - 1


def _hull_area(mask_2d: torch.Tensor) -> float:
    return cv2.contourArea(cv2.convexHull(cv2.findNonZero(_np(mask_2d)))) + 0.0


# ------------------------------------------------------------------------------------------ basics
def test_names():
    assert MASK_KINDS == ("center", "square", "circle", "ellipse", "triangle", "irregular", "patches", "blocks")
    assert INPUT_MODES == ("hole", "mosaic", "hole_ns")


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_shape_dtype_and_binary(kind):
    m = make_mask(kind, (48, 64), 0.2, batch=5, seed=0)
    assert m.shape == (5, 1, 48, 64) and m.dtype == torch.float32 and m.device.type == "cpu"
    assert set(torch.unique(m).tolist()) == {0.0, 1.0}
    assert make_mask(kind, 32, 0.2, seed=0, device="cpu").shape == (1, 1, 32, 32)


# ------------------------------------------------------------------------------------------ ratios
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_ratio_within_two_points_for_every_sample(kind):
    """Every sample, many sizes (incl. non-square) and ratios the shape allows: |ratio - target| <= 2 pp."""
    checked = 0
    for i, size in enumerate(SIZES):
        for j, ratio in enumerate(RATIOS):
            if ratio > max_ratio(kind, size):
                continue
            batch = 4 if size == 256 else 8
            m = make_mask(kind, size, ratio, batch=batch, seed=1000 * i + j)
            err = (area_ratio(m) - ratio).abs().max().item()
            assert err <= 0.02, f"{kind} size={size} ratio={ratio}: worst error {err:.4f}"
            if kind in EXACT_KINDS:
                h, w = (size, size) if isinstance(size, int) else size
                assert (m.sum(dim=(1, 2, 3)) == round(ratio * h * w)).all(), (kind, size, ratio)
            checked += batch
    assert checked >= 200


@pytest.mark.parametrize("kind", SHAPED_KINDS)
@pytest.mark.parametrize("size", [32, (48, 80), (80, 48), 128])
def test_ratio_at_the_ceiling(kind, size):
    top = min(max_ratio(kind, size), 0.95)  # a square in a square image could fill it: ratio < 1
    m = make_mask(kind, size, top, batch=8, seed=3)
    assert (area_ratio(m) - top).abs().max() <= 0.02


@pytest.mark.parametrize("kind", MASK_KINDS)
def test_ratio_range_draws_one_ratio_per_sample(kind):
    m = make_mask(kind, 64, (0.1, 0.3), batch=32, seed=5)
    r = area_ratio(m)
    assert r.min() >= 0.08 and r.max() <= 0.32
    assert r.std() > 0.03  # the samples really draw different ratios
    assert torch.unique(r).numel() > 16


@pytest.mark.parametrize("kind, size, ratio, maximum", [
    ("circle", 64, 0.8, math.pi / 4),
    ("circle", (32, 256), 0.2, math.pi / 4 * 32 / 256),
    ("ellipse", 64, 0.8, math.pi / 4),
    ("triangle", 64, 0.55, 0.5),
    ("triangle", (40, 200), (0.3, 0.6), 0.5),
    ("square", (32, 64), 0.6, 0.5),
    ("center", (64, 32), 0.51, 0.5),
])
def test_geometric_ceiling_raises_with_the_maximum(kind, size, ratio, maximum):
    assert max_ratio(kind, size) == pytest.approx(maximum)
    with pytest.raises(ValueError, match=rf"{kind!r}.*maximum ratio is {maximum:.4f}"):
        make_mask(kind, size, ratio, seed=0)


def test_no_ceiling_for_free_kinds():
    for kind in ("irregular", "patches", "blocks"):
        assert max_ratio(kind, 64) == 1.0
        assert abs(area_ratio(make_mask(kind, 32, 0.9, batch=4, seed=0)) - 0.9).max() <= 0.02


def test_blocks_default_is_a_quarter():
    m = make_mask("blocks", 128, batch=16, seed=0)
    assert (area_ratio(m) - 0.25).abs().max() <= 0.02


# ------------------------------------------------------------------------------------------ shapes
def test_center_is_the_context_encoder_hole():
    m = make_mask("center", 128, 0.25)
    expected = torch.zeros(1, 1, 128, 128)
    expected[..., 32:96, 32:96] = 1
    assert torch.equal(m, expected)
    assert torch.equal(center_mask(128, 64), expected)
    assert torch.equal(make_mask("center", 128, 0.25, seed=1), make_mask("center", 128, 0.25, seed=2))
    m = make_mask("center", (64, 96), 0.25)  # non-square image: still centred
    rows, cols = m[0, 0].nonzero().T
    assert rows.min() == 63 - rows.max() and cols.min() == 95 - cols.max()


def test_square_is_a_near_square_at_random_positions():
    m = make_mask("square", 256, 0.25, batch=8, seed=0)  # Biradar et al.: a 128x128 hole in 256x256
    tops = set()
    for b in range(8):
        rows, cols = m[b, 0].nonzero().T
        hh, ww = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert (hh, ww) == (128, 128) and m[b].sum() == 128 * 128  # a filled square
        tops.add((rows.min().item(), cols.min().item()))
    assert len(tops) == 8
    m = make_mask("square", (40, 200), 0.1, batch=8, seed=1)
    for b in range(8):
        rows, cols = m[b, 0].nonzero().T
        hh, ww = rows.max() - rows.min() + 1, cols.max() - cols.min() + 1
        assert abs(hh - ww) <= 1 and m[b].sum() == hh * ww


@pytest.mark.parametrize("kind", SHAPED_KINDS)
def test_shaped_kinds_are_one_convex_piece(kind):
    m = make_mask(kind, 128, 0.2, batch=8, seed=7)
    for b in range(8):
        assert _components(m[b, 0]) == 1
        assert _hull_area(m[b, 0]) <= 1.05 * m[b].sum().item()


def test_circle_and_ellipse_geometry():
    for kind, lo, hi in (("circle", 0.95, 1.0), ("ellipse", 0.3, 0.8)):
        m = make_mask(kind, 128, 0.2, batch=16, seed=11)
        for b in range(16):
            ys, xs = np.nonzero(m[b, 0].numpy())
            eig = np.linalg.eigvalsh(np.cov(np.stack([xs, ys])))
            aspect = math.sqrt(eig[0] / eig[1])  # minor / major axis from second moments
            assert lo <= aspect <= hi, (kind, aspect)
            # a uniform ellipse of semi-axes a, b has variances a^2/4, b^2/4 and area pi a b
            assert 4 * math.pi * math.sqrt(eig[0] * eig[1]) == pytest.approx(len(xs), rel=0.03)


def test_triangle_has_three_corners():
    m = make_mask("triangle", 128, (0.1, 0.45), batch=16, seed=2)
    for b in range(16):
        a = _np(m[b, 0])
        contour = max(cv2.findContours(a, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)[0], key=cv2.contourArea)
        corners = cv2.approxPolyDP(contour, 0.02 * cv2.arcLength(contour, True), True)
        assert len(corners) == 3
        ys, xs = np.nonzero(a)
        assert a.sum() <= 0.53 * (np.ptp(ys) + 1) * (np.ptp(xs) + 1)  # a triangle fills <= 1/2 of its box


def test_irregular_is_thin_and_non_convex():
    m = make_mask("irregular", 128, 0.2, batch=16, seed=3)
    thickness = [cv2.distanceTransform(_np(m[b, 0]), cv2.DIST_L2, 5).max() for b in range(16)]
    hull = [_hull_area(m[b, 0]) / m[b].sum().item() for b in range(16)]
    assert np.median(thickness) <= 0.12 * 128  # strokes, not blobs
    assert np.median(hull) >= 1.3              # free-form, not convex


def test_patches_are_more_and_smaller_than_blocks():
    patches = make_mask("patches", 128, 0.25, batch=16, seed=4)
    blocks = make_mask("blocks", 128, 0.25, batch=16, seed=4)
    n_patches = np.mean([_components(patches[b, 0]) for b in range(16)])
    n_blocks = np.mean([_components(blocks[b, 0]) for b in range(16)])
    assert n_patches >= 6 and n_blocks >= 1.5 and n_patches > 2 * n_blocks


# ------------------------------------------------------------------------------------------ randomness
@pytest.mark.parametrize("kind", MASK_KINDS)
def test_same_seed_same_masks_different_seed_different(kind):
    a = make_mask(kind, 64, (0.1, 0.3), batch=4, seed=123)
    assert torch.equal(a, make_mask(kind, 64, (0.1, 0.3), batch=4, seed=123))
    assert torch.equal(a, make_mask(kind, 64, (0.1, 0.3), batch=4, generator=torch.Generator().manual_seed(123)))
    assert not torch.equal(a, make_mask(kind, 64, (0.1, 0.3), batch=4, seed=124))
    assert all(not torch.equal(a[0], a[i]) for i in range(1, 4))  # independent samples


def test_generator_state_and_global_seed():
    g = torch.Generator().manual_seed(0)
    first, second = make_mask("irregular", 48, 0.2, generator=g), make_mask("irregular", 48, 0.2, generator=g)
    assert not torch.equal(first, second)  # the generator advances
    g.manual_seed(0)
    assert torch.equal(first, make_mask("irregular", 48, 0.2, generator=g))
    torch.manual_seed(9)
    a = make_mask("circle", 48, 0.2, batch=3)
    torch.manual_seed(9)
    assert torch.equal(a, make_mask("circle", 48, 0.2, batch=3))  # seed_everything makes it reproducible
    assert make_mask("blocks", 48, generator=seed_everything(1)).shape == (1, 1, 48, 48)


# ------------------------------------------------------------------------------------------ bad input
@pytest.mark.parametrize("kwargs, error, match", [
    ({"kind": "star"}, ValueError, r"unknown mask kind 'star'.*'center'.*'blocks'"),
    ({"ratio": 0}, ValueError, r"ratio .*\(0, 1\), got 0"),
    ({"ratio": 1.0}, ValueError, r"ratio .*got 1.0"),
    ({"ratio": -0.1}, ValueError, r"ratio .*got -0.1"),
    ({"ratio": float("nan")}, ValueError, r"ratio .*nan"),
    ({"ratio": (0.3, 0.2)}, ValueError, r"lo <= hi, got \(0.3, 0.2\)"),
    ({"ratio": (0.1, 1.2)}, ValueError, r"ratio\[1\].*1.2"),
    ({"ratio": (0.1, 0.2, 0.3)}, ValueError, r"pair"),
    ({"ratio": "big"}, TypeError, r"ratio .*'big'"),
    ({"size": 8}, ValueError, r"size must be at least 16.*got 8"),
    ({"size": (16, 10)}, ValueError, r"got \(16, 10\)"),
    ({"size": 16.5}, TypeError, r"size .*16.5"),
    ({"size": "64"}, TypeError, r"size .*'64'"),
    ({"size": True}, TypeError, r"size .*True"),
    ({"batch": 0}, ValueError, r"batch must be an int >= 1, got 0"),
    ({"batch": 2.0}, ValueError, r"batch .*2.0"),
    ({"seed": 1, "generator": torch.Generator()}, ValueError, r"either generator or seed"),
    ({"seed": 1.5}, TypeError, r"seed .*1.5"),
])
def test_make_mask_bad_input(kwargs, error, match):
    args = {"kind": "circle", "size": 32, "ratio": 0.2, **kwargs}
    with pytest.raises(error, match=match):
        make_mask(**args)


# ------------------------------------------------------------------------------------------ CE weights
def test_overlap_weights_on_the_center_mask():
    w = overlap_weights(make_mask("center", 128, 0.25))
    assert w.shape == (1, 1, 128, 128) and w.dtype == torch.float32
    assert (w == 10).sum() == 64 * 64 - 56 * 56 == 960   # the 4-px ring inside the hole border
    assert (w == 1).sum() == 56 * 56                     # the hole shrunk by 4 px
    assert (w == 0).sum() == 128 * 128 - 64 * 64         # known pixels
    assert (w[0, 0, 32:36, 32:96] == 10).all() and (w[0, 0, 92:96, 32:96] == 10).all()
    assert (w[0, 0, 36:92, 36:92] == 1).all() and (w[0, 0, 36:92, 32:36] == 10).all()
    assert torch.equal(erode_mask(center_mask(128), 4), center_mask(128, 56))
    assert torch.equal(overlap_weights(center_mask(128), overlap=2, weight=5.0).unique(), torch.tensor([0.0, 1.0, 5.0]))


def _reference_weights(mask: np.ndarray, overlap: int, weight: float) -> np.ndarray:
    """Plain loops: a hole pixel within Chebyshev distance `overlap` of a known pixel gets `weight`."""
    h, w = mask.shape
    out = np.zeros_like(mask, dtype=np.float32)
    for y in range(h):
        for x in range(w):
            if mask[y, x]:
                window = mask[max(0, y - overlap):y + overlap + 1, max(0, x - overlap):x + overlap + 1]
                out[y, x] = weight if (window == 0).any() else 1.0
    return out


@pytest.mark.parametrize("kind", ["patches", "irregular", "circle"])
def test_overlap_weights_match_a_reference_for_any_shape(kind):
    mask = make_mask(kind, 24, 0.4, batch=3, seed=8)
    w = overlap_weights(mask, overlap=2, weight=7.0)
    for b in range(3):
        np.testing.assert_array_equal(w[b, 0].numpy(), _reference_weights(mask[b, 0].numpy(), 2, 7.0))
        assert torch.equal(w[b:b + 1], overlap_weights(mask[b:b + 1], overlap=2, weight=7.0))  # batched = one by one


def test_overlap_weights_edge_and_zero_overlap():
    mask = torch.zeros(1, 1, 20, 20)
    mask[..., :10, :10] = 1  # touches the image corner: no context there, so no ring on those sides
    w = overlap_weights(mask, overlap=2)
    assert w[0, 0, 0, 0] == 1 and (w[0, 0, 8:10, :10] == 10).all() and (w[0, 0, :10, 8:10] == 10).all()
    assert (w == 10).sum() == 10 * 10 - 8 * 8
    assert torch.equal(overlap_weights(mask, overlap=0), mask)


@pytest.mark.parametrize("mask, kwargs, error, match", [
    (torch.zeros(1, 3, 8, 8), {}, ValueError, "one channel"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.int64), {}, TypeError, "dtype torch.int64"),
    (torch.full((1, 1, 8, 8), 0.5), {}, ValueError, "binary"),
    (torch.zeros(1, 1, 8, 8), {"overlap": -1}, ValueError, r"overlap .*got -1"),
    (torch.zeros(1, 1, 8, 8), {"overlap": 1.5}, ValueError, r"overlap .*got 1.5"),
    (torch.zeros(1, 1, 8, 8), {"weight": float("nan")}, ValueError, r"weight .*nan"),
])
def test_overlap_weights_bad_input(mask, kwargs, error, match):
    with pytest.raises(error, match=match):
        overlap_weights(mask, **kwargs)


def test_area_ratio():
    masks = torch.cat([torch.zeros(1, 1, 16, 16), center_mask(16, 8), torch.ones(1, 1, 16, 16)])
    assert area_ratio(masks).tolist() == [0.0, 0.25, 1.0]
    with pytest.raises(ValueError, match="binary"):
        area_ratio(torch.full((1, 1, 4, 4), 0.3))


# ------------------------------------------------------------------------------------------ inputs
@pytest.fixture
def image_and_mask():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 48, 64, generator=g)
    mask = torch.cat([make_mask("circle", (48, 64), 0.2, seed=1), make_mask("irregular", (48, 64), 0.3, seed=2)])
    return image, mask


def _smooth_image(h: int = 64, w: int = 64) -> torch.Tensor:
    ys, xs = torch.meshgrid(torch.linspace(0, 1, h), torch.linspace(0, 1, w), indexing="ij")
    return torch.stack([0.2 + 0.6 * xs, 0.5 + 0.3 * torch.sin(3 * ys), 0.1 + 0.4 * xs * ys])[None]


@pytest.mark.parametrize("mode", INPUT_MODES)
def test_known_pixels_never_change(image_and_mask, mode):
    image, mask = image_and_mask
    out = make_input(image, mask, mode=mode)
    assert out.shape == image.shape and out.dtype == image.dtype
    known = (mask == 0).expand_as(image)
    assert torch.equal(out[known], image[known])
    assert out.min() >= 0 and out.max() <= 1
    assert not torch.equal(out, image)  # the hole did change


def test_hole_mean_fill(image_and_mask):
    image, mask = image_and_mask
    out = make_input(image, mask)  # mode "hole", fill "mean"
    for b in range(2):
        known = mask[b, 0] == 0
        for c in range(3):
            expected = image[b, c][known].double().mean().item()
            assert torch.allclose(out[b, c][~known], torch.tensor(expected, dtype=torch.float32), atol=1e-6)


def test_hole_float_and_tensor_fill(image_and_mask):
    image, mask = image_and_mask
    hole = mask.bool().expand_as(image)
    assert (make_input(image, mask, fill=0.5)[hole] == 0.5).all()
    dataset_mean = torch.tensor([0.485, 0.456, 0.406])
    out = make_input(image, mask, fill=dataset_mean)
    for c in range(3):
        assert (out[:, c][mask[:, 0].bool()] == dataset_mean[c]).all()
    one = mask[:1]  # one mask for the whole batch
    assert torch.equal(make_input(image, one, fill=0.2), make_input(image, one.expand(2, -1, -1, -1).clone(), fill=0.2))


def test_mosaic_is_bilinear_down_up_by_the_unit(image_and_mask):
    image, mask = image_and_mask
    out = make_input(image, mask, mode="mosaic", mosaic_unit=12)
    coarse = F.interpolate(image, size=(4, 5), mode="bilinear", align_corners=False)  # 48/12, 64/12
    reference = F.interpolate(coarse, size=(48, 64), mode="bilinear", align_corners=False)
    hole = mask.bool().expand_as(image)
    assert torch.allclose(out[hole], reference[hole], atol=1e-6)
    # on a smooth image the mosaic hole carries the coarse content: far closer than a mean fill
    smooth, centre = _smooth_image(), center_mask(64, 32)
    err = lambda x: (x - smooth).abs().sum() / (3 * centre.sum())  # noqa: E731
    fine = make_input(smooth, centre, "mosaic", mosaic_unit=4)
    rough = make_input(smooth, centre, "mosaic", mosaic_unit=16)
    assert err(fine) < err(rough) < 0.5 * err(make_input(smooth, centre, "hole"))


def test_hole_ns_prefills_with_navier_stokes(image_and_mask):
    from inpaint_utils.baselines import navier_stokes

    image, mask = image_and_mask
    out = make_input(image, mask, mode="hole_ns")
    hole = mask.bool().expand_as(image)
    assert torch.equal(out[hole], navier_stokes(image, mask, radius=3)[hole])
    smooth, centre = _smooth_image(), center_mask(64, 16)
    filled = make_input(smooth, centre, "hole_ns")
    assert ((filled - smooth).abs().sum() / (3 * centre.sum())) < 0.05  # NS continues a smooth image


@pytest.mark.parametrize("kwargs, error, match", [
    ({"mode": "blur"}, ValueError, r"unknown input mode 'blur'.*'hole_ns'"),
    ({"fill": "median"}, ValueError, r"fill must be 'mean'.*'median'"),
    ({"fill": 1.5}, ValueError, r"fill must be in \[0, 1\], got 1.5"),
    ({"fill": torch.tensor([0.5, 0.5, 0.5, 0.5])}, ValueError, r"shape \(3,\).*\(4,\)"),
    ({"fill": torch.tensor([0.5, 2.0, 0.5])}, ValueError, r"fill must be in \[0, 1\]"),
    ({"fill": None}, TypeError, "NoneType"),
    ({"mode": "mosaic", "mosaic_unit": 0}, ValueError, r"mosaic_unit .*got 0"),
    ({"mode": "mosaic", "mosaic_unit": 100}, ValueError, r"mosaic_unit .*got 100"),
])
def test_make_input_bad_arguments(image_and_mask, kwargs, error, match):
    image, mask = image_and_mask
    with pytest.raises(error, match=match):
        make_input(image, mask, **kwargs)


def test_make_input_bad_tensors(image_and_mask):
    image, mask = image_and_mask
    with pytest.raises(ValueError, match=r"size \(32, 32\)"):
        make_input(image, torch.zeros(2, 1, 32, 32))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        make_input(image * 255, mask)
    with pytest.raises(ValueError, match="binary"):
        make_input(image, mask * 0.5)
    with pytest.raises(ValueError, match="batch 3"):
        make_input(image, mask[:1].expand(3, -1, -1, -1).clone())
    with pytest.raises(ValueError, match="all hole"):
        make_input(image, torch.ones(1, 1, 48, 64))


# ------------------------------------------------------------------------------------------ files
def test_load_mask_png_polarity_threshold_and_resize(tmp_path):
    array = np.zeros((32, 48), dtype=np.uint8)
    array[4:20, 8:40] = 255
    array[25, :] = 200   # >= 0.5 after scaling: hole
    array[26, :] = 100   # < 0.5: known
    Image.fromarray(array).save(tmp_path / "gray.png")
    Image.fromarray(np.stack([array] * 3, axis=-1)).save(tmp_path / "rgb.png")
    expected = torch.from_numpy((array >= 128).astype(np.float32))[None, None]
    for name in ("gray.png", "rgb.png"):
        m = load_mask(tmp_path / name)
        assert m.shape == (1, 1, 32, 48) and m.dtype == torch.float32 and torch.equal(m, expected)
        assert torch.equal(load_mask(str(tmp_path / name), hole_is_white=False), 1 - expected)
    small = load_mask(tmp_path / "gray.png", size=(16, 24))  # nearest-exact: the pixel under each output centre
    assert small.shape == (1, 1, 16, 24) and torch.equal(small, expected[..., 1::2, 1::2])
    assert load_mask(tmp_path / "gray.png", size=64).shape == (1, 1, 64, 64)


def test_load_mask_jpeg_and_16_bit(tmp_path):
    array = np.zeros((64, 64), dtype=np.uint8)
    array[16:48, 16:48] = 255
    Image.fromarray(array).save(tmp_path / "m.jpg", quality=90)
    assert abs(area_ratio(load_mask(tmp_path / "m.jpg")).item() - 0.25) < 0.01
    Image.fromarray(array.astype(np.uint16) * 257).save(tmp_path / "m16.png")
    assert torch.equal(load_mask(tmp_path / "m16.png"), center_mask(64, 32))


def test_load_mask_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere.png"):
        load_mask(tmp_path / "nowhere.png")
    (tmp_path / "broken.png").write_text("not an image")
    with pytest.raises(ValueError, match="broken.png"):
        load_mask(tmp_path / "broken.png")


def _shared(folder: str):
    root = shared_data_root()
    if root is None or not (root / folder).is_dir():
        pytest.skip(f"shared data folder {folder} not present")
    return root / folder


def test_load_mask_stable_diffusion_examples():
    files = sorted(_shared("inpaint_examples_sd").glob("*_mask.png"))
    assert files
    for path in files:
        m = load_mask(path)  # white = hole (CompVis / diffusers convention)
        assert m.shape == (1, 1, 512, 512)
        assert set(torch.unique(m).tolist()) == {0.0, 1.0}
        ratio = area_ratio(m).item()
        assert 0.05 < ratio < 0.6
        assert abs(area_ratio(load_mask(path, size=128)).item() - ratio) < 0.01


def test_load_mask_misc_masks():
    folder = _shared("masks_misc")
    for path in sorted((folder / "cmgan_object_masks").glob("*.png")):
        m = load_mask(path)
        assert m.shape == (1, 1, 300, 400) and 0.1 < area_ratio(m).item() < 0.4
    for path in sorted((folder / "ddnm").glob("*.png")):  # DDNM stores 1 = keep: flip once
        keep, hole = load_mask(path), load_mask(path, hole_is_white=False)
        assert torch.equal(hole, 1 - keep) and area_ratio(hole).item() < 0.5
        check = make_input(torch.full((1, 3, 256, 256), 0.5), hole, fill=0.0)
        assert check.shape == (1, 3, 256, 256)


# ------------------------------------------------------------------------------------------ ratio_stats
def test_ratio_stats_measures_every_kind_and_skips_unreachable_targets():
    from inpaint_utils.masks import ratio_stats

    rows, achieved = ratio_stats(("center", "circle", "blocks"), size=64, ratios=(0.1, 0.9), samples=16, seed=0)
    # 0.9 is above the circle's ceiling (pi/4) but not the centre square's (1.0): the circle is left out
    kinds_at_09 = {r["kind"] for r in rows if r["target"] == 0.9}
    assert kinds_at_09 == {"center", "blocks"}
    assert 0.9 not in achieved["circle"] and 0.9 in achieved["center"]
    for row in rows:
        got = achieved[row["kind"]][row["target"]]
        assert got.shape == (16,)
        assert row["mean"] == pytest.approx(got.mean().item())
        assert row["max_err_pp"] == pytest.approx(100 * (got - row["target"]).abs().max().item())
        assert row["within_tol"] == (row["max_err_pp"] <= 2.0 + 1e-9)
    a, _ = ratio_stats(("irregular",), size=48, ratios=(0.2,), samples=4, seed=3)
    b, _ = ratio_stats(("irregular",), size=48, ratios=(0.2,), samples=4, seed=3)
    assert a == b
    with pytest.raises(ValueError, match="samples"):
        ratio_stats(samples=0)


# ------------------------------------------------------------------------------------------ the mask rule
def _centre(h=32, w=48):
    hole = np.zeros((h, w), bool)
    hole[8:24, 12:36] = True
    return hole


def _mask_files(tmp_path, hole):
    """The same hole written in every mode a mask file comes in: name -> path."""
    u8 = np.where(hole, 255, 0).astype(np.uint8)
    rgb = np.stack([u8] * 3, axis=-1)
    files = {
        "1": Image.fromarray(hole),
        "L": Image.fromarray(u8),
        "P": Image.fromarray(rgb).convert("P"),
        "RGB": Image.fromarray(rgb),
        "red_RGB": Image.fromarray(np.stack([u8, 0 * u8, 0 * u8], axis=-1)),          # a coloured hole
        "LA_opaque": Image.fromarray(np.stack([u8, np.full_like(u8, 255)], axis=-1), "LA"),
        "RGBA_opaque": Image.fromarray(np.dstack([rgb, np.full_like(u8, 255)]), "RGBA"),
        # transparency decides: opaque = hole, whatever the colour (white everywhere, then black everywhere)
        "RGBA_alpha_white": Image.fromarray(np.dstack([np.full_like(rgb, 255), u8]), "RGBA"),
        "RGBA_alpha_black": Image.fromarray(np.dstack([np.zeros_like(rgb), u8]), "RGBA"),
        "LA_alpha": Image.fromarray(np.stack([np.full_like(u8, 255), u8], axis=-1), "LA"),
        "I;16": Image.fromarray(np.where(hole, 65535, 0).astype(np.uint16)),
        "I": Image.fromarray(np.where(hole, 40000, 0).astype(np.int32)),
        "F": Image.fromarray(hole.astype(np.float32)),
    }
    palette = Image.fromarray(rgb).convert("P")                                    # palette + tRNS: the
    palette.info["transparency"] = palette.getpixel((0, 0))                         # known colour is see-through
    files["P_transparency"] = palette
    out = {}
    for name, img in files.items():
        suffix = ".tif" if name in ("F", "I") else ".png"
        out[name] = tmp_path / f"{name}{suffix}"
        img.save(out[name], **({"transparency": img.info["transparency"]} if "transparency" in img.info else {}))
    return out


def test_load_mask_one_rule_for_every_mode(tmp_path):
    hole = _centre()
    expected = torch.from_numpy(hole.astype(np.float32))[None, None]
    files = _mask_files(tmp_path, hole)
    modes = {}
    for name, path in files.items():
        with Image.open(path) as img:
            mode = modes[name] = img.mode
        got = load_mask(path)
        assert torch.equal(got, expected), f"{name} (mode {mode}): {int(got.sum())} hole pixels, expected {hole.sum()}"
        with pytest.warns(UserWarning, match="75.0 %"):                                # inverted: 75 % hole
            assert torch.equal(load_mask(path, hole_is_white=False), 1 - expected), name
    assert {"1", "L", "P", "LA", "RGB", "RGBA", "I;16", "I", "F"} <= set(modes.values())  # the files kept their mode


def test_load_mask_thresholds_at_half_the_full_range_not_the_brightest_pixel(tmp_path):
    dark = np.zeros((16, 16), np.uint16)
    dark[4:8, 4:8] = 200                                    # near black on 0..65535: no hole
    Image.fromarray(dark).save(tmp_path / "dark16.png")
    assert load_mask(tmp_path / "dark16.png").sum() == 0
    edge = np.array([[32767, 32768, 65535, 0]], np.uint16)  # 50 % of 65535 is 32767.5
    Image.fromarray(edge).save(tmp_path / "edge16.png")
    assert load_mask(tmp_path / "edge16.png").flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    grey = np.array([[127, 128, 255, 0]], np.uint8)         # 50 % of 255 is 127.5
    Image.fromarray(grey).save(tmp_path / "edge8.png")
    assert load_mask(tmp_path / "edge8.png").flatten().tolist() == [0.0, 1.0, 1.0, 0.0]
    half = np.zeros((4, 4, 4), np.uint8)
    half[..., 3] = [[127, 128, 255, 0]] * 4                 # alpha at the same threshold
    Image.fromarray(half, "RGBA").save(tmp_path / "alpha.png")
    assert load_mask(tmp_path / "alpha.png")[0, 0, 0].tolist() == [0.0, 1.0, 1.0, 0.0]


def test_load_mask_warns_when_the_hole_is_most_of_the_image(tmp_path, recwarn):
    hole = _centre()
    Image.fromarray(np.where(hole, 255, 0).astype(np.uint8)).save(tmp_path / "m.png")
    load_mask(tmp_path / "m.png")                                                   # 25 %: silent
    assert not [w for w in recwarn if issubclass(w.category, UserWarning)]
    with pytest.warns(UserWarning, match=r"m\.png: the hole covers 75\.0 % of the image.*inverted") as caught:
        load_mask(tmp_path / "m.png", hole_is_white=False)
    assert len(caught) == 1 and "\n" not in str(caught[0].message)


def test_load_mask_unreadable_files_are_one_line_read_errors(tmp_path):
    from _bad_files import write_bomb_png, write_truncated_jpeg

    from inpaint_utils.data import ImageReadError

    with pytest.raises(ImageReadError, match=r"cannot read mask .*bomb\.png: DecompressionBombError"):
        load_mask(write_bomb_png(tmp_path / "bomb.png"))
    with pytest.raises(ImageReadError, match=r"cannot read mask .*cut\.jpg: OSError: image file is truncated"):
        load_mask(write_truncated_jpeg(tmp_path / "cut.jpg"))
    with pytest.raises(ImageReadError, match=r"cannot read mask .*: it is a directory"):
        load_mask(tmp_path)
