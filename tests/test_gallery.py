"""inpaint_utils.gallery: the README's pictures of the committed results, on tiny stand-ins (records built here,
a metrics.csv, a tiny random Context Encoder checkpoint, a few generated images as the shared folder)."""
from __future__ import annotations

import pytest
import torch
from PIL import Image

from inpaint_utils import gallery
from inpaint_utils.checkpoint import save_checkpoint
from inpaint_utils.models import ContextEncoderConfig, ContextEncoderGenerator


def _bins(method, psnr, n=(3, 5), lpips=0.1):
    return [{"method": method, "area_bin": f"{10 * k}-{10 * k + 10}%", "area_lo": k / 10, "area_hi": (k + 1) / 10,
             "n": n[k], "psnr_hole": psnr + k, "lpips_hole": lpips * (k + 1)} for k in range(len(n))][::-1]


def _record(method, kind, learned_psnr, telea_psnr=20.0, **extra):
    return {"method": method, "mask_kind": kind, "rows": [],
            "by_area": _bins(method, learned_psnr) + _bins("telea", telea_psnr) + _bins("ns", telea_psnr + 0.5),
            **extra}


def test_area_bins_one_line_per_method_baselines_once_and_other_baselines_labelled():
    records = {"08_v2_thick": _record("deepfill_v2", "thick", 15.0), "08_pconv_thick": _record("pconv", "thick", 16.0),
               "08_v2_thin": _record("deepfill_v2", "thin", 17.0, telea_psnr=22.0),
               "08_other_thin": _record("pconv", "thin", 18.0, telea_psnr=25.0),       # other images: other Telea rows
               "02_ce": {"method": "ce", "mask_kind": "training", "rows": [], "by_area": None}}
    rows = gallery.area_bin_rows(records)
    assert list(rows) == ["thin", "thick"]                                  # LaMa's order, sets without rows left out
    assert list(rows["thick"]) == ["deepfill_v2", "telea", "ns", "pconv"]    # the shared baselines once
    assert list(rows["thin"]) == ["deepfill_v2", "telea", "ns", "pconv", "telea (08_other_thin)", "ns (08_other_thin)"]
    assert [r["area_lo"] for r in rows["thick"]["pconv"]] == [0.0, 0.1]      # in bin order
    fig = gallery.area_bins_figure(records)
    axes = fig.axes
    assert len(axes) == 4                                                   # (psnr, lpips) x (thin, thick)
    assert len(axes[1].lines) == 4 and len(axes[0].lines) == 6
    assert list(axes[1].lines[3].get_ydata()) == [16.0, 17.0]               # pconv's PSNR per bin, read, not typed
    assert "images per bin: 3, 5" in axes[-1].get_xlabel()
    with pytest.raises(ValueError, match="no result with per-area rows"):
        gallery.area_bins_figure({"02_ce": records["02_ce"]})
    with pytest.raises(ValueError, match="metrics must be some of"):
        gallery.area_bins_figure(records, metrics=("psnr",))


def test_training_curves_from_each_runs_metrics_and_the_missing_runs_listed(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    run = tmp_path / "runs" / "tiny_ce"
    run.mkdir(parents=True)
    (run / "metrics.csv").write_text("step,time_s,loss_rec,loss_adv,lr_g\n1,0.1,0.5,0.7,0.001\n2,0.2,0.4,,0.001\n"
                                     "3,0.3,0.3,0.6,0.001\n")
    records = {"a": {"method": "ce", "training": {"run_name": "tiny_ce", "method": "ce"}},
               "b": {"method": "ce", "training": {"run_name": "tiny_ce"}},                 # the same run: once
               "c": {"method": "glcic", "training": {"run_name": "gone", "command": "inpaint train glcic ..."}}}
    runs, missing = gallery.training_runs(records)
    assert runs == {"ce (tiny_ce)": run}
    assert missing == [{"run": "gone", "reason": f"no {tmp_path / 'runs' / 'gone' / 'metrics.csv'}",
                        "command": "inpaint train glcic ..."}]
    fig = gallery.curves_figure(runs)
    ax = fig.axes[0]
    assert [line.get_label() for line in ax.lines] == ["loss_rec", "loss_adv"]  # the losses, not time or lr
    assert list(ax.lines[1].get_xdata()) == [1, 3] and ax.get_yscale() == "log"
    with pytest.raises(ValueError, match="no run with a metrics.csv"):
        gallery.curves_figure({})


@pytest.fixture
def faces_and_a_checkpoint(tmp_path, monkeypatch):
    shared = tmp_path / "shared" / "faces_celeba_small_89x109"
    shared.mkdir(parents=True)
    for i in range(30):
        Image.new("RGB", (40, 48), (8 * i, 100, 200 - 5 * i)).save(shared / f"{i:02d}.png")
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "shared"))
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    cfg = ContextEncoderConfig.tiny(output="full", hole_size=None)
    save_checkpoint(tmp_path / "runs" / "tiny_ce" / "checkpoints" / "step_000003",
                    {"generator": ContextEncoderGenerator(cfg, seed=0)}, model_name="context_encoder",
                    config=cfg.to_dict(), step=3)
    command = "inpaint evaluate --collection faces_small --split test"
    return {"02_tiny": {"method": "ce", "checkpoint": "runs/tiny_ce/checkpoints/step_000003", "image_size": 32,
                        "command": command, "rows": []},
            "04_gone": {"method": "glcic", "checkpoint": "runs/gone/checkpoints/step_000010", "image_size": 32,
                        "command": command, "rows": [], "training": {"command": "inpaint train glcic --profile cpu"}},
            "08_telea_only": {"method": "telea", "rows": []}}


def test_grid_masked_telea_each_model_here_and_the_truth(faces_and_a_checkpoint):
    fig, missing = gallery.grid_figure(faces_and_a_checkpoint, num_images=2)
    titles = [ax.get_title() for ax in fig.axes[:4]]
    assert titles == ["masked", "telea", "ce", "ground truth"] and len(fig.axes) == 2 * 4
    assert missing == [{"method": "glcic", "reason": "no checkpoint runs/gone/checkpoints/step_000010",
                        "command": "inpaint train glcic --profile cpu"}]
    # the truth column is the test split's images, and every method kept the known pixels
    truth = torch.tensor(fig.axes[3].images[0].get_array()).float()
    assert truth.shape == (32, 32, 3)
    with pytest.raises(FileNotFoundError, match="no checkpoint of the committed results is here"):
        gallery.grid_figure({"04_gone": faces_and_a_checkpoint["04_gone"]})
    with pytest.raises(ValueError, match="num_images must be a positive int"):
        gallery.grid_figure(faces_and_a_checkpoint, num_images=0)


def test_make_figures_saves_what_it_can_and_says_why_not_for_the_rest(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    lines: list[str] = []
    made = gallery.make_figures(records={"08_v2_thick": _record("deepfill_v2", "thick", 15.0)}, out_dir=tmp_path / "f",
                                log=lines.append)
    assert made["area"] == tmp_path / "f" / "results_area_bins.png" and made["area"].stat().st_size > 1000
    assert made["curves"] is None and made["grid"] is None
    assert lines[1].startswith("results_training_curves: not made: no run with a metrics.csv")
    assert lines[2].startswith("results_grid: not made: no checkpoint of the committed results is here")
    assert sorted(p.name for p in (tmp_path / "f").iterdir()) == ["results_area_bins.png"]
    with pytest.raises(ValueError, match="unknown figure"):
        gallery.make_figures(["pictures"], records={}, out_dir=tmp_path / "f")


def test_the_committed_picture_is_listed_shown_and_drawn_from_committed_results():
    from pathlib import Path

    from inpaint_utils import report

    root = Path(__file__).resolve().parents[1]
    name = f"{gallery.FIGURES['area']}.png"
    assert (root / "figures" / name).is_file()
    assert f"`{name}`" in (root / "figures" / "README.md").read_text()
    assert f"!{name}" in (root / "figures" / ".gitignore").read_text().split()
    readme = (root / "README.md").read_text()
    assert readme.index(f"](figures/{name})") < readme.index(report.README_MARKERS[0])     # above the table
    assert gallery.area_bin_rows(), "the committed results hold no per-area rows to draw"


def test_a_baseline_scored_twice_on_the_same_images_is_drawn_once_despite_float_rounding():
    a = _record("deepfill_v2", "thin", 17.0)
    b = _record("pconv", "thin", 15.0)
    for row in b["by_area"]:                      # a second scoring run: LPIPS differs in the 9th digit
        if row["method"] == "telea":
            row["lpips_hole"] += 3e-9
    rows = gallery.area_bin_rows({"v2": a, "pconv": b})
    assert list(rows["thin"]) == ["deepfill_v2", "telea", "ns", "pconv"]
    for row in b["by_area"]:                      # a real difference is still told apart
        if row["method"] == "telea":
            row["psnr_hole"] += 0.01
    assert "telea (pconv)" in gallery.area_bin_rows({"v2": a, "pconv": b})["thin"]


def test_the_committed_results_share_their_baselines_in_the_picture():
    rows = gallery.area_bin_rows()
    for kind, methods in rows.items():
        assert not [m for m in methods if "(" in m], f"{kind}: a baseline drawn twice: {list(methods)}"
