"""The evaluation protocol of the field (LaMa, Suvorov et al. 2021): thin / medium / thick masks with
the 50 % rule, fixed mask sets on disk, scores binned by hole area; FID and KID with N beside them."""
from __future__ import annotations

import json
import shutil

import numpy as np
import pytest
import torch
from PIL import Image

from inpaint_utils import baselines, masks
from inpaint_utils.comparison import compare_on_masks, scores_by_area
from inpaint_utils.masks import (LAMA_KINDS, LAMA_MASKS, area_bin_label, area_bins, area_ratio, erode_mask,
                                 eval_mask_set, eval_mask_sets, lama_mask)


# --------------------------------------------------------------------------------------------
# LaMa's generators
# --------------------------------------------------------------------------------------------
def test_lama_configs_are_the_256_px_yaml_files():
    thin, medium, thick = (LAMA_MASKS[k] for k in LAMA_KINDS)
    assert (thin.strokes.min_times, thin.strokes.max_times, thin.strokes.max_width, thin.strokes.max_len) == (4, 50, 10, 40)
    assert thin.boxes is None and thin.box_proba == 0
    assert (medium.strokes.max_times, medium.strokes.max_width, medium.strokes.max_len) == (5, 50, 100)
    assert (medium.boxes.margin, medium.boxes.bbox_min_size, medium.boxes.bbox_max_size, medium.boxes.max_times) == (0, 10, 50, 5)
    assert (thick.strokes.min_times, thick.strokes.max_width, thick.strokes.max_len) == (1, 100, 200)
    assert (thick.boxes.margin, thick.boxes.bbox_min_size, thick.boxes.bbox_max_size, thick.boxes.max_times) == (10, 30, 150, 3)
    assert medium.box_proba == thick.box_proba == 0.3


@pytest.mark.parametrize("kind", LAMA_KINDS)
def test_lama_masks_are_binary_seeded_and_never_over_half(kind):
    m = lama_mask(kind, 64, batch=40, seed=1)
    assert m.shape == (40, 1, 64, 64) and m.dtype == torch.float32
    assert set(torch.unique(m).tolist()) <= {0.0, 1.0}
    share = area_ratio(m)
    assert share.min() > 0 and share.max() <= 0.5
    assert torch.equal(m, lama_mask(kind, 64, batch=40, seed=1))
    assert not torch.equal(m, lama_mask(kind, 64, batch=40, seed=2))
    assert area_ratio(lama_mask(kind, 64, batch=20, seed=1, max_hole=0.2)).max() <= 0.2


def test_thin_is_thin_and_thick_is_thick_at_every_size():
    for size in (64, 128):
        survive = {}
        for kind in LAMA_KINDS:
            m = lama_mask(kind, size, batch=30, seed=0)
            survive[kind] = float(area_ratio(erode_mask(m, size // 32)).sum() / area_ratio(m).sum())
        # strokes of 5-14 px at 256 vanish under a 2-px erosion at 64 (4 px at 128); thick ones mostly stay
        assert survive["thin"] < 0.1 < 0.3 < survive["medium"] < survive["thick"]
    # lengths scale with the image: the hole share stays about the same from 64 to 128 px
    a64, a128 = (float(area_ratio(lama_mask("thick", s, batch=60, seed=3)).mean()) for s in (64, 128))
    assert abs(a64 - a128) < 0.06


def test_mixture_rule_and_rejection(monkeypatch):
    calls = {"box": 0, "stroke": 0}
    big = np.ones((32, 32), dtype=bool)
    small = np.zeros((32, 32), dtype=bool)
    small[:4, :4] = True
    reject_first = {"on": False}

    def boxes(h, w, p, scale, rng):
        calls["box"] += 1
        return small

    def strokes(h, w, p, scale, rng):
        calls["stroke"] += 1
        return big if reject_first["on"] and calls["stroke"] == 1 else small

    monkeypatch.setattr(masks, "_lama_boxes_one", boxes)
    monkeypatch.setattr(masks, "_lama_strokes_one", strokes)
    lama_mask("thick", 32, batch=400, seed=0)
    # boxes with weight 0.3 against 1 for the strokes: p = 0.3 / 1.3 = 0.23 per mask (binomial sd 0.02)
    assert calls["box"] + calls["stroke"] == 400 and abs(calls["box"] / 400 - 0.3 / 1.3) < 0.06
    calls.update(box=0, stroke=0)
    lama_mask("thin", 32, batch=50, seed=0)
    assert calls == {"box": 0, "stroke": 50}
    calls.update(box=0, stroke=0)
    reject_first["on"] = True                                          # the first draw is all hole: drawn again
    m = lama_mask("thin", 32, batch=1, seed=0)
    assert calls["stroke"] == 2 and area_ratio(m).item() == pytest.approx(16 / 1024)
    monkeypatch.setattr(masks, "_lama_strokes_one", lambda h, w, p, scale, rng: big)
    with pytest.raises(RuntimeError, match="no LaMa mask with a hole of at most 50%"):
        lama_mask("thin", 32, batch=1, seed=0)


def test_lama_boxes_respect_margin_and_sizes():
    rng = np.random.default_rng(0)
    p = LAMA_MASKS["thick"].boxes
    for _ in range(30):
        hole = masks._lama_boxes_one(256, 256, p, 1.0, rng)
        assert hole.any() and not hole[:10].any() and not hole[-10:].any()
        assert not hole[:, :10].any() and not hole[:, -10:].any()
        rows, cols = np.nonzero(hole.any(axis=1))[0], np.nonzero(hole.any(axis=0))[0]
        assert rows[-1] - rows[0] + 1 >= 30 and cols[-1] - cols[0] + 1 >= 30


def test_lama_bad_input():
    with pytest.raises(ValueError, match="unknown LaMa mask kind 'wide'"):
        lama_mask("wide", 64)
    with pytest.raises(ValueError, match="batch"):
        lama_mask("thin", 64, batch=0)
    with pytest.raises(ValueError, match="max_hole"):
        lama_mask("thin", 64, max_hole=1.5)


# --------------------------------------------------------------------------------------------
# hole-area bins
# --------------------------------------------------------------------------------------------
def _masks_with_holes(pixels, side=20):
    """(B, 1, side, side) masks whose holes have exactly the given pixel counts (raster order)."""
    out = torch.zeros(len(pixels), 1, side * side)
    for i, k in enumerate(pixels):
        out[i, 0, :k] = 1.0
    return out.view(len(pixels), 1, side, side)


def test_area_bins_on_exactly_known_areas():
    m = _masks_with_holes([0, 39, 40, 41, 79, 80, 199, 200, 399, 400])   # of 400 pixels
    assert area_bins(m).tolist() == [0, 0, 1, 1, 1, 2, 4, 5, 9, 9]
    assert area_bins(m, bins=4).tolist() == [0, 0, 0, 0, 0, 0, 1, 2, 3, 3]
    assert [area_bin_label(k) for k in (0, 1, 9)] == ["0-10%", "10-20%", "90-100%"]
    with pytest.raises(ValueError, match="bins"):
        area_bins(m, bins=0)


def test_scores_by_area_groups_means_with_n_and_drops_empty_bins():
    m = _masks_with_holes([10, 30, 45, 90, 120, 130])                    # bins 0, 0, 1, 2, 3, 3
    scores = {"psnr_hole": torch.tensor([10.0, 20.0, 30.0, 40.0, 50.0, 70.0], dtype=torch.float64)}
    rows = scores_by_area(scores, m)
    assert [r["area_bin"] for r in rows] == ["0-10%", "10-20%", "20-30%", "30-40%"]
    assert [r["n"] for r in rows] == [2, 1, 1, 2]
    assert [r["psnr_hole"] for r in rows] == [15.0, 30.0, 40.0, 60.0]
    assert rows[0]["achieved"] == pytest.approx(20 / 400) and rows[3]["area_lo"] == pytest.approx(0.3)
    with pytest.raises(ValueError, match="shape"):
        scores_by_area({"x": torch.zeros(3)}, m)


def test_compare_on_masks_takes_fixed_sets_and_bins_by_area(tmp_path):
    images = torch.rand(4, 3, 20, 20, generator=torch.Generator().manual_seed(0))
    known = _masks_with_holes([30, 50, 60, 150])                         # bins 0, 1, 1, 3
    sets = {"known": known, "thin": eval_mask_set("thin", 20, 4, seed=0, root=tmp_path)}
    rows, outputs, skipped, area_rows = compare_on_masks({"mean": baselines.mean_fill}, images, sets,
                                                         progress=False, by_area=True)
    assert skipped == [] and [(r["kind"], r["ratio"], r["n"]) for r in rows] == [("known", None, 4), ("thin", None, 4)]
    assert set(outputs) == {"known", "thin"}
    binned = [r for r in area_rows if r["kind"] == "known"]
    assert [(r["area_bin"], r["n"]) for r in binned] == [("0-10%", 1), ("10-20%", 2), ("30-40%", 1)]
    per_image = baselines.mean_fill(images * (1 - known), known)
    completed = known * per_image + (1 - known) * images
    from inpaint_utils.metrics import psnr
    direct = psnr(completed, images, known, region="hole", reduction="none")
    assert binned[1]["psnr_hole"] == pytest.approx(float(direct[1:3].mean()))
    assert rows[0]["psnr_hole"] == pytest.approx(float(direct.mean()))
    assert sum(r["n"] for r in area_rows if r["kind"] == "thin") == 4
    # the three-item form is unchanged
    assert len(compare_on_masks({"mean": baselines.mean_fill}, images, {"known": known}, progress=False)) == 3


# --------------------------------------------------------------------------------------------
# fixed evaluation sets on disk
# --------------------------------------------------------------------------------------------
def _files(folder):
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir())}


def test_eval_set_is_saved_read_back_and_redrawn_byte_identical(tmp_path, monkeypatch):
    m = eval_mask_set("medium", 32, 5, seed=7, root=tmp_path)
    assert torch.equal(m, lama_mask("medium", 32, batch=5, seed=7))
    (folder,) = tmp_path.iterdir()
    assert folder.name == f"medium_32x32_n5_seed7_v{masks.EVAL_MASKS_VERSION}"
    before = _files(folder)
    assert sorted(before) == ["0000.png", "0001.png", "0002.png", "0003.png", "0004.png", "manifest.json"]
    manifest = json.loads(before["manifest.json"])
    assert manifest["kind"] == "medium" and manifest["seed"] == 7 and len(manifest["sha256"]) == 5
    # the PNGs are what load_mask reads: 255 = hole
    assert torch.equal(masks.load_mask(folder / "0003.png"), m[3:4])

    def no_drawing(*args, **kwargs):
        raise AssertionError("drew masks instead of reading them")

    with monkeypatch.context() as patch:                                  # a second call reads the files
        patch.setattr(masks, "lama_mask", no_drawing)
        assert torch.equal(eval_mask_set("medium", 32, 5, seed=7, root=tmp_path), m)
    shutil.rmtree(folder)                                                 # deleted: drawn again, same bytes
    assert torch.equal(eval_mask_set("medium", 32, 5, seed=7, root=tmp_path), m)
    assert _files(folder) == before


def test_tampered_eval_set_is_detected_and_redrawn_with_a_warning(tmp_path):
    m = eval_mask_set("thick", 32, 3, seed=0, root=tmp_path)
    (folder,) = tmp_path.iterdir()
    before = _files(folder)
    hole = np.asarray(Image.open(folder / "0001.png")).copy()
    hole[:4, :4] = 255 - hole[:4, :4]
    Image.fromarray(hole).save(folder / "0001.png")
    with pytest.warns(UserWarning, match=r"0001.png does not match its stored digest.*drawn again from seed 0"):
        again = eval_mask_set("thick", 32, 3, seed=0, root=tmp_path)
    assert torch.equal(again, m) and _files(folder) == before
    (folder / "0002.png").unlink()
    with pytest.warns(UserWarning, match="0002.png is missing"):
        eval_mask_set("thick", 32, 3, seed=0, root=tmp_path)
    # a manifest whose digests the generator no longer reproduces is said so
    manifest = json.loads((folder / "manifest.json").read_text())
    manifest["sha256"][0] = "0" * 64
    (folder / "manifest.json").write_text(json.dumps(manifest))
    with pytest.warns(UserWarning, match="1 of 3 redrawn masks differ from the stored digests"):
        eval_mask_set("thick", 32, 3, seed=0, root=tmp_path)
    assert _files(folder) == before


def test_eval_sets_default_to_the_runs_folder_and_take_make_mask_kinds(tmp_path):
    from inpaint_utils.config import runs_dir

    sets = eval_mask_sets(("thin", "thick"), 32, n=2, seed=5)
    assert list(sets) == ["thin", "thick"] and sets["thin"].shape == (2, 1, 32, 32)
    assert (runs_dir() / "eval_masks" / f"thin_32x32_n2_seed5_v{masks.EVAL_MASKS_VERSION}" / "manifest.json").is_file()
    square = eval_mask_set("square", 32, 3, seed=1, ratio=0.25, root=tmp_path)
    assert torch.equal(square, masks.make_mask("square", 32, 0.25, batch=3, seed=1))
    assert (tmp_path / f"square-r0.25_32x32_n3_seed1_v{masks.EVAL_MASKS_VERSION}").is_dir()
    with pytest.raises(ValueError, match="has no ratio"):
        eval_mask_set("thin", 32, 2, ratio=0.3, root=tmp_path)
    with pytest.raises(ValueError, match="needs a ratio"):
        eval_mask_set("square", 32, 2, root=tmp_path)
    with pytest.raises(ValueError, match="unknown mask kind"):
        eval_mask_set("wide", 32, 2, root=tmp_path)
    with pytest.raises(ValueError, match="n must be"):
        eval_mask_set("thin", 32, 0, root=tmp_path)
