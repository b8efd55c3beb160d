"""Tests of inpaint_utils.models.deepfill: the contextual attention layer against a plain per-sample
reference written here (loops, conv2d / conv_transpose2d), a synthetic copy-paste case whose offsets
are known, masking (hole patches never attended), gradients, fallback and errors; the generator and
critics (shapes, parameter counts worked out from v1's layer list), predict_full's composite, the
batched local crops, the training schedule (5 critic updates, each on a new batch with a new generator pass, then the
generator; through the loop and across a resume), a short training
run that lowers the L1 loss, and a checkpoint round trip."""
import pytest
import torch
import torch.nn.functional as F

from inpaint_utils.masks import make_mask
from inpaint_utils.models import MODELS, build_model, count_parameters
from inpaint_utils.models.deepfill import (
    ContextualAttention,
    DeepFillConfig,
    DeepFillCritic,
    DeepFillGenerator,
    DeepFillTask,
    attention_coherence,
    contextual_attention,
    contextual_attention_weights,
    crop_patches,
    hole_boxes,
)


# ------------------------------------------------------------------------------ reference layer
def reference_contextual_attention(fg, bg, mask, ksize=3, stride=1, rate=2, fuse_k=3, scale=10.0):
    """Contextual attention one sample at a time, written the plain way: background patches become
    conv2d filters, the foreground patch norms come from a convolution with ones, the propagation is a
    double loop over positions, the softmax runs on the list of known patches, and the paste is a
    conv_transpose2d divided by the overlap count of a conv_transpose2d of ones."""
    outs, offs = [], []
    p, q, k_raw = ksize // 2, fuse_k // 2, rate * ksize
    mask = mask.expand(fg.shape[0], -1, -1, -1)
    for i in range(fg.shape[0]):
        f = fg[i:i + 1, :, ::rate, ::rate]                                    # (1, C, h, w)
        b = bg[i:i + 1, :, ::rate, ::rate]
        m = F.max_pool2d(mask[i:i + 1], rate)                                 # (1, 1, h, w)
        c, h, w = f.shape[1:]
        # background patches as filters (L, C, k, k), normalised
        filt = F.unfold(b, ksize, padding=p, stride=stride)[0].T.reshape(-1, c, ksize, ksize)
        n_b = filt.flatten(1).norm(dim=1).clamp_min(1e-4)
        filt = filt / n_b.view(-1, 1, 1, 1)
        hb, wb = (h - 1) // stride + 1, (w - 1) // stride + 1
        scores = F.conv2d(f, filt, padding=p)[0]                              # (L, h, w)
        n_f = F.conv2d(f.square(), torch.ones(1, c, ksize, ksize, dtype=f.dtype), padding=p)[0, 0].sqrt()
        scores = scores / n_f.clamp_min(1e-4)
        valid = F.unfold(m, ksize, padding=p, stride=stride)[0].amax(dim=0) == 0   # (L,)
        s = (scores * valid.view(-1, 1, 1)).permute(1, 2, 0).reshape(h, w, hb, wb)
        if fuse_k > 1:
            for axis in ("x", "y"):
                new = torch.zeros_like(s)
                for a in range(w if axis == "x" else h):
                    for a2 in range(wb if axis == "x" else hb):
                        for j in range(-q, q + 1):
                            if 0 <= a + j < (w if axis == "x" else h) and 0 <= a2 + j < (wb if axis == "x" else hb):
                                if axis == "x":
                                    new[:, a, :, a2] += s[:, a + j, :, a2 + j]
                                else:
                                    new[a, :, a2, :] += s[a + j, :, a2 + j, :]
                s = new
        s = s.reshape(h * w, hb * wb)
        attn = torch.zeros_like(s)
        if valid.any():
            attn[:, valid] = torch.softmax(scale * s[:, valid], dim=1)
        # paste with the full-resolution patches
        raw = F.unfold(bg[i:i + 1], k_raw, padding=rate * p, stride=rate * stride)[0].T.reshape(-1, c, k_raw, k_raw)
        a_map = attn.T.reshape(1, hb * wb, h, w)
        out = F.conv_transpose2d(a_map, raw, stride=rate, padding=rate * p)
        count = F.conv_transpose2d(torch.ones(1, 1, h, w, dtype=fg.dtype), torch.ones(1, 1, k_raw, k_raw, dtype=fg.dtype),
                                   stride=rate, padding=rate * p)
        outs.append(out / count)
        idx = attn.argmax(dim=1)
        off = torch.zeros(2, h, w, dtype=torch.long)
        if valid.any():
            for y in range(h):
                for x in range(w):
                    j = int(idx[y * w + x])
                    off[0, y, x] = (j // wb) * stride - y
                    off[1, y, x] = (j % wb) * stride - x
        offs.append(off)
    return torch.cat(outs), torch.stack(offs)


def _masks_per_sample(size, dtype=torch.float32):
    """Three different holes (one per sample) and a fourth sample that is all hole (no known patch)."""
    m = torch.zeros(4, 1, size, size, dtype=dtype)
    m[0, :, 2:9, 3:10] = 1
    m[1, :, size // 2:, :size // 3] = 1
    m[2, :, 5:7, size - 6:size - 1] = 1
    m[3] = 1
    return m


@pytest.mark.parametrize("fuse_k", [1, 3])
@pytest.mark.parametrize("rate", [1, 2])
@pytest.mark.parametrize("stride", [1, 2])
def test_batched_layer_equals_the_per_sample_reference(fuse_k, rate, stride):
    g = torch.Generator().manual_seed(fuse_k + 10 * rate + 100 * stride)
    size = 16
    fg = torch.randn(4, 5, size, size, generator=g)
    bg = torch.randn(4, 5, size, size, generator=g)
    mask = _masks_per_sample(size)
    out, off = contextual_attention(fg, bg, mask, rate=rate, fuse_k=fuse_k, stride=stride)
    ref_out, ref_off = reference_contextual_attention(fg, bg, mask, rate=rate, fuse_k=fuse_k, stride=stride)
    assert out.shape == fg.shape and off.shape == (4, 2, size // rate, size // rate) and off.dtype == torch.long
    torch.testing.assert_close(out, ref_out, atol=1e-5, rtol=1e-5)
    assert torch.equal(off, ref_off)
    # per-sample masks matter: running each sample alone gives the same rows
    for i in range(4):
        alone, alone_off = contextual_attention(fg[i:i + 1], bg[i:i + 1], mask[i:i + 1], rate=rate, fuse_k=fuse_k,
                                                stride=stride)
        torch.testing.assert_close(alone, out[i:i + 1], atol=1e-5, rtol=1e-5)
        assert torch.equal(alone_off, off[i:i + 1])


def test_the_faster_layer_equals_the_patch_formulation_on_feature_like_inputs():
    """Issue 23: at stride 1 the layer matches with a C-deep product of the pixels summed along diagonals and
    pastes with one product per phase; on ReLU features (many exact zeros, as DeepFill's) of 16 channels at
    32 x 32, with square holes of a quarter of the map, its output equals the plain patch-product reference
    to 1e-5 and its offsets exactly."""
    g = torch.Generator().manual_seed(23)
    fg = torch.randn(3, 16, 32, 32, generator=g).relu()
    mask = make_mask("square", 32, 0.25, batch=3, generator=g)
    out, off = contextual_attention(fg, fg, mask)
    ref_out, ref_off = reference_contextual_attention(fg, fg, mask)
    assert float((out - ref_out).abs().max()) < 1e-5
    assert torch.equal(off, ref_off)


def test_float64_and_one_mask_for_the_batch():
    g = torch.Generator().manual_seed(3)
    fg = torch.randn(3, 4, 16, 16, generator=g, dtype=torch.float64)
    bg = torch.randn(3, 4, 16, 16, generator=g, dtype=torch.float64)
    mask = _masks_per_sample(16, torch.float64)[:1]                          # (1, 1, H, W) broadcast
    out, off = contextual_attention(fg, bg, mask)
    ref_out, ref_off = reference_contextual_attention(fg, bg, mask)
    assert out.dtype == torch.float64
    torch.testing.assert_close(out, ref_out, atol=1e-10, rtol=1e-10)
    assert torch.equal(off, ref_off)


# ------------------------------------------------------------------------------ known attention
def test_hole_content_equal_to_a_known_patch_is_found():
    """Copy a 6x6 block (downscaled cells) of random features from A to B, make B the hole: every hole
    cell of B's interior attends A, so its offset is A - B, and the output there reproduces the copy."""
    g = torch.Generator().manual_seed(0)
    rate, size = 2, 32                                                        # 16x16 cells
    feat = torch.randn(1, 16, size, size, generator=g)
    a, b = (2, 3), (9, 8)                                                     # cell coordinates (y, x)
    n = 6
    block = feat[..., a[0] * rate:(a[0] + n) * rate, a[1] * rate:(a[1] + n) * rate].clone()
    feat[..., b[0] * rate:(b[0] + n) * rate, b[1] * rate:(b[1] + n) * rate] = block
    mask = torch.zeros(1, 1, size, size)
    mask[..., b[0] * rate:(b[0] + n) * rate, b[1] * rate:(b[1] + n) * rate] = 1
    for fuse_k in (1, 3):
        out, off = contextual_attention(feat, feat, mask, rate=rate, fuse_k=fuse_k)
        inner = off[0, :, b[0] + 1:b[0] + n - 1, b[1] + 1:b[1] + n - 1]        # cells whose 3x3 patch lies in B
        assert (inner[0] == a[0] - b[0]).all() and (inner[1] == a[1] - b[1]).all(), inner
        # output in B's centre (pixels covered only by pastes of cells matched inside the copy): the copy,
        # up to the softmax's leak to other patches (cosine 1 vs ~0 at scale 10: ~2 % without propagation,
        # nothing measurable with it, where the propagated score of the match is 9)
        y0, x0 = (b[0] + 2) * rate, (b[1] + 2) * rate
        got, want = out[..., y0:y0 + 2 * rate, x0:x0 + 2 * rate], feat[..., y0:y0 + 2 * rate, x0:x0 + 2 * rate]
        if fuse_k == 3:
            torch.testing.assert_close(got, want, atol=1e-4, rtol=0)
        else:
            assert float((got - want).abs().max()) < 0.1 * float(want.abs().max())


def test_propagation_prefers_coherent_neighbourhoods():
    """Two candidate copies of a hole cell's own 3x3 patch: one alone, one whose neighbours also match.
    Without propagation the tie goes to the first in scan order; with fuse_k 3 the coherent one wins."""
    g = torch.Generator().manual_seed(1)
    feat = torch.randn(1, 8, 16, 16, generator=g)
    hole = (10, 10)
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 8:13, 8:13] = 1
    coherent, lonely = (4, 10), (2, 2)
    # the hole's cells 9..11 (a 3-wide row) copied to the coherent place; only the centre 3x3 to the lonely one
    feat[..., coherent[0] - 1:coherent[0] + 2, coherent[1] - 2:coherent[1] + 3] = feat[..., 9:12, 8:13]
    feat[..., lonely[0] - 1:lonely[0] + 2, lonely[1] - 1:lonely[1] + 2] = feat[..., 9:12, 9:12]
    _, off1 = contextual_attention(feat, feat, mask, rate=1, fuse_k=1)
    _, off3 = contextual_attention(feat, feat, mask, rate=1, fuse_k=3)
    assert tuple(off1[0, :, hole[0], hole[1]].tolist()) == (lonely[0] - hole[0], lonely[1] - hole[1])
    assert tuple(off3[0, :, hole[0], hole[1]].tolist()) == (coherent[0] - hole[0], coherent[1] - hole[1])


def test_attention_coherence_counts_equal_neighbouring_offsets():
    mask = torch.zeros(2, 1, 8, 8)
    mask[:, :, 2:6, 2:6] = 1                                   # 2x2 hole cells at rate 2: 2 horizontal pairs
    off = torch.zeros(2, 2, 4, 4, dtype=torch.long)
    off[1, 0, 1, 1] = 3                                        # sample 1: one pair broken
    torch.testing.assert_close(attention_coherence(off, mask, rate=2), torch.tensor([1.0, 0.5]))
    with pytest.raises(ValueError, match="cells"):
        attention_coherence(off, mask, rate=1)


def test_attention_weights_rows_sum_to_one_and_skip_hole_patches():
    g = torch.Generator().manual_seed(2)
    feat = torch.randn(2, 4, 16, 16, generator=g)
    mask = _masks_per_sample(16)[1:3]
    w = contextual_attention_weights(feat, feat, mask)
    assert w.shape == (2, 8, 8, 8, 8)
    torch.testing.assert_close(w.sum(dim=(3, 4)), torch.ones(2, 8, 8))
    low = F.max_pool2d(mask, 2)                                               # hole cells
    touching = F.max_pool2d(low, 3, stride=1, padding=1) > 0                  # patches touching the hole
    assert float(w.masked_select(touching[:, 0][:, None, None].expand_as(w)).abs().max()) == 0.0


# ------------------------------------------------------------------------------ gradients, masking
def test_gradients_flow_to_foreground_and_background():
    g = torch.Generator().manual_seed(4)
    fg = torch.randn(2, 3, 16, 16, generator=g, requires_grad=True)
    bg = torch.randn(2, 3, 16, 16, generator=g, requires_grad=True)
    out, _ = contextual_attention(fg, bg, _masks_per_sample(16)[:2])
    (out * torch.randn(out.shape, generator=g)).sum().backward()
    assert fg.grad.abs().sum() > 0 and bg.grad.abs().sum() > 0
    assert torch.isfinite(fg.grad).all() and torch.isfinite(bg.grad).all()


def test_gradcheck_in_float64():
    g = torch.Generator().manual_seed(5)
    fg = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    bg = torch.randn(2, 2, 8, 8, generator=g, dtype=torch.float64, requires_grad=True)
    mask = torch.zeros(2, 1, 8, 8, dtype=torch.float64)
    mask[0, :, 2:4, 2:4] = 1
    mask[1, :, 4:8, 0:2] = 1
    assert torch.autograd.gradcheck(lambda f, b: contextual_attention(f, b, mask, softmax_scale=2.0)[0], (fg, bg))


def test_hole_background_is_never_attended():
    """Changing the background inside the hole leaves the output unchanged (bit for bit)."""
    g = torch.Generator().manual_seed(6)
    fg = torch.randn(3, 4, 16, 16, generator=g)
    bg = torch.randn(3, 4, 16, 16, generator=g)
    mask = _masks_per_sample(16)[:3]
    out, off = contextual_attention(fg, bg, mask)
    bg2 = torch.where(mask.bool(), 100 * torch.randn(bg.shape, generator=g), bg)
    out2, off2 = contextual_attention(fg, bg2, mask)
    assert torch.equal(out, out2) and torch.equal(off, off2)
    # ... and its gradient is exactly zero there
    bg.requires_grad_(True)
    contextual_attention(fg, bg, mask)[0].square().sum().backward()
    assert float(bg.grad.masked_select(mask.bool().expand_as(bg)).abs().max()) == 0.0


def test_no_known_patch_gives_the_documented_fallback():
    fg = torch.randn(2, 3, 8, 8, requires_grad=True)
    mask = torch.ones(2, 1, 8, 8)
    mask[1, :, :, :] = 0
    mask[1, :, 2:4, 2:4] = 1
    out, off = contextual_attention(fg, fg, mask)
    assert torch.equal(out[0], torch.zeros_like(out[0])) and torch.equal(off[0], torch.zeros_like(off[0]))
    assert out[1].abs().sum() > 0
    out.sum().backward()
    assert torch.isfinite(fg.grad).all()


def test_zero_features_do_not_give_nan():
    fg = torch.zeros(1, 4, 8, 8, requires_grad=True)
    mask = torch.zeros(1, 1, 8, 8)
    mask[..., 2:4, 2:4] = 1
    out, off = contextual_attention(fg, fg, mask)
    out.sum().backward()
    assert torch.isfinite(out).all() and torch.isfinite(fg.grad).all()


@pytest.mark.parametrize("kwargs, exc, match", [
    ({"mask": torch.zeros(1, 1, 8, 16)}, ValueError, "mask has size"),
    ({"mask": torch.zeros(1, 1, 16, 16, dtype=torch.bool)}, TypeError, "float"),
    ({"mask": torch.zeros(1, 1, 16, 16, dtype=torch.long)}, TypeError, "float"),
    ({"mask": torch.full((1, 1, 16, 16), 0.5)}, ValueError, "binary"),
    ({"mask": torch.zeros(3, 1, 16, 16)}, ValueError, "batch"),
    ({"mask": torch.zeros(2, 16, 16)}, ValueError, r"\(B, 1, H, W\)"),
    ({"rate": 3}, ValueError, "divisible by rate"),
    ({"ksize": 2}, ValueError, "odd"),
    ({"fuse_k": 0}, ValueError, "positive"),
    ({"softmax_scale": 0.0}, ValueError, "softmax_scale"),
    ({"background": torch.zeros(2, 4, 16, 8)}, ValueError, "same shape"),
    ({"foreground": torch.zeros(2, 4, 16, 16, dtype=torch.long)}, TypeError, "floating"),
])
def test_bad_inputs_raise_clear_errors(kwargs, exc, match):
    args = {"foreground": torch.zeros(2, 4, 16, 16), "background": torch.zeros(2, 4, 16, 16),
            "mask": torch.zeros(2, 1, 16, 16)}
    for key in ("foreground", "background", "mask"):
        if key in kwargs:
            args[key] = kwargs.pop(key)
    with pytest.raises(exc, match=match):
        contextual_attention(args["foreground"], args["background"], args["mask"], **kwargs)


def test_module_wrapper_keeps_its_settings():
    ca = ContextualAttention(ksize=3, stride=1, rate=1, fuse_k=1, softmax_scale=5.0)
    assert (ca.ksize, ca.stride, ca.rate, ca.fuse_k, ca.softmax_scale) == (3, 1, 1, 1, 5.0)
    assert "fuse_k=1" in repr(ca) and list(ca.parameters()) == []
    x = torch.randn(1, 2, 8, 8)
    m = torch.zeros(1, 1, 8, 8)
    m[..., 2:5, 2:5] = 1
    out, off = ca(x, x, m)
    ref, ref_off = contextual_attention(x, x, m, rate=1, fuse_k=1, softmax_scale=5.0)
    assert torch.equal(out, ref) and torch.equal(off, ref_off)
    with pytest.raises(ValueError, match="odd"):
        ContextualAttention(ksize=4)


# ------------------------------------------------------------------------------ the networks
def conv(c_in, c_out, k):
    """Parameters of a k x k convolution with bias."""
    return c_in * c_out * k * k + c_out


def decoder_count(c_in, c):
    """conv 4c, conv 4c, up+conv 2c, conv 2c, up+conv c, conv c/2, conv 3 (all 3x3)."""
    return (conv(c_in, 4 * c, 3) + conv(4 * c, 4 * c, 3) + conv(4 * c, 2 * c, 3) + conv(2 * c, 2 * c, 3)
            + conv(2 * c, c, 3) + conv(c, c // 2, 3) + conv(c // 2, 3, 3))


def coarse_count(c):
    return (conv(5, c, 5) + conv(c, 2 * c, 3) + conv(2 * c, 2 * c, 3) + conv(2 * c, 4 * c, 3)
            + 2 * conv(4 * c, 4 * c, 3) + 4 * conv(4 * c, 4 * c, 3) + decoder_count(4 * c, c))


def refine_count(c):
    dilated_branch = (conv(5, c, 5) + conv(c, c, 3) + conv(c, 2 * c, 3) + conv(2 * c, 2 * c, 3)
                      + conv(2 * c, 4 * c, 3) + conv(4 * c, 4 * c, 3) + 4 * conv(4 * c, 4 * c, 3))
    attention_branch = (conv(5, c, 5) + conv(c, c, 3) + conv(c, 2 * c, 3) + conv(2 * c, 4 * c, 3)
                        + 2 * conv(4 * c, 4 * c, 3)        # pmconv5, pmconv6
                        + 2 * conv(4 * c, 4 * c, 3))       # pmconv9, pmconv10 (the attention has none)
    return dilated_branch + attention_branch + decoder_count(8 * c, c)


def critic_count(d, image_size, hole_size):
    convs_g = conv(3, d, 5) + conv(d, 2 * d, 5) + conv(2 * d, 4 * d, 5) + conv(4 * d, 4 * d, 5)
    convs_l = conv(3, d, 5) + conv(d, 2 * d, 5) + conv(2 * d, 4 * d, 5) + conv(4 * d, 8 * d, 5)
    return convs_g + 4 * d * (image_size // 16) ** 2 + 1, convs_l + 8 * d * (hole_size // 16) ** 2 + 1


def test_parameter_counts_of_the_v1_configuration():
    cfg = DeepFillConfig()
    assert (cfg.image_size, cfg.hole_size, cfg.cnum, cfg.critic_cnum) == (256, 128, 32, 64)
    assert (cfg.ksize, cfg.stride, cfg.rate, cfg.fuse_k, cfg.softmax_scale) == (3, 1, 2, 3, 10.0)
    g, d = DeepFillGenerator(cfg, seed=0), DeepFillCritic(cfg, seed=0)
    assert count_parameters(g.coarse) == coarse_count(32) == 1_448_227
    assert count_parameters(g.refine) == refine_count(32) == 2_153_315
    assert count_parameters(g) == 3_601_542
    glob, loc = critic_count(64, 256, 128)
    assert count_parameters(d.global_features) + count_parameters(d.global_fc) == glob == 2_733_441
    assert count_parameters(d.local_features) + count_parameters(d.local_fc) == loc == 4_339_329
    assert count_parameters(d) == 7_072_770


@pytest.mark.parametrize("cnum, size", [(8, 64), (8, 128), (4, 32)])
def test_parameter_counts_of_narrow_configurations(cnum, size):
    cfg = DeepFillConfig(image_size=size, cnum=cnum, critic_cnum=cnum)
    assert count_parameters(DeepFillGenerator(cfg)) == coarse_count(cnum) + refine_count(cnum)
    assert count_parameters(DeepFillCritic(cfg)) == sum(critic_count(cnum, size, size // 2))


def test_layer_list_follows_v1():
    g = DeepFillGenerator(DeepFillConfig(cnum=32))
    dil = [m.dilation[0] for m in g.coarse.modules() if isinstance(m, torch.nn.Conv2d)]
    assert dil == [1] * 6 + [2, 4, 8, 16] + [1] * 7
    assert [m.dilation[0] for m in g.refine.conv_branch.modules() if isinstance(m, torch.nn.Conv2d)] == \
        [1] * 6 + [2, 4, 8, 16]
    acts = [type(m).__name__ for m in g.refine.attention_encoder.modules() if isinstance(m, (torch.nn.ELU, torch.nn.ReLU))]
    assert acts == ["ELU"] * 5 + ["ReLU"]                                  # pmconv6 uses ReLU before the attention
    assert g.refine.attention.rate == 2 and g.refine.attention.fuse_k == 3


def test_shapes_at_256_and_the_smoke_sizes():
    with torch.no_grad():
        for cfg in (DeepFillConfig(), DeepFillConfig.tiny(), DeepFillConfig.tiny(image_size=128)):
            g = DeepFillGenerator(cfg, seed=0).eval()
            s = cfg.image_size
            image = torch.rand(2, 3, s, s, generator=torch.Generator().manual_seed(0))
            mask = make_mask("square", s, 0.25, batch=2, seed=1)
            coarse, refined, offsets = g(g.make_input(image, mask), mask)
            assert coarse.shape == refined.shape == (2, 3, s, s)
            assert offsets.shape == (2, 2, s // 8, s // 8) and offsets.dtype == torch.long
            assert 0 <= float(coarse.min()) and float(refined.max()) <= 1
            d = DeepFillCritic(cfg, seed=0)
            top, left = hole_boxes(mask, cfg.hole_size)
            scores = d(image, crop_patches(image, top, left, cfg.hole_size))
            assert scores[0].shape == scores[1].shape == (2,)


def test_predict_full_keeps_known_pixels_and_supports_the_three_modes():
    cfg = DeepFillConfig.tiny()
    g = DeepFillGenerator(cfg, seed=0).eval()
    image = torch.rand(2, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    mask = make_mask("square", 64, 0.25, batch=2, seed=3)
    for mode in ("hole", "mosaic", "hole_ns"):
        with torch.no_grad():
            out = g.predict_full(image, mask, mode=mode)
        assert torch.equal(out * (1 - mask), image * (1 - mask))
        assert torch.equal(out[(1 - mask).bool().expand_as(out)], image[(1 - mask).bool().expand_as(image)])
    # "hole" mode never lets the hole's true pixels into the network
    with torch.no_grad():
        a = g.predict_full(image, mask)
        b = g.predict_full(torch.where(mask.bool(), torch.rand_like(image), image), mask)
    assert torch.equal(a * mask, b * mask)


def test_generator_bad_inputs():
    g = DeepFillGenerator(DeepFillConfig.tiny())
    image = torch.rand(1, 3, 64, 64)
    with pytest.raises(ValueError, match="64x64"):
        g(torch.rand(1, 3, 32, 32), torch.zeros(1, 1, 32, 32))
    with pytest.raises(ValueError, match="mask has size"):
        g(image, torch.zeros(1, 1, 32, 32))
    with pytest.raises(TypeError, match="float"):
        g(image, torch.zeros(1, 1, 64, 64, dtype=torch.bool))
    with pytest.raises(ValueError, match="unknown input mode"):
        g.predict_full(image, torch.zeros(1, 1, 64, 64), mode="blur")
    with pytest.raises(ValueError, match="divisible"):
        DeepFillConfig(image_size=60)
    with pytest.raises(ValueError, match="fill"):
        DeepFillConfig(fill="zeros")


def test_hole_boxes_and_batched_crops_match_a_loop():
    mask = torch.zeros(3, 1, 32, 32)
    mask[0, :, 4:20, 6:22] = 1                      # 16x16 hole
    mask[1, :, 20:32, 0:10] = 1                     # at the corner: the window is clamped
    mask[2, :, 10:14, 12:14] = 1                    # small hole: the window is centred on it
    top, left = hole_boxes(mask, 16)
    assert top.tolist() == [4, 16, 4] and left.tolist() == [6, 0, 5]
    x = torch.randn(3, 2, 32, 32, requires_grad=True)
    crops = crop_patches(x, top, left, 16)
    loop = torch.stack([x[i, :, t:t + 16, l:l + 16] for i, (t, l) in enumerate(zip(top.tolist(), left.tolist()))])
    assert torch.equal(crops, loop)
    crops.sum().backward()
    assert int(x.grad.sum()) == 3 * 2 * 16 * 16
    with pytest.raises(ValueError, match="no hole"):
        hole_boxes(torch.zeros(1, 1, 32, 32), 16)


def test_config_round_trip_and_registry():
    cfg = DeepFillConfig.tiny(fill=(0.1, 0.2, 0.3), fuse_k=1)
    assert DeepFillConfig.from_dict(cfg.to_dict()) == cfg
    assert MODELS["deepfill"] == (DeepFillGenerator, DeepFillConfig)
    assert MODELS["deepfill_critic"] == (DeepFillCritic, DeepFillConfig)
    g = build_model("deepfill", cfg.to_dict(), seed=0)
    d = build_model("deepfill_critic", cfg.to_dict(), seed=0)
    assert isinstance(g, DeepFillGenerator) and isinstance(d, DeepFillCritic)
    assert g.refine.attention.fuse_k == 1
    same = build_model("deepfill", cfg.to_dict(), seed=0)
    assert all(torch.equal(a, b) for a, b in zip(g.parameters(), same.parameters()))
    with pytest.raises(ValueError, match="unknown DeepFillConfig keys"):
        DeepFillConfig.from_dict({"image_size": 64, "bogus": 1})


# ------------------------------------------------------------------------------ training
def _smooth_images(n=16, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def test_critic_and_generator_update_schedule():
    from inpaint_utils.train import StepContext

    cfg = DeepFillConfig(image_size=32, cnum=4, critic_cnum=4)
    G, D = DeepFillGenerator(cfg, seed=0), DeepFillCritic(cfg, seed=1)
    task = DeepFillTask(G, D)
    assert set(task.models) == {"generator", "critic"}
    for opt in task.optimizers.values():
        assert opt.param_groups[0]["lr"] == 1e-4 and opt.param_groups[0]["betas"] == (0.5, 0.9)
    assert (task.coarse_l1_alpha, task.l1_loss_alpha, task.ae_loss_alpha, task.global_wgan_loss_alpha,
            task.gan_loss_alpha, task.wgan_gp_lambda, task.gamma, task.critic_steps) == \
        (1.2, 1.2, 1.2, 1.0, 0.001, 10.0, 0.9, 5)
    assert task.batches_per_step == 6 and DeepFillTask(G, None).batches_per_step == 1
    g_calls, d_calls = [], []                        # (input, mask, grad enabled) / (image scored, grad enabled)
    G.register_forward_hook(lambda m, args, out: g_calls.append((args[0].detach(), args[1], torch.is_grad_enabled())))
    D.register_forward_hook(lambda m, args, out: d_calls.append(args[0].detach()))
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    ctx._begin(0)
    g_before = [p.detach().clone() for p in G.parameters()]
    images = _smooth_images(6)                                              # six batches of one image each
    chunks = images.chunk(6)
    logs = task.train_step(images, 0, ctx)
    assert ctx.stepped == ["critic"] * 5 + ["generator"]
    # v1: the generator runs again for each critic update (no gradient), then once with gradient for its own
    assert [grad for _, _, grad in g_calls] == [False] * 5 + [True]
    masks = [mask for _, mask, _ in g_calls]
    for j, (inp, mask, _) in enumerate(g_calls):                            # batch j's known pixels go in
        assert torch.equal(inp * (1 - mask), chunks[j] * (1 - mask)), j
    assert all(not torch.equal(masks[0], m) for m in masks[1:])              # new holes for every batch
    # each critic update scores its own real batch and that batch's new composite; then G's batch
    assert len(d_calls) == 2 * 5 + 1
    for j in range(5):
        real, fake = d_calls[2 * j], d_calls[2 * j + 1]
        assert torch.equal(real, chunks[j])
        assert torch.equal(fake * (1 - masks[j]), chunks[j] * (1 - masks[j]))
        assert not torch.equal(fake, real)
    assert torch.equal(d_calls[-1] * (1 - masks[5]), chunks[5] * (1 - masks[5]))
    assert {"d_wgan", "gp", "l1", "ae", "g_adv", "g_total"} <= set(logs)
    assert any(not torch.equal(a, b) for a, b in zip(g_before, G.parameters()))
    # the critic's gradients never leak into the generator's update, nor the generator's into the critic's
    assert all(p.grad is None for p in G.parameters()) and all(p.grad is None for p in D.parameters())
    with pytest.raises(ValueError, match="6 batches"):
        task.train_step(images[:4], 1, ctx)


def test_the_loop_feeds_each_critic_update_a_new_batch_and_resumes_exactly(tmp_path):
    """Through train.train: a step takes critic_steps + 1 distinct batches of the data stream (batch_indices
    with batches_per_step), and a run stopped after 2 steps and resumed ends with the straight run's weights."""
    from inpaint_utils.train import TrainConfig, batch_indices, train

    class Recording(torch.utils.data.Dataset):
        def __init__(self, x):
            self.x, self.loaded = x, []

        def __len__(self):
            return len(self.x)

        def __getitem__(self, i):
            self.loaded.append(int(i))
            return self.x[i]

    cfg = DeepFillConfig(image_size=32, cnum=4, critic_cnum=4)

    def fit(run_dir, steps, data):
        task = DeepFillTask(DeepFillGenerator(cfg, seed=0), DeepFillCritic(cfg, seed=1), critic_steps=2)
        config = TrainConfig(num_steps=steps, batch_size=2, seed=0, log_every=1, sample_every=0, checkpoint_every=0,
                             run_dir=run_dir, progress=False, tensorboard=False)
        train(task, data, config, model_name="deepfill", model_config=cfg.to_dict())
        return task

    data = Recording(_smooth_images(10))
    straight = fit(tmp_path / "straight", 3, data)
    batches = [batch_indices(step, 10, 2, 0, batches_per_step=3) for step in range(3)]
    assert data.loaded == [i for b in batches for i in b]
    assert batches[0] == batch_indices(0, 10, 2, 0) + batch_indices(1, 10, 2, 0) + batch_indices(2, 10, 2, 0)
    assert len(set(batches[0])) == 6                                         # three batches, six distinct images
    from inpaint_utils.checkpoint import latest_checkpoint, training_summary
    summary = training_summary(latest_checkpoint(tmp_path / "straight"))      # counts all three batches a step
    assert summary["images_per_s"] == pytest.approx(3 * 3 * 2 / summary["train_time_s"])
    fit(tmp_path / "resumed", 2, _smooth_images(10))
    data = Recording(_smooth_images(10))
    resumed = fit(tmp_path / "resumed", 3, data)
    assert data.loaded == batches[2]                                         # the resumed step's own batches
    for name, model in straight.models.items():
        for key, value in model.state_dict().items():
            assert torch.equal(resumed.models[name].state_dict()[key], value), f"{name}.{key}"


def test_task_masks_are_square_holes_of_hole_size():
    cfg = DeepFillConfig.tiny()
    task = DeepFillTask(DeepFillGenerator(cfg), None, max_delta=0)
    masks = task.masks(torch.rand(5, 3, 64, 64), torch.Generator().manual_seed(0))
    assert masks.shape == (5, 1, 64, 64) and (masks.sum(dim=(1, 2, 3)) == 32 * 32).all()
    rows = masks.amax(dim=3)[:, 0].sum(dim=1)
    assert (rows == 32).all()                                               # 32x32 squares
    assert len({tuple(m.nonzero()[0].tolist()) for m in masks}) > 1         # at random positions


def test_task_holes_shrink_randomly_from_the_max_box_as_v1():
    # v1's bbox2mask: the max box loses a random 0 .. max_delta // 2 px on top and bottom (and left and right)
    cfg = DeepFillConfig.tiny()                                             # 64 px images, 32 px box
    task = DeepFillTask(DeepFillGenerator(cfg), None)
    assert task.max_delta == 8                                              # v1's 32 for a 128 px box
    masks = task.masks(400, torch.Generator().manual_seed(0))
    heights = masks.amax(dim=3)[:, 0].sum(dim=1)
    widths = masks.amax(dim=2)[:, 0].sum(dim=1)
    assert set(heights.tolist()) == set(widths.tolist()) == {32.0 - 2 * d for d in range(5)}
    assert torch.equal(masks.sum(dim=(1, 2, 3)), heights * widths)          # rectangles
    assert not torch.equal(heights, widths)
    top, left = hole_boxes(masks, cfg.hole_size)                            # the local patch holds the hole
    assert torch.equal(crop_patches(masks, top, left, cfg.hole_size).sum(dim=(1, 2, 3)), masks.sum(dim=(1, 2, 3)))
    with pytest.raises(ValueError, match="max_delta"):
        DeepFillTask(DeepFillGenerator(cfg), None, max_delta=32)
    with pytest.raises(ValueError, match="input_mode"):
        DeepFillTask(DeepFillGenerator(cfg), None, input_mode="blur")


def test_training_lowers_the_l1_loss_and_checkpoints_round_trip(tmp_path):
    from inpaint_utils.checkpoint import load_checkpoint
    from inpaint_utils.train import TrainConfig, read_metrics, train

    cfg = DeepFillConfig(image_size=32, cnum=8, critic_cnum=4)
    G, D = DeepFillGenerator(cfg, seed=0), DeepFillCritic(cfg, seed=1)
    task = DeepFillTask(G, D, lr=1e-3, critic_steps=1)   # one critic update per step keeps the test short
    config = TrainConfig(num_steps=40, batch_size=4, seed=0, log_every=4, sample_every=0, checkpoint_every=0,
                         run_dir=tmp_path, progress=False, tensorboard=False,
                         augment=False)  # four fixed images: the loss must fall on them, crops would move them
    summary = train(task, _smooth_images(4), config, model_name="deepfill", model_config=cfg.to_dict())
    rows = read_metrics(tmp_path)
    first = sum(r["l1"] for r in rows[:2]) / 2
    last = sum(r["l1"] for r in rows[-2:]) / 2
    assert last < 0.75 * first, (first, last)
    assert {"d_wgan", "gp", "g_adv"} <= set(rows[0])
    assert summary["step"] == 40
    # round trip: fresh models loaded from the checkpoint give the same outputs
    G2, D2 = DeepFillGenerator(cfg, seed=5), DeepFillCritic(cfg, seed=6)
    load_checkpoint(summary["checkpoint"], {"generator": G2, "critic": D2}, model_name="deepfill",
                    config=cfg.to_dict())
    x = _smooth_images(2, seed=9)
    m = make_mask("square", 32, 0.25, batch=2, seed=0)
    G.eval(), G2.eval()
    with torch.no_grad():
        assert torch.equal(G.predict_full(x, m), G2.predict_full(x, m))
        assert all(torch.equal(a, b) for a, b in zip(D(x, x[..., :16, :16]), D2(x, x[..., :16, :16])))
    out = task.sample(x, torch.Generator().manual_seed(0))
    assert set(out) == {"input", "coarse", "completed", "attention", "target"}
    assert all(v.shape == (2, 3, 32, 32) for v in out.values())
