"""``inpaint train METHOD`` (part of :mod:`inpaint_utils.cli`): one process, or ``--nproc N`` through
torchrun, resuming the run when it has checkpoints."""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from pathlib import Path
from typing import Any, Sequence

from ..train.settings import CPU_PRECISIONS, MEMORY_FORMATS
from .methods import METHODS, PROFILE_NAMES, aliases_help, canonical_method, default_run_name, method_settings
from .records import write_train_record
from .shared import (PREPROCESS_CHOICES, PREPROCESS_HELP, _UsageError, _check_data, _check_device, _check_positive,
                     _data_recipe)

#: TrainConfig fields read from a method's settings when present there
_LOOP_KEYS = ("log_every", "sample_every", "checkpoint_every")


def add_train_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "train", help="train a model on a folder of images (one or several GPUs)",
        description="Train METHOD on the images under --data with the shared training loop; resumes the run "
                    "when runs/<run name> already holds checkpoints.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog="several machines: run on each (the same command, HOST = one of them)\n"
               "  torchrun --nnodes M --nproc-per-node G --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\\n"
               "           --rdzv_id RUN -m inpaint_utils.cli train METHOD --data DIR ...\n"
               "collectives time out after $INPAINT_DIST_TIMEOUT seconds (default 600)")
    p.add_argument("method", type=canonical_method, choices=list(METHODS), metavar="METHOD",
                   help="what to train, by the names of `inpaint fill` and `evaluate`: "
                        + "; ".join(f"{k} ({m.description})" for k, m in METHODS.items()) + f" ({aliases_help()})")
    p.add_argument("--data", required=True, type=Path, help="folder of training images (.jpg, .jpeg, .png; searched recursively)")
    p.add_argument("--preprocess", choices=PREPROCESS_CHOICES, default="auto", help=PREPROCESS_HELP)
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size, split over the processes (default: the profile's)")
    p.add_argument("--image-size", type=int, default=None, help="side of the square training images (default: the profile's)")
    p.add_argument("--lr", type=float, default=None,
                   help="learning rate (default: the profile's): ce its generator's (the discriminator's is 10x "
                        "smaller), deepfill and deepfill_v2 both networks', pconv the first phase's; glcic has none "
                        "(Adadelta)")
    p.add_argument("--run-name", default=None,
                   help="folder under runs/ (default: METHOD_PROFILE, with the long names context_encoder and "
                        "partial_conv for ce and pconv)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="smoke",
                   help="which numbers of the method's notebook profile to use (default: smoke)")
    p.add_argument("--split", choices=("all", "train"), default="all",
                   help="all: every image under --data (default); train: only the 80 %% training split of the "
                        "notebooks' seeded 80/10/10 split (seed --seed), so that `inpaint evaluate` scores the "
                        "held-out test split of the same folder")
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine: one per GPU, or CPU processes with --device cpu")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--cpu-precision", choices=CPU_PRECISIONS, default="auto",
                   help="on the CPU: fp32, bf16 (bfloat16 autocast; weights, optimizer state and checkpoints stay "
                        "float32) or auto (default): bf16 only on a CPU with native BF16 and for a model measured "
                        "faster in it (inpaint_utils.train.CPU_FASTER), else fp32; a GPU uses AMP as before")
    p.add_argument("--memory-format", choices=MEMORY_FORMATS, default="auto",
                   help="contiguous, channels_last, or auto (default: channels_last where measured faster for the "
                        "model on the CPU, else contiguous)")
    p.add_argument("--seed", type=int, default=0, help="seeds the networks, the data order and the masks")
    p.add_argument("--num-workers", type=int, default=None,
                   help="data-loading worker processes per training process (default: the profile's, else 0)")
    p.add_argument("--features", choices=("auto", "vgg16", "squeeze", "random"), default=None,
                   help="pconv only: the feature network of the perceptual and style losses: vgg16 (the paper's "
                        "pool1-pool3 of VGG-16 ImageNet; $INPAINT_VGG16, the shared folder, torch's cache or "
                        "torchvision's download), squeeze (SqueezeNet 1.1 ImageNet, LPIPS's backbone, available "
                        "offline: the substitute, labelled as such), auto (VGG-16 when present or downloadable, "
                        "else squeeze; on a resume, the checkpoint's), random (a random VGG-16: tests); default: "
                        "the profile's; recorded in the checkpoint and the results")
    p.add_argument("--from-checkpoint", type=Path, default=None, metavar="PATH",
                   help="resume from this checkpoint folder (default: the run's newest intact one); "
                        "its fill colour is kept")
    p.set_defaults(func=run_train)
    return p


def _relaunch(nproc: int, argv: Sequence[str], device: str) -> int:
    """Start ``nproc`` copies of this command through torchrun on this machine and wait for them."""
    import torch

    if device != "cpu" and torch.cuda.is_available() and nproc > torch.cuda.device_count():
        raise _UsageError(f"--nproc {nproc} but this machine has {torch.cuda.device_count()} GPU(s): one process "
                          f"per GPU (use --device cpu for CPU processes)")
    # the processes get the same arguments without --nproc (they know their place from torchrun's
    # environment; torchrun would also read --nproc as an abbreviation of its own --nproc-per-node)
    args = list(argv)
    for i, a in reversed(list(enumerate(args))):
        if a == "--nproc":
            del args[i:i + 2]
        elif a.startswith("--nproc="):
            del args[i]
    torchrun = ["--standalone", f"--nproc-per-node={nproc}", "-m", "inpaint_utils.cli", *args]
    shown = [sys.executable, "-m", "torch.distributed.run", *torchrun]
    print(f"inpaint: starting {nproc} processes: {shlex.join(shown)}", flush=True)
    return subprocess.call([sys.executable, "-c", _TORCHRUN, *torchrun])


#: ``python -m torch.distributed.run`` whose failure of a process is its exit status (the processes have said
#: why in one line each), not torchrun's ChildFailedError traceback
_TORCHRUN = """import sys
from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
from torch.distributed.run import main
try:
    main(sys.argv[1:])
except ChildFailedError as e:
    code = e.get_first_failure()[1].exitcode
    print(f"inpaint: {len(e.failures)} process(es) failed, the first with exit status {code} (its error is above)",
          file=sys.stderr)
    sys.exit(code if 0 < code < 256 else 1)
"""


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from .. import config, data, distributed, train
    from ..checkpoint import CheckpointError

    _check_positive(args, "steps", "batch_size", "image_size")
    if args.nproc < 1:
        raise _UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if args.num_workers is not None and args.num_workers < 0:
        raise _UsageError(f"--num-workers must be 0 or more, got {args.num_workers}")
    _check_device(args.device)
    _check_data(args.data)
    method = METHODS[args.method]
    settings = method_settings(args.method, args.profile)
    if args.features is not None:
        if "features" not in settings:
            raise _UsageError(f"--features is for pconv (its perceptual and style losses); {args.method} has none")
        settings["features"] = args.features
    if args.lr is not None:
        if not (args.lr > 0 and args.lr < float("inf")):
            raise _UsageError(f"--lr must be a positive number, got {args.lr}")
        if settings.get("lr") is None:
            raise _UsageError(f"--lr: {args.method} has no learning rate to set (its profile's optimizer sets none)")
    overrides = {"num_steps": args.steps, "batch_size": args.batch_size, "image_size": args.image_size,
                 "lr": args.lr}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    run_name = args.run_name or default_run_name(args.method, args.profile)
    _check_run_name(run_name)
    world_size = args.nproc if "LOCAL_RANK" not in os.environ else int(os.environ.get("WORLD_SIZE", "1"))
    batch = settings.get("batch_size")
    if isinstance(batch, int) and world_size > 1 and batch % world_size:
        given = "--batch-size" if args.batch_size is not None else f"the {args.profile} profile's batch size"
        raise _UsageError(f"{given} {batch} is not divisible by the {world_size} processes: the global batch is "
                          f"split equally (give a multiple of {world_size})")
    if args.from_checkpoint is not None and not args.from_checkpoint.is_dir():
        raise _UsageError(f"--from-checkpoint {args.from_checkpoint}: no such checkpoint folder")
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside torchrun: start the processes
        return _relaunch(args.nproc, argv, args.device)

    recipe_of_data = _data_recipe(args.data, args.preprocess, method.preprocess)   # the notebooks' recipe
    dataset = data.ImageFolder(args.data, size=settings.get("image_size"), preprocess=recipe_of_data.preprocessing,
                               crop=recipe_of_data.crop, split=args.split, seed=args.seed)
    if settings.get("threads"):                      # the profile's OpenMP threads (a shared CPU: often 1)
        import torch

        torch.set_num_threads(int(settings["threads"]))
    try:
        try:
            resume_from = _resume_checkpoint(args.from_checkpoint, config.runs_dir() / run_name)
        except CheckpointError as e:
            raise _UsageError(f"--from-checkpoint {args.from_checkpoint}: {_one_line(e)}" if args.from_checkpoint
                              else _one_line(e)) from e
        if resume_from is not None and "fill" in resume_from["config"]:
            settings["fill"] = resume_from["config"]["fill"]   # not recomputed: the data may have grown
        if resume_from is not None and "loss_features" in resume_from["config"]:
            settings["resumed_features"] = resume_from["config"]["loss_features"]   # the builder checks it
        try:
            recipe = method.build(settings, dataset, args.seed)
        except FileNotFoundError as e:               # weights the task needs (pconv's feature network), not here
            raise _UsageError(str(e)) from e
        except ValueError as e:                      # settings the model refuses (an --image-size it cannot take)
            raise _UsageError(_one_line(e)) from e
        train_config = train.TrainConfig(
            num_steps=settings["num_steps"], batch_size=settings["batch_size"], seed=args.seed, device=args.device,
            run_name=run_name, progress=sys.stderr.isatty(), cpu_precision=args.cpu_precision,
            memory_format=args.memory_format,
            num_workers=args.num_workers if args.num_workers is not None else settings.get("num_workers", 0),
            **{k: settings[k] for k in _LOOP_KEYS if k in settings})
        world = distributed.init_from_env(args.device)
        if world.is_main:
            print(f"inpaint train {args.method}: {len(dataset)} images from {args.data} at {settings.get('image_size')} px "
                  f"({recipe_of_data.describe()}), "
                  f"profile {args.profile}, {train_config.num_steps} steps, global batch {train_config.batch_size}"
                  + (f" over {world.world_size} processes" if world.enabled else "")
                  + f" -> {train_config.resolved_run_dir()}", flush=True)
        try:      # the command is recorded once the run is accepted (locked, its checkpoint of this model)
            summary = train.train(recipe.task, dataset, train_config, model_name=recipe.model_name,
                                  model_config=recipe.model_config,
                                  resume=args.from_checkpoint if args.from_checkpoint is not None else True,
                                  on_start=lambda: _write_train_command(train_config.resolved_run_dir(), argv, args,
                                                                        settings, dataset, recipe_of_data))
        except (train.RunLockedError, CheckpointError) as e:   # a held run, another model's or config's checkpoint
            raise _UsageError(_one_line(e)) from e
        if world.is_main:
            print(f"done: step {summary['step']}, {summary['wall_time_s']:.1f} s, {summary['images_per_s']:.1f} "
                  f"images/s on {summary['device']} x {summary['world_size']} ({summary['precision']}, "
                  f"{summary['memory_format']}: {summary['precision_why']}); losses {summary['losses']}\n"
                  f"checkpoint {summary['checkpoint']}\nmetrics {summary['metrics_csv']}", flush=True)
        return 0
    finally:
        distributed.shutdown()


def _one_line(error: BaseException) -> str:
    return "; ".join(line.strip() for line in str(error).splitlines() if line.strip())


def _check_run_name(name: str) -> None:
    """A run name :class:`inpaint_utils.train.TrainConfig` takes (a plain folder name), as a usage error."""
    from ..train import TrainConfig

    try:
        TrainConfig(num_steps=0, run_name=name)
    except ValueError as e:
        raise _UsageError(f"--run-name {name!r}: {_one_line(e)}") from None


def _write_train_command(run_dir: Path, argv: Sequence[str], args: argparse.Namespace, settings: dict[str, Any],
                         dataset: Any, recipe: Any) -> None:
    """Record in ``run_dir/train_command.json`` the command of this training (the latest one, which resumes
    the run to its ``--steps``), its profile, split and settings, without absolute paths
    (:func:`inpaint_utils.report.portable`), so that a result scored on the run names the command behind it."""
    write_train_record(run_dir, shlex.join(["inpaint", *argv]), method=args.method, profile=args.profile,
                       split=f"{args.split} (seed {args.seed})", num_images=len(dataset), data=str(args.data),
                       preprocess=recipe.preprocessing, crop=recipe.crop, dataset=recipe.dataset,
                       settings={k: v for k, v in settings.items() if k != "fill"})


def _resume_checkpoint(explicit: Path | None, run_dir: Path) -> dict[str, Any] | None:
    """The description (:func:`inpaint_utils.checkpoint.checkpoint_info`) of the checkpoint the training
    will resume from: ``explicit``, else the run's newest intact one (the training warns about damaged
    ones), else ``None``."""
    import warnings

    from ..checkpoint import checkpoint_info, latest_checkpoint

    if explicit is not None:
        return checkpoint_info(explicit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train() finds the same one and warns about what it skips
        found = latest_checkpoint(run_dir, verify=True)
    return checkpoint_info(found) if found is not None else None
