"""DeepFill v2: **gated convolutions**, the two-stage generator built from them, and the SN-PatchGAN.

Paper: J. Yu, Z. Lin, J. Yang, X. Shen, X. Lu, T. S. Huang, *Free-Form Image Inpainting with Gated
Convolution*, ICCV 2019, arXiv:1806.03589 (section 3: gated convolution, SN-PatchGAN, the network of its
figure 3). The overview notes cite its FID 7.8 on Places2 and the 61 % user-study preference over
partial convolutions. The layer list mirrors the authors' TensorFlow release (``master`` of
``JiahuiYu/generative_inpainting``: ``inpaint_model.py``, ``inpaint_ops.py``, ``inpaint.yml``), read for
understanding only. It is DeepFill v1's layout (:mod:`inpaint_utils.models.deepfill`) with every
convolution gated; the contextual attention layer is v1's, imported from there, not copied.

Gated convolution (paper eq. 2): ``Gating = sigmoid(W_g * I)``, ``Feature = phi(W_f * I)``,
``O = phi(W_f * I) * sigmoid(W_g * I)``. v2's ``gen_conv`` is **one** convolution with ``2 n`` outputs split
into ``n`` features and ``n`` gates, ``phi`` = ELU (ReLU before the attention); the output layer
(``cnum == 3``) is a plain convolution. ``cnum`` (48 in v2) counts the convolution's outputs, so a layer
passes on ``cnum / 2`` features. Padding is TensorFlow's ``SAME`` (asymmetric for stride 2).

Layers: DeepFill v1's two stages, built by the same code from v1's layer table (the table in
:mod:`inpaint_utils.models.deepfill`; :class:`~.deepfill.CoarseNetwork`, :class:`~.deepfill.RefineNetwork`,
here with :data:`GATED_LAYERS`), changed as v2 changes them (``c = cnum / 2`` = 24 **output features** in
v2, each gated convolution holding ``2 x`` that many filters; sizes for a 256x256 input):

* every convolution is a gated 3x3 ``gconv`` (5x5 where v1 has ``k5``; ELU, ReLU in ``pmconv6``), every
  upsampling a ``gup`` (2x nearest neighbour, then a ``gconv``);
* the coarse network's input is the image in [-1, 1] with the hole **zeroed**, a ones channel and the
  mask (5 x 256); the refinement network's is the coarse result pasted into the hole **alone** (3 x 256:
  v2 drops the ones and the mask), so its ``xconv1`` and ``pmconv1`` are ``gconv k5 3 -> c``;
* each stage ends in a **plain** 3x3 convolution ``c/2 -> 3`` (no gate), then **tanh** (v1 clips).

SN-PatchGAN discriminator (``d`` = ``config.disc_cnum``, 64 in v2): on the image in [-1, 1] and the
mask (v2's ``gan_with_mask``), six 5x5 stride-2 convolutions with spectral normalisation (one power
iteration per forward pass, as v2), each followed by LeakyReLU 0.2 (the last one too, as v2)::

      4 -> d -> 2d -> 4d -> 4d -> 4d -> 4d        256 -> 128 -> 64 -> 32 -> 16 -> 8 -> 4

Its output is the (B, 4d, S/64, S/64) feature map itself; the hinge loss takes every element as one patch.

Parameter counts of the v2 configuration (``DeepFillV2Config()``; the arithmetic is in
``tests/test_gated_conv.py``): generator 4,052,478 (coarse network 1,631,151, refinement network
2,421,327; the attention has none), i.e. the ~4.1M parameters quoted for DeepFill v2; discriminator
5,946,816. Initialisation:
Glorot-uniform weights and zero biases (TensorFlow's defaults, as v2; :func:`~.deepfill.glorot_init`).

Training (:class:`DeepFillV2Task`, v2's ``build_graph_with_losses`` and ``inpaint.yml``): pixel L1 on the
coarse and the refined output over the whole image, weight 1 each (``l1_loss_alpha``), plus the hinge GAN
loss, weight 1 (``gan_loss_alpha``); one discriminator update, then one generator update per step; Adam
lr 1e-4, betas (0.5, 0.999); masks drawn on the fly: v2 takes the union of a random box and free-form
brush strokes.

Where we differ from the v2 code, and why:

* contextual attention is v1's module of this package: one mask per sample (v2 tiles one mask over the
  batch), the hole downscaled by max-pooling (:func:`~.deepfill.feature_mask`), and the other fixes listed in
  :mod:`inpaint_utils.models.deepfill`;
* masks are per sample (v2 draws one mask per batch); strokes come from :func:`inpaint_utils.masks.make_mask`
  ``("irregular")`` with a drawn hole-area ratio instead of v2's vertex / width parameters, and the box is
  not shrunk at random (v2: by up to ``max_delta / 2`` = 16 px per side); any ``mask_fn`` can replace them;
* the hinge loss of the discriminator is the paper's sum, without the 1/2 of v2's ``gan_hinge_loss``.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, Callable, ClassVar, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..masks import TrainingMasks, make_mask, ratio_text
from ..validation import check_generator, check_image, check_image_mask, check_mask, is_int
from .common import Rng, adam_optimizers, check_config, update
from .attention import AttentionConfig, ContextualAttention
from .deepfill import CoarseNetwork, LayerFamily, RefineNetwork, attention_samples, feature_mask, glorot_init

__all__ = [
    "SamePad2d",
    "GatedConv2d",
    "GatedDeconv2d",
    "DeepFillV2Config",
    "GatedCoarseNetwork",
    "GatedRefineNetwork",
    "DeepFillV2Generator",
    "SNPatchGANDiscriminator",
    "DeepFillV2Task",
    "free_form_masks",
    "ACTIVATIONS",
]

#: Feature activations ``phi`` a :class:`GatedConv2d` accepts (``None``: identity, still gated).
ACTIVATIONS = ("elu", "relu", "leaky_relu", None)


def _check_positive_int(value, name: str) -> int:
    if not is_int(value) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return int(value)


# --------------------------------------------------------------------------------------------
# the layers (paper section 3.1; v2's gen_conv / gen_deconv)
# --------------------------------------------------------------------------------------------
class SamePad2d(nn.Module):
    """TensorFlow's ``padding='SAME'``: zero-pad so that a ``kernel_size`` / ``stride`` / ``dilation``
    convolution gives ``ceil(H / stride) x ceil(W / stride)``; the odd pixel goes to the bottom / right
    (for stride 2 on an even side, a 3x3 kernel pads ``(0, 1)`` and a 5x5 ``(1, 2)``). v2's weights
    expect this alignment; PyTorch's symmetric ``padding`` shifts stride-2 layers by a pixel."""

    def __init__(self, kernel_size: int, stride: int = 1, dilation: int = 1):
        super().__init__()
        self.kernel_size = _check_positive_int(kernel_size, "kernel_size")
        self.stride = _check_positive_int(stride, "stride")
        self.dilation = _check_positive_int(dilation, "dilation")

    def amounts(self, size: int) -> tuple[int, int]:
        """``(before, after)`` padding of one side of length ``size``."""
        out = -(-size // self.stride)                                            # ceil(size / stride)
        total = max((out - 1) * self.stride + (self.kernel_size - 1) * self.dilation + 1 - size, 0)
        return total // 2, total - total // 2

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        top, bottom = self.amounts(x.shape[-2])
        left, right = self.amounts(x.shape[-1])
        return F.pad(x, (left, right, top, bottom)) if top or bottom or left or right else x

    def extra_repr(self) -> str:
        return f"kernel_size={self.kernel_size}, stride={self.stride}, dilation={self.dilation}"


def _activation(name: str | None) -> nn.Module:
    if name == "elu":
        return nn.ELU()
    if name == "relu":
        return nn.ReLU()
    if name == "leaky_relu":
        return nn.LeakyReLU(0.2)
    return nn.Identity()


class GatedConv2d(nn.Module):
    """Gated convolution (paper eq. 2): ``phi(W_f * x) * sigmoid(W_g * x)``, ``(B, in_channels, H, W) ->
    (B, out_channels, ceil(H / stride), ceil(W / stride))``.

    As v2's ``gen_conv``: one ``nn.Conv2d`` with ``2 * out_channels`` filters (``conv``); the first half
    are the feature filters ``W_f``, the second half the gating filters ``W_g``; TensorFlow ``SAME``
    padding (:class:`SamePad2d`); ``activation`` ``phi`` one of :data:`ACTIVATIONS` (v2: ELU, ReLU before
    the contextual attention). :meth:`gate` returns the soft mask ``sigmoid(W_g * x)`` in (0, 1).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int = 3, stride: int = 1,
                 dilation: int = 1, activation: str | None = "elu"):
        super().__init__()
        _check_positive_int(in_channels, "in_channels")
        _check_positive_int(out_channels, "out_channels")
        if activation not in ACTIVATIONS:
            raise ValueError(f"activation must be one of {ACTIVATIONS}, got {activation!r}")
        self.out_channels, self.activation_name = int(out_channels), activation
        self.pad = SamePad2d(kernel_size, stride, dilation)
        self.conv = nn.Conv2d(in_channels, 2 * out_channels, kernel_size, stride=stride, dilation=dilation)
        self.phi = _activation(activation)

    def _split(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.conv.in_channels:
            raise ValueError(f"input must have shape (B, {self.conv.in_channels}, H, W), got {tuple(x.shape)}")
        features, gates = self.conv(self.pad(x)).chunk(2, dim=1)                 # (B, n, h, w) each
        return features, gates

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        features, gates = self._split(x)
        return self.phi(features) * torch.sigmoid(gates)

    def gate(self, x: torch.Tensor) -> torch.Tensor:
        """The gating map ``sigmoid(W_g * x)`` ``(B, out_channels, h, w)``, for looking at what it learnt."""
        return torch.sigmoid(self._split(x)[1])


class GatedDeconv2d(nn.Module):
    """v2's ``gen_deconv``: 2x nearest-neighbour upsampling, then a 3x3 :class:`GatedConv2d` (ELU)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = GatedConv2d(in_channels, out_channels, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(F.interpolate(x, scale_factor=2, mode="nearest"))       # (B, C, 2H, 2W) -> gated


class _OutputConv(nn.Sequential):
    """v2's output layer (``gen_conv`` with 3 outputs): a plain 3x3 convolution, ``SAME``, no gate."""

    def __init__(self, in_channels: int):
        super().__init__(SamePad2d(3), nn.Conv2d(in_channels, 3, 3))


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class DeepFillV2Config(AttentionConfig):
    """Hyper-parameters of DeepFill v2; the defaults are the authors' (``inpaint.yml``, ``inpaint_model.py``).

    Attributes:
        image_size: the training side (256); the generator runs on any ``H, W`` divisible by ``4 * rate``
            (the attention works at 1/4 resolution and downscales by ``rate`` again), the discriminator
            on any size.
        cnum: v2's ``cnum``, the number of filters of the first gated convolution (48): features and
            gates, so it passes on ``cnum / 2`` = 24 features; every layer scales with it. Divisible by 4.
        disc_cnum: width of the SN-PatchGAN (64 in v2).
        ksize, stride, rate, fuse_k, softmax_scale: the contextual attention (3, 1, 2, 3, 10, as v1).
    """

    #: ``tiny()``: the same topology, narrow (cnum 16, i.e. 8 features; discriminator 8) at 64x64, for tests
    #: and smoke runs.
    TINY: ClassVar[dict[str, Any]] = {"image_size": 64, "cnum": 16, "disc_cnum": 8}

    image_size: int = 256
    cnum: int = 48
    disc_cnum: int = 64

    def __post_init__(self) -> None:
        self.check_attention(self.image_size)
        if not is_int(self.cnum) or self.cnum < 4 or self.cnum % 4:
            raise ValueError(f"cnum must be an int divisible by 4 (layers pass on cnum / 2 features and the "
                             f"last gated layer cnum / 4), got {self.cnum!r}")
        _check_positive_int(self.disc_cnum, "disc_cnum")

    @property
    def features(self) -> int:
        """``c``: the output features of the first gated convolution (``cnum / 2``)."""
        return self.cnum // 2





# --------------------------------------------------------------------------------------------
# the two stages (paper figure 3; v2's build_inpaint_net)
# --------------------------------------------------------------------------------------------
#: DeepFill v2's layers: every convolution gated, the output layer plain (v2's ``gen_conv`` / ``gen_deconv``).
GATED_LAYERS = LayerFamily(GatedConv2d, GatedDeconv2d, _OutputConv)


class GatedCoarseNetwork(CoarseNetwork):
    """Stage 1 (v2 ``conv1`` ... ``conv17``): v1's layer table (:class:`~inpaint_utils.models.deepfill.CoarseNetwork`)
    with gated convolutions: ``(B, 5, H, W)`` -> ``(B, 3, H, W)`` in ``(-1, 1)`` (tanh). ``c`` is the number
    of output features of the first layer (``cnum / 2``)."""

    def __init__(self, c: int = 24):
        super().__init__(c, GATED_LAYERS)

    @staticmethod
    def squash(x: torch.Tensor) -> torch.Tensor:
        """v2 ends in tanh."""
        return torch.tanh(x)


class GatedRefineNetwork(RefineNetwork):
    """Stage 2: v1's layer table (:class:`~inpaint_utils.models.deepfill.RefineNetwork`: a dilated branch
    and a contextual-attention branch, concatenated and decoded) with gated convolutions.
    ``forward(x, mask_s) -> (image in (-1, 1), offsets)``; ``x`` is ``(B, 3, H, W)`` (v2 feeds the pasted
    image alone), ``mask_s`` the hole at ``H / 4``. ``attention`` is
    :class:`inpaint_utils.models.deepfill.ContextualAttention` itself."""

    in_channels = 3

    def __init__(self, c: int = 24, ca: ContextualAttention | None = None):
        super().__init__(c, ca, GATED_LAYERS)

    squash = staticmethod(GatedCoarseNetwork.squash)


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------
class DeepFillV2Generator(nn.Module):
    """DeepFill v2's two-stage gated generator (the module docstring has the layer list).

    ``forward(image, mask) -> (coarse, refined, offsets)``: ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (its
    hole pixels are zeroed in ``[-1, 1]`` inside, v2's ``batch_pos * (1 - mask)``, so they never reach the
    network), ``mask`` ``(B or 1, 1, H, W)``, 1 = hole; ``H, W`` divisible by ``4 * rate``. ``coarse`` and
    ``refined`` are the two stages' raw outputs in ``[0, 1]`` (no composite), ``offsets`` the contextual
    attention's ``(B, 2, H / (4 rate), W / (4 rate))`` long tensor. :meth:`predict_full` gives the composite.
    """

    model_name = "deepfill_v2"

    def __init__(self, config: DeepFillV2Config | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, DeepFillV2Config)
        c = cfg.features                                             # cnum / 2: the features a layer passes on
        self.coarse = GatedCoarseNetwork(c)
        self.refine = GatedRefineNetwork(c, cfg.attention())
        glorot_init(self, check_generator(generator, seed))

    def _prepare(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        check_image_mask(image, mask)
        h, w = image.shape[-2:]
        unit = 4 * self.config.rate
        if h % unit or w % unit:
            raise ValueError(f"image size {h}x{w} must be divisible by 4 * rate = {unit} (the contextual "
                             f"attention matches at 1/{unit} resolution)")
        mask = mask.to(dtype=image.dtype, device=image.device).expand(image.shape[0], 1, h, w)
        return (image * 2.0 - 1.0) * (1.0 - mask), mask              # [-1, 1], hole zeroed (v2)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        xin, mask = self._prepare(image, mask)
        ones = torch.ones_like(mask)
        x1 = self.coarse(torch.cat([xin, ones, mask], dim=1))        # (B, 5, H, W) -> (B, 3, H, W) in (-1, 1)
        x = x1 * mask + xin * (1.0 - mask)                           # stage 2 input: the coarse result pasted in
        x2, offsets = self.refine(x, feature_mask(mask))             # (B, 3, H, W), (B, 2, H/4r, W/4r)
        return (x1 + 1.0) * 0.5, (x2 + 1.0) * 0.5, offsets

    @torch.no_grad()
    def coarse_gates(self, image: torch.Tensor, mask: torch.Tensor,
                     layers: tuple[int, ...] = (1, 2, 4)) -> dict[str, torch.Tensor]:
        """The soft masks ``sigmoid(W_g * x)`` of the coarse network's gated layers ``conv<i>`` (1-based,
        v2's names: ``conv1`` ... ``conv10_atrous``, the encoder), each ``(B, n, h, w)`` in ``(0, 1)``: what a
        gated convolution learns where a partial convolution applies its fixed mask update."""
        xin, mask = self._prepare(image, mask)
        encoder = list(self.coarse.encoder)
        if not layers or any(not is_int(i) or not 1 <= i <= len(encoder) for i in layers):
            raise ValueError(f"layers must be indices 1..{len(encoder)} of the coarse encoder, got {layers!r}")
        x = torch.cat([xin, torch.ones_like(mask), mask], dim=1)      # (B, 5, H, W), as forward
        gates = {}
        for i, layer in enumerate(encoder[:max(layers)], start=1):
            if i in layers:
                gates[f"conv{i}"] = layer.gate(x)
            x = layer(x)
        return gates

    def predict_full(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """Inpaint ``image`` ``(B, 3, H, W)`` where ``mask`` is 1 and return the composite
        ``mask * refined + (1 - mask) * image``: known pixels come back unchanged, bit for bit, and the
        hole's pixels never reach the network. Gradients flow; wrap in ``torch.no_grad()``."""
        check_image_mask(image, mask)
        mask = mask.to(dtype=image.dtype, device=image.device)
        _, refined, _ = self(image, mask)
        return mask * refined + (1.0 - mask) * image


# --------------------------------------------------------------------------------------------
# the discriminator (paper section 3.2, figure 3; v2's build_sn_patch_gan_discriminator)
# --------------------------------------------------------------------------------------------
class SNPatchGANDiscriminator(nn.Module):
    """SN-PatchGAN: ``forward(image, mask) -> (B, 4d, ceil(H/64), ceil(W/64))`` feature map, one score per
    element (``d`` = ``config.disc_cnum``). ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (converted to ``[-1, 1]``
    inside) and its ``mask`` ``(B or 1, 1, H, W)`` are concatenated (v2's ``gan_with_mask``).

    Six 5x5 stride-2 convolutions (``SAME``), each wrapped in
    :func:`torch.nn.utils.parametrizations.spectral_norm` (one power iteration per training-mode forward
    pass, as v2's ``conv2d_spectral_norm``) and followed by LeakyReLU 0.2. The power iteration's start
    vectors are drawn from ``generator`` / ``seed`` (so the same seed gives the same discriminator).
    """

    model_name = "sn_patchgan"

    def __init__(self, config: DeepFillV2Config | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, DeepFillV2Config)
        d = cfg.disc_cnum
        widths = [4, d, 2 * d, 4 * d, 4 * d, 4 * d, 4 * d]                # image + mask in, conv1 ... conv6
        convs = [nn.Conv2d(c_in, c_out, 5, stride=2) for c_in, c_out in zip(widths[:-1], widths[1:])]
        rng = check_generator(generator, seed)
        for conv in convs:
            glorot_init(conv, rng)
        # spectral_norm draws its start vectors u, v from torch's global RNG: draw them from ours instead
        def build() -> nn.Sequential:
            layers: list[nn.Module] = []
            for conv in convs:
                layers += [SamePad2d(5, 2), nn.utils.parametrizations.spectral_norm(conv), nn.LeakyReLU(0.2)]
            return nn.Sequential(*layers)

        if rng is None:
            self.features = build()
        else:
            with torch.random.fork_rng(devices=[]):                  # leaves the global RNG as it was
                torch.manual_seed(int(torch.randint(0, 2 ** 62, (1,), generator=rng)))
                self.features = build()

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_image(image, "image")
        check_mask(mask, size=tuple(image.shape[-2:]), batch=image.shape[0])
        mask = mask.to(dtype=image.dtype, device=image.device).expand(image.shape[0], 1, *image.shape[-2:])
        return self.features(torch.cat([image * 2.0 - 1.0, mask], dim=1))   # (B, 4, H, W) -> (B, 4d, H/64, W/64)


# --------------------------------------------------------------------------------------------
# training: v2's objective for the shared loop (inpaint_utils.train)
# --------------------------------------------------------------------------------------------
MaskFn = Callable[[int, tuple[int, int], "torch.Generator | None"], torch.Tensor]


#: v2's default training holes (:func:`free_form_masks`): the strokes' share of the image, drawn per sample, and the
#: box's (v2's 128x128 in 256x256)
STROKE_RATIO: tuple[float, float] = (0.05, 0.3)
BOX_RATIO: float = 0.25


def free_form_masks(n: int, size: int | tuple[int, int], stroke_ratio: float | tuple[float, float] = STROKE_RATIO,
                    box_ratio: float | None = BOX_RATIO, generator: torch.Generator | None = None) -> torch.Tensor:
    """v2's training holes ``(n, 1, H, W)``, 1 = hole, one per sample: free-form brush strokes covering a drawn
    ``stroke_ratio`` of the image (:func:`inpaint_utils.masks.make_mask` ``"irregular"``) united with a random
    box of ``box_ratio`` of the image (``"square"``; ``None``: strokes alone). What :meth:`DeepFillV2Task.masks`
    draws by default, and what a trained model is scored on (:func:`inpaint_utils.comparison.training_masks`).

    >>> m = free_form_masks(2, 64, generator=torch.Generator().manual_seed(0))
    >>> m.shape, bool((m.mean(dim=(1, 2, 3)) >= 0.25).all())
    (torch.Size([2, 1, 64, 64]), True)
    """
    masks = make_mask("irregular", size, stroke_ratio, batch=n, generator=generator)
    if box_ratio is not None:
        masks = torch.maximum(masks, make_mask("square", size, box_ratio, batch=n, generator=generator))
    return masks


class DeepFillV2Task:
    """DeepFill v2's training step, a :class:`inpaint_utils.train.Task` with models
    ``{"generator", "discriminator"}``.

    Per step (v2's ``build_graph_with_losses``, ``train.py`` and ``inpaint.yml``):

    1. every sample draws its own mask from ``ctx.generator``: by default :meth:`masks`, v2's union of a
       random box (``box_ratio`` of the image, 1/4: v2's 128x128 in 256x256; ``None`` leaves it out) and
       free-form brush strokes covering a drawn ``stroke_ratio`` of the image
       (:func:`inpaint_utils.masks.make_mask` ``"irregular"``); or ``mask_fn(n, (H, W), generator) ->
       (n, 1, H, W)``, e.g. LaMa-style masks;
    2. the generator runs once: ``coarse``, ``refined``; ``completed = mask * refined + (1 - mask) * image``;
    3. one discriminator update on the hinge loss of the real images and the composites (one forward pass
       of both, with their masks, as v2's ``batch_pos_neg``): ``E relu(1 - D(x)) + E relu(1 + D(G(z)))``
       over every element of the output map;
    4. one generator update on ``l1_loss_alpha * (L1(coarse) + L1(refined)) + gan_loss_alpha * (-E D(G(z)))``;
       the L1 terms are means over **every** pixel (v2's ``ae_loss``; the hole is not singled out), in v2's
       ``[-1, 1]`` units.

    Adam, ``lr`` 1e-4, betas (0.5, 0.999), for both (v2). ``discriminator=None`` trains the L1 terms
    alone. Masks are drawn for the global batch and sharded when the loop runs in several processes, so
    N processes follow the one-process run (the means are over equal shards: no re-weighting needed).
    """

    def __init__(self, generator: DeepFillV2Generator, discriminator: SNPatchGANDiscriminator | None = None,
                 lr: float = 1e-4, betas: tuple[float, float] = (0.5, 0.999), l1_loss_alpha: float = 1.0,
                 gan_loss_alpha: float = 1.0, mask_fn: MaskFn | None = None,
                 stroke_ratio: float | tuple[float, float] = STROKE_RATIO, box_ratio: float | None = BOX_RATIO):
        if not isinstance(generator, DeepFillV2Generator):
            raise TypeError(f"generator must be a DeepFillV2Generator, got {type(generator).__name__}")
        if discriminator is not None and not isinstance(discriminator, SNPatchGANDiscriminator):
            raise TypeError(f"discriminator must be an SNPatchGANDiscriminator or None, got "
                            f"{type(discriminator).__name__}")
        if mask_fn is not None and not callable(mask_fn):
            raise TypeError(f"mask_fn must be a callable (n, (H, W), generator) -> (n, 1, H, W), got "
                            f"{type(mask_fn).__name__}")
        for name, v in (("l1_loss_alpha", l1_loss_alpha), ("gan_loss_alpha", gan_loss_alpha)):
            if isinstance(v, bool) or not isinstance(v, numbers.Real) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{name} must be a finite number >= 0, got {v!r}")
        if box_ratio is not None:
            make_mask("square", 64, box_ratio, seed=0)               # checks the ratio now, not at step 1
        make_mask("irregular", 64, stroke_ratio, seed=0)
        self.generator, self.discriminator = generator, discriminator
        self.l1_loss_alpha, self.gan_loss_alpha = float(l1_loss_alpha), float(gan_loss_alpha)
        self.mask_fn, self.stroke_ratio, self.box_ratio = mask_fn, stroke_ratio, box_ratio
        self.models, self.optimizers = adam_optimizers({"generator": generator, "discriminator": discriminator},
                                                       {"generator": lr, "discriminator": lr}, betas)

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None, *,
                       mask_ratio: float | tuple[float, float] | None = None, **_: Any) -> TrainingMasks:
        """``n`` holes as a checkpoint's training drew them, from its ``config`` (a dict): :func:`free_form_masks`,
        brush strokes covering ``mask_ratio`` (default :data:`STROKE_RATIO`; a checkpoint does not store it)
        united with a box of :data:`BOX_RATIO` of the image."""
        s = DeepFillV2Config.from_dict(config).image_size
        ratio = STROKE_RATIO if mask_ratio is None else mask_ratio
        return TrainingMasks("irregular", f"free-form brush strokes (hole ratio {ratio_text(ratio)}) and a box of "
                                          f"{BOX_RATIO:g} of the image (v2), at {s}x{s}",
                             free_form_masks(n, s, ratio, BOX_RATIO, generator))

    def masks(self, batch: torch.Tensor | int, generator: torch.Generator | None = None,
              size: int | tuple[int, int] | None = None) -> torch.Tensor:
        """One mask per sample ``(B, 1, H, W)`` (on the batch's device when ``batch`` is a tensor, whose
        size it takes; ``batch`` may also be the number of masks, with ``size`` defaulting to
        ``config.image_size``): ``mask_fn``'s, or v2's box + brush strokes."""
        n = batch if isinstance(batch, int) else batch.shape[0]
        if isinstance(batch, int):
            size = size if size is not None else self.generator.config.image_size
        else:
            size = tuple(batch.shape[-2:])
        hw = (size, size) if isinstance(size, int) else (int(size[0]), int(size[1]))
        if self.mask_fn is not None:
            masks = self.mask_fn(n, hw, generator)
            try:
                check_mask(masks, size=hw, batch=n, name="mask_fn's masks")
            except (TypeError, ValueError) as err:
                raise type(err)(f"mask_fn(n={n}, size={hw}) must return float masks (n, 1, H, W): {err}") from None
            if masks.shape[0] != n:
                raise ValueError(f"mask_fn(n={n}, size={hw}) returned {masks.shape[0]} masks, expected {n}")
        else:
            masks = free_form_masks(n, hw, self.stroke_ratio, self.box_ratio, generator)
        return masks if isinstance(batch, int) else masks.to(device=batch.device, dtype=torch.float32)

    def discriminator_loss(self, image: torch.Tensor, completed: torch.Tensor,
                           mask: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The hinge loss of the discriminator on real ``image`` vs ``completed`` (detach it yourself), both
        with ``mask``, in one forward pass; and its parts (detached)."""
        from ..losses import hinge_discriminator_loss

        b = image.shape[0]
        mask = mask.expand(b, 1, *image.shape[-2:])
        scores = self.discriminator(torch.cat([image, completed]), torch.cat([mask, mask]))   # (2B, 4d, h, w)
        real, fake = scores[:b], scores[b:]
        loss = hinge_discriminator_loss(real, fake)
        return loss, {"d_hinge": loss.detach(), "d_real": real.detach().float().mean(),
                      "d_fake": fake.detach().float().mean()}

    def generator_loss(self, image: torch.Tensor, mask: torch.Tensor, coarse: torch.Tensor, refined: torch.Tensor,
                       completed: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        """The generator's loss (v2's weights) and its parts (detached)."""
        from ..losses import hinge_generator_loss

        units = 2.0                                                   # L1 in [-1, 1] units (v2)
        target = image.float()
        l1 = units * (F.l1_loss(coarse.float(), target) + F.l1_loss(refined.float(), target))
        total = self.l1_loss_alpha * l1
        parts = {"l1": l1.detach()}
        if self.discriminator is not None:
            adv = hinge_generator_loss(self.discriminator(completed, mask))
            total = total + self.gan_loss_alpha * adv
            parts["g_adv"] = adv.detach()
        parts["g_total"] = total.detach()
        return total, parts

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "coarse", "completed", "attention", "target"}`` for the loop's sample grids
        (``attention``: the offsets coloured with :func:`inpaint_utils.viz.flow_to_color`, upsampled)."""
        mask = self.masks(batch, generator)
        return attention_samples(batch, batch, mask, *self.generator(batch, mask))

    def train_step(self, batch: torch.Tensor, step: int, ctx) -> dict[str, float]:
        g = self.generator
        mask = ctx.shard(self.masks(ctx.global_size(batch), ctx.generator, size=tuple(batch.shape[-2:])))
        mask = mask.to(batch.device)
        with ctx.autocast():
            coarse, refined, _ = g(batch, mask)
        coarse, refined = coarse.float(), refined.float()
        completed = mask * refined + (1.0 - mask) * batch
        logs: dict[str, torch.Tensor] = {}
        if self.discriminator is not None:
            with ctx.autocast():
                d_loss, d_parts = self.discriminator_loss(batch, completed.detach(), mask)
            update(ctx, d_loss, "discriminator", "discriminator loss")
            logs.update(d_parts)
        with ctx.autocast():
            g_loss, g_parts = self.generator_loss(batch, mask, coarse, refined, completed)
        update(ctx, g_loss, "generator", "generator loss")
        logs.update(g_parts)
        return {k: float(v) for k, v in logs.items()}
