"""inpaint_utils.colab: the repository URL in one place, the generated setup cell of every notebook (run with a
stub ``google.colab`` module, and without one), README's badges and install line agreeing with the generator."""
from __future__ import annotations

import ast
import json
import shutil
import subprocess
import sys
import types
from pathlib import Path

import pytest

from inpaint_utils import colab

ROOT = Path(__file__).resolve().parents[1]
NOTEBOOKS = sorted((ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))


def _code_cells(path: Path) -> list[dict]:
    return [c for c in json.loads(path.read_text())["cells"] if c["cell_type"] == "code"]


def test_notebooks_and_readme_agree_with_the_generator():
    assert colab.sync(ROOT, check=True) == [], "run: python -m inpaint_utils.colab sync"
    assert {p.stem for p in NOTEBOOKS} == set(colab.EXTRAS)


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_second_code_cell_is_the_setup_cell(nb):
    first, second = _code_cells(nb)[:2]
    assert "parameters" in first["metadata"]["tags"]
    assert colab.SETUP_TAG in second["metadata"]["tags"]
    assert "".join(second["source"]) == colab.setup_source(nb.stem)
    assert second["outputs"] == [] and second["execution_count"] is None


def test_readme_badges_and_install_line_come_from_the_one_place():
    readme = (ROOT / "README.md").read_text()
    for nb in NOTEBOOKS:
        assert f"]({colab.badge_url(nb.stem)})" in readme
    assert readme.count("colab.research.google.com/github/") == len(NOTEBOOKS)
    assert f'pip install "{colab.install_spec(("notebooks", "diffusion"))}"' in readme
    assert "inpaint-course[notebooks,diffusion] @ git+https://github.com/" in readme


def test_setup_cell_uses_only_the_standard_library():
    allowed = set(sys.stdlib_module_names) | {"google"}
    for name in colab.EXTRAS:
        tree = ast.parse(colab.setup_source(name))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module]
            else:
                continue
            assert all(m.split(".")[0] in allowed for m in mods), (name, mods)


def test_setup_cell_outside_colab_does_nothing_even_without_the_package(tmp_path):
    """``python -I -S``: no site-packages, so neither inpaint_utils nor any third-party module is importable."""
    script = tmp_path / "setup_cell.py"
    script.write_text(colab.setup_source("06_stable_diffusion") + "\nprint('IN_COLAB', IN_COLAB)\n")
    proc = subprocess.run([sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "IN_COLAB False"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["setup_cell.py"]


@pytest.fixture
def stub_colab(monkeypatch):
    """A stub ``google.colab`` (with ``drive.mount`` recording its calls) and a recording ``subprocess.run``."""
    mounted, commands = [], []
    google = types.ModuleType("google")
    google.__path__ = []
    mod = types.ModuleType("google.colab")
    drive = types.ModuleType("google.colab.drive")
    drive.mount = lambda where, **kw: mounted.append(where)
    mod.drive = drive
    google.colab = mod
    for name, m in (("google", google), ("google.colab", mod), ("google.colab.drive", drive)):
        monkeypatch.setitem(sys.modules, name, m)
    monkeypatch.setattr(subprocess, "run", lambda cmd, **kw: commands.append(cmd))
    monkeypatch.delenv("INPAINT_RUNS", raising=False)
    return mounted, commands


@pytest.mark.parametrize("name, extras", [("06_stable_diffusion", "notebooks,diffusion"),
                                          ("07_comparison", "notebooks,diffusion"), ("02_context_encoder", "notebooks")])
def test_setup_cell_in_colab_installs_the_extras_and_puts_runs_on_drive(stub_colab, monkeypatch, capsys, name, extras):
    import os

    mounted, commands = stub_colab
    exec(compile(colab.setup_source(name), name, "exec"), {})
    assert commands == [[sys.executable, "-m", "pip", "install", "-q",
                         f"inpaint-course[{extras}] @ git+{colab.REPO_URL}@{colab.BRANCH}"]]
    assert mounted == ["/content/drive"]
    assert os.environ["INPAINT_RUNS"] == colab.DRIVE_RUNS
    assert colab.DRIVE_RUNS in capsys.readouterr().out


def test_setup_cell_keeps_a_runs_folder_already_chosen_and_drive_can_be_declined(stub_colab, monkeypatch):
    import os

    mounted, commands = stub_colab
    monkeypatch.setenv("INPAINT_RUNS", "/content/my-runs")
    exec(colab.setup_source("07_comparison"), {})
    assert mounted == [] and os.environ["INPAINT_RUNS"] == "/content/my-runs" and len(commands) == 1
    monkeypatch.delenv("INPAINT_RUNS")
    exec(colab.setup_source("07_comparison").replace("USE_DRIVE = True", "USE_DRIVE = False"), {})
    assert mounted == [] and "INPAINT_RUNS" not in os.environ and len(commands) == 2


def test_a_fork_changes_one_line_and_sync_rewrites_everything(tmp_path, monkeypatch):
    for nb in NOTEBOOKS[:2]:
        (tmp_path / "notebooks").mkdir(exist_ok=True)
        shutil.copy(nb, tmp_path / "notebooks" / nb.name)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    monkeypatch.setattr(colab, "REPO", "someone/my-fork")
    monkeypatch.setattr(colab, "REPO_URL", "https://github.com/someone/my-fork")
    changed = colab.sync(tmp_path, check=True)
    assert changed == [f"notebooks/{NOTEBOOKS[0].name}", f"notebooks/{NOTEBOOKS[1].name}", "README.md"]
    assert colab.main(["check", "--root", str(tmp_path)]) == 1
    assert colab.main(["sync", "--root", str(tmp_path)]) == 0
    assert colab.sync(tmp_path, check=True) == []
    readme = (tmp_path / "README.md").read_text()
    assert "inpaint-course/inpaint-course" not in readme and "github/someone/my-fork/blob/main/notebooks" in readme
    cell = "".join(_code_cells(tmp_path / "notebooks" / NOTEBOOKS[0].name)[1]["source"])
    assert "git+https://github.com/someone/my-fork@main" in cell
    assert len(_code_cells(tmp_path / "notebooks" / NOTEBOOKS[0].name)) == len(_code_cells(NOTEBOOKS[0]))


def test_sync_inserts_the_cell_after_parameters_and_refuses_a_notebook_without_one(tmp_path):
    nb = {"cells": [{"cell_type": "markdown", "id": "a", "metadata": {}, "source": ["# t"]},
                    {"cell_type": "code", "id": "p", "metadata": {"tags": ["parameters"]}, "execution_count": None,
                     "outputs": [], "source": ['PROFILE = "smoke"']},
                    {"cell_type": "code", "id": "b", "metadata": {}, "execution_count": None, "outputs": [],
                     "source": ["x = 1"]}],
          "metadata": {}, "nbformat": 4, "nbformat_minor": 5}
    (tmp_path / "notebooks").mkdir()
    path = tmp_path / "notebooks" / "01_masking.ipynb"
    path.write_text(json.dumps(nb))
    (tmp_path / "README.md").write_text(colab.readme_section())
    assert colab.sync(tmp_path) == ["notebooks/01_masking.ipynb"]
    cells = json.loads(path.read_text())["cells"]
    assert [c.get("id") for c in cells] == ["a", "p", colab.SETUP_TAG, "b"]
    assert colab.sync(tmp_path) == []                                          # idempotent
    nb["cells"][1]["metadata"] = {}
    path.write_text(json.dumps(nb))
    with pytest.raises(ValueError, match="not the 'parameters' cell"):
        colab.sync(tmp_path)
    nb["cells"][1]["metadata"] = {"tags": ["parameters"]}
    (tmp_path / "notebooks" / "99_new.ipynb").write_text(json.dumps(nb))
    path.unlink()
    with pytest.raises(KeyError, match="no entry in inpaint_utils.colab.EXTRAS"):
        colab.sync(tmp_path)


@pytest.mark.parametrize("content", ['{"cells": [', "[1, 2]", '{"metadata": {}}', '{"cells": "x = 1"}',
                                     '{"cells": [{"cell_type": "code", "metadata": []}]}'])
def test_sync_names_a_broken_notebook_and_writes_nothing(tmp_path, capsys, content):
    (tmp_path / "notebooks").mkdir()
    good = tmp_path / "notebooks" / NOTEBOOKS[0].name
    shutil.copy(NOTEBOOKS[0], good)
    text = good.read_text()
    good.write_text(text.replace(colab.SETUP_TAG, "old-setup"))     # out of date: sync would rewrite it
    before = good.read_text()
    broken = tmp_path / "notebooks" / "99_broken.ipynb"
    broken.write_text(content)
    shutil.copy(ROOT / "README.md", tmp_path / "README.md")
    assert colab.main(["sync", "--root", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert str(broken) in err and "not a readable notebook" in err and len(err.splitlines()) == 1
    assert good.read_text() == before and broken.read_text() == content
