"""``inpaint train --data`` and ``inpaint evaluate --data`` prepare a folder's images with its dataset's recipe, as
the notebooks do (issue 24): Nanavati and Patel's (and Pathak et al.'s) ``"ce"``, resize to 256 then centre crop
128, for the registered datasets that use it, ``"256"`` (resize + centre crop) for any other folder; ``--preprocess``
chooses one explicitly. Before, both commands always used ``"256"``."""
import json

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import cli, data


@pytest.fixture(autouse=True)
def _env(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "data"))
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def _folder(path, n=6):
    """``n`` 60 x 80 PNGs whose centre differs from their border (the two recipes give different pixels)."""
    path.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        pixels = np.kron(rng.random((6, 8, 3)), np.ones((10, 10, 1)))
        Image.fromarray((pixels * 255).astype(np.uint8)).save(path / f"face_{i}.png")
    return path


def test_folder_recipe_is_the_registered_datasets(tmp_path):
    root = data.folder_recipe(tmp_path / "data" / "celeba-hq")             # data_root()/<name>
    assert (root.preprocessing, root.crop, root.dataset) == ("ce", None, "celeba-hq")
    inside = data.folder_recipe(tmp_path / "data" / "cityscapes" / "cityscapes_data" / "val")
    assert (inside.preprocessing, inside.crop, inside.dataset) == ("ce", "left_half", "cityscapes")
    named = data.folder_recipe(tmp_path / "elsewhere" / "celeba-hq")        # a copy of the dataset elsewhere
    assert named.dataset == "celeba-hq" and named.preprocessing == "ce"
    assert data.folder_recipe(tmp_path / "data" / "animals-90").preprocessing == "256"   # Biradar et al.'s recipe
    other = data.folder_recipe(tmp_path / "my_photos")
    assert (other.preprocessing, other.crop, other.dataset) == ("256", None, None)
    assert "ce" in root.describe() and "celeba-hq" in root.describe()


def _spy_image_folder(monkeypatch):
    seen = []
    real = data.ImageFolder

    def spy(*args, **kwargs):
        seen.append(kwargs)
        return real(*args, **kwargs)

    monkeypatch.setattr(data, "ImageFolder", spy)
    return seen


@pytest.mark.parametrize("folder,choice,expected", [("celeba-hq", "auto", "ce"), ("my_faces", "auto", "256"),
                                                    ("my_faces", "ce", "ce"), ("celeba-hq", "256", "256")])
def test_train_ce_uses_the_folders_recipe(tmp_path, monkeypatch, capsys, folder, choice, expected):
    images = _folder(tmp_path / "data" / folder)
    seen = _spy_image_folder(monkeypatch)
    argv = ["train", "ce", "--data", str(images), "--steps", "1", "--batch-size", "2", "--image-size", "32",
            "--run-name", "pre", "--preprocess", choice]
    assert cli.main(argv) == 0
    assert seen and seen[0]["preprocess"] == expected
    assert f"preprocess {expected!r}" in capsys.readouterr().out
    record = json.loads((tmp_path / "runs" / "pre" / "train_command.json").read_text())
    assert record["preprocess"] == expected


@pytest.mark.parametrize("folder,expected", [("celeba-hq", "ce"), ("my_faces", "256")])
def test_evaluate_scores_the_images_of_the_folders_recipe(tmp_path, monkeypatch, capsys, folder, expected):
    images = _folder(tmp_path / "data" / folder, n=10)
    seen = _spy_image_folder(monkeypatch)
    out = tmp_path / "scores.json"
    argv = ["evaluate", "--method", "telea", "--data", str(images), "--split", "all", "--size", "32",
            "--no-lpips", "--json", str(out)]
    assert cli.main(argv) == 0
    assert seen[0]["preprocess"] == expected
    assert f"preprocess {expected!r}" in json.loads(out.read_text())["data"]
    # and the pixels are that recipe's: the first image scored is preprocess(image, expected, 32)
    loaded = data.ImageFolder(images, size=32, preprocess=expected, split="all")
    other = data.ImageFolder(images, size=32, preprocess="256" if expected == "ce" else "ce", split="all")
    assert not torch.equal(loaded[0], other[0])
    assert torch.equal(data.ImageFolder(images, **seen[0])[0], loaded[0])


def test_a_bad_preprocess_choice_is_a_usage_error(tmp_path, capsys):
    images = _folder(tmp_path / "x")
    assert cli.main(["train", "ce", "--data", str(images), "--preprocess", "512"]) == 2
    assert "--preprocess" in capsys.readouterr().err
