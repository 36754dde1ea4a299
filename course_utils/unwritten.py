"""An exercise the student has not written yet: what its stub raises, and how Run All goes on without it.

In a student notebook each exercise's body is a stub that raises :class:`ExerciseNotWritten` (a
``NotImplementedError``) naming the function and the notebook section. The self-check then prints FAIL and the
grader gives no points, as for any answer that raises. The cells that *use* an exercise call it through
:func:`answer_or_reference`: while the exercise is not written they say so and use the course's reference
answer instead, so a student sees the whole notebook run before finishing it.
"""
from __future__ import annotations

import functools
from collections.abc import Callable


class ExerciseNotWritten(NotImplementedError):
    """Raised by the stub of exercise ``name`` (section ``section`` of its notebook) until the student writes it."""

    def __init__(self, name: str | None, section: str = ""):
        self.name, self.section = name, section
        what = f"exercise {name}()" if name else "this exercise"
        where = f" (section “{section}”)" if section else ""
        super().__init__(f"{what}{where} is not written yet: replace its `raise ExerciseNotWritten(...)` lines with "
                         f"your code, then run the self-check below it.")


_TOLD: set[tuple] = set()


def _cell_run() -> int | None:
    """The IPython execution count of the running cell (None outside IPython)."""
    try:
        from IPython import get_ipython
    except ImportError:
        return None
    shell = get_ipython()
    return getattr(shell, "execution_count", None) if shell is not None else None


def answer_or_reference(answer: Callable, reference: Callable | None = None) -> Callable:
    """``answer`` as it is once written; until then (its stub raises :class:`ExerciseNotWritten`) a stand-in that
    says what is missing (once per exercise and cell run) and returns ``reference(*args, **kwargs)`` instead.

    ``reference``: a function with the exercise's signature; by default the course's reference answer of the
    exercise the stub names (:func:`course_utils.exercises.exercise`). Any other error of the answer propagates.
    """
    @functools.wraps(answer)
    def call(*args, **kwargs):
        try:
            return answer(*args, **kwargs)
        except ExerciseNotWritten as missing:
            fallback = reference
            if fallback is None:
                from course_utils.exercises import exercise

                fallback = exercise(missing.name).reference
            key = (missing.name, _cell_run())
            if key not in _TOLD:
                _TOLD.add(key)
                print(f"{str(missing).split(':')[0]}: this cell uses the course's reference answer instead, so the "
                      f"notebook runs on; write the exercise and run the cell again to see yours.")
            return fallback(*args, **kwargs)

    return call
