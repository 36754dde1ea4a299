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

import numpy as np
import torch

from course_utils.forbidden import forbidden_message

PASS, FAIL = "PASS", "FAIL"


def _as_call(case) -> tuple[tuple, dict]:
    """A case is a tuple of positional arguments, a dict of keyword arguments, or a single argument."""
    if isinstance(case, Mapping):
        return (), dict(case)
    if isinstance(case, tuple):
        return case, {}
    return (case,), {}


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
    from course_utils.exercises import exercise
    from course_utils.exercises.calling import call_answer, materialize

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

