"""One training loop for every model of the course: seeded data order, AMP, gradient clipping,
metrics, sample grids, atomic checkpoints and exact resume; bfloat16 autocast and channels_last on the CPU
where they are measured faster (``TrainConfig.cpu_precision``, ``memory_format``).

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

Layout, one module per phase of the loop: :mod:`~inpaint_utils.train.settings` (:class:`TrainConfig`, the
errors), :mod:`~inpaint_utils.train.context` (the :class:`Task` protocol and the :class:`StepContext`),
:mod:`~inpaint_utils.train.data_order` (:func:`epoch_permutation`, :func:`batch_indices`, :func:`step_crops`,
the sampler and the loader), :mod:`~inpaint_utils.train.metrics_log` (``metrics.csv``, :func:`read_metrics`),
:mod:`~inpaint_utils.train.lock` (the run lock), :mod:`~inpaint_utils.train.state` (the run's state shared by
the phases), :mod:`~inpaint_utils.train.start` (set-up and resume), :mod:`~inpaint_utils.train.step` (one
step), :mod:`~inpaint_utils.train.outputs` (logging, checkpoints, sample grids) and
:mod:`~inpaint_utils.train.loop` (:func:`train`, which strings them).
"""
from __future__ import annotations

from .context import StepContext, Task
from .data_order import batch_indices, epoch_permutation, step_crops
from .lock import LOCK_FILE
from .loop import train
from .metrics_log import read_metrics
from .precision import CPU_FASTER, Precision, native_bf16, resolve_precision
from .settings import CPU_PRECISIONS, MEMORY_FORMATS, NonFiniteLossError, RunLockedError, TrainConfig

__all__ = ["Task", "TrainConfig", "StepContext", "NonFiniteLossError", "RunLockedError", "train", "batch_indices",
           "epoch_permutation", "step_crops", "read_metrics", "LOCK_FILE", "resolve_precision", "Precision", "native_bf16",
           "CPU_FASTER", "CPU_PRECISIONS", "MEMORY_FORMATS"]
