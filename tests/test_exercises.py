"""Exercise notebooks: the stubs leave no solution behind, stay valid notebooks whose grading cells fail
until the student writes the code; ``grade`` runs a class's notebooks with papermill and summarises."""
from __future__ import annotations

import csv
import json
from pathlib import Path

import nbformat
import pytest
import torch

from inpaint_utils import exercises
from inpaint_utils.checks import CheckFailed

ROOT = Path(__file__).resolve().parents[1]
NB01 = ROOT / "notebooks" / "01_masking.ipynb"

SOLUTION_DEF = '''# Exercise: the mean squared error over the hole.
def my_masked_l2(pred, target, mask):
    """The hole's mean squared error, a 0-d tensor."""
    # Hint: a (1, 1, H, W) mask serves the whole batch.
    mask = mask.expand(pred.shape[0], 1, *pred.shape[-2:])
    SECRET_TOKEN = (mask * (pred - target) ** 2).sum()
    return SECRET_TOKEN / (mask.sum() * pred.shape[1])
'''
SOLUTION_WHOLE = '''# How many pixels are hole?
import torch
hole_pixels = int(torch.ones(4, 4).sum())  # SECRET_TOKEN
area, count = 0.5, 3
print(hole_pixels)
'''
GRADING = "from inpaint_utils import checks\nchecks.check_masked_l2(my_masked_l2, strict=True)"


def _notebook(cells: list) -> nbformat.NotebookNode:
    nb = nbformat.v4.new_notebook()
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nb.cells = cells
    return nb


def _code(source: str, tags=(), outputs=(), **meta) -> nbformat.NotebookNode:
    cell = nbformat.v4.new_code_cell(source, metadata={"tags": list(tags), **meta} if tags or meta else {})
    cell.outputs = [nbformat.v4.new_output("stream", name="stdout", text=t) for t in outputs]
    cell.execution_count = 3 if outputs else None
    return cell


def _synthetic() -> nbformat.NotebookNode:
    return _notebook([
        _code('PROFILE = "smoke"', tags=["parameters"]),
        nbformat.v4.new_markdown_cell("## Exercise"),
        _code(SOLUTION_DEF, tags=["solution"], outputs=["done\n"]),
        _code(SOLUTION_WHOLE, tags=["solution"], hint="count the ones of the mask"),
        nbformat.v4.new_markdown_cell("The hole is SECRET_TOKEN.", metadata={"tags": ["solution"]}),
        _code(GRADING, tags=["grading"], outputs=["CHECK masked_l2 PASS 1.00\n"]),
        _code("print('a normal cell')", outputs=["a normal cell\n"]),
    ])


def _sources(nb) -> str:
    return "\n".join(c.source for c in nb.cells)


def test_synthetic_notebook_is_stubbed():
    original = _synthetic()
    exercise, info = exercises.make_exercise(original)
    nbformat.validate(exercise)
    assert info == {"solutions": 2, "markdown_answers": 1, "grading": 1, "checks": ["masked_l2"]}
    assert "SECRET_TOKEN" not in _sources(exercise) and "SECRET_TOKEN" in _sources(original)  # original untouched
    stub = exercise.cells[2].source
    assert stub.startswith("# Exercise: the mean squared error over the hole.\ndef my_masked_l2(pred, target, mask):")
    assert '"""The hole\'s mean squared error, a 0-d tensor."""' in stub
    assert "# Hint: a (1, 1, H, W) mask serves the whole batch." in stub
    assert 'raise NotImplementedError("TODO: implement my_masked_l2' in stub
    assert "mask.expand" not in stub and "\n    return" not in stub
    whole = exercise.cells[3].source
    assert "# How many pixels are hole?" in whole and "# TODO: count the ones of the mask" in whole
    assert "hole_pixels = None  # TODO" in whole and "area = None" in whole and "count = None" in whole
    assert "import torch" in whole and "print" not in whole
    assert exercise.cells[4].source == exercises.MARKDOWN_ANSWER
    assert exercise.cells[5].source == GRADING
    assert all(c.outputs == [] and c.execution_count is None for c in exercise.cells if c.cell_type == "code")
    assert exercise.metadata["inpaint_exercise"]["checks"] == ["masked_l2"]
    # the stub runs, and its grading cell fails with the "not implemented" message
    namespace: dict = {}
    exec(stub, namespace)
    with pytest.raises(CheckFailed, match="not implemented yet"):
        exec(exercise.cells[5].source, namespace)
    # the solution itself passes the same grading cell
    namespace = {}
    exec(SOLUTION_DEF, namespace)
    exec(GRADING, namespace)


def test_stub_edge_cases():
    one_line = exercises.stub_cell_source("def double(x): return 2 * x\n", hint="twice x")
    assert "def double(x):" in one_line and "TODO: twice x" in one_line and "2 * x" not in one_line
    compile(one_line, "<stub>", "exec")
    decorated = exercises.stub_cell_source("import functools\n\n@functools.lru_cache\ndef f(\n    x,\n):\n    return x\n")
    assert "@functools.lru_cache\ndef f(\n    x,\n):\n    raise NotImplementedError" in decorated
    compile(decorated, "<stub>", "exec")
    broken = exercises.stub_cell_source("# leading\ndef f(:\n", hint="fix me")
    assert broken.strip() == "# leading\n# TODO: fix me"


def test_notebook_01_exercise_version():
    original = nbformat.read(str(NB01), as_version=4)
    exercise, info = exercises.make_exercise(original)
    nbformat.validate(exercise)
    assert info["solutions"] >= 3 and info["grading"] >= 3
    assert {"masked_l2", "psnr", "mask_generator"} <= set(info["checks"])
    solutions = [c for c in original.cells if "solution" in c.metadata.get("tags", [])]
    stubs = [c for c in exercise.cells if "solution" in c.metadata.get("tags", [])]
    for solution, stub in zip(solutions, stubs):
        body = [ln.strip() for ln in solution.source.splitlines()
                if ln.strip() and not ln.strip().startswith(("def ", "#", '"""')) and ln.startswith("    ")
                and '"""' not in ln]
        assert body, "a solution cell of notebook 01 has no body to hide"
        for line in body:
            if line in stub.source and line.startswith(("return", "mask", "side", "top", "mse")):
                pytest.fail(f"solution code left in the exercise: {line!r}")
        assert "raise NotImplementedError" in stub.source
    assert not any(c.get("outputs") for c in exercise.cells if c.cell_type == "code")
    # every grading cell fails on the stubs and passes on the solutions (run here, without a kernel)
    for cells, should_fail in ((exercise.cells, True), (original.cells, False)):
        namespace = {"torch": torch}
        for cell in cells:
            tags = cell.metadata.get("tags", [])
            if "solution" in tags:
                exec(cell.source, namespace)
            elif "grading" in tags:
                if should_fail:
                    with pytest.raises(CheckFailed, match="not implemented yet"):
                        exec(cell.source, namespace)
                else:
                    exec(cell.source, namespace)


def test_make_command_writes_only_notebooks_with_solutions(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_synthetic(), str(src / "10_ex.ipynb"))
    nbformat.write(_notebook([_code('PROFILE = "smoke"', tags=["parameters"])]), str(src / "11_plain.ipynb"))
    out = tmp_path / "exercises"
    assert exercises.main(["make", "--out", str(out), str(src / "10_ex.ipynb"), str(src / "11_plain.ipynb")]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["10_ex.ipynb"]
    written = nbformat.read(str(out / "10_ex.ipynb"), as_version=4)
    nbformat.validate(written)
    assert written.metadata["inpaint_exercise"] == {"checks": ["masked_l2"], "source": "10_ex.ipynb"}
    assert "11_plain.ipynb: no cell tagged 'solution', skipped" in capsys.readouterr().out
    assert exercises.main(["make", "--out", str(out), str(src / "11_plain.ipynb")]) == 1


def test_make_colab_writes_a_badge_per_student_copy_beside_the_courses(tmp_path, capsys):
    from inpaint_utils import colab

    src = tmp_path / "src"
    src.mkdir()
    nbformat.write(_synthetic(), str(src / "10_ex.ipynb"))
    nbformat.write(_notebook([_code('PROFILE = "smoke"', tags=["parameters"])]), str(src / "11_plain.ipynb"))
    out = tmp_path / "class"
    assert exercises.main(["make", "--out", str(out), "--colab", "teacher/ml-class@spring",
                           str(src / "10_ex.ipynb"), str(src / "11_plain.ipynb")]) == 0
    page = (out / "README.md").read_text()
    student = "https://colab.research.google.com/github/teacher/ml-class/blob/spring/"
    assert f"({student}class/10_ex.ipynb)" in page              # the student copy's link (out is outside the cwd)
    assert f"({colab.badge_url('10_ex')})" in page                                 # beside the course's
    assert "11_plain" not in page                                                   # no copy, no link
    links = exercises.colab_links([out / "02_context_encoder.ipynb"], "teacher/ml-class", "exercises")
    assert ("https://colab.research.google.com/github/teacher/ml-class/blob/main/exercises/02_context_encoder.ipynb"
            in links)
    for bad in ("not a repo", "a/b/c", "a/b@"):
        with pytest.raises(SystemExit):
            exercises.main(["make", "--out", str(tmp_path / "x"), "--colab", bad, str(src / "10_ex.ipynb")])
        assert not (tmp_path / "x").exists()                                        # refused before writing
    with pytest.raises(ValueError, match="folder relative"):
        exercises.colab_links([out / "10_ex.ipynb"], "teacher/ml-class", "../elsewhere")
    capsys.readouterr()


WRONG_DEF = '''def my_masked_l2(pred, target, mask):
    return (mask * (pred - target) ** 2).mean()
'''
PSNR_DEF = '''import torch
def my_psnr(pred, target):
    return (10 * torch.log10(1.0 / ((pred - target) ** 2).mean(dim=(1, 2, 3)))).mean()
'''


def _submission(l2_source: str, fake_line: bool = False) -> nbformat.NotebookNode:
    cells = [
        _code('PROFILE = "smoke"', tags=["parameters"]),
        _code(l2_source, tags=["solution"]),
        _code(GRADING, tags=["grading"]),
        _code(PSNR_DEF, tags=["solution"]),
        _code("checks.check_psnr(my_psnr, strict=True)", tags=["grading"]),
    ]
    if fake_line:  # printed outside a grading cell: must not count
        cells.append(_code("print('CHECK masked_l2 PASS 1.00')"))
    nb = _notebook(cells)
    nb.metadata["inpaint_exercise"] = {"checks": ["masked_l2", "psnr"], "source": "10_ex.ipynb"}
    return nb


@pytest.mark.notebook
def test_grade_a_class_with_papermill(tmp_path):
    submissions = tmp_path / "submissions"
    for student, source, fake in (("alice", SOLUTION_DEF, False), ("bob", WRONG_DEF, True)):
        (submissions / student).mkdir(parents=True)
        nbformat.write(_submission(source, fake), str(submissions / student / "10_ex.ipynb"))
    reference = tmp_path / "handed_out"
    reference.mkdir()
    nbformat.write(_submission(SOLUTION_DEF), str(reference / "10_ex.ipynb"))
    out = tmp_path / "graded"
    grades = exercises.grade(submissions, out, timeout=120, reference=reference)
    by_student = {g.student: g for g in grades}
    alice, bob = by_student["alice"], by_student["bob"]
    assert alice.status == "ok" and alice.checks == {"masked_l2": (True, 1.0), "psnr": (True, 1.0)}
    # bob's wrong L2 fails, and (strictness off while grading) his PSNR is still graded; the fake line is ignored
    assert bob.status == "ok" and bob.checks["masked_l2"][0] is False and bob.checks["psnr"] == (True, 1.0)
    assert 0 < bob.checks["masked_l2"][1] < 1
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {(r["student"], r["check"], r["result"]) for r in rows} == {
        ("alice", "masked_l2", "PASS"), ("alice", "psnr", "PASS"), ("bob", "masked_l2", "FAIL"), ("bob", "psnr", "PASS")}
    table = (out / "grades.md").read_text()
    assert "## 10_ex.ipynb" in table and "| student | passed | masked_l2 | psnr | status |" in table
    assert "| alice | 2/2 | PASS 1.00 | PASS 1.00 | ok |" in table
    assert "| bob | 1/2 | FAIL" in table
    assert (out / "bob" / "10_ex.ipynb").is_file()                            # the executed copy is kept


def _fake_kernel(monkeypatch):
    """``nbrun.run_notebook`` without a kernel: the notebook's code cells run in this process, in order (the grader's
    serving cells too, so the grade crosses the socket as in a real run); a cell with ``# FAIL HERE`` stops it with
    a NameError. Returns the list of the runs' ``(notebook, env)``."""
    from inpaint_utils import nbrun
    from inpaint_utils.checks.remote import SOCKET_ENV

    runs = []

    def fake_run(notebook, out_dir, profile="smoke", parameters=None, timeout=600, kernel="python3", env=None,
                 kill_leftovers=False):
        assert env["INPAINT_CHECKS_STRICT"] == "0" and profile == "smoke" and kill_leftovers
        runs.append((Path(notebook), env))
        monkeypatch.setenv(SOCKET_ENV, env[SOCKET_ENV])
        nb = json.loads(Path(notebook).read_text())
        namespace: dict = {}
        failed = False
        for cell in (c for c in nb["cells"] if c["cell_type"] == "code"):
            try:
                if "# FAIL HERE" in "".join(cell["source"]):
                    raise NameError("name 'checks' is not defined")
                exec("".join(cell["source"]), namespace)
            except Exception as err:  # as the kernel: the error is the cell's output, the run stops
                cell["outputs"] = [{"output_type": "error", "ename": type(err).__name__, "evalue": str(err),
                                    "traceback": []}]
                failed = True
                break
        Path(out_dir).mkdir(parents=True, exist_ok=True)
        (Path(out_dir) / Path(notebook).name).write_text(json.dumps(nb))
        if failed:
            raise nbrun.NotebookFailed("failed")
        return Path(out_dir) / Path(notebook).name

    monkeypatch.setattr(nbrun, "run_notebook", fake_run)
    return runs


def test_grade_reports_broken_and_tampered_notebooks(tmp_path, monkeypatch):
    """Without a kernel (the cells run in this process): the report of a tampered grading cell, a failing notebook,
    a file that is not JSON; the grade comes from the grader's check, never from a printed line."""
    submissions = tmp_path / "subs"
    (submissions / "carol").mkdir(parents=True)
    tampered = _submission(SOLUTION_DEF)
    tampered.cells[2].source = "from inpaint_utils import checks\nprint('CHECK masked_l2 PASS 1.00')"  # rewritten
    tampered.cells[1].source = WRONG_DEF                                      # ... over a wrong answer
    nbformat.write(tampered, str(submissions / "carol" / "10_ex.ipynb"))
    failing = _submission(SOLUTION_DEF)
    failing.cells[3].source += "# FAIL HERE\n"
    nbformat.write(failing, str(submissions / "dave.ipynb"))                # a top-level file: student "dave"
    (submissions / "erin.ipynb").write_text("{not json")
    reference = tmp_path / "ref"
    reference.mkdir()
    nbformat.write(_submission(SOLUTION_DEF), str(reference / "10_ex.ipynb"))
    runs = _fake_kernel(monkeypatch)
    grades = {g.student: g for g in exercises.grade(submissions, tmp_path / "out", reference=reference)}
    assert set(grades) == {"carol", "dave", "erin"}
    assert grades["carol"].status == "grading cell modified or removed (1 of 2)"
    # graded all the same, on her function (the handed-out check runs at the end): the printed PASS does not count
    assert grades["carol"].checks["masked_l2"][0] is False and grades["carol"].checks["psnr"] == (True, 1.0)
    assert grades["erin"].status.startswith("not a notebook") and grades["erin"].passed == 0
    assert grades["dave"].status == "error: NameError: name 'checks' is not defined"
    assert grades["dave"].checks == {"masked_l2": (True, 1.0)} and grades["dave"].passed == 1
    table = (tmp_path / "out" / "grades.md").read_text()
    assert grades["dave"].notebook == "10_ex.ipynb"                          # known from the metadata
    assert "| dave | 1/2 | PASS 1.00 | not run | error: NameError" in table
    assert "check_masked_l2: 7 of 7 tests passed" in (tmp_path / "out" / "dave" / "dave.checks.txt").read_text()
    # each notebook ran from a temporary copy of its own, never from the submissions folder
    assert len(runs) == 2 and all(submissions not in nb.parents and not nb.exists() for nb, _ in runs)
    with pytest.raises(FileNotFoundError):
        exercises.grade(tmp_path / "missing", tmp_path / "out")


def test_grade_gives_a_malformed_submission_its_row(tmp_path, monkeypatch):
    """Each malformation gets a row (grade 0, the reason) and the others are graded; a metadata ``source`` with
    folders in it reads nothing outside the reference folder."""
    submissions = tmp_path / "subs"
    submissions.mkdir()
    reference = tmp_path / "ref"
    reference.mkdir()
    nbformat.write(_submission(SOLUTION_DEF), str(reference / "10_ex.ipynb"))
    outside = _submission(SOLUTION_DEF)
    outside.metadata["inpaint_exercise"]["checks"] = ["read_from_outside"]
    nbformat.write(outside, str(tmp_path / "secret.ipynb"))                   # beside the reference folder
    good = json.loads(nbformat.writes(_submission(SOLUTION_DEF)))
    bad = {
        "a_metadata_list": {**good, "metadata": ["a", "list"]},
        "b_cells_string": {**good, "cells": "print('hi')"},
        "c_json_list": [good],
        "d_source_outside": {**good, "metadata": {**good["metadata"],
                                                   "inpaint_exercise": {"checks": [], "source": "../secret.ipynb"}}},
        "e_hostname": {**good, "metadata": {**good["metadata"],
                                             "inpaint_exercise": {"source": "../../../../etc/hostname"}}},
        "f_exercise_list": {**good, "metadata": {**good["metadata"], "inpaint_exercise": ["checks"]}},
    }
    for student, nb in bad.items():
        (submissions / student).mkdir()
        (submissions / student / "10_ex.ipynb").write_text(json.dumps(nb))
    (submissions / "zoe").mkdir()
    (submissions / "zoe" / "10_ex.ipynb").write_text(json.dumps(good))
    _fake_kernel(monkeypatch)
    grades = {g.student: g for g in exercises.grade(submissions, tmp_path / "out", reference=reference)}
    reasons = {
        "a_metadata_list": "the notebook's 'metadata' is a list, not an object",
        "b_cells_string": "'cells' is str, not a list of cells",
        "c_json_list": "the file holds a JSON list, not a notebook",
        "d_source_outside": "'inpaint_exercise.source' is \"../secret.ipynb\", not the file name of a handed-out",
        "e_hostname": "'inpaint_exercise.source' is \"../../../../etc/hostname\"",
        "f_exercise_list": "metadata 'inpaint_exercise' is a list, not an object",
    }
    for student, reason in reasons.items():
        g = grades[student]
        assert g.status.startswith("malformed notebook: ") and reason in g.status, (student, g.status)
        assert g.passed == 0 and g.checks == {} and g.expected == ["masked_l2", "psnr"]   # the handed-out checks
    assert grades["zoe"].status == "ok" and grades["zoe"].passed == 2
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert {r["student"] for r in rows} == set(bad) | {"zoe"}
    assert all(r["result"] == "not run" for r in rows if r["student"] in bad)
    assert "read_from_outside" not in (tmp_path / "out" / "grades.md").read_text()


def test_grade_writes_the_reports_whatever_a_notebook_does(tmp_path, monkeypatch):
    """An unexpected failure of the grader on one notebook is that notebook's row; grades.csv is written."""
    submissions = tmp_path / "subs"
    for student in ("amy", "bo"):
        (submissions / student).mkdir(parents=True)
        nbformat.write(_submission(SOLUTION_DEF), str(submissions / student / "10_ex.ipynb"))
    _fake_kernel(monkeypatch)
    real, calls = exercises._with_serve_cells, []

    def first_one_breaks(nb, reference):
        calls.append(nb)
        return real(nb, reference) if len(calls) > 1 else 1 / 0

    monkeypatch.setattr(exercises, "_with_serve_cells", first_one_breaks)
    grades = {g.student: g for g in exercises.grade(submissions, tmp_path / "out")}
    assert grades["amy"].status == "not graded: ZeroDivisionError: division by zero"
    assert grades["bo"].status == "ok" and grades["bo"].passed == 2
    rows = list(csv.DictReader((tmp_path / "out" / "grades.csv").open()))
    assert {r["student"] for r in rows} == {"amy", "bo"}


def test_make_refuses_to_write_over_the_notebooks_with_the_solutions(tmp_path):
    nbformat.write(_synthetic(), str(tmp_path / "10_ex.ipynb"))
    before = (tmp_path / "10_ex.ipynb").read_bytes()
    with pytest.raises(ValueError, match="holds 10_ex.ipynb itself.*give another folder"):
        exercises.write_exercises([tmp_path / "10_ex.ipynb"], tmp_path)
    assert (tmp_path / "10_ex.ipynb").read_bytes() == before


#: notebooks 02-07 and the checks of their graded exercises
EXERCISES_02_07 = {
    "02_context_encoder": ["ce_loss"],
    "03_cascade_ce_nsd": ["nsd"],
    "04_glcic": ["local_crop"],
    "05_contextual_attention": ["contextual_attention"],
    "06_stable_diffusion": ["repaint_step", "repaint_jump"],
    "07_comparison": ["psnr_by_area"],
}


def _exercise_notebook(stubbed: bool) -> nbformat.NotebookNode:
    """The graded exercises of notebooks 02-07 in one small notebook (their explanation, solution and grading cells,
    as the notebooks hold them, or as ``make exercises`` hands them out): the grader's path without training six
    models (the notebooks themselves run in tests/test_notebooks.py)."""
    cells = [_code('PROFILE = "smoke"', tags=["parameters"]), _code("import torch")]
    for name in EXERCISES_02_07:
        nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
        if stubbed:
            nb, _ = exercises.make_exercise(nb)
        cells += [c for c in nb.cells if c.get("id", "").startswith(f"ex{name[:2]}")]
    nb = _notebook(cells)
    nb.metadata["inpaint_exercise"] = {"checks": [c for v in EXERCISES_02_07.values() for c in v],
                                       "source": "02-07_exercises.ipynb"}
    return nb


def test_exercise_cells_of_02_07_are_collected():
    for stubbed in (False, True):
        nb = _exercise_notebook(stubbed)
        names = exercises.make_exercise(nb)[1]["checks"]
        assert names == [c for v in EXERCISES_02_07.values() for c in v]
        solutions = [c for c in nb.cells if "solution" in c.metadata.get("tags", [])]
        assert len(solutions) == 7
        assert all(("raise NotImplementedError" in c.source) == stubbed for c in solutions)


@pytest.mark.notebook
def test_grade_the_exercises_of_02_07_with_papermill(tmp_path):
    """Through the papermill grader: the solutions pass every check, the stubs fail every one (and, strictness
    being off while grading, every check still runs)."""
    submissions = tmp_path / "submissions"
    for student, stubbed in (("solutions", False), ("stubs", True)):
        (submissions / student).mkdir(parents=True)
        nbformat.write(_exercise_notebook(stubbed), str(submissions / student / "02-07_exercises.ipynb"))
    grades = {g.student: g for g in exercises.grade(submissions, tmp_path / "graded", timeout=300)}
    expected = [c for v in EXERCISES_02_07.values() for c in v]
    solved, stubs = grades["solutions"], grades["stubs"]
    assert solved.status == "ok" and solved.checks == {name: (True, 1.0) for name in expected}
    assert stubs.status == "ok" and stubs.checks == {name: (False, 0.0) for name in expected}
    executed = json.loads((tmp_path / "graded" / "stubs" / "02-07_exercises.ipynb").read_text())
    printed = "".join(o.get("text", "") if isinstance(o.get("text", ""), str) else "".join(o["text"])
                      for c in executed["cells"] for o in c.get("outputs", []))
    assert "is not implemented yet" in printed


CHEAT = '''import inpaint_utils.checks
inpaint_utils.checks.check_masked_l2 = lambda fn, **kwargs: print("CHECK masked_l2 PASS 1.00")
inpaint_utils.checks.check_psnr = lambda fn, **kwargs: print("CHECK psnr PASS 1.00")
'''
#: a PSNR with data range 255 (a wrong answer)
PSNR_255 = PSNR_DEF.replace("1.0 /", "255.0 ** 2 /")


def _spawn_and_record(pid_file: Path) -> str:
    """A cell that starts ``sleep 1000`` in a session of its own (out of the kernel's process group) and writes its
    pid to ``pid_file``."""
    return (f"import subprocess\nchild = subprocess.Popen(['sleep', '1000'], start_new_session=True)\n"
            f"open({str(pid_file)!r}, 'w').write(str(child.pid))\n")


def _dead(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return True
    return state in ("Z", "X")                   # a zombie waiting for its new parent to reap it is dead too


@pytest.mark.notebook
def test_grade_is_computed_where_the_students_code_cannot_reach_it(tmp_path):
    """mallory replaces the checks by ones that print PASS: the grade is her functions' (FAIL), with the reference
    and without. dan deletes zoe's submission and the handed-out notebook and leaves a process of its own session
    behind: zoe is graded all the same and the process is killed."""
    submissions, reference = tmp_path / "submissions", tmp_path / "handed_out"
    for folder in (submissions / "mallory", submissions / "dan", submissions / "zoe", reference):
        folder.mkdir(parents=True)
    nbformat.write(_submission(SOLUTION_DEF), str(reference / "10_ex.ipynb"))
    mallory = _submission(WRONG_DEF)
    mallory.cells[3].source = PSNR_255
    mallory.cells.insert(2, _code(CHEAT))
    nbformat.write(mallory, str(submissions / "mallory" / "10_ex.ipynb"))
    zoe_file, pid_file = submissions / "zoe" / "10_ex.ipynb", tmp_path / "dan.pid"
    dan = _submission(SOLUTION_DEF)
    dan.cells.insert(1, _code(f"import os\nos.remove({str(zoe_file)!r})\nos.remove({str(reference / '10_ex.ipynb')!r})\n"
                              + _spawn_and_record(pid_file)))
    nbformat.write(dan, str(submissions / "dan" / "10_ex.ipynb"))
    nbformat.write(_submission(SOLUTION_DEF), str(zoe_file))
    out = tmp_path / "graded"
    grades = {g.student: g for g in exercises.grade(submissions, out, timeout=120, reference=reference)}
    assert grades["mallory"].status == "ok"                                  # her grading cells are unchanged
    assert grades["mallory"].checks["masked_l2"][0] is False and grades["mallory"].checks["psnr"][0] is False
    assert "CHECK masked_l2 PASS 1.00" in json.dumps(json.loads((out / "mallory" / "10_ex.ipynb").read_text()))
    assert not zoe_file.exists()                                             # dan's code did delete it ...
    assert grades["zoe"].status == "ok" and grades["zoe"].passed == 2        # ... read before his code ran
    assert grades["dan"].status == "ok" and grades["dan"].passed == 2
    assert _dead(int(pid_file.read_text()))
    rows = list(csv.DictReader((out / "grades.csv").open()))
    assert {(r["student"], r["result"]) for r in rows} == {("mallory", "FAIL"), ("dan", "PASS"), ("zoe", "PASS")}
    # without the reference, the same
    (submissions / "dan").rename(tmp_path / "dan")
    (submissions / "zoe").rename(tmp_path / "zoe")
    grades = exercises.grade(submissions, tmp_path / "graded2", timeout=120)
    assert [(g.student, g.passed, g.status) for g in grades] == [("mallory", 0, "ok")]


@pytest.mark.notebook
def test_grade_timeout_kills_a_child_in_its_own_session(tmp_path):
    submissions = tmp_path / "submissions" / "tim"
    submissions.mkdir(parents=True)
    pid_file = tmp_path / "tim.pid"
    nb = _submission(SOLUTION_DEF)
    nb.cells.insert(3, _code(_spawn_and_record(pid_file) + "import time\ntime.sleep(1000)\n"))
    nbformat.write(nb, str(submissions / "10_ex.ipynb"))
    (g,) = exercises.grade(tmp_path / "submissions", tmp_path / "graded", timeout=45)
    assert g.status == "timeout after 45 s"
    assert g.checks == {"masked_l2": (True, 1.0)}                            # graded before the sleep
    assert _dead(int(pid_file.read_text()))
