"""The data order: which images each step trains on (:func:`epoch_permutation`, :func:`batch_indices`, the
loader's sampler :class:`_StepBatches`), with which crops and flips (:func:`step_crops`), and the loader that
feeds them (:func:`_step_loader`).
"""
from __future__ import annotations

import hashlib
from typing import Any, Iterator

import torch
from torch.utils.data import DataLoader, Sampler

from ..data.preprocessing import random_crop_flip_params
from .settings import TrainConfig

__all__ = ["epoch_permutation", "batch_indices", "step_crops"]


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


def _batch_numbers(step: int, per_step: int) -> range:
    """The numbers of the batches of ``step`` in the stream, ``per_step`` (``batches_per_step``) of them:
    ``step * per_step .. (step + 1) * per_step - 1``."""
    return range(step * per_step, (step + 1) * per_step)


def _shard_crops(step: int, per_step: int, batch_size: int, seed: int, rows: tuple[int, int]) -> torch.Tensor:
    """This process's rows ``[lo, hi)`` of the crops and flips of each batch of ``step``, one batch after the
    other: the ``(per_step * (hi - lo), 2, 3)`` matrices that :func:`inpaint_utils.data.apply_crop_flip` applies
    to this process's batch."""
    return torch.cat([step_crops(number, batch_size, seed)[slice(*rows)] for number in _batch_numbers(step, per_step)])


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
            for number in _batch_numbers(step, self.per_step):
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


def _step_loader(dataset: Any, n: int, config: TrainConfig, start: int, rows: tuple[int, int], per_step: int,
                 device: torch.device) -> DataLoader:
    """The batches of steps ``start .. config.num_steps - 1`` (this process's ``rows`` of each), as tensors."""
    return DataLoader(dataset, batch_sampler=_StepBatches(n, config.batch_size, config.seed, start, config.num_steps,
                                                          rows, per_step),
                      num_workers=config.num_workers, collate_fn=_stack, pin_memory=device.type == "cuda",
                      # its own generator: creating the iterator must not draw from torch's global RNG
                      generator=torch.Generator().manual_seed(config.seed))
