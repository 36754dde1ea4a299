"""The rubric format: the checks behind a grade, one Python file per assignment.

A rubric file (e.g. ``solutions/rubrics/08_project_evaluation.py``, kept with the instructor) defines
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
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from course_utils.exercises.spec import Case, Check, Exercise, close

__all__ = ["Case", "Check", "Exercise", "Rubric", "close", "load_rubric"]


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
        raise ValueError(f"rubric file {path} does not exist; pass --rubric PATH or put it in solutions/rubrics/.")
    spec = importlib.util.spec_from_file_location(f"_course_rubric_{uuid.uuid4().hex}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    rubric = getattr(module, "RUBRIC", None)
    if not isinstance(rubric, Rubric):
        raise ValueError(f"{path} must define RUBRIC = course_utils.grading.rubric.Rubric(...).")
    return rubric
