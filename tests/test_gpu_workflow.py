"""The weekly GPU workflow (.github/workflows/gpu-notebooks.yml) and the one script it calls
(scripts/run_notebooks.sh): the workflow's triggers, runner labels, script call and artifact upload;
the script's syntax, --help, --dry-run, and a real run of two tiny notebooks (one failing)."""
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
WORKFLOW = ROOT / ".github" / "workflows" / "gpu-notebooks.yml"
SCRIPT = ROOT / "scripts" / "run_notebooks.sh"


def script(*args, timeout=60, **kwargs):
    return subprocess.run(["bash", str(SCRIPT), *args], capture_output=True, text=True, timeout=timeout, **kwargs)


# ---------------------------------------------------------------------------------------- workflow

@pytest.fixture(scope="module")
def workflow():
    return yaml.safe_load(WORKFLOW.read_text())


def test_workflow_triggers_manual_and_weekly(workflow):
    on = workflow.get("on", workflow.get(True))          # YAML 1.1 reads a bare `on` as True
    assert "workflow_dispatch" in on
    (schedule,) = on["schedule"]
    minute, hour, day, month, weekday = schedule["cron"].split()
    assert day == "*" and month == "*" and weekday != "*"   # once a week


def test_workflow_runs_the_script_on_a_gpu_runner_and_uploads_artifacts(workflow):
    (job,) = workflow["jobs"].values()
    assert job["runs-on"] == ["self-hosted", "linux", "x64", "gpu"]
    assert job["timeout-minutes"] >= 60
    runs = [s.get("run", "") for s in job["steps"]]
    assert sum("scripts/run_notebooks.sh --profile gpu" in r for r in runs) == 1
    uploads = [s for s in job["steps"] if s.get("uses", "").startswith("actions/upload-artifact@")]
    assert len(uploads) == 1 and uploads[0]["if"] == "always()"   # failed notebooks are uploaded too
    paths = uploads[0]["with"]["path"].split()
    assert {"runs/gpu/*.ipynb", "runs/gpu/summary.md", "runs/gpu/summary.json", "figures/", "runs/results/"} <= set(paths)


def test_make_gpu_calls_the_script():
    if shutil.which("make") is None:
        pytest.skip("make is not installed")
    done = subprocess.run(["make", "-n", "gpu"], cwd=ROOT, capture_output=True, text=True, timeout=30)
    assert done.returncode == 0 and "scripts/run_notebooks.sh --profile gpu" in done.stdout


# ------------------------------------------------------------------------------------------ script

def test_script_is_executable_bash_with_strict_mode():
    assert os.access(SCRIPT, os.X_OK)
    text = SCRIPT.read_text()
    assert text.startswith("#!/usr/bin/env bash") and "set -euo pipefail" in text
    assert subprocess.run(["bash", "-n", str(SCRIPT)], capture_output=True, timeout=30).returncode == 0


def test_script_help_and_bad_options():
    done = script("--help")
    assert done.returncode == 0 and "--dry-run" in done.stdout and "--profile" in done.stdout
    bad = script("--profile", "huge", "--dry-run")
    assert bad.returncode == 2 and "must be smoke, gpu or full" in bad.stderr
    assert script("--frobnicate").returncode == 2
    assert script("--dry-run", "notebooks/nope.ipynb").returncode == 2


def test_dry_run_lists_every_notebook_and_runs_nothing(tmp_path):
    out = tmp_path / "gpu out"
    done = script("--profile", "gpu", "--dry-run", "--out", str(out))
    assert done.returncode == 0, done.stderr
    notebooks = sorted((ROOT / "notebooks").glob("*.ipynb"))
    lines = done.stdout.splitlines()
    assert f"{len(notebooks)} notebook(s)" in lines[0]
    runs = [line for line in lines if "inpaint_utils.nbrun run" in line]
    assert len(runs) == len(notebooks)
    for line, nb in zip(runs, notebooks):
        assert "--profile gpu" in line and line.endswith(f"notebooks/{nb.name}")
        assert "gpu\\ out" in line                                   # paths are shell-quoted
    assert any("make install CONSTRAINTS=" in line for line in lines)
    assert "-m pytest notebooks" in lines[-1]                        # then nbval
    assert not out.exists()


def _notebook(path: Path, source: str) -> Path:
    import nbformat

    nb = nbformat.v4.new_notebook()
    params = nbformat.v4.new_code_cell('PROFILE = "smoke"')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(source)]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    nbformat.write(nb, str(path))
    return path


@pytest.mark.notebook
def test_a_failing_notebook_does_not_stop_the_others_and_the_summary_says_which(tmp_path):
    bad = _notebook(tmp_path / "a_bad.ipynb", "raise ValueError('this notebook fails')")
    good = _notebook(tmp_path / "b_good.ipynb", "print('profile', PROFILE)")
    out = tmp_path / "out"
    done = script("--profile", "smoke", "--python", sys.executable, "--no-nbval", "--out", str(out), str(bad),
                  str(good), timeout=300)
    assert done.returncode == 1, done.stdout[-3000:] + done.stderr[-3000:]
    summary = json.loads((out / "summary.json").read_text())
    assert summary["profile"] == "smoke" and summary["failed"] == ["a_bad"]
    assert [(r["notebook"], r["status"]) for r in summary["notebooks"]] == [("a_bad", "failed"), ("b_good", "passed")]
    assert all(isinstance(r["seconds"], int) and r["seconds"] >= 0 for r in summary["notebooks"])
    assert "| b_good | passed |" in (out / "summary.md").read_text()
    assert "this notebook fails" in (out / "logs" / "a_bad.log").read_text()
    executed = json.loads((out / "b_good.ipynb").read_text())
    assert any("profile smoke" in "".join(o.get("text", "")) for c in executed["cells"] for o in c.get("outputs", []))
