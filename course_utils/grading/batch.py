"""Grade a class: find the submissions, grade each one not yet in the gradebook, write the report from it.

Submissions are ``SUBMISSIONS/<student_id>.ipynb`` files or ``SUBMISSIONS/<student_id>/<assignment>.ipynb``
folders (both may be mixed). Each is executed and scored alone
(:func:`course_utils.grading.submission.grade_one`); anything that goes wrong becomes that student's status and
reason, never an exception that stops the batch. Every grade is recorded in ``OUT/gradebook.sqlite`` the moment
it is made (:mod:`course_utils.grading.gradebook`), so running the same command after a crash grades only what
is missing or changed; the report (:mod:`course_utils.grading.report`) is written from the gradebook once every
student process is gone. Student code runs in the sandbox (:mod:`course_utils.grading.sandbox`); without a
sandbox tool the grader refuses to run unless ``unsandboxed`` is set.
"""
from __future__ import annotations

import secrets
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor, as_completed
from dataclasses import dataclass
from pathlib import Path

from course_utils import cluster
from course_utils.core.progress import progress_bar
from course_utils.exercises import exercises_of
from course_utils.grading import report, sandbox
from course_utils.grading.gradebook import Gradebook, identity, notebook_sha256
from course_utils.grading.reaper import Reaper
from course_utils.grading.remote import grade_on_cluster
from course_utils.grading.rubric import Rubric, load_rubric
from course_utils.grading.score import HeldOut, held_out
from course_utils.grading.submission import Grade, Settings, Submission, find_submissions, grade_one

__all__ = ["Graded", "Grade", "Settings", "Submission", "find_submissions", "grade_all", "grade_one",
           "rubric_of", "sandbox_mode"]

UNSANDBOXED = "unsandboxed"
NO_SANDBOX = ("no sandbox tool found: course-grade runs every student's code inside bubblewrap. Install it "
              "(Debian/Ubuntu: sudo apt-get install bubblewrap; Fedora: sudo dnf install bubblewrap); macOS has "
              "none: grade on Linux or in a Linux container. To grade without isolation anyway — student code "
              "then runs as you and can read and change your files — pass --unsandboxed.")


@dataclass
class Graded:
    """A grading run's outcome: every student's grade (sorted by id), the students graded by this run (the
    others were already in the gradebook), and the sandbox mode."""

    grades: list[Grade]
    graded_now: list[str]
    mode: str


def rubric_of(settings: Settings) -> Rubric:
    """The rubric file ``settings.rubric``, else the exercises' built-in rubric of ``settings.assignment``."""
    if settings.rubric is not None:
        return load_rubric(settings.rubric)
    try:
        return Rubric(assignment=settings.assignment, exercises=exercises_of(settings.assignment))
    except ValueError as err:
        raise ValueError(f"{err} For an assignment of your own, pass --rubric FILE.") from None


def sandbox_mode(settings: Settings) -> str:
    """``"sandboxed (<tool>)"``, or ``"unsandboxed"`` when asked; a clear error when no tool is found."""
    if settings.unsandboxed:
        return UNSANDBOXED
    tool = sandbox.isolation_tool()
    if tool is None:
        raise ValueError(NO_SANDBOX)
    return f"sandboxed ({Path(tool).name})"


def _check(settings: Settings) -> None:
    if settings.jobs < 1:
        raise ValueError(f"--jobs must be at least 1, not {settings.jobs}.")
    for name in ("timeout_cell", "timeout_total", "timeout_check", "max_output_bytes", "memory_bytes"):
        if not getattr(settings, name) > 0:
            raise ValueError(f"{name} must be positive, not {getattr(settings, name)}.")
    if settings.cluster is not None:
        cluster.local_workers(settings.cluster)
    if (settings.scheduler or settings.cluster) and settings.jobs != 1:
        raise ValueError("--jobs sets the pool on this machine; on a cluster, each worker thread grades one "
                         "submission at a time: drop --jobs (or start more workers).")


def _grade(todo: list[Submission], settings: Settings, rubric: Rubric, held: list[HeldOut],
           record: Callable[[Grade], None]) -> None:
    """Grade ``todo`` here or on the cluster, passing each grade to ``record`` as soon as it is made; the
    :class:`~course_utils.grading.reaper.Reaper` ends the student processes if this process is killed."""
    with Reaper(), cluster.connect(settings.scheduler, settings.cluster) as client:
        if client is not None:
            grade_on_cluster(client, todo, settings, rubric, held, on_grade=record)
            return
        with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
            futures = [pool.submit(grade_one, s, settings, rubric, held) for s in todo]
            for future in progress_bar(as_completed(futures), enabled=settings.progress, desc="grading",
                                       total=len(futures)):
                record(future.result())


def grade_all(settings: Settings, regrade: bool = False) -> Graded:
    """Grade the class into ``settings.out``: the submissions not yet in its gradebook (all with ``regrade``),
    ``settings.jobs`` at a time here, or one Dask task each on ``settings.scheduler`` / a ``settings.cluster``
    = ``local:N`` cluster (:mod:`course_utils.grading.remote`); then write the report of the whole class."""
    _check(settings)
    mode = sandbox_mode(settings)
    rubric = rubric_of(settings)
    subs = find_submissions(settings.submissions, settings.assignment)
    with Gradebook(settings.out) as book:
        stored = book.stored_identity()
        seed = settings.secret_seed
        if seed is None:
            seed = stored["secret_seed"] if stored is not None and not regrade else secrets.randbits(63)
        held = held_out(rubric, seed)
        book.begin(identity(settings, held, seed, mode), regrade)
        shas = {s.student_id: notebook_sha256(s.path) for s in subs}
        todo = [s for s in subs if book.needs_grading(s.student_id, shas[s.student_id])]

        def record(grade: Grade) -> None:
            book.record(grade, shas[grade.student_id])

        if todo:
            _grade(todo, settings, rubric, held, record)
        grades = book.grades(sorted(shas))
        graded = Graded(grades, book.graded_in_session(), mode)
    report.write_report(settings.out, settings.assignment, rubric, grades, mode, len(graded.graded_now))
    return graded
