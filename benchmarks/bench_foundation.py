"""Speed of the foundation: mask generators, metrics and the OpenCV baselines.

Prints one table (milliseconds, median of ``--repeat`` runs after one warm-up). Speed targets live
here, not in timed tests. Run from the checkout::

    .venv/bin/python benchmarks/bench_foundation.py            # CPU, batch 64 at 128x128
    .venv/bin/python benchmarks/bench_foundation.py --size 256 --batch 16
"""
from __future__ import annotations

import argparse
import statistics
import time
from typing import Callable

import torch

from inpaint_utils import baselines, masks, metrics, report


def _time(fn: Callable[[], object], repeat: int) -> float:
    fn()  # warm-up (lazy imports, caches)
    runs = []
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", type=int, default=128)
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    g = torch.Generator().manual_seed(0)
    b, s = args.batch, args.size
    image = torch.rand(b, 3, s, s, generator=g)
    mask = masks.make_mask("center", s, 0.25, batch=b)
    completed = (image + 0.05 * torch.randn(image.shape, generator=g)).clamp(0, 1)

    rows = []

    def add(what: str, fn: Callable[[], object], per: int = b) -> None:
        ms = _time(fn, args.repeat)
        rows.append({"what": what, "batch": per, "ms/batch": ms, "ms/image": ms / per})

    for kind in masks.MASK_KINDS:
        add(f"make_mask {kind} r=0.25", lambda k=kind: masks.make_mask(k, s, 0.25, batch=b, generator=g))
    add("make_input mosaic", lambda: masks.make_input(image, mask, "mosaic"))
    add("make_input hole_ns", lambda: masks.make_input(image, mask, "hole_ns"))
    for name in baselines.BASELINES:
        add(f"baseline {name}", lambda n=name: baselines.inpaint(image, mask, n))
    add("evaluate seed000 (no LPIPS)", lambda: metrics.evaluate(completed, image, mask, "seed000"))
    add("evaluate seed002 (no LPIPS)", lambda: metrics.evaluate(completed, image, mask, "seed002", lpips_model=False))
    try:
        model = metrics.load_lpips()
        add("lpips_distance hole", lambda: metrics.lpips_distance(completed, image, mask, region="hole", model=model))
    except FileNotFoundError as e:
        print(f"(LPIPS skipped: {str(e).splitlines()[0]})")

    print(f"image {s}x{s}, batch {b}, {torch.get_num_threads()} torch threads; {report.hardware()}")
    print(report.format_table(rows, digits=2))


if __name__ == "__main__":
    main()
