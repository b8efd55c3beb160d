"""The step: one batch made ready (:func:`_step_batch`: checked, on the device, cropped and flipped) and one
``train_step`` of the task run on it (:func:`_run_step`), its losses checked and, with several processes,
averaged over them.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

import torch

from .. import distributed
from ..data.preprocessing import apply_crop_flip
from ..validation import check_image
from .data_order import _shard_crops
from .settings import NonFiniteLossError
from .state import _Run

__all__: list[str] = []


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



def _step_batch(run: _Run, batch: torch.Tensor) -> torch.Tensor:
    """The loader's batch of the current step, checked, on the device, and (``config.augment``) cropped and
    flipped with this process's rows of the global batch's crops, in the run's memory format."""
    config = run.config
    check_image(batch, f"batch of step {run.step}")
    batch = batch.to(run.device, non_blocking=True)
    if config.augment:
        batch = apply_crop_flip(batch, _shard_crops(run.step, run.per_step, config.batch_size, config.seed,
                                                    run.shard_rows))
    if run.precision.memory_format != "contiguous":
        batch = batch.contiguous(memory_format=run.precision.torch_memory_format)
    return batch


def _run_step(run: _Run, batch: torch.Tensor, interrupt: Any) -> dict[str, float]:
    """The task's ``train_step`` on ``batch``: its losses as floats (means over the processes when there are
    several, which also stop together: Ctrl-C or a NaN anywhere). ``run.rng_before`` keeps the random streams
    from before the step, ``run.phase`` is ``"in_step"`` while the task runs."""
    ctx, step = run.ctx, run.step
    ctx.zero_grad()
    ctx._begin(step)
    run.rng_before = (run.generator.get_state(), torch.get_rng_state())
    run.phase = "in_step"
    losses = run.task.train_step(batch, step, ctx)
    run.phase = "between"
    if not isinstance(losses, Mapping):
        raise TypeError(f"train_step must return a dict {{loss name: float}}, got {type(losses).__name__}")
    losses = {str(k): _as_float(str(k), v, step, finite=not run.world.enabled) for k, v in losses.items()}
    if run.world.enabled:
        losses, (stop, failed) = distributed.reduce_step_values(
            losses, [interrupt.requested, ctx._error is not None], run.device)
        if failed:
            raise NonFiniteLossError(ctx._error or f"a loss was NaN or infinite in another process at step {step}")
        losses = {k: _as_float(k, v, step) for k, v in losses.items()}
        interrupt.requested = stop
    return losses
