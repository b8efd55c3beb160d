"""Every notebook: committed clean, and executed end to end with papermill in the smoke profile, as a
fresh clone runs it (no shared folder).

nbval runs the same notebooks a second time (``--nbval-lax``, see pyproject.toml) with the real shared
folder when present and compares the outputs of the cells marked ``# NBVAL_CHECK_OUTPUT``.
"""
from __future__ import annotations

import json
import os
import re
from pathlib import Path

import pytest

from inpaint_utils.nbrun import CHECK_MARK, is_checked_cell, notebook_problems, run_notebook, strip_notebook

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))
#: seconds a notebook may take in the smoke profile (docs/conventions.md, "Profiles": about 3 minutes on the course CPU);
#: the limit is generous so that a loaded CI machine does not fail a healthy notebook.
SMOKE_TIMEOUT = float(os.environ.get("INPAINT_NOTEBOOK_TIMEOUT", 420))
#: The papermill pass runs as a fresh clone: a shared folder that does not exist (and no INPAINT_LPIPS),
#: and a runs folder of its own beside the session's (conftest.py), which nbval's pass keeps.
HIDDEN_SHARED = Path(os.environ["INPAINT_RUNS"]).parent / "no-shared-folder"
HIDDEN_RUNS = Path(os.environ["INPAINT_RUNS"]).parent / "runs-without-shared"
#: The fresh-clone pass trains for fewer steps (its own parameters, the smoke profile's code path): it
#: proves the code paths of a clone without the shared folder (a one-image test split, a train split
#: smaller than a batch, no LPIPS weights); nbval's pass trains the full smoke runs on the real data.
#: Running both at full length made CI ~37 minutes (its target is 30).
HIDDEN_PARAMETERS: dict[str, dict[str, object]] = {
    "02_context_encoder": {"NUM_STEPS": 40},
    "03_cascade_ce_nsd": {"STEPS_CENTER": 16, "STEPS_BLOCKS": 8},
    "04_glcic": {"NUM_STEPS": 24, "T_C": 8, "T_D": 4},
    "05_contextual_attention": {"NUM_STEPS": 8},
    "08_irregular_holes": {"PCONV_STEPS": 8, "V2_STEPS": 8},
}


def test_notebooks_exist_in_order():
    names = [p.stem for p in NOTEBOOKS]
    assert names, "no notebooks found"
    assert names == sorted(names)
    assert names[:2] == ["00_data_prep", "01_masking"]


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_committed_clean(nb):
    assert notebook_problems(nb) == []


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_has_checked_output(nb):
    cells = json.loads(nb.read_text())["cells"]
    checked = [c for c in cells if is_checked_cell(c)]
    assert checked, f"{nb.name} has no {CHECK_MARK} cell for nbval to compare"
    assert all(c["outputs"] for c in checked), f"{nb.name}: a {CHECK_MARK} cell has no committed output"


@pytest.mark.notebook
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_runs_in_smoke_profile(nb, tmp_path):
    """Each notebook end to end as a user's fresh clone runs it: ``INPAINT_SHARED`` pointing at a folder
    that does not exist, so the images are scikit-image's samples (a one-image test split, a train
    split smaller than a batch) and LPIPS has no offline weights (and no network: conftest.py).

    Why this pass and not nbval's: the two passes already execute every notebook, so hiding the shared
    folder here proves the fresh clone on every ``bash .ci/run`` without a third execution, while
    nbval's pass keeps the real shared folder (when present), whose images and LPIPS weights are what
    the committed checked outputs were made with (those outputs are kept data-independent, so either
    would do, but the real data also exercises the full-size splits). The training notebooks train for fewer steps
    here (:data:`HIDDEN_PARAMETERS`, the same code path). The notebooks run in order with
    one runs folder of their own (:data:`HIDDEN_RUNS`): 07 compares the checkpoints that 02-05 trained
    without the shared folder. nbval's pass uses the session's other runs folder, so it trains its
    own smoke runs on the real data rather than resuming these (a checkpoint records the training
    set's mean colour, which differs between the two sources).
    """
    out = run_notebook(nb, tmp_path / "executed", profile="smoke", timeout=SMOKE_TIMEOUT,
                       parameters=HIDDEN_PARAMETERS.get(nb.stem),
                       env={"INPAINT_FIGURES": str(tmp_path / "figures"), "INPAINT_RUNS": str(HIDDEN_RUNS),
                            "INPAINT_SHARED": str(HIDDEN_SHARED), "INPAINT_LPIPS": ""})
    executed = json.loads(out.read_text())
    errors = [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors
    assert list((tmp_path / "figures").glob("*.png")), f"{nb.name} saved no figure"
    injected = "".join(s for c in executed["cells"] if "injected-parameters" in c["metadata"].get("tags", [])
                       for s in c["source"])
    for name, value in (HIDDEN_PARAMETERS.get(nb.stem) or {}).items():    # papermill did inject them
        assert f"{name} = {value!r}" in injected, name
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "scikit-image bundled samples" in text and "[no shared folder]" in text     # it did run without it
    assert "for real results download a dataset: bash data_download.sh" in text       # and said what to get
    first = next(o for c in executed["cells"] for o in c.get("outputs", []))    # the setup cell's data line
    first_line = "".join(first.get("text", "")).splitlines()[0]
    assert first.get("name") == "stdout" and first_line.startswith(("data source: ", "data sources: ")), first_line
    assert re.search(r"scikit-image bundled samples \(\d+ images", first_line), first_line   # which, how many



def test_notebook_00_downloads_the_course_dataset_and_02_trains_on_it_with_no_edit(tmp_path):
    """Real faces in one call, offline: notebook 00's download cell fetches from a stub kagglehub
    (tests/stubs/kagglehub.py, serving a small local archive; no network), which makes the dataset the
    course's; notebook 02 then trains and scores on those images, its parameters left as they are."""
    import zipfile

    import numpy as np
    from PIL import Image

    archive = tmp_path / "celebahq.zip"
    rng = np.random.default_rng(0)
    with zipfile.ZipFile(archive, "w") as zf:
        for i in range(24):
            face = np.kron(rng.random((8, 8, 3)), np.ones((32, 32, 1)))                   # 256 x 256 blocks
            path = tmp_path / f"{i:05d}.jpg"
            Image.fromarray((face * 255).astype(np.uint8)).save(path, quality=90)
            zf.write(path, f"celeba_hq_256/{i:05d}.jpg")
    env = {"INPAINT_FIGURES": str(tmp_path / "figures"), "INPAINT_RUNS": str(tmp_path / "runs"),
           "INPAINT_SHARED": str(HIDDEN_SHARED), "INPAINT_LPIPS": "", "INPAINT_DATA": str(tmp_path / "data"),
           "STUB_KAGGLEHUB_SOURCE": str(archive), "STUB_KAGGLEHUB_LOG": str(tmp_path / "kagglehub.log"),
           "PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "stubs"), str(ROOT), os.environ.get("PYTHONPATH", "")])}
    env.pop("INPAINT_DATASET", None)
    nb00 = ROOT / "notebooks" / "00_data_prep.ipynb"
    out = run_notebook(nb00, tmp_path / "executed", timeout=SMOKE_TIMEOUT, parameters={"DOWNLOAD": True}, env=env)
    text = "".join("".join(o.get("text", "")) for c in json.loads(out.read_text())["cells"] for o in c.get("outputs", []))
    assert "with kagglehub" in text and "the course's dataset from now on" in text
    assert "data source: dataset 'celeba-hq'" in text and "(24 images)" in text
    assert (tmp_path / "kagglehub.log").read_text().startswith("badasstechie/celebahq-resized-256x256")
    assert json.loads((tmp_path / "data" / "course_dataset.json").read_text())["dataset"] == "celeba-hq"

    nb02 = ROOT / "notebooks" / "02_context_encoder.ipynb"
    out = run_notebook(nb02, tmp_path / "executed", timeout=SMOKE_TIMEOUT, parameters={"NUM_STEPS": 4}, env=env)
    executed = json.loads(out.read_text())
    assert not [o for c in executed["cells"] for o in c.get("outputs", []) if o.get("output_type") == "error"]
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "data source: dataset 'celeba-hq'" in text and "scikit-image bundled samples" not in text


# --- the tools behind the checks above -----------------------------------------------------------

def _tiny_notebook(path: Path, cells: list[tuple[str, str, list]]) -> Path:
    nb = {"nbformat": 4, "nbformat_minor": 5, "metadata": {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"}},
          "cells": []}
    for i, (kind, src, outputs) in enumerate(cells):
        cell = {"id": f"c{i}", "cell_type": kind, "metadata": {}, "source": src}
        if kind == "code":
            cell.update(execution_count=None, outputs=outputs)
            if i == 0:
                cell["metadata"]["tags"] = ["parameters"]
        nb["cells"].append(cell)
    path.write_text(json.dumps(nb))
    return path


def test_problems_found_and_strip_keeps_checked_outputs(tmp_path):
    out = [{"output_type": "stream", "name": "stdout", "text": "0.25\n"}]
    nb = _tiny_notebook(tmp_path / "a.ipynb", [
        ("code", 'PROFILE = "smoke"', []),
        ("code", "print(1)", [{"output_type": "stream", "name": "stdout", "text": "1\n"}]),
        ("code", f"# {CHECK_MARK}\nprint(0.25)", out),
    ])
    problems = notebook_problems(nb)
    assert len(problems) == 1 and "code cell 1 carries outputs" in problems[0]
    assert strip_notebook(nb) == 1
    assert notebook_problems(nb) == []
    cells = json.loads(nb.read_text())["cells"]
    assert cells[1]["outputs"] == [] and cells[2]["outputs"][0]["text"] == "0.25\n"
    assert cells[1]["execution_count"] is None and cells[2]["execution_count"] == 1  # nbval needs the count
    assert nb.stat().st_mode & 0o777 == 0o644


def test_colab_runtime_metadata_stays_and_personal_colab_metadata_goes(tmp_path):
    nb = _tiny_notebook(tmp_path / "a.ipynb", [("code", 'PROFILE = "smoke"', [])])
    data = json.loads(nb.read_text())
    data["metadata"].update({"accelerator": "GPU", "colab": {"gpuType": "T4", "provenance": [{"x": 1}], "name": "mine"}})
    nb.write_text(json.dumps(data))
    problems = notebook_problems(nb)
    assert len(problems) == 1 and "'colab' carries 'name', 'provenance'" in problems[0]
    strip_notebook(nb)
    assert notebook_problems(nb) == []
    meta = json.loads(nb.read_text())["metadata"]
    assert meta["colab"] == {"gpuType": "T4"} and meta["accelerator"] == "GPU"


def test_parameters_cell_required(tmp_path):
    nb = _tiny_notebook(tmp_path / "b.ipynb", [("code", 'PROFILE = "full"', [])])
    assert any('PROFILE = "smoke"' in p for p in notebook_problems(nb))


def test_failing_and_slow_notebooks_are_reported(tmp_path):
    from inpaint_utils.nbrun import NotebookFailed, NotebookTimeout
    bad = _tiny_notebook(tmp_path / "bad.ipynb", [("code", 'PROFILE = "smoke"', []), ("code", "1 / 0", [])])
    with pytest.raises(NotebookFailed, match="ZeroDivisionError"):
        run_notebook(bad, tmp_path / "out", timeout=120)
    slow = _tiny_notebook(tmp_path / "slow.ipynb", [("code", 'PROFILE = "smoke"', []), ("code", "import time; time.sleep(60)", [])])
    with pytest.raises(NotebookTimeout, match="did not finish within 8 s"):
        run_notebook(slow, tmp_path / "out", timeout=8)
    ok = _tiny_notebook(tmp_path / "ok.ipynb", [("code", 'PROFILE = "smoke"\nSEED = 0', []), ("code", "print(PROFILE, SEED)", [])])
    executed = json.loads(run_notebook(ok, tmp_path / "out", parameters={"SEED": 7}, timeout=120).read_text())
    text = "".join("".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
    assert "smoke 7" in text


#: sources around the marker: only some are a marker line for nbval
MARKER_CASES = [
    f"# {CHECK_MARK}\nprint(1)",
    f"print(1)\n   ##  {CHECK_MARK}  ",                       # nbval strips spaces and every leading '#'
    f"print('{CHECK_MARK}')",                                  # the text in a string
    f"print(1)  # {CHECK_MARK}",                               # after code on the line
    f"# {CHECK_MARK} of the table\nprint(1)",                 # more words on the line
    f"# {CHECK_MARK.lower()}\nprint(1)",
    f"#{CHECK_MARK}",
    f"# {CHECK_MARK}\n# NBVAL_IGNORE_OUTPUT",                # the later marker wins
    f"# NBVAL_IGNORE_OUTPUT\n# {CHECK_MARK}",
    f"# {CHECK_MARK}\n# NBVAL_SKIP",                         # not run at all
    "print(1)",
]


@pytest.mark.parametrize("tags", [None, ["nbval-check-output"], ["nbval-ignore-output"], ["nbval-skip"], "x"])
@pytest.mark.parametrize("source", MARKER_CASES)
def test_checked_cells_follow_nbvals_own_rule(source, tags):
    from nbval.plugin import find_comment_markers, find_metadata_tags

    metadata = {} if tags is None else {"tags": tags}
    import warnings
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # nbval warns about conflicting markers
        options = dict(find_metadata_tags(metadata))
        options.update(dict(find_comment_markers(source)))
    expected = bool(options.get("check", False)) and not options.get("skip", False)    # --nbval-lax
    cell = {"cell_type": "code", "metadata": metadata, "source": source, "outputs": []}
    assert is_checked_cell(cell) == expected
    assert is_checked_cell({**cell, "source": source.splitlines(keepends=True)}) == expected  # list form
    assert not is_checked_cell({**cell, "cell_type": "markdown"})


def test_the_marker_text_outside_a_marker_line_keeps_no_output(tmp_path):
    out = [{"output_type": "stream", "name": "stdout", "text": "x\n"}]
    nb = _tiny_notebook(tmp_path / "a.ipynb", [
        ("code", 'PROFILE = "smoke"', []),
        ("code", f"print('{CHECK_MARK}')", out),                      # nbval would not compare this output
        ("code", f"x = 1  # {CHECK_MARK}\nprint(x)", out),
        ("code", f"#  {CHECK_MARK}\nprint(2)", out),                  # this one it compares
    ])
    problems = notebook_problems(nb)
    assert [p.split(": ", 1)[1].split(" (")[0] for p in problems] == ["code cell 1 carries outputs",
                                                                    "code cell 2 carries outputs"]
    assert strip_notebook(nb) == 1
    cells = json.loads(nb.read_text())["cells"]
    assert [bool(c["outputs"]) for c in cells] == [False, False, False, True]


def test_run_notebook_refuses_to_write_over_the_notebook(tmp_path, monkeypatch):
    import subprocess

    nb = _tiny_notebook(tmp_path / "a.ipynb", [("code", 'PROFILE = "smoke"', [])])
    before = nb.read_bytes()
    monkeypatch.setattr(subprocess, "Popen", lambda *a, **k: pytest.fail("papermill was started"))
    with pytest.raises(ValueError, match="holds the notebook itself"):
        run_notebook(nb, tmp_path)
    assert nb.read_bytes() == before
