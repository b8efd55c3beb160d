"""Where the images come from: a downloaded dataset, else the shared folder, else scikit-image's samples (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch
from PIL import Image
from torch.utils.data import Dataset

from .. import config
from .datasets import ImageFolder, InMemoryImages
from .preprocessing import _apply_crop
from .reading import list_images, load_image, pil_to_tensor
from .registry import COURSE_ENV, COURSE_FILE, DATASETS, get_dataset_spec


#: Collections of the shared folder (``$INPAINT_SHARED``, by default ``../shared/data``): sub-folders, searched
#: recursively. ``faces``: the CelebA / CelebA-HQ faces of at least 128 px (56 + 48 + 8 + 32 = 144);
#: ``faces_small``: 1000 CelebA faces at 89 x 109; ``scenes``: CamVid test (233, 256 x 192), BSDS500
#: (500, 481 x 321) and Urban100 (100, max side 256); ``all``: the three together.
COLLECTIONS: dict[str, tuple[str, ...]] = {
    "faces": ("faces_celebahq_stargan2", "faces_celebamaskhq_sean", "faces_celebahq_ddnm",
              "faces_celeba_aligned_178x218"),
    "faces_small": ("faces_celeba_small_89x109",),
    "scenes": ("camvid_256/test", "bsds500", "sr_testsets/Urban100_256"),
}
COLLECTIONS["all"] = COLLECTIONS["faces"] + COLLECTIONS["faces_small"] + COLLECTIONS["scenes"]

_COLLECTION_TEXT = {
    "faces": "CelebA-HQ / CelebAMask-HQ / CelebA faces (>= 128 px) from public repositories",
    "faces_small": "CelebA aligned faces at half resolution (89 x 109)",
    "scenes": "street and natural scenes: CamVid test, BSDS500, Urban100",
    "all": "every face and scene folder of the shared set",
}

#: scikit-image samples used as the last fallback: (name, bundled file). Colour photos first; the
#: grey ones (camera, coins, moon) are repeated to three channels.
SKIMAGE_SAMPLES: tuple[tuple[str, str], ...] = (
    ("astronaut", "astronaut.png"),
    ("chelsea", "chelsea.png"),
    ("coffee", "coffee.png"),
    ("rocket", "rocket.jpg"),
    ("hubble_deep_field", "hubble_deep_field.jpg"),
    ("immunohistochemistry", "ihc.png"),
    ("retina", "retina.jpg"),
    ("camera", "camera.png"),
    ("coins", "coins.png"),
    ("moon", "moon.png"),
)


#: Default of :meth:`DataSource.dataset`'s ``preprocess``: the source's own ``preprocessing``.
_OWN: Any = object()


@dataclass(frozen=True, eq=False)
class DataSource:
    """Where a notebook's images come from.

    ``kind`` is ``"dataset"`` (downloaded into ``data/<name>``), ``"shared"`` (a collection of the
    shared folder) or ``"skimage"`` (scikit-image's bundled samples). ``files`` are image paths;
    ``images`` in-memory ``(3, H, W)`` tensors (used when a sample ships without a file).
    ``preprocessing`` is the :func:`preprocess` mode :meth:`dataset` applies unless told otherwise:
    the registry's for a downloaded dataset (Nanavati & Patel's ``"ce"``, resize to 256 and centre crop 128,
    for celeba-hq, cityscapes and places365), ``"256"`` (resize + centre crop) for the others.
    """

    kind: str
    name: str
    files: tuple[Path, ...] = ()
    images: tuple[torch.Tensor, ...] = ()
    image_names: tuple[str, ...] = ()
    description: str = ""
    root: Path | None = None
    crop: str | None = None
    preprocessing: str | None = "256"

    def __len__(self) -> int:
        return len(self.files) + len(self.images)

    def summary(self) -> str:
        """One line: which source and how many images."""
        n = len(self)
        if self.kind == "dataset":
            return f"data source: dataset {self.name!r} in {self.root} ({n} images)"
        if self.kind == "shared":
            return f"data source: shared folder {self.root}, collection {self.name!r} ({n} images)"
        return f"data source: scikit-image bundled samples ({n} images: {', '.join(self.image_names)})"

    def load(self, index: int) -> torch.Tensor:
        """Image ``index`` of the source at its own size, ``(3, H, W)`` (the source's crop applied)."""
        n = len(self)
        if not -n <= index < n:
            raise IndexError(f"index {index} out of range for a source of {n} images")
        index %= n
        if index < len(self.files):
            return _apply_crop(load_image(self.files[index]), self.crop)
        return _apply_crop(self.images[index - len(self.files)].float(), self.crop)

    def dataset(self, size: int | None = 128, preprocess: str | None = _OWN, split: str = "all",
                fractions: Sequence[float] = (0.8, 0.1, 0.1), seed: int = 0, max_images: int | None = None,
                verify: str = "quick") -> Dataset:
        """An :class:`ImageFolder` over the source's files, or an :class:`InMemoryImages` over its
        in-memory samples; the arguments are theirs (``verify`` applies to files only), except that
        ``preprocess`` defaults to the source's own :attr:`preprocessing`."""
        if preprocess is _OWN:
            preprocess = self.preprocessing
        if self.files:
            return ImageFolder(list(self.files), size=size, preprocess=preprocess, split=split, fractions=fractions,
                               seed=seed, max_images=max_images, crop=self.crop, verify=verify)
        if self.images:
            return InMemoryImages(list(self.images), names=list(self.image_names), size=size, preprocess=preprocess,
                                  split=split, fractions=fractions, seed=seed, max_images=max_images, crop=self.crop)
        raise ValueError(f"data source {self.kind}:{self.name} holds no images")


def make_dataset(source: DataSource, **kwargs: Any) -> Dataset:
    """``source.dataset(**kwargs)``: the same dataset interface for all three kinds of source."""
    if not isinstance(source, DataSource):
        raise TypeError(f"source must be a DataSource (see find_source), got {type(source).__name__}")
    return source.dataset(**kwargs)


def dataset_source(name: str) -> DataSource | None:
    """The downloaded dataset ``name`` under :func:`config.data_root` when it holds images, else
    ``None``. Files are those matching the registry's ``image_glob`` (any image under the folder if
    that pattern finds none); its datasets preprocess with the registry's ``preprocessing``."""
    spec = get_dataset_spec(name)
    root = config.data_root() / spec.name
    files = list_images(root, spec.image_glob) or list_images(root)
    if not files:
        return None
    return DataSource("dataset", spec.name, files=tuple(files), description=spec.description, root=root,
                      crop=spec.crop, preprocessing=spec.preprocessing)


@dataclass(frozen=True)
class FolderRecipe:
    """How the images of a folder are prepared, as a notebook's :class:`DataSource` prepares them: the
    :func:`preprocess` mode, the crop taken first, and the registered dataset they come from (``None``: none)."""

    preprocessing: str | None
    crop: str | None
    dataset: str | None

    def describe(self) -> str:
        """One phrase for a command's report: ``preprocess 'ce' (dataset 'celeba-hq')``."""
        crop = f", crop {self.crop!r}" if self.crop else ""
        where = f"dataset {self.dataset!r}'s recipe" if self.dataset else "not a registered dataset"
        return f"preprocess {self.preprocessing!r}{crop} ({where})"


def folder_recipe(folder: str | os.PathLike) -> FolderRecipe:
    """The recipe of the images under ``folder``: a registered dataset's (its ``preprocessing`` and ``crop``,
    e.g. Nanavati & Patel's ``"ce"``, resize to 256 and centre crop 128, for celeba-hq) when ``folder`` is that
    dataset's download folder ``data_root()/<name>`` or inside it, or is (or lies inside) a folder named as the
    dataset (``/shared/celeba-hq``); else ``"256"`` (resize + centre crop) and no crop, what the notebooks
    apply to every other source. The same rule as :func:`dataset_source`, for the command line's ``--data``."""
    path = Path(folder).expanduser().resolve()
    root = config.data_root().resolve()
    for spec in DATASETS.values():
        home = root / spec.name
        if path == home or home in path.parents or spec.name in (path.name, *(p.name for p in path.parents)):
            return FolderRecipe(spec.preprocessing, spec.crop, spec.name)
    return FolderRecipe("256", None, None)


def shared_source(collection: str = "faces") -> DataSource | None:
    """Collection ``collection`` of the shared folder (:func:`config.shared_data_root`), or ``None``
    when that folder is absent or the collection's folders hold no images."""
    if collection not in COLLECTIONS:
        raise KeyError(f"unknown collection {collection!r}; known collections: {', '.join(COLLECTIONS)}")
    root = config.shared_data_root()
    if root is None:
        return None
    files: list[Path] = []
    for sub in COLLECTIONS[collection]:
        files += list_images(root / sub)
    if not files:
        return None
    return DataSource("shared", collection, files=tuple(files), description=_COLLECTION_TEXT[collection], root=root)


def _skimage_data_dir() -> Path:
    import skimage.data

    return Path(skimage.data.__file__).parent


def skimage_source() -> DataSource:
    """scikit-image's bundled sample photos (:data:`SKIMAGE_SAMPLES`): the files shipped in the
    wheel where present, else the arrays its loaders return (in memory)."""
    data_dir = _skimage_data_dir()
    files: list[Path] = []
    names: list[str] = []
    for name, filename in SKIMAGE_SAMPLES:
        if (data_dir / filename).is_file():
            files.append(data_dir / filename)
            names.append(name)
    if files:
        return DataSource("skimage", "skimage", files=tuple(files), image_names=tuple(names),
                          description="scikit-image bundled sample photos", root=data_dir)
    import skimage.data

    images: list[torch.Tensor] = []
    for name, _ in SKIMAGE_SAMPLES:
        try:
            array = getattr(skimage.data, name)()
        except Exception:  # a sample that would need a download: skip it
            continue
        images.append(pil_to_tensor(Image.fromarray(np.asarray(array))))
        names.append(name)
    if not images:
        raise RuntimeError("no scikit-image sample image could be loaded; reinstall scikit-image")
    return DataSource("skimage", "skimage", images=tuple(images), image_names=tuple(names),
                      description="scikit-image bundled sample photos (in memory)")


def download_hint(dataset: str | None = None, collection: str | None = None) -> str:
    """What to download for real results, in one line: ``dataset`` (or the registry's dataset whose
    stand-in is ``collection``: CelebA-HQ for the faces, Places365 for the scenes) through
    ``data_download.sh`` or :func:`download`."""
    if dataset is None:
        dataset = "celeba-hq" if collection is None or collection.startswith("faces") else "places365"
    name = get_dataset_spec(dataset).name
    return (f"for real results download a dataset: bash data_download.sh {name} "
            f"(or data.download({name!r}) in a notebook, as notebook 00 does when online); every notebook "
            f"then uses it (or set INPAINT_DATASET={name})")


def _resolve(dataset: str | None, collection: str | None) -> tuple[DataSource, str, str]:
    """(source, why a fallback was taken, what to download) of :func:`find_source`'s rules; the last two
    are empty when the named dataset was found."""
    why = ""
    if dataset is not None:
        spec = get_dataset_spec(dataset)
        if collection is None:
            collection = spec.fallback_collection
        found = dataset_source(dataset)
        if found is not None:
            return found, "", ""
        why = f" [dataset {dataset!r} not found in {config.data_root() / spec.name}]"
    if collection is None:
        collection = "faces"
    source = shared_source(collection)
    if source is None:
        shared = config.shared_data_root()
        reason = "no shared folder" if shared is None else f"no images for collection {collection!r} in {shared}"
        source = skimage_source()
        why += f" [{reason}]"
    return source, why, f" [{download_hint(dataset, collection)}]"


def find_source(dataset: str | None = None, collection: str | None = None, verbose: bool = True) -> DataSource:
    """The images a notebook uses (docs/conventions.md, "Data paths"), and one printed line saying which
    (:func:`source_line`).

    1. ``data_root()/<dataset>`` when ``dataset`` is given and that folder holds images;
    2. else the shared folder's ``collection`` (one of :data:`COLLECTIONS`; ``None`` picks the
       dataset's natural stand-in: ``faces`` for ``celeba-hq`` and when no dataset is named,
       ``scenes`` for the other datasets);
    3. else scikit-image's bundled samples.

    On a fallback (2 or 3) the line also says what to download for real results (:func:`download_hint`).
    """
    source, why, hint = _resolve(dataset, collection)
    if verbose:
        print(source.summary() + why + hint)
    return source


def source_line(dataset: str | None = None, collection: str | None = None) -> str:
    """The line :func:`find_source` prints for the same arguments, without printing it: which images and how
    many. The setup cell of every notebook prints it first (``inpaint_utils.colab``), e.g.
    ``source_line(course_dataset(DATASET), COLLECTION)``."""
    source, why, hint = _resolve(dataset, collection)
    return source.summary() + why + hint


def collection_dataset(collection: str, dataset: str | None = None) -> str | None:
    """The dataset a notebook that shows several collections side by side (01: faces and scenes; 06) uses for
    ``collection``: ``dataset`` when given; else the course's dataset (:func:`course_dataset`) when that dataset
    stands in for the collection (its registry ``fallback_collection`` begins the collection's name: celeba-hq
    for ``faces`` and ``faces_small``, places365 for ``scenes``); else ``None``, which :func:`find_source` reads
    as "the shared collection, then scikit-image's samples"."""
    if collection not in COLLECTIONS:
        raise KeyError(f"unknown collection {collection!r}; known collections: {', '.join(COLLECTIONS)}")
    if dataset is not None:
        return course_dataset(dataset)
    course = course_dataset()
    if course is not None and collection.startswith(get_dataset_spec(course).fallback_collection):
        return course
    return None


def sources_line(collections: Mapping[str, str | None] | Sequence[str]) -> str:
    """One line for several collections (notebooks 01 and 06): each collection's source and number of images,
    the dataset of each given by :func:`collection_dataset` (``collections`` maps a collection to its dataset,
    ``None`` for the course's; a list means ``None`` for all), and, after a fallback, what to download for the
    first collection that fell back."""
    items = list(collections.items()) if isinstance(collections, Mapping) else [(c, None) for c in collections]
    if not items:
        raise ValueError("sources_line needs at least one collection")
    parts, hints = [], []
    for collection, dataset in items:
        source, why, hint = _resolve(collection_dataset(collection, dataset), collection)
        parts.append(f"{collection}: {source.summary().removeprefix('data source: ')}{why}")
        hints.append(hint)
    return "data sources: " + " | ".join(parts) + next((h for h in hints if h), "")


def course_dataset(dataset: str | None = None) -> str | None:
    """The course's dataset, one setting for every notebook (a notebook's ``DATASET = None`` parameter asks
    for it): ``dataset`` when given; else ``$INPAINT_DATASET``; else the dataset that the last successful
    :func:`~inpaint_utils.data.download` into the default data folder recorded in
    ``data_root()/course_dataset.json``, if it still holds images; else ``None``, and :func:`find_source`
    falls back to the shared folder, then scikit-image's samples. A name the registry does not know raises
    ``KeyError`` listing the known ones."""
    if dataset is not None:
        return get_dataset_spec(dataset).name
    named = os.environ.get(COURSE_ENV, "").strip()
    if named:
        return get_dataset_spec(named).name
    record = config.data_root() / COURSE_FILE
    try:
        name = json.loads(record.read_text(encoding="utf-8"))["dataset"]
        get_dataset_spec(name)
    except (OSError, ValueError, KeyError, TypeError):    # absent, unreadable, or naming no registered dataset
        return None
    return name if dataset_source(name) is not None else None
