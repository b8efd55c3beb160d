"""Data-parallel training on several processes: GPUs of one or many machines (NCCL), or CPU cores (gloo).

Used by :func:`inpaint_utils.train.train` (which calls everything here itself) and by the ``inpaint train
--nproc N`` command (:mod:`inpaint_utils.cli`). Start one process per GPU with ``torchrun``; the loop
reads the process's place from the environment torchrun sets (``RANK``, ``WORLD_SIZE``, ``LOCAL_RANK``,
``MASTER_ADDR``, ``MASTER_PORT``) and joins the group (:func:`init_from_env`)::

    torchrun --standalone --nproc-per-node 8 -m inpaint_utils.cli train ce --data DIR
    torchrun --nnodes 2 --nproc-per-node 8 --rdzv_backend c10d --rdzv_endpoint HOST:29500 \\
             -m inpaint_utils.cli train ce --data DIR                 # on each machine

What is synchronised, and why this way:

* **Data.** ``TrainConfig.batch_size`` is the *global* batch. Every process computes the same global
  batch indices of the step (:func:`inpaint_utils.train.batch_indices`) and loads only its contiguous
  slice (:func:`shard_bounds`), so the data order does not depend on the number of processes.
* **Gradients.** :func:`average_gradients` all-reduces (mean) the gradients of one optimizer's
  parameters inside ``StepContext.step(name)``, before clipping and stepping. Not torch's
  ``DistributedDataParallel``: the course's GAN tasks call ``ctx.backward(loss, name)`` several times per
  step through several networks (the generator loss flows through the discriminator with ``inputs=``
  restricted to the generator's parameters; DeepFill does five critic updates per generator update),
  which DDP's one-forward-one-backward hooks do not fit (unused parameters, repeated backward passes
  through the same module, ``no_sync`` bookkeeping). Averaging exactly the gradients an optimizer is
  about to use, at the moment it uses them, is exact for every task shape and needs no change to the
  networks. The price: the all-reduce starts after the backward pass instead of overlapping with it
  as DDP's buckets do (not measured here).
* **BatchNorm.** :func:`convert_batchnorm` swaps every ``BatchNorm*d`` for one whose training-mode
  statistics are those of the global batch: ``torch.nn.SyncBatchNorm`` on GPUs, and on CPUs
  :class:`AllReduceBatchNorm` (torch 2.14's ``SyncBatchNorm`` raises for CPU tensors; its own
  ``torch.distributed.nn.functional.all_reduce`` still carries gradients but is deprecated in 2.14 in
  favour of the private ``_functional_collectives``, so the statistics go through a ten-line
  differentiable all-reduce, :func:`all_reduce_sum`, built on the public ``dist.all_reduce``). The
  parameters and buffers stay the same objects, so optimizers and checkpoints do not notice.
* **Randomness.** Every process owns the same loop generator (``ctx.generator``) and draws the same
  numbers: per-sample randomness (masks, noise, crop positions) is drawn for the whole global batch and
  each process keeps its rows (``ctx.shard``). Then a run on N processes follows the one-process
  trajectory up to floating-point rounding (the order of sums differs).
* **Files.** Only rank 0 writes (metrics, samples, checkpoints, TensorBoard); the others wait at the
  next collective, or at a barrier at the end. A checkpoint does not depend on the number of processes,
  so a run may resume with another number of them.
* **Failures.** Every collective has a timeout (:func:`timeout_seconds`, ``$INPAINT_DIST_TIMEOUT``,
  default 600 s): a process that dies or hangs makes the others fail after it instead of waiting
  forever (torchrun also stops the remaining processes as soon as one exits with an error). A NaN loss
  on one process stops all of them at the same step (:func:`average_gradients` carries the flag).
"""
from __future__ import annotations

import datetime
import os
import pickle
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Mapping, Sequence, TypeVar

import torch
import torch.distributed as dist
from torch import nn

from . import config

__all__ = [
    "DistInfo",
    "ENV_TIMEOUT",
    "DEFAULT_TIMEOUT_S",
    "timeout_seconds",
    "env_world_size",
    "init_from_env",
    "info",
    "is_distributed",
    "is_main_process",
    "shard_bounds",
    "all_reduce_sum",
    "average_gradients",
    "reduce_step_values",
    "AllReduceBatchNorm",
    "convert_batchnorm",
    "broadcast_state",
    "on_main",
    "barrier",
    "shutdown",
]

T = TypeVar("T")

ENV_TIMEOUT = "INPAINT_DIST_TIMEOUT"
DEFAULT_TIMEOUT_S = 600.0
#: gradients are all-reduced in flat buckets of about this many bytes (a larger tensor is a bucket of its
#: own); the extra memory is one copy of the largest bucket
BUCKET_BYTES = 25 * 2**20


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands: ``rank`` in ``0 .. world_size - 1``, ``local_rank`` on its machine,
    and the group's ``backend`` (``None`` for one process)."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    backend: str | None = None

    @property
    def enabled(self) -> bool:
        """More than one process."""
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        """Rank 0: the process that logs and writes files."""
        return self.rank == 0


def timeout_seconds() -> float:
    """Seconds a collective may wait for the other processes: ``$INPAINT_DIST_TIMEOUT`` or 600."""
    return config.env_seconds(ENV_TIMEOUT, DEFAULT_TIMEOUT_S)


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "").strip()
    if not value:
        return default
    try:
        return int(value)
    except ValueError:
        raise ValueError(f"environment variable {name} must be an integer, got {value!r}") from None


def env_world_size() -> int:
    """``$WORLD_SIZE`` (set by torchrun), 1 when absent."""
    return _env_int("WORLD_SIZE", 1)


def info() -> DistInfo:
    """This process's :class:`DistInfo` (one process when no group is initialised)."""
    if not (dist.is_available() and dist.is_initialized()):
        return DistInfo()
    rank, world = dist.get_rank(), dist.get_world_size()
    return DistInfo(rank=rank, world_size=world, local_rank=_env_int("LOCAL_RANK", rank),
                    backend=str(dist.get_backend()))


def is_distributed() -> bool:
    """A process group with more than one process is initialised."""
    return info().enabled


def is_main_process() -> bool:
    """Rank 0, or the only process."""
    return info().is_main


def init_from_env(device: str | torch.device = "auto", timeout: float | None = None) -> DistInfo:
    """Join the process group that torchrun describes in the environment and return this process's place.

    Nothing happens (one-process :class:`DistInfo`) when ``$WORLD_SIZE`` is absent or 1; an already
    initialised group is used as it is. The backend follows ``device``: NCCL for CUDA (each process takes
    GPU ``LOCAL_RANK`` of its machine), gloo otherwise. ``timeout`` (default :func:`timeout_seconds`)
    bounds every collective, so a dead or stuck process makes the others fail instead of hang.
    """
    from .config import get_device

    if dist.is_available() and dist.is_initialized():
        return info()
    world = env_world_size()
    if world <= 1:
        return DistInfo()
    if not dist.is_available():
        raise RuntimeError("WORLD_SIZE > 1 asks for distributed training, but this torch build has no "
                           "torch.distributed")
    missing = [v for v in ("RANK", "MASTER_ADDR", "MASTER_PORT") if not os.environ.get(v)]
    if missing:
        raise RuntimeError(f"WORLD_SIZE={world} is set but {', '.join(missing)} not: start the processes with "
                           f"torchrun (or `inpaint train --nproc N`), which sets them all")
    rank, local_rank = _env_int("RANK", 0), _env_int("LOCAL_RANK", 0)
    dev = get_device(device)
    seconds = timeout if timeout is not None else timeout_seconds()
    kwargs: dict[str, Any] = {"timeout": datetime.timedelta(seconds=seconds)}
    if dev.type == "cuda":
        count = torch.cuda.device_count()
        if local_rank >= count:
            raise RuntimeError(f"LOCAL_RANK {local_rank} but only {count} GPU(s) visible on this machine: start at "
                               f"most {count} processes per machine (--nproc / --nproc-per-node)")
        torch.cuda.set_device(local_rank)
        backend = "nccl"
        kwargs["device_id"] = torch.device("cuda", local_rank)
    else:
        backend = "gloo"
    try:
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    except TypeError:  # torch < 2.3: no device_id
        kwargs.pop("device_id", None)
        dist.init_process_group(backend, rank=rank, world_size=world, **kwargs)
    return info()


def shutdown() -> None:
    """Leave the process group (when one is initialised)."""
    if dist.is_available() and dist.is_initialized():
        dist.destroy_process_group()


def shard_bounds(n: int, rank: int, world_size: int) -> tuple[int, int]:
    """Rows ``[start, stop)`` of process ``rank`` in a global batch of ``n`` rows split into
    ``world_size`` equal contiguous parts (``n`` must be divisible by ``world_size``)."""
    if world_size < 1 or not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is not in a group of {world_size} process(es)")
    if n % world_size:
        raise ValueError(f"a global batch of {n} cannot be split equally over {world_size} processes: "
                         f"use a batch size divisible by the number of processes")
    size = n // world_size
    return rank * size, (rank + 1) * size


# ------------------------------------------------------------------------------------- collectives

class _AllReduceSum(torch.autograd.Function):
    """Sum over processes; the gradient of every input is the sum of the outputs' gradients over processes."""

    @staticmethod
    def forward(ctx: Any, tensor: torch.Tensor) -> torch.Tensor:  # noqa: D102
        out = tensor.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(out)
        return out

    @staticmethod
    def backward(ctx: Any, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.clone(memory_format=torch.contiguous_format)
        dist.all_reduce(grad)
        return grad


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    """The sum of ``tensor`` over all processes, differentiable (a new tensor; the input is unchanged).
    One process: ``tensor`` itself. Every process must call it at the same point, also in backward."""
    if not is_distributed():
        return tensor
    return _AllReduceSum.apply(tensor)


def _buckets(tensors: Sequence[torch.Tensor], max_bytes: int) -> Iterable[list[torch.Tensor]]:
    """Consecutive groups of tensors of one device and dtype, each at most ``max_bytes`` (or one tensor)."""
    bucket: list[torch.Tensor] = []
    size = 0
    for t in tensors:
        nbytes = t.numel() * t.element_size()
        if bucket and (size + nbytes > max_bytes or t.device != bucket[0].device or t.dtype != bucket[0].dtype):
            yield bucket
            bucket, size = [], 0
        bucket.append(t)
        size += nbytes
    if bucket:
        yield bucket


def average_gradients(params: Sequence[torch.Tensor], error: bool = False, bucket_bytes: int = BUCKET_BYTES) -> bool:
    """Replace each ``p.grad`` by its mean over all processes, in place; return whether any process
    passed ``error=True`` (then no gradient is touched: the caller raises on every process).

    A parameter whose gradient is ``None`` on every process keeps ``None`` (the optimizer skips it, as
    in one process); one that has a gradient on some process only gets zeros elsewhere first.
    Gradients are reduced in flat buckets of ``bucket_bytes``. One process: nothing to do.
    """
    if not is_distributed() or not params:
        return bool(error)
    world = dist.get_world_size()
    device = params[0].device
    has = torch.tensor([p.grad is not None for p in params] + [bool(error)], dtype=torch.float32, device=device)
    dist.all_reduce(has)                                                           # one small collective
    flags = has.tolist()
    if flags[-1] > 0:
        return True
    grads = []
    for p, flag in zip(params, flags[:-1]):
        if flag > 0:
            if p.grad is None:
                p.grad = torch.zeros_like(p)
            grads.append(p.grad)
    for bucket in _buckets(grads, bucket_bytes):
        flat = torch.cat([g.reshape(-1) for g in bucket])
        dist.all_reduce(flat)
        flat.div_(world)
        offset = 0
        for g in bucket:
            g.copy_(flat[offset:offset + g.numel()].view_as(g))
            offset += g.numel()
    return False


def reduce_step_values(values: Mapping[str, float], flags: Sequence[bool], device: torch.device
                       ) -> tuple[dict[str, float], list[bool]]:
    """One all-reduce per step: the mean over processes of each logged value (in ``values``' order) and,
    for each flag, whether any process raised it. Every process must pass the same names (checked)."""
    names = list(values)
    if not is_distributed():
        return dict(values), [bool(f) for f in flags]
    world = dist.get_world_size()
    signature = float(sum((i + 1) * sum(map(ord, k)) for i, k in enumerate(names)) % 2**24)
    vec = torch.tensor([float(values[k]) for k in names] + [float(bool(f)) for f in flags] + [signature, 1.0],
                       dtype=torch.float64, device=device)
    dist.all_reduce(vec)
    out = vec.tolist()
    if out[-2] != signature * world or out[-1] != world:
        raise RuntimeError(f"the processes returned different loss names from train_step (this one: {names}); "
                           f"every process must log the same names")
    n = len(names)
    return {k: v / world for k, v in zip(names, out[:n])}, [v > 0 for v in out[n:n + len(flags)]]


# ------------------------------------------------------------------------------------------ BatchNorm

class AllReduceBatchNorm(nn.modules.batchnorm._BatchNorm):
    """BatchNorm over the global batch for CPU processes (gloo), where ``torch.nn.SyncBatchNorm`` refuses.

    In training mode with several processes: each process sums its rows per channel, the sums and counts
    are added over processes (:func:`all_reduce_sum`), then the squared deviations from that global mean
    are summed the same way (two passes: no ``E[x^2] - E[x]^2`` cancellation). Normalisation, the affine
    map and the running statistics (unbiased variance, ``momentum``) are those of ``nn.BatchNorm*d`` over
    the concatenated batch, and gradients reach every process's rows through the all-reduces. Otherwise
    (eval mode, one process) it is ``nn.BatchNorm*d`` itself. Any input of 2 or more dimensions.
    """

    def _check_input_dim(self, input: torch.Tensor) -> None:
        if input.dim() < 2:
            raise ValueError(f"expected at least 2D input (got {input.dim()}D input)")

    def forward(self, input: torch.Tensor) -> torch.Tensor:
        if not (self.training and is_distributed()):
            return super().forward(input)
        self._check_input_dim(input)
        dims = [0, *range(2, input.dim())]                                     # all but channels
        shape = [1, -1] + [1] * (input.dim() - 2)                               # (1, C, 1, ...)
        x = input.float()                                                       # statistics in float32
        local = torch.cat([x.sum(dims), x.new_tensor([x.numel() / x.shape[1]])])  # (C + 1,): sums, count
        total = all_reduce_sum(local)
        count = total[-1]
        mean = total[:-1] / count                                               # (C,)
        centred = x - mean.view(shape)
        var = all_reduce_sum(centred.square().sum(dims)) / count                # (C,) biased, for normalising
        out = centred * torch.rsqrt(var + self.eps).view(shape)
        if self.affine:
            out = out * self.weight.view(shape) + self.bias.view(shape)
        if self.track_running_stats:
            with torch.no_grad():
                self.num_batches_tracked.add_(1)
                factor = self.momentum if self.momentum is not None else 1.0 / float(self.num_batches_tracked)
                n = float(count)
                unbiased = var.detach() * (n / max(n - 1.0, 1.0))
                self.running_mean.mul_(1 - factor).add_(mean.detach().to(self.running_mean.dtype), alpha=factor)
                self.running_var.mul_(1 - factor).add_(unbiased.to(self.running_var.dtype), alpha=factor)
        return out.to(input.dtype)


_PLAIN_BN = (nn.BatchNorm1d, nn.BatchNorm2d, nn.BatchNorm3d)


def _synced_copy(bn: nn.modules.batchnorm._BatchNorm, cls: type) -> nn.Module:
    new = cls(bn.num_features, bn.eps, bn.momentum, bn.affine, bn.track_running_stats)
    # the same Parameter and buffer objects: optimizers, the task's references and checkpoints keep working
    if bn.affine:
        new.weight, new.bias = bn.weight, bn.bias
    new.running_mean, new.running_var = bn.running_mean, bn.running_var
    new.num_batches_tracked = bn.num_batches_tracked
    new.train(bn.training)
    return new


def convert_batchnorm(models: Iterable[nn.Module], device: torch.device) -> Callable[[], None]:
    """Swap every ``nn.BatchNorm1d/2d/3d`` inside ``models`` (in place, at any depth) for a synchronised
    one: ``nn.SyncBatchNorm`` on CUDA, :class:`AllReduceBatchNorm` otherwise. Parameters and buffers are
    shared with the originals, so the state dict keys and values do not change. Returns a function
    that puts the original modules back (the loop calls it when training ends). One process: no swap."""
    swapped: list[tuple[nn.Module, str, nn.Module]] = []
    if is_distributed():
        cls = nn.SyncBatchNorm if device.type == "cuda" else AllReduceBatchNorm
        roots = list(models)
        for root in roots:
            if isinstance(root, _PLAIN_BN):
                raise TypeError("a task's model is itself a BatchNorm layer; wrap it in a module")
            for parent in list(root.modules()):
                for name, child in list(parent.named_children()):
                    if isinstance(child, _PLAIN_BN):
                        setattr(parent, name, _synced_copy(child, cls))
                        swapped.append((parent, name, child))

    def restore() -> None:
        for parent, name, original in reversed(swapped):
            original.train(getattr(parent, name).training)
            setattr(parent, name, original)
        swapped.clear()

    return restore


def broadcast_state(models: Iterable[nn.Module]) -> None:
    """Copy rank 0's parameters and buffers to every process (in place), so all start from the same
    weights even if a model was initialised without a seed. One process: nothing."""
    if not is_distributed():
        return
    with torch.no_grad():
        for model in models:
            for tensor in model.state_dict(keep_vars=True).values():
                dist.broadcast(tensor.data if isinstance(tensor, nn.Parameter) else tensor, src=0)


# ------------------------------------------------------------------------------------ rank-0 helpers

def on_main(fn: Callable[[], T]) -> T:
    """Run ``fn`` on rank 0 only and return its result on every process; an exception it raises is
    raised on every process (the same type and message), so that all stop together instead of leaving
    the others waiting. One process: ``fn()``."""
    if not is_distributed():
        return fn()
    payload: list[Any] = [None]
    error: BaseException | None = None
    if dist.get_rank() == 0:
        try:
            payload = [("ok", fn())]
        except Exception as e:  # noqa: BLE001 - handed to every process, re-raised below
            error = e
            try:
                pickle.dumps(e)
                payload = [("error", e)]
            except Exception:  # noqa: BLE001
                payload = [("error", RuntimeError(f"{type(e).__name__}: {e}"))]
    dist.broadcast_object_list(payload, src=0)
    kind, value = payload[0]
    if kind == "error":
        if error is not None:
            raise error
        raise value
    return value


def barrier() -> None:
    """Wait until every process gets here (bounded by the group's timeout). One process: nothing."""
    if is_distributed():
        dist.barrier()
