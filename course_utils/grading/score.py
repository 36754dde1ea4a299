"""Score a submission from what its exercise functions compute on held-out inputs.

:func:`held_out` draws the rubric's cases with a secret seed (a new one every grading run unless the
instructor fixes it) and computes the reference outputs once, in the grader's process. :func:`score_notebook`
cuts each exercise function out of the notebook (:mod:`course_utils.grading.extract`), runs them all in one
sandbox child (:mod:`course_utils.grading.runner`) with a time limit per exercise — a child that hangs or dies
is killed and restarted on the exercises after the one that failed — and compares the returned values with the
references using each exercise's check. Printed numbers and files the notebook writes play no part.
"""
from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_utils.exercises.calling import materialize, portable
from course_utils.forbidden import forbidden_message
from course_utils.grading import extract, sandbox, values
from course_utils.grading.rubric import Case, Exercise, Rubric


@dataclass(frozen=True)
class HeldOut:
    """An exercise with its secret cases and the reference outputs for them."""

    exercise: Exercise
    cases: list[Case]
    expected: list[Any]


@dataclass(frozen=True)
class CaseResult:
    label: str
    credit: float
    message: str


@dataclass
class ExerciseScore:
    """Points earned on one exercise, with the per-case results behind them (or a note if none ran)."""

    name: str
    max_points: float
    cases: list[CaseResult] = field(default_factory=list)
    note: str = ""

    @property
    def points(self) -> float:
        if not self.cases:
            return 0.0
        return round(self.max_points * sum(c.credit for c in self.cases) / len(self.cases), 2)


def _copy_args(args: tuple) -> tuple:
    return tuple(a.clone() if isinstance(a, torch.Tensor) else a for a in args)


def held_out(rubric: Rubric, seed: int) -> list[HeldOut]:
    """Draw every exercise's cases from one generator seeded with ``seed`` and compute the references."""
    generator = torch.Generator().manual_seed(seed)
    result = []
    for ex in rubric.exercises:
        cases = list(ex.cases(generator))
        if not cases:
            raise ValueError(f"the rubric's cases for {ex.name!r} are empty; return at least one Case.")
        expected = [values.to_plain(ex.output(ex.reference, materialize(_copy_args(c.args)))) for c in cases]
        result.append(HeldOut(ex, cases, expected))
    return result


def _run_sandboxed(names: list[str], work: Path, limits: sandbox.Limits, timeout: float,
                   startup_timeout: float) -> tuple[dict[str, list[dict]], dict[str, str]]:
    """Run the runner over ``names``; results per exercise, or a reason why an exercise produced none."""
    results: dict[str, list[dict]] = {}
    failures: dict[str, str] = {}
    remaining = list(names)
    while remaining:
        (work / "plan.json").write_text(json.dumps(remaining))
        begun = time.monotonic()
        seen: dict[str, float] = {}

        def deadline() -> float:
            for name in remaining:
                if name not in seen and (work / f"{name}.started").exists():
                    seen[name] = time.monotonic()
            if not seen:
                return begun + startup_timeout
            return max(seen.values()) + timeout

        proc = sandbox.spawn(["-m", "course_utils.grading.runner", str(work)], work, limits)
        killed = sandbox.wait_watched(proc, deadline)
        for name in remaining:
            if (work / f"{name}.pt").exists():
                try:
                    results[name] = values.load(work / f"{name}.pt")
                except Exception as err:  # a truncated or forged file
                    failures[name] = f"its results could not be read back ({type(err).__name__})"
        unfinished = [n for n in remaining if n not in results and n not in failures]
        if not unfinished:
            break
        first = unfinished[0]
        if first not in seen and not (work / f"{first}.started").exists():
            why = "timed out while starting" if killed else sandbox.describe_exit(proc.returncode)
            for name in unfinished:
                failures[name] = f"the sandbox could not run it ({why})"
            break
        failures[first] = (f"timed out after {timeout:g} s (infinite loop?)" if killed
                           else f"the process running it stopped: {sandbox.describe_exit(proc.returncode)}")
        for name in remaining:
            (work / f"{name}.started").unlink(missing_ok=True)
        remaining = unfinished[1:]
    return results, failures


def _compare(h: HeldOut, entries) -> list[CaseResult]:
    if not isinstance(entries, list) or len(entries) != len(h.cases):
        return [CaseResult(c.label, 0.0, "no usable result came back") for c in h.cases]
    violation = next((e["forbidden"] for e in entries if isinstance(e, dict) and e.get("forbidden")), None)
    if violation:
        message = forbidden_message(violation, h.exercise.forbidden)
        return [CaseResult(c.label, 0.0, message) for c in h.cases]
    out = []
    for case, expected, entry in zip(h.cases, h.expected, entries):
        if not isinstance(entry, dict) or not entry.get("ok"):
            error = entry.get("error", "no result") if isinstance(entry, dict) else "no result"
            out.append(CaseResult(case.label, 0.0, f"raised {error}"))
            continue
        try:
            credit, message = h.exercise.check(entry.get("value"), expected)
            credit = min(1.0, max(0.0, float(credit)))
        except Exception as err:  # an odd return value must not stop the batch
            credit, message = 0.0, f"could not be compared with the reference ({type(err).__name__}: {err})"
        out.append(CaseResult(case.label, credit, message))
    return out


def score_notebook(nb, held: list[HeldOut], work: Path, limits: sandbox.Limits, timeout: float,
                   startup_timeout: float = 120.0) -> list[ExerciseScore]:
    """Score every exercise of ``held`` for notebook ``nb``; ``work`` is an empty private directory."""
    defs, problems = extract.definitions(nb)
    syntax = f" ({'; '.join(problems)})" if problems else ""
    scores = {h.exercise.name: ExerciseScore(h.exercise.name, float(h.exercise.points)) for h in held}
    runnable = []
    for h in held:
        name = h.exercise.name
        program = extract.program_for(name, defs)
        if program is None:
            scores[name].note = f"no top-level function `{name}` found in the notebook's code cells{syntax}"
            continue
        (work / f"program_{name}.py").write_text(program)
        runnable.append(h)
    if runnable:
        values.save({h.exercise.name: [portable(c.args) for c in h.cases] for h in runnable}, work / "cases.pt")
        (work / "exercises.json").write_text(json.dumps(
            {h.exercise.name: {"harness": h.exercise.harness_name, "forbidden": list(h.exercise.forbidden)}
             for h in runnable}))
        results, failures = _run_sandboxed([h.exercise.name for h in runnable], work, limits, timeout,
                                           startup_timeout)
        for h in runnable:
            name = h.exercise.name
            if name in failures:
                scores[name].note = failures[name]
                scores[name].cases = [CaseResult(c.label, 0.0, failures[name]) for c in h.cases]
            else:
                scores[name].cases = _compare(h, results[name])
                if any(isinstance(e, dict) and e.get("forbidden") for e in results[name]):
                    scores[name].note = scores[name].cases[0].message
    return [scores[h.exercise.name] for h in held]
