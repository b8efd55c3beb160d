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


@pytest.fixture
def squeeze_stand_in():
    """``make(folder, lpips_keys=False) -> path``: a SqueezeNet 1.1 features file of random weights (torchvision's
    shapes, seeded) where a shared data folder keeps the ImageNet one, ``folder/weights/lpips_squeeze/``: the
    backbone .npz (keys ``features.N.*``) or, with ``lpips_keys``, the LPIPS model's (keys ``net.sliceN.N.*``)."""
    import torch
    from torchvision.models import squeezenet1_1

    from inpaint_utils.pretrained import LPIPS_FILENAME, SQUEEZENET_FEATURES_FILENAME

    def make(folder, lpips_keys: bool = False):
        torch.manual_seed(0)
        state = squeezenet1_1(weights=None).features.state_dict()
        slices = {0: 1, 3: 2, 4: 2, 6: 3, 7: 3, 9: 4, 10: 5, 11: 6, 12: 7}          # lpips' slices of features
        keys = {k: f"net.slice{slices[int(k.split('.')[0])]}.{k}" if lpips_keys else f"features.{k}" for k in state}
        path = folder / "weights" / "lpips_squeeze" / (LPIPS_FILENAME if lpips_keys else SQUEEZENET_FEATURES_FILENAME)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez(path, **{keys[k]: v.numpy() for k, v in state.items()})
        return path

    return make
