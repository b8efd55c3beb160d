"""pytest set-up shared by the unit tests and nbval.

Tests never write into the repository's ``figures/`` or ``runs/``: unless the caller set them, the
environment variables that ``inpaint_utils.config`` reads point into one temporary folder for the
whole session. The nbval kernels inherit this environment, so notebooks run by nbval obey it too.
"""
import atexit
import os
import shutil
import tempfile

_tmp = tempfile.mkdtemp(prefix="inpaint-tests-")
atexit.register(shutil.rmtree, _tmp, ignore_errors=True)
for _var, _sub in (("INPAINT_FIGURES", "figures"), ("INPAINT_RUNS", "runs")):
    os.environ.setdefault(_var, os.path.join(_tmp, _sub))
os.environ.setdefault("MPLBACKEND", "Agg")
# OpenMP threads that spin while waiting make small models many times slower when another process
# (a notebook kernel, a second test run) shares the two cores; passive waiting costs nothing alone.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")
# Tests run offline: nothing may reach the Hugging Face hub, nor torchvision's weights (LPIPS).
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("INPAINT_OFFLINE", "1")
