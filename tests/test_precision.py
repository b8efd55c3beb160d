"""The precision and memory format of a training (issue 23): resolved per device by ``resolve_precision`` (a CPU
without native BF16 gets float32 under ``auto``, explicit choices are honoured, CUDA's AMP is unchanged), a
bfloat16 step lowers the loss with float32 weights and optimizer state, checkpoints stay float32 and resume
across precisions and memory formats, and the run records what it used."""
import json

import pytest
import torch
from safetensors.torch import load_file
from torch import nn

from inpaint_utils.checkpoint import latest_checkpoint, training_summary
from inpaint_utils.train import TrainConfig, precision, read_metrics, resolve_precision, train

CPU = torch.device("cpu")


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def native(monkeypatch, has: bool):
    monkeypatch.setattr(precision, "native_bf16", lambda: (has, "test: patched"))


def config(**kw):
    return TrainConfig(num_steps=1, device="cpu", **kw)


def test_auto_is_float32_on_a_cpu_without_native_bf16(monkeypatch):
    native(monkeypatch, False)
    monkeypatch.setitem(precision.CPU_FASTER, "fast_model", {"bf16": True, "bf16_channels_last": True,
                                                             "channels_last": False})
    chosen = resolve_precision(config(), CPU, "fast_model")     # even for a model measured faster
    assert chosen.amp_dtype is None and chosen.name == "float32" and "no native BF16" in chosen.why
    assert chosen.memory_format == "contiguous"
    for name, faster in precision.CPU_FASTER.items():               # the committed table, model by model
        chosen = resolve_precision(config(), CPU, name)
        assert chosen.name == "float32"
        assert chosen.memory_format == ("channels_last" if faster["channels_last"] else "contiguous")


def test_auto_is_bf16_only_with_native_bf16_and_a_model_measured_faster(monkeypatch):
    native(monkeypatch, True)
    monkeypatch.setitem(precision.CPU_FASTER, "fast_model", {"bf16": True, "bf16_channels_last": True,
                                                             "channels_last": False})
    monkeypatch.setitem(precision.CPU_FASTER, "slow_model", {"bf16": False, "bf16_channels_last": True,
                                                             "channels_last": False})
    fast = resolve_precision(config(), CPU, "fast_model")
    assert fast.amp_dtype is torch.bfloat16 and fast.memory_format == "channels_last"
    for name in ("slow_model", "never_measured"):     # float32, so the float32 layout (contiguous)
        slow = resolve_precision(config(), CPU, name)
        assert slow.amp_dtype is None and slow.memory_format == "contiguous" and "not measured faster" in slow.why
    # an explicit bf16 with the auto layout takes the bfloat16 layout; an explicit fp32 the float32 one
    assert resolve_precision(config(cpu_precision="bf16"), CPU, "slow_model").memory_format == "channels_last"
    assert resolve_precision(config(cpu_precision="fp32"), CPU, "fast_model").memory_format == "contiguous"


def test_the_committed_table_on_a_cpu_with_native_bf16(monkeypatch):
    """What the measurements of benchmarks/bench_training.py on an AVX512-BF16 CPU put in CPU_FASTER: five models
    in bfloat16 (not DeepFill v1), channels_last for the three whose bfloat16 was faster in it."""
    native(monkeypatch, True)
    layouts = {}
    for name, faster in precision.CPU_FASTER.items():
        chosen = resolve_precision(config(), CPU, name)
        assert chosen.name == ("bfloat16" if faster["bf16"] else "float32")
        layouts[name] = chosen.memory_format
    assert set(precision.CPU_FASTER) == {"context_encoder", "cascade_context_encoder", "glcic", "deepfill",
                                         "partial_conv", "deepfill_v2"}
    assert [n for n, f in layouts.items() if f == "channels_last"] == [
        "context_encoder", "cascade_context_encoder", "glcic"]
    assert not precision.CPU_FASTER["deepfill"]["bf16"]      # its faster setting gave NaN weights (the table's note)


def test_explicit_choices_are_honoured_on_the_cpu(monkeypatch):
    native(monkeypatch, False)
    monkeypatch.setitem(precision.CPU_FASTER, "fast_model", {"bf16": True, "bf16_channels_last": True, "channels_last": True})
    asked = resolve_precision(config(cpu_precision="bf16", memory_format="channels_last"), CPU, "any")
    assert asked.amp_dtype is torch.bfloat16 and asked.memory_format == "channels_last" and "emulated" in asked.why
    native(monkeypatch, True)
    plain = resolve_precision(config(cpu_precision="fp32", memory_format="contiguous"), CPU, "fast_model")
    assert plain.amp_dtype is None and plain.memory_format == "contiguous"
    # the older switch still works: amp=True is bf16 on a CPU, amp=False float32
    assert resolve_precision(config(amp=True), CPU, "any").amp_dtype is torch.bfloat16
    assert resolve_precision(config(amp=False), CPU, "fast_model").amp_dtype is None
    with pytest.raises(ValueError, match=r"amp=True contradicts cpu_precision='fp32'"):
        resolve_precision(config(amp=True, cpu_precision="fp32"), CPU, "any")


def test_cuda_keeps_its_amp_whatever_the_cpu_setting(monkeypatch):
    native(monkeypatch, True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda *a, **k: False)
    cuda = torch.device("cuda")
    assert resolve_precision(config(cpu_precision="fp32"), cuda, "any").amp_dtype is torch.float16
    assert resolve_precision(config(cpu_precision="bf16", amp=False), cuda, "any").amp_dtype is None
    assert resolve_precision(config(amp_dtype="bf16"), cuda, "any").amp_dtype is torch.bfloat16
    monkeypatch.setitem(precision.CPU_FASTER, "fast_model", {"bf16": True, "bf16_channels_last": True, "channels_last": True})
    assert resolve_precision(config(), cuda, "fast_model").memory_format == "contiguous"   # auto: the CPU's table
    assert resolve_precision(config(memory_format="channels_last"), cuda, "x").memory_format == "channels_last"


def test_bad_values_are_refused_by_name():
    with pytest.raises(ValueError, match=r"cpu_precision must be one of \('auto', 'fp32', 'bf16'\), got 'bfloat16'"):
        TrainConfig(num_steps=1, cpu_precision="bfloat16")
    with pytest.raises(ValueError, match=r"memory_format must be one of .*got 'nhwc'"):
        TrainConfig(num_steps=1, memory_format="nhwc")


def test_native_bf16_reads_the_cpu_flags(tmp_path):
    if not torch.backends.mkldnn.is_available():
        pytest.skip("torch without oneDNN: native_bf16 is always False")
    fake = tmp_path / "cpuinfo"
    fake.write_text("processor\t: 0\nflags\t\t: fpu sse avx2 fma\n")
    assert precision.native_bf16(fake) == (False, f"{fake} has none of the flags avx512_bf16, amx_bf16, bf16")
    fake = tmp_path / "cpuinfo_spr"
    fake.write_text("processor\t: 0\nflags\t\t: fpu avx512f avx512_bf16 amx_tile amx_bf16\n")
    assert precision.native_bf16(fake) == (True, f"{fake} flags avx512_bf16, amx_bf16")
    arm = tmp_path / "cpuinfo_arm"
    arm.write_text("processor\t: 0\nFeatures\t: fp asimd sve bf16 i8mm\n")
    assert precision.native_bf16(arm)[0] is True


class Reconstruct:
    """One convolution (a 4-D weight, so channels_last moves it) learning the identity, with Adam."""

    def __init__(self, seed=0):
        torch.manual_seed(seed)
        self.models = {"net": nn.Sequential(nn.Conv2d(3, 8, 3, padding=1), nn.ReLU(), nn.Conv2d(8, 3, 3, padding=1))}
        self.optimizers = {"net": torch.optim.Adam(self.models["net"].parameters(), lr=1e-2)}
        self.dtypes, self.layouts = [], []

    def train_step(self, batch, step, ctx):
        net = self.models["net"]
        self.layouts.append(batch.is_contiguous(memory_format=torch.channels_last)
                            and net[0].weight.is_contiguous(memory_format=torch.channels_last))
        with ctx.autocast():
            out = net(batch)
            loss = ((out - batch) ** 2).mean()
        self.dtypes.append(out.dtype)
        ctx.backward(loss, "net")
        ctx.step("net")
        return {"l2": loss.item()}


def images(n=8):
    return torch.rand(n, 3, 16, 16, generator=torch.Generator().manual_seed(0))


def run(task, run_dir, num_steps, **kw):
    base = dict(num_steps=num_steps, batch_size=4, seed=1, device="cpu", log_every=1, sample_every=None,
                checkpoint_every=None, run_dir=run_dir, progress=False, tensorboard=False)
    return train(task, images(), TrainConfig(**{**base, **kw}), model_name="reconstruct", model_config={})


def test_a_bf16_step_lowers_the_loss_and_keeps_float32_weights_and_optimizer_state(tmp_path):
    task = Reconstruct()
    summary = run(task, tmp_path, 30, cpu_precision="bf16", memory_format="channels_last")
    assert summary["precision"] == "bfloat16" and summary["memory_format"] == "channels_last"
    assert set(task.dtypes) == {torch.bfloat16} and all(task.layouts)
    l2 = [r["l2"] for r in read_metrics(tmp_path)]
    assert sum(l2[-5:]) / 5 < 0.5 * sum(l2[:5]) / 5, l2
    net = task.models["net"]
    assert all(p.dtype == torch.float32 for p in net.parameters())
    assert net[0].weight.is_contiguous()            # channels_last inside the loop only: the models leave contiguous
    state = task.optimizers["net"].state_dict()["state"]
    assert state and all(v.dtype == torch.float32 for s in state.values() for k, v in s.items() if k != "step")


@pytest.mark.parametrize("first,then", [("bf16", "fp32"), ("fp32", "bf16")])
def test_a_checkpoint_resumes_under_the_other_precision(tmp_path, first, then):
    formats = {"bf16": "channels_last", "fp32": "contiguous"}
    run(Reconstruct(), tmp_path, 4, cpu_precision=first, memory_format=formats[first])
    written = latest_checkpoint(tmp_path)
    weights = load_file(str(next(written.glob("*.safetensors"))))
    assert weights and all(t.dtype == torch.float32 and t.is_contiguous() for t in weights.values())
    names = {"bf16": "bfloat16", "fp32": "float32"}
    assert training_summary(written)["precision"] == names[first]
    assert json.loads((written / "checkpoint.json").read_text())["step"] == 4
    resumed = Reconstruct(seed=5)          # other initial weights: the checkpoint's must replace them
    with pytest.warns(UserWarning, match=rf"precision: '{names[first]}' -> '{names[then]}'"):
        summary = run(resumed, tmp_path, 8, cpu_precision=then, memory_format=formats[then])
    assert summary["start_step"] == 4 and summary["step"] == 8 and summary["precision"] == names[then]
    assert set(resumed.dtypes) == {torch.bfloat16 if then == "bf16" else torch.float32}
    after = training_summary(latest_checkpoint(tmp_path))
    assert after["precision"] == names[then] and after["memory_format"] == formats[then]
    l2 = [r["l2"] for r in read_metrics(tmp_path)]
    assert len(l2) == 8 and l2[4] < l2[0]   # the resumed run goes on from the trained weights, not fresh ones


def test_the_summary_and_checkpoint_record_the_resolved_precision(tmp_path, monkeypatch):
    native(monkeypatch, False)
    summary = run(Reconstruct(), tmp_path, 2)
    assert (summary["precision"], summary["memory_format"]) == ("float32", "contiguous")
    assert "no native BF16" in summary["precision_why"]
    recorded = training_summary(latest_checkpoint(tmp_path))
    assert (recorded["precision"], recorded["memory_format"]) == ("float32", "contiguous")
