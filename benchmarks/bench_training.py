"""Training speed per model: float32 against bfloat16 autocast, contiguous against channels_last (issue 23),
or without and with the decoded-image cache (``--compare cache``); images/s and the share of each step spent
waiting for data.

For the Context Encoder (notebook 02), the cascade CE (notebook 03, its 128 CE behind the frozen 64 CE),
GLCIC (notebook 04, the joint phase: completion network and discriminator both updated), DeepFill v1
(notebook 05, hole mode, five critic steps per generator step), partial convolutions and DeepFill v2
(notebook 08; PConv's VGG-16 with random weights: the same network, so the same speed), at the sizes of a
profile of :data:`inpaint_utils.config.PROFILES` (``--profile``, default ``smoke``: image size, widths, batch
size, torch threads), this trains ``--steps`` steps with :func:`inpaint_utils.train.train` on the same real
images (``--data DIR``, else :func:`inpaint_utils.data.find_source`: the shared folder's ``faces_small``
collection when present, else scikit-image's samples), once per setting:

* ``--compare precision`` (default): the four settings of ``TrainConfig(cpu_precision, memory_format)``,
  ``fp32`` / ``bf16`` x ``contiguous`` / ``channels_last`` (on CUDA ``amp=False`` / ``amp=True,
  amp_dtype="bf16"``), on images decoded once into memory first; ``vs float32`` is each row's images/s over
  the float32 contiguous row's. The line above the table says whether this CPU has native BF16
  (:func:`inpaint_utils.train.native_bf16`, and what it read): without it, bfloat16 is emulated and slow.
  ``inpaint_utils.train.CPU_FASTER`` (what ``cpu_precision="auto"`` uses) is filled from this table.
* ``--compare cache``: ``TrainConfig(cache="none")``, every batch read from the files (decode, resize, crop),
  then ``memory``: the images decoded once into uint8 first (:class:`inpaint_utils.data.DecodedImages`,
  ``fill()``; its time is the ``fill s`` column), then the same steps on the cache.

Each setting follows an untimed warm-up run of ``--warmup`` steps (imports, oneDNN primitives, CUDA
kernels, allocator). The table gives, per model, setting and device, images/s over the loop (``train``'s
``loop_s``: the steps with their loading, without set-up and the final checkpoint) and the share of the loop
spent getting batches (``data_wait_share``: the loader, the copy to the device, the loop's crops and flips).
On CUDA the copy and the crops are queued asynchronously, so the share there is the time the GPU was left
waiting for the host. Run from the checkout::

    .venv/bin/python benchmarks/bench_training.py                              # CPU, and CUDA when present
    .venv/bin/python benchmarks/bench_training.py --quick                      # 2 steps, 24 images, a check
    .venv/bin/python benchmarks/bench_training.py --device cuda --profile gpu --steps 20
    .venv/bin/python benchmarks/bench_training.py --compare cache --device cpu --steps 2 --models ce,deepfill

Measured on 2026-12-08, ``--device cpu --profile cpu --steps 20 --warmup 2 --threads 1`` (cpu profile: 64 px,
its batch sizes; faces_small: 800 training faces), on a 2-core AMD EPYC with AVX512-BF16 (``/proc/cpuinfo`` flag
``avx512_bf16``; AVX-512, no AMX), nothing else running, torch 2.14.1::

    model                precision  memory format  device  batch  size  threads  images/s  data wait %  vs float32
    -------------------  ---------  -------------  ------  -----  ----  -------  --------  -----------  ----------
    CE                   float32    contiguous     cpu        16    64        1     112.1          1.0  1.00x
    CE                   bfloat16   contiguous     cpu        16    64        1     126.9          1.1  1.13x
    CE                   float32    channels_last  cpu        16    64        1     124.5          1.1  1.11x
    CE                   bfloat16   channels_last  cpu        16    64        1     149.4          1.3  1.33x
    cascade CE           float32    contiguous     cpu        16    64        1      97.2          1.0  1.00x
    cascade CE           bfloat16   contiguous     cpu        16    64        1     117.8          1.0  1.21x
    cascade CE           float32    channels_last  cpu        16    64        1      97.6          0.9  1.00x
    cascade CE           bfloat16   channels_last  cpu        16    64        1     123.2          1.1  1.27x
    GLCIC (joint phase)  float32    contiguous     cpu        16    64        1     106.8          0.8  1.00x
    GLCIC (joint phase)  bfloat16   contiguous     cpu        16    64        1     139.9          1.1  1.31x
    GLCIC (joint phase)  float32    channels_last  cpu        16    64        1     124.6          1.0  1.17x
    GLCIC (joint phase)  bfloat16   channels_last  cpu        16    64        1     157.0          1.3  1.47x
    DeepFill v1          float32    contiguous     cpu         8    64        1     127.2          1.1  1.00x
    DeepFill v1          bfloat16   contiguous     cpu         8    64        1     124.9          1.1  0.98x
    DeepFill v1          float32    channels_last  cpu         8    64        1     148.3          1.3  1.17x
    DeepFill v1          bfloat16   channels_last  cpu         8    64        1     178.7          1.6  1.40x
    PConv                float32    contiguous     cpu         6    64        1      58.4          0.9  1.00x
    PConv                bfloat16   contiguous     cpu         6    64        1      69.7          1.1  1.19x
    PConv                float32    channels_last  cpu         6    64        1      59.2          1.0  1.01x
    PConv                bfloat16   channels_last  cpu         6    64        1      65.4          1.1  1.12x
    DeepFill v2          float32    contiguous     cpu         8    64        1      64.3          0.8  1.00x
    DeepFill v2          bfloat16   contiguous     cpu         8    64        1      80.3          1.0  1.25x
    DeepFill v2          float32    channels_last  cpu         8    64        1      64.8          0.9  1.01x
    DeepFill v2          bfloat16   channels_last  cpu         8    64        1      74.2          0.9  1.15x

What it shows: with native BF16, bfloat16 autocast is faster than float32 for every model in its better layout:
1.19x-1.47x (CE 1.33x, cascade 1.27x, GLCIC 1.47x and DeepFill v1 1.40x with channels_last; PConv 1.19x and
DeepFill v2 1.25x contiguous). ``CPU_FASTER`` records it, so ``cpu_precision="auto"`` trains five of them in
bfloat16 on such a CPU, and the cpu profile's step counts were raised by these factors (the same minutes there).
Not DeepFill v1: in bfloat16 contiguous it is not faster (0.98x), and with channels_last its critic's weights
turned NaN after 2 steps of a 16-px run (WGAN-GP's double backward; 30 steps at 32 and 64 px were finite), so it
stays float32. The
gains are far from the 2x of bfloat16's halved bytes; per layer this was not profiled (autocast keeps the losses,
normalisations and the optimizer step in float32, and adds casts, so only the convolutions and matrix products get
faster). Trained for the
same steps, bfloat16 reached the same test scores as float32 (the Context Encoder 17.98 vs 17.99 dB in the hole,
LPIPS 0.153 vs 0.149; GLCIC in README's results section).

Measured before, on 2026-12-08, ``--device cpu --steps 3 --warmup 1 --threads 1`` (smoke profile, faces_small: 800
training faces), on the 2-core AMD EPYC (Zen 3, AVX2: no native BF16) shared with other jobs (load 4-6 before
and after: a direction, not a precise ratio), torch 2.14.1::

    model                precision  memory format  device  batch  size  threads  images/s  data wait %  vs float32
    -------------------  ---------  -------------  ------  -----  ----  -------  --------  -----------  ----------
    CE                   float32    contiguous     cpu        16   128        1      18.9          1.1  1.00x
    CE                   bfloat16   contiguous     cpu        16   128        1       1.3          0.1  0.07x
    CE                   float32    channels_last  cpu        16   128        1      30.8          1.3  1.63x
    CE                   bfloat16   channels_last  cpu        16   128        1       1.0          0.0  0.05x
    cascade CE           float32    contiguous     cpu         8   128        1      60.6          3.3  1.00x
    cascade CE           bfloat16   contiguous     cpu         8   128        1       5.5          0.2  0.09x
    cascade CE           float32    channels_last  cpu         8   128        1      79.0          3.2  1.30x
    cascade CE           bfloat16   channels_last  cpu         8   128        1      11.0          0.4  0.18x
    GLCIC (joint phase)  float32    contiguous     cpu         8   128        1      27.1          1.0  1.00x
    GLCIC (joint phase)  bfloat16   contiguous     cpu         8   128        1       0.7          0.1  0.03x
    GLCIC (joint phase)  float32    channels_last  cpu         8   128        1       8.3          0.9  0.31x
    GLCIC (joint phase)  bfloat16   channels_last  cpu         8   128        1       1.6          0.2  0.06x
    DeepFill v1          float32    contiguous     cpu         8    64        1      28.3          0.9  1.00x
    DeepFill v1          bfloat16   contiguous     cpu         8    64        1       1.7          0.0  0.06x
    DeepFill v1          float32    channels_last  cpu         8    64        1      33.4          0.9  1.18x
    DeepFill v1          bfloat16   channels_last  cpu         8    64        1       4.6          0.3  0.16x
    PConv                float32    contiguous     cpu         4    64        1       1.3          0.1  1.00x
    PConv                bfloat16   contiguous     cpu         4    64        1       0.1          0.0  0.05x
    PConv                float32    channels_last  cpu         4    64        1       1.7          0.2  1.34x
    PConv                bfloat16   channels_last  cpu         4    64        1       0.1          0.0  0.06x
    DeepFill v2          float32    contiguous     cpu         8    64        1       5.1          1.0  1.00x
    DeepFill v2          bfloat16   contiguous     cpu         8    64        1       0.7          0.0  0.14x
    DeepFill v2          float32    channels_last  cpu         8    64        1       6.4          0.4  1.25x
    DeepFill v2          bfloat16   channels_last  cpu         8    64        1       1.2          0.0  0.23x

What it shows: without native BF16, bfloat16 autocast is emulated and 4-30x slower than float32 for every
model, so ``cpu_precision="auto"`` is float32 here. channels_last was faster in float32 for five of the six
models (1.18x-1.63x) and much slower for GLCIC (0.31x; not profiled); ``CPU_FASTER`` in
:mod:`inpaint_utils.train.precision` records that. (DeepFill v1 / v2 were measured with the contextual attention
before issue 23's faster layer.) A CPU with native BF16 (AVX512-BF16 or AMX) was not available to measure.

Measured on 2026-12-02, ``--compare cache --device cpu --steps 20`` (smoke profile, faces_small: 800 training
faces of 89 x 109 px, resized to 128 or 64 px), on the 2-core CPU with nothing else running, torch 2.14.1::

    model                cache   device  batch  size  threads  images/s  data wait %  fill s  speed-up
    -------------------  ------  ------  -----  ----  -------  --------  -----------  ------  --------
    CE                   none    cpu        16   128        2      42.6          5.3
    CE                   memory  cpu        16   128        2      48.4          1.5  1.1     1.14x
    cascade CE           none    cpu         8   128        1      62.9          9.9
    cascade CE           memory  cpu         8   128        1      61.5          3.1  1.1     0.98x
    GLCIC (joint phase)  none    cpu         8   128        1      19.0          3.1
    GLCIC (joint phase)  memory  cpu         8   128        1      19.1          1.0  0.9     1.00x
    DeepFill v1          none    cpu         8    64        1       7.7          4.5
    DeepFill v1          memory  cpu         8    64        1       8.4          0.8  0.9     1.09x

What it shows: reading the files cost 3-10 % of a step (most for the cascade, whose steps are the shortest);
with the cache 0.8-3.1 %, under 5 % for every model. The cascade's share was 5.7 % with the cache (same
machine, idle, an hour earlier) until the loop's crops and flips stopped building their sampling grid with
``affine_grid`` (a matrix product per pixel: 4 of the crop's 8 ms for 8 images of 128 px on one thread) and
built it from one row and one column of coordinates (``data.preprocessing._axis_aligned_grid``; the same grid
up to rounding): the crop now takes ~3 ms. DeepFill's 8 images/s count every batch of a step (five critic
batches and the generator's). The speed-ups (0.98x-1.14x) are within the machine's noise: what the cache
saves on these CPU-bound steps is the data-wait share. On a GPU a step takes milliseconds while decoding does
not get faster, so the share is larger there; not measured yet (``scripts/gpu_check.sh`` runs this).
"""
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

from inpaint_utils import cli, config, data, report, train

FILL = (0.5, 0.5, 0.5)   # the hole's fill colour (the notebooks use the mean colour; no effect on the speed)


def _recipe(method: str) -> Callable[[dict[str, Any]], tuple[Any, str, dict[str, Any]]]:
    """A builder of ``inpaint train METHOD``'s task (:data:`inpaint_utils.cli.METHODS`)."""
    def build(settings: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
        recipe = cli.METHODS[method].build({**settings, "fill": FILL}, None, 0)
        return recipe.task, recipe.model_name, recipe.model_config
    return build


def _cascade(settings: dict[str, Any]) -> tuple[Any, str, dict[str, Any]]:
    """Notebook 03's centre cascade: fresh 64 and 128 CEs of the profile's widths, the 128 CE trained."""
    from inpaint_utils.models import (CascadeConfig, CascadeContextEncoder, CascadeTask,
                                      ContextEncoderDiscriminator)

    cfg = CascadeConfig.build("center", settings["image_size"], overlap=0, base_channels=settings["base_channels"],
                              bottleneck_dim=settings["bottleneck_dim"], fill=FILL)
    cascade = CascadeContextEncoder(cfg, seed=0)
    task = CascadeTask(cascade, ContextEncoderDiscriminator(cfg.ce128, seed=1), lr=settings["lr"])
    return task, CascadeContextEncoder.model_name, cfg.to_dict()


def _profile(notebook: str) -> Callable[[str], dict[str, Any]]:
    return lambda profile: config.settings(notebook, profile)


def _method_profile(method: str) -> Callable[[str], dict[str, Any]]:
    return lambda profile: cli.method_settings(method, profile)


#: --models name -> (label, the profile's settings, task builder, overrides)
MODELS: dict[str, tuple[str, Callable[[str], dict[str, Any]], Callable[[dict[str, Any]], tuple[Any, str, dict[str, Any]]],
                        dict[str, Any]]] = {
    "ce": ("CE", _profile("02_context_encoder"), _recipe("ce"), {}),
    "cascade": ("cascade CE", _profile("03_cascade_ce_nsd"), _cascade, {}),
    "glcic": ("GLCIC (joint phase)", _profile("04_glcic"), _recipe("glcic"), {"t_c": 0, "t_d": 0}),
    "deepfill": ("DeepFill v1", _profile("05_contextual_attention"), _recipe("deepfill"), {}),
    "pconv": ("PConv", _method_profile("pconv"), _recipe("pconv"), {"vgg_weights": "random"}),
    "v2": ("DeepFill v2", _method_profile("deepfill_v2"), _recipe("deepfill_v2"), {}),
}
#: --compare precision: (precision, memory format) of each row, the first the reference of ``vs float32``
SETTINGS = (("fp32", "contiguous"), ("bf16", "contiguous"), ("fp32", "channels_last"), ("bf16", "channels_last"))
PRECISION_COLUMNS = ["model", "precision", "memory format", "device", "batch", "size", "threads", "images/s",
                     "data wait %", "vs float32"]
CACHE_COLUMNS = ["model", "cache", "device", "batch", "size", "threads", "images/s", "data wait %", "fill s",
                 "speed-up"]


def _devices(choice: str) -> list[str]:
    if choice == "all":
        return ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
    if choice == "auto":
        return [config.get_device("auto").type]
    if choice == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA GPU is visible here (use --device cpu or all)")
    return [choice]


def _images(args: argparse.Namespace, size: int) -> Any:
    if args.data is not None:
        return data.ImageFolder(args.data, size=size, preprocess="256", split="train", max_images=args.max_images)
    source = data.find_source(collection=args.collection, verbose=False)
    return source.dataset(size=size, split="train", max_images=args.max_images)


def _precision_settings(device: str, precision: str, layout: str) -> dict[str, Any]:
    """The TrainConfig fields of one row: ``cpu_precision`` on the CPU, AMP (bf16) on other devices."""
    if device == "cpu":
        return {"cpu_precision": precision, "memory_format": layout}
    return {"amp": precision == "bf16", "amp_dtype": "bf16", "memory_format": layout}


def _run(build: Callable, settings: dict[str, Any], dataset: Any, cache: str, device: str, steps: int, batch: int,
         num_workers: int, run_dir: Path, **precision: Any) -> dict[str, Any]:
    task, model_name, model_config = build(settings)
    cfg = train.TrainConfig(num_steps=steps, batch_size=batch, seed=0, device=device, log_every=max(steps, 1),
                            sample_every=None, checkpoint_every=None, keep_last=1, run_dir=run_dir, progress=False,
                            tensorboard=False, num_workers=num_workers, cache=cache, **precision)
    return train.train(task, dataset, cfg, model_name=model_name, model_config=model_config, resume=False)


def _loop_speed(out: dict[str, Any]) -> float:
    """Images/s over the loop (``loop_s``, without the set-up and the final checkpoint), every batch of a step
    counted (DeepFill v1: five critic batches and the generator's)."""
    return out["images_per_s"] * out["wall_time_s"] / out["loop_s"] if out["loop_s"] > 0 else 0.0


def _cache_rows(args: argparse.Namespace, common: dict[str, Any], build: Callable, settings: dict[str, Any],
                dataset: Any, run_dir: Path) -> list[dict[str, Any]]:
    """The ``none`` and ``memory`` rows of one model (``--compare cache``)."""
    rows, before = [], None
    for cache in ("none", "memory"):
        fill_s = None
        source = dataset
        if cache == "memory":
            started = time.perf_counter()
            source = data.DecodedImages(dataset).fill(num_workers=common["num_workers"])
            fill_s = time.perf_counter() - started
        out = _run(build, settings, source, cache if cache == "none" else "auto", common["device"], args.steps,
                   common["batch"], common["num_workers"], run_dir / cache)
        speed = _loop_speed(out)
        rows.append({**common["row"], "cache": cache, "images/s": speed, "data wait %": 100 * out["data_wait_share"],
                     "fill s": "" if fill_s is None else f"{fill_s:.1f}",
                     "speed-up": "" if before is None else f"{speed / before:.2f}x"})
        before = speed
    return rows


def _precision_rows(args: argparse.Namespace, common: dict[str, Any], build: Callable, settings: dict[str, Any],
                    dataset: Any, run_dir: Path) -> list[dict[str, Any]]:
    """The four (precision, memory format) rows of one model (``--compare precision``), on a memory cache."""
    source = data.DecodedImages(dataset).fill(num_workers=common["num_workers"])
    rows, reference = [], None
    device = common["device"]
    for precision, layout in SETTINGS:
        chosen = _precision_settings(device, precision, layout)
        folder = run_dir / f"{precision}_{layout}"
        if args.warmup:
            _run(build, settings, source, "auto", device, args.warmup, common["batch"], common["num_workers"],
                 folder / "warmup", **chosen)
        out = _run(build, settings, source, "auto", device, args.steps, common["batch"], common["num_workers"],
                   folder / "timed", **chosen)
        speed = _loop_speed(out)
        reference = speed if reference is None else reference
        rows.append({**common["row"], "precision": out["precision"], "memory format": out["memory_format"],
                     "images/s": speed, "data wait %": 100 * out["data_wait_share"],
                     "vs float32": f"{speed / reference:.2f}x"})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", choices=("auto", "cpu", "cuda", "all"), default="all",
                        help="all: the CPU, and CUDA when present (default); auto: CUDA when present, else the CPU")
    parser.add_argument("--compare", choices=("precision", "cache"), default="precision",
                        help="precision: float32 / bfloat16 x contiguous / channels_last (default); cache: without "
                             "and with the decoded-image cache")
    parser.add_argument("--steps", type=int, default=20, help="timed training steps per run (default 20)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before each timed run (default 2)")
    parser.add_argument("--quick", action="store_true",
                        help="a quick check: 2 steps, 1 warm-up step, at most 24 images (speeds are only indicative)")
    parser.add_argument("--models", default=",".join(MODELS), help=f"comma-separated, of {', '.join(MODELS)}")
    parser.add_argument("--profile", choices=("smoke", "cpu", "gpu", "full"), default="smoke",
                        help="which PROFILES sizes (image size, widths, batch, threads) to use (default smoke)")
    parser.add_argument("--batch-size", type=int, default=None, help="instead of the profile's batch size")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads (default: the profile's 'threads' where it sets one, else torch's)")
    parser.add_argument("--num-workers", type=int, default=None,
                        help="loader worker processes (default: the profile's num_workers, else 0)")
    parser.add_argument("--data", type=Path, default=None, help="a folder of images (default: find_source)")
    parser.add_argument("--collection", default="faces_small", help="shared-folder collection (default faces_small)")
    parser.add_argument("--max-images", type=int, default=None, help="use at most this many training images")
    args = parser.parse_args()
    if args.quick:
        args.steps, args.warmup = 2, 1
        args.max_images = min(args.max_images or 24, 24)
    models = [m.strip() for m in args.models.split(",") if m.strip()]
    unknown = [m for m in models if m not in MODELS]
    if unknown or not models:
        raise SystemExit(f"--models: unknown {unknown or args.models!r}; choose from {', '.join(MODELS)}")
    for name in ("steps", "batch_size", "threads", "max_images"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise SystemExit(f"--{name.replace('_', '-')} must be at least 1, got {value}")
    if args.warmup < 0 or (args.num_workers is not None and args.num_workers < 0):
        raise SystemExit("--warmup and --num-workers must be 0 or more")

    default_threads = torch.get_num_threads()
    table = _cache_rows if args.compare == "cache" else _precision_rows
    rows, notes = [], []
    with tempfile.TemporaryDirectory(prefix="bench_training_") as tmp:
        for device in _devices(args.device):
            for model in models:
                label, profile, build, overrides = MODELS[model]
                settings = {**profile(args.profile), **overrides}
                batch = args.batch_size or settings["batch_size"]
                workers = args.num_workers if args.num_workers is not None else settings.get("num_workers", 0)
                torch.set_num_threads(args.threads or settings.get("threads") or default_threads)
                dataset = _images(args, settings["image_size"])
                run_dir = Path(tmp) / f"{device}_{model}"
                if args.warmup and args.compare == "cache":
                    _run(build, settings, dataset, "none", device, args.warmup, batch, workers, run_dir / "warmup")
                common = {"device": device, "batch": batch, "num_workers": workers,
                          "row": {"model": label, "device": device, "batch": batch, "size": settings["image_size"],
                                  "threads": torch.get_num_threads()}}
                done = table(args, common, build, settings, dataset, run_dir)
                rows.extend(done)
                print(report.format_table(done, digits=1), file=sys.stderr, flush=True)   # progress, as they come
                notes.append(f"{label}: {len(dataset)} training images at {settings['image_size']} px"
                             + (f", {workers} loader workers" if workers else ""))
    native, read = train.native_bf16()
    print(f"training speed ({args.compare}), {args.steps} steps per run, profile {args.profile}; {report.hardware()}")
    if args.compare == "precision":
        print(f"native BF16 on this CPU: {'yes' if native else 'no (bfloat16 is emulated)'} ({read})")
    print("; ".join(notes))
    columns = CACHE_COLUMNS if args.compare == "cache" else PRECISION_COLUMNS
    print(report.format_table(rows, columns, digits=1))


if __name__ == "__main__":
    main()
