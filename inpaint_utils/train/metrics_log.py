"""The metrics log: ``run_dir/metrics.csv``, written by the loop (:class:`_MetricsLog`) and read back for
the loss curves (:func:`read_metrics`).
"""
from __future__ import annotations

import csv
import os
from pathlib import Path
from typing import Any

from ..fileio import atomic_open

__all__ = ["read_metrics"]


class _MetricsLog:
    """``metrics.csv``: one row per ``log_every`` steps and one at the final step; new loss names add
    columns (file rewritten)."""

    def __init__(self, path: Path, keep_until: int | None):
        self.path = path
        self.columns = ["step", "time_s"]
        self.rows: list[dict[str, str]] = []
        if keep_until is not None and path.is_file():
            with open(path, newline="") as f:
                reader = csv.DictReader(f)
                self.columns = list(reader.fieldnames or self.columns)
                self.rows = [r for r in reader if r.get("step") and int(r["step"]) <= keep_until]
        self._rewrite()

    def _rewrite(self) -> None:
        with atomic_open(self.path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=self.columns, restval="")
            writer.writeheader()
            writer.writerows(self.rows)

    def append(self, values: dict[str, Any]) -> None:
        row = {k: (repr(float(v)) if isinstance(v, float) else str(v)) for k, v in values.items()}
        self.rows.append(row)
        new = [k for k in row if k not in self.columns]
        if new:
            self.columns.extend(new)
            self._rewrite()
            return
        with open(self.path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns, restval="").writerow(row)


def read_metrics(run_dir: str | os.PathLike) -> list[dict[str, float]]:
    """The rows of ``run_dir/metrics.csv`` as dicts of floats (``step`` as int; empty cells left out),
    for plotting the loss curves in a notebook."""
    path = Path(run_dir) / "metrics.csv"
    if not path.is_file():
        raise FileNotFoundError(f"no {path}: train() writes it every log_every steps")
    with open(path, newline="") as f:
        return [{k: (int(v) if k == "step" else float(v)) for k, v in r.items() if v != ""}
                for r in csv.DictReader(f)]

