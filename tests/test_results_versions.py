"""The committed results were made with the libraries CI installs.

constraints-ci.txt pins every library whose version changes a committed number (OpenCV, numpy,
scikit-image, Pillow, LPIPS, torch-fidelity, diffusers ...); each results/*.json records the versions it
was made with (:func:`inpaint_utils.report.versions`). A result made with other versions than the pins
fails here, unless README's "Results made before the pins" table names the file, the library and the
version it was made with, and says why it is still committed.
"""
from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

from inpaint_utils import report

ROOT = Path(__file__).resolve().parents[1]
RESULTS = sorted((ROOT / "results").glob("*.json"))


def _distribution_key() -> dict[str, str]:
    """distribution name (lower case) -> the key results record it under."""
    return {name.lower(): key for key, names in report.VERSIONED.items() for name in names}


def pins() -> dict[str, str]:
    """constraints-ci.txt as {versions key: pinned version}."""
    keys = _distribution_key()
    out = {}
    for line in (ROOT / "constraints-ci.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.-]+)\s*==\s*([^\s;]+)", line)
        assert m, f"constraints-ci.txt: {line!r} is not an exact pin (name==version)"
        name = m.group(1).lower().replace("_", "-")
        key = keys.get(name) or keys.get(m.group(1).lower())
        if key is not None:
            out[key] = m.group(2)
    return out


def older() -> dict[str, str]:
    """README's "Results made before the pins" table: results file -> the "made with" cell."""
    text = (ROOT / "README.md").read_text()
    if "### Results made before the pins" not in text:
        return {}
    section = text.split("### Results made before the pins", 1)[1].split("\n#", 1)[0]
    return {m.group(1): m.group(2).strip() for m in
            re.finditer(r"^\|\s*`?(?:results/)?([\w.-]+\.json)`?\s*\|\s*([^|]*?)\s*\|", section, re.M)}


def differences(recorded: dict) -> str:
    """What a result's recorded versions differ in from the pins, as README's table writes it:
    ``opencv 5.0.0.93 (pinned 5.1.0.95); not recorded: scipy, pillow`` ("" when nothing differs)."""
    other, missing = [], []
    for key, version in pins().items():
        got = recorded.get(key)
        if got is None:
            missing.append(key)
        elif got != version:
            other.append(f"{key} {got} (pinned {version})")
    parts = other + ([f"not recorded: {', '.join(missing)}"] if missing else [])
    return "; ".join(parts)


def test_the_constraints_pin_every_library_behind_a_number():
    pinned = pins()
    for key in ("torch", "torchvision", "numpy", "scipy", "scikit-image", "pillow", "opencv", "lpips",
                "torch-fidelity", "diffusers"):
        assert key in pinned, f"constraints-ci.txt does not pin {key}"


def test_results_record_every_pinned_library():
    assert set(pins()) <= set(report.VERSIONED), "a pinned library that results/*.json do not record"


@pytest.mark.parametrize("path", RESULTS, ids=[p.name for p in RESULTS])
def test_each_committed_result_was_made_with_the_pinned_versions(path):
    diff = differences(json.loads(path.read_text()).get("versions") or {})
    listed = older().get(path.name)
    if not diff:
        assert listed is None, f"results/{path.name} was made with the pinned versions: drop its README row"
        return
    assert listed == diff, (f"results/{path.name} was made with other versions than constraints-ci.txt ({diff}): "
                            "re-make it under the pins, or give it a row in README's 'Results made before the "
                            f"pins' whose second cell is exactly: {diff}")


def test_the_table_of_older_results_names_only_committed_files():
    for name in older():
        assert (ROOT / "results" / name).exists(), f"README lists results/{name}, which is not committed"


def test_a_weekly_job_runs_the_tests_without_the_pins():
    import yaml

    workflow = yaml.safe_load((ROOT / ".github" / "workflows" / "latest.yml").read_text())
    on = workflow.get("on", workflow.get(True))          # YAML 1.1 reads a bare `on` as True
    assert "workflow_dispatch" in on and len(on["schedule"]) == 1
    (job,) = workflow["jobs"].values()
    runs = "\n".join(s.get("run", "") for s in job["steps"])
    assert "make CONSTRAINTS= test" in runs                 # the README's test command, no constraints file
    assert "constraints-ci.txt" not in runs and " -c " not in runs
    assert "pip freeze" in runs                             # what was tested is kept
