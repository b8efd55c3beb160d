"""Datasets, image loading, splits, the papers' preprocessing and the offline fallback.

A package along its seams (every public name is importable from ``inpaint_utils.data`` itself):
``registry`` (the datasets), ``reading`` (image files), ``preprocessing`` (resize / crop),
``datasets`` (splits, :class:`ImageFolder`), ``sources`` (dataset -> shared folder -> scikit-image),
``stats`` (sizes, mean colour), ``cache`` (images decoded once, in memory or memory-mapped), ``downloads``
(Kaggle), ``command`` (``python -m inpaint_utils.data``).

Introduced in ``notebooks/00_data_prep.ipynb``; every later notebook gets its images from here.

* :data:`DATASETS` is the registry of the datasets the source reports train on (CelebA-HQ, Cityscapes and
  Places365 in Nanavati & Patel, the Context Encoder / Stable Diffusion 2 report; Animals-90 and an ImageNet
  subset in Biradar et al., the GLCIC / contextual-attention replication), with their Kaggle ids.
* :func:`download` (``data.download("celeba-hq")`` in a notebook, ``bash data_download.sh NAME`` or
  ``python -m inpaint_utils.data download NAME``) fetches one into ``data/<name>/`` with ``kagglehub``
  where it is installed (Colab ships it), else with the ``kaggle`` CLI (``data_download.sh`` always),
  checks the archive (or the tree kagglehub extracted), extracts it safely and writes
  ``data/<name>/.complete`` last, so a re-run does nothing.
* :func:`load_image` reads a file of any Pillow mode as a float ``(3, H, W)`` tensor in ``[0, 1]``;
  :func:`preprocess` applies the papers' resize / crop recipes; :class:`ImageFolder` is the dataset
  with deterministic train / val / test splits.
* :class:`DecodedImages` keeps a dataset's images decoded as uint8 (in memory, or in a memory-mapped
  file under :func:`cache_dir` for large sets, reused while its :func:`dataset_key` matches);
  :func:`cache_dataset` is the policy ``train.train`` applies (``TrainConfig.cache``).
* :func:`find_source` implements the course's data paths (docs/conventions.md, "Data paths"): the downloaded dataset when present, else the
  shared folder of real images (``../shared/data``), else scikit-image's bundled samples, and it says
  which one it used. CI and the smoke profile never download anything.
* :func:`course_dataset` is the course-wide setting: ``$INPAINT_DATASET``, else the dataset the last
  :func:`download` into the default folder recorded (:func:`set_course_dataset`); notebooks pass it to
  :func:`find_source` (:func:`collection_dataset` where a notebook shows several collections);
  :func:`source_line` / :func:`sources_line` are the line each notebook prints first. :func:`verify_download`
  checks a kagglehub download against the listing sha256 stored at its first download.
"""
from __future__ import annotations

from .registry import (COURSE_ENV, COURSE_FILE, DATASETS, DEFAULT_COURSE_DATASET, MARKER, DatasetSpec, get_dataset_spec,
                       registry_rows)
from .reading import (IMAGE_SUFFIXES, ImageReadError, image_size, list_images, load_image, pil_to_tensor,
                      read_image_file)
from .preprocessing import (PREPROCESS_MODES, apply_crop_flip, center_crop, make_transform, preprocess,
                            random_crop_flip_params, resize_short_side)
from .datasets import SPLITS, ImageFolder, InMemoryImages, split_indices
from .sources import (COLLECTIONS, SKIMAGE_SAMPLES, DataSource, FolderRecipe, collection_dataset, course_dataset,
                      dataset_source, download_hint, find_source, folder_recipe, make_dataset, shared_source,
                      skimage_source, source_line, sources_line)
from .stats import first_images, image_sizes, mean_color, size_summary
from .cache import CACHE_MODES, MEMORY_LIMIT, DecodedImages, cache_dataset, cache_dir, dataset_key, to_uint8
from .downloads import DownloadError, download, kaggle_credentials, safe_extract, set_course_dataset, verify_download
from .command import main

__all__ = [
    "DatasetSpec",
    "DATASETS",
    "get_dataset_spec",
    "registry_rows",
    "ImageReadError",
    "IMAGE_SUFFIXES",
    "load_image",
    "pil_to_tensor",
    "read_image_file",
    "image_size",
    "list_images",
    "PREPROCESS_MODES",
    "preprocess",
    "resize_short_side",
    "center_crop",
    "make_transform",
    "random_crop_flip_params",
    "apply_crop_flip",
    "split_indices",
    "SPLITS",
    "ImageFolder",
    "InMemoryImages",
    "COLLECTIONS",
    "SKIMAGE_SAMPLES",
    "DataSource",
    "dataset_source",
    "FolderRecipe",
    "folder_recipe",
    "shared_source",
    "skimage_source",
    "find_source",
    "course_dataset",
    "collection_dataset",
    "source_line",
    "sources_line",
    "set_course_dataset",
    "verify_download",
    "COURSE_ENV",
    "COURSE_FILE",
    "DEFAULT_COURSE_DATASET",
    "download_hint",
    "make_dataset",
    "first_images",
    "image_sizes",
    "size_summary",
    "mean_color",
    "CACHE_MODES",
    "MEMORY_LIMIT",
    "DecodedImages",
    "cache_dataset",
    "cache_dir",
    "dataset_key",
    "to_uint8",
    "DownloadError",
    "MARKER",
    "kaggle_credentials",
    "download",
    "safe_extract",
    "main",
]
