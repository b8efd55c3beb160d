"""The ``inpaint`` command (inpaint_utils.cli): train from a folder of images in-process, resume, clear
errors for bad input, the torchrun relaunch of ``--nproc N``, and the method registry."""
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import cli, config
from inpaint_utils.checkpoint import checkpoint_info, latest_checkpoint, load_checkpoint
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


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


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


def test_errors_in_training_are_one_line_and_exit_1(images, runs, capsys):
    assert cli.main(["train", "context_encoder", "--data", str(images), "--batch-size", "16",
                     "--image-size", "32"]) == 1
    err = capsys.readouterr().err
    assert "fewer than batch_size=16" in err and "Traceback" not in err


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
    monkeypatch.setattr(cli.subprocess, "call", lambda cmd: calls.append(cmd) or 0)
    argv = ["train", "context_encoder", "--data", str(images), "--nproc", "2", "--device", "cpu", "--steps", "3"]
    assert cli.main(argv) == 0
    (cmd,) = calls
    assert cmd[:5] == [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2"]
    assert cmd[5:7] == ["-m", "inpaint_utils.cli"]
    # torchrun would read --nproc as its own --nproc-per-node: the processes get the rest unchanged
    assert cmd[7:] == ["train", "context_encoder", "--data", str(images), "--device", "cpu", "--steps", "3"]


def test_every_method_names_a_profile_table():
    for name, method in cli.METHODS.items():
        assert method.notebook in config.PROFILES, name
        for profile in cli.PROFILE_NAMES:
            assert {"batch_size", "image_size"} <= config.settings(method.notebook, profile).keys(), (name, profile)


def test_entry_point_and_module_run():
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert scripts["inpaint"] == "inpaint_utils.cli:main"
    done = subprocess.run([sys.executable, "-m", "inpaint_utils.cli", "train", "--help"], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode == 0 and "--nproc" in done.stdout and "--rdzv_backend c10d" in done.stdout
