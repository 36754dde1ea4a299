"""Grading checks for 05_thakur_fischmeister: the course exercise ``context_weights`` (2 points).

The exercises (reference, kinds of cases, forbidden code) live in :mod:`course_utils.exercises`, shared with
the notebook's self-checks; the grader draws the case values from a secret seed (``--secret-seed`` to repeat a
run). To grade differently, build ``RUBRIC`` from your own :class:`~course_utils.grading.rubric.Exercise`
objects here.
"""
from course_utils.exercises import exercises_of
from course_utils.grading.rubric import Rubric

RUBRIC = Rubric(assignment="05_thakur_fischmeister", exercises=exercises_of("05_thakur_fischmeister"))
