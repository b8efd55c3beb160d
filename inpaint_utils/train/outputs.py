"""Logging and saving: the log window and its rows (:func:`_log`: ``metrics.csv``, TensorBoard, the progress
bar), the checkpoints (:func:`_save`, :func:`_checkpoint`) and the sample grids (:func:`_save_samples`).
"""
from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Iterator, Mapping

import torch
from torch import nn

from ..checkpoint import checkpoint_path, save_checkpoint
from .metrics_log import _MetricsLog
from .settings import NonFiniteLossError
from .state import _Run

__all__: list[str] = []


def _open_logs(run: _Run) -> None:
    """``metrics.csv`` (kept up to the resumed step) and TensorBoard's writer when it is installed; rank 0 only."""
    config, resumed = run.config, run.source is not None
    if run.world.is_main:
        run.metrics = _MetricsLog(run.run_dir / "metrics.csv", keep_until=run.start_step if resumed else None)
    if config.tensorboard and run.world.is_main:
        try:
            from torch.utils.tensorboard import SummaryWriter
            run.writer = SummaryWriter(log_dir=str(run.run_dir / "tensorboard"),
                                       purge_step=run.start_step + 1 if resumed else None)
        except Exception:  # tensorboard not installed: the CSV is enough
            run.writer = None


def _log(run: _Run, losses: Mapping[str, float]) -> None:
    """Add the step's ``losses`` to the log window; every ``log_every`` steps and at the last one, write the
    window's means (``metrics.csv``, TensorBoard, the progress bar) and start a new window."""
    step, config = run.step, run.config
    for k, v in losses.items():
        run.log_sums[k] = run.log_sums.get(k, 0.0) + v
        run.log_counts[k] = run.log_counts.get(k, 0) + 1
    if (step % config.log_every == 0 or step == config.num_steps) and run.log_counts:  # the last step too
        run.last_row = {k: run.log_sums[k] / run.log_counts[k] for k in run.log_sums}
        if run.metrics is not None:
            run.metrics.append({"step": step, "time_s": round(run.elapsed(), 3), **run.last_row})
        if run.writer is not None:
            for k, v in run.last_row.items():
                run.writer.add_scalar(f"loss/{k}", v, step)
        run.bar.set_postfix({k: f"{v:.4g}" for k, v in run.last_row.items()}, refresh=False)
        run.log_sums, run.log_counts = {}, {}


def _save(run: _Run, at: int) -> Path:
    """The checkpoint of step ``at`` (written by rank 0; the weights are the same everywhere): models,
    optimizers, GradScalers, the random streams, the log window. Weights holding NaN / inf are never saved."""
    task = run.task
    bad = [f"{name}.{key}" for name, model in task.models.items() for key, t in model.state_dict().items()
           if t.is_floating_point() and not bool(torch.isfinite(t).all())]
    if bad:
        raise NonFiniteLossError(f"after step {at} the weights hold NaN/inf ({', '.join(bad[:5])}); "
                                 f"no checkpoint written; lower the learning rate or set grad_clip")
    extra_state = {
        "loop_generator": run.generator.get_state(),
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if run.device.type == "cuda" else [],
        "log_sums": dict(run.log_sums),
        "log_counts": dict(run.log_counts),
        "elapsed_s": run.elapsed(),
        "train_config": run.train_config,
        "world_size": run.world.world_size,
    }
    if not run.world.is_main:
        return checkpoint_path(run.run_dir, at)
    return save_checkpoint(checkpoint_path(run.run_dir, at), task.models, task.optimizers, model_name=run.model_name,
                           config=run.model_config, step=at, extra_state=extra_state, scaler=run.scalers or None,
                           keep_last=run.config.keep_last)


def _checkpoint(run: _Run) -> None:
    """Save the current step (``run.phase`` is ``"saving"`` meanwhile, so that an interrupt does not save twice)."""
    run.phase = "saving"
    run.last_checkpoint, run.last_saved = _save(run, run.step), run.step
    run.phase = "between"


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



def _save_samples(run: _Run, at: int) -> Path:
    """The grid of ``task.sample`` on the fixed batch at step ``at``, ``samples/step_XXXXXX.png`` (rank 0): in
    eval mode, with a fresh generator seeded by ``seed`` and without touching the run's random streams."""
    from .. import viz

    config, device = run.config, run.device
    path = run.run_dir / "samples" / f"step_{at:06d}.png"
    if not run.world.is_main:
        return path
    cuda_devices = [device.index if device.index is not None else torch.cuda.current_device()] \
        if device.type == "cuda" else []
    with torch.no_grad(), torch.random.fork_rng(devices=cuda_devices), _eval_mode(run.task.models), \
            run.ctx.autocast():
        out = run.sample_fn(run.sample_batch, torch.Generator().manual_seed(config.seed))
    rows = {k: v.detach().float().cpu() for k, v in out.items()}
    fig = viz.image_grid(rows, max_cols=config.num_samples)
    path.parent.mkdir(exist_ok=True)
    try:
        viz.save_png(fig, path)
    finally:
        import matplotlib.pyplot as plt
        plt.close(fig)
    return path
