"""DeepFill v1: a coarse-to-fine inpainting generator with **contextual attention**, and WGAN-GP critics.

Paper: J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu, T. S. Huang, *Generative Image Inpainting with Contextual
Attention*, CVPR 2018, arXiv:1801.07892 (section 3, figures 2-4). Biradar, Singh, Agrawal and Samantaray's
report *Deep Learning for Image Inpainting* (the GLCIC / CA replication) trains it with the hyper-parameters of its Table I and scores it in its Table II. Used by notebooks
``05_contextual_attention`` and ``07_comparison``. The layer list mirrors the authors' TensorFlow release
v1.0.0 (``inpaint_model.py``, ``inpaint_ops.py``; ``master`` is DeepFill v2), read for understanding only.

Layers (``k5`` a 5x5 convolution, ``s2`` stride 2, ``d4`` dilation 4; every convolution has a bias and,
unless noted, an ELU; "up" is a 2x nearest-neighbour upsampling followed by a 3x3 convolution; ``c`` =
``config.cnum``, 32 in v1; sizes for a 256x256 input)::

    input: image in [-1, 1] with the hole filled, a ones channel, the mask              5 x 256
    coarse network                                       refinement network (input: the coarse result pasted
      conv k5      5 ->  c    256                          into the hole, a ones channel, the mask: 5 x 256)
      conv s2      c -> 2c    128                          dilated branch           attention branch
      conv        2c -> 2c    128                          conv k5  5 ->  c  256    conv k5  5 ->  c  256
      conv s2     2c -> 4c     64                          conv s2  c ->  c  128    conv s2  c ->  c  128
      conv x2     4c -> 4c     64                          conv     c -> 2c  128    conv     c -> 2c  128
      conv d2,d4,d8,d16  4c    64                          conv s2 2c -> 2c   64    conv s2 2c -> 4c   64
      conv x2     4c -> 4c     64                          conv    2c -> 4c   64    conv    4c -> 4c   64
      up          4c -> 2c    128                          conv    4c -> 4c   64    conv    4c -> 4c   64 (ReLU)
      conv        2c -> 2c    128                          conv d2,d4,d8,d16  64    contextual attention 64
      up          2c ->  c    256                                                   conv x2 4c -> 4c   64
      conv         c -> c/2   256                          concat (8c) -> conv 4c, conv 4c, up 2c, conv 2c,
      conv       c/2 ->  3    256 (no activation)          up c, conv c/2, conv 3 (no activation)    256
      clip to [-1, 1]                                      clip to [-1, 1]

    critics (WGAN-GP, 5x5 stride-2 convolutions with LeakyReLU 0.2, then a linear layer to one score;
    ``d`` = ``config.critic_cnum``, 64 in v1)
      global, on the whole 256x256 composite: d, 2d, 4d, 4d  (16x16x4d) -> linear -> 1
      local, on the 128x128 patch around the hole: d, 2d, 4d, 8d  (8x8x8d) -> linear -> 1

Parameter counts of the v1 configuration (``DeepFillConfig()``; the arithmetic is in
``tests/test_deepfill.py``): generator 3,601,542 (coarse network 1,448,227, refinement network
2,153,315; the attention layer has none), critics 7,072,770 (global 2,733,441 + local 4,339,329, of
which 65,537 and 32,769 in the final linear layers on the 16x16x256 and 8x8x512 features).
Initialisation: Glorot-uniform weights and zero biases, TensorFlow's defaults that v1 relies on.

Where we differ from the v1 code, and why (the contextual attention itself lives in :mod:`.attention`):

* contextual attention takes **one mask per sample** (v1 uses the first sample's mask for the whole
  batch: colour artefacts when masks differ) and works at any size divisible by ``4 * rate``;
* cosine similarity normalises both the foreground and the background patch (the paper's equation; v1
  normalises only the background patches, which makes the softmax temperature depend on the feature
  norm);
* the softmax runs over the known background patches only (the paper; v1 sets the scores of hole
  patches to 0 *before* the softmax, so they still take a share of its denominator), and hole patches
  are removed before the attention propagation too, so no hole content leaks into the result;
* the propagation follows the paper's equations (shifts within a row, then within a column); v1 shifts
  along the flattened score matrix, which wraps around at the end of each row;
* patches are pasted back with the ``(rate * ksize)``-wide full-resolution patches that were matched,
  averaged by the exact overlap count (v1 pastes ``2 * rate``-wide patches and divides by 4);
* the downscaled masks are max-pooled (a block with any hole pixel is hole; v1 samples the nearest
  pixel, which can let a patch that touches the hole count as known);
* the attention map is computed on the device, and only when asked (:func:`inpaint_utils.viz.flow_to_color`);
  v1 and its PyTorch port build the flow image in numpy on every forward pass.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..masks import INPUT_MODES, TrainingMasks, make_input, make_mask
from ..validation import check_fill_setting, check_generator, check_image, check_image_mask, check_mask, is_int
from .attention import (AttentionConfig, ContextualAttention, attention_coherence, check_attention_sizes,
                        contextual_attention, contextual_attention_weights)
from .common import Rng, adam_optimizers, check_config, update

__all__ = [
    "contextual_attention",
    "random_boxes",
    "contextual_attention_weights",
    "attention_coherence",
    "ContextualAttention",
    "DeepFillConfig",
    "CoarseNetwork",
    "RefineNetwork",
    "DeepFillGenerator",
    "DeepFillCritic",
    "DeepFillTask",
    "hole_boxes",
    "crop_patches",
    "feature_mask",
    "check_attention_sizes",
    "glorot_init",
]


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class DeepFillConfig(AttentionConfig):
    """Hyper-parameters of DeepFill v1; the defaults are the authors' (v1.0.0) and Biradar et al.'s.

    Attributes:
        image_size: input side (256); divisible by ``4 * rate`` (the attention runs at 1/4 resolution
            and downscales by ``rate`` again).
        hole_size: side of the square training hole and of the local critic's patch (default
            ``image_size // 2``: 128 in 256, Biradar et al. / v1).
        cnum: width of the generator (32 in v1); every layer scales with it.
        critic_cnum: width of the critics (64 in v1).
        ksize, stride, rate, fuse_k, softmax_scale: the contextual attention (3, 1, 2, 3, 10).
        fill: the input's hole value for ``mode="hole"``: 0.5 (v1 zeroes the hole in [-1, 1]), a float,
            ``"mean"`` or an ``(r, g, b)`` tuple in [0, 1] (see :func:`inpaint_utils.masks.make_input`).
    """

    #: ``tiny()``: the same topology, narrow (cnum 8, critic 8) at 64x64, for tests and smoke runs.
    TINY: ClassVar[dict[str, Any]] = {"image_size": 64, "cnum": 8, "critic_cnum": 8}

    image_size: int = 256
    hole_size: int | None = None
    cnum: int = 32
    critic_cnum: int = 64
    fill: Any = 0.5

    def __post_init__(self) -> None:
        self.check_attention(self.image_size)
        if self.hole_size is None:
            self.hole_size = self.image_size // 2
        if not is_int(self.hole_size) or not 4 <= self.hole_size < self.image_size:
            raise ValueError(f"hole_size must be an int in [4, image_size), got {self.hole_size!r}")
        if not is_int(self.cnum) or self.cnum < 2:
            raise ValueError(f"cnum must be an int >= 2 (the last layers use cnum // 2), got {self.cnum!r}")
        if not is_int(self.critic_cnum) or self.critic_cnum < 1:
            raise ValueError(f"critic_cnum must be a positive int, got {self.critic_cnum!r}")
        self.fill = check_fill_setting(self.fill)

    @property
    def feature_size(self) -> int:
        """Side of the attention branch's features (``image_size / 4``)."""
        return self.image_size // 4

    @property
    def offsets_size(self) -> int:
        """Side of the offsets grid (``image_size / (4 rate)``)."""
        return self.image_size // (4 * self.rate)


# --------------------------------------------------------------------------------------------
# building blocks (v1's gen_conv / gen_deconv / dis_conv)
# --------------------------------------------------------------------------------------------
def glorot_init(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """TensorFlow's defaults, which v1 keeps: Glorot-uniform weights (``U(-a, a)``,
    ``a = sqrt(6 / (fan_in + fan_out))``, fans counting the kernel's area), zero biases. In place."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            receptive = m.weight[0, 0].numel() if m.weight.ndim > 2 else 1
            fan_in, fan_out = m.weight.shape[1] * receptive, m.weight.shape[0] * receptive
            bound = math.sqrt(6.0 / (fan_in + fan_out))
            with torch.no_grad():
                m.weight.uniform_(-bound, bound, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
    return module


def _gen_conv(c_in: int, c_out: int, k: int = 3, stride: int = 1, dilation: int = 1,
              activation: str | None = "elu") -> nn.Sequential:
    """v1's ``gen_conv``: conv (``SAME`` padding) + ELU (or ReLU, or none)."""
    layers: list[nn.Module] = [nn.Conv2d(c_in, c_out, k, stride=stride, padding=dilation * (k - 1) // 2,
                                         dilation=dilation)]
    if activation == "elu":
        layers.append(nn.ELU())
    elif activation == "relu":
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _gen_deconv(c_in: int, c_out: int) -> nn.Sequential:
    """v1's ``gen_deconv``: 2x nearest-neighbour upsampling, then a 3x3 ``gen_conv``."""
    return nn.Sequential(nn.Upsample(scale_factor=2, mode="nearest"), *_gen_conv(c_in, c_out, 3))


@dataclass(frozen=True)
class LayerFamily:
    """The layers a DeepFill network is built from: v1's plain convolutions (:data:`V1_LAYERS`) or v2's
    gated ones (:data:`inpaint_utils.models.gated_conv.GATED_LAYERS`); the two versions share their
    layer tables (:class:`CoarseNetwork`, :class:`RefineNetwork`) and differ in these alone."""

    #: ``conv(c_in, c_out, k=3, stride=1, dilation=1, activation="elu")``: v1's / v2's ``gen_conv``
    conv: Callable[..., nn.Module]
    #: ``deconv(c_in, c_out)``: 2x nearest-neighbour upsampling, then a 3x3 ``conv``
    deconv: Callable[[int, int], nn.Module]
    #: ``output(c_in)``: the last layer, 3 channels, no activation
    output: Callable[[int], nn.Module]


#: DeepFill v1's layers: ELU convolutions with ``SAME`` padding.
V1_LAYERS = LayerFamily(_gen_conv, _gen_deconv, lambda c_in: _gen_conv(c_in, 3, activation=None))


def _dilated(layers: LayerFamily, c: int) -> list[nn.Module]:
    """The four dilated 3x3 convolutions (rates 2, 4, 8, 16) of both networks."""
    return [layers.conv(c, c, 3, dilation=d) for d in (2, 4, 8, 16)]


def _merge_decoder(layers: LayerFamily, c_in: int, c: int) -> nn.Sequential:
    """conv 4c, conv 4c, up 2c, conv 2c, up c, conv c/2, conv 3 (no activation): both networks' tails."""
    conv, up = layers.conv, layers.deconv
    return nn.Sequential(conv(c_in, 4 * c), conv(4 * c, 4 * c), up(4 * c, 2 * c), conv(2 * c, 2 * c),
                         up(2 * c, c), conv(c, c // 2), layers.output(c // 2))


class CoarseNetwork(nn.Module):
    """Stage 1 (``conv1`` ... ``conv17`` of v1 and v2): ``(B, 5, S, S)`` in -> ``(B, 3, S, S)`` in ``[-1, 1]``
    (v1 clips, :meth:`squash`). ``c`` is the output width of the first layer (v1: ``cnum``)."""

    in_channels = 5

    def __init__(self, c: int = 32, layers: LayerFamily = V1_LAYERS):
        super().__init__()
        conv = layers.conv
        self.encoder = nn.Sequential(
            conv(self.in_channels, c, 5),                        # conv1                 S
            conv(c, 2 * c, 3, stride=2),                         # conv2_downsample      S/2
            conv(2 * c, 2 * c),                                  # conv3
            conv(2 * c, 4 * c, 3, stride=2),                     # conv4_downsample      S/4
            conv(4 * c, 4 * c), conv(4 * c, 4 * c),              # conv5, conv6
            *_dilated(layers, 4 * c))                            # conv7-10_atrous
        self.decoder = _merge_decoder(layers, 4 * c, c)          # conv11 ... conv17     S

    @staticmethod
    def squash(x: torch.Tensor) -> torch.Tensor:
        """v1 clips the output to ``[-1, 1]``."""
        return x.clamp(-1.0, 1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squash(self.decoder(self.encoder(x)))       # (B, 3, S, S)


class RefineNetwork(nn.Module):
    """Stage 2: a dilated-convolution branch ("hallucination") and a contextual-attention branch,
    concatenated and decoded. ``forward(x, mask_s) -> (image in [-1, 1], offsets)``; ``x`` is
    ``(B, in_channels, S, S)`` (v1: the pasted image, ones and the mask, 5 channels), ``mask_s`` the hole
    at ``S / 4``."""

    in_channels = 5

    def __init__(self, c: int = 32, ca: ContextualAttention | None = None, layers: LayerFamily = V1_LAYERS):
        super().__init__()
        conv, c_in = layers.conv, self.in_channels
        self.conv_branch = nn.Sequential(
            conv(c_in, c, 5),                                    # xconv1                S
            conv(c, c, 3, stride=2),                             # xconv2_downsample     S/2
            conv(c, 2 * c),                                      # xconv3
            conv(2 * c, 2 * c, 3, stride=2),                     # xconv4_downsample     S/4
            conv(2 * c, 4 * c), conv(4 * c, 4 * c),              # xconv5, xconv6
            *_dilated(layers, 4 * c))                            # xconv7-10_atrous
        self.attention_encoder = nn.Sequential(
            conv(c_in, c, 5),                                    # pmconv1               S
            conv(c, c, 3, stride=2),                             # pmconv2_downsample    S/2
            conv(c, 2 * c),                                      # pmconv3
            conv(2 * c, 4 * c, 3, stride=2),                     # pmconv4_downsample    S/4
            conv(4 * c, 4 * c),                                  # pmconv5
            conv(4 * c, 4 * c, activation="relu"))               # pmconv6 (ReLU)
        self.attention = ca if ca is not None else ContextualAttention()
        self.attention_decoder = nn.Sequential(conv(4 * c, 4 * c), conv(4 * c, 4 * c))  # pmconv9, 10
        self.decoder = _merge_decoder(layers, 8 * c, c)          # allconv11 ... allconv17

    squash = staticmethod(CoarseNetwork.squash)

    def forward(self, x: torch.Tensor, mask_s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        hallu = self.conv_branch(x)                              # (B, 4c, S/4, S/4)
        feats = self.attention_encoder(x)                        # (B, 4c, S/4, S/4)
        pm, offsets = self.attention(feats, feats, mask_s)       # same, and (B, 2, S/4r, S/4r)
        pm = self.attention_decoder(pm)
        out = self.decoder(torch.cat([hallu, pm], dim=1))        # (B, 8c, S/4, S/4) -> (B, 3, S, S)
        return self.squash(out), offsets


def feature_mask(mask: torch.Tensor, factor: int = 4) -> torch.Tensor:
    """The hole at the attention branch's resolution ``(B, 1, H / factor, W / factor)``: a
    ``factor x factor`` block with any hole pixel is hole (max-pooling; v1 and v2 sample the nearest
    pixel, which can let a block that touches the hole count as known). Shared by DeepFill v1 and v2."""
    return F.max_pool2d(mask, factor)


def _check_size(image: torch.Tensor, size: int, what: str) -> None:
    if tuple(image.shape[-2:]) != (size, size):
        raise ValueError(f"{what} must be {size}x{size} for this model (config.image_size), got "
                         f"{tuple(image.shape[-2:])}")


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------
class DeepFillGenerator(nn.Module):
    """DeepFill v1's two-stage generator (the module docstring has the layer list).

    ``forward(image, mask) -> (coarse, refined, offsets)``: ``image`` is the **network input**
    ``(B, 3, S, S)`` in ``[0, 1]``, i.e. the image with its hole already filled (by :meth:`make_input`:
    grey, a mosaic or Navier-Stokes, Biradar et al.'s three modes); ``mask`` ``(B or 1, 1, S, S)``, 1 = hole.
    ``coarse`` and ``refined`` are the two stages' raw outputs in ``[0, 1]`` (no composite),
    ``offsets`` the contextual attention's ``(B, 2, S / (4 rate), S / (4 rate))`` long tensor.
    Use :meth:`predict_full` for a composite.
    """

    model_name = "deepfill"

    def __init__(self, config: DeepFillConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, DeepFillConfig)
        self.coarse = CoarseNetwork(cfg.cnum)
        self.refine = RefineNetwork(cfg.cnum, cfg.attention())
        glorot_init(self, check_generator(generator, seed))

    def _stage_inputs(self, x: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        ones = torch.ones_like(mask)
        return torch.cat([x, ones, mask], dim=1)                 # (B, 5, S, S): v1's [x, ones, ones * mask]

    def feature_mask(self, mask: torch.Tensor) -> torch.Tensor:
        """The hole at the attention branch's resolution ``(B, 1, S/4, S/4)`` (:func:`feature_mask`)."""
        return feature_mask(mask)

    def _prepare(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image_mask(image, mask)
        _check_size(image, self.config.image_size, "image")
        mask = mask.to(dtype=image.dtype, device=image.device).expand(image.shape[0], 1, *image.shape[-2:])
        return image * 2.0 - 1.0, mask                           # [0, 1] -> [-1, 1], v1's range

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xin, mask = self._prepare(image, mask)
        x1 = self.coarse(self._stage_inputs(xin, mask))          # (B, 3, S, S) in [-1, 1]
        x = x1 * mask + xin * (1.0 - mask)                       # stage 2 input: the coarse result pasted in
        x2, offsets = self.refine(self._stage_inputs(x, mask), self.feature_mask(mask))
        return (x1 + 1.0) * 0.5, (x2 + 1.0) * 0.5, offsets

    def attention_features(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The contextual attention's input ``(features, mask_s)`` for a network input ``image`` (as in
        :meth:`forward`), to look at the attention with other settings (:func:`contextual_attention_weights`)."""
        xin, mask = self._prepare(image, mask)
        x1 = self.coarse(self._stage_inputs(xin, mask))
        x = x1 * mask + xin * (1.0 - mask)
        return self.refine.attention_encoder(self._stage_inputs(x, mask)), self.feature_mask(mask)

    def make_input(self, image: torch.Tensor, mask: torch.Tensor, mode: str = "hole", fill=None) -> torch.Tensor:
        """The network input: ``image`` with its ``mask`` pixels replaced, by ``mode`` (Biradar et al.):
        ``"hole"`` (``fill``, default ``config.fill``: v1's grey), ``"mosaic"`` or ``"hole_ns"``
        (:func:`inpaint_utils.masks.make_input`)."""
        return make_input(image, mask, mode=mode, fill=self.config.fill if fill is None else fill)

    def predict_full(self, image: torch.Tensor, mask: torch.Tensor, mode: str = "hole", fill=None) -> torch.Tensor:
        """Inpaint ``image`` ``(B, 3, S, S)`` where ``mask`` is 1 and return the composite
        ``mask * refined + (1 - mask) * image``: known pixels are returned unchanged, bit for bit.
        The input is built with :meth:`make_input` (``mode``: hole / mosaic / hole_ns), so the hole's
        true pixels never reach the network in ``"hole"`` mode. Gradients flow; wrap in ``torch.no_grad()``."""
        check_image_mask(image, mask)
        _check_size(image, self.config.image_size, "image")
        mask = mask.to(dtype=image.dtype, device=image.device)
        _, refined, _ = self(self.make_input(image, mask, mode=mode, fill=fill), mask)
        return mask * refined + (1.0 - mask) * image


# --------------------------------------------------------------------------------------------
# the critics (WGAN-GP, global and local, v1's build_wgan_*_discriminator)
# --------------------------------------------------------------------------------------------
def _dis_conv(c_in: int, c_out: int) -> nn.Sequential:
    """v1's ``dis_conv``: 5x5 stride-2 convolution (``SAME``-sized), LeakyReLU 0.2."""
    return nn.Sequential(nn.Conv2d(c_in, c_out, 5, stride=2, padding=2), nn.LeakyReLU(0.2))


def _after_convs(size: int, n: int = 4) -> int:
    for _ in range(n):
        size = (size + 1) // 2                                   # 5x5, stride 2, padding 2: ceil(size / 2)
    return size


class DeepFillCritic(nn.Module):
    """The two WGAN critics of v1 in one module (one optimizer, as v1's ``discriminator`` scope).

    ``forward(image, patch) -> (global_score, local_score)``, each ``(B,)``: ``image`` the whole
    ``(B, 3, S, S)`` image, ``patch`` the ``(B, 3, hole_size, hole_size)`` patch around the hole
    (:func:`crop_patches`), both in ``[0, 1]`` (converted to ``[-1, 1]`` inside).
    """

    model_name = "deepfill_critic"

    def __init__(self, config: DeepFillConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, DeepFillConfig)
        d = cfg.critic_cnum
        # global critic: conv1-conv4 64, 128, 256, 256 -> flatten -> dense 1          (B, 3, S, S) -> (B,)
        self.global_features = nn.Sequential(_dis_conv(3, d), _dis_conv(d, 2 * d), _dis_conv(2 * d, 4 * d),
                                             _dis_conv(4 * d, 4 * d))
        self.global_fc = nn.Linear(4 * d * _after_convs(cfg.image_size) ** 2, 1)
        # local critic: conv1-conv4 64, 128, 256, 512 -> flatten -> dense 1    (B, 3, hole, hole) -> (B,)
        self.local_features = nn.Sequential(_dis_conv(3, d), _dis_conv(d, 2 * d), _dis_conv(2 * d, 4 * d),
                                            _dis_conv(4 * d, 8 * d))
        self.local_fc = nn.Linear(8 * d * _after_convs(cfg.hole_size) ** 2, 1)
        glorot_init(self, check_generator(generator, seed))

    def score_global(self, image: torch.Tensor) -> torch.Tensor:
        """The global critic's score ``(B,)`` of whole images in ``[0, 1]``."""
        check_image(image, "image")
        _check_size(image, self.config.image_size, "image")
        return self.global_fc(self.global_features(image * 2.0 - 1.0).flatten(1)).flatten()

    def score_local(self, patch: torch.Tensor) -> torch.Tensor:
        """The local critic's score ``(B,)`` of hole patches ``(B, 3, hole_size, hole_size)`` in ``[0, 1]``."""
        check_image(patch, "patch")
        if tuple(patch.shape[-2:]) != (self.config.hole_size, self.config.hole_size):
            raise ValueError(f"patch must be {self.config.hole_size}x{self.config.hole_size} (config.hole_size), "
                             f"got {tuple(patch.shape[-2:])}")
        return self.local_fc(self.local_features(patch * 2.0 - 1.0).flatten(1)).flatten()

    def forward(self, image: torch.Tensor, patch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.score_global(image), self.score_local(patch)


# --------------------------------------------------------------------------------------------
# the training holes (v1's random_bbox + bbox2mask) and the local patches around them
# --------------------------------------------------------------------------------------------
def random_boxes(batch: int, image_size: int, hole_size: int, max_delta: int | None = None,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """DeepFill v1's training holes (``random_bbox`` + ``bbox2mask``), ``(batch, 1, S, S)``, 1 = hole: a
    ``hole_size`` square box at a uniformly random position, shrunk by a random ``0 .. max_delta // 2`` px
    off the top and the bottom alike and off the left and the right alike (v1: ``max_delta_height`` /
    ``max_delta_width`` 32 for its 128 px box; default ``hole_size // 4``). What :meth:`DeepFillTask.masks`
    draws, and what a trained model is scored on (:func:`inpaint_utils.inference.training_masks`).

    >>> m = random_boxes(3, 64, 32, generator=torch.Generator().manual_seed(0))
    >>> m.shape, bool(((m.sum(dim=(1, 2, 3)) >= 24 ** 2) & (m.sum(dim=(1, 2, 3)) <= 32 ** 2)).all())
    (torch.Size([3, 1, 64, 64]), True)
    """
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    if not is_int(hole_size) or not is_int(image_size) or not 4 <= hole_size < image_size:
        raise ValueError(f"hole_size must be an int in [4, image_size {image_size!r}), got {hole_size!r}")
    max_delta = hole_size // 4 if max_delta is None else max_delta
    if not is_int(max_delta) or not 0 <= max_delta < hole_size:
        raise ValueError(f"max_delta must be an int in [0, hole_size {hole_size}), got {max_delta!r}")
    ratio = hole_size ** 2 / image_size ** 2
    boxes = make_mask("square", image_size, ratio, batch=batch, generator=generator)      # (B, 1, S, S)
    # v1: h = randint(max_delta // 2 + 1) px off the top and the bottom, w off the left and the right
    delta = torch.randint(0, max_delta // 2 + 1, (batch, 2), generator=generator)        # (B, 2) rows, cols
    coords = torch.arange(image_size)
    start = torch.stack([(boxes.amax(dim=d)[:, 0] > 0).float().argmax(dim=1) for d in (3, 2)], dim=1)  # (B, 2)
    lo, hi = start + delta, start + hole_size - delta                                   # (B, 2) kept [lo, hi)
    inside = (coords >= lo[:, :, None]) & (coords < hi[:, :, None])                     # (B, 2, S)
    return (inside[:, 0, :, None] & inside[:, 1, None, :]).to(boxes.dtype)[:, None]     # (B, 1, S, S)


def hole_boxes(mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Top-left corners ``(top, left)``, each ``(B,)`` long, of the ``size x size`` window centred on
    each sample's hole bounding box (clamped inside the image): v1's local patch. A sample without a
    hole pixel raises."""
    check_mask(mask)
    b, _, h, w = mask.shape
    if not is_int(size) or not 1 <= size <= min(h, w):
        raise ValueError(f"size must be an int in [1, {min(h, w)}], got {size!r}")
    rows = mask.detach().amax(dim=3)[:, 0] > 0                    # (B, H) rows holding a hole pixel
    cols = mask.detach().amax(dim=2)[:, 0] > 0                    # (B, W)
    empty = ~rows.any(dim=1)
    if bool(empty.any()):
        raise ValueError(f"mask of sample(s) {empty.nonzero().flatten().tolist()[:5]} has no hole pixel: no local patch")
    idx_h = torch.arange(h, device=mask.device)
    idx_w = torch.arange(w, device=mask.device)
    top0 = torch.where(rows, idx_h, h).amin(dim=1)
    bottom = torch.where(rows, idx_h, -1).amax(dim=1)
    left0 = torch.where(cols, idx_w, w).amin(dim=1)
    right = torch.where(cols, idx_w, -1).amax(dim=1)
    top = ((top0 + bottom + 1 - size) // 2).clamp(0, h - size)
    left = ((left0 + right + 1 - size) // 2).clamp(0, w - size)
    return top, left


def crop_patches(x: torch.Tensor, top: torch.Tensor, left: torch.Tensor, size: int) -> torch.Tensor:
    """``x[b, :, top[b]:top[b]+size, left[b]:left[b]+size]`` for every sample at once (gather, no loop):
    ``(B, C, H, W) -> (B, C, size, size)``; gradients flow to ``x``."""
    b = x.shape[0]
    ar = torch.arange(size, device=x.device)
    rows = (top.to(x.device)[:, None] + ar)[:, :, None]                    # (B, size, 1)
    cols = (left.to(x.device)[:, None] + ar)[:, None, :]                   # (B, 1, size)
    batch = torch.arange(b, device=x.device)[:, None, None]                # (B, 1, 1)
    return x.permute(0, 2, 3, 1)[batch, rows, cols].permute(0, 3, 1, 2)    # (B, C, size, size)


# --------------------------------------------------------------------------------------------
# training: Biradar et al. / v1's objective for the shared loop (inpaint_utils.train)
# --------------------------------------------------------------------------------------------
class DeepFillTask:
    """DeepFill v1's training step, a :class:`inpaint_utils.train.Task` with models
    ``{"generator", "critic"}``.

    Per step (v1's ``build_graph_with_losses`` with Biradar et al.'s Table I weights):

    1. ``critic_steps`` (5) critic updates (v1's secondary trainer, ``max_iters=5``, before each generator
       update), each on **a batch of its own**, as v1 (every ``sess.run`` of its graph dequeues a new
       batch): new holes, the generator run again (no gradient) for a new composite, and the WGAN loss of
       the global critic (whole image) plus the local critic (the ``hole_size`` patch around each hole),
       real images vs the composite, plus ``wgan_gp_lambda`` (10) times the gradient penalties (v1: the
       gradient norm taken over the hole only, on random interpolates in [-1, 1]);
    2. one generator update on one more batch: every sample draws its own hole (``ctx.generator``):
       v1's ``random_bbox`` + ``bbox2mask``, a ``hole_size`` square box at a random position (128x128 in
       256x256), shrunk on each side by a random ``0 .. max_delta // 2`` px, top / bottom and left / right
       alike (v1: ``max_delta_height`` / ``max_delta_width`` 32, default ``hole_size // 4``); the local
       critic's patch is the ``hole_size`` window around the hole; the input is built by ``input_mode``
       (hole / mosaic / hole_ns); ``coarse``, ``refined`` = the generator;
       ``completed = mask * refined + (1 - mask) * image``; the loss is
       ``l1_loss_alpha * l1 + ae_loss_alpha * ae + gan_loss_alpha * adv`` with
       ``l1 = coarse_l1_alpha * L1_sd(coarse) + L1_sd(refined)`` (spatially discounted L1 over the hole,
       ``gamma`` 0.9), ``ae`` the same on the known pixels (undiscounted), and
       ``adv = global_wgan_loss_alpha * (-D_global) + (-D_local)``. L1 terms are in v1's ``[-1, 1]`` units.

    **Batches.** A step uses ``batches_per_step = critic_steps + 1`` distinct batches (the loop hands them
    over as one ``((critic_steps + 1) * B, 3, H, W)`` tensor, :mod:`inpaint_utils.train`): one per critic
    update, the last for the generator update, so per generator update the critic sees five batches of
    distinct images, as in v1, at the price of ``critic_steps + 1`` generator forward passes per step
    (``critic_steps`` of them without gradient). Adam, ``lr`` 1e-4, betas (0.5, 0.9) for both.
    ``critic=None`` trains the L1 terms alone, on one batch per step.

    Random numbers (holes, the penalty's interpolation weights) come from ``ctx.generator``, drawn for the
    global batch and sharded when the loop runs in several processes (``ctx.global_size`` / ``ctx.shard``),
    so N processes follow the one-process run; holes differ in area, so each process's L1 means over the
    hole and over the known pixels are weighted by its share of the global count (``ctx.mean_weight``).
    """

    def __init__(self, generator: DeepFillGenerator, critic: DeepFillCritic | None = None, lr: float = 1e-4,
                 betas: tuple[float, float] = (0.5, 0.9), critic_steps: int = 5, coarse_l1_alpha: float = 1.2,
                 l1_loss_alpha: float = 1.2, ae_loss_alpha: float = 1.2, global_wgan_loss_alpha: float = 1.0,
                 gan_loss_alpha: float = 0.001, wgan_gp_lambda: float = 10.0, gamma: float = 0.9,
                 input_mode: str = "hole", max_delta: int | None = None):
        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {INPUT_MODES}, got {input_mode!r}")
        if not is_int(critic_steps) or critic_steps < 1:
            raise ValueError(f"critic_steps must be a positive int, got {critic_steps!r}")
        if critic is not None and critic.config.to_dict() != generator.config.to_dict():
            raise ValueError("generator and critic were built from different DeepFillConfigs")
        if max_delta is None:
            max_delta = generator.config.hole_size // 4                 # v1: 32 for its 128 px box
        if not is_int(max_delta) or not 0 <= max_delta < generator.config.hole_size:
            raise ValueError(f"max_delta must be an int in [0, hole_size {generator.config.hole_size}), got {max_delta!r}")
        self.max_delta = int(max_delta)
        self.generator, self.critic = generator, critic
        self.critic_steps, self.input_mode, self.gamma = critic_steps, input_mode, gamma
        self.coarse_l1_alpha, self.l1_loss_alpha, self.ae_loss_alpha = coarse_l1_alpha, l1_loss_alpha, ae_loss_alpha
        self.global_wgan_loss_alpha, self.gan_loss_alpha = global_wgan_loss_alpha, gan_loss_alpha
        self.wgan_gp_lambda = wgan_gp_lambda
        self.models, self.optimizers = adam_optimizers({"generator": generator, "critic": critic},
                                                       {"generator": lr, "critic": lr}, betas)

    @property
    def batches_per_step(self) -> int:
        """Batches one step takes from the loop (:mod:`inpaint_utils.train`): one per critic update, one for
        the generator (1 without a critic)."""
        return self.critic_steps + 1 if self.critic is not None else 1

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None,
                       **_: Any) -> TrainingMasks:
        """``n`` holes as a checkpoint's training drew them, from its ``config`` (a dict): :func:`random_boxes`,
        v1's box shrunk by a random ``0 .. hole_size // 8`` px a side (the default ``max_delta``)."""
        cfg = DeepFillConfig.from_dict(config)
        s, box = cfg.image_size, cfg.hole_size
        return TrainingMasks("square", f"a {box} px box less 0-{box // 8} px a side (v1), at a random position "
                                       f"in {s}x{s}", random_boxes(n, s, box, generator=generator))

    def masks(self, batch: torch.Tensor | int, generator: torch.Generator | None = None) -> torch.Tensor:
        """One hole per sample, ``(B, 1, S, S)``: a ``hole_size`` square box at a random position, shrunk
        by a random ``0 .. max_delta // 2`` px on each side (v1's ``bbox2mask``; on the batch's device when
        ``batch`` is a tensor; ``batch`` may also be the number of masks)."""
        cfg = self.generator.config
        n = batch if isinstance(batch, int) else batch.shape[0]
        masks = random_boxes(n, cfg.image_size, cfg.hole_size, self.max_delta, generator=generator)
        return masks if isinstance(batch, int) else masks.to(batch.device)

    def critic_loss(self, image: torch.Tensor, completed: torch.Tensor, mask: torch.Tensor,
                    top: torch.Tensor, left: torch.Tensor, alphas: tuple[torch.Tensor, torch.Tensor] | None = None,
                    generator: torch.Generator | None = None):
        """The critics' WGAN-GP loss on real ``image`` vs ``completed`` (detach it yourself) and its
        parts. ``alphas``: the interpolation weights ``(B,)`` of the global and the local penalty (drawn
        from ``generator`` when ``None``)."""
        from ..losses import gradient_penalty, wgan_critic_loss

        d, size = self.critic, self.generator.config.hole_size
        real_patch, fake_patch = crop_patches(image, top, left, size), crop_patches(completed, top, left, size)
        real_g, real_l = d(image, real_patch)
        fake_g, fake_l = d(completed, fake_patch)
        wgan = wgan_critic_loss(real_g, fake_g) + wgan_critic_loss(real_l, fake_l)
        if alphas is None:
            alphas = (torch.rand(image.shape[0], generator=generator), torch.rand(image.shape[0], generator=generator))
        # Gradient penalties on interpolates in [-1, 1] (v1's units), normed over the hole only (v1).
        gp_g = gradient_penalty(lambda x: d.score_global((x + 1.0) * 0.5), image * 2 - 1, completed * 2 - 1,
                                mask=mask, alpha=alphas[0])
        gp_l = gradient_penalty(lambda x: d.score_local((x + 1.0) * 0.5), real_patch * 2 - 1,
                                fake_patch * 2 - 1, mask=crop_patches(mask, top, left, size), alpha=alphas[1])
        gp = gp_g + gp_l
        return wgan + self.wgan_gp_lambda * gp, {"d_wgan": wgan.detach(), "gp": gp.detach()}

    def generator_loss(self, image, mask, coarse, refined, completed, top, left, shares=(1.0, 1.0)):
        """The generator's loss (v1 / Biradar et al. weights) and its parts (detached). ``shares``: factors of
        the hole and the known-pixel L1 means (``ctx.mean_weight`` of each count; 1 in one process)."""
        from ..losses import masked_l1, spatial_discount_weights, wgan_generator_loss

        weights = spatial_discount_weights(mask, self.gamma)                          # (B, 1, S, S), 0 outside
        known = (1.0 - mask).expand_as(weights)
        units = 2.0                                                                   # L1 in [-1, 1] units (v1)
        l1 = units * (self.coarse_l1_alpha * masked_l1(coarse, image, weights) + masked_l1(refined, image, weights))
        ae = units * (self.coarse_l1_alpha * masked_l1(coarse, image, known) + masked_l1(refined, image, known))
        l1, ae = l1 * shares[0], ae * shares[1]
        total = self.l1_loss_alpha * l1 + self.ae_loss_alpha * ae
        parts = {"l1": l1.detach(), "ae": ae.detach()}
        if self.critic is not None:
            patch = crop_patches(completed, top, left, self.generator.config.hole_size)
            fake_g, fake_l = self.critic(completed, patch)
            adv = self.global_wgan_loss_alpha * wgan_generator_loss(fake_g) + wgan_generator_loss(fake_l)
            total = total + self.gan_loss_alpha * adv
            parts["g_adv"] = adv.detach()
        parts["g_total"] = total.detach()
        return total, parts

    @staticmethod
    def _per_sample(ctx, batch: torch.Tensor, draw):
        """``draw(n)`` for the global batch, this process's rows (the loop's multi-process convention;
        one process: ``draw(len(batch))``)."""
        return ctx.shard(draw(ctx.global_size(batch)))

    def train_step(self, batch: torch.Tensor, step: int, ctx) -> dict[str, float]:
        """One step on ``batches_per_step`` batches one after the other (``batch.chunk``): a critic update on
        each but the last, then the generator update on the last."""
        g = self.generator
        if len(batch) % self.batches_per_step:
            raise ValueError(f"DeepFillTask.train_step takes {self.batches_per_step} batches of equal size in one "
                             f"tensor (critic_steps + 1; the loop's batches_per_step), got {len(batch)} rows")
        *critic_batches, batch = batch.chunk(self.batches_per_step)
        logs: dict[str, torch.Tensor] = {}
        for real in critic_batches:                    # v1: a new batch, new holes, a new composite per update
            mask = self._per_sample(ctx, real, lambda n: self.masks(n, ctx.generator)).to(real.device)
            with torch.no_grad(), ctx.autocast():
                refined = g(g.make_input(real, mask, mode=self.input_mode), mask)[1]
            fake = mask * refined.float() + (1.0 - mask) * real
            top, left = hole_boxes(mask, g.config.hole_size)
            alphas = self._per_sample(ctx, real, lambda n: torch.rand(2, n, generator=ctx.generator).T).T
            with ctx.autocast():
                d_loss, d_parts = self.critic_loss(real, fake, mask, top, left, (alphas[0], alphas[1]))
            update(ctx, d_loss, "critic", "critic loss")
            logs.update(d_parts)
        mask = self._per_sample(ctx, batch, lambda n: self.masks(n, ctx.generator)).to(batch.device)
        inp = g.make_input(batch, mask, mode=self.input_mode)
        with ctx.autocast():
            coarse, refined, _ = g(inp, mask)
        coarse, refined = coarse.float(), refined.float()
        completed = mask * refined + (1.0 - mask) * batch
        top, left = hole_boxes(mask, g.config.hole_size)
        with ctx.autocast():
            # holes differ in area: weight each process's means by its share of the global counts
            shares = (ctx.mean_weight(mask.sum()), ctx.mean_weight((1.0 - mask).sum()))
            g_loss, g_parts = self.generator_loss(batch, mask, coarse, refined, completed, top, left, shares)
        update(ctx, g_loss, "generator", "generator loss")
        logs.update(g_parts)
        return {k: float(v) for k, v in logs.items()}

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "coarse", "completed", "attention", "target"}`` for the loop's sample grids
        (``attention``: the offsets coloured with :func:`inpaint_utils.viz.flow_to_color`, upsampled)."""
        g = self.generator
        mask = self.masks(batch, generator)
        inp = g.make_input(batch, mask, mode=self.input_mode)
        return attention_samples(batch, inp, mask, *g(inp, mask))


def attention_samples(batch: torch.Tensor, inp: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor,
                      refined: torch.Tensor, offsets: torch.Tensor) -> dict[str, torch.Tensor]:
    """The sample grids of DeepFill v1 and v2 (``{"input", "coarse", "completed", "attention", "target"}``)
    from a generator's outputs: the input with its hole tinted, both stages composited into ``batch``, and
    the attention offsets coloured (:func:`inpaint_utils.viz.flow_to_color`) at the image's size."""
    from ..viz import flow_to_color, overlay_mask

    flow = F.interpolate(flow_to_color(offsets), size=batch.shape[-2:], mode="nearest")
    return {"input": overlay_mask(inp, mask, alpha=0.3), "coarse": mask * coarse + (1 - mask) * batch,
            "completed": mask * refined + (1 - mask) * batch, "attention": flow, "target": batch}
