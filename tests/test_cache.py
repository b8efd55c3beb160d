"""The decoded-image cache (inpaint_utils.data.cache): uint8 items equal to the uncached ones (within
1/510, exactly for uint8 images), lazy and eager filling, the memory-mapped file (built atomically,
reused on a matching key, rebuilt when stale, truncated or foreign), and the ``auto`` policy."""
from __future__ import annotations

import os
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image
from torch.utils.data import DataLoader, Subset

from inpaint_utils import data
from inpaint_utils.data import DecodedImages, cache_dataset, dataset_key
from inpaint_utils.models.cascade import DownscaledImages


def _folder(root: Path, n: int = 10, h: int = 16, w: int = 16, seed: int = 0) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (h, w, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return root


@pytest.fixture
def exact(tmp_path) -> data.ImageFolder:
    """16x16 PNGs read at 16 px: every pixel is k / 255, so the cache holds them exactly."""
    return data.ImageFolder(_folder(tmp_path / "exact"), size=16, preprocess="256")


@pytest.fixture
def resized(tmp_path) -> data.ImageFolder:
    """20x26 PNGs resized to 16 px (antialiased): pixels between the uint8 levels."""
    return data.ImageFolder(_folder(tmp_path / "resized", h=20, w=26), size=16, preprocess="256")


class Counting(torch.utils.data.Dataset):
    """Fixed images that count their reads (not a dataset ``auto`` knows)."""

    def __init__(self, images):
        self.images, self.reads = images, []

    def __len__(self):
        return len(self.images)

    def __getitem__(self, i):
        self.reads.append(i)
        return self.images[i]


def test_items_equal_the_uncached_ones(exact, resized):
    for dataset, tolerance in ((exact, 0.0), (resized, 0.5 / 255 + 1e-7)):
        cached = DecodedImages(dataset)
        assert len(cached) == len(dataset) and cached.shape == (len(dataset), 3, 16, 16)
        for i in range(len(dataset)):
            item = cached[i]
            assert item.dtype == torch.float32 and item.shape == (3, 16, 16)
            assert float((item - dataset[i]).abs().max()) <= tolerance
        if tolerance == 0:
            assert all(torch.equal(cached[i], dataset[i]) for i in range(len(dataset)))
        assert torch.equal(cached[-1], cached[len(dataset) - 1])
    assert float(max((DecodedImages(resized)[i] - resized[i]).abs().max() for i in range(10))) > 0  # not uint8 there
    assert cached.row(3).dtype == torch.uint8


def test_memory_cache_decodes_each_item_once_and_fill_decodes_the_rest():
    images = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))
    source = Counting(images)
    cached = DecodedImages(source)
    assert source.reads == [0] and cached.filled == 1
    for _ in range(3):
        cached[2], cached[4]
    assert source.reads == [0, 2, 4] and cached.filled == 3
    cached.fill()
    assert sorted(source.reads) == list(range(6)) and cached.filled == 6
    assert float((torch.stack([cached[i] for i in range(6)]) - images).abs().max()) <= 0.5 / 255 + 1e-7


def test_fill_with_loader_workers_gives_the_same_images(exact):
    one, two = DecodedImages(exact).fill(), DecodedImages(exact, num_workers=2)
    assert two.filled == len(exact)
    assert all(torch.equal(one.row(i), two.row(i)) for i in range(len(exact)))


def test_wrapped_attributes_stay_reachable(exact):
    cached = DecodedImages(exact)
    assert cached.files == exact.files and cached.skipped == [] and cached.split == "all" and cached.size == 16
    assert cached.dataset is exact and "memory" in repr(cached)
    with pytest.raises(AttributeError):
        cached.no_such_attribute


def test_disk_cache_round_trip_and_reuse(exact, tmp_path):
    lines = []
    first = DecodedImages(exact, "disk", directory=tmp_path / "cache", say=lines.append)
    assert first.path.parent == tmp_path / "cache" and first.path.is_file() and "built" in lines[-1]
    assert [p.name for p in first.path.parent.iterdir()] == [first.path.name]  # no temporary file left
    assert all(torch.equal(first[i], exact[i]) for i in range(len(exact)))
    stamp = first.path.stat().st_mtime_ns
    again = DecodedImages(exact, "disk", directory=tmp_path / "cache", say=lines.append)
    assert again.path == first.path and "reusing" in lines[-1] and first.path.stat().st_mtime_ns == stamp
    assert all(torch.equal(again[i], exact[i]) for i in range(len(exact)))
    # a worker process maps the file again (the pickle holds no pixels)
    assert len(pickle.dumps(again)) < again.nbytes
    copy = pickle.loads(pickle.dumps(again))
    assert torch.equal(copy[7], exact[7])
    loaded = list(DataLoader(again, batch_size=5, num_workers=2))
    assert torch.equal(torch.cat(loaded), torch.stack([exact[i] for i in range(len(exact))]))


def test_a_disk_cache_of_other_images_is_not_reused(exact, tmp_path):
    cache = tmp_path / "cache"
    a = DecodedImages(exact, "disk", directory=cache, say=lambda *_: None)
    other = data.ImageFolder(exact.root, size=16, preprocess="256", split="train")
    assert dataset_key(other) != dataset_key(exact)
    b = DecodedImages(other, "disk", directory=cache, say=lambda *_: None)
    assert b.path != a.path and len(b) == len(other) and torch.equal(b[0], other[0])
    # a changed file changes the key (its modification time and size)
    img = np.zeros((16, 16, 3), dtype=np.uint8)
    Image.fromarray(img).save(exact.files[0])
    os.utime(exact.files[0], ns=(1, 1))
    fresh = data.ImageFolder(exact.root, size=16, preprocess="256")
    c = DecodedImages(fresh, "disk", directory=cache, say=lambda *_: None)
    assert c.path != a.path and torch.equal(c[0], torch.zeros(3, 16, 16))


def test_stale_truncated_and_foreign_files_at_the_path_are_rebuilt(exact, resized, tmp_path):
    path = tmp_path / "images.u8"
    lines = []
    DecodedImages(resized, "disk", path=path, say=lines.append)
    # the path holds another dataset's cache: a stale key
    stale = DecodedImages(exact, "disk", path=path, say=lines.append)
    assert "holds other images" in lines[-2] and "built" in lines[-1]
    assert all(torch.equal(stale[i], exact[i]) for i in range(len(exact)))
    # truncated (a copy cut short, a full disk)
    size = path.stat().st_size
    with open(path, "r+b") as f:
        f.truncate(size - 100)
    again = DecodedImages(exact, "disk", path=path, say=lines.append)
    assert "truncated" in lines[-2] and path.stat().st_size == size and torch.equal(again[-1], exact[-1])
    # not a cache at all
    path.write_bytes(b"not a cache" * 100)
    again = DecodedImages(exact, "disk", path=path, say=lines.append)
    assert "not a decoded-image cache" in lines[-2] and torch.equal(again[3], exact[3])
    # the same key but other pixels (a file rewritten with its old size and time): the first image is checked
    with open(path, "r+b") as f:
        f.seek(size - again.nbytes)
        f.write(bytes(again.nbytes // len(exact)))
    again = DecodedImages(exact, "disk", path=path, say=lines.append)
    assert "first image differs" in lines[-2] and torch.equal(again[0], exact[0])
    with pytest.raises(FileNotFoundError, match="no usable decoded-image cache"):
        DecodedImages(resized, "disk", path=path, build=False)


def test_keys_of_wrappers_and_in_memory_images(exact):
    assert dataset_key(DownscaledImages(exact))["dataset"] == dataset_key(exact)
    assert dataset_key(Subset(exact, [1, 2]))["indices"] == [1, 2]
    assert dataset_key(Counting(torch.rand(2, 3, 4, 4))) is None
    pics = [torch.rand(3, 20, 20, generator=torch.Generator().manual_seed(s)) for s in range(3)]
    a = dataset_key(data.InMemoryImages(pics, size=16))
    assert a == dataset_key(data.InMemoryImages([p.clone() for p in pics], size=16))
    assert a != dataset_key(data.InMemoryImages(pics[::-1], size=16))
    small = DecodedImages(DownscaledImages(exact))
    assert small.shape == (len(exact), 3, 8, 8)


def test_bad_items_and_arguments_are_named():
    mixed = [torch.rand(3, 8, 8), torch.rand(3, 8, 8), torch.rand(3, 6, 6)]
    with pytest.raises(ValueError, match=r"item 2 has shape \(3, 6, 6\), expected \(3, 8, 8\)"):
        DecodedImages(mixed).fill()
    with pytest.raises(TypeError, match="item 0 is a tuple"):
        DecodedImages([(torch.rand(3, 8, 8), 0)])
    with pytest.raises(ValueError, match=r"dataset item 0 must be in \[0, 1\]"):
        DecodedImages([torch.full((3, 8, 8), 2.0)])
    with pytest.raises(ValueError, match="storage must be 'memory' or 'disk'"):
        DecodedImages(mixed, "gpu")
    with pytest.raises(ValueError, match="storage='disk' needs to know which images"):
        DecodedImages(Counting(torch.rand(2, 3, 4, 4)), "disk")
    with pytest.raises(ValueError, match="the dataset is empty"):
        DecodedImages([])
    with pytest.raises(IndexError, match="index 3 out of range"):
        DecodedImages(mixed[:2])[3]
    with pytest.raises(ValueError, match=r"cache must be one of \('auto', 'memory', 'disk', 'none'\), got 'ram'"):
        cache_dataset(mixed, "ram")


def test_auto_policy(exact, tmp_path):
    quiet = lambda *_: None  # noqa: E731
    tensor = torch.rand(4, 3, 8, 8)
    assert cache_dataset(tensor)[0] is tensor
    counting = Counting(torch.rand(4, 3, 8, 8))
    same, line = cache_dataset(counting)
    assert same is counting and line.startswith("none (a Counting") and counting.reads == []
    assert isinstance(cache_dataset(counting, "memory")[0], DecodedImages)          # asked for: cached
    assert cache_dataset(exact, "none") == (exact, "none")
    cached, line = cache_dataset(exact, say=quiet)
    assert isinstance(cached, DecodedImages) and cached.storage == "memory" and line.startswith("memory (10 images")
    assert cache_dataset(exact, say=quiet)[0] is cached                             # the same object: decoded once
    assert cache_dataset(cached)[0] is cached
    # above the memory limit: on disk, unless the run reads fewer images than building would decode
    other = data.ImageFolder(exact.root, size=16, preprocess="256")
    kwargs = dict(directory=tmp_path / "cache", memory_limit=100, say=quiet)
    same, line = cache_dataset(other, draws=5, **kwargs)
    assert same is other and "fewer" not in line and "more images than the 5 this run reads" in line
    on_disk, line = cache_dataset(other, draws=10, **kwargs)
    assert on_disk.storage == "disk" and line.startswith("disk (")
    third = data.ImageFolder(exact.root, size=16, preprocess="256")                 # a new object, the same images
    reused, _ = cache_dataset(third, draws=5, **kwargs)
    assert reused.storage == "disk" and reused.path == on_disk.path                 # an existing file is always used
    # loader workers: a memory cache is filled first, so only when the run reads the whole set
    fourth = data.ImageFolder(exact.root, size=16, preprocess="256")
    assert cache_dataset(fourth, draws=4, num_workers=2, say=quiet)[0] is fourth
    filled, _ = cache_dataset(fourth, draws=40, num_workers=2, say=quiet)
    assert filled.filled == len(fourth)
