"""The two sides of a training step: what a model provides to the loop (the :class:`Task` protocol, checked
by :func:`_check_task`) and what its ``train_step`` receives besides the batch (:class:`StepContext`: the
device, the loop's generator, autocast, and the update helpers with AMP scaling and gradient clipping).
"""
from __future__ import annotations

import contextlib
from typing import Any, Mapping, Protocol, runtime_checkable

import torch
from torch import nn

from .. import distributed
from .settings import NonFiniteLossError

__all__ = ["Task", "StepContext"]


@runtime_checkable
class Task(Protocol):
    """What a model provides to :func:`train` (see :mod:`inpaint_utils.train` for an example). An optional
    ``sample(batch, generator) -> dict[str, Tensor]`` method returns the rows of the sample grid
    (``(B, 3, H, W)`` images or ``(B, 1, H, W)`` masks in ``[0, 1]``), e.g. masked / output / target.
    An optional int ``batches_per_step`` (default 1) makes each step's batch that many distinct batches,
    one after the other, for the task to split (``batch.chunk(batches_per_step)``)."""

    models: dict[str, nn.Module]
    optimizers: dict[str, torch.optim.Optimizer]

    def train_step(self, batch: torch.Tensor, step: int, ctx: "StepContext") -> dict[str, float]:
        ...


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
        its GradScaler under fp16), from float32 whatever dtype autocast gave it. A NaN or infinite ``loss`` raises :class:`NonFiniteLossError`
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
        loss = loss.float()  # a loss computed under autocast is back-propagated from float32
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

