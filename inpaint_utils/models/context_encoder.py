"""Context Encoder: the generator and discriminator of Pathak et al. 2016, read off the authors' table.

Paper: D. Pathak, P. Kraehenbuehl, J. Donahue, T. Darrell, A. A. Efros, *Context Encoders: Feature
Learning by Inpainting*, CVPR 2016, arXiv:1604.07379. Used by notebooks ``02_context_encoder``
(the 128x128 centre-region model), ``03_cascade_ce_nsd`` (the 64x64 model of the cascade CE paper
and the latent code that NSD measures) and ``07_comparison``.

The layers follow the centre-region network of the authors' public Torch code (``train.lua``;
``train_random.lua`` for the full-image output), the DCGAN-style network behind the paper's
semantic-inpainting results (its section 5.1, "reconstruction + adversarial loss"); ``4x4`` means a
4x4 kernel, ``s2`` stride 2 with padding 1::

    generator, 128x128 input, centre output (Pathak et al. 2016 and the authors' public code)
    encoder   conv 4x4 s2    3 ->   64   LeakyReLU 0.2           128 -> 64
              conv 4x4 s2   64 ->   64   BN, LeakyReLU 0.2        64 -> 32
              conv 4x4 s2   64 ->  128   BN, LeakyReLU 0.2        32 -> 16
              conv 4x4 s2  128 ->  256   BN, LeakyReLU 0.2        16 ->  8
              conv 4x4 s2  256 ->  512   BN, LeakyReLU 0.2         8 ->  4
    bottleneck conv 4x4    512 -> 4000   (the code, 4000 x 1 x 1), then BN, LeakyReLU 0.2
    decoder   tconv 4x4   4000 ->  512   BN, ReLU                  1 ->  4
              tconv 4x4 s2 512 ->  256   BN, ReLU                  4 ->  8
              tconv 4x4 s2 256 ->  128   BN, ReLU                  8 -> 16
              tconv 4x4 s2 128 ->   64   BN, ReLU                 16 -> 32
              tconv 4x4 s2  64 ->    3   tanh                     32 -> 64   (the 64x64 centre)

    discriminator, on the 64x64 centre
              conv 4x4 s2    3 ->   64   LeakyReLU 0.2            64 -> 32
              conv 4x4 s2   64 ->  128   BN, LeakyReLU 0.2        32 -> 16
              conv 4x4 s2  128 ->  256   BN, LeakyReLU 0.2        16 ->  8
              conv 4x4 s2  256 ->  512   BN, LeakyReLU 0.2         8 ->  4
              conv 4x4     512 ->    1   (a logit; the authors end with a sigmoid, we use
                                          BCE-with-logits in :mod:`inpaint_utils.losses`)

Parameter counts (see ``tests/test_context_encoder.py`` for the arithmetic): generator 71,130,531
(71.1 M), of which 65,540,512 (65.5 M) sit in the two 4000-channel 4x4 bottleneck convolutions;
discriminator 2,766,529 (2.77 M). Biases: Torch's ``SpatialConvolution`` /
``SpatialFullConvolution`` carry a bias by default and the authors' code declares them, so
``bias=True`` (the default) reproduces the authors' layer list and counts exactly. The authors'
training closures, however, zero every convolution bias before each forward pass
(``m.bias:zero()``), so the network they actually trained behaves like ``bias=False`` (71,124,544
/ 2,765,568 parameters; still 71.1 M / 2.77 M). Before a BatchNorm a bias is redundant anyway; it
matters only in the first encoder / discriminator convolution and the two final layers.

Variants (all from one :class:`ContextEncoderConfig`):

* ``image_size=64`` (``hole_size=32``): the 64x64 CE of the cascade (the cascade CE paper, section 4.2), one
  layer fewer on each side (``train.lua`` with ``fineSize=64``).
* ``output="full"``: one more upsampling stage (``tconv 64 -> 64`` before the last layer) so the
  decoder returns the whole image, for arbitrary masks (the authors' ``train_random.lua``); the
  discriminator then sees the whole image.
* ``bottleneck="channelwise_fc"``: the paper's channel-wise fully connected layer (section 3.1, used
  with its AlexNet encoder): per channel a ``(h w) x (h w)`` linear map of the 4x4 grid (16x16
  weights per channel), then a stride-1 1x1 convolution to mix channels, in place of the 4000-d code.

Images cross every public boundary in ``[0, 1]``; the networks work in ``[-1, 1]`` (the authors'
range) and convert inside ``forward``. The input hole is filled with the authors' ImageNet mean
``(117, 104, 123) / 255`` by default (``config.fill``). With ``overlap=4`` (the authors'
``overlapPred``) only the central 56x56 of the 64x64 window is dropped from the input, the network
predicts the full 64x64 window and the 4-px ring gets 10x loss weight
(:func:`inpaint_utils.masks.overlap_weights`).
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..masks import (MASK_KINDS, Ratio, TrainingMasks, center_mask, erode_mask, make_input, make_mask, overlap_weights,
                     ratio_text)
from ..validation import check_fill_setting, check_generator, check_image, check_image_mask, is_int
from .common import ModelConfig, Rng, adam_optimizers, check_config, update

__all__ = [
    "AUTHORS_FILL",
    "ContextEncoderConfig",
    "ChannelwiseFC",
    "ContextEncoderGenerator",
    "ContextEncoderTask",
    "ContextEncoderDiscriminator",
    "count_parameters",
    "init_weights",
]

#: The authors' hole fill: the ImageNet mean (117, 104, 123) / 255 (``train.lua``), in [0, 1].
AUTHORS_FILL: tuple[float, float, float] = (117.0 / 255.0, 104.0 / 255.0, 123.0 / 255.0)

BOTTLENECKS = ("conv", "channelwise_fc")
OUTPUTS = ("center", "full")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------

def _steps(size: int, name: str) -> int:
    """Number of stride-2 stages between ``size`` and 4x4: ``size = 4 * 2**steps``, steps >= 1."""
    if not is_int(size) or size < 8 or size & (size - 1):
        raise ValueError(f"{name} must be a power of two >= 8 (4 * 2**k: each 4x4 stride-2 layer halves it "
                         f"down to 4x4), got {size!r}")
    return int(math.log2(size)) - 2


def _pyramid(n: int, base: int) -> tuple[int, ...]:
    """Widths of ``n`` stride-2 layers ending at 4x4: the authors' 64-128-256-512 (times ``base / 64``),
    with extra ``base``-wide layers in front for larger inputs and the first layers dropped for
    smaller ones: n=5 -> (64, 64, 128, 256, 512), n=4 -> (64, 128, 256, 512), n=3 -> (128, 256, 512)."""
    full = (base,) * max(0, n - 4) + (base, 2 * base, 4 * base, 8 * base)
    return full[len(full) - n:]


def _channels(value, name: str) -> tuple[int, ...]:
    if not isinstance(value, (tuple, list)) or not value or not all(is_int(c) and c >= 1 for c in value):
        raise ValueError(f"{name} must be a non-empty tuple of positive ints, got {value!r}")
    return tuple(int(c) for c in value)


@dataclass
class ContextEncoderConfig(ModelConfig):
    """Hyper-parameters of the Context Encoder; the defaults are the authors' 128x128 centre model.

    Channel tuples left at ``None`` are derived from the sizes and ``base_channels`` (64) the way the
    authors' code does; they are stored resolved, so :meth:`to_dict` is a complete description.

    Attributes:
        image_size: input side, a power of two >= 8 (128 in the paper; 64 for the cascade's first CE).
        hole_size: side of the predicted centre window for ``output="center"`` (default
            ``image_size // 2``: 64 for 128, 32 for 64). Must be ``None`` for ``output="full"``.
        output: ``"center"`` (the ``hole_size`` centre window) or ``"full"`` (the whole image).
        bottleneck: ``"conv"`` (4x4 convolution to a ``bottleneck_dim`` x 1 x 1 code) or
            ``"channelwise_fc"`` (the paper's channel-wise fully connected layer + 1x1 convolution).
        bottleneck_dim: size of the conv code (4000); unused by ``"channelwise_fc"``.
        base_channels: width of the first layer (64); the derived tuples scale with it.
        encoder_channels: widths of the stride-2 encoder convolutions, down to 4x4.
        decoder_channels: widths of the decoder stages at 4x4, 8x8, ...; the last transposed
            convolution then maps ``decoder_channels[-1]`` to 3 channels at the output size.
        discriminator_channels: widths of the discriminator's stride-2 convolutions.
        bias: convolutions carry biases (the authors' layers do; see the module docstring).
        leaky_slope: LeakyReLU slope (0.2).
        overlap: the authors' ``overlapPred`` (4): the input drops the centre window eroded by this
            many pixels; the ring keeps the true pixels and gets 10x loss weight. 0 drops the window.
        fill: the value of the dropped pixels in the input: a ``(r, g, b)`` in [0, 1] (default the
            authors' ImageNet mean), a float, or ``"mean"`` (each image's mean of its known pixels).
    """

    #: ``tiny()``: the same topology at 1/8 width with a 100-d code, for tests and smoke runs:
    #: 128 input -> encoder 8-8-16-32-64, decoder 64-32-16-8, discriminator 8-16-32-64.
    TINY: ClassVar[dict[str, Any]] = {"base_channels": 8, "bottleneck_dim": 100}

    image_size: int = 128
    hole_size: int | None = None
    output: str = "center"
    bottleneck: str = "conv"
    bottleneck_dim: int = 4000
    base_channels: int = 64
    encoder_channels: tuple[int, ...] | None = None
    decoder_channels: tuple[int, ...] | None = None
    discriminator_channels: tuple[int, ...] | None = None
    bias: bool = True
    leaky_slope: float = 0.2
    overlap: int = 4
    fill: Any = AUTHORS_FILL

    def __post_init__(self) -> None:
        if self.output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {self.output!r}")
        if self.bottleneck not in BOTTLENECKS:
            raise ValueError(f"bottleneck must be one of {BOTTLENECKS}, got {self.bottleneck!r}")
        n_enc = _steps(self.image_size, "image_size")
        if self.output == "center":
            if self.hole_size is None:
                self.hole_size = self.image_size // 2
            n_dec = _steps(self.hole_size, "hole_size")
            if self.hole_size > self.image_size:
                raise ValueError(f"hole_size {self.hole_size} must not exceed image_size {self.image_size}")
        else:
            if self.hole_size is not None:
                raise ValueError(f"hole_size applies to output='center' only (the full-image model fills any "
                                 f"mask), got hole_size={self.hole_size!r} with output='full'")
            n_dec = n_enc
        if not is_int(self.base_channels) or self.base_channels < 1:
            raise ValueError(f"base_channels must be a positive int, got {self.base_channels!r}")
        if not is_int(self.bottleneck_dim) or self.bottleneck_dim < 1:
            raise ValueError(f"bottleneck_dim must be a positive int, got {self.bottleneck_dim!r}")
        n_disc = _steps(self.discriminator_size, "discriminator input size")
        base = self.base_channels
        self.encoder_channels = _channels(self.encoder_channels or _pyramid(n_enc, base), "encoder_channels")
        self.decoder_channels = _channels(self.decoder_channels or _pyramid(n_dec, base)[::-1], "decoder_channels")
        self.discriminator_channels = _channels(self.discriminator_channels or _pyramid(n_disc, base),
                                                "discriminator_channels")
        for name, got, want, size in (("encoder_channels", self.encoder_channels, n_enc, self.image_size),
                                      ("decoder_channels", self.decoder_channels, n_dec, self.output_size),
                                      ("discriminator_channels", self.discriminator_channels, n_disc,
                                       self.discriminator_size)):
            if len(got) != want:
                raise ValueError(f"{name} needs {want} entries (one per stride-2 stage between {size}x{size} "
                                 f"and 4x4), got {len(got)}: {got}")
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {self.bias!r}")
        if not (isinstance(self.leaky_slope, numbers.Real) and 0 <= self.leaky_slope < 1):
            raise ValueError(f"leaky_slope must be in [0, 1), got {self.leaky_slope!r}")
        if not is_int(self.overlap) or self.overlap < 0:
            raise ValueError(f"overlap must be an int >= 0, got {self.overlap!r}")
        if self.output == "center" and 2 * self.overlap >= self.hole_size:
            raise ValueError(f"overlap {self.overlap} leaves no hole inside the {self.hole_size}x{self.hole_size} "
                             f"window (needs 2 * overlap < hole_size)")
        self.fill = check_fill_setting(self.fill)

    # ---- derived sizes
    @property
    def output_size(self) -> int:
        """Side of the generator's output: ``hole_size`` (centre) or ``image_size`` (full)."""
        return self.hole_size if self.output == "center" else self.image_size

    @property
    def discriminator_size(self) -> int:
        """Side of the discriminator's input: the centre window, or the whole image."""
        return self.hole_size if self.output == "center" else self.image_size

    @property
    def latent_dim(self) -> int:
        """D of :meth:`ContextEncoderGenerator.encode`: ``bottleneck_dim``, or ``C * 4 * 4`` for the
        channel-wise layer (C = ``decoder_channels[0]``)."""
        return self.bottleneck_dim if self.bottleneck == "conv" else self.decoder_channels[0] * 16




# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------
def count_parameters(module: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameters (BatchNorm running statistics are buffers and are not counted, as in
    Torch's ``getParameters()``)."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def init_weights(module: nn.Module, generator: torch.Generator | None = None) -> nn.Module:
    """The authors' (DCGAN) initialisation, in place: convolution and channel-wise weights
    N(0, 0.02), biases 0; BatchNorm weights N(1, 0.02), biases 0. Returns ``module``."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, ChannelwiseFC)):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.02, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()
        elif isinstance(m, nn.BatchNorm2d):
            with torch.no_grad():
                m.weight.normal_(1.0, 0.02, generator=generator)
                m.bias.zero_()
    return module



def _down(c_in: int, c_out: int, batch_norm: bool, slope: float, bias: bool) -> nn.Sequential:
    """conv 4x4 stride 2 (halves the side) [+ BN] + LeakyReLU."""
    layers = [nn.Conv2d(c_in, c_out, 4, stride=2, padding=1, bias=bias)]
    if batch_norm:
        layers.append(nn.BatchNorm2d(c_out))
    layers.append(nn.LeakyReLU(slope, inplace=True))
    return nn.Sequential(*layers)


def _up(c_in: int, c_out: int, bias: bool) -> nn.Sequential:
    """transposed conv 4x4 stride 2 (doubles the side) + BN + ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


class ChannelwiseFC(nn.Module):
    """The paper's channel-wise fully connected layer (section 3.1): each of the ``C`` feature maps
    of size ``h x w`` gets its own fully connected map of its ``h w`` positions, with no
    connection between channels: ``C (h w)^2`` weights instead of ``C^2 (h w)^2``.

    ``y[b, c, :] = W[c] @ x[b, c, :] + bias[c]`` for the flattened grids, computed for all channels
    at once with ``einsum`` (no loop over channels).
    """

    def __init__(self, channels: int, height: int, width: int, bias: bool = True):
        super().__init__()
        self.channels, self.height, self.width = channels, height, width
        hw = height * width
        self.weight = nn.Parameter(torch.empty(channels, hw, hw))                     # (C, hw_out, hw_in)
        self.bias = nn.Parameter(torch.zeros(channels, hw)) if bias else None          # (C, hw_out)
        nn.init.normal_(self.weight, 0.0, 0.02)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, c, h, w = x.shape
        if (c, h, w) != (self.channels, self.height, self.width):
            raise ValueError(f"ChannelwiseFC expects (B, {self.channels}, {self.height}, {self.width}), "
                             f"got {tuple(x.shape)}")
        flat = x.reshape(b, c, h * w)                                                  # (B, C, hw)
        out = torch.einsum("coi,bci->bco", self.weight, flat)                          # (B, C, hw)
        if self.bias is not None:
            out = out + self.bias
        return out.reshape(b, c, h, w)                                                 # (B, C, h, w)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, grid={self.height}x{self.width}, bias={self.bias is not None}"


# --------------------------------------------------------------------------------------------
# the generator
# --------------------------------------------------------------------------------------------
class ContextEncoderGenerator(nn.Module):
    """The Context Encoder's encoder-decoder ("netG" of the authors' code), table in the module docstring.

    ``forward(masked_input)`` takes the input image in ``[0, 1]`` (hole already filled, see
    :meth:`make_input`) and returns the prediction in ``[0, 1]``: the centre window
    ``(B, 3, hole_size, hole_size)`` or, for ``output="full"``, the whole image. Built on the CPU in
    float32 with the authors' initialisation (``generator`` / ``seed`` make it reproducible).

    >>> g = ContextEncoderGenerator(ContextEncoderConfig.tiny()).eval()
    >>> g(torch.rand(2, 3, 128, 128)).shape, g.encode(torch.rand(2, 3, 128, 128)).shape
    (torch.Size([2, 3, 64, 64]), torch.Size([2, 100]))
    """

    model_name = "context_encoder"

    def __init__(self, config: ContextEncoderConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, ContextEncoderConfig)
        enc, dec, slope, bias = cfg.encoder_channels, cfg.decoder_channels, cfg.leaky_slope, cfg.bias

        # Encoder: conv 4x4 s2 layers, BN on all but the first, LeakyReLU 0.2      (B, 3, S, S) -> (B, enc[-1], 4, 4)
        self.encoder = nn.Sequential(*[
            _down(c_in, c_out, batch_norm=i > 0, slope=slope, bias=bias)
            for i, (c_in, c_out) in enumerate(zip((3,) + enc[:-1], enc))])

        if cfg.bottleneck == "conv":
            # Bottleneck: conv 4x4 (no padding) to the code; the authors' netE ends here   -> (B, D, 1, 1)
            self.bottleneck = nn.Conv2d(enc[-1], cfg.bottleneck_dim, 4, bias=bias)
            # ... then BN + LeakyReLU on the code (first layers of the authors' netG after netE)
            self.code_act = nn.Sequential(nn.BatchNorm2d(cfg.bottleneck_dim), nn.LeakyReLU(slope, inplace=True))
            # Decoder input: tconv 4x4 from the 1x1 code back to a 4x4 grid, BN, ReLU      -> (B, dec[0], 4, 4)
            self.decoder_in = nn.Sequential(nn.ConvTranspose2d(cfg.bottleneck_dim, dec[0], 4, bias=bias),
                                            nn.BatchNorm2d(dec[0]), nn.ReLU(inplace=True))
        else:
            # Bottleneck: channel-wise fully connected layer on the 4x4 grid, then a stride-1 1x1
            # convolution that propagates information across channels                     -> (B, dec[0], 4, 4)
            self.bottleneck = nn.Sequential(ChannelwiseFC(enc[-1], 4, 4, bias=bias),
                                            nn.Conv2d(enc[-1], dec[0], 1, bias=bias))
            self.code_act = nn.Sequential(nn.BatchNorm2d(dec[0]), nn.LeakyReLU(slope, inplace=True))
            self.decoder_in = nn.Identity()

        # Decoder: tconv 4x4 s2 layers with BN + ReLU                     (B, dec[0], 4, 4) -> (B, dec[-1], out/2, out/2)
        self.decoder = nn.Sequential(*[_up(c_in, c_out, bias) for c_in, c_out in zip(dec[:-1], dec[1:])])
        # Output layer: tconv 4x4 s2 to RGB, tanh                                           -> (B, 3, out, out)
        self.to_rgb = nn.Sequential(nn.ConvTranspose2d(dec[-1], 3, 4, stride=2, padding=1, bias=bias), nn.Tanh())

        init_weights(self, check_generator(generator, seed))

    # ---- the network
    def _check_input(self, masked_input: torch.Tensor) -> None:
        check_image(masked_input, "masked_input")
        s = self.config.image_size
        if tuple(masked_input.shape[-2:]) != (s, s):
            raise ValueError(f"masked_input must be {s}x{s} for this model (config.image_size), got "
                             f"{tuple(masked_input.shape[-2:])}")

    def _code(self, masked_input: torch.Tensor) -> torch.Tensor:
        x = masked_input * 2.0 - 1.0                       # [0, 1] -> [-1, 1], the authors' range
        features = self.encoder(x)                         # (B, enc[-1], 4, 4)
        return self.bottleneck(features)                   # (B, D, 1, 1) or (B, C, 4, 4)

    def forward(self, masked_input: torch.Tensor) -> torch.Tensor:
        """``(B, 3, S, S)`` in ``[0, 1]`` -> prediction in ``[0, 1]``: ``(B, 3, hole, hole)`` or ``(B, 3, S, S)``."""
        self._check_input(masked_input)
        code = self._code(masked_input)
        h = self.decoder_in(self.code_act(code))           # (B, dec[0], 4, 4)
        h = self.decoder(h)                                # (B, dec[-1], out/2, out/2)
        out = self.to_rgb(h)                               # (B, 3, out, out) in [-1, 1]
        return (out + 1.0) * 0.5                           # back to [0, 1]

    def encode(self, masked_input: torch.Tensor) -> torch.Tensor:
        """The latent code ``(B, D)`` (the bottleneck's output before its BatchNorm, flattened): the
        "E(P, M)" that NSD measures (the cascade CE paper). Put the model in ``eval()`` first."""
        self._check_input(masked_input)
        return self._code(masked_input).flatten(1)         # (B, D)

    # ---- masks and inputs of the centre model
    def window_mask(self, batch: int = 1, device: str | torch.device | None = None) -> torch.Tensor:
        """The predicted centre window ``(batch, 1, S, S)`` (1 inside): where the loss weights live."""
        self._require_center("window_mask")
        return center_mask(self.config.image_size, self.config.hole_size, batch=batch, device=device)

    def input_hole_mask(self, batch: int = 1, device: str | torch.device | None = None) -> torch.Tensor:
        """The pixels dropped from the input ``(batch, 1, S, S)``: the window eroded by ``config.overlap``
        (the central 56x56 of the 64x64 window for the authors' model)."""
        return erode_mask(self.window_mask(batch, device), self.config.overlap)

    def crop_window(self, x: torch.Tensor) -> torch.Tensor:
        """The centre window of images or masks ``(B, C, S, S) -> (B, C, hole, hole)`` (the target of
        the centre prediction, or its loss weights)."""
        self._require_center("crop_window")
        s, h = self.config.image_size, self.config.hole_size
        if x.ndim != 4 or tuple(x.shape[-2:]) != (s, s):
            raise ValueError(f"crop_window expects (B, C, {s}, {s}), got {tuple(x.shape)}")
        top = (s - h) // 2
        return x[:, :, top:top + h, top:top + h]

    def _require_center(self, what: str) -> None:
        if self.config.output != "center":
            raise ValueError(f"{what} is defined for output='center' only; this model has output='full'")

    def make_input(self, image: torch.Tensor, mask: torch.Tensor, fill=None, mode: str = "hole") -> torch.Tensor:
        """The network input: ``image`` with the ``mask`` pixels (1 = hole) filled with ``fill``
        (default ``config.fill``) by :func:`inpaint_utils.masks.make_input` (``mode`` as there)."""
        return make_input(image, mask, mode=mode, fill=self.config.fill if fill is None else fill)

    def predict_full(self, image: torch.Tensor, mask: torch.Tensor, fill=None, mode: str = "hole") -> torch.Tensor:
        """Inpaint ``image`` ``(B, 3, S, S)`` where ``mask`` ``(B or 1, 1, S, S)`` is 1 and return the
        composite ``mask * pred + (1 - mask) * image``: known pixels are returned unchanged, bit for bit.

        The input is built with :meth:`make_input`; a centre prediction is pasted into the centre
        window (so every hole pixel must lie inside the window: ``input_hole_mask()`` for the
        authors' overlap-4 model, ``window_mask()`` for ``overlap=0``); a full output is used as is.
        Gradients flow; wrap in ``torch.no_grad()`` for inference.
        """
        check_image_mask(image, mask)
        s = self.config.image_size
        if tuple(image.shape[-2:]) != (s, s):
            raise ValueError(f"image must be {s}x{s} for this model (config.image_size), got {tuple(image.shape[-2:])}")
        mask = mask.to(dtype=image.dtype, device=image.device)
        pred = self(self.make_input(image, mask, fill=fill, mode=mode))            # (B, 3, out, out)
        if self.config.output == "center":
            window = center_mask(s, self.config.hole_size, device=image.device).to(image.dtype)
            outside = (mask * (1.0 - window)).flatten(1).sum(dim=1)
            if bool((outside > 0).any()):
                bad = torch.nonzero(outside > 0).flatten().tolist()
                raise ValueError(f"mask of sample(s) {bad[:5]} has hole pixels outside the central "
                                 f"{self.config.hole_size}x{self.config.hole_size} window that this centre model "
                                 f"predicts; use a mask inside the window or a model with output='full'")
            top = (s - self.config.hole_size) // 2
            pad = (top, s - top - self.config.hole_size) * 2                     # left, right, top, bottom
            pred = F.pad(pred, pad)                                              # (B, 3, S, S), zeros outside
        return mask * pred + (1.0 - mask) * image


# --------------------------------------------------------------------------------------------
# the discriminator
# --------------------------------------------------------------------------------------------
class ContextEncoderDiscriminator(nn.Module):
    """The adversarial discriminator ("netD"), on the centre window (or the whole image for
    ``output="full"``): ``(B, 3, s, s)`` in ``[0, 1]`` -> one logit per image ``(B,)``."""

    model_name = "context_encoder_discriminator"

    def __init__(self, config: ContextEncoderConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, ContextEncoderConfig)
        ch, slope, bias = cfg.discriminator_channels, cfg.leaky_slope, cfg.bias

        # conv 4x4 s2 layers, BN on all but the first, LeakyReLU 0.2          (B, 3, s, s) -> (B, ch[-1], 4, 4)
        self.features = nn.Sequential(*[
            _down(c_in, c_out, batch_norm=i > 0, slope=slope, bias=bias)
            for i, (c_in, c_out) in enumerate(zip((3,) + ch[:-1], ch))])
        # conv 4x4 (no padding) to one logit; no sigmoid                                        -> (B, 1, 1, 1)
        self.classifier = nn.Conv2d(ch[-1], 1, 4, bias=bias)

        init_weights(self, check_generator(generator, seed))

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_image(image, "image")
        s = self.config.discriminator_size
        if tuple(image.shape[-2:]) != (s, s):
            raise ValueError(f"the discriminator takes {s}x{s} images (config.discriminator_size), got "
                             f"{tuple(image.shape[-2:])}")
        x = image * 2.0 - 1.0                              # [0, 1] -> [-1, 1]
        return self.classifier(self.features(x)).flatten()   # (B,)


# --------------------------------------------------------------------------------------------
# training: one step of Nanavati & Patel's eq. (1)-(4) for the shared loop (inpaint_utils.train)
# --------------------------------------------------------------------------------------------
class ContextEncoderTask:
    """The Context Encoder's training step, a :class:`inpaint_utils.train.Task`.

    Per step (the authors' ``train.lua``): build the input (hole filled with ``config.fill``), predict;
    update the discriminator with Nanavati & Patel's eq. (4) on real vs predicted (detached); update the
    generator with eq. (1): ``lambda_rec * L_rec + lambda_adv * L_adv``, ``L_rec`` the masked L2.
    The 10x ring weight (``overlapL2Weight``) is the authors' and acts only where they put it: with
    ``overlap=4`` (``overlapPred``) the 4-px ring of the predicted 64x64 window, which lies over
    *known* pixels, is weighted 10x (:func:`inpaint_utils.masks.overlap_weights`); with ``overlap=0``
    and for full-image models the L2 is plain over the hole, as Nanavati & Patel state (no source weights a
    ring inside the dropped hole). ``loss_overlap`` sets the ring's width by hand (``None``: the above).

    * ``output="center"``: the hole is the model's input hole (``input_hole_mask``: the 64x64 centre
      for ``overlap=0``, its central 56x56 for the authors' ``overlap=4``); prediction, target, loss
      and discriminator live on the centre window.
    * ``output="full"``: each sample draws its own mask (``mask_kind``, ``mask_ratio``) from the loop's
      generator; the loss is on the hole; the discriminator sees the composite.

    Several processes (:mod:`inpaint_utils.distributed`): masks are drawn for the global batch
    (``ctx.shard``) and ``L_rec`` is weighted by each process's share of the hole area
    (``ctx.mean_weight``), so the run follows the one-process one.

    ``discriminator=None`` trains the reconstruction term alone (an "L2-only" CE). Optimisers: Adam
    with ``betas=(0.5, 0.999)``, generator ``lr`` and discriminator ``lr * d_lr_ratio``: the authors'
    code gives the generator a 10x larger rate (``d_lr_ratio=0.1``); Nanavati & Patel state one rate, 2e-4.
    """

    def __init__(self, generator: ContextEncoderGenerator, discriminator: ContextEncoderDiscriminator | None = None,
                 lr: float = 2e-4, d_lr_ratio: float = 0.1, betas: tuple[float, float] = (0.5, 0.999),
                 lambda_rec: float = 0.999, lambda_adv: float = 0.001, loss_overlap: int | None = None,
                 overlap_weight: float = 10.0, mask_kind: str = "blocks", mask_ratio: float | tuple = 0.25,
                 input_mode: str = "hole"):
        if discriminator is not None and discriminator.config.discriminator_size != generator.config.discriminator_size:
            raise ValueError("generator and discriminator configs disagree on the discriminator's input size")
        self.generator, self.discriminator = generator, discriminator
        self.lambda_rec, self.lambda_adv = lambda_rec, lambda_adv
        self.loss_overlap, self.overlap_weight = loss_overlap, overlap_weight
        self.mask_kind, self.mask_ratio, self.input_mode = mask_kind, mask_ratio, input_mode
        self.models, self.optimizers = adam_optimizers({"generator": generator, "discriminator": discriminator},
                                                       {"generator": lr, "discriminator": lr * d_lr_ratio}, betas)

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None, *,
                       mask_kind: str | None = None, mask_ratio: Ratio | None = None) -> TrainingMasks:
        """``n`` holes as a checkpoint's training drew them, from its ``config`` (a dict): with a centre
        output, the centre hole the model drops (the window eroded by its ``overlap``,
        :meth:`ContextEncoderGenerator.input_hole_mask`); with a full-image output, ``mask_kind`` at
        ``mask_ratio``, which a checkpoint does not store (notebook 03's cascade: ``"blocks"``, (0.05, 0.25))."""
        return _ce_training_masks(ContextEncoderConfig.from_dict(config), "ce", n, generator, mask_kind, mask_ratio)

    def masks(self, batch: torch.Tensor, generator: torch.Generator | None = None,
              ctx=None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(hole, weights)`` for a batch: the input hole ``(B, 1, S, S)`` and the per-pixel loss
        weights on the prediction (``(B, 1, hole, hole)`` for the centre model, full size otherwise).
        With the training loop's ``ctx``, random masks are drawn for the global batch and this process
        keeps its rows (several processes then draw what one process would; in one process no change)."""
        g, b, device = self.generator, batch.shape[0], batch.device
        if g.config.output == "center":
            window = g.window_mask(b, device)
            hole = erode_mask(window, g.config.overlap) if g.config.overlap else window
            # the ring is the part of the window the input keeps (overlap px wide): 0 = plain L2
            ring = g.config.overlap if self.loss_overlap is None else self.loss_overlap
            weights = g.crop_window(overlap_weights(window, ring, self.overlap_weight))
        else:
            n = ctx.global_size(batch) if ctx is not None else b
            hole = make_mask(self.mask_kind, g.config.image_size, self.mask_ratio, batch=n, generator=generator)
            hole = (ctx.shard(hole) if ctx is not None else hole).to(device)
            weights = overlap_weights(hole, self.loss_overlap or 0, self.overlap_weight)  # 0: plain L2 on the hole
        return hole, weights

    def _predict(self, batch: torch.Tensor, hole: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(pred, target, d_input)``: the prediction, what it is compared with, and what the
        discriminator judges (the centre window, or the composite for the full model)."""
        g = self.generator
        pred = g(g.make_input(batch, hole, mode=self.input_mode))
        if g.config.output == "center":
            return pred, g.crop_window(batch), pred
        return pred, batch, hole * pred + (1 - hole) * batch

    def train_step(self, batch: torch.Tensor, step: int, ctx) -> dict[str, float]:
        from ..losses import ce_generator_loss, discriminator_bce

        hole, weights = self.masks(batch, ctx.generator, ctx)
        if ctx.world_size > 1:
            # L_rec is a mean over the hole pixels of the batch, and holes differ in area between processes:
            # weight this process's mean by its share of the global hole area, so that the averaged
            # gradient (and the logged mean) is that of the mean over the global batch
            weights = weights * ctx.mean_weight((weights > 0).sum())
        with ctx.autocast():
            pred, target, fake = self._predict(batch, hole)
        logs = {}
        d = self.discriminator
        if d is not None:                                          # eq. (4): D on real vs fake
            with ctx.autocast():
                d_loss = discriminator_bce(d(target if self.generator.config.output == "center" else batch),
                                           d(fake.detach()))
            update(ctx, d_loss, "discriminator")
            logs["d"] = d_loss.detach()
        with ctx.autocast():                                       # eq. (1)-(3): G
            d_fake = d(fake) if d is not None else None
            total, parts = ce_generator_loss(pred.float(), target.float(), weights, d_fake,
                                             lambda_rec=self.lambda_rec, lambda_adv=self.lambda_adv)
        update(ctx, total, "generator")
        logs.update({"g_total": parts["total"], "rec": parts["rec"], "adv": parts["adv"]})
        return {k: float(v) for k, v in logs.items()}

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "completed", "target"}`` for the loop's sample grids."""
        from ..viz import overlay_mask

        hole, _ = self.masks(batch, generator)
        completed = self.generator.predict_full(batch, hole, mode=self.input_mode)
        return {"input": overlay_mask(batch, hole), "completed": completed, "target": batch}


def _ce_training_masks(ce: ContextEncoderConfig, method: str, n: int, generator: torch.Generator | None,
                       mask_kind: str | None, mask_ratio: Ratio | None) -> TrainingMasks:
    """:meth:`ContextEncoderTask.training_masks` of a CE config (the plain CE's, or a cascade's 128 CE)."""
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive int, got {n!r}")
    s = ce.image_size
    if ce.output == "center":
        masks = erode_mask(center_mask(s, ce.hole_size, batch=n), ce.overlap)       # the model's input hole
        side = ce.hole_size - 2 * ce.overlap
        return TrainingMasks("center", f"the centre {side}x{side} hole of {s}x{s} (its only hole)", masks)
    if mask_kind is None or mask_ratio is None:
        raise ValueError(f"a full-image {method} checkpoint does not say which masks it trained on: pass "
                         f"mask_kind and mask_ratio (notebook 03's cascade: 'blocks', (0.05, 0.25))")
    if mask_kind not in MASK_KINDS:
        raise ValueError(f"unknown mask kind {mask_kind!r}; choose one of {MASK_KINDS}")
    masks = make_mask(mask_kind, s, mask_ratio, batch=n, generator=generator)
    return TrainingMasks(mask_kind, f"{mask_kind}, hole ratio {ratio_text(mask_ratio)}, at {s}x{s}", masks)
