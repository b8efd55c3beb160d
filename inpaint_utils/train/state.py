"""The state of one training run (:class:`_Run`), shared by the phases of the loop: set up and resumed by
:mod:`~inpaint_utils.train.start`, moved on by :mod:`~inpaint_utils.train.step`, logged and saved by
:mod:`~inpaint_utils.train.outputs`, strung together by :mod:`~inpaint_utils.train.loop`.
"""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import torch

from .. import distributed
from .context import StepContext, Task
from .metrics_log import _MetricsLog
from .settings import TrainConfig

__all__: list[str] = []


@dataclass(eq=False)
class _Run:
    """One call of :func:`~inpaint_utils.train.train` once its arguments are checked and its folder locked."""

    # what train() decided: the task, its settings, where it runs
    task: Task
    config: TrainConfig
    model_name: str
    model_config: Any
    device: torch.device
    world: distributed.DistInfo
    shard_rows: tuple[int, int]          # this process's rows of each global batch
    amp_dtype: torch.dtype | None
    scalers: dict[str, Any]              # one GradScaler per optimizer under fp16, else empty
    run_dir: Path
    per_step: int                        # the task's batches_per_step
    say: Callable[..., None]             # print on rank 0, nothing elsewhere
    # the start or the resume (start._resume)
    generator: torch.Generator           # the loop's, handed to the task as ctx.generator
    train_config: dict[str, Any]         # the TrainConfig as stored in every checkpoint
    start_step: int = 0
    elapsed0: float = 0.0                # seconds trained before the resume
    source: Path | None = None           # the checkpoint resumed from
    log_sums: dict[str, float] = field(default_factory=dict)    # the log window not yet written
    log_counts: dict[str, int] = field(default_factory=dict)
    # what the set-up prepared (start._prepare_cache, outputs._open_logs, start._prepare_samples)
    dataset: Any = None                  # the dataset behind its cache
    precision: Any = None                # what resolve_precision decided (a precision.Precision)
    cache_line: str = ""
    cache_s: float = 0.0
    metrics: _MetricsLog | None = None   # rank 0 only
    writer: Any = None                   # TensorBoard's, when installed and wanted (rank 0)
    sample_fn: Callable[..., Any] | None = None
    sample_every: int | None = None
    sample_batch: torch.Tensor | None = None
    ctx: StepContext | None = None
    bar: Any = None                      # the progress bar
    # the loop's progress
    step: int = 0                        # steps completed
    last_saved: int | None = None
    last_checkpoint: Path | None = None
    last_sample: Path | None = None
    last_row: dict[str, float] = field(default_factory=dict)   # the last logged means
    phase: str = "between"               # or "in_step", "saving": what a KeyboardInterrupt interrupted
    rng_before: tuple[torch.Tensor, torch.Tensor] | None = None  # the random streams before the current step
    t0: float = 0.0
    data_wait: float = 0.0               # seconds spent getting batches: loader, copy to the device, crops and flips
    loop_s: float = 0.0

    def elapsed(self) -> float:
        """Seconds of training, those before the resume included."""
        return self.elapsed0 + time.perf_counter() - self.t0
