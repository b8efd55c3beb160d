"""Fixtures shared by the test files (the environment set-up is the project's conftest.py)."""
import numpy as np
import pytest
from PIL import Image


@pytest.fixture
def runs(tmp_path, monkeypatch):
    """A fresh ``INPAINT_RUNS`` folder for the test."""
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    return tmp_path / "runs"


@pytest.fixture
def test_images(tmp_path):
    """30 small PNGs of smooth colour blocks (40 x 40): the test split (10 %, seed 0) holds 3, the train split 24."""
    folder = tmp_path / "eval_images"   # not "images": test_cli's own fixture of that name
    folder.mkdir()
    rng = np.random.default_rng(2)
    for i in range(30):
        pixels = np.kron(rng.random((4, 4, 3)), np.ones((10, 10, 1)))            # 40 x 40 blocks of colour
        Image.fromarray((pixels * 255).astype(np.uint8)).save(folder / f"im_{i:02d}.png")
    return folder
