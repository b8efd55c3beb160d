"""Notebook 05's graded exercise (DeepFill v1's contextual attention): :func:`check_contextual_attention`,
against ``inpaint_utils.models.deepfill.contextual_attention``.
"""
from __future__ import annotations

from typing import Any, Callable

import torch
import torch.nn.functional as F

from .runner import CheckResult, _call, _Fail, _reference, _run

__all__ = ["check_contextual_attention"]


# --------------------------------------------------------------------------------------------------
# check_contextual_attention
# --------------------------------------------------------------------------------------------------
def _valid_patch_map(mask: torch.Tensor, rate: int, ksize: int) -> torch.Tensor:
    """``(B, h, w)`` bool: background patches (ksize x ksize at 1 / rate resolution) with no hole pixel.

    The mask is downsampled by max-pooling (a block with any hole pixel is hole); the masks of the
    synthetic tests are constant on ``rate x rate`` blocks, so nearest-neighbour sampling gives the same map.
    """
    low = F.max_pool2d(mask, rate) if rate > 1 else mask                         # (B, 1, h, w)
    touched = F.max_pool2d(low, ksize, stride=1, padding=ksize // 2)            # 1 where the patch meets the hole
    return touched[:, 0] == 0


def check_contextual_attention(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-4,
                               rtol: float = 1e-3) -> CheckResult:
    """Grade ``contextual_attention(foreground, background, mask, *, ksize=3, stride=1, rate=2, fuse_k=3,
    softmax_scale=10.0) -> (output, offsets)`` (DeepFill v1, Yu et al. 2018): ``foreground`` and
    ``background`` features ``(B, C, H, W)``, ``mask`` ``(B, 1, H, W)`` (1 = hole, one per sample);
    ``output`` the shape and dtype of ``foreground``; ``offsets`` ``(B, 2, H // rate, W // rate)`` int64,
    ``(dy, dx)`` from each position to its most attended background patch, at ``1 / rate`` resolution.

    Tests: shapes and dtypes; output and offsets against ``inpaint_utils.models.deepfill.contextual_attention``
    on random features with a different hole per sample (``atol`` / ``rtol``; offsets may differ at 1 %
    of positions, ties); a synthetic scene whose hole holds an exact copy of a known region (the offsets
    must point at it, the output must paste it); and, with ``foreground = background`` (the network's
    use), no position may attend to a patch that touches the hole. A mismatch is diagnosed by running
    the reference without masking, with ``softmax_scale=1`` and without attention propagation.
    """
    b, c, hs, ws = 2, 8, 32, 32
    rate, ksize = 2, 3
    gen = torch.Generator().manual_seed(2018)

    def run(f, bg, m, **kwargs):
        out = _call(fn, f, bg, m, **kwargs)
        if not isinstance(out, (tuple, list)) or len(out) != 2:
            raise _Fail(f"expected a pair (output, offsets), got {type(out).__name__}"
                        + (f" of length {len(out)}" if isinstance(out, (tuple, list)) else ""))
        return out

    def block_mask(top: int, left: int, side: int, batch: int = 1, h: int = hs, w: int = ws) -> torch.Tensor:
        m = torch.zeros(batch, 1, h, w)
        m[..., top:top + side, left:left + side] = 1.0
        return m

    def random_case():
        fg = torch.randn(b, c, hs, ws, generator=gen)
        bg = torch.randn(b, c, hs, ws, generator=gen)
        mask = torch.cat([block_mask(8, 8, 12), block_mask(14, 4, 10)])             # a different hole per sample
        return fg, bg, mask

    case = random_case()

    def t_shapes():
        fg, bg, mask = case
        output, offsets = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or output.shape != fg.shape:
            raise _Fail(f"output must have the foreground's shape {tuple(fg.shape)}, got "
                        f"{tuple(output.shape) if isinstance(output, torch.Tensor) else type(output).__name__} "
                        f"(paste the attended raw background patches back at full resolution with a transposed "
                        f"convolution, stride = rate)")
        if output.dtype != fg.dtype:
            raise _Fail(f"output must have the foreground's dtype {fg.dtype}, got {output.dtype}")
        want = (b, 2, hs // rate, ws // rate)
        if not isinstance(offsets, torch.Tensor) or tuple(offsets.shape) != want:
            raise _Fail(f"offsets must have shape {want} (B, 2 = (dy, dx), H // rate, W // rate), got "
                        f"{tuple(offsets.shape) if isinstance(offsets, torch.Tensor) else type(offsets).__name__}")
        if offsets.dtype != torch.int64:
            raise _Fail(f"offsets must be int64 (whole patch positions, e.g. from argmax), got {offsets.dtype}")

    def diagnose(fg, bg, mask, output) -> str:
        """Which known mistake the student's output matches, by running the reference with it."""
        reference = _reference("models.deepfill", "contextual_attention")
        variants = {
            "the reference WITHOUT the mask: the scores of background patches that touch the hole must be "
            "excluded (multiply by the patch-validity map before and after the softmax, or set them to -inf)":
                lambda: reference(fg, bg, torch.zeros_like(mask)),
            "the reference with softmax_scale=1: multiply the cosine similarities by softmax_scale (10) before "
            "the softmax, which makes the attention nearly one-hot":
                lambda: reference(fg, bg, mask, softmax_scale=1.0),
            "the reference without attention propagation (fuse_k=1): convolve the score map with a fuse_k x "
            "fuse_k identity kernel, left-right then top-down":
                lambda: reference(fg, bg, mask, fuse_k=1),
            "sample 0's mask used for the whole batch: each sample has its own mask (DeepFill v1 assumed one "
            "mask per batch; the course's version does not)":
                lambda: reference(fg, bg, mask[:1].expand_as(mask)),
        }
        for why, make in variants.items():
            try:
                other, _ = make()
            except Exception:  # noqa: BLE001 - a variant the reference refuses is simply not a diagnosis
                continue
            if other.shape == output.shape and torch.allclose(output, other, atol=atol, rtol=rtol):
                return f" Your output matches {why}."
        return ""

    def t_reference():
        fg, bg, mask = case
        reference = _reference("models.deepfill", "contextual_attention")
        ref_out, ref_off = reference(fg, bg, mask)
        output, offsets = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or output.shape != ref_out.shape:
            raise _Fail("output shape differs from the reference's (see the shape test)")
        if not torch.allclose(output.detach().float(), ref_out.float(), atol=atol, rtol=rtol):
            err = float((output.detach().float() - ref_out.float()).abs().max())
            raise _Fail(f"random features, a different hole per sample: output differs from the reference by up to "
                        f"{err:.3g} (allowed atol {atol:g}, rtol {rtol:g})." + diagnose(fg, bg, mask, output.detach()))
        if not isinstance(offsets, torch.Tensor) or offsets.shape != ref_off.shape:
            raise _Fail("offsets shape differs from the reference's (see the shape test)")
        agree = float((offsets.long() == ref_off.long()).all(dim=1).float().mean())
        if agree < 0.99:
            raise _Fail(f"offsets agree with the reference at {agree:.1%} of positions (need 99 %): offsets are "
                        f"(dy, dx) = (attended row - own row, attended column - own column) at 1 / rate resolution, "
                        f"from the argmax of the attention scores")

    def known_patch_case():
        # Designed at 1 / rate resolution (16 x 16) and upsampled by repetition, so the downsampling inside
        # the function sees exactly this design whatever its phase. The hole (rows / cols 2..5) of the
        # foreground holds an exact copy of the known region 7 rows and 7 columns further (rows / cols 9..12).
        h, w = hs // rate, ws // rate
        low_bg = torch.randn(1, c, h, w, generator=gen)
        low_fg = torch.randn(1, c, h, w, generator=gen)
        shift = 7
        low_fg[..., 1:7, 1:7] = low_bg[..., 1 + shift:7 + shift, 1 + shift:7 + shift]   # the hole and a 1-px ring
        up = lambda x: x.repeat_interleave(rate, dim=-2).repeat_interleave(rate, dim=-1)  # noqa: E731
        mask = block_mask(2 * rate, 2 * rate, 4 * rate)
        return up(low_fg), up(low_bg), mask, shift

    def t_known_patch():
        fg, bg, mask, shift = known_patch_case()
        output, offsets = run(fg, bg, mask)
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 4 or offsets.shape[1] != 2:
            raise _Fail("offsets must be a (B, 2, H // rate, W // rate) tensor (see the shape test)")
        got = offsets[0, :, 2:6, 2:6].reshape(2, -1).long()                      # the 16 hole positions
        right = (got == shift).all(dim=0)
        if not bool(right.all()):
            sample = got[:, (~right).nonzero()[0, 0]].tolist()
            hint = ""
            if sample == [-shift, -shift]:
                hint = " The sign is flipped: offset = attended position - own position."
            elif sample == [rate * shift, rate * shift]:
                hint = f" That is in full-resolution pixels: give offsets at 1 / rate resolution ({shift}, {shift})."
            elif sample == [0, 0]:
                hint = " Hole positions attend to themselves: exclude background patches that touch the hole."
            raise _Fail(f"the hole holds an exact copy of the known region {shift} rows and {shift} columns away: "
                        f"every hole position should point there, offset ({shift}, {shift}); {int((~right).sum())} "
                        f"of 16 do not (e.g. {tuple(sample)}).{hint}")
        core = slice(3 * rate, 5 * rate)                                          # full-res pixels fed by hole patches only
        src = slice(3 * rate + rate * shift, 5 * rate + rate * shift)
        pasted, expected = output[0, :, core, core].detach(), bg[0, :, src, src]
        if not torch.allclose(pasted, expected, atol=1e-2, rtol=1e-2):
            raise _Fail(f"the offsets are right but the output in the hole is not the copied background (max error "
                        f"{float((pasted - expected).abs().max()):.3g}): either the attention is spread over many "
                        f"patches (is the similarity multiplied by softmax_scale = 10 before the softmax?) or the "
                        f"paste is off (the full-resolution background patches weighted by the attention, put back "
                        f"with a transposed convolution of stride rate and divided by the overlap count)")

    def t_hole_not_attended():
        fg = torch.randn(b, c, hs, ws, generator=gen)
        mask = torch.cat([block_mask(8, 8, 12), block_mask(14, 4, 10)])
        _, offsets = run(fg, fg.clone(), mask)                                    # foreground = background
        if not isinstance(offsets, torch.Tensor) or offsets.ndim != 4 or offsets.shape[1] != 2:
            raise _Fail("offsets must be a (B, 2, H // rate, W // rate) tensor (see the shape test)")
        valid = _valid_patch_map(mask, rate, ksize)                               # (B, h, w)
        h, w = valid.shape[-2:]
        rows = torch.arange(h).view(1, h, 1) + offsets[:, 0].long()
        cols = torch.arange(w).view(1, 1, w) + offsets[:, 1].long()
        inside = (rows >= 0) & (rows < h) & (cols >= 0) & (cols < w)
        if not bool(inside.all()):
            raise _Fail(f"{int((~inside).sum())} offsets point outside the image")
        batch = torch.arange(offsets.shape[0]).view(-1, 1, 1).expand_as(rows)
        ok = valid[batch, rows, cols]
        hole = mask[:, 0, ::rate, ::rate] > 0                                     # (B, h, w): hole positions
        if not bool(ok.all()):
            raise _Fail(f"with foreground = background, {int((~ok).sum())} of {ok.numel()} positions "
                        f"({int((~ok & hole).sum())} of them in the hole) attend to a background patch that "
                        f"touches the hole: the attention must only use known background (mask the scores of "
                        f"patches containing a hole pixel, before and after the softmax)")

    def t_gradient():
        fg, bg, mask = (x.clone() for x in case)
        fg.requires_grad_(True)
        bg.requires_grad_(True)
        output, _ = run(fg, bg, mask)
        if not isinstance(output, torch.Tensor) or not output.requires_grad:
            raise _Fail("no gradient reaches the features: contextual attention sits inside the network and is "
                        "trained end to end (keep every step a torch operation, no .detach() / numpy)")
        output.square().sum().backward()
        for name, x in (("foreground", fg), ("background", bg)):
            if x.grad is None or not bool(x.grad.abs().sum() > 0):
                raise _Fail(f"the {name} gets no gradient")

    return _run("contextual_attention", fn, [
        ("returns (output, offsets) of the right shapes and dtypes", t_shapes),
        ("matches the reference on random features", t_reference),
        ("known patch: offsets point at the copy, output pastes it", t_known_patch),
        ("never attends to patches in the hole", t_hole_not_attended),
        ("gradients reach foreground and background", t_gradient),
    ], strict)

