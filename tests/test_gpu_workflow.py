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


# ------------------------------------------------------------------ scripts/gpu_check.sh (the device check)

GPU_CHECK = ROOT / "scripts" / "gpu_check.sh"


def gpu_check(*args, timeout=60):
    return subprocess.run(["bash", str(GPU_CHECK), *args], capture_output=True, text=True, timeout=timeout)


def _dry_run_steps() -> dict[str, list[str]]:
    import shlex
    done = gpu_check("--dry-run", "--python", sys.executable, "--steps", "7")
    assert done.returncode == 0, done.stderr
    return {line.split()[0]: shlex.split(line[len(line.split()[0]):]) for line in done.stdout.splitlines()[1:]}


def test_gpu_check_syntax_help_and_bad_options():
    assert os.access(GPU_CHECK, os.X_OK)
    assert subprocess.run(["bash", "-n", str(GPU_CHECK)], capture_output=True, timeout=30).returncode == 0
    assert "--dry-run" in gpu_check("--help").stdout
    for bad in (["--steps", "0"], ["--steps", "x"], ["--step-timeout", "-3"], ["--frobnicate"]):
        done = gpu_check(*bad, "--dry-run")
        assert done.returncode == 2, bad


def test_gpu_check_covers_the_training_notebooks_benchmarks_and_one_process_training():
    steps = _dry_run_steps()
    assert list(steps) == ["env", "pytest-gpu", "nb-02", "nb-03", "nb-04", "nb-05", "bench-ce", "bench-ca", "bench-train",
                           "train-nproc1"]
    for name in ("nb-02", "nb-03", "nb-04", "nb-05"):
        assert steps[name][steps[name].index("--profile") + 1] == "gpu"
    assert steps["pytest-gpu"][-3:] == ["-m", "gpu", "tests"]
    train = steps["train-nproc1"]
    assert train[train.index("--nproc") + 1] == "1" and train[train.index("--steps") + 1] == "7"
    assert "cuda" in steps["bench-ce"] and "cuda" in steps["bench-ca"] and "cuda" in steps["bench-train"]


def test_gpu_check_passes_only_parameters_the_notebooks_have():
    import ast
    steps = _dry_run_steps()
    for name in ("nb-02", "nb-03", "nb-04", "nb-05"):
        cmd = steps[name]
        nb = next(a for a in cmd if a.endswith(".ipynb"))
        cells = json.loads((ROOT / nb).read_text())["cells"]
        params = next(c for c in cells if "parameters" in c["metadata"].get("tags", []))
        names = {t.id for node in ast.parse("".join(params["source"])).body if isinstance(node, ast.Assign)
                 for t in node.targets if isinstance(t, ast.Name)}
        passed = {cmd[i + 1].split("=")[0] for i, a in enumerate(cmd) if a == "-p"}
        assert passed and passed <= names, f"{nb}: {sorted(passed - names)} are not parameters of the notebook"


def test_gpu_check_uses_only_options_the_benchmarks_and_cli_accept():
    steps = _dry_run_steps()
    for name in ("bench-ce", "bench-ca", "bench-train", "train-nproc1"):
        cmd = steps[name]
        options = [a for a in cmd if a.startswith("--")]
        helpcmd = cmd[:cmd.index("--data")] + ["--help"] if name == "train-nproc1" else cmd[:2] + ["--help"]
        done = subprocess.run([sys.executable if a == sys.executable else a for a in helpcmd], cwd=ROOT,
                              capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stderr
        assert all(o in done.stdout for o in options), (name, [o for o in options if o not in done.stdout])


def test_gpu_check_refuses_without_a_gpu(tmp_path):
    import torch
    if torch.cuda.is_available():
        pytest.skip("a CUDA GPU is visible: the refusal is for machines without one")
    done = gpu_check("--python", sys.executable, "--out", str(tmp_path / "out"))
    assert done.returncode == 2 and "no CUDA GPU visible" in done.stderr
    assert not (tmp_path / "out").exists()
