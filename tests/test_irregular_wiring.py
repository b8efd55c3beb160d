"""Partial convolutions (``pconv``, ``inpaint train pconv``) and DeepFill v2 (``deepfill_v2``) wired in
as the other learned methods are: trained by ``inpaint train`` from notebook 08's profile, rebuilt from their
checkpoints by ``load_inpainter`` with every check (a foreign checkpoint refused, naming what it holds), filling
any image size with the known pixels exact, scored by ``inpaint evaluate`` on their own training holes
(``comparison.training_masks``) and timed by ``inpaint benchmark``. Tiny models, a few steps."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import cli, comparison, config, inference
from inpaint_utils.checkpoint import (DIGEST_KEY, CheckpointError, checkpoint_info, latest_checkpoint,
                                      load_checkpoint, meta_digest, save_checkpoint)
from inpaint_utils.masks import area_ratio, make_mask
from inpaint_utils.models import (DeepFillConfig, DeepFillGenerator, DeepFillV2Config, DeepFillV2Generator,
                                  PConvConfig, PConvUNet)

#: inference method -> (``inpaint train`` method, the model name its checkpoints carry)
NAMES = {"pconv": ("partial_conv", "partial_conv"), "deepfill_v2": ("deepfill_v2", "deepfill_v2")}


@pytest.fixture(autouse=True)
def _offline_one_thread(monkeypatch):
    monkeypatch.setenv("INPAINT_OFFLINE", "1")                 # nothing may be downloaded (the VGG-16 of PConv)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _tiny(method: str):
    if method == "pconv":
        return PConvUNet(PConvConfig.tiny(), seed=0)
    if method == "deepfill_v2":
        return DeepFillV2Generator(DeepFillV2Config.tiny(), seed=0)
    return DeepFillGenerator(DeepFillConfig.tiny(), seed=0)


def _save_run(root, net, name: str):
    run = root / name
    save_checkpoint(run / "checkpoints" / "step_000001", {"generator": net}, model_name=net.model_name,
                    config=net.config.to_dict(), step=1)
    return run


@pytest.fixture(scope="module")
def tiny_runs(tmp_path_factory):
    """Run folders of tiny random-initialised generators: {"pconv" | "deepfill_v2" | "deepfill": run folder}."""
    root = tmp_path_factory.mktemp("tiny_runs")
    return {m: _save_run(root, _tiny(m), f"tiny_{m}") for m in ("pconv", "deepfill_v2", "deepfill")}


def _pair(height: int, width: int, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(2, 3, height, width, generator=g)
    mask = make_mask("irregular", (height, width), 0.2, batch=2, generator=g)
    return image, mask


# ------------------------------------------------------------------------------------ the profile

def test_notebook_08_profile_gives_each_model_its_own_numbers():
    for profile in cli.PROFILE_NAMES:
        pconv, v2 = cli.method_settings("partial_conv", profile), cli.method_settings("deepfill_v2", profile)
        assert {"image_size", "batch_size", "num_steps", "lr", "base_channels", "finetune_lr", "finetune_step",
                "features"} <= pconv.keys()
        assert {"image_size", "batch_size", "num_steps", "lr", "cnum", "disc_cnum"} <= v2.keys()
        assert not {"cnum", "disc_cnum"} & pconv.keys() and not {"features", "finetune_step"} & v2.keys()
        assert not any(k.startswith(("pconv_", "v2_")) for k in (*pconv, *v2)), profile     # prefixes taken off
        assert pconv["log_every"] == v2["log_every"] == config.settings("08_irregular_holes", profile)["log_every"]
        assert 0 < pconv["finetune_step"] < pconv["num_steps"], profile                     # both PConv phases run
        assert pconv["finetune_lr"] < pconv["lr"], profile
    full_p, full_v2 = cli.method_settings("partial_conv", "full"), cli.method_settings("deepfill_v2", "full")
    # Liu et al. 2018: 512 px, batch 6, Adam 2e-4 then 5e-5 (encoder BN frozen), ImageNet VGG-16; v2: 256 px, cnum 48
    assert (full_p["image_size"], full_p["base_channels"], full_p["batch_size"]) == (512, 64, 6)
    assert (full_p["lr"], full_p["finetune_lr"], full_p["features"]) == (2e-4, 5e-5, "vgg16")
    assert (full_v2["image_size"], full_v2["cnum"], full_v2["disc_cnum"], full_v2["lr"]) == (256, 48, 64, 1e-4)
    for name in ("partial_conv", "deepfill_v2"):
        cpu, smoke = cli.method_settings(name, "cpu"), cli.method_settings(name, "smoke")
        assert cpu["image_size"] == 64 and cpu["threads"] == 1 and cpu["num_eval_images"] is None, name
        assert cpu["num_steps"] > smoke["num_steps"], name
    assert cli.method_settings("partial_conv", "smoke")["features"] == "random"             # CI is offline
    assert cli.method_settings("partial_conv", "cpu")["features"] == "auto"                 # VGG-16, else SqueezeNet


def test_partial_conv_builder_sets_the_two_phases_from_the_profile():
    settings = cli.method_settings("partial_conv", "smoke")
    settings["image_size"] = 32
    recipe = cli.build_partial_conv(settings, None, seed=0)
    task = recipe.task
    assert recipe.model_name == "partial_conv" and recipe.model_config["image_size"] == 32
    assert recipe.model_config["base_channels"] == settings["base_channels"]
    assert task.vgg.weights_source == "random" and recipe.model_config["loss_features"] == "random"
    assert not task.finetuning(settings["finetune_step"] - 1) and task.finetuning(settings["finetune_step"])
    task._set_phase(settings["finetune_step"])
    assert task.optimizers["generator"].param_groups[0]["lr"] == settings["finetune_lr"]
    assert task.generator.encoder_bn_frozen


# ------------------------------------------------------------------- train, then fill and evaluate

@pytest.mark.parametrize("method", ["pconv", "deepfill_v2"])
def test_train_smoke_then_fill_and_evaluate_on_its_training_holes(method, test_images, runs, tmp_path, capsys):
    train_name, model_name = NAMES[method]
    run = f"cli_{method}"
    assert cli.main(["train", train_name, "--data", str(test_images), "--profile", "smoke", "--split", "train",
                     "--steps", "2", "--batch-size", "2", "--image-size", "32", "--run-name", run]) == 0
    out = capsys.readouterr().out
    assert "24 images" in out and "at 32 px" in out and "done: step 2" in out
    info = checkpoint_info(latest_checkpoint(runs / run))
    smoke = cli.method_settings(train_name, "smoke")
    assert info["model_name"] == model_name and info["step"] == 2 and info["config"]["image_size"] == 32
    widths = ("base_channels",) if method == "pconv" else ("cnum", "disc_cnum")
    assert all(info["config"][k] == smoke[k] for k in widths)
    recorded = json.loads((runs / run / cli.TRAIN_COMMAND_FILE).read_text())
    assert recorded["settings"]["lr"] == smoke["lr"] and "v2_lr" not in recorded["settings"]

    # inpaint fill on a 64x48 image (not the model's 32 px): known pixels exact, the hole filled
    rng = np.random.default_rng(0)
    pixels = (rng.random((48, 64, 3)) * 255).astype(np.uint8)
    hole = np.zeros((48, 64), bool)
    hole[10:30, 20:40] = True
    Image.fromarray(pixels).save(tmp_path / "image.png")
    Image.fromarray(hole.astype(np.uint8) * 255).save(tmp_path / "mask.png")
    filled = tmp_path / "filled.png"
    assert cli.main(["fill", str(tmp_path / "image.png"), str(tmp_path / "mask.png"), "-o", str(filled),
                     "--method", method, "--checkpoint", run, "--device", "cpu"]) == 0
    assert f"{method} (checkpoint" in capsys.readouterr().out
    result = np.asarray(Image.open(filled))
    assert np.array_equal(result[~hole], pixels[~hole]) and not np.array_equal(result[hole], pixels[hole])

    # inpaint evaluate on the held-out test split, on the holes this model trained on
    scores = tmp_path / "scores.json"
    assert cli.main(["evaluate", "--method", method, "--checkpoint", run, "--data", str(test_images),
                     "--mask-kind", "training", "--baselines", "--no-lpips", "--json", str(scores)]) == 0
    printed = capsys.readouterr().out
    assert f"{method}'s training holes: free-form brush strokes" in printed and "3 images 32x32" in printed
    record = json.loads(scores.read_text())
    assert [r["method"] for r in record["rows"]] == [method, "telea", "ns"]
    assert all(np.isfinite(r["psnr_hole"]) for r in record["rows"])
    assert record["mask_kind"] == "training" and record["training"]["step"] == 2
    assert record["training"]["profile"] == "smoke"
    if method == "deepfill_v2":
        assert record["achieved_ratio"] >= 0.25                                   # v2's box is in every hole
        assert "loss_features" not in record                                      # v2 has no feature network
    else:                                                 # the smoke profile's random VGG-16, named in the results
        assert info["config"]["loss_features"] == "random" and record["loss_features"] == "random"
        assert recorded["settings"]["features"] == "random"


def test_partial_conv_without_its_vgg_weights_exits_2_before_writing(test_images, runs, tmp_path, monkeypatch,
                                                                     capsys):
    missing = tmp_path / "no_vgg" / "vgg16-397923af.pth"
    monkeypatch.setenv("INPAINT_VGG16", str(missing))
    assert cli.main(["train", "partial_conv", "--data", str(test_images), "--profile", "cpu", "--steps", "1",
                     "--image-size", "32", "--run-name", "no_vgg"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inpaint train: error: VGG-16 ImageNet weights not found") and str(missing) in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert not (runs / "no_vgg").exists()                                         # nothing written


def test_pconv_features_are_recorded_and_a_resume_with_others_is_refused(test_images, runs, tmp_path, monkeypatch,
                                                                         capsys, squeeze_stand_in):
    shared = tmp_path / "shared"                         # offline, no VGG-16: auto takes the SqueezeNet stand-in
    squeeze_stand_in(shared)
    monkeypatch.setenv("INPAINT_SHARED", str(shared))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.delenv("INPAINT_VGG16", raising=False)
    monkeypatch.delenv("INPAINT_LPIPS", raising=False)
    base = ["train", "pconv", "--data", str(test_images), "--profile", "smoke", "--batch-size", "2",
            "--image-size", "32", "--run-name", "feats"]
    assert cli.main([*base, "--steps", "1", "--features", "auto"]) == 0
    out = capsys.readouterr().out
    assert "features auto -> squeeze" in out and "INPAINT_OFFLINE is set" in out
    info = checkpoint_info(latest_checkpoint(runs / "feats"))
    assert info["config"]["loss_features"] == "squeeze"
    recorded = json.loads((runs / "feats" / cli.TRAIN_COMMAND_FILE).read_text())
    assert recorded["settings"]["features"] == "squeeze"
    assert recorded["settings"]["features_weights"].endswith("squeezenet1_1_features_imagenet.npz")
    # another network on a resume: refused in one line, before anything is written
    assert cli.main([*base, "--steps", "2", "--features", "random"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("inpaint train: error: --features random: the checkpoint being resumed was trained "
                          "with the 'squeeze' feature network") and len(err.splitlines()) == 1
    assert checkpoint_info(latest_checkpoint(runs / "feats"))["step"] == 1
    # auto resumes with the checkpoint's network
    assert cli.main([*base, "--steps", "2", "--features", "auto"]) == 0
    assert "done: step 2" in capsys.readouterr().out
    # the library refuses it too: the checkpoint's config names the network
    changed = {**info["config"], "loss_features": "vgg16"}
    with pytest.raises(CheckpointError, match="loss_features: checkpoint 'squeeze', given 'vgg16'"):
        load_checkpoint(latest_checkpoint(runs / "feats"), {"generator": PConvUNet(PConvConfig.from_dict(changed))},
                        model_name="partial_conv", config=changed)
    # --features belongs to pconv alone
    assert cli.main(["train", "deepfill_v2", "--data", str(test_images), "--profile", "smoke", "--steps", "1",
                     "--features", "squeeze", "--run-name", "v2feats"]) == 2
    assert "--features is for pconv" in capsys.readouterr().err and not (runs / "v2feats").exists()


# ---------------------------------------------------------------------------- checkpoints, checks

@pytest.mark.parametrize("method", ["pconv", "deepfill_v2"])
def test_load_inpainter_rebuilds_the_model_and_keeps_known_pixels_at_any_size(method, tiny_runs):
    fill = inference.load_inpainter(method, tiny_runs[method], device="cpu")
    assert fill.info["model_name"] == NAMES[method][1] and fill.info["step"] == 1 and fill.image_size == 64
    image, mask = _pair(64, 64)
    out = fill(image, mask)
    model, _ = inference.load_trained_model(tiny_runs[method], expected=NAMES[method][1])
    with torch.no_grad():
        assert torch.allclose(out, model.predict_full(image, mask), atol=1e-6)   # the network itself, at its size
    for height, width in ((64, 64), (50, 90)):                                    # 50x90: not a multiple of 8
        image, mask = _pair(height, width, seed=1)
        out = fill(image, mask)
        known = mask.expand_as(image) == 0
        assert out.shape == image.shape and torch.equal(out[known], image[known])
        assert (out[~known] - image[~known]).abs().mean() > 0


def test_a_checkpoint_of_another_model_is_refused_naming_what_it_holds(tiny_runs, tmp_path):
    with pytest.raises(CheckpointError, match=r"holds a 'deepfill' model \(use --method deepfill\), not the "
                                              r"'deepfill_v2' model"):
        inference.load_inpainter("deepfill_v2", tiny_runs["deepfill"])
    with pytest.raises(CheckpointError, match=r"holds a 'deepfill_v2' model \(use --method deepfill_v2\)"):
        inference.load_inpainter("deepfill", tiny_runs["deepfill_v2"])
    with pytest.raises(CheckpointError, match=r"holds a 'partial_conv' model \(use --method pconv\)"):
        inference.load_inpainter("deepfill_v2", tiny_runs["pconv"])
    with pytest.raises(ValueError, match="needs a checkpoint"):
        inference.load_inpainter("pconv")
    # an edited config is refused (its digest), and so are weights that do not fit the config it names (shapes)
    wide = _save_run(tmp_path, PConvUNet(PConvConfig.tiny(base_channels=16), seed=0), "wide")
    meta = wide / "checkpoints" / "step_000001" / "checkpoint.json"
    record = json.loads(meta.read_text())
    record["config"].update(base_channels=8, encoder_channels=list(PConvConfig.tiny().encoder_channels))
    meta.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match="differs from its meta_sha256"):
        inference.load_inpainter("pconv", wide)
    record[DIGEST_KEY] = meta_digest(record)
    meta.write_text(json.dumps(record))
    with pytest.raises(CheckpointError, match=r"encoder\.0\.conv\.weight.*\(16, 3, 7, 7\).*\(8, 3, 7, 7\)"):
        inference.load_inpainter("pconv", wide)


def test_how_to_make_names_notebook_08_and_the_train_command():
    assert inference.how_to_make("pconv", "08_pconv_smoke") == (
        "run notebooks/08_irregular_holes.ipynb, or: inpaint train pconv --data DIR --run-name 08_pconv_smoke")
    assert inference.how_to_make("deepfill_v2").endswith("inpaint train deepfill_v2 --data DIR")
    assert set(inference.LEARNED) >= {"pconv", "deepfill_v2"} and {"pconv", "deepfill_v2"} <= set(inference.METHODS)


# ------------------------------------------------------------------------------- training masks

def test_training_masks_are_the_free_form_holes_each_task_draws(tiny_runs):
    from inpaint_utils.models.gated_conv import DeepFillV2Task
    from inpaint_utils.models.partial_conv import HOLE_RATIO, PConvTask

    pconv = inference.load_inpainter("pconv", tiny_runs["pconv"], device="cpu")
    mask, text = inference.training_masks(pconv, 40, torch.Generator().manual_seed(0))
    ratios = area_ratio(mask)
    assert mask.shape == (40, 1, 64, 64) and "free-form brush strokes, hole ratio 0.01-0.6" in text
    assert float(ratios.min()) >= HOLE_RATIO[0] * 0.5 and float(ratios.max()) <= HOLE_RATIO[1] * 1.1
    assert float(ratios.max()) - float(ratios.min()) > 0.2                       # drawn per sample, not one size
    # the same holes as the task's own draw from the same generator
    task = PConvTask(PConvUNet(PConvConfig.tiny()), vgg=torch.nn.Identity())
    assert torch.equal(mask, task.masks(40, torch.Generator().manual_seed(0)))

    v2 = inference.load_inpainter("deepfill_v2", tiny_runs["deepfill_v2"], device="cpu")
    mask, text = inference.training_masks(v2, 40, torch.Generator().manual_seed(0))
    assert mask.shape == (40, 1, 64, 64) and "and a box of 0.25" in text
    assert float(area_ratio(mask).min()) >= 0.25                                  # the box is in every hole
    task = DeepFillV2Task(DeepFillV2Generator(DeepFillV2Config.tiny()))
    assert torch.equal(mask, task.masks(40, torch.Generator().manual_seed(0)))
    again, _ = inference.training_masks(v2, 40, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)                                               # seeded

    # notebook 07's comparison: the kind they belong to, at the comparison's size, another stroke ratio
    own = comparison.training_masks("deepfill_v2", v2.info["config"], 4, 128, torch.Generator().manual_seed(0),
                                    mask_ratio=(0.3, 0.4))
    assert own.kind == "irregular" and own.masks.shape == (4, 1, 128, 128)
    assert "0.3-0.4" in own.description and own.description.endswith("scaled to 128x128")
    assert comparison.training_masks("pconv", pconv.info["config"], 2, 64).kind == "irregular"


def test_benchmark_times_both(tiny_runs, capsys):
    argv = ["benchmark", "--methods", "telea,pconv,deepfill_v2", "--checkpoint", f"pconv={tiny_runs['pconv']}",
            "--checkpoint", f"deepfill_v2={tiny_runs['deepfill_v2']}", "--size", "32", "--batch", "2",
            "--repeats", "1", "--device", "cpu"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    rows = [line.split() for line in lines[header + 2:]]
    assert [r[0] for r in rows] == ["telea", "pconv", "deepfill_v2"] and all(float(r[5]) > 0 for r in rows)
