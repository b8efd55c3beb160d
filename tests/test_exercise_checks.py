"""The checks of notebooks 02-07's graded exercises: each passes on the library's reference and on the notebook's
solution, fails on the exercise stub with "not implemented yet", and fails on plausible wrong versions with the
message that names the mistake. The library references they grade against are tested too (RePaint's step against
diffusers' scheduler, the GLCIC patch corners against the training holes)."""
from __future__ import annotations

from pathlib import Path

import nbformat
import pytest
import torch
import torch.nn.functional as F

from inpaint_utils import checks, comparison, diffusion, exercises, losses, masks, metrics
from inpaint_utils.checks import CheckFailed, CheckResult
from inpaint_utils.models import glcic
from inpaint_utils.models.deepfill import contextual_attention

ROOT = Path(__file__).resolve().parents[1]
#: notebook -> the checks its grading cells run
EXERCISES = {
    "02_context_encoder": ["ce_loss"],
    "03_cascade_ce_nsd": ["nsd"],
    "04_glcic": ["local_crop"],
    "05_contextual_attention": ["contextual_attention"],
    "06_stable_diffusion": ["repaint_step", "repaint_jump"],
    "07_comparison": ["psnr_by_area"],
}


def _fails_with(result: CheckResult, *messages: str) -> None:
    assert not result.passed
    text = "\n".join(result.failures)
    for message in messages:
        assert message in text, text


def _exercise_cells(name: str):
    nb = nbformat.read(str(ROOT / "notebooks" / f"{name}.ipynb"), as_version=4)
    return nb, exercises.make_exercise(nb)


# --------------------------------------------------------------------------------------------------
# every notebook 02-07: one exercise, its stub fails, its solution passes
# --------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", sorted(EXERCISES))
def test_notebook_exercise_solution_passes_and_stub_fails(name):
    nb, (exercise, info) = _exercise_cells(name)
    assert info["checks"] == EXERCISES[name] and info["solutions"] == info["grading"] == len(EXERCISES[name])
    tags = [c.metadata.get("tags", []) for c in nb.cells]
    first = next(i for i, t in enumerate(tags) if "solution" in t)
    assert nb.cells[first - 1].cell_type == "markdown"                       # an explanation before it
    for i, t in enumerate(tags):
        if "solution" in t:
            assert "grading" in tags[i + 1], "a grading cell right after each solution cell"
    for cells, stub in ((nb.cells, False), (exercise.cells, True)):
        namespace: dict = {"torch": torch}
        for cell in cells:
            cell_tags = cell.metadata.get("tags", [])
            if "solution" in cell_tags:
                if stub:
                    assert "raise NotImplementedError" in cell.source
                exec(cell.source, namespace)
            elif "grading" in cell_tags:
                if stub:
                    with pytest.raises(CheckFailed, match="not implemented yet"):
                        exec(cell.source, namespace)
                else:
                    exec(cell.source, namespace)


# --------------------------------------------------------------------------------------------------
# 02: the Context Encoder's joint loss
# --------------------------------------------------------------------------------------------------
def _ce_reference(pred, target, weights, logits):
    return losses.ce_generator_loss(pred, target, weights, logits, units="unit")[0]


def _ce_variant(rec_weight=0.999, adv_weight=0.001, normalize="elements", label=1.0, scale=1.0):
    def loss(pred, target, weights, logits):
        rec = losses.masked_l2(pred, target, weights, normalize=normalize) * scale
        if logits is None:
            return rec_weight * rec
        adv = F.binary_cross_entropy_with_logits(logits, torch.full_like(logits, label))
        return rec_weight * rec + adv_weight * adv
    return loss


def test_ce_loss_passes_on_the_reference():
    assert checks.check_ce_loss(_ce_reference).passed


@pytest.mark.parametrize("wrong, message", [
    (_ce_variant(0.001, 0.999), "the weights swapped"),
    (_ce_variant(normalize="weights"), "divided by sum(weights)"),
    (_ce_variant(label=0.0), "with the label 'fake'"),
    (_ce_variant(scale=4.0), "measured on [-1, 1]"),
    (_ce_variant(0.999 ** 2), "lambda_rec applied twice"),
    (lambda p, t, w, l: 0.999 * (w * (p - t) ** 2).mean() + (0.001 * F.binary_cross_entropy_with_logits(
        l, torch.ones_like(l)) if l is not None else 0), "averaged over every element"),
], ids=["swapped", "sum-of-weights", "label-fake", "tanh-units", "twice", "all-elements"])
def test_ce_loss_names_the_mistake(wrong, message):
    _fails_with(checks.check_ce_loss(wrong), message)


def test_ce_loss_without_the_ring_weights():
    def plain(pred, target, weights, logits):
        return _ce_reference(pred, target, (weights > 0).float(), logits)
    _fails_with(checks.check_ce_loss(plain), "without the overlap weights")


def test_ce_loss_detached_gives_no_gradient():
    def detached(pred, target, weights, logits):
        return _ce_reference(pred, target, weights, logits).detach()
    _fails_with(checks.check_ce_loss(detached), "no gradient reaches pred")


# --------------------------------------------------------------------------------------------------
# 03: NSD
# --------------------------------------------------------------------------------------------------
def test_nsd_passes_on_the_reference():
    assert checks.check_nsd(metrics.nsd_from_latents).passed


@pytest.mark.parametrize("wrong, message", [
    (lambda z: z.var(dim=1).mean(dim=1), "the unbiased variance"),
    (lambda z: metrics.nsd_from_latents(z) / 2, "a division by 2 D n"),
    (lambda z: (z - z.mean(dim=0, keepdim=True)).square().mean(dim=(1, 2)), "mean over the IMAGES"),
    (lambda z: metrics.nsd_from_latents(z) * z.shape[2], "no division by D"),
    (lambda z: metrics.nsd_from_latents(z).mean(), "one NSD per image"),
], ids=["n-1", "2D", "axes-swapped", "no-D", "scalar"])
def test_nsd_names_the_mistake(wrong, message):
    _fails_with(checks.check_nsd(wrong), message)


# --------------------------------------------------------------------------------------------------
# 04: GLCIC's local patch
# --------------------------------------------------------------------------------------------------
def _crop_reference(images, boxes, size):
    return glcic.crop_local(images, glcic.local_patch_corners(boxes, images.shape[-1], size), size)


def test_local_patch_corners_are_the_training_holes_corners():
    holes = glcic.random_holes(64, 96, (20, 48), 48, seed=3)
    assert torch.equal(glcic.local_patch_corners(holes.boxes, 96, 48), holes.corners)
    inside = glcic.crop_local(holes.mask, holes.corners, 48).sum(dim=(1, 2, 3))
    assert torch.equal(inside, holes.mask.sum(dim=(1, 2, 3)))               # every patch holds its hole
    with pytest.raises(ValueError, match="at most local_size"):
        glcic.local_patch_corners(torch.tensor([[0, 0, 50, 10]]), 96, 48)


def test_local_crop_passes_on_the_reference():
    assert checks.check_local_crop(_crop_reference).passed


def _shifted_crop(images, boxes, size):                                   # (h + 1) // 2: one pixel off, odd sides
    c = boxes[:, :2] + (boxes[:, 2:] + 1) // 2 - size // 2
    c = torch.minimum(c.clamp(min=0), torch.tensor(images.shape[-1] - size))
    return glcic.crop_local(images, c, size)


@pytest.mark.parametrize("wrong, message", [
    (lambda im, b, s: glcic.crop_local(im, b[:, :2].clamp(0, im.shape[-1] - s), s), "hole's top-left corner"),
    (lambda im, b, s: _crop_reference(im, b[:, [1, 0, 3, 2]], s), "rows and columns swapped"),
    (_shifted_crop, "off by one"),
    (lambda im, b, s: _crop_reference(im, b, s).detach(), "no gradient reaches the images"),
], ids=["corner", "swapped", "off-by-one", "detached"])
def test_local_crop_names_the_mistake(wrong, message):
    _fails_with(checks.check_local_crop(wrong), message)


# --------------------------------------------------------------------------------------------------
# 05: contextual attention (the existing check, now the notebook's exercise)
# --------------------------------------------------------------------------------------------------
def test_contextual_attention_without_masking_is_named():
    def unmasked(f, b, m, **kw):
        return contextual_attention(f, b, torch.zeros_like(m), **kw)
    _fails_with(checks.check_contextual_attention(unmasked), "WITHOUT the mask")


# --------------------------------------------------------------------------------------------------
# 06: RePaint's step and jump back
# --------------------------------------------------------------------------------------------------
def test_repaint_step_equals_diffusers_scheduler():
    pytest.importorskip("diffusers")
    from diffusers import RePaintScheduler

    steps = 40
    scheduler = RePaintScheduler(num_train_timesteps=steps, clip_sample=False, eta=1.0)
    scheduler.set_timesteps(steps, jump_length=1, jump_n_sample=1)
    g = torch.Generator().manual_seed(0)
    x, image, eps = (torch.randn(2, 3, 8, 8, generator=g) for _ in range(3))
    hole = (torch.rand(2, 1, 8, 8, generator=g) > 0.5).float()
    for t in (steps - 1, 17, 1, 0):
        theirs = scheduler.step(eps, t, x, image, 1 - hole, generator=torch.Generator().manual_seed(t)).prev_sample
        noise = torch.randn(2, 3, 8, 8, generator=torch.Generator().manual_seed(t))   # diffusers: one noise for both
        ours = diffusion.repaint_step(x, t, image, hole, eps, scheduler.alphas_cumprod, noise, noise)
        assert torch.allclose(ours, theirs, atol=1e-5), t


def test_repaint_jump_back_one_step_is_the_forward_step():
    ac = torch.cumprod(1 - torch.linspace(1e-3, 0.1, 30, dtype=torch.float64), 0)
    x, noise = torch.randn(2, 3, 4, 4, dtype=torch.float64), torch.randn(2, 3, 4, 4, dtype=torch.float64)
    beta = 1 - ac[11] / ac[10]
    expected = (1 - beta).sqrt() * x + beta.sqrt() * noise
    assert torch.allclose(diffusion.repaint_jump_back(x, 10, 11, ac, noise), expected)
    with pytest.raises(ValueError, match="t_to must be > t_from"):
        diffusion.repaint_jump_back(x, 11, 10, ac, noise)


def test_repaint_checks_pass_on_the_references():
    assert checks.check_repaint_step(diffusion.repaint_step).passed
    assert checks.check_repaint_jump(diffusion.repaint_jump_back).passed


def _known_at_t(x_t, t, image, mask, eps, ac, nk, nu):                   # known region at level t: off by one
    good = diffusion.repaint_step(x_t, t, image, mask, eps, ac, nk, nu)
    return mask * good + (1 - mask) * (ac[t].sqrt() * image + (1 - ac[t]).sqrt() * nk)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, t, im, m, e, ac, nk, nu: diffusion.repaint_step(x, t, im, 1 - m, e, ac, nk, nu), "mask's sense inverted"),
    (_known_at_t, "noised to level t instead of t - 1"),
    (lambda x, t, im, m, e, ac, nk, nu: m * diffusion.repaint_step(x, t, im, m, e, ac, nk, nu) + (1 - m) * im,
     "the clean image pasted"),
    (lambda x, t, im, m, e, ac, nk, nu: diffusion.repaint_step(x, t, im, m, e, ac, nk, 0 * nu), "no noise in the hole"),
], ids=["inverted", "known-at-t", "not-noised", "eta0"])
def test_repaint_step_names_the_mistake(wrong, message):
    _fails_with(checks.check_repaint_step(wrong), message)


@pytest.mark.parametrize("wrong, message", [
    (lambda x, a, b, ac, n: ac[b].sqrt() * x + (1 - ac[b]).sqrt() * n, "alpha_bar_{t_to} alone"),
    (lambda x, a, b, ac, n: (ac[b] / (ac[a] if a >= 0 else 1)).sqrt() * x + (1 - ac[b] / (ac[a] if a >= 0 else 1)) * n,
     "the variance (1 - ratio) as the noise's scale"),
], ids=["q-x0", "variance"])
def test_repaint_jump_names_the_mistake(wrong, message):
    _fails_with(checks.check_repaint_jump(wrong), message)


# --------------------------------------------------------------------------------------------------
# 07: PSNR in the hole by hole-area bin
# --------------------------------------------------------------------------------------------------
def _bins_version(psnr_fn, index_fn, shift=0):
    def psnr_by_area(pred, target, mask, bins=10):
        values, index = psnr_fn(pred, target, mask), index_fn(mask, bins)
        return {int(k) + shift: float(values[index == k].mean()) for k in torch.unique(index)}
    return psnr_by_area


def _hole_psnr(p, t, m):
    return metrics.psnr(p, t, m, region="hole", reduction="none")


def test_psnr_by_area_passes_on_the_reference():
    def reference(pred, target, mask, bins=10):
        rows = comparison.scores_by_area({"psnr": _hole_psnr(pred, target, mask)}, mask, bins)
        return {round(r["area_lo"] * bins): r["psnr"] for r in rows}
    assert checks.check_psnr_by_area(reference).passed
    assert checks.check_psnr_by_area(_bins_version(_hole_psnr, masks.area_bins)).passed


@pytest.mark.parametrize("wrong, message", [
    (_bins_version(lambda p, t, m: metrics.psnr(p, t, reduction="none"), masks.area_bins), "over the WHOLE image"),
    (_bins_version(lambda p, t, m: metrics.psnr(p, t, m, region="known", reduction="none"), masks.area_bins),
     "over the KNOWN pixels"),
    (_bins_version(_hole_psnr, lambda m, bins: masks.area_bins(1 - m, bins)), "the bins of the KNOWN area"),
    (_bins_version(_hole_psnr, lambda m, bins: (masks.area_ratio(m) * bins).round().long().clamp(max=bins - 1)),
     "rounded bin indices"),
    (_bins_version(_hole_psnr, masks.area_bins, shift=1), "bins numbered from 1"),
], ids=["whole-image", "known", "known-area-bins", "rounded", "from-1"])
def test_psnr_by_area_names_the_mistake(wrong, message):
    _fails_with(checks.check_psnr_by_area(wrong), message)
