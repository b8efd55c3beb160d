"""The classroom checks: every check passes on the library's own code (and on a plain correct student
solution) and fails, with the message that names the mistake, on planted wrong versions."""
from __future__ import annotations

import sys

import pytest
import torch
import torch.nn.functional as F

from inpaint_utils import checks, losses, masks, metrics
from inpaint_utils.checks import CheckFailed, CheckResult, parse_check_lines


def _failures(result: CheckResult) -> str:
    return "\n".join(result.failures)


def _assert_fails_with(result: CheckResult, messages) -> None:
    """The check failed, and its failures hold every one of ``messages``."""
    assert not result.passed
    for message in messages:
        assert message in _failures(result), _failures(result)


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
    _assert_fails_with(checks.check_contextual_attention(wrong), messages)


def test_contextual_attention_without_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "inpaint_utils.models.deepfill", None)
    result = checks.check_contextual_attention(lambda f, b, m, **kw: (f, torch.zeros(1, 2, 1, 1).long()))
    assert "cannot compare: the reference" in _failures(result)


# --------------------------------------------------------------------------------------------------
# mask update and partial convolution (notebook 08, against the library's PartialConv2d)
# --------------------------------------------------------------------------------------------------
def _pconv_layer(x, valid, weight, bias=None, stride=1, padding=None):
    """The library's PartialConv2d run with the given weight and bias (gradients reach them)."""
    from inpaint_utils.models.partial_conv import PartialConv2d

    c_out, c_in, k = weight.shape[:3]
    layer = PartialConv2d(c_in, c_out, k, stride=stride, padding=padding, bias=bias is not None)
    params = {"weight": weight} if bias is None else {"weight": weight, "bias": bias}
    return torch.func.functional_call(layer, params, (x, valid))


def _pconv_mask_update(valid, kernel_size, stride=1, padding=None):
    """The library's mask update: PartialConv2d's new mask, one channel."""
    x = torch.zeros_like(valid)
    weight = torch.zeros(1, valid.shape[1], kernel_size, kernel_size)
    return _pconv_layer(x, valid, weight, stride=stride, padding=padding)[1]


def _student_mask_update(valid, kernel_size, stride=1, padding=None):
    """A correct solution in plain torch (what notebook 08 shows): sum(M) per window > 0."""
    p = kernel_size // 2 if padding is None else padding
    ones = torch.ones(1, 1, kernel_size, kernel_size)
    return (F.conv2d(valid.float().sum(1, keepdim=True), ones, stride=stride, padding=p) > 0).float()


def _student_partial_conv(x, valid, weight, bias=None, stride=1, padding=None, *, renorm=True, window=None,
                          bias_mode="seen", mask_x=True):
    """A correct solution in plain torch; the keywords plant the usual mistakes."""
    c_in, k = x.shape[1], weight.shape[-1]
    p = k // 2 if padding is None else padding
    m = valid.float().expand(x.shape[0], c_in, -1, -1)                      # (B, C_in, H, W)
    count = F.conv2d(m.sum(1, keepdim=True), torch.ones(1, 1, k, k), stride=stride, padding=p)
    seen = (count > 0).float()
    ratio = (c_in * k * k if window is None else window) / count.clamp(min=1) * seen
    raw = F.conv2d(x * m if mask_x else x, weight, None, stride=stride, padding=p)
    out = raw * ratio if renorm else raw
    if bias is not None:
        b = bias.view(1, -1, 1, 1)
        out = {"seen": out + b * seen, "all": out + b, "scaled": (raw + b) * ratio}[bias_mode]
    return out, seen


@pytest.mark.parametrize("fn", [_pconv_mask_update, _student_mask_update,
                                lambda v, k, stride=1, padding=None: F.max_pool2d(
                                    v.amax(1, keepdim=True), k, stride, k // 2 if padding is None else padding),
                                lambda v, k, stride=1, padding=None: _student_mask_update(v, k, stride, padding) > 0])
def test_mask_update_passes_on_right_code(fn, capsys):
    result = checks.check_mask_update(fn)
    assert result.passed and result.score == 1.0, _failures(result)
    assert parse_check_lines(capsys.readouterr().out) == [("mask_update", True, 1.0)]


def _dilate(v, k, stride=1, padding=None):
    return _student_mask_update(v, k, stride, padding)


@pytest.mark.parametrize("wrong, messages", [
    (lambda v, k, stride=1, padding=None: -F.max_pool2d(-v.amin(1, keepdim=True), k, stride,
                                                        k // 2 if padding is None else padding),
     ["ALL its pixels are known", "erosion"]),
    (lambda v, k, stride=1, padding=None: (F.conv2d(v.sum(1, keepdim=True), torch.ones(1, 1, k, k), stride=stride,
                                                    padding=k // 2 if padding is None else padding)
                                           == v.shape[1] * k * k).float(), ["erosion"]),
    (lambda v, k, stride=1, padding=None: 1 - _dilate(v, k, stride, padding),
     ["updated HOLE", "convention is flipped"]),
    (lambda v, k, stride=1, padding=None: _dilate(1 - v, k, stride, padding), ["update of the HOLE",
                                                                               "convention is flipped"]),
    (lambda v, k, stride=1, padding=None: _dilate(v, k, stride, 0), ["without padding"]),
    (lambda v, k, stride=1, padding=None: torch.cat([_dilate(v[:, i:i + 1], k, stride, padding)
                                                     for i in range(v.shape[1])], 1),
     ["one new mask per input channel"]),
    (lambda v, k, stride=1, padding=None: _dilate(v, k, stride), ["padding=0 was ignored"]),
    (lambda v, k, stride=1, padding=None: F.conv2d(v.sum(1, keepdim=True), torch.ones(1, 1, k, k), stride=stride,
                                                   padding=k // 2 if padding is None else padding),
     ["threshold"]),
    (lambda v, k, stride=1, padding=None: _dilate(v, k, stride, padding)[:, 0], ["Keep the channel dimension"]),
])
def test_mask_update_fails_with_the_right_message(wrong, messages):
    _assert_fails_with(checks.check_mask_update(wrong), messages)


def test_mask_update_hole_shrink_is_tested():
    """An update that is right on the 12-px random masks but not on the 16-px large hole fails the shrink test
    alone: that test has its own hand-computed expectation."""
    def no_border(v, k, stride=1, padding=None):
        out = _dilate(v, k, stride, padding)
        return out if v.shape[-1] != 16 else out * F.max_pool2d(v, 3, 1, 1)   # the ring stays a hole
    result = checks.check_mask_update(no_border)
    titles = [m.split(":")[0] for m in result.failures]
    assert titles == ["FAIL a hole bigger than the window shrinks by k // 2 per layer"]


@pytest.mark.parametrize("fn", [_pconv_layer, _student_partial_conv,
                                lambda *a, **kw: (_pconv_layer(*a, **kw)[0], _pconv_layer(*a, **kw)[1][:, :1])])
def test_partial_conv_passes_on_right_code(fn, capsys):
    result = checks.check_partial_conv(fn)
    assert result.passed and result.score == 1.0, _failures(result)
    assert parse_check_lines(capsys.readouterr().out) == [("partial_conv", True, 1.0)]


def _planted(**mistake):
    return lambda *a, **kw: _student_partial_conv(*a, **kw, **mistake)


def _nan_where(x, valid, weight, bias=None, stride=1, padding=None):
    """Right forward, but the division by sum(M) = 0 happens before torch.where: NaN gradients."""
    c_in, k = x.shape[1], weight.shape[-1]
    m = valid.expand_as(x)
    count = F.conv2d(m.sum(1, keepdim=True), torch.ones(1, 1, k, k), stride=stride, padding=k // 2)
    raw = F.conv2d(x * m, weight, None, stride=stride, padding=k // 2)
    out = torch.where(count > 0, raw * (c_in * k * k / count), torch.zeros_like(raw))
    return out + (0 if bias is None else bias.view(1, -1, 1, 1) * (count > 0)), (count > 0).float()


@pytest.mark.parametrize("wrong, messages", [
    (_planted(renorm=False), ["Your output matches a convolution of X*M without the sum(1)/sum(M) rescaling"]),
    (_planted(renorm=False, bias_mode="all"), ["Your output matches a convolution of X*M without the sum(1)/sum(M) "
                                               "rescaling"]),
    (lambda x, v, w, **kw: _student_partial_conv(x, v, w, **kw, window=w.shape[-1] ** 2),
     ["ratio computed per channel", "C_in*k*k"]),
    (_planted(bias_mode="scaled"), ["bias multiplied by the ratio"]),
    (_planted(bias_mode="all"), ["bias added in windows that see no known pixel"]),
    (_planted(mask_x=False), ["X instead of X * M", "x's gradient is non-zero on unknown pixels"]),
    (lambda x, v, w, **kw: _student_partial_conv(x, 1 - v, w, **kw), ["partial convolution of the HOLE"]),
    (lambda x, v, w, bias=None, stride=1, padding=None: (F.conv2d(x, w, bias, stride, w.shape[-1] // 2),
                                                         _student_partial_conv(x, v, w, bias, stride)[1]),
     ["plain convolution"]),
    (lambda *a, **kw: (_pconv_layer(*a, **kw)[0], 1 - _pconv_layer(*a, **kw)[1]), ["new_valid differs",
                                                                                   "updated HOLE"]),
    (lambda *a, **kw: (_pconv_layer(*a, **kw)[0].detach(), _pconv_layer(*a, **kw)[1]), ["no gradient reaches"]),
    (lambda *a, **kw: _pconv_layer(*a, **kw)[0], ["expected a pair (out, new_valid)"]),
    (_nan_where, ["gradient holds NaN"]),
])
def test_partial_conv_fails_with_the_right_message(wrong, messages):
    _assert_fails_with(checks.check_partial_conv(wrong), messages)


def test_partial_conv_fully_known_tests_the_interior_only():
    """Right in the interior, plain convolution at the border (padding counted as known): the fully known test
    passes (it says it skips the border), the comparison with PartialConv2d does not."""
    def padding_known(x, valid, weight, bias=None, stride=1, padding=None):
        c_in, k = x.shape[1], weight.shape[-1]
        m = valid.float().expand_as(x)
        count = F.conv2d(m.sum(1, keepdim=True), torch.ones(1, 1, k, k), stride=stride, padding=k // 2)
        inside = c_in * F.conv2d(torch.ones_like(m[:, :1]), torch.ones(1, 1, k, k), stride=stride, padding=k // 2)
        seen = (count > 0).float()
        out = F.conv2d(x * m, weight, None, stride=stride, padding=k // 2) * inside / count.clamp(min=1) * seen
        return out + (0 if bias is None else bias.view(1, -1, 1, 1) * seen), seen

    result = checks.check_partial_conv(padding_known)
    failures = _failures(result)
    assert "padded border is part of the window" in failures
    assert any(m.startswith("ok") and "fully known" in m for m in result.messages)


def test_partial_conv_strict_and_not_implemented(monkeypatch):
    monkeypatch.delenv(checks.STRICT_ENV, raising=False)
    with pytest.raises(CheckFailed, match="without the sum\\(1\\)/sum\\(M\\) rescaling"):
        checks.check_partial_conv(_planted(renorm=False), strict=True)
    assert checks.check_partial_conv(_student_partial_conv, strict=True).passed

    def stub(*args, **kwargs):
        raise NotImplementedError("TODO: eq. 2")

    with pytest.raises(CheckFailed, match="not implemented yet"):
        checks.check_mask_update(stub, strict=True)
    result = checks.check_partial_conv(stub)
    assert result.score == 0 and "not implemented yet" in result.failures[0]
    assert all("not run" in m for m in result.failures[1:])


def test_partial_conv_checks_leave_the_global_rng_alone():
    torch.manual_seed(7)
    expected = torch.rand(3)
    torch.manual_seed(7)
    checks.check_mask_update(_student_mask_update)
    checks.check_partial_conv(_student_partial_conv)
    assert torch.equal(torch.rand(3), expected)


def test_partial_conv_without_the_reference(monkeypatch):
    monkeypatch.setitem(sys.modules, "inpaint_utils.models.partial_conv", None)
    assert "cannot compare: the reference" in _failures(checks.check_partial_conv(_student_partial_conv))
    assert "cannot compare: the reference" in _failures(checks.check_mask_update(_student_mask_update))
