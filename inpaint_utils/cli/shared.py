"""The option checks every subcommand of ``inpaint`` shares (part of :mod:`inpaint_utils.cli`): usage
errors (exit status 2), devices, positive numbers, outputs, --data folders, loading a method."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence


class _UsageError(Exception):
    """Bad command-line input: reported in one line, exit status 2."""


#: ``--device`` choices of every subcommand
DEVICES = ("auto", "cpu", "cuda")
_DIFFUSION = ("sd2", "repaint")


def _check_device(device: str) -> None:
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise _UsageError("--device cuda but CUDA is not available here; use --device auto or cpu")


def _check_positive(args: argparse.Namespace, *names: str) -> None:
    for name in names:
        value = getattr(args, name)
        if value is not None and value < 1:
            raise _UsageError(f"--{name.replace('_', '-')} must be a positive integer, got {value}")


def _check_output(path: Path, option: str, inputs: dict[str, Path] | None = None) -> None:
    """A file can be written at ``path`` (its folder exists, takes a new file, and ``path`` is not a
    folder: :func:`inpaint_utils.fileio.check_writable`) and it is none of ``inputs`` (what it is -> path:
    the same file after symbolic and hard links), so a result never replaces what it was made from."""
    from ..fileio import check_writable, same_file

    for label, source in (inputs or {}).items():
        if same_file(path, source):
            raise _UsageError(f"{option} {path}: is the input {label}; write the result to another file")
    try:
        check_writable(path)
    except OSError as e:
        raise _UsageError(f"{option} {e.strerror or e}") from None


def warning_line(command: str, message: Warning | str, category: type[Warning] = UserWarning) -> str:
    """How ``inpaint COMMAND`` shows a warning: one line, ``inpaint COMMAND: warning: MESSAGE`` (the category
    named when it is not a plain ``UserWarning``), never the source line Python's default shows."""
    kind = "" if category is UserWarning else f" ({category.__name__})"
    return f"inpaint {command}: warning{kind}: {' '.join(str(message).split())}"


def _warnings_to_stderr(command: str, caught: Sequence[warnings.WarningMessage]) -> None:
    """Print the warnings recorded by ``warnings.catch_warnings(record=True)``, one line each."""
    for w in caught:
        print(warning_line(command, w.message, w.category), file=sys.stderr, flush=True)


class one_line_warnings:
    """While a subcommand runs: every warning it does not catch itself goes to stderr as :func:`warning_line`,
    each message once (a warning raised at several places, like an old checkpoint format read three times,
    is shown once). Restores Python's warning display on exit."""

    def __init__(self, command: str):
        self.command, self.seen = command, set()
        self._catch = warnings.catch_warnings()

    def _show(self, message: Any, category: type[Warning], filename: str, lineno: int, file: Any = None,
              line: Any = None) -> None:
        text = warning_line(self.command, message, category)
        if text not in self.seen:
            self.seen.add(text)
            print(text, file=sys.stderr, flush=True)

    def __enter__(self) -> "one_line_warnings":
        self._catch.__enter__()
        warnings.showwarning = self._show
        return self

    def __exit__(self, *exc: Any) -> None:
        self._catch.__exit__(*exc)


def _load_method(method: str, checkpoint: str | None, device: str, seed: int, **options: Any) -> Any:
    """:func:`inpaint_utils.inference.load_inpainter` with its refusals (no checkpoint, a checkpoint of
    another model, a damaged one, a diffusion model that is not available) as usage errors (exit 2).
    ``options``: more keyword arguments of the method's loader (``nn``'s ``split``)."""
    from ..checkpoint import CheckpointError
    from ..diffusion import ModelUnavailableError
    from ..inference import load_inpainter

    kwargs = {"seed": seed} if method in _DIFFUSION or method in ("patchmatch", "nn") else {}
    kwargs.update(options)
    try:
        return load_inpainter(method, checkpoint, device=device, **kwargs)
    except (CheckpointError, OSError, ValueError, ModelUnavailableError) as e:  # OSError: unreadable files
        given = f"--method {method}" + (f" --checkpoint {checkpoint}" if checkpoint else "")
        raise _UsageError(f"{given}: {e}") from e


def _patch_option(args: argparse.Namespace) -> dict[str, Any]:
    """``--patch-size`` as patchmatch's keyword argument (empty when not given); a usage error for another
    method or a size patchmatch cannot take."""
    if args.patch_size is None:
        return {}
    if args.method != "patchmatch":
        raise _UsageError(f"--patch-size is patchmatch's option; --method {args.method} takes none")
    if args.patch_size < 3 or args.patch_size % 2 == 0:
        raise _UsageError(f"--patch-size must be an odd integer of at least 3, got {args.patch_size}")
    return {"patch_size": args.patch_size}


def _check_data(folder: Path) -> None:
    from ..data import IMAGE_SUFFIXES, list_images

    if not folder.exists():
        raise _UsageError(f"--data {folder}: no such folder")
    if not folder.is_dir():
        raise _UsageError(f"--data {folder}: not a folder (give the folder that holds the images)")
    if not list_images(folder):
        raise _UsageError(f"--data {folder}: no images ({', '.join(IMAGE_SUFFIXES)}) in this folder or below it")


#: ``--preprocess`` choices of ``train`` and ``evaluate``: ``auto`` is the folder's dataset recipe
PREPROCESS_CHOICES = ("auto", "ce", "256")
PREPROCESS_HELP = ("how the images are resized: auto (default): the recipe of the registered dataset the folder is "
                   "(data/<name> or a folder of that name: 'ce', resize to 256 then centre crop 128, for celeba-hq, "
                   "cityscapes and places365, with Cityscapes' left-half crop; '256' for the others), as the notebooks "
                   "do; ce: resize the short side to twice the size, centre crop (Nanavati & Patel, Pathak et al.); "
                   "256: resize the short side to the size, centre crop")


def _data_recipe(folder: Path, choice: str, default: str = "256") -> Any:
    """The :class:`inpaint_utils.data.FolderRecipe` of ``--data folder`` under ``--preprocess choice``: ``auto``
    is :func:`inpaint_utils.data.folder_recipe` (``default``, the method's, for a folder of no registered dataset);
    ``ce`` / ``256`` force the mode and keep the dataset's crop."""
    from ..data import FolderRecipe, folder_recipe

    found = folder_recipe(folder)
    if choice == "auto":
        return found if found.dataset is not None else FolderRecipe(default, None, None)
    if choice not in PREPROCESS_CHOICES:
        raise _UsageError(f"--preprocess must be one of {', '.join(PREPROCESS_CHOICES)}, got {choice!r}")
    return FolderRecipe(choice, found.crop, found.dataset)
