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
import re
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Sequence

import torch

from .config import project_root, runs_dir
from .fileio import atomic_open

__all__ = ["REPORTED", "format_table", "hardware", "versions", "VERSIONED", "portable", "code_version", "command_line",
           "median_seconds", "save_results", "load_results", "committed_results", "results_table",
           "readme_results", "update_readme", "RESULTS_COLUMNS", "README_MARKERS"]


#: The numbers the source papers report (docs/references.md lists them), printed beside
#: ours. These are the papers' values, typed once here; every number of ours comes from a run.
REPORTED: dict[str, dict[str, Any]] = {
    "seed000_table1": {
        "source": "Nanavati & Patel, Table 1: 128x128, centre-region masks; L1 and L2 in % of [0, 1], PSNR in dB",
        "columns": ("method", "data", "l1_pct", "l2_pct", "psnr", "note"),
        "rows": [
            # Nanavati & Patel label this row "NN-inpainting (Baseline)", but its numbers are the Context Encoder's
            # own: Pathak et al. 2016, Table 1 (Paris StreetView, held-out images) reads NN-inpainting (HOG
            # features) 19.92 % / 6.92 % / 12.79 dB, NN-inpainting (our features) 15.10 % / 4.30 % / 14.70 dB,
            # Our Reconstruction (joint) 9.37 % / 1.96 % / 18.58 dB. Checked against two independent copies of
            # that table found by search (a course summary of the paper and a PyTorch CE port's evaluation
            # script; the port quotes the joint row as 10.33 % / 2.35 % / 17.59 dB, likely another arXiv
            # version, with the same two NN rows): Nanavati & Patel's numbers match no NN row, and match the joint row.
            # The original PDF was not at hand; our NN baseline is inpaint_utils.baselines.exemplar.
            {"method": "Context Encoder of Pathak et al. (L2 + adversarial; Nanavati & Patel: 'NN-inpainting')",
             "data": "Paris StreetView", "l1_pct": 9.37, "l2_pct": 1.96, "psnr": 18.58, "note": None},
            # Nanavati & Patel, section 4: "To test model training capabilites we evaluated CelebA-HQ results on
            # train dataset": this row was measured on their training images, ours on a held-out test split.
            {"method": "Context Encoder", "data": "CelebA-HQ", "l1_pct": 3.22, "l2_pct": 0.88, "psnr": 21.28,
             "note": "measured on their TRAINING set (their text says so), not on held-out images"},
            {"method": "Context Encoder", "data": "Cityscapes", "l1_pct": 6.0, "l2_pct": 2.98, "psnr": 16.17,
             "note": None},
            {"method": "Context Encoder", "data": "Places365", "l1_pct": 6.99, "l2_pct": 3.93, "psnr": 15.01,
             "note": None},
            {"method": "Stable Diffusion 2", "data": "CelebA-HQ", "l1_pct": 2.79, "l2_pct": 0.81, "psnr": 22.33,
             "note": None},
            {"method": "Stable Diffusion 2", "data": "Cityscapes", "l1_pct": 3.52, "l2_pct": 1.19, "psnr": 19.90,
             "note": None},
        ],
    },
    "seed002_table2": {
        "source": "Biradar et al., Table II: 256x256 with a 128x128 hole; MSE and L1 on 0-255, PSNR dB, LPIPS, TV",
        "columns": ("method", "mse255", "l1_255", "psnr", "lpips", "tv"),
        "rows": [
            {"method": "Telea", "mse255": 821.73, "l1_255": 9.66, "psnr": 19.61, "lpips": 0.17, "tv": 7.97},
            {"method": "Navier-Stokes", "mse255": 810.47, "l1_255": 9.68, "psnr": 19.63, "lpips": 0.16, "tv": 8.15},
            # Biradar et al.'s "GLCIC" is the stable variant of Yu et al. 2018 (no BatchNorm, ELU, WGAN-GP), not Iizuka's
            {"method": "stable GLCIC of Yu et al. (no BN, ELU, WGAN-GP; 50k)", "mse255": 720.49, "l1_255": 9.25,
             "psnr": 20.16, "lpips": 0.13, "tv": 1.70},
            {"method": "CA Animals hole (150k)", "mse255": 631.22, "l1_255": 8.09, "psnr": 20.99, "lpips": 0.11,
             "tv": 1.75},
            {"method": "CA ImageNet hole (300k)", "mse255": 565.84, "l1_255": 8.00, "psnr": 21.40, "lpips": 0.10,
             "tv": 1.43},
            {"method": "CA Animals mosaic (50k)", "mse255": 270.44, "l1_255": 5.31, "psnr": 24.68, "lpips": 0.06,
             "tv": 1.25},
        ],
    },
    "seed001_irregular": {
        # lpips_vgg_image: LaMa's LPIPS, VGG net-lin over the whole image (the mask is not used). The course's LPIPS
        # (SqueezeNet over the hole, lpips_hole) is another quantity: it goes in a column of its own, never this one.
        "source": "the overview notes and LaMa Table 1 (Suvorov et al. 2021): FID and "
                  "LPIPS of free-form inpainting (lpips_vgg_image: LaMa's VGG LPIPS over the whole image); "
                  "n = test images (Places2 and CelebA-HQ 256)",
        # lpips_squeeze_hole: blank in every paper row, the column where ours goes when it is put beside them
        "columns": ("method", "data", "masks", "fid", "lpips_vgg_image", "lpips_squeeze_hole", "n", "note"),
        "rows": [
            {"method": "DeepFill v2", "data": "Places2, 256 px", "masks": "free-form", "fid": 7.8,
             "lpips_vgg_image": None, "lpips_squeeze_hole": None, "n": None,
             "note": "the overview notes; a user study preferred it over partial convolutions 61 % of the time"},
            {"method": "DeepFill v2", "data": "CelebA-HQ, 256 px", "masks": "LaMa narrow", "fid": 12.5,
             "lpips_vgg_image": 0.130, "lpips_squeeze_hole": None, "n": 2000, "note": "LaMa Table 1"},
            {"method": "DeepFill v2", "data": "CelebA-HQ, 256 px", "masks": "LaMa wide", "fid": 11.2,
             "lpips_vgg_image": 0.126, "lpips_squeeze_hole": None, "n": 2000, "note": "LaMa Table 1"},
            {"method": "LaMa", "data": "CelebA-HQ, 256 px", "masks": "LaMa narrow", "fid": 7.26,
             "lpips_vgg_image": 0.085, "lpips_squeeze_hole": None, "n": 2000, "note": "LaMa Table 1"},
            {"method": "LaMa", "data": "CelebA-HQ, 256 px", "masks": "LaMa wide", "fid": 6.96,
             "lpips_vgg_image": 0.098, "lpips_squeeze_hole": None, "n": 2000, "note": "LaMa Table 1"},
        ],
    },
    "seed003_nsd": {
        "source": "the cascade CE paper: NSD of raw encoder latents (standardize=False), k=250 images, n=100 masks, "
                  "100k ImageNet images",
        "columns": ("method", "nsd_mean", "nsd_std"),
        "rows": [
            {"method": "Context Encoder", "nsd_mean": 0.79, "nsd_std": 0.17},
            {"method": "Cascade CE", "nsd_mean": 0.56, "nsd_std": 0.17},
        ],
    },
}


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


#: The key :func:`versions` records -> the distribution name(s) it reads (the first installed name wins):
#: every library whose version changes a number in results/ (constraints-ci.txt pins each of them).
VERSIONED: dict[str, tuple[str, ...]] = {
    "torch": ("torch",), "torchvision": ("torchvision",), "numpy": ("numpy",), "scipy": ("scipy",),
    "scikit-image": ("scikit-image",), "pillow": ("pillow",),
    "opencv": ("opencv-python-headless", "opencv-python", "opencv-contrib-python", "opencv-contrib-python-headless"),
    "lpips": ("lpips",), "torch-fidelity": ("torch-fidelity",), "diffusers": ("diffusers",),
    "transformers": ("transformers",), "huggingface_hub": ("huggingface_hub",), "safetensors": ("safetensors",),
}


def versions() -> dict[str, str | None]:
    """The versions of the libraries a result depends on (the keys of :data:`VERSIONED`: torch, numpy,
    OpenCV, scikit-image, Pillow, LPIPS, torch-fidelity, diffusers ...; ``None`` when not installed) and
    Python's, read from the installed distributions (nothing is imported). torch's local build suffix
    (``+cpu``, ``+cu128``) is dropped."""
    from importlib import metadata

    found: dict[str, str | None] = {}
    for key, names in VERSIONED.items():
        found[key] = None
        for name in names:
            try:
                found[key] = metadata.version(name).split("+")[0]
                break
            except metadata.PackageNotFoundError:
                continue
    found["python"] = platform.python_version()
    return found


# An absolute POSIX path inside a string: a "/" at the start or after a space, a quote, an opening bracket,
# "=", "," or ";" (so "L1/L2", "80/10/10", URLs and relative paths whose folder names end in ")", "+" or an emoji,
# "photos (2019)/faces", are left alone) and followed by a name. After "=" or "," (an option's "--data=/x",
# or a folder name "a=" of a relative path) it counts only when its first folder exists here (:func:`_portable_text`).
_ABS_PATH = re.compile(r"(?:^|(?<=[\s'\"`(\[{=,;]))/[^\s/'\",;()\[\]{}]+(?:/[^\s/'\",;()\[\]{}]*)*")


def _path_roots() -> list[tuple[str, str]]:
    """(absolute folder, what to write instead), longest first: the project (paths become relative to it),
    the runs, data and shared folders named by their variables, then the home folder."""
    from .config import data_root, project_root, shared_data_root

    project = project_root().resolve()
    roots = [(project, ""), (runs_dir(), "$INPAINT_RUNS/"), (data_root(), "$INPAINT_DATA/"),
             (shared_data_root(), "$INPAINT_SHARED/"), (Path.home(), "~/")]
    pairs = []
    for folder, name in roots:
        if folder is None or (name and Path(folder).resolve().is_relative_to(project)):
            continue                                   # inside the project: relative to it, e.g. runs/...
        for variant in {str(folder), str(Path(folder).resolve())}:
            if variant not in ("/", ""):
                pairs.append((variant.rstrip("/"), name))
    return sorted(pairs, key=lambda pair: len(pair[0]), reverse=True)


def _portable_text(text: str, roots: list[tuple[str, str]]) -> str:
    def replace(match: re.Match) -> str:
        path = match.group(0)
        if match.start() > 0 and text[match.start() - 1] in "=," \
                and not os.path.isdir("/" + path.split("/")[1]):
            return path                                  # "a=/faces": a relative path, not "/faces"
        for folder, name in roots:
            if path == folder:
                return name.rstrip("/") or "."
            if path.startswith(folder + "/"):
                return name + path[len(folder) + 1:]
        return ".../" + path.rstrip("/").rsplit("/", 1)[-1]      # elsewhere on that machine: its name only
    return _ABS_PATH.sub(replace, text)


def portable(value: Any, _roots: list[tuple[str, str]] | None = None) -> Any:
    """``value`` (a result record: dicts, lists, strings, numbers) with no absolute path of this machine:
    a path inside the project becomes relative to it, one under the runs / data / shared folders or the
    home folder starts with ``$INPAINT_RUNS/``, ``$INPAINT_DATA/``, ``$INPAINT_SHARED/`` or ``~/``, any
    other keeps only its last name (``.../name``). Applied to every string, keys included."""
    roots = _path_roots() if _roots is None else _roots
    if isinstance(value, os.PathLike):
        value = os.fspath(value)
    if isinstance(value, str):
        return _portable_text(value, roots)
    if isinstance(value, dict):
        return {portable(k, roots) if isinstance(k, str) else k: portable(v, roots) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [portable(v, roots) for v in value]
    return value


def median_seconds(fn, repeat: int, device: torch.device | str = "cpu") -> float:
    """Median wall time of ``repeat`` calls of ``fn`` after one warm-up call (not counted), synchronised
    before and after each call on CUDA: the timing of every benchmark table and of ``inpaint benchmark``."""
    import statistics
    import time

    cuda = torch.device(device).type == "cuda"

    def sync() -> None:
        if cuda:
            torch.cuda.synchronize(device)

    fn()
    sync()
    runs = []
    for _ in range(repeat):
        sync()
        start = time.perf_counter()
        fn()
        sync()
        runs.append(time.perf_counter() - start)
    return statistics.median(runs)


def counted_flops(fn) -> int:
    """The floating-point operations of one call of ``fn`` as torch counts them
    (``torch.utils.flop_counter.FlopCounterMode``: matrix products and convolutions, forward and backward,
    2 per multiply-add; element-wise work is not counted): the numerator of a benchmark's GFLOP/s."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        fn()
    return int(counter.get_total_flops())


def matmul_peak_gflops(device: torch.device | str = "cpu", size: int = 2048, repeat: int = 5) -> float:
    """The machine's float32 matrix-product rate, measured: GFLOP/s of ``torch.mm`` of two ``size x size``
    float32 matrices (``2 size^3`` operations), the median of ``repeat`` runs after a warm-up, with the torch
    threads set now. The denominator of a benchmark's "% of peak", measured in the same run as its numerator."""
    g = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=g).to(device)
    b = torch.randn(size, size, generator=g).to(device)
    out = torch.empty(size, size, device=device)
    seconds = median_seconds(lambda: torch.mm(a, b, out=out), repeat, device)
    return 2 * size ** 3 / seconds / 1e9


def code_version() -> str:
    """The git commit of the checkout (with ``+dirty`` when its tracked files have changes), or ``unknown``.
    The committed results (``results/``) and README.md, which ``scripts/cpu_runs.sh`` rewrites as it goes, do not
    count: the second run it scores is made by the same code as the first."""
    root = project_root()
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=root, capture_output=True,
                             text=True, timeout=10, check=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no", "--", ".",
                                ":(exclude)results", ":(exclude)README.md"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def command_line() -> str:
    """The command behind this process: ``$INPAINT_COMMAND`` when a runner set it (``nbrun`` sets the
    papermill line with its parameters), else ``sys.argv``; in a kernel started by hand, says so."""
    given = os.environ.get("INPAINT_COMMAND")
    if given:
        return given
    if sys.argv and sys.argv[0].endswith("ipykernel_launcher.py"):
        return "an interactive notebook kernel (JupyterLab / Colab, parameters as in its first cell)"
    return " ".join(sys.argv)


def _json_default(value: Any) -> Any:
    return os.fspath(value) if isinstance(value, os.PathLike) else float(value)


#: How a result file writes the numbers strict JSON has no literal for (a PSNR of a perfect fill is ``inf``):
#: as these strings, which :func:`from_strict_json` (every reader of results: :func:`load_results`,
#: :func:`committed_results`, :func:`read_json`) turns back into floats. Python's own ``Infinity`` / ``NaN``
#: are refused by strict parsers (JavaScript's ``JSON.parse``, ``jq``, most browsers' viewers).
NON_FINITE: dict[str, float] = {"inf": math.inf, "-inf": -math.inf, "nan": math.nan}


def to_strict_json(value: Any) -> Any:
    """``value`` as plain JSON types (paths as strings, numpy numbers as floats) with every infinite or NaN
    float written as its string of :data:`NON_FINITE`, so that ``json.dump(..., allow_nan=False)`` takes it."""
    def convert(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return "nan" if math.isnan(v) else ("inf" if v > 0 else "-inf")
        if isinstance(v, dict):
            return {k: convert(x) for k, x in v.items()}
        if isinstance(v, list):
            return [convert(x) for x in v]
        return v

    return convert(json.loads(json.dumps(value, default=_json_default)))


def from_strict_json(value: Any) -> Any:
    """The inverse of :func:`to_strict_json`: the strings of :data:`NON_FINITE` (as values, not keys) back to
    floats; Python's ``Infinity`` of older files reads as it always did."""
    if isinstance(value, str):
        return NON_FINITE.get(value, value)
    if isinstance(value, dict):
        return {k: from_strict_json(v) for k, v in value.items()}
    if isinstance(value, list):
        return [from_strict_json(v) for v in value]
    return value


def write_json(path: str | os.PathLike, record: Any) -> Path:
    """Write ``record`` to ``path`` atomically as strict JSON (:func:`to_strict_json`, indented); return it."""
    path = Path(path)
    with atomic_open(path, "w") as f:
        json.dump(to_strict_json(record), f, indent=1, allow_nan=False)
    return path


def read_json(path: str | os.PathLike) -> Any:
    """Read a file :func:`write_json` wrote (its non-finite numbers as floats again: :func:`from_strict_json`)."""
    return from_strict_json(json.loads(Path(path).read_text()))


def save_results(name: str, rows: Sequence[dict[str, Any]], **meta: Any) -> Path:
    """Write ``rows`` and their provenance to ``runs/results/<name>.json`` atomically; return the path.

    ``meta`` should name at least ``profile`` and ``data``; hardware, library versions
    (:func:`versions`), code version, time and the command line are added here. Every field goes through
    :func:`portable`: the file holds no absolute path of the machine that made it; it is strict JSON
    (infinite numbers as :data:`NON_FINITE`'s strings, read back by :func:`load_results`).
    """
    if not name or "/" in name or "\\" in name or name.startswith("."):
        raise ValueError(f"results name must be a plain file stem, got {name!r}")
    folder = runs_dir() / "results"
    folder.mkdir(parents=True, exist_ok=True)
    record = {
        "name": name,
        "rows": [dict(r) for r in rows],
        "hardware": hardware(),
        "versions": versions(),
        "code_version": code_version(),
        "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "command": command_line(),
        **meta,
    }
    record = portable(to_strict_json(record))
    return write_json(folder / f"{name}.json", record)


def load_results(name: str) -> dict[str, Any]:
    """Read back what :func:`save_results` wrote; a clear error names the notebook to run first."""
    path = runs_dir() / "results" / f"{name}.json"
    if not path.is_file():
        raise FileNotFoundError(f"no saved results {path}: run the notebook that produces '{name}' first")
    return read_json(path)


# ------------------------------------------------------------------------- committed results (results/)

#: the columns of the committed results table (README, notebook 07): the hole metrics of both papers
RESULTS_COLUMNS = ("run", "method", "n", "psnr_hole", "lpips_hole", "l1_pct_hole", "ssim_hole", "psnr_image",
                   "steps", "train_min", "images_per_s")
#: the lines of README.md between which :func:`readme_results` goes
README_MARKERS = ("<!-- results-table: generated by inpaint_utils.report.readme_results; do not edit -->",
                  "<!-- results-table end -->")


def committed_results(folder: str | os.PathLike | None = None) -> dict[str, dict[str, Any]]:
    """The result files committed under ``results/`` of the checkout (``folder`` to read another), by name
    (file stem), sorted: each an ``inpaint evaluate --json`` record (``scripts/cpu_runs.sh`` writes them)."""
    folder = Path(folder) if folder is not None else project_root() / "results"
    out = {}
    for path in sorted(folder.glob("*.json")):
        record = read_json(path)
        if not isinstance(record, dict) or not isinstance(record.get("rows"), list):
            raise ValueError(f"{path.name} is not a results record (no 'rows' list)")
        out[path.stem] = record
    return out


def results_table(records: dict[str, dict[str, Any]] | None = None) -> list[dict[str, Any]]:
    """One row per method of each committed result (:func:`committed_results`): the learned model's row
    (with its training steps, minutes and images/s) and, on the same test images and masks, Telea's and
    Navier-Stokes'; every number read from the files, none typed."""
    records = committed_results() if records is None else records
    rows = []
    for name, record in records.items():
        training = record.get("training") or {}
        for r in record["rows"]:
            learned = r.get("method") == record.get("method")
            seconds = training.get("train_time_s") if learned else None
            rows.append({"run": name, "method": r.get("method"), "n": r.get("n"),
                         **{k: r.get(k) for k in ("psnr_hole", "lpips_hole", "l1_pct_hole", "ssim_hole",
                                                  "psnr_image")},
                         "steps": training.get("step") if learned else None,
                         "train_min": seconds / 60 if seconds else None,
                         "images_per_s": training.get("images_per_s") if learned else None})
    return rows


#: how the README names the feature network of a run's perceptual and style losses (``loss_features``)
_FEATURE_LABELS = {"vgg16": "VGG-16 ImageNet pool1-pool3 (the paper's)",
                   "squeeze": "SqueezeNet 1.1 ImageNet conv1, fire3, fire5 (the offline substitute, not the paper's "
                              "VGG-16)",
                   "random": "a VGG-16 of random weights", "squeeze_random": "a SqueezeNet of random weights"}


def readme_results(records: dict[str, dict[str, Any]] | None = None) -> str:
    """The README's results table: one row per committed result (:func:`committed_results`), what a reader
    compares: the run (a link to its JSON file, which holds the provenance: data, masks, hardware, code version,
    versions and the commands that trained and scored it), the method, n, PSNR and LPIPS in the hole, and Telea's
    on the same images and masks. Every number is read from the files (:func:`results_table`)."""
    records = committed_results() if records is None else records
    if not records:
        return "No committed results yet: `scripts/cpu_runs.sh` makes them."

    def cell(value: Any, digits: int) -> str:
        return "" if value is None else f"{value:.{digits}f}" if isinstance(value, float) else str(value)

    by_run: dict[str, dict[str, dict[str, Any]]] = {}
    for row in results_table(records):
        by_run.setdefault(row["run"], {}).setdefault(row["method"], row)
    lines = ["| run | method | n | PSNR hole (dB) | LPIPS hole | Telea PSNR hole | Telea LPIPS hole |",
             "|---|---|---|---|---|---|---|"]
    for name, record in records.items():
        rows = by_run.get(name, {})
        own = rows.get(record.get("method")) or next(iter(rows.values()), None)
        if own is None:
            continue
        telea = rows.get("telea") or {}
        method = own["method"]
        if record.get("loss_features"):
            method += f" ({record['loss_features']} features)"
        lines.append(f"| [`{name}`](results/{name}.json) | {method} | {cell(own.get('n'), 0)} | "
                     f"{cell(own.get('psnr_hole'), 2)} | {cell(own.get('lpips_hole'), 3)} | "
                     f"{cell(telea.get('psnr_hole'), 2)} | {cell(telea.get('lpips_hole'), 3)} |")
    lines.append("")
    lines.append("PSNR and LPIPS (SqueezeNet; lower is better) in the hole of the composite, on the held-out test images "
                 "and the masks of each run, Telea's on the same images and masks. Each run's JSON file (its link) "
                 "holds the rest: Navier-Stokes, L1, SSIM (and, for LaMa's sets, every score per hole-area bin), the data, "
                 "masks, hardware, code version and the commands that trained and scored it.")
    features = sorted({r["loss_features"] for r in records.values() if r.get("loss_features")})
    if features:
        lines.append("")
        lines.append("Feature networks of the perceptual and style losses: " + "; ".join(
            f"`{f}` features: {_FEATURE_LABELS.get(f, f)}" for f in features) + ".")
    return "\n".join(lines)


def update_readme(path: str | os.PathLike | None = None) -> Path:
    """Rewrite the part of README.md between :data:`README_MARKERS` with :func:`readme_results` (what
    ``scripts/cpu_runs.sh`` does last); return the file. A README without both markers is refused."""
    path = Path(path) if path is not None else project_root() / "README.md"
    text = path.read_text()
    start, end = README_MARKERS
    if text.count(start) != 1 or text.count(end) != 1 or text.index(start) > text.index(end):
        raise ValueError(f"{path.name} must hold each results marker once, in order: {start!r} ... {end!r}")
    head, rest = text.split(start)
    _, tail = rest.split(end)
    with atomic_open(path, "w") as f:
        f.write(f"{head}{start}\n{readme_results()}\n{end}{tail}")
    return path
