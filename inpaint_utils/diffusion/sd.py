"""Stable Diffusion 2 inpainting (Rombach et al. 2022) as Nanavati and Patel ran it: :class:`SDInpainter`, its
samplers (:data:`SCHEDULERS`), and their hallucination claim as numbers (:func:`hallucination_summary`).
"""
from __future__ import annotations

import math
import os
import time
import warnings
from pathlib import Path
from typing import Any, Sequence

import torch

from ..config import get_device
from ..masks import resize_mask
from ..pretrained import DEFAULT_SD_MODEL, ModelUnavailableError, default_model, hub_howto
from ..validation import check_image
from .common import (_check_batch, _check_positive_int, _image_seeds, _move, _paste_back, _quiet, _resolve_dtype,
                     _sync, _use_sdpa, require_diffusers, resize_image, working_size)
from .tiny import RANDOM_WEIGHTS_MARKER, _local_folder

#: Scheduler names accepted by :class:`SDInpainter` -> (diffusers class, config overrides).
#: ``pndm`` is the checkpoint's own scheduler (what Nanavati and Patel ran with the pipeline's defaults).
SCHEDULERS: dict[str, tuple[str, dict[str, Any]]] = {
    "pndm": ("PNDMScheduler", {"skip_prk_steps": True}),
    "ddim": ("DDIMScheduler", {}),
    "dpmpp": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2}),
    "dpmpp_karras": ("DPMSolverMultistepScheduler", {"algorithm_type": "dpmsolver++", "solver_order": 2,
                                                     "use_karras_sigmas": True}),
    "euler": ("EulerDiscreteScheduler", {}),
    "euler_a": ("EulerAncestralDiscreteScheduler", {}),
    "unipc": ("UniPCMultistepScheduler", {}),
    "ddpm": ("DDPMScheduler", {}),
}


def hallucination_summary(rows: Sequence[dict[str, Any]], method: str = "SD-2", reference: str = "Telea",
                          scores: Sequence[str] = ("psnr_hole", "lpips_hole")) -> tuple[list[dict], list[dict]]:
    """Nanavati and Patel's hallucination claim as numbers: per data set and mask shape, ``method`` beside
    ``reference`` (a method that cannot hallucinate, e.g. Telea's diffusion of the border inwards).

    ``rows`` are result rows with ``"data"``, ``"mask"``, ``"method"`` and the ``scores`` (as
    :func:`inpaint_utils.metrics.compare_methods` returns them, plus data and mask). A score missing
    from the rows (LPIPS without its weights) is left out. Returns

    * ``table``: one row per (data, mask): ``n``, each score of ``method``, of ``reference``
      (``<score>_ref``) and the difference ``d_<score>`` (method - reference);
    * ``verdict``: one row per data set: the worst mask shape by each score (lowest PSNR, highest LPIPS)
      and by each difference, and ``circle_worst`` ("k of m": how many criteria put the circle last).
    """
    index = {(r["data"], r["mask"], r["method"]): r for r in rows}
    present = [s for s in scores if any(s in r for r in rows)]
    if not present:
        raise ValueError(f"rows hold none of the scores {list(scores)}")
    lower_is_worse = {s: not s.startswith("lpips") for s in present}
    table: list[dict[str, Any]] = []
    for (data, mask, name), row in index.items():
        if name != method:
            continue
        ref = index.get((data, mask, reference))
        if ref is None:
            raise ValueError(f"no {reference!r} row for data {data!r}, mask {mask!r}")
        out: dict[str, Any] = {"data": data, "mask": mask, "n": row.get("n")}
        for s in present:
            out[s], out[f"{s}_ref"] = float(row[s]), float(ref[s])
            out[f"d_{s}"] = float(row[s]) - float(ref[s])
        table.append(out)
    if not table:
        raise ValueError(f"no rows of method {method!r}")
    verdict = []
    for data in dict.fromkeys(r["data"] for r in table):
        part = [r for r in table if r["data"] == data]
        v: dict[str, Any] = {"data": data}
        for s in present:
            for key in (s, f"d_{s}"):
                pick = min if lower_is_worse[s] else max
                v[f"worst_{key}"] = pick(part, key=lambda r: r[key])["mask"]
        criteria = [k for k in v if k.startswith("worst_")]
        v["circle_worst"] = f"{sum(v[k] == 'circle' for k in criteria)} of {len(criteria)}"
        verdict.append(v)
    return table, verdict



# --------------------------------------------------------------------------------------------------
# Stable Diffusion 2 inpainting
# --------------------------------------------------------------------------------------------------
class SDInpainter:
    """Stable Diffusion inpainting on ``[0, 1]`` tensors with ``1 = hole`` masks (Nanavati and Patel's set-up).

    >>> sd = SDInpainter("tiny", size=64, steps=2)           # doctest: +SKIP
    >>> completed, info = sd(image, mask, generator=0)        # doctest: +SKIP

    Args:
        model: hub id (default ``$INPAINT_SD_MODEL`` or :data:`DEFAULT_SD_MODEL`), a local folder,
            ``"tiny"`` (random weights, images are noise), or a ``StableDiffusionInpaintPipeline``.
            A hub id that is not cached and cannot be downloaded fails at once (:func:`resolve_model`).
        device: ``"auto"`` (cuda, then mps, then cpu) or a device. dtype: ``None`` = float16 on cuda,
            float32 elsewhere.
        scheduler: a name of :data:`SCHEDULERS` (``"ddim"``, ``"dpmpp"``, ``"pndm"``, ...) or ``None``
            for the checkpoint's own (PNDM for SD-2 inpainting, Nanavati and Patel's).
        steps, guidance_scale: denoising steps and classifier-free guidance weight (pipeline defaults 50, 7.5).
        prompt, negative_prompt: text; Nanavati and Patel use the empty prompt.
        cfg: ``"auto"`` runs classifier-free guidance only when it can change the result. With the empty
            prompt and no negative prompt the conditional and unconditional branches see the same
            embedding, so guidance is the identity and doubles the UNet's work; ``"auto"`` then runs one
            branch (same images, about half the time). ``True`` always runs both (diffusers' behaviour).
        size: longer side the image is scaled to before the pipeline (128 -> 512; multiple of 8), and back.
        batch_size: images per pipeline call. seed: used when a call gets no generator.
        attention: ``"sdpa"`` (PyTorch's fused attention) or ``"default"`` (diffusers' choice).
    """

    def __init__(self, model: Any = None, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None,
                 scheduler: str | None = None, steps: int = 50, guidance_scale: float = 7.5, prompt: str = "",
                 negative_prompt: str | None = None, cfg: bool | str = "auto", size: int | None = 512,
                 batch_size: int = 4, seed: int = 0, attention: str = "sdpa", progress: bool = False,
                 allow_download: bool | None = None, random_weights: bool | None = None) -> None:
        self.device = get_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.steps = _check_positive_int(steps, "steps")
        self.guidance_scale = self._check_guidance(guidance_scale)
        self.prompt = self._check_text(prompt, "prompt")
        self.negative_prompt = None if negative_prompt is None else self._check_text(negative_prompt, "negative_prompt")
        if cfg not in ("auto", True, False):
            raise ValueError(f"cfg must be 'auto', True or False, got {cfg!r}")
        self.cfg = cfg
        self.size = size if size is None else _check_positive_int(size, "size")
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        if attention not in ("sdpa", "default"):
            raise ValueError(f"attention must be 'sdpa' or 'default', got {attention!r}")
        if scheduler is not None and scheduler not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {scheduler!r}; choose one of {sorted(SCHEDULERS)} or None")

        self.folder: Path | None = None
        if isinstance(model, (str, os.PathLike)) or model is None:
            self.folder = _local_folder(model, "sd", allow_download)  # fails fast, before diffusers loads anything
            self.pipe = self._load(self.folder)
            self.model_name = str(model if model is not None else default_model("sd"))
            marked = (self.folder / RANDOM_WEIGHTS_MARKER).is_file()
        else:
            require_diffusers()
            from diffusers import StableDiffusionInpaintPipeline

            if not isinstance(model, StableDiffusionInpaintPipeline):
                raise TypeError(f"model must be a hub id, a folder or a StableDiffusionInpaintPipeline, "
                                f"got {type(model).__name__}")
            self.pipe = _move(model, self.device, self.dtype)
            self.model_name = type(model).__name__
            marked = False
        self.random_weights = marked if random_weights is None else bool(random_weights)
        self.pipe.set_progress_bar_config(disable=not progress)
        self.attention = _use_sdpa(self.pipe.unet, self.pipe.vae) if attention == "sdpa" else "default"
        self.multiple = int(self.pipe.vae_scale_factor)
        if self.size is not None and self.size % self.multiple:
            raise ValueError(f"size must be a multiple of {self.multiple} (the VAE's downsampling factor), got {size}")
        self._base_scheduler = self.pipe.scheduler
        self.scheduler_name = "model"
        self.set_scheduler(scheduler)

    # -- construction ------------------------------------------------------------------------------
    def _load(self, folder: Path):
        require_diffusers()
        from diffusers import StableDiffusionInpaintPipeline

        try:
            with _quiet():
                pipe = StableDiffusionInpaintPipeline.from_pretrained(
                    folder, torch_dtype=self.dtype, local_files_only=True, safety_checker=None,
                    requires_safety_checker=False)
        except (OSError, ValueError) as err:
            how = hub_howto(DEFAULT_SD_MODEL, "sd")
            raise ModelUnavailableError(f"could not load an inpainting pipeline from {folder}: {err}\n{how}") from err
        return pipe.to(self.device)

    @staticmethod
    def _check_guidance(value: Any) -> float:
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
            raise ValueError(f"guidance_scale must be a finite number >= 0, got {value!r}")
        return float(value)

    @staticmethod
    def _check_text(value: Any, name: str) -> str:
        if not isinstance(value, str):
            raise TypeError(f"{name} must be a str, got {type(value).__name__}")
        return value

    def set_scheduler(self, name: str | None) -> None:
        """Switch the sampler: a name of :data:`SCHEDULERS` or ``None`` (the checkpoint's own). Built
        from the checkpoint's scheduler configuration (betas, offsets) each time."""
        if name is None:
            self.pipe.scheduler = self._base_scheduler
            self.scheduler_name = "model"
            return
        if name not in SCHEDULERS:
            raise ValueError(f"unknown scheduler {name!r}; choose one of {sorted(SCHEDULERS)} or None")
        import diffusers

        cls_name, overrides = SCHEDULERS[name]
        cls = getattr(diffusers, cls_name)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            self.pipe.scheduler = cls.from_config(self._base_scheduler.config, **overrides)
        self.scheduler_name = name

    # -- inference ---------------------------------------------------------------------------------
    def _guidance(self, guidance_scale: float, prompt: str, cfg: bool | str) -> tuple[float, bool]:
        """(guidance scale passed to the pipeline, whether both CFG branches run)."""
        if guidance_scale <= 1.0 or cfg is False:
            return 1.0, False
        if cfg == "auto" and prompt == "" and not self.negative_prompt:
            return 1.0, False  # both branches would be identical: guidance is the identity
        return guidance_scale, True

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | int | None = None, *,
                 steps: int | None = None, guidance_scale: float | None = None, prompt: str | None = None,
                 cfg: bool | str | None = None) -> tuple[torch.Tensor, dict[str, Any]]:
        """Inpaint ``image`` ``(B, 3, H, W)`` in ``[0, 1]`` where ``mask`` ``(B or 1, 1, H, W)`` is 1.

        ``generator``: a ``torch.Generator`` (per-image seeds are drawn from it), an int seed (image i
        uses ``seed + i``) or ``None`` (the wrapper's ``seed``). ``steps``, ``guidance_scale``,
        ``prompt``, ``cfg`` override the wrapper's settings for this call.

        Returns ``completed`` ``(B, 3, H, W)`` float32 in ``[0, 1]`` on the image's device (known
        pixels exactly the input's) and ``info``: ``raw`` (the output scaled back, **without**
        paste-back), ``seconds`` (per image: each pipeline call's wall time over its images),
        ``seconds_per_image``, ``work_size``, ``seeds``, ``steps``, ``scheduler``, ``guidance_scale``,
        ``cfg`` (whether both guidance branches ran), ``unet_evals`` (UNet evaluations per image),
        ``device``, ``dtype``, ``attention``.
        """
        mask = _check_batch(image, mask)
        steps = self.steps if steps is None else _check_positive_int(steps, "steps")
        guidance_scale = self.guidance_scale if guidance_scale is None else self._check_guidance(guidance_scale)
        prompt = self.prompt if prompt is None else self._check_text(prompt, "prompt")
        cfg = self.cfg if cfg is None else cfg
        if cfg not in ("auto", True, False):
            raise ValueError(f"cfg must be 'auto', True or False, got {cfg!r}")
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        seeds = _image_seeds(generator, b, self.seed)
        scale, both = self._guidance(guidance_scale, prompt, cfg)

        # our mask (1 = hole) is diffusers' mask (white = repaint): no conversion
        image_w = resize_image(image.detach().float().cpu(), work)
        mask_w = resize_mask(mask.detach().float().cpu(), work)
        outputs, seconds = [], []
        for start in range(0, b, self.batch_size):
            stop = min(start + self.batch_size, b)
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:stop]]
            _sync(self.device)
            t0 = time.perf_counter()
            with torch.inference_mode():
                out = self.pipe(prompt=[prompt] * (stop - start),
                                negative_prompt=None if self.negative_prompt is None else
                                [self.negative_prompt] * (stop - start),
                                image=image_w[start:stop].to(self.device),
                                mask_image=mask_w[start:stop].to(self.device),
                                height=work[0], width=work[1], num_inference_steps=steps, guidance_scale=scale,
                                generator=gens, output_type="pt").images
            _sync(self.device)
            elapsed = time.perf_counter() - t0
            seconds += [elapsed / (stop - start)] * (stop - start)
            outputs.append(out.float().cpu())
        raw_work = torch.cat(outputs).clamp_(0.0, 1.0)
        raw = resize_image(raw_work, (h, w)).to(image.device)
        completed = _paste_back(raw, image.float(), mask.to(image.device))
        info = {
            "raw": raw, "seconds": seconds, "seconds_per_image": sum(seconds) / len(seconds), "work_size": work,
            "seeds": seeds, "steps": steps, "scheduler": self.scheduler_name,
            "scheduler_class": type(self.pipe.scheduler).__name__, "guidance_scale": guidance_scale, "cfg": both,
            "unet_evals": len(self.pipe.scheduler.timesteps) * (2 if both else 1), "device": str(self.device),
            "dtype": str(self.dtype).replace("torch.", ""), "attention": self.attention,
        }
        return completed, info

    def roundtrip(self, image: torch.Tensor) -> dict[str, torch.Tensor]:
        """Where the change outside the mask comes from: ``{"resize": down(up(image)), "vae":
        down(decode(encode(up(image))))}`` (the VAE's mean latent, no diffusion), both ``(B, 3, H, W)``."""
        check_image(image)
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        up = resize_image(image.detach().float().cpu(), work)
        vae = self.pipe.vae
        parts = []
        with torch.inference_mode():
            for start in range(0, b, self.batch_size):
                x = up[start:start + self.batch_size].to(self.device, self.dtype) * 2.0 - 1.0  # [0, 1] -> [-1, 1]
                latents = vae.encode(x).latent_dist.mode()
                decoded = vae.decode(latents).sample
                parts.append(((decoded.float() + 1.0) / 2.0).clamp(0.0, 1.0).cpu())
        return {"resize": resize_image(up, (h, w)).to(image.device),
                "vae": resize_image(torch.cat(parts), (h, w)).to(image.device)}

    def warmup(self, size: int | None = None) -> None:
        """One short call (first-call overheads: kernels, caches) so that timings measure steady state."""
        side = size or (self.size or 64)
        x = torch.full((1, 3, side, side), 0.5)
        m = torch.zeros(1, 1, side, side)
        m[..., side // 4: side // 2, side // 4: side // 2] = 1.0
        self(x, m, generator=0, steps=1)

    def __repr__(self) -> str:
        return (f"SDInpainter(model={self.model_name!r}, device={self.device}, dtype={self.dtype}, scheduler="
                f"{self.scheduler_name!r}, steps={self.steps}, guidance_scale={self.guidance_scale}, size={self.size}, "
                f"batch_size={self.batch_size}, random_weights={self.random_weights})")
