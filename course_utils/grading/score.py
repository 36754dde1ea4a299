"""Score a submission from what its exercise functions compute on held-out inputs.

:func:`held_out` draws the rubric's cases with a secret seed (a new one every grading run unless the
instructor fixes it) and computes the reference outputs once, in the grader's process. :func:`score_notebook`
cuts each exercise function out of the notebook (:mod:`course_utils.grading.extract`) and runs it in a process of
its own (:mod:`course_utils.grading.runner`), inside a sandbox in which the reference answers and the kit modules
the exercise forbids are empty (:func:`runner_view`), with that exercise's inputs only and a time limit. The
runner sends back plain values on a pipe the grader made; the grader takes them only from a runner that exited
with status 0 and compares them with the references using each exercise's check, in its own process. Printed
numbers and files the notebook writes play no part.
"""
from __future__ import annotations

import importlib.util
import os
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from course_utils.exercises.calling import REFERENCES, materialize, portable
from course_utils.forbidden import forbidden_message
from course_utils.grading import extract, runner, sandbox, values
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


EXIT_GRACE_S = 30.0
"""How long a runner that has sent its results may take to exit (not counted in the exercise's time limit)."""


class _Reader(threading.Thread):
    """Reads a runner's result pipe (at most ``cap`` bytes): when its first byte came (the exercise started) and
    when a whole message had come (the exercise ended; the process then only has to exit)."""

    def __init__(self, fd: int, cap: int):
        super().__init__(daemon=True)
        self.fd, self.cap = fd, cap
        self.data = bytearray()
        self.started: float | None = None
        self.ended: float | None = None
        self.overflow = False

    def run(self) -> None:
        head = len(runner.STARTED) + runner.LENGTH.size
        with os.fdopen(self.fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(1 << 20):
                if self.started is None:
                    self.started = time.monotonic()
                if len(self.data) + len(chunk) > self.cap:
                    self.overflow = True
                    return
                self.data += chunk
                if self.ended is None and len(self.data) >= head and \
                        len(self.data) - head >= runner.LENGTH.unpack(self.data[len(runner.STARTED):head])[0]:
                    self.ended = time.monotonic()


def _write_job(fd: int, job: bytes) -> None:
    try:
        with os.fdopen(fd, "wb") as pipe:
            pipe.write(job)
    except OSError:  # the runner died or closed its stdin without reading
        pass


def _decode(data: bytes) -> list | None:
    """The runner's results from what it sent (start byte, length, values), or None if malformed."""
    head = len(runner.STARTED) + runner.LENGTH.size
    if len(data) < head or not data.startswith(runner.STARTED):
        return None
    (length,) = runner.LENGTH.unpack(data[len(runner.STARTED):head])
    if length != len(data) - head:
        return None
    return values.loads(bytes(data[head:]))


def run_one(job: dict, limits: sandbox.Limits, view: sandbox.View, timeout: float, startup_timeout: float,
            max_result_bytes: int = 256 * 2**20) -> tuple[list | None, str | None]:
    """Run one exercise's ``job`` in a fresh runner: its results, or None and the reason there are none."""
    result_read, result_write = os.pipe()
    job_read, job_write = os.pipe()
    begun = time.monotonic()
    try:
        proc = sandbox.spawn(["-m", "course_utils.grading.runner", "--result-fd", str(result_write)], limits,
                             view, pass_fds=(result_write,), stdin=job_read)
    except BaseException:
        os.close(result_read)
        os.close(job_write)
        raise
    finally:
        os.close(result_write)
        os.close(job_read)
    reader = _Reader(result_read, max_result_bytes)
    reader.start()
    threading.Thread(target=_write_job, args=(job_write, values.dumps(job)), daemon=True).start()

    def deadline() -> float:
        if reader.overflow:
            return begun
        if reader.ended is not None:
            return reader.ended + EXIT_GRACE_S
        return begun + startup_timeout if reader.started is None else reader.started + timeout

    killed = sandbox.wait_watched(proc, deadline)
    reader.join()
    if reader.overflow:
        return None, f"it returned more than {max_result_bytes // 2**20} MB"
    if killed and reader.ended is not None:
        return None, f"the process running it did not exit within {EXIT_GRACE_S:g} s of sending its results"
    if killed:
        return None, ("the sandbox could not start it (timed out while starting)" if reader.started is None
                      else f"timed out after {timeout:g} s (infinite loop?)")
    if reader.started is None:
        return None, f"the sandbox could not run it ({sandbox.describe_exit(proc.returncode)})"
    if proc.returncode != 0:
        return None, f"the process running it stopped: {sandbox.describe_exit(proc.returncode)}"
    try:
        results = _decode(reader.data)
    except Exception as err:  # torch.load refuses anything but plain values
        return None, f"its results could not be read back ({type(err).__name__})"
    if results is None:
        return None, "the process running it exited without sending its results"
    return results, None


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


def installed_package(name: str) -> list[Path]:
    """The folder (or module file) of the installed top-level package of ``name``, found without importing it;
    none for torch, whose own modules (``torch.nn``, ``torch.autograd``) torch needs: there the tracing guard
    alone stands."""
    top = name.split(".")[0]
    if top == "torch":
        return []
    try:
        spec = importlib.util.find_spec(top)
    except (ImportError, ValueError):
        return []
    if spec is None:
        return []
    if spec.submodule_search_locations:
        return [Path(p) for p in spec.submodule_search_locations]
    return [Path(spec.origin)] if spec.origin and Path(spec.origin).is_file() else []


def runner_view(forbidden: tuple[str, ...], limits: sandbox.Limits) -> sandbox.View:
    """What a function runner may see: the kit without the course's reference answers and without the kit
    modules ``forbidden`` names, the other installed packages ``forbidden`` names (captum, scikit-learn, …;
    each an empty file or folder), nothing of the grading package's own ``__init__`` (which imports them), and no
    working folder but its private ``/tmp``."""
    hidden = [*limits.deny]
    for prefix in (*REFERENCES, *forbidden, "course_utils.exercises", "course_utils.grading"):
        if prefix.split(".")[0] != "course_utils":
            hidden += installed_package(prefix)
            continue
        path = sandbox.KIT.joinpath(*prefix.split(".")[1:])
        if path.is_dir():
            hidden.append(path if prefix in (*REFERENCES, *forbidden) else path / "__init__.py")
        elif path.with_suffix(".py").is_file():
            hidden.append(path.with_suffix(".py"))
            hidden += path.parent.glob(f"__pycache__/{path.name}.*")
        else:  # a function or class in a module: the whole module goes
            module = next((p for p in path.parents if p.with_suffix(".py").is_file()), None)
            if module is not None:
                hidden.append(module.with_suffix(".py"))
                hidden += module.parent.glob(f"__pycache__/{module.name}.*")
    return sandbox.View(hidden=tuple(hidden))


def score_notebook(nb, held: list[HeldOut], work: Path, limits: sandbox.Limits, timeout: float,
                   startup_timeout: float = 120.0) -> list[ExerciseScore]:
    """Score every exercise of ``held`` for notebook ``nb``, one sandboxed runner per exercise; ``work`` is an
    empty private directory (the runners' working folders when they run without a sandbox)."""
    defs, problems = extract.definitions(nb)
    syntax = f" ({'; '.join(problems)})" if problems else ""
    scores = {h.exercise.name: ExerciseScore(h.exercise.name, float(h.exercise.points)) for h in held}
    for h in held:
        name = h.exercise.name
        program = extract.program_for(name, defs)
        if program is None:
            scores[name].note = f"no top-level function `{name}` found in the notebook's code cells{syntax}"
            continue
        job = {"name": name, "source": program, "cases": [portable(c.args) for c in h.cases],
               "harness": h.exercise.harness_name, "forbidden": list(h.exercise.forbidden)}
        view = runner_view(tuple(h.exercise.forbidden), limits)
        if not limits.sandboxed:
            (work / name).mkdir()
            view = sandbox.View(cwd=work / name)
        results, failure = run_one(job, limits, view, timeout, startup_timeout)
        if failure is not None:
            scores[name].note = failure
            scores[name].cases = [CaseResult(c.label, 0.0, failure) for c in h.cases]
        else:
            scores[name].cases = _compare(h, results)
            if any(isinstance(e, dict) and e.get("forbidden") for e in results):
                scores[name].note = scores[name].cases[0].message
    return [scores[h.exercise.name] for h in held]
