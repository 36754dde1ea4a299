"""The rubric format: the checks behind a grade, the course's own exercises or a rubric file of your own.

The grader checks an assignment's exercises as the course defines them (:mod:`course_utils.exercises`)
unless the instructor gives a rubric file (``--rubric FILE``, kept away from students; an example:
``tests/fixtures/grading/example_rubric.py``), which defines
``RUBRIC = Rubric(assignment=..., exercises=[Exercise(...), ...])``. Each :class:`Exercise` names a top-level
function the student writes, its points, a generator of held-out :class:`Case` inputs (called with a
``torch.Generator`` seeded by a secret drawn for every grading run), the reference implementation, a ``check``
turning (student output, reference output) into a credit in [0, 1] and a message, and the code the answer may
not run. The course's own exercises live in :mod:`course_utils.exercises`, where the notebooks' self-checks draw
the same kinds of cases from a public seed. An exercise scores ``points × (share of cases with credit 1)``
under the default all-or-nothing :func:`close`; an answer that runs forbidden code scores 0.
"""
from __future__ import annotations

import importlib.util
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_utils.selfcheck import compare

Check = Callable[[Any, Any], tuple[float, str]]


@dataclass(frozen=True)
class Case:
    """One held-out call ``fn(*args)``; ``label`` is what the feedback calls it (e.g. "1-D signals, keep 30 %")."""

    args: tuple
    label: str


def close(rtol: float = 1e-4, atol: float = 1e-6, what: str = "your result", terms: str = "") -> Check:
    """Default check: all or nothing. Credit 1 if the answer matches the reference (as float64, within ``rtol``
    and ``atol``; tuples item by item), else 0 with :func:`course_utils.selfcheck.compare`'s hint, which checks
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
            if e.harness is not None and "<" in e.harness_name:
                raise ValueError(f"exercise {e.name!r}: the harness must be a module-level function, not "
                                 f"{e.harness_name}.")

    @property
    def max_points(self) -> float:
        return float(sum(e.points for e in self.exercises))


def load_rubric(path: str | Path) -> Rubric:
    """Import the rubric file at ``path`` (instructor code, run in the grader's process) and return its RUBRIC."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"rubric file {path} does not exist; pass the path of a file defining RUBRIC, or leave "
                         "--rubric out to grade with the assignment's own exercises.")
    spec = importlib.util.spec_from_file_location(f"_course_rubric_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rubric = getattr(module, "RUBRIC", None)
    if not isinstance(rubric, Rubric):
        raise ValueError(f"{path} must define RUBRIC = course_utils.grading.rubric.Rubric(...).")
    return rubric
