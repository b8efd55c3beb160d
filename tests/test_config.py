from pathlib import Path

import pytest
import torch

from inpaint_utils import config


def test_settings_profiles_and_overrides():
    smoke = config.settings("01_masking", "smoke")
    full = config.settings("01_masking", "full")
    assert smoke.keys() == full.keys()
    assert smoke["profile"] == "smoke" and full["profile"] == "full"
    assert config.settings("01_masking", "smoke", image_size=64, num_eval_images=None)["image_size"] == 64
    assert config.settings("01_masking", "smoke", num_eval_images=None)["num_eval_images"] == smoke["num_eval_images"]


def test_every_notebook_has_smoke_cpu_gpu_and_full_profiles_with_same_keys():
    # gpu: the weekly GPU workflow runs every notebook in it (scripts/run_notebooks.sh --profile gpu);
    # cpu: each model in 20 minutes on a 2-core CPU (scripts/cpu_runs.sh)
    for name, table in config.PROFILES.items():
        assert set(table) == {"smoke", "cpu", "gpu", "full"}, f"{name} has profiles {sorted(table)}"
        assert table["smoke"].keys() == table["cpu"].keys() == table["gpu"].keys() == table["full"].keys(), name


def test_cpu_profile_trains_at_64_px_on_the_cpu_threads_it_names():
    # 64 px: the faces the cpu runs train on are 89x109; GLCIC and DeepFill run one OpenMP thread each
    for name in ("02_context_encoder", "04_glcic", "05_contextual_attention"):
        cpu, smoke = config.settings(name, "cpu"), config.settings(name, "smoke")
        assert cpu["image_size"] == 64 and cpu["num_eval_images"] is None, name   # the whole test split
        steps = cpu.get("num_steps", cpu.get("steps_hole"))
        assert steps > smoke.get("num_steps", smoke.get("steps_hole")), name      # more than a smoke run
    assert config.settings("04_glcic", "cpu")["t_c"] > 0 and config.settings("04_glcic", "cpu")["threads"] == 1


def test_nbrun_accepts_every_profile():
    from inpaint_utils import nbrun

    assert set(nbrun.PROFILES) == {profile for table in config.PROFILES.values() for profile in table}
    assert config.settings("02_context_encoder", "gpu")["profile"] == "gpu"


@pytest.mark.parametrize("call, match", [
    (lambda: config.settings("99_nope", "smoke"), "unknown notebook"),
    (lambda: config.settings("01_masking", "fast"), "unknown PROFILE 'fast'"),
    (lambda: config.settings("01_masking", "smoke", imagesize=3), "no setting 'imagesize'"),
])
def test_settings_errors_name_the_value(call, match):
    with pytest.raises((KeyError, ValueError), match=match):
        call()


def test_paths_follow_environment(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_DATA", str(tmp_path / "d"))
    monkeypatch.setenv("INPAINT_FIGURES", str(tmp_path / "f"))
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path / "missing"))
    assert config.data_root() == tmp_path / "d"
    assert config.figures_dir() == tmp_path / "f" and (tmp_path / "f").is_dir()
    assert config.shared_data_root() is None
    monkeypatch.setenv("INPAINT_SHARED", str(tmp_path))
    assert config.shared_data_root() == tmp_path


def test_project_root_is_the_checkout():
    root = config.project_root()
    assert (root / "inpaint_utils").is_dir() and (root / "pyproject.toml").is_file()
    assert root == Path(__file__).resolve().parents[1]


def test_seed_everything_reproducible():
    g1 = config.seed_everything(3)
    a = torch.rand(4, generator=g1), torch.rand(4)
    g2 = config.seed_everything(3)
    b = torch.rand(4, generator=g2), torch.rand(4)
    assert torch.equal(a[0], b[0]) and torch.equal(a[1], b[1])
    with pytest.raises(TypeError, match="seed must be an int"):
        config.seed_everything(1.5)


def test_get_device():
    assert config.get_device("cpu").type == "cpu"
    assert config.get_device("auto").type in {"cpu", "cuda", "mps"}
    if not torch.cuda.is_available():
        with pytest.raises(RuntimeError, match="CUDA is not available"):
            config.get_device("cuda")


@pytest.mark.parametrize("profile", ["full", "gpu"])
@pytest.mark.parametrize("notebook", ["02_context_encoder", "03_cascade_ce_nsd"])
def test_full_context_encoder_profiles_hold_the_authors_learning_rates(notebook, profile):
    from inpaint_utils.models import ContextEncoderConfig, ContextEncoderDiscriminator, ContextEncoderGenerator
    from inpaint_utils.models.context_encoder import ContextEncoderTask

    cfg = ContextEncoderConfig.tiny(image_size=32)
    task = ContextEncoderTask(ContextEncoderGenerator(cfg, seed=0), ContextEncoderDiscriminator(cfg, seed=1),
                              lr=config.settings(notebook, profile)["lr"])
    rates = {name: opt.param_groups[0]["lr"] for name, opt in task.optimizers.items()}
    # the authors' train.lua: discriminator 2e-4, generator 10x that
    assert rates == {"generator": pytest.approx(2e-3), "discriminator": pytest.approx(2e-4)}


@pytest.mark.parametrize("value", ["0", "-1", "inf", "nan", "soon", ""])
def test_env_seconds_refuses_what_is_not_a_positive_finite_number(monkeypatch, value):
    monkeypatch.setenv("INPAINT_SOME_TIMEOUT", value)
    if value == "":
        assert config.env_seconds("INPAINT_SOME_TIMEOUT", 7.0) == 7.0   # unset or empty: the default
        return
    with pytest.raises(ValueError, match="INPAINT_SOME_TIMEOUT must be a"):
        config.env_seconds("INPAINT_SOME_TIMEOUT", 7.0)


def test_env_seconds_reads_the_variable(monkeypatch):
    monkeypatch.setenv("INPAINT_SOME_TIMEOUT", " 2.5 ")
    assert config.env_seconds("INPAINT_SOME_TIMEOUT", 7.0) == 2.5
    monkeypatch.delenv("INPAINT_SOME_TIMEOUT")
    assert config.env_seconds("INPAINT_SOME_TIMEOUT", 7.0) == 7.0
