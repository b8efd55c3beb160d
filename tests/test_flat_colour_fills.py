"""scripts/flat_colour_fills.py: the flat-colour fills of every cpu checkpoint beside Telea (issue 24, item 3)."""
import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import cli

ROOT = Path(__file__).resolve().parents[1]


def _script():
    spec = importlib.util.spec_from_file_location("flat_colour_fills", ROOT / "scripts" / "flat_colour_fills.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture
def runs(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield tmp_path / "runs"
    torch.set_num_threads(threads)


def test_without_checkpoints_it_says_so_and_scores_telea(runs, capsys):
    assert _script().main([]) == 0
    out = capsys.readouterr().out
    assert "no cpu checkpoint under" in out
    telea = next(line for line in out.splitlines() if line.strip().startswith("Telea"))
    errors = [float(part.split("|error| ")[1].split(";")[0]) for part in telea.split("painted")[1:]]
    assert len(errors) == 2 and max(errors) < 0.01          # a flat image: Telea paints its colour


def test_every_cpu_checkpoint_gets_a_line_the_centre_model_on_its_own_hole(runs, tmp_path, capsys):
    folder = tmp_path / "faces"
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray((rng.random((64, 64, 3)) * 255).astype(np.uint8)).save(folder / f"f{i}.png")
    for method, run in (("ce", "tiny_ce_cpu"), ("deepfill_v2", "tiny_v2_cpu")):
        assert cli.main(["train", method, "--data", str(folder), "--steps", "1", "--batch-size", "2",
                         "--image-size", "64", "--run-name", run]) == 0
    (runs / "not_this_smoke").mkdir()
    capsys.readouterr()
    assert _script().main([]) == 0
    out = capsys.readouterr().out
    assert "ce (tiny_ce_cpu)" in out and "its centre hole" in out
    assert "deepfill_v2 (tiny_v2_cpu)" in out and "not_this_smoke" not in out
    assert _script().main([str(tmp_path / "nowhere")]) == 2
