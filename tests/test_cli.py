"""The ``inpaint`` command (inpaint_utils.cli): train from a folder of images in-process, resume, clear
errors for bad input, the torchrun relaunch of ``--nproc N``, and the method registry; ``train glcic`` and
``train deepfill``; ``fill`` (every input mode, tiny random checkpoints, refusals, atomic output),
``evaluate`` (table and JSON) and ``benchmark`` (one row per method; no timing assertions)."""
import json
import math
import os
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import cli, config
from inpaint_utils.checkpoint import checkpoint_info, latest_checkpoint, load_checkpoint, training_summary
from inpaint_utils.models.context_encoder import ContextEncoderConfig, ContextEncoderGenerator
from inpaint_utils.train import read_metrics

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture
def images(tmp_path):
    """A folder of 6 small PNGs (smooth random colours), one in a sub-folder."""
    folder = tmp_path / "images"
    (folder / "more").mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(6):
        low = rng.random((3, 4, 3))
        pixels = np.kron(low, np.ones((12, 16, 1)))                       # 36 x 48 blocks of colour
        where = folder / "more" if i == 5 else folder
        Image.fromarray((pixels * 255).astype(np.uint8)).save(where / f"img_{i}.png")
    return folder


TINY = ["--batch-size", "4", "--image-size", "32", "--run-name", "cli_ce"]


def test_train_context_encoder_in_process_then_resume(images, runs, capsys):
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "3", *TINY]) == 0
    out = capsys.readouterr().out
    assert "6 images" in out and "3 steps, global batch 4" in out and "done: step 3" in out
    run_dir = runs / "cli_ce"
    assert [r["step"] for r in read_metrics(run_dir)] == [3]
    ckpt = latest_checkpoint(run_dir)
    assert ckpt is not None and ckpt.name == "step_000003"
    assert (run_dir / "samples" / "step_000003.png").is_file()
    # the checkpoint rebuilds the smoke profile's Context Encoder at 32 px
    saved = checkpoint_info(ckpt)["config"]
    load_checkpoint(ckpt, {"generator": ContextEncoderGenerator(ContextEncoderConfig.from_dict(saved))},
                    model_name="context_encoder", config=saved)
    smoke = config.settings("02_context_encoder", "smoke")
    assert saved["image_size"] == 32 and saved["base_channels"] == smoke["base_channels"]

    # the same command with more steps continues the run
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "5", *TINY]) == 0
    out = capsys.readouterr().out
    assert "resuming from" in out and "step_000003" in out and "done: step 5" in out
    assert [r["step"] for r in read_metrics(run_dir)] == [3, 5]


def test_resume_after_adding_an_image_keeps_the_runs_fill_colour(images, runs, capsys):
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "3", *TINY]) == 0
    fill = checkpoint_info(latest_checkpoint(runs / "cli_ce"))["config"]["fill"]
    Image.new("RGB", (48, 36), (255, 0, 0)).save(images / "new_red.png")   # moves the mean colour
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "5", *TINY]) == 0, \
        capsys.readouterr().err
    out = capsys.readouterr().out
    assert "7 images" in out and "resuming from" in out and "done: step 5" in out
    assert checkpoint_info(latest_checkpoint(runs / "cli_ce"))["config"]["fill"] == fill
    # a fresh run on the grown folder gets the new mean
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "1", *TINY[:-1], "fresh"]) == 0
    assert checkpoint_info(latest_checkpoint(runs / "fresh"))["config"]["fill"] != fill


def test_a_damaged_newest_checkpoint_falls_back_or_is_chosen_explicitly(images, runs, capsys):
    for steps in ("3", "5"):
        assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", steps, *TINY]) == 0
    checkpoints = runs / "cli_ce" / "checkpoints"
    (checkpoints / "step_000005" / "generator.safetensors").write_bytes(b"cut short")
    capsys.readouterr()
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "6", *TINY]) == 0
    out, err = capsys.readouterr()
    warned = [line for line in err.splitlines() if "skipping the damaged checkpoint step_000005" in line]
    assert len(warned) == 1 and warned[0].startswith("inpaint train: warning: ")     # one line, shown once
    assert "warnings.warn" not in err and "UserWarning" not in err
    assert f"resuming from {checkpoints / 'step_000003'} at step 3" in out and "done: step 6" in out
    assert (checkpoints / "step_000005.damaged").is_dir()
    # --from-checkpoint picks one (here an older one, into another run)
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "4", *TINY[:-1], "other",
                     "--from-checkpoint", str(checkpoints / "step_000003")]) == 0
    out = capsys.readouterr().out
    assert f"resuming from {checkpoints / 'step_000003'} at step 3" in out and "done: step 4" in out
    assert latest_checkpoint(runs / "other").name == "step_000004"
    missing = runs / "nothing"
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "4", *TINY,
                     "--from-checkpoint", str(missing)]) == 2
    assert f"--from-checkpoint {missing}: no such checkpoint folder" in capsys.readouterr().err


def test_warnings_of_train_and_fill_are_one_clean_line_each(images, runs, pair, tmp_path, capsys):
    (images / "broken.png").write_bytes(b"not a png")                  # skipped by train and by nn's database
    assert cli.main(["train", "ce", "--data", str(images), "--steps", "1", *TINY]) == 0
    err = capsys.readouterr().err
    assert [line for line in err.splitlines() if "warning" in line] == \
        [f"inpaint train: warning: skipped 1 unreadable image file(s) under {images}: broken.png"]
    step = latest_checkpoint(runs / "cli_ce")                           # an old checkpoint format: read thrice
    meta = json.loads((step / "checkpoint.json").read_text())
    del meta["meta_sha256"]
    meta["format_version"] = 1
    (step / "checkpoint.json").write_text(json.dumps(meta, indent=1))
    assert cli.main(["train", "ce", "--data", str(images), "--steps", "2", *TINY]) == 0
    err = capsys.readouterr().err
    lines = [line for line in err.splitlines() if "warning" in line]
    assert sum("checkpoint format 1" in line for line in lines) == 1, err
    assert all(line.startswith("inpaint train: warning: ") for line in lines) and "warnings.warn" not in err
    image, mask, _, _ = pair
    assert cli.main(["fill", str(image), str(mask), "-o", str(tmp_path / "nn.png"), "--method", "nn",
                     "--checkpoint", str(images)]) == 0
    err = capsys.readouterr().err
    assert err.splitlines() == [f"inpaint fill: warning: skipped 1 unreadable image file(s) under {images}: broken.png"]


@pytest.mark.parametrize("make, status, message", [
    (lambda tmp: tmp / "missing", 2, "no such folder"),
    (lambda tmp: (tmp / "empty").mkdir() or tmp / "empty", 2, "no images (.jpg, .jpeg, .png)"),
    (lambda tmp: (tmp / "f.txt").write_text("x") and tmp / "f.txt", 2, "not a folder"),
])
def test_bad_data_folder_exits_non_zero_with_a_message(tmp_path, runs, capsys, make, status, message):
    folder = make(tmp_path)
    assert cli.main(["train", "context_encoder", "--data", str(folder), "--steps", "1"]) == status
    err = capsys.readouterr().err
    assert "inpaint train: error:" in err and message in err and str(folder) in err
    assert not runs.exists() or not any(runs.iterdir())                      # nothing was written


def test_refused_trainings_exit_2_in_one_line_and_keep_the_runs_record(images, runs, capsys, monkeypatch):
    import socket

    # 6 images and a batch of 16 train (each step draws repeated images as different crops) ...
    common = ["--data", str(images), "--steps", "1", "--batch-size", "16", "--image-size", "32", "--run-name", "one"]
    assert cli.main(["train", "context_encoder", *common]) == 0
    assert "done: step 1" in capsys.readouterr().out
    record = runs / "one" / cli.TRAIN_COMMAND_FILE
    before = record.read_bytes()
    step_1 = runs / "one" / "checkpoints" / "step_000001"
    calls = []
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(cli.train.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    refusals = [   # ... each refused run says why in one line, exits 2 and leaves the record of the run alone
        (["glcic", "--data", str(images), "--steps", "2", "--run-name", "one"], "context_encoder"),
        (["ce", *common[:-1], "one", "--image-size", "64", "--steps", "2"], "another config"),
        (["glcic", "--data", str(images), "--steps", "2", "--run-name", "g", "--from-checkpoint", str(step_1)],
         "context_encoder"),
        (["glcic", "--data", str(images), "--image-size", "32", "--run-name", "g"], "multiple of 64"),
        (["deepfill_v2", "--data", str(images), "--image-size", "8", "--run-name", "g"], "image_size"),
        (["pconv", "--data", str(images), "--image-size", "33", "--run-name", "g"], "image_size"),
        (["ce", "--data", str(images), "--run-name", "../up"], "--run-name '../up'"),
        (["ce", *common, "--nproc", "2", "--batch-size", "3"], "--batch-size 3 is not divisible by the 2 processes"),
        (["glcic", "--data", str(images), "--lr", "1e-3", "--run-name", "g"], "glcic has no learning rate"),
        (["ce", *common, "--lr", "0"], "--lr must be a positive number, got 0.0"),
        (["ce", *common, "--lr", "nan"], "--lr must be a positive number, got nan"),
    ]
    for argv, said in refusals:
        assert cli.main(["train", *argv]) == 2, argv
        err = capsys.readouterr().err
        assert "inpaint train: error:" in err and said in err and len(err.splitlines()) == 1, (argv, err)
        assert record.read_bytes() == before, argv
    assert calls == []                                  # torchrun was not started for an indivisible batch
    (runs / "one" / "train.lock").write_text(json.dumps({"pid": os.getppid(), "host": socket.gethostname(),
                                                         "since": "now", "command": "inpaint train ce"}))
    assert cli.main(["train", "ce", *common[:-1], "one", "--steps", "2"]) == 2
    err = capsys.readouterr().err
    assert "another training holds" in err and len(err.splitlines()) == 1
    assert record.read_bytes() == before and latest_checkpoint(runs / "one").name == "step_000001"


def test_usage_errors(images, capsys):
    assert cli.main(["train", "no_such_method", "--data", str(images)]) == 2
    assert "invalid choice: 'no_such_method'" in capsys.readouterr().err
    assert cli.main(["train", "context_encoder", "--data", str(images), "--steps", "0"]) == 2
    assert "--steps must be a positive integer" in capsys.readouterr().err
    assert cli.main(["--help"]) == 0
    assert "train" in capsys.readouterr().out
    assert cli.main([]) == 2


def test_nproc_relaunches_through_torchrun_without_nproc(images, monkeypatch):
    calls = []
    monkeypatch.delenv("LOCAL_RANK", raising=False)
    monkeypatch.setattr(cli.train.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    argv = ["train", "context_encoder", "--data", str(images), "--nproc", "2", "--device", "cpu", "--steps", "3"]
    assert cli.main(argv) == 0
    (cmd,) = calls
    assert cmd[:2] == [sys.executable, "-c"] and "from torch.distributed.run import main" in cmd[2]
    assert cmd[3:5] == ["--standalone", "--nproc-per-node=2"]
    assert cmd[5:7] == ["-m", "inpaint_utils.cli"]
    # torchrun would read --nproc as its own --nproc-per-node: the processes get the rest unchanged
    assert cmd[7:] == ["train", "context_encoder", "--data", str(images), "--device", "cpu", "--steps", "3"]


def test_nproc_2_on_the_cpu_trains_for_real(images, tmp_path):
    """`inpaint train --nproc 2 --device cpu`: torchrun, two gloo processes, one run folder."""
    env = {**os.environ, "INPAINT_RUNS": str(tmp_path / "runs"), "OMP_NUM_THREADS": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("LOCAL_RANK", None)
    argv = ["train", "context_encoder", "--data", str(images), "--steps", "2", "--batch-size", "4", "--image-size",
            "32", "--run-name", "two", "--nproc", "2", "--device", "cpu"]
    done = subprocess.run([sys.executable, "-m", "inpaint_utils.cli", *argv], capture_output=True, text=True,
                          timeout=400, env=env)
    assert done.returncode == 0, done.stdout[-2000:] + done.stderr[-3000:]
    assert "starting 2 processes" in done.stdout and "over 2 processes" in done.stdout
    assert "done: step 2" in done.stdout and "on cpu x 2" in done.stdout
    run_dir = tmp_path / "runs" / "two"
    assert latest_checkpoint(run_dir).name == "step_000002" and [r["step"] for r in read_metrics(run_dir)] == [2]
    assert not (run_dir / "train.lock").exists()
    # a refusal inside the processes (the run held by a live process, pid 1) is their exit status and their
    # one-line error, not torchrun's ChildFailedError traceback; the run's record is left alone
    import socket

    record = (run_dir / cli.TRAIN_COMMAND_FILE).read_bytes()
    (run_dir / "train.lock").write_text(json.dumps({"pid": 1, "host": socket.gethostname(), "since": "now",
                                                    "command": "inpaint train ce"}))
    argv[argv.index("--steps") + 1] = "3"
    held = subprocess.run([sys.executable, "-m", "inpaint_utils.cli", *argv], capture_output=True, text=True,
                          timeout=400, env=env)
    assert held.returncode == 2, held.stdout[-2000:] + held.stderr[-3000:]
    assert "inpaint train: error: another training holds" in held.stderr and "Traceback" not in held.stderr
    assert (run_dir / cli.TRAIN_COMMAND_FILE).read_bytes() == record


def test_every_method_names_a_profile_table():
    for name, method in cli.METHODS.items():
        assert method.notebook in config.PROFILES, name
        for profile in cli.PROFILE_NAMES:
            assert {"batch_size", "image_size"} <= cli.method_settings(name, profile).keys(), (name, profile)


def test_entry_point_and_module_run():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["inpaint"] == "inpaint_utils.cli:main"
    done = subprocess.run([sys.executable, "-m", "inpaint_utils.cli", "train", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "--nproc" in done.stdout and "--rdzv_backend c10d" in done.stdout



# ------------------------------------------------------------------ one set of method names

def test_train_fill_and_evaluate_share_one_set_of_method_names():
    from inpaint_utils.inference import METHODS as FILL_METHODS

    assert set(cli.METHODS) <= set(FILL_METHODS)                       # every trainable method can fill
    assert list(cli.METHODS) == ["ce", "glcic", "deepfill", "pconv", "deepfill_v2"]
    for old, new in cli.ALIASES.items():                               # the old names: aliases of the new
        assert old not in FILL_METHODS and new in FILL_METHODS and cli.METHODS[old] is cli.METHODS[new]
        assert old in cli.METHODS and cli.canonical_method(old) == new
        assert cli.method_settings(old, "smoke") == cli.method_settings(new, "smoke")
    assert cli.canonical_method("glcic") == "glcic" and cli.canonical_method("nope") == "nope"
    # a run without --run-name keeps its folder whichever name started it
    assert cli.default_run_name("ce", "cpu") == cli.default_run_name("context_encoder", "cpu") == "context_encoder_cpu"
    assert cli.default_run_name("pconv", "smoke") == "partial_conv_smoke"
    assert cli.default_run_name("glcic", "gpu") == "glcic_gpu"


def test_help_texts_list_the_one_set(capsys):
    parser = cli.build_parser()
    for argv in (["train", "--help"], ["fill", "--help"], ["evaluate", "--help"]):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        text = " ".join(capsys.readouterr().out.split())
        assert "pconv" in text and "context_encoder for ce, partial_conv for pconv are accepted too" in text, argv
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "ce (Context Encoder" in text and "pconv (partial convolutions" in text and "{context_encoder" not in text


@pytest.mark.parametrize("name", ["ce", "context_encoder"])
def test_train_takes_the_fill_name_and_the_old_one(images, runs, capsys, name):
    argv = ["train", name, "--data", str(images), "--steps", "1", "--batch-size", "2", "--image-size", "32"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "inpaint train ce:" in out and "done: step 1" in out
    assert latest_checkpoint(runs / "context_encoder_smoke").name == "step_000001"    # the folder it always had
    record = json.loads((runs / "context_encoder_smoke" / cli.TRAIN_COMMAND_FILE).read_text())
    assert record["method"] == "ce" and record["command"].startswith(f"inpaint train {name} ")


def test_train_pconv_alias_parses_to_the_same_method():
    parser = cli.build_parser()
    for name in ("pconv", "partial_conv"):
        assert parser.parse_args(["train", name, "--data", "x"]).method == "pconv"
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "cascade", "--data", "x"])           # fill-only methods are not trainable


def test_fill_evaluate_and_benchmark_take_the_old_names(pair, tmp_path, checkpoints, test_images, capsys):
    image, mask, pixels, hole = pair
    out = tmp_path / "alias.png"
    argv = ["fill", str(image), str(mask), "-o", str(out), "--method", "context_encoder", "--checkpoint",
            str(checkpoints["ce"])]
    assert cli.main(argv) == 0
    assert np.array_equal(np.asarray(Image.open(out))[~hole], pixels[~hole])
    capsys.readouterr()
    assert cli.build_parser().parse_args(["evaluate", "--method", "partial_conv", "--data", "x"]).method == "pconv"
    assert cli.main(["evaluate", "--method", "context_encoder", "--checkpoint", str(checkpoints["ce"]), "--data",
                     str(test_images), "--size", "32", "--no-lpips"]) == 0
    assert "ce" in capsys.readouterr().out
    argv = ["benchmark", "--methods", "telea,context_encoder", "--checkpoint", f"context_encoder={checkpoints['ce']}",
            "--size", "32", "--batch", "1", "--repeats", "1", "--device", "cpu"]
    assert cli.main(argv) == 0
    rows = capsys.readouterr().out.splitlines()
    assert [r.split()[0] for r in rows if r.startswith(("telea ", "ce "))] == ["telea", "ce"]


# ------------------------------------------------------------------ train glcic / deepfill

@pytest.mark.parametrize("method, size, notebook", [("glcic", 64, "04_glcic"),                # GLCIC: multiples of 64
                                                     ("deepfill", 16, "05_contextual_attention")])  # 8k, >= 16
def test_train_glcic_and_deepfill_build_the_notebooks_models(images, runs, capsys, method, size, notebook):
    from inpaint_utils.models import build_model

    argv = ["train", method, "--data", str(images), "--steps", "2", "--batch-size", "2", "--image-size", str(size),
            "--run-name", f"cli_{method}"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert f"at {size} px" in out and "2 steps, global batch 2" in out and "done: step 2" in out
    ckpt = latest_checkpoint(runs / f"cli_{method}")
    info = checkpoint_info(ckpt)
    assert info["model_name"] == method and info["step"] == 2
    smoke = config.settings(notebook, "smoke")
    saved = info["config"]
    assert saved["image_size"] == size
    width = ("base_channels",) if method == "glcic" else ("cnum", "critic_cnum")
    assert all(saved[k] == smoke[k] for k in width)
    # the generator rebuilds from the checkpoint, and `inpaint fill` uses it
    load_checkpoint(ckpt, {"generator": build_model(method, saved)}, model_name=method, config=saved)


def test_deepfill_without_steps_takes_the_hole_mode_steps():
    settings = config.settings("05_contextual_attention", "smoke", image_size=16, cnum=2, critic_cnum=1)
    assert "num_steps" not in settings
    recipe = cli.build_deepfill(settings, None, seed=0)
    assert settings["num_steps"] == settings["steps_hole"]
    assert recipe.model_name == "deepfill" and recipe.task.input_mode == "hole"
    settings = config.settings("05_contextual_attention", "smoke", image_size=16, cnum=2, critic_cnum=1)
    settings["num_steps"] = 7                                                # as run_train sets --steps
    cli.build_deepfill(settings, None, seed=0)
    assert settings["num_steps"] == 7                                        # --steps wins


# --------------------------------------------------------------------------------------- fill

def _save_rgb(path, size=(48, 64), seed=0):
    rng = np.random.default_rng(seed)
    pixels = (rng.random((*size, 3)) * 255).astype(np.uint8)
    Image.fromarray(pixels).save(path)
    return pixels


def _save_mask(path, size=(48, 64), box=(10, 30, 20, 40)):
    mask = np.zeros(size, np.uint8)
    top, bottom, left, right = box
    mask[top:bottom, left:right] = 255
    Image.fromarray(mask).save(path)
    return mask > 0


@pytest.fixture
def pair(tmp_path):
    """An RGB PNG 64x48 and its mask (a 20x20 white square), as files, with their arrays."""
    image, mask = tmp_path / "image.png", tmp_path / "mask.png"
    return image, mask, _save_rgb(image), _save_mask(mask)


@pytest.fixture(scope="module")
def checkpoints(tmp_path_factory):
    """One tiny random-initialised checkpoint per learned method: {"ce" | "glcic" | "deepfill": run folder}."""
    from inpaint_utils.checkpoint import save_checkpoint
    from inpaint_utils.models import CompletionNetwork, DeepFillConfig, DeepFillGenerator, GLCICConfig

    root = tmp_path_factory.mktemp("ckpts")
    nets = {"ce": ContextEncoderGenerator(ContextEncoderConfig.tiny(output="full", hole_size=None), seed=0),
            "glcic": CompletionNetwork(GLCICConfig.tiny(), seed=0),
            "deepfill": DeepFillGenerator(DeepFillConfig.tiny(), seed=0)}
    out = {}
    for method, net in nets.items():
        out[method] = root / f"tiny_{method}"
        save_checkpoint(out[method] / "checkpoints" / "step_000001", {"generator": net}, model_name=net.model_name,
                        config=net.config.to_dict(), step=1)
    return out


def test_fill_telea_writes_a_png_keeping_the_known_pixels(pair, tmp_path, capsys):
    image, mask, pixels, hole = pair
    out = tmp_path / "filled.png"
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "telea"]) == 0
    assert "telea filled 400 pixels" in capsys.readouterr().out
    with Image.open(out) as img:
        assert img.format == "PNG" and img.mode == "RGB"
        result = np.asarray(img)
    assert result.shape == pixels.shape
    assert np.array_equal(result[~hole], pixels[~hole])                       # known pixels: exact
    assert not np.array_equal(result[hole], pixels[hole])                     # the hole was filled
    assert not list(tmp_path.glob(".*.tmp"))                                  # no temporary file left


def test_fill_jpeg_output_from_the_extension(pair, tmp_path):
    image, mask, pixels, _ = pair
    out = tmp_path / "filled.JPG"
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "ns"]) == 0
    with Image.open(out) as img:
        assert img.format == "JPEG" and img.size == (64, 48)


@pytest.mark.parametrize("method", ["ce", "glcic", "deepfill"])
def test_fill_with_a_learned_checkpoint(pair, tmp_path, checkpoints, capsys, method):
    image, mask, pixels, hole = pair
    out = tmp_path / f"{method}.png"
    argv = ["fill", str(image), str(mask), "-o", str(out), "--method", method, "--checkpoint", str(checkpoints[method]),
            "--device", "cpu"]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert f"{method} (checkpoint" in printed and "step_000001, step 1" in printed
    result = np.asarray(Image.open(out))
    assert np.array_equal(result[~hole], pixels[~hole])
    assert not np.array_equal(result[hole], pixels[hole])


def test_fill_with_the_checkpoint_of_another_model_names_both(pair, tmp_path, checkpoints, capsys):
    image, mask, _, _ = pair
    out = tmp_path / "out.png"
    argv = ["fill", str(image), str(mask), "-o", str(out), "--method", "glcic", "--checkpoint", str(checkpoints["ce"])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("inpaint fill: error:") and err.count("\n") == 1 and "Traceback" not in err
    assert "'context_encoder'" in err and "'glcic'" in err and "use --method ce" in err
    assert not out.exists()


def test_fill_missing_checkpoint(pair, tmp_path, capsys):
    image, mask, _, _ = pair
    out = tmp_path / "out.png"
    base = ["fill", str(image), str(mask), "-o", str(out), "--method", "deepfill"]
    assert cli.main([*base, "--checkpoint", str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err
    assert "no checkpoint" in err and str(tmp_path / "nowhere") in err
    assert cli.main(base) == 2
    assert "needs a checkpoint" in capsys.readouterr().err
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "telea", "--checkpoint", "x"]) == 2
    assert "takes no checkpoint" in capsys.readouterr().err
    assert not out.exists()


def test_fill_corrupt_and_missing_images(pair, tmp_path, capsys):
    image, mask, _, _ = pair
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(image.read_bytes()[:300])
    out = tmp_path / "out.png"
    assert cli.main(["fill", str(truncated), str(mask), "-o", str(out), "--method", "telea"]) == 2
    err = capsys.readouterr().err
    assert f"cannot read image {truncated}" in err and "truncated" in err and "Traceback" not in err
    assert cli.main(["fill", str(tmp_path / "none.png"), str(mask), "-o", str(out), "--method", "telea"]) == 2
    assert "image file not found" in capsys.readouterr().err
    bad_mask = tmp_path / "bad_mask.png"
    bad_mask.write_bytes(b"not a png")
    assert cli.main(["fill", str(image), str(bad_mask), "-o", str(out), "--method", "telea"]) == 2
    assert f"cannot read mask {bad_mask}" in capsys.readouterr().err
    assert not out.exists()


def test_fill_grayscale_and_rgba_images(tmp_path):
    hole = _save_mask(tmp_path / "mask.png")
    rng = np.random.default_rng(1)
    grey = (rng.random((48, 64)) * 255).astype(np.uint8)
    Image.fromarray(grey, mode="L").save(tmp_path / "grey.png")
    rgba = (rng.random((48, 64, 4)) * 255).astype(np.uint8)
    rgba[..., 3] = 255
    rgba[:5, :5, 3] = 0                                                      # transparent corner: white
    Image.fromarray(rgba, mode="RGBA").save(tmp_path / "rgba.png")
    for name in ("grey", "rgba"):
        out = tmp_path / f"{name}_out.png"
        assert cli.main(["fill", str(tmp_path / f"{name}.png"), str(tmp_path / "mask.png"), "-o", str(out),
                         "--method", "telea"]) == 0
        result = np.asarray(Image.open(out))
        assert result.shape == (48, 64, 3)
        expected = np.repeat(grey[..., None], 3, 2) if name == "grey" else rgba[..., :3].copy()
        if name == "rgba":
            expected[:5, :5] = 255
        assert np.array_equal(result[~hole], expected[~hole])


def test_fill_mask_of_another_size_or_empty_leaves_an_existing_output_alone(pair, tmp_path, capsys):
    image, _, _, _ = pair
    out = tmp_path / "out.png"
    out.write_bytes(b"the previous result")
    small = tmp_path / "small.png"
    _save_mask(small, size=(40, 64))
    assert cli.main(["fill", str(image), str(small), "-o", str(out), "--method", "telea"]) == 2
    err = capsys.readouterr().err
    assert "is 64x40 pixels but image" in err and "64x48" in err and "not resized" in err
    empty = tmp_path / "empty.png"
    Image.fromarray(np.zeros((48, 64), np.uint8)).save(empty)
    assert cli.main(["fill", str(image), str(empty), "-o", str(out), "--method", "telea"]) == 2
    err = capsys.readouterr().err
    assert "no hole pixels" in err and "add --invert-mask" in err
    assert out.read_bytes() == b"the previous result"
    # the same all-black file with --invert-mask is all hole: nothing known to fill from, found up front (2)
    assert cli.main(["fill", str(image), str(empty), "-o", str(out), "--method", "telea", "--invert-mask"]) == 2
    err = capsys.readouterr().err
    assert "is all hole: no known pixel" in err and "--invert-mask" in err and len(err.splitlines()) == 1
    assert out.read_bytes() == b"the previous result"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["empty.png", "image.png", "mask.png", "out.png", "small.png"]


def test_fill_refuses_a_huge_mask_from_its_header_before_decoding_it(pair, tmp_path, monkeypatch, capsys):
    from _bad_files import write_bomb_png

    image, _, _, _ = pair
    huge = write_bomb_png(tmp_path / "huge.png", side=9000)             # a few bytes claiming 9000 x 9000
    assert huge.stat().st_size < 10_000
    decoded = []
    real = Image.Image.load

    def load(self):
        decoded.append(self.size)
        return real(self)

    monkeypatch.setattr(Image.Image, "load", load)
    out = tmp_path / "out.png"
    assert cli.main(["fill", str(image), str(huge), "-o", str(out), "--method", "telea"]) == 2
    err = capsys.readouterr().err
    assert f"mask {huge} is 9000x9000 pixels but image {image} is 64x48" in err and len(err.splitlines()) == 1
    assert (9000, 9000) not in decoded and not out.exists()


def test_fill_refuses_an_unknown_extension_before_computing(pair, tmp_path, monkeypatch, capsys):
    from inpaint_utils import data

    image, mask, _, _ = pair
    monkeypatch.setattr(data, "load_image", lambda path: pytest.fail("the image was read"))
    for name in ("out.gif", "out"):
        assert cli.main(["fill", str(image), str(mask), "-o", str(tmp_path / name), "--method", "telea"]) == 2
        assert "unknown output format" in capsys.readouterr().err
    assert cli.main(["fill", str(image), str(mask), "-o", str(tmp_path / "no" / "out.png"), "--method", "telea"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_fill_failing_write_keeps_the_old_output(pair, tmp_path, monkeypatch, capsys):
    image, mask, _, _ = pair
    out = tmp_path / "out.png"
    out.write_bytes(b"old bytes")

    def broken_save(self, fp, format=None, **kwargs):
        fp.write(b"\x89PNG half")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(Image.Image, "save", broken_save)
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "telea"]) == 1
    err = capsys.readouterr().err
    assert f"cannot write {out}: No space left on device" in err and len(err.splitlines()) == 1   # names the file
    assert out.read_bytes() == b"old bytes"
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_fill_refuses_an_output_that_is_one_of_its_inputs(pair, tmp_path, capsys):
    import os

    image, mask, _, _ = pair
    before = {p: p.read_bytes() for p in (image, mask)}
    (tmp_path / "link.png").symlink_to(image)
    os.link(mask, tmp_path / "hard.png")
    for out, named in ((image, "IMAGE"), (mask, "MASK"), (tmp_path / "link.png", "IMAGE"),
                       (tmp_path / "hard.png", "MASK")):
        assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "telea"]) == 2
        err = capsys.readouterr().err
        assert f"-o {out}: is the input {named}" in err and len(err.splitlines()) == 1
    assert {p: p.read_bytes() for p in (image, mask)} == before


def test_fill_nn_refuses_an_output_inside_the_folder_it_reads(pair, tmp_path, capsys):
    import os

    image, mask, _, _ = pair
    database = tmp_path / "train"
    (database / "sub").mkdir(parents=True)
    for k in range(3):
        _save_rgb(database / ("sub" if k == 2 else "") / f"z{k}.png", seed=k + 1)
    os.link(database / "z0.png", tmp_path / "hard.png")
    before = {p: p.read_bytes() for p in database.rglob("*.png")}
    for out, said in ((database / "z1.png", "lies inside the folder of training images"),
                      (database / "sub" / "new.png", "lies inside the folder of training images"),
                      (tmp_path / "hard.png", "is the training image")):
        assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "nn",
                         "--checkpoint", str(database)]) == 2
        err = capsys.readouterr().err
        assert said in err and len(err.splitlines()) == 1, err
    assert {p: p.read_bytes() for p in database.rglob("*.png")} == before
    assert cli.main(["fill", str(image), str(mask), "-o", str(tmp_path / "out.png"), "--method", "nn",
                     "--checkpoint", str(database)]) == 0


def test_fill_patchmatch_on_a_tiny_image_suggests_only_what_the_command_has(tmp_path, capsys):
    image, mask = tmp_path / "tiny.png", tmp_path / "tiny_mask.png"
    _save_rgb(image, size=(2, 2))
    _save_mask(mask, size=(2, 2), box=(0, 1, 0, 1))
    out = tmp_path / "out.png"
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "patchmatch"]) == 1
    err = capsys.readouterr().err
    assert "image 2x2 is too small for patchmatch" in err and "patch_size" not in err and len(err.splitlines()) == 1
    big, big_mask = tmp_path / "small.png", tmp_path / "small_mask.png"
    _save_rgb(big, size=(12, 12))
    _save_mask(big_mask, size=(12, 12), box=(2, 10, 2, 10))
    assert cli.main(["fill", str(big), str(big_mask), "-o", str(out), "--method", "patchmatch"]) == 1
    err = capsys.readouterr().err
    assert "no whole 7x7 known patch" in err and "--patch-size" in err
    assert cli.main(["fill", str(big), str(big_mask), "-o", str(out), "--method", "patchmatch",
                     "--patch-size", "3"]) == 0                        # the option the message names exists
    capsys.readouterr()
    for bad, said in ((["--patch-size", "4"], "odd integer"), (["--patch-size", "3", "--method", "telea"],
                                                              "patchmatch's option")):
        argv = ["fill", str(big), str(big_mask), "-o", str(out), "--method", "patchmatch", *bad]
        assert cli.main(argv) == 2 and said in capsys.readouterr().err


def test_fill_unreadable_masks_and_images_exit_2_in_one_line(pair, tmp_path, capsys):
    from _bad_files import write_bomb_png, write_truncated_jpeg

    image, mask, _, _ = pair
    out = tmp_path / "out.png"
    bomb, cut = write_bomb_png(tmp_path / "bomb.png"), write_truncated_jpeg(tmp_path / "cut.jpg")
    square = tmp_path / "square.png"                   # the truncated mask's size: its header passes, its data not
    _save_rgb(square, size=(64, 64))
    for args, named in (([image, bomb], f"mask {bomb}"), ([bomb, mask], f"image {bomb}"),
                        ([square, cut], f"mask {cut}"), ([image, tmp_path], f"mask {tmp_path}")):
        assert cli.main(["fill", *map(str, args), "-o", str(out), "--method", "telea"]) == 2
        err = capsys.readouterr().err
        assert f"inpaint fill: error: cannot read {named}" in err and len(err.splitlines()) == 1, err
    assert not out.exists()


def test_fill_coloured_and_transparent_masks_and_the_inverted_mask_warning(pair, tmp_path, capsys):
    image, _, pixels, hole = pair
    red = np.zeros((*hole.shape, 3), np.uint8)
    red[hole] = (255, 0, 0)                                                  # a red hole on black
    Image.fromarray(red).save(tmp_path / "red.png")
    cutout = np.zeros((*hole.shape, 4), np.uint8)
    cutout[..., :3] = 255                                                    # white everywhere, opaque in the hole
    cutout[hole, 3] = 255
    Image.fromarray(cutout, "RGBA").save(tmp_path / "cutout.png")
    for name in ("red", "cutout"):
        out = tmp_path / f"{name}_out.png"
        assert cli.main(["fill", str(image), str(tmp_path / f"{name}.png"), "-o", str(out), "--method", "telea"]) == 0
        assert f"filled {int(hole.sum())} pixels" in capsys.readouterr().out
        assert np.array_equal(np.asarray(Image.open(out))[~hole], pixels[~hole])
    out = tmp_path / "inverted_out.png"                                      # 1 - hole: most of the image
    assert cli.main(["fill", str(image), str(tmp_path / "red.png"), "-o", str(out), "--method", "telea",
                     "--invert-mask"]) == 0
    err = capsys.readouterr().err
    share = 100 * (1 - hole.mean())
    assert err.startswith(f"inpaint fill: warning: mask {tmp_path / 'red.png'}: the hole covers {share:.1f} %")
    assert "inverted" in err and len(err.splitlines()) == 1


def test_fill_read_only_output_folder_is_refused_before_computing(pair, tmp_path, monkeypatch, capsys):
    import errno
    import tempfile

    from inpaint_utils import inference

    image, mask, _, _ = pair
    out = tmp_path / "out.png"

    def read_only(prefix="", suffix="", dir=None):
        raise PermissionError(errno.EACCES, "Permission denied", f"{dir}/{prefix}x1y2z3{suffix}")

    monkeypatch.setattr(tempfile, "mkstemp", read_only)                     # what a read-only folder does
    monkeypatch.setattr(inference, "load_inpainter", lambda *a, **k: pytest.fail("computed before checking -o"))
    assert cli.main(["fill", str(image), str(mask), "-o", str(out), "--method", "telea"]) == 2
    err = capsys.readouterr().err
    assert f"-o cannot write {out}: Permission denied" in err and ".tmp" not in err and len(err.splitlines()) == 1


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() == 0, reason="root writes into read-only folders")
def test_fill_into_a_real_read_only_folder(pair, tmp_path, capsys):
    image, mask, _, _ = pair
    folder = tmp_path / "ro"
    folder.mkdir()
    folder.chmod(0o555)
    try:
        assert cli.main(["fill", str(image), str(mask), "-o", str(folder / "out.png"), "--method", "telea"]) == 2
        err = capsys.readouterr().err
        assert f"cannot write {folder / 'out.png'}" in err and ".tmp" not in err
    finally:
        folder.chmod(0o755)


def test_unreadable_checkpoint_file_exits_2(pair, tmp_path, checkpoints, monkeypatch, capsys):
    import errno

    from inpaint_utils import checkpoint

    def unreadable(path, *args, **kwargs):
        raise PermissionError(errno.EACCES, "Permission denied", str(path))

    monkeypatch.setattr(checkpoint, "sha256_file", unreadable)
    image, mask, _, _ = pair
    argv = ["fill", str(image), str(mask), "-o", str(tmp_path / "out.png"), "--method", "ce",
            "--checkpoint", str(checkpoints["ce"])]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "Permission denied" in err and "generator.safetensors" in err and len(err.splitlines()) == 1
    assert cli.main(["benchmark", "--methods", "ce", "--checkpoint", f"ce={checkpoints['ce']}", "--size", "32"]) == 2


# ----------------------------------------------------------------------------------- evaluate


def test_evaluate_prints_a_table_and_writes_json(test_images, tmp_path, checkpoints, capsys):
    from inpaint_utils.data import ImageFolder

    out = tmp_path / "results.json"
    argv = ["evaluate", "--method", "glcic", "--checkpoint", str(checkpoints["glcic"]), "--data", str(test_images),
            "--baselines", "--mask-kind", "square", "--ratio", "0.2", "--no-lpips", "--json", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    n = len(ImageFolder(test_images, size=64, split="test", seed=0))
    assert n == 3
    assert f"{n} images 64x64" in printed and "square holes, ratio 0.2" in printed      # the model's size
    table = printed[printed.index("method "):].splitlines()
    assert table[0].split()[:3] == ["method", "n", "psnr_hole"] and "lpips_hole" not in table[0]
    assert [line.split()[0] for line in table[2:5]] == ["glcic", "telea", "ns"]
    record = json.loads(out.read_text())
    assert [r["method"] for r in record["rows"]] == ["glcic", "telea", "ns"]
    assert all(r["n"] == n and np.isfinite(r["psnr_hole"]) for r in record["rows"])
    assert record["image_size"] == 64 and record["mask_kind"] == "square" and record["seed"] == 0
    assert record["checkpoint"].endswith("step_000001") and record["lpips"] is False
    assert {"hardware", "code_version", "created"} <= record.keys()
    assert record["command"].startswith("inpaint evaluate --method glcic")
    # the same seed gives the same numbers
    assert cli.main([*argv[:-1], str(tmp_path / "again.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "again.json").read_text())["rows"] == record["rows"]


def test_evaluate_on_a_lama_set_scores_by_hole_area_and_reuses_the_fixed_masks(test_images, tmp_path, runs, capsys):
    from inpaint_utils import masks

    out = tmp_path / "thick.json"
    argv = ["evaluate", "--method", "telea", "--data", str(test_images), "--split", "all", "--num-images", "12",
            "--size", "32", "--mask-kind", "thick", "--baselines", "--no-lpips", "--json", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "LaMa's thick free-form evaluation set (12 masks drawn from seed 0" in printed
    assert "by hole-area bin" in printed
    record = json.loads(out.read_text())
    assert record["mask_kind"] == "thick" and record["ratio"] is None
    expected = masks.eval_mask_set("thick", 32, n=12, seed=0)                    # the saved set, read back
    assert np.isclose(record["achieved_ratio"], float(masks.area_ratio(expected).mean()))
    assert (runs / "eval_masks").is_dir()
    bins = [r for r in record["by_area"] if r["method"] == "telea"]
    assert sum(r["n"] for r in bins) == 12 and [r["method"] for r in record["rows"]] == ["telea", "ns"]
    own = np.bincount(masks.area_bins(expected).numpy(), minlength=10)
    assert [r["n"] for r in bins] == [int(c) for c in own if c]                  # one row per non-empty bin
    weighted = sum(r["n"] * r["psnr_hole"] for r in bins) / 12                   # the bins make up the mean
    assert np.isclose(weighted, record["rows"][0]["psnr_hole"])
    assert all(r["area_lo"] <= r["achieved"] < r["area_hi"] for r in bins)
    # the same seed reads the same set: the same numbers
    assert cli.main([*argv[:-1], str(tmp_path / "again.json")]) == 0
    capsys.readouterr()
    assert json.loads((tmp_path / "again.json").read_text())["by_area"] == record["by_area"]


def test_evaluate_nn_never_scores_images_of_its_own_database(test_images, tmp_path, capsys):
    base = ["evaluate", "--method", "nn", "--checkpoint", str(test_images), "--data", str(test_images),
            "--size", "32", "--no-lpips"]
    assert cli.main([*base, "--split", "all"]) == 2                     # every image scored is in its database
    err = capsys.readouterr().err
    assert "24 of the 30 images scored are in its database" in err and "--nn-split train" in err
    assert len(err.splitlines()) == 1
    out = tmp_path / "nn.json"
    assert cli.main([*base, "--json", str(out)]) == 0                    # auto: its database is the train split
    printed = capsys.readouterr().out
    assert "(train split, seed 0), 24 images" in printed
    record = json.loads(out.read_text())
    assert "train split" in record["nn_database"] and record["num_images"] == 3
    assert all(math.isfinite(r["psnr_hole"]) for r in record["rows"])  # no leaked image pasted back
    assert cli.main([*base, "--nn-split", "all"]) == 2                   # the whole folder holds the test split


def test_evaluate_json_is_strict_even_with_an_infinite_psnr(test_images, tmp_path, capsys):
    import shutil

    copies = tmp_path / "copies"                 # other files of the same pixels: nn pastes them back exactly
    shutil.copytree(test_images, copies)
    out = tmp_path / "copy.json"
    assert cli.main(["evaluate", "--method", "nn", "--checkpoint", str(copies), "--data", str(test_images),
                     "--size", "128", "--no-lpips", "--json", str(out)]) == 0     # nn's own image size
    capsys.readouterr()

    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")

    stored = json.loads(out.read_text(), parse_constant=refuse)
    assert stored["rows"][0]["psnr_hole"] == "inf"
    from inpaint_utils import report

    assert report.read_json(out)["rows"][0]["psnr_hole"] == math.inf


def test_evaluate_on_a_lama_set_with_a_read_only_runs_folder(test_images, runs, monkeypatch, capsys):
    import errno

    real = Path.mkdir

    def read_only(self, *args, **kwargs):             # what a read-only runs folder does (root ignores chmod)
        if "eval_masks" in str(self):
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real(self, *args, **kwargs)

    monkeypatch.setattr(Path, "mkdir", read_only)
    assert cli.main(["evaluate", "--method", "telea", "--data", str(test_images), "--split", "all", "--num-images",
                     "4", "--size", "32", "--mask-kind", "thin", "--no-lpips"]) == 0
    captured = capsys.readouterr()
    assert "LaMa's thin free-form evaluation set (4 masks" in captured.out
    warned = [line for line in captured.err.splitlines() if "cannot be saved" in line]
    assert len(warned) == 1 and warned[0].startswith("inpaint evaluate: warning:") and "in memory" in warned[0]


def test_evaluate_errors(images, test_images, capsys):
    base = ["evaluate", "--method", "telea", "--no-lpips"]
    assert cli.main([*base, "--data", str(images)]) == 2                       # 6 images: the test split is empty
    assert "split 'test'" in capsys.readouterr().err
    assert cli.main([*base, "--data", str(test_images), "--ratio", "1.5"]) == 2
    assert "--ratio must be in the open interval" in capsys.readouterr().err
    assert cli.main([*base, "--data", str(test_images), "--collection", "faces"]) == 2   # one source only
    assert "not allowed with argument" in capsys.readouterr().err
    assert cli.main([*base, "--data", str(test_images), "--size", "64", "--mask-kind", "circle",
                     "--ratio", "0.9"]) == 2
    assert "too large" in capsys.readouterr().err


def test_evaluate_split_all_scores_every_image_and_the_json_has_no_absolute_path(test_images, tmp_path, capsys):
    out = tmp_path / "all.json"
    argv = ["evaluate", "--method", "telea", "--no-lpips", "--size", "32", "--data", str(test_images),
            "--split", "all", "--json", str(out)]
    assert cli.main(argv) == 0
    printed = capsys.readouterr().out
    assert "every image (seed 0), 30 images 32x32" in printed                 # not the 3 of the test split
    record = json.loads(out.read_text())
    assert record["rows"][0]["n"] == 30 and record["split"] == "all (seed 0)"
    assert {"numpy", "diffusers", "opencv", "lpips"} <= record["versions"].keys()
    text = out.read_text()
    assert str(tmp_path) not in text and str(Path.home()) not in text
    assert "eval_images" in record["data"]                                     # the folder keeps its name
    assert cli.main([*argv[:-4], "--data", str(test_images)]) == 0            # default: the test split
    assert "test split (seed 0), 3 images" in capsys.readouterr().out


def test_evaluate_split_val_scores_the_validation_split_disjoint_from_test_and_train(test_images, tmp_path,
                                                                                      capsys):
    from inpaint_utils import data

    out = tmp_path / "val.json"
    argv = ["evaluate", "--method", "telea", "--no-lpips", "--size", "32", "--data", str(test_images),
            "--split", "val", "--json", str(out)]
    assert cli.main(argv) == 0
    assert "validation split (seed 0), 3 images 32x32" in capsys.readouterr().out
    record = json.loads(out.read_text())
    assert record["split"] == "val (seed 0)" and record["rows"][0]["n"] == 3
    files = {s: {Path(f).name for f in data.ImageFolder(test_images, size=32, split=s).files}
             for s in ("train", "val", "test")}
    assert len(files["val"]) == 3 and not files["val"] & (files["test"] | files["train"])


def test_train_lr_sets_the_learning_rate(images, runs, capsys):
    assert cli.main(["train", "deepfill_v2", "--data", str(images), "--steps", "1", "--batch-size", "2",
                     "--image-size", "64", "--run-name", "v2lr", "--lr", "3e-4"]) == 0
    capsys.readouterr()
    recorded = json.loads((runs / "v2lr" / cli.TRAIN_COMMAND_FILE).read_text())
    assert recorded["settings"]["lr"] == 3e-4 and "--lr 3e-4" in recorded["command"]
    settings = cli.method_settings("deepfill_v2", "smoke")
    task = cli.METHODS["deepfill_v2"].build({**settings, "lr": recorded["settings"]["lr"], "fill": (0.5,) * 3},
                                             None, 0).task      # what train built from the recorded settings
    assert {g["lr"] for o in task.optimizers.values() for g in o.param_groups} == {3e-4}


def test_version(capsys):
    from inpaint_utils import __version__

    assert cli.main(["--version"]) == 0
    assert capsys.readouterr().out.strip() == f"inpaint {__version__} (inpaint-course)"
    assert tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"] == __version__


def test_evaluate_skips_and_counts_a_truncated_jpeg(test_images, capsys):
    from _bad_files import write_truncated_jpeg

    from inpaint_utils.data import ImageFolder

    victim = ImageFolder(test_images, size=64, split="test", seed=0).files[1]
    write_truncated_jpeg(victim)                                             # JPEG bytes, its .png name kept
    assert cli.main(["evaluate", "--method", "telea", "--data", str(test_images), "--size", "32", "--no-lpips"]) == 0
    captured = capsys.readouterr()
    assert f"inpaint evaluate: warning: skipped 1 unreadable image file(s) under {test_images}: {victim.name}" \
        in captured.err and len(captured.err.splitlines()) == 1
    assert "2 images 32x32" in captured.out


def test_evaluate_refuses_a_json_that_is_one_of_its_inputs(test_images, checkpoints, capsys):
    step = checkpoints["glcic"] / "checkpoints" / "step_000001"
    meta = step / "checkpoint.json"
    before = meta.read_bytes()
    assert cli.main(["evaluate", "--method", "glcic", "--checkpoint", str(checkpoints["glcic"]), "--data",
                     str(test_images), "--no-lpips", "--json", str(meta)]) == 2
    assert f"--json {meta}: is the input checkpoint file {meta}" in capsys.readouterr().err
    assert meta.read_bytes() == before


def test_evaluate_with_unreadable_lpips_weights_exits_2(test_images, tmp_path, monkeypatch, capsys):
    weights = tmp_path / "lpips_squeeze_v0.1_full.npz"
    weights.write_bytes(b"not a zip archive")
    monkeypatch.setenv("INPAINT_LPIPS", str(weights))
    assert cli.main(["evaluate", "--method", "telea", "--data", str(test_images), "--size", "32"]) == 2
    err = capsys.readouterr().err
    assert "--lpips: the LPIPS weights cannot be read" in err and "--no-lpips" in err and "Traceback" not in err


def test_train_on_a_folder_of_unreadable_images_exits_2(tmp_path, runs, capsys):
    folder = tmp_path / "broken"
    folder.mkdir()
    for i in range(3):
        (folder / f"b{i}.png").write_bytes(b"not a png")
    assert cli.main(["train", "context_encoder", "--data", str(folder), "--steps", "1"]) == 2
    err = [line for line in capsys.readouterr().err.splitlines() if "error" in line]
    assert len(err) == 1 and "none of the 3 image files" in err[0] and "b0.png" in err[0]


# ---------------------------------------------------------------------------------- benchmark

def test_benchmark_prints_one_row_per_method(checkpoints, capsys):
    argv = ["benchmark", "--methods", "telea,ns,mean,ce", "--checkpoint", f"ce={checkpoints['ce']}", "--size", "32",
            "--batch", "2", "--repeats", "1", "--device", "cpu"]
    assert cli.main(argv) == 0
    lines = capsys.readouterr().out.splitlines()
    header = next(i for i, line in enumerate(lines) if line.startswith("method"))
    assert lines[header].split() == ["method", "device", "size", "batch", "ms_per_batch", "ms_per_image",
                                     "images_per_s"]
    rows = [line.split() for line in lines[header + 2:]]
    assert [r[0] for r in rows] == ["telea", "ns", "mean", "ce"]
    assert all(float(r[5]) > 0 and float(r[6]) > 0 for r in rows)


def test_benchmark_usage_errors(checkpoints, capsys):
    assert cli.main(["benchmark", "--methods", "telea,lama"]) == 2
    assert "unknown method(s) lama" in capsys.readouterr().err
    assert cli.main(["benchmark", "--methods", "telea", "--checkpoint", f"ce={checkpoints['ce']}"]) == 2
    assert "expected METHOD=PATH" in capsys.readouterr().err
    assert cli.main(["benchmark", "--methods", "glcic", "--checkpoint", f"glcic={checkpoints['ce']}"]) == 2
    assert "'context_encoder'" in capsys.readouterr().err


def test_installed_console_script_fills(pair, tmp_path):
    script = Path(sys.executable).parent / "inpaint"
    if not script.is_file():
        pytest.skip(f"{script} absent: run `pip install -e . --no-deps`")
    image, mask, pixels, hole = pair
    out = tmp_path / "script.png"
    done = subprocess.run([str(script), "fill", str(image), str(mask), "-o", str(out), "--method", "telea"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "telea filled 400 pixels" in done.stdout
    assert np.array_equal(np.asarray(Image.open(out))[~hole], pixels[~hole])


# ------------------------------------------------------------------------ the cpu profile's runs

def test_train_cpu_profile_on_the_train_split_then_evaluate_on_its_training_holes(test_images, runs, tmp_path,
                                                                                  capsys):
    argv = ["train", "context_encoder", "--data", str(test_images), "--profile", "cpu", "--split", "train",
            "--steps", "2", "--batch-size", "4", "--image-size", "32", "--run-name", "cpu_ce", "--cpu-precision", "bf16",
            "--memory-format", "channels_last"]
    assert cli.main(argv) == 0
    out = capsys.readouterr().out
    assert "24 images" in out and "profile cpu" in out                        # 80 % of 30: the test 3 left out
    assert "(bfloat16, channels_last: cpu_precision='bf16'" in out
    saved = checkpoint_info(latest_checkpoint(runs / "cpu_ce"))["config"]
    cpu = config.settings("02_context_encoder", "cpu")
    assert saved["base_channels"] == cpu["base_channels"] and saved["bottleneck_dim"] == cpu["bottleneck_dim"]
    recorded = json.loads((runs / "cpu_ce" / cli.TRAIN_COMMAND_FILE).read_text())
    assert recorded["profile"] == "cpu" and recorded["split"] == "train (seed 0)" and recorded["num_images"] == 24
    assert recorded["command"].startswith("inpaint train context_encoder") and str(tmp_path) not in str(recorded)

    result = tmp_path / "ce_cpu.json"
    assert cli.main(["evaluate", "--method", "ce", "--checkpoint", str(runs / "cpu_ce"), "--data", str(test_images),
                     "--mask-kind", "training", "--baselines", "--no-lpips", "--json", str(result)]) == 0
    printed = capsys.readouterr().out
    assert "ce's training holes: the centre 16x16 hole of 32x32 (its only hole) (mean ratio 0.250)" in printed
    record = json.loads(result.read_text())
    assert [r["method"] for r in record["rows"]] == ["ce", "telea", "ns"] and record["num_images"] == 3
    training = record["training"]
    assert training["step"] == 2 and training["train_time_s"] > 0 and training["profile"] == "cpu"
    assert training["images_per_s"] == pytest.approx(2 * 4 / training["train_time_s"])
    assert training["command"] == recorded["command"] and record["mask_kind"] == "training"
    assert (training["precision"], training["memory_format"]) == ("bfloat16", "channels_last")   # what trained it
    assert record["ratio"] is None and record["achieved_ratio"] == pytest.approx(0.25)
    for text in (result.read_text(), (runs / "cpu_ce" / cli.TRAIN_COMMAND_FILE).read_text()):
        assert str(tmp_path) not in text and str(Path.home()) not in text


def test_a_model_trained_in_stages_reports_their_summed_time(test_images, runs, tmp_path):
    # the cascade of notebook 03: a 64 CE trained in one run, its 128 stage in another
    for name, steps in (("stage_a", 2), ("stage_b", 3)):
        assert cli.main(["train", "context_encoder", "--data", str(test_images), "--profile", "smoke", "--steps",
                         str(steps), "--batch-size", "4", "--image-size", "32", "--run-name", name]) == 0
    summaries = [training_summary(latest_checkpoint(runs / n)) for n in ("stage_a", "stage_b")]
    path = cli.write_train_record(runs / "stage_b", "papermill notebooks/03_cascade_ce_nsd.ipynb out.ipynb -p PROFILE cpu",
                                  stages=[runs / "stage_a", runs / "stage_b"], method="cascade", profile="cpu",
                                  data=str(test_images))
    record = json.loads(path.read_text())
    assert record["stages"]["stage_a"]["step"] == 2 and record["stages"]["stage_b"]["step"] == 3
    assert record["train_time_s"] == pytest.approx(sum(s["train_time_s"] for s in summaries))
    images = sum(s["images_per_s"] * s["train_time_s"] for s in summaries)
    assert images == pytest.approx((2 + 3) * 4) and record["images_per_s"] == pytest.approx(images / record["train_time_s"])
    assert str(tmp_path) not in path.read_text()                                 # portable: no machine paths
    with pytest.raises(FileNotFoundError, match="no checkpoint"):
        cli.write_train_record(runs / "stage_b", "x", stages=[runs / "never_trained"])


def test_training_masks_are_each_models_own_holes(checkpoints):
    from inpaint_utils import inference
    from inpaint_utils.models import DeepFillConfig, GLCICConfig

    glcic = inference.load_inpainter("glcic", checkpoints["glcic"], device="cpu")
    mask, text = inference.training_masks(glcic, 40, torch.Generator().manual_seed(0))
    lo, hi = GLCICConfig.from_dict(glcic.info["config"]).hole_range
    rows, cols = mask.amax(dim=3)[:, 0].sum(dim=1), mask.amax(dim=2)[:, 0].sum(dim=1)   # (40,) hole sides
    assert mask.shape[1:] == (1, glcic.image_size, glcic.image_size) and "one rectangle, sides" in text
    assert bool(((rows >= lo) & (rows <= hi) & (cols >= lo) & (cols <= hi)).all())
    assert torch.equal(mask.sum(dim=(1, 2, 3)), rows * cols)                   # one rectangle per image
    assert len({(int(r), int(c)) for r, c in zip(rows, cols)}) > 1            # random sides, not one size
    deepfill = inference.load_inpainter("deepfill", checkpoints["deepfill"], device="cpu")
    mask, text = inference.training_masks(deepfill, 40, torch.Generator().manual_seed(0))
    hole = DeepFillConfig.from_dict(deepfill.info["config"]).hole_size
    sides = mask.amax(dim=3)[:, 0].sum(dim=1)
    assert bool(((sides <= hole) & (sides >= hole - 2 * (hole // 8))).all()) and "box less" in text
    again, _ = inference.training_masks(deepfill, 40, torch.Generator().manual_seed(0))
    assert torch.equal(mask, again)                                           # seeded
    with pytest.raises(ValueError, match="no training holes"):
        inference.training_masks(inference.load_inpainter("telea"), 2)


def test_evaluate_of_100_images_survives_one_image_that_a_method_cannot_fill(tmp_path, monkeypatch, capsys):
    """Issue 22: one image's failure never stops an evaluation; the method's row says n of how many and the
    image is named with its reason, in the printout and in the JSON."""
    from inpaint_utils.cli import evaluate as evaluate_cmd

    folder = tmp_path / "hundred"
    folder.mkdir()
    rng = np.random.default_rng(5)
    for i in range(100):
        pixels = np.kron(rng.random((4, 4, 3)) * 0.8 + 0.1, np.ones((8, 8, 1)))
        if i == 42:
            pixels[:] = 0.0                                   # the one image the broken method refuses
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"face_{i:03d}.png")
    real = evaluate_cmd._load_method

    def load(method, checkpoint, device, seed):
        inpainter = real(method, checkpoint, device, seed)
        if method != "ns":
            return inpainter

        def fragile(image, mask):
            if bool((image.flatten(1).amax(dim=1) == 0).any()):
                raise RuntimeError("cannot fill an all-black image\nsecond line")
            return inpainter(image, mask)
        return fragile
    monkeypatch.setattr(evaluate_cmd, "_load_method", load)
    out = tmp_path / "r.json"
    assert cli.main(["evaluate", "--method", "telea", "--baselines", "--no-lpips", "--size", "32", "--data",
                     str(folder), "--split", "all", "--batch-size", "16", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "ns: scored on 99 of 100 images; could not fill image 42 (face_042.png): RuntimeError: cannot fill " \
           "an all-black image" in printed
    rows = {r["method"]: r for r in json.loads(out.read_text())["rows"]}
    assert rows["telea"]["n"] == rows["telea"]["of"] == 100 and "failed" not in rows["telea"]
    assert rows["ns"]["n"] == 99 and rows["ns"]["of"] == 100
    assert rows["ns"]["failed"] == [{"image": 42, "reason": "RuntimeError: cannot fill an all-black image"}]
    assert math.isfinite(rows["ns"]["psnr_hole"])
