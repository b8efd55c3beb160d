import warnings

import numpy as np
import pytest
import torch

from inpaint_utils import baselines
from inpaint_utils.baselines import BASELINES, inpaint, mean_fill, navier_stokes, telea


def _gradient(b=2, size=32):
    """A smooth image: a linear ramp, different per channel (not multiples of 1/255)."""
    ys, xs = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([0.1 + 0.8 * xs, 0.2 + 0.6 * ys, 0.5 + 0.2 * (xs - ys)])  # (3, H, W)
    return image.expand(b, 3, size, size).contiguous()


def _square_mask(b=2, size=32, lo=12, hi=20):
    mask = torch.zeros(b, 1, size, size)
    mask[..., lo:hi, lo:hi] = 1
    return mask


@pytest.mark.parametrize("method", sorted(baselines.ALL_BASELINES))
def test_known_pixels_are_preserved_exactly(method):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 3, 24, 20, generator=g)  # arbitrary floats: re-quantising would change them
    mask = (torch.rand(3, 1, 24, 20, generator=g) < 0.3).float()
    # a scattered 30 % mask leaves no whole 7x7 known patch: PatchMatch copies 3x3 ones here
    out = inpaint(image, mask, method, **({"patch_size": 3} if method == "patchmatch" else {}))
    assert out.shape == image.shape and out.dtype == image.dtype
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert out.min() >= 0 and out.max() <= 1


@pytest.mark.parametrize("fn", [telea, navier_stokes])
def test_opencv_fills_a_smooth_image_far_better_than_the_mean(fn):
    image, mask = _gradient(), _square_mask(lo=4, hi=12)  # an 8x8 hole off the centre of a 32x32 ramp
    hole = mask.expand_as(image) == 1
    err = (fn(image, mask) - image)[hole].abs().mean().item()
    err_mean = (mean_fill(image, mask) - image)[hole].abs().mean().item()
    assert err_mean > 0.1  # measured: 0.134
    assert err < 0.03 and err < err_mean / 5  # measured: telea 0.018, ns 0.014


@pytest.mark.parametrize("method, tol", [("mean", 1e-6), ("ns", 1e-6), ("telea", 2 / 255 + 1e-6)])
def test_constant_image_is_filled_exactly(method, tol):
    value = 100 / 255  # a uint8 level, so quantising for OpenCV loses nothing
    image = torch.full((2, 3, 16, 16), value)
    mask = _square_mask(2, 16, 4, 10)
    out = inpaint(image, mask, method)
    # OpenCV's Telea leaves a ripple of up to 2 grey levels on a constant image (its gradient term on
    # partly filled values; cf. opencv/opencv#25404): "exact" up to that for telea
    assert (out - image).abs().max().item() <= tol
    assert torch.equal(out[(mask == 0).expand_as(out)], image[(mask == 0).expand_as(out)])


def test_mean_fill_by_hand():
    image = torch.zeros(1, 3, 2, 2)
    image[0, 0] = torch.tensor([[0.2, 0.4], [0.6, 0.9]])
    image[0, 1] = 0.5
    mask = torch.zeros(1, 1, 2, 2)
    mask[..., 1, 1] = 1  # the 0.9 pixel is the hole
    out = mean_fill(image, mask)
    assert out[0, 0, 1, 1].item() == pytest.approx(0.4)  # mean of 0.2, 0.4, 0.6
    assert out[0, 1, 1, 1].item() == pytest.approx(0.5)
    assert out[0, 2, 1, 1].item() == 0.0


def test_per_image_masks_and_broadcast_mask():
    image = _gradient(b=3)
    masks = torch.zeros(3, 1, 32, 32)
    masks[0, :, 2:6, 2:6] = 1
    masks[2, :, 20:30, 10:14] = 1  # image 1 has an empty mask
    for method in baselines.ALL_BASELINES:
        out = inpaint(image, masks, method)
        assert torch.equal(out[1], image[1])  # empty mask: unchanged
        assert not torch.equal(out[0], image[0])  # the hole of image 0 was filled
    out = telea(image, _square_mask(b=1))  # one mask for the whole batch
    assert out.shape == (3, 3, 32, 32)
    assert torch.equal(out[0], out[2])


def test_float64_input_keeps_its_dtype_and_radius_is_used():
    image, mask = _gradient().double(), _square_mask()
    out3 = telea(image, mask, radius=3)
    assert out3.dtype == torch.float64
    out9 = telea(image, mask, radius=9)
    assert not torch.equal(out3, out9)


@pytest.mark.parametrize("method", sorted(baselines.ALL_BASELINES))
def test_full_mask_is_rejected(method):
    image = _gradient(b=2, size=8)
    mask = torch.zeros(2, 1, 8, 8)
    mask[1] = 1
    with pytest.raises(ValueError, match=r"no known pixel.*\[1\]"):
        inpaint(image, mask, method)


@pytest.mark.parametrize("image, mask, match", [
    (torch.rand(1, 3, 8, 8), torch.full((1, 1, 8, 8), 0.5), "binary"),
    (torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 9), r"size \(8, 9\)"),
    (torch.rand(1, 3, 8, 8), torch.zeros(1, 3, 8, 8), "one channel"),
    (torch.rand(1, 3, 8, 8) * 255, torch.zeros(1, 1, 8, 8), r"\[0, 1\]"),
    (torch.full((1, 3, 8, 8), float("nan")), torch.zeros(1, 1, 8, 8), "NaN"),
])
def test_bad_inputs(image, mask, match):
    for method in baselines.ALL_BASELINES:
        with pytest.raises((ValueError, TypeError), match=match):
            inpaint(image, mask, method)


def test_bad_method_and_radius():
    image, mask = _gradient(b=1, size=8), _square_mask(1, 8, 2, 4)
    with pytest.raises(ValueError, match=r"unknown inpainting method 'lama'.*'mean', 'ns', 'patchmatch', 'telea'"):
        inpaint(image, mask, "lama")
    for radius in (0, -1, "3", True):
        with pytest.raises(ValueError, match="radius"):
            navier_stokes(image, mask, radius=radius)
    assert baselines.BASELINES["ns"] is navier_stokes


# ------------------------------------------------------------------------ PatchMatch (baselines/exemplar.py)


from inpaint_utils.baselines import exemplar  # noqa: E402
from inpaint_utils.baselines.exemplar import (NearestNeighbourInpainter, nearest_neighbour_field,  # noqa: E402
                                    nearest_neighbour_fill, patch_distances, patchmatch_inpaint)


def _texture(kind, size=48):
    ys, xs = torch.meshgrid(torch.arange(size), torch.arange(size), indexing="ij")
    s = ((xs // 3) % 2).float() if kind == "stripes" else (((xs // 4) + (ys // 4)) % 2).float()
    return torch.stack([0.15 + 0.7 * s, 0.8 - 0.5 * s, 0.3 + 0.25 * s])[None]      # (1, 3, H, W)


@pytest.mark.parametrize("kind", ["stripes", "checkerboard"])
def test_patchmatch_continues_a_periodic_texture(kind):
    image = _texture(kind)
    mask = torch.zeros(1, 1, 48, 48)
    mask[..., 16:32, 17:33] = 1                                                   # a 16x16 hole (11 %)
    hole = mask.expand_as(image) == 1
    err = (patchmatch_inpaint(image, mask) - image)[hole].abs().mean().item()
    err_mean = (mean_fill(image, mask) - image)[hole].abs().mean().item()
    err_telea = (telea(image, mask) - image)[hole].abs().mean().item()
    assert err_mean > 0.15 and err_telea > 0.15                                   # measured: about 0.2-0.35
    assert err < 0.02                                                             # measured: 0.0 (copied exactly)


def test_patchmatch_keeps_known_pixels_and_is_deterministic():
    g = torch.Generator().manual_seed(1)
    image = torch.nn.functional.avg_pool2d(torch.rand(2, 3, 32, 28, generator=g), 3, 1, 1)
    mask = torch.zeros(1, 1, 32, 28)
    mask[..., 10:20, 8:18] = 1
    a = patchmatch_inpaint(image, mask, seed=3)
    known = mask.expand_as(image) == 0
    assert torch.equal(a[known], image[known]) and a.dtype == image.dtype
    assert torch.equal(a, patchmatch_inpaint(image, mask, seed=3))
    assert torch.equal(patchmatch_inpaint(image, torch.zeros(1, 1, 32, 28)), image)   # empty hole: unchanged


def test_nnf_matches_brute_force_on_a_tiny_image():
    rng = np.random.default_rng(0)
    tile = rng.random((5, 4, 3))
    image = np.tile(tile, (4, 5, 1))[:18, :17]          # periodic: every patch has exact copies elsewhere
    hole = np.zeros((18, 17), dtype=bool)
    hole[7:11, 6:10] = True
    field = nearest_neighbour_field(image, hole, patch_size=3, iterations=8, seed=0)
    ys, xs = np.nonzero(~exemplar._dilate(hole, 1))                               # every valid source
    best = np.array([patch_distances(image, np.full(ys.size, ty), np.full(ys.size, tx), ys, xs, 3).min()
                     for ty, tx in zip(field["ty"], field["tx"])])
    assert not exemplar._dilate(hole, 1)[field["sy"], field["sx"]].any()          # sources wholly known
    assert np.allclose(field["dist"], patch_distances(image, field["ty"], field["tx"], field["sy"], field["sx"], 3))
    assert np.isclose(field["dist"], best).mean() >= 0.9                          # the exact nearest patch
    assert field["dist"].sum() <= 1.05 * best.sum() + 1e-9
    same = nearest_neighbour_field(image, hole, patch_size=3, iterations=8, seed=0)
    assert np.array_equal(same["sy"], field["sy"]) and np.array_equal(same["sx"], field["sx"])


def test_patchmatch_refuses_bad_input():
    image = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match="no whole 7x7 known patch"):
        patchmatch_inpaint(image, (torch.rand(1, 1, 16, 16) < 0.5).float())
    with pytest.raises(ValueError, match="whole image"):
        patchmatch_inpaint(image, torch.ones(1, 1, 16, 16))
    with pytest.raises(ValueError, match="patch_size must be an odd"):
        patchmatch_inpaint(image, torch.zeros(1, 1, 16, 16), patch_size=4)
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        patchmatch_inpaint(image * 2, torch.zeros(1, 1, 16, 16))
    with pytest.raises(ValueError, match="binary"):
        patchmatch_inpaint(image, torch.full((1, 1, 16, 16), 0.5))
    assert "patchmatch" in baselines.ALL_BASELINES and "patchmatch" not in BASELINES   # not in the fast loops


# ---------------------------------------------------------------- nearest-neighbour scene completion
def _train_set(n=6, size=24, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.nn.functional.avg_pool2d(torch.rand(n, 3, size, size, generator=g), 5, 1, 2)


def test_nn_returns_the_training_image_itself():
    train = _train_set()
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., 6:18, 6:18] = 1
    image = train[[3, 1]]
    nn = NearestNeighbourInpainter(train, size=8)
    assert nn.nearest(image, mask).tolist() == [3, 1]
    out = nn(image, mask)
    assert torch.equal(out, image)                                                # its own hole content pasted back
    # a dataset of (image, label) items works as a tensor does
    assert torch.equal(nearest_neighbour_fill(image, mask, [(t, 0) for t in train], size=8), out)


def test_nn_keeps_known_pixels_and_ignores_the_hole():
    train = _train_set()
    mask = torch.zeros(1, 1, 24, 24)
    mask[..., 6:18, 6:18] = 1
    query = train[2:3].clone()
    query[..., 6:18, 6:18] = torch.rand(1, 3, 12, 12)                             # a hole content unlike image 2's
    nn = NearestNeighbourInpainter(train, size=8)
    d = nn.distances(query, mask)
    assert d.shape == (1, 6) and d[0, 2] < 1e-6 and d.argmin().item() == 2        # the hole is not compared
    out = nn(query, mask)
    known = mask.expand_as(query) == 0
    assert torch.equal(out[known], query[known])
    assert torch.equal(out[~known], train[2:3][~known])
    # masked L2 against a plain reference: mean over the known tiny pixels of the squared difference
    small_known = torch.nn.functional.adaptive_max_pool2d(mask, 8) == 0
    q, t = exemplar.tiny_features(query, 8), exemplar.tiny_features(train, 8)
    ref = ((q - t) ** 2).permute(1, 0, 2, 3)[:, small_known[:, 0].expand(6, -1, -1)].reshape(3, 6, -1)
    assert torch.allclose(d[0], ref.mean(dim=(0, 2)), atol=1e-6)


def test_nn_resizes_other_sizes_and_refuses_bad_input():
    train = _train_set(size=24)
    image, mask = torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1
    out = NearestNeighbourInpainter(train, size=8)(image, mask)
    known = mask.expand_as(image) == 0
    assert out.shape == image.shape and torch.equal(out[known], image[known])
    with pytest.raises(ValueError, match="no known region"):
        NearestNeighbourInpainter(train, size=4)(image, torch.ones(1, 1, 32, 32))
    with pytest.raises(ValueError, match="empty"):
        NearestNeighbourInpainter([])
    with pytest.raises(ValueError, match="one size"):
        NearestNeighbourInpainter([torch.rand(3, 8, 8), torch.rand(3, 9, 9)])
    with pytest.raises(ValueError, match=r"train images must be in \[0, 1\]"):
        NearestNeighbourInpainter(train * 3)


# --------------------------------------------------------------------------------------------
# Poisson blending (GLCIC's post-process) on every mask the course draws
# --------------------------------------------------------------------------------------------
def _smooth_pair(size: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """An image and a 'completion' of it: other colours and gradients, so the blend has work to do."""
    g = torch.Generator().manual_seed(seed)
    yy, xx = torch.meshgrid(torch.linspace(0, 1, size), torch.linspace(0, 1, size), indexing="ij")
    image = torch.stack([0.2 + 0.6 * xx, 0.8 - 0.5 * yy, 0.4 + 0.2 * xx * yy])[None]
    completed = (torch.stack([0.5 + 0.3 * torch.sin(6 * xx), 0.3 + 0.4 * yy, 0.6 - 0.3 * xx])[None]
                 + 0.02 * torch.randn(1, 3, size, size, generator=g)).clamp(0, 1)
    return image, completed


def _opencv_blend(image: torch.Tensor, completed: torch.Tensor, mask: torch.Tensor):
    """cv2.seamlessClone on one image exactly as poisson_blend calls it, or None where OpenCV refuses it."""
    import cv2
    from inpaint_utils.baselines import telea

    def u8(x):
        return (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()

    def pad(a, value=None):
        return cv2.copyMakeBorder(np.ascontiguousarray(a), 1, 1, 1, 1,
                                  cv2.BORDER_CONSTANT if value is not None else cv2.BORDER_REPLICATE, value=value)
    m = pad((mask[0, 0].numpy() > 0.5).astype(np.uint8) * 255, 0)
    x, y, w, h = cv2.boundingRect(m)
    try:
        out = cv2.seamlessClone(pad(u8(completed)), pad(u8(telea(image, mask, radius=1))), m, (x + w // 2, y + h // 2),
                                cv2.NORMAL_CLONE)
    except cv2.error:
        return None
    return out[1:-1, 1:-1].astype(np.int16)


@pytest.mark.parametrize("size", [64, 128])
def test_poisson_blend_works_on_every_mask_of_the_fixed_sets(size):
    """Every mask of LaMa's thin / medium / thick sets (the ones the comparisons score on), at 64 and 128 px:
    no exception; known pixels exact; where OpenCV solves the image the result is OpenCV's; where it refuses
    it (OpenCV 5.1 does for 2-pixel strokes at the border) a PoissonFallbackWarning names the image."""
    from inpaint_utils import masks
    from inpaint_utils.baselines import PoissonFallbackWarning, poisson_blend

    image, completed = _smooth_pair(size)
    n = 100 if size == 64 else 40
    refused = 0
    for kind in ("thin", "medium", "thick"):
        for i, mask in enumerate(masks.eval_mask_set(kind, n=n, size=size, seed=0)):
            mask = mask[None]
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                out = poisson_blend(image, completed, mask)
            fell_back = [w for w in caught if issubclass(w.category, PoissonFallbackWarning)]
            assert torch.equal(out * (1 - mask), image * (1 - mask)), (kind, i)
            assert torch.isfinite(out).all() and out.min() >= 0 and out.max() <= 1
            reference = _opencv_blend(image, completed, mask)
            if reference is None:
                refused += 1
                assert len(fell_back) == 1 and "image 0" in str(fell_back[0].message), (kind, i)
            else:
                assert not fell_back, (kind, i)
                got = (out[0] * 255).round().to(torch.int16).permute(1, 2, 0).numpy()
                assert np.array_equal(got[mask[0, 0].numpy() > 0.5], reference[mask[0, 0].numpy() > 0.5]), (kind, i)
    print(f"{size} px: OpenCV refused {refused} masks")


def test_poisson_solve_is_opencvs_equation():
    """The fallback solve agrees with cv2.seamlessClone within one 8-bit level on masks OpenCV solves:
    a box, a stroke wider than 7 px, a cross, several components, a near-full hole, holes at the border."""
    from inpaint_utils.baselines import poisson_solve, telea

    size = 64
    image, completed = _smooth_pair(size, seed=1)
    shapes = []
    for rows, cols in [((20, 40), (15, 45)), ((5, 60), (20, 30)), ((0, 12), (0, 64)), ((2, 62), (2, 62)),
                       ((40, 64), (50, 64))]:
        m = torch.zeros(1, 1, size, size)
        m[..., rows[0]:rows[1], cols[0]:cols[1]] = 1
        shapes.append(m)
    cross = torch.zeros(1, 1, size, size)
    cross[..., 10:54, 28:36] = 1
    cross[..., 28:36, 10:54] = 1
    two = torch.zeros(1, 1, size, size)
    two[..., 5:20, 5:20] = 1
    two[..., 40:60, 30:62] = 1
    shapes += [cross, two]
    for k, mask in enumerate(shapes):
        reference = _opencv_blend(image, completed, mask)
        assert reference is not None, k
        import cv2

        def u8p(x):
            a = (x[0].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
            return cv2.copyMakeBorder(a, 1, 1, 1, 1, cv2.BORDER_REPLICATE).astype(np.float64)
        hole = np.pad(mask[0, 0].numpy() > 0.5, 1)
        solved = poisson_solve(u8p(completed), u8p(telea(image, mask, radius=1)), hole)[1:-1, 1:-1]
        inside = mask[0, 0].numpy() > 0.5
        assert np.abs(np.round(solved) - reference)[inside].max() <= 1, k


@pytest.mark.parametrize("case", ["one pixel", "corner pixel", "1-px border stroke", "2-px border stroke",
                                  "1-px line", "many components", "near full", "all but one pixel"])
def test_poisson_blend_edge_cases_never_raise(case):
    from inpaint_utils.baselines import poisson_blend

    size = 32
    image, completed = _smooth_pair(size, seed=2)
    m = torch.zeros(1, 1, size, size)
    if case == "one pixel":
        m[..., 16, 16] = 1
    elif case == "corner pixel":
        m[..., 0, 0] = 1
    elif case == "1-px border stroke":
        m[..., size - 1, 4:28] = 1
    elif case == "2-px border stroke":
        m[..., 10:32, 30:32] = 1
    elif case == "1-px line":
        m[..., 3:29, 11] = 1
    elif case == "many components":
        m[..., ::4, ::4] = 1
    elif case == "near full":
        m[..., 1:, :] = 1
    else:
        m[:] = 1
        m[..., 31, 31] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = poisson_blend(image, completed, m)
    assert torch.equal(out * (1 - m), image * (1 - m))
    assert torch.isfinite(out).all() and 0 <= out.min() and out.max() <= 1


def test_one_refused_image_does_not_change_the_others_of_the_batch():
    from inpaint_utils.baselines import PoissonFallbackWarning, poisson_blend

    image, completed = _smooth_pair(64)
    good = torch.zeros(1, 1, 64, 64)
    good[..., 20:40, 20:44] = 1
    bad = torch.zeros(1, 1, 64, 64)
    bad[..., 50:64, 57:59] = 1                       # the mask: 2 px wide, touching the bottom edge
    batch_img, batch_done = image.repeat(3, 1, 1, 1), completed.repeat(3, 1, 1, 1)
    masks_ = torch.cat([good, bad, good])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        out = poisson_blend(batch_img, batch_done, masks_)
    alone = poisson_blend(image, completed, good)
    assert torch.equal(out[0], alone[0]) and torch.equal(out[2], alone[0])
    names = [str(w.message) for w in caught if issubclass(w.category, PoissonFallbackWarning)]
    assert all("image 1 " in n for n in names)        # only the refused one, by its index


def test_the_fallback_gives_opencvs_result_whatever_opencv_refuses(monkeypatch):
    """Made to refuse every image (as another OpenCV release might), poisson_blend still returns OpenCV's
    blend within one 8-bit level, with one warning per image naming it."""
    import cv2
    from inpaint_utils import masks
    from inpaint_utils.baselines import PoissonFallbackWarning, poisson_blend

    image, completed = _smooth_pair(64, seed=3)
    mask = torch.stack([masks.eval_mask_set(k, n=10, size=64, seed=0)[5] for k in ("thin", "medium", "thick")])
    box = torch.zeros(1, 1, 64, 64)
    box[..., 16:48, 10:40] = 1
    mask = torch.cat([mask, box])
    image, completed = image.repeat(4, 1, 1, 1), completed.repeat(4, 1, 1, 1)
    expected = poisson_blend(image, completed, mask)

    def refuse(*args, **kwargs):
        raise cv2.error("OpenCV(9.9) seamless_cloning.cpp:1: error: (-215:Assertion failed) made up in function 'x'")
    monkeypatch.setattr(cv2, "seamlessClone", refuse)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        got = poisson_blend(image, completed, mask)
    names = [str(w.message) for w in caught if issubclass(w.category, PoissonFallbackWarning)]
    assert len(names) == 4 and all(f"image {i} " in n for i, n in enumerate(names))
    assert "made up" in names[0]
    assert (got - expected).abs().max() <= 1 / 255 + 1e-6
    assert torch.equal(got * (1 - mask), image * (1 - mask))
