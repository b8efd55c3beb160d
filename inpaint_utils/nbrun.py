"""Execute the course notebooks with papermill, and keep the committed copies clean.

Used by ``make course`` (every notebook, smoke profile, into ``runs/``), by the tests (each notebook in a
temporary folder, with a time limit), and by authors before committing a notebook (``strip``: outputs
removed, except the cells marked ``# NBVAL_CHECK_OUTPUT`` whose small deterministic output nbval compares).

Command line::

    python -m inpaint_utils.nbrun run --profile smoke --out runs/smoke notebooks/*.ipynb
    python -m inpaint_utils.nbrun run --profile gpu --out runs/gpu notebooks/02_context_encoder.ipynb
    python -m inpaint_utils.nbrun run notebooks/01_masking.ipynb -p SEED=3 -p MASK_KIND=circle
    python -m inpaint_utils.nbrun strip notebooks/01_masking.ipynb --from runs/smoke/01_masking.ipynb
    python -m inpaint_utils.nbrun check notebooks/*.ipynb
"""
from __future__ import annotations

import argparse
import ast
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Iterable

from .fileio import atomic_open, same_file

CHECK_MARK = "NBVAL_CHECK_OUTPUT"
#: the profiles of inpaint_utils.config.PROFILES (smoke: CPU minutes; cpu: each model in 20 min on a 2-core CPU;
#: gpu: all notebooks in an hour on one GPU; full: the papers)
PROFILES = ("smoke", "cpu", "gpu", "full")
#: the keys of a notebook's ``colab`` metadata that may be committed: the runtime Colab opens it on (written by
#: ``python -m inpaint_utils.colab sync``); anything else there (provenance, names, photos) is personal: stripped.
COLAB_METADATA = ("gpuType",)

__all__ = ["run_notebook", "kill_run", "strip_notebook", "notebook_problems", "is_checked_cell", "NotebookTimeout",
           "NotebookFailed", "CHECK_MARK", "RUN_ENV", "COLAB_METADATA", "strip_run_metadata"]


class NotebookTimeout(RuntimeError):
    """The notebook did not finish within its time limit."""


class NotebookFailed(RuntimeError):
    """A cell of the notebook raised; the message carries papermill's report."""


def _source(cell: dict) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


#: nbval's markers that decide whether a cell's output is compared (``nbval.plugin.comment_markers``): as a
#: comment line, or (lower case, ``-`` for ``_``) as a cell tag; ``None`` marks a cell nbval skips.
_NBVAL_MARKERS: dict[str, bool | None] = {CHECK_MARK: True, "NBVAL_IGNORE_OUTPUT": False,
                                          "PYTEST_VALIDATE_IGNORE_OUTPUT": False, "NBVAL_SKIP": None}


def is_checked_cell(cell: dict) -> bool:
    """Whether nbval compares this cell's output under ``--nbval-lax``, by nbval's own rule
    (``nbval.plugin.find_comment_markers`` / ``find_metadata_tags``): a code cell with a source line
    that, stripped, starts with ``#`` and reads ``NBVAL_CHECK_OUTPUT`` once the ``#`` and spaces are
    removed (``# NBVAL_CHECK_OUTPUT``; not the text inside a string or after code), or the tag
    ``nbval-check-output``; a later ``NBVAL_IGNORE_OUTPUT`` wins, comments win over tags, and a cell
    marked ``NBVAL_SKIP`` is not run at all."""
    if cell.get("cell_type") != "code":
        return False
    tags = cell.get("metadata", {}).get("tags")
    by_tag = {k.lower().replace("_", "-"): v for k, v in _NBVAL_MARKERS.items()}
    check, skip = False, False
    for tag in tags if isinstance(tags, list) else []:
        if tag in by_tag:
            if by_tag[tag] is None:
                skip = True
            else:
                check = by_tag[tag]
    from_comments = [_NBVAL_MARKERS[c] for c in (line.strip().lstrip("#").strip()
                                                 for line in _source(cell).splitlines() if line.strip().startswith("#"))
                     if c in _NBVAL_MARKERS]
    skip = skip or None in from_comments
    checks = [m for m in from_comments if m is not None]
    if checks:
        check = checks[-1]
    return check and not skip




#: set in the environment of papermill, its kernel and whatever they start: finds them when the run is over
RUN_ENV = "INPAINT_NOTEBOOK_RUN"


def _children() -> dict[int, list[int]]:
    """``{parent pid: [child pids]}`` of every process in ``/proc`` (empty where there is no ``/proc``)."""
    tree: dict[int, list[int]] = {}
    for entry in Path("/proc").glob("[0-9]*") if Path("/proc").is_dir() else []:
        try:
            stat = (entry / "stat").read_text()
            ppid = int(stat[stat.rindex(")") + 2:].split()[1])
        except (OSError, ValueError, IndexError):
            continue
        tree.setdefault(ppid, []).append(int(entry.name))
    return tree


def _carries(pid: int, marker: str) -> bool:
    try:
        return f"{RUN_ENV}={marker}".encode() in (Path("/proc") / str(pid) / "environ").read_bytes().split(b"\0")
    except OSError:
        return False


def kill_run(root: int | None, marker: str | None = None) -> list[int]:
    """SIGKILL process ``root``, its process group, every descendant (a child of its own session included) and, with
    ``marker`` (``RUN_ENV=<value>``), every process whose environment carries it (the orphans a descendant left behind
    when it exited: they are no longer in the tree). Linux reads ``/proc``; elsewhere only the process group is
    killed. Returns the pids it signalled."""
    killed: set[int] = set()
    for _ in range(5):  # a process that forks while we walk: walk again until no new one is found
        tree = _children()
        found: set[int] = set()
        stack = [root] if root is not None else []
        while stack:
            pid = stack.pop()
            if pid not in found:
                found.add(pid)
                stack += tree.get(pid, [])
        if marker is not None:
            found |= {pid for pids in tree.values() for pid in pids if _carries(pid, marker)}
        found -= killed | {os.getpid()}
        if root is not None and root not in killed:
            try:
                os.killpg(root, signal.SIGKILL)
            except OSError:
                pass
        if not found:
            break
        for pid in found:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        killed |= found
        time.sleep(0.05)
    return sorted(killed)


def run_notebook(notebook: str | Path, out_dir: str | Path, profile: str = "smoke",
                 parameters: dict[str, Any] | None = None, timeout: float = 600,
                 kernel: str = "python3", env: dict[str, str] | None = None, kill_leftovers: bool = False) -> Path:
    """Execute ``notebook`` with papermill into ``out_dir`` (same file name) and return that path.

    The notebook runs in its own folder (so relative paths behave as in JupyterLab) with ``PROFILE``
    and ``parameters`` injected. papermill runs in a child process of its own session so that a
    notebook over ``timeout`` seconds is killed with its kernel and everything they started
    (:func:`kill_run`: the process group, the descendants, a child in a session of its own, an orphan still carrying
    the run's ``INPAINT_NOTEBOOK_RUN`` marker; :class:`NotebookTimeout`); with ``kill_leftovers`` the processes left
    behind by a notebook that finished are killed too (the grader's setting). A failing cell raises
    :class:`NotebookFailed` with the end of papermill's log.
    """
    notebook = Path(notebook).resolve()
    if not notebook.is_file():
        raise FileNotFoundError(f"notebook not found: {notebook}")
    if profile not in PROFILES:
        raise ValueError(f"profile must be one of {PROFILES}, got {profile!r}")
    out_dir = Path(out_dir).resolve()
    output = out_dir / notebook.name
    if same_file(output, notebook):
        raise ValueError(f"out_dir {out_dir} holds the notebook itself: its executed copy would replace "
                         f"{notebook}; give another folder")
    out_dir.mkdir(parents=True, exist_ok=True)
    params = {"PROFILE": profile, **(parameters or {})}
    cmd = [sys.executable, "-m", "papermill", str(notebook), str(output), "-k", kernel,
           "--cwd", str(notebook.parent), "--no-progress-bar", "--log-output"]
    for key, value in params.items():
        cmd += ["-y", json.dumps({key: value})]
    # what produced the results the notebook saves (report.save_results reads it in the kernel)
    described = " ".join(["python -m inpaint_utils.nbrun run", f"--profile {profile}",
                          *(f"-p {k}={json.dumps(v)}" for k, v in (parameters or {}).items()),
                          os.path.relpath(notebook) if notebook.is_relative_to(Path.cwd()) else str(notebook)])
    marker = f"{os.getpid()}-{time.monotonic_ns()}"
    # the log goes to a file, not a pipe: a process the notebook leaves behind keeps a pipe open, not the run going
    with tempfile.TemporaryFile() as log_file:
        proc = subprocess.Popen(cmd, stdout=log_file, stderr=subprocess.STDOUT,
                                env={**os.environ, "INPAINT_COMMAND": described, **(env or {}), RUN_ENV: marker},
                                start_new_session=True)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            kill_run(proc.pid, marker)  # papermill, the kernel it started and whatever the notebook started
            proc.wait()
            raise NotebookTimeout(f"{notebook.name} did not finish within {timeout:.0f} s (profile {profile})") from None
        finally:
            if kill_leftovers:
                kill_run(None, marker)
        log_file.seek(0)
        log = log_file.read().decode("utf-8", errors="replace")
    if proc.returncode != 0:
        raise NotebookFailed(f"{notebook.name} failed (profile {profile}, exit {proc.returncode}); "
                             f"executed copy: {output}\n{log[-6000:]}")
    return output


def strip_notebook(notebook: str | Path, executed: str | Path | None = None) -> int:
    """Remove outputs, execution counts and run metadata from ``notebook`` in place.

    Cells marked ``# NBVAL_CHECK_OUTPUT`` keep their outputs; with ``executed`` (a papermill copy of
    the same notebook) they take the outputs of the matching cell there (matched by cell id, then by
    source). Returns the number of checked cells whose output was kept. Written atomically.
    """
    notebook = Path(notebook)
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    donor: dict[str, dict] = {}
    if executed is not None:
        ex = json.loads(Path(executed).read_text(encoding="utf-8"))
        for cell in ex.get("cells", []):
            if is_checked_cell(cell):
                donor[cell.get("id", "")] = cell
                donor["src:" + _source(cell)] = cell
    kept = 0
    for cell in nb.get("cells", []):
        meta = cell.get("metadata", {})
        for key in ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled"):
            meta.pop(key, None)
        if cell.get("cell_type") != "code":
            continue
        cell["execution_count"] = None
        if is_checked_cell(cell):
            src = donor.get(cell.get("id", "")) or donor.get("src:" + _source(cell))
            outputs = src["outputs"] if src is not None else cell.get("outputs", [])
            cell["outputs"] = [_clean_output(o) for o in outputs]
            if cell["outputs"]:
                kept += 1
                # nbval treats a reference cell with outputs but no count as unrun: number them 1, 2, ...
                cell["execution_count"] = kept
        else:
            cell["outputs"] = []
    strip_run_metadata(nb.setdefault("metadata", {}))
    text = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    with atomic_open(notebook, "w", encoding="utf-8") as f:
        f.write(text)
    return kept


def strip_run_metadata(meta: dict) -> dict:
    """Remove from a notebook's ``metadata`` (in place; also returned) what a run or an editor leaves there
    (papermill, widget state, toc) and every ``colab`` key but :data:`COLAB_METADATA`: Colab's runtime choice
    (``inpaint_utils.colab.GPU_NOTEBOOKS``) stays, its provenance and names go."""
    for key in ("papermill", "widgets", "toc"):
        meta.pop(key, None)
    kept = {k: v for k, v in (meta.pop("colab", None) or {}).items() if k in COLAB_METADATA}
    if kept:
        meta["colab"] = kept
    return meta


def _clean_output(output: dict) -> dict:
    output = dict(output)
    if "execution_count" in output:
        output["execution_count"] = None
    return output


def notebook_problems(notebook: str | Path) -> list[str]:
    """What keeps ``notebook`` from being committed: outputs outside checked cells, a missing or
    wrong ``parameters`` cell, personal metadata. Empty list = clean."""
    notebook = Path(notebook)
    nb = json.loads(notebook.read_text(encoding="utf-8"))
    problems = []
    code = [c for c in nb.get("cells", []) if c.get("cell_type") == "code"]
    if not code:
        return [f"{notebook.name}: no code cells"]
    first = code[0]
    if "parameters" not in first.get("metadata", {}).get("tags", []):
        problems.append(f"{notebook.name}: the first code cell is not tagged 'parameters'")
    try:
        assigned = {
            t.id: n.value for n in ast.parse(_source(first)).body if isinstance(n, ast.Assign)
            for t in n.targets if isinstance(t, ast.Name)
        }
        profile = assigned.get("PROFILE")
        if not (isinstance(profile, ast.Constant) and profile.value == "smoke"):
            problems.append(f"{notebook.name}: the parameters cell must set PROFILE = \"smoke\"")
    except SyntaxError as e:
        problems.append(f"{notebook.name}: parameters cell does not parse: {e}")
    for i, cell in enumerate(code):
        if cell.get("outputs") and not is_checked_cell(cell):
            problems.append(f"{notebook.name}: code cell {i} carries outputs (strip them: "
                            f"python -m inpaint_utils.nbrun strip {notebook})")
        if cell.get("execution_count") is not None and not (is_checked_cell(cell) and cell.get("outputs")):
            problems.append(f"{notebook.name}: code cell {i} has an execution count")
    for key in ("widgets", "papermill"):
        if key in nb.get("metadata", {}):
            problems.append(f"{notebook.name}: notebook metadata carries '{key}'")
    extra = sorted(set(nb.get("metadata", {}).get("colab") or {}) - set(COLAB_METADATA))
    if extra:
        problems.append(f"{notebook.name}: notebook metadata 'colab' carries {', '.join(map(repr, extra))} (only "
                        f"{', '.join(map(repr, COLAB_METADATA))} may stay: strip it)")
    return problems


def _parse_params(items: Iterable[str]) -> dict[str, Any]:
    params = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key.isidentifier():
            raise SystemExit(f"-p expects NAME=VALUE, got {item!r}")
        try:
            params[key] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            params[key] = value  # a bare string such as circle
    return params


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inpaint_utils.nbrun", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="cmd", required=True)
    run = sub.add_parser("run", help="execute notebooks with papermill")
    run.add_argument("notebooks", nargs="+", type=Path)
    run.add_argument("--profile", default="smoke", choices=PROFILES)
    run.add_argument("--out", type=Path, default=None, help="output folder (default runs/<profile>)")
    run.add_argument("-p", "--param", action="append", default=[], help="NAME=VALUE, repeatable")
    run.add_argument("--timeout", type=float, default=1800, help="seconds per notebook")
    strip = sub.add_parser("strip", help="strip outputs before committing")
    strip.add_argument("notebook", type=Path)
    strip.add_argument("--from", dest="executed", type=Path, default=None,
                       help="an executed copy whose NBVAL_CHECK_OUTPUT outputs are kept")
    check = sub.add_parser("check", help="report notebooks that carry outputs")
    check.add_argument("notebooks", nargs="+", type=Path)
    args = parser.parse_args(argv)

    if args.cmd == "run":
        out = args.out or Path("runs") / args.profile
        params = _parse_params(args.param)
        failed = []
        for nb in sorted(args.notebooks):
            start = time.perf_counter()
            print(f"[nbrun] {nb} (profile {args.profile}) ...", flush=True)
            try:
                path = run_notebook(nb, out, args.profile, params, timeout=args.timeout)
            except (NotebookFailed, NotebookTimeout) as e:
                failed.append(nb.name)
                print(f"[nbrun] FAILED {e}", flush=True)
                continue
            print(f"[nbrun] done in {time.perf_counter() - start:.1f} s -> {path}", flush=True)
        if failed:
            print(f"[nbrun] {len(failed)} notebook(s) failed: {', '.join(failed)}")
            return 1
        return 0
    if args.cmd == "strip":
        kept = strip_notebook(args.notebook, args.executed)
        print(f"stripped {args.notebook} (kept the output of {kept} {CHECK_MARK} cell(s))")
        return 0
    problems = [p for nb in args.notebooks for p in notebook_problems(nb)]
    print("\n".join(problems) if problems else "all notebooks clean")
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())
