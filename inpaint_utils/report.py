"""Result tables and result files with their provenance.

Every number a notebook reports is printed from rows of measured values (never typed) and saved as
JSON under ``runs/results/`` together with what produced it: profile, data, hardware, command and code
version. Later notebooks (the comparison and replication tables) read these files back.
"""
from __future__ import annotations

import json
import math
import os
import platform
import subprocess
import sys
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import project_root, runs_dir

__all__ = ["format_table", "hardware", "code_version", "save_results", "load_results"]


def _fmt(value: Any, digits: int) -> str:
    if isinstance(value, float):
        if math.isinf(value):
            return "inf" if value > 0 else "-inf"
        return f"{value:.{digits}f}"
    return "" if value is None else str(value)


def format_table(rows: Sequence[dict[str, Any]], columns: Sequence[str] | None = None, digits: int = 2) -> str:
    """A plain-text table (aligned columns) of ``rows``; floats with ``digits`` decimals.

    >>> print(format_table([{"method": "telea", "psnr": 20.123}], digits=1))
    method  psnr
    ------  ----
    telea   20.1
    """
    if not rows:
        raise ValueError("format_table needs at least one row")
    columns = list(columns or rows[0].keys())
    cells = [[_fmt(row.get(c), digits) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    numeric = [all(isinstance(row.get(c), (int, float)) for row in rows) for c in columns]

    def line(values: Sequence[str]) -> str:
        return "  ".join(v.rjust(w) if num else v.ljust(w)
                         for v, w, num in zip(values, widths, numeric)).rstrip()

    return "\n".join([line(columns), line(["-" * w for w in widths]), *(line(r) for r in cells)])


def hardware() -> str:
    """One line naming the machine: GPU model or CPU, core count, torch version."""
    if torch.cuda.is_available():
        device = f"GPU {torch.cuda.get_device_name(0)}"
    else:
        device = f"CPU {platform.processor() or platform.machine()}"
    return f"{device}, {os.cpu_count()} cores, torch {torch.__version__}, Python {platform.python_version()}"


def code_version() -> str:
    """The git commit of the checkout (with ``+dirty`` when it has changes), or ``unknown``."""
    root = project_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def save_results(name: str, rows: Sequence[dict[str, Any]], **meta: Any) -> Path:
    """Write ``rows`` and their provenance to ``runs/results/<name>.json`` atomically; return the path.

    ``meta`` should name at least ``profile`` and ``data``; hardware, code version, time and the
    command line are added here.
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"results name must be a plain file stem, got {name!r}")
    folder = runs_dir() / "results"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "rows": [dict(r) for r in rows],
        "hardware": hardware(),
        "code_version": code_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
        **meta,
    }
    path = folder / f"{name}.json"
    fd, tmp = tempfile.mkstemp(dir=folder, suffix=".json.tmp")
    with os.fdopen(fd, "w") as f:
        json.dump(record, f, indent=1, default=float)
    os.replace(tmp, path)
    return path


def load_results(name: str) -> dict[str, Any]:
    """Read back what :func:`save_results` wrote; a clear error names the notebook to run first."""
    path = runs_dir() / "results" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no saved results {path}: run the notebook that produces '{name}' first")
    return json.loads(path.read_text())
