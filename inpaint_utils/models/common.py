"""What every model file of the course shares: the config dataclasses' (de)serialisation for checkpoints
and their ``tiny()`` variant (:class:`ModelConfig`), and the check of a model's ``config`` argument
(:func:`check_config`). Each model file keeps its paper's architecture table; this holds none."""
from __future__ import annotations

from dataclasses import asdict, fields
from typing import Any, ClassVar, Mapping, Optional, TypeVar

import torch
from torch import nn

__all__ = ["ModelConfig", "check_config", "adam_optimizers", "update", "Rng"]

#: a model's or a mask draw's random source: a ``torch.Generator``, or ``None`` for torch's global RNG.
Rng = Optional[torch.Generator]

C = TypeVar("C", bound="ModelConfig")


class ModelConfig:
    """Mixin of a model's ``@dataclass`` config.

    * ``to_dict()``: a plain JSON-able dict of every field (tuples as lists), what a checkpoint stores;
    * ``from_dict(data)``: its inverse (lists back to tuples); unknown keys raise, naming the known ones
      (a checkpoint of another model);
    * ``tiny(**overrides)``: the same topology with the narrow settings of :attr:`TINY`, for tests and
      smoke runs.
    """

    #: the settings of ``tiny()`` (each config says what they make).
    TINY: ClassVar[dict[str, Any]] = {}

    @classmethod
    def tiny(cls: type[C], **overrides: Any) -> C:
        return cls(**{**cls.TINY, **overrides})

    def to_dict(self) -> dict[str, Any]:
        return {k: list(v) if isinstance(v, tuple) else v for k, v in asdict(self).items()}

    @classmethod
    def from_dict(cls: type[C], data: Mapping[str, Any]) -> C:
        names = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - names)
        if unknown:
            raise ValueError(f"unknown {cls.__name__} keys {unknown}; known: {sorted(names)}")
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


def check_config(config: Any, config_class: type[C]) -> C:
    """A model's ``config`` argument: ``None`` gives the paper's defaults (``config_class()``); anything but
    a ``config_class`` raises ``TypeError``."""
    cfg = config if config is not None else config_class()
    if not isinstance(cfg, config_class):
        raise TypeError(f"config must be a {config_class.__name__}, got {type(cfg).__name__}")
    return cfg


def adam_optimizers(models: Mapping[str, nn.Module | None], lrs: Mapping[str, float],
                    betas: tuple[float, float]) -> tuple[dict[str, nn.Module], dict[str, torch.optim.Optimizer]]:
    """A task's ``(models, optimizers)``: the models that are not ``None`` (a task trained without its
    discriminator leaves it out), each with an Adam optimiser at its learning rate ``lrs[name]``."""
    kept = {name: model for name, model in models.items() if model is not None}
    return kept, {name: torch.optim.Adam(model.parameters(), lr=lrs[name], betas=betas) for name, model in kept.items()}


def update(ctx: Any, loss: torch.Tensor, optimizer: str, name: str | None = None) -> None:
    """One update of a task's ``optimizer`` inside a training step: back-propagate ``loss`` into its
    parameters (``ctx.backward``, which refuses a NaN or infinite loss, labelled ``name``), then step it."""
    ctx.backward(loss, optimizer, name=name)
    ctx.step(optimizer)
