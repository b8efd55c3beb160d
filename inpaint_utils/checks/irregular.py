"""Notebook 08's graded exercises (irregular holes, the partial convolution of Liu et al. 2018):
:func:`check_mask_update` (eq. 2, the mask update) and :func:`check_partial_conv` (eq. 1-2, the convolution
with its update), against ``inpaint_utils.models.partial_conv.PartialConv2d``.
"""
from __future__ import annotations

import math
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F

from .runner import CheckResult, _call, _Fail, _reference, _run, _unchanged

__all__ = ["check_mask_update", "check_partial_conv"]


# --------------------------------------------------------------------------------------------------
# check_mask_update and check_partial_conv (notebook 08, against the library's PartialConv2d)
# --------------------------------------------------------------------------------------------------
@torch.no_grad()
def _reference_partial_conv(x: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor,
                            bias: torch.Tensor | None = None, stride: int = 1,
                            padding: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """``PartialConv2d`` with ``weight`` ``(C_out, C_in, k, k)`` and ``bias`` copied in: ``(out (B, C_out, H', W'),
    new_valid (B, 1, H', W') float)``."""
    layer_cls = _reference("models.partial_conv", "PartialConv2d")
    c_out, c_in, k = weight.shape[:3]
    with torch.random.fork_rng(devices=[]):      # its initialisation draws from the global RNG: keep the notebook's
        layer = layer_cls(c_in, c_out, k, stride=stride, padding=padding, bias=bias is not None)
    layer.weight.copy_(weight)
    if bias is not None:
        layer.bias.copy_(bias)
    out, new_valid = layer(x.detach(), valid.detach())
    return out, new_valid[:, :1].float()


def _out_side(n: int, k: int, stride: int, padding: int) -> int:
    """A convolution's output side: ``floor((n + 2 padding - k) / stride) + 1``."""
    return (n + 2 * padding - k) // stride + 1


def _random_valid(b: int, c: int, h: int, w: int, gen: torch.Generator, hole_rate: float = 0.3) -> torch.Tensor:
    """``(b, c, h, w)`` 0/1 valid masks (1 = known): scattered unknown pixels (independent per channel) and a
    rectangular hole of side h/3 to h/2 (all channels), placed at random, a different one per sample."""
    valid = (torch.rand(b, c, h, w, generator=gen) > hole_rate).float()
    for i in range(b):
        side = int(torch.randint(h // 3, h // 2 + 1, (1,), generator=gen))
        top = int(torch.randint(0, h - side + 1, (1,), generator=gen))
        left = int(torch.randint(0, w - side + 1, (1,), generator=gen))
        valid[i, :, top:top + side, left:left + side] = 0.0
    return valid


def _which_variant(output: torch.Tensor, variants: Sequence[tuple[str, Callable[[], torch.Tensor]]],
                   atol: float = 0.0, rtol: float = 0.0) -> str:
    """The first variant (why, make) whose tensor ``output`` matches, as a sentence ('' when none does)."""
    output = output.detach().float()
    for why, make in variants:
        try:
            other = make()
        except Exception:  # noqa: BLE001 - a variant that cannot be computed here is simply not a diagnosis
            continue
        if other.shape == output.shape and torch.allclose(output, other.float(), atol=atol, rtol=rtol):
            return f" Your output matches {why}."
    return ""


_MU_EROSION = ("a window valid only when ALL its pixels are known (a minimum, an erosion of the known area): eq. 2 "
               "sets m' = 1 as soon as sum(M) > 0, i.e. when the window sees AT LEAST ONE known pixel (a maximum, a "
               "dilation), so the hole shrinks layer after layer")
_MU_HOLE_RETURNED = ("the updated HOLE (1 - m'): the hole/known convention is flipped; `valid` is 1 = KNOWN (the "
                     "paper's M) and so is the result: return m' = (sum(M) > 0), not its complement")
_MU_HOLE_READ = ("the update of the HOLE: the hole/known convention is flipped, `valid` was read as 1 = hole so the "
                 "hole grew instead of shrinking; here 1 = KNOWN (the paper's M, the opposite of the course's hole "
                 "masks): count the known pixels, sum(M), of valid itself")
_MU_NO_PADDING = ("a window count without padding (the output is smaller than H' x W'): pad by `padding` (default "
                  "kernel_size // 2) with zeros, which count as unknown pixels (F.conv2d(..., padding=padding))")
_MU_PER_CHANNEL = ("one new mask per input channel: a window sees a known pixel when ANY channel of valid is known "
                   "there; sum (or max) over the channels too and return one channel, (B, 1, H', W')")
_MU_FIRST_CHANNEL = ("the update of valid's first channel only: count the known elements of every channel "
                     "(valid[:, :1] ignores the others)")
_MU_EVERY_CHANNEL = ("a pixel counted as known only where every channel is known: one known element in ANY channel "
                     "is enough (sum(M) counts all C channels of the window)")


def _mask_update_mistakes(valid: torch.Tensor, k: int, stride: int,
                          padding: int) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    """The usual wrong mask updates of ``valid`` ``(B, C, H, W)`` (1 = known), each ``(why, make)``."""
    v = valid.detach().float()
    c = v.shape[1]
    ones = torch.ones(1, 1, k, k)

    def count(m: torch.Tensor, pad: int = padding) -> torch.Tensor:          # sum(M) per window, (B, 1, H', W')
        return F.conv2d(m.sum(1, keepdim=True), ones, stride=stride, padding=pad)

    def dilate(m: torch.Tensor, pad: int = padding) -> torch.Tensor:
        return (count(m, pad) > 0).float()

    return [
        (_MU_EROSION, lambda: (count(v) == c * k * k).float()),                        # padding counted unknown
        (_MU_EROSION, lambda: -F.max_pool2d(-v.amin(1, keepdim=True), k, stride, padding)),  # padding ignored
        (_MU_HOLE_RETURNED, lambda: 1.0 - dilate(v)),
        (_MU_HOLE_READ, lambda: dilate(1.0 - v)),
        (_MU_NO_PADDING, lambda: dilate(v, 0)),
        (_MU_PER_CHANNEL, lambda: torch.cat([dilate(v[:, i:i + 1]) for i in range(c)], dim=1)),
        (_MU_FIRST_CHANNEL, lambda: dilate(v[:, :1])),
        (_MU_EVERY_CHANNEL, lambda: dilate(v.amin(1, keepdim=True))),
    ]


def check_mask_update(fn: Callable[..., Any], *, strict: bool = False) -> CheckResult:
    """Grade ``mask_update(valid, kernel_size, stride=1, padding=None) -> new_valid``, the mask update of a partial
    convolution (eq. 2 of Liu et al. 2018, notebook 08): ``valid`` ``(B, C or 1, H, W)`` of 0 / 1, **1 = known** (the
    paper's ``M``), ``padding`` default ``kernel_size // 2`` (the padded border counts as unknown); ``new_valid``
    ``(B, 1, H', W')`` of 0 / 1 (float, or any dtype ``.float()`` converts), 1 where the ``kernel_size`` window sees
    at least one known pixel in any channel (``sum(M) > 0``).

    Tests: shapes and values for stride 1 and 2, odd and even sides and an explicit ``padding=0``; equality with
    ``inpaint_utils.models.partial_conv.PartialConv2d``'s new mask on random masks with a different hole per
    sample; a hole bigger than the window shrinks by ``k // 2`` per layer (its interior stays 0, its border ring
    becomes 1); a ``valid`` whose channels differ. A mismatch is diagnosed by computing the usual wrong updates
    (erosion instead of dilation, hole/known flipped, no padding, one mask per channel).
    """
    b = 2
    gen = torch.Generator().manual_seed(2018)

    def update(valid: torch.Tensor, k: int, stride: int = 1, padding: int | None = None) -> torch.Tensor:
        kwargs: dict[str, Any] = {"stride": stride}
        if padding is not None:
            kwargs["padding"] = padding
        out = _call(fn, valid, k, **kwargs)
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"expected a torch.Tensor new_valid, got {type(out).__name__}")
        return out

    def describe(k: int, stride: int, padding: int | None, valid: torch.Tensor) -> str:
        pad = "default" if padding is None else padding
        return (f"kernel_size={k}, stride={stride}, padding={pad}, valid {tuple(valid.shape)}")

    def expect(valid, k, stride, padding, out, expected, what: str) -> None:
        """``out`` must equal ``expected`` (B, 1, H', W'); otherwise fail with the diagnosis."""
        p = k // 2 if padding is None else padding

        def diagnosis() -> str:
            return _which_variant(out, _mask_update_mistakes(valid, k, stride, p))

        if tuple(out.shape) != tuple(expected.shape):
            hint = diagnosis()
            if not hint and out.ndim == 3:
                hint = " Keep the channel dimension: (B, 1, H', W') (sum(..., keepdim=True) or [:, None])."
            raise _Fail(f"{what}: expected new_valid of shape {tuple(expected.shape)} (B, 1, H', W'), got "
                        f"{tuple(out.shape)}.{hint}")
        got = out.detach().float()
        if not torch.equal(got, expected):
            wrong = int((got != expected).sum())
            values = torch.unique(got).tolist()
            hint = diagnosis()
            if not hint and not set(values) <= {0.0, 1.0}:
                hint = (f" Its values are {values[:5]}{' ...' if len(values) > 5 else ''}, not 0 and 1: threshold the "
                        f"count, new_valid = (sum(M) > 0).")
            raise _Fail(f"{what}: {wrong} of {got.numel()} positions differ from the expected mask.{hint}")

    def t_shape():
        for h, w, k, stride, padding in ((12, 12, 3, 1, None), (11, 13, 3, 2, None), (12, 12, 5, 2, None),
                                         (11, 11, 5, 1, None), (12, 12, 3, 1, 0)):
            valid = _random_valid(b, 1, h, w, gen)
            out = update(valid, k, stride, padding)
            p = k // 2 if padding is None else padding
            want = (b, 1, _out_side(h, k, stride, p), _out_side(w, k, stride, p))
            what = describe(k, stride, padding, valid)
            if tuple(out.shape) != want:
                hint = _which_variant(out, _mask_update_mistakes(valid, k, stride, p))
                if not hint and padding == 0 and tuple(out.shape[-2:]) == (_out_side(h, k, stride, k // 2),
                                                                         _out_side(w, k, stride, k // 2)):
                    hint = " padding=0 was ignored: use the `padding` argument (kernel_size // 2 only when it is None)."
                elif not hint and out.ndim == 3:
                    hint = " Keep the channel dimension: (B, 1, H', W') (sum(..., keepdim=True) or [:, None])."
                raise _Fail(f"{what}: expected shape {want} (B, 1, floor((H + 2 padding - k) / stride) + 1, ...), got "
                            f"{tuple(out.shape)}.{hint}")
            values = torch.unique(out.detach().float()).tolist()
            if not set(values) <= {0.0, 1.0}:
                hint = (" It looks like the count sum(M): threshold it, new_valid = (sum(M) > 0)."
                        if max(values) > 1 else "")
                raise _Fail(f"{what}: values must be 0 and 1 only, found {values[:5]}"
                            f"{' ...' if len(values) > 5 else ''}.{hint}")

    def t_reference():
        for k, stride in ((3, 1), (3, 2), (5, 1)):
            valid = _random_valid(b, 1, 12, 12, gen)
            copy = valid.clone()
            out = update(valid, k, stride)
            _unchanged("valid", copy, valid)
            _, expected = _reference_partial_conv(torch.zeros(b, 1, 12, 12), valid, torch.zeros(1, 1, k, k),
                                                  stride=stride)
            expect(valid, k, stride, None, out, expected,
                   f"random masks, a different hole per sample ({describe(k, stride, None, valid)}), against "
                   f"PartialConv2d's new mask")

    def t_shrink():
        valid = torch.ones(1, 1, 16, 16)
        valid[..., 3:13, 3:13] = 0.0                                              # a 10x10 hole

        def holed(lo: int, hi: int) -> torch.Tensor:
            m = torch.ones(1, 1, 16, 16)
            m[..., lo:hi, lo:hi] = 0.0
            return m

        once = update(valid, 3)
        expect(valid, 3, 1, None, once, holed(4, 12),
               "a 10x10 hole (rows and columns 3..12 of 16x16), kernel_size=3: the windows of its 8x8 interior see "
               "no known pixel and stay 0, its 1-pixel border ring becomes 1 (the hole shrinks by k // 2 = 1)")
        again = update(once.detach().float(), 3)
        expect(once.detach().float(), 3, 1, None, again, holed(5, 11),
               "the same hole after two kernel_size=3 updates: it shrinks by 1 pixel per layer, to 6x6")
        five = update(valid, 5)
        expect(valid, 5, 1, None, five, holed(5, 11),
               "the 10x10 hole, kernel_size=5: it shrinks by k // 2 = 2 pixels, to 6x6")

    def t_channels():
        for k, stride in ((3, 1), (3, 2)):
            valid = _random_valid(b, 3, 12, 12, gen, hole_rate=0.7)                # channels differ, mostly unknown
            out = update(valid, k, stride)
            _, expected = _reference_partial_conv(torch.zeros(b, 3, 12, 12), valid, torch.zeros(1, 3, k, k),
                                                  stride=stride)
            expect(valid, k, stride, None, out, expected,
                   f"a 3-channel valid whose channels differ ({describe(k, stride, None, valid)}): a window is valid "
                   f"when it sees a known element in any channel")

    return _run("mask_update", fn, [
        ("returns (B, 1, H', W') of 0 and 1 (stride 1 and 2, odd and even sides)", t_shape),
        ("matches PartialConv2d's mask update on random masks", t_reference),
        ("a hole bigger than the window shrinks by k // 2 per layer", t_shrink),
        ("multi-channel valid: a known element in any channel counts", t_channels),
    ], strict)


_PC_NO_RENORM = ("a convolution of X*M without the sum(1)/sum(M) rescaling: multiply each window's W^T (X * M) by "
                 "sum(1) / sum(M), where sum(1) = C_in*k*k is the window's size and sum(M) the number of known "
                 "elements it sees (over all C_in channels; the padding counts as unknown), then add the bias (eq. 1)")
_PC_RATIO_KK = ("the ratio computed per channel: sum(1) = k*k (one channel's window) divided by sum(M) counted over "
                "all C_in channels, C_in times too small: sum(1) is the whole window, C_in*k*k")
_PC_RATIO_ONE = ("sum(M) counted on one channel of M against sum(1) = C_in*k*k, C_in times too large: count the known "
                 "elements of every channel (a (B, 1, H, W) mask stands for C_in equal channels: C_in times its count)")
_PC_BIAS_SCALED = ("the bias multiplied by the ratio, (W^T (X * M) + b) * sum(1)/sum(M): rescale the convolution "
                   "first, then add b (eq. 1: W^T (X * M) * sum(1)/sum(M) + b)")
_PC_BIAS_EVERYWHERE = ("the bias added in windows that see no known pixel: where sum(M) = 0 the output is 0 (eq. 1), "
                       "so add b only where the new mask is 1 (b * new_valid), not everywhere")
_PC_X_NOT_MASKED = ("a convolution of X instead of X * M (x not multiplied by the mask): multiply x by valid before "
                    "the convolution, so that the values in the hole never reach the output")
_PC_PLAIN = ("a plain convolution F.conv2d(x, weight, bias): the mask is not used at all (eq. 1 convolves X * M and "
             "rescales by sum(1)/sum(M))")
_PC_PADDING_KNOWN = ("sum(1) counting only the window's pixels inside the image: the padded border is part of the "
                     "window and counts as unknown (zeros in M), so sum(1) = C_in*k*k everywhere and the ratio exceeds "
                     "1 at the border")

_PC_FLIPPED = ("a partial convolution of the HOLE: the hole/known convention is flipped, `valid` is 1 = KNOWN (the "
               "paper's M, the opposite of the course's hole masks): multiply x by valid itself, not by 1 - valid")


def _partial_conv_mistakes(x: torch.Tensor, valid: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None,
                           stride: int, padding: int) -> list[tuple[str, Callable[[], torch.Tensor]]]:
    """The usual wrong partial convolutions (the output only), each ``(why, make)``."""
    c_out, c_in, k = weight.shape[:3]
    x, w = x.detach().float(), weight.detach().float()
    m = valid.detach().float().expand(x.shape[0], c_in, -1, -1)                   # (B, C_in, H, W)
    ones = torch.ones(1, 1, k, k)

    def count(t: torch.Tensor) -> torch.Tensor:                                  # per window, (B, 1, H', W')
        return F.conv2d(t, ones, stride=stride, padding=padding)

    def ratio(window: torch.Tensor | float, cnt: torch.Tensor) -> torch.Tensor:
        return torch.where(cnt > 0, window / cnt.clamp_min(1.0), torch.zeros_like(cnt))

    total = count(m.sum(1, keepdim=True))                                         # sum(M)
    first = count(m[:, :1])
    inside = c_in * count(torch.ones_like(m[:, :1]))                              # sum(1) without the padding
    seen = (total > 0).float()
    full = ratio(float(c_in * k * k), total)
    raw = F.conv2d(x * m, w, None, stride=stride, padding=padding)                # W^T (X * M)
    plain = F.conv2d(x, w, None, stride=stride, padding=padding)
    b = torch.zeros(1, c_out, 1, 1) if bias is None else bias.detach().float().view(1, -1, 1, 1)

    def flipped() -> torch.Tensor:                                               # the right formula, M = 1 - valid
        hole = 1.0 - m
        cnt = count(hole.sum(1, keepdim=True))
        out = F.conv2d(x * hole, w, None, stride=stride, padding=padding) * ratio(float(c_in * k * k), cnt)
        return out + b * (cnt > 0).float()

    return [
        (_PC_NO_RENORM, lambda: raw + b),
        (_PC_NO_RENORM, lambda: raw + b * seen),
        (_PC_RATIO_KK, lambda: raw * ratio(float(k * k), total) + b * seen),
        (_PC_RATIO_ONE, lambda: raw * ratio(float(c_in * k * k), first) + b * (first > 0).float()),
        (_PC_BIAS_SCALED, lambda: (raw + b) * full),
        (_PC_BIAS_EVERYWHERE, lambda: raw * full + b),
        (_PC_X_NOT_MASKED, lambda: plain * full + b * seen),
        (_PC_PLAIN, lambda: plain + b),
        (_PC_PADDING_KNOWN, lambda: raw * ratio(inside, total) + b * seen),
        (_PC_FLIPPED, flipped),
    ]


def check_partial_conv(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-5) -> CheckResult:
    """Grade ``partial_conv(x, valid, weight, bias=None, stride=1, padding=None) -> (out, new_valid)``, a partial
    convolution with its mask update (eq. 1-2 of Liu et al. 2018, notebook 08): ``x`` ``(B, C_in, H, W)``, ``valid``
    ``(B, C_in or 1, H, W)`` of 0 / 1, **1 = known**; ``weight`` ``(C_out, C_in, k, k)``, ``bias`` ``(C_out,)`` or
    ``None``, ``padding`` default ``k // 2``; ``out`` ``(B, C_out, H', W')`` =
    ``W^T (X * M) * sum(1) / sum(M) + b`` where ``sum(M) > 0`` and 0 elsewhere (``sum(1) = C_in k k``, the padding
    counting as unknown); ``new_valid`` ``(B, 1, H', W')`` (or ``(B, C_out, H', W')`` with equal channels, as
    ``PartialConv2d``), 1 where ``sum(M) > 0``.

    Tests: shapes; ``out`` and ``new_valid`` against ``inpaint_utils.models.partial_conv.PartialConv2d`` (with
    ``weight`` / ``bias`` copied in) on random inputs and masks, a different hole per sample, one-channel and
    ``C_in``-channel masks, bias on and off, stride 1 and 2 (tolerance ``atol`` plus 1e-5 relative); a fully known
    input gives ``F.conv2d``'s output away from the border (only there: the padding counts as unknown, so the
    ratio exceeds 1 at the border); a window that sees no known pixel gives 0 (no bias) and ``new_valid`` 0;
    gradients reach ``x`` (never its unknown pixels), ``weight`` and ``bias``. A mismatch is diagnosed by computing
    the usual wrong versions: no ``sum(1)/sum(M)`` rescaling, the ratio per channel, the bias rescaled or added
    where nothing is seen, ``x`` not multiplied by the mask.
    """
    b, c_in, c_out, size = 2, 3, 4, 12
    rtol = 1e-5
    gen = torch.Generator().manual_seed(1804)

    def params(k: int, with_bias: bool = True) -> tuple[torch.Tensor, torch.Tensor | None]:
        weight = torch.randn(c_out, c_in, k, k, generator=gen) / math.sqrt(c_in * k * k)
        bias = torch.randn(c_out, generator=gen) if with_bias else None
        return weight, bias

    def run(x, valid, weight, bias=None, stride=1, padding=None) -> tuple[torch.Tensor, Any]:
        kwargs: dict[str, Any] = {"bias": bias, "stride": stride}
        if padding is not None:
            kwargs["padding"] = padding
        res = _call(fn, x, valid, weight, **kwargs)
        if not isinstance(res, (tuple, list)) or len(res) != 2:
            raise _Fail(f"expected a pair (out, new_valid), got {type(res).__name__}"
                        + (f" of length {len(res)}" if isinstance(res, (tuple, list)) else ""))
        out, new_valid = res
        if not isinstance(out, torch.Tensor):
            raise _Fail(f"out must be a torch.Tensor, got {type(out).__name__}")
        return out, new_valid

    def one_channel(new_valid: Any, want: tuple[int, int, int]) -> torch.Tensor:
        """The student's new_valid as ``(B, 1, H', W')`` float (``C_out`` equal channels accepted)."""
        n, h, w = want
        if not isinstance(new_valid, torch.Tensor):
            raise _Fail(f"new_valid must be a torch.Tensor, got {type(new_valid).__name__}")
        if new_valid.ndim != 4 or new_valid.shape[0] != n or tuple(new_valid.shape[-2:]) != (h, w) \
                or new_valid.shape[1] not in (1, c_out):
            raise _Fail(f"new_valid must have shape ({n}, 1, {h}, {w}) (or ({n}, {c_out}, {h}, {w}), one copy per "
                        f"output channel), got {tuple(new_valid.shape)}")
        nv = new_valid.detach().float()
        if not torch.equal(nv, nv[:, :1].expand_as(nv)):
            raise _Fail("new_valid's channels differ: the updated mask is the same for every output channel "
                        "(sum(M) counts the whole window, all input channels)")
        return nv[:, :1]

    def compare(out: torch.Tensor, expected: torch.Tensor, what: str, x, valid, weight, bias, stride, padding) -> None:
        got = out.detach().float()
        if got.shape != expected.shape:
            raise _Fail(f"{what}: out has shape {tuple(got.shape)}, expected {tuple(expected.shape)}")
        if not bool(torch.isfinite(got).all()):
            raise _Fail(f"{what}: out holds NaN or inf: where sum(M) = 0 the ratio sum(1)/sum(M) divides by zero; set "
                        f"it to 0 there (torch.where(count > 0, window / count.clamp(min=1), 0))")
        if not torch.allclose(got, expected, atol=atol, rtol=rtol):
            err = float((got - expected).abs().max())
            p = weight.shape[-1] // 2 if padding is None else padding
            raise _Fail(f"{what}: out differs from the expected output by up to {err:.3g} (allowed atol {atol:g}, rtol "
                        f"{rtol:g})." + _which_variant(got, _partial_conv_mistakes(x, valid, weight, bias, stride, p),
                                                       atol=atol, rtol=1e-4))

    def compare_mask(new_valid: Any, expected: torch.Tensor, what: str, valid, k, stride, padding) -> None:
        nv = one_channel(new_valid, (expected.shape[0], *expected.shape[-2:]))
        if not torch.equal(nv, expected):
            p = k // 2 if padding is None else padding
            wrong = int((nv != expected).sum())
            raise _Fail(f"{what}: new_valid differs from the expected mask at {wrong} of {nv.numel()} positions "
                        f"(1 where the window sees at least one known element, sum(M) > 0)."
                        + _which_variant(nv, _mask_update_mistakes(valid, k, stride, p)))

    def t_shapes():
        for h, w, k, stride, padding in ((12, 12, 3, 1, None), (11, 13, 3, 2, None), (12, 12, 5, 2, None),
                                         (12, 12, 3, 1, 0)):
            x = torch.randn(b, c_in, h, w, generator=gen)
            weight, bias = params(k)
            out, new_valid = run(x, _random_valid(b, 1, h, w, gen), weight, bias, stride, padding)
            p = k // 2 if padding is None else padding
            oh, ow = _out_side(h, k, stride, p), _out_side(w, k, stride, p)
            what = f"kernel_size={k}, stride={stride}, padding={'default' if padding is None else padding} on {h}x{w}"
            if tuple(out.shape) != (b, c_out, oh, ow):
                hint = ""
                if tuple(out.shape[-2:]) == (_out_side(h, k, stride, 0), _out_side(w, k, stride, 0)):
                    hint = " That is the size without padding: pad by `padding` (default k // 2)."
                raise _Fail(f"{what}: out must have shape {(b, c_out, oh, ow)} (B, C_out, H', W'), got "
                            f"{tuple(out.shape)}.{hint}")
            if out.dtype != x.dtype:
                raise _Fail(f"out must have x's dtype {x.dtype}, got {out.dtype}")
            one_channel(new_valid, (b, oh, ow))

    def reference_tests(with_bias: bool) -> None:
        for channels, stride, k in ((1, 1, 3), (c_in, 2, 3), (1, 2, 5), (c_in, 1, 5)):
            x = torch.randn(b, c_in, size, size, generator=gen)
            valid = _random_valid(b, channels, size, size, gen)
            weight, bias = params(k, with_bias)
            copies = x.clone(), valid.clone(), weight.clone()
            out, new_valid = run(x, valid, weight, bias, stride)
            for name, before, after in zip(("x", "valid", "weight"), copies, (x, valid, weight)):
                _unchanged(name, before, after)
            ref_out, ref_valid = _reference_partial_conv(x, valid, weight, bias, stride)
            what = (f"random x and masks, a different hole per sample (valid {tuple(valid.shape)}, kernel_size={k}, "
                    f"stride={stride}, bias {'on' if with_bias else 'off'})")
            compare(out, ref_out, what, x, valid, weight, bias, stride, None)
            compare_mask(new_valid, ref_valid, what, valid, k, stride, None)

    def t_reference_bias():
        reference_tests(True)

    def t_reference_no_bias():
        reference_tests(False)

    def t_fully_known():
        for stride in (1, 2):
            k = 3
            x = torch.randn(b, c_in, size, size, generator=gen)
            valid = torch.ones(b, 1, size, size)
            weight, bias = params(k)
            out, new_valid = run(x, valid, weight, bias, stride)
            plain = F.conv2d(x, weight, bias, stride=stride, padding=k // 2)
            if tuple(out.shape) != tuple(plain.shape):
                raise _Fail(f"out has shape {tuple(out.shape)}, expected {tuple(plain.shape)} (see the shape test)")
            inner = F.conv2d(torch.ones(1, 1, size, size), torch.ones(1, 1, k, k), stride=stride,
                             padding=k // 2)[0, 0] == k * k                       # windows inside the image
            got = out.detach().float()[..., inner]
            if not torch.allclose(got, plain[..., inner], atol=atol, rtol=rtol):
                err = float((got - plain[..., inner]).abs().max())
                raise _Fail(f"a fully known input (valid = 1 everywhere, stride {stride}): away from the border, where "
                            f"the whole window lies inside the image, sum(M) = sum(1) and out must be F.conv2d(x, "
                            f"weight, bias) (the border is not tested here: its padding counts as unknown, so the "
                            f"ratio exceeds 1 there); it differs by up to {err:.3g}."
                            + _which_variant(out, _partial_conv_mistakes(x, valid, weight, bias, stride, k // 2),
                                             atol=atol, rtol=1e-4))
            nv = one_channel(new_valid, (b, *plain.shape[-2:]))
            if not bool((nv == 1).all()):
                raise _Fail(f"a fully known input (stride {stride}): new_valid must be 1 everywhere (every window, "
                            f"even at the border, sees known pixels), found {int((nv != 1).sum())} zeros")

    def t_empty_window():
        x = torch.randn(1, c_in, 16, 16, generator=gen) * 10.0                    # large values in the hole too
        valid = torch.ones(1, 1, 16, 16)
        valid[..., 3:13, 3:13] = 0.0                                              # a 10x10 hole
        weight, _ = params(3)
        bias = torch.linspace(0.5, 2.0, c_out)                                    # non-zero
        out, new_valid = run(x, valid, weight, bias)
        what = ("a 10x10 hole and kernel_size=3: the windows centred on its 8x8 interior see no known pixel, "
                "so there out must be 0 (no bias: eq. 1) and new_valid 0")
        if tuple(out.shape) != (1, c_out, 16, 16):
            raise _Fail(f"out has shape {tuple(out.shape)}, expected {(1, c_out, 16, 16)} (see the shape test)")
        got = out.detach().float()
        if not bool(torch.isfinite(got).all()):
            raise _Fail(f"{what}; out holds NaN or inf: sum(1)/sum(M) divides by zero where sum(M) = 0, set the ratio "
                        f"to 0 there (torch.where(count > 0, window / count.clamp(min=1), 0))")
        interior = got[..., 4:12, 4:12]
        if float(interior.abs().max()) > atol:
            hint = _which_variant(out, _partial_conv_mistakes(x, valid, weight, bias, 1, 1), atol=atol, rtol=1e-4)
            if not hint and torch.allclose(interior, bias.view(1, -1, 1, 1).expand_as(interior), atol=1e-4):
                hint = f" Your output there is the bias: {_PC_BIAS_EVERYWHERE}."
            raise _Fail(f"{what}; found values up to {float(interior.abs().max()):.3g}.{hint}")
        expected = torch.ones(1, 1, 16, 16)
        expected[..., 4:12, 4:12] = 0.0
        compare_mask(new_valid, expected, what, valid, 3, 1, None)

    def t_gradient():
        x = torch.randn(b, c_in, size, size, generator=gen).requires_grad_(True)
        valid = _random_valid(b, 1, size, size, gen)
        weight, bias = params(3)
        weight.requires_grad_(True)
        bias.requires_grad_(True)
        out, _ = run(x, valid, weight, bias)
        if not out.requires_grad:
            raise _Fail("no gradient reaches x or weight: the partial convolution is a layer of the network, trained "
                        "end to end (keep every step a torch operation on x and weight, no .detach() / numpy)")
        out.square().sum().backward()
        for name, t in (("x", x), ("weight", weight), ("bias", bias)):
            if t.grad is not None and not bool(torch.isfinite(t.grad).all()):
                raise _Fail(f"{name}'s gradient holds NaN or inf: a division by sum(M) = 0 (even one that torch.where "
                            f"discards afterwards) poisons the backward pass; divide by count.clamp(min=1) and set "
                            f"the ratio to 0 where count = 0")
            if t.grad is None or not bool(t.grad.abs().sum() > 0):
                raise _Fail(f"{name} gets no gradient")
        unknown = (valid == 0).expand_as(x)
        if bool(x.grad[unknown].abs().max() > 0):
            raise _Fail("x's gradient is non-zero on unknown pixels (valid = 0): their values reach the output; "
                        "multiply x by valid before the convolution")

    return _run("partial_conv", fn, [
        ("returns (out, new_valid) of the right shapes", t_shapes),
        ("matches PartialConv2d with a bias (stride 1 and 2, 1 and C_in mask channels)", t_reference_bias),
        ("matches PartialConv2d without a bias", t_reference_no_bias),
        ("fully known input: F.conv2d's output away from the border", t_fully_known),
        ("a window that sees no known pixel gives 0 and new_valid 0", t_empty_window),
        ("gradients reach x (not its unknown pixels), weight and bias", t_gradient),
    ], strict)
