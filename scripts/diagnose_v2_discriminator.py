#!/usr/bin/env python
"""Is DeepFill v2's SN-PatchGAN able to tell real faces from fakes, and what does a trained one still tell apart?
(issue 24: in the cpu runs its hinge loss sits at 2.0 from step ~300, real and fake scored alike.)

1. ``--alone``: a fresh discriminator of the cpu profile's widths trained alone (hinge loss, Adam, v2's betas) on
   real faces against the same faces with their free-form hole filled grey: does the loss leave 2.0?
2. ``--checkpoint RUN``: a trained run's discriminator (``runs/RUN``) scoring validation faces as they are, their
   composites by the run's generator, the hole filled grey, noise: the mean score of each and its spread.

    python scripts/diagnose_v2_discriminator.py --alone --lr 1e-3
    python scripts/diagnose_v2_discriminator.py --checkpoint 08_v2_cpu

Needs the shared folder's faces (``$INPAINT_SHARED``); one thread.
"""
from __future__ import annotations

import argparse

import torch

from inpaint_utils import cli, config, data
from inpaint_utils.checkpoint import checkpoint_info, latest_checkpoint, load_checkpoint
from inpaint_utils.losses import hinge_discriminator_loss
from inpaint_utils.models.gated_conv import (DeepFillV2Config, DeepFillV2Generator, SNPatchGANDiscriminator,
                                             free_form_masks)


def faces(split: str, n: int | None = None) -> torch.utils.data.Dataset:
    return data.find_source(collection="faces_small", verbose=False).dataset(size=64, split=split, max_images=n)


def alone(lr: float, steps: int, batch: int) -> None:
    settings = cli.method_settings("deepfill_v2", "cpu")
    cfg = DeepFillV2Config(image_size=64, cnum=settings["cnum"], disc_cnum=settings["disc_cnum"])
    d = SNPatchGANDiscriminator(cfg, seed=1)
    opt = torch.optim.Adam(d.parameters(), lr=lr, betas=(0.5, 0.999))
    train, g = faces("train"), torch.Generator().manual_seed(0)
    print(f"a fresh SN-PatchGAN (disc_cnum {cfg.disc_cnum}) alone, lr {lr:g}: real faces against grey-filled holes")
    for step in range(steps + 1):
        x = torch.stack([train[int(i)] for i in torch.randint(0, len(train), (batch,), generator=g)])
        m = free_form_masks(batch, 64, generator=g)
        scores = d(torch.cat([x, m * 0.5 + (1 - m) * x]), torch.cat([m, m]))
        loss = hinge_discriminator_loss(scores[:batch], scores[batch:])
        opt.zero_grad()
        loss.backward()
        opt.step()
        if step % max(steps // 6, 1) == 0:
            print(f"  step {step:4d}: hinge {loss.item():.3f}, real {scores[:batch].mean().item():+.3f}, "
                  f"fake {scores[batch:].mean().item():+.3f}")


def trained(run: str, n: int) -> None:
    ckpt = latest_checkpoint(config.runs_dir() / run)
    info = checkpoint_info(ckpt)
    cfg = DeepFillV2Config.from_dict(info["config"])
    gen, d = DeepFillV2Generator(cfg, seed=0), SNPatchGANDiscriminator(cfg, seed=1)
    load_checkpoint(ckpt, {"generator": gen, "discriminator": d}, model_name=info["model_name"], config=info["config"])
    gen.eval()
    d.eval()
    val = faces("val", n)
    x = torch.stack([val[i] for i in range(len(val))])
    m = free_form_masks(len(val), cfg.image_size, generator=torch.Generator().manual_seed(0))
    print(f"{run} (step {info['step']}): its discriminator on {len(val)} validation faces with v2's training holes")
    with torch.no_grad():
        _, refined, _ = gen(x, m)
        for name, image in (("real", x), ("its composite", m * refined + (1 - m) * x),
                            ("grey hole", m * 0.5 + (1 - m) * x), ("noise", torch.rand_like(x))):
            s = d(image, m).flatten(1).mean(1)
            print(f"  {name:14s} mean score {s.mean().item():+.4f}, spread over the images {s.std().item():.4f}")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--alone", action="store_true", help="train a fresh discriminator alone on grey-filled fakes")
    p.add_argument("--lr", type=float, default=1e-3)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--checkpoint", default=None, help="a run under runs/: score its discriminator")
    p.add_argument("--num-images", type=int, default=32)
    args = p.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    if args.alone:
        alone(args.lr, args.steps, args.batch)
    if args.checkpoint:
        trained(args.checkpoint, args.num_images)
    if not (args.alone or args.checkpoint):
        p.error("give --alone and/or --checkpoint RUN")


if __name__ == "__main__":
    main()
