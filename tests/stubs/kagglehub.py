"""A stand-in for ``kagglehub`` that never touches the network (tests only: put ``tests/stubs`` on ``sys.path``
or ``PYTHONPATH``). ``dataset_download(handle)`` behaves as the real one does for a public dataset, without
credentials: it extracts the dataset into ``$KAGGLEHUB_CACHE/datasets/<owner>/<name>/versions/1`` (skipping a
tree already there, unless ``force_download``) and returns that folder. The dataset it serves is the local
folder or ``.zip`` archive named by ``$STUB_KAGGLEHUB_SOURCE``; every call is appended to the file
``$STUB_KAGGLEHUB_LOG`` when that is set."""
from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

__version__ = "0.0-stub"


def dataset_download(handle: str, path: str | None = None, *, force_download: bool = False) -> str:
    source = Path(os.environ["STUB_KAGGLEHUB_SOURCE"])
    cache = Path(os.environ.get("KAGGLEHUB_CACHE") or Path.home() / ".cache" / "kagglehub")
    if os.environ.get("STUB_KAGGLEHUB_LOG"):
        with open(os.environ["STUB_KAGGLEHUB_LOG"], "a", encoding="utf-8") as log:
            log.write(f"{handle}\t{cache}\n")
    root = cache / "datasets" / Path(*handle.split("/")) / "versions" / "1"
    done = root.with_name("1.complete")                 # kagglehub's own marker, beside the tree
    if force_download or not done.exists():
        shutil.rmtree(root, ignore_errors=True)
        root.mkdir(parents=True)
        if source.is_dir():
            shutil.copytree(source, root, dirs_exist_ok=True)
        else:
            with zipfile.ZipFile(source) as zf:
                zf.extractall(root)
        done.write_text("")
    return str(root)
