"""The ``inpaint`` parser and its entry point (part of :mod:`inpaint_utils.cli`): the subcommands
gathered, usage errors and failures turned into exit statuses."""
from __future__ import annotations

import argparse
import os
import sys
from typing import Sequence

from .benchmark import add_benchmark_parser
from .evaluate import add_evaluate_parser
from .fill import add_fill_parser
from .shared import _UsageError, one_line_warnings
from .train import add_train_parser


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = argparse.ArgumentParser(prog="inpaint", description="The inpainting course's command line.")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__} (inpaint-course)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    add_train_parser(sub)
    add_fill_parser(sub)
    add_evaluate_parser(sub)
    add_benchmark_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the ``inpaint`` command with ``argv`` (default ``sys.argv[1:]``); return the exit status:
    0 done, 1 failed (a one-line reason on stderr), 2 bad usage, 130 interrupted."""
    argv = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as e:  # --help (0) and argparse's usage errors (2)
        return int(e.code or 0)
    where = f"[rank {os.environ['RANK']}] " if int(os.environ.get("WORLD_SIZE", "1")) > 1 else ""
    try:
        with one_line_warnings(args.command):
            return args.func(args, argv)
    except _UsageError as e:
        print(f"{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"{where}{parser.prog} {args.command}: interrupted", file=sys.stderr)
        return 130
    except (ValueError, OSError, ArithmeticError) as e:  # bad data, checkpoints of another model, NaN losses
        from ..data.reading import ImageReadError

        print(f"{where}{parser.prog} {args.command}: error: {e}", file=sys.stderr)
        return 2 if isinstance(e, ImageReadError) else 1   # an input that cannot be read is bad input
