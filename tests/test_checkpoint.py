"""Checkpoints: round trip, the load checks (name, config, shapes, sha256, foreign files), weights-only
loading, atomic replacement under a simulated crash, latest / retention."""
import hashlib
import json
import os
from dataclasses import dataclass

import pytest
import torch
from torch import nn

from inpaint_utils import checkpoint as ck
from inpaint_utils.checkpoint import (CheckpointError, checkpoint_info, latest_checkpoint, load_checkpoint,
                                      meta_digest, prune_checkpoints, save_checkpoint)


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they make them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


class TinyGenerator(nn.Module):
    """RGB + mask in, RGB out: two 3x3 convolutions with BatchNorm (buffers) between."""

    def __init__(self, width: int = 8):
        super().__init__()
        self.conv1 = nn.Conv2d(4, width, 3, padding=1)
        self.bn = nn.BatchNorm2d(width)
        self.conv2 = nn.Conv2d(width, 3, 3, padding=1)

    def forward(self, x):
        return torch.sigmoid(self.conv2(torch.relu(self.bn(self.conv1(x)))))


class TinyDiscriminator(nn.Module):
    def __init__(self, width: int = 4):
        super().__init__()
        self.conv = nn.Conv2d(3, width, 4, stride=2, padding=1)
        self.out = nn.Conv2d(width, 1, 3, padding=1)

    def forward(self, x):
        return self.out(nn.functional.leaky_relu(self.conv(x), 0.2)).mean(dim=(1, 2, 3))


CONFIG = {"image_size": 16, "widths": [8, 4], "bottleneck": "conv"}


def _models(seed=0, width=8):
    torch.manual_seed(seed)
    return {"generator": TinyGenerator(width), "discriminator": TinyDiscriminator()}


def _trained(seed=0):
    """Models and Adam optimizers after two updates (so the optimizer state is not empty)."""
    models = _models(seed)
    opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for k, m in models.items()}
    x = torch.rand(2, 4, 16, 16, generator=torch.Generator().manual_seed(seed))
    for _ in range(2):
        loss = models["generator"](x).mean() + models["discriminator"](x[:, :3]).mean()
        loss.backward()
        for o in opts.values():
            o.step()
            o.zero_grad()
    return models, opts


def _state(models):
    return {k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in models.items()}


def _assert_state_equal(a, b):
    assert a.keys() == b.keys()
    for k in a:
        assert a[k].keys() == b[k].keys()
        for n in a[k]:
            assert torch.equal(a[k][n], b[k][n]), f"{k}.{n} differs"


def _equal_nested(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(_equal_nested(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_equal_nested(x, y) for x, y in zip(a, b))
    return a == b


def _save(path, models, opts=None, step=10, config=CONFIG, **kw):
    return save_checkpoint(path, models, opts, model_name="tiny_ce", config=config, step=step, **kw)


def test_round_trip_restores_weights_optimizer_and_extra_state(tmp_path):
    models, opts = _trained(0)
    rng = torch.Generator().manual_seed(5)
    rng.manual_seed(5)
    torch.rand(3, generator=rng)
    extra = {"loop_generator": rng.get_state(), "counts": {"g": 3}, "elapsed_s": 1.5, "names": ["a", "b"]}
    path = _save(tmp_path / "ck" / "step_000010", models, opts, extra_state=extra)
    assert sorted(p.name for p in path.iterdir()) == ["checkpoint.json", "discriminator.safetensors",
                                                      "generator.safetensors", "training_state.pt"]

    fresh, _ = _trained(1)
    fresh_opts = {k: torch.optim.Adam(m.parameters(), lr=1e-3, betas=(0.5, 0.999)) for k, m in fresh.items()}
    info = load_checkpoint(path, fresh, fresh_opts, model_name="tiny_ce", config=dict(CONFIG))
    _assert_state_equal(_state(fresh), _state(models))
    for k in opts:
        assert _equal_nested(fresh_opts[k].state_dict(), opts[k].state_dict())
    assert info["step"] == 10 and info["model_name"] == "tiny_ce" and info["config"] == CONFIG
    assert torch.equal(info["extra_state"]["loop_generator"], rng.get_state())
    assert info["extra_state"]["counts"] == {"g": 3} and info["extra_state"]["names"] == ["a", "b"]
    assert info["torch_version"] == torch.__version__ and info["code_version"]

    meta = json.loads((path / "checkpoint.json").read_text())
    for fname, entry in meta["files"].items():
        assert entry["sha256"] == hashlib.sha256((path / fname).read_bytes()).hexdigest()
    assert meta["models"] == ["generator", "discriminator"] and meta["created"]


def test_dataclass_config_with_tuples_round_trips(tmp_path):
    @dataclass
    class Cfg:
        image_size: int = 16
        widths: tuple = (8, 4)

    models = _models()
    path = _save(tmp_path / "c", models, config=Cfg())
    load_checkpoint(path, _models(1), model_name="tiny_ce", config=Cfg())  # tuple vs JSON list: equal
    with pytest.raises(CheckpointError, match=r"widths\.?\[?.*checkpoint \[8, 4\], given \[8, 8\]"):
        load_checkpoint(path, _models(1), model_name="tiny_ce", config=Cfg(widths=(8, 8)))


def test_missing_path_says_what_to_do(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"no checkpoint at .*train first.*latest_checkpoint"):
        load_checkpoint(tmp_path / "nope", _models(), model_name="tiny_ce")


def test_model_name_mismatch_names_both(tmp_path):
    path = _save(tmp_path / "c", _models())
    with pytest.raises(CheckpointError, match=r"holds model 'tiny_ce', but model_name='glcic'"):
        load_checkpoint(path, _models(), model_name="glcic")


def test_config_mismatch_lists_the_differing_keys(tmp_path):
    path = _save(tmp_path / "c", _models())
    other = {"image_size": 32, "widths": [8, 4], "extra": 1}
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, _models(), model_name="tiny_ce", config=other)
    msg = str(e.value)
    assert "image_size: checkpoint 16, given 32" in msg
    assert "bottleneck: checkpoint 'conv', given '<missing>'" in msg
    assert "extra: checkpoint '<missing>', given 1" in msg
    assert "widths" not in msg


def test_shape_mismatch_lists_parameters_and_leaves_model_unchanged(tmp_path):
    path = _save(tmp_path / "c", _models(width=8))
    wide = _models(seed=3, width=6)
    before = _state(wide)
    with pytest.raises(CheckpointError) as e:
        load_checkpoint(path, wide, model_name="tiny_ce")
    msg = str(e.value)
    assert "generator.conv1.weight: checkpoint (8, 4, 3, 3), model (6, 4, 3, 3)" in msg
    assert "generator.bn.running_mean: checkpoint (8,), model (6,)" in msg
    assert "discriminator" not in msg  # the discriminator fits
    _assert_state_equal(_state(wide), before)


def test_strict_missing_and_unexpected_keys(tmp_path):
    path = _save(tmp_path / "c", {"generator": nn.Sequential(nn.Conv2d(3, 3, 1))})
    bigger = nn.Sequential(nn.Conv2d(3, 3, 1), nn.Conv2d(3, 3, 1))
    with pytest.raises(CheckpointError, match=r"generator\.1\.weight: missing from the checkpoint"):
        load_checkpoint(path, {"generator": bigger}, model_name="tiny_ce")
    info = load_checkpoint(path, {"generator": bigger}, model_name="tiny_ce", strict=False)
    assert info["step"] == 10


def test_unknown_model_or_optimizer_name(tmp_path):
    models, opts = _trained()
    path = _save(tmp_path / "c", {"generator": models["generator"]}, {"generator": opts["generator"]})
    with pytest.raises(CheckpointError, match=r"no model\(s\) \['discriminator'\]; it holds \['generator'\]"):
        load_checkpoint(path, _models(), model_name="tiny_ce")
    g = _models(1)["generator"]
    before = _state({"g": g})
    with pytest.raises(CheckpointError, match=r"optimizer 'critic': not in the checkpoint"):
        load_checkpoint(path, {"generator": g}, {"critic": torch.optim.SGD(g.parameters(), lr=0.1)},
                        model_name="tiny_ce")
    _assert_state_equal(_state({"g": g}), before)


def test_optimizer_of_other_parameters_is_refused_before_copying(tmp_path):
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts)
    fresh = _models(2)
    before = _state(fresh)
    wrong = {"generator": torch.optim.Adam(list(fresh["generator"].parameters())[:2]),
             "discriminator": torch.optim.Adam(fresh["discriminator"].parameters())}
    with pytest.raises(CheckpointError, match=r"optimizer 'generator' group 0: checkpoint has 6 parameters, given 2"):
        load_checkpoint(path, fresh, wrong, model_name="tiny_ce")
    _assert_state_equal(_state(fresh), before)


def test_corrupt_file_fails_its_sha256(tmp_path):
    path = _save(tmp_path / "c", _models())
    f = path / "generator.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0xFF
    f.write_bytes(bytes(data))
    fresh = _models(4)
    before = _state(fresh)
    with pytest.raises(CheckpointError, match=r"generator\.safetensors is corrupt: its sha256 differs"):
        load_checkpoint(path, fresh, model_name="tiny_ce")
    _assert_state_equal(_state(fresh), before)


def test_things_that_are_not_checkpoints(tmp_path):
    f = tmp_path / "weights.pt"
    torch.save({"w": torch.zeros(2)}, f)
    with pytest.raises(CheckpointError, match=r"is a file, not a checkpoint"):
        load_checkpoint(f, _models(), model_name="tiny_ce")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match=r"is not a checkpoint: it has no checkpoint\.json"):
        load_checkpoint(tmp_path / "empty", _models(), model_name="tiny_ce")
    (tmp_path / "other").mkdir()
    (tmp_path / "other" / "checkpoint.json").write_text(json.dumps({"step": 3}))
    with pytest.raises(CheckpointError, match=r"not an inpaint-course checkpoint"):
        load_checkpoint(tmp_path / "other", _models(), model_name="tiny_ce")
    (tmp_path / "other" / "checkpoint.json").write_text("{not json")
    with pytest.raises(CheckpointError, match=r"not a readable checkpoint description"):
        checkpoint_info(tmp_path / "other")


class _Payload:
    """Unpickling this would create a file: proof that code ran."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def test_training_state_with_pickled_code_is_refused(tmp_path):
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts)
    marker = tmp_path / "code_ran"
    state = path / "training_state.pt"
    torch.save({"optimizers": {}, "scaler": None, "extra_state": {"x": _Payload(marker)}}, state)
    meta = json.loads((path / "checkpoint.json").read_text())  # make the sha256 fit, as an attacker would
    meta["files"]["training_state.pt"] = {"sha256": hashlib.sha256(state.read_bytes()).hexdigest(),
                                          "bytes": state.stat().st_size}
    meta["meta_sha256"] = meta_digest(meta)
    (path / "checkpoint.json").write_text(json.dumps(meta))
    fresh = _models(7)
    before = _state(fresh)
    with pytest.raises(CheckpointError, match=r"refusing to load .*training_state\.pt.*never unpickled"):
        load_checkpoint(path, fresh, model_name="tiny_ce")
    assert not marker.exists()
    _assert_state_equal(_state(fresh), before)


@pytest.mark.parametrize("edit", [
    lambda m: m["config"].update(image_size=32),              # config (e.g. the fill colour)
    lambda m: m["config"]["widths"].__setitem__(0, 9),        # a nested value
    lambda m: m.update(step=11),                              # the step a resume continues from
    lambda m: m.update(model_name="tiny_ce "),                # any other key
    lambda m: m.pop("meta_sha256"),                           # the digest removed
])
def test_an_edited_checkpoint_json_is_refused_like_a_corrupt_weight(tmp_path, edit):
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts)
    meta = json.loads((path / "checkpoint.json").read_text())
    assert meta["format_version"] == 2 and meta["meta_sha256"] == meta_digest(meta)
    edit(meta)
    (path / "checkpoint.json").write_text(json.dumps(meta, indent=1))
    fresh = _models(7)
    before = _state(fresh)
    with pytest.raises(CheckpointError, match=r"checkpoint\.json is corrupt: its content differs from its meta_sha256"):
        load_checkpoint(path, fresh, model_name="tiny_ce")
    with pytest.raises(CheckpointError, match="edited config or step"):
        checkpoint_info(path)
    _assert_state_equal(_state(fresh), before)


def test_the_json_digest_ignores_key_order_and_layout(tmp_path):
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts)
    meta = json.loads((path / "checkpoint.json").read_text())
    (path / "checkpoint.json").write_text(json.dumps(dict(reversed(list(meta.items())))))  # reordered, one line
    assert load_checkpoint(path, _models(7), model_name="tiny_ce")["step"] == 10


def test_a_format_1_checkpoint_loads_with_a_warning(tmp_path):
    """Written before the JSON had a digest: accepted (weights still checked), with a warning."""
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts)
    meta = json.loads((path / "checkpoint.json").read_text())
    del meta["meta_sha256"]
    meta["format_version"] = 1
    (path / "checkpoint.json").write_text(json.dumps(meta, indent=1))
    fresh = _models(7)
    with pytest.warns(UserWarning, match=r"checkpoint format 1, whose checkpoint\.json .* is not checked"):
        info = load_checkpoint(path, fresh, model_name="tiny_ce", config=CONFIG)
    assert info["step"] == 10
    _assert_state_equal(_state(fresh), _state(models))
    (path / "generator.safetensors").write_bytes(b"x" + (path / "generator.safetensors").read_bytes()[1:])
    with pytest.warns(UserWarning), pytest.raises(CheckpointError, match="is corrupt: its sha256 differs"):
        load_checkpoint(path, _models(7), model_name="tiny_ce")


def test_crash_while_writing_keeps_the_old_checkpoint_and_no_temp_dirs(tmp_path, monkeypatch):
    old_models, old_opts = _trained(0)
    path = _save(tmp_path / "run" / "step_000010", old_models, old_opts, step=10)
    new_models, new_opts = _trained(1)

    def crash(*args, **kwargs):  # the optimizer state is written after the weights: a mid-write failure
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(torch, "save", crash)
    with pytest.raises(OSError, match="simulated"):
        _save(path, new_models, new_opts, step=11)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ["step_000010"]  # no temp dir left
    fresh = _models(9)
    info = load_checkpoint(path, fresh, model_name="tiny_ce")  # the sha256 checks pass: intact
    assert info["step"] == 10
    _assert_state_equal(_state(fresh), _state(old_models))


def test_crash_at_the_final_rename_puts_the_old_checkpoint_back(tmp_path, monkeypatch):
    old_models, _ = _trained(0)
    path = _save(tmp_path / "run" / "step_000010", old_models, step=10)
    real_replace = os.replace

    def replace(src, dst):
        if ck._TMP_MARK in os.path.basename(src):  # moving the new folder into place
            raise OSError("power cut (simulated)")
        return real_replace(src, dst)

    monkeypatch.setattr(os, "replace", replace)
    with pytest.raises(OSError, match="simulated"):
        _save(path, _trained(1)[0], step=11)
    monkeypatch.undo()
    assert sorted(p.name for p in path.parent.iterdir()) == ["step_000010"]
    fresh = _models(9)
    assert load_checkpoint(path, fresh, model_name="tiny_ce")["step"] == 10
    _assert_state_equal(_state(fresh), _state(old_models))


def test_overwrite_replaces_completely(tmp_path):
    path = _save(tmp_path / "c", _trained(0)[0], step=1)
    new = _trained(1)[0]
    _save(path, new, step=2)
    fresh = _models(5)
    assert load_checkpoint(path, fresh, model_name="tiny_ce")["step"] == 2
    _assert_state_equal(_state(fresh), _state(new))
    assert sorted(p.name for p in tmp_path.iterdir()) == ["c"]


def test_latest_checkpoint_ignores_temp_and_incomplete(tmp_path):
    run = tmp_path / "run"
    assert latest_checkpoint(run) is None
    models = _models()
    for step in (5, 100, 20):
        _save(ck.checkpoint_path(run, step), models, step=step)
    (run / "checkpoints" / ".step_000200.tmp-abc").mkdir()
    (run / "checkpoints" / "step_000300").mkdir()  # no checkpoint.json: incomplete
    assert latest_checkpoint(run) == run / "checkpoints" / "step_000100"
    assert latest_checkpoint(run / "checkpoints") == run / "checkpoints" / "step_000100"
    # a run folder is accepted by load_checkpoint too: its newest checkpoint
    assert load_checkpoint(run, _models(1), model_name="tiny_ce")["step"] == 100


def test_keep_last_prunes_old_checkpoints_and_stale_temps(tmp_path):
    run = tmp_path / "run"
    models = _models()
    (run / "checkpoints").mkdir(parents=True)
    (run / "checkpoints" / ".step_000001.tmp-dead").mkdir()  # left by a killed save
    for step in range(1, 6):
        _save(ck.checkpoint_path(run, step), models, step=step, keep_last=3)
    assert sorted(p.name for p in (run / "checkpoints").iterdir()) == ["step_000003", "step_000004", "step_000005"]
    removed = prune_checkpoints(run / "checkpoints", 1)
    assert [p.name for p in removed] == ["step_000003", "step_000004"]
    with pytest.raises(ValueError, match="keep_last must be a positive int"):
        prune_checkpoints(run / "checkpoints", 0)


def test_grad_scaler_state_round_trips(tmp_path):
    scaler = torch.amp.GradScaler("cpu", init_scale=1024.0, growth_interval=7)
    models, opts = _trained()
    path = _save(tmp_path / "c", models, opts, scaler={"generator": scaler})
    other = torch.amp.GradScaler("cpu")
    load_checkpoint(path, _models(1), model_name="tiny_ce", scaler={"generator": other})
    assert other.get_scale() == 1024.0 and other.get_growth_interval() == 7


def test_save_argument_errors(tmp_path):
    models = _models()
    with pytest.raises(ValueError, match=r"models key 'a/b' must be a plain name"):
        save_checkpoint(tmp_path / "c", {"a/b": models["generator"]}, model_name="x", config={}, step=0)
    with pytest.raises(ValueError, match=r"step must be a non-negative int, got -1"):
        save_checkpoint(tmp_path / "c", models, model_name="x", config={}, step=-1)
    with pytest.raises(TypeError, match=r"config\.fn = .* cannot be stored"):
        save_checkpoint(tmp_path / "c", models, model_name="x", config={"fn": print}, step=0)
    assert not (tmp_path / "c").exists()


def _tree_bytes(folder):
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("where", ["torch.save", "safetensors"])
def test_a_full_disk_names_the_checkpoint_and_keeps_the_earlier_ones(tmp_path, monkeypatch, where):
    import errno

    import safetensors.torch

    models, opts = _trained()
    run = tmp_path / "checkpoints"
    save_checkpoint(run / "step_000001", models, opts, model_name="tiny", config=CONFIG, step=1)
    save_checkpoint(run / "step_000002", models, opts, model_name="tiny", config=CONFIG, step=2)
    before = _tree_bytes(run)
    if where == "torch.save":
        def full(*args, **kwargs):
            raise RuntimeError("[enforce fail at inline_container.cc:778] . PytorchStreamWriter failed writing "
                               "file data/0: file write failed")
        monkeypatch.setattr(ck.torch, "save", full)
        named = "training_state"
    else:
        def full(*args, **kwargs):
            raise OSError(errno.ENOSPC, "No space left on device")
        monkeypatch.setattr(safetensors.torch, "save_file", full)
        named = "generator.safetensors"
    for target in (run / "step_000003", run / "step_000002"):         # a new step, and over an existing one
        with pytest.raises(OSError) as caught:
            save_checkpoint(target, models, opts, model_name="tiny", config=CONFIG, step=3)
        message = str(caught.value)
        assert f"cannot write checkpoint {target}" in message and named in message and "\n" not in message
        assert ("file write failed" if where == "torch.save" else "No space left on device") in message
        assert "untouched" in message
        assert _tree_bytes(run) == before                                # byte-identical, no temporary left
    assert latest_checkpoint(run, verify=True).name == "step_000002"
