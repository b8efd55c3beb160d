"""Decoded-image cache: every training image decoded once, kept as uint8 in memory or in a memory-mapped
file (part of :mod:`inpaint_utils.data`).

Without it, every step of :func:`inpaint_utils.train.train` reads its batch from the files again: JPEG
decode, resize, centre crop, ~2 ms per 128-px face on the course's CPU, paid again in every epoch.
:class:`DecodedImages` wraps any map-style dataset of ``(3, S, S)`` float images in ``[0, 1]``
(:class:`~inpaint_utils.data.ImageFolder`, :class:`~inpaint_utils.data.InMemoryImages`, notebook 03's
``DownscaledImages``, a ``torch.utils.data.Subset`` of them) and stores each item, the first time it is
needed, as ``round(255 x)`` in a uint8 array ``(N, 3, S, S)``: a quarter of float32's memory (1000
128-px faces: 49 MB). An item comes back as float32 ``uint8 / 255``, within ``1/510`` of the uncached
one, and equal to it for images that are uint8 already (files at their training size).

* ``storage="memory"`` (the default): a tensor in this process, filled as items are read (an item is
  decoded on its first read, never again); :meth:`DecodedImages.fill` decodes the rest at once (with
  loader workers in parallel, and a progress bar for large sets).
* ``storage="disk"``: a memory-mapped file under :func:`cache_dir` (``$INPAINT_CACHE``, default
  ``runs/cache``), for sets larger than memory and for reuse by later runs and processes. It is built
  whole into a temporary file, then renamed (a crash never leaves a half-written cache behind), and
  reused only when its header holds the same key (:func:`dataset_key`: the files with their sizes and
  modification times, the image size, preprocessing, split, seed, ...), its length is right and its
  first image equals a fresh decode; a foreign, stale or truncated file is rebuilt, saying why.

:func:`cache_dataset` is the policy :func:`~inpaint_utils.train.train` applies (``TrainConfig.cache``):
``"auto"`` keeps sets up to :data:`MEMORY_LIMIT` in memory and larger ones on disk, for the datasets it
knows to be fixed images (above), and leaves alone what would not pay off (a tensor, already in memory;
a set larger than the run reads).
"""
from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import time
import weakref
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import DataLoader, Dataset

from ..fileio import atomic_open
from ..validation import check_image
from .datasets import ImageFolder, InMemoryImages

__all__ = ["CACHE_MODES", "MEMORY_LIMIT", "DecodedImages", "cache_dataset", "cache_dir", "dataset_key", "to_uint8"]

#: values of ``TrainConfig.cache`` / :func:`cache_dataset`'s ``mode``
CACHE_MODES = ("auto", "memory", "disk", "none")
#: ``"auto"`` keeps a decoded set of up to this many bytes in memory (2 GiB: 40k 128-px images, 10k at
#: 256 px; Colab's 12 GB of RAM hold it beside a training) and puts a larger one on disk
MEMORY_LIMIT = 2 * 1024 ** 3
#: eager fills of at least this many images show a progress bar (``progress=None``)
PROGRESS_MIN = 1000
#: bumped when the file format or the meaning of a key changes: older files are then rebuilt
CACHE_VERSION = 1
_MAGIC = b"INPCACHE"
_ALIGN = 4096
_FILL_BATCH = 32


def cache_dir() -> Path:
    """Where disk caches go: ``$INPAINT_CACHE``, else ``runs_dir() / "cache"`` (ignored by git)."""
    from .. import config

    return config._env_path("INPAINT_CACHE", config.runs_dir() / "cache")


def to_uint8(images: torch.Tensor) -> torch.Tensor:
    """Images in ``[0, 1]`` as uint8 ``round(255 x)`` (any shape). ``to_uint8(x).float() / 255`` is
    within ``1/510`` of ``x``, and equal to it when ``x`` came from uint8 pixels (``k / 255``)."""
    return images.detach().float().mul(255).round_().clamp_(0, 255).to(torch.uint8)


# ------------------------------------------------------------------------------------------ keys

def _simple(value: Any) -> bool:
    if value is None or isinstance(value, (bool, int, float, str)):
        return True
    if isinstance(value, (list, tuple)):
        return all(_simple(v) for v in value)
    return False


def _file_stats(files: Sequence[Path]) -> list[list[Any]]:
    stats = []
    for path in files:
        st = os.stat(path)
        stats.append([str(Path(path).resolve()), st.st_size, st.st_mtime_ns])
    return stats


def dataset_key(dataset: Any) -> dict[str, Any] | None:
    """What identifies ``dataset``'s decoded images, as JSON-able data, or ``None`` when it cannot be
    told (then no disk cache is made for it).

    * :class:`ImageFolder`: every file (absolute path, size, modification time) and ``size``,
      ``preprocess``, ``split``, ``fractions``, ``seed``, ``max_images``, ``crop``;
    * :class:`InMemoryImages`: a BLAKE2 digest of its images' pixels, their names and the same settings;
    * a dataset with a ``cache_key()`` method: its class and what that returns;
    * a wrapper (``DownscaledImages``, ``torch.utils.data.Subset``, ...): its class, the key of its
      ``dataset`` attribute and its other attributes when they are plain values (numbers, strings, lists);
    * anything else: ``None``.
    """
    kind = f"{type(dataset).__module__}.{type(dataset).__qualname__}"
    if callable(getattr(dataset, "cache_key", None)):
        return {"class": kind, "key": dataset.cache_key()}
    settings = {k: getattr(dataset, k, None) for k in ("size", "preprocess", "split", "fractions", "seed",
                                                       "max_images", "crop")}
    settings["fractions"] = list(settings["fractions"] or ())
    if isinstance(dataset, ImageFolder):
        return {"class": kind, **settings, "files": _file_stats(dataset.files)}
    if isinstance(dataset, InMemoryImages):
        digest = hashlib.blake2b(digest_size=16)
        for image in dataset.images:
            array = np.ascontiguousarray(image.detach().cpu().numpy())
            digest.update(f"{array.dtype}{array.shape}".encode())
            digest.update(array.tobytes())
        return {"class": kind, **settings, "names": list(dataset.names), "pixels": digest.hexdigest()}
    inner = getattr(dataset, "dataset", None)
    if inner is not None and inner is not dataset:
        inner_key = dataset_key(inner)
        others = {k: v for k, v in vars(dataset).items() if k != "dataset"}
        if inner_key is not None and all(_simple(v) for v in others.values()):
            return {"class": kind, "dataset": inner_key,
                    **{k: list(v) if isinstance(v, tuple) else v for k, v in sorted(others.items())}}
    return None


def _known(dataset: Any) -> bool:
    """Whether :func:`dataset_key` can tell ``dataset``'s images (without reading a file): the datasets
    ``cache="auto"`` caches. Others may draw random images or have side effects: left as they are."""
    if callable(getattr(dataset, "cache_key", None)) or isinstance(dataset, (ImageFolder, InMemoryImages)):
        return True
    inner = getattr(dataset, "dataset", None)
    if inner is None or inner is dataset or not _known(inner):
        return False
    return all(_simple(v) for k, v in vars(dataset).items() if k != "dataset")


def _key_text(key: dict[str, Any]) -> str:
    return json.dumps({"version": CACHE_VERSION, "key": key}, sort_keys=True, separators=(",", ":"))


# ------------------------------------------------------------------------------------- the cache

class _AsUint8(Dataset):
    """``dataset``'s items checked against ``shape`` and turned into uint8 (in a loader worker, so that
    a quarter of the bytes travel back to the process that fills the cache)."""

    def __init__(self, dataset: Any, indices: Sequence[int], shape: tuple[int, ...]):
        self.dataset, self.indices, self.shape = dataset, list(indices), shape

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, k: int) -> torch.Tensor:
        index = self.indices[k]
        return to_uint8(_checked(self.dataset[index], index, self.shape))


def _checked(item: Any, index: int, shape: tuple[int, ...] | None) -> torch.Tensor:
    """Item ``index`` of a dataset, checked: a ``(3, S, S)`` float tensor in ``[0, 1]`` (of ``shape``)."""
    if not isinstance(item, torch.Tensor):
        raise TypeError(f"the decoded-image cache needs items that are (3, S, S) image tensors; item {index} is "
                        f"a {type(item).__name__} (use cache='none')")
    if item.ndim != 3 or item.shape[0] != 3 or (shape is not None and tuple(item.shape) != shape):
        want = f"{shape}, as item 0" if shape is not None else "(3, S, S)"
        raise ValueError(f"the decoded-image cache needs images of one size: item {index} has shape "
                         f"{tuple(item.shape)}, expected {want} (give the dataset a size, or use cache='none')")
    check_image(item.unsqueeze(0), name=f"dataset item {index}")
    return item


def _human(nbytes: float) -> str:
    for unit in ("B", "KB", "MB", "GB"):
        if nbytes < 1000 or unit == "GB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1000
    return f"{nbytes:.1f} TB"  # pragma: no cover


class DecodedImages(Dataset):
    """``dataset``'s images decoded once and kept as uint8 ``(N, 3, S, S)``; items are float32 ``/ 255``.

    ``storage="memory"``: a tensor filled as items are read (:meth:`fill` decodes the rest at once;
    ``num_workers`` loader processes decode in parallel there). Loader workers of a later ``DataLoader``
    read what is filled; what they decode themselves stays in their own copy, so fill the cache before
    handing it to workers (:func:`cache_dataset` does).

    ``storage="disk"``: a memory-mapped file, ``path`` (default: a name made from the dataset's class,
    size and :func:`dataset_key` in ``directory``, default :func:`cache_dir`). A file with the right
    header, key and length whose first image equals a fresh decode is reused; otherwise (no file, another
    key, truncated, not a cache) it is built into a temporary file and renamed, with ``num_workers``
    processes decoding and a progress bar (``progress``: ``None`` shows one from :data:`PROGRESS_MIN`
    images on). ``build=False`` raises ``FileNotFoundError`` instead of building. ``say`` gets one line
    when a file is built or reused.

    ``len``, indexing (``cache[i]``, negative too) and the wrapped dataset's attributes (``files``,
    ``skipped``, ``split``, ``size``, ... through ``cache.dataset`` or directly, ``cache.files``) work as
    before. Attributes: ``storage``, ``shape`` ``(N, 3, S, S)``, ``nbytes``, ``path`` (disk, else ``None``),
    ``filled`` (items decoded so far), ``build_s`` (seconds spent building or checking the file).
    """

    def __init__(self, dataset: Any, storage: str = "memory", *, path: str | os.PathLike | None = None,
                 directory: str | os.PathLike | None = None, num_workers: int = 0, progress: bool | None = None,
                 build: bool = True, say: Callable[..., Any] = print):
        if storage not in ("memory", "disk"):
            raise ValueError(f"storage must be 'memory' or 'disk', got {storage!r}")
        if isinstance(dataset, torch.Tensor) or not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
            raise TypeError(f"DecodedImages wraps a map-style dataset of (3, S, S) images, got "
                            f"{type(dataset).__name__}")
        if isinstance(num_workers, bool) or not isinstance(num_workers, int) or num_workers < 0:
            raise ValueError(f"num_workers must be a non-negative int, got {num_workers!r}")
        n = len(dataset)
        if n < 1:
            raise ValueError("the dataset is empty: nothing to cache")
        started = time.perf_counter()
        self.dataset = dataset
        self.storage = storage
        first = _checked(dataset[0], 0, None)
        self.shape: tuple[int, ...] = (n, *first.shape)
        self.nbytes = int(np.prod(self.shape))
        self.path: Path | None = None
        self._rows: torch.Tensor | None = None      # memory: the uint8 images
        self._filled: np.ndarray | None = None      # memory: which rows hold their image
        self._mm: np.memmap | None = None           # disk: the mapped file
        self._offset = 0
        if storage == "memory":
            self._rows = torch.empty(self.shape, dtype=torch.uint8)
            self._filled = np.zeros(n, dtype=bool)
            self._rows[0] = to_uint8(first)
            self._filled[0] = True
            if num_workers or progress:
                self.fill(num_workers=num_workers, progress=progress)
        else:
            key = dataset_key(dataset)
            if key is None:
                raise ValueError(f"storage='disk' needs to know which images a {type(dataset).__name__} holds (to "
                                 f"reuse the file only for them): use ImageFolder / InMemoryImages, a wrapper of "
                                 f"them, or give the dataset a cache_key() method; or use storage='memory'")
            self._key = _key_text(key)
            if path is None:
                digest = hashlib.sha256(self._key.encode()).hexdigest()[:20]
                name = f"{type(dataset).__name__.lower()}-{n}x{self.shape[-2]}x{self.shape[-1]}-{digest}.u8"
                path = Path(directory) if directory is not None else cache_dir()
                path = path / name
            self.path = Path(path)
            problem = self._open(first)
            if problem is not None:
                if not build:
                    raise FileNotFoundError(f"no usable decoded-image cache at {self.path}: {problem}")
                if problem != "no file":
                    say(f"decoded-image cache {self.path}: {problem}; rebuilding it")
                self._build(first, num_workers, progress)
                problem = self._open(first)
                if problem is not None:  # pragma: no cover - a file system that loses what was just written
                    raise OSError(f"the decoded-image cache just written to {self.path} does not read back: {problem}")
                say(f"decoded-image cache: built {self.path} ({n} images, {_human(self.nbytes)}) in "
                    f"{time.perf_counter() - started:.1f} s")
            else:
                say(f"decoded-image cache: reusing {self.path} ({n} images, {_human(self.nbytes)})")
        self.build_s = time.perf_counter() - started

    # ---- the wrapped dataset's attributes (files, skipped, split, ...)
    def __getattr__(self, name: str) -> Any:
        dataset = self.__dict__.get("dataset")
        if dataset is None or name.startswith("__"):
            raise AttributeError(name)
        return getattr(dataset, name)

    def __len__(self) -> int:
        return self.shape[0]

    @property
    def filled(self) -> int:
        """How many items are decoded (all of them on disk)."""
        return self.shape[0] if self._filled is None else int(self._filled.sum())

    def _index(self, i: Any) -> int:
        if isinstance(i, torch.Tensor) and i.numel() == 1:
            i = int(i)
        if isinstance(i, bool) or not isinstance(i, (int, np.integer)):
            raise TypeError(f"index must be an int, got {type(i).__name__}")
        n = self.shape[0]
        if not -n <= i < n:
            raise IndexError(f"index {i} out of range for a dataset of {n} images")
        return int(i) % n

    def row(self, i: int) -> torch.Tensor:
        """Item ``i`` as stored: uint8 ``(3, S, S)`` (decoded now if it was not yet)."""
        i = self._index(i)
        if self._mm is not None:
            return torch.from_numpy(np.array(self._mm[i]))
        assert self._rows is not None and self._filled is not None
        if not self._filled[i]:
            self._rows[i] = to_uint8(_checked(self.dataset[i], i, self.shape[1:]))
            self._filled[i] = True
        return self._rows[i]

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.row(i).to(torch.float32).div_(255)

    # ---- filling
    def _decoded(self, indices: Sequence[int], num_workers: int, progress: bool | None,
                 desc: str) -> Iterator[torch.Tensor]:
        """uint8 images of ``indices``, in order, decoded here or by ``num_workers`` loader processes."""
        from tqdm.auto import tqdm

        show = len(indices) >= PROGRESS_MIN if progress is None else bool(progress)
        bar = tqdm(total=len(indices), desc=desc, disable=not show, unit="img", dynamic_ncols=True)
        try:
            source = _AsUint8(self.dataset, indices, self.shape[1:])
            if num_workers:
                # its own generator: starting the workers must not draw from torch's global RNG (a training's)
                batches: Iterable[torch.Tensor] = DataLoader(source, batch_size=_FILL_BATCH, num_workers=num_workers,
                                                             collate_fn=torch.stack,
                                                             generator=torch.Generator().manual_seed(0))
            else:
                batches = (source[k][None] for k in range(len(source)))
            for batch in batches:
                for image in batch:
                    yield image
                bar.update(len(batch))
        finally:
            bar.close()

    def fill(self, num_workers: int = 0, progress: bool | None = None) -> "DecodedImages":
        """Decode every item not decoded yet (memory; a disk cache is always full); returns ``self``."""
        if self._filled is None:
            return self
        missing = np.flatnonzero(~self._filled).tolist()
        for i, image in zip(missing, self._decoded(missing, num_workers, progress, "decoding images")):
            self._rows[i] = image
            self._filled[i] = True
        return self

    # ---- the disk file
    def _header(self) -> bytes:
        meta = json.dumps({"format": "uint8 (N, 3, H, W), round(255 x)", "shape": list(self.shape),
                           "cache": json.loads(self._key)}, sort_keys=True).encode()
        head = _MAGIC + struct.pack("<Q", len(meta)) + meta
        return head + b"\0" * (-len(head) % _ALIGN)

    def _open(self, first: torch.Tensor) -> str | None:
        """Map the file when it is this dataset's cache and whole; else say what is wrong with it."""
        path = self.path
        assert path is not None
        try:
            with open(path, "rb") as f:
                head = f.read(16)
                if len(head) < 16 or head[:8] != _MAGIC:
                    return "not a decoded-image cache" if path.exists() else "no file"
                (length,) = struct.unpack("<Q", head[8:])
                if length > 64 * 2 ** 20:
                    return "not a decoded-image cache (damaged header)"
                meta = json.loads(f.read(length))
        except FileNotFoundError:
            return "no file"
        except (OSError, ValueError, UnicodeDecodeError):
            return "not a decoded-image cache (unreadable header)"
        if not isinstance(meta, dict) or json.dumps(meta.get("cache"), sort_keys=True, separators=(",", ":")) != \
                self._key:
            return "it holds other images (its key differs: other files, dates, sizes, preprocessing or split)"
        if meta.get("shape") != list(self.shape):
            return f"its shape {meta.get('shape')} is not {list(self.shape)}"
        offset = 16 + length
        offset += -offset % _ALIGN
        size = path.stat().st_size
        if size != offset + self.nbytes:
            return f"its size is {size} bytes, not {offset + self.nbytes} (truncated or damaged)"
        mm = np.memmap(path, dtype=np.uint8, mode="r", offset=offset, shape=self.shape)
        if int((torch.from_numpy(np.array(mm[0])).int() - to_uint8(first).int()).abs().max()) > 1:
            del mm
            return "its first image differs from the file's own (the images changed since)"
        self._mm, self._offset = mm, offset
        return None

    def _build(self, first: torch.Tensor, num_workers: int, progress: bool | None) -> None:
        path = self.path
        assert path is not None
        path.parent.mkdir(parents=True, exist_ok=True)
        free = shutil.disk_usage(path.parent).free
        if free < self.nbytes + (64 << 20):
            raise OSError(f"no room for the decoded-image cache {path}: it needs {_human(self.nbytes)}, "
                          f"{_human(free)} are free there; set $INPAINT_CACHE to another folder or use cache='memory'")
        with atomic_open(path, "wb") as f:
            f.write(self._header())
            f.write(to_uint8(first).numpy().tobytes())
            for image in self._decoded(range(1, self.shape[0]), num_workers, progress, "caching images"):
                f.write(image.numpy().tobytes())

    def _reopen(self) -> None:
        self._mm = np.memmap(self.path, dtype=np.uint8, mode="r", offset=self._offset, shape=self.shape)

    def __getstate__(self) -> dict[str, Any]:  # a worker process maps the file again instead of copying it
        state = dict(self.__dict__)
        if state.get("_mm") is not None:
            state["_mm"] = None
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        if self.storage == "disk":
            self._reopen()

    def __repr__(self) -> str:
        where = f"disk {self.path}" if self.path is not None else f"memory, {self.filled}/{len(self)} decoded"
        return f"DecodedImages({self.dataset!r}, {where}, {_human(self.nbytes)})"


# ----------------------------------------------------------------------------------------- policy

#: dataset -> {storage: DecodedImages}: the same dataset object handed to several trainings (notebook 03
#: trains five models on one set) is decoded once
_MEMO: "weakref.WeakKeyDictionary[Any, dict[str, DecodedImages]]" = weakref.WeakKeyDictionary()


def _memo(dataset: Any) -> dict[str, DecodedImages]:
    try:
        return _MEMO.setdefault(dataset, {})
    except TypeError:  # not weak-referenceable (or unhashable): no reuse across trainings
        return {}


def cache_dataset(dataset: Any, mode: str = "auto", *, draws: int | None = None, num_workers: int = 0,
                  progress: bool | None = None, directory: str | os.PathLike | None = None,
                  memory_limit: int = MEMORY_LIMIT, say: Callable[..., Any] = print) -> tuple[Any, str]:
    """``dataset`` behind a :class:`DecodedImages` as ``mode`` says, and one line saying what was done.

    ``mode``: ``"none"`` returns ``dataset`` itself; ``"memory"`` / ``"disk"`` the cache of that storage;
    ``"auto"``: memory when the decoded set takes at most ``memory_limit`` bytes, else disk, for the
    datasets whose images :func:`dataset_key` can tell (:class:`ImageFolder`, :class:`InMemoryImages`,
    wrappers of them such as notebook 03's ``DownscaledImages``, datasets with a ``cache_key()``); any
    other dataset (it may draw random images, or count its reads), a tensor (already in memory) and a
    :class:`DecodedImages` are returned as they are. It also leaves the dataset uncached (the line
    says why) when filling first would decode more images than the run reads (``draws``: images the
    run will read; this concerns a memory cache with loader workers, and a disk cache without a file
    to reuse) or when the disk lacks the room. ``num_workers > 0`` fills a memory cache at
    once with that many loader processes (what workers decode themselves stays in their copies);
    without workers it fills as items are read. The same dataset object is decoded once: a later call
    returns the cache of the first (which lives as long as that dataset object does).
    """
    if mode not in CACHE_MODES:
        raise ValueError(f"cache must be one of {CACHE_MODES}, got {mode!r}")
    if mode == "none":
        return dataset, "none"
    if isinstance(dataset, DecodedImages):
        return dataset, f"{dataset.storage} (given)"
    if isinstance(dataset, torch.Tensor):
        if mode != "auto":
            raise TypeError(f"cache={mode!r}: the dataset is a tensor, already in memory; use cache='auto' or 'none'")
        return dataset, "none (a tensor: already in memory)"
    memo = _memo(dataset)
    if mode == "auto":
        mode, why = _auto_storage(dataset, memo, draws, num_workers, directory, memory_limit, say)
        if why is not None:
            return dataset, why
    cached = memo.get(mode)
    if cached is None:
        cached = DecodedImages(dataset, mode, directory=directory, num_workers=num_workers, progress=progress,
                               say=say)
        memo[mode] = cached
    elif num_workers:
        cached.fill(num_workers=num_workers, progress=progress)
    return cached, _describe(cached)


def _auto_storage(dataset: Any, memo: dict[str, DecodedImages], draws: int | None, num_workers: int,
                  directory: str | os.PathLike | None, memory_limit: int,
                  say: Callable[..., Any]) -> tuple[str, str | None]:
    """``cache="auto"``: the storage to use, and ``None``; or ``"none"`` and the line saying why not."""
    for storage in ("memory", "disk"):
        if storage in memo:
            return storage, None
    if not _known(dataset):
        return "none", (f"none (a {type(dataset).__name__}: cache='auto' caches ImageFolder, InMemoryImages and "
                        f"wrappers of them; cache='memory' caches any dataset of fixed images)")
    n = len(dataset)
    total = n * _checked(dataset[0], 0, None).numel()
    if total <= memory_limit:
        if num_workers and draws is not None and draws < n:
            return "none", f"none (loader workers would decode all {n} images first; this run reads {draws})"
        return "memory", None
    folder = Path(directory) if directory is not None else cache_dir()
    try:
        memo["disk"] = DecodedImages(dataset, "disk", directory=directory, build=False, say=say)
        return "disk", None
    except FileNotFoundError:
        pass
    probe = next((p for p in (folder, *folder.parents) if p.exists()), Path("/"))
    if draws is not None and draws < n:
        reason = f"building a disk cache would decode more images than the {draws} this run reads"
    elif shutil.disk_usage(probe).free < total * 1.05:
        reason = f"it does not fit on the disk of {folder}"
    else:
        return "disk", None
    line = (f"none (the decoded set, {n} images, {_human(total)}, is above the memory limit of "
            f"{_human(memory_limit)}, and {reason})")
    say(f"decoded-image cache: {line}")
    return "none", line


def _describe(cached: DecodedImages) -> str:
    if cached.storage == "disk":
        return f"disk ({cached.path}, {len(cached)} images, {_human(cached.nbytes)})"
    return f"memory ({len(cached)} images, {_human(cached.nbytes)}, {cached.filled} decoded so far)"
