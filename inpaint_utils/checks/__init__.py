"""Classroom graders: check a student's implementation against the library's own and say what is wrong.

Used by the graded exercises of the notebooks (01: masked L2, PSNR, a random mask generator; 02: the Context
Encoder's joint loss, :func:`check_ce_loss`; 03: :func:`check_nsd`; 04: GLCIC's local-discriminator patch,
:func:`check_local_crop`; 05: :func:`check_contextual_attention`; 06: RePaint's reverse step and jump back,
:func:`check_repaint_step`, :func:`check_repaint_jump`; 07: :func:`check_psnr_by_area`; 08:
:func:`check_mask_update` and :func:`check_partial_conv`) and by ``python -m inpaint_utils.exercises grade`` (see
:mod:`inpaint_utils.exercises`). Each check runs a handful of small tests (known values, random inputs
compared with the reference, shapes and dtypes, gradients, seeding), diagnoses the usual mistakes
(L2 averaged over every pixel instead of the hole, PSNR with data range 255, mask polarity inverted,
attention that is not masked, no softmax scale, a partial convolution without its sum(1)/sum(M)
rescaling ...) and returns a :class:`CheckResult`::

    from inpaint_utils import checks
    checks.check_masked_l2(my_masked_l2, strict=True)

The references are the library's functions, never a second copy: :func:`inpaint_utils.losses.masked_l2`,
:func:`inpaint_utils.metrics.psnr`, :func:`inpaint_utils.masks.area_ratio` /
:func:`inpaint_utils.validation.check_mask`, ``inpaint_utils.models.deepfill.contextual_attention``,
``inpaint_utils.models.partial_conv.PartialConv2d``, :func:`inpaint_utils.losses.ce_generator_loss`,
:func:`inpaint_utils.metrics.nsd_from_latents`, ``inpaint_utils.models.glcic.local_patch_corners`` /
``crop_local``, :func:`inpaint_utils.diffusion.repaint_step` / :func:`~inpaint_utils.diffusion.repaint_jump_back`
and :func:`inpaint_utils.comparison.scores_by_area`.

Layout, one module per notebook whose exercises it grades (a new notebook's checks get a module of their own):
:mod:`~inpaint_utils.checks.runner` (the result, the printed line, strict mode and the test runner every check
uses), :mod:`~inpaint_utils.checks.masking` (notebook 01), :mod:`~inpaint_utils.checks.context_encoder` (02),
:mod:`~inpaint_utils.checks.nsd` (03), :mod:`~inpaint_utils.checks.glcic` (04),
:mod:`~inpaint_utils.checks.attention` (05), :mod:`~inpaint_utils.checks.diffusion` (06),
:mod:`~inpaint_utils.checks.comparison` (07) and :mod:`~inpaint_utils.checks.irregular` (08);
:mod:`~inpaint_utils.checks.remote` runs a check in the grader on a function served from the student's kernel (the
grade of ``exercises grade``, out of the student's code's reach).

Output. Every check prints its report, ending with one machine-readable line
``CHECK <name> PASS|FAIL <score>`` (score = the fraction of its tests passed, two decimals), which the
grader parses. ``strict=True`` raises :class:`CheckFailed` (an ``AssertionError``) with the messages when
a test fails, so a notebook run by papermill stops at a wrong solution. The environment variable
``INPAINT_CHECKS_STRICT=0`` turns that raise off (the report and the line are still printed): the grader
sets it so that one wrong exercise does not hide the checks after it.
"""
from __future__ import annotations

from .attention import check_contextual_attention
from .comparison import check_psnr_by_area
from .context_encoder import check_ce_loss
from .diffusion import check_repaint_jump, check_repaint_step
from .glcic import check_local_crop
from .irregular import check_mask_update, check_partial_conv
from .masking import check_mask_generator, check_masked_l2, check_psnr
from .nsd import check_nsd
from .runner import CHECK_LINE, STRICT_ENV, CheckFailed, CheckResult, parse_check_lines

__all__ = [
    "CheckResult",
    "CheckFailed",
    "CHECK_LINE",
    "STRICT_ENV",
    "parse_check_lines",
    "check_masked_l2",
    "check_psnr",
    "check_mask_generator",
    "check_ce_loss",
    "check_nsd",
    "check_local_crop",
    "check_contextual_attention",
    "check_repaint_step",
    "check_repaint_jump",
    "check_psnr_by_area",
    "check_mask_update",
    "check_partial_conv",
]
