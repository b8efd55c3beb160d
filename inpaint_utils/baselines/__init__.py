"""The non-learned inpainting methods, in one place below every learned model: the fills that diffuse
the border inwards (:mod:`.fills`: Telea, Navier-Stokes, the mean fill, Poisson blending) and the
exemplar fills that copy pixels which exist somewhere (:mod:`.exemplar`: PatchMatch, the nearest
training image). Models' post-processes and the ``hole_ns`` input call these; nothing here imports a
model. Used by notebooks 01 (masking), 04 (GLCIC), 05 (contextual attention), 07 (comparison) and 08.

PatchMatch copies patches of the image itself, the exemplar baseline of Pathak et al. 2016
(Photoshop's Content-Aware Fill). Same contract as every fill: known pixels are the input's.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .exemplar import NearestNeighbourInpainter, nearest_neighbour_fill, patchmatch_inpaint
from .fills import (PoissonFallbackWarning, mean_fill, navier_stokes, poisson_blend, poisson_solve, require_known_pixels,
                    telea)

__all__ = ["telea", "navier_stokes", "mean_fill", "poisson_blend", "poisson_solve", "PoissonFallbackWarning",
           "require_known_pixels", "patchmatch",
           "patchmatch_inpaint", "NearestNeighbourInpainter", "nearest_neighbour_fill", "inpaint", "BASELINES",
           "EXEMPLAR", "ALL_BASELINES"]


def patchmatch(image: torch.Tensor, mask: torch.Tensor, patch_size: int = 7, seed: int = 0,
               **kwargs: Any) -> torch.Tensor:
    """PatchMatch exemplar inpainting (Barnes et al. 2009, Wexler et al.'s voting, coarse to fine): the
    hole is filled from ``patch_size`` patches of the image itself; see
    :func:`inpaint_utils.baselines.exemplar.patchmatch_inpaint` (``kwargs``: ``em_iterations``, ``pm_iterations``)."""
    return patchmatch_inpaint(image, mask, patch_size=patch_size, seed=seed, **kwargs)


#: The fast classical baselines by name (milliseconds an image), what the notebooks' tables and the
#: explorer loop over.
BASELINES: dict[str, Callable[..., torch.Tensor]] = {"mean": mean_fill, "telea": telea, "ns": navier_stokes}
#: The exemplar baselines (seconds an image on a CPU), asked for by name: not in the loops over
#: :data:`BASELINES`. The nearest-neighbour scene completion
#: (:class:`inpaint_utils.baselines.exemplar.NearestNeighbourInpainter`) is not here: it needs a training set.
EXEMPLAR: dict[str, Callable[..., torch.Tensor]] = {"patchmatch": patchmatch}
#: Every baseline :func:`inpaint` runs.
ALL_BASELINES: dict[str, Callable[..., torch.Tensor]] = {**BASELINES, **EXEMPLAR}


def inpaint(image: torch.Tensor, mask: torch.Tensor, method: str, **kwargs: Any) -> torch.Tensor:
    """Run the baseline named ``method`` (one of :data:`ALL_BASELINES`: ``"mean"``, ``"telea"``,
    ``"ns"``, ``"patchmatch"``); ``kwargs`` go to it (e.g. ``radius=5`` for telea / ns)."""
    if method not in ALL_BASELINES:
        raise ValueError(f"unknown inpainting method {method!r}; choose one of {sorted(ALL_BASELINES)}")
    return ALL_BASELINES[method](image, mask, **kwargs)
