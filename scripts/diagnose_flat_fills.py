"""Why GLCIC, DeepFill v1 and v2 fail the flat / gradient thin-hole diagnostic (issue 24, item 3): measurements.

Trains a model with ``tests/test_model_inputs.py``'s own ``fit_on_synthetic`` (tiny widths, reconstruction loss
only, fresh LaMa thin holes on flat-colour and smooth-gradient images) and prints, at the given steps:

* ``hole_error`` (eval mode, the test's number), flat / gradient;
* the same in train mode (BatchNorm on the test batch's statistics; GLCIC is the only one with BatchNorm);
* for DeepFill v1 / v2 the coarse stage's hole error (inference uses the refined stage);
* the mean |raw output - image| on the *known* pixels (does the output follow the input's colour at all?);
* the training loss (mean of the logged loss over the steps since the last line);
* the colour gain (does a flat image's colour reach the output?) and, before training, every first-stage layer's
  activation std (eval mode) and, with ``--grads``, the gradient norm of every first-stage layer (train mode; GLCIC
  on its hole MSE, v1 / v2 on the coarse stage's mean L1 over the image), at step 1 and at the given steps;
* ablations for GLCIC (not the paper): ``--loss-everywhere``, ``--no-batchnorm``, ``--adadelta``.

    python scripts/diagnose_flat_fills.py glcic --steps 300 1000 --lr 2e-3
    python scripts/diagnose_flat_fills.py deepfill --steps 300 --lr 5e-4
"""
from __future__ import annotations

import argparse
import copy
import importlib.util
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]


def _diagnostic():
    """``tests/test_model_inputs.py`` as a module (its models, training and error: nothing is copied here)."""
    spec = importlib.util.spec_from_file_location("test_model_inputs", ROOT / "tests" / "test_model_inputs.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def raw_outputs(task, image: torch.Tensor, mask: torch.Tensor) -> dict[str, torch.Tensor]:
    """The network's raw outputs in [0, 1] (no composite): ``{"out"}`` for GLCIC, ``{"coarse", "refined"}``
    for DeepFill v1 (on its ``make_input``) and v2."""
    g = task.generator
    with torch.no_grad():
        if hasattr(g, "coarse") and hasattr(g, "make_input"):          # v1: the input is filled first
            coarse, refined, _ = g(g.make_input(image, mask), mask)
            return {"coarse": coarse, "refined": refined}
        if hasattr(g, "coarse"):                                         # v2
            coarse, refined, _ = g(image, mask)
            return {"coarse": coarse, "refined": refined}
        return {"out": g(image, mask)}


def measure(mod, task, name: str, n: int = 16, seed: int = 7) -> dict[str, float]:
    """The numbers of one line (see the module docstring)."""
    model = mod._model(task)
    row = {}
    model.eval()
    err = mod.hole_error(task, name, n, seed)
    row["eval flat"], row["eval grad"] = err["flat"], err["gradient"]
    twin = copy.deepcopy(task)                          # train mode updates BatchNorm's running statistics
    mod._model(twin).train()
    size = mod._net(task).config.image_size
    image = mod.synthetic(n, size, torch.Generator().manual_seed(seed))
    mask = mod.thin_masks(n, size, seed)
    # train-mode error: predict_full on the twin without switching it to eval
    with torch.no_grad():
        out = mod._model(twin).predict_full(image, mask)
    e = ((out - image).abs() * mask).flatten(1).sum(1) / (3 * mask.flatten(1).sum(1))
    row["train flat"], row["train grad"] = float(e[0::2].mean()), float(e[1::2].mean())
    known = 1 - mask
    for key, out in raw_outputs(task, image, mask).items():
        hole = ((out - image).abs() * mask).flatten(1).sum(1) / (3 * mask.flatten(1).sum(1))
        kn = ((out - image).abs() * known).flatten(1).sum(1) / (3 * known.flatten(1).sum(1))
        if key == "coarse":
            row["coarse flat"], row["coarse grad"] = float(hole[0::2].mean()), float(hole[1::2].mean())
        row[f"known {key}"] = float(kn.mean())
    model.train()
    return row


def flat_paint(mod, task, name: str, colour=(0.2, 0.5, 0.8)) -> tuple[float, ...]:
    """The mean colour the raw output paints on a flat ``colour`` image (eval mode), hole and known alike."""
    size = mod._net(task).config.image_size
    image = torch.tensor(colour).view(1, 3, 1, 1).expand(4, 3, size, size).clone()
    mask = mod.thin_masks(4, size, 0)
    mod._model(task).eval()
    out = list(raw_outputs(task, image, mask).values())[-1]
    mod._model(task).train()
    return tuple(round(float(v), 3) for v in out.mean(dim=(0, 2, 3)))


def colour_gain(mod, task, n: int = 8, seed: int = 11) -> float:
    """How much of a flat image's colour reaches the raw output (eval mode): over ``n`` flat images of random
    colours (thin holes), the std across images of the output's mean colour over the std of the input colours
    (1: the output follows the colour; 0: it paints the same whatever the colour)."""
    size = mod._net(task).config.image_size
    colours = torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1
    image = colours.view(n, 3, 1, 1).expand(n, 3, size, size).clone()
    mask = mod.thin_masks(n, size, seed)
    mod._model(task).eval()
    out = list(raw_outputs(task, image, mask).values())[-1]
    mod._model(task).train()
    return float(out.mean(dim=(2, 3)).std(dim=0).mean() / colours.std(dim=0).mean())


def activation_scales(mod, task, n: int = 8, seed: int = 11) -> list[float]:
    """The std of every top-level layer's output of the first stage (eval mode) on flat images with thin holes:
    does the signal vanish through the stack at initialisation?"""
    net = task.generator
    layers = list(net.layers) if hasattr(net, "layers") else [*net.coarse.encoder, *net.coarse.decoder]
    size = mod._net(task).config.image_size
    colours = torch.rand(n, 3, generator=torch.Generator().manual_seed(seed)) * 0.8 + 0.1
    image = colours.view(n, 3, 1, 1).expand(n, 3, size, size).clone()
    mask = mod.thin_masks(n, size, seed)
    scales = []
    handles = [m.register_forward_hook(lambda m, a, out: scales.append(float(out.std()))) for m in layers]
    mod._model(task).eval()
    raw_outputs(task, image, mask)
    mod._model(task).train()
    for h in handles:
        h.remove()
    return scales[:len(layers)]


def grad_norms(mod, task, n: int = 8, seed: int = 5) -> list[float]:
    """The gradient norm of every first-stage layer's parameters on one batch of synthetic images with thin holes
    (train mode, nothing updated): GLCIC on its completion loss, DeepFill v1 / v2 on the coarse stage's mean L1."""
    g = task.generator
    size = mod._net(task).config.image_size
    image = mod.synthetic(n, size, torch.Generator().manual_seed(seed))
    mask = mod.thin_masks(n, size, seed)
    if hasattr(g, "layers"):
        layers, loss = list(g.layers), task.completion_loss(g(image, mask), image, mask)
    else:
        coarse = g(g.make_input(image, mask), mask)[0] if hasattr(g, "make_input") else g(image, mask)[0]
        layers, loss = [*g.coarse.encoder, *g.coarse.decoder], (coarse - image).abs().mean()
    params = [list(m.parameters()) for m in layers]
    grads = torch.autograd.grad(loss, [p for ps in params for p in ps])
    norms, i = [], 0
    for ps in params:
        norms.append(float(sum(float(x.norm()) ** 2 for x in grads[i:i + len(ps)]) ** 0.5))
        i += len(ps)
    return norms


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("name", help="a model of tests/test_model_inputs.py's BUILD (glcic, deepfill, deepfill_v2...)")
    parser.add_argument("--steps", type=int, nargs="+", default=[300], help="steps at which to measure")
    parser.add_argument("--lr", type=float, default=None, help="Adam's lr (default the test's FIT_LR)")
    parser.add_argument("--width", type=int, default=None, help="base width (default the test's BUILD)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--grads", action="store_true", help="print the first stage's gradient norms per layer")
    parser.add_argument("--loss-everywhere", action="store_true",
                        help="GLCIC only: its MSE over every pixel instead of the hole (can it copy colour at all?)")
    parser.add_argument("--no-batchnorm", action="store_true",
                        help="GLCIC only, an ablation (not the paper): every BatchNorm of the completion network "
                             "replaced by the identity, its convolutions re-initialised He-normal (ReLU gain)")
    parser.add_argument("--adadelta", action="store_true",
                        help="GLCIC only: the paper's Adadelta (lr 1 unless --lr) instead of the test's Adam")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    mod = _diagnostic()
    if args.adadelta:
        if args.name != "glcic":
            parser.error("--adadelta is for glcic")
        args.lr = 1.0 if args.lr is None else args.lr
        build_adam = mod.BUILD["glcic"]

        def adadelta(**kw):
            task = build_adam(**kw)
            task.optimizers["generator"] = torch.optim.Adadelta(task.generator.parameters(), lr=kw["lr"])
            return task
        mod.BUILD["glcic"] = adadelta
    if args.no_batchnorm:
        if args.name != "glcic":
            parser.error("--no-batchnorm is for glcic (the DeepFills have no normalisation)")
        build_bn = mod.BUILD["glcic"]

        def without_bn(**kw):
            task = build_bn(**kw)
            g = torch.Generator().manual_seed(0)
            for block in task.generator.layers:
                for i, m in enumerate(block):
                    if isinstance(m, torch.nn.BatchNorm2d):
                        block[i] = torch.nn.Identity()
                    elif isinstance(m, (torch.nn.Conv2d, torch.nn.ConvTranspose2d)):
                        with torch.no_grad():
                            fan_in = m.weight[0].numel() if isinstance(m, torch.nn.Conv2d) else \
                                m.weight.shape[0] * m.weight[0, 0].numel() // 4     # a 4x4 s2 deconv: 4 taps each
                            m.weight.normal_(0.0, (2.0 / fan_in) ** 0.5, generator=g)
            task.optimizers["generator"] = type(task.optimizers["generator"])(
                task.generator.parameters(), **task.optimizers["generator"].defaults)
            return task
        mod.BUILD["glcic"] = without_bn
    if args.loss_everywhere:
        if args.name != "glcic":
            parser.error("--loss-everywhere is for glcic (v1's ae term and v2's L1 already cover the known pixels)")
        build_glcic = mod.BUILD["glcic"]

        def everywhere(**kw):
            task = build_glcic(**kw)
            task.completion_loss = lambda pred, image, mask: torch.nn.functional.mse_loss(pred, image)
            return task
        mod.BUILD["glcic"] = everywhere
    lr = mod.FIT_LR if args.lr is None else args.lr
    build = {} if args.width is None else {"width": args.width}
    marks, losses, start = sorted(set(args.steps)), [], time.perf_counter()
    untrained = mod._prepared(mod.BUILD[args.name](lr=lr, **build))
    u = mod.hole_error(untrained, args.name)
    print(f"{args.name} lr {lr:g} width {args.width or 'BUILD'} seed {args.seed}: untrained eval flat "
          f"{u['flat']:.3f} grad {u['gradient']:.3f}; flat (0.2, 0.5, 0.8) painted "
          f"{flat_paint(mod, untrained, args.name)}; colour gain {colour_gain(mod, untrained):.3g}", flush=True)
    print("  untrained activation std per layer (first stage): "
          + " ".join(f"{v:.2g}" for v in activation_scales(mod, untrained)), flush=True)

    def on_step(step, task, logs):
        losses.append(next(v for k, v in logs.items() if k in ("mse", "g_total", "l1", "loss", "total")))
        if args.grads and (step == 1 or step in marks):
            print(f"  step {step:5d} gradient norm per first-stage layer: "
                  + " ".join(f"{v:.1e}" for v in grad_norms(mod, task)), flush=True)
        if step in marks:
            row = measure(mod, task, args.name)
            loss = sum(losses) / len(losses)
            losses.clear()
            print(f"  step {step:5d} ({time.perf_counter() - start:4.0f} s) loss {loss:.4f} | "
                  + " | ".join(f"{k} {v:.3f}" for k, v in row.items())
                  + f" | flat (0.2, 0.5, 0.8) painted {flat_paint(mod, task, args.name)}"
                  + f" | colour gain {colour_gain(mod, task):.3f}", flush=True)

    mod.fit_on_synthetic(args.name, steps=max(marks), lr=lr, seed=args.seed, on_step=on_step, **build)
    return 0


if __name__ == "__main__":
    sys.exit(main())
