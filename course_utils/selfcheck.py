"""Self-check cells: compare a student's function with the reference on public cases, print PASS or FAIL.

:func:`check` never raises because of the student's code, so a notebook keeps running past an unfinished
exercise; it returns True only when every case matches.
"""
from __future__ import annotations

import copy
import traceback
from collections.abc import Callable, Iterable, Mapping

import numpy as np
import torch

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


def compare(got, want, atol: float, rtol: float, where: str = "result") -> str | None:
    """None if ``got`` matches ``want``; otherwise a one-line hint saying what differs (type, shape, dtype, values)."""
    if isinstance(want, (tuple, list)):
        if not isinstance(got, (tuple, list)) or len(got) != len(want):
            return f"{where}: expected a {type(want).__name__} of {len(want)} items, got {_describe(got)}" + (
                f" of {len(got)} items" if isinstance(got, (tuple, list)) else "")
        for i, (g, w) in enumerate(zip(got, want)):
            hint = compare(g, w, atol, rtol, f"{where}[{i}]")
            if hint:
                return hint
        return None
    if isinstance(want, (torch.Tensor, np.ndarray)):
        if not isinstance(got, (torch.Tensor, np.ndarray)):
            return f"{where}: expected a {_describe(want)}, got a {_describe(got)}"
        g, w = torch.as_tensor(np.asarray(got) if isinstance(got, np.ndarray) else got.detach().cpu()), \
            torch.as_tensor(np.asarray(want) if isinstance(want, np.ndarray) else want.detach().cpu())
        if tuple(g.shape) != tuple(w.shape):
            return f"{where}: shape {tuple(g.shape)}, expected {tuple(w.shape)}"
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
            print(f"{FAIL} {name}: not done yet — replace the `raise NotImplementedError` line with your code.")
            return False
        except Exception as error:  # a student error must not stop the notebook
            where = traceback.extract_tb(error.__traceback__)[-1]
            print(f"{FAIL} {name}: case {number} raised {type(error).__name__}: {error} "
                  f"(line {where.lineno}: {where.line})")
            return False
        hint = compare(got, want, atol, rtol)
        if hint:
            print(f"{FAIL} {name}: case {number} of {len(cases)} — {hint}")
            return False
    print(f"{PASS} {name}: all {len(cases)} case{'s' if len(cases) > 1 else ''} match the reference.")
    return True

