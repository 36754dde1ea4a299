"""One submission: where it is, the settings of a grading run, its grade, and grading it alone.

:func:`grade_one` executes and scores one student's notebook in private temporary folders, every student process
inside the sandbox of :mod:`course_utils.grading.sandbox` (unless ``Settings.unsandboxed``); it is what the local
pool (:mod:`course_utils.grading.batch`) and each cluster worker (:mod:`course_utils.grading.remote`) run, so a
Dask worker isolates its students exactly as the local pool does.
"""
from __future__ import annotations

import os
import re
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from course_utils.grading import execute, extract, sandbox
from course_utils.grading.rubric import Rubric
from course_utils.grading.score import ExerciseScore, HeldOut, score_notebook
from course_utils.grading.status import Status

_STUDENT_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._@+-]{0,127}$")


@dataclass(frozen=True)
class Submission:
    """A student's notebook; ``path`` is None for a student folder without the assignment's notebook."""

    student_id: str
    path: Path | None


@dataclass(frozen=True)
class Settings:
    """Everything one grading run needs (the CLI fills it from its options)."""

    submissions: Path
    assignment: str
    out: Path
    rubric: Path | None  # None: the exercises' built-in rubric
    jobs: int = 1
    timeout_cell: float = 300.0
    timeout_total: float = 1800.0
    timeout_check: float = 60.0
    max_output_bytes: int = 1_000_000
    memory_bytes: int = 4 * 2**30
    parameters: dict = field(default_factory=dict)
    run_notebooks: bool = True
    secret_seed: int | None = None
    progress: bool = True
    scheduler: str | None = None
    cluster: str | None = None
    unsandboxed: bool = False


@dataclass
class Grade:
    """One student's result: exercise scores, execution status and reason, runtime, discussion word count."""

    student_id: str
    exercises: list[ExerciseScore]
    status: Status
    reason: str
    runtime_s: float
    discussion_words: int | None = None
    truncated: bool = False
    executed: bytes | None = None


def find_submissions(root: Path, assignment: str) -> list[Submission]:
    """Every ``<id>.ipynb`` and ``<id>/<assignment>.ipynb`` under ``root``, sorted by student id; a folder
    without ``<assignment>.ipynb`` counts as a missing submission (graded 0, status "missing")."""
    if not root.is_dir():
        raise ValueError(f"submissions folder {root} does not exist; pass the folder holding the notebooks.")
    found: dict[str, Path | None] = {}
    for entry in sorted(root.iterdir()):
        if entry.is_file() and entry.suffix == ".ipynb":
            student, path = entry.stem, entry
        elif entry.is_dir() and not entry.name.startswith("."):
            notebook = entry / f"{assignment}.ipynb"
            student, path = entry.name, notebook if notebook.is_file() else None
        else:
            continue
        if not _STUDENT_ID.match(student):
            raise ValueError(f"{entry.name!r} is not a usable student id (letters, digits, . _ @ + -); rename it.")
        if path is not None and found.get(student) is not None:
            raise ValueError(f"student {student!r} has two submissions ({found[student]} and {path}); keep one.")
        if path is not None or student not in found:
            found[student] = path
    if not any(found.values()):
        raise ValueError(f"no submissions in {root}: expected <student_id>.ipynb files or "
                         f"<student_id>/{assignment}.ipynb folders.")
    return [Submission(s, p) for s, p in sorted(found.items())]


def _limits(settings: Settings) -> sandbox.Limits:
    threads = max(1, (os.cpu_count() or 1) // max(1, settings.jobs))
    file_bytes = max(64 * 2**20, 8 * settings.max_output_bytes)
    return sandbox.Limits(memory_bytes=settings.memory_bytes, file_bytes=file_bytes, threads=threads,
                          deny=_private_paths(settings), sandboxed=not settings.unsandboxed)


def staging_path() -> Path:
    """``<tmp>/course-grade-staged-<uid>``, where cluster workers stage the notebooks they grade on this machine
    (:mod:`course_utils.grading.remote`); every grading run, local or not, keeps student code out of it."""
    return Path(tempfile.gettempdir()) / f"course-grade-staged-{os.getuid()}"


def _private_paths(settings: Settings) -> tuple[Path, ...]:
    """What student code may not open: the rubric's folder (``solutions/`` when it is ``solutions/rubrics/``),
    the report, the submissions and the cluster workers' staging folder; a folder that holds the kit itself is
    narrowed to the files concerned."""
    code = {sandbox.PACKAGE_ROOT / "course_utils", Path(sys.prefix).resolve()}

    def holds_code(folder: Path) -> bool:
        return any(c == folder or folder in c.parents for c in code)

    paths = []
    if settings.rubric is not None:
        rubric = settings.rubric.resolve()
        hidden = rubric.parent.parent if rubric.parent.name == "rubrics" else rubric.parent
        paths.append(rubric if holds_code(hidden) else hidden)
    out = settings.out.resolve()
    paths += [out / n for n in ("grades.csv", "feedback", "executed")] if holds_code(out) else [out]
    if not holds_code(settings.submissions.resolve()):
        paths.append(settings.submissions.resolve())
    paths.append(staging_path().resolve())
    return tuple(paths)


def grade_one(sub: Submission, settings: Settings, rubric: Rubric, held: list[HeldOut]) -> Grade:
    """Execute and score one submission in private temporary directories; never raises.

    Its notebook runs in a sandbox that may write only ``root`` (a fresh folder), and each exercise function in
    a sandbox of its own (:func:`course_utils.grading.score.score_notebook`).
    """
    start = time.monotonic()
    root = Path(tempfile.mkdtemp(prefix=f"course-grade-{sub.student_id}-"))
    score_dir = None
    empty = [ExerciseScore(h.exercise.name, float(h.exercise.points)) for h in held]
    try:
        if sub.path is None:
            reason = f"no {settings.assignment}.ipynb in the student's folder"
            return Grade(sub.student_id, empty, Status.MISSING, reason, 0.0)
        try:
            nb = extract.read_notebook(sub.path)
        except ValueError as err:
            return Grade(sub.student_id, empty, Status.INVALID, str(err), time.monotonic() - start)
        limits = _limits(settings)
        status, reason, truncated, executed = Status.NOT_RUN, "notebook execution was switched off", False, None
        if settings.run_notebooks:
            work = root / "notebook"
            work.mkdir()
            copy = work / f"{settings.assignment}.ipynb"
            shutil.copyfile(sub.path, copy)
            ran = execute.execute_notebook(copy, root, settings.parameters, limits, settings.timeout_cell,
                                           settings.timeout_total, settings.max_output_bytes, root / "execute.log")
            status, reason, truncated = ran.status, ran.reason, ran.truncated
            executed = execute.read_executed(root, 4 * settings.max_output_bytes + 16 * 2**20)
        score_dir = Path(tempfile.mkdtemp(prefix=f"course-score-{sub.student_id}-"))
        scores = score_notebook(nb, held, score_dir, limits, settings.timeout_check)
        words = extract.discussion_words(nb, rubric.discussion_tag)
        return Grade(sub.student_id, scores, status, reason, time.monotonic() - start, words, truncated, executed)
    except Exception as err:  # a grader bug on one submission must not stop the others
        return Grade(sub.student_id, empty, Status.GRADER_ERROR, f"{type(err).__name__}: {err}",
                     time.monotonic() - start)
    finally:
        shutil.rmtree(root, ignore_errors=True)
        if score_dir is not None:
            shutil.rmtree(score_dir, ignore_errors=True)
