"""LPIPS (Zhang et al. 2018), the perceptual distance of the course's tables: the model and the distance.

:func:`load_lpips` loads the v0.1 **squeeze** model offline from one ``.npz`` (``$INPAINT_LPIPS``, or the
shared data folder's ``weights/lpips_squeeze/``: :func:`inpaint_utils.pretrained.resolve_lpips_weights` says
what the file holds); without that file it is the ``lpips`` package's own model, ``lpips.LPIPS(net=...)``,
whose ImageNet backbone torchvision takes from its cache or downloads (a short time limit, never a hang; never
with ``INPAINT_OFFLINE=1``, as in the tests); offline, a ``FileNotFoundError`` says what to put where. The
model's own weights are frozen. ``lpips`` expects inputs in ``[-1, 1]``; our images are ``[0, 1]``; the
conversion happens in exactly one place, :func:`_to_lpips_range` (feeding ``[0, 1]`` images unconverted is the
classic silent LPIPS bug).
"""
from __future__ import annotations

import os
import warnings

import numpy as np
import torch

from .. import pretrained
from ..pretrained import LPIPS_BACKBONES
from .pixel import _REDUCTIONS, _acc_dtype, _check_choice, _check_pair, _masked_mean, _reduce, _region_weight

# --------------------------------------------------------------------------------------------------
# LPIPS (offline .npz, else the lpips package's own weights)
# --------------------------------------------------------------------------------------------------
_LPIPS_CACHE: dict[tuple[str, str, str], torch.nn.Module] = {}


def _package_lpips(net: str, allow_download: bool) -> torch.nn.Module:
    """``lpips.LPIPS(net=net)`` as its users build it: lin layers from the wheel, the backbone from
    torchvision (its cache, else a download: :func:`inpaint_utils.pretrained.download_lpips_backbone`)."""
    import lpips

    def build() -> torch.nn.Module:
        with warnings.catch_warnings():  # torchvision's "'pretrained' is deprecated" from inside lpips
            warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
            return lpips.LPIPS(net=net, verbose=False)

    return pretrained.download_lpips_backbone(net, build, allow_download)


def load_lpips(net: str = "squeeze", weights: str | os.PathLike | None = None,
               device: str | torch.device = "cpu", allow_download: bool = True) -> torch.nn.Module:
    """The LPIPS v0.1 model, frozen, in eval mode, on ``device``.

    Weights: ``weights`` (a file or the folder holding ``lpips_squeeze_v0.1_full.npz``), else
    ``$INPAINT_LPIPS``; the first one given is the one used, loaded **offline** (built with
    ``pnet_rand=True`` so torchvision fetches nothing; every backbone and linear key must come from the
    file, checked). With neither: ``<shared data>/weights/lpips_squeeze/lpips_squeeze_v0.1_full.npz``
    when present, else the ``lpips`` package's own ``lpips.LPIPS(net=net)`` (``"squeeze"``, ``"alex"``
    or ``"vgg"``), whose backbone torchvision takes from its cache or downloads (``allow_download``,
    never with ``INPAINT_OFFLINE=1``; a host that does not answer within 3 s or a connection silent for
    :data:`LPIPS_DOWNLOAD_TIMEOUT` s fails at once). Raises ``FileNotFoundError`` saying what was tried
    and what to put where. Cached per (net, weights, device): calling it again is free.

    The returned module takes images in ``[-1, 1]``; use :func:`lpips_distance` for ``[0, 1]`` images.
    """
    if net not in LPIPS_BACKBONES:
        raise ValueError(f"net must be one of {sorted(LPIPS_BACKBONES)} (only 'squeeze' loads from the offline "
                         f".npz), got {net!r}")
    device = torch.device(device)
    path = pretrained.resolve_lpips_weights(weights, net)
    if path is None:
        key = (net, "lpips package", str(device))
        if key not in _LPIPS_CACHE:
            model = _package_lpips(net, allow_download).to(device).eval()
            for p in model.parameters():
                p.requires_grad_(False)
            _LPIPS_CACHE[key] = model
        return _LPIPS_CACHE[key]
    key = (net, str(path), str(device))
    if key in _LPIPS_CACHE:
        return _LPIPS_CACHE[key]
    try:
        import lpips
    except ImportError as err:  # pragma: no cover - lpips is a core dependency
        raise ImportError("LPIPS needs the 'lpips' package: pip install lpips>=0.1.4") from err

    with warnings.catch_warnings():  # torchvision's "'pretrained' is deprecated" from inside lpips
        warnings.filterwarnings("ignore", category=UserWarning, module=r"torchvision\..*")
        # pnet_rand=True: torchvision builds squeezenet1_1 with random weights, fetching nothing;
        # pretrained=True loads lin0..lin6 from the lpips wheel; all of it is then overwritten from the .npz
        model = lpips.LPIPS(net=net, pretrained=True, pnet_rand=True, verbose=False)
    with np.load(path, allow_pickle=False) as npz:
        state = {k: torch.from_numpy(np.asarray(npz[k])) for k in npz.files}
    missing, unexpected = model.load_state_dict(state, strict=False)
    if unexpected:
        raise ValueError(f"LPIPS weights {path} have unexpected keys {sorted(unexpected)[:5]}: not a "
                         f"LPIPS v0.1 {net} model?")
    # `lins.K.*` are aliases of `linK.*` (same tensors) in lpips' state dict; everything else must be loaded.
    not_loaded = [k for k in missing if not k.startswith("lins.")]
    backbone = [k for k in model.state_dict() if k.startswith("net.")]
    if not_loaded or not backbone or not all(k in state for k in backbone):
        absent = not_loaded or [k for k in backbone if k not in state]
        raise ValueError(f"LPIPS weights {path} lack keys such as {absent[:5]}: the file must hold the full "
                         f"model (backbone net.sliceN.*, lin0..lin6, scaling_layer)")
    model = model.to(device).eval()
    for p in model.parameters():
        p.requires_grad_(False)
    _LPIPS_CACHE[key] = model
    return model


def _to_lpips_range(x: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` -> ``[-1, 1]``, the range ``lpips`` expects. The **only** place this conversion happens."""
    return x * 2.0 - 1.0


def lpips_distance(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None,
                   region: str = "image", reduction: str = "mean", model: torch.nn.Module | None = None,
                   batch_size: int = 32) -> torch.Tensor:
    """LPIPS distance (v0.1, squeeze) between ``[0, 1]`` images; lower is more similar, 0 = identical.

    ``model``: an ``lpips.LPIPS`` (default: :func:`load_lpips` on the images' device, cached). Inputs
    are converted to ``[-1, 1]`` here, once. ``region="image"`` is the usual spatially averaged
    distance; ``"hole"`` / ``"known"`` run the model with ``spatial=True`` (per-layer maps bilinearly
    upsampled to the image size) and average that map over the hole / known pixels. Runs in chunks of
    ``batch_size`` images.
    """
    _check_pair(pred, target, mask)
    _check_choice(reduction, "reduction", _REDUCTIONS)
    if model is None:
        model = load_lpips(device=pred.device)
    weight = _region_weight(mask, region, pred.float())
    if not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    spatial_before = getattr(model, "spatial", False)
    model.spatial = weight is not None or spatial_before
    try:
        chunks = []
        for start in range(0, pred.shape[0], batch_size):
            p = _to_lpips_range(pred[start:start + batch_size].float())
            t = _to_lpips_range(target[start:start + batch_size].float())
            chunks.append(model(p, t))  # (b, 1, 1, 1), or (b, 1, H, W) when spatial
        dist = torch.cat(chunks).to(_acc_dtype(pred))
    finally:
        model.spatial = spatial_before
    if weight is None:
        per_image = dist.mean(dim=(1, 2, 3))
    else:
        per_image = _masked_mean(dist, weight.to(dist.dtype))
    return _reduce(per_image, reduction)

