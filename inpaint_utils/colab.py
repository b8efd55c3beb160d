"""Google Colab: the repository's address in one place, the setup cell of every notebook, README's badges.

A fork changes :data:`REPO` (and :data:`BRANCH` if needed), then runs::

    python -m inpaint_utils.colab sync     # rewrites the setup cell of every notebook and README's Colab parts
    python -m inpaint_utils.colab check    # exit 1 (and says what) when they disagree with this module

The setup cell is the second code cell of every notebook, right after ``parameters``. In Colab (where
``google.colab`` can be imported) it installs the course from :data:`REPO_URL` with the extras that
notebook needs (:data:`EXTRAS`: the ``colab`` extra, never Jupyter itself, see below) and, with
``USE_DRIVE = True``, mounts Google Drive and sets ``INPAINT_RUNS`` there, so that the checkpoints notebooks
02-05 save reach notebook 07 (each Colab notebook runs on its own machine). Anywhere else it installs
nothing. Its install part uses the standard library only (it runs before the package is installed); then it
prints the notebook's first output line, which images it uses and how many (:data:`DATA_LINES`,
``inpaint_utils.data.source_line``).

``sync`` also writes what runtime each notebook needs (:data:`RUNTIME`) as the last paragraph of its first
markdown cell, and Colab's accelerator metadata (``"accelerator": "GPU"``, ``"colab": {"gpuType": "T4"}``, as
Colab itself writes them when a GPU runtime is chosen, without its ``provenance``) into the notebooks of :data:`GPU_NOTEBOOKS`, and
removes it from the others.

**Why a ``colab`` extra.** Colab pins its own Jupyter stack (``google-colab`` requires exact versions of
``ipykernel``, ``ipython``, ``notebook``, ``jupyter_server`` ...); installing the ``notebooks`` extra there
(``jupyterlab``, ``ipykernel``) upgrades them and can break the runtime. The ``colab`` extra of
``pyproject.toml`` holds only what Colab lacks, and nothing that pulls any package of
:data:`COLAB_FORBIDDEN` in (``tests/test_colab.py`` resolves its whole closure from the installed
metadata): ``ipywidgets`` (it requires ``ipython``) and ``anywidget`` (it requires ``ipywidgets``) are left
out because Colab ships ipywidgets (the explorer's brush of notebook 07 needs anywidget: ``pip install
anywidget`` in Colab keeps Colab's ipywidgets), ``papermill`` because it pulls ``jupyter_client``, and
``kagglehub`` because Colab ships it.
"""
from __future__ import annotations

import argparse
import json
import re
import sys
import textwrap
from pathlib import Path
from typing import Sequence

__all__ = ["REPO", "BRANCH", "REPO_URL", "EXTRAS", "COLAB_FORBIDDEN", "DATA_LINES", "RUNTIME", "GPU_NOTEBOOKS",
           "DRIVE_RUNS", "SETUP_TAG", "install_spec", "badge_url", "setup_source", "runtime_paragraph",
           "readme_section", "sync", "main"]

#: The GitHub repository of the course, ``owner/name``: **a fork changes this line** (then runs ``sync``).
REPO = "inpaint-course/inpaint-course"
#: The branch Colab opens and installs from.
BRANCH = "main"
REPO_URL = f"https://github.com/{REPO}"
#: notebook -> the extras of ``pyproject.toml`` it needs beyond the base package.
EXTRAS: dict[str, tuple[str, ...]] = {
    "00_data_prep": ("colab",),
    "01_masking": ("colab",),
    "02_context_encoder": ("colab",),
    "03_cascade_ce_nsd": ("colab",),
    "04_glcic": ("colab",),
    "05_contextual_attention": ("colab",),
    "06_stable_diffusion": ("colab", "diffusion"),
    "07_comparison": ("colab", "diffusion"),
    "08_irregular_holes": ("colab",),
}
#: Packages that Colab pins and that the setup cell must never install or upgrade (not even as a dependency of
#: an extra in :data:`EXTRAS`).
COLAB_FORBIDDEN = ("jupyterlab", "notebook", "ipykernel", "jupyter-server", "jupyter-client", "ipython")
#: notebook -> the expression (over its ``parameters``) whose line the setup cell prints first: which images the
#: notebook uses and how many. Notebooks not listed print ``data.source_line(data.course_dataset(DATASET),
#: COLLECTION)``; 01 and 06 show several collections side by side, each with the course's dataset where it
#: stands in for that collection (``data.collection_dataset``).
DATA_LINES: dict[str, str] = {
    "01_masking": "data.sources_line(EVAL_COLLECTIONS)",
    "06_stable_diffusion": "data.sources_line(DATASETS)",
}
_DEFAULT_DATA_LINE = "data.source_line(data.course_dataset(DATASET), COLLECTION)"
_CPU_ONLY = ("**Runtime.** A CPU is enough for every profile: this notebook {does}, it trains no network (in Colab, "
             "the default CPU runtime).")
_TRAINS = ("**Runtime.** A CPU is enough for the `smoke` and `cpu` profiles; the `gpu` and `full` profiles need a GPU "
           "(in Colab: Runtime > Change runtime type > a GPU).")
#: notebook -> the paragraph on the runtime it needs, the last of its first markdown cell (written by ``sync``).
RUNTIME: dict[str, str] = {
    "00_data_prep": _CPU_ONLY.format(does="downloads, reads and preprocesses images"),
    "01_masking": _CPU_ONLY.format(does="draws masks and scores the classical fills"),
    "02_context_encoder": _TRAINS,
    "03_cascade_ce_nsd": _TRAINS,
    "04_glcic": _TRAINS,
    "05_contextual_attention": _TRAINS,
    "06_stable_diffusion": ("**Runtime: a GPU.** The `smoke` and `cpu` profiles run on a CPU, but their tiny random "
                            "pipelines paint noise; the real Stable Diffusion 2 and RePaint pipelines (`gpu` and `full` "
                            "profiles) need a GPU, so this notebook asks Colab for one (a T4; Runtime > Change runtime "
                            "type to change it)."),
    "07_comparison": ("**Runtime.** A CPU is enough for the `smoke` and `cpu` profiles (the checkpoints of 02-05, tiny "
                      "diffusion stand-ins); the `gpu` and `full` profiles run the real diffusion models and need a GPU "
                      "(in Colab: Runtime > Change runtime type > a GPU)."),
    "08_irregular_holes": _TRAINS,
}
#: Notebooks that need a GPU for what they are about: they carry Colab's accelerator metadata, so Colab opens them
#: on a GPU runtime. The others open on a CPU runtime (their default smoke profile runs there).
GPU_NOTEBOOKS: tuple[str, ...] = ("06_stable_diffusion",)
_RUNTIME_START = "**Runtime"
#: Where ``INPAINT_RUNS`` points on Google Drive (shared by every notebook, so 07 finds 02-05's checkpoints).
DRIVE_RUNS = "/content/drive/MyDrive/inpaint-course/runs"
#: The tag (and cell id) of the generated setup cell.
SETUP_TAG = "colab-setup"
_BADGE = "https://colab.research.google.com/assets/colab-badge.svg"
_README_START = "<!-- colab:start (generated by `python -m inpaint_utils.colab sync`; edit inpaint_utils/colab.py) -->"
_README_END = "<!-- colab:end -->"


def install_spec(extras: Sequence[str] = ("notebooks", "diffusion")) -> str:
    """The pip requirement that installs the course with ``extras`` from :data:`REPO_URL` at :data:`BRANCH`."""
    return f"inpaint-course[{','.join(extras)}] @ git+{REPO_URL}@{BRANCH}"


def badge_url(notebook: str, folder: str = "notebooks", repo: str | None = None, branch: str | None = None) -> str:
    """The address that opens ``<folder>/<notebook>.ipynb`` of ``repo`` (default :data:`REPO`) at ``branch``
    (default :data:`BRANCH`) in Colab."""
    folder = folder.strip("/")
    path = f"{folder}/{notebook}.ipynb" if folder else f"{notebook}.ipynb"
    return f"https://colab.research.google.com/github/{repo or REPO}/blob/{branch or BRANCH}/{path}"


def badge_markdown(url: str) -> str:
    """The "Open in Colab" badge that links to ``url``."""
    return f"[![Open In Colab]({_BADGE})]({url})"


def _extras(notebook: str) -> tuple[str, ...]:
    if notebook not in EXTRAS:
        raise KeyError(f"notebook {notebook!r} has no entry in inpaint_utils.colab.EXTRAS; add the extras it needs "
                       f"(known: {', '.join(EXTRAS)})")
    return EXTRAS[notebook]


def setup_source(notebook: str) -> str:
    """The body of ``notebook``'s setup cell: its install part uses the standard library only (it runs before
    the install), then it prints which images the notebook uses (:data:`DATA_LINES`)."""
    spec = install_spec(_extras(notebook))
    data_line = DATA_LINES.get(notebook, _DEFAULT_DATA_LINE)
    return f'''# Colab setup, generated by `python -m inpaint_utils.colab sync` (edit inpaint_utils/colab.py, not this cell).
# In Google Colab: installs the course ({", ".join(_extras(notebook))} extras; never Colab's own Jupyter packages) and,
# with USE_DRIVE, keeps runs/ (checkpoints, results) on Google Drive so that notebook 07 finds what 02-06 saved.
# Elsewhere it installs nothing. Then it prints which images this notebook uses and how many.
USE_DRIVE = True
try:
    import google.colab  # noqa: F401  (importable only in Colab)
    IN_COLAB = True
except ImportError:
    IN_COLAB = False
if IN_COLAB:
    import importlib
    import os
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "pip", "install", "-q", {spec!r}], check=True)
    importlib.invalidate_caches()
    if USE_DRIVE and not os.environ.get("INPAINT_RUNS"):
        from google.colab import drive

        drive.mount("/content/drive")
        os.environ["INPAINT_RUNS"] = {DRIVE_RUNS!r}
try:
    from inpaint_utils import data
except ModuleNotFoundError as err:
    if err.name != "inpaint_utils":
        raise
    print("inpaint_utils is not installed: pip install -e . in the checkout (or open this notebook in Colab)")
else:
    print({data_line})
if IN_COLAB:
    print("Colab: course installed; INPAINT_RUNS =", os.environ.get("INPAINT_RUNS", "runs/ (lost with this machine)"))
'''


def runtime_paragraph(notebook: str) -> str:
    """The paragraph of ``notebook``'s first markdown cell that says which runtime it needs (:data:`RUNTIME`)."""
    if notebook not in RUNTIME:
        raise KeyError(f"notebook {notebook!r} has no entry in inpaint_utils.colab.RUNTIME; say which runtime it needs "
                       f"(known: {', '.join(RUNTIME)})")
    return RUNTIME[notebook]


def _with_runtime(text: str, notebook: str) -> str:
    """``text`` (a first markdown cell) with its runtime paragraph replaced by, or else followed by, the wanted one."""
    paragraphs = [p for p in text.rstrip("\n").split("\n\n") if not p.lstrip().startswith(_RUNTIME_START)]
    return "\n\n".join([*paragraphs, textwrap.fill(runtime_paragraph(notebook), 115, break_on_hyphens=False)])


def _sync_metadata(nb: dict, notebook: str) -> None:
    meta = nb.setdefault("metadata", {})
    if notebook in GPU_NOTEBOOKS:
        meta["accelerator"] = "GPU"
        meta["colab"] = {"gpuType": "T4"}          # as Colab writes it (beside "provenance", which is not committed)
    else:
        meta.pop("accelerator", None)
        meta.pop("colab", None)


def readme_section() -> str:
    """README's generated paragraph on Colab: where the badges point, the install line, Drive."""
    return f"""{_README_START}
The Colab badges open the notebooks of `{REPO}` (branch `{BRANCH}`); a fork changes `REPO` in
`inpaint_utils/colab.py` and runs `python -m inpaint_utils.colab sync`, which rewrites the badges, this
paragraph and the setup cell of every notebook. That setup cell (the second code cell, after `parameters`)
installs the course in Colab with the `colab` extra (and `diffusion` for notebooks 06 and 07) and installs
nothing elsewhere; then it prints the notebook's first output line: which images it uses and how many. The
`colab` extra holds only what Colab lacks and never installs, not even as a dependency,
{", ".join(f"`{n}`" for n in COLAB_FORBIDDEN)}
(Colab pins its own Jupyter stack; upgrading it breaks the runtime), nor `ipywidgets` or `anywidget`, which
require `ipython` (Colab ships ipywidgets; the brush of notebook 07's explorer needs `pip install anywidget`
there). To install by hand, on your machine and in Colab:

```bash
pip install "{install_spec(('notebooks', 'diffusion'))}"
pip install "{install_spec(('colab', 'diffusion'))}"   # in Colab
```

Every notebook's first markdown cell says which runtime it needs: a CPU is enough for the `smoke` and `cpu`
profiles; the `gpu` and `full` profiles, and notebook 06's real diffusion pipelines, need a GPU, and notebook
{", ".join(n[:2] for n in GPU_NOTEBOOKS)} carries Colab's accelerator metadata, so Colab opens it on a GPU runtime.

Each Colab notebook runs on its own machine: with `USE_DRIVE = True` (the default of the setup cell) it
mounts Google Drive and sets `INPAINT_RUNS` to `{DRIVE_RUNS}`, so the checkpoints of
notebooks 02-05 are there for notebook 07. Notebook 07 lists every method it could not load, with the
reason and the command that makes its checkpoint.
{_README_END}"""


def _setup_cell(notebook: str) -> dict:
    return {"cell_type": "code", "execution_count": None, "id": SETUP_TAG,
            "metadata": {"tags": [SETUP_TAG]}, "outputs": [],
            "source": setup_source(notebook).splitlines(keepends=True)}


def _sync_notebook(path: Path) -> tuple[str, str | None]:
    """(current text, wanted text or ``None`` when it already agrees) of one notebook."""
    try:
        text = path.read_text(encoding="utf-8")
        nb = json.loads(text)
        cells = nb["cells"]
        code = [i for i, c in enumerate(cells) if c.get("cell_type") == "code"]
        first_tags = cells[code[0]].get("metadata", {}).get("tags", []) if code else []
    except (UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as e:   # not JSON, or not a notebook
        what = f"no {e} entry" if isinstance(e, KeyError) else f"{type(e).__name__}: {' '.join(str(e).split())}"
        raise ValueError(f"{path}: not a readable notebook ({what}); fix or restore it (git checkout -- {path.name})") \
            from None
    if not code or "parameters" not in first_tags:
        raise ValueError(f"{path}: the first code cell is not the 'parameters' cell; cannot place the setup cell")
    wanted = _setup_cell(path.stem)
    markdown = next((c for c in cells if c.get("cell_type") == "markdown"), None)
    if markdown is None or markdown is not cells[0]:
        raise ValueError(f"{path}: the first cell is not a markdown cell; cannot write which runtime it needs")
    source = _with_runtime("".join(markdown["source"]), path.stem)
    if source != "".join(markdown["source"]):
        markdown["source"] = source.splitlines(keepends=True)
    _sync_metadata(nb, path.stem)
    tagged = [i for i in code if SETUP_TAG in cells[i].get("metadata", {}).get("tags", [])]
    for i in reversed(tagged[1:]):                      # only one setup cell
        del cells[i]
    if tagged and len(code) > 1 and tagged[0] == code[1]:     # in place: keep its id and metadata
        cells[tagged[0]]["source"] = wanted["source"]
    else:
        if tagged:
            del cells[tagged[0]]
        cells.insert(code[0] + 1, wanted)
    new = json.dumps(nb, indent=1, ensure_ascii=False) + "\n"
    return text, (None if new == text else new)


_BADGE_LINK = re.compile(r"\(https://colab\.research\.google\.com/github/[^)\s]*/notebooks/([0-9A-Za-z_]+)\.ipynb\)")


def _sync_readme(path: Path) -> tuple[str, str | None]:
    text = path.read_text(encoding="utf-8")
    new = _BADGE_LINK.sub(lambda m: f"({badge_url(m.group(1))})", text)
    if _README_START in new and _README_END in new:
        start, end = new.index(_README_START), new.index(_README_END) + len(_README_END)
        new = new[:start] + readme_section() + new[end:]
    else:
        raise ValueError(f"{path}: no generated Colab section ({_README_START!r} ... {_README_END!r}); put the two "
                         "marker lines where the Colab paragraph belongs")
    return text, (None if new == text else new)


def sync(root: str | Path | None = None, check: bool = False) -> list[str]:
    """Make every ``notebooks/*.ipynb`` and ``README.md`` under ``root`` (default: the checkout) agree with
    this module: the setup cell right after ``parameters``, the badges, the install paragraph. Returns the
    files that differ(ed); with ``check`` nothing is written. A file that cannot be read as a notebook is
    named in a ``ValueError`` before anything is written."""
    from .fileio import atomic_open

    root = Path(root) if root is not None else Path(__file__).resolve().parents[1]
    targets = [*sorted((root / "notebooks").glob("[0-9][0-9]_*.ipynb")), root / "README.md"]
    wanted = {}
    for path in targets:          # every file checked first: one broken notebook names itself, nothing is written
        _, new = (_sync_readme if path.name == "README.md" else _sync_notebook)(path)
        if new is not None:
            wanted[path] = new
    if not check:
        for path, new in wanted.items():
            with atomic_open(path, "w", encoding="utf-8") as f:
                f.write(new)
    return [str(path.relative_to(root)) for path in wanted]


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m inpaint_utils.colab",
                                     description="Colab setup cells and README badges from inpaint_utils/colab.py.")
    parser.add_argument("command", choices=("sync", "check"), help="sync: rewrite them; check: say what differs")
    parser.add_argument("--root", type=Path, default=None, help="the checkout (default: this package's)")
    args = parser.parse_args(argv)
    try:
        changed = sync(args.root, check=args.command == "check")
    except (OSError, ValueError, KeyError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    if args.command == "check":
        if changed:
            print("out of date (run: python -m inpaint_utils.colab sync): " + ", ".join(changed), file=sys.stderr)
            return 1
        print("notebooks and README agree with inpaint_utils/colab.py")
        return 0
    print("rewrote: " + ", ".join(changed) if changed else "nothing to change")
    return 0


if __name__ == "__main__":
    sys.exit(main())
