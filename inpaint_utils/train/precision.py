"""Where a training's numbers are computed (:func:`resolve_precision`): the dtype of the forward passes
(float32, or bfloat16 / float16 autocast) and the memory format of the images and convolution weights,
decided once per run from :class:`~inpaint_utils.train.TrainConfig` and the device.

On CUDA (and MPS) nothing changes from before: ``amp`` / ``amp_dtype`` decide (AMP on CUDA by default).
On the CPU ``cpu_precision`` decides: ``"fp32"``, ``"bf16"`` (autocast around the forward passes), or
``"auto"``: bfloat16 only where the CPU computes it natively (:func:`native_bf16`) *and* the model is listed
in :data:`CPU_FASTER` as measured faster that way (``benchmarks/bench_training.py``), float32 elsewhere. The
weights, the optimizers' state, the losses (:meth:`StepContext.backward` takes the loss as float32) and the
checkpoints stay float32 in every case, so a run resumes under another precision than it was written with.
``memory_format`` ``"auto"`` is ``channels_last`` where :data:`CPU_FASTER` says so for the model and the dtype
chosen on the CPU (``"bf16_channels_last"`` for a bfloat16 run, ``"channels_last"`` for a float32 one),
``contiguous`` elsewhere (on CUDA too); an explicit choice is honoured on every device.
"""
from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from pathlib import Path

import torch

from .settings import TrainConfig

__all__ = ["CPU_FASTER", "Precision", "native_bf16", "resolve_precision"]

#: model name (the ``model_name`` given to :func:`~inpaint_utils.train.train`) -> what
#: ``benchmarks/bench_training.py`` measured faster on a CPU: ``"bf16"`` (bfloat16 autocast against float32, on a
#: CPU with native BF16), ``"bf16_channels_last"`` (the memory format used with it: channels_last where that was
#: faster in bfloat16) and ``"channels_last"`` (the memory format of float32 runs). A model that is not listed
#: trains in float32, contiguous, under ``"auto"``.
#:
#: bfloat16, measured 2026-12-08 on a 2-core AMD EPYC with AVX512-BF16 (``/proc/cpuinfo`` flag ``avx512_bf16``, no
#: AMX), cpu profile (64 px), one thread, 20 timed steps after 2, the machine idle; images/s against float32
#: contiguous: bfloat16 contiguous / bfloat16 channels_last: CE 1.13x / 1.33x, cascade CE 1.21x / 1.27x, GLCIC
#: 1.31x / 1.47x, DeepFill v1 0.98x / 1.40x, PConv 1.19x / 1.12x, DeepFill v2 1.25x / 1.15x. Every model is
#: faster in bfloat16 in its better layout, so ``auto`` picks bfloat16 on such a CPU for five of them; not for
#: DeepFill v1, whose only faster setting (bfloat16 with channels_last) gave NaN weights in its critic on a tiny
#: run (below). On a CPU without native BF16, where bfloat16 is emulated and 4-30x slower: float32.
#:
#: float32 channels_last is not switched on by ``auto``: on the same machine it measured 0.99x-1.17x of
#: contiguous, and on a Zen 3 EPYC (AVX2, smoke profile) 1.18x-1.63x for five models but 0.31x for GLCIC; it
#: changes the numbers at rounding level, so a float32 run keeps reproducing the committed float32 runs to the
#: digit. Pass ``--memory-format channels_last`` for its speed.
CPU_FASTER: dict[str, dict[str, bool]] = {
    "context_encoder": {"bf16": True, "bf16_channels_last": True, "channels_last": False},          # 1.33x
    "cascade_context_encoder": {"bf16": True, "bf16_channels_last": True, "channels_last": False},  # 1.27x
    "glcic": {"bf16": True, "bf16_channels_last": True, "channels_last": False},                    # 1.47x
    # DeepFill v1: 0.98x in bfloat16 contiguous; 1.40x with channels_last, but there its critic's weights turned
    # NaN after 2 steps at 16 px, batch 2 (WGAN-GP's double backward; fine at 32 and 64 px for 30 steps): float32
    "deepfill": {"bf16": False, "bf16_channels_last": False, "channels_last": False},
    "partial_conv": {"bf16": True, "bf16_channels_last": False, "channels_last": False},            # 1.19x
    "deepfill_v2": {"bf16": True, "bf16_channels_last": False, "channels_last": False},             # 1.25x
}

_DTYPE_NAMES = {None: "float32", torch.bfloat16: "bfloat16", torch.float16: "float16"}
_FORMATS = {"contiguous": torch.contiguous_format, "channels_last": torch.channels_last}
#: /proc/cpuinfo flags of native BF16 arithmetic: x86 AVX512-BF16 and AMX-BF16, Arm's BF16 extension
_BF16_FLAGS = ("avx512_bf16", "amx_bf16", "bf16")


@dataclass(frozen=True)
class Precision:
    """What :func:`resolve_precision` decided: ``amp_dtype`` (``None``: float32, no autocast),
    ``memory_format`` (``"contiguous"`` or ``"channels_last"``) and ``why`` (one sentence)."""

    amp_dtype: torch.dtype | None
    memory_format: str
    why: str

    @property
    def name(self) -> str:
        """``"float32"``, ``"bfloat16"`` or ``"float16"``: the dtype of the forward passes."""
        return _DTYPE_NAMES[self.amp_dtype]

    @property
    def torch_memory_format(self) -> torch.memory_format:
        return _FORMATS[self.memory_format]


@functools.lru_cache(maxsize=4)
def native_bf16(cpuinfo: str | os.PathLike = "/proc/cpuinfo") -> tuple[bool, str]:
    """Whether this CPU computes bfloat16 natively, and what that was read from: the ``flags`` /
    ``Features`` lines of ``/proc/cpuinfo`` (``avx512_bf16``, ``amx_bf16``, Arm's ``bf16``) where the file
    exists, else torch's CPU checks (``torch.cpu._is_avx512_bf16_supported()``,
    ``torch.cpu._is_amx_tile_supported()``); never without oneDNN (``torch.backends.mkldnn.is_available()``),
    whose kernels do the bfloat16 convolutions. ``cpuinfo``: another file to read the flags from (tests)."""
    if not torch.backends.mkldnn.is_available():
        return False, "torch.backends.mkldnn.is_available() is False (no oneDNN kernels)"
    try:
        text = Path(cpuinfo).read_text(errors="replace")
    except OSError:
        text = ""
    flags: set[str] = set()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in ("flags", "Features"):
            flags.update(value.split())
    if flags:
        found = [f for f in _BF16_FLAGS if f in flags]
        return (True, f"{cpuinfo} flags {', '.join(found)}") if found else \
            (False, f"{cpuinfo} has none of the flags {', '.join(_BF16_FLAGS)}")
    checks = [name for name in ("_is_avx512_bf16_supported", "_is_amx_tile_supported")
              if callable(getattr(torch.cpu, name, None)) and getattr(torch.cpu, name)()]
    if checks:
        return True, f"torch.cpu.{checks[0]}()"
    return False, "torch.cpu._is_avx512_bf16_supported() and _is_amx_tile_supported() are False"


def _cuda_amp(config: TrainConfig, device: torch.device) -> torch.dtype | None:
    """``amp`` / ``amp_dtype`` as they always were: on for CUDA by default, bf16 where the GPU has it."""
    use = config.amp if config.amp is not None else device.type == "cuda"
    if not use:
        return None
    if config.amp_dtype == "bf16":
        return torch.bfloat16
    if config.amp_dtype == "fp16":
        if device.type != "cuda":
            raise ValueError(f"amp_dtype='fp16' needs a CUDA device (got {device}); use 'bf16' or amp=False")
        return torch.float16
    if device.type == "cuda":
        return torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16
    return torch.bfloat16


def _cpu_dtype(config: TrainConfig, model_name: str) -> tuple[torch.dtype | None, str]:
    asked = config.cpu_precision
    if config.amp is not None:   # the older switch, still honoured: amp=True is bf16 on a CPU
        amp = _cuda_amp(config, torch.device("cpu"))
        if asked != "auto" and (asked == "bf16") != (amp is not None):
            raise ValueError(f"amp={config.amp} contradicts cpu_precision={asked!r}: set one of them "
                             f"(cpu_precision is the CPU's setting; leave amp=None)")
        return amp, f"amp={config.amp}"
    if asked == "fp32":
        return None, "cpu_precision='fp32'"
    native, read = native_bf16()
    if asked == "bf16":
        return torch.bfloat16, "cpu_precision='bf16'" + ("" if native else f" (no native BF16: {read}; emulated)")
    if not native:
        return None, f"auto: no native BF16 on this CPU ({read})"
    if not CPU_FASTER.get(model_name, {}).get("bf16", False):
        return None, f"auto: native BF16 ({read}), but {model_name!r} is not measured faster in bfloat16 (CPU_FASTER)"
    return torch.bfloat16, f"auto: native BF16 ({read}) and {model_name!r} measured faster in bfloat16"


def resolve_precision(config: TrainConfig, device: torch.device | str, model_name: str) -> Precision:
    """The forward dtype and the memory format of a run of ``model_name`` on ``device`` (see the module's
    docstring). On a device other than the CPU ``cpu_precision`` is not used. Raises ``ValueError`` for
    ``amp_dtype='fp16'`` off CUDA, and for ``amp`` set against an explicit ``cpu_precision``."""
    device = torch.device(device)
    if device.type == "cpu":
        amp_dtype, why = _cpu_dtype(config, model_name)
    else:
        amp_dtype = _cuda_amp(config, device)
        why = f"{device.type}: amp={config.amp}, amp_dtype={config.amp_dtype!r}"
    layout = config.memory_format
    if layout == "auto":
        key = "bf16_channels_last" if amp_dtype is torch.bfloat16 else "channels_last"
        faster = device.type == "cpu" and CPU_FASTER.get(model_name, {}).get(key, False)
        layout = "channels_last" if faster else "contiguous"
    return Precision(amp_dtype, layout, f"{why}; memory format {layout}"
                     + (" (auto)" if config.memory_format == "auto" else ""))
