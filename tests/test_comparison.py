"""Notebook 07's comparison helpers: the same masks for every method, rows by kind and ratio, refusals."""
from __future__ import annotations

import math

import pytest
import torch

from inpaint_utils import baselines
from inpaint_utils.comparison import compare_on_masks, comparison_masks, psnr_by_ratio, summarize
from inpaint_utils.masks import area_ratio


def test_masks_are_seeded_and_hit_their_ratios():
    a = comparison_masks(["square", "irregular"], [0.1, 0.3], n=4, size=64, seed=3)
    b = comparison_masks(["square", "irregular"], [0.1, 0.3], n=4, size=64, seed=3)
    assert list(a) == [("square", 0.1), ("square", 0.3), ("irregular", 0.1), ("irregular", 0.3)]
    for key, mask in a.items():
        assert mask.shape == (4, 1, 64, 64) and torch.equal(mask, b[key])
        assert abs(float(area_ratio(mask).mean()) - key[1]) < 0.03
    assert not torch.equal(a["square", 0.1], comparison_masks(["square"], [0.1], 4, 64, seed=4)["square", 0.1])


def test_unreachable_ratios_are_left_out():
    sets = comparison_masks(["triangle", "square"], [0.3, 0.6], n=2, size=32)
    assert ("triangle", 0.6) not in sets and ("square", 0.6) in sets
    with pytest.raises(ValueError, match="no \\(kind, ratio\\) pair"):
        comparison_masks(["triangle"], [0.9], n=2, size=32)


def _refuses_big_holes(masked, mask):
    if float(area_ratio(mask).max()) > 0.2:
        raise ValueError("hole too large for this model")
    return baselines.mean_fill(masked, mask)


def test_every_method_sees_the_same_masks_and_refusals_are_recorded():
    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sets = comparison_masks(["square"], [0.1, 0.4], n=3, size=32, seed=1)
    seen = []

    def spy(masked, mask):
        seen.append(mask.clone())
        assert torch.all(masked[mask.expand_as(masked) > 0] == 0)      # the hole arrives zeroed
        return baselines.telea(masked, mask)

    rows, outputs, skipped = compare_on_masks({"spy": spy, "fussy": _refuses_big_holes, "mean": baselines.mean_fill},
                                              images, sets, progress=False)
    assert [torch.equal(m, sets[k]) for m, k in zip(seen, sets)] == [True, True]
    assert {(r["method"], r["ratio"]) for r in rows} == {("spy", 0.1), ("spy", 0.4), ("mean", 0.1), ("mean", 0.4),
                                                          ("fussy", 0.1)}
    assert skipped == [{"method": "fussy", "kind": "square", "ratio": "0.4", "reason": "hole too large for this model"}]
    row = rows[0]
    for key in ("l1_pct_hole", "l2_pct_image", "psnr_hole", "ssim_hole", "mse255_hole", "tv255_hole", "achieved"):
        assert key in row
    # the fussy method is the mean fill where it runs: identical scores
    by = {(r["method"], r["ratio"]): r for r in rows}
    assert by["fussy", 0.1]["psnr_hole"] == pytest.approx(by["mean", 0.1]["psnr_hole"])
    assert torch.equal(outputs["square", 0.1]["fussy"], outputs["square", 0.1]["mean"])
    # bigger holes are harder for Telea
    assert by["spy", 0.1]["l2_pct_image"] < by["spy", 0.4]["l2_pct_image"]


def test_summaries_weight_by_n_and_curves_sort_by_ratio():
    rows = [{"method": "a", "kind": "x", "ratio": 0.2, "achieved": 0.21, "n": 1, "psnr_hole": 10.0},
            {"method": "a", "kind": "y", "ratio": 0.2, "achieved": 0.19, "n": 3, "psnr_hole": 20.0},
            {"method": "a", "kind": "x", "ratio": 0.1, "achieved": 0.1, "n": 2, "psnr_hole": 30.0, "lpips_hole": 0.1},
            {"method": "b", "kind": "x", "ratio": 0.1, "achieved": 0.1, "n": 2, "psnr_hole": float("nan")}]
    table = summarize(rows, ("method",), ("psnr_hole", "lpips_hole"))
    a = table[0]
    assert a["n"] == 6 and a["psnr_hole"] == pytest.approx((10 + 60 + 60) / 6) and a["lpips_hole"] == pytest.approx(0.1)
    assert "psnr_hole" not in table[1]
    curves = psnr_by_ratio(rows)
    assert curves["a"] == [(pytest.approx(0.1), 30.0), (pytest.approx(0.195), pytest.approx(17.5))]
    assert "b" not in curves and not math.isnan(curves["a"][0][1])


def test_replication_reads_ours_from_saved_results_only():
    from inpaint_utils.comparison import Replication, replication_table

    entries = (Replication("seed000_table1", "Context Encoder", "CelebA-HQ", "02_context_encoder", "02_context_encoder",
                           {"method": "context encoder"}, {"l1_pct": "l1_pct_hole", "psnr": "psnr_hole"}),
               Replication("seed003_nsd", "Cascade CE", None, "03_cascade_ce_nsd", "03_cascade_ce_nsd",
                           {"method": "Cascade CE"}, {"nsd_mean": "nsd_mean"}, rows_key="nsd"))
    saved = {"02_context_encoder": {"rows": [{"method": "context encoder", "l1_pct_hole": 4.0, "psnr_hole": 19.0},
                                             {"method": "telea", "l1_pct_hole": 9.0, "psnr_hole": 12.0}],
                                    "profile": "smoke", "data": "shared:faces_small", "steps": 300,
                                    "hardware": "CPU x", "command": "papermill", "code_version": "abc"}}

    def loader(name):
        if name not in saved:
            raise FileNotFoundError(name)
        return saved[name]

    rows = replication_table(entries, loader)
    assert [r["who"] for r in rows] == ["paper", "ours", "paper", "ours"]
    assert rows[0]["l1_pct"] == 3.22 and rows[0]["psnr"] == 21.28            # seed 000 Table 1, CelebA-HQ
    assert rows[1]["l1_pct"] == 4.0 and rows[1]["psnr"] == 19.0 and rows[1]["profile"] == "smoke"
    assert rows[1]["steps"] == 300 and rows[1]["hardware"] == "CPU x"
    assert rows[2]["nsd_mean"] == 0.56
    assert "not run" in rows[3]["data"] and "03_cascade_ce_nsd" in rows[3]["data"] and "nsd_mean" not in rows[3]


def test_replication_labels_what_each_paper_row_is():
    from inpaint_utils.comparison import REPLICATION, replication_table

    saved = {"03_cascade_ce_nsd": {"nsd": [{"method": "Context Encoder", "nsd_mean": 2.5, "nsd_std": 0.1,
                                            "ours_std_mean": 0.4}]}}

    def loader(name):
        if name not in saved:
            raise FileNotFoundError(name)
        return saved[name]

    rows = replication_table([e for e in REPLICATION if e.table in ("seed003_nsd", "seed002_table2")], loader)
    ce = [r for r in rows if r["table"] == "seed003_nsd" and r["method"] == "Context Encoder"]
    paper, ours = ce
    # seed 003's 0.79 is the raw estimator: beside our raw value; the standardised one is ours alone
    assert paper["nsd_mean"] == 0.79 and paper["nsd_standardised_ours"] is None
    assert ours["nsd_mean"] == 2.5 and ours["nsd_standardised_ours"] == 0.4
    # seed 002's "GLCIC" row is Yu et al.'s stable variant, not Iizuka et al.'s network
    glcic = [r["method"] for r in rows if "GLCIC" in r["method"]]
    assert glcic and all("stable GLCIC of Yu et al." in m for m in glcic)
