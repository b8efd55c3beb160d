"""Speed of the batched contextual attention layer (notebook 05) against a per-sample loop.

``inpaint_utils.models.deepfill.contextual_attention`` handles the whole batch with ``unfold`` / ``bmm`` /
``fold`` and one mask per sample. The usual port of the TensorFlow v1 layer loops over the samples, and for
each one uses its background patches as ``conv2d`` filters and pastes them back with ``conv_transpose2d``;
that formulation is written below (:func:`loop_contextual_attention`, same maths, checked against ours
before timing). Both run on the features of DeepFill's attention branch for a 256x256 input: 64x64 maps
with 128 channels (``4 * cnum``, ``cnum`` 32), ``rate`` 2 (matching on 32x32: 1024 x 1024 scores per
sample), ``ksize`` 3, ``fuse_k`` 3, random square holes of a quarter of the map, one per sample.

Prints one table: milliseconds of a forward pass and of forward + backward (gradients to both inputs),
medians of ``--repeat`` runs after one warm-up, for batch 1, 8 and 16, on the CPU and, when there is one,
on CUDA (bracketed by ``torch.cuda.synchronize()``), and the speed-up of the batched layer; beside the batched
forward, its achieved GFLOP/s (the matrix products torch counts, :func:`inpaint_utils.report.counted_flops`,
over its median time) and its share of the device's float32 matrix-product peak measured in the same run
(:func:`inpaint_utils.report.matmul_peak_gflops`, printed above the table).

What to expect: both formulations do the same two large matrix products per sample (matching: 1024 x 1152 by
1152 x 1024, 2.4 GFLOP; pasting: 4608 x 1024 by 1024 x 1024, 9.7 GFLOP), and on a CPU these dominate (a
profile of the batched layer shows about two thirds of its time in ``bmm``), so batching saves little there:
the loop's per-sample overhead is small next to 12 GFLOP. The batched layer pays off where the per-sample
cost is launch overhead and under-filled kernels: small feature maps, and GPUs.

Since issue 23 the library's layer (stride 1) does those sums with a C-deep product of the pixels and one
product per phase (0.27 + 1.07 GFLOP a sample instead of 2.4 + 9.7), and the diagonal sums in place; the
"before" columns time the previous batched formulation (:func:`patch_contextual_attention`) and
``max_diff_vs_before`` checks the two agree on the timed inputs. Measured 2026-12-08, ``--device cpu --threads 1
--batches 8 --repeat 1``, the 2-core AMD EPYC shared with other jobs (load 5-6): forward 1678 ms against
7222 ms before (4.3x; 2.6x against the 4409 ms of a run an hour earlier), forward + backward 7110 against
19566 ms (2.8x), max |diff| 1.2e-06, offsets equal; the layer now reaches 22 % of the matmul peak (the rest:
the clones and copies of the 8 x 1024 x 1024 score tensors, ``torch.profiler``). Again with ``--repeat 3`` on a
2-core AMD EPYC with AVX-512, nothing else running (peak 111.6 GFLOP/s): forward 359 ms against 1193 ms before
(3.3x), forward + backward 1044 against 4021 ms (3.9x), 27 % of the peak, max |diff| 1.2e-06, offsets equal.
Run from the checkout::

    .venv/bin/python benchmarks/bench_contextual_attention.py                     # CPU (+ CUDA if present)
    .venv/bin/python benchmarks/bench_contextual_attention.py --threads 1 --batches 1 8 --repeat 1
"""
from __future__ import annotations

import argparse

import torch
import torch.nn.functional as F

from inpaint_utils import report
from inpaint_utils.masks import make_mask
from inpaint_utils.models.deepfill import contextual_attention


def loop_contextual_attention(fg: torch.Tensor, bg: torch.Tensor, mask: torch.Tensor, ksize: int = 3,
                              stride: int = 1, rate: int = 2, fuse_k: int = 3,
                              softmax_scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The per-sample formulation (the TF v1 layer and its PyTorch port, with our per-sample masks):
    for each sample, background patches as ``conv2d`` filters, propagation as an identity-kernel
    ``conv2d`` on the score planes, softmax, paste with ``conv_transpose2d``."""
    p, q, k_raw = ksize // 2, fuse_k // 2, rate * ksize
    outs, offs = [], []
    eye = torch.eye(fuse_k, dtype=fg.dtype, device=fg.device).view(1, 1, fuse_k, fuse_k)
    count = None
    for i in range(fg.shape[0]):
        f = fg[i:i + 1, :, ::rate, ::rate]                                              # (1, C, h, w)
        b = bg[i:i + 1, :, ::rate, ::rate]
        m = F.max_pool2d(mask[i:i + 1], rate)
        c, h, w = f.shape[1:]
        hb, wb = (h - 1) // stride + 1, (w - 1) // stride + 1
        filt = F.unfold(b, ksize, padding=p, stride=stride)[0].T.reshape(-1, c, ksize, ksize)   # (L, C, k, k)
        filt = filt / filt.flatten(1).square().sum(dim=1).clamp_min(1e-8).sqrt().view(-1, 1, 1, 1)
        n_f = F.conv2d(f.square(), torch.ones(1, c, ksize, ksize, dtype=f.dtype, device=f.device),
                       padding=p).clamp_min(1e-8).sqrt()                               # (1, 1, h, w)
        s = F.conv2d(f, filt, padding=p) / n_f                                          # (1, L, h, w)
        valid = (F.unfold(m, ksize, padding=p, stride=stride)[0].amax(dim=0) == 0)      # (L,)
        s = s * valid.view(1, -1, 1, 1)
        if fuse_k > 1:                                                                  # planes (x, x'), (y, y')
            s = s.view(hb, wb, h, w).permute(0, 2, 3, 1).reshape(hb * h, 1, w, wb)     # (hb h, 1, w, wb)
            s = F.conv2d(s, eye, padding=q)
            s = s.view(hb, h, w, wb).permute(2, 3, 1, 0).reshape(w * wb, 1, h, hb)     # (w wb, 1, h, hb)
            s = F.conv2d(s, eye, padding=q)
            s = s.view(w, wb, h, hb).permute(3, 1, 2, 0).reshape(1, hb * wb, h, w)     # (1, L, h, w)
        logits = (s * softmax_scale).masked_fill(~valid.view(1, -1, 1, 1), torch.finfo(s.dtype).min)
        attn = torch.softmax(logits, dim=1) * valid.view(1, -1, 1, 1)
        raw = F.unfold(bg[i:i + 1], k_raw, padding=rate * p, stride=rate * stride)[0].T.reshape(-1, c, k_raw, k_raw)
        out = F.conv_transpose2d(attn, raw, stride=rate, padding=rate * p)
        if count is None:
            count = F.conv_transpose2d(torch.ones(1, 1, h, w, dtype=fg.dtype, device=fg.device),
                                       torch.ones(1, 1, k_raw, k_raw, dtype=fg.dtype, device=fg.device),
                                       stride=rate, padding=rate * p)
        outs.append(out / count)
        idx = attn.argmax(dim=1)[0]                                                     # (h, w)
        ys = torch.arange(h, device=fg.device).view(h, 1)
        xs = torch.arange(w, device=fg.device).view(1, w)
        off = torch.stack([(idx // wb) * stride - ys, (idx % wb) * stride - xs]) * valid.any()
        offs.append(off)
    return torch.cat(outs), torch.stack(offs)


def patch_contextual_attention(fg: torch.Tensor, bg: torch.Tensor, mask: torch.Tensor, ksize: int = 3,
                               rate: int = 2, fuse_k: int = 3,
                               softmax_scale: float = 10.0) -> tuple[torch.Tensor, torch.Tensor]:
    """The batched layer as it was before issue 23 (stride 1): matching by a (C k k)-deep product of the
    unfolded, normalised patches; paste by a (C K K) x L product of the unfolded full-resolution patches,
    folded back. The library's layer now does the same maths with a C-deep product of the pixels and one
    product per phase (9x fewer multiply-adds each at ksize 3); this is the "before" it is timed and checked
    against."""
    p, q, k_raw = ksize // 2, fuse_k // 2, rate * ksize
    f, b = fg[:, :, ::rate, ::rate], bg[:, :, ::rate, ::rate]
    hole = F.max_pool2d(mask, rate)
    bsz, c, h, w = f.shape

    def normalised(patches):
        return patches / patches.square().sum(dim=1, keepdim=True).clamp_min(1e-8).sqrt()

    scores = torch.bmm(normalised(F.unfold(f, ksize, padding=p)).transpose(1, 2),
                       normalised(F.unfold(b, ksize, padding=p)))                    # (B, h w, L)
    valid = F.unfold(hole, ksize, padding=p).amax(dim=1) == 0                         # (B, L)
    scores = scores * valid[:, None, :]
    s = F.pad(scores.view(bsz, h, w, h, w).permute(0, 1, 3, 2, 4), (q, q, q, q))
    s = F.pad(sum(s[..., i:i + w, i:i + w] for i in range(fuse_k)).permute(0, 3, 4, 1, 2), (q, q, q, q))
    scores = sum(s[..., i:i + h, i:i + h] for i in range(fuse_k)).permute(0, 3, 1, 4, 2).reshape(bsz, h * w, h * w)
    logits = (scores * softmax_scale).masked_fill(~valid[:, None, :], torch.finfo(scores.dtype).min)
    attn = torch.softmax(logits, dim=2) * valid[:, None, :]
    raw = F.unfold(bg, k_raw, padding=rate * p, stride=rate)                          # (B, C K K, L)
    out = F.fold(torch.bmm(raw, attn.transpose(1, 2)), bg.shape[-2:], k_raw, padding=rate * p, stride=rate)
    count = F.fold(torch.ones(1, k_raw * k_raw, h * w, dtype=bg.dtype, device=bg.device), bg.shape[-2:], k_raw,
                   padding=rate * p, stride=rate)
    idx = attn.argmax(dim=2)
    ys, xs = torch.arange(h, device=idx.device).repeat_interleave(w), torch.arange(w, device=idx.device).repeat(h)
    offsets = torch.stack([idx // w - ys, idx % w - xs], dim=1).view(bsz, 2, h, w) * valid.any(dim=1).view(bsz, 1, 1, 1)
    return out / count, offsets


def _inputs(batch: int, channels: int, size: int, device: torch.device, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    fg = torch.randn(batch, channels, size, size, generator=g).relu().to(device)       # ReLU features (pmconv6)
    mask = make_mask("square", size, 0.25, batch=batch, generator=g).to(device)      # one hole per sample
    return fg, mask


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", nargs="+", default=None, help="devices (default: cpu, and cuda if present)")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads on the CPU")
    parser.add_argument("--batches", type=int, nargs="+", default=[1, 8, 16])
    parser.add_argument("--channels", type=int, default=128, help="feature channels (4 * cnum = 128 in v1)")
    parser.add_argument("--size", type=int, default=64, help="feature side (64: a 256 input at 1/4)")
    parser.add_argument("--repeat", type=int, default=None, help="timed runs (median; default 1 on CPU, 5 on CUDA)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    devices = args.device or (["cpu"] + (["cuda"] if torch.cuda.is_available() else []))

    # the two formulations agree before anything is timed
    fg, mask = _inputs(3, 8, 16, torch.device("cpu"))
    ours, our_off = contextual_attention(fg, fg, mask)
    ref, ref_off = loop_contextual_attention(fg, fg, mask)
    diff = float((ours - ref).abs().max())
    assert diff < 1e-4 and torch.equal(our_off, ref_off), diff
    print(f"check: batched vs loop, max |diff| {diff:.2e}, offsets equal")
    before, before_off = patch_contextual_attention(fg, fg, mask)
    diff = float((ours - before).abs().max())
    assert diff < 1e-5 and torch.equal(our_off, before_off), diff
    print(f"check: batched vs before (the patch products used until issue 23), max |diff| {diff:.2e}, offsets equal")

    rows, peaks = [], {}
    for name in devices:
        device = torch.device(name)
        peaks[name] = report.matmul_peak_gflops(device)
        repeat = args.repeat or (5 if device.type == "cuda" else 1)
        for batch in args.batches:
            fg, mask = _inputs(batch, args.channels, args.size, device, seed=batch)
            row = {"device": name if device.type == "cpu" else torch.cuda.get_device_name(device), "batch": batch}
            with torch.no_grad():                   # today's layer against the one before, on the timed inputs
                ours, our_off = contextual_attention(fg, fg, mask)
                before, before_off = patch_contextual_attention(fg, fg, mask)
            row["max_diff_vs_before"] = f"{float((ours - before).abs().max()):.1e}"
            row["offsets_equal"] = bool(torch.equal(our_off, before_off))
            del ours, before
            for label, fn in (("batched", contextual_attention), ("before", patch_contextual_attention),
                              ("loop", loop_contextual_attention)):
                def forward():
                    with torch.no_grad():
                        return fn(fg, fg, mask)

                def forward_backward():
                    x = fg.detach().requires_grad_(True)
                    out, _ = fn(x, x, mask)
                    out.sum().backward()

                row[f"{label}_fwd_ms"] = 1000 * report.median_seconds(forward, repeat, device)
                row[f"{label}_fwd_bwd_ms"] = 1000 * report.median_seconds(forward_backward, repeat, device)
                if label == "batched":
                    row["fwd_GFLOP/s"] = report.counted_flops(forward) / row["batched_fwd_ms"] / 1e6
                    row["% of peak"] = 100 * row["fwd_GFLOP/s"] / peaks[name]
            row["vs_before_fwd"] = row["before_fwd_ms"] / row["batched_fwd_ms"]
            row["vs_before_fwd_bwd"] = row["before_fwd_bwd_ms"] / row["batched_fwd_bwd_ms"]
            row["speedup_fwd"] = row["loop_fwd_ms"] / row["batched_fwd_ms"]
            row["speedup_fwd_bwd"] = row["loop_fwd_bwd_ms"] / row["batched_fwd_bwd_ms"]
            rows.append(row)
            print(report.format_table([row], digits=1), flush=True)
    print()
    print(f"contextual attention, {args.channels} x {args.size} x {args.size} features, rate 2, ksize 3, fuse_k 3; "
          f"{report.hardware()}, threads {torch.get_num_threads()}")
    print("float32 matmul peak, measured in this run (2048 x 2048 torch.mm): "
          + ", ".join(f"{name} {peak:.1f} GFLOP/s" for name, peak in peaks.items()))
    print(report.format_table(rows, ["device", "batch", "batched_fwd_ms", "fwd_GFLOP/s", "% of peak",
                                     "before_fwd_ms", "vs_before_fwd", "before_fwd_bwd_ms", "vs_before_fwd_bwd",
                                     "max_diff_vs_before", "offsets_equal", "loop_fwd_ms", "speedup_fwd",
                                     "batched_fwd_bwd_ms", "loop_fwd_bwd_ms", "speedup_fwd_bwd"], digits=1))


if __name__ == "__main__":
    main()
