"""Pretrained weights: where each set is looked for, when it may be downloaded, and what to say when it is missing.

Every set of weights the course uses is looked for in this order: the path it is given (an argument, else its
environment variable; the first one given is the one used, never a silent fall-back to another file), a copy
already on this machine, else a download that fails at once instead of hanging:

=======================  =====================================  =========================================
weights                  given by                               else
=======================  =====================================  =========================================
LPIPS v0.1 squeeze       ``$INPAINT_LPIPS`` (one ``.npz``)      the shared data folder's copy, else the
                                                                ``lpips`` package's model, its backbone
                                                                from torchvision (cache or download)
VGG-16 ImageNet          ``$INPAINT_VGG16``                     the shared data folder, torch hub's cache,
                                                                torchvision's download
SqueezeNet 1.1 ImageNet  the weights argument, else             the shared data folder (the backbone's
(features)               ``$INPAINT_LPIPS`` (its backbone)      ``.npz``, else LPIPS's), torch hub's
                                                                cache, torchvision's download
Inception (FID / KID)    ``$INPAINT_INCEPTION``                 the shared data folder, torch hub's cache,
                                                                torch-fidelity's download (github.com)
diffusion models         a folder, ``$INPAINT_SD_MODEL`` /      the Hugging Face cache, else the hub
                         ``$INPAINT_DDPM_MODEL``                (asked first: :func:`find_model`)
=======================  =====================================  =========================================

The shared data folder is ``$INPAINT_SHARED`` (default ``../shared/data`` beside the checkout); each set has a
folder of its own under its ``weights/``. The hub ids are :mod:`inpaint_utils.config`'s
(:data:`DEFAULT_SD_MODEL`, ...), re-exported here.

One offline policy, read when it is needed (never at import time): :func:`inpaint_offline` (``$INPAINT_OFFLINE``)
forbids the file downloads (LPIPS's backbone, VGG-16, Inception); :func:`hub_offline` (``$HF_HUB_OFFLINE``, or
``huggingface_hub`` in offline mode) forbids the hub's. A download host that does not answer within 3 s fails at
once, and so does a connection that stays silent for the download's time limit. One message format for weights
that are not here (:func:`missing_weights_message`): what is missing, what was tried, why it cannot be had now,
and where to put it.

A module of the foundations layer: it imports ``config`` of the package, and third-party libraries (torchvision,
huggingface_hub, diffusers) only inside the functions that need them.
"""
from __future__ import annotations

import os
import re
import socket
import threading
from pathlib import Path
from typing import Any, Callable, TypeVar

import torch

from .config import (DEFAULT_DDPM_MODEL, DEFAULT_SCENE_DDPM_MODEL, DEFAULT_SD_MODEL, ORIGINAL_SD_MODEL,
                     project_root, shared_data_root)

__all__ = [
    "inpaint_offline",
    "hub_offline",
    "missing_weights_message",
    "hub_checkpoints",
    "shared_weights_path",
    "LPIPS_FILENAME",
    "LPIPS_BACKBONES",
    "LPIPS_DOWNLOAD_TIMEOUT",
    "default_lpips_path",
    "lpips_missing_message",
    "resolve_lpips_weights",
    "download_lpips_backbone",
    "VGG16_FILENAME",
    "resolve_vgg16_file",
    "download_vgg16_state",
    "SQUEEZENET_FILENAME",
    "SQUEEZENET_FEATURES_FILENAME",
    "FEATURE_NETWORKS",
    "resolve_squeezenet_file",
    "squeezenet_features_state",
    "choose_feature_network",
    "INCEPTION_FILENAME",
    "INCEPTION_URL",
    "INCEPTION_DOWNLOAD_TIMEOUT",
    "resolve_inception_weights",
    "download_inception",
    "ORIGINAL_SD_MODEL",
    "DEFAULT_SD_MODEL",
    "DEFAULT_DDPM_MODEL",
    "DEFAULT_SCENE_DDPM_MODEL",
    "DEFAULT_DDPM_MODELS",
    "MODEL_ENV",
    "DIFFUSION_INSTALL_HINT",
    "ModelUnavailableError",
    "default_model",
    "ddpm_model_for",
    "hub_howto",
    "find_model",
    "download_model",
]

T = TypeVar("T")


# --------------------------------------------------------------------------------------------------
# The offline policy and the message of missing weights
# --------------------------------------------------------------------------------------------------
_TRUE = {"1", "true", "yes", "on"}


def inpaint_offline() -> bool:
    """``True`` when ``$INPAINT_OFFLINE`` is set (read now, not at import time): no file downloads (LPIPS's
    backbone, VGG-16, Inception). The Hugging Face hub has its own switch, :func:`hub_offline`."""
    return os.environ.get("INPAINT_OFFLINE", "").strip().lower() in _TRUE


def hub_offline() -> bool:
    """``True`` when the Hugging Face hub must not be used: ``$HF_HUB_OFFLINE`` is set (read now, not
    at import time) or ``huggingface_hub`` was imported in offline mode."""
    if os.environ.get("HF_HUB_OFFLINE", "").strip().lower() in _TRUE:
        return True
    try:
        from huggingface_hub import constants
    except ImportError:
        return False
    return bool(getattr(constants, "HF_HUB_OFFLINE", False))


def missing_weights_message(what: str, tried: str, why: str, where: str, status: str = "not found") -> str:
    """The message of every set of pretrained weights that is not here::

        <what> <status>: <tried>; <why>. <where>

    ``what``: the weights (``"VGG-16 ImageNet weights"``, ``"model 'owner/name'"``); ``tried``: the paths and
    caches looked in (may be empty); ``why``: why they cannot be had now (offline, a host that cannot be
    reached, a failed download, a given path that does not exist); ``where``: what to download and where to put
    it, or how to do without. ``status``: ``"not found"`` for files, ``"is not available"`` for hub models.
    """
    said = f"{tried}; {why}" if tried else why
    return f"{what} {status}: {said}. {where}"


# --------------------------------------------------------------------------------------------------
# Where weight files are looked for, and the fenced download
# --------------------------------------------------------------------------------------------------
_GIVEN = "nothing is downloaded when a path is given"


def hub_checkpoints() -> Path:
    """torch hub's cache of downloaded weights, ``torch.hub.get_dir()/checkpoints`` (``$TORCH_HOME``, read now)."""
    return Path(torch.hub.get_dir()) / "checkpoints"


def shared_weights_path(folder: str, filename: str) -> Path:
    """``<shared data>/weights/<folder>/<filename>``, the shared data folder's copy (``$INPAINT_SHARED``, else
    ``../shared/data`` beside the checkout); when that folder is absent, the path it would have had."""
    root = shared_data_root()
    if root is None:  # absent: say where it would have been
        env = os.environ.get("INPAINT_SHARED", "").strip()
        root = Path(env).expanduser() if env else project_root().parent / "shared" / "data"
    return root / "weights" / folder / filename


def _given_file(weights: str | os.PathLike | None, env: str, filename: str,
                missing: Callable[[str, str], str]) -> Path | None:
    """The file named by ``weights``, else by ``$env`` (a folder means its ``filename``); ``None`` when neither
    is given. The first one given is the one used: when it does not exist, ``FileNotFoundError`` with
    ``missing(tried, why)``, never a fall-back to another copy."""
    if weights is not None:
        path, source = Path(weights).expanduser(), "the weights argument"
    elif os.environ.get(env, "").strip():
        path, source = Path(os.environ[env].strip()).expanduser(), f"${env}"
    else:
        return None
    if path.is_dir():
        path = path / filename
    if not path.is_file():
        raise FileNotFoundError(missing(f"{path} (from {source}) does not exist", _GIVEN))
    return path


def _host_reachable(host: tuple[str, int], timeout: float = 3.0) -> tuple[bool, str]:
    """Whether a TCP connection to ``host`` opens within ``timeout`` seconds (DNS included: the probe
    runs in a daemon thread, so a resolver that hangs cannot hold the caller)."""
    result: dict[str, Any] = {}

    def probe() -> None:
        try:
            socket.create_connection(host, timeout=timeout).close()
            result["ok"] = True
        except OSError as err:
            result["error"] = f"{type(err).__name__}: {err}"

    thread = threading.Thread(target=probe, daemon=True, name=f"probe-{host[0]}")
    thread.start()
    thread.join(timeout + 1)
    if result.get("ok"):
        return True, ""
    return False, result.get("error", f"no answer within {timeout:.0f} s")


#: torchvision's download host (LPIPS's backbones, VGG-16).
_BACKBONE_HOST = ("download.pytorch.org", 443)


def _backbone_host_reachable(timeout: float = 3.0) -> tuple[bool, str]:
    """Whether torchvision's download host answers within ``timeout`` seconds."""
    return _host_reachable(_BACKBONE_HOST, timeout)


def _download(fetch: Callable[[], T], missing: Callable[[str], str], *, host: tuple[str, int],
              probe: Callable[[], tuple[bool, str]], name: str, timeout: float, allow_download: bool = True,
              cached: bool = False) -> T:
    """``fetch()``, a download, fenced: unless ``cached`` (``fetch`` then reads a local copy) it is refused at
    once when downloads are off (``allow_download=False``, :func:`inpaint_offline`) or ``host`` does not answer
    ``probe()``; it then runs with every connection silent for at most ``timeout`` s (urllib inside torch.hub has
    no time limit of its own), and an ``OSError`` (a timeout, a broken connection) fails at once. Each refusal or
    failure raises ``FileNotFoundError(missing(why))``; ``name`` is what the download fetches."""
    if not cached:
        if not allow_download or inpaint_offline():
            raise FileNotFoundError(missing("INPAINT_OFFLINE is set" if allow_download
                                            else "downloads are switched off (allow_download=False)"))
        ok, error = probe()
        if not ok:
            raise FileNotFoundError(missing(f"{host[0]} cannot be reached ({error})"))
    previous = socket.getdefaulttimeout()
    socket.setdefaulttimeout(timeout)
    try:
        return fetch()
    except OSError as err:  # URLError, a timeout, a broken connection: say so at once
        raise FileNotFoundError(missing(f"downloading {name} failed ({type(err).__name__}: {err})")) from err
    finally:
        socket.setdefaulttimeout(previous)


# --------------------------------------------------------------------------------------------------
# LPIPS (the v0.1 squeeze model as one .npz, else the lpips package's with torchvision's backbone)
# --------------------------------------------------------------------------------------------------
#: File name of the full LPIPS v0.1 squeeze model under ``<shared data>/weights/lpips_squeeze/``.
LPIPS_FILENAME = "lpips_squeeze_v0.1_full.npz"
#: torchvision's ImageNet backbones of the ``lpips`` package's nets (what ``lpips.LPIPS(net=...)`` fetches).
LPIPS_BACKBONES = {"squeeze": "squeezenet1_1-b8a52dc0.pth", "alex": "alexnet-owt-7be5be79.pth",
                   "vgg": "vgg16-397923af.pth"}
#: seconds a connection may stay silent while torchvision downloads a backbone (LPIPS's, VGG-16), then it fails
LPIPS_DOWNLOAD_TIMEOUT = 20.0


def default_lpips_path() -> Path:
    """The shared data folder's copy of :data:`LPIPS_FILENAME` (where it would be when absent)."""
    return shared_weights_path("lpips_squeeze", LPIPS_FILENAME)


def lpips_missing_message(tried: str, why: str) -> str:
    """:func:`missing_weights_message` of the LPIPS weights: what the ``.npz`` holds and where it goes."""
    backbone = LPIPS_BACKBONES["squeeze"]
    return missing_weights_message(
        "LPIPS weights", tried, why,
        f"Put {LPIPS_FILENAME} (the complete LPIPS v0.1 'squeeze' model as a NumPy .npz: the lpips package's "
        f"linear layers lin0..lin6, its weights/v0.1/squeeze.pth, and torchvision's squeezenet1_1 ImageNet "
        f"backbone {backbone} under the keys net.sliceN.*) anywhere with INPAINT_LPIPS=/path/to/{LPIPS_FILENAME} "
        "(or pass weights=the path), or in weights/lpips_squeeze/ of the shared data folder ($INPAINT_SHARED); "
        f"or, without INPAINT_LPIPS, run once online so that torchvision caches {backbone} in {hub_checkpoints()}. "
        "To skip LPIPS in evaluate(), pass lpips_model=False.")


def resolve_lpips_weights(weights: str | os.PathLike | None = None, net: str = "squeeze") -> Path | None:
    """The ``.npz`` to load offline: ``weights`` (a file or the folder holding :data:`LPIPS_FILENAME`), else
    ``$INPAINT_LPIPS`` (the first one given is the one used, no silent fall-back to another file: missing, it
    raises ``FileNotFoundError`` saying what to put where; nothing is downloaded), else the shared data folder's
    copy when present. ``None`` when none is given or present (or ``net`` is not ``"squeeze"``, the only net
    with an ``.npz``): then the ``lpips`` package's model (:func:`download_lpips_backbone`). A file given for
    another ``net`` is a ``ValueError``."""
    if weights is None and not os.environ.get("INPAINT_LPIPS", "").strip():
        path = default_lpips_path()
        return path.resolve() if net == "squeeze" and path.is_file() else None
    if net != "squeeze":
        raise ValueError(f"net must be 'squeeze' with an offline .npz (weights= or INPAINT_LPIPS), got {net!r}")
    return _given_file(weights, "INPAINT_LPIPS", LPIPS_FILENAME, lpips_missing_message).resolve()


def _backbone_cached(net: str) -> bool:
    """Whether torchvision's backbone of ``net`` is already in the torch hub cache (no download needed)."""
    return (hub_checkpoints() / LPIPS_BACKBONES[net]).is_file()


def download_lpips_backbone(net: str, build: Callable[[], T], allow_download: bool = True) -> T:
    """``build()``, the ``lpips`` package's ``lpips.LPIPS(net=net)`` (linear layers from its wheel), whose ImageNet
    backbone torchvision takes from its cache or downloads: a download only with ``allow_download``, never with
    ``INPAINT_OFFLINE=1``, failing at once when download.pytorch.org does not answer within 3 s or a connection
    is silent for :data:`LPIPS_DOWNLOAD_TIMEOUT` s. ``FileNotFoundError`` (:func:`lpips_missing_message`)."""
    backbone = LPIPS_BACKBONES[net]
    cached = _backbone_cached(net)
    tried = f"no {LPIPS_FILENAME} in $INPAINT_LPIPS or {default_lpips_path().parent}"
    if not cached:
        tried += f"; torchvision's {backbone} is not in {hub_checkpoints()}"
    return _download(build, lambda why: lpips_missing_message(tried, why), host=_BACKBONE_HOST,
                     probe=_backbone_host_reachable, name=backbone, timeout=LPIPS_DOWNLOAD_TIMEOUT,
                     allow_download=allow_download, cached=cached)


# --------------------------------------------------------------------------------------------------
# VGG-16 (perceptual and style losses)
# --------------------------------------------------------------------------------------------------
#: torchvision's ImageNet VGG-16 weights file (``VGG16_Weights.IMAGENET1K_V1``), as torch hub caches it.
VGG16_FILENAME = "vgg16-397923af.pth"


def _vgg16_missing_message(tried: str, why: str) -> str:
    return missing_weights_message(
        "VGG-16 ImageNet weights", tried, why,
        f"Download torchvision's {VGG16_FILENAME} (https://download.pytorch.org/models/{VGG16_FILENAME}, 528 MB; "
        f"the features up to pool3 are what is used) and set INPAINT_VGG16=/path/to/{VGG16_FILENAME} (or pass "
        "weights=the path), or put it in weights/vgg16/ of the shared data folder ($INPAINT_SHARED) or in torch "
        f"hub's cache {hub_checkpoints()}; or run once online so that torchvision caches it. Tests use "
        "VGG16Features(weights='random').")


def resolve_vgg16_file(weights: str | os.PathLike | None = None) -> Path | None:
    """The weights file to read: ``weights`` (a file or a folder holding :data:`VGG16_FILENAME`), else
    ``$INPAINT_VGG16`` (the first one given is the one used, no silent fall-back), else the shared folder's
    or torch hub's cached copy; ``None`` when none is given or present (then a download may be tried)."""
    path = _given_file(weights, "INPAINT_VGG16", VGG16_FILENAME, _vgg16_missing_message)
    if path is not None:
        return path
    for path in (shared_weights_path("vgg16", VGG16_FILENAME), hub_checkpoints() / VGG16_FILENAME):
        if path.is_file():
            return path
    return None


def download_vgg16_state() -> dict[str, torch.Tensor]:
    """torchvision's ImageNet VGG-16 state dict, downloaded into torch hub's cache; fails fast offline
    (``INPAINT_OFFLINE=1``, an unreachable host within 3 s, or a connection silent for
    :data:`LPIPS_DOWNLOAD_TIMEOUT` s), never hangs."""
    tried = f"no file in $INPAINT_VGG16, {shared_weights_path('vgg16', VGG16_FILENAME).parent} or {hub_checkpoints()}"

    def fetch() -> dict[str, torch.Tensor]:
        from torchvision.models import VGG16_Weights

        return VGG16_Weights.IMAGENET1K_V1.get_state_dict(progress=False)

    return _download(fetch, lambda why: _vgg16_missing_message(tried, why), host=_BACKBONE_HOST,
                     probe=_backbone_host_reachable, name=VGG16_FILENAME, timeout=LPIPS_DOWNLOAD_TIMEOUT)


# --------------------------------------------------------------------------------------------------
# SqueezeNet 1.1 (the offline substitute of VGG-16 for the perceptual and style losses) and the choice
# --------------------------------------------------------------------------------------------------
#: torchvision's ImageNet SqueezeNet 1.1 weights file (``SqueezeNet1_1_Weights.IMAGENET1K_V1``), LPIPS's backbone.
SQUEEZENET_FILENAME = LPIPS_BACKBONES["squeeze"]
#: the backbone alone as a NumPy ``.npz`` (torchvision's keys ``features.N.*``), beside the LPIPS model.
SQUEEZENET_FEATURES_FILENAME = "squeezenet1_1_features_imagenet.npz"
#: the feature networks the perceptual and style losses can use (:func:`choose_feature_network`).
FEATURE_NETWORKS = ("vgg16", "squeeze")


def _squeezenet_missing_message(tried: str, why: str) -> str:
    return missing_weights_message(
        "SqueezeNet 1.1 ImageNet weights", tried, why,
        f"Put {SQUEEZENET_FEATURES_FILENAME} (torchvision's squeezenet1_1 features as a NumPy .npz, keys "
        f"features.N.*) or the LPIPS model {LPIPS_FILENAME} (its backbone) in weights/lpips_squeeze/ of the shared "
        f"data folder ($INPAINT_SHARED), or name the LPIPS file with INPAINT_LPIPS (or pass weights=the file); or "
        f"put torchvision's {SQUEEZENET_FILENAME} in torch hub's cache {hub_checkpoints()} (run once online). Or "
        "use the VGG-16 features (--features vgg16) with VGG-16's weights (INPAINT_VGG16).")


def resolve_squeezenet_file(weights: str | os.PathLike | None = None) -> Path | None:
    """The file holding SqueezeNet 1.1's ImageNet ``features``: ``weights`` (an ``.npz`` or ``.pth`` file, or a
    folder holding :data:`SQUEEZENET_FEATURES_FILENAME`), else ``$INPAINT_LPIPS`` (the LPIPS model, whose backbone
    it is; the first one given is the one used: missing, it raises), else the shared folder's backbone ``.npz``,
    its LPIPS ``.npz``, or torch hub's cached :data:`SQUEEZENET_FILENAME`; ``None`` when none is here (then a
    download may be tried: :func:`squeezenet_features_state`)."""
    if weights is not None:
        return _given_file(weights, "INPAINT_LPIPS", SQUEEZENET_FEATURES_FILENAME, _squeezenet_missing_message)
    path = _given_file(None, "INPAINT_LPIPS", LPIPS_FILENAME, _squeezenet_missing_message)
    if path is not None:
        return path
    for path in (shared_weights_path("lpips_squeeze", SQUEEZENET_FEATURES_FILENAME), default_lpips_path(),
                 hub_checkpoints() / SQUEEZENET_FILENAME):
        if path.is_file():
            return path
    return None


_LPIPS_SLICE = re.compile(r"^net\.slice\d+\.")


def _read_squeezenet_features(path: Path) -> dict[str, torch.Tensor]:
    """The ``features.*`` tensors of a SqueezeNet 1.1 file: an ``.npz`` of torchvision's keys or of LPIPS's
    (``net.sliceN.I.*``, renamed ``features.I.*``), or a torchvision ``.pth`` state dict."""
    if path.suffix == ".npz":
        import numpy as np

        with np.load(path, allow_pickle=False) as npz:
            state = {_LPIPS_SLICE.sub("features.", k): torch.from_numpy(np.asarray(npz[k])) for k in npz.files}
    else:
        state = torch.load(path, map_location="cpu", weights_only=True)
    return {k: v for k, v in state.items() if k.startswith("features.")}


def squeezenet_features_state(weights: str | os.PathLike | None = None,
                              allow_download: bool = True) -> tuple[dict[str, torch.Tensor], str]:
    """``(state, source)``: SqueezeNet 1.1's ImageNet ``features.*`` tensors (torchvision's names) and where they
    came from, found by :func:`resolve_squeezenet_file`, else downloaded by torchvision into torch hub's cache
    (only with ``allow_download``, never with ``INPAINT_OFFLINE=1``; an unreachable host fails within 3 s).
    ``FileNotFoundError`` saying what to put where."""
    path = resolve_squeezenet_file(weights)
    if path is not None:
        return _read_squeezenet_features(path), str(path)
    tried = (f"no $INPAINT_LPIPS; neither {SQUEEZENET_FEATURES_FILENAME} nor {LPIPS_FILENAME} in "
             f"{default_lpips_path().parent}; no {SQUEEZENET_FILENAME} in {hub_checkpoints()}")

    def fetch() -> dict[str, torch.Tensor]:
        from torchvision.models import SqueezeNet1_1_Weights

        return SqueezeNet1_1_Weights.IMAGENET1K_V1.get_state_dict(progress=False)

    state = _download(fetch, lambda why: _squeezenet_missing_message(tried, why), host=_BACKBONE_HOST,
                      probe=_backbone_host_reachable, name=SQUEEZENET_FILENAME, timeout=LPIPS_DOWNLOAD_TIMEOUT,
                      allow_download=allow_download)
    return {k: v for k, v in state.items() if k.startswith("features.")}, "torchvision download"


def choose_feature_network(features: str = "auto") -> tuple[str, str]:
    """``(name, why)``: the feature network of the perceptual and style losses, one of :data:`FEATURE_NETWORKS`.

    ``"vgg16"`` and ``"squeeze"`` are taken as asked. ``"auto"``: ``"vgg16"`` (the paper's) when its ImageNet
    weights are here (:func:`resolve_vgg16_file`; an ``$INPAINT_VGG16`` that names no file raises, never a
    silent fall-back) or can be downloaded now (not :func:`inpaint_offline` and download.pytorch.org answers
    within 3 s), else ``"squeeze"``, the ImageNet network available offline (LPIPS's backbone). ``why`` says
    in words what decided it (for the one-line notice of the caller)."""
    if features in FEATURE_NETWORKS:
        return features, "asked for"
    if features != "auto":
        raise ValueError(f"features must be 'auto' or one of {FEATURE_NETWORKS}, got {features!r}")
    path = resolve_vgg16_file(None)
    if path is not None:
        return "vgg16", f"VGG-16's ImageNet weights are here ({path})"
    if inpaint_offline():
        why = "INPAINT_OFFLINE is set"
    else:
        ok, error = _backbone_host_reachable()
        if ok:
            return "vgg16", f"VGG-16's ImageNet weights can be downloaded ({_BACKBONE_HOST[0]} answers)"
        why = f"{_BACKBONE_HOST[0]} cannot be reached ({error})"
    return "squeeze", (f"no VGG-16 ImageNet weights ({VGG16_FILENAME} not in $INPAINT_VGG16, "
                       f"{shared_weights_path('vgg16', VGG16_FILENAME).parent} or {hub_checkpoints()}) and {why}")


# --------------------------------------------------------------------------------------------------
# Inception (FID and KID)
# --------------------------------------------------------------------------------------------------
#: torch-fidelity's InceptionV3, converted from TensorFlow's 2015-12-05 graph (the one FID papers use).
INCEPTION_FILENAME = "weights-inception-2015-12-05-6726825d.pth"
INCEPTION_URL = "https://github.com/toshas/torch-fidelity/releases/download/v0.2.0/" + INCEPTION_FILENAME
_INCEPTION_HOST = ("github.com", 443)
#: seconds a connection may stay silent while the Inception weights download (then it fails, never hangs)
INCEPTION_DOWNLOAD_TIMEOUT = 30.0


def _inception_missing_message(tried: str, why: str) -> str:
    cache = hub_checkpoints() / INCEPTION_FILENAME
    return missing_weights_message(
        "Inception weights for FID / KID", tried, why,
        f"Download {INCEPTION_URL} (torch-fidelity's InceptionV3, converted from TensorFlow's 2015-12-05 graph "
        f"that FID papers use; about 92 MB) on a machine with internet and put it at {cache} (torch's cache, "
        f"found by itself), or anywhere with INPAINT_INCEPTION=/path/to/{INCEPTION_FILENAME} (or the weights= "
        "argument), or in weights/inception/ of the shared data folder ($INPAINT_SHARED). Or pass "
        "feature_extractor=... to fid_kid(), or leave FID / KID out.")


def resolve_inception_weights(weights: str | os.PathLike | None = None) -> tuple[Path | None, str]:
    """``(file or None, what was tried)``: ``weights`` (the file, or the folder holding :data:`INCEPTION_FILENAME`),
    else ``$INPAINT_INCEPTION`` (the first one given is the one used: missing, it raises), else the shared
    folder's or torch's cached copy."""
    path = _given_file(weights, "INPAINT_INCEPTION", INCEPTION_FILENAME, _inception_missing_message)
    if path is not None:
        return path.resolve(), ""
    defaults = [shared_weights_path("inception", INCEPTION_FILENAME), hub_checkpoints() / INCEPTION_FILENAME]
    for path in defaults:
        if path.is_file():
            return path.resolve(), ""
    return None, "no $INPAINT_INCEPTION; not in " + " or ".join(str(p.parent) for p in defaults)


def download_inception(build: Callable[[], T], tried: str, allow_download: bool = True) -> T:
    """``build()``, torch-fidelity's feature extractor downloading its weights from :data:`INCEPTION_URL` into
    torch's cache: only with ``allow_download``, never with ``INPAINT_OFFLINE=1``, failing at once when github.com
    does not answer within 3 s or a connection is silent for :data:`INCEPTION_DOWNLOAD_TIMEOUT` s.
    ``FileNotFoundError`` saying what to download and where to put it (``tried``: what
    :func:`resolve_inception_weights` looked in)."""
    return _download(build, lambda why: _inception_missing_message(tried, why), host=_INCEPTION_HOST,
                     probe=lambda: _host_reachable(_INCEPTION_HOST), name="it",  # "downloading it failed"
                     timeout=INCEPTION_DOWNLOAD_TIMEOUT, allow_download=allow_download)


# --------------------------------------------------------------------------------------------------
# Diffusion models on the Hugging Face hub
# --------------------------------------------------------------------------------------------------
#: Collection -> the DDPM RePaint uses on it: faces need a face DDPM, scenes a scene one.
DEFAULT_DDPM_MODELS = {"faces": DEFAULT_DDPM_MODEL, "scenes": DEFAULT_SCENE_DDPM_MODEL}
#: Model kind (``"sd"``: an inpainting pipeline, ``"ddpm"``: a pixel-space DDPM for RePaint) -> the variable
#: naming its default model (a hub id or a folder).
MODEL_ENV = {"sd": "INPAINT_SD_MODEL", "ddpm": "INPAINT_DDPM_MODEL"}
_SCENE_DDPM_ENV = "INPAINT_DDPM_SCENE_MODEL"
_DEFAULT_MODEL = {"sd": DEFAULT_SD_MODEL, "ddpm": DEFAULT_DDPM_MODEL}
DIFFUSION_INSTALL_HINT = 'pip install "inpaint-course[diffusion]"   (diffusers, transformers, accelerate)'


class ModelUnavailableError(RuntimeError):
    """The model is neither a local folder nor in the Hugging Face cache, and cannot be downloaded now."""


def _check_kind(kind: str) -> None:
    if kind not in MODEL_ENV:
        raise ValueError(f"kind must be 'sd' or 'ddpm', got {kind!r}")


def default_model(kind: str) -> str:
    """The model of ``kind`` when none is named: ``$INPAINT_SD_MODEL`` / ``$INPAINT_DDPM_MODEL``, else the default
    hub id (:data:`DEFAULT_SD_MODEL`, :data:`DEFAULT_DDPM_MODEL`)."""
    _check_kind(kind)
    return os.environ.get(MODEL_ENV[kind], "").strip() or _DEFAULT_MODEL[kind]


def ddpm_model_for(collection: str, model: str | os.PathLike | None = None) -> str | os.PathLike:
    """The DDPM RePaint should use on ``collection`` (``"faces"`` or ``"scenes"``, the course's two
    collections): ``model`` when given, else ``$INPAINT_DDPM_MODEL`` (faces) / ``$INPAINT_DDPM_SCENE_MODEL``
    (scenes), else :data:`DEFAULT_DDPM_MODELS`. A face DDPM on a street scene is out of its domain, so
    scenes get a scene model rather than the face one; the default scene model is LSUN churches, which is out of
    the domain of street scenes too (:func:`inpaint_utils.config.ddpm_trained_on` says so beside each score)."""
    if model is not None:
        return model
    if collection not in DEFAULT_DDPM_MODELS:
        raise ValueError(f"collection must be one of {', '.join(DEFAULT_DDPM_MODELS)} (or pass model=...), "
                         f"got {collection!r}")
    env = MODEL_ENV["ddpm"] if collection == "faces" else _SCENE_DDPM_ENV
    return os.environ.get(env, "").strip() or DEFAULT_DDPM_MODELS[collection]


def _hub_endpoint() -> str:
    endpoint = os.environ.get("HF_ENDPOINT", "").strip()
    if not endpoint:
        try:
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT
        except ImportError:
            endpoint = "https://huggingface.co"
    return endpoint


def _hub_refusal(model: str, err: BaseException) -> str:
    """The reason, in words, that the hub refused or failed ``model`` (``huggingface_hub``'s errors), with
    what to do where there is something to do."""
    from huggingface_hub import errors as hf

    page = f"{_hub_endpoint().rstrip('/')}/{model}"
    if isinstance(err, hf.GatedRepoError):
        return (f"the repository is gated: open {page} while signed in and accept its conditions, then log in "
                f"here (`hf auth login`, or set HF_TOKEN)")
    if isinstance(err, hf.DisabledRepoError):
        return f"the repository was disabled on the hub ({page})"
    if isinstance(err, hf.RepositoryNotFoundError):
        moved = (f"; {ORIGINAL_SD_MODEL} was deleted from the hub in November 2025: use the community mirror "
                 f"{DEFAULT_SD_MODEL} (the default; it states it is not affiliated with Stability AI)"
                 if model == ORIGINAL_SD_MODEL else "")
        return (f"the hub has no repository {model!r} (deleted, renamed, private or mistyped: check {page}; a "
                f"private one needs `hf auth login`){moved}")
    if isinstance(err, hf.RevisionNotFoundError):
        return f"the revision asked for does not exist in {model!r} (see the branches and tags at {page})"
    if isinstance(err, hf.LocalEntryNotFoundError):
        return ("no copy is in the Hugging Face cache and the hub may not be used now (offline: HF_HUB_OFFLINE, "
                "local_files_only or no network)")
    if isinstance(err, hf.EntryNotFoundError):
        return f"the repository lacks a file a diffusers model needs ({err}): is {model!r} the right kind of model?"
    if isinstance(err, hf.HfHubHTTPError):
        status = getattr(getattr(err, "response", None), "status_code", "?")
        return f"the hub answered HTTP {status} for {model!r} ({str(err).splitlines()[0]})"
    return f"the hub ({_hub_endpoint()}) cannot be reached ({type(err).__name__}: {str(err).splitlines()[0] if str(err) else err!r})"


def hub_howto(model: str, kind: str) -> str:
    """How to get hub model ``model`` of ``kind`` here: the download command, then where to point (several lines)."""
    local = f"models/{model.split('/')[-1]}"
    return (
        f"Download it once on a machine with network access:\n"
        f"    hf download {model} --local-dir {local}\n"
        f"(huggingface_hub < 1.0: huggingface-cli download {model} --local-dir {local}),\n"
        f"then pass model=\"{local}\" (the folder) or set {MODEL_ENV[kind]}={local}; a copy in the Hugging Face cache "
        f"(HF_HOME) is found by its id. Without the real model, model=\"tiny\" runs the same code on a tiny "
        f"random pipeline (its images are noise)."
    )


def _hub_missing(model: str, kind: str, tried: str, why: str) -> str:
    """:func:`missing_weights_message` of hub model ``model``: ``"model 'owner/name' is not available: ..."``."""
    return missing_weights_message(f"model {model!r}", tried, why, hub_howto(model, kind), status="is not available")


def _check_on_hub(model: str, kind: str, timeout: float, tried: str) -> None:
    """Ask the hub about repository ``model`` (``HfApi.model_info``, at most ``timeout`` seconds) before any
    download; a refusal raises :class:`ModelUnavailableError` with the id, the reason and what to do."""
    try:
        from huggingface_hub import HfApi
    except ImportError as err:
        raise ModelUnavailableError(_hub_missing(model, kind, tried, f"huggingface_hub is not installed ({err}); "
                                                                     f"{DIFFUSION_INSTALL_HINT}")) from err
    try:
        HfApi(endpoint=_hub_endpoint()).model_info(model, timeout=timeout)
    except Exception as err:  # every failure is a reason not to start a download now
        raise ModelUnavailableError(_hub_missing(model, kind, tried, _hub_refusal(model, err))) from err


_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*/[A-Za-z0-9][A-Za-z0-9_.-]*$")
_MARKER_FILES = {"sd": ("model_index.json",), "ddpm": ("model_index.json", "unet/config.json", "config.json")}


def _cached_snapshot(repo_id: str, kind: str, cache_dir: str | os.PathLike | None) -> Path | None:
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return None
    for name in _MARKER_FILES[kind]:
        found = try_to_load_from_cache(repo_id, name, cache_dir=None if cache_dir is None else str(cache_dir))
        if isinstance(found, str):
            folder = Path(found).parent
            return folder.parent if name.count("/") else folder
    return None


def find_model(model: str | os.PathLike | None = None, kind: str = "sd", *,
               cache_dir: str | os.PathLike | None = None, allow_download: bool | None = None,
               probe_timeout: float = 3.0) -> Path | str:
    """Where to load pretrained diffusion ``model`` from, decided **before** any download is tried.

    Returns a local folder (``Path``) for an existing folder, or a hub id found in the Hugging Face cache
    (``cache_dir``, default ``$HF_HOME``'s). Returns the hub id itself (``str``) only when it may be downloaded
    now: ``allow_download`` is true (default: not :func:`hub_offline`) and the hub knows the repository
    (``model_info`` answers within ``probe_timeout`` seconds). Otherwise raises :class:`ModelUnavailableError`
    with the id, the reason (offline, missing / deleted / renamed, gated, unreachable) and the commands to
    download it or point to a local copy (:func:`hub_howto`). ``kind`` is ``"sd"`` (an inpainting pipeline) or
    ``"ddpm"`` (a pixel-space DDPM for RePaint); ``model=None`` means :func:`default_model`. The tiny random
    models (``"tiny"``) are ``diffusion.resolve_model``'s, which calls this for every other model.
    """
    _check_kind(kind)
    if model is None:
        model = default_model(kind)
    if not isinstance(model, (str, os.PathLike)):
        raise TypeError(f"model must be a hub id or a folder (str or path), got {type(model).__name__}")
    text = os.fspath(model)
    path = Path(text).expanduser()
    if path.is_dir():
        if not any((path / name).is_file() for name in _MARKER_FILES[kind]):
            raise FileNotFoundError(f"model folder {str(path)!r} holds none of {list(_MARKER_FILES[kind])}: not a "
                                    f"diffusers {'inpainting pipeline' if kind == 'sd' else 'DDPM'} folder")
        return path.resolve()
    if path.exists():
        raise ValueError(f"model {text!r} is a file; pass the model's folder or its hub id")
    if not _REPO_ID.match(text) or text.startswith((".", "~")):
        raise FileNotFoundError(f"model folder {text!r} does not exist (and it is not a hub id 'owner/name'). "
                                + hub_howto(_DEFAULT_MODEL[kind], kind))
    snapshot = _cached_snapshot(text, kind, cache_dir)
    if snapshot is not None:
        return snapshot
    if allow_download is None:
        allow_download = not hub_offline()
    nowhere = f"no copy is in the Hugging Face cache and there is no folder {text!r} here"
    if not allow_download:
        why = ("HF_HUB_OFFLINE is set" if hub_offline() else "downloads are switched off (allow_download=False)")
        raise ModelUnavailableError(_hub_missing(text, kind, nowhere, why))
    _check_on_hub(text, kind, probe_timeout, nowhere)
    return text


def download_model(repo_id: str, kind: str) -> Path:
    """Download hub model ``repo_id`` into the Hugging Face cache (diffusers' ``DiffusionPipeline.download``) and
    return its folder; gated files, a revision gone, the network lost mid-way raise :class:`ModelUnavailableError`
    with the same one-line reasons as :func:`find_model`. Needs diffusers."""
    import diffusers

    try:
        return Path(diffusers.DiffusionPipeline.download(repo_id))
    except Exception as err:  # every failure of the download: the reason in words
        raise ModelUnavailableError(_hub_missing(repo_id, kind, "", _hub_refusal(repo_id, err))) from err
