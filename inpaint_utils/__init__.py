"""inpaint_utils: the one helper package of the inpaint-course notebooks.

Submodules (import what you need): ``config`` (profiles, paths, seeds), ``data`` (datasets and the
offline fallback), ``masks`` (every mask generator, 1 = hole), ``metrics`` (L1, L2, PSNR, SSIM, LPIPS,
TV in the papers' conventions), ``baselines`` (OpenCV Telea / Navier-Stokes, mean fill), ``viz``
(grids saved to ``figures/``), ``nbrun`` (execute notebooks with papermill).
"""
from .config import get_device, seed_everything, settings

__version__ = "0.1.0"
__all__ = ["get_device", "seed_everything", "settings", "__version__"]
