"""Contextual attention (Yu et al., *Generative Image Inpainting with Contextual Attention*, CVPR 2018,
section 3.1, figure 3): the layer DeepFill v1's refinement network (:mod:`.deepfill`) and DeepFill v2's
(:mod:`.gated_conv`) both use, its settings (:class:`AttentionConfig`) and the coherence of its offsets.

Each foreground location's feature patch is compared with every *known* background patch by cosine
similarity, the scores are smoothed along rows then columns (the paper's attention propagation,
``fuse_k``), a softmax with ``softmax_scale`` turns them into weights, and the full-resolution background
patches are pasted back with those weights. How this differs from the authors' v1 code, and why, is listed
in :mod:`inpaint_utils.models.deepfill`'s docstring; the layer has no parameters.
"""
from __future__ import annotations

import math
import numbers
from dataclasses import dataclass
from typing import Any

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..validation import check_mask, is_int
from .common import ModelConfig

__all__ = [
    "contextual_attention",
    "contextual_attention_weights",
    "attention_coherence",
    "ContextualAttention",
    "check_attention_sizes",
    "AttentionConfig",
]


# --------------------------------------------------------------------------------------------
# contextual attention (paper section 3.1, figure 3)
# --------------------------------------------------------------------------------------------
def _check_ca_args(foreground, background, mask, ksize, stride, rate, fuse_k, softmax_scale) -> torch.Tensor:
    """Validate the arguments of :func:`contextual_attention`; return the mask expanded to the batch."""
    for name, t in (("foreground", foreground), ("background", background)):
        if not isinstance(t, torch.Tensor):
            raise TypeError(f"{name} must be a torch.Tensor (B, C, H, W), got {type(t).__name__}")
        if t.ndim != 4:
            raise ValueError(f"{name} must have shape (B, C, H, W), got {tuple(t.shape)}")
        if not t.is_floating_point():
            raise TypeError(f"{name} must be a floating-point tensor, got dtype {t.dtype}")
    if foreground.shape != background.shape:
        raise ValueError(f"foreground {tuple(foreground.shape)} and background {tuple(background.shape)} must have "
                         f"the same shape (the layer matches every location against patches of the same map)")
    for name, v in (("ksize", ksize), ("stride", stride), ("rate", rate), ("fuse_k", fuse_k)):
        if not is_int(v) or v < 1:
            raise ValueError(f"{name} must be a positive int, got {v!r}")
    if ksize % 2 == 0 or fuse_k % 2 == 0:
        raise ValueError(f"ksize and fuse_k must be odd (centred patches / propagation windows), got "
                         f"ksize={ksize}, fuse_k={fuse_k}")
    if not isinstance(softmax_scale, numbers.Real) or isinstance(softmax_scale, bool) \
            or not math.isfinite(softmax_scale) or softmax_scale <= 0:
        raise ValueError(f"softmax_scale must be a positive finite number, got {softmax_scale!r}")
    b, _, h, w = foreground.shape
    if h % rate or w % rate:
        raise ValueError(f"feature size {h}x{w} must be divisible by rate={rate} (the matching runs on the "
                         f"rate-downscaled map)")
    check_mask(mask, size=(h, w), batch=b, name="mask")
    return mask.to(device=foreground.device).expand(b, 1, h, w)


def _diagonal_sum(s: torch.Tensor, k: int) -> torch.Tensor:
    """``s'(y, x, y', x') = sum_{|i|, |j| <= k // 2} s(y + i, x + j, y' + i, x' + j)`` (zero beyond the grids)
    on ``(B, h, w, hb, wb)``: left-right, then top-down, a ``k x k`` identity kernel on each (x, x') and (y, y')
    plane. The attention propagation (``k = fuse_k``), and the patch sums of the matching and the paste.
    Shifted in-place additions on the tensor as it is laid out (no padding, no permuted copies)."""
    for a, b in ((2, 4), (1, 3)):                                                    # (x, x'), then (y, y')
        out = s.clone()
        n_a, n_b = s.shape[a], s.shape[b]
        for i in range(1, min(k // 2, n_a - 1, n_b - 1) + 1):
            ahead = s.narrow(a, i, n_a - i).narrow(b, i, n_b - i)                    # s(x + i, x' + i)
            behind = s.narrow(a, 0, n_a - i).narrow(b, 0, n_b - i)                   # s(x - i, x' - i), shifted
            out.narrow(a, 0, n_a - i).narrow(b, 0, n_b - i).add_(ahead)
            out.narrow(a, i, n_a - i).narrow(b, i, n_b - i).add_(behind)
        s = out
    return s


def _patch_norm(x: torch.Tensor, ksize: int, dtype: torch.dtype) -> torch.Tensor:
    """``(B, h w)``: the L2 norm of every ``ksize x ksize`` patch (all channels, zero padding) of ``x``
    ``(B, C, h, w)``, in ``dtype``, clamped at 1e-4 (all-zero patches give cosine 0, never NaN)."""
    energy = x.to(dtype).square().sum(dim=1, keepdim=True)                           # (B, 1, h, w)
    return F.unfold(energy, ksize, padding=ksize // 2).sum(dim=1).clamp_min(1e-8).sqrt()


def _attention(foreground, background, mask, ksize, stride, rate, fuse_k, softmax_scale):
    """The attention scores ``(B, h*w, L)`` over the ``L`` background patches (rows of samples without a
    known patch are 0), the validity of each patch ``(B, L)``, and the grids ``(h, w)``, ``(hb, wb)``."""
    mask = _check_ca_args(foreground, background, mask, ksize, stride, rate, fuse_k, softmax_scale)
    p = ksize // 2
    # Downscale by `rate` for matching (v1: nearest neighbour, i.e. the top-left pixel of each block).
    f = foreground[:, :, ::rate, ::rate]                                             # (B, C, h, w)
    bg = background[:, :, ::rate, ::rate]                                            # (B, C, h, w)
    hole = F.max_pool2d(mask.float(), rate) if rate > 1 else mask.float()            # (B, 1, h, w), any hole -> hole
    bsz, _, h, w = f.shape
    hb, wb = (h - 1) // stride + 1, (w - 1) // stride + 1                            # background patch grid

    # Match: cosine similarity of every foreground ksize x ksize patch with every background patch.
    wide = torch.promote_types(foreground.dtype, torch.float32)                     # scores in >= float32
    if stride == 1:
        # <F_j, W_l> = sum over the patch's offsets d of <f_{j+d}, b_{l+d}> (zero beyond the map): one C-deep
        # product of the pixels, summed along the diagonals, instead of a (C k k)-deep one of the patches
        # (9x fewer multiply-adds at ksize 3); the patch norms divide afterwards.
        dots = torch.bmm(f.flatten(2).transpose(1, 2), bg.flatten(2)).to(wide)     # (B, h w, L) pixel dots
        scores = _diagonal_sum(dots.view(bsz, h, w, hb, wb), ksize).reshape(bsz, h * w, hb * wb)
        scores = scores / (_patch_norm(f, ksize, wide)[:, :, None] * _patch_norm(bg, ksize, wide)[:, None, :])
    else:
        def normalised(patches: torch.Tensor) -> torch.Tensor:                       # (B, C k k, N)
            norm = patches.to(wide).square().sum(dim=1, keepdim=True).clamp_min(1e-8).sqrt()  # >= 1e-4, no NaN
            return patches / norm.to(patches.dtype)

        w_patches = normalised(F.unfold(bg, ksize, padding=p, stride=stride))       # (B, C k k, L)
        f_patches = normalised(F.unfold(f, ksize, padding=p))                       # (B, C k k, h w)
        scores = torch.bmm(f_patches.transpose(1, 2), w_patches).to(wide)           # (B, h w, L) cosine
    # Known background: patches whose whole footprint is known (the zero padding counts as known, as in v1).
    valid = F.unfold(hole, ksize, padding=p, stride=stride).amax(dim=1) == 0        # (B, L)
    scores = scores * valid[:, None, :]                                             # hole patches out first

    # Attention propagation (paper eq. 3): s'(x, y, x', y') = sum_i s(x + i, y, x' + i, y'), left-right,
    # then the same top-down: a fuse_k x fuse_k identity kernel on each (x, x') and (y, y') plane.
    if fuse_k > 1:
        scores = _diagonal_sum(scores.view(bsz, h, w, hb, wb), fuse_k).reshape(bsz, h * w, hb * wb)

    # Softmax over the known patches only; a sample without any known patch gets all-zero attention.
    logits = (scores * float(softmax_scale)).masked_fill(~valid[:, None, :], torch.finfo(scores.dtype).min)
    attn = torch.softmax(logits, dim=2) * valid[:, None, :]                          # (B, h w, L)
    return attn, valid, (h, w), (hb, wb)


def contextual_attention(foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor, *,
                         ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                         softmax_scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The contextual attention layer (Yu et al. 2018, section 3.1), batched, with one mask per sample.

    Args:
        foreground: features ``(B, C, H, W)`` to fill (every location gets an output; the hole's matter).
        background: features ``(B, C, H, W)`` to copy from (the model passes the same map twice).
        mask: ``(B or 1, 1, H, W)`` float at the feature resolution, **1 = hole**, 0 = known.
        ksize: side of the matched patches on the downscaled map (3).
        stride: step between background patches on the downscaled map (1).
        rate: downscaling factor for matching (2): matching runs on ``(H / rate, W / rate)``, the pasted
            patches are the ``rate * ksize`` full-resolution ones.
        fuse_k: attention-propagation window (3; 1 switches propagation off).
        softmax_scale: the softmax's ``lambda`` (10).

    Returns:
        ``(output, offsets)``: ``output`` has the shape of ``foreground``; ``offsets`` is a long tensor
        ``(B, 2, H // rate, W // rate)`` with ``(dy, dx)`` from every downscaled location to the centre of
        its most attended background patch, in downscaled pixels (multiply by ``rate`` for feature pixels).

    Steps, all batched (``unfold`` / ``bmm`` / ``fold``; no loop over samples):

    1. downscale ``foreground`` and ``background`` by ``rate`` (nearest: the top-left pixel of each
       block, as v1) and the mask by max-pooling (a block with any hole pixel is hole);
    2. cosine similarity of every foreground ``ksize x ksize`` patch with every background patch (patch
       norms clamped at 1e-4, so all-zero patches give 0, never NaN);
    3. background patches whose footprint touches the hole are dropped per sample (their scores are
       removed before the propagation and excluded from the softmax);
    4. attention propagation: ``fuse_k``-wide identity kernel, left-right, then top-down (paper eq. 3);
    5. softmax over the known patches with scale ``softmax_scale``;
    6. paste: the full-resolution ``(rate * ksize)``-wide background patches, weighted by the attention,
       are summed back with a transposed convolution (``fold``) and divided by the overlap count.

    At ``stride`` 1 (the papers') steps 2 and 6 do the same sums with fewer multiply-adds: a patch's dot
    product is the sum, over its ``ksize x ksize`` offsets, of the pixels' C-deep dot products, so the scores
    are one ``(h w) x C`` by ``C x L`` product summed along the diagonals (the propagation's shifts) and
    divided by the patch norms; the paste is, per phase ``(r, s)`` of the ``rate x rate`` grid, the phase's
    background pixels times the attention summed along the same diagonals. At ``ksize`` 3 that is 9x fewer
    multiply-adds in each of the two products; the result equals the patch products' to float rounding
    (``tests/test_deepfill.py``; ``benchmarks/bench_contextual_attention.py`` times both).

    A sample without a single fully known background patch (a hole covering almost the whole map) gets
    the defined fallback ``output = 0`` and ``offsets = 0`` for that sample (no error, no NaN): the
    network's other branch carries it. Offsets are defined at every location; only those inside the hole
    are meaningful for inpainting.
    """
    attn, valid, (h, w), (hb, wb) = _attention(foreground, background, mask, ksize, stride, rate, fuse_k,
                                               softmax_scale)
    bsz, c, height, width = background.shape
    p, k_raw = ksize // 2, rate * ksize
    # Paste: full-resolution (rate * ksize)-wide patches centred on each low-resolution patch, summed with the
    # attention weights (a transposed convolution) and divided by the overlap count.
    if stride == 1:
        # Output pixel (rate a + r, rate b + s) sums background pixel (rate (l + d) + r, ...) with weight
        # attn(j = (a, b) - d, l) over the patch offsets d: per phase (r, s), the phase's pixels times the
        # diagonal sums of the attention, one (r r C) x L by L x (h w) product instead of (C K K) x L by L x (h w).
        summed = _diagonal_sum(attn.view(bsz, h, w, hb, wb), ksize).reshape(bsz, h * w, hb * wb)
        phases = background.reshape(bsz, c, h, rate, w, rate).permute(0, 3, 5, 1, 2, 4)   # (B, r, r, C, h, w)
        phases = phases.reshape(bsz, rate * rate * c, h * w)                           # (B, r r C, L)
        out = torch.bmm(phases, summed.to(phases.dtype).transpose(1, 2))               # (B, r r C, h w)
        out = out.view(bsz, rate, rate, c, h, w).permute(0, 3, 4, 1, 5, 2).reshape(bsz, c, height, width)
        dtype = out.dtype
    else:
        raw = F.unfold(background, k_raw, padding=rate * p, stride=rate * stride)   # (B, C K K, L)
        cols = torch.bmm(raw, attn.to(raw.dtype).transpose(1, 2))                   # (B, C K K, h w)
        out = F.fold(cols, (height, width), k_raw, padding=rate * p, stride=rate)   # (B, C, H, W) sums
        dtype = raw.dtype
    count = F.fold(torch.ones(1, k_raw * k_raw, h * w, dtype=dtype, device=out.device), (height, width),
                   k_raw, padding=rate * p, stride=rate)                            # (1, 1, H, W) overlaps
    out = out / count

    # Offsets: (dy, dx) from each low-resolution location to its most attended patch's centre.
    idx = attn.argmax(dim=2)                                                        # (B, h w)
    ys = torch.arange(h, device=idx.device).repeat_interleave(w)                    # (h w,)
    xs = torch.arange(w, device=idx.device).repeat(h)
    dy = (idx // wb) * stride - ys
    dx = (idx % wb) * stride - xs
    offsets = torch.stack([dy, dx], dim=1).view(bsz, 2, h, w)                       # (B, 2, h, w)
    offsets = offsets * valid.any(dim=1).view(bsz, 1, 1, 1)                         # fallback: 0
    return out, offsets.long()


def contextual_attention_weights(foreground: torch.Tensor, background: torch.Tensor, mask: torch.Tensor, *,
                                 ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3,
                                 softmax_scale: float = 10.0) -> torch.Tensor:
    """The attention weights of :func:`contextual_attention` (same arguments) as a 5-d tensor
    ``(B, h, w, hb, wb)``: for every downscaled location ``(y, x)``, how much it attends to the
    background patch centred at ``(stride * y', stride * x')``. Rows sum to 1 (0 for a sample without a
    known patch). For the notebook's "where does this pixel look" heat maps."""
    attn, _, (h, w), (hb, wb) = _attention(foreground, background, mask, ksize, stride, rate, fuse_k,
                                           softmax_scale)
    return attn.view(attn.shape[0], h, w, hb, wb)


def attention_coherence(offsets: torch.Tensor, mask: torch.Tensor, rate: int = 2) -> torch.Tensor:
    """How coherent the attention is inside the hole: per sample ``(B,)``, the fraction of horizontally
    adjacent pairs of hole cells whose offsets are equal (both copy from one contiguous region).
    ``offsets`` ``(B, 2, h, w)`` from :func:`contextual_attention`, ``mask`` ``(B or 1, 1, h * rate, w * rate)``
    the mask it was given. Samples without such a pair give 0."""
    check_mask(mask)
    hole = (F.max_pool2d(mask.float(), rate) > 0)[:, 0]                             # (B, h, w) hole cells
    if hole.shape[-2:] != offsets.shape[-2:]:
        raise ValueError(f"mask {tuple(mask.shape)} at rate {rate} gives {tuple(hole.shape[-2:])} cells, offsets "
                         f"have {tuple(offsets.shape[-2:])}")
    pairs = hole[..., 1:] & hole[..., :-1]                                          # (B, h, w - 1)
    same = (offsets[..., 1:] == offsets[..., :-1]).all(dim=1) & pairs
    return same.flatten(1).sum(dim=1) / pairs.flatten(1).sum(dim=1).clamp_min(1)


class ContextualAttention(nn.Module):
    """:func:`contextual_attention` as a module (no parameters); the settings are attributes.

    ``forward(foreground, background, mask) -> (output, offsets)``.
    """

    def __init__(self, ksize: int = 3, stride: int = 1, rate: int = 2, fuse_k: int = 3, softmax_scale: float = 10.0):
        super().__init__()
        self.ksize, self.stride, self.rate, self.fuse_k, self.softmax_scale = ksize, stride, rate, fuse_k, softmax_scale
        # fail at construction, not at the first forward pass
        _check_ca_args(torch.zeros(1, 1, rate, rate), torch.zeros(1, 1, rate, rate), torch.zeros(1, 1, rate, rate),
                       ksize, stride, rate, fuse_k, softmax_scale)

    def forward(self, foreground: torch.Tensor, background: torch.Tensor,
                mask: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return contextual_attention(foreground, background, mask, ksize=self.ksize, stride=self.stride,
                                    rate=self.rate, fuse_k=self.fuse_k, softmax_scale=self.softmax_scale)

    def extra_repr(self) -> str:
        return (f"ksize={self.ksize}, stride={self.stride}, rate={self.rate}, fuse_k={self.fuse_k}, "
                f"softmax_scale={self.softmax_scale}")


# --------------------------------------------------------------------------------------------
# configuration
# --------------------------------------------------------------------------------------------
def check_attention_sizes(image_size: Any, rate: Any) -> None:
    """``ValueError`` unless ``rate`` is a positive int and ``image_size`` an int divisible by ``4 * rate``
    and at least ``8 * rate``: the sizes a coarse + refinement network with contextual attention at 1/4
    of the image, matched on a ``rate``-times downscaled copy, runs at (v1's and v2's configs)."""
    if not is_int(rate) or rate < 1:
        raise ValueError(f"rate must be a positive int, got {rate!r}")
    if not is_int(image_size) or image_size < 8 * rate or image_size % (4 * rate):
        raise ValueError(f"image_size must be an int divisible by 4 * rate = {4 * rate} and at least "
                         f"{8 * rate}, got {image_size!r}")


@dataclass
class AttentionConfig(ModelConfig):
    """The contextual attention's settings, the fields DeepFill v1's and v2's configs share: ``ksize``,
    ``stride``, ``rate``, ``fuse_k``, ``softmax_scale`` (3, 1, 2, 3, 10: v1's, kept by v2)."""

    ksize: int = 3
    stride: int = 1
    rate: int = 2
    fuse_k: int = 3
    softmax_scale: float = 10.0

    def check_attention(self, image_size: Any) -> None:
        """``ValueError`` unless the attention's settings are valid and ``image_size`` suits them
        (:func:`check_attention_sizes`); ``softmax_scale`` becomes a float."""
        check_attention_sizes(image_size, self.rate)
        self.attention()                                         # checks them
        self.softmax_scale = float(self.softmax_scale)

    def attention(self) -> "ContextualAttention":
        """A :class:`ContextualAttention` layer with these settings."""
        return ContextualAttention(**self.ca_settings())

    def ca_settings(self) -> dict[str, Any]:
        """The keyword arguments of :class:`ContextualAttention`."""
        return {"ksize": self.ksize, "stride": self.stride, "rate": self.rate, "fuse_k": self.fuse_k,
                "softmax_scale": self.softmax_scale}
