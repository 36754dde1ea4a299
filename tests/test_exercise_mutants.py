"""Self-checks and grades catch wrong answers: the mutation suite over every exercise of notebooks 00–08.

Each mutant (``tests/exercise_mutants``) replaces the solution's function in the solution notebook; the
answer is cut out exactly as the grader cuts it (``grading.extract``). It must print FAIL in the notebook's
self-check (``check_exercise`` with the notebook's default seed) and lose points on secret cases in the
grader's code path (the sandbox runner's ``run_exercise`` and ``score._compare``, run in this process so that
no notebook is executed per mutant); a trivial answer or a library call must lose all of them. The solutions
must pass and earn full marks, so a local PASS and full marks agree on every answer here. The kill rate per
notebook is printed at the end of the run and must be 100 %.
"""
from __future__ import annotations

import contextlib
import io
from functools import cache
from pathlib import Path

import nbformat
import pytest
import torch

from course_utils.exercises import ASSIGNMENTS, exercises_of
from course_utils.exercises.calling import materialize, portable
from course_utils.grading.extract import definitions, program_for
from course_utils.grading.rubric import Rubric
from course_utils.grading.runner import run_exercise
from course_utils.grading.score import ExerciseScore, _compare, held_out
from course_utils.selfcheck import check_exercise
from tests.exercise_mutants import KILL_RATES, MUTANTS

ROOT = Path(__file__).resolve().parents[1]
SECRET_SEEDS = (20261201, 424242)
PAIRS = [(a, ex.name) for a, exercises in ASSIGNMENTS.items() for ex in exercises]


@cache
def _notebook(assignment: str):
    return nbformat.read(ROOT / "solutions" / f"{assignment}.ipynb", as_version=4)


def _program(assignment: str, name: str, source: str | None = None) -> str:
    nb = _notebook(assignment)
    if source is not None:
        nb = nbformat.from_dict({**nb, "cells": [*nb.cells, nbformat.v4.new_code_cell(source)]})
    program = program_for(name, definitions(nb)[0])
    assert program is not None, f"no function {name} in {assignment}"
    return program


def self_check(name: str, program: str) -> str:
    """What the notebook's self-check prints for the answer defined by ``program``."""
    namespace = {"__name__": "__student__"}
    exec(compile(program, f"<{name} answer>", "exec"), namespace)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        check_exercise(name, namespace[name], seed=0)
    return out.getvalue()


@cache
def _held(assignment: str, secret: int):
    rubric = Rubric(assignment, exercises_of(assignment))
    return {h.exercise.name: h for h in held_out(rubric, secret)}


def grade(assignment: str, name: str, program: str, secret: int) -> ExerciseScore:
    """The grader's score for the answer defined by ``program`` on the cases of ``secret``."""
    h = _held(assignment, secret)[name]
    entries = run_exercise(name, program, [portable(c.args) for c in h.cases], h.exercise.harness_name,
                           h.exercise.forbidden)
    return ExerciseScore(name, float(h.exercise.points), _compare(h, entries))


def test_every_exercise_has_at_least_five_mutants_and_a_trivial_one():
    for assignment, name in PAIRS:
        mutants = MUTANTS.get(name, [])
        assert len(mutants) >= 5, f"{assignment}: {name} has {len(mutants)} mutants; write at least five"
        assert any(nothing for *_, nothing in mutants), f"{name}: add a trivial answer (zeros, input unchanged)"


@pytest.mark.parametrize("assignment,name", PAIRS)
def test_solution_passes_its_self_check_and_earns_full_marks(assignment, name):
    program = _program(assignment, name)
    printed = self_check(name, program)
    assert printed.startswith(f"PASS {name}"), printed
    for secret in SECRET_SEEDS:
        score = grade(assignment, name, program, secret)
        assert score.points == score.max_points, [c.message for c in score.cases]


def _killed(assignment: str, name: str, source: str, earns_nothing: bool) -> str | None:
    """None if the mutant is caught everywhere, else why it survived."""
    program = _program(assignment, name, source)
    printed = self_check(name, program)
    if not printed.startswith(f"FAIL {name}"):
        return f"the self-check printed {printed.strip()!r}"
    score = grade(assignment, name, program, SECRET_SEEDS[0])
    if score.points > 0 if earns_nothing else score.points == score.max_points:
        return f"it earned {score.points} of {score.max_points} points"
    return None


@pytest.mark.parametrize("assignment", list(ASSIGNMENTS))
def test_every_mutant_fails_its_self_check_and_loses_points(assignment):
    killed, survivors = 0, []
    for ex in exercises_of(assignment):
        for label, source, earns_nothing in MUTANTS[ex.name]:
            why = _killed(assignment, ex.name, source, earns_nothing)
            if why is None:
                killed += 1
            else:
                survivors.append(f"{ex.name} / {label}: {why}")
    total = killed + len(survivors)
    KILL_RATES[assignment] = (killed, total)
    assert not survivors, f"{assignment}: {killed}/{total} mutants killed; survivors:\n" + "\n".join(survivors)


def _trivial_answers(reference_output, first_arg):
    def like(fill):
        def make(value):
            if isinstance(value, torch.Tensor):
                return fill(value)
            if isinstance(value, tuple):
                return tuple(make(v) for v in value)
            return float(fill(torch.tensor(float(value))))
        return make(reference_output)
    return {"zeros": like(torch.zeros_like), "ones": like(torch.ones_like),
            "random": like(lambda t: torch.rand_like(t.double()).to(t.dtype)), "the first input": first_arg}


@pytest.mark.parametrize("assignment,name", PAIRS)
def test_trivial_answers_earn_nothing(assignment, name):
    """Constant, random or unchanged-input answers of the right shape match no case, so they score 0."""
    for h in _held(assignment, SECRET_SEEDS[0]).values():
        if h.exercise.name != name:
            continue
        for case, expected in zip(h.cases, h.expected):
            args = materialize(case.args)
            for what, answer in _trivial_answers(h.exercise.output(h.exercise.reference, args), args[0]).items():
                got = h.exercise.output(lambda *a, answer=answer: answer, args) if h.exercise.harness else answer
                credit, _ = h.exercise.check(got, expected)
                assert credit == 0, f"{name}: the answer '{what}' matches case '{case.label}'"


def test_a_wrong_shape_is_named_in_the_exercise_terms_before_any_value():
    answer = "def gradcam_weights(gradients):\n    return gradients.mean(dim=(2,), keepdim=True)"
    printed = self_check("gradcam_weights", answer)
    assert printed.startswith("FAIL gradcam_weights: case 1 of 3 (1-D layer")
    assert "your weights: shape (4, 6, 1), expected (N, K) = (4, 6)" in printed


def test_an_unfinished_exercise_says_not_done_yet():
    printed = self_check("keep_top_k", "def keep_top_k(x, saliency, keep):\n    raise NotImplementedError('x')")
    assert printed.startswith("FAIL keep_top_k: not done yet")
