"""The rubric format: hidden checks kept with the instructor, one Python file per assignment.

A rubric file (e.g. ``solutions/rubrics/08_project_evaluation.py``, never shipped in ``notebooks/``) defines
``RUBRIC = Rubric(assignment=..., exercises=[Exercise(...), ...])``. Each :class:`Exercise` names a top-level
function the student writes, its points, a generator of held-out :class:`Case` inputs (called with a
``torch.Generator`` seeded by a secret drawn for every grading run), the instructor's reference
implementation, and a ``check`` turning (student output, reference output) into a credit in [0, 1] and a
message. The default check, :func:`close`, gives full credit for matching values, ``shape_credit`` for the
right shape/type with wrong values, and nothing otherwise; an exercise scores ``points × mean credit``.
"""
from __future__ import annotations

import importlib.util
import math
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

Check = Callable[[Any, Any], tuple[float, str]]


@dataclass(frozen=True)
class Case:
    """One held-out call ``fn(*args)``; ``label`` is what the feedback calls it (e.g. "1-D signals, keep 30 %")."""

    args: tuple
    label: str


def _describe(value) -> str:
    if isinstance(value, torch.Tensor):
        return f"a tensor of shape {tuple(value.shape)}"
    if isinstance(value, dict) and "unsupported_type" in value:
        return f"an object of type {value['unsupported_type']}"
    if isinstance(value, (tuple, list)):
        return f"a {type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:120]


def _as_number(value) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, (int, float)):
        return float(value)
    if isinstance(value, torch.Tensor) and value.numel() == 1:
        return float(value.reshape(()).double())
    return None


def close(rtol: float = 1e-4, atol: float = 1e-6, shape_credit: float = 0.25) -> Check:
    """Default check: values within ``rtol``/``atol`` (as float64) earn 1, right shape/type earns ``shape_credit``.

    Tensors must match the reference's shape; numbers may be Python numbers or one-element tensors; tuples
    and lists are compared element by element and earn the mean credit.
    """
    if not 0 <= shape_credit <= 1:
        raise ValueError(f"shape_credit must lie in [0, 1], not {shape_credit}.")

    def check(got, expected) -> tuple[float, str]:
        if isinstance(expected, (tuple, list)):
            if not isinstance(got, (tuple, list)) or len(got) != len(expected):
                return 0.0, f"expected a tuple of {len(expected)} values, got {_describe(got)}"
            parts = [check(g, e) for g, e in zip(got, expected)]
            credit = sum(c for c, _ in parts) / len(parts)
            return credit, "; ".join(f"item {i}: {m}" for i, (_, m) in enumerate(parts))
        if isinstance(expected, torch.Tensor) and expected.dim() > 0:
            if not isinstance(got, torch.Tensor):
                return 0.0, f"expected a tensor of shape {tuple(expected.shape)}, got {_describe(got)}"
            if got.shape != expected.shape:
                return 0.0, f"wrong shape: got {tuple(got.shape)}, expected {tuple(expected.shape)}"
            if got.dtype == torch.bool or got.is_complex():
                return shape_credit, f"right shape, but dtype {got.dtype} instead of {expected.dtype}"
            g, e = got.double(), expected.double()
            if torch.allclose(g, e, rtol=rtol, atol=atol, equal_nan=True):
                return 1.0, "correct"
            bad = ~torch.isclose(g, e, rtol=rtol, atol=atol, equal_nan=True)
            err = (g - e).abs().nan_to_num(math.inf).max().item()
            return shape_credit, (f"right shape, wrong values at {int(bad.sum())} of {bad.numel()} entries "
                                  f"(largest error {err:.3g})")
        want, have = _as_number(expected), _as_number(got)
        if want is None:
            return (1.0, "correct") if got == expected else (0.0, f"expected {expected!r}, got {_describe(got)}")
        if have is None:
            return 0.0, f"expected a number, got {_describe(got)}"
        if math.isclose(have, want, rel_tol=rtol, abs_tol=atol):
            return 1.0, "correct"
        return shape_credit, f"a number, but {have:.6g} instead of the expected {want:.6g}"

    return check


@dataclass(frozen=True)
class Exercise:
    """One graded function: ``name`` (fixed by the notebook contract), ``points``, held-out ``cases``,
    the ``reference`` implementation, the ``check`` comparing outputs, and ``forbidden_modules`` the student's
    code must not import for it (e.g. the library module that already implements the answer)."""

    name: str
    points: float
    cases: Callable[[torch.Generator], Sequence[Case]]
    reference: Callable[..., Any]
    check: Check = field(default_factory=close)
    description: str = ""
    forbidden_modules: tuple[str, ...] = ()


@dataclass(frozen=True)
class Rubric:
    """All hidden checks of one assignment; ``discussion_tag`` marks the hand-graded Markdown cells."""

    assignment: str
    exercises: Sequence[Exercise]
    discussion_tag: str = "discussion"

    def __post_init__(self):
        names = [e.name for e in self.exercises]
        if not names:
            raise ValueError("a rubric needs at least one Exercise.")
        if len(set(names)) != len(names):
            raise ValueError(f"exercise names must be unique, got {names}.")
        for e in self.exercises:
            if not e.name.isidentifier():
                raise ValueError(f"exercise name {e.name!r} is not a Python function name.")
            if not e.points > 0:
                raise ValueError(f"exercise {e.name!r} must be worth more than 0 points, not {e.points}.")

    @property
    def max_points(self) -> float:
        return float(sum(e.points for e in self.exercises))


def load_rubric(path: str | Path) -> Rubric:
    """Import the rubric file at ``path`` (instructor code, run in the grader's process) and return its RUBRIC."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"rubric file {path} does not exist; pass --rubric PATH or put it in solutions/rubrics/.")
    spec = importlib.util.spec_from_file_location(f"_course_rubric_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rubric = getattr(module, "RUBRIC", None)
    if not isinstance(rubric, Rubric):
        raise ValueError(f"{path} must define RUBRIC = course_utils.grading.rubric.Rubric(...).")
    return rubric
