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
    s = thin.strokes
    assert (s.min_times, s.max_times, s.max_width, s.max_len, s.max_angle) == (4, 50, 10, 40, 4)
    assert thin.boxes is None and thin.box_proba == 0
    assert (medium.strokes.max_times, medium.strokes.max_width, medium.strokes.max_len) == (5, 50, 100)
    b = medium.boxes
    assert (b.margin, b.bbox_min_size, b.bbox_max_size, b.min_times, b.max_times) == (0, 10, 50, 1, 5)
    assert (thick.strokes.min_times, thick.strokes.max_width, thick.strokes.max_len) == (1, 100, 200)
    b = thick.boxes
    assert (b.margin, b.bbox_min_size, b.bbox_max_size, b.min_times, b.max_times) == (10, 30, 150, 1, 3)
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

    monkeypatch.setattr(masks.lama, "_lama_boxes_one", boxes)
    monkeypatch.setattr(masks.lama, "_lama_strokes_one", strokes)
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
    monkeypatch.setattr(masks.lama, "_lama_strokes_one", lambda h, w, p, scale, rng: big)
    with pytest.raises(RuntimeError, match="no LaMa mask with a hole of at most 50%"):
        lama_mask("thin", 32, batch=1, seed=0)


def test_lama_boxes_respect_margin_and_sizes():
    rng = np.random.default_rng(0)
    p = LAMA_MASKS["thick"].boxes
    for _ in range(30):
        hole = masks.lama._lama_boxes_one(256, 256, p, 1.0, rng)
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
        patch.setattr(masks.lama, "lama_mask", no_drawing)
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


# --------------------------------------------------------------------------------------------
# FID and KID
# --------------------------------------------------------------------------------------------
from inpaint_utils import metrics, pretrained  # noqa: E402


def _exact_gaussian(mean, cov, n=50, seed=0):
    """n samples whose sample mean and sample covariance (ddof 1) are exactly ``mean`` and ``cov``."""
    rng = np.random.default_rng(seed)
    d = len(mean)
    z = rng.standard_normal((n, d))
    z -= z.mean(axis=0)
    z = z @ np.linalg.inv(np.linalg.cholesky(np.cov(z, rowvar=False))).T          # sample cov = I
    return z @ np.linalg.cholesky(np.asarray(cov, dtype=np.float64)).T + np.asarray(mean, dtype=np.float64)


def test_fid_matches_the_closed_form_on_diagonal_gaussians():
    f1 = _exact_gaussian([0, 0, 0], np.diag([1.0, 4.0, 9.0]), seed=0)
    f2 = _exact_gaussian([1, 2, 0], np.diag([4.0, 1.0, 9.0]), n=80, seed=1)
    # ||mu1 - mu2||^2 = 1 + 4 + 0; sum (sqrt s1 - sqrt s2)^2 = (1 - 2)^2 + (2 - 1)^2 + 0
    assert metrics.fid_from_features(f1, f2) == pytest.approx(7.0, abs=1e-9)
    assert metrics.fid_from_features(torch.from_numpy(f2).float(), f1) == pytest.approx(7.0, abs=1e-4)
    assert metrics.fid_from_features(f1, f1) == pytest.approx(0.0, abs=1e-9)


def test_fid_matches_the_closed_form_on_full_covariances():
    rng = np.random.default_rng(3)
    a = rng.standard_normal((4, 4))
    s1 = a @ a.T + 0.5 * np.eye(4)
    mu1, mu2 = rng.standard_normal(4), rng.standard_normal(4)
    # sigma2 = 4 sigma1: Tr (s1 s2)^1/2 = 2 Tr s1, so FID = ||dmu||^2 + Tr s1 + 4 Tr s1 - 4 Tr s1
    f1, f2 = _exact_gaussian(mu1, s1, seed=4), _exact_gaussian(mu2, 4 * s1, seed=5)
    assert metrics.fid_from_features(f1, f2) == pytest.approx(((mu1 - mu2) ** 2).sum() + np.trace(s1), rel=1e-9)
    # any two covariances against scipy's matrix square root of the product
    from scipy.linalg import sqrtm

    b = rng.standard_normal((4, 4))
    s2 = b @ b.T + 0.1 * np.eye(4)
    reference = ((mu1 - mu2) ** 2).sum() + np.trace(s1 + s2 - 2 * np.real(sqrtm(s1 @ s2)))
    assert metrics.frechet_distance(mu1, s1, mu2, s2) == pytest.approx(reference, rel=1e-8)


def test_fid_bad_input():
    with pytest.raises(ValueError, match="2-D"):
        metrics.fid_from_features(np.zeros(5), np.zeros((5, 1)))
    with pytest.raises(ValueError, match="dimensions"):
        metrics.fid_from_features(np.zeros((5, 2)), np.zeros((5, 3)))
    with pytest.raises(ValueError, match="NaN"):
        metrics.fid_from_features(np.full((5, 2), np.nan), np.zeros((5, 2)))
    with pytest.raises(ValueError, match="at least 2 samples"):
        metrics.fid_from_features(np.zeros((1, 2)), np.zeros((5, 2)))


def _kid_reference(x, y, gamma, coef0=1.0, degree=3):
    """Unbiased MMD^2 by plain loops."""
    k = lambda a, b: (gamma * float(np.dot(a, b)) + coef0) ** degree  # noqa: E731
    m = len(x)
    xx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    yy = sum(k(y[i], y[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    xy = sum(k(x[i], y[j]) for i in range(m) for j in range(m)) / (m * m)
    return xx + yy - 2 * xy


def test_kid_closed_forms_and_a_plain_reference():
    # two point masses a = (1, 0), b = (0, 2), D = 2: k(a, a) = 1.5^3, k(b, b) = 3^3, k(a, b) = 1
    a, b = np.tile([1.0, 0.0], (5, 1)), np.tile([0.0, 2.0], (5, 1))
    out = metrics.kid_from_features(a, b)
    assert out["kid"] == pytest.approx(3.375 + 27 - 2) and out["subsets"] == 1 and out["subset_size"] == 5
    rng = np.random.default_rng(0)
    x, y = rng.standard_normal((6, 3)), rng.standard_normal((6, 3)) + 0.5
    assert metrics.kid_from_features(x, y)["kid"] == pytest.approx(_kid_reference(x, y, 1 / 3), rel=1e-12)
    # subsets: each a reference value on its own subset
    big_x, big_y = rng.standard_normal((40, 3)), rng.standard_normal((30, 3)) + 0.5
    sub = metrics.kid_from_features(big_x, big_y, subsets=7, subset_size=10, seed=2)
    assert sub["subsets"] == 7 and sub["subset_size"] == 10 and sub["kid_std"] > 0
    pick = np.random.default_rng(2)
    values = [_kid_reference(big_x[pick.choice(40, 10, replace=False)], big_y[pick.choice(30, 10, replace=False)],
                             1 / 3) for _ in range(7)]
    assert sub["kid"] == pytest.approx(np.mean(values), rel=1e-12)
    assert sub == metrics.kid_from_features(big_x, big_y, subsets=7, subset_size=10, seed=2)
    with pytest.raises(ValueError, match="subsets"):
        metrics.kid_from_features(x, y, subsets=0)


def test_kid_agrees_with_torch_fidelity():
    metric_kid = pytest.importorskip("torch_fidelity.metric_kid")
    rng = np.random.default_rng(1)
    x, y = rng.standard_normal((20, 8)).astype(np.float32), rng.standard_normal((20, 8)).astype(np.float32) + 0.3
    theirs = metric_kid.kid_features_to_metric(torch.from_numpy(x), torch.from_numpy(y), kid_subsets=3,
                                               kid_subset_size=20, verbose=False)
    assert metrics.kid_from_features(x, y)["kid"] == pytest.approx(theirs["kernel_inception_distance_mean"], rel=1e-5)


class _TinyFeatures(torch.nn.Module):
    """A stand-in for Inception: uint8 images -> 8 random-conv features (no download)."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.conv = torch.nn.Conv2d(3, 8, 3, stride=2)
        self.seen = []

    def forward(self, x):
        self.seen.append(x.dtype)
        return torch.tanh(self.conv(x.float() / 255.0)).mean(dim=(2, 3))


def test_fid_kid_through_a_stand_in_extractor():
    g = torch.Generator().manual_seed(0)
    real = torch.rand(12, 3, 16, 16, generator=g)
    close = (real + 0.02 * torch.randn(12, 3, 16, 16, generator=g)).clamp(0, 1)
    far = torch.rand(10, 3, 16, 16, generator=g) * 0.3
    net = _TinyFeatures()
    same = metrics.fid_kid(real, real, feature_extractor=net, batch_size=5)
    assert set(net.seen) == {torch.uint8} and same["fid"] == pytest.approx(0.0, abs=1e-9)
    assert same["n"] == 12 and same["features"] == "custom feature extractor"
    near, away = (metrics.fid_kid(real, x, feature_extractor=net, kid_subset_size=8) for x in (close, far))
    assert near["fid"] < away["fid"] and near["kid"] < away["kid"]
    assert (away["n"], away["n_real"], away["n_fake"], away["kid_subset_size"]) == (10, 12, 10, 8)
    with torch.no_grad():                                            # the same numbers by hand
        f_real = net((real * 255).round().to(torch.uint8))
        f_far = net((far * 255).round().to(torch.uint8))
    assert away["fid"] == pytest.approx(metrics.fid_from_features(f_real, f_far), rel=1e-9)
    text = metrics.format_fid_kid(away)
    assert text.startswith("FID ") and "(N = 12 real, 10 completed" in text
    with pytest.raises(ValueError, match="images"):
        metrics.fid_kid(real * 2, real, feature_extractor=net)


def test_format_fid_kid_always_prints_n():
    assert metrics.format_fid_kid({"fid": 12.34, "n": 100}) == "FID 12.3 (N = 100)"
    assert metrics.format_fid_kid({"fid": 12.34, "kid": 0.01234, "kid_std": 0.0011, "n": 100, "kid_subsets": 100,
                                   "kid_subset_size": 50}) == \
        "FID 12.3 (N = 100); KID 0.0123 ± 0.0011 (N = 100, 100 subsets of 50)"
    with pytest.raises(ValueError, match="'n'"):
        metrics.format_fid_kid({"fid": 1.0})


@pytest.fixture
def no_inception(monkeypatch, tmp_path):
    """No Inception weights anywhere: empty torch cache and shared folder, no $INPAINT_INCEPTION."""
    monkeypatch.setattr(torch.hub, "get_dir", lambda: str(tmp_path / "hub"))
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "no_shared"))
    monkeypatch.delenv("INPAINT_INCEPTION", raising=False)
    metrics.distribution._INCEPTION_CACHE.clear()
    yield monkeypatch
    metrics.distribution._INCEPTION_CACHE.clear()


def test_inception_offline_says_what_to_download_and_where(no_inception):
    pytest.importorskip("torch_fidelity")
    no_inception.setenv("INPAINT_OFFLINE", "1")
    no_inception.setattr(pretrained, "_host_reachable", lambda *a, **k: pytest.fail("probed the network offline"))
    with pytest.raises(FileNotFoundError, match="INPAINT_OFFLINE is set") as err:
        metrics.fid_kid(torch.rand(2, 3, 16, 16), torch.rand(2, 3, 16, 16))
    text = str(err.value)
    assert metrics.INCEPTION_URL in text and "INPAINT_INCEPTION=" in text and "hub/checkpoints" in text
    no_inception.setenv("INPAINT_INCEPTION", "/nowhere/inception.pth")
    with pytest.raises(FileNotFoundError, match="/nowhere/inception.pth .from \\$INPAINT_INCEPTION.*does not exist"):
        metrics.load_inception()


def test_inception_online_fails_fast_when_unreachable_or_the_download_breaks(no_inception):
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    no_inception.delenv("INPAINT_OFFLINE", raising=False)
    no_inception.setattr(pretrained, "_host_reachable", lambda *a, **k: (False, "gaierror: no name"))
    with pytest.raises(FileNotFoundError, match="github.com cannot be reached .gaierror"):
        metrics.load_inception()
    no_inception.setattr(pretrained, "_host_reachable", lambda *a, **k: (True, ""))

    def broken(url, **kwargs):
        assert url == metrics.INCEPTION_URL
        raise OSError("connection reset")

    no_inception.setattr(fidelity, "load_state_dict_from_url", broken)
    with pytest.raises(FileNotFoundError, match="downloading it failed .OSError: connection reset"):
        metrics.load_inception()


def test_inception_loads_a_weights_file_and_rejects_a_foreign_one(no_inception, tmp_path):
    fidelity = pytest.importorskip("torch_fidelity.feature_extractor_inceptionv3")
    with no_inception.context() as patch:                            # random weights, saved as a file
        patch.setattr(fidelity.FeatureExtractorInceptionV3, "load_state_dict", lambda self, sd: None)
        patch.setattr(fidelity, "load_state_dict_from_url", lambda url, **kwargs: None)
        random_net = fidelity.FeatureExtractorInceptionV3("inception-v3-compat", ["2048"])
    torch.save(random_net.state_dict(), tmp_path / metrics.INCEPTION_FILENAME)
    no_inception.setenv("INPAINT_INCEPTION", str(tmp_path))         # a folder holding the file
    net = metrics.load_inception()
    assert net is metrics.load_inception() and not any(p.requires_grad for p in net.parameters())
    features = metrics.inception_features(torch.rand(2, 3, 16, 16), net)
    assert features.shape == (2, 2048)
    bad = tmp_path / "bad.pth"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="could not be loaded"):
        metrics.load_inception(weights=bad)


def test_a_decompression_bomb_in_the_eval_set_is_refused_unread_and_redrawn(tmp_path, monkeypatch):
    from _bad_files import write_bomb_png

    m = eval_mask_set("thin", 32, 3, seed=0, root=tmp_path)
    (folder,) = tmp_path.iterdir()
    before = _files(folder)
    write_bomb_png(folder / "0001.png")
    decoded = []
    real = Image.Image.convert
    monkeypatch.setattr(Image.Image, "convert", lambda self, *a, **k: decoded.append(self.size) or real(self, *a, **k))
    with pytest.warns(UserWarning, match=r"0001.png .*(60000x60000|DecompressionBomb).*drawn again from seed 0"):
        again = eval_mask_set("thin", 32, 3, seed=0, root=tmp_path)
    assert torch.equal(again, m) and _files(folder) == before
    assert all(size == (32, 32) for size in decoded)                # the bomb's pixels were never decoded


def test_an_eval_set_that_cannot_be_saved_is_used_from_memory(tmp_path):
    blocked = tmp_path / "a_file"
    blocked.write_text("not a folder")
    with pytest.warns(UserWarning, match=r"cannot be saved .*in memory"):
        m = eval_mask_set("medium", 32, 3, seed=2, root=blocked / "eval_masks")
    assert torch.equal(m, eval_mask_set("medium", 32, 3, seed=2, root=tmp_path / "ok"))   # the same holes
    assert blocked.read_text() == "not a folder"
