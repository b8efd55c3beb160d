"""The set-up and the resume: the checks of :func:`~inpaint_utils.train.train`'s arguments, where it runs
(device, precision and memory format, GradScalers), the start or the resume from a checkpoint (:func:`_resume`), the decoded-image
cache (:func:`_prepare_cache`) and the fixed batch of the sample grids (:func:`_prepare_samples`).
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from .. import distributed
from ..checkpoint import jsonable, latest_checkpoint, load_checkpoint
from ..data.cache import cache_dataset
from ..validation import check_image
from .context import StepContext, Task, _check_task
from .data_order import _stack
from .precision import Precision
from .settings import _RESULT_KEYS, TrainConfig
from .state import _Run

__all__: list[str] = []


def _check_arguments(task: Any, dataset: Any, config: Any, model_name: Any) -> int:
    """Check :func:`~inpaint_utils.train.train`'s arguments; return the task's ``batches_per_step``."""
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
    return per_step


def _make_scaler(device: torch.device) -> Any:
    try:
        return torch.amp.GradScaler(device.type)
    except (AttributeError, TypeError):  # torch < 2.3
        return torch.cuda.amp.GradScaler()


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



def _new_run(task: Task, config: TrainConfig, model_name: str, model_config: Any, *, device: torch.device,
             world: distributed.DistInfo, shard_rows: tuple[int, int], precision: Precision,
             scalers: dict[str, Any], run_dir: Path, per_step: int) -> _Run:
    """The run's state before its start: the task's models on the device (in the run's memory format; their
    weights stay float32), the loop's generator seeded."""
    say = print if world.is_main else (lambda *args, **kwargs: None)
    for model in task.models.values():
        model.to(device)
        if precision.memory_format != "contiguous":
            model.to(memory_format=precision.torch_memory_format)
    train_config = jsonable(dataclasses.asdict(config))
    train_config["batches_per_step"] = per_step  # the task's: it moves the data stream too
    train_config["precision"] = precision.name                 # what resolve_precision decided
    train_config["memory_format_used"] = precision.memory_format
    return _Run(task=task, config=config, model_name=model_name, model_config=model_config, device=device,
                world=world, shard_rows=shard_rows, amp_dtype=precision.amp_dtype, scalers=scalers, run_dir=run_dir,
                per_step=per_step, say=say, generator=torch.Generator().manual_seed(config.seed),
                train_config=train_config, precision=precision)


def _resume(run: _Run, resume: bool | str | os.PathLike) -> None:
    """Start fresh (torch's RNG seeded) or load the checkpoint ``resume`` points to (:func:`_resume_source`):
    weights, optimizers, GradScalers, the random streams, the step and the partial log window."""
    source = distributed.on_main(lambda: _resume_source(resume, run.run_dir))   # rank 0 decides, for every process
    if source is None:
        torch.manual_seed(run.config.seed)
        return
    task = run.task
    info = load_checkpoint(source, task.models, task.optimizers, model_name=run.model_name, config=run.model_config,
                           scaler=run.scalers or None)
    extra = info["extra_state"]
    run.start_step = info["step"]
    run.generator.set_state(extra["loop_generator"])
    torch.set_rng_state(extra["torch_rng"])
    if run.device.type == "cuda" and extra.get("cuda_rng"):
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(extra["cuda_rng"])
    run.log_sums = dict(extra.get("log_sums", {}))
    run.log_counts = dict(extra.get("log_counts", {}))
    run.elapsed0 = float(extra.get("elapsed_s", 0.0))
    old = extra.get("train_config", {})
    changed = [f"{k}: {old.get(k)!r} -> {run.train_config[k]!r}" for k in _RESULT_KEYS
               if k in old and old[k] != run.train_config[k]]
    if changed and run.world.is_main:
        warnings.warn("resuming with other settings than the checkpoint's run (the result will differ from an "
                      "uninterrupted run): " + "; ".join(changed), stacklevel=3)
    run.source = info["path"]
    ranks = extra.get("world_size", 1)
    run.say(f"resuming from {run.source} at step {run.start_step}"
            + (f" ({ranks} process(es) before, {run.world.world_size} now)" if ranks != run.world.world_size else ""))


def _prepare_cache(run: _Run, dataset: Any) -> None:
    """The decoded-image cache (``config.cache``) behind ``dataset``, in ``run.dataset``; rank 0 first, so that
    a disk cache is built once."""
    config = run.config
    cache_started = time.perf_counter()
    draws = max(config.num_steps - run.start_step, 0) * run.per_step * (run.shard_rows[1] - run.shard_rows[0])

    def cached() -> tuple[Any, str]:
        return cache_dataset(dataset, config.cache, draws=draws, num_workers=config.num_workers,
                             progress=None if config.progress else False, say=run.say)

    if run.world.enabled:
        distributed.on_main(lambda: cached()[1])
    run.dataset, run.cache_line = cached()
    run.cache_s = time.perf_counter() - cache_started


def _prepare_samples(run: _Run, sample_images: torch.Tensor | None, n: int) -> None:
    """The task's ``sample`` and the fixed batch of its grids on the device (rank 0; none when it has no
    ``sample`` or ``sample_every`` is off)."""
    config = run.config
    run.sample_fn = getattr(run.task, "sample", None)
    run.sample_every = config.sample_every if callable(run.sample_fn) else None
    if run.sample_every and run.world.is_main:
        if sample_images is None:
            sample_images = _stack([run.dataset[i] for i in range(min(config.num_samples, n))])
        run.sample_batch = check_image(sample_images, "sample_images")[: config.num_samples].to(run.device)
        if run.precision.memory_format != "contiguous":
            run.sample_batch = run.sample_batch.contiguous(memory_format=run.precision.torch_memory_format)


def _step_context(run: _Run) -> StepContext:
    """The context every ``train_step`` of the run receives."""
    return StepContext(run.task.optimizers, run.device, run.generator, run.amp_dtype, run.scalers,
                       run.config.grad_clip, world_size=run.world.world_size, rank=run.world.rank)
