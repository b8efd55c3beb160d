"""Reading images: any Pillow mode to a float ``(3, H, W)`` tensor in ``[0, 1]``, quick and full checks, listing a folder (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Callable, TypeVar

import numpy as np
import torch
from PIL import Image, ImageOps


T = TypeVar("T")
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png")
_SIXTEEN_BIT_MODES = {"I;16", "I;16L", "I;16B", "I;16N"}


class ImageReadError(ValueError):
    """A file exists but is not a readable image (corrupt, truncated, unsupported)."""


def pil_to_tensor(img: Image.Image) -> torch.Tensor:
    """A Pillow image of any mode as a float32 ``(3, H, W)`` tensor in ``[0, 1]``.

    * ``RGB``, ``L``, ``1``, ``CMYK``, ``YCbCr``, ...: converted to RGB (grey is repeated).
    * Transparency (``RGBA``, ``LA``, ``PA``, ``P`` or ``L``/``RGB`` with a ``transparency`` entry):
      **composited on white**, ``rgb * alpha + 1 * (1 - alpha)``. Transparent pixels of such files
      often hold arbitrary colours; white is how viewers show them and keeps them out of the hole
      statistics of dark images.
    * 16-bit grey (``I;16``, ``I;16B``, ``I;16L``, ``I;16N``) and ``I`` (what 16-bit PGM/PNG give):
      divided by 65535, so 65535 -> 1.0, without clipping at 255. ``I`` values outside 0..65535 are
      rejected (these loaders only meet 16-bit data).
    * ``F`` (float TIFF): read on Pillow's 0..255 scale (as ``convert("L")`` does), divided by 255 and
      clipped to ``[0, 1]``.
    """
    mode = img.mode
    if mode in _SIXTEEN_BIT_MODES or mode == "I":
        arr = np.asarray(img).astype(np.float64)
        if arr.size and (arr.min() < 0 or arr.max() > 65535):
            raise ValueError(f"mode {mode} pixel values lie in [{arr.min():g}, {arr.max():g}], "
                             "outside the 16-bit range 0..65535")
        grey = (arr / 65535.0).astype(np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    elif mode == "F":
        arr = np.asarray(img, dtype=np.float32)
        if not np.isfinite(arr).all():
            raise ValueError("mode F image contains NaN or inf values")
        grey = np.clip(arr / 255.0, 0.0, 1.0).astype(np.float32)
        rgb = np.repeat(grey[..., None], 3, axis=2)
    else:
        has_alpha = mode in ("RGBA", "LA", "PA", "La", "RGBa") or "transparency" in img.info
        if has_alpha:
            rgba = np.asarray(img.convert("RGBA"), dtype=np.float32) / 255.0
            alpha = rgba[..., 3:4]
            rgb = rgba[..., :3] * alpha + (1.0 - alpha)  # composite on white
        else:
            rgb = np.asarray(img if mode == "RGB" else img.convert("RGB"), dtype=np.float32) / 255.0
    rgb = np.ascontiguousarray(rgb, dtype=np.float32)
    return torch.from_numpy(rgb).permute(2, 0, 1).contiguous().clamp_(0.0, 1.0)  # (3, H, W)


def read_image_file(path: str | os.PathLike, decode: Callable[[Image.Image], T], what: str = "image",
                    header_only: bool = False) -> T:
    """Open ``path`` with Pillow, decode it fully, apply its EXIF orientation and return ``decode(img)``:
    the one reader of image files behind :func:`load_image`, :func:`image_size` and
    :func:`inpaint_utils.masks.load_mask`. ``header_only``: ``decode`` gets the opened file, not decoded.

    A missing file raises ``FileNotFoundError`` ("``what`` file not found: ..."); anything else that
    keeps it from being read (a folder, not an image, truncated, corrupt, a decompression bomb, no
    permission, or ``decode`` refusing its pixels with ``ValueError``) raises :class:`ImageReadError`
    naming ``what``, the path and the reason, in one line. Truncated files are not half-read:
    Pillow's global ``LOAD_TRUNCATED_IMAGES`` is left alone.
    """
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{what} file not found: {path}")
    if path.is_dir():
        raise ImageReadError(f"cannot read {what} {path}: it is a directory")
    try:
        with Image.open(path) as img:
            if header_only:
                return decode(img)
            img.load()
            if img.getexif().get(0x0112, 1) != 1:  # EXIF orientation
                img = ImageOps.exif_transpose(img)
            return decode(img)
    except FileNotFoundError:
        raise
    except Exception as e:  # Pillow raises OSError, SyntaxError, ValueError, struct.error, DecompressionBombError, ...
        raise ImageReadError(f"cannot read {what} {path}: {type(e).__name__}: {_one_line(e)}") from e


def _one_line(error: BaseException) -> str:
    return " ".join(str(error).split())


def load_image(path: str | os.PathLike) -> torch.Tensor:
    """Read ``path`` (jpg, png, or anything Pillow reads) as float32 ``(3, H, W)`` in ``[0, 1]``.

    Modes are handled by :func:`pil_to_tensor` (transparency composited on white, 16-bit scaled by
    65535). An EXIF orientation tag is applied. A missing file raises ``FileNotFoundError``; a file
    that cannot be decoded (not an image, truncated, corrupt, a decompression bomb) raises
    :class:`ImageReadError` with the path and the reason (:func:`read_image_file`).
    """
    return read_image_file(path, pil_to_tensor, what="image")


def _quick_check(path: Path) -> str | None:
    """``None`` when Pillow can open ``path`` and its cheap ``verify()`` passes, else the reason.

    ``verify()`` checks a PNG's chunks but reads nothing of a JPEG's compressed data, so a JPEG is
    also decoded at 1/8 of its size (Pillow's ``draft``: every byte is read, a fraction of the work),
    which finds a truncated or damaged one."""
    try:
        with Image.open(path) as img:
            fmt = img.format
            img.verify()
        if fmt == "JPEG":
            with Image.open(path) as img:
                img.draft("RGB", (max(1, img.width // 8), max(1, img.height // 8)))
                img.load()
    except Exception as e:
        return f"{type(e).__name__}: {_one_line(e)}"
    return None


def _full_check(path: Path) -> str | None:
    try:
        load_image(path)
    except (ImageReadError, FileNotFoundError) as e:
        return str(e)
    return None


def image_size(path: str | os.PathLike) -> tuple[int, int]:
    """``(width, height)`` of an image file, read from its header only (errors as :func:`load_image`)."""
    return read_image_file(path, lambda img: img.size, header_only=True)


def _is_hidden(rel: Path) -> bool:
    return any(part.startswith(".") for part in rel.parts)


def list_images(root: str | os.PathLike, pattern: str = "**/*") -> list[Path]:
    """Image files (``.jpg``, ``.jpeg``, ``.png``, any case) under ``root`` matching ``pattern``,
    sorted by their path relative to ``root``. Files under hidden folders (``.download``,
    ``.ipynb_checkpoints``, ...) are left out."""
    root = Path(root)
    if not root.is_dir():
        return []
    files = []
    for path in root.glob(pattern):
        rel = path.relative_to(root)
        if path.suffix.lower() in IMAGE_SUFFIXES and not _is_hidden(rel) and path.is_file():
            files.append((rel.as_posix(), path))
    return [p for _, p in sorted(files)]
