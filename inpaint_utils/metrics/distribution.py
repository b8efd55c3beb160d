"""FID and KID on Inception pool features (Heusel et al. 2017; Binkowski et al. 2018), and the features.

FID and KID (LaMa's protocol scores them on the composite; :func:`fid_kid`) come from closed forms on
features, :func:`fid_from_features` (Fréchet distance of the two Gaussians, float64) and
:func:`kid_from_features` (unbiased MMD^2, cubic polynomial kernel, random subsets); the features are
torch-fidelity's InceptionV3 pool features (:func:`load_inception`: ``$INPAINT_INCEPTION`` or its usual
download, never with ``INPAINT_OFFLINE=1``; offline a ``FileNotFoundError`` says what to download and
where to put it: :func:`inpaint_utils.pretrained.resolve_inception_weights`). Every result holds its ``n``,
and :func:`format_fid_kid` prints it: FID is badly biased under a few thousand images.
"""
from __future__ import annotations

import os
import pickle
from typing import Any, Callable, Mapping

import numpy as np
import torch

from .. import pretrained
from ..pretrained import INCEPTION_FILENAME
from ..validation import check_image

# --------------------------------------------------------------------------------------------------
# FID and KID on Inception pool features (Heusel et al. 2017; Binkowski et al. 2018)
# --------------------------------------------------------------------------------------------------
_INCEPTION_CACHE: dict[tuple[str, str], torch.nn.Module] = {}


def _feature_matrix(features: Any, name: str) -> np.ndarray:
    """``(N, D)`` float64 NumPy array of ``features`` (tensor or array), checked."""
    if isinstance(features, torch.Tensor):
        features = features.detach().cpu().to(torch.float64).numpy()
    array = np.asarray(features, dtype=np.float64)
    if array.ndim != 2:
        raise ValueError(f"{name} must be a 2-D (N samples, D features) array, got shape {array.shape}")
    if array.shape[0] < 2 or array.shape[1] < 1:
        raise ValueError(f"{name} needs at least 2 samples of at least 1 feature, got shape {array.shape}")
    if not np.isfinite(array).all():
        raise ValueError(f"{name} contains NaN or inf values")
    return array


def _psd_sqrt(matrix: np.ndarray) -> np.ndarray:
    """Symmetric square root of a symmetric positive semi-definite matrix (eigen-decomposition,
    negative round-off eigenvalues set to 0)."""
    values, vectors = np.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * np.sqrt(values.clip(min=0))) @ vectors.T


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray) -> float:
    """Fréchet distance between N(mu1, sigma1) and N(mu2, sigma2), in float64:

        ``||mu1 - mu2||^2 + Tr(sigma1 + sigma2 - 2 (sigma1 sigma2)^(1/2))``

    with ``Tr (sigma1 sigma2)^(1/2) = Tr (sigma1^(1/2) sigma2 sigma1^(1/2))^(1/2)`` (similar matrices;
    the right one is symmetric PSD, so its square root comes from an eigen-decomposition: no complex
    round-off as with ``scipy.linalg.sqrtm`` of the non-symmetric product). Clipped at 0 from below."""
    mu1, mu2 = np.asarray(mu1, dtype=np.float64).ravel(), np.asarray(mu2, dtype=np.float64).ravel()
    sigma1, sigma2 = np.atleast_2d(np.asarray(sigma1, np.float64)), np.atleast_2d(np.asarray(sigma2, np.float64))
    d = mu1.shape[0]
    if mu2.shape != (d,) or sigma1.shape != (d, d) or sigma2.shape != (d, d):
        raise ValueError(f"means and covariances must be (D,) and (D, D) with one D, got {mu1.shape}, {mu2.shape}, "
                         f"{sigma1.shape}, {sigma2.shape}")
    root1 = _psd_sqrt(sigma1)
    middle = root1 @ sigma2 @ root1
    tr_covmean = np.sqrt(np.linalg.eigvalsh((middle + middle.T) / 2).clip(min=0)).sum()
    diff = mu1 - mu2
    return max(0.0, float(diff @ diff + np.trace(sigma1) + np.trace(sigma2) - 2.0 * tr_covmean))


def fid_from_features(features1: Any, features2: Any) -> float:
    """FID between two feature sets ``(N1, D)`` and ``(N2, D)``: the Fréchet distance of the Gaussians with
    their means and sample covariances (``ddof=1``, as pytorch-fid and torch-fidelity), float64.

    FID is biased upwards at small N (the estimate falls as N grows): report N beside it
    (:func:`format_fid_kid`) and compare FIDs only at the same N; LaMa uses 2,000 (CelebA-HQ) and
    30,000 (Places) images."""
    f1, f2 = _feature_matrix(features1, "features1"), _feature_matrix(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets have {f1.shape[1]} and {f2.shape[1]} dimensions; they must match")
    return frechet_distance(f1.mean(axis=0), np.cov(f1, rowvar=False, ddof=1),
                            f2.mean(axis=0), np.cov(f2, rowvar=False, ddof=1))


def _mmd2_unbiased(x: np.ndarray, y: np.ndarray, degree: int, gamma: float, coef0: float) -> float:
    """Unbiased MMD^2 of two equal-size samples with the kernel ``(gamma x.y + coef0)^degree``."""
    m = x.shape[0]
    kxx = (x @ x.T * gamma + coef0) ** degree
    kyy = (y @ y.T * gamma + coef0) ** degree
    kxy = (x @ y.T * gamma + coef0) ** degree
    within = (kxx.sum() - np.trace(kxx) + kyy.sum() - np.trace(kyy)) / (m * (m - 1))
    return float(within - 2.0 * kxy.sum() / (m * m))


def kid_from_features(features1: Any, features2: Any, subsets: int = 100, subset_size: int = 1000,
                      degree: int = 3, gamma: float | None = None, coef0: float = 1.0, seed: int = 0) -> dict[str, Any]:
    """Kernel Inception Distance (Binkowski et al. 2018) between ``(N1, D)`` and ``(N2, D)`` features: the
    unbiased MMD^2 with the cubic polynomial kernel ``k(x, y) = (x.y / D + 1)^3`` (``gamma`` defaults to
    ``1 / D``), averaged over ``subsets`` random subsets of ``subset_size`` samples of each set, drawn
    without replacement (torch-fidelity's and torchmetrics' defaults: 100 subsets of 1,000). With fewer
    samples the subset size is ``min(subset_size, N1, N2)``; when that is every sample of both sets all
    subsets are the same and one is computed. Unbiased: its mean is ~0 for two samples of one
    distribution, and a single estimate can be slightly negative. A subset of fewer than 2 samples (``subset_size``
    1, or a set of one sample) is refused with ``ValueError``.

    Returns ``{"kid", "kid_std" (over subsets, ddof 0), "subsets", "subset_size"}``."""
    f1, f2 = _feature_matrix(features1, "features1"), _feature_matrix(features2, "features2")
    if f1.shape[1] != f2.shape[1]:
        raise ValueError(f"feature sets have {f1.shape[1]} and {f2.shape[1]} dimensions; they must match")
    for value, name in ((subsets, "subsets"), (subset_size, "subset_size"), (degree, "degree")):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive int, got {value!r}")
    n1, n2 = f1.shape[0], f2.shape[0]
    m = min(subset_size, n1, n2)
    if m < 2:         # the unbiased estimate averages over pairs of distinct samples of each set
        raise ValueError(f"KID needs subsets of at least 2 samples (it compares distinct pairs within each set), but "
                         f"subset_size={subset_size} with {n1} and {n2} samples gives {m}")
    gamma = 1.0 / f1.shape[1] if gamma is None else float(gamma)
    if m == n1 == n2:
        values = [_mmd2_unbiased(f1, f2, degree, gamma, coef0)]
    else:
        rng = np.random.default_rng(seed)
        values = [_mmd2_unbiased(f1[rng.choice(n1, m, replace=False)], f2[rng.choice(n2, m, replace=False)],
                                 degree, gamma, coef0) for _ in range(subsets)]
    return {"kid": float(np.mean(values)), "kid_std": float(np.std(values)), "subsets": len(values),
            "subset_size": m}


def load_inception(weights: str | os.PathLike | None = None, device: str | torch.device = "cpu",
                   allow_download: bool = True) -> torch.nn.Module:
    """torch-fidelity's InceptionV3 feature extractor (the 2048-d pool features of FID and KID), frozen,
    in eval mode, on ``device``; it takes uint8 images ``(B, 3, H, W)`` and resizes them to 299 itself.

    Weights: ``weights`` (the file, or the folder holding :data:`INCEPTION_FILENAME`), else
    ``$INPAINT_INCEPTION``, else ``<shared data>/weights/inception/`` or torch's cache
    (``torch.hub.get_dir()/checkpoints``); without any, torch-fidelity's usual download from
    :data:`INCEPTION_URL` into that cache (``allow_download``, never with ``INPAINT_OFFLINE=1``; a host
    that does not answer within 3 s or a connection silent for :data:`INCEPTION_DOWNLOAD_TIMEOUT` s fails
    at once). Raises ``FileNotFoundError`` saying what to download and where to put it. Cached per
    (weights, device).
    """
    try:
        from torch_fidelity.feature_extractor_inceptionv3 import FeatureExtractorInceptionV3
    except ImportError as err:
        raise ImportError("FID / KID need torch-fidelity: pip install torch-fidelity (part of the course's "
                          "'notebooks' extra: pip install -e '.[notebooks]')") from err
    device = torch.device(device)
    path, tried = pretrained.resolve_inception_weights(weights)
    key = (str(path) if path is not None else "download", str(device))
    if key in _INCEPTION_CACHE:
        return _INCEPTION_CACHE[key]
    if path is None:
        model = pretrained.download_inception(lambda: FeatureExtractorInceptionV3("inception-v3-compat", ["2048"]),
                                              tried, allow_download)
    else:
        try:
            model = FeatureExtractorInceptionV3("inception-v3-compat", ["2048"],
                                                feature_extractor_weights_path=str(path))
        except (RuntimeError, ValueError, KeyError, EOFError, OSError, pickle.UnpicklingError) as err:
            raise ValueError(f"Inception weights {path} could not be loaded ({type(err).__name__}: "
                             f"{str(err).splitlines()[0][:200]}): not {INCEPTION_FILENAME}?") from err
    model = model.to(device).eval()
    _INCEPTION_CACHE[key] = model
    return model


def _to_uint8(images: torch.Tensor) -> torch.Tensor:
    """``[0, 1]`` float images -> uint8 0..255 (rounded), what Inception feature extractors take."""
    return (images * 255.0).round().clamp(0, 255).to(torch.uint8)


def inception_features(images: torch.Tensor, feature_extractor: Callable[[torch.Tensor], Any],
                       batch_size: int = 50, device: str | torch.device | None = None,
                       progress: bool = False) -> np.ndarray:
    """Features ``(N, D)`` float64 of ``[0, 1]`` images ``(N, 3, H, W)``: ``feature_extractor`` gets uint8
    batches on ``device`` (default: that of its first parameter, else the CPU) and returns ``(b, D)``
    (or a tuple whose first item is, as torch-fidelity's extractors do)."""
    check_image(images, "images")
    if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size!r}")
    if device is None:
        params = list(feature_extractor.parameters()) if isinstance(feature_extractor, torch.nn.Module) else []
        device = params[0].device if params else torch.device("cpu")
    from tqdm.auto import tqdm

    out = []
    with torch.no_grad():
        for start in tqdm(range(0, images.shape[0], batch_size), desc="features", disable=not progress):
            batch = _to_uint8(images[start:start + batch_size]).to(device)
            found = feature_extractor(batch)
            if isinstance(found, (tuple, list)):
                found = found[0]
            if not isinstance(found, torch.Tensor) or found.shape[0] != batch.shape[0]:
                raise ValueError(f"feature_extractor must return (B, D) features for B = {batch.shape[0]} images, got "
                                 f"{tuple(found.shape) if isinstance(found, torch.Tensor) else type(found).__name__}")
            out.append(found.reshape(batch.shape[0], -1).to(torch.float64).cpu())
    return torch.cat(out).numpy()


def fid_kid(real_images: torch.Tensor, fake_images: torch.Tensor,
            feature_extractor: Callable[[torch.Tensor], Any] | None = None, weights: str | os.PathLike | None = None,
            device: str | torch.device | None = None, batch_size: int = 50, kid_subsets: int = 100,
            kid_subset_size: int = 1000, seed: int = 0, progress: bool = False) -> dict[str, Any]:
    """FID and KID between ground-truth images and completed ones (score the **composite**,
    ``mask * pred + (1 - mask) * image``, as LaMa does), both ``[0, 1]`` ``(N, 3, H, W)``.

    Features: ``feature_extractor`` (uint8 images -> ``(b, D)``; tests pass a small random network),
    else InceptionV3's 2048-d pool features from :func:`load_inception` (``weights`` / ``$INPAINT_INCEPTION``
    / its usual download; a ``FileNotFoundError`` offline says what to download and where to put it).

    Returns ``{"fid", "kid", "kid_std", "n", "n_real", "n_fake", "kid_subsets", "kid_subset_size",
    "features"}``: ``n`` (the smaller of the two counts) always stands beside the scores; print it with
    :func:`format_fid_kid`. FID at a few hundred images is far above its large-N value: compare only at
    the same N, and prefer KID (unbiased) or LPIPS on small sets.
    """
    check_image(real_images, "real_images")
    check_image(fake_images, "fake_images")
    name = "custom feature extractor"
    if feature_extractor is None:
        feature_extractor = load_inception(weights, device=device if device is not None else "cpu")
        name = "InceptionV3 pool (2048), torch-fidelity"
    f_real = inception_features(real_images, feature_extractor, batch_size, device, progress)
    f_fake = inception_features(fake_images, feature_extractor, batch_size, device, progress)
    kid = kid_from_features(f_real, f_fake, subsets=kid_subsets, subset_size=kid_subset_size, seed=seed)
    n_real, n_fake = f_real.shape[0], f_fake.shape[0]
    return {"fid": fid_from_features(f_real, f_fake), "kid": kid["kid"], "kid_std": kid["kid_std"],
            "n": min(n_real, n_fake), "n_real": n_real, "n_fake": n_fake, "kid_subsets": kid["subsets"],
            "kid_subset_size": kid["subset_size"], "features": name}


def format_fid_kid(result: Mapping[str, Any]) -> str:
    """``"FID 12.3 (N = 100); KID 0.0123 ± 0.0011 (N = 100, 100 subsets of 50)"``: every score with its N
    (``"N = 100 real, 80 completed"`` when the counts differ). Takes :func:`fid_kid`'s result, or any
    dict with ``fid`` and / or ``kid`` and ``n``."""
    if "n" not in result:
        raise ValueError("an FID / KID result must hold its sample count 'n' (FID without N is not comparable)")
    n_real, n_fake = result.get("n_real"), result.get("n_fake")
    n = (f"N = {n_real} real, {n_fake} completed" if n_real is not None and n_fake is not None and n_real != n_fake
         else f"N = {int(result['n'])}")
    parts = []
    if result.get("fid") is not None:
        parts.append(f"FID {float(result['fid']):.1f} ({n})")
    if result.get("kid") is not None:
        subsets = (f", {result['kid_subsets']} subsets of {result['kid_subset_size']}"
                   if result.get("kid_subsets", 1) > 1 and "kid_subset_size" in result else "")
        std = f" ± {float(result['kid_std']):.4f}" if result.get("kid_std") is not None and subsets else ""
        parts.append(f"KID {float(result['kid']):.4f}{std} ({n}{subsets})")
    if not parts:
        raise ValueError("the result holds neither 'fid' nor 'kid'")
    return "; ".join(parts)
