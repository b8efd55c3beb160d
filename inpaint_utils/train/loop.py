"""The loop that strings the phases of a training (:func:`train`): check and lock, set up or resume, then step
after step (batch, train_step, log, checkpoint, samples), a last checkpoint, and the summary; a Ctrl-C
finishes the step and saves (:class:`_DeferredInterrupt`, :func:`_save_interrupted`).
"""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .. import distributed
from ..config import get_device
from .context import Task
from .data_order import _step_loader
from .lock import _RunLock
from .outputs import _checkpoint, _log, _open_logs, _save, _save_samples
from .precision import resolve_precision
from .settings import TrainConfig
from .start import (_check_arguments, _make_scaler, _new_run, _prepare_cache, _prepare_samples, _process_device,
                    _resume, _step_context)
from .state import _Run
from .step import _run_step, _step_batch

__all__ = ["train"]


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



def train(task: Task, dataset: Any, config: TrainConfig, *, model_name: str, model_config: Mapping[str, Any] | Any,
          resume: bool | str | os.PathLike = True, sample_images: torch.Tensor | None = None,
          on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """Train ``task`` on ``dataset`` for ``config.num_steps`` steps in total; return a summary.

    ``dataset``: a ``torch.utils.data.Dataset`` of ``(3, H, W)`` images in ``[0, 1]`` (e.g.
    :class:`inpaint_utils.data.ImageFolder`) or a tensor ``(N, 3, H, W)``. ``model_name`` and
    ``model_config`` (dict or dataclass) are stored in every checkpoint and checked on resume.
    ``resume``: ``True`` continues from the newest checkpoint of the run folder when there is one (a
    newer one that fails its checks, e.g. a file damaged by a crash or a full disk, is moved aside to
    ``step_XXXXXX.damaged`` with a warning and the previous one is used); ``False`` starts fresh (and refuses a run folder that already holds checkpoints); a path resumes
    from that checkpoint. ``sample_images``: the ``(B, 3, H, W)`` images of the sample grids (default:
    the first ``config.num_samples`` of ``dataset``). ``on_start``: called (on rank 0) once the run is accepted:
    the run folder locked and the checkpoint resumed from (if any) checked against ``model_name`` and
    ``model_config``, before the first step; a refused run never calls it (``inpaint train`` records its
    command there).

    Returns ``{"step", "start_step", "losses" (means of the last logged window), "wall_time_s",
    "images_per_s", "run_dir", "checkpoint", "resumed_from", "metrics_csv", "last_sample", "device",
    "amp_dtype", "precision", "memory_format", "precision_why", "world_size", "data_wait_s", "data_wait_share",
    "loop_s", "cache", "cache_s"}`` (the same
    on every process, except the last five; ``images_per_s`` counts the global batch, ``batches_per_step``
    of them per step). ``precision``: the dtype of the forward passes (``"float32"``, ``"bfloat16"``,
    ``"float16"``), ``memory_format`` the run's (``"contiguous"`` or ``"channels_last"``), ``precision_why`` the
    reason (:func:`~inpaint_utils.train.resolve_precision`). ``data_wait_s``:
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
    per_step = _check_arguments(task, dataset, config, model_name)
    device = get_device(config.device)
    world = distributed.init_from_env(device)
    if world.enabled:
        device = _process_device(device, world)
    shard_rows = distributed.shard_bounds(config.batch_size, world.rank, world.world_size)  # raises unless divisible
    precision = resolve_precision(config, device, model_name)
    amp_dtype = precision.amp_dtype
    scalers = ({name: _make_scaler(device) for name in task.optimizers}
               if amp_dtype == torch.float16 else {})
    run_dir = config.resolved_run_dir()
    lock = _RunLock(run_dir)

    def lock_run_dir() -> None:
        run_dir.mkdir(parents=True, exist_ok=True)
        lock.acquire()

    distributed.on_main(lock_run_dir)  # rank 0 holds the lock; a refusal is raised on every process
    try:
        run = _new_run(task, config, model_name, model_config, device=device, world=world, shard_rows=shard_rows,
                       precision=precision, scalers=scalers, run_dir=run_dir, per_step=per_step)
        return _train_locked(run, dataset, resume, sample_images, on_start)
    finally:
        lock.release()


def _train_locked(run: _Run, dataset: Any, resume: bool | str | os.PathLike, sample_images: torch.Tensor | None,
                  on_start: Callable[[], None] | None = None) -> dict[str, Any]:
    """:func:`train` once its arguments are checked and ``run_dir`` is locked: set up or resume, run the steps,
    save the last checkpoint, return the summary."""
    n = len(dataset)
    _resume(run, resume)
    if on_start is not None:
        distributed.on_main(on_start)
    _prepare_cache(run, dataset)
    _open_logs(run)
    _prepare_samples(run, sample_images, n)
    run.ctx = _step_context(run)
    run.step = run.start_step
    run.last_saved = run.start_step if run.source is not None else None
    run.last_checkpoint = Path(run.source) if run.source is not None else None
    run.t0 = time.perf_counter()

    from tqdm.auto import tqdm

    config, world = run.config, run.world
    loader = _step_loader(run.dataset, n, config, run.start_step, run.shard_rows, run.per_step, run.device)
    run.bar = tqdm(total=max(config.num_steps, run.start_step), initial=run.start_step, desc=config.run_name,
                   disable=not config.progress or not world.is_main, dynamic_ncols=True)
    models = run.task.models.values()
    restore_batchnorm = distributed.convert_batchnorm(models, run.device)  # global-batch statistics
    distributed.broadcast_state(models)                                    # rank 0's weights everywhere
    try:
        with _DeferredInterrupt() as interrupt:
            _loop(run, loader, interrupt)
            _finish(run)
    except KeyboardInterrupt:
        _save_interrupted(run)
        raise
    finally:
        run.bar.close()
        if run.writer is not None:
            run.writer.close()
        restore_batchnorm()
        if run.precision.memory_format != "contiguous":   # the models leave as they came: contiguous weights
            for model in models:
                model.to(memory_format=torch.contiguous_format)
    return _summary(run)


def _loop(run: _Run, loader: Any, interrupt: _DeferredInterrupt) -> None:
    """The steps: each one's batch, ``train_step``, log row, periodic checkpoint and sample grid; on a first
    Ctrl-C, a checkpoint after the step and ``KeyboardInterrupt``."""
    config = run.config
    loop_started = waited_from = time.perf_counter()
    for batch in loader:
        batch = _step_batch(run, batch)
        run.data_wait += time.perf_counter() - waited_from
        losses = _run_step(run, batch, interrupt)
        run.step += 1
        _log(run, losses)
        run.bar.update(1)
        if config.checkpoint_every and run.step % config.checkpoint_every == 0:
            _checkpoint(run)
        if run.sample_every and run.step % run.sample_every == 0:
            run.last_sample = _save_samples(run, run.step)
        if interrupt.requested:
            if run.last_saved != run.step:
                _checkpoint(run)
            run.say(f"stopped at step {run.step}; checkpoint {run.last_checkpoint}", file=sys.stderr)
            distributed.barrier()  # the others wait until rank 0's checkpoint is written
            raise KeyboardInterrupt(f"training interrupted at step {run.step}; resume with train(..., resume=True)")
        waited_from = time.perf_counter()
    run.loop_s = waited_from - loop_started


def _finish(run: _Run) -> None:
    """After the last step: its checkpoint and sample grid unless they were just written."""
    step = run.step
    if step > run.start_step:
        if run.last_saved != step:
            _checkpoint(run)
        if run.sample_every and (run.last_sample is None or run.last_sample.stem != f"step_{step:06d}"):
            run.last_sample = _save_samples(run, step)
    elif run.source is not None:
        run.say(f"already trained to step {run.start_step} (num_steps={run.config.num_steps}): nothing to do")
    distributed.barrier()  # the others wait for rank 0's last checkpoint and samples


def _save_interrupted(run: _Run) -> None:
    """A ``KeyboardInterrupt`` stopped the loop: save what a resume can continue from (unless a checkpoint of
    this step exists or was being written). Inside ``train_step``: after an optimizer step, the step counts as
    done (with a warning); before any, the random streams are rewound to the state after the previous step."""
    if run.phase == "in_step":
        if run.ctx.stepped:  # part of the step's updates happened: keep them and count the step as done
            run.step += 1
            warnings.warn(f"interrupted inside step {run.step - 1} after updating {run.ctx.stepped}; the checkpoint "
                          f"counts that step as done, so a resumed run will not be bit-identical", stacklevel=3)
        else:  # no update yet: rewind the random streams so the checkpoint is the state after step - 1
            run.generator.set_state(run.rng_before[0])
            torch.set_rng_state(run.rng_before[1])
    if run.phase != "saving" and run.last_saved != run.step and run.step > run.start_step:
        run.last_checkpoint, run.last_saved = _save(run, run.step), run.step
        run.say(f"interrupted: checkpoint saved at step {run.step} to {run.last_checkpoint}", file=sys.stderr)


def _summary(run: _Run) -> dict[str, Any]:
    """What :func:`train` returns (see there)."""
    wall = run.elapsed() - run.elapsed0
    done = run.step - run.start_step
    data_wait, loop_s = run.data_wait, run.loop_s
    return {
        "step": run.step,
        "start_step": run.start_step,
        "losses": run.last_row,
        "wall_time_s": wall,
        "images_per_s": done * run.per_step * run.config.batch_size / wall if wall > 0 and done else 0.0,
        "run_dir": run.run_dir,
        "checkpoint": run.last_checkpoint,
        "resumed_from": Path(run.source) if run.source is not None else None,
        "metrics_csv": run.run_dir / "metrics.csv",
        "last_sample": run.last_sample,
        "device": str(run.device),
        "amp_dtype": None if run.amp_dtype is None else str(run.amp_dtype).replace("torch.", ""),
        "precision": run.precision.name,
        "memory_format": run.precision.memory_format,
        "precision_why": run.precision.why,
        "world_size": run.world.world_size,
        "data_wait_s": data_wait,
        "data_wait_share": min(data_wait / loop_s, 1.0) if loop_s > 0 and done else 0.0,
        "loop_s": loop_s,
        "cache": run.cache_line,
        "cache_s": run.cache_s,
    }
