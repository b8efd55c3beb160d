"""Checkpoints: safetensors weights + a JSON of what produced them, written atomically, checked on load.

Used by :mod:`inpaint_utils.train` (every training notebook: 02 Context Encoder, 03 cascade CE, 04 GLCIC,
05 contextual attention) and by any notebook that loads a trained model for evaluation.

A checkpoint is one folder::

    step_000100/
        checkpoint.json          model name, config, step, code and torch versions, time, file list + sha256,
                                 and the sha256 of all of that (``meta_sha256``)
        generator.safetensors    one file per model: its ``state_dict()`` (parameters and buffers)
        discriminator.safetensors
        training_state.pt        optimizer and GradScaler states, RNG states, step counters (torch.save)

Why this shape (docs/conventions.md, "Checkpoints"): ports of these papers break when code and weights
drift apart, so the model name, its config and the code version travel with the weights, and
:func:`load_checkpoint` refuses a checkpoint whose name, config or tensor shapes differ from the model
it is loaded into, saying exactly what differs, *before* it changes anything. Weights are safetensors
(no code can hide in them); ``training_state.pt`` is read with ``torch.load(weights_only=True)``, so a
file holding anything but tensors and plain Python values is refused rather than unpickled.
``checkpoint.json`` itself carries ``meta_sha256``, the sha256 of its canonical form (every key but
that one, sorted, compact separators; :func:`meta_digest`), so an edited ``config`` or ``step`` is
refused like a flipped weight byte. Checkpoints of format 1 (written before the JSON had a digest) are
still loaded, with a warning that their JSON is unchecked: their weights and training state are still
checked against the recorded sha256, and refusing them would throw away runs that took hours to train;
resuming such a run writes format-2 checkpoints from then on.

Writing is atomic: everything goes into a hidden temporary sibling folder, each file is fsync'ed,
then the folder is renamed into place. An existing checkpoint at the same path is moved aside only
once the new one is complete, so a crash never leaves a half-written checkpoint nor destroys the
previous one.

>>> save_checkpoint(run / "checkpoints" / "step_000100", {"generator": net}, {"generator": opt},
...                 model_name="context_encoder", config={"image_size": 128}, step=100)  # doctest: +SKIP
>>> info = load_checkpoint(latest_checkpoint(run), {"generator": net}, model_name="context_encoder",
...                        config={"image_size": 128})  # doctest: +SKIP
>>> info["step"]  # doctest: +SKIP
100
"""
from __future__ import annotations

import dataclasses
import enum
import hashlib
import json
import os
import pickle
import re
import shutil
import tempfile
import warnings
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from .fileio import sha256_file

__all__ = [
    "CheckpointError",
    "jsonable",
    "save_checkpoint",
    "load_checkpoint",
    "checkpoint_info",
    "training_summary",
    "latest_checkpoint",
    "verify_checkpoint",
    "prune_checkpoints",
    "checkpoint_path",
    "meta_digest",
    "META_FILE",
    "STATE_FILE",
]

FORMAT = "inpaint-course-checkpoint"
FORMAT_VERSION = 2  # 2: checkpoint.json holds meta_sha256, the digest of the rest of it
DIGEST_KEY = "meta_sha256"
META_FILE = "checkpoint.json"
STATE_FILE = "training_state.pt"
_STEP_RE = re.compile(r"^step_(\d+)$")
_NAME_RE = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
_TMP_MARK = ".tmp-"
_OLD_MARK = ".old-"


class CheckpointError(ValueError):
    """A checkpoint that cannot be loaded into the given models: wrong model, config, shapes, or a
    damaged / foreign file. The message says what differs and what to do."""


# ----------------------------------------------------------------------------------------------- helpers

def checkpoint_path(run_dir: str | os.PathLike, step: int) -> Path:
    """Where the training loop keeps the checkpoint of ``step``: ``run_dir/checkpoints/step_000100``."""
    return Path(run_dir) / "checkpoints" / f"step_{int(step):06d}"


def jsonable(value: Any, key: str = "config") -> Any:
    """``value`` as plain JSON types (dataclasses -> dict, tuples -> list, paths/dtypes/enums -> str),
    so that a config compares equal before and after a JSON round trip."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        value = dataclasses.asdict(value)
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"{key} keys must be strings, got {k!r}")
            out[k] = jsonable(v, f"{key}.{k}")
        return out
    if isinstance(value, (list, tuple)):
        return [jsonable(v, f"{key}[{i}]") for i, v in enumerate(value)]
    if isinstance(value, bool) or value is None or isinstance(value, (int, str)):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            return str(value)  # JSON has no NaN/inf; keep them comparable as text
        return value
    if isinstance(value, enum.Enum):
        return jsonable(value.value, key)
    if isinstance(value, (os.PathLike, torch.dtype, torch.device)):
        return str(value)
    raise TypeError(f"{key} = {value!r} ({type(value).__name__}) cannot be stored in a checkpoint's JSON; "
                    f"use numbers, strings, booleans, None, lists and dicts")


def meta_digest(meta: Mapping[str, Any]) -> str:
    """The sha256 of a checkpoint description: its JSON without :data:`DIGEST_KEY` (and without the
    ``path`` that :func:`checkpoint_info` adds), keys sorted, compact separators, UTF-8."""
    body = {k: v for k, v in meta.items() if k not in (DIGEST_KEY, "path")}
    text = json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=False, allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if isinstance(d, dict):
        out: dict[str, Any] = {}
        for k, v in d.items():
            out.update(_flatten(v, f"{prefix}{k}."))
        if not d and prefix:
            out[prefix[:-1]] = {}
        return out
    return {prefix[:-1]: d}


def _config_diff(saved: Any, given: Any) -> list[str]:
    """One line per differing (dotted) key: ``image_size: checkpoint 128, given 64``."""
    a, b = _flatten(saved), _flatten(given)
    lines = []
    for k in sorted(set(a) | set(b)):
        va, vb = a.get(k, "<missing>"), b.get(k, "<missing>")
        if va != vb:
            lines.append(f"{k}: checkpoint {va!r}, given {vb!r}")
    return lines


def _fsync_file(path: Path) -> None:
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def _fsync_dir(path: Path) -> None:
    try:  # POSIX only; on Windows a directory cannot be opened for fsync
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _check_names(kind: str, mapping: Mapping[str, Any], cls: type) -> None:
    if not isinstance(mapping, Mapping):
        raise TypeError(f"{kind} must be a dict {{name: {cls.__name__}}}, got {type(mapping).__name__}")
    for name, obj in mapping.items():
        if not isinstance(name, str) or not _NAME_RE.fullmatch(name) or name in (META_FILE, STATE_FILE):
            raise ValueError(f"{kind} key {name!r} must be a plain name (letters, digits, '_', '-', '.')")
        if not isinstance(obj, cls):
            raise TypeError(f"{kind}[{name!r}] must be a {cls.__name__}, got {type(obj).__name__}")


def _model_tensors(name: str, model: nn.Module) -> dict[str, torch.Tensor]:
    out = {}
    for key, value in model.state_dict().items():
        if not isinstance(value, torch.Tensor):
            raise TypeError(f"models[{name!r}].state_dict()[{key!r}] is a {type(value).__name__}, not a tensor; "
                            f"safetensors stores tensors only")
        # a copy on the CPU: contiguous, and no shared storage (tied weights) for safetensors to refuse
        out[key] = value.detach().to("cpu", copy=True).contiguous()
    return out


def _scaler_states(scaler: Any) -> dict[str, Any] | None:
    if scaler is None:
        return None
    if isinstance(scaler, Mapping):
        return {str(k): v.state_dict() for k, v in scaler.items() if v is not None}
    return {"": scaler.state_dict()}


# ------------------------------------------------------------------------------------------------- save

def save_checkpoint(path_dir: str | os.PathLike, models: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer] | None = None, *, model_name: str,
                    config: Mapping[str, Any] | Any, step: int, extra_state: Mapping[str, Any] | None = None,
                    scaler: Any = None, keep_last: int | None = None) -> Path:
    """Write a checkpoint folder at ``path_dir`` atomically and return its path.

    ``models``: ``{"generator": G, "discriminator": D}``, one ``<name>.safetensors`` each.
    ``optimizers``: ``{name: optimizer}``; their ``state_dict()`` go to ``training_state.pt`` with
    ``scaler`` (a ``GradScaler`` or a dict of them) and ``extra_state`` (tensors, numbers, strings,
    lists and dicts of these: RNG states, counters). ``model_name`` and ``config`` (a dict or a
    dataclass of JSON values) are what :func:`load_checkpoint` checks. An existing checkpoint at
    ``path_dir`` is replaced only once the new one is complete. ``keep_last``: afterwards keep only
    the newest ``keep_last`` ``step_*`` siblings (:func:`prune_checkpoints`).
    """
    from safetensors.torch import save_file

    from .report import code_version

    path = Path(path_dir)
    optimizers = {} if optimizers is None else optimizers
    extra_state = {} if extra_state is None else extra_state
    if not isinstance(model_name, str) or not model_name:
        raise ValueError(f"model_name must be a non-empty string, got {model_name!r}")
    if isinstance(step, bool) or not isinstance(step, int) or step < 0:
        raise ValueError(f"step must be a non-negative int, got {step!r}")
    _check_names("models", models, nn.Module)
    if not models:
        raise ValueError("models is empty: pass at least one {name: nn.Module}")
    _check_names("optimizers", optimizers, torch.optim.Optimizer)
    if not isinstance(extra_state, Mapping):
        raise TypeError(f"extra_state must be a dict, got {type(extra_state).__name__}")
    if keep_last is not None and (isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1):
        raise ValueError(f"keep_last must be a positive int or None, got {keep_last!r}")
    config_json = jsonable(config)

    parent = path.parent
    parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}{_TMP_MARK}", dir=parent))
    writing = "its folder"
    try:
        files: dict[str, dict[str, Any]] = {}
        for name, model in models.items():
            fname = writing = f"{name}.safetensors"
            save_file(_model_tensors(name, model), str(tmp / fname), metadata={"model_name": model_name})
            _fsync_file(tmp / fname)
        state = {
            "optimizers": {name: opt.state_dict() for name, opt in optimizers.items()},
            "scaler": _scaler_states(scaler),
            "extra_state": dict(extra_state),
        }
        writing = STATE_FILE
        with open(tmp / STATE_FILE, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        for fname in [*(f"{n}.safetensors" for n in models), STATE_FILE]:
            files[fname] = {"sha256": sha256_file(tmp / fname), "bytes": (tmp / fname).stat().st_size}
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "model_name": model_name,
            "config": config_json,
            "step": step,
            "models": list(models),
            "optimizers": list(optimizers),
            "code_version": code_version(),
            "torch_version": torch.__version__,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "files": files,
        }
        meta[DIGEST_KEY] = meta_digest(meta)
        writing = META_FILE
        with open(tmp / META_FILE, "w") as f:
            json.dump(meta, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        writing = "its folder"
        os.chmod(tmp, 0o755)  # mkdtemp makes it private; a checkpoint is an ordinary folder
        _fsync_dir(tmp)
        _move_into_place(tmp, path)
    except (OSError, RuntimeError) as e:  # a full disk: OSError from open / write / fsync, RuntimeError from torch.save
        shutil.rmtree(tmp, ignore_errors=True)
        raise _write_error(path, writing, e) from e
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    _fsync_dir(parent)
    if keep_last is not None and _STEP_RE.fullmatch(path.name):
        prune_checkpoints(parent, keep_last)
    return path


def _write_error(path: Path, writing: str, error: BaseException) -> OSError:
    """The one-line error of a checkpoint that could not be written: which checkpoint and file, the cause (with
    the free space of its disk), and that the checkpoints already there are untouched."""
    if isinstance(error, FileExistsError):
        return error
    cause = getattr(error, "strerror", None) or " ".join(str(error).split())
    try:
        free = f"; {shutil.disk_usage(path.parent).free / 1e6:.0f} MB free on its disk"
    except OSError:
        free = ""
    out = OSError(f"cannot write checkpoint {path} ({writing}): {type(error).__name__}: {cause}{free}; nothing of "
                  f"it was kept and the checkpoints already there are untouched")
    out.errno = getattr(error, "errno", None)
    return out


def _move_into_place(tmp: Path, path: Path) -> None:
    """Rename the complete ``tmp`` to ``path``; an old ``path`` is moved aside first and deleted only
    after the new one is in place (a directory cannot be replaced by one rename)."""
    if not path.exists():
        os.replace(tmp, path)
        return
    if not path.is_dir():
        raise FileExistsError(f"{path} exists and is not a checkpoint folder; remove it or choose another path")
    backup = Path(tempfile.mkdtemp(prefix=f".{path.name}{_OLD_MARK}", dir=path.parent))
    os.rmdir(backup)  # only its unique name is wanted
    os.replace(path, backup)
    try:
        os.replace(tmp, path)
    except BaseException:
        os.replace(backup, path)  # put the old one back
        raise
    shutil.rmtree(backup, ignore_errors=True)


# ------------------------------------------------------------------------------------------------- find

def _step_dirs(checkpoints_dir: Path) -> list[tuple[int, Path]]:
    if not checkpoints_dir.is_dir():
        return []
    found = []
    for p in checkpoints_dir.iterdir():
        m = _STEP_RE.fullmatch(p.name)
        if m and p.is_dir() and (p / META_FILE).is_file():
            found.append((int(m.group(1)), p))
    return sorted(found)


def _checkpoints_dir(run_dir: str | os.PathLike) -> Path:
    run_dir = Path(run_dir)
    return run_dir if _step_dirs(run_dir) and not (run_dir / "checkpoints").is_dir() else run_dir / "checkpoints"


def latest_checkpoint(run_dir: str | os.PathLike, verify: bool = False) -> Path | None:
    """The complete checkpoint of the highest step under ``run_dir/checkpoints`` (or ``run_dir`` itself
    when it directly holds ``step_*`` folders), or ``None``. Temporary folders are ignored.

    ``verify=True``: the newest one that passes :func:`verify_checkpoint`; each newer damaged one is
    skipped with a warning saying why. When every checkpoint is damaged, the newest one's
    :class:`CheckpointError` is raised (rather than ``None``, which would mean "start afresh")."""
    found = _step_dirs(_checkpoints_dir(run_dir))
    if not verify:
        return found[-1][1] if found else None
    first_error: CheckpointError | None = None
    for _, path in reversed(found):
        try:
            verify_checkpoint(path)
        except CheckpointError as e:
            first_error = first_error or e
            warnings.warn(f"skipping the damaged checkpoint {path.name}: {e}", stacklevel=2)
            continue
        return path
    if first_error is not None:
        raise CheckpointError(f"every checkpoint under {run_dir} is damaged; the newest: {first_error}")
    return None


def prune_checkpoints(checkpoints_dir: str | os.PathLike, keep_last: int) -> list[Path]:
    """Delete all but the newest ``keep_last`` ``step_*`` checkpoints in ``checkpoints_dir``, and the
    temporary folders a killed save left behind (do not call it while another process is saving into
    the same folder). Returns the deleted checkpoint paths."""
    if isinstance(keep_last, bool) or not isinstance(keep_last, int) or keep_last < 1:
        raise ValueError(f"keep_last must be a positive int, got {keep_last!r}")
    folder = Path(checkpoints_dir)
    found = _step_dirs(folder)
    removed = [p for _, p in found[:-keep_last]]
    for p in removed:
        shutil.rmtree(p)
    if folder.is_dir():
        for p in folder.iterdir():
            if p.name.startswith(".") and _TMP_MARK in p.name and p.is_dir():
                shutil.rmtree(p, ignore_errors=True)
    return removed


# ------------------------------------------------------------------------------------------------- load

def _resolve(path_dir: str | os.PathLike) -> Path:
    path = Path(path_dir)
    if not path.exists():
        hint = ""
        if path.parent.is_dir():
            olds = sorted(path.parent.glob(f".{path.name}{_OLD_MARK}*"))
            if olds:
                hint = (f" A previous version survives at {olds[-1]} (a save was interrupted while replacing it); "
                        f"rename it to {path.name} to use it.")
        raise FileNotFoundError(
            f"no checkpoint at {path}: train first (inpaint_utils.train.train(...) writes run_dir/checkpoints/"
            f"step_XXXXXX), or pass an existing checkpoint folder; latest_checkpoint(run_dir) finds the newest.{hint}")
    if path.is_file():
        raise CheckpointError(f"{path} is a file, not a checkpoint: a checkpoint is a folder holding {META_FILE} "
                              f"(written by save_checkpoint)")
    if not (path / META_FILE).is_file():
        latest = latest_checkpoint(path)
        if latest is not None:
            return latest  # a run folder: its newest checkpoint
        raise CheckpointError(f"{path} is not a checkpoint: it has no {META_FILE} (and no checkpoints/step_* inside)")
    return path


def checkpoint_info(path_dir: str | os.PathLike) -> dict[str, Any]:
    """The ``checkpoint.json`` of a checkpoint (or of a run folder's newest one), plus its ``path``;
    loads no tensors."""
    path = _resolve(path_dir)
    try:
        meta = json.loads((path / META_FILE).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise CheckpointError(f"{path / META_FILE} is not a readable checkpoint description: {e}") from e
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise CheckpointError(f"{path} is not an inpaint-course checkpoint ({META_FILE} has no "
                              f"'format': {FORMAT!r})")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise CheckpointError(f"{path} has checkpoint format {meta.get('format_version')}, newer than this code "
                              f"({FORMAT_VERSION}); update inpaint_utils")
    if meta.get("format_version", 0) >= 2:
        if meta.get(DIGEST_KEY) != meta_digest(meta):
            raise CheckpointError(f"{path / META_FILE} is corrupt: its content differs from its {DIGEST_KEY} "
                                  f"(an edited config or step, or a damaged copy); use another checkpoint")
    else:
        warnings.warn(f"{path} has checkpoint format {meta.get('format_version', 0)}, whose {META_FILE} (config, "
                      f"step) has no digest and is not checked (its weights are); resume or re-save it to "
                      f"write format {FORMAT_VERSION}", stacklevel=2)
    for key in ("model_name", "config", "step", "models", "files"):
        if key not in meta:
            raise CheckpointError(f"{path / META_FILE} lacks {key!r}: damaged or not written by save_checkpoint")
    meta["path"] = path
    return meta


def training_summary(path_dir: str | os.PathLike) -> dict[str, Any]:
    """How the weights of a checkpoint written by :func:`inpaint_utils.train.train` were trained, from its
    training state (read with every check of ``load_checkpoint``; no weights loaded): ``{"step",
    "train_time_s"`` (wall seconds of training up to this step, over every resumed session),
    ``"images_per_s"`` (global batch x batches per step x step / train_time_s, as ``train`` counts it), ``"batch_size", "world_size", "seed",
    "augment", "device", "run_name", "precision", "memory_format"}`` (the last two: the forward passes' dtype and the
    memory format the run resolved, e.g. ``"float32"`` / ``"contiguous"``; ``None`` for a checkpoint older than
    them)."""
    meta = checkpoint_info(path_dir)
    extra = _load_state_file(_verified(meta["path"], meta, STATE_FILE), "cpu")["extra_state"]
    if "elapsed_s" not in extra or "train_config" not in extra:
        raise CheckpointError(f"{meta['path']} was not written by inpaint_utils.train.train (its training state "
                              f"has no elapsed_s / train_config)")
    cfg, seconds, step = extra["train_config"], float(extra["elapsed_s"]), int(meta["step"])
    return {"step": step, "train_time_s": seconds,
            "images_per_s": step * cfg.get("batches_per_step", 1) * cfg["batch_size"] / seconds if seconds > 0 else None,
            "batch_size": cfg["batch_size"], "world_size": extra.get("world_size", 1), "seed": cfg.get("seed"),
            "augment": cfg.get("augment"), "device": cfg.get("device"), "run_name": cfg.get("run_name"),
            "precision": cfg.get("precision"), "memory_format": cfg.get("memory_format_used")}


def _verified(path: Path, meta: dict[str, Any], fname: str) -> Path:
    entry = meta["files"].get(fname)
    file = path / fname
    if entry is None:
        raise CheckpointError(f"{path} lists no file {fname!r} in {META_FILE}: damaged checkpoint")
    if not file.is_file():
        raise CheckpointError(f"{file} is missing: the checkpoint is incomplete")
    if file.stat().st_size != entry["bytes"] or sha256_file(file) != entry["sha256"]:
        raise CheckpointError(f"{file} is corrupt: its sha256 differs from the one recorded in {META_FILE} "
                              f"(a damaged copy or an edited file); use another checkpoint")
    return file


def verify_checkpoint(path_dir: str | os.PathLike) -> dict[str, Any]:
    """Check a checkpoint without loading it into a model: its ``checkpoint.json`` (format, digest) and
    the sha256 of every file it lists. Returns :func:`checkpoint_info`; raises :class:`CheckpointError`
    naming what is damaged."""
    meta = checkpoint_info(path_dir)
    files = meta["files"]
    if not isinstance(files, dict) or not files:
        raise CheckpointError(f"{meta['path'] / META_FILE} lists no files: damaged checkpoint")
    for fname in files:
        _verified(meta["path"], meta, fname)
    return meta


def _load_state_file(file: Path, map_location: Any) -> dict[str, Any]:
    try:
        state = torch.load(file, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        raise CheckpointError(f"refusing to load {file}: it holds something other than tensors and plain Python "
                              f"values (a pickled class or function), which is never unpickled; "
                              f"detail: {str(e).splitlines()[0]}") from e
    if not isinstance(state, dict) or not {"optimizers", "extra_state"} <= set(state):
        raise CheckpointError(f"{file} is not a training state written by save_checkpoint")
    return state


def _optimizer_problems(name: str, opt: torch.optim.Optimizer, saved: dict[str, Any]) -> list[str]:
    groups = saved.get("param_groups", [])
    if len(groups) != len(opt.param_groups):
        return [f"optimizer {name!r}: checkpoint has {len(groups)} parameter groups, given {len(opt.param_groups)}"]
    out = []
    for i, (g_saved, g_now) in enumerate(zip(groups, opt.param_groups)):
        if len(g_saved["params"]) != len(g_now["params"]):
            out.append(f"optimizer {name!r} group {i}: checkpoint has {len(g_saved['params'])} parameters, "
                       f"given {len(g_now['params'])}")
    return out


def load_checkpoint(path_dir: str | os.PathLike, models: Mapping[str, nn.Module],
                    optimizers: Mapping[str, torch.optim.Optimizer] | None = None, *, model_name: str,
                    config: Mapping[str, Any] | Any | None = None, strict: bool = True, map_location: Any = "cpu",
                    scaler: Any = None) -> dict[str, Any]:
    """Load a checkpoint into ``models`` (and ``optimizers``, ``scaler``) in place; return its info.

    ``path_dir`` is a checkpoint folder, or a run folder (its newest checkpoint is used). Everything is
    checked before anything is copied, so on error the models are unchanged:

    * ``model_name`` must equal the saved one; ``config`` (when given) must equal the saved config,
      and the error lists every differing key with both values;
    * every name in ``models`` / ``optimizers`` must be in the checkpoint (it may hold more);
    * tensor names and shapes must match (``strict=False`` tolerates missing / extra names, never a
      shape difference); the error lists each parameter with both shapes;
    * each file read must match its recorded sha256; ``training_state.pt`` is read with
      ``weights_only=True`` and refused if it holds code.

    Returns ``{"path", "step", "model_name", "config", "extra_state", "code_version", "torch_version",
    "created", "models"}``; ``extra_state`` is what :func:`save_checkpoint` was given (RNG states,
    counters). ``map_location`` applies to the tensors of ``training_state.pt``; weights are read on
    the CPU and copied to wherever each model's parameters are.
    """
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    meta = checkpoint_info(path_dir)
    path: Path = meta["path"]
    if meta["model_name"] != model_name:
        raise CheckpointError(f"{path} holds model {meta['model_name']!r}, but model_name={model_name!r} was asked "
                              f"for: load it into a {meta['model_name']!r} model, or use a checkpoint of "
                              f"{model_name!r}")
    if config is not None:
        diff = _config_diff(meta["config"], jsonable(config))
        if diff:
            raise CheckpointError(f"{path} was trained with another config; differing keys:\n  " + "\n  ".join(diff)
                                  + "\nbuild the model with the checkpoint's config (info['config']) or retrain")
    _check_names("models", models, nn.Module)
    optimizers = {} if optimizers is None else optimizers
    _check_names("optimizers", optimizers, torch.optim.Optimizer)
    missing_models = [n for n in models if n not in meta["models"]]
    if missing_models:
        raise CheckpointError(f"{path} has no model(s) {missing_models}; it holds {meta['models']}")

    # read and check everything first
    problems: list[str] = []
    loaded: dict[str, dict[str, torch.Tensor]] = {}
    for name, model in models.items():
        file = _verified(path, meta, f"{name}.safetensors")
        try:
            tensors = load_file(str(file), device="cpu")
        except (SafetensorError, OSError, ValueError) as e:
            raise CheckpointError(f"{file} is not a readable safetensors file: {e}") from e
        current = model.state_dict()
        for key in sorted(set(tensors) & set(current)):
            if tuple(tensors[key].shape) != tuple(current[key].shape):
                problems.append(f"{name}.{key}: checkpoint {tuple(tensors[key].shape)}, "
                                f"model {tuple(current[key].shape)}")
        if strict:
            for key in sorted(set(current) - set(tensors)):
                problems.append(f"{name}.{key}: missing from the checkpoint (model has {tuple(current[key].shape)})")
            for key in sorted(set(tensors) - set(current)):
                problems.append(f"{name}.{key}: in the checkpoint {tuple(tensors[key].shape)}, not in the model")
        loaded[name] = tensors

    state = _load_state_file(_verified(path, meta, STATE_FILE), map_location)
    for name, opt in optimizers.items():
        if name not in state["optimizers"]:
            problems.append(f"optimizer {name!r}: not in the checkpoint (it holds {sorted(state['optimizers'])})")
        else:
            problems.extend(_optimizer_problems(name, opt, state["optimizers"][name]))
    if problems:
        raise CheckpointError(f"{path} does not fit the given model(s) ({len(problems)} problem(s)):\n  "
                              + "\n  ".join(problems[:50]) + ("\n  ..." if len(problems) > 50 else ""))

    # then copy
    for name, model in models.items():
        model.load_state_dict(loaded[name], strict=strict)
    for name, opt in optimizers.items():
        opt.load_state_dict(state["optimizers"][name])
    saved_scalers = state.get("scaler") or {}
    if scaler is not None and saved_scalers:
        targets = scaler if isinstance(scaler, Mapping) else {"": scaler}
        for key, sc in targets.items():
            if sc is not None and key in saved_scalers and saved_scalers[key]:
                sc.load_state_dict(saved_scalers[key])

    return {
        "path": path,
        "step": meta["step"],
        "model_name": meta["model_name"],
        "config": meta["config"],
        "extra_state": state["extra_state"],
        "code_version": meta.get("code_version", "unknown"),
        "torch_version": meta.get("torch_version", "unknown"),
        "created": meta.get("created"),
        "models": meta["models"],
    }
