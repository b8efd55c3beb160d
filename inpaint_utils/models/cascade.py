"""Cascade Context Encoder: a frozen 64x64 CE fills the hole of the 128x128 CE's input.

Paper: *Cascade context encoder for improved inpainting*, arXiv:1803.04033 (the cascade CE paper; its authors are
not given in the text we have, see docs/references.md): section 4.2, Fig. 1, eq. (1)-(2),
which builds on the Context Encoder of Pathak et al. 2016 (arXiv:1604.07379,
:mod:`inpaint_utils.models.context_encoder`). Used by notebook ``03_cascade_ce_nsd`` (training, NSD,
comparison with the plain CE) and ``07_comparison``.

The 128x128 CE of the cascade is trained and tested like this (section 4.2, steps (i)-(iv)); ``M`` is
the mask (1 = hole), ``P`` the image, ``v`` / ``^`` the 2x down- / up-scaling operators::

    (i)   drop the hole of P                                      128x128, mask M
    (ii)  downscale image and mask 2x: vP, vM                      64x64
          the frozen 64x64 CE completes it: F64(vP, vM)           64x64 composite (known pixels kept)
    (iii) upscale that completion 2x: ^F64(...)                   128x128
          fill the hole of P with it: (1 - M) P + M ^F64(...)     the cascade input (known pixels kept)
    (iv)  the 128x128 CE predicts from the cascade input          its loss: masked L2 + adversarial,
                                                                  exactly as for the plain CE (eq. (1)-(2))

Choices the paper leaves open (our defaults, see :class:`CascadeConfig`):

* **downscaling** the image: 2x2 average pooling (``vP``); the mask: 2x2 *max* pooling (a 64 px
  pixel is hole when any of its four 128 px pixels is), so every pixel the 64 CE sees as known is
  an average of known pixels only: the cascade input never depends on the values inside the hole.
* **upscaling**: bilinear (``align_corners=False``), or ``"nearest"``.
* **centre model**: the authors' 128 CE drops the central 56x56 (the 64x64 window eroded by its
  4-px overlap); 2x down that is the central 28x28 of the 64x64 image, which is the input hole of a
  64 CE with window 32 and ``overlap=2``: :meth:`CascadeConfig.build` scales the overlap with the size.
* **random blocks** (section 4.3): both CEs use ``output="full"``.

The 64 CE is frozen: its parameters have ``requires_grad=False``, it stays in ``eval()`` (its
BatchNorm statistics never change, :meth:`CascadeContextEncoder.train` keeps it there) and it runs
under ``torch.no_grad()``. :class:`CascadeTask` trains the 128 CE on cascade inputs with the shared
loop (:func:`inpaint_utils.train.train`); its checkpoints hold both CEs (model name
``"cascade_context_encoder"``), so one checkpoint rebuilds the whole cascade.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..validation import check_image_mask
from ..masks import Ratio, TrainingMasks
from .context_encoder import ContextEncoderConfig, ContextEncoderGenerator, ContextEncoderTask, _ce_training_masks

__all__ = ["CascadeConfig", "CascadeContextEncoder", "CascadeTask", "DownscaledImages", "downscale_image",
           "downscale_mask", "upscale_image"]

UPSCALE_MODES = ("bilinear", "nearest")


# --------------------------------------------------------------------------------------------
# the scaling operators of eq. (1): v (down) and ^ (up), by a factor 2
# --------------------------------------------------------------------------------------------
def _check_even(x: torch.Tensor, name: str) -> None:
    h, w = x.shape[-2:]
    if h % 2 or w % 2:
        raise ValueError(f"{name} must have even height and width to be downscaled 2x, got {h}x{w}")


def downscale_image(image: torch.Tensor) -> torch.Tensor:
    """``v P``: 2x2 average pooling, ``(B, 3, H, W) -> (B, 3, H/2, W/2)``, still in ``[0, 1]``."""
    _check_even(image, "image")
    return F.avg_pool2d(image, kernel_size=2)


def downscale_mask(mask: torch.Tensor) -> torch.Tensor:
    """``v M``: 2x2 max pooling, ``(B, 1, H, W) -> (B, 1, H/2, W/2)``, still 0/1: a pixel of the small
    mask is hole when any of its four pixels is (the small known region only covers known pixels)."""
    _check_even(mask, "mask")
    return F.max_pool2d(mask, kernel_size=2)


class DownscaledImages(Dataset):
    """``dataset``'s images through :func:`downscale_image`: the 64 CE's training set, made from the
    128 CE's. The 64 CE is then trained on exactly what the cascade feeds it (``v P``, a 2x2 average),
    not on another resampling of the originals (an antialiased bilinear resize to 64 differs from it)."""

    def __init__(self, dataset):
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> torch.Tensor:
        return downscale_image(self.dataset[index][None])[0]                       # (3, H/2, W/2)


def upscale_image(image: torch.Tensor, mode: str = "bilinear") -> torch.Tensor:
    """``^ P``: 2x upscaling, ``(B, 3, h, w) -> (B, 3, 2h, 2w)``, ``"bilinear"`` (``align_corners=False``)
    or ``"nearest"``; the result stays in ``[0, 1]`` (a convex combination, clamped against rounding)."""
    if mode not in UPSCALE_MODES:
        raise ValueError(f"upscale mode must be one of {UPSCALE_MODES}, got {mode!r}")
    kwargs = {"align_corners": False} if mode == "bilinear" else {}
    return F.interpolate(image, scale_factor=2, mode=mode, **kwargs).clamp(0.0, 1.0)


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def _as_ce_config(value: Any, name: str) -> ContextEncoderConfig:
    if isinstance(value, ContextEncoderConfig):
        return value
    if isinstance(value, Mapping):
        return ContextEncoderConfig.from_dict(value)
    raise TypeError(f"{name} must be a ContextEncoderConfig or its to_dict(), got {type(value).__name__}")


@dataclass
class CascadeConfig:
    """The two Context Encoders of the cascade and how they are joined; defaults: the paper's centre model.

    Attributes:
        ce64: config of the small CE (``image_size`` half of ``ce128``'s); default the 64x64 centre CE
            with ``overlap=2`` (its 28x28 input hole is the 128 CE's 56x56 hole downscaled).
        ce128: config of the large CE; default the authors' 128x128 centre CE (:class:`ContextEncoderConfig`).
        upscale: ``"bilinear"`` or ``"nearest"``: how the 64 completion is brought back to 128.

    Both CEs must predict where the other's hole is: with ``ce128.output="full"`` (random blocks
    anywhere) ``ce64`` must be ``"full"`` too; a centre ``ce128`` needs the downscaled input hole
    inside ``ce64``'s centre window (checked when the model is built).
    """

    ce64: ContextEncoderConfig = field(default_factory=lambda: ContextEncoderConfig(image_size=64, overlap=2))
    ce128: ContextEncoderConfig = field(default_factory=ContextEncoderConfig)
    upscale: str = "bilinear"

    def __post_init__(self) -> None:
        self.ce64 = _as_ce_config(self.ce64, "ce64")
        self.ce128 = _as_ce_config(self.ce128, "ce128")
        if self.ce128.image_size != 2 * self.ce64.image_size:
            raise ValueError(f"ce128.image_size must be twice ce64.image_size (the cascade scales by 2), got "
                             f"{self.ce128.image_size} and {self.ce64.image_size}")
        if self.ce128.output == "full" and self.ce64.output != "full":
            raise ValueError("ce128 has output='full' (holes anywhere) but ce64 has output='center', which only "
                             "fills its centre window: use output='full' for both (random blocks)")
        if self.upscale not in UPSCALE_MODES:
            raise ValueError(f"upscale must be one of {UPSCALE_MODES}, got {self.upscale!r}")

    @property
    def image_size(self) -> int:
        """Side of the cascade's images (``ce128.image_size``)."""
        return self.ce128.image_size

    @property
    def output(self) -> str:
        """``"center"`` or ``"full"`` (that of ``ce128``)."""
        return self.ce128.output

    @classmethod
    def build(cls, output: str = "center", image_size: int = 128, overlap: int = 4, upscale: str = "bilinear",
              **overrides: Any) -> "CascadeConfig":
        """Both configs from one set of settings: ``ce128`` of side ``image_size`` with ``overlap``, ``ce64``
        of half the side with half the overlap; ``overrides`` (``base_channels``, ``bottleneck_dim``,
        ``bottleneck``, ``fill``, ...) go to both.

        >>> c = CascadeConfig.build("full", base_channels=16, bottleneck_dim=128)
        >>> c.ce64.image_size, c.ce128.image_size, c.ce64.output, c.ce64.overlap
        (64, 128, 'full', 2)
        """
        if "image_size" in overrides or "hole_size" in overrides:
            raise ValueError("image_size and hole_size are set by build() for both CEs")
        ce128 = ContextEncoderConfig(image_size=image_size, output=output, overlap=overlap, **overrides)
        ce64 = ContextEncoderConfig(image_size=image_size // 2, output=output, overlap=overlap // 2, **overrides)
        return cls(ce64=ce64, ce128=ce128, upscale=upscale)

    @classmethod
    def tiny(cls, output: str = "center", **overrides: Any) -> "CascadeConfig":
        """The same cascade at 1/8 width with a 100-d code (``ContextEncoderConfig.tiny``), for tests."""
        settings = {"base_channels": 8, "bottleneck_dim": 100}
        settings.update(overrides)
        return cls.build(output, **settings)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-able dict: ``{"ce64": {...}, "ce128": {...}, "upscale": ...}``."""
        return {"ce64": self.ce64.to_dict(), "ce128": self.ce128.to_dict(), "upscale": self.upscale}

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> "CascadeConfig":
        """Inverse of :meth:`to_dict`; unknown keys raise (a checkpoint of another model)."""
        unknown = sorted(set(data) - {"ce64", "ce128", "upscale"})
        if unknown:
            raise ValueError(f"unknown CascadeConfig keys {unknown}; known: ['ce128', 'ce64', 'upscale']")
        return cls(**dict(data))


# --------------------------------------------------------------------------------------------
# the cascade
# --------------------------------------------------------------------------------------------
class CascadeContextEncoder(nn.Module):
    """A frozen 64x64 Context Encoder in front of a 128x128 one (the cascade CE paper, section 4.2, Fig. 1).

    ``CascadeContextEncoder(ce64, ce128)`` joins two generators (``ce64`` is frozen in place:
    ``requires_grad_(False)``, ``eval()``); ``CascadeContextEncoder(config)`` builds both fresh from a
    :class:`CascadeConfig` (what :func:`inpaint_utils.models.build_model` does; load weights after).

    * :meth:`make_input` ``(image, mask) -> (B, 3, S, S)``: the 128 CE's input, hole filled with the
      upscaled 64 completion, known pixels exactly those of ``image``;
    * :meth:`predict_full` / ``forward`` ``(image, mask) -> (B, 3, S, S)``: the composite
      ``mask * pred + (1 - mask) * image`` of the 128 CE's prediction;
    * :meth:`encode` ``(image, mask) -> (B, D)``: the 128 CE's latent of the cascade input, the
      ``E(P, M)`` of NSD (``metrics.nsd(cascade.encode, ..., with_mask=True)``);
    * :meth:`stages`: every intermediate image, for figures.

    The values of ``image`` inside the hole are never used. Masks: ``(B or 1, 1, S, S)``, 1 = hole.
    """

    model_name = "cascade_context_encoder"

    def __init__(self, ce64: ContextEncoderGenerator | CascadeConfig | None = None,
                 ce128: ContextEncoderGenerator | None = None, *, upscale: str | None = None,
                 generator: torch.Generator | None = None, seed: int | None = None):
        super().__init__()
        if ce64 is None or isinstance(ce64, CascadeConfig):
            if ce128 is not None:
                raise TypeError("pass either a CascadeConfig (fresh networks) or the two generators ce64, ce128")
            cfg = ce64 if ce64 is not None else CascadeConfig()
            if upscale is not None:
                raise TypeError("upscale is part of the CascadeConfig; set it there")
            if generator is not None and seed is not None:
                raise ValueError("pass either generator or seed, not both")
            rng = torch.Generator().manual_seed(int(seed)) if seed is not None else generator
            ce64 = ContextEncoderGenerator(cfg.ce64, generator=rng)
            ce128 = ContextEncoderGenerator(cfg.ce128, generator=rng)
        else:
            for name, net in (("ce64", ce64), ("ce128", ce128)):
                if not isinstance(net, ContextEncoderGenerator):
                    raise TypeError(f"{name} must be a ContextEncoderGenerator, got {type(net).__name__}")
            if generator is not None or seed is not None:
                raise TypeError("generator / seed apply when building from a CascadeConfig, not to given networks")
            cfg = CascadeConfig(ce64=ce64.config, ce128=ce128.config,
                                upscale=upscale if upscale is not None else "bilinear")
        self.config = cfg
        self.ce64 = ce64
        self.ce128 = ce128
        # The 64 CE is frozen (section 4.2: "the weights of 64x64 CE are fixed").
        self.ce64.requires_grad_(False)
        self.ce64.eval()
        if cfg.output == "center":
            self._check_center_holes()

    def _check_center_holes(self) -> None:
        """A centre cascade: the 128 CE's input hole, downscaled, must lie in the 64 CE's window."""
        small = downscale_mask(self.ce128.input_hole_mask())                       # (1, 1, S/2, S/2)
        if self.config.ce64.output == "center":
            outside = small * (1.0 - self.ce64.window_mask())
            if bool(outside.any()):
                raise ValueError(
                    f"the 128 CE's input hole ({self.config.ce128.hole_size - 2 * self.config.ce128.overlap} px, "
                    f"downscaled 2x) does not fit in the 64 CE's {self.config.ce64.hole_size}x"
                    f"{self.config.ce64.hole_size} centre window; use ce64.hole_size = ce128.hole_size / 2")

    def train(self, mode: bool = True) -> "CascadeContextEncoder":
        """Set the 128 CE's mode; the frozen 64 CE always stays in ``eval()``."""
        super().train(mode)
        self.ce64.eval()
        return self

    # ---- the cascade input, steps (i)-(iii)
    def _check(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_image_mask(image, mask)
        s = self.config.image_size
        if tuple(image.shape[-2:]) != (s, s):
            raise ValueError(f"image must be {s}x{s} for this cascade (config.ce128.image_size), got "
                             f"{tuple(image.shape[-2:])}")
        mask = mask.to(dtype=image.dtype, device=image.device)
        return mask.expand(image.shape[0], -1, -1, -1)                             # (B, 1, S, S)

    def stages(self, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
        """Every step of the cascade for ``image`` ``(B, 3, S, S)`` and ``mask`` (1 = hole)::

            image_small, mask_small   v P, v M                       (B, 3|1, S/2, S/2)
            completed_small           the 64 CE's composite          (B, 3, S/2, S/2)
            upscaled                  ^ completed_small              (B, 3, S, S)
            cascade_input             image, hole <- upscaled        (B, 3, S, S)

        Runs the 64 CE under ``torch.no_grad()`` (it is frozen); nothing here has gradients."""
        mask = self._check(image, mask)
        with torch.no_grad():
            image_small = downscale_image(image)                                   # (B, 3, S/2, S/2)
            mask_small = downscale_mask(mask)                                      # (B, 1, S/2, S/2)
            completed_small = self.ce64.predict_full(image_small, mask_small)      # (B, 3, S/2, S/2)
            upscaled = upscale_image(completed_small, self.config.upscale).to(image.dtype)  # (B, 3, S, S)
            hole = mask.bool().expand_as(image)                                    # (B, 3, S, S)
            cascade_input = torch.where(hole, upscaled, image)                     # known pixels untouched
        return {"image_small": image_small, "mask_small": mask_small, "completed_small": completed_small,
                "upscaled": upscaled, "cascade_input": cascade_input}

    def make_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The 128 CE's input ``(B, 3, S, S)``: ``image`` with its hole filled by the 2x-upscaled
        completion of the frozen 64 CE on the 2x-downscaled masked image (steps (i)-(iii))."""
        return self.stages(image, mask)["cascade_input"]

    # ---- step (iv): the 128 CE
    def predict_full(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint ``image`` where ``mask`` is 1 and return the composite ``mask * pred + (1 - mask) * image``
        (known pixels unchanged, bit for bit). A centre ``ce128`` pastes its window prediction (the hole
        must lie in the window, as for :meth:`ContextEncoderGenerator.predict_full`). Gradients reach
        the 128 CE only; wrap in ``torch.no_grad()`` for inference."""
        mask = self._check(image, mask)
        s, cfg = self.config.image_size, self.config.ce128
        if cfg.output == "center":
            outside = (mask * (1.0 - self.ce128.window_mask(device=image.device))).flatten(1).sum(dim=1)
            if bool((outside > 0).any()):
                bad = torch.nonzero(outside > 0).flatten().tolist()
                raise ValueError(f"mask of sample(s) {bad[:5]} has hole pixels outside the central "
                                 f"{cfg.hole_size}x{cfg.hole_size} window that this centre cascade predicts; "
                                 f"use a mask inside the window or a cascade with output='full'")
        pred = self.ce128(self.make_input(image, mask))                            # (B, 3, out, out)
        if cfg.output == "center":
            top = (s - cfg.hole_size) // 2
            pred = F.pad(pred, (top, s - top - cfg.hole_size) * 2)                 # (B, 3, S, S), zeros outside
        return mask * pred + (1.0 - mask) * image

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Same as :meth:`predict_full`."""
        return self.predict_full(image, mask)

    def encode(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The 128 CE's latent code ``(B, D)`` of the cascade input: NSD's ``E(P, M)`` for the cascade
        (``metrics.nsd(cascade.encode, images, masks, with_mask=True)``). Put the model in ``eval()``."""
        return self.ce128.encode(self.make_input(image, mask))


# --------------------------------------------------------------------------------------------
# training: the 128 CE on cascade inputs, the 64 CE frozen (the cascade CE paper, eq. (1)-(2))
# --------------------------------------------------------------------------------------------
class CascadeTask(ContextEncoderTask):
    """:class:`ContextEncoderTask` for the cascade's 128 CE, a :class:`inpaint_utils.train.Task`.

    Everything is the plain CE's step (same masks, losses, discriminator, optimisers: eq. (1)-(2) of
    the cascade CE paper *are* the CE's loss) except the input: the hole is filled by the frozen 64 CE
    (:meth:`CascadeContextEncoder.make_input`) instead of a constant. Only ``cascade.ce128`` has an
    optimiser; ``models["generator"]`` is the whole cascade, so checkpoints hold the 64 CE too (save
    them with ``model_name=CascadeContextEncoder.model_name``, ``model_config=cascade.config.to_dict()``).
    Keyword arguments are :class:`ContextEncoderTask`'s (``input_mode`` must stay ``"hole"``). Several
    processes: the step, its masks (drawn for the global batch, ``ctx.shard``) and its loss weighting are
    the plain CE's; the frozen 64 CE runs in ``eval()``, so its BatchNorm needs no synchronisation.
    """

    def __init__(self, cascade: CascadeContextEncoder, discriminator=None, **kwargs: Any):
        if not isinstance(cascade, CascadeContextEncoder):
            raise TypeError(f"cascade must be a CascadeContextEncoder, got {type(cascade).__name__}")
        if kwargs.get("input_mode", "hole") != "hole":
            raise ValueError(f"the cascade fills the hole itself; input_mode must be 'hole', got "
                             f"{kwargs['input_mode']!r}")
        super().__init__(cascade.ce128, discriminator, **kwargs)   # optimiser over ce128's parameters only
        self.cascade = cascade
        self.models["generator"] = cascade                          # checkpointed whole; moved to the device whole

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None, *,
                       mask_kind: str | None = None, mask_ratio: Ratio | None = None) -> TrainingMasks:
        """The plain CE's :meth:`ContextEncoderTask.training_masks` for the cascade's 128 CE."""
        return _ce_training_masks(CascadeConfig.from_dict(config).ce128, "cascade", n, generator, mask_kind,
                                  mask_ratio)

    def _predict(self, batch: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        g = self.generator                                          # the 128 CE
        pred = g(self.cascade.make_input(batch, hole))              # eq. (1): F(M' P + M ^F64(vM' vP))
        if g.config.output == "center":
            return pred, g.crop_window(batch), pred
        return pred, batch, hole * pred + (1 - hole) * batch

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "cascade input", "completed", "target"}`` for the loop's sample grids."""
        from ..viz import overlay_mask

        hole, _ = self.masks(batch, generator)
        return {"input": overlay_mask(batch, hole), "cascade input": self.cascade.make_input(batch, hole),
                "completed": self.cascade.predict_full(batch, hole), "target": batch}
