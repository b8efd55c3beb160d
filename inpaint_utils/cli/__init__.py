"""The ``inpaint`` command: train the course's models on a folder of images (one or several GPUs), fill a
hole in an image with any method, score a method on held-out images, and time the methods.

Installed by ``pip install -e .`` (``[project.scripts]`` in ``pyproject.toml``); without installing,
``python -m inpaint_utils.cli`` is the same command::

    inpaint fill photo.png hole.png -o filled.png --method glcic --checkpoint 04_glcic_smoke   # a run under runs/
    inpaint evaluate --method ce --checkpoint 02_ce_smoke --collection faces --baselines --json ce.json
    inpaint benchmark --methods telea,ns,ce --checkpoint ce=02_ce_smoke --size 128 --batch 8

    inpaint train glcic --data data/celeba-hq --profile gpu
    inpaint train ce --data data/celeba-hq --profile full             # one GPU (or the CPU)
    inpaint train ce --data data/celeba-hq --profile full --nproc 8   # 8 GPUs of this machine
    inpaint train ce --data DIR --steps 300 --batch-size 16 --image-size 128 --run-name ce_try

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
        -m inpaint_utils.cli train ce --data /shared/celeba-hq --profile full
    # or a fixed rank per machine: --nnodes 2 --node_rank 0|1 --master_addr HOST --master_port 29500

``train`` knows ``ce``, ``glcic``, ``deepfill`` (Biradar et al.'s hole mode), ``pconv`` and ``deepfill_v2``
(both on free-form holes; notebook 08's profile holds the numbers of both, each under its
:attr:`Method.prefix`): the names ``fill``, ``evaluate`` and ``benchmark`` use. The older names
``context_encoder`` and ``partial_conv`` (:data:`ALIASES`) are accepted by every subcommand; without
``--run-name`` a run of ``ce`` or ``pconv`` still goes to ``runs/context_encoder_<profile>`` or
``runs/partial_conv_<profile>`` (:func:`default_run_name`). Adding a method takes a builder and one :data:`METHODS` entry in ``methods``
(see :func:`build_glcic`)::

    def build_mine(settings, dataset, seed):             # settings: the profile + command-line overrides
        G, D = ...                                        # build the networks from settings
        return Recipe(MyTask(G, D, ...), G.model_name, G.config.to_dict())

    METHODS["mine"] = Method("08_mine", build_mine, preprocess="256", description="my method, notebook 08")

A package along its seams (every public name is importable from ``inpaint_utils.cli`` itself):
``methods`` (the training builders, :data:`METHODS`, :func:`method_settings`), one module per subcommand
(``train``, ``fill``, ``evaluate``, ``benchmark``), ``shared`` (the option checks they share), ``records``
(provenance, :func:`write_train_record`) and ``command`` (:func:`build_parser`, :func:`main`). Each
subcommand is ``add_<name>_parser(subparsers)`` setting ``func`` with ``set_defaults`` (see
:func:`add_train_parser`), called in :func:`build_parser`. Exit status (all subcommands): 0 done; 2 bad
usage or input: a missing or unreadable file (image, mask, --data images, checkpoint, LPIPS weights, the
VGG-16 weights of ``train pconv``), a mask of another size than the image or with no hole or all
hole, an output that is one of the inputs or whose folder takes no file, a checkpoint that is missing or
holds another model or config, and for ``train`` a run another training holds, a ``--run-name`` that is no
plain folder name, an ``--image-size`` the model cannot take, a batch ``--nproc`` cannot split equally,
found before anything is computed or written (a refused ``train`` leaves the run's record alone); 1 a failure while computing or writing;
130 interrupted. Errors are one line on stderr, ``inpaint COMMAND: error: ...``; warnings too,
``inpaint COMMAND: warning: ...``, each message once (:class:`~inpaint_utils.cli.shared.one_line_warnings`).
"""
from __future__ import annotations

from .methods import (ALIASES, METHODS, PROFILE_NAMES, Method, Recipe, build_context_encoder, build_deepfill,
                      build_deepfill_v2, build_glcic, build_partial_conv, canonical_method, default_run_name,
                      method_settings)
from .records import TRAIN_COMMAND_FILE, write_train_record
from .shared import DEVICES
from .train import add_train_parser, run_train
from .fill import OUTPUT_FORMATS, add_fill_parser, run_fill
from .evaluate import EVALUATE_COLUMNS, add_evaluate_parser, run_evaluate
from .benchmark import add_benchmark_parser, run_benchmark
from .command import build_parser, main

__all__ = ["Method", "Recipe", "METHODS", "ALIASES", "canonical_method", "default_run_name", "method_settings", "build_context_encoder", "build_glcic", "build_deepfill",
           "build_partial_conv", "build_deepfill_v2", "build_parser", "add_train_parser", "add_fill_parser",
           "add_evaluate_parser", "add_benchmark_parser", "main", "write_train_record", "PROFILE_NAMES",
           "TRAIN_COMMAND_FILE", "DEVICES", "OUTPUT_FORMATS", "EVALUATE_COLUMNS", "run_train", "run_fill",
           "run_evaluate", "run_benchmark"]
