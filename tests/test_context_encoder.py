"""Tests of inpaint_utils.models.context_encoder: the authors' table, parameter counts worked out by
hand, shapes of every variant, the channel-wise FC against a per-channel loop, predict_full's
composite (known pixels unchanged, bit for bit), configs and the model registry."""
import json

import pytest
import torch
import torch.nn as nn

from inpaint_utils.masks import center_mask, make_input, make_mask
from inpaint_utils.models import (
    AUTHORS_FILL,
    MODELS,
    ChannelwiseFC,
    ContextEncoderConfig,
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
    build_model,
    count_parameters,
)


def conv(c_in, c_out, k=4, bias=True):
    """Parameters of a k x k (transposed) convolution: weights c_in * c_out * k * k, plus c_out biases."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c):
    """BatchNorm2d: a scale and a shift per channel (running mean/var are buffers, not parameters)."""
    return 2 * c


def paper_generator_count(bias=True):
    b = bias
    encoder = (conv(3, 64, bias=b)                       # conv1, no BN
               + conv(64, 64, bias=b) + bn(64)           # conv2
               + conv(64, 128, bias=b) + bn(128)         # conv3
               + conv(128, 256, bias=b) + bn(256)        # conv4
               + conv(256, 512, bias=b) + bn(512))       # conv5 -> 4x4x512
    code = conv(512, 4000, bias=b)                       # 4x4 conv -> 4000 x 1 x 1
    code_bn = bn(4000)
    decoder = (conv(4000, 512, bias=b) + bn(512)         # tconv 1 -> 4
               + conv(512, 256, bias=b) + bn(256)        # 4 -> 8
               + conv(256, 128, bias=b) + bn(128)        # 8 -> 16
               + conv(128, 64, bias=b) + bn(64)          # 16 -> 32
               + conv(64, 3, bias=b))                    # 32 -> 64, tanh
    return encoder + code + code_bn + decoder


def paper_discriminator_count(bias=True):
    b = bias
    return (conv(3, 64, bias=b)
            + conv(64, 128, bias=b) + bn(128)
            + conv(128, 256, bias=b) + bn(256)
            + conv(256, 512, bias=b) + bn(512)
            + conv(512, 1, bias=b))


@pytest.fixture(scope="module")
def paper_models():
    cfg = ContextEncoderConfig()
    return ContextEncoderGenerator(cfg, seed=0).eval(), ContextEncoderDiscriminator(cfg, seed=0).eval()


# ------------------------------------------------------------------------------------ the table
def _layers(module):
    return [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0])
            for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


def test_generator_follows_the_authors_table(paper_models):
    g, d = paper_models
    assert _layers(g) == [
        ("Conv2d", 3, 64, 4, 2), ("Conv2d", 64, 64, 4, 2), ("Conv2d", 64, 128, 4, 2),
        ("Conv2d", 128, 256, 4, 2), ("Conv2d", 256, 512, 4, 2),
        ("Conv2d", 512, 4000, 4, 1),                                       # the bottleneck code
        ("ConvTranspose2d", 4000, 512, 4, 1),
        ("ConvTranspose2d", 512, 256, 4, 2), ("ConvTranspose2d", 256, 128, 4, 2),
        ("ConvTranspose2d", 128, 64, 4, 2), ("ConvTranspose2d", 64, 3, 4, 2),
    ]
    assert _layers(d) == [("Conv2d", 3, 64, 4, 2), ("Conv2d", 64, 128, 4, 2), ("Conv2d", 128, 256, 4, 2),
                          ("Conv2d", 256, 512, 4, 2), ("Conv2d", 512, 1, 4, 1)]
    # BN on all encoder layers but the first; LeakyReLU 0.2 in the encoder, ReLU + tanh in the decoder
    assert not any(isinstance(m, nn.BatchNorm2d) for m in g.encoder[0])
    assert all(isinstance(blk[1], nn.BatchNorm2d) for blk in g.encoder[1:])
    assert all(m.negative_slope == 0.2 for m in g.encoder.modules() if isinstance(m, nn.LeakyReLU))
    assert isinstance(g.to_rgb[-1], nn.Tanh)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())  # logits: BCE-with-logits in the loss


# ------------------------------------------------------------------------------------ parameter counts
def test_parameter_counts_by_hand_and_against_the_authors(paper_models):
    g, d = paper_models
    # Hand counts with biases on every convolution (Torch's default, as the authors declare them)
    assert paper_generator_count() == 71_130_531
    assert count_parameters(g) == paper_generator_count()
    assert count_parameters(d) == paper_discriminator_count() == 2_766_529
    bottleneck = conv(512, 4000) + conv(4000, 512)
    assert bottleneck == 32_772_000 + 32_768_512 == 65_540_512
    assert count_parameters(g.bottleneck) + count_parameters(g.decoder_in[0]) == bottleneck
    # ... and the figures of the authors' Torch code (docs/conventions.md): 71.1 M, 65.5 M, 2.77 M
    assert round(count_parameters(g) / 1e6, 1) == 71.1
    assert round(bottleneck / 1e6, 1) == 65.5
    assert round(count_parameters(d) / 1e6, 2) == 2.77


def test_parameter_counts_without_biases():
    """The authors zero every conv bias before each forward pass: bias=False is the model they trained."""
    cfg = ContextEncoderConfig(bias=False)
    g, d = ContextEncoderGenerator(cfg), ContextEncoderDiscriminator(cfg)
    assert count_parameters(g) == paper_generator_count(bias=False) == 71_124_544
    assert count_parameters(d) == paper_discriminator_count(bias=False) == 2_765_568
    assert paper_generator_count() - paper_generator_count(False) == 64 + 64 + 128 + 256 + 512 + 4000 + 512 + 256 + 128 + 64 + 3
    assert round(count_parameters(g) / 1e6, 1) == 71.1 and round(count_parameters(d) / 1e6, 2) == 2.77
    assert all(m.bias is None for m in g.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d)))


def test_parameter_counts_of_the_variants():
    # 64x64 CE of the cascade: one layer fewer each side; its discriminator sees the 32x32 centre
    small = ContextEncoderConfig(image_size=64)
    assert small.hole_size == 32 and small.encoder_channels == (64, 128, 256, 512)
    assert small.decoder_channels == (512, 256, 128) and small.discriminator_channels == (128, 256, 512)
    g64 = (conv(3, 64) + conv(64, 128) + bn(128) + conv(128, 256) + bn(256) + conv(256, 512) + bn(512)
           + conv(512, 4000) + bn(4000) + conv(4000, 512) + bn(512)
           + conv(512, 256) + bn(256) + conv(256, 128) + bn(128) + conv(128, 3))
    assert count_parameters(ContextEncoderGenerator(small)) == g64
    d32 = conv(3, 128) + conv(128, 256) + bn(256) + conv(256, 512) + bn(512) + conv(512, 1)
    assert count_parameters(ContextEncoderDiscriminator(small)) == d32
    # full output (train_random.lua): one more 64 -> 64 upsampling stage; D on the whole 128x128 image
    full = ContextEncoderConfig(output="full")
    assert count_parameters(ContextEncoderGenerator(full)) == paper_generator_count() + conv(64, 64) + bn(64)
    assert count_parameters(ContextEncoderDiscriminator(full)) == (
        paper_discriminator_count() + conv(64, 64) + bn(64))
    # channel-wise FC: 512 channels x (16 x 16) weights + 512 x 16 biases, then a 1x1 conv 512 -> 512
    cw = ContextEncoderConfig(bottleneck="channelwise_fc")
    cw_code = 512 * 16 * 16 + 512 * 16 + conv(512, 512, k=1) + bn(512)
    encoder_and_decoder = paper_generator_count() - conv(512, 4000) - bn(4000) - conv(4000, 512) - bn(512)
    assert count_parameters(ContextEncoderGenerator(cw)) == encoder_and_decoder + cw_code
    assert cw.latent_dim == 512 * 16


# ------------------------------------------------------------------------------------ shapes
VARIANTS = [
    dict(),                                                    # 128, centre 64
    dict(image_size=64),                                       # 64, centre 32 (cascade)
    dict(output="full"),
    dict(image_size=64, output="full"),
    dict(bottleneck="channelwise_fc"),
    dict(image_size=64, bottleneck="channelwise_fc", output="full"),
    dict(image_size=32),                                       # smaller still: centre 16
]


@pytest.mark.parametrize("overrides", VARIANTS, ids=lambda o: ",".join(f"{k}={v}" for k, v in o.items()) or "paper")
def test_output_shapes_and_range(overrides):
    cfg = ContextEncoderConfig.tiny(**overrides)
    g, d = ContextEncoderGenerator(cfg, seed=1), ContextEncoderDiscriminator(cfg, seed=1)
    s, out = cfg.image_size, cfg.output_size
    x = torch.rand(3, 3, s, s, generator=torch.Generator().manual_seed(0))
    for mode in ("train", "eval"):
        getattr(g, mode)()
        getattr(d, mode)()
        pred = g(x)
        assert pred.shape == (3, 3, out, out) and pred.dtype == torch.float32
        assert pred.min() >= 0 and pred.max() <= 1
        assert g.encode(x).shape == (3, cfg.latent_dim)
        logits = d(pred)
        assert logits.shape == (3,) and torch.isfinite(logits).all()
    assert out == (s // 2 if cfg.output == "center" else s)


def test_paper_model_shapes(paper_models):
    g, d = paper_models
    x = torch.rand(2, 3, 128, 128)
    with torch.no_grad():
        pred, code = g(x), g.encode(x)
    assert pred.shape == (2, 3, 64, 64) and code.shape == (2, 4000)
    assert d(pred).shape == (2,)


def test_tiny_config():
    cfg = ContextEncoderConfig.tiny()
    assert cfg.encoder_channels == (8, 8, 16, 32, 64) and cfg.decoder_channels == (64, 32, 16, 8)
    assert cfg.discriminator_channels == (8, 16, 32, 64) and cfg.bottleneck_dim == 100
    assert ContextEncoderConfig.tiny(image_size=64).encoder_channels == (8, 16, 32, 64)


def test_forward_converts_to_minus_one_one():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(), seed=0).eval()
    seen = {}
    g.encoder[0][0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0].detach()))
    x = torch.zeros(1, 3, 128, 128)
    x[..., :64] = 1.0
    g(x)
    assert set(seen["x"].unique().tolist()) == {-1.0, 1.0}
    # tanh output t maps to (t + 1) / 2
    t = g.to_rgb(g.decoder(g.decoder_in(g.code_act(g._code(x)))))
    assert torch.allclose(g(x), (t + 1) / 2)


# ------------------------------------------------------------------------------------ channel-wise FC
def _channelwise_loop(x, weight, bias):
    """Reference: a plain loop over channels, one (hw x hw) matrix each."""
    b, c, h, w = x.shape
    out = torch.empty_like(x)
    for ch in range(c):
        y = x[:, ch].reshape(b, h * w) @ weight[ch].T          # (B, hw)
        if bias is not None:
            y = y + bias[ch]
        out[:, ch] = y.reshape(b, h, w)
    return out


@pytest.mark.parametrize("dtype,tol", [(torch.float64, 1e-12), (torch.float32, 1e-6)])
@pytest.mark.parametrize("bias", [True, False])
def test_channelwise_fc_matches_a_per_channel_loop(dtype, tol, bias):
    gen = torch.Generator().manual_seed(3)
    layer = ChannelwiseFC(6, 4, 4, bias=bias).to(dtype)
    with torch.no_grad():
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=gen, dtype=dtype))
        if bias:
            layer.bias.copy_(torch.randn(layer.bias.shape, generator=gen, dtype=dtype))
    x = torch.randn(5, 6, 4, 4, generator=gen, dtype=dtype)
    ref = _channelwise_loop(x, layer.weight.detach(), layer.bias.detach() if bias else None)
    assert torch.allclose(layer(x), ref, atol=tol, rtol=0)
    assert count_parameters(layer) == 6 * 16 * 16 + (6 * 16 if bias else 0)


def test_channelwise_fc_has_no_cross_channel_connections():
    layer = ChannelwiseFC(4, 4, 4)
    x = torch.randn(2, 4, 4, 4)
    y0 = layer(x)
    x[:, 2] += 5.0
    y1 = layer(x)
    changed = (y1 - y0).abs().flatten(2).amax(dim=2)          # (B, C)
    assert (changed[:, 2] > 0).all() and (changed[:, [0, 1, 3]] == 0).all()
    with pytest.raises(ValueError, match="expects"):
        layer(torch.randn(2, 4, 5, 5))


# ------------------------------------------------------------------------------------ predict_full
def test_predict_full_keeps_known_pixels_exactly():
    cfg = ContextEncoderConfig.tiny()
    g = ContextEncoderGenerator(cfg, seed=0).eval()
    image = torch.rand(3, 3, 128, 128, generator=torch.Generator().manual_seed(1))
    for mask in (g.input_hole_mask(), g.window_mask(3), center_mask(128, 20)):
        with torch.no_grad():
            out = g.predict_full(image, mask)
            pred = g(g.make_input(image, mask))
        known = (1 - mask).bool().expand_as(image)
        assert out.shape == image.shape
        assert torch.equal(out[known], image[known])
        # the hole holds the centre prediction, pasted at its place
        pasted = torch.zeros_like(image)
        pasted[..., 32:96, 32:96] = pred
        hole = mask.bool().expand_as(image)
        assert torch.equal(out[hole], pasted[hole])


def test_predict_full_input_uses_the_fill_and_the_authors_mean_by_default():
    cfg = ContextEncoderConfig.tiny()
    g = ContextEncoderGenerator(cfg, seed=0)
    image = torch.rand(2, 3, 128, 128)
    hole = g.input_hole_mask()
    x = g.make_input(image, hole)
    assert torch.allclose(x[:, :, 64, 64], torch.tensor(AUTHORS_FILL).expand(2, 3))
    assert torch.equal(x[:, :, :36], image[:, :, :36])          # the 4-px ring (rows 32-35) stays known
    assert torch.equal(g.make_input(image, hole, fill=0.5), make_input(image, hole, fill=0.5))


def test_predict_full_rejects_holes_outside_the_centre_window():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(), seed=0).eval()
    image = torch.rand(2, 3, 128, 128)
    mask = center_mask(128, 64, batch=2)
    mask[1, :, 0, 0] = 1.0
    with pytest.raises(ValueError, match=r"sample\(s\) \[1\].*outside the central 64x64 window"):
        g.predict_full(image, mask)
    with pytest.raises(ValueError, match="must be 128x128"):
        g.predict_full(torch.rand(1, 3, 64, 64), center_mask(64, 32))


def test_predict_full_with_full_output_and_arbitrary_masks():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(image_size=64, output="full"), seed=0).eval()
    image = torch.rand(4, 3, 64, 64)
    mask = make_mask("irregular", 64, 0.3, batch=4, seed=2)
    with torch.no_grad():
        out = g.predict_full(image, mask, fill="mean")
        pred = g(make_input(image, mask, fill="mean"))
    assert torch.equal(out, mask * pred + (1 - mask) * image)
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(out[known], image[known])
    with pytest.raises(ValueError, match="output='center' only"):
        g.window_mask()


def test_predict_full_gradients_reach_the_generator():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(), seed=0)
    out = g.predict_full(torch.rand(2, 3, 128, 128), g.input_hole_mask())
    out.sum().backward()
    assert g.to_rgb[0].weight.grad is not None and g.to_rgb[0].weight.grad.abs().sum() > 0


def test_window_masks_and_crop():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(), seed=0)
    assert g.window_mask().sum() == 64 * 64 and g.window_mask()[0, 0, 32:96, 32:96].all()
    hole = g.input_hole_mask(batch=2)
    assert hole.shape == (2, 1, 128, 128) and hole[0].sum() == 56 * 56 and hole[0, 0, 36:92, 36:92].all()
    img = torch.rand(2, 3, 128, 128)
    assert torch.equal(g.crop_window(img), img[:, :, 32:96, 32:96])
    with pytest.raises(ValueError, match="crop_window expects"):
        g.crop_window(torch.rand(2, 3, 64, 64))


# ------------------------------------------------------------------------------------ input checks
def test_bad_inputs_raise():
    g = ContextEncoderGenerator(ContextEncoderConfig.tiny(), seed=0)
    d = ContextEncoderDiscriminator(ContextEncoderConfig.tiny(), seed=0)
    with pytest.raises(ValueError, match=r"masked_input must be 128x128"):
        g(torch.rand(1, 3, 64, 64))
    with pytest.raises(ValueError, match=r"masked_input must be in \[0, 1\]"):
        g(torch.rand(1, 3, 128, 128) * 2 - 1)
    with pytest.raises(ValueError, match=r"masked_input must have shape \(B, 3, H, W\)"):
        g.encode(torch.rand(1, 1, 128, 128))
    with pytest.raises(ValueError, match="discriminator takes 64x64"):
        d(torch.rand(1, 3, 128, 128))
    with pytest.raises(ValueError, match="either generator or seed"):
        ContextEncoderGenerator(ContextEncoderConfig.tiny(), generator=torch.Generator(), seed=1)
    with pytest.raises(TypeError, match="config must be a ContextEncoderConfig"):
        ContextEncoderGenerator({"image_size": 128})


# ------------------------------------------------------------------------------------ config
def test_config_round_trip_through_json():
    for cfg in (ContextEncoderConfig(), ContextEncoderConfig.tiny(image_size=64, output="full", fill="mean"),
                ContextEncoderConfig(bottleneck="channelwise_fc", overlap=0, fill=0.5)):
        data = json.loads(json.dumps(cfg.to_dict()))
        assert ContextEncoderConfig.from_dict(data) == cfg
    d = ContextEncoderConfig().to_dict()
    assert d["encoder_channels"] == [64, 64, 128, 256, 512] and d["hole_size"] == 64
    assert d["fill"] == list(AUTHORS_FILL) and d["bottleneck_dim"] == 4000
    with pytest.raises(ValueError, match=r"unknown ContextEncoderConfig keys \['layers'\]"):
        ContextEncoderConfig.from_dict({"layers": 3})


@pytest.mark.parametrize("kwargs,match", [
    (dict(image_size=100), "image_size must be a power of two"),
    (dict(image_size=4), "image_size must be a power of two"),
    (dict(hole_size=48), "hole_size must be a power of two"),
    (dict(hole_size=256), "must not exceed image_size"),
    (dict(output="full", hole_size=64), "hole_size applies to output='center' only"),
    (dict(output="centre"), "output must be one of"),
    (dict(bottleneck="fc"), "bottleneck must be one of"),
    (dict(encoder_channels=(64, 128)), "encoder_channels needs 5 entries"),
    (dict(decoder_channels=(512, 256, 128)), "decoder_channels needs 4 entries"),
    (dict(discriminator_channels=(64, 0, 3, 4)), "discriminator_channels must be a non-empty tuple of positive"),
    (dict(bottleneck_dim=0), "bottleneck_dim must be a positive int"),
    (dict(overlap=32), "overlap 32 leaves no hole"),
    (dict(overlap=-1), "overlap must be an int >= 0"),
    (dict(fill="median"), "fill must be 'mean'"),
    (dict(fill=(0.5, 0.5)), r"fill as a tuple must be \(r, g, b\)"),
    (dict(fill=2.0), "fill must be 'mean'"),
    (dict(leaky_slope=1.5), "leaky_slope must be in"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        ContextEncoderConfig(**kwargs)


def test_seeds_and_initialisation(paper_models):
    cfg = ContextEncoderConfig.tiny()
    a, b = ContextEncoderGenerator(cfg, seed=5), ContextEncoderGenerator(cfg, seed=5)
    c = ContextEncoderGenerator(cfg, seed=6)
    sa, sb, sc = a.state_dict(), b.state_dict(), c.state_dict()
    assert all(torch.equal(sa[k], sb[k]) for k in sa)
    assert not torch.equal(sa["bottleneck.weight"], sc["bottleneck.weight"])
    # the authors' init: conv weights N(0, 0.02), biases 0, BN weights N(1, 0.02)
    big = paper_models[0]
    w = big.bottleneck.weight.detach()
    assert abs(float(w.std()) - 0.02) < 2e-4 and abs(float(w.mean())) < 2e-4
    assert float(big.bottleneck.bias.detach().abs().max()) == 0.0
    bn4000 = big.code_act[0].weight.detach()
    assert abs(float(bn4000.mean()) - 1.0) < 3e-3 and abs(float(bn4000.std()) - 0.02) < 3e-3


# ------------------------------------------------------------------------------------ registry
def test_build_model_from_name_and_config_dict():
    assert set(MODELS) >= {"context_encoder", "context_encoder_discriminator"}
    g = build_model("context_encoder", ContextEncoderConfig.tiny(), seed=0)
    assert isinstance(g, ContextEncoderGenerator) and g.model_name == "context_encoder"
    again = build_model(g.model_name, g.config.to_dict(), seed=0)
    assert again.config == g.config
    assert all(torch.equal(v, again.state_dict()[k]) for k, v in g.state_dict().items())
    d = build_model("context_encoder_discriminator", g.config.to_dict())
    assert isinstance(d, ContextEncoderDiscriminator) and d.model_name == "context_encoder_discriminator"
    assert build_model("context_encoder").config == ContextEncoderConfig()
    with pytest.raises(ValueError, match="unknown model 'lama'"):
        build_model("lama")
    with pytest.raises(TypeError, match="must be a ContextEncoderConfig, a dict or None"):
        build_model("context_encoder", 3)


# ------------------------------------------------------------------------------------------------
# ContextEncoderTask: one step of Nanavati & Patel's objective in the shared training loop
# ------------------------------------------------------------------------------------------------
def _faces_like(n=8, size=32, seed=0):
    """Smooth random images: learnable in a few dozen steps."""
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return torch.nn.functional.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def test_task_masks_and_weights_centre_model():
    from inpaint_utils.models.context_encoder import ContextEncoderTask

    for overlap, dropped in ((0, 16 * 16), (4, 8 * 8)):
        cfg = ContextEncoderConfig.tiny(image_size=32, overlap=overlap)
        task = ContextEncoderTask(ContextEncoderGenerator(cfg, seed=0), None)
        hole, weights = task.masks(torch.rand(2, 3, 32, 32))
        assert hole.shape == (2, 1, 32, 32) and int(hole[0].sum()) == dropped   # 16x16 window, or its 8x8 core
        assert weights.shape == (2, 1, 16, 16)                                  # on the predicted window
        if overlap:  # the authors' overlapPred: the 10x ring is the kept (known) part of the window
            assert torch.equal(weights[0, 0] == 10, hole[0, 0, 8:24, 8:24] == 0)
            assert int((weights[0] == 10).sum()) == 16 * 16 - 8 * 8 and int((weights[0] == 1).sum()) == 8 * 8
        else:        # the whole window dropped: plain L2, no ring inside the hole
            assert torch.equal(weights, torch.ones(2, 1, 16, 16))


def test_task_full_output_weights_the_hole_plainly():
    from inpaint_utils.models.context_encoder import ContextEncoderTask

    cfg = ContextEncoderConfig.tiny(image_size=32, output="full", hole_size=None)
    task = ContextEncoderTask(ContextEncoderGenerator(cfg, seed=0), None, mask_kind="blocks", mask_ratio=0.25)
    hole, weights = task.masks(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0))
    assert torch.equal(weights, hole)                                           # 1 in the hole, 0 elsewhere
    by_hand = ContextEncoderTask(ContextEncoderGenerator(cfg, seed=0), None, mask_kind="blocks", loss_overlap=2)
    _, ringed = by_hand.masks(torch.rand(2, 3, 32, 32), torch.Generator().manual_seed(0))
    assert float(ringed.max()) == 10.0                                          # asked for: the ring is there


def test_task_trains_with_the_shared_loop_and_lowers_the_loss(tmp_path):
    from inpaint_utils.models.context_encoder import ContextEncoderTask
    from inpaint_utils.train import TrainConfig, read_metrics, train

    cfg = ContextEncoderConfig.tiny(image_size=32, overlap=0)
    G, D = ContextEncoderGenerator(cfg, seed=0), ContextEncoderDiscriminator(cfg, seed=1)
    d_before = [p.detach().clone() for p in D.parameters()]
    task = ContextEncoderTask(G, D, lr=2e-3)
    assert task.optimizers["discriminator"].param_groups[0]["lr"] == pytest.approx(2e-4)  # the authors' 10x ratio
    config = TrainConfig(num_steps=60, batch_size=4, seed=0, log_every=5, sample_every=0, checkpoint_every=0,
                         run_dir=tmp_path, progress=False, augment=False)  # the loss must fall on these 16 images
    summary = train(task, list(_faces_like(16)), config, model_name="context_encoder", model_config=cfg.to_dict())
    rows = read_metrics(tmp_path)
    assert {"rec", "adv", "d", "g_total"} <= rows[0].keys()
    first = sum(r["rec"] for r in rows[:3]) / 3
    last = sum(r["rec"] for r in rows[-3:]) / 3
    assert last < 0.5 * first, (first, last)
    assert any(not torch.equal(a, b) for a, b in zip(d_before, D.parameters()))  # D was trained
    assert summary["step"] == 60
    out = task.sample(_faces_like(2))
    assert set(out) == {"input", "completed", "target"} and out["completed"].shape == (2, 3, 32, 32)


def test_task_full_output_scores_the_composite():
    from inpaint_utils.models.context_encoder import ContextEncoderTask

    cfg = ContextEncoderConfig.tiny(image_size=32, output="full", hole_size=None)
    G, D = ContextEncoderGenerator(cfg, seed=0), ContextEncoderDiscriminator(cfg, seed=1)
    task = ContextEncoderTask(G, D, mask_kind="blocks", mask_ratio=0.25)
    batch = torch.rand(3, 3, 32, 32)
    hole, weights = task.masks(batch, torch.Generator().manual_seed(0))
    assert weights.shape == (3, 1, 32, 32) and torch.all(weights[hole == 0] == 0)
    pred, target, fake = task._predict(batch, hole)
    assert torch.equal(target, batch)
    assert torch.equal(fake * (1 - hole), batch * (1 - hole))     # D sees the composite: known pixels are real
