"""What a training is set with (:class:`TrainConfig`) and the two errors a run stops with
(:class:`NonFiniteLossError`, :class:`RunLockedError`).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..config import runs_dir
from ..data.cache import CACHE_MODES

__all__ = ["TrainConfig", "NonFiniteLossError", "RunLockedError", "CPU_PRECISIONS", "MEMORY_FORMATS"]

#: the values of ``TrainConfig.cpu_precision`` (the short names of ``amp_dtype``)
CPU_PRECISIONS = ("auto", "fp32", "bf16")
#: the values of ``TrainConfig.memory_format``
MEMORY_FORMATS = ("auto", "contiguous", "channels_last")

_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
#: TrainConfig fields that change the numbers of a run; a resume with other values is warned about.
#: ``precision`` and ``memory_format_used`` are what :func:`~inpaint_utils.train.precision.resolve_precision` decided.
_RESULT_KEYS = ("batch_size", "seed", "grad_clip", "amp", "amp_dtype", "augment", "batches_per_step", "precision",
                "memory_format_used")


class NonFiniteLossError(FloatingPointError):
    """A loss (or, before a checkpoint, a weight) became NaN or infinite; the message names the step
    and the loss. Lower the learning rate, turn on ``grad_clip`` or check the inputs."""


class RunLockedError(OSError):
    """Another training is writing into the same run folder; the message names it (pid, host, since)."""



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
    ``cpu_precision`` (the CPU's counterpart of ``amp``; not used on other devices): ``"fp32"``, ``"bf16"``
    (bfloat16 autocast around the forward passes) or ``"auto"`` (default): bfloat16 only on a CPU with native
    BF16 and for a model measured faster in it, float32 elsewhere. ``memory_format``: ``"contiguous"``,
    ``"channels_last"`` (the images and the convolution weights) or ``"auto"`` (default: where measured
    faster for the model on the CPU). Both are resolved by :func:`~inpaint_utils.train.resolve_precision`;
    weights, optimizer state, losses and checkpoints stay float32 (a run resumes under another precision,
    with a warning that its numbers differ from an uninterrupted run's).
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
    cpu_precision: str = "auto"
    memory_format: str = "auto"

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
        if self.cpu_precision not in CPU_PRECISIONS:
            raise ValueError(f"cpu_precision must be one of {CPU_PRECISIONS}, got {self.cpu_precision!r}")
        if self.memory_format not in MEMORY_FORMATS:
            raise ValueError(f"memory_format must be one of {MEMORY_FORMATS}, got {self.memory_format!r}")
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

