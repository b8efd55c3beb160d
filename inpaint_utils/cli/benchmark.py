"""``inpaint benchmark --methods A,B,...`` (part of :mod:`inpaint_utils.cli`): ms per image of each
method."""
from __future__ import annotations

import argparse
from typing import Any, Sequence

from .methods import aliases_help, canonical_method
from .shared import DEVICES, _DIFFUSION, _UsageError, _check_device, _check_positive, _load_method


def add_benchmark_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark", help="time the methods (ms per image)",
        description="Time each method on a batch of random images with one seeded square hole (25 %%): one "
                    "warm-up call, then the median of --repeats calls (CUDA synchronised around each), end to end "
                    "from CPU tensors as `inpaint fill` runs them. Prints ms per image and images per second.")
    p.add_argument("--methods", required=True, help=f"comma-separated, e.g. telea,ns,ce ({aliases_help()})")
    p.add_argument("--checkpoint", action="append", default=[], metavar="METHOD=PATH",
                   help="the checkpoint (or model folder) of a method; repeat for several")
    p.add_argument("--size", type=int, default=128, help="image side (default 128)")
    p.add_argument("--batch", type=int, default=8, help="images per call (default 8)")
    p.add_argument("--repeats", type=int, default=5, help="timed calls per method (default 5)")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--seed", type=int, default=0, help="seeds the images and the hole")
    p.set_defaults(func=run_benchmark)
    return p


def run_benchmark(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import torch

    from .. import config, masks, report
    from ..inference import LEARNED, METHODS as FILL_METHODS

    _check_positive(args, "size", "batch", "repeats")
    names = list(dict.fromkeys(canonical_method(m.strip()) for m in args.methods.split(",") if m.strip()))
    unknown = [m for m in names if m not in FILL_METHODS]
    if not names or unknown:
        raise _UsageError(f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(FILL_METHODS)}")
    checkpoints: dict[str, str] = {}
    for item in args.checkpoint:
        method, sep, path = item.partition("=")
        method = canonical_method(method)
        if not sep or not path or method not in names:
            raise _UsageError(f"--checkpoint {item!r}: expected METHOD=PATH with METHOD one of --methods "
                              f"({', '.join(names)})")
        checkpoints[method] = path
    _check_device(args.device)
    device = config.get_device(args.device)
    inpainters = {m: _load_method(m, checkpoints.get(m), args.device, args.seed) for m in names}
    generator = torch.Generator().manual_seed(args.seed)
    try:
        images = torch.rand(args.batch, 3, args.size, args.size, generator=generator)      # (B, 3, S, S)
        mask = masks.make_mask("square", args.size, 0.25, generator=generator)           # (1, 1, S, S)
    except ValueError as e:
        raise _UsageError(f"--size {args.size}: {e}") from e

    rows = []
    for name, inpainter in inpainters.items():
        on = device.type if name in LEARNED or name in _DIFFUSION else "cpu"     # the baselines run on the CPU
        seconds = report.median_seconds(lambda: inpainter(images, mask), args.repeats, on)
        rows.append({"method": name, "device": on, "size": args.size, "batch": args.batch,
                     "ms_per_batch": 1000 * seconds, "ms_per_image": 1000 * seconds / args.batch,
                     "images_per_s": args.batch / seconds})
    print(f"inpaint benchmark: {args.batch} random images {args.size}x{args.size}, one square hole (25 %), "
          f"median of {args.repeats} calls after a warm-up; {report.hardware()}")
    print(report.format_table(rows))
    return 0
