"""Exercise versions of the course notebooks, and grading a class's submissions through papermill.

Command line::

    python -m inpaint_utils.exercises make [--out exercises] notebooks/*.ipynb
    python -m inpaint_utils.exercises grade SUBMISSIONS_DIR [--out runs/grading] [--reference exercises]

``make exercises`` runs the first for every notebook. The course notebooks hold the solutions; cells
carry tags that say what the exercise version does with them:

``solution`` on a code cell -- the cell becomes a stub:

* every top-level function (``def``, with its decorators) keeps its signature, its docstring and the
  comment lines right after the signature (write the task and hints there); the rest of its body becomes
  ``raise NotImplementedError("TODO: <hint>")``;
* other top-level statements are removed, except imports (kept) and assignments to names, which become
  ``name = None  # TODO`` so that later cells still find the name (and a check says it is missing);
* the cell's leading comment lines are kept, followed by ``# TODO: <hint>`` when the cell defines no
  function.

  ``<hint>`` is the cell's ``hint`` metadata (a string) when present, else "implement <name>" (the
  docstring and the kept comments are the task).

``solution`` on a markdown cell -- replaced by "*Your answer here.*" (a written answer to grade by hand).

``grading`` on a code cell -- kept unchanged: it calls :mod:`inpaint_utils.checks` (``strict=True``) on
the student's functions, prints ``CHECK <name> PASS|FAIL <score>`` and stops the notebook on a wrong
solution. Write one after each exercise.

Every output is cleared; the notebook's metadata records the checks of its grading cells
(``inpaint_exercise.checks``). A notebook without a ``solution`` cell gets no exercise version.

``grade`` runs every submitted notebook with papermill (:func:`inpaint_utils.nbrun.run_notebook`, smoke
profile, a time limit each) with ``INPAINT_CHECKS_STRICT=0`` so that every grading cell runs even after a
wrong answer, and writes ``grades.csv`` (one row per student, notebook and check) and ``grades.md`` (one row
per student and notebook). Submissions are laid out as ``SUBMISSIONS_DIR/<student>/<notebook>.ipynb``
(a notebook directly in ``SUBMISSIONS_DIR`` is graded as the student named by its file stem). With
``--reference`` (the folder ``make`` wrote), grading cells whose code differs from the handed-out one
are flagged.

Where the grade comes from. The ``CHECK`` lines a grading cell prints are the student's feedback, not the grade:
code in the student's notebook can replace ``inpaint_utils.checks.check_masked_l2`` by a function that prints
PASS, or patch what a check calls. So the grader puts a cell after each handed-out grading cell (the handed-out
cell's calls when ``--reference`` is given, else the submitted cell's; the calls of a handed-out cell that is gone
are served at the end) that hands the student's function to the grader (:func:`inpaint_utils.checks.remote.serve`).
The grader's process, which never runs a student's code, runs the library's check on a stand-in whose calls run the
student's function in the kernel; arguments, results, in-place changes, generator states and gradients cross a
socket as data (:mod:`inpaint_utils.checks.remote`). This design keeps the checks' tests as they are (a second
process that only compared outputs would need every check's inputs written out, and could not test gradients or
in-place changes) and gives an honest answer the grade its grading cell prints.

Each submission is read (with the handed-out notebooks) before any student's code runs and executed from a
temporary copy; one that is not shaped like a notebook gets its row with the reason; the reports are written
whatever happens to the others; the processes a run leaves behind are killed (:func:`inpaint_utils.nbrun.kill_run`).
Grading executes the students' code and is not a sandbox: run it in a throw-away account or container (the README's
section for instructors says what it does not protect against).
"""
from __future__ import annotations

import argparse
import ast
import copy
import csv
import io
import json
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Sequence

from .fileio import atomic_open, same_file
from .nbrun import strip_run_metadata

__all__ = ["SOLUTION_TAG", "GRADING_TAG", "make_exercise", "write_exercises", "stub_cell_source", "grade",
           "Grade", "main"]

SOLUTION_TAG = "solution"
GRADING_TAG = "grading"
METADATA_KEY = "inpaint_exercise"
MARKDOWN_ANSWER = "*Your answer here.*"
_CHECK_CALL = re.compile(r"\bcheck_([A-Za-z0-9_]+)\s*\(")


def _nbformat():
    try:
        import nbformat
    except ImportError as err:  # pragma: no cover - nbformat comes with papermill and jupyter
        raise ImportError("exercise notebooks need nbformat: pip install \"inpaint-course[dev]\" "
                          "(or pip install nbformat)") from err
    return nbformat


def _source(cell: Any) -> str:
    src = cell.get("source", "")
    return "".join(src) if isinstance(src, list) else src


def _tags(cell: Any) -> list[str]:
    return list(cell.get("metadata", {}).get("tags", []))


# --------------------------------------------------------------------------------------------------
# Stubs
# --------------------------------------------------------------------------------------------------
def _leading_comments(lines: list[str]) -> list[str]:
    out = []
    for line in lines:
        if line.strip().startswith("#") or (not line.strip() and out):
            out.append(line)
        else:
            break
    while out and not out[-1].strip():
        out.pop()
    return out


def _hint_text(hint: Any, default: str) -> str:
    text = " ".join(str(hint).split()) if hint else default
    return text or default


def _function_stub(node: ast.FunctionDef | ast.AsyncFunctionDef, lines: list[str], hint: str | None) -> list[str]:
    """Decorators, signature, docstring and the comments right after them; then the TODO raise."""
    body = node.body
    docstring = ast.get_docstring(node, clean=True)
    has_doc = docstring is not None and isinstance(body[0], ast.Expr)
    first = body[1] if has_doc and len(body) > 1 else (None if has_doc else body[0])
    start = (node.decorator_list[0].lineno if node.decorator_list else node.lineno) - 1
    indent = " " * (body[0].col_offset if body[0].lineno > node.lineno else node.col_offset + 4)
    message = _hint_text(hint, f"implement {node.name}" + (" (its docstring says what it returns)" if docstring else ""))
    raise_line = f"{indent}raise NotImplementedError({json.dumps('TODO: ' + message)})"
    if body[0].lineno == node.lineno:  # one-line body ("def f(x): return x"): rebuild the signature
        stub = copy.deepcopy(node)
        stub.body = [ast.Expr(ast.Constant(docstring))] if has_doc else []
        stub.body.append(ast.parse(raise_line.strip()).body[0])
        return (" " * node.col_offset + ast.unparse(stub)).splitlines()
    keep_end = (body[0].end_lineno if has_doc else body[0].lineno - 1)   # signature (+ docstring), 1-based inclusive
    kept = lines[start:keep_end]
    if first is not None:  # comment lines between the signature / docstring and the first statement
        between = lines[keep_end:first.lineno - 1]
        kept += [line for line in between if line.strip().startswith("#")]
    return kept + [raise_line]


def _assigned_names(node: ast.stmt) -> list[str]:
    targets: list[ast.expr] = []
    if isinstance(node, ast.Assign):
        targets = list(node.targets)
    elif isinstance(node, (ast.AnnAssign, ast.AugAssign)):
        targets = [node.target]
    names: list[str] = []
    for target in targets:
        for sub in ast.walk(target):
            if isinstance(sub, ast.Name) and sub.id not in names:
                names.append(sub.id)
    return names


def stub_cell_source(source: str, hint: str | None = None) -> str:
    """The exercise version of a ``solution`` code cell's source (see the module docstring)."""
    lines = source.splitlines()
    comments = _leading_comments(lines)
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return "\n".join(comments + [f"# TODO: {_hint_text(hint, 'write your code here')}"])
    out: list[str] = list(comments)
    functions = 0
    assigned: list[str] = []
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            if len(out) > len(comments) and out[-1].strip():
                out.append("")  # a blank line between two functions, none under the cell's comments
            out += _function_stub(node, lines, hint)
            functions += 1
        elif isinstance(node, (ast.Import, ast.ImportFrom)):
            out += lines[node.lineno - 1:node.end_lineno]
        else:
            assigned += [n for n in _assigned_names(node) if n not in assigned]
    if not functions:
        out.append(f"# TODO: {_hint_text(hint, 'write your code here')}")
    out += [f"{name} = None  # TODO" for name in assigned]
    return "\n".join(out).rstrip() + "\n" if out else f"# TODO: {_hint_text(hint, 'write your code here')}\n"


def _checks_in(cells: Iterable[Any]) -> list[str]:
    names: list[str] = []
    for cell in cells:
        if cell.get("cell_type") == "code" and GRADING_TAG in _tags(cell):
            names += [n for n in _CHECK_CALL.findall(_source(cell)) if n not in names]
    return names


def make_exercise(nb: Any) -> tuple[Any, dict[str, Any]]:
    """The exercise version of a notebook (an ``nbformat`` node, not changed) and a summary
    ``{"solutions", "markdown_answers", "grading", "checks"}`` (counts and check names)."""
    nbformat = _nbformat()
    out = copy.deepcopy(nb)
    counts = {"solutions": 0, "markdown_answers": 0, "grading": 0}
    for cell in out.cells:
        tags = _tags(cell)
        if cell.cell_type == "code":
            cell.outputs = []
            cell.execution_count = None
            if SOLUTION_TAG in tags:
                cell.source = stub_cell_source(_source(cell), cell.metadata.get("hint"))
                counts["solutions"] += 1
            elif GRADING_TAG in tags:
                counts["grading"] += 1
        elif cell.cell_type == "markdown" and SOLUTION_TAG in tags:
            cell.source = MARKDOWN_ANSWER
            counts["markdown_answers"] += 1
        for key in ("papermill", "execution", "ExecuteTime", "collapsed", "scrolled"):
            cell.metadata.pop(key, None)
    strip_run_metadata(out.metadata)        # a GPU notebook's copy opens on Colab's GPU runtime too
    checks = _checks_in(out.cells)
    out.metadata[METADATA_KEY] = {"checks": checks}
    nbformat.validate(out)
    return out, {**counts, "checks": checks}


def write_exercises(notebooks: Sequence[str | Path], out_dir: str | Path = "exercises",
                    colab: str | None = None) -> list[Path]:
    """Write the exercise version of each notebook that has ``solution`` cells into ``out_dir`` (same
    file name); print one line per notebook; return the written paths. With ``colab`` (``"OWNER/REPO"`` or
    ``"OWNER/REPO@BRANCH"``: the class's repository, where ``out_dir`` is committed at the same relative path,
    or at its own name when it lies outside the working folder),
    also ``out_dir/README.md``: one "Open in Colab" badge per student copy (:func:`colab_links`)."""
    nbformat = _nbformat()
    out_dir = Path(out_dir)
    written = []
    for path in sorted(Path(p) for p in notebooks):
        nb = nbformat.read(str(path), as_version=4)
        exercise, info = make_exercise(nb)
        if not info["solutions"] and not info["markdown_answers"]:
            print(f"[exercises] {path.name}: no cell tagged '{SOLUTION_TAG}', skipped")
            continue
        if not info["grading"]:
            print(f"[exercises] warning: {path.name} has solution cells but no cell tagged '{GRADING_TAG}'")
        exercise.metadata[METADATA_KEY]["source"] = path.name
        out_dir.mkdir(parents=True, exist_ok=True)
        target = out_dir / path.name
        if same_file(target, path):
            raise ValueError(f"out_dir {out_dir} holds {path.name} itself: its exercise version would replace the "
                             "notebook with the solutions; give another folder")
        with atomic_open(target, "w", encoding="utf-8") as f:
            f.write(nbformat.writes(exercise) + "\n")
        written.append(target)
        print(f"[exercises] {path.name}: {info['solutions']} solution cell(s) stubbed, {info['grading']} grading "
              f"cell(s) ({', '.join(info['checks']) or 'no checks'}) -> {target}")
    if colab is not None and written:
        index = out_dir / "README.md"
        with atomic_open(index, "w", encoding="utf-8") as f:
            f.write(colab_links(written, colab, _repo_folder(out_dir)))
        print(f"[exercises] Colab links of the student copies ({colab}) -> {index}")
    return written


def _repo_folder(out_dir: Path) -> str:
    """Where ``out_dir`` sits in the class repository: its path relative to the working folder when it is
    inside it (``exercises``), else its own name."""
    try:
        return out_dir.resolve().relative_to(Path.cwd().resolve()).as_posix()
    except ValueError:
        return out_dir.name


_REPO_SPEC = re.compile(r"^([A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+)(?:@([A-Za-z0-9_./-]+))?$")


def colab_links(copies: Sequence[str | Path], repo: str, folder: str) -> str:
    """A Markdown page with one "Open in Colab" badge per student copy in ``copies``, as committed in ``folder``
    of ``repo`` (``"OWNER/REPO"`` or ``"OWNER/REPO@BRANCH"``, default branch ``main``) beside the course's own
    badge of the same notebook (its solutions). ``ValueError`` for a ``repo`` of another form."""
    from . import colab

    match = _REPO_SPEC.match(repo)
    if match is None or folder.startswith("/") or ".." in Path(folder).parts:
        raise ValueError(f"colab repository must be OWNER/REPO or OWNER/REPO@BRANCH and the folder relative to it, "
                         f"got {repo!r} and {folder!r}")
    name, branch = match.group(1), match.group(2) or "main"
    lines = [f"# Exercises (student copies of {name}@{branch}, `{folder}/`)", "",
             "| notebook | student copy | the course's notebook (with the solutions) |", "|---|---|---|"]
    for path in sorted(Path(p) for p in copies):
        stem = path.stem
        lines.append(f"| `{stem}` | {colab.badge_markdown(colab.badge_url(stem, folder, name, branch))} | "
                     f"{colab.badge_markdown(colab.badge_url(stem))} |")
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------------------------------
# Grading
# --------------------------------------------------------------------------------------------------
@dataclass
class Grade:
    """One student's notebook: ``status`` ("ok", or "; "-joined problems: "error: ...", "timeout after ...",
    "grading cell modified or removed ...", or one of "not a notebook: ...", "malformed notebook: ...",
    "unreadable: ...", "not graded: ..." for a notebook that did not run), ``checks`` ``{name: (passed, score)}``
    for the checks the grader ran, ``expected`` the checks it should run."""

    student: str
    notebook: str
    status: str = "ok"
    checks: dict[str, tuple[bool, float]] = field(default_factory=dict)
    expected: list[str] = field(default_factory=list)

    @property
    def names(self) -> list[str]:
        return self.expected + [n for n in self.checks if n not in self.expected]

    @property
    def passed(self) -> int:
        return sum(1 for n in self.names if self.checks.get(n, (False, 0.0))[0])


def _submissions(root: Path, skip: Path | None) -> list[tuple[str, Path]]:
    found = []
    for path in sorted(root.iterdir()):
        if path.name.startswith((".", "_")) or (skip is not None and path.resolve() == skip):
            continue
        if path.is_dir():
            found += [(path.name, nb) for nb in sorted(path.glob("*.ipynb"))]
        elif path.suffix == ".ipynb":
            found.append((path.stem, path))
    return found


_NOTEBOOK_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.+-]*\.ipynb$")


def _malformed(nb: Any) -> str | None:
    """What keeps ``nb`` (parsed JSON) from being graded, in a few words; ``None`` when it has a notebook's shape."""
    if not isinstance(nb, dict):
        return f"the file holds a JSON {type(nb).__name__}, not a notebook (an object with 'cells' and 'metadata')"
    if not isinstance(nb.get("cells"), list):
        return f"'cells' is {type(nb.get('cells')).__name__}, not a list of cells"
    if not isinstance(nb.get("metadata", {}), dict):
        return f"the notebook's 'metadata' is a {type(nb['metadata']).__name__}, not an object"
    for i, cell in enumerate(nb["cells"]):
        if not isinstance(cell, dict):
            return f"cell {i} is a {type(cell).__name__}, not an object"
        source = cell.get("source", "")
        if not (isinstance(source, str) or (isinstance(source, list) and all(isinstance(x, str) for x in source))):
            return f"cell {i}'s 'source' is neither a string nor a list of strings"
        if not isinstance(cell.get("metadata", {}), dict):
            return f"cell {i}'s 'metadata' is a {type(cell['metadata']).__name__}, not an object"
        tags = cell.get("metadata", {}).get("tags", [])
        if not (isinstance(tags, list) and all(isinstance(t, str) for t in tags)):
            return f"cell {i}'s tags are not a list of strings"
        if not isinstance(cell.get("outputs", []), list):
            return f"cell {i}'s 'outputs' is not a list"
    info = nb.get("metadata", {}).get(METADATA_KEY, {})
    if not isinstance(info, dict):
        return f"metadata '{METADATA_KEY}' is a {type(info).__name__}, not an object"
    checks = info.get("checks", [])
    if checks is not None and not (isinstance(checks, list) and all(isinstance(c, str) for c in checks)):
        return f"metadata '{METADATA_KEY}.checks' is not a list of check names"
    source = info.get("source")
    if source is not None and not (isinstance(source, str) and _NOTEBOOK_NAME.match(source)):
        return (f"metadata '{METADATA_KEY}.source' is {json.dumps(source)[:80]}, not the file name of a handed-out "
                "notebook (no folders)")
    return None


def _read_notebook(data: bytes) -> tuple[dict | None, str | None]:
    """``(notebook, None)`` or ``(None, why it cannot be graded)``."""
    try:
        nb = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        return None, f"not a notebook: {err}"
    problem = _malformed(nb)
    return (None, f"malformed notebook: {problem}") if problem else (nb, None)


def _read_reference(reference: str | Path | None) -> dict[str, dict]:
    """The handed-out notebooks by file name, read once (a submission names one by its key: no path is built from
    what a student wrote)."""
    if reference is None:
        return {}
    folder = Path(reference)
    if not folder.is_dir():
        raise FileNotFoundError(f"reference folder not found: {folder}")
    handed_out = {}
    for path in sorted(folder.glob("*.ipynb")):
        nb, problem = _read_notebook(path.read_bytes())
        if nb is None:
            print(f"[grade] warning: reference {path.name} is skipped: {problem}")
        else:
            handed_out[path.name] = nb
    return handed_out


def _first_error(nb: dict) -> str | None:
    """The first error of an executed notebook, ``"Name: message"``."""
    for cell in nb.get("cells", []) if isinstance(nb, dict) else []:
        for output in cell.get("outputs", []) if isinstance(cell, dict) else []:
            if isinstance(output, dict) and output.get("output_type") == "error":
                return f"{output.get('ename', 'Error')}: {output.get('evalue', '')}".strip()
    return None


def _grading_sources(nb: dict) -> list[str]:
    return [_source(c).strip() for c in nb.get("cells", []) if c.get("cell_type") == "code" and GRADING_TAG in _tags(c)]


def _notebook_name(nb: dict, path: Path) -> str:
    """The assignment a submission belongs to: the file ``make`` wrote (kept in the notebook's metadata, so a
    renamed file is still recognised), else the file name."""
    source = nb.get("metadata", {}).get(METADATA_KEY, {}).get("source")
    return str(source) if source else path.name


def _check_calls(source: str) -> list[tuple[str, str]]:
    """``(check name, the source of the function it is given)`` for each ``checks.check_<name>(fn, ...)`` call."""
    try:
        tree = ast.parse(source)
    except SyntaxError:
        return []
    calls = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else func.id if isinstance(func, ast.Name) else ""
            if name.startswith("check_") and re.fullmatch(r"[A-Za-z0-9_]+", name[6:]):
                argument = ast.get_source_segment(source, node.args[0])
                if argument:
                    calls.append((name[6:], argument))
    return sorted(calls, key=lambda c: source.find(f"check_{c[0]}"))


SERVE_TAG = "inpaint-grader"


def _serve_cell(calls: list[tuple[str, str]], with_id: bool, n: int) -> dict:
    """A cell the grader adds after a grading cell: it hands the student's function to the grader, which computes the
    grade outside this kernel (:mod:`inpaint_utils.checks.remote`)."""
    lines = ["# added by the grader: the grade is computed outside this kernel, on this function's outputs",
             "import inpaint_utils.checks.remote as _inpaint_grader", ""]
    lines += [f"_inpaint_grader.serve({json.dumps(name)}, lambda: ({argument}))" for name, argument in calls]
    cell = {"cell_type": "code", "execution_count": None, "metadata": {"tags": [SERVE_TAG]}, "outputs": [],
            "source": "\n".join(lines)}
    if with_id:
        cell["id"] = f"inpaint-grader-{n}"
    return cell


def _with_serve_cells(nb: dict, handed_out: dict | None) -> dict:
    """A copy of the submission with a serving cell after each grading cell (the handed-out one's calls when the
    cell is unchanged; calls of handed-out cells that are gone are served at the end)."""
    out = copy.deepcopy(nb)
    with_id = any(isinstance(c, dict) and "id" in c for c in nb["cells"])
    reference = [(_source(c).strip(), _check_calls(_source(c))) for c in handed_out["cells"]
                 if c.get("cell_type") == "code" and GRADING_TAG in _tags(c)] if handed_out else None
    cells: list[dict] = []
    for cell in out["cells"]:
        cells.append(cell)
        if cell.get("cell_type") != "code" or GRADING_TAG not in _tags(cell):
            continue
        if reference is None:
            calls = _check_calls(_source(cell))
        else:
            match = next((i for i, (src, _) in enumerate(reference) if src == _source(cell).strip()), None)
            calls = reference.pop(match)[1] if match is not None else []
        if calls:
            cells.append(_serve_cell(calls, with_id, len(cells)))
    left = [call for _, calls in reference or [] for call in calls]
    if left:
        cells.append(_serve_cell(left, with_id, len(cells)))
    out["cells"] = cells
    return out


class _CheckServer:
    """The grader's end of :mod:`inpaint_utils.checks.remote`: a socket in a private folder and a thread that runs,
    for every serving cell that connects, the library's check on the student's function (the verdicts of the
    ``allowed`` checks are kept, last one wins; one whose kernel stopped answering midway does not count)."""

    def __init__(self, folder: Path, allowed: Sequence[str], timeout: float):
        import socket
        import threading

        self.address = str(folder / "grader.sock")
        self.allowed, self.timeout = set(allowed), timeout
        self.results: dict[str, tuple[bool, float]] = {}
        self.reports: dict[str, str] = {}
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.bind(self.address)
        self._sock.listen(8)
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="inpaint-grader", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        from .checks.remote import grade_connection

        while not self._stop.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            with conn:
                conn.settimeout(self.timeout)
                graded = grade_connection(conn, self.allowed)
            if graded is not None:
                name, result, report = graded
                self.results[name] = (result.passed, round(result.score, 2))
                self.reports[name] = report

    def close(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)
        self._sock.close()


def _grade_one(student: str, path: Path, data: bytes, handed_out: dict[str, dict], out_dir: Path, profile: str,
               timeout: float) -> Grade:
    """One submission, in a temporary folder of its own; the grade from :class:`_CheckServer`."""
    import tempfile

    from .checks import STRICT_ENV
    from .checks.remote import SOCKET_ENV
    from .nbrun import NotebookFailed, NotebookTimeout, run_notebook

    submitted, problem = _read_notebook(data)
    if submitted is None:
        reference = handed_out.get(path.name)
        expected = list(reference.get("metadata", {}).get(METADATA_KEY, {}).get("checks") or []) if reference else []
        return Grade(student, path.name, status=problem or "not a notebook", expected=expected)
    g = Grade(student, _notebook_name(submitted, path),
              expected=list(submitted.get("metadata", {}).get(METADATA_KEY, {}).get("checks")
                            or _checks_in(submitted.get("cells", []))))
    problems: list[str] = []
    reference = handed_out.get(g.notebook)
    if reference is not None:
        g.expected = list(reference.get("metadata", {}).get(METADATA_KEY, {}).get("checks") or g.expected)
        original, now = _grading_sources(reference), _grading_sources(submitted)
        missing = 0
        for src in original:  # every handed-out grading cell must still be there, unchanged
            if src in now:
                now.remove(src)
            else:
                missing += 1
        if missing:
            problems.append(f"grading cell modified or removed ({missing} of {len(original)})")
    prepared = _with_serve_cells(submitted, reference)
    failed = error = None
    with tempfile.TemporaryDirectory(prefix="inpaint-grade-") as tmp:
        folder = Path(tmp)
        (folder / "notebook").mkdir()
        notebook = folder / "notebook" / path.name
        notebook.write_text(json.dumps(prepared, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")
        server = _CheckServer(folder, g.expected, timeout)
        try:
            run_notebook(notebook, folder / "executed", profile=profile, timeout=timeout, kill_leftovers=True,
                         env={STRICT_ENV: "0", "INPAINT_FIGURES": str(folder / "figures"),
                              "INPAINT_RUNS": str(folder / "runs"), SOCKET_ENV: server.address})
        except NotebookTimeout:
            failed = f"timeout after {timeout:.0f} s"
        except NotebookFailed:
            failed = "error"
        finally:
            server.close()
        g.checks = dict(server.results)
        executed = folder / "executed" / path.name
        text = executed.read_bytes() if executed.is_file() else None
        if text is not None:
            try:
                error = _first_error(json.loads(text.decode("utf-8")))
            except (UnicodeDecodeError, json.JSONDecodeError):
                error = "unreadable executed notebook"
        try:  # the executed copy and the checks' reports, for the student; the grade does not depend on them
            work = out_dir / student
            work.mkdir(parents=True, exist_ok=True)
            if text is not None:
                with atomic_open(work / path.name, "wb") as f:
                    f.write(text)
            if server.reports:
                with atomic_open(work / f"{Path(path.name).stem}.checks.txt", "w", encoding="utf-8") as f:
                    f.write("\n\n".join(server.reports[n] for n in g.names if n in server.reports) + "\n")
        except OSError as err:
            problems.append(f"executed copy not saved ({err.strerror or err})")
    if failed == "error":
        problems.append(f"error: {error or 'the notebook did not run'}")
    elif failed:
        problems.append(failed)
    g.status = "; ".join(problems) or "ok"
    return g


def grade(submissions: str | Path, out_dir: str | Path = "runs/grading", profile: str = "smoke",
          timeout: float = 900, reference: str | Path | None = None) -> list[Grade]:
    """Run and grade every submitted notebook (see the module docstring); write ``grades.csv`` and
    ``grades.md`` into ``out_dir`` and return the grades.

    Every submission (and every handed-out notebook) is read before any student's code runs, and each runs from a
    temporary copy, so a student's code that deletes or edits another's file changes no grade; a submission that
    cannot be graded (not JSON, not shaped like a notebook) gets its row with the reason, and the reports are written
    whatever happened to the others."""
    root = Path(submissions)
    if not root.is_dir():
        raise FileNotFoundError(f"submissions folder not found: {root}")
    out_dir = Path(out_dir).resolve()
    handed_out = _read_reference(reference)
    loaded: list[tuple[str, Path, bytes | None, str]] = []
    for student, path in _submissions(root, out_dir):
        try:
            loaded.append((student, path, path.read_bytes(), ""))
        except OSError as err:
            loaded.append((student, path, None, f"unreadable: {err.strerror or err}"))
    grades: list[Grade] = []
    try:
        for student, path, data, problem in loaded:
            print(f"[grade] {student}: {path.name} ...", flush=True)
            start = time.perf_counter()
            if data is None:
                g = Grade(student, path.name, status=problem)
            else:
                try:
                    g = _grade_one(student, path, data, handed_out, out_dir, profile, timeout)
                except Exception as err:  # noqa: BLE001 - one notebook the grader could not handle: the rest go on
                    g = Grade(student, path.name, status=f"not graded: {type(err).__name__}: {err}")
            print(f"[grade] {student}: {g.passed} of {len(g.names)} checks passed, {g.status} "
                  f"({time.perf_counter() - start:.0f} s)", flush=True)
            grades.append(g)
    finally:
        _write_reports(grades, out_dir)
    return grades


def _cell(g: Grade, name: str) -> tuple[str, str]:
    if name not in g.checks:
        return "not run", ""
    passed, score = g.checks[name]
    return ("PASS" if passed else "FAIL"), f"{score:.2f}"


def _write_reports(grades: list[Grade], out_dir: Path) -> None:
    out_dir.mkdir(parents=True, exist_ok=True)
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["student", "notebook", "status", "check", "result", "score"])
    for g in grades:
        for name in g.names or [""]:
            result, score = _cell(g, name) if name else ("", "")
            writer.writerow([g.student, g.notebook, g.status, name, result, score])
    with atomic_open(out_dir / "grades.csv", "w", encoding="utf-8") as f:
        f.write(buffer.getvalue())
    lines: list[str] = []
    for notebook in dict.fromkeys(g.notebook for g in grades):          # one table per assignment, in order
        group = [g for g in grades if g.notebook == notebook]
        names = list(dict.fromkeys(n for g in group for n in g.names))
        lines += [f"## {notebook}", "", "| " + " | ".join(["student", "passed", *names, "status"]) + " |",
                  "|---|---|" + "---|" * len(names) + "---|"]
        for g in group:
            row = [g.student, f"{g.passed}/{len(g.names)}", *(" ".join(_cell(g, n)).strip() for n in names), g.status]
            lines.append("| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |")
        lines.append("")
    text = "\n".join(lines) + "\n" if lines else "no submitted notebook found\n"
    with atomic_open(out_dir / "grades.md", "w", encoding="utf-8") as f:
        f.write(text)
    print(text, end="")
    print(f"[grade] wrote {out_dir / 'grades.csv'} and {out_dir / 'grades.md'}")


# --------------------------------------------------------------------------------------------------
# Command line
# --------------------------------------------------------------------------------------------------
def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inpaint_utils.exercises",
                                     description="Exercise notebooks for a class, and grading through papermill.")
    sub = parser.add_subparsers(dest="cmd", required=True)
    make = sub.add_parser("make", help="write exercise versions (solution cells stubbed, outputs cleared)")
    make.add_argument("notebooks", nargs="+", type=Path)
    make.add_argument("--out", type=Path, default=Path("exercises"), help="output folder (default exercises/)")
    make.add_argument("--colab", metavar="OWNER/REPO[@BRANCH]", default=None,
                      help="also write OUT/README.md with an Open-in-Colab badge per student copy, for a class "
                           "repository that holds OUT at the same relative path")
    grade_p = sub.add_parser("grade", help="run every submitted notebook and summarise its checks")
    grade_p.add_argument("submissions", type=Path, help="SUBMISSIONS_DIR/<student>/<notebook>.ipynb")
    grade_p.add_argument("--out", type=Path, default=Path("runs/grading"),
                         help="executed notebooks, grades.csv and grades.md (default runs/grading)")
    grade_p.add_argument("--profile", default="smoke", choices=("smoke", "full"))
    grade_p.add_argument("--timeout", type=float, default=900, help="seconds per notebook (default 900)")
    grade_p.add_argument("--reference", type=Path, default=None,
                         help="the handed-out exercise notebooks: flag modified grading cells")
    args = parser.parse_args(argv)
    if args.cmd == "make":
        missing = [str(p) for p in args.notebooks if not p.is_file()]
        if missing:
            parser.error(f"notebook(s) not found: {', '.join(missing)}")
        if args.colab is not None and _REPO_SPEC.match(args.colab) is None:
            parser.error(f"--colab must be OWNER/REPO or OWNER/REPO@BRANCH, got {args.colab!r}")
        written = write_exercises(args.notebooks, args.out, colab=args.colab)
        if not written:
            print(f"[exercises] no notebook has a cell tagged '{SOLUTION_TAG}': nothing written")
            return 1
        return 0
    try:
        grade(args.submissions, args.out, profile=args.profile, timeout=args.timeout, reference=args.reference)
    except FileNotFoundError as err:
        parser.error(str(err))
    return 0


if __name__ == "__main__":
    sys.exit(main())
