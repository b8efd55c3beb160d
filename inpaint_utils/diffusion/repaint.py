"""RePaint (Lugmayr et al. 2022) on a pixel-space DDPM: :class:`RePaintInpainter`, what its resampling
schedule costs (:func:`repaint_schedule`), and its two updates written out on tensors (:func:`repaint_step`,
one reverse step with the known region replaced; :func:`repaint_jump_back`, the resampling's jump back up):
what diffusers' ``RePaintScheduler`` computes, for notebook 06's exercise.
"""
from __future__ import annotations

import os
import time
import warnings
from pathlib import Path
from typing import Any

import torch

from ..config import get_device
from ..masks import resize_mask
from ..pretrained import DEFAULT_DDPM_MODEL, ModelUnavailableError, default_model, hub_howto
from .common import (_check_batch, _check_positive_int, _image_seeds, _move, _paste_back, _quiet, _resolve_dtype,
                     _sync, _use_sdpa, require_diffusers, resize_image, to_repaint_mask, working_size)
from .tiny import RANDOM_WEIGHTS_MARKER, _local_folder

def repaint_schedule(steps: int = 250, jump_length: int = 10, jump_n_sample: int = 10,
                     num_train_timesteps: int = 1000) -> dict[str, Any]:
    """RePaint's time schedule (diffusers' ``RePaintScheduler.set_timesteps``) and what it costs.

    Returns ``{"timesteps": [...], "unet_calls": n, "undo_steps": m}``: every decrease of t is one UNet
    call (denoise, then replace the known pixels); every increase is one "undo" (re-noising, no UNet).
    ``steps=250, jump_length=10, jump_n_sample=10`` (the paper, and the "Image inpainting" overview notes)
    gives 2410 UNet calls per image, against 250 without resampling."""
    for value, name in ((steps, "steps"), (jump_length, "jump_length"), (jump_n_sample, "jump_n_sample")):
        _check_positive_int(value, name)
    require_diffusers()
    from diffusers import RePaintScheduler

    scheduler = RePaintScheduler(num_train_timesteps=num_train_timesteps)
    scheduler.set_timesteps(steps, jump_length, jump_n_sample)
    timesteps = [int(t) for t in scheduler.timesteps]
    calls = undos = 0
    t_last = timesteps[0] + 1
    for t in timesteps:  # the loop of RePaintPipeline.__call__
        if t < t_last:
            calls += 1
        else:
            undos += 1
        t_last = t
    return {"timesteps": timesteps, "unet_calls": calls, "undo_steps": undos}



def _alpha_bar(alphas_cumprod: torch.Tensor, t: int) -> torch.Tensor:
    """``alpha_bar_t`` (a 0-d tensor), with ``alpha_bar_{-1} = 1`` (the clean image, t = -1)."""
    if isinstance(t, bool) or not isinstance(t, int) or not -1 <= t < alphas_cumprod.shape[0]:
        raise ValueError(f"t must be an int in [-1, {alphas_cumprod.shape[0] - 1}], got {t!r}")
    return alphas_cumprod[t] if t >= 0 else alphas_cumprod.new_ones(())


def repaint_step(x_t: torch.Tensor, t: int, image: torch.Tensor, mask: torch.Tensor, eps: torch.Tensor,
                 alphas_cumprod: torch.Tensor, noise_known: torch.Tensor, noise_unknown: torch.Tensor) -> torch.Tensor:
    """One reverse step of RePaint (Lugmayr et al. 2022, eq. 8 and Algorithm 1), ``x_t -> x_{t-1}``, in the
    DDPM's ``[-1, 1]`` range, with the course's masks (**1 = hole**; the paper's ``m`` is 1 = known):

    * known region, noised to level ``t - 1`` (eq. 8a): ``sqrt(ab_{t-1}) image + sqrt(1 - ab_{t-1}) noise_known``;
    * unknown region, the model's DDPM ancestral step (eq. 8b, eta = 1): from ``eps`` (the model's noise
      prediction at ``t``), ``x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)``, then
      ``sqrt(ab_{t-1}) x0 + sqrt(1 - ab_{t-1} - s^2) eps + s noise_unknown`` with the posterior variance
      ``s^2 = (1 - ab_{t-1}) / (1 - ab_t) (1 - ab_t / ab_{t-1})`` (the DDPM posterior mean written as DDIM's
      eq. 12, as diffusers does);
    * ``x_{t-1} = mask * unknown + (1 - mask) * known`` (eq. 8c).

    ``ab_t`` is ``alphas_cumprod[t]`` and ``ab_{-1} = 1``, so at ``t = 0`` the step returns the image itself in the
    known region and the noise-free ``x0`` in the hole. ``x_t``, ``image``, ``eps``, the noises ``(B, C, H, W)``;
    ``mask`` ``(B or 1, 1, H, W)``. Equals ``RePaintScheduler.step`` (eta 1, ``clip_sample=False``, one inference
    step per training step) when both noises are the one it draws (diffusers reuses one noise for both regions).
    """
    ab_t, ab_prev = _alpha_bar(alphas_cumprod, t), _alpha_bar(alphas_cumprod, t - 1)
    x0 = (x_t - (1 - ab_t).sqrt() * eps) / ab_t.sqrt()                            # predicted clean image
    var = (1 - ab_prev) / (1 - ab_t) * (1 - ab_t / ab_prev)                       # DDPM posterior variance
    unknown = ab_prev.sqrt() * x0 + (1 - ab_prev - var).clamp_min(0).sqrt() * eps + var.sqrt() * noise_unknown
    known = ab_prev.sqrt() * image + (1 - ab_prev).sqrt() * noise_known
    return mask * unknown + (1 - mask) * known


def repaint_jump_back(x: torch.Tensor, t_from: int, t_to: int, alphas_cumprod: torch.Tensor,
                      noise: torch.Tensor) -> torch.Tensor:
    """RePaint's resampling jump (section 4.2): ``x_{t_from} -> x_{t_to}``, ``t_to > t_from``, by the forward
    process ``q(x_{t_to} | x_{t_from})`` in one draw, ``sqrt(ab_to / ab_from) x + sqrt(1 - ab_to / ab_from)
    noise`` (``ab`` as in :func:`repaint_step`; one step back up, ``t_to = t_from + 1``, is
    ``sqrt(1 - beta) x + sqrt(beta) noise``). The whole image is noised: the next reverse steps
    harmonise the hole with the known region again."""
    if not t_to > t_from:
        raise ValueError(f"the jump goes back up the chain: t_to must be > t_from, got {t_from} -> {t_to}")
    ratio = _alpha_bar(alphas_cumprod, t_to) / _alpha_bar(alphas_cumprod, t_from)
    return ratio.sqrt() * x + (1 - ratio).sqrt() * noise


# --------------------------------------------------------------------------------------------------
# RePaint
# --------------------------------------------------------------------------------------------------
class RePaintInpainter:
    """RePaint (Lugmayr et al. 2022) with diffusers' ``RePaintPipeline`` / ``RePaintScheduler`` on a
    pixel-space DDPM, on ``[0, 1]`` tensors with ``1 = hole`` masks.

    Args:
        model: hub id (default ``$INPAINT_DDPM_MODEL`` or :data:`DEFAULT_DDPM_MODEL`), a folder with
            ``unet/`` and ``scheduler/`` (or the files at its root), ``"tiny"``, or a ``RePaintPipeline``.
        steps, jump_length, jump_n_sample: the schedule (the paper and the overview notes: 250, 10, 10 -> 2410 UNet
            calls per image; see :func:`repaint_schedule`). eta: 1.0, RePaint's DDPM ancestral sampling in
            the hole (the paper; 0 would be a deterministic DDIM-like step, the value of diffusers' example).
        size: side the images are scaled to (default: the DDPM's training size, 256 for CelebA-HQ).
        batch_size: images per pipeline call. A call's randomness: the initial noise of each image comes
            from its own seed, the resampling noise of a batch from the seed of its first image, so the
            same seed **and** batch size give the same result.
    """

    def __init__(self, model: Any = None, device: str | torch.device = "auto", dtype: torch.dtype | str | None = None,
                 steps: int = 250, jump_length: int = 10, jump_n_sample: int = 10, eta: float = 1.0,
                 size: int | None = None, batch_size: int = 4, seed: int = 0, progress: bool = False,
                 allow_download: bool | None = None, random_weights: bool | None = None) -> None:
        self.device = get_device(device)
        self.dtype = _resolve_dtype(dtype, self.device)
        self.steps = _check_positive_int(steps, "steps")
        self.jump_length = _check_positive_int(jump_length, "jump_length")
        self.jump_n_sample = _check_positive_int(jump_n_sample, "jump_n_sample")
        if isinstance(eta, bool) or not isinstance(eta, (int, float)) or not 0.0 <= eta <= 1.0:
            raise ValueError(f"eta must be a number in [0, 1], got {eta!r}")
        self.eta = float(eta)
        self.batch_size = _check_positive_int(batch_size, "batch_size")
        if isinstance(seed, bool) or not isinstance(seed, int):
            raise TypeError(f"seed must be an int, got {seed!r}")
        self.seed = seed
        self.folder: Path | None = None
        if isinstance(model, (str, os.PathLike)) or model is None:
            self.folder = _local_folder(model, "ddpm", allow_download)
            self.pipe = self._load(self.folder)
            self.model_name = str(model if model is not None else default_model("ddpm"))
            marked = (self.folder / RANDOM_WEIGHTS_MARKER).is_file()
        else:
            require_diffusers()
            from diffusers import RePaintPipeline

            if not isinstance(model, RePaintPipeline):
                raise TypeError(f"model must be a hub id, a folder or a RePaintPipeline, got {type(model).__name__}")
            self.pipe = _move(model, self.device, self.dtype)
            self.model_name = type(model).__name__
            marked = False
        self.random_weights = marked if random_weights is None else bool(random_weights)
        self.pipe.set_progress_bar_config(disable=not progress)
        self.attention = _use_sdpa(self.pipe.unet)
        native = self.pipe.unet.config.sample_size
        native = native if isinstance(native, int) else int(native[0])
        self.size = native if size is None else _check_positive_int(size, "size")
        self.multiple = 2 ** (len(self.pipe.unet.config.block_out_channels) - 1)
        if self.size % self.multiple:
            raise ValueError(f"size must be a multiple of {self.multiple} for this UNet, got {self.size}")

    def _load(self, folder: Path):
        require_diffusers()
        from diffusers import RePaintPipeline, RePaintScheduler, UNet2DModel

        unet_sub = "unet" if (folder / "unet" / "config.json").is_file() else None
        sched_sub = "scheduler" if (folder / "scheduler" / "scheduler_config.json").is_file() else None
        try:
            with _quiet():
                unet = UNet2DModel.from_pretrained(folder, subfolder=unet_sub, torch_dtype=self.dtype,
                                                   local_files_only=True)
                scheduler = RePaintScheduler.from_pretrained(folder, subfolder=sched_sub)
        except (OSError, ValueError) as err:
            how = hub_howto(DEFAULT_DDPM_MODEL, "ddpm")
            raise ModelUnavailableError(f"could not load a DDPM from {folder}: {err}\n{how}") from err
        return RePaintPipeline(unet=unet, scheduler=scheduler).to(self.device)

    def schedule(self) -> dict[str, Any]:
        """:func:`repaint_schedule` of this wrapper's settings."""
        return repaint_schedule(self.steps, self.jump_length, self.jump_n_sample,
                                self.pipe.scheduler.config.num_train_timesteps)

    def __call__(self, image: torch.Tensor, mask: torch.Tensor, generator: torch.Generator | int | None = None
                 ) -> tuple[torch.Tensor, dict[str, Any]]:
        """Inpaint like :meth:`SDInpainter.__call__`; returns ``completed`` and ``info`` (``raw``,
        ``seconds``, ``seconds_per_image``, ``work_size``, ``seeds``, ``unet_calls`` per image, ...)."""
        mask = _check_batch(image, mask)
        b, _, h, w = image.shape
        work = working_size(h, w, self.size, self.multiple)
        seeds = _image_seeds(generator, b, self.seed)
        image_w = resize_image(image.detach().float().cpu(), work) * 2.0 - 1.0     # RePaint works in [-1, 1]
        keep_w = to_repaint_mask(resize_mask(mask.detach().float().cpu(), work))  # RePaint: 1 = keep
        outputs, seconds = [], []
        for start in range(0, b, self.batch_size):
            stop = min(start + self.batch_size, b)
            gens = [torch.Generator("cpu").manual_seed(s) for s in seeds[start:stop]]
            _sync(self.device)
            t0 = time.perf_counter()
            with torch.inference_mode(), warnings.catch_warnings():
                warnings.filterwarnings("ignore", message=r".*preprocess.*deprecated.*")
                out = self.pipe(image=image_w[start:stop].to(self.device, self.dtype),
                                mask_image=keep_w[start:stop].to(self.device, self.dtype),
                                num_inference_steps=self.steps, eta=self.eta, jump_length=self.jump_length,
                                jump_n_sample=self.jump_n_sample, generator=gens, output_type="np").images
            _sync(self.device)
            elapsed = time.perf_counter() - t0
            seconds += [elapsed / (stop - start)] * (stop - start)
            outputs.append(torch.from_numpy(out).permute(0, 3, 1, 2).float())  # (b, H, W, 3) -> (b, 3, H, W)
        raw_work = torch.cat(outputs).clamp_(0.0, 1.0)
        raw = resize_image(raw_work, (h, w)).to(image.device)
        completed = _paste_back(raw, image.float(), mask.to(image.device))
        info = {
            "raw": raw, "raw_work": raw_work, "seconds": seconds, "seconds_per_image": sum(seconds) / len(seconds),
            "work_size": work, "seeds": seeds, "steps": self.steps, "jump_length": self.jump_length,
            "jump_n_sample": self.jump_n_sample, "unet_calls": self.schedule()["unet_calls"],
            "device": str(self.device), "dtype": str(self.dtype).replace("torch.", ""), "attention": self.attention,
        }
        return completed, info

    def __repr__(self) -> str:
        return (f"RePaintInpainter(model={self.model_name!r}, device={self.device}, dtype={self.dtype}, "
                f"steps={self.steps}, jump_length={self.jump_length}, jump_n_sample={self.jump_n_sample}, "
                f"size={self.size}, batch_size={self.batch_size}, random_weights={self.random_weights})")
