import pytest
import torch

from inpaint_utils.validation import check_image, check_image_mask, check_mask, check_ratio


def test_valid_inputs_pass_through():
    image, mask = torch.rand(2, 3, 8, 8), torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:4, 2:4] = 1
    assert check_image_mask(image, mask) == (image, mask)
    check_mask(mask[:1], size=(8, 8), batch=2)  # one mask broadcasts over the batch


@pytest.mark.parametrize("image, match", [
    (torch.rand(3, 8, 8), r"shape \(B, 3, H, W\)"),
    (torch.rand(1, 4, 8, 8), r"got \(1, 4, 8, 8\)"),
    ((torch.rand(1, 3, 8, 8) * 255).to(torch.uint8), "float tensor"),
    (torch.full((1, 3, 8, 8), float("nan")), "NaN"),
    (torch.rand(1, 3, 8, 8) * 255, r"must be in \[0, 1\]"),
    ([[0.0]], "torch.Tensor"),
])
def test_bad_images(image, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_image(image)


@pytest.mark.parametrize("mask, kwargs, match", [
    (torch.zeros(1, 3, 8, 8), {}, "one channel"),
    (torch.zeros(1, 1, 8, 8, dtype=torch.bool), {}, "dtype torch.bool"),
    (torch.full((1, 1, 8, 8), 0.5), {}, "binary"),
    (torch.zeros(1, 1, 8, 9), {"size": (8, 8)}, r"size \(8, 9\)"),
    (torch.zeros(3, 1, 8, 8), {"batch": 2}, "batch 3"),
])
def test_bad_masks(mask, kwargs, match):
    with pytest.raises((TypeError, ValueError), match=match):
        check_mask(mask, **kwargs)


@pytest.mark.parametrize("ratio", [0, 1, -0.1, 1.5, float("nan")])
def test_bad_ratios(ratio):
    with pytest.raises(ValueError, match="open interval"):
        check_ratio(ratio)
    assert check_ratio(0.25) == 0.25
