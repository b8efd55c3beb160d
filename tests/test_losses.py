"""Tests of inpaint_utils.losses: hand-computed values of the weighted L2 (10x ring), the authors'
normalisation and gradient, BCE-with-logits terms (values, stability), the joint CE loss, gradcheck."""
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from inpaint_utils.losses import (
    NORMALIZATIONS,
    ce_generator_loss,
    discriminator_bce,
    generator_adversarial_bce,
    masked_l2,
)
from inpaint_utils.masks import center_mask, overlap_weights


def _ring_setup():
    """16x16 image, centre 8x8 hole, overlap 2: inner 4x4 (16 px) weight 1, ring 64 - 16 = 48 px weight 10."""
    mask = center_mask(16, 8)
    weights = overlap_weights(mask, 2, 10.0)
    assert weights.sum() == 16 * 1 + 48 * 10 == 496
    return mask, weights


# ------------------------------------------------------------------------------------ masked_l2
def test_masked_l2_hand_values_for_each_normalisation():
    _, w = _ring_setup()
    target = torch.full((1, 3, 16, 16), 0.25)
    pred = target + 0.5                                      # squared error 0.25 everywhere
    # S = 0.25 * 3 channels * (16 * 1 + 48 * 10) = 372
    assert masked_l2(pred, target, w, normalize="sum").item() == pytest.approx(372.0)
    # elements with weight > 0: 3 * 64 = 192 -> 372 / 192
    assert masked_l2(pred, target, w).item() == pytest.approx(372.0 / 192.0)
    assert masked_l2(pred, target, w, normalize="elements").item() == pytest.approx(1.9375)
    # weighted mean: 372 / (3 * 496) = 0.25, the plain squared error
    assert masked_l2(pred, target, w, normalize="weights").item() == pytest.approx(0.25)
    assert NORMALIZATIONS == ("elements", "weights", "sum")


def test_ring_error_counts_ten_times():
    mask, w = _ring_setup()
    ring = (w == 10.0).float()
    inner = (w == 1.0).float()
    target = torch.zeros(1, 3, 16, 16)
    on_ring = masked_l2(target + 0.1 * ring, target, w, normalize="sum")
    on_inner = masked_l2(target + 0.1 * inner, target, w, normalize="sum")
    # the same per-pixel error: 48 ring pixels x 10 vs 16 inner pixels x 1
    assert on_ring.item() == pytest.approx(0.01 * 3 * 48 * 10)
    assert on_inner.item() == pytest.approx(0.01 * 3 * 16)
    # known pixels (weight 0) never count
    outside = masked_l2(target + 0.9 * (1 - mask), target, w)
    assert outside.item() == 0.0


def test_authors_weights_on_the_64_window():
    """128x128 image, 64x64 centre, overlap 4: inner 56x56 weight 1, 4-px ring weight 10."""
    w = overlap_weights(center_mask(128, 64), 4, 10.0)[:, :, 32:96, 32:96]
    assert w.shape == (1, 1, 64, 64) and set(w.unique().tolist()) == {1.0, 10.0}
    assert (w[0, 0, 4:60, 4:60] == 1).all() and w.sum() == 56 * 56 + 10 * (64 * 64 - 56 * 56) == 12736
    # "elements" divides by the window's 3 * 4096 elements, "weights" by 3 * 12736: a factor 3.11
    pred, target = torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64)
    ratio = masked_l2(pred, target, w) / masked_l2(pred, target, w, normalize="weights")
    assert ratio.item() == pytest.approx(12736 / 4096)


def test_gradient_matches_the_authors_weighted_mse_gradient():
    """train.lua: df = wtl2Matrix * MSECriterion'(pred) = (w * wtl2) * 2 (pred - target) / N."""
    w = overlap_weights(center_mask(128, 64), 4, 10.0)[:, :, 32:96, 32:96]       # (1, 1, 64, 64)
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand(2, 3, 64, 64, generator=gen, dtype=torch.float64).requires_grad_(True)
    target = torch.rand(2, 3, 64, 64, generator=gen, dtype=torch.float64)
    wtl2 = 0.999
    (wtl2 * masked_l2(pred, target, w.double())).backward()
    authors = (w.double() * wtl2) * 2 * (pred.detach() - target) / pred.numel()
    assert torch.allclose(pred.grad, authors, rtol=1e-12, atol=0)


def test_weights_broadcast_over_batch_and_channels():
    _, w = _ring_setup()
    gen = torch.Generator().manual_seed(1)
    pred, target = torch.rand(4, 3, 16, 16, generator=gen), torch.rand(4, 3, 16, 16, generator=gen)
    one = masked_l2(pred, target, w)
    assert torch.allclose(one, masked_l2(pred, target, w.expand(4, 1, 16, 16)))
    assert torch.allclose(one, masked_l2(pred, target, w.expand(4, 3, 16, 16)))


@pytest.mark.parametrize("args,exc,match", [
    ((torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 4), torch.ones(1, 1, 8, 8)), ValueError, "same shape"),
    ((torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.ones(2, 1, 8, 8)), ValueError, "weights must have shape"),
    ((torch.rand(3, 8, 8), torch.rand(3, 8, 8), torch.ones(1, 8, 8)), ValueError, r"pred must have shape \(B, C, H, W\)"),
    ((torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), -torch.ones(1, 1, 8, 8)), ValueError, "weights must be >= 0"),
    ((torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.zeros(1, 1, 8, 8)), ValueError, "weights are all zero"),
    ((torch.full((1, 3, 8, 8), float("nan")), torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8)), ValueError,
     "pred contains NaN"),
    ((torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8, dtype=torch.long)), TypeError,
     "weights must be a floating-point tensor"),
])
def test_masked_l2_errors(args, exc, match):
    with pytest.raises(exc, match=match):
        masked_l2(*args)
    with pytest.raises(ValueError, match="normalize must be one of"):
        masked_l2(torch.rand(1, 3, 8, 8), torch.rand(1, 3, 8, 8), torch.ones(1, 1, 8, 8), normalize="mean")


@pytest.mark.parametrize("normalize", NORMALIZATIONS)
def test_masked_l2_gradcheck(normalize):
    gen = torch.Generator().manual_seed(2)
    pred = torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 3, 5, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.rand(2, 1, 5, 5, generator=gen, dtype=torch.float64)
    weights[:, :, 0] = 0.0                                    # some zero weights
    assert torch.autograd.gradcheck(lambda p, t: masked_l2(p, t, weights, normalize=normalize), (pred, target))


# ------------------------------------------------------------------------------------ adversarial terms
def test_bce_values_by_hand():
    zeros = torch.zeros(4)
    assert generator_adversarial_bce(zeros).item() == pytest.approx(math.log(2))
    assert discriminator_bce(zeros, zeros).item() == pytest.approx(2 * math.log(2))
    logits = torch.tensor([0.0, 2.0, -3.0])
    # -log sigmoid(l) = log(1 + exp(-l))
    expected = sum(math.log1p(math.exp(-v)) for v in (0.0, 2.0, -3.0)) / 3
    assert generator_adversarial_bce(logits).item() == pytest.approx(expected)
    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.5, 2.0])
    # -log sigmoid(r) averaged over reals + -log(1 - sigmoid(f)) = log(1 + exp(f)) averaged over fakes
    d_expected = (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(-3.0))) / 2 + \
        (math.log1p(math.exp(-1.0)) + math.log1p(math.exp(0.5)) + math.log1p(math.exp(2.0))) / 3
    assert discriminator_bce(real, fake).item() == pytest.approx(d_expected)
    # equals BCE on probabilities where that is well defined (eq. 3 and 4 with D = sigmoid(logit))
    p_fake = torch.sigmoid(fake)
    assert generator_adversarial_bce(fake).item() == pytest.approx(-torch.log(p_fake).mean().item())
    assert discriminator_bce(real, fake).item() == pytest.approx(
        (-torch.log(torch.sigmoid(real)).mean() - torch.log(1 - p_fake).mean()).item())


def test_bce_with_logits_is_stable_for_confident_discriminators():
    confident = torch.tensor([-200.0, 200.0], requires_grad=True)
    loss = generator_adversarial_bce(confident)
    assert loss.item() == pytest.approx(100.0)               # softplus(200) / 2, no clamp at log(0)
    loss.backward()
    assert torch.isfinite(confident.grad).all() and confident.grad[0].item() == pytest.approx(-0.5)
    # the naive BCE(sigmoid) saturates: log(sigmoid(-200)) underflows and is clamped to -100
    naive = F.binary_cross_entropy(torch.sigmoid(torch.tensor([-200.0, 200.0])), torch.ones(2))
    assert naive.item() == pytest.approx(50.0)
    assert discriminator_bce(torch.tensor([1e4]), torch.tensor([-1e4])).item() == 0.0


def test_bce_errors():
    with pytest.raises(ValueError, match="d_fake_logits contains NaN"):
        generator_adversarial_bce(torch.tensor([float("nan")]))
    with pytest.raises(TypeError, match="d_real_logits must be a floating-point"):
        discriminator_bce(torch.tensor([1]), torch.tensor([0.0]))
    with pytest.raises(ValueError, match="d_fake_logits is empty"):
        discriminator_bce(torch.tensor([1.0]), torch.tensor([]))


def test_bce_gradcheck():
    gen = torch.Generator().manual_seed(3)
    real = torch.randn(5, generator=gen, dtype=torch.float64, requires_grad=True)
    fake = torch.randn(3, 1, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(discriminator_bce, (real, fake))
    assert torch.autograd.gradcheck(generator_adversarial_bce, (fake,))


# ------------------------------------------------------------------------------------ the joint CE loss
def test_ce_generator_loss_combines_the_terms():
    _, w = _ring_setup()
    target = torch.full((2, 3, 16, 16), 0.25)
    pred = target + 0.5
    logits = torch.tensor([0.0, 2.0])
    total, parts = ce_generator_loss(pred, target, w, logits)
    rec_unit = 372.0 / 192.0                                  # per image; the batch has 2x both sums
    adv = (math.log(2) + math.log1p(math.exp(-2.0))) / 2
    # default units="tanh": the L2 of the [-1, 1] images, 4x the [0, 1] value (the authors' range)
    assert parts["rec"].item() == pytest.approx(4 * rec_unit)
    assert parts["adv"].item() == pytest.approx(adv)
    assert total.item() == pytest.approx(0.999 * 4 * rec_unit + 0.001 * adv)
    assert parts["total"].item() == pytest.approx(total.item())
    assert all(not v.requires_grad for v in parts.values())
    total_u, parts_u = ce_generator_loss(pred, target, w, logits, units="unit", lambda_rec=0.5, lambda_adv=0.5)
    assert parts_u["rec"].item() == pytest.approx(rec_unit)
    assert total_u.item() == pytest.approx(0.5 * rec_unit + 0.5 * adv)
    # reconstruction only
    total_r, parts_r = ce_generator_loss(pred, target, w, None)
    assert parts_r["adv"].item() == 0.0 and total_r.item() == pytest.approx(0.999 * 4 * rec_unit)


def test_ce_generator_loss_checks():
    _, w = _ring_setup()
    x = torch.rand(1, 3, 16, 16)
    with pytest.raises(ValueError, match=r"pred must be in \[0, 1\]"):
        ce_generator_loss(x * 2 - 1, x, w, torch.zeros(1))
    with pytest.raises(ValueError, match="units must be"):
        ce_generator_loss(x, x, w, torch.zeros(1), units="pixels")
    with pytest.raises(ValueError, match="lambda_adv must be a number >= 0"):
        ce_generator_loss(x, x, w, torch.zeros(1), lambda_adv=-1.0)


def test_ce_generator_loss_gradcheck():
    gen = torch.Generator().manual_seed(4)
    pred = torch.rand(2, 3, 4, 4, generator=gen, dtype=torch.float64, requires_grad=True)
    target = torch.rand(2, 3, 4, 4, generator=gen, dtype=torch.float64)
    logits = torch.randn(2, generator=gen, dtype=torch.float64, requires_grad=True)
    weights = torch.ones(1, 1, 4, 4, dtype=torch.float64)
    weights[..., 1:3, 1:3] = 10.0
    assert torch.autograd.gradcheck(lambda p, l: ce_generator_loss(p, target, weights, l)[0], (pred, logits))


def test_half_precision_inputs_are_summed_in_float32():
    gen = torch.Generator().manual_seed(5)
    pred, target = torch.rand(4, 3, 64, 64, generator=gen), torch.rand(4, 3, 64, 64, generator=gen)
    w = overlap_weights(center_mask(128, 64), 4, 10.0)[:, :, 32:96, 32:96]
    full = masked_l2(pred, target, w)
    half = masked_l2(pred.bfloat16(), target.bfloat16(), w)
    assert half.dtype == torch.float32
    assert half.item() == pytest.approx(full.item(), rel=1e-2)    # only the bf16 rounding of the inputs
    assert generator_adversarial_bce(torch.zeros(3, dtype=torch.bfloat16)).dtype == torch.float32
    assert discriminator_bce(torch.zeros(3, dtype=torch.float16), torch.zeros(2)).dtype == torch.float32


# ------------------------------------------------------------------------------------ DeepFill v1 losses
def test_spatial_discount_weights_on_a_known_mask():
    from inpaint_utils.losses import spatial_discount_weights

    mask = torch.zeros(2, 1, 10, 10)
    mask[0, :, 2:8, 2:8] = 1                       # 6x6 hole: rings 0 (the border, weight 1), 1, 2
    mask[1, :, 0:3, 0:4] = 1                       # in the corner: the image border is not known
    w = spatial_discount_weights(mask, gamma=0.9)
    assert w.shape == mask.shape
    expected = torch.zeros(10, 10)
    for level, (lo, hi) in enumerate(((2, 8), (3, 7), (4, 6))):
        expected[lo:hi, lo:hi] = 0.9 ** level
    torch.testing.assert_close(w[0, 0], expected)
    assert float(w[0].sum()) == pytest.approx(20 * 1.0 + 12 * 0.9 + 4 * 0.81, abs=1e-5)
    assert float(w[0].max()) == 1.0                # v1: gamma ** 0 = 1 on the hole's border
    # corner hole: rings counted from the known pixels at row 3 / column 4 only
    rows, cols = torch.meshgrid(torch.arange(3), torch.arange(4), indexing="ij")
    dist = torch.minimum(3 - rows, 4 - cols).float() - 1
    torch.testing.assert_close(w[1, 0, :3, :4], 0.9 ** dist)
    assert float(w[1, 0, 3:].abs().sum() + w[1, 0, :, 4:].abs().sum()) == 0.0
    with pytest.raises(ValueError, match="no known pixel"):
        spatial_discount_weights(torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match="gamma"):
        spatial_discount_weights(mask, gamma=1.5)


def test_masked_l1_hand_values():
    from inpaint_utils.losses import masked_l1

    pred = torch.zeros(1, 3, 4, 4)
    target = torch.zeros(1, 3, 4, 4)
    target[..., 0, 0] = 0.5                        # |err| 0.5 on 3 elements of pixel (0, 0)
    target[..., 1, 1] = 1.0                        # |err| 1 on pixel (1, 1)
    weights = torch.zeros(1, 1, 4, 4)
    weights[..., 0, 0], weights[..., 1, 1], weights[..., 2, 2] = 2.0, 1.0, 1.0
    # elements: sum = 3 * (2 * 0.5 + 1 * 1) = 6 over 3 weighted pixels x 3 channels = 9 elements
    assert float(masked_l1(pred, target, weights)) == pytest.approx(6 / 9)
    assert float(masked_l1(pred, target, weights, normalize="weights")) == pytest.approx(6 / 12)
    assert float(masked_l1(pred, target, weights, normalize="sum")) == pytest.approx(6)


def test_wgan_losses_by_hand():
    from inpaint_utils.losses import wgan_critic_loss, wgan_generator_loss

    real, fake = torch.tensor([1.0, 3.0]), torch.tensor([-1.0, 0.0])
    assert float(wgan_critic_loss(real, fake)) == pytest.approx(-0.5 - 2.0)
    assert float(wgan_generator_loss(fake)) == pytest.approx(0.5)
    with pytest.raises(ValueError, match="NaN"):
        wgan_generator_loss(torch.tensor([float("nan")]))


def test_gradient_penalty_of_a_linear_critic():
    """D(x) = <w, x> has gradient w everywhere: the penalty is (||w|| - 1)^2 whatever the interpolates,
    and with a mask the norm covers the masked pixels only."""
    from inpaint_utils.losses import gradient_penalty

    g = torch.Generator().manual_seed(0)
    w = torch.randn(1, 3, 4, 4, generator=g, requires_grad=True)

    def critic(x):
        return (x * w).flatten(1).sum(dim=1)

    real, fake = torch.rand(5, 3, 4, 4, generator=g), torch.rand(5, 3, 4, 4, generator=g)
    gp = gradient_penalty(critic, real, fake, generator=torch.Generator().manual_seed(1))
    assert float(gp.detach()) == pytest.approx(float((w.detach().norm() - 1) ** 2), rel=1e-5)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1
    gp_masked = gradient_penalty(critic, real, fake, mask=mask, alpha=torch.full((5,), 0.3))
    expected = ((w.detach() ** 2 * mask).sum().sqrt() - 1) ** 2
    assert float(gp_masked.detach()) == pytest.approx(float(expected), rel=1e-5)
    # differentiable with respect to the critic's parameters: d/dw (||w|| - 1)^2 = 2 (||w|| - 1) w / ||w||
    (grad_w,) = torch.autograd.grad(gp, w)
    n = w.detach().norm()
    torch.testing.assert_close(grad_w, 2 * (n - 1) * w.detach() / n, rtol=1e-4, atol=1e-6)
    with pytest.raises(ValueError, match="scores of shape"):
        gradient_penalty(lambda x: x.sum(), real, fake)
    with pytest.raises(ValueError, match="alpha"):
        gradient_penalty(critic, real, fake, alpha=torch.zeros(3))


def test_gradient_penalty_of_a_quadratic_critic_uses_the_interpolates():
    """D(x) = sum(x^2) / 2 has gradient x: with alpha fixed the penalty is known in closed form."""
    from inpaint_utils.losses import gradient_penalty

    real, fake = torch.zeros(2, 1, 1, 2), torch.ones(2, 1, 1, 2)
    gp = gradient_penalty(lambda x: 0.5 * x.square().flatten(1).sum(dim=1), real, fake,
                          alpha=torch.tensor([0.5, 1.0]))
    # interpolates (0.5, 0.5) and (1, 1): gradient norms sqrt(0.5) and sqrt(2)
    expected = ((0.5 ** 0.5 - 1) ** 2 + (2 ** 0.5 - 1) ** 2) / 2
    assert float(gp.detach()) == pytest.approx(expected, rel=1e-5)


# ------------------------------------------------------------------ PConv loss, VGG-16 features (Liu et al. 2018)
from inpaint_utils.losses import (  # noqa: E402
    PCONV_LOSS_WEIGHTS,
    VGG16_FILENAME,
    VGG16Features,
    dilated_hole_tv,
    gram_matrix,
    pconv_loss,
    perceptual_loss,
    style_loss,
)


class _TwoScales(torch.nn.Module):
    """A stand-in feature network: the image itself and its 2x2 average (two 'layers')."""

    def forward(self, x):
        return [x, F.avg_pool2d(x, 2)]


def test_gram_matrix_against_a_loop():
    f = torch.randn(2, 3, 4, 5, dtype=torch.float64)
    g = gram_matrix(f)
    ref = torch.zeros(2, 3, 3, dtype=torch.float64)
    for b in range(2):
        for i in range(3):
            for j in range(3):
                ref[b, i, j] = (f[b, i] * f[b, j]).sum() / (3 * 4 * 5)
    assert g.shape == (2, 3, 3) and torch.allclose(g, ref)


def test_perceptual_and_style_losses_by_hand():
    a = [torch.zeros(1, 2, 2, 2), torch.zeros(1, 1, 1, 1)]
    b = [torch.ones(1, 2, 2, 2), torch.full((1, 1, 1, 1), 3.0)]
    assert math.isclose(float(perceptual_loss(a, b)), 1.0 + 3.0)              # mean |diff| per layer, summed
    # Gram of ones (C=2, HW=4): every entry 4 / (2 * 2 * 2) = 0.5; of the 1x1x1 map 9 / 1; zeros: 0
    assert math.isclose(float(style_loss(a, b)), 0.5 + 9.0)
    assert float(style_loss(b, b)) == 0.0
    with pytest.raises(ValueError, match="differ in shape"):
        perceptual_loss(a, [b[1], b[0]])


def test_dilated_hole_tv_against_a_loop():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 7, 8, generator=g, dtype=torch.float64)
    mask = torch.zeros(2, 1, 7, 8, dtype=torch.float64)
    mask[0, :, 2:4, 3:5] = 1
    mask[1, :, 0, 0] = 1
    region = torch.zeros_like(mask, dtype=torch.bool)                        # the 1-px (3x3) dilation, by hand
    for b in range(2):
        for i in range(7):
            for j in range(8):
                region[b, 0, i, j] = bool(mask[b, 0, max(i - 1, 0):i + 2, max(j - 1, 0):j + 2].any())
    total = 0.0
    for b in range(2):
        for i in range(7):
            for j in range(8):
                if j + 1 < 8 and region[b, 0, i, j] and region[b, 0, i, j + 1]:
                    total += float((x[b, :, i, j + 1] - x[b, :, i, j]).abs().sum())
                if i + 1 < 7 and region[b, 0, i, j] and region[b, 0, i + 1, j]:
                    total += float((x[b, :, i + 1, j] - x[b, :, i, j]).abs().sum())
    assert math.isclose(float(dilated_hole_tv(x, mask)), total / x.numel(), rel_tol=1e-12)


def test_pconv_loss_terms_by_hand_and_the_paper_weights():
    assert PCONV_LOSS_WEIGHTS == {"valid": 1.0, "hole": 6.0, "perceptual": 0.05, "style": 120.0, "tv": 0.1}
    g = torch.Generator().manual_seed(1)
    target = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64)
    pred = torch.rand(2, 3, 8, 8, generator=g, dtype=torch.float64) * 1.2 - 0.1   # unclamped output
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mask[:, :, 2:6, 1:4] = 1
    vgg = _TwoScales()
    total, parts = pconv_loss(pred, target, mask, vgg)
    n = target.numel()
    diff = (pred - target).abs()
    assert math.isclose(float(parts["hole"]), float((diff * mask).sum()) / n, rel_tol=1e-12)   # / N_Igt, not the hole
    assert math.isclose(float(parts["valid"]), float((diff * (1 - mask)).sum()) / n, rel_tol=1e-12)
    comp = mask * pred + (1 - mask) * target
    perc = perceptual_loss(vgg(pred), vgg(target)) + perceptual_loss(vgg(comp), vgg(target))
    assert math.isclose(float(parts["perceptual"]), float(perc), rel_tol=1e-12)
    assert math.isclose(float(parts["style_out"]), float(style_loss(vgg(pred), vgg(target))), rel_tol=1e-12)
    assert math.isclose(float(parts["style_comp"]), float(style_loss(vgg(comp), vgg(target))), rel_tol=1e-12)
    assert math.isclose(float(parts["tv"]), float(dilated_hole_tv(comp, mask)), rel_tol=1e-12)
    want = (parts["valid"] + 6 * parts["hole"] + 0.05 * parts["perceptual"]
            + 120 * (parts["style_out"] + parts["style_comp"]) + 0.1 * parts["tv"])
    assert math.isclose(float(total), float(want), rel_tol=1e-12) and float(parts["total"]) == float(total)
    only_hole, _ = pconv_loss(pred, target, mask, vgg, weights={"valid": 0, "perceptual": 0, "style": 0, "tv": 0})
    assert math.isclose(float(only_hole), 6 * float(parts["hole"]), rel_tol=1e-12)
    # a perfect prediction: every term 0 but the TV of the (true) hole region
    perfect, pparts = pconv_loss(target, target, mask, vgg)
    assert all(float(pparts[k]) == 0.0 for k in ("valid", "hole", "perceptual", "style_out", "style_comp"))
    assert math.isclose(float(perfect), 0.1 * float(dilated_hole_tv(target, mask)), rel_tol=1e-12) and float(perfect) > 0
    with pytest.raises(ValueError, match="unknown loss weights"):
        pconv_loss(pred, target, mask, vgg, weights={"adv": 1.0})
    with pytest.raises(ValueError, match="binary"):
        pconv_loss(pred, target, mask * 0.5, vgg)


def test_pconv_loss_gradcheck():
    g = torch.Generator().manual_seed(2)
    target = torch.rand(1, 3, 4, 4, generator=g, dtype=torch.float64)
    pred = (target + 0.3 * torch.randn(1, 3, 4, 4, generator=g, dtype=torch.float64)).requires_grad_(True)
    mask = torch.zeros(1, 1, 4, 4, dtype=torch.float64)
    mask[..., 1:3, 1:3] = 1
    assert torch.autograd.gradcheck(lambda p: pconv_loss(p, target, mask, _TwoScales())[0], (pred,))


def test_vgg16_features_layers_names_and_normalisation(tmp_path):
    from torchvision.models.vgg import cfgs, make_layers

    vgg = VGG16Features("random", seed=0)
    x = torch.rand(2, 3, 32, 32)
    feats = vgg(x)
    assert [tuple(f.shape) for f in feats] == [(2, 64, 16, 16), (2, 128, 8, 8), (2, 256, 4, 4)]
    assert all(not p.requires_grad for p in vgg.parameters())
    # torchvision's vgg16().features[:17] has the same names and shapes: its state dict loads
    tv = make_layers(cfgs["D"][:10])                                       # = vgg16().features[:17]
    assert len(tv) == 17
    ours = {k.removeprefix("features."): v.shape for k, v in vgg.state_dict().items()}
    assert ours == {k: v.shape for k, v in tv.state_dict().items()}
    tv.load_state_dict({k.removeprefix("features."): v for k, v in vgg.state_dict().items()})
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    with torch.no_grad():
        ref = tv((x - mean) / std)                                          # pool3 of ImageNet-normalised input
    assert torch.allclose(feats[2], ref, atol=1e-5)
    # offline from a file (a torchvision-style state dict with every vgg16 key; the classifier is ignored)
    state = {k: v.clone() for k, v in vgg.state_dict().items()}
    state["classifier.0.weight"] = torch.zeros(1)
    path = tmp_path / VGG16_FILENAME
    torch.save(state, path)
    for weights in (path, tmp_path):
        loaded = VGG16Features(weights)
        assert loaded.weights_source == str(path)
        assert torch.equal(loaded(x)[1], feats[1])
    torch.save({"features.0.weight": torch.zeros(64, 3, 3, 3)}, tmp_path / "bad.pth")
    with pytest.raises(ValueError, match="lack"):
        VGG16Features(tmp_path / "bad.pth")


# ------------------------------------------------ the feature network: VGG-16, or SqueezeNet 1.1 offline
@pytest.fixture
def no_weights_here(tmp_path, monkeypatch):
    """Offline, with an empty shared folder and torch cache and no weights variables: nothing is found."""
    monkeypatch.setenv("INPAINT_OFFLINE", "1")
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    for var in ("INPAINT_VGG16", "INPAINT_LPIPS"):
        monkeypatch.delenv(var, raising=False)
    return tmp_path / "shared"


def test_squeezenet_features_are_torchvisions_at_conv1_fire3_fire5(tmp_path, squeeze_stand_in):
    from torchvision.models import squeezenet1_1

    from inpaint_utils.losses import SqueezeNetFeatures

    path = squeeze_stand_in(tmp_path)                                  # random weights, torchvision's keys
    ours = SqueezeNetFeatures(path)
    assert ours.network_name == "squeeze" and ours.weights_source == str(path)
    assert all(not p.requires_grad for p in ours.parameters())
    ref = squeezenet1_1(weights=None).features.eval()
    state = {k.removeprefix("features."): torch.from_numpy(v) for k, v in np.load(path).items()}
    ref.load_state_dict(state)
    x = torch.rand(2, 3, 64, 48, generator=torch.Generator().manual_seed(0))
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    want, h = [], (x - mean) / std
    with torch.no_grad():
        for i, layer in enumerate(ref):
            h = layer(h)
            if i in (1, 4, 7):                                         # conv1's ReLU, fire3, fire5
                want.append(h.clone())
        got = ours(x)
    # the widths of VGG-16's pool1-3 at about 1/2, 1/4, 1/8 of the side (no padding: 64 -> 31, 15, 7)
    assert [tuple(f.shape) for f in got] == [(2, 64, 31, 23), (2, 128, 15, 11), (2, 256, 7, 5)]
    assert all(torch.allclose(a, b, atol=1e-5) for a, b in zip(got, want))
    # the LPIPS model's file (keys net.sliceN.*) holds the same backbone
    lpips_file = squeeze_stand_in(tmp_path / "lpips", lpips_keys=True)
    assert all(torch.equal(a, b) for a, b in zip(SqueezeNetFeatures(lpips_file)(x), got))
    np.savez(tmp_path / "bad.npz", **{"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)})
    with pytest.raises(ValueError, match="lack"):
        SqueezeNetFeatures(tmp_path / "bad.npz")


def test_auto_takes_the_offline_substitute_when_vgg16_is_absent(no_weights_here, squeeze_stand_in):
    from inpaint_utils.losses import SqueezeNetFeatures, feature_network
    from inpaint_utils.pretrained import choose_feature_network

    path = squeeze_stand_in(no_weights_here)                           # the shared folder's backbone .npz
    said = []
    net = feature_network("auto", say=said.append)
    assert isinstance(net, SqueezeNetFeatures) and net.network_name == "squeeze"
    assert net.weights_source == str(path)
    assert len(said) == 1 and "features auto -> squeeze" in said[0] and "not the paper's VGG-16" in said[0]
    assert "INPAINT_OFFLINE is set" in said[0] and VGG16_FILENAME in said[0]
    assert choose_feature_network("auto")[0] == "squeeze"
    assert choose_feature_network("vgg16") == ("vgg16", "asked for")      # asked for: no fall-back
    with pytest.raises(FileNotFoundError, match="VGG-16 ImageNet weights not found"):
        feature_network("vgg16")
    with pytest.raises(ValueError, match="features must be one of"):
        feature_network("alexnet")


def test_auto_takes_vgg16_from_a_stand_in_file_at_the_papers_layers(no_weights_here, squeeze_stand_in, tmp_path,
                                                                    monkeypatch):
    from inpaint_utils.losses import feature_network

    squeeze_stand_in(no_weights_here)                                  # both here: VGG-16 wins
    state = {k: v.clone() for k, v in VGG16Features("random", seed=3).state_dict().items()}
    state["classifier.6.weight"] = torch.zeros(1000, 4096)             # the rest of torchvision's file, ignored
    path = tmp_path / VGG16_FILENAME
    torch.save(state, path)
    monkeypatch.setenv("INPAINT_VGG16", str(path))
    said = []
    net = feature_network("auto", say=said.append)
    assert isinstance(net, VGG16Features) and net.network_name == "vgg16" and net.weights_source == str(path)
    assert "features auto -> vgg16" in said[0] and str(path) in said[0]
    x = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    shapes = [tuple(f.shape) for f in net(x)]
    assert shapes == [(2, 64, 32, 32), (2, 128, 16, 16), (2, 256, 8, 8)]     # pool1, pool2, pool3
    assert torch.equal(net(x)[2], VGG16Features("random", seed=3)(x)[2])     # the file's weights, not others
    # a given INPAINT_VGG16 that names no file is an error, never a silent switch to SqueezeNet
    monkeypatch.setenv("INPAINT_VGG16", str(tmp_path / "nowhere.pth"))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        feature_network("auto", say=None)


def test_the_missing_weights_message_when_neither_network_is_here(no_weights_here):
    from inpaint_utils.losses import feature_network
    from inpaint_utils.pretrained import LPIPS_FILENAME, SQUEEZENET_FEATURES_FILENAME, SQUEEZENET_FILENAME

    with pytest.raises(FileNotFoundError) as err:
        feature_network("auto", say=None)
    message = str(err.value)
    assert len(message.splitlines()) == 1 and message.startswith("An ImageNet feature network")
    for part in (VGG16_FILENAME, "INPAINT_VGG16", SQUEEZENET_FEATURES_FILENAME, LPIPS_FILENAME, SQUEEZENET_FILENAME,
                 "INPAINT_LPIPS", "INPAINT_OFFLINE is set", str(no_weights_here / "weights" / "lpips_squeeze")):
        assert part in message, part
    with pytest.raises(FileNotFoundError, match="^SqueezeNet 1.1 ImageNet weights not found: ") as err:
        feature_network("squeeze")
    assert "--features vgg16" in str(err.value)


def test_vgg16_offline_fails_fast_with_what_to_download(tmp_path, monkeypatch):
    import time

    monkeypatch.setenv("INPAINT_OFFLINE", "1")
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INPAINT_VGG16", raising=False)
    start = time.monotonic()
    with pytest.raises(FileNotFoundError) as err:
        VGG16Features()
    assert time.monotonic() - start < 2.0
    message = str(err.value)
    assert VGG16_FILENAME in message and "INPAINT_VGG16" in message and "INPAINT_OFFLINE is set" in message
    monkeypatch.setenv("INPAINT_VGG16", str(tmp_path / "nowhere.pth"))
    with pytest.raises(FileNotFoundError, match="nowhere.pth"):
        VGG16Features()
    with pytest.raises(TypeError, match="weights must be"):
        VGG16Features(weights=3)
