"""Tests of inpaint_utils.models.cascade (the cascade CE paper, section 4.2): the cascade input against a reference
built by hand in NumPy, known pixels kept bit for bit, the hole holding the upscaled 64 prediction, the
64 CE frozen through training with the shared loop, configs, checkpoints and NSD with the cascade."""
import json

import numpy as np
import pytest
import torch

from inpaint_utils.checkpoint import load_checkpoint
from inpaint_utils.masks import center_mask, erode_mask, make_input, make_mask
from inpaint_utils.metrics import nsd, nsd_from_latents
from inpaint_utils.models import (
    MODELS,
    CascadeConfig,
    CascadeContextEncoder,
    CascadeTask,
    ContextEncoderConfig,
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
    build_model,
    count_parameters,
)
from inpaint_utils.models.cascade import downscale_image, downscale_mask, upscale_image
from inpaint_utils.train import TrainConfig, train


def make_cascade(output="center", seed=0):
    cfg = CascadeConfig.tiny(output)
    ce64 = ContextEncoderGenerator(cfg.ce64, seed=seed)
    ce128 = ContextEncoderGenerator(cfg.ce128, seed=seed + 1)
    return CascadeContextEncoder(ce64, ce128).eval()


def images(b=3, size=128, seed=0):
    return torch.rand(b, 3, size, size, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """Tiny networks are per-operation overhead: one OpenMP thread is faster (much faster on a busy CPU)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def center_cascade():
    return make_cascade("center")


@pytest.fixture(scope="module")
def full_cascade():
    return make_cascade("full")


# ------------------------------------------------------------------------------ hand-built reference
def np_downscale_mean(x):
    """2x2 block means of (B, C, H, W)."""
    b, c, h, w = x.shape
    return x.reshape(b, c, h // 2, 2, w // 2, 2).mean(axis=(3, 5))


def np_downscale_any(m):
    """2x2 block maxima (any hole pixel makes the small pixel a hole)."""
    b, c, h, w = m.shape
    return m.reshape(b, c, h // 2, 2, w // 2, 2).max(axis=(3, 5))


def np_upscale_bilinear(x):
    """2x bilinear upscaling with half-pixel centres (align_corners=False), edges clamped, written out:
    output 2i = 0.75 x[i] + 0.25 x[i-1], output 2i+1 = 0.75 x[i] + 0.25 x[i+1]."""
    def along(a, axis):
        a = np.moveaxis(a, axis, -1)
        padded = np.concatenate([a[..., :1], a, a[..., -1:]], axis=-1)
        even = 0.75 * a + 0.25 * padded[..., :-2]
        odd = 0.75 * a + 0.25 * padded[..., 2:]
        out = np.stack([even, odd], axis=-1).reshape(*a.shape[:-1], 2 * a.shape[-1])
        return np.moveaxis(out, -1, axis)
    return along(along(x, 2), 3)


def reference_cascade_input(cascade, image, mask):
    """Steps (i)-(iii) of section 4.2 by hand: NumPy scaling, the 64 CE on its own filled input."""
    img, m = image.double().numpy(), mask.expand(image.shape[0], -1, -1, -1).double().numpy()
    small, small_mask = np_downscale_mean(img), np_downscale_any(m)
    small_t = torch.from_numpy(small).float()
    small_mask_t = torch.from_numpy(small_mask).float()
    ce64 = cascade.ce64
    fill = torch.tensor(ce64.config.fill).view(1, 3, 1, 1)
    net_input = small_mask_t * fill + (1 - small_mask_t) * small_t            # hole <- the CE's fill colour
    with torch.no_grad():
        pred = ce64(net_input)                                                 # (B, 3, 32, 32) or (B, 3, 64, 64)
    pred = pred.double().numpy()
    if ce64.config.output == "center":                                         # paste the window prediction
        s, h = ce64.config.image_size, ce64.config.hole_size
        top = (s - h) // 2
        full = np.zeros_like(small)
        full[:, :, top:top + h, top:top + h] = pred
        pred = full
    completed_small = small_mask * pred + (1 - small_mask) * small
    up = np_upscale_bilinear(completed_small)
    return torch.from_numpy(np.where(m > 0, up, img)).float()


@pytest.mark.parametrize("output", ["center", "full"])
def test_cascade_input_equals_a_hand_built_reference(output, center_cascade, full_cascade):
    cascade = center_cascade if output == "center" else full_cascade
    image = images(3)
    if output == "center":
        mask = cascade.ce128.input_hole_mask(3)                                # the central 56x56
    else:
        mask = make_mask("blocks", 128, (0.1, 0.25), batch=3, seed=1)
    got = cascade.make_input(image, mask)
    want = reference_cascade_input(cascade, image, mask)
    assert got.shape == (3, 3, 128, 128) and got.dtype == torch.float32
    torch.testing.assert_close(got, want, atol=1e-5, rtol=0)


def test_scaling_operators_on_known_values():
    x = torch.arange(16.0).view(1, 1, 4, 4) / 15
    torch.testing.assert_close(downscale_image(x.expand(1, 3, 4, 4))[0, 0],
                               torch.tensor([[2.5, 4.5], [10.5, 12.5]]) / 15)
    m = torch.zeros(1, 1, 4, 4)
    m[0, 0, 1, 2] = 1                                                           # one hole pixel
    assert downscale_mask(m)[0, 0].tolist() == [[0.0, 1.0], [0.0, 0.0]]
    row = torch.tensor([0.0, 1.0]).view(1, 1, 1, 2).expand(1, 3, 2, 2)
    up = upscale_image(row)                                                     # bilinear, edges clamped
    assert up[0, 0, 0].tolist() == [0.0, 0.25, 0.75, 1.0]
    assert upscale_image(row, "nearest")[0, 0, 0].tolist() == [0.0, 0.0, 1.0, 1.0]
    with pytest.raises(ValueError, match="even height and width"):
        downscale_image(torch.rand(1, 3, 5, 4))
    with pytest.raises(ValueError, match="upscale mode must be one of"):
        upscale_image(row, "bicubic")


# ---------------------------------------------------------------------------------- hole and known
@pytest.mark.parametrize("output", ["center", "full"])
def test_hole_holds_the_upscaled_64_prediction(output, center_cascade, full_cascade):
    cascade = center_cascade if output == "center" else full_cascade
    image = images(2, seed=3)
    mask = (cascade.ce128.input_hole_mask(2) if output == "center"
            else make_mask("blocks", 128, 0.25, batch=2, seed=4))
    st = cascade.stages(image, mask)
    with torch.no_grad():
        completed_small = cascade.ce64.predict_full(downscale_image(image), downscale_mask(mask))
    torch.testing.assert_close(st["completed_small"], completed_small, atol=0, rtol=0)
    upscaled = upscale_image(completed_small)
    hole = mask.bool().expand_as(image)
    assert torch.equal(st["cascade_input"][hole], upscaled[hole])             # the hole: the upscaled 64 completion
    assert torch.equal(st["cascade_input"][~hole], image[~hole])              # the rest: the image
    plain = make_input(image, mask, fill=cascade.ce128.config.fill)            # what the plain CE would see
    assert (st["cascade_input"][hole] - plain[hole]).abs().max() > 1e-3
    assert st["image_small"].shape == (2, 3, 64, 64) and st["mask_small"].shape == (2, 1, 64, 64)


def test_centre_hole_downscales_to_the_64_ce_input_hole(center_cascade):
    """The authors' 56x56 hole at 128 (overlap 4) is, 2x down, the 28x28 input hole of the 64 CE (overlap 2)."""
    small = downscale_mask(center_cascade.ce128.input_hole_mask())
    assert torch.equal(small, center_cascade.ce64.input_hole_mask())
    assert int(small.sum()) == 28 * 28


@pytest.mark.parametrize("output", ["center", "full"])
def test_known_pixels_are_preserved_exactly(output, center_cascade, full_cascade):
    cascade = center_cascade if output == "center" else full_cascade
    image = images(4, seed=5)
    mask = (cascade.ce128.input_hole_mask(1) if output == "center"
            else make_mask("blocks", 128, (0.05, 0.25), batch=4, seed=6))
    known = (mask == 0).expand(4, 3, -1, -1)
    with torch.no_grad():
        completed = cascade.predict_full(image, mask)
        forward = cascade(image, mask)
    assert torch.equal(completed[known], image[known])
    assert torch.equal(cascade.make_input(image, mask)[known], image[known])
    assert torch.equal(forward, completed)
    assert completed.shape == (4, 3, 128, 128) and 0 <= completed.min() and completed.max() <= 1


def test_values_inside_the_hole_are_never_used(full_cascade):
    image = images(2, seed=7)
    mask = make_mask("blocks", 128, 0.25, batch=2, seed=8)
    scrambled = torch.where(mask.bool().expand_as(image), torch.rand_like(image), image)
    with torch.no_grad():
        assert torch.equal(full_cascade.make_input(image, mask), full_cascade.make_input(scrambled, mask))
        assert torch.equal(full_cascade.encode(image, mask), full_cascade.encode(scrambled, mask))


# ------------------------------------------------------------------------------------------ shapes
@pytest.mark.parametrize("output", ["center", "full"])
def test_shapes(output, center_cascade, full_cascade):
    cascade = center_cascade if output == "center" else full_cascade
    image = images(2)
    mask = cascade.ce128.input_hole_mask(2) if output == "center" else make_mask("blocks", 128, 0.2, batch=2, seed=0)
    with torch.no_grad():
        assert cascade.encode(image, mask).shape == (2, 100)                   # D = the 128 CE's code
        st = cascade.stages(image, mask)
    assert {k: tuple(v.shape) for k, v in st.items()} == {
        "image_small": (2, 3, 64, 64), "mask_small": (2, 1, 64, 64), "completed_small": (2, 3, 64, 64),
        "upscaled": (2, 3, 128, 128), "cascade_input": (2, 3, 128, 128)}


def test_parameter_counts_and_frozen_64_ce(center_cascade):
    ce64, ce128 = center_cascade.ce64, center_cascade.ce128
    assert not any(p.requires_grad for p in ce64.parameters())
    assert all(p.requires_grad for p in ce128.parameters())
    assert count_parameters(center_cascade) == count_parameters(ce64) + count_parameters(ce128)
    assert count_parameters(center_cascade, trainable_only=True) == count_parameters(ce128)
    # the 64 CE has one stride-2 layer fewer on each side
    assert len(ce64.encoder) == len(ce128.encoder) - 1 and len(ce64.decoder) == len(ce128.decoder) - 1
    center_cascade.train()
    assert center_cascade.ce128.training and not center_cascade.ce64.training
    assert not any(m.training for m in ce64.modules())
    center_cascade.eval()


def test_gradients_reach_the_128_ce_only():
    cascade = make_cascade("full").train()
    image = images(2)
    mask = make_mask("blocks", 128, 0.25, batch=2, seed=2)
    cascade.predict_full(image, mask).square().mean().backward()
    assert all(p.grad is None for p in cascade.ce64.parameters())
    assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in cascade.ce128.parameters())


def test_centre_cascade_rejects_holes_outside_the_window(center_cascade):
    mask = torch.zeros(1, 1, 128, 128)
    mask[:, :, 0:8, 0:8] = 1
    with pytest.raises(ValueError, match=r"outside the central 64x64 window"):
        center_cascade.predict_full(images(1), mask)


def test_bad_inputs_raise(center_cascade):
    with pytest.raises(ValueError, match=r"must be 128x128"):
        center_cascade.make_input(torch.rand(1, 3, 64, 64), torch.zeros(1, 1, 64, 64))
    with pytest.raises(ValueError, match="must be binary"):
        center_cascade.make_input(images(1), torch.full((1, 1, 128, 128), 0.5))
    with pytest.raises(ValueError, match=r"must be in \[0, 1\]"):
        center_cascade.make_input(images(1) * 2, center_mask(128, 56))


# ------------------------------------------------------------------------------------------ configs
def test_config_build_and_round_trip():
    cfg = CascadeConfig.build("full", base_channels=16, bottleneck_dim=128)
    assert (cfg.ce64.image_size, cfg.ce128.image_size, cfg.ce64.overlap, cfg.ce128.overlap) == (64, 128, 2, 4)
    assert cfg.ce64.output == cfg.ce128.output == "full" and cfg.ce64.base_channels == 16
    again = CascadeConfig.from_dict(json.loads(json.dumps(cfg.to_dict())))
    assert again == cfg
    default = CascadeConfig()
    assert (default.ce128.image_size, default.ce128.bottleneck_dim, default.ce64.hole_size) == (128, 4000, 32)


@pytest.mark.parametrize("kwargs, match", [
    ({"ce64": ContextEncoderConfig(image_size=32), "ce128": ContextEncoderConfig()}, "twice ce64.image_size"),
    ({"ce64": ContextEncoderConfig(image_size=64, overlap=2), "ce128": ContextEncoderConfig(output="full")},
     "use output='full' for both"),
    ({"upscale": "bicubic"}, "upscale must be one of"),
    ({"ce64": 3}, "ce64 must be a ContextEncoderConfig"),
])
def test_config_errors(kwargs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        CascadeConfig(**kwargs)


def test_unknown_config_keys_raise():
    with pytest.raises(ValueError, match=r"unknown CascadeConfig keys \['extra'\]"):
        CascadeConfig.from_dict({**CascadeConfig.tiny().to_dict(), "extra": 1})


def test_mismatched_centre_windows_raise():
    ce64 = ContextEncoderGenerator(ContextEncoderConfig.tiny(image_size=64, hole_size=16, overlap=2))
    ce128 = ContextEncoderGenerator(ContextEncoderConfig.tiny())
    with pytest.raises(ValueError, match="does not fit in the 64 CE's 16x16 centre window"):
        CascadeContextEncoder(ce64, ce128)


def test_constructor_errors():
    ce = ContextEncoderGenerator(ContextEncoderConfig.tiny())
    with pytest.raises(TypeError, match="ce64 must be a ContextEncoderGenerator"):
        CascadeContextEncoder(torch.nn.Linear(2, 2), ce)
    with pytest.raises(TypeError, match="either a CascadeConfig"):
        CascadeContextEncoder(CascadeConfig.tiny(), ce)


def test_build_model_registry_and_seeds():
    assert MODELS["cascade_context_encoder"] == (CascadeContextEncoder, CascadeConfig)
    cfg = CascadeConfig.tiny("full")
    a = build_model("cascade_context_encoder", cfg.to_dict(), seed=3)
    b = build_model(CascadeContextEncoder.model_name, cfg, seed=3)
    assert isinstance(a, CascadeContextEncoder) and a.config == cfg
    for (ka, va), (kb, vb) in zip(a.state_dict().items(), b.state_dict().items()):
        assert ka == kb and torch.equal(va, vb)
    assert not any(p.requires_grad for p in a.ce64.parameters()) and not a.ce64.training


# ------------------------------------------------------------------------------------------ training
@pytest.mark.parametrize("output", ["center", "full"])
def test_training_updates_the_128_ce_and_never_the_64_ce(output, tmp_path):
    cascade = make_cascade(output).train()
    disc = ContextEncoderDiscriminator(cascade.config.ce128, seed=2)
    task = CascadeTask(cascade, disc, mask_kind="blocks", mask_ratio=(0.05, 0.25))
    assert [p for g in task.optimizers["generator"].param_groups for p in g["params"]] == \
        list(cascade.ce128.parameters())
    ce64_before = {k: v.clone() for k, v in cascade.ce64.state_dict().items()}     # weights and BN statistics
    ce128_before = {k: v.clone() for k, v in cascade.ce128.state_dict().items()}
    data = images(6, seed=9)
    cfg = TrainConfig(num_steps=3, batch_size=2, run_dir=tmp_path / "run", device="cpu", progress=False,
                      tensorboard=False, sample_every=3, checkpoint_every=0, log_every=1, num_samples=2)
    out = train(task, data, cfg, model_name=CascadeContextEncoder.model_name,
                model_config=cascade.config.to_dict())
    assert out["step"] == 3 and set(out["losses"]) >= {"d", "g_total", "rec", "adv"}
    assert out["last_sample"] is not None and out["last_sample"].is_file()
    for k, v in cascade.ce64.state_dict().items():
        assert torch.equal(v, ce64_before[k]), f"ce64.{k} changed"
    changed = [k for k, v in cascade.ce128.state_dict().items() if not torch.equal(v, ce128_before[k])]
    assert any(k.endswith("weight") for k in changed)
    assert not cascade.ce64.training

    # the checkpoint rebuilds the whole cascade (both CEs)
    fresh = build_model(CascadeContextEncoder.model_name, cascade.config.to_dict(), seed=99)
    info = load_checkpoint(out["checkpoint"], {"generator": fresh}, model_name=CascadeContextEncoder.model_name,
                           config=cascade.config.to_dict())
    assert info["step"] == 3
    cascade.eval()
    fresh.eval()
    mask = (cascade.ce128.input_hole_mask(2) if output == "center"
            else make_mask("blocks", 128, 0.2, batch=2, seed=1))
    with torch.no_grad():
        assert torch.equal(fresh.predict_full(data[:2], mask), cascade.predict_full(data[:2], mask))


def test_task_samples_and_errors():
    cascade = make_cascade("center")
    task = CascadeTask(cascade)                                                 # L2 only: no discriminator
    assert set(task.models) == {"generator"} and task.models["generator"] is cascade
    rows = task.sample(images(2))
    assert list(rows) == ["input", "cascade input", "completed", "target"]
    assert all(v.shape == (2, 3, 128, 128) for v in rows.values())
    with pytest.raises(ValueError, match="input_mode must be 'hole'"):
        CascadeTask(cascade, input_mode="mosaic")
    with pytest.raises(TypeError, match="cascade must be a CascadeContextEncoder"):
        CascadeTask(cascade.ce128)


# ------------------------------------------------------------------------------------------ NSD
def test_nsd_of_the_cascade_equals_the_latent_formula(full_cascade):
    imgs = images(3, seed=11)
    masks = make_mask("blocks", 128, (0.05, 0.25), batch=4, seed=12)
    got = nsd(full_cascade.encode, imgs, masks, fill=full_cascade.ce128.config.fill, with_mask=True,
              batch_size=5, progress=False)
    with torch.no_grad():
        latents = torch.stack([full_cascade.encode(img.expand(4, -1, -1, -1), masks) for img in imgs])  # (k, n, D)
    want = nsd_from_latents(latents)
    assert (got["k"], got["n"], got["D"]) == (3, 4, 100)
    torch.testing.assert_close(got["per_image"], want.cpu().double(), atol=1e-6, rtol=1e-5)
    assert 0 < got["mean"] < 1


def test_the_64_ce_trains_on_the_downscale_it_is_fed():
    # one downscale for training and inference: the 64 CE's training images are the cascade's v P
    from inpaint_utils.models.cascade import DownscaledImages

    images = [torch.rand(3, 128, 128, generator=torch.Generator().manual_seed(k)) for k in range(3)]
    small = DownscaledImages(images)
    assert len(small) == 3
    cascade = CascadeContextEncoder(CascadeConfig.tiny("full"), seed=0)
    mask = torch.zeros(1, 1, 128, 128)
    mask[..., 16:48, 16:48] = 1.0
    for k in range(3):
        fed = cascade.stages(images[k][None], mask)["image_small"][0]
        known = downscale_mask(mask)[0, 0] == 0
        assert small[k].shape == (3, 64, 64) and torch.equal(small[k][:, known], fed[:, known])
