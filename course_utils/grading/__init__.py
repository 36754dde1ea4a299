"""Instructor grading of notebook submissions: batch, isolated, timed, tamper-resistant.

``course-grade SUBMISSIONS --assignment NAME --out grades/`` (:mod:`~course_utils.grading.cli`) copies each
notebook into a private directory and runs it with papermill under per-cell/total timeouts, memory and output
caps and an access guard (:mod:`~course_utils.grading.execute`, :mod:`~course_utils.grading.sandbox`,
:mod:`~course_utils.grading.guard.sitecustomize`), then scores it from what its exercise functions — cut out
of the notebook by name (:mod:`~course_utils.grading.extract`) and run in a fresh sandbox process (:mod:`~course_utils.grading.runner`) — return on secret held-out inputs, compared in the
grader's own process with the instructor's rubric (:mod:`~course_utils.grading.rubric`,
:mod:`~course_utils.grading.score`). Results: :mod:`~course_utils.grading.report`.
"""
from course_utils.grading.rubric import Case, Exercise, Rubric, close, load_rubric

__all__ = ["Case", "Exercise", "Rubric", "close", "load_rubric"]
