"""Every inpainting method of the course behind one call: ``fill = load_inpainter(method, checkpoint)``,
then ``fill(image, mask)`` returns the composite (known pixels unchanged, bit for bit).

Used by the ``inpaint`` command (``inpaint fill``, ``inpaint evaluate``), by notebook 07's comparison
and by the widgets. The trained methods are rebuilt from their checkpoints alone: a checkpoint stores
the model's name and config (:mod:`inpaint_utils.checkpoint`), :func:`inpaint_utils.models.build_model`
builds that network and the weights are loaded with every check of ``load_checkpoint`` (name, config,
shapes, sha256, no unpickling). Asking for ``--method glcic`` with a Context Encoder checkpoint, or for
``--method deepfill_v2`` with a DeepFill v1 one, is refused with a message saying what the checkpoint holds.

===============  ===========================================  =====================================
method           what                                         needs
===============  ===========================================  =====================================
``mean``         hole filled with the mean known colour       nothing
``telea``        OpenCV Telea (fast marching)                 nothing
``ns``           OpenCV Navier-Stokes                         nothing
``patchmatch``   PatchMatch exemplar fill (own patches)       nothing
``nn``           nearest training image pasted in the hole    a folder of training images
``ce``           Context Encoder (notebook 02)                a checkpoint (run folder or step_*)
``cascade``      cascade CE 64 -> 128 (notebook 03)           a checkpoint
``glcic``        GLCIC completion network (notebook 04)       a checkpoint
``glcic_poisson``  GLCIC + the paper's post-process (04)    a GLCIC checkpoint
``deepfill``     DeepFill v1 / contextual attention (05)      a checkpoint
``pconv``        partial convolutions, PConv U-Net (08)       a checkpoint
``deepfill_v2``  DeepFill v2 / gated convolutions (08)        a checkpoint
``sd2``          Stable Diffusion 2 inpainting (06)           the hub model or a local folder
``repaint``      RePaint with a DDPM (06)                     the hub model or a local folder
===============  ===========================================  =====================================

A learned model works at its training size: an image of another size is resized to it (bilinear; the
mask by "any hole pixel"), completed, and the prediction resized back and composited at the original
size, so known pixels stay exact at every size.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from .models import LEARNED
from .validation import check_image_mask

__all__ = ["METHODS", "LEARNED", "MAKES", "COURSE_RUNS", "Inpainter", "load_inpainter", "load_methods", "course_runs",
           "how_to_make",
           "load_trained_model", "run_checkpoint", "training_masks"]

#: method -> one line for ``--help`` and error messages.
METHODS: dict[str, str] = {
    "mean": "mean known colour (baseline)",
    "telea": "OpenCV Telea (baseline)",
    "ns": "OpenCV Navier-Stokes (baseline)",
    "patchmatch": "PatchMatch exemplar inpainting from the image's own patches (baseline)",
    "nn": "nearest training image pasted into the hole, Hays & Efros style (baseline; --checkpoint: a folder "
          "of training images)",
    "ce": "Context Encoder (needs --checkpoint)",
    "cascade": "cascade Context Encoder 64->128 (needs --checkpoint)",
    "glcic": "GLCIC (needs --checkpoint)",
    "glcic_poisson": "GLCIC then the paper's post-process: fast marching, then Poisson blending (needs a GLCIC "
                     "--checkpoint)",
    "deepfill": "DeepFill v1 / contextual attention (needs --checkpoint)",
    "pconv": "partial convolutions, PConv U-Net (needs --checkpoint)",
    "deepfill_v2": "DeepFill v2 / gated convolutions (needs --checkpoint)",
    "sd2": "Stable Diffusion 2 inpainting (hub model or --checkpoint folder)",
    "repaint": "RePaint DDPM (hub model or --checkpoint folder)",
}
_BASELINE_NAMES = {"mean": "mean_fill", "telea": "telea", "ns": "navier_stokes", "patchmatch": "patchmatch"}
#: learned method -> (the notebook that trains it, the ``inpaint train`` method or ``None`` when only the
#: notebook does).
MAKES: dict[str, tuple[str, str | None]] = {
    "ce": ("02_context_encoder", "ce"),
    "cascade": ("03_cascade_ce_nsd", None),
    "glcic": ("04_glcic", "glcic"),
    "glcic_poisson": ("04_glcic", "glcic"),
    "deepfill": ("05_contextual_attention", "deepfill"),
    "pconv": ("08_irregular_holes", "pconv"),
    "deepfill_v2": ("08_irregular_holes", "deepfill_v2"),
}


def run_checkpoint(run: str | os.PathLike) -> Path:
    """The newest checkpoint of a training run: ``run`` is a run folder, a checkpoint folder, or a run
    name under ``runs_dir()`` (e.g. ``"02_ce_smoke"``, what the notebooks write). Raises
    ``FileNotFoundError`` saying which notebook to run when there is none."""
    from .checkpoint import checkpoint_info
    from .config import runs_dir

    path = Path(run)
    if not path.exists() and not path.is_absolute() and len(path.parts) == 1:
        path = runs_dir() / path
    return checkpoint_info(path)["path"]


def load_trained_model(checkpoint: str | os.PathLike, expected: str | None = None,
                       device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """Rebuild the generator saved in ``checkpoint`` (a checkpoint folder, a run folder or a run name)
    in eval mode on ``device``; return ``(model, info)``. ``expected``: the model name the caller
    needs (e.g. ``"glcic"``); another one is refused before any weight is read."""
    from .checkpoint import CheckpointError, checkpoint_info, load_checkpoint
    from .config import get_device
    from .models import MODELS, build_model

    path = run_checkpoint(checkpoint)
    info = checkpoint_info(path)
    name = info["model_name"]
    if expected is not None and name != expected:
        wanted: dict[str, str] = {}
        for method, model_name in LEARNED.items():    # the first method of each model: glcic, not glcic_poisson
            wanted.setdefault(model_name, method)
        hint = f" (use --method {wanted[name]})" if name in wanted else ""
        raise CheckpointError(f"{path} holds a {name!r} model{hint}, not the {expected!r} model this method needs")
    if name not in MODELS:
        raise CheckpointError(f"{path} holds model {name!r}, which this code does not know; known: {sorted(MODELS)}")
    if "generator" not in info["models"]:
        raise CheckpointError(f"{path} has no 'generator' weights (it holds {info['models']})")
    model = build_model(name, info["config"])
    load_checkpoint(path, {"generator": model}, model_name=name, config=info["config"])
    return model.to(get_device(device)).eval(), info


def training_masks(inpainter: "Inpainter", batch: int, generator: torch.Generator | None = None
                   ) -> tuple[torch.Tensor, str]:
    """The holes a learned method was trained on, drawn for ``batch`` images at its own size: ``(masks (B, 1,
    S, S), a one-line description)``, by :func:`inpaint_utils.comparison.training_masks` (the CE and a
    centre cascade: their centre hole; GLCIC: its random rectangles; DeepFill: its shrunk random boxes; PConv:
    free-form strokes; DeepFill v2: strokes and a box)."""
    from .comparison import training_masks as drawn

    cfg = inpainter.info.get("config")
    if cfg is None:
        raise ValueError(f"method {inpainter.method!r} was not trained here: it has no training holes; "
                         f"choose a mask kind")
    size = int((cfg["ce128"] if "ce128" in cfg else cfg)["image_size"])
    try:
        own = drawn(inpainter.method, cfg, batch, size, generator)
    except ValueError as e:
        raise ValueError(f"no training holes for {inpainter.method!r}: {e}") from None
    return own.masks, own.description


def _resize_pair(image: torch.Tensor, mask: torch.Tensor, size: int) -> tuple[torch.Tensor, torch.Tensor]:
    small = F.interpolate(image, size=(size, size), mode="bilinear", align_corners=False, antialias=True)
    from .masks import resize_mask

    small_mask = resize_mask(mask, size).to(image.dtype)   # a hole wherever any pixel it covers is one
    return small.clamp(0, 1), small_mask


@dataclass
class Inpainter:
    """A ready method: ``fill(image, mask) -> composite`` for ``(B, 3, H, W)`` images in ``[0, 1]`` and
    ``(B or 1, 1, H, W)`` masks (1 = hole). ``info`` says what it is (checkpoint, step, model config)."""

    method: str
    fn: Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
    info: dict[str, Any]
    image_size: int | None = None      # the learned model's working size; None: any size

    def __call__(self, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        check_image_mask(image, mask)
        mask = mask.to(dtype=image.dtype, device=image.device).expand(image.shape[0], 1, *image.shape[-2:])
        s = self.image_size
        if s is None or tuple(image.shape[-2:]) == (s, s):
            out = self.fn(image, mask)
        else:
            small, small_mask = _resize_pair(image, mask, s)
            pred = self.fn(small, small_mask)
            out = F.interpolate(pred, size=image.shape[-2:], mode="bilinear", align_corners=False).clamp(0, 1)
        out = out.to(image.device, image.dtype)
        return mask * out + (1 - mask) * image


def _model_fn(model: torch.nn.Module) -> Callable[[torch.Tensor, torch.Tensor], torch.Tensor]:
    device = next(model.parameters()).device

    def fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return model.predict_full(image.to(device), mask.to(device)).cpu()

    return fill


def load_inpainter(method: str, checkpoint: str | os.PathLike | None = None, device: str | torch.device = "auto",
                   **kwargs: Any) -> Inpainter:
    """The method ``method`` (a key of :data:`METHODS`) ready to fill. Learned methods need
    ``checkpoint`` (a checkpoint folder, a run folder, or a run name under ``runs/``); ``sd2`` and
    ``repaint`` take a local model folder there (default: the hub model, which must be cached or
    reachable: they fail fast with what to do otherwise); ``kwargs`` go to the diffusion wrappers, and to
    ``patchmatch`` (``seed``, ``patch_size``, ...). ``nn`` takes its training set as ``checkpoint`` (a
    folder of images, loaded at ``image_size`` px, default 128, at most ``max_images``) or as
    ``train=`` (a tensor or dataset); ``size`` (the tiny-image feature, default 32) and ``blend``
    (Poisson post-process) go to :class:`inpaint_utils.baselines.NearestNeighbourInpainter`."""
    from . import baselines
    from .config import get_device

    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    if method in _BASELINE_NAMES:
        if checkpoint is not None:
            raise ValueError(f"method {method!r} is a classical baseline and takes no checkpoint")
        fn = getattr(baselines, _BASELINE_NAMES[method])
        if kwargs:
            if method != "patchmatch":
                raise ValueError(f"method {method!r} takes no options, got {sorted(kwargs)}")
            fn = functools.partial(fn, **kwargs)
        return Inpainter(method, fn, {"method": method, **kwargs})
    if method == "nn":
        return _load_nearest_neighbour(checkpoint, **kwargs)
    if method in LEARNED:
        if checkpoint is None:
            raise ValueError(f"method {method!r} needs a checkpoint: train it first ({how_to_make(method)}) and pass "
                             f"the run folder or its checkpoints/step_* folder")
        model, info = load_trained_model(checkpoint, expected=LEARNED[method], device=get_device(device))
        size = getattr(model.config, "image_size", None)
        meta = {"method": method, "checkpoint": str(info["path"]), "step": info["step"],
                "model_name": info["model_name"], "config": info["config"]}
        if method == "glcic_poisson":
            return _with_poisson_blend(Inpainter("glcic", _model_fn(model), meta, image_size=size), meta)
        return Inpainter(method, _model_fn(model), meta, image_size=size)
    from . import diffusion

    wrapper = diffusion.SDInpainter if method == "sd2" else diffusion.RePaintInpainter
    pipe = wrapper(model=None if checkpoint is None else str(checkpoint), device=device, **kwargs)

    def fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return pipe(image, mask)[0]                     # (completed, info): the composite

    return Inpainter(method, fill, {"method": method, "model": repr(pipe), "pipeline": pipe})


def _with_poisson_blend(glcic: Inpainter, meta: dict[str, Any]) -> Inpainter:
    """GLCIC as Iizuka et al. run it: the network's composite, then its hole blended into the surroundings by
    :func:`inpaint_utils.baselines.poisson_blend` (fast marching, then Poisson image editing, the paper's
    post-process), both at the model's working size (an image of another size is resized to it and back, as
    for every learned method)."""
    from .baselines import poisson_blend

    def fill(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
        return poisson_blend(image, glcic(image, mask), mask)

    return Inpainter("glcic_poisson", fill, {**meta, "method": "glcic_poisson",
                                             "postprocess": "fast marching + Poisson blending (Iizuka et al.)"},
                     image_size=glcic.image_size)


def _load_nearest_neighbour(checkpoint: str | os.PathLike | None, train: Any = None, image_size: int = 128,
                            max_images: int | None = None, size: int = 32, blend: bool = False, split: str = "all",
                            seed: int = 0) -> Inpainter:
    """``nn`` on the images of folder ``checkpoint`` (its ``split``, seeded by ``seed``: ``"train"`` keeps out
    the test split that ``inpaint evaluate`` scores) or on ``train``; ``info["train_files"]``: the files of its
    database (empty for ``train=``)."""
    from .baselines import NearestNeighbourInpainter

    if (checkpoint is None) == (train is None):
        raise ValueError("method 'nn' needs its training set: a folder of training images as the checkpoint "
                         "(--checkpoint DIR) or train= (a tensor or dataset), one of them")
    where, files = "the given training set", []
    if checkpoint is not None:
        from .data import ImageFolder

        train = ImageFolder(checkpoint, size=image_size, max_images=max_images, split=split,
                            seed=seed)                                   # FileNotFoundError if absent
        where, files = str(checkpoint) + ("" if split == "all" else f" ({split} split, seed {seed})"), train.files
    nn = NearestNeighbourInpainter(train, size=size, blend=blend)
    return Inpainter("nn", nn, {"method": "nn", "train": where, "train_images": len(nn), "feature_size": size,
                                "blend": blend, "train_files": list(files)})


def how_to_make(method: str, checkpoint: str | os.PathLike | None = None) -> str:
    """The command that makes what ``load_inpainter(method, checkpoint)`` needs: the notebook (and the
    ``inpaint train`` line) that writes a learned method's checkpoint, the download of a diffusion model."""
    if method in MAKES:
        notebook, train_name = MAKES[method]
        run = Path(checkpoint).name if checkpoint is not None else None
        text = f"run notebooks/{notebook}.ipynb"
        if train_name is not None:
            text += f", or: inpaint train {train_name} --data DIR" + (f" --run-name {run}" if run else "")
        return text
    if method in ("sd2", "repaint"):
        from . import diffusion

        kind = "sd" if method == "sd2" else "ddpm"
        model = str(checkpoint) if checkpoint is not None else diffusion.default_model(kind)
        if model == diffusion.TINY:
            return "pip install \"inpaint-course[diffusion]\" (the tiny model is built locally)"
        env = "INPAINT_SD_MODEL" if method == "sd2" else "INPAINT_DDPM_MODEL"
        local = f"models/{model.rstrip('/').split('/')[-1]}"
        return f"hf download {model} --local-dir {local}, then set {env}={local}"
    if method == "nn":
        return "nothing to train: pass a folder of training images (e.g. a data split) as the checkpoint"
    return "nothing: it needs no checkpoint"


#: The learned models the notebooks train: display name -> (notebook, method, the run folder its notebook writes
#: under ``runs/``, ``{profile}`` filled in by :func:`course_runs`).
COURSE_RUNS: dict[str, tuple[str, str, str]] = {
    "CE (02)": ("02", "ce", "02_ce_{profile}"),
    "cascade CE (03)": ("03", "cascade", "03_cascade_blocks_{profile}"),
    "GLCIC (04)": ("04", "glcic", "04_glcic_{profile}"),
    "DeepFill v1 (05)": ("05", "deepfill", "05_ca_{profile}_hole"),
    "PConv (08)": ("08", "pconv", "08_{profile}_pconv"),
    "DeepFill v2 (08)": ("08", "deepfill_v2", "08_{profile}_v2"),
}


def course_runs(profile: str, notebooks: Sequence[str] = ("02", "03", "04", "05"),
                overrides: Mapping[str, Any] | None = None) -> dict[str, tuple[str, Any]]:
    """:func:`load_methods` requests ``{name: (method, run)}`` for the models of :data:`COURSE_RUNS` that
    ``notebooks`` train, each at the run folder its notebook writes in ``profile``; ``overrides`` ``{name: run
    folder or name}`` replaces some (a name that is not in :data:`COURSE_RUNS` raises ``KeyError``)."""
    overrides = dict(overrides or {})
    unknown = sorted(set(overrides) - set(COURSE_RUNS))
    if unknown:
        raise KeyError(f"no course model named {unknown}; known: {list(COURSE_RUNS)}")
    return {name: (method, overrides.get(name, run.format(profile=profile)))
            for name, (notebook, method, run) in COURSE_RUNS.items() if notebook in notebooks}


def load_methods(requests: dict[str, tuple], device: str | torch.device = "auto"
                 ) -> tuple[dict[str, Inpainter], list[dict[str, str]]]:
    """Load every method of ``requests`` (display name -> ``(method, checkpoint)`` or ``(method,
    checkpoint, kwargs)``, as :func:`load_inpainter` takes them) and return ``(loaded, not_loaded)``.

    A method whose checkpoint or model is missing (``FileNotFoundError``), whose diffusion model cannot be
    had (``ModelUnavailableError``), or whose library is not installed (``ImportError``) is not dropped
    silently: it is a row of ``not_loaded`` with ``method`` (its name), ``reason`` (one line) and
    ``to make it`` (:func:`how_to_make`). Any other error (a checkpoint of another model, a damaged
    one) is raised: that is a mistake to fix, not a run to do."""
    from .diffusion import ModelUnavailableError

    loaded: dict[str, Inpainter] = {}
    not_loaded: list[dict[str, str]] = []
    for name, request in requests.items():
        method, checkpoint, *rest = request
        kwargs = rest[0] if rest else {}
        try:
            loaded[name] = load_inpainter(method, checkpoint, device=device, **kwargs)
        except (FileNotFoundError, ModelUnavailableError, ImportError) as err:
            reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            not_loaded.append({"method": name, "reason": reason, "to make it": how_to_make(method, checkpoint)})
    return loaded, not_loaded
