"""``python -m inpaint_utils.data {download,list,source}`` (part of :mod:`inpaint_utils.data`)."""
from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Sequence


from .. import config
from ..report import format_table
from .downloads import BACKENDS, DownloadError, download
from .registry import DATASETS, registry_rows
from .sources import COLLECTIONS, find_source


def main(argv: Sequence[str] | None = None) -> int:
    """``download NAME [--dest DIR] [--force] [--keep-archive] [--timeout S] [--backend B]``, ``list``,
    ``source``."""
    parser = argparse.ArgumentParser(prog="python -m inpaint_utils.data",
                                     description="Datasets of the inpainting course (see DATASETS).")
    sub = parser.add_subparsers(dest="cmd", required=True)
    dl = sub.add_parser("download", help="download a dataset from Kaggle into data/<name>/")
    dl.add_argument("name", help=f"one of: {', '.join(DATASETS)}")
    dl.add_argument("--dest", type=Path, default=None, help="target folder (default: $INPAINT_DATA/<name>)")
    dl.add_argument("--force", action="store_true", help="download and extract again even if complete")
    dl.add_argument("--keep-archive", action="store_true", help="keep the .zip after extraction")
    dl.add_argument("--timeout", type=float, default=None, help="seconds (default $INPAINT_DOWNLOAD_TIMEOUT or 3600)")
    dl.add_argument("--backend", choices=BACKENDS, default="auto",
                    help="kagglehub, kaggle (the CLI), or auto: kagglehub when installed (default)")
    sub.add_parser("list", help="list the registered datasets")
    src = sub.add_parser("source", help="say which images a notebook would use")
    src.add_argument("--dataset", default=None)
    src.add_argument("--collection", default=None, choices=list(COLLECTIONS))
    args = parser.parse_args(argv)

    if args.cmd == "list":
        print(format_table(registry_rows()))
        print(f"data root: {config.data_root()}")
        return 0
    if args.cmd == "source":
        try:
            find_source(args.dataset, args.collection)
        except KeyError as e:
            print(f"error: {e.args[0]}", file=sys.stderr)
            return 1
        return 0
    try:
        with warnings.catch_warnings(record=True) as caught:     # shown below as one line each, no source line
            warnings.simplefilter("always")
            try:
                download(args.name, args.dest, force=args.force, keep_archive=args.keep_archive,
                         timeout=args.timeout, backend=args.backend, log=lambda s: print(s, flush=True))
            finally:
                for w in caught:
                    print(f"warning: {' '.join(str(w.message).split())}", file=sys.stderr, flush=True)
    except KeyError as e:
        print(f"error: {e.args[0]}", file=sys.stderr)
        return 1
    except DownloadError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    return 0

