"""The ``inpaint`` command: train the course's models on a folder of images, on one or several GPUs.

Installed by ``pip install -e .`` (``[project.scripts]`` in ``pyproject.toml``); without installing,
``python -m inpaint_utils.cli`` is the same command::

    inpaint train context_encoder --data data/celeba-hq --profile full             # one GPU (or the CPU)
    inpaint train context_encoder --data data/celeba-hq --profile full --nproc 8   # 8 GPUs of this machine
    inpaint train context_encoder --data DIR --steps 300 --batch-size 16 --image-size 128 --run-name ce_try

``train`` takes its numbers (image size, batch size, steps, learning rate, model widths, logging and
checkpoint intervals) from the method's notebook profile in :data:`inpaint_utils.config.PROFILES`
(``--profile smoke|full|gpu``; the options override them), writes to ``runs/<run name>/`` (metrics,
sample grids, checkpoints; ``$INPAINT_RUNS`` moves it) and resumes that run when it already has
checkpoints. ``--batch-size`` is the global batch: with ``--nproc N`` each of the N processes loads
``B / N`` images per step (:mod:`inpaint_utils.distributed`).

``--nproc N`` starts N processes on this machine through ``torchrun`` (``python -m
torch.distributed.run --standalone``), one per GPU, or N CPU processes with ``--device cpu`` (gloo; for
testing). On several machines run torchrun yourself on each, with the same rendezvous::

    torchrun --nnodes 2 --nproc-per-node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 --rdzv_id ce1 \\
        -m inpaint_utils.cli train context_encoder --data /shared/celeba-hq --profile full
    # or a fixed rank per machine: --nnodes 2 --node_rank 0|1 --master_addr HOST --master_port 29500

Adding a method to ``train`` takes a builder and one :data:`METHODS` entry::

    def build_glcic(settings, dataset, seed):            # settings: the profile + command-line overrides
        G, D = ...                                        # build the networks from settings
        return Recipe(GLCICTask(G, D, ...), "glcic", G.config.to_dict())

    METHODS["glcic"] = Method("04_glcic", build_glcic, preprocess="256", description="GLCIC, notebook 04")

Other subcommands (``fill``, ``evaluate``, ``benchmark``): write ``add_<name>_parser(subparsers)``
setting ``func`` with ``set_defaults`` (see :func:`add_train_parser`) and call it in :func:`build_parser`.
"""
from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["Method", "Recipe", "METHODS", "build_context_encoder", "build_parser", "add_train_parser", "main"]

PROFILE_NAMES = ("smoke", "full", "gpu")
#: TrainConfig fields read from a method's settings when present there
_LOOP_KEYS = ("log_every", "sample_every", "checkpoint_every")


@dataclass
class Recipe:
    """What a method's builder returns: the training task (:class:`inpaint_utils.train.Task`) and the
    ``model_name`` / ``model_config`` stored in its checkpoints."""

    task: Any
    model_name: str
    model_config: dict[str, Any]


@dataclass(frozen=True)
class Method:
    """A method ``inpaint train`` can train.

    ``notebook``: the :data:`inpaint_utils.config.PROFILES` entry whose profile gives the defaults; the
    settings handed to ``build`` must end up with ``num_steps`` and ``batch_size`` (the builder may set
    them from the profile's own names) and may hold ``image_size``, ``log_every``, ``sample_every``,
    ``checkpoint_every``. ``build(settings, dataset, seed) -> Recipe`` builds fresh networks (seeded)
    and the task. ``preprocess``: :func:`inpaint_utils.data.preprocess` mode of the training images.
    """

    notebook: str
    build: Callable[[dict[str, Any], Any, int], Recipe]
    preprocess: str = "256"
    description: str = ""


def build_context_encoder(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 02's Context Encoder: the centre 64x64 hole (of 128) filled with the training images'
    mean colour, generator + discriminator, ``ContextEncoderTask`` with the profile's widths and lr."""
    from . import data
    from .models.context_encoder import (ContextEncoderConfig, ContextEncoderDiscriminator, ContextEncoderGenerator,
                                         ContextEncoderTask)

    fill = tuple(data.mean_color(dataset, max_images=500).tolist())
    cfg = ContextEncoderConfig(image_size=settings["image_size"], base_channels=settings["base_channels"],
                               bottleneck_dim=settings["bottleneck_dim"], overlap=0, fill=fill)
    generator = ContextEncoderGenerator(cfg, seed=seed)
    discriminator = ContextEncoderDiscriminator(cfg, seed=seed + 1)
    return Recipe(ContextEncoderTask(generator, discriminator, lr=settings["lr"]), generator.model_name, cfg.to_dict())


#: ``inpaint train METHOD``: name -> :class:`Method`
METHODS: dict[str, Method] = {
    "context_encoder": Method("02_context_encoder", build_context_encoder,
                              description="Context Encoder (Pathak et al. 2016), centre hole; notebook 02"),
}


# ------------------------------------------------------------------------------------------- train

class _UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


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
    p.add_argument("method", choices=sorted(METHODS),
                   help="what to train: " + "; ".join(f"{k} ({m.description})" for k, m in sorted(METHODS.items())))
    p.add_argument("--data", required=True, type=Path, help="folder of training images (.jpg, .jpeg, .png; searched recursively)")
    p.add_argument("--steps", type=int, default=None, help="total training steps (default: the profile's)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch size, split over the processes (default: the profile's)")
    p.add_argument("--image-size", type=int, default=None, help="side of the square training images (default: the profile's)")
    p.add_argument("--run-name", default=None, help="folder under runs/ (default: METHOD_PROFILE)")
    p.add_argument("--profile", choices=PROFILE_NAMES, default="smoke",
                   help="which numbers of the method's notebook profile to use (default: smoke)")
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine: one per GPU, or CPU processes with --device cpu")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--seed", type=int, default=0, help="seeds the networks, the data order and the masks")
    p.add_argument("--num-workers", type=int, default=0, help="data-loading worker processes per training process")
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
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={nproc}",
           "-m", "inpaint_utils.cli", *args]
    print(f"inpaint: starting {nproc} processes: {shlex.join(cmd)}", flush=True)
    return subprocess.call(cmd)


def _check_data(folder: Path) -> None:
    from .data import IMAGE_SUFFIXES, list_images

    if not folder.exists():
        raise _UsageError(f"--data {folder}: no such folder")
    if not folder.is_dir():
        raise _UsageError(f"--data {folder}: not a folder (give the folder that holds the images)")
    if not list_images(folder):
        raise _UsageError(f"--data {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or below it")


def run_train(args: argparse.Namespace, argv: Sequence[str]) -> int:
    from . import config, data, distributed, train

    for name in ("steps", "batch_size", "image_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")
    if args.nproc < 1:
        raise _UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if args.device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise _UsageError("--device cuda but CUDA is not available here; use --device auto or cpu")
    _check_data(args.data)
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside torchrun: start the processes
        return _relaunch(args.nproc, argv, args.device)

    method = METHODS[args.method]
    settings = config.settings(method.notebook, args.profile)
    overrides = {"num_steps": args.steps, "batch_size": args.batch_size, "image_size": args.image_size}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    dataset = data.ImageFolder(args.data, size=settings.get("image_size"), preprocess=method.preprocess,
                               seed=args.seed)
    try:
        recipe = method.build(settings, dataset, args.seed)
        run_name = args.run_name or f"{args.method}_{args.profile}"
        train_config = train.TrainConfig(
            num_steps=settings["num_steps"], batch_size=settings["batch_size"], seed=args.seed, device=args.device,
            run_name=run_name, num_workers=args.num_workers, progress=sys.stderr.isatty(),
            **{k: settings[k] for k in _LOOP_KEYS if k in settings})
        world = distributed.init_from_env(args.device)
        if world.is_main:
            print(f"inpaint train {args.method}: {len(dataset)} images from {args.data} at {settings.get('image_size')} px, "
                  f"profile {args.profile}, {train_config.num_steps} steps, global batch {train_config.batch_size}"
                  + (f" over {world.world_size} processes" if world.enabled else "")
                  + f" -> {train_config.resolved_run_dir()}", flush=True)
        summary = train.train(recipe.task, dataset, train_config, model_name=recipe.model_name,
                              model_config=recipe.model_config)
        if world.is_main:
            print(f"done: step {summary['step']}, {summary['wall_time_s']:.1f} s, {summary['images_per_s']:.1f} "
                  f"images/s on {summary['device']} x {summary['world_size']}; losses {summary['losses']}\n"
                  f"checkpoint {summary['checkpoint']}\nmetrics {summary['metrics_csv']}", flush=True)
        return 0
    finally:
        distributed.shutdown()


# -------------------------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="inpaint", description="The inpainting course's command line.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``inpaint`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status:
    0 done, 1 failed (a one-line reason on stderr), 2 bad usage, 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) and argparse's usage errors (2)
        return int(e.code or 0)
    where = f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    try:
        return args.func(args, argv)
    except _UsageError as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{where}{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ArithmeticError) as e:  # bad data, checkpoints of another model, NaN losses
        print(f"{where}{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
