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


def _params(name: str) -> str:
    return "".join(_code_cells(ROOT / "notebooks" / f"{name}.ipynb")[0]["source"])


def test_setup_cell_installs_with_the_standard_library_only():
    """Everything but ``inpaint_utils`` is standard library, and ``inpaint_utils`` (the data line, after the install)
    is imported inside ``try`` / ``except ModuleNotFoundError``."""
    allowed = set(sys.stdlib_module_names) | {"google"}
    for name in colab.EXTRAS:
        tree = ast.parse(colab.setup_source(name))
        guarded = {id(n) for t in ast.walk(tree) if isinstance(t, ast.Try)
                   and any(isinstance(h.type, ast.Name) and h.type.id == "ModuleNotFoundError" for h in t.handlers)
                   for n in t.body}
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                mods = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                mods = [node.module]
            else:
                continue
            if mods == ["inpaint_utils"]:
                assert id(node) in guarded, (name, "inpaint_utils imported outside try/except")
                continue
            assert all(m.split(".")[0] in allowed for m in mods), (name, mods)


def test_setup_cell_outside_colab_installs_nothing_even_without_the_package(tmp_path):
    """``python -I -S``: no site-packages, so neither inpaint_utils nor any third-party module is importable."""
    script = tmp_path / "setup_cell.py"
    script.write_text(_params("06_stable_diffusion") + "\n" + colab.setup_source("06_stable_diffusion")
                      + "\nprint('IN_COLAB', IN_COLAB)\n")
    proc = subprocess.run([sys.executable, "-I", "-S", str(script)], capture_output=True, text=True, timeout=60,
                          cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.splitlines() == ["inpaint_utils is not installed: pip install -e . in the checkout (or open "
                                        "this notebook in Colab)", "IN_COLAB False"]
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


@pytest.mark.parametrize("name, extras", [("06_stable_diffusion", "colab,diffusion"),
                                          ("07_comparison", "colab,diffusion"), ("02_context_encoder", "colab")])
def test_setup_cell_in_colab_installs_the_extras_and_puts_runs_on_drive(stub_colab, monkeypatch, capsys, name, extras):
    import os

    mounted, commands = stub_colab
    namespace: dict = {}
    exec(_params(name), namespace)
    exec(compile(colab.setup_source(name), name, "exec"), namespace)
    assert commands == [[sys.executable, "-m", "pip", "install", "-q",
                         f"inpaint-course[{extras}] @ git+{colab.REPO_URL}@{colab.BRANCH}"]]
    assert mounted == ["/content/drive"]
    assert os.environ["INPAINT_RUNS"] == colab.DRIVE_RUNS
    assert colab.DRIVE_RUNS in capsys.readouterr().out


def test_setup_cell_keeps_a_runs_folder_already_chosen_and_drive_can_be_declined(stub_colab, monkeypatch):
    import os

    mounted, commands = stub_colab
    monkeypatch.setenv("INPAINT_RUNS", "/content/my-runs")
    exec(_params("07_comparison") + colab.setup_source("07_comparison"), {})
    assert mounted == [] and os.environ["INPAINT_RUNS"] == "/content/my-runs" and len(commands) == 1
    monkeypatch.delenv("INPAINT_RUNS")
    exec(_params("07_comparison") + colab.setup_source("07_comparison").replace("USE_DRIVE = True", "USE_DRIVE = False"),
         {})
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


# --------------------------------------------------------------------------------------------------
# the colab extra: nothing of Colab's pinned Jupyter stack, not even through a dependency
# --------------------------------------------------------------------------------------------------
def _pyproject() -> dict:
    tomllib = pytest.importorskip("tomllib" if sys.version_info >= (3, 11) else "tomli")
    return tomllib.loads((ROOT / "pyproject.toml").read_text())


def _closure(requirements: list[str]) -> tuple[dict[str, str], list[str]]:
    """Every distribution that installing ``requirements`` pulls in, resolved from the installed packages'
    metadata (markers evaluated here, extras followed): {name: the package that required it}, and the names
    that are not installed (whose requirements could not be read)."""
    import importlib.metadata as md

    from packaging.requirements import Requirement
    from packaging.utils import canonicalize_name

    seen: dict[tuple[str, tuple[str, ...]], str] = {}
    missing: list[str] = []
    todo = [(Requirement(r), "pyproject.toml") for r in requirements]
    while todo:
        req, parent = todo.pop()
        if req.marker is not None and not any(req.marker.evaluate({"extra": e}) for e in [""]):
            continue
        key = (canonicalize_name(req.name), tuple(sorted(req.extras)))
        if key in seen:
            continue
        seen[key] = parent
        try:
            dist = md.distribution(req.name)
        except md.PackageNotFoundError:
            missing.append(key[0])
            continue
        for line in dist.requires or []:
            sub = Requirement(line)
            if sub.marker is None or any(sub.marker.evaluate({"extra": e}) for e in (req.extras or {""})):
                sub.marker = None
                todo.append((sub, key[0]))
    return {name: parent for (name, _), parent in seen.items()}, missing


def _colab_install(extras: tuple[str, ...]) -> list[str]:
    project = _pyproject()["project"]
    optional = project["optional-dependencies"]
    reqs = list(project["dependencies"])
    for extra in extras:
        assert extra in optional, f"the setup cell installs extra {extra!r}, which pyproject.toml does not define"
        reqs += optional[extra]
    return reqs


@pytest.mark.parametrize("extras", sorted(set(colab.EXTRAS.values())), ids=",".join)
def test_what_colab_installs_never_pulls_its_jupyter_stack(extras):
    assert "notebooks" not in extras
    closure, missing = _closure(_colab_install(extras))
    assert not missing, f"not installed here, so their requirements cannot be checked: {missing}"
    forbidden = {name: parent for name, parent in closure.items() if name in colab.COLAB_FORBIDDEN}
    assert not forbidden, "Colab's pinned packages pulled in (package: required by): " + str(forbidden)
    assert "torch-fidelity" in closure and "torch" in closure


def test_the_closure_check_can_fail():
    """The same resolution finds the Jupyter stack behind the notebooks extra (so the test above means something)."""
    closure, _ = _closure(_colab_install(("notebooks",)))
    assert {"jupyterlab", "ipykernel", "ipython", "jupyter-client"} <= set(closure)
    assert closure["ipython"] in {"ipywidgets", "ipykernel", "jupyterlab"}


# --------------------------------------------------------------------------------------------------
# which runtime each notebook needs: its first markdown cell, Colab's accelerator metadata
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_markdown_cell_says_which_runtime_and_gpu_notebooks_ask_colab_for_one(nb):
    notebook = json.loads(nb.read_text())
    first = notebook["cells"][0]
    assert first["cell_type"] == "markdown"
    text = " ".join("".join(first["source"]).split())
    paragraph = text[text.index("**Runtime"):]
    assert paragraph == " ".join(colab.runtime_paragraph(nb.stem).split())
    assert "A CPU is enough" in paragraph or "run on a CPU" in paragraph
    meta = notebook["metadata"]
    if nb.stem in colab.GPU_NOTEBOOKS:
        assert "GPU" in paragraph
        assert meta["accelerator"] == "GPU" and meta["colab"]["gpuType"] == "T4"
        assert meta["colab"] == {"gpuType": "T4"}                   # nothing personal
    else:
        assert "accelerator" not in meta and "colab" not in meta
    assert "06_stable_diffusion" in colab.GPU_NOTEBOOKS


def test_sync_writes_the_runtime_once_and_moves_the_gpu_metadata(tmp_path, monkeypatch):
    (tmp_path / "notebooks").mkdir()
    for name in ("02_context_encoder", "06_stable_diffusion"):
        shutil.copy(ROOT / "notebooks" / f"{name}.ipynb", tmp_path / "notebooks")
    (tmp_path / "README.md").write_text(colab.readme_section())
    assert colab.sync(tmp_path) == []                              # the committed notebooks already agree
    monkeypatch.setattr(colab, "GPU_NOTEBOOKS", ("02_context_encoder",))
    monkeypatch.setitem(colab.RUNTIME, "02_context_encoder", "**Runtime: a GPU.** Changed.")
    assert colab.sync(tmp_path) == ["notebooks/02_context_encoder.ipynb", "notebooks/06_stable_diffusion.ipynb",
                                    "README.md"]
    ce = json.loads((tmp_path / "notebooks" / "02_context_encoder.ipynb").read_text())
    sd = json.loads((tmp_path / "notebooks" / "06_stable_diffusion.ipynb").read_text())
    assert ce["metadata"]["accelerator"] == "GPU" and "accelerator" not in sd["metadata"]
    first = "".join(ce["cells"][0]["source"])
    assert first.count("**Runtime") == 1 and first.endswith("**Runtime: a GPU.** Changed.")
    assert colab.sync(tmp_path) == []                              # idempotent


# --------------------------------------------------------------------------------------------------
# each notebook's first output line: which images it uses and how many
# --------------------------------------------------------------------------------------------------
def _first_line(name: str, capsys) -> str:
    namespace: dict = {}
    capsys.readouterr()
    exec(_params(name), namespace)
    exec(colab.setup_source(name), namespace)
    out = capsys.readouterr().out
    return out.splitlines()[0]


@pytest.fixture
def stand_in_folders(tmp_path, monkeypatch):
    """A shared folder with 3 small faces and 2 scenes, and an empty data folder."""
    from PIL import Image

    shared = tmp_path / "shared"
    for sub, n in (("faces_celeba_small_89x109", 3), ("faces_celebahq_stargan2", 3), ("bsds500", 2)):
        (shared / sub).mkdir(parents=True)
        for i in range(n):
            Image.new("RGB", (40, 48), (30 * i, 80, 120)).save(shared / sub / f"{i}.png")
    monkeypatch.setenv("INPAINT_SHARED", str(shared))
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "data"))
    monkeypatch.delenv("INPAINT_DATASET", raising=False)
    return tmp_path


@pytest.mark.parametrize("nb", NOTEBOOKS, ids=lambda p: p.stem)
def test_first_output_line_says_which_images_and_how_many(nb, stand_in_folders, capsys, monkeypatch):
    line = _first_line(nb.stem, capsys)
    if nb.stem in ("01_masking", "06_stable_diffusion"):          # faces and scenes side by side
        assert line.startswith("data sources: ") and "(2 images)" in line and "(3 images)" in line, line
    else:
        assert line.startswith("data source: shared folder") and "(3 images)" in line, line
    assert "data_download.sh" in line                            # a fallback says what to download
    # once a course dataset exists (here named by INPAINT_DATASET), every notebook's first line names it
    faces = stand_in_folders / "data" / "celeba-hq"
    faces.mkdir(parents=True)
    from PIL import Image
    for i in range(4):
        Image.new("RGB", (64, 64), (10, 20 * i, 30)).save(faces / f"{i}.jpg")
    monkeypatch.setenv("INPAINT_DATASET", "celeba-hq")
    line = _first_line(nb.stem, capsys)
    assert "dataset 'celeba-hq'" in line and "(4 images)" in line, line
    if nb.stem in ("01_masking", "06_stable_diffusion"):
        assert "shared folder" in line.split("|")[1]            # the scenes keep their own source


def test_the_student_copy_of_a_gpu_notebook_opens_on_a_gpu_too():
    import nbformat

    from inpaint_utils import exercises

    for name in colab.GPU_NOTEBOOKS:
        copy, _ = exercises.make_exercise(nbformat.read(ROOT / "notebooks" / f"{name}.ipynb", as_version=4))
        assert copy.metadata["accelerator"] == "GPU" and dict(copy.metadata["colab"]) == {"gpuType": "T4"}


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
