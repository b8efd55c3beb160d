"""Notebook 06's graded exercise (RePaint, Lugmayr et al. 2022): :func:`check_repaint_step` (one reverse step,
the known region noised to ``x_{t-1}``, the hole from the model) and :func:`check_repaint_jump` (the resampling's
jump back up the chain), against :func:`inpaint_utils.diffusion.repaint_step` and
:func:`inpaint_utils.diffusion.repaint_jump_back`.
"""
from __future__ import annotations

from typing import Any, Callable

import torch

from .runner import CheckResult, _call, _Fail, _reference, _run, _unchanged

__all__ = ["check_repaint_step", "check_repaint_jump"]

_T = 50


def _schedule() -> torch.Tensor:
    """``alphas_cumprod`` ``(T,)`` of a linear beta schedule (DDPM's 1e-4 .. 0.02, on fewer steps), float64."""
    betas = torch.linspace(1e-4, 0.02 * 1000 / _T, _T, dtype=torch.float64).clamp(max=0.5)
    return torch.cumprod(1 - betas, dim=0)


def _ab(ac: torch.Tensor, t: int) -> torch.Tensor:
    return ac[t] if t >= 0 else ac.new_ones(())


def _step_mistakes(x_t, t, image, mask, eps, ac, nk, nu) -> dict[str, torch.Tensor]:
    """Outputs of the usual wrong reverse steps."""
    step = _reference("diffusion", "repaint_step")
    ab_t, ab_p = _ab(ac, t), _ab(ac, t - 1)
    good = step(x_t, t, image, mask, eps, ac, nk, nu)
    known_at_t = ab_t.sqrt() * image + (1 - ab_t).sqrt() * nk
    out = {
        "the mask's sense inverted (the model's sample in the KNOWN region, the noised image in the hole): the "
        "course's masks are 1 = hole, so x_{t-1} = mask * unknown + (1 - mask) * known":
            step(x_t, t, image, 1 - mask, eps, ac, nk, nu),
        "the known region noised to level t instead of t - 1 (off by one): x_{t-1}'s known part is "
        "sqrt(ab_{t-1}) image + sqrt(1 - ab_{t-1}) noise_known":
            mask * good + (1 - mask) * known_at_t,
        "the clean image pasted in the known region (not noised): the known part must be at the same noise level "
        "as the rest of x_{t-1}, sqrt(ab_{t-1}) image + sqrt(1 - ab_{t-1}) noise_known": mask * good + (1 - mask) * image,
        "the known part scaled by the VARIANCE (1 - ab_{t-1}) instead of its root (the misprint of the paper's "
        "Algorithm 1, line 5): use sqrt(1 - ab_{t-1})":
            mask * good + (1 - mask) * (ab_p.sqrt() * image + (1 - ab_p) * nk),
        "the noises swapped (noise_unknown in the known region and noise_known in the hole)":
            step(x_t, t, image, mask, eps, ac, nu, nk),
        "no noise in the hole (eta = 0, DDIM's deterministic step): RePaint samples, add sigma_t * noise_unknown":
            step(x_t, t, image, mask, eps, ac, nk, torch.zeros_like(nu)),
        "x_{t-1} for the hole from alpha_bar at t and t + 1 (off by one)": step(x_t, t + 1, image, mask, eps, ac, nk, nu)
        if t + 1 < ac.shape[0] else good + float("nan"),
    }
    return out


def check_repaint_step(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-5) -> CheckResult:
    """Grade ``repaint_step(x_t, t, image, mask, eps, alphas_cumprod, noise_known, noise_unknown) -> x_{t-1}``,
    one reverse step of RePaint (Lugmayr et al. 2022, eq. 8): the known region is the image noised to level
    ``t - 1``, ``sqrt(ab_{t-1}) image + sqrt(1 - ab_{t-1}) noise_known``; the hole is the model's DDPM ancestral
    step from its noise prediction ``eps`` (``x0 = (x_t - sqrt(1 - ab_t) eps) / sqrt(ab_t)``, then
    ``sqrt(ab_{t-1}) x0 + sqrt(1 - ab_{t-1} - s^2) eps + s noise_unknown``, ``s^2`` the DDPM posterior variance);
    ``x_{t-1} = mask * unknown + (1 - mask) * known`` (mask 1 = hole). ``ab_t = alphas_cumprod[t]``, ``ab_{-1} = 1``.
    The reference is :func:`inpaint_utils.diffusion.repaint_step` (equal to diffusers' ``RePaintScheduler.step``).

    Tests: the shape; random tensors at a high, a middle and the last step against the reference (a mismatch is
    matched against the usual mistakes: the mask inverted, the known part at level t, the image not noised, the
    variance for the std, the noises swapped, no noise in the hole); at ``t = 0`` the known region is the image
    itself; a per-image mask; inputs left unchanged.
    """
    gen = torch.Generator().manual_seed(2022)
    ac = _schedule()

    def case(b: int = 2):
        shape = (b, 3, 16, 16)
        x_t, image, eps, nk, nu = (torch.randn(*shape, generator=gen, dtype=torch.float64) for _ in range(5))
        mask = (torch.rand(b, 1, 16, 16, generator=gen) > 0.6).double()
        return x_t, image.clamp(-1, 1), mask, eps, nk, nu

    def run(x_t, t, image, mask, eps, nk, nu) -> torch.Tensor:
        out = _call(fn, x_t, t, image, mask, eps, ac, nk, nu)
        if not isinstance(out, torch.Tensor) or out.shape != x_t.shape:
            raise _Fail(f"expected x_{{t-1}}, a tensor of x_t's shape {tuple(x_t.shape)}, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
        return out

    def compare(what, t, x_t, image, mask, eps, nk, nu):
        expected = _reference("diffusion", "repaint_step")(x_t, t, image, mask, eps, ac, nk, nu)
        got = run(x_t, t, image, mask, eps, nk, nu).detach().double()
        if torch.allclose(got, expected, atol=atol, rtol=1e-5):
            return
        hole = mask.bool().expand_as(got)
        err_k = float((got - expected)[~hole].abs().max()) if bool((~hole).any()) else 0.0
        err_u = float((got - expected)[hole].abs().max()) if bool(hole.any()) else 0.0
        where = ("in the known region and in the hole" if err_k > atol and err_u > atol
                 else "in the known region (the hole is right)" if err_k > atol else "in the hole (the known region is right)")
        hint = ""
        for why, value in _step_mistakes(x_t, t, image, mask, eps, ac, nk, nu).items():
            if torch.allclose(got, value, atol=atol, rtol=1e-5):
                hint = f" Your x_{{t-1}} matches {why}."
                break
        raise _Fail(f"{what}: x_{{t-1}} differs from the reference {where}, by up to {max(err_k, err_u):.3g}.{hint}")

    def t_shape():
        x_t, image, mask, eps, nk, nu = case()
        run(x_t, 30, image, mask, eps, nk, nu)

    def t_steps():
        for t in (_T - 1, 25, 1):
            compare(f"t = {t} of {_T}", t, *case())

    def t_last():
        x_t, image, mask, eps, nk, nu = case()
        got = run(x_t, 0, image, mask, eps, nk, nu).detach().double()
        known = ~mask.bool().expand_as(got)
        try:
            compare("t = 0, the last step", 0, x_t, image, mask, eps, nk, nu)
        except _Fail as err:
            if "matches" in str(err) or torch.allclose(got[known], image[known], atol=atol):
                raise
            raise _Fail(f"{err} At t = 0 the known region of x_{{t-1}} must be the image itself, no noise left: "
                        "use alpha_bar_{t-1} with alpha_bar_{-1} = 1 (alphas_cumprod[t - 1] for t >= 1, 1.0 for "
                        "t = 0)") from None

    def t_unchanged():
        args = case()
        copies = [a.clone() for a in args]
        x_t, image, mask, eps, nk, nu = args
        run(x_t, 10, image, mask, eps, nk, nu)
        for name, before, after in zip(("x_t", "image", "mask", "eps", "noise_known", "noise_unknown"), copies, args):
            _unchanged(name, before, after)

    return _run("repaint_step", fn, [
        ("returns x_{t-1} of x_t's shape", t_shape),
        ("random tensors at t = 49, 25 and 1 against the reference", t_steps),
        ("t = 0: the known region is the image itself", t_last),
        ("inputs are left unchanged", t_unchanged),
    ], strict)


def check_repaint_jump(fn: Callable[..., Any], *, strict: bool = False, atol: float = 1e-5) -> CheckResult:
    """Grade ``jump_back(x, t_from, t_to, alphas_cumprod, noise) -> x_{t_to}``, RePaint's resampling jump (section
    4.2): the forward process from level ``t_from`` up to ``t_to > t_from`` in one draw,
    ``sqrt(ab_to / ab_from) x + sqrt(1 - ab_to / ab_from) noise`` (``ab_{-1} = 1``). The reference is
    :func:`inpaint_utils.diffusion.repaint_jump_back`.

    Tests: the shape; one step up (``sqrt(1 - beta) x + sqrt(beta) noise``); a jump of 10 steps (RePaint's
    jump length) against the reference; two jumps with zero noise compose (5 then 5 = 10); from the clean image
    (``t_from = -1``) the jump is the forward process ``q(x_t | x_0)``. A mismatch is matched against the usual
    mistakes (``ab_to`` alone instead of the ratio, the variance for the std, ``1 - ab`` for ``sqrt(1 - ab)``).
    """
    gen = torch.Generator().manual_seed(2201)
    ac = _schedule()

    def mistakes(x, t_from, t_to, noise) -> dict[str, torch.Tensor]:
        a_to, a_from = _ab(ac, t_to), _ab(ac, t_from)
        r = a_to / a_from
        return {
            "q(x_{t_to} | x_0) applied to x (alpha_bar_{t_to} alone): x is already at level t_from, so use the "
            "ratio alpha_bar_{t_to} / alpha_bar_{t_from}": a_to.sqrt() * x + (1 - a_to).sqrt() * noise,
            "the variance (1 - ratio) as the noise's scale: its root, sqrt(1 - ratio), is the std":
                r.sqrt() * x + (1 - r) * noise,
            "the ratio without its root on x: scale x by sqrt(alpha_bar_to / alpha_bar_from)": r * x + (1 - r).sqrt() * noise,
            "the ratio upside down (alpha_bar_from / alpha_bar_to): the signal shrinks going up the chain":
                (1 / r).sqrt() * x + (1 - r).sqrt() * noise,
            "one step of beta_{t_to} only (a jump of several steps needs the product of their (1 - beta)s, i.e. "
            "the ratio of the alpha_bars)": (1 - (1 - a_to / _ab(ac, t_to - 1))).sqrt() * x
                + (1 - a_to / _ab(ac, t_to - 1)).sqrt() * noise,
        }

    def run(x, t_from, t_to, noise) -> torch.Tensor:
        out = _call(fn, x, t_from, t_to, ac, noise)
        if not isinstance(out, torch.Tensor) or out.shape != x.shape:
            raise _Fail(f"expected a tensor of x's shape {tuple(x.shape)}, got "
                        f"{tuple(out.shape) if isinstance(out, torch.Tensor) else type(out).__name__}")
        return out

    def compare(what, x, t_from, t_to, noise):
        expected = _reference("diffusion", "repaint_jump_back")(x, t_from, t_to, ac, noise)
        got = run(x, t_from, t_to, noise).detach().double()
        if torch.allclose(got, expected, atol=atol, rtol=1e-5):
            return
        hint = ""
        for why, value in mistakes(x, t_from, t_to, noise).items():
            if torch.allclose(got, value, atol=atol, rtol=1e-5):
                hint = f" Your x matches {why}."
                break
        raise _Fail(f"{what}: differs from the reference by up to {float((got - expected).abs().max()):.3g}.{hint}")

    def pair():
        return (torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64),
                torch.randn(2, 3, 8, 8, generator=gen, dtype=torch.float64))

    def t_shape():
        run(*pair()[:1], 10, 20, pair()[1])

    def t_one():
        x, noise = pair()
        compare("one step up, t 20 -> 21 (sqrt(1 - beta_21) x + sqrt(beta_21) noise)", x, 20, 21, noise)

    def t_jump():
        x, noise = pair()
        compare("a jump of 10 steps, t 30 -> 40", x, 30, 40, noise)

    def t_compose():
        x, _ = pair()
        zero = torch.zeros_like(x)
        twice = run(run(x, 10, 15, zero).detach().double(), 15, 20, zero).detach().double()
        once = run(x, 10, 20, zero).detach().double()
        if not torch.allclose(twice, once, atol=atol, rtol=1e-5):
            raise _Fail("with zero noise, a jump 10 -> 15 then 15 -> 20 must equal the jump 10 -> 20 (the signal is "
                        "scaled by sqrt(alpha_bar_to / alpha_bar_from) each time)")

    def t_from_clean():
        x, noise = pair()
        compare("from the clean image, t_from = -1 (alpha_bar_{-1} = 1) to t = 24: q(x_24 | x_0)", x, -1, 24, noise)

    return _run("repaint_jump", fn, [
        ("returns a tensor of x's shape", t_shape),
        ("one step up the chain", t_one),
        ("a jump of 10 steps against the reference", t_jump),
        ("two jumps compose", t_compose),
        ("from the clean image: the forward process", t_from_clean),
    ], strict)
