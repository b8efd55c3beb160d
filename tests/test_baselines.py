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


@pytest.mark.parametrize("method", sorted(BASELINES))
def test_known_pixels_are_preserved_exactly(method):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(3, 3, 24, 20, generator=g)  # arbitrary floats: re-quantising would change them
    mask = (torch.rand(3, 1, 24, 20, generator=g) < 0.3).float()
    out = inpaint(image, mask, method)
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
    for method in BASELINES:
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


@pytest.mark.parametrize("method", sorted(BASELINES))
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
    for method in BASELINES:
        with pytest.raises((ValueError, TypeError), match=match):
            inpaint(image, mask, method)


def test_bad_method_and_radius():
    image, mask = _gradient(b=1, size=8), _square_mask(1, 8, 2, 4)
    with pytest.raises(ValueError, match=r"unknown inpainting method 'patchmatch'.*'mean', 'ns', 'telea'"):
        inpaint(image, mask, "patchmatch")
    for radius in (0, -1, "3", True):
        with pytest.raises(ValueError, match="radius"):
            navier_stokes(image, mask, radius=radius)
    assert baselines.BASELINES["ns"] is navier_stokes
