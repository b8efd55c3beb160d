"""Speed of the Context Encoder (notebook 02) and the cascade CE with NSD (notebook 03, the cascade CE paper).

Prints one table: inference milliseconds per image at batch 1 and 64 (``predict_full``: input, network,
composite), training images per second (``ContextEncoderTask`` / ``CascadeTask`` steps: discriminator and
generator updates), for the authors' 128x128 centre CE and a narrow one (notebook 03's smoke widths), and
the wall time of NSD at the paper's setting (k = 250 images x n = 100 masks, 128x128) for the plain CE
and the cascade. Medians of ``--repeat`` runs after one warm-up; on CUDA every timing is bracketed by
``torch.cuda.synchronize()`` and training uses bf16 autocast, as the training loop does.

On a CPU the paper's NSD (25,000 encoder passes) is **estimated**: it runs ``--nsd-sample-k`` images with
all ``n`` masks and scales the time by ``k / nsd-sample-k`` (NSD's cost is linear in the number of pairs);
the table says so. ``--nsd-sample-k 0`` (the default on a GPU) measures the whole run.

Beside each inference and training row: the achieved GFLOP/s (the FLOPs torch counts for one call,
:func:`inpaint_utils.report.counted_flops`: convolutions and matrix products, forward and backward, over the
median time) and its share of the machine's float32 matrix-product peak measured at the start of the same run
(:func:`inpaint_utils.report.matmul_peak_gflops`, a 2048 x 2048 ``torch.mm`` with the same threads; printed
above the table). Under bf16 autocast the share is still of the float32 peak.

Measured 2026-12-08 with ``--device cpu --threads 1 --train-steps 1 --repeat 3 --nsd-sample-k 1`` on a 2-core AMD
EPYC with AVX-512 (and AVX512-BF16), nothing else running, two runs: peak 110.4 / 112.7 GFLOP/s; the paper's CE
forward (the network alone, the ``forward`` row) at batch 64 62.4 % of it (70.3 GFLOP/s; 62 % in a separate
interleaved measurement, channels_last 51 %), ``predict_full`` (input, network, composite) 57.8 / 60.7 %, its
training step 55 %; the narrow CE's forward 77 %, its ``predict_full`` 62-65 %.
Where the forward's time goes (``torch.profiler``, batch 64, 628 ms): 57 % in the six oneDNN convolutions of the
encoder and bottleneck (``aten::mkldnn_convolution``), 38 % in the five transposed convolutions of the decoder,
which run in oneDNN too (torch's ``MkldnnTranspose`` backend, booked as ``aten::_convolution``'s own time; with
oneDNN off, PyTorch's ``aten::slow_conv_transpose2d`` is 4.8x slower on the 512 -> 256 layer), BatchNorm,
activations and copies 4 %. Computing the 4x4 / 2 transposed convolutions by output phases as one ordinary
convolution (a 2x2 kernel, 4 C_out channels, then ``pixel_shuffle``: exact to 1e-6) was tried and measured slower
(0.34-0.95x on the three wide layers, 0.92-0.98x on the whole forward; busy machine), so the models keep
``nn.ConvTranspose2d``.

An earlier measurement (the same day, on a Zen 3 EPYC with AVX2 only, shared with other jobs: peak 26.6 GFLOP/s)
gave 22-25 % at batch 64; its profile booked half of the forward to the transposed convolutions as "outside
oneDNN", which was a misreading of ``aten::_convolution``'s own time (above). Run from the checkout::

    .venv/bin/python benchmarks/bench_context_encoder.py                      # GPU when present, else CPU
    .venv/bin/python benchmarks/bench_context_encoder.py --device cpu --threads 1 --train-batch 8 \\
        --train-steps 2 --repeat 2 --nsd-sample-k 1                           # a quick CPU run
"""
from __future__ import annotations

import argparse

import torch

from inpaint_utils import config, masks, metrics, report
from inpaint_utils.models import (
    CascadeConfig,
    CascadeContextEncoder,
    CascadeTask,
    ContextEncoderConfig,
    ContextEncoderDiscriminator,
    ContextEncoderGenerator,
    count_parameters,
)
from inpaint_utils.models.context_encoder import ContextEncoderTask
from inpaint_utils.train import StepContext


def _millions(n: int) -> str:
    return f"{n / 1e6:.2f} M"


def _rate(flops: int, seconds: float, peak: float) -> dict[str, float]:
    """The ``GFLOP/s`` and ``% of peak`` cells of a row: ``flops`` done in ``seconds``, against ``peak``."""
    gflops = flops / seconds / 1e9
    return {"GFLOP/s": gflops, "% of peak": 100 * gflops / peak}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="auto", help="auto (cuda, mps, cpu), cpu, cuda, ...")
    parser.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: torch's)")
    parser.add_argument("--repeat", type=int, default=5, help="timed runs per inference measurement (median)")
    parser.add_argument("--train-batch", type=int, default=64, help="training batch (64: the paper's)")
    parser.add_argument("--train-steps", type=int, default=5, help="timed training steps (median), after one warm-up")
    parser.add_argument("--narrow-base", type=int, default=16, help="base_channels of the narrow CE (03 smoke: 16)")
    parser.add_argument("--narrow-dim", type=int, default=256, help="bottleneck_dim of the narrow CE (03 smoke: 256)")
    parser.add_argument("--k", type=int, default=250, help="NSD images (paper: 250)")
    parser.add_argument("--n", type=int, default=100, help="NSD masks per image (paper: 100)")
    parser.add_argument("--nsd-sample-k", type=int, default=None,
                        help="images actually encoded for NSD; the time is scaled to --k (default: 0 = all on a GPU, "
                             "2 on a CPU)")
    parser.add_argument("--nsd-batch", type=int, default=250, help="NSD encoder batch (pairs per forward pass)")
    parser.add_argument("--amp", choices=("auto", "on", "off"), default="auto",
                        help="bf16 autocast for training steps (auto: on for CUDA, as the training loop)")
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    device = config.get_device(args.device)
    sample_k = args.nsd_sample_k if args.nsd_sample_k is not None else (0 if device.type == "cuda" else 2)
    sample_k = args.k if sample_k <= 0 else min(sample_k, args.k)
    use_amp = args.amp == "on" or (args.amp == "auto" and device.type == "cuda")
    amp_dtype = None
    if use_amp:
        amp_dtype = torch.bfloat16 if device.type != "cuda" or torch.cuda.is_bf16_supported() else torch.float16
        if amp_dtype == torch.float16:
            raise SystemExit("this GPU has no bf16; run with --amp off (fp16 needs the loop's GradScaler)")

    peak = report.matmul_peak_gflops(device)     # the denominator of "% of peak", measured in this run
    g = torch.Generator().manual_seed(0)
    size = 128
    rows = []
    configs = {"paper": ContextEncoderConfig(),
               "narrow": ContextEncoderConfig(base_channels=args.narrow_base, bottleneck_dim=args.narrow_dim)}

    for label, cfg in configs.items():
        G = ContextEncoderGenerator(cfg, seed=0).to(device).eval()
        name = f"CE {label} (G {_millions(count_parameters(G))})"
        hole = G.input_hole_mask(1, device)
        # ---- inference: predict_full (input, network, composite), batch 1 and 64
        for batch in (1, 64):
            image = torch.rand(batch, 3, size, size, generator=g).to(device)

            def infer(image=image, G=G, hole=hole):
                with torch.no_grad():
                    G.predict_full(image, hole)

            sec = report.median_seconds(infer, args.repeat, device)
            rows.append({"model": name, "measure": "inference predict_full", "batch": batch,
                         "ms/image": 1000 * sec / batch, "images/s": batch / sec,
                         **_rate(report.counted_flops(infer), sec, peak), "note": ""})
            if batch == 64:           # the network alone: predict_full less its input and composite
                def forward(image=image, G=G):
                    with torch.no_grad():
                        G(image)

                sec = report.median_seconds(forward, args.repeat, device)
                rows.append({"model": name, "measure": "forward (network only)", "batch": batch,
                             "ms/image": 1000 * sec / batch, "images/s": batch / sec,
                             **_rate(report.counted_flops(forward), sec, peak), "note": ""})

        # ---- training: ContextEncoderTask steps (D update + G update), and the cascade's 128 CE
        cascade_cfg = CascadeConfig.build("center", size, overlap=cfg.overlap, base_channels=cfg.base_channels,
                                          bottleneck_dim=cfg.bottleneck_dim)
        assert cascade_cfg.ce128 == cfg
        cascade = CascadeContextEncoder(cascade_cfg, seed=0).to(device)
        for what, task in (
                ("train step", ContextEncoderTask(ContextEncoderGenerator(cfg, seed=0).to(device),
                                                  ContextEncoderDiscriminator(cfg, seed=1).to(device))),
                ("train step, cascade", CascadeTask(cascade.train(), ContextEncoderDiscriminator(cfg, seed=1).to(device)))):
            ctx = StepContext(task.optimizers, device, torch.Generator().manual_seed(0), amp_dtype=amp_dtype)
            batch = torch.rand(args.train_batch, 3, size, size, generator=g).to(device)
            step = [0]

            def one_step(task=task, ctx=ctx, batch=batch):
                task.train_step(batch, step[0], ctx)
                step[0] += 1

            sec = report.median_seconds(one_step, args.train_steps, device)
            rows.append({"model": name, "measure": what, "batch": args.train_batch,
                         "ms/image": 1000 * sec / args.train_batch, "images/s": args.train_batch / sec,
                         **_rate(report.counted_flops(one_step), sec, peak),
                         "note": "bf16 autocast" if amp_dtype else "fp32"})
            del task, ctx

        # ---- NSD at the paper's setting: k images x n random-block masks (so the full-image models of the
        #      same widths), plain CE and cascade
        del cascade
        full_cfg = CascadeConfig.build("full", size, overlap=cfg.overlap, base_channels=cfg.base_channels,
                                       bottleneck_dim=cfg.bottleneck_dim)
        G_full = ContextEncoderGenerator(full_cfg.ce128, seed=0).to(device).eval()
        cascade = CascadeContextEncoder(full_cfg, seed=0).to(device).eval()
        images = torch.rand(sample_k, 3, size, size, generator=g)
        nsd_masks = masks.make_mask("blocks", size, (0.05, 0.25), batch=args.n, generator=g)
        for what, encode, with_mask in (("NSD plain CE", G_full.encode, False), ("NSD cascade", cascade.encode, True)):
            def run_nsd(encode=encode, with_mask=with_mask):
                metrics.nsd(encode, images, nsd_masks, fill=cfg.fill, with_mask=with_mask, device=device,
                            batch_size=args.nsd_batch, progress=False)

            sec = report.median_seconds(run_nsd, 1, device) * args.k / sample_k
            estimated = sample_k < args.k
            rows.append({"model": name, "measure": f"{what} k={args.k} n={args.n}", "batch": args.nsd_batch,
                         "ms/image": 1000 * sec / (args.k * args.n), "images/s": args.k * args.n / sec,
                         "note": (f"ESTIMATE from k={sample_k}: {sec:.1f} s" if estimated else f"measured: {sec:.1f} s")})
        del G, G_full, cascade
        if device.type == "cuda":
            torch.cuda.empty_cache()

    print(f"{size}x{size}, device {device}, {torch.get_num_threads()} torch threads, training batch "
          f"{args.train_batch}; {report.hardware()}")
    print(f"float32 matmul peak, measured in this run: {peak:.1f} GFLOP/s (2048 x 2048 torch.mm)")
    print("ms/image and images/s: for NSD, per (image, mask) pair encoded; GFLOP/s: counted FLOPs over the median time")
    print(report.format_table(rows, ["model", "measure", "batch", "ms/image", "images/s", "GFLOP/s", "% of peak",
                                     "note"], digits=2))


if __name__ == "__main__":
    main()
