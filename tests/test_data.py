"""inpaint_utils.data: registry, image reading of every Pillow mode, preprocessing, splits, ImageFolder,
the offline fallback (dataset -> shared folder -> scikit-image) and mean colours. Offline, CPU, fast."""
from __future__ import annotations

import dataclasses
import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image, ImageFile

from inpaint_utils import data


def _save(path: Path, array: np.ndarray, **kwargs) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path, **kwargs)
    return path


def _rgb(h: int, w: int, color=(255, 0, 0)) -> np.ndarray:
    return np.broadcast_to(np.array(color, np.uint8), (h, w, 3)).copy()


# --- registry ------------------------------------------------------------------------------------

def test_registry_has_the_papers_datasets():
    assert set(data.DATASETS) == {"celeba-hq", "cityscapes", "places365", "animals-90", "imagenet-subset"}
    for name, spec in data.DATASETS.items():
        assert spec.name == name
        owner, slug = spec.kaggle_id.split("/")
        assert owner and slug and " " not in spec.kaggle_id
        assert spec.preprocessing in ("ce", "256")
        assert spec.paper.startswith(("Nanavati & Patel (", "Biradar et al. ("))      # docs/references.md
        assert spec.sha256 is None or len(spec.sha256) == 64
        assert spec.licence and spec.description and spec.image_glob
    assert data.get_dataset_spec("animals-90").kaggle_id == "iamsouravbanerjee/animal-image-dataset-90-different-animals"
    assert data.DATASETS["cityscapes"].crop == "left_half"
    with pytest.raises(dataclasses.FrozenInstanceError):
        data.DATASETS["celeba-hq"].sha256 = "x"  # type: ignore[misc]


def test_unknown_dataset_lists_known_ones():
    with pytest.raises(KeyError, match="unknown dataset 'celeba'.*animals-90, celeba-hq, cityscapes"):
        data.get_dataset_spec("celeba")


def test_registry_table_and_cli_list(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path))
    (tmp_path / "cityscapes").mkdir()
    (tmp_path / "cityscapes" / data.MARKER).write_text("{}")
    rows = {r["name"]: r for r in data.registry_rows()}
    assert rows["cityscapes"]["downloaded"] == "yes" and rows["celeba-hq"]["downloaded"] == "no"
    assert rows["celeba-hq"]["download with"] == "bash data_download.sh celeba-hq"
    assert data.main(["list"]) == 0
    out = capsys.readouterr().out
    for spec in data.DATASETS.values():
        assert spec.kaggle_id in out


# --- load_image: every mode ----------------------------------------------------------------------

def test_rgb_and_grey_files(tmp_path):
    rgb = data.load_image(_save(tmp_path / "a.png", _rgb(4, 6, (255, 128, 0))))
    assert rgb.shape == (3, 4, 6) and rgb.dtype == torch.float32
    assert torch.allclose(rgb[:, 0, 0], torch.tensor([1.0, 128 / 255, 0.0]))
    grey = data.load_image(_save(tmp_path / "g.png", np.full((3, 5), 51, np.uint8)))
    assert grey.shape == (3, 3, 5) and torch.allclose(grey, torch.full_like(grey, 0.2))
    jpg = data.load_image(_save(tmp_path / "b.JPG", _rgb(16, 16, (0, 0, 255)), quality=100))
    assert jpg.shape == (3, 16, 16) and abs(float(jpg[2].mean()) - 1.0) < 0.02 and float(jpg[0].mean()) < 0.02


def test_alpha_is_composited_on_white(tmp_path):
    rgba = np.zeros((2, 2, 4), np.uint8)
    rgba[0, 0] = (200, 0, 0, 255)  # opaque red
    rgba[0, 1] = (200, 0, 0, 0)  # fully transparent: white
    rgba[1, 0] = (0, 0, 0, 51)  # 20 % black over white: 0.8
    x = data.load_image(_save(tmp_path / "rgba.png", rgba))
    assert torch.allclose(x[:, 0, 0], torch.tensor([200 / 255, 0.0, 0.0]))
    assert torch.allclose(x[:, 0, 1], torch.ones(3))
    assert torch.allclose(x[:, 1, 0], torch.full((3,), 0.8), atol=1e-6)
    la = Image.new("LA", (2, 1))
    la.putpixel((0, 0), (100, 255))
    la.putpixel((1, 0), (100, 0))
    la.save(tmp_path / "la.png")
    y = data.load_image(tmp_path / "la.png")
    assert torch.allclose(y[:, 0, 0], torch.full((3,), 100 / 255)) and torch.allclose(y[:, 0, 1], torch.ones(3))
    key = Image.new("L", (2, 1), 10)
    key.putpixel((1, 0), 200)
    key.save(tmp_path / "key.png", transparency=10)  # colour-key transparency (tRNS)
    z = data.load_image(tmp_path / "key.png")
    assert torch.allclose(z[:, 0, 0], torch.ones(3)) and torch.allclose(z[:, 0, 1], torch.full((3,), 200 / 255))


def test_palette_with_and_without_transparency(tmp_path):
    img = Image.new("P", (2, 1), 0)
    img.putpalette([255, 0, 0, 0, 255, 0])
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "p.png")
    x = data.load_image(tmp_path / "p.png")
    assert torch.equal(x[:, 0, 0], torch.tensor([1.0, 0.0, 0.0])) and torch.equal(x[:, 0, 1], torch.tensor([0.0, 1.0, 0.0]))
    img.save(tmp_path / "pt.png", transparency=1)  # index 1 (green) transparent -> white
    assert Image.open(tmp_path / "pt.png").mode == "P"
    y = data.load_image(tmp_path / "pt.png")
    assert torch.equal(y[:, 0, 0], torch.tensor([1.0, 0.0, 0.0])) and torch.equal(y[:, 0, 1], torch.ones(3))


def test_bilevel_and_cmyk(tmp_path):
    img = Image.new("1", (2, 1), 0)
    img.putpixel((1, 0), 1)
    img.save(tmp_path / "one.png")
    assert Image.open(tmp_path / "one.png").mode == "1"
    x = data.load_image(tmp_path / "one.png")
    assert torch.equal(x[:, 0, 0], torch.zeros(3)) and torch.equal(x[:, 0, 1], torch.ones(3))
    Image.new("CMYK", (4, 4), (0, 0, 0, 0)).save(tmp_path / "c.jpg", quality=100)
    assert torch.allclose(data.load_image(tmp_path / "c.jpg"), torch.ones(3, 4, 4), atol=0.02)


@pytest.mark.parametrize("fmt,ext,dtype,mode", [
    ("PNG", "png", np.uint16, "I;16"),
    ("TIFF", "tif", ">u2", "I;16B"),
    ("PPM", "pgm", np.uint16, "I"),
])
def test_sixteen_bit_scaled_by_65535(tmp_path, fmt, ext, dtype, mode):
    arr = np.array([[0, 32768, 65535, 300]], np.uint16).astype(dtype)
    path = tmp_path / f"x.{ext}"
    Image.fromarray(arr).save(path, fmt)
    assert Image.open(path).mode == mode
    x = data.load_image(path)
    assert x.shape == (3, 1, 4) and x.dtype == torch.float32
    assert float(x[0, 0, 0]) == 0.0 and float(x[0, 0, 2]) == 1.0
    assert abs(float(x[0, 0, 1]) - 0.5) < 1e-4
    assert abs(float(x[1, 0, 3]) - 300 / 65535) < 1e-7  # 300 is not clipped to 255 nor read as 8-bit


def test_float_mode_and_bad_int_mode(tmp_path):
    Image.fromarray(np.array([[0.0, 127.5, 255.0, 400.0]], np.float32)).save(tmp_path / "f.tif")
    x = data.load_image(tmp_path / "f.tif")
    assert torch.allclose(x[0, 0], torch.tensor([0.0, 0.5, 1.0, 1.0]))
    with pytest.raises(ValueError, match="outside the 16-bit range"):
        data.pil_to_tensor(Image.fromarray(np.array([[-5, 70000]], np.int32)))


def test_missing_and_unreadable_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="nope.png"):
        data.load_image(tmp_path / "nope.png")
    (tmp_path / "text.jpg").write_text("not an image")
    with pytest.raises(data.ImageReadError, match=r"cannot read image .*text\.jpg: UnidentifiedImageError"):
        data.load_image(tmp_path / "text.jpg")
    good = _save(tmp_path / "good.png", np.random.default_rng(0).integers(0, 255, (32, 32, 3), dtype=np.uint8))
    raw = good.read_bytes()
    (tmp_path / "trunc.png").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(data.ImageReadError, match=r"trunc\.png.*truncated"):
        data.load_image(tmp_path / "trunc.png")
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False  # not switched on globally
    with pytest.raises(data.ImageReadError, match="directory"):
        data.load_image(tmp_path)
    assert issubclass(data.ImageReadError, ValueError)


# --- preprocessing ---------------------------------------------------------------------------------

def test_ce_recipe_is_resize_256_then_centre_crop_128():
    image = torch.rand(3, 256, 256, generator=torch.Generator().manual_seed(0))
    out = data.preprocess(image, "ce")
    assert out.shape == (3, 128, 128)
    assert torch.equal(out, image[:, 64:192, 64:192])  # already 256: only the crop
    big = data.preprocess(torch.rand(3, 512, 700), "ce")
    assert big.shape == (3, 128, 128)
    assert data.preprocess(torch.rand(3, 100, 90), "ce", size=64).shape == (3, 64, 64)


def test_256_recipe_and_batches():
    out = data.preprocess(torch.full((3, 300, 400), 0.25), "256")
    assert out.shape == (3, 256, 256) and torch.allclose(out, torch.full_like(out, 0.25))
    batch = data.preprocess(torch.rand(2, 3, 64, 48), "256", size=32)
    assert batch.shape == (2, 3, 32, 32) and 0 <= float(batch.min()) and float(batch.max()) <= 1
    image = torch.rand(3, 10, 10)
    assert data.preprocess(image, None) is image


def test_downscaling_is_antialiased():
    yy, xx = torch.meshgrid(torch.arange(256), torch.arange(256), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(3, 256, 256)  # 1-pixel checkerboard, mean 0.5
    small = data.preprocess(checker, "256", size=64)
    assert abs(float(small.mean()) - 0.5) < 0.01 and float(small.std()) < 0.05  # no aliasing pattern


def test_center_crop_pads_with_black():
    out = data.center_crop(torch.ones(3, 100, 60), 128)
    assert out.shape == (3, 128, 128)
    assert float(out[:, :, :34].abs().sum()) == 0 and float(out[:, :, 94:].abs().sum()) == 0
    assert float(out[:, 14:114, 34:94].min()) == 1.0


def test_preprocess_rejects_bad_input():
    with pytest.raises(ValueError, match="mode must be one of"):
        data.preprocess(torch.rand(3, 8, 8), "celeba")
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.preprocess(torch.rand(3, 8, 8) * 2, "256")
    with pytest.raises(ValueError, match=r"\(B, 3, H, W\)"):
        data.preprocess(torch.rand(4, 8, 8), "256")
    with pytest.raises(ValueError, match="size must be a positive int"):
        data.preprocess(torch.rand(3, 8, 8), "256", size=0)
    with pytest.raises(ValueError, match="mode=None"):
        data.preprocess(torch.rand(3, 8, 8), None, size=4)


def test_transform_factory_is_picklable():
    transform = pickle.loads(pickle.dumps(data.make_transform("ce", 32)))
    image = torch.rand(3, 80, 80)
    assert torch.equal(transform(image), data.preprocess(image, "ce", 32))


# --- splits ------------------------------------------------------------------------------------------

def test_split_indices_sizes_disjoint_covering_deterministic():
    s = data.split_indices(144, (0.8, 0.1, 0.1), seed=0)
    assert [len(s[k]) for k in ("train", "val", "test")] == [115, 15, 14]
    assert sorted(s["train"] + s["val"] + s["test"]) == list(range(144))
    assert s == data.split_indices(144, (0.8, 0.1, 0.1), seed=0)
    assert s != data.split_indices(144, (0.8, 0.1, 0.1), seed=1)
    assert all(v == sorted(v) for v in s.values())
    # pinned values: the split must not change between machines or library versions
    assert data.split_indices(10, seed=0) == {"train": [2, 3, 4, 5, 6, 7, 8, 9], "val": [0], "test": [1]}
    assert data.split_indices(20, seed=7) == {"train": [1, 2, 3, 4, 5, 6, 8, 9, 10, 11, 13, 15, 16, 17, 18, 19],
                                              "val": [12, 14], "test": [0, 7]}
    assert [len(v) for v in data.split_indices(100, (0.5, 0.5, 0.0), seed=3).values()] == [50, 50, 0]
    assert data.split_indices(0) == {"train": [], "val": [], "test": []}


def test_split_indices_rejects_bad_arguments():
    with pytest.raises(ValueError, match="summing to 1"):
        data.split_indices(10, (0.8, 0.1, 0.2))
    with pytest.raises(ValueError, match="fractions"):
        data.split_indices(10, (0.9, 0.1))
    with pytest.raises(TypeError, match="seed must be an int"):
        data.split_indices(10, seed=0.5)
    with pytest.raises(ValueError, match="n must be"):
        data.split_indices(-1)


# --- ImageFolder -------------------------------------------------------------------------------------

@pytest.fixture()
def folder(tmp_path) -> Path:
    root = tmp_path / "imgs"
    rng = np.random.default_rng(0)
    names = ["a.png", "b.JPG", "sub/c.jpeg", "sub/deeper/d.Png", "e.jpg", "f.png", "g.png", "h.png", "i.png", "j.png"]
    for k, name in enumerate(names):
        _save(root / name, rng.integers(0, 255, (20 + k, 30, 3), dtype=np.uint8))
    (root / "notes.txt").write_text("not an image")
    _save(root / ".ipynb_checkpoints" / "hidden.png", _rgb(8, 8))
    return root


def test_image_folder_lists_recursively_and_returns_tensors(folder):
    ds = data.ImageFolder(folder, size=16)
    assert len(ds) == 10
    assert [ds._name(p) for p in ds.files][:4] == ["a.png", "b.JPG", "e.jpg", "f.png"]
    assert "sub/deeper/d.Png" in [ds._name(p) for p in ds.files]
    item = ds[3]
    assert item.shape == (3, 16, 16) and item.dtype == torch.float32
    assert ds[-1].shape == (3, 16, 16)
    with pytest.raises(IndexError):
        ds[10]


def test_image_folder_splits(folder):
    parts = {s: data.ImageFolder(folder, size=8, split=s, seed=5) for s in ("train", "val", "test")}
    files = {s: set(ds.files) for s, ds in parts.items()}
    assert [len(files[s]) for s in ("train", "val", "test")] == [8, 1, 1]
    assert files["train"] | files["val"] | files["test"] == set(data.ImageFolder(folder, size=8).files)
    assert not (files["train"] & files["val"]) and not (files["train"] & files["test"]) and not (files["val"] & files["test"])
    assert data.ImageFolder(folder, size=8, split="train", seed=5).files == parts["train"].files
    capped = data.ImageFolder(folder, size=8, split="train", seed=5, max_images=3)
    assert len(capped) == 3 and set(capped.files) <= files["train"]
    assert capped.files == data.ImageFolder(folder, size=8, split="train", seed=5, max_images=3).files
    with pytest.raises(ValueError, match="split 'val' .* is empty"):
        data.ImageFolder(folder, size=8, split="val", fractions=(1.0, 0.0, 0.0))
    with pytest.raises(ValueError, match="split must be one of"):
        data.ImageFolder(folder, split="training")


def test_unreadable_files_skipped_with_one_warning(folder):
    (folder / "broken.jpg").write_text("garbage")
    raw = (folder / "a.png").read_bytes()
    (folder / "sub" / "cut.png").write_bytes(raw[: len(raw) // 3])
    with pytest.warns(UserWarning, match=r"skipped 2 unreadable image file\(s\) under .*: broken\.jpg, sub/cut\.png") as record:
        ds = data.ImageFolder(folder, size=8)
    assert len([w for w in record if "unreadable" in str(w.message)]) == 1
    assert len(ds) == 10 and len(ds.skipped) == 2


def test_truncated_jpeg_and_bomb_are_skipped_by_the_quick_check(folder):
    from _bad_files import write_bomb_png

    _save(folder / "e.jpg", np.random.default_rng(1).integers(0, 255, (96, 96, 3), dtype=np.uint8), quality=95)
    raw = (folder / "e.jpg").read_bytes()
    (folder / "e.jpg").write_bytes(raw[: len(raw) * 3 // 4])  # cut inside the scan data: verify() alone passes it
    write_bomb_png(folder / "sub" / "bomb.png")
    for verify in ("quick", "full"):
        with pytest.warns(UserWarning, match=r"skipped 2 unreadable .*: e\.jpg, sub/bomb\.png"):
            checked = data.ImageFolder(folder, size=8, verify=verify)
        assert len(checked) == 9 and sorted(p.name for p in checked.skipped) == ["bomb.png", "e.jpg"]
    unchecked = data.ImageFolder(folder, size=8, verify="none")
    index = [p.name for p in unchecked.files].index("e.jpg")
    with pytest.raises(data.ImageReadError, match=r"e\.jpg"):
        unchecked[index]  # reading it says which file
    with pytest.raises(data.ImageReadError, match=r"bomb\.png: DecompressionBombError"):
        data.image_size(folder / "sub" / "bomb.png")  # the header reader too


def test_empty_and_missing_folders(tmp_path):
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "readme.txt").write_text("x")
    with pytest.raises(ValueError, match=r"no images .* found in folder .*empty"):
        data.ImageFolder(tmp_path / "empty")
    with pytest.raises(FileNotFoundError, match="nowhere"):
        data.ImageFolder(tmp_path / "nowhere")
    (tmp_path / "bad").mkdir()
    (tmp_path / "bad" / "x.png").write_text("x")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(ValueError, match="none of the 1 image files"):
            data.ImageFolder(tmp_path / "bad")


def test_file_list_native_size_and_left_half_crop(tmp_path):
    pair = np.concatenate([_rgb(16, 16, (255, 0, 0)), _rgb(16, 16, (0, 0, 255))], axis=1)  # photo | label
    files = [_save(tmp_path / "p1.png", pair), _save(tmp_path / "p0.png", _rgb(10, 12))]
    native = data.ImageFolder(files, size=None, preprocess=None)
    assert [p.name for p in native.files] == ["p0.png", "p1.png"]
    assert native[0].shape == (3, 10, 12) and native[1].shape == (3, 16, 32)
    left = data.ImageFolder([files[0]], size=8, crop="left_half")
    assert torch.allclose(left[0], torch.tensor([1.0, 0.0, 0.0]).view(3, 1, 1).expand(3, 8, 8))
    with pytest.raises(ValueError, match="preprocess=None"):
        data.ImageFolder(files, size=32, preprocess=None)


# --- the offline fallback ------------------------------------------------------------------------------

@pytest.fixture()
def dirs(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "shared"))
    return tmp_path


def _make_shared(shared: Path) -> None:
    for k in range(3):
        _save(shared / "faces_celebahq_stargan2" / f"f{k}.jpg", _rgb(128, 128, (200, 150, 100)))
    _save(shared / "faces_celebahq_ddnm" / "x.png", _rgb(130, 130))
    _save(shared / "faces_celeba_small_89x109" / "s.jpg", _rgb(109, 89))
    _save(shared / "camvid_256" / "test" / "c.png", _rgb(192, 256))
    _save(shared / "camvid_256" / "testannot" / "c.png", np.zeros((192, 256), np.uint8))  # label map: not a scene
    _save(shared / "bsds500" / "train" / "b.jpg", _rgb(321, 481))
    _save(shared / "bsds500" / "test" / "b2.jpg", _rgb(481, 321))
    _save(shared / "sr_testsets" / "Urban100_256" / "u.png", _rgb(200, 256))


def test_source_1_downloaded_dataset(dirs, capsys):
    _make_shared(dirs / "shared")
    for k in range(3):
        _save(dirs / "data" / "celeba-hq" / "celeba_hq_256" / f"{k}.jpg", _rgb(256, 256))
    source = data.find_source("celeba-hq")
    lines = capsys.readouterr().out.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("data source: dataset 'celeba-hq'") and "(3 images)" in lines[0]
    assert source.kind == "dataset" and len(source) == 3
    ds = source.dataset(size=32, preprocess="ce")
    assert len(ds) == 3 and ds[0].shape == (3, 32, 32)


def test_source_1_downloaded_dataset_uses_the_registry_preprocessing(dirs):
    # Nanavati & Patel's recipe for celeba-hq: resize to 256, centre crop 128, i.e. the central half of a
    # 256 image; resize-to-128 ("256") would keep the whole image, border included
    image = _rgb(256, 256, (0, 0, 255))
    image[48:208, 48:208] = (255, 0, 0)  # red centre, blue border
    _save(dirs / "data" / "celeba-hq" / "celeba_hq_256" / "0.png", image)
    source = data.find_source("celeba-hq", verbose=False)
    assert source.preprocessing == data.get_dataset_spec("celeba-hq").preprocessing == "ce"
    item = source.dataset(size=32)[0]
    assert item.shape == (3, 32, 32)
    assert float(item[0].min()) > 0.95 and float(item[2].max()) < 0.05  # only the red centre
    whole = source.dataset(size=32, preprocess="256")[0]  # an explicit mode still wins
    assert float(whole[2, 0, 0]) > 0.95


def test_source_1_cityscapes_pairs_are_cropped(dirs):
    pair = np.concatenate([_rgb(256, 256, (0, 255, 0)), _rgb(256, 256, (255, 0, 255))], axis=1)
    _save(dirs / "data" / "cityscapes" / "cityscapes_data" / "train" / "1.jpg", pair, quality=100)
    source = data.find_source("cityscapes", verbose=False)
    assert source.kind == "dataset" and source.crop == "left_half"
    item = source.dataset(size=16)[0]
    assert float(item[1].mean()) > 0.95 and float(item[0].mean()) < 0.05  # green photo half only


def test_source_2_shared_collections(dirs, capsys):
    _make_shared(dirs / "shared")
    source = data.find_source("celeba-hq")  # not downloaded -> shared faces, with the hint
    line = capsys.readouterr().out.strip()
    assert source.kind == "shared" and source.name == "faces" and len(source) == 4
    assert line.count("\n") == 0 and "collection 'faces' (4 images)" in line
    assert "not found" in line and "bash data_download.sh celeba-hq" in line
    scenes = data.find_source(collection="scenes", verbose=False)
    assert len(scenes) == 4 and not any("testannot" in str(p) for p in scenes.files)
    assert data.find_source("places365", verbose=False).name == "scenes"  # the dataset's natural stand-in
    assert len(data.find_source(collection="faces_small", verbose=False)) == 1
    assert len(data.find_source(collection="all", verbose=False)) == 9
    with pytest.raises(KeyError, match="unknown collection 'cats'"):
        data.find_source(collection="cats")
    ds = data.make_dataset(scenes, size=24, split="all")
    assert all(ds[i].shape == (3, 24, 24) for i in range(len(ds)))


def test_source_3_skimage_samples(dirs, capsys):
    (dirs / "shared").mkdir()  # exists, but has no collection folders
    source = data.find_source(collection="faces")
    line = capsys.readouterr().out.strip()
    assert source.kind == "skimage" and len(source) == len(data.SKIMAGE_SAMPLES)
    assert line.startswith("data source: scikit-image bundled samples (10 images: astronaut")
    assert "no images for collection 'faces'" in line
    ds = source.dataset(size=32)
    assert ds[0].shape == (3, 32, 32)
    camera = ds[source.image_names.index("camera")]
    assert torch.equal(camera[0], camera[1]) and torch.equal(camera[1], camera[2])  # grey -> 3 channels


def test_source_3_without_shared_folder_and_in_memory(dirs, monkeypatch, capsys):
    monkeypatch.setenv("INPAINT_SHARED", str(dirs / "does-not-exist"))
    assert data.find_source().kind == "skimage"
    line = capsys.readouterr().out.strip()
    assert "[no shared folder]" in line and line.count("\n") == 0     # one line, saying what to download
    assert "bash data_download.sh celeba-hq" in line and "data.download('celeba-hq')" in line
    data.find_source(collection="scenes")
    assert "bash data_download.sh places365" in capsys.readouterr().out
    assert data.download_hint("cityscapes").startswith("for real results download a dataset: "
                                                       "bash data_download.sh cityscapes")
    monkeypatch.setattr(data.sources, "_skimage_data_dir", lambda: dirs / "no-files")
    source = data.skimage_source()
    assert not source.files and len(source.images) >= 5
    ds = source.dataset(size=16, split="train", seed=0)
    assert isinstance(ds, data.InMemoryImages) and ds[0].shape == (3, 16, 16)
    parts = [len(source.dataset(size=16, split=s, fractions=(0.6, 0.2, 0.2))) for s in ("train", "val", "test")]
    assert sum(parts) == len(source)


def test_real_shared_faces_collection():
    from inpaint_utils import config

    if config.shared_data_root() is None or not (config.shared_data_root() / "faces_celebahq_stargan2").is_dir():
        pytest.skip("the shared image folder (../shared/data) is not present")
    source = data.shared_source("faces")
    assert len(source) == 144
    assert [len(source.dataset(split=s)) for s in ("train", "val", "test")] == [115, 15, 14]


# --- statistics -----------------------------------------------------------------------------------------

def test_mean_color(tmp_path):
    _save(tmp_path / "a.png", _rgb(8, 8, (255, 0, 0)))
    _save(tmp_path / "b.png", _rgb(8, 8, (0, 0, 255)))
    ds = data.ImageFolder(tmp_path, size=8)
    assert torch.allclose(data.mean_color(ds), torch.tensor([0.5, 0.0, 0.5]))
    assert torch.allclose(data.mean_color(ds, max_images=1), torch.tensor([1.0, 0.0, 0.0]))
    batch = torch.stack([torch.zeros(3, 4, 4), torch.ones(3, 4, 4)])
    assert torch.allclose(data.mean_color(batch), torch.full((3,), 0.5))
    native = data.ImageFolder([_save(tmp_path / "big.png", _rgb(4, 4)), tmp_path / "b.png"], size=None,
                              preprocess=None)
    # weighted by pixels: 16 white-red pixels, 64 blue ones
    assert torch.allclose(data.mean_color(native), torch.tensor([16 / 80, 0.0, 64 / 80]))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        data.mean_color(batch * 3)


def test_source_helpers_sizes_and_first_images(dirs):
    _make_shared(dirs / "shared")
    scenes = data.shared_source("scenes")
    sizes = data.image_sizes(scenes)
    assert sorted(sizes) == sorted([(256, 192), (481, 321), (321, 481), (256, 200)])
    assert data.image_sizes(scenes, max_images=2) == sizes[:2]
    rows = data.size_summary([(4, 3)] * 3 + [(5, 5)] + [(1, 1)], top=2)
    assert rows == [{"width x height": "4 x 3", "images": 3, "share": "60.0 %"},
                    {"width x height": "1 x 1", "images": 1, "share": "20.0 %"},
                    {"width x height": "other", "images": 1, "share": "20.0 %"}]
    assert scenes.load(0).shape[0] == 3 and scenes.load(-1).shape == data.load_image(scenes.files[-1]).shape
    batch = data.first_images(scenes.dataset(size=16), 3)
    assert batch.shape == (3, 3, 16, 16)
    with pytest.raises(ValueError, match="different shapes"):
        data.first_images(scenes.dataset(size=None, preprocess=None), 4)
    pair = data.DataSource("dataset", "cityscapes", files=(_save(dirs / "p.png", _rgb(8, 32)),), crop="left_half")
    assert data.image_sizes(pair) == [(16, 8)] and pair.load(0).shape == (3, 8, 16)


def test_crop_flip_identity_mirror_and_seeded_draws():
    from inpaint_utils.data import apply_crop_flip, random_crop_flip_params

    images = torch.rand(2, 3, 12, 12, generator=torch.Generator().manual_seed(0))
    identity = torch.tensor([[1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    assert torch.allclose(apply_crop_flip(images, identity), images, atol=1e-6)
    mirror = torch.tensor([[-1.0, 0, 0], [0, 1.0, 0]]).expand(2, 2, 3)
    assert torch.allclose(apply_crop_flip(images, mirror), images.flip(-1), atol=1e-6)
    theta = random_crop_flip_params(64, torch.Generator().manual_seed(1), min_scale=0.8)
    assert torch.equal(theta, random_crop_flip_params(64, torch.Generator().manual_seed(1), min_scale=0.8))
    scale = theta[:, 1, 1]
    assert (scale >= 0.8).all() and (scale <= 1).all() and theta[:, 0, 0].abs().allclose(scale)
    assert 10 < int((theta[:, 0, 0] < 0).sum()) < 54                     # about half are mirrored
    assert (theta[:, :, 2].abs() <= 1 - scale.unsqueeze(1) + 1e-6).all()  # every window inside the image
    out = apply_crop_flip(images.repeat(32, 1, 1, 1), theta)
    assert out.shape == (64, 3, 12, 12) and 0 <= out.min() and out.max() <= 1
    with pytest.raises(ValueError, match=r"theta must be a \(2, 2, 3\) tensor for 2 images, got \(3, 2, 3\)"):
        apply_crop_flip(images, theta[:3])
    with pytest.raises(ValueError, match=r"min_scale must be a number in \(0, 1\], got 0"):
        random_crop_flip_params(4, torch.Generator(), min_scale=0)


def test_crop_flip_grid_is_affine_grids_and_other_matrices_still_work():
    import torch.nn.functional as F

    from inpaint_utils.data import apply_crop_flip, random_crop_flip_params
    from inpaint_utils.data.preprocessing import _axis_aligned_grid

    theta = random_crop_flip_params(6, torch.Generator().manual_seed(2))
    for shape in ((6, 3, 32, 32), (6, 3, 20, 28)):                         # square and not
        reference = F.affine_grid(theta, list(shape), align_corners=False)
        assert torch.allclose(_axis_aligned_grid(theta, torch.Size(shape)), reference, atol=1e-6)
    images = torch.rand(6, 3, 20, 28, generator=torch.Generator().manual_seed(3))
    plain = F.grid_sample(images, F.affine_grid(theta, list(images.shape), align_corners=False), mode="bilinear",
                          padding_mode="border", align_corners=False)
    assert torch.allclose(apply_crop_flip(images, theta), plain.clamp(0, 1), atol=1e-5)
    # a rotation (not a crop and flip) still goes through affine_grid: a quarter turn of a square image
    quarter = torch.tensor([[0.0, -1.0, 0.0], [1.0, 0.0, 0.0]]).expand(6, 2, 3)
    square = images[..., :20]
    assert torch.allclose(apply_crop_flip(square, quarter), square.rot90(1, dims=(-2, -1)), atol=1e-5)


def test_collection_dataset_gives_the_course_dataset_to_the_collection_it_stands_in_for(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "data"))
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "no-shared"))
    monkeypatch.delenv("INPAINT_DATASET", raising=False)
    assert data.collection_dataset("faces_small") is None and data.collection_dataset("scenes") is None
    assert data.collection_dataset("scenes", "cityscapes") == "cityscapes"        # an explicit dataset stays
    monkeypatch.setenv("INPAINT_DATASET", "places365")
    assert data.collection_dataset("scenes") == "places365" and data.collection_dataset("faces") is None
    monkeypatch.setenv("INPAINT_DATASET", "celeba-hq")
    assert data.collection_dataset("faces") == data.collection_dataset("faces_small") == "celeba-hq"
    assert data.collection_dataset("scenes") is None
    with pytest.raises(KeyError, match="unknown collection 'face'"):
        data.collection_dataset("face")
    # the one line: the dataset where it has images, the fallback (with what to download) elsewhere
    (tmp_path / "data" / "celeba-hq").mkdir(parents=True)
    Image.new("RGB", (32, 32)).save(tmp_path / "data" / "celeba-hq" / "a.jpg")
    line = data.sources_line({"faces": None, "scenes": None})
    assert line.startswith("data sources: faces: dataset 'celeba-hq'") and "(1 images)" in line
    assert "| scenes: scikit-image bundled samples" in line and line.count("data_download.sh") == 1
    assert data.source_line("celeba-hq") == data.find_source("celeba-hq", verbose=False).summary()
    with pytest.raises(ValueError, match="at least one collection"):
        data.sources_line([])
