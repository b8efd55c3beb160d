"""What a result says about where it comes from (part of :mod:`inpaint_utils.cli`): the provenance
beside scored rows, the record of the command that trained a run and reading it back."""
from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Any, Sequence


#: the file of a run folder that says which ``inpaint train`` command trains it (read by ``inpaint evaluate``)
TRAIN_COMMAND_FILE = "train_command.json"


def write_train_record(run_dir: str | os.PathLike, command: str, stages: Sequence[str | os.PathLike] = (),
                       **fields: Any) -> Path:
    """Write ``run_dir/train_command.json`` (:data:`TRAIN_COMMAND_FILE`): the ``command`` that trains the run
    and ``fields`` (method, profile, split, data, settings ...), through :func:`inpaint_utils.report.portable`
    (no absolute paths). ``stages``: the run folders of a model trained in several runs (the cascade: its 64 CE,
    then its 128 stage, in notebook 03): each one's newest checkpoint's step and training time
    (:func:`inpaint_utils.checkpoint.training_summary`) go under ``"stages"`` and their sum is the record's
    ``train_time_s`` (and their images over it, ``images_per_s``), which ``inpaint evaluate`` then reports as the
    model's. Returns the file."""
    from ..checkpoint import latest_checkpoint, training_summary
    from ..report import portable, to_strict_json, write_json

    run_dir = Path(run_dir)
    record: dict[str, Any] = {"command": command, **fields}
    if stages:
        record["stages"] = {}
        for stage in map(Path, stages):
            found = latest_checkpoint(stage)
            if found is None:
                raise FileNotFoundError(f"stage run {stage} has no checkpoint: train it first")
            summary = training_summary(found)
            record["stages"][stage.name] = {k: summary[k] for k in ("step", "train_time_s", "images_per_s")}
        seconds = sum(v["train_time_s"] for v in record["stages"].values())
        images = sum(v["train_time_s"] * (v["images_per_s"] or 0) for v in record["stages"].values())
        record.update(train_time_s=seconds, images_per_s=images / seconds if seconds > 0 else None)
    run_dir.mkdir(parents=True, exist_ok=True)
    return write_json(run_dir / TRAIN_COMMAND_FILE, portable(to_strict_json(record)))


def _training_record(inpainter: Any) -> dict[str, Any] | None:
    """How a learned method's checkpoint was trained: :func:`inpaint_utils.checkpoint.training_summary` plus
    the run folder's ``train_command.json`` (``command``, ``profile``, ``settings``) when it has one;
    ``None`` for the other methods."""
    from ..checkpoint import CheckpointError, training_summary
    from ..report import read_json

    folder = inpainter.info.get("checkpoint")
    if not folder:
        return None
    try:
        out: dict[str, Any] = training_summary(folder)
    except CheckpointError as e:
        out = {"step": inpainter.info.get("step"), "note": str(e)}
    recorded = Path(folder).parent.parent / TRAIN_COMMAND_FILE        # runs/<run>/checkpoints/step_N
    if recorded.is_file():
        out.update(read_json(recorded))
    return out


def _provenance(argv: Sequence[str], **meta: Any) -> dict[str, Any]:
    """What :func:`inpaint_utils.report.save_results` records beside the rows: hardware, library versions,
    code version, time and the command (``inpaint`` + ``argv``), plus ``meta``; no absolute path
    (:func:`inpaint_utils.report.portable`)."""
    from datetime import datetime, timezone

    from ..report import code_version, hardware, portable, versions

    return portable({"hardware": hardware(), "versions": versions(), "code_version": code_version(),
                     "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                     "command": shlex.join(["inpaint", *argv]), **meta})
