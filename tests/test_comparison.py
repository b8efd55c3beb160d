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

    rows = replication_table(entries, loader, committed={})
    assert [r["who"] for r in rows] == ["paper", "ours", "paper", "ours"]
    assert rows[0]["l1_pct"] == 3.22 and rows[0]["psnr"] == 21.28            # Nanavati & Patel, Table 1, CelebA-HQ
    assert rows[1]["l1_pct"] == 4.0 and rows[1]["psnr"] == 19.0 and rows[1]["profile"] == "smoke"
    assert rows[1]["steps"] == 300 and rows[1]["hardware"] == "CPU x"
    assert rows[2]["nsd_mean"] == 0.56
    assert "not run" in rows[3]["data"] and "03_cascade_ce_nsd" in rows[3]["data"] and "nsd_mean" not in rows[3]


def test_replication_puts_the_committed_cpu_run_beside_the_paper():
    from inpaint_utils.comparison import REPLICATION, replication_table

    committed = {"04_glcic_cpu_network": {"rows": [{"method": "glcic", "psnr_hole": 17.5, "lpips_hole": 0.14},
                                                   {"method": "telea", "psnr_hole": 14.8, "lpips_hole": 0.15}],
                                          "method": "glcic",
                                          "training": {"profile": "cpu", "step": 1500, "command": "inpaint train glcic"},
                                          "data": "faces", "mask": "its rectangles", "hardware": "CPU y"},
                 "05_ca_cpu_hole": {"rows": [{"method": "telea", "psnr_hole": 14.9}], "method": "deepfill",
                                    "training": {"profile": "cpu", "step": 1600}}}

    def loader(name):
        raise FileNotFoundError(name)

    rows = replication_table([e for e in REPLICATION if e.table == "seed002_table2"], loader, committed)
    glcic = [r for r in rows if "GLCIC" in r["method"]]
    assert [r["who"] for r in glcic] == ["paper", "ours", "ours, committed"]
    mine = glcic[2]
    assert mine["psnr"] == 17.5 and mine["lpips"] == 0.14 and mine["mse255"] is None     # glcic's row, not Telea's
    assert mine["profile"] == "cpu" and mine["steps"] == 1500 and mine["command"] == "inpaint train glcic"
    assert "results/04_glcic_cpu_network.json" in mine["data"]
    # a baseline's row of a committed run: its numbers, not the training steps of the run's model
    telea = [r for r in rows if r["method"] == "Telea" and r["who"] == "ours, committed"]
    assert telea[0]["psnr"] == 14.9 and telea[0]["steps"] is None
    # an entry whose committed run has no row of its method says so
    ca = [r for r in rows if r["method"].startswith("CA Animals hole") and r["who"] == "ours, committed"]
    assert ca[0]["psnr"] is None and "no row 'deepfill'" in ca[0]["data"]
    # an entry whose committed run is absent gets no third row
    assert [r["who"] for r in rows if r["method"].startswith("CA Animals mosaic")] == ["paper", "ours"]
    # the real committed runs, when there are some, are read by default
    assert all(r["who"] in ("paper", "ours", "ours, committed") for r in replication_table(loader=loader))


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
    # the cascade CE paper's 0.79 is the raw estimator: beside our raw value; the standardised one is ours alone
    assert paper["nsd_mean"] == 0.79 and paper["nsd_standardised_ours"] is None
    assert ours["nsd_mean"] == 2.5 and ours["nsd_standardised_ours"] == 0.4
    # Biradar et al.'s "GLCIC" row is Yu et al.'s stable variant, not Iizuka et al.'s network: our rows get our name
    glcic = [r for r in rows if "GLCIC" in r["method"]]
    assert {r["who"] for r in glcic} >= {"paper", "ours"}
    for r in glcic:
        expected = "stable GLCIC of Yu et al." if r["who"] == "paper" else "GLCIC of Iizuka et al. (ours"
        assert r["method"].startswith(expected), r
    # Nanavati & Patel measured the CE's CelebA-HQ row on their training set: the table says so beside ours
    ce = [r for r in replication_table([e for e in REPLICATION if e.paper_data == "CelebA-HQ"
                                        and e.paper_method == "Context Encoder"], loader, committed={})]
    assert "TRAINING set" in ce[0]["note"] and ce[1]["note"] == "ours: held-out test images"
    # notebook 08's DeepFill v2 beside LaMa's rows: only our hole LPIPS, in its own column, never in LaMa's
    committed = {"08_v2_cpu_thin": {"rows": [{"method": "deepfill_v2", "lpips_hole": 0.12}], "training": {}}}
    v2 = replication_table([e for e in REPLICATION if e.table == "seed001_irregular"], loader, committed=committed)
    narrow = [r for r in v2 if "LaMa narrow" in r["method"]]
    assert [r["who"] for r in narrow] == ["paper", "ours", "ours, committed"]
    assert narrow[0]["lpips_vgg_image"] == 0.130 and narrow[0]["lpips_squeeze_hole"] is None
    assert narrow[2]["lpips_squeeze_hole"] == 0.12 and narrow[2]["lpips_vgg_image"] is None
    assert narrow[2]["masks"] == "LaMa thin set" and "our pairing" in narrow[2]["note"]


# ----------------------------------------------------------------------- own training masks vs every kind
def test_training_masks_are_drawn_by_each_models_training_code():
    import torch.nn.functional as F

    from inpaint_utils.comparison import training_masks
    from inpaint_utils.models import ContextEncoderConfig, ContextEncoderGenerator
    from inpaint_utils.models.cascade import CascadeConfig
    from inpaint_utils.models.deepfill import DeepFillConfig, DeepFillGenerator, DeepFillTask
    from inpaint_utils.models.glcic import GLCICConfig, random_holes

    # the Context Encoder: the hole its input drops (the centre window less the authors' 4 px overlap)
    ce = ContextEncoderConfig.tiny(overlap=4)
    own = training_masks("ce", ce.to_dict(), n=3, size=128)
    assert own.kind == "center" and "56x56" in own.description
    assert torch.equal(own.masks, ContextEncoderGenerator(ce).input_hole_mask(3))
    # GLCIC: its random rectangles, the same draw as the training's for the same generator
    gl = GLCICConfig.tiny()
    own = training_masks("glcic", gl.to_dict(), n=50, size=64, generator=torch.Generator().manual_seed(2))
    ref = random_holes(50, 64, gl.hole_range, gl.local_size, generator=torch.Generator().manual_seed(2)).mask
    assert own.kind == "square" and torch.equal(own.masks, ref)
    sides = own.masks.amax(dim=3)[:, 0].sum(dim=1)
    assert set(sides.tolist()) <= set(map(float, range(gl.hole_range[0], gl.hole_range[1] + 1)))
    # DeepFill v1: DeepFillTask's shrunk boxes, drawn at its 64 px and scaled to the comparison's 128 px
    df = DeepFillConfig.tiny()
    own = training_masks("deepfill", df.to_dict(), n=20, size=128, generator=torch.Generator().manual_seed(1))
    ref = DeepFillTask(DeepFillGenerator(df), None).masks(20, torch.Generator().manual_seed(1))
    assert own.masks.shape == (20, 1, 128, 128) and "scaled to 128x128" in own.description
    assert torch.equal(own.masks, F.interpolate(ref, size=(128, 128), mode="nearest"))
    assert torch.allclose(area_ratio(own.masks), area_ratio(ref))
    # a full-image cascade: the checkpoint does not say which masks it trained on
    blocks = CascadeConfig.tiny("full", fill=0.5).to_dict()
    with pytest.raises(ValueError, match="mask_kind and mask_ratio"):
        training_masks("cascade", blocks, n=2, size=128)
    own = training_masks("cascade", blocks, n=4, size=128, mask_kind="blocks", mask_ratio=(0.05, 0.25),
                         generator=torch.Generator().manual_seed(0))
    assert own.kind == "blocks" and "0.05-0.25" in own.description
    assert ((area_ratio(own.masks) > 0.03) & (area_ratio(own.masks) < 0.27)).all()
    with pytest.raises(ValueError, match="not a learned model"):
        training_masks("telea", {}, n=1, size=64)


def _centre_only(masked, mask):
    """Fills only the centre 16x16 of a 32x32 image (a centre CE): anything else is refused."""
    centre = torch.zeros_like(mask)
    centre[..., 8:24, 8:24] = 1
    if bool((mask * (1 - centre)).any()):
        raise ValueError("hole outside the centre window")
    return baselines.telea(masked, mask)


def test_own_and_other_says_which_masks_are_own_and_lists_refused_kinds():
    from inpaint_utils.comparison import compare_on_training_masks, own_and_other
    from inpaint_utils.masks import TrainingMasks
    from inpaint_utils.masks import center_mask

    images = torch.rand(3, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sets = comparison_masks(["center", "square"], [0.1, 0.25], n=3, size=32, seed=1)
    methods = {"centre CE": _centre_only, "mean": baselines.mean_fill}
    rows, _, skipped = compare_on_masks(methods, images, sets, progress=False)
    own = {"centre CE": TrainingMasks("center", "the centre 16x16", center_mask(32, 16, batch=3)),
           "mean": TrainingMasks("square", "random squares", sets["square", 0.25])}
    own_rows, own_out, own_skipped = compare_on_training_masks(methods, images, own)
    assert [r["masks"] for r in own_rows] == ["the centre 16x16", "random squares"] and not own_skipped
    assert own_rows[0]["ratio"] == pytest.approx(0.25) and own_out["centre CE"].shape == images.shape
    table = own_and_other(rows, own_rows, skipped + own_skipped, {"centre CE": "center", "mean": "square"},
                          ["psnr_hole"])
    ce = [r for r in table if r["method"] == "centre CE"]
    assert [(r["masks"], r["vs training"]) for r in ce] == [("the centre 16x16", "own masks"), ("center", "own kind"),
                                                           ("square", "other kind")]
    assert "refused" not in ce[0] and "refused" not in ce[1] and ce[0]["n"] == 3
    assert "psnr_hole" not in ce[2] and ce[2]["refused"] == "refused at every ratio"
    assert ce[2]["reason"] == "hole outside the centre window"
    mean = [r for r in table if r["method"] == "mean"]
    assert [r["vs training"] for r in mean] == ["own masks", "other kind", "own kind"]
    assert all("psnr_hole" in r and "refused" not in r for r in mean)
    by_kind = {r["kind"]: r for r in summarize([r for r in rows if r["method"] == "mean"], ("kind",), ["psnr_hole"])}
    assert mean[2]["psnr_hole"] == pytest.approx(by_kind["square"]["psnr_hole"])
    # refused on its own masks: listed as refused there too
    rows2, _, refused = compare_on_training_masks(
        methods, images, {"centre CE": TrainingMasks("square", "random squares", sets["square", 0.25])})
    assert rows2 == [] and refused[0]["masks"] == "random squares"
    first = own_and_other(rows, rows2, skipped + refused, {"centre CE": "square"}, ["psnr_hole"])[0]
    assert first["vs training"] == "own masks" and first["refused"] == "refused"
    assert first["reason"] == "hole outside the centre window" and "psnr_hole" not in first


def test_vs_training_labels_only_the_learned_methods():
    from inpaint_utils.comparison import vs_training

    rows = [{"method": "CE", "kind": "center"}, {"method": "CE", "kind": "square"}, {"method": "Telea", "kind": "center"}]
    assert [r["vs training"] for r in vs_training(rows, {"CE": "center"})] == ["own kind", "other kind", "-"]
    assert "vs training" not in rows[0]                                     # copies, the rows are left as they are
