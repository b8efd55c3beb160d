import json
from pathlib import Path

import pytest

from inpaint_utils import report


def test_format_table_aligns_and_formats():
    rows = [{"method": "telea", "psnr": 20.123, "n": 60}, {"method": "navier-stokes", "psnr": float("inf"), "n": 60}]
    text = report.format_table(rows, digits=1)
    lines = text.splitlines()
    assert lines[0].split() == ["method", "psnr", "n"]
    assert "20.1" in lines[2] and "inf" in lines[3]
    assert len({len(l) for l in lines[:2]}) == 1  # header and rule equally wide
    with pytest.raises(ValueError, match="at least one row"):
        report.format_table([])


def test_save_and_load_results(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path))
    path = report.save_results("baselines_test", [{"method": "ns", "psnr": 21.5}], profile="smoke", data="faces")
    assert path == tmp_path / "results" / "baselines_test.json"
    record = report.load_results("baselines_test")
    assert record["rows"] == [{"method": "ns", "psnr": 21.5}]
    assert record["profile"] == "smoke" and record["data"] == "faces"
    assert {"hardware", "code_version", "created", "command"} <= record.keys()
    assert json.loads(path.read_text()) == record
    with pytest.raises(ValueError, match="plain file stem"):
        report.save_results("../evil", [])
    with pytest.raises(FileNotFoundError, match="run the notebook"):
        report.load_results("nothing_here")


def test_reported_tables_are_complete():
    for key, table in report.REPORTED.items():
        assert table["source"] and table["rows"], key
        for row in table["rows"]:
            assert set(row) == set(table["columns"]), (key, row)
    telea = report.REPORTED["seed002_table2"]["rows"][0]
    assert telea["method"] == "Telea" and telea["psnr"] == 19.61
    # Nanavati & Patel's "NN-inpainting" row carries the Context Encoder's own numbers of Pathak et al.'s Table 1
    paris = [r for r in report.REPORTED["seed000_table1"]["rows"] if r["data"] == "Paris StreetView"]
    assert len(paris) == 1 and paris[0]["psnr"] == 18.58
    assert paris[0]["method"].startswith("Context Encoder of Pathak et al.") and "NN-inpainting" in paris[0]["method"]


def test_command_line_names_the_runner(monkeypatch):
    from inpaint_utils.report import command_line

    monkeypatch.setenv("INPAINT_COMMAND", "python -m inpaint_utils.nbrun run --profile smoke notebooks/02.ipynb")
    assert command_line().endswith("notebooks/02.ipynb")
    monkeypatch.delenv("INPAINT_COMMAND")
    monkeypatch.setattr("sys.argv", ["/x/site-packages/ipykernel_launcher.py", "-f", "/tmp/k.json"])
    assert "interactive notebook kernel" in command_line()
    monkeypatch.setattr("sys.argv", ["inpaint", "evaluate", "--method", "telea"])
    assert command_line() == "inpaint evaluate --method telea"


def test_results_record_versions_and_no_absolute_path(tmp_path, monkeypatch):
    import torch

    runs, data, elsewhere = tmp_path / "runs", tmp_path / "data", tmp_path / "elsewhere"
    monkeypatch.setenv("INPAINT_RUNS", str(runs))
    monkeypatch.setenv("INPAINT_DATA", str(data))
    ckpt = runs / "02_ce_smoke" / "checkpoints" / "step_000010"
    from inpaint_utils.config import project_root

    path = report.save_results(
        "paths_test", [{"method": "ce", "checkpoint": ckpt}], profile="smoke",
        data=f"dataset celeba-hq in {data / 'celeba-hq'}", figure=project_root() / "figures" / "a.png",
        other=[str(elsewhere / "x" / "img.png"), "L1/L2 in %, split 80/10/10, https://example.org/a/b"])
    text = path.read_text()
    assert str(tmp_path) not in text and str(project_root()) not in text and str(Path.home()) not in text
    record = json.loads(text)
    assert record["rows"][0]["checkpoint"] == "$INPAINT_RUNS/02_ce_smoke/checkpoints/step_000010"
    assert record["data"] == "dataset celeba-hq in $INPAINT_DATA/celeba-hq"
    assert record["figure"] == "figures/a.png"                                   # relative to the project
    assert record["other"] == [".../img.png", "L1/L2 in %, split 80/10/10, https://example.org/a/b"]
    assert set(record["versions"]) == set(report.VERSIONED) | {"python"}
    assert {"torch", "numpy", "opencv", "scikit-image", "pillow", "lpips", "torch-fidelity", "diffusers"} <= set(report.VERSIONED)
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert record["versions"]["numpy"] is not None and record["versions"]["opencv"] is not None


# ------------------------------------------------------------------ committed results (results/)

ROOT = Path(__file__).resolve().parents[1]


def _fake_record(method="glcic", psnr=(24.0, 21.0, 20.5)):
    rows = [{"method": m, "n": 100, "psnr_hole": p, "lpips_hole": 0.1 * (i + 1), "l1_pct_hole": 3.0,
             "ssim_hole": 0.5, "psnr_image": 30.0} for i, (m, p) in enumerate(zip((method, "telea", "ns"), psnr))]
    return {"rows": rows, "method": method, "num_images": 100, "image_size": 64, "data": "faces", "split": "test",
            "mask": "its holes", "hardware": "CPU x", "code_version": "abc", "created": "today",
            "command": "inpaint evaluate --method glcic",
            "training": {"step": 300, "train_time_s": 600.0, "images_per_s": 8.0, "profile": "cpu",
                         "command": "inpaint train glcic --profile cpu"}}


def test_results_table_and_readme_read_every_number_from_the_records(tmp_path):
    rows = report.results_table({"04_glcic_cpu": _fake_record()})
    assert [r["method"] for r in rows] == ["glcic", "telea", "ns"]
    assert rows[0]["steps"] == 300 and rows[0]["train_min"] == 10.0 and rows[1]["steps"] is None
    assert [r["psnr_hole"] for r in rows] == [24.0, 21.0, 20.5]
    text = report.readme_results({"04_glcic_cpu": _fake_record(), "08_v2_thin": _fake_record("deepfill_v2", (18.0, 22.5, 23.0))})
    # one row per run: the model beside Telea on the same images and masks; the provenance one click away
    assert "| [`04_glcic_cpu`](results/04_glcic_cpu.json) | glcic | 100 | 24.00 | 0.100 | 21.00 | 0.200 |" in text
    assert "| [`08_v2_thin`](results/08_v2_thin.json) | deepfill_v2 | 100 | 18.00 | 0.100 | 22.50 | 0.200 |" in text
    assert text.count("\n| [`") == 2 and "inpaint train glcic" not in text and "| ns |" not in text
    readme = tmp_path / "README.md"
    start, end = report.README_MARKERS
    readme.write_text(f"# x\n{start}\nSTALE-TABLE\n{end}\ntail\n")
    report.update_readme(readme)
    written = readme.read_text()
    assert "STALE-TABLE" not in written and written.endswith(f"{end}\ntail\n")
    readme.write_text("no markers")
    with pytest.raises(ValueError, match="results marker"):
        report.update_readme(readme)


def test_readme_results_table_agrees_with_results_folder():
    start, end = report.README_MARKERS
    text = (ROOT / "README.md").read_text()
    assert text.count(start) == 1 and text.count(end) == 1
    inside = text.split(start)[1].split(end)[0].strip()
    assert inside == report.readme_results().strip(), "README is stale: run report.update_readme()"


def test_committed_results_have_their_provenance_and_no_machine_paths():
    records = report.committed_results()
    for name, record in records.items():
        raw = (ROOT / "results" / f"{name}.json").read_text()
        for prefix in ("/work", "/tmp", "/home", "/root", "/Users"):
            assert prefix not in raw, (name, prefix)
        assert {"hardware", "code_version", "created", "command", "data", "split", "num_images", "mask",
                "versions"} <= record.keys(), name
        methods = [r["method"] for r in record["rows"]]
        assert methods == [record["method"], "telea", "ns"], name        # the model and both baselines
        assert len({r["n"] for r in record["rows"]}) == 1 and record["rows"][0]["n"] == record["num_images"]
        assert all(r.get("psnr_hole") is not None and r.get("lpips_hole") is not None for r in record["rows"]), name
        training = record["training"]
        # trained by inpaint train, or (the cascade) by its notebook in the cpu profile, stage by stage
        assert training["profile"] == "cpu" and training["command"].startswith(("inpaint train", "papermill notebooks/")), name
        if "stages" in training:
            assert training["train_time_s"] == pytest.approx(sum(s["train_time_s"] for s in training["stages"].values()))
        assert 0 < training["train_time_s"] <= 20 * 60 and training["step"] > 0, name    # 20 minutes at most
        assert record["split"].startswith("test") and "train" in training["split"], name


def test_code_version_is_dirty_for_code_not_for_results_or_readme(tmp_path, monkeypatch):
    import subprocess

    repo = tmp_path / "repo"
    (repo / "results").mkdir(parents=True)
    for name in ("code.py", "README.md", "results/a.json"):
        (repo / name).write_text("one\n")
    git = lambda *a: subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@t", *a], cwd=repo,  # noqa: E731
                                    check=True, capture_output=True)
    git("init", "-q")
    git("add", ".")
    git("commit", "-qm", "x")
    monkeypatch.setattr(report, "project_root", lambda: repo)
    clean = report.code_version()
    assert clean and not clean.endswith("+dirty") and clean != "unknown"
    (repo / "results" / "a.json").write_text("two\n")          # what scripts/cpu_runs.sh rewrites as it goes
    (repo / "README.md").write_text("two\n")
    assert report.code_version() == clean
    (repo / "code.py").write_text("two\n")
    assert report.code_version() == clean + "+dirty"


@pytest.mark.parametrize("relative", ["photos (2019)/faces", "set+/faces", "a=/faces", "x,/faces",
                                      "\U0001F4F7/faces", "run [2]/checkpoints"])
def test_portable_leaves_relative_paths_with_odd_folder_names_alone(relative):
    roots = [("/home/student", "~/")]
    assert report.portable(f"inpaint train ce --data '{relative}'", roots) == f"inpaint train ce --data '{relative}'"
    assert report.portable({"data": relative}, roots) == {"data": relative}


def test_portable_still_hides_absolute_paths_after_options_and_brackets(tmp_path):
    roots = [("/home/student", "~/")]
    deep = str(tmp_path / "a" / "b")
    assert report.portable(f"--data={deep} --x /home/student/faces ({deep})", roots) == \
        "--data=.../b --x ~/faces (.../b)"
    assert report.portable("L1/L2 80/10/10 https://example.org/a/b", roots) == "L1/L2 80/10/10 https://example.org/a/b"


def _strict(text):
    """json.loads as a strict parser: Infinity / NaN are not JSON."""
    def refuse(name):
        raise ValueError(f"not strict JSON: {name}")
    return json.loads(text, parse_constant=refuse)


def test_results_with_infinite_numbers_are_strict_json_and_read_back(tmp_path, monkeypatch):
    import math

    import numpy as np

    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path))
    rows = [{"method": "copy", "psnr_hole": float("inf"), "ssim": np.float32(1.0), "worst": -math.inf,
             "lpips": float("nan")}]
    path = report.save_results("perfect", rows, profile="smoke", data="faces")
    stored = _strict(path.read_text())
    assert stored["rows"][0]["psnr_hole"] == "inf" and stored["rows"][0]["worst"] == "-inf"
    back = report.load_results("perfect")["rows"][0]
    assert back["psnr_hole"] == math.inf and back["worst"] == -math.inf and math.isnan(back["lpips"])
    assert back["ssim"] == 1.0 and back["method"] == "copy"
    other = report.write_json(tmp_path / "x.json", {"a": [1.5, float("inf")], "name": "inf run"})
    assert _strict(other.read_text()) == {"a": [1.5, "inf"], "name": "inf run"}
    assert report.read_json(other) == {"a": [1.5, math.inf], "name": "inf run"}
    (tmp_path / "old.json").write_text('{"psnr": Infinity}')                   # files written before still read
    assert report.read_json(tmp_path / "old.json") == {"psnr": math.inf}


def test_committed_results_are_strict_json():
    for path in sorted((Path(report.project_root()) / "results").glob("*.json")):
        _strict(path.read_text())
    assert report.committed_results()
