"""LaMa's evaluation masks (Suvorov et al. 2021, arXiv:2109.07161) and the fixed evaluation sets drawn
from them (part of :mod:`inpaint_utils.masks`): the thin / medium / thick generators (:func:`lama_mask`),
the 10 % hole-area bins the scores are grouped by (:func:`area_bins`) and the sets saved once under
``runs/eval_masks`` (:func:`eval_mask_set`)."""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import cv2
import numpy as np
import torch

from ..validation import check_mask, check_ratio, is_int
from .common import Size, _make_generator, _numpy_rngs, parse_size
from .shapes import MASK_KINDS, make_mask

# --------------------------------------------------------------------------------------------
# LaMa's evaluation masks (Suvorov et al. 2021) and the fixed evaluation sets drawn from them
# --------------------------------------------------------------------------------------------
#: LaMa's three evaluation mask families, accepted by :func:`lama_mask` and :func:`eval_mask_set`.
LAMA_KINDS: tuple[str, ...] = ("thin", "medium", "thick")
#: LaMa rejects a mask whose hole covers more than this share of the image (``max_tamper_area``).
LAMA_MAX_HOLE = 0.5
#: The image side LaMa's parameters are given for; other sizes scale every length by ``min(H, W) / 256``.
LAMA_BASE_SIDE = 256
_LAMA_TRIES = 1000  # redraws per mask before giving up (the 50 % rule rejects a few per cent at most)


@dataclass(frozen=True)
class LamaStrokes:
    """LaMa's random irregular mask: ``times`` strokes, each a polyline of 1 to 5 straight segments
    drawn with a brush (lengths in pixels at 256 px; ``min_len`` / ``min_width`` are the constants
    LaMa adds to the drawn length and width).

    Per stroke: a start pixel uniform over the image; per segment an angle ``0.01 + k`` radians, ``k``
    uniform in ``0 .. max_angle - 1`` (mirrored to ``2 pi - angle`` on every other stroke), a length
    ``min_len + U{0 .. max_len - 1}``, a brush width ``min_width + U{0 .. max_width - 1}``; the end
    point is clipped to the image. LaMa's generator, as its configs run it (no ramp, coefficient 1),
    draws ``min_times .. max_times + 1`` strokes: its ``max_times`` gets one added before the draw.
    """

    min_times: int
    max_times: int
    max_width: int
    max_len: int
    max_angle: int = 4
    min_len: int = 10
    min_width: int = 5


@dataclass(frozen=True)
class LamaBoxes:
    """LaMa's random rectangle mask: ``min_times .. max_times`` axis-aligned boxes whose width and
    height are drawn independently in ``bbox_min_size .. bbox_max_size`` (clipped to the image less
    twice ``margin``), each placed uniformly at least ``margin`` pixels from the image border."""

    margin: int
    bbox_min_size: int
    bbox_max_size: int
    min_times: int
    max_times: int


@dataclass(frozen=True)
class LamaMaskConfig:
    """One LaMa family: strokes, and with weight ``box_proba`` (against 1 for the strokes) boxes.
    LaMa's mixture normalises the weights: medium and thick draw boxes with p = 0.3 / 1.3 = 0.23."""

    strokes: LamaStrokes
    boxes: LamaBoxes | None = None
    box_proba: float = 0.0


#: LaMa's ``configs/data_gen/random_{thin,medium,thick}_256.yaml`` (every length in pixels at 256 px).
LAMA_MASKS: dict[str, LamaMaskConfig] = {
    "thin": LamaMaskConfig(LamaStrokes(min_times=4, max_times=50, max_width=10, max_len=40)),
    "medium": LamaMaskConfig(LamaStrokes(min_times=4, max_times=5, max_width=50, max_len=100),
                             LamaBoxes(margin=0, bbox_min_size=10, bbox_max_size=50, min_times=1, max_times=5),
                             box_proba=0.3),
    "thick": LamaMaskConfig(LamaStrokes(min_times=1, max_times=5, max_width=100, max_len=200),
                            LamaBoxes(margin=10, bbox_min_size=30, bbox_max_size=150, min_times=1, max_times=3),
                            box_proba=0.3),
}


def _scaled(value: int, scale: float, minimum: int = 0) -> int:
    """A length of LaMa's 256-px configs at another image size."""
    return max(minimum, int(round(value * scale)))


def _lama_strokes_one(h: int, w: int, p: LamaStrokes, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One LaMa irregular mask ``(H, W)`` bool: ``p``'s strokes with every length scaled by ``scale``."""
    canvas = np.zeros((h, w), dtype=np.uint8)
    max_len, max_width = _scaled(p.max_len, scale, 1), _scaled(p.max_width, scale, 1)
    min_len, min_width = _scaled(p.min_len, scale), _scaled(p.min_width, scale, 1)
    for stroke in range(int(rng.integers(p.min_times, p.max_times + 2))):    # LaMa: up to max_times + 1
        x, y = int(rng.integers(w)), int(rng.integers(h))
        for _ in range(1 + int(rng.integers(5))):                             # 1 to 5 segments
            angle = 0.01 + int(rng.integers(p.max_angle))
            if stroke % 2 == 0:
                angle = 2 * math.pi - angle
            length = min_len + int(rng.integers(max_len))
            width = min_width + int(rng.integers(max_width))
            nx = int(np.clip(x + length * math.sin(angle), 0, w))
            ny = int(np.clip(y + length * math.cos(angle), 0, h))
            cv2.line(canvas, (x, y), (nx, ny), 1, thickness=width)
            x, y = nx, ny
    return canvas.astype(bool)


def _lama_boxes_one(h: int, w: int, p: LamaBoxes, scale: float, rng: np.random.Generator) -> np.ndarray:
    """One LaMa box mask ``(H, W)`` bool, lengths scaled by ``scale``."""
    margin = _scaled(p.margin, scale)
    lo = _scaled(p.bbox_min_size, scale, 1)
    hi = min(_scaled(p.bbox_max_size, scale, 1), h - 2 * margin, w - 2 * margin)
    if hi < lo:
        raise ValueError(f"LaMa boxes of at least {lo} px with a {margin}-px margin do not fit in {h}x{w}")
    canvas = np.zeros((h, w), dtype=bool)
    for _ in range(int(rng.integers(p.min_times, p.max_times + 1))):
        bw, bh = int(rng.integers(lo, hi + 1)), int(rng.integers(lo, hi + 1))
        x0 = int(rng.integers(margin, w - margin - bw + 1))
        y0 = int(rng.integers(margin, h - margin - bh + 1))
        canvas[y0:y0 + bh, x0:x0 + bw] = True
    return canvas


def _lama_one(h: int, w: int, config: LamaMaskConfig, max_hole: float, rng: np.random.Generator) -> np.ndarray:
    """Draws until a mask has a hole in ``(0, max_hole]`` of the image (LaMa's rejection rule)."""
    scale = min(h, w) / LAMA_BASE_SIDE
    box_p = config.box_proba / (1.0 + config.box_proba) if config.boxes is not None else 0.0
    for _ in range(_LAMA_TRIES):
        if rng.random() < box_p:
            hole = _lama_boxes_one(h, w, config.boxes, scale, rng)
        else:
            hole = _lama_strokes_one(h, w, config.strokes, scale, rng)
        area = int(hole.sum())
        if 0 < area <= max_hole * h * w:
            return hole
    raise RuntimeError(f"no LaMa mask with a hole of at most {max_hole:.0%} of {h}x{w} in {_LAMA_TRIES} draws")


def lama_mask(kind: str, size: Size = LAMA_BASE_SIDE, batch: int = 1, generator: torch.Generator | None = None,
              seed: int | None = None, max_hole: float = LAMA_MAX_HOLE,
              device: str | torch.device | None = None) -> torch.Tensor:
    """LaMa's evaluation masks (Suvorov et al. 2021, arXiv:2109.07161; its ``random_{kind}_256``
    configs, :data:`LAMA_MASKS`): float32 ``(batch, 1, H, W)``, 1 = hole.

    ``"thin"``: 4 to 51 strokes of brush 5-14 px, segments 10-49 px; ``"medium"``: 4 to 6 strokes of
    5-54 px, segments 10-109 px, or (p = 0.23) 1 to 5 boxes of 10-50 px; ``"thick"``: 1 to 6 strokes
    of 5-104 px, segments 10-209 px, or (p = 0.23) 1 to 3 boxes of 30-150 px kept 10 px from the
    border (all at 256 px). At another size every length scales by ``min(H, W) / 256`` (LaMa's own
    512-px configs are not exactly the 256 ones doubled; ours are, so the hole-area distribution
    stays about the same at every size). A mask whose hole covers more than ``max_hole`` of the image
    (LaMa: 50 %), or nothing, is drawn again. LaMa draws at the image's size before a square crop;
    we draw at the final size. Unlike :func:`make_mask` the hole area is not controlled: it is what
    the protocol bins the scores by (:func:`area_bins`).
    """
    if kind not in LAMA_KINDS:
        raise ValueError(f"unknown LaMa mask kind {kind!r}; choose one of {LAMA_KINDS}")
    h, w = parse_size(size)
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    max_hole = check_ratio(max_hole, "max_hole")
    gen = _make_generator(generator, seed)
    config = LAMA_MASKS[kind]
    masks = torch.from_numpy(np.stack([_lama_one(h, w, config, max_hole, rng) for rng in _numpy_rngs(gen, batch)]))
    masks = masks.reshape(batch, 1, h, w).to(torch.float32)
    return masks.to(device) if device is not None else masks


def area_bins(mask: torch.Tensor, bins: int = 10) -> torch.Tensor:
    """Hole-area bin of each mask, ``(B,)`` long: bin ``k`` holds hole shares in ``[k / bins, (k + 1) /
    bins)`` (LaMa's evaluator: ``0-10 %``, ``10-20 %``, ..., a share of exactly 10 % in ``10-20 %``,
    100 % in the last bin). Counted in whole pixels, so a share on an edge falls on the right side."""
    check_mask(mask)
    if not is_int(bins) or bins < 1:
        raise ValueError(f"bins must be an int >= 1, got {bins!r}")
    holes = (mask > 0.5).flatten(1).sum(dim=1).cpu()                                  # (B,) hole pixels
    total = mask[0].numel()
    return torch.clamp(holes * bins // total, max=bins - 1)


def area_bin_label(k: int, bins: int = 10) -> str:
    """``"10-20%"`` for bin 1 of 10 (LaMa's labels)."""
    lo, hi = 100 * k / bins, 100 * (k + 1) / bins
    return f"{lo:g}-{hi:g}%"


EVAL_MASKS_VERSION = 1  # bumped whenever a generator changes what a seed draws: old sets are then redrawn


def _eval_set_name(kind: str, h: int, w: int, n: int, seed: int, ratio: float | None) -> str:
    tag = kind if ratio is None else f"{kind}-r{ratio:g}"
    return f"{tag}_{h}x{w}_n{n}_seed{seed}_v{EVAL_MASKS_VERSION}"


def _hole_digest(hole: np.ndarray) -> str:
    """SHA-256 of a hole ``(H, W)`` bool, shape included (the decoded pixels, not the PNG bytes)."""
    import hashlib

    return hashlib.sha256(f"{hole.shape[0]}x{hole.shape[1]}:".encode() + np.packbits(hole).tobytes()).hexdigest()


def _read_eval_set(folder: Path, manifest: dict) -> tuple[np.ndarray | None, str]:
    """The stored holes ``(n, H, W)`` bool, or ``(None, what is wrong)``."""
    from PIL import Image

    h, w = manifest["size"]
    holes = []
    for name, digest in zip(manifest["files"], manifest["sha256"]):
        path = folder / name
        if not path.is_file():
            return None, f"{name} is missing"
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                with Image.open(path) as img:                    # the header first: a bomb is never decoded
                    if img.size != (w, h):
                        return None, f"{name} is {img.size[0]}x{img.size[1]} pixels, not the set's {w}x{h}"
                    hole = np.asarray(img.convert("L")) >= 128
        except (OSError, ValueError, Image.DecompressionBombError, Image.DecompressionBombWarning) as err:
            return None, f"{name} is unreadable ({type(err).__name__}: {' '.join(str(err).split())})"
        if _hole_digest(hole) != digest:
            return None, f"{name} does not match its stored digest (edited or damaged)"
        holes.append(hole)
    return np.stack(holes), ""


def eval_mask_set(kind: str, size: Size = LAMA_BASE_SIDE, n: int = 100, seed: int = 0, ratio: float | None = None,
                  root: str | Path | None = None, max_hole: float = LAMA_MAX_HOLE) -> torch.Tensor:
    """A fixed evaluation mask set, ``(n, 1, H, W)`` float32 (1 = hole): drawn once from ``seed``,
    saved, and read back from disk from then on (the LaMa protocol: every method, every run, the same
    holes).

    ``kind``: one of :data:`LAMA_KINDS` (:func:`lama_mask`, holes of at most ``max_hole``) or of
    :data:`MASK_KINDS` with a ``ratio`` (:func:`make_mask`). The set lives in
    ``<root>/<kind>_<H>x<W>_n<n>_seed<seed>_v<version>/`` (``root`` defaults to
    ``config.runs_dir() / "eval_masks"``, ignored by git) as ``0000.png ...`` (8-bit, 255 = hole, what
    :func:`load_mask` reads) and ``manifest.json`` holding the parameters and the SHA-256 of each
    mask's pixels. Deleted, it is drawn again identically (same bytes). A file that is missing or no
    longer matches its digest, or a manifest that disagrees, gives a ``UserWarning`` naming it and
    the set is drawn again and rewritten; if the new draw differs from the stored digests (the
    generator changed without :data:`EVAL_MASKS_VERSION` moving) that is said too. A stored file whose
    header declares another size (a decompression bomb among them) is refused before it is decoded. A folder
    that cannot be written (read-only runs folder, full disk) gives a warning and the set drawn in memory.
    """
    import json

    h, w = parse_size(size)
    if not is_int(n) or n < 1:
        raise ValueError(f"n must be an int >= 1, got {n!r}")
    if not is_int(seed):
        raise TypeError(f"seed must be an int, got {seed!r}")
    if kind in LAMA_KINDS:
        if ratio is not None:
            raise ValueError(f"LaMa kind {kind!r} has no ratio (its hole area is random, binned afterwards); "
                             "pass ratio=None")
        max_hole = check_ratio(max_hole, "max_hole")

        def draw() -> torch.Tensor:
            return lama_mask(kind, (h, w), batch=n, seed=int(seed), max_hole=max_hole)
    elif kind in MASK_KINDS:
        if ratio is None:
            raise ValueError(f"kind {kind!r} needs a ratio (the hole-to-image area of make_mask)")
        ratio = check_ratio(ratio)

        def draw() -> torch.Tensor:
            return make_mask(kind, (h, w), ratio, batch=n, seed=int(seed))
    else:
        raise ValueError(f"unknown mask kind {kind!r}; choose one of {LAMA_KINDS + MASK_KINDS}")
    if root is None:
        from ..config import runs_dir
        root = runs_dir() / "eval_masks"
    folder = Path(root) / _eval_set_name(kind, h, w, n, int(seed), ratio)
    params = {"kind": kind, "size": [h, w], "n": n, "seed": int(seed), "ratio": ratio,
              "max_hole": max_hole if kind in LAMA_KINDS else None, "version": EVAL_MASKS_VERSION}
    manifest_path = folder / "manifest.json"

    problem, stored = "", None
    if manifest_path.is_file():
        try:
            stored = json.loads(manifest_path.read_text())
            if {k: stored.get(k) for k in params} != params:
                problem = "manifest.json has other parameters"
            elif len(stored.get("files", [])) != n or len(stored.get("sha256", [])) != n:
                problem = f"manifest.json does not list {n} masks"
            else:
                holes, problem = _read_eval_set(folder, stored)
                if holes is not None:
                    return torch.from_numpy(holes).to(torch.float32).unsqueeze(1)
        except (ValueError, TypeError, AttributeError) as err:
            problem, stored = f"manifest.json is unreadable ({err})", None
    elif folder.is_dir() and any(folder.iterdir()):
        problem = "manifest.json is missing"

    from PIL import Image

    masks = draw()
    holes = masks[:, 0].numpy() > 0.5                                                  # (n, H, W)
    digests = [_hole_digest(hole) for hole in holes]
    if problem:
        note = ""
        old = stored.get("sha256") if isinstance(stored, dict) else None
        if isinstance(old, list) and len(old) == n and old != digests:
            changed = sum(a != b for a, b in zip(old, digests))
            note = (f"; {changed} of {n} redrawn masks differ from the stored digests: did the generator change "
                    "without EVAL_MASKS_VERSION moving?")
        warnings.warn(f"evaluation mask set {folder}: {problem}; drawn again from seed {seed} and rewritten{note}",
                      UserWarning, stacklevel=2)
    files = [f"{i:04d}.png" for i in range(n)]
    manifest = {**params, "files": files, "sha256": digests,
                "generator": "masks.lama_mask" if kind in LAMA_KINDS else "masks.make_mask"}
    try:
        folder.mkdir(parents=True, exist_ok=True)
        for name, hole in zip(files, holes):
            Image.fromarray(hole.astype(np.uint8) * 255, mode="L").save(folder / name)
        tmp = manifest_path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps(manifest, indent=1) + "\n")
        tmp.replace(manifest_path)                    # the manifest last: a half-written set has none
    except OSError as err:     # a read-only or full runs folder: the set is the seed's all the same, kept in memory
        warnings.warn(f"evaluation mask set {folder} cannot be saved ({err.strerror or err}); using the set drawn "
                      f"from seed {seed} in memory (the same holes; set INPAINT_RUNS to a writable folder to keep "
                      "it on disk)", UserWarning, stacklevel=2)
    return masks


def eval_mask_sets(kinds: Sequence[str] = LAMA_KINDS, size: Size = LAMA_BASE_SIDE, n: int = 100, seed: int = 0,
                   root: str | Path | None = None) -> dict[str, torch.Tensor]:
    """``{kind: eval_mask_set(kind, size, n, seed)}`` for LaMa kinds: the sets :func:`inpaint_utils.
    comparison.compare_on_masks` takes (one seed, each kind drawn independently of the others)."""
    if not kinds:
        raise ValueError("kinds must be non-empty")
    return {kind: eval_mask_set(kind, size, n, seed, root=root) for kind in kinds}
