"""Tests of inpaint_utils.models.glcic: the paper's tables (layers, dilations, shapes), parameter counts
recomputed by an independent formula, the training holes and local patches, the three-phase schedule
(which network learns when), the hole-area MSE, the composite fed to the discriminator, training and
resuming through the shared loop, Poisson blending, the registry and input checks. Tiny sizes, one thread."""
import json

import pytest
import torch
import torch.nn as nn

from inpaint_utils.baselines import poisson_blend
from inpaint_utils.checkpoint import checkpoint_info, latest_checkpoint, load_checkpoint
from inpaint_utils.models import MODELS, build_model, count_parameters
from inpaint_utils.models.glcic import (
    CompletionNetwork,
    GLCICConfig,
    GLCICDiscriminator,
    GLCICTask,
    crop_local,
    random_holes,
)
from inpaint_utils.train import StepContext, TrainConfig, train


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they make them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


# ------------------------------------------------------------------------------------ counting by hand
def conv(c_in, c_out, k, bias=True):
    """A k x k (transposed) convolution: c_in * c_out * k * k weights, plus c_out biases."""
    return c_in * c_out * k * k + (c_out if bias else 0)


def bn(c):
    """BatchNorm2d: a scale and a shift per channel (running statistics are buffers)."""
    return 2 * c


def fc(n_in, n_out, bias=True):
    return n_in * n_out + (n_out if bias else 0)


def completion_count(w=64, bias=True):
    """Table 1, row by row, for widths scaled by w / 64."""
    rows = [  # (c_in, c_out, kernel, batch norm)
        (4, w, 5, True),                                       # conv 5x5 64 (input RGB + mask)
        (w, 2 * w, 3, True), (2 * w, 2 * w, 3, True),         # conv 3x3 128 s2, conv 3x3 128
        (2 * w, 4 * w, 3, True),                               # conv 3x3 256 s2
        *[(4 * w, 4 * w, 3, True)] * 2,                        # conv 3x3 256 x2
        *[(4 * w, 4 * w, 3, True)] * 4,                        # dilated 2, 4, 8, 16
        *[(4 * w, 4 * w, 3, True)] * 2,                        # conv 3x3 256 x2
        (4 * w, 2 * w, 4, True), (2 * w, 2 * w, 3, True),     # deconv 4x4 128, conv 3x3 128
        (2 * w, w, 4, True), (w, w // 2, 3, True),             # deconv 4x4 64, conv 3x3 32
        (w // 2, 3, 3, False),                                 # output 3x3 3, sigmoid, no BN
    ]
    return sum(conv(i, o, k, bias) + (bn(o) if has_bn else 0) for i, o, k, has_bn in rows)


def branch_count(widths, side, w=64, bias=True):
    """Conv 5x5 s2 (BN) per width, then FC 1024 from the last feature map (side / 2**n)."""
    chans = (3, *widths)
    convs = sum(conv(i, o, 5, bias) + bn(o) for i, o in zip(chans[:-1], chans[1:]))
    last = side // 2 ** len(widths)
    return convs + fc(widths[-1] * last * last, 16 * w, bias)


def discriminator_count(image_size=256, local_size=128, w=64, bias=True):
    glob = branch_count([w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w], image_size, w, bias)
    loc = branch_count([w, 2 * w, 4 * w, 8 * w, 8 * w], local_size, w, bias)
    return glob, loc, fc(32 * w, 1, bias)


@pytest.fixture(scope="module")
def paper_models():
    cfg = GLCICConfig()
    return CompletionNetwork(cfg, seed=0), GLCICDiscriminator(cfg, seed=0)


def _convs(module):
    return [(type(m).__name__, m.in_channels, m.out_channels, m.kernel_size[0], m.stride[0], m.dilation[0])
            for m in module.modules() if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d))]


# ------------------------------------------------------------------------------------ the tables
def test_config_defaults_are_the_papers():
    cfg = GLCICConfig()
    assert (cfg.image_size, cfg.local_size, cfg.hole_range, cfg.base_channels) == (256, 128, (96, 128), 64)
    smoke = GLCICConfig(image_size=128, base_channels=8)
    assert (smoke.local_size, smoke.hole_range) == (64, (48, 64))       # the paper's sizes, scaled
    assert GLCICConfig.tiny().hole_range == (24, 32) and GLCICConfig.tiny().local_size == 32


def test_completion_network_follows_table_1(paper_models):
    g, _ = paper_models
    C, T = "Conv2d", "ConvTranspose2d"
    assert _convs(g) == [
        (C, 4, 64, 5, 1, 1), (C, 64, 128, 3, 2, 1), (C, 128, 128, 3, 1, 1), (C, 128, 256, 3, 2, 1),
        (C, 256, 256, 3, 1, 1), (C, 256, 256, 3, 1, 1),
        (C, 256, 256, 3, 1, 2), (C, 256, 256, 3, 1, 4), (C, 256, 256, 3, 1, 8), (C, 256, 256, 3, 1, 16),
        (C, 256, 256, 3, 1, 1), (C, 256, 256, 3, 1, 1),
        (T, 256, 128, 4, 2, 1), (C, 128, 128, 3, 1, 1), (T, 128, 64, 4, 2, 1), (C, 64, 32, 3, 1, 1),
        (C, 32, 3, 3, 1, 1),
    ]
    # the paper's order in every block but the last: conv -> BatchNorm -> ReLU; the output ends in a sigmoid
    blocks = list(g.layers.children())
    for block in blocks[:-1]:
        assert [type(m) for m in block] == [type(block[0]), nn.BatchNorm2d, nn.ReLU]
    assert [type(m) for m in blocks[-1]] == [nn.Conv2d, nn.Sigmoid]
    assert [m.dilation[0] for m in g.modules() if isinstance(m, nn.Conv2d) and m.dilation[0] > 1] == [2, 4, 8, 16]


def test_discriminators_follow_table_2(paper_models):
    _, d = paper_models
    assert [(c[1], c[2], c[3], c[4]) for c in _convs(d.global_branch)] == [
        (3, 64, 5, 2), (64, 128, 5, 2), (128, 256, 5, 2), (256, 512, 5, 2), (512, 512, 5, 2), (512, 512, 5, 2)]
    assert [(c[1], c[2], c[3], c[4]) for c in _convs(d.local_branch)] == [
        (3, 64, 5, 2), (64, 128, 5, 2), (128, 256, 5, 2), (256, 512, 5, 2), (512, 512, 5, 2)]
    for branch in (d.global_branch, d.local_branch):
        assert all([type(m) for m in blk] == [nn.Conv2d, nn.BatchNorm2d, nn.ReLU] for blk in branch.features)
        assert (branch.fc[1].in_features, branch.fc[1].out_features) == (512 * 4 * 4, 1024)
        assert isinstance(branch.fc[2], nn.ReLU)
    assert (d.classifier.in_features, d.classifier.out_features) == (2048, 1)
    assert not any(isinstance(m, nn.Sigmoid) for m in d.modules())      # logits: BCE-with-logits in the loss


def test_parameter_counts_by_independent_formula(paper_models):
    g, d = paper_models
    assert count_parameters(g) == completion_count() == 6_072_131
    assert round(count_parameters(g) / 1e6, 2) == 6.07            # the PyTorch port's 6.07 M
    glob, loc, concat = discriminator_count()
    assert count_parameters(d.global_branch) == glob == 25_808_384
    assert count_parameters(d.local_branch) == loc == 19_253_248
    assert count_parameters(d.classifier) == concat == 2_049
    assert count_parameters(d) == glob + loc + concat == 45_063_681
    assert 2 * fc(8192, 1024) == 16_779_264                      # the two FC 1024 layers: 16.8 M of the 45.1 M


@pytest.mark.parametrize("kwargs", [dict(bias=False), dict(image_size=128, base_channels=8),
                                    dict(image_size=64, base_channels=8, local_size=64)])
def test_parameter_counts_of_variants(kwargs):
    cfg = GLCICConfig(**kwargs)
    w, b = cfg.base_channels, cfg.bias
    assert count_parameters(CompletionNetwork(cfg)) == completion_count(w, b)
    assert count_parameters(GLCICDiscriminator(cfg)) == sum(discriminator_count(cfg.image_size, cfg.local_size, w, b))
    if not b:
        assert completion_count() - completion_count(bias=False) == 2_979


# ------------------------------------------------------------------------------------ shapes and values
def test_paper_shapes_at_256(paper_models):
    g, d = paper_models
    table = g.layer_table()
    assert [r["shape"] for r in table] == (
        ["64 x 256 x 256"] + ["128 x 128 x 128"] * 2 + ["256 x 64 x 64"] * 9 + ["128 x 128 x 128"] * 2
        + ["64 x 256 x 256", "32 x 256 x 256", "3 x 256 x 256"])
    assert [r["dilation"] for r in table if r["type"] == "dilated"] == [2, 4, 8, 16]
    assert [r["shape"] for r in d.global_branch.layer_table()] == [
        "64 x 128 x 128", "128 x 64 x 64", "256 x 32 x 32", "512 x 16 x 16", "512 x 8 x 8", "512 x 4 x 4", "1024"]
    assert [r["shape"] for r in d.local_branch.layer_table()] == [
        "64 x 64 x 64", "128 x 32 x 32", "256 x 16 x 16", "512 x 8 x 8", "512 x 4 x 4", "1024"]


@pytest.mark.parametrize("size", [256, 128, 64])
def test_forward_shapes_and_sigmoid_range(size):
    cfg = GLCICConfig(image_size=size, base_channels=4 if size == 256 else 8)
    g, d = CompletionNetwork(cfg, seed=1), GLCICDiscriminator(cfg, seed=2)
    gen = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, size, size, generator=gen)
    holes = random_holes(2, size, cfg.hole_range, cfg.local_size, generator=gen)
    for mode in ("train", "eval"):
        g.train(mode == "train")
        d.train(mode == "train")
        with torch.no_grad():
            pred = g(image, holes.mask)
            logits = d(image, crop_local(image, holes.corners, cfg.local_size))
        assert pred.shape == image.shape and pred.dtype == torch.float32
        assert pred.min() > 0 and pred.max() < 1                                  # sigmoid
        assert logits.shape == (2,) and torch.isfinite(logits).all()
    # fully convolutional: any size that is a multiple of 4 completes
    with torch.no_grad():
        assert g(torch.rand(1, 3, 36, 52), torch.zeros(1, 1, 36, 52)).shape == (1, 3, 36, 52)


def test_input_is_centred_on_the_mean_pixel_with_the_mask_channel():
    fill = (0.25, 0.5, 0.75)
    g = CompletionNetwork(GLCICConfig.tiny(fill=fill), seed=0).eval()
    seen = {}
    g.layers.conv1[0].register_forward_hook(lambda m, inp, out: seen.update(x=inp[0].detach()))
    image = torch.rand(1, 3, 64, 64)
    mask = torch.zeros(1, 1, 64, 64)
    mask[..., 10:40, 20:50] = 1
    g(image, mask)
    x = seen["x"]
    assert x.shape == (1, 4, 64, 64)
    assert torch.equal(x[:, 3:], mask)                                            # the mask channel
    assert torch.all(x[:, :3][mask.bool().expand(1, 3, 64, 64)] == 0)             # hole = mean pixel -> 0
    known = (1 - mask).bool().expand(1, 3, 64, 64)
    centred = image - torch.tensor(fill).view(1, 3, 1, 1)
    assert torch.equal(x[:, :3][known], centred[known])


def test_predict_full_keeps_known_pixels_and_ignores_the_hole():
    g = CompletionNetwork(GLCICConfig.tiny(), seed=0).eval()
    gen = torch.Generator().manual_seed(3)
    image = torch.rand(3, 3, 64, 64, generator=gen)
    mask = random_holes(3, 64, (24, 32), 32, generator=gen).mask
    garbage = torch.where(mask.bool().expand_as(image), torch.rand(image.shape, generator=gen), image)
    with torch.no_grad():
        out = g.predict_full(image, mask)
        pred = g(image, mask)
        assert torch.equal(g(garbage, mask), pred)                    # the hole's content never reaches C
        assert torch.equal(g(g.make_input(image, mask), mask), pred)  # an already filled input: the same
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(out[known], image[known])
    hole = mask.bool().expand_as(image)
    assert torch.equal(out[hole], pred[hole])
    # one mask for the whole batch broadcasts
    with torch.no_grad():
        assert g.predict_full(image, mask[:1]).shape == image.shape


# ------------------------------------------------------------------------------------ holes and patches
@pytest.mark.parametrize("placement", ["random", "center"])
def test_holes_have_the_papers_sides_and_the_patch_contains_them(placement):
    holes = random_holes(400, 256, (96, 128), 128, seed=0, placement=placement)
    top, left, h, w = holes.boxes.unbind(1)
    assert h.min() == 96 and h.max() == 128 and w.min() == 96 and w.max() == 128     # both ends reached
    assert len(torch.unique(h)) == 33 and len(torch.unique(w)) == 33                  # every side length
    assert not torch.equal(h, w)                                                       # rectangles, not squares
    assert (top >= 0).all() and (left >= 0).all() and (top + h <= 256).all() and (left + w <= 256).all()
    ct, cl = holes.corners.unbind(1)
    assert (ct >= 0).all() and (cl >= 0).all() and (ct + 128 <= 256).all() and (cl + 128 <= 256).all()
    assert (ct <= top).all() and (top + h <= ct + 128).all() and (cl <= left).all() and (left + w <= cl + 128).all()
    # the mask is exactly the boxes, and every hole pixel is inside its local patch
    assert torch.equal(holes.mask.sum(dim=(1, 2, 3)), (h * w).float())
    assert torch.equal(crop_local(holes.mask, holes.corners, 128).sum(dim=(1, 2, 3)), holes.mask.sum(dim=(1, 2, 3)))
    patch = holes.patch_mask(128)
    assert (patch.sum(dim=(1, 2, 3)) == 128 * 128).all() and bool((patch >= holes.mask).all())
    if placement == "center":   # away from the borders the patch is centred on the hole
        free = (top + h // 2 - 64 >= 0) & (top + h // 2 + 64 <= 256)
        assert torch.equal(ct[free], (top + h // 2 - 64)[free])
    else:                       # the patch moves around the hole
        assert len(torch.unique(ct - top)) > 15


def test_the_local_patch_is_centred_on_the_hole_by_default():
    # the paper: the local discriminator sees a patch centred around the completed region
    holes = random_holes(64, 256, (96, 128), 128, seed=0)
    assert torch.equal(holes.corners, random_holes(64, 256, (96, 128), 128, seed=0, placement="center").corners)
    assert _tiny_task().placement == "center"


def test_holes_are_reproducible_and_drawn_from_the_generator():
    a = random_holes(8, 128, (48, 64), 64, seed=5)
    b = random_holes(8, 128, (48, 64), 64, generator=torch.Generator().manual_seed(5))
    c = random_holes(8, 128, (48, 64), 64, seed=6)
    assert all(torch.equal(x, y) for x, y in zip(a, b))
    assert not torch.equal(a.boxes, c.boxes)
    with pytest.raises(ValueError, match="either generator or seed"):
        random_holes(2, 128, (48, 64), 64, generator=torch.Generator(), seed=1)


def test_crop_local_matches_a_loop_and_passes_gradients():
    images = torch.rand(4, 3, 20, 24, requires_grad=True)
    corners = torch.tensor([[0, 0], [12, 16], [3, 7], [5, 0]])
    out = crop_local(images, corners, 8)
    ref = torch.stack([images[i, :, t:t + 8, l:l + 8] for i, (t, l) in enumerate(corners.tolist())])
    assert torch.equal(out, ref)
    out.sum().backward()
    assert images.grad.sum() == 4 * 3 * 8 * 8
    with pytest.raises(ValueError, match="must lie inside"):
        crop_local(images, torch.tensor([[13, 0]] * 4), 8)
    with pytest.raises(ValueError, match="corners must be an integer tensor"):
        crop_local(images, torch.zeros(4, 2), 8)


# ------------------------------------------------------------------------------------ the loss and the schedule
def test_mse_is_normalised_by_the_hole_area():
    image = torch.full((2, 3, 16, 16), 0.5)
    for side in (4, 12):
        mask = torch.zeros(2, 1, 16, 16)
        mask[..., :side, :side] = 1
        pred = image + 0.1 * mask + 0.3 * (1 - mask)           # error 0.1 in the hole, 0.3 outside
        loss = GLCICTask.completion_loss(pred, image, mask)
        assert loss.ndim == 0 and torch.isclose(loss, torch.tensor(0.01), rtol=1e-5)   # hole mean, any hole size
    mask = torch.zeros(1, 1, 16, 16)
    mask[..., 0, 0] = 1
    pred = image[:1].clone()
    pred[0, 0, 0, 0] += 0.3                                     # one channel of the one hole pixel
    assert torch.isclose(GLCICTask.completion_loss(pred, image[:1], mask), torch.tensor(0.09 / 3))


def _tiny_task(**kwargs):
    cfg = GLCICConfig.tiny()
    return GLCICTask(CompletionNetwork(cfg, seed=0), GLCICDiscriminator(cfg, seed=1), **kwargs)


def _params(model):
    return [p.detach().clone() for p in model.parameters()]


def _changed(before, model):
    return any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_phase_schedule_updates_the_right_network():
    task = _tiny_task(t_c=2, t_d=2)
    assert [task.phase(s) for s in range(6)] == ["completion"] * 2 + ["discriminator"] * 2 + ["joint"] * 2
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    batch = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    expected = {"completion": ({"mse"}, True, False), "discriminator": ({"mse", "d"}, False, True),
                "joint": ({"mse", "d", "adv", "g"}, True, True)}
    for step in range(6):
        g_before, d_before = _params(task.generator), _params(task.discriminator)
        ctx._begin(step)
        logs = task.train_step(batch, step, ctx)
        keys, g_moves, d_moves = expected[task.phase(step)]
        assert set(logs) == keys, step
        assert _changed(g_before, task.generator) == g_moves, step
        assert _changed(d_before, task.discriminator) == d_moves, step
        assert ctx.stepped == (["generator"] if step < 2 else ["discriminator"] if step < 4
                               else ["discriminator", "generator"])
        if "g" in logs:
            assert logs["g"] == pytest.approx(logs["mse"] + 4e-4 * logs["adv"], rel=1e-5)


def test_joint_phase_scales_the_discriminator_loss_by_alpha():
    # the paper's objective weights both adversarial terms by alpha; the D-only phase trains on the plain BCE
    task = _tiny_task(t_c=0, t_d=1, alpha=0.25)
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    seen = {}
    backward = ctx.backward
    def spy(loss, which, **kwargs):
        seen.setdefault(which, loss.detach())
        return backward(loss, which, **kwargs)
    ctx.backward = spy
    batch = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(3))
    for step, weight in ((0, 1.0), (1, 0.25)):          # phase 2, then phase 3
        seen.clear()
        ctx._begin(step)
        logs = task.train_step(batch, step, ctx)
        assert float(seen["discriminator"]) == pytest.approx(weight * logs["d"], rel=1e-6), step


def test_discriminator_sees_the_composite():
    task = _tiny_task(t_c=0, t_d=5)
    seen = []
    task.discriminator.global_branch.register_forward_hook(lambda m, inp, out: seen.append(inp[0].detach()))
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    batch = torch.rand(4, 3, 64, 64, generator=torch.Generator().manual_seed(2))
    ctx._begin(0)
    task.train_step(batch, 0, ctx)
    real, fake = seen                                   # the real batch, then the completed images
    assert torch.equal(real, batch)
    mask = task.holes(4, torch.Generator().manual_seed(0)).mask   # the loop's generator drew M_c first
    known = (1 - mask).bool().expand_as(batch)
    assert torch.equal(fake[known], batch[known])       # known pixels are the image's: the composite
    assert not torch.equal(fake, batch)


def test_sample_rows_for_the_loop():
    task = _tiny_task()
    batch = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        rows = task.sample(batch, torch.Generator().manual_seed(0))
        again = task.sample(batch, torch.Generator().manual_seed(0))
    assert set(rows) == {"input", "completed", "target"} and all(v.shape == batch.shape for v in rows.values())
    assert torch.equal(rows["completed"], again["completed"])          # the same masks in every grid


def test_training_lowers_the_completion_loss():
    """30 Adadelta steps (the paper's optimiser) on near-flat bright images: the hole MSE falls from the
    untrained network's ~0.08 (sigmoid outputs near 0.5) to a small fraction of it."""
    task = _tiny_task(t_c=1000, t_d=0)
    gen = torch.Generator().manual_seed(0)
    colours = torch.rand(32, 3, 1, 1, generator=gen) * 0.2 + 0.7
    images = (colours + 0.05 * torch.rand(32, 3, 64, 64, generator=gen)).clamp(0, 1)
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    losses = []
    for step in range(30):
        ctx._begin(step)
        idx = torch.randint(0, 32, (4,), generator=gen)
        losses.append(task.train_step(images[idx], step, ctx)["mse"])
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert first > 0.05 and last < 0.25 * first, (first, last)


def test_checkpoint_round_trip_through_train_resume(tmp_path):
    images = torch.rand(16, 3, 64, 64, generator=torch.Generator().manual_seed(0))
    cfg = GLCICConfig.tiny()

    def run(num_steps, run_dir):
        task = GLCICTask(CompletionNetwork(cfg, seed=0), GLCICDiscriminator(cfg, seed=1), t_c=2, t_d=1)
        tc = TrainConfig(num_steps=num_steps, batch_size=4, seed=3, run_dir=run_dir, log_every=1, sample_every=None,
                         checkpoint_every=2, progress=False, tensorboard=False)
        summary = train(task, images, tc, model_name="glcic", model_config=cfg.to_dict())
        return task, summary

    whole, _ = run(5, tmp_path / "a")
    run(3, tmp_path / "b")
    resumed, summary = run(5, tmp_path / "b")
    assert summary["start_step"] == 3 and summary["step"] == 5
    for name in ("generator", "discriminator"):
        a, b = whole.models[name].state_dict(), resumed.models[name].state_dict()
        assert all(torch.equal(a[k], b[k]) for k in a), name
    # the checkpoint rebuilds the completion network by name and config
    info = checkpoint_info(latest_checkpoint(tmp_path / "b"))
    assert info["model_name"] == "glcic" and info["step"] == 5
    g = build_model(info["model_name"], info["config"])
    d = build_model("glcic_discriminator", info["config"])
    load_checkpoint(info["path"], {"generator": g, "discriminator": d}, model_name="glcic", config=cfg.to_dict())
    assert all(torch.equal(v, g.state_dict()[k]) for k, v in resumed.generator.state_dict().items())


# ------------------------------------------------------------------------------------ Poisson blending
def _ramp(batch=2, size=64):
    yy, xx = torch.meshgrid(torch.linspace(0.2, 0.8, size), torch.linspace(0.1, 0.7, size), indexing="ij")
    return torch.stack([yy, xx, (yy + xx) / 2])[None].repeat(batch, 1, 1, 1)


def test_poisson_blend_removes_a_colour_shift_and_keeps_known_pixels():
    image = _ramp()
    mask = torch.zeros(2, 1, 64, 64)
    mask[0, :, 20:44, 16:40] = 1
    mask[1, :, 0:30, 40:64] = 1                         # a hole touching two image borders
    completed = (image + 0.2 * mask).clamp(0, 1)        # right gradients, wrong colour
    out = poisson_blend(image, completed, mask)
    known = (1 - mask).bool().expand_as(image)
    assert out.shape == image.shape and out.dtype == image.dtype
    assert torch.equal(out[known], image[known])        # far from the hole and right next to it
    hole = mask[0].bool().expand(3, 64, 64)
    assert (out[0] - image[0])[hole].abs().mean() < 0.02    # the 0.2 shift is gone (8-bit output)
    assert (out[1] - completed[1]).abs().max() > 0.1        # the border hole is blended too


def test_poisson_blend_errors():
    image = _ramp(1)
    with pytest.raises(ValueError, match=r"mask of image\(s\) \[0\] is empty"):
        poisson_blend(image, image, torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="no known pixel"):
        poisson_blend(image, image, torch.ones(1, 1, 64, 64))
    with pytest.raises(ValueError, match="must have the same shape"):
        poisson_blend(image, image[..., :32], torch.ones(1, 1, 64, 64))


# ------------------------------------------------------------------------------------ config, registry, errors
def test_config_round_trip_and_registry():
    for cfg in (GLCICConfig(), GLCICConfig.tiny(fill=(0.1, 0.2, 0.3), bias=False)):
        assert GLCICConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert GLCICConfig().to_dict()["local_size"] == 128
    with pytest.raises(ValueError, match=r"unknown GLCICConfig keys \['layers'\]"):
        GLCICConfig.from_dict({"layers": 3})
    assert MODELS["glcic"][0] is CompletionNetwork and MODELS["glcic_discriminator"][0] is GLCICDiscriminator
    g = build_model("glcic", GLCICConfig.tiny(), seed=0)
    again = build_model(g.model_name, g.config.to_dict(), seed=0)
    assert again.config == g.config and all(torch.equal(v, again.state_dict()[k]) for k, v in g.state_dict().items())
    assert isinstance(build_model("glcic_discriminator", g.config.to_dict()), GLCICDiscriminator)


@pytest.mark.parametrize("kwargs,match", [
    (dict(image_size=100), "image_size must be a positive multiple of 64"),
    (dict(local_size=48), "local_size must be a positive multiple of 32"),
    (dict(image_size=64, local_size=128), "must not exceed image_size"),
    (dict(hole_min=0), "hole_min must be a positive int"),
    (dict(hole_min=120, hole_max=100), "hole_min 120 must not exceed hole_max 100"),
    (dict(hole_max=160), "hole_max 160 must not exceed local_size 128"),
    (dict(base_channels=7), "base_channels must be an even int"),
    (dict(fill=(0.5, 0.5)), r"fill must be the mean pixel as an \(r, g, b\)"),
    (dict(fill=(0.5, 0.5, 2.0)), r"fill must be the mean pixel"),
])
def test_config_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLCICConfig(**kwargs)


def test_bad_inputs_raise():
    cfg = GLCICConfig.tiny()
    g, d = CompletionNetwork(cfg, seed=0), GLCICDiscriminator(cfg, seed=0)
    mask = torch.zeros(1, 1, 64, 64)
    with pytest.raises(ValueError, match="multiples of 4"):
        g(torch.rand(1, 3, 62, 64), torch.zeros(1, 1, 62, 64))
    with pytest.raises(ValueError, match=r"image must be in \[0, 1\]"):
        g(torch.rand(1, 3, 64, 64) * 2 - 1, mask)
    with pytest.raises(ValueError, match="mask must be binary"):
        g(torch.rand(1, 3, 64, 64), mask + 0.5)
    with pytest.raises(ValueError, match="takes 64x64 images"):
        d(torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32))
    with pytest.raises(ValueError, match="takes 32x32 images"):
        d(torch.rand(2, 3, 64, 64), torch.rand(2, 3, 64, 64))
    with pytest.raises(ValueError, match="batches differ"):
        d(torch.rand(2, 3, 64, 64), torch.rand(3, 3, 32, 32))
    with pytest.raises(TypeError, match="config must be a GLCICConfig"):
        CompletionNetwork({"image_size": 64})
    with pytest.raises(ValueError, match="disagree"):
        GLCICTask(g, GLCICDiscriminator(GLCICConfig.tiny(image_size=128)))
    with pytest.raises(ValueError, match="optimizer must be one of"):
        GLCICTask(g, d, optimizer="sgd")
    with pytest.raises(ValueError, match="t_c must be an int >= 0"):
        GLCICTask(g, d, t_c=-1)
    with pytest.raises(ValueError, match="placement must be one of"):
        random_holes(2, 64, (24, 32), 32, seed=0, placement="corner")
    with pytest.raises(ValueError, match="local_size must be an int"):
        random_holes(2, 64, (24, 40), 32, seed=0)
    assert isinstance(_tiny_task(optimizer="adam").optimizers["generator"], torch.optim.Adam)
    assert isinstance(_tiny_task().optimizers["discriminator"], torch.optim.Adadelta)
