"""How answers are called, in the self-checks and in the grader's sandbox alike: models named in cases, the
harness of an exercise judged through autograd, and the guard against forbidden code.

No answer may run the course's reference answers (:data:`REFERENCES`), whatever its exercise forbids besides;
this module holds none of them, so the harnesses here may run under the guard.
"""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import torch

from course_utils.forbidden import ForbiddenCalls

REFERENCES = ("course_utils.exercises.foundations", "course_utils.exercises.primer",
              "course_utils.exercises.attribution", "course_utils.exercises.perturbation",
              "course_utils.exercises.evaluation")


def answer_guard(forbidden: Sequence[str]) -> ForbiddenCalls:
    """The guard an answer runs under: its exercise's ``forbidden`` code and the reference answers."""
    return ForbiddenCalls((*forbidden, *REFERENCES))


@dataclass(frozen=True)
class ModelRef:
    """A shipped model named in a case (``load_pretrained(name)``): cases cross the grader's sandbox as plain
    values, so a case holds the model's name and :func:`materialize` loads a fresh copy where the answer runs."""

    name: str

    def plain(self) -> dict:
        return {"model_ref": self.name}


def _model(name: str):
    from course_utils.models import load_pretrained
    return load_pretrained(name, device="cpu").eval()


def portable(args: tuple) -> tuple:
    """``args`` with every :class:`ModelRef` as a plain dict, ready for ``course_utils.grading.values.dumps``."""
    return tuple(a.plain() if isinstance(a, ModelRef) else a for a in args)


def materialize(args: tuple) -> tuple:
    """``args`` with every model reference (a :class:`ModelRef` or its plain dict) replaced by the model."""
    def one(a):
        if isinstance(a, ModelRef):
            return _model(a.name)
        if isinstance(a, dict) and set(a) == {"model_ref"}:
            return _model(a["model_ref"])
        return a
    return tuple(one(a) for a in args)


def gate_value_and_gradient(gate, h_perturbed, h_clean):
    """How a gate answer (notebook 07) is judged: its value, and the gradient of a fixed weighted sum of it
    with respect to ``h_perturbed`` (zeros where no gradient flows)."""
    h = h_perturbed.clone().requires_grad_(True)
    out = gate(h, h_clean)
    if not isinstance(out, torch.Tensor):
        return out, None
    weights = torch.linspace(0.5, 1.5, h.numel()).view(h.shape)
    grad = None
    if out.requires_grad and out.shape == h.shape:
        (grad,) = torch.autograd.grad((out * weights).sum(), h, allow_unused=True)
    return out.detach(), torch.zeros_like(h) if grad is None else grad



@dataclass(frozen=True)
class Answer:
    """What one call of an answer gave: its ``value``, or the ``error`` it raised, or the forbidden code it
    reached (``violation``, which takes precedence)."""

    value: object = None
    error: BaseException | None = None
    violation: str | None = None


def call_answer(fn: Callable, args: tuple, harness: Callable | None = None,
                forbidden: Sequence[str] = ()) -> Answer:
    """Call ``fn(*args)`` (through ``harness(fn, *args)`` when given) under :func:`answer_guard`: the one way
    answers are called, by the notebooks' self-checks and by the grader's sandbox alike. ``args`` are used as
    given (pass fresh copies); any exception of the answer, ``SystemExit`` included, is caught and returned."""
    with answer_guard(forbidden) as guard:
        try:
            value, error = (harness(fn, *args) if harness else fn(*args)), None
        except BaseException as err:  # an answer may raise anything; the caller reports it
            value, error = None, err
    return Answer(value, error, guard.violation)
