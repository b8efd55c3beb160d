"""The checks' shared runner: what a check returns (:class:`CheckResult`), the line it prints last
(:data:`CHECK_LINE`, read back by :func:`parse_check_lines`), strict mode (:class:`CheckFailed`,
:data:`STRICT_ENV`), and the machinery every check of :mod:`inpaint_utils.checks` runs its tests with:
:func:`_run` (run the tests, print the report, raise when strict), :func:`_call` (call the student's
function), :func:`_as_float` / :func:`_close` / :func:`_diagnose` (compare numbers and name the mistake a
value matches), :func:`_unchanged` (inputs left alone) and :func:`_reference` (the library's own function
a check compares with).
"""
from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np
import torch

__all__ = ["CheckResult", "CheckFailed", "CHECK_LINE", "STRICT_ENV", "parse_check_lines"]

#: The machine-readable line every check prints last; ``name``, ``status`` (PASS / FAIL), ``score``.
CHECK_LINE = re.compile(r"^CHECK (?P<name>[A-Za-z0-9_.-]+) (?P<status>PASS|FAIL) (?P<score>[0-9]+(?:\.[0-9]+)?)\s*$",
                        re.MULTILINE)
#: ``INPAINT_CHECKS_STRICT=0``: checks report but never raise (``exercises grade`` sets it).
STRICT_ENV = "INPAINT_CHECKS_STRICT"


class CheckFailed(AssertionError):
    """A strict check failed; the message lists what was wrong and how to fix it."""


@dataclass
class CheckResult:
    """What a check found: ``passed`` (every test passed), ``score`` (fraction of tests passed, 0 to 1),
    ``messages`` (one line per test, ``"ok ..."`` or ``"FAIL ...: why, and what to do"``)."""

    name: str
    passed: bool
    score: float
    messages: list[str] = field(default_factory=list)

    @property
    def failures(self) -> list[str]:
        """The messages of the failed tests."""
        return [m for m in self.messages if m.startswith("FAIL")]

    def line(self) -> str:
        """``CHECK <name> PASS|FAIL <score>``: what the grader parses."""
        return f"CHECK {self.name} {'PASS' if self.passed else 'FAIL'} {self.score:.2f}"

    def report(self) -> str:
        """The printed report: a header, one line per test, the machine-readable line."""
        n_ok = sum(m.startswith("ok") for m in self.messages)
        head = f"check_{self.name}: {n_ok} of {len(self.messages)} tests passed"
        return "\n".join([head, *(f"  {m}" for m in self.messages), self.line()])

    def __bool__(self) -> bool:
        return self.passed

    def __repr__(self) -> str:
        return f"CheckResult({self.name}: {'PASS' if self.passed else 'FAIL'}, score {self.score:.2f})"


def parse_check_lines(text: str) -> list[tuple[str, bool, float]]:
    """Every ``CHECK name PASS|FAIL score`` line in ``text``, as ``(name, passed, score)``."""
    return [(m["name"], m["status"] == "PASS", float(m["score"])) for m in CHECK_LINE.finditer(text)]


# --------------------------------------------------------------------------------------------------
# The test runner
# --------------------------------------------------------------------------------------------------
class _Fail(Exception):
    """A test found a wrong result; the message says what and how to fix it."""


class _NotImplemented(Exception):
    """The student's function still raises NotImplementedError."""


def _fn_name(fn: Callable) -> str:
    return getattr(fn, "__name__", None) or type(fn).__name__


def _strict_enabled(strict: bool) -> bool:
    if not strict:
        return False
    return os.environ.get(STRICT_ENV, "1").strip().lower() not in ("0", "false", "no", "off")


def _call(fn: Callable, *args: Any, **kwargs: Any) -> Any:
    """Call the student's function; NotImplementedError becomes :class:`_NotImplemented`."""
    try:
        return fn(*args, **kwargs)
    except NotImplementedError as err:
        raise _NotImplemented(str(err) or "NotImplementedError") from None


def _run(name: str, fn: Callable, tests: Sequence[tuple[str, Callable[[], None]]], strict: bool) -> CheckResult:
    """Run ``tests`` (title, body) in order, print the report, return the result (raise when strict)."""
    messages: list[str] = []
    if not callable(fn):
        messages.append(f"FAIL callable: expected a function, got {type(fn).__name__} ({fn!r}); pass the function "
                        f"itself, without calling it (check_{name}(my_function), not check_{name}(my_function()))")
        tests = []
    for i, (title, body) in enumerate(tests):
        try:
            body()
        except _NotImplemented as err:
            messages.append(f"FAIL {title}: {_fn_name(fn)} is not implemented yet (NotImplementedError: {err}); "
                            f"write its body, then run this cell again")
            messages += [f"FAIL {t}: not run ({_fn_name(fn)} is not implemented yet)" for t, _ in tests[i + 1:]]
            break
        except _Fail as err:
            messages.append(f"FAIL {title}: {err}")
        except Exception as err:  # the student's code raised: say where, do not crash the check
            messages.append(f"FAIL {title}: {_fn_name(fn)} raised {type(err).__name__}: {err}")
        else:
            messages.append(f"ok   {title}")
    n_ok = sum(m.startswith("ok") for m in messages)
    total = max(len(messages), 1)
    result = CheckResult(name=name, passed=bool(messages) and n_ok == len(messages), score=n_ok / total,
                         messages=messages)
    print(result.report(), flush=True)
    if _strict_enabled(strict) and not result.passed:
        raise CheckFailed(f"check_{name}({_fn_name(fn)}) failed:\n" + "\n".join(f"  {m}" for m in result.failures))
    return result


def _as_float(value: Any, what: str) -> float:
    """A Python float from a number or a one-element tensor / array (a clear failure otherwise)."""
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            raise _Fail(f"{what} must be one number, got a tensor of shape {tuple(value.shape)} (reduce it to a scalar)")
        return float(value.detach().reshape(()).item())
    if isinstance(value, np.ndarray) and value.size == 1:
        return float(value.reshape(()))
    if isinstance(value, (int, float, np.floating, np.integer)) and not isinstance(value, bool):
        return float(value)
    raise _Fail(f"{what} must be a number or a 0-d tensor, got {type(value).__name__}: {value!r}")


def _close(a: float, b: float, rtol: float, atol: float = 0.0) -> bool:
    if math.isinf(a) or math.isinf(b):
        return a == b
    return abs(a - b) <= atol + rtol * abs(b)


def _diagnose(value: float, candidates: dict[str, float], rtol: float = 1e-3) -> str:
    """The mistake whose value ``value`` matches, as a sentence ('' when none does)."""
    for why, candidate in candidates.items():
        if math.isfinite(candidate) and _close(value, candidate, rtol, 1e-9):
            return f" Your value matches {why}."
    return ""


def _unchanged(name: str, before: torch.Tensor, after: torch.Tensor) -> None:
    if not torch.equal(before, after):
        raise _Fail(f"your function changed its input `{name}` in place; work on a copy (e.g. x = x * 1.0, not x *= ...)")

def _reference(module: str, name: str) -> Any:
    """The library's ``inpaint_utils.<module>.<name>`` that a check compares with, imported when needed (a clear
    failure, not a crash, when it cannot be)."""
    import importlib

    try:
        return getattr(importlib.import_module(f"..{module}", __package__), name)
    except (ImportError, AttributeError) as err:
        raise _Fail(f"cannot compare: the reference inpaint_utils.{module}.{name} is not available ({err}); "
                    "reinstall the course package (pip install -e .)") from None

