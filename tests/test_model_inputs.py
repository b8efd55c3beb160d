"""Rule out a defect in what each learned model is fed (issue 24, item 3), on tiny models.

For every learned model (Context Encoder, cascade CE, GLCIC, DeepFill v1, PConv, DeepFill v2):

(a) the input its first layer receives is what its paper feeds: the values at the hole (the fill), the range,
    and the mask channel with its paper's convention (1 = hole, or 1 = known for PConv's ``M``);
(b) training and inference build that input with the same code: the first layer's input during the task's
    ``train_step`` equals the one during ``predict_full`` on the same images and holes;
(c) a tiny model trained briefly on flat-colour and smooth-gradient images fills their thin holes within 0.05
    (mean absolute error in the hole, [0, 1] scale) of the truth.

The first layer's input is read with a forward pre-hook, so what is checked is what the network really saw.
"""
from __future__ import annotations

import os
import time

import pytest
import torch
import torch.nn.functional as F

from inpaint_utils import masks
from inpaint_utils.losses import VGG16Features
from inpaint_utils.models.cascade import CascadeConfig, CascadeContextEncoder, CascadeTask
from inpaint_utils.models.context_encoder import (ContextEncoderConfig, ContextEncoderDiscriminator,
                                                  ContextEncoderGenerator, ContextEncoderTask)
from inpaint_utils.models.deepfill import DeepFillConfig, DeepFillCritic, DeepFillGenerator, DeepFillTask
from inpaint_utils.models.gated_conv import (DeepFillV2Config, DeepFillV2Generator, DeepFillV2Task, GatedConv2d,
                                             SNPatchGANDiscriminator)
from inpaint_utils.models.glcic import CompletionNetwork, GLCICConfig, GLCICDiscriminator, GLCICTask, random_holes
from inpaint_utils.models.partial_conv import PartialConv2d, PConvConfig, PConvTask, PConvUNet
from inpaint_utils.train import StepContext

SIZE = 32
#: GLCIC's global discriminator halves the image six times: 64 px at the least
SIZES = {"glcic": 64}
FILL = (0.3, 0.4, 0.5)        # a fill colour no image here has by chance


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def synthetic(n: int, size: int, generator: torch.Generator) -> torch.Tensor:
    """``n`` images ``(n, 3, size, size)``: even rows flat colours, odd rows linear gradients between two
    colours in a random direction (smooth: a fill that copies the border's colour or continues its slope wins)."""
    colours = torch.rand(n, 2, 3, generator=generator) * 0.8 + 0.1                      # (n, 2, 3)
    angle = torch.rand(n, generator=generator) * 2 * torch.pi
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, size), torch.linspace(-1, 1, size), indexing="ij")
    t = ((xs * angle.cos().view(n, 1, 1) + ys * angle.sin().view(n, 1, 1)) / 2.0 ** 0.5 + 1) / 2  # (n, S, S)
    t = t * (torch.arange(n) % 2).view(n, 1, 1)                                          # flat: t = 0
    a, b = colours[:, 0].view(n, 3, 1, 1), colours[:, 1].view(n, 3, 1, 1)
    return (a + (b - a) * t.unsqueeze(1)).clamp(0, 1)


def thin_masks(n: int, size: int, seed: int) -> torch.Tensor:
    """LaMa's thin strokes at ``size`` (each with at least one hole pixel)."""
    m = masks.lama_mask("thin", size, batch=n, seed=seed)
    assert bool((m.flatten(1).sum(1) > 0).all())
    return m


# ---------------------------------------------------------------------------- the models, tiny
def _ce(**kw):
    cfg = ContextEncoderConfig(image_size=SIZE, base_channels=8, bottleneck_dim=64, overlap=0, fill=FILL)
    g = ContextEncoderGenerator(cfg, seed=0)
    return ContextEncoderTask(g, ContextEncoderDiscriminator(cfg, seed=1), lr=kw.get("lr", 2e-3))


def _cascade(**kw):
    cfg = CascadeConfig.build("center", SIZE, overlap=0, base_channels=8, bottleneck_dim=64, fill=FILL)
    cascade = CascadeContextEncoder(ContextEncoderGenerator(cfg.ce64, seed=0), ContextEncoderGenerator(cfg.ce128, seed=2))
    return CascadeTask(cascade, ContextEncoderDiscriminator(cfg.ce128, seed=3), lr=kw.get("lr", 2e-3))


def _glcic(**kw):
    cfg = GLCICConfig(image_size=SIZES["glcic"], base_channels=kw.get("width", 8), fill=FILL)
    return GLCICTask(CompletionNetwork(cfg, seed=0), GLCICDiscriminator(cfg, seed=1), t_c=kw.get("t_c", 10_000),
                     t_d=1, alpha=4e-4, optimizer="adam", lr=kw.get("lr", 2e-3))


def _deepfill(**kw):
    cfg = DeepFillConfig(image_size=SIZE, cnum=kw.get("width", 8), critic_cnum=8)
    return DeepFillTask(DeepFillGenerator(cfg, seed=0), DeepFillCritic(cfg, seed=1), lr=kw.get("lr", 2e-3),
                        critic_steps=1)


def _pconv(**kw):
    cfg = PConvConfig(image_size=SIZE, base_channels=8, loss_features="random")
    return PConvTask(PConvUNet(cfg, seed=0), vgg=VGG16Features("random", seed=1), lr=kw.get("lr", 2e-3))


def _v2(**kw):
    cfg = DeepFillV2Config(image_size=SIZE, cnum=kw.get("width", 16), disc_cnum=8)
    return DeepFillV2Task(DeepFillV2Generator(cfg, seed=0), SNPatchGANDiscriminator(cfg, seed=1),
                          lr=kw.get("lr", 2e-3))


BUILD = {"ce": _ce, "cascade": _cascade, "glcic": _glcic, "deepfill": _deepfill, "pconv": _pconv, "deepfill_v2": _v2}


def _net(task):
    """The network whose first layer is read: the task's generator (for the cascade, its 128 CE)."""
    return task.generator


def _model(task):
    """What fills at inference: the generator (for the cascade, the whole cascade: its 64 CE, then its 128 CE)."""
    return task.cascade if isinstance(task, CascadeTask) else task.generator


def _first_layer(net) -> torch.nn.Module:
    # GatedConv2d before the Conv2d inside it (which sees the input after the gated layer's own padding)
    return next(m for m in net.modules() if isinstance(m, (torch.nn.Conv2d, PartialConv2d, GatedConv2d)))


def _fixed_holes(task, mask):
    """Make ``task`` draw ``mask`` (``(B, 1, S, S)``) as its training holes, whatever it would draw."""
    if isinstance(task, GLCICTask):
        cfg = task.generator.config
        # the fixed mask as GLCIC's Holes (its local patch: any patch containing the hole; the centre one here)
        holes = random_holes(mask.shape[0], cfg.image_size, cfg.hole_range, cfg.local_size, seed=0)
        fixed = holes._replace(mask=mask)
        task.holes = lambda batch, generator=None, device=None, ctx=None: fixed
    elif isinstance(task, (DeepFillTask, PConvTask)):
        task.masks = lambda n, generator=None: mask[: (n if isinstance(n, int) else n.shape[0])]
    elif isinstance(task, DeepFillV2Task):
        task.masks = lambda n, generator=None, size=None: mask[: (n if isinstance(n, int) else n.shape[0])]
    # the CE and the cascade have one training hole, their centre window: nothing to fix


def _mask_for(name: str, task, n: int) -> torch.Tensor:
    if name in ("ce", "cascade"):
        return _net(task).input_hole_mask(n)                       # the centre model's only hole
    if name == "glcic":                                            # a rectangle of GLCIC's own range
        cfg = task.generator.config
        return random_holes(n, cfg.image_size, cfg.hole_range, cfg.local_size, seed=3).mask
    return thin_masks(n, SIZE, seed=3)


def _capture(net):
    seen = []
    layer = _first_layer(net)
    handle = layer.register_forward_pre_hook(lambda module, args: seen.append(tuple(a.detach().clone() for a in args)))
    return seen, handle


def _train_step(task, batch, step=0):
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(0))
    ctx._begin(step)
    return task.train_step(batch, step, ctx)


# ---------------------------------------------------------------------------- (a) and (b)
@pytest.mark.parametrize("name", list(BUILD))
def test_the_first_layer_sees_its_papers_input_in_training_and_inference(name):
    task = BUILD[name]()
    net = _net(task)
    per_step = getattr(task, "batches_per_step", 1)
    size = net.config.image_size
    image = torch.rand(2 * per_step, 3, size, size, generator=torch.Generator().manual_seed(1))
    mask = _mask_for(name, task, 2 * per_step)
    _fixed_holes(task, mask)
    # training: the generator update's forward pass on the last batch of the step
    seen, handle = _capture(net)
    _train_step(task, image, step=0)
    handle.remove()
    image, mask = image[-2:], mask[:2]            # the generator update's batch (the last) and its holes (mask[:n])
    train_in = seen[-1]                                           # (v1: the critic's no-grad pass came first)
    # inference on the same images and holes
    model = _model(task).eval()
    seen, handle = _capture(net)
    with torch.no_grad():
        model.predict_full(image, mask)
    handle.remove()
    infer_in = seen[0]
    # (b) the same input in both (BatchNorm and dropout act after the first layer)
    assert len(train_in) == len(infer_in)
    for a, b in zip(train_in, infer_in):
        torch.testing.assert_close(a, b, rtol=0, atol=1e-6)
    x = infer_in[0]
    hole = mask.bool().expand(-1, 3, -1, -1)
    fill = torch.tensor(FILL).view(1, 3, 1, 1).expand_as(image)
    # (a) what each paper feeds
    if name == "ce":                     # Pathak et al.: RGB in [-1, 1], the dropped region = the mean colour
        assert x.shape[1] == 3
        torch.testing.assert_close(x, torch.where(hole, fill, image) * 2 - 1)
    elif name == "cascade":              # the cascade CE: the hole holds the frozen 64 CE's upscaled fill
        expected = task.cascade.make_input(image, mask)
        torch.testing.assert_close(x, expected * 2 - 1)
        assert not torch.allclose(x[hole], (fill * 2 - 1)[hole])  # not the constant fill
    elif name == "glcic":                # Iizuka et al.: RGB - mean pixel (hole = 0) and a mask channel, 1 = hole
        assert x.shape[1] == 4
        torch.testing.assert_close(x[:, :3], torch.where(hole, fill, image) - fill)
        assert float(x[:, :3][hole].abs().max()) == 0.0
        assert torch.equal(x[:, 3:], mask)
    elif name in ("deepfill", "deepfill_v2"):   # Yu et al. (v1 and v2 code): [x, ones, mask], x in [-1, 1] with
        assert x.shape[1] == 5                   # the hole at 0 (v1: the grey 0.5 fill; v2: zeroed), mask 1 = hole
        torch.testing.assert_close(x[:, :3], (image * 2 - 1) * (1 - mask))
        assert torch.equal(x[:, 3:4], torch.ones_like(mask)) and torch.equal(x[:, 4:], mask)
    elif name == "pconv":                # Liu et al.: the image and M, 1 = KNOWN; the hole's values are never used
        x, valid = infer_in
        torch.testing.assert_close(x, image * 2 - 1)
        assert torch.equal(valid, (1 - mask).expand(-1, 3, -1, -1))
        with torch.no_grad():            # whatever is in the hole, the output is the same
            noisy = torch.where(hole, torch.rand_like(image), image)
            torch.testing.assert_close(net(noisy, mask), net(image, mask))


# ---------------------------------------------------------------------------- (c)
#: steps of the short runs (reconstruction losses only: the discriminators are left out, which every task
#: allows, so that a few hundred steps measure the input pipeline and the pixel loss, not a GAN's balance)
FIT_STEPS, FIT_LR = 300, 2e-3


def _train_on_thin_holes(task, seed: int) -> None:
    """Make ``task`` draw fresh LaMa thin holes every step instead of its paper's (the CE and the cascade keep
    their one centre hole): what is tested is whether the model learns to fill what it is scored on."""
    g = torch.Generator().manual_seed(seed)
    size = _net(task).config.image_size
    draw = lambda n: thin_masks(n, size, seed=int(torch.randint(0, 2 ** 31, (1,), generator=g)))  # noqa: E731
    if isinstance(task, GLCICTask):
        cfg = task.generator.config
        corners = random_holes(1, cfg.image_size, cfg.hole_range, cfg.local_size, seed=0)   # unused in phase 1

        def holes(batch, generator=None, device=None, ctx=None):
            return corners._replace(mask=draw(batch))
        task.holes = holes
    elif isinstance(task, (DeepFillTask, PConvTask)):
        task.masks = lambda n, generator=None: draw(n if isinstance(n, int) else n.shape[0])
    elif isinstance(task, DeepFillV2Task):
        task.masks = lambda n, generator=None, size=None: draw(n if isinstance(n, int) else n.shape[0])


class _NoFeatures(torch.nn.Module):
    """A feature network of one 1x1 map (the loss runs it; weighted 0 here)."""

    def forward(self, x):
        return [x.mean(dim=(2, 3), keepdim=True)]


def fit_on_synthetic(name: str, steps: int = FIT_STEPS, lr: float = FIT_LR, batch: int = 8, seed: int = 0,
                     on_step=None, **build):
    """Train ``name``'s tiny model ``steps`` steps on fresh flat-colour and gradient images and fresh thin holes
    (the centre hole for the CE and the cascade), reconstruction loss only; return the task. For the cascade,
    its 64 CE is trained first on the 2x-downscaled images, then frozen (notebook 03's order). ``on_step(step,
    task, logs)``, if given, is called after every step (1-based ``step``; it may evaluate, then must leave the
    model in train mode): ``scripts/diagnose_flat_fills.py`` reads the error curve with it."""
    task = BUILD[name](lr=lr, **build)
    for attr in ("discriminator", "critic"):
        if hasattr(task, attr):
            setattr(task, attr, None)
    if isinstance(task, PConvTask):     # reconstruction only, as for the others: no perceptual / style terms,
        from inpaint_utils.losses import pconv_loss_weights   # so no feature network to run (it took ~90 s)

        task.loss_weights = pconv_loss_weights({"perceptual": 0.0, "style": 0.0})
        task.vgg = _NoFeatures()
    _train_on_thin_holes(task, seed)
    g = torch.Generator().manual_seed(seed)
    size = _net(task).config.image_size
    if name == "cascade":
        c64 = task.cascade.ce64.requires_grad_(True).train()        # trained first, then frozen (notebook 03)
        pre = ContextEncoderTask(c64, None, lr=lr)
        for step in range(steps):
            _train_step(pre, F.avg_pool2d(synthetic(batch, size, g), 2), step)
        c64.eval().requires_grad_(False)
    ctx = StepContext(task.optimizers, torch.device("cpu"), torch.Generator().manual_seed(seed))
    for step in range(steps):
        ctx._begin(step)
        logs = task.train_step(synthetic(batch, size, g), step, ctx)
        if on_step is not None:
            on_step(step + 1, task, logs)
    _model(task).eval()
    return task


def hole_error(task, name: str, n: int = 16, seed: int = 7) -> dict[str, float]:
    """Mean |fill - truth| in the hole, on new flat and gradient images with new thin LaMa holes (the centre
    window for the CE and the cascade, which fill nothing else)."""
    size = _net(task).config.image_size
    image = synthetic(n, size, torch.Generator().manual_seed(seed))
    mask = _net(task).input_hole_mask(n) if name in ("ce", "cascade") else thin_masks(n, size, seed)
    with torch.no_grad():
        out = _model(task).predict_full(image, mask)
    err = ((out - image).abs() * mask).flatten(1).sum(1) / (3 * mask.flatten(1).sum(1))     # (n,)
    return {"flat": float(err[0::2].mean()), "gradient": float(err[1::2].mean())}


#: Measured here (issue 24; reconstruction losses only, batch 8, fresh thin holes, 32 px, GLCIC 64 px; mean |error|
#: in the hole, flat / gradient; one thread; scripts/diagnose_flat_fills.py prints these): after 300 steps at lr 2e-3,
#: CE 0.045 / 0.040 (its centre hole), cascade 0.032 / 0.039, PConv 0.032 / 0.027 (the first measurement, not
#: repeated); GLCIC 0.136 / 0.109, DeepFill v1 0.091 / 0.103, DeepFill v2 0.114 / 0.102, against 0.158 / 0.13
#: untrained. Their inputs pass (a) and (b) above.
#: What the script measured for the three (seed 0 unless said):
#:
#: * DeepFill v1 is under-trained at a too-high lr: 2e-3 gives 0.072 / 0.075 after 1000 steps, 1e-4 0.043 / 0.059,
#:   5e-4 0.055 / 0.066 after 300 and 0.040 / 0.040 after 1000 (seed 1: 0.044 / 0.043; ~40 s). Its signal fades
#:   through the 17 ELU layers at init (Glorot, v1's TensorFlow default: activation std 0.39 after conv1, 0.007
#:   mid-decoder): so it runs here with FIT below (1000 steps, lr 5e-4) and passes.
#: * DeepFill v2 is under-trained: the gates (sigmoid ~ 0.5 at init) and Glorot make the gradient reaching its
#:   first layer 7e-9 against 5.5e-2 at the last after the first step (1e-7 after 100 steps at lr 5e-4; 7.7e-2
#:   after 300), so nothing moves for the first ~100-300 steps (at lr 1e-4 the error is still the untrained
#:   0.158 / 0.130 after 300). At lr 5e-4: 0.126 / 0.111 (300), 0.092 / 0.089 (1000), 0.055 / 0.064 (2000), 0.049 / 0.054 (3000 steps, ~210 s);
#:   at 2e-3 it plateaus, 0.113 / 0.102 after 1000. Its coarse stage stays at ~0.12 / 0.095 (0.11 even on the known
#:   pixels, where its L1 acts) throughout: the refined stage does the filling. Not found why the coarse is stuck.
#: * GLCIC plateaus near 0.1: at lr 2e-3, 0.122 / 0.099 (1000), 0.099 / 0.082 (2000), 0.103 / 0.084 (3000 steps);
#:   5e-4 and 2e-4 are worse (0.164 / 0.121, 0.146 / 0.101 after 1000); the paper's Adadelta (lr 1) 0.112 / 0.111.
#:   Ruled out: BatchNorm at test time (train-mode BN on the test batch gives the same, 0.094 / 0.087 at 3000);
#:   BatchNorm itself (replaced by the identity, He-initialised: 0.123 / 0.111 after 1000); the hole-only MSE (the
#:   MSE over every pixel: 0.100 / 0.084 after 1000, and the known pixels still off by 0.092); vanishing gradients
#:   (train mode: 4e-2 at the first layer, 2e-2 at the last, after the first step). The tiny network does not learn
#:   to copy a flat colour even where it sees it (the output's colour follows the input's with a gain of 0.39-0.81).
#:   A guess, not tested: a plain 17-layer stack without skips (PConv, which passes, is a U-Net) learns the identity
#:   slowly. The cause is not found.
#:
#: GLCIC and v2 run with RUN_SLOW=1, as strict expected failures: when one starts to pass, the test says so.
NOT_YET = {"glcic": "0.136 / 0.109 after 300 steps, plateau ~0.10 at 2000-3000 steps at lr 2e-3",
           "deepfill_v2": "0.114 / 0.102 after 300 steps; 0.049 / 0.054 only after 3000 at lr 5e-4 (~210 s)"}
#: per-model (steps, lr) where the default FIT_STEPS / FIT_LR under-train (measured above)
FIT = {"deepfill": (1000, 5e-4)}


def _case(name):
    if name not in NOT_YET:
        return name
    return pytest.param(name, marks=[
        pytest.mark.skipif(not os.environ.get("RUN_SLOW"), reason="set RUN_SLOW=1: a known failure"),
        pytest.mark.xfail(strict=True, reason=f"{name} does not yet fill flat thin holes within 0.05: {NOT_YET[name]}")])


@pytest.mark.parametrize("name", [_case(n) for n in BUILD])
def test_a_briefly_trained_model_fills_flat_and_smooth_images_within_005(name):
    start = time.perf_counter()
    untrained = hole_error(_prepared(BUILD[name]()), name)
    steps, lr = FIT.get(name, (FIT_STEPS, FIT_LR))
    task = fit_on_synthetic(name, steps=steps, lr=lr)
    err = hole_error(task, name)
    took = time.perf_counter() - start
    assert err["flat"] < 0.05 and err["gradient"] < 0.05, \
        f"{name}: {err} after {steps} steps at lr {lr:g} ({took:.0f} s; untrained {untrained})"
    assert err["flat"] < untrained["flat"] and err["gradient"] < untrained["gradient"]


def _prepared(task):
    _model(task).eval()
    return task
