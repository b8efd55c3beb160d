"""One training loop for every model of the course: seeded data order, AMP, gradient clipping,
metrics, sample grids, atomic checkpoints and exact resume.

Used by notebooks 02 (Context Encoder), 03 (cascade CE), 04 (GLCIC) and 05 (DeepFill v1 /
contextual attention). The loop owns everything that is the same for all of them; the model code
provides a small *task* object that owns what differs (its networks, optimizers and one training
step)::

    class Task(Protocol):
        models: dict[str, nn.Module]                    # checkpointed, moved to the device by the loop
        optimizers: dict[str, torch.optim.Optimizer]    # checkpointed
        batches_per_step: int                           # optional (default 1): batches one step consumes
        def train_step(self, batch, step, ctx) -> dict[str, float]: ...
        def sample(self, batch, generator) -> dict[str, Tensor]: ...   # optional: rows of the sample grid

``train_step`` gets a batch ``(B, 3, H, W)`` in ``[0, 1]`` already on ``ctx.device``, the number of
steps completed before it (``0`` for the first), and a :class:`StepContext`. A task whose step uses
several distinct batches (DeepFill v1: a new batch for each critic update and one for the generator's)
sets ``batches_per_step = k``: its batch is then ``k`` batches one after the other, ``(k * B, 3, H, W)``,
which it splits with ``batch.chunk(k)`` (each chunk is one batch, sharded as one). It does its own updates
with ``ctx.backward(loss, "<optimizer name>")`` and ``ctx.step("<optimizer name>")`` (so AMP's
GradScaler and gradient clipping live here, once), runs its forward passes inside
``with ctx.autocast():``, draws every random number (masks, noise) from ``ctx.generator`` (a CPU
``torch.Generator`` owned and checkpointed by the loop) and returns the losses to log as floats.
Schedules that depend on the step are decided inside ``train_step``. GLCIC's three phases and
DeepFill's five critic updates per generator update, for example::

    class GLCICTask:
        def __init__(self, G, D, t_c=90_000, t_d=10_000, alpha=4e-4):
            self.models = {"generator": G, "discriminator": D}
            self.optimizers = {"generator": torch.optim.Adadelta(G.parameters()),
                               "discriminator": torch.optim.Adadelta(D.parameters())}
            self.t_c, self.t_d, self.alpha = t_c, t_d, alpha

        def train_step(self, batch, step, ctx):
            mask = ctx.shard(make_mask("square", batch.shape[-1], ratio=(0.14, 0.25),   # 96-128 px holes in 256,
                                       batch=ctx.global_size(batch),           # drawn for the global batch
                                       generator=ctx.generator)).to(ctx.device)
            G, D = self.models["generator"], self.models["discriminator"]
            logs = {}
            with ctx.autocast():
                completed = mask * G(batch, mask) + (1 - mask) * batch
            if step >= self.t_c:                                   # phases 2 and 3: update D
                with ctx.autocast():
                    d_loss = bce(D(completed.detach(), mask), 0) + bce(D(batch, mask), 1)
                ctx.backward(d_loss, "discriminator"); ctx.step("discriminator")
                logs["d"] = d_loss.item()
            if step < self.t_c or step >= self.t_c + self.t_d:     # phases 1 and 3: update G
                with ctx.autocast():
                    g_loss = masked_mse(completed, batch, mask)
                    if step >= self.t_c + self.t_d:
                        g_loss = g_loss + self.alpha * bce(D(completed, mask), 1)
                ctx.backward(g_loss, "generator"); ctx.step("generator")
                logs["g"] = g_loss.item()
            return logs

    # DeepFill v1: five critic steps, each on a batch of its own, then one generator step on a sixth,
    # all inside one train_step (batches_per_step = 6):
    #     *critic_batches, g_batch = batch.chunk(6)
    #     for b in critic_batches: ctx.backward(critic_loss(b), "critic"); ctx.step("critic")
    #     ctx.backward(g_loss(g_batch), "generator"); ctx.step("generator")

``ctx.backward(loss, name)`` accumulates gradients only into the parameters of optimizer ``name``
(``torch.autograd.backward(inputs=...)``), so a generator loss that flows through the discriminator
never leaves gradients on the discriminator; ``ctx.step(name)`` clips, steps and zeroes them.
The loop never calls ``.train()`` / ``.eval()`` on the task's models (they run in the mode the task
leaves them); ``sample`` is called under ``torch.no_grad()`` with the models in eval mode (restored
afterwards), on a fixed batch on the device, with a fresh CPU generator seeded by ``seed`` each time
(the same masks in every grid), and without touching the training run's random streams.

The loop (:func:`train`): each step's batch is the next ``batch_size`` images (``batches_per_step``
times that) of a stream of epochs,
each a seeded random order of the whole dataset computed from ``(seed, epoch)`` (:func:`batch_indices`;
the position of any step is known without replaying; a batch may straddle two epochs and, when the
dataset holds fewer images than a batch, holds an image more than once), and every image drawn is
a seeded random crop and horizontal flip of itself (``augment``, :func:`step_crops`), so that a set
of ten photos trains as well as one of thirty thousand, through the same code; every ``log_every`` steps the mean of each loss since the last row goes to
``run_dir/metrics.csv`` (and to TensorBoard when it is installed); every ``sample_every`` steps a grid
of ``task.sample`` on fixed images and masks goes to ``run_dir/samples/step_XXXXXX.png``; every
``checkpoint_every`` steps and at the end, a checkpoint (:mod:`inpaint_utils.checkpoint`) with the
models, optimizers, GradScaler, the loop's generator, torch's CPU RNG, the step and the partial log
window goes to ``run_dir/checkpoints/step_XXXXXX``. ``resume=True`` continues from the newest one; on
CPU the resumed run is bit-identical to an uninterrupted one. Ctrl-C (an interrupt of the Jupyter
kernel) lets the current step finish, saves a checkpoint and then raises ``KeyboardInterrupt``. A NaN
or infinite loss stops the run with :class:`NonFiniteLossError` naming the step and the loss; no
checkpoint of such weights is ever written. The dataset's images are decoded once and kept as uint8
(``TrainConfig.cache``, :func:`inpaint_utils.data.cache_dataset`), so that later epochs skip the files;
the summary says how long the steps waited for their batches (``data_wait_share``).

Several processes (``torchrun``, or ``inpaint train --nproc N``; :mod:`inpaint_utils.distributed`): the
same call runs unchanged in every process. ``batch_size`` is then the global batch, split equally over
the processes (each loads only its rows of the step's batch); ``ctx.step`` averages the gradients
before clipping; BatchNorm layers use the statistics of the global batch; the logged losses are means
over the processes; only rank 0 writes files. A task draws per-sample randomness for the global batch
and keeps its rows, ``ctx.shard(make_mask(..., batch=ctx.global_size(batch), generator=ctx.generator))``,
so that N processes follow the one-process run; checkpoints do not depend on the number of processes.
"""
from __future__ import annotations

import contextlib
import csv
import dataclasses
import hashlib
import json
import math
import os
import re
import shlex
import signal
import socket
import sys
import threading
import time
import warnings
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterator, Mapping, Protocol, runtime_checkable

import torch
from torch import nn
from torch.utils.data import DataLoader, Sampler

from . import distributed
from .checkpoint import jsonable, checkpoint_path, latest_checkpoint, load_checkpoint, save_checkpoint
from .config import get_device, runs_dir
from .data.cache import CACHE_MODES, cache_dataset
from .data.preprocessing import apply_crop_flip, random_crop_flip_params
from .fileio import atomic_open
from .validation import check_image

__all__ = ["Task", "TrainConfig", "StepContext", "NonFiniteLossError", "RunLockedError", "train", "batch_indices",
           "epoch_permutation", "step_crops", "read_metrics", "LOCK_FILE"]

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: TrainConfig fields that change the numbers of a run; a resume with other values is warned about.
_RESULT_KEYS = ("batch_size", "seed", "grad_clip", "amp", "amp_dtype", "augment", "batches_per_step")
#: held in the run folder while a training writes there (see :class:`_RunLock`)
LOCK_FILE = "train.lock"


class NonFiniteLossError(FloatingPointError):
    """A loss (or, before a checkpoint, a weight) became NaN or infinite; the message names the step
    and the loss. Lower the learning rate, turn on ``grad_clip`` or check the inputs."""


class RunLockedError(OSError):
    """Another training is writing into the same run folder; the message names it (pid, host, since)."""


@runtime_checkable
class Task(Protocol):
    """What a model provides to :func:`train` (see the module docstring for an example). An optional
    ``sample(batch, generator) -> dict[str, Tensor]`` method returns the rows of the sample grid
    (``(B, 3, H, W)`` images or ``(B, 1, H, W)`` masks in ``[0, 1]``), e.g. masked / output / target.
    An optional int ``batches_per_step`` (default 1) makes each step's batch that many distinct batches,
    one after the other, for the task to split (``batch.chunk(batches_per_step)``)."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: torch.Tensor, step: int, ctx: "StepContext") -> dict[str, float]:
        ...


@dataclass
class TrainConfig:
    """Settings of :func:`train` (model settings live in the model's own config).

    ``amp=None`` turns mixed precision on for CUDA and off elsewhere; ``amp_dtype`` ``"auto"`` is
    bfloat16 where the GPU supports it, else float16 (with a GradScaler per optimizer). ``run_dir``
    defaults to ``runs_dir() / run_name``. ``sample_every`` / ``checkpoint_every`` of ``None`` or 0
    turn those off (a final checkpoint is still written); ``keep_last`` keeps that many checkpoints.
    ``augment`` (default on) feeds every image as a seeded random crop (side ``0.8 .. 1`` of the image,
    resized back) and horizontal flip of itself (:func:`step_crops`); ``False`` feeds the images as they are.
    ``cache`` (:func:`inpaint_utils.data.cache_dataset`): ``"auto"`` (default) decodes each image of the
    dataset once and keeps it as uint8 (in memory; a set above 2 GiB in a memory-mapped file under
    ``runs/cache``, reused by later runs), so later epochs skip the files; ``"memory"`` / ``"disk"`` force
    one storage, ``"none"`` reads the dataset every time. Cached pixels are ``round(255 x) / 255``: the
    same as uncached for images that are uint8 at their training size, within ``1/510`` otherwise, so a
    run resumed with another ``cache`` than it started with is not bit-identical (it is not warned about).
    """

    num_steps: int
    batch_size: int = 16
    seed: int = 0
    device: str = "auto"
    amp: bool | None = None
    amp_dtype: str = "auto"
    log_every: int = 50
    sample_every: int | None = 500
    checkpoint_every: int | None = 1000
    keep_last: int | None = 3
    run_name: str = "run"
    run_dir: str | os.PathLike | None = None
    num_workers: int = 0
    grad_clip: float | None = None
    progress: bool = True
    num_samples: int = 8
    tensorboard: bool = True
    augment: bool = True
    cache: str = "auto"

    def __post_init__(self) -> None:
        def positive(name: str, allow_none: bool = False, allow_zero: bool = False) -> None:
            v = getattr(self, name)
            if v is None and allow_none:
                return
            if isinstance(v, bool) or not isinstance(v, int) or v < (0 if allow_zero else 1):
                kind = "a non-negative" if allow_zero else "a positive"
                raise ValueError(f"{name} must be {kind} int{' or None' if allow_none else ''}, got {v!r}")

        positive("num_steps", allow_zero=True)
        positive("batch_size")
        positive("log_every")
        positive("sample_every", allow_none=True, allow_zero=True)
        positive("checkpoint_every", allow_none=True, allow_zero=True)
        positive("keep_last", allow_none=True)
        positive("num_workers", allow_zero=True)
        positive("num_samples")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"seed must be a non-negative int, got {self.seed!r}")
        if self.augment not in (True, False):
            raise ValueError(f"augment must be True or False, got {self.augment!r}")
        if self.cache not in CACHE_MODES:
            raise ValueError(f"cache must be one of {CACHE_MODES}, got {self.cache!r}")
        if self.amp not in (None, True, False):
            raise ValueError(f"amp must be True, False or None (auto: on for CUDA), got {self.amp!r}")
        if self.amp_dtype not in ("auto", "bf16", "fp16"):
            raise ValueError(f"amp_dtype must be 'auto', 'bf16' or 'fp16', got {self.amp_dtype!r}")
        if self.grad_clip is not None and (isinstance(self.grad_clip, bool) or
                                           not isinstance(self.grad_clip, (int, float)) or
                                           not self.grad_clip > 0 or math.isinf(self.grad_clip)):
            raise ValueError(f"grad_clip must be a positive number or None, got {self.grad_clip!r}")
        if not isinstance(self.run_name, str) or not _NAME_RE.fullmatch(self.run_name) or ".." in self.run_name:
            raise ValueError(f"run_name must be a plain folder name (letters, digits, '_', '-', '.'), "
                             f"got {self.run_name!r}")

    def resolved_run_dir(self) -> Path:
        """``run_dir``, or ``runs_dir() / run_name`` when it is ``None``."""
        return Path(self.run_dir) if self.run_dir is not None else runs_dir() / self.run_name


# --------------------------------------------------------------------------------------- step context

class StepContext:
    """What :meth:`Task.train_step` receives besides the batch: the device, the loop's random
    generator, the autocast context and the update helpers (AMP scaling and clipping in one place).

    Attributes: ``device``; ``generator`` (CPU ``torch.Generator``; draw masks and noise from it, then
    ``.to(ctx.device)``); ``current_step`` (completed steps before this one, as passed to
    ``train_step``); ``amp_dtype`` (``None`` when AMP is off); ``grad_norms`` (``{optimizer name:
    norm before clipping}`` when ``grad_clip`` is set); ``stepped`` (optimizers stepped so far);
    ``world_size`` and ``rank`` (1 and 0 in one process).

    Several processes: the batch is this process's rows of the global batch. Draw per-sample random
    numbers for the global batch and keep this process's rows, ``ctx.shard(draw(ctx.global_size(batch)))``
    (every process then draws the same numbers, and the run follows the one-process one); draw
    per-batch numbers as they are. In one process both calls change nothing.
    """

    def __init__(self, optimizers: Mapping[str, torch.optim.Optimizer], device: torch.device,
                 generator: torch.Generator, amp_dtype: torch.dtype | None = None,
                 scalers: Mapping[str, Any] | None = None, grad_clip: float | None = None,
                 world_size: int = 1, rank: int = 0):
        self.device = device
        self.generator = generator
        self.amp_dtype = amp_dtype
        self.current_step = 0
        self.grad_norms: dict[str, float] = {}
        self.stepped: list[str] = []
        self.world_size, self.rank = world_size, rank
        self._optimizers = dict(optimizers)
        self._scalers = dict(scalers or {})
        self._grad_clip = grad_clip
        self._error: str | None = None  # several processes: a non-finite loss, raised on all at ctx.step

    def _begin(self, step: int) -> None:
        self.current_step = step
        self.stepped = []
        self.grad_norms = {}
        self._error = None

    # ---- several processes (all of these are identities in one process)
    def global_size(self, batch: torch.Tensor | int) -> int:
        """Rows of the global batch: ``len(batch) * world_size`` (``batch`` a tensor or its length)."""
        return (batch if isinstance(batch, int) else len(batch)) * self.world_size

    def shard(self, x: torch.Tensor) -> torch.Tensor:
        """This process's rows of ``x``, a tensor drawn for the global batch (``len(x)`` divisible by
        ``world_size``): rows ``rank * b .. (rank + 1) * b - 1`` with ``b = len(x) // world_size``, the
        same rows as the images of this process's batch. One process: ``x`` itself."""
        if self.world_size == 1:
            return x
        start, stop = distributed.shard_bounds(len(x), self.rank, self.world_size)
        return x[start:stop]

    def global_sum(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` summed over the processes, without gradient (a new tensor). One process: ``x``."""
        if self.world_size == 1:
            return x
        return distributed.all_reduce_sum(x.detach())

    def mean_weight(self, local_count: torch.Tensor | float) -> torch.Tensor | float:
        """``world_size * local_count / (local_count summed over processes)``: multiply a loss of the form
        ``local_sum / local_count`` by it when the count differs between processes (a masked mean over
        holes of different areas) so that the averaged gradient is that of ``global_sum / global_count``.
        Means over samples need nothing (the shards are equal). One process: ``1.0``."""
        if self.world_size == 1:
            return 1.0
        count = torch.as_tensor(local_count, dtype=torch.float64, device=self.device).detach()
        return (count * self.world_size / self.global_sum(count)).float()

    def _optimizer(self, name: str) -> torch.optim.Optimizer:
        if name not in self._optimizers:
            raise KeyError(f"no optimizer {name!r}; the task's optimizers are {sorted(self._optimizers)}")
        return self._optimizers[name]

    def _params(self, name: str) -> list[torch.Tensor]:
        return [p for g in self._optimizer(name).param_groups for p in g["params"] if p.requires_grad]

    def autocast(self) -> contextlib.AbstractContextManager:
        """``with ctx.autocast():`` around forward passes and losses (not around ``backward``)."""
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def backward(self, loss: torch.Tensor, optimizer_name: str, *, retain_graph: bool = False,
                 name: str | None = None) -> None:
        """Back-propagate ``loss`` into the parameters of optimizer ``optimizer_name`` only (scaled by
        its GradScaler under fp16). A NaN or infinite ``loss`` raises :class:`NonFiniteLossError`
        before anything is updated; ``name`` labels the loss in that message."""
        if not isinstance(loss, torch.Tensor) or loss.numel() != 1:
            raise ValueError(f"loss for {optimizer_name!r} must be a one-element tensor, got "
                             f"{tuple(loss.shape) if isinstance(loss, torch.Tensor) else type(loss).__name__}")
        params = self._params(optimizer_name)
        if not params:
            raise ValueError(f"optimizer {optimizer_name!r} has no parameters that require grad")
        if not bool(torch.isfinite(loss.detach()).all()):
            label = name or f"loss of optimizer {optimizer_name!r}"
            message = (f"{label} is {loss.detach().float().item()} at step {self.current_step}: stopping before "
                       f"it reaches the weights; lower the learning rate, set grad_clip, or check the inputs")
            if self.world_size == 1:
                raise NonFiniteLossError(message)
            # several processes: still run the backward pass (its collectives must match the other
            # processes'); ctx.step tells every process and all of them raise before any update
            self._error = self._error or f"process {self.rank}: {message}"
        scaler = self._scalers.get(optimizer_name)
        target = scaler.scale(loss) if scaler is not None else loss
        torch.autograd.backward(target.reshape(()), inputs=params, retain_graph=retain_graph)

    def step(self, optimizer_name: str) -> float | None:
        """Average the gradients over the processes (when there are several), clip (when ``grad_clip`` is
        set; returns the norm before clipping), step optimizer ``optimizer_name`` (through its GradScaler
        under fp16) and zero its gradients."""
        opt = self._optimizer(optimizer_name)
        scaler = self._scalers.get(optimizer_name)
        norm = None
        if self.world_size > 1 and distributed.average_gradients(self._params(optimizer_name),
                                                                 error=self._error is not None):
            opt.zero_grad(set_to_none=True)
            raise NonFiniteLossError(self._error or f"a loss was NaN or infinite in another process at step "
                                                    f"{self.current_step}: stopping before it reaches the weights")
        if self._grad_clip is not None:
            if scaler is not None:
                scaler.unscale_(opt)
            norm = float(torch.nn.utils.clip_grad_norm_(self._params(optimizer_name), self._grad_clip))
            self.grad_norms[optimizer_name] = norm
        if scaler is not None:
            scaler.step(opt)
            scaler.update()
        else:
            opt.step()
        opt.zero_grad(set_to_none=True)
        self.stepped.append(optimizer_name)
        return norm

    def zero_grad(self, optimizer_name: str | None = None) -> None:
        """Zero the gradients of one optimizer, or of all of them."""
        names = [optimizer_name] if optimizer_name is not None else list(self._optimizers)
        for n in names:
            self._optimizer(n).zero_grad(set_to_none=True)


# ----------------------------------------------------------------------------------------- data order

def _epoch_seed(seed: int, epoch: int) -> int:
    digest = hashlib.blake2b(f"inpaint-train:{seed}:{epoch}".encode(), digest_size=8).digest()
    return int.from_bytes(digest, "little") & (2**63 - 1)


def epoch_permutation(n: int, seed: int, epoch: int) -> torch.Tensor:
    """The order of the ``n`` dataset items in ``epoch``: a permutation seeded by ``(seed, epoch)``."""
    return torch.randperm(n, generator=torch.Generator().manual_seed(_epoch_seed(seed, epoch)))


def batch_indices(step: int, n: int, batch_size: int, seed: int, batches_per_step: int = 1) -> list[int]:
    """Dataset indices of the batch of ``step`` (0-based): items ``step * batch_size`` up to
    ``(step + 1) * batch_size - 1`` of the endless stream of epochs, epoch ``e`` being
    :func:`epoch_permutation` ``(n, seed, e)``. Every image is seen once per epoch; a batch may
    straddle two epochs, and when ``n < batch_size`` it holds images more than once (each drawn
    with its own crop and flip, :func:`step_crops`). With ``batches_per_step`` ``k`` a step takes
    the ``k`` batches ``step * k .. step * k + k - 1`` of that stream, one after the other."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"the dataset must hold at least one image, got n={n!r}")
    return list(_StepBatches(n, batch_size, seed, step, step + 1, batches_per_step=batches_per_step))[0]


def step_crops(step: int, batch_size: int, seed: int) -> torch.Tensor:
    """The crops and flips of the global batch of ``step``: ``(batch_size, 2, 3)`` matrices for
    :func:`inpaint_utils.data.apply_crop_flip`, drawn from a generator seeded by ``(seed, step)``
    only, so that a resumed run, a run with loader workers and each of N processes (which keeps the
    rows of its own images) draw the same ones. (``step`` counts batches: with ``batches_per_step``
    ``k``, step ``s``'s batches are batches ``s * k .. s * k + k - 1``, see :func:`batch_indices`.)"""
    digest = hashlib.blake2b(f"inpaint-crops:{seed}:{step}".encode(), digest_size=8).digest()
    generator = torch.Generator().manual_seed(int.from_bytes(digest, "little") & (2**63 - 1))
    return random_crop_flip_params(batch_size, generator)


class _StepBatches(Sampler):
    """Batches of steps ``start .. stop - 1`` for a ``DataLoader(batch_sampler=...)`` (see
    :func:`batch_indices`); with several processes, this process's rows ``[lo, hi)`` of each global batch.
    ``batches_per_step`` ``k``: each step yields its ``k`` batches one after the other (this process's
    rows of each), ``k * (hi - lo)`` indices."""

    def __init__(self, n: int, batch_size: int, seed: int, start: int, stop: int, rows: tuple[int, int] | None = None,
                 batches_per_step: int = 1):
        self.n, self.batch_size, self.seed, self.start, self.stop = n, batch_size, seed, start, stop
        self.lo, self.hi = rows if rows is not None else (0, batch_size)
        self.per_step = batches_per_step

    def __len__(self) -> int:
        return max(0, self.stop - self.start)

    def __iter__(self) -> Iterator[list[int]]:
        perms: dict[int, list[int]] = {}
        for step in range(self.start, self.stop):
            rows = []
            for number in range(step * self.per_step, (step + 1) * self.per_step):  # the batches of this step
                first = number * self.batch_size
                for item in range(first + self.lo, first + self.hi):
                    epoch, pos = divmod(item, self.n)
                    if epoch not in perms:
                        perms = {e: p for e, p in perms.items() if e >= epoch}  # keep only the epochs still ahead
                        perms[epoch] = epoch_permutation(self.n, self.seed, epoch).tolist()
                    rows.append(perms[epoch][pos])
            yield rows


def _stack(items: list[Any]) -> torch.Tensor:
    if not all(isinstance(x, torch.Tensor) for x in items):
        kinds = sorted({type(x).__name__ for x in items})
        raise TypeError(f"dataset items must be (3, H, W) image tensors, got {kinds}")
    return torch.stack(items)


# -------------------------------------------------------------------------------------- metrics file

class _MetricsLog:
    """``metrics.csv``: one row per ``log_every`` steps and one at the final step; new loss names add
    columns (file rewritten)."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        self.columns = ["step", "time_s"]
        self.rows: list[dict[str, str]] = []
        if keep_until is not None and path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or self.columns)
                self.rows = [r for r in reader if r.get("step") and int(r["step"]) <= keep_until]
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def append(self, values: dict[str, Any]) -> None:
        row = {k: (repr(float(v)) if isinstance(v, float) else str(v)) for k, v in values.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns.extend(new)
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of ``run_dir/metrics.csv`` as dicts of floats (``step`` as int; empty cells left out),
    for plotting the loss curves in a notebook."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: train() writes it every log_every steps")
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "step" else float(v)) for k, v in r.items() if v != ""}
                for r in csv.DictReader(f)]


# ------------------------------------------------------------------------------------- run lock

class _RunLock:
    """``run_dir/train.lock`` while a training writes into ``run_dir``, so that a second one into the same
    folder stops at once instead of deleting the first one's checkpoints and mixing ``metrics.csv``.

    The file is created with ``O_CREAT | O_EXCL`` (one process wins, also on a shared file system) and
    holds the JSON ``{"pid", "host", "since", "command"}`` of its holder. :meth:`release` removes it
    (``train`` calls it in a ``finally``: on return, on an error and on Ctrl-C). A lock left by a killed
    process (SIGKILL, a crashed kernel) whose pid no longer runs on this host is taken over with a
    warning; one from another host is never guessed dead (the message says which file to delete).
    """

    def __init__(self, run_dir: Path):
        self.path = Path(run_dir) / LOCK_FILE
        self.mine: dict[str, Any] | None = None

    def _read(self) -> dict[str, Any] | None:
        """The holder, or ``None`` when the file is gone, empty (being written) or not a lock."""
        try:
            holder = json.loads(self.path.read_text())
        except (OSError, UnicodeDecodeError, json.JSONDecodeError):
            return None
        return holder if isinstance(holder, dict) and isinstance(holder.get("pid"), int) else None

    @staticmethod
    def _stale(holder: dict[str, Any]) -> bool:
        if holder.get("host") != socket.gethostname() or holder["pid"] == os.getpid():
            return False
        try:
            os.kill(holder["pid"], 0)
        except ProcessLookupError:
            return True
        except (PermissionError, OSError):  # alive, under another user
            return False
        return False

    def _describe(self, holder: dict[str, Any] | None) -> str:
        if holder is None:
            return (f"{self.path} exists but holds no readable lock; if no training is running there, delete "
                    f"it and start again")
        return (f"another training holds {self.path}: pid {holder['pid']} on {holder.get('host')!r} since "
                f"{holder.get('since')} ({holder.get('command') or 'unknown command'}); wait for it, stop it, or use "
                f"another run name (delete the lock file only if that process is gone)")

    def acquire(self) -> None:
        """Take the lock or raise :class:`RunLockedError` naming the holder."""
        mine = {"pid": os.getpid(), "host": socket.gethostname(),
                "since": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command": shlex.join(sys.argv) if sys.argv and sys.argv[0] else sys.executable}
        for _ in range(20):
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except FileExistsError:
                holder = self._read()
                if holder is None:  # just created by another process, which is writing it: look again
                    time.sleep(0.05)
                    holder = self._read()
                if holder is None or not self._stale(holder):
                    if holder is None and not self.path.exists():
                        continue  # released meanwhile
                    raise RunLockedError(self._describe(holder)) from None
                self._take_over(holder)
                continue
            with os.fdopen(fd, "w") as f:
                json.dump(mine, f)
                f.flush()
                os.fsync(f.fileno())
            self.mine = mine
            return
        raise RunLockedError(self._describe(self._read()))

    def _take_over(self, holder: dict[str, Any]) -> None:
        """Move a stale lock aside (one rename: of several processes taking it over, one moves it) and
        warn; if what was moved is no longer that stale lock (a live one replaced it), put it back."""
        aside = self.path.with_name(f".{LOCK_FILE}.stale-{os.getpid()}")
        try:
            os.replace(self.path, aside)
        except FileNotFoundError:
            return
        try:
            moved = json.loads(aside.read_text())
        except (OSError, ValueError):
            moved = None
        if moved != holder:
            with contextlib.suppress(FileExistsError):
                os.link(aside, self.path)
        else:
            warnings.warn(f"{self.path} was left by pid {holder['pid']} on {holder.get('host')!r} (since "
                          f"{holder.get('since')}), which no longer runs: taking the run folder over", stacklevel=4)
        aside.unlink(missing_ok=True)

    def release(self) -> None:
        """Remove the lock file if it is still this process's."""
        if self.mine is not None and self._read() == self.mine:
            self.path.unlink(missing_ok=True)
        self.mine = None


# ---------------------------------------------------------------------------------- loop helpers

class _DeferredInterrupt:
    """In the main thread, the first Ctrl-C only sets ``requested`` (the loop then finishes the step,
    saves and raises ``KeyboardInterrupt``); a second one raises at once."""

    def __init__(self) -> None:
        self.requested = False
        self._prev: Any = None
        self._installed = False

    def _handler(self, signum: int, frame: Any) -> None:
        if self.requested:
            raise KeyboardInterrupt
        self.requested = True
        print("\ninterrupt: finishing this step and saving a checkpoint (interrupt again to stop at once)",
              file=sys.stderr, flush=True)

    def __enter__(self) -> "_DeferredInterrupt":
        if threading.current_thread() is threading.main_thread():
            try:
                self._prev = signal.getsignal(signal.SIGINT)
                signal.signal(signal.SIGINT, self._handler)
                self._installed = True
            except (ValueError, OSError):
                pass
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._installed:
            signal.signal(signal.SIGINT, self._prev if self._prev is not None else signal.default_int_handler)


@contextlib.contextmanager
def _eval_mode(models: Mapping[str, nn.Module]) -> Iterator[None]:
    modes = [(m, m.training) for model in models.values() for m in model.modules()]
    try:
        for model in models.values():
            model.eval()
        yield
    finally:
        for m, training in modes:
            m.training = training


def _resolve_amp(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    use = config.amp if config.amp is not None else device.type == "cuda"
    if not use:
        return None
    if config.amp_dtype == "bf16":
        return torch.bfloat16
    if config.amp_dtype == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp_dtype='fp16' needs a CUDA device (got {device}); use 'bf16' or amp=False")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def _make_scaler(device: torch.device) -> Any:
    try:
        return torch.amp.GradScaler(device.type)
    except (AttributeError, TypeError):  # torch < 2.3
        return torch.cuda.amp.GradScaler()


def _as_float(name: str, value: Any, step: int, finite: bool = True) -> float:
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise ValueError(f"train_step returned {name!r} with shape {tuple(value.shape)}; return floats")
        value = value.item()
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(f"train_step must return {{name: float}}, got {name!r} = {value!r}")
    value = float(value)
    if finite and not math.isfinite(value):
        raise NonFiniteLossError(f"loss {name!r} is {value} at step {step}: stopping (no checkpoint of "
                                 f"these weights is written); lower the learning rate, set grad_clip, "
                                 f"or check the inputs")
    return value


def _resume_source(resume: bool | str | os.PathLike, run_dir: Path) -> Path | None:
    """The checkpoint to resume from (``None``: start fresh); see :func:`train`'s ``resume``."""
    if resume is True:
        chosen = latest_checkpoint(run_dir, verify=True)   # warns about each damaged newer one
        newest = latest_checkpoint(run_dir)
        while newest is not None and newest != chosen:     # moved aside: kept, but neither resumed nor pruned
            aside = newest.with_name(f"{newest.name}.damaged")
            while aside.exists():
                aside = aside.with_name(aside.name + "_")
            newest.rename(aside)
            warnings.warn(f"the damaged checkpoint {newest.name} is moved to {aside.name}; resuming from "
                          f"{chosen.name if chosen is not None else 'nothing'}", stacklevel=3)
            newest = latest_checkpoint(run_dir)
        return chosen
    if resume is False:
        existing = latest_checkpoint(run_dir)
        if existing is not None:
            raise FileExistsError(f"{run_dir} already holds checkpoints (newest: {existing.name}); pass "
                                  f"resume=True to continue it, or another run_name / delete the folder to start over")
        return None
    return Path(resume)


def _process_device(device: torch.device, world: distributed.DistInfo) -> torch.device:
    """This process's device in a group: its own GPU (``cuda:LOCAL_RANK``), and a backend that can reduce there."""
    if world.backend == "nccl" and device.type != "cuda":
        raise ValueError(f"the process group uses NCCL, which reduces CUDA tensors only, but device is {device}; "
                         f"use device 'cuda' / 'auto', or start the group with gloo")
    if device.type == "cuda" and device.index is None:
        return torch.device("cuda", torch.cuda.current_device())
    return device


def _check_task(task: Any) -> int:
    """Check ``task`` against the :class:`Task` protocol; return its ``batches_per_step`` (1 when it has none)."""
    for attr, cls in (("models", nn.Module), ("optimizers", torch.optim.Optimizer)):
        value = getattr(task, attr, None)
        if not isinstance(value, Mapping) or not value or not all(isinstance(v, cls) for v in value.values()):
            raise TypeError(f"task.{attr} must be a non-empty dict {{name: {cls.__name__}}}, got {value!r}")
    if not callable(getattr(task, "train_step", None)):
        raise TypeError("task must have a method train_step(batch, step, ctx) -> dict[str, float]")
    per_step = getattr(task, "batches_per_step", 1)
    if isinstance(per_step, bool) or not isinstance(per_step, int) or per_step < 1:
        raise ValueError(f"task.batches_per_step must be a positive int, got {per_step!r}")
    return per_step


# ------------------------------------------------------------------------------------------- train

def train(task: Task, dataset: Any, config: TrainConfig, *, model_name: str, model_config: Mapping[str, Any] | Any,
          resume: bool | str | os.PathLike = True, sample_images: torch.Tensor | None = None) -> dict[str, Any]:
    """Train ``task`` on ``dataset`` for ``config.num_steps`` steps in total; return a summary.

    ``dataset``: a ``torch.utils.data.Dataset`` of ``(3, H, W)`` images in ``[0, 1]`` (e.g.
    :class:`inpaint_utils.data.ImageFolder`) or a tensor ``(N, 3, H, W)``. ``model_name`` and
    ``model_config`` (dict or dataclass) are stored in every checkpoint and checked on resume.
    ``resume``: ``True`` continues from the newest checkpoint of the run folder when there is one (a
    newer one that fails its checks, e.g. a file damaged by a crash or a full disk, is moved aside to
    ``step_XXXXXX.damaged`` with a warning and the previous one is used); ``False`` starts fresh (and refuses a run folder that already holds checkpoints); a path resumes
    from that checkpoint. ``sample_images``: the ``(B, 3, H, W)`` images of the sample grids (default:
    the first ``config.num_samples`` of ``dataset``).

    Returns ``{"step", "start_step", "losses" (means of the last logged window), "wall_time_s",
    "images_per_s", "run_dir", "checkpoint", "resumed_from", "metrics_csv", "last_sample", "device",
    "amp_dtype", "world_size", "data_wait_s", "data_wait_share", "loop_s", "cache", "cache_s"}`` (the same
    on every process, except the last five; ``images_per_s`` counts the global batch, ``batches_per_step``
    of them per step). ``data_wait_s``:
    seconds this process spent getting its batches (the loader's next batch, the copy to the device, the
    crops and flips); ``loop_s``: seconds of the loop over the steps (with their logging, periodic
    checkpoints and sample grids; without the set-up and the final checkpoint of ``wall_time_s``);
    ``data_wait_share``: ``data_wait_s / loop_s``, in ``[0, 1]``. On CUDA the copy and the crops are
    queued without waiting for the GPU, so the two measure how long the GPU was left waiting for the
    host's loader, not the GPU's own time for them. ``cache``: what ``config.cache`` did (``"memory
    (...)"``, ``"disk (path, ...)"`` or ``"none (why)"``); ``cache_s``: seconds spent preparing it before
    the first step (a disk cache built or checked; a memory cache fills as images are first read, inside
    the data wait).

    Under ``torchrun`` (``$WORLD_SIZE`` > 1) every process makes this same call: it joins the process
    group (:func:`inpaint_utils.distributed.init_from_env`), ``config.batch_size`` must be divisible by the
    number of processes, and only rank 0 writes to ``run_dir`` (a folder every machine sees, for resuming).

    One training per run folder: while it runs, ``run_dir/train.lock`` names it (pid, host, start time,
    command; held by rank 0), and another ``train`` into the same folder raises :class:`RunLockedError`
    at once, naming it. The lock goes on return, on an error and on Ctrl-C; one left by a killed process
    that no longer runs on this host is taken over with a warning.

    Interrupting: in the main thread (a notebook, a script) the first Ctrl-C lets the current step
    finish, saves a checkpoint and raises ``KeyboardInterrupt``; resuming from it is exact. A second
    Ctrl-C, or a ``KeyboardInterrupt`` raised inside ``train_step``, stops at once and still saves:
    before any optimizer step of that step, the state after the previous step (random streams
    rewound; BatchNorm statistics of an already-run forward pass are kept); after one, the state as
    it is, counting the step as done (with a warning: the resumed run is then not bit-identical).
    """
    per_step = _check_task(task)
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
    if isinstance(dataset, torch.Tensor):
        check_image(dataset, "dataset")
    elif not (hasattr(dataset, "__len__") and hasattr(dataset, "__getitem__")):
        raise TypeError(f"dataset must be a Dataset of (3, H, W) tensors or a (N, 3, H, W) tensor, "
                        f"got {type(dataset).__name__}")
    n = len(dataset)
    if n < 1:
        raise ValueError("the dataset is empty: training needs at least one image")

    device = get_device(config.device)
    world = distributed.init_from_env(device)
    if world.enabled:
        device = _process_device(device, world)
    shard_rows = distributed.shard_bounds(config.batch_size, world.rank, world.world_size)  # raises unless divisible
    amp_dtype = _resolve_amp(config, device)
    scalers = ({name: _make_scaler(device) for name in task.optimizers}
               if amp_dtype == torch.float16 else {})
    run_dir = config.resolved_run_dir()
    lock = _RunLock(run_dir)

    def lock_run_dir() -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()

    distributed.on_main(lock_run_dir)  # rank 0 holds the lock; a refusal is raised on every process
    try:
        return _train_locked(task, dataset, config, model_name, model_config, resume, sample_images, device=device,
                             world=world, shard_rows=shard_rows, amp_dtype=amp_dtype, scalers=scalers, run_dir=run_dir,
                             per_step=per_step)
    finally:
        lock.release()


def _train_locked(task: Task, dataset: Any, config: TrainConfig, model_name: str, model_config: Any,
                  resume: bool | str | os.PathLike, sample_images: torch.Tensor | None, *, device: torch.device,
                  world: distributed.DistInfo, shard_rows: tuple[int, int], amp_dtype: torch.dtype | None,
                  scalers: dict[str, Any], run_dir: Path, per_step: int = 1) -> dict[str, Any]:
    """:func:`train` once its arguments are checked and ``run_dir`` is locked (``per_step``: the task's
    ``batches_per_step``)."""
    n = len(dataset)
    say = print if world.is_main else (lambda *args, **kwargs: None)
    for model in task.models.values():
        model.to(device)

    # -- start or resume
    generator = torch.Generator().manual_seed(config.seed)
    train_config = jsonable(dataclasses.asdict(config))
    train_config["batches_per_step"] = per_step  # the task's: it moves the data stream too
    start_step, elapsed0 = 0, 0.0
    log_sums: dict[str, float] = {}
    log_counts: dict[str, int] = {}
    source = distributed.on_main(lambda: _resume_source(resume, run_dir))   # rank 0 decides, for every process
    if source is not None:
        info = load_checkpoint(source, task.models, task.optimizers, model_name=model_name, config=model_config,
                               scaler=scalers or None)
        extra = info["extra_state"]
        start_step = info["step"]
        generator.set_state(extra["loop_generator"])
        torch.set_rng_state(extra["torch_rng"])
        if device.type == "cuda" and extra.get("cuda_rng"):
            with contextlib.suppress(RuntimeError):
                torch.cuda.set_rng_state_all(extra["cuda_rng"])
        log_sums = dict(extra.get("log_sums", {}))
        log_counts = dict(extra.get("log_counts", {}))
        elapsed0 = float(extra.get("elapsed_s", 0.0))
        old = extra.get("train_config", {})
        changed = [f"{k}: {old.get(k)!r} -> {train_config[k]!r}" for k in _RESULT_KEYS
                   if k in old and old[k] != train_config[k]]
        if changed and world.is_main:
            warnings.warn("resuming with other settings than the checkpoint's run (the result will differ from an "
                          "uninterrupted run): " + "; ".join(changed), stacklevel=2)
        source = info["path"]
        ranks = extra.get("world_size", 1)
        say(f"resuming from {source} at step {start_step}"
            + (f" ({ranks} process(es) before, {world.world_size} now)" if ranks != world.world_size else ""))
    else:
        torch.manual_seed(config.seed)

    # -- the decoded-image cache (config.cache); rank 0 first, so that a disk cache is built once
    cache_started = time.perf_counter()
    draws = max(config.num_steps - start_step, 0) * per_step * (shard_rows[1] - shard_rows[0])

    def cached() -> tuple[Any, str]:
        return cache_dataset(dataset, config.cache, draws=draws, num_workers=config.num_workers,
                             progress=None if config.progress else False, say=say)

    if world.enabled:
        distributed.on_main(lambda: cached()[1])
    dataset, cache_line = cached()
    cache_s = time.perf_counter() - cache_started

    metrics = _MetricsLog(run_dir / "metrics.csv", keep_until=start_step if source is not None else None) \
        if world.is_main else None
    writer = None
    if config.tensorboard and world.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
            writer = SummaryWriter(log_dir=str(run_dir / "tensorboard"),
                                   purge_step=start_step + 1 if source is not None else None)
        except Exception:  # tensorboard not installed: the CSV is enough
            writer = None

    sample_fn = getattr(task, "sample", None)
    sample_every = config.sample_every if callable(sample_fn) else None
    sample_batch = None
    if sample_every and world.is_main:
        if sample_images is None:
            sample_images = _stack([dataset[i] for i in range(min(config.num_samples, n))])
        sample_batch = check_image(sample_images, "sample_images")[: config.num_samples].to(device)

    ctx = StepContext(task.optimizers, device, generator, amp_dtype, scalers, config.grad_clip,
                      world_size=world.world_size, rank=world.rank)
    step = start_step
    last_saved = start_step if source is not None else None
    last_checkpoint = Path(source) if source is not None else None
    last_sample: Path | None = None
    last_row: dict[str, float] = {}
    t0 = time.perf_counter()

    def elapsed() -> float:
        return elapsed0 + time.perf_counter() - t0

    def save(at: int) -> Path:
        bad = [f"{name}.{key}" for name, model in task.models.items() for key, t in model.state_dict().items()
               if t.is_floating_point() and not bool(torch.isfinite(t).all())]
        if bad:
            raise NonFiniteLossError(f"after step {at} the weights hold NaN/inf ({', '.join(bad[:5])}); "
                                     f"no checkpoint written; lower the learning rate or set grad_clip")
        extra_state = {
            "loop_generator": generator.get_state(),
            "torch_rng": torch.get_rng_state(),
            "cuda_rng": torch.cuda.get_rng_state_all() if device.type == "cuda" else [],
            "log_sums": dict(log_sums),
            "log_counts": dict(log_counts),
            "elapsed_s": elapsed(),
            "train_config": train_config,
            "world_size": world.world_size,
        }
        if not world.is_main:  # rank 0 writes; the weights are the same everywhere
            return checkpoint_path(run_dir, at)
        return save_checkpoint(checkpoint_path(run_dir, at), task.models, task.optimizers, model_name=model_name,
                               config=model_config, step=at, extra_state=extra_state, scaler=scalers or None,
                               keep_last=config.keep_last)

    def save_samples(at: int) -> Path:
        from . import viz

        path = run_dir / "samples" / f"step_{at:06d}.png"
        if not world.is_main:
            return path
        cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
            if device.type == "cuda" else []
        with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices), _eval_mode(task.models), ctx.autocast():
            out = sample_fn(sample_batch, torch.Generator().manual_seed(config.seed))
        rows = {k: v.detach().float().cpu() for k, v in out.items()}
        fig = viz.image_grid(rows, max_cols=config.num_samples)
        path.parent.mkdir(exist_ok=True)
        try:
            viz.save_png(fig, path)
        finally:
            import matplotlib.pyplot as plt
            plt.close(fig)
        return path

    from tqdm.auto import tqdm

    loader = DataLoader(dataset, batch_sampler=_StepBatches(n, config.batch_size, config.seed, start_step,
                                                            config.num_steps, shard_rows, per_step),
                        num_workers=config.num_workers, collate_fn=_stack, pin_memory=device.type == "cuda",
                        # its own generator: creating the iterator must not draw from torch's global RNG
                        generator=torch.Generator().manual_seed(config.seed))
    bar = tqdm(total=max(config.num_steps, start_step), initial=start_step, desc=config.run_name,
               disable=not config.progress or not world.is_main, dynamic_ncols=True)
    restore_batchnorm = distributed.convert_batchnorm(task.models.values(), device)  # global-batch statistics
    distributed.broadcast_state(task.models.values())                                # rank 0's weights everywhere
    phase = "between"  # or "in_step", "saving"
    data_wait = 0.0  # seconds spent getting batches: loader, copy to the device, crops and flips
    loop_started = waited_from = time.perf_counter()
    try:
        with _DeferredInterrupt() as interrupt:
            for batch in loader:
                check_image(batch, f"batch of step {step}")
                batch = batch.to(device, non_blocking=True)
                if config.augment:  # this process's rows of the global batch's crops
                    batch = apply_crop_flip(batch, torch.cat([step_crops(number, config.batch_size, config.seed)
                                                              [slice(*shard_rows)] for number in
                                                              range(step * per_step, (step + 1) * per_step)]))
                data_wait += time.perf_counter() - waited_from
                ctx.zero_grad()
                ctx._begin(step)
                rng_before = (generator.get_state(), torch.get_rng_state())
                phase = "in_step"
                losses = task.train_step(batch, step, ctx)
                phase = "between"
                if not isinstance(losses, Mapping):
                    raise TypeError(f"train_step must return a dict {{loss name: float}}, got {type(losses).__name__}")
                losses = {str(k): _as_float(str(k), v, step, finite=not world.enabled) for k, v in losses.items()}
                if world.enabled:  # means over the processes, and stop together (Ctrl-C or a NaN anywhere)
                    losses, (stop, failed) = distributed.reduce_step_values(
                        losses, [interrupt.requested, ctx._error is not None], device)
                    if failed:
                        raise NonFiniteLossError(ctx._error or f"a loss was NaN or infinite in another process "
                                                               f"at step {step}")
                    losses = {k: _as_float(k, v, step) for k, v in losses.items()}
                    interrupt.requested = stop
                step += 1
                for k, v in losses.items():
                    log_sums[k] = log_sums.get(k, 0.0) + v
                    log_counts[k] = log_counts.get(k, 0) + 1
                if (step % config.log_every == 0 or step == config.num_steps) and log_counts:  # the last step too
                    last_row = {k: log_sums[k] / log_counts[k] for k in log_sums}
                    if metrics is not None:
                        metrics.append({"step": step, "time_s": round(elapsed(), 3), **last_row})
                    if writer is not None:
                        for k, v in last_row.items():
                            writer.add_scalar(f"loss/{k}", v, step)
                    bar.set_postfix({k: f"{v:.4g}" for k, v in last_row.items()}, refresh=False)
                    log_sums, log_counts = {}, {}
                bar.update(1)
                if config.checkpoint_every and step % config.checkpoint_every == 0:
                    phase = "saving"
                    last_checkpoint, last_saved = save(step), step
                    phase = "between"
                if sample_every and step % sample_every == 0:
                    last_sample = save_samples(step)
                if interrupt.requested:
                    if last_saved != step:
                        phase = "saving"
                        last_checkpoint, last_saved = save(step), step
                        phase = "between"
                    say(f"stopped at step {step}; checkpoint {last_checkpoint}", file=sys.stderr)
                    distributed.barrier()  # the others wait until rank 0's checkpoint is written
                    raise KeyboardInterrupt(f"training interrupted at step {step}; resume with train(..., resume=True)")
                waited_from = time.perf_counter()
            loop_s = waited_from - loop_started
            if step > start_step:
                if last_saved != step:
                    phase = "saving"
                    last_checkpoint, last_saved = save(step), step
                    phase = "between"
                if sample_every and (last_sample is None or last_sample.stem != f"step_{step:06d}"):
                    last_sample = save_samples(step)
            elif source is not None:
                say(f"already trained to step {start_step} (num_steps={config.num_steps}): nothing to do")
            distributed.barrier()  # the others wait for rank 0's last checkpoint and samples
    except KeyboardInterrupt:
        if phase == "in_step":
            if ctx.stepped:  # part of the step's updates happened: keep them and count the step as done
                step += 1
                warnings.warn(f"interrupted inside step {step - 1} after updating {ctx.stepped}; the checkpoint "
                              f"counts that step as done, so a resumed run will not be bit-identical", stacklevel=2)
            else:  # no update yet: rewind the random streams so the checkpoint is the state after step - 1
                generator.set_state(rng_before[0])
                torch.set_rng_state(rng_before[1])
        if phase != "saving" and last_saved != step and step > start_step:
            last_checkpoint, last_saved = save(step), step
            say(f"interrupted: checkpoint saved at step {step} to {last_checkpoint}", file=sys.stderr)
        raise
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        restore_batchnorm()

    wall = elapsed() - elapsed0
    done = step - start_step
    return {
        "step": step,
        "start_step": start_step,
        "losses": last_row,
        "wall_time_s": wall,
        "images_per_s": done * per_step * config.batch_size / wall if wall > 0 and done else 0.0,
        "run_dir": run_dir,
        "checkpoint": last_checkpoint,
        "resumed_from": Path(source) if source is not None else None,
        "metrics_csv": run_dir / "metrics.csv",
        "last_sample": last_sample,
        "device": str(device),
        "amp_dtype": None if amp_dtype is None else str(amp_dtype).replace("torch.", ""),
        "world_size": world.world_size,
        "data_wait_s": data_wait,
        "data_wait_share": min(data_wait / loop_s, 1.0) if loop_s > 0 and done else 0.0,
        "loop_s": loop_s,
        "cache": cache_line,
        "cache_s": cache_s,
    }

