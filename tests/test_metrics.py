import math

import numpy as np
import pytest
import torch

from inpaint_utils import metrics, pretrained
from inpaint_utils.config import shared_data_root


def _const_pair(err=0.1, batch=1, size=4):
    target = torch.full((batch, 3, size, size), 0.5)
    return target + err, target


def _hole_mask(batch=1, size=4):
    mask = torch.zeros(batch, 1, size, size)
    mask[..., 1:3, 1:3] = 1  # 4 hole pixels out of 16
    return mask


# --------------------------------------------------------------------------------------------------
# L1 / L2 / PSNR by hand
# --------------------------------------------------------------------------------------------------
def test_constant_error_by_hand():
    pred, target = _const_pair(0.1)
    assert metrics.l1(pred, target).item() == pytest.approx(0.1, abs=1e-6)
    assert metrics.l2(pred, target).item() == pytest.approx(0.01, abs=1e-7)
    assert metrics.mse is metrics.l2
    assert metrics.psnr(pred, target).item() == pytest.approx(20.0, abs=1e-4)


def test_scales():
    pred, target = _const_pair(0.1)
    assert metrics.l1(pred, target, scale="percent").item() == pytest.approx(10.0, abs=1e-4)
    assert metrics.l2(pred, target, scale="percent").item() == pytest.approx(1.0, abs=1e-5)  # 1 % = MSE 0.01
    assert metrics.l1(pred, target, scale="255").item() == pytest.approx(25.5, abs=1e-3)
    assert metrics.l2(pred, target, scale="255").item() == pytest.approx(650.25, abs=1e-2)
    for scale in ("unit", "percent", "255"):  # data range follows the scale: PSNR does not change
        assert metrics.psnr(pred, target, scale=scale).item() == pytest.approx(20.0, abs=1e-4)


def test_regions_on_a_known_mask():
    target = torch.zeros(1, 3, 4, 4)
    pred = target.clone()
    pred[..., 1:3, 1:3] = 0.2  # the 2x2 hole, error 0.2
    pred[..., 0, 0] = 0.4  # one known pixel, error 0.4
    mask = _hole_mask()
    assert metrics.l1(pred, target, mask, "hole").item() == pytest.approx(0.2, abs=1e-6)
    assert metrics.l1(pred, target, mask, "known").item() == pytest.approx(0.4 / 12, abs=1e-6)
    assert metrics.l1(pred, target, mask, "image").item() == pytest.approx((4 * 0.2 + 0.4) / 16, abs=1e-6)
    assert metrics.l2(pred, target, mask, "hole").item() == pytest.approx(0.04, abs=1e-6)
    assert metrics.psnr(pred, target, mask, "hole").item() == pytest.approx(10 * math.log10(1 / 0.04), abs=1e-4)
    # the mask is ignored for region="image"
    assert metrics.l1(pred, target, None).item() == pytest.approx(metrics.l1(pred, target, mask).item())


def test_psnr_is_averaged_per_image_and_perfect_images_give_inf():
    target = torch.full((2, 3, 4, 4), 0.5)
    pred = target.clone()
    pred[0] += 0.1
    pred[1] += 0.2
    per_image = metrics.psnr(pred, target, reduction="none")
    assert per_image.shape == (2,)
    expected = [20.0, 10 * math.log10(1 / 0.04)]
    assert per_image.tolist() == pytest.approx(expected, abs=1e-4)
    assert metrics.psnr(pred, target).item() == pytest.approx(sum(expected) / 2, abs=1e-4)  # not PSNR(mean MSE)
    assert metrics.l1(pred, target, reduction="none").tolist() == pytest.approx([0.1, 0.2], abs=1e-6)
    assert math.isinf(metrics.psnr(target, target).item())
    # a composite is perfect on the known pixels: inf there, finite in the hole
    mask = torch.ones(2, 1, 4, 4)
    mask[..., 0, :] = 0
    completed = mask * pred + (1 - mask) * target
    assert math.isinf(metrics.psnr(completed, target, mask, "known").item())
    assert metrics.psnr(completed, target, mask, "hole").item() == pytest.approx(sum(expected) / 2, abs=1e-4)


def test_one_mask_broadcasts_over_the_batch():
    pred, target = _const_pair(0.1, batch=3)
    values = metrics.l1(pred, target, _hole_mask(batch=1), "hole", reduction="none")
    assert values.shape == (3,)
    assert values.tolist() == pytest.approx([0.1] * 3, abs=1e-6)


def test_gradients_flow():
    pred, target = _const_pair(0.1)
    pred = pred.clone().requires_grad_(True)
    metrics.l2(pred, target, _hole_mask(), "hole").backward()
    assert pred.grad is not None and pred.grad.abs().sum() > 0
    assert pred.grad[..., 0, 0].abs().sum() == 0  # known pixels do not count in the hole


@pytest.mark.parametrize("call, match", [
    (lambda p, t, m: metrics.l1(p, t, torch.zeros_like(m), "hole"), "empty"),
    (lambda p, t, m: metrics.l1(p, t, torch.ones_like(m), "known"), "empty"),
    (lambda p, t, m: metrics.l1(p, t, None, "hole"), "needs a mask"),
    (lambda p, t, m: metrics.l1(p, t, m, "everywhere"), "region"),
    (lambda p, t, m: metrics.l2(p, t, m, reduction="sum"), "reduction"),
    (lambda p, t, m: metrics.psnr(p, t, m, scale="pct"), "scale"),
    (lambda p, t, m: metrics.l1(p.clone().fill_(float("nan")), t), "NaN"),
    (lambda p, t, m: metrics.l1(p, t, torch.zeros(1, 1, 5, 5)), r"size \(5, 5\)"),
    (lambda p, t, m: metrics.l1(p, t, m * 0.5), "binary"),
    (lambda p, t, m: metrics.l1(p, t[..., :3]), "same shape"),
    (lambda p, t, m: metrics.l1(p * 255, t), r"\[0, 1\]"),
    (lambda p, t, m: metrics.ssim(p, t), "at least 11x11"),
])
def test_bad_inputs_raise(call, match):
    pred, target = _const_pair(0.1)
    with pytest.raises((ValueError, TypeError), match=match):
        call(pred, target, _hole_mask())


# --------------------------------------------------------------------------------------------------
# SSIM against scikit-image
# --------------------------------------------------------------------------------------------------
def _skimage_ssim(x: torch.Tensor, y: torch.Tensor) -> float:
    from skimage.metrics import structural_similarity
    return structural_similarity(x.permute(1, 2, 0).double().numpy(), y.permute(1, 2, 0).double().numpy(),
                                 gaussian_weights=True, sigma=1.5, use_sample_covariance=False, data_range=1,
                                 channel_axis=2)


def test_ssim_matches_skimage():
    from skimage import data
    g = torch.Generator().manual_seed(0)
    astronaut = torch.from_numpy(data.astronaut()[100:164, 150:230].copy()).permute(2, 0, 1).float() / 255
    noisy = (astronaut + 0.1 * torch.randn(astronaut.shape, generator=g)).clamp(0, 1)
    rand = torch.rand(3, 23, 40, generator=g)
    rand2 = (rand + 0.3 * torch.randn(rand.shape, generator=g)).clamp(0, 1)
    for x, y in [(astronaut, noisy), (rand, rand2), (astronaut, astronaut.flip(-1))]:
        ours = metrics.ssim(x[None], y[None]).item()
        assert ours == pytest.approx(_skimage_ssim(x, y), abs=1e-3)
    pred = torch.stack([noisy, astronaut])
    per_image = metrics.ssim(pred, torch.stack([astronaut, astronaut]), reduction="none")
    assert per_image.shape == (2,)
    assert per_image[0].item() == pytest.approx(_skimage_ssim(noisy, astronaut), abs=1e-3)
    assert per_image[1].item() == pytest.approx(1.0, abs=1e-6)


def test_ssim_of_identical_images_is_one_and_hole_region():
    g = torch.Generator().manual_seed(1)
    x = torch.rand(2, 3, 32, 32, generator=g)
    assert metrics.ssim(x, x).item() == pytest.approx(1.0, abs=1e-6)
    mask = torch.zeros(2, 1, 32, 32)
    mask[..., :8, :8] = 1  # a hole in the corner (touches the border)
    damaged = torch.where(mask.bool(), torch.rand(2, 3, 32, 32, generator=g), x)
    hole = metrics.ssim(damaged, x, mask, "hole").item()
    known = metrics.ssim(damaged, x, mask, "known").item()
    assert hole < 0.5 < known < 1.0  # the damage is in the hole; the known side only sees it near the seam
    far = torch.ones_like(mask)
    far[..., :16, :16] = 0  # pixels at least 8 px away from the damage: untouched windows
    assert metrics.ssim(damaged, x, 1 - far, "known").item() == pytest.approx(1.0, abs=1e-6)


# --------------------------------------------------------------------------------------------------
# TV
# --------------------------------------------------------------------------------------------------
def test_tv_checkerboard_constant_and_edge():
    yy, xx = torch.meshgrid(torch.arange(8), torch.arange(8), indexing="ij")
    checker = ((yy + xx) % 2).float().expand(1, 3, 8, 8)
    assert metrics.tv(checker).item() == pytest.approx(1.0)
    assert metrics.tv(checker, scale="255").item() == pytest.approx(255.0)
    assert metrics.tv(torch.full((2, 3, 8, 8), 0.3), reduction="none").tolist() == [0.0, 0.0]
    # vertical edge between columns 1 and 2 of a 4x4 image: 4 of the 24 neighbour pairs differ by 1
    edge = torch.zeros(1, 3, 4, 4)
    edge[..., 2:] = 1.0
    assert metrics.tv(edge).item() == pytest.approx(4 / 24)
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 2] = 1  # column 2: 8 horizontal + 3 vertical pairs touch it, 4 of them cross the edge
    assert metrics.tv(edge, mask, "hole").item() == pytest.approx(4 / 11)
    assert metrics.tv(edge, mask, "known").item() == pytest.approx(0.0)
    with pytest.raises(ValueError, match="no neighbour pair"):
        metrics.tv(edge, torch.zeros_like(mask), "hole")


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------
def _batch(seed=0, b=4, size=32):
    g = torch.Generator().manual_seed(seed)
    target = torch.rand(b, 3, size, size, generator=g)
    mask = torch.zeros(b, 1, size, size)
    mask[..., 8:24, 8:24] = 1
    pred = torch.rand(b, 3, size, size, generator=g)
    return mask * pred + (1 - mask) * target, target, mask


def test_evaluate_seed000_keys_and_values():
    completed, target, mask = _batch()
    out = metrics.evaluate(completed, target, mask, convention="seed000")
    assert sorted(out) == sorted(f"{m}_{r}" for m in ("l1_pct", "l2_pct", "psnr", "ssim") for r in ("image", "hole"))
    assert all(isinstance(v, float) for v in out.values())
    assert out["l1_pct_hole"] == pytest.approx(metrics.l1(completed, target, mask, "hole", scale="percent").item())
    assert out["l2_pct_image"] == pytest.approx(metrics.l2(completed, target, mask, scale="percent").item())
    assert out["psnr_hole"] == pytest.approx(metrics.psnr(completed, target, mask, "hole").item())
    assert out["ssim_hole"] == pytest.approx(metrics.ssim(completed, target, mask, "hole").item(), abs=1e-9)
    # the hole is 1/4 of the image and the only place with error
    assert out["l1_pct_image"] == pytest.approx(out["l1_pct_hole"] / 4)
    per = metrics.evaluate_per_image(completed, target, mask, convention="seed000", regions=("known",))
    assert set(per) == {"l1_pct_known", "l2_pct_known", "psnr_known", "ssim_known"}
    assert per["l1_pct_known"].shape == (4,) and per["l1_pct_known"].abs().max() == 0
    assert torch.isinf(per["psnr_known"]).all()


def test_evaluate_seed002_without_lpips(monkeypatch):
    completed, target, mask = _batch(1)
    monkeypatch.setenv("INPAINT_LPIPS", "/nonexistent/lpips.npz")
    out = metrics.evaluate(completed, target, mask, convention="seed002", lpips_model=False)
    assert sorted(out) == sorted(f"{m}_{r}" for m in ("mse255", "l1_255", "psnr", "tv255", "tv255_target")
                                 for r in ("image", "hole"))
    assert out["mse255_hole"] == pytest.approx(metrics.l2(completed, target, mask, "hole", scale="255").item())
    assert out["l1_255_image"] == pytest.approx(metrics.l1(completed, target, mask, scale="255").item())
    assert out["tv255_hole"] == pytest.approx(metrics.tv(completed, mask, "hole", scale="255").item())
    # LPIPS asked for (lpips_model=None) but the weights are missing: a clear error, not a silent omission
    with pytest.raises(FileNotFoundError, match="INPAINT_LPIPS"):
        metrics.evaluate(completed, target, mask, convention="seed002")
    with pytest.raises(ValueError, match="convention"):
        metrics.evaluate(completed, target, mask, convention="seed001")
    with pytest.raises(ValueError, match="regions"):
        metrics.evaluate(completed, target, mask, regions=("middle",))


# --------------------------------------------------------------------------------------------------
# LPIPS
# --------------------------------------------------------------------------------------------------
def _lpips_dir():
    root = shared_data_root()
    folder = None if root is None else root / "weights" / "lpips_squeeze"
    if folder is None or not (folder / metrics.LPIPS_FILENAME).is_file():
        pytest.skip("shared data folder with weights/lpips_squeeze/ absent (set INPAINT_SHARED)")
    return folder


def _load_png(path):
    from PIL import Image
    arr = np.array(Image.open(path).convert("RGB"))
    return torch.from_numpy(arr).permute(2, 0, 1)[None].float() / 255


def test_lpips_demo_triplet(monkeypatch):
    folder = _lpips_dir()
    monkeypatch.delenv("INPAINT_LPIPS", raising=False)
    ref, p0, p1 = (_load_png(folder / "example_imgs" / f"ex_{n}.png") for n in ("ref", "p0", "p1"))
    model = metrics.load_lpips()
    assert metrics.load_lpips() is model  # cached: no reload
    assert not model.training and not any(p.requires_grad for p in model.parameters())
    assert metrics.lpips_distance(ref, p0).item() == pytest.approx(0.711, abs=2e-3)
    assert metrics.lpips_distance(ref, p1).item() == pytest.approx(0.148, abs=2e-3)
    assert metrics.lpips_distance(ref, ref).item() == pytest.approx(0.0, abs=1e-6)
    # the [0, 1] -> [-1, 1] conversion is done once, inside: same as the raw model on [-1, 1] inputs
    with torch.no_grad():
        raw = model(2 * ref - 1, 2 * p0 - 1).item()
    assert metrics.lpips_distance(ref, p0, model=model).item() == pytest.approx(raw, abs=1e-6)
    # region="hole": the spatial map averaged over the hole; a full hole is about the image value
    full = torch.ones(1, 1, *ref.shape[-2:])
    assert metrics.lpips_distance(ref, p0, full, "hole").item() == pytest.approx(0.711, abs=5e-3)
    assert model.spatial is False  # restored after the spatial call
    half = torch.zeros_like(full)
    half[..., :, :32] = 1
    both = metrics.lpips_distance(torch.cat([ref, ref]), torch.cat([p0, ref]), half, "hole", reduction="none")
    assert both.shape == (2,) and both[0] > 0.3 and both[1] == pytest.approx(0.0, abs=1e-6)
    out = metrics.evaluate(p0, ref, full, convention="seed002", regions=("image",))
    assert out["lpips_image"] == pytest.approx(0.711, abs=2e-3)


def test_lpips_never_downloads(monkeypatch):
    folder = _lpips_dir()
    import torch.hub

    def no_network(*args, **kwargs):
        raise AssertionError("tried to download")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", no_network)
    monkeypatch.setattr(torch.hub, "download_url_to_file", no_network)
    monkeypatch.setattr(metrics.perceptual, "_LPIPS_CACHE", {})
    model = metrics.load_lpips(weights=folder)  # a folder holding the .npz is accepted too
    assert model is metrics.load_lpips(weights=folder / metrics.LPIPS_FILENAME)


def test_lpips_missing_weights_give_a_clear_error(monkeypatch, tmp_path):
    missing = tmp_path / "nope.npz"
    with pytest.raises(FileNotFoundError) as info:
        metrics.load_lpips(weights=missing)
    message = str(info.value)
    for needed in (str(missing), "lpips_squeeze_v0.1_full.npz", "squeezenet1_1", "INPAINT_LPIPS"):
        assert needed in message
    monkeypatch.setenv("INPAINT_LPIPS", str(missing))
    with pytest.raises(FileNotFoundError, match=r"nope\.npz \(from \$INPAINT_LPIPS\)"):
        metrics.lpips_distance(torch.zeros(1, 3, 16, 16), torch.zeros(1, 3, 16, 16))
    monkeypatch.delenv("INPAINT_LPIPS")
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "no_shared"))
    monkeypatch.setenv("INPAINT_OFFLINE", "1")
    monkeypatch.setattr(pretrained, "_backbone_cached", lambda net: False)
    with pytest.raises(FileNotFoundError, match=r"no_shared/weights/lpips_squeeze.*INPAINT_OFFLINE is set"):
        metrics.load_lpips()
    with pytest.raises(ValueError, match="squeeze"):
        metrics.load_lpips(net="alex", weights=missing)
    with pytest.raises(ValueError, match="must be one of"):
        metrics.load_lpips(net="resnet")


class _FakeLPIPS(torch.nn.Module):
    """Stands in for ``lpips.LPIPS``: records how it was built and the socket timeout in force."""
    built: list = []

    def __init__(self, **kwargs):
        super().__init__()
        self.lin = torch.nn.Linear(1, 1)
        _FakeLPIPS.built.append((kwargs, __import__("socket").getdefaulttimeout()))


@pytest.fixture
def no_npz(monkeypatch, tmp_path):
    """No offline .npz anywhere, downloads allowed, a fake lpips.LPIPS, an empty cache."""
    import lpips
    monkeypatch.delenv("INPAINT_LPIPS", raising=False)
    monkeypatch.delenv("INPAINT_OFFLINE", raising=False)
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "no_shared"))
    monkeypatch.setattr(metrics.perceptual, "_LPIPS_CACHE", {})
    monkeypatch.setattr(pretrained, "_backbone_cached", lambda net: False)
    monkeypatch.setattr(lpips, "LPIPS", _FakeLPIPS)
    _FakeLPIPS.built = []
    return monkeypatch


def test_lpips_without_npz_uses_the_package_weights_when_online(no_npz):
    no_npz.setattr(pretrained, "_backbone_host_reachable", lambda timeout=3.0: (True, ""))
    model = metrics.load_lpips(net="alex")
    assert isinstance(model, _FakeLPIPS) and not model.training
    assert not any(p.requires_grad for p in model.parameters())
    (kwargs, timeout), = _FakeLPIPS.built
    assert kwargs == {"net": "alex", "verbose": False}          # the package's normal model, pretrained backbone
    assert timeout == metrics.LPIPS_DOWNLOAD_TIMEOUT and __import__("socket").getdefaulttimeout() is None
    assert metrics.load_lpips(net="alex") is model and len(_FakeLPIPS.built) == 1   # cached


def test_lpips_offline_says_what_to_put_where_and_never_builds(no_npz):
    no_npz.setattr(pretrained, "_backbone_host_reachable", lambda timeout=3.0: (False, "gaierror: no name"))
    with pytest.raises(FileNotFoundError) as info:
        metrics.load_lpips()
    message = str(info.value)
    for needed in ("INPAINT_LPIPS", metrics.LPIPS_FILENAME, "weights/lpips_squeeze", "download.pytorch.org",
                   "gaierror", "squeezenet1_1-b8a52dc0.pth", "lpips_model=False"):
        assert needed in message
    assert _FakeLPIPS.built == []
    probed = []
    no_npz.setattr(pretrained, "_backbone_host_reachable", lambda timeout=3.0: probed.append(1) or (True, ""))
    no_npz.setenv("INPAINT_OFFLINE", "1")                        # offline by request: not even a probe
    with pytest.raises(FileNotFoundError, match="INPAINT_OFFLINE is set"):
        metrics.load_lpips()
    with pytest.raises(FileNotFoundError, match=r"allow_download=False"):
        metrics.load_lpips(allow_download=False)
    assert probed == [] and _FakeLPIPS.built == []
    no_npz.setattr(pretrained, "_backbone_cached", lambda net: True)  # a cached backbone loads offline
    assert isinstance(metrics.load_lpips(), _FakeLPIPS)


def test_lpips_failed_download_fails_fast_with_the_message(no_npz):
    import lpips
    from urllib.error import URLError

    def stalled(**kwargs):
        raise URLError(TimeoutError("timed out"))

    no_npz.setattr(pretrained, "_backbone_host_reachable", lambda timeout=3.0: (True, ""))
    no_npz.setattr(lpips, "LPIPS", stalled)
    with pytest.raises(FileNotFoundError, match=r"downloading squeezenet1_1-b8a52dc0.pth failed \(URLError"):
        metrics.load_lpips()
    assert __import__("socket").getdefaulttimeout() is None     # the time limit is not left behind


def test_lpips_probe_gives_up_within_its_timeout(monkeypatch):
    import socket
    import time

    def hangs(*args, **kwargs):           # a resolver that hangs, then times out as a real one would
        time.sleep(30)
        raise TimeoutError("timed out")

    monkeypatch.setattr(socket, "create_connection", hangs)
    start = time.perf_counter()
    ok, why = pretrained._backbone_host_reachable(timeout=0.5)
    assert not ok and "no answer within" in why and time.perf_counter() - start < 3


@pytest.mark.filterwarnings("ignore::UserWarning")  # torchvision deprecation notes from inside lpips
def test_lpips_rejects_incomplete_or_foreign_weights(tmp_path):
    import lpips
    model = lpips.LPIPS(net="squeeze", pretrained=True, pnet_rand=True, verbose=False)
    lin_only = {k: v.numpy() for k, v in model.state_dict().items() if not k.startswith("net.")}
    np.savez(tmp_path / "lin_only.npz", **lin_only)
    with pytest.raises(ValueError, match="lack keys"):
        metrics.load_lpips(weights=tmp_path / "lin_only.npz")
    np.savez(tmp_path / "foreign.npz", **{"features.0.weight": np.zeros((64, 3, 3, 3), np.float32)})
    with pytest.raises(ValueError, match="unexpected keys"):
        metrics.load_lpips(weights=tmp_path / "foreign.npz")


# --------------------------------------------------------------------------------------------------
# compare_methods
# --------------------------------------------------------------------------------------------------
def test_compare_methods_scores_composites_and_hides_the_hole():
    g = torch.Generator().manual_seed(0)
    image = torch.rand(5, 3, 32, 32, generator=g)
    mask = torch.zeros(5, 1, 32, 32)
    mask[..., 8:24, 8:24] = 1
    seen = {}

    def peek(masked, m):  # records what a method is given
        seen["hole_max"] = float((masked * m).abs().max())
        return masked

    def oracle(masked, m):  # cannot know the truth: returns grey
        return torch.full_like(masked, 0.5)

    rows, outputs = metrics.compare_methods({"peek": peek, "grey": oracle}, image, mask, lpips_model=False,
                                            batch_size=2, progress=False)
    assert seen["hole_max"] == 0.0  # the hole is zeroed before any method sees it
    assert [r["method"] for r in rows] == ["peek", "grey"] and all(r["n"] == 5 for r in rows)
    # composite: known pixels exact, hole from the method
    assert torch.equal(outputs["grey"] * (1 - mask), image * (1 - mask))
    assert torch.all(outputs["grey"][mask.expand_as(image) == 1] == 0.5)
    # values equal a direct evaluation of the composite, in both conventions (batches of 2 merged)
    direct = metrics.evaluate(outputs["grey"], image, mask, "seed000")
    assert rows[1]["l1_pct_hole"] == pytest.approx(direct["l1_pct_hole"], rel=1e-5)
    assert rows[1]["psnr_hole"] == pytest.approx(direct["psnr_hole"], rel=1e-5)
    direct2 = metrics.evaluate(outputs["grey"], image, mask, "seed002", lpips_model=False)
    assert rows[1]["mse255_image"] == pytest.approx(direct2["mse255_image"], rel=1e-5)
    assert "lpips_image" not in rows[0]


def test_compare_methods_rejects_bad_methods():
    image, mask = torch.rand(2, 3, 16, 16), torch.zeros(2, 1, 16, 16)
    mask[..., 4:8, 4:8] = 1
    with pytest.raises(ValueError, match="returned shape"):
        metrics.compare_methods({"crop": lambda x, m: x[..., :8, :8]}, image, mask, lpips_model=False, progress=False)
    with pytest.raises(ValueError, match="output of method 'nan'"):
        metrics.compare_methods({"nan": lambda x, m: x * float("nan")}, image, mask, lpips_model=False, progress=False)
    with pytest.raises(ValueError, match="non-empty dict"):
        metrics.compare_methods({}, image, mask, lpips_model=False)


# ------------------------------------------------------------------ one image's failure (issue 22)
def _fails_on(bad: set[int], how: str = "raise"):
    """A fill that fails on the images whose top-left known pixel holds a marker (image index / 255)."""
    def fill(image, mask):
        ids = (image[:, 0, 0, 0] * 255).round().long().tolist()
        if how == "raise" and any(i in bad for i in ids):
            raise ValueError(f"refusing image(s) {[i for i in ids if i in bad]}")
        out = image.clone()
        if how == "nan":
            for j, i in enumerate(ids):
                if i in bad:
                    out[j] = float("nan")
        return out
    return fill


def _marked_batch(n=20, size=16):
    g = torch.Generator().manual_seed(0)
    image = torch.rand(n, 3, size, size, generator=g)
    image[:, 0, 0, 0] = torch.arange(n) / 255.0
    mask = torch.zeros(n, 1, size, size)
    mask[..., 4:12, 4:12] = 1
    return image, mask


@pytest.mark.parametrize("how", ["raise", "nan"])
def test_score_methods_survives_one_image_that_fails_and_names_it(how):
    from inpaint_utils.metrics import ScoringFailureWarning, compare_methods, score_methods

    image, mask = _marked_batch()
    with pytest.warns(ScoringFailureWarning, match=r"'broken': 1 of 20 images .* image 7: "):
        scores, outputs = score_methods({"broken": _fails_on({7}, how), "plain": _fails_on(set())}, image, mask,
                                        conventions=("seed000",), lpips_model=False, batch_size=8, progress=False)
    assert [(f.image, f.reason.split(":")[0]) for f in scores.failures["broken"]] == [(7, "ValueError")]
    assert scores.failures["plain"] == [] and scores.total == 20
    assert torch.isnan(scores["broken"]["psnr_hole"][7]) and torch.isfinite(scores["broken"]["psnr_hole"][:7]).all()
    # the other images of the failing batch are scored as if nothing had happened
    keep = torch.arange(20) != 7
    assert torch.equal(scores["broken"]["l1_pct_hole"][keep], scores["plain"]["l1_pct_hole"][keep])
    assert torch.equal(outputs["broken"][7], image[7] * (1 - mask[7]))   # its masked input, not garbage
    with pytest.warns(ScoringFailureWarning):
        rows, _ = compare_methods({"broken": _fails_on({7}, how)}, image, mask, conventions=("seed000",),
                                  lpips_model=False, batch_size=8, progress=False)
    (row,) = rows
    assert row["n"] == 19 and row["of"] == 20 and row["failed"][0]["image"] == 7
    assert row["l1_pct_hole"] == pytest.approx(float(scores["plain"]["l1_pct_hole"][keep].mean()))


def test_a_method_that_fails_on_every_image_still_raises():
    from inpaint_utils.metrics import score_methods

    image, mask = _marked_batch(n=4)
    with pytest.raises(ValueError, match="refusing image"):
        score_methods({"dead": _fails_on(set(range(4)))}, image, mask, conventions=("seed000",), lpips_model=False,
                      progress=False)


def test_compare_on_masks_reports_n_of_how_many_and_bins_only_scored_images():
    from inpaint_utils.comparison import compare_on_masks
    from inpaint_utils.metrics import ScoringFailureWarning

    image, mask = _marked_batch(n=12)
    with pytest.warns(ScoringFailureWarning):
        rows, _, skipped, area = compare_on_masks({"broken": _fails_on({3, 5})}, image, {"box": mask},
                                                  lpips_model=False, progress=False, by_area=True)
    assert skipped == [] and rows[0]["n"] == 10 and rows[0]["of"] == 12
    assert [f["image"] for f in rows[0]["failed"]] == [3, 5]
    assert sum(r["n"] for r in area) == 10 and all(math.isfinite(r["psnr_hole"]) for r in area)


@pytest.mark.parametrize("n1, n2, subset_size", [(10, 10, 1), (1, 10, 5), (10, 1, 1000)])
def test_kid_refuses_subsets_of_one_sample(n1, n2, subset_size):
    import warnings

    rng = np.random.default_rng(0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")                       # no RuntimeWarning, no NaN: a clear error
        with pytest.raises(ValueError, match="at least 2 samples"):
            metrics.kid_from_features(rng.random((n1, 4)), rng.random((n2, 4)), subset_size=subset_size)
    assert math.isfinite(metrics.kid_from_features(rng.random((n1 + 1, 4)), rng.random((n2 + 1, 4)),
                                                   subset_size=max(subset_size, 2))["kid"])
