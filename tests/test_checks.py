"""The classroom checks: every check passes on the library's own code (and on a plain correct student
solution) and fails, with the message that names the mistake, on planted wrong versions."""
from __future__ import annotations

import sys

import pytest
import torch

from inpaint_utils import checks, losses, masks, metrics
from inpaint_utils.checks import CheckFailed, CheckResult, parse_check_lines


def _failures(result: CheckResult) -> str:
    return "\n".join(result.failures)


# --------------------------------------------------------------------------------------------------
# the result object, the printed line, strict mode
# --------------------------------------------------------------------------------------------------
def _reference_l2(pred, target, mask):
    return losses.masked_l2(pred, target, mask)


def _diluted_l2(pred, target, mask):  # averaged over every pixel instead of the hole
    return (mask * (pred - target) ** 2).mean()


def test_result_line_and_report_are_parsed(capsys):
    result = checks.check_masked_l2(_reference_l2)
    out = capsys.readouterr().out
    assert result.passed and bool(result) and result.score == 1.0 and not result.failures
    assert out.strip().endswith("CHECK masked_l2 PASS 1.00")
    assert parse_check_lines(out) == [("masked_l2", True, 1.0)]
    bad = checks.check_masked_l2(_diluted_l2)
    out = capsys.readouterr().out
    assert not bad.passed and 0 < bad.score < 1
    (name, passed, score), = parse_check_lines(out)
    assert name == "masked_l2" and passed is False and score == pytest.approx(bad.score, abs=0.005)
    assert "FAIL" in repr(bad) and bad.line() in out


def test_strict_raises_assertion_with_the_messages(monkeypatch):
    monkeypatch.delenv(checks.STRICT_ENV, raising=False)
    with pytest.raises(AssertionError, match="mean over ALL pixels") as info:
        checks.check_masked_l2(_diluted_l2, strict=True)
    assert isinstance(info.value, CheckFailed)
    assert checks.check_masked_l2(_reference_l2, strict=True).passed           # no raise when right
    monkeypatch.setenv(checks.STRICT_ENV, "0")                                  # the grader's setting
    assert not checks.check_masked_l2(_diluted_l2, strict=True).passed


def test_not_implemented_is_named_and_stops_the_check(capsys):
    def stub(pred, target, mask):
        raise NotImplementedError("TODO: the mean squared error over the hole")

    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_masked_l2(stub, strict=True)
    result = checks.check_psnr(lambda p, t: stub(p, t, None))
    assert result.score == 0 and "not implemented yet" in result.failures[0]
    assert all("not run" in m for m in result.failures[1:])
    assert "CHECK psnr FAIL 0.00" in capsys.readouterr().out


def test_not_a_function():
    result = checks.check_psnr(20.0)
    assert not result.passed and "pass the function itself" in _failures(result)


# --------------------------------------------------------------------------------------------------
# masked L2
# --------------------------------------------------------------------------------------------------
def _student_l2(pred, target, mask):  # a correct solution in plain torch (what notebook 01 shows)
    mask = mask.expand(pred.shape[0], 1, *pred.shape[-2:])
    return (mask * (pred - target) ** 2).sum() / (mask.sum() * pred.shape[1])


@pytest.mark.parametrize("fn", [_reference_l2, _student_l2])
def test_masked_l2_passes_on_right_code(fn):
    assert checks.check_masked_l2(fn).passed


@pytest.mark.parametrize("wrong, message", [
    (_diluted_l2, "mean over ALL pixels"),
    (lambda p, t, m: _student_l2(p, t, 1 - m), "1 = hole, 0 = known"),
    (lambda p, t, m: (m * (p - t) ** 2).sum() / m.expand(p.shape[0], 1, *p.shape[-2:]).sum(), "without the channels"),
    (lambda p, t, m: _student_l2(p, t, m).sqrt(), "RMSE"),
    (lambda p, t, m: ((m * (p - t) ** 2).sum(dim=(1, 2, 3)) / (m.sum(dim=(1, 2, 3)) * 3)).mean(), "mean over the images"),
    (lambda p, t, m: (m * (p - t) ** 2).sum() / (m.sum() * p.shape[1]), "times too large"),  # mask not expanded
    (lambda p, t, m: torch.tensor(float(_student_l2(p, t, m).detach())), "no gradient reaches pred"),
    (lambda p, t, m: _student_l2(p, t, m).reshape(1), "0-d tensor"),
])
def test_masked_l2_fails_with_the_right_message(wrong, message):
    result = checks.check_masked_l2(wrong)
    assert not result.passed and message in _failures(result), _failures(result)


def test_masked_l2_input_modified_in_place():
    def in_place(pred, target, mask):
        pred.sub_(target)
        return _student_l2(pred, torch.zeros_like(pred), mask)

    assert "changed its input `pred` in place" in _failures(checks.check_masked_l2(in_place))


# --------------------------------------------------------------------------------------------------
# PSNR
# --------------------------------------------------------------------------------------------------
def _student_psnr(pred, target):
    mse = ((pred - target) ** 2).mean(dim=(1, 2, 3))
    return (10 * torch.log10(1.0 / mse)).mean()


@pytest.mark.parametrize("fn", [lambda p, t: metrics.psnr(p, t), _student_psnr])
def test_psnr_passes_on_right_code(fn):
    assert checks.check_psnr(fn).passed


@pytest.mark.parametrize("wrong, message", [
    (lambda p, t: (10 * torch.log10(255.0 ** 2 / ((p - t) ** 2).mean(dim=(1, 2, 3)))).mean(), "data range 255"),
    (lambda p, t: 10 * torch.log10(1.0 / ((p - t) ** 2).mean()), "pooled over the batch"),
    (lambda p, t: (20 * torch.log10(1.0 / ((p - t) ** 2).mean(dim=(1, 2, 3)))).mean(), "20 log10(1 / MSE)"),
    (lambda p, t: (10 * torch.log(1.0 / ((p - t) ** 2).mean(dim=(1, 2, 3)))).mean(), "natural logarithm"),
    (lambda p, t: float(10 * torch.log10(1.0 / ((p - t) ** 2).mean().item())), "identical images"),
])
def test_psnr_fails_with_the_right_message(wrong, message):
    result = checks.check_psnr(wrong)
    assert not result.passed and message in _failures(result), _failures(result)


def test_psnr_with_a_mask_argument():
    right = lambda pred, target, mask=None: metrics.psnr(pred, target, mask, region="hole" if mask is not None else "image")  # noqa: E731
    result = checks.check_psnr(right)
    assert result.passed and any("hole" in m for m in result.messages)
    ignores_mask = lambda pred, target, mask=None: metrics.psnr(pred, target)  # noqa: E731
    assert "over the whole image" in _failures(checks.check_psnr(ignores_mask))


# --------------------------------------------------------------------------------------------------
# mask generator
# --------------------------------------------------------------------------------------------------
def _square(size, ratio, generator):  # a correct student solution in plain torch
    side = round((ratio * size * size) ** 0.5)
    top = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    left = int(torch.randint(0, size - side + 1, (1,), generator=generator))
    mask = torch.zeros(1, 1, size, size)
    mask[..., top:top + side, left:left + side] = 1.0
    return mask


@pytest.mark.parametrize("fn", [
    lambda s, r, g: masks.make_mask("square", s, r, generator=g),
    lambda s, r, g: masks.make_mask("circle", s, r, generator=g),
    lambda s, r, g: masks.make_mask("irregular", s, r, generator=g),
    _square,
])
def test_mask_generator_passes_on_right_code(fn):
    assert checks.check_mask_generator(fn).passed


def test_mask_generator_deterministic_kind_needs_random_masks_false():
    center = lambda s, r, g: masks.make_mask("center", s, r, generator=g)  # noqa: E731
    assert "five different seeds gave the same mask" in _failures(checks.check_mask_generator(center))
    assert checks.check_mask_generator(center, random_masks=False).passed


@pytest.mark.parametrize("wrong, message", [
    (lambda s, r, g: 1 - _square(s, r, g), "polarity is inverted"),
    (lambda s, r, g: _square(s, r * r, g), "ratio^2"),
    (lambda s, r, g: _square(s, r, torch.Generator().manual_seed(int(torch.randint(0, 100, (1,))))), "global RNG"),
    (lambda s, r, g: _square(s, r, g).to(torch.uint8), "torch.float32"),
    (lambda s, r, g: _square(s, r, g)[0, 0], "add the batch and channel dimensions"),
    (lambda s, r, g: _square(s, r, g) * 0.5, "values must be exactly 0"),
    (lambda s, r, g: _square(s, r, g).numpy(), "expected a torch.Tensor"),
    (lambda s, r, g: _square(64, r, g), "the image side is the `size` argument"),
])
def test_mask_generator_fails_with_the_right_message(wrong, message):
    result = checks.check_mask_generator(wrong)
    assert not result.passed and message in _failures(result), _failures(result)


def test_mask_generator_leaves_the_global_rng_alone():
    torch.manual_seed(42)
    expected = torch.rand(3)
    torch.manual_seed(42)
    checks.check_mask_generator(_square)
    assert torch.equal(torch.rand(3), expected)


# --------------------------------------------------------------------------------------------------
# contextual attention (against the library's DeepFill v1 layer)
# --------------------------------------------------------------------------------------------------
def _has_deepfill() -> bool:
    try:
        import inpaint_utils.models.deepfill  # noqa: F401
    except ImportError:
        return False
    return True


needs_deepfill = pytest.mark.skipif(not _has_deepfill(), reason="inpaint_utils.models.deepfill is not available")


def ref(*args, **kwargs):
    """The library's contextual attention (imported when called, so the rest of this file runs without it)."""
    from inpaint_utils.models.deepfill import contextual_attention

    return contextual_attention(*args, **kwargs)


def _wrap(**changes):
    """The reference with some arguments forced: a planted mistake."""
    def wrong(f, b, m, **kwargs):
        kwargs.update({k: v for k, v in changes.items() if k != "mask"})
        mask = changes["mask"](m) if "mask" in changes else m
        return ref(f, b, mask, **kwargs)
    return wrong


@needs_deepfill
def test_contextual_attention_passes_on_the_reference():
    from inpaint_utils.models.deepfill import ContextualAttention, contextual_attention

    result = checks.check_contextual_attention(contextual_attention)
    assert result.passed, _failures(result)
    module = ContextualAttention()                                              # the layer as a module
    assert checks.check_contextual_attention(lambda f, b, m, **kw: module(f, b, m)).passed


@needs_deepfill
@pytest.mark.parametrize("wrong, messages", [
    (_wrap(mask=torch.zeros_like), ["reference WITHOUT the mask", "touches the hole"]),
    (_wrap(softmax_scale=1.0), ["softmax_scale=1", "is the similarity multiplied by softmax_scale"]),
    (_wrap(fuse_k=1), ["without attention propagation"]),
    (_wrap(mask=lambda m: m[:1].expand_as(m)), ["sample 0's mask"]),
    (lambda f, b, m, **kw: (ref(f, b, m, **kw)[0], ref(f, b, m, **kw)[1].float()), ["int64"]),
    (lambda f, b, m, **kw: (ref(f, b, m, **kw)[0][..., ::2, ::2], ref(f, b, m, **kw)[1]), ["foreground's shape"]),
    (lambda f, b, m, **kw: (ref(f, b, m, **kw)[0], -ref(f, b, m, **kw)[1]), ["sign is flipped"]),
    (lambda f, b, m, **kw: (ref(f, b, m, **kw)[0], 2 * ref(f, b, m, **kw)[1]), ["full-resolution pixels"]),
    (lambda f, b, m, **kw: (ref(f, b, m, **kw)[0].detach(), ref(f, b, m, **kw)[1]), ["no gradient reaches"]),
    (lambda f, b, m, **kw: ref(f, b, m, **kw)[0], ["expected a pair (output, offsets)"]),
])
def test_contextual_attention_fails_with_the_right_message(wrong, messages):
    result = checks.check_contextual_attention(wrong)
    assert not result.passed
    for message in messages:
        assert message in _failures(result), _failures(result)


def test_contextual_attention_without_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "inpaint_utils.models.deepfill", None)
    result = checks.check_contextual_attention(lambda f, b, m, **kw: (f, torch.zeros(1, 2, 1, 1).long()))
    assert "cannot compare: the reference" in _failures(result)
