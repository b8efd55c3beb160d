"""``inpaint evaluate --method METHOD`` (part of :mod:`inpaint_utils.cli`): a method scored on held-out
images with seeded or LaMa's fixed masks, with the provenance of the result."""
from __future__ import annotations

import argparse
import sys
import warnings
import zipfile
from pathlib import Path
from typing import Any, Sequence

from .methods import aliases_help, canonical_method
from .records import _provenance, _training_record
from .shared import (DEVICES, PREPROCESS_CHOICES, PREPROCESS_HELP, _UsageError, _check_data, _check_device,
                     _check_output, _check_positive, _data_recipe, _load_method, _patch_option, _warnings_to_stderr)

#: the columns ``inpaint evaluate`` prints (those present: LPIPS only when it was computed)
EVALUATE_COLUMNS = ("method", "n", "psnr_hole", "ssim_hole", "l1_pct_hole", "l2_pct_hole", "lpips_hole",
                    "mse255_hole", "l1_255_hole", "tv255_hole", "psnr_image", "ssim_image")


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    from ..data import COLLECTIONS
    from ..inference import METHODS as FILL_METHODS
    from ..masks import LAMA_KINDS, MASK_KINDS

    p = subparsers.add_parser(
        "evaluate", help="score a method on held-out images",
        description="Score METHOD on the test split of a folder (or of a collection of the shared images) with "
                    "masks drawn from --seed, the same split as the notebooks (80/10/10 %, seeded): the hole is "
                    "zeroed before the method sees it and the composite is scored in both papers' conventions "
                    "(Nanavati and Patel: L1/L2 in %% and PSNR; Biradar et al.: 0-255 MSE/L1, PSNR, LPIPS, TV).")
    p.add_argument("--method", required=True, type=canonical_method, choices=list(FILL_METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(FILL_METHODS) + f" ({aliases_help()})")
    p.add_argument("--checkpoint", default=None, help="as for `inpaint fill`")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of images (.jpg, .jpeg, .png; searched recursively)")
    source.add_argument("--collection", choices=list(COLLECTIONS),
                        help="a collection of the shared images (scikit-image's samples when the folder is absent)")
    p.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default="auto",
                   help=PREPROCESS_HELP + " (with --collection: the collection's own, resize + centre crop)")
    p.add_argument("--baselines", action="store_true", help="also score telea and ns on the same images and masks")
    p.add_argument("--mask-kind", choices=(*MASK_KINDS, *LAMA_KINDS, "training"), default="center",
                   help="default: center; training: the holes the learned METHOD was trained on, drawn from --seed "
                        "(CE / cascade: its centre hole; GLCIC: its random rectangles; DeepFill: its random boxes; "
                        "pconv: free-form strokes; deepfill_v2: strokes and a box; --ratio is not used); "
                        f"{', '.join(LAMA_KINDS)}: LaMa's fixed free-form evaluation set of that kind (drawn once "
                        "from --seed, saved under runs/eval_masks; --ratio is not used), scored also per 10 %% "
                        "hole-area bin")
    p.add_argument("--ratio", type=float, default=0.25, help="hole area / image area, in (0, 1) (default 0.25)")
    p.add_argument("--split", choices=("test", "val", "all"), default="test",
                   help="test: the 10 %% test split of the folder, as the notebooks (default); val: the 10 %% "
                        "validation split (seed --seed), disjoint from both the training and the test split: choose "
                        "settings on it, report on test; all: every image of --data (a folder of held-out images of "
                        "your own)")
    p.add_argument("--patch-size", type=int, default=None,
                   help="patchmatch: side of its patches, odd, at least 3 (default 7)")
    p.add_argument("--nn-split", choices=("auto", "train", "all"), default="auto",
                   help="--method nn: which images of its --checkpoint folder are its database: train: the 80 %% "
                        "training split (seed --seed), disjoint from the test split scored; all: every image; auto "
                        "(default): train when --checkpoint is the --data folder, else all. Images scored that are "
                        "in the database are refused (they would be found and pasted back)")
    p.add_argument("--num-images", type=int, default=100,
                   help="at most this many images, a seeded subset of the split (default 100)")
    p.add_argument("--size", type=int, default=None,
                   help="side of the square images (resize + centre crop); default: the model's training size, "
                        "else 128")
    p.add_argument("--seed", type=int, default=0, help="seeds the split and the masks (default 0)")
    p.add_argument("--lpips", action=argparse.BooleanOptionalAction, default=None,
                   help="score LPIPS (default: when its weights are found)")
    p.add_argument("--json", type=Path, default=None, help="also write the rows and their provenance to this file")
    p.add_argument("--batch-size", type=int, default=16, help="images per method call (default 16)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: cuda when present, else cpu")
    p.set_defaults(func=run_evaluate)
    return p


def run_evaluate(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from .. import data, masks, metrics, report
    from ..comparison import scores_by_area
    from ..validation import check_ratio

    _check_positive(args, "num_images", "size", "batch_size")
    try:
        check_ratio(args.ratio, "--ratio")
    except (TypeError, ValueError) as e:
        raise _UsageError(str(e)) from e
    if args.json is not None:
        _check_output(args.json, "--json")
    _check_device(args.device)
    if args.data is not None:
        _check_data(args.data)
    options = _patch_option(args)
    if args.method == "nn":
        options["split"] = _nn_split(args)
    inpainter = _load_method(args.method, args.checkpoint, args.device, args.seed, **options)
    size = args.size or inpainter.image_size or 128
    try:
        with warnings.catch_warnings(record=True) as caught:     # skipped unreadable files, a mask set redrawn
            warnings.simplefilter("always")
            dataset, where = _evaluate_dataset(args, size)
            generator = torch.Generator().manual_seed(args.seed)
            if args.mask_kind == "training":
                from ..inference import training_masks

                mask, holes = training_masks(inpainter, len(dataset), generator)              # (N, 1, s, s)
                mask = masks.resize_mask(mask, size)                   # the model's holes at another --size
            elif args.mask_kind in masks.LAMA_KINDS:
                mask = masks.eval_mask_set(args.mask_kind, size, n=len(dataset), seed=args.seed)  # (N, 1, S, S)
            else:
                mask = masks.make_mask(args.mask_kind, size, args.ratio, batch=len(dataset),
                                       generator=generator)                                  # (N, 1, S, S)
    except ValueError as e:
        raise _UsageError(str(e)) from e
    _warnings_to_stderr("evaluate", caught)
    if args.method == "nn":
        _check_not_in_database(inpainter, dataset, args.checkpoint)
    if args.json is not None:                                  # not one of the files it is computed from
        read = {**{f"image {p}": p for p in getattr(dataset, "files", [])},
                **{f"checkpoint file {p}": p for p in _checkpoint_files(inpainter)}}
        _check_output(args.json, "--json", read)
    lpips_model: Any = False
    if args.lpips is not False:
        try:
            lpips_model = metrics.load_lpips()
        except FileNotFoundError as e:
            if args.lpips:
                raise _UsageError(f"--lpips: {e}") from e
            print(f"inpaint evaluate: LPIPS left out (its weights are not here; --no-lpips silences this): "
                  f"{str(e).splitlines()[0]}", file=sys.stderr)
        except (OSError, ValueError, zipfile.BadZipFile, EOFError) as e:        # a weights file that cannot be read
            raise _UsageError(f"--lpips: the LPIPS weights cannot be read ({type(e).__name__}: {e}); "
                              "replace the file, or pass --no-lpips") from e
    methods = {args.method: inpainter}
    if args.baselines:
        methods.update({b: _load_method(b, None, "cpu", args.seed) for b in ("telea", "ns") if b != args.method})

    try:
        images = data.first_images(dataset, len(dataset))                         # (N, 3, S, S)
    except data.ImageReadError as e:                                              # changed since it was checked
        raise _UsageError(str(e)) from e
    with warnings.catch_warnings():                  # failed images are listed below the table instead
        warnings.simplefilter("ignore", metrics.ScoringFailureWarning)
        scores, _ = metrics.score_methods(methods, images, mask, conventions=("seed000", "seed002"),
                                          lpips_model=lpips_model, batch_size=args.batch_size,
                                          progress=sys.stderr.isatty())
    rows = metrics.mean_rows(scores)
    lama = args.mask_kind in masks.LAMA_KINDS
    by_area = None
    if lama:
        by_area = []
        for name, per_image in scores.items():
            ok = metrics.scored_only(scores, name)
            by_area += [{"method": name, **row} for row in
                        scores_by_area({k: v[ok] for k, v in per_image.items()}, mask.expand(len(ok), -1, -1, -1)[ok])]
    achieved = float(masks.area_ratio(mask).mean())
    if args.mask_kind == "training":
        mask_text = f"{args.method}'s training holes: {holes} (mean ratio {achieved:.3f}), seed {args.seed}"
    elif lama:
        mask_text = (f"LaMa's {args.mask_kind} free-form evaluation set ({len(images)} masks drawn from seed "
                     f"{args.seed}, mean ratio {achieved:.3f})")
    else:
        mask_text = f"{args.mask_kind} holes, ratio {args.ratio:g} (achieved {achieved:.3f}), seed {args.seed}"
    split = f"{ {'test': 'test split', 'val': 'validation split'}.get(args.split, 'every image')} (seed {args.seed})"
    print(f"inpaint evaluate: {where}, {split}, {len(images)} images {size}x{size}; "
          f"{mask_text}; {report.hardware()}")
    loss_features = (inpainter.info.get("config") or {}).get("loss_features")   # pconv: its losses' network
    if "checkpoint" in inpainter.info:
        print(f"{args.method}: checkpoint {inpainter.info['checkpoint']}, step {inpainter.info['step']}"
              + (f", perceptual and style losses on {loss_features} features" if loss_features else ""))
    if args.method == "nn":
        print(f"nn: its database is {inpainter.info['train']}, {inpainter.info['train_images']} images")
    print("hole: PSNR dB, SSIM, L1 and L2 in % of [0, 1] (Nanavati and Patel), MSE, L1 and TV on 0-255 "
          "(Biradar et al.); image: PSNR, SSIM")
    print(report.format_table(rows, [c for c in EVALUATE_COLUMNS if c in rows[0]]))
    for row in rows:                                  # images a method could not fill: named, never dropped silently
        if row.get("failed"):
            print(f"{row['method']}: scored on {row['n']} of {row['of']} images; could not fill "
                  + "; ".join(f"image {f['image']} ({_image_name(dataset, f['image'])}): {f['reason']}"
                              for f in row["failed"]))
    if by_area:
        print("by hole-area bin (LaMa's protocol; each mean beside its n):")
        print(report.format_table(by_area, [c for c in ("area_bin", "method", "n", "achieved", "psnr_hole",
                                                        "lpips_hole", "l1_pct_hole") if c in by_area[0]]))
    if args.json is not None:
        record = {"name": args.json.stem, "rows": rows,
                  **_provenance(argv, method=args.method, training=_training_record(inpainter),
                                checkpoint=inpainter.info.get("checkpoint"),
                                step=inpainter.info.get("step"), data=where,
                                **({"nn_database": inpainter.info["train"]} if args.method == "nn" else {}),
                                split=f"{args.split} (seed {args.seed})",
                                image_size=size, num_images=len(images), mask=mask_text, mask_kind=args.mask_kind,
                                ratio=None if args.mask_kind == "training" or lama else args.ratio,
                                **({"by_area": by_area} if lama else {}),
                                **({"loss_features": loss_features} if loss_features else {}),
                                achieved_ratio=achieved, seed=args.seed,
                                lpips=lpips_model is not False)}
        report.write_json(args.json, record)              # strict JSON: inf as "inf" (report.NON_FINITE)
        print(f"results -> {args.json}")
    return 0


def _image_name(dataset: Any, index: int) -> str:
    """The file name of image ``index`` of the split scored, or ``#index`` for a dataset without files."""
    files = getattr(dataset, "files", None)
    try:
        return Path(files[index]).name if files is not None else f"#{index}"
    except (IndexError, TypeError):
        return f"#{index}"


def _evaluate_dataset(args: argparse.Namespace, size: int) -> tuple[Any, str]:
    """The split ``inpaint evaluate`` scores (``--split``: the test split or every image), and where it comes
    from (for the report)."""
    from .. import data

    if args.data is not None:
        recipe = _data_recipe(args.data, args.preprocess)       # the folder's dataset recipe, as the notebooks
        dataset = data.ImageFolder(args.data, size=size, preprocess=recipe.preprocessing, crop=recipe.crop,
                                   split=args.split, seed=args.seed, max_images=args.num_images)
        return dataset, f"folder {args.data}, {recipe.describe()}"
    source = data.find_source(None, args.collection, verbose=False)
    mode = source.preprocessing if args.preprocess == "auto" else args.preprocess
    dataset = source.dataset(size=size, preprocess=mode, split=args.split, seed=args.seed,
                             max_images=args.num_images)
    return dataset, source.summary().removeprefix("data source: ")


def _nn_split(args: argparse.Namespace) -> str:
    """The split of its folder that ``nn`` searches (``--nn-split``; ``auto``: the training split when that
    folder is the one scored)."""
    if args.nn_split != "auto":
        return args.nn_split
    if args.checkpoint is not None and args.data is not None and Path(args.checkpoint).is_dir() \
            and Path(args.checkpoint).resolve() == args.data.resolve():
        return "train"
    return "all"


def _check_not_in_database(inpainter: Any, dataset: Any, checkpoint: str | None) -> None:
    """Refuse to score ``nn`` on images of its own database: it would find each one and paste it back (PSNR
    infinite), a leak no table should show."""
    def identity(path: Any) -> tuple[int, int] | None:                 # one file after links, hard links too
        try:
            st = Path(path).stat()
        except OSError:
            return None
        return st.st_dev, st.st_ino

    database = {identity(p) for p in inpainter.info.get("train_files", [])} - {None}
    if not database:
        return
    leaked = [p for p in getattr(dataset, "files", []) if identity(p) in database]
    if leaked:
        raise _UsageError(f"--method nn --checkpoint {checkpoint}: {len(leaked)} of the {len(dataset)} images scored "
                          f"are in its database ({inpainter.info['train']}; e.g. {Path(leaked[0]).name}), so it "
                          "would paste them back (PSNR inf); score the test split of the same folder with "
                          "--nn-split train, or give a database without them")


def _checkpoint_files(inpainter: Any) -> list[Path]:
    """The files of the checkpoint folder a learned method was loaded from (none for the others)."""
    folder = inpainter.info.get("checkpoint")
    return sorted(p for p in Path(folder).iterdir() if p.is_file()) if folder else []
