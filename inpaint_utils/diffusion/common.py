"""What the two diffusion wrappers share: the optional dependency, quiet loading, the resizing and mask
conventions (128 -> 512 -> 128; RePaint's mask is 1 = keep), per-image seeds, dtypes, PyTorch's fused
attention and the paste-back that keeps every known pixel.
"""
from __future__ import annotations

import contextlib
import warnings
from typing import Any, Iterator

import torch
import torch.nn.functional as F

from ..pretrained import DIFFUSION_INSTALL_HINT
from ..validation import check_image, check_image_mask, check_mask

# --------------------------------------------------------------------------------------------------
# The optional dependency and quiet loading
# --------------------------------------------------------------------------------------------------
def require_diffusers():
    """``import diffusers`` (and check transformers), or ``ImportError`` saying what to install."""
    try:
        import diffusers  # noqa: F401
        import transformers  # noqa: F401
    except ImportError as err:
        raise ImportError(f"the diffusion notebook needs diffusers and transformers ({err}); install them with: "
                          f"{DIFFUSION_INSTALL_HINT}") from err
    return diffusers



@contextlib.contextmanager
def _quiet(enabled: bool = True) -> Iterator[None]:
    """Silence the loading / saving progress bars of diffusers and transformers (restored after)."""
    if not enabled:
        yield
        return
    from diffusers.utils import logging as dlog
    from transformers.utils import logging as tlog

    was = (dlog.is_progress_bar_enabled(), tlog.is_progress_bar_enabled())
    dlog.disable_progress_bar()
    tlog.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message=r".*(deprecated|safety checker|is_safetensors).*")
            yield
    finally:
        if was[0]:
            dlog.enable_progress_bar()
        if was[1]:
            tlog.enable_progress_bar()


# --------------------------------------------------------------------------------------------------
# Resizing (128 -> 512 -> 128) and mask conventions
# --------------------------------------------------------------------------------------------------
def _check_positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be a positive int, got {value!r}")
    return value


def working_size(height: int, width: int, size: int | None, multiple: int = 8) -> tuple[int, int]:
    """The (H, W) a model runs at: the image scaled so that its longer side is ``size`` (Nanavati and
    Patel: 128 -> 512), each side rounded to a multiple of ``multiple`` (the VAE's factor 8; at least one
    multiple). ``size=None`` keeps the image's own size, which must then be a multiple already."""
    multiple = _check_positive_int(multiple, "multiple")
    if size is None:
        if height % multiple or width % multiple:
            raise ValueError(f"image size {height}x{width} is not a multiple of {multiple}; pass size= to resize")
        return height, width
    size = _check_positive_int(size, "size")
    if size % multiple:
        raise ValueError(f"size must be a multiple of {multiple} (the model's downsampling factor), got {size}")
    scale = size / max(height, width)
    h, w = (max(multiple, int(round(side * scale / multiple)) * multiple) for side in (height, width))
    return h, w


def resize_image(image: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
    """Bicubic resize of ``(B, 3, H, W)`` images in ``[0, 1]`` to ``size`` (H, W), antialiased when
    shrinking, clamped to ``[0, 1]`` (bicubic overshoots at edges). 128 -> 512 -> 128 returns a smooth
    image within a few 1e-3 and a constant one exactly."""
    check_image(image)
    size = (int(size[0]), int(size[1]))
    if tuple(image.shape[-2:]) == size:
        return image
    shrink = size[0] < image.shape[-2] or size[1] < image.shape[-1]
    out = F.interpolate(image.float(), size=size, mode="bicubic", align_corners=False, antialias=shrink)
    return out.clamp_(0.0, 1.0).to(image.dtype)


def to_repaint_mask(mask: torch.Tensor) -> torch.Tensor:
    """Our mask (1 = hole) -> RePaint's (1 = **keep**, 0 = inpaint): ``1 - mask``. The one place the
    conversion happens (diffusers' ``RePaintPipeline`` docs: "0.0 define which part of the original
    image to inpaint")."""
    check_mask(mask)
    return 1.0 - mask


def roundtrip_error(raw: torch.Tensor, image: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Per-pixel change ``|raw - image|`` averaged over RGB, ``(B, 1, H, W)`` in ``[0, 1]``; with
    ``mask`` the hole is set to 0, leaving the error **outside** the mask (the VAE round trip of a
    latent diffusion model; zero after paste-back)."""
    check_image(raw, "raw")
    check_image(image)
    if raw.shape != image.shape:
        raise ValueError(f"raw {tuple(raw.shape)} and image {tuple(image.shape)} must have the same shape")
    err = (raw.float() - image.float()).abs().mean(dim=1, keepdim=True)
    if mask is not None:
        check_image_mask(image, mask)
        err = err * (1.0 - mask.float())
    return err.clamp_(0.0, 1.0)



# --------------------------------------------------------------------------------------------------
# Shared helpers of the two wrappers
# --------------------------------------------------------------------------------------------------
def _image_seeds(generator: torch.Generator | int | None, n: int, default: int) -> list[int]:
    """One seed per image: ``seed + i`` for an int (``default`` when None), else drawn from the generator."""
    if generator is None:
        generator = default
    if isinstance(generator, bool):
        raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {generator!r}")
    if isinstance(generator, int):
        return [int(generator) + i for i in range(n)]
    if isinstance(generator, torch.Generator):
        return torch.randint(0, 2**62, (n,), generator=generator, device=generator.device).tolist()
    raise TypeError(f"generator must be a torch.Generator, an int seed or None, got {type(generator).__name__}")


def _resolve_dtype(dtype: torch.dtype | str | None, device: torch.device) -> torch.dtype:
    if dtype is None or dtype == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    names = {"fp16": torch.float16, "float16": torch.float16, "fp32": torch.float32, "float32": torch.float32,
             "bf16": torch.bfloat16, "bfloat16": torch.bfloat16}
    if isinstance(dtype, str):
        if dtype not in names:
            raise ValueError(f"dtype must be one of {sorted(names)} or a torch.dtype, got {dtype!r}")
        dtype = names[dtype]
    if dtype not in (torch.float16, torch.float32, torch.bfloat16):
        raise ValueError(f"dtype must be float16, bfloat16 or float32, got {dtype}")
    if dtype == torch.float16 and device.type == "cpu":
        raise ValueError("float16 is not supported on the CPU here; use dtype=None (float32 on the CPU)")
    return dtype


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _use_sdpa(*modules: Any) -> str:
    """Set PyTorch's scaled-dot-product attention on every attention layer of the modules; return the
    processor name(s) in use."""
    from diffusers.models.attention_processor import AttnProcessor2_0

    names = set()
    for module in modules:
        if module is None or not hasattr(module, "set_attn_processor"):
            continue
        if getattr(module, "attn_processors", None):
            module.set_attn_processor(AttnProcessor2_0())
            names |= {type(p).__name__ for p in module.attn_processors.values()}
    return ",".join(sorted(names)) or "none"


def _move(pipe: Any, device: torch.device, dtype: torch.dtype) -> Any:
    """``pipe.to(device, dtype)`` without diffusers' note on casting a model built in memory."""
    from diffusers.utils import logging as dlog

    level = dlog.get_verbosity()
    dlog.set_verbosity_error()
    try:
        return pipe.to(device, dtype)
    finally:
        dlog.set_verbosity(level)


def _check_batch(image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    check_image_mask(image, mask)
    return mask.expand(image.shape[0], -1, -1, -1)


def _paste_back(pred: torch.Tensor, image: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """``where(mask, pred, image)``: hole from the prediction, every known pixel exactly the input's."""
    return torch.where(mask.to(torch.bool), pred.to(image.dtype), image)
