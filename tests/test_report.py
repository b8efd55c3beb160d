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
    # seed 000's "NN-inpainting" row carries the Context Encoder's own numbers of Pathak et al.'s Table 1
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
    assert set(record["versions"]) == {"torch", "numpy", "diffusers", "opencv", "lpips", "python"}
    assert record["versions"]["torch"] == torch.__version__.split("+")[0]
    assert record["versions"]["numpy"] is not None and record["versions"]["opencv"] is not None
