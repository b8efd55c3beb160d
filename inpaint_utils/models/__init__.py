"""The course's networks, and a registry that rebuilds one from a checkpoint's (name, config dict).

``context_encoder`` (Pathak et al. 2016, arXiv:1604.07379; notebooks 02 and 03); ``deepfill`` and
``deepfill_critic`` (Yu et al. 2018, arXiv:1801.07892, contextual attention; notebook 05); ``glcic`` and
``glcic_discriminator`` (Iizuka et al. 2017, completion network and context discriminators; notebook 04);
``partial_conv`` (Liu et al. 2018, arXiv:1804.07723, the PConv U-Net); ``deepfill_v2`` and ``sn_patchgan``
(Yu et al. 2019, arXiv:1806.03589, gated convolutions and SN-PatchGAN); both for irregular holes.
A checkpoint stores
``model.model_name`` and ``model.config.to_dict()``; :func:`build_model` turns them back into a model::

    g = build_model("context_encoder", ContextEncoderConfig.tiny())
    same = build_model(g.model_name, g.config.to_dict())
"""
from __future__ import annotations

from typing import Any, Mapping

import torch
import torch.nn as nn

from .context_encoder import (
    AUTHORS_FILL,
    ChannelwiseFC,
    ContextEncoderConfig,
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
    ContextEncoderTask,
    count_parameters,
    init_weights,
)
from .cascade import CascadeConfig, CascadeContextEncoder, CascadeTask
from .deepfill import DeepFillConfig, DeepFillCritic, DeepFillGenerator, DeepFillTask, contextual_attention
from .gated_conv import (
    DeepFillV2Config,
    DeepFillV2Generator,
    DeepFillV2Task,
    GatedConv2d,
    SNPatchGANDiscriminator,
)
from .glcic import CompletionNetwork, GLCICConfig, GLCICDiscriminator, GLCICTask
from .partial_conv import PartialConv2d, PConvConfig, PConvTask, PConvUNet, freeze_encoder_batchnorm, irregular_masks

__all__ = [
    "TASKS",
    "LEARNED",
    "AUTHORS_FILL",
    "ChannelwiseFC",
    "ContextEncoderConfig",
    "ContextEncoderDiscriminator",
    "ContextEncoderGenerator",
    "ContextEncoderTask",
    "MODELS",
    "build_model",
    "count_parameters",
    "init_weights",
    "register_model",
    "CascadeConfig",
    "CascadeContextEncoder",
    "CascadeTask",
    "DeepFillConfig",
    "DeepFillCritic",
    "DeepFillGenerator",
    "DeepFillTask",
    "contextual_attention",
    "DeepFillV2Config",
    "DeepFillV2Generator",
    "DeepFillV2Task",
    "GatedConv2d",
    "SNPatchGANDiscriminator",
    "CompletionNetwork",
    "GLCICConfig",
    "GLCICDiscriminator",
    "GLCICTask",
    "PartialConv2d",
    "PConvConfig",
    "PConvTask",
    "PConvUNet",
    "freeze_encoder_batchnorm",
    "irregular_masks",
]

#: name -> (model class, config class). Each model class has ``model_name`` equal to its key.
MODELS: dict[str, tuple[type[nn.Module], type]] = {
    "context_encoder": (ContextEncoderGenerator, ContextEncoderConfig),
    "context_encoder_discriminator": (ContextEncoderDiscriminator, ContextEncoderConfig),
    "cascade_context_encoder": (CascadeContextEncoder, CascadeConfig),
    "deepfill": (DeepFillGenerator, DeepFillConfig),
    "deepfill_critic": (DeepFillCritic, DeepFillConfig),
    "deepfill_v2": (DeepFillV2Generator, DeepFillV2Config),
    "sn_patchgan": (SNPatchGANDiscriminator, DeepFillV2Config),
    "glcic": (CompletionNetwork, GLCICConfig),
    "glcic_discriminator": (GLCICDiscriminator, GLCICConfig),
    "partial_conv": (PConvUNet, PConvConfig),
}


#: checkpoint model name -> the task that trains it; its ``training_masks(config, n, generator, *,
#: mask_kind, mask_ratio)`` draws the holes of its paper's protocol (what a trained model is scored on).
TASKS: dict[str, type] = {
    "context_encoder": ContextEncoderTask,
    "cascade_context_encoder": CascadeTask,
    "deepfill": DeepFillTask,
    "deepfill_v2": DeepFillV2Task,
    "glcic": GLCICTask,
    "partial_conv": PConvTask,
}
#: learned method (the name ``inpaint fill`` / ``evaluate`` and the comparisons use) -> the model name its
#: checkpoints carry (``model.model_name``).
LEARNED: dict[str, str] = {
    "ce": "context_encoder",
    "cascade": "cascade_context_encoder",
    "glcic": "glcic",
    "glcic_poisson": "glcic",
    "deepfill": "deepfill",
    "pconv": "partial_conv",
    "deepfill_v2": "deepfill_v2",
}


def register_model(name: str, model_cls: type[nn.Module], config_cls: type) -> None:
    """Add a model to :data:`MODELS` (the config class needs ``from_dict``; the model takes
    ``(config, generator=..., seed=...)``). Re-registering a name with other classes raises."""
    if name in MODELS and MODELS[name] != (model_cls, config_cls):
        raise ValueError(f"model name {name!r} is already registered to {MODELS[name][0].__name__}")
    MODELS[name] = (model_cls, config_cls)


def build_model(name: str, config: Any = None, generator: torch.Generator | None = None,
                seed: int | None = None) -> nn.Module:
    """A fresh model ``name`` from ``config``: a config object, a dict (as saved by ``to_dict()``) or
    ``None`` (the paper's defaults). Built on the CPU in float32; move it yourself."""
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known: {sorted(MODELS)}")
    model_cls, config_cls = MODELS[name]
    if config is None:
        config = config_cls()
    elif isinstance(config, Mapping):
        config = config_cls.from_dict(config)
    elif not isinstance(config, config_cls):
        raise TypeError(f"config for {name!r} must be a {config_cls.__name__}, a dict or None, "
                        f"got {type(config).__name__}")
    return model_cls(config, generator=generator, seed=seed)
