"""GLCIC: the completion network and the global + local context discriminators of Iizuka et al. 2017.

Paper: S. Iizuka, E. Simo-Serra, H. Ishikawa, *Globally and Locally Consistent Image Completion*, ACM
Transactions on Graphics 36(4) (SIGGRAPH 2017), doi:10.1145/3072959.3073659. The layers follow the
paper's Table 1 (completion network) and Table 2 (discriminators), the training schedule its
Algorithm 1 and training details, the post-processing the authors' released ``inpaint.lua``
(``--postproc``). Used by notebooks ``04_glcic`` and ``07_comparison``. Biradar et al. (the replication
report) compares a "GLCIC" with Telea, Navier-Stokes and contextual attention in its Table II.

Completion network (paper Table 1; ``k``x``k`` kernel, ``d`` dilation, ``s`` stride, ``s1/2`` a 4x4
transposed convolution that doubles the side). Every layer but the last is conv -> BatchNorm -> ReLU
(the paper's order; the popular PyTorch port applies BN *after* the ReLU). Output shapes for the
paper's 256x256 input, widths for ``base_channels = 64``::

    input   RGB (hole = mean pixel) + mask                      4 x 256 x 256
    conv     5x5  d1  s1    64                                 64 x 256 x 256
    conv     3x3  d1  s2   128                                128 x 128 x 128
    conv     3x3  d1  s1   128                                128 x 128 x 128
    conv     3x3  d1  s2   256                                256 x  64 x  64
    conv     3x3  d1  s1   256   (x2)                         256 x  64 x  64
    dilated  3x3  d2  s1   256                                256 x  64 x  64
    dilated  3x3  d4  s1   256                                256 x  64 x  64
    dilated  3x3  d8  s1   256                                256 x  64 x  64
    dilated  3x3 d16  s1   256                                256 x  64 x  64
    conv     3x3  d1  s1   256   (x2)                         256 x  64 x  64
    deconv   4x4  d1 s1/2  128                                128 x 128 x 128
    conv     3x3  d1  s1   128                                128 x 128 x 128
    deconv   4x4  d1 s1/2   64                                 64 x 256 x 256
    conv     3x3  d1  s1    32                                 32 x 256 x 256
    output   3x3  d1  s1     3   sigmoid                        3 x 256 x 256

Discriminators (paper Table 2; every convolution 5x5 stride 2, conv -> BN -> ReLU)::

    global, on the whole 256x256 image       local, on a 128x128 patch containing the hole
    conv 5x5 s2   64     64 x 128 x 128      conv 5x5 s2   64     64 x 64 x 64
    conv 5x5 s2  128    128 x  64 x  64      conv 5x5 s2  128    128 x 32 x 32
    conv 5x5 s2  256    256 x  32 x  32      conv 5x5 s2  256    256 x 16 x 16
    conv 5x5 s2  512    512 x  16 x  16      conv 5x5 s2  512    512 x  8 x  8
    conv 5x5 s2  512    512 x   8 x   8      conv 5x5 s2  512    512 x  4 x  4
    conv 5x5 s2  512    512 x   4 x   4      FC 1024 (ReLU)      1024
    FC 1024 (ReLU)     1024
                     concatenation 2048 -> FC 1 (one logit per image; the paper's sigmoid lives in
                     the BCE-with-logits loss of :mod:`inpaint_utils.losses`)

Parameter counts (``tests/test_glcic.py`` recomputes them from the tables by a separate formula):
completion network 6,072,131 (6.07 M, as the PyTorch port's: same layers and widths with a 4-channel
input; putting BN after the ReLU does not change the count); global discriminator 25,808,384, local
discriminator 19,253,248, concatenation layer 2,049: the context discriminator has 45,063,681
(45.1 M, 16.8 M of them in the two FC 1024 layers). Convolutions carry biases, as in Torch's defaults
(the authors' framework) and in the port; before a BatchNorm a bias is redundant (``bias=False``
removes 2,979 parameters from the completion network: 6,069,152, still 6.07 M).

Choices the paper leaves open (our defaults; each can be changed):

* **Input range.** The authors' ``inpaint.lua`` subtracts the dataset mean from the image and sets
  the hole to 0, i.e. the hole holds the mean pixel; we do the same (``config.fill`` is the mean
  colour; the notebook passes the training set's). Images cross every public boundary in ``[0, 1]``.
  The discriminators see images centred the same way.
* **Initialisation.** The paper does not say; convolutions N(0, 0.02), BatchNorm scales N(1, 0.02),
  biases 0 (:func:`init_weights`, the course's DCGAN convention), fully connected layers N(0, 0.02).
* **The local patch.** The paper's local discriminator sees a 128x128 patch centred around the
  completed region; a hole near the border needs the patch shifted back into the image.
  ``placement="center"`` (default, the paper) centres it on the hole, then clamps it into the image;
  ``placement="random"`` (an experiment) picks a uniformly random patch position that contains the
  whole hole and lies inside the image.
* **The joint phase's discriminator loss** is scaled by ``alpha`` as in the paper's objective
  ``min_C max_D E[L(x, M_c) + alpha log D(x, M_d) + alpha log(1 - D(C(x, M_c), M_c))]`` (and its ports);
  in the discriminator-only phase it is the plain BCE.
* **The generator's adversarial term.** The paper writes the minimax ``log(1 - D(C(x)))``; we use the
  non-saturating ``-log D(C(x))`` (:func:`inpaint_utils.losses.generator_adversarial_bce`), the usual
  practice, as for the Context Encoder.
"""
from __future__ import annotations

import numbers
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any, ClassVar, Mapping, NamedTuple

import torch
import torch.nn as nn

from ..masks import TrainingMasks, make_input
from ..validation import check_generator, check_image, check_image_mask, is_int
from .common import ModelConfig, Rng, check_config, update
from .context_encoder import init_weights

__all__ = [
    "IMAGENET_MEAN",
    "GLCICConfig",
    "CompletionNetwork",
    "GlobalDiscriminator",
    "LocalDiscriminator",
    "GLCICDiscriminator",
    "Holes",
    "random_holes",
    "local_patch_corners",
    "crop_local",
    "GLCICTask",
    "PHASES",
]

#: Default hole fill: the ImageNet mean pixel in [0, 1]. The paper fills the hole with the mean pixel
#: value of its training data; the notebook passes its own training set's mean.
IMAGENET_MEAN: tuple[float, float, float] = (0.485, 0.456, 0.406)
#: The paper's hole sides (in a 256x256 training image): each side uniformly in [96, 128] px.
PAPER_HOLE_RANGE = (96, 128)
PLACEMENTS = ("random", "center")
OPTIMIZERS = ("adadelta", "adam")
#: The three training phases of Algorithm 1, in order.
PHASES = ("completion", "discriminator", "joint")

GLOBAL_STAGES = 6   # stride-2 convolutions of the global discriminator (Table 2)
LOCAL_STAGES = 5    # ... of the local discriminator


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
@dataclass
class GLCICConfig(ModelConfig):
    """Hyper-parameters of GLCIC; the defaults are the paper's (256x256 images, 128x128 local patch).

    The layer list is fixed (the paper's tables); sizes and widths scale, so a smoke run trains a
    narrower, smaller network through the same code.

    Attributes:
        image_size: training image side (256). A multiple of 64: the global discriminator halves it six
            times (and the completion network twice); the completion network itself is fully
            convolutional and completes any image whose sides are multiples of 4.
        local_size: side of the local discriminator's patch (default ``image_size // 2``: 128); a
            multiple of 32 (five halvings), at most ``image_size``.
        hole_min, hole_max: range of each hole side in training, in pixels (default the paper's
            [96, 128] scaled by ``image_size / 256``: [48, 64] at 128); ``hole_max <= local_size``
            so the local patch can contain the hole.
        base_channels: the width multiplier: 64 in the paper. Completion widths are
            ``base * (1, 2, 2, 4, ..., 2, 1, 1/2)`` (64-128-256-...-32), discriminator widths
            ``base * (1, 2, 4, 8, 8, 8)``, the FC layers ``16 * base`` (1024). Must be even.
        fill: the hole's fill, the mean pixel ``(r, g, b)`` in ``[0, 1]`` (default the ImageNet mean).
        bias: convolutions and FC layers carry biases (Torch's default; see the module docstring).
    """

    #: ``tiny()``: the same layers at 1/8 width on 64x64 images (32x32 local patch, 24-32 px holes), for tests.
    TINY: ClassVar[dict[str, Any]] = {"image_size": 64, "base_channels": 8}

    image_size: int = 256
    local_size: int | None = None
    hole_min: int | None = None
    hole_max: int | None = None
    base_channels: int = 64
    fill: tuple[float, float, float] = IMAGENET_MEAN
    bias: bool = True

    def __post_init__(self) -> None:
        if not is_int(self.image_size) or self.image_size < 64 or self.image_size % 64:
            raise ValueError(f"image_size must be a positive multiple of 64 (the global discriminator halves it "
                             f"{GLOBAL_STAGES} times; the completion network needs a multiple of 4), "
                             f"got {self.image_size!r}")
        if self.local_size is None:
            self.local_size = self.image_size // 2
        if not is_int(self.local_size) or self.local_size < 32 or self.local_size % 32:
            raise ValueError(f"local_size must be a positive multiple of 32 (the local discriminator halves it "
                             f"{LOCAL_STAGES} times), got {self.local_size!r}")
        if self.local_size > self.image_size:
            raise ValueError(f"local_size {self.local_size} must not exceed image_size {self.image_size}")
        scale = self.image_size / 256
        if self.hole_min is None:
            self.hole_min = int(round(PAPER_HOLE_RANGE[0] * scale))
        if self.hole_max is None:
            self.hole_max = int(round(PAPER_HOLE_RANGE[1] * scale))
        for name in ("hole_min", "hole_max"):
            value = getattr(self, name)
            if not is_int(value) or value < 1:
                raise ValueError(f"{name} must be a positive int (pixels), got {value!r}")
        if self.hole_min > self.hole_max:
            raise ValueError(f"hole_min {self.hole_min} must not exceed hole_max {self.hole_max}")
        if self.hole_max > self.local_size:
            raise ValueError(f"hole_max {self.hole_max} must not exceed local_size {self.local_size}: the local "
                             f"discriminator's patch has to contain the whole hole")
        if not is_int(self.base_channels) or self.base_channels < 2 or self.base_channels % 2:
            raise ValueError(f"base_channels must be an even int >= 2 (the last hidden layer has base / 2 "
                             f"channels; 64 in the paper), got {self.base_channels!r}")
        if isinstance(self.fill, list):
            self.fill = tuple(self.fill)
        if (not isinstance(self.fill, tuple) or len(self.fill) != 3
                or not all(isinstance(v, numbers.Real) and not isinstance(v, bool) and 0 <= v <= 1 for v in self.fill)):
            raise ValueError(f"fill must be the mean pixel as an (r, g, b) tuple with values in [0, 1], "
                             f"got {self.fill!r}")
        self.fill = tuple(float(v) for v in self.fill)
        if not isinstance(self.bias, bool):
            raise TypeError(f"bias must be a bool, got {self.bias!r}")


    @property
    def hole_range(self) -> tuple[int, int]:
        """``(hole_min, hole_max)``: each hole side is drawn uniformly from this range (inclusive)."""
        return int(self.hole_min), int(self.hole_max)




# --------------------------------------------------------------------------------------------
# building blocks
# --------------------------------------------------------------------------------------------
def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int = 1, dilation: int = 1,
                  bias: bool = True) -> nn.Sequential:
    """conv (``same`` padding for stride 1; halves the side for stride 2) -> BatchNorm -> ReLU."""
    padding = dilation * (kernel - 1) // 2
    return nn.Sequential(nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=padding, dilation=dilation, bias=bias),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _deconv_bn_relu(c_in: int, c_out: int, bias: bool = True) -> nn.Sequential:
    """deconv 4x4, stride 1/2 (a transposed convolution that doubles the side) -> BatchNorm -> ReLU."""
    return nn.Sequential(nn.ConvTranspose2d(c_in, c_out, 4, stride=2, padding=1, bias=bias),
                         nn.BatchNorm2d(c_out), nn.ReLU(inplace=True))


def _init(module: nn.Module, generator: torch.Generator | None) -> None:
    """Convolutions and BatchNorm as :func:`init_weights`; fully connected layers N(0, 0.02), bias 0."""
    init_weights(module, generator)
    for m in module.modules():
        if isinstance(m, nn.Linear):
            with torch.no_grad():
                m.weight.normal_(0.0, 0.02, generator=generator)
                if m.bias is not None:
                    m.bias.zero_()


def _centre(image: torch.Tensor, fill: tuple[float, float, float]) -> torch.Tensor:
    """``image - mean pixel`` (the authors' input normalisation; the hole becomes 0)."""
    return image - torch.tensor(fill, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)


def _layer_rows(layers: nn.Sequential, input_shape: tuple[int, ...]) -> list[dict[str, Any]]:
    """One row per block of ``layers`` (modules on the ``meta`` device: no memory, no arithmetic): type,
    kernel, dilation, stride, outputs and output shape, measured by running them on a ``meta`` tensor."""
    x = torch.empty(*input_shape, device="meta")
    rows = []
    for name, block in layers.named_children():
        x = block(x)
        layer = block[0] if isinstance(block, nn.Sequential) else block
        if isinstance(layer, nn.ConvTranspose2d):
            kind, stride = "deconv", f"1/{layer.stride[0]}"
        elif isinstance(layer, nn.Conv2d):
            kind = "dilated" if layer.dilation[0] > 1 else "conv"
            stride = str(layer.stride[0])
        else:
            kind, stride = "FC", "-"
        kernel = f"{layer.kernel_size[0]}x{layer.kernel_size[1]}" if hasattr(layer, "kernel_size") else "-"
        rows.append({"layer": name, "type": kind, "kernel": kernel,
                     "dilation": layer.dilation[0] if hasattr(layer, "dilation") else "-", "stride": stride,
                     "outputs": int(x.shape[1]), "shape": " x ".join(str(int(s)) for s in x.shape[1:])})
    return rows


# --------------------------------------------------------------------------------------------
# the completion network (Table 1)
# --------------------------------------------------------------------------------------------
class CompletionNetwork(nn.Module):
    """The completion network ``C(x, M)`` of Table 1 (see the module docstring).

    ``forward(image, mask)`` takes images ``(B, 3, H, W)`` in ``[0, 1]`` (H, W multiples of 4; what is
    in the hole is ignored: it is replaced by ``config.fill`` first, so an already filled
    :meth:`make_input` works as well) and a mask ``(B or 1, 1, H, W)``, 1 = hole, and returns the
    prediction of every pixel ``(B, 3, H, W)`` in ``[0, 1]`` (sigmoid). :meth:`predict_full` returns
    the composite. Built on the CPU in float32 (``generator`` / ``seed`` make the weights reproducible).

    >>> net = CompletionNetwork(GLCICConfig.tiny()).eval()
    >>> net(torch.rand(2, 3, 64, 64), torch.ones(1, 1, 64, 64)).shape
    torch.Size([2, 3, 64, 64])
    """

    model_name = "glcic"

    def __init__(self, config: GLCICConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, GLCICConfig)
        w, b = cfg.base_channels, cfg.bias
        self.layers = nn.Sequential(OrderedDict([
            # input: RGB - mean (hole = 0) and the mask                           (B, 4, H, W)
            ("conv1", _conv_bn_relu(4, w, 5, bias=b)),                             # (B, 64, H, W)
            ("conv2", _conv_bn_relu(w, 2 * w, 3, stride=2, bias=b)),               # (B, 128, H/2, W/2)
            ("conv3", _conv_bn_relu(2 * w, 2 * w, 3, bias=b)),                     # (B, 128, H/2, W/2)
            ("conv4", _conv_bn_relu(2 * w, 4 * w, 3, stride=2, bias=b)),           # (B, 256, H/4, W/4)
            ("conv5", _conv_bn_relu(4 * w, 4 * w, 3, bias=b)),                     # (B, 256, H/4, W/4)
            ("conv6", _conv_bn_relu(4 * w, 4 * w, 3, bias=b)),                     # (B, 256, H/4, W/4)
            # dilated convolutions: the receptive field widens to ~300 px without lowering the resolution
            ("dilated7", _conv_bn_relu(4 * w, 4 * w, 3, dilation=2, bias=b)),      # (B, 256, H/4, W/4)
            ("dilated8", _conv_bn_relu(4 * w, 4 * w, 3, dilation=4, bias=b)),      # (B, 256, H/4, W/4)
            ("dilated9", _conv_bn_relu(4 * w, 4 * w, 3, dilation=8, bias=b)),      # (B, 256, H/4, W/4)
            ("dilated10", _conv_bn_relu(4 * w, 4 * w, 3, dilation=16, bias=b)),    # (B, 256, H/4, W/4)
            ("conv11", _conv_bn_relu(4 * w, 4 * w, 3, bias=b)),                    # (B, 256, H/4, W/4)
            ("conv12", _conv_bn_relu(4 * w, 4 * w, 3, bias=b)),                    # (B, 256, H/4, W/4)
            ("deconv13", _deconv_bn_relu(4 * w, 2 * w, bias=b)),                  # (B, 128, H/2, W/2)
            ("conv14", _conv_bn_relu(2 * w, 2 * w, 3, bias=b)),                    # (B, 128, H/2, W/2)
            ("deconv15", _deconv_bn_relu(2 * w, w, bias=b)),                       # (B, 64, H, W)
            ("conv16", _conv_bn_relu(w, w // 2, 3, bias=b)),                       # (B, 32, H, W)
            # output: conv 3x3 to RGB, sigmoid (no BatchNorm)
            ("output", nn.Sequential(nn.Conv2d(w // 2, 3, 3, padding=1, bias=b), nn.Sigmoid())),  # (B, 3, H, W)
        ]))
        _init(self, check_generator(generator, seed))

    # ---- inputs
    def _check(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_image_mask(image, mask)
        h, w = image.shape[-2:]
        if h % 4 or w % 4:
            raise ValueError(f"image sides must be multiples of 4 (two stride-2 layers down, two up), got {h}x{w}")
        return mask.to(dtype=image.dtype, device=image.device)

    def make_input(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The image with its hole filled with the mean pixel ``config.fill`` ``(B, 3, H, W)`` in ``[0, 1]``
        (:func:`inpaint_utils.masks.make_input`, mode ``"hole"``): what the network is given, shown."""
        return make_input(image, mask, mode="hole", fill=self.config.fill)

    def forward(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """``(B, 3, H, W)`` images and ``(B or 1, 1, H, W)`` masks -> the prediction ``(B, 3, H, W)`` in ``[0, 1]``."""
        mask = self._check(image, mask)
        x = _centre(self.make_input(image, mask), self.config.fill)          # (B, 3, H, W), hole = 0
        x = torch.cat([x, mask.expand(image.shape[0], 1, *image.shape[-2:])], dim=1)   # (B, 4, H, W)
        return self.layers(x)                                                 # (B, 3, H, W) in [0, 1]

    def predict_full(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The composite ``mask * C(image, mask) + (1 - mask) * image``: known pixels returned unchanged,
        bit for bit. Gradients flow; wrap in ``torch.no_grad()`` (and call ``eval()``) for inference."""
        mask = self._check(image, mask)
        return mask * self(image, mask) + (1.0 - mask) * image

    def layer_table(self, size: int | None = None) -> list[dict[str, Any]]:
        """Table 1 as rows (type, kernel, dilation, stride, outputs, output shape) for a ``size`` x ``size``
        input (default ``config.image_size``), measured on a ``meta`` twin of the network (instant)."""
        size = self.config.image_size if size is None else size
        if not is_int(size) or size < 4 or size % 4:
            raise ValueError(f"size must be a positive multiple of 4, got {size!r}")
        with torch.device("meta"):
            layers = CompletionNetwork(self.config).layers                  # the same layers, no weights
        return _layer_rows(layers, (1, 4, size, size))


# --------------------------------------------------------------------------------------------
# the context discriminators (Table 2)
# --------------------------------------------------------------------------------------------
class _ConvFC(nn.Module):
    """``stages`` conv 5x5 stride 2 (BN, ReLU) layers, then FC ``16 * base`` (1024) + ReLU."""

    def __init__(self, config: GLCICConfig, size: int, widths: tuple[int, ...], what: str):
        super().__init__()
        self.config, self.size, self.what = config, size, what
        b = config.bias
        blocks: list[tuple[str, nn.Module]] = []
        c_in = 3
        for i, c_out in enumerate(widths, start=1):
            blocks.append((f"conv{i}", _conv_bn_relu(c_in, c_out, 5, stride=2, bias=b)))   # side / 2
            c_in = c_out
        side = size >> len(widths)                                                        # size / 2**stages
        self.features = nn.Sequential(OrderedDict(blocks))                                # (B, 512, side, side)
        self.fc = nn.Sequential(nn.Flatten(), nn.Linear(c_in * side * side, 16 * config.base_channels, bias=b),
                                nn.ReLU(inplace=True))                                    # (B, 1024)

    def forward(self, image: torch.Tensor) -> torch.Tensor:
        check_image(image, self.what)
        if tuple(image.shape[-2:]) != (self.size, self.size):
            raise ValueError(f"the {type(self).__name__} takes {self.size}x{self.size} images ({self.what}), "
                             f"got {tuple(image.shape[-2:])}")
        return self.fc(self.features(_centre(image, self.config.fill)))

    def layer_table(self) -> list[dict[str, Any]]:
        """Table 2 as rows for this branch, measured on a ``meta`` twin (see :meth:`CompletionNetwork.layer_table`)."""
        with torch.device("meta"):
            twin = type(self)(self.config)
        return _layer_rows(nn.Sequential(OrderedDict([*twin.features.named_children(), ("fc", twin.fc)])),
                           (1, 3, self.size, self.size))


class GlobalDiscriminator(_ConvFC):
    """The global context discriminator: the whole ``image_size`` image ``(B, 3, S, S)`` in ``[0, 1]``
    -> six conv 5x5 s2 64-128-256-512-512-512 (BN, ReLU) -> FC 1024 (ReLU): ``(B, 1024)``."""

    def __init__(self, config: GLCICConfig | None = None):
        cfg = check_config(config, GLCICConfig)
        w = cfg.base_channels
        super().__init__(cfg, cfg.image_size, (w, 2 * w, 4 * w, 8 * w, 8 * w, 8 * w), "image")


class LocalDiscriminator(_ConvFC):
    """The local context discriminator: a ``local_size`` patch ``(B, 3, L, L)`` containing the hole
    -> five conv 5x5 s2 64-128-256-512-512 (BN, ReLU) -> FC 1024 (ReLU): ``(B, 1024)``."""

    def __init__(self, config: GLCICConfig | None = None):
        cfg = check_config(config, GLCICConfig)
        w = cfg.base_channels
        super().__init__(cfg, cfg.local_size, (w, 2 * w, 4 * w, 8 * w, 8 * w), "local patch")


class GLCICDiscriminator(nn.Module):
    """The context discriminator ``D``: global and local branches, their 1024-d outputs concatenated,
    then FC 1: ``forward(image (B, 3, S, S), local (B, 3, L, L)) -> (B,)`` logits (real = high)."""

    model_name = "glcic_discriminator"

    def __init__(self, config: GLCICConfig | None = None, generator: Rng = None, seed: int | None = None):
        super().__init__()
        self.config = cfg = check_config(config, GLCICConfig)
        self.global_branch = GlobalDiscriminator(cfg)                 # (B, 1024)
        self.local_branch = LocalDiscriminator(cfg)                   # (B, 1024)
        self.classifier = nn.Linear(32 * cfg.base_channels, 1, bias=cfg.bias)   # concat (B, 2048) -> (B, 1)
        _init(self, check_generator(generator, seed))

    def forward(self, image: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
        if isinstance(image, torch.Tensor) and isinstance(local, torch.Tensor) and image.shape[0] != local.shape[0]:
            raise ValueError(f"image and local patch batches differ: {image.shape[0]} vs {local.shape[0]}")
        features = torch.cat([self.global_branch(image), self.local_branch(local)], dim=1)   # (B, 2048)
        return self.classifier(features).flatten()                                         # (B,)


# --------------------------------------------------------------------------------------------
# training holes and local patches (the paper's training section)
# --------------------------------------------------------------------------------------------
class Holes(NamedTuple):
    """One random hole per image and the local patch around it.

    ``mask`` ``(B, 1, S, S)`` float (1 = hole); ``boxes`` ``(B, 4)`` long: ``top, left, height, width``
    of each hole; ``corners`` ``(B, 2)`` long: ``top, left`` of each ``local_size`` patch.
    """

    mask: torch.Tensor
    boxes: torch.Tensor
    corners: torch.Tensor

    def to(self, device: str | torch.device) -> "Holes":
        return Holes(self.mask.to(device), self.boxes.to(device), self.corners.to(device))

    def patch_mask(self, size: int) -> torch.Tensor:
        """1 inside each image's ``size`` x ``size`` local patch ``(B, 1, S, S)`` (for figures)."""
        coords = torch.arange(self.mask.shape[-1], device=self.corners.device)
        inside = (coords >= self.corners[:, :, None]) & (coords < self.corners[:, :, None] + size)  # (B, 2, S)
        return (inside[:, 0, :, None] & inside[:, 1, None, :]).to(self.mask.dtype)[:, None]


def _uniform_int(lo: torch.Tensor, hi: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Per element an integer uniformly in ``[lo, hi]`` (inclusive), from ``generator``."""
    u = torch.rand(lo.shape, generator=generator, dtype=torch.float64)
    return torch.minimum(lo + (u * (hi - lo + 1).double()).floor().long(), hi)


def random_holes(batch: int, image_size: int, hole_range: tuple[int, int], local_size: int,
                 generator: torch.Generator | None = None, seed: int | None = None, placement: str = "center",
                 device: str | torch.device | None = None) -> Holes:
    """The paper's training holes: per image one rectangle whose height and width are each drawn
    uniformly (integers) from ``hole_range`` (``[96, 128]`` in a 256x256 image), at a uniformly random
    position inside the image, and the ``local_size`` patch of the local discriminator, which contains
    the whole hole and lies inside the image (``placement``: ``"center"``, the paper's, centred on the
    hole and clamped into the image; ``"random"``, uniformly among those positions). Drawn on the CPU from
    ``generator`` (or ``seed``; with neither, from torch's global RNG); no loop over samples.

    >>> h = random_holes(4, 256, (96, 128), 128, seed=0)
    >>> h.mask.shape, h.boxes.shape, h.corners.shape
    (torch.Size([4, 1, 256, 256]), torch.Size([4, 4]), torch.Size([4, 2]))
    """
    if not is_int(batch) or batch < 1:
        raise ValueError(f"batch must be an int >= 1, got {batch!r}")
    if not is_int(image_size) or image_size < 1:
        raise ValueError(f"image_size must be a positive int, got {image_size!r}")
    if (not isinstance(hole_range, (tuple, list)) or len(hole_range) != 2 or not all(is_int(v) for v in hole_range)
            or not 1 <= hole_range[0] <= hole_range[1]):
        raise ValueError(f"hole_range must be (min, max) ints with 1 <= min <= max, got {hole_range!r}")
    if not is_int(local_size) or not hole_range[1] <= local_size <= image_size:
        raise ValueError(f"local_size must be an int with hole_range max {hole_range[1]} <= local_size <= "
                         f"image_size {image_size}, got {local_size!r}")
    if placement not in PLACEMENTS:
        raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
    if generator is not None and seed is not None:
        raise ValueError("pass either generator or seed, not both")
    if seed is not None:
        generator = torch.Generator().manual_seed(int(seed))
    elif generator is None:
        generator = torch.Generator().manual_seed(int(torch.randint(0, 2**62, (1,)).item()))
    s, lsz = int(image_size), int(local_size)
    lo, hi = (torch.full((batch, 2), int(v), dtype=torch.long) for v in hole_range)
    sides = _uniform_int(lo, hi, generator)                                   # (B, 2) height, width
    starts = _uniform_int(torch.zeros_like(sides), s - sides, generator)      # (B, 2) top, left
    if placement == "random":
        # the local patch [c, c + L) contains [start, start + side) and lies in [0, S): c in [first, last]
        first = (starts + sides - lsz).clamp(min=0)                           # (B, 2)
        last = torch.minimum(starts, torch.full_like(starts, s - lsz))        # (B, 2)
        corners = _uniform_int(first, last, generator)
    else:
        corners = local_patch_corners(torch.cat([starts, sides], dim=1), s, lsz)
    coords = torch.arange(s)
    inside = (coords >= starts[:, :, None]) & (coords < (starts + sides)[:, :, None])      # (B, 2, S)
    mask = (inside[:, 0, :, None] & inside[:, 1, None, :]).to(torch.float32)[:, None]      # (B, 1, S, S)
    holes = Holes(mask, torch.cat([starts, sides], dim=1), corners)
    return holes.to(device) if device is not None else holes


def local_patch_corners(boxes: torch.Tensor, image_size: int, local_size: int) -> torch.Tensor:
    """The local discriminator's patch around each hole, the paper's placement: the ``local_size`` square
    centred on the hole, moved the least needed to lie inside the ``image_size`` image. ``boxes`` ``(B, 4)``
    integer ``top, left, height, width`` (:attr:`Holes.boxes`; each side at most ``local_size``); returns the
    corners ``(B, 2)`` long, ``top, left``, for :func:`crop_local`. The centre of a side ``n`` starting at
    ``a`` is ``a + n // 2``, so the corner is ``a + n // 2 - local_size // 2``, clamped into
    ``[0, image_size - local_size]`` (the patch then still holds the whole hole). Notebook 04's exercise."""
    if not isinstance(boxes, torch.Tensor) or boxes.ndim != 2 or boxes.shape[1] != 4 or boxes.is_floating_point():
        raise ValueError(f"boxes must be an integer tensor (B, 4) of (top, left, height, width), got "
                         f"{tuple(boxes.shape) if isinstance(boxes, torch.Tensor) else type(boxes).__name__}")
    if not is_int(image_size) or not is_int(local_size) or not 1 <= local_size <= image_size:
        raise ValueError(f"need ints 1 <= local_size <= image_size, got local_size={local_size!r}, "
                         f"image_size={image_size!r}")
    starts, sides = boxes[:, :2].long(), boxes[:, 2:].long()                 # (B, 2) top, left / height, width
    if bool((sides > local_size).any()):
        raise ValueError(f"every hole side must be at most local_size={local_size}, got {sides.max().item()}")
    # the local patch [c, c + L) contains [start, start + side) and lies in [0, S): c in [first, last]
    first = (starts + sides - local_size).clamp(min=0)                        # (B, 2)
    last = torch.minimum(starts, torch.full_like(starts, image_size - local_size))
    return torch.minimum(torch.maximum(starts + sides // 2 - local_size // 2, first), last)


def crop_local(images: torch.Tensor, corners: torch.Tensor, size: int) -> torch.Tensor:
    """The ``size`` x ``size`` patch of each image at its own ``corners`` (``(B, 2)`` top, left):
    ``(B, C, H, W) -> (B, C, size, size)`` in one gather (gradients flow back to ``images``)."""
    if not isinstance(images, torch.Tensor) or images.ndim != 4:
        raise ValueError(f"images must be a (B, C, H, W) tensor, got "
                         f"{tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__}")
    b, _, h, w = images.shape
    if not isinstance(corners, torch.Tensor) or tuple(corners.shape) != (b, 2) or corners.is_floating_point():
        raise ValueError(f"corners must be an integer tensor (B, 2) = ({b}, 2) of (top, left), got "
                         f"{tuple(corners.shape) if isinstance(corners, torch.Tensor) else type(corners).__name__}")
    if not is_int(size) or not 1 <= size <= min(h, w):
        raise ValueError(f"size must be an int in [1, {min(h, w)}], got {size!r}")
    corners = corners.to(images.device)
    top, left = corners[:, 0], corners[:, 1]
    if bool((top < 0).any() | (left < 0).any() | (top + size > h).any() | (left + size > w).any()):
        raise ValueError(f"every {size}x{size} patch must lie inside the {h}x{w} image; corners {corners.tolist()[:4]}")
    offsets = torch.arange(size, device=images.device)
    rows = (top[:, None] + offsets)[:, :, None]                                 # (B, size, 1)
    cols = (left[:, None] + offsets)[:, None, :]                                # (B, 1, size)
    batch_index = torch.arange(b, device=images.device)[:, None, None]          # (B, 1, 1)
    return images.permute(0, 2, 3, 1)[batch_index, rows, cols].permute(0, 3, 1, 2)   # (B, C, size, size)


# --------------------------------------------------------------------------------------------
# training: Algorithm 1 for the shared loop (inpaint_utils.train)
# --------------------------------------------------------------------------------------------
class GLCICTask:
    """GLCIC's training (the paper's Algorithm 1), a :class:`inpaint_utils.train.Task`.

    Every step draws one hole per image (``M_c``: sides in ``config.hole_range``, with its local patch)
    from the loop's generator. Then, by the step (``t_c`` = T_C, ``t_d`` = T_D):

    1. ``step < t_c`` (**completion**): the completion network alone, on the weighted MSE
       ``L(x, M_c) = ||M_c * (C(x, M_c) - x)||^2`` (the paper's weighted MSE), normalised by the hole area (divided by
       3 x the number of hole pixels, :func:`inpaint_utils.losses.masked_l2` ``"elements"``): the
       mean squared error *inside the hole*, not diluted by the known pixels (the PyTorch port
       averages over every pixel, so its loss shrinks with the hole).
    2. ``t_c <= step < t_c + t_d`` (**discriminator**): the context discriminator alone, BCE on real
       images (each with its own random patch region ``M_d``, Algorithm 1) against **completed**
       images: the composite ``M_c * C(x, M_c) + (1 - M_c) * x`` (the port shows D the raw output,
       whose known pixels already give it away), global image + local patch around the hole.
    3. ``step >= t_c + t_d`` (**joint**): the discriminator step on ``alpha`` times its BCE, then the
       completion network on ``L + alpha * L_adv`` (the paper's joint objective, ``alpha = 0.0004``, which
       weights both players' adversarial terms), ``L_adv`` the non-saturating BCE of D on the composite.

    The paper trains with batch 96, T_C = 90,000, T_D = 10,000 and 500,000 iterations in all, using
    Adadelta (``optimizer="adadelta"``: ``lr=1``, ``rho=0.9``, ``eps=1e-6``, the defaults of Torch's
    ``optim.adadelta`` and of PyTorch) for both networks. ``optimizer="adam"`` (``lr`` default 2e-4,
    ``betas``) is offered for experiments. Every profile of the course, smoke included, uses Adadelta:
    its first steps are about ``sqrt(eps) / sqrt(E[g^2])`` times the gradient, i.e. roughly a unit-step
    Adam with lr 1e-3; in a check on the smoke network (128x128 faces, 80 steps) it lowered the hole
    MSE about as fast as Adam with lr 1e-3 or 2e-4, so a short run needs no other optimiser than the
    paper's.

    Logs per step: ``mse`` (every phase), ``d`` (phases 2-3, the BCE before the joint phase's ``alpha``),
    ``adv`` and ``g`` = ``mse + alpha adv`` (phase 3).
    """

    def __init__(self, generator: CompletionNetwork, discriminator: GLCICDiscriminator, t_c: int = 90_000,
                 t_d: int = 10_000, alpha: float = 4e-4, optimizer: str = "adadelta", lr: float | None = None,
                 betas: tuple[float, float] = (0.5, 0.999), placement: str = "center"):
        if not isinstance(generator, CompletionNetwork):
            raise TypeError(f"generator must be a CompletionNetwork, got {type(generator).__name__}")
        if not isinstance(discriminator, GLCICDiscriminator):
            raise TypeError(f"discriminator must be a GLCICDiscriminator, got {type(discriminator).__name__}")
        gc, dc = generator.config, discriminator.config
        if (gc.image_size, gc.local_size, gc.hole_range) != (dc.image_size, dc.local_size, dc.hole_range):
            raise ValueError(f"generator and discriminator configs disagree on image_size / local_size / holes: "
                             f"{(gc.image_size, gc.local_size, gc.hole_range)} vs "
                             f"{(dc.image_size, dc.local_size, dc.hole_range)}")
        for name, value in (("t_c", t_c), ("t_d", t_d)):
            if not is_int(value) or value < 0:
                raise ValueError(f"{name} must be an int >= 0 (a number of steps), got {value!r}")
        if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real) or not alpha >= 0:
            raise ValueError(f"alpha must be a number >= 0, got {alpha!r}")
        if optimizer not in OPTIMIZERS:
            raise ValueError(f"optimizer must be one of {OPTIMIZERS}, got {optimizer!r}")
        if lr is not None and (isinstance(lr, bool) or not isinstance(lr, numbers.Real) or not lr > 0):
            raise ValueError(f"lr must be a positive number or None (the optimizer's default), got {lr!r}")
        if placement not in PLACEMENTS:
            raise ValueError(f"placement must be one of {PLACEMENTS}, got {placement!r}")
        self.generator, self.discriminator = generator, discriminator
        self.t_c, self.t_d, self.alpha, self.placement = int(t_c), int(t_d), float(alpha), placement
        self.models: dict[str, nn.Module] = {"generator": generator, "discriminator": discriminator}
        if optimizer == "adadelta":
            make = lambda params: torch.optim.Adadelta(params, lr=1.0 if lr is None else float(lr))  # noqa: E731
        else:
            make = lambda params: torch.optim.Adam(params, lr=2e-4 if lr is None else float(lr),  # noqa: E731
                                                   betas=tuple(betas))
        self.optimizers: dict[str, torch.optim.Optimizer] = {
            "generator": make(generator.parameters()), "discriminator": make(discriminator.parameters())}

    def phase(self, step: int) -> str:
        """``"completion"`` (step < T_C), ``"discriminator"`` (< T_C + T_D) or ``"joint"``."""
        if step < self.t_c:
            return "completion"
        return "discriminator" if step < self.t_c + self.t_d else "joint"

    @classmethod
    def training_masks(cls, config: Mapping[str, Any], n: int, generator: torch.Generator | None = None,
                       **_: Any) -> TrainingMasks:
        """``n`` holes as a checkpoint's training drew them, from its ``config`` (a dict):
        :func:`random_holes`, one rectangle per image with sides in ``hole_range`` at a random position."""
        cfg = GLCICConfig.from_dict(config)
        (lo, hi), s = cfg.hole_range, cfg.image_size
        masks = random_holes(n, s, cfg.hole_range, cfg.local_size, generator=generator).mask
        return TrainingMasks("square", f"one rectangle, sides {lo}-{hi} px, at a random position in {s}x{s}", masks)

    def holes(self, batch: int, generator: torch.Generator | None = None,
              device: str | torch.device | None = None, ctx=None) -> Holes:
        """:func:`random_holes` with this model's sizes and the task's ``placement``; with the loop's ``ctx``,
        drawn for the global batch and cut to this process's rows (several processes draw what one would)."""
        cfg = self.generator.config
        n = ctx.global_size(batch) if ctx is not None else batch
        holes = random_holes(n, cfg.image_size, cfg.hole_range, cfg.local_size, generator=generator,
                             placement=self.placement, device=device)
        return Holes(*(ctx.shard(t) for t in holes)) if ctx is not None else holes

    @staticmethod
    def completion_loss(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        """The paper's weighted MSE normalised by the hole area, a 0-d tensor:
        ``sum(M * (pred - image)^2) / (3 * sum(M))``."""
        from ..losses import masked_l2

        return masked_l2(pred.float(), image.float(), mask, normalize="elements")

    def _judge(self, image: torch.Tensor, corners: torch.Tensor) -> torch.Tensor:
        return self.discriminator(image, crop_local(image, corners, self.generator.config.local_size))

    def train_step(self, batch: torch.Tensor, step: int, ctx) -> dict[str, float]:
        from ..losses import discriminator_bce, generator_adversarial_bce

        phase = self.phase(step)
        b = batch.shape[0]
        holes = self.holes(b, ctx.generator, device=batch.device, ctx=ctx)      # M_c and its local patch
        mask = holes.mask
        # several processes: each one's hole-normalised MSE is reweighted by its share of the global hole area,
        # so the averaged gradients equal one process's on the whole batch (holes differ in size)
        share = ctx.mean_weight(mask.sum()) if ctx.world_size > 1 else None
        if phase == "completion":                                                # phase 1: C on the MSE
            with ctx.autocast():
                mse = self.completion_loss(self.generator(batch, mask), batch, mask)
                if share is not None:
                    mse = mse * share
            update(ctx, mse, "generator", "completion MSE")
            return {"mse": float(mse.detach())}

        real = self.holes(b, ctx.generator, device=batch.device, ctx=ctx)       # M_d: real images' patch regions
        with ctx.autocast(), torch.set_grad_enabled(phase == "joint"):
            pred = self.generator(batch, mask)
        completed = mask * pred + (1.0 - mask) * batch                           # the composite: D sees this
        mse = self.completion_loss(pred, batch, mask)
        if share is not None:
            mse = mse * share
        with ctx.autocast():                                                     # phases 2 and 3: update D
            d_loss = discriminator_bce(self._judge(batch, real.corners), self._judge(completed.detach(), holes.corners))
        d_weight = self.alpha if phase == "joint" else 1.0                      # the paper: alpha weights D's terms
        update(ctx, d_weight * d_loss, "discriminator", "discriminator BCE")
        logs = {"mse": float(mse.detach()), "d": float(d_loss.detach())}
        if phase == "joint":                                                     # phase 3: C on MSE + alpha adv
            with ctx.autocast():
                adv = generator_adversarial_bce(self._judge(completed, holes.corners))
                g_loss = mse + self.alpha * adv
            update(ctx, g_loss, "generator", "completion loss (MSE + alpha adv)")
            logs.update(adv=float(adv.detach()), g=float(g_loss.detach()))
        return logs

    @torch.no_grad()
    def sample(self, batch: torch.Tensor, generator: torch.Generator | None = None) -> dict[str, torch.Tensor]:
        """``{"input", "completed", "target"}`` for the loop's sample grids (random training holes)."""
        from ..viz import overlay_mask

        mask = self.holes(batch.shape[0], generator, device=batch.device).mask
        return {"input": overlay_mask(batch, mask), "completed": self.generator.predict_full(batch, mask),
                "target": batch}
