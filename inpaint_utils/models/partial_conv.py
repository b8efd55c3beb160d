"""Partial convolutions and the PConv U-Net of Liu et al. 2018, read off the paper's layer table.

Paper: G. Liu, F. A. Reda, K. J. Shih, T.-C. Wang, A. Tao, B. Catanzaro, *Image Inpainting for
Irregular Holes Using Partial Convolutions*, ECCV 2018, arXiv:1804.07723 (the overview notes). Section 3.1
(the layer), 3.2 (mask update), 3.3 and the supplementary table (the network), 3.4 (the loss, in
:func:`inpaint_utils.losses.pconv_loss`), 4 (training: Adam 2e-4, then 5e-5 with the encoder's
BatchNorm frozen).

**The layer** (eq. 1-2). ``M`` is the *valid* mask (1 = known: the paper's sense, the opposite of
the project's hole masks; :class:`PConvUNet` converts once, at its input). For each window of
features ``X`` and mask ``M``::

    x' = W^T (X * M) * sum(1) / sum(M) + b    if sum(M) > 0
         0                                    otherwise
    m' = 1 if sum(M) > 0 else 0

``sum(1)`` is the number of elements in the window (``C_in k k``; padding counts, as zeros in ``M``),
so a window that sees only part of the known pixels is rescaled as if it saw them all. The bias is
added after the rescaling and *not* where ``sum(M) = 0``: a hole that no window can see gives 0 and
stays a hole (``m' = 0``). The paper implements the masks as ``C x H x W`` tensors, the size of the
features, updated by a fixed all-ones convolution (section 3.3, "Implementation"); we do the same
(:class:`PartialConv2d` also takes a one-channel mask, which is the same as ``C_in`` equal channels).
The mask counts run in float32 outside autocast (``C_in k^2`` reaches 9,216, beyond bfloat16's exact
integers).

**The network** (supplementary Table; ``s2`` stride 2, "same" padding ``k // 2``)::

    PConv1   7x7   3 ->  64  s2  -   ReLU            512 -> 256
    PConv2   5x5  64 -> 128  s2  BN  ReLU            256 -> 128
    PConv3   5x5 128 -> 256  s2  BN  ReLU            128 ->  64
    PConv4   3x3 256 -> 512  s2  BN  ReLU             64 ->  32
    PConv5-8 3x3 512 -> 512  s2  BN  ReLU             32 ->   2
    decoder, each: nearest upsampling x2, concatenation with the encoder's features AND masks
    PConv9-12  3x3 512+512 -> 512  BN  LeakyReLU 0.2     2 ->  32
    PConv13    3x3 512+256 -> 256  BN  LeakyReLU 0.2    32 ->  64
    PConv14    3x3 256+128 -> 128  BN  LeakyReLU 0.2    64 -> 128
    PConv15    3x3 128+64  ->  64  BN  LeakyReLU 0.2   128 -> 256
    PConv16    3x3  64+3   ->   3  -   -               256 -> 512  (concatenated with the input image and mask)

Parameters of the paper's configuration (``PConvConfig()``, with the biases of eq. 1 on every layer;
arithmetic in ``tests/test_partial_conv.py``): **32,865,236** (32.9 M), of which 10,880 are BatchNorm
scales and shifts (running statistics are buffers) and 5,507 biases; ``bias=False`` gives 32,859,729.

Smaller images take fewer layers: ``num_layers = log2(image_size) - 1`` (8 at 512, 5 at 64), so the
bottleneck is always 2x2 as in the paper; the extra 3x3 512 layers are the ones dropped. ``tiny()``
is that 64-px network at 1/8 width, through the same code.

Ranges: images cross the public boundary in ``[0, 1]``; the paper does not state its input range, so
the network sees ``2 x - 1`` (zero-centred) and its linear output ``y`` is mapped back as
``(y + 1) / 2``, unclamped for the losses; :meth:`PConvUNet.predict_full` clamps it to ``[0, 1]`` and
pastes the known pixels back.
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
from ..validation import check_generator, check_image_mask, check_mask, is_int
from .common import ModelConfig, Rng, adam_optimizers, check_config, update

__all__ = [
    "PartialConv2d",
    "PConvConfig",
    "PConvUNet",
    "PConvTask",
    "freeze_encoder_batchnorm",
    "irregular_masks",
    "fill_dependence",
]


# --------------------------------------------------------------------------------------------
# the layer (section 3.1, eq. 1-2)
# --------------------------------------------------------------------------------------------
class PartialConv2d(nn.Module):
    """A partial convolution (eq. 1) with its mask update (eq. 2); see the module docstring.

    ``forward(x, valid)``: ``x`` ``(B, C_in, H, W)``, ``valid`` the paper's mask ``M`` (1 = known),
    ``(B or 1, C_in or 1, H, W)``, binary. Returns ``(x', m')``: ``(B, C_out, H', W')`` and the updated
    mask ``(B, C_out, H', W')`` (the same for every output channel, an expanded view of one channel).
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, stride: int = 1,
                 padding: int | None = None, bias: bool = True):
        super().__init__()
        for name, value in (("in_channels", in_channels), ("out_channels", out_channels),
                            ("kernel_size", kernel_size), ("stride", stride)):
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        padding = kernel_size // 2 if padding is None else padding
        if not is_int(padding) or padding < 0:
            raise ValueError(f"padding must be an int >= 0, got {padding!r}")
        self.in_channels, self.out_channels = int(in_channels), int(out_channels)
        self.kernel_size, self.stride, self.padding = int(kernel_size), int(stride), int(padding)
        self.weight = nn.Parameter(torch.empty(out_channels, in_channels, kernel_size, kernel_size))
        self.bias = nn.Parameter(torch.zeros(out_channels)) if bias else None
        nn.init.kaiming_uniform_(self.weight, a=math.sqrt(5))            # nn.Conv2d's default

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if x.ndim != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"x must have shape (B, {self.in_channels}, H, W), got {tuple(x.shape)}")
        b, c, h, w = x.shape
        if (valid.ndim != 4 or valid.shape[0] not in (1, b) or valid.shape[1] not in (1, c)
                or tuple(valid.shape[-2:]) != (h, w)):
            raise ValueError(f"valid (1 = known) must have shape (B or 1, {c} or 1, {h}, {w}), got "
                             f"{tuple(valid.shape)}")
        k, s, p = self.kernel_size, self.stride, self.padding
        # sum(M) per window (all channels), counted in float32 outside autocast: exact integers
        with torch.no_grad(), torch.autocast(device_type=x.device.type, enabled=False):
            m = valid.detach().float()
            per_pixel = m.sum(dim=1, keepdim=True)                                    # (B, 1, H, W)
            ones = torch.ones(1, 1, k, k, dtype=torch.float32, device=x.device)
            count = F.conv2d(per_pixel, ones, stride=s, padding=p)                    # (B, 1, H', W') sum(M)
            window = float(m.shape[1] * k * k)                                        # sum(1)
            seen = count > 0
            ratio = torch.where(seen, window / count.clamp_min(1.0), torch.zeros_like(count))
        raw = F.conv2d(x * valid.to(x.dtype), self.weight, None, stride=s, padding=p)   # W^T (X * M)
        out = raw * ratio.to(raw.dtype)                                                # (B, C_out, H', W')
        if self.bias is not None:
            out = out + self.bias.view(1, -1, 1, 1).to(out.dtype) * seen.to(out.dtype)
        new_valid = seen.to(valid.dtype).expand(-1, self.out_channels, -1, -1)       # (B, C_out, H', W')
        return out, new_valid

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, kernel_size={self.kernel_size}, stride={self.stride}, "
                f"padding={self.padding}, bias={self.bias is not None}")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def _paper_channels(n: int, base: int) -> tuple[int, ...]:
    """The paper's encoder widths 64-128-256-512-512-... (times ``base / 64``) for ``n`` layers."""
    full = (base, 2 * base, 4 * base) + (8 * base,) * max(0, n - 3)
    return full[:n]


def _paper_kernels(n: int) -> tuple[int, ...]:
    """The paper's encoder kernels 7-5-5-3-3-... for ``n`` layers."""
    return ((7, 5, 5) + (3,) * max(0, n - 3))[:n]


@dataclass
class PConvConfig(ModelConfig):
    """Hyper-parameters of the PConv U-Net; the defaults are the paper's 512-px network.

    Tuples left at ``None`` are derived (and stored resolved, so :meth:`to_dict` is complete).

    Attributes:
        image_size: the training size (512 in the paper); any input whose sides are multiples of
            ``2 ** num_layers`` runs (the network is fully convolutional).
        num_layers: encoder layers (= decoder layers), default ``log2(image_size) - 1`` (8 at 512).
        base_channels: width of PConv1 (64); the derived widths scale with it.
        encoder_channels: widths of PConv1..n (64, 128, 256, 512, 512, ...).
        encoder_kernels: kernels of PConv1..n (7, 5, 5, 3, 3, ...).
        decoder_kernel: kernel of every decoder partial convolution (3).
        bias: the ``b`` of eq. 1 on every layer.
        leaky_slope: the decoder's LeakyReLU slope (0.2).
        loss_features: the feature network of the perceptual and style losses the weights are trained with
            (:func:`inpaint_utils.losses.feature_network`): ``"vgg16"`` (the paper's pool1-pool3 of VGG-16
            ImageNet), ``"squeeze"`` (SqueezeNet 1.1 ImageNet's conv1, fire3, fire5: the offline substitute),
            ``"random"`` / ``"squeeze_random"`` (random weights: tests, the smoke profile). A record of the
            training, stored in the checkpoint (a resume with another is refused); the network does not use it.
    """

    #: ``tiny()``: the 64-px network (5 layers each side, 2x2 bottleneck) at 1/8 width, for tests and smoke
    #: runs: encoder 8-16-32-64-64 with kernels 7-5-5-3-3.
    TINY: ClassVar[dict[str, Any]] = {"image_size": 64, "base_channels": 8, "loss_features": "random"}

    image_size: int = 512
    num_layers: int | None = None
    base_channels: int = 64
    encoder_channels: tuple[int, ...] | None = None
    encoder_kernels: tuple[int, ...] | None = None
    decoder_kernel: int = 3
    bias: bool = True
    leaky_slope: float = 0.2
    loss_features: str = "vgg16"

    def __post_init__(self) -> None:
        from ..losses import FEATURE_CHOICES

        if self.loss_features not in FEATURE_CHOICES or self.loss_features == "auto":
            raise ValueError(f"loss_features must be one of {[c for c in FEATURE_CHOICES if c != 'auto']} (the "
                             f"network chosen, not 'auto'), got {self.loss_features!r}")
        s = self.image_size
        if not is_int(s) or s < 16 or s & (s - 1):
            raise ValueError(f"image_size must be a power of two >= 16, got {s!r}")
        if self.num_layers is None:
            self.num_layers = int(math.log2(s)) - 1               # a 2x2 bottleneck, as 512 -> 2 in the paper
        n = self.num_layers
        if not is_int(n) or n < 2 or 2 ** n > s:
            raise ValueError(f"num_layers must be an int in [2, log2(image_size) = {int(math.log2(s))}] (each "
                             f"layer halves the side), got {n!r}")
        if not is_int(self.base_channels) or self.base_channels < 1:
            raise ValueError(f"base_channels must be a positive int, got {self.base_channels!r}")
        for name, derived in (("encoder_channels", _paper_channels(n, self.base_channels)),
                              ("encoder_kernels", _paper_kernels(n))):
            value = getattr(self, name)
            value = derived if value is None else value
            if (not isinstance(value, (tuple, list)) or len(value) != n
                    or not all(is_int(v) and v >= 1 for v in value)):
                raise ValueError(f"{name} must be {n} positive ints (one per encoder layer), got {value!r}")
            setattr(self, name, tuple(int(v) for v in value))
        if not is_int(self.decoder_kernel) or self.decoder_kernel < 1 or self.decoder_kernel % 2 == 0:
            raise ValueError(f"decoder_kernel must be an odd positive int, got {self.decoder_kernel!r}")
        if any(k % 2 == 0 for k in self.encoder_kernels):
            raise ValueError(f"encoder_kernels must be odd ('same' padding k // 2), got {self.encoder_kernels}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {self.bias!r}")
        if not (isinstance(self.leaky_slope, numbers.Real) and 0 <= self.leaky_slope < 1):
            raise ValueError(f"leaky_slope must be in [0, 1), got {self.leaky_slope!r}")

    @property
    def multiple(self) -> int:
        """Input sides must be multiples of this (``2 ** num_layers``)."""
        return 2 ** self.num_layers




# --------------------------------------------------------------------------------------------
# the network (section 3.3 and the supplementary table)
# --------------------------------------------------------------------------------------------
class PConvBlock(nn.Module):
    """Partial convolution [+ BatchNorm] [+ activation]; masks pass through untouched by BN."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int, batch_norm: bool,
                 activation: nn.Module | None, bias: bool):
        super().__init__()
        self.conv = PartialConv2d(c_in, c_out, kernel, stride=stride, bias=bias)
        self.bn = nn.BatchNorm2d(c_out) if batch_norm else None
        self.act = activation

    def forward(self, x: torch.Tensor, valid: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x, valid = self.conv(x, valid)
        if self.bn is not None:
            x = self.bn(x)
        if self.act is not None:
            x = self.act(x)
        return x, valid


def freeze_encoder_batchnorm(model: "PConvUNet", frozen: bool = True) -> "PConvUNet":
    """The paper's fine-tuning phase (section 4): the encoder's BatchNorm layers use their running
    statistics (eval mode, kept in eval by ``model.train()``) and their scale and shift stop training
    (``requires_grad=False``); the decoder's BatchNorm stays as it was. ``frozen=False`` undoes it.
    Returns ``model``. Train at ``lr`` 5e-5 afterwards (:class:`PConvTask` does both)."""
    if not isinstance(model, PConvUNet):
        raise TypeError(f"model must be a PConvUNet, got {type(model).__name__}")
    model.encoder_bn_frozen = bool(frozen)
    for block in model.encoder:
        if block.bn is not None:
            for p in block.bn.parameters():
                p.requires_grad_(not frozen)
    model.train(model.training)                      # puts the encoder BN in eval mode (or back)
    return model


class PConvUNet(nn.Module):
    """The PConv U-Net (table in the module docstring).

    ``forward(image, mask)``: ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` (the hole's values are never
    read: the first layer multiplies by the valid mask), ``mask`` ``(B or 1, 1, H, W)``, 1 = hole (the
    project's sense). Returns the raw prediction ``I_out`` ``(B, 3, H, W)`` on the ``[0, 1]`` scale,
    unclamped. Built on the CPU in float32 (``generator`` / ``seed`` make the initialisation reproducible).

    >>> net = PConvUNet(PConvConfig.tiny()).eval()
    >>> hole = torch.zeros(1, 1, 64, 64); hole[..., 16:48, 16:48] = 1
    >>> tuple(net(torch.rand(1, 3, 64, 64), hole).shape), [tuple(h.shape[-2:]) for h in net.encoder_holes(hole)][:2]
    ((1, 3, 64, 64), [(32, 32), (16, 16)])
    """

    model_name = "partial_conv"

    def __init__(self, config: PConvConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, PConvConfig)
        self.encoder_bn_frozen = False
        enc, kernels, bias = cfg.encoder_channels, cfg.encoder_kernels, cfg.bias

        # Encoder: PConv1..n, stride 2, BN except PConv1, ReLU                 (B, 3, S, S) -> (B, enc[-1], 2, 2)
        self.encoder = nn.ModuleList([
            PConvBlock(c_in, c_out, k, stride=2, batch_norm=i > 0, activation=nn.ReLU(), bias=bias)
            for i, (c_in, c_out, k) in enumerate(zip((3,) + enc[:-1], enc, kernels))])
        # Decoder: nearest x2, concat with the skip's features and masks, PConv 3x3, BN + LeakyReLU 0.2,
        # except the last layer (concat with the input image and mask; no BN, no activation, 3 channels)
        skips = (3,) + enc[:-1]                     # what each decoder layer is concatenated with, deepest first
        outs = enc[:-1][::-1] + (3,)                # PConv(n+1) .. PConv(2n) widths: the skip's, then RGB
        ins = (enc[-1],) + outs[:-1]
        self.decoder = nn.ModuleList()
        for i, (c_in, c_skip, c_out) in enumerate(zip(ins, skips[::-1], outs)):
            last = i == cfg.num_layers - 1
            self.decoder.append(PConvBlock(c_in + c_skip, c_out, cfg.decoder_kernel, stride=1, batch_norm=not last,
                                           activation=None if last else nn.LeakyReLU(cfg.leaky_slope), bias=bias))
        self._init(check_generator(generator, seed))

    def _init(self, generator: torch.Generator | None) -> None:
        """Kaiming-normal (fan in) convolution weights, zero biases; BN scale 1, shift 0 (the paper
        does not state an initialisation)."""
        for m in self.modules():
            if isinstance(m, PartialConv2d):
                fan_in = m.in_channels * m.kernel_size ** 2
                with torch.no_grad():
                    m.weight.normal_(0.0, math.sqrt(2.0 / fan_in), generator=generator)
                    if m.bias is not None:
                        m.bias.zero_()

    def train(self, mode: bool = True) -> "PConvUNet":
        """As ``nn.Module.train``, but with :func:`freeze_encoder_batchnorm` the encoder's BatchNorm
        layers stay in eval mode (the paper's fine-tuning phase)."""
        super().train(mode)
        if self.encoder_bn_frozen:
            for block in self.encoder:
                if block.bn is not None:
                    block.bn.eval()
        return self

    def _check(self, image: torch.Tensor, mask: torch.Tensor) -> None:
        check_image_mask(image, mask)
        m = self.config.multiple
        h, w = image.shape[-2:]
        if h % m or w % m:
            raise ValueError(f"image sides must be multiples of 2**num_layers = {m} for this model "
                             f"({self.config.num_layers} stride-2 layers), got {h}x{w}")

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        self._check(image, mask)
        b = image.shape[0]
        valid = (1.0 - mask.to(image.dtype)).expand(b, 3, -1, -1)     # (B, 3, S, S) the paper's M, C x H x W
        x = image * 2.0 - 1.0                                          # [0, 1] -> [-1, 1]
        feats, masks = [x], [valid]
        for block in self.encoder:                                     # PConv1..n
            x, valid = block(x, valid)
            feats.append(x)
            masks.append(valid)
        feats.pop(), masks.pop()                                       # the bottleneck is x itself
        for block in self.decoder:                                     # PConv(n+1)..2n
            x = F.interpolate(x, scale_factor=2, mode="nearest")       # (B, C, 2h, 2w)
            valid = F.interpolate(valid, scale_factor=2, mode="nearest")
            skip_x, skip_m = feats.pop(), masks.pop()
            x = torch.cat([x, skip_x.to(x.dtype)], dim=1)              # features ...
            valid = torch.cat([valid, skip_m.to(valid.dtype)], dim=1)  # ... and masks
            x, valid = block(x, valid)
        return (x + 1.0) * 0.5                                         # (B, 3, S, S) back to the [0, 1] scale

    @torch.no_grad()
    def encoder_holes(self, mask: torch.Tensor) -> list[torch.Tensor]:
        """What is still hole after each encoder layer: ``[(B, 1, S / 2, S / 2), ..., (B, 1, 2, 2)]``, 1 = hole
        (``1 - m'`` of eq. 2, layer by layer). Each stride-2 partial convolution marks a position known as
        soon as its window sees one known pixel, so the hole shrinks by about ``k // 2`` input pixels a side
        per layer and is gone long before the bottleneck unless it is huge. Depends on the mask alone."""
        check_mask(mask)
        b = mask.shape[0]
        valid = (1.0 - mask.float()).expand(b, 3, -1, -1)
        x = torch.zeros(b, 3, *mask.shape[-2:])
        holes = []
        for block in self.encoder:
            x, valid = block.conv(x, valid)                            # the partial convolution alone
            holes.append(1.0 - valid[:, :1])
        return holes

    def predict_full(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The composite ``mask * clamp(pred, 0, 1) + (1 - mask) * image``: known pixels unchanged,
        bit for bit. Gradients flow; wrap in ``torch.no_grad()`` for inference."""
        pred = self(image, mask).clamp(0.0, 1.0)
        mask = mask.to(dtype=image.dtype, device=image.device)
        return mask * pred + (1.0 - mask) * image


# --------------------------------------------------------------------------------------------
# why partial convolutions (notebook 08's first figure)
# --------------------------------------------------------------------------------------------
@torch.no_grad()
def fill_dependence(image: torch.Tensor, mask: torch.Tensor, depth: int = 4, width: int = 8, kernel_size: int = 3,
                    seed: int = 0) -> dict[str, list[torch.Tensor]]:
    """Why vanilla convolutions fail on holes: how much each layer's features depend on what the hole was
    filled with, for a plain convolution and for a partial convolution with **the same weights**.

    A stack of ``depth`` random ``kernel_size`` convolutions (``width`` channels, stride 1, zero padding,
    LeakyReLU 0.2, which is strictly increasing and so keeps every difference; weights drawn from ``seed``)
    runs twice on ``image`` ``(B, 3, H, W)`` (fed as ``2 x - 1``, as the networks take it): with the hole
    (``mask`` ``(B or 1, 1, H, W)``, 1 = hole) filled with 0 and with 1. A plain convolution mixes the fill
    into every window that touches the hole, so the features of *known* pixels near the border change with
    it, in a band that widens by ``kernel_size // 2`` pixels a layer; the network must learn to ignore a
    value that carries no information, and what it learns for one fill (mean colour, noise) is wrong for
    another. A partial convolution multiplies by the valid mask first: its features do not change at all.

    Returns ``{"plain": [...], "partial": [...], "hole": [...]}``, one ``(B, 1, H, W)`` per layer: the
    largest change over channels, ``max_c |f(fill 1) - f(fill 0)|``, and the partial convolution's hole
    after that layer (1 = still hole, eq. 2)."""
    check_image_mask(image, mask)
    for name, value in (("depth", depth), ("width", width), ("kernel_size", kernel_size)):
        if not is_int(value) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    b = image.shape[0]
    mask = mask.to(image.dtype).expand(b, 1, *image.shape[-2:])
    rng = torch.Generator().manual_seed(int(seed))
    layers = [PartialConv2d(3 if i == 0 else width, width, kernel_size) for i in range(depth)]
    for layer in layers:
        fan_in = layer.in_channels * kernel_size ** 2
        layer.weight.copy_(torch.randn(layer.weight.shape, generator=rng) * math.sqrt(2.0 / fan_in))
        layer.bias.copy_(torch.randn(layer.bias.shape, generator=rng) * 0.1)
    plain = partial = [(image * (1 - mask) + value * mask) * 2.0 - 1.0 for value in (0.0, 1.0)]
    valid = 1.0 - mask                                      # the mask update depends on the mask alone: one for both
    out: dict[str, list[torch.Tensor]] = {"plain": [], "partial": [], "hole": []}
    for layer in layers:
        plain = [F.leaky_relu(F.conv2d(x, layer.weight, layer.bias, padding=layer.padding), 0.2) for x in plain]
        (p0, new_valid), (p1, _) = (layer(x, valid) for x in partial)
        partial, valid = [F.leaky_relu(p0, 0.2), F.leaky_relu(p1, 0.2)], new_valid
        out["plain"].append((plain[1] - plain[0]).abs().amax(dim=1, keepdim=True))
        out["partial"].append((partial[1] - partial[0]).abs().amax(dim=1, keepdim=True))
        out["hole"].append(1.0 - valid[:, :1])
    return out


# --------------------------------------------------------------------------------------------
# training for the shared loop (inpaint_utils.train)
# --------------------------------------------------------------------------------------------
#: the hole-area range of :func:`irregular_masks`, PConvTask's training holes: 1-60 %, the paper's six test bins
HOLE_RATIO: tuple[float, float] = (0.01, 0.6)


def irregular_masks(ratio: float | tuple[float, float] = HOLE_RATIO) -> Callable:
    """A mask function ``(n, size, generator) -> (n, 1, size, size)`` of free-form brush strokes
    (:func:`inpaint_utils.masks.make_mask` ``"irregular"``), hole area drawn per sample from ``ratio``
    (default 1-60 %, the range of the paper's six test bins)."""
    def draw(n: int, size: int, generator: torch.Generator | None) -> torch.Tensor:
        return make_mask("irregular", size, ratio, batch=n, generator=generator)

    return draw


class PConvTask:
    """The PConv U-Net's training step, a :class:`inpaint_utils.train.Task` with one model
    ``{"generator"}`` and one optimizer (Adam).

    Per step: every sample draws its own hole from ``mask_fn(n, size, generator)`` (default
    :func:`irregular_masks`; any function returning ``(n, 1, size, size)`` 0/1 masks, 1 = hole, e.g.
    LaMa-style stroke sets), the network predicts ``I_out``, and the loss is the paper's
    :func:`inpaint_utils.losses.pconv_loss` (L1 terms, perceptual and style on the feature network ``vgg``, TV).

    **Two phases** (section 4): Adam at ``lr`` 2e-4 with BatchNorm everywhere, then from step
    ``finetune_step`` on (``None``: never; ``0``: a fine-tuning run from the start, e.g. after loading
    phase-1 weights) the encoder's BatchNorm frozen (:func:`freeze_encoder_batchnorm`) and the learning
    rate set to ``finetune_lr`` 5e-5. Both follow from the step alone, so a resumed run is in the right
    phase. ``vgg``, the fixed loss network (default: :func:`inpaint_utils.losses.feature_network` of the
    generator's ``config.loss_features``: VGG-16 ImageNet for the paper's config), is not a model of the task:
    it is neither trained nor checkpointed; the config names it, and a network whose ``network_name`` is another
    than the config's is refused (the checkpoint would misname what the weights were trained with).

    Several processes: masks are drawn for the global batch and sharded (``ctx.shard``); the loss
    terms are means over each process's batch (equal shares of the global batch), as the loop averages.
    """

    def __init__(self, generator: PConvUNet, vgg: nn.Module | None = None, lr: float = 2e-4,
                 finetune_lr: float = 5e-5, finetune_step: int | None = None,
                 betas: tuple[float, float] = (0.9, 0.999), mask_fn: Callable | None = None,
                 loss_weights: Mapping[str, float] | None = None):
        from ..losses import feature_network, pconv_loss_weights

        if not isinstance(generator, PConvUNet):
            raise TypeError(f"generator must be a PConvUNet, got {type(generator).__name__}")
        for name, value in (("lr", lr), ("finetune_lr", finetune_lr)):
            if isinstance(value, bool) or not isinstance(value, numbers.Real) or not value > 0:
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if finetune_step is not None and (not is_int(finetune_step) or finetune_step < 0):
            raise ValueError(f"finetune_step must be None or an int >= 0, got {finetune_step!r}")
        if mask_fn is not None and not callable(mask_fn):
            raise TypeError(f"mask_fn must be a callable (n, size, generator) -> (n, 1, size, size), got {mask_fn!r}")
        recorded = generator.config.loss_features
        named = getattr(vgg, "network_name", None)
        if named is not None and named != recorded:
            raise ValueError(f"the loss's feature network is {named!r} but the generator's config records "
                             f"loss_features={recorded!r}: build the config with loss_features={named!r}")
        self.generator = generator
        self.vgg = vgg if vgg is not None else feature_network(recorded, seed=0)
        self.lr, self.finetune_lr, self.finetune_step = float(lr), float(finetune_lr), finetune_step
        self.mask_fn = mask_fn if mask_fn is not None else irregular_masks()
        self.loss_weights = pconv_loss_weights(loss_weights)
        self.models, self.optimizers = adam_optimizers({"generator": generator}, {"generator": lr}, betas)

    def finetuning(self, step: int) -> bool:
        """Whether ``step`` (0-based) belongs to the fine-tuning phase."""
        return self.finetune_step is not None and step >= self.finetune_step

    def _set_phase(self, step: int) -> None:
        tune = self.finetuning(step)
        if self.generator.encoder_bn_frozen != tune:
            freeze_encoder_batchnorm(self.generator, tune)
        for group in self.optimizers["generator"].param_groups:
            group["lr"] = self.finetune_lr if tune else self.lr

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None, *,
                       mask_ratio: float | tuple[float, float] | None = None, **_: Any) -> TrainingMasks:
        """``n`` holes as a checkpoint's training drew them, from its ``config`` (a dict): :func:`irregular_masks`,
        free-form brush strokes covering ``mask_ratio`` of the image (default :data:`HOLE_RATIO`, 1-60 %:
        a checkpoint does not store the ratio a run trained with)."""
        s = PConvConfig.from_dict(config).image_size
        ratio = HOLE_RATIO if mask_ratio is None else mask_ratio
        return TrainingMasks("irregular", f"free-form brush strokes, hole ratio {ratio_text(ratio)}, at {s}x{s}",
                             irregular_masks(ratio)(n, s, generator))

    def masks(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """``n`` holes ``(n, 1, S, S)`` from ``mask_fn`` (checked: binary, the model's size)."""
        size = self.generator.config.image_size
        mask = self.mask_fn(n, size, generator)
        return check_mask(mask, size=(size, size), batch=n, name="mask_fn's mask")

    def train_step(self, batch: torch.Tensor, step: int, ctx) -> dict[str, float]:
        from ..losses import pconv_loss

        self._set_phase(step)
        mask = ctx.shard(self.masks(ctx.global_size(batch), ctx.generator)).to(batch.device)
        if mask.shape[0] != batch.shape[0]:
            raise ValueError(f"mask_fn gave {mask.shape[0]} masks for a batch of {batch.shape[0]}")
        self.vgg.to(batch.device)
        with ctx.autocast():
            pred = self.generator(batch, mask)
            total, parts = pconv_loss(pred.float(), batch, mask, self.vgg, self.loss_weights)
        update(ctx, total, "generator", "PConv loss")
        return {k: float(v) for k, v in parts.items()}

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "completed", "target"}`` for the loop's sample grids."""
        from ..viz import overlay_mask

        mask = self.masks(batch.shape[0], generator).to(batch.device)
        completed = self.generator.predict_full(batch, mask)
        return {"input": overlay_mask(batch, mask), "completed": completed, "target": batch}
