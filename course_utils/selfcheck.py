"""Self-check cells: compare a student's function with the reference on public cases, print PASS or FAIL.

:func:`check_exercise` checks one of the course's exercises (:mod:`course_utils.exercises`) exactly as the
grader will: the same kinds of cases (drawn from the notebook's public seed; the grader draws its own from a
secret one), the same check, the same forbidden code. :func:`check` compares any function with any reference.
Neither raises because of the student's code, so a notebook keeps running past an unfinished exercise; both
return True only when every case matches.
"""
from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Iterable, Mapping

import torch

from course_utils.exercises import exercise
from course_utils.exercises.calling import call_answer, materialize
from course_utils.exercises.spec import compare
from course_utils.forbidden import forbidden_message

PASS, FAIL = "PASS", "FAIL"


def _as_call(case) -> tuple[tuple, dict]:
    """A case is a tuple of positional arguments, a dict of keyword arguments, or a single argument."""
    if isinstance(case, Mapping):
        return (), dict(case)
    if isinstance(case, tuple):
        return case, {}
    return (case,), {}


def _not_done(name: str) -> str:
    return f"{FAIL} {name}: not done yet — replace the `raise ExerciseNotWritten(...)` lines with your code."


def _raised(name: str, where: str, error: Exception) -> str:
    frame = traceback.extract_tb(error.__traceback__)[-1]
    return f"{FAIL} {name}: {where} raised {type(error).__name__}: {error} (line {frame.lineno}: {frame.line})"


def check_exercise(name: str, student_fn: Callable, seed: int = 0) -> bool:
    """Check the answer ``student_fn`` to the course exercise ``name`` on the cases drawn from ``seed``.

    Prints one PASS or FAIL line: a FAIL names the first failing case and says what differs (type and shape
    first, in the exercise's terms), or that the answer ran code the exercise forbids. PASS here means full
    marks from the grader, whose cases are of the same kinds. Returns True on PASS.
    """
    ex = exercise(name)
    cases = list(ex.cases(torch.Generator().manual_seed(int(seed))))
    rule = f" Forbidden here and in the grader: {', '.join(ex.forbidden)}." if ex.forbidden else ""
    for number, case in enumerate(cases, 1):
        args = materialize(case.args)
        want = ex.output(ex.reference, copy.deepcopy(args))
        answer = call_answer(student_fn, copy.deepcopy(args), ex.harness, ex.forbidden)
        if answer.violation:
            print(f"{FAIL} {name}: {forbidden_message(answer.violation, ex.forbidden)}.")
            return False
        if isinstance(answer.error, NotImplementedError):
            print(_not_done(name))
            return False
        if isinstance(answer.error, (KeyboardInterrupt, SystemExit)):
            raise answer.error
        if answer.error is not None:
            print(_raised(name, f"case {number} ({case.label})", answer.error))
            return False
        credit, message = ex.check(answer.value, want)
        if credit < 1:
            print(f"{FAIL} {name}: case {number} of {len(cases)} ({case.label}) — {message}")
            return False
    print(f"{PASS} {name}: all {len(cases)} cases match the reference; the grader checks new cases of the same "
          f"kinds.{rule}")
    return True


def check(name: str, student_fn: Callable, reference_fn: Callable, cases: Iterable, atol: float = 1e-5,
          rtol: float = 1e-4) -> bool:
    """Call ``student_fn`` and ``reference_fn`` on each case; print one PASS or FAIL line with a hint.

    ``cases``: each a tuple of positional arguments, a dict of keyword arguments, or one argument. Both functions
    get their own deep copy, so an in-place change by one cannot affect the other. Returns True if all match.
    """
    cases = list(cases)
    if not cases:
        raise ValueError("check() needs at least one case; pass e.g. cases=[(x, y)].")
    for number, case in enumerate(cases, 1):
        args, kwargs = _as_call(case)
        want = reference_fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        try:
            got = student_fn(*copy.deepcopy(args), **copy.deepcopy(kwargs))
        except NotImplementedError:
            print(_not_done(name))
            return False
        except Exception as error:  # a student error must not stop the notebook
            print(_raised(name, f"case {number}", error))
            return False
        hint = compare(got, want, atol, rtol)
        if hint:
            print(f"{FAIL} {name}: case {number} of {len(cases)} — {hint}")
            return False
    print(f"{PASS} {name}: all {len(cases)} case{'s' if len(cases) > 1 else ''} match the reference.")
    return True

