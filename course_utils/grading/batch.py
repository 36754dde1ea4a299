"""Grade a folder of submissions in parallel: find them, execute and score each in isolation, write the report.

Submissions are ``SUBMISSIONS/<student_id>.ipynb`` files or ``SUBMISSIONS/<student_id>/<assignment>.ipynb``
folders (both may be mixed). Each is executed and scored alone
(:func:`course_utils.grading.submission.grade_one`); anything that goes wrong becomes that student's status and reason, never an exception that stops the batch. The report
(:mod:`course_utils.grading.report`) is written only once every student process is gone.
"""
from __future__ import annotations

import secrets
from concurrent.futures import ThreadPoolExecutor, as_completed

from course_utils import cluster
from course_utils.core.progress import progress_bar
from course_utils.grading import report
from course_utils.grading.remote import grade_on_cluster
from course_utils.grading.rubric import load_rubric
from course_utils.grading.score import held_out
from course_utils.grading.submission import Grade, Settings, Submission, find_submissions, grade_one

__all__ = ["Grade", "Settings", "Submission", "find_submissions", "grade_all", "grade_one"]


def grade_all(settings: Settings) -> list[Grade]:
    """Grade every submission and write the report into ``settings.out``: ``settings.jobs`` at a time here, or
    one Dask task each on ``settings.scheduler`` / a ``settings.cluster`` = ``local:N`` cluster
    (:mod:`course_utils.grading.remote`)."""
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
    rubric = load_rubric(settings.rubric)
    subs = find_submissions(settings.submissions, settings.assignment)
    seed = settings.secret_seed if settings.secret_seed is not None else secrets.randbits(63)
    held = held_out(rubric, seed)
    grades = []
    with cluster.connect(settings.scheduler, settings.cluster) as client:
        if client is not None:
            grades = grade_on_cluster(client, subs, settings, rubric, held)
        else:
            with ThreadPoolExecutor(max_workers=settings.jobs) as pool:
                futures = [pool.submit(grade_one, s, settings, rubric, held) for s in subs]
                for future in progress_bar(as_completed(futures), enabled=settings.progress, desc="grading",
                                           total=len(futures)):
                    grades.append(future.result())
    grades.sort(key=lambda g: g.student_id)
    report.write_report(settings.out, settings.assignment, rubric, grades)
    return grades
