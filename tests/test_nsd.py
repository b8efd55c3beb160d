"""Tests of the NSD (the cascade CE paper, section 3) in inpaint_utils.metrics: a plain double-loop reference,
Definition 3.2's pairwise form, the limits (latent ignores the mask -> 0, pure noise -> ~1),
standardisation, gradcheck, the batched nsd() over images x masks, and bad input."""
import math

import numpy as np
import pytest
import torch

from inpaint_utils.masks import center_mask, make_input, make_mask
from inpaint_utils.metrics import nsd, nsd_from_latents
from inpaint_utils.models import ContextEncoderConfig, ContextEncoderGenerator


def reference_nsd(latents: np.ndarray, standardize: bool) -> np.ndarray:
    """Plain loops over images j and masks i: 1/(D n) sum_i ||E(P_j, M_i) - Z_j||^2."""
    k, n, d = latents.shape
    x = latents.astype(np.float64)
    if standardize:
        flat = x.reshape(k * n, d)
        x = (x - flat.mean(axis=0)) / flat.std(axis=0)       # population std over all k n latents
    out = np.zeros(k)
    for j in range(k):
        z_bar = sum(x[j, i] for i in range(n)) / n
        for i in range(n):
            out[j] += float(np.sum((x[j, i] - z_bar) ** 2))
        out[j] /= d * n
    return out


def pairwise_nsd(latents: torch.Tensor) -> torch.Tensor:
    """Definition 3.2 with the n^2 estimator: NSD_j = 1/(2D) * 1/n^2 sum_{i,i'} ||E_i - E_i'||^2."""
    k, n, d = latents.shape
    diff = latents[:, :, None, :] - latents[:, None, :, :]    # (k, n, n, D)
    return diff.square().sum(dim=(1, 2, 3)) / (n * n) / (2 * d)


@pytest.mark.parametrize("standardize", [True, False])
@pytest.mark.parametrize("shape", [(2, 2, 1), (3, 5, 7), (6, 4, 32)])
def test_matches_the_double_loop_reference(standardize, shape):
    gen = torch.Generator().manual_seed(sum(shape))
    # dimensions on very different scales and offsets, as real encoders produce
    latents = torch.randn(*shape, generator=gen) * torch.logspace(-2, 2, shape[-1]) + 3.0
    got = nsd_from_latents(latents, standardize=standardize)
    want = reference_nsd(latents.numpy(), standardize)
    assert got.shape == (shape[0],) and got.dtype == torch.float64
    assert np.allclose(got.numpy(), want, rtol=1e-6, atol=1e-9)


def test_equals_definition_3_2_pairwise_form():
    gen = torch.Generator().manual_seed(0)
    latents = torch.randn(4, 9, 11, generator=gen, dtype=torch.float64)
    assert torch.allclose(nsd_from_latents(latents, standardize=False), pairwise_nsd(latents), rtol=1e-12)


def test_latents_that_ignore_the_mask_give_zero():
    gen = torch.Generator().manual_seed(1)
    per_image = torch.randn(5, 1, 16, generator=gen)                  # one latent per image
    latents = per_image.expand(5, 8, 16)                               # the same for all 8 masks
    assert torch.equal(nsd_from_latents(latents), torch.zeros(5, dtype=torch.float64))
    assert torch.equal(nsd_from_latents(latents, standardize=False), torch.zeros(5, dtype=torch.float64))


def test_pure_noise_gives_about_one():
    k, n, d = 60, 25, 40
    gen = torch.Generator().manual_seed(2)
    noise = torch.randn(k, n, d, generator=gen)
    # standardised: mean_j NSD_j = within / total variance per dimension; expectation k(n-1)/(kn-1)
    value = nsd_from_latents(noise, standardize=True).mean().item()
    assert value == pytest.approx(k * (n - 1) / (k * n - 1), abs=0.01) and value > 0.94
    # raw estimator on N(0, I) latents (the paper's assumption): expectation (n - 1) / n
    assert nsd_from_latents(noise, standardize=False).mean().item() == pytest.approx((n - 1) / n, abs=0.01)
    # noise of any scale: standardising brings it back to ~1; the raw estimator does not
    assert nsd_from_latents(noise * 50 + 7, standardize=True).mean().item() == pytest.approx(value, abs=1e-9)
    assert nsd_from_latents(noise * 50, standardize=False).mean().item() > 2000


def test_standardized_nsd_is_affine_invariant_and_bounded():
    gen = torch.Generator().manual_seed(3)
    latents = torch.randn(7, 6, 10, generator=gen, dtype=torch.float64)
    latents = latents + 2 * torch.randn(7, 1, 10, generator=gen, dtype=torch.float64)   # an image effect
    scale = torch.linspace(-3, 5, 10, dtype=torch.float64)
    scale[scale.abs() < 0.1] = 1.0
    shift = torch.randn(10, generator=gen, dtype=torch.float64)
    base = nsd_from_latents(latents, standardize=True)
    assert torch.allclose(nsd_from_latents(latents * scale + shift, standardize=True), base, rtol=1e-10)
    assert 0.0 < base.mean().item() < 1.0
    # a constant dimension carries no information and is left out
    padded = torch.cat([latents, torch.full((7, 6, 3), 4.2, dtype=torch.float64)], dim=2)
    assert torch.allclose(nsd_from_latents(padded, standardize=True), base, rtol=1e-12)
    with pytest.raises(ValueError, match="every latent dimension is constant"):
        nsd_from_latents(torch.ones(3, 4, 5), standardize=True)
    # the raw estimator keeps constant dimensions in D
    assert torch.allclose(nsd_from_latents(padded, standardize=False),
                          nsd_from_latents(latents, standardize=False) * 10 / 13, rtol=1e-12)


@pytest.mark.parametrize("standardize", [True, False])
def test_gradcheck(standardize):
    gen = torch.Generator().manual_seed(4)
    latents = torch.randn(3, 4, 5, generator=gen, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda x: nsd_from_latents(x, standardize=standardize), (latents,))


@pytest.mark.parametrize("bad,exc,match", [
    (torch.rand(4, 5), ValueError, r"latents must have shape \(k images, n masks, D\)"),
    (torch.rand(4, 1, 5), ValueError, r"at least 2 masks per image \(n >= 2\), got n = 1"),
    (torch.rand(0, 3, 5), ValueError, "at least one image and one dimension"),
    (torch.ones(2, 3, 4, dtype=torch.long), TypeError, "latents must be a float tensor"),
    (torch.full((2, 3, 4), float("nan")), ValueError, "latents contain NaN or inf"),
    ([[[1.0]]], TypeError, "latents must be a torch.Tensor"),
])
def test_bad_latents(bad, exc, match):
    with pytest.raises(exc, match=match):
        nsd_from_latents(bad)


def test_one_image_is_refused_when_standardising_and_kept_raw():
    gen = torch.Generator().manual_seed(7)
    signal, noise = torch.zeros(1, 4, 3), torch.randn(1, 4, 3, generator=gen, dtype=torch.float64)
    signal[0, 0] = 1.0                                             # one mask moves the latent, the others do not
    for latents in (signal, noise):                                # standardised, both would read 1.0
        with pytest.raises(ValueError, match=r"at least 2 images \(k >= 2\), got k = 1.*standardize=False"):
            nsd_from_latents(latents, standardize=True)
    raw = nsd_from_latents(noise)                                  # the default: the paper's raw estimator
    assert np.allclose(raw.numpy(), reference_nsd(noise.numpy(), False), rtol=1e-9)
    with pytest.raises(ValueError, match=r"at least 2 images \(k >= 2\)"):
        nsd(lambda x: pytest.fail("encoded before the check"), torch.rand(1, 3, 16, 16),
            make_mask("square", 16, 0.2, batch=3, seed=0), progress=False, standardize=True)


# ------------------------------------------------------------------------------------ nsd()
def _stacked_latents(encode_fn, images, masks, fill):
    """The (k, n, D) latents built pair by pair, for comparison."""
    return torch.stack([torch.stack([encode_fn(make_input(images[j:j + 1], masks[i:i + 1], fill=fill))[0]
                                     for i in range(masks.shape[0])]) for j in range(images.shape[0])])


@pytest.mark.parametrize("batch_size", [1, 5, 7, 1000])
def test_nsd_matches_nsd_from_latents(batch_size):
    gen = torch.Generator().manual_seed(5)
    images = torch.rand(4, 3, 32, 32, generator=gen)
    masks = make_mask("blocks", 32, 0.25, batch=6, seed=6)
    encode = lambda x: torch.nn.functional.avg_pool2d(x, 4).flatten(1)          # (B, 3 * 8 * 8)
    result = nsd(encode, images, masks, fill=0.5, batch_size=batch_size, progress=False)
    want = nsd_from_latents(_stacked_latents(encode, images, masks, 0.5))
    assert torch.allclose(result["per_image"], want, rtol=1e-6, atol=1e-9)
    assert result["mean"] == pytest.approx(want.mean().item(), rel=1e-6)
    assert result["std"] == pytest.approx(want.std().item(), rel=1e-6)
    assert (result["k"], result["n"], result["D"]) == (4, 6, 192)
    assert result["per_image"].shape == (4,) and result["per_image"].device.type == "cpu"
    raw = nsd(encode, images, masks, fill=0.5, batch_size=batch_size, progress=False, standardize=False)
    assert torch.allclose(raw["per_image"], nsd_from_latents(_stacked_latents(encode, images, masks, 0.5),
                                                             standardize=False), rtol=1e-6)


def test_nsd_of_an_encoder_that_ignores_the_hole_is_zero():
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    masks = torch.cat([center_mask(32, s) for s in (8, 12, 16)])                 # never touch the corner
    corner = lambda x: x[:, :, :4, :4].flatten(1)
    result = nsd(corner, images, masks, progress=False)
    assert result["mean"] == 0.0 and result["std"] == 0.0 and result["D_used"] == 48


def test_nsd_of_an_encoder_that_returns_noise_is_about_one():
    gen = torch.Generator().manual_seed(8)
    noise = lambda x: torch.randn(x.shape[0], 30, generator=gen)
    images = torch.rand(40, 3, 16, 16)
    masks = make_mask("square", 16, 0.25, batch=20, seed=9)
    result = nsd(noise, images, masks, batch_size=64, progress=False)
    assert result["mean"] == pytest.approx(40 * 19 / (40 * 20 - 1), abs=0.015)


def test_nsd_with_mask_passes_the_mask():
    images = torch.rand(2, 3, 16, 16)
    masks = torch.cat([center_mask(16, 4), center_mask(16, 8), center_mask(16, 12)])
    seen = []

    def encode(masked_input, mask):
        seen.append(mask.sum(dim=(1, 2, 3)))
        return mask.flatten(1) + masked_input.mean(dim=(1, 2, 3))[:, None]

    result = nsd(encode, images, masks, with_mask=True, batch_size=4, progress=False)
    assert torch.cat(seen).tolist() == [16.0, 64.0, 144.0] * 2
    assert result["mean"] > 0


def test_nsd_of_the_tiny_context_encoder():
    cfg = ContextEncoderConfig.tiny(image_size=64)
    g = ContextEncoderGenerator(cfg, seed=0).eval()
    images = torch.rand(3, 3, 64, 64, generator=torch.Generator().manual_seed(10))
    masks = make_mask("blocks", 64, 0.25, batch=5, seed=11)
    result = nsd(g.encode, images, masks, fill=cfg.fill, batch_size=8, progress=False)
    assert result["D"] == cfg.latent_dim == 100 and result["per_image"].shape == (3,)
    assert 0.0 < result["mean"] < 1.0
    want = nsd_from_latents(_stacked_latents(g.encode, images, masks, cfg.fill))
    assert torch.allclose(result["per_image"], want, rtol=1e-5)


def test_nsd_bad_input():
    images, masks = torch.rand(2, 3, 16, 16), make_mask("square", 16, 0.2, batch=3, seed=0)
    flat = lambda x: x.flatten(1)
    with pytest.raises(ValueError, match=r"at least 2 masks \(n >= 2\)"):
        nsd(flat, images, masks[:1], progress=False)
    with pytest.raises(ValueError, match=r"masks has size \(16, 16\) \(H, W\) but the image is \(32, 32\)"):
        nsd(flat, torch.rand(2, 3, 32, 32), masks, progress=False)
    with pytest.raises(ValueError, match=r"images must be in \[0, 1\]"):
        nsd(flat, images * 3, masks, progress=False)
    with pytest.raises(ValueError, match="batch_size must be a positive int"):
        nsd(flat, images, masks, batch_size=0, progress=False)
    with pytest.raises(TypeError, match="encode_fn must be callable"):
        nsd("encoder", images, masks, progress=False)
    with pytest.raises(ValueError, match=r"encode_fn must return a tensor \(B, D\) with B = 3 rows"):
        nsd(lambda x: x[:1].flatten(1), images, masks, batch_size=3, progress=False)
    with pytest.raises(ValueError, match="encode_fn returned NaN"):
        nsd(lambda x: x.flatten(1) * math.nan, images, masks, progress=False)


def test_the_default_is_the_papers_raw_estimator():
    # the cascade CE paper's 0.79 / 0.56 are the raw estimator; standardising is our variant and must be asked for
    latents = torch.randn(3, 5, 4, generator=torch.Generator().manual_seed(11), dtype=torch.float64) * 7
    raw = nsd_from_latents(latents, standardize=False)
    assert torch.equal(nsd_from_latents(latents), raw)
    assert not torch.allclose(raw, nsd_from_latents(latents, standardize=True))
    images = torch.rand(3, 3, 16, 16, generator=torch.Generator().manual_seed(12))
    masks = make_mask("square", 16, 0.25, batch=4, seed=13)
    encode = lambda x: 5 * x.flatten(1)
    assert nsd(encode, images, masks, progress=False)["mean"] == \
        pytest.approx(nsd(encode, images, masks, progress=False, standardize=False)["mean"])
