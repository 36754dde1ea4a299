"""What an exercise is: the student function's name and points, its cases, the reference, the check and the
code it forbids; and :func:`compare`, the hint-giving comparison behind the default check.

The course's exercises (:mod:`course_utils.exercises`), the notebooks' self-checks (:mod:`course_utils.selfcheck`)
and the instructor's rubrics (:mod:`course_utils.grading.rubric`) all use these types, so a self-check and a grade
judge an answer by the same rule.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

Check = Callable[[Any, Any], tuple[float, str]]


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"tensor of shape {tuple(value.shape)} and dtype {value.dtype}"
    if isinstance(value, np.ndarray):
        return f"array of shape {value.shape} and dtype {value.dtype}"
    return type(value).__name__


def compare(got, want, atol: float, rtol: float, where: str = "result", terms: str = "") -> str | None:
    """None if ``got`` matches ``want``; otherwise a one-line hint saying what differs, checked in this order:
    type, shape, dtype, values. ``terms`` names the expected shape in the exercise's terms, e.g. ``"(N, K)"``."""
    named = f"{terms} = " if terms else ""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{where}: expected a {type(want).__name__} of {len(want)} items{' ' + terms if terms else ''}, " \
                   f"got {_describe(got)}" + (f" of {len(got)} items" if isinstance(got, (tuple, list)) else "")
        for i, (g, w) in enumerate(zip(got, want)):
            hint = compare(g, w, atol, rtol, f"{where}[{i}]")
            if hint:
                return hint
        return None
    if isinstance(want, (torch.Tensor, np.ndarray)):
        if not isinstance(got, (torch.Tensor, np.ndarray)):
            return f"{where}: expected a tensor shaped {named}{tuple(want.shape)}, got a {_describe(got)}"
        g, w = torch.as_tensor(np.asarray(got) if isinstance(got, np.ndarray) else got.detach().cpu()), \
            torch.as_tensor(np.asarray(want) if isinstance(want, np.ndarray) else want.detach().cpu())
        if tuple(g.shape) != tuple(w.shape):
            return f"{where}: shape {tuple(g.shape)}, expected {named}{tuple(w.shape)}"
        if g.is_floating_point() != w.is_floating_point() or (g.dtype == torch.bool) != (w.dtype == torch.bool):
            return f"{where}: dtype {g.dtype}, expected {w.dtype}"
        if not torch.isfinite(g.double()).all() and torch.isfinite(w.double()).all():
            return f"{where}: contains NaN or inf"
        g, w = g.double(), w.double()
        if not torch.allclose(g, w, atol=atol, rtol=rtol, equal_nan=True):
            diff = (g - w).abs()
            index = np.unravel_index(int(diff.flatten().argmax()), tuple(diff.shape)) if diff.dim() else ()
            index = tuple(int(i) for i in index)
            return (f"{where}: values differ (max |difference| {diff.max().item():.3g} at index {index}: got "
                    f"{g[index].item():.6g}, expected {w[index].item():.6g})")
        return None
    if isinstance(want, (bool, int, float, np.number)):
        if not isinstance(got, (bool, int, float, np.number)) and not (
                isinstance(got, torch.Tensor) and got.numel() == 1):
            return f"{where}: expected a number, got a {_describe(got)}"
        g, w = float(got), float(want)
        if not np.isclose(g, w, atol=atol, rtol=rtol):
            return f"{where}: got {g:.6g}, expected {w:.6g}"
        return None
    return None if got == want else f"{where}: got {got!r}, expected {want!r}"


@dataclass(frozen=True)
class Case:
    """One held-out call ``fn(*args)``; ``label`` is what the feedback calls it (e.g. "1-D signals, keep 30 %")."""

    args: tuple
    label: str


def close(rtol: float = 1e-4, atol: float = 1e-6, what: str = "your result", terms: str = "") -> Check:
    """Default check: all or nothing. Credit 1 if the answer matches the reference (as float64, within ``rtol``
    and ``atol``; tuples item by item), else 0 with :func:`compare`'s hint, which checks
    type, shape and dtype before values. ``what`` names the answer and ``terms`` its shape in the exercise's
    terms (e.g. ``"(N, K)"``). The notebooks' self-checks call the same check, so PASS there means credit here.
    """
    def check(got, expected) -> tuple[float, str]:
        hint = compare(got, expected, atol=atol, rtol=rtol, where=what, terms=terms)
        return (1.0, "correct") if hint is None else (0.0, hint)

    return check


@dataclass(frozen=True)
class Exercise:
    """One graded function: ``name`` (fixed by the notebook contract), ``points``, held-out ``cases``, the
    ``reference`` implementation, the ``check`` comparing outputs, and the code the answer may not run,
    ``forbidden`` (dotted prefixes, see :mod:`course_utils.forbidden`: e.g. the library module that already
    implements it). ``harness``, if given, is how an answer is judged: ``harness(fn, *args)`` returns what the
    check compares (e.g. a value and a gradient); it must be a module-level function, since the grader's
    sandbox imports it by name."""

    name: str
    points: float
    cases: Callable[[torch.Generator], Sequence[Case]]
    reference: Callable[..., Any]
    check: Check = field(default_factory=close)
    description: str = ""
    forbidden: tuple[str, ...] = ()
    harness: Callable[..., Any] | None = None

    def output(self, fn: Callable, args: tuple):
        """What the check compares for the function ``fn`` called on ``args``."""
        return self.harness(fn, *args) if self.harness is not None else fn(*args)

    @property
    def harness_name(self) -> str | None:
        """``module:function`` of the harness, as the sandbox imports it."""
        return None if self.harness is None else f"{self.harness.__module__}:{self.harness.__qualname__}"
