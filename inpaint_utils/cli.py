"""The ``inpaint`` command: train the course's models on a folder of images (one or several GPUs), fill a
hole in an image with any method, score a method on held-out images, and time the methods.

Installed by ``pip install -e .`` (``[project.scripts]`` in ``pyproject.toml``); without installing,
``python -m inpaint_utils.cli`` is the same command::

    inpaint fill photo.png hole.png -o filled.png --method glcic --checkpoint 04_glcic_smoke   # a run under runs/
    inpaint evaluate --method ce --checkpoint 02_ce_smoke --collection faces --baselines --json ce.json
    inpaint benchmark --methods telea,ns,ce --checkpoint ce=02_ce_smoke --size 128 --batch 8

    inpaint train glcic --data data/celeba-hq --profile gpu
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

``train`` knows ``context_encoder``, ``glcic``, ``deepfill`` (seed 002's hole mode), ``partial_conv`` and
``deepfill_v2`` (both on free-form holes; notebook 08's profile holds the numbers of both, each under its
:attr:`Method.prefix`). Adding a method takes a builder and one :data:`METHODS` entry (see :func:`build_glcic`)::

    def build_mine(settings, dataset, seed):             # settings: the profile + command-line overrides
        G, D = ...                                        # build the networks from settings
        return Recipe(MyTask(G, D, ...), G.model_name, G.config.to_dict())

    METHODS["mine"] = Method("08_mine", build_mine, preprocess="256", description="my method, notebook 08")

Each subcommand is ``add_<name>_parser(subparsers)`` setting ``func`` with ``set_defaults`` (see
:func:`add_train_parser`), called in :func:`build_parser`. Exit status (all subcommands): 0 done; 2 bad
usage or input: a missing or unreadable file (image, mask, --data images, checkpoint, LPIPS weights, the
VGG-16 weights of ``train partial_conv``), a mask of another size than the image or with no hole or all
hole, an output that is one of the inputs or whose folder takes no file, a checkpoint that is missing or
holds another model, found before anything is computed or written; 1 a failure while computing or writing;
130 interrupted. Errors are one line on stderr, ``inpaint COMMAND: error: ...``.
"""
from __future__ import annotations

import argparse
import json
import os
import shlex
import subprocess
import sys
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

__all__ = ["Method", "Recipe", "METHODS", "method_settings", "build_context_encoder", "build_glcic", "build_deepfill",
           "build_partial_conv", "build_deepfill_v2", "build_parser", "add_train_parser", "add_fill_parser",
           "add_evaluate_parser", "add_benchmark_parser", "main", "write_train_record"]

PROFILE_NAMES = ("smoke", "cpu", "gpu", "full")
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
    ``prefix``: for a profile that holds several models' numbers (notebook 08's), the prefix of this
    method's own keys (``"pconv_"``: ``pconv_batch_size`` is its ``batch_size``; :func:`method_settings`).
    """

    notebook: str
    build: Callable[[dict[str, Any], Any, int], Recipe]
    preprocess: str = "256"
    description: str = ""
    prefix: str = ""


def _fill_colour(settings: dict[str, Any], dataset: Any) -> tuple[float, ...]:
    """The colour the hole is filled with: ``settings["fill"]`` when the run being resumed has one (its
    checkpoint's, so that adding images to ``--data`` does not change the model), else the mean pixel
    of the training images."""
    from . import data

    if settings.get("fill") is not None:
        return tuple(float(v) for v in settings["fill"])
    return tuple(data.mean_color(dataset, max_images=500).tolist())


def build_context_encoder(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 02's Context Encoder: the centre 64x64 hole (of 128) filled with the training images'
    mean colour (:func:`_fill_colour`), generator + discriminator, ``ContextEncoderTask`` with the profile's widths and lr."""
    from .models.context_encoder import (ContextEncoderConfig, ContextEncoderDiscriminator, ContextEncoderGenerator,
                                         ContextEncoderTask)

    fill = _fill_colour(settings, dataset)
    cfg = ContextEncoderConfig(image_size=settings["image_size"], base_channels=settings["base_channels"],
                               bottleneck_dim=settings["bottleneck_dim"], overlap=0, fill=fill)
    generator = ContextEncoderGenerator(cfg, seed=seed)
    discriminator = ContextEncoderDiscriminator(cfg, seed=seed + 1)
    return Recipe(ContextEncoderTask(generator, discriminator, lr=settings["lr"]), generator.model_name, cfg.to_dict())


def build_glcic(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 04's GLCIC: completion network + context discriminator at the profile's width, the hole
    filled with the training images' mean pixel, ``GLCICTask`` with the profile's phases (``t_c``,
    ``t_d``; not rescaled by ``--steps``, as in the notebook), ``alpha``, optimizer and lr."""
    from .models.glcic import CompletionNetwork, GLCICConfig, GLCICDiscriminator, GLCICTask

    fill = _fill_colour(settings, dataset)
    cfg = GLCICConfig(image_size=settings["image_size"], base_channels=settings["base_channels"], fill=fill)
    generator = CompletionNetwork(cfg, seed=seed)
    discriminator = GLCICDiscriminator(cfg, seed=seed + 1)
    task = GLCICTask(generator, discriminator, t_c=settings["t_c"], t_d=settings["t_d"], alpha=settings["alpha"],
                     optimizer=settings["optimizer"], lr=settings["lr"])
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_deepfill(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 05's DeepFill v1 (contextual attention), seed 002's ``hole`` input mode (the grey-filled
    hole: the mode ``inpaint fill --method deepfill`` runs): generator + WGAN-GP critics at the profile's
    widths, ``DeepFillTask`` with its lr and critic steps. The profile has steps per input mode
    (``steps_hole``); without ``--steps`` the run takes ``steps_hole``."""
    from .models.deepfill import DeepFillConfig, DeepFillCritic, DeepFillGenerator, DeepFillTask

    settings.setdefault("num_steps", settings["steps_hole"])
    cfg = DeepFillConfig(image_size=settings["image_size"], cnum=settings["cnum"], critic_cnum=settings["critic_cnum"])
    generator = DeepFillGenerator(cfg, seed=seed)
    critic = DeepFillCritic(cfg, seed=seed + 1)
    task = DeepFillTask(generator, critic, lr=settings["lr"], critic_steps=settings["critic_steps"], input_mode="hole")
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_partial_conv(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 08's partial-convolution U-Net (Liu et al. 2018): ``PConvUNet`` at the profile's width, trained
    by ``PConvTask`` on free-form holes (its default :func:`~inpaint_utils.models.irregular_masks`, 1-60 %) with
    the paper's loss on the profile's VGG-16 (``vgg_weights``: ``"imagenet"``, read from ``$INPAINT_VGG16`` or
    downloaded; ``"random"``: random features, offline), Adam at ``lr``, then from step ``finetune_step`` on
    (not rescaled by ``--steps``, as GLCIC's phases) at ``finetune_lr`` with the encoder's BatchNorm frozen."""
    from .losses import VGG16Features
    from .models.partial_conv import PConvConfig, PConvTask, PConvUNet

    cfg = PConvConfig(image_size=settings["image_size"], base_channels=settings["base_channels"])
    generator = PConvUNet(cfg, seed=seed)
    weights = settings["vgg_weights"]
    vgg = VGG16Features(weights, seed=seed + 1) if weights == "random" else VGG16Features(weights)
    task = PConvTask(generator, vgg=vgg, lr=settings["lr"], finetune_lr=settings["finetune_lr"],
                     finetune_step=settings["finetune_step"])
    return Recipe(task, generator.model_name, cfg.to_dict())


def build_deepfill_v2(settings: dict[str, Any], dataset: Any, seed: int) -> Recipe:
    """Notebook 08's DeepFill v2 (Yu et al. 2019): gated-convolution generator + SN-PatchGAN at the profile's
    widths, ``DeepFillV2Task`` (pixel L1 + hinge GAN, 1:1; one discriminator and one generator update a step)
    at its lr on v2's free-form holes (:func:`~inpaint_utils.models.gated_conv.free_form_masks`)."""
    from .models.gated_conv import DeepFillV2Config, DeepFillV2Generator, DeepFillV2Task, SNPatchGANDiscriminator

    cfg = DeepFillV2Config(image_size=settings["image_size"], cnum=settings["cnum"], disc_cnum=settings["disc_cnum"])
    generator = DeepFillV2Generator(cfg, seed=seed)
    discriminator = SNPatchGANDiscriminator(cfg, seed=seed + 1)
    return Recipe(DeepFillV2Task(generator, discriminator, lr=settings["lr"]), generator.model_name, cfg.to_dict())


#: ``inpaint train METHOD``: name -> :class:`Method`
METHODS: dict[str, Method] = {
    "context_encoder": Method("02_context_encoder", build_context_encoder,
                              description="Context Encoder (Pathak et al. 2016), centre hole; notebook 02"),
    "glcic": Method("04_glcic", build_glcic,
                    description="GLCIC (Iizuka et al. 2017), random rectangular holes; notebook 04"),
    "deepfill": Method("05_contextual_attention", build_deepfill,
                       description="DeepFill v1 / contextual attention (Yu et al. 2018), hole mode; notebook 05"),
    "partial_conv": Method("08_irregular_holes", build_partial_conv, prefix="pconv_",
                           description="partial convolutions (Liu et al. 2018), free-form holes; notebook 08"),
    "deepfill_v2": Method("08_irregular_holes", build_deepfill_v2, prefix="v2_",
                          description="DeepFill v2 / gated convolutions (Yu et al. 2019), free-form holes; notebook 08"),
}


def method_settings(method: str, profile: str) -> dict[str, Any]:
    """The settings ``inpaint train METHOD --profile PROFILE`` starts from: its notebook's profile
    (:func:`inpaint_utils.config.settings`); where the method has a :attr:`Method.prefix`, its own keys with
    the prefix taken off (``pconv_lr`` -> ``lr``) beside the shared ones, and the other methods' keys of
    that notebook left out."""
    from . import config

    own = METHODS[method]
    table = config.settings(own.notebook, profile)
    if not own.prefix:
        return table
    prefixes = {m.prefix for m in METHODS.values() if m.notebook == own.notebook and m.prefix}
    out = {k: v for k, v in table.items() if not any(k.startswith(p) for p in prefixes)}
    out.update({k[len(own.prefix):]: v for k, v in table.items() if k.startswith(own.prefix)})
    return out


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
    p.add_argument("--split", choices=("all", "train"), default="all",
                   help="all: every image under --data (default); train: only the 80 %% training split of the "
                        "notebooks' seeded 80/10/10 split (seed --seed), so that `inpaint evaluate` scores the "
                        "held-out test split of the same folder")
    p.add_argument("--nproc", type=int, default=1, help="processes on this machine: one per GPU, or CPU processes with --device cpu")
    p.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--seed", type=int, default=0, help="seeds the networks, the data order and the masks")
    p.add_argument("--num-workers", type=int, default=None,
                   help="data-loading worker processes per training process (default: the profile's, else 0)")
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

    _check_positive(args, "steps", "batch_size", "image_size")
    if args.nproc < 1:
        raise _UsageError(f"--nproc must be at least 1, got {args.nproc}")
    if args.num_workers is not None and args.num_workers < 0:
        raise _UsageError(f"--num-workers must be 0 or more, got {args.num_workers}")
    _check_device(args.device)
    _check_data(args.data)
    if args.nproc > 1 and "LOCAL_RANK" not in os.environ:  # not yet inside torchrun: start the processes
        return _relaunch(args.nproc, argv, args.device)

    if args.from_checkpoint is not None and not args.from_checkpoint.is_dir():
        raise _UsageError(f"--from-checkpoint {args.from_checkpoint}: no such checkpoint folder")

    method = METHODS[args.method]
    settings = method_settings(args.method, args.profile)
    overrides = {"num_steps": args.steps, "batch_size": args.batch_size, "image_size": args.image_size}
    settings.update({k: v for k, v in overrides.items() if v is not None})
    dataset = data.ImageFolder(args.data, size=settings.get("image_size"), preprocess=method.preprocess,
                               split=args.split, seed=args.seed)
    if settings.get("threads"):                      # the profile's OpenMP threads (a shared CPU: often 1)
        import torch

        torch.set_num_threads(int(settings["threads"]))
    try:
        run_name = args.run_name or f"{args.method}_{args.profile}"
        resume_from = _resume_checkpoint(args.from_checkpoint, config.runs_dir() / run_name)
        if resume_from is not None and "fill" in resume_from["config"]:
            settings["fill"] = resume_from["config"]["fill"]   # not recomputed: the data may have grown
        try:
            recipe = method.build(settings, dataset, args.seed)
        except FileNotFoundError as e:               # weights the task needs (partial_conv's VGG-16), not here
            raise _UsageError(str(e)) from e
        train_config = train.TrainConfig(
            num_steps=settings["num_steps"], batch_size=settings["batch_size"], seed=args.seed, device=args.device,
            run_name=run_name, progress=sys.stderr.isatty(),
            num_workers=args.num_workers if args.num_workers is not None else settings.get("num_workers", 0),
            **{k: settings[k] for k in _LOOP_KEYS if k in settings})
        world = distributed.init_from_env(args.device)
        if world.is_main:
            _write_train_command(train_config.resolved_run_dir(), argv, args, settings, dataset)
            print(f"inpaint train {args.method}: {len(dataset)} images from {args.data} at {settings.get('image_size')} px, "
                  f"profile {args.profile}, {train_config.num_steps} steps, global batch {train_config.batch_size}"
                  + (f" over {world.world_size} processes" if world.enabled else "")
                  + f" -> {train_config.resolved_run_dir()}", flush=True)
        summary = train.train(recipe.task, dataset, train_config, model_name=recipe.model_name,
                              model_config=recipe.model_config,
                              resume=args.from_checkpoint if args.from_checkpoint is not None else True)
        if world.is_main:
            print(f"done: step {summary['step']}, {summary['wall_time_s']:.1f} s, {summary['images_per_s']:.1f} "
                  f"images/s on {summary['device']} x {summary['world_size']}; losses {summary['losses']}\n"
                  f"checkpoint {summary['checkpoint']}\nmetrics {summary['metrics_csv']}", flush=True)
        return 0
    finally:
        distributed.shutdown()


#: the file of a run folder that says which ``inpaint train`` command trains it (read by ``inpaint evaluate``)
TRAIN_COMMAND_FILE = "train_command.json"


def _write_train_command(run_dir: Path, argv: Sequence[str], args: argparse.Namespace, settings: dict[str, Any],
                         dataset: Any) -> None:
    """Record in ``run_dir/train_command.json`` the command of this training (the latest one, which resumes
    the run to its ``--steps``), its profile, split and settings, without absolute paths
    (:func:`inpaint_utils.report.portable`), so that a result scored on the run names the command behind it."""
    write_train_record(run_dir, shlex.join(["inpaint", *argv]), method=args.method, profile=args.profile,
                       split=f"{args.split} (seed {args.seed})", num_images=len(dataset), data=str(args.data),
                       settings={k: v for k, v in settings.items() if k != "fill"})


def write_train_record(run_dir: str | os.PathLike, command: str, stages: Sequence[str | os.PathLike] = (),
                       **fields: Any) -> Path:
    """Write ``run_dir/train_command.json`` (:data:`TRAIN_COMMAND_FILE`): the ``command`` that trains the run
    and ``fields`` (method, profile, split, data, settings ...), through :func:`inpaint_utils.report.portable`
    (no absolute paths). ``stages``: the run folders of a model trained in several runs (the cascade: its 64 CE,
    then its 128 stage, in notebook 03): each one's newest checkpoint's step and training time
    (:func:`inpaint_utils.checkpoint.training_summary`) go under ``"stages"`` and their sum is the record's
    ``train_time_s`` (and their images over it, ``images_per_s``), which ``inpaint evaluate`` then reports as the
    model's. Returns the file."""
    from .checkpoint import latest_checkpoint, training_summary
    from .fileio import atomic_open
    from .report import portable

    run_dir = Path(run_dir)
    record: dict[str, Any] = {"command": command, **fields}
    if stages:
        record["stages"] = {}
        for stage in map(Path, stages):
            found = latest_checkpoint(stage)
            if found is None:
                raise FileNotFoundError(f"stage run {stage} has no checkpoint: train it first")
            summary = training_summary(found)
            record["stages"][stage.name] = {k: summary[k] for k in ("step", "train_time_s", "images_per_s")}
        seconds = sum(v["train_time_s"] for v in record["stages"].values())
        images = sum(v["train_time_s"] * (v["images_per_s"] or 0) for v in record["stages"].values())
        record.update(train_time_s=seconds, images_per_s=images / seconds if seconds > 0 else None)
    run_dir.mkdir(parents=True, exist_ok=True)
    path = run_dir / TRAIN_COMMAND_FILE
    with atomic_open(path, "w") as f:
        json.dump(portable(record), f, indent=1, default=float)
    return path


def _training_record(inpainter: Any) -> dict[str, Any] | None:
    """How a learned method's checkpoint was trained: :func:`inpaint_utils.checkpoint.training_summary` plus
    the run folder's ``train_command.json`` (``command``, ``profile``, ``settings``) when it has one;
    ``None`` for the other methods."""
    from .checkpoint import CheckpointError, training_summary

    folder = inpainter.info.get("checkpoint")
    if not folder:
        return None
    try:
        out: dict[str, Any] = training_summary(folder)
    except CheckpointError as e:
        out = {"step": inpainter.info.get("step"), "note": str(e)}
    recorded = Path(folder).parent.parent / TRAIN_COMMAND_FILE        # runs/<run>/checkpoints/step_N
    if recorded.is_file():
        out.update(json.loads(recorded.read_text()))
    return out


def _resume_checkpoint(explicit: Path | None, run_dir: Path) -> dict[str, Any] | None:
    """The description (:func:`inpaint_utils.checkpoint.checkpoint_info`) of the checkpoint the training
    will resume from: ``explicit``, else the run's newest intact one (the training warns about damaged
    ones), else ``None``."""
    import warnings

    from .checkpoint import checkpoint_info, latest_checkpoint

    if explicit is not None:
        return checkpoint_info(explicit)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # train() finds the same one and warns about what it skips
        found = latest_checkpoint(run_dir, verify=True)
    return checkpoint_info(found) if found is not None else None


# ------------------------------------------------------------------------------------------ shared

#: ``--device`` choices of every subcommand
DEVICES = ("auto", "cpu", "cuda")
#: ``inpaint fill -o`` suffix -> Pillow format; any other suffix is refused before anything is computed
OUTPUT_FORMATS = {".png": "PNG", ".jpg": "JPEG", ".jpeg": "JPEG"}
_DIFFUSION = ("sd2", "repaint")


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise _UsageError("--device cuda but CUDA is not available here; use --device auto or cpu")


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def _check_output(path: Path, option: str, inputs: dict[str, Path] | None = None) -> None:
    """A file can be written at ``path`` (its folder exists, takes a new file, and ``path`` is not a
    folder: :func:`inpaint_utils.fileio.check_writable`) and it is none of ``inputs`` (what it is -> path:
    the same file after symbolic and hard links), so a result never replaces what it was made from."""
    from .fileio import check_writable, same_file

    for label, source in (inputs or {}).items():
        if same_file(path, source):
            raise _UsageError(f"{option} {path}: is the input {label}; write the result to another file")
    try:
        check_writable(path)
    except OSError as e:
        raise _UsageError(f"{option} {e.strerror or e}") from None


def _warnings_to_stderr(command: str, caught: Sequence[warnings.WarningMessage]) -> None:
    """Print the warnings recorded by ``warnings.catch_warnings(record=True)``, one line each."""
    for w in caught:
        print(f"inpaint {command}: warning: {' '.join(str(w.message).split())}", file=sys.stderr, flush=True)


def _load_method(method: str, checkpoint: str | None, device: str, seed: int) -> Any:
    """:func:`inpaint_utils.inference.load_inpainter` with its refusals (no checkpoint, a checkpoint of
    another model, a damaged one, a diffusion model that is not available) as usage errors (exit 2)."""
    from .checkpoint import CheckpointError
    from .diffusion import ModelUnavailableError
    from .inference import load_inpainter

    kwargs = {"seed": seed} if method in _DIFFUSION or method == "patchmatch" else {}
    try:
        return load_inpainter(method, checkpoint, device=device, **kwargs)
    except (CheckpointError, OSError, ValueError, ModelUnavailableError) as e:  # OSError: unreadable files
        given = f"--method {method}" + (f" --checkpoint {checkpoint}" if checkpoint else "")
        raise _UsageError(f"{given}: {e}") from e


def _provenance(argv: Sequence[str], **meta: Any) -> dict[str, Any]:
    """What :func:`inpaint_utils.report.save_results` records beside the rows: hardware, library versions,
    code version, time and the command (``inpaint`` + ``argv``), plus ``meta``; no absolute path
    (:func:`inpaint_utils.report.portable`)."""
    from datetime import datetime, timezone

    from .report import code_version, hardware, portable, versions

    return portable({"hardware": hardware(), "versions": versions(), "code_version": code_version(),
                     "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "command": shlex.join(["inpaint", *argv]), **meta})


# -------------------------------------------------------------------------------------------- fill

def add_fill_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .inference import METHODS as FILL_METHODS

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
    p.add_argument("--method", required=True, choices=list(FILL_METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(FILL_METHODS))
    p.add_argument("--checkpoint", default=None,
                   help="learned methods: a run folder, a checkpoint folder (step_*) or a run name under runs/; "
                        "sd2 / repaint: a local model folder (default: the hub model, for sd2 the community mirror "
                        "sd2-community/stable-diffusion-2-inpainting); nn: a folder of training images")
    p.add_argument("--device", choices=DEVICES, default="auto", help="default: cuda when present, else cpu")
    p.add_argument("--seed", type=int, default=0,
                   help="seeds the random parts (the diffusion methods' noise, patchmatch's search)")
    p.add_argument("--invert-mask", action="store_true",
                   help="swap hole and keep: the mask file marks the hole in black (or transparent)")
    p.add_argument("--quality", type=int, default=95, help="JPEG quality, 1-100 (default 95)")
    p.set_defaults(func=run_fill)
    return p


def run_fill(args: argparse.Namespace, argv: Sequence[str]) -> int:
    import numpy as np
    from PIL import Image

    from . import config, data, masks
    from .fileio import atomic_open

    out: Path = args.output
    fmt = OUTPUT_FORMATS.get(out.suffix.lower())
    if fmt is None:
        raise _UsageError(f"-o {out}: unknown output format {out.suffix or '(no suffix)'!r}; "
                          f"use one of {', '.join(OUTPUT_FORMATS)}")
    _check_output(out, "-o", {f"IMAGE {args.image}": args.image, f"MASK {args.mask}": args.mask})
    if not 1 <= args.quality <= 100:
        raise _UsageError(f"--quality must be in 1..100, got {args.quality}")
    _check_device(args.device)
    try:
        image = data.load_image(args.image)                                      # (3, H, W) in [0, 1]
    except (FileNotFoundError, data.ImageReadError) as e:
        raise _UsageError(str(e)) from e
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
    inpainter = _load_method(args.method, args.checkpoint, args.device, args.seed)

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


# ---------------------------------------------------------------------------------------- evaluate

#: the columns ``inpaint evaluate`` prints (those present: LPIPS only when it was computed)
EVALUATE_COLUMNS = ("method", "n", "psnr_hole", "ssim_hole", "l1_pct_hole", "l2_pct_hole", "lpips_hole",
                    "mse255_hole", "l1_255_hole", "tv255_hole", "psnr_image", "ssim_image")


def add_evaluate_parser(subparsers: Any) -> argparse.ArgumentParser:
    from .data import COLLECTIONS
    from .inference import METHODS as FILL_METHODS
    from .masks import LAMA_KINDS, MASK_KINDS

    p = subparsers.add_parser(
        "evaluate", help="score a method on held-out images",
        description="Score METHOD on the test split of a folder (or of a collection of the shared images) with "
                    "masks drawn from --seed, the same split as the notebooks (80/10/10 %, seeded): the hole is "
                    "zeroed before the method sees it and the composite is scored in both papers' conventions "
                    "(seed 000: L1/L2 in %% and PSNR; seed 002: 0-255 MSE/L1, PSNR, LPIPS, TV).")
    p.add_argument("--method", required=True, choices=list(FILL_METHODS), metavar="METHOD",
                   help="one of: " + ", ".join(FILL_METHODS))
    p.add_argument("--checkpoint", default=None, help="as for `inpaint fill`")
    source = p.add_mutually_exclusive_group(required=True)
    source.add_argument("--data", type=Path, help="folder of images (.jpg, .jpeg, .png; searched recursively)")
    source.add_argument("--collection", choices=list(COLLECTIONS),
                        help="a collection of the shared images (scikit-image's samples when the folder is absent)")
    p.add_argument("--baselines", action="store_true", help="also score telea and ns on the same images and masks")
    p.add_argument("--mask-kind", choices=(*MASK_KINDS, *LAMA_KINDS, "training"), default="center",
                   help="default: center; training: the holes the learned METHOD was trained on, drawn from --seed "
                        "(CE / cascade: its centre hole; GLCIC: its random rectangles; DeepFill: its random boxes; "
                        "pconv: free-form strokes; deepfill_v2: strokes and a box; --ratio is not used); "
                        f"{', '.join(LAMA_KINDS)}: LaMa's fixed free-form evaluation set of that kind (drawn once "
                        "from --seed, saved under runs/eval_masks; --ratio is not used), scored also per 10 %% "
                        "hole-area bin")
    p.add_argument("--ratio", type=float, default=0.25, help="hole area / image area, in (0, 1) (default 0.25)")
    p.add_argument("--split", choices=("test", "all"), default="test",
                   help="test: the 10 %% test split of the folder, as the notebooks (default); all: every image of "
                        "--data (a folder of held-out images of your own)")
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

    from . import data, masks, metrics, report
    from .comparison import scores_by_area
    from .fileio import atomic_open
    from .validation import check_ratio

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
    inpainter = _load_method(args.method, args.checkpoint, args.device, args.seed)
    size = args.size or inpainter.image_size or 128
    try:
        with warnings.catch_warnings(record=True) as caught:                     # skipped unreadable files
            warnings.simplefilter("always")
            dataset, where = _evaluate_dataset(args, size)
        generator = torch.Generator().manual_seed(args.seed)
        if args.mask_kind == "training":
            from .inference import training_masks

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
    scores, _ = metrics.score_methods(methods, images, mask, conventions=("seed000", "seed002"),
                                      lpips_model=lpips_model, batch_size=args.batch_size,
                                      progress=sys.stderr.isatty())
    rows = metrics.mean_rows(scores)
    lama = args.mask_kind in masks.LAMA_KINDS
    by_area = ([{"method": name, **row} for name, per_image in scores.items()
                for row in scores_by_area(per_image, mask)] if lama else None)
    achieved = float(masks.area_ratio(mask).mean())
    if args.mask_kind == "training":
        mask_text = f"{args.method}'s training holes: {holes} (mean ratio {achieved:.3f}), seed {args.seed}"
    elif lama:
        mask_text = (f"LaMa's {args.mask_kind} free-form evaluation set ({len(images)} masks drawn from seed "
                     f"{args.seed}, mean ratio {achieved:.3f})")
    else:
        mask_text = f"{args.mask_kind} holes, ratio {args.ratio:g} (achieved {achieved:.3f}), seed {args.seed}"
    split = f"{'test split' if args.split == 'test' else 'every image'} (seed {args.seed})"
    print(f"inpaint evaluate: {where}, {split}, {len(images)} images {size}x{size}; "
          f"{mask_text}; {report.hardware()}")
    if "checkpoint" in inpainter.info:
        print(f"{args.method}: checkpoint {inpainter.info['checkpoint']}, step {inpainter.info['step']}")
    print("hole: PSNR dB, SSIM, L1 and L2 in % of [0, 1] (seed 000), MSE, L1 and TV on 0-255 (seed 002); "
          "image: PSNR, SSIM")
    print(report.format_table(rows, [c for c in EVALUATE_COLUMNS if c in rows[0]]))
    if by_area:
        print("by hole-area bin (LaMa's protocol; each mean beside its n):")
        print(report.format_table(by_area, [c for c in ("area_bin", "method", "n", "achieved", "psnr_hole",
                                                        "lpips_hole", "l1_pct_hole") if c in by_area[0]]))
    if args.json is not None:
        record = {"name": args.json.stem, "rows": rows,
                  **_provenance(argv, method=args.method, training=_training_record(inpainter),
                                checkpoint=inpainter.info.get("checkpoint"),
                                step=inpainter.info.get("step"), data=where, split=f"{args.split} (seed {args.seed})",
                                image_size=size, num_images=len(images), mask=mask_text, mask_kind=args.mask_kind,
                                ratio=None if args.mask_kind == "training" or lama else args.ratio,
                                **({"by_area": by_area} if lama else {}),
                                achieved_ratio=achieved, seed=args.seed,
                                lpips=lpips_model is not False)}
        with atomic_open(args.json, "w") as f:
            json.dump(record, f, indent=1, default=float)
        print(f"results -> {args.json}")
    return 0


def _evaluate_dataset(args: argparse.Namespace, size: int) -> tuple[Any, str]:
    """The split ``inpaint evaluate`` scores (``--split``: the test split or every image), and where it comes
    from (for the report)."""
    from . import data

    if args.data is not None:
        dataset = data.ImageFolder(args.data, size=size, preprocess="256", split=args.split, seed=args.seed,
                                   max_images=args.num_images)
        return dataset, f"folder {args.data}"
    source = data.find_source(None, args.collection, verbose=False)
    dataset = source.dataset(size=size, preprocess="256", split=args.split, seed=args.seed,
                             max_images=args.num_images)
    return dataset, source.summary().removeprefix("data source: ")


def _checkpoint_files(inpainter: Any) -> list[Path]:
    """The files of the checkpoint folder a learned method was loaded from (none for the others)."""
    folder = inpainter.info.get("checkpoint")
    return sorted(p for p in Path(folder).iterdir() if p.is_file()) if folder else []


# --------------------------------------------------------------------------------------- benchmark

def add_benchmark_parser(subparsers: Any) -> argparse.ArgumentParser:
    p = subparsers.add_parser(
        "benchmark", help="time the methods (ms per image)",
        description="Time each method on a batch of random images with one seeded square hole (25 %%): one "
                    "warm-up call, then the median of --repeats calls (CUDA synchronised around each), end to end "
                    "from CPU tensors as `inpaint fill` runs them. Prints ms per image and images per second.")
    p.add_argument("--methods", required=True, help="comma-separated, e.g. telea,ns,ce")
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

    from . import config, masks, report
    from .inference import LEARNED, METHODS as FILL_METHODS

    _check_positive(args, "size", "batch", "repeats")
    names = list(dict.fromkeys(m.strip() for m in args.methods.split(",") if m.strip()))
    unknown = [m for m in names if m not in FILL_METHODS]
    if not names or unknown:
        raise _UsageError(f"--methods: unknown method(s) {', '.join(unknown) or '(none given)'}; "
                          f"choose from {', '.join(FILL_METHODS)}")
    checkpoints: dict[str, str] = {}
    for item in args.checkpoint:
        method, sep, path = item.partition("=")
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


# -------------------------------------------------------------------------------------------- main

def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(prog="inpaint", description="The inpainting course's command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (inpaint-course)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    add_fill_parser(sub)
    add_evaluate_parser(sub)
    add_benchmark_parser(sub)
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
        from .data.reading import ImageReadError

        print(f"{where}{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ImageReadError) else 1   # an input that cannot be read is bad input


if __name__ == "__main__":
    sys.exit(main())
