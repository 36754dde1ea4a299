"""Grade a class on a Dask cluster: one task per submission, the same per-submission grader on the worker.

The instructor's process reads each notebook and sends its bytes with the task (workers need not see the
submissions folder); the rubric and its held-out cases and references travel inside every task too, as the
local pool passes them to each thread (over the cluster's network: use a TLS scheduler address on a network
you do not trust). On the worker, :func:`grade_staged` writes the notebook into a private staging folder of
that worker process and calls :func:`course_utils.grading.submission.grade_one` on it, unchanged: private temporary
directory, sandbox limits and access guard (student code may open neither the staging folder of any worker on
the machine nor the instructor's rubric, report and submissions paths, which matters on a shared file system),
per-cell/total/check timeouts and output cap, and no student process ever receives the rubric.
A worker that dies is replaced and its task run again by the scheduler; a submission whose workers keep dying
gets the status "grader error". Each grade comes back to the instructor's process as its task ends, which
records it in the gradebook at once and writes the report at the end (:func:`course_utils.grading.batch.grade_all`).
"""
from __future__ import annotations

import dataclasses
import functools
import os
import tempfile
import threading
import uuid
from collections.abc import Callable
from pathlib import Path

from course_utils.grading.rubric import Rubric
from course_utils.grading.score import ExerciseScore, HeldOut
from course_utils.grading.status import Status
from course_utils.grading.submission import Grade, Settings, Submission, grade_one, staging_path

_staging: Path | None = None
_staging_lock = threading.Lock()


def staging_root() -> Path:
    """``<tmp>/course-grade-staged-<uid>``: the folder (mode 0700, ours) holding every worker process's staged
    notebooks on this machine; student code may open nothing under it, so that no student reads the notebook
    another worker on the same machine is grading."""
    root = staging_path()
    root.mkdir(mode=0o700, exist_ok=True)
    info = root.lstat()
    if not root.is_dir() or root.is_symlink() or info.st_uid != os.getuid() or info.st_mode & 0o077:
        raise RuntimeError(f"{root} is not a private folder of this user; remove it and grade again.")
    return root


def _staging_dir() -> Path:
    """This worker process's folder for received notebooks, inside :func:`staging_root` (made once)."""
    global _staging
    with _staging_lock:
        if _staging is None or not _staging.is_dir():
            _staging = Path(tempfile.mkdtemp(prefix=f"worker-{os.getpid()}-", dir=staging_root()))
        return _staging


def grade_staged(job: tuple[str, bytes | None], settings: Settings, rubric: Rubric,
                 held: list[HeldOut]) -> Grade:
    """Task body: grade one student's notebook (``job`` = student id, notebook bytes or None if missing)."""
    student, notebook = job
    staging = _staging_dir()
    # jobs = all cores: one BLAS thread per student process, as Dask gives its own workers
    local = dataclasses.replace(settings, jobs=os.cpu_count() or 1)
    path = None
    if notebook is not None:
        path = staging / f"{uuid.uuid4().hex}.ipynb"
        path.write_bytes(notebook)
    try:
        return grade_one(Submission(student, path), local, rubric, held)
    finally:
        if path is not None:
            path.unlink(missing_ok=True)


def lost_grade(held: list[HeldOut]):
    """``on_error`` for :func:`course_utils.cluster.run_tasks`: the grade of a submission whose task failed
    for good (its workers kept dying, or the task could not run on the cluster)."""
    def grade(job: tuple[str, bytes | None], error: BaseException) -> Grade:
        empty = [ExerciseScore(h.exercise.name, float(h.exercise.points)) for h in held]
        return Grade(job[0], empty, Status.GRADER_ERROR, f"the cluster could not grade it ({type(error).__name__}: "
                     f"{error})", 0.0)
    return grade


def absolute(settings: Settings) -> Settings:
    """``settings`` with its paths made absolute here, before they travel to workers with another cwd."""
    return dataclasses.replace(settings, submissions=settings.submissions.resolve(), out=settings.out.resolve(),
                               rubric=None if settings.rubric is None else settings.rubric.resolve())


def grade_on_cluster(client, subs: list[Submission], settings: Settings, rubric: Rubric, held: list[HeldOut],
                     on_grade: Callable[[Grade], None] | None = None) -> list[Grade]:
    """Grade ``subs`` as one task each on ``client``'s cluster; the grades in the order of ``subs``, each also
    passed to ``on_grade`` as soon as it is back."""
    from course_utils.cluster import run_tasks

    jobs = [(s.student_id, None if s.path is None else s.path.read_bytes()) for s in subs]
    # the rubric goes with every task (not scattered once), so that no worker death can lose it
    task = functools.partial(grade_staged, settings=absolute(settings), rubric=rubric, held=held)
    done = None if on_grade is None else (lambda job, grade: on_grade(grade))
    return run_tasks(client, task, jobs, on_error=lost_grade(held), on_done=done, progress=settings.progress,
                     desc="grading", retries=0)
