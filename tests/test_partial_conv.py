"""Tests of inpaint_utils.models.partial_conv: the partial convolution against a plain per-window
reference written here (loops over output positions), gradcheck in float64, unseen holes staying holes;
the PConv U-Net (parameter count worked out from the paper's layer table, layer list, shapes, masks
of the skip connections, independence of the hole's pixel values, preserved known pixels), the
fine-tuning phase's frozen encoder BatchNorm, and the training task (falling loss, phases, checkpoint
round trip)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from inpaint_utils.losses import VGG16Features
from inpaint_utils.masks import make_mask
from inpaint_utils.models import MODELS, build_model, count_parameters
from inpaint_utils.models.partial_conv import (
    PartialConv2d,
    PConvConfig,
    PConvTask,
    PConvUNet,
    fill_dependence,
    freeze_encoder_batchnorm,
    irregular_masks,
)


# ------------------------------------------------------------------------------ reference layer
def reference_partial_conv(x, valid, weight, bias, stride, padding):
    """Eq. 1-2 one output pixel at a time: zero-pad X and M, take each k x k window (all channels),
    ``W . (X * M) * sum(1) / sum(M) + b`` where ``sum(M) > 0``, else 0; ``m' = [sum(M) > 0]``."""
    b, c, h, w = x.shape
    c_out, _, k, _ = weight.shape
    valid = valid.expand(b, c, h, w)
    xp = F.pad(x, (padding,) * 4)
    mp = F.pad(valid, (padding,) * 4)
    ho, wo = (h + 2 * padding - k) // stride + 1, (w + 2 * padding - k) // stride + 1
    out = torch.zeros(b, c_out, ho, wo, dtype=x.dtype)
    new = torch.zeros(b, 1, ho, wo, dtype=x.dtype)
    for n in range(b):
        for i in range(ho):
            for j in range(wo):
                xs = xp[n, :, i * stride:i * stride + k, j * stride:j * stride + k]
                ms = mp[n, :, i * stride:i * stride + k, j * stride:j * stride + k]
                total = ms.sum()
                if total > 0:
                    for o in range(c_out):
                        out[n, o, i, j] = (weight[o] * xs * ms).sum() * (c * k * k) / total + (
                            bias[o] if bias is not None else 0.0)
                    new[n, 0, i, j] = 1.0
    return out, new


def _layer(c_in, c_out, k, stride, bias=True, seed=0):
    torch.manual_seed(seed)
    layer = PartialConv2d(c_in, c_out, k, stride=stride, bias=bias).double()
    if bias:
        with torch.no_grad():
            layer.bias.normal_()
    return layer


@pytest.mark.parametrize("k,stride,channel_mask", [(3, 1, True), (3, 2, False), (5, 2, True), (7, 2, False)])
def test_partial_conv_equals_the_per_window_reference(k, stride, channel_mask):
    g = torch.Generator().manual_seed(k * 10 + stride)
    x = torch.randn(2, 3, 9, 9, generator=g, dtype=torch.float64)
    shape = (2, 3, 9, 9) if channel_mask else (2, 1, 9, 9)
    valid = (torch.rand(shape, generator=g) > 0.6).double()        # mostly holes: many partial windows
    valid[0, :, :5, :5] = 0                                          # and a large hole
    layer = _layer(3, 4, k, stride)
    out, new = layer(x, valid)
    ref_out, ref_new = reference_partial_conv(x, valid, layer.weight, layer.bias, stride, k // 2)
    assert out.shape == ref_out.shape and new.shape == (2, 4) + ref_out.shape[-2:]
    assert torch.allclose(out, ref_out, atol=1e-10)
    assert torch.equal(new, ref_new.expand_as(new))
    assert 0 < ref_new.mean() < 1                                    # the case has both kinds of windows


def test_one_channel_mask_is_the_same_as_equal_channels_and_full_mask_is_a_plain_conv():
    g = torch.Generator().manual_seed(1)
    x = torch.randn(1, 3, 8, 8, generator=g, dtype=torch.float64)
    m1 = (torch.rand(1, 1, 8, 8, generator=g) > 0.5).double()
    layer = _layer(3, 5, 3, 1)
    a, ma = layer(x, m1)
    b, mb = layer(x, m1.expand(1, 3, 8, 8))
    assert torch.allclose(a, b, atol=1e-12) and torch.equal(ma, mb)
    # every pixel known: the interior is an ordinary convolution (borders are rescaled: padding is a hole)
    full, m_full = layer(x, torch.ones(1, 3, 8, 8, dtype=torch.float64))
    plain = F.conv2d(x, layer.weight, layer.bias, padding=1)
    assert torch.allclose(full[..., 1:-1, 1:-1], plain[..., 1:-1, 1:-1], atol=1e-12)
    assert torch.allclose(full[0, :, 0, 0] - layer.bias, (plain[0, :, 0, 0] - layer.bias) * 9 / 4, atol=1e-12)
    assert bool((m_full == 1).all())


def test_a_hole_no_window_sees_stays_a_hole_with_zero_output():
    x = torch.randn(1, 2, 9, 9, dtype=torch.float64)
    valid = torch.ones(1, 2, 9, 9, dtype=torch.float64)
    valid[..., 2:7, 2:7] = 0                                         # 5x5 hole: its inner 3x3 sees no known pixel
    layer = _layer(2, 3, 3, 1)
    assert bool((layer.bias.abs() > 0).all())                        # the bias is not added there either
    out, new = layer(x, valid)
    assert bool((out[..., 3:6, 3:6] == 0).all()) and bool((new[..., 3:6, 3:6] == 0).all())
    assert bool((new[..., 2, 2:7] == 1).all())                       # the hole's rim sees the known ring
    out2, new2 = _layer(3, 3, 3, 1, seed=1)(out, new)                # a second layer shrinks it to the centre
    assert bool((out2[..., 4, 4] == 0).all()) and int((new2[0, 0] == 0).sum()) == 1
    all_hole, m0 = layer(x, torch.zeros_like(valid))
    assert bool((all_hole == 0).all()) and bool((m0 == 0).all())


def test_hole_values_never_reach_the_output():
    layer = _layer(3, 4, 3, 2)
    x = torch.randn(1, 3, 8, 8, dtype=torch.float64)
    valid = torch.ones(1, 1, 8, 8, dtype=torch.float64)
    valid[..., 2:6, 1:5] = 0
    y = x.clone()
    y[..., 2:6, 1:5] = 1e3
    assert torch.allclose(layer(x, valid)[0], layer(y, valid)[0], atol=1e-9)


def test_gradcheck_in_float64():
    layer = _layer(2, 3, 3, 2)
    x = torch.randn(1, 2, 6, 6, dtype=torch.float64, requires_grad=True)
    valid = torch.ones(1, 2, 6, 6, dtype=torch.float64)
    valid[..., 1:4, 2:5] = 0
    valid[0, 1, 0, 0] = 0
    w = layer.weight.detach().clone().requires_grad_(True)
    b = layer.bias.detach().clone().requires_grad_(True)
    assert torch.autograd.gradcheck(lambda x, w, b: _functional(layer, x, w, b, valid), (x, w, b))


def _functional(layer, x, w, b, valid):
    """The layer with its weight and bias as inputs (for gradcheck)."""
    mod = PartialConv2d(layer.in_channels, layer.out_channels, layer.kernel_size, layer.stride).double()
    del mod.weight, mod.bias
    mod.weight, mod.bias = w, b
    return mod(x, valid)[0]


def test_layer_bad_inputs():
    layer = PartialConv2d(3, 4, 3)
    with pytest.raises(ValueError, match=r"x must have shape \(B, 3, H, W\)"):
        layer(torch.zeros(1, 2, 8, 8), torch.ones(1, 1, 8, 8))
    with pytest.raises(ValueError, match="valid"):
        layer(torch.zeros(1, 3, 8, 8), torch.ones(1, 2, 8, 8))
    with pytest.raises(ValueError, match="kernel_size"):
        PartialConv2d(3, 4, 0)


# ------------------------------------------------------------------------------ the U-Net
# the paper's supplementary table: (kernel, in, out, BatchNorm) of PConv1..16 (decoder inputs = concatenations)
PAPER_TABLE = [(7, 3, 64, False), (5, 64, 128, True), (5, 128, 256, True), (3, 256, 512, True)] + \
    [(3, 512, 512, True)] * 4 + [(3, 512 + 512, 512, True)] * 4 + \
    [(3, 512 + 256, 256, True), (3, 256 + 128, 128, True), (3, 128 + 64, 64, True), (3, 64 + 3, 3, False)]


def test_parameter_count_of_the_paper_configuration():
    expected = sum(k * k * c_in * c_out + c_out + (2 * c_out if bn else 0) for k, c_in, c_out, bn in PAPER_TABLE)
    assert expected == 32_865_236
    net = PConvUNet()
    assert count_parameters(net) == expected
    no_bias = sum(k * k * c_in * c_out + (2 * c_out if bn else 0) for k, c_in, c_out, bn in PAPER_TABLE)
    assert count_parameters(PConvUNet(PConvConfig(bias=False))) == no_bias == 32_859_729
    # the layer list, in order
    blocks = list(net.encoder) + list(net.decoder)
    got = [(b.conv.kernel_size, b.conv.in_channels, b.conv.out_channels, b.bn is not None) for b in blocks]
    assert got == PAPER_TABLE
    assert [b.conv.stride for b in blocks] == [2] * 8 + [1] * 8
    assert all(isinstance(b.act, nn.ReLU) for b in net.encoder)
    assert all(isinstance(b.act, nn.LeakyReLU) and b.act.negative_slope == 0.2 for b in list(net.decoder)[:-1])
    assert net.decoder[-1].act is None


def test_config_derives_layers_from_the_size_and_tiny_keeps_the_code_path():
    assert PConvConfig().num_layers == 8 and PConvConfig().encoder_kernels == (7, 5, 5, 3, 3, 3, 3, 3)
    assert PConvConfig(image_size=256).num_layers == 7
    tiny = PConvConfig.tiny()
    assert (tiny.image_size, tiny.num_layers, tiny.encoder_channels, tiny.encoder_kernels) == \
        (64, 5, (8, 16, 32, 64, 64), (7, 5, 5, 3, 3))
    net = PConvUNet(tiny, seed=0)
    assert type(net.encoder[0].conv) is PartialConv2d and len(net.decoder) == 5
    x = torch.rand(2, 3, 64, 64)
    m = make_mask("irregular", 64, 0.3, batch=2, seed=0)
    assert net(x, m).shape == (2, 3, 64, 64)
    assert net(torch.rand(1, 3, 32, 96), torch.zeros(1, 1, 32, 96)).shape == (1, 3, 32, 96)  # any multiple of 32
    for bad in ({"image_size": 100}, {"image_size": 64, "num_layers": 7}, {"encoder_channels": (1, 2)},
                {"encoder_kernels": (4,) * 8}):
        with pytest.raises(ValueError):
            PConvConfig(**bad)


def test_decoder_sees_the_encoder_masks_through_the_skips():
    net = PConvUNet(PConvConfig(image_size=32, base_channels=4), seed=0).eval()
    seen = []
    for block in net.decoder:
        block.conv.register_forward_hook(lambda mod, inp, out: seen.append(inp[1].detach().clone()))
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 4:20, 8:24] = 1
    net(torch.rand(1, 3, 32, 32), mask)
    last = seen[-1]                                                  # PConv(2n): 4 decoder + 3 input-mask channels
    assert last.shape == (1, 4 + 3, 32, 32)
    assert torch.equal(last[:, 4:], (1 - mask).expand(1, 3, 32, 32))  # the original mask, concatenated
    first = seen[0]                                                  # deepest skip: upsampled mask + PConv(n-1)'s
    assert first.shape[1] == net.config.encoder_channels[-1] + net.config.encoder_channels[-2]


def test_output_ignores_hole_pixels_and_predict_full_keeps_known_pixels():
    net = PConvUNet(PConvConfig.tiny(), seed=0).eval()
    g = torch.Generator().manual_seed(0)
    x = torch.rand(2, 3, 64, 64, generator=g)
    m = make_mask("irregular", 64, 0.4, batch=2, seed=1)
    y = torch.where(m.bool(), torch.rand(2, 3, 64, 64, generator=g), x)  # other values in the hole only
    with torch.no_grad():
        assert torch.allclose(net(x, m), net(y, m), atol=1e-5)
        out = net.predict_full(x, m)
    keep = (1 - m).bool().expand_as(x)
    assert torch.equal(out[keep], x[keep])
    assert 0 <= float(out.min()) and float(out.max()) <= 1
    with pytest.raises(ValueError, match="multiples of 2\\*\\*num_layers = 32"):
        net(torch.rand(1, 3, 48, 64), torch.zeros(1, 1, 48, 64))
    with pytest.raises(ValueError, match="binary"):
        net(x, m * 0.5)


def test_freezing_the_encoder_batchnorm_for_fine_tuning():
    net = PConvUNet(PConvConfig(image_size=32, base_channels=4), seed=0)
    freeze_encoder_batchnorm(net)
    net.train()
    enc_bn = [b.bn for b in net.encoder if b.bn is not None]
    dec_bn = [b.bn for b in net.decoder if b.bn is not None]
    assert enc_bn and all(not bn.training for bn in enc_bn) and all(bn.training for bn in dec_bn)
    assert all(not p.requires_grad for bn in enc_bn for p in bn.parameters())
    stats = [bn.running_mean.clone() for bn in enc_bn]
    net(torch.rand(2, 3, 32, 32), make_mask("irregular", 32, 0.3, batch=2, seed=0))
    assert all(torch.equal(a, bn.running_mean) for a, bn in zip(stats, enc_bn))     # frozen statistics
    assert any(not torch.equal(bn.running_mean, torch.zeros_like(bn.running_mean)) for bn in dec_bn)
    freeze_encoder_batchnorm(net, False)
    assert all(bn.training for bn in enc_bn) and all(p.requires_grad for bn in enc_bn for p in bn.parameters())


def test_config_round_trip_and_registry():
    cfg = PConvConfig.tiny()
    assert PConvConfig.from_dict(cfg.to_dict()) == cfg
    assert MODELS["partial_conv"] == (PConvUNet, PConvConfig)
    net = build_model("partial_conv", cfg.to_dict(), seed=0)
    assert isinstance(net, PConvUNet) and net.model_name == "partial_conv"
    with pytest.raises(ValueError, match="unknown PConvConfig keys"):
        PConvConfig.from_dict({"cnum": 3})


# ------------------------------------------------------------------------------ training
def _smooth_images(n=4, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    low = torch.rand(n, 3, 4, 4, generator=g)
    return F.interpolate(low, size=(size, size), mode="bilinear", align_corners=False).clamp(0, 1)


def _small_task(**kwargs):
    cfg = PConvConfig(image_size=32, base_channels=8, loss_features="random")
    net = PConvUNet(cfg, seed=0)
    return cfg, net, PConvTask(net, VGG16Features("random", seed=0), **kwargs)


def test_task_phases_masks_and_errors():
    from inpaint_utils.train import StepContext

    cfg, net, task = _small_task(finetune_step=1)
    opt = task.optimizers["generator"]
    assert opt.param_groups[0]["lr"] == 2e-4 and task.loss_weights == {"valid": 1.0, "hole": 6.0,
                                                                       "perceptual": 0.05, "style": 120.0, "tv": 0.1}
    assert set(task.models) == {"generator"}                     # the VGG is not trained nor checkpointed
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    net.train()
    for step in range(2):
        ctx._begin(step)
        logs = task.train_step(_smooth_images(2), step, ctx)
        assert {"valid", "hole", "perceptual", "style_out", "style_comp", "tv", "total"} == set(logs)
        assert opt.param_groups[0]["lr"] == (2e-4 if step == 0 else 5e-5)
        assert net.encoder_bn_frozen == (step == 1)
    assert not net.encoder[1].bn.training
    m = task.masks(3, torch.Generator().manual_seed(0))
    assert m.shape == (3, 1, 32, 32) and 0.0 < float(m.mean()) < 0.7
    thick = PConvTask(net, task.vgg, mask_fn=lambda n, size, gen: make_mask("square", size, 0.25, batch=n, generator=gen))
    assert int(thick.masks(2, torch.Generator().manual_seed(0))[0].sum()) == 256
    bad = PConvTask(net, task.vgg, mask_fn=lambda n, size, gen: torch.rand(n, 1, size, size))
    with pytest.raises(ValueError, match="mask_fn's mask must be binary"):
        bad.masks(2)
    with pytest.raises(ValueError, match="unknown loss weights"):
        PConvTask(net, task.vgg, loss_weights={"gan": 1.0})
    with pytest.raises(TypeError, match="PConvUNet"):
        PConvTask(nn.Linear(2, 2), task.vgg)
    assert irregular_masks((0.1, 0.2))(2, 32, torch.Generator().manual_seed(0)).shape == (2, 1, 32, 32)


def test_training_lowers_the_loss_and_checkpoints_round_trip(tmp_path):
    from inpaint_utils.checkpoint import load_checkpoint
    from inpaint_utils.train import TrainConfig, read_metrics, train

    cfg, net, task = _small_task(lr=2e-3)
    config = TrainConfig(num_steps=30, batch_size=2, seed=0, log_every=3, sample_every=0, checkpoint_every=0,
                         run_dir=tmp_path, progress=False, tensorboard=False, augment=False)
    summary = train(task, _smooth_images(2), config, model_name="partial_conv", model_config=cfg.to_dict())
    rows = read_metrics(tmp_path)
    first = sum(r["total"] for r in rows[:2]) / 2
    last = sum(r["total"] for r in rows[-2:]) / 2
    print(f"PConv total loss {first:.4f} -> {last:.4f}")
    assert last < 0.7 * first, (first, last)
    assert summary["step"] == 30
    net2 = PConvUNet(cfg, seed=5)
    load_checkpoint(summary["checkpoint"], {"generator": net2}, model_name="partial_conv", config=cfg.to_dict())
    x = _smooth_images(2, seed=9)
    m = make_mask("irregular", 32, 0.3, batch=2, seed=0)
    net.eval(), net2.eval()
    with torch.no_grad():
        assert torch.equal(net.predict_full(x, m), net2.predict_full(x, m))
    out = task.sample(x, torch.Generator().manual_seed(0))
    assert set(out) == {"input", "completed", "target"} and all(v.shape == (2, 3, 32, 32) for v in out.values())
    hole = task.masks(2, torch.Generator().manual_seed(0))
    keep = (1 - hole).bool().expand_as(x)
    assert torch.equal(out["completed"][keep], x[keep])                  # known pixels preserved in the composite


def test_the_squeeze_features_train_too_and_the_config_names_the_network(tmp_path):
    """The offline substitute's losses (SqueezeNet 1.1's layers, random weights here: CI has no ImageNet ones) fall
    in a few steps on a tiny model; the config names the network, and a task given another is refused."""
    from inpaint_utils.losses import SqueezeNetFeatures
    from inpaint_utils.train import TrainConfig, read_metrics, train

    cfg = PConvConfig(image_size=32, base_channels=8, loss_features="squeeze_random")
    net = PConvUNet(cfg, seed=0)
    task = PConvTask(net, SqueezeNetFeatures("random", seed=0), lr=2e-3)
    config = TrainConfig(num_steps=20, batch_size=2, seed=0, log_every=2, sample_every=0, checkpoint_every=0,
                         run_dir=tmp_path, progress=False, tensorboard=False, augment=False)
    summary = train(task, _smooth_images(2), config, model_name="partial_conv", model_config=cfg.to_dict())
    rows = read_metrics(tmp_path)
    first, last = (sum(r["total"] for r in part) / 2 for part in (rows[:2], rows[-2:]))
    print(f"PConv total loss on SqueezeNet features {first:.4f} -> {last:.4f}")
    assert last < 0.7 * first, (first, last)
    assert summary["step"] == 20 and cfg.to_dict()["loss_features"] == "squeeze_random"
    with pytest.raises(ValueError, match="feature network is 'random' but the generator's config records "
                                         "loss_features='squeeze_random'"):
        PConvTask(net, VGG16Features("random", seed=0))
    assert PConvTask(net).vgg.network_name == "squeeze_random"           # built from the config when not given
    assert PConvConfig().loss_features == "vgg16"                          # the paper's
    with pytest.raises(ValueError, match="not 'auto'"):
        PConvConfig(loss_features="auto")
    with pytest.raises(ValueError, match="loss_features must be one of"):
        PConvConfig(loss_features="alexnet")


# ------------------------------------------------------------------------------ notebook 08's figures
def test_plain_convolutions_depend_on_the_hole_fill_in_a_widening_band_partial_ones_not_at_all():
    image = torch.rand(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    mask = torch.zeros(2, 1, 32, 32)
    mask[0, :, 10:20, 12:22] = 1                                             # a 10x10 hole
    mask[1, :, 4:8, 4:30] = 1                                                # a 4x26 bar
    found = fill_dependence(image, mask, depth=4, width=6, kernel_size=3, seed=1)
    assert [len(v) for v in found.values()] == [4, 4, 4]
    from scipy.ndimage import distance_transform_cdt

    dist = torch.stack([torch.from_numpy(distance_transform_cdt(m[0].numpy() == 0, metric="chessboard"))
                        for m in mask]).float()[:, None]          # chessboard distance to the hole, 0 in it
    for layer, (plain, partial, hole) in enumerate(zip(found["plain"], found["partial"], found["hole"]), start=1):
        assert plain.shape == partial.shape == hole.shape == (2, 1, 32, 32)
        assert torch.equal(partial, torch.zeros_like(partial))              # exactly independent of the fill
        band = (dist >= 1) & (dist <= layer)                                  # known pixels the hole can reach
        assert bool((plain[band] > 0).all())                                 # the fill leaks into every one
        assert torch.equal(plain[dist > layer], torch.zeros_like(plain[dist > layer]))   # and no farther
        # the partial convolution's hole shrinks by one pixel a side per 3x3 layer
        assert torch.equal(hole, -F.max_pool2d(-mask, 2 * layer + 1, 1, layer))   # the hole eroded
    with pytest.raises(ValueError, match="depth"):
        fill_dependence(image, mask, depth=0)


def test_encoder_holes_shrink_to_nothing_and_follow_the_mask_update():
    net = PConvUNet(PConvConfig.tiny(), seed=0)
    mask = make_mask("irregular", 64, 0.3, batch=2, seed=0)
    holes = net.encoder_holes(mask)
    assert [h.shape[-1] for h in holes] == [32, 16, 8, 4, 2]
    x, valid = torch.rand(2, 3, 64, 64), (1 - mask).expand(2, 3, 64, 64)
    for block, hole in zip(net.encoder, holes):                              # the same masks as the forward pass
        x, valid = block(x, valid)
        assert torch.equal(hole, 1 - valid[:, :1])
    shares = [float(h.mean()) for h in holes]
    assert shares[0] < float(mask.mean()) and shares == sorted(shares, reverse=True) and shares[-1] == 0.0
