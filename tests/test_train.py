"""The training loop: exact resume on CPU, Ctrl-C saves, NaN stops, logging, samples, data order, AMP
bookkeeping; with a tiny conv generator and discriminator on 16x16 random images."""
import csv
import math
import os
import signal
import warnings

import matplotlib

matplotlib.use("Agg")  # sample grids drawn off-screen

import pytest  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

from inpaint_utils.checkpoint import CheckpointError, latest_checkpoint  # noqa: E402
from inpaint_utils.train import (NonFiniteLossError, StepContext, Task, TrainConfig, batch_indices,  # noqa: E402
                                 epoch_permutation, read_metrics, step_crops, train)

@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny models gain nothing from threads, and on a busy 2-core machine they make them crawl."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


SIZE = 16
MODEL_CONFIG = {"image_size": SIZE, "width": 8}


class TinyGenerator(nn.Module):
    """Masked RGB + mask in, RGB out; BatchNorm (buffers) and Dropout (torch's global RNG) included so
    the test covers every piece of state a resume has to restore."""

    def __init__(self, width=8):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(4, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                 nn.Dropout(0.2), nn.Conv2d(width, 3, 3, padding=1))

    def forward(self, image, mask):
        return torch.sigmoid(self.net(torch.cat([image * (1 - mask), mask], dim=1)))


class TinyDiscriminator(nn.Module):
    def __init__(self, width=4):
        super().__init__()
        self.net = nn.Sequential(nn.Conv2d(3, width, 4, stride=2, padding=1), nn.LeakyReLU(0.2),
                                 nn.Conv2d(width, 1, 3, padding=1))

    def forward(self, x):
        return self.net(x).mean(dim=(1, 2, 3))  # (B,)


def random_box_masks(batch, generator):
    """(B, 1, 16, 16) masks with one random 6x6 hole each, drawn from ``generator``."""
    mask = torch.zeros(batch, 1, SIZE, SIZE)
    corners = torch.randint(0, SIZE - 6, (batch, 2), generator=generator)
    for b, (y, x) in enumerate(corners.tolist()):
        mask[b, :, y:y + 6, x:x + 6] = 1
    return mask


class TinyGANTask:
    """Context-Encoder-like: D update on the detached composite, then G update with L2 + adversarial."""

    def __init__(self, init_seed=0, hooks=None):
        torch.manual_seed(init_seed)
        self.models = {"generator": TinyGenerator(), "discriminator": TinyDiscriminator()}
        self.optimizers = {"generator": torch.optim.Adam(self.models["generator"].parameters(), lr=2e-3,
                                                         betas=(0.5, 0.999)),
                           "discriminator": torch.optim.Adam(self.models["discriminator"].parameters(), lr=2e-4,
                                                             betas=(0.5, 0.999))}
        self.hooks = hooks or {}
        self.calls = []

    def train_step(self, batch, step, ctx):
        self.calls.append(step)
        if "start" in self.hooks:
            self.hooks["start"](step)
        G, D = self.models["generator"], self.models["discriminator"]
        mask = random_box_masks(len(batch), ctx.generator).to(ctx.device)
        noise = 0.01 * torch.randn(batch.shape, generator=ctx.generator).to(ctx.device)
        if "drawn" in self.hooks:
            self.hooks["drawn"](step)
        bce = nn.functional.binary_cross_entropy_with_logits
        with ctx.autocast():
            pred = G((batch + noise).clamp(0, 1), mask)
            completed = mask * pred + (1 - mask) * batch
            real, fake = D(batch), D(completed.detach())
            d_loss = bce(real, torch.ones_like(real)) + bce(fake, torch.zeros_like(fake))
        ctx.backward(d_loss, "discriminator")
        ctx.step("discriminator")
        if "after_d" in self.hooks:
            self.hooks["after_d"](step)
        with ctx.autocast():
            l2 = ((pred - batch) ** 2 * mask).sum() / mask.sum()
            fake = D(completed)
            adv = bce(fake, torch.ones_like(fake))
            g_loss = 0.999 * l2 + 0.001 * adv
        if "g_loss" in self.hooks:
            g_loss = self.hooks["g_loss"](step, g_loss)
        ctx.backward(g_loss, "generator", name="g_loss")
        ctx.step("generator")
        return {"l2": l2.item(), "adv": adv.item(), "d": d_loss.item()}

    def sample(self, batch, generator):
        mask = random_box_masks(len(batch), generator).to(batch.device)
        pred = self.models["generator"](batch, mask)
        return {"masked": batch * (1 - mask), "output": mask * pred + (1 - mask) * batch, "target": batch}


def images(n=24, seed=0):
    return torch.rand(n, 3, SIZE, SIZE, generator=torch.Generator().manual_seed(seed))


def cfg(run_dir, num_steps=20, **kw):
    base = dict(num_steps=num_steps, batch_size=4, seed=3, device="cpu", log_every=3, sample_every=10,
                checkpoint_every=4, keep_last=2, run_dir=run_dir, progress=False, tensorboard=False, num_samples=3)
    base.update(kw)
    return TrainConfig(**base)


def run(task, run_dir, num_steps=20, resume=True, data=None, **kw):
    return train(task, images() if data is None else data, cfg(run_dir, num_steps, **kw), model_name="tiny_gan",
                 model_config=MODEL_CONFIG, resume=resume)


def full_state(task):
    return ({k: {n: t.clone() for n, t in m.state_dict().items()} for k, m in task.models.items()},
            {k: o.state_dict() for k, o in task.optimizers.items()})


def equal_nested(a, b):
    if isinstance(a, torch.Tensor):
        return isinstance(b, torch.Tensor) and torch.equal(a, b)
    if isinstance(a, dict):
        return isinstance(b, dict) and a.keys() == b.keys() and all(equal_nested(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(equal_nested(x, y) for x, y in zip(a, b))
    return a == b


def csv_rows(run_dir):
    with open(run_dir / "metrics.csv", newline="") as f:
        return list(csv.DictReader(f))


def losses_only(rows):
    return [{k: v for k, v in r.items() if k != "time_s"} for r in rows]


@pytest.fixture(scope="module")
def straight(tmp_path_factory):
    """The reference: 20 uninterrupted steps."""
    run_dir = tmp_path_factory.mktemp("straight")
    task = TinyGANTask(init_seed=0)
    summary = run(task, run_dir)
    return {"state": full_state(task), "rows": csv_rows(run_dir), "summary": summary, "run_dir": run_dir}


def assert_same_as_straight(task, run_dir, straight, extended_at=None):
    """Weights and optimiser states equal the uninterrupted run's; metrics.csv too. A run that ended
    at ``num_steps=extended_at`` and was then extended wrote a final row there, so the log windows
    around that step differ (rows ``extended_at`` and the next one); every other row is identical."""
    models, opts = full_state(task)
    ref_models, ref_opts = straight["state"]
    for name in ref_models:
        for key, value in ref_models[name].items():
            assert torch.equal(models[name][key], value), f"{name}.{key} differs from the uninterrupted run"
    assert equal_nested(opts, ref_opts)
    rows = losses_only(csv_rows(run_dir))
    ref = losses_only(straight["rows"])
    if extended_at is None:
        assert [r["step"] for r in rows] == [str(s) for s in (*range(3, 21, 3), 20)]  # continuous, no duplicates
        assert rows == ref
    else:
        steps = sorted({*range(3, 21, 3), 20, extended_at})
        assert [r["step"] for r in rows] == [str(s) for s in steps]
        changed = {str(extended_at), str(min(s for s in steps if s > extended_at))}
        ref_by_step = {r["step"]: r for r in ref}
        assert [r for r in rows if r["step"] not in changed] == [r for r in ref if r["step"] not in changed]
        assert all(r["step"] in ref_by_step for r in rows if r["step"] not in changed)


def test_straight_run_summary_and_files(straight):
    s, run_dir = straight["summary"], straight["run_dir"]
    assert s["step"] == 20 and s["start_step"] == 0 and s["resumed_from"] is None
    assert set(s["losses"]) == {"l2", "adv", "d"} and s["images_per_s"] > 0 and s["amp_dtype"] is None
    assert s["checkpoint"] == run_dir / "checkpoints" / "step_000020"
    # keep_last=2 of the checkpoints at 4, 8, 12, 16, 20
    assert sorted(p.name for p in (run_dir / "checkpoints").iterdir()) == ["step_000016", "step_000020"]
    assert sorted(p.name for p in (run_dir / "samples").iterdir()) == ["step_000010.png", "step_000020.png"]
    assert s["last_sample"] == run_dir / "samples" / "step_000020.png"
    rows = read_metrics(run_dir)
    assert [r["step"] for r in rows] == [3, 6, 9, 12, 15, 18, 20]  # every log_every steps, and the last
    assert all(set(r) == {"step", "time_s", "l2", "adv", "d"} for r in rows)


def test_resume_is_bit_identical_to_an_uninterrupted_run(tmp_path, straight, capsys):
    first = TinyGANTask(init_seed=0)
    run(first, tmp_path, num_steps=10)  # stops at 10: mid-epoch (6 steps per epoch), mid log window
    assert latest_checkpoint(tmp_path).name == "step_000010"
    second = TinyGANTask(init_seed=123)  # fresh objects, other initial weights: as a new process would have
    summary = run(second, tmp_path, num_steps=20)
    assert "resuming from" in capsys.readouterr().out and "step_000010" in str(summary["resumed_from"])
    assert summary["start_step"] == 10 and summary["step"] == 20 and second.calls == list(range(10, 20))
    assert_same_as_straight(second, tmp_path, straight, extended_at=10)


def test_a_finished_run_is_not_trained_again(tmp_path, capsys):
    run(TinyGANTask(), tmp_path, num_steps=4)
    task = TinyGANTask(init_seed=5)
    summary = run(task, tmp_path, num_steps=4)
    assert task.calls == [] and summary["step"] == 4 and summary["images_per_s"] == 0.0
    assert "nothing to do" in capsys.readouterr().out


def test_ctrl_c_finishes_the_step_saves_and_resumes_exactly(tmp_path, straight):
    def interrupt(step):
        if step == 6:
            os.kill(os.getpid(), signal.SIGINT)  # what Jupyter's "interrupt kernel" sends

    before = signal.getsignal(signal.SIGINT)  # default_int_handler; SIG_IGN under `nohup ... &`
    task = TinyGANTask(hooks={"start": interrupt})
    with pytest.raises(KeyboardInterrupt, match="interrupted at step 7"):
        run(task, tmp_path)
    assert task.calls == list(range(7))  # step 6 was finished, nothing after it
    assert latest_checkpoint(tmp_path).name == "step_000007"
    assert signal.getsignal(signal.SIGINT) is before  # handler restored
    resumed = TinyGANTask(init_seed=9)
    run(resumed, tmp_path)
    assert_same_as_straight(resumed, tmp_path, straight)


def test_keyboard_interrupt_before_any_update_saves_the_previous_step(tmp_path, straight):
    def boom(step):
        if step == 6:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):  # after the masks were drawn: the generator must be rewound
        run(TinyGANTask(hooks={"drawn": boom}), tmp_path)
    assert latest_checkpoint(tmp_path).name == "step_000006"
    resumed = TinyGANTask(init_seed=9)
    run(resumed, tmp_path)
    assert_same_as_straight(resumed, tmp_path, straight)


def test_keyboard_interrupt_after_a_partial_update_saves_with_a_warning(tmp_path):
    def boom(step):
        if step == 5:
            raise KeyboardInterrupt

    with pytest.warns(UserWarning, match=r"inside step 5 after updating \['discriminator'\]"):
        with pytest.raises(KeyboardInterrupt):
            run(TinyGANTask(hooks={"after_d": boom}), tmp_path)
    assert latest_checkpoint(tmp_path).name == "step_000006"


def test_nan_loss_stops_naming_step_and_loss_without_saving_it(tmp_path):
    task = TinyGANTask(hooks={"g_loss": lambda step, loss: loss * float("nan") if step == 5 else loss})
    before_g = None

    def remember(step):
        nonlocal before_g
        if step == 5:
            before_g = {k: v.clone() for k, v in task.models["generator"].state_dict().items()}

    task.hooks["after_d"] = remember
    with pytest.raises(NonFiniteLossError, match=r"g_loss is nan at step 5: stopping before it reaches the weights"):
        run(task, tmp_path, checkpoint_every=2, keep_last=None)
    names = sorted(p.name for p in (tmp_path / "checkpoints").iterdir())
    assert names == ["step_000002", "step_000004"]  # nothing at or after the NaN
    after_g = task.models["generator"].state_dict()
    assert all(torch.equal(before_g[k], after_g[k]) for k in before_g)  # the NaN never reached the weights


def test_non_finite_logged_value_stops_too(tmp_path):
    class InfTask(TinyGANTask):
        def train_step(self, batch, step, ctx):
            out = super().train_step(batch, step, ctx)
            return {**out, "ratio": float("inf")} if step == 2 else out

    with pytest.raises(NonFiniteLossError, match=r"loss 'ratio' is inf at step 2"):
        run(InfTask(), tmp_path, checkpoint_every=1, keep_last=None)
    assert latest_checkpoint(tmp_path).name == "step_000002"


def test_training_lowers_the_loss_on_a_learnable_task(tmp_path):
    class Reconstruct:
        def __init__(self):
            torch.manual_seed(0)
            self.models = {"net": nn.Conv2d(3, 3, 3, padding=1)}
            self.optimizers = {"net": torch.optim.Adam(self.models["net"].parameters(), lr=1e-2)}

        def train_step(self, batch, step, ctx):
            with ctx.autocast():
                loss = ((self.models["net"](batch) - batch) ** 2).mean()
            ctx.backward(loss, "net")
            ctx.step("net")
            return {"l2": loss.item()}

    train(Reconstruct(), images(8), cfg(tmp_path, 50, log_every=1, sample_every=None, checkpoint_every=None),
          model_name="reconstruct", model_config={})
    l2 = [r["l2"] for r in read_metrics(tmp_path)]
    assert len(l2) == 50
    first, last = sum(l2[:5]) / 5, sum(l2[-5:]) / 5
    assert last < 0.5 * first, (first, last)


def test_resume_refuses_another_model_config_or_name(tmp_path):
    run(TinyGANTask(), tmp_path, num_steps=4)
    with pytest.raises(CheckpointError, match=r"width: checkpoint 8, given 16"):
        train(TinyGANTask(), images(), cfg(tmp_path, 8), model_name="tiny_gan",
              model_config={"image_size": SIZE, "width": 16})
    with pytest.raises(CheckpointError, match=r"holds model 'tiny_gan', but model_name='glcic'"):
        train(TinyGANTask(), images(), cfg(tmp_path, 8), model_name="glcic", model_config=MODEL_CONFIG)
    with pytest.raises(FileExistsError, match=r"already holds checkpoints .*resume=True"):
        run(TinyGANTask(), tmp_path, num_steps=8, resume=False)


def test_resume_with_other_batch_size_warns(tmp_path):
    run(TinyGANTask(), tmp_path, num_steps=4)
    with pytest.warns(UserWarning, match=r"batch_size: 4 -> 6"):
        run(TinyGANTask(), tmp_path, num_steps=6, batch_size=6)


def test_resume_from_an_explicit_checkpoint_path(tmp_path, straight):
    resumed = TinyGANTask(init_seed=4)
    summary = run(resumed, tmp_path, resume=straight["run_dir"] / "checkpoints" / "step_000016")
    assert summary["start_step"] == 16 and resumed.calls == [16, 17, 18, 19]
    ref_models, _ = straight["state"]
    for key, value in ref_models["generator"].items():
        assert torch.equal(resumed.models["generator"].state_dict()[key], value)


def test_new_loss_names_add_columns(tmp_path):
    class Phased(TinyGANTask):  # GLCIC-style: a loss that only exists from some step on
        def train_step(self, batch, step, ctx):
            out = super().train_step(batch, step, ctx)
            return {"l2": out["l2"]} if step < 4 else out

    run(Phased(), tmp_path, num_steps=8, log_every=2, sample_every=None)
    rows = read_metrics(tmp_path)
    assert [r["step"] for r in rows] == [2, 4, 6, 8]
    assert set(rows[0]) == {"step", "time_s", "l2"} and set(rows[-1]) == {"step", "time_s", "l2", "adv", "d"}
    with open(tmp_path / "metrics.csv") as f:
        assert f.readline().strip() == "step,time_s,l2,adv,d"


def test_batch_order_is_a_stream_of_seeded_epochs():
    n, b = 10, 3  # batches run on across epoch boundaries: step 3 takes the last image of epoch 0
    stream = epoch_permutation(n, 1, 0).tolist() + epoch_permutation(n, 1, 1).tolist()
    flat = sum((batch_indices(s, n, b, seed=1) for s in range(6)), [])
    assert flat == stream[:18]
    assert sorted(flat[:n]) == list(range(n))              # every image once per epoch
    assert batch_indices(4, n, b, seed=1) == batch_indices(4, n, b, seed=1)
    assert batch_indices(0, n, b, seed=2) != batch_indices(0, n, b, seed=1)
    # fewer images than a batch: the same rule, images repeat (no error, no special case)
    small = batch_indices(0, 3, 8, seed=1)
    assert small == sum((epoch_permutation(3, 1, e).tolist() for e in range(3)), [])[:8]
    assert batch_indices(1, 1, 4, seed=0) == [0, 0, 0, 0]
    with pytest.raises(ValueError, match="at least one image"):
        batch_indices(0, 0, 4, seed=1)


def test_step_crops_are_seeded_by_step_and_differ_between_rows():
    a, b = step_crops(5, 8, seed=0), step_crops(5, 8, seed=0)
    assert torch.equal(a, b) and a.shape == (8, 2, 3)
    assert not torch.equal(step_crops(6, 8, seed=0), a) and not torch.equal(step_crops(5, 8, seed=1), a)
    assert torch.equal(step_crops(5, 4, seed=0), a[:4])       # rows do not depend on the batch size
    assert len({tuple(row.flatten().tolist()) for row in a}) == 8


def test_a_dataset_smaller_than_the_batch_trains_on_distinct_crops(tmp_path):
    seen = []

    class Spy(TinyGANTask):
        def train_step(self, batch, step, ctx):
            seen.append(batch.clone())
            return super().train_step(batch, step, ctx)

    data = images(3)
    summary = run(Spy(), tmp_path, num_steps=2, batch_size=8, data=data, sample_every=None)
    assert summary["step"] == 2 and [b.shape[0] for b in seen] == [8, 8]
    for step, batch in enumerate(seen):
        order = batch_indices(step, 3, 8, seed=3)
        assert len(set(order)) == 3                             # each of the 3 images more than once ...
        rows = {tuple(batch[k].flatten().tolist()) for k in range(8)}
        assert len(rows) == 8                                   # ... but every row a different crop or flip
        assert 0 <= batch.min() and batch.max() <= 1
    plain = []

    class PlainSpy(Spy):
        def train_step(self, batch, step, ctx):
            plain.append(batch.clone())
            return TinyGANTask.train_step(self, batch, step, ctx)

    run(PlainSpy(), tmp_path / "plain", num_steps=1, batch_size=8, data=data, sample_every=None, augment=False)
    assert torch.equal(plain[0], data[batch_indices(0, 3, 8, seed=3)])   # augment=False: the images as they are


class TwoBatchTask(TinyGANTask):
    """A step on two batches (``batches_per_step = 2``): the discriminator-and-generator step of
    TinyGANTask on each half in turn, recording what it got."""

    batches_per_step = 2

    def __init__(self, *args, **kw):
        super().__init__(*args, **kw)
        self.seen = []

    def train_step(self, batch, step, ctx):
        self.seen.append(batch.clone())
        first, second = batch.chunk(2)
        out = super().train_step(first, step, ctx)
        out2 = super().train_step(second, step, ctx)
        return {k: (out[k] + out2[k]) / 2 for k in out}


def test_a_task_can_take_several_distinct_batches_per_step_and_resume_exactly(tmp_path):
    from inpaint_utils.data import apply_crop_flip

    data = images(24)
    task = TwoBatchTask()
    summary = run(task, tmp_path / "straight", num_steps=6, sample_every=None)
    assert [len(b) for b in task.seen] == [8] * 6 and summary["images_per_s"] > 0
    for step, batch in enumerate(task.seen):
        # the batches 2 * step and 2 * step + 1 of the one-batch stream, each with that batch's crops
        order = batch_indices(step, 24, 4, seed=3, batches_per_step=2)
        assert order == batch_indices(2 * step, 24, 4, seed=3) + batch_indices(2 * step + 1, 24, 4, seed=3)
        crops = torch.cat([step_crops(2 * step, 4, 3), step_crops(2 * step + 1, 4, 3)])
        assert torch.equal(batch, apply_crop_flip(data[order], crops))
    seen = sum((batch_indices(s, 24, 4, seed=3, batches_per_step=2) for s in range(3)), [])
    assert sorted(seen) == list(range(24))                      # 3 steps x 2 batches x 4 = one epoch, no repeats
    # resume: 3 steps, then 3 more, equals the 6 straight ones (weights and optimiser states)
    run(TwoBatchTask(), tmp_path / "resumed", num_steps=3, sample_every=None)
    resumed = TwoBatchTask(init_seed=7)
    run(resumed, tmp_path / "resumed", num_steps=6, sample_every=None)
    assert len(resumed.seen) == 3 and all(torch.equal(a, b) for a, b in zip(resumed.seen, task.seen[3:]))
    assert equal_nested(full_state(resumed), full_state(task))
    # a resume with another batches_per_step moves the data stream: warned about
    other = TinyGANTask()
    with pytest.warns(UserWarning, match="batches_per_step: 2 -> 1"):
        run(other, tmp_path / "resumed", num_steps=7, sample_every=None)

    class Bad(TinyGANTask):
        batches_per_step = 0

    with pytest.raises(ValueError, match=r"task\.batches_per_step must be a positive int, got 0"):
        run(Bad(), tmp_path / "bad", num_steps=1)


def test_worker_processes_give_the_same_run(tmp_path):
    a, b = TinyGANTask(), TinyGANTask()
    run(a, tmp_path / "a", num_steps=6, sample_every=None)
    run(b, tmp_path / "b", num_steps=6, sample_every=None, num_workers=2)
    for key, value in a.models["generator"].state_dict().items():
        assert torch.equal(b.models["generator"].state_dict()[key], value)


# ------------------------------------------------------------------ decoded-image cache and data wait

def png_folder(root, n=12):
    """``n`` random 16x16 PNGs read at 16 px: pixels k / 255, which the uint8 cache holds exactly."""
    import numpy as np
    from PIL import Image

    from inpaint_utils.data import ImageFolder

    root.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        Image.fromarray(rng.integers(0, 256, (SIZE, SIZE, 3), dtype=np.uint8)).save(root / f"{i:02d}.png")
    return ImageFolder(root, size=SIZE, preprocess="256")


class BatchSpy(TinyGANTask):
    def __init__(self):
        super().__init__()
        self.batches, self.losses = [], []

    def train_step(self, batch, step, ctx):
        self.batches.append(batch.clone())
        self.losses.append(super().train_step(batch, step, ctx))
        return self.losses[-1]


def test_the_cache_trains_as_the_files_do_and_the_summary_says_how_long_steps_waited(tmp_path):
    folder = png_folder(tmp_path / "images")
    plain, cached = BatchSpy(), BatchSpy()
    a = run(plain, tmp_path / "none", num_steps=4, data=folder, cache="none", sample_every=None)
    b = run(cached, tmp_path / "auto", num_steps=4, data=folder, sample_every=None)   # cache="auto", the default
    assert a["cache"] == "none" and b["cache"].startswith("memory (12 images")
    assert plain.losses[0] == cached.losses[0] and plain.losses == cached.losses
    assert all(torch.equal(x, y) for x, y in zip(plain.batches, cached.batches))
    for key, value in plain.models["generator"].state_dict().items():
        assert torch.equal(cached.models["generator"].state_dict()[key], value)
    for s in (a, b):
        assert 0 <= s["data_wait_s"] <= s["wall_time_s"] and 0 <= s["data_wait_share"] <= 1 and s["cache_s"] >= 0
    assert run(TinyGANTask(), tmp_path / "tensor", num_steps=1)["cache"] == "none (a tensor: already in memory)"


def test_a_run_resumes_across_cache_settings_without_a_warning(tmp_path):
    folder = png_folder(tmp_path / "images")
    run(TinyGANTask(), tmp_path / "run", num_steps=2, data=folder, cache="none", sample_every=None)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        summary = run(TinyGANTask(), tmp_path / "run", num_steps=4, data=folder, sample_every=None)
    assert summary["start_step"] == 2 and summary["step"] == 4 and summary["cache"].startswith("memory")


def test_loader_workers_read_a_cache_filled_before_they_start(tmp_path):
    folder = png_folder(tmp_path / "images")
    a, b = BatchSpy(), BatchSpy()
    run(a, tmp_path / "a", num_steps=3, data=folder, sample_every=None, cache="none")
    summary = run(b, tmp_path / "b", num_steps=3, data=folder, sample_every=None, num_workers=2)
    assert summary["cache"] == "memory (12 images, 9.2 KB, 12 decoded so far)"   # 3 x 4 images read: worth it
    assert a.losses == b.losses


def test_data_wait_share_counts_a_slow_loader(tmp_path):
    import time

    class Slow(torch.utils.data.Dataset):  # not a dataset cache="auto" knows: read every time
        def __len__(self):
            return 8

        def __getitem__(self, i):
            time.sleep(0.02)
            return torch.full((3, SIZE, SIZE), i / 8)

    summary = run(TinyGANTask(), tmp_path, num_steps=3, data=Slow(), sample_every=None, checkpoint_every=None)
    assert summary["cache"].startswith("none (a Slow")
    assert summary["data_wait_s"] >= 3 * 4 * 0.02 and 0.5 < summary["data_wait_share"] <= 1


def test_backward_reaches_only_the_named_optimizer_and_clips():
    G, D = nn.Linear(4, 4), nn.Linear(4, 1)
    opts = {"generator": torch.optim.SGD(G.parameters(), lr=1.0), "discriminator": torch.optim.SGD(D.parameters(),
                                                                                                   lr=1.0)}
    ctx = StepContext(opts, torch.device("cpu"), torch.Generator().manual_seed(0), grad_clip=0.1)
    loss = D(G(torch.ones(2, 4))).sum() * 100  # the generator loss flows through D
    ctx.backward(loss, "generator")
    assert all(p.grad is None for p in D.parameters()) and all(p.grad is not None for p in G.parameters())
    before = [p.detach().clone() for p in G.parameters()]
    norm = ctx.step("generator")
    assert norm > 0.1 and ctx.grad_norms == {"generator": norm}
    moved = torch.sqrt(sum(((p.detach() - q) ** 2).sum() for p, q in zip(G.parameters(), before)))
    assert moved == pytest.approx(0.1, rel=1e-4)  # SGD with lr 1: the step is the clipped gradient
    assert all(p.grad is None for p in G.parameters()) and ctx.stepped == ["generator"]
    with pytest.raises(KeyError, match=r"no optimizer 'critic'"):
        ctx.step("critic")
    with pytest.raises(NonFiniteLossError, match=r"loss of optimizer 'generator' is inf at step 0"):
        ctx.backward(torch.tensor(float("inf"), requires_grad=True), "generator")


def test_bf16_autocast_on_cpu(tmp_path):
    seen = []

    class Spy(TinyGANTask):
        def train_step(self, batch, step, ctx):
            with ctx.autocast():
                seen.append(self.models["discriminator"](batch).dtype)
            return super().train_step(batch, step, ctx)

    summary = run(Spy(), tmp_path, num_steps=2, amp=True, sample_every=None)
    assert summary["amp_dtype"] == "bfloat16" and seen == [torch.bfloat16, torch.bfloat16]


def test_config_and_argument_errors(tmp_path):
    with pytest.raises(ValueError, match=r"batch_size must be a positive int, got 0"):
        TrainConfig(num_steps=1, batch_size=0)
    with pytest.raises(ValueError, match=r"amp_dtype must be 'auto', 'bf16' or 'fp16', got 'fp8'"):
        TrainConfig(num_steps=1, amp_dtype="fp8")
    with pytest.raises(ValueError, match=r"run_name must be a plain folder name"):
        TrainConfig(num_steps=1, run_name="../x")
    with pytest.raises(ValueError, match=r"amp_dtype='fp16' needs a CUDA device"):
        run(TinyGANTask(), tmp_path, num_steps=1, amp=True, amp_dtype="fp16")
    with pytest.raises(ValueError, match=r"the dataset is empty"):
        run(TinyGANTask(), tmp_path, num_steps=1, data=[])
    with pytest.raises(ValueError, match=r"augment must be True or False, got 'yes'"):
        TrainConfig(num_steps=1, augment="yes")
    with pytest.raises(ValueError, match=r"cache must be one of \('auto', 'memory', 'disk', 'none'\), got 'ram'"):
        TrainConfig(num_steps=1, cache="ram")
    with pytest.raises(ValueError, match=r"dataset must be in \[0, 1\]"):
        run(TinyGANTask(), tmp_path, num_steps=1, data=images() * 2)

    class NoOptimizers:
        models = {"g": nn.Linear(1, 1)}
        optimizers = {}

        def train_step(self, batch, step, ctx):
            return {}

    with pytest.raises(TypeError, match=r"task\.optimizers must be a non-empty dict"):
        run(NoOptimizers(), tmp_path, num_steps=1)
    assert isinstance(TinyGANTask(), Task)


def test_default_run_dir_is_under_runs(tmp_path, monkeypatch):
    monkeypatch.setenv("INPAINT_RUNS", str(tmp_path / "runs"))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert TrainConfig(num_steps=1, run_name="ce_smoke").resolved_run_dir() == tmp_path / "runs" / "ce_smoke"


# ------------------------------------------------------------------------------ one training per folder

_SLOW_TRAINING = r'''
import sys, time, torch
from torch import nn
from inpaint_utils.train import TrainConfig, train

class Slow:
    def __init__(self):
        self.net = nn.Conv2d(3, 3, 1)
        self.models = {"generator": self.net}
        self.optimizers = {"generator": torch.optim.SGD(self.net.parameters(), lr=0.01)}

    def train_step(self, batch, step, ctx):
        if step == 0:
            print("training", flush=True)
        time.sleep(0.05)
        loss = (self.net(batch) - batch).pow(2).mean()
        ctx.backward(loss, "generator"); ctx.step("generator")
        return {"loss": loss.item()}

torch.set_num_threads(1)
train(Slow(), torch.rand(8, 3, 8, 8), TrainConfig(num_steps=int(sys.argv[2]), batch_size=2, device="cpu",
      log_every=1, sample_every=None, checkpoint_every=1, keep_last=2, run_dir=sys.argv[1], progress=False,
      tensorboard=False), model_name="slow", model_config={})
print("done", flush=True)
'''


def _start_training(run_dir, steps):
    import subprocess
    import sys

    return subprocess.Popen([sys.executable, "-c", _SLOW_TRAINING, str(run_dir), str(steps)], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def test_a_second_training_into_the_same_run_folder_stops_at_once_naming_the_first(tmp_path):
    import json
    import socket

    from inpaint_utils.train import LOCK_FILE, RunLockedError

    run_dir = tmp_path / "run"
    first = _start_training(run_dir, 100_000)
    try:
        assert first.stdout.readline() == "training\n", first.stderr.read()
        holder = json.loads((run_dir / LOCK_FILE).read_text())
        assert holder["pid"] == first.pid and holder["host"] == socket.gethostname()
        assert "-c" in holder["command"] and holder["since"]
        # a second real process
        second = _start_training(run_dir, 5)
        out, err = second.communicate(timeout=120)
        assert second.returncode != 0 and "training" not in out
        assert f"RunLockedError: another training holds {run_dir / LOCK_FILE}: pid {first.pid} on " \
               f"{socket.gethostname()!r} since {holder['since']}" in err, err
        # and this one, before any step, writing nothing
        before = sorted(p.name for p in run_dir.iterdir())
        task = TinyGANTask()
        with pytest.raises(RunLockedError, match=rf"pid {first.pid} on .* since "):
            run(task, run_dir, num_steps=3)
        assert task.calls == [] and first.poll() is None
        assert json.loads((run_dir / LOCK_FILE).read_text()) == holder     # still the first one's
        assert "loss" in (run_dir / "metrics.csv").read_text().splitlines()[0]  # only the first run's columns
        assert before == sorted(p.name for p in run_dir.iterdir())
        first.send_signal(signal.SIGINT)                                  # Ctrl-C releases the lock
        first.communicate(timeout=120)
    finally:
        if first.poll() is None:
            first.kill()
            first.communicate()
    assert not (run_dir / LOCK_FILE).exists()
    assert latest_checkpoint(run_dir) is not None
    again = _start_training(run_dir, 5)                                   # now a training may go ahead
    out, err = again.communicate(timeout=120)
    assert again.returncode == 0 and out.endswith("done\n"), err
    assert not (run_dir / LOCK_FILE).exists()


def test_a_lock_left_by_a_dead_process_is_taken_over_with_a_warning(tmp_path):
    import json
    import socket
    import subprocess
    import sys

    from inpaint_utils.train import LOCK_FILE, RunLockedError

    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()  # reaped: its pid runs no more
    run_dir = tmp_path / "run"
    run_dir.mkdir()
    stale = {"pid": dead.pid, "host": socket.gethostname(), "since": "2026-01-01T00:00:00+00:00", "command": "x"}
    (run_dir / LOCK_FILE).write_text(json.dumps(stale))
    with pytest.warns(UserWarning, match=rf"left by pid {dead.pid} .* which no longer runs: taking the run folder over"):
        out = run(TinyGANTask(), run_dir, num_steps=2)
    assert out["step"] == 2 and not (run_dir / LOCK_FILE).exists()
    assert [p.name for p in run_dir.iterdir() if p.name.startswith(".")] == []
    # a dead pid on another host is not guessed stale; an unreadable lock is not taken either
    (run_dir / LOCK_FILE).write_text(json.dumps({**stale, "host": "elsewhere"}))
    with pytest.raises(RunLockedError, match=rf"pid {dead.pid} on 'elsewhere'"):
        run(TinyGANTask(), run_dir, num_steps=4)
    (run_dir / LOCK_FILE).write_text("garbage")
    with pytest.raises(RunLockedError, match="holds no readable lock; if no training is running there, delete it"):
        run(TinyGANTask(), run_dir, num_steps=4)
    assert latest_checkpoint(run_dir).name == "step_000002"


def test_the_lock_is_released_after_an_error(tmp_path):
    from inpaint_utils.train import LOCK_FILE

    run(TinyGANTask(), tmp_path, num_steps=2)
    with pytest.raises(CheckpointError):
        train(TinyGANTask(), images(), cfg(tmp_path, 4), model_name="other", model_config=MODEL_CONFIG)
    assert not (tmp_path / LOCK_FILE).exists()
    assert run(TinyGANTask(), tmp_path, num_steps=3)["step"] == 3


def test_a_damaged_newest_checkpoint_falls_back_to_the_previous_one_with_a_warning(tmp_path, straight):
    run(TinyGANTask(), tmp_path, num_steps=8)                     # checkpoints 4 and 8 (keep_last=2)
    newest = tmp_path / "checkpoints" / "step_000008"
    weights = newest / "generator.safetensors"
    weights.write_bytes(weights.read_bytes()[:-7])                # a write cut short (full disk, crash)
    task = TinyGANTask()
    with pytest.warns(UserWarning) as caught:
        out = run(task, tmp_path)
    messages = [str(w.message) for w in caught]
    assert any("skipping the damaged checkpoint step_000008" in m and "generator.safetensors is corrupt" in m
               for m in messages), messages
    assert any("moved to step_000008.damaged; resuming from step_000004" in m for m in messages), messages
    assert out["resumed_from"].name == "step_000004" and out["step"] == 20
    assert (tmp_path / "checkpoints" / "step_000008.damaged" / "generator.safetensors").is_file()  # kept
    assert_same_as_straight(task, tmp_path, straight)


def test_every_checkpoint_damaged_is_an_error_not_a_fresh_start(tmp_path):
    run(TinyGANTask(), tmp_path, num_steps=4)
    (tmp_path / "checkpoints" / "step_000004" / "training_state.pt").write_bytes(b"damaged")
    with pytest.warns(UserWarning, match="skipping the damaged checkpoint step_000004"), \
            pytest.raises(CheckpointError, match="every checkpoint under .* is damaged"):
        run(TinyGANTask(), tmp_path, num_steps=8)
    assert latest_checkpoint(tmp_path).name == "step_000004"      # left where it was


# ---------------------------------------------------------------------------------------- GPU paths

@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_fp16_on_cuda_uses_a_grad_scaler_per_optimizer_and_resumes_it(tmp_path):
    out = run(TinyGANTask(), tmp_path, num_steps=8, device="cuda", amp=True, amp_dtype="fp16")
    assert out["amp_dtype"] == "float16" and out["device"].startswith("cuda") and out["step"] == 8
    assert all(math.isfinite(v) for v in out["losses"].values())
    state = torch.load(latest_checkpoint(tmp_path) / "training_state.pt", weights_only=True)
    assert set(state["scaler"]) == {"generator", "discriminator"}
    assert all(s["scale"] > 0 for s in state["scaler"].values())
    resumed = run(TinyGANTask(), tmp_path, num_steps=12, device="cuda", amp=True, amp_dtype="fp16")
    assert resumed["start_step"] == 8 and resumed["step"] == 12


def test_on_start_is_called_once_the_run_is_accepted_and_never_for_a_refused_one(tmp_path):
    started = []
    out = train(TinyGANTask(), images(), cfg(tmp_path, 2), model_name="tiny_gan", model_config=MODEL_CONFIG,
                on_start=lambda: started.append(sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*"))))
    assert out["step"] == 2 and started == [[]]                     # before the first checkpoint
    with pytest.raises(CheckpointError):                            # another model's checkpoint: refused
        train(TinyGANTask(), images(), cfg(tmp_path, 4), model_name="other", model_config=MODEL_CONFIG,
              on_start=lambda: started.append("refused run"))
    with pytest.raises(CheckpointError):                            # another config
        train(TinyGANTask(), images(), cfg(tmp_path, 4), model_name="tiny_gan", model_config={"other": 1},
              on_start=lambda: started.append("refused run"))
    assert started == [[]]
