"""load_inpainter: every method behind one call, rebuilt from checkpoints, with clear refusals."""
from __future__ import annotations

import pytest
import torch

from inpaint_utils.checkpoint import CheckpointError, save_checkpoint
from inpaint_utils.inference import METHODS, load_inpainter, load_trained_model, run_checkpoint
from inpaint_utils.masks import make_mask
from inpaint_utils.models import ContextEncoderConfig, ContextEncoderGenerator


@pytest.fixture(scope="module")
def ce_run(tmp_path_factory):
    """A run folder holding one checkpoint of a tiny full-output Context Encoder (random weights)."""
    run = tmp_path_factory.mktemp("runs") / "tiny_ce"
    cfg = ContextEncoderConfig.tiny(output="full", hole_size=None)
    g = ContextEncoderGenerator(cfg, seed=0)
    save_checkpoint(run / "checkpoints" / "step_000003", {"generator": g}, model_name="context_encoder",
                    config=cfg.to_dict(), step=3)
    return run


def _pair(size=128, batch=2, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(batch, 3, size, size, generator=g)
    mask = make_mask("square", size, 0.2, batch=batch, generator=g)
    return image, mask


@pytest.mark.parametrize("method", ["mean", "telea", "ns", "patchmatch"])
def test_baselines_keep_known_pixels(method):
    image, mask = _pair(64)
    out = load_inpainter(method)(image, mask)
    assert out.shape == image.shape
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert not torch.equal(out, image)


def test_learned_model_rebuilt_from_checkpoint(ce_run):
    fill = load_inpainter("ce", ce_run, device="cpu")
    assert fill.info["step"] == 3 and fill.info["model_name"] == "context_encoder"
    assert fill.image_size == 128
    image, mask = _pair(128)
    out = fill(image, mask)
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    # the same as calling the network directly
    model, _ = load_trained_model(ce_run)
    with torch.no_grad():
        assert torch.allclose(out, model.predict_full(image, mask), atol=1e-6)


def test_other_sizes_are_resized_and_known_pixels_stay_exact(ce_run):
    fill = load_inpainter("ce", ce_run, device="cpu")
    image, mask = _pair(96, batch=1, seed=1)
    out = fill(image, mask)
    assert out.shape == image.shape
    known = mask.expand_as(image) == 0
    assert torch.equal(out[known], image[known])
    assert (out[~known] - image[~known]).abs().mean() > 0


def test_mismatched_missing_and_absent_checkpoints(ce_run, tmp_path):
    with pytest.raises(CheckpointError, match=r"holds a 'context_encoder' model \(use --method ce\)"):
        load_inpainter("glcic", ce_run)
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        load_inpainter("ce", tmp_path / "nowhere")
    with pytest.raises(ValueError, match="needs a checkpoint"):
        load_inpainter("deepfill")
    with pytest.raises(ValueError, match="unknown method 'lama'"):
        load_inpainter("lama")
    with pytest.raises(ValueError, match="takes no checkpoint"):
        load_inpainter("telea", ce_run)
    assert set(METHODS) >= {"telea", "ns", "ce", "glcic", "deepfill", "sd2"}


def test_glcic_poisson_is_the_network_then_the_papers_post_process(tmp_path, ce_run):
    from inpaint_utils.comparison import training_masks
    from inpaint_utils.models import CompletionNetwork, GLCICConfig
    from inpaint_utils.baselines import poisson_blend

    cfg = GLCICConfig.tiny()
    save_checkpoint(tmp_path / "glcic" / "checkpoints" / "step_000002", {"generator": CompletionNetwork(cfg, seed=0)},
                    model_name="glcic", config=cfg.to_dict(), step=2)
    plain = load_inpainter("glcic", tmp_path / "glcic", device="cpu")
    fill = load_inpainter("glcic_poisson", tmp_path / "glcic", device="cpu")
    assert fill.method == "glcic_poisson" and fill.info["step"] == 2 and "Poisson" in fill.info["postprocess"]
    assert fill.image_size == plain.image_size == cfg.image_size     # what inpaint evaluate scores at by default
    image, mask = _pair(cfg.image_size, batch=2, seed=1)
    out = fill(image, mask)
    assert torch.equal(out, poisson_blend(image, plain(image, mask), mask))
    assert not torch.equal(out, plain(image, mask))         # the blend changed the hole
    for size in (cfg.image_size, 48):                       # its own size, and another (resized and back)
        image, mask = _pair(size, batch=2, seed=size)
        out = fill(image, mask)
        known = mask.expand_as(image) == 0
        assert out.shape == image.shape and torch.equal(out[known], image[known])
    # it trains on GLCIC's holes, and another model's checkpoint is refused naming the method it needs
    drawn = [training_masks(m, plain.info["config"], 4, cfg.image_size, torch.Generator().manual_seed(0)).masks
             for m in ("glcic", "glcic_poisson")]
    assert torch.equal(drawn[0], drawn[1])
    with pytest.raises(CheckpointError, match=r"holds a 'context_encoder' model \(use --method ce\)"):
        load_inpainter("glcic_poisson", ce_run)


def test_run_names_resolve_under_runs_dir(ce_run, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(ce_run.parent))
    assert run_checkpoint("tiny_ce").name == "step_000003"


def test_bad_mask_is_refused(ce_run):
    fill = load_inpainter("telea")
    image, _ = _pair(64)
    with pytest.raises(ValueError):
        fill(image, torch.zeros(2, 1, 32, 32))


def test_sd2_on_a_local_tiny_pipeline(tmp_path):
    from inpaint_utils import diffusion

    folder = diffusion.build_tiny_inpaint_pipeline(tmp_path / "tiny_sd", seed=0)
    fill = load_inpainter("sd2", folder, device="cpu", size=32, steps=2)
    image, mask = _pair(32, batch=1)
    out = fill(image, mask)
    known = mask.expand_as(image) == 0
    assert out.shape == image.shape and torch.equal(out[known], image[known])


def test_load_methods_lists_each_method_it_could_not_load_with_reason_and_command(ce_run, monkeypatch, tmp_path):
    from inpaint_utils import inference

    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_HOME", str(tmp_path / "hf"))
    loaded, missing = inference.load_methods({
        "CE (02)": ("ce", ce_run),
        "cascade CE (03)": ("cascade", "03_cascade_blocks_smoke"),
        "GLCIC (04)": ("glcic", "04_glcic_smoke"),
        "SD-2": ("sd2", "someone/not-cached", {"steps": 2}),
    }, device="cpu")
    assert list(loaded) == ["CE (02)"]
    assert [m["method"] for m in missing] == ["cascade CE (03)", "GLCIC (04)", "SD-2"]   # none dropped
    by = {m["method"]: m for m in missing}
    assert all(m["reason"] and "\n" not in m["reason"] for m in missing)
    assert "no checkpoint" in by["GLCIC (04)"]["reason"] or "04_glcic_smoke" in by["GLCIC (04)"]["reason"]
    assert by["GLCIC (04)"]["to make it"] == ("run notebooks/04_glcic.ipynb, or: inpaint train glcic --data DIR "
                                              "--run-name 04_glcic_smoke")
    assert by["cascade CE (03)"]["to make it"] == "run notebooks/03_cascade_ce_nsd.ipynb"
    assert "HF_HUB_OFFLINE" in by["SD-2"]["reason"]
    assert by["SD-2"]["to make it"].startswith("hf download someone/not-cached --local-dir models/not-cached")
    with pytest.raises(CheckpointError, match="holds a 'context_encoder' model"):   # a mistake is raised, not listed
        inference.load_methods({"GLCIC": ("glcic", ce_run)})


def test_patchmatch_options_and_nn_from_a_folder_or_a_tensor(tmp_path):
    from PIL import Image

    image, mask = _pair(32, batch=1)
    a = load_inpainter("patchmatch", seed=1, patch_size=5)
    assert a.info["seed"] == 1 and torch.equal(a(image, mask), load_inpainter("patchmatch", seed=1, patch_size=5)(image, mask))
    with pytest.raises(ValueError, match="takes no options"):
        load_inpainter("telea", seed=1)
    # nn: the training set is a folder of images (the checkpoint) or a tensor
    g = torch.Generator().manual_seed(0)
    train = torch.rand(3, 3, 32, 32, generator=g)
    for i, t in enumerate(train):
        Image.fromarray((t.permute(1, 2, 0).numpy() * 255).round().astype("uint8")).save(tmp_path / f"{i}.png")
    from_folder = load_inpainter("nn", tmp_path, image_size=32, size=8)
    assert from_folder.info["train_images"] == 3
    query = from_folder.fn.images[1:2]                                   # a training image, as loaded
    assert torch.equal(from_folder(query, mask), query)
    from_tensor = load_inpainter("nn", train=train, size=8)
    out = from_tensor(train[2:3], mask)
    assert torch.equal(out, train[2:3])
    with pytest.raises(ValueError, match="needs its training set"):
        load_inpainter("nn")
    with pytest.raises(FileNotFoundError):
        load_inpainter("nn", tmp_path / "nowhere")
    assert {"patchmatch", "nn"} <= set(METHODS)


def test_course_runs_name_the_run_folders_the_notebooks_write_and_take_overrides():
    from inpaint_utils.inference import COURSE_RUNS, course_runs

    runs = course_runs("smoke")
    assert runs == {"CE (02)": ("ce", "02_ce_smoke"), "cascade CE (03)": ("cascade", "03_cascade_blocks_smoke"),
                    "GLCIC (04)": ("glcic", "04_glcic_smoke"), "DeepFill v1 (05)": ("deepfill", "05_ca_smoke_hole")}
    assert course_runs("cpu", ("08",)) == {"PConv (08)": ("pconv", "08_cpu_pconv"),
                                          "DeepFill v2 (08)": ("deepfill_v2", "08_cpu_v2")}
    assert all(method in METHODS for _, method, _ in COURSE_RUNS.values())
    # an override replaces its run; one for a model of another notebook is not selected; an unknown name raises
    got = course_runs("smoke", overrides={"GLCIC (04)": "my_glcic", "PConv (08)": "my_pconv"})
    assert got["GLCIC (04)"] == ("glcic", "my_glcic") and "PConv (08)" not in got
    with pytest.raises(KeyError, match="no course model named"):
        course_runs("smoke", overrides={"GLCIC": "x"})
